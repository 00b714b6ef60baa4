"""Many (lambd, seed) models of the from-scratch path, trained at once as one NDArray program.

For a chunk of S seeds and L lambdas the weights are one array W of shape (S, p, L)
(biases (S, 1, L)); each seed keeps its own data, initial w and batch order, shared by
its L models. One step on minibatch B (rows X_B of shape (S, |B|, p)) is

    r   = X_B W + b - y_B                                  (batch_dot; shape (S, |B|, L))
    W  <- (1 - lr * lambd) * W - (lr / |B|) * X_B^T r      (lambd broadcast over the last axis)
    b  <- b - (lr / |B|) * sum_B r                         (times (1 - lr * lambd) if decay_bias)

which is exactly the update of `fit_and_plot` (see mxwd.scratch) written out by hand, so
no autograd tape is needed: about a dozen operator calls per step for all S * L models.
Seed s gets the same data, initial w and batch order as `fit_and_plot(lambd, seed=s)`
(tests/test_sweep.py checks losses and weights against single runs).

Models with lr * lambd >= 2 (the decay factor |1 - lr * lambd| >= 1), or whose loss
becomes non-finite, are marked diverged; the models do not interact, so they spoil no
other model. With `n_valid` > 0 a second sweep trains on the first n_train - n_valid
training rows and scores the held-out rows, to choose lambd by validation.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np

from mxwd import interrupt
from mxwd._mx import nd
from mxwd.config import Config, check_int, check_lambd, resolve
from mxwd.data import Dataset, batch_orders, make_data
from mxwd.scratch import init_params

DEFAULT_GRID = tuple(float(v) for v in np.logspace(-3, 2.5, 50))  # 50 lambdas from 1e-3 to 10^2.5 (lr * lambd < 1)
MAX_MODELS_PER_CHUNK = 2500  # bounds memory: seeds are processed in chunks of this many models


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
        return np.sqrt((self.w.astype(np.float64) ** 2).sum(axis=-1))


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


def _train_chunk(config: Config, lambdas: Sequence[float], seeds: Sequence[int], n_fit: int, tick=None) -> Grid:
    arrays, orders = _seed_arrays(config, seeds, n_fit)
    S, L, B = len(seeds), len(lambdas), config.batch_size
    dtype = config.dtype
    lam = nd.array(lambdas, dtype=dtype).reshape((1, 1, L))
    W = nd.broadcast_to(arrays["w0"], (S, config.num_inputs, L)).copy()
    b = nd.zeros((S, 1, L), dtype=dtype)
    # batch_orders index the n_fit rows of each seed; offset them into the stacked rows
    flat_X = arrays["Xtr"].reshape((S * n_fit, -1))
    flat_y = arrays["ytr"].reshape((S * n_fit, 1))
    offsets = (np.arange(S) * n_fit)[:, None]
    # The same float operations as fit_and_plot's autograd + sgd_update, so that the
    # batched models round like the single runs: the penalty's gradient is
    # (n * lambd) * w ("sum", n the rows in this batch: backward sums the penalty once per
    # row) or lambd * w ("mean", whose loss gradient carries 1/n), and the step is
    # w - (lr * rescale) * grad, where MXNet holds lr and rescale = 1/batch_size as float32
    # parameters and multiplies them in the weights' dtype.
    real = np.dtype(dtype).type
    rescale = 1.0 / B if config.loss_reduction == "sum" else 1.0
    step_size = float(real(np.float32(config.lr)) * real(np.float32(rescale)))
    pen_full = lam * B
    per_step = config.partial_batch_penalty == "per_step"  # a partial batch decays like a full one
    train_ls, test_ls = [], []
    for epoch in range(config.num_epochs):
        index = nd.array((orders[:, epoch, :] + offsets).reshape(-1), dtype="int64")
        Xe = flat_X.take(index).reshape((S, n_fit, -1))
        ye = flat_y.take(index).reshape((S, n_fit, 1))
        for i in range(0, n_fit, B):
            j = min(i + B, n_fit)
            Xb = nd.slice_axis(Xe, axis=1, begin=i, end=j)
            yb = nd.slice_axis(ye, axis=1, begin=i, end=j)
            r = nd.broadcast_sub(nd.broadcast_add(nd.batch_dot(Xb, W), b), yb)  # (S, n, L)
            if config.loss_reduction == "sum":
                pen = pen_full if (j - i == B or per_step) else lam * (j - i)
            else:
                pen, r = lam, r * (1.0 / (j - i))
            gW = nd.batch_dot(Xb, r, transpose_a=True) + nd.broadcast_mul(pen, W)
            gb = r.sum(axis=1, keepdims=True)
            if config.decay_bias:
                gb = gb + nd.broadcast_mul(pen, b)
            W = W - step_size * gW
            b = b - step_size * gb
            interrupt.check()
        train_ls.append(_mean_loss(arrays["Xtr"], arrays["ytr"], W, b))
        test_ls.append(_mean_loss(arrays["Xte"], arrays["yte"], W, b))
        if tick:
            tick()
    valid = _mean_loss(arrays["Xva"], arrays["yva"], W, b).asnumpy() if arrays["Xva"] is not None else None
    train = nd.stack(*train_ls, axis=-1).asnumpy().astype(np.float64)
    test = nd.stack(*test_ls, axis=-1).asnumpy().astype(np.float64)
    finite = np.isfinite(train).all(axis=-1) & np.isfinite(test).all(axis=-1)
    unstable = (config.lr * np.asarray(lambdas)) >= 2
    return Grid(
        train_ls=train,
        test_ls=test,
        valid_ls=None if valid is None else valid.astype(np.float64),
        w=W.transpose((0, 2, 1)).asnumpy(),
        b=b.reshape((S, L)).asnumpy().astype(np.float64),
        diverged=~finite | unstable[None, :],
    )


def train_grid(config: Config, lambdas: Sequence[float], seeds: Sequence[int], n_fit: Optional[int] = None,
               progress: bool = False, max_models_per_chunk: int = MAX_MODELS_PER_CHUNK) -> Grid:
    """Train every (seed, lambd) model, a chunk of seeds at a time; concatenate the chunks."""
    n_fit = config.n_train if n_fit is None else n_fit
    per_chunk = max(1, max_models_per_chunk // len(lambdas))
    chunks = [list(seeds[i : i + per_chunk]) for i in range(0, len(seeds), per_chunk)]
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=len(chunks) * config.num_epochs, desc="sweep epochs", unit="epoch", leave=False)
    try:
        grids = [_train_chunk(config, lambdas, chunk, n_fit, bar.update if bar else None) for chunk in chunks]
    finally:
        if bar:
            bar.close()
    cat = lambda name: None if getattr(grids[0], name) is None else np.concatenate([getattr(g, name) for g in grids])
    return Grid(**{name: cat(name) for name in ("train_ls", "test_ls", "valid_ls", "w", "b", "diverged")})


def _band(values: np.ndarray) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Median, 10th and 90th percentile over seeds (axis 0), ignoring diverged (NaN) models."""
    with np.errstate(all="ignore"):
        return tuple(np.nanpercentile(values, q, axis=0) for q in (50, 10, 90))  # type: ignore


