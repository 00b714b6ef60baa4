"""Presets against the book's published numbers: percentiles, the shared-init ratio, the CLI."""
import json

import numpy as np
import pytest

from mxwd.comparison import compare
from mxwd.config import preset
from mxwd.published import Check, check_published, percentile_of
from mxwd.sweeps import sweep


def test_percentile_on_a_constructed_example():
    runs = np.arange(1, 101, dtype=float)  # 1..100
    assert percentile_of(runs, 0.5) == 0.0
    assert percentile_of(runs, 100.5) == 100.0
    assert percentile_of(runs, 50.5) == 50.0
    assert percentile_of(runs, 50.0) == 49.5  # 49 below, one tie counted half
    assert percentile_of([1.0, 1.0, 1.0, 1.0], 1.0) == 50.0
    assert Check("x", 2.0, runs).inside is False  # 1.5th percentile
    assert Check("x", 3.0, runs).inside is True  # 2.5th percentile: the edge is inside
    assert Check("x", 98.0, runs).inside is True and Check("x", 99.0, runs).inside is False


def test_gluonbook_median_shared_init_ratio_is_the_decay_factor():
    config = preset("gluonbook-2018")
    result = sweep((0.0, 5.0), 20, config)
    ratios = result.grid.w[:, 1, :10] / result.grid.w[:, 0, :10]
    predicted = (1 - config.lr * 5.0) ** config.steps
    assert np.median(ratios) == pytest.approx(predicted, rel=0.2)


def test_gluonbook_check_reports_every_published_number():
    check = check_published("gluonbook-2018", 10)
    assert [c.quantity for c in check.checks] == [
        "b, lambd=0", "mean |w[:10]|, lambd=0", "b, lambd=5", "mean |w[:10]|, lambd=5",
        "median of w(5)[:10] / w(0)[:10]"]
    assert all(len(c.runs) == 10 and 0 <= c.percentile <= 100 for c in check.checks)
    assert check.checks[0].published == 0.12521751


def test_d2l_1_0_semantics_are_reproduced_on_both_paths():
    # batch-mean loss, step(1), w ~ N(0, 0.01^2), wd_mult = 0 on the bias
    c = compare(3.0, preset("d2l-1.0"), seed=0)
    assert c.agree and c.max_dw <= 1e-6
    assert c.scratch.w_norm < 1.0  # the small initialization, not N(0, 1)


def test_mean_and_sum_reductions_are_the_same_update():
    # d2l 1.0's mean loss with step(1) equals the 2018 summed loss with step(|B|)
    mean = compare(3.0, preset("d2l-1.0").replace(loss_reduction="mean"), seed=1).scratch
    summed = compare(3.0, preset("d2l-1.0").replace(loss_reduction="sum"), seed=1).scratch
    np.testing.assert_allclose(mean.w, summed.w, rtol=1e-5, atol=1e-7)


def test_presets_without_published_numbers_are_refused():
    with pytest.raises(ValueError, match="has no published numbers"):
        check_published("d2l-1.0", 3)


