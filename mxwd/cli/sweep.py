"""`mxwd sweep`: many (lr, lambd, seed) models at once: regularization paths, validation, optimizers."""
from __future__ import annotations

import argparse

from mxwd.cli.common import figure_names, say
from mxwd.cli.options import config_from_args


def run(args: argparse.Namespace) -> int:
    from mxwd.config import check_int
    from mxwd.results import save_figure, staged_dir, versions, write_csv, write_json

    from mxwd.sweeps import DEFAULT_GRID, DEFAULT_PAPER_GRID, PAPER_OPTIMIZERS

    config = config_from_args(args)
    if args.lambdas is None:  # the sweep's default grid, not reproduce's (0, 5)
        config = config.replace(lambdas=DEFAULT_GRID)
    # the paper's convention has its own lambdas (the decay per step, < 2): --paper-lambdas
    from mxwd.config import check_lambd

    paper_lambdas = tuple(check_lambd(v, "--paper-lambdas")
                          for v in (DEFAULT_PAPER_GRID if args.paper_lambdas is None else args.paper_lambdas))
    n_seeds = check_int(args.seeds, "seeds", minimum=1)
    optimizers = list(dict.fromkeys(args.optimizer))
    from mxwd.optimizer_sweeps import hyperparameters_for
    from mxwd.optimizers import sweep_flags

    given = {k: getattr(args, k) for k in sweep_flags() if getattr(args, k) is not None}
    per_optimizer = hyperparameters_for(optimizers, given)
    if args.lrs is not None or optimizers != ["sgd"]:  # refused before anything is written
        from mxwd.sweep_engines import check_optimizer_pairing

        check_optimizer_pairing(config)
    if args.paper_lambdas is not None and not set(optimizers) & set(PAPER_OPTIMIZERS):
        raise ValueError(f"--paper-lambdas applies to {', '.join(PAPER_OPTIMIZERS)}, not to --optimizer "
                         f"{' '.join(optimizers)}; leave it out or add one of those optimizers")
    if args.lambdas is not None and set(optimizers) <= set(PAPER_OPTIMIZERS):
        raise ValueError(f"--lambdas does not apply to {', '.join(optimizers)}: their lambd is the paper's, the "
                         "decay per step; give --paper-lambdas instead (values below 2)")
    with staged_dir(args.out, args.force) as tmp:
        from mxwd import plot
        from mxwd.sweeps import sweep

        multi = args.lrs is not None or optimizers != ["sgd"]
        lambdas = {name: paper_lambdas if name in PAPER_OPTIMIZERS else config.lambdas for name in optimizers}
        say(args, f"mxwd sweep: {', '.join(optimizers)}: {len(args.lrs or [config.lr])} lrs x "
                   f"{' or '.join(sorted({str(len(v)) for v in lambdas.values()}))} lambdas x {n_seeds} seeds; "
                   f"writing {args.out}")
        results = []
        for name, overrides in per_optimizer.items():
            results.append(sweep(lambdas[name], n_seeds, config, n_valid=args.n_valid, progress=not args.quiet,
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
        from mxwd.optimizer_sweeps import summary

        print(summary(results))
    print(f"wrote {args.out}/sweep.json, sweep.csv and {figure_names(figures)}")
    return 0

