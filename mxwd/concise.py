"""Weight decay the concise way: Gluon's `nn.Dense(1)` with the optimizer's built-in `wd`.

The objective per minibatch is the same squared loss, `gluon.loss.L2Loss` =
(y_hat - y)^2 / 2 per example, summed by `backward()`, with no penalty term in the
loss. The penalty enters through the optimizer instead: MXNet's SGD with weight decay
`wd`, stepped with `trainer.step(batch_size)`, updates every parameter p as

    p <- p - lr * (g / |B| + wd * wd_mult(p) * p),   g = gradient summed over B,

i.e. w <- (1 - lr * wd) * w - (lr / |B|) * g: the from-scratch update with lambd = wd.
The wd term is added after the gradient has been divided by |B| and is not itself
divided, which is why wd equals lambd here (the scratch penalty is added once per
example, summed to |B| * lambd * w, then divided by |B|). Which parameters are decayed
is set by `mxwd.decay.gluon_trainers` (the bias is excluded unless `decay_bias`).
"""
from __future__ import annotations

from typing import List, Optional, Tuple

from mxwd._mx import autograd, gluon, init, nd, nn
from mxwd.config import Config, check_lambd, resolve
from mxwd.data import make_run_data
from mxwd.decay import gluon_trainers
from mxwd.results import FitResult
from mxwd.steps import step_plan
from mxwd.training import train

__all__ = ["fit_and_plot_gluon", "make_net"]


def check_l2(config: Config) -> None:
    """Refuse penalty="l1": the optimizers' wd adds wd * w to the gradient, the L2 penalty's."""
    if config.penalty != "l2":
        raise ValueError(f"penalty={config.penalty!r}: Gluon's wd is L2 only; allowed: penalty='l2' "
                         "(use fit_and_plot for the L1 penalty)")


def make_net(config: Config) -> "nn.Dense":
    """nn.Dense(1) with w ~ N(0, init_scale^2) and b = 0, initialized at once.

    Drawn right after `make_data`, it gets the same initial w as the scratch path's
    `init_params` (the same 200 normal draws from MXNet's generator; under
    pairing="notebook" `fit_and_plot_gluon` first skips the blocks of the runs before it).
    Refuses penalty="l1"
    (`check_l2`), so that no Gluon engine (atlas, distributed) runs L2 in its place.
    """
    check_l2(config)
    net = nn.Dense(1, in_units=config.num_inputs)
    net.initialize(init.Normal(sigma=config.init_scale))
    if config.dtype != "float32":
        net.cast(config.dtype)
    if config.hybridize:
        net.hybridize()
    return net


class GluonModel:
    """A Dense net and its Trainers; one step = autograd(L2Loss), backward, trainer.step."""

    def __init__(self, net: "nn.Dense", trainers: List["gluon.Trainer"], config: Config):
        self.net, self.trainers, self.config = net, trainers, config
        self.loss_fn = gluon.loss.L2Loss()
        self.plan = step_plan(config, "wd")

    def step(self, X: "nd.NDArray", y: "nd.NDArray") -> None:
        with autograd.record():
            l = self.loss_fn(self.net(X), y)
            if self.config.loss_reduction == "mean":
                l = l.mean()
        l.backward()
        divisor = self.plan.for_rows(X.shape[0]).divisor
        for trainer in self.trainers:
            trainer.step(divisor)

    def loss(self, X: "nd.NDArray", y: "nd.NDArray") -> "nd.NDArray":
        return self.loss_fn(self.net(X), y).mean()

    def get_params(self) -> Tuple["nd.NDArray", "nd.NDArray"]:
        return self.net.weight.data().reshape((-1, 1)), self.net.bias.data()

    def set_params(self, w: "nd.NDArray", b: "nd.NDArray") -> None:
        self.net.weight.set_data(w.reshape(self.net.weight.shape))
        self.net.bias.set_data(b)


def fit_and_plot_gluon(wd: float, config: Optional[Config] = None, seed: Optional[int] = None,
                       exact_step: bool = False) -> FitResult:
    """Train nn.Dense(1) with gluon.Trainer('sgd', {'learning_rate': lr, 'wd': wd}).

    The Gluon counterpart of `fit_and_plot` (the source's companion section): the same
    data and batch order for the same seed, the same initial w under config.pairing="shared"
    (under "notebook", the w of its Gluon cell, drawn after every scratch run's), the same
    per-epoch losses, and the same `FitResult` (with `lambd` = wd). The bias is decayed only if
    `config.decay_bias`. Raises ValueError for bad input, `DivergenceError` for
    lr * wd >= 2 (before training) or when training diverges (`mxwd.training.diverged`). `exact_step`: see
    `mxwd.decay.gluon_trainers`.
    """
    config = resolve(config, seed)
    check_l2(config)
    wd = check_lambd(wd, "wd")
    data = make_run_data(config, "gluon", wd)
    net = make_net(config)
    model = GluonModel(net, gluon_trainers(net, wd, config, exact_step), config)
    return train(model, data, config, wd, path="gluon")
