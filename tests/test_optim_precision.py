"""mxwd.optim with float16 weights: multi_precision's float32 master copy, and what happens without it.

float16 has a 10-bit mantissa: rounding to it is exact to 2^-11 ~ 4.9e-4 relative (normal numbers),
and a change below half an ulp, 2^-12 ~ 2.4e-4 of |w| at worst, is lost. MXNet's CPU build has no
float16 FullyConnected or dot, so the Gluon model below computes X w + b elementwise.
"""
import warnings

import numpy as np
import pytest

import mxwd.optim  # noqa: F401  (registers adamw and sgdw)
from mxwd._mx import autograd, gluon, mx, nd

F16_ROUND = 2.0**-11  # relative error of one rounding to float16
LR, WD = 0.01, 0.01  # lr * wd = 1e-4 < 2^-12: a float16 weight updated in float16 never decays


def _gradients(n=37, steps=200, seed=0):
    """Gradients exact in float16, with the awkward entries: 0 always (0:5), 0 from step 101 on (5:10),
    tiny (10:15, |g| ~ 1e-3, where (1 - b2) g^2 underflows in float16); n = 37 divides nothing."""
    rng = np.random.default_rng(seed)
    g = rng.standard_normal((steps, n)).astype(np.float16)
    g[:, :5] = 0
    g[steps // 2:, 5:10] = 0
    g[:, 10:15] *= np.float16(1e-3)
    return g.astype(np.float16), rng.standard_normal(n).astype(np.float16)


def _run(name, dtype, grads, w0, multi_precision, **params):
    """Updates through create_state_multi_precision / update_multi_precision, as gluon.Trainer calls them."""
    opt = mx.optimizer.create(name, learning_rate=LR, wd=WD, multi_precision=multi_precision, **params)
    w = nd.array(w0.astype(dtype), dtype=dtype)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*updating float16 weights in float16", category=UserWarning)
        state = opt.create_state_multi_precision(0, w)
    for g in grads:
        opt.update_multi_precision(0, w, nd.array(g.astype(dtype), dtype=dtype), state)
    return w.asnumpy(), state


@pytest.mark.parametrize("name, params", [
    ("adamw", {}),
    pytest.param("adamw", {"decouple_lr": True}, marks=pytest.mark.slow),
    pytest.param("sgdw", {"momentum": 0.5}, marks=pytest.mark.slow),
])
def test_multi_precision_float16_is_the_float32_run_rounded_once(name, params):
    """200 updates of float16 weights with multi_precision=True against float32 and float64 runs.

    The master copy is float32 and sees grad.astype(float32), the same numbers the float32 run
    sees, through the same float32 operations: so the float16 weight is the float32 run rounded
    once, bitwise, and the float16 error does not accumulate over the 200 steps. Against the
    float64 run each entry is then within 2^-11 |w| (that one rounding) plus the float32 run's own
    drift (measured <= 5.6e-7 of max |w|; asserted <= 1e-5, the random-walk estimate
    6e-8 * sqrt(200 steps * ~12 ops) ~ 3e-6 with a margin of 3). Measured: <= 4.8e-4 |w|
    (adamw), 4.3e-4 |w| (sgdw); sgdw without the master copy: 0.196 |w|.
    """
    grads, w0 = _gradients()
    w16, state = _run(name, "float16", grads, w0, True, **params)
    w32, _ = _run(name, "float32", grads, w0, False, **params)
    w64, _ = _run(name, "float64", grads, w0, False, **params)
    master, own = state
    assert w16.dtype == np.float16 and master.dtype == np.float32
    assert all(s.dtype == np.float32 for s in (own if isinstance(own, tuple) else (own,)) if s is not None)
    assert np.isfinite(w16).all()
    assert np.array_equal(w16, w32.astype(np.float16))  # round-to-nearest, as NumPy's cast
    assert np.array_equal(master.asnumpy(), w32)
    drift = np.abs(w32 - w64).max() / np.abs(w64).max()
    assert drift <= 1e-5, drift
    assert (np.abs(w16 - w64) <= F16_ROUND * np.abs(w64) + drift * np.abs(w64).max()).all()
    if name == "sgdw":  # without the master copy the roundings accumulate and the decay is lost: measured 0.196
        pure, _ = _run(name, "float16", grads, w0, False, **params)
        assert (np.abs(pure - w64) / np.abs(w64)).max() > 10 * F16_ROUND


class Linear(gluon.HybridBlock):
    """The chapter's linreg, X w + b, as an elementwise product and a sum (float16 runs on CPU)."""

    def __init__(self, num_inputs, **kwargs):
        super().__init__(**kwargs)
        self.weight = self.params.get("weight", shape=(1, num_inputs))
        self.bias = self.params.get("bias", shape=(1,), init="zeros")

    def hybrid_forward(self, F, X, weight, bias):
        return F.broadcast_add(F.sum(F.broadcast_mul(X, weight), axis=1, keepdims=True), bias)


def _train_trainer(name, dtype, multi_precision, steps=40, batch_size=5, **params):
    """gluon.Trainer(net.collect_params(), name, {..., 'multi_precision': ...}) on a small regression,
    net.cast(dtype), as a user writes it. 24 rows in batches of 5: the last batch of each pass has 4.
    Features 0 and 1 are always 0, so their weights get zero gradients (they only decay).
    Returns the final weight and its state in the Trainer's updater."""
    rng = np.random.default_rng(0)
    p, n = 8, 24
    X = np.round(rng.standard_normal((n, p)) * 8) / 8  # multiples of 1/8: exact in float16
    X[:, :2] = 0
    y = X @ np.linspace(-1, 1, p) + 0.5
    net = Linear(p)
    net.initialize()
    net.weight.set_data(nd.array(rng.standard_normal((1, p)).astype(np.float16), dtype="float32"))
    net.collect_params(".*bias").setattr("wd_mult", 0.0)
    net.cast(dtype)
    trainer = gluon.Trainer(net.collect_params(), name, {"learning_rate": 0.05, "wd": 0.1,
                                                         "multi_precision": multi_precision, **params}, kvstore=None)
    loss = gluon.loss.L2Loss()
    X, y = nd.array(X, dtype=dtype), nd.array(y.reshape(-1, 1), dtype=dtype)
    starts = [s for _ in range(steps) for s in range(0, n, batch_size)][:steps]
    for i in starts:
        Xb, yb = X[i:i + batch_size], y[i:i + batch_size]
        with autograd.record():
            l = loss(net(Xb), yb).sum()
        l.backward()
        trainer.step(Xb.shape[0])
    return net.weight.data().asnumpy(), trainer._updaters[0].states[trainer._params.index(net.weight)]


@pytest.mark.parametrize("name, params", [("adamw", {}), pytest.param("sgdw", {"momentum": 0.5}, marks=pytest.mark.slow)])
def test_a_float16_net_trains_through_gluon_trainer_with_multi_precision(name, params):
    """40 Trainer steps of net.cast('float16') with multi_precision=True, against the float32 net.

    The stored weights differ by one rounding (<= 2^-11) plus the effect of computing each step's
    gradient in float16 from those rounded weights; the master copy is float32, so neither
    accumulates: each step's error is made once and the fit contracts it. The bar 2^-10 (two
    roundings, in max |w|) is a heuristic from that; measured: 2.4e-4 (adamw), 2.7e-4 (sgdw).
    Without the master copy sgdw's float16 run ends 2.9e-3 away (asserted > 2^-10: the bar
    separates the two). The zero-gradient weights only decay, identically in the master and the
    float32 run: bitwise the float32 values rounded.
    """
    w16, (master, _) = _train_trainer(name, "float16", True, **params)  # the weight's state in the Trainer
    w32, _ = _train_trainer(name, "float32", False, **params)
    assert w16.dtype == np.float16 and master.dtype == np.float32 and np.isfinite(w16).all()
    assert np.array_equal(w16, master.asnumpy().astype(np.float16))
    assert np.array_equal(w16[0, :2], w32[0, :2].astype(np.float16))
    gap = np.abs(w16 - w32).max() / np.abs(w32).max()
    assert gap <= 2 * F16_ROUND, gap
    if name == "sgdw":
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*updating float16 weights in float16", category=UserWarning)
            pure, _ = _train_trainer(name, "float16", False, **params)
        assert np.abs(pure - w32).max() / np.abs(w32).max() > 2 * F16_ROUND


def test_float16_adamw_without_multi_precision_raises_at_the_first_step():
    """eps = 1e-8 is 0 in float16: the error names the cause and the fix, at trainer.step."""
    with pytest.raises(ValueError) as info:
        _train_trainer("adamw", "float16", False, steps=1)
    for word in ("float16", "multi_precision=True", "epsilon=1e-08", "0/0 = NaN"):
        assert word in str(info.value), word


def test_float16_adamw_in_float16_is_what_the_error_prevents():
    """The measured failure: adamw's update run in float16 (state made by hand, no check).

    One update: zero-gradient entries become 0/0 = NaN, |g| = 1e-3 gives v = 0 (underflow) and
    -inf; an ordinary entry (g = 0.5) stays finite."""
    opt = mx.optimizer.create("adamw", learning_rate=LR, wd=WD)
    w = nd.array([1.0, -0.5, 0.25], dtype="float16")
    state = (nd.zeros(3, dtype="float16"), nd.zeros(3, dtype="float16"))
    opt.update(0, w, nd.array([0.0, 1e-3, 0.5], dtype="float16"), state)
    w = w.asnumpy()
    assert np.isnan(w[0]) and np.isneginf(w[1]) and np.isfinite(w[2])


def test_float16_without_multi_precision_warns_once_and_loses_the_decay():
    """sgdw in float16 warns (once per optimizer) and d = lr wd = 1e-4 < 2^-12 never moves w:
    50 zero-gradient steps leave it bitwise unchanged; with multi_precision w is
    (1 - 1e-4)^50 w0 = 0.995 w0, rounded once (2^-11, plus 50 float32 roundings, << 1e-5)."""
    w0 = np.array([1.0, -0.75, 3.0, 1e-3], dtype=np.float16)
    opt = mx.optimizer.create("sgdw", learning_rate=LR, wd=WD, momentum=0.5)
    with pytest.warns(UserWarning) as record:
        opt.create_state_multi_precision(0, nd.array(w0, dtype="float16"))
        opt.create_state_multi_precision(1, nd.array(w0, dtype="float16"))
    ours = [r for r in record if "updating float16 weights in float16" in str(r.message)]
    assert len(ours) == 1 and mxwd.optim.FLOAT16_ADVICE in str(ours[0].message)
    zeros = np.zeros((50, 4), np.float16)
    assert np.array_equal(_run("sgdw", "float16", zeros, w0, False)[0], w0)
    decayed = _run("sgdw", "float16", zeros, w0, True)[0]
    exact = (1 - LR * WD) ** 50 * w0.astype(np.float64)
    assert (np.abs(decayed - exact) <= (F16_ROUND + 1e-5) * np.abs(exact)).all()


def test_float16_adamw_with_an_epsilon_float16_holds_only_warns():
    """epsilon = 1e-3 is a float16 number: no 0/0, so adamw warns instead of raising."""
    opt = mx.optimizer.create("adamw", learning_rate=LR, epsilon=1e-3)
    w = nd.array([1.0, 2.0], dtype="float16")
    with pytest.warns(UserWarning, match="multi_precision=True"):
        state = opt.create_state_multi_precision(0, w)
    opt.update_multi_precision(0, w, nd.zeros(2, dtype="float16"), state)
    assert np.array_equal(w.asnumpy(), np.array([1.0, 2.0], np.float16))


@pytest.mark.parametrize("name, params", [("adamw", {}), ("sgdw", {"momentum": 0.5})])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_multi_precision_changes_nothing_for_float32_and_float64(name, params, dtype):
    """As in MXNet: no master copy (the state is the optimizer's own), the same numbers bitwise."""
    grads, w0 = _gradients(n=7, steps=20)
    with_mp, state = _run(name, dtype, grads, w0, True, **params)
    assert np.array_equal(with_mp, _run(name, dtype, grads, w0, False, **params)[0])
    own = state if isinstance(state, tuple) else (state,)  # adamw: (m, v); sgdw: the momentum
    assert all(isinstance(s, nd.NDArray) and s.dtype == np.dtype(dtype) for s in own)


@pytest.mark.slow  # like every README example test
def test_the_readmes_float16_script_prints_what_it_says(capsys):
    """The README's decouple_lr / float16 script, run as printed; its output compared as numbers
    (the float16 errors are roundings of 2^-11-size steps: 10% covers another CPU's float32 order)."""
    import re
    import warnings
    from pathlib import Path

    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    (code, printed) = re.findall(r"This script shows each claim.*?```python\n(.*?)```\n\nprints\n\n```\n(.*?)```",
                                 readme, re.S)[0]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        exec(compile(code, "README.md", "exec"), {})  # noqa: S102  (our own README)
    out = capsys.readouterr().out
    assert len(printed.splitlines()) == len(out.splitlines())
    for want, got in zip(printed.splitlines(), out.splitlines()):
        nums_w = [float(x) for x in re.findall(r"\d+\.\d+(?:e-?\d+)?", want)]
        nums_g = [float(x) for x in re.findall(r"\d+\.\d+(?:e-?\d+)?", got)]
        assert re.sub(r"\d+\.\d+(?:e-?\d+)?", "N", want) == re.sub(r"\d+\.\d+(?:e-?\d+)?", "N", got)
        assert nums_g == pytest.approx(nums_w, rel=0.1)


@pytest.mark.parametrize("name", ["adamw", "sgdw"])
def test_integer_weights_are_refused(name):
    """As MXNet's own optimizers refuse them (an int32 adamw update divided by an integer 0: SIGFPE)."""
    opt = mx.optimizer.create(name)
    with pytest.raises(ValueError, match="got a int32 weight; allowed: floating-point weights"):
        opt.create_state_multi_precision(0, mx.nd.ones((4,), dtype="int32"))
