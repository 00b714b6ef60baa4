"""The MLP experiment (mxwd.mlp): the two paths agree, BatchNorm's scale invariance, the
quiet-unit count recomputed in NumPy from the saved weights, bad input, what `mxwd mlp` writes.

The fast tests run reduced settings (a narrower net, a few epochs): each claim below holds
for any settings, so none needs the default run's length. The default run itself is in the
slow tests.
"""
import argparse
import json
import math
from pathlib import Path
import struct
import subprocess
import sys

import numpy as np
import pytest
from matplotlib.text import Text

from mxwd import mlp_plot
from mxwd.comparison import TOLERANCE
from mxwd.mlps import (BN_EPSILON, BN_SCALES, NORM_ROUNDING, MLPConfig, init_params, load_digits_data, make_bn_net,
                      make_gluon_net, mlp, pruned_accuracy)

SMALL = MLPConfig(hidden_units=32, num_epochs=8, eval_every=2, lambdas=(0.0, 0.1))
TINY = dict(hidden_units=16, num_epochs=3, lambdas=(0.0, 0.1))
U32 = 2.0 ** -24


@pytest.fixture(scope="module")
def small():
    return mlp(SMALL)


@pytest.fixture(scope="module")
def written(tmp_path_factory):
    """`mxwd mlp` (mxwd.cli.mlp.run) with tiny settings: the folder it wrote."""
    from mxwd.cli import mlp as cli_mlp

    out = tmp_path_factory.mktemp("mlp") / "out"
    fields = {name: None for name in MLPConfig.__dataclass_fields__}
    fields.update(hidden_units=16, num_epochs=3, lambdas=[0.0, 0.1])
    args = argparse.Namespace(**fields, out=out, force=False, quiet=True, yes=False, preset=None)
    assert cli_mlp.run(args) == 0
    return out


# ---------------------------------------------------------------------------------------
# The two paths.


def test_scratch_and_gluon_agree_by_compares_rule(small):
    for activation, lambd, gap in small.gaps():
        assert gap.tolerance == TOLERANCE["float32"] == 1e-5
        assert gap.agree, (activation, lambd, gap.line())
        assert gap.max_dw <= 1e-5 and gap.db <= 1e-5
    worst = small.worst_gap()
    assert worst["agree"] and worst["max_dw"] <= 1e-5


def test_the_paths_agree_on_a_partial_last_batch():
    # 30 rows in batches of 8: the last batch of each epoch has 6 rows. Both paths decay by a
    # full step there (the scratch penalty's per-step semantics), so they are still one map.
    result = mlp(n_train=30, batch_size=8, activations=("tanh",), lambdas=(0.1,), batchnorm=False,
                 hidden_units=16, num_epochs=4)
    (_, _, gap), = result.gaps()
    assert gap.agree, gap.line()


def test_the_policy_decays_the_weight_matrices_and_not_the_biases():
    from mxwd.policy import decay_policy

    config = MLPConfig(hidden_units=8)
    net = make_gluon_net(init_params(config), "relu")
    policy = decay_policy(net)
    assert policy.decayed == ("mlp_dense0_weight", "mlp_dense1_weight")
    assert policy.excluded == ("mlp_dense0_bias", "mlp_dense1_bias")


def test_both_paths_start_from_the_same_draws_and_data_for_a_seed():
    config = MLPConfig(hidden_units=8)
    a, b = init_params(config), init_params(config)
    assert all(np.array_equal(a[k].asnumpy(), b[k].asnumpy()) for k in a)
    assert load_digits_data(config).train_rows == load_digits_data(config).train_rows
    assert load_digits_data(config).train_rows != load_digits_data(config.replace(seed=1)).train_rows


def test_the_same_seed_gives_the_same_numbers():
    first, second = (mlp(activations=("relu",), batchnorm=False, **TINY).to_dict() for _ in range(2))
    assert first == second


# ---------------------------------------------------------------------------------------
# The hidden units, recomputed in NumPy from what `mxwd mlp` saved.


def _digits(rows):
    from sklearn.datasets import load_digits

    digits = load_digits()
    return digits.data[rows] / 16.0, digits.target[rows]


