"""One description per optimizer: the single table the atlas, `compare` and the tests read.

Each `OptimizerSpec` names an optimizer as MXNet 1.9.1 registers it (plus the contrib
operator `nd.contrib.adamw_update`), the hyperparameters mxwd runs it with, its update
rule as MXNet implements it (read from `python/mxnet/optimizer/optimizer.py` and
`src/operator/optimizer_op-inl.h` of the 1.9.1 release), the order in which it applies
rescale_grad, clip_gradient and wd, and, for the optimizers the tests check, an
independent float64 NumPy reference of that rule written from the math.

Notation in the rules: g is the loss gradient summed over the batch, s = rescale_grad
(1/|B| as mxwd steps), clip(.) is clip_gradient's projection onto [-c, c], t the update
count, lr the learning rate and wd = wd * wd_mult of the parameter.
"""
from __future__ import annotations

import dataclasses
import functools
import math
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, Mapping, Optional, Tuple

import numpy as np

CONTRIB_ADAMW = "adamw_update"  # the contrib operator, wrapped as an Optimizer by mxwd
MXWD_OPTIMIZERS = ("adamw", "sgdw")  # registered by mxwd.optim


@dataclass(frozen=True)
class OptimizerSpec:
    """What mxwd knows about one optimizer, in one place."""

    name: str  # the atlas's name ("sgd+momentum", "rmsprop-centered", ...)
    mxnet: str  # MXNet's registered name, or "adamw_update" for the contrib operator
    rule: str  # the update as MXNet 1.9.1 implements it, in one line of math
    order: str  # where rescale_grad, clip_gradient and wd enter, in order
    hyperparameters: Mapping[str, Any] = field(default_factory=dict)  # beyond learning_rate and wd
    weight_only: bool = False  # MXNet cannot optimize the 1-D Dense bias: the bias gets plain SGD
    wd_note: str = ""  # what wd does here, when it is neither a plain L2 gradient term nor lr*wd*w
    reference: Optional[Callable[..., "Reference"]] = None  # float64 NumPy reference, if written
    sweep: str = ""  # in the lr x lambd sweep (`mxwd sweep --optimizer`): what it is there; "" if not
    flags: Tuple[str, ...] = ()  # the hyperparameters the sweep's command-line flags may set

    def create(self, lr: float, wd: float, **overrides: Any) -> Any:
        """A fresh MXNet Optimizer object for this spec with learning rate lr and weight decay wd;
        `overrides` replace the spec's hyperparameters (or add MXNet's others: momentum,
        lr_scheduler, clip_gradient, rescale_grad, multi_precision, ...)."""
        from mxwd._mx import mx

        hp = {**self.hyperparameters, **overrides}
        if self.mxnet == CONTRIB_ADAMW:
            return _contrib_adamw_class()(learning_rate=lr, wd=wd, **hp)
        if self.mxnet in MXWD_OPTIMIZERS:
            import mxwd.optim  # noqa: F401  (registers adamw and sgdw)
        return mx.optimizer.create(self.mxnet, learning_rate=lr, wd=wd, **hp)


# ---------------------------------------------------------------------------------------
# NumPy float64 references: state from the initial weight, then one step on the rescaled
# gradient gs = s * g (no clipping: the atlas runs without clip_gradient). wd is the
# parameter's effective weight decay.


class Reference:
    """One parameter's optimizer state and update, in float64 NumPy."""

    def __init__(self, w: np.ndarray, **hp: Any):
        self.hp, self.t = hp, 0
        self.init(np.asarray(w, dtype=np.float64))

    def init(self, w: np.ndarray) -> None:
        pass

    def step(self, w: np.ndarray, gs: np.ndarray, lr: float, wd: float) -> np.ndarray:
        raise NotImplementedError


class SGDRef(Reference):
    """w <- w - lr (gs + wd w); with momentum m: v <- m v - lr (gs + wd w), w <- w + v."""

    def init(self, w):
        self.v = np.zeros_like(w)

    def step(self, w, gs, lr, wd):
        m = self.hp.get("momentum", 0.0)
        self.v = m * self.v - lr * (gs + wd * w)
        return w + self.v


