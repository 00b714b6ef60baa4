"""One worker of a data-parallel job: `python -m mxwd.parallel.worker SPEC.json`.

Every worker draws the same data, initial weights and batch order from the seed (as
`mxwd.reproduce` does), and takes its share of the rows of each global minibatch: the
batch's rows split into `num_workers` contiguous parts, part `kv.rank` for this worker.
The kvstore sums the workers' gradients, so one global step is one single-process step:

- scratch path: raw NDArray gradients are pushed and pulled (keys 2j and 2j + 1 for the
  lambd j's w and b; no optimizer on the servers), then the manual `sgd` step divides by
  the global batch size. With a summed loss the penalty is added to each example's loss,
  so the workers' shares add up to the single run's |B| * lambd * w; with a batch-mean
  loss the scalar penalty is added by rank 0 only (added on every worker it would count
  N times).
- Gluon path: one job per lambd (two Trainers on one dist kvstore clash on their keys,
  and a second kvstore in one process hangs), with `nn.Dense(1)` and a
  `gluon.Trainer('sgd', wd=lambd)` on the kvstore; the bias gets wd_mult = 0 unless
  decay_bias. With update_on_kvstore=True the optimizer runs on the servers, where MXNet
  drops every Parameter's wd_mult (the optimizer is pickled without its param_dict): the
  bias's 0 is then also set by its index in the Trainer's order
  (`set_wd_mult({trainer._param2idx[bias.name]: 0.0})`), which survives. With
  update_on_kvstore=False the Trainer's kvstore and parameters are initialised before
  the first forward pass, followed by a barrier: left lazy, the first step races.

Rank 0 and every other worker write their results to SPEC's "out" path + ".RANK".
"""
from __future__ import annotations

import json
import sys
from typing import Any, Dict, List

import numpy as np


def shares(n_rows: int, workers: int) -> List[np.ndarray]:
    """The contiguous parts of a batch's row positions, one per worker."""
    return np.array_split(np.arange(n_rows), workers)


def main(spec_path: str) -> int:
    spec = json.loads(open(spec_path).read())
    from mxwd._mx import mx  # MXNet, with this process's DMLC_* role
    from mxwd.config import Config

    config = Config.from_dict(spec["config"])
    kv = mx.kv.create(spec["kvstore"])
    rank, workers = kv.rank, kv.num_workers
    lambdas = list(config.lambdas)
    if spec["path"] == "scratch":
        runs = _scratch(config, lambdas, kv, rank, workers)
    else:
        runs = _gluon(config, lambdas, kv, rank, workers, spec["update_on_kvstore"], spec["keep_bias_policy"])
    with open(f"{spec['out']}.{rank}", "w") as f:
        json.dump({"rank": rank, "runs": runs}, f)
    return 0


def _epochs(config, step, losses):
    """Run the epochs: step(X, y) on each global batch; losses() after each epoch."""
    import numpy as np

    from mxwd import interrupt
    from mxwd.data import data_iter, epoch_orders, make_data
    from mxwd.training import diverged

    data = make_data(config)
    initial = [train for train, _ in losses(data)]  # each model's training loss before its first step
    curves: List[List[Any]] = []
    for order in epoch_orders(config):
        for X, y in data_iter(config.batch_size, data.train_features, data.train_labels, order):
            step(X, y)
            interrupt.check()
        curves.append(losses(data))
        if any(diverged(np.array(pair), start) for pair, start in zip(curves[-1], initial)):
            raise FloatingPointError("training diverged (mxwd.training.diverged: a non-finite loss or "
                                     "1e4 x the initial one)")
    return curves


def _local(X, y, rank, workers):
    part = shares(X.shape[0], workers)[rank]
    return X[int(part[0]) : int(part[-1]) + 1], y[int(part[0]) : int(part[-1]) + 1]


