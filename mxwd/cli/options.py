"""The command line's options: Config's fields, per command only the ones it uses, with their defaults."""
from __future__ import annotations

import argparse
import dataclasses
import re
from pathlib import Path
from typing import Any, Dict, Optional

from mxwd.config import (
    BIAS_EXCLUSIONS,
    DEFAULT_N_VALID,
    DEFAULT_PRESET,
    DTYPES,
    LOSS_REDUCTIONS,
    PAIRINGS,
    PARTIAL_BATCH_PENALTIES,
    PRESETS,
    Config,
    field_names,
)


class UsageError(Exception):
    """A command-line mistake: reported in one line, exit status 2."""


# argparse takes "-1e-8" for an option (its pattern for negative numbers knows no exponent),
# so `--epsilon -1e-8` would be "expected one argument" instead of a refused value.
NEGATIVE_NUMBER = re.compile(r"^-(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$|^-inf(inity)?$|^-nan$", re.IGNORECASE)


class Parser(argparse.ArgumentParser):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._negative_number_matcher = NEGATIVE_NUMBER

    def error(self, message: str) -> None:  # one line, not usage + message
        if "required: COMMAND" in message:
            message = f"choose a command: {', '.join(COMMAND_NAMES)} (mxwd --help says what each does)"
        elif message.startswith("unrecognized arguments") and "--pairing" in message:
            message += f"; {NO_PAIRING}"
        raise UsageError(message)

    def parse_args(self, args: Any = None, namespace: Any = None) -> argparse.Namespace:
        """Parse, then give --out its default: a folder named for the run's kind (see `default_out`)."""
        parsed = super().parse_args(args, namespace)
        if getattr(parsed, "command", None) and getattr(parsed, "out", "given") is None:
            parsed.out = default_out(parsed)
        return parsed


COMMAND_NAMES = ("reproduce", "compare", "sweep", "atlas", "distributed", "mlp", "exercises")
CHOICES = {"bias_exclusion": BIAS_EXCLUSIONS, "loss_reduction": LOSS_REDUCTIONS, "dtype": DTYPES,
           "partial_batch_penalty": PARTIAL_BATCH_PENALTIES, "pairing": PAIRINGS}
# mxwd mlp and mxwd exercises take no Config options: what --pairing there would have meant.
NO_PAIRING = ("--pairing is an option of reproduce, compare and sweep (atlas and distributed refuse 'notebook'); "
              "mlp and exercises start every run of a seed from one initial w, and no book cell ran them")


def default_out(args: argparse.Namespace) -> Path:
    """results/COMMAND, plus what makes a run of another kind: the preset, --pairing notebook, --seeds, the optimizers.

    So the README's commands, run one after another in one folder, never collide:
    `mxwd reproduce` writes results/reproduce, `mxwd reproduce --preset d2lzh-2019 --seeds 100`
    results/reproduce-d2lzh-2019-seeds, `mxwd sweep --optimizer sgd adam` results/sweep-sgd-adam.
    """
    parts = [args.command]
    if getattr(args, "from_file", None) is not None:
        parts.append("from-" + Path(args.from_file).resolve().parent.name)
    if args.preset is not None:
        parts.append(args.preset)
    if getattr(args, "pairing", None) == "notebook":
        parts.append("notebook")
    if args.command == "reproduce" and args.seeds is not None:
        parts.append("seeds")
    if args.command == "sweep" and (args.optimizer != ["sgd"] or args.lrs is not None):
        parts += list(dict.fromkeys(args.optimizer))
        if args.optimizer == ["sgd"]:
            parts.append("lrs")
    if args.command == "atlas" and args.optimizers is not None:
        parts += list(dict.fromkeys(args.optimizers))[:4] + (["more"] if len(set(args.optimizers)) > 4 else [])
    return Path("results") / "-".join(parts)


def _config_help() -> Dict[str, str]:
    """Each field's one-line comment in config.py, as its option's help."""
    import inspect

    from mxwd import config as config_module

    help_text = {}
    for line in inspect.getsource(config_module.Config).splitlines():
        name, sep, rest = line.strip().partition(":")
        if sep and name in field_names() and "#" in rest:
            help_text[name] = rest.split("#", 1)[1].strip().replace("%", "%%")
    return help_text


