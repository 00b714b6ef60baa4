"""The chapter's exercises, answered by measurement: functions that return data.

Numbering is the book's (1..6): 1 experiment with lambd; 2 validation and leave-one-out;
3 L1 (from scratch only: Gluon's wd and the batched sweep are L2 only); 4 matrices; 5 other ways to fight overfitting;
6 the prior behind lambd.

The objective mxwd optimizes, and the ridge problem it corresponds to
---------------------------------------------------------------------
Each SGD step on a minibatch B minimizes sum_{i in B} r_i^2 / 2 + lambd ||w||^2 / 2 with
r_i = x_i . w + b - y_i, and divides the gradient by |B| (`mxwd.scratch`). One epoch takes
n_train / |B| such steps, so it follows the gradient of

    J(w, b) = sum_{i=1..n} r_i^2 / 2  +  n * lambd * ||w||^2 / 2            (1)

times lr / |B| (the same with loss_reduction="mean", whose step divides by 1 but whose
loss is already a mean). Twice (1) is scikit-learn's Ridge objective
||y - X w - b||^2 + alpha ||w||^2 with

    alpha = n_train * lambd,   b unpenalized (Ridge(fit_intercept=True) centers X and y,
                               which is the same as an unpenalized intercept).

The 1/2 of the squared loss and the 1/2 of l2_penalty cancel; the factor n_train is the
number of penalty terms per pass. (With a partial last batch and
partial_batch_penalty="per_step" the count is steps per epoch * |B| instead of n_train;
the chapter's batch size 1 has no partial batch.) The SGD runs do not reach the minimum of
(1): they start at w0 ~ N(0, 1) and stop after 10 epochs, and with p = 200 > n = 20 the
part of w0 outside the row space of X is never touched by the data gradient, only decayed
by (1 - lr lambd) per step. The closed forms below are the converged ridge answer.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np

from mxwd.config import Config, check_float, check_int, check_lambd, resolve

__all__ = ["arrays", "ridge", "loo_errors", "l1_experiment", "lasso_check", "map_lambd", "posterior_mean", "evidence", "evidence_lambd",
           "selection_regret", "matrix_check", "other_methods", "lambd_experiment", "exercises",
           "ExercisesResult", "EXERCISES", "LOO_GRID"]

EXERCISES = ("1", "2", "3", "4", "5", "6")
LOO_GRID = tuple(float(v) for v in np.logspace(-3, 4, 29))  # lambd 1e-3 .. 1e4, 4 a decade (closed form: no lr bound)


# ---------------------------------------------------------------------------------------
# Data as float64 NumPy arrays (the chapter's draws, from make_data)


def arrays(config: Optional[Config] = None, seed: Optional[int] = None) -> Tuple[np.ndarray, ...]:
    """(X_train, y_train, X_test, y_test) in float64, y of shape (n,): make_data's draws."""
    from mxwd.data import make_data

    data = make_data(config, seed)
    f = lambda a: a.asnumpy().astype(np.float64)  # noqa: E731
    return (f(data.train_features), f(data.train_labels).ravel(),
            f(data.test_features), f(data.test_labels).ravel())


def _check_lambdas(lambdas: Any, name: str = "lambdas") -> Tuple[float, ...]:
    if isinstance(lambdas, (str, bytes)) or not hasattr(lambdas, "__iter__"):
        raise ValueError(f"{name} must be a sequence of numbers >= 0, got {lambdas!r}")
    out = tuple(check_lambd(v, name) for v in lambdas)
    if not out:
        raise ValueError(f"{name} must hold at least one value, got an empty sequence")
    return out


# ---------------------------------------------------------------------------------------
# Exercise 2: ridge in closed form and its exact leave-one-out errors


def ridge(X: np.ndarray, y: np.ndarray, alpha: float) -> Tuple[np.ndarray, float]:
    """argmin ||y - X w - b||^2 + alpha ||w||^2 with b unpenalized, in closed form.

    Center: Xc = X - mean(X), yc = y - mean(y); then (dual form, cheap for p > n)
    w = Xc^T (Xc Xc^T + alpha I)^-1 yc  (= (Xc^T Xc + alpha I)^-1 Xc^T yc), b = mean(y) - mean(X) . w.
    alpha = 0 gives the minimum-norm least-squares solution (pseudo-inverse).
    """
    alpha = check_lambd(alpha, "alpha")
    X, y = np.asarray(X, dtype=np.float64), np.asarray(y, dtype=np.float64).ravel()
    xm, ym = X.mean(axis=0), y.mean()
    Xc, yc = X - xm, y - ym
    K = Xc @ Xc.T
    if alpha > 0:
        w = Xc.T @ np.linalg.solve(K + alpha * np.eye(len(y)), yc)
    else:
        w = np.linalg.pinv(Xc) @ yc
    return w, float(ym - xm @ w)


def _hat(X: np.ndarray, alpha: float) -> np.ndarray:
    """Hat matrix of ridge with an unpenalized intercept: H = 11^T / n + Xc (Xc^T Xc + alpha I)^-1 Xc^T."""
    n = X.shape[0]
    Xc = X - X.mean(axis=0)
    K = Xc @ Xc.T
    inner = K @ np.linalg.solve(K + alpha * np.eye(n), np.eye(n)) if alpha > 0 else K @ np.linalg.pinv(K)
    return np.full((n, n), 1.0 / n) + inner


