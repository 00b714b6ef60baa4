"""The lr x lambd x seeds engine for sgd, adam, adamw and sgdw, against gluon.Trainer runs."""
import json

import numpy as np
import pytest

import mxwd
from mxwd import optimizer_atlas as A
from mxwd.config import Config
from mxwd.optimizers import SWEEP_OPTIMIZERS, spec

LRS, LAMBDAS, SEEDS = (0.001, 0.01), (0.0, 1.0, 5.0), (0, 2)


def worst_gap(result, optimizer, config, mode="wd"):
    """max over models of |w_sweep - w_trainer| / max(1, |w|), and the same for b
    (relative above 1: with lr = 0.01 and batch size 1 sgdw's weights grow to 1e5)."""
    worst = 0.0
    for s, seed in enumerate(result.seeds):
        for k, (lr, lambd) in enumerate(result.pairs):
            w, b = A.train_with(spec(optimizer), config.replace(lr=lr, seed=seed), lambd, mode)
            worst = max(worst, np.abs(result.grid.w[s, k] - w).max() / max(1.0, np.abs(w).max()),
                        abs(result.grid.b[s, k] - b) / max(1.0, abs(b)))
    return worst


@pytest.mark.parametrize("optimizer", SWEEP_OPTIMIZERS)  # the optimizer table's
@pytest.mark.parametrize("batch_size", [pytest.param(1, marks=pytest.mark.slow), 3])  # 3: a partial last batch
def test_each_batched_model_equals_its_gluon_trainer_run(optimizer, batch_size):
    config = Config(batch_size=batch_size)
    result = mxwd.sweep(LAMBDAS, SEEDS, config, n_valid=0, optimizer=optimizer, lrs=LRS)
    assert worst_gap(result, optimizer, config) <= 1e-5


@pytest.mark.parametrize("optimizer", ["adamw", "sgdw"])
def test_in_float64_the_decoupled_engines_are_the_optimizers_to_rounding(optimizer):
    config = Config(batch_size=4, dtype="float64")
    result = mxwd.sweep(LAMBDAS, SEEDS, config, n_valid=0, optimizer=optimizer, lrs=LRS)
    assert worst_gap(result, optimizer, config) <= 1e-12


def test_adam_plus_l2_is_mxnets_adam_with_wd_and_the_penalty_in_the_loss():
    config = Config()
    result = mxwd.sweep((5.0,), (0,), config, n_valid=0, optimizer="adam", lrs=(0.01,))
    penalty, _ = A.train_with(spec("adam"), config.replace(lr=0.01), 5.0, "penalty")
    builtin, _ = A.train_with(spec("adam"), config.replace(lr=0.01), 5.0, "wd")
    assert np.array_equal(penalty, builtin)  # bitwise: MXNet's adam adds wd * w to the gradient
    assert np.abs(result.grid.w[0, 0] - builtin).max() <= 1e-5


def test_decoupled_decay_at_lr_lambd_of_2_or_more_is_marked_diverged():
    result = mxwd.sweep((100.0, 300.0), (0,), n_valid=0, optimizer="adamw", lrs=(0.001, 0.01))
    assert result.grid.diverged[0].tolist() == [False, False, False, True]  # 0.01 * 300 = 3
    adam = mxwd.sweep((300.0,), (0,), n_valid=0, optimizer="adam", lrs=(0.01,))
    assert not adam.grid.diverged.any()  # coupled Adam has no such factor


@pytest.mark.parametrize("kwargs, words", [
    (dict(optimizer="rmsprop", lrs=(0.1,)), ["optimizer", "rmsprop", "sgd, adam, adamw, sgdw"]),
    (dict(optimizer="adam", lrs=()), ["lrs", "empty"]),
    (dict(optimizer="adam", lrs=(-0.1,)), ["lrs", "-0.1"]),
    (dict(optimizer="adamw", lrs=(0.1,), hyperparameters={"beta1": 1.0}), ["beta1", "1.0"]),
    (dict(optimizer="sgd", lrs=(0.1,), hyperparameters={"beta1": 0.5}), ["sgd", "beta1"]),
    (dict(optimizer="adam", exact=True), ["exact=True"]),
])
def test_bad_optimizer_sweep_input(kwargs, words):
    with pytest.raises(ValueError) as info:
        mxwd.sweep((1.0,), 1, n_valid=0, **kwargs)
    for word in words:
        assert word in str(info.value)


@pytest.mark.slow
def test_mxwd_sweep_with_optimizers_writes_the_heatmap_and_the_paths(cli, tmp_path):
    out = tmp_path / "opt"
    proc = cli("sweep", "--optimizer", "adam", "adamw", "--lrs", 0.001, 0.01, "--lambdas", 0.1, 10,
               "--seeds", 2, "--n-valid", 0, "--beta2", 0.99, "--out", out, "--quiet")
    assert proc.returncode == 0, proc.stderr
    assert sorted(p.name for p in out.iterdir()) == sorted(
        ["sweep.csv", "sweep.json", "heatmap.png", "heatmap.svg", "optimizer_paths.png", "optimizer_paths.svg"])
    assert (out / "sweep.csv").read_text().count("\n") == 1 + 2 * 2 * 2 * 2
    payload = json.loads((out / "sweep.json").read_text())
    assert [s["optimizer"] for s in payload["sweeps"]] == ["adam", "adamw"]
    assert payload["sweeps"][1]["hyperparameters"]["beta2"] == 0.99
    assert "best median final test loss per optimizer" in proc.stdout