def _scratch(config, lambdas, kv, rank, workers) -> List[Dict[str, Any]]:
    from mxwd._mx import autograd, mx
    from mxwd.data import make_data
    from mxwd.policy import chapter_policy
    from mxwd.scratch import init_params, linreg, sgd, squared_loss
    from mxwd.steps import step_plan

    params = []
    for lambd in lambdas:  # each drawn right after the data, as fit_and_plot draws it
        make_data(config)
        params.append(init_params(config))
    policy = chapter_policy(params[0], config)  # w decayed; b too only with decay_bias

    def penalty(w, b):
        return policy.penalty({"w": w, "b": b})
    keys = list(range(2 * len(lambdas)))
    plan = step_plan(config, "penalty")  # the divisor and the penalty's weight of each global batch
    divisor = plan.steps[0].divisor  # the same on every batch (|B| or 1)
    on_servers = "async" in kv.type  # async servers apply each push at once: the sgd step runs there
    if on_servers:
        kv.set_optimizer(mx.optimizer.create("sgd", learning_rate=config.lr, rescale_grad=1.0 / divisor, wd=0.0))
    kv.init(keys, [p for pair in params for p in pair])
    kv.pull(keys, out=[p for pair in params for p in pair])  # everyone starts from rank 0's values

    def step(X, y):
        n_global = X.shape[0]
        Xk, yk = _local(X, y, rank, workers)
        weight = plan.for_rows(n_global).penalty_weight
        for lambd, (w, b) in zip(lambdas, params):
            with autograd.record():
                l = squared_loss(linreg(Xk, w, b), yk)
                if config.loss_reduction == "sum":
                    l = l + (lambd * weight) * penalty(w, b)  # per example: the workers' shares add up
                else:
                    l = l.sum() / n_global
                    if rank == 0:  # a scalar penalty: once per global batch
                        l = l + lambd * penalty(w, b)
            l.backward()
        grads = [p.grad for pair in params for p in pair]
        kv.push(keys, grads)
        if on_servers:
            kv.pull(keys, out=[p for pair in params for p in pair])
            return
        kv.pull(keys, out=grads)  # the sum of every worker's gradient
        for w, b in params:
            sgd([w, b], config.lr, divisor, config.clip_gradient)

    def losses(data):
        return [(squared_loss(linreg(data.train_features, w, b), data.train_labels).mean().asscalar().item(),
                 squared_loss(linreg(data.test_features, w, b), data.test_labels).mean().asscalar().item())
                for w, b in params]

    curves = _epochs(config, step, losses)
    return _runs("scratch", lambdas, curves, [(w, b) for w, b in params])


def _gluon(config, lambdas, kv, rank, workers, update_on_kvstore: bool, keep_bias_policy: bool):
    """One lambd per job (the launcher runs one job per lambd): nn.Dense(1) and one Trainer."""
    from mxwd._mx import autograd, gluon, mx
    from mxwd.concise import make_net
    from mxwd.data import make_data
    from mxwd.policy import chapter_policy
    from mxwd.steps import step_plan

    (lambd,) = lambdas
    make_data(config)
    net = make_net(config)
    policy = chapter_policy(net, config)  # w decayed; b too only with decay_bias
    policy.apply(net)  # wd_mult by name, on the workers
    # The rescaling 1/divisor is set once, on the optimizer, and every step is step(1): with
    # update_on_kvstore=True a distributed Trainer refuses a rescale_grad that changes after
    # its kvstore exists ("Possible change in the batch_size ..."), and it exists from the start.
    rescale = 1.0 / step_plan(config, "wd").steps[0].divisor
    optimizer = mx.optimizer.create("sgd", learning_rate=config.lr, wd=lambd, rescale_grad=rescale,
                                    **({"clip_gradient": config.clip_gradient} if config.clip_gradient else {}))
    trainer = gluon.Trainer(net.collect_params(), optimizer, kvstore=kv, update_on_kvstore=update_on_kvstore)
    if keep_bias_policy:
        # by index in the Trainer's order (which sorts the names: the bias comes first), set
        # before the optimizer is sent to the servers: the servers see indices, not names
        names = sorted(trainer._param2idx, key=trainer._param2idx.get)
        optimizer.set_wd_mult(policy.index_multipliers(names))
    trainer._init_kvstore()  # before the first forward pass, then a barrier: no lazy-init race
    kv._barrier()
    loss_fn = gluon.loss.L2Loss()

    def step(X, y):
        n_global = X.shape[0]
        Xk, yk = _local(X, y, rank, workers)
        with autograd.record():
            l = loss_fn(net(Xk), yk)
            l = l.sum() if config.loss_reduction == "sum" else l.sum() / n_global
        l.backward()
        trainer.step(1)

    def losses(data):
        return [(loss_fn(net(data.train_features), data.train_labels).mean().asscalar().item(),
                 loss_fn(net(data.test_features), data.test_labels).mean().asscalar().item())]

    curves = _epochs(config, step, losses)
    return _runs("gluon", lambdas, curves, [(net.weight.data().reshape((-1, 1)), net.bias.data())])


def _runs(path, lambdas, curves, params) -> List[Dict[str, Any]]:
    out = []
    for j, (lambd, (w, b)) in enumerate(zip(lambdas, params)):
        out.append({"path": path, "lambd": lambd,
                    "train_ls": [c[j][0] for c in curves], "test_ls": [c[j][1] for c in curves],
                    "w": w.asnumpy().reshape(-1).tolist(), "b": b.asnumpy().reshape(-1)[0].item()})
    return out


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv[1]))
    except Exception as err:  # noqa: BLE001  (one line for the launcher, then a non-zero exit)
        text = " ".join(str(err).split())
        print(f"{type(err).__name__}: {text}"[:500], file=sys.stderr, flush=True)
        sys.exit(1)
