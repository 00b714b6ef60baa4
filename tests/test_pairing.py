"""Config.pairing: which initial w each run draws, on every engine, against independent draws.

"shared": every run of a seed starts from the first block of num_inputs normals drawn after
the data. "notebook": the book's one-kernel order, run k (the scratch lambdas, then the Gluon
lambdas) starts from the k-th block. The references below draw with mx.random.seed directly,
in the order the book's code does (features, noise, then one block per run), and train in
float64 NumPy from the math.
"""
import numpy as np
import pytest

from mxwd._mx import mx, nd
from mxwd.comparison import compare
from mxwd.concise import fit_and_plot_gluon, make_net
from mxwd.config import Config
from mxwd.data import batch_orders, init_block, make_data, make_run_data
from mxwd.grid import seed_arrays
from mxwd.scratch import ScratchModel, fit_and_plot, init_params
from mxwd.sweep_engines import train_grid
from mxwd.training import train


def book_draws(config: Config, blocks: int):
    """The book's draws for config.seed, made here without mxwd: features, noise, then `blocks`
    initial w, each as float32 NumPy arrays."""
    mx.random.seed(config.seed)
    n, p = config.n_train + config.n_test, config.num_inputs
    features = nd.random.normal(shape=(n, p))
    noise = nd.random.normal(scale=config.noise, shape=(n, 1))
    w0s = [nd.random.normal(scale=config.init_scale, shape=(p, 1)).asnumpy() for _ in range(blocks)]
    return features.asnumpy(), noise.asnumpy(), w0s


# awkward settings: sizes that do not divide, a small init scale, few inputs, float64, three lambdas
CONFIGS = [
    Config(pairing="notebook", lambdas=(0.0, 3.0)),
    Config(pairing="notebook", lambdas=(5.0, 0.0, 0.5), num_inputs=7, n_train=11, n_test=3, batch_size=4,
           init_scale=0.01, dtype="float64", seed=123),
]


@pytest.mark.parametrize("config", CONFIGS)
def test_run_k_starts_from_the_kth_block_after_the_data(config):
    L = len(config.lambdas)
    features, noise, w0s = book_draws(config, 2 * L)
    data = make_data(config)
    # make_data draws the same features (the labels add the noise to X true_w + true_b)
    np.testing.assert_array_equal(np.concatenate([data.train_features.asnumpy(), data.test_features.asnumpy()]),
                                  features.astype(config.dtype))
    order = [("scratch", lambd) for lambd in config.lambdas] + [("gluon", lambd) for lambd in config.lambdas]
    for k, (path, lambd) in enumerate(order):
        assert init_block(config, path, config.lambdas.index(lambd)) == k
        make_run_data(config, path, lambd)
        if path == "scratch":
            w = init_params(config)[0].asnumpy()
        else:  # the Gluon initializer draws the same normals (the weight is (1, p))
            w = make_net(config).weight.data().asnumpy().reshape(-1, 1)
        # bitwise: the same float32 draws, cast to the config's dtype
        np.testing.assert_array_equal(w, w0s[k].astype(config.dtype), err_msg=f"run {k}: {path} {lambd}")
    # the batched engines' initial w: the same blocks
    w0 = seed_arrays(config, [config.seed], config.n_train, blocks=tuple(range(2 * L)))[0]["w0"].asnumpy()[0]
    np.testing.assert_array_equal(w0, np.concatenate(w0s, axis=1).astype(config.dtype))


def test_shared_pairing_starts_every_run_from_the_first_block():
    config = Config(lambdas=(0.0, 5.0, 1.0))
    _, _, (first,) = book_draws(config, 1)
    for path in ("scratch", "gluon"):
        for lambd in config.lambdas + (2.5,):  # any lambd: shared needs no cell
            make_run_data(config, path, lambd)
            w = init_params(config)[0] if path == "scratch" else make_net(config).weight.data().reshape((-1, 1))
            np.testing.assert_array_equal(w.asnumpy(), first)


def test_shared_pairing_is_bitwise_the_code_before_pairing_existed():
    # fit_and_plot before Config.pairing: make_data, init_params, train; no block skipped
    config = Config(batch_size=3, num_epochs=2, lambdas=(0.0, 5.0))
    data = make_data(config)
    before = train(ScratchModel(init_params(config), 5.0, config), data, config, 5.0, path="scratch")
    assert fit_and_plot(5.0, config).w == before.w and fit_and_plot(5.0, config).train_ls == before.train_ls
    assert fit_and_plot(5.0, config.replace(pairing="shared")).w == before.w


def _numpy_sgd(config: Config, X, y, w0, lambd, orders, per_step=False):
    """The chapter's SGD in float64, from the math: per batch J of n rows,
    w <- w - lr (X_J^T r / |B| + d lambd w),  b <- b - lr sum(r) / |B|,  r = X_J w + b - y_J,
    with d = n / |B| for the scratch path's per-example penalty (a partial batch decays by less)
    and d = 1 for Gluon's wd (per_step: every step decays by lr * lambd)."""
    w, b = w0.astype(np.float64).reshape(-1), 0.0
    B, lr = config.batch_size, config.lr
    for order in orders:
        for i in range(0, len(order), B):
            J = order[i : i + B]
            r = X[J] @ w + b - y[J]
            d = 1.0 if per_step else len(J) / B
            w, b = w - lr * (X[J].T @ r / B + d * lambd * w), b - lr * r.sum() / B
    return w, b


