"""The lr x lambd x seeds engine for every optimizer of the sweep, against gluon.Trainer runs.

sgd, sgd+momentum, adam, adamw, sgdw, and adamw-paper, sgdw-paper (the paper's convention:
mx.optimizer.create('adamw', ..., decouple_lr=True)); then the divergence rule, the measure of
how far the best lambd moves with the lr, and the command line's flags.
"""
import itertools
import json
import math

import numpy as np
import pytest

import mxwd
from mxwd import optimizer_atlas as A
from mxwd.config import Config
from mxwd.grid import Grid
from mxwd.optimizers import SWEEP_OPTIMIZERS, spec
from mxwd.steps import unstable
from mxwd.sweep_results import SweepResult

LRS, LAMBDAS, SEEDS = (0.001, 0.01), (0.0, 1.0, 5.0), (0, 2)
# the paper's lambd is the decay per step, w <- (1 - lambd) w: 1e-3 a typical one, 1 wipes w
# every step (the factor is exactly 0), 1.5 flips its sign (-0.5); 5 would make w blow up
PAPER_LAMBDAS = (1e-3, 1.0, 1.5)


def lambdas_for(optimizer):
    return PAPER_LAMBDAS if spec(optimizer).hyperparameters.get("decouple_lr") else LAMBDAS


def worst_gap(result, optimizer, config, mode="wd"):
    """max over models of |w_sweep - w_trainer| / max(1, |w|), and the same for b
    (relative above 1: with lr = 0.01 and batch size 1 sgdw's weights grow to 1e5)."""
    worst = 0.0
    for s, seed in enumerate(result.seeds):
        for k, (lr, lambd) in enumerate(result.pairs):
            w, b = A.train_with(spec(optimizer), config.replace(lr=lr, seed=seed), lambd, mode)
            worst = max(worst, np.abs(result.grid.w[s, k] - w).max() / max(1.0, np.abs(w).max()),
                        abs(result.grid.b[s, k] - b) / max(1.0, abs(b)))
    return worst


# The source's full run (batch 1, 10 epochs: 200 steps) is slow; the fast case trains 3 epochs
# of batch 3 (21 steps, each epoch ending on a partial batch of 2 rows), which any wrong term in
# a rule fails by far: a missing decay alone moves w by lr lambd |w| ~ 1e-3 per step.
@pytest.mark.parametrize("optimizer", SWEEP_OPTIMIZERS)  # the optimizer table's
@pytest.mark.parametrize("batch_size, epochs, seeds", [pytest.param(1, 10, SEEDS[1:], marks=pytest.mark.slow, id="full"),
                                                       pytest.param(3, 3, SEEDS[:1], id="partial-batch")])
def test_each_batched_model_equals_its_gluon_trainer_run(optimizer, batch_size, epochs, seeds):
    config = Config(batch_size=batch_size, num_epochs=epochs)
    result = mxwd.sweep(lambdas_for(optimizer), seeds, config, n_valid=0, optimizer=optimizer, lrs=LRS)
    # float32: each step rounds w to ~6e-8 relative in both runs, in a different order of
    # operations (a batched dot vs FullyConnected, the decay as one factor vs w - (lr wd) w);
    # 200 steps that mostly shrink w keep the relative gap within 200 x 6e-8 ~ 1.2e-5 in the
    # worst case and ~1e-6 in practice (measured 4e-7 to 4e-6): 1e-5 leaves the margin
    assert worst_gap(result, optimizer, config) <= 1e-5


# adam is left out: MXNet's fused adam kernel takes beta1, beta2 and epsilon as float32 numbers,
# which the batched rule shares, but its float64 run ends ~2e-9 from the gluon run's
@pytest.mark.parametrize("optimizer", [n for n in SWEEP_OPTIMIZERS if n != "adam"])
def test_in_float64_the_engines_are_the_optimizers_to_rounding(optimizer):
    # sgd and sgd+momentum: MXNet passes lr, wd and momentum to its kernels as float32 numbers
    # even for float64 weights; the engine rounds them alike, so both runs do the same float64
    # arithmetic up to its order: ~1e-16 per op, over 3 x 5 steps and 201 weights ~ 1e-14 at worst
    config = Config(batch_size=4, dtype="float64", num_epochs=3)
    result = mxwd.sweep(lambdas_for(optimizer), SEEDS[:1], config, n_valid=0, optimizer=optimizer, lrs=LRS)
    assert worst_gap(result, optimizer, config) <= 1e-12


