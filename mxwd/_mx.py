"""The one place mxwd imports MXNet.

Before the first import it chooses MXNet's synchronous `NaiveEngine` (unless the user has
set `MXNET_ENGINE_TYPE` already): this experiment is thousands of tiny operators, where
the threaded engine's scheduling costs more than it saves (compare
`python benchmarks/bench_fit.py` with and without MXNET_ENGINE_TYPE=ThreadedEnginePerDevice). Results are bitwise the same under either engine. An empty
`MXNET_ENGINE_TYPE` breaks `mx.random.seed`, so it is treated as unset. MXNet logs the
engine's name to stderr when it starts it; that one line is swallowed.
"""
import contextlib
import os
import sys
import warnings

if not os.environ.get("MXNET_ENGINE_TYPE"):
    os.environ["MXNET_ENGINE_TYPE"] = "NaiveEngine"

# With DMLC_ROLE set to server or scheduler, `import mxnet` runs that role's loop and never
# returns: a stray DMLC_* variable in a user's shell would turn mxwd into a parameter
# server. Only the processes mxwd.parallel launches (marked MXWD_DMLC=1) keep them.
if not os.environ.get("MXWD_DMLC"):
    for _name in [n for n in os.environ if n.startswith("DMLC_")]:
        del os.environ[_name]


@contextlib.contextmanager
def _quiet_stderr():
    """Silence file descriptor 2 (C++ logging) for the duration; Python errors still show.

    Works on the descriptor, not on sys.stderr: in a Jupyter kernel sys.stderr is a
    Python object while MXNet's C++ log still goes to descriptor 2.
    """
    fd = 2
    try:
        sys.stderr.flush()
        saved = os.dup(fd)
    except OSError:  # no descriptor 2 at all
        yield
        return
    try:
        with open(os.devnull, "w") as devnull:
            os.dup2(devnull.fileno(), fd)
            yield
    finally:
        os.dup2(saved, fd)
        os.close(saved)


with warnings.catch_warnings(), _quiet_stderr():
    # mxnet 1.9.1 uses numpy aliases (np.bool) and distutils, deprecated since.
    warnings.simplefilter("ignore", DeprecationWarning)
    import mxnet as mx
    from mxnet import autograd, gluon, init, nd
    from mxnet.gluon import nn

    nd.zeros((1,)).wait_to_read()  # starts the engine while its log line is silenced

__all__ = ["mx", "nd", "autograd", "gluon", "init", "nn"]
