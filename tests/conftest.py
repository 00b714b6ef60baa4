import subprocess
import sys

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
