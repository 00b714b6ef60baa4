"""Figures, drawn from returned results (training never draws).

Every function returns a `matplotlib.figure.Figure` built without pyplot, so it works
headless (no backend, no d2l/IPython backend pitfall) and displays inline in Jupyter.
Save one with `mxwd.results.save_figure(fig, stem)`.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, Dict, Optional, Sequence, Tuple

import matplotlib
import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, NullFormatter

from mxwd.results import DPI  # figures are saved at results' DPI: the sizes here follow it

if TYPE_CHECKING:  # pragma: no cover
    from mxwd.optimizer_atlas import Atlas
    from mxwd.comparison import Comparison
    from mxwd.results import FitResult
    from mxwd.published import PublishedCheck
    from mxwd.sweeps import SweepResult

FIGSIZE = (6.4, 4.0)  # inches; saved at DPI: 640 x 400 px, readable at 100% zoom
MIN_FONT = 9  # points: no text on a figure is smaller
TAB10 = tuple(f"C{i}" for i in range(10))  # the default cycle: ten distinct colors
MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*")  # told apart where colormap neighbours look alike


def _epochs(result: "FitResult") -> range:
    return range(1, len(result.train_ls) + 1)


def describe_run(result: "FitResult") -> str:
    """What a person calls a run: "from scratch, lambd = 5" or "Gluon, built-in wd = 5"."""
    if result.path == "scratch":
        return f"from scratch, lambd = {result.lambd:g}"
    return f"Gluon, built-in wd = {result.lambd:g}"


def semilogy(result: "FitResult", ax=None) -> Figure:
    """The source's plot: train and test loss per epoch, log y axis, legend train/test."""
    fig, ax = _figure(ax)
    epochs = _epochs(result)
    ax.semilogy(epochs, result.train_ls, label="train")
    ax.semilogy(epochs, result.test_ls, linestyle=":", label="test")
    ax.set_xlabel("epochs")
    ax.set_ylabel("loss (mean squared loss / 2)")
    ax.set_title(f"{describe_run(result)} (seed {result.seed})")
    ax.legend()
    return fig


def _run_styles(lambdas: Sequence[float]) -> Dict[float, Tuple[Any, str]]:
    """A (color, marker) per lambd, no two alike: up to 10 lambdas the ten distinct tab10
    colors and no marker (the source's look); beyond, a sequential colormap in lambd order
    (each lambd its own color) and markers that differ between neighbours, whose colors
    are close."""
    lambdas = sorted(lambdas)
    if len(lambdas) <= len(TAB10):
        return {v: (TAB10[i], "") for i, v in enumerate(lambdas)}
    cmap = matplotlib.colormaps["viridis"]
    top = len(lambdas) - 1
    return {v: (cmap(0.9 * i / top), MARKERS[i % len(MARKERS)]) for i, v in enumerate(lambdas)}


