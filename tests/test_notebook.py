"""The reproduction notebook runs clean, prints the API's numbers, and its stored outputs are current."""
import re
from pathlib import Path

import nbformat
import pytest

pytestmark = pytest.mark.xdist_group("notebook")  # one worker executes the notebook once for all its tests
from nbclient import NotebookClient

import mxwd

NOTEBOOK = Path(__file__).resolve().parent.parent / "notebooks" / "weight_decay.ipynb"


NUMBER = re.compile(r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?")


def _same_text_up_to_float32_digits(a: str, b: str) -> bool:
    """Equal words, numbers equal to 1e-4 relative or 1e-6 absolute; spacing ignored.

    The numbers are bitwise reproducible on one machine, but float32 BLAS kernels differ
    between CPUs (OpenBLAS picks one per processor), which moves last digits and
    rounding-sized differences such as max |dw| = 5e-8. NumPy pads an array's columns to
    its widest printed number, so a digit more or less moves the spaces: the words are
    compared with runs of white space collapsed, the numbers as numbers.
    """
    words_a, words_b = (" ".join(NUMBER.sub(" # ", t).split()) for t in (a, b))
    numbers_a, numbers_b = NUMBER.findall(a), NUMBER.findall(b)
    if words_a != words_b or len(numbers_a) != len(numbers_b):
        return False
    for x, y in zip(numbers_a, numbers_b):
        x, y = float(x), float(y)
        if not (abs(x - y) <= 1e-6 or abs(x - y) <= 1e-4 * max(abs(x), abs(y))):
            return False
    return True


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


CHAPTER_CODE = (
    "def init_params():", "def l2_penalty(w):", "return (w**2).sum() / 2", "with autograd.record():",
    "l = loss(net(X, w, b), y) + lambd * l2_penalty(w)", "def sgd(params, lr, batch_size):",
    "param[:] = param - lr * param.grad / batch_size",
    "gluon.Trainer(net.collect_params('.*weight'), 'sgd', {'learning_rate': lr, 'wd': wd})",
    "gluon.Trainer(net.collect_params('.*bias'), 'sgd', {'learning_rate': lr})",
    "trainer_w.step(batch_size)", "trainer_b.step(batch_size)",
)


def test_the_notebook_holds_the_chapters_code():
    nb = nbformat.read(NOTEBOOK, as_version=4)
    source = "\n".join(c.source for c in nb.cells if c.cell_type == "code")
    for line in CHAPTER_CODE:
        assert line in source, line
    text = "\n".join(c.source for c in nb.cells if c.cell_type == "markdown")
    assert "(1 - \\eta\\lambda)" in text  # the corrected update rule, where the book states it


@pytest.mark.slow
def test_the_chapters_code_equals_the_package_to_the_bit(executed):
    printed = _cell_printing(executed, "config = mxwd.Config()")
    assert printed.count("equals mxwd.fit_and_plot bit for bit: True") == 2
    gluon = _cell_printing(executed, "def fit_and_plot_gluon")
    assert gluon.count("max |w - w(mxwd.fit_and_plot_gluon)| = 0\n") == 2  # both Gluon runs, to the bit


@pytest.mark.slow
def test_notebook_prints_the_apis_numbers_for_the_same_seed(executed):
    printed = _cell_printing(executed, "config = mxwd.Config()")
    assert printed.endswith(f"{mxwd.fit_and_plot(0, seed=0)}\n{mxwd.fit_and_plot(5, seed=0)}\n")


@pytest.mark.slow
def test_notebook_draws_its_figures(executed):
    images = [o for c in executed.cells if c.cell_type == "code" for o in c.outputs if "image/png" in o.get("data", {})]
    assert len(images) == 7  # scratch lambd = 0 and 5, Gluon wd = 0 and 5, the comparison, the atlas, BatchNorm


@pytest.mark.slow
def test_stored_outputs_are_those_of_a_clean_execution(executed):
    stored = nbformat.read(NOTEBOOK, as_version=4)
    for old, new in zip(_text_outputs(stored), _text_outputs(executed)):
        assert _same_text_up_to_float32_digits(old, new), (
            "notebooks/weight_decay.ipynb holds stale outputs; regenerate them with the command in README.md"
            f"\nstored:\n{old}\nnow:\n{new}"
        )
    assert len(_text_outputs(stored)) == len(_text_outputs(executed))


@pytest.mark.slow
def test_notebook_numbers_equal_what_the_cli_writes_for_the_same_seed(executed, tmp_path):
    import json

    from mxwd.cli import main
    from mxwd.results import FitResult

    assert main(["reproduce", "--out", str(tmp_path / "r"), "--quiet"]) == 0
    runs = json.loads((tmp_path / "r" / "results.json").read_text())["runs"]
    written = {(r["path"], r["lambd"]): r for r in runs}
    as_written = [
        FitResult(r["path"], r["lambd"], mxwd.Config(), tuple(r["train_ls"]), tuple(r["test_ls"]), tuple(r["w"]), r["b"])
        for r in (written[("scratch", 0.0)], written[("scratch", 5.0)])
    ]
    printed = _cell_printing(executed, "config = mxwd.Config()")
    assert printed.endswith(f"{as_written[0]}\n{as_written[1]}\n")


def test_float32_digit_tolerance_is_what_it_says():
    assert _same_text_up_to_float32_digits("w 1.0000001 d 5e-08", "w 1.0000002 d 3e-08")
    assert not _same_text_up_to_float32_digits("w 1.001", "w 1.002")
    assert not _same_text_up_to_float32_digits("agree", "DIFFER")
    # NumPy's column padding follows the widest number: the same numbers, other spacing
    assert _same_text_up_to_float32_digits("[-2.25941  -0.101827]", "[-2.259409 -0.101827]")
    assert not _same_text_up_to_float32_digits("[-2.25941 -0.101827]", "[-2.25941]")
    assert not _same_text_up_to_float32_digits("a b", "ab")
