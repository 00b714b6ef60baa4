"""The atlas on the user's own network: classifications, parameter groups, hyperparameters, bad input.

The nets are small Dense/BatchNorm/Dense stacks on one random batch. "Equal" is the atlas's
rule (max |dw| <= 1e-4 x the decay's effect); the margins measured here are ~1e-6 x effect
in float32 (a few float32 roundings per step, ~6e-8 relative each, over 20 steps, against
an effect of lr * lambd * steps = 0.3 of the weights), so the rule has ~100x headroom.
"""
import re

import numpy as np
import pytest

from mxwd import optimizer_atlas as A
from mxwd._mx import autograd, gluon, mx, nd
from mxwd.config import Config
from mxwd.optimizers import spec

nn = gluon.nn


def mlp(hidden=64, classes=10, dtype="float32", hybridize=True, seed=1, inputs=20):
    mx.random.seed(seed)
    net = nn.HybridSequential()
    net.add(nn.Dense(hidden, activation="relu"), nn.BatchNorm(), nn.Dense(classes))
    net.initialize(mx.init.Xavier())
    net(nd.zeros((2, inputs)))
    if dtype != "float32":
        net.cast(dtype)
    if hybridize:
        net.hybridize()
    return net


def batch(rows=32, inputs=20, classes=10, seed=0):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(rows, inputs)).astype("float32"), rng.integers(0, classes, size=rows).astype("float32")


CE = gluon.loss.SoftmaxCrossEntropyLoss()
UNDECAYED = {"bias", "gamma", "beta"}


@pytest.mark.slow
def test_the_issue_net_classifies_as_measured():
    """Hybridized Dense(64, relu), BatchNorm, Dense(10); sgd with momentum 0.9, adam, adamw, adagrad."""
    net = mlp()
    before = {n: p.data().asnumpy().copy() for n, p in net.collect_params().items()}
    result = A.atlas(["sgd+momentum", "adam", "adamw", "adagrad"], net=net, data=batch(), loss=CE,
                     hyperparameters={"sgd+momentum": {"momentum": 0.9}})
    got = {e.name: e.classification for e in result.entries}
    assert got == {"sgd+momentum": "coupled", "adam": "coupled", "adamw": "decoupled", "adagrad": "decoupled"}
    assert result.entry("sgd+momentum").hyperparameters["momentum"] == 0.9
    for row in result.to_list():
        kinds = {(g["kind"], g["decayed"]) for g in row["groups"]}
        assert kinds == {("weight", True), ("bias", False), ("gamma", False), ("beta", False)}
        for g in row["groups"]:
            if not g["decayed"]:  # no decay reaches them: the update with wd is the update without, bitwise
                assert g["wd_step"] == 0.0 and g["l2_step"] == 0.0
    # the first step of momentum SGD: v = -lr (g + wd w), so wd removes exactly lr * wd of w
    weight = next(g for g in result.entry("sgd+momentum").groups if g["decayed"])
    assert weight["wd_shrink"] == pytest.approx(0.003 * 5, rel=1e-4)  # float32 rounding of a 1e-2-size difference
    assert weight["l2_shrink"] == pytest.approx(weight["wd_shrink"], rel=1e-4)
    after = {n: p.data().asnumpy() for n, p in net.collect_params().items()}
    assert all(np.array_equal(before[n], after[n]) for n in before), "the user's net is restored"


def small():
    return mlp(hidden=8, classes=3, inputs=5), batch(rows=7, inputs=5, classes=3)


def test_groups_and_classification_on_a_small_unhybridized_net():
    net, data = mlp(hidden=8, classes=3, inputs=5, hybridize=False), batch(rows=7, inputs=5, classes=3)
    result = A.atlas(["sgd", "adamw"], net=net, data=data, loss=CE, steps=10)
    assert [e.classification for e in result.entries] == ["coupled", "decoupled"]
    for e in result.entries:
        undecayed = [g for g in e.groups if not g["decayed"]]
        assert {g["kind"] for g in undecayed} == UNDECAYED
        assert sum(g["values"] for g in e.groups) == sum(
            p.data().size for p in net.collect_params().values() if p.grad_req != "null")
    assert "HybridSequential" in result.table() and "10 full-batch steps of 7 rows" in result.table()
    assert "gamma" in result.groups_table()


