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