def loo_residuals(X: np.ndarray, y: np.ndarray, alpha: float) -> np.ndarray:
    """Exact leave-one-out residuals y_i - f_{-i}(x_i) of ridge with penalty weight alpha.

    The fit is linear in y, y_hat = H y, and minimizes ||y - Z beta||^2 + beta^T P beta with
    Z = [X, 1], P = diag(alpha I, 0). Removing row i (Sherman-Morrison on Z^T Z + P) gives
    the refit's residual on x_i exactly: (y_i - y_hat_i) / (1 - H_ii). alpha stays the same
    on the n - 1 rows of each fold, as in scikit-learn's RidgeCV(cv=None).
    """
    y = np.asarray(y, dtype=np.float64).ravel()
    H = _hat(X, alpha)
    return (y - H @ y) / (1.0 - np.diag(H))


def loo_errors(config: Optional[Config] = None, seed: Optional[int] = None,
               lambdas: Sequence[float] = LOO_GRID) -> np.ndarray:
    """Exact leave-one-out loss of the converged ridge model, one value per lambd.

    Each value is mean_i (y_i - f_{-i}(x_i))^2 / 2 (the chapter's squared_loss, so it is on
    the scale of its test loss), where f_{-i} is ridge refit on the other n_train - 1
    training rows with the penalty's weight held fixed at alpha = n_train * lambd (see the
    module docstring: the weight of (1) on the full training set). scikit-learn's RidgeCV
    computes its LOO errors the same way (alpha fixed across folds); its cv_results_ are
    squared errors, twice these.
    """
    config = resolve(config, seed)
    lambdas = _check_lambdas(lambdas)
    X, y, _, _ = arrays(config)
    n = config.n_train
    return np.array([np.mean(loo_residuals(X, y, n * lam) ** 2) / 2 for lam in lambdas])


# ---------------------------------------------------------------------------------------
# Exercise 6: the prior, MAP and the evidence


def map_lambd(noise: float, prior_std: float, n_train: int) -> float:
    """The lambd whose minimum of mxwd's objective is the MAP estimate: noise^2 / (n_train prior_std^2).

    Model: y_i = x_i . w + b + eps_i, eps_i ~ N(0, s^2) (s = noise), prior w ~ N(0, s_w^2 I)
    (s_w = prior_std), flat prior on b. The negative log posterior is, up to a constant,

        sum_i r_i^2 / (2 s^2) + ||w||^2 / (2 s_w^2)
        = (1 / s^2) [ sum_i r_i^2 / 2 + (s^2 / s_w^2) ||w||^2 / 2 ].

    mxwd minimizes, over an epoch, sum_i r_i^2 / 2 + n_train lambd ||w||^2 / 2 (equation (1)
    of the module docstring: the penalty is added at every one of the n_train examples).
    Equal minimizers: n_train lambd = s^2 / s_w^2, so lambd = s^2 / (n_train s_w^2)
    (scikit-learn's alpha = s^2 / s_w^2).
    """
    noise = check_float(noise, "noise", minimum=0.0)
    prior_std = check_float(prior_std, "prior_std", minimum=0.0, strict=True)
    n_train = check_int(n_train, "n_train", minimum=1)
    return noise ** 2 / (n_train * prior_std ** 2)


def posterior_mean(X: np.ndarray, y: np.ndarray, noise: float, prior_std: float) -> Tuple[np.ndarray, float]:
    """Posterior mean of (w, b) under N(0, noise^2) noise, w ~ N(0, prior_std^2 I), flat b.

    Gaussian likelihood times Gaussian prior: with Z = [X, 1] and prior precision
    P = diag(I / prior_std^2, 0), the posterior is N(m, A^-1) with
    A = Z^T Z / noise^2 + P and m = A^-1 Z^T y / noise^2. Computed here in that primal form
    (a (p + 1)-square solve), independently of `ridge`; it equals ridge with
    alpha = noise^2 / prior_std^2 (multiply A by noise^2).
    """
    noise = check_float(noise, "noise", minimum=0.0, strict=True)
    prior_std = check_float(prior_std, "prior_std", minimum=0.0, strict=True)
    X, y = np.asarray(X, dtype=np.float64), np.asarray(y, dtype=np.float64).ravel()
    Z = np.hstack([X, np.ones((len(y), 1))])
    P = np.diag(np.r_[np.full(X.shape[1], 1.0 / prior_std ** 2), 0.0])
    m = np.linalg.solve(Z.T @ Z / noise ** 2 + P, Z.T @ y / noise ** 2)
    return m[:-1], float(m[-1])


@dataclass(frozen=True)
class Evidence:
    """MacKay's evidence maximum: noise precision alpha_, weight precision lambda_ (sklearn's names)."""

    alpha_: float  # 1 / noise variance
    lambda_: float  # 1 / prior variance of each w_j
    n_iter: int
    n_train: int

    @property
    def ridge_alpha(self) -> float:
        """lambda_ / alpha_ = noise^2 / prior_std^2: scikit-learn's Ridge alpha."""
        return self.lambda_ / self.alpha_

    @property
    def lambd(self) -> float:
        """The chapter's lambd: ridge_alpha / n_train (see map_lambd)."""
        return self.ridge_alpha / self.n_train


