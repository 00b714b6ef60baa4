"""Bad input, divergence and results on disk: clear errors, nothing lost."""
import json
import math
import signal
import subprocess
import sys
import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import mxwd
from mxwd.cli import main
from mxwd.config import Config, preset
from mxwd.training import DivergenceError

BAD_API_CALLS = [
    # (call, words the message must contain)
    (lambda: mxwd.fit_and_plot(-1), ["lambd", "-1", ">= 0"]),
    (lambda: mxwd.fit_and_plot(float("nan")), ["lambd", "nan", "finite"]),
    (lambda: mxwd.fit_and_plot("5"), ["lambd", "'5'", "real number"]),
    (lambda: mxwd.fit_and_plot(5, seed=-1), ["seed", "-1", ">= 0"]),
    (lambda: mxwd.fit_and_plot(5, seed=1.5), ["seed", "1.5", "integer"]),
    (lambda: mxwd.fit_and_plot(5, config={"lr": 1}), ["config", "Config", "dict"]),
    (lambda: mxwd.fit_and_plot_gluon(-0.5), ["wd", "-0.5", ">= 0"]),
    (lambda: mxwd.compare(None), ["lambd", "None"]),
    (lambda: mxwd.reproduce(seed=2**32), ["seed", str(2**32), "<="]),
    (lambda: Config(lr=0), ["lr", "0", "> 0"]),
    (lambda: Config(lr=-0.1), ["lr", "-0.1", "> 0"]),
    (lambda: Config(lr=float("inf")), ["lr", "inf", "finite"]),
    (lambda: Config(lr=1e39), ["lr", "1e+39", "float32"]),
    (lambda: Config(batch_size=0), ["batch_size", "0", ">= 1"]),
    (lambda: Config(batch_size=21), ["batch_size=21", "n_train=20", "batch_size <= n_train"]),
    (lambda: Config(n_train=0), ["n_train", "0", ">= 1"]),
    (lambda: Config(num_epochs=1.5), ["num_epochs", "1.5", "integer"]),
    (lambda: Config(num_inputs=True), ["num_inputs", "True", "integer"]),
    (lambda: Config(noise=-1), ["noise", "-1", ">= 0"]),
    (lambda: Config(init_scale=0), ["init_scale", "0", "> 0"]),
    (lambda: Config(lambdas=()), ["lambdas", "empty"]),
    (lambda: Config(lambdas=(0, -5)), ["lambdas", "-5", ">= 0"]),
    (lambda: Config(lambdas="05"), ["lambdas", "'05'", "sequence"]),
    (lambda: Config(dtype="float16"), ["dtype", "float16", "float32, float64"]),
    (lambda: Config(loss_reduction="avg"), ["loss_reduction", "avg", "sum, mean"]),
    (lambda: Config(bias_exclusion="none"), ["bias_exclusion", "none", "two_trainers, wd_mult"]),
    (lambda: Config(decay_bias="yes"), ["decay_bias", "yes", "True or False"]),
    (lambda: preset("d2l-2.0"), ["preset", "d2l-2.0", "gluonbook-2018"]),
    (lambda: Config().replace(learning_rate=0.1), ["learning_rate", "allowed", "lr"]),
    (lambda: Config.from_dict({"lr": 0.1, "epochs": 3}), ["epochs", "allowed", "num_epochs"]),
    (lambda: mxwd.data_iter(0, None, None, [0]), ["batch_size", "0", ">= 1"]),
]


@pytest.mark.parametrize("call, words", BAD_API_CALLS)
def test_bad_api_input_raises_a_clear_value_error(call, words):
    with pytest.raises(ValueError) as info:
        call()
    for word in words:
        assert word in str(info.value)


BAD_CLI_ARGS = [
    (["reproduce", "--lr", "-1"], ["lr", "-1.0", "> 0"]),
    (["reproduce", "--lr", "abc"], ["--lr", "abc"]),
    (["reproduce", "--lr", "nan"], ["lr", "nan", "finite"]),
    (["reproduce", "--batch-size", "0"], ["batch_size", "0", ">= 1"]),
    (["reproduce", "--batch-size", "50"], ["batch_size=50", "n_train=20"]),
    (["reproduce", "--num-epochs", "2.5"], ["--num-epochs", "2.5"]),
    (["reproduce", "--seed", "-3"], ["seed", "-3", ">= 0"]),
    (["reproduce", "--lambdas", "0", "-1"], ["lambdas", "-1", ">= 0"]),
    (["reproduce", "--dtype", "float16"], ["--dtype", "float16", "float32"]),
    (["reproduce", "--learning-rate", "0.1"], ["unrecognized", "--learning-rate"]),
    (["reproduce", "--preset", "nope"], ["preset", "nope", "d2lzh-2019"]),
    (["compare", "--init-scale", "0"], ["init_scale", "0", "> 0"]),
    (["reproduce", "--from", "missing.json"], ["missing.json", "does not exist"]),
    (["frobnicate"], ["frobnicate", "reproduce"]),
    ([], ["choose a command", "mxwd --help"]),
]


