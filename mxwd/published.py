"""The numbers the book printed, and what reproduces them.

A published number is one run of the book's code. What was random in it decides how to
check it:
- d2lzh-2019 ran every cell in one Jupyter kernel, without seeding. A fresh MXNet process
  draws what `mx.random.seed(0)` draws, so its data and initial weights are seed 0's stream
  in the notebook's order (Config.pairing="notebook": the data, then one initial w per
  cell). Only the batch order was unseeded (a DataLoader shuffling with numpy) and cannot
  be recovered. With lambd = 0 the order hardly matters (the gradient never touches the
  null space of the 20 training rows, where most of w lies), so the known stream
  reproduces those numbers: they are reported as reproduced, with their difference. With
  lambd > 0 the order matters: those numbers are placed among runs over many batch orders,
  from the book's data and initial weights, the distribution the published run was a draw from.
- gluonbook-2018's printed w[:10] and b are reproduced by no stream found (`search_streams`),
  so its numbers are one draw of unknown data, initial w and order: they are placed among
  seeded runs, and the search says how close the closest stream came.
The seeded distribution is kept as a second view for every number.
"""
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
# Where each published number falls: reproduced by the known stream, among batch orders,
# among seeds.

PRESETS_WITH_NUMBERS = ("gluonbook-2018", "d2lzh-2019")
BOOK_STREAM_SEED = 0  # a fresh, unseeded MXNet process draws exactly what mx.random.seed(0) draws
# A published number is reproduced when the book's stream gives it to this relative difference.
# The book ran float32 on another machine and MXNet build: a 2000-step float32 run accumulates
# rounding of order sqrt(2000) x 6e-8 = 3e-6 relative (ours and the float64 engine differ by 1.5e-7
# on ||w||); 1e-5 is 3x that. A different batch order moves the lambd > 0 norms by about 1e-2
# relative, 1000x more, so the rule cannot mistake an order-dependent number for a reproduced one.
REPRODUCED_RTOL = 1e-5
ENGINE_TOLERANCE = 1e-5  # the batched engine equals the real runs to 1e-5 in w (float32; tests/test_sweep.py)


def percentile_of(values: Sequence[float], published: float) -> float:
    """Percent of runs below the published value, ties counting half (scipy's kind='mean')."""
    values = np.asarray(values, dtype=np.float64)
    below = np.sum(values < published)
    ties = np.sum(values == published)
    return float(100.0 * (below + 0.5 * ties) / len(values))


@dataclass(frozen=True)
class Check:
    """One published number beside the distribution of the same quantity over runs that
    vary what the published run left to chance: the seed (the default) or the batch order."""

    quantity: str
    published: float
    runs: np.ndarray  # the quantity in each run
    over: str = "seeds"  # what the runs vary: "seeds" or "batch orders"

    @property
    def percentile(self) -> float:
        """Percent of the runs below the published value (ties count half)."""
        return percentile_of(self.runs, self.published)

    def __repr__(self) -> str:
        return (f"<Check {self.quantity}: published {self.published:.4g} at the {self.percentile:.1f}th percentile "
                f"of {len(self.runs)} runs over {self.over}>")

    @property
    def inside(self) -> bool:
        """Inside the central 95% of the runs."""
        return 2.5 <= self.percentile <= 97.5

    def to_dict(self) -> Dict[str, Any]:
        low, median, high = np.percentile(self.runs, [2.5, 50, 97.5])
        return {
            "quantity": self.quantity,
            "published": self.published,
            "over": self.over,
            "percentile": self.percentile,
            "inside_central_95": self.inside,
            "runs_median": float(median),
            "runs_2.5%": float(low),
            "runs_97.5%": float(high),
            "runs_min": float(np.min(self.runs)),
            "runs_max": float(np.max(self.runs)),
        }


