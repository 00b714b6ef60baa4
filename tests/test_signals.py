"""How every command ends: signals, a second writer of the same --out, a failing stdout, -W error.

The data-parallel launcher's side (its processes on SIGTERM, SIGHUP and SIGKILL, and
--port) is in tests/test_distributed.py.
"""
import os
import signal
import subprocess
import sys
import time
import warnings
from pathlib import Path
from types import SimpleNamespace

import pytest

from mxwd import interrupt
from mxwd.cli import main
from mxwd.results import staged_dir

SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


def start(*args, python=(), **kwargs):
    return subprocess.Popen([sys.executable, *python, "-m", "mxwd", *map(str, args)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, **kwargs)


def wait_for(predicate, timeout=60.0):
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("timed out")
        time.sleep(0.02)


def names(folder: Path):
    return sorted(p.name for p in folder.iterdir())


# Signals ------------------------------------------------------------------------------


@pytest.mark.parametrize("command, sig", [
    (["sweep", "--seeds", 2000], signal.SIGTERM),  # the user's `timeout -s TERM 3 mxwd sweep --seeds 200`
    pytest.param(["reproduce", "--num-epochs", 100000], signal.SIGHUP, marks=pytest.mark.slow),
])
def test_sigterm_and_sighup_end_a_command_like_ctrl_c(tmp_path, command, sig):
    proc = start(*command, "--yes", "--out", tmp_path / "out")
    assert "writing" in proc.stdout.readline()  # printed once training starts
    time.sleep(0.5)
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=60)
    lines = [ln for ln in err.replace("\r", "\n").splitlines() if ln.strip() and "%|" not in ln]  # no progress bar
    assert (proc.returncode, lines) == (128 + sig, [f"mxwd: interrupted by {sig.name}; no partial results were written"])
    assert names(tmp_path) == []  # no partial folder, no lock file


def test_a_signal_inside_mxnets_code_waits_for_the_next_safe_point():
    # The measured traceback: a KeyboardInterrupt raised as NDArrayBase.__init__ starts
    # leaves an NDArray without `handle`, whose __del__ then fails ("Exception ignored").
    # Simulated deterministically: the handler runs at the first event of that __init__.
    from mxnet._ctypes.ndarray import NDArrayBase

    from mxwd._mx import nd

    target = NDArrayBase.__init__.__code__
    unraisable = []

    def tracer(frame, event, arg):
        if frame.f_code is target:
            sys.settrace(None)
            interrupt.handler(signal.SIGTERM, frame)
        return None

    saved, sys.unraisablehook = sys.unraisablehook, unraisable.append
    try:
        with interrupt.installed():
            sys.settrace(tracer)
            try:
                x = nd.zeros((3,))
            except KeyboardInterrupt:
                pytest.fail("the interrupt was raised inside MXNet's NDArrayBase.__init__")
            finally:
                sys.settrace(None)
            assert x.handle is not None and x.asnumpy().tolist() == [0.0, 0.0, 0.0]  # built whole
            with pytest.raises(KeyboardInterrupt) as raised:
                interrupt.check()  # the next safe point (a training step) raises it
            assert raised.value.signum == signal.SIGTERM
            del x
    finally:
        sys.unraisablehook = saved
    assert unraisable == []


def test_the_unraisable_hook_swallows_only_what_an_interrupt_leaves():
    from mxnet._ctypes.ndarray import NDArrayBase

    def unraisable(exc, obj):
        return SimpleNamespace(exc_type=type(exc), exc_value=exc, exc_traceback=None, err_msg=None, object=obj)

    seen = []
    recorder = seen.append
    saved, sys.unraisablehook = sys.unraisablehook, recorder
    try:
        with interrupt.installed():
            hook = sys.unraisablehook
            hook(unraisable(KeyboardInterrupt(), NDArrayBase.__del__))  # always the interrupt's own
            hook(unraisable(AttributeError("handle"), NDArrayBase.__del__))  # no request yet: a real bug, shown
            with pytest.raises(KeyboardInterrupt):
                with interrupt.deferred():
                    interrupt.handler(signal.SIGINT, None)
            hook(unraisable(AttributeError("handle"), NDArrayBase.__del__))  # after a request: swallowed
            hook(unraisable(ValueError("mine"), test_the_unraisable_hook_swallows_only_what_an_interrupt_leaves))
        assert sys.unraisablehook is recorder  # restored
    finally:
        sys.unraisablehook = saved
    assert [(u.exc_type, str(u.exc_value)) for u in seen] == [(AttributeError, "handle"), (ValueError, "mine")]


REPEATED = r"""
import os, random, signal, sys, threading
from mxwd.cli import main

out, runs = sys.argv[1], int(sys.argv[2])
commands = [["reproduce", "--num-epochs", "100000"], ["sweep", "--seeds", "2000"]]
rng = random.Random(0)
codes = []
for k in range(runs):
    sig = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)[k % 3]
    timer = threading.Timer(rng.uniform(0.02, 0.6), os.kill, (os.getpid(), sig))
    timer.start()
    codes.append(main([*commands[k % 2], "--yes", "--quiet", "--out", f"{out}/run{k}"]))
    timer.join()
print(codes)
"""


