"""The one place mxwd imports MXNet.

Importing it changes nothing in the caller's process: no environment variable, no engine
choice, no warning filter outside its own import. What a command needs from the process
is set by the command line's entry point (`mxwd.cli.process_settings`): MXNet's
synchronous NaiveEngine (this experiment is thousands of tiny operators, where the
threaded engine's scheduling costs more than it saves; results are bitwise the same under
either engine) and no stray DMLC_* variables. A library user keeps MXNet's defaults, or
sets MXNET_ENGINE_TYPE=NaiveEngine before importing for the same speed.

MXNet logs the engine's name to stderr when it starts one by name; that one line is
swallowed here, and MXNet's own DeprecationWarnings at import (numpy aliases,
distutils) are silenced for the import only.
"""
import contextlib
import os
import sys
import warnings


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


# MXNet 1.9.1's import sets KMP_DUPLICATE_LIB_OK=True and KMP_INIT_AT_FORK=FALSE in the
# process's environment (mxnet/base.py), for the OpenMP runtime it loads. The runtime reads
# them while loading, so once the import is done they are put back as they were: importing
# mxwd changes no environment variable (tests/test_signals.py). A process that imports
# mxnet itself, before or after, gets MXNet's values as usual.
_OPENMP_VARIABLES = ("KMP_DUPLICATE_LIB_OK", "KMP_INIT_AT_FORK")
_before = {name: os.environ.get(name) for name in _OPENMP_VARIABLES}

with warnings.catch_warnings(), _quiet_stderr():
    # mxnet 1.9.1 uses numpy aliases (np.bool) and distutils, deprecated since.
    warnings.simplefilter("ignore", DeprecationWarning)
    import mxnet as mx
    from mxnet import autograd, gluon, init, nd
    from mxnet.gluon import nn

    nd.zeros((1,)).wait_to_read()  # starts the engine while its log line is silenced

for _name, _value in _before.items():
    if _value is None:
        os.environ.pop(_name, None)
    else:
        os.environ[_name] = _value

__all__ = ["mx", "nd", "autograd", "gluon", "init", "nn"]
