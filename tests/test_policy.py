"""The one decay policy: which parameters are decayed, for the chapter and for any Gluon block."""
import numpy as np
import pytest

import mxwd
from mxwd._mx import autograd, gluon, mx, nd, nn
from mxwd.config import Config
from mxwd.decay import gluon_trainers
from mxwd.policy import chapter_mask, chapter_policy, decay_policy
from mxwd.steps import step_plan


def user_net(hybridize=False):
    """A user's HybridSequential: Dense, BatchNorm, LayerNorm, Dense."""
    net = nn.HybridSequential()
    net.add(nn.Dense(8, in_units=4), nn.BatchNorm(in_channels=8), nn.LayerNorm(in_channels=8),
            nn.Dense(1, in_units=8))
    net.initialize(mx.init.Normal(0.5))
    if hybridize:
        net.hybridize()
    return net


def names(net, *suffixes):
    return tuple(n for n in net.collect_params() if n.endswith(suffixes))


@pytest.mark.parametrize("hybridize", [False, True])
def test_the_default_rule_on_a_users_net(hybridize):
    net = user_net(hybridize)
    policy = mxwd.decay_policy(net)
    assert isinstance(policy, mxwd.DecayPolicy)
    assert policy.decayed == names(net, "_weight")  # the two Dense weight matrices
    assert set(policy.excluded) == set(names(net, "_bias", "_gamma", "_beta"))
    assert set(policy.fixed) == set(names(net, "_running_mean", "_running_var"))
    assert str(policy) .startswith("decayed: 2 tensors, 40 values (")
    assert "not decayed: 6 tensors, 41 values" in str(policy)  # biases 8 + 1, two gammas and two betas of 8
    assert "not trained (grad_req='null'): 2 tensors, 16 values" in str(policy)


def test_patterns_override_the_rule():
    net = user_net()
    first_weight, last_weight = names(net, "_weight")
    policy = decay_policy(net, exclude=[first_weight], include="layernorm.*gamma")
    (layernorm_gamma,) = [n for n in names(net, "_gamma") if "layernorm" in n]
    assert policy.decayed == (layernorm_gamma, last_weight)
    assert first_weight in policy.excluded
    with pytest.raises(ValueError, match="matches exclude=.* and include="):
        decay_policy(net, exclude="dense", include="weight")
    with pytest.raises(ValueError, match="pattern 'embedding' matches no trained parameter"):
        decay_policy(net, exclude="embedding")
    with pytest.raises(ValueError, match="not a regular expression"):
        decay_policy(net, include="(")
    # running statistics are never decayed, whatever include says
    assert not set(decay_policy(net, include=".*").fixed) & set(decay_policy(net, include=".*").decayed)


def test_deferred_initialization_is_refused_clearly():
    net = nn.Dense(3)
    net.initialize()
    with pytest.raises(ValueError, match="has no shape yet .* in_units"):
        decay_policy(net)
    with pytest.raises(ValueError, match="block_or_params must be a gluon Block"):
        decay_policy(42)


def test_apply_sets_wd_mult_and_every_trained_parameter_is_in_one_trainer():
    for exclusion in ("two_trainers", "wd_mult"):
        net = user_net()
        policy = decay_policy(net)
        trainers = gluon_trainers(net, 5.0, Config(bias_exclusion=exclusion))  # the default: the chapter's rule
        placed = [p.name for t in trainers for p in t._params]
        assert sorted(placed) == sorted(policy.decayed + policy.excluded), exclusion  # once each, none left out
        if exclusion == "wd_mult":
            assert {n: net.collect_params()[n].wd_mult for n in placed} == {n: policy.wd_mult(n) for n in placed}
        else:
            assert [t._optimizer.wd for t in trainers] == [5.0, 0.0]
            assert {p.name for p in trainers[0]._params} == set(policy.decayed)


def test_the_trainers_decay_exactly_the_policys_parameters():
    # one SGD step with wd against the same step with wd = 0: only decayed parameters move by lr*wd*p
    X = nd.random.normal(shape=(6, 4))
    results = {}
    for wd in (0.0, 2.0):
        mx.random.seed(3)
        net = user_net()
        trainers = gluon_trainers(net, wd, Config(bias_exclusion="wd_mult", lr=0.1), policy=decay_policy(net))
        before = [p.data().asnumpy().copy() for p in net.collect_params().values()]
        with autograd.record():
            loss = net(X).sum()
        loss.backward()
        for t in trainers:
            t.step(1)
        results[wd] = [p.data().asnumpy() for p in net.collect_params().values()]
    policy = decay_policy(net)
    for k, n in enumerate(net.collect_params()):  # both nets draw the same values: compare by position
        if n in policy.fixed:
            continue
        expected = -0.1 * 2.0 * before[k] if n in policy.decayed else 0 * before[k]
        np.testing.assert_allclose(results[2.0][k] - results[0.0][k], expected, atol=1e-6, err_msg=n)


def test_the_chapters_policy_is_one_instance():
    config = Config()
    assert chapter_policy({"w": (200, 1), "b": (1,)}, config).decayed == ("w",)
    assert chapter_policy({"w": (200, 1), "b": (1,)}, config.replace(decay_bias=True)).decayed == ("w", "b")
    net = nn.Dense(1, in_units=200)
    net.initialize()
    assert chapter_policy(net, config).decayed == (net.weight.name,)
    assert chapter_policy(net, config.replace(decay_bias=True)).decayed == (net.weight.name, net.bias.name)
    assert chapter_mask(config).tolist() == [True, False]
    assert chapter_mask(config.replace(decay_bias=True)).tolist() == [True, True]
    policy = chapter_policy(net, config)
    assert policy.index_multipliers([net.bias.name, net.weight.name]) == {0: 0.0, 1: 1.0}


def test_the_penalty_sums_l2_over_the_decayed_parameters():
    net = user_net()
    policy = decay_policy(net, include="layernorm.*gamma")
    params = net.collect_params()
    expected = sum(float((params[n].data() ** 2).sum().asscalar()) / 2 for n in policy.decayed)
    assert float(policy.penalty(params).asscalar()) == pytest.approx(expected, rel=1e-6)


PLANS = [
    # (config, decay, per batch: (rows, divisor, decay))
    (Config(), "penalty", [(1, 1, 1.0)] * 20),
    (Config(batch_size=7), "penalty", [(7, 7, 1.0), (7, 7, 1.0), (6, 7, 6 / 7)]),
    (Config(batch_size=7), "wd", [(7, 7, 1.0), (7, 7, 1.0), (6, 7, 1.0)]),
    (Config(batch_size=7, partial_batch_penalty="per_step"), "penalty", [(7, 7, 1.0), (7, 7, 1.0), (6, 7, 1.0)]),
    (Config(n_train=23, batch_size=5, loss_reduction="mean"), "penalty", [(5, 1, 1.0)] * 4 + [(3, 1, 1.0)]),
]


@pytest.mark.parametrize("config, decay, expected", PLANS)
def test_the_step_plan(config, decay, expected):
    plan = step_plan(config, decay)
    assert [(s.rows, s.divisor, s.decay) for s in plan.steps] == pytest.approx(expected)
    for s in plan.steps:  # the penalty's weight gives the decay: rows * weight / divisor (summed loss)
        if config.loss_reduction == "sum" and decay == "penalty":
            assert s.rows * s.penalty_weight / s.divisor == pytest.approx(s.decay)
        assert s.grad_scale == pytest.approx(1 / (s.divisor if config.loss_reduction == "sum" else s.rows))
