"""The experiment's settings: one frozen dataclass, validated on construction.

The defaults are the source's (gluonbook, mid-2018, "Weight Decay"): 20 training and
100 test examples in 200 dimensions, batch size 1, 10 epochs, learning rate 0.003,
initial weights w ~ N(0, 1), and the two runs lambd = 0 and lambd = 5.

This module imports nothing heavy (no MXNet), so the command line can answer `--help`
at once.
"""
from __future__ import annotations

import dataclasses
import math
import numbers
from dataclasses import dataclass
from typing import Any, Dict, Mapping, Optional, Tuple

LOSS_REDUCTIONS = ("sum", "mean")
PARTIAL_BATCH_PENALTIES = ("per_example", "per_step")
BIAS_EXCLUSIONS = ("two_trainers", "wd_mult")
DTYPES = ("float32", "float64")
PENALTIES = ("l2", "l1")
L1_STEPS = ("subgradient", "proximal")
PAIRINGS = ("shared", "notebook")
DEFAULT_N_VALID = 5  # training rows a sweep holds out to choose lambd (API and CLI alike)


@dataclass(frozen=True)
class Config:
    """Settings of one weight-decay experiment (the source's values are the defaults)."""

    n_train: int = 20  # training examples (the source deliberately keeps this small)
    n_test: int = 100  # test examples, drawn from the same distribution
    num_inputs: int = 200  # dimension p of the features
    true_w: float = 0.01  # every entry of the true weight vector
    true_b: float = 0.05  # the true bias
    noise: float = 0.01  # standard deviation of the label noise (the code's 0.01, not the prose's 0.1)
    init_scale: float = 1.0  # initial w ~ N(0, init_scale^2); the bias starts at 0
    batch_size: int = 1  # minibatch size |B|
    num_epochs: int = 10  # passes over the training set
    lr: float = 0.003  # learning rate eta
    lambdas: Tuple[float, ...] = (0.0, 5.0)  # penalty strengths run by `reproduce` and `compare`
    seed: int = 0  # the one seed behind every random draw (data, initial w, batch order)
    pairing: str = "shared"  # initial w of each run: "shared" (every run of a seed starts from one w) or "notebook" (the book's one-kernel order: after the data, each run of the book's cells, scratch lambdas then Gluon lambdas, draws its own w from the continued stream)
    decay_bias: bool = False  # also penalize / decay the bias b (the source penalizes w only)
    bias_exclusion: str = "two_trainers"  # Gluon: how b is kept out of wd ("two_trainers" or "wd_mult")
    loss_reduction: str = "sum"  # "sum": loss summed over the batch, step(B); "mean": batch mean, step(1) (d2l 1.0)
    hybridize: bool = False  # Gluon: hybridize() the network (same numbers, compiled graph)
    dtype: str = "float32"  # "float32" (the book's) or "float64" (for exact comparisons)
    partial_batch_penalty: str = "per_example"  # scratch, summed loss: "per_example" (the source: a last batch of n < B rows gets n/B of a step's decay) or "per_step" (lr*lambd every step, as Gluon's wd)
    clip_gradient: float = 0.0  # clip each rescaled gradient to [-c, c] (MXNet's clip_gradient); 0: no clipping
    penalty: str = "l2"  # scratch: "l2" (the source's lambd ||w||^2 / 2) or "l1" (lambd ||w||_1; Gluon and the sweep refuse it)
    l1_step: str = "subgradient"  # with penalty="l1": "subgradient" (w -= lr (g + lambd sign w)) or "proximal" (soft-threshold by lr lambd)

    def __post_init__(self) -> None:
        object.__setattr__(self, "lambdas", _as_lambdas(self.lambdas))
        def store(name: str, value: Any) -> None:  # NumPy scalars become plain int / float
            object.__setattr__(self, name, value)

        for name in ("n_train", "n_test", "num_inputs", "batch_size", "num_epochs"):
            store(name, check_int(getattr(self, name), name, minimum=1))
        store("seed", check_int(self.seed, "seed", minimum=0, maximum=2**32 - 1))
        for name in ("true_w", "true_b"):
            store(name, check_float(getattr(self, name), name))
        store("noise", check_float(self.noise, "noise", minimum=0.0))
        for name in ("init_scale", "lr"):
            store(name, check_float(getattr(self, name), name, minimum=0.0, strict=True))
        check_bool(self.decay_bias, "decay_bias")
        check_bool(self.hybridize, "hybridize")
        check_choice(self.bias_exclusion, "bias_exclusion", BIAS_EXCLUSIONS)
        check_choice(self.loss_reduction, "loss_reduction", LOSS_REDUCTIONS)
        check_choice(self.dtype, "dtype", DTYPES)
        check_choice(self.partial_batch_penalty, "partial_batch_penalty", PARTIAL_BATCH_PENALTIES)
        store("clip_gradient", check_float(self.clip_gradient, "clip_gradient", minimum=0.0))
        check_choice(self.penalty, "penalty", PENALTIES)
        check_choice(self.l1_step, "l1_step", L1_STEPS)
        check_choice(self.pairing, "pairing", PAIRINGS)
        if self.pairing == "notebook" and len(set(self.lambdas)) < len(self.lambdas):
            repeated = next(v for i, v in enumerate(self.lambdas) if v in self.lambdas[:i])
            raise ValueError(
                f"lambdas={list(self.lambdas)} repeats {repeated:g}: under pairing='notebook' each lambd is one "
                "cell of the book's notebook, and a run's initial w is found by its lambd; allowed: distinct lambdas"
            )
        if self.batch_size > self.n_train:
            raise ValueError(
                f"batch_size={self.batch_size} is larger than n_train={self.n_train}; "
                "allowed: 1 <= batch_size <= n_train"
            )

    def __repr__(self) -> str:
        """Only the fields that differ from the source's defaults: Config(batch_size=3, seed=2)."""
        changed = [f"{f.name}={getattr(self, f.name)!r}" for f in dataclasses.fields(self)
                   if getattr(self, f.name) != f.default]
        return f"Config({', '.join(changed)})"

    @property
    def partial_batch(self) -> int:
        """Rows in each epoch's last minibatch when it is partial (n_train % batch_size), else 0."""
        return self.n_train % self.batch_size

    @property
    def steps(self) -> int:
        """Number of SGD steps in one run: num_epochs * ceil(n_train / batch_size)."""
        return self.num_epochs * math.ceil(self.n_train / self.batch_size)

    def replace(self, **changes: Any) -> "Config":
        """A copy with some fields changed (validated like any new Config)."""
        unknown = sorted(set(changes) - set(field_names()))
        if unknown:
            raise ValueError(
                f"unknown Config field {unknown[0]!r}; allowed: {', '.join(field_names())}"
            )
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> Dict[str, Any]:
        """The fields as plain JSON-ready values (lambdas as a list)."""
        out = dataclasses.asdict(self)
        out["lambdas"] = list(self.lambdas)
        return out

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> "Config":
        """Inverse of `to_dict`; unknown keys are rejected with a clear message."""
        if not isinstance(values, Mapping):
            raise ValueError(f"config must be a mapping of field names to values, got {values!r}")
        unknown = sorted(set(values) - set(field_names()))
        if unknown:
            raise ValueError(
                f"unknown Config field {unknown[0]!r}; allowed: {', '.join(field_names())}"
            )
        return cls(**dict(values))


