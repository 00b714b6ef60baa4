"""The sweep's engines: many (lambd, seed) models of the from-scratch path, trained at once.

Two engines, one result (`Grid`), selected by `exact`:

**fast (the default).** Every update of the source's SGD adds a combination of the
training rows to w and scales w, so after any number of steps

    w = c * w0 + X^T a,     c a number, a a vector of n_train coefficients,

per model (X the n x p training rows of its seed, w0 its initial weights). The engine
trains (c, a, b) instead of w: n + 3 numbers a model instead of p + 1 (23 instead of
201 at the source's settings). With K = X X^T and g = X w0 precomputed per seed, the
residuals of a batch J are one product, R = [K_J | g_J | 1 | -y_J] [a; c; b; 1], and
the step is

    (a, c) <- (1 - eta * pen) * (a, c),  a_J <- a_J - alpha * R,  b <- b - alpha * sum_J R

with the penalty weight `pen` and step `alpha` of `fit_and_plot` (pen = lambd * |B| per
batch for a summed loss, lambd * n on a partial batch of n rows unless
partial_batch_penalty="per_step", lambd for a batch mean; eta and 1/|B| rounded to
float32 as MXNet's sgd_update rounds them). For a chunk of S seeds and L lambdas that is
two batched products and one scaling a step for all S * L models, in float64; the
per-epoch train and test losses come at the end from the quadratic forms of the saved
states. Each model stays within 1e-5 of its float32 `fit_and_plot` run (weights and
losses, compare's rule) and within 1e-12 of its float64 run (tests/test_sweep.py).

**exact.** Every model is trained by `fit_and_plot`'s own loop, one at a time: bitwise
the single runs, and about 170 ms a model (200 steps, on the machine of README.md's figures).

Under config.pairing="notebook" the sweep's lambdas are the notebook's scratch cells:
model j starts from the j-th initial w drawn after its seed's data (`mxwd.grid.model_blocks`),
as `fit_and_plot(lambdas[j], config.replace(lambdas=lambdas))` does; under "shared" every
model of a seed starts from the first. The optimizer engine runs "shared" only.

Models with lr * lambd >= 2 (the decay factor |1 - lr * lambd| >= 1), or whose loss
becomes non-finite or passes 1e4 times the initial model's (`mxwd.training.diverged`,
the one rule), are marked diverged; the models do not interact, so they spoil no
other model. With `n_valid` > 0 a second sweep trains on the first n_train - n_valid
training rows and scores the held-out rows, to choose lambd by validation.
"""
from __future__ import annotations

from typing import Any, Mapping, Optional, Sequence

import numpy as np

from mxwd import interrupt, limits, optimizer_sweeps
from mxwd._mx import nd
from mxwd.config import Config
from mxwd.data import make_data
from mxwd.grid import Grid, model_blocks, seed_arrays
from mxwd.policy import chapter_mask
from mxwd.scratch import init_params
from mxwd.steps import step_plan
from mxwd.training import diverged

MAX_MODELS_PER_CHUNK = 10000  # bounds memory: seeds are processed in chunks of this many models


def _mean_loss(X, y, W, b):
    """Mean over examples of (X W + b - y)^2 / 2, per model: shape (S, L)."""
    r = nd.broadcast_sub(nd.broadcast_add(nd.batch_dot(X, W), b), y)
    return (nd.square(r) / 2).mean(axis=1)


