"""The command line: `mxwd reproduce | compare | sweep | atlas`, whose options are Config's fields.

Bad input ends in one line on stderr and exit status 2 (no traceback); Ctrl-C in one
line and exit status 130, with nothing half-written. MXNet is imported only once a
command runs, so `mxwd --help` answers at once.
"""
from __future__ import annotations

import argparse
import dataclasses
import os
import sys
from pathlib import Path
from typing import Any, Callable, Dict, Optional, Sequence

from mxwd.config import (
    DEFAULT_N_VALID,
    PARTIAL_BATCH_PENALTIES,
    BIAS_EXCLUSIONS,
    DEFAULT_PRESET,
    DTYPES,
    LOSS_REDUCTIONS,
    PRESETS,
    Config,
    field_names,
)

CHOICES = {"bias_exclusion": BIAS_EXCLUSIONS, "loss_reduction": LOSS_REDUCTIONS, "dtype": DTYPES,
           "partial_batch_penalty": PARTIAL_BATCH_PENALTIES}


class UsageError(Exception):
    """A command-line mistake: reported in one line, exit status 2."""


class Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, not usage + message
        raise UsageError(message)


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
NOT_USED = {
    "reproduce": set(),
    "compare": set(),
    "sweep": {"bias_exclusion", "hybridize", "clip_gradient"},  # the sweep trains the scratch path, unclipped
    "atlas": {"bias_exclusion", "hybridize", "clip_gradient", "partial_batch_penalty"},
    "distributed": {"bias_exclusion", "hybridize"},  # one Trainer, the bias out by wd_mult
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


def _add_output_options(parser: argparse.ArgumentParser, command: str) -> None:
    parser.add_argument("--out", type=Path, default=Path("results") / command, metavar="DIR",
                        help=f"folder for the results and figures (default results/{command})")
    parser.add_argument("--force", action="store_true", help="overwrite --out if it exists")
    parser.add_argument("--quiet", action="store_true", help="print no progress")
    parser.add_argument("--yes", action="store_true",
                        help="run even if the run is estimated (after its first epoch) to take over an hour")


def build_parser() -> Parser:
    parser = Parser(
        prog="mxwd",
        description="The weight-decay experiment of Dive into Deep Learning (gluonbook, 2018) on MXNet 1.9.1.",
    )
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
    swp.add_argument("--optimizer", nargs="+", default=["sgd"], metavar="NAME",
                     help="update rules to sweep, each over --lrs x --lambdas: sgd (the chapter's), adam "
                          "(MXNet's, wd coupled: Adam + L2), adamw, sgdw (mxwd.optim, decoupled) (default sgd)")
    swp.add_argument("--lrs", nargs="+", type=float, default=None, metavar="LR",
                     help="learning rates to sweep (default: --lr alone)")
    for name, text in (("beta1", "Adam family: beta1 (default 0.9)"), ("beta2", "Adam family: beta2 (default 0.999)"),
                       ("epsilon", "Adam family: epsilon (default 1e-8)"), ("momentum", "sgdw: momentum (default 0.5)")):
        swp.add_argument(f"--{name}", type=float, default=None, metavar="X", help=text)
    swp.add_argument("--n-valid", type=int, default=DEFAULT_N_VALID, metavar="N",
                     help=f"training examples held out to choose lambd by validation; 0 for none (default {DEFAULT_N_VALID})")
    atl = sub.add_parser("atlas", help="what wd does in every MXNet optimizer: coupled, decoupled or other, measured")
    from mxwd.optimizers import BY_NAME  # a table; MXNet is imported only when an optimizer is made

    atl.add_argument("--optimizers", nargs="+", default=None, metavar="NAME",
                     help=f"optimizers to measure (default: all): {', '.join(BY_NAME)}")
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
        _add_output_options(p, name)
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


def main(argv: Optional[Sequence[str]] = None) -> int:
    from mxwd import interrupt

    from mxwd import limits

    try:
        args = build_parser().parse_args(argv)
        with interrupt.installed(), limits.budget(None if args.yes else limits.CLI_BUDGET, not args.quiet):
            return COMMANDS[args.command](args)
    except (UsageError, ValueError) as err:
        print(f"mxwd: error: {_one_line(err)}", file=sys.stderr)
        return 2
    except OSError as err:  # e.g. the disk filled up while writing: nothing half-written stays
        print(f"mxwd: error: cannot write results: {_one_line(err)}", file=sys.stderr)
        return 2
    except _JobFailed as err:
        print(f"mxwd: error: the job failed: {err}; every process it started was ended", file=sys.stderr)
        return 1
    except MemoryError:
        print("mxwd: error: out of memory: reduce n_train, n_test, num_inputs, num_epochs or --seeds",
              file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("mxwd: interrupted; no partial results were written", file=sys.stderr)
        return 130
    except Exception as err:  # noqa: BLE001  (an internal failure: one line, never a traceback)
        if os.environ.get("MXWD_DEBUG"):
            raise
        print(f"mxwd: internal error: {_one_line(err)}; no partial results were written. Rerun with "
              "MXWD_DEBUG=1 for the traceback, and please report it", file=sys.stderr)
        return 1


def _one_line(err: BaseException) -> str:
    """An error message on one line (MXNet's carry C++ stack traces on the following lines)."""
    lines = [ln.strip() for ln in str(err).splitlines() if ln.strip()]
    if len(lines) > 1 and type(err).__name__ == "MXNetError":  # its last line is the message
        return next((ln for ln in reversed(lines) if ln.startswith("MXNetError:")), lines[-1])
    return " ".join(lines) if len(lines) < 4 else lines[0]


def _figure_names(saved) -> str:
    """'runs.png and published.png/.svg': each figure once, with the formats it was saved in."""
    names = []
    for paths in saved:
        stem = paths[0].stem
        names.append(stem + "." + "/.".join(p.suffix[1:] for p in paths))
    count = f"{len(names)} figure{'s' if len(names) != 1 else ''}"
    return f"{count}: {', '.join(names)}"


def entry() -> None:
    """The console script: `main()`, then exit at once.

    After a command has written and closed its files and flushed its output, nothing is
    left for the interpreter's shutdown to do but MXNet's exit hooks, which take about
    0.13 s (measured: `python -c "import mxwd._mx"` exits in 1.39 s, 1.26 s with
    os._exit). `main()` itself returns normally, for callers in the same process.
    """
    code = main()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def _say(args: argparse.Namespace, text: str) -> None:
    if not args.quiet:
        print(text, flush=True)


def _reproduce(args: argparse.Namespace) -> int:
    from mxwd.config import check_int
    from mxwd.published import PRESETS_WITH_NUMBERS
    from mxwd.results import read_json, save_figure, staged_dir, versions, write_json

    base = Config.from_dict(read_json(args.from_file)["config"]) if args.from_file else None
    config = config_from_args(args, base)
    preset_name = args.preset or DEFAULT_PRESET
    if args.seeds is not None:
        check_int(args.seeds, "seeds", minimum=1)
        if args.from_file:
            raise ValueError("--seeds and --from cannot be combined: --seeds checks a preset's published numbers")
        if preset_name not in PRESETS_WITH_NUMBERS:
            raise ValueError(f"--seeds: preset {preset_name!r} has no published numbers; "
                             f"allowed: {', '.join(PRESETS_WITH_NUMBERS)}")
    with staged_dir(args.out, args.force) as tmp:
        from mxwd import plot
        from mxwd.published import check_published
        from mxwd.reproduction import reproduce

        _say(args, f"mxwd reproduce: seed {config.seed}, lambdas {list(config.lambdas)}; writing {args.out}")
        result = reproduce(config)
        figures = [save_figure(plot.runs(result.runs), tmp / "runs", formats=("png",))]
        payload = {"command": "reproduce", "preset": None if base else preset_name,
                   "config": config.to_dict(), "versions": versions()}
        write_json(tmp / "results.json", {**payload, **result.to_dict()})
        check = None
        if args.seeds is not None:
            _say(args, f"placing {preset_name}'s published numbers among {args.seeds} seeded runs")
            check = check_published(preset_name, args.seeds, config)
            figures.append(save_figure(plot.published_distributions(check), tmp / "published"))
            write_json(tmp / "published.json", {**payload, **check.to_dict()})
    print(result.table())
    if check is not None:
        print()
        print(check.table())
    extra = ", published.json" if check is not None else ""
    print(f"wrote {args.out}/results.json{extra} and {_figure_names(figures)}")
    return 0


def _compare(args: argparse.Namespace) -> int:
    from mxwd.results import save_figure, staged_dir, versions, write_json

    config = config_from_args(args)
    with staged_dir(args.out, args.force) as tmp:
        from mxwd import plot
        from mxwd.comparison import compare

        _say(args, f"mxwd compare: seed {config.seed}, lambdas {list(config.lambdas)}; writing {args.out}")
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
            "comparisons": [c.to_dict() for c in comparisons],
            "mxnet_default": [c.to_dict() for c in defaults],
        })
    print("\n\n".join(c.table() for c in comparisons))
    if defaults:
        print("\nMXNet's default, one Trainer with wd on every parameter (the bias too), against the "
              "hand-written penalty on w only:")
        print("\n\n".join(c.table(epochs=False) for c in defaults))
    print(f"wrote {args.out}/compare.json" + (f" and {_figure_names(figures)}" if figures else ""))
    return 0