def test_cli_seeds_needs_a_preset_with_numbers(capsys, tmp_path):
    from mxwd.cli import main

    assert main(["reproduce", "--preset", "d2l-en-0.17", "--seeds", "5", "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "d2l-en-0.17" in err and "gluonbook-2018, d2lzh-2019" in err


@pytest.mark.slow
def test_cli_places_the_published_numbers(cli_here, tmp_path):
    out = tmp_path / "p"
    proc = cli_here("reproduce", "--preset", "gluonbook-2018", "--seeds", 20, "--out", out, "--quiet")
    assert proc.returncode == 0, proc.stderr
    payload = json.loads((out / "published.json").read_text())
    assert payload["preset"] == "gluonbook-2018" and payload["seeds"] == list(range(20))
    assert len(payload["checks"]) == 5
    assert (out / "published.png").exists() and (out / "published.svg").exists()
    assert "percentile" in proc.stdout and "central 95%" in proc.stdout


def test_the_published_lambdas_are_checked_whatever_the_configs_lambdas():
    from mxwd.config import Config

    check = check_published("gluonbook-2018", 3, Config(lambdas=(0.0, 3.0)))  # used to raise KeyError
    assert check.checks[-1].quantity == "median of w(5)[:10] / w(0)[:10]"
    assert "published: 0.0509" in check.note


def test_d2lzh_with_a_partial_last_batch_places_gluon_numbers_among_per_step_models():
    # was: RuntimeError "the Gluon path differs from the sweep" with --batch-size 3
    from mxwd.config import preset
    from mxwd.published import check_published

    check = check_published("d2lzh-2019", 3, preset("d2lzh-2019").replace(batch_size=3, num_epochs=20))
    assert "partial last batch of 2 rows" in check.note
    scratch3 = next(c for c in check.checks if c.quantity == "||w||, scratch, lambd=3")
    gluon3 = next(c for c in check.checks if c.quantity == "||w||, gluon, lambd=3")
    assert not np.allclose(scratch3.runs, gluon3.runs)  # per-step decay shrinks w more
    assert np.all(gluon3.runs < scratch3.runs)


def test_the_published_check_says_when_the_settings_are_not_the_books():
    from mxwd.config import preset
    from mxwd.published import check_published

    same = check_published("gluonbook-2018", 3, preset("gluonbook-2018").replace(seed=4, hybridize=True))
    assert same.settings_match and "settings: the book's" in same.table() and same.seeds == (4, 5, 6)
    other = check_published("gluonbook-2018", 3, preset("gluonbook-2018").replace(batch_size=3))
    assert not other.settings_match and other.differences == {"batch_size": (3, 1)}
    assert "NOT the book's settings: batch_size 3 (book: 1)" in other.table()
    assert other.table().count("(not the book's settings)") == len(other.checks)
    payload = other.to_dict()
    assert payload["settings_match"] is False and payload["differences"] == {"batch_size": {"ours": 3, "book": 1}}


def test_reproduced_means_within_float32_rounding_of_the_known_stream():
    from mxwd.published import REPRODUCED_RTOL, Reproduced

    same = Reproduced("x", 11.611941, 11.611943)  # 1.7e-7 relative: float32 rounding on another build
    assert same.reproduced and same.difference == pytest.approx(2e-6) and same.relative < REPRODUCED_RTOL
    other = Reproduced("x", 0.04225087, 0.04195229)  # 7e-3 relative: another batch order
    assert not other.reproduced and other.relative == pytest.approx(0.00707, rel=1e-3)
    assert Reproduced("x", 1.0, 1.0 + 0.9 * REPRODUCED_RTOL).reproduced  # (1.0 + RTOL itself rounds above RTOL)
    assert not Reproduced("x", 1.0, 1.0 + 2 * REPRODUCED_RTOL).reproduced


def test_d2lzh_check_runs_the_books_stream_and_places_the_rest_among_batch_orders():
    # 3 epochs instead of 100 keeps it cheap: then no number is reproduced, and all go to the batch orders
    check = check_published("d2lzh-2019", 3, preset("d2lzh-2019").replace(num_epochs=3))
    assert check.differences == {"num_epochs": (3, 100)} and check.order_seeds == (0, 1, 2)
    assert [r.quantity for r in check.reproduced] == [c.quantity for c in check.checks]
    assert not any(r.reproduced for r in check.reproduced)
    assert [c.quantity for c in check.by_order] == [r.quantity for r in check.reproduced]
    for r, c in zip(check.reproduced, check.by_order):
        assert c.over == "batch orders" and len(c.runs) == 3
        # order 0 is mxwd's own: the batched engine's model is the real run (w within 1e-5, so
        # ||w|| ~ 10 within 1e-5 * sqrt(200) absolute; relative 1e-5 is looser than that is tight)
        assert c.runs[0] == pytest.approx(r.ours, rel=1e-5)
        assert len(set(np.round(c.runs, 9))) == 3 or r.quantity.endswith("lambd=0")  # the orders differ
    text = check.table()
    assert "book stream" in text and "batch orders" in text and "second view" in text
    payload = check.to_dict()
    assert payload["book_stream"] == {"seed": 0, "pairing": "notebook"} and len(payload["by_batch_order"]) == 4


@pytest.mark.slow
def test_d2lzh_lambd_0_norms_are_reproduced_and_lambd_3_lie_among_batch_orders():
    # the book's code in one kernel at seed 0, real fit_and_plot and fit_and_plot_gluon runs of
    # 2000 steps (about 8 s on 2 shared cores, with the 20-seed and 20-order grids)
    check = check_published("d2lzh-2019", 20)
    assert [r.reproduced for r in check.reproduced] == [True, False, True, False]
    # the done criterion, 1e-5 absolute: the book's float32 run on another build differs from ours by 2e-6
    assert all(abs(r.difference) <= 1e-5 for r in check.reproduced if r.reproduced)
    assert [c.quantity for c in check.by_order] == ["||w||, scratch, lambd=3", "||w||, gluon, lambd=3"]
    # the published lambd = 3 norms lie within what the batch order spans (deterministic: orders 0..19)
    assert all(0 < c.percentile < 100 for c in check.by_order)
    # lambd = 0: the order does not move ||w|| in float32 beyond 1e-6 relative
    assert all(v <= 1e-6 for v in check.order_spread.values()) and len(check.order_spread) == 2


def test_gluonbook_check_searches_its_seeds_under_both_pairings():
    check = check_published("gluonbook-2018", 5)
    search = check.search
    assert search is not None and not search.found and search.n_seeds == 5
    assert [m.pairing for m in search.best] == ["shared", "notebook"]
    assert [m.blocks for m in search.best] == [(0, 0), (0, 1)]
    assert all(m.distance > search.tolerance for m in search.best)
    assert "no stream reproduces" in check.table() and "notebook-order" in check.note
    notebook = check_published("gluonbook-2018", 5, preset("gluonbook-2018").replace(pairing="notebook"))
    assert notebook.pairing == "notebook" and notebook.checks[0].runs.tolist() == check.checks[0].runs.tolist()
    assert notebook.checks[-1].runs.tolist() != check.checks[-1].runs.tolist()  # lambd = 5 from block 1


def test_the_stream_search_finds_a_planted_stream(monkeypatch):
    # plant seed 3's notebook runs (blocks 1 and 2: one cell ran before) as the "printed" numbers
    from mxwd import published
    from mxwd.scratch import fit_and_plot

    config = preset("gluonbook-2018").replace(pairing="notebook", lambdas=(1.0, 0.0, 5.0), seed=3)
    runs = [fit_and_plot(lambd, config) for lambd in (0.0, 5.0)]
    planted = np.concatenate([runs[0].w[:10], [runs[0].b], runs[1].w[:10], [runs[1].b]])
    monkeypatch.setattr(published, "PRINTED", planted)
    found = published.search_streams(range(5), first_blocks=(0, 1), n_orders=5)
    best = {m.pairing: m for m in found.best}
    assert found.found and best["notebook"].seed == 3 and best["notebook"].blocks == (1, 2)
    assert best["notebook"].distance <= 1e-5  # the batched engine against the float32 runs: compare's rule
    assert best["shared"].distance > found.tolerance  # lambd 5 from block 1 is another run
    with pytest.raises(ValueError, match="first_blocks must be distinct"):
        published.search_streams(3, first_blocks=(1, 1))
