"""mxwd.optim: registered `adamw` and `sgdw`, checked against float64 NumPy references."""
import dataclasses

import numpy as np
import pytest

import mxwd.optim  # noqa: F401  (registers adamw and sgdw)
from mxwd import optimizer_atlas as A
from mxwd._mx import gluon, mx, nd
from mxwd.config import Config
from mxwd.optimizers import AdamWRef, SGDWRef, spec
from mxwd.scratch import fit_and_plot
from tests import numpy_reference as R

CONFIG = Config(num_epochs=3)  # 60 steps
LAMBD = 5.0


def relative(a, b):
    return np.abs(a - b).max() / np.abs(b).max()


@pytest.mark.parametrize("name, reference", [("adamw", AdamWRef), ("sgdw", SGDWRef)])
@pytest.mark.parametrize("dtype, bar", [("float64", 1e-9), ("float32", 1e-5)])
@pytest.mark.parametrize("batch_size", [1, 3, 5])
def test_each_update_matches_a_float64_numpy_reference(name, reference, dtype, bar, batch_size):
    s = spec(name)
    config = CONFIG.replace(dtype=dtype, batch_size=batch_size)
    for mode in ("wd", "none"):  # the bias has wd_mult = 0 in both (the reference never decays it)
        w_mx = A.train_with(s, config, LAMBD, mode)[0]
        w_np = R.run(reference, dict(s.hyperparameters), config, LAMBD, mode)
        assert relative(w_mx, w_np) <= bar, (mode, relative(w_mx, w_np))


