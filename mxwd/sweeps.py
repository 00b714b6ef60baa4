"""`sweep`: many (lambd, seed) models of the from-scratch path, or (lr, lambd, seed) models of
an optimizer, trained at once.

The engines are in `mxwd.sweep_engines` (fast and exact) and `mxwd.optimizer_sweeps`; the
result type and its reports in `mxwd.sweep_results`; what they share in `mxwd.grid`.
"""
from __future__ import annotations

import numbers
from typing import Any, Mapping, Optional, Sequence

import numpy as np

from mxwd import limits
from mxwd.config import DEFAULT_N_VALID, Config, check_float, check_int, check_lambd, resolve
from mxwd.grid import Grid, seed_arrays  # noqa: F401  (re-exported)
from mxwd.optimizers import BY_NAME, SWEEP_OPTIMIZERS
from mxwd.sweep_engines import train_grid
from mxwd.sweep_results import Band, SweepResult  # noqa: F401  (re-exported)

DEFAULT_GRID = tuple(float(v) for v in np.logspace(-3, 2.5, 50))  # 50 lambdas from 1e-3 to 10^2.5 (lr * lambd < 1)
# the paper's convention (adamw-paper, sgdw-paper): lambd is the decay per step, unstable from 2 on
PAPER_OPTIMIZERS = tuple(n for n in SWEEP_OPTIMIZERS if BY_NAME[n].hyperparameters.get("decouple_lr"))
DEFAULT_PAPER_GRID = tuple(float(v) for v in np.logspace(-4, 0.25, 18))  # 1e-4 to 10^0.25 = 1.78, 4 a decade


def as_seeds(seeds: Any, start: int) -> Sequence[int]:
    """The one rule for seeds, in the API and the CLI alike: a count N means the N seeds
    start, start + 1, ..., start + N - 1 (start is config.seed); a sequence is used as given,
    and may not repeat a seed. A count gives a `range`, so that a size check can refuse a
    huge count before a tuple of it is built."""
    if isinstance(seeds, numbers.Integral) and not isinstance(seeds, bool):
        n = check_int(seeds, "seeds", minimum=1)
        if start + n - 1 > 2**32 - 1:
            raise ValueError(f"seeds={n} from seed {start} would pass 2**32 - 1; allowed: seed + seeds <= 2**32")
        return range(start, start + n)
    if isinstance(seeds, (str, bytes)) or not hasattr(seeds, "__iter__"):
        raise ValueError(f"seeds must be a count >= 1 or a sequence of seeds, got {seeds!r}")
    out = tuple(check_int(s, "seeds", 0, 2**32 - 1) for s in seeds)
    if not out:
        raise ValueError("seeds must hold at least one seed, got an empty sequence")
    if len(set(out)) < len(out):
        first = next(s for i, s in enumerate(out) if s in out[:i])
        raise ValueError(f"seeds must not repeat a seed (it would be counted twice in every median), got seed "
                         f"{first} twice in {list(out)[:20]}; allowed: distinct seeds")
    return out


