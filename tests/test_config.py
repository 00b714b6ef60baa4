import math

import pytest

from mxwd.config import PRESETS, Config, preset


def test_defaults_are_the_sources():
    c = Config()
    assert (c.n_train, c.n_test, c.num_inputs) == (20, 100, 200)
    assert (c.true_w, c.true_b, c.noise, c.init_scale) == (0.01, 0.05, 0.01, 1.0)
    assert (c.batch_size, c.num_epochs, c.lr, c.lambdas) == (1, 10, 0.003, (0.0, 5.0))
    assert c.decay_bias is False and c.loss_reduction == "sum"
    assert c.steps == 200


def test_config_is_frozen_and_round_trips():
    c = Config(lambdas=[0, 3], seed=7)
    assert c.lambdas == (0.0, 3.0)
    with pytest.raises(Exception):
        c.lr = 1.0
    assert Config.from_dict(c.to_dict()) == c


def test_steps_counts_the_partial_batch():
    assert Config(n_train=20, batch_size=3, num_epochs=2).steps == 2 * math.ceil(20 / 3)


@pytest.mark.parametrize(
    "name, settings",
    [
        ("gluonbook-2018", dict(batch_size=1, num_epochs=10, lr=0.003, init_scale=1.0, lambdas=(0.0, 5.0),
                                bias_exclusion="two_trainers", loss_reduction="sum")),
        ("d2lzh-2019", dict(batch_size=1, num_epochs=100, lr=0.003, init_scale=1.0, lambdas=(0.0, 3.0),
                            bias_exclusion="two_trainers", loss_reduction="sum")),
        ("d2l-en-0.17", dict(batch_size=5, num_epochs=100, lr=0.003, init_scale=1.0, lambdas=(0.0, 3.0),
                             bias_exclusion="wd_mult", loss_reduction="sum")),
        ("d2l-1.0", dict(batch_size=5, num_epochs=10, lr=0.01, init_scale=0.01, lambdas=(0.0, 3.0),
                         bias_exclusion="wd_mult", loss_reduction="mean")),
    ],
)
def test_presets_carry_the_documented_settings(name, settings):
    c = preset(name)
    for key, value in settings.items():
        assert getattr(c, key) == value, key
    # common to all versions
    assert (c.n_train, c.n_test, c.num_inputs, c.true_w, c.true_b, c.noise) == (20, 100, 200, 0.01, 0.05, 0.01)
    assert c.decay_bias is False


def test_every_preset_is_tested():
    assert set(PRESETS) == {"gluonbook-2018", "d2lzh-2019", "d2l-en-0.17", "d2l-1.0"}


def test_pairing_is_shared_or_notebook_with_distinct_lambdas():
    assert Config().pairing == "shared" and all(p.pairing == "shared" for p in PRESETS.values())
    assert Config(pairing="notebook", lambdas=(0, 3)).pairing == "notebook"
    with pytest.raises(ValueError, match="pairing must be one of shared, notebook; got 'kernel'"):
        Config(pairing="kernel")
    with pytest.raises(ValueError, match=r"lambdas=\[0.0, 3.0, 0.0\] repeats 0.*distinct lambdas"):
        Config(pairing="notebook", lambdas=(0, 3, 0))
    Config(lambdas=(0, 0))  # shared: every run starts from the same w anyway
    c = Config(pairing="notebook", lambdas=(0, 3))
    assert Config.from_dict(c.to_dict()) == c and "pairing='notebook'" in repr(c)
