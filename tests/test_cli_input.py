"""What the command line refuses, what it accepts, and where it writes by default."""
import json
from pathlib import Path

import numpy as np
import pytest

import mxwd
from mxwd.cli import main
from mxwd.cli.options import build_parser, default_out
from mxwd.config import Config, field_names

REFUSED = [
    # (argv, words the one-line message must contain)
    (["sweep", "--optimizer", "sgdw", "--momentum", "1"], ["momentum", "1", "[0, 1)"]),
    (["sweep", "--optimizer", "sgdw", "--momentum", "-1"], ["momentum", "-1", "[0, 1)"]),
    (["sweep", "--beta1", "0.5"], ["--beta1", "adam, adamw", "--optimizer sgd"]),
    (["sweep", "--optimizer", "sgd", "sgdw", "--epsilon", "1e-6"], ["--epsilon", "adam, adamw", "sgd sgdw"]),
    (["sweep", "--optimizer", "adam", "--epsilon", "-1e-8"], ["epsilon", "-1e-08", "> 0"]),
    (["sweep", "--optimizer", "adam", "--beta2", "-.5"], ["beta2", "-0.5", "[0, 1)"]),
    ([], ["choose a command", "reproduce", "mxwd --help"]),
    (["distributed"], ["workers=2", "--batch-size", "batch_size=1"]),  # its defaults: one row a batch, two workers
    (["reproduce", "--pairing", "kernel"], ["--pairing", "kernel", "shared", "notebook"]),
    (["reproduce", "--pairing", "notebook", "--lambdas", "0", "3", "0"], ["repeats 0", "distinct lambdas"]),
    (["sweep", "--pairing", "notebook", "--optimizer", "adam"], ["pairing='notebook'", "(lr, lambd)", "shared"]),
    (["atlas", "--pairing", "notebook"], ["pairing='notebook'", "same", "shared"]),
    (["distributed", "--pairing", "notebook", "--batch-size", "10"], ["pairing='notebook'", "one job per Gluon",
                                                                      "shared"]),
    (["mlp", "--pairing", "notebook"], ["--pairing", "mlp and exercises", "one initial w"]),
    (["exercises", "--pairing", "notebook"], ["--pairing", "mlp and exercises"]),
]


@pytest.mark.parametrize("argv, words", REFUSED)
def test_the_cli_refuses_in_one_line_naming_the_value(argv, words, tmp_path, capsys):
    assert main(argv + (["--out", str(tmp_path / "out"), "--quiet"] if argv else [])) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("mxwd: error: "), err
    for word in words:
        assert word in err, err
    assert not (tmp_path / "out").exists()


def test_version(capsys):
    with pytest.raises(SystemExit) as info:
        build_parser().parse_args(["--version"])
    assert info.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith(f"mxwd {mxwd.__version__} (MXNet 1.9.1, Python ")


def _write(path: Path, payload) -> Path:
    path.write_text(json.dumps(payload))
    return path


def test_from_refuses_a_sweeps_file_and_an_incomplete_config(tmp_path, capsys):
    full = Config().to_dict()
    sweep_file = _write(tmp_path / "sweep.json", {"command": "sweep", "config": full})
    assert main(["reproduce", "--from", str(sweep_file), "--out", str(tmp_path / "a"), "--quiet"]) == 2
    assert "written by mxwd sweep" in capsys.readouterr().err
    partial = {k: v for k, v in full.items() if k != "clip_gradient"}
    old_file = _write(tmp_path / "results.json", {"command": "reproduce", "config": partial})
    assert main(["reproduce", "--from", str(old_file), "--out", str(tmp_path / "b"), "--quiet"]) == 2
    assert "lacks clip_gradient" in capsys.readouterr().err
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()


def test_from_reruns_a_file_that_predates_the_l1_fields_with_what_it_ran(tmp_path, capsys):
    config = Config(num_epochs=1, lambdas=(0.5,))
    old = {k: v for k, v in config.to_dict().items() if k not in ("penalty", "l1_step", "pairing")}
    path = _write(tmp_path / "results.json", {"command": "reproduce", "config": old})
    assert main(["reproduce", "--from", str(path), "--out", str(tmp_path / "c")]) == 0
    assert ("predates penalty, l1_step, pairing: rerun with penalty='l2', l1_step='subgradient', pairing='shared'"
            in capsys.readouterr().out)
    written = json.loads((tmp_path / "c" / "results.json").read_text())
    assert Config.from_dict(written["config"]) == config


def test_from_reruns_a_complete_reproduce_file(tmp_path):
    config = Config(num_epochs=1, lambdas=(0.5,))
    good = _write(tmp_path / "results.json", {"command": "reproduce", "config": config.to_dict()})
    assert main(["reproduce", "--from", str(good), "--out", str(tmp_path / "c"), "--quiet"]) == 0
    written = json.loads((tmp_path / "c" / "results.json").read_text())
    assert Config.from_dict(written["config"]) == config
    assert set(written["config"]) == set(field_names())