def test_hyperparameters_reach_the_optimizer_bitwise():
    """run_with's built-in-wd run equals a hand-written Trainer loop with the same hyperparameters:
    momentum, an lr_scheduler, clip_gradient and rescale_grad all reach MXNet's optimizer."""
    net, data = small()
    hp = {"momentum": 0.9, "lr_scheduler": mx.lr_scheduler.FactorScheduler(step=3, factor=0.5),
          "clip_gradient": 0.05, "rescale_grad": 2.0, "learning_rate": 0.1}
    problem = A.NetProblem(net, data, CE, steps=8)
    run = A.run_with(spec("sgd+momentum"), problem, 0.5, "wd", hyperparameters=hp)
    problem.restore()
    mx.random.seed(0)
    X, y = (nd.array(a) for a in data)
    trained = [p for p in net.collect_params().values() if p.grad_req != "null"]
    for p in trained:  # the default policy: weights decayed, the others not
        p.wd_mult = 1.0 if len(p.shape) >= 2 else 0.0
    trainer = gluon.Trainer(trained, "sgd", {**hp, "wd": 0.5,
                                             "lr_scheduler": mx.lr_scheduler.FactorScheduler(step=3, factor=0.5)},
                            kvstore=None)
    for _ in range(8):
        with autograd.record():
            l = CE(net(X), y).sum()
        l.backward()
        trainer.step(len(X))
    for n, p in net.collect_params().items():
        if p.grad_req != "null":
            assert np.array_equal(run.final[n], p.data().asnumpy().reshape(-1).astype(np.float64)), n
    problem.restore()


def test_penalty_and_decoupled_reference_follow_rescale_grad_and_the_schedule():
    """With rescale_grad = 3 the penalty is weighted so its gradient stays lambd * p after the
    rescaling (plain SGD stays coupled), and the decoupled reference uses the scheduled lr_t
    (adamw under a FactorScheduler stays decoupled)."""
    net, data = small()
    result = A.atlas(["sgd", "adamw"], net=net, data=data, loss=CE, steps=8,
                     hyperparameters={"sgd": {"rescale_grad": 3.0},
                                      "adamw": {"lr_scheduler": mx.lr_scheduler.FactorScheduler(step=2, factor=0.5)}})
    assert [e.classification for e in result.entries] == ["coupled", "decoupled"]
    assert "FactorScheduler" in result.to_list()[1]["hyperparameters"]["lr_scheduler"]


def test_float64_net():
    net = mlp(hidden=8, classes=3, inputs=5, dtype="float64")
    X, y = batch(rows=7, inputs=5, classes=3)
    result = A.atlas(["sgd+momentum", "adamw"], net=net, data=(X.astype("float64"), y), loss=CE, steps=10)
    e = result.entry("sgd+momentum")
    assert e.classification == "coupled"
    # MXNet passes lr, wd and rescale_grad = 1/7 to sgd_mom_update as float32 numbers, so the
    # penalty's lambd * 7 * fl32(1/7) differs from wd = 5 by ~1e-8 relative: not float64's 1e-16
    assert e.dw_coupled <= 1e-7 * e.effect
    assert result.entry("adamw").dw_decoupled <= 1e-12 * result.entry("adamw").effect  # mxwd's adamw: float64 arithmetic
    assert "float64" in result.table()


def test_the_chapter_rows_carry_groups_too():
    result = A.atlas(["sgd"], Config(num_epochs=1))
    groups = result.to_list()[0]["groups"]
    assert [(g["kind"], g["decayed"]) for g in groups] == [("weight", True), ("bias", False)]
    assert groups[0]["wd_shrink"] == pytest.approx(0.003 * 5, rel=1e-4)
    assert groups[1]["wd_step"] == 0.0


