"""The optimizer atlas: what each MXNet optimizer's `wd` does, measured on the chapter's model.

For every optimizer in `mxwd.optimizers.OPTIMIZERS` (every optimizer MXNet 1.9.1
registers, except its `test` optimizer, plus `nd.contrib.adamw_update`) the chapter's
Gluon model (`nn.Dense(1)`, the source's data, initial w and batch order from one seed)
is trained four times with the optimizer's own hyperparameters and learning rate lr:

    (i)    penalty:   wd = 0, loss + lambd * ||w||^2 / 2 per step (gradient g/|B| + lambd w)
    (ii)   built-in:  wd = lambd, no penalty
    (iii)  decoupled: wd = 0, then w <- w - lr * lambd * w_old after each step
    (none) wd = 0, no penalty: the run without any decay

What the runs decay is the chapter's `DecayPolicy` (mxwd.policy): w, and b too with
decay_bias; the others get wd_mult = 0 and no penalty, as the source does. The classification compares the final weights:

    coupled     (ii) equals (i):   wd is an L2 penalty's gradient term
    decoupled   (ii) equals (iii): wd shrinks the weights directly, by lr * wd * w per step
    other       neither (the note says what wd does instead)
    unsupported MXNet refuses wd > 0
    error       MXNet fails on this model (the note gives the one-line cause)

"Equals" is relative to the decay's effect: two runs are equal when
max |w_a - w_b| <= EQUAL_FRACTION * effect, effect = max |w_(ii) - w_(none)|, so that an
optimizer on which the decay barely acts cannot pass as agreeing (a run whose effect is
not finite and positive equals nothing). With plain SGD all three updates are one map,
so sgd counts as coupled and its note says it is decoupled as well.

Beside the classification each entry records whether wd_mult is honoured (wd = lambd
with wd_mult = 0 on every parameter equals the run without decay) and whether float64
weights work.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np

from mxwd import interrupt, limits
from mxwd.config import Config, check_lambd, resolve
from mxwd.optimizers import OPTIMIZERS, OptimizerSpec, registered_names, spec as get_spec

EQUAL_FRACTION = 1e-4  # "equal": the distance is at most 0.01% of the decay's effect
MODES = ("penalty", "wd", "decoupled", "none")
CLASSES = ("coupled", "decoupled", "other", "unsupported", "error")


def one_line(err: BaseException) -> str:
    """An exception as one line: its type and the first line of its message."""
    text = str(err).strip().splitlines()
    head = text[0] if text else ""
    if head.startswith("Traceback") or not head:
        head = next((ln.strip() for ln in reversed(text) if ln.strip()), "")
    name = type(err).__name__
    while head.startswith(name + ":"):  # MXNetError repeats its own name
        head = head[len(name) + 1 :].strip()
    return f"{type(err).__name__}: {head}"[:200] if head else type(err).__name__


def train_with(spec: OptimizerSpec, config: Config, lambd: float, mode: str,
               wd: Optional[float] = None, wd_mult_zero: bool = False) -> Tuple[np.ndarray, float]:
    """Train the chapter's Gluon model with `spec`'s optimizer in one of MODES; return (w, b).

    wd defaults to lambd in mode "wd" and to 0 otherwise; wd_mult_zero sets wd_mult = 0 on
    every parameter. Exceptions from MXNet propagate.
    """
    from mxwd._mx import autograd, gluon
    from mxwd.concise import make_net
    from mxwd.data import data_iter, epoch_orders, make_data
    from mxwd.policy import chapter_policy
    from mxwd.steps import step_plan

    if wd is None:
        wd = lambd if mode == "wd" else 0.0
    data = make_data(config)
    net = make_net(config)
    policy = chapter_policy(net, config)  # what all four runs decay: w, and b too with decay_bias
    policy.apply(net)
    if wd_mult_zero:
        net.collect_params().setattr("wd_mult", 0.0)
    params = net.collect_params()
    decayed = [params[n] for n in policy.decayed]
    plan = step_plan(config, "wd")  # the optimizer's wd decays every step: the penalty and (iii) too
    lr = config.lr
    if spec.weight_only:
        trainers = [gluon.Trainer(net.collect_params(".*weight"), spec.create(lr, wd), kvstore=None),
                    gluon.Trainer(net.collect_params(".*bias"), "sgd", {"learning_rate": lr}, kvstore=None)]
    else:
        trainers = [gluon.Trainer(net.collect_params(), spec.create(lr, wd), kvstore=None)]
    loss_fn = gluon.loss.L2Loss()
    total = config.loss_reduction == "sum"
    weight = net.weight
    clock = limits.Clock(config.num_epochs, f"atlas {spec.name}")
    for order in epoch_orders(config):
        for X, y in data_iter(config.batch_size, data.train_features, data.train_labels, order):
            step = plan.for_rows(X.shape[0])
            with autograd.record():
                l = loss_fn(net(X), y)
                l = l.sum() if total else l.mean()
                if mode == "penalty":  # its gradient is lambd * p after the step's division by the divisor
                    l = l + (step.divisor * step.decay * lambd) * policy.penalty(params)
            l.backward()
            old = [p.data().copy() for p in decayed] if mode == "decoupled" else None
            for trainer in trainers:
                trainer.step(step.divisor)
            if old is not None:
                for p, p_old in zip(decayed, old):
                    p.set_data(p.data() - (lr * lambd * step.decay) * p_old)
            interrupt.check()
        clock.tick()
    clock.close()
    w = weight.data().asnumpy().reshape(-1).astype(np.float64)
    return w, float(net.bias.data().asnumpy().reshape(-1)[0])


def distance(a: Optional[np.ndarray], b: Optional[np.ndarray]) -> float:
    """max |a - b|, or inf when either run failed or is not finite."""
    if a is None or b is None:
        return math.inf
    d = np.abs(a - b)
    return float(d.max()) if np.all(np.isfinite(d)) else math.inf


def equal(dist: float, effect: float) -> bool:
    """The atlas's "equals": dist <= EQUAL_FRACTION * effect, with a finite, positive effect."""
    return math.isfinite(effect) and effect > 0 and dist <= EQUAL_FRACTION * effect


