"""Weight decay from scratch, as the chapter writes it.

The model is linear regression, `linreg(X, w, b) = X w + b`, with the squared loss
`squared_loss(y_hat, y) = (y_hat - y)^2 / 2`. Training minimizes, for each minibatch B,

    l(w, b) = sum_{i in B} (x_i . w + b - y_i)^2 / 2  +  lambd * ||w||^2 / 2,

recorded with `autograd` as the source does: the loss vector (shape (|B|, 1)) plus the
scalar penalty, which `backward()` sums, so the penalty's gradient is |B| * lambd * w.
The manual step `sgd(params, lr, batch_size)` divides the gradient by |B|, so

    w <- w - (eta / |B|) * sum_{i in B} x_i (x_i . w + b - y_i) - eta * lambd * w
       = (1 - eta * lambd) * w - (eta / |B|) * sum_{i in B} x_i (x_i . w + b - y_i),
    b <- b - (eta / |B|) * sum_{i in B} (x_i . w + b - y_i).

Correction of the source: its update formula ends in "- lambd * w", without the
learning rate; the code (and this package) decays by eta * lambd per step.
With `loss_reduction="mean"` (d2l 1.0) the objective is the batch mean plus the
penalty and the step divides by 1: the same update, rounded differently.

L1 (config.penalty="l1", the chapter's exercise 3), on the policy's decayed parameters:
- l1_step="subgradient": the penalty lambd * ||w||_1 in the loss, so autograd adds its
  subgradient (sign(0) = 0) once per example and sgd divides by |B|:
      w <- w - eta * (g / |B| + lambd * sign(w));
- l1_step="proximal": the plain gradient step (no penalty in the loss), then soft-thresholding
      w <- sign(w) * max(|w| - eta * lambd, 0),
  which sets weights exactly to 0 (the subgradient step only makes them oscillate around 0).
The penalty weight of a partial batch (StepPlan) scales lambd in both, as in the L2 case.
"""
from __future__ import annotations

from typing import List, Optional, Sequence, Tuple

from mxwd._mx import autograd, nd
from mxwd.config import Config, check_lambd, resolve
from mxwd.data import make_run_data
from mxwd.decay import l2_penalty


def l1_penalty(w: "nd.NDArray") -> "nd.NDArray":
    """The L1 norm penalty ||w||_1 = |w|.sum(); its subgradient is sign(w) (0 at 0)."""
    return nd.abs(w).sum()


def soft_threshold(w: "nd.NDArray", threshold: float) -> "nd.NDArray":
    """The proximal map of threshold * ||.||_1: sign(w) * max(|w| - threshold, 0)."""
    return nd.sign(w) * nd.maximum(nd.abs(w) - threshold, 0)
from mxwd.policy import chapter_policy
from mxwd.results import FitResult
from mxwd.steps import step_plan
from mxwd.training import train

__all__ = ["init_params", "linreg", "squared_loss", "l2_penalty", "sgd", "fit_and_plot"]


def init_params(config: Optional[Config] = None) -> List["nd.NDArray"]:
    """[w, b] with w ~ N(0, init_scale^2) of shape (num_inputs, 1), b = 0, gradients attached.

    Draws from MXNet's global generator: after `make_data` (and, under pairing="notebook",
    after the blocks of the runs before this one: `mxwd.data.init_block`), as in the source.
    """
    config = resolve(config, None)
    w = nd.random.normal(scale=config.init_scale, shape=(config.num_inputs, 1))
    b = nd.zeros(shape=(1,))
    params = [w.astype(config.dtype), b.astype(config.dtype)]
    for param in params:
        param.attach_grad()
    return params


def linreg(X: "nd.NDArray", w: "nd.NDArray", b: "nd.NDArray") -> "nd.NDArray":
    """The linear regression model X w + b."""
    return nd.dot(X, w) + b


def squared_loss(y_hat: "nd.NDArray", y: "nd.NDArray") -> "nd.NDArray":
    """Squared loss (y_hat - y)^2 / 2, one value per example (same as d2l.squared_loss)."""
    if y.shape != y_hat.shape:  # the reshape is an operator call: skip it when it changes nothing
        y = y.reshape(y_hat.shape)
    return (y_hat - y) ** 2 / 2


def sgd(params: Sequence["nd.NDArray"], lr: float, batch_size: int, clip_gradient: float = 0.0) -> None:
    """Minibatch SGD in place: param <- param - lr * param.grad / batch_size.

    The same step as the source's `gb.sgd` and `d2l.sgd` (`param[:] = param - lr *
    param.grad / batch_size`), done by MXNet's fused `sgd_update` operator with wd = 0:
    one operator instead of four. For batch_size = 1 it is bitwise the same; otherwise
    within one float rounding (tests/test_scratch.py). MXNet passes lr and
    1 / batch_size to the operator as float32 numbers, even for float64 weights.
    With clip_gradient > 0 the rescaled gradient (penalty included) is clipped to
    [-clip_gradient, clip_gradient] first.
    """
    clip = {"clip_gradient": clip_gradient} if clip_gradient > 0 else {}
    for param in params:
        nd.sgd_update(param, param.grad, lr=lr, rescale_grad=1.0 / batch_size, out=param, **clip)