class Mean(gluon.loss.Loss):
    def __init__(self):
        super().__init__(None, 0)

    def hybrid_forward(self, F, pred, label):
        return F.mean(F.square(pred))


@pytest.mark.parametrize("kwargs, message", [
    (dict(data=(np.zeros((4, 6)), np.zeros(4))), "net does not run on X of shape (4, 6)"),
    (dict(loss=Mean()), "loss must give one value per example, shape (7,)"),
    (dict(loss=gluon.loss.L2Loss()), "loss fails on net(X) of shape (7, 3) and y of shape (7,)"),
    (dict(hyperparameters={"sgd": {"momentom": 0.9}}), "hyperparameters['sgd']"),
    (dict(hyperparameters={"adam": {"beta1": 0.9}}), "the atlas does not run 'adam'"),
    (dict(hyperparameters={"sgd": {"wd": 0.1}}), "the atlas sets wd itself"),
    (dict(steps=0), "steps must be"),
    (dict(data=(np.zeros((7, 5)), np.zeros(6))), "same number of rows"),
    (dict(policy="weights"), "policy must be a mxwd.DecayPolicy"),
])
def test_bad_input_is_named(kwargs, message):
    net, data = small()
    args = dict(net=net, data=data, loss=CE, steps=2)
    args.update(kwargs)
    with pytest.raises(ValueError) as err:
        A.atlas(["sgd"], **args)
    assert message in str(err.value)
    if "momentom" in str(kwargs):
        assert "momentum" in str(err.value)  # the allowed keywords are listed


def test_net_arguments_need_a_net_and_a_net_needs_data():
    with pytest.raises(ValueError, match="data= needs net="):
        A.atlas(["sgd"], data=(np.zeros((2, 2)), np.zeros(2)))
    net, _ = small()
    with pytest.raises(ValueError, match=r"net= needs data=\(X, y\)"):
        A.atlas(["sgd"], net=net)
    with pytest.raises(ValueError, match="must be a gluon Block"):
        A.atlas(["sgd"], net=lambda x: x, data=(np.zeros((2, 2)), np.zeros(2)))


def test_float16_dense_is_refused_by_mxnet_on_cpu():
    """float16 works where MXNet's CPU operators allow it: its FullyConnected does not."""
    net = mlp(hidden=8, classes=3, inputs=5, dtype="float16")
    with pytest.raises(ValueError, match="net does not run on X .*float16 fully connected"):
        A.atlas(["sgd"], net=net, data=batch(rows=7, inputs=5, classes=3), loss=CE, steps=2)


def test_the_command_line_sets_hyperparameters(tmp_path, capsys):
    import json

    from mxwd.cli import main

    out = tmp_path / "atlas"
    assert main(["atlas", "--optimizers", "sgd+momentum", "--set", "sgd+momentum:momentum=0.9", "--num-epochs", "1",
                 "--out", str(out), "--quiet"]) == 0
    row = json.loads((out / "atlas.json").read_text())["optimizers"][0]
    assert row["hyperparameters"]["momentum"] == 0.9 and row["classification"] == "coupled"
    assert [g["decayed"] for g in row["groups"]] == [True, False]
    capsys.readouterr()
    for bad, says in ((["sgd:momentom=0.9"], "--set: hyperparameters['sgd']: TypeError"),
                      (["sgd:momentum"], "--set 'sgd:momentum': write NAME:KEY=VALUE"),
                      (["sgd:momentum=fast"], "is not a number or true/false")):
        assert main(["atlas", "--optimizers", "sgd", "--set", *bad, "--out", str(tmp_path / "x"), "--quiet"]) == 2
        err = capsys.readouterr().err
        assert says in err and err.count("\n") == 1
    assert not (tmp_path / "x").exists()


