"""Generating the data set, and iterating over it in minibatches.

The labels follow the source's linear model

    y = true_b + sum_i true_w * x_i + eps,   x ~ N(0, I_p),  eps ~ N(0, noise^2),

drawn with MXNet's generator exactly as the source does: first the features of all
n_train + n_test examples, then the noise. The first n_train rows are the training set.

One seed fixes everything random in a run: `mx.random.seed(seed)` before the features,
the noise and then the initial weights (drawn by the model, in that order), and
`numpy.random.default_rng(seed)` for the batch order, one permutation per epoch.

Which initial weights a run draws is `config.pairing`, decided in one place, `init_block`:
- "shared": every run of a seed draws the first block of num_inputs normals after the
  data, so all runs (every lambd, both paths) start from the same w: paired runs.
- "notebook": the book's own order. Its notebook ran every cell in one kernel, and a
  fresh MXNet process draws what `mx.random.seed(0)` draws: the data once, then each
  `fit_and_plot(lambd)` (the scratch cells, config.lambdas in order) and then each
  `fit_and_plot_gluon(lambd)` (the Gluon net's initializer draws the same 200 normals)
  drew its own initial w from the continued stream. Run k starts from block k.
The batch order stays numpy's `default_rng(seed)` under either pairing (the book's
was unseeded, and cannot be recovered).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator, Optional, Tuple

import numpy as np

from mxwd import limits
from mxwd._mx import mx, nd
from mxwd.config import Config, check_choice, check_int, resolve

PATHS = ("scratch", "gluon")  # the book's cells: every scratch run, then every Gluon run


@dataclass(frozen=True)
class Dataset:
    """Training and test sets (NDArrays; labels have shape (n, 1))."""

    train_features: "nd.NDArray"
    train_labels: "nd.NDArray"
    test_features: "nd.NDArray"
    test_labels: "nd.NDArray"


def make_data(config: Config, seed: int | None = None) -> Dataset:
    """Seed MXNet's generator and draw the source's data set.

    Leaves the generator right after the noise, where the source draws the initial w.
    The draws are made in float32 (the book's numbers) and cast to `config.dtype`.
    """
    config = resolve(config, seed)
    limits.check_size(config)  # before anything is allocated
    mx.random.seed(config.seed)
    n = config.n_train + config.n_test
    features = nd.random.normal(shape=(n, config.num_inputs))
    true_w = nd.ones((config.num_inputs, 1)) * config.true_w
    labels = nd.dot(features, true_w) + config.true_b
    if config.noise > 0:
        labels += nd.random.normal(scale=config.noise, shape=labels.shape)
    else:  # MXNet rejects scale=0; draw anyway so the initial w that follows is the same
        labels += nd.random.normal(shape=labels.shape) * 0
    features, labels = features.astype(config.dtype), labels.astype(config.dtype)
    return Dataset(
        train_features=features[: config.n_train],
        train_labels=labels[: config.n_train],
        test_features=features[config.n_train :],
        test_labels=labels[config.n_train :],
    )


def init_block(config: Config, path: str, index: int, n_runs: Optional[int] = None) -> int:
    """How many blocks of initial parameters MXNet's stream draws, after the data, before the
    `index`-th run of `path` draws its own (block 0 is the first block after the data).

    pairing="shared": 0 for every run. pairing="notebook": the run's place among the book's
    cells, the n_runs scratch runs (default: one per config.lambdas) then the n_runs Gluon
    runs: `index` for the scratch path, n_runs + index for Gluon. Every engine reads this.
    """
    check_choice(path, "path", PATHS)
    n_runs = len(config.lambdas) if n_runs is None else n_runs
    index = check_int(index, "index", minimum=0, maximum=n_runs - 1)
    if config.pairing == "shared":
        return 0
    return index if path == "scratch" else n_runs + index


def run_index(config: Config, lambd: float) -> int:
    """The place of `lambd` among config.lambdas (its cell), which pairing="notebook" needs to
    find a run's initial w; 0 under "shared", where every run draws the same block."""
    if config.pairing == "shared":
        return 0
    if lambd not in config.lambdas:
        raise ValueError(
            f"lambd={lambd:g} is not one of config.lambdas={list(config.lambdas)}: under pairing='notebook' the "
            "k-th run of the book's cells draws the k-th initial w after the data, so a run needs its cell; "
            "allowed: a lambd of config.lambdas, or pairing='shared'"
        )
    return config.lambdas.index(lambd)


def skip_init_blocks(config: Config, blocks: int) -> None:
    """Advance MXNet's generator past `blocks` initial-parameter blocks: the draws that
    `init_params` (and the Gluon net's initializer) would make, discarded."""
    for _ in range(blocks):
        nd.random.normal(scale=config.init_scale, shape=(config.num_inputs, 1))


def make_run_data(config: Config, path: str, lambd: float) -> Dataset:
    """`make_data`, then the generator advanced to where the run (path, lambd) draws its
    initial parameters under config.pairing (`init_block`)."""
    data = make_data(config)
    skip_init_blocks(config, init_block(config, path, run_index(config, lambd)))
    return data


def epoch_orders(config: Config, seed: int | None = None, n: int | None = None) -> Iterator[np.ndarray]:
    """The order in which each epoch visits the n training rows, one epoch at a time.

    One permutation per epoch from `numpy.random.default_rng(seed)` (the source shuffled
    with Python's `random`, unseeded). `n` defaults to config.n_train.
    """
    seed = config.seed if seed is None else seed
    n = config.n_train if n is None else n
    rng = np.random.default_rng(seed)
    for _ in range(config.num_epochs):
        yield rng.permutation(n)


def batch_orders(config: Config, seed: int | None = None, n: int | None = None) -> np.ndarray:
    """All of `epoch_orders` at once: shape (num_epochs, n)."""
    return np.stack(list(epoch_orders(config, seed, n)))


def data_iter(
    batch_size: int, features: "nd.NDArray", labels: "nd.NDArray", order: np.ndarray
) -> Iterator[Tuple["nd.NDArray", "nd.NDArray"]]:
    """Yield (X, y) minibatches of `batch_size` rows in the given order; the last may be partial.

    Same semantics as the source's `gb.data_iter` (shuffled rows, consecutive chunks), but
    the order is passed in (drawn from the run's seeded generator) and the rows are
    gathered once per epoch with one `take`, then sliced: a `take` with a fresh index
    NDArray per batch costs about 40x more than a slice.
    """
    batch_size = check_int(batch_size, "batch_size", minimum=1)  # checked now, not at first next()
    index = nd.array(order, dtype="int64")
    return _batches(batch_size, features.take(index), labels.take(index), len(order))


def _batches(batch_size: int, features, labels, n: int):
    for i in range(0, n, batch_size):
        j = min(i + batch_size, n)
        yield features[i:j], labels[i:j]