def _atlas(args: argparse.Namespace) -> int:
    from mxwd.results import save_figure, staged_dir, versions, write_atomic, write_json

    config = config_from_args(args)
    with staged_dir(args.out, args.force) as tmp:
        from mxwd import plot
        from mxwd.optimizer_atlas import atlas

        _say(args, f"mxwd atlas: lambd = wd = {max(config.lambdas):g}, lr = {config.lr:g}, seed {config.seed}; "
                   f"writing {args.out}")
        result = atlas(args.optimizers, config, progress=not args.quiet)
        write_json(tmp / "atlas.json", {"command": "atlas", "config": config.to_dict(), "versions": versions(),
                                        "lambd": result.lambd, "seconds": result.seconds,
                                        "optimizers": result.to_list()})
        write_atomic(tmp / "atlas.md", (result.table() + "\n").encode())
        figures = [save_figure(plot.atlas_distances(result), tmp / "atlas")]
    print(result.table())
    print(result.summary())
    print(f"wrote {args.out}/atlas.json, atlas.md and {_figure_names(figures)}")
    return 0


def _sweep(args: argparse.Namespace) -> int:
    from mxwd.config import check_int
    from mxwd.results import save_figure, staged_dir, versions, write_csv, write_json

    config = config_from_args(args)
    if args.lambdas is None:  # the sweep's default grid, not reproduce's (0, 5)
        from mxwd.sweeps import DEFAULT_GRID

        config = config.replace(lambdas=DEFAULT_GRID)
    n_seeds = check_int(args.seeds, "seeds", minimum=1)
    with staged_dir(args.out, args.force) as tmp:
        from mxwd import plot
        from mxwd.sweeps import sweep

        optimizers = list(dict.fromkeys(args.optimizer))
        multi = args.lrs is not None or optimizers != ["sgd"]
        _say(args, f"mxwd sweep: {', '.join(optimizers)}: {len(args.lrs or [config.lr])} lrs x "
                   f"{len(config.lambdas)} lambdas x {n_seeds} seeds; writing {args.out}")
        results = []
        for name in optimizers:
            overrides = {k: getattr(args, k) for k in ("beta1", "beta2", "epsilon", "momentum")
                         if getattr(args, k) is not None and (name in ("adam", "adamw") or k == "momentum")}
            if name != "sgdw":
                overrides.pop("momentum", None)
            results.append(sweep(config.lambdas, n_seeds, config, n_valid=args.n_valid, progress=not args.quiet,
                                 optimizer=name, lrs=args.lrs if multi else None, hyperparameters=overrides))
        figures = []
        if len(results) == 1 and not multi:
            figures += [save_figure(plot.regularization_path(results[0]), tmp / "regularization_path"),
                        save_figure(plot.weight_norm_path(results[0]), tmp / "weight_norm")]
        else:
            figures += [save_figure(plot.optimizer_heatmaps(results), tmp / "heatmap"),
                        save_figure(plot.optimizer_paths(results), tmp / "optimizer_paths")]
        write_csv(tmp / "sweep.csv", [row for r in results for row in r.rows()])
        write_json(tmp / "sweep.json", {"command": "sweep", "config": config.to_dict(), "versions": versions(),
                                        **(results[0].to_dict() if len(results) == 1 else
                                           {"sweeps": [r.to_dict() for r in results]})})
    print("\n\n".join(r.table() for r in results))
    if len(results) > 1 or multi:
        print()
        print(optimizer_summary(results))
    print(f"wrote {args.out}/sweep.json, sweep.csv and {_figure_names(figures)}")
    return 0


