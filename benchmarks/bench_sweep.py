"""Training many (lambd, seed) models: the batched sweep against one model at a time.

    python benchmarks/bench_sweep.py [--repeats 5]

At the source's settings (batch 1, 10 epochs, 200 steps per model), prints
- the wall time of mxwd.sweep for 1000 models (50 lambdas x 20 seeds), median of repeats,
  split into drawing the data (make_data + initial w per seed) and training;
- in the same run, the one-model-at-a-time MXNet path (mxwd.fit_and_plot; timed on 20
  models and scaled to 1000) and a one-model-at-a-time NumPy loop of the same update
  (timed on 200 models and scaled), with the ratios;
- the scaling for 10, 100, 1000 and 10,000 models, and the peak memory (max RSS, each
  size in a fresh process) of a sweep.
"""
from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time

import numpy as np

import mxwd
from mxwd.config import Config
from mxwd.data import batch_orders
from mxwd.sweeps import _seed_arrays

CONFIG = Config()


def numpy_fit(X, y, w0, lambd, orders, lr=0.003):
    """The source's update for one model, in plain NumPy (float32)."""
    w, b = w0.copy(), np.float32(0)
    decay = np.float32(1 - lr * lambd)
    for order in orders:
        for i in order:
            r = X[i] @ w + b - y[i]
            w = decay * w - np.float32(lr) * X[i] * r
            b = b - np.float32(lr) * r
    return w, b


def timed(fn, repeats):
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def grid(n_models):
    n_lambdas = 50 if n_models >= 50 else n_models
    return tuple(np.logspace(-3, 2.5, n_lambdas)), list(range(n_models // n_lambdas))


def peak_rss_mb(n_models):
    """Peak resident memory of one sweep above what the process held before it (Linux:
    /proc/self/clear_refs resets the high-water mark VmHWM)."""
    code = (
        "import mxwd, mxwd.sweeps; from benchmarks.bench_sweep import grid, vm; "
        "mxwd.sweep((0.1,), [0]); base = vm('VmRSS'); open('/proc/self/clear_refs', 'w').write('5'); "
        f"l, s = grid({n_models}); mxwd.sweep(l, s); print((vm('VmHWM') - base) / 1024)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    return float(out.stdout.strip())


def vm(field):
    """A /proc/self/status memory field, in kB."""
    for line in open("/proc/self/status"):
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise KeyError(field)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    lambdas, seeds = grid(1000)
    mxwd.sweep(lambdas[:2], seeds[:2])  # warm up

    total = timed(lambda: mxwd.sweep(lambdas, seeds), args.repeats)
    draw = timed(lambda: _seed_arrays(CONFIG, seeds, CONFIG.n_train), args.repeats)
    train = total - draw

    few = [(l, s) for s in seeds[:2] for l in lambdas[:10]]  # 20 models
    one_mx = timed(lambda: [mxwd.fit_and_plot(l, CONFIG, seed=s) for l, s in few], 1) / len(few) * 1000

    arrays, _ = _seed_arrays(CONFIG, seeds, CONFIG.n_train)
    data = [(arrays["Xtr"][k].asnumpy(), arrays["ytr"][k].asnumpy()[:, 0], arrays["w0"][k].asnumpy()[:, 0],
             batch_orders(CONFIG, s)) for k, s in enumerate(seeds)]
    many = [(l, k) for k in range(len(seeds)) for l in lambdas[:10]]  # 200 models
    one_np = timed(lambda: [numpy_fit(*data[k][:3], l, data[k][3]) for l, k in many], 1) / len(many) * 1000

    print(f"1000 models (50 lambdas x 20 seeds), {CONFIG.steps} steps each; median of {args.repeats}")
    print(f"  mxwd.sweep: {total:.3f} s in all = {draw:.3f} s drawing data + {train:.3f} s training")
    print(f"  one model at a time, MXNet (fit_and_plot): {one_mx:.1f} s  ({one_mx / total:.0f}x the sweep)")
    print(f"  one model at a time, NumPy loop:            {one_np:.2f} s  ({one_np / total:.1f}x the sweep)")
    print("scaling (seconds for the whole sweep() call; peak RSS above the imports, fresh process):")
    for n in (10, 100, 1000, 10000):
        l, s = grid(n)
        seconds = timed(lambda: mxwd.sweep(l, s), 1 if n == 10000 else args.repeats)
        print(f"  {n:>6} models ({len(l)} x {len(s)}): {seconds:7.3f} s, {1000 * seconds / n:7.3f} ms/model, "
              f"peak RSS +{peak_rss_mb(n):.0f} MB")


if __name__ == "__main__":
    main()
