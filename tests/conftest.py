import os
import subprocess
import sys

# The test process runs MXNet as the command line does (mxwd.cli.process_settings): the
# library itself leaves the engine to the caller.
if not os.environ.get("MXNET_ENGINE_TYPE"):
    os.environ["MXNET_ENGINE_TYPE"] = "NaiveEngine"

import pytest


def run_cli(*args, cwd=None, timeout=300):
    """Run `python -m mxwd ARGS` in a new process; return the CompletedProcess."""
    return subprocess.run(
        [sys.executable, "-m", "mxwd", *map(str, args)],
        cwd=cwd, capture_output=True, text=True, timeout=timeout,
    )


@pytest.fixture
def cli():
    return run_cli


def run_cli_here(*args, cwd=None, timeout=None):
    """`mxwd ARGS` in this process, through `mxwd.cli.main` (what the entry point calls after
    its process settings, which this test process already has): a CompletedProcess-like
    result. It saves the ~3 s of importing MXNet that a new process costs; the tests of the
    entry point itself (signals, -W error, new-process determinism) keep `cli`."""
    import contextlib
    import io
    import types

    from mxwd.cli import main

    out, err = io.StringIO(), io.StringIO()
    here = os.getcwd()
    try:
        if cwd is not None:
            os.chdir(cwd)
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = main([str(a) for a in args])
    finally:
        os.chdir(here)
    return types.SimpleNamespace(returncode=code, stdout=out.getvalue(), stderr=err.getvalue())


@pytest.fixture
def cli_here():
    return run_cli_here
