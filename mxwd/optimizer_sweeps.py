"""The chapter's experiment under other optimizers: lr x lambd x seeds models at once.

`train_optimizer_grid` trains, for every seed, one model per (lr, lambd) pair with one of
SWEEP_OPTIMIZERS, each exactly as `gluon.Trainer(net.collect_params(), name,
{'learning_rate': lr, 'wd': lambd, ...})` trains the chapter's `nn.Dense(1)` with the bias
kept out of the decay (wd_mult = 0) and `step(batch_size)` on the summed loss:

    sgd    (MXNet's)    w <- (1 - lr lambd) w - lr g
    sgd+momentum        v <- m v - lr (g + lambd w); w <- w + v   (MXNet's sgd with momentum m:
           (MXNet's)    coupled, the decay passes through the momentum)
    adam   (MXNet's)    "Adam + L2": g' = g + lambd w feeds the moments (coupled; the atlas
                        measures it bitwise equal to the penalty lambd ||w||^2 / 2 in the loss)
                        w <- w - lr_t m / (sqrt(v) + eps), lr_t = lr sqrt(1 - b2^t) / (1 - b1^t)
    adamw  (mxwd.optim) w <- (1 - lr lambd) w - lr m_hat / (sqrt(v_hat) + eps)   (decoupled)
    sgdw   (mxwd.optim) mom <- momentum mom - lr g; w <- (1 - lr lambd) w + mom  (decoupled)

and adamw-paper, sgdw-paper: adamw and sgdw with decouple_lr=True, Loshchilov & Hutter's
lr-independent lambd, whose decay per step is the schedule multiplier times lambd; the
sweep's lr is constant, so the factor 1 - lr lambd above becomes 1 - lambd:

    adamw-paper         w <- (1 - lambd) w - lr m_hat / (sqrt(v_hat) + eps)
    sgdw-paper          mom <- momentum mom - lr g; w <- (1 - lambd) w + mom

with g = the summed gradient / batch_size. The weights of a chunk of S seeds are one
array of shape (S, p + 1, M), M = len(lrs) * len(lambdas) (lr major), the bias as the last
row (its features a column of ones, its decay 0). A step is a handful of batched
operators for all models; Adam's moments come from MXNet's fused `adam_update` operator.
Each model stays within 1e-5 of its gluon.Trainer run (tests/test_optimizer_sweeps.py).
The same `Grid` as `mxwd.sweeps` comes back, its lambd axis holding the M pairs. A model
whose decay cannot shrink w (`mxwd.steps.unstable`: lr lambd >= 2, lambd >= 2 under the
paper's convention, lr lambd >= 2 (1 + m) for sgd+momentum; Adam + L2 has no such factor)
is marked diverged.

`summary` says, per optimizer, where the best lambd lies at each lr and how far it moves
as the lr changes (`mxwd.sweep_results.SweepResult.lambd_drift`): the paper claims that
under its convention the best lambd does not depend on the lr.
"""
from __future__ import annotations

import math
from typing import Any, Dict, Mapping, Sequence

import numpy as np

from mxwd import interrupt
from mxwd._mx import nd
from mxwd.config import Config
from mxwd.grid import Grid, seed_arrays
from mxwd.optimizers import SWEEP_OPTIMIZERS  # the table says which optimizers the sweep has
from mxwd.optimizers import spec as get_spec
from mxwd.optimizers import lambdas_flag
from mxwd.policy import chapter_mask
from mxwd.steps import step_plan, unstable
from mxwd.training import diverged

# MXNet's sgd kernels (sgd_update, sgd_mom_update) take lr, wd, momentum and rescale_grad as
# float32 numbers, whatever the weights' dtype: the sweep rounds them alike for these
FLOAT32_HYPERPARAMETERS = ("sgd", "sgd+momentum")
# Adam + L2: the decay lambd w joins the gradient that Adam normalizes, so no factor 1 - a
# bounds it and `unstable` does not apply
NO_DECAY_FACTOR = ("adam",)


