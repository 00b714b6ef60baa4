"""Figures of `mxwd.exercises`, drawn from its result's dictionaries (training never draws).

Built like `mxwd.plot`: each function returns a `matplotlib.figure.Figure` made without
pyplot, at least 6.4 x 4 inches at 100 dpi, no text under 9 points. Save one with
`mxwd.results.save_figure(fig, stem)`.
"""
from __future__ import annotations

from typing import Any, Dict

import numpy as np
from matplotlib.figure import Figure

from mxwd.plot import MIN_FONT

FONT = max(MIN_FONT, 10)


def _style(ax) -> None:
    ax.tick_params(labelsize=FONT)
    ax.xaxis.label.set_size(FONT)
    ax.yaxis.label.set_size(FONT)
    ax.title.set_size(FONT + 1)


def lambd_curves(answer: Dict[str, Any]) -> Figure:
    """Exercise 1: median final train and test loss against lambd, with the test loss's 10-90% band."""
    fig = Figure(figsize=(7.0, 4.4), layout="constrained")
    ax = fig.subplots()
    lam = np.asarray(answer["lambdas"])
    ax.fill_between(lam, answer["test_p10"], answer["test_p90"], color="C1", alpha=0.2, label="test, 10-90%")
    ax.plot(lam, answer["median_train_ls"], color="C0", label="train (median)")
    ax.plot(lam, answer["median_test_ls"], color="C1", label="test (median)")
    ax.axvline(answer["best_lambd"], color="gray", linestyle=":", label=f"best lambd {answer['best_lambd']:.3g}")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("lambd")
    ax.set_ylabel("final loss (squared_loss, mean)")
    ax.set_title(f"exercise 1: loss against lambd, {len(answer['seeds'])} seeds")
    ax.legend(fontsize=FONT)
    _style(ax)
    return fig


def selection(answer: Dict[str, Any]) -> Figure:
    """Exercise 2: LOO loss against lambd for one seed (left); each rule's regret per seed (right)."""
    fig = Figure(figsize=(11.0, 4.4), layout="constrained")
    loo_ax, reg_ax = fig.subplots(1, 2)
    loo_ax.plot(answer["loo_wide_grid"], answer["loo_at_seed"], marker="o", markersize=3)
    loo_ax.set_xscale("log")
    loo_ax.set_xlabel("lambd (ridge alpha = n_train * lambd)")
    loo_ax.set_ylabel("leave-one-out loss")
    loo_ax.set_title("exercise 2: exact LOO of converged ridge, first seed")
    rules = answer["selection"]["rules"]
    for i, (name, rule) in enumerate(rules.items()):
        values = np.asarray(rule["regret"], dtype=float)
        x = np.full(len(values), i) + np.linspace(-0.15, 0.15, len(values))
        reg_ax.plot(x, values + 1e-4, "o", color=f"C{i}", label=name)
    reg_ax.set_yscale("log")
    reg_ax.set_xticks(range(len(rules)))
    reg_ax.set_xticklabels(list(rules))
    reg_ax.set_ylabel("regret + 1e-4 (test loss / best - 1)")
    reg_ax.set_title("regret of each rule on the SGD models, per seed")
    for ax in (loo_ax, reg_ax):
        _style(ax)
    return fig


def other_methods(answer: Dict[str, Any]) -> Figure:
    """Exercise 5: each method's median test loss at its best setting (log scale)."""
    names = [n for n in ("none", "weight_decay", "early_stopping", "more_data", "input_noise", "input_dropout")
             if n in answer and answer[n]["median_test_ls"] is not None]
    fig = Figure(figsize=(8.0, 4.4), layout="constrained")
    ax = fig.subplots()
    values = [answer[n]["median_test_ls"] for n in names]
    ax.bar(range(len(names)), values, color=[f"C{i}" for i in range(len(names))])
    ax.set_yscale("log")
    ax.set_xticks(range(len(names)))
    ax.set_xticklabels([n.replace("_", "\n") for n in names])
    for i, v in enumerate(values):
        ax.text(i, v, f"{v:.3g}", ha="center", va="bottom", fontsize=FONT)
    ax.set_ylabel("median final test loss")
    ax.set_title(f"exercise 5: other ways, {len(answer['seeds'])} seeds")
    _style(ax)
    return fig


def l1(answer: Dict[str, Any]) -> Figure:
    """Exercise 3: median test loss (left) and exact zeros in w (right) against lambd, L2 and both L1 steps."""
    fig = Figure(figsize=(11.0, 4.4), layout="constrained")
    loss_ax, zero_ax = fig.subplots(1, 2)
    lam = answer["lambdas"]
    for i, (key, label) in enumerate((("l2", "L2 (weight decay)"), ("subgradient", "L1, subgradient"),
                                      ("proximal", "L1, proximal"))):
        loss_ax.plot(lam, answer[key]["median_test_ls"], marker="o", markersize=4, color=f"C{i}", label=label)
        zero_ax.plot(lam, answer[key]["median_zeros"], marker="o", markersize=4, color=f"C{i}", label=label)
    loss_ax.axhline(answer["mean_only_test_ls"], color="gray", linestyle=":", label="w = 0 (predict the mean)")
    loss_ax.set_yscale("log")
    loss_ax.set_ylabel("median final test loss")
    loss_ax.set_title(f"exercise 3: L1 against L2, {len(answer['seeds'])} seeds")
    zero_ax.set_ylabel(f"median weights exactly 0 (of {answer['num_inputs']})")
    zero_ax.set_title("exact zeros in w")
    for ax in (loss_ax, zero_ax):
        ax.set_xscale("log")
        ax.set_xlabel("lambd")
        ax.legend(fontsize=FONT)
        _style(ax)
    return fig
