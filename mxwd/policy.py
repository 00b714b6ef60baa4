"""Which parameters weight decay touches: one `DecayPolicy`, read by every engine.

The rule (the common practice: timm's `param_groups_weight_decay`, nanoGPT's
`configure_optimizers`): a parameter is decayed when it is trained and has 2 or more
dimensions (a weight matrix: Dense, Conv, Embedding). Biases, normalization layers'
gamma and beta, and every other parameter of 1 dimension or fewer are not. Parameters
with `grad_req='null'` (BatchNorm's running statistics) are not trained at all and are
never decayed. Name patterns override the rule: `exclude` keeps matching parameters out
of the decay, `include` puts them in (a name that both match is refused).

The chapter's policy is one instance: its w (200 x 1) is decayed and its bias b is not,
unless `decay_bias` (the source's remark that the bias is sometimes included), which is
`include=BIAS`: see `chapter_policy`.

From one policy come everything the engines need (none decides on its own):
- `penalty(params)`: the L2 penalty sum_{p decayed} ||p||^2 / 2, for the loss;
- `apply(block)`: wd_mult = 1 on the decayed parameters, 0 on the others;
- `groups(params)`: the decayed and the not-decayed parameters, for two Trainers;
- `index_multipliers(names)`: wd_mult keyed by a Trainer's parameter index, which is
  what survives `update_on_kvstore` (the servers see indices, not names);
- `mask(names)`: a boolean array for the batched engines.
`str(policy)` counts the tensors and values on each side, like nanoGPT's printout.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Callable, Dict, Iterable, List, Mapping, Optional, Sequence, Tuple, Union

import numpy as np

from mxwd.config import Config

BIAS = r"(^|_)b$|bias$"  # the chapter's bias: "b" on the scratch path, "dense0_bias" in Gluon
Patterns = Union[None, str, Sequence[str]]


@dataclass(frozen=True)
class DecayPolicy:
    """Which named parameters are decayed (names as `collect_params()` spells them).

    decayed: trained and decayed; excluded: trained, not decayed; fixed: not trained
    (grad_req='null'), so never decayed. sizes: the number of values of each parameter.
    """

    decayed: Tuple[str, ...]
    excluded: Tuple[str, ...]
    fixed: Tuple[str, ...] = ()
    sizes: Tuple[Tuple[str, int], ...] = ()

    def is_decayed(self, name: str) -> bool:
        """True for a decayed parameter; a ValueError for a name the policy does not know."""
        if name in self.decayed:
            return True
        if name in self.excluded or name in self.fixed:
            return False
        raise ValueError(f"parameter {name!r} is not in this decay policy; it knows: "
                         f"{', '.join(self.decayed + self.excluded + self.fixed)}")

    def wd_mult(self, name: str) -> float:
        """1.0 for a decayed parameter, 0.0 for any other."""
        return 1.0 if self.is_decayed(name) else 0.0

    def mask(self, names: Iterable[str]) -> np.ndarray:
        """A boolean array, True where the named parameter is decayed (for batched engines)."""
        return np.array([self.is_decayed(n) for n in names], dtype=bool)

    def index_multipliers(self, names: Sequence[str]) -> Dict[int, float]:
        """wd_mult keyed by position in `names` (a Trainer's parameter order), for
        `optimizer.set_wd_mult`: the keys the kvstore servers see with update_on_kvstore."""
        return {i: self.wd_mult(n) for i, n in enumerate(names)}

    def penalty(self, params: Mapping[str, Any], term: Optional[Callable[[Any], Any]] = None) -> Any:
        """sum over the decayed parameters of term(p): by default l2_penalty(p) = ||p||^2 / 2
        (its gradient is p); `term=l1_penalty` gives sum ||p||_1."""
        if term is None:
            from mxwd.decay import l2_penalty as term

        terms = [term(_data(params[n])) for n in self.decayed if n in params]
        if not terms:
            raise ValueError("the decay policy decays none of these parameters: there is no penalty to add")
        total = terms[0]
        for term in terms[1:]:
            total = total + term
        return total

    def apply(self, block_or_params: Any) -> None:
        """Set wd_mult to 1 on the decayed parameters and 0 on every other (in place)."""
        for name, param in _parameters(block_or_params).items():
            param.wd_mult = self.wd_mult(name)

    def groups(self, block_or_params: Any) -> Tuple[Dict[str, Any], Dict[str, Any]]:
        """(decayed, not decayed) trained Parameters, by name: one Trainer each."""
        params = _parameters(block_or_params)
        decayed = {n: p for n, p in params.items() if n in self.decayed}
        excluded = {n: p for n, p in params.items() if n in self.excluded}
        return decayed, excluded

    def trainers(self, block_or_params: Any, make_optimizer: Callable[[float], Any], wd: float,
                 exclusion: str = "two_trainers", **trainer_kwargs: Any) -> List[Any]:
        """gluon Trainers whose built-in decay `wd` touches exactly the decayed parameters.

        make_optimizer(decay) returns an MXNet Optimizer with that wd. exclusion:
        - "two_trainers" (the source's): one Trainer with wd over the decayed parameters,
          one with wd = 0 over the others (no Trainer for an empty group);
        - "wd_mult" (later versions of the book): `apply` (wd_mult 0 on the others), then
          one Trainer with wd over every trained parameter.
        Parameters with grad_req='null' are in no Trainer (they are not trained).
        """
        from mxwd._mx import gluon

        decayed, excluded = self.groups(block_or_params)
        if exclusion == "two_trainers":
            groups = [(decayed, wd), (excluded, 0.0)]
        elif exclusion == "wd_mult":
            self.apply(block_or_params)
            groups = [({n: p for n, p in _parameters(block_or_params).items() if n in decayed or n in excluded}, wd)]
        else:
            raise ValueError(f"exclusion must be one of two_trainers, wd_mult; got {exclusion!r}")
        return [gluon.Trainer(list(params.values()), make_optimizer(decay), **trainer_kwargs)
                for params, decay in groups if params]

    def __str__(self) -> str:
        sizes = dict(self.sizes)

        def side(names: Sequence[str]) -> str:
            values = sum(sizes.get(n, 0) for n in names)
            shown = ", ".join(names[:4]) + (f", ... ({len(names) - 4} more)" if len(names) > 4 else "")
            return (f"{len(names)} tensor{'s' if len(names) != 1 else ''}, {values:,} value{'s' if values != 1 else ''}"
                    + (f" ({shown})" if names else ""))

        text = f"decayed: {side(self.decayed)}; not decayed: {side(self.excluded)}"
        if self.fixed:
            text += f"; not trained (grad_req='null'): {side(self.fixed)}"
        return text


def decay_policy(block_or_params: Any, exclude: Patterns = None, include: Patterns = None) -> DecayPolicy:
    """The decay policy of a Gluon block or its parameters, by the rule in the module docstring.

    block_or_params: a gluon Block (its `collect_params()`), a ParameterDict, or a mapping
    of names to Parameters, NDArrays, NumPy arrays or shapes. exclude / include: regular
    expressions (one or a list), searched in each name (`re.search`), that take a
    parameter out of the decay or put it in. Raises ValueError for a parameter whose
    shape is not known yet (deferred initialization: give in_units, or run one forward
    pass), for a name matched by both, and for a pattern that matches no parameter.
    """
    exclude_re, include_re = _patterns(exclude, "exclude"), _patterns(include, "include")
    decayed: List[str] = []
    excluded: List[str] = []
    fixed: List[str] = []
    sizes: List[Tuple[str, int]] = []
    used = set()
    for name, item in _items(block_or_params).items():
        shape, trained = _shape(name, item)
        sizes.append((name, int(np.prod(shape)) if shape else 1))
        if not trained:
            fixed.append(name)
            continue
        out = [p for p in exclude_re if p.search(name)]
        into = [p for p in include_re if p.search(name)]
        used.update(p.pattern for p in out + into)
        if out and into:
            raise ValueError(f"parameter {name!r} matches exclude={out[0].pattern!r} and include={into[0].pattern!r}; "
                             "allowed: a name matched by one of them at most")
        (decayed if (into or (len(shape) >= 2 and not out)) else excluded).append(name)
    unused = [p.pattern for p in exclude_re + include_re if p.pattern not in used]
    if unused:
        raise ValueError(f"pattern {unused[0]!r} matches no trained parameter; the parameters are: "
                         f"{', '.join(n for n, _ in sizes)}")
    return DecayPolicy(tuple(decayed), tuple(excluded), tuple(fixed), tuple(sizes))


def chapter_policy(params: Any, config: Config) -> DecayPolicy:
    """The chapter's policy on its two parameters (scratch [w, b] or the Dense(1) net):
    w decayed, the bias too only with config.decay_bias."""
    if isinstance(params, (list, tuple)):
        params = dict(zip(("w", "b"), params))
    return decay_policy(params, include=BIAS if config.decay_bias else None)


def chapter_mask(config: Config) -> np.ndarray:
    """The chapter's policy as the batched engines read it: [w decayed, b decayed]."""
    policy = chapter_policy({"w": (config.num_inputs, 1), "b": (1,)}, config)
    return policy.mask(("w", "b"))


# ---------------------------------------------------------------------------------------


def _patterns(patterns: Patterns, name: str) -> List["re.Pattern"]:
    if patterns is None:
        return []
    if isinstance(patterns, str):
        patterns = [patterns]
    out = []
    for p in patterns:
        if not isinstance(p, str):
            raise ValueError(f"{name} must be a regular expression or a list of them, got {p!r}")
        try:
            out.append(re.compile(p))
        except re.error as err:
            raise ValueError(f"{name}={p!r} is not a regular expression: {err}") from None
    return out


def _parameters(block_or_params: Any) -> Dict[str, Any]:
    """name -> gluon Parameter, from a Block, a ParameterDict or a mapping of Parameters."""
    items = _items(block_or_params)
    bad = [n for n, p in items.items() if not hasattr(p, "wd_mult")]
    if bad:
        raise ValueError(f"parameter {bad[0]!r} is not a gluon Parameter; pass a Block or its collect_params()")
    return items


def _items(block_or_params: Any) -> Dict[str, Any]:
    if hasattr(block_or_params, "collect_params"):
        block_or_params = block_or_params.collect_params()
    if hasattr(block_or_params, "items"):
        return dict(block_or_params.items())
    raise ValueError(f"block_or_params must be a gluon Block, a ParameterDict or a mapping of names to "
                     f"parameters, got {type(block_or_params).__name__}")


def _shape(name: str, item: Any) -> Tuple[Tuple[int, ...], bool]:
    """(shape, trained) of a Parameter, an array or a shape tuple."""
    trained = getattr(item, "grad_req", "write") != "null"
    shape = tuple(item) if isinstance(item, tuple) else tuple(getattr(item, "shape", ()) or ())
    if any(d == 0 for d in shape):
        raise ValueError(f"parameter {name!r} has no shape yet ({shape}, deferred initialization); give the "
                         "layer its input size (e.g. in_units) or run one forward pass before making the policy")
    return shape, trained


def _data(item: Any) -> Any:
    return item.data() if hasattr(item, "data") and callable(item.data) else item