def _train_chunk_exact(config: Config, lambdas: Sequence[float], seeds: Sequence[int], n_fit: int, tick=None,
                       blocks: Optional[Sequence[int]] = None, order_seeds: Optional[Sequence[int]] = None) -> Grid:
    """The exact engine: every model trained by fit_and_plot's own loop, one at a time.

    Bitwise the single runs by construction (the same code), and about 170 ms a model (200 steps).
    With n_fit < n_train it trains on the first n_fit training rows and scores the rest.
    Model j starts from initial-parameter block blocks[j] (default 0 for all); seed s's
    models see the batch order of order_seeds[s] (default the seed).
    """
    from mxwd.data import Dataset, skip_init_blocks
    from mxwd.scratch import ScratchModel
    from mxwd.training import DivergenceError, train

    S, L, E = len(seeds), len(lambdas), config.num_epochs
    blocks = (0,) * L if blocks is None else tuple(blocks)
    order_seeds = seeds if order_seeds is None else order_seeds
    shape = (S, L)
    train_ls, test_ls = np.full(shape + (E,), np.nan), np.full(shape + (E,), np.nan)
    w, b = np.full(shape + (config.num_inputs,), np.nan), np.full(shape, np.nan)
    valid = np.full(shape, np.nan) if n_fit < config.n_train else None
    fit_config = config.replace(n_train=n_fit) if n_fit < config.n_train else config  # n_fit rows' batch order
    for s, (seed, order_seed) in enumerate(zip(seeds, order_seeds)):
        for j, lambd in enumerate(lambdas):
            data = make_data(config, seed)
            skip_init_blocks(config, blocks[j])
            model = ScratchModel(init_params(config), lambd, config)
            fit_data = Dataset(data.train_features[:n_fit], data.train_labels[:n_fit], data.test_features, data.test_labels)
            try:  # train draws the batch order from its config's seed: the order seed's
                result = train(model, fit_data, fit_config.replace(seed=order_seed), lambd, path="scratch")
            except DivergenceError:
                continue
            train_ls[s, j], test_ls[s, j] = result.train_ls, result.test_ls
            w[s, j], b[s, j] = result.w, result.b
            if valid is not None:
                valid[s, j] = model.loss(data.train_features[n_fit:], data.train_labels[n_fit:]).asscalar()
        if tick:
            tick()
    # train stopped every model that `diverged` (mxwd.training's one rule): those rows are NaN
    finite = np.isfinite(train_ls).all(axis=-1) & np.isfinite(test_ls).all(axis=-1)
    return Grid(train_ls=train_ls, test_ls=test_ls, valid_ls=valid, w=w, b=b, diverged=~finite)