class NAGRef(Reference):
    """Nesterov momentum as MXNet's nag_mom_update writes it, with g' = gs + wd w:
    v' = m v;  w_new = w - v' + (1 + m)(v' - lr g');  v <- v' - lr g'.

    aliased=True reproduces what MXNet 1.9.1 computes when the output is the weight
    itself (`out=weight`, as its NAG optimizer calls it): the kernel writes w_new before
    it updates v, so v's decay term reads the new weight, v <- v' - lr (gs + wd w_new).
    """

    def __init__(self, w, aliased: bool = False, **hp):
        self.aliased = aliased
        super().__init__(w, **hp)

    def init(self, w):
        self.v = np.zeros_like(w)

    def step(self, w, gs, lr, wd):
        m = self.hp["momentum"]
        v = m * self.v
        out = w - v + (1 + m) * (v - lr * (gs + wd * w))
        self.v = v - lr * (gs + wd * (out if self.aliased else w))
        return out


class AdamRef(Reference):
    """Kingma & Ba with MXNet's placement of epsilon: g' = gs + wd w,
    m <- b1 m + (1-b1) g', v <- b2 v + (1-b2) g'^2, w <- w - lr sqrt(1-b2^t)/(1-b1^t) m / (sqrt(v) + eps)."""

    def init(self, w):
        self.m, self.v = np.zeros_like(w), np.zeros_like(w)

    def step(self, w, gs, lr, wd):
        b1, b2, eps = self.hp.get("beta1", 0.9), self.hp.get("beta2", 0.999), self.hp.get("epsilon", 1e-8)
        self.t += 1
        gp = gs + wd * w
        self.m = b1 * self.m + (1 - b1) * gp
        self.v = b2 * self.v + (1 - b2) * gp * gp
        lr_t = lr * math.sqrt(1 - b2**self.t) / (1 - b1**self.t)
        return w - lr_t * self.m / (np.sqrt(self.v) + eps)


class RMSPropRef(Reference):
    """Tieleman & Hinton: g' = gs + wd w, n <- (1-g1) g'^2 + g1 n, w <- w - lr g' / sqrt(n + eps)."""

    def init(self, w):
        self.n = np.zeros_like(w)

    def step(self, w, gs, lr, wd):
        g1, eps = self.hp.get("gamma1", 0.9), self.hp.get("epsilon", 1e-8)
        gp = gs + wd * w
        self.n = (1 - g1) * gp * gp + g1 * self.n
        return w - lr * gp / np.sqrt(self.n + eps)


class AdaGradRef(Reference):
    """Duchi et al. with wd outside the adaptive scaling: h <- h + gs^2, w <- w - lr (gs / sqrt(h + eps) + wd w)."""

    def init(self, w):
        self.h = np.zeros_like(w)

    def step(self, w, gs, lr, wd):
        eps = self.hp.get("eps", 1e-7)
        self.h = self.h + gs * gs
        return w - lr * (gs / np.sqrt(self.h + eps) + wd * w)


class AdaDeltaRef(Reference):
    """Zeiler, as MXNet codes it: a <- rho a + (1-rho) gs^2, d = sqrt(D + eps) / sqrt(a + eps) gs,
    D <- rho D + (1-rho) d^2, w <- w - d - wd w (no learning rate anywhere)."""

    def init(self, w):
        self.a, self.D = np.zeros_like(w), np.zeros_like(w)

    def step(self, w, gs, lr, wd):
        rho, eps = self.hp.get("rho", 0.9), self.hp.get("epsilon", 1e-5)
        self.a = rho * self.a + (1 - rho) * gs * gs
        d = np.sqrt(self.D + eps) / np.sqrt(self.a + eps) * gs
        self.D = rho * self.D + (1 - rho) * d * d
        return w - d - wd * w


class LAMBRef(Reference):
    """You et al.: Adam moments of gs, u = m_hat / (sqrt(v_hat) + eps) + wd w,
    w <- w - lr (||w|| / ||u||) u (ratio 1 if either norm is 0)."""

    def init(self, w):
        self.m, self.v = np.zeros_like(w), np.zeros_like(w)

    def step(self, w, gs, lr, wd):
        b1, b2, eps = self.hp.get("beta1", 0.9), self.hp.get("beta2", 0.999), self.hp.get("epsilon", 1e-6)
        self.t += 1
        self.m = b1 * self.m + (1 - b1) * gs
        self.v = b2 * self.v + (1 - b2) * gs * gs
        u = (self.m / (1 - b1**self.t)) / (np.sqrt(self.v / (1 - b2**self.t)) + eps) + wd * w
        r1, r2 = np.linalg.norm(w), np.linalg.norm(u)
        ratio = r1 / r2 if r1 > 0 and r2 > 0 else 1.0
        return w - lr * ratio * u