@dataclass(frozen=True)
class Reproduced:
    """A published number beside the same number from the book's known stream (real MXNet runs)."""

    quantity: str
    published: float
    ours: float  # the run on the book's stream (seed 0, pairing="notebook", mxwd's batch order)

    @property
    def difference(self) -> float:
        """ours - published."""
        return self.ours - self.published

    @property
    def relative(self) -> float:
        """|ours - published| / |published|."""
        return abs(self.difference) / abs(self.published)

    @property
    def reproduced(self) -> bool:
        """Within REPRODUCED_RTOL relative: float32 rounding on another machine, nothing more."""
        return self.relative <= REPRODUCED_RTOL

    def to_dict(self) -> Dict[str, Any]:
        return {"quantity": self.quantity, "published": self.published, "ours": self.ours,
                "difference": self.difference, "relative_difference": self.relative, "reproduced": self.reproduced}


@dataclass(frozen=True)
class StreamMatch:
    """How close one stream (data seed, initial-w blocks) comes to gluonbook-2018's printed numbers."""

    seed: int
    blocks: Tuple[int, int]  # the initial-parameter blocks of the lambd = 0 and lambd = 5 runs
    pairing: str  # "shared" (both runs start from one block) or "notebook" (lambd = 5 from the next one)
    distance: float  # max over the printed w[:10] and b of both runs of |ours - printed|

    def to_dict(self) -> Dict[str, Any]:
        return {"seed": self.seed, "blocks": list(self.blocks), "pairing": self.pairing, "distance": self.distance}


@dataclass(frozen=True)
class StreamSearch:
    """The search for a stream behind gluonbook-2018's printed w[:10] and b.

    For every seed and every first block k (the blocks cells run earlier in the kernel may
    have drawn), the lambd = 0 run from block k and the lambd = 5 run from block k (shared)
    or k + 1 (notebook), in mxwd's batch order. A stream reproduces the printed numbers if
    its distance is within what the unknown batch order can move them (`order_spread`, the
    largest change over many orders of the closest stream, times 2, plus float32's 1e-5).
    """

    seeds: Tuple[int, int]  # first and last seed searched
    n_seeds: int
    first_blocks: Tuple[int, ...]
    best: Tuple[StreamMatch, ...]  # the closest stream under each pairing
    order_spread: float  # max |change| of the closest stream's printed quantities over batch orders (from mxwd's)
    n_orders: int
    typical: float  # the median distance over every stream searched

    @property
    def tolerance(self) -> float:
        return 2 * self.order_spread + ENGINE_TOLERANCE

    @property
    def found(self) -> bool:
        return any(m.distance <= self.tolerance for m in self.best)

    def line(self) -> str:
        closest = "; ".join(f"{m.pairing}: seed {m.seed}, blocks {m.blocks[0]} and {m.blocks[1]}, "
                            f"max |ours - printed| = {m.distance:.3g}" for m in self.best)
        head = ("a stream REPRODUCES the printed w[:10] and b" if self.found else
                "no stream reproduces the printed w[:10] and b")
        return (f"{head}: searched seeds {self.seeds[0]}..{self.seeds[1]} x first blocks "
                f"{self.first_blocks[0]}..{self.first_blocks[-1]} x both pairings ({self.n_seeds * len(self.first_blocks)} "
                f"streams); closest: {closest} (median over the streams {self.typical:.3g}); a reproducing stream "
                f"would lie within {self.tolerance:.2g} (twice what {self.n_orders} batch orders move the closest "
                f"one, {self.order_spread:.2g}, plus 1e-5)")

    def to_dict(self) -> Dict[str, Any]:
        return {"seeds": list(self.seeds), "n_seeds": self.n_seeds, "first_blocks": list(self.first_blocks),
                "best": [m.to_dict() for m in self.best], "order_spread": self.order_spread,
                "n_orders": self.n_orders, "typical_distance": self.typical, "tolerance": self.tolerance,
                "found": self.found}


