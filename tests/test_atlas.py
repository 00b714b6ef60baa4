"""The optimizer atlas: classifications checked against independent float64 NumPy references.

Each listed optimizer is run by the atlas on MXNet, and by a NumPy implementation of its
update rule written from the math (mxwd.optimizers: *Ref) in the three modes (penalty
in the loss, built-in wd, decoupled reference); both are classified by the same rule and
must agree, and MXNet's built-in-wd run must follow the NumPy run to float32 accuracy.
"""
import json
import math

import numpy as np
import pytest

from mxwd import optimizer_atlas as A
from mxwd.config import Config
from mxwd.optimizers import CONTRIB_ADAMW, OPTIMIZERS, NAGRef, registered_names, spec
from tests import numpy_reference as R

LAMBD = 5.0
# What the atlas measures at the source's settings (README's table); the NumPy references
# must give the same answer.
EXPECTED = {
    "sgd": "coupled",
    "sgd+momentum": "coupled",
    "nag": "other",  # MXNet's in-place nag_mom_update: see test_nag_in_place_reads_the_new_weight
    "adam": "coupled",
    "rmsprop": "coupled",
    "adagrad": "decoupled",
    "adadelta": "other",  # decoupled, but wd*w per step without lr
    "lamb": "other",  # decoupled from the moments, then scaled by the trust ratio
    CONTRIB_ADAMW: "other",  # decoupled, but eta*wd*w per step, not lr*wd*w
}


def numpy_classification(s, config, lambd):
    runs = {m: R.run(s.reference, dict(s.hyperparameters), config, lambd, m) for m in A.MODES}
    effect = A.distance(runs["wd"], runs["none"])
    if A.equal(A.distance(runs["wd"], runs["penalty"]), effect):
        return "coupled", runs
    if A.equal(A.distance(runs["wd"], runs["decoupled"]), effect):
        return "decoupled", runs
    return "other", runs


def test_the_table_covers_every_registered_optimizer_and_adamw_update():
    covered = {s.mxnet for s in OPTIMIZERS}
    assert set(registered_names()) <= covered and "test" not in covered
    assert CONTRIB_ADAMW in covered
    assert len(registered_names()) == 18
    assert len({s.name for s in OPTIMIZERS}) == len(OPTIMIZERS)


@pytest.mark.parametrize("name", [pytest.param(n, marks=pytest.mark.slow) if n in ("adadelta", "adamw_update") else n
                                  for n in sorted(EXPECTED)])
def test_classification_matches_a_numpy_reference(name):
    s = spec(name)
    # 60 steps show most rules; adadelta's blow-up (|1 - wd| = 4 a step, from a tiny start) and
    # adamw_update's eta-scaled decay need the source's 200 to separate from the other modes
    config = Config(num_epochs=10 if name in ("adadelta", "adamw_update") else 3)
    entry = A.measure(s, config, LAMBD)
    expected, runs = numpy_classification(s, config, LAMBD)
    assert entry.classification == expected == EXPECTED[name], entry
    # MXNet's built-in-wd run follows the float64 NumPy rule to float32 accuracy
    # (and so do the other three modes)
    for mode in A.MODES:
        assert_follows(A.train_with(s, config, LAMBD, mode)[0], runs[mode])


def assert_follows(w_mx, w_np):
    if np.abs(w_np).max() < 1e30:
        assert np.abs(w_mx - w_np).max() <= 1e-5 * (1 + np.abs(w_np).max())
    else:  # adadelta with wd = 5: the factor 1 - wd = -4 reaches 1e120 in float64, overflows float32
        assert not np.all(np.isfinite(w_mx))


