"""The optimizer atlas: what each MXNet optimizer's `wd` does, measured on a model.

For every optimizer in `mxwd.optimizers.OPTIMIZERS` (every optimizer MXNet 1.9.1
registers, except its `test` optimizer, plus `nd.contrib.adamw_update`) a model is
trained four times from the same start with the optimizer's hyperparameters (the
table's, or the user's) and learning rate lr:

    (i)    penalty:   wd = 0, loss + lambd * sum ||p||^2 / 2 over the decayed parameters,
                      weighted so that its gradient after the optimizer's rescaling is lambd p
    (ii)   built-in:  wd = lambd, no penalty
    (iii)  decoupled: wd = 0, then p <- p - lr_t * lambd * p_old after each step
                      (lr_t: the step's scheduled learning rate times p's lr_mult)
    (none) wd = 0, no penalty: the run without any decay

The model is the chapter's Gluon model (`nn.Dense(1)`, the source's data, initial w and
batch order from one seed), or the user's own Gluon Block on their (X, y) with their
loss (`atlas(net=..., data=..., loss=...)`; see `mxwd.atlas_problems`). What the runs
decay is one `DecayPolicy` (mxwd.policy): the chapter's (w, and b too with decay_bias),
or by default the user net's weights of 2 or more dimensions; the others get
wd_mult = 0 and no penalty. The classification compares the final weights (the
chapter's w; every trained parameter of the user's net):

    coupled     (ii) equals (i):   wd is an L2 penalty's gradient term
    decoupled   (ii) equals (iii): wd shrinks the weights directly, by lr * wd * w per step
    other       neither (the note says what wd does instead)
    unsupported MXNet refuses wd > 0
    error       MXNet fails on this model (the note gives the one-line cause)

"Equals" is relative to the decay's effect: two runs are equal when
max |w_a - w_b| <= EQUAL_FRACTION * effect, effect = max |w_(ii) - w_(none)|, so that an
optimizer on which the decay barely acts cannot pass as agreeing (a run whose effect is
not finite and positive equals nothing), or when they are within a rounding floor (a few
roundings of the largest weight) while the effect is at least 100 times that floor. With plain SGD all three updates are one map,
so sgd counts as coupled and its note says it is decoupled as well.

Beside the classification each entry records whether wd_mult is honoured (wd = lambd
with wd_mult = 0 on every parameter: its first step equals the first step without
decay), whether float64 weights work (the chapter's model), and per parameter group what
the first step's decay did under wd and under the penalty (`measured_groups`).
"""
from __future__ import annotations

import functools
import math
import numbers
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, Tuple

import numpy as np

from mxwd import interrupt, limits
from mxwd.atlas_problems import ChapterProblem, NetProblem, fresh_scheduler, groups
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


@dataclass
class Run:
    """One training run's parameter values (name -> float64 array): at the start, after
    the first step, and at the end."""

    initial: Dict[str, np.ndarray]
    first: Dict[str, np.ndarray]
    final: Dict[str, np.ndarray]


def train_with(spec: OptimizerSpec, config: Config, lambd: float, mode: str, wd: Optional[float] = None,
               wd_mult_zero: bool = False, hyperparameters: Optional[Mapping[str, Any]] = None) -> Tuple[np.ndarray, float]:
    """`run_with` on the chapter's model: its final (w, b)."""
    run = run_with(spec, config, lambd, mode, wd, wd_mult_zero, hyperparameters)
    return run.final["weight"], float(run.final["bias"][0])


