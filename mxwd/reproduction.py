"""The chapter's experiment, as `mxwd reproduce` runs it: every lambd on both paths.

For one seed, `fit_and_plot(lambd)` and `fit_and_plot_gluon(lambd)` run for each lambd
of the config, in the order of the book's cells (every scratch run, then every Gluon run).
Every run sees the same batch order. Which initial w each draws is config.pairing
(`mxwd.data.init_block`):
- "shared" (the default): all runs of one seed start from the same initial w, which is
  what makes the source's two printed w[:10] comparable: with a shared start,
  w(lambd)[:10] / w(0)[:10] is close to the decay factor (1 - lr * lambd) ** steps that
  weight decay alone applies over the run;
- "notebook": run k draws the k-th initial w after the data, as the book's notebook did
  in one kernel; at seed 0 (what an unseeded MXNet process draws) this is the book's own
  stream, and the ratios are not computed (the runs start from different w).
"""
from __future__ import annotations

import statistics
from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Sequence, Tuple

from mxwd.concise import fit_and_plot_gluon
from mxwd.config import Config, resolve
from mxwd.decay import describe
from mxwd.results import FitResult
from mxwd.scratch import fit_and_plot
from mxwd.steps import step_plan
from mxwd.training import DivergenceError, unstable


def ratio_reading(median: float, predicted: float, ratios: Sequence[float] = ()) -> str:
    """What a median ratio w(lambd)[:10] / w(0)[:10] says beside the decay factor
    q = (1 - lr*lambd)**steps, in words; "" while the ratio is that factor.

    Both runs start from the same w0 and see the same batches. The decay alone multiplies w0
    by q (exactly in the directions the training rows do not span, if every batch is full);
    the data add a part u in the span of the rows: w(lambd) = q w0 + u(lambd) and
    w(0) = w0 + u(0). The ratio is near q while q w0 dominates w(lambd). Once the decay has
    shrunk w0 below what the data add (|median - q| > |q|), the ratio is about
    u(lambd) / w(0): it no longer measures the decay, and its sign is unrelated to w0's, so a
    negative median means that w(lambd) and w(0) have opposite signs in half or more of the
    entries (`ratios`, if given, are counted).
    """
    if not abs(median - predicted) > abs(predicted):
        return ""
    shrunk = (f"the decay has shrunk the shared initial w to {predicted:.3g} of itself, so w(lambd) is "
              "mostly what the data added")
    if median < 0 < predicted:
        where = (f"in {sum(r < 0 for r in ratios)} of the {len(ratios)} entries" if ratios
                 else "in half or more of the entries")
        return (f"negative: w(lambd) has the opposite sign to w(0) {where}. {shrunk[0].upper() + shrunk[1:]}, "
                "whose sign is unrelated to the initial w that dominates w(0): the ratio no longer measures the decay")
    return f"not the decay factor: {shrunk}; the ratio no longer measures the decay"


@dataclass(frozen=True)
class Ratio:
    """w(lambd)[:10] / w(0)[:10] elementwise, beside (1 - lr * lambd) ** steps."""

    lambd: float
    ratios: Tuple[float, ...]
    predicted: float

    @property
    def median(self) -> float:
        """The median of the ten ratios."""
        return statistics.median(self.ratios)


def decay_factor(config: Config, lambd: float) -> float:
    """What weight decay alone does to w over a run: the product over every step of
    (1 - lr * lambd * decay), the step plan's decay (1, or n/|B| on a per-example partial
    batch); (1 - lr * lambd) ** steps when every batch is full."""
    per_epoch = 1.0
    for step in step_plan(config, "penalty").steps:
        per_epoch *= 1 - config.lr * lambd * step.decay
    return per_epoch ** config.num_epochs


def decay_label(config: Config) -> str:
    """How `decay_factor` is computed, as printed: (1 - lr*lambd)**steps when every batch is
    full, else the product over the steps (a partial batch decays by less)."""
    if all(s.decay == 1 for s in step_plan(config, "penalty").steps):
        return "(1 - lr*lambd)**steps"
    return "prod over steps of (1 - lr*lambd*decay)"


def pairing_line(config: Config) -> str:
    """Which initial w each run started from, in one line (config.pairing)."""
    if config.pairing == "shared":
        return "pairing shared: every run starts from the same initial w (the first block drawn after the data)"
    L = len(config.lambdas)
    return (f"pairing notebook: run k of the book's cells (scratch lambdas, then Gluon lambdas) starts from the "
            f"k-th initial w drawn after the data: scratch blocks 0..{L - 1}, Gluon blocks {L}..{2 * L - 1}"
            + (" (seed 0: the stream of an unseeded MXNet process, the book's)" if config.seed == 0 else ""))


@dataclass(frozen=True)
class NotTrained:
    """A lambd that gave no result: "unstable" (lr * lambd >= 2, refused before training)
    or "diverged" (`mxwd.training.diverged` during training), with the reason in one line."""

    path: str
    lambd: float
    status: str
    message: str

    def to_dict(self) -> Dict[str, Any]:
        return {"path": self.path, "lambd": self.lambd, "status": self.status, "message": self.message}


