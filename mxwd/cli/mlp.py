"""`mxwd mlp`: the source's neuron argument and BatchNorm, measured on an MLP on load_digits.

Its options are MLPConfig's fields (`add_parser`); `run(args)` trains every (activation,
lambd, path) and the BatchNorm pair, and writes into `--out` (staged, never half-written):
mlp.json (config, seed, versions, every run, the agreement of the two paths, the readings,
the BatchNorm section), weights.npz (every run's final weights, the shared initial ones and
the training rows) and three figures.
"""
from __future__ import annotations

import argparse
import dataclasses
from typing import Any, Dict

from mxwd.cli.common import figure_names, say
from mxwd.mlps import ACTIVATIONS, MLPConfig

CHOICES = {"activations": ACTIVATIONS, "bn_activation": ACTIVATIONS}
FIGURES = ("lambd_effects", "weight_norms", "batchnorm")


def _field_help() -> Dict[str, str]:
    """Each MLPConfig field's one-line comment, as its option's help."""
    import inspect

    names = {f.name for f in dataclasses.fields(MLPConfig)}
    out = {}
    for line in inspect.getsource(MLPConfig).splitlines():
        name, sep, rest = line.strip().partition(":")
        if sep and name in names and "#" in rest:
            out[name] = rest.split("#", 1)[1].strip().replace("%", "%%")
    return out


def add_options(parser: argparse.ArgumentParser) -> None:
    """MLPConfig's fields as options (--n-train, --lambdas ..., --no-batchnorm), defaults None:
    a field not given keeps MLPConfig's default."""
    group = parser.add_argument_group("experiment settings (MLPConfig fields)")
    text = _field_help()
    for f in dataclasses.fields(MLPConfig):
        default = f.default
        shown = " ".join(f"{v:g}" if isinstance(v, float) else str(v) for v in default) \
            if isinstance(default, tuple) else default
        kwargs: Dict[str, Any] = {"dest": f.name, "default": None, "help": f"{text.get(f.name, '')} (default {shown})"}
        if isinstance(default, bool):
            kwargs["action"] = argparse.BooleanOptionalAction
        elif f.name in CHOICES:
            kwargs["choices"] = CHOICES[f.name]
            if isinstance(default, tuple):
                kwargs["nargs"] = "+"
        elif isinstance(default, tuple):
            kwargs.update(nargs="+", type=float, metavar="LAMBD")
        else:
            kwargs.update(type=type(default), metavar="N" if isinstance(default, int) else "X")
        group.add_argument("--" + f.name.replace("_", "-"), **kwargs)


def add_parser(sub: Any) -> argparse.ArgumentParser:
    """The `mlp` subcommand on a subparsers object: MLPConfig's options and the output options."""
    from mxwd.cli.options import add_output_options

    parser = sub.add_parser(
        "mlp", help="the source's neuron argument and BatchNorm, measured on an MLP on load_digits",
        description="Train a one-hidden-layer MLP on scikit-learn's digits for each activation and lambd, "
                    "from scratch (penalty in the loss) and with Gluon (wd), and measure the hidden units; "
                    "then the same MLP with BatchNorm, with decay on the BatchNorm-preceded weight and without.")
    add_options(parser)
    add_output_options(parser, "mlp")
    parser.set_defaults(preset=None)  # mxwd.cli.options.default_out reads it
    return parser


def config_from_args(args: argparse.Namespace) -> MLPConfig:
    """MLPConfig() with every option the user gave (lists become tuples)."""
    changes = {}
    for f in dataclasses.fields(MLPConfig):
        value = getattr(args, f.name, None)
        if value is not None:
            changes[f.name] = tuple(value) if isinstance(value, list) else value
    return MLPConfig(**changes)


def run(args: argparse.Namespace) -> int:
    import io
    from importlib import metadata

    import numpy as np

    from mxwd import mlp_plot
    from mxwd.mlps import mlp
    from mxwd.results import save_figure, staged_dir, versions, write_atomic, write_json

    config = config_from_args(args)  # bad input is refused before anything is written
    with staged_dir(args.out, args.force) as tmp:
        say(args, f"mxwd mlp: seed {config.seed}, activations {list(config.activations)}, lambdas "
                  f"{list(config.lambdas)}, {config.num_epochs} epochs; writing {args.out}")
        result = mlp(config)
        figures = [save_figure(mlp_plot.lambd_effects(result), tmp / "lambd_effects", formats=("png",)),
                   save_figure(mlp_plot.weight_norm_histograms(result), tmp / "weight_norms", formats=("png",))]
        if result.batchnorm is not None:
            figures.append(save_figure(mlp_plot.batchnorm(result.batchnorm), tmp / "batchnorm", formats=("png",)))
        try:
            sklearn = metadata.version("scikit-learn")
        except metadata.PackageNotFoundError:  # pragma: no cover (mlp could not have run)
            sklearn = "not installed"
        write_json(tmp / "mlp.json", {"command": "mlp", **result.to_dict(),
                                      "versions": {**versions(), "scikit-learn": sklearn}})
        buffer = io.BytesIO()
        np.savez(buffer, **result.arrays())
        write_atomic(tmp / "weights.npz", buffer.getvalue())
    print(result.table())
    print(f"wrote {args.out}/mlp.json, weights.npz and {figure_names(figures)}")
    return 0