class ContribAdamWRef(Reference):
    """nd.contrib.adamw_update: Adam moments of gs without bias correction,
    w <- w - eta (lr m / (sqrt(v) + eps) + wd w)."""

    def init(self, w):
        self.m, self.v = np.zeros_like(w), np.zeros_like(w)

    def step(self, w, gs, lr, wd):
        b1, b2, eps = self.hp.get("beta1", 0.9), self.hp.get("beta2", 0.999), self.hp.get("epsilon", 1e-8)
        eta = self.hp.get("eta", 1.0)
        self.m = b1 * self.m + (1 - b1) * gs
        self.v = b2 * self.v + (1 - b2) * gs * gs
        return w - eta * (lr * self.m / (np.sqrt(self.v) + eps) + wd * w)


class AdamWRef(Reference):
    """torch.optim.AdamW / optax.adamw: w <- w - lr wd w; Adam moments of gs;
    w <- w - lr m_hat / (sqrt(v_hat) + eps)."""

    def init(self, w):
        self.m, self.v = np.zeros_like(w), np.zeros_like(w)

    def step(self, w, gs, lr, wd):
        b1, b2, eps = self.hp.get("beta1", 0.9), self.hp.get("beta2", 0.999), self.hp.get("epsilon", 1e-8)
        self.t += 1
        w = w - lr * wd * w
        self.m = b1 * self.m + (1 - b1) * gs
        self.v = b2 * self.v + (1 - b2) * gs * gs
        m_hat, v_hat = self.m / (1 - b1**self.t), self.v / (1 - b2**self.t)
        return w - lr * m_hat / (np.sqrt(v_hat) + eps)


class SGDWRef(Reference):
    """Momentum SGD with decoupled decay: w <- w - lr wd w; v <- m v - lr gs; w <- w + v."""

    def init(self, w):
        self.v = np.zeros_like(w)

    def step(self, w, gs, lr, wd):
        w = w - lr * wd * w
        self.v = self.hp.get("momentum", 0.0) * self.v - lr * gs
        return w + self.v


def _contrib_adamw_class():
    """An Optimizer around `nd.contrib.adamw_update` (not registered: it is not MXNet's)."""
    global _ContribAdamW
    if _ContribAdamW is None:
        from mxwd._mx import mx, nd

        class ContribAdamW(mx.optimizer.Optimizer):
            """w <- w - eta (lr m / (sqrt(v) + eps) + wd w), m and v Adam's moments of clip(s g)."""

            def __init__(self, beta1=0.9, beta2=0.999, epsilon=1e-8, eta=1.0, **kwargs):
                super().__init__(**kwargs)
                self.beta1, self.beta2, self.epsilon, self.eta = beta1, beta2, epsilon, eta

            def create_state(self, index, weight):
                return (nd.zeros(weight.shape, weight.context, dtype=weight.dtype),
                        nd.zeros(weight.shape, weight.context, dtype=weight.dtype))

            def update(self, index, weight, grad, state):
                self._update_count(index)
                lr, wd = self._get_lr(index), self._get_wd(index)
                mean, var = state
                kwargs = {}
                if self.clip_gradient:
                    kwargs["clip_gradient"] = self.clip_gradient
                rescale = nd.full((1,), self.rescale_grad, ctx=weight.context, dtype="float32")
                nd.contrib.adamw_update(weight, grad, mean, var, rescale, out=weight, lr=lr, wd=wd,
                                        eta=self.eta, beta1=self.beta1, beta2=self.beta2,
                                        epsilon=self.epsilon, **kwargs)

        _ContribAdamW = ContribAdamW
    return _ContribAdamW


_ContribAdamW = None

