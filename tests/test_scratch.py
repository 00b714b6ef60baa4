"""The from-scratch path against hand computations, d2l, and the closed-form ridge answer."""
import numpy as np
import pytest

from mxwd._mx import autograd, nd
from mxwd.config import Config
from mxwd.data import batch_orders, data_iter, make_data
from mxwd.scratch import ScratchModel, fit_and_plot, init_params, l2_penalty, sgd, squared_loss


def test_gradient_of_l2_penalty_is_w():
    w = nd.random.normal(shape=(200, 1))
    w.attach_grad()
    with autograd.record():
        p = l2_penalty(w)
    p.backward()
    assert np.array_equal(w.grad.asnumpy(), w.asnumpy())
    assert np.isclose(p.asscalar(), (w.asnumpy().astype(np.float64) ** 2).sum() / 2, rtol=1e-6)


@pytest.mark.parametrize("batch_size", [1, 5])
@pytest.mark.parametrize("lambd", [0.0, 5.0])
def test_one_sgd_step_matches_the_corrected_update_rule(batch_size, lambd):
    """w <- (1 - lr*lambd) w - lr X^T (X w + b - y) / B, b <- b - lr sum(X w + b - y) / B."""
    config = Config(batch_size=batch_size, lr=0.003)
    data = make_data(config, seed=1)
    w, b = params = init_params(config)
    b[:] = 0.3  # a nonzero bias, so the bias term is exercised too
    X, y = data.train_features[:batch_size], data.train_labels[:batch_size]
    Xn, yn = X.asnumpy().astype(np.float64), y.asnumpy().astype(np.float64)
    wn, bn = w.asnumpy().astype(np.float64), b.asnumpy().astype(np.float64)
    r = Xn @ wn + bn - yn
    w_expected = (1 - config.lr * lambd) * wn - config.lr * Xn.T @ r / batch_size
    b_expected = bn - config.lr * r.sum() / batch_size

    ScratchModel(params, lambd, config).step(X, y)

    np.testing.assert_allclose(w.asnumpy(), w_expected, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(b.asnumpy(), b_expected, rtol=1e-5, atol=1e-7)


def test_squared_loss_and_sgd_match_d2l():
    from d2l import mxnet as d2l
    y_hat, y = nd.random.normal(shape=(5, 1)), nd.random.normal(shape=(5,))
    assert np.array_equal(squared_loss(y_hat, y).asnumpy(), d2l.squared_loss(y_hat, y).asnumpy())
    for batch_size in (1, 5):
        ours, theirs = [nd.random.normal(shape=(200, 1)) for _ in range(2)]
        theirs[:] = ours
        grad = nd.random.normal(shape=(200, 1))
        for p in (ours, theirs):
            p.attach_grad()
            p.grad[:] = grad
        sgd([ours], 0.003, batch_size)
        d2l.sgd([theirs], 0.003, batch_size)
        if batch_size == 1:
            assert np.array_equal(ours.asnumpy(), theirs.asnumpy())
        else:  # lr * (g / B) vs (lr * g) / B: one rounding apart
            np.testing.assert_allclose(ours.asnumpy(), theirs.asnumpy(), rtol=1e-6, atol=1e-9)


def test_data_follows_the_sources_model():
    config = Config(n_train=20, n_test=3000, noise=0.01)
    data = make_data(config, seed=0)
    X = np.concatenate([data.train_features.asnumpy(), data.test_features.asnumpy()])
    y = np.concatenate([data.train_labels.asnumpy(), data.test_labels.asnumpy()])
    assert X.shape == (3020, 200) and y.shape == (3020, 1)
    residual = y[:, 0] - (X @ np.full(200, 0.01) + 0.05)
    assert abs(residual.std() - 0.01) < 0.001 and abs(residual.mean()) < 0.001
    assert abs(X.mean()) < 0.01 and abs(X.std() - 1) < 0.01


def test_data_iter_visits_every_training_row_once_per_epoch():
    config = Config(n_train=7, batch_size=3)
    data = make_data(config, seed=0)
    order = batch_orders(config, seed=0)[0]
    batches = list(data_iter(3, data.train_features, data.train_labels, order))
    assert [len(X) for X, _ in batches] == [3, 3, 1]
    seen = np.concatenate([X.asnumpy() for X, _ in batches])
    np.testing.assert_array_equal(seen, data.train_features.asnumpy()[order])


def test_runs_of_one_seed_share_data_init_and_order_and_seeds_differ():
    a, b = make_data(Config(), 3), make_data(Config(), 3)
    assert np.array_equal(a.train_features.asnumpy(), b.train_features.asnumpy())
    c = make_data(Config(), 4)
    assert not np.array_equal(a.train_features.asnumpy(), c.train_features.asnumpy())
    assert np.array_equal(batch_orders(Config(), 3), batch_orders(Config(), 3))
    assert not np.array_equal(batch_orders(Config(), 3), batch_orders(Config(), 4))


def test_same_seed_same_numbers_in_process():
    assert fit_and_plot(5, seed=11) == fit_and_plot(5, seed=11)


def _ridge(X, y, n_lambd):
    """min sum (Xw + b - y)^2 / 2 + n_lambd ||w||^2 / 2, b unpenalized, in float64."""
    Xm, ym = X.mean(axis=0), y.mean()
    Xc, yc = X - Xm, y - ym
    w = np.linalg.solve(Xc.T @ Xc + n_lambd * np.eye(X.shape[1]), Xc.T @ yc)
    return w, ym - Xm @ w


@pytest.mark.slow
@pytest.mark.parametrize("lambd", [0.5])  # one lambd: the closed form is the same claim at any
def test_full_batch_training_reaches_the_closed_form_ridge_solution(lambd):
    # Full batch: the summed loss plus the penalty added once per example is
    # sum_i (x_i.w + b - y_i)^2 / 2 + n * lambd * ||w||^2 / 2, whose minimizer is
    # w* = (Xc^T Xc + n lambd I)^-1 Xc^T yc (centered data: the intercept is unpenalized).
    config = Config(batch_size=20, num_epochs=3000, lr=0.05)
    result = fit_and_plot(lambd, config, seed=2)
    data = make_data(config, seed=2)
    X = data.train_features.asnumpy().astype(np.float64)
    y = data.train_labels.asnumpy().astype(np.float64)[:, 0]
    w_star, b_star = _ridge(X, y, config.n_train * lambd)
    assert np.max(np.abs(np.array(result.w) - w_star)) < 1e-3
    assert abs(result.b - b_star) < 1e-3