@pytest.mark.parametrize("argv, words", BAD_CLI_ARGS)
def test_bad_cli_input_prints_one_line_and_exits_2(argv, words, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(argv + ["--out", str(tmp_path / "out")] if argv and argv[0] != "frobnicate" else argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("mxwd: error: ")
    for word in words:
        assert word in err
    assert not (tmp_path / "out").exists()


def test_unusable_output_directories(capsys, tmp_path):
    a_file = tmp_path / "file"
    a_file.write_text("x")
    assert main(["reproduce", "--out", str(a_file)]) == 2
    assert "is not a directory" in capsys.readouterr().err
    assert main(["reproduce", "--out", str(a_file / "sub")]) == 2
    assert "is not usable" in capsys.readouterr().err
    existing = tmp_path / "existing"
    existing.mkdir()
    (existing / "keep.txt").write_text("mine")
    assert main(["reproduce", "--out", str(existing)]) == 2
    assert "--force" in capsys.readouterr().err
    assert (existing / "keep.txt").read_text() == "mine"


def test_force_replaces_an_existing_output_directory(capsys, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "old.txt").write_text("old")
    assert main(["reproduce", "--out", str(out), "--force", "--num-epochs", "2", "--quiet"]) == 0
    assert not (out / "old.txt").exists() and (out / "results.json").exists()
    assert [p.name for p in tmp_path.iterdir()] == ["out"]  # no temporary folder left


def test_cli_through_a_subprocess_has_no_traceback(cli, tmp_path):
    proc = cli("reproduce", "--lr", "-1", "--out", tmp_path / "o")
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert proc.stderr.strip().count("\n") == 0


# Divergence ---------------------------------------------------------------------------


def test_an_unstable_decay_factor_is_refused_before_training_with_the_cause():
    import time

    start = time.perf_counter()
    for fit in (mxwd.fit_and_plot, mxwd.fit_and_plot_gluon):
        with pytest.raises(DivergenceError) as info:
            fit(1000, Config(lr=0.003, num_epochs=10**6))  # refused at once, not after 10^6 epochs
        message = str(info.value)
        for words in ("not trained", "lambd=1000", "lr=0.003", "lr * lambd = 3 >= 2", "use lr * lambd < 2"):
            assert words in message
    assert time.perf_counter() - start < 5


def test_large_learning_rate_divergence_on_both_paths():
    for fit in (mxwd.fit_and_plot, mxwd.fit_and_plot_gluon):
        with pytest.raises(DivergenceError, match=r"epoch 1, step \d+, with lambd=0 and lr=1: the learning rate is too large"):
            fit(0, Config(lr=1.0))


def test_divergence_in_the_cli_is_one_line_and_writes_nothing(capsys, tmp_path):
    assert main(["reproduce", "--lr", "1", "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "diverged" in err
    assert list(tmp_path.iterdir()) == []


# Results on disk ----------------------------------------------------------------------


@pytest.mark.slow
def test_from_results_json_reproduces_identical_numbers(tmp_path, capsys):
    first, second = tmp_path / "first", tmp_path / "second"
    assert main(["reproduce", "--seed", "4", "--batch-size", "5", "--lambdas", "0", "3", "--out", str(first), "--quiet"]) == 0
    assert main(["reproduce", "--from", str(first / "results.json"), "--out", str(second), "--quiet"]) == 0
    a, b = (json.loads((d / "results.json").read_text()) for d in (first, second))
    assert a["config"] == b["config"] and a["config"]["seed"] == 4
    assert a["runs"] == b["runs"] and a["ratios"] == b["ratios"]


@pytest.mark.slow
def test_ctrl_c_leaves_no_partial_file_and_exits_130(tmp_path):
    out = tmp_path / "out"
    proc = subprocess.Popen(
        [sys.executable, "-m", "mxwd", "reproduce", "--num-epochs", "100000", "--yes", "--out", str(out)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    line = proc.stdout.readline()  # printed once training starts
    assert "writing" in line
    time.sleep(0.5)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130
    # the progress bar (the run was estimated at minutes) may come first; the message ends stderr
    assert err.strip().splitlines()[-1].strip() == "mxwd: interrupted; no partial results were written"
    assert list(tmp_path.iterdir()) == []


# Property: any configuration runs or raises ValueError ---------------------------------

numbers = st.one_of(
    st.integers(-3, 40),
    st.floats(allow_nan=True, allow_infinity=True, width=64),
    st.sampled_from([0, 1e-8, 0.003, 0.5, 2.0, 1e6, 1e39]),
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    n_train=st.integers(-1, 12),
    n_test=st.integers(-1, 6),
    num_inputs=st.integers(-1, 12),
    batch_size=st.integers(-1, 14),
    num_epochs=st.integers(-1, 3),
    lr=numbers,
    init_scale=numbers,
    noise=numbers,
    lambd=numbers,
    seed=st.integers(-2, 2**33),
    path=st.sampled_from(["scratch", "gluon"]),
    decay_bias=st.booleans(),
    loss_reduction=st.sampled_from(["sum", "mean", "max"]),
)
def test_random_configurations_run_or_raise_value_error(path, lambd, seed, **fields):
    try:
        config = Config(**fields)
        fit = mxwd.fit_and_plot if path == "scratch" else mxwd.fit_and_plot_gluon
        result = fit(lambd, config, seed=seed)
    except ValueError:
        return
    assert all(math.isfinite(v) for v in result.train_ls + result.test_ls + result.w)


@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")  # the swallowing is the point
def test_an_interrupt_swallowed_by_a_finalizer_is_raised_again():
    # Python drops a KeyboardInterrupt raised inside __del__ (MXNet's NDArray finalizer
    # runs after almost every operator); mxwd.interrupt records it and check() re-raises.
    import signal as _signal

    from mxwd import interrupt

    class Finalized:
        def __del__(self):
            interrupt.handler(_signal.SIGINT, None)

    with interrupt.installed():
        Finalized()  # its __del__ raises KeyboardInterrupt, which Python ignores
        with pytest.raises(KeyboardInterrupt):
            interrupt.check()
    interrupt.check()  # the request does not outlive the command


@pytest.mark.parametrize("umask, file_mode, dir_mode", [(0o022, 0o644, 0o755), (0o077, 0o600, 0o700)])
def test_results_get_the_permissions_of_the_users_umask(tmp_path, umask, file_mode, dir_mode):
    import os
    import stat

    old = os.umask(umask)
    try:
        assert main(["compare", "--lambdas", "1", "--num-epochs", "1", "--out", str(tmp_path / "c"), "--quiet"]) == 0
    finally:
        os.umask(old)
    out = tmp_path / "c"
    assert stat.S_IMODE(out.stat().st_mode) == dir_mode
    for f in out.iterdir():
        assert stat.S_IMODE(f.stat().st_mode) == file_mode, f.name


@pytest.mark.parametrize("argv, words", [
    (["reproduce", "--num-inputs", "100000000"], ["num_inputs = 100000000", "2^31 - 1", "reduce n_train, n_test or num_inputs"]),
    (["reproduce", "--n-test", "1000000000"], ["n_train + n_test = 1000000020", "2^31 - 1"]),
    (["reproduce", "--num-epochs", "99999999999999999999"], ["needs about", "of memory", "available"]),
    (["reproduce", "--num-epochs", "3000000"], ["would take about", "3,000,000 epochs", "--yes"]),  # hours or days: timed
    (["sweep", "--seeds", "100000000"], ["needs about", "100000000 seed(s)"]),
    (["atlas", "--num-epochs", "100000000"], ["atlas sgd would take about", "--yes"]),
])
def test_cli_failures_are_one_line_exit_2_and_write_nothing(capsys, tmp_path, argv, words):
    # in this process (main, as the entry point calls it): a new process per case cost ~4 s of
    # importing MXNet each; test_signals runs the entry point itself in new processes
    out = tmp_path / "out"
    assert main([*argv, "--out", str(out), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("mxwd: error: "), err
    for word in words:
        assert word in err
    assert not out.exists() and list(tmp_path.iterdir()) == []


def test_an_internal_failure_is_one_line_with_a_hint_and_exit_1(capsys, tmp_path, monkeypatch):
    from mxwd import cli as cli_module

    def broken(args):
        raise RuntimeError("something MXNet did\nwith a second line")

    monkeypatch.setitem(cli_module.COMMANDS, "compare", broken)
    monkeypatch.delenv("MXWD_DEBUG", raising=False)
    assert main(["compare", "--out", str(tmp_path / "c")]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "internal error: RuntimeError" not in err
    assert err.startswith("mxwd: internal error: something MXNet did with a second line") and "MXWD_DEBUG=1" in err
