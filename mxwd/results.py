"""Results as data: what a run returns, and how it is written to and read from disk.

Every result carries the Config it was made with (its `seed` included), so any saved
number can be rerun. Files are written atomically: to a temporary file in the same
folder, then renamed, so an interrupted run never leaves a half-written file.
"""
from __future__ import annotations

import contextlib
import csv
import glob
import io
import json
import math
import os
import platform
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, Iterable, Iterator, List, Optional, Sequence, Tuple

from mxwd.config import Config

DPI = 100  # figures are saved at 100 dots per inch: mxwd.plot's 6.4-inch figures are 640 px wide


@dataclass(frozen=True)
class FitResult:
    """One trained model: per-epoch losses (without the penalty) and final parameters.

    `path` is "scratch" (autograd loss + lambd * l2_penalty, manual `sgd`) or "gluon"
    (`gluon.Trainer` with built-in `wd`); `lambd` is the penalty strength / wd.
    """

    path: str
    lambd: float
    config: Config
    train_ls: Tuple[float, ...]  # mean squared loss (y_hat - y)^2 / 2 on the training set, after each epoch
    test_ls: Tuple[float, ...]  # the same on the test set
    w: Tuple[float, ...]  # final weights, all num_inputs of them
    b: float  # final bias

    @property
    def seed(self) -> int:
        """The seed behind the run's data, initial w and batch order (config.seed)."""
        return self.config.seed

    @property
    def final_train_ls(self) -> float:
        """The training loss after the last epoch (train_ls[-1])."""
        return self.train_ls[-1]

    @property
    def final_test_ls(self) -> float:
        """The test loss after the last epoch (test_ls[-1])."""
        return self.test_ls[-1]

    def to_numpy(self) -> Dict[str, Any]:
        """The numbers as NumPy arrays: train_ls and test_ls (epochs,), w (num_inputs,), and b."""
        import numpy as np

        return {"train_ls": np.asarray(self.train_ls), "test_ls": np.asarray(self.test_ls),
                "w": np.asarray(self.w), "b": self.b}

    def __repr__(self) -> str:
        return (f"<FitResult {self.path} lambd={self.lambd:g} seed={self.seed}: final train loss "
                f"{self.final_train_ls:.4g}, test loss {self.final_test_ls:.4g}, ||w|| {self.w_norm:.4g}, {self.config!r}>")

    @property
    def init_block(self) -> Optional[int]:
        """Which initial-parameter block the run started from (block k: the k-th drawn after the
        data; `mxwd.data.init_block`, config.pairing's rule); None for a path that is not one of
        the book's cells."""
        from mxwd.data import PATHS, init_block, run_index

        if self.path not in PATHS:
            return None
        return init_block(self.config, self.path, run_index(self.config, self.lambd))

    @property
    def w_head(self) -> Tuple[float, ...]:
        """w[:10], as the source prints it."""
        return self.w[:10]

    @property
    def w_norm(self) -> float:
        """The Euclidean norm ||w|| (computed in float64)."""
        return math.sqrt(math.fsum(v * v for v in self.w))

    def to_dict(self) -> Dict[str, Any]:
        return {
            "path": self.path,
            "lambd": self.lambd,
            "seed": self.seed,
            "init_block": self.init_block,
            "train_ls": list(self.train_ls),
            "test_ls": list(self.test_ls),
            "w": list(self.w),
            "b": self.b,
            "w_norm": self.w_norm,
        }

    def __str__(self) -> str:
        head = " ".join(f"{v:.8g}" for v in self.w_head)
        return (
            f"{self.path} lambd={self.lambd:g} seed={self.seed}: "
            f"train loss {self.train_ls[-1]:.4g}, test loss {self.test_ls[-1]:.4g}, "
            f"||w|| {self.w_norm:.6g}\n  w[:10]: [{head}]\n  b: {self.b:.8g}"
        )


def versions() -> Dict[str, str]:
    """Versions of what produced a result: Python, mxnet, numpy, d2l (if installed), mxwd."""
    from importlib import metadata

    out = {"python": platform.python_version()}
    for name in ("mxnet", "numpy", "d2l", "mxwd"):
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "not installed"
    return out