def _train_chunk_fast(config: Config, lambdas: Sequence[float], seeds: Sequence[int], n_fit: int, tick=None,
                      blocks: Optional[Sequence[int]] = None, order_seeds: Optional[Sequence[int]] = None) -> Grid:
    """The fast engine: the same updates in the span of the training rows (see the module docstring).

    W_t = c_t W_0 + X^T A_t with c_t a scalar and A_t an (n, L) matrix per seed, so a step
    touches n + 3 numbers per model instead of p + 1. The state is one array
    At = [A; c; b; 1] of shape (S, n + 3, L) and a step on rows J is two products and a
    scaling:  R = [K_J | G_J | 1 | -y_J] At  (the residuals; K = X X^T, G = X w_0),
              At <- F * At - alpha P_J^T R    (F: the decay per row and lambd; P_J picks
              the rows J of A and the row of b). Computed in float64.
    Models that start from different initial blocks (pairing="notebook": `blocks`, one per
    model) share the state's layout: with the seed's distinct blocks w_0^1..w_0^K,
    W_t = sum_k c_t^k W_0^k + X^T A_t, c^k = 0 except for the model's own block (the decay
    only scales it, the data only add rows), so At = [A; c^1..c^K; b; 1] has n + K + 2 rows
    and G = X [w_0^1..w_0^K]. With one block (pairing="shared") that is the layout above.
    """
    blocks = (0,) * len(lambdas) if blocks is None else tuple(blocks)
    distinct = tuple(sorted(set(blocks)))
    arrays, orders = seed_arrays(config, seeds, n_fit, distinct, order_seeds)
    S, L, B, n, K = len(seeds), len(lambdas), config.batch_size, n_fit, len(distinct)
    column = [distinct.index(k) for k in blocks]  # model j's block, as a column of w0
    f64 = "float64"
    X, y, w0 = arrays["Xtr"].astype(f64), arrays["ytr"].astype(f64), arrays["w0"].astype(f64)  # w0: (S, p, K)
    m = n + K + 2  # rows of At: A (n rows), c (K rows), b, one
    rb = n + K  # the row of b

    def design(Xo, yo):  # [Xo X^T | Xo w0 | 1 | -yo]: residuals of rows Xo are design @ At
        return nd.concat(nd.batch_dot(Xo, X, transpose_b=True), nd.batch_dot(Xo, w0),
                         nd.ones((S, Xo.shape[1], 1), dtype=f64), -yo, dim=2)

    Ktr = design(X, y)
    Kte = design(arrays["Xte"].astype(f64), arrays["yte"].astype(f64))
    start = np.zeros((1, m, L))
    start[0, n + np.asarray(column), np.arange(L)] = 1.0  # c^k_0 = 1 for the model's own block
    start[0, m - 1] = 1.0  # the constant row
    At = nd.broadcast_to(nd.array(start, dtype=f64), (S, m, L)).copy()
    # The step size as MXNet's sgd_update rounds it: lr and rescale = 1/batch_size are float32.
    real = np.dtype(config.dtype).type
    rescale = 1.0 / B if config.loss_reduction == "sum" else 1.0
    step = float(real(np.float32(config.lr)) * real(np.float32(rescale)))
    lam = np.asarray(lambdas, dtype=np.float64)

    plan = step_plan(config, "penalty", n)  # the penalty's weight on each batch: as fit_and_plot's
    w_decayed, b_decayed = chapter_mask(config)  # the one policy

    def decay(rows: int) -> "nd.NDArray":
        """Per-row factors F for a batch of `rows` rows, of At's full shape (an elementwise
        product costs less than a broadcast one): 1 - lr * lambd * decay on the decayed rows.
        `step` is lr / divisor as MXNet rounds it, so the decay multiplies it by decay * divisor."""
        s = plan.for_rows(rows)
        f = 1 - step * lam * (s.decay * s.divisor)
        F = np.ones((1, m, L))
        if w_decayed:
            F[0, :rb] = f  # A and c: W decays
        if b_decayed:
            F[0, rb] = f
        return nd.array(np.broadcast_to(F, (S, m, L)), dtype=f64)

    def alpha(rows: int) -> float:
        """The data gradient's factor: `step` = lr / divisor, and a batch mean's 1 / rows."""
        s = plan.for_rows(rows)
        return step if s.divisor != 1 else step * s.grad_scale

    E = config.num_epochs
    offsets = (np.arange(S) * n)[:, None]
    epoch_rows = (orders.transpose(1, 0, 2) + offsets[None]).reshape(-1)  # (E, S, n) flat
    K_all = Ktr.reshape((S * n, m)).take(nd.array(epoch_rows, dtype="int64")).reshape((E, S, n, m))
    picks = np.zeros((E, S, n, m))
    picks[np.arange(E)[:, None, None], np.arange(S)[None, :, None], np.arange(n)[None, None, :],
          orders.transpose(1, 0, 2)] = 1.0
    picks[..., rb] = 1.0  # every row's residual also updates b
    P_all = nd.array(picks, dtype=f64)
    bounds = [(i, min(i + B, n)) for i in range(0, n, B)]
    F = {rows: decay(rows) for rows in {j - i for i, j in bounds}}
    equal = len({j - i for i, j in bounds}) == 1
    snapshots = []  # At after each epoch (operators return new arrays: these are references)
    for epoch in range(E):
        if equal and len(bounds) > 1:  # one operator for all of the epoch's batches
            Ks = nd.split(K_all[epoch], num_outputs=len(bounds), axis=1)
            Ps = nd.split(P_all[epoch], num_outputs=len(bounds), axis=1)
        else:
            Ks = [nd.slice_axis(K_all[epoch], axis=1, begin=i, end=j) for i, j in bounds]
            Ps = [nd.slice_axis(P_all[epoch], axis=1, begin=i, end=j) for i, j in bounds]
        for (i, j), Kb, Pb in zip(bounds, Ks, Ps):
            R = nd.batch_dot(Kb, At)  # (S, rows, L) residuals x.w + b - y
            At = nd.linalg.gemm(Pb, R, At * F[j - i], transpose_a=True, alpha=-alpha(j - i), beta=1.0)
            interrupt.check()
        snapshots.append(At)
        if tick:
            tick()
    # Every epoch's mean loss at once: mean_rows (D At)^2 / 2 = sum_rows At * (Q At) / (2 rows),
    # Q = D^T D of the design D (m x m), for the training and the test rows.
    Q = nd.concat(nd.batch_dot(Ktr, Ktr, transpose_a=True) / (2 * n),
                  nd.batch_dot(Kte, Kte, transpose_a=True) / (2 * Kte.shape[1]), dim=1)  # (S, 2m, m)
    states = nd.stack(*snapshots, axis=2).reshape((S, m, E * L))  # (S, m, E*L)
    products = nd.batch_dot(Q, states).reshape((S, 2, m, E * L)) * states.expand_dims(1)
    ones = nd.ones((S * 2, 1, m), dtype=f64)  # sum over m as a product: faster than sum(axis=2)
    quad = nd.batch_dot(ones, products.reshape((S * 2, m, E * L)))
    quad = quad.reshape((S, 2, E, L)).transpose((0, 1, 3, 2)).asnumpy()  # (S, 2, L, E)
    train, test = quad[:, 0], quad[:, 1]
    valid = None
    if arrays["Xva"] is not None:
        valid = (nd.square(nd.batch_dot(design(arrays["Xva"].astype(f64), arrays["yva"].astype(f64)), At)) / 2
                 ).mean(axis=1).asnumpy()
    A = nd.slice_axis(At, axis=1, begin=0, end=n)
    c = nd.slice_axis(At, axis=1, begin=n, end=rb)  # (S, K, L)
    if K == 1:
        W = nd.batch_dot(X, A, transpose_a=True) + nd.broadcast_mul(w0, c)  # (S, p, L)
    else:
        W = nd.batch_dot(X, A, transpose_a=True) + nd.batch_dot(w0, c)
    # diverged: mxwd.training's one rule, against each model's initial loss (its w0, b = 0: At's start state)
    initial = (nd.square(nd.broadcast_sub(nd.batch_dot(X, w0), y)) / 2).mean(axis=1).asnumpy()  # (S, K)
    lost = diverged(train, initial[:, column]) | diverged(test, initial[:, column])
    unstable = (config.lr * lam) >= 2
    return Grid(
        train_ls=train,
        test_ls=test,
        valid_ls=valid,
        w=W.transpose((0, 2, 1)).asnumpy().astype(config.dtype),
        b=nd.slice_axis(At, axis=1, begin=rb, end=rb + 1).reshape((S, L)).asnumpy(),
        diverged=lost | unstable[None, :],
    )