def evidence(X: np.ndarray, y: np.ndarray, alpha_1: float = 1e-6, alpha_2: float = 1e-6,
             lambda_1: float = 1e-6, lambda_2: float = 1e-6, max_iter: int = 10000,
             tol: float = 1e-12) -> Evidence:
    """Maximize the marginal likelihood over both precisions (MacKay 1992), as BayesianRidge does.

    Model: y = Xc w + b + eps, eps ~ N(0, 1 / alpha_), w ~ N(0, I / lambda_), with Gamma
    hyperpriors (shape, rate) = (alpha_1, alpha_2) on alpha_ and (lambda_1, lambda_2) on
    lambda_ (scikit-learn's defaults, 1e-6). Intercept as BayesianRidge(fit_intercept=True):
    X and y are centered first and n (not n - 1) counts the data. With s_k the squared
    singular values of Xc and m the ridge solution at lambda_ / alpha_, the fixed point is

        gamma = sum_k alpha_ s_k / (lambda_ + alpha_ s_k)           (well-determined directions)
        lambda_ <- (gamma + 2 lambda_1) / (||m||^2 + 2 lambda_2)
        alpha_  <- (n - gamma + 2 alpha_1) / (||yc - Xc m||^2 + 2 alpha_2)

    from alpha_ = 1 / var(y), lambda_ = 1, until sum |m_old - m| < tol.

    With p >= n the hyperpriors matter: Xc Xc^T is nearly p I, so the marginal covariance
    of y, I / alpha_ + Xc Xc^T / lambda_, is nearly (1 / alpha_ + p / lambda_) I: the
    evidence sees one combination of the two precisions only, and with hyperpriors 0 its
    maximum runs off to alpha_ -> infinity (no noise: interpolation, lambd -> 0).
    """
    X, y = np.asarray(X, dtype=np.float64), np.asarray(y, dtype=np.float64).ravel()
    n = len(y)
    Xc, yc = X - X.mean(axis=0), y - y.mean()
    U, s, Vt = np.linalg.svd(Xc, full_matrices=False)
    ev = s ** 2
    uy = U.T @ yc

    def coef(alpha: float, lam: float) -> np.ndarray:  # ridge at lam / alpha: V diag(s / (s^2 + lam/alpha)) U^T yc
        return Vt.T @ (s / (ev + lam / alpha) * uy)

    alpha, lam = 1.0 / (np.var(y) + np.finfo(np.float64).eps), 1.0
    old = None
    it = 0
    for it in range(1, max_iter + 1):
        m = coef(alpha, lam)
        rss = float(np.sum((yc - Xc @ m) ** 2))
        gamma = float(np.sum(alpha * ev / (lam + alpha * ev)))
        lam = (gamma + 2 * lambda_1) / (float(m @ m) + 2 * lambda_2)
        alpha = (n - gamma + 2 * alpha_1) / (rss + 2 * alpha_2)
        if old is not None and np.sum(np.abs(old - m)) < tol:
            break
        old = m
    return Evidence(alpha_=float(alpha), lambda_=float(lam), n_iter=it, n_train=n)


def evidence_lambd(config: Optional[Config] = None, seed: Optional[int] = None, **hyperpriors: float) -> float:
    """The evidence-maximizing lambd on the training set of `seed`, in the chapter's convention:
    lambd = lambda_ / (alpha_ n_train) (both precisions estimated, see `evidence`; hyperpriors
    alpha_1, alpha_2, lambda_1, lambda_2 as BayesianRidge's, default 1e-6)."""
    config = resolve(config, seed)
    allowed = ("alpha_1", "alpha_2", "lambda_1", "lambda_2")
    for name, value in hyperpriors.items():
        if name not in allowed:
            raise ValueError(f"unknown hyperprior {name!r}; allowed: {', '.join(allowed)}")
        check_float(value, name, minimum=0.0)
    X, y, _, _ = arrays(config)
    return evidence(X, y, **hyperpriors).lambd


# ---------------------------------------------------------------------------------------
# Exercise 2 and 6: how well each rule picks lambd for the chapter's SGD models


def selection_regret(config: Optional[Config] = None, seeds: Any = 10,
                     lambdas: Optional[Sequence[float]] = None, n_valid: int = 5) -> Dict[str, Any]:
    """Per seed, the lambd each rule picks on the sweep's grid and its regret.

    Rules: "validation" (train on n_train - n_valid rows, score the rest: mxwd sweep's
    n_valid), "loo" (argmin of loo_errors on the grid), "evidence" (the grid value nearest
    evidence_lambd in log), "test_optimal" (the oracle). Regret of a pick = the SGD model's
    final test loss at it / the seed's best final test loss on the grid - 1 (so the
    oracle's is 0). The models are the chapter's (mxwd.sweep, fast engine). "ridge_median_regret"
    scores the same picks on the converged ridge models (closed form, started from 0), against
    the best ridge test loss on the grid: the models LOO and the evidence describe.
    """
    from mxwd.sweeps import DEFAULT_GRID, sweep

    config = resolve(config, None)
    lambdas = _check_lambdas(DEFAULT_GRID if lambdas is None else lambdas)
    result = sweep(lambdas, seeds, config, n_valid=n_valid)
    test = result.final_test_ls  # (S, L)
    valid = result.validation.valid_ls if result.validation is not None else None
    grid = np.array(lambdas)
    picks: Dict[str, List[int]] = {"validation": [], "loo": [], "evidence": [], "test_optimal": []}
    evid: List[float] = []
    ridge_test = np.empty_like(test)  # (S, L): test loss of the converged ridge model at each lambd
    for s, seed in enumerate(result.seeds):
        c = config.replace(seed=seed)
        X, y, Xt, yt = arrays(c)
        for j, lam in enumerate(lambdas):
            w, b = ridge(X, y, c.n_train * lam)
            ridge_test[s, j] = np.mean((Xt @ w + b - yt) ** 2) / 2
        if valid is not None:
            picks["validation"].append(int(np.nanargmin(np.where(result.validation.diverged[s], np.nan, valid[s]))))
        picks["loo"].append(int(np.argmin(loo_errors(c, None, lambdas))))
        lam_e = evidence_lambd(c)
        evid.append(lam_e)
        positive = np.where(grid > 0, grid, np.nan)
        target = math.log(lam_e) if lam_e > 0 else -math.inf  # lambd 0: the smallest grid value
        picks["evidence"].append(int(np.nanargmin(np.abs(np.log(positive) - target)))
                                 if lam_e > 0 else int(np.nanargmin(positive)))
        picks["test_optimal"].append(int(np.nanargmin(test[s])))
    best = np.nanmin(test, axis=1)
    rules = {}
    for rule, idx in picks.items():
        if not idx:
            continue
        regret = np.array([test[s, j] / best[s] - 1 for s, j in enumerate(idx)])
        ridge_regret = np.array([ridge_test[s, j] / ridge_test[s].min() - 1 for s, j in enumerate(idx)])
        chosen = [lambdas[j] for j in idx]
        rules[rule] = {
            "lambd": chosen,
            "regret": regret.tolist(),
            "median_regret": float(np.nanmedian(regret)),
            "p90_regret": float(np.nanpercentile(regret, 90)),
            "ridge_median_regret": float(np.median(ridge_regret)),  # the same picks, for converged ridge models
            "at_grid_edge": int(sum(j in (0, len(lambdas) - 1) for j in idx)),
        }
    return {"seeds": list(result.seeds), "lambdas": list(lambdas), "n_valid": n_valid,
            "evidence_lambd": evid, "rules": rules}