def sweep(
    lambdas: Optional[Sequence[float]] = None,
    seeds: Any = 20,
    config: Optional[Config] = None,
    n_valid: int = DEFAULT_N_VALID,
    progress: bool = False,
    exact: bool = False,
    optimizer: str = "sgd",
    lrs: Optional[Sequence[float]] = None,
    hyperparameters: Optional[Mapping[str, Any]] = None,
) -> SweepResult:
    """Train the from-scratch model for every (lambd, seed) at once.

    lambdas: penalty strengths (default: 50 log-spaced from 1e-3 to 316); seeds: a count N
    (the N seeds from config.seed on, as `mxwd sweep --seed S --seeds N`) or a sequence.
    n_valid (default 5, as the CLI's): a second sweep trains on the first
    n_train - n_valid training rows and scores the other n_valid, to select lambd; 0 for none.
    exact: train each model with fit_and_plot's own loop (bitwise, about 170 ms a 200-step model);
    always so with config.penalty="l1", whose step leaves the fast engine's span of the rows
    instead of the fast engine (see the module docstring).
    optimizer (one of mxwd.optimizers.SWEEP_OPTIMIZERS: "sgd", "sgd+momentum", "adam",
    "adamw", "sgdw", and "adamw-paper", "sgdw-paper", whose lambd is the paper's, the decay per
    step, w <- (1 - lambd) w) and lrs (default: config.lr alone): train one model per
    (lr, lambd) pair with that optimizer's update, as gluon.Trainer does (see
    mxwd.optimizer_sweeps); hyperparameters overrides the optimizer's (beta1, beta2, epsilon;
    momentum). The result's grid then has one column per (lr, lambd) pair. The paper's
    optimizers' default lambdas are 18 log-spaced from 1e-4 to 10^0.25 = 1.78 (lambd >= 2 cannot
    shrink w).
    """
    config = resolve(config, None)
    if lambdas is None:
        lambdas = DEFAULT_PAPER_GRID if optimizer in PAPER_OPTIMIZERS else DEFAULT_GRID
    lambdas = tuple(check_lambd(v, "lambdas") for v in lambdas)
    if not lambdas:
        raise ValueError("lambdas must hold at least one value, got an empty sequence")
    seeds = as_seeds(seeds, config.seed)
    if config.penalty != "l2":
        # The fast engine keeps w in the span of w0 and the training rows, which holds for the L2
        # step (a scaling plus a combination of rows) but not for L1's sign(w) or soft-threshold:
        # an L1 sweep trains every model with fit_and_plot's own loop, the exact engine.
        if optimizer != "sgd" or lrs is not None:
            raise ValueError(f"penalty={config.penalty!r} runs in the chapter's SGD sweep only (optimizer='sgd', no "
                             "lrs): the optimizers' wd is an L2 decay; allowed: penalty='l2' with an optimizer")
        exact = True
    if config.clip_gradient > 0:
        raise ValueError(f"clip_gradient={config.clip_gradient:g} is not supported by the batched sweep; "
                         "allowed: 0 (use fit_and_plot for clipped runs)")
    n_valid = check_int(n_valid, "n_valid", minimum=0)
    if n_valid and config.n_train - n_valid < config.batch_size:
        raise ValueError(
            f"n_valid={n_valid} leaves {config.n_train - n_valid} training examples, fewer than "
            f"batch_size={config.batch_size}; allowed: 0 <= n_valid <= n_train - batch_size"
        )
    if optimizer == "sgd" and lrs is None:  # the chapter's experiment: the fast (or exact) engine
        limits.check_size(config, seeds=len(seeds), lambdas=len(lambdas))
        seeds = tuple(seeds)
        grid = train_grid(config, lambdas, seeds, progress=progress, exact=exact)
        validation = (train_grid(config, lambdas, seeds, config.n_train - n_valid, progress=progress, exact=exact)
                      if n_valid else None)
        return SweepResult(config, lambdas, seeds, n_valid, grid, validation)
    from mxwd.optimizer_sweeps import hyperparameters as optimizer_hyperparameters

    hp = optimizer_hyperparameters(optimizer, hyperparameters)
    if exact:
        raise ValueError("exact=True is for the plain SGD sweep; allowed with optimizer='sgd' and no lrs")
    lrs = tuple(check_float(v, "lrs", minimum=0.0, strict=True) for v in ((config.lr,) if lrs is None else lrs))
    if not lrs:
        raise ValueError("lrs must hold at least one learning rate, got an empty sequence")
    limits.check_size(config, seeds=len(seeds), lambdas=len(lambdas) * len(lrs))
    seeds = tuple(seeds)
    grid = train_grid(config, lambdas, seeds, progress=progress, optimizer=optimizer, lrs=lrs, hp=hp)
    validation = (train_grid(config, lambdas, seeds, config.n_train - n_valid, progress=progress,
                             optimizer=optimizer, lrs=lrs, hp=hp) if n_valid else None)
    return SweepResult(config, lambdas, seeds, n_valid, grid, validation, optimizer, lrs, hp)
