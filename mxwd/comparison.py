"""Is the optimizer's `wd` the same as the hand-written L2 penalty? Paired runs say.

`compare` trains the scratch path (loss + lambd * l2_penalty, manual sgd) and the
Gluon path (Trainer with wd = lambd) from the same seed: the same data, the same
initial w and b (both drawn right after the data: `init_params` and
`init.Normal` make the same draws), and the same batch order. For plain SGD the two
updates are the same map (see `mxwd.concise`),

    w <- (1 - lr * lambd) * w - (lr / |B|) * sum_{i in B} x_i (x_i . w + b - y_i),

so the runs differ only by float rounding. The comparison reports that difference.

What the package measured (tests/test_concise.py):
- float32, the source's settings: max |dw| <= 1e-6 for every lambd, batch size and
  bias policy tried. Per-epoch losses agree to 1e-5 relative, except where the training
  loss is tiny: with |B| = 1 and lambd in {0, 0.5} it falls to 3e-4..7e-4 and the
  relative gap reaches 2e-5 (absolute 1.3e-8, float32 rounding of a small number).
- float64: with |B| a power of two the runs agree to 1e-15. With |B| = 5 or 20 they
  differ by about 1e-8 relative, and the cause is MXNet, not the math: its `sgd_update`
  operator takes lr, wd and rescale_grad = 1/|B| as float32 parameters even for
  float64 weights, and fl32(1/5) * 5 = 1 + 1.5e-8. The scratch path's penalty gradient
  |B| * lambd * w is scaled by fl32(1/|B|); Gluon adds wd * w unscaled.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Dict, Optional, Tuple

from mxwd.concise import fit_and_plot_gluon
from mxwd.config import Config, check_lambd, resolve
from mxwd.results import FitResult
from mxwd.scratch import fit_and_plot

# What "agree" means: weights within TOLERANCE, and each loss within TOLERANCE relative
# or absolute (math.isclose with rel_tol = abs_tol), so that a loss of 1e-4 is not held to
# a relative bar that float32 rounding alone exceeds.
TOLERANCE = {"float32": 1e-5, "float64": 1e-7}


def _rel(a: float, b: float) -> float:
    scale = max(abs(a), abs(b))
    return abs(a - b) / scale if scale > 0 else 0.0


@dataclass(frozen=True)
class Comparison:
    """The scratch and Gluon runs of one lambd, and how far apart they are."""

    lambd: float
    scratch: FitResult
    gluon: FitResult

    @property
    def config(self) -> Config:
        return self.scratch.config

    @property
    def tolerance(self) -> float:
        return TOLERANCE[self.config.dtype]

    @property
    def train_diff(self) -> Tuple[float, ...]:
        """|train loss (scratch) - train loss (Gluon)| after each epoch."""
        return tuple(abs(a - b) for a, b in zip(self.scratch.train_ls, self.gluon.train_ls))

    @property
    def test_diff(self) -> Tuple[float, ...]:
        return tuple(abs(a - b) for a, b in zip(self.scratch.test_ls, self.gluon.test_ls))

    @property
    def max_rel_loss_diff(self) -> float:
        """Largest relative difference between the two paths' per-epoch losses."""
        pairs = list(zip(self.scratch.train_ls, self.gluon.train_ls))
        pairs += list(zip(self.scratch.test_ls, self.gluon.test_ls))
        return max(_rel(a, b) for a, b in pairs)

    @property
    def max_dw(self) -> float:
        """max_i |w_i (scratch) - w_i (Gluon)| after training."""
        return max(abs(a - b) for a, b in zip(self.scratch.w, self.gluon.w))

    @property
    def db(self) -> float:
        return abs(self.scratch.b - self.gluon.b)

    @property
    def max_loss_diff(self) -> float:
        """Largest absolute difference between the two paths' per-epoch losses."""
        return max(self.train_diff + self.test_diff)

    @property
    def agree(self) -> bool:
        """Weights within `tolerance`; every loss within `tolerance`, relative or absolute."""
        tol = self.tolerance
        losses = zip(self.scratch.train_ls + self.scratch.test_ls, self.gluon.train_ls + self.gluon.test_ls)
        close = all(math.isclose(a, b, rel_tol=tol, abs_tol=tol) for a, b in losses)
        return self.max_dw <= tol and self.db <= tol and close

    def table(self) -> str:
        """Per-epoch differences, as `mxwd compare` prints them."""
        lines = [
            f"lambd = wd = {self.lambd:g}  (seed {self.config.seed}, {self.config.dtype}, "
            f"batch_size {self.config.batch_size}, decay_bias {self.config.decay_bias})",
            f"{'epoch':>5} {'train (scratch)':>16} {'|d train|':>10} {'test (scratch)':>15} {'|d test|':>10}",
        ]
        for epoch, (tr, dtr, te, dte) in enumerate(
            zip(self.scratch.train_ls, self.train_diff, self.scratch.test_ls, self.test_diff), 1
        ):
            lines.append(f"{epoch:>5} {tr:>16.6g} {dtr:>10.2g} {te:>15.6g} {dte:>10.2g}")
        verdict = "agree" if self.agree else "DIFFER"
        lines.append(
            f"max |dw| = {self.max_dw:.3g}, |db| = {self.db:.3g}, max loss difference "
            f"{self.max_loss_diff:.3g} (relative {self.max_rel_loss_diff:.3g}): {verdict} within {self.tolerance:g}"
        )
        return "\n".join(lines)

    def to_dict(self) -> Dict[str, Any]:
        return {
            "lambd": self.lambd,
            "train_diff": list(self.train_diff),
            "test_diff": list(self.test_diff),
            "max_dw": self.max_dw,
            "db": self.db,
            "max_loss_diff": self.max_loss_diff,
            "max_rel_loss_diff": self.max_rel_loss_diff,
            "tolerance": self.tolerance,
            "agree": self.agree,
            "scratch": self.scratch.to_dict(),
            "gluon": self.gluon.to_dict(),
        }

    def __str__(self) -> str:
        return self.table()


def compare(lambd: float, config: Optional[Config] = None, seed: Optional[int] = None) -> Comparison:
    """Train both paths with penalty lambd = wd from the same seed, and compare them."""
    config = resolve(config, seed)
    lambd = check_lambd(lambd)
    return Comparison(lambd, fit_and_plot(lambd, config), fit_and_plot_gluon(lambd, config))