def test_numpy_scalars_are_numbers():
    config = Config(batch_size=np.int64(5), lr=np.float32(0.003), num_epochs=np.int32(1), seed=np.uint32(3))
    assert type(config.batch_size) is int and type(config.lr) is float and config.seed == 3
    json.dumps(config.to_dict())  # plain Python numbers: JSON-ready
    a = mxwd.fit_and_plot(lambd=np.float32(5), config=config)
    b = mxwd.fit_and_plot(lambd=5.0, config=config)
    assert a.lambd == 5.0 and a.w == b.w
    assert mxwd.sweep([np.float64(1.0)], seeds=np.int64(2), config=config, n_valid=0).seeds == (3, 4)
    with pytest.raises(ValueError, match="integer"):
        Config(batch_size=np.bool_(True))


def test_repeated_seeds_are_refused():
    with pytest.raises(ValueError, match=r"seed 1 twice in \[1, 2, 1\]"):
        mxwd.sweep([1.0], seeds=[1, 2, 1])


DEFAULT_OUTS = [
    (["reproduce"], "results/reproduce"),
    (["reproduce", "--preset", "d2lzh-2019", "--seeds", "100"], "results/reproduce-d2lzh-2019-seeds"),
    (["reproduce", "--preset", "gluonbook-2018", "--seeds", "100"], "results/reproduce-gluonbook-2018-seeds"),
    (["reproduce", "--preset", "d2lzh-2019", "--pairing", "notebook", "--seeds", "100"],
     "results/reproduce-d2lzh-2019-notebook-seeds"),
    (["compare", "--pairing", "notebook"], "results/compare-notebook"),
    (["reproduce", "--from", "results/reproduce/results.json"], "results/reproduce-from-reproduce"),
    (["sweep", "--seeds", "20"], "results/sweep"),
    (["sweep", "--optimizer", "sgd", "adam", "adamw", "sgdw", "--lrs", "0.001"], "results/sweep-sgd-adam-adamw-sgdw"),
    (["sweep", "--lrs", "0.001", "0.01"], "results/sweep-sgd-lrs"),
    (["compare", "--batch-size", "3"], "results/compare"),
    (["atlas", "--optimizers", "sgd", "adam"], "results/atlas-sgd-adam"),
    (["distributed", "--preset", "d2l-1.0"], "results/distributed-d2l-1.0"),
    (["reproduce", "--out", "mine"], "mine"),
]


@pytest.mark.parametrize("argv, out", DEFAULT_OUTS)
def test_default_out_names_the_runs_kind(argv, out):
    assert build_parser().parse_args(argv).out == Path(out)


def test_reproduce_reports_an_unstable_lambd_and_runs_the_rest(tmp_path, capsys):
    argv = ["reproduce", "--lambdas", "0", "5", "2000", "--num-epochs", "2", "--out", str(tmp_path / "r"), "--quiet"]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert out.count("UNSTABLE") == 2 and "lr * lambd = 6" in out  # on both paths
    written = json.loads((tmp_path / "r" / "results.json").read_text())
    assert sorted((r["path"], r["lambd"]) for r in written["runs"]) == [
        ("gluon", 0.0), ("gluon", 5.0), ("scratch", 0.0), ("scratch", 5.0)]
    assert [(n["path"], n["lambd"], n["status"]) for n in written["not_trained"]] == [
        ("scratch", 2000.0, "unstable"), ("gluon", 2000.0, "unstable")]


def test_results_json_records_the_pairing_and_every_runs_initial_block_and_w(tmp_path):
    out = tmp_path / "nb"
    argv = ["reproduce", "--pairing", "notebook", "--lambdas", "0", "3", "--num-epochs", "1", "--n-train", "5",
            "--n-test", "5", "--num-inputs", "10", "--out", str(out), "--quiet"]
    assert main(argv) == 0
    payload = json.loads((out / "results.json").read_text())
    assert payload["config"]["pairing"] == "notebook" and payload["pairing"] == "notebook"
    runs = payload["runs"]
    assert [(r["path"], r["lambd"], r["init_block"]) for r in runs] == [
        ("scratch", 0.0, 0), ("scratch", 3.0, 1), ("gluon", 0.0, 2), ("gluon", 3.0, 3)]
    assert all(len(r["w"]) == 10 for r in runs)
    # each run's w is the run's: the same as the API's, and the four differ (four starts)
    assert runs[2]["w"] == list(mxwd.fit_and_plot_gluon(0.0, Config.from_dict(payload["config"])).w)
    assert len({tuple(r["w"]) for r in runs}) == 4
    # and --from reruns the notebook order
    again = tmp_path / "again"
    assert main(["reproduce", "--from", str(out / "results.json"), "--out", str(again), "--quiet"]) == 0
    assert json.loads((again / "results.json").read_text())["runs"] == runs


def test_compare_says_which_pairing_it_uses(tmp_path, capsys):
    argv = ["compare", "--pairing", "notebook", "--lambdas", "3", "--num-epochs", "1", "--n-train", "5", "--n-test", "5",
            "--num-inputs", "10", "--out", str(tmp_path / "c")]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "pairing notebook: each path's run is its cell" in out and "initial w (notebook order)" in out
    assert json.loads((tmp_path / "c" / "compare.json").read_text())["pairing"] == "notebook"