def run_with(spec: OptimizerSpec, problem: Any, lambd: float, mode: str, wd: Optional[float] = None,
             wd_mult_zero: bool = False, hyperparameters: Optional[Mapping[str, Any]] = None,
             first_only: bool = False) -> Run:
    """Train `problem` (a Config means the chapter's model) with `spec`'s optimizer in one of MODES.

    wd defaults to lambd in mode "wd" and to 0 otherwise; wd_mult_zero sets wd_mult = 0 on
    every parameter. hyperparameters (learning_rate included) override the spec's; an
    lr_scheduler is copied, so that every run starts it afresh. The penalty of mode
    "penalty" is weighted so that its gradient, after the optimizer's rescale_grad
    (the user's, times 1/divisor), is lambd * p; the decoupled reference of mode "decoupled"
    subtracts lr_t * lambd * p_old after each step, lr_t the step's scheduled learning rate
    times p's lr_mult. first_only stops after the first step (`final` is then that step's
    values too). Exceptions from MXNet propagate.
    """
    from mxwd._mx import autograd, gluon

    if isinstance(problem, Config):
        problem = ChapterProblem(problem)
    if wd is None:
        wd = lambd if mode == "wd" else 0.0
    hp = fresh_scheduler({**dict(spec.hyperparameters), **dict(hyperparameters or {})})
    lr = hp.pop("learning_rate", problem.lr)
    net, policy = problem.start()  # what all runs decay: the problem's one policy
    policy.apply(net)
    params = net.collect_params()
    if wd_mult_zero:
        params.setattr("wd_mult", 0.0)
    trained = [p for p in params.values() if p.grad_req != "null"]
    decayed = [params[n] for n in policy.decayed]
    optimizer = spec.create(lr, wd, **hp)
    rescale = optimizer.rescale_grad
    if spec.weight_only:  # MXNet cannot optimize 1-D parameters with it: they get plain SGD
        main = [p for p in trained if len(p.shape) >= 2]
        rest = [p for p in trained if len(p.shape) < 2]
        trainers = [gluon.Trainer(main, optimizer, kvstore=None)]
        if rest:
            trainers.append(gluon.Trainer(rest, "sgd", {"learning_rate": lr}, kvstore=None))
    else:
        trainers = [gluon.Trainer(trained, optimizer, kvstore=None)]
    owner = {id(p): t for t in trainers for p in t._params}
    initial = problem.values(net)
    first: Dict[str, np.ndarray] = {}
    clock = limits.Clock(problem.units, f"atlas {spec.name}")
    for epoch in problem.epochs():
        for X, y, step in epoch:
            with autograd.record():
                l = problem.objective(net, X, y)
                if mode == "penalty":  # its gradient is lambd * p after the optimizer's rescaling
                    l = l + (step.divisor * step.decay * lambd / rescale) * policy.penalty(params)
            l.backward()
            old = [p.data().copy() for p in decayed] if mode == "decoupled" else None
            for trainer in trainers:
                trainer.step(step.divisor)
            if old is not None:
                for p, p_old in zip(decayed, old):
                    rate = owner[id(p)].learning_rate * p.lr_mult  # the step's lr_t for p
                    p.set_data(p.data() - (rate * lambd * step.decay) * p_old)
            if not first:
                first = problem.values(net)
                if first_only:
                    break
            interrupt.check()
        if first_only:
            break
        clock.tick()
    clock.close()
    return Run(initial, first, problem.values(net))


def distance(a: Optional[np.ndarray], b: Optional[np.ndarray]) -> float:
    """max |a - b|, or inf when either run failed or is not finite."""
    if a is None or b is None:
        return math.inf
    d = np.abs(a - b)
    return float(d.max()) if np.all(np.isfinite(d)) else math.inf


ROUNDINGS = 4  # the rounding floor: a few roundings of the largest weight
FLOOR_MARGIN = 100  # the floor counts only where the effect is at least 100 x the floor


def equal(dist: float, effect: float, floor: float = 0.0) -> bool:
    """The atlas's "equals": dist <= EQUAL_FRACTION * effect, with a finite, positive effect;
    or dist within `floor` (ROUNDINGS roundings of the largest weight in the dtype, see
    `rounding_floor`) while the effect is at least FLOOR_MARGIN x that floor. A small decay
    in float32 (lambd = 0.01 on a small net) has an effect of ~5e-5, and two runs of one
    update rule then differ by less than one ulp of the weights, ~1e-8, which is above
    1e-4 x 5e-5: rounding, not a different rule."""
    if not (math.isfinite(effect) and effect > 0):
        return False
    return dist <= EQUAL_FRACTION * effect or (dist <= floor and effect >= FLOOR_MARGIN * floor)


