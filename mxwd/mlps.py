"""Beyond the linear model: the source's neuron argument and BatchNorm, measured on a real MLP.

**The argument.** The source explains why weight decay fights overfitting in a network
with one neuron: inputs x1, x2, activation phi (ReLU, tanh or sigmoid), output
phi(x1 w1 + x2 w2 + b). If w1, w2 and b are close to 0 the output is close to 0, the
neuron is "less useful, even as a neuron is missing", and the network's complexity falls.
Not exactly true as stated: sigmoid(0) = 0.5. `mlp` measures what the decay does to the
hidden units of a real network on real data, for each activation.

**Data.** scikit-learn's `load_digits` (1797 8x8 images of the digits 0-9, shipped inside
the package: no download), pixels scaled by 1/16 into [0, 1]. A small training subset of
`n_train` images (100 by default, so that an unregularized MLP fits it exactly and
overfits); the other 1797 - n_train images are the test set.

**Model.** 64 -> `hidden_units` (phi) -> 10, softmax cross-entropy, minimized with plain
minibatch SGD, on two paths, as in the chapter:

- from scratch: NDArrays W1 (H x 64), b1, W2 (10 x H), b2; per minibatch B

      l = sum_{i in B} -log softmax(W2 phi(W1 x_i + b1) + b2)_{y_i}  +  lambd * P,
      P = sum_{W decayed} ||W||_F^2 / 2 = (||W1||_F^2 + ||W2||_F^2) / 2,

  recorded with `autograd.record()`, P computed by the DecayPolicy's `penalty`
  (`mxwd.decay_policy`: the weight matrices are decayed, the biases not), and the manual
  step `mxwd.scratch.sgd(params, lr, |B|)`: p <- p - lr * grad / |B|;
- Gluon: `nn.Dense(H, activation=phi)`, `nn.Dense(10)`, `gluon.loss.SoftmaxCrossEntropyLoss`,
  and `gluon.Trainer('sgd', {'learning_rate': lr, 'wd': lambd})` over the parameters the
  policy decays (a second Trainer, wd = 0, over the biases), stepped with `step(|B|)`.

Both are the map  W <- (1 - lr lambd) W - (lr / |B|) sum_{i in B} grad_W l_i  on the
weights and the same without the decay on the biases (the StepPlan, `mxwd.steps`, scales
each batch; a partial last batch decays by a full step on both paths, the scratch path's
partial_batch_penalty = "per_step"). They share the seed's data, initial weights and batch
order, and agree by compare's rule (`mxwd.comparison.Gap`, tolerance 1e-5 in float32).

**Seeding.** One seed controls every draw. `numpy.random.SeedSequence(seed).spawn(2)` gives
one generator (`numpy.random.default_rng`) per purpose: the first draws the training
subset (a permutation of the 1797 rows; its first n_train rows), the second the batch
order (one permutation of the training rows per epoch). `mx.random.seed(seed)`, then
MXNet's generator draws the initial weights W1 ~ N(0, init_gain^2 / 64),
W2 ~ N(0, init_gain^2 / H) (biases 0), shared by every activation, lambd and path.

**Measured per (activation, lambd, path).** Train and test loss and accuracy; each hidden
unit's incoming weight norm ||W1[j]||; each unit's output mean and standard deviation over
the training images; `quiet_units`: units whose output std is below `quiet_fraction`
(1e-2) times the median unit std of the *initial* network with the same activation, i.e.
units that vary less than 1% as much as a typical unit of the untrained network. Their
outputs are nearly a constant c_j, and W2[:, j] c_j is a constant that the next layer's
bias absorbs: `pruned_test_accuracy` removes them, folding W2[:, j] * mean_j into b2, and
measures the test accuracy again (equal, if the units are as good as missing). The
threshold is relative, so that it means the same for ReLU (unbounded), tanh and sigmoid.

**BatchNorm.** The same MLP with BatchNorm after the hidden Dense layer (Gluon path):
Dense(H, no bias) -> BatchNorm -> phi -> Dense(10). In training mode BatchNorm normalizes
each unit over the batch, z_j -> (z_j - mean_B z_j) / sqrt(var_B z_j + eps), so scaling
W1 by c > 0 leaves the output unchanged up to eps: the decay of W1 cannot shrink the
function. It shrinks ||W1|| instead, and for a scale-invariant weight the gradient is
orthogonal to w and scales as 1/||w||, so each step turns w by an angle about
lr ||g(w/||w||)|| / ||w||^2: the effective learning rate is ~ lr / ||w||^2 (van Laarhoven
2017; Zhang et al. 2019). `mlp` trains it with the decay on W1 and without (the policy's
`exclude`), and measures the invariance, ||W1||, lr / ||w_j||^2, the angle each unit's
weights turn per epoch, and the test accuracy.

This module imports neither MXNet nor scikit-learn until a run starts, so the command
line can build its options (MLPConfig's fields) at once.
"""
from __future__ import annotations

import dataclasses
import math
import re
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, Tuple

import numpy as np

from mxwd.config import check_bool, check_choice, check_float, check_int

ACTIVATIONS = ("relu", "tanh", "sigmoid")
PATHS = ("scratch", "gluon")
N_DIGITS = 1797  # images in load_digits
N_PIXELS = 64  # 8 x 8
N_CLASSES = 10
PIXEL_MAX = 16.0  # load_digits' pixels are integers 0..16
MIN_TEST = 100  # images always left for the test set
BN_EPSILON = 1e-5  # gluon.nn.BatchNorm's default epsilon
BN_SCALES = (0.5, 2.0, 10.0)  # the factors c by which the invariance check multiplies W1
USEFUL_DROP = 0.05  # a run whose test accuracy is 5 points below the activation's best has collapsed
MORE_QUIET = 0.05  # decay "switches units off" when it adds quiet units by 5% of the hidden layer or more
# the activations' Lipschitz constants: max |phi'| (for the invariance tolerance)
LIPSCHITZ = {"relu": 1.0, "tanh": 1.0, "sigmoid": 0.25}
U32 = 2.0 ** -24  # float32's unit roundoff
NORM_ROUNDING = 1e-6  # relative: float32 rounding of an SGD step and of ||w_j|| stays far below this