@dataclass(frozen=True)
class PublishedCheck:
    """What reproduces each number a book version printed, and where the rest fall.

    `checks` places every number among seeded runs (the second view, and what
    `mxwd.plot.published_distributions` draws). For d2lzh-2019, `reproduced` compares every
    number with the book's known stream, and `by_order` places the ones it does not
    reproduce among batch orders on the book's data and initial weights. For gluonbook-2018,
    `search` is the search for its stream.
    """

    preset: str
    seeds: Tuple[int, ...]
    checks: Tuple[Check, ...]
    note: str
    differences: Dict[str, Tuple[Any, Any]] = field(default_factory=dict)  # field: (ours, the book's)
    pairing: str = "shared"  # the seeded runs' pairing
    reproduced: Tuple[Reproduced, ...] = ()
    by_order: Tuple[Check, ...] = ()
    order_seeds: Tuple[int, ...] = ()
    order_spread: Dict[str, float] = field(default_factory=dict)  # reproduced quantity: max relative change over orders
    search: Optional[StreamSearch] = None

    @property
    def settings_match(self) -> bool:
        """The runs used the book's settings (the seed, lambdas and pairing aside)."""
        return not self.differences

    def settings_line(self) -> str:
        if self.settings_match:
            return f"settings: the book's ({self.preset})"
        diffs = ", ".join(f"{k} {ours!r} (book: {book!r})" for k, (ours, book) in self.differences.items())
        return (f"NOT the book's settings: {diffs}; the verdicts place the book's numbers among runs "
                "of other settings")

    def table(self) -> str:
        other = "" if self.settings_match else " (not the book's settings)"
        lines = [f"{self.preset}: the published numbers", self.settings_line()]
        if self.reproduced:
            lines += [
                f"the book's stream: seed {BOOK_STREAM_SEED} (what an unseeded MXNet process draws), pairing notebook "
                "(its cells in one kernel: the data, then one initial w per run), mxwd's batch order (the book's "
                "was unseeded numpy)",
                f"{'quantity':<26} {'published':>12} {'book stream':>12} {'difference':>11}  verdict",
            ]
            for r in self.reproduced:
                verdict = (f"REPRODUCED (relative {r.relative:.2g} <= {REPRODUCED_RTOL:g})" if r.reproduced else
                           f"not reproduced (relative {r.relative:.2g}): it depends on the batch order, below")
                lines.append(f"{r.quantity:<26} {r.published:>12.8g} {r.ours:>12.8g} {r.difference:>+11.2g}  "
                             f"{verdict}{other}")
            if self.order_spread:
                moved = ", ".join(f"{q} by {v:.2g}" if v else f"{q} not at all (the same float32 w)"
                                  for q, v in self.order_spread.items())
                lines.append(f"over the {len(self.order_seeds)} batch orders below, the reproduced numbers move by at "
                             f"most (relative) {moved}: their difference is float32 rounding, not the order")
        if self.by_order:
            lines += [
                "",
                f"what was random in the published run, the batch order: the book's data and initial w, over "
                f"{len(self.order_seeds)} batch orders (numpy default_rng({self.order_seeds[0]}..{self.order_seeds[-1]}))",
                *self._rows(self.by_order, other),
            ]
        if self.search is not None:
            lines.append(self.search.line())
        title = "second view: " if self.reproduced else ""
        lines += [
            "",
            f"{title}among {len(self.seeds)} seeded runs (seeds {self.seeds[0]}..{self.seeds[-1]}, pairing "
            f"{self.pairing})" + (": a distribution the published run was not drawn from, its stream being known"
                                  if self.reproduced else ""),
            *self._rows(self.checks, other),
            self.note,
        ]
        return "\n".join(lines)

    @staticmethod
    def _rows(checks: Sequence[Check], other: str) -> List[str]:
        lines = [f"{'quantity':<34} {'published':>10} {'runs median':>12} {'central 95% of runs':>23} "
                 f"{'percentile':>10}  verdict"]
        for c in checks:
            d = c.to_dict()
            span = f"[{d['runs_2.5%']:.4g}, {d['runs_97.5%']:.4g}]"
            verdict = "inside the central 95%" if c.inside else "OUTSIDE the central 95%"
            lines.append(f"{c.quantity:<34} {c.published:>10.4g} {d['runs_median']:>12.4g} {span:>23} "
                         f"{c.percentile:>9.1f}%  {verdict}{other}")
        return lines

    def __repr__(self) -> str:
        done = sum(r.reproduced for r in self.reproduced)
        inside = sum(c.inside for c in self.checks)
        return (f"<PublishedCheck {self.preset}: {done} of {len(self.reproduced)} reproduced by the book's stream, "
                f"{inside} of {len(self.checks)} inside the central 95% of {len(self.seeds)} seeded runs>")

    def to_dict(self) -> Dict[str, Any]:
        return {"preset": self.preset, "seeds": list(self.seeds), "pairing": self.pairing, "note": self.note,
                "settings_match": self.settings_match,
                "differences": {k: {"ours": a, "book": b} for k, (a, b) in self.differences.items()},
                "reproduced": [r.to_dict() for r in self.reproduced],
                "book_stream": ({"seed": BOOK_STREAM_SEED, "pairing": "notebook"} if self.reproduced else None),
                "order_seeds": list(self.order_seeds),
                "order_spread": dict(self.order_spread),
                "by_batch_order": [c.to_dict() for c in self.by_order],
                "stream_search": None if self.search is None else self.search.to_dict(),
                "checks": [c.to_dict() for c in self.checks]}

    def __str__(self) -> str:
        return self.table()


