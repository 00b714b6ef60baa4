"""The first-hour frictions of the issue "Ships and survives", beyond the figures (tests/test_plot.py):
one divergence rule in every engine, terminal text as it is, small ratios shown and explained."""
import math
import re

import numpy as np
import pytest

import mxwd
from mxwd.config import Config
from mxwd.training import DIVERGENCE_FACTOR, DivergenceError, diverged

EXPLODES = Config(lr=0.03, num_epochs=3)  # plain SGD at lr 0.03, |B| = 1: lambd 0.01 explodes, lambd 30 trains
LAMBDAS = (0.01, 30.0)


def test_diverged_is_a_non_finite_loss_or_one_beyond_the_bound():
    assert not diverged([100.0, 1.0, 0.01], 100.0)
    assert not diverged([DIVERGENCE_FACTOR * 100.0], 100.0)  # the bound itself is not beyond it
    assert diverged([1.0, DIVERGENCE_FACTOR * 100.0 * (1 + 1e-9)], 100.0)
    assert diverged([1.0, math.inf], 100.0) and diverged([math.nan, 1.0], 100.0)
    losses = np.array([[[1.0, 2.0], [1e21, 1.0]], [[1.0, 1e5], [3.0, 3.0]]])  # (seeds, models, epochs)
    assert diverged(losses, np.array([[1.0], [100.0]])).tolist() == [[False, True], [False, False]]


@pytest.mark.parametrize("engine", ["fast", "exact", "optimizer"])
def test_every_engine_counts_a_loss_far_above_the_initial_model_as_diverged(engine):
    kwargs = {"fast": {}, "exact": {"exact": True}, "optimizer": {"optimizer": "sgd", "lrs": (0.03,)}}[engine]
    result = mxwd.sweep(LAMBDAS, 2, EXPLODES, n_valid=0, **kwargs)
    assert result.grid.diverged[:, 0].all() and not result.grid.diverged[:, 1].any()
    assert [row["diverged"] for row in result.rows()] == [True, True, False, False]
    assert np.isnan(result.band("final_test_ls").median[0]) and result.band("final_test_ls").median[1] < 1


def test_a_single_run_stops_by_the_same_rule():
    with pytest.raises(DivergenceError, match=r"initial model's .* at epoch \d, step \d+, with lambd=0.01 and lr=0.03"):
        mxwd.fit_and_plot(0.01, EXPLODES)
    assert mxwd.fit_and_plot(30.0, EXPLODES).final_test_ls < 1


def test_the_optimizer_summary_counts_diverged_models():
    from mxwd.optimizer_sweeps import summary

    result = mxwd.sweep(LAMBDAS, 2, EXPLODES, n_valid=0, optimizer="sgd", lrs=(0.003, 0.03))
    (count,) = re.findall(r"(\d+) of (\d+) models diverged", summary([result]))
    assert tuple(map(int, count)) == (int(result.grid.diverged.sum()), 8) and int(count[0]) == 2


def fake_atlas():
    from mxwd.optimizer_atlas import Atlas, AtlasEntry

    def entry(name, notes, float64="yes"):
        return AtlasEntry(name=name, mxnet=name, hyperparameters={}, classification="other", dw_coupled=0.00032,
                          dw_decoupled=2.2, effect=0.001, rule="w <- w - lr g", order="", wd_mult_honoured=True,
                          float64=float64, notes=notes)

    return Atlas(Config(), 5.0, (entry("lars", "wd enters the rate as wd ||w|| beside ||g||"),
                                 entry("ftrl", "", float64="no: MXNetError: a | b")), 1.0)


def test_the_terminal_atlas_prints_text_as_it_is_and_markdown_escapes_the_bar():
    atlas = fake_atlas()
    text = atlas.table()
    assert "wd ||w|| beside ||g||" in text and "no: MXNetError: a | b" in text
    assert "//" not in text and "\\|" not in text and str(atlas).startswith(text)
    md = atlas.markdown()
    assert r"wd \|\|w\|\| beside \|\|g\|\|" in md and r"a \| b" in md
    rows = [line for line in md.splitlines() if line.startswith("| ")]
    assert len(rows) == 3  # the header and two optimizers, each with the same eight cells
    assert {len(re.split(r"(?<!\\)\|", row)) - 2 for row in rows} == {8}
    assert [re.split(r"(?<!\\)\|", rows[1])[c].strip() for c in (3, 4, 5)] == ["0.00032", "2.2", "0.001"]


def fake_reproduction():
    """d2lzh-2019's setting (2000 steps, lambd 3): w(3) keeps only what the data added."""
    from mxwd.reproduction import Reproduction
    from mxwd.results import FitResult

    config = Config(num_epochs=100, lambdas=(0.0, 3.0))
    w0 = (-0.82, -0.22, -0.75, -2.26, -0.1, -0.7, -0.1, 0.61, -1.1, -1.45)
    w3 = (0.0049, 0.0035, 0.0026, 0.0037, -0.0024, 0.0021, 0.0029, -0.0015, -0.0031, -0.0022)  # 7 of 10 flipped
    runs = tuple(FitResult("scratch", lambd, config, (1.0,), (1.0,), w + (0.0,) * 190, 0.0)
                 for lambd, w in ((0.0, w0), (3.0, w3)))
    return Reproduction(config, runs, ())


def test_a_tiny_decay_factor_is_printed_as_a_number_and_a_negative_ratio_is_explained():
    reproduction = fake_reproduction()
    (ratio,) = reproduction.ratios()
    assert ratio.predicted == pytest.approx((1 - 0.003 * 3) ** 2000) and ratio.median < 0
    table = reproduction.table()
    printed = float(re.search(r"\(1 - lr\*lambd\)\*\*steps = (\S+)", table).group(1))
    assert printed == pytest.approx(ratio.predicted, rel=1e-2) and printed > 0  # not 0.0000
    assert float(re.search(r"median (\S+);", table).group(1)) == pytest.approx(ratio.median, rel=1e-2)
    assert "opposite sign to w(0) in 7 of the 10 entries" in table and "no longer measures the decay" in table


def test_the_published_ratio_note_shows_small_numbers_and_says_what_they_mean():
    from mxwd.published import check_published

    note = check_published("gluonbook-2018", 3, Config(num_epochs=100)).note  # 2000 steps instead of the book's 200
    printed = float(re.search(r"\(1 - lr\*lambd\)\*\*steps = ([^;]+);", note).group(1))
    assert printed == pytest.approx((1 - 0.003 * 5) ** 2000, rel=1e-2)
    assert "no longer measures the decay" in note
    book = check_published("gluonbook-2018", 3).note  # the book's settings: the ratio is the decay factor
    assert "no longer measures" not in book
