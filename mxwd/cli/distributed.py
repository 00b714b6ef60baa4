"""`mxwd distributed`: the chapter data-parallel on MXNet's kvstore, checked against `mxwd reproduce`."""
from __future__ import annotations

import argparse

from mxwd.cli.common import JobFailed, figure_names, say
from mxwd.cli.options import config_from_args


def run(args: argparse.Namespace) -> int:
    import time

    from mxwd.results import save_figure, staged_dir, versions, write_json

    config = config_from_args(args)
    with staged_dir(args.out, args.force) as tmp:
        from mxwd import plot
        from mxwd.parallel import JobError, distributed
        from mxwd.reproduction import reproduce

        say(args, f"mxwd distributed: {args.workers} workers, {args.servers} server(s), {args.kvstore}, "
                   f"update_on_kvstore={args.update_on_kvstore}, seed {config.seed}; writing {args.out}")
        start = time.perf_counter()
        try:
            result = distributed(config, workers=args.workers, servers=args.servers, kvstore=args.kvstore,
                                 update_on_kvstore=args.update_on_kvstore, port=args.port, timeout=args.timeout)
        except JobError as err:
            raise JobFailed(str(err)) from None
        seconds = time.perf_counter() - start
        single = reproduce(config)
        gaps = result.gaps_to(single)
        figures = [save_figure(plot.runs(result.runs), tmp / "runs", formats=("png",))]
        write_json(tmp / "results.json", {"command": "distributed", "config": config.to_dict(), "versions": versions(),
                                          "workers": args.workers, "servers": args.servers, "kvstore": args.kvstore,
                                          "update_on_kvstore": args.update_on_kvstore, "seconds": seconds,
                                          "against_reproduce": gaps, **result.to_dict()})
    print(result.table())
    print(f"against mxwd reproduce (the single-process run, same seed and global batch), {args.kvstore}:")
    for g in gaps:
        print(f"  {g['path']:<8} lambd={g['lambd']:g}: max |dw| = {g['max_dw']:.3g}, |db| = {g['db']:.3g}")
    print(f"{len(config.lambdas) + 1} jobs in {seconds:.1f} s; wrote {args.out}/results.json and {figure_names(figures)}")
    return 0
