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
