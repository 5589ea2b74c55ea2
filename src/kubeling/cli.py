"""The ``kubeling`` command line: ``up``, ``kubeconfig``, ``image`` and ``version``.

Only ``argparse`` is imported at start; each command imports what it uses, so ``kubeling
version`` and ``--help`` answer at once and ``kubeling up`` is serving well under a second
after it is started.
"""

from __future__ import annotations

import argparse
import os
import pathlib
import sys

_RUNTIMES = ("auto", "runc", "simulated")


def default_data_dir() -> pathlib.Path:
    """``./.kubeling`` when it exists in the working directory, else
    ``$XDG_DATA_HOME/kubeling`` (``~/.local/share/kubeling``)."""
    local = pathlib.Path(".kubeling")
    if local.is_dir():
        return local.resolve()
    base = os.environ.get("XDG_DATA_HOME") or str(pathlib.Path.home() / ".local" / "share")
    return pathlib.Path(base) / "kubeling"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="kubeling",
        description="A Kubernetes you can pip install, built for stateful workloads.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    data_help = (
        "directory for the store, certificates and kubeconfig (default: ./.kubeling if it "
        "exists, else $XDG_DATA_HOME/kubeling, i.e. ~/.local/share/kubeling)"
    )
    up = sub.add_parser(
        "up",
        help="run a whole cluster in the foreground",
        description="Run the API server, the controllers, the scheduler, the node agent and "
        "(with --dns-listen, and on the pod bridge under runc) the cluster DNS in the foreground. "
        "Prints one line when the cluster is ready; SIGTERM or Ctrl-C stops it cleanly (pods "
        "stopped, mounts undone, exit 0), a second signal exits at once.",
    )
    up.add_argument("--data-dir", type=pathlib.Path, help=data_help)
    up.add_argument(
        "--listen",
        default="127.0.0.1:6443",
        metavar="HOST:PORT",
        help="address of the HTTPS API (default: 127.0.0.1:6443; port 0 picks a free port)",
    )
    up.add_argument(
        "--dns-listen",
        default="",
        metavar="HOST:PORT",
        help="address of the cluster DNS server (cluster.local over UDP and TCP; off by default)",
    )
    up.add_argument(
        "--store",
        default="sqlite",
        metavar="URL",
        help="sqlite (DATA_DIR/state.db, the default), sqlite:///abs/path.db, memory "
        "(nothing kept across restarts), or etcd://HOST:PORT,... (not available yet)",
    )
    up.add_argument(
        "--runtime",
        default="auto",
        choices=_RUNTIMES,
        help="how pods run: auto (runc when root and runc are present, else simulated), runc, "
        "or simulated (pods go through their lifecycle without processes)",
    )
    up.add_argument(
        "--no-default-storage-class",
        dest="default_storage_class",
        action="store_false",
        help="do not create the default `local-path` StorageClass at first start",
    )
    up.add_argument(
        "-v",
        "--verbose",
        action="count",
        default=0,
        help="more logging on stderr: -v what happens, -vv also one line per request",
    )

    kc = sub.add_parser("kubeconfig", help="print the admin kubeconfig of a data directory")
    kc.add_argument("--data-dir", type=pathlib.Path, help=data_help)

    image = sub.add_parser(
        "image",
        help="import or list images in the node's image store (nothing is ever pulled)",
    )
    image_sub = image.add_subparsers(dest="image_command", metavar="IMAGE_COMMAND")
    imp = image_sub.add_parser(
        "import",
        help="import an OCI image layout or `docker save` archive (a .tar file)",
    )
    imp.add_argument("file", type=pathlib.Path, metavar="FILE")
    imp.add_argument("--data-dir", type=pathlib.Path, help=data_help)
    ls = image_sub.add_parser("list", help="list the imported images")
    ls.add_argument("--data-dir", type=pathlib.Path, help=data_help)

    sub.add_parser("version", help="print kubeling's version and the Kubernetes version it serves")
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if args.command == "up":
        return _up(args)
    if args.command == "kubeconfig":
        data_dir = args.data_dir or default_data_dir()
        path = data_dir / "kubeconfig"
        try:
            sys.stdout.write(path.read_text())
        except FileNotFoundError:
            print(f"kubeling: no kubeconfig at {path}; run `kubeling up` first", file=sys.stderr)
            return 1
        return 0
    if args.command == "image":
        return _image(args, parser)
    if args.command == "version":
        from importlib.metadata import version

        print(f"kubeling {version('kubeling')} (Kubernetes v1.32.0 API)")
        return 0
    parser.print_help()
    return 2


