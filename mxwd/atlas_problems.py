"""What the optimizer atlas trains: the chapter's model, or the user's own network.

A problem gives the atlas four things, the same for every run it makes:
- `start()`: the network at its initial parameters (fresh each time, or reset to one
  snapshot), and its `DecayPolicy`;
- `epochs()`: the batches of every epoch, each with its `Step` (the divisor passed to
  `trainer.step` and the step's decay weight, from the step plan);
- `objective(net, X, y)`: the loss the run minimizes, reduced to a scalar as the step's
  divisor expects (summed for divisor |B|, a mean for divisor 1);
- `values(net)`: the trained parameters' values, by name, as float64 NumPy arrays.

`ChapterProblem` is the chapter's `nn.Dense(1)` on the source's data with the seed's
batch order. `NetProblem` is any Gluon Block on the user's (X, y), one full batch per step,
with the user's per-example loss: each step minimizes sum_i loss_i and calls
`trainer.step(|B|)`, Gluon's usual idiom, so the optimizer sees the mean gradient.
"""
from __future__ import annotations

import copy
from typing import Any, Dict, Iterator, List, Optional, Tuple

import numpy as np

from mxwd.config import Config, check_int
from mxwd.policy import DecayPolicy, decay_policy
from mxwd.steps import Step


class ChapterProblem:
    """The chapter's Gluon model on the source's data, as `fit_and_plot_gluon` trains it."""

    def __init__(self, config: Config):
        from mxwd.concise import check_l2

        check_l2(config)
        self.config = config
        self.dtype = config.dtype
        self.lr = config.lr
        self.units = config.num_epochs
        self.description = "the chapter's nn.Dense(1)"
        self._data = None

    def start(self) -> Tuple[Any, DecayPolicy]:
        from mxwd.concise import make_net
        from mxwd.data import make_data
        from mxwd.policy import chapter_policy

        self._data = make_data(self.config)  # seeds MXNet's generator: the same initial w for every run
        net = make_net(self.config)
        return net, chapter_policy(net, self.config)

    def epochs(self) -> Iterator[Iterator[Tuple[Any, Any, Step]]]:
        from mxwd.data import data_iter, epoch_orders
        from mxwd.steps import step_plan

        plan = step_plan(self.config, "wd")  # the optimizer's wd decays every step: the penalty and (iii) too
        data = self._data
        for order in epoch_orders(self.config):
            yield ((X, y, plan.for_rows(X.shape[0]))
                   for X, y in data_iter(self.config.batch_size, data.train_features, data.train_labels, order))

    def objective(self, net: Any, X: Any, y: Any) -> Any:
        from mxwd._mx import gluon

        l = gluon.loss.L2Loss()(net(X), y)
        return l.sum() if self.config.loss_reduction == "sum" else l.mean()

    compared = ("weight",)  # the classification compares w, as the chapter's atlas always has

    @staticmethod
    def lr_mult(name: str) -> float:
        return 1.0

    def values(self, net: Any) -> Dict[str, np.ndarray]:
        """{"weight": w, "bias": b}: names without the Dense's prefix, which each new net changes."""
        return {"weight": net.weight.data().asnumpy().reshape(-1).astype(np.float64),
                "bias": net.bias.data().asnumpy().reshape(-1).astype(np.float64)}

    def policy_for_groups(self) -> DecayPolicy:
        from mxwd.policy import chapter_policy

        return chapter_policy({"weight": (1, self.config.num_inputs), "bias": (1,)}, self.config)