def rounding_floor(w: Optional[np.ndarray], dtype: str) -> float:
    """ROUNDINGS x eps(dtype) x max |w|: what rounding alone can put between two runs' weights."""
    if w is None or not np.all(np.isfinite(w)) or dtype not in ("float16", "float32", "float64"):
        return 0.0
    return ROUNDINGS * float(np.finfo(dtype).eps) * float(np.max(np.abs(w)))


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
    groups: List[Dict[str, Any]] = field(default_factory=list)  # measured_groups: one entry per parameter group

    def __repr__(self) -> str:
        return (f"<AtlasEntry {self.name}: {self.classification}, max|dw| coupled {self.dw_coupled:.2g}, "
                f"decoupled {self.dw_decoupled:.2g}, effect {self.effect:.2g}>")

    def to_dict(self) -> Dict[str, Any]:
        num = lambda v: v if math.isfinite(v) else None  # noqa: E731  (JSON has no inf)
        return {
            "name": self.name,
            "mxnet": self.mxnet,
            "hyperparameters": {k: v if isinstance(v, (bool, int, float, str, type(None))) else repr(v)
                                for k, v in self.hyperparameters.items()},
            "classification": self.classification,
            "dw_coupled": num(self.dw_coupled),
            "dw_decoupled": num(self.dw_decoupled),
            "effect": num(self.effect),
            "rule": self.rule,
            "order": self.order,
            "wd_mult_honoured": self.wd_mult_honoured,
            "float64": self.float64,
            "notes": self.notes,
            "groups": self.groups,
        }


def measure(spec: OptimizerSpec, problem: Any, lambd: float,
            hyperparameters: Optional[Mapping[str, Any]] = None) -> AtlasEntry:
    """Run (i), (ii), (iii) and the undecayed run for one optimizer on `problem` (a Config
    means the chapter's model), and classify; hyperparameters override the spec's."""
    if isinstance(problem, Config):
        problem = ChapterProblem(problem)
    given = dict(hyperparameters or {})
    lr = given.get("learning_rate", problem.lr)
    hyper = {"learning_rate": lr, "wd": lambd, **dict(spec.hyperparameters), **given}
    train = functools.partial(run_with, spec, problem, lambd, hyperparameters=given)
    runs: Dict[str, Optional[Run]] = {}
    errors: Dict[str, str] = {}
    for mode in MODES:
        try:
            runs[mode] = train(mode)
        except limits.OverBudget:
            raise
        except Exception as err:  # noqa: BLE001  (MXNet raises many kinds; each is recorded)
            runs[mode], errors[mode] = None, one_line(err)
    final = {mode: _compared(problem, run.final if run else None) for mode, run in runs.items()}
    d_c = distance(final["wd"], final["penalty"])
    d_d = distance(final["wd"], final["decoupled"])
    effect = distance(final["wd"], final["none"])
    notes: List[str] = []
    entry = dict(name=spec.name, mxnet=spec.mxnet, hyperparameters=hyper, dw_coupled=d_c, dw_decoupled=d_d,
                 effect=effect, rule=spec.rule, order=spec.order, groups=measured_groups(problem, runs, lambd, lr))
    if errors.get("none") or errors.get("penalty"):
        cause = errors.get("none") or errors["penalty"]
        return AtlasEntry(classification="error", wd_mult_honoured=None, float64="not tried",
                          notes=f"MXNet fails on this model: {cause}", **entry)
    blown = _diverged(problem, runs)
    if blown:
        return AtlasEntry(classification="error", wd_mult_honoured=None, float64="not tried",
                          notes=f"training diverges on this model: {blown}", **entry)
    if errors.get("wd"):
        return AtlasEntry(classification="unsupported", wd_mult_honoured=None,
                          float64=_float64(spec, problem, 0.0, given),
                          notes=f"wd = 0 trains; wd = {lambd:g} is refused: {errors['wd']}", **entry)
    floor = rounding_floor(final["wd"], problem.dtype)
    if equal(d_c, effect, floor):
        classification = "coupled"
        if equal(d_d, effect, floor):
            notes.append("equals the decoupled reference too: for this update the two are one map")
    elif equal(d_d, effect, floor):
        classification = "decoupled"
    else:
        classification = "other"
        if not (math.isfinite(effect) and np.all(np.isfinite(final["wd"]))):
            notes.append(f"with wd = {lambd:g} the weights are not finite after training")
        elif effect == 0:
            notes.append("wd has no effect on the weights")
        scaled = _scaled_check(train, problem, lambd, lr, final)
        if scaled:
            notes.append(scaled)
        near = _near_miss(d_c, d_d, effect, problem.dtype)
        if near and not scaled:
            notes.append(near)
        if not notes and not spec.wd_note:
            notes.append(f"wd is neither the penalty's gradient (max|dw| = {d_c:.2g}) nor the decoupled decay "
                         f"(max|dw| = {d_d:.2g}) against an effect of {effect:.2g}")
    if spec.wd_note:
        notes.append(spec.wd_note)
    honoured = _wd_mult_honoured(train, problem, runs["none"])
    if honoured is False:
        notes.append("wd_mult is ignored")
    return AtlasEntry(classification=classification, wd_mult_honoured=honoured,
                      float64=_float64(spec, problem, lambd, given), notes="; ".join(notes), **entry)


