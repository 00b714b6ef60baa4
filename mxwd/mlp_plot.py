"""Figures of `mxwd.mlp`, drawn from its result (training never draws).

Built like `mxwd.plot`: each function returns a `matplotlib.figure.Figure` made without
pyplot (headless, inline in Jupyter), at least 6.4 x 4 inches at 100 dpi, no text under
9 points. Save one with `mxwd.results.save_figure(fig, stem)`.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Optional, Sequence

import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from mxwd.plot import MIN_FONT

if TYPE_CHECKING:  # pragma: no cover
    from mxwd.mlps import BatchNormResult, MLPResult

COLORS = {"relu": "C0", "tanh": "C1", "sigmoid": "C2"}
MARKERS = {"relu": "o", "tanh": "s", "sigmoid": "^"}


def _lambd_axis(ax, lambdas: Sequence[float]) -> None:
    """A log lambd axis; with lambd = 0 among them, symlog (linear up to the smallest positive lambd)."""
    lambdas = np.asarray(lambdas, dtype=float)
    positive = lambdas[lambdas > 0]
    if len(positive) and len(positive) < len(lambdas):
        ax.set_xscale("symlog", linthresh=float(positive.min()))
    elif len(positive):
        ax.set_xscale("log")
    ax.set_xticks(sorted(lambdas))
    ax.set_xticklabels([f"{v:g}" for v in sorted(lambdas)])
    ax.set_xlabel("lambd (= wd)")


def lambd_effects(result: "MLPResult") -> Figure:
    """Test accuracy (left) and quiet hidden units (right) against lambd, one line per activation.

    Gluon runs are drawn as lines with filled markers, the scratch runs as larger hollow
    markers on them (the two paths agree, so each hollow marker rings a filled one).
    """
    c = result.config
    fig = Figure(figsize=(11.0, 4.4), layout="constrained")
    acc_ax, quiet_ax = fig.subplots(1, 2)
    for a in c.activations:
        for path, style in (("gluon", dict(linestyle="-", markersize=5)),
                            ("scratch", dict(linestyle="none", markersize=10, markerfacecolor="none"))):
            runs = sorted((r for r in result.runs if r.activation == a and r.path == path), key=lambda r: r.lambd)
            lambdas = [r.lambd for r in runs]
            label = f"{a}" if path == "gluon" else f"{a}, from scratch"
            kwargs = dict(color=COLORS[a], marker=MARKERS[a], **style)
            acc_ax.plot(lambdas, [r.test_accuracy for r in runs], label=label, **kwargs)
            quiet_ax.plot(lambdas, [r.quiet_units for r in runs], label=label, **kwargs)
    for ax in (acc_ax, quiet_ax):
        _lambd_axis(ax, c.lambdas)
    acc_ax.set_ylabel(f"test accuracy ({c.n_test} images)")
    acc_ax.set_title(f"test accuracy, n_train = {c.n_train}")
    quiet_ax.set_ylabel(f"quiet units (of {c.hidden_units})")
    quiet_ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    top = max(max(r.quiet_units for r in result.runs), 1)
    quiet_ax.set_ylim(-0.04 * max(10, 1.25 * top), max(10, 1.25 * top))  # the counts, not the empty top of 0..H
    quiet_ax.set_title(f"units whose output std < {c.quiet_fraction:g} x the initial median")
    acc_ax.legend(fontsize=MIN_FONT, ncol=1)
    fig.suptitle(f"MLP 64-{c.hidden_units}-10 on load_digits, seed {c.seed}: lines Gluon (wd), hollow markers "
                 "from scratch (penalty)", fontsize=MIN_FONT + 1)
    return fig


def weight_norm_histograms(result: "MLPResult", lambdas: Optional[Sequence[float]] = None,
                           path: str = "gluon") -> Figure:
    """Histograms of the hidden units' incoming weight norms ||W1[j]||, one panel per activation,
    at two lambdas (default the smallest and the largest), with the initial norms for reference."""
    c = result.config
    lo, hi = (min(c.lambdas), max(c.lambdas)) if lambdas is None else tuple(lambdas)
    initial = np.linalg.norm(result.initial["W1"].astype(np.float64), axis=1)
    n = len(c.activations)
    fig = Figure(figsize=(max(6.4, 3.6 * n), 4.2), layout="constrained")
    axes = fig.subplots(1, n, squeeze=False, sharey=True)[0]
    for ax, a in zip(axes, c.activations):
        low, high = (np.asarray(result.run(a, v, path).unit_weight_norms) for v in (lo, hi))
        top = max(low.max(), high.max(), initial.max())
        bins = np.linspace(0, top * 1.02, 31)
        ax.hist(initial, bins=bins, histtype="step", color="0.5", linestyle=":", linewidth=1.5, label="initial")
        ax.hist(low, bins=bins, color="C0", alpha=0.6, label=f"lambd = {lo:g}")
        ax.hist(high, bins=bins, color="C3", alpha=0.6, label=f"lambd = {hi:g}")
        ax.set_xlabel("||W1[j]|| (incoming weights of unit j)")
        ax.set_title(f"{a}: {result.run(a, hi, path).quiet_units} quiet at lambd = {hi:g}")
        ax.legend(fontsize=MIN_FONT)
    axes[0].set_ylabel(f"hidden units (of {c.hidden_units})")
    fig.suptitle(f"hidden-unit weight norms after training ({path}), seed {c.seed}", fontsize=MIN_FONT + 1)
    return fig


def batchnorm(bn: "BatchNormResult") -> Figure:
    """The BatchNorm experiment over training: ||W1||_F, the effective step lr / ||w_j||^2
    (median over units, log scale), the angle each unit's weights turn per epoch, and the test accuracy."""
    fig = Figure(figsize=(10.0, 7.0), layout="constrained")
    (norm_ax, step_ax), (angle_ax, acc_ax) = fig.subplots(2, 2)
    for run, color in ((bn.decayed, "C3"), (bn.not_decayed, "C0")):
        epochs = np.arange(len(run.weight_norm))
        label = f"{run.label} (wd = {run.lambd:g})" if run.w1_decayed else run.label
        norm_ax.plot(epochs, run.weight_norm, color=color, label=label)
        step_ax.semilogy(epochs, run.effective_step, color=color, label=label)
        angle_ax.plot(epochs[1:], run.angle, color=color, label=label)
        acc_ax.plot(run.epochs, run.test_acc, color=color, label=f"{label}: final {run.test_accuracy:.3f}")
    norm_ax.set_ylabel("||W1||_F")
    norm_ax.set_title("the BatchNorm-preceded weight's norm")
    step_ax.set_ylabel("median_j lr / ||W1[j]||^2")
    step_ax.set_title("effective step size")
    angle_ax.set_ylabel("degrees (median over units)")
    angle_ax.set_title("angle W1[j] turns per epoch")
    acc_ax.set_ylabel("test accuracy (running statistics)")
    acc_ax.set_title("test accuracy")
    for ax in (norm_ax, step_ax, angle_ax, acc_ax):
        ax.set_xlabel("epochs")
        ax.legend(fontsize=MIN_FONT)
    worst = max((c for run in (bn.decayed, bn.not_decayed) for c in run.scale_checks), key=lambda c: c.max_abs_diff)
    verdict = "invariant" if bn.invariant else "NOT invariant"
    fig.suptitle(f"Dense -> BatchNorm -> {bn.activation}: W1 -> c W1 moves the logits by <= {worst.max_abs_diff:.1g} "
                 f"({verdict}); decay shrinks ||W1||, not the function", fontsize=MIN_FONT + 1)
    return fig