PHI = {"relu": lambda z: np.maximum(z, 0.0), "tanh": np.tanh, "sigmoid": lambda z: 1.0 / (1.0 + np.exp(-z))}


def test_quiet_units_recomputed_from_the_saved_weights_and_the_data(written):
    payload = json.loads((written / "mlp.json").read_text())
    weights = np.load(written / "weights.npz")
    X, _ = _digits(weights["train_rows"])
    assert list(weights["train_rows"]) == payload["data"]["train_rows"]
    fraction = payload["config"]["quiet_fraction"]
    W1_0, b1_0 = weights["initial/W1"].astype(np.float64), weights["initial/b1"].astype(np.float64)
    for run in payload["runs"]:
        phi = PHI[run["activation"]]
        reference = np.median(phi(X @ W1_0.T + b1_0).std(axis=0))
        key = f"{run['activation']}/{run['lambd']!r}/{run['path']}"
        W1, b1 = weights[key + "/W1"].astype(np.float64), weights[key + "/b1"].astype(np.float64)
        stds = phi(X @ W1.T + b1).std(axis=0)
        # MXNet computes the hidden outputs in float32: each std carries a relative error of a
        # few float32 ulps of the outputs (a 64-term dot, then phi: <= 64 u relative, u = 6e-8,
        # plus the outputs' magnitude over their spread), far below 1e-4 of the threshold.
        # Units within 1e-4 of the threshold may fall either way; none is that close here.
        np.testing.assert_allclose(run["unit_stds"], stds, rtol=1e-4, atol=1e-5)
        threshold = fraction * reference
        assert run["quiet_threshold"] == pytest.approx(threshold, rel=1e-4)
        surely, maybe = np.sum(stds < threshold * (1 - 1e-4)), np.sum(stds < threshold * (1 + 1e-4))
        assert surely <= run["quiet_units"] <= maybe, key
        assert run["hidden_units"] == W1.shape[0]
        np.testing.assert_allclose(run["unit_weight_norms"], np.linalg.norm(W1, axis=1), rtol=1e-5)


def test_a_missing_sigmoid_neuron_is_a_constant_the_next_bias_absorbs():
    # A unit with zero incoming weights outputs sigmoid(b_j) on every image (0.5 for b_j = 0),
    # not 0; removing it and adding W2[:, j] * sigmoid(b_j) to b2 leaves every logit unchanged.
    rng = np.random.default_rng(0)
    X = rng.uniform(size=(50, 64))
    params = {"W1": rng.normal(size=(6, 64)), "b1": rng.normal(size=6), "W2": rng.normal(size=(10, 6)),
              "b2": rng.normal(size=10)}
    params["W1"][2], params["b1"][2] = 0.0, 0.0
    h = PHI["sigmoid"](X @ params["W1"].T + params["b1"])
    assert np.all(h[:, 2] == 0.5)
    labels = np.argmax(h @ params["W2"].T + params["b2"], axis=1)  # the full network is right everywhere
    quiet = np.arange(6) == 2
    assert pruned_accuracy(params, h, labels, quiet, h.mean(axis=0)) == 1.0
    kept = h[:, ~quiet] @ params["W2"][:, ~quiet].T + params["b2"] + params["W2"][:, quiet] @ h[:, quiet].mean(axis=0)
    np.testing.assert_allclose(kept, h @ params["W2"].T + params["b2"], rtol=0, atol=1e-12)


def test_the_readings_name_a_verdict_per_activation(small):
    readings = small.readings()
    assert [r.activation for r in readings] == list(SMALL.activations)
    for r in readings:
        assert r.verdict in ("holds", "only as the network collapses", "does not hold")
    sigmoid = next(r for r in readings if r.activation == "sigmoid")
    assert "sigmoid(b_j + w_j . mean x)" in sigmoid.text and "0.5" in sigmoid.text


# ---------------------------------------------------------------------------------------
# BatchNorm.


def _bn_logits(X, p, activation, eps):
    z = X @ p["W1"].T
    x_hat = (z - z.mean(axis=0)) / np.sqrt(z.var(axis=0) + eps)
    return PHI[activation](p["gamma"] * x_hat + p["beta"]) @ p["W2"].T + p["b2"]