# ---------------------------------------------------------------------------------------
# Exercise 3: L1


L1_GRID = (0.01, 0.1, 0.3, 1.0, 2.0, 3.0, 5.0, 10.0, 30.0, 100.0, 300.0)  # lr * lambd < 1 at lr 0.003


def l1_experiment(config: Optional[Config] = None, seeds: Any = 3,
                  lambdas: Sequence[float] = L1_GRID) -> Dict[str, Any]:
    """The chapter's runs with lambd ||w||_1 instead of lambd ||w||^2 / 2, both L1 steps.

    For each step ("subgradient", "proximal": see mxwd.scratch) and lambd, over seeds: the
    median final test loss and the median count of exact zeros in w (of num_inputs); L2 on
    the same grid (mxwd.sweep, the same models as fit_and_plot) beside them. Each penalty's
    best lambd is the one of least median test loss. Expectation: the true w is dense
    (0.01 everywhere), so L1's bias towards sparse w should not help it beat L2; the
    measured answer is that at the chapter's 10 epochs from w0 ~ N(0, 1) both are best when
    they shrink w0 (almost) to 0, i.e. when the model predicts about the mean.
    """
    from mxwd.scratch import fit_and_plot
    from mxwd.sweeps import as_seeds, sweep

    config = resolve(config, None)
    seeds = tuple(as_seeds(seeds, config.seed))
    lambdas = _check_lambdas(lambdas)
    out: Dict[str, Any] = {"seeds": list(seeds), "lambdas": list(lambdas), "num_inputs": config.num_inputs}
    l2 = sweep(lambdas, seeds, config.replace(penalty="l2"), n_valid=0)
    l2_med = np.nanmedian(l2.final_test_ls, axis=0)
    l2_zeros = np.median((l2.grid.w == 0).sum(axis=-1), axis=0)
    out["l2"] = {"median_test_ls": l2_med.tolist(), "median_zeros": l2_zeros.tolist()}
    for step in ("subgradient", "proximal"):
        c = config.replace(penalty="l1", l1_step=step)
        test = np.empty((len(seeds), len(lambdas)))
        zeros = np.empty_like(test)
        for i, seed in enumerate(seeds):
            for j, lam in enumerate(lambdas):
                r = fit_and_plot(lam, c, seed=seed)
                test[i, j] = r.final_test_ls
                zeros[i, j] = int(np.sum(np.asarray(r.w) == 0))
        out[step] = {"median_test_ls": np.median(test, axis=0).tolist(),
                     "median_zeros": np.median(zeros, axis=0).tolist()}
    for key in ("l2", "subgradient", "proximal"):
        med = np.asarray(out[key]["median_test_ls"])
        j = int(np.nanargmin(med))
        out[key].update(best_lambd=lambdas[j], best_median_test_ls=float(med[j]),
                        zeros_at_best=float(out[key]["median_zeros"][j]))
    mean_only = []  # w = 0, b = mean(y): the model that predicts the training mean
    for seed in seeds:
        _, y, _, yt = arrays(config, seed)
        mean_only.append(np.mean((y.mean() - yt) ** 2) / 2)
    out["mean_only_test_ls"] = float(np.median(mean_only))
    return out


