"""The exercises' answers against closed forms, brute force and scikit-learn."""
from __future__ import annotations

import numpy as np
import pytest

import mxwd.exercises as ex
from mxwd.config import Config

sklearn = pytest.importorskip("sklearn")
from sklearn.linear_model import BayesianRidge, Ridge, RidgeCV  # noqa: E402

LAMBDAS = (1e-3, 0.01, 0.05, 0.3, 2.0, 10.0, 100.0, 1e4)


@pytest.fixture(scope="module")
def data0():
    return ex.arrays(Config(seed=0))


# ---------------------------------------------------------------------------------------
# Exercise 2: ridge, the alpha mapping and leave-one-out


def test_ridge_matches_sklearn_with_alpha_n_lambd(data0):
    # mxwd's epoch objective sum r^2/2 + n lambd ||w||^2/2 is half of Ridge's with alpha = n lambd
    X, y, _, _ = data0
    for lam in (0.01, 5.0):
        w, b = ex.ridge(X, y, 20 * lam)
        sk = Ridge(alpha=20 * lam, fit_intercept=True, solver="svd").fit(X, y)
        # float64 solves of a 20x20 system with condition ~ (200 + alpha) / alpha: 1e-10 is ample
        np.testing.assert_allclose(w, sk.coef_, rtol=0, atol=1e-10)
        assert b == pytest.approx(sk.intercept_, abs=1e-10)


def test_ridge_gradient_of_mxwd_objective_vanishes(data0):
    # the minimizer of (1): d/dw = X^T r + n lambd w = 0 and d/db = sum r = 0
    X, y, _, _ = data0
    lam = 0.3
    w, b = ex.ridge(X, y, 20 * lam)
    r = X @ w + b - y
    np.testing.assert_allclose(X.T @ r + 20 * lam * w, 0, atol=1e-11)
    assert abs(r.sum()) < 1e-11


def test_ridge_alpha_zero_is_min_norm_least_squares(data0):
    X, y, _, _ = data0
    w, b = ex.ridge(X, y, 0.0)
    np.testing.assert_allclose(X @ w + b, y, atol=1e-10)  # p > n: it interpolates
    Xc = X - X.mean(axis=0)
    np.testing.assert_allclose(w, np.linalg.lstsq(Xc, y - y.mean(), rcond=None)[0], atol=1e-10)


def test_loo_errors_match_brute_force_refits(data0):
    # refit Ridge(alpha = n_train * lambd) on every n - 1 rows: alpha held fixed across folds
    X, y, _, _ = data0
    got = ex.loo_errors(Config(), 0, LAMBDAS)
    n = len(y)
    for lam, value in zip(LAMBDAS, got):
        res = []
        for i in range(n):
            keep = np.arange(n) != i
            model = Ridge(alpha=n * lam, solver="svd").fit(X[keep], y[keep])
            res.append(y[i] - model.predict(X[i:i + 1])[0])
        assert value == pytest.approx(np.mean(np.square(res)) / 2, rel=1e-8)


def test_loo_errors_match_ridgecv(data0):
    X, y, _, _ = data0
    got = ex.loo_errors(Config(), 0, LAMBDAS)
    cv = RidgeCV(alphas=[20 * lam for lam in LAMBDAS], store_cv_results=True).fit(X, y)
    # RidgeCV's cv_results_ are squared errors (twice squared_loss), one column per alpha
    np.testing.assert_allclose(got, cv.cv_results_.mean(axis=0) / 2, rtol=1e-7)


def test_loo_errors_reject_bad_lambdas():
    with pytest.raises(ValueError, match="lambdas must be >= 0"):
        ex.loo_errors(Config(), 0, [-1.0])
    with pytest.raises(ValueError, match="lambdas must hold at least one value"):
        ex.loo_errors(Config(), 0, [])


def test_selection_regret_rules():
    out = ex.selection_regret(Config(), seeds=3, lambdas=(0.01, 0.1, 1.0, 10.0, 100.0))
    rules = out["rules"]
    assert set(rules) == {"validation", "loo", "evidence", "test_optimal"}
    assert rules["test_optimal"]["regret"] == [0.0, 0.0, 0.0]
    for rule in rules.values():
        assert all(r >= 0 for r in rule["regret"])  # no rule beats the oracle
        assert len(rule["lambd"]) == 3


# ---------------------------------------------------------------------------------------
# Exercise 6: MAP, posterior mean and the evidence


