"""Many (lambd, seed) models of the from-scratch path, trained at once.

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
the single runs, and about 100 ms a model.

Models with lr * lambd >= 2 (the decay factor |1 - lr * lambd| >= 1), or whose loss
becomes non-finite or passes 1e4 times the initial model's (`mxwd.training.diverged`,
the one rule), are marked diverged; the models do not interact, so they spoil no
other model. With `n_valid` > 0 a second sweep trains on the first n_train - n_valid
training rows and scores the held-out rows, to choose lambd by validation.
"""
from __future__ import annotations

import dataclasses
import math
import numbers
from dataclasses import dataclass
import warnings
from typing import Any, Dict, List, Mapping, NamedTuple, Optional, Sequence, Tuple

import numpy as np

from mxwd import interrupt, limits
from mxwd._mx import nd
from mxwd.config import DEFAULT_N_VALID, Config, check_float, check_int, check_lambd, resolve
from mxwd.data import Dataset, batch_orders, make_data
from mxwd.policy import chapter_mask
from mxwd.scratch import init_params
from mxwd.steps import step_plan
from mxwd.training import diverged

DEFAULT_GRID = tuple(float(v) for v in np.logspace(-3, 2.5, 50))  # 50 lambdas from 1e-3 to 10^2.5 (lr * lambd < 1)
MAX_MODELS_PER_CHUNK = 10000  # bounds memory: seeds are processed in chunks of this many models


@dataclass(frozen=True)
class Grid:
    """Per-model results of one batched sweep; arrays indexed [seed, lambd(, epoch)]."""

    train_ls: np.ndarray  # (S, L, E) training loss after each epoch
    test_ls: np.ndarray  # (S, L, E) test loss after each epoch
    valid_ls: Optional[np.ndarray]  # (S, L) final loss on the held-out rows, or None
    w: np.ndarray  # (S, L, p) final weights
    b: np.ndarray  # (S, L) final biases
    diverged: np.ndarray  # (S, L) bool

    @property
    def w_norm(self) -> np.ndarray:
        """||w|| per model, (S, L), in float64."""
        return np.sqrt((self.w.astype(np.float64) ** 2).sum(axis=-1))

    def __repr__(self) -> str:
        S, L = self.b.shape
        return f"<Grid {S} seeds x {L} lambdas, {self.train_ls.shape[-1]} epochs, {int(self.diverged.sum())} diverged>"


def _seed_arrays(config: Config, seeds: Sequence[int], n_fit: int):
    """Stack each seed's data (as fit_and_plot draws it) and initial w."""
    parts: Dict[str, List[Any]] = {k: [] for k in ("Xtr", "ytr", "Xva", "yva", "Xte", "yte", "w0")}
    for seed in seeds:
        data: Dataset = make_data(config, seed)
        w0 = init_params(config)[0]  # drawn right after the data, as in fit_and_plot
        parts["Xtr"].append(data.train_features[:n_fit])
        parts["ytr"].append(data.train_labels[:n_fit])
        parts["Xva"].append(data.train_features[n_fit:] if n_fit < config.n_train else None)
        parts["yva"].append(data.train_labels[n_fit:] if n_fit < config.n_train else None)
        parts["Xte"].append(data.test_features)
        parts["yte"].append(data.test_labels)
        parts["w0"].append(w0)
    out = {k: (nd.stack(*v) if v[0] is not None else None) for k, v in parts.items()}
    orders = np.stack([batch_orders(config, seed, n=n_fit) for seed in seeds])  # (S, E, n_fit)
    return out, orders


def _mean_loss(X, y, W, b):
    """Mean over examples of (X W + b - y)^2 / 2, per model: shape (S, L)."""
    r = nd.broadcast_sub(nd.broadcast_add(nd.batch_dot(X, W), b), y)
    return (nd.square(r) / 2).mean(axis=1)


