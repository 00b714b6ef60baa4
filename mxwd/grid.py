"""What a batched engine takes and returns: each seed's stacked data, and the per-model `Grid`.

Every batched engine (mxwd.sweep_engines' fast and exact engines, mxwd.optimizer_sweeps)
trains a chunk of seeds at once on `seed_arrays` (each seed's data and initial w, drawn
as fit_and_plot draws them) and returns a `Grid`, arrays indexed [seed, model(, epoch)].
Which initial-parameter block each model starts from is `model_blocks` (config.pairing's
rule, `mxwd.data.init_block`).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np

from mxwd._mx import nd
from mxwd.config import Config
from mxwd.data import Dataset, batch_orders, init_block, make_data, skip_init_blocks
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


def model_blocks(config: Config, n_models: int, path: str = "scratch") -> Tuple[int, ...]:
    """The initial-parameter block of each of a sweep's n_models models (one per lambd, in
    order): the sweep's lambdas are the cells of `path`, so under pairing="notebook" model j
    draws block j (scratch) or n_models + j (Gluon); under "shared" every model draws block 0."""
    return tuple(init_block(config, path, j, n_models) for j in range(n_models))


def seed_arrays(config: Config, seeds: Sequence[int], n_fit: int, blocks: Sequence[int] = (0,),
                order_seeds: Optional[Sequence[int]] = None):
    """Stack each seed's data (as fit_and_plot draws it) and initial w.

    w0 has shape (S, p, len(blocks)): for each seed, the initial-parameter blocks `blocks`
    (sorted, distinct; block k is the k-th drawn after the data, `mxwd.data.init_block`).
    The batch orders are those of `order_seeds` (default: the seeds themselves): model s
    trains seed seeds[s]'s data in the order of numpy default_rng(order_seeds[s]). A seed
    that repeats is drawn once.
    """
    blocks = tuple(blocks)
    if list(blocks) != sorted(set(blocks)) or not blocks or blocks[0] < 0:
        raise ValueError(f"blocks must be distinct block numbers >= 0 in increasing order, got {list(blocks)}")
    order_seeds = seeds if order_seeds is None else order_seeds
    if len(order_seeds) != len(seeds):
        raise ValueError(f"order_seeds must give one order seed per seed: {len(order_seeds)} for {len(seeds)} seeds")
    parts: Dict[str, List[Any]] = {k: [] for k in ("Xtr", "ytr", "Xva", "yva", "Xte", "yte", "w0")}
    drawn: Dict[int, Tuple[Dataset, Any]] = {}
    for seed in seeds:
        if seed not in drawn:
            data: Dataset = make_data(config, seed)
            w0s, drawn_blocks = [], 0
            for k in blocks:  # the blocks a model starts from; the ones between are drawn and dropped
                skip_init_blocks(config, k - drawn_blocks)
                w0s.append(init_params(config)[0])  # drawn after the data, as in fit_and_plot
                drawn_blocks = k + 1
            drawn[seed] = (data, w0s[0] if len(w0s) == 1 else nd.concat(*w0s, dim=1))
        data, w0 = drawn[seed]
        parts["Xtr"].append(data.train_features[:n_fit])
        parts["ytr"].append(data.train_labels[:n_fit])
        parts["Xva"].append(data.train_features[n_fit:] if n_fit < config.n_train else None)
        parts["yva"].append(data.train_labels[n_fit:] if n_fit < config.n_train else None)
        parts["Xte"].append(data.test_features)
        parts["yte"].append(data.test_labels)
        parts["w0"].append(w0)
    out = {k: (nd.stack(*v) if v[0] is not None else None) for k, v in parts.items()}
    orders = np.stack([batch_orders(config, seed, n=n_fit) for seed in order_seeds])  # (S, E, n_fit)
    return out, orders