def optimizer_summary(results) -> str:
    """Per optimizer: the best median test loss (at which lr and lambd) and the best lambd at each lr."""
    import numpy as np

    lines = ["best median final test loss per optimizer, and the best lambd at each lr:"]
    for r in results:
        grid = r.by_lr(r.band("final_test_ls").median)
        if not np.isfinite(grid).any():
            lines.append(f"  {r.optimizer}: every model diverged")
            continue
        i, j = np.unravel_index(np.nanargmin(grid), grid.shape)
        per_lr = []
        for k, lr in enumerate(r.lrs):
            row = grid[k]
            per_lr.append(f"{lr:.2g}: {r.lambdas[int(np.nanargmin(row))]:.3g}" if np.isfinite(row).any()
                          else f"{lr:.2g}: diverged")
        lines.append(f"  {r.optimizer:>5}: {grid[i, j]:.4g} at lr {r.lrs[i]:.3g}, lambd {r.lambdas[j]:.3g}; "
                     f"best lambd by lr: {', '.join(per_lr)}")
    return "\n".join(lines)


def _distributed(args: argparse.Namespace) -> int:
    import time

    from mxwd.results import save_figure, staged_dir, versions, write_json

    config = config_from_args(args)
    with staged_dir(args.out, args.force) as tmp:
        from mxwd import plot
        from mxwd.parallel import JobError, distributed
        from mxwd.reproduction import reproduce

        _say(args, f"mxwd distributed: {args.workers} workers, {args.servers} server(s), {args.kvstore}, "
                   f"update_on_kvstore={args.update_on_kvstore}, seed {config.seed}; writing {args.out}")
        start = time.perf_counter()
        try:
            result = distributed(config, workers=args.workers, servers=args.servers, kvstore=args.kvstore,
                                 update_on_kvstore=args.update_on_kvstore, port=args.port, timeout=args.timeout)
        except JobError as err:
            raise _JobFailed(str(err)) from None
        seconds = time.perf_counter() - start
        single = reproduce(config)
        gaps = [{"path": d.path, "lambd": d.lambd, "max_dw": max(abs(a - b) for a, b in zip(d.w, s.w)),
                 "db": abs(d.b - s.b)} for d, s in zip(result.runs, single.runs)]
        figures = [save_figure(plot.runs(result.runs), tmp / "runs", formats=("png",))]
        write_json(tmp / "results.json", {"command": "distributed", "config": config.to_dict(), "versions": versions(),
                                          "workers": args.workers, "servers": args.servers, "kvstore": args.kvstore,
                                          "update_on_kvstore": args.update_on_kvstore, "seconds": seconds,
                                          "against_reproduce": gaps, **result.to_dict()})
    print(result.table())
    print(f"against mxwd reproduce (the single-process run, same seed and global batch), {args.kvstore}:")
    for g in gaps:
        print(f"  {g['path']:<8} lambd={g['lambd']:g}: max |dw| = {g['max_dw']:.3g}, |db| = {g['db']:.3g}")
    print(f"{len(config.lambdas) + 1} jobs in {seconds:.1f} s; wrote {args.out}/results.json and {_figure_names(figures)}")
    return 0


class _JobFailed(Exception):
    """A data-parallel job failed: one line, exit status 1."""


COMMANDS: Dict[str, Callable[[argparse.Namespace], int]] = {
    "reproduce": _reproduce,
    "compare": _compare,
    "sweep": _sweep,
    "atlas": _atlas,
    "distributed": _distributed,
}