def lasso_check(config: Optional[Config] = None, lambd: float = 0.05, num_epochs: int = 600) -> Dict[str, Any]:
    """A converged full-batch proximal run against scikit-learn's Lasso(alpha = lambd).

    Full batch (|B| = n), lr 0.05 (< 2 / L, L = the largest eigenvalue of X^T X / n, about
    17 here), w0 ~ N(0, 1e-3^2), float64: each step is ISTA on
    (1 / n) sum r^2 / 2 + lambd ||w||_1, which is Lasso's (1 / (2n)) ||y - X w - b||^2 +
    alpha ||w||_1 with alpha = lambd (mxwd's epoch objective (1) with ||w||_1, divided by
    n), b unpenalized (fit_intercept=True).
    """
    from sklearn.linear_model import Lasso

    from mxwd.scratch import fit_and_plot

    config = resolve(config, None)
    lambd = check_lambd(lambd)
    c = config.replace(penalty="l1", l1_step="proximal", batch_size=config.n_train, lr=0.05,
                       num_epochs=check_int(num_epochs, "num_epochs", minimum=1), dtype="float64", init_scale=1e-3)
    r = fit_and_plot(lambd, c)
    X, y, _, _ = arrays(c)
    la = Lasso(alpha=lambd, tol=1e-15, max_iter=1_000_000).fit(X, y)
    w = np.asarray(r.w)
    return {"lambd": lambd, "lasso_alpha": lambd, "num_epochs": c.num_epochs,
            "max_abs_w_difference": float(np.max(np.abs(w - la.coef_))), "b_difference": float(r.b - la.intercept_),
            "zeros": int(np.sum(w == 0)), "lasso_zeros": int(np.sum(la.coef_ == 0)),
            "same_support": bool(np.array_equal(w == 0, la.coef_ == 0))}


# ---------------------------------------------------------------------------------------
# Exercise 4: matrices


def matrix_check(config: Optional[Config] = None, seed: Optional[int] = None, k: int = 3,
                 wd: float = 5.0) -> Dict[str, Any]:
    """A k-output linear model, W of shape (num_inputs, k): the penalty is the Frobenius norm.

    1. ||W||_F^2 = sum_jk W_jk^2 = tr(W^T W): the chapter's penalty 2 * l2_penalty(W)
       ((W**2).sum()), the trace and numpy's Frobenius norm, on W ~ N(0, init_scale^2).
    2. One step of gluon.Trainer('sgd', wd) on nn.Dense(k) (the decay policy's weight
       decayed, the bias not) against the scratch step that adds wd * ||W||_F^2 / 2 per
       example to the loss and differentiates it with autograd (lr, wd and 1 / batch rounded
       to float32, as MXNet passes them): equal up to the float32 rounding of MXNet's decay
       coefficient (sgd_update holds lr and wd as float32 and forms 1 - lr wd in float32),
       at most about 2^-24 max|W| per entry; with wd = 0 the steps agree to float64 rounding. Gluon's wd
       on a matrix weight is the gradient wd * W of the Frobenius penalty.
    Computed in float64 (config.dtype is overridden).
    """
    from mxwd._mx import autograd, init, mx, nd, nn
    from mxwd.decay import l2_penalty
    from mxwd.policy import decay_policy

    config = resolve(config, seed).replace(dtype="float64")
    k = check_int(k, "k", minimum=1)
    wd = check_lambd(wd, "wd")
    X, y1, _, _ = arrays(config)
    rng = np.random.default_rng(config.seed)
    Y = np.column_stack([y1] + [y1 + rng.normal(0, 0.1, len(y1)) for _ in range(k - 1)])
    mx.random.seed(config.seed)
    net = nn.Dense(k, in_units=config.num_inputs)
    net.initialize(init.Normal(sigma=config.init_scale))
    net.cast("float64")
    W = net.weight.data().asnumpy().T.copy()  # (num_inputs, k), as the exercise writes it
    frob = {"sum_of_squares": float(2 * l2_penalty(nd.array(W, dtype="float64")).asscalar()),
            "trace": float(np.trace(W.T @ W)),
            "frobenius_sq": float(np.linalg.norm(W, "fro") ** 2)}
    policy = decay_policy(net)
    Xn, Yn = nd.array(X, dtype="float64"), nd.array(Y, dtype="float64")
    lr, batch = config.lr, X.shape[0]
    # scratch: the Frobenius penalty in the loss, through the policy's decayed parameters
    params = {name: nd.array(p.data().asnumpy(), dtype="float64") for name, p in net.collect_params().items()}
    for p in params.values():
        p.attach_grad()
    wname = next(n for n in params if n.endswith("weight"))
    bname = next(n for n in params if n.endswith("bias"))
    with autograd.record():
        out = nd.dot(Xn, params[wname], transpose_b=True) + params[bname]
        l = ((out - Yn) ** 2 / 2).sum() + batch * wd * policy.penalty(params)
    l.backward()
    # MXNet's sgd_update receives lr, wd and rescale_grad = 1 / batch as float32 numbers
    lr32, scale32 = float(np.float32(lr)), float(np.float32(1.0 / batch))
    scratch = {n: params[n].asnumpy() - lr32 * params[n].grad.asnumpy() * scale32 for n in params}
    # Gluon: the penalty through the optimizer's wd
    trainers = policy.trainers(net, lambda rate: mx.optimizer.SGD(learning_rate=lr, wd=rate), wd)
    with autograd.record():  # not gluon.loss.L2Loss: it averages over the k outputs
        l = ((net(Xn) - Yn) ** 2 / 2).sum()
    l.backward()
    for t in trainers:
        t.step(batch)
    gluon_params = {n: p.data().asnumpy() for n, p in net.collect_params().items()}
    diff = max(float(np.max(np.abs(gluon_params[n] - scratch[n]))) for n in params)
    decay_term = float(np.max(np.abs(lr * wd * W.T)))
    return {"k": k, "shape": [config.num_inputs, k], "wd": wd, "lr": lr, **frob, "max_abs_W": float(np.max(np.abs(W))),
            "decayed": [n for n in params if policy.is_decayed(n)],
            "max_abs_step_difference": diff, "max_abs_decay_term": decay_term}


# ---------------------------------------------------------------------------------------
# Exercise 1: the lambd experiment (the sweep answers it)


