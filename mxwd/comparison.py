"""Is the optimizer's `wd` the same as the hand-written L2 penalty? Paired runs say.

`compare` trains the scratch path (loss + lambd * l2_penalty, manual sgd) and the
Gluon path (Trainer with wd = lambd) from the same seed: the same data, the same
initial w and b (with config.pairing="shared", both drawn right after the data:
`init_params` and `init.Normal` make the same draws), and the same batch order. For
plain SGD the two updates are the same map (see `mxwd.concise`),

    w <- (1 - lr * lambd) * w - (lr / |B|) * sum_{i in B} x_i (x_i . w + b - y_i),

so the runs differ only by float rounding, in the settings where that holds. Where the
two paths really differ, `compare` names the cause and proves it with a counterfactual:
the same pair rerun with that cause removed (each removal adds to the ones before).

Causes it knows, in the order it tries them:
- "initial w (notebook order)": with pairing="notebook" the two runs are the book's cells,
  and the Gluon run draws its initial w len(lambdas) blocks after the scratch run's, so the
  two start apart; removed by pairing="shared" (both start from the first block).
- "bias decayed": MXNet's default (one Trainer, wd_mult = 1 everywhere) decays the bias
  that the hand-written penalty leaves alone (setup="mxnet_default"); removed by
  excluding the bias from wd.
- "partial last batch": with a summed loss the source adds the penalty to each example's
  loss and divides by the fixed batch_size, so a last batch of n < |B| rows decays w by
  lr * lambd * n / |B|, while Gluon's wd decays by lr * lambd on every step; removed by
  partial_batch_penalty="per_step" on the scratch path.
- "clip_gradient": the scratch path clips the gradient with the penalty in it, Gluon
  clips the loss gradient and adds wd * w after; removed by not clipping.
- "float32 rounding": tiny losses whose float32 rounding alone exceeds the relative
  tolerance; removed by running in float64.
- "float32 operator hyperparameters": in float64 runs MXNet's `sgd_update` still takes
  lr, wd and rescale_grad = 1/|B| as float32 numbers, and fl32(1/|B|) * |B| != 1 unless
  |B| is a power of two; removed by updating with float64 NDArray arithmetic on both paths.
A setting with lr * lambd >= 2 is not trained (see mxwd.training.check_stable) and is
reported as unstable; the other lambdas of the same call are unaffected.

What the package measured (tests/test_concise.py):
- float32, the source's settings: max |dw| <= 1e-6 for every lambd, batch size and
  bias policy tried. Per-epoch losses agree to 1e-5 relative, except where the training
  loss is tiny: with |B| = 1 and lambd in {0, 0.5} it falls to 3e-4..7e-4 and the
  relative gap reaches 2e-5 (absolute 1.3e-8, float32 rounding of a small number).
- float64: with |B| a power of two the runs agree to 1e-15. With |B| = 5 or 20 they
  differ by about 1e-8 relative, and the cause is MXNet, not the math: its `sgd_update`
  operator takes lr, wd and rescale_grad = 1/|B| as float32 parameters even for
  float64 weights, and fl32(1/5) * 5 = 1 + 1.5e-8. The scratch path's penalty gradient
  |B| * lambd * w is scaled by fl32(1/|B|); Gluon adds wd * w unscaled. The float64
  tolerance (1e-10) reports this difference, with its cause.
"""
from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Tuple

from mxwd.concise import fit_and_plot_gluon
from mxwd.config import Config, check_choice, check_lambd, resolve
from mxwd.results import FitResult
from mxwd.scratch import fit_and_plot
from mxwd.training import DivergenceError, unstable

# The rule: the paths agree when max |dw| <= tol, |db| <= tol, and every per-epoch loss
# pair is within tol relative or within tol absolute (math.isclose with rel_tol = abs_tol
# = tol). A pair that passes only by the absolute floor is still reported and explained.
TOLERANCE = {"float32": 1e-5, "float64": 1e-10}
SETUPS = ("chapter", "mxnet_default")


