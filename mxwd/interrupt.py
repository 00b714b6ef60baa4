"""Ctrl-C that is never lost.

Python raises KeyboardInterrupt from its SIGINT handler at the next bytecode. When that
bytecode belongs to an object's finalizer (`__del__`), the interpreter prints "Exception
ignored" and drops the interrupt, and MXNet's NDArray finalizer runs after almost every
operator: measured, about 1 in 12 single Ctrl-C presses during `mxwd reproduce` were lost
and the run went on. The command line installs `handler`, which also records the
request, and the training loops call `check()` at every step, which raises it again.
"""
from __future__ import annotations

import contextlib
import signal
from typing import Iterator

_requested = False


def handler(signum, frame) -> None:  # noqa: ARG001  (the signal module's signature)
    global _requested
    _requested = True
    raise KeyboardInterrupt


def check() -> None:
    """Raise KeyboardInterrupt if Ctrl-C was pressed (even if a finalizer swallowed it)."""
    if _requested:
        raise KeyboardInterrupt


@contextlib.contextmanager
def installed() -> Iterator[None]:
    """Install `handler` for SIGINT for the duration (main thread only), then restore."""
    global _requested
    _requested = False
    try:
        previous = signal.signal(signal.SIGINT, handler)
    except ValueError:  # not the main thread: leave signals alone
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
        _requested = False