def test_notebook_runs_equal_a_numpy_reference_from_the_independent_draws():
    config = Config(pairing="notebook", lambdas=(0.0, 5.0), batch_size=3, num_epochs=2, seed=4)
    features, noise, w0s = book_draws(config, 4)
    X = features[: config.n_train].astype(np.float64)
    y = (features[: config.n_train] @ np.full(config.num_inputs, np.float32(config.true_w), np.float32)
         + np.float32(config.true_b) + noise[: config.n_train, 0]).astype(np.float64)
    orders = batch_orders(config)
    runs = [fit_and_plot(lambd, config) for lambd in config.lambdas] + [
        fit_and_plot_gluon(lambd, config) for lambd in config.lambdas]
    for k, run in enumerate(runs):
        # Gluon's wd decays by lr*lambd on every step, the partial one too
        w_ref, b_ref = _numpy_sgd(config, X, y, w0s[k], run.lambd, orders, per_step=run.path == "gluon")
        # float32 training, 14 steps: each step rounds ~10 ops at 6e-8 relative on |w| ~ 3 entries, and
        # the labels' float32 rounding (|y| ~ 0.1, 6e-9) enters every residual: 1e-5 is ~10x the worst seen
        np.testing.assert_allclose(run.w, w_ref, atol=1e-5, err_msg=f"run {k}")
        assert abs(run.b - b_ref) <= 1e-5
    # and the four runs really start apart: their final w differ by O(1)
    assert np.abs(np.asarray(runs[0].w) - np.asarray(runs[2].w)).max() > 0.1


@pytest.mark.parametrize("dtype, tol", [
    # compare's rule: the fast float64 engine stays within 1e-5 of a float32 run (tests/test_sweep.py)
    ("float32", 1e-5),
    # and within 1e-12 of a float64 one; 1e-10 leaves room for 7 steps of 1e-16 rounding on |w| ~ 3
    ("float64", 1e-10),
])
def test_the_fast_engine_under_notebook_is_the_single_runs(dtype, tol):
    config = Config(pairing="notebook", lambdas=(0.0, 5.0, 0.5), batch_size=3, num_epochs=1, dtype=dtype)
    seeds = (0, 7)
    fast = train_grid(config, config.lambdas, seeds)
    exact = train_grid(config, config.lambdas, seeds, exact=True)
    assert np.abs(fast.w - exact.w).max() <= tol and np.abs(fast.b - exact.b).max() <= tol
    for s, seed in enumerate(seeds):
        for j, lambd in enumerate(config.lambdas):  # the exact engine is fit_and_plot's own loop: bitwise
            assert tuple(exact.w[s, j].tolist()) == fit_and_plot(lambd, config, seed=seed).w


def test_order_seeds_train_one_datasets_start_over_other_batch_orders():
    config = Config(pairing="notebook", lambdas=(0.0, 5.0), num_epochs=1, batch_size=3)
    grid = train_grid(config, config.lambdas, [2, 2, 2], order_seeds=(2, 8, 9))
    exact = train_grid(config, config.lambdas, [2, 2, 2], order_seeds=(2, 8, 9), exact=True)
    assert np.abs(grid.w - exact.w).max() <= 1e-5  # compare's float32 rule, as above
    # order seed 2 is the seed's own order: fit_and_plot
    np.testing.assert_array_equal(exact.w[0, 1], fit_and_plot(5.0, config, seed=2).w)
    # another order, the same data and initial w: a different run (lambd 0 keeps w0's null-space part,
    # so its w moves by the order's effect only, far less than w0's size ~1)
    assert 1e-6 < np.abs(exact.w[1, 0] - exact.w[0, 0]).max() < 0.5
    # the gluon blocks (2, 3) start elsewhere
    gluon = train_grid(config, config.lambdas, [2], blocks=(2, 3))
    assert np.abs(gluon.w[0, 0] - grid.w[0, 0]).max() > 0.1


def test_a_notebook_run_needs_its_cell():
    config = Config(pairing="notebook", lambdas=(0.0, 3.0))
    with pytest.raises(ValueError, match=r"lambd=2 is not one of config.lambdas=\[0.0, 3.0\].*pairing='shared'"):
        fit_and_plot(2.0, config)
    with pytest.raises(ValueError, match="pairing='notebook'"):
        train_grid(config, (0.0,), (0,), lrs=(0.01,), optimizer="adam")


def test_compare_names_the_notebook_start_and_proves_it():
    config = Config(pairing="notebook", num_epochs=1, batch_size=3)
    c = compare(5.0, config)
    assert not c.agree and c.causes[0].name == "initial w (notebook order)"
    assert "block 1" in c.causes[0].explanation and "block 3" in c.causes[0].explanation
    # removing the notebook start leaves the partial-batch cause, and then nothing
    assert [x.name for x in c.causes] == ["initial w (notebook order)", "partial last batch"]
    assert c.causes[-1].after.exact and c.explained and "pairing notebook" in c.table()
    assert c.to_dict()["pairing"] == "notebook"


# The book's stream reproducing the published lambd = 0 norms (two 2000-step runs per path) is
# tests/test_published.py::test_d2lzh_lambd_0_norms_are_reproduced_and_lambd_3_lie_among_batch_orders (slow).