def test_batchnorm_makes_the_function_invariant_to_the_scale_of_its_weight(small):
    bn = small.batchnorm
    X, _ = _digits(list(small.train_rows))
    for run in (bn.decayed, bn.not_decayed):
        p = {k: v.astype(np.float64) for k, v in run.params.items()}
        for check in run.scale_checks:
            # MXNet, float32, training mode: within the bound from eps and float32 rounding, and
            # that bound is at least 1000 times smaller than the change without BatchNorm
            assert check.max_abs_diff <= check.tolerance, check
            assert check.tolerance <= 1e-3 * check.without_bn_diff, check
            # independently, in float64: with eps = 0 the logits do not move at all (only
            # float64 rounding, ~1e-16 of logits of size ~10); with eps = 1e-5 they move by the
            # eps_diff the result reports, and MXNet's change is that plus float32 rounding
            c = check.scale
            scaled = {**p, "W1": c * p["W1"]}
            exact = np.max(np.abs(_bn_logits(X, scaled, bn.activation, 0.0) - _bn_logits(X, p, bn.activation, 0.0)))
            assert exact <= 1e-11
            eps = np.max(np.abs(_bn_logits(X, scaled, bn.activation, BN_EPSILON)
                                - _bn_logits(X, p, bn.activation, BN_EPSILON)))
            assert eps == pytest.approx(check.eps_diff, rel=1e-6, abs=1e-12)
            assert abs(check.max_abs_diff - check.eps_diff) <= check.tolerance
    assert [c.scale for c in bn.decayed.scale_checks] == list(BN_SCALES)


def test_the_gradient_of_a_batchnorm_preceded_weight_is_orthogonal_to_it():
    # L(c w) = L(w) for every c > 0 (up to eps), so d/dc L(c w) at c = 1 = <grad, w> = 0 per unit:
    # plain SGD can only lengthen w (||w - lr g||^2 = ||w||^2 + lr^2 ||g||^2), and decay is what
    # shortens it. The cosine is checked to 1e-3: eps's part is ~ eps / var_j ~ 1e-5 here.
    from mxwd._mx import autograd, gluon

    config = MLPConfig(hidden_units=16)
    data = load_digits_data(config)
    net = make_bn_net(init_params(config), "relu")
    with autograd.record():
        loss = gluon.loss.SoftmaxCrossEntropyLoss()(net(data.train_features[:20]), data.train_labels[:20])
    loss.backward()
    w = net[0].weight.data().asnumpy().astype(np.float64)
    g = net[0].weight.grad().asnumpy().astype(np.float64)
    cos = np.sum(w * g, axis=1) / (np.linalg.norm(w, axis=1) * np.linalg.norm(g, axis=1))
    assert np.max(np.abs(cos)) <= 1e-3


def test_decay_shrinks_the_batchnorm_weight_and_raises_its_effective_step(small):
    d, n = small.batchnorm.decayed, small.batchnorm.not_decayed
    assert d.weight_norm[0] == n.weight_norm[0]  # the same initial W1
    # without decay no unit's weight norm shrinks (see the orthogonality test), up to the
    # float32 rounding of the update (a few ulps of ||w_j||, 1e-6 relative)
    assert n.min_unit_norm_ratio >= 1 - NORM_ROUNDING == 1 - 1e-6
    assert d.weight_norm[-1] < d.weight_norm[0] and d.weight_norm[-1] < n.weight_norm[-1]
    # lr / ||w_j||^2 as the weight norms say
    assert d.effective_step[-1] > n.effective_step[-1]
    assert d.effective_step[0] == pytest.approx(n.effective_step[0])
    reading = small.batchnorm.reading()
    assert f"from {d.weight_norm[0]:.3g} to {d.weight_norm[-1]:.3g}" in reading
    # the decay alone multiplies W1 by (1 - lr wd) per step; the gradient, orthogonal to each
    # row, can only lengthen it: the norm ends at or above the decay's prediction
    factor = (1 - SMALL.lr * SMALL.bn_lambd) ** SMALL.steps
    assert d.weight_norm[-1] >= d.weight_norm[0] * factor * (1 - 1e-5)
    assert "mlpbn_dense0_weight" in d.policy.split("; not decayed")[0]
    assert "mlpbn_dense0_weight" in n.policy.split("; not decayed")[1]