@dataclass(frozen=True)
class Reproduction:
    """All runs of one reproduction: results[path] lists one FitResult per lambd.

    A lambd that could not be trained on a path (unstable or diverged) has no FitResult
    there; it is listed in `not_trained`, as `compare` reports it, and every other lambd
    is still run.
    """

    config: Config
    scratch: Tuple[FitResult, ...]
    gluon: Tuple[FitResult, ...]
    not_trained: Tuple[NotTrained, ...] = ()

    @property
    def runs(self) -> Tuple[FitResult, ...]:
        """Every run: the scratch runs, then the Gluon runs, one per lambd each."""
        return self.scratch + self.gluon

    def __repr__(self) -> str:
        runs = ", ".join(f"{r.path} {r.lambd:g}: test {r.final_test_ls:.3g}" for r in self.runs)
        return f"<Reproduction seed {self.config.seed}, {len(self.runs)} runs ({runs})>"[:300]

    def ratios(self, path: str = "scratch") -> List[Ratio]:
        """For each lambd > 0, the ratio of its w[:10] to the lambd = 0 run's (if there is one
        and the runs share their initial w: none under pairing="notebook")."""
        results = {r.lambd: r for r in getattr(self, path)}
        if 0.0 not in results or self.config.pairing != "shared":
            return []
        base = results[0.0].w_head
        return [
            Ratio(
                lambd,
                tuple(a / b if b != 0 else float("nan") for a, b in zip(r.w_head, base)),
                decay_factor(self.config, lambd),
            )
            for lambd, r in results.items()
            if lambd > 0
        ]

    def table(self) -> str:
        """The summary `mxwd reproduce` prints, in the spirit of the source's output."""
        c = self.config
        lines = [
            f"weight decay, seed {c.seed}: n_train={c.n_train} n_test={c.n_test} "
            f"num_inputs={c.num_inputs} batch_size={c.batch_size} num_epochs={c.num_epochs} "
            f"lr={c.lr:g} ({c.steps} steps)",
            describe(c),
            pairing_line(c),
            f"{'path':<8} {'lambd':>6} {'train loss':>11} {'test loss':>10} {'||w||':>11} {'b':>11}",
        ]
        for r in self.runs:
            lines.append(
                f"{r.path:<8} {r.lambd:>6g} {r.train_ls[-1]:>11.4g} {r.test_ls[-1]:>10.4g} "
                f"{r.w_norm:>11.7g} {r.b:>11.6g}"
            )
        for n in self.not_trained:
            lines.append(f"{n.path:<8} {n.lambd:>6g} {n.status.upper()}: {n.message}")
        for r in self.runs:
            lines.append(f"{r.path} lambd={r.lambd:g} w[:10]: " + " ".join(f"{v:.6g}" for v in r.w_head))
        if self.config.pairing != "shared":
            lines.append("w(lambd)[:10] / w(0)[:10]: not computed: under pairing notebook the runs start from "
                         "different initial w, so the ratio does not measure the decay")
        for ratio in self.ratios():
            reading = ratio_reading(ratio.median, ratio.predicted, ratio.ratios)  # small numbers as .3g, not 0.0000
            lines.append(
                f"w(lambd={ratio.lambd:g})[:10] / w(0)[:10]: "
                + " ".join(f"{v:.3g}" for v in ratio.ratios)
                + f"\n  median {ratio.median:.3g}; the decay alone, {decay_label(self.config)} = {ratio.predicted:.3g}"
                + (f"\n  {reading}" if reading else "")
            )
        return "\n".join(lines)

    def gaps_to(self, other: "Reproduction") -> List[Dict[str, Any]]:
        """Per run (path, lambd), how far this reproduction's final w and b lie from `other`'s
        (e.g. a data-parallel run against the single-process one): max |dw| and |db|."""
        theirs = {(r.path, r.lambd): r for r in other.runs}
        return [{"path": r.path, "lambd": r.lambd,
                 "max_dw": max(abs(a - b) for a, b in zip(r.w, theirs[(r.path, r.lambd)].w)),
                 "db": abs(r.b - theirs[(r.path, r.lambd)].b)}
                for r in self.runs if (r.path, r.lambd) in theirs]

    def to_dict(self) -> Dict[str, Any]:
        return {
            "pairing": self.config.pairing,
            "runs": [r.to_dict() for r in self.runs],
            "not_trained": [n.to_dict() for n in self.not_trained],
            "ratios": [
                {"lambd": q.lambd, "ratios": list(q.ratios), "median": q.median, "predicted": q.predicted}
                for q in self.ratios()
            ],
        }

    def __str__(self) -> str:
        return self.table()


def reproduce(config: Optional[Config] = None, seed: Optional[int] = None) -> Reproduction:
    """Run every lambd of the config on the scratch path and the Gluon path, for one seed.

    A lambd with lr * lambd >= 2, or one whose training diverges, is reported in
    `Reproduction.not_trained` (as `compare` reports it) and the other lambdas still run.
    """
    config = resolve(config, seed)
    runs: Dict[str, List[FitResult]] = {"scratch": [], "gluon": []}
    not_trained: List[NotTrained] = []
    for path, fit in (("scratch", fit_and_plot), ("gluon", fit_and_plot_gluon)):
        for lambd in config.lambdas:
            try:
                runs[path].append(fit(lambd, config))
            except DivergenceError as err:
                status = "unstable" if unstable(config.lr, lambd) else "diverged"
                not_trained.append(NotTrained(path, lambd, status, str(err)))
    return Reproduction(config, tuple(runs["scratch"]), tuple(runs["gluon"]), tuple(not_trained))