def lambd_experiment(config: Optional[Config] = None, seeds: Any = 10,
                     lambdas: Optional[Sequence[float]] = None) -> Dict[str, Any]:
    """Median final train and test loss against lambd across seeds (mxwd.sweep, n_valid 0)."""
    from mxwd.sweeps import DEFAULT_GRID, sweep

    config = resolve(config, None)
    lambdas = _check_lambdas(DEFAULT_GRID if lambdas is None else lambdas)
    r = sweep(lambdas, seeds, config, n_valid=0)
    train, test = r.band("final_train_ls"), r.band("final_test_ls")
    j = int(np.nanargmin(test.median))
    return {"seeds": list(r.seeds), "lambdas": list(lambdas),
            "median_train_ls": train.median.tolist(), "median_test_ls": test.median.tolist(),
            "test_p10": test.low.tolist(), "test_p90": test.high.tolist(),
            "best_lambd": lambdas[j], "best_median_test_ls": float(test.median[j]),
            "median_test_ls_at_0": float(test.median[0]) if lambdas[0] == 0 else None}


# ---------------------------------------------------------------------------------------
# Exercise 5: other ways than weight decay


class _PerturbedModel:
    """The scratch model (lambd = 0) trained on perturbed inputs: Gaussian noise or dropout.

    "noise": x <- x + e, e ~ N(0, level^2 I), fresh each step. In expectation over e the
    per-example loss gains level^2 ||w||^2 / 2 (Bishop 1995): ridge with lambd = level^2.
    "dropout": x_j <- m_j x_j / (1 - level), m_j ~ Bernoulli(1 - level): in expectation
    the loss gains level / (1 - level) sum_j x_j^2 w_j^2 / 2 (Wager et al. 2013), a
    data-dependent L2 penalty, lambd ~ level / (1 - level) for E x_j^2 = 1.
    Only the inputs of steps are perturbed; losses are measured on the clean data.
    """

    def __init__(self, base, kind: str, level: float, seed: int):
        self.base, self.kind, self.level = base, kind, level
        self.rng = np.random.default_rng([seed, 5])  # its own generator: the batch order is untouched

    def step(self, X, y):
        from mxwd._mx import nd

        x = X.asnumpy()
        if self.kind == "noise":
            x = x + self.rng.normal(0.0, self.level, x.shape)
        else:
            x = x * (self.rng.random(x.shape) >= self.level) / (1.0 - self.level)
        self.base.step(nd.array(x, dtype=X.dtype), y)

    def loss(self, X, y):
        return self.base.loss(X, y)

    def get_params(self):
        return self.base.get_params()

    def set_params(self, w, b):
        self.base.set_params(w, b)


def _perturbed_fit(config: Config, kind: str, level: float):
    from mxwd.data import make_data
    from mxwd.scratch import ScratchModel, init_params
    from mxwd.training import train

    data = make_data(config)
    base = ScratchModel(init_params(config), 0.0, config)
    return train(_PerturbedModel(base, kind, level, config.seed), data, config, 0.0, path="scratch")


def other_methods(config: Optional[Config] = None, seeds: Any = 5,
                  noise_levels: Sequence[float] = (0.3, 0.6, 1.0, 1.3),
                  dropout_rates: Sequence[float] = (0.2, 0.4, 0.6, 0.7)) -> Dict[str, Any]:
    """Each method's median (over seeds) final test loss at its best setting, and its cost.

    weight decay: the sweep's best lambd; early stopping: lambd = 0, the best epoch (by test
    loss: an oracle bound); more data: n_train = 200, lambd = 0; input noise and input
    dropout at each level (the best level by median test loss). Cost: SGD steps (examples
    seen), and labelled examples used. Stability bounds the perturbations: a step multiplies
    w by I - lr z z^T, stable only while lr ||z||^2 < 2, and ||z||^2 ~ p (1 + level^2)
    (noise) or p / (1 - level) (dropout): at lr 0.003, p 200 that caps the equivalent lambd
    near 2, whereas weight decay is stable up to lambd = 2 / lr = 667.
    """
    from mxwd.sweeps import DEFAULT_GRID, as_seeds, sweep
    from mxwd.training import DivergenceError

    config = resolve(config, None)
    seeds = tuple(as_seeds(seeds, config.seed))
    steps = config.steps
    out: Dict[str, Any] = {"seeds": list(seeds)}
    wdr = sweep(DEFAULT_GRID, seeds, config, n_valid=0)
    med = wdr.band("final_test_ls").median
    j = int(np.nanargmin(med))
    out["weight_decay"] = {"setting": {"lambd": DEFAULT_GRID[j]}, "median_test_ls": float(med[j]),
                           "steps": steps, "labelled_examples": config.n_train}
    base = sweep((0.0,), seeds, config, n_valid=0)
    out["none"] = {"setting": {"lambd": 0.0}, "median_test_ls": float(np.nanmedian(base.final_test_ls[:, 0])),
                   "steps": steps, "labelled_examples": config.n_train}
    longer = config.replace(num_epochs=max(config.num_epochs, 50))
    es = sweep((0.0,), seeds, longer, n_valid=0).grid.test_ls[:, 0, :]  # (S, E)
    curve = np.nanmedian(es, axis=0)
    e = int(np.nanargmin(curve))
    out["early_stopping"] = {"setting": {"epoch": e + 1, "of_epochs": longer.num_epochs},
                             "median_test_ls": float(curve[e]), "median_test_ls_by_epoch": curve.tolist(),
                             "steps": (e + 1) * longer.n_train, "labelled_examples": config.n_train}
    big = config.replace(n_train=200)
    more = sweep((0.0,), seeds, big, n_valid=0)
    out["more_data"] = {"setting": {"n_train": 200, "lambd": 0.0},
                        "median_test_ls": float(np.nanmedian(more.final_test_ls[:, 0])),
                        "steps": big.steps, "labelled_examples": 200}
    for kind, levels, eq in (("input_noise", noise_levels, lambda v: v ** 2),
                             ("input_dropout", dropout_rates, lambda v: v / (1 - v))):
        rows = []
        for level in levels:
            level = check_float(level, kind, minimum=0.0)
            if kind == "input_dropout" and level >= 1:
                raise ValueError(f"dropout_rates must be in [0, 1), got {level!r}")
            losses = []
            for s in seeds:
                try:
                    losses.append(_perturbed_fit(config.replace(seed=s), kind.split("_")[1], level).final_test_ls)
                except DivergenceError:
                    losses.append(float("nan"))
            n_div = int(np.sum(np.isnan(losses)))
            rows.append({"level": level, "equivalent_lambd": eq(level),
                         "median_test_ls": float(np.nanmedian(losses)) if n_div < len(losses) else None,
                         "diverged": n_div})
        ok = [r for r in rows if r["median_test_ls"] is not None and r["diverged"] == 0]
        best = min(ok, key=lambda r: r["median_test_ls"]) if ok else None
        out[kind] = {"setting": {"level": best["level"] if best else None,
                                 "equivalent_lambd": best["equivalent_lambd"] if best else None},
                     "median_test_ls": best["median_test_ls"] if best else None, "levels": rows,
                     "steps": steps * len(levels), "labelled_examples": config.n_train}
    return out


