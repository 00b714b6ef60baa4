"""Figures, drawn from returned results (training never draws).

Every function returns a `matplotlib.figure.Figure` built without pyplot, so it works
headless (no backend, no d2l/IPython backend pitfall) and displays inline in Jupyter.
Save one with `mxwd.results.save_figure(fig, stem)`.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Optional, Sequence

import numpy as np
from matplotlib.figure import Figure

if TYPE_CHECKING:  # pragma: no cover
    from mxwd.atlas import Atlas
    from mxwd.comparison import Comparison
    from mxwd.results import FitResult
    from mxwd.published import PublishedCheck
    from mxwd.sweeps import SweepResult

FIGSIZE = (3.5, 2.5)  # d2l's default figure size


def _epochs(result: "FitResult") -> range:
    return range(1, len(result.train_ls) + 1)


def semilogy(result: "FitResult", ax=None) -> Figure:
    """The source's plot: train and test loss per epoch, log y axis, legend train/test."""
    fig, ax = _figure(ax)
    epochs = _epochs(result)
    ax.semilogy(epochs, result.train_ls, label="train")
    ax.semilogy(epochs, result.test_ls, linestyle=":", label="test")
    ax.set_xlabel("epochs")
    ax.set_ylabel("loss")
    name = "fit_and_plot" if result.path == "scratch" else "fit_and_plot_gluon"
    ax.set_title(f"{name}, {_lambd_name(result)}={result.lambd:g}, seed {result.seed}", fontsize=8)
    ax.legend()
    return fig


def overlay(comparison: "Comparison", ax=None) -> Figure:
    """Scratch and Gluon loss curves of one comparison on the same axes."""
    fig, ax = _figure(ax, size=(4.5, 3.0))
    for result, style in ((comparison.scratch, "-"), (comparison.gluon, "--")):
        epochs = _epochs(result)
        ax.semilogy(epochs, result.train_ls, style, color="C0", label=f"train ({result.path})")
        ax.semilogy(epochs, result.test_ls, style, color="C1", label=f"test ({result.path})")
    ax.set_xlabel("epochs")
    ax.set_ylabel("loss")
    ax.set_title(
        f"scratch lambd vs Gluon wd = {comparison.lambd:g}: max |dw| = {comparison.max_dw:.2g}",
        fontsize=8,
    )
    ax.legend(fontsize=7)
    return fig


def _lambd_name(result: "FitResult") -> str:
    return "lambd" if result.path == "scratch" else "wd"


def _figure(ax, size: Optional[Sequence[float]] = None):
    if ax is not None:
        return ax.figure, ax
    fig = Figure(figsize=size or FIGSIZE, layout="constrained")
    return fig, fig.add_subplot()


def regularization_path(result: "SweepResult", ax=None) -> Figure:
    """Final train and test loss against lambd (log-log): median and 10-90% band across seeds."""
    fig, ax = _figure(ax, size=(4.5, 3.2))
    lambdas = np.asarray(result.lambdas)
    for what, color in (("train", "C0"), ("test", "C1")):
        median, low, high = result.band(what)
        ax.plot(lambdas, median, color=color, label=f"{what} (median)")
        ax.fill_between(lambdas, low, high, color=color, alpha=0.25, label=f"{what} (10-90%)")
    _log_lambd_axis(ax, lambdas)
    ax.set_yscale("log")
    ax.set_ylabel("final loss")
    sel = result.selection()
    if sel:
        ax.axvline(sel["validated_lambd"], color="C2", linestyle="--", label="validated lambd")
        ax.axvline(sel["test_optimal_lambd"], color="C3", linestyle=":", label="test-optimal lambd")
    ax.set_title(f"regularization path, {len(result.seeds)} seeds", fontsize=8)
    ax.legend(fontsize=6)
    return fig


