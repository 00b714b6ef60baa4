"""Decoupled weight decay for Gluon: the optimizers `adamw` and `sgdw`, registered with MXNet.

After `import mxwd.optim`,
`gluon.Trainer(net.collect_params(), 'adamw', {'learning_rate': lr, 'wd': wd})` works.
The semantics are those of `torch.optim.AdamW` and `optax.adamw` (Loshchilov & Hutter,
"Decoupled Weight Decay Regularization", ICLR 2019). Each step t, for every parameter w
with wd_w = wd * wd_mult(w), lr_t the (scheduled) learning rate times lr_mult(w), and
g = clip(rescale_grad * grad) (the gradient only; wd never enters it):

    adamw:  w <- w - d_t * w
            m <- b1 m + (1 - b1) g,   v <- b2 v + (1 - b2) g^2
            w <- w - lr_t * m_hat / (sqrt(v_hat) + eps),  m_hat = m / (1 - b1^t), v_hat = v / (1 - b2^t)

    sgdw:   w <- w - d_t * w
            mom <- momentum * mom - lr_t * g,   w <- w + mom     (MXNet's momentum convention)

The decay d_t has two conventions, chosen by `decouple_lr`:

    decouple_lr=False (default, torch.optim.AdamW, optax):  d_t = lr_t * wd_w
    decouple_lr=True  (the paper's eta_t, optimi's decouple_lr):  d_t = eta_t * wd_w,
                      eta_t = lr_sched(t) / learning_rate

lr_sched(t) is the lr_scheduler's rate at update t (the optimizer's current rate without a
scheduler, so `trainer.set_learning_rate` counts as a schedule) and learning_rate the rate
the optimizer was made with. eta_t is the schedule multiplier only: lr_mult(w) scales the
gradient step of w but not its decay (change a parameter's decay with wd_mult), as in optimi,
where each parameter group's lr is divided by that group's own initial lr. With a constant
learning rate eta_t = 1 and the decay per step is wd_w * w whatever the learning rate, so with
decouple_lr=True wd is a fraction per step: torch's wd = 1e-2 at lr = 1e-3 is wd = 1e-5 here.

Keep a parameter out of the decay the usual way, with wd_mult = 0 (the bias, say).

**float16 weights.** With `multi_precision=True` (as in MXNet's own optimizers) a float16
weight gets a float32 master copy: the state is (master, the optimizer's own state in
float32); each step updates the master from grad.astype(float32) by the rules above, in
float32, then rounds it into the float16 weight. The float16 weight is then the float32 run
rounded once (relative error <= 2^-11), and the rounding does not accumulate. With float32 or
float64 weights multi_precision changes nothing.

Without multi_precision the update runs in float16, which this module measured to fail:

* adamw: eps = 1e-8 rounds to 0 in float16, so an entry whose gradient is 0 gets
  m_hat / (sqrt(v_hat) + eps) = 0/0 = NaN at its first update, and one with 0 < |g| < ~5e-3
  gets v = (1 - b2) g^2 = 0 (underflow) and a step of -inf. So adamw raises a ValueError when
  it first sees a float16 weight without multi_precision while epsilon rounds to 0 in
  float16 (epsilon < 3e-8); with a larger epsilon it warns, as below.
* sgdw (and adamw with such an epsilon): a UserWarning, the first time a float16 weight is
  seen: every step rounds w to float16 (up to 2^-11 relative, accumulating), and a change
  below half a float16 ulp is lost: the decay w <- (1 - d_t) w does nothing while
  d_t < 2^-12 ~ 2.4e-4 (lr = 0.01, wd = 0.01 never decays a float16 weight).

MXNet cannot say this when the optimizer is made: it sees no weight before create_state.

**Why not `nd.contrib.adamw_update`.** That operator computes
`w <- w - eta * (lr * m / (sqrt(v) + eps) + wd * w)`: no bias correction, and the decay
is scaled by `eta`, not by the learning rate. It can be made to give AdamW's numbers in
float32 (eta = lr_t, lr = sqrt(1 - b2^t) / (1 - b1^t), epsilon = eps * sqrt(1 - b2^t)),
but its kernel computes in float32 even for float64 weights, so float64 runs would lose
their precision (tests/test_optim.py measures both). The update here is NDArray
arithmetic in the weights' dtype instead.
"""
from __future__ import annotations

import math
import numbers
import warnings
from typing import Any

import numpy as np

from mxwd._mx import mx, nd

__all__ = ["AdamW", "SGDW"]

FLOAT16_ADVICE = ("pass multi_precision=True (a float32 master copy of the weight and float32 optimizer state; "
                  "the float16 weight is the float32 result rounded once per step)")


