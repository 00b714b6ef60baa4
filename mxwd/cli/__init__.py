"""The command line: `mxwd reproduce | compare | sweep | atlas | distributed | mlp | exercises`, one module per command.

The options (Config's fields) are built in `mxwd.cli.options`, the shared helpers live in
`mxwd.cli.common`, and each command's `run(args)` in its own module.

How a command ends, always in one line on stderr and never with a traceback:

- bad input, an unusable --out, or an --out another mxwd process is writing: exit 2;
- Ctrl-C, SIGTERM or SIGHUP (`mxwd.interrupt`): exit 128 + the signal's number (130,
  143, 129), with nothing half-written and every process the command started ended;
- stdout failing (a full disk, a closed pipe): exit 1, saying it was stdout. Before the
  results are committed nothing is kept; after, the message names the folder and the
  results stay. They are complete and correct, and only their summary was lost, so
  deleting them would throw work away; but the command did not do all it was asked,
  and a script must not read exit status 0 with the summary missing, hence 1;
- a failed data-parallel job or an internal error: exit 1.

Process settings live here, in the entry point, never at library import: the engine and
the DMLC_* variables (`process_settings`), the signal handlers (`mxwd.interrupt.installed`)
and the filters for dependencies' own warnings (`_DEPENDENCY_WARNINGS`), so
`python -W error -m mxwd ...` runs. MXNet is imported only
once a command runs, so `mxwd --help` answers at once.
"""
from __future__ import annotations

import argparse
import contextlib
import os
import signal
import sys
import warnings
from typing import Callable, Dict, Iterator, List, Optional, Sequence

from mxwd.cli import atlas, compare, distributed, exercises, mlp, reproduce, sweep
from mxwd.cli.common import JobFailed, StdoutFailed as _StdoutFailed, one_line
from mxwd.cli.options import UsageError, build_parser, config_from_args  # noqa: F401  (the public names)

# Warnings that the dependencies raise about themselves, which no mxwd user can act on.
# Measured with `python -W error::DeprecationWarning -c "import mxwd._mx as m; m.nd.array([1.0])"`:
# every `nd.array` (mxnet/ndarray/utils.py:141, `isinstance(x, spsp.csr.csr_matrix)`)
# reads scipy's deprecated `scipy.sparse.csr` namespace. Any -W option without a category
# also turns on pyparsing's diagnostics, which warn about matplotlib 3.7's mathtext grammar
# (UserWarning from matplotlib/_mathtext.py) when a figure draws a math label.
_DEPENDENCY_WARNINGS = (
    dict(category=DeprecationWarning, module=r"mxnet(\.|$)"),
    dict(category=UserWarning, module=r"matplotlib\._mathtext$"),
)


@contextlib.contextmanager
def _dependency_warnings_ignored() -> Iterator[None]:
    with warnings.catch_warnings():
        for spec in _DEPENDENCY_WARNINGS:
            warnings.filterwarnings("ignore", **spec)
        yield


class _Stdout:
    """sys.stdout, but a failure to write or flush raises _StdoutFailed, not a bare OSError.

    So that a full disk under `> FILE` is not mistaken for a failure to write the results.
    """

    def __init__(self, stream):
        self._stream = stream

    def write(self, text):
        try:
            return self._stream.write(text)
        except OSError as err:
            raise _StdoutFailed(err.strerror or str(err)) from err

    def flush(self):
        try:
            return self._stream.flush()
        except OSError as err:
            raise _StdoutFailed(err.strerror or str(err)) from err

    def __getattr__(self, name):
        return getattr(self._stream, name)


@contextlib.contextmanager
def _checked_stdout() -> Iterator[None]:
    saved = sys.stdout
    if saved is not None:
        sys.stdout = _Stdout(saved)
    try:
        yield
    finally:
        sys.stdout = saved


def main(argv: Optional[Sequence[str]] = None) -> int:
    from mxwd import interrupt
    from mxwd.results import recording_commits

    # the handlers and the hook stay until the exception and its frames are released
    with interrupt.installed(), _dependency_warnings_ignored(), _checked_stdout(), recording_commits() as written:
        return _run(argv, written)


