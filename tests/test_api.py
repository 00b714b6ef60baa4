"""The Python API's one shape: short reprs, full tables, NumPy arrays."""
import numpy as np
import pytest

import mxwd
from mxwd.config import Config

CONFIG = Config(num_epochs=2)


def test_every_result_has_a_short_repr_and_a_full_table():
    from mxwd.published import check_published

    results = [
        CONFIG,
        mxwd.fit_and_plot(5, CONFIG),
        mxwd.compare(5, CONFIG.replace(batch_size=3)),
        mxwd.reproduce(CONFIG),
        mxwd.sweep((0.1, 1.0), 2, CONFIG),
        mxwd.sweep((0.1, 1.0), 2, CONFIG, optimizer="adamw", lrs=(0.001, 0.01)),
        mxwd.atlas(["sgd", "adam"], CONFIG),
        check_published("gluonbook-2018", 3),
    ]
    for r in results:
        assert len(repr(r)) < 300, repr(r)
    for r in results[1:]:
        assert len(str(r)) > len(repr(r))  # str / table() holds everything


def test_numbers_come_as_numpy_arrays():
    fit = mxwd.fit_and_plot(5, CONFIG).to_numpy()
    assert fit["w"].shape == (200,) and fit["train_ls"].shape == (2,)
    c = mxwd.compare(5, CONFIG).to_numpy()
    assert c["train_diff"].shape == (2,) and c["w_gluon"].shape == (200,)
    a = mxwd.atlas(["sgd"], CONFIG).to_numpy()
    assert a["names"] == ["sgd"] and a["effect"].shape == (1,)
    s = mxwd.sweep((0.1, 1.0), 3, CONFIG, optimizer="sgdw", lrs=(0.001, 0.01, 0.02))
    assert s.final_test_ls.shape == (3, 6) and s.test_band_by_lr().median.shape == (3, 2)
    assert isinstance(s.band("w_norm").median, np.ndarray)


@pytest.mark.slow
def test_the_readmes_python_example_runs_and_prints_what_it_says(capsys):
    import re
    from pathlib import Path

    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    (code,) = re.findall(r"## Python\n```python\n(.*?)```", readme, re.S)
    namespace: dict = {}
    exec(compile(code, "README.md", "exec"), namespace)  # noqa: S102  (our own README)
    out = capsys.readouterr().out
    assert namespace["c"].agree
    assert "decayed: 2 tensors, 40 values" in out and "not decayed: 4 tensors, 25 values" in out
    assert "not trained (grad_req='null'): 2 tensors, 16 values" in out
