"""The batched sweep against single runs, divergence, chunking, validation, and `mxwd sweep`."""
import json

import numpy as np
import pytest

from mxwd.config import Config
from mxwd.scratch import fit_and_plot
from mxwd.sweeps import sweep, train_grid

LAMBDAS = (0.0, 0.5, 5.0)
SEEDS = (0, 3)


CONFIGS = [
    Config(),
    Config(batch_size=3),  # a partial last batch
    Config(n_train=23, batch_size=5, partial_batch_penalty="per_step"),  # Gluon's semantics on it
    Config(batch_size=5, decay_bias=True),
    Config(batch_size=5, lr=0.01, init_scale=0.01, loss_reduction="mean"),  # d2l 1.0 semantics
    Config(batch_size=4, dtype="float64"),
    Config(batch_size=7, dtype="float64", decay_bias=True),
    pytest.param(Config(num_epochs=100), marks=pytest.mark.slow),  # d2lzh-2019: 2000 steps
]
IDS = ["source", "partial-batch", "per-step", "decay-bias", "mean", "float64", "float64-partial-bias", "100-epochs"]


def assert_within(grid, s, j, single, tol):
    """compare's rule between a sweep model and its single run: weights and bias within tol,
    every loss within tol relative or absolute."""
    from mxwd.comparison import Gap
    from mxwd.results import FitResult

    model = FitResult("scratch", single.lambd, single.config, tuple(grid.train_ls[s, j].tolist()),
                      tuple(grid.test_ls[s, j].tolist()), tuple(grid.w[s, j].tolist()), float(grid.b[s, j]))
    gap = Gap.between(model, single, tol)
    assert gap.agree, gap.line()
    return gap


# The exact engine runs fit_and_plot's own code, so it equals the single runs by construction:
# two of its settings stay in the fast suite (a partial batch, float64), the rest are slow.
EXACT_FAST = {"partial-batch", "float64"}
MATRIX = [pytest.param(c.values[0] if hasattr(c, "values") else c, exact,
                       marks=(list(getattr(c, "marks", ())) or
                              ([pytest.mark.slow] if exact and name not in EXACT_FAST else [])),
                       id=f"{'exact' if exact else 'fast'}-{name}")
          for exact in (False, True) for c, name in zip(CONFIGS, IDS)
          if not (exact and name == "100-epochs")]  # 2000 steps of the same code: the fast engine's case suffices


@pytest.mark.parametrize("config, exact", MATRIX)
def test_every_sweep_model_equals_its_single_run(config, exact):
    lambdas = (0.0, 0.5, 5.0, 150.0) if config.lr * 150 < 2 else LAMBDAS
    seeds = SEEDS
    if config.num_epochs > 10:  # 2000 steps a model: one seed, the book's two lambdas and a strong one
        lambdas, seeds = (0.0, 3.0, 150.0), SEEDS[:1]
    result = sweep(lambdas, seeds, config, exact=exact, n_valid=0)
    # float32: within 1e-5 (compare's float32 rule); float64: within 1e-10 (its float64 rule)
    tol = 1e-5 if config.dtype == "float32" else 1e-10
    worst = 0.0
    for s, seed in enumerate(seeds):
        for j, lambd in enumerate(lambdas):
            single = fit_and_plot(lambd, config, seed=seed)
            worst = max(worst, assert_within(result.grid, s, j, single, tol).max_dw)
    if config.dtype == "float64":
        assert worst <= 1e-12  # the fast engine computes in float64: the same math, to rounding


@pytest.mark.slow
def test_the_exact_engine_does_fit_and_plots_float_operations():
    # The exact engine repeats fit_and_plot's float32 operations in its order; the last
    # digits still differ where MXNet's batched matrix product rounds unlike its single
    # one (CPU-dependent: bitwise on the machine where mxwd was first measured, 5e-8 here).
    result = sweep(LAMBDAS, SEEDS, Config(), exact=True)
    for s, seed in enumerate(SEEDS):
        for j, lambd in enumerate(LAMBDAS):
            single = fit_and_plot(lambd, seed=seed)
            assert np.abs(result.grid.w[s, j] - np.array(single.w)).max() <= 1e-7