DIVERGED = 1e4  # a run whose largest weight grows past 1e4 x the largest initial one (at least 1) diverges


def _diverged(problem: Any, runs: Dict[str, Optional[Run]]) -> str:
    """What diverged, in words ("" if nothing): the run without any decay, if its compared
    weights are not finite or grew past DIVERGED x max(1, max |p0|) (`mxwd.training.diverged`'s
    1e4, read on the weights). A run that blows up only with the decay (adadelta at wd = 5) is
    a finding about wd, which the classification reports."""
    none = runs["none"]
    start = max(1.0, float(np.max(np.abs(_compared(problem, none.initial)))))
    w = _compared(problem, none.final)
    top = float(np.max(np.abs(w))) if np.all(np.isfinite(w)) else math.inf
    if top <= DIVERGED * start:
        return ""
    return (f"without any decay the largest weight grows from {start:.3g} to {top:.3g} "
            f"(more than {DIVERGED:g} times): lower the learning rate or the momentum")


def _near_miss(d_c: float, d_d: float, effect: float, dtype: str) -> str:
    """A note for an "other" that is within 1% of the effect of one reference: rounding in a
    small effect, more than a different rule, may be what keeps it from "equal"."""
    if not (math.isfinite(effect) and effect > 0):
        return ""
    name, d = ("penalty", d_c) if d_c <= d_d else ("decoupled reference", d_d)
    if d > 1e-2 * effect:
        return ""
    eps = float(np.finfo(dtype).eps) if dtype in ("float16", "float32", "float64") else 0.0
    return (f"closest to the {name} (max|dw| = {d:.2g}, {d / effect:.2g} x the effect {effect:.2g}), but above "
            f"{EQUAL_FRACTION:g} x effect: with an effect this small, {dtype} rounding (eps {eps:.2g}) may be what "
            "separates them; a larger lambd or more steps (or float64) tells")


def _compared(problem: Any, values: Optional[Dict[str, np.ndarray]]) -> Optional[np.ndarray]:
    """The values the classification compares, as one vector: the decayed parameters (the
    chapter's w; the user net's weights under its policy). What is not decayed is reported
    per group instead: a bias before BatchNorm, say, gets only rounding noise as its gradient,
    which Adam scales up to lr-sized steps, and would blur every comparison."""
    if values is None:
        return None
    names = problem.compared if problem.compared is not None else list(values)
    return np.concatenate([values[n] for n in names])