@dataclass(frozen=True)
class AtlasEntry:
    """One optimizer's measured answer (keys of atlas.json)."""

    name: str
    mxnet: str
    hyperparameters: Dict[str, Any]
    classification: str
    dw_coupled: float  # max |w_(ii) - w_(i)|
    dw_decoupled: float  # max |w_(ii) - w_(iii)|
    effect: float  # max |w_(ii) - w_(none)|
    rule: str
    order: str
    wd_mult_honoured: Optional[bool]
    float64: str  # "yes", or the one-line error
    notes: str

    def __repr__(self) -> str:
        return (f"<AtlasEntry {self.name}: {self.classification}, max|dw| coupled {self.dw_coupled:.2g}, "
                f"decoupled {self.dw_decoupled:.2g}, effect {self.effect:.2g}>")

    def to_dict(self) -> Dict[str, Any]:
        num = lambda v: v if math.isfinite(v) else None  # noqa: E731  (JSON has no inf)
        return {
            "name": self.name,
            "mxnet": self.mxnet,
            "hyperparameters": self.hyperparameters,
            "classification": self.classification,
            "dw_coupled": num(self.dw_coupled),
            "dw_decoupled": num(self.dw_decoupled),
            "effect": num(self.effect),
            "rule": self.rule,
            "order": self.order,
            "wd_mult_honoured": self.wd_mult_honoured,
            "float64": self.float64,
            "notes": self.notes,
        }


def measure(spec: OptimizerSpec, config: Config, lambd: float) -> AtlasEntry:
    """Run (i), (ii), (iii) and the undecayed run for one optimizer, and classify."""
    hyper = {"learning_rate": config.lr, "wd": lambd, **dict(spec.hyperparameters)}
    runs: Dict[str, Optional[np.ndarray]] = {}
    errors: Dict[str, str] = {}
    for mode in MODES:
        try:
            runs[mode] = train_with(spec, config, lambd, mode)[0]
        except limits.OverBudget:
            raise
        except Exception as err:  # noqa: BLE001  (MXNet raises many kinds; each is recorded)
            runs[mode], errors[mode] = None, one_line(err)
    d_c = distance(runs["wd"], runs["penalty"])
    d_d = distance(runs["wd"], runs["decoupled"])
    effect = distance(runs["wd"], runs["none"])
    notes: List[str] = []
    entry = dict(name=spec.name, mxnet=spec.mxnet, hyperparameters=hyper, dw_coupled=d_c, dw_decoupled=d_d,
                 effect=effect, rule=spec.rule, order=spec.order)
    if errors.get("none") or errors.get("penalty"):
        cause = errors.get("none") or errors["penalty"]
        return AtlasEntry(classification="error", wd_mult_honoured=None, float64="not tried",
                          notes=f"MXNet fails on this model: {cause}", **entry)
    if errors.get("wd"):
        return AtlasEntry(classification="unsupported", wd_mult_honoured=None, float64=_float64(spec, config, 0.0),
                          notes=f"wd = 0 trains; wd = {lambd:g} is refused: {errors['wd']}", **entry)
    if equal(d_c, effect):
        classification = "coupled"
        if equal(d_d, effect):
            notes.append("equals the decoupled reference too: for this update the two are one map")
    elif equal(d_d, effect):
        classification = "decoupled"
    else:
        classification = "other"
        if not (math.isfinite(effect) and np.all(np.isfinite(runs["wd"]))):
            notes.append(f"with wd = {lambd:g} the weights are not finite after training")
        elif effect == 0:
            notes.append("wd has no effect on the weights")
        scaled = _scaled_check(spec, config, lambd, runs)
        if scaled:
            notes.append(scaled)
    if spec.wd_note:
        notes.append(spec.wd_note)
    honoured = _wd_mult_honoured(spec, config, lambd, runs["none"])
    if honoured is False:
        notes.append("wd_mult is ignored")
    return AtlasEntry(classification=classification, wd_mult_honoured=honoured,
                      float64=_float64(spec, config, lambd), notes="; ".join(notes), **entry)