@pytest.mark.slow
def test_repeated_interrupts_at_varied_times_never_print_a_finalizers_traceback(tmp_path):
    # 12 commands in one process (MXNet imported once), each ended by SIGINT, SIGTERM or
    # SIGHUP after 0.02 to 0.6 s: while staging, generating data, training, sweeping
    runs = 12
    out = subprocess.run([sys.executable, "-c", REPEATED, str(tmp_path), str(runs)], capture_output=True, text=True,
                         timeout=300)
    expected = [128 + SIGNALS[k % 3] for k in range(runs)]
    assert out.returncode == 0 and out.stdout.strip() == str(expected), out.stderr[-2000:]
    lines = [f"mxwd: interrupted{'' if s == signal.SIGINT else ' by ' + s.name}; no partial results were written"
             for s in (SIGNALS[k % 3] for k in range(runs))]
    assert out.stderr.splitlines() == lines  # nothing else: no "Exception ignored", no traceback
    assert names(tmp_path) == []


# One writer wins -----------------------------------------------------------------------

HOLDER = """
import sys, time
from mxwd.results import staged_dir
with staged_dir(sys.argv[1]):
    print("holding", flush=True)
    time.sleep(120)
"""


def test_a_second_writer_of_the_same_out_is_refused_and_a_killed_one_leaves_no_lock(tmp_path, capsys):
    out = tmp_path / "out"
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(out)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline() == "holding\n"
        assert main(["reproduce", "--num-epochs", "1", "--quiet", "--out", str(out)]) == 2
        err = capsys.readouterr().err
        assert err == (f"mxwd: error: --out {str(out)!r} is being written by another mxwd process (PID {holder.pid}); "
                       "wait for it to finish or choose another --out\n")
    finally:
        holder.kill()  # SIGKILL: its lock dies with it; its lock file and partial folder stay
        holder.wait()
    assert not out.exists() and ".out.lock" in names(tmp_path)
    with staged_dir(out) as tmp:  # no stale lock; the killed writer's partial folder is removed
        (tmp / "results.json").write_text("{}")
    assert names(tmp_path) == ["out"] and names(out) == ["results.json"]  # and no lock file after a normal run


def test_an_out_that_appears_before_the_commit_is_refused_unless_force(tmp_path):
    out = tmp_path / "out"
    with pytest.raises(ValueError, match=r"--out .*out' appeared while this run was writing it; pass --force"):
        with staged_dir(out) as tmp:
            (tmp / "new").write_text("new")
            out.mkdir()
            (out / "theirs").write_text("theirs")  # e.g. an older mxwd, or a user's folder
    assert names(tmp_path) == ["out"] and names(out) == ["theirs"]
    with staged_dir(out, force=True) as tmp:
        (tmp / "new").write_text("new")
    assert names(tmp_path) == ["out"] and names(out) == ["new"]


@pytest.mark.slow
def test_two_commands_started_together_on_the_same_out_one_wins(tmp_path):
    out = tmp_path / "out"
    procs = [start("reproduce", "--num-epochs", 1, "--quiet", "--out", out) for _ in range(2)]
    results = [p.communicate(timeout=120) for p in procs]
    codes = sorted(p.returncode for p in procs)
    assert codes == [0, 2], results
    (loser_err,) = [err for p, (_, err) in zip(procs, results) if p.returncode == 2]
    assert loser_err.count("\n") == 1 and f"--out {str(out)!r}" in loser_err
    assert names(tmp_path) == ["out"]


# A failing stdout ----------------------------------------------------------------------


@pytest.mark.slow  # (the fast suite keeps test_stdout_failing_from_the_first_progress_line_...)
def test_stdout_failing_after_the_commit_says_so_and_keeps_the_results(tmp_path):
    out = tmp_path / "out"
    with open("/dev/full", "w") as full:
        proc = subprocess.run([sys.executable, "-m", "mxwd", "reproduce", "--num-epochs", "1", "--quiet", "--out",
                               str(out)], stdout=full, stderr=subprocess.PIPE, text=True, timeout=120)
    assert (proc.returncode, proc.stderr) == (1, "mxwd: error: cannot write to stdout: No space left on device; "
                                                 f"the results were written to {out} and kept\n")
    assert names(tmp_path) == ["out"] and "results.json" in names(out)


class FullStdout:
    def write(self, text):
        raise OSError(28, "No space left on device")

    def flush(self):
        pass


def test_stdout_failing_from_the_first_progress_line_still_keeps_the_results(tmp_path, capsys, monkeypatch):
    # progress is a side channel: the run goes on, commits, and the summary reports the failure
    monkeypatch.setattr(sys, "stdout", FullStdout())  # the first progress line fails
    assert main(["reproduce", "--num-epochs", "1", "--out", str(tmp_path / "out")]) == 1
    assert capsys.readouterr().err == ("mxwd: error: cannot write to stdout: No space left on device; "
                                       f"the results were written to {tmp_path / 'out'} and kept\n")
    assert (tmp_path / "out" / "results.json").exists()


