"""The API server alone, for ``bench_api.py --mode api``: kubeling's ``Cluster`` exactly as
``kubeling up`` builds it, but with ``controllers=()`` and ``agent=False``.

``kubeling up`` has no flag to leave the controllers and the node agent out (``ClusterConfig``
has the fields), so this launcher mirrors ``kubeling up``'s flags, ready line and SIGTERM
handling for the benchmark. Nothing else uses it.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import logging
import pathlib
import signal
import sys

from kubeling.cluster import Cluster, ClusterConfig


def _up_freezes() -> bool:
    """Whether this tree's ``kubeling up`` freezes the collector once ready (newer trees do;
    ``--src`` may point at an older one)."""
    import inspect

    from kubeling import cli

    return "gc.freeze()" in inspect.getsource(cli._up)


_UP_FREEZES = _up_freezes()


def main() -> int:
    parser = argparse.ArgumentParser(prog="_apiserver.py")
    parser.add_argument("--data-dir", type=pathlib.Path, required=True)
    parser.add_argument("--listen", default="127.0.0.1:0")
    parser.add_argument("--store", default="sqlite")
    args = parser.parse_args()
    logging.basicConfig(
        level=logging.WARNING,
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    logging.getLogger("uvicorn.error").setLevel(logging.ERROR)
    config = ClusterConfig(
        data_dir=args.data_dir.resolve(),
        listen=args.listen,
        store=args.store,
        controllers=(),
        agent=False,
    )

    async def run() -> int:
        cluster = Cluster(config)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await cluster.start()
        print(f"kubeling is ready at {cluster.url} (kubeconfig: {cluster.kubeconfig})", flush=True)
        if _UP_FREEZES:
            gc.freeze()  # as kubeling up (of the tree under test) does once ready
        try:
            await stop.wait()
        finally:
            await cluster.stop()
        return 0

    return asyncio.run(run())


if __name__ == "__main__":
    raise SystemExit(main())