# ---------------------------------------------------------------------------------------
# The table. Hyperparameters are MXNet's defaults, except momentum where the optimizer's
# point is momentum: 0.5 for the SGD family (with 0.9 at the source's lr = 0.003 and batch
# size 1 the chapter's model diverges: max |w| reaches 1.8e6 in 200 steps), and Signum's
# own default 0.9 (its steps are signs, bounded by lr).
MOMENTUM = {"momentum": 0.5}
ADAM_FLAGS = {"beta1": 0.9, "beta2": 0.999, "epsilon": 1e-8}  # MXNet's and torch's defaults

COUPLED_CLIP_FIRST = "s*g, then clip, then + wd*w (wd is never clipped)"
COUPLED_CLIP_LAST = "s*g + wd*w, then clip (the decay term is clipped too)"

OPTIMIZERS: Tuple[OptimizerSpec, ...] = (
    OptimizerSpec("sgd", "sgd", "w <- (1 - lr*wd) w - lr clip(s g)", COUPLED_CLIP_FIRST, reference=SGDRef,
                  sweep="the chapter's, as gluon.Trainer('sgd') runs it"),
    OptimizerSpec("sgd+momentum", "sgd", "v <- m v - lr (clip(s g) + wd w); w <- w + v", COUPLED_CLIP_FIRST,
                  MOMENTUM, reference=SGDRef,
                  sweep="MXNet's sgd with momentum, wd coupled: the decay passes through the momentum",
                  flags=("momentum",)),
    OptimizerSpec("nag", "nag", "v' = m v; w <- w - v' + (1+m)(v' - lr (clip(s g) + wd w)); v <- v' - lr (clip(s g) + wd w)",
                  COUPLED_CLIP_FIRST, MOMENTUM, reference=functools.partial(NAGRef, aliased=True),
                  wd_note="MXNet's in-place nag_mom_update reads the already-updated weight for the momentum's wd term, so wd is not the L2 gradient it is documented as (the penalty in the loss is unaffected)"),
    OptimizerSpec("signum", "signum", "v <- m v - (1-m)(wd w + clip(s g)); w <- (1 - lr*wd_lh) w + lr sign(v)",
                  COUPLED_CLIP_FIRST + "; wd_lh (default 0) is a separate decoupled decay", {"momentum": 0.9}),
    OptimizerSpec("signsgd", "signum", "w <- (1 - lr*wd) w - lr sign(s g)",
                  "s*g; clip_gradient is ignored; wd multiplies w outside the sign", {"momentum": 0.0}),
    OptimizerSpec("sgld", "sgld", "w <- w - lr/2 (clip(s g) + wd w) + N(0, lr)", COUPLED_CLIP_FIRST),
    OptimizerSpec("dcasgd", "dcasgd", "v <- m v - lr (clip(s g) + wd w + lamda clip(s g)^2 (w - w_prev)); w <- w + v",
                  COUPLED_CLIP_FIRST + "; the delay compensation sees clip(s g) only",
                  wd_note="the delay-compensation term lamda g^2 (w - w_prev) sees the loss gradient only, while an L2 penalty in the loss would enter it squared"),
    OptimizerSpec("lars", "lars", "lr' = lr eta ||w|| / (||clip(s g)|| + wd ||w|| + eps); then sgd+momentum with lr'",
                  COUPLED_CLIP_FIRST + "; wd also enters the layer-wise rate", MOMENTUM,
                  wd_note="wd enters the layer-wise rate as wd ||w|| beside ||g||, whereas a penalty in the loss enters as ||g + wd w||"),
    OptimizerSpec("lbsgd", "lbsgd", "sgd_mom_update with lr scaled by the warm-up multiplier",
                  COUPLED_CLIP_FIRST, MOMENTUM),
    OptimizerSpec("ccsgd", "ccsgd", "the same as sgd (a deprecated alias)", COUPLED_CLIP_FIRST),
    OptimizerSpec("adam", "adam", "g' = clip(s g + wd w); m, v <- Adam moments of g'; w <- w - lr sqrt(1-b2^t)/(1-b1^t) m/(sqrt(v)+eps)",
                  COUPLED_CLIP_LAST, ADAM_FLAGS, reference=AdamRef,
                  sweep="MXNet's, wd coupled: Adam + L2", flags=tuple(ADAM_FLAGS)),
    OptimizerSpec("adamax", "adamax", "g' = clip(s g + wd w); m <- b1 m + (1-b1) g'; u <- max(b2 u, |g'|); w <- w - lr/(1-b1^t) m/u",
                  COUPLED_CLIP_LAST),
    OptimizerSpec("nadam", "nadam", "g' = clip(s g + wd w); Nesterov-scheduled Adam on g'", COUPLED_CLIP_LAST),
    OptimizerSpec("ftml", "ftml", "g' = clip(s g + wd w); FTML's d, v, z recursions on g'; w <- -z/d", COUPLED_CLIP_LAST),
    OptimizerSpec("rmsprop", "rmsprop", "g' = clip(s g + wd w); n <- (1-g1) g'^2 + g1 n; w <- w - lr g'/sqrt(n + eps)",
                  COUPLED_CLIP_LAST, reference=RMSPropRef),
    OptimizerSpec("rmsprop-centered", "rmsprop", "g' = clip(s g + wd w); n, mean <- moments of g'; "
                  "d <- g2 d - lr g'/sqrt(n - mean^2 + eps); w <- w + d", COUPLED_CLIP_LAST, {"centered": True}),
    OptimizerSpec("adagrad", "adagrad", "h <- h + clip(s g)^2; w <- w - lr (clip(s g)/sqrt(h + eps) + wd w)",
                  "s*g, then clip; wd*w is added after the adaptive scaling", reference=AdaGradRef),
    OptimizerSpec("groupadagrad", "groupadagrad", "h_row <- h_row + mean(clip(s g)^2); w <- w - lr clip(s g)/sqrt(h_row + eps); wd must be 0",
                  "s*g, then clip; wd is refused (assert wd == 0)", weight_only=True),
    OptimizerSpec("adadelta", "adadelta", "a, D <- AdaDelta accumulators of clip(s g); d = sqrt(D+eps)/sqrt(a+eps) clip(s g); w <- w - d - wd w",
                  "s*g, then clip; wd*w is subtracted from w, not scaled by lr", reference=AdaDeltaRef,
                  wd_note="decoupled, but the decay is wd w per step with no learning rate (AdaDelta ignores learning_rate): wd >= 2 makes |1 - wd| >= 1 and the weights blow up"),
    OptimizerSpec("ftrl", "ftrl", "z <- z + clip(s g) - (sqrt(n + clip(s g)^2) - sqrt(n)) w/lr; n <- n + clip(s g)^2; "
                  "w <- (sign(z) l1 - z) / ((beta + sqrt(n))/lr + wd) [|z| > l1]",
                  "s*g, then clip; wd enters the denominator of FTRL's closed form",
                  wd_note="wd is an L2 term of FTRL's proximal problem (the denominator (beta + sqrt(n))/lr + wd), not a gradient term"),
    OptimizerSpec("lamb", "lamb", "m, v <- Adam moments of clip(s g); u = m_hat/(sqrt(v_hat)+eps) + wd w; w <- w - lr (||w||/||u||) u",
                  "s*g, then clip; wd*w is added after the adaptive scaling, inside the trust ratio", reference=LAMBRef,
                  wd_note="wd w is added to the Adam direction (decoupled from the moments) and then scaled by the trust ratio ||w||/||u||, so the decay per step is lr (||w||/||u||) wd w, not lr wd w"),
    OptimizerSpec(CONTRIB_ADAMW, CONTRIB_ADAMW, "m, v <- Adam moments of clip(s g) (no bias correction); "
                  "w <- w - eta (lr m/(sqrt(v)+eps) + wd w), eta = 1",
                  "s*g, then clip; wd*w is added after the adaptive scaling, scaled by eta, not lr",
                  {"eta": 1.0}, reference=ContribAdamWRef,
                  wd_note="decoupled, but the decay is eta wd w per step, not lr wd w: pass wd = lr * lambd for Loshchilov & Hutter's lr-scaled decay"),
)

