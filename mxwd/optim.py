"""Decoupled weight decay for Gluon: the optimizers `adamw` and `sgdw`, registered with MXNet.

After `import mxwd.optim`,
`gluon.Trainer(net.collect_params(), 'adamw', {'learning_rate': lr, 'wd': wd})` works.
The semantics are those of `torch.optim.AdamW` and `optax.adamw` (Loshchilov & Hutter,
"Decoupled Weight Decay Regularization", ICLR 2019). Each step, for every parameter w
with wd_w = wd * wd_mult(w), lr_t the (scheduled) learning rate times lr_mult(w), and
g = clip(rescale_grad * grad) (the gradient only; wd never enters it):

    adamw:  w <- w - lr_t * wd_w * w
            m <- b1 m + (1 - b1) g,   v <- b2 v + (1 - b2) g^2
            w <- w - lr_t * m_hat / (sqrt(v_hat) + eps),  m_hat = m / (1 - b1^t), v_hat = v / (1 - b2^t)

    sgdw:   w <- w - lr_t * wd_w * w
            mom <- momentum * mom - lr_t * g,   w <- w + mom     (MXNet's momentum convention)

Keep a parameter out of the decay the usual way, with wd_mult = 0 (the bias, say).

**Why not `nd.contrib.adamw_update`.** That operator computes
`w <- w - eta * (lr * m / (sqrt(v) + eps) + wd * w)`: no bias correction, and the decay
is scaled by `eta`, not by the learning rate. It can be made to give AdamW's numbers in
float32 (eta = lr_t, lr = sqrt(1 - b2^t) / (1 - b1^t), epsilon = eps * sqrt(1 - b2^t)),
but its kernel computes in float32 even for float64 weights, so float64 runs would lose
their precision (tests/test_optim.py measures both). The update here is NDArray
arithmetic in the weights' dtype instead.

Multi-precision (float16 weights with float32 copies) is not supported.
"""
from __future__ import annotations

import math
import numbers
from typing import Any

from mxwd._mx import mx, nd

__all__ = ["AdamW", "SGDW"]


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


class _Decoupled(mx.optimizer.Optimizer):
    """The shared part: hyperparameter checks and the decoupled decay w <- w - lr_t * wd_w * w."""

    def __init__(self, learning_rate: float = 0.001, wd: float = 0.0, **kwargs: Any):
        _check("wd", wd, 0.0)
        _check("learning_rate", learning_rate, 0.0)
        if kwargs.get("multi_precision"):  # refused when made, not at the first update
            raise ValueError("multi_precision=True is not supported by mxwd's adamw and sgdw (they keep no float32 "
                             "master copy); allowed: multi_precision=False, with float32 or float64 weights")
        super().__init__(learning_rate=learning_rate, wd=wd, **kwargs)
        if self.clip_gradient is not None:
            _check("clip_gradient", self.clip_gradient, 0.0, low_open=True)

    def _gradient(self, grad: "nd.NDArray") -> "nd.NDArray":
        g = grad * self.rescale_grad
        if self.clip_gradient is not None:
            g = nd.clip(g, -self.clip_gradient, self.clip_gradient)
        return g

    def _decay(self, index: int, weight: "nd.NDArray") -> float:
        """Apply w <- w - lr_t * wd_w * w in place; return lr_t (counts the update)."""
        self._update_count(index)
        lr, wd = self._get_lr(index), self._get_wd(index)
        if wd:
            weight[:] = weight - (lr * wd) * weight
        return lr

    def update_multi_precision(self, index, weight, grad, state):  # noqa: D401
        if self.multi_precision:
            raise ValueError("multi_precision is not supported by mxwd's adamw and sgdw")
        self.update(index, weight, grad, state)


@mx.optimizer.Optimizer.register
class AdamW(_Decoupled):
    """Adam with decoupled weight decay (torch.optim.AdamW semantics); see the module docstring."""

    def __init__(self, learning_rate: float = 0.001, beta1: float = 0.9, beta2: float = 0.999,
                 epsilon: float = 1e-8, **kwargs: Any):
        self.beta1 = _check("beta1", beta1, 0.0, 1.0)
        self.beta2 = _check("beta2", beta2, 0.0, 1.0)
        self.epsilon = _check("epsilon", epsilon, 0.0, low_open=True)
        super().__init__(learning_rate=learning_rate, **kwargs)

    def create_state(self, index, weight):
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
    """Momentum SGD with decoupled weight decay; see the module docstring."""

    def __init__(self, learning_rate: float = 0.01, momentum: float = 0.0, **kwargs: Any):
        self.momentum = _check("momentum", momentum, 0.0, 1.0)
        super().__init__(learning_rate=learning_rate, **kwargs)

    def create_state(self, index, weight):
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