def _check(name: str, value: Any, low: float, high: float | None = None, low_open: bool = False,
           high_open: bool = True) -> float:
    """A hyperparameter in [low, high) (or the bounds given), else a ValueError naming it."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value):
        raise ValueError(f"{name} must be a finite real number, got {value!r}")
    below = value <= low if low_open else value < low
    above = high is not None and (value >= high if high_open else value > high)
    if below or above:
        left = "(" if low_open else "["
        right = ")" if high_open else "]"
        span = f"{left}{low:g}, {high:g}{right}" if high is not None else f"{'>' if low_open else '>='} {low:g}"
        raise ValueError(f"invalid {name} value: {value!r}; allowed: {span}")
    return float(value)


def _check_bool(name: str, value: Any) -> bool:
    """True or False (a NumPy bool too), else a ValueError naming it."""
    if not isinstance(value, (bool, np.bool_)):
        raise ValueError(f"invalid {name} value: {value!r}; allowed: True or False")
    return bool(value)


class _Decoupled(mx.optimizer.Optimizer):
    """The shared part: hyperparameter checks, the decoupled decay w <- w - d_t * w, and the
    float16 handling (master copy with multi_precision, a warning or an error without)."""

    def __init__(self, learning_rate: float = 0.001, wd: float = 0.0, decouple_lr: bool = False, **kwargs: Any):
        _check("wd", wd, 0.0)
        _check("learning_rate", learning_rate, 0.0)
        self.decouple_lr = _check_bool("decouple_lr", decouple_lr)
        if "multi_precision" in kwargs:
            kwargs["multi_precision"] = _check_bool("multi_precision", kwargs["multi_precision"])
        if self.decouple_lr:
            _check_schedule_start(learning_rate, kwargs.get("lr_scheduler"))
        super().__init__(learning_rate=learning_rate, wd=wd, **kwargs)
        self.initial_lr = float(learning_rate)  # eta_t's denominator (decouple_lr)
        self._float16_warned = False
        if self.clip_gradient is not None:
            _check("clip_gradient", self.clip_gradient, 0.0, low_open=True)

    def _gradient(self, grad: "nd.NDArray") -> "nd.NDArray":
        g = grad * self.rescale_grad
        if self.clip_gradient is not None:
            g = nd.clip(g, -self.clip_gradient, self.clip_gradient)
        return g

    def _schedule_multiplier(self) -> float:
        """eta_t = lr_sched(t) / learning_rate (lr_mult excluded); call after _update_count."""
        scheduled = self.lr_scheduler(self.num_update) if self.lr_scheduler is not None else self.lr
        return scheduled / self.initial_lr

    def _decay(self, index: int, weight: "nd.NDArray") -> float:
        """Apply w <- w - d_t * w in place (d_t = lr_t wd_w, or eta_t wd_w with decouple_lr);
        count the update and return lr_t."""
        self._update_count(index)
        lr, wd = self._get_lr(index), self._get_wd(index)
        if wd:
            rate = self._schedule_multiplier() * wd if self.decouple_lr else lr * wd
            weight[:] = weight - rate * weight
        return lr

    def _float16_in_float16(self, weight: "nd.NDArray") -> None:
        """Called by create_state: a float16 weight that will be updated in float16.

        A UserWarning the first time (subclasses raise where the update cannot be finite).
        Integer weights are refused here, as MXNet's own optimizers refuse them."""
        if not np.issubdtype(weight.dtype, np.floating):
            raise ValueError(f"{type(self).__name__.lower()} got a {np.dtype(weight.dtype).name} weight; allowed: "
                             "floating-point weights (float16, float32, float64)")
        if weight.dtype != np.float16 or self._float16_warned:
            return
        self._float16_warned = True
        warnings.warn(
            f"{type(self).__name__.lower()} is updating float16 weights in float16 (multi_precision=False): "
            "every step rounds w to float16 (relative error up to 2^-11 ~ 4.9e-4 per step, accumulating) and a "
            "change below half a float16 ulp is lost, so the decay w <- (1 - d_t) w does nothing while "
            f"d_t = lr_t * wd < 2^-12 ~ 2.4e-4; {FLOAT16_ADVICE}", UserWarning, stacklevel=3)

    def create_state_multi_precision(self, index, weight):
        """(float32 master copy, create_state(master)) for a float16 weight with multi_precision,
        else create_state(weight) (which warns or raises for float16). Integer weights are
        refused, as MXNet's own optimizers refuse them (an int32 adamw update would divide by
        an integer 0 and end the process with SIGFPE)."""
        if self.multi_precision and weight.dtype == np.float16:
            master = weight.astype(np.float32)
            return (master, self.create_state(index, master))
        return self.create_state(index, weight)

    def update_multi_precision(self, index, weight, grad, state):
        """With a master copy: update it in float32 from grad.astype(float32), then round it
        into the float16 weight. Otherwise the plain update in the weight's dtype."""
        if self.multi_precision and weight.dtype == np.float16:
            master, own_state = state
            self.update(index, master, grad.astype(np.float32), own_state)
            nd.cast(master, dtype=weight.dtype, out=weight)
        else:
            self.update(index, weight, grad, state)