def _rel(a: float, b: float) -> float:
    scale = max(abs(a), abs(b))
    return abs(a - b) / scale if scale > 0 else 0.0


@dataclass(frozen=True)
class Gap:
    """How far apart two paired runs are, by each criterion of the rule."""

    max_dw: float
    db: float
    max_loss_diff: float  # absolute
    max_rel_loss_diff: float  # relative
    loss_within: bool  # every loss pair within tol relative or absolute
    tolerance: float

    @classmethod
    def between(cls, a: FitResult, b: FitResult, tolerance: float) -> "Gap":
        pairs = list(zip(a.train_ls + a.test_ls, b.train_ls + b.test_ls))
        return cls(
            max_dw=max(abs(x - y) for x, y in zip(a.w, b.w)),
            db=abs(a.b - b.b),
            max_loss_diff=max(abs(x - y) for x, y in pairs),
            max_rel_loss_diff=max(_rel(x, y) for x, y in pairs),
            loss_within=all(math.isclose(x, y, rel_tol=tolerance, abs_tol=tolerance) for x, y in pairs),
            tolerance=tolerance,
        )

    @property
    def agree(self) -> bool:
        """The rule: weights and bias within tol; every loss within tol relative or absolute."""
        return self.max_dw <= self.tolerance and self.db <= self.tolerance and self.loss_within

    @property
    def exact(self) -> bool:
        """Every criterion within tol with no absolute floor: nothing left to explain."""
        return self.agree and self.max_rel_loss_diff <= self.tolerance

    def line(self) -> str:
        verdict = "agree" if self.exact else ("agree (losses by the absolute floor)" if self.agree else "DIFFER")
        return (f"max |dw| = {self.max_dw:.3g}, |db| = {self.db:.3g}, losses: max absolute "
                f"{self.max_loss_diff:.3g}, max relative {self.max_rel_loss_diff:.3g} "
                f"(tolerance {self.tolerance:g}): {verdict}")

    def to_dict(self) -> Dict[str, Any]:
        return {"max_dw": self.max_dw, "db": self.db, "max_loss_diff": self.max_loss_diff,
                "max_rel_loss_diff": self.max_rel_loss_diff, "tolerance": self.tolerance,
                "agree": self.agree, "exact": self.exact}


@dataclass(frozen=True)
class Cause:
    """A named cause of a difference, and the gap once it (and the causes before it) is removed."""

    name: str
    explanation: str
    removal: str  # what the counterfactual run changed
    after: Gap

    def to_dict(self) -> Dict[str, Any]:
        return {"name": self.name, "explanation": self.explanation, "removal": self.removal,
                "after": self.after.to_dict()}

    def __repr__(self) -> str:
        return f"<Cause {self.name!r}: afterwards max |dw| = {self.after.max_dw:.3g}, agree {self.after.exact}>"


