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
from mxwd.steps import unstable  # the one divergence rule (re-exported for the engines)


class DivergenceError(ValueError):
    """Training diverged (see `diverged`): raised instead of returning meaningless results."""


DIVERGENCE_FACTOR = 1e4  # a loss above this many times the initial model's loss has diverged (see `diverged`)


def diverged(losses, initial_loss):
    """The one test of divergence, which train, the sweep engines and the figures share: a
    run has diverged when any of its losses is not finite or exceeds
    DIVERGENCE_FACTOR * initial_loss.

    losses: shape (..., k), any k losses of a run (per epoch; train and test alike: both are
    the mean of (x.w + b - y)^2 / 2 over rows of one distribution). initial_loss: shape (...)
    (or broadcastable to it), the training loss of the same model before its first step,
    L0 = mean((X w0 + b0 - y)^2) / 2. Returns a bool array of shape (...), a NumPy bool for
    one run.

    Why 1e4 * L0. The model is linear and its loss a quadratic in (w, b): training either
    stays near the scale it starts at or grows geometrically. A stable update moves the
    loss towards its minimum, noisily (SGD) but within a small factor of L0, and the decay
    only pulls w towards 0, towards the model that predicts 0, whose loss mean(y^2) / 2 is
    below L0 in expectation (E L0 = (p init_scale^2 + ||w*||^2 + b*^2 + noise^2) / 2, and
    E mean(y^2) / 2 is the same without p init_scale^2). An unstable update multiplies the
    residuals by a factor > 1 per step until they overflow. A bound between the two decides
    when an exploding run is caught, not whether: 1e4 * L0 means residuals 100 times those
    of the untrained model. Measured on the chapter's problem (sgd, adam, adamw and sgdw,
    lr 1e-4 to 0.1, lambd 0.01 to 300, 3 seeds): the largest loss of a run that stayed
    bounded was 250 L0 (sgd at lr 0.1, lambd 10, where lr * lambd = 1 replaces w by -lr g
    every step: erratic, and it ends at 5e-4 L0), while every run that exploded (4x or more
    an epoch) passed 2e4 L0 within 10 epochs, most of them 1e20 L0. The bound is
    relative, so it holds at any init_scale, noise or data scale, and it lies far below
    float32's range (3.4e38), so a float64 engine marks the models a float32 run would
    overflow. A run that grows slowly is not caught by a bound: sgd at lr 0.01,
    lambd 0.01 grows 1.6x an epoch and ends at 40 L0 after 10 epochs; its losses are
    reported as they are.
    """
    losses = np.asarray(losses, dtype=np.float64)
    bound = DIVERGENCE_FACTOR * np.asarray(initial_loss, dtype=np.float64)
    with np.errstate(invalid="ignore", over="ignore"):
        within = losses <= bound[..., None]  # NaN and inf compare False
    return ~within.all(axis=-1)


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
    initial = model.loss(data.train_features, data.train_labels).asscalar().item()  # L0, the scale of `diverged`
    for epoch, order in enumerate(epoch_orders(config), start=1):
        start = [p.copy() for p in model.get_params()]
        for X, y in data_iter(config.batch_size, data.train_features, data.train_labels, order):
            model.step(X, y)
            interrupt.check()
        train_ls.append(model.loss(data.train_features, data.train_labels).asscalar().item())
        test_ls.append(model.loss(data.test_features, data.test_labels).asscalar().item())
        if diverged((train_ls[-1], test_ls[-1]), initial):
            model.set_params(*start)
            raise _divergence(model, data, config, lambd, epoch, order, initial, max(train_ls[-1], test_ls[-1]))
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
    model: Model, data: Dataset, config: Config, lambd: float, epoch: int, order: np.ndarray,
    initial: float, loss: float,
) -> DivergenceError:
    """Replay the epoch that diverged step by step, to name the first step whose training
    loss `diverged` (or the epoch's last, if only the test loss did)."""
    steps_per_epoch = math.ceil(config.n_train / config.batch_size)
    step = (epoch - 1) * steps_per_epoch
    batches = data_iter(config.batch_size, data.train_features, data.train_labels, order)
    for step, (X, y) in enumerate(batches, start=step + 1):
        model.step(X, y)
        value = model.loss(data.train_features, data.train_labels).asscalar().item()
        if diverged((value,), initial):
            loss = value
            break
    why = ("non-finite loss" if not math.isfinite(loss) else
           f"loss {loss:.3g} > {DIVERGENCE_FACTOR:g} x the initial model's {initial:.3g}")
    return DivergenceError(
        f"training diverged ({why}) at epoch {epoch}, step {step}, "
        f"with lambd={lambd:g} and lr={config.lr:g}: {divergence_hint(config.lr, lambd)}"
    )




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
