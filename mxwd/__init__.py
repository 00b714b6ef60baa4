"""mxwd: the weight-decay experiment of *Dive into Deep Learning* (gluonbook, 2018) on MXNet 1.9.1.

The public API, imported on first use (so `mxwd --help` does not load MXNet):

- `Config`, `preset(name)`, `PRESETS`: the experiment's settings (the source's by default).
- `make_data(config, seed)`: the source's synthetic data set, as NDArrays.
- `fit_and_plot(lambd, config, seed)`: from scratch, loss + lambd * l2_penalty, manual sgd.
- `fit_and_plot_gluon(wd, config, seed)`: Gluon Dense + Trainer with built-in wd.
- `compare(lambd, config, seed)`: both paths from identical init and batch order.
- `sweep(lambdas, seeds, config)`: many (lambda, seed) models trained at once.
- `reproduce(config, seed)`: both lambdas on both paths, as `mxwd reproduce` runs them.
- `atlas(optimizers, config)`: what `wd` does in every MXNet optimizer (coupled, decoupled, other).
- `DecayPolicy`, `decay_policy(block_or_params, exclude, include)`: which parameters are
  decayed (any Gluon block; weights of 2+ dimensions by default); every engine reads it.
- `StepPlan`, `step_plan(config)`: how each step is scaled (divisor, penalty weight, decay).
- `optimizers`: the one table of optimizers (rules, hyperparameters, NumPy references).
- `distributed(config, workers, servers, ...)`: the chapter data-parallel on MXNet's kvstore.
- `mlp(config, seed, **fields)`: the source's neuron argument and BatchNorm on an MLP (load_digits).
- `loo_errors`, `map_lambd`, `evidence_lambd`, and the module `exercises` (`exercises.exercises()`
  runs all six): the chapter's exercises, measured.
- `plot`: figures drawn from the returned results (never during training).
"""
from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_EXPORTS = {
    "Config": "mxwd.config",
    "PRESETS": "mxwd.config",
    "preset": "mxwd.config",
    "make_data": "mxwd.data",
    "data_iter": "mxwd.data",
    "init_params": "mxwd.scratch",
    "linreg": "mxwd.scratch",
    "squared_loss": "mxwd.scratch",
    "l2_penalty": "mxwd.decay",
    "sgd": "mxwd.scratch",
    "fit_and_plot": "mxwd.scratch",
    "fit_and_plot_gluon": "mxwd.concise",
    "FitResult": "mxwd.results",
    "DivergenceError": "mxwd.training",
    "compare": "mxwd.comparison",
    "Comparison": "mxwd.comparison",
    "reproduce": "mxwd.reproduction",
    "Reproduction": "mxwd.reproduction",
    "sweep": "mxwd.sweeps",
    "atlas": "mxwd.optimizer_atlas",
    "distributed": "mxwd.parallel",
    "Atlas": "mxwd.optimizer_atlas",
    "SweepResult": "mxwd.sweeps",
    "DecayPolicy": "mxwd.policy",
    "decay_policy": "mxwd.policy",
    "mlp": "mxwd.mlps",
    "loo_errors": "mxwd.exercises",
    "map_lambd": "mxwd.exercises",
    "evidence_lambd": "mxwd.exercises",
    "ExercisesResult": "mxwd.exercises",
    "MLPConfig": "mxwd.mlps",
    "MLPResult": "mxwd.mlps",
    "StepPlan": "mxwd.steps",
    "step_plan": "mxwd.steps",
}
_MODULES = ("plot", "config", "data", "scratch", "concise", "decay", "policy", "steps", "mlps", "mlp_plot", "exercises", "exercises_plot", "comparison", "reproduction", "sweeps", "published", "results", "optimizers")

__all__ = sorted(_EXPORTS) + list(_MODULES)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    if name in _MODULES:
        return importlib.import_module(f"mxwd.{name}")
    raise AttributeError(f"module 'mxwd' has no attribute {name!r}")


def __dir__() -> list:
    return __all__