def test_map_lambd_values():
    assert ex.map_lambd(0.01, 0.01, 20) == pytest.approx(0.05)
    assert ex.map_lambd(0.1, 0.01, 20) == pytest.approx(5.0)  # the book's lambd, with the prose's noise
    with pytest.raises(ValueError, match="prior_std must be > 0"):
        ex.map_lambd(0.01, 0.0, 20)
    with pytest.raises(ValueError, match="n_train must be >= 1"):
        ex.map_lambd(0.01, 0.01, 0)


def test_map_lambd_minimizes_the_negative_log_posterior(data0):
    # the ridge minimizer of mxwd's objective at map_lambd has a zero gradient of
    # sum r^2 / (2 s^2) + ||w||^2 / (2 s_w^2)
    X, y, _, _ = data0
    s, sw = 0.1, 0.03
    lam = ex.map_lambd(s, sw, 20)
    w, b = ex.ridge(X, y, 20 * lam)
    r = X @ w + b - y
    np.testing.assert_allclose(X.T @ r / s**2 + w / sw**2, 0, atol=1e-6 / s**2)


def test_posterior_mean_is_ridge(data0):
    X, y, _, _ = data0
    for s, sw in ((0.01, 0.01), (0.1, 0.01), (0.05, 0.2)):
        wp, bp = ex.posterior_mean(X, y, s, sw)
        wr, br = ex.ridge(X, y, 20 * ex.map_lambd(s, sw, 20))
        # two float64 solves of the same problem (201x201 primal vs 20x20 dual): the primal's
        # condition number (~ (200 + alpha) / alpha, alpha = s^2 / sw^2 >= 0.06) bounds the gap
        np.testing.assert_allclose(wp, wr, atol=1e-9)
        assert bp == pytest.approx(br, abs=1e-9)


def test_evidence_matches_bayesian_ridge():
    for seed in (0, 1):
        X, y, _, _ = ex.arrays(Config(seed=seed))
        mine = ex.evidence(X, y)
        sk = BayesianRidge(tol=1e-12, max_iter=10000, fit_intercept=True).fit(X, y)
        # the same fixed point from the same start; both converge in a few iterations
        assert mine.alpha_ == pytest.approx(sk.alpha_, rel=1e-9)
        assert mine.lambda_ == pytest.approx(sk.lambda_, rel=1e-9)
        assert ex.evidence_lambd(Config(), seed) == pytest.approx(sk.lambda_ / sk.alpha_ / 20, rel=1e-9)


def test_evidence_is_set_by_the_noise_hyperprior_when_p_exceeds_n():
    # p > n: the evidence sees only 1/alpha_ + p/lambda_, so alpha_ ~ 1 / (2 alpha_2):
    # lambd scales with alpha_2 (measured: 100x alpha_2 -> ~100x lambd)
    small = ex.evidence_lambd(Config(), 0, alpha_2=1e-8)
    large = ex.evidence_lambd(Config(), 0, alpha_2=1e-6)
    assert large / small == pytest.approx(100, rel=0.01)
    with pytest.raises(ValueError, match="unknown hyperprior"):
        ex.evidence_lambd(Config(), 0, beta=1.0)


# ---------------------------------------------------------------------------------------
# Exercise 4: matrices


def test_frobenius_penalty_and_gluon_wd_on_a_matrix():
    m = ex.matrix_check(Config(), k=3, wd=5.0)
    assert m["shape"] == [200, 3]
    assert m["sum_of_squares"] == pytest.approx(m["trace"], rel=1e-12)
    assert m["frobenius_sq"] == pytest.approx(m["trace"], rel=1e-12)
    assert m["decayed"] == [n for n in m["decayed"] if n.endswith("weight")] and len(m["decayed"]) == 1
    # MXNet forms the decay coefficient in float32: at most ~2^-24 * max|W| per entry (2x slack);
    # a wrong penalty would differ by the size of the decay term itself (0.05 here)
    assert m["max_abs_step_difference"] <= 2 * 2.0**-24 * m["max_abs_W"]
    assert m["max_abs_decay_term"] > 1e4 * m["max_abs_step_difference"]
    exact = ex.matrix_check(Config(), k=2, wd=0.0)
    assert exact["max_abs_step_difference"] < 1e-14  # no float32 coefficient: float64 rounding only


def test_matrix_check_rejects_bad_k():
    with pytest.raises(ValueError, match="k must be >= 1"):
        ex.matrix_check(Config(), k=0)