def _scaled_check(spec: OptimizerSpec, config: Config, lambd: float, runs: Dict[str, Any]) -> str:
    """Does wd = lr * lambd reproduce the decoupled reference (a decay not scaled by lr)?"""
    try:
        w_scaled = train_with(spec, config, lambd, "wd", wd=config.lr * lambd)[0]
    except limits.OverBudget:
        raise
    except Exception:  # noqa: BLE001
        return ""
    d = distance(w_scaled, runs["decoupled"])
    effect = distance(w_scaled, runs["none"])
    if equal(d, effect):
        return (f"wd = lr*lambd = {config.lr * lambd:g} reproduces the decoupled reference "
                f"(max|dw| = {d:.2g}, effect {effect:.2g}): the decay is decoupled but not multiplied by lr")
    return ""


def _wd_mult_honoured(spec: OptimizerSpec, config: Config, lambd: float, w_none: np.ndarray) -> Optional[bool]:
    """wd = lambd with wd_mult = 0 on every parameter equals the run without decay (bitwise or 1e-7)?"""
    try:
        w = train_with(spec, config, lambd, "wd", wd_mult_zero=True)[0]
    except limits.OverBudget:
        raise
    except Exception:  # noqa: BLE001
        return None
    return distance(w, w_none) <= 1e-7


def _float64(spec: OptimizerSpec, config: Config, lambd: float) -> str:
    try:
        w = train_with(spec, config.replace(dtype="float64", num_epochs=1), lambd, "wd")[0]
    except limits.OverBudget:
        raise
    except Exception as err:  # noqa: BLE001
        return f"no: {one_line(err)}"
    return "yes" if np.all(np.isfinite(w)) else "runs, but the weights are not finite"