@pytest.mark.parametrize("name, reference", [("adamw", AdamWRef), ("sgdw", SGDWRef)])
def test_the_lr_scheduler_sets_lr_t_for_the_step_and_the_decay(name, reference):
    s = spec(name)
    config = CONFIG.replace(dtype="float64")
    step, factor = 10, 0.5

    def schedule(t):  # MXNet's FactorScheduler: lr * factor for every `step` updates past the first step
        return config.lr * factor ** ((t - 1) // step)

    net_w = _train_gluon(name, config, LAMBD, {"lr_scheduler": mx.lr_scheduler.FactorScheduler(step, factor, base_lr=config.lr),
                                               **dict(s.hyperparameters)})
    w_np = R.run(reference, dict(s.hyperparameters), config, LAMBD, "wd", lr_schedule=schedule)
    assert relative(net_w, w_np) <= 1e-9
    without = R.run(reference, dict(s.hyperparameters), config, LAMBD, "wd")
    assert relative(without, w_np) > 1e-3  # the schedule matters


def _train_gluon(name, config, wd, extra, wd_mult_all_zero=False, lr_mult=1.0):
    """The chapter's Gluon model with the named optimizer via gluon.Trainer(..., name, {...})."""
    from mxwd._mx import autograd
    from mxwd.concise import make_net
    from mxwd.data import data_iter, epoch_orders, make_data

    data = make_data(config)
    net = make_net(config)
    net.collect_params(".*bias").setattr("wd_mult", 0.0)
    if wd_mult_all_zero:
        net.collect_params().setattr("wd_mult", 0.0)
    net.collect_params().setattr("lr_mult", lr_mult)
    trainer = gluon.Trainer(net.collect_params(), name, {"learning_rate": config.lr, "wd": wd, **extra}, kvstore=None)
    loss = gluon.loss.L2Loss()
    for order in epoch_orders(config):
        for X, y in data_iter(config.batch_size, data.train_features, data.train_labels, order):
            with autograd.record():
                l = loss(net(X), y).sum()
            l.backward()
            trainer.step(config.batch_size)
    return net.weight.data().asnumpy().reshape(-1).astype(np.float64)


@pytest.mark.parametrize("name", ["adamw", "sgdw"])
def test_wd_mult_zero_leaves_parameters_undecayed(name):
    hp = dict(spec(name).hyperparameters)
    all_zero = _train_gluon(name, CONFIG, LAMBD, hp, wd_mult_all_zero=True)
    no_decay = _train_gluon(name, CONFIG, 0.0, hp)
    assert np.array_equal(all_zero, no_decay)
    assert not np.allclose(_train_gluon(name, CONFIG, LAMBD, hp), no_decay)


class MXNetAdamRef:
    """Adam as MXNet's optimizer computes it: its operator takes beta1, beta2, epsilon and the
    per-step rate lr * sqrt(1 - b2^t) / (1 - b1^t) as float32 numbers, even for float64 weights."""

    def __init__(self, w, beta1=0.9, beta2=0.999, epsilon=1e-8):
        self.b1, self.b2, self.eps, self.t = beta1, beta2, epsilon, 0
        self.m, self.v = np.zeros_like(w), np.zeros_like(w)

    def step(self, w, gs, lr, wd):
        f32 = lambda v: float(np.float32(v))  # noqa: E731
        self.t += 1
        lr_t = f32(lr * np.sqrt(1 - self.b2**self.t) / (1 - self.b1**self.t))
        b1, b2 = f32(self.b1), f32(self.b2)
        self.m = b1 * self.m + (1 - b1) * gs
        self.v = b2 * self.v + (1 - b2) * gs * gs
        return w - lr_t * self.m / (np.sqrt(self.v) + f32(self.eps))


def test_adamw_with_wd_0_equals_adam_and_mxnets_adam_rounds_its_hyperparameters():
    """adamw with wd = 0 is Adam exactly; MXNet's adam is Adam with float32 hyperparameters.

    Measured: in float64 MXNet's adam and adamw(wd = 0) end 7.1e-7 apart after 60 steps
    (9.5e-7 in float32), above the 1e-7 this was asked to meet. The cause is MXNet: a
    NumPy Adam with float32-rounded beta1, beta2, epsilon and per-step rate reproduces
    MXNet's adam to 1e-15, and the exact NumPy AdamW reproduces adamw to 1e-15.
    """
    f64 = CONFIG.replace(dtype="float64")
    adamw = A.train_with(spec("adamw"), f64, 0.0, "wd")[0]
    adam = A.train_with(spec("adam"), f64, 0.0, "wd")[0]
    assert np.abs(adamw - R.run(AdamWRef, {}, f64, 0.0, "wd")).max() <= 1e-14
    assert np.abs(adam - R.run(MXNetAdamRef, {}, f64, 0.0, "wd")).max() <= 1e-14
    assert 1e-7 < np.abs(adamw - adam).max() < 1e-6
    f32 = A.train_with(spec("adamw"), CONFIG, 0.0, "wd")[0] - A.train_with(spec("adam"), CONFIG, 0.0, "wd")[0]
    assert np.abs(f32).max() <= 2e-6  # float32: the same 7e-7 plus rounding (measured 9.5e-7)


@pytest.mark.parametrize("batch_size", [1, 4, 5, 20])
def test_sgdw_without_momentum_is_the_from_scratch_path(batch_size):
    s = dataclasses.replace(spec("sgdw"), hyperparameters={"momentum": 0.0})
    config = Config(batch_size=batch_size)
    w = A.train_with(s, config, LAMBD, "wd")[0]
    assert np.abs(w - np.array(fit_and_plot(LAMBD, config).w)).max() <= 1e-5


@pytest.mark.parametrize("name, params, words", [
    ("adamw", {"wd": -1.0}, ["wd", "-1.0"]),
    ("sgdw", {"wd": -0.5}, ["wd", "-0.5"]),
    ("adamw", {"beta1": 1.0}, ["beta1", "1.0", "[0, 1)"]),
    ("adamw", {"beta2": -0.1}, ["beta2", "-0.1", "[0, 1)"]),
    ("adamw", {"epsilon": 0.0}, ["epsilon", "0.0", "> 0"]),
    ("sgdw", {"momentum": 1.5}, ["momentum", "1.5"]),
    ("adamw", {"learning_rate": -0.1}, ["learning_rate", "-0.1"]),
])
def test_bad_hyperparameters_raise_a_clear_value_error(name, params, words):
    net = gluon.nn.Dense(1, in_units=2)
    net.initialize()
    with pytest.raises(ValueError) as info:
        gluon.Trainer(net.collect_params(), name, {"learning_rate": 0.01, **params})
    for word in words:
        assert word in str(info.value)


def test_contrib_adamw_update_gives_adamw_in_float32_but_computes_in_float32():
    """Why mxwd's AdamW does not use nd.contrib.adamw_update (see mxwd.optim)."""
    rng = np.random.default_rng(0)
    b1, b2, eps, lr, wd = 0.9, 0.999, 1e-8, 0.01, 0.1
    for dtype, agrees in (("float32", True), ("float64", False)):
        w0 = rng.standard_normal(50)
        grads = rng.standard_normal((30, 50))
        w_ref, m, v = w0.copy(), np.zeros(50), np.zeros(50)
        w = nd.array(w0, dtype=dtype)
        mean, var = nd.zeros(50, dtype=dtype), nd.zeros(50, dtype=dtype)
        for t, g in enumerate(grads, start=1):
            w_ref, m, v = w_ref - lr * wd * w_ref, b1 * m + (1 - b1) * g, b2 * v + (1 - b2) * g * g
            w_ref = w_ref - lr * (m / (1 - b1**t)) / (np.sqrt(v / (1 - b2**t)) + eps)
            nd.contrib.adamw_update(w, nd.array(g, dtype=dtype), mean, var, nd.array([1.0]), out=w, eta=lr,
                                    lr=np.sqrt(1 - b2**t) / (1 - b1**t), epsilon=eps * np.sqrt(1 - b2**t),
                                    wd=wd, beta1=b1, beta2=b2)
        gap = relative(w.asnumpy().astype(np.float64), w_ref)
        assert (gap <= 1e-5) if agrees else (gap > 1e-9), (dtype, gap)


# --- decouple_lr: the decay per step is eta_t * wd * w, eta_t = lr_sched(t) / learning_rate ---

WD_PER_STEP = 0.01  # with decouple_lr, wd is the fraction of w removed per step at eta_t = 1
LR = CONFIG.lr
SCHEDULES = {  # name: (MXNet scheduler, or None for a constant lr; lr_sched(t) from its documented formula)
    "constant": (None, lambda t: LR),
    "factor": (lambda: mx.lr_scheduler.FactorScheduler(step=10, factor=0.5, base_lr=LR),
               lambda t: LR * 0.5 ** ((t - 1) // 10)),
    "multifactor": (lambda: mx.lr_scheduler.MultiFactorScheduler(step=[15, 40], factor=0.3, base_lr=LR),
                    lambda t: LR * 0.3 ** sum(t > s for s in (15, 40))),
    "cosine": (lambda: mx.lr_scheduler.CosineScheduler(max_update=50, base_lr=LR, final_lr=LR / 10),
               lambda t: LR / 10 + (LR - LR / 10) * (1 + np.cos(np.pi * min(t, 50) / 50)) / 2),
}


class DecoupledLRRef:
    """float64 NumPy from the math of decouple_lr=True, given lr_sched(t) as `lr`:
    w <- w - (lr / lr0) wd w, then adamw's or sgdw's step with lr * lr_mult (lr_mult is not in eta_t)."""

    def __init__(self, w, name, lr0, lr_mult=1.0, momentum=0.0, beta1=0.9, beta2=0.999, epsilon=1e-8):
        self.name, self.lr0, self.lr_mult, self.mom = name, lr0, lr_mult, momentum
        self.b1, self.b2, self.eps, self.t = beta1, beta2, epsilon, 0
        self.m, self.v = np.zeros_like(w), np.zeros_like(w)

    def step(self, w, g, lr, wd):
        self.t += 1
        w = w - (lr / self.lr0) * wd * w
        lr = lr * self.lr_mult
        if self.name == "sgdw":
            self.v = self.mom * self.v - lr * g
            return w + self.v
        self.m = self.b1 * self.m + (1 - self.b1) * g
        self.v = self.b2 * self.v + (1 - self.b2) * g * g
        m_hat, v_hat = self.m / (1 - self.b1**self.t), self.v / (1 - self.b2**self.t)
        return w - lr * m_hat / (np.sqrt(v_hat) + self.eps)


def _decouple_lr_gap(name, schedule, dtype, lr_mult=1.0):
    """Relative gap between gluon.Trainer(name, decouple_lr=True) and DecoupledLRRef, 60 steps."""
    s = spec(name)
    config = CONFIG.replace(dtype=dtype)
    make, lr_sched = SCHEDULES[schedule]
    extra = {**dict(s.hyperparameters), "decouple_lr": True}
    if make is not None:
        extra["lr_scheduler"] = make()
    w_mx = _train_gluon(name, config, WD_PER_STEP, extra, lr_mult=lr_mult)
    hp = {"name": name, "lr0": LR, "lr_mult": lr_mult, **dict(s.hyperparameters)}
    w_np = R.run(DecoupledLRRef, hp, config, WD_PER_STEP, "wd", lr_schedule=lr_sched)
    return relative(w_mx, w_np), w_np


SLOW = pytest.mark.slow  # ~0.4 s each under load: the fast suite keeps one schedule per optimizer


# float64: MXNet and NumPy do the same float64 arithmetic in a different order (the gradient's sums,
# the scalar products), each op rounding by <= 1.1e-16 relative; ~20 ops a step for 60 steps add up to
# <~ 1.3e-13 if no step amplified them (SGD's steps contract along x_i: lr ||x_i||^2 ~ 0.6 < 2).
# Measured: <= 6.3e-16 (sgdw, constant lr). The bar 1e-12 is 10x the additive bound and still fails at
# once if eta_t, lr_mult or the schedule were wrong: those move w by > 1e-3 (asserted below).
@pytest.mark.parametrize("name, schedule", [
    ("adamw", "cosine"), ("sgdw", "multifactor"),
    *[pytest.param(n, s, marks=SLOW) for n, s in [("adamw", "constant"), ("adamw", "factor"), ("adamw", "multifactor"),
                                                  ("sgdw", "constant"), ("sgdw", "factor"), ("sgdw", "cosine")]],
])
def test_decouple_lr_matches_a_float64_numpy_reference(name, schedule):
    gap, w_np = _decouple_lr_gap(name, schedule, "float64")
    assert gap <= 1e-12, gap
    # the convention matters: the same run with decay lr_t * wd (the default) is far away
    s = spec(name)
    default = R.run(AdamWRef if name == "adamw" else SGDWRef, dict(s.hyperparameters), CONFIG.replace(dtype="float64"),
                    WD_PER_STEP, "wd", lr_schedule=SCHEDULES[schedule][1])
    assert relative(default, w_np) > 1e-2


# float32: ~20 float32 ops a step, each <= 6e-8 relative, 60 steps: <~ 7e-5 if every rounding added up
# in the same direction, ~ 6e-8 * sqrt(1200) ~ 2e-6 as a random walk. Measured: <= 5.7e-7 over all
# four schedules and both optimizers. The bar 5e-6 is 2.5x the random-walk estimate.
@pytest.mark.parametrize("name", ["sgdw", pytest.param("adamw", marks=SLOW)])
def test_decouple_lr_in_float32_with_a_cosine_schedule(name):
    gap, _ = _decouple_lr_gap(name, "cosine", "float32")
    assert gap <= 5e-6, gap


@pytest.mark.slow
@pytest.mark.parametrize("name", ["adamw", "sgdw"])
def test_decouple_lr_leaves_lr_mult_out_of_the_decay(name):
    """lr_mult = 2 doubles the gradient step; the decay stays eta_t * wd (float64, bar as above)."""
    gap, w_np = _decouple_lr_gap(name, "factor", "float64", lr_mult=2.0)
    assert gap <= 1e-12, gap
    hp = {"name": name, "lr0": LR, "lr_mult": 2.0, **dict(spec(name).hyperparameters)}
    with_mult_in_decay = R.run(DecoupledLRRef, {**hp, "lr0": LR / 2}, CONFIG.replace(dtype="float64"),
                               WD_PER_STEP, "wd", lr_schedule=SCHEDULES["factor"][1])
    assert relative(with_mult_in_decay, w_np) > 1e-3  # the other choice is measurably different


def _updates(name, steps, grads, dtype="float64", w0=None, **params):
    """`steps` updates of one weight through create_state_multi_precision / update_multi_precision
    (what gluon.Trainer calls); grads(t) gives step t's gradient as a NumPy array."""
    opt = mx.optimizer.create(name, **{"learning_rate": LR, "wd": WD_PER_STEP, **params})
    w = nd.array(np.linspace(-2.0, 3.0, 7) if w0 is None else w0, dtype=dtype)
    state = opt.create_state_multi_precision(0, w)
    for t in range(1, steps + 1):
        opt.update_multi_precision(0, w, nd.array(grads(t), dtype=dtype), state)
    return w.asnumpy().astype(np.float64)


@pytest.mark.parametrize("name", ["adamw", "sgdw"])
@pytest.mark.parametrize("decouple_lr, per_step", [(False, LR * WD_PER_STEP), (True, WD_PER_STEP)])
def test_with_zero_gradients_and_a_constant_lr_the_decay_is_wd_or_lr_wd_per_step(name, decouple_lr, per_step):
    """With g = 0 both optimizers only decay: w_n = (1 - d)^n w_0, d = wd (decouple_lr) or lr wd.

    float64, 50 steps: each step rounds twice (<= 2.2e-16 relative), so <= 1.2e-14 relative after
    50 steps, bar 1e-13; the two conventions differ by 0.99^50 / (1 - 3e-5)^50 - 1 ~ -0.4."""
    w = _updates(name, 50, lambda t: np.zeros(7), decouple_lr=decouple_lr)
    assert relative(w, (1 - per_step) ** 50 * np.linspace(-2.0, 3.0, 7)) <= 1e-13


@pytest.mark.parametrize("name", ["adamw", "sgdw"])
def test_with_decouple_lr_set_learning_rate_counts_as_a_schedule(name):
    """trainer.set_learning_rate(lr / 4) makes eta_t = 1/4: 50 zero-gradient steps give
    (1 - wd / 4)^50 w_0 (float64, bar argued as in the test above)."""
    opt = mx.optimizer.create(name, learning_rate=LR, wd=WD_PER_STEP, decouple_lr=True)
    opt.set_learning_rate(LR / 4)
    w0 = np.linspace(-2.0, 3.0, 7)
    w, zero = nd.array(w0, dtype="float64"), nd.zeros(7, dtype="float64")
    state = opt.create_state_multi_precision(0, w)
    for _ in range(50):
        opt.update_multi_precision(0, w, zero, state)
    assert relative(w.asnumpy(), (1 - WD_PER_STEP / 4) ** 50 * w0) <= 1e-13


@pytest.mark.parametrize("name", ["adamw", "sgdw"])
def test_decouple_lr_false_is_the_default(name):
    """Bitwise: decouple_lr=False and no decouple_lr give the same 30 updates (float32, momentum)."""
    grads = np.random.default_rng(1).standard_normal((30, 7))
    extra = {"momentum": 0.5} if name == "sgdw" else {}
    assert np.array_equal(_updates(name, 30, lambda t: grads[t - 1], "float32", **extra),
                          _updates(name, 30, lambda t: grads[t - 1], "float32", decouple_lr=False, **extra))


@pytest.mark.parametrize("params, words", [
    ({"decouple_lr": "yes"}, ["decouple_lr", "'yes'", "True or False"]),
    ({"decouple_lr": 1}, ["decouple_lr", "1", "True or False"]),
    ({"decouple_lr": None}, ["decouple_lr", "None", "True or False"]),
    ({"decouple_lr": True, "learning_rate": 0.0}, ["learning_rate", "0.0", "decouple_lr", "> 0"]),
    ({"decouple_lr": True, "learning_rate": 0.01,
      "lr_scheduler": mx.lr_scheduler.CosineScheduler(max_update=10, base_lr=0.1)},
     ["learning_rate", "0.01", "CosineScheduler", "base_lr=0.1"]),
    ({"multi_precision": "yes"}, ["multi_precision", "'yes'", "True or False"]),
])
@pytest.mark.parametrize("name", ["adamw", "sgdw"])
def test_bad_decouple_lr_and_multi_precision_raise_a_clear_value_error(name, params, words):
    assert mx.optimizer.Optimizer.opt_registry[name] is {"adamw": mxwd.optim.AdamW, "sgdw": mxwd.optim.SGDW}[name]
    with pytest.raises(ValueError) as info:
        mx.optimizer.create(name, **{"learning_rate": 0.01, **params})
    for word in words:
        assert word in str(info.value), (word, str(info.value))