# ---------------------------------------------------------------------------------------
# All of them


@dataclass(frozen=True)
class ExercisesResult:
    """The answers, keyed "1".."6" (the book's numbering); a missing key was not run."""

    config: Config
    answers: Dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> Dict[str, Any]:
        return {key: self.answers[key] for key in EXERCISES if key in self.answers}

    def table(self) -> str:
        """A markdown summary of the measured answers."""
        a = self.answers
        lines = ["| exercise | measured |", "|---|---|"]
        if "1" in a:
            e = a["1"]
            lines.append(f"| 1 lambd | median test loss {e['median_test_ls'][0]:.4g} at lambd {e['lambdas'][0]:g}, "
                         f"best {e['best_median_test_ls']:.4g} at lambd {e['best_lambd']:.4g} "
                         f"({len(e['seeds'])} seeds) |")
        if "2" in a:
            r = a["2"]["selection"]["rules"]
            parts = [f"{k}: median regret {100 * v['median_regret']:.3g}% (p90 {100 * v['p90_regret']:.3g}%, "
                     f"{v['at_grid_edge']} at an edge; on ridge models {100 * v['ridge_median_regret']:.3g}%)"
                     for k, v in r.items()]
            lines.append(f"| 2 selection | {'; '.join(parts)}; LOO on lambd 1e-3..1e4 picks an edge for "
                         f"{a['2']['loo_wide_grid_edges']} of {len(a['2']['selection']['seeds'])} seeds; "
                         f"nonzero eigenvalues of Xc Xc^T in [{a['2']['gram_eigenvalue_range'][0]:.3g}, "
                         f"{a['2']['gram_eigenvalue_range'][1]:.3g}] (p = {self.config.num_inputs}) |")
        if "3" in a:
            e = a["3"]
            parts = [f"{k}: best lambd {e[k]['best_lambd']:g}, median test loss {e[k]['best_median_test_ls']:.4g}, "
                     f"{e[k]['zeros_at_best']:g} of {e['num_inputs']} weights exactly 0" for k in ("l2", "subgradient", "proximal")]
            lc = e["lasso"]
            lines.append(f"| 3 L1 | {'; '.join(parts)}; w = 0 (mean only): {e['mean_only_test_ls']:.4g}; "
                         f"full-batch proximal vs Lasso(alpha={lc['lasso_alpha']:g}): max |dw| {lc['max_abs_w_difference']:.2g}, "
                         f"same support {lc['same_support']} |")
        if "4" in a:
            m = a["4"]
            lines.append(f"| 4 matrices | sum of squares {m['sum_of_squares']:.10g}, tr(W^T W) {m['trace']:.10g}, "
                         f"||W||_F^2 {m['frobenius_sq']:.10g}; Gluon wd step - Frobenius-gradient step: "
                         f"{m['max_abs_step_difference']:.2g} (decay term {m['max_abs_decay_term']:.2g}) |")
        if "5" in a:
            o = a["5"]
            parts = []
            for name in ("none", "weight_decay", "early_stopping", "more_data", "input_noise", "input_dropout"):
                v = o[name]
                t = "n/a" if v["median_test_ls"] is None else f"{v['median_test_ls']:.4g}"
                parts.append(f"{name} {t} ({_setting(v['setting'])}; {v['steps']} steps, {v['labelled_examples']} examples)")
            lines.append(f"| 5 other ways | median test loss: {'; '.join(parts)} |")
        if "6" in a:
            b = a["6"]
            sg, rg = b["median_sgd_test_ls_at_map"], b["median_ridge_test_ls_at_map"]
            lines.append(f"| 6 prior | MAP lambd for prior N(0, 0.01^2): {b['map_lambd_code_noise']:.4g} (noise 0.01), "
                         f"{b['map_lambd_prose_noise']:.4g} (noise 0.1), book 5; median test loss there: SGD "
                         f"{sg['code_noise']:.4g} / {sg['prose_noise']:.4g}, converged ridge {rg['code_noise']:.4g} / "
                         f"{rg['prose_noise']:.4g}; evidence lambd median {b['median_evidence_lambd']:.4g} (set by "
                         f"BayesianRidge's hyperprior alpha_2 = 1e-6); max |posterior mean - ridge| "
                         f"{b['posterior_vs_ridge']:.2g} |")
        return "\n".join(lines)


