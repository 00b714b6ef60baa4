"""Figures people can read at 100% zoom: size from the PNG headers, text sizes, titles."""
import struct
from pathlib import Path

import pytest
from matplotlib.text import Text

import mxwd
from mxwd import plot
from mxwd.config import Config
from mxwd.results import save_figure


def png_size_and_dpi(path: Path):
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", data[16:24])
    i = data.find(b"pHYs")
    per_metre = struct.unpack(">I", data[i + 4 : i + 8])[0]
    return width, height, per_metre * 0.0254


@pytest.fixture(scope="module")
def figures():
    config = Config(num_epochs=3)
    runs = mxwd.reproduce(config).runs
    sweep = mxwd.sweep((0.01, 1.0, 100.0), 3, config)
    from mxwd.published import check_published

    return {
        "semilogy": plot.semilogy(runs[0]),
        "runs": plot.runs(runs),
        "overlay": plot.overlay(mxwd.compare(5.0, config)),
        "regularization_path": plot.regularization_path(sweep),
        "weight_norm": plot.weight_norm_path(sweep),
        "published": plot.published_distributions(check_published("gluonbook-2018", 5)),
        "atlas": plot.atlas_distances(mxwd.atlas(["sgd", "adagrad"], config)),
    }


def test_every_figure_is_640_px_wide_at_100_dpi(figures, tmp_path):
    for name, fig in figures.items():
        (path,) = save_figure(fig, tmp_path / name, formats=("png",))
        width, height, dpi = png_size_and_dpi(path)
        assert width >= 640 and dpi >= 99.9, (name, width, dpi)


def test_no_text_is_smaller_than_9_points_and_every_figure_has_a_title(figures):
    for name, fig in figures.items():
        texts = [t for t in fig.findobj(Text) if t.get_text().strip()]
        assert texts and min(t.get_fontsize() for t in texts) >= 9, name
        titles = [fig._suptitle.get_text() if fig._suptitle else ""] + [ax.get_title() for ax in fig.axes]
        assert any(t.strip() for t in titles), name


def test_titles_say_what_a_person_would_say(figures):
    assert figures["semilogy"].axes[0].get_title() == "from scratch, lambd = 0 (seed 0)"
    titles = {ax.get_title() for ax in figures["runs"].axes}
    assert titles == {"from scratch (penalty lambd)", "Gluon (built-in wd)"}
    assert plot.describe_run(mxwd.fit_and_plot_gluon(5, Config(num_epochs=1))) == "Gluon, built-in wd = 5"


def test_the_compare_figure_has_a_difference_panel_on_a_log_scale(figures):
    left, right = figures["overlay"].axes[:2]
    assert right.get_yscale() == "log" and "difference" in right.get_title()


def test_the_published_figure_has_labels_the_central_95_and_no_empty_panel(figures):
    fig = figures["published"]
    assert len(fig.axes) == 5  # five published numbers, five panels
    for ax in fig.axes:
        assert ax.get_xlabel() and ax.get_ylabel() == "runs"
        assert "central 95% of runs" in [t.get_text() for t in ax.get_legend().get_texts()]
        assert all(float(t).is_integer() for t in ax.get_yticks())


def test_the_regularization_path_draws_validation_and_warns_at_the_grid_edge():
    sweep = mxwd.sweep((0.01, 0.1), 3, Config(num_epochs=3))  # the best lambd lies beyond this grid
    fig = plot.regularization_path(sweep)
    labels = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert any(label.startswith("validation") for label in labels)
    assert sweep.selection()["at_grid_edge"]
    assert "edge of the grid" in fig.axes[0].get_title() and "edge of the grid" in sweep.table()


# First-hour frictions (issue "Ships and survives") ------------------------------------

def fake_runs(n_lambdas, paths=("scratch", "gluon"), epochs=10):
    """FitResults for n lambdas on each path, without training (the figure reads only numbers)."""
    import numpy as np

    from mxwd.results import FitResult

    lambdas = [0.0] + [float(v) for v in np.geomspace(0.5, 40.0, n_lambdas - 1)]
    config = Config(num_epochs=epochs, lambdas=tuple(lambdas))
    runs = []
    for path in paths:
        for i, lambd in enumerate(lambdas):
            train = tuple(float(v) for v in 50 * np.exp(-(0.3 + 0.1 * i) * np.arange(1, epochs + 1)) + 1e-3)
            runs.append(FitResult(path, lambd, config, train, tuple(3 * v for v in train), (0.0,) * 200, 0.0))
    return lambdas, runs