@dataclass(frozen=True)
class SweepResult:
    """A sweep: the grid on all training rows, and (with n_valid) the validation grid."""

    config: Config
    lambdas: Tuple[float, ...]
    seeds: Tuple[int, ...]
    n_valid: int
    grid: Grid  # models trained on all n_train rows (exactly fit_and_plot's models)
    validation: Optional[Grid]  # models trained on n_train - n_valid rows, scored on the rest

    def _masked(self, values: np.ndarray, grid: Optional[Grid] = None) -> np.ndarray:
        grid = grid or self.grid
        return np.where(grid.diverged, np.nan, values)

    @property
    def final_train(self) -> np.ndarray:
        return self._masked(self.grid.train_ls[..., -1])

    @property
    def final_test(self) -> np.ndarray:
        return self._masked(self.grid.test_ls[..., -1])

    @property
    def w_norm(self) -> np.ndarray:
        return self._masked(self.grid.w_norm)

    def band(self, what: str) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Median and 10-90% band across seeds of 'train', 'test' or 'w_norm', per lambd."""
        values = {"train": self.final_train, "test": self.final_test, "w_norm": self.w_norm}[what]
        return _band(values)

    def validation_band(self) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Median and 10-90% band across seeds of the validation loss per lambd (needs n_valid > 0)."""
        if self.validation is None:
            raise ValueError("this sweep has no validation grid: run it with n_valid > 0")
        return _band(self._masked(self.validation.valid_ls, self.validation))

    def selection(self) -> Optional[Dict[str, Any]]:
        """Lambd chosen by median validation loss, beside the test-optimal lambd."""
        if self.validation is None:
            return None
        valid = self.validation_band()[0]
        test = self.band("test")[0]
        if np.all(np.isnan(valid)) or np.all(np.isnan(test)):
            return None
        i_val, i_opt = int(np.nanargmin(valid)), int(np.nanargmin(test))
        per_seed = self._per_seed_regret()
        return {
            "validated_lambd": self.lambdas[i_val],
            "test_optimal_lambd": self.lambdas[i_opt],
            "median_test_loss_at_validated": float(test[i_val]),
            "median_test_loss_at_optimal": float(test[i_opt]),
            "excess_test_loss": float(test[i_val] / test[i_opt] - 1),
            "per_seed_excess_median": float(np.nanmedian(per_seed)),
            "per_seed_excess_p90": float(np.nanpercentile(per_seed, 90)),
            # the grid may be too narrow: the best lambd lies on its smallest or largest value
            "at_grid_edge": i_val in (int(np.argmin(self.lambdas)), int(np.argmax(self.lambdas))),
        }

    def _per_seed_regret(self) -> np.ndarray:
        """For each seed: test loss at its own validated lambd / its best test loss - 1."""
        valid = self._masked(self.validation.valid_ls, self.validation)
        test = self.final_test
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
        for j, lambd in enumerate(self.lambdas):
            for s, seed in enumerate(self.seeds):
                row = {
                    "lambd": lambd,
                    "seed": seed,
                    "train_loss": _num(self.grid.train_ls[s, j, -1]),
                    "test_loss": _num(self.grid.test_ls[s, j, -1]),
                    "w_norm": _num(w_norm[s, j]),
                    "b": _num(self.grid.b[s, j]),
                    "diverged": bool(self.grid.diverged[s, j]),
                }
                if self.validation is not None:
                    row["valid_loss"] = _num(self.validation.valid_ls[s, j])
                    row["valid_diverged"] = bool(self.validation.diverged[s, j])
                rows.append(row)
        return rows

    def table(self) -> str:
        """Medians across seeds per lambd, and the validation answer."""
        (tr, _, _), (te, te10, te90), (wn, _, _) = self.band("train"), self.band("test"), self.band("w_norm")
        n_div = self.grid.diverged.sum(axis=0)
        lines = [
            f"sweep: {len(self.lambdas)} lambdas x {len(self.seeds)} seeds = "
            f"{len(self.lambdas) * len(self.seeds)} models (seeds {self.seeds[0]}..{self.seeds[-1]})",
            f"{'lambd':>9} {'train':>10} {'test':>10} {'test 10%':>10} {'test 90%':>10} {'||w||':>9} {'diverged':>8}",
        ]
        for j, lambd in enumerate(self.lambdas):
            lines.append(
                f"{lambd:>9.4g} {tr[j]:>10.4g} {te[j]:>10.4g} {te10[j]:>10.4g} {te90[j]:>10.4g} "
                f"{wn[j]:>9.4g} {int(n_div[j]):>8d}"
            )
        sel = self.selection()
        if sel:
            lines.append(
                f"validation ({self.n_valid} of {self.config.n_train} training examples held out): "
                f"validated lambd = {sel['validated_lambd']:.4g} (median test loss "
                f"{sel['median_test_loss_at_validated']:.4g}); test-optimal lambd = "
                f"{sel['test_optimal_lambd']:.4g} (median test loss {sel['median_test_loss_at_optimal']:.4g})"
            )
            lines.append(
                f"is the validated lambd really optimal? its median test loss is "
                f"{100 * sel['excess_test_loss']:.1f}% above the best; choosing per seed, the excess is "
                f"{100 * sel['per_seed_excess_median']:.1f}% at the median seed and "
                f"{100 * sel['per_seed_excess_p90']:.1f}% at the 90th percentile"
            )
            if sel["at_grid_edge"]:
                lines.append(f"warning: the validated lambd {sel['validated_lambd']:.4g} is at the edge of the "
                             "grid; the best lambd may lie beyond it: widen --lambdas")
        return "\n".join(lines)

    def to_dict(self) -> Dict[str, Any]:
        return {
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


def _as_seeds(seeds: Any) -> Tuple[int, ...]:
    if isinstance(seeds, int) and not isinstance(seeds, bool):
        return tuple(range(check_int(seeds, "seeds", minimum=1)))
    if isinstance(seeds, (str, bytes)) or not hasattr(seeds, "__iter__"):
        raise ValueError(f"seeds must be a count >= 1 or a sequence of seeds, got {seeds!r}")
    out = tuple(check_int(s, "seeds", 0, 2**32 - 1) for s in seeds)
    if not out:
        raise ValueError("seeds must hold at least one seed, got an empty sequence")
    return out


def sweep(
    lambdas: Optional[Sequence[float]] = None,
    seeds: Any = 20,
    config: Optional[Config] = None,
    n_valid: int = 0,
    progress: bool = False,
) -> SweepResult:
    """Train the from-scratch model for every (lambd, seed) at once.

    lambdas: penalty strengths (default: 50 log-spaced from 1e-3 to 316); seeds: a count N
    (seeds 0..N-1) or a sequence. With n_valid > 0, a second sweep trains on the first
    n_train - n_valid training rows and scores the other n_valid, to select lambd.
    """
    config = resolve(config, None)
    lambdas = tuple(check_lambd(v, "lambdas") for v in (DEFAULT_GRID if lambdas is None else lambdas))
    if not lambdas:
        raise ValueError("lambdas must hold at least one value, got an empty sequence")
    seeds = _as_seeds(seeds)
    if config.clip_gradient > 0:
        raise ValueError(f"clip_gradient={config.clip_gradient:g} is not supported by the batched sweep; "
                         "allowed: 0 (use fit_and_plot for clipped runs)")
    n_valid = check_int(n_valid, "n_valid", minimum=0)
    if n_valid and config.n_train - n_valid < config.batch_size:
        raise ValueError(
            f"n_valid={n_valid} leaves {config.n_train - n_valid} training examples, fewer than "
            f"batch_size={config.batch_size}; allowed: 0 <= n_valid <= n_train - batch_size"
        )
    grid = train_grid(config, lambdas, seeds, progress=progress)
    validation = train_grid(config, lambdas, seeds, config.n_train - n_valid, progress=progress) if n_valid else None
    return SweepResult(config, lambdas, seeds, n_valid, grid, validation)