def _train_chunk_exact(config: Config, lambdas: Sequence[float], seeds: Sequence[int], n_fit: int, tick=None) -> Grid:
    """The exact engine: every model trained by fit_and_plot's own loop, one at a time.

    Bitwise the single runs by construction (the same code), and about 100 ms a model.
    With n_fit < n_train it trains on the first n_fit training rows and scores the rest.
    """
    from mxwd.data import Dataset
    from mxwd.scratch import ScratchModel
    from mxwd.training import DivergenceError, train

    S, L, E = len(seeds), len(lambdas), config.num_epochs
    shape = (S, L)
    train_ls, test_ls = np.full(shape + (E,), np.nan), np.full(shape + (E,), np.nan)
    w, b = np.full(shape + (config.num_inputs,), np.nan), np.full(shape, np.nan)
    valid = np.full(shape, np.nan) if n_fit < config.n_train else None
    fit_config = config.replace(n_train=n_fit) if n_fit < config.n_train else config  # n_fit rows' batch order
    for s, seed in enumerate(seeds):
        for j, lambd in enumerate(lambdas):
            data = make_data(config, seed)
            model = ScratchModel(init_params(config), lambd, config)
            fit_data = Dataset(data.train_features[:n_fit], data.train_labels[:n_fit], data.test_features, data.test_labels)
            try:
                result = train(model, fit_data, fit_config.replace(seed=seed), lambd, path="scratch")
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


def _train_chunk_fast(config: Config, lambdas: Sequence[float], seeds: Sequence[int], n_fit: int, tick=None) -> Grid:
    """The fast engine: the same updates in the span of the training rows (see the module docstring).

    W_t = c_t W_0 + X^T A_t with c_t a scalar and A_t an (n, L) matrix per seed, so a step
    touches n + 3 numbers per model instead of p + 1. The state is one array
    At = [A; c; b; 1] of shape (S, n + 3, L) and a step on rows J is two products and a
    scaling:  R = [K_J | G_J | 1 | -y_J] At  (the residuals; K = X X^T, G = X w_0),
              At <- F * At - alpha P_J^T R    (F: the decay per row and lambd; P_J picks
              the rows J of A and the row of b). Computed in float64.
    """
    arrays, orders = _seed_arrays(config, seeds, n_fit)
    S, L, B, n = len(seeds), len(lambdas), config.batch_size, n_fit
    f64 = "float64"
    X, y, w0 = arrays["Xtr"].astype(f64), arrays["ytr"].astype(f64), arrays["w0"].astype(f64)
    m = n + 3  # rows of At: A (n rows), c, b, one

    def design(Xo, yo):  # [Xo X^T | Xo w0 | 1 | -yo]: residuals of rows Xo are design @ At
        return nd.concat(nd.batch_dot(Xo, X, transpose_b=True), nd.batch_dot(Xo, w0),
                         nd.ones((S, Xo.shape[1], 1), dtype=f64), -yo, dim=2)

    Ktr = design(X, y)
    Kte = design(arrays["Xte"].astype(f64), arrays["yte"].astype(f64))
    start = np.zeros((1, m, L))
    start[0, n] = start[0, n + 2] = 1.0  # c_0 = 1, the constant row
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
            F[0, : n + 1] = f  # A and c: W decays
        if b_decayed:
            F[0, n + 1] = f
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
    picks[..., n + 1] = 1.0  # every row's residual also updates b
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
    c = nd.slice_axis(At, axis=1, begin=n, end=n + 1)
    W = nd.batch_dot(X, A, transpose_a=True) + nd.broadcast_mul(w0, c)  # (S, p, L)
    # diverged: mxwd.training's one rule, against each seed's initial loss (w0, b = 0: At's start state)
    initial = (nd.square(nd.batch_dot(X, w0) - y) / 2).mean(axis=1).asnumpy()  # (S, 1)
    lost = diverged(train, initial) | diverged(test, initial)
    unstable = (config.lr * lam) >= 2
    return Grid(
        train_ls=train,
        test_ls=test,
        valid_ls=valid,
        w=W.transpose((0, 2, 1)).asnumpy().astype(config.dtype),
        b=nd.slice_axis(At, axis=1, begin=n + 1, end=n + 2).reshape((S, L)).asnumpy(),
        diverged=lost | unstable[None, :],
    )


