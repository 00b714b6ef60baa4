"""The chapter's experiment data-parallel on MXNet's parameter-server kvstore (ps-lite): `mxwd.distributed`.

`distributed(config, workers=N, servers=M, kvstore="dist_sync", update_on_kvstore=...)`
launches a scheduler, M servers and N workers as separate processes on 127.0.0.1 (every
address explicit: DMLC_PS_ROOT_URI and DMLC_NODE_HOST are 127.0.0.1), once for the
scratch path (all lambdas) and once per lambd for the Gluon path, and returns the same `Reproduction` as
`mxwd.reproduce`. See `mxwd.parallel.worker` for how a global minibatch is split and
how the decay policy is kept, and `mxwd.parallel.launch` for ports, timeouts and
cleanup.
"""
from mxwd.parallel.launch import JobError, distributed

__all__ = ["distributed", "JobError"]