@dataclass(frozen=True)
class Atlas:
    """The atlas: one AtlasEntry per optimizer, measured at one lambd and config."""

    config: Config
    lambd: float
    entries: Tuple[AtlasEntry, ...]
    seconds: float

    def entry(self, name: str) -> AtlasEntry:
        for e in self.entries:
            if e.name == name:
                return e
        raise KeyError(name)

    def _title(self) -> str:
        c = self.config
        return (f"Optimizer atlas: lambd = wd = {self.lambd:g}, lr = {c.lr:g}, batch_size {c.batch_size}, "
                f"{c.num_epochs} epochs, seed {c.seed}, {c.dtype}; equal means max|dw| <= "
                f"{EQUAL_FRACTION:g} x effect")

    def _cells(self, e: AtlasEntry) -> Tuple[str, ...]:
        """One entry's cells under COLUMNS, as text (numbers by `_g`)."""
        honoured = {True: "yes", False: "NO", None: "n/a"}[e.wd_mult_honoured]
        return (e.name, e.classification, _g(e.dw_coupled), _g(e.dw_decoupled), _g(e.effect), honoured, e.float64)

    def table(self) -> str:
        """The atlas for the terminal: an aligned row per optimizer, with its notes (and a
        float64 failure, which is long) on indented lines beneath it. Every text is printed as
        it is, `|` included; the Markdown version (atlas.md) is `markdown`."""
        rows = []
        for e in self.entries:
            cells = list(self._cells(e))
            long_float64 = len(e.float64) > len("not tried")
            if long_float64:
                cells[-1] = e.float64.split(":")[0] if ":" in e.float64 else "see below"
            rows.append((cells, e.float64 if long_float64 else "", e.notes))
        widths = [max(len(h), *(len(cells[i]) for cells, _, _ in rows)) for i, h in enumerate(COLUMNS)]
        numeric = {2, 3, 4}  # right-aligned

        def line(cells: Sequence[str]) -> str:
            return "  ".join(c.rjust(w) if i in numeric else c.ljust(w)
                             for i, (c, w) in enumerate(zip(cells, widths))).rstrip()

        lines = [self._title(), "", line(COLUMNS)]
        for cells, float64, notes in rows:
            lines.append(line(cells))
            if float64:
                lines.append(f"    float64: {float64}")
            if notes:
                lines.append(f"    notes: {notes}")
        return "\n".join(lines)

    def markdown(self) -> str:
        """The atlas as a Markdown table (atlas.md); a `|` inside a cell is written `\\|`."""
        lines = [self._title(), "",
                 "| " + " | ".join(_md(h) for h in COLUMNS + ("notes",)) + " |",
                 "|" + "---|" * (len(COLUMNS) + 1)]
        for e in self.entries:
            lines.append("| " + " | ".join(_md(c) for c in self._cells(e) + (e.notes,)) + " |")
        return "\n".join(lines)

    def summary(self) -> str:
        counts = {k: sum(e.classification == k for e in self.entries) for k in CLASSES}
        text = ", ".join(f"{n} {k}" for k, n in counts.items() if n)
        return f"{len(self.entries)} optimizers: {text}; measured in {self.seconds:.1f} s"

    def to_list(self) -> List[Dict[str, Any]]:
        """One dict per optimizer (the objects of atlas.json)."""
        return [e.to_dict() for e in self.entries]

    def to_numpy(self) -> Dict[str, Any]:
        """names, and dw_coupled, dw_decoupled and effect as NumPy arrays in the same order."""
        return {"names": [e.name for e in self.entries],
                "dw_coupled": np.array([e.dw_coupled for e in self.entries]),
                "dw_decoupled": np.array([e.dw_decoupled for e in self.entries]),
                "effect": np.array([e.effect for e in self.entries])}

    def __repr__(self) -> str:
        return f"<Atlas lambd={self.lambd:g}: {self.summary()}>"

    def __str__(self) -> str:
        return self.table() + "\n" + self.summary()


def _g(value: float) -> str:
    return f"{value:.2g}" if math.isfinite(value) else "inf"


def _md(text: str) -> str:
    """Text for a Markdown table cell: `|` would end the cell, so it is escaped as `\\|`."""
    return text.replace("|", "\\|")


# The atlas's columns (the Markdown table adds "notes"): the same words in the terminal and atlas.md.
COLUMNS = ("optimizer", "wd is", "max|w_wd - w_penalty|", "max|w_wd - w_decoupled|", "effect of wd",
           "wd_mult honoured", "float64")


def atlas_specs(names: Optional[Sequence[str]] = None) -> Tuple[OptimizerSpec, ...]:
    """The table's specs (all by default), plus any optimizer MXNet registers that the table lacks."""
    if names is not None:
        names = list(names)
        if not names:
            raise ValueError("optimizers must name at least one optimizer, got an empty list")
        return tuple(get_spec(n) for n in names)
    known = {s.mxnet for s in OPTIMIZERS}
    extra = tuple(OptimizerSpec(n, n, "not described by mxwd", "unknown") for n in registered_names() if n not in known)
    return OPTIMIZERS + extra


def atlas(optimizers: Optional[Sequence[str]] = None, config: Optional[Config] = None,
          seed: Optional[int] = None, lambd: Optional[float] = None, progress: bool = False) -> Atlas:
    """Measure what `wd` does in each optimizer (all by default) on the chapter's model.

    lambd defaults to the largest of config.lambdas (the source's 5). Returns an `Atlas`.
    """
    config = resolve(config, seed)
    lambd = check_lambd(max(config.lambdas) if lambd is None else lambd)
    if lambd <= 0:
        raise ValueError(f"lambd must be > 0 for the atlas (the decay must act), got {lambd!r}")
    specs = atlas_specs(optimizers)
    limits.check_size(config)
    start = time.perf_counter()
    entries = []
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=len(specs), desc="atlas", unit="optimizer", leave=False)
    try:
        for s in specs:
            entries.append(measure(s, config, lambd))
            if bar:
                bar.update()
    finally:
        if bar:
            bar.close()
    return Atlas(config, lambd, tuple(entries), time.perf_counter() - start)