def _run(argv: Optional[Sequence[str]], written: List) -> int:
    from mxwd import interrupt, limits

    kept = "no partial results were written"
    try:
        args = build_parser().parse_args(argv)
        with limits.budget(None if args.yes else limits.CLI_BUDGET, not args.quiet):
            code = COMMANDS[args.command](args)
        sys.stdout.flush()
        interrupt.check()  # a request that arrived after the last safe point
        return code
    except _StdoutFailed as err:
        where = f"the results were written to {written[-1]} and kept" if written else kept
        _error(f"mxwd: error: cannot write to stdout: {err}; {where}")
        return 1
    except (UsageError, ValueError) as err:
        _error(f"mxwd: error: {one_line(err)}")
        return 2
    except OSError as err:  # e.g. the disk filled up while writing: nothing half-written stays
        _error(f"mxwd: error: cannot write results: {one_line(err)}")
        return 2
    except JobFailed as err:
        _error(f"mxwd: error: the job failed: {err}; every process it started was ended")
        return 1
    except MemoryError:
        _error("mxwd: error: out of memory: reduce n_train, n_test, num_inputs, num_epochs or --seeds")
        return 2
    except KeyboardInterrupt as err:
        signum = getattr(err, "signum", signal.SIGINT)
        by = "" if signum == signal.SIGINT else f" by {signal.Signals(signum).name}"
        where = f"the results were already written to {written[-1]}" if written else kept
        _error(f"mxwd: interrupted{by}; {where}")
        return 128 + signum
    except Exception as err:  # noqa: BLE001  (an internal failure: one line, never a traceback)
        if os.environ.get("MXWD_DEBUG"):
            raise
        where = f"the results were written to {written[-1]}" if written else kept
        _error(f"mxwd: internal error: {one_line(err)}; {where}. Rerun with MXWD_DEBUG=1 for the traceback, "
               "and please report it")
        return 1


def _error(text: str) -> None:
    """Print one line on stderr; if even stderr is gone (a hung-up terminal), say nothing."""
    try:
        print(text, file=sys.stderr, flush=True)
    except (OSError, ValueError):
        pass


def process_settings() -> None:
    """What the commands need from the process, set by the entry point before MXNet loads.

    - MXNET_ENGINE_TYPE=NaiveEngine unless the user chose an engine (an empty value breaks
      `mx.random.seed`, so it counts as unset): measured faster here (benchmarks/bench_fit.py);
      results are bitwise the same under either engine.
    - DMLC_* variables removed: with DMLC_ROLE=server or scheduler, `import mxnet` runs that
      role's loop and never returns, so a stray one in a user's shell would turn a command
      into a parameter server. The processes mxwd.parallel launches (MXWD_DMLC=1) keep them.
    """
    if not os.environ.get("MXNET_ENGINE_TYPE"):
        os.environ["MXNET_ENGINE_TYPE"] = "NaiveEngine"
    if not os.environ.get("MXWD_DMLC"):
        for name in [n for n in os.environ if n.startswith("DMLC_")]:
            del os.environ[name]


def entry() -> None:
    """The console script: `process_settings()`, `main()`, then exit at once.

    After a command has written and closed its files and flushed its output, nothing is
    left for the interpreter's shutdown to do but MXNet's exit hooks, which take about
    0.13 s (measured: `python -c "import mxwd._mx"` exits in 1.39 s, 1.26 s with
    os._exit). `main()` itself returns normally, for callers in the same process.
    """
    process_settings()
    code = main()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # already reported by main(), or nowhere to report it
            pass
    os._exit(code)


COMMANDS: Dict[str, Callable[[argparse.Namespace], int]] = {
    "reproduce": reproduce.run,
    "compare": compare.run,
    "sweep": sweep.run,
    "atlas": atlas.run,
    "distributed": distributed.run,
    "mlp": mlp.run,
    "exercises": exercises.run,
}