# Config fields a command does not use are not offered by it.
# The L1 penalty runs on the scratch path only (Gluon's wd is L2): the sweep (its exact
# engine) and `mxwd exercises` offer it; the commands that run both paths do not.
L1_ONLY = {"penalty", "l1_step"}
NOT_USED = {
    "reproduce": L1_ONLY,
    "compare": L1_ONLY,
    "sweep": {"bias_exclusion", "hybridize", "clip_gradient"},  # the sweep trains the scratch path, unclipped
    "atlas": {"bias_exclusion", "hybridize", "clip_gradient", "partial_batch_penalty"} | L1_ONLY,
    "distributed": {"bias_exclusion", "hybridize"} | L1_ONLY,  # one Trainer, the bias out by wd_mult
}
LAMBDAS_HELP = {
    "reproduce": "penalty strengths to run on both paths",
    "compare": "penalty strengths to compare (lambd = wd)",
    "sweep": "penalty strengths (default: 50 log-spaced from 1e-3 to 10^2.5 = 316, not the preset's)",
    "atlas": "the atlas measures at the largest of these (lambd = wd)",
    "distributed": "penalty strengths to run on both paths, data-parallel",
}


def _add_config_options(parser: argparse.ArgumentParser, command: str) -> None:
    group = parser.add_argument_group(
        f"experiment settings (Config fields; defaults are the {DEFAULT_PRESET} preset's, or --preset's)")
    group.add_argument(
        "--preset",
        default=None,
        metavar="NAME",
        help=f"book version whose settings to start from: {', '.join(PRESETS)} (default {DEFAULT_PRESET})",
    )
    help_text = _config_help()
    help_text["lambdas"] = LAMBDAS_HELP[command]
    for field in dataclasses.fields(Config):
        if field.name in NOT_USED[command]:
            continue
        flag = "--" + field.name.replace("_", "-")
        default = field.default
        shown = " ".join(f"{v:g}" for v in default) if isinstance(default, tuple) else default
        text = help_text.get(field.name, "")
        if not (command == "sweep" and field.name == "lambdas"):
            text += f" (default {shown})"
        kwargs: Dict[str, Any] = {"dest": field.name, "default": None, "help": text}
        if isinstance(default, bool):
            kwargs["action"] = argparse.BooleanOptionalAction
        elif isinstance(default, tuple):
            kwargs.update(nargs="+", type=float, metavar="LAMBD")
        elif field.name in CHOICES:
            kwargs.update(choices=CHOICES[field.name])
        else:
            kwargs["type"] = type(default)
            kwargs["metavar"] = "N" if isinstance(default, int) else "X"
        group.add_argument(flag, **kwargs)


def add_output_options(parser: argparse.ArgumentParser, command: str) -> None:
    parser.add_argument("--out", type=Path, default=None, metavar="DIR",
                        help=f"folder for the results and figures (default results/{command}, followed by "
                             "the preset, the optimizers or -seeds when given, so runs of another kind never collide)")
    parser.add_argument("--force", action="store_true", help="overwrite --out if it exists")
    parser.add_argument("--quiet", action="store_true", help="print no progress")
    parser.add_argument("--yes", action="store_true",
                        help="run even if the run is estimated (after its first epoch) to take over an hour")


def version_line() -> str:
    """'mxwd 0.1.0 (MXNet 1.9.1, Python 3.11.7)', read from the installed metadata (MXNet is not imported)."""
    import platform
    from importlib import metadata

    from mxwd import __version__

    try:
        mxnet = metadata.version("mxnet")
    except metadata.PackageNotFoundError:
        mxnet = "not installed"
    return f"mxwd {__version__} (MXNet {mxnet}, Python {platform.python_version()})"


