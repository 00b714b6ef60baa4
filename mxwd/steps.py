"""How each SGD step is scaled: one `StepPlan`, read by every engine.

An epoch visits the training rows in the seed's order, in batches of |B| = batch_size
rows; when |B| does not divide n_train the last batch is partial, with n < |B| rows. For
each batch the plan says:

- `divisor`: what the engine passes to `sgd(params, lr, divisor)` / `trainer.step(divisor)`.
  A summed loss ("sum", the source's) is divided by |B| on every batch, the partial one
  included (the source's `sgd(params, lr, batch_size)`, Gluon's `step(batch_size)`); a
  batch mean ("mean", d2l 1.0) is already divided by its n rows and steps with 1.
- `grad_scale`: the factor on the summed data gradient: 1/|B| (sum) or 1/n (mean).
- `penalty_weight`: the factor on lambd in the from-scratch loss, loss + w * lambd * penalty,
  so that the penalty decays as `decay` says (1, or |B|/n on a per-step partial batch).
- `decay`: the step's decay, as a multiple of lr * lambd:  p <- p - lr * lambd * decay * p
  for every decayed p. The source's penalty is added to each example's loss, so a
  partial batch of a summed loss decays by n/|B| ("per_example"); Gluon's wd decays by 1
  on every step ("per_step", also the scratch path's with partial_batch_penalty="per_step").

So, per step, for a decayed parameter p with summed data gradient g over the batch:

    p <- p - lr * (grad_scale * g + lambd * decay * p)

The divergence rule lives here too (`unstable`): plain SGD's decay factor
|1 - lr * lambd * decay| is >= 1 on a full step once lr * lambd >= 2, and then w never
shrinks in the directions the data do not touch.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Dict, Tuple

from mxwd.config import Config

DECAYS = ("penalty", "wd")  # the from-scratch penalty (config.partial_batch_penalty), or the optimizer's wd


@dataclass(frozen=True)
class Step:
    """One batch of an epoch: rows [start, stop) of the epoch's order, and its scaling."""

    start: int
    stop: int
    divisor: float
    grad_scale: float
    penalty_weight: float
    decay: float

    @property
    def rows(self) -> int:
        return self.stop - self.start


@dataclass(frozen=True)
class StepPlan:
    """How a batch is scaled, for one config and one kind of decay; `steps` are one epoch's.

    Every epoch has the same batches (only their rows' order changes with the seed).
    """

    batch_size: int
    reduction: str
    per_step: bool  # a partial batch decays by a full step (wd, or partial_batch_penalty="per_step")
    steps: Tuple[Step, ...]
    _cache: Dict[int, Step] = field(default_factory=dict, init=False, repr=False, compare=False)

    def for_rows(self, rows: int, start: int = 0) -> Step:
        """The scaling of a batch of `rows` rows (1 <= rows <= batch_size)."""
        if start == 0:  # the engines' hot path: one Step per batch size, made once
            cached = self._cache.get(rows)
            if cached is not None:
                return cached
        B = self.batch_size
        if not 1 <= rows <= B:
            raise ValueError(f"a batch has 1 to batch_size={B} rows, got {rows}")
        if self.reduction == "sum":
            share = 1.0 if (rows == B or self.per_step) else rows / B
            weight = 1.0 if rows == B or not self.per_step else B / rows
            step = Step(start, start + rows, divisor=B, grad_scale=1.0 / B, penalty_weight=weight, decay=share)
        else:  # the batch mean, step(1): the penalty is added once, decaying by lr * lambd
            step = Step(start, start + rows, divisor=1, grad_scale=1.0 / rows, penalty_weight=1.0, decay=1.0)
        if start == 0:
            self._cache[rows] = step
        return step

    @property
    def divisors(self) -> Tuple[float, ...]:
        return tuple(s.divisor for s in self.steps)

    @property
    def max_decay(self) -> float:
        return max(s.decay for s in self.steps)


def step_plan(config: Config, decay: str = "penalty", n_rows: int | None = None) -> StepPlan:
    """The plan of one epoch over `n_rows` training rows (default config.n_train).

    decay="penalty": the from-scratch L2 penalty, with config.partial_batch_penalty;
    decay="wd": an optimizer's built-in wd (Gluon's), which decays by lr * wd every step.
    """
    if decay not in DECAYS:
        raise ValueError(f"decay must be one of {', '.join(DECAYS)}; got {decay!r}")
    n = config.n_train if n_rows is None else n_rows
    B = config.batch_size
    per_step = decay == "wd" or config.partial_batch_penalty == "per_step"
    plan = StepPlan(B, config.loss_reduction, per_step, ())
    steps = tuple(plan.for_rows(min(start + B, n) - start, start) for start in range(0, n, B))
    return StepPlan(B, config.loss_reduction, per_step, steps)


def steps_per_epoch(config: Config, n_rows: int | None = None) -> int:
    return math.ceil((config.n_train if n_rows is None else n_rows) / config.batch_size)


def unstable(lr: float, lambd: float, decouple_lr: bool = False, momentum: float = 0.0) -> bool:
    """lr * lambd >= 2: the decay factor |1 - lr * lambd| of a full SGD step is >= 1.

    The one divergence rule that every engine, compare and the CLI read. In the directions
    the data never touch, a full step only decays, by a = lr * lambd (SGD's wd, torch's
    decoupled decay) or a = lambd (decouple_lr: the paper's lr-independent lambd at a
    constant lr, w <- (1 - lambd) w). Plain or decoupled, w <- (1 - a) w never shrinks
    once a >= 2. Coupled through momentum m (MXNet's sgd with momentum: v <- m v - a w,
    w <- w + v), the map (w, v) has the characteristic polynomial z^2 - (1 + m - a) z + m,
    whose roots stay inside the unit circle iff 0 < a < 2 (1 + m) (Jury's test): unstable
    once a >= 2 (1 + m). Works elementwise on NumPy arrays.
    """
    return (lambd if decouple_lr else lr * lambd) >= 2 * (1 + momentum)
