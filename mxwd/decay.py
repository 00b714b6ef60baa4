"""Weight decay as a small visible piece: the L2 penalty, and which parameters it touches.

Objective with the L2 penalty (the source's, for one minibatch B):

    sum_{i in B} (x_i . w + b - y_i)^2 / 2  +  lambd * ||w||^2 / 2     (summed over B)

The policy for the bias is explicit and the same on both paths: by default
(`decay_bias=False`) only w is penalized, as in the source; with `decay_bias=True`,
lambd * b^2 / 2 is added as well (the source's remark that the bias is sometimes
included). MXNet's Gluon decays *every* parameter by default (`wd_mult = 1`), so the
Gluon path has to exclude the bias on purpose: with two Trainers (the source's way) or
with `wd_mult = 0` on the bias (later versions of the book).
"""
from __future__ import annotations

from typing import List, Sequence

from mxwd._mx import gluon, mx, nd
from mxwd.config import Config


def l2_penalty(w: "nd.NDArray") -> "nd.NDArray":
    """The L2 norm penalty ||w||^2 / 2 = (w**2).sum() / 2; its gradient is w."""
    return (w**2).sum() / 2


def decayed(params: Sequence["nd.NDArray"], decay_bias: bool) -> List["nd.NDArray"]:
    """The parameters [w, b] that the penalty touches: [w], or [w, b] with decay_bias."""
    w, b = params
    return [w, b] if decay_bias else [w]


def penalty(params: Sequence["nd.NDArray"], decay_bias: bool) -> "nd.NDArray":
    """Sum of l2_penalty over the decayed parameters."""
    terms = [l2_penalty(p) for p in decayed(params, decay_bias)]
    return terms[0] if len(terms) == 1 else terms[0] + terms[1]


def describe(config: Config) -> str:
    """Which parameters weight decay touches, with their sizes (printed by `mxwd reproduce`)."""
    decayed_names = ["w", "b"] if config.decay_bias else ["w"]
    sizes = {"w": config.num_inputs, "b": 1}
    left = [n for n in ("w", "b") if n not in decayed_names]
    count = lambda n: f"{n} ({sizes[n]} value{'' if sizes[n] == 1 else 's'})"  # noqa: E731
    text = "decayed: " + ", ".join(map(count, decayed_names))
    text += "; not decayed: " + (", ".join(map(count, left)) if left else "none")
    if not config.decay_bias:
        text += f" (Gluon: bias excluded by {config.bias_exclusion.replace('_', ' ')})"
    return text


def gluon_trainers(net: "gluon.Block", wd: float, config: Config, exact_step: bool = False) -> List["gluon.Trainer"]:
    """The Gluon Trainers for plain SGD with built-in weight decay `wd` on `net`.

    Each Trainer's step(s) computes, for every parameter p with gradient g summed
    over the batch,  p <- p - lr * (clip(g / s) + wd * wd_mult(p) * p)
    (clip only with config.clip_gradient > 0; the wd term is never clipped).
    The bias is excluded from wd unless `config.decay_bias`, by `config.bias_exclusion`:
    - "two_trainers": one Trainer with wd over '.*weight', one without over '.*bias';
    - "wd_mult": one Trainer with wd, and wd_mult = 0 on '.*bias'.
    `exact_step` replaces MXNet's SGD (whose operator takes lr, wd and 1/s as float32
    numbers) by the same rule in float64-scalar NDArray arithmetic (`ExactSGD`).
    """
    def optimizer(decay: float):
        kwargs = {"learning_rate": config.lr, "wd": decay}
        if config.clip_gradient > 0:
            kwargs["clip_gradient"] = config.clip_gradient
        return exact_sgd()(**kwargs) if exact_step else mx.optimizer.create("sgd", **kwargs)

    def trainer(params, decay: float):
        return gluon.Trainer(params, optimizer(decay), kvstore=None)

    if config.decay_bias:
        return [trainer(net.collect_params(), wd)]
    if config.bias_exclusion == "two_trainers":
        return [trainer(net.collect_params(".*weight"), wd), trainer(net.collect_params(".*bias"), 0.0)]
    net.collect_params(".*bias").setattr("wd_mult", 0.0)
    return [trainer(net.collect_params(), wd)]


_EXACT_SGD = None


def exact_sgd():
    """The Optimizer class ExactSGD: p <- p - lr * (clip(rescale * g) + wd * p), float64 scalars."""
    global _EXACT_SGD
    if _EXACT_SGD is None:

        class ExactSGD(mx.optimizer.Optimizer):
            def update(self, index, weight, grad, state):
                self._update_count(index)
                lr, wd = self._get_lr(index), self._get_wd(index)
                g = grad * self.rescale_grad
                if self.clip_gradient:
                    g = nd.clip(g, -self.clip_gradient, self.clip_gradient)
                weight[:] = weight - lr * (g + wd * weight)

        _EXACT_SGD = ExactSGD
    return _EXACT_SGD