@dataclass(frozen=True)
class Comparison:
    """The scratch and Gluon runs of one lambd, how far apart they are, and why.

    `status` is "ok", or "unstable" (lr * lambd >= 2: not trained) or "diverged" (a
    loss that is non-finite or above 1e4 x the initial one: `mxwd.training.diverged`), with
    `message`; then `scratch` and `gluon` are None.
    """

    lambd: float
    config: Config
    setup: str  # "chapter" (the bias policy of config) or "mxnet_default" (Gluon decays the bias)
    scratch: Optional[FitResult]
    gluon: Optional[FitResult]
    causes: Tuple[Cause, ...] = ()
    status: str = "ok"
    message: str = ""

    @property
    def tolerance(self) -> float:
        return TOLERANCE[self.config.dtype]

    @functools.cached_property
    def gap(self) -> Optional[Gap]:
        """How far apart the two runs are (None if not trained); computed once."""
        if self.scratch is None or self.gluon is None:
            return None
        return Gap.between(self.scratch, self.gluon, self.tolerance)

    @property
    def train_diff(self) -> Tuple[float, ...]:
        """|train loss (scratch) - train loss (Gluon)| after each epoch."""
        return tuple(abs(a - b) for a, b in zip(self.scratch.train_ls, self.gluon.train_ls))

    @property
    def test_diff(self) -> Tuple[float, ...]:
        """|test loss (scratch) - test loss (Gluon)| after each epoch."""
        return tuple(abs(a - b) for a, b in zip(self.scratch.test_ls, self.gluon.test_ls))

    @property
    def max_dw(self) -> float:
        """max_i |w_i (scratch) - w_i (Gluon)| after training."""
        return self.gap.max_dw

    @property
    def db(self) -> float:
        """|b (scratch) - b (Gluon)| after training."""
        return self.gap.db

    @property
    def max_loss_diff(self) -> float:
        """Largest absolute difference between the two paths' per-epoch losses."""
        return self.gap.max_loss_diff

    @property
    def max_rel_loss_diff(self) -> float:
        """Largest relative difference between the two paths' per-epoch losses."""
        return self.gap.max_rel_loss_diff

    @property
    def agree(self) -> bool:
        """The rule holds (see `Gap.agree`); False for an unstable or diverged setting."""
        return self.gap is not None and self.gap.agree

    @property
    def explained(self) -> bool:
        """Nothing to explain, or the last counterfactual leaves nothing to explain."""
        if self.gap is None:
            return self.status == "unstable"
        return self.gap.exact or (bool(self.causes) and self.causes[-1].after.exact)

    def verdict(self) -> str:
        """One line that never contradicts the numbers above it."""
        if self.gap is None:
            return f"{self.status.upper()}: {self.message}"
        if self.gap.exact:
            return "agree: every criterion is within the tolerance"
        if not self.causes:
            return "DIFFER, cause unknown: please report this"
        names = " + ".join(c.name for c in self.causes)
        word = "agree by the rule" if self.gap.agree else "DIFFER"
        proof = "proven" if self.explained else "NOT proven: the counterfactual still differs"
        return f"{word}; cause: {names} ({proof})"

    def table(self, epochs: bool = True) -> str:
        """Per-epoch differences (unless epochs=False), the rule's worst values, the verdict and its causes."""
        c = self.config
        title = "Gluon with MXNet's default (one Trainer, bias decayed)" if self.setup == "mxnet_default" else "Gluon"
        lines = [f"lambd = wd = {self.lambd:g}: scratch vs {title}  (seed {c.seed}, {c.dtype}, "
                 f"batch_size {c.batch_size}, n_train {c.n_train}, loss {c.loss_reduction}, decay_bias {c.decay_bias}"
                 + (f", pairing {c.pairing})" if c.pairing != "shared" else ")")]
        if self.gap is None:
            return "\n".join(lines + [self.verdict()])
        if epochs:
            lines.append(f"{'epoch':>5} {'train (scratch)':>16} {'|d train|':>10} {'test (scratch)':>15} {'|d test|':>10}")
            for epoch, (tr, dtr, te, dte) in enumerate(
                zip(self.scratch.train_ls, self.train_diff, self.scratch.test_ls, self.test_diff), 1
            ):
                lines.append(f"{epoch:>5} {tr:>16.6g} {dtr:>10.2g} {te:>15.6g} {dte:>10.2g}")
        lines.append(f"rule: agree iff max |dw| <= tol, |db| <= tol and every loss within tol relative or "
                     f"absolute; tol = {self.tolerance:g} ({c.dtype})")
        lines.append(self.gap.line())
        for cause in self.causes:
            lines.append(f"  cause: {cause.name}: {cause.explanation}")
            lines.append(f"    after {cause.removal}: {cause.after.line()}")
        lines.append("verdict: " + self.verdict())
        return "\n".join(lines)

    def summary(self) -> str:
        """One line: lambd, setup and verdict."""
        return f"lambd {self.lambd:g} ({self.setup}): {self.verdict()}"

    def to_numpy(self) -> Dict[str, Any]:
        """The per-epoch differences and both paths' weights as NumPy arrays (empty if not trained)."""
        import numpy as np

        if self.gap is None:
            return {}
        return {"train_diff": np.asarray(self.train_diff), "test_diff": np.asarray(self.test_diff),
                "w_scratch": np.asarray(self.scratch.w), "w_gluon": np.asarray(self.gluon.w)}

    def to_dict(self) -> Dict[str, Any]:
        out: Dict[str, Any] = {"lambd": self.lambd, "setup": self.setup, "pairing": self.config.pairing,
                               "status": self.status,
                               "message": self.message, "verdict": self.verdict(),
                               "explained": self.explained, "causes": [c.to_dict() for c in self.causes]}
        if self.gap is not None:
            out.update(self.gap.to_dict())
            out.update(train_diff=list(self.train_diff), test_diff=list(self.test_diff),
                       scratch=self.scratch.to_dict(), gluon=self.gluon.to_dict())
        return out

    def __repr__(self) -> str:
        return f"<Comparison {self.summary()}>"

    def __str__(self) -> str:
        return self.table()