# ---------------------------------------------------------------------------------------
# Atomic writes.


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_atomic(path: Path, data: bytes) -> None:
    """Write `data` to `path` through a temporary file and a rename (never half-written).

    The file gets the permissions the user's umask gives a new file (0644 under umask
    022); mkstemp alone would leave it 0600.
    """
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.chmod(tmp, 0o666 & ~_umask())
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def write_json(path: Path, payload: Dict[str, Any]) -> None:
    text = json.dumps(payload, indent=1, allow_nan=False)
    write_atomic(path, (text + "\n").encode())


def write_csv(path: Path, rows: Sequence[Dict[str, Any]]) -> None:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(rows[0]), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    write_atomic(path, buffer.getvalue().encode())


def save_figure(fig: Any, stem: Path, formats: Iterable[str] = ("png", "svg")) -> List[Path]:
    """Save a matplotlib Figure as stem.png and stem.svg, each atomically, at DPI.

    The figures use constrained layout, so no `bbox_inches="tight"` (a second render).
    """
    paths = []
    for fmt in formats:
        buffer = io.BytesIO()
        fig.savefig(buffer, format=fmt, dpi=DPI, metadata=_figure_metadata(fmt))
        path = Path(f"{stem}.{fmt}")
        write_atomic(path, buffer.getvalue())
        paths.append(path)
    return paths


def _figure_metadata(fmt: str) -> Dict[str, Any]:
    # No creation dates: the same numbers give the same files.
    if fmt == "svg":
        return {"Date": None}
    if fmt == "png":
        return {"Software": None}
    return {}


def read_json(path: Path) -> Dict[str, Any]:
    """Read a results file, with a clear error if it is missing or not mxwd's JSON."""
    path = Path(path)
    try:
        payload = json.loads(path.read_text())
    except FileNotFoundError:
        raise ValueError(f"results file {str(path)!r} does not exist") from None
    except (OSError, json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ValueError(f"results file {str(path)!r} is not readable JSON: {err}") from None
    if not isinstance(payload, dict) or "config" not in payload:
        raise ValueError(f"results file {str(path)!r} has no 'config': not written by mxwd")
    return payload


RERUNNABLE = ("reproduce", "compare", "distributed")  # commands whose results.json are runs of config.lambdas
# Config fields added after results files were first written, with the one value the older
# files' runs had (there was no other): a file that predates them is rerun with exactly that,
# and the command line says so. Any other missing field is refused.
ADDED_LATER = {"penalty": "l2", "l1_step": "subgradient", "pairing": "shared"}


def config_to_rerun(path) -> Config:
    """The complete Config of a results file written by reproduce, compare or distributed.

    A sweep's or an atlas's file is refused (its lambdas are a grid, not runs to repeat), and
    so is a config that lacks a field: a default filled in silently would not be a rerun.
    """
    from mxwd.config import field_names

    payload = read_json(path)
    command = payload.get("command")
    if command not in RERUNNABLE:
        raise ValueError(f"--from {str(path)!r} was written by mxwd {command or 'an unknown command'}; allowed: a "
                         f"results.json of mxwd {', '.join(RERUNNABLE)}")
    values = dict(payload["config"])
    missing = [name for name in field_names() if name not in values and name not in ADDED_LATER]
    if missing:
        raise ValueError(f"--from {str(path)!r}: its config lacks {', '.join(missing)}; allowed: a config with "
                         f"every field (as mxwd writes it)")
    for name, value in ADDED_LATER.items():  # what the file's runs did, before the field existed
        values.setdefault(name, value)
    return Config.from_dict(values)


def fields_added_since(path) -> List[str]:
    """The ADDED_LATER fields that the results file at `path` predates (`config_to_rerun` sets them)."""
    return [name for name in ADDED_LATER if name not in read_json(path)["config"]]


_commits: Optional[List[Path]] = None  # set by `recording_commits()`


@contextlib.contextmanager
def recording_commits() -> Iterator[List[Path]]:
    """Within the block, every folder `staged_dir` commits is appended to the yielded list.

    The command line uses it to say, when something fails after a commit (printing to a
    full disk, say), where the finished results are.
    """
    global _commits
    saved, _commits = _commits, []
    try:
        yield _commits
    finally:
        _commits = saved


@contextlib.contextmanager
def _writer_lock(out: Path) -> Iterator[None]:
    """Hold an exclusive lock on `out` for the block: `.NAME.lock` beside it, flock'ed.

    One writer wins: a second mxwd process asking for the same `out` gets a ValueError at
    once, naming the folder. The lock is the kernel's (fcntl.flock), so it dies with its
    process, even by SIGKILL (the file may stay; no lock does). The file is removed before
    the lock is released; a process that opened it just before checks, once it holds the
    lock, that the name still leads to the file it locked, and otherwise starts over.
    """
    from mxwd import interrupt

    path = out.parent / f".{out.name}.lock"
    fd = None
    try:
        with interrupt.deferred():  # no signal between taking the lock and owning its cleanup
            fd = _lock(path, out)
        yield
    finally:
        if fd is not None:
            with interrupt.deferred():
                with contextlib.suppress(OSError):
                    os.unlink(path)
                os.close(fd)


def _lock(path: Path, out: Path) -> int:
    import fcntl

    while True:
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o666)  # the umask applies
        except OSError as err:
            raise ValueError(f"--out {str(out)!r} is not usable: {err.strerror or err}") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip()
            os.close(fd)
            by = f" (PID {holder})" if holder.isdigit() else ""
            raise ValueError(f"--out {str(out)!r} is being written by another mxwd process{by}; wait for it to "
                             "finish or choose another --out") from None
        try:
            same = os.path.samestat(os.stat(path), os.fstat(fd))
        except FileNotFoundError:
            same = False
        if same:
            os.ftruncate(fd, 0)
            os.write(fd, f"{os.getpid()}\n".encode())
            return fd
        os.close(fd)  # its last holder removed it after we opened it: lock the new one