@pytest.mark.parametrize("torch_name", ["adamw", "sgdw"])
def test_the_papers_lambd_is_torchs_lambd_times_lr_at_a_constant_lr(torch_name):
    # invariance: at a constant lr the paper's decay lambd w equals torch's lr (lambd / lr) w, so
    # adamw-paper(lr, lambd) is adamw(lr, lambd / lr): the same models up to the rounding of
    # 1 - lambd vs 1 - lr (lambd / lr) (~1e-16 relative in float64, per step)
    config = Config(batch_size=5, dtype="float64", num_epochs=4)
    lr, lambdas = 0.01, (1e-3, 0.1, 1.0, 1.9)
    paper = mxwd.sweep(lambdas, (0,), config, n_valid=0, optimizer=torch_name + "-paper", lrs=(lr,))
    torch = mxwd.sweep([v / lr for v in lambdas], (0,), config, n_valid=0, optimizer=torch_name, lrs=(lr,))
    assert np.abs(paper.grid.w - torch.grid.w).max() <= 1e-12 * max(1.0, np.abs(torch.grid.w).max())
    assert np.array_equal(paper.grid.diverged, torch.grid.diverged) and not paper.grid.diverged.any()


def test_adam_plus_l2_is_mxnets_adam_with_wd_and_the_penalty_in_the_loss():
    config = Config()
    result = mxwd.sweep((5.0,), (0,), config, n_valid=0, optimizer="adam", lrs=(0.01,))
    penalty, _ = A.train_with(spec("adam"), config.replace(lr=0.01), 5.0, "penalty")
    builtin, _ = A.train_with(spec("adam"), config.replace(lr=0.01), 5.0, "wd")
    assert np.array_equal(penalty, builtin)  # bitwise: MXNet's adam adds wd * w to the gradient
    assert np.abs(result.grid.w[0, 0] - builtin).max() <= 1e-5


def test_decoupled_decay_at_lr_lambd_of_2_or_more_is_marked_diverged():
    result = mxwd.sweep((100.0, 300.0), (0,), n_valid=0, optimizer="adamw", lrs=(0.001, 0.01))
    assert result.grid.diverged[0].tolist() == [False, False, False, True]  # 0.01 * 300 = 3
    adam = mxwd.sweep((300.0,), (0,), n_valid=0, optimizer="adam", lrs=(0.01,))
    assert not adam.grid.diverged.any()  # coupled Adam has no such factor


def test_the_unstable_rule_is_the_spectral_radius_of_the_decay_map():
    # in the directions the data never touch, sgd+momentum maps (w, v) by v <- m v - a w,
    # w <- w + v; the rule (Jury's test) must say "unstable" exactly where an eigenvalue of that
    # 2 x 2 matrix reaches modulus 1 (decoupled decay, momentum 0: the factor 1 - a alone)
    for a, m in itertools.product(np.linspace(0.05, 4.5, 90), (0.0, 0.3, 0.5, 0.9)):
        radius = max(abs(np.linalg.eigvals(np.array([[1 - a, m], [-a, m]]))))
        if abs(radius - 1) > 1e-9:  # at radius 1 itself the rule says unstable (">= 1 never shrinks")
            assert unstable(a, 1.0, momentum=m) == (radius > 1), (a, m, radius)
    assert unstable(0.001, 2.0, decouple_lr=True) and not unstable(0.5, 1.99, decouple_lr=True)  # lr plays no part


