"""`mxwd exercises`: the chapter's exercises answered by measurement (mxwd.exercises).

Writes into `--out` (staged, never half-written): exercises.json (the config, versions and
the answers under keys "1".."6"), exercises.md (the markdown table) and the figures.
"""
from __future__ import annotations

import argparse
from typing import Any

from mxwd.cli.common import figure_names, say

EXERCISE_CHOICES = ("1", "2", "3", "4", "5", "6")


def add_parser(sub: Any) -> argparse.ArgumentParser:
    """The `exercises` subcommand on a subparsers object."""
    from mxwd.cli.options import add_output_options

    parser = sub.add_parser(
        "exercises", help="the chapter's exercises, answered by measurement",
        description="Answer the chapter's exercises: 1 lambd sweep, 2 validation / leave-one-out / evidence, "
                    "3 L1, 4 matrices (Frobenius), 5 other ways (early stopping, more data, input noise, "
                    "dropout), 6 the prior behind lambd (MAP, posterior mean, evidence).")
    parser.add_argument("--only", nargs="+", choices=EXERCISE_CHOICES, default=None, metavar="N",
                        help="run only these exercises (1..6)")
    parser.add_argument("--seeds", type=int, default=10, metavar="N",
                        help="seeds 0..N-1 for the multi-seed answers (default 10; exercise 5 uses the first 5)")
    add_output_options(parser, "exercises")
    parser.set_defaults(preset=None)  # mxwd.cli.options.default_out reads it
    return parser


def run(args: argparse.Namespace) -> int:
    from mxwd.config import Config, check_int
    from mxwd.results import save_figure, staged_dir, versions, write_atomic, write_json

    from pathlib import Path

    seeds = check_int(args.seeds, "seeds", minimum=1)
    if args.out is None:  # mxwd's parser fills it in (default_out); a bare argparse may not
        args.out = Path("results") / "exercises"
    config = Config()
    only = None if args.only is None else sorted(set(args.only))
    with staged_dir(args.out, args.force) as tmp:
        from mxwd import exercises_plot
        from mxwd.exercises import exercises

        say(args, f"mxwd exercises: {', '.join(only or EXERCISE_CHOICES)} on {seeds} seeds; writing {args.out}")
        result = exercises(config, seeds, only, progress=lambda text: say(args, text))
        answers = result.to_dict()
        figures = []
        if "1" in answers:
            figures.append(save_figure(exercises_plot.lambd_curves(answers["1"]), tmp / "lambd_curves", formats=("png",)))
        if "2" in answers:
            figures.append(save_figure(exercises_plot.selection(answers["2"]), tmp / "selection", formats=("png",)))
        if "3" in answers:
            figures.append(save_figure(exercises_plot.l1(answers["3"]), tmp / "l1", formats=("png",)))
        if "5" in answers:
            figures.append(save_figure(exercises_plot.other_methods(answers["5"]), tmp / "other_methods",
                                       formats=("png",)))
        write_json(tmp / "exercises.json", {"command": "exercises", "config": config.to_dict(), "seeds": seeds,
                                            "versions": versions(), **answers})
        write_atomic(tmp / "exercises.md", (result.table() + "\n").encode())
    print(result.table())
    print(f"wrote {args.out}/exercises.json, exercises.md and {figure_names(figures)}")
    return 0