def test_the_fast_engine_is_deterministic():
    a = sweep(LAMBDAS, SEEDS, Config())
    b = sweep(LAMBDAS, SEEDS, Config())
    assert np.array_equal(a.grid.w, b.grid.w) and np.array_equal(a.grid.test_ls, b.grid.test_ls)


@pytest.mark.parametrize("exact", [False, pytest.param(True, marks=pytest.mark.slow)], ids=["fast", "exact"])
def test_diverged_models_are_reported_and_spoil_no_other_model(exact):
    config = Config()
    mixed = sweep((0.5, 700.0, 5.0), SEEDS, config, exact=exact)  # lr * 700 = 2.1 >= 2
    clean = sweep((0.5, 5.0), SEEDS, config, exact=exact)
    assert mixed.grid.diverged[:, 1].all() and not mixed.grid.diverged[:, [0, 2]].any()
    # models do not interact: the same numbers up to how the batched products round
    np.testing.assert_allclose(mixed.grid.w[:, [0, 2]], clean.grid.w, rtol=0, atol=1e-7)
    assert np.isnan(mixed.final_test_ls[:, 1]).all()
    assert all(row["diverged"] == (row["lambd"] == 700.0) for row in mixed.rows())
    assert json.dumps(mixed.to_dict(), allow_nan=False)  # non-finite numbers are written as null


@pytest.mark.parametrize("exact", [False, True], ids=["fast", "exact"])
def test_a_non_finite_loss_marks_a_model_diverged(exact):
    result = sweep((0.0, 1.0), [0], Config(lr=0.5), exact=exact)  # lr too large for the data, lr * lambd < 2
    assert result.grid.diverged.all()


def test_chunks_give_the_same_models_as_one_batch():
    config = Config(num_epochs=3)
    whole = train_grid(config, LAMBDAS, list(range(5)))
    chunked = train_grid(config, LAMBDAS, list(range(5)), max_models_per_chunk=4)  # 1 seed a chunk
    np.testing.assert_allclose(whole.w, chunked.w, rtol=0, atol=1e-7)
    np.testing.assert_allclose(whole.test_ls, chunked.test_ls, rtol=1e-9)


def test_validation_selects_a_lambd_and_answers_whether_it_is_optimal():
    lambdas = tuple(np.logspace(-2, 2.5, 10))
    result = sweep(lambdas, 5, Config(), n_valid=5)
    assert result.validation.valid_ls.shape == (5, 10)
    sel = result.selection()
    assert sel["validated_lambd"] in lambdas and sel["test_optimal_lambd"] in lambdas
    medians = result.band("final_test_ls").median
    assert sel["median_final_test_ls_at_optimal"] == pytest.approx(np.min(medians))
    assert sel["excess_final_test_ls"] >= 0
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
def test_mxwd_sweep_writes_its_tables_and_figures(cli_here, tmp_path):
    out = tmp_path / "sweep"
    proc = cli_here("sweep", "--seeds", 20, "--out", out, "--quiet")
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


def test_one_rule_for_seeds_and_n_valid_in_the_api_and_the_cli():
    import inspect

    from mxwd.cli import build_parser
    from mxwd.config import DEFAULT_N_VALID

    assert sweep((1.0,), 3, Config(seed=5), n_valid=0).seeds == (5, 6, 7)  # N seeds from config.seed
    assert sweep((1.0,), [9, 2], Config(seed=5), n_valid=0).seeds == (9, 2)
    args = build_parser().parse_args(["sweep"])
    assert inspect.signature(sweep).parameters["n_valid"].default == args.n_valid == DEFAULT_N_VALID
    assert sweep((1.0,), 2).selection() is not None  # the API's default validates, like the CLI's


def test_a_diverged_lambd_leaks_no_warning(recwarn):
    result = sweep((0.5, 700.0), 3, n_valid=5)
    result.table()
    result.band("final_test_ls")
    assert not [w for w in recwarn if issubclass(w.category, RuntimeWarning)]