def test_the_sweep_marks_unstable_decay_by_each_optimizers_rule():
    config = Config(batch_size=4, num_epochs=3)
    paper = mxwd.sweep((1.9, 2.0), (0,), config, n_valid=0, optimizer="adamw-paper", lrs=(1e-4, 1e-2))
    assert paper.grid.diverged[0].tolist() == [False, True, False, True]  # lambd >= 2 at every lr
    # lr * lambd = 2.5 is unstable for plain SGD (|1 - 2.5| > 1) but not through momentum 0.5
    # (stable up to 2 (1 + 0.5) = 3); at 3.5 both are unstable. The engine's weights do what the
    # map predicts: over the 15 steps, in the 180 directions the 20 rows leave untouched, w is
    # multiplied by (M^15)[0, 0] = 0.0039 at 2.5 and -4756 at 3.5 (eigenvalues of modulus 0.71
    # and 1.71), from ||w0|| ~ sqrt(200) ~ 14: below 1 at 2.5, far above 1e3 at 3.5
    lams = (2500.0, 3500.0)
    mom = mxwd.sweep(lams, (0,), config, n_valid=0, optimizer="sgd+momentum", lrs=(1e-3,))
    sgd = mxwd.sweep(lams, (0,), config, n_valid=0, optimizer="sgd", lrs=(1e-3,))
    assert mom.grid.diverged[0].tolist() == [False, True] and sgd.grid.diverged[0].tolist() == [True, True]
    norms = mom.grid.w_norm[0]
    assert norms[0] < 1.0 and norms[1] > 1e3


def fake_sweep(test_loss, lrs, lambdas):
    """A SweepResult whose median final test loss is `test_loss` (lrs x lambdas; NaN = diverged), 3 seeds."""
    S, (n_lr, n_lam) = 3, test_loss.shape
    final = np.broadcast_to(test_loss.reshape(1, -1, 1), (S, n_lr * n_lam, 1))
    grid = Grid(train_ls=final.copy(), test_ls=final.copy(), valid_ls=None, w=np.zeros((S, n_lr * n_lam, 2)),
                b=np.zeros((S, n_lr * n_lam)), diverged=np.broadcast_to(np.isnan(test_loss).reshape(1, -1), (S, n_lr * n_lam)))
    return SweepResult(Config(), tuple(lambdas), (0, 1, 2), 0, grid, None, "adamw", tuple(lrs), {})


def test_the_drift_of_the_best_lambd_is_its_theil_sen_slope_over_the_bracketed_lrs():
    lrs, lambdas = (1e-4, 1e-3, 1e-2, 1e-1), tuple(10.0 ** np.arange(-3, 7))  # 1e-3 to 1e6
    y = np.log10(lambdas)[None, :]

    def loss(best):  # a parabola in log10(lambd) around log10(best) at each lr
        return 1 + (y - np.log10(best)[:, None]) ** 2

    # lr * lambd = 10 at every lr: the best lambd falls a decade per decade of lr (closed form: slope -1)
    torch = fake_sweep(loss(10 / np.array(lrs)), lrs, lambdas)
    assert [b.lambd for b in torch.best_lambd_by_lr()] == [1e5, 1e4, 1e3, 1e2]
    drift = torch.lambd_drift()
    assert drift.slope == pytest.approx(-1.0, abs=1e-12) and drift.spread == pytest.approx(3.0) and len(drift.lrs) == 4
    # the same best lambd at every lr: slope 0, spread 0
    assert fake_sweep(loss(np.full(4, 0.1)), lrs, lambdas).lambd_drift()[:2] == (0.0, 0.0)
    # robust: one lr whose best jumps 3 decades moves the median of the 6 pairwise slopes by
    # little (the mean of them by much): they are 0, 0, 0, then 3/1, 3/2, 3/3 from the lr 1e-1
    jumpy = fake_sweep(loss(np.array([0.1, 0.1, 0.1, 100.0])), lrs, lambdas).lambd_drift()
    assert jumpy.slope == pytest.approx(0.5) and jumpy.spread == pytest.approx(3.0)
    # not bracketed: a best at the grid's end (lr 1e-4 wants 1e7, beyond 1e6), or beside a
    # column where every model diverged (lr 1e-1: lambd 1e3 diverged, best 1e2), or all diverged
    test = loss(10 / np.array(lrs))
    test[0] = 1 + (y[0] - 7.0) ** 2
    test[3, np.log10(lambdas) == 3] = np.nan
    test[2] = np.nan
    best = fake_sweep(test, lrs, lambdas).best_lambd_by_lr()
    assert [(b.lambd, b.bracketed) for b in best][:2] == [(1e6, False), (1e4, True)] and not best[3].bracketed
    assert math.isnan(best[2].lambd) and not best[2].bracketed
    lone = fake_sweep(test, lrs, lambdas).lambd_drift()
    assert lone.lrs == (1e-3,) and math.isnan(lone.slope) and lone.spread == 0.0  # one lr: no slope
    # the grid's neighbours are in lambd order, whatever order the lambdas were given in
    shuffled = (1e2, 1e-3, 1e5, 1e0, 1e6, 1e3, 1e-1, 1e4, 1e-2, 1e1)
    perm = [lambdas.index(v) for v in shuffled]
    assert [b.bracketed for b in fake_sweep(test[:, perm], lrs, shuffled).best_lambd_by_lr()] == [b.bracketed for b in best]