def hyperparameters(optimizer: str, overrides: Mapping[str, Any] | None = None) -> Dict[str, Any]:
    """The optimizer's hyperparameters: the optimizer table's, then the overrides (validated)."""
    if optimizer not in SWEEP_OPTIMIZERS:
        raise ValueError(f"optimizer must be one of {', '.join(SWEEP_OPTIMIZERS)}; got {optimizer!r}")
    hp = dict(get_spec(optimizer).hyperparameters)
    for key, value in (overrides or {}).items():
        if value is None:
            continue
        if key not in hp:
            hint = ""
            if key == "decouple_lr" and optimizer + "-paper" in SWEEP_OPTIMIZERS:
                hint = f" (the paper's convention is its own optimizer: optimizer={optimizer + '-paper'!r})"
            raise ValueError(f"{optimizer} has no hyperparameter {key!r}; it has: {', '.join(hp) or 'none'}{hint}")
        if key == "decouple_lr" and value != hp[key]:  # fixed by the name: adamw is torch's, adamw-paper the paper's
            raise ValueError(f"{optimizer}'s decouple_lr is fixed to {hp[key]} by its name; got {value!r}; allowed: "
                             f"choose the optimizer {optimizer.replace('-paper', '')!r} (torch's convention) or "
                             f"{optimizer!r} (the paper's)")
        hp[key] = value
    from mxwd.optim import _check  # validated as mxwd.optim validates them

    if "beta1" in hp:  # adam, adamw, adamw-paper
        _check("beta1", hp["beta1"], 0.0, 1.0)
        _check("beta2", hp["beta2"], 0.0, 1.0)
        _check("epsilon", hp["epsilon"], 0.0, low_open=True)
    if "momentum" in hp:  # as mxwd.optim's sgdw and gluon.Trainer accept it
        _check("momentum", hp["momentum"], 0.0, 1.0)
    return hp


def hyperparameters_for(optimizers: Sequence[str], given: Mapping[str, Any]) -> Dict[str, Dict[str, Any]]:
    """Per optimizer, those of the `given` hyperparameters it has (by the optimizer table), validated.

    A hyperparameter that none of the optimizers has is refused rather than ignored
    (`--beta1` with `--optimizer sgd`), and so is a value outside its range (`--momentum 1`).
    """
    from mxwd.optimizers import sweep_flags

    flags = sweep_flags()
    for name in optimizers:
        hyperparameters(name)  # an optimizer the sweep does not have: a clear error
    for key, value in given.items():
        owners = flags[key][1] if key in flags else ()
        if not set(owners) & set(optimizers):
            raise ValueError(f"--{key} {value:g} applies to {', '.join(owners) or 'no optimizer'}, not to --optimizer "
                             f"{' '.join(optimizers)}; leave it out or add one of those optimizers")
    per = {name: {k: v for k, v in given.items() if k in get_spec(name).flags} for name in optimizers}
    for name, overrides in per.items():
        hyperparameters(name, overrides)  # validated before any training
    return per


