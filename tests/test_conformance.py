"""One matrix, every engine: each trains the model it claims to, by compare's rule.

Every place that trains the chapter's model reads the one `DecayPolicy` and `StepPlan`,
so each engine must agree with the single run whose name it carries:
- the batched sweep (fast and exact) is `fit_and_plot`, the from-scratch penalty;
- the sweep's optimizer="sgd" and the atlas's runs for plain SGD are `fit_and_plot_gluon`,
  the optimizer's wd (per step, also on a partial batch);
- the Gluon path with the other bias exclusion is the same Gluon run.
"Agree" is `compare`'s rule (mxwd.comparison.Gap): weights and bias within the dtype's
tolerance (float32 1e-5, float64 1e-10) and every per-epoch loss within it, relative or
absolute. The matrix: decay_bias off and on; batch sizes 1, 3 and 7; n_train 20 and 23
(3 and 7 leave partial batches, 23 with either); summed and mean loss; float32 and float64;
and both bias exclusions through the Gluon engines. The data-parallel engine has the
same claim, tested in tests/test_distributed.py (it launches processes).

Adding an engine means adding it to ENGINES.
"""
import itertools

import numpy as np
import pytest

from mxwd import optimizer_atlas as A
from mxwd.comparison import TOLERANCE, Gap
from mxwd.concise import fit_and_plot_gluon
from mxwd.config import Config
from mxwd.optimizers import spec
from mxwd.results import FitResult
from mxwd.scratch import fit_and_plot
from mxwd.sweeps import sweep

LAMBD = 3.0
EPOCHS = 2  # the claims are per step: two epochs show every kind of step, partial ones included


def _from_grid(result, config, lambd):
    g = result.grid
    return FitResult("sweep", lambd, config, tuple(g.train_ls[0, 0].tolist()), tuple(g.test_ls[0, 0].tolist()),
                     tuple(g.w[0, 0].tolist()), float(g.b[0, 0]))


def sweep_fast(config, lambd):
    return _from_grid(sweep([lambd], [config.seed], config, n_valid=0), config, lambd)


def sweep_exact(config, lambd):
    return _from_grid(sweep([lambd], [config.seed], config, n_valid=0, exact=True), config, lambd)


def sweep_sgd(config, lambd):
    return _from_grid(sweep([lambd], [config.seed], config, n_valid=0, optimizer="sgd", lrs=[config.lr]),
                      config, lambd)


def atlas(mode):
    def run(config, lambd):
        w, b = A.train_with(spec("sgd"), config, lambd, mode)
        return FitResult("atlas", lambd, config, (), (), tuple(w.tolist()), b)  # the atlas keeps no losses
    return run


def gluon_other_exclusion(config, lambd):
    other = "wd_mult" if config.bias_exclusion == "two_trainers" else "two_trainers"
    return fit_and_plot_gluon(lambd, config.replace(bias_exclusion=other))


REFERENCES = {"fit_and_plot": fit_and_plot, "fit_and_plot_gluon": fit_and_plot_gluon}
# In float64 the atlas's three runs mix float64 arithmetic with MXNet's sgd_update, which takes
# lr, wd and rescale_grad = 1/|B| as float32 numbers: the penalty's gradient is scaled by
# fl32(1/|B|) * |B| != 1 and the decoupled step by lr * lambd unrounded, about 1e-8 relative
# (compare's cause "float32 operator hyperparameters"). The atlas tells its classes apart at
# 1e-4 of the decay's effect, so for these two float64 is held to the float32 rule.
MIXED_PRECISION = 1e-5
MIXED = ("atlas sgd: penalty in the loss", "atlas sgd: decoupled reference")
# (engine, how it trains, the single run it claims to equal)
ENGINES = [
    ("sweep (fast engine)", sweep_fast, "fit_and_plot"),
    ("sweep (exact engine)", sweep_exact, "fit_and_plot"),
    ("sweep optimizer='sgd'", sweep_sgd, "fit_and_plot_gluon"),
    ("atlas sgd: built-in wd", atlas("wd"), "fit_and_plot_gluon"),
    ("atlas sgd: penalty in the loss", atlas("penalty"), "fit_and_plot_gluon"),
    ("atlas sgd: decoupled reference", atlas("decoupled"), "fit_and_plot_gluon"),
    ("Gluon, the other bias exclusion", gluon_other_exclusion, "fit_and_plot_gluon"),
]

MATRIX = [
    Config(num_epochs=EPOCHS, decay_bias=bias, batch_size=B, n_train=n, loss_reduction=red, dtype=dtype,
           bias_exclusion=excl)
    for bias, B, n, red, dtype, excl in itertools.product(
        [False, True], [1, 3, 7], [20, 23], ["sum", "mean"], ["float32", "float64"], ["two_trainers", "wd_mult"])
    # the bias exclusion matters to the Gluon engines only: each config meets both through
    # "the other bias exclusion", so half the product suffices
    if excl == ("wd_mult" if (B + n) % 2 else "two_trainers")
]


def _id(c):
    return (f"bias{int(c.decay_bias)}-B{c.batch_size}-n{c.n_train}-{c.loss_reduction}-{c.dtype[-2:]}-"
            f"{c.bias_exclusion}")


@pytest.mark.parametrize("config", MATRIX, ids=[_id(c) for c in MATRIX])
def test_every_engine_trains_the_model_it_names(config):
    tol = TOLERANCE[config.dtype]
    references = {name: run(LAMBD, config) for name, run in REFERENCES.items()}
    failures = []
    for name, run, claim in ENGINES:
        got, ref = run(config, LAMBD), references[claim]
        if not got.train_ls:  # no losses recorded: weights and bias only
            got = FitResult(got.path, got.lambd, got.config, ref.train_ls, ref.test_ls, got.w, got.b)
        mixed = name in MIXED and config.dtype == "float64"
        gap = Gap.between(got, ref, MIXED_PRECISION if mixed else tol)
        if not gap.agree:
            failures.append(f"{name} vs {claim}: {gap.line()}")
    assert not failures, "\n".join(failures)


def test_the_matrix_covers_what_it_says():
    assert len(MATRIX) == 48
    assert {c.bias_exclusion for c in MATRIX} == {"two_trainers", "wd_mult"}
    assert any(c.partial_batch for c in MATRIX) and any(not c.partial_batch for c in MATRIX)
    assert np.unique([(c.batch_size, c.n_train) for c in MATRIX], axis=0).shape[0] == 6


def test_the_atlas_classifies_with_the_bias_decayed_too():
    # all four runs decay what the policy decays (w and b here): plain SGD stays coupled,
    # Adam coupled, AdamW decoupled (it was "other" for all three when only wd touched b)
    # one epoch (20 steps) is enough: the distances are ~1e-6 x the effect, the rule's bar 1e-4
    result = A.atlas(["sgd", "adam", "adamw"], Config(decay_bias=True, num_epochs=1, seed=1))
    assert [e.classification for e in result.entries] == ["coupled", "coupled", "decoupled"]
