"""Launching a data-parallel job on 127.0.0.1: scheduler, servers and workers, and cleanup.

Every process gets explicit addresses (DMLC_PS_ROOT_URI = DMLC_NODE_HOST = 127.0.0.1,
DMLC_INTERFACE = lo): MXNet's own tools/launch.py resolves the machine's hostname, which
need not be the loopback address. The root port is a free one found by binding port 0,
or the one asked for, refused at once if taken. The scheduler and the servers are plain
`python -c "import mxnet"` with their DMLC_ROLE (importing MXNet runs the role's loop);
the workers run `mxwd.parallel.worker`.

Failure and cleanup. ps-lite does not end a job when one process fails: the others wait
forever. So the launcher polls every process: the first that exits non-zero ends the job
with one line (its last line of stderr), every process is bounded by the job's timeout,
and on success, failure, timeout, Ctrl-C, SIGTERM or SIGHUP every process it started is
ended by its PID (its process group), SIGTERM then SIGKILL; starting a process and
recording its PID, and the cleanup, are not cut short by a signal (`interrupt.deferred`).
If the launcher itself dies, even by SIGKILL, the kernel ends its processes: each is
started with the parent-death signal SIGKILL (Linux `prctl(PR_SET_PDEATHSIG)`, set by a
preexec_fn in the child before it runs Python; the child exits at once if the launcher
is already gone). Measured: the 4 processes of a job were gone 0.18 s after SIGKILL to
`mxwd distributed`. The kernel sends the signal when the *thread* that started the
process ends; `run_job` blocks that thread until the job is over, so it cannot end first.

Ports. The root port is checked with SO_REUSEADDR, as ps-lite's scheduler binds it (ZeroMQ
sets the option): a port left in TIME_WAIT by the previous job is usable, so `--port P`
serves every job of a run; a port someone listens on is refused. Warnings: the processes
run with `-W ignore::DeprecationWarning` (MXNet 1.9.1's own, on import and on every
`nd.array`), so PYTHONWARNINGS=error in the caller's environment does not break them.
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Tuple

from mxwd import interrupt
from mxwd.config import Config, check_bool, check_choice, check_int, resolve

KVSTORES = ("dist_sync", "dist_async")
HOST = "127.0.0.1"
PYTHON = [sys.executable, "-W", "ignore::DeprecationWarning"]  # every process of a job
PR_SET_PDEATHSIG = 1  # from <linux/prctl.h>


class JobError(RuntimeError):
    """A data-parallel job failed: a process exited non-zero, or the job ran out of time."""


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def check_port(port: int) -> int:
    """The port, if nothing listens on it on 127.0.0.1; a clear ValueError otherwise."""
    port = check_int(port, "port", minimum=1, maximum=65535)
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the scheduler binds it
        try:
            s.bind((HOST, port))
        except OSError:
            raise ValueError(f"port {port} on {HOST} is taken; choose another --port or leave it out "
                             "for a free one") from None
    return port


def _env(role: str, port: int, workers: int, servers: int) -> Dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DMLC_")}
    if not env.get("MXNET_ENGINE_TYPE"):  # the job's processes run as the command line runs (mxwd.cli)
        env["MXNET_ENGINE_TYPE"] = "NaiveEngine"
    env.update(DMLC_ROLE=role, DMLC_PS_ROOT_URI=HOST, DMLC_PS_ROOT_PORT=str(port), DMLC_NODE_HOST=HOST,
               DMLC_INTERFACE="lo", DMLC_NUM_WORKER=str(workers), DMLC_NUM_SERVER=str(servers), MXWD_DMLC="1")
    return env


def _die_with_launcher() -> Optional[Callable[[], None]]:
    """A preexec_fn that gives the child the parent-death signal SIGKILL (Linux), or None.

    Runs in the child between fork and exec: one foreign call (prctl, looked up here, in
    the parent), then exit if the launcher died before it.
    """
    import ctypes

    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):  # not Linux: the launcher's own cleanup is all there is
        return None
    launcher = os.getpid()

    def set_in_child() -> None:
        prctl(PR_SET_PDEATHSIG, int(signal.SIGKILL))
        if os.getppid() != launcher:
            os._exit(1)

    return set_in_child


class Job:
    """The processes of one job, and their cleanup."""

    def __init__(self, folder: Path):
        self.folder = folder
        self.procs: List[Tuple[str, subprocess.Popen]] = []
        self._preexec = _die_with_launcher()

    def start(self, name: str, argv: List[str], env: Dict[str, str]) -> None:
        with interrupt.deferred():  # a process started is a process recorded, so ended
            with open(self.folder / f"{name}.err", "wb") as err:
                proc = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=err,
                                        stdin=subprocess.DEVNULL, preexec_fn=self._preexec,
                                        start_new_session=True)  # its own process group: ended as a whole
            self.procs.append((name, proc))

    def last_line(self, name: str) -> str:
        lines = [ln for ln in (self.folder / f"{name}.err").read_text(errors="replace").splitlines() if ln.strip()]
        return lines[-1].strip() if lines else "no message"

    def wait(self, timeout: float) -> None:
        """Until every worker has exited 0 (then the rest shut down); the first failure ends the job."""
        deadline = time.monotonic() + timeout
        while True:
            for name, proc in self.procs:
                code = proc.poll()
                if code not in (None, 0):
                    raise JobError(f"{name} failed (exit status {code}): {self.last_line(name)}")
            if all(proc.poll() == 0 for name, proc in self.procs if name.startswith("worker")):
                break
            if time.monotonic() > deadline:
                raise JobError(f"the job did not finish within {timeout:g} s (--timeout); every process was ended")
            interrupt.check()
            time.sleep(0.02)
        grace = time.monotonic() + 5  # the scheduler and the servers end once the workers have finalized
        while any(proc.poll() is None for _, proc in self.procs) and time.monotonic() < grace:
            time.sleep(0.02)

    def end(self) -> None:
        with interrupt.deferred():  # a second Ctrl-C does not cut the cleanup short
            self._end()

    def _end(self) -> None:
        for sig in (signal.SIGTERM, signal.SIGKILL):
            alive = [p for _, p in self.procs if p.poll() is None]
            for proc in alive:
                try:
                    os.killpg(proc.pid, sig)
                except ProcessLookupError:
                    pass
            deadline = time.monotonic() + 2
            while any(p.poll() is None for p in alive) and time.monotonic() < deadline:
                time.sleep(0.02)
        for _, proc in self.procs:
            proc.wait()

    @property
    def pids(self) -> List[int]:
        return [p.pid for _, p in self.procs]




def run_job(config: Config, path: str, workers: int, servers: int, kvstore: str, update_on_kvstore: bool,
            port: Optional[int], timeout: float, keep_bias_policy: bool = True) -> List[Dict[str, Any]]:
    """Launch one job for one path; return every worker's runs (a list per worker, by rank)."""
    port = check_port(port) if port is not None else free_port()
    folder = None
    try:
        with interrupt.deferred():  # no signal between making the folder and owning its removal
            folder = Path(tempfile.mkdtemp(prefix="mxwd-dist-"))
        spec = {"config": config.to_dict(), "path": path, "kvstore": kvstore,
                "update_on_kvstore": update_on_kvstore, "keep_bias_policy": keep_bias_policy,
                "out": str(folder / "result")}
        (folder / "spec.json").write_text(json.dumps(spec))
        job = Job(folder)
        try:
            job.start("scheduler", PYTHON + ["-c", "import mxnet"], _env("scheduler", port, workers, servers))
            for k in range(servers):
                job.start(f"server {k}", PYTHON + ["-c", "import mxnet"], _env("server", port, workers, servers))
            for k in range(workers):
                job.start(f"worker {k}", PYTHON + ["-m", "mxwd.parallel.worker", str(folder / "spec.json")],
                          _env("worker", port, workers, servers))
            job.wait(timeout)
        finally:
            job.end()
        return [json.loads((folder / f"result.{rank}").read_text())["runs"] for rank in range(workers)]
    finally:
        if folder is not None:
            with interrupt.deferred():
                shutil.rmtree(folder, ignore_errors=True)