# ---------------------------------------------------------------------------------------
# Running the pair, and the counterfactuals.


@dataclass(frozen=True)
class _Variant:
    """Everything that decides a paired run: the scratch and Gluon configs, and exact steps."""

    scratch: Config
    gluon: Config
    exact: bool = False

    def run(self, lambd: float) -> Tuple[FitResult, FitResult]:
        return (fit_and_plot(lambd, self.scratch, exact_step=self.exact),
                fit_and_plot_gluon(lambd, self.gluon, exact_step=self.exact))


def _candidates(variant: _Variant, lambd: float):
    """(name, explanation, removal, applies, remove) for each cause, in the order tried."""
    s, g = variant.scratch, variant.gluon
    B, n_last = s.batch_size, s.partial_batch
    if s.pairing == "notebook":
        from mxwd.data import init_block, run_index

        k_s = init_block(s, "scratch", run_index(s, lambd))
        k_g = init_block(g, "gluon", run_index(g, lambd))
    yield ("initial w (notebook order)",
           f"pairing='notebook' runs the book's cells in one stream: the scratch run starts from initial-parameter "
           f"block {k_s} (block k: the (k+1)-th w drawn after the data), the Gluon run from block {k_g}" if s.pairing == "notebook"
           else "",
           "pairing both paths on one initial w (pairing='shared')",
           s.pairing == "notebook",
           lambda v: _Variant(v.scratch.replace(pairing="shared"), v.gluon.replace(pairing="shared"), v.exact))
    yield ("bias decayed",
           "MXNet's default gives the bias wd_mult = 1, so Gluon decays b while the penalty is on w only",
           "excluding the bias from wd",
           g.decay_bias and not s.decay_bias and lambd > 0,
           lambda v: _Variant(v.scratch, v.gluon.replace(decay_bias=False), v.exact))
    yield ("partial last batch",
           f"n_train = {s.n_train} is not a multiple of batch_size = {B}: on each epoch's last batch of "
           f"{n_last} rows the source's per-example penalty decays w by lr*lambd*{n_last}/{B}, Gluon's wd by lr*lambd",
           "giving the scratch penalty per-step semantics (partial_batch_penalty='per_step')",
           lambd > 0 and n_last > 0 and s.loss_reduction == "sum" and s.partial_batch_penalty == "per_example",
           lambda v: _Variant(v.scratch.replace(partial_batch_penalty="per_step"), v.gluon, v.exact))
    yield ("clip_gradient",
           f"clip_gradient = {s.clip_gradient:g} clips the scratch gradient with the penalty in it; Gluon clips "
           "the loss gradient and adds wd*w unclipped",
           "turning clipping off on both paths",
           s.clip_gradient > 0,
           lambda v: _Variant(v.scratch.replace(clip_gradient=0.0), v.gluon.replace(clip_gradient=0.0), v.exact))
    yield ("float32 rounding",
           "float32 rounding of the two computations (for tiny losses it exceeds the relative tolerance)",
           "rerunning in float64",
           s.dtype == "float32",
           lambda v: _Variant(v.scratch.replace(dtype="float64"), v.gluon.replace(dtype="float64"), v.exact))
    yield ("float32 operator hyperparameters",
           "MXNet's sgd_update takes lr, wd and rescale_grad = 1/|B| as float32 numbers even for float64 "
           "weights, so the scratch penalty |B|*lambd*w is scaled by fl32(1/|B|) while Gluon adds fl32(wd)*w",
           "updating with float64 NDArray arithmetic on both paths",
           not variant.exact,
           lambda v: _Variant(v.scratch, v.gluon, exact=True))


