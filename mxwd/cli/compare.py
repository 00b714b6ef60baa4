"""`mxwd compare`: the scratch penalty against Gluon's built-in wd, paired, every difference explained."""
from __future__ import annotations

import argparse

from mxwd.cli.common import figure_names, say
from mxwd.cli.options import config_from_args


def run(args: argparse.Namespace) -> int:
    from mxwd.results import save_figure, staged_dir, versions, write_json

    config = config_from_args(args)
    with staged_dir(args.out, args.force) as tmp:
        from mxwd import plot
        from mxwd.comparison import compare

        say(args, f"mxwd compare: seed {config.seed}, lambdas {list(config.lambdas)}; writing {args.out}")
        comparisons = [compare(lambd, config) for lambd in config.lambdas]
        # what most users run: one Trainer, so MXNet decays the bias too
        defaults = [compare(lambd, config, setup="mxnet_default") for lambd in config.lambdas
                    if lambd > 0 and not config.decay_bias]
        figures = [save_figure(plot.overlay(c), tmp / f"compare_lambd{c.lambd:g}", formats=("png",))
                   for c in comparisons if c.gap is not None]
        write_json(tmp / "compare.json", {
            "command": "compare",
            "config": config.to_dict(),
            "versions": versions(),
            "pairing": config.pairing,
            "comparisons": [c.to_dict() for c in comparisons],
            "mxnet_default": [c.to_dict() for c in defaults],
        })
    from mxwd.comparison import pairing_note

    print(pairing_note(config))
    print("\n\n".join(c.table() for c in comparisons))
    if defaults:
        print("\nMXNet's default, one Trainer with wd on every parameter (the bias too), against the "
              "hand-written penalty on w only:")
        print("\n\n".join(c.table(epochs=False) for c in defaults))
    print(f"wrote {args.out}/compare.json" + (f" and {figure_names(figures)}" if figures else ""))
    return 0