def measured_groups(problem: Any, runs: Dict[str, Optional[Run]], lambd: float, lr: float) -> List[Dict[str, Any]]:
    """Per parameter group (`atlas_problems.groups`): what the first step's decay did.

    For mode m, d_m = p_1(m) - p_1(none) is the first update with the decay minus the update
    without it (all runs start from the same p_0). Reported per group: max |d_m| for wd and
    for the L2 penalty, and the shrink -<d_m, p_0> / <p_0, p_0> (the fraction of p_0 removed
    along p_0; None when p_0 = 0), beside lr * lr_mult * lambd, the shrink of the decoupled
    reference (lr is the unscheduled learning rate: the first step's, unless a scheduler
    changes it; None for a group whose parameters have different lr_mult).
    """
    none = runs.get("none")
    if none is None:
        return []
    out = []
    for kind, decayed, names in groups(problem.policy_for_groups(), list(none.initial)):
        p0 = np.concatenate([none.initial[n] for n in names])
        entry: Dict[str, Any] = {"kind": kind, "names": names, "decayed": decayed, "values": int(p0.size)}
        for mode, key in (("wd", "wd"), ("penalty", "l2")):
            run = runs.get(mode)
            if run is None:
                entry[f"{key}_step"] = entry[f"{key}_shrink"] = None
                continue
            d = np.concatenate([run.first[n] - none.first[n] for n in names])
            entry[f"{key}_step"] = float(np.max(np.abs(d))) if np.all(np.isfinite(d)) else None
            norm2 = float(p0 @ p0)
            entry[f"{key}_shrink"] = (float(-(d @ p0) / norm2) + 0.0  # + 0.0: no "-0"
                                      if norm2 > 0 and np.all(np.isfinite(d)) else None)
        mults = {problem.lr_mult(n) for n in names}
        entry["decoupled_shrink"] = (lr * mults.pop() * lambd if len(mults) == 1 else None) if decayed else 0.0
        out.append(entry)
    return out


def _scaled_check(train: Callable[..., Run], problem: Any, lambd: float, lr: float,
                  final: Dict[str, Any]) -> str:
    """Does wd = lr * lambd reproduce the decoupled reference (a decay not scaled by lr)?"""
    try:
        w_scaled = _compared(problem, train("wd", wd=lr * lambd).final)
    except limits.OverBudget:
        raise
    except Exception:  # noqa: BLE001
        return ""
    d = distance(w_scaled, final["decoupled"])
    effect = distance(w_scaled, final["none"])
    if equal(d, effect):
        return (f"wd = lr*lambd = {lr * lambd:g} reproduces the decoupled reference "
                f"(max|dw| = {d:.2g}, effect {effect:.2g}): the decay is decoupled but not multiplied by lr")
    return ""


def _wd_mult_honoured(train: Callable[..., Run], problem: Any, none: Optional[Run]) -> Optional[bool]:
    """wd = lambd with wd_mult = 0 on every parameter: does its first step equal the first
    step without decay (bitwise or 1e-7)? From the same start, a decay that ignored
    wd_mult would move the first step by about lr * lambd * w (0.015 w at the source's)."""
    if none is None:
        return None
    try:
        w = _compared(problem, train("wd", wd_mult_zero=True, first_only=True).first)
    except limits.OverBudget:
        raise
    except Exception:  # noqa: BLE001
        return None
    return distance(w, _compared(problem, none.first)) <= 1e-7