# ---------------------------------------------------------------------------------------
# The whole


def test_exercises_keys_and_table():
    r = ex.exercises(Config(), seeds=2, only=["4", "6"])
    d = r.to_dict()
    assert list(d) == ["4", "6"]
    assert d["6"]["map_lambd_prose_noise"] == pytest.approx(5.0)
    table = r.table()
    assert table.startswith("| exercise | measured |") and "| 4 matrices |" in table


def test_exercises_rejects_unknown_exercise():
    with pytest.raises(ValueError, match="only must name exercises among 1, 2, 3, 4, 5, 6; got '7'"):
        ex.exercises(Config(), seeds=1, only=["7"])


@pytest.mark.slow
def test_other_methods_runs_and_weight_decay_wins():
    o = ex.other_methods(Config(), seeds=2, noise_levels=(1.0,), dropout_rates=(0.2,))
    for name in ("none", "weight_decay", "early_stopping", "more_data", "input_noise", "input_dropout"):
        assert o[name]["median_test_ls"] is not None
    assert o["weight_decay"]["median_test_ls"] < o["none"]["median_test_ls"]


# ---------------------------------------------------------------------------------------
# The command (registered by the lead in mxwd.cli; here on a bare subparsers object)


def _parse(argv):
    import argparse

    from mxwd.cli import exercises as command

    parser = argparse.ArgumentParser()
    command.add_parser(parser.add_subparsers(dest="command"))
    return command, parser.parse_args(argv)


def test_command_writes_json_md_and_refuses_existing_out(tmp_path, capsys):
    import json

    out = tmp_path / "ex"
    command, args = _parse(["exercises", "--only", "6", "4", "--seeds", "2", "--out", str(out), "--quiet"])
    assert command.run(args) == 0
    payload = json.loads((out / "exercises.json").read_text())
    assert payload["command"] == "exercises" and "4" in payload and "6" in payload and "2" not in payload
    assert payload["6"]["map_lambd_code_noise"] == pytest.approx(0.05)
    assert (out / "exercises.md").read_text().startswith("| exercise | measured |")
    capsys.readouterr()
    _, again = _parse(["exercises", "--only", "6", "--out", str(out), "--quiet"])
    with pytest.raises(ValueError, match="--force"):
        command.run(again)


def test_command_rejects_bad_only_and_seeds():
    with pytest.raises(SystemExit):
        _parse(["exercises", "--only", "7"])
    command, args = _parse(["exercises", "--seeds", "0"])
    with pytest.raises(ValueError, match="seeds must be >= 1"):
        command.run(args)


# ---------------------------------------------------------------------------------------
# Exercise 3: L1


def _one_step(config, lambd, w0):
    """One scratch step on the first training row from w0 (b = 0), and the inputs of the step."""
    from mxwd._mx import nd
    from mxwd.data import make_data
    from mxwd.scratch import ScratchModel

    data = make_data(config)
    params = [nd.array(w0, dtype=config.dtype).reshape((-1, 1)), nd.zeros((1,), dtype=config.dtype)]
    for p in params:
        p.attach_grad()
    model = ScratchModel(params, lambd, config)
    X, y = data.train_features[:1], data.train_labels[:1]
    model.step(X, y)
    x, yv = X.asnumpy()[0].astype(np.float64), float(y.asnumpy()[0, 0])
    return params[0].asnumpy().ravel(), x, yv


def test_l1_subgradient_step_equation():
    c = Config(penalty="l1", l1_step="subgradient", dtype="float64")
    rng = np.random.default_rng(0)
    w0 = rng.normal(size=200)
    w0[:5] = 0.0  # sign(0) = 0: no penalty push at exactly 0
    lam = 2.0
    w, x, y = _one_step(c, lam, w0)
    g = x * (x @ w0 - y)
    lr = float(np.float32(c.lr))  # sgd_update takes lr as float32
    np.testing.assert_allclose(w, w0 - lr * (g + lam * np.sign(w0)), rtol=0, atol=1e-12)


def test_l1_proximal_step_equation_and_exact_zeros():
    c = Config(penalty="l1", l1_step="proximal", dtype="float64")
    rng = np.random.default_rng(1)
    w0 = rng.normal(scale=0.01, size=200)
    lam = 3.0  # threshold lr * lam = 0.009: many entries land exactly on 0
    w, x, y = _one_step(c, lam, w0)
    lr = float(np.float32(c.lr))
    half = w0 - lr * x * (x @ w0 - y)
    np.testing.assert_allclose(w, np.sign(half) * np.maximum(np.abs(half) - c.lr * lam, 0), rtol=0, atol=1e-12)
    assert (w == 0).sum() > 10