@contextlib.contextmanager
def staged_dir(out: Path, force: bool = False) -> Iterator[Path]:
    """Yield a fresh temporary folder beside `out`; on success it becomes `out`.

    Nothing is half-written: on any error or interrupt the temporary folder is removed
    and an existing `out` is left as it was. An existing `out` is replaced only with
    `force`, and that is checked again at the commit (an `out` that appeared meanwhile is
    refused too). One writer wins: `out` is locked (`_writer_lock`) from the start to the
    commit, and a second mxwd process writing it is refused at once. Holding the lock, it
    removes the `.NAME.partial-*` folders of writers that were killed (SIGKILL leaves
    them; any live writer would hold the lock). Raises ValueError (naming the folder) if
    `out` cannot be used.
    """
    from mxwd import interrupt

    out = Path(out)
    _check_out(out, force)
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise ValueError(f"--out {str(out)!r} is not usable: {err.strerror or err}") from None
    with _writer_lock(out):
        _check_out(out, force)  # another process may have committed it before we held the lock
        for stale in out.parent.glob(f".{glob.escape(out.name)}.partial-*"):  # a killed writer's (we hold the lock)
            shutil.rmtree(stale, ignore_errors=True)
        tmp = None
        try:
            with interrupt.deferred():  # no signal between making the folder and owning its removal
                tmp = _partial_dir(out)
            yield tmp
            interrupt.check()  # a request still waiting for a safe point: nothing is committed
            with interrupt.deferred():  # a signal here would leave `out` moved aside: it waits
                _check_out(out, force, appeared=True)
                old = None
                if out.exists():
                    old = Path(tempfile.mkdtemp(prefix=f".{out.name}.old-", dir=out.parent))
                    os.replace(out, old / out.name)
                os.replace(tmp, out)
                if _commits is not None:
                    _commits.append(out)
                if old is not None:
                    shutil.rmtree(old)
        finally:
            if tmp is not None:
                with interrupt.deferred():
                    if tmp.exists():
                        shutil.rmtree(tmp)


def _partial_dir(out: Path) -> Path:
    try:
        tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.partial-", dir=out.parent))
        os.chmod(tmp, 0o777 & ~_umask())  # mkdtemp makes 0700; the folder keeps the umask's mode
    except OSError as err:
        raise ValueError(f"--out {str(out)!r} is not usable: {err.strerror or err}") from None
    return tmp


def _check_out(out: Path, force: bool, appeared: bool = False) -> None:
    if out.exists() and not out.is_dir():
        raise ValueError(f"--out {str(out)!r} exists and is not a directory; choose another --out")
    if out.exists() and not force:
        how = "appeared while this run was writing it" if appeared else "already exists"
        raise ValueError(f"--out {str(out)!r} {how}; pass --force to overwrite it or choose another --out")