def train_chunk(config: Config, optimizer: str, hp: Mapping[str, Any], lrs: Sequence[float],
                lambdas: Sequence[float], seeds: Sequence[int], n_fit: int, tick=None):
    arrays, orders = seed_arrays(config, seeds, n_fit)
    S, n, p = len(seeds), n_fit, config.num_inputs
    dtype = config.dtype
    pairs = [(lr, lam) for lr in lrs for lam in lambdas]
    M = len(pairs)

    def augment(X):  # a column of ones: the bias is the last weight
        return nd.concat(X, nd.ones((S, X.shape[1], 1), dtype=dtype), dim=2)

    Xtr, ytr = augment(arrays["Xtr"]), arrays["ytr"]
    Xte, yte = augment(arrays["Xte"]), arrays["yte"]
    W = nd.broadcast_to(nd.concat(arrays["w0"], nd.zeros((S, 1, 1), dtype=dtype), dim=1), (S, p + 1, M)).copy()
    initial = _mean_loss(Xtr, ytr, W).asnumpy().astype(np.float64)  # (S, M): the scale of `diverged`
    lr_col = np.array([lr for lr, _ in pairs])
    lam_col = np.array([lam for _, lam in pairs])
    hyper = np.float32 if optimizer in FLOAT32_HYPERPARAMETERS else np.float64
    w_decayed, b_decayed = chapter_mask(config)  # the one policy: w, and the bias (last row) with decay_bias
    lam_rows = np.zeros((1, p + 1, M))
    lam_rows[0, :p, :] = lam_col.astype(hyper) if w_decayed else 0.0
    lam_rows[0, p, :] = lam_col.astype(hyper) if b_decayed else 0.0
    lr_f = lr_col.astype(hyper).astype(np.float64).reshape(1, 1, M)
    LR = nd.array(lr_f, dtype=dtype)
    LAM = nd.array(lam_rows, dtype=dtype)
    paper = bool(hp.get("decouple_lr", False))  # the paper's convention: the decay is lambd w, not lr lambd w
    rate = 1.0 if paper else lr_f
    DEC = nd.array(1 - rate * lam_rows, dtype=dtype)  # decoupled and SGD decay factors
    LRLAM = nd.array(lr_f * lam_rows, dtype=dtype)  # sgd+momentum's lr * wd (exact in float64 from float32s)
    plan = step_plan(config, "wd", n_fit)  # the optimizer's wd: lr * lambd every step, a partial one too
    zeros = nd.zeros((S, p + 1, M), dtype=dtype)
    state = [nd.zeros((S, p + 1, M), dtype=dtype) for _ in range(2)]  # Adam's m, v; sgdw's momentum
    b1, b2 = hp.get("beta1", 0.9), hp.get("beta2", 0.999)
    real = np.dtype(dtype).type
    f32 = np.float32
    # the fused adam_update uses 1 - fl32(beta), mxwd.optim's AdamW the weights' dtype's 1 - beta
    s_v = math.sqrt(float(real(1 - b2)) / float(f32(1) - f32(b2)))
    m_ratio = s_v * float(f32(1) - f32(b1)) / float(real(1 - b1))
    offsets = (np.arange(S) * n)[:, None]
    flat_X, flat_y = Xtr.reshape((S * n, p + 1)), ytr.reshape((S * n, 1))
    momentum = float(hyper(hp.get("momentum", 0.0)))
    c = _Chunk(hp=hp, LR=LR, LAM=LAM, DEC=DEC, LRLAM=LRLAM, momentum=momentum, zeros=zeros, state=state,
               b1=b1, b2=b2, s_v=s_v, m_ratio=m_ratio)
    step_rule = (STEPS_FLOAT64 if dtype == "float64" else {}).get(optimizer, STEPS[optimizer])

    def update(W, g, t):
        return step_rule(c, W, g, t)

    t = 0
    train_ls, test_ls = [], []
    for epoch in range(config.num_epochs):
        index = nd.array((orders[:, epoch, :] + offsets).reshape(-1), dtype="int64")
        Xe = flat_X.take(index).reshape((S, n, p + 1))
        ye = flat_y.take(index).reshape((S, n, 1))
        for step_ in plan.steps:
            i, j = step_.start, step_.stop
            t += 1
            Xb = nd.slice_axis(Xe, axis=1, begin=i, end=j)
            r = nd.broadcast_sub(nd.batch_dot(Xb, W), nd.slice_axis(ye, axis=1, begin=i, end=j))  # (S, rows, M)
            # Trainer.step(divisor) rescales the summed gradient by 1/divisor (float32 for MXNet's sgd);
            # a batch mean (divisor 1) is already divided by its rows
            scale = float(hyper(1.0 / step_.divisor)) if step_.divisor != 1 else step_.grad_scale
            g = nd.batch_dot(Xb, r, transpose_a=True) * scale  # (S, p + 1, M)
            W = update(W, g, t)
            interrupt.check()
        train_ls.append(_mean_loss(Xtr, ytr, W))
        test_ls.append(_mean_loss(Xte, yte, W))
        if tick:
            tick()
    valid = None
    if arrays["Xva"] is not None:
        valid = _mean_loss(augment(arrays["Xva"]), arrays["yva"], W).asnumpy().astype(np.float64)
    train = nd.stack(*train_ls, axis=-1).asnumpy().astype(np.float64)
    test = nd.stack(*test_ls, axis=-1).asnumpy().astype(np.float64)
    lost = diverged(train, initial) | diverged(test, initial)  # the one rule, against each model's initial loss
    # the decay factor of every optimizer but Adam + L2 (the one rule, mxwd.steps.unstable): 1 - lr lambd,
    # 1 - lambd for the paper's convention; through sgd+momentum's momentum, stable up to lr lambd < 2 (1 + m)
    coupled_momentum = momentum if optimizer == "sgd+momentum" else 0.0
    no_shrink = (unstable(lr_col, lam_col, decouple_lr=paper, momentum=coupled_momentum)
                 if optimizer not in NO_DECAY_FACTOR else np.zeros(M, bool))
    Wn = W.asnumpy()
    return Grid(train_ls=train, test_ls=test, valid_ls=valid, w=Wn[:, :p, :].transpose(0, 2, 1),
                b=Wn[:, p, :].astype(np.float64), diverged=lost | no_shrink[None, :])