def test_the_summary_says_how_far_the_best_lambd_moves():
    from mxwd.optimizer_sweeps import summary

    lrs, lambdas = (1e-4, 1e-3, 1e-2, 1e-1), tuple(10.0 ** np.arange(-3, 7))  # 1e-3 to 1e6
    result = fake_sweep(1 + (np.log10(lambdas)[None, :] - np.log10(10 / np.array(lrs))[:, None]) ** 2, lrs, lambdas)
    text = summary([result])
    assert "moves -1.00 decades per decade of lr" in text and "over the 4 lrs" in text and "range 3.00 decades" in text
    assert "0.0001: 1e+05, 0.001: 1e+04" in text


def test_momentum_sets_sgd_momentum_and_sgdw_alike_and_the_names_parse():
    from mxwd.cli.options import build_parser
    from mxwd.optimizer_sweeps import hyperparameters_for

    per = hyperparameters_for(["sgd+momentum", "sgdw", "sgdw-paper", "adamw"], {"momentum": 0.9})
    assert per == {"sgd+momentum": {"momentum": 0.9}, "sgdw": {"momentum": 0.9}, "sgdw-paper": {"momentum": 0.9},
                   "adamw": {}}
    assert spec("sgd+momentum").hyperparameters["momentum"] == spec("sgdw").hyperparameters["momentum"]  # defaults too
    args = build_parser().parse_args(["sweep", "--optimizer", "sgd+momentum", "sgdw", "adamw-paper", "--lrs", "0.01"])
    assert args.optimizer == ["sgd+momentum", "sgdw", "adamw-paper"]
    assert str(args.out) == "results/sweep-sgd+momentum-sgdw-adamw-paper"


@pytest.mark.parametrize("kwargs, words", [
    (dict(optimizer="rmsprop", lrs=(0.1,)), ["optimizer", "rmsprop", "sgd, sgd+momentum, adam, adamw, sgdw, adamw-paper"]),
    (dict(optimizer="adamw", lrs=(0.1,), hyperparameters={"decouple_lr": True}), ["decouple_lr", "adamw-paper"]),
    (dict(optimizer="adamw-paper", lrs=(0.1,), hyperparameters={"decouple_lr": False}),
     ["decouple_lr", "fixed", "False", "'adamw'"]),
    (dict(optimizer="sgd+momentum", lrs=(0.1,), hyperparameters={"momentum": 1.0}), ["momentum", "1.0", "[0, 1)"]),
    (dict(optimizer="adam", lrs=()), ["lrs", "empty"]),
    (dict(optimizer="adam", lrs=(-0.1,)), ["lrs", "-0.1"]),
    (dict(optimizer="adamw", lrs=(0.1,), hyperparameters={"beta1": 1.0}), ["beta1", "1.0"]),
    (dict(optimizer="sgd", lrs=(0.1,), hyperparameters={"beta1": 0.5}), ["sgd", "beta1"]),
    (dict(optimizer="adam", exact=True), ["exact=True"]),
])
def test_bad_optimizer_sweep_input(kwargs, words):
    with pytest.raises(ValueError) as info:
        mxwd.sweep((1.0,), 1, n_valid=0, **kwargs)
    for word in words:
        assert word in str(info.value)