@dataclass(frozen=True)
class MLPConfig:
    """Settings of the MLP experiment (`mxwd mlp`); the defaults train in about 20 s on 2 cores."""

    n_train: int = 100  # training images drawn from load_digits' 1797 (the rest are the test set)
    hidden_units: int = 128  # width H of the one hidden layer
    activations: Tuple[str, ...] = ACTIVATIONS  # hidden activations phi to run (relu, tanh, sigmoid)
    lambdas: Tuple[float, ...] = (0.0, 1e-3, 1e-2, 3e-2, 1e-1)  # penalty strengths, lambd = wd
    lr: float = 0.3  # learning rate of plain SGD
    num_epochs: int = 60  # passes over the training set
    batch_size: int = 20  # minibatch size |B| (the loss is summed over the batch and the step divides by |B|)
    init_gain: float = 4.0  # initial weights ~ N(0, init_gain^2 / fan_in), biases 0 (large, so decay has something to remove)
    quiet_fraction: float = 0.01  # a unit is quiet when its output std < this x the initial network's median unit std
    eval_every: int = 5  # measure train and test loss and accuracy every this many epochs (and after the last)
    batchnorm: bool = True  # also run the BatchNorm experiment (Gluon path)
    bn_activation: str = "relu"  # activation after the BatchNorm layer
    bn_lambd: float = 0.03  # wd of the BatchNorm experiment (on W1, or not, and on W2)
    seed: int = 0  # the one seed behind the subset, the initial weights and the batch order

    def __post_init__(self) -> None:
        def store(name: str, value: Any) -> None:
            object.__setattr__(self, name, value)

        store("n_train", check_int(self.n_train, "n_train", minimum=10, maximum=N_DIGITS - MIN_TEST))
        store("hidden_units", check_int(self.hidden_units, "hidden_units", minimum=1, maximum=4096))
        store("activations", _as_choices(self.activations, "activations", ACTIVATIONS))
        store("lr", check_float(self.lr, "lr", minimum=0.0, strict=True))
        store("lambdas", _as_lambdas(self.lambdas, self.lr, "lambdas"))
        store("num_epochs", check_int(self.num_epochs, "num_epochs", minimum=1, maximum=100_000))
        store("eval_every", check_int(self.eval_every, "eval_every", minimum=1))
        store("batch_size", check_int(self.batch_size, "batch_size", minimum=1))
        if self.batch_size > self.n_train:
            raise ValueError(f"batch_size must be <= n_train = {self.n_train}, got {self.batch_size!r}; "
                             "allowed: 1 <= batch_size <= n_train")
        store("init_gain", check_float(self.init_gain, "init_gain", minimum=0.0, strict=True))
        store("quiet_fraction", check_float(self.quiet_fraction, "quiet_fraction", minimum=0.0, strict=True))
        if self.quiet_fraction >= 1:
            raise ValueError(f"quiet_fraction must be < 1, got {self.quiet_fraction!r}; allowed: 0 < quiet_fraction < 1")
        check_bool(self.batchnorm, "batchnorm")
        check_choice(self.bn_activation, "bn_activation", ACTIVATIONS)
        store("bn_lambd", _as_lambdas((self.bn_lambd,), self.lr, "bn_lambd")[0])
        store("seed", check_int(self.seed, "seed", minimum=0, maximum=2**32 - 1))

    def __repr__(self) -> str:
        """Only the fields that differ from the defaults: MLPConfig(num_epochs=5, seed=2)."""
        changed = [f"{f.name}={getattr(self, f.name)!r}" for f in dataclasses.fields(self)
                   if getattr(self, f.name) != f.default]
        return f"MLPConfig({', '.join(changed)})"

    @property
    def n_test(self) -> int:
        """The test set: every image not drawn for training."""
        return N_DIGITS - self.n_train

    @property
    def eval_epochs(self) -> Tuple[int, ...]:
        """The epochs after which the losses and accuracies are measured."""
        return tuple(e for e in range(1, self.num_epochs + 1) if e % self.eval_every == 0 or e == self.num_epochs)

    @property
    def steps(self) -> int:
        """SGD steps per run: num_epochs * ceil(n_train / batch_size)."""
        return self.num_epochs * math.ceil(self.n_train / self.batch_size)

    def replace(self, **changes: Any) -> "MLPConfig":
        """A copy with some fields changed (validated like any new MLPConfig)."""
        _check_names(changes)
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> Dict[str, Any]:
        out = dataclasses.asdict(self)
        out["activations"], out["lambdas"] = list(self.activations), list(self.lambdas)
        return out

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> "MLPConfig":
        """Inverse of `to_dict`; unknown keys are refused, naming the allowed ones."""
        if not isinstance(values, Mapping):
            raise ValueError(f"config must be a mapping of MLPConfig field names to values, got {values!r}")
        _check_names(values)
        return cls(**dict(values))


def field_names() -> Tuple[str, ...]:
    return tuple(f.name for f in dataclasses.fields(MLPConfig))


def _check_names(values: Mapping[str, Any]) -> None:
    unknown = sorted(set(values) - set(field_names()))
    if unknown:
        raise ValueError(f"unknown MLPConfig field {unknown[0]!r}; allowed: {', '.join(field_names())}")


def _as_choices(value: Any, name: str, allowed: Tuple[str, ...]) -> Tuple[str, ...]:
    if isinstance(value, str) or not hasattr(value, "__iter__"):
        raise ValueError(f"{name} must be a sequence of names from {', '.join(allowed)}; got {value!r}")
    out = tuple(value)
    if not out:
        raise ValueError(f"{name} must name at least one of {', '.join(allowed)}; got an empty sequence")
    for v in out:
        check_choice(v, name, allowed)
    if len(set(out)) != len(out):
        raise ValueError(f"{name} must not repeat a name, got {list(out)!r}")
    return out


def _as_lambdas(value: Any, lr: float, name: str) -> Tuple[float, ...]:
    from mxwd.steps import unstable

    if isinstance(value, (str, bytes)) or not hasattr(value, "__iter__"):
        raise ValueError(f"{name} must be a sequence of numbers >= 0, got {value!r}")
    out = tuple(check_float(v, name, minimum=0.0) for v in value)
    if not out:
        raise ValueError(f"{name} must hold at least one value, got an empty sequence")
    if len(set(out)) != len(out):
        raise ValueError(f"{name} must not repeat a value, got {list(out)!r}")
    for v in out:
        if unstable(lr, v):
            raise ValueError(f"{name} value {v:g} with lr = {lr:g} gives lr * lambd = {lr * v:g} >= 2, where plain "
                             f"SGD's decay factor |1 - lr * lambd| >= 1 never shrinks the weights; allowed: "
                             f"lambd < 2 / lr = {2 / lr:g}")
    return out


def resolve(config: Optional[MLPConfig], seed: Optional[int] = None, **settings: Any) -> MLPConfig:
    """The run's MLPConfig: `config` (default MLPConfig()) with `seed` and any fields given."""
    if config is None:
        config = MLPConfig()
    elif not isinstance(config, MLPConfig):
        raise ValueError(f"config must be an MLPConfig, got {type(config).__name__}")
    if seed is not None:
        settings["seed"] = seed
    return config.replace(**settings) if settings else config


# ---------------------------------------------------------------------------------------
# Data and initial weights.


@dataclass(frozen=True)
class Digits:
    """The seed's training subset and test set (NDArrays, pixels / 16; labels float32 0..9)."""

    train_features: Any
    train_labels: Any
    test_features: Any
    test_labels: Any
    train_rows: Tuple[int, ...]  # which of load_digits' rows are the training set, in the subset's order


def load_digits_data(config: MLPConfig) -> Digits:
    """load_digits, scaled by 1/16; the first generator of the seed draws the training rows."""
    from sklearn.datasets import load_digits

    from mxwd._mx import nd

    digits = load_digits()
    features = (digits.data / PIXEL_MAX).astype(np.float32)
    labels = digits.target.astype(np.float32)
    rows = _generators(config.seed)[0].permutation(len(features))
    train, test = rows[: config.n_train], rows[config.n_train :]
    return Digits(nd.array(features[train]), nd.array(labels[train]), nd.array(features[test]),
                  nd.array(labels[test]), tuple(int(r) for r in train))


def _generators(seed: int) -> Tuple[np.random.Generator, np.random.Generator]:
    """(subset, batch order): one NumPy generator per purpose, both from `seed`."""
    subset, order = np.random.SeedSequence(seed).spawn(2)
    return np.random.default_rng(subset), np.random.default_rng(order)


def epoch_orders(config: MLPConfig) -> List[np.ndarray]:
    """The order in which each epoch visits the training rows (the seed's second generator)."""
    rng = _generators(config.seed)[1]
    return [rng.permutation(config.n_train) for _ in range(config.num_epochs)]


def init_params(config: MLPConfig) -> Dict[str, Any]:
    """W1 ~ N(0, g^2 / 64) (H x 64), b1 = 0, W2 ~ N(0, g^2 / H) (10 x H), b2 = 0 (g = init_gain).

    Seeds MXNet's generator with config.seed and draws W1, then W2: every activation, lambd
    and path of one seed starts from these numbers. Returns fresh NDArrays (no gradients).
    """
    from mxwd._mx import mx, nd

    H, g = config.hidden_units, config.init_gain
    mx.random.seed(config.seed)
    W1 = nd.random.normal(scale=g / math.sqrt(N_PIXELS), shape=(H, N_PIXELS))
    W2 = nd.random.normal(scale=g / math.sqrt(H), shape=(N_CLASSES, H))
    return {"W1": W1, "b1": nd.zeros((H,)), "W2": W2, "b2": nd.zeros((N_CLASSES,))}