@pytest.mark.slow
def test_float64_mxnet_runs_match_the_references():
    # float64 on both sides: the rule, not float32 rounding, is what is compared. MXNet still
    # passes hyperparameters to its operators as float32 numbers, so the references get
    # the float32-rounded lr, wd, betas and epsilon. Then the SGD family and adamw_update
    # match to 1e-12 (measured 6e-17). Adam and LAMB keep a gap of 8.7e-7 and 2e-9: MXNet
    # computes their bias corrections with the Python double betas and rounds the
    # resulting per-step rate to float32, which the reference does not copy.
    f32 = lambda v: float(np.float32(v))  # noqa: E731
    config = Config(dtype="float64", lr=f32(0.003))
    bars = {"sgd": 1e-12, "sgd+momentum": 1e-12, "nag": 1e-12, CONTRIB_ADAMW: 1e-10, "adam": 1e-6, "lamb": 1e-8}
    for name, bar in bars.items():
        s = spec(name)
        lambd = f32(LAMBD if name != CONTRIB_ADAMW else 0.015)  # adamw_update's decay is not lr-scaled
        hp = dict(s.hyperparameters)
        if name in ("adam", "lamb", CONTRIB_ADAMW):
            hp.update(beta1=f32(0.9), beta2=f32(0.999), epsilon=f32(1e-6 if name == "lamb" else 1e-8))
        for mode in ("wd", "penalty"):
            w_mx = A.train_with(s, config, lambd, mode)[0]
            w_np = R.run(s.reference, hp, config, lambd, mode)
            assert np.abs(w_mx - w_np).max() <= bar * (1 + np.abs(w_np).max()), (name, mode)


def test_nag_in_place_reads_the_new_weight():
    """Finding: nag_mom_update(out=weight) computes the momentum's wd term from the updated weight."""
    from mxwd._mx import nd

    def two_steps(in_place):
        w, g, mom = (nd.array([v], dtype="float64") for v in (1.0, 0.0, 0.0))
        for _ in range(2):
            if in_place:
                nd.nag_mom_update(w, g, mom, lr=0.1, wd=1.0, momentum=0.5, out=w)
            else:
                w = nd.nag_mom_update(w, g, mom, lr=0.1, wd=1.0, momentum=0.5)
        return w.asscalar()

    assert two_steps(False) == pytest.approx(0.6975, abs=1e-8)  # lr as float32  # the documented rule
    assert two_steps(True) == pytest.approx(0.70125, abs=1e-8)  # what the NAG optimizer gets
    # the documented rule (not aliased) would make wd exactly the L2 penalty
    s = spec("nag")
    config = Config()
    runs = {m: R.run(NAGRef, dict(s.hyperparameters), config, LAMBD, m) for m in ("wd", "penalty", "none")}
    assert A.distance(runs["wd"], runs["penalty"]) <= 1e-12 * A.distance(runs["wd"], runs["none"])


def test_float64_weights_fail_where_create_state_ignores_the_dtype():
    """Finding: rmsprop, adagrad, adadelta and ftrl create float32 states for float64 weights."""
    config = Config(dtype="float64", num_epochs=1)
    for name in ("rmsprop", "adagrad", "adadelta", "ftrl"):
        with pytest.raises(Exception, match="expected float(32|64), got float(32|64)"):
            A.train_with(spec(name), config, LAMBD, "wd")
    A.train_with(spec("adam"), config, LAMBD, "wd")  # adam's states follow the weight


def test_adadelta_ignores_the_learning_rate():
    config = Config(num_epochs=2)
    w1 = A.train_with(spec("adadelta"), config, 0.01, "wd")[0]
    w2 = A.train_with(spec("adadelta"), config.replace(lr=1.0), 0.01, "wd")[0]
    assert np.array_equal(w1, w2)


def test_signsgd_decays_decoupled_although_the_docstring_says_coupled():
    from mxwd._mx import mx

    assert "rescale_grad * clip(grad, clip_gradient) + wd * weight" in mx.optimizer.Signum.__doc__
    entry = A.measure(spec("signsgd"), Config(), LAMBD)
    assert entry.classification == "decoupled" and entry.dw_decoupled <= 1e-5


def test_equal_is_relative_to_the_effect():
    assert A.equal(1e-7, 1.0) and not A.equal(1e-3, 1.0)
    assert not A.equal(0.0, 0.0)  # no effect: nothing can be said to agree
    assert not A.equal(0.0, math.inf) and not A.equal(math.inf, 1.0)