@pytest.mark.parametrize("argv, words", [
    (["--optimizer", "adamw", "--paper-lambdas", "0.1"], ["--paper-lambdas", "adamw-paper", "not to --optimizer adamw"]),
    (["--optimizer", "adamw-paper", "--lambdas", "0.1"], ["--lambdas", "adamw-paper", "--paper-lambdas"]),
])
def test_each_lambd_grid_applies_to_its_convention_only(argv, words, tmp_path, capsys):
    from mxwd.cli import main

    code = main(["sweep", *argv, "--lrs", "0.01", "--out", str(tmp_path / "x")])
    err = capsys.readouterr().err
    assert code == 2 and not (tmp_path / "x").exists()
    for word in words:
        assert word in err


@pytest.mark.slow
def test_mxwd_sweep_with_optimizers_writes_the_heatmap_and_the_paths(cli_here, tmp_path):
    out = tmp_path / "opt"
    proc = cli_here("sweep", "--optimizer", "adam", "adamw", "--lrs", 0.001, 0.01, "--lambdas", 0.1, 10,
               "--seeds", 2, "--n-valid", 0, "--beta2", 0.99, "--out", out, "--quiet")
    assert proc.returncode == 0, proc.stderr
    assert sorted(p.name for p in out.iterdir()) == sorted(
        ["sweep.csv", "sweep.json", "heatmap.png", "heatmap.svg", "optimizer_paths.png", "optimizer_paths.svg"])
    assert (out / "sweep.csv").read_text().count("\n") == 1 + 2 * 2 * 2 * 2
    payload = json.loads((out / "sweep.json").read_text())
    assert [s["optimizer"] for s in payload["sweeps"]] == ["adam", "adamw"]
    assert payload["sweeps"][1]["hyperparameters"]["beta2"] == 0.99
    assert "best median final test loss per optimizer" in proc.stdout


def test_the_heatmap_has_a_panel_per_sweep_one_color_scale_and_the_best_lambd_of_each_lr():
    from mxwd import plot

    lrs, lambdas = (1e-4, 1e-3, 1e-2), tuple(10.0 ** np.arange(-3, 7))
    y = np.log10(lambdas)[None, :]
    torch = fake_sweep(1 + (y - np.log10(10 / np.array(lrs))[:, None]) ** 2, lrs, lambdas)
    test = np.repeat(2 + y**2, 3, axis=0)  # the best lambd 1 at every lr
    test[2] = np.nan  # every model at lr 1e-2 diverged: no mark in that row
    paper = fake_sweep(test, lrs, lambdas)
    fig = plot.optimizer_heatmaps([torch, paper, torch, paper, torch], columns=4)
    panels = [ax for ax in fig.axes if ax.get_visible() and ax.images]
    assert len(panels) == 5  # a second row of one panel; the 3 unused slots hidden
    norms = {(ax.images[0].norm.vmin, ax.images[0].norm.vmax) for ax in panels}
    assert norms == {(1.0, 65.0)}  # one color scale: the smallest and largest median of all panels (1 + 8^2)
    marks = [sum(len(c.get_offsets()) for c in ax.collections) for ax in panels]
    assert marks == [3 + 1, 2 + 1] * 2 + [3 + 1]  # one mark per lr with a trained model, plus the star
    assert "-1.00 decades per decade" in panels[0].get_title() and "+0.00 decades" in panels[1].get_title()
