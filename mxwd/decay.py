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

from mxwd._mx import gluon, nd
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


def gluon_trainers(net: "gluon.Block", wd: float, config: Config) -> List["gluon.Trainer"]:
    """The Gluon Trainers for plain SGD with built-in weight decay `wd` on `net`.

    Each Trainer's step(s) computes, for every parameter p with gradient g summed
    over the batch,  p <- p - lr * (g / s + wd * wd_mult(p) * p).
    The bias is excluded from wd unless `config.decay_bias`, by `config.bias_exclusion`:
    - "two_trainers": one Trainer with wd over '.*weight', one without over '.*bias';
    - "wd_mult": one Trainer with wd, and wd_mult = 0 on '.*bias'.
    """
    sgd = {"learning_rate": config.lr}
    if config.decay_bias:
        return [gluon.Trainer(net.collect_params(), "sgd", dict(sgd, wd=wd), kvstore=None)]
    if config.bias_exclusion == "two_trainers":
        return [
            gluon.Trainer(net.collect_params(".*weight"), "sgd", dict(sgd, wd=wd), kvstore=None),
            gluon.Trainer(net.collect_params(".*bias"), "sgd", dict(sgd), kvstore=None),
        ]
    net.collect_params(".*bias").setattr("wd_mult", 0.0)
    return [gluon.Trainer(net.collect_params(), "sgd", dict(sgd, wd=wd), kvstore=None)]