def _published_lambdas(preset_name: str) -> Tuple[float, ...]:
    if preset_name == "gluonbook-2018":
        return tuple(sorted(GLUONBOOK_2018))
    return tuple(sorted({lambd for _, lambd in D2LZH_2019}))


def _gluon_config(config):
    """The config whose sweep trains the Gluon update: Gluon's wd decays every step by lr*lambd,
    the source's penalty a partial last batch of a summed loss by less (see mxwd.comparison);
    `config` itself where the two are the same."""
    gluon = config.replace(partial_batch_penalty="per_step")
    same = config.partial_batch == 0 or config.loss_reduction == "mean" or gluon == config
    return config if same else gluon


def path_grids(config, lambdas: Sequence[float], seeds: Sequence[int], order_seeds: Optional[Sequence[int]] = None,
               paths: Sequence[str] = ("scratch", "gluon")) -> Dict[Tuple[str, float], np.ndarray]:
    """The final w of every (path, lambd) run of `lambdas` over the seeds (S, p): the batched
    engine, each path with its own update (`_gluon_config`) and, under config.pairing, its
    own initial-parameter blocks (`mxwd.data.init_block`); models the two paths share are
    trained once. order_seeds: see `mxwd.sweep_engines.train_grid`."""
    from mxwd.data import init_block
    from mxwd.sweep_engines import train_grid

    wanted: Dict[Any, List[Tuple[float, int]]] = {}
    runs: Dict[Tuple[str, float], Tuple[Any, Tuple[float, int]]] = {}
    for path in paths:
        semantics = config if path == "scratch" else _gluon_config(config)
        for j, lambd in enumerate(lambdas):
            model = (lambd, init_block(config, path, j, len(lambdas)))
            columns = wanted.setdefault(semantics, [])
            if model not in columns:
                columns.append(model)
            runs[(path, lambd)] = (semantics, model)
    grids = {semantics: train_grid(semantics, [lam for lam, _ in columns], list(seeds),
                                   blocks=[k for _, k in columns], order_seeds=order_seeds)
             for semantics, columns in wanted.items()}
    return {key: grids[semantics].w[:, wanted[semantics].index(model)] for key, (semantics, model) in runs.items()}