def test_dropout_draws_the_same_masks_in_every_run_and_the_net_is_put_back():
    mx.random.seed(3)
    net = nn.HybridSequential()
    net.add(nn.Dense(8, activation="relu"), nn.Dropout(0.5), nn.Dense(3))
    net.initialize()
    X, y = batch(rows=7, inputs=5, classes=3)
    net(nd.array(X))
    before = {n: p.data().asnumpy().copy() for n, p in net.collect_params().items()}
    # with different masks the penalty and wd runs would part by O(lr) per step, not by rounding
    assert A.atlas(["sgd"], net=net, data=(X, y), loss=CE, steps=6).entries[0].classification == "coupled"
    assert all(np.array_equal(before[n], p.data().asnumpy()) for n, p in net.collect_params().items())


@pytest.mark.slow
def test_the_readmes_own_network_example_prints_what_it_says(capsys):
    import re
    from pathlib import Path

    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    (code,) = re.findall(r"### Your own network and optimizer.*?```python\n(.*?)```", readme, re.S)
    (printed,) = re.findall(r"### Your own network and optimizer.*?```python\n.*?```\n\n```\n(.*?)```", readme, re.S)
    namespace: dict = {}
    exec(compile(code, "README.md", "exec"), namespace)  # noqa: S102  (our own README)
    out = capsys.readouterr().out
    own = namespace["own"]
    assert {e.name: e.classification for e in own.entries} == {
        "sgd+momentum": "coupled", "adam": "coupled", "adamw": "decoupled", "adagrad": "decoupled",
        "nag": "other", "lamb": "other"}
    assert "decayed: 2 tensors, 1,920 values" in out and "not decayed: 4 tensors, 202 values" in out
    # the printed table, compared as numbers: each measured value within 5% of the README's (a
    # different CPU changes float32 roundings, which move the small distances, not the classes)
    for line_readme, line_now in zip(printed.splitlines(), out.splitlines()):
        a, b = line_readme.split(), line_now.split()
        assert len(a) == len(b), (line_readme, line_now)
        for x, z in zip(a, b):
            try:
                fx, fz = float(x), float(z)
            except ValueError:
                # words must match, but a parameter's name counts its layers from the process's
                # first net (dense0_weight in a new process, dense7_weight after other tests)
                if not re.search(r"[a-z]\d+_", x):
                    assert x == z, (line_readme, line_now)
                continue
            if abs(fx) > 1e-3 and "measured in" not in line_readme:
                assert fz == pytest.approx(fx, rel=0.05), (line_readme, line_now)


def tiny_net(bias_before_bn=False):
    mx.random.seed(0)
    net = nn.HybridSequential()
    if bias_before_bn:
        net.add(nn.Dense(6, in_units=3), nn.BatchNorm(in_channels=6), nn.Activation("relu"), nn.Dense(1, in_units=6))
    else:
        net.add(nn.Dense(4, in_units=3, activation="relu"), nn.Dense(1, in_units=4))
    net.initialize()
    rng = np.random.default_rng(0)
    return net, (rng.normal(size=(8, 3)), rng.normal(size=(8, 1)))


def test_a_small_decay_in_float32_is_classified_above_the_rounding_floor_and_explained_below_it():
    # lambd = 0.01: effect ~5.5e-5, and adamw's run and the decoupled reference differ by 7.5e-9, under
    # one float32 ulp of the weights (~6e-8 x |w|) but above 1e-4 x effect: the rounding floor decides
    net, data = tiny_net()
    assert A.atlas(["adamw"], net=net, data=data, lambd=0.01).entries[0].classification == "decoupled"
    # lambd = 0.001: the effect (~5.5e-6) is below 100 x the floor: not classified, but the note says why
    e = A.atlas(["adamw"], net=net, data=data, lambd=0.001).entries[0]
    assert e.classification == "other" and "closest to the decoupled reference" in e.notes and "float32" in e.notes


