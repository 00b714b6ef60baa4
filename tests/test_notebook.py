"""The reproduction notebook runs clean, prints the API's numbers, and its stored outputs are current."""
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

import mxwd

NOTEBOOK = Path(__file__).resolve().parent.parent / "notebooks" / "weight_decay.ipynb"


def _text_outputs(nb):
    """Each code cell's printed text (streams), in order."""
    return [
        "".join(o.get("text", "") for o in cell.outputs if o.output_type == "stream")
        for cell in nb.cells
        if cell.cell_type == "code"
    ]


def _cell_printing(nb, source_start):
    (cell,) = [c for c in nb.cells if c.cell_type == "code" and c.source.startswith(source_start)]
    return "".join(o.get("text", "") for o in cell.outputs if o.output_type == "stream")


@pytest.fixture(scope="module")
def executed():
    nb = nbformat.read(NOTEBOOK, as_version=4)
    # any failing cell raises CellExecutionError and fails the tests
    NotebookClient(nb, timeout=120, kernel_name="python3", resources={"metadata": {"path": str(NOTEBOOK.parent)}}).execute()
    return nb


@pytest.mark.slow
def test_notebook_prints_the_apis_numbers_for_the_same_seed(executed):
    assert _cell_printing(executed, "r0 = mxwd.fit_and_plot(lambd=0") == str(mxwd.fit_and_plot(0, seed=0)) + "\n"
    assert _cell_printing(executed, "r5 = mxwd.fit_and_plot(lambd=5") == str(mxwd.fit_and_plot(5, seed=0)) + "\n"
    gluon = _cell_printing(executed, "g0 = mxwd.fit_and_plot_gluon")
    assert gluon == f"{mxwd.fit_and_plot_gluon(0, seed=0)}\n{mxwd.fit_and_plot_gluon(5, seed=0)}\n"


@pytest.mark.slow
def test_notebook_draws_its_figures(executed):
    images = [o for c in executed.cells if c.cell_type == "code" for o in c.outputs if "image/png" in o.get("data", {})]
    assert len(images) == 4  # lambd = 0, lambd = 5, Gluon wd = 5, the overlay


@pytest.mark.slow
def test_stored_outputs_are_those_of_a_clean_execution(executed):
    stored = nbformat.read(NOTEBOOK, as_version=4)
    assert _text_outputs(stored) == _text_outputs(executed), (
        "notebooks/weight_decay.ipynb holds stale outputs; regenerate them with the command in README.md"
    )


@pytest.mark.slow
def test_notebook_numbers_equal_what_the_cli_writes_for_the_same_seed(executed, tmp_path):
    import json

    from mxwd.cli import main
    from mxwd.results import FitResult

    assert main(["reproduce", "--out", str(tmp_path / "r"), "--quiet"]) == 0
    runs = json.loads((tmp_path / "r" / "results.json").read_text())["runs"]
    written = {(r["path"], r["lambd"]): r for r in runs}
    for start, key in (("r0 = mxwd.fit_and_plot(lambd=0", ("scratch", 0.0)),
                       ("r5 = mxwd.fit_and_plot(lambd=5", ("scratch", 5.0))):
        r = written[key]
        as_written = FitResult(r["path"], r["lambd"], mxwd.Config(), tuple(r["train_ls"]), tuple(r["test_ls"]),
                               tuple(r["w"]), r["b"])
        assert _cell_printing(executed, start) == str(as_written) + "\n"
