"""What a batched engine takes and returns: each seed's stacked data, and the per-model `Grid`.

Every batched engine (mxwd.sweep_engines' fast and exact engines, mxwd.optimizer_sweeps)
trains a chunk of seeds at once on `seed_arrays` (each seed's data and initial w, drawn
as fit_and_plot draws them) and returns a `Grid`, arrays indexed [seed, model(, epoch)].
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Sequence

import numpy as np

from mxwd._mx import nd
from mxwd.config import Config
from mxwd.data import Dataset, batch_orders, make_data
from mxwd.scratch import init_params


@dataclass(frozen=True)
class Grid:
    """Per-model results of one batched sweep; arrays indexed [seed, lambd(, epoch)]."""

    train_ls: np.ndarray  # (S, L, E) training loss after each epoch
    test_ls: np.ndarray  # (S, L, E) test loss after each epoch
    valid_ls: Optional[np.ndarray]  # (S, L) final loss on the held-out rows, or None
    w: np.ndarray  # (S, L, p) final weights
    b: np.ndarray  # (S, L) final biases
    diverged: np.ndarray  # (S, L) bool

    @property
    def w_norm(self) -> np.ndarray:
        """||w|| per model, (S, L), in float64."""
        return np.sqrt((self.w.astype(np.float64) ** 2).sum(axis=-1))

    def __repr__(self) -> str:
        S, L = self.b.shape
        return f"<Grid {S} seeds x {L} lambdas, {self.train_ls.shape[-1]} epochs, {int(self.diverged.sum())} diverged>"


def seed_arrays(config: Config, seeds: Sequence[int], n_fit: int):
    """Stack each seed's data (as fit_and_plot draws it) and initial w."""
    parts: Dict[str, List[Any]] = {k: [] for k in ("Xtr", "ytr", "Xva", "yva", "Xte", "yte", "w0")}
    for seed in seeds:
        data: Dataset = make_data(config, seed)
        w0 = init_params(config)[0]  # drawn right after the data, as in fit_and_plot
        parts["Xtr"].append(data.train_features[:n_fit])
        parts["ytr"].append(data.train_labels[:n_fit])
        parts["Xva"].append(data.train_features[n_fit:] if n_fit < config.n_train else None)
        parts["yva"].append(data.train_labels[n_fit:] if n_fit < config.n_train else None)
        parts["Xte"].append(data.test_features)
        parts["yte"].append(data.test_labels)
        parts["w0"].append(w0)
    out = {k: (nd.stack(*v) if v[0] is not None else None) for k, v in parts.items()}
    orders = np.stack([batch_orders(config, seed, n=n_fit) for seed in seeds])  # (S, E, n_fit)
    return out, orders