# Warnings, and no side effects on the caller's process ----------------------------------


@pytest.mark.parametrize("option", ["error", pytest.param("default", marks=pytest.mark.slow)])
def test_reproduce_runs_under_W_error_and_prints_no_warning_under_W_default(tmp_path, option):
    proc = start("reproduce", "--num-epochs", 1, "--out", tmp_path / "out", python=("-W", option))
    out, err = proc.communicate(timeout=120)
    assert (proc.returncode, err) == (0, ""), err
    assert "wrote" in out


EVERY_COMMAND = r"""
import sys
from mxwd.cli import main

out = sys.argv[1]
small = ["--num-epochs", "1", "--quiet"]
commands = [["reproduce"], ["compare", "--lambdas", "1"], ["sweep", "--seeds", "2", "--lambdas", "0", "1"],
            ["atlas", "--optimizers", "sgd", "adam"],
            ["distributed", "--workers", "1", "--lambdas", "0", "--batch-size", "10"]]
codes = [main([*c, *small, "--out", f"{out}/{c[0]}"]) for c in commands]
print("exit statuses:", codes)
"""


@pytest.mark.slow
def test_every_command_runs_with_warnings_as_errors(tmp_path):
    # PYTHONWARNINGS=error is -W error for this process and for every process it starts
    env = dict(os.environ, PYTHONWARNINGS="error")
    out = subprocess.run([sys.executable, "-c", EVERY_COMMAND, str(tmp_path)], capture_output=True, text=True,
                         env=env, timeout=300)
    assert (out.stdout.splitlines()[-1], out.stderr) == ("exit statuses: [0, 0, 0, 0, 0]", ""), out.stderr[-2000:]


def test_main_leaves_the_callers_process_as_it_was(tmp_path):
    def settings():
        return (list(warnings.filters), [signal.getsignal(s) for s in SIGNALS], sys.unraisablehook, sys.stdout)

    before = settings()
    assert main(["compare", "--lambdas", "1", "--num-epochs", "1", "--quiet", "--out", str(tmp_path / "c")]) == 0
    assert settings() == before


@pytest.mark.slow
def test_importing_mxwd_changes_no_warning_filter_signal_handler_or_hook():
    code = ("import signal, sys, warnings\n"
            "def settings(): return (list(warnings.filters), [signal.getsignal(s) for s in (2, 15, 1)], "
            "sys.unraisablehook)\n"
            "import numpy  # numpy's own import adds its filters ('numpy.ndarray size changed', ...)\n"
            "before = settings()\n"
            "import mxwd, mxwd.cli, mxwd.interrupt, mxwd.results, mxwd.parallel.launch, mxwd._mx, mxwd.mlps\n"
            "assert settings() == before, (before, settings())\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr


def test_importing_every_library_module_leaves_the_environment_unchanged():
    # An engineer's kvstore worker that imports mxwd.optim for adamw must keep its role, and
    # its own choice of engine (none here): only the command line's entry point sets them.
    # MXNet's own import sets KMP_DUPLICATE_LIB_OK and KMP_INIT_AT_FORK (shown in a second
    # process); mxwd._mx puts them back
    code = ("import os, pkgutil, importlib\n"
            "before = dict(os.environ)\n"
            "import mxwd, mxwd.optim\n"
            "skip = {'mxwd.__main__', 'mxwd.parallel.worker'}  # entry scripts: they run when imported\n"
            "names = [m.name for m in pkgutil.walk_packages(mxwd.__path__, 'mxwd.') if m.name not in skip]\n"
            "for name in names: importlib.import_module(name)\n"
            "mxwd.fit_and_plot(5, mxwd.Config(num_epochs=1))  # MXNet loaded and used\n"
            "after = dict(os.environ)\n"
            "print(len(names), sorted(k for k in set(before) | set(after) if before.get(k) != after.get(k)))\n")
    env = {k: v for k, v in os.environ.items() if k not in ("MXNET_ENGINE_TYPE", "MXWD_DMLC")}
    env.update(DMLC_ROLE="worker", DMLC_NUM_WORKER="2")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    count, changed = out.stdout.split(" ", 1)
    assert int(count) >= 25 and changed.strip() == "[]", out.stdout
    mxnet_alone = ("import os; before = dict(os.environ); import mxnet\n"
                   "print(sorted(k for k in os.environ if before.get(k) != os.environ[k]))")
    out = subprocess.run([sys.executable, "-W", "ignore", "-c", mxnet_alone], env=env, capture_output=True,
                         text=True, timeout=120)
    assert out.stdout.strip() == "['KMP_DUPLICATE_LIB_OK', 'KMP_INIT_AT_FORK']"  # the finding, still there