# ---------------------------------------------------------------------------------------
# Bad input.


@pytest.mark.parametrize("settings, words", [
    (dict(n_train=5), "n_train must be >= 10, got 5"),
    (dict(n_train=1790), "n_train must be <= 1697"),
    (dict(hidden_units=0), "hidden_units must be >= 1"),
    (dict(activations=("gelu",)), "activations must be one of relu, tanh, sigmoid; got 'gelu'"),
    (dict(activations="relu"), "activations must be a sequence"),
    (dict(activations=()), "activations must name at least one"),
    (dict(lambdas=(-1.0,)), "lambdas must be >= 0.0, got -1.0"),
    (dict(lambdas=(0.0, 0.0)), "lambdas must not repeat"),
    (dict(lambdas=(10.0,)), r"lr \* lambd = 3 >= 2.*allowed: lambd < 2 / lr"),
    (dict(bn_lambd=7.0), r"bn_lambd value 7 with lr = 0.3"),
    (dict(lr=0.0), "lr must be > 0.0, got 0.0"),
    (dict(batch_size=200), "batch_size must be <= n_train = 100, got 200"),
    (dict(quiet_fraction=1.5), "quiet_fraction must be < 1"),
    (dict(eval_every=0), "eval_every must be >= 1"),
    (dict(batchnorm="yes"), "batchnorm must be True or False"),
    (dict(bn_activation="elu"), "bn_activation must be one of relu, tanh, sigmoid"),
    (dict(seed=-1), "seed must be >= 0"),
    (dict(num_epochs=2.5), "num_epochs must be an integer, got 2.5"),
    (dict(hidden=8), "unknown MLPConfig field 'hidden'; allowed: n_train, hidden_units"),
])
def test_bad_input_is_refused_naming_the_parameter_the_value_and_what_is_allowed(settings, words):
    with pytest.raises(ValueError, match=words):
        mlp(**settings)


def test_a_config_that_is_not_an_mlp_config_is_refused():
    with pytest.raises(ValueError, match="config must be an MLPConfig, got dict"):
        mlp({"n_train": 100})
    with pytest.raises(ValueError, match="unknown MLPConfig field 'bogus'"):
        MLPConfig.from_dict({"bogus": 1})
    assert MLPConfig.from_dict(MLPConfig(seed=3).to_dict()) == MLPConfig(seed=3)


def test_the_cli_refuses_bad_input_before_writing_anything(tmp_path):
    from mxwd.cli import mlp as cli_mlp
    from mxwd.cli.options import Parser, UsageError

    parser = Parser(prog="mxwd")
    cli_mlp.add_parser(parser.add_subparsers(dest="command", parser_class=Parser))
    with pytest.raises(UsageError, match="invalid choice: 'gelu'"):
        parser.parse_args(["mlp", "--activations", "gelu"])
    args = parser.parse_args(["mlp", "--lambdas", "0", "-1", "--out", str(tmp_path / "out")])
    assert args.lambdas == [0.0, -1.0] and args.preset is None
    with pytest.raises(ValueError, match="lambdas must be >= 0.0, got -1.0"):
        cli_mlp.run(args)
    assert not (tmp_path / "out").exists()


# ---------------------------------------------------------------------------------------
# What `mxwd mlp` writes.


def _png(path):
    data = path.read_bytes()
    width, height = struct.unpack(">II", data[16:24])
    i = data.find(b"pHYs")
    return width, height, struct.unpack(">I", data[i + 4 : i + 8])[0] * 0.0254