def check_published(preset_name: str, seeds: Any, config: Optional[Any] = None, runs: Sequence[Any] = ()) -> PublishedCheck:
    """Say which published numbers of a book version the known stream reproduces, and place
    the rest among batch orders and every number among `seeds` seeded runs.

    d2lzh-2019: the book's stream (seed 0, pairing="notebook", mxwd's batch order) is run on
    the real paths (`fit_and_plot`, `fit_and_plot_gluon`; `runs` may hold some already made);
    the batched engine then trains the book's data and initial w over len(seeds) batch orders
    (numpy default_rng(0..)), and must equal the real runs on order 0 to 1e-5; and, as a
    second view, every (path, lambd) over the seeds, with config.pairing. gluonbook-2018:
    the seeded view, and `search_streams` over the same seeds.
    """
    from mxwd.config import preset
    from mxwd.sweeps import as_seeds

    if preset_name not in PRESETS_WITH_NUMBERS:
        raise ValueError(
            f"preset {preset_name!r} has no published numbers to check; "
            f"allowed: {', '.join(PRESETS_WITH_NUMBERS)}"
        )
    book = preset(preset_name)
    config = config or book
    seeds = tuple(as_seeds(seeds, config.seed))
    # the settings that change the runs, beside the book's (seed, lambdas and pairing are the check's own)
    ignored = {"seed", "lambdas", "pairing", "hybridize", "bias_exclusion"}
    differences = {f: (getattr(config, f), getattr(book, f)) for f in config.to_dict()
                   if f not in ignored and getattr(config, f) != getattr(book, f)}
    lambdas = _published_lambdas(preset_name)  # the lambdas the book printed numbers for, whatever --lambdas says
    config = config.replace(lambdas=lambdas)
    if preset_name == "gluonbook-2018":
        return _check_gluonbook(config, seeds, differences)
    seeded = path_grids(config, lambdas, seeds)
    checks = tuple(Check(f"||w||, {path}, lambd={lambd:g}", value, _norms(seeded[(path, lambd)]))
                   for (path, lambd), value in D2LZH_2019.items())
    # the book's stream: the real runs, and the batched engine over batch orders from the same start
    stream = config.replace(seed=BOOK_STREAM_SEED, pairing="notebook")
    ours = _stream_runs(stream, runs)
    order_seeds = tuple(range(len(seeds)))
    by_orders = path_grids(stream, lambdas, [BOOK_STREAM_SEED] * len(order_seeds), order_seeds)
    worst = max(float(np.max(np.abs(np.asarray(ours[key].w) - by_orders[key][0]))) for key in ours)
    if not worst <= ENGINE_TOLERANCE:
        raise RuntimeError(f"the batched engine differs from the real runs by {worst:g}: please report this")
    reproduced = tuple(Reproduced(f"||w||, {path}, lambd={lambd:g}", value, ours[(path, lambd)].w_norm)
                       for (path, lambd), value in D2LZH_2019.items())
    by_order, spread = [], {}
    for r, key in zip(reproduced, D2LZH_2019):
        norms = _norms(by_orders[key])
        if r.reproduced:
            spread[r.quantity] = float((norms.max() - norms.min()) / abs(r.published))
        else:
            by_order.append(Check(r.quantity, r.published, norms, over="batch orders"))
    partial = _gluon_config(config) is not config
    note = ((f"batch_size {config.batch_size} leaves a partial last batch of {config.partial_batch} rows, where the "
             "source's penalty decays less than Gluon's wd, so the Gluon numbers are placed among models with "
             "per-step decay; " if partial else "") +
            f"the batched engine's models equal the real scratch and Gluon runs on the book's stream "
            f"(max |dw| {worst:.2g}).")
    return PublishedCheck(preset_name, seeds, checks, note=note, differences=differences, pairing=config.pairing,
                          reproduced=reproduced, by_order=tuple(by_order), order_seeds=order_seeds,
                          order_spread=spread)


def _norms(w: np.ndarray) -> np.ndarray:
    return np.sqrt((w.astype(np.float64) ** 2).sum(axis=-1))


