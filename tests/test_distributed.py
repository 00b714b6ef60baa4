"""Data-parallel training on MXNet's dist kvstore, on 127.0.0.1: equivalence, findings, robustness."""
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import numpy as np
import pytest

import mxwd
from mxwd.cli import main
from mxwd.config import Config
from mxwd.parallel import distributed
from mxwd.parallel.launch import check_port, free_port, run_job

CONFIG = Config(batch_size=10, lambdas=(5.0,))


@pytest.fixture(autouse=True)
def job_tag(monkeypatch):
    """A tag in the environment, inherited by every process this test starts (the launcher
    copies its environment into the job's), so that `job_processes` sees this test's jobs
    only, not those of a test running beside it (pytest -n)."""
    tag = uuid.uuid4().hex
    monkeypatch.setenv("MXWD_TEST_TAG", tag)
    return tag


def _live_job_processes():
    """(pid, environment, parent pid) of every live process with MXWD_DMLC=1, read from /proc."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            env = (entry / "environ").read_bytes().split(b"\0")
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        state, ppid = stat[stat.rindex(")") + 2:].split()[:2]
        if b"MXWD_DMLC=1" in env and state != "Z":
            yield int(entry.name), env, int(ppid)


def job_processes():
    """PIDs of live processes that this test's data-parallel jobs launched (MXWD_DMLC=1 and
    this test's MXWD_TEST_TAG in their environment)."""
    tag = f"MXWD_TEST_TAG={os.environ['MXWD_TEST_TAG']}".encode()
    return [pid for pid, env, _ in _live_job_processes() if tag in env]


def launched_by(launcher):
    """PIDs of the live processes that the launcher process `launcher` started for a job
    (MXWD_DMLC=1 in the environment, `launcher` as the parent)."""
    return [pid for pid, _, ppid in _live_job_processes() if ppid == launcher]


def alive(pids):
    """Those of `pids` still running (neither gone nor a zombie)."""
    out = []
    for pid in pids:
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            continue
        if stat[stat.rindex(")") + 2] != "Z":
            out.append(pid)
    return out


