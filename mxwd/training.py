"""The epoch loop that both paths share: train, record the losses, stop on divergence.

A path supplies a `Model`: one SGD `step` on a minibatch, the mean `loss` on a data
set (without the penalty: that is what the source plots), and its parameters. This
module runs the epochs over the seeded batch order, records the train and test loss
after each, and turns the final parameters into a `FitResult`.
"""
from __future__ import annotations

import math
from typing import List, Protocol, Tuple

import numpy as np

from mxwd._mx import nd
from mxwd import interrupt, limits
from mxwd.config import Config
from mxwd.data import Dataset, data_iter, epoch_orders
from mxwd.results import FitResult


class DivergenceError(ValueError):
    """Training produced a non-finite loss (raised instead of returning NaN results)."""


class Model(Protocol):
    def step(self, X: "nd.NDArray", y: "nd.NDArray") -> None: ...
    def loss(self, X: "nd.NDArray", y: "nd.NDArray") -> "nd.NDArray": ...
    def get_params(self) -> Tuple["nd.NDArray", "nd.NDArray"]: ...
    def set_params(self, w: "nd.NDArray", b: "nd.NDArray") -> None: ...


def train(model: Model, data: Dataset, config: Config, lambd: float, path: str) -> FitResult:
    """Run config.num_epochs epochs of `model.step` over the seeded batch order.

    Refuses lr * lambd >= 2 before the first step (DivergenceError): plain SGD's decay
    factor |1 - lr * lambd| is then >= 1, so w would never shrink and would grow without
    bound in the directions the data do not touch.
    """
    check_stable(config.lr, lambd)
    clock = limits.Clock(config.num_epochs, f"{path} lambd={lambd:g}")
    try:
        return _train(model, data, config, lambd, path, clock)
    finally:
        clock.close()


def _train(model: Model, data: Dataset, config: Config, lambd: float, path: str, clock: "limits.Clock") -> FitResult:
    train_ls: List[float] = []
    test_ls: List[float] = []
    for epoch, order in enumerate(epoch_orders(config), start=1):
        start = [p.copy() for p in model.get_params()]
        for X, y in data_iter(config.batch_size, data.train_features, data.train_labels, order):
            model.step(X, y)
            interrupt.check()
        train_ls.append(model.loss(data.train_features, data.train_labels).asscalar().item())
        test_ls.append(model.loss(data.test_features, data.test_labels).asscalar().item())
        if not (math.isfinite(train_ls[-1]) and math.isfinite(test_ls[-1])):
            model.set_params(*start)
            raise _divergence(model, data, config, lambd, epoch, order)
        clock.tick()
    w, b = model.get_params()
    return FitResult(
        path=path,
        lambd=lambd,
        config=config,
        train_ls=tuple(train_ls),
        test_ls=tuple(test_ls),
        w=tuple(w.asnumpy().reshape(-1).tolist()),
        b=b.asnumpy().reshape(-1)[0].item(),
    )


def _divergence(
    model: Model, data: Dataset, config: Config, lambd: float, epoch: int, order: np.ndarray
) -> DivergenceError:
    """Replay the epoch that went non-finite step by step, to name the first bad step."""
    steps_per_epoch = math.ceil(config.n_train / config.batch_size)
    step = (epoch - 1) * steps_per_epoch
    batches = data_iter(config.batch_size, data.train_features, data.train_labels, order)
    for step, (X, y) in enumerate(batches, start=step + 1):
        model.step(X, y)
        if not math.isfinite(model.loss(data.train_features, data.train_labels).asscalar().item()):
            break
    return DivergenceError(
        f"training diverged (non-finite loss) at epoch {epoch}, step {step}, "
        f"with lambd={lambd:g} and lr={config.lr:g}: {divergence_hint(config.lr, lambd)}"
    )


def unstable(lr: float, lambd: float) -> bool:
    """lr * lambd >= 2: the decay factor |1 - lr * lambd| of plain SGD is >= 1."""
    return lr * lambd >= 2


def check_stable(lr: float, lambd: float) -> None:
    """Raise DivergenceError at once if lr * lambd >= 2 (see `unstable`)."""
    if unstable(lr, lambd):
        raise DivergenceError(f"unstable setting, not trained: lambd={lambd:g}, lr={lr:g}: {divergence_hint(lr, lambd)}")


def divergence_hint(lr: float, lambd: float) -> str:
    """Why plain SGD with weight decay may diverge, for these lr and lambd."""
    if lr * lambd >= 2:
        return (
            f"lr * lambd = {lr * lambd:g} >= 2, so the decay factor |1 - lr * lambd| = "
            f"{abs(1 - lr * lambd):g} >= 1 amplifies w; use lr * lambd < 2"
        )
    return "the learning rate is too large for the data; try a smaller lr"