def _stream_runs(stream, runs: Sequence[Any]) -> Dict[Tuple[str, float], Any]:
    """The real runs of the book's stream: those of `runs` made with exactly its config, the rest run now."""
    from mxwd.concise import fit_and_plot_gluon
    from mxwd.scratch import fit_and_plot

    have = {(r.path, r.lambd): r for r in runs if r.config == stream}
    fits = {"scratch": fit_and_plot, "gluon": fit_and_plot_gluon}
    return {key: have[key] if key in have else fits[key[0]](key[1], stream) for key in D2LZH_2019}


# ---------------------------------------------------------------------------------------
# gluonbook-2018: the seeded view, the shared-init ratio, and the search for its stream.


def _check_gluonbook(config, seeds: Tuple[int, ...], differences) -> PublishedCheck:
    from mxwd.sweep_engines import train_grid

    # lambd = 0 from block 0 (its cell comes first under either pairing), lambd = 5 from block 0
    # (shared) and block 1 (notebook): both pairings in one grid
    grid = train_grid(config, (0.0, 5.0, 5.0), list(seeds), blocks=(0, 0, 1))
    column = {"shared": 1, "notebook": 2}
    runs = {0.0: (grid.w[:, 0], grid.b[:, 0]), 5.0: (grid.w[:, column[config.pairing]], grid.b[:, column[config.pairing]])}
    checks: List[Check] = []
    for lambd in (0.0, 5.0):
        book = GLUONBOOK_2018[lambd]
        w, b = runs[lambd]
        checks.append(Check(f"b, lambd={lambd:g}", float(book["b"]), b))
        checks.append(Check(f"mean |w[:10]|, lambd={lambd:g}", float(np.mean(np.abs(book["w[:10]"]))),
                            np.abs(w[:, :10]).mean(axis=1)))
    published_ratio = float(np.median(np.asarray(GLUONBOOK_2018[5.0]["w[:10]"]) / np.asarray(GLUONBOOK_2018[0.0]["w[:10]"])))
    ratios = {p: np.median(grid.w[:, c, :10] / grid.w[:, 0, :10], axis=1) for p, c in column.items()}
    checks.append(Check("median of w(5)[:10] / w(0)[:10]", published_ratio, ratios[config.pairing]))
    search = _search(config, seeds, grid, first_blocks=(0,))
    return PublishedCheck("gluonbook-2018", seeds, tuple(checks), note=_ratio_note(config, checks[-1], ratios),
                          differences=differences, pairing=config.pairing, search=search)


def _ratio_note(config, ratio: Check, ratios: Dict[str, np.ndarray]) -> str:
    """The ratio check beside the decay factor that weight decay alone applies, under both pairings."""
    from mxwd.reproduction import decay_factor, decay_label, ratio_reading

    predicted = decay_factor(config, 5.0)
    median = float(np.median(ratios["shared"]))
    reading = ratio_reading(median, predicted)
    shared = Check(ratio.quantity, ratio.published, ratios["shared"])
    notebook = Check(ratio.quantity, ratio.published, ratios["notebook"])
    reading_pairs = {(True, False): ": its two runs shared their initial w, as under pairing shared",
                     (False, True): ": its two runs drew their own initial w, as under pairing notebook"}
    return (
        f"{decay_label(config)} = {predicted:.3g}; median over seeds of the shared-init ratio = "
        f"{median:.3g}; published: {ratio.published:.3g}" + (f"\nthe shared-init ratio is {reading}" if reading else "")
        + f"\nthe published ratio is at the {shared.percentile:.1f}th percentile of the shared-init ratios "
        f"(pairing shared) and the {notebook.percentile:.1f}th of the notebook-order ones (median "
        f"{np.median(ratios['notebook']):.2g})" + reading_pairs.get((shared.inside, notebook.inside), "")
    )


def _printed(w0: np.ndarray, b0: np.ndarray, w5: np.ndarray, b5: np.ndarray) -> np.ndarray:
    """The quantities gluonbook-2018 printed, per stream: w(0)[:10], b(0), w(5)[:10], b(5): (..., 22)."""
    return np.concatenate([w0[..., :10], b0[..., None], w5[..., :10], b5[..., None]], axis=-1).astype(np.float64)