class _Chunk:
    """What a step rule reads: the hyperparameters, the lr / lambd / decay-factor columns, the state."""

    def __init__(self, **values: Any):
        self.__dict__.update(values)


# One update rule per optimizer of the sweep, each exactly as its gluon.Trainer run computes it
# (g: the rescaled data gradient; W: weights and bias of every model; t: the step count).
def _sgd(c, W, g, t):
    """MXNet's sgd: w <- (1 - lr lambd) w - lr g (coupled and decoupled are one map here)."""
    return nd.broadcast_mul(W, c.DEC) - nd.broadcast_mul(g, c.LR)


def _sgd_momentum(c, W, g, t):
    """MXNet's sgd with momentum (sgd_mom_update): v <- m v - lr lambd w - lr g; w <- w + v (coupled)."""
    c.state[0] = c.state[0] * c.momentum - nd.broadcast_mul(W, c.LRLAM) - nd.broadcast_mul(g, c.LR)
    return W + c.state[0]


def _sgdw(c, W, g, t):
    """mxwd.optim's sgdw: v <- m v - lr g; w <- (1 - lr lambd) w + v (sgdw-paper: (1 - lambd) w)."""
    c.state[0] = c.state[0] * c.momentum - nd.broadcast_mul(g, c.LR)
    return nd.broadcast_mul(W, c.DEC) + c.state[0]


def _adam(c, W, g, t):
    """MXNet's adam: coupled, the decay joins the gradient that feeds the moments."""
    g = g + nd.broadcast_mul(W, c.LAM)
    rate = math.sqrt(1 - c.b2**t) / (1 - c.b1**t)  # its bias correction, folded into the rate
    # the fused operator updates m and v in place and returns 0 + rate m / (sqrt(v) + eps)
    step = nd.adam_update(c.zeros, g, c.state[0], c.state[1], lr=-rate, beta1=c.b1, beta2=c.b2,
                          epsilon=c.hp["epsilon"], wd=0.0, rescale_grad=1.0)
    return W - nd.broadcast_mul(step, c.LR)


def _adamw64(c, W, g, t):
    """adamw exactly as mxwd.optim.AdamW computes it in float64 (the fused operator's
    hyperparameters are float32, which would cost float64 its precision)."""
    b1, b2 = c.b1, c.b2
    c.state[0] = c.state[0] * b1 + g * (1 - b1)
    c.state[1] = c.state[1] * b2 + nd.square(g) * (1 - b2)
    step = (c.state[0] / (1 - b1**t)) / (nd.sqrt(c.state[1] / (1 - b2**t)) + c.hp["epsilon"])
    return nd.broadcast_mul(W, c.DEC) - nd.broadcast_mul(step, c.LR)


