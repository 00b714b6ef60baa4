"""The sweep engine against batched NumPy, side by side in one run, and its scaling.

    python benchmarks/bench_sweep.py [--repeats 7] [--max-models 100000]

At the source's settings (batch 1, 10 epochs, 200 steps per model), prints
- the training time of mxwd's fast engine for 1000 models (50 lambdas x 20 seeds) beside
  the same update batched in plain NumPy (float32, the weights as one (S, p, L) array,
  the obvious vectorization) on the same data and batch orders, timed in turn
  (round-robin) with the median of --repeats, and the ratio engine / NumPy;
- the time to draw the data (make_data and the initial w, per seed), which both need;
- the exact engine (fit_and_plot per model) on 20 models, scaled to 1000;
- the scaling for 10 to 100,000 models: wall time of the whole sweep() call and peak
  memory above the process's baseline (each size in a fresh process);
- `mxwd reproduce --preset d2lzh-2019 --seeds 100` as a whole process, and where its
  time goes;
- the optimizer engine (lr x lambd x seeds; mxwd.optimizer_sweeps) for every optimizer of
  the sweep (sgd, sgd+momentum, adam, adamw, sgdw, adamw-paper, sgdw-paper) on 1000 models
  (5 lrs x 10 lambdas x 20 seeds; the paper's convention on its own lambdas, below 2), per
  model, with the ratio of each to sgd in the same engine and to the fast plain-SGD engine.
"""
from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time

import numpy as np


if not os.environ.get("MXNET_ENGINE_TYPE"):  # as the command line runs (mxwd.cli.process_settings)
    os.environ["MXNET_ENGINE_TYPE"] = "NaiveEngine"

import mxwd
from mxwd.config import Config
from mxwd.optimizer_sweeps import SWEEP_OPTIMIZERS, hyperparameters
from mxwd.grid import seed_arrays as _seed_arrays
from mxwd.sweeps import PAPER_OPTIMIZERS, train_grid

CONFIG = Config()
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def numpy_batched(X, y, w0, lambdas, orders, lr=0.003):
    """The source's update for S seeds x L lambdas at once in NumPy (float32).

    X (S, n, p), y (S, n), w0 (S, p), orders (S, E, n). Per step, with x the step's rows:
    r = x . W + b - y;  W <- (1 - lr lambd) W - lr x r;  b <- b - lr r.
    """
    S, n, p = X.shape
    L = len(lambdas)
    W = np.repeat(w0[:, :, None], L, axis=2)
    b = np.zeros((S, L), np.float32)
    decay = (1 - np.float32(lr) * np.asarray(lambdas, np.float32)).astype(np.float32)
    step = np.float32(lr)
    for e in range(orders.shape[1]):
        Xe = np.take_along_axis(X, orders[:, e, :, None], axis=1)
        ye = np.take_along_axis(y, orders[:, e, :], axis=1)
        for i in range(n):
            x = Xe[:, i, :]
            r = np.einsum("sp,spl->sl", x, W) + b - ye[:, i, None]
            W *= decay
            W -= step * x[:, :, None] * r[:, None, :]
            b -= step * r
    return W, b


