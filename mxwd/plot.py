"""Figures, drawn from returned results (training never draws).

Every function returns a `matplotlib.figure.Figure` built without pyplot, so it works
headless (no backend, no d2l/IPython backend pitfall) and displays inline in Jupyter.
Save one with `mxwd.results.save_figure(fig, stem)`.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Optional, Sequence

from matplotlib.figure import Figure

if TYPE_CHECKING:  # pragma: no cover
    from mxwd.comparison import Comparison
    from mxwd.results import FitResult

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
