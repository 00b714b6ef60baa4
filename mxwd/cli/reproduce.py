"""`mxwd reproduce`: every lambd on both paths (and, with --seeds, what reproduces the published numbers and
where the rest fall among batch orders and seeded runs)."""
from __future__ import annotations

import argparse

from mxwd.cli.common import figure_names, say
from mxwd.cli.options import config_from_args
from mxwd.config import DEFAULT_PRESET


def run(args: argparse.Namespace) -> int:
    from mxwd.config import check_int
    from mxwd.published import PRESETS_WITH_NUMBERS
    from mxwd.results import save_figure, staged_dir, versions, write_json

    from mxwd.results import ADDED_LATER, config_to_rerun, fields_added_since

    base = config_to_rerun(args.from_file) if args.from_file else None
    predates = fields_added_since(args.from_file) if args.from_file else []
    if predates:
        say(args, f"--from {args.from_file} predates {', '.join(predates)}: rerun with "
                  f"{', '.join(f'{n}={ADDED_LATER[n]!r}' for n in predates)}, what its runs did")
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

        say(args, f"mxwd reproduce: seed {config.seed}, lambdas {list(config.lambdas)}, pairing {config.pairing}; "
                  f"writing {args.out}")
        result = reproduce(config)
        if not result.runs:
            first = result.not_trained[0]
            raise ValueError(f"no lambd could be trained ({len(result.not_trained)} runs {first.status}): "
                             f"{first.message}")
        figures = [save_figure(plot.runs(result.runs), tmp / "runs", formats=("png",))]
        payload = {"command": "reproduce", "preset": None if base else preset_name,
                   "config": config.to_dict(), "versions": versions()}
        write_json(tmp / "results.json", {**payload, **result.to_dict()})
        check = None
        if args.seeds is not None:
            say(args, f"checking {preset_name}'s published numbers: the book's stream, {args.seeds} batch orders, "
                      f"{args.seeds} seeded runs")
            check = check_published(preset_name, args.seeds, config, runs=result.runs)  # reuses the book's stream's runs
            figures.append(save_figure(plot.published_distributions(check), tmp / "published"))
            write_json(tmp / "published.json", {**payload, **check.to_dict()})
    print(result.table())
    if check is not None:
        print()
        print(check.table())
    extra = ", published.json" if check is not None else ""
    print(f"wrote {args.out}/results.json{extra} and {figure_names(figures)}")
    return 0
