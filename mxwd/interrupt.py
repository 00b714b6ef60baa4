"""Ctrl-C, SIGTERM and SIGHUP: every command ends cleanly, and no request is lost.

The command line (`mxwd.cli.main`) installs `handler` for SIGINT, SIGTERM and SIGHUP
(`installed()`); the library installs nothing, so importing mxwd never changes a
caller's signal handling. A request raises `Interrupted` (a KeyboardInterrupt carrying
the signal's number, so that the command line exits 128 + signum: 130, 143, 129), and
every `finally` on the way out removes what the command had begun: the staged output
folder, a job's temporary folder, a job's processes.

Where the exception is raised is the design. Python runs a signal handler at the next
bytecode of whatever frame is executing, and two places are unsafe:

- a finalizer. Raised inside `__del__` (MXNet's NDArray finalizer runs after almost every
  operator), the exception is printed as "Exception ignored in ..." and dropped: before
  the handler recorded requests, about 1 in 12 Ctrl-C presses during `mxwd reproduce`
  were lost and the run went on.
- MXNet's own Python code. Raised as `NDArrayBase.__init__` starts (between
  `MXNDArrayCreate` and `self.handle = ...`), it leaves an NDArray without a handle, whose
  `__del__` fails once the exception is released, after mxwd's own message: "Exception
  ignored in: <function NDArrayBase.__del__ ...> ... AttributeError: 'NDArray' object has
  no attribute 'handle'" (reported for 1 in 4 Ctrl-C of `mxwd sweep --seeds 200`;
  tests/test_signals.py reproduces it deterministically by running the handler there).

So the handler always records the request, and raises at once only when no frame on
the stack is a `__del__` or belongs to `mxnet`; otherwise the next safe point raises it:
the training loops call `check()` at every step (milliseconds apart), the launcher's
polling loop does too, `staged_dir` checks before it commits, and `deferred()` blocks
(a folder's commit, a job's start and cleanup) raise on leaving. The cost is latency
where MXNet is called in a loop without a check: measured, up to 0.75 s while `mxwd
sweep --seeds 2000` draws its seeds' data (the old handler was no quicker there: up to
1.4 s, inside MXNet's C calls). Later signals, once one has been raised, are only
recorded, so they cannot cut a cleanup short.

This removes the cause rather than hiding the symptom; a hook alone would hide lost
interrupts and leaked handles, not prevent them. As a backstop `installed()` also sets
a `sys.unraisablehook` that swallows exactly what an interrupt can still leave (a
KeyboardInterrupt in another finalizer-like context: a weakref callback, a generator
closed by the collector; or a failing MXNet finalizer once a signal was received) and
passes everything else on to the previous hook.
"""
from __future__ import annotations

import contextlib
import signal
import sys
from typing import Iterator, Optional

SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)

_requested: Optional[int] = None  # the number of the first signal received, None if none
_raised = False  # an Interrupted has been raised for it (the command is unwinding)
_deferring = 0  # depth of deferred() blocks


class Interrupted(KeyboardInterrupt):
    """The command was asked to stop by a signal (`signum`: SIGINT, SIGTERM or SIGHUP)."""

    def __init__(self, signum: int):
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


def _unsafe(frame) -> bool:
    """True if `frame` or a caller is a finalizer or MXNet's code (see the module docstring)."""
    while frame is not None:
        if frame.f_code.co_name == "__del__" or frame.f_globals.get("__name__", "").split(".")[0] == "mxnet":
            return True
        frame = frame.f_back
    return False


def _raise() -> None:
    global _raised
    _raised = True
    raise Interrupted(_requested)


def handler(signum, frame) -> None:
    """Record the request; raise it now if that is safe, else leave it to the next safe point."""
    global _requested
    if _requested is None:
        _requested = signum
    if _raised or _deferring or _unsafe(frame if frame is not None else sys._getframe(1)):
        return
    _raise()


def check() -> None:
    """Raise Interrupted if a signal asked the command to stop (even if a finalizer swallowed it)."""
    if _requested is not None:
        _raise()


@contextlib.contextmanager
def deferred() -> Iterator[None]:
    """Within the block a signal is only recorded; leaving the block raises it (if not raised yet).

    For steps that must not stop half-way: renaming a folder into place, starting a
    process and recording its PID, ending a job's processes.
    """
    global _deferring
    _deferring += 1
    try:
        yield
    finally:
        _deferring -= 1
    if _requested is not None and not _raised and not _deferring:
        _raise()


def _unraisable(hook):
    def swallow(unraisable) -> None:
        exc = unraisable.exc_value
        finalizer = getattr(unraisable.object, "__qualname__", "")
        from_mxnet = getattr(unraisable.object, "__module__", None) or ""
        if isinstance(exc, KeyboardInterrupt) or (
                _requested is not None and finalizer.endswith("__del__") and from_mxnet.startswith("mxnet")):
            return
        hook(unraisable)

    return swallow


@contextlib.contextmanager
def installed() -> Iterator[None]:
    """Install `handler` for SIGINT, SIGTERM and SIGHUP and the unraisable hook; then restore.

    In the main thread only (elsewhere signals are left alone).
    """
    global _requested, _raised, _deferring
    _requested, _raised, _deferring = None, False, 0
    try:
        previous = {sig: signal.signal(sig, handler) for sig in SIGNALS}
    except ValueError:  # not the main thread: leave signals alone
        yield
        return
    hook, sys.unraisablehook = sys.unraisablehook, _unraisable(sys.unraisablehook)
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)
        sys.unraisablehook = hook
        _requested, _raised, _deferring = None, False, 0
