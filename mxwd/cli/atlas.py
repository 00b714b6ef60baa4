"""`mxwd atlas`: what wd does in every MXNet optimizer."""
from __future__ import annotations

import argparse

from mxwd.cli.common import figure_names, say
from mxwd.cli.options import config_from_args


def run(args: argparse.Namespace) -> int:
    from mxwd.results import save_figure, staged_dir, versions, write_atomic, write_json

    config = config_from_args(args)
    with staged_dir(args.out, args.force) as tmp:
        from mxwd import plot
        from mxwd.optimizer_atlas import atlas

        say(args, f"mxwd atlas: lambd = wd = {max(config.lambdas):g}, lr = {config.lr:g}, seed {config.seed}; "
                   f"writing {args.out}")
        result = atlas(args.optimizers, config, progress=not args.quiet)
        write_json(tmp / "atlas.json", {"command": "atlas", "config": config.to_dict(), "versions": versions(),
                                        "lambd": result.lambd, "seconds": result.seconds,
                                        "optimizers": result.to_list()})
        write_atomic(tmp / "atlas.md", (result.markdown() + "\n").encode())
        figures = [save_figure(plot.atlas_distances(result), tmp / "atlas")]
    print(result.table())
    print(result.summary())
    print(f"wrote {args.out}/atlas.json, atlas.md and {figure_names(figures)}")
    return 0