def weight_norm_path(result: "SweepResult", ax=None) -> Figure:
    """||w|| against lambd: median and 10-90% band across seeds."""
    fig, ax = _figure(ax, size=(4.5, 3.2))
    lambdas = np.asarray(result.lambdas)
    median, low, high = result.band("w_norm")
    ax.plot(lambdas, median, color="C0", label="||w|| (median)")
    ax.fill_between(lambdas, low, high, color="C0", alpha=0.25, label="10-90%")
    true_norm = abs(result.config.true_w) * result.config.num_inputs ** 0.5
    ax.axhline(true_norm, color="k", linestyle=":", label=f"true ||w|| = {true_norm:.3g}")
    _log_lambd_axis(ax, lambdas)
    ax.set_yscale("log")
    ax.set_ylabel("||w||")
    ax.legend(fontsize=6)
    return fig


def _log_lambd_axis(ax, lambdas) -> None:
    positive = lambdas[lambdas > 0]
    if len(positive) < len(lambdas) and len(positive):  # lambd = 0 on a log axis: symlog
        ax.set_xscale("symlog", linthresh=float(positive.min()))
    elif len(positive):
        ax.set_xscale("log")
    ax.set_xlabel("lambd")


def published_distributions(check: "PublishedCheck") -> Figure:
    """One histogram per published number: its distribution over seeds, the published value marked."""
    n = len(check.checks)
    cols = min(n, 3)
    rows = -(-n // cols)
    fig = Figure(figsize=(3.3 * cols, 2.5 * rows), layout="constrained")
    axes = fig.subplots(rows, cols, squeeze=False).ravel()
    for ax, c in zip(axes, check.checks):
        ax.hist(c.runs, bins=20, color="C0", alpha=0.7, label=f"{len(c.runs)} seeds")
        ax.axvline(c.published, color="C3", linewidth=2, label=f"published ({c.percentile:.0f}th pct)")
        ax.set_title(c.quantity, fontsize=8)
        ax.legend(fontsize=6)
    for ax in axes[n:]:
        ax.set_visible(False)
    fig.suptitle(f"{check.preset}: published numbers among seeded runs", fontsize=9)
    return fig


def atlas_distances(atlas: "Atlas", ax=None) -> Figure:
    """Per optimizer: max|w_wd - w_penalty| and max|w_wd - w_decoupled| (log scale), the effect marked.

    A distance left of the effect's "equal" line (EQUAL_FRACTION x effect) counts as equal.
    Non-finite distances are drawn at the right edge as crosses.
    """
    from mxwd.atlas import EQUAL_FRACTION

    entries = atlas.entries
    fig, ax = _figure(ax, size=(8.0, 0.32 * len(entries) + 1.6))
    y = np.arange(len(entries))[::-1]
    finite = [v for e in entries for v in (e.dw_coupled, e.dw_decoupled, e.effect) if np.isfinite(v) and v > 0]
    floor = min(finite) / 10 if finite else 1e-12
    top = max(finite) * 10 if finite else 1.0
    show = lambda v: v if np.isfinite(v) else top  # noqa: E731
    pos = lambda v: max(show(v), floor)  # noqa: E731  (0 on a log axis: drawn at the floor)
    ax.scatter([pos(e.dw_coupled) for e in entries], y + 0.15, marker="o", color="C0",
               label="max|w(wd) - w(penalty in loss)|  (coupled if small)")
    ax.scatter([pos(e.dw_decoupled) for e in entries], y - 0.15, marker="s", color="C1",
               label="max|w(wd) - w(decoupled reference)|  (decoupled if small)")
    ax.scatter([pos(e.effect) for e in entries], y, marker="|", s=200, color="k", label="effect of wd: max|w(wd) - w(no decay)|")
    ax.scatter([pos(e.effect * EQUAL_FRACTION) for e in entries], y, marker="|", s=120, color="0.6",
               label=f"equal below {EQUAL_FRACTION:g} x effect")
    ax.set_xscale("log")
    ax.set_yticks(y)
    ax.set_yticklabels([f"{e.name} ({e.classification})" for e in entries], fontsize=9)
    ax.set_xlabel("max |dw| after training (0 drawn at the left edge; not finite at the right)")
    ax.set_title(f"What wd does in each MXNet optimizer (lambd = {atlas.lambd:g}, lr = {atlas.config.lr:g})")
    ax.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.12 - 0.6 / len(entries)), ncol=2)
    return fig
