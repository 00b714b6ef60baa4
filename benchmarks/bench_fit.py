"""Milliseconds per single run at the source's settings, measured side by side.

    python benchmarks/bench_fit.py [--repeats 15]

Prints the median ms per run (the variants timed in turn, round-robin) of:
- mxwd.fit_and_plot (from scratch: NDArray + autograd + the manual sgd step);
- a naive baseline of the same loop, written as the source writes it: an index NDArray
  and `take` per batch (gb.data_iter), and `param[:] = param - lr * grad / B` (gb.sgd);
- mxwd.fit_and_plot_gluon, imperative and hybridized;
and the ratio baseline / mxwd; then what the parts of one scratch step cost. The MXNet engine is the one mxwd picks (NaiveEngine unless
MXNET_ENGINE_TYPE is set); run with MXNET_ENGINE_TYPE=ThreadedEnginePerDevice to compare.
"""
from __future__ import annotations

import argparse
import os
import random
import statistics
import time


if not os.environ.get("MXNET_ENGINE_TYPE"):  # as the command line runs (mxwd.cli.process_settings)
    os.environ["MXNET_ENGINE_TYPE"] = "NaiveEngine"

import mxwd
from mxwd._mx import autograd, mx, nd
from mxwd.config import Config
from mxwd.data import make_data
from mxwd.scratch import init_params, l2_penalty, linreg, squared_loss


def naive_fit(lambd: float, config: Config, seed: int) -> float:
    """The source's loop as printed (gb.data_iter with take per batch, gb.sgd with setitem)."""
    data = make_data(config, seed)
    w, b = params = init_params(config)
    random.seed(seed)
    train_ls = []
    for _ in range(config.num_epochs):
        indices = list(range(config.n_train))
        random.shuffle(indices)
        for i in range(0, config.n_train, config.batch_size):
            j = nd.array(indices[i : min(i + config.batch_size, config.n_train)])
            X, y = data.train_features.take(j), data.train_labels.take(j)
            with autograd.record():
                l = squared_loss(linreg(X, w, b), y) + lambd * l2_penalty(w)
            l.backward()
            for param in params:
                param[:] = param - config.lr * param.grad / config.batch_size
        train_ls.append(squared_loss(linreg(data.train_features, w, b), data.train_labels).mean().asscalar())
        squared_loss(linreg(data.test_features, w, b), data.test_labels).mean().asscalar()
    return train_ls[-1]


def median_ms(variants: dict, repeats: int) -> dict:
    """Median ms per call of each variant, timed round-robin so that noise hits all alike."""
    for fn in variants.values():
        fn()  # warm up
    times = {name: [] for name in variants}
    for _ in range(repeats):
        for name, fn in variants.items():
            start = time.perf_counter()
            fn()
            times[name].append((time.perf_counter() - start) * 1000)
    return {name: statistics.median(t) for name, t in times.items()}


def step_breakdown(config: Config, k: int = 2000) -> dict:
    """Microseconds per call of the parts of one scratch step (batch 1, lambd = 5)."""
    from mxwd.policy import chapter_policy
    from mxwd.scratch import sgd

    data = make_data(config, 0)
    params = init_params(config)
    w, b = params
    named = {"w": w, "b": b}
    policy = chapter_policy(named, config)  # what ScratchModel penalizes: w
    X, y = data.train_features[:1], data.train_labels[:1]

    def forward():
        with autograd.record():
            return squared_loss(linreg(X, w, b), y) + 5.0 * policy.penalty(named)

    parts = {
        "forward, recorded (10 operators)": forward,
        "forward + backward()": lambda: forward().backward(),
        "sgd (two fused sgd_update calls)": lambda: sgd(params, 0.0, 1),
        "two slices (the minibatch)": lambda: (data.train_features[3:4], data.train_labels[3:4]),
    }
    out = {}
    for name, fn in parts.items():
        fn()
        start = time.perf_counter()
        for _ in range(k):
            fn()
        out[name] = (time.perf_counter() - start) / k * 1e6
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=15)
    args = parser.parse_args()
    config = Config()
    print(f"engine: {os.environ.get('MXNET_ENGINE_TYPE')}, mxnet {mx.__version__}, "
          f"{config.steps} SGD steps per run, median of {args.repeats} runs")
    hybrid = config.replace(hybridize=True)
    variants = {}
    for lambd in config.lambdas:
        variants[("mxwd", lambd)] = lambda lambd=lambd: mxwd.fit_and_plot(lambd, config)
        variants[("naive", lambd)] = lambda lambd=lambd: naive_fit(lambd, config, 0)
        variants[("gluon", lambd)] = lambda lambd=lambd: mxwd.fit_and_plot_gluon(lambd, config)
        variants[("hybrid", lambd)] = lambda lambd=lambd: mxwd.fit_and_plot_gluon(lambd, hybrid)
    ms = median_ms(variants, args.repeats)
    print(f"{'lambd':>5} {'fit_and_plot':>13} {'naive loop':>11} {'ratio':>6} {'gluon':>8} {'hybridized':>11}")
    for lambd in config.lambdas:
        ours, naive = ms[("mxwd", lambd)], ms[("naive", lambd)]
        print(f"{lambd:>5g} {ours:>10.1f} ms {naive:>8.1f} ms {naive / ours:>5.2f}x "
              f"{ms[('gluon', lambd)]:>5.1f} ms {ms[('hybrid', lambd)]:>8.1f} ms")
    print("where a scratch step's time goes (us per call):")
    for name, us in step_breakdown(config).items():
        print(f"  {name:<34} {us:7.1f}")


if __name__ == "__main__":
    main()