def wait_for_job(launcher, n=4, timeout=60):
    """The PIDs of a job's scheduler, server and workers, once all n have started."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        pids = launched_by(launcher)
        if len(pids) >= n:
            return pids
        time.sleep(0.05)
    raise AssertionError("the job's processes did not start")


def end(pids):
    """Clean up after a failed test: SIGKILL whatever of `pids` is still running."""
    for pid in alive(pids):
        os.kill(pid, signal.SIGKILL)


def gaps(result, single):
    return [(max(abs(a - b) for a, b in zip(d.w, s.w)), abs(d.b - s.b)) for d, s in zip(result.runs, single.runs)]


@pytest.mark.parametrize("update_on_kvstore, port", [(True, None), pytest.param(False, "given", marks=pytest.mark.slow)])
def test_a_loopback_job_equals_the_single_process_run_with_the_bias_undecayed(update_on_kvstore, port):
    # with a given --port: both jobs (scratch, then Gluon) use it, the first leaving it in TIME_WAIT
    start = time.perf_counter()
    port = free_port() if port == "given" else None
    result = distributed(CONFIG, workers=2, update_on_kvstore=update_on_kvstore, port=port)
    seconds = time.perf_counter() - start
    single = mxwd.reproduce(CONFIG)  # the bias is kept out of the decay here
    assert [(r.path, r.lambd) for r in result.runs] == [(r.path, r.lambd) for r in single.runs]
    for dw, db in gaps(result, single):
        assert dw <= 1e-6 and db <= 1e-6
    assert seconds <= 20  # two launches (the scratch job, the Gluon job), about 4 s each here
    assert job_processes() == []


@pytest.mark.slow
def test_finding_mxnets_default_decays_the_bias_on_the_servers():
    # update_on_kvstore=True without the index-keyed multiplier: the servers' optimizer has
    # lost the bias's wd_mult = 0, so it decays the bias like decay_bias=True would
    (runs,) = run_job(CONFIG, "gluon", 1, 1, "dist_sync", True, None, 60, keep_bias_policy=False)[:1]
    (run,) = runs
    kept = mxwd.fit_and_plot_gluon(5.0, CONFIG)
    decayed = mxwd.fit_and_plot_gluon(5.0, CONFIG.replace(decay_bias=True))
    assert abs(run["b"] - kept.b) > 1e-2
    assert abs(run["b"] - decayed.b) <= 1e-6


@pytest.mark.slow
def test_async_runs_and_lands_near_the_synchronous_result():
    result = distributed(CONFIG.replace(lambdas=(0.0,)), workers=2, kvstore="dist_async")
    single = mxwd.reproduce(CONFIG.replace(lambdas=(0.0,)))
    scale = max(abs(v) for r in single.runs for v in r.w)
    for dw, _ in gaps(result, single):
        # each push applied on its own, in arrival order: not equal, nor reproducible, but close
        assert 0 < dw < 0.5 * scale


def cli(*args, **kwargs):
    return subprocess.Popen([sys.executable, "-m", "mxwd", "distributed", *map(str, args)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kwargs)


@pytest.mark.parametrize("args, words", [
    (["--workers", 0], ["workers must be >= 1"]),
    (["--servers", 0], ["servers must be >= 1"]),
    (["--workers", 3, "--batch-size", 2], ["global batch of 2 rows", "workers=3"]),
    (["--workers", 3, "--batch-size", 9], ["global batch of 2 rows", "n_train=20"]),  # the last batch has 2
    (["--kvstore", "local"], ["--kvstore", "invalid choice"]),
    (["--kvstore", "dist_async", "--no-update-on-kvstore"], ["dist_async", "update_on_kvstore=True"]),
])
def test_bad_input_is_one_line_and_exit_2(tmp_path, args, words, capsys):
    # in this process (MXNet is loaded once): what a subprocess would print, without its start-up
    code = main(["distributed", *map(str, args), "--out", str(tmp_path / "d")])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1, err
    for word in words:
        assert word in err
    assert not (tmp_path / "d").exists()


def test_a_taken_port_is_refused_clearly(tmp_path, capsys):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        code = main(["distributed", "--batch-size", "10", "--port", str(port), "--out", str(tmp_path / "d")])
    err = capsys.readouterr().err
    assert code == 2 and err == f"mxwd: error: port {port} on 127.0.0.1 is taken; choose another --port or leave it out for a free one\n"


def test_a_port_left_in_time_wait_by_the_last_job_is_usable_by_the_next():
    with socket.socket() as listener:
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as ZeroMQ binds the scheduler's port
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        client = socket.create_connection(("127.0.0.1", port))
        conn, _ = listener.accept()
        conn.close()  # the listening side closes first, as the scheduler does: its end waits in TIME_WAIT
        client.close()
    wait = time.monotonic() + 5
    while not time_wait(port) and time.monotonic() < wait:
        time.sleep(0.01)
    assert time_wait(port)
    assert check_port(port) == port


def time_wait(port):
    """True if a TCP connection from 127.0.0.1:port is in TIME_WAIT (state 06 in /proc/net/tcp)."""
    rows = [line.split() for line in Path("/proc/net/tcp").read_text().splitlines()[1:]]
    return any(row[1] == f"0100007F:{port:04X}" and row[3] == "06" for row in rows)


def wait_for_workers(n, timeout=30):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        workers = [pid for pid in job_processes()
                   if b"mxwd.parallel.worker" in Path(f"/proc/{pid}/cmdline").read_bytes()]
        if len(workers) >= n:
            return workers
        time.sleep(0.05)
    raise AssertionError("the workers did not start")


@pytest.mark.slow
def test_a_failed_worker_ends_the_job_in_one_line_with_no_process_left(tmp_path):
    proc = cli("--batch-size", 10, "--num-epochs", 100000, "--yes", "--out", tmp_path / "d")
    workers = wait_for_workers(2)
    time.sleep(1.0)
    os.kill(workers[0], signal.SIGKILL)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 1 and err.count("\n") == 1, err
    assert "the job failed: worker" in err and "exit status -9" in err and "every process it started was ended" in err
    assert job_processes() == [] and not (tmp_path / "d").exists()


@pytest.mark.slow
def test_every_process_is_bounded_by_the_timeout(tmp_path):
    proc = cli("--batch-size", 10, "--num-epochs", 100000, "--yes", "--timeout", 3, "--out", tmp_path / "d")
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 1 and "did not finish within 3 s" in err and err.count("\n") == 1
    assert job_processes() == []


# every launch beyond the one smoke test is slow (tests/test_signals.py covers SIGTERM for every command)
@pytest.mark.parametrize("sig", [pytest.param(s, marks=pytest.mark.slow)
                                 for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)])
def test_ctrl_c_sigterm_and_sighup_end_every_process_and_leave_nothing(tmp_path, sig):
    (tmp_path / "tmp").mkdir()
    env = dict(os.environ, TMPDIR=str(tmp_path / "tmp"))  # where the job's folder (mxwd-dist-*) goes
    proc = cli("--batch-size", 10, "--num-epochs", 100000, "--yes", "--quiet", "--out", tmp_path / "d", env=env)
    pids = wait_for_job(proc.pid)
    try:
        time.sleep(0.5)
        proc.send_signal(sig)
        _, err = proc.communicate(timeout=60)
        by = "" if sig == signal.SIGINT else f" by {sig.name}"
        assert (proc.returncode, err) == (128 + sig, f"mxwd: interrupted{by}; no partial results were written\n")
        assert alive(pids) == []
        assert sorted(p.name for p in tmp_path.rglob("*")) == ["tmp"]  # no partial folder, job folder or lock
    finally:
        end(pids)


@pytest.mark.slow
def test_a_launcher_killed_by_sigkill_takes_every_process_of_its_job_with_it(tmp_path):
    (tmp_path / "tmp").mkdir()
    env = dict(os.environ, TMPDIR=str(tmp_path / "tmp"))
    proc = cli("--batch-size", 10, "--num-epochs", 100000, "--yes", "--quiet", "--out", tmp_path / "d", env=env)
    pids = wait_for_job(proc.pid)
    try:
        time.sleep(0.5)
        proc.kill()  # nothing of the launcher runs: the kernel's parent-death signal ends them
        proc.communicate(timeout=60)
        deadline = time.monotonic() + 5
        while alive(pids) and time.monotonic() < deadline:
            time.sleep(0.02)
        assert alive(pids) == []
    finally:
        end(pids)


@pytest.mark.slow
def test_stray_dmlc_variables_do_not_make_the_command_line_a_server(tmp_path):
    # the entry point strips them (the library leaves them: tests/test_signals.py)
    env = dict(os.environ, DMLC_ROLE="server", DMLC_PS_ROOT_URI="10.0.0.1", DMLC_PS_ROOT_PORT="9000",
               DMLC_NUM_SERVER="1", DMLC_NUM_WORKER="1")
    env.pop("MXWD_DMLC", None)
    out = subprocess.run([sys.executable, "-m", "mxwd", "reproduce", "--num-epochs", "1", "--quiet",
                          "--out", str(tmp_path / "r")], env=env, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and (tmp_path / "r" / "results.json").exists(), out.stderr


@pytest.mark.slow
def test_repeated_launches_give_identical_results():
    # the racy mode: update_on_kvstore=False with a Trainer (initialised eagerly, then a barrier)
    results = [run_job(CONFIG, "gluon", 2, 1, "dist_sync", False, None, 60)[0][0]["w"] for _ in range(6)]
    assert all(r == results[0] for r in results)
    single = mxwd.fit_and_plot_gluon(5.0, CONFIG)
    assert np.abs(np.array(results[0]) - np.array(single.w)).max() <= 1e-6


def test_the_trainer_orders_parameters_by_sorted_name_so_the_bias_is_index_0():
    from mxwd._mx import gluon
    from mxwd.concise import make_net

    net = make_net(Config())
    assert list(net.collect_params().keys())[0].endswith("weight")  # collect_params: weight first
    trainer = gluon.Trainer(net.collect_params(), "sgd", {"learning_rate": 0.1}, kvstore=None)
    assert trainer._param2idx[net.bias.name] == 0 and trainer._param2idx[net.weight.name] == 1


def test_mxwd_distributed_is_the_function_even_after_importing_the_package():
    import mxwd.parallel  # noqa: F401

    assert callable(mxwd.distributed) and mxwd.distributed is mxwd.parallel.distributed
