"""The source's claims across seeds, determinism across processes, and `mxwd reproduce`."""
import json
import subprocess
import sys

import numpy as np
import pytest

from mxwd.config import Config
from mxwd.reproduction import reproduce
from mxwd.scratch import fit_and_plot

SEEDS = range(10)


@pytest.mark.slow
@pytest.mark.parametrize("seed", SEEDS)
def test_the_sources_claims_hold_for_every_seed(seed):
    no_decay, decay = fit_and_plot(0, seed=seed), fit_and_plot(5, seed=seed)
    # lambd = 0 overfits: the training loss is far below the test (generalization) loss
    assert no_decay.train_ls[-1] < 0.01 * no_decay.test_ls[-1]
    # weight decay alleviates it: a much lower test loss and a much smaller w
    assert decay.test_ls[-1] * 50 <= no_decay.test_ls[-1]
    assert decay.w_norm * 10 <= no_decay.w_norm


def test_shared_start_makes_the_ratio_close_to_the_decay_factor():
    result = reproduce(Config(), seed=0)
    (ratio,) = result.ratios()
    assert ratio.predicted == pytest.approx((1 - 0.003 * 5) ** 200)
    assert ratio.median == pytest.approx(ratio.predicted, rel=0.2)


SCRIPT = "import json, mxwd; print(json.dumps(mxwd.reproduce(seed=5).to_dict()))"


@pytest.mark.slow
def test_same_seed_gives_bitwise_identical_numbers_in_new_processes_under_either_engine():
    import os

    outputs = []
    for engine in ("NaiveEngine", "NaiveEngine", "ThreadedEnginePerDevice"):
        env = dict(os.environ, MXNET_ENGINE_TYPE=engine)
        outputs.append(subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True,
                                      check=True, env=env).stdout)
    assert outputs[0] == outputs[1] == outputs[2]
    runs = json.loads(outputs[0])["runs"]
    assert len(runs) == 4 and all(np.isfinite(r["w"]).all() for r in runs)


@pytest.mark.slow
def test_mxwd_reproduce_writes_its_files(cli_here, tmp_path):
    out = tmp_path / "run"
    proc = cli_here("reproduce", "--seed", 3, "--out", out)
    assert proc.returncode == 0, proc.stderr
    names = sorted(p.name for p in out.iterdir())
    assert names == ["results.json", "runs.png"]
    assert proc.stdout.strip().endswith("and 1 figure: runs.png")
    payload = json.loads((out / "results.json").read_text())
    assert payload["config"]["seed"] == 3
    assert set(payload["versions"]) == {"python", "mxnet", "numpy", "d2l", "mxwd"}
    assert payload["versions"]["mxnet"] == "1.9.1"
    assert [(r["path"], r["lambd"]) for r in payload["runs"]] == [
        ("scratch", 0.0), ("scratch", 5.0), ("gluon", 0.0), ("gluon", 5.0)]
    assert all(len(r["train_ls"]) == 10 and len(r["w"]) == 200 for r in payload["runs"])
    assert "w(lambd=5)[:10] / w(0)[:10]" in proc.stdout
    # the same seed, rerun: the same numbers
    again = cli_here("reproduce", "--seed", 3, "--out", tmp_path / "again", "--quiet")
    assert again.returncode == 0, again.stderr
    assert json.loads((tmp_path / "again" / "results.json").read_text())["runs"] == payload["runs"]


def test_mxwd_help_does_not_import_mxnet():
    code = "import sys; from mxwd.cli import build_parser; build_parser(); print('mxnet' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"