def field_names() -> Tuple[str, ...]:
    return tuple(f.name for f in dataclasses.fields(Config))


def resolve(config: Optional[Config], seed: Optional[int]) -> Config:
    """The run's Config: `config` (default: the source's) with `seed` if one is given."""
    if config is None:
        config = Config()
    elif not isinstance(config, Config):
        raise ValueError(f"config must be a mxwd.Config, got {type(config).__name__}")
    if seed is not None:
        config = config.replace(seed=check_int(seed, "seed", 0, 2**32 - 1))
    return config


# ---------------------------------------------------------------------------------------
# Validation helpers, shared by every public function (messages name parameter, value
# received, and what is allowed).


def check_int(value: Any, name: str, minimum: int | None = None, maximum: int | None = None) -> int:
    """An integer (a NumPy integer is accepted and returned as int), within the bounds given."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise ValueError(f"{name} must be an integer, got {value!r}")
    value = int(value)
    if minimum is not None and value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value!r}")
    if maximum is not None and value > maximum:
        raise ValueError(f"{name} must be <= {maximum}, got {value!r}")
    return value


# MXNet passes lr, wd and other operator parameters as float32.
FLOAT32_MAX = 3.4e38
FLOAT32_TINY = 1.1754944e-38  # the smallest normal float32: anything smaller (but not 0) underflows


def check_float(
    value: Any, name: str, minimum: float | None = None, strict: bool = False
) -> float:
    """A finite real number (an int or a NumPy scalar is accepted), within float32's range, >= / > minimum."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ValueError(f"{name} must be a real number, got {value!r}")
    value = float(value)
    if not math.isfinite(value):
        raise ValueError(f"{name} must be finite, got {value!r}")
    if abs(value) > FLOAT32_MAX:
        raise ValueError(f"{name} must lie within +-{FLOAT32_MAX:g} (MXNet's float32), got {value!r}")
    if value != 0 and abs(value) < FLOAT32_TINY:
        raise ValueError(f"{name} must be 0 or at least {FLOAT32_TINY:.3g} in magnitude (MXNet passes it as "
                         f"float32, where it would underflow), got {value!r}")
    if minimum is not None:
        if strict and value <= minimum:
            raise ValueError(f"{name} must be > {minimum}, got {value!r}")
        if not strict and value < minimum:
            raise ValueError(f"{name} must be >= {minimum}, got {value!r}")
    return value