def _explain(variant: _Variant, lambd: float) -> Tuple[Cause, ...]:
    """Remove applicable causes one after another until the counterfactual leaves nothing to explain."""
    causes: List[Cause] = []
    for name, explanation, removal, applies, remove in _candidates(variant, lambd):
        if not applies:
            continue
        variant = remove(variant)
        scratch, gluon = variant.run(lambd)
        after = Gap.between(scratch, gluon, TOLERANCE[variant.scratch.dtype])
        causes.append(Cause(name, explanation, removal, after))
        if after.exact:
            break
    return tuple(causes)


def pairing_note(config: Config) -> str:
    """What initial w the compared runs start from, in one line (config.pairing)."""
    if config.pairing == "shared":
        return ("pairing shared: both paths start from the same initial w and see the same batches, so any "
                "difference is the update's")
    return ("pairing notebook: each path's run is its cell of the book's notebook, drawing its own initial w from "
            "the stream (the Gluon run's comes after every scratch run's), so the paths start apart; each "
            "comparison names that cause and reruns the pair on one initial w (pairing shared) to prove it")


def compare(lambd: float, config: Optional[Config] = None, seed: Optional[int] = None,
            setup: str = "chapter") -> Comparison:
    """Train both paths with penalty lambd = wd from the same seed, compare, and explain.

    setup="chapter" uses config's bias policy on both paths; setup="mxnet_default" gives
    Gluon MXNet's default (one Trainer, the bias decayed too) against the penalty on w only.
    With config.pairing="shared" (the default) both runs start from one initial w: a paired
    comparison. With "notebook" they are the book's two cells, which start from different w
    (lambd must be one of config.lambdas); the difference is then named "initial w (notebook
    order)" and proven by the paired rerun.
    Never raises for an unstable or diverging lambd: the Comparison's status says so.
    """
    config = resolve(config, seed)
    lambd = check_lambd(lambd)
    check_choice(setup, "setup", SETUPS)
    gluon_config = config.replace(decay_bias=True) if setup == "mxnet_default" else config
    if unstable(config.lr, lambd):
        return Comparison(lambd, config, setup, None, None, status="unstable",
                          message=f"lr*lambd = {config.lr * lambd:g} >= 2: plain SGD's decay factor "
                                  f"|1 - lr*lambd| = {abs(1 - config.lr * lambd):g} >= 1; not trained")
    variant = _Variant(config, gluon_config)
    try:
        scratch, gluon = variant.run(lambd)
    except DivergenceError as err:
        return Comparison(lambd, config, setup, None, None, status="diverged", message=str(err))
    gap = Gap.between(scratch, gluon, TOLERANCE[config.dtype])
    causes = () if gap.exact else _explain(variant, lambd)
    return Comparison(lambd, config, setup, scratch, gluon, causes)