def _float64(spec: OptimizerSpec, problem: Any, lambd: float, given: Mapping[str, Any]) -> str:
    """Does the chapter's model train in float64 (one epoch)? The user's net is measured in its own dtype."""
    if not isinstance(problem, ChapterProblem):
        return "yes" if problem.dtype == "float64" else "n/a"  # the net is measured in its own dtype (the title)
    config = problem.config.replace(dtype="float64", num_epochs=1)
    try:
        w = _compared(problem, run_with(spec, config, lambd, "wd", hyperparameters=given).final)
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
    problem: str = ""  # "" for the chapter's model; else what the user's net was ("HybridSequential (...)")

    def entry(self, name: str) -> AtlasEntry:
        for e in self.entries:
            if e.name == name:
                return e
        raise KeyError(name)

    def _title(self) -> str:
        c = self.config
        equal_means = f"equal means max|dw| <= {EQUAL_FRACTION:g} x effect"
        lrs = {e.hyperparameters.get("learning_rate", c.lr) for e in self.entries}
        lr = f"lr = {c.lr:g}" if lrs <= {c.lr} else "lr per optimizer (its hyperparameters)"
        if self.problem:
            return f"Optimizer atlas on {self.problem}: lambd = wd = {self.lambd:g}, {lr}, seed {c.seed}; {equal_means}"
        return (f"Optimizer atlas: lambd = wd = {self.lambd:g}, {lr}, batch_size {c.batch_size}, "
                f"{c.num_epochs} epochs, seed {c.seed}, {c.dtype}; {equal_means}")

    def groups_table(self) -> str:
        """Per optimizer and parameter group: decayed or not, and the first step's decay as
        measured (the update with wd minus the update without) beside the L2 penalty's, both
        as the shrink -<d, p0>/<p0, p0>, and lr * lambd (the decoupled reference's shrink)."""
        head = ("optimizer", "group", "tensors", "decayed", "wd shrink", "L2 shrink", "lr*lambd", "max|d| wd")
        rows = []
        for e in self.entries:
            for g in e.groups:
                rows.append((e.name, g["kind"], str(len(g["names"])), "yes" if g["decayed"] else "no",
                             _g3(g["wd_shrink"]), _g3(g["l2_shrink"]), _g3(g["decoupled_shrink"]), _g3(g["wd_step"])))
        widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(head)]
        line = lambda cells: "  ".join(c.rjust(w) if i >= 2 else c.ljust(w)  # noqa: E731
                                       for i, (c, w) in enumerate(zip(cells, widths))).rstrip()
        return "\n".join([line(head)] + [line(r) for r in rows])

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


def _g3(value: Optional[float]) -> str:
    return "n/a" if value is None else f"{value:.3g}"


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


def check_hyperparameters(specs: Sequence[OptimizerSpec], hyperparameters: Any, lr: float) -> Dict[str, Dict[str, Any]]:
    """{optimizer name: hyperparameters}, each checked by creating its optimizer once: an
    optimizer the atlas does not run, `wd` (the atlas sets it: lambd) or a keyword MXNet's
    optimizer does not take is refused with a ValueError naming it."""
    if hyperparameters is None:
        return {}
    if not isinstance(hyperparameters, Mapping):
        raise ValueError(f"hyperparameters must map optimizer names to dicts, e.g. {{'sgd+momentum': "
                         f"{{'momentum': 0.9}}}}, got {hyperparameters!r}")
    by_name = {s.name: s for s in specs}
    out = {}
    for name, given in hyperparameters.items():
        if name not in by_name:
            raise ValueError(f"hyperparameters[{name!r}]: the atlas does not run {name!r}; it runs: {', '.join(by_name)}")
        if not isinstance(given, Mapping):
            raise ValueError(f"hyperparameters[{name!r}] must be a dict of keyword arguments, got {given!r}")
        given = dict(given)
        if "wd" in given:
            raise ValueError(f"hyperparameters[{name!r}]['wd']: the atlas sets wd itself, to lambd (lambd= in Python, "
                             "--lambdas on the command line)")
        s = by_name[name]
        for key, value in given.items():
            if isinstance(value, numbers.Real) and not isinstance(value, bool) and not math.isfinite(value):
                raise ValueError(f"hyperparameters[{name!r}][{key!r}] = {value!r}; allowed: a finite number")
        if "rescale_grad" in given and not (isinstance(given["rescale_grad"], numbers.Real) and given["rescale_grad"] > 0):
            raise ValueError(f"hyperparameters[{name!r}]['rescale_grad'] = {given['rescale_grad']!r}; allowed: > 0 "
                             "(it scales every gradient)")
        rest = fresh_scheduler({k: v for k, v in given.items() if k != "learning_rate"})
        try:
            s.create(given.get("learning_rate", lr), 0.0, **rest)
        except TypeError as err:
            if "unexpected keyword" in str(err):
                raise ValueError(f"hyperparameters[{name!r}]: {one_line(err)}; allowed: {', '.join(_keywords(s))}") from None
            raise ValueError(f"hyperparameters[{name!r}]: {one_line(err)}") from None
        except Exception as err:  # noqa: BLE001  (MXNet's optimizers raise many kinds on bad values)
            raise ValueError(f"hyperparameters[{name!r}]: {one_line(err)}") from None
        out[name] = given
    return out


