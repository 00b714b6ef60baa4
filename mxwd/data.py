"""Generating the data set, and iterating over it in minibatches.

The labels follow the source's linear model

    y = true_b + sum_i true_w * x_i + eps,   x ~ N(0, I_p),  eps ~ N(0, noise^2),

drawn with MXNet's generator exactly as the source does: first the features of all
n_train + n_test examples, then the noise. The first n_train rows are the training set.

One seed fixes everything random in a run: `mx.random.seed(seed)` before the features,
the noise and then the initial weights (drawn by the model, in that order), and
`numpy.random.default_rng(seed)` for the batch order, one permutation per epoch.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator, Tuple

import numpy as np

from mxwd import limits
from mxwd._mx import mx, nd
from mxwd.config import Config, check_int, resolve


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