PRINTED = np.asarray(GLUONBOOK_2018[0.0]["w[:10]"] + (GLUONBOOK_2018[0.0]["b"],)
                     + GLUONBOOK_2018[5.0]["w[:10]"] + (GLUONBOOK_2018[5.0]["b"],), dtype=np.float64)


def _search(config, seeds: Sequence[int], grid, first_blocks: Sequence[int], n_orders: int = 100) -> StreamSearch:
    """The closest stream per pairing in `grid` (columns: lambd 0 from each first block k, then
    lambd 5 from blocks k and k + 1 for each k, as `search_streams` lays them out), and how far
    the batch order moves the closest one's printed quantities."""
    from mxwd.sweep_engines import train_grid

    K = len(first_blocks)
    best, typical = [], []
    for pairing, offset in (("shared", K), ("notebook", 2 * K)):
        q = np.stack([_printed(grid.w[:, i], grid.b[:, i], grid.w[:, offset + i], grid.b[:, offset + i])
                      for i in range(K)], axis=1)  # (S, K, 22)
        d = np.abs(q - PRINTED).max(axis=-1)  # (S, K)
        typical.append(d.reshape(-1))
        s, i = np.unravel_index(int(np.argmin(d)), d.shape)
        k = first_blocks[i]
        best.append(StreamMatch(int(seeds[s]), (k, k + (pairing == "notebook")), pairing, float(d[s, i])))
    closest = min(best, key=lambda m: m.distance)
    orders = train_grid(config, (0.0, 5.0), [closest.seed] * n_orders, blocks=closest.blocks, order_seeds=range(n_orders))
    q = _printed(orders.w[:, 0], orders.b[:, 0], orders.w[:, 1], orders.b[:, 1])  # (orders, 22); order 0 is mxwd's
    spread = float(np.abs(q - q[0]).max())
    return StreamSearch((int(min(seeds)), int(max(seeds))), len(seeds), tuple(first_blocks), tuple(best), spread,
                        n_orders, float(np.median(np.concatenate(typical))))


def search_streams(seeds: Any = 1000, first_blocks: Sequence[int] = (0, 1, 2, 3), config: Optional[Any] = None,
                   n_orders: int = 100) -> StreamSearch:
    """Search MXNet streams for the one behind gluonbook-2018's printed w[:10] and b.

    A stream is a data seed (`mx.random.seed(seed)` before the data) and the blocks its two
    runs draw their initial w from: lambd = 0 from block k (k > 0 if cells run earlier in
    the kernel drew initial weights too), lambd = 5 from block k (pairing shared) or k + 1
    (notebook). Every stream is trained in mxwd's batch order by the batched engine; the
    closest under each pairing is then trained over `n_orders` batch orders, which bounds
    how far the unknown order can move it. seeds: a count (0..N-1) or a sequence.
    """
    from mxwd.config import check_int, preset
    from mxwd.sweep_engines import train_grid
    from mxwd.sweeps import as_seeds

    config = (config or preset("gluonbook-2018")).replace(lambdas=(0.0, 5.0))
    seeds = tuple(as_seeds(seeds, 0))
    first_blocks = tuple(check_int(k, "first_blocks", minimum=0) for k in first_blocks)
    if not first_blocks or len(set(first_blocks)) < len(first_blocks):
        raise ValueError(f"first_blocks must be distinct blocks >= 0, got {list(first_blocks)}")
    n_orders = check_int(n_orders, "n_orders", minimum=1)
    K = len(first_blocks)
    lambdas = (0.0,) * K + (5.0,) * (2 * K)
    blocks = tuple(first_blocks) + tuple(first_blocks) + tuple(k + 1 for k in first_blocks)
    grid = train_grid(config, lambdas, list(seeds), blocks=blocks)
    return _search(config, seeds, grid, first_blocks, n_orders)