def _keywords(s: OptimizerSpec) -> List[str]:
    """The keyword arguments MXNet's optimizer class of `s` and its base Optimizer take."""
    import inspect

    cls = type(s.create(0.1, 0.0))
    names: List[str] = []
    for klass in cls.__mro__:
        if "__init__" in vars(klass):
            names += [n for n, p in inspect.signature(klass.__init__).parameters.items()
                      if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD) and n not in ("self", "wd") and n not in names]
    return names


def atlas(optimizers: Optional[Sequence[str]] = None, config: Optional[Config] = None,
          seed: Optional[int] = None, lambd: Optional[float] = None, progress: bool = False, *,
          net: Any = None, data: Any = None, loss: Any = None, hyperparameters: Optional[Mapping[str, Any]] = None,
          steps: Optional[int] = None, policy: Any = None) -> Atlas:
    """Measure what `wd` does in each optimizer (all by default), on the chapter's model or on `net`.

    lambd defaults to the largest of config.lambdas (the source's 5). hyperparameters:
    {optimizer name: {keyword: value}} over the table's (momentum, beta1, lr_scheduler,
    clip_gradient, rescale_grad, learning_rate, ...; learning_rate defaults to config.lr).

    With `net` (any Gluon Block, hybridized or not; initialized with MXNet's default
    initializer from the seed if it is not), the four runs train it on data = (X, y), one
    full batch per step for `steps` steps (default 20), minimizing sum_i loss(net(x_i), y_i)
    (loss: a per-example gluon Loss, default L2Loss) with `trainer.step(len(X))`; the
    penalty run adds lambd * sum ||p||^2 / 2 over `policy`'s decayed parameters (default
    `mxwd.decay_policy(net)`: the weights of 2 or more dimensions; biases and BatchNorm's
    gamma and beta not). Every trained parameter is compared. The net's values are restored
    afterwards. Returns an `Atlas`; each entry's `groups` say, per parameter group, what
    the first step's decay did under wd and under the penalty (`measured_groups`).
    """
    config = resolve(config, seed)
    if getattr(config, "pairing", "shared") != "shared":
        raise ValueError(f"pairing={config.pairing!r}: the atlas compares runs that must start from the same "
                         "weights; allowed: pairing='shared'")
    lambd = check_lambd(max(config.lambdas) if lambd is None else lambd)
    if lambd <= 0:
        raise ValueError(f"lambd must be > 0 for the atlas (the decay must act), got {lambd!r}")
    specs = atlas_specs(optimizers)
    if net is None:
        given = {k: v for k, v in (("data", data), ("loss", loss), ("steps", steps), ("policy", policy)) if v is not None}
        if given:
            raise ValueError(f"{next(iter(given))}= needs net=: without a net the atlas runs the chapter's model")
        limits.check_size(config)
        problem: Any = ChapterProblem(config)
    else:
        if data is None:
            raise ValueError("net= needs data=(X, y): the batch the atlas trains the net on")
        problem = NetProblem(net, data, loss, 20 if steps is None else steps, policy, config.seed, config.lr)
    hyper = check_hyperparameters(specs, hyperparameters, problem.lr)
    start = time.perf_counter()
    entries = []
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=len(specs), desc="atlas", unit="optimizer", leave=False)
    try:
        for s in specs:
            entries.append(measure(s, problem, lambd, hyper.get(s.name)))
            if bar:
                bar.update()
    finally:
        if bar:
            bar.close()
        if isinstance(problem, NetProblem):
            problem.restore()
    described = "" if isinstance(problem, ChapterProblem) else (
        f"{problem.description}, {problem.steps} full-batch steps of {problem.rows} rows, {problem.dtype}")
    return Atlas(config, lambd, tuple(entries), time.perf_counter() - start, described)