class NetProblem:
    """The user's Gluon Block on (X, y): `steps` full-batch steps from one snapshot.

    The net is used as it is (hybridized or not, any dtype); its parameters, BatchNorm's
    running statistics included, are saved once and restored before every run, and
    MXNet's generator is reseeded with `seed`, so every run starts from the same state and
    draws the same dropout masks. `restore()` puts the user's values back at the end.
    """

    def __init__(self, net: Any, data: Any, loss: Any = None, steps: int = 20,
                 policy: Optional[DecayPolicy] = None, seed: int = 0, lr: float = 0.003):
        from mxwd._mx import gluon, mx, nd

        if not isinstance(net, gluon.Block):
            raise ValueError(f"net must be a gluon Block (e.g. nn.HybridSequential), got {type(net).__name__}")
        self.steps = check_int(steps, "steps", minimum=1)
        self.units = self.steps
        self.seed, self.lr = seed, lr
        if not (isinstance(data, (tuple, list)) and len(data) == 2):
            raise ValueError(f"data must be a pair (X, y) of arrays, got {type(data).__name__}")
        self.loss = gluon.loss.L2Loss() if loss is None else loss
        if not callable(self.loss):
            raise ValueError(f"loss must be a gluon Loss or a callable loss(pred, y), got {self.loss!r}")
        params = dict(net.collect_params().items())
        mx.random.seed(seed)
        uninitialized = [n for n, p in params.items() if p._data is None and p._deferred_init == ()]
        if len(uninitialized) == len(params) and params:
            net.initialize()  # a net nobody initialized: MXNet's default initializer, drawn from `seed`
        X, y = data
        dtype = self._dtype(net)
        try:
            self.X = nd.array(X, dtype=dtype) if not isinstance(X, nd.NDArray) else X.astype(dtype)
            self.y = nd.array(y, dtype=dtype) if not isinstance(y, nd.NDArray) else y.astype(dtype)
        except Exception as err:  # noqa: BLE001  (numpy and MXNet raise several kinds)
            raise ValueError(f"data must be a pair (X, y) of numeric arrays: {err}") from None
        for name, a in (("X", self.X), ("y", self.y)):
            if a.size and not np.all(np.isfinite(a.asnumpy())):
                raise ValueError(f"data: {name} holds non-finite values (nan or inf); allowed: finite numbers")
        if self.X.shape[0] != self.y.shape[0] or self.X.shape[0] == 0:
            raise ValueError(f"data: X and y must have the same number of rows (>= 1), got X {self.X.shape} "
                             f"and y {self.y.shape}")
        self.rows = self.X.shape[0]
        # one forward outside autograd (predict mode: BatchNorm's running statistics are left as they
        # are) finishes a deferred initialization and checks that the net and the loss run
        try:
            out = net(self.X)
            out.wait_to_read()
        except Exception as err:  # noqa: BLE001
            raise ValueError(f"net does not run on X of shape {self.X.shape}: {_line(err)}") from None
        try:
            l = self.loss(out, self.y)
            l.wait_to_read()
        except Exception as err:  # noqa: BLE001
            raise ValueError(f"loss fails on net(X) of shape {out.shape} and y of shape {self.y.shape}: "
                             f"{_line(err)}") from None
        if getattr(l, "shape", None) != (self.rows,):
            raise ValueError(f"loss must give one value per example, shape ({self.rows},), got shape "
                             f"{getattr(l, 'shape', None)}; pass a per-example gluon Loss (not a mean)")
        self.net = net
        self.dtype = self._dtype(net)
        self.policy = decay_policy(net) if policy is None else policy
        if not isinstance(self.policy, DecayPolicy):
            raise ValueError(f"policy must be a mxwd.DecayPolicy (mxwd.decay_policy(net, ...)), got {policy!r}")
        if not self.policy.decayed:
            raise ValueError(f"policy decays no parameter of this net ({self.policy}); the atlas needs at least one")
        names = set(self.policy.decayed + self.policy.excluded + self.policy.fixed)
        missing = sorted(set(params) - names)
        if missing:
            raise ValueError(f"policy does not know parameter {missing[0]!r} of this net; make it with "
                             "mxwd.decay_policy(net, ...)")
        self.params = params
        self._snapshot = {n: p.data().copy() for n, p in params.items()}
        self._attrs = {n: (p.wd_mult, p.lr_mult) for n, p in params.items()}
        self.description = f"{type(net).__name__} ({sum(int(np.prod(p.shape)) for p in params.values()):,} values)"
        self.step = Step(0, self.rows, float(self.rows), 1.0 / self.rows, 1.0, 1.0)

    @staticmethod
    def _dtype(net: Any) -> str:
        """The dtype of the net's first parameter (the input layer's): X and y are cast to it.
        (A float16 net keeps BatchNorm's parameters in float32, so the dtypes may differ.)"""
        first = next(iter(net.collect_params().values()), None)
        return np.dtype(first.dtype).name if first is not None else "float32"

    def start(self) -> Tuple[Any, DecayPolicy]:
        from mxwd._mx import mx

        self.restore()
        mx.random.seed(self.seed)
        return self.net, self.policy

    def restore(self) -> None:
        """The user's parameter values, wd_mult and lr_mult, as they were given."""
        for n, p in self.params.items():
            p.set_data(self._snapshot[n])
            p.wd_mult, p.lr_mult = self._attrs[n]

    @property
    def compared(self) -> Tuple[str, ...]:
        """The decayed parameters: what the classification compares (see optimizer_atlas._compared)."""
        return self.policy.decayed

    def lr_mult(self, name: str) -> float:
        return float(self._attrs[name][1])

    def policy_for_groups(self) -> DecayPolicy:
        return self.policy

    def epochs(self) -> Iterator[Iterator[Tuple[Any, Any, Step]]]:
        for _ in range(self.steps):
            yield iter([(self.X, self.y, self.step)])

    def objective(self, net: Any, X: Any, y: Any) -> Any:
        return self.loss(net(X), y).sum()

    def values(self, net: Any) -> Dict[str, np.ndarray]:
        return {n: p.data().asnumpy().astype(np.float64).reshape(-1)
                for n, p in self.params.items() if p.grad_req != "null"}


def groups(policy: DecayPolicy, names: List[str]) -> List[Tuple[str, bool, List[str]]]:
    """The trained parameters in groups of one kind (the name's last part: weight, bias,
    gamma, beta, ...) and one decay status: (kind, decayed, names), decayed groups first."""
    out: Dict[Tuple[str, bool], List[str]] = {}
    for n in names:
        if n in policy.fixed:
            continue
        kind = n.rsplit("_", 1)[-1] if "_" in n else n
        out.setdefault((kind, policy.is_decayed(n)), []).append(n)
    return [(kind, decayed, members) for (kind, decayed), members
            in sorted(out.items(), key=lambda item: (not item[0][1], names.index(item[1][0])))]


def fresh_scheduler(hyperparameters: Dict[str, Any]) -> Dict[str, Any]:
    """The hyperparameters with a copy of any lr_scheduler: MXNet's schedulers keep state."""
    if hyperparameters.get("lr_scheduler") is not None:
        return {**hyperparameters, "lr_scheduler": copy.deepcopy(hyperparameters["lr_scheduler"])}
    return dict(hyperparameters)


def _line(err: BaseException) -> str:
    from mxwd.optimizer_atlas import one_line

    return one_line(err)
