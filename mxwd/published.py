"""The numbers the book printed (shared/reference/book-versions.md), for checking a reproduction."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np

# gluonbook-2018 (our source), printed by fit_and_plot: w[:10] and b for lambd = 0 and 5.
GLUONBOOK_2018: Dict[float, Dict[str, object]] = {
    0.0: {
        "w[:10]": (0.30343655, -0.08110731, 0.64756584, -1.51627898, 0.16536537,
                   0.42101485, 0.41159022, 0.8322348, -0.66477555, 3.56285167),
        "b": 0.12521751,
    },
    5.0: {
        "w[:10]": (0.01602661, -0.00279179, 0.03075662, -0.07356022, 0.01006496,
                   0.02420521, 0.02145572, 0.04235912, -0.03388886, 0.17112994),
        "b": 0.08771407,
    },
}

# d2lzh-2019: the printed "L2 norm of w" (the Euclidean norm ||w||), by path and lambd.
D2LZH_2019: Dict[Tuple[str, float], float] = {
    ("scratch", 0.0): 11.611941,
    ("scratch", 3.0): 0.04225087,
    ("gluon", 0.0): 13.311797,
    ("gluon", 3.0): 0.032601923,
}


# ---------------------------------------------------------------------------------------
# Where each published number falls among many seeded runs of the same setting.

PRESETS_WITH_NUMBERS = ("gluonbook-2018", "d2lzh-2019")
GLUON_CHECK_SEEDS = 1  # seeds on which the real Gluon path is run to confirm it equals the sweep (2000-step runs cost 1.2 s each)


def percentile_of(values: Sequence[float], published: float) -> float:
    """Percent of runs below the published value, ties counting half (scipy's kind='mean')."""
    values = np.asarray(values, dtype=np.float64)
    below = np.sum(values < published)
    ties = np.sum(values == published)
    return float(100.0 * (below + 0.5 * ties) / len(values))


@dataclass(frozen=True)
class Check:
    """One published number beside the distribution of the same quantity over seeds."""

    quantity: str
    published: float
    runs: np.ndarray  # the quantity in each seeded run

    @property
    def percentile(self) -> float:
        """Percent of the runs below the published value (ties count half)."""
        return percentile_of(self.runs, self.published)

    def __repr__(self) -> str:
        return f"<Check {self.quantity}: published {self.published:.4g} at the {self.percentile:.1f}th percentile of {len(self.runs)} runs>"

    @property
    def inside(self) -> bool:
        """Inside the central 95% of the runs."""
        return 2.5 <= self.percentile <= 97.5

    def to_dict(self) -> Dict[str, Any]:
        low, median, high = np.percentile(self.runs, [2.5, 50, 97.5])
        return {
            "quantity": self.quantity,
            "published": self.published,
            "percentile": self.percentile,
            "inside_central_95": self.inside,
            "runs_median": float(median),
            "runs_2.5%": float(low),
            "runs_97.5%": float(high),
        }


@dataclass(frozen=True)
class PublishedCheck:
    """Where each number a book version printed falls among seeded runs of its settings."""

    preset: str
    seeds: Tuple[int, ...]
    checks: Tuple[Check, ...]
    note: str
    differences: Dict[str, Tuple[Any, Any]] = field(default_factory=dict)  # field: (ours, the book's)

    @property
    def settings_match(self) -> bool:
        """The runs used the book's settings (the seed and the lambdas aside)."""
        return not self.differences

    def settings_line(self) -> str:
        if self.settings_match:
            return f"settings: the book's ({self.preset})"
        diffs = ", ".join(f"{k} {ours!r} (book: {book!r})" for k, (ours, book) in self.differences.items())
        return (f"NOT the book's settings: {diffs}; the verdicts place the book's numbers among runs "
                "of other settings")

    def table(self) -> str:
        lines = [
            f"{self.preset}: published numbers among {len(self.seeds)} seeded runs "
            f"(seeds {self.seeds[0]}..{self.seeds[-1]})",
            self.settings_line(),
            f"{'quantity':<34} {'published':>10} {'runs median':>12} {'central 95% of runs':>23} "
            f"{'percentile':>10}  verdict",
        ]
        for c in self.checks:
            d = c.to_dict()
            span = f"[{d['runs_2.5%']:.4g}, {d['runs_97.5%']:.4g}]"
            verdict = "inside the central 95%" if c.inside else "OUTSIDE the central 95%"
            if not self.settings_match:
                verdict += " (not the book's settings)"
            lines.append(
                f"{c.quantity:<34} {c.published:>10.4g} {d['runs_median']:>12.4g} {span:>23} "
                f"{c.percentile:>9.1f}%  {verdict}"
            )
        lines.append(self.note)
        return "\n".join(lines)

    def __repr__(self) -> str:
        inside = sum(c.inside for c in self.checks)
        return f"<PublishedCheck {self.preset}: {inside} of {len(self.checks)} published numbers inside the central 95% of {len(self.seeds)} runs>"

    def to_dict(self) -> Dict[str, Any]:
        return {"preset": self.preset, "seeds": list(self.seeds), "note": self.note,
                "settings_match": self.settings_match,
                "differences": {k: {"ours": a, "book": b} for k, (a, b) in self.differences.items()},
                "checks": [c.to_dict() for c in self.checks]}

    def __str__(self) -> str:
        return self.table()


def check_published(preset_name: str, seeds: Any, config: Optional[Any] = None) -> PublishedCheck:
    """Run `seeds` seeded reproductions of a book version and place its published numbers.

    Uses the batched sweep (the same models as fit_and_plot, seed by seed). For the Gluon
    numbers, the real Gluon path is run on the first GLUON_CHECK_SEEDS seeds and must equal
    the sweep's models to 1e-5 (it is the same update: see mxwd.comparison); the sweep's
    distribution then serves both paths.
    """
    from mxwd.config import preset
    from mxwd.sweeps import as_seeds, sweep

    if preset_name not in PRESETS_WITH_NUMBERS:
        raise ValueError(
            f"preset {preset_name!r} has no published numbers to check; "
            f"allowed: {', '.join(PRESETS_WITH_NUMBERS)}"
        )
    book = preset(preset_name)
    config = config or book
    seeds = tuple(as_seeds(seeds, config.seed))
    # the settings that change the runs, beside the book's (seed and lambdas are the check's own)
    ignored = {"seed", "lambdas", "hybridize", "bias_exclusion"}
    differences = {f: (getattr(config, f), getattr(book, f)) for f in config.to_dict()
                   if f not in ignored and getattr(config, f) != getattr(book, f)}
    # the lambdas the book printed numbers for, whatever --lambdas says
    if preset_name == "gluonbook-2018":
        lambdas = tuple(sorted(GLUONBOOK_2018))
    else:
        lambdas = tuple(sorted({lambd for _, lambd in D2LZH_2019}))
    result = sweep(lambdas, seeds, config, n_valid=0)
    at = {lambd: j for j, lambd in enumerate(lambdas)}
    if preset_name == "gluonbook-2018":
        checks = _gluonbook_checks(result, at)
        return PublishedCheck(preset_name, seeds, checks, note=_ratio_note(config, checks[-1]), differences=differences)
    # Gluon's wd decays every step by lr*lambd; the source's penalty decays a partial last
    # batch of a summed loss by less (see mxwd.comparison). Where that differs, the Gluon
    # numbers get their own sweep with Gluon's semantics.
    gluon_config = config.replace(partial_batch_penalty="per_step")
    shared = config.partial_batch == 0 or config.loss_reduction == "mean" or gluon_config == config
    gluon_result = result if shared else sweep(lambdas, seeds, gluon_config, n_valid=0)
    verified = _verify_gluon(config, gluon_result, at, seeds[:GLUON_CHECK_SEEDS])
    grids = {"scratch": result.grid, "gluon": gluon_result.grid}
    checks = tuple(
        Check(f"||w||, {path}, lambd={lambd:g}", value, grids[path].w_norm[:, at[lambd]])
        for (path, lambd), value in D2LZH_2019.items()
    )
    checked = f"the real Gluon path, run on seeds {list(seeds[:GLUON_CHECK_SEEDS])}, equals "
    note = (f"Both paths share one distribution: {checked}the sweep's models (max |dw| {verified:.2g})." if shared else
            f"batch_size {config.batch_size} leaves a partial last batch of {config.partial_batch} rows, where the "
            f"source's penalty decays less than Gluon's wd, so the Gluon numbers are placed among sweep models with "
            f"per-step decay: {checked}those models (max |dw| {verified:.2g}).")
    return PublishedCheck(preset_name, seeds, checks, note=note, differences=differences)


def _gluonbook_checks(result, at) -> Tuple[Check, ...]:
    checks: List[Check] = []
    for lambd in (0.0, 5.0):
        book = GLUONBOOK_2018[lambd]
        j = at[lambd]
        checks.append(Check(f"b, lambd={lambd:g}", float(book["b"]), result.grid.b[:, j]))
        checks.append(Check(
            f"mean |w[:10]|, lambd={lambd:g}",
            float(np.mean(np.abs(book["w[:10]"]))),
            np.abs(result.grid.w[:, j, :10]).mean(axis=1),
        ))
    published_ratio = np.asarray(GLUONBOOK_2018[5.0]["w[:10]"]) / np.asarray(GLUONBOOK_2018[0.0]["w[:10]"])
    ratios = result.grid.w[:, at[5.0], :10] / result.grid.w[:, at[0.0], :10]
    checks.append(Check("median of w(5)[:10] / w(0)[:10]", float(np.median(published_ratio)),
                        np.median(ratios, axis=1)))
    return tuple(checks)


def _ratio_note(config, ratio: Check) -> str:
    """The ratio check beside the decay factor that weight decay alone applies."""
    from mxwd.reproduction import decay_factor, decay_label, ratio_reading

    predicted = decay_factor(config, 5.0)
    median = float(np.median(ratio.runs))
    reading = ratio_reading(median, predicted)
    return (
        f"{decay_label(config)} = {predicted:.3g}; median over seeds of the shared-init ratio = "
        f"{median:.3g}; published: {ratio.published:.3g}" + (f"\nthe shared-init ratio is {reading}" if reading else "")
    )


def _verify_gluon(config, result, at, seeds) -> float:
    from mxwd.concise import fit_and_plot_gluon

    worst = 0.0
    for s, seed in enumerate(seeds):
        for lambd, j in at.items():
            run = fit_and_plot_gluon(lambd, config, seed=seed)
            worst = max(worst, float(np.max(np.abs(np.asarray(run.w) - result.grid.w[s, j]))))
    if not worst <= 1e-5:
        raise RuntimeError(f"the Gluon path differs from the sweep by {worst:g}: please report this")
    return worst