def check_lambd(value: Any, name: str = "lambd") -> float:
    """A penalty strength: a finite real number >= 0."""
    return check_float(value, name, minimum=0.0)


def check_bool(value: Any, name: str) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f"{name} must be True or False, got {value!r}")
    return value


def check_choice(value: Any, name: str, allowed: Tuple[str, ...]) -> str:
    if value not in allowed:
        raise ValueError(f"{name} must be one of {', '.join(allowed)}; got {value!r}")
    return value


def _as_lambdas(value: Any) -> Tuple[float, ...]:
    if isinstance(value, (str, bytes)) or not hasattr(value, "__iter__"):
        raise ValueError(f"lambdas must be a sequence of numbers >= 0, got {value!r}")
    lambdas = tuple(check_lambd(v, "lambdas") for v in value)
    if not lambdas:
        raise ValueError("lambdas must hold at least one value, got an empty sequence")
    return lambdas


# ---------------------------------------------------------------------------------------
# Presets: the experiment's settings in each version of the book
# (shared/reference/book-versions.md).

PRESETS: Dict[str, Config] = {
    # Our source text: gluonbook weight-decay.md, 2018-05-18..2018-07-24.
    "gluonbook-2018": Config(),
    # d2l-zh v1 notebook weight-decay.ipynb (2019-01-09).
    "d2lzh-2019": Config(num_epochs=100, lambdas=(0.0, 3.0)),
    # d2l-en v0.17.6, chapter_multilayer-perceptrons/weight-decay.md.
    "d2l-en-0.17": Config(batch_size=5, num_epochs=100, lambdas=(0.0, 3.0), bias_exclusion="wd_mult"),
    # d2l-en v1.0.3, chapter_linear-regression/weight-decay.md: batch-mean loss, step(1).
    "d2l-1.0": Config(
        batch_size=5,
        num_epochs=10,
        lr=0.01,
        init_scale=0.01,
        lambdas=(0.0, 3.0),
        bias_exclusion="wd_mult",
        loss_reduction="mean",
    ),
}
DEFAULT_PRESET = "gluonbook-2018"


def preset(name: str) -> Config:
    """The Config of a named book version (see `PRESETS`)."""
    if name not in PRESETS:
        raise ValueError(f"unknown preset {name!r}; allowed: {', '.join(PRESETS)}")
    return PRESETS[name]
