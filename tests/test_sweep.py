"""The batched sweep against single runs, divergence, chunking, validation, and `mxwd sweep`."""
import json

import numpy as np
import pytest

from mxwd.config import Config
from mxwd.scratch import fit_and_plot
from mxwd.sweeps import sweep, train_grid

LAMBDAS = (0.0, 0.5, 5.0)
SEEDS = (0, 3)


@pytest.mark.parametrize(
    "config",
    [
        Config(),
        Config(batch_size=3),  # a partial last batch
        Config(batch_size=5, decay_bias=True),
        Config(batch_size=5, lr=0.01, init_scale=0.01, loss_reduction="mean"),  # d2l 1.0 semantics
        Config(batch_size=4, dtype="float64"),
    ],
    ids=["source", "partial-batch", "decay-bias", "mean", "float64"],
)
def test_every_sweep_model_equals_its_single_run(config):
    result = sweep(LAMBDAS, SEEDS, config)
    for s, seed in enumerate(SEEDS):
        for j, lambd in enumerate(LAMBDAS):
            single = fit_and_plot(lambd, config, seed=seed)
            np.testing.assert_allclose(result.grid.train_ls[s, j], single.train_ls, rtol=1e-5, atol=0)
            np.testing.assert_allclose(result.grid.test_ls[s, j], single.test_ls, rtol=1e-5, atol=0)
            np.testing.assert_allclose(result.grid.w[s, j], single.w, rtol=1e-5, atol=1e-7)
            assert result.grid.b[s, j] == pytest.approx(single.b, rel=1e-5, abs=1e-7)


def test_at_the_sources_settings_the_sweep_is_bitwise_the_single_run():
    result = sweep(LAMBDAS, SEEDS, Config())
    for s, seed in enumerate(SEEDS):
        for j, lambd in enumerate(LAMBDAS):
            single = fit_and_plot(lambd, seed=seed)
            assert tuple(result.grid.train_ls[s, j]) == single.train_ls
            assert tuple(result.grid.w[s, j].tolist()) == single.w


def test_diverged_models_are_reported_and_spoil_no_other_model():
    config = Config()
    mixed = sweep((0.5, 700.0, 5.0), SEEDS, config)  # lr * 700 = 2.1 >= 2
    clean = sweep((0.5, 5.0), SEEDS, config)
    assert mixed.grid.diverged[:, 1].all() and not mixed.grid.diverged[:, [0, 2]].any()
    np.testing.assert_array_equal(mixed.grid.w[:, [0, 2]], clean.grid.w)
    assert np.isnan(mixed.final_test[:, 1]).all()
    assert all(row["diverged"] == (row["lambd"] == 700.0) for row in mixed.rows())
    assert json.dumps(mixed.to_dict(), allow_nan=False)  # non-finite numbers are written as null


def test_a_non_finite_loss_marks_a_model_diverged():
    result = sweep((0.0, 1.0), [0], Config(lr=0.5))  # lr too large for the data, lr * lambd < 2
    assert result.grid.diverged.all()


def test_chunks_give_the_same_models_as_one_batch():
    config = Config(num_epochs=3)
    whole = train_grid(config, LAMBDAS, list(range(5)))
    chunked = train_grid(config, LAMBDAS, list(range(5)), max_models_per_chunk=4)  # 1 seed a chunk
    np.testing.assert_array_equal(whole.w, chunked.w)
    np.testing.assert_array_equal(whole.test_ls, chunked.test_ls)


def test_validation_selects_a_lambd_and_answers_whether_it_is_optimal():
    lambdas = tuple(np.logspace(-2, 2.5, 10))
    result = sweep(lambdas, 5, Config(), n_valid=5)
    assert result.validation.valid_ls.shape == (5, 10)
    sel = result.selection()
    assert sel["validated_lambd"] in lambdas and sel["test_optimal_lambd"] in lambdas
    medians = result.band("test")[0]
    assert sel["median_test_loss_at_optimal"] == pytest.approx(np.min(medians))
    assert sel["excess_test_loss"] >= 0
    assert "is the validated lambd really optimal?" in result.table()
    # the validation models train on 15 rows: the same seed's first 15 training rows
    assert not np.array_equal(result.validation.w, result.grid.w)


@pytest.mark.parametrize(
    "kwargs, words",
    [
        (dict(lambdas=(), seeds=2), ["lambdas", "empty"]),
        (dict(lambdas=(-1,), seeds=2), ["lambdas", "-1"]),
        (dict(lambdas=(1,), seeds=0), ["seeds", ">= 1"]),
        (dict(lambdas=(1,), seeds=[]), ["seeds", "empty"]),
        (dict(lambdas=(1,), seeds="3"), ["seeds", "'3'"]),
        (dict(lambdas=(1,), seeds=2, n_valid=20), ["n_valid=20", "leaves 0", "n_train - batch_size"]),
        (dict(lambdas=(1,), seeds=2, n_valid=-1), ["n_valid", ">= 0"]),
    ],
)
def test_bad_sweep_input(kwargs, words):
    with pytest.raises(ValueError) as info:
        sweep(**kwargs)
    for word in words:
        assert word in str(info.value)


@pytest.mark.slow
def test_mxwd_sweep_writes_its_tables_and_figures(cli, tmp_path):
    out = tmp_path / "sweep"
    proc = cli("sweep", "--seeds", 20, "--out", out, "--quiet")
    assert proc.returncode == 0, proc.stderr
    assert sorted(p.name for p in out.iterdir()) == sorted(
        ["sweep.csv", "sweep.json", "regularization_path.png", "regularization_path.svg",
         "weight_norm.png", "weight_norm.svg"])
    payload = json.loads((out / "sweep.json").read_text())
    assert len(payload["lambdas"]) == 50 and payload["seeds"] == list(range(20))
    assert len(payload["rows"]) == 1000
    assert (out / "sweep.csv").read_text().count("\n") == 1001
    assert "is the validated lambd really optimal?" in proc.stdout
    assert proc.stderr == ""  # --quiet: no progress bar