def _legend_columns(labels: Sequence[str], width_in: float) -> int:
    """How many legend columns of MIN_FONT labels fit across width_in inches (at least 1)."""
    from matplotlib.font_manager import FontProperties
    from matplotlib.textpath import TextToPath

    prop = FontProperties(size=MIN_FONT)
    text = max(TextToPath().get_text_width_height_descent(s, prop, ismath=False)[0] for s in labels)
    em = MIN_FONT  # points; a legend's spacings are in units of its font size
    column = 1.03 * text + em * (2.0 + 0.8)  # the text (3% for the renderer's hinting), handle and pad
    usable = width_in * 72 - em * (2 * 0.5 + 2 * 0.4) - 4  # less the legend's own pads and 4 points
    return max(1, min(len(labels), int((usable + 2.0 * em) // (column + 2.0 * em))))


def _legend_below(fig: Figure, handles: Sequence[Any], width_in: float, bottom_in: float):
    """One legend of `handles` bottom_in inches above the figure's bottom edge, in as many
    columns as fit across width_in; returns (legend, its height in inches), so that the
    caller sizes the figure around it."""
    from matplotlib.backends.backend_agg import RendererAgg

    renderer = RendererAgg(int(width_in * fig.dpi), int(fig.dpi), fig.dpi)  # measures text; draws nothing
    ncol = _legend_columns([h.get_label() for h in handles], width_in)
    while True:
        legend = fig.legend(handles=handles, loc="lower center", ncol=ncol, fontsize=MIN_FONT,
                            bbox_to_anchor=(width_in / 2, bottom_in), bbox_transform=fig.dpi_scale_trans,
                            borderaxespad=0)
        box = legend.get_window_extent(renderer)
        if box.width <= (width_in - 0.1) * fig.dpi or ncol == 1:
            return legend, box.height / fig.dpi
        legend.remove()
        ncol -= 1


def runs(results: Sequence["FitResult"]) -> Figure:
    """The source's plot for several runs at once: a panel per path (from scratch, Gluon),
    train solid and test dotted, one color per lambd (see `_run_styles`), one legend below
    the panels whose rows grow the figure, so it never covers a curve, for any number of lambdas.

    One figure with fixed margins renders in one pass, much faster than one figure per
    run: `mxwd reproduce` writes it (the per-run figure is `semilogy`).
    """
    from matplotlib.lines import Line2D

    if not results:
        raise ValueError("runs: no run to plot, got an empty sequence (every lambd diverged or was unstable: "
                         "see Reproduction.not_trained)")
    paths = [p for p in ("scratch", "gluon") if any(r.path == p for r in results)]
    lambdas = sorted({r.lambd for r in results})
    styles = _run_styles(lambdas)
    name = {("scratch",): "lambd", ("gluon",): "wd"}.get(tuple(paths), "lambd = wd")
    width = 5.2 * len(paths)
    fig = Figure(figsize=(width, 4.2))
    axes = fig.subplots(1, len(paths), squeeze=False)[0]
    for ax, path in zip(axes, paths):
        for r in results:
            if r.path != path:
                continue
            color, marker = styles[r.lambd]
            epochs = _epochs(r)
            style = dict(color=color, marker=marker or None, markersize=4, markevery=max(1, len(epochs) // 10))
            ax.semilogy(epochs, r.train_ls, **style)
            ax.semilogy(epochs, r.test_ls, linestyle=":", **style)
        ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))  # plain numbers render faster
        ax.yaxis.set_minor_formatter(NullFormatter())
        ax.set_xlabel("epochs")
        ax.set_ylabel("loss")
        ax.set_title("from scratch (penalty lambd)" if path == "scratch" else "Gluon (built-in wd)")
    handles = [Line2D([], [], color=styles[v][0], marker=styles[v][1] or None, markersize=4, label=f"{name} = {v:g}")
               for v in lambdas]
    pad, below, above, panels = 0.08, 0.6, 0.67, 3.0  # inches: edge, under the panels (ticks, x label), titles
    _, legend_h = _legend_below(fig, handles, width, pad)
    height = pad + legend_h + below + panels + above
    fig.set_size_inches(width, height)
    fig.subplots_adjust(left=0.09 if len(paths) > 1 else 0.16, right=0.98, bottom=(pad + legend_h + below) / height,
                        top=1 - above / height, wspace=0.22)
    seed = results[0].seed
    fig.suptitle(f"train (solid) and test (dotted) loss per epoch, seed {seed}", y=1 - 0.1 / height, va="top")
    return fig


def overlay_reading(comparison: "Comparison") -> str:
    """What the left panel shows, in the words of the verdict (`Comparison.verdict`): the
    curves lie on each other only when the losses agree; otherwise by how much they differ."""
    gap = comparison.gap
    if gap.exact:
        return "the curves lie on each other"
    if gap.agree:
        return "the curves lie on each other\n(agree by the rule: tiny losses within tol absolute)"
    if gap.loss_within:
        return f"the curves lie on each other,\nbut the weights DIFFER (max |dw| = {gap.max_dw:.2g})"
    text = f"the losses DIFFER by up to {100 * gap.max_rel_loss_diff:.2g}%"
    return text if gap.max_rel_loss_diff >= 0.01 else text + ",\ntoo little to see here (right panel)"


def overlay(comparison: "Comparison") -> Figure:
    """Left: scratch and Gluon loss curves (Gluon dashed, on top). Right: |difference| per epoch, log scale."""
    fig = Figure(figsize=(10.0, 4.0), layout="constrained")
    ax, diff = fig.subplots(1, 2)
    scratch, gluon = comparison.scratch, comparison.gluon
    epochs = _epochs(scratch)
    ax.semilogy(epochs, scratch.train_ls, "-", color="C0", linewidth=4, alpha=0.4, label="train, from scratch")
    ax.semilogy(epochs, scratch.test_ls, "-", color="C1", linewidth=4, alpha=0.4, label="test, from scratch")
    ax.semilogy(epochs, gluon.train_ls, "--", color="C0", marker="o", markersize=3, label="train, Gluon")
    ax.semilogy(epochs, gluon.test_ls, "--", color="C1", marker="o", markersize=3, label="test, Gluon")
    ax.set_xlabel("epochs")
    ax.set_ylabel("loss")
    ax.set_title(f"lambd = wd = {comparison.lambd:g}: {overlay_reading(comparison)}")
    ax.legend()
    both = np.asarray(comparison.train_diff + comparison.test_diff, dtype=float)
    positive = both[both > 0]
    floor = positive.min() / 10 if len(positive) else comparison.tolerance * 1e-6
    for values, color, label in ((comparison.train_diff, "C0", "|train loss difference|"),
                                 (comparison.test_diff, "C1", "|test loss difference|")):
        values = np.asarray(values, dtype=float)
        diff.semilogy(epochs, np.maximum(values, floor), marker="o", color=color, label=label)
        zero = values == 0
        if zero.any():  # exact zeros cannot sit on a log axis: hollow markers at the floor
            diff.scatter(np.asarray(epochs)[zero], np.full(zero.sum(), floor), s=60, facecolors="white",
                         edgecolors=color, zorder=3, label=f"{label.split()[0][1:]} difference exactly 0 (at the floor)")
    diff.axhline(comparison.tolerance, color="k", linestyle=":", label=f"tolerance {comparison.tolerance:g}")
    diff.set_xlabel("epochs")
    diff.set_ylabel("|scratch - Gluon|")
    diff.set_title(f"difference per epoch (max |dw| = {comparison.max_dw:.2g})")
    diff.legend()
    fig.suptitle(f"from scratch vs Gluon: {comparison.verdict()}", fontsize=MIN_FONT + 1)
    return fig


def _figure(ax, size: Optional[Sequence[float]] = None):
    if ax is not None:
        return ax.figure, ax
    fig = Figure(figsize=size or FIGSIZE, layout="constrained")
    return fig, fig.add_subplot()


def regularization_path(result: "SweepResult", ax=None) -> Figure:
    """Final train, test and validation loss against lambd (log-log): median and 10-90% band across seeds."""
    fig, ax = _figure(ax, size=(8.0, 5.0))
    lambdas = np.asarray(result.lambdas)
    for what, color in (("train", "C0"), ("test", "C1")):
        median, low, high = result.band(f"final_{what}_ls")
        ax.plot(lambdas, median, color=color, label=f"{what} (median)")
        ax.fill_between(lambdas, low, high, color=color, alpha=0.25, label=f"{what} (10-90%)")
    sel = result.selection()
    if result.validation is not None:
        median, low, high = result.validation_band()
        ax.plot(lambdas, median, color="C2", label=f"validation, {result.n_valid} held-out rows (median)")
        ax.fill_between(lambdas, low, high, color="C2", alpha=0.15)
    _log_lambd_axis(ax, lambdas)
    ax.set_yscale("log")
    ax.set_ylabel("final loss (medians over seeds)")
    title = f"regularization path, {len(result.seeds)} seeds"
    if sel:
        ax.axvline(sel["validated_lambd"], color="C2", linestyle="--", label="validated lambd")
        ax.axvline(sel["test_optimal_lambd"], color="C3", linestyle=":", label="test-optimal lambd")
        if sel["at_grid_edge"]:
            title += f"\nthe validated lambd {sel['validated_lambd']:.3g} is at the edge of the grid: widen it"
    ax.set_title(title)
    ax.legend(fontsize=MIN_FONT)
    return fig


def weight_norm_path(result: "SweepResult", ax=None) -> Figure:
    """||w|| against lambd: median and 10-90% band across seeds."""
    fig, ax = _figure(ax)
    lambdas = np.asarray(result.lambdas)
    median, low, high = result.band("w_norm")
    ax.plot(lambdas, median, color="C0", label="||w|| (median over seeds)")
    ax.fill_between(lambdas, low, high, color="C0", alpha=0.25, label="10-90%")
    true_norm = abs(result.config.true_w) * result.config.num_inputs ** 0.5
    ax.axhline(true_norm, color="k", linestyle=":", label=f"true ||w|| = {true_norm:.3g}")
    _log_lambd_axis(ax, lambdas)
    ax.set_yscale("log")
    ax.set_ylabel("||w|| after training")
    ax.set_title(f"weight norm against lambd, {len(result.seeds)} seeds")
    ax.legend(fontsize=MIN_FONT)
    return fig


def _log_lambd_axis(ax, lambdas) -> None:
    positive = lambdas[lambdas > 0]
    if len(positive) < len(lambdas) and len(positive):  # lambd = 0 on a log axis: symlog
        ax.set_xscale("symlog", linthresh=float(positive.min()))
    elif len(positive):
        ax.set_xscale("log")
    ax.set_xlabel("lambd")


def published_distributions(check: "PublishedCheck") -> Figure:
    """One histogram per published number over seeds: central 95% shaded, the published value marked."""
    from matplotlib.ticker import MaxNLocator

    n = len(check.checks)
    cols = 2 if n == 4 else min(n, 3)
    rows = -(-n // cols)
    fig = Figure(figsize=(5.0 * cols, 3.4 * rows), layout="constrained")
    grid = fig.add_gridspec(rows, 2 * cols)
    axes = []
    for i in range(n):  # a last row with fewer panels is centred: no empty slot
        r, c = divmod(i, cols)
        in_row = n - r * cols if r == rows - 1 else cols
        offset = cols - in_row
        axes.append(fig.add_subplot(grid[r, offset + 2 * c : offset + 2 * c + 2]))
    for ax, c in zip(axes, check.checks):
        low, high = np.percentile(c.runs, [2.5, 97.5])
        ax.axvspan(low, high, color="0.85", label="central 95% of runs")
        ax.hist(c.runs, bins=20, color="C0", alpha=0.8, label=f"{len(c.runs)} seeded runs")
        ax.axvline(c.published, color="C3", linewidth=2, label=f"published ({c.percentile:.0f}th percentile)")
        ax.yaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_xlabel(c.quantity)
        ax.set_ylabel("runs")
        ax.set_title(c.quantity)
        ax.legend(fontsize=MIN_FONT)
    fig.suptitle(f"{check.preset}: the published numbers among {len(check.seeds)} seeded runs")
    return fig


def atlas_distances(atlas: "Atlas", ax=None) -> Figure:
    """Per optimizer: max|w_wd - w_penalty| and max|w_wd - w_decoupled| (log scale), the effect marked.

    A distance left of the effect's "equal" line (EQUAL_FRACTION x effect) counts as equal.
    Non-finite distances are drawn at the right edge as crosses.
    """
    from mxwd.optimizer_atlas import EQUAL_FRACTION

    entries = atlas.entries
    own = ax is None
    fig, ax = _figure(ax, size=(8.0, 0.32 * len(entries) + 2.4))
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
    ax.set_yticklabels([f"{e.name} ({e.classification})" for e in entries], fontsize=MIN_FONT)
    ax.set_xlabel("max |dw| after training (0 drawn at the left edge; not finite at the right)")
    on = f" on {atlas.problem.split(' (')[0]}" if atlas.problem else ""
    ax.set_title(f"What wd does in each MXNet optimizer{on} (lambd = {atlas.lambd:g}, lr = {atlas.config.lr:g})")
    if own:  # one column under the x label: constrained layout makes room for it, so none is cut off
        fig.legend(fontsize=MIN_FONT, loc="outside lower center", ncol=1)
    else:  # the caller's axes: its figure's layout is theirs
        ax.legend(fontsize=MIN_FONT)
    return fig


def _lambd_label(result: "SweepResult") -> str:
    """What lambd is on an optimizer sweep's axis: torch's wd (decay lr lambd per step) or the paper's."""
    if result.hyperparameters.get("decouple_lr"):
        return "lambd (the paper's: decay lambd w per step)"
    return "lambd (wd)"


def optimizer_heatmaps(results: Sequence["SweepResult"], columns: int = 4) -> Figure:
    """Median final test loss over lr x lambd, one panel per optimizer (and decay convention),
    up to `columns` panels a row, one shared (log) color scale.

    In each row (one lr) a white dot marks the best lambd where the grid brackets it and a
    cross where it is at the grid's end (`SweepResult.best_lambd_by_lr`); a star marks the
    best model of the panel. Each panel's title gives the best lambd's Theil-Sen slope
    against the lr (`SweepResult.lambd_drift`): 0 when it does not move with the lr.
    """
    from matplotlib.colors import LogNorm
    from matplotlib.lines import Line2D

    if not results:
        raise ValueError("optimizer_heatmaps: no sweep to plot, got an empty sequence")
    columns = max(1, min(columns, len(results)))
    rows = -(-len(results) // columns)
    width, most_labels = 4.6, 14  # inches per panel, and the lambd tick labels that fit across it
    fig = Figure(figsize=(width * columns + 1.2, 4.4 * rows), layout="constrained")
    axes = fig.subplots(rows, columns, squeeze=False).reshape(-1)
    grids = [r.test_band_by_lr().median for r in results]
    finite = np.concatenate([g[np.isfinite(g)] for g in grids])
    # diverged models (mxwd.training.diverged) are NaN in the medians: white. A model can be bad
    # without diverging (up to 1e4 x its initial loss, 1e6 at the source's settings): above `cap` it is red
    cap = 1e3
    norm = LogNorm(vmin=finite.min(), vmax=min(finite.max(), cap)) if len(finite) else None
    cmap = matplotlib.colormaps["viridis"].with_extremes(over="tab:red", bad="white")
    image = None
    marks = {  # the same markers in every panel, explained once below them
        "inside": dict(marker="o", s=30, color="white", edgecolors="k", label="best lambd at this lr"),
        "edge": dict(marker="X", s=45, color="white", edgecolors="k",
                     label="best lambd at this lr, at the grid's end (or beside a diverged column)"),
        "best": dict(marker="*", s=200, color="white", edgecolors="k", label="best model of the panel"),
    }
    for ax in axes[len(results):]:
        ax.set_visible(False)
    for ax, r, g in zip(axes, results, grids):
        image = ax.imshow(g, origin="lower", aspect="auto", cmap=cmap, norm=norm)
        every = -(-len(r.lambdas) // most_labels)  # label every k-th lambd when they would not fit
        ax.set_xticks(range(0, len(r.lambdas), every))
        ax.set_xticklabels([f"{v:.2g}" for v in r.lambdas[::every]], rotation=90, fontsize=MIN_FONT)
        ax.set_yticks(range(g.shape[0]))
        ax.set_yticklabels([f"{v:.2g}" for v in (r.lrs or (r.config.lr,))])
        ax.set_xlabel(_lambd_label(r))
        ax.set_ylabel("lr")
        column = {v: k for k, v in enumerate(r.lambdas)}
        best_by_lr = [(column[b.lambd], i, b.bracketed) for i, b in enumerate(r.best_lambd_by_lr()) if np.isfinite(b.lambd)]
        for bracketed, style in ((True, marks["inside"]), (False, marks["edge"])):
            cells = [(x, y) for x, y, ok in best_by_lr if ok == bracketed]
            if cells:
                ax.scatter(*zip(*cells), **style)
        best = np.unravel_index(np.nanargmin(g), g.shape) if np.isfinite(g).any() else None
        if best is not None:
            ax.scatter([best[1]], [best[0]], **marks["best"])
        drift = r.lambd_drift()
        moves = (f"best lambd: {drift.slope:+.2f} decades per decade of lr" if len(drift.lrs) >= 2
                 else f"best lambd inside the grid at {len(drift.lrs)} lr(s): no slope")
        lowest = f", best {g[best]:.3g}" if best is not None else ", every model diverged"
        ax.set_title(f"{r.optimizer} ({len(r.seeds)} seeds{lowest})\n{moves}", fontsize=MIN_FONT + 1)
    if image is not None:
        fig.colorbar(image, ax=list(axes[:len(results)]), extend="max",
                     label=f"median final test loss (red: above {cap:g}; white: diverged)")
    handles = [Line2D([], [], linestyle="none", markersize=8, markerfacecolor="white", markeredgecolor="k",
                      marker=style["marker"], label=style["label"]) for style in marks.values()]
    fig.legend(handles=handles, loc="outside lower center", ncol=len(handles), fontsize=MIN_FONT)
    fig.suptitle("median test loss over learning rate x weight decay (slope: decades of the best lambd per "
                 "decade of lr; 0 = independent of lr)")
    return fig


def optimizer_paths(results: Sequence["SweepResult"]) -> Figure:
    """Each optimizer's regularization path (median final test loss against lambd) at its best lr.

    Diverged models (`mxwd.training.diverged`) are left out of the medians and bands, so
    they neither draw nor stretch the y axis; the legend counts them at the lr drawn.
    """
    fig, ax = _figure(None, size=(8.0, 5.0))
    for k, r in enumerate(results):
        grid, low, high = r.test_band_by_lr()
        if not np.isfinite(grid).any():
            continue
        row = int(np.unravel_index(np.nanargmin(grid), grid.shape)[0])  # the lr of the best model
        low, high = low[row], high[row]
        lambdas = np.asarray(r.lambdas)
        lost = r.by_lr(r.grid.diverged)[:, row]  # (seeds, lambdas) at this lr
        note = f"; {int(lost.sum())} of {lost.size} diverged, left out" if lost.any() else ""
        ax.plot(lambdas, grid[row], color=f"C{k}", marker="o", markersize=3,
                label=f"{r.optimizer}, lr = {(r.lrs or (r.config.lr,))[row]:.2g} (median, 10-90%{note})")
        ax.fill_between(lambdas, low, high, color=f"C{k}", alpha=0.15)
    _log_lambd_axis(ax, np.concatenate([np.asarray(r.lambdas) for r in results]))
    if any(r.hyperparameters.get("decouple_lr") for r in results):
        ax.set_xlabel("lambd (wd; for the paper's convention, the decay per step)")
    ax.set_yscale("log")
    ax.set_ylabel("final test loss")
    ax.set_title("regularization paths, each optimizer at its best learning rate")
    ax.legend(fontsize=MIN_FONT)
    return fig
