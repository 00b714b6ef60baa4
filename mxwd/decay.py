"""Weight decay as a small visible piece: the L2 penalty and the Gluon optimizer's wd.

Which parameters are decayed is not decided here: `mxwd.policy` (the `DecayPolicy`) says,
and both paths read it.

Objective with the L2 penalty (the source's, for one minibatch B):

    sum_{i in B} (x_i . w + b - y_i)^2 / 2  +  lambd * ||w||^2 / 2     (summed over B)

The chapter's policy for the bias is explicit and the same on both paths: by default
(`decay_bias=False`) only w is penalized, as in the source; with `decay_bias=True`,
lambd * b^2 / 2 is added as well (the source's remark that the bias is sometimes
included). MXNet's Gluon decays *every* parameter by default (`wd_mult = 1`), so the
Gluon path has to exclude the bias on purpose: with two Trainers (the source's way) or
with `wd_mult = 0` on the bias (later versions of the book).
"""
from __future__ import annotations

from typing import TYPE_CHECKING, List

from mxwd._mx import gluon, mx, nd
from mxwd.config import Config

if TYPE_CHECKING:  # pragma: no cover
    from mxwd.policy import DecayPolicy


def l2_penalty(w: "nd.NDArray") -> "nd.NDArray":
    """The L2 norm penalty ||w||^2 / 2 = (w**2).sum() / 2; its gradient is w."""
    return (w**2).sum() / 2


def describe(config: Config) -> str:
    """Which parameters weight decay touches, with their sizes (printed by `mxwd reproduce`)."""
    from mxwd.policy import chapter_policy

    text = str(chapter_policy({"w": (config.num_inputs, 1), "b": (1,)}, config))
    if not config.decay_bias:
        text += f" (Gluon: bias excluded by {config.bias_exclusion.replace('_', ' ')})"
    return text


def gluon_trainers(net: "gluon.Block", wd: float, config: Config, exact_step: bool = False,
                   policy: "DecayPolicy | None" = None) -> List["gluon.Trainer"]:
    """The Gluon Trainers for plain SGD with built-in weight decay `wd` on `net`.

    Each Trainer's step(s) computes, for every parameter p with gradient g summed
    over the batch,  p <- p - lr * (clip(g / s) + wd * wd_mult(p) * p)
    (clip only with config.clip_gradient > 0; the wd term is never clipped).
    Which parameters are decayed is `policy` (default: the chapter's, `chapter_policy`:
    the weights, and the biases too with `config.decay_bias`), and the others are kept
    out by `config.bias_exclusion` (see `DecayPolicy.trainers`):
    - "two_trainers": one Trainer with wd over the decayed parameters, one without;
    - "wd_mult": one Trainer with wd, and wd_mult = 0 on the others.
    `exact_step` replaces MXNet's SGD (whose operator takes lr, wd and 1/s as float32
    numbers) by the same rule in float64-scalar NDArray arithmetic (`ExactSGD`).
    """
    from mxwd.policy import chapter_policy

    def optimizer(decay: float):
        kwargs = {"learning_rate": config.lr, "wd": decay}
        if config.clip_gradient > 0:
            kwargs["clip_gradient"] = config.clip_gradient
        return exact_sgd()(**kwargs) if exact_step else mx.optimizer.create("sgd", **kwargs)

    policy = chapter_policy(net, config) if policy is None else policy
    return policy.trainers(net, optimizer, wd, config.bias_exclusion, kvstore=None)


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