def sgd_exact(params: Sequence["nd.NDArray"], lr: float, batch_size: int, clip_gradient: float = 0.0) -> None:
    """The same step in NDArray arithmetic, whose scalars are float64: the source's own `sgd`.

    `compare` uses it as a counterfactual: it removes the float32 rounding of lr and
    1 / batch_size that MXNet's operators apply (visible in float64 runs only).
    """
    for param in params:
        grad = param.grad / batch_size
        if clip_gradient > 0:
            grad = nd.clip(grad, -clip_gradient, clip_gradient)
        param[:] = param - lr * grad


class ScratchModel:
    """w, b as NDArrays; one step = autograd(loss + lambd * penalty), backward, sgd.

    What is penalized is the chapter's `DecayPolicy` (w; b too with decay_bias), and how
    each step is scaled is the `StepPlan` (mxwd.steps): the divisor passed to sgd, and the
    penalty's weight on a partial batch (per_example or per_step).
    """

    def __init__(self, params: List["nd.NDArray"], lambd: float, config: Config, exact_step: bool = False):
        self.params, self.lambd, self.config = params, lambd, config
        self.named = dict(zip(("w", "b"), params))
        self.policy = chapter_policy(self.named, config)
        self.plan = step_plan(config, "penalty")
        self.update = sgd_exact if exact_step else sgd
        self.proximal = config.penalty == "l1" and config.l1_step == "proximal"

    def penalty(self) -> "nd.NDArray":
        """The penalty on the policy's decayed parameters: sum ||p||^2 / 2 (l2) or sum ||p||_1 (l1)."""
        return self.policy.penalty(self.named, l2_penalty if self.config.penalty == "l2" else l1_penalty)

    def step(self, X: "nd.NDArray", y: "nd.NDArray") -> None:
        w, b = self.params
        plan = self.plan.for_rows(X.shape[0])
        lambd = self.lambd if plan.penalty_weight == 1 else self.lambd * plan.penalty_weight
        with autograd.record():
            l = squared_loss(linreg(X, w, b), y)
            if self.config.loss_reduction == "mean":
                l = l.mean()
            if not self.proximal:
                l = l + lambd * self.penalty()
        l.backward()
        self.update(self.params, self.config.lr, plan.divisor, self.config.clip_gradient)
        if self.proximal and lambd > 0:
            for name in self.policy.decayed:
                if name in self.named:
                    p = self.named[name]
                    p[:] = soft_threshold(p, self.config.lr * lambd)

    def loss(self, X: "nd.NDArray", y: "nd.NDArray") -> "nd.NDArray":
        return squared_loss(linreg(X, *self.params), y).mean()

    def get_params(self) -> Tuple["nd.NDArray", "nd.NDArray"]:
        return self.params[0], self.params[1]

    def set_params(self, w: "nd.NDArray", b: "nd.NDArray") -> None:
        self.params[0][:] = w
        self.params[1][:] = b


def fit_and_plot(lambd: float, config: Optional[Config] = None, seed: Optional[int] = None,
                 exact_step: bool = False) -> FitResult:
    """Train the from-scratch model with penalty strength `lambd`, as the source's `fit_and_plot`.

    Draws the data and the initial w from `seed` (default `config.seed`). Under
    config.pairing="shared" runs with different lambd but the same seed start from the
    same w; under "notebook" this run draws the w of its cell in the book's one-kernel
    order (lambd must then be one of config.lambdas: `mxwd.data.init_block`). Either way
    they see the same batches.
    Returns the per-epoch train and test losses (without the penalty) and the final
    w and b; unlike the source it does not draw: `mxwd.plot.semilogy(result)` does.
    Raises ValueError for bad input, and `DivergenceError` before training if
    lr * lambd >= 2 (the decay factor |1 - lr * lambd| >= 1 never shrinks w) or when
    training diverges (`mxwd.training.diverged`). `exact_step` updates with float64-scalar NDArray
    arithmetic (`sgd_exact`) instead of MXNet's fused operator.
    """
    config = resolve(config, seed)
    lambd = check_lambd(lambd)
    data = make_run_data(config, "scratch", lambd)
    model = ScratchModel(init_params(config), lambd, config, exact_step)
    return train(model, data, config, lambd, path="scratch")