OPTIMIZERS += (
    OptimizerSpec("adamw", "adamw", "w <- w - lr wd w; m, v <- Adam moments of clip(s g); w <- w - lr m_hat/(sqrt(v_hat)+eps)",
                  "s*g, then clip; wd*w is subtracted first, scaled by lr (mxwd.optim, torch's AdamW)",
                  ADAM_FLAGS, reference=AdamWRef, sweep="mxwd.optim, decoupled", flags=tuple(ADAM_FLAGS)),
    OptimizerSpec("sgdw", "sgdw", "w <- w - lr wd w; v <- m v - lr clip(s g); w <- w + v",
                  "s*g, then clip; wd*w is subtracted first, scaled by lr (mxwd.optim)", MOMENTUM,
                  reference=SGDWRef, sweep="mxwd.optim, decoupled", flags=("momentum",)),
)

# The sweep's second convention for decoupled decay. The rows above decay by lr_t * wd * w per
# step (torch's AdamW). Loshchilov & Hutter's convention (the lambd they call independent of the
# lr) decays by (lr_t / lr) * wd * w,
# the schedule multiplier times wd (mxwd.optim's decouple_lr=True): at a constant lr, wd * w,
# so w <- (1 - wd) w. Each variant is its row with decouple_lr fixed, under its own name, so that
# one sweep, one heatmap and one summary hold both conventions side by side. They are sweep
# entries, not atlas rows: OPTIMIZERS (what the atlas measures) stays one row per optimizer.
PAPER_SUFFIX = "-paper"
PAPER_ORDER = ("s*g, then clip; wd*w is subtracted first, scaled by the schedule multiplier lr_t/lr, "
               "not by lr (mxwd.optim with decouple_lr=True)")