def drawn(fig):
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    return canvas.get_renderer()


def inside(box, outer, slack=1.0):
    return (box.x0 >= outer.x0 - slack and box.y0 >= outer.y0 - slack
            and box.x1 <= outer.x1 + slack and box.y1 <= outer.y1 + slack)


@pytest.mark.parametrize("n", [1, 2, 10, 25])
def test_the_runs_legend_lies_below_the_panels_inside_the_figure_and_no_two_lambdas_look_alike(n):
    from matplotlib.colors import to_rgba

    lambdas, results = fake_runs(n)
    fig = plot.runs(results)
    renderer = drawn(fig)
    assert all(ax.get_legend() is None for ax in fig.axes)  # no legend over a panel
    (legend,) = fig.legends
    labels = [t.get_text() for t in legend.get_texts()]
    values = sorted(float(s.split("=")[-1]) for s in labels)  # printed with :g, six digits
    assert values == pytest.approx(lambdas, rel=1e-5)  # every lambd, the largest too
    box = legend.get_window_extent(renderer)
    assert inside(box, fig.bbox)
    for ax in fig.axes:  # the panels, their tick labels and x label are all above the legend
        assert ax.get_tightbbox(renderer).y0 > box.y1
        assert not ax.get_window_extent(renderer).overlaps(box)
    for ax in fig.axes:
        lines = ax.get_lines()
        styles = [(to_rgba(line.get_color()), line.get_marker()) for line in lines[::2]]  # one train line per lambd
        assert len(set(styles)) == len({s[0] for s in styles}) == n  # every lambd its own color
        assert all(to_rgba(a.get_color()) == to_rgba(b.get_color()) for a, b in zip(lines[::2], lines[1::2]))
    assert min(t.get_fontsize() for t in fig.findobj(Text) if t.get_text().strip()) >= 9


def test_the_compare_figure_says_what_the_verdict_says(figures):
    agree = figures["overlay"].axes[0].get_title()
    assert "lie on each other" in agree
    differ = mxwd.compare(5.0, Config(num_epochs=2), setup="mxnet_default")  # MXNet's default decays the bias
    assert not differ.agree and differ.verdict().startswith("DIFFER")
    title = plot.overlay(differ).axes[0].get_title()
    assert "DIFFER" in title and "lie on each other" not in title
    assert float(title.split("up to ")[1].split("%")[0]) == pytest.approx(100 * differ.max_rel_loss_diff, rel=0.05)


@pytest.mark.parametrize("n", [2, 24])
def test_the_atlas_legend_is_inside_the_figure_as_first_drawn(n):
    from mxwd.optimizer_atlas import Atlas, AtlasEntry

    entries = tuple(AtlasEntry(name=f"optimizer{i}", mxnet="sgd", hyperparameters={}, classification="coupled",
                               dw_coupled=1e-8 * (i + 1), dw_decoupled=0.1, effect=2.0, rule="", order="",
                               wd_mult_honoured=True, float64="yes", notes="") for i in range(n))
    fig = plot.atlas_distances(Atlas(Config(), 5.0, entries, 1.0))
    renderer = drawn(fig)  # once, as save_figure renders the PNG
    legends = fig.legends + [ax.get_legend() for ax in fig.axes if ax.get_legend()]
    assert len(legends) == 1 and len(legends[0].get_texts()) == 4
    box = legends[0].get_window_extent(renderer)
    assert inside(box, fig.bbox)
    assert fig.axes[0].get_tightbbox(renderer).y0 > box.y1  # below the x label, covering nothing


def test_the_optimizer_paths_leave_diverged_models_out_of_the_y_range():
    # sgd at lr 0.03: lambd 0.01 explodes (a loss of 1e6 x the initial one within 3 epochs), lambd 30 trains
    result = mxwd.sweep((0.01, 30.0), 2, Config(num_epochs=3), n_valid=0, optimizer="sgd", lrs=(0.03,))
    assert result.grid.diverged[:, 0].all() and not result.grid.diverged[:, 1].any()
    fig = plot.optimizer_paths([result])
    ax = fig.axes[0]
    assert ax.get_ylim()[1] < 1.0  # the trained models' test losses are about 0.01-0.03
    assert "2 of 4 diverged" in ax.get_legend().get_texts()[0].get_text()