def distributed(config: Optional[Config] = None, seed: Optional[int] = None, workers: int = 2, servers: int = 1,
                kvstore: str = "dist_sync", update_on_kvstore: bool = True, port: Optional[int] = None,
                timeout: float = 120.0, keep_bias_policy: bool = True):
    """Run every lambd of the config on both paths, data-parallel; return a `Reproduction`.

    workers data-parallel worker processes and servers parameter servers on 127.0.0.1, over
    MXNet's kvstore `kvstore` ("dist_sync" or "dist_async"). With dist_sync the result
    equals `mxwd.reproduce(config)` (the same seed and global batch size) to float32
    rounding, on both paths, in both update_on_kvstore modes, with the bias kept out of
    the decay unless config.decay_bias. keep_bias_policy=False leaves MXNet's default
    behaviour on the servers (with update_on_kvstore=True it decays the bias: a finding).
    Raises ValueError for bad input and JobError if a process fails or time runs out.
    """
    from mxwd.reproduction import Reproduction
    from mxwd.results import FitResult
    from mxwd.training import check_stable

    config = resolve(config, seed)
    workers = check_int(workers, "workers", minimum=1)
    servers = check_int(servers, "servers", minimum=1)
    check_choice(kvstore, "kvstore", KVSTORES)
    check_bool(update_on_kvstore, "update_on_kvstore")
    if kvstore == "dist_async" and not update_on_kvstore:
        raise ValueError("kvstore='dist_async' applies each worker's push on the servers: it needs "
                         "update_on_kvstore=True (--update-on-kvstore)")
    if not (isinstance(timeout, (int, float)) and timeout > 0):
        raise ValueError(f"timeout must be a number of seconds > 0, got {timeout!r}")
    smallest = min(config.batch_size, config.partial_batch or config.batch_size)
    if smallest < workers:
        raise ValueError(f"a global batch of {smallest} rows (batch_size={config.batch_size}, n_train="
                         f"{config.n_train}) is smaller than workers={workers}: every worker needs a row of "
                         f"every batch; allowed: workers <= {smallest}, or a batch_size (--batch-size) whose "
                         f"batches all have >= {workers} rows, e.g. --batch-size 10")
    if config.penalty != "l2":
        raise ValueError(f"penalty={config.penalty!r}: the data-parallel paths run the L2 penalty and Gluon's wd "
                         "only; allowed: penalty='l2' (fit_and_plot runs the L1 penalty)")
    if config.pairing != "shared":
        raise ValueError(f"pairing={config.pairing!r}: the data-parallel jobs draw every run's initial w right after "
                         "the data (one job per Gluon lambd), not the notebook's one-kernel order; allowed: "
                         "pairing='shared' (mxwd reproduce runs pairing='notebook')")
    for lambd in config.lambdas:
        check_stable(config.lr, lambd)
    runs = {"scratch": [], "gluon": []}
    jobs = [("scratch", config)] + [("gluon", config.replace(lambdas=(lambd,))) for lambd in config.lambdas]
    for path, job_config in jobs:
        per_worker = run_job(job_config, path, workers, servers, kvstore, update_on_kvstore, port, timeout,
                             keep_bias_policy)
        if kvstore == "dist_sync" and workers > 1:
            spread = max(max(abs(a - b) for a, b in zip(r0["w"], rk["w"]))
                         for ranks in zip(*per_worker) for r0, rk in zip(ranks, ranks[1:]))
            if spread > 1e-6:
                raise JobError(f"the {path} workers disagree by {spread:.3g} after a synchronous job")
        runs[path] += [FitResult(r["path"], r["lambd"], config, tuple(r["train_ls"]), tuple(r["test_ls"]),
                                 tuple(r["w"]), r["b"]) for r in per_worker[0]]
    return Reproduction(config, tuple(runs["scratch"]), tuple(runs["gluon"]))