PAPER_RULES = {
    "adamw": "w <- w - (lr_t/lr) wd w; m, v <- Adam moments of clip(s g); w <- w - lr m_hat/(sqrt(v_hat)+eps)",
    "sgdw": "w <- w - (lr_t/lr) wd w; v <- m v - lr clip(s g); w <- w + v",
}
SWEEP_VARIANTS: Tuple[OptimizerSpec, ...] = tuple(
    dataclasses.replace(
        row, name=row.name + PAPER_SUFFIX, rule=PAPER_RULES[row.name], order=PAPER_ORDER, reference=None,
        hyperparameters={**row.hyperparameters, "decouple_lr": True},
        sweep="mxwd.optim with decouple_lr=True, the paper's convention: the decay per step is lambd w, "
              "w <- (1 - lambd) w at a constant lr")
    for row in OPTIMIZERS if row.name in PAPER_RULES)

BY_NAME: Dict[str, OptimizerSpec] = {spec.name: spec for spec in OPTIMIZERS + SWEEP_VARIANTS}
SWEEP_OPTIMIZERS: Tuple[str, ...] = tuple(spec.name for spec in OPTIMIZERS + SWEEP_VARIANTS if spec.sweep)


def sweep_flags() -> Dict[str, Tuple[Any, Tuple[str, ...]]]:
    """Each hyperparameter flag of the sweep: (its default, the optimizers that have it).

    A flag sets every optimizer that has it alike (`--momentum 0.9`: sgd+momentum, sgdw and
    sgdw-paper), so the table gives all of them one default.
    """
    flags: Dict[str, Tuple[Any, Tuple[str, ...]]] = {}
    for name in SWEEP_OPTIMIZERS:
        for key in BY_NAME[name].flags:
            default = BY_NAME[name].hyperparameters[key]
            if key in flags and flags[key][0] != default:
                raise ValueError(f"the table gives --{key} two defaults, {flags[key][0]!r} ({', '.join(flags[key][1])}) "
                                 f"and {default!r} ({name}); allowed: one default per flag")
            flags[key] = (default, flags.get(key, (default, ()))[1] + (name,))
    return flags


def spec(name: str) -> OptimizerSpec:
    """The table's entry for `name` (see `OPTIMIZERS`), with a clear error for unknown names."""
    if name not in BY_NAME:
        raise ValueError(f"unknown optimizer {name!r}; allowed: {', '.join(BY_NAME)}")
    return BY_NAME[name]


def registered_names() -> Tuple[str, ...]:
    """MXNet's own registered optimizer names, without its 'test' optimizer (and without mxwd's)."""
    from mxwd._mx import mx

    registry = mx.optimizer.Optimizer.opt_registry
    return tuple(sorted(n for n, cls in registry.items()
                        if n != "test" and not cls.__module__.startswith("mxwd")))


def lambdas_flag(name: str) -> str:
    """The command-line option that holds an optimizer's lambdas in a sweep: --paper-lambdas
    for the paper's convention (decouple_lr), --lambdas for every other."""
    row = BY_NAME.get(name)
    return "--paper-lambdas" if row is not None and row.hyperparameters.get("decouple_lr") else "--lambdas"