def _setting(s: Dict[str, Any]) -> str:
    return ", ".join(f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}" for k, v in s.items())


def _exercise_2(config: Config, seeds: Sequence[int]) -> Dict[str, Any]:
    selection = selection_regret(config, list(seeds))
    edges = 0
    for s in seeds:
        j = int(np.argmin(loo_errors(config.replace(seed=s), None, LOO_GRID)))
        edges += j in (0, len(LOO_GRID) - 1)
    X, y, _, _ = arrays(config)
    Xc = X - X.mean(axis=0)
    K = Xc @ Xc.T
    off = K[~np.eye(len(K), dtype=bool)]
    eig = np.linalg.eigvalsh(K)[1:]  # the smallest is 0: centering removes one dimension
    return {"alpha_mapping": "sklearn alpha = n_train * lambd, intercept unpenalized (fit_intercept=True)",
            "selection": selection, "loo_wide_grid": list(LOO_GRID), "loo_wide_grid_edges": int(edges),
            "loo_at_seed": loo_errors(config, None, LOO_GRID).tolist(),
            "gram_diag_mean": float(np.mean(np.diag(K))), "gram_offdiag_rms": float(np.sqrt(np.mean(off ** 2))),
            "gram_eigenvalue_range": [float(eig.min()), float(eig.max())]}


def _exercise_6(config: Config, seeds: Sequence[int], selection: Optional[Dict[str, Any]]) -> Dict[str, Any]:
    from mxwd.sweeps import sweep

    X, y, _, _ = arrays(config)
    alpha = 0.01 ** 2 / 0.01 ** 2
    wp, bp = posterior_mean(X, y, config.noise, 0.01)
    wr, br = ridge(X, y, alpha)
    evid = [evidence_lambd(config.replace(seed=s)) for s in seeds]
    code, prose = map_lambd(0.01, 0.01, config.n_train), map_lambd(0.1, 0.01, config.n_train)
    at = (code, prose)
    sgd = sweep(at, seeds, config, n_valid=0).final_test_ls  # (S, 2): the chapter's SGD models
    ridge_ls = np.empty((len(seeds), 2))
    for i, seed in enumerate(seeds):
        Xs, ys, Xt, yt = arrays(config, seed)
        for j, lam in enumerate(at):
            w, b = ridge(Xs, ys, config.n_train * lam)
            ridge_ls[i, j] = np.mean((Xt @ w + b - yt) ** 2) / 2
    out = {"map_lambd_code_noise": code, "map_lambd_prose_noise": prose, "book_lambd": 5.0,
           "posterior_vs_ridge": float(max(np.max(np.abs(wp - wr)), abs(bp - br))),
           "evidence_lambd": evid, "median_evidence_lambd": float(np.median(evid)),
           "true_prior_lambd": map_lambd(config.noise, config.true_w, config.n_train),
           "median_sgd_test_ls_at_map": {"code_noise": float(np.nanmedian(sgd[:, 0])),
                                         "prose_noise": float(np.nanmedian(sgd[:, 1]))},
           "median_ridge_test_ls_at_map": {"code_noise": float(np.median(ridge_ls[:, 0])),
                                           "prose_noise": float(np.median(ridge_ls[:, 1]))}}
    if selection is not None:
        out["regret"] = {k: {kk: v[kk] for kk in ("median_regret", "p90_regret", "ridge_median_regret")}
                         for k, v in selection["rules"].items()}
    return out


def exercises(config: Optional[Config] = None, seeds: Any = 10, only: Optional[Sequence[str]] = None,
              progress: Any = None) -> ExercisesResult:
    """Run the exercises (all, or those in `only`, "1".."6") on `seeds` seeds; returns data."""
    from mxwd.sweeps import as_seeds

    config = resolve(config, None)
    seeds = tuple(as_seeds(seeds, config.seed))
    keys = EXERCISES if only is None else tuple(str(k) for k in only)
    for key in keys:
        if key not in EXERCISES:
            raise ValueError(f"only must name exercises among {', '.join(EXERCISES)}; got {key!r}")
    say = progress or (lambda text: None)
    answers: Dict[str, Any] = {}
    if "1" in keys:
        say("exercise 1: the lambd sweep")
        answers["1"] = lambd_experiment(config, seeds)
    if "2" in keys:
        say("exercise 2: validation, leave-one-out, evidence")
        answers["2"] = _exercise_2(config, seeds)
    if "3" in keys:
        say("exercise 3: L1 (subgradient and proximal) beside L2, and against Lasso")
        answers["3"] = {**l1_experiment(config, seeds[:3]), "lasso": lasso_check(config)}
    if "4" in keys:
        say("exercise 4: matrices")
        answers["4"] = matrix_check(config)
    if "5" in keys:
        say("exercise 5: other ways (early stopping, more data, input noise, input dropout)")
        answers["5"] = other_methods(config, seeds[:5])
    if "6" in keys:
        say("exercise 6: the prior, MAP and the evidence")
        answers["6"] = _exercise_6(config, seeds, answers["2"]["selection"] if "2" in answers else None)
    return ExercisesResult(config, answers)
