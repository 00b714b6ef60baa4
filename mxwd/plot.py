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
