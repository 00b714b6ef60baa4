"""A sweep's result: the grids, the bands across seeds, and their reports (table, rows, JSON)."""
from __future__ import annotations

import dataclasses
import math
import warnings
from dataclasses import dataclass
from typing import Any, Dict, List, NamedTuple, Optional, Tuple

import numpy as np

from mxwd.config import Config
from mxwd.grid import Grid
from mxwd.optimizers import lambdas_flag


class BestLambd(NamedTuple):
    """At one lr: the lambd of the lowest median final test loss, and whether the grid brackets it."""

    lr: float
    lambd: float  # NaN where every model at this lr diverged
    median_test_ls: float
    bracketed: bool  # a trained lambd on either side: the minimum is inside the grid, not at its end


class Drift(NamedTuple):
    """How far the best lambd moves as the lr changes (see `SweepResult.lambd_drift`)."""

    slope: float  # Theil-Sen slope of log10(best lambd) against log10(lr); NaN with < 2 lrs
    spread: float  # max - min of log10(best lambd), in decades; NaN with no lr
    lrs: Tuple[float, ...]  # the lrs it is measured over: those whose best lambd is bracketed


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

    def best_lambd_by_lr(self) -> List[BestLambd]:
        """Per lr: the lambd with the lowest median (over seeds) final test loss, diverged models
        left out, and whether it is bracketed: not the smallest or largest lambd of the grid, and
        with a trained (not all-diverged) lambd on either side, so that the best lambd lies
        inside the grid rather than perhaps beyond its end or beside a diverged column."""
        grid = self.test_band_by_lr().median
        order = np.argsort(self.lambdas, kind="stable")  # the grid's neighbours, in lambd order
        out = []
        for lr, row in zip(self.lrs or (self.config.lr,), grid):
            if not np.isfinite(row).any():
                out.append(BestLambd(lr, math.nan, math.nan, False))
                continue
            ranked = row[order]
            k = int(np.nanargmin(ranked))
            bracketed = 0 < k < len(ranked) - 1 and bool(np.isfinite(ranked[k - 1]) and np.isfinite(ranked[k + 1]))
            out.append(BestLambd(lr, self.lambdas[int(order[k])], float(ranked[k]), bracketed))
        return out

    def lambd_drift(self) -> Drift:
        """How far the best lambd moves with the lr: over the lrs whose best lambd is bracketed
        (`best_lambd_by_lr`), with y = log10(best lambd) and x = log10(lr),

            slope  = median over pairs of lrs i < j of (y_j - y_i) / (x_j - x_i)   (Theil-Sen)
            spread = max y - min y                                                 (decades)

        slope is in decades of lambd per decade of lr: 0 when the best lambd does not depend on
        the lr (what Loshchilov & Hutter claim for their convention), -1 when lr * lambd is what
        stays fixed (the decay per step of torch's convention). The median of the pairwise slopes
        is robust: one lr whose best lambd jumps (a flat minimum on a discrete grid) moves it
        little, and unlike the spread it does not grow with the width of the lr grid. Lrs whose
        best lambd is at the grid's end are left out: the true best may lie beyond it.
        """
        used = [b for b in self.best_lambd_by_lr() if b.bracketed and b.lambd > 0]
        x = np.log10([b.lr for b in used])
        y = np.log10([b.lambd for b in used])
        slopes = [(y[j] - y[i]) / (x[j] - x[i]) for i in range(len(used)) for j in range(i + 1, len(used)) if x[j] != x[i]]
        slope = float(np.median(slopes)) if slopes else math.nan
        spread = float(y.max() - y.min()) if len(used) else math.nan
        return Drift(slope, spread, tuple(b.lr for b in used))

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
                             f"grid; the best may lie beyond it: widen {lambdas_flag(self.optimizer)}"
                             f"{' or --lrs' if multi else ''}")
        return "\n".join(lines)

    def __repr__(self) -> str:
        sel = self.selection()
        chosen = f", validated lambd {sel['validated_lambd']:.3g}" if sel else ""
        return (f"<SweepResult {len(self.lambdas)} lambdas x {len(self.seeds)} seeds (seeds {self.seeds[0]}.."
                f"{self.seeds[-1]}), n_valid {self.n_valid}{chosen}>")

    def to_dict(self) -> Dict[str, Any]:
        out = {
            "optimizer": self.optimizer,
            "hyperparameters": self.hyperparameters,
            "lrs": list(self.lrs or (self.config.lr,)),
            "lambdas": list(self.lambdas),
            "seeds": list(self.seeds),
            "n_valid": self.n_valid,
            "selection": self.selection(),
        }
        if self.lrs:  # an lr x lambd sweep: where the best lambd lies at each lr, and how far it moves
            drift = self.lambd_drift()
            out["best_lambd_by_lr"] = [{**b._asdict(), "lambd": _num(b.lambd), "median_test_ls": _num(b.median_test_ls)}
                                       for b in self.best_lambd_by_lr()]
            out["lambd_drift"] = {"slope": _num(drift.slope), "spread": _num(drift.spread), "lrs": list(drift.lrs)}
        out["rows"] = self.rows()
        return out

    def __str__(self) -> str:
        return self.table()


def _num(value: float) -> Optional[float]:
    value = float(value)
    return value if math.isfinite(value) else None
