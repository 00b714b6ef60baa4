"""Before and after, side by side: the engines' speed at an earlier commit and in this tree.

    python benchmarks/bench_engines.py [--before REV] [--repeats N]

REV (default 12a32e3, the last commit before the decay policy and the step plan) is
unpacked with `git archive` into a temporary folder. Each round runs one fresh process
per tree, in turn (so that load on the machine hits both alike), and each process times
every task once after a warm-up. The tasks:

- fit_and_plot: the chapter's scratch run, lambd = 5 (the source's settings);
- fit_and_plot_gluon: the Gluon run, wd = 5;
- sweep (fast): 50 lambdas x 20 seeds, the default engine, no validation;
- sweep (optimizer): sgd and adamw over 5 lrs x 10 lambdas x 4 seeds;
- atlas: sgd, adam, adamw.

It prints the median time of each task per tree and the ratio after / before. Both trees
run with MXNET_ENGINE_TYPE=NaiveEngine, which `mxwd`'s command line sets.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def tasks():
    import numpy as np

    import mxwd
    from mxwd.config import Config

    lambdas = tuple(float(v) for v in np.logspace(-3, 2.5, 50))
    lrs = (0.0003, 0.001, 0.003, 0.01, 0.03)
    return {
        "fit_and_plot": lambda: mxwd.fit_and_plot(5.0, Config()),
        "fit_and_plot_gluon": lambda: mxwd.fit_and_plot_gluon(5.0, Config()),
        "sweep (fast)": lambda: mxwd.sweep(lambdas, 20, Config(), n_valid=0),
        "sweep (optimizer sgd)": lambda: mxwd.sweep(lambdas[::5], 4, Config(), n_valid=0, optimizer="sgd", lrs=lrs),
        "sweep (optimizer adamw)": lambda: mxwd.sweep(lambdas[::5], 4, Config(), n_valid=0, optimizer="adamw",
                                                      lrs=lrs),
        "atlas": lambda: mxwd.atlas(["sgd", "adam", "adamw"], Config()),
    }


def worker() -> None:
    times = {}
    for name, task in tasks().items():
        task()  # warm-up: imports, first allocations
        start = time.perf_counter()
        task()
        times[name] = time.perf_counter() - start
    print(json.dumps(times))


def run_tree(path: Path) -> dict:
    env = {**os.environ, "PYTHONPATH": str(path), "MXNET_ENGINE_TYPE": "NaiveEngine"}
    out = subprocess.run([sys.executable, str(Path(__file__).resolve()), "--worker"], env=env, cwd=path,
                         capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", default="12a32e3", help="the earlier commit (default 12a32e3)")
    parser.add_argument("--repeats", type=int, default=3, help="rounds (default 3)")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker()
        return
    with tempfile.TemporaryDirectory(prefix="mxwd-bench-") as tmp:
        before = Path(tmp) / "before"
        before.mkdir()
        archive = subprocess.run(["git", "-C", str(ROOT), "archive", args.before], capture_output=True, check=True)
        subprocess.run(["tar", "-x", "-C", str(before)], input=archive.stdout, check=True)
        results = {"before": [], "after": []}
        for r in range(args.repeats):
            for label, path in (("before", before), ("after", ROOT)):
                results[label].append(run_tree(path))
            print(f"round {r + 1} of {args.repeats} done", file=sys.stderr)
    names = list(results["after"][0])
    print(f"median of {args.repeats} rounds, one fresh process per tree per round; before = {args.before}")
    print(f"{'task':<26} {'before':>9} {'after':>9} {'after/before':>13}")
    for name in names:
        b = statistics.median(t[name] for t in results["before"])
        a = statistics.median(t[name] for t in results["after"])
        print(f"{name:<26} {b:>8.3f}s {a:>8.3f}s {a / b:>13.2f}")


if __name__ == "__main__":
    main()