def test_a_bias_before_batchnorm_does_not_blur_the_comparison():
    # BatchNorm removes the bias's effect, so its gradient is rounding noise, which Adam scales to lr-sized
    # steps; the classification compares the decayed parameters, the groups report the bias
    net, data = tiny_net(bias_before_bn=True)
    result = A.atlas(["adam", "adamw"], net=net, data=data)
    assert [e.classification for e in result.entries] == ["coupled", "decoupled"]


def test_diverging_runs_are_an_error_not_a_class():
    # momentum 1.5: |w| grows ~1.5x a step, past 1e4 x its start within 60 steps
    e = A.atlas(["sgd+momentum"], Config(num_epochs=3), hyperparameters={"sgd+momentum": {"momentum": 1.5}}).entries[0]
    assert e.classification == "error" and "training diverges" in e.notes and "lower the learning rate" in e.notes


@pytest.mark.parametrize("hp, message", [
    ({"adam": {"beta1": float("nan")}}, "allowed: a finite number"),
    ({"sgd": {"rescale_grad": 0}}, "['rescale_grad'] = 0; allowed: > 0"),
    ({"adam": {"lr_scheduler": 3}}, "hyperparameters['adam']"),
])
def test_bad_hyperparameter_values_are_refused_before_training(hp, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        A.atlas(list(hp), Config(num_epochs=1), hyperparameters=hp)


def test_a_policy_that_decays_nothing_and_nan_data_are_refused():
    import mxwd

    net, data = tiny_net()
    with pytest.raises(ValueError, match="policy decays no parameter"):
        A.atlas(["sgd"], net=net, data=data, policy=mxwd.decay_policy(net, exclude=".*weight"))
    with pytest.raises(ValueError, match="X holds non-finite values"):
        A.atlas(["sgd"], net=net, data=(np.full_like(data[0], np.nan), data[1]))


def test_the_command_line_keeps_every_set_and_names_the_right_option(tmp_path, capsys):
    import json

    from mxwd.cli import main

    out = tmp_path / "a"
    assert main(["atlas", "--optimizers", "sgd+momentum", "adam", "--set", "sgd+momentum:momentum=0.9",
                 "--set", "adam:beta1=0.8", "--num-epochs", "1", "--out", str(out), "--quiet"]) == 0
    rows = json.loads((out / "atlas.json").read_text())["optimizers"]
    assert rows[0]["hyperparameters"]["momentum"] == 0.9 and rows[1]["hyperparameters"]["beta1"] == 0.8
    capsys.readouterr()
    assert main(["atlas", "--optimizers", "foo", "--out", str(tmp_path / "b"), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "unknown optimizer 'foo'" in err and "--set" not in err
    assert main(["atlas", "--optimizers", "sgd", "--set", "sgd:wd=1", "--out", str(tmp_path / "b"), "--quiet"]) == 2
    assert "--lambdas on the command line" in capsys.readouterr().err


def test_a_net_never_initialized_is_initialized_from_the_seed():
    mx.random.seed(11)
    net = nn.HybridSequential()
    net.add(nn.Dense(4, in_units=3, activation="relu"), nn.Dense(1, in_units=4))
    X, y = np.random.default_rng(0).normal(size=(8, 3)), np.zeros((8, 1))
    first = A.atlas(["sgd"], Config(seed=2), net=net, data=(X, y), steps=3).entries[0]
    values = {n: p.data().asnumpy().copy() for n, p in net.collect_params().items()}
    net2 = nn.HybridSequential()
    net2.add(nn.Dense(4, in_units=3, activation="relu"), nn.Dense(1, in_units=4))
    again = A.atlas(["sgd"], Config(seed=2), net=net2, data=(X, y), steps=3).entries[0]
    assert first.classification == again.classification == "coupled"
    # the same seed draws the same initial values: MXNet's default initializer after mx.random.seed(2)
    assert all(np.array_equal(a, p.data().asnumpy()) for a, p in zip(values.values(), net2.collect_params().values()))