def build_parser() -> Parser:
    parser = Parser(
        prog="mxwd",
        description="The weight-decay experiment of Dive into Deep Learning (gluonbook, 2018) on MXNet 1.9.1.",
    )
    parser.add_argument("--version", action="version", version=version_line())
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)
    sub.required = True
    rep = sub.add_parser("reproduce", help="run the chapter: every lambd, from scratch and with Gluon")
    rep.add_argument("--from", dest="from_file", type=Path, default=None, metavar="FILE",
                     help="rerun the settings of a results.json written earlier")
    rep.add_argument("--seeds", type=int, default=None, metavar="N",
                     help="also run N seeded reproductions (from --seed on) and place the book's "
                          "published numbers among them (presets gluonbook-2018, d2lzh-2019)")
    cmp_ = sub.add_parser("compare", help="scratch L2 penalty vs Gluon's built-in wd, paired")
    swp = sub.add_parser("sweep", help="train many (lambd, seed) models at once: regularization path, validation",
                         description="Train every (lambd, seed) model of the from-scratch path at once and print, "
                                     "per lambd, the medians across seeds of the final train and test loss and "
                                     "||w||, with the 10th and 90th percentiles of the test loss.")
    swp.add_argument("--seeds", type=int, default=20, metavar="N",
                     help="number of seeds, from --seed on (default 20)")
    from mxwd.optimizers import BY_NAME, SWEEP_OPTIMIZERS, sweep_flags  # a table: MXNet is not imported

    swp.add_argument("--optimizer", nargs="+", default=["sgd"], metavar="NAME", choices=SWEEP_OPTIMIZERS,
                     help="update rules to sweep, each over --lrs x --lambdas: " + ", ".join(
                         f"{n} ({BY_NAME[n].sweep})" for n in SWEEP_OPTIMIZERS) + " (default sgd)")
    swp.add_argument("--lrs", nargs="+", type=float, default=None, metavar="LR",
                     help="learning rates to sweep (default: --lr alone)")
    swp.add_argument("--paper-lambdas", nargs="+", type=float, default=None, metavar="LAMBD",
                     help="lambdas of the paper's convention (adamw-paper, sgdw-paper; --lambdas is the other "
                          "optimizers'), where lambd is the decay per step and lambd >= 2 cannot shrink w "
                          "(default: 18 log-spaced from 1e-4 to 10^0.25 = 1.78)")
    for name, (default, owners) in sweep_flags().items():
        swp.add_argument(f"--{name}", type=float, default=None, metavar="X",
                         help=f"{', '.join(owners)}: {name} (default {default:g})")
    swp.add_argument("--n-valid", type=int, default=DEFAULT_N_VALID, metavar="N",
                     help=f"training examples held out to choose lambd by validation; 0 for none (default {DEFAULT_N_VALID})")
    atl = sub.add_parser("atlas", help="what wd does in every MXNet optimizer: coupled, decoupled or other, measured")

    atl.add_argument("--optimizers", nargs="+", default=None, metavar="NAME",
                     help=f"optimizers to measure (default: all): {', '.join(BY_NAME)}")
    atl.add_argument("--set", nargs="+", action="extend", default=None, metavar="NAME:KEY=VALUE", dest="hyperparameters",
                     help="an optimizer's hyperparameter, e.g. sgd+momentum:momentum=0.9 adam:beta1=0.8 "
                          "(numbers, true/false; default: the table's)")
    dist = sub.add_parser("distributed", help="the chapter data-parallel on MXNet's kvstore (scheduler, servers, "
                                              "workers on 127.0.0.1), checked against mxwd reproduce")
    dist.add_argument("--workers", type=int, default=2, metavar="N", help="worker processes (default 2)")
    dist.add_argument("--servers", type=int, default=1, metavar="M", help="parameter servers (default 1)")
    dist.add_argument("--kvstore", choices=("dist_sync", "dist_async"), default="dist_sync",
                      help="MXNet's kvstore type (default dist_sync)")
    dist.add_argument("--update-on-kvstore", action=argparse.BooleanOptionalAction, default=True,
                      help="Gluon: run the optimizer on the servers (MXNet's default) or on the workers (default: on)")
    dist.add_argument("--port", type=int, default=None, metavar="P",
                      help="the scheduler's port on 127.0.0.1 (default: a free one)")
    dist.add_argument("--timeout", type=float, default=120.0, metavar="S",
                      help="seconds each job may take before every process is ended (default 120)")
    for p, name in ((rep, "reproduce"), (cmp_, "compare"), (swp, "sweep"), (atl, "atlas"), (dist, "distributed")):
        _add_config_options(p, name)
        add_output_options(p, name)
    from mxwd.cli import mlp as mlp_command  # its options are MLPConfig's fields, not Config's (imports no MXNet)

    mlp_command.add_parser(sub)
    from mxwd.cli import exercises as exercises_command  # its own options (imports no MXNet)

    exercises_command.add_parser(sub)
    return parser


def config_from_args(args: argparse.Namespace, base: Optional[Config] = None) -> Config:
    """The preset (or `base`) with every option the user gave applied on top."""
    if base is None:
        from mxwd.config import preset

        base = preset(args.preset or DEFAULT_PRESET)
    elif args.preset is not None:
        raise ValueError("--preset and --from cannot be combined: the results file names its settings")
    changes = {name: getattr(args, name, None) for name in field_names() if getattr(args, name, None) is not None}
    return base.replace(**changes)
