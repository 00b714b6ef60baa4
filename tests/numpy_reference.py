"""Independent NumPy runs of the chapter's model under an optimizer's update rule (for tests).

The data, initial w and batch order are MXNet's for the seed (the same draws every mxwd
path makes); everything after that is NumPy in the requested dtype, written from the math.
"""
import numpy as np

from mxwd.config import Config
from mxwd.data import batch_orders, make_data
from mxwd.scratch import init_params


def chapter_arrays(config: Config):
    data = make_data(config)
    w0 = init_params(config)[0].asnumpy().reshape(-1)
    return (data.train_features.asnumpy(), data.train_labels.asnumpy().reshape(-1), w0)


def run(reference, hp, config: Config, lambd: float, mode: str, dtype=np.float64, wd=None, lr_schedule=None):
    """Final w of the chapter's model trained with `reference` (an optimizers.Reference class).

    mode: "penalty" (gradient + lambd w, wd = 0), "wd" (wd = lambd), "decoupled"
    (wd = 0, then w <- w - lr lambd w_old), "none". The bias is never decayed.
    lr_schedule(t) gives the learning rate of step t = 1, 2, ... (default: config.lr).
    """
    X, y, w0 = chapter_arrays(config)
    X, y = X.astype(dtype), y.astype(dtype)
    w, b = w0.astype(dtype), dtype(0.0)
    if wd is None:
        wd = lambd if mode == "wd" else 0.0
    opt_w, opt_b = reference(w, **hp), reference(np.zeros(1, dtype), **hp)
    B, lr = config.batch_size, config.lr
    divisor = B if config.loss_reduction == "sum" else 1
    t = 0
    for order in batch_orders(config):
        for i in range(0, config.n_train, B):
            t += 1
            if lr_schedule is not None:
                lr = lr_schedule(t)
            rows = order[i : i + B]
            r = X[rows] @ w + b - y[rows]
            if config.loss_reduction == "mean":
                r = r / len(rows)
            gw, gb = X[rows].T @ r / divisor, np.array([r.sum() / divisor])
            if mode == "penalty":
                gw = gw + lambd * w
            w_old = w
            w = opt_w.step(w, gw, lr, wd)
            b = opt_b.step(np.array([b]), gb, lr, 0.0)[0]
            if mode == "decoupled":
                w = w - lr * lambd * w_old
    return w