def grid(n_models):
    n_lambdas = 50 if n_models >= 50 else n_models
    return tuple(np.logspace(-3, 2.5, n_lambdas)), list(range(n_models // n_lambdas))


def vm(field):
    """A /proc/self/status memory field, in kB."""
    for line in open("/proc/self/status"):
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise KeyError(field)


def scaling_run(n_models):
    """(seconds, peak MB above baseline) of one sweep of n_models, in a fresh process."""
    code = (
        "import time, mxwd, mxwd.sweeps; from benchmarks.bench_sweep import grid, vm; "
        "mxwd.sweep((0.1,), [0], n_valid=0); base = vm('VmRSS'); open('/proc/self/clear_refs', 'w').write('5'); "
        f"l, s = grid({n_models}); t = time.perf_counter(); mxwd.sweep(l, s, n_valid=0); "
        "print(time.perf_counter() - t, (vm('VmHWM') - base) / 1024)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    seconds, mb = out.stdout.split()
    return float(seconds), float(mb)


def round_robin(variants, repeats):
    """Median seconds of each variant, timed in turn so that machine noise hits all alike."""
    times = {name: [] for name in variants}
    for _ in range(repeats):
        for name, fn in variants.items():
            start = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - start)
    return {name: statistics.median(t) for name, t in times.items()}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--max-models", type=int, default=100000)
    args = parser.parse_args()
    lambdas, seeds = grid(1000)
    arrays, orders = _seed_arrays(CONFIG, seeds, CONFIG.n_train)
    X = arrays["Xtr"].asnumpy()
    y = arrays["ytr"].asnumpy()[:, :, 0]
    w0 = arrays["w0"].asnumpy()[:, :, 0]
    train_grid(CONFIG, lambdas[:2], seeds[:2])  # warm up

    t = round_robin({
        "engine (draw + train)": lambda: train_grid(CONFIG, lambdas, seeds),
        "draw": lambda: _seed_arrays(CONFIG, seeds, CONFIG.n_train),
        "numpy": lambda: numpy_batched(X, y, w0, lambdas, orders),
    }, args.repeats)
    engine = t["engine (draw + train)"] - t["draw"]
    t_draw = t["draw"]
    few = [(lam, s) for s in seeds[:2] for lam in lambdas[:10]]
    start = time.perf_counter()
    for lam, s in few:
        mxwd.fit_and_plot(lam, CONFIG, seed=s)
    exact = (time.perf_counter() - start) / len(few) * 1000

    W, _ = numpy_batched(X, y, w0, lambdas, orders)
    g = train_grid(CONFIG, lambdas, seeds)
    agree = np.abs(W.transpose(0, 2, 1) - g.w).max()

    print(f"1000 models (50 lambdas x 20 seeds), {CONFIG.steps} steps each; medians of {args.repeats}, round-robin")
    print(f"  mxwd fast engine, training: {engine:.3f} s   (drawing the data: {t['draw']:.3f} s more)")
    print(f"  batched NumPy, training:    {t['numpy']:.3f} s")
    print(f"  ratio engine / NumPy: {engine / t['numpy']:.2f}   (max |w_engine - w_numpy| = {agree:.2g})")
    print(f"  exact engine (fit_and_plot per model, 20 timed, scaled): {exact:.1f} s for 1000")
    print("scaling (whole sweep() call, fresh process; peak RSS above the process's baseline):")
    n = 10
    while n <= args.max_models:
        seconds, mb = scaling_run(n)
        print(f"  {n:>7} models: {seconds:8.3f} s, {1000 * seconds / n:7.3f} ms/model, peak +{mb:.0f} MB")
        n *= 10
    lrs, lams = tuple(np.logspace(-4, -1, 5)), tuple(np.logspace(-3, 2, 10))
    paper_lams = tuple(np.logspace(-4, 0.25, 10))  # the paper's lambd is the decay per step: below 2
    engines = {name: (lambda name=name: train_grid(CONFIG, paper_lams if name in PAPER_OPTIMIZERS else lams, seeds,
                                                   optimizer=name, lrs=lrs, hp=hyperparameters(name)))
               for name in SWEEP_OPTIMIZERS}
    engines["fast plain-SGD engine"] = lambda: train_grid(CONFIG, lambdas, seeds)
    o = round_robin(engines, max(3, args.repeats // 2))
    print("optimizer engine, 1000 models (5 lrs x 10 lambdas x 20 seeds), training only (drawing the data subtracted):")
    trained = {name: seconds - t_draw for name, seconds in o.items()}
    width = max(map(len, SWEEP_OPTIMIZERS))
    for name in SWEEP_OPTIMIZERS:
        print(f"  {name:>{width}}: {trained[name]:.3f} s = {trained[name]:.3f} ms/model; "
              f"{trained[name] / trained['sgd']:.2f}x sgd in the same engine, "
              f"{trained[name] / trained['fast plain-SGD engine']:.1f}x the fast plain-SGD engine "
              f"({trained['fast plain-SGD engine']:.3f} s)")
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "mxwd", "reproduce", "--preset", "d2lzh-2019", "--seeds", "100",
                    "--out", os.path.join(ROOT, "results", ".bench-reproduce"), "--force", "--quiet"],
                   check=True, capture_output=True, cwd=ROOT)
    whole = time.perf_counter() - start
    from mxwd.config import preset
    from mxwd.published import check_published

    cfg = preset("d2lzh-2019")
    start = time.perf_counter()
    check_published("d2lzh-2019", list(range(100)), cfg)
    published = time.perf_counter() - start
    start = time.perf_counter()
    mxwd.reproduce(cfg)
    single = time.perf_counter() - start
    print(f"mxwd reproduce --preset d2lzh-2019 --seeds 100: {whole:.1f} s as a whole process; in-process: "
          f"the published check {published:.1f} s (100 seeds x 2 lambdas by the sweep, plus the real Gluon runs "
          f"(first seed, 2000 steps each) that confirm the sweep), the seed-0 reproduction {single:.1f} s (4 runs of 2000 steps); "
          "the rest is importing MXNet and saving figures")


if __name__ == "__main__":
    main()
