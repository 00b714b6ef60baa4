"""`mxwd atlas`: what wd does in every MXNet optimizer."""
from __future__ import annotations

import argparse
from typing import Any, Dict, Optional, Sequence

from mxwd.cli.common import figure_names, say
from mxwd.cli.options import config_from_args


def hyperparameters(given: Optional[Sequence[str]]) -> Dict[str, Dict[str, Any]]:
    """--set NAME:KEY=VALUE ... as {NAME: {KEY: value}}: a number, or true/false."""
    out = {}
    for item in given or ():
        name, sep, rest = item.partition(":")
        key, eq, text = rest.partition("=")
        if not (sep and eq and name and key and text):
            raise ValueError(f"--set {item!r}: write NAME:KEY=VALUE, e.g. sgd+momentum:momentum=0.9")
        if text.lower() in ("true", "false"):
            value = text.lower() == "true"
        else:
            try:
                value = float(text)
            except ValueError:
                raise ValueError(f"--set {item!r}: the value {text!r} is not a number or true/false") from None
            value = int(value) if value.is_integer() and "." not in text and "e" not in text.lower() else value
        out.setdefault(name, {})[key] = value
    return out


def run(args: argparse.Namespace) -> int:
    from mxwd.optimizer_atlas import atlas_specs, check_hyperparameters
    from mxwd.results import save_figure, staged_dir, versions, write_atomic, write_json

    config = config_from_args(args)
    specs = atlas_specs(args.optimizers)
    try:
        given = check_hyperparameters(specs, hyperparameters(args.hyperparameters), config.lr)
    except ValueError as err:
        raise ValueError(str(err) if str(err).startswith("--set") else f"--set: {err}") from None
    with staged_dir(args.out, args.force) as tmp:
        from mxwd import plot
        from mxwd.optimizer_atlas import atlas

        say(args, f"mxwd atlas: lambd = wd = {max(config.lambdas):g}, lr = {config.lr:g}, seed {config.seed}; "
                   f"writing {args.out}")
        result = atlas(args.optimizers, config, progress=not args.quiet, hyperparameters=given)
        write_json(tmp / "atlas.json", {"command": "atlas", "config": config.to_dict(), "versions": versions(),
                                        "lambd": result.lambd, "seconds": result.seconds,
                                        "optimizers": result.to_list()})
        write_atomic(tmp / "atlas.md", (result.markdown() + "\n").encode())
        figures = [save_figure(plot.atlas_distances(result), tmp / "atlas")]
    print(result.table())
    print(result.summary())
    print(f"wrote {args.out}/atlas.json, atlas.md and {figure_names(figures)}")
    return 0