def train_grid(config: Config, lambdas: Sequence[float], seeds: Sequence[int], n_fit: Optional[int] = None,
               progress: bool = False, max_models_per_chunk: Optional[int] = None, exact: bool = False,
               optimizer: str = "sgd", lrs: Optional[Sequence[float]] = None, hp: Optional[Mapping[str, Any]] = None
               ) -> Grid:
    """Train every (seed, lambd) model (or (seed, lr, lambd) with lrs), a chunk of seeds at a time."""
    n_fit = config.n_train if n_fit is None else n_fit
    train_chunk = _train_chunk_exact if exact else _train_chunk_fast
    if lrs is not None:
        from mxwd import optimizer_sweeps

        swept = tuple(lambdas)

        def train_chunk(config, _models, chunk, n_fit, tick):  # noqa: F811
            return optimizer_sweeps.train_chunk(config, optimizer, hp or {}, lrs, swept, chunk, n_fit, tick)

        lambdas = list(lambdas) * len(lrs)  # the chunking counts models: one per (lr, lambd)
    if max_models_per_chunk is None:  # the exact engine trains one model at a time: one chunk
        max_models_per_chunk = len(seeds) * len(lambdas) if exact else MAX_MODELS_PER_CHUNK
    per_chunk = max(1, max_models_per_chunk // len(lambdas))
    # a chunk stacks its seeds' data in one tensor: keep it under MXNet's 2^31 elements
    per_chunk = max(1, min(per_chunk, limits.MAX_ELEMENTS // ((config.n_train + config.n_test) * config.num_inputs)))
    chunks = [list(seeds[i : i + per_chunk]) for i in range(0, len(seeds), per_chunk)]
    units = len(seeds) if exact else len(chunks) * config.num_epochs  # what the engines tick
    clock = limits.Clock(units, "sweep", show=progress)
    try:
        grids = [train_chunk(config, lambdas, chunk, n_fit, clock.tick) for chunk in chunks]
    finally:
        clock.close()
    cat = lambda name: None if getattr(grids[0], name) is None else np.concatenate([getattr(g, name) for g in grids])
    return Grid(**{name: cat(name) for name in ("train_ls", "test_ls", "valid_ls", "w", "b", "diverged")})


class Band(NamedTuple):
    """Per lambd, across seeds: the median and the 10th and 90th percentiles (NaN where every seed diverged)."""

    median: np.ndarray
    low: np.ndarray
    high: np.ndarray


def _band(values: np.ndarray) -> Band:
    """Median, 10th and 90th percentile over seeds (axis 0), ignoring diverged (NaN) models."""
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # "All-NaN slice": a lambd where every seed diverged
        return Band(*(np.nanpercentile(values, q, axis=0) for q in (50, 10, 90)))


@dataclass(frozen=True)
class SweepResult:
    """A sweep: the grid on all training rows, and (with n_valid) the validation grid."""

    config: Config
    lambdas: Tuple[float, ...]
    seeds: Tuple[int, ...]
    n_valid: int
    grid: Grid  # models trained on all n_train rows (exactly fit_and_plot's models)
    validation: Optional[Grid]  # models trained on n_train - n_valid rows, scored on the rest
    optimizer: str = "sgd"  # the update rule (mxwd.optimizer_sweeps.SWEEP_OPTIMIZERS)
    lrs: Tuple[float, ...] = ()  # learning rates swept; () for config.lr alone
    hyperparameters: Dict[str, Any] = dataclasses.field(default_factory=dict)  # the optimizer's, beyond lr and wd

    @property
    def pairs(self) -> List[Tuple[float, float]]:
        """(lr, lambd) of each model column of the grid, lr major: the grid's second axis."""
        return [(lr, lam) for lr in (self.lrs or (self.config.lr,)) for lam in self.lambdas]

    def by_lr(self, values: np.ndarray) -> np.ndarray:
        """Per-pair values (..., len(pairs)) reshaped to (..., len(lrs), len(lambdas))."""
        return values.reshape(values.shape[:-1] + (len(self.lrs or (1,)), len(self.lambdas)))

    def test_band_by_lr(self) -> Band:
        """The final test loss's median and 10-90% band across seeds, each of shape (lrs, lambdas)."""
        return Band(*(self.by_lr(v) for v in self.band("final_test_ls")))

    def _masked(self, values: np.ndarray, grid: Optional[Grid] = None) -> np.ndarray:
        grid = grid or self.grid
        return np.where(grid.diverged, np.nan, values)

    @property
    def final_train_ls(self) -> np.ndarray:
        """Training loss after the last epoch, (seeds, lambdas); NaN for diverged models."""
        return self._masked(self.grid.train_ls[..., -1])

    @property
    def final_test_ls(self) -> np.ndarray:
        """Test loss after the last epoch, (seeds, lambdas); NaN for diverged models."""
        return self._masked(self.grid.test_ls[..., -1])

    @property
    def w_norm(self) -> np.ndarray:
        """||w|| after training, (seeds, lambdas); NaN for diverged models."""
        return self._masked(self.grid.w_norm)

    def band(self, what: str) -> Band:
        """Median and 10-90% band across seeds, per lambd, of 'final_train_ls', 'final_test_ls' or 'w_norm'."""
        values = {"final_train_ls": self.final_train_ls, "final_test_ls": self.final_test_ls, "w_norm": self.w_norm}
        if what not in values:
            raise ValueError(f"band: what must be one of {', '.join(values)}; got {what!r}")
        return _band(values[what])

    def validation_band(self) -> Band:
        """Median and 10-90% band across seeds of the validation loss per lambd (needs n_valid > 0)."""
        if self.validation is None:
            raise ValueError("this sweep has no validation grid: run it with n_valid > 0")
        return _band(self._masked(self.validation.valid_ls, self.validation))

    def selection(self) -> Optional[Dict[str, Any]]:
        """Lambd chosen by median validation loss, beside the test-optimal lambd."""
        if self.validation is None:
            return None
        valid = self.validation_band().median
        test = self.band("final_test_ls").median
        if np.all(np.isnan(valid)) or np.all(np.isnan(test)):
            return None
        i_val, i_opt = int(np.nanargmin(valid)), int(np.nanargmin(test))
        per_seed = self._per_seed_regret()
        pairs = self.pairs
        lam_edges = (min(self.lambdas), max(self.lambdas))
        lr_edges = (min(self.lrs), max(self.lrs)) if len(self.lrs) > 1 else ()
        return {
            "validated_lambd": pairs[i_val][1],
            "test_optimal_lambd": pairs[i_opt][1],
            "validated_lr": pairs[i_val][0],
            "test_optimal_lr": pairs[i_opt][0],
            "median_final_test_ls_at_validated": float(test[i_val]),
            "median_final_test_ls_at_optimal": float(test[i_opt]),
            "excess_final_test_ls": float(test[i_val] / test[i_opt] - 1),
            "per_seed_excess_median": float(np.nanmedian(per_seed)),
            "per_seed_excess_p90": float(np.nanpercentile(per_seed, 90)),
            # the grid may be too narrow: the best lambd (or lr) lies on its smallest or largest value
            "at_grid_edge": pairs[i_val][1] in lam_edges or pairs[i_val][0] in lr_edges,
        }

    def _per_seed_regret(self) -> np.ndarray:
        """For each seed: test loss at its own validated lambd / its best test loss - 1."""
        valid = self._masked(self.validation.valid_ls, self.validation)
        test = self.final_test_ls
        out = np.full(len(self.seeds), np.nan)
        for s in range(len(self.seeds)):
            if np.all(np.isnan(valid[s])) or np.all(np.isnan(test[s])):
                continue
            out[s] = test[s, int(np.nanargmin(valid[s]))] / np.nanmin(test[s]) - 1
        return out

    def rows(self) -> List[Dict[str, Any]]:
        """One row per (lambd, seed): final losses, ||w||, b, diverged (the CSV's rows)."""
        rows = []
        w_norm = self.grid.w_norm  # computed once, not per row
        for j, (lr, lambd) in enumerate(self.pairs):
            for s, seed in enumerate(self.seeds):
                row = {
                    "optimizer": self.optimizer,
                    "lr": lr,
                    "lambd": lambd,
                    "seed": seed,
                    "final_train_ls": _num(self.grid.train_ls[s, j, -1]),
                    "final_test_ls": _num(self.grid.test_ls[s, j, -1]),
                    "w_norm": _num(w_norm[s, j]),
                    "b": _num(self.grid.b[s, j]),
                    "diverged": bool(self.grid.diverged[s, j]),
                }
                if self.validation is not None:
                    row["final_valid_ls"] = _num(self.validation.valid_ls[s, j])
                    row["valid_diverged"] = bool(self.validation.diverged[s, j])
                rows.append(row)
        return rows

    def table(self) -> str:
        """Medians across seeds per lambd, and the validation answer."""
        tr, (te, te10, te90), wn = self.band("final_train_ls").median, self.band("final_test_ls"), self.band("w_norm").median
        n_div = self.grid.diverged.sum(axis=0)
        multi = len(self.lrs) > 1
        head = f"{'lr':>9} " if multi else ""
        lines = [
            f"sweep ({self.optimizer}{', ' + str(len(self.lrs)) + ' lrs' if multi else ''}): "
            f"{len(self.lambdas)} lambdas x {len(self.seeds)} seeds = "
            f"{len(self.pairs) * len(self.seeds)} models (seeds {self.seeds[0]}..{self.seeds[-1]})",
            f"medians across seeds, per lambd, after the last epoch ({len(self.seeds)} seeds):",
            f"{head}{'lambd':>9} {'train':>10} {'test':>10} {'test 10%':>10} {'test 90%':>10} {'||w||':>9} {'diverged':>8}",
        ]
        for j, (lr, lambd) in enumerate(self.pairs):
            lr_col = f"{lr:>9.4g} " if multi else ""
            lines.append(
                f"{lr_col}{lambd:>9.4g} {tr[j]:>10.4g} {te[j]:>10.4g} {te10[j]:>10.4g} {te90[j]:>10.4g} "
                f"{wn[j]:>9.4g} {int(n_div[j]):>8d}"
            )
        sel = self.selection()
        if sel:
            at_lr = f" at lr {sel['validated_lr']:.4g}" if multi else ""
            at_opt_lr = f" at lr {sel['test_optimal_lr']:.4g}" if multi else ""
            lines.append(
                f"validation ({self.n_valid} of {self.config.n_train} training examples held out): "
                f"validated lambd = {sel['validated_lambd']:.4g}{at_lr} (median test loss "
                f"{sel['median_final_test_ls_at_validated']:.4g}); test-optimal lambd = "
                f"{sel['test_optimal_lambd']:.4g}{at_opt_lr} (median test loss {sel['median_final_test_ls_at_optimal']:.4g})"
            )
            lines.append(
                f"is the validated lambd really optimal? its median test loss is "
                f"{100 * sel['excess_final_test_ls']:.1f}% above the best; choosing per seed, the excess is "
                f"{100 * sel['per_seed_excess_median']:.1f}% at the median seed and "
                f"{100 * sel['per_seed_excess_p90']:.1f}% at the 90th percentile"
            )
            if sel["at_grid_edge"]:
                which = f" (lr {sel['validated_lr']:.4g})" if multi else ""
                lines.append(f"warning: the validated lambd {sel['validated_lambd']:.4g}{which} is at the edge of the "
                             f"grid; the best may lie beyond it: widen --lambdas{' or --lrs' if multi else ''}")
        return "\n".join(lines)

    def __repr__(self) -> str:
        sel = self.selection()
        chosen = f", validated lambd {sel['validated_lambd']:.3g}" if sel else ""
        return (f"<SweepResult {len(self.lambdas)} lambdas x {len(self.seeds)} seeds (seeds {self.seeds[0]}.."
                f"{self.seeds[-1]}), n_valid {self.n_valid}{chosen}>")

    def to_dict(self) -> Dict[str, Any]:
        return {
            "optimizer": self.optimizer,
            "hyperparameters": self.hyperparameters,
            "lrs": list(self.lrs or (self.config.lr,)),
            "lambdas": list(self.lambdas),
            "seeds": list(self.seeds),
            "n_valid": self.n_valid,
            "selection": self.selection(),
            "rows": self.rows(),
        }

    def __str__(self) -> str:
        return self.table()


def _num(value: float) -> Optional[float]:
    value = float(value)
    return value if math.isfinite(value) else None


def as_seeds(seeds: Any, start: int) -> Sequence[int]:
    """The one rule for seeds, in the API and the CLI alike: a count N means the N seeds
    start, start + 1, ..., start + N - 1 (start is config.seed); a sequence is used as given,
    and may not repeat a seed. A count gives a `range`, so that a size check can refuse a
    huge count before a tuple of it is built."""
    if isinstance(seeds, numbers.Integral) and not isinstance(seeds, bool):
        n = check_int(seeds, "seeds", minimum=1)
        if start + n - 1 > 2**32 - 1:
            raise ValueError(f"seeds={n} from seed {start} would pass 2**32 - 1; allowed: seed + seeds <= 2**32")
        return range(start, start + n)
    if isinstance(seeds, (str, bytes)) or not hasattr(seeds, "__iter__"):
        raise ValueError(f"seeds must be a count >= 1 or a sequence of seeds, got {seeds!r}")
    out = tuple(check_int(s, "seeds", 0, 2**32 - 1) for s in seeds)
    if not out:
        raise ValueError("seeds must hold at least one seed, got an empty sequence")
    if len(set(out)) < len(out):
        seen: set = set()
        first = next(s for s in out if s in seen or seen.add(s))
        raise ValueError(f"seeds must not repeat a seed (it would be counted twice in every median), got seed "
                         f"{first} twice in {list(out)[:20]}; allowed: distinct seeds")
    return out


def sweep(
    lambdas: Optional[Sequence[float]] = None,
    seeds: Any = 20,
    config: Optional[Config] = None,
    n_valid: int = DEFAULT_N_VALID,
    progress: bool = False,
    exact: bool = False,
    optimizer: str = "sgd",
    lrs: Optional[Sequence[float]] = None,
    hyperparameters: Optional[Mapping[str, Any]] = None,
) -> SweepResult:
    """Train the from-scratch model for every (lambd, seed) at once.

    lambdas: penalty strengths (default: 50 log-spaced from 1e-3 to 316); seeds: a count N
    (the N seeds from config.seed on, as `mxwd sweep --seed S --seeds N`) or a sequence.
    n_valid (default 5, as the CLI's): a second sweep trains on the first
    n_train - n_valid training rows and scores the other n_valid, to select lambd; 0 for none.
    exact: train each model with fit_and_plot's own loop (bitwise, about 100 ms a model)
    instead of the fast engine (see the module docstring).
    optimizer ("sgd", "adam", "adamw", "sgdw") and lrs (default: config.lr alone): train
    one model per (lr, lambd) pair with that optimizer's update, as gluon.Trainer does
    (see mxwd.optimizer_sweeps); hyperparameters overrides the optimizer's (beta1, beta2,
    epsilon; momentum). The result's grid then has one column per (lr, lambd) pair.
    """
    config = resolve(config, None)
    lambdas = tuple(check_lambd(v, "lambdas") for v in (DEFAULT_GRID if lambdas is None else lambdas))
    if not lambdas:
        raise ValueError("lambdas must hold at least one value, got an empty sequence")
    seeds = as_seeds(seeds, config.seed)
    if config.clip_gradient > 0:
        raise ValueError(f"clip_gradient={config.clip_gradient:g} is not supported by the batched sweep; "
                         "allowed: 0 (use fit_and_plot for clipped runs)")
    n_valid = check_int(n_valid, "n_valid", minimum=0)
    if n_valid and config.n_train - n_valid < config.batch_size:
        raise ValueError(
            f"n_valid={n_valid} leaves {config.n_train - n_valid} training examples, fewer than "
            f"batch_size={config.batch_size}; allowed: 0 <= n_valid <= n_train - batch_size"
        )
    if optimizer == "sgd" and lrs is None:  # the chapter's experiment: the fast (or exact) engine
        limits.check_size(config, seeds=len(seeds), lambdas=len(lambdas))
        seeds = tuple(seeds)
        grid = train_grid(config, lambdas, seeds, progress=progress, exact=exact)
        validation = (train_grid(config, lambdas, seeds, config.n_train - n_valid, progress=progress, exact=exact)
                      if n_valid else None)
        return SweepResult(config, lambdas, seeds, n_valid, grid, validation)
    from mxwd.optimizer_sweeps import hyperparameters as optimizer_hyperparameters

    hp = optimizer_hyperparameters(optimizer, hyperparameters)
    if exact:
        raise ValueError("exact=True is for the plain SGD sweep; allowed with optimizer='sgd' and no lrs")
    lrs = tuple(check_float(v, "lrs", minimum=0.0, strict=True) for v in ((config.lr,) if lrs is None else lrs))
    if not lrs:
        raise ValueError("lrs must hold at least one learning rate, got an empty sequence")
    limits.check_size(config, seeds=len(seeds), lambdas=len(lambdas) * len(lrs))
    seeds = tuple(seeds)
    grid = train_grid(config, lambdas, seeds, progress=progress, optimizer=optimizer, lrs=lrs, hp=hp)
    validation = (train_grid(config, lambdas, seeds, config.n_train - n_valid, progress=progress,
                             optimizer=optimizer, lrs=lrs, hp=hp) if n_valid else None)
    return SweepResult(config, lambdas, seeds, n_valid, grid, validation, optimizer, lrs, hp)