def test_unsupported_and_errors_are_reported_in_one_line():
    entry = A.measure(spec("groupadagrad"), Config(num_epochs=1), LAMBD)
    assert entry.classification == "unsupported"
    assert "Weight decay is not supported" in entry.notes and "\n" not in entry.notes
    assert A.one_line(ValueError("MXNetError: boom\nstack")) == "ValueError: MXNetError: boom"


def test_atlas_rejects_bad_input():
    with pytest.raises(ValueError, match="unknown optimizer 'adamx'"):
        A.atlas(["adamx"])
    with pytest.raises(ValueError, match="lambd must be > 0"):
        A.atlas(["sgd"], lambd=0.0)


@pytest.mark.slow
def test_mxwd_atlas_writes_its_files(cli_here, tmp_path):
    proc = cli_here("atlas", "--optimizers", "sgd", "adagrad", "--num-epochs", "2", "--out", tmp_path / "a", "--quiet")
    assert proc.returncode == 0, proc.stderr
    payload = json.loads((tmp_path / "a" / "atlas.json").read_text())
    rows = payload["optimizers"]
    assert [r["name"] for r in rows] == ["sgd", "adagrad"]
    assert set(rows[0]) >= {"name", "hyperparameters", "classification", "dw_coupled", "dw_decoupled",
                            "effect", "rule", "notes"}
    assert [r["classification"] for r in rows] == ["coupled", "decoupled"]
    assert sorted(p.name for p in (tmp_path / "a").iterdir()) == ["atlas.json", "atlas.md", "atlas.png", "atlas.svg"]
    assert "| sgd | coupled |" in (tmp_path / "a" / "atlas.md").read_text()
    bad = cli_here("atlas", "--optimizers", "nope", "--out", tmp_path / "b")
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1 and "unknown optimizer 'nope'" in bad.stderr


def test_clipping_order_sgd_never_clips_the_decay_adam_does():
    from mxwd._mx import nd

    one = lambda: nd.array([1.0])  # noqa: E731
    w = nd.sgd_update(one(), nd.array([0.0]), lr=0.1, wd=1.0, clip_gradient=1e-3)
    assert w.asscalar() == pytest.approx(0.9)  # lr * wd * w = 0.1, unclipped
    mean, var = nd.zeros((1,)), nd.zeros((1,))
    nd.adam_update(one(), nd.array([0.0]), mean, var, lr=0.1, wd=1.0, clip_gradient=1e-3, out=one())
    assert mean.asscalar() == pytest.approx(0.1 * 1e-3)  # (1 - beta1) * clip(0 + wd * w) = 0.1 * 1e-3


# Every row of the README's atlas table (the source's settings).
README_TABLE = {
    "sgd": "coupled", "sgd+momentum": "coupled", "nag": "other", "signum": "coupled", "signsgd": "decoupled",
    "sgld": "coupled", "dcasgd": "decoupled", "lars": "other", "lbsgd": "coupled", "ccsgd": "coupled",
    "adam": "coupled", "adamax": "coupled", "nadam": "coupled", "ftml": "coupled", "rmsprop": "coupled",
    "rmsprop-centered": "coupled", "adagrad": "decoupled", "groupadagrad": "unsupported", "adadelta": "other",
    "ftrl": "other", "lamb": "other", CONTRIB_ADAMW: "other", "adamw": "decoupled", "sgdw": "decoupled",
}


@pytest.mark.slow
def test_the_whole_atlas_matches_the_readme():
    # (its time is the benchmarks' business, not a test's: it depends on the machine's load)
    result = A.atlas()
    assert {e.name: e.classification for e in result.entries} == README_TABLE
    assert all(e.wd_mult_honoured for e in result.entries if e.classification != "unsupported")
    float64_fails = {e.name for e in result.entries if e.float64.startswith("no")}
    assert float64_fails == {"rmsprop", "rmsprop-centered", "adagrad", "groupadagrad", "adadelta", "ftrl"}
    assert "wd = lr*lambd = 0.015 reproduces the decoupled reference" in result.entry(CONTRIB_ADAMW).notes
    assert "wd = lr*lambd = 0.015 reproduces the decoupled reference" in result.entry("adadelta").notes
    assert len(repr(result)) < 300