def _check_schedule_start(learning_rate: float, lr_scheduler: Any) -> None:
    """decouple_lr divides by learning_rate; MXNet's CosineScheduler and PolyScheduler start from
    their own base_lr_orig, which the optimizer's learning_rate does not override."""
    if learning_rate <= 0:
        raise ValueError(f"invalid learning_rate value: {learning_rate!r} with decouple_lr=True "
                         "(the decay is scaled by lr_t / learning_rate); allowed: > 0")
    start = getattr(lr_scheduler, "base_lr_orig", None)
    if start is not None and not math.isclose(start, learning_rate, rel_tol=1e-12):
        raise ValueError(f"invalid learning_rate value: {learning_rate!r} with decouple_lr=True and a "
                         f"{type(lr_scheduler).__name__} that starts from base_lr={start!r} (MXNet's scheduler "
                         "ignores learning_rate, so eta_t = lr_t / learning_rate would not start at 1); "
                         f"allowed: learning_rate={start!r}, the scheduler's base_lr")


@mx.optimizer.Optimizer.register
class AdamW(_Decoupled):
    """Adam with decoupled weight decay (torch.optim.AdamW semantics); see the module docstring.

    Objective: the loss alone; each step w <- w - d_t w, then the Adam step
    w <- w - lr_t m_hat / (sqrt(v_hat) + eps), with d_t = lr_t wd_w (default) or
    eta_t wd_w (decouple_lr=True, eta_t = lr_sched(t) / learning_rate).
    float16 weights need multi_precision=True unless epsilon is representable in float16.
    """

    def __init__(self, learning_rate: float = 0.001, beta1: float = 0.9, beta2: float = 0.999,
                 epsilon: float = 1e-8, **kwargs: Any):
        self.beta1 = _check("beta1", beta1, 0.0, 1.0)
        self.beta2 = _check("beta2", beta2, 0.0, 1.0)
        self.epsilon = _check("epsilon", epsilon, 0.0, low_open=True)
        super().__init__(learning_rate=learning_rate, **kwargs)

    def create_state(self, index, weight):
        if weight.dtype == np.float16 and np.float16(self.epsilon) == 0:
            raise ValueError(
                f"adamw got a float16 weight (index {index}) with multi_precision={self.multi_precision} and "
                f"epsilon={self.epsilon!r}, which rounds to 0 in float16: every entry whose gradient is 0 would "
                "become m_hat / (sqrt(v_hat) + 0) = 0/0 = NaN at its first update (and 0 < |g| < ~5e-3 gives "
                f"v = 0 and -inf); allowed: multi_precision=True, or epsilon >= 3e-8 (nonzero in float16); "
                f"{FLOAT16_ADVICE}")
        self._float16_in_float16(weight)
        return (nd.zeros(weight.shape, weight.context, dtype=weight.dtype),
                nd.zeros(weight.shape, weight.context, dtype=weight.dtype))

    def update(self, index, weight, grad, state):
        lr = self._decay(index, weight)
        t = self._index_update_count[index]
        g = self._gradient(grad)
        m, v = state
        m[:] = self.beta1 * m + (1 - self.beta1) * g
        v[:] = self.beta2 * v + (1 - self.beta2) * nd.square(g)
        m_hat = m / (1 - self.beta1**t)
        v_hat = v / (1 - self.beta2**t)
        weight[:] = weight - lr * m_hat / (nd.sqrt(v_hat) + self.epsilon)


@mx.optimizer.Optimizer.register
class SGDW(_Decoupled):
    """Momentum SGD with decoupled weight decay; see the module docstring.

    Objective: the loss alone; each step w <- w - d_t w, then mom <- momentum mom - lr_t g,
    w <- w + mom, with d_t = lr_t wd_w (default) or eta_t wd_w (decouple_lr=True).
    """

    def __init__(self, learning_rate: float = 0.01, momentum: float = 0.0, **kwargs: Any):
        self.momentum = _check("momentum", momentum, 0.0, 1.0)
        super().__init__(learning_rate=learning_rate, **kwargs)

    def create_state(self, index, weight):
        self._float16_in_float16(weight)
        if self.momentum == 0:
            return None
        return nd.zeros(weight.shape, weight.context, dtype=weight.dtype)

    def update(self, index, weight, grad, state):
        lr = self._decay(index, weight)
        g = self._gradient(grad)
        if state is None:
            weight[:] = weight - lr * g
        else:
            state[:] = self.momentum * state - lr * g
            weight[:] = weight + state