# ---------------------------------------------------------------------------------------
# The two paths.


def activation_fn(name: str) -> Callable[[Any], Any]:
    """phi as an NDArray function: nd.relu, nd.tanh or nd.sigmoid."""
    from mxwd._mx import nd

    return {"relu": nd.relu, "tanh": nd.tanh, "sigmoid": nd.sigmoid}[name]


def softmax_cross_entropy(y_hat: Any, y: Any) -> Any:
    """-log softmax(y_hat)_y per example (shape (n,)), as gluon.loss.SoftmaxCrossEntropyLoss."""
    from mxwd._mx import nd

    return -nd.pick(nd.log_softmax(y_hat), y)


def mlp_net(X: Any, params: Mapping[str, Any], phi: Callable[[Any], Any]) -> Any:
    """The logits W2 phi(W1 x + b1) + b2 for each row x of X."""
    from mxwd._mx import nd

    return nd.dot(hidden_layer(X, params, phi), params["W2"], transpose_b=True) + params["b2"]


def hidden_layer(X: Any, params: Mapping[str, Any], phi: Callable[[Any], Any]) -> Any:
    """phi(X W1^T + b1): the hidden units' outputs, one row per example."""
    from mxwd._mx import nd

    return phi(nd.dot(X, params["W1"], transpose_b=True) + params["b1"])


def _plan(config: MLPConfig, decay: str):
    """The StepPlan of one epoch (mxwd.steps): the scratch penalty with per-step semantics
    on a partial last batch, so that both paths are the same map for any batch size."""
    from mxwd.config import Config
    from mxwd.steps import step_plan

    chapter = Config(n_train=config.n_train, batch_size=config.batch_size, lr=config.lr,
                     partial_batch_penalty="per_step")
    return step_plan(chapter, decay)


class ScratchMLP:
    """NDArray parameters; one step = autograd(loss + lambd * policy.penalty), backward, sgd."""

    path = "scratch"

    def __init__(self, initial: Mapping[str, Any], activation: str, lambd: float, config: MLPConfig):
        from mxwd.policy import decay_policy

        self.params = {n: p.copy() for n, p in initial.items()}
        for p in self.params.values():
            p.attach_grad()
        self.phi, self.lambd, self.config = activation_fn(activation), lambd, config
        self.policy = decay_policy(self.params)  # W1, W2 decayed (2-D); b1, b2 not
        self.plan = _plan(config, "penalty")

    def step(self, X: Any, y: Any) -> None:
        from mxwd._mx import autograd
        from mxwd.scratch import sgd

        plan = self.plan.for_rows(X.shape[0])
        with autograd.record():
            l = softmax_cross_entropy(mlp_net(X, self.params, self.phi), y)
            if self.lambd > 0:
                l = l + self.lambd * plan.penalty_weight * self.policy.penalty(self.params)
        l.backward()
        sgd(list(self.params.values()), self.config.lr, plan.divisor)

    def logits(self, X: Any) -> Any:
        return mlp_net(X, self.params, self.phi)

    def hidden(self, X: Any) -> Any:
        return hidden_layer(X, self.params, self.phi)

    def numpy_params(self) -> Dict[str, np.ndarray]:
        return {n: p.asnumpy() for n, p in self.params.items()}


GLUON_NAMES = {"W1": "mlp_dense0_weight", "b1": "mlp_dense0_bias", "W2": "mlp_dense1_weight", "b2": "mlp_dense1_bias"}


def make_gluon_net(initial: Mapping[str, Any], activation: str) -> Any:
    """nn.Dense(H, activation=phi) -> nn.Dense(10), parameters set to `initial` (names mlp_dense0_*, ...)."""
    from mxwd._mx import nn

    H = initial["W1"].shape[0]
    net = nn.HybridSequential(prefix="mlp_")
    with net.name_scope():
        net.add(nn.Dense(H, in_units=N_PIXELS, activation=activation), nn.Dense(N_CLASSES, in_units=H))
    net.initialize()
    params = net.collect_params()
    for short, name in GLUON_NAMES.items():
        params[name].set_data(initial[short])
    return net


def sgd_trainers(net: Any, policy: Any, lr: float, wd: float) -> List[Any]:
    """gluon Trainers ('sgd', wd) over the policy's decayed parameters, wd = 0 over the others."""
    from mxwd._mx import mx

    def optimizer(decay: float):
        return mx.optimizer.create("sgd", learning_rate=lr, wd=decay)

    return policy.trainers(net, optimizer, wd, "two_trainers", kvstore=None)


class GluonMLP:
    """A gluon net and its Trainers; one step = autograd(SoftmaxCrossEntropyLoss), backward, step(|B|)."""

    path = "gluon"

    def __init__(self, net: Any, policy: Any, lambd: float, config: MLPConfig):
        from mxwd._mx import gluon

        self.net, self.policy, self.config = net, policy, config
        self.trainers = sgd_trainers(net, policy, config.lr, lambd)
        self.loss_fn = gluon.loss.SoftmaxCrossEntropyLoss()
        self.plan = _plan(config, "wd")

    def step(self, X: Any, y: Any) -> None:
        from mxwd._mx import autograd

        with autograd.record():
            l = self.loss_fn(self.net(X), y)
        l.backward()
        divisor = self.plan.for_rows(X.shape[0]).divisor
        for trainer in self.trainers:
            trainer.step(divisor)

    def logits(self, X: Any) -> Any:
        return self.net(X)

    def hidden(self, X: Any) -> Any:
        return self.net[0](X)

    def numpy_params(self) -> Dict[str, np.ndarray]:
        params = self.net.collect_params()
        return {short: params[name].data().asnumpy() for short, name in GLUON_NAMES.items()}


def _evaluate(model: Any, X: Any, y: Any) -> Tuple[float, float]:
    """(mean softmax cross-entropy, accuracy) of the model's logits on (X, y)."""
    logits = model.logits(X)
    loss = softmax_cross_entropy(logits, y).mean().asscalar().item()
    accuracy = (logits.argmax(axis=1) == y).mean().asscalar().item()
    return loss, accuracy


@dataclass
class _History:
    epochs: List[int] = field(default_factory=list)
    train_ls: List[float] = field(default_factory=list)
    test_ls: List[float] = field(default_factory=list)
    train_acc: List[float] = field(default_factory=list)
    test_acc: List[float] = field(default_factory=list)


def train(model: Any, data: Digits, config: MLPConfig, orders: Sequence[np.ndarray], clock: Any = None,
          on_epoch: Optional[Callable[[], None]] = None) -> _History:
    """config.num_epochs epochs of model.step over the seed's batch order; the losses and
    accuracies on the training and test sets after each of config.eval_epochs. Raises
    DivergenceError on a non-finite loss. `on_epoch()` is called after every epoch (the
    BatchNorm runs record W1)."""
    from mxwd import interrupt
    from mxwd._mx import nd
    from mxwd.training import DivergenceError

    history = _History()
    B = config.batch_size
    measured = set(config.eval_epochs)
    for epoch, order in enumerate(orders, start=1):
        index = nd.array(order, dtype="int64")
        X, y = data.train_features.take(index), data.train_labels.take(index)
        for start in range(0, config.n_train, B):
            model.step(X[start : start + B], y[start : start + B])
            interrupt.check()
        if epoch in measured:
            history.epochs.append(epoch)
            for X_, y_, losses, accs in ((data.train_features, data.train_labels, history.train_ls, history.train_acc),
                                         (data.test_features, data.test_labels, history.test_ls, history.test_acc)):
                loss, acc = _evaluate(model, X_, y_)
                losses.append(loss)
                accs.append(acc)
            if not (math.isfinite(history.train_ls[-1]) and math.isfinite(history.test_ls[-1])):
                raise DivergenceError(f"training diverged (non-finite loss) by epoch {epoch} of the {model.path} "
                                      f"path with lr = {config.lr:g}: reduce lr")
        if on_epoch is not None:
            on_epoch()
        if clock is not None:
            clock.tick()
    return history


