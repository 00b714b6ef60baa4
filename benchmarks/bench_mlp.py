"""Where the time of `mxwd mlp` goes, in one process: imports, setup, each activation's two
paths, the BatchNorm pair, the figures and the files.

    python benchmarks/bench_mlp.py [--repeats 3] [MLPConfig fields as --name value ...]

Each repeat is a whole default run (about 20-30 s on 2 idle cores); the table shows the
median over repeats of each stage, and the share of the total. The imports are timed once
(a second import in the same process is free). Extra options are MLPConfig fields, e.g.
`--num-epochs 20 --hidden-units 64`, to see how a stage scales.
"""
from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path


def main() -> None:
    t0 = time.perf_counter()
    import mxwd._mx  # noqa: F401  (MXNet and its engine)
    t1 = time.perf_counter()
    import sklearn.datasets  # noqa: F401
    t2 = time.perf_counter()
    import matplotlib.figure  # noqa: F401
    t3 = time.perf_counter()
    from mxwd import mlp_plot
    from mxwd.cli.mlp import add_options, config_from_args
    from mxwd.mlps import mlp
    from mxwd.results import save_figure, write_json

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    add_options(parser)
    args = parser.parse_args()
    config = config_from_args(args)
    print(f"imports (once): MXNet {t1 - t0:.2f} s, sklearn.datasets {t2 - t1:.2f} s, matplotlib {t3 - t2:.2f} s")
    print(f"settings: {config!r} ({config.steps} SGD steps per run)")
    stages: dict = {}
    for _ in range(args.repeats):
        start = time.perf_counter()
        result = mlp(config)
        trained = time.perf_counter()
        with tempfile.TemporaryDirectory() as tmp:
            figures = [mlp_plot.lambd_effects(result), mlp_plot.weight_norm_histograms(result)]
            if result.batchnorm is not None:
                figures.append(mlp_plot.batchnorm(result.batchnorm))
            for i, fig in enumerate(figures):
                save_figure(fig, Path(tmp) / f"f{i}", formats=("png",))
            drawn = time.perf_counter()
            write_json(Path(tmp) / "mlp.json", result.to_dict())
            written = time.perf_counter()
        times = dict(result.seconds)
        times["(training and measuring, total)"] = trained - start
        times["figures (draw and save PNG)"] = drawn - trained
        times["mlp.json"] = written - drawn
        times["whole run"] = written - start
        for name, seconds in times.items():
            stages.setdefault(name, []).append(seconds)
    total = statistics.median(stages["whole run"])
    runs_per_path = len(config.lambdas)
    print(f"median of {args.repeats} run(s); each activation/path is {runs_per_path} lambdas x {config.num_epochs} epochs")
    for name, values in stages.items():
        median = statistics.median(values)
        print(f"  {name:<34} {median:7.2f} s  {100 * median / total:5.1f}%  (min {min(values):.2f}, max {max(values):.2f})")


if __name__ == "__main__":
    main()