def test_the_cli_writes_mlp_json_weights_and_figures(written):
    payload = json.loads((written / "mlp.json").read_text())
    assert payload["command"] == "mlp" and payload["seed"] == 0
    assert MLPConfig.from_dict(payload["config"]) == MLPConfig(**{**TINY, "lambdas": (0.0, 0.1)})
    assert {"python", "mxnet", "numpy", "mxwd", "scikit-learn"} <= set(payload["versions"])
    runs = payload["runs"]
    assert len(runs) == 3 * 2 * 2
    assert {(r["activation"], r["lambd"], r["path"]) for r in runs} == {
        (a, l, p) for a in ("relu", "tanh", "sigmoid") for l in (0.0, 0.1) for p in ("scratch", "gluon")}
    keys = {"activation", "lambd", "path", "train_loss", "test_loss", "test_accuracy", "quiet_units", "hidden_units"}
    for r in runs:
        assert keys <= set(r)
        assert 0 <= r["quiet_units"] <= r["hidden_units"] == 16
        assert 0 <= r["test_accuracy"] <= 1 and math.isfinite(r["test_loss"])
    bn = payload["batchnorm"]
    assert {"decayed", "not_decayed", "invariant", "reading", "epsilon"} <= set(bn)
    assert len(bn["decayed"]["weight_norm"]) == 3 + 1 and len(bn["decayed"]["scale_checks"]) == len(BN_SCALES)
    assert payload["worst_gap"]["agree"]
    for name in ("lambd_effects", "weight_norms", "batchnorm"):
        width, height, dpi = _png(written / f"{name}.png")
        assert width >= 640 and height >= 400 and dpi >= 99.9, name


def test_the_figures_are_readable(small):
    for fig in (mlp_plot.lambd_effects(small), mlp_plot.weight_norm_histograms(small),
                mlp_plot.batchnorm(small.batchnorm)):
        width, height = fig.get_size_inches()
        assert width >= 6.4 and height >= 4.0
        texts = [t for t in fig.findobj(Text) if t.get_text().strip()]
        assert min(t.get_fontsize() for t in texts) >= 9
        assert fig._suptitle is not None and fig._suptitle.get_text()


def test_the_result_reads_short_and_in_full(small):
    text = repr(small)
    assert text.startswith("<MLPResult seed 0, 12 runs") and len(text) < 300
    table = small.table()
    assert "scratch vs Gluon" in table and "BatchNorm" in table
    assert small.run("tanh", 0.1, "scratch").path == "scratch"
    with pytest.raises(ValueError, match="no run for activation='gelu'"):
        small.run("gelu", 0.0)


# ---------------------------------------------------------------------------------------
# The default run (slow).


@pytest.mark.slow
def test_the_default_run_in_a_new_process_gives_the_same_numbers_and_its_claims():
    code = "import json; from mxwd.mlps import mlp; d = mlp().to_dict(); print(json.dumps(d))"
    outs = [json.loads(subprocess.run([sys.executable, "-c", code], check=True, capture_output=True,
                                      text=True, timeout=300).stdout) for _ in range(2)]
    assert outs[0] == outs[1]
    d = outs[0]
    assert d["worst_gap"]["agree"]
    verdicts = {r["activation"]: r["verdict"] for r in d["readings"]}
    assert verdicts["relu"] == "holds"
    assert d["batchnorm"]["invariant"]
    bn = d["batchnorm"]
    assert bn["decayed"]["weight_norm"][-1] < 0.2 * bn["not_decayed"]["weight_norm"][-1]


def test_the_mlp_command_end_to_end(tmp_path, capsys):
    from mxwd.cli import main
    from mxwd.cli.options import build_parser

    assert build_parser().parse_args(["mlp"]).out == Path("results/mlp")
    argv = ["mlp", "--num-epochs", "2", "--lambdas", "0", "0.01", "--activations", "relu", "--no-batchnorm",
            "--quiet", "--out", str(tmp_path / "m")]
    assert main(argv) == 0
    runs = json.loads((tmp_path / "m" / "mlp.json").read_text())["runs"]
    assert {(r["activation"], r["lambd"], r["path"]) for r in runs} == {
        ("relu", l, p) for l in (0.0, 0.01) for p in ("scratch", "gluon")}
    capsys.readouterr()
    assert main(["mlp", "--activations", "gelu", "--out", str(tmp_path / "bad")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "gelu" in err and not (tmp_path / "bad").exists()