def check_optimizer_pairing(config: Config) -> None:
    """The optimizer sweep runs pairing="shared" only: say why otherwise."""
    if config.pairing != "shared":
        raise ValueError(f"pairing={config.pairing!r}: the optimizer sweep's models are (lr, lambd) pairs, which no "
                         "cell of the book ran, so they all start from one initial w; allowed: pairing='shared' "
                         "with --optimizer or --lrs")


def train_grid(config: Config, lambdas: Sequence[float], seeds: Sequence[int], n_fit: Optional[int] = None,
               progress: bool = False, max_models_per_chunk: Optional[int] = None, exact: bool = False,
               optimizer: str = "sgd", lrs: Optional[Sequence[float]] = None, hp: Optional[Mapping[str, Any]] = None,
               blocks: Optional[Sequence[int]] = None, order_seeds: Optional[Sequence[int]] = None) -> Grid:
    """Train every (seed, lambd) model (or (seed, lr, lambd) with lrs), a chunk of seeds at a time.

    blocks: each lambd's initial-parameter block (default `model_blocks(config, len(lambdas))`:
    all 0 under pairing="shared"; under "notebook" the sweep's lambdas are the scratch cells,
    model j drawing block j). order_seeds: one per seed, the seed of that row's batch order
    (default the seeds themselves), e.g. one seed's data and w0 over many batch orders.
    """
    n_fit = config.n_train if n_fit is None else n_fit
    order_seeds = tuple(seeds) if order_seeds is None else tuple(order_seeds)
    if len(order_seeds) != len(seeds):
        raise ValueError(f"order_seeds must give one order seed per seed: {len(order_seeds)} for {len(seeds)} seeds")
    if lrs is None:
        blocks = model_blocks(config, len(lambdas)) if blocks is None else tuple(blocks)
        if len(blocks) != len(lambdas):
            raise ValueError(f"blocks must give one block per lambd: {len(blocks)} for {len(lambdas)} lambdas")
        engine = ENGINES["exact" if exact else "fast"]

        def train_chunk(config, lambdas, chunk, n_fit, tick, orders):
            return engine(config, lambdas, chunk, n_fit, tick, blocks=blocks, order_seeds=orders)
    else:
        check_optimizer_pairing(config)
        if blocks is not None or order_seeds != tuple(seeds):
            raise ValueError("blocks and order_seeds are for the chapter's SGD sweep; allowed: neither with lrs")
        swept = tuple(lambdas)

        def train_chunk(config, _models, chunk, n_fit, tick, _orders):
            return ENGINES["optimizer"](config, optimizer, hp or {}, lrs, swept, chunk, n_fit, tick)

        lambdas = list(lambdas) * len(lrs)  # the chunking counts models: one per (lr, lambd)
    if max_models_per_chunk is None:  # the exact engine trains one model at a time: one chunk
        max_models_per_chunk = len(seeds) * len(lambdas) if exact else MAX_MODELS_PER_CHUNK
        if lrs is None and not exact:  # K initial blocks add K - 1 rows to each model's state: the same memory
            n = n_fit
            max_models_per_chunk = max_models_per_chunk * (n + 3) // (n + len(set(blocks)) + 2)
    per_chunk = max(1, max_models_per_chunk // len(lambdas))
    # a chunk stacks its seeds' data in one tensor: keep it under MXNet's 2^31 elements
    per_chunk = max(1, min(per_chunk, limits.MAX_ELEMENTS // ((config.n_train + config.n_test) * config.num_inputs)))
    starts = range(0, len(seeds), per_chunk)
    chunks = [(list(seeds[i : i + per_chunk]), list(order_seeds[i : i + per_chunk])) for i in starts]
    units = len(seeds) if exact else len(chunks) * config.num_epochs  # what the engines tick
    clock = limits.Clock(units, "sweep", show=progress)
    try:
        grids = [train_chunk(config, lambdas, chunk, n_fit, clock.tick, orders) for chunk, orders in chunks]
    finally:
        clock.close()
    cat = lambda name: None if getattr(grids[0], name) is None else np.concatenate([getattr(g, name) for g in grids])
    return Grid(**{name: cat(name) for name in ("train_ls", "test_ls", "valid_ls", "w", "b", "diverged")})


# The engines by name: the chapter's SGD (fast: in the span of the rows; exact: fit_and_plot's
# own loop) and the optimizer engine (lr x lambd for sgd, adam, adamw, sgdw).
ENGINES = {"fast": _train_chunk_fast, "exact": _train_chunk_exact, "optimizer": optimizer_sweeps.train_chunk}