def test_l1_zeros_grow_with_lambd_proximal_only():
    from mxwd.scratch import fit_and_plot

    zeros = {}
    for step in ("subgradient", "proximal"):
        c = Config(penalty="l1", l1_step=step)
        zeros[step] = [int(np.sum(np.asarray(fit_and_plot(lam, c).w) == 0)) for lam in (0.1, 1.0, 10.0)]
    assert zeros["subgradient"] == [0, 0, 0]  # the subgradient step jumps over 0
    assert zeros["proximal"] == sorted(zeros["proximal"]) and zeros["proximal"][-1] == 200


def test_l1_proximal_full_batch_converges_to_lasso():
    # ISTA contracts the error by ~100x per 200 epochs here (measured); 600 epochs: ~1e-8
    m = ex.lasso_check(Config(), lambd=0.05, num_epochs=600)
    assert m["same_support"]
    assert m["max_abs_w_difference"] < 1e-6 and abs(m["b_difference"]) < 1e-6


def test_l1_refused_by_gluon_the_optimizers_and_the_data_parallel_paths():
    import mxwd

    c = Config(penalty="l1")
    with pytest.raises(ValueError, match="Gluon's wd is L2 only"):
        mxwd.fit_and_plot_gluon(1.0, c)
    with pytest.raises(ValueError, match="runs in the chapter's SGD sweep only"):
        mxwd.sweep((1.0,), 1, c, optimizer="sgd", lrs=(0.003,))
    with pytest.raises(ValueError, match="the data-parallel paths run the L2 penalty"):
        mxwd.distributed(c.replace(batch_size=10), workers=2)


def test_penalty_fields_validated():
    assert Config().penalty == "l2" and Config().l1_step == "subgradient"
    with pytest.raises(ValueError, match="penalty must be one of l2, l1; got 'l0'"):
        Config(penalty="l0")
    with pytest.raises(ValueError, match="l1_step must be one of subgradient, proximal; got 'ista'"):
        Config(l1_step="ista")


def test_figures_size_and_fonts():
    from mxwd import exercises_plot

    e2 = ex._exercise_2(Config(), (0, 1))
    e3 = ex.l1_experiment(Config(), seeds=1, lambdas=(1.0, 10.0))
    for fig in (exercises_plot.selection(e2), exercises_plot.l1(e3)):
        w, h = fig.get_size_inches()
        assert w >= 6.4 and h >= 4
        fig.canvas.draw()  # Figure made without pyplot: its own Agg canvas
        sizes = [t.get_fontsize() for t in fig.findobj(lambda a: hasattr(a, "get_fontsize")) if t.get_text()]
        assert sizes and min(sizes) >= 9


def test_perturbed_inputs_are_deterministic_and_level_zero_is_the_chapter():
    import mxwd

    c = Config(num_epochs=2)
    a = ex._perturbed_fit(c, "noise", 0.5)
    assert ex._perturbed_fit(c, "noise", 0.5).w == a.w  # one seed, one answer
    plain = mxwd.fit_and_plot(0.0, c)
    np.testing.assert_allclose(ex._perturbed_fit(c, "dropout", 0.0).w, plain.w, rtol=0, atol=1e-6)
    assert a.w != plain.w


def test_an_l1_sweep_trains_every_model_as_fit_and_plot_does():
    import mxwd
    from mxwd.config import Config

    config = Config(penalty="l1", l1_step="proximal", num_epochs=2, batch_size=3)
    result = mxwd.sweep([0.5, 5.0], [0, 1], config, n_valid=0)
    for s, seed in enumerate((0, 1)):
        for j, lambd in enumerate((0.5, 5.0)):
            single = mxwd.fit_and_plot(lambd, config, seed=seed)
            assert result.grid.w[s, j].tolist() == list(single.w)  # the exact engine: the same loop, bitwise
    assert (result.grid.w[:, 1] == 0).sum() > (result.grid.w[:, 0] == 0).sum()  # more exact zeros at 5
    with pytest.raises(ValueError, match="runs in the chapter's SGD sweep only"):
        mxwd.sweep([0.5], [0], config, n_valid=0, optimizer="adamw", lrs=[0.01])