def _adamw(c, W, g, t):
    """adamw (mxwd.optim.AdamW) in float32, with the fused operator for the moments.

    The operator computes (1 - beta2) from float32 beta2, unlike AdamW's 1 - beta2; feeding
    it s * g (s^2 = the ratio) and dividing s out of the rate makes up for it. Epsilon on
    sqrt(v_hat) = sqrt(v) / sqrt(1 - b2^t) becomes eps * sqrt(1 - b2^t).
    """
    b1, b2 = c.b1, c.b2
    step = nd.adam_update(c.zeros, g, c.state[0], c.state[1], lr=-1.0, beta1=b1, beta2=b2,
                          epsilon=c.hp["epsilon"] * math.sqrt(1 - b2**t), wd=0.0, rescale_grad=c.s_v)
    rate = c.LR * (math.sqrt(1 - b2**t) / (1 - b1**t) / (c.s_v * c.m_ratio))
    return nd.broadcast_mul(W, c.DEC) - nd.broadcast_mul(step, rate)  # the decay uses w before the step


# The step rule of each optimizer of the sweep; the paper's convention differs only in c.DEC
STEPS = {"sgd": _sgd, "sgd+momentum": _sgd_momentum, "adam": _adam, "adamw": _adamw, "sgdw": _sgdw,
         "adamw-paper": _adamw, "sgdw-paper": _sgdw}
STEPS_FLOAT64 = {"adamw": _adamw64, "adamw-paper": _adamw64}  # where float64 weights need their own rule
assert set(SWEEP_OPTIMIZERS) <= set(STEPS), "every optimizer the table puts in the sweep has its step rule here"


def _mean_loss(X, y, W):
    r = nd.broadcast_sub(nd.batch_dot(X, W), y)
    return (nd.square(r) / 2).mean(axis=1)


def summary(results: Sequence[Any]) -> str:
    """Per optimizer (a SweepResult each): the best median final test loss, at which lr and
    lambd, and how many models diverged (`mxwd.training.diverged`: they count nowhere else);
    then the best lambd at each lr ("(edge)" where the grid does not bracket it) and how far
    it moves with the lr (`SweepResult.lambd_drift`: the Theil-Sen slope of log10(best lambd)
    against log10(lr) over the bracketed lrs, 0 = independent of the lr, -1 = lr * lambd
    fixed, and the range in decades). What `mxwd sweep --optimizer ...` prints last."""
    lines = ["best median final test loss per optimizer, and the best lambd at each lr:"]
    width = max(len(r.optimizer) for r in results) if results else 0
    for r in results:
        grid = r.test_band_by_lr().median
        lost = f"{int(r.grid.diverged.sum())} of {r.grid.diverged.size} models diverged"
        if not np.isfinite(grid).any():
            lines.append(f"  {r.optimizer:>{width}}: every model diverged ({lost})")
            continue
        i, j = np.unravel_index(np.nanargmin(grid), grid.shape)
        per_lr = [f"{b.lr:.2g}: {b.lambd:.3g}{'' if b.bracketed else ' (edge)'}" if np.isfinite(b.lambd)
                  else f"{b.lr:.2g}: diverged" for b in r.best_lambd_by_lr()]
        drift = r.lambd_drift()
        if len(drift.lrs) >= 2:
            moves = (f"the best lambd moves {drift.slope:+.2f} decades per decade of lr (Theil-Sen over the "
                     f"{len(drift.lrs)} lrs where the grid brackets it; 0: independent of lr, -1: lr * lambd fixed), "
                     f"range {drift.spread:.2f} decades")
        else:
            moves = (f"the grid brackets the best lambd at {len(drift.lrs)} lr{'' if len(drift.lrs) == 1 else 's'}: "
                     f"too few to say how it moves (widen {lambdas_flag(r.optimizer)}, within the stable lambdas)")
        pad = " " * (width + 4)
        lines.append(f"  {r.optimizer:>{width}}: {grid[i, j]:.4g} at lr {(r.lrs or (r.config.lr,))[i]:.3g}, lambd {r.lambdas[j]:.3g}; {lost}")
        lines.append(f"{pad}best lambd by lr: {', '.join(per_lr)}")
        lines.append(f"{pad}{moves}")
    return "\n".join(lines)
