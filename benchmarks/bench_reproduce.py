"""`mxwd reproduce` as a whole process, beside `python -c "import mxnet"`, in one run.

    python benchmarks/bench_reproduce.py [--repeats 7]

Times both commands in turn (round-robin, so machine noise hits both alike) and prints
their median wall times and the ratio: how much a reproduction costs beyond importing
MXNet. Then, in one process, where the time goes: importing MXNet, importing matplotlib,
the four training runs, and drawing and saving the figure.
"""
from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def wall(cmd):
    start = time.perf_counter()
    subprocess.run(cmd, check=True, capture_output=True, cwd=ROOT)
    return time.perf_counter() - start


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    out = os.path.join(tempfile.mkdtemp(), "reproduce")
    commands = {
        "mxwd reproduce": [sys.executable, "-m", "mxwd", "reproduce", "--out", out, "--force", "--quiet"],
        'python -c "import mxnet"': [sys.executable, "-c", "import mxnet"],
    }
    times = {name: [] for name in commands}
    for _ in range(args.repeats):
        for name, cmd in commands.items():
            times[name].append(wall(cmd))
    medians = {name: statistics.median(t) for name, t in times.items()}
    for name, t in times.items():
        print(f"{name:<28} median {medians[name]:.2f} s  (min {min(t):.2f}, max {max(t):.2f}, {args.repeats} runs)")
    reproduce, import_mxnet = medians.values()
    print(f"ratio reproduce / import mxnet: {reproduce / import_mxnet:.2f}")

    code = (
        "import time, pathlib, tempfile; t0 = time.perf_counter(); import mxwd._mx; t1 = time.perf_counter(); "
        "import mxwd.plot; t2 = time.perf_counter(); import mxwd; from mxwd.reproduction import reproduce; "
        "r = reproduce(mxwd.Config()); t3 = time.perf_counter(); from mxwd.results import save_figure; "
        "save_figure(mxwd.plot.runs(r.runs), pathlib.Path(tempfile.mkdtemp()) / 'runs', formats=('png',)); "
        "t4 = time.perf_counter(); "
        "print(f'in one process: import MXNet {t1 - t0:.2f} s, import matplotlib {t2 - t1:.2f} s, '"
        "f'4 training runs {t3 - t2:.2f} s, figure {t4 - t3:.2f} s')"
    )
    print(subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True,
                         cwd=ROOT).stdout.strip())


if __name__ == "__main__":
    main()