def _image(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    # The agent of `kubeling up --data-dir D` keeps its image store under D/agent, so an
    # image imported here is used by the next pod that names it (running or not).
    from kubeling.agent.errors import ImageError
    from kubeling.agent.images import ImageStore

    if args.image_command not in ("import", "list"):
        parser.parse_args(["image", "--help"])
        return 2
    store = ImageStore((args.data_dir or default_data_dir()).resolve() / "agent")
    if args.image_command == "list":
        for name in store.images():
            print(name)
        return 0
    try:
        names = store.import_oci_archive(args.file)
    except (ImageError, OSError) as e:
        print(f"kubeling: cannot import {args.file}: {e}", file=sys.stderr)
        return 1
    for name in names:
        print(f"imported {name}")
    return 0


def _up(args: argparse.Namespace) -> int:
    import asyncio
    import gc
    import logging
    import signal

    level = logging.WARNING
    if args.verbose == 1:
        level = logging.INFO
    elif args.verbose >= 2:
        level = logging.DEBUG
    logging.basicConfig(
        level=level, stream=sys.stderr, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    log = logging.getLogger("kubeling")
    if args.verbose < 2:
        # uvicorn warns about every SPDY upgrade kubectl tries after a refused WebSocket
        # (exec before the node agent); its real failures are logged at ERROR.
        logging.getLogger("uvicorn.error").setLevel(logging.ERROR)

    if args.store.startswith("etcd://"):
        print("kubeling: the etcd store is not available yet; use sqlite", file=sys.stderr)
        return 2

    from kubeling.cluster import Cluster, ClusterConfig, split_host_port
    from kubeling.machinery.errors import KubelingError

    try:
        split_host_port(args.listen)
    except ValueError as e:
        print(f"kubeling: --listen: {e}", file=sys.stderr)
        return 2
    if args.dns_listen:
        try:
            split_host_port(args.dns_listen)
        except ValueError as e:
            print(f"kubeling: --dns-listen: {e}", file=sys.stderr)
            return 2
    data_dir = (args.data_dir or default_data_dir()).resolve()
    config = ClusterConfig(
        data_dir=data_dir,
        listen=args.listen,
        store=args.store,
        dns_listen=args.dns_listen,
        runtime=args.runtime,
        default_storage_class=args.default_storage_class,
    )

    async def run() -> int:
        cluster = Cluster(config)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()

        def on_signal(sig: signal.Signals) -> None:
            if stop.is_set():
                # A second signal while stopping: the user wants out now.
                print(f"kubeling: {sig.name} again; exiting without a clean stop", file=sys.stderr)
                os._exit(130)
            log.info("Received %s; stopping.", sig.name)
            stop.set()

        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, on_signal, sig)
        try:
            await cluster.start()
        except (OSError, ValueError, KubelingError) as e:
            print(f"kubeling: cannot start: {e}", file=sys.stderr)
            return 1
        print(f"kubeling is ready at {cluster.url} (kubeconfig: {cluster.kubeconfig})", flush=True)
        # What is alive now (modules, the upstream schema, start-up state) lives as long as the
        # process: moving it out of the collector's generations spares every later full
        # collection from walking it again. Those pauses made the p99 of writes at 50 clients
        # (bench/README.md, "API server").
        gc.freeze()
        try:
            await stop.wait()
        finally:
            await cluster.stop()
        return 0

    return asyncio.run(run())


if __name__ == "__main__":
    raise SystemExit(main())