# ---------------------------------------------------------------------------------------
# Measurements.


def unit_statistics(hidden: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    """(mean, std) of each hidden unit's output over the rows (float64; std with ddof = 0)."""
    hidden = np.asarray(hidden, dtype=np.float64)
    return hidden.mean(axis=0), hidden.std(axis=0)


def quiet_mask(stds: np.ndarray, threshold: float) -> np.ndarray:
    """True for the units whose output std over the training data is below `threshold`."""
    return np.asarray(stds) < threshold


def pruned_accuracy(params: Mapping[str, np.ndarray], hidden_test: np.ndarray, labels: np.ndarray,
                    quiet: np.ndarray, means: np.ndarray) -> float:
    """Test accuracy with the quiet units removed and W2[:, j] * mean_j (their training-data
    mean output) folded into b2: what the network computes if those neurons were missing."""
    W2, b2 = params["W2"].astype(np.float64), params["b2"].astype(np.float64)
    keep = ~quiet
    b = b2 + W2[:, quiet] @ means[quiet]
    logits = np.asarray(hidden_test, dtype=np.float64)[:, keep] @ W2[:, keep].T + b
    return float(np.mean(np.argmax(logits, axis=1) == labels))


@dataclass(frozen=True)
class MLPRun:
    """One trained MLP: (activation, lambd, path) and what was measured on it."""

    activation: str
    lambd: float
    path: str  # "scratch" or "gluon"
    epochs: Tuple[int, ...]  # the epochs after which the losses and accuracies below were measured
    train_ls: Tuple[float, ...]  # mean softmax cross-entropy on the training set, after each of `epochs`
    test_ls: Tuple[float, ...]  # the same on the test set
    train_acc: Tuple[float, ...]  # training accuracy after each of `epochs`
    test_acc: Tuple[float, ...]  # test accuracy after each of `epochs`
    unit_weight_norms: Tuple[float, ...]  # ||W1[j]||, each hidden unit's incoming weight norm
    unit_means: Tuple[float, ...]  # each unit's mean output over the training images
    unit_stds: Tuple[float, ...]  # each unit's output std over the training images
    quiet_threshold: float  # quiet_fraction x the initial network's median unit std (this activation)
    pruned_test_accuracy: float  # test accuracy with the quiet units removed, their means folded into b2
    params: Dict[str, np.ndarray] = field(repr=False, compare=False, default_factory=dict)  # final W1, b1, W2, b2

    @property
    def train_loss(self) -> float:
        return self.train_ls[-1]

    @property
    def test_loss(self) -> float:
        return self.test_ls[-1]

    @property
    def train_accuracy(self) -> float:
        return self.train_acc[-1]

    @property
    def test_accuracy(self) -> float:
        return self.test_acc[-1]

    @property
    def hidden_units(self) -> int:
        return len(self.unit_stds)

    @property
    def quiet(self) -> np.ndarray:
        return quiet_mask(np.asarray(self.unit_stds), self.quiet_threshold)

    @property
    def quiet_units(self) -> int:
        """How many hidden units are quiet (output std below quiet_threshold)."""
        return int(self.quiet.sum())

    @property
    def dead_units(self) -> int:
        """Units whose output is exactly constant over the training images (a dead ReLU outputs 0)."""
        return int(sum(s == 0 for s in self.unit_stds))

    @property
    def quiet_level(self) -> Optional[float]:
        """The median of the quiet units' (nearly constant) outputs; None if none is quiet."""
        q = self.quiet
        return float(np.median(np.asarray(self.unit_means)[q])) if q.any() else None

    @property
    def median_weight_norm(self) -> float:
        """The median over hidden units of ||W1[j]||."""
        return float(np.median(self.unit_weight_norms))

    @property
    def median_std(self) -> float:
        """The median over hidden units of the output std over the training images."""
        return float(np.median(self.unit_stds))

    def to_dict(self) -> Dict[str, Any]:
        return {
            "activation": self.activation, "lambd": self.lambd, "path": self.path,
            "train_loss": self.train_loss, "test_loss": self.test_loss,
            "train_accuracy": self.train_accuracy, "test_accuracy": self.test_accuracy,
            "quiet_units": self.quiet_units, "hidden_units": self.hidden_units, "dead_units": self.dead_units,
            "quiet_threshold": self.quiet_threshold, "quiet_level": self.quiet_level,
            "pruned_test_accuracy": self.pruned_test_accuracy, "median_weight_norm": self.median_weight_norm,
            "epochs": list(self.epochs), "train_ls": list(self.train_ls), "test_ls": list(self.test_ls),
            "train_acc": list(self.train_acc), "test_acc": list(self.test_acc),
            "unit_weight_norms": list(self.unit_weight_norms), "unit_means": list(self.unit_means),
            "unit_stds": list(self.unit_stds),
        }

    def __repr__(self) -> str:
        return (f"<MLPRun {self.activation} lambd={self.lambd:g} {self.path}: test accuracy "
                f"{self.test_accuracy:.3f}, quiet {self.quiet_units}/{self.hidden_units}>")


def measure(model: Any, history: _History, data: Digits, activation: str, lambd: float,
            threshold: float) -> MLPRun:
    """The per-unit measurements of a trained model (hidden outputs from the model's own layer)."""
    params = model.numpy_params()
    means, stds = unit_statistics(model.hidden(data.train_features).asnumpy())
    quiet = quiet_mask(stds, threshold)
    pruned = pruned_accuracy(params, model.hidden(data.test_features).asnumpy(),
                             data.test_labels.asnumpy(), quiet, means)
    norms = np.linalg.norm(params["W1"].astype(np.float64), axis=1)
    return MLPRun(activation, lambd, model.path, tuple(history.epochs), tuple(history.train_ls), tuple(history.test_ls),
                  tuple(history.train_acc), tuple(history.test_acc), tuple(norms.tolist()),
                  tuple(means.tolist()), tuple(stds.tolist()), threshold, pruned, params)


def reference_std(initial: Mapping[str, Any], activation: str, data: Digits) -> float:
    """The median unit output std of the initial (untrained) network, over the training images."""
    _, stds = unit_statistics(hidden_layer(data.train_features, initial, activation_fn(activation)).asnumpy())
    return float(np.median(stds))


def gap(a: MLPRun, b: MLPRun):
    """compare's rule (mxwd.comparison.Gap) between two paths' runs: max |dW| over W1, W2;
    max |db| over b1, b2; every per-epoch train and test loss within tol relative or absolute."""
    from mxwd.comparison import TOLERANCE, Gap

    tol = TOLERANCE["float32"]
    pairs = list(zip(a.train_ls + a.test_ls, b.train_ls + b.test_ls))

    def worst(names):
        return max(float(np.max(np.abs(a.params[n].astype(np.float64) - b.params[n]))) for n in names)

    def rel(x, y):
        scale = max(abs(x), abs(y))
        return abs(x - y) / scale if scale > 0 else 0.0

    return Gap(max_dw=worst(("W1", "W2")), db=worst(("b1", "b2")),
               max_loss_diff=max(abs(x - y) for x, y in pairs), max_rel_loss_diff=max(rel(x, y) for x, y in pairs),
               loss_within=all(math.isclose(x, y, rel_tol=tol, abs_tol=tol) for x, y in pairs), tolerance=tol)


# ---------------------------------------------------------------------------------------
# The source's argument, per activation, in words that follow the numbers.


@dataclass(frozen=True)
class Reading:
    """Whether the source's neuron argument holds for one activation, as measured (Gluon runs)."""

    activation: str
    verdict: str  # "holds", "only as the network collapses" or "does not hold"
    text: str

    def to_dict(self) -> Dict[str, Any]:
        return {"activation": self.activation, "verdict": self.verdict, "text": self.text}


def read_argument(runs: Sequence[MLPRun], reference: float) -> Reading:
    """The verdict for one activation's runs (one per lambd, one path), with the numbers behind it.

    "holds": some lambd leaves more quiet units than the weakest decay does (by MORE_QUIET of
    the hidden layer at least, so that one unit's fluctuation is not a finding) while the
    test accuracy is within USEFUL_DROP of the activation's best; "only as the network
    collapses": more quiet units only where the accuracy has fallen further; "does not
    hold": no lambd adds that many. `reference` is the initial network's median unit std.
    """
    runs = sorted(runs, key=lambda r: r.lambd)
    act, base, strongest = runs[0].activation, runs[0], runs[-1]
    if len(runs) < 2:
        return Reading(act, "not measured", "needs at least two lambdas to compare")
    H = base.hidden_units
    best = max(r.test_accuracy for r in runs)
    needed = max(1, math.ceil(MORE_QUIET * H))
    more = [r for r in runs[1:] if r.quiet_units >= base.quiet_units + needed]
    useful = [r for r in more if r.test_accuracy >= best - USEFUL_DROP]
    lambdas = ", ".join(f"{r.lambd:g}" for r in runs)
    numbers = (f"at lambd = {lambdas}: quiet units {', '.join(str(r.quiet_units) for r in runs)} (of {H}); "
               f"median ||W1[j]|| {', '.join(f'{r.median_weight_norm:.3g}' for r in runs)}; median unit std / "
               f"the initial network's {', '.join(f'{r.median_std / reference:.2g}' for r in runs)}; test accuracy "
               f"{', '.join(f'{r.test_accuracy:.3f}' for r in runs)}")
    if useful:
        r = max(useful, key=lambda r: r.quiet_units)
        verdict = "holds"
        text = (f"holds: at lambd = {r.lambd:g} the decay leaves {r.quiet_units} of {H} units quiet "
                f"({base.quiet_units} at lambd = {base.lambd:g}) while the test accuracy is {r.test_accuracy:.3f} "
                f"(best {best:.3f}); with them removed (their means folded into b2) it is "
                f"{r.pruned_test_accuracy:.3f}: they are as good as missing")
        if act == "relu" and r.dead_units:
            text += (f"; {r.dead_units} of them are dead (exactly constant, 0, on every training image; "
                     f"{base.dead_units} at lambd = {base.lambd:g})")
    elif more:
        r = more[0]
        verdict = "only as the network collapses"
        text = (f"only as the network collapses: more units are quiet only from lambd = {r.lambd:g} on "
                f"({r.quiet_units} of {H}), where the test accuracy has fallen to {r.test_accuracy:.3f} "
                f"(best {best:.3f}); below that the decay shrinks every unit together and switches none off")
    else:
        verdict = "does not hold"
        text = (f"does not hold as stated: no lambd adds {needed} or more quiet units ({MORE_QUIET:.0%} of the "
                f"layer) to the {base.quiet_units} at lambd = {base.lambd:g}; the decay shrinks every unit's "
                f"weights and output variation together, and none drops out")
    text += f". Measured {numbers}"
    if act == "sigmoid":
        means, b1 = np.asarray(strongest.unit_means), np.asarray(strongest.params["b1"], dtype=np.float64)
        text += (f". What a missing sigmoid neuron is: at lambd = {strongest.lambd:g} the units' outputs vary by a "
                 f"median std {strongest.median_std:.2g} ({strongest.median_std / reference:.2g} of the initial "
                 f"network's) around levels {means.min():.3g}..{means.max():.3g} (median {np.median(means):.3g}): "
                 f"sigmoid(b_j + w_j . mean x), near sigmoid(0) = 0.5 because both terms are small (the biases, "
                 f"not decayed, end at {b1.min():.2g}..{b1.max():.2g}), never near 0. Such a unit is a constant "
                 f"c_j, and W2[:, j] c_j is absorbed by the next layer's bias: missing in effect, not an output of 0")
        if strongest.quiet_units:
            text += (f" (removing its {strongest.quiet_units} quiet units, folded into b2: test accuracy "
                     f"{strongest.pruned_test_accuracy:.3f}, against {strongest.test_accuracy:.3f})")
    return Reading(act, verdict, text)


# ---------------------------------------------------------------------------------------
# BatchNorm.


BN_NAMES = {"W1": "mlpbn_dense0_weight", "W2": "mlpbn_dense1_weight", "b2": "mlpbn_dense1_bias"}


def make_bn_net(initial: Mapping[str, Any], activation: str) -> Any:
    """Dense(H, no bias) -> BatchNorm -> phi -> Dense(10), with the shared initial W1, W2 (b2 = 0;
    BatchNorm's gamma = 1, beta = 0). A bias before BatchNorm would be subtracted with the mean."""
    from mxwd._mx import nn

    H = initial["W1"].shape[0]
    net = nn.HybridSequential(prefix="mlpbn_")
    with net.name_scope():
        net.add(nn.Dense(H, in_units=N_PIXELS, use_bias=False), nn.BatchNorm(in_channels=H, epsilon=BN_EPSILON),
                nn.Activation(activation), nn.Dense(N_CLASSES, in_units=H))
    net.initialize()
    params = net.collect_params()
    for short, name in BN_NAMES.items():
        params[name].set_data(initial[short])
    return net


@dataclass(frozen=True)
class ScaleCheck:
    """The function's invariance to W1 -> c W1 (training mode: batch statistics)."""

    scale: float  # c
    max_abs_diff: float  # max |logits(c W1) - logits(W1)| over the training images
    tolerance: float  # from BatchNorm's eps and float32 rounding (see `scale_tolerance`)
    max_abs_logit: float
    without_bn_diff: float  # the same change in the MLP without BatchNorm (same initial W1, W2)
    eps_diff: float  # the change exact (float64) arithmetic gives: eps's part alone (`bn_logits`)

    @property
    def invariant(self) -> bool:
        return self.max_abs_diff <= self.tolerance

    def to_dict(self) -> Dict[str, Any]:
        return {"scale": self.scale, "max_abs_diff": self.max_abs_diff, "tolerance": self.tolerance,
                "invariant": self.invariant, "max_abs_logit": self.max_abs_logit,
                "without_bn_diff": self.without_bn_diff, "eps_diff": self.eps_diff}


def scale_tolerance(X: np.ndarray, W1: np.ndarray, gamma: np.ndarray, W2: np.ndarray, activation: str,
                    c: float) -> float:
    """A bound on max |logits(c W1) - logits(W1)| in training mode, from eps and float32.

    BatchNorm over the batch: x_hat_j = (z_j - mu_j) / sqrt(var_j + eps), z = X W1^T. With
    c W1 it is (z_j - mu_j) / sqrt(var_j + eps / c^2): the same x_hat_j times
    s_j = sqrt((var_j + eps) / (var_j + eps / c^2)), and |s_j - 1| <= eps |1 - 1/c^2| / (2 var_j).
    The activation is L-Lipschitz (1 for relu and tanh, 1/4 for sigmoid), so the logits move by
    at most  sum_j |W2_kj| L |gamma_j x_hat_j| |s_j - 1|  (the eps term). Float32 rounding, in
    each of the two forward passes (u = 2^-24; gamma_n = n u, to first order):
    - z_j = x . w_j: |dz_j| <= gamma_64 sum_i |x_i w_ji| (times c in the second pass), which
      the normalization divides by its sqrt(var_j + eps): |d x_hat_j| <= gamma_64 S_j / sd_j;
    - the mean and the variance over n rows, the square root, the division: a relative
      error of x_hat_j within gamma_{n+8} |x_hat_j|, plus gamma_n |mu_j| / sd_j from mu;
    - the output layer's dot of length H: gamma_H sum_j |W2_kj h_j|.
    The bound doubles the rounding terms (both passes) and takes the worst row and class.
    """
    X, W1, gamma, W2 = (np.asarray(a, dtype=np.float64) for a in (X, W1, gamma, W2))
    n, H = X.shape[0], W1.shape[0]
    z = X @ W1.T
    mu, var = z.mean(axis=0), z.var(axis=0)
    sd = np.sqrt(var + BN_EPSILON)
    x_hat = (z - mu) / sd
    L = LIPSCHITZ[activation]
    s_dev = BN_EPSILON * abs(1 - 1 / c**2) / (2 * np.maximum(var, np.finfo(float).tiny))
    S = np.abs(X) @ np.abs(W1).T  # sum_i |x_i w_ji| per row and unit
    dx_hat = (N_PIXELS * U32 * S + (n + 8) * U32 * np.abs(z - mu) + n * U32 * np.abs(mu)) / sd
    h = {"relu": np.maximum(x_hat * gamma, 0), "tanh": np.tanh(x_hat * gamma),
         "sigmoid": 1 / (1 + np.exp(-x_hat * gamma))}[activation]
    per_unit = L * np.abs(gamma) * (np.abs(x_hat) * np.minimum(s_dev, 1.0) + 2 * dx_hat)  # (n, H)
    bound = per_unit @ np.abs(W2).T + 2 * H * U32 * (np.abs(h) @ np.abs(W2).T)  # (n, classes)
    return float(bound.max())


def bn_logits(X: np.ndarray, params: Mapping[str, np.ndarray], activation: str) -> np.ndarray:
    """The BatchNorm MLP's logits in training mode, in float64 NumPy (batch mean and biased
    variance over the rows of X, as MXNet's BatchNorm): W2 phi(gamma x_hat + beta) + b2."""
    X = np.asarray(X, dtype=np.float64)
    p = {k: np.asarray(v, dtype=np.float64) for k, v in params.items()}
    z = X @ p["W1"].T
    x_hat = (z - z.mean(axis=0)) / np.sqrt(z.var(axis=0) + BN_EPSILON)
    a = p["gamma"] * x_hat + p["beta"]
    h = {"relu": lambda v: np.maximum(v, 0), "tanh": np.tanh, "sigmoid": lambda v: 1 / (1 + np.exp(-v))}[activation](a)
    return h @ p["W2"].T + p["b2"]


def scale_checks(net: Any, data: Digits, activation: str, initial: Mapping[str, Any]) -> Tuple[ScaleCheck, ...]:
    """For each c in BN_SCALES: the BN net's logits on the training images (one batch, training
    mode) with W1 and with c W1; and, for contrast, the change in the plain MLP. The
    running statistics that training mode updates are restored afterwards."""
    from mxwd._mx import autograd

    params = net.collect_params()
    weight = params[BN_NAMES["W1"]]
    bn = net[1]
    saved_w = weight.data().copy()
    saved_stats = [p.data().copy() for p in (bn.running_mean, bn.running_var)]
    X = data.train_features
    plain = {k: initial[k] for k in ("W1", "b1", "W2", "b2")}
    phi = activation_fn(activation)
    base_plain = mlp_net(X, plain, phi).asnumpy()
    checks = []
    try:
        with autograd.train_mode():
            base = net(X).asnumpy()
        for c in BN_SCALES:
            weight.set_data(saved_w * c)
            with autograd.train_mode():
                scaled = net(X).asnumpy()
            weight.set_data(saved_w)
            tol = scale_tolerance(X.asnumpy(), saved_w.asnumpy(), bn.gamma.data().asnumpy(),
                                  params[BN_NAMES["W2"]].data().asnumpy(), activation, c)
            scaled_plain = mlp_net(X, {**plain, "W1": plain["W1"] * c}, phi).asnumpy()
            exact = {"W1": saved_w.asnumpy(), "gamma": bn.gamma.data().asnumpy(), "beta": bn.beta.data().asnumpy(),
                     "W2": params[BN_NAMES["W2"]].data().asnumpy(), "b2": params[BN_NAMES["b2"]].data().asnumpy()}
            eps_diff = np.max(np.abs(bn_logits(X.asnumpy(), {**exact, "W1": exact["W1"].astype(np.float64) * c},
                                               activation) - bn_logits(X.asnumpy(), exact, activation)))
            checks.append(ScaleCheck(c, float(np.max(np.abs(scaled.astype(np.float64) - base))), tol,
                                     float(np.max(np.abs(base))),
                                     float(np.max(np.abs(scaled_plain.astype(np.float64) - base_plain))),
                                     float(eps_diff)))
    finally:
        weight.set_data(saved_w)
        bn.running_mean.set_data(saved_stats[0])
        bn.running_var.set_data(saved_stats[1])
    return tuple(checks)


@dataclass(frozen=True)
class BNRun:
    """One BatchNorm run: W1 decayed or not, and what happened to it over training."""

    w1_decayed: bool
    lambd: float
    policy: str  # str(DecayPolicy): which parameters were decayed
    weight_norm: Tuple[float, ...]  # ||W1||_F after epoch 0 (initial), 1, .., num_epochs
    effective_step: Tuple[float, ...]  # median over units of lr / ||W1[j]||^2, epoch 0 .. num_epochs
    angle: Tuple[float, ...]  # median over units of the angle (degrees) W1[j] turned in each epoch, 1 .. num_epochs
    min_unit_norm_ratio: float  # min over epochs and units of ||W1[j]|| (epoch e) / ||W1[j]|| (epoch e - 1)
    epochs: Tuple[int, ...]  # the epochs after which the losses and accuracies below were measured
    train_ls: Tuple[float, ...]
    test_ls: Tuple[float, ...]
    test_acc: Tuple[float, ...]  # inference mode (running statistics)
    min_variance: float  # min over units of the pre-activation variance over the training images, final W1
    scale_checks: Tuple[ScaleCheck, ...]
    params: Dict[str, np.ndarray] = field(repr=False, compare=False, default_factory=dict)  # final, by short name

    @property
    def test_accuracy(self) -> float:
        return self.test_acc[-1]

    @property
    def label(self) -> str:
        return "decay on W1" if self.w1_decayed else "no decay on W1"

    @property
    def worst_check(self) -> ScaleCheck:
        return max(self.scale_checks, key=lambda c: c.max_abs_diff)

    def to_dict(self) -> Dict[str, Any]:
        return {"w1_decayed": self.w1_decayed, "lambd": self.lambd, "policy": self.policy,
                "test_accuracy": self.test_accuracy, "train_loss": self.train_ls[-1], "test_loss": self.test_ls[-1],
                "weight_norm": list(self.weight_norm), "effective_step": list(self.effective_step),
                "angle_per_epoch": list(self.angle), "min_unit_norm_ratio": self.min_unit_norm_ratio,
                "epochs": list(self.epochs), "train_ls": list(self.train_ls), "test_ls": list(self.test_ls),
                "test_acc": list(self.test_acc), "min_variance": self.min_variance,
                "scale_checks": [c.to_dict() for c in self.scale_checks]}


def _angles(before: np.ndarray, after: np.ndarray) -> np.ndarray:
    """The angle (degrees) between each row of `before` and of `after`."""
    before, after = before.astype(np.float64), after.astype(np.float64)
    cos = np.sum(before * after, axis=1) / (np.linalg.norm(before, axis=1) * np.linalg.norm(after, axis=1))
    return np.degrees(np.arccos(np.clip(cos, -1.0, 1.0)))


BN_SHORT = {"W1": "dense0_weight", "gamma": "batchnorm0_gamma", "beta": "batchnorm0_beta",
            "running_mean": "batchnorm0_running_mean", "running_var": "batchnorm0_running_var",
            "W2": "dense1_weight", "b2": "dense1_bias"}


def train_bn(initial: Mapping[str, Any], data: Digits, config: MLPConfig, orders: Sequence[np.ndarray],
             w1_decayed: bool, clock: Any = None) -> BNRun:
    """Train the BatchNorm MLP (Gluon) with wd = bn_lambd; W1 out of the decay unless `w1_decayed`.

    "Without" is the policy's exclude pattern on W1's name: the output layer's W2 is decayed
    in both runs, BatchNorm's gamma and beta (1-D) in neither, its running statistics are
    not trained (grad_req='null').
    """
    from mxwd.policy import decay_policy

    net = make_bn_net(initial, config.bn_activation)
    policy = decay_policy(net, exclude=None if w1_decayed else re.escape(BN_NAMES["W1"]) + "$")
    model = GluonMLP(net, policy, config.bn_lambd, config)
    weight = net.collect_params()[BN_NAMES["W1"]]
    snapshots = [weight.data().asnumpy()]
    history = train(model, data, config, orders, clock, on_epoch=lambda: snapshots.append(weight.data().asnumpy()))
    rows = [np.linalg.norm(w.astype(np.float64), axis=1) for w in snapshots]
    z = data.train_features.asnumpy().astype(np.float64) @ snapshots[-1].astype(np.float64).T
    checks = scale_checks(net, data, config.bn_activation, initial)
    params = net.collect_params()
    return BNRun(
        w1_decayed, config.bn_lambd, str(policy),
        weight_norm=tuple(float(np.linalg.norm(r)) for r in rows),
        effective_step=tuple(float(np.median(config.lr / r**2)) for r in rows),
        angle=tuple(float(np.median(_angles(a, b))) for a, b in zip(snapshots, snapshots[1:])),
        min_unit_norm_ratio=float(min(np.min(b / a) for a, b in zip(rows, rows[1:]))),
        epochs=tuple(history.epochs), train_ls=tuple(history.train_ls), test_ls=tuple(history.test_ls),
        test_acc=tuple(history.test_acc), min_variance=float(z.var(axis=0).min()), scale_checks=checks,
        params={k: params["mlpbn_" + v].data().asnumpy() for k, v in BN_SHORT.items()})


@dataclass(frozen=True)
class BatchNormResult:
    """The BatchNorm experiment: the same net with W1 decayed and not, from one initial W1."""

    activation: str
    decayed: BNRun
    not_decayed: BNRun
    lr: float  # the runs' learning rate
    steps: int  # SGD steps per run

    @property
    def invariant(self) -> bool:
        return all(c.invariant for run in (self.decayed, self.not_decayed) for c in run.scale_checks)

    def reading(self) -> str:
        """What decay does on a BatchNorm-preceded weight, and what it does not, in the numbers measured."""
        d, n = self.decayed, self.not_decayed
        plain = max(c.without_bn_diff for run in (d, n) for c in run.scale_checks)
        scales = ", ".join(f"{c:g}" for c in BN_SCALES)
        factor = (1 - self.lr * d.lambd) ** self.steps
        ratio = n.min_unit_norm_ratio
        shown = f"1 - {1 - ratio:.2g}" if ratio < 1 else f"{ratio:.9g}"
        grows = (f"no unit's norm shrinks there beyond float32 rounding: smallest ratio between epochs {shown}"
                 if ratio >= 1 - NORM_ROUNDING else f"yet a unit's norm shrinks there: smallest ratio {shown}")
        does = (f"What decay on W1 does: it shrinks ||W1||_F from {d.weight_norm[0]:.3g} to {d.weight_norm[-1]:.3g} "
                f"(the decay alone, (1 - lr wd)^steps = {factor:.3g}, would give {d.weight_norm[0] * factor:.3g}: the "
                f"gradient, orthogonal to w, only lengthens it; "
                f"without decay it ends at {n.weight_norm[-1]:.3g}, and {grows}), which raises the effective step "
                f"lr/||w_j||^2 to {d.effective_step[-1] / n.effective_step[-1]:.3g}x the undecayed run's by the "
                f"end: each unit's weights turn {d.angle[-1]:.3g} degrees in the last epoch, against "
                f"{n.angle[-1]:.3g} without decay.")
        does_not = (f"What it does not do: shrink the function. Scaling W1 by c = {scales} (training mode) moves "
                    f"the logits (up to {max(d.worst_check.max_abs_logit, n.worst_check.max_abs_logit):.3g}) by at "
                    f"most {n.worst_check.max_abs_diff:.2g} without decay and {d.worst_check.max_abs_diff:.2g} with "
                    f"it, within the bound from eps and float32 ("
                    + ("invariant" if self.invariant else "NOT invariant")
                    + f"), against up to {plain:.3g} in the same MLP without BatchNorm. Exact arithmetic leaves "
                    f"eps = {BN_EPSILON:g} alone, which moves them by {n.worst_check.eps_diff:.2g} and "
                    f"{d.worst_check.eps_diff:.2g}: the smallest pre-activation variance of a unit is "
                    f"{n.min_variance:.2g} without decay and {d.min_variance:.2g} with it (eps matters where the "
                    f"variance nears it; the rest is float32 rounding).")
        acc = (f"Test accuracy: {d.test_accuracy:.3f} with decay on W1, {n.test_accuracy:.3f} without "
               f"(wd = {d.lambd:g} on W2 in both).")
        return f"{does} {does_not} {acc}"

    def to_dict(self) -> Dict[str, Any]:
        return {"activation": self.activation, "lambd": self.decayed.lambd, "epsilon": BN_EPSILON,
                "scales": list(BN_SCALES), "invariant": self.invariant, "reading": self.reading(),
                "decayed": self.decayed.to_dict(), "not_decayed": self.not_decayed.to_dict()}


# ---------------------------------------------------------------------------------------
# The experiment.


@dataclass(frozen=True)
class MLPResult:
    """Every run of `mlp`: runs per (activation, lambd, path), their agreement, the readings, BatchNorm."""

    config: MLPConfig
    runs: Tuple[MLPRun, ...]
    reference_stds: Dict[str, float]  # per activation: the initial network's median unit output std
    train_rows: Tuple[int, ...]  # load_digits rows of the training set
    initial: Dict[str, np.ndarray] = field(repr=False, compare=False)  # the shared initial W1, b1, W2, b2
    batchnorm: Optional[BatchNormResult] = None
    seconds: Dict[str, float] = field(default_factory=dict, compare=False)  # where the time went (not in to_dict)

    def run(self, activation: str, lambd: float, path: str = "gluon") -> MLPRun:
        """The run of one (activation, lambd, path)."""
        for r in self.runs:
            if (r.activation, r.lambd, r.path) == (activation, lambd, path):
                return r
        raise ValueError(f"no run for activation={activation!r}, lambd={lambd!r}, path={path!r}; allowed: "
                         f"activation in {list(self.config.activations)}, lambd in {list(self.config.lambdas)}, "
                         f"path in {list(PATHS)}")

    def gaps(self) -> List[Tuple[str, float, Any]]:
        """(activation, lambd, Gap) between the scratch and Gluon runs of each pair."""
        return [(a, l, gap(self.run(a, l, "scratch"), self.run(a, l, "gluon")))
                for a in self.config.activations for l in self.config.lambdas]

    def worst_gap(self) -> Dict[str, Any]:
        """The largest value of each criterion over every pair, and whether every pair agrees."""
        gaps = [g for _, _, g in self.gaps()]
        return {"max_dw": max(g.max_dw for g in gaps), "db": max(g.db for g in gaps),
                "max_loss_diff": max(g.max_loss_diff for g in gaps),
                "max_rel_loss_diff": max(g.max_rel_loss_diff for g in gaps),
                "tolerance": gaps[0].tolerance, "agree": all(g.agree for g in gaps)}

    def readings(self) -> List[Reading]:
        """Per activation, whether the source's argument holds (from the Gluon runs)."""
        return [read_argument([r for r in self.runs if r.activation == a and r.path == "gluon"],
                              self.reference_stds[a]) for a in self.config.activations]

    def weights(self, activation: str, lambd: float, path: str = "gluon") -> Dict[str, np.ndarray]:
        """The final W1, b1, W2, b2 of one run, as NumPy arrays."""
        return self.run(activation, lambd, path).params

    def arrays(self) -> Dict[str, np.ndarray]:
        """Every run's final weights and the initial ones, keyed "relu/0.01/gluon/W1", "initial/W1",
        "batchnorm/decayed/gamma", ..., and the training rows ("train_rows"): what `mxwd mlp` saves
        in weights.npz (lambd spelled by repr, so that the key round-trips the float)."""
        out = {f"initial/{n}": v for n, v in self.initial.items()}
        for r in self.runs:
            out.update({f"{r.activation}/{r.lambd!r}/{r.path}/{n}": v for n, v in r.params.items()})
        if self.batchnorm is not None:
            for run in (self.batchnorm.decayed, self.batchnorm.not_decayed):
                key = "decayed" if run.w1_decayed else "not_decayed"
                out.update({f"batchnorm/{key}/{n}": v for n, v in run.params.items()})
        out["train_rows"] = np.asarray(self.train_rows, dtype=np.int64)
        return out

    def table(self) -> str:
        c = self.config
        lines = [f"MLP on load_digits, seed {c.seed}: 64 -> {c.hidden_units} -> 10, n_train {c.n_train}, "
                 f"n_test {c.n_test}, batch_size {c.batch_size}, {c.num_epochs} epochs ({c.steps} steps), "
                 f"lr {c.lr:g}, init_gain {c.init_gain:g}",
                 f"quiet unit: output std over the training images < {c.quiet_fraction:g} x the initial network's "
                 "median unit std (" + ", ".join(f"{a} {self.reference_stds[a]:.3g}" for a in c.activations) + ")",
                 f"{'activation':<10} {'lambd':>7} {'path':<8} {'train loss':>10} {'test loss':>9} {'train acc':>9} "
                 f"{'test acc':>8} {'quiet':>7} {'pruned acc':>10} {'med ||w_j||':>11}"]
        for r in self.runs:
            lines.append(f"{r.activation:<10} {r.lambd:>7g} {r.path:<8} {r.train_loss:>10.4g} {r.test_loss:>9.4g} "
                         f"{r.train_accuracy:>9.3f} {r.test_accuracy:>8.3f} {r.quiet_units:>3}/{r.hidden_units:<3} "
                         f"{r.pruned_test_accuracy:>10.3f} {r.median_weight_norm:>11.4g}")
        w = self.worst_gap()
        lines.append(f"scratch vs Gluon, worst pair: max |dW| = {w['max_dw']:.3g}, max |db| = {w['db']:.3g}, losses: "
                     f"max absolute {w['max_loss_diff']:.3g}, max relative {w['max_rel_loss_diff']:.3g} "
                     f"(tolerance {w['tolerance']:g}): " + ("every pair agrees" if w["agree"] else "DIFFER"))
        lines.append("the source's argument (weights near 0 -> a neuron as good as missing), per activation:")
        lines += [f"  {r.activation}: {r.text}" for r in self.readings()]
        if self.batchnorm is not None:
            bn = self.batchnorm
            lines.append(f"BatchNorm after the hidden layer ({bn.activation}, wd = {bn.decayed.lambd:g}):")
            lines.append(f"  {bn.decayed.label}: {bn.decayed.policy}")
            lines.append(f"  {bn.not_decayed.label}: {bn.not_decayed.policy}")
            lines.append("  " + bn.reading())
        return "\n".join(lines)

    def to_dict(self) -> Dict[str, Any]:
        gaps = [{"activation": a, "lambd": l, **g.to_dict()} for a, l, g in self.gaps()]
        return {
            "config": self.config.to_dict(), "seed": self.config.seed,
            "data": {"source": "sklearn.datasets.load_digits", "scale": f"pixels / {PIXEL_MAX:g}",
                     "n_images": N_DIGITS, "n_train": self.config.n_train, "n_test": self.config.n_test,
                     "train_rows": list(self.train_rows)},
            "reference_stds": dict(self.reference_stds),
            "runs": [r.to_dict() for r in self.runs],
            "agreement": gaps, "worst_gap": self.worst_gap(),
            "readings": [r.to_dict() for r in self.readings()],
            "batchnorm": None if self.batchnorm is None else self.batchnorm.to_dict(),
        }

    def __repr__(self) -> str:
        w = self.worst_gap()
        verdicts = ", ".join(f"{r.activation}: {r.verdict}" for r in self.readings())
        return (f"<MLPResult seed {self.config.seed}, {len(self.runs)} runs, worst max |dW| {w['max_dw']:.2g} "
                f"({'agree' if w['agree'] else 'DIFFER'}); {verdicts}>")

    def __str__(self) -> str:
        return self.table()


def mlp(config: Optional[MLPConfig] = None, seed: Optional[int] = None, **settings: Any) -> MLPResult:
    """Train the MLP for every (activation, lambd, path) of the config, and the BatchNorm pair.

    config: an MLPConfig (default MLPConfig()); seed and any MLPConfig field given as a
    keyword override it, e.g. `mxwd.mlp(lambdas=(0, 0.01), num_epochs=20)`. Raises
    ValueError naming the parameter, the value and what is allowed for bad input, and
    DivergenceError for a run whose loss becomes non-finite. Returns an `MLPResult`:
    `table()` to read, `to_dict()` for JSON, `mxwd.mlp_plot` to draw.
    """
    from mxwd import limits
    from mxwd.policy import decay_policy

    config = resolve(config, seed, **settings)
    seconds: Dict[str, float] = {}
    t0 = time.perf_counter()
    data = load_digits_data(config)
    initial = init_params(config)
    orders = epoch_orders(config)
    references = {a: reference_std(initial, a, data) for a in config.activations}
    seconds["setup"] = time.perf_counter() - t0
    units = (len(config.activations) * len(config.lambdas) * len(PATHS) + 2 * config.batchnorm) * config.num_epochs
    clock = limits.Clock(units, "mxwd mlp")
    runs: List[MLPRun] = []
    try:
        for activation in config.activations:
            threshold = config.quiet_fraction * references[activation]
            for path in PATHS:
                t = time.perf_counter()
                for lambd in config.lambdas:
                    if path == "scratch":
                        model: Any = ScratchMLP(initial, activation, lambd, config)
                    else:
                        net = make_gluon_net(initial, activation)
                        model = GluonMLP(net, decay_policy(net), lambd, config)
                    history = train(model, data, config, orders, clock)
                    runs.append(measure(model, history, data, activation, lambd, threshold))
                seconds[f"{activation}/{path}"] = time.perf_counter() - t
        batchnorm = None
        if config.batchnorm:
            t = time.perf_counter()
            batchnorm = BatchNormResult(config.bn_activation,
                                        train_bn(initial, data, config, orders, True, clock),
                                        train_bn(initial, data, config, orders, False, clock),
                                        config.lr, config.steps)
            seconds["batchnorm"] = time.perf_counter() - t
    finally:
        clock.close()
    runs.sort(key=lambda r: (config.activations.index(r.activation), config.lambdas.index(r.lambd),
                             PATHS.index(r.path)))
    return MLPResult(config, tuple(runs), references, data.train_rows,
                     {n: p.asnumpy() for n, p in initial.items()}, batchnorm, seconds)
