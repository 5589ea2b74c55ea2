"""API server benchmark: a real ``kubeling up`` over HTTPS against the raw SQLite floor.

Run on demand, never as a test::

    .venv/bin/python bench/bench_api.py [--quick] [--mode up|api|both] [--tag NAME]

For each mode it starts a server on a fresh temporary data directory with the SQLite store
(WAL, ``synchronous=FULL``: every acknowledged write is durable) and measures, on loopback:

- start-up: spawn → the ready line, and spawn → the first ``GET /readyz`` answering 200
  (median of several starts on a fresh data directory, and of restarts on the same one);
- ConfigMap (~1 KB) create / get / update latency p50 and p99 and throughput at 1, 10 and 50
  concurrent clients, each client one keep-alive TLS connection doing one request at a time;
- list of 5,000 ConfigMaps as JSON and as a Table (and paged by 500 as kubectl does);
- watch delivery latency: a write is sent → its event arrives at a watcher;
- resident memory of the server process (VmRSS) idle and with 10,000 ConfigMaps stored;
- the server's CPU seconds per operation (from /proc), so a reader can tell server cost from
  client cost on this small machine.

Modes: ``up`` is the real ``kubeling up --runtime simulated`` (controllers and the simulated
node agent running, as a user gets it); ``api`` is the same ``Cluster`` with no controllers
and no agent (``bench/_apiserver.py``), the API path alone. In the same run, the floor: raw
SQLite inserts of the same bytes from Python with the same durability, one insert per
transaction and in batches. Results print as tables and go to
``bench/results/api-<date>[-<tag>].json``.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import json
import pathlib
import shutil
import ssl
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import orjson

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))

from _harness import (
    Connection,
    Server,
    bytecode_env,
    free_port,
    load,
    machine,
    poll_readyz,
    sqlite_floor,
    summarize,
    wait_for_low_load,
)

RESULTS = pathlib.Path(__file__).resolve().parent / "results"
TABLE_ACCEPT = "Accept: application/json;as=Table;v=v1;g=meta.k8s.io,application/json"
PAYLOAD_BYTES = 1000

TARGETS = {
    "ready_s": 1.0,
    "create_p50_ms_1": 5.0,
    "idle_rss_mb": 100.0,
    "creates_per_s_50": 1000.0,
    "create_p99_ms_50": 100.0,
}

# Reference points quoted from issue 2 (not measured here).
REFERENCES = {
    "k3d_ready_s": 15,
    "k3s_server_memory_gb": 0.8,
    "k3s_sqlite_mean_request_s_at_200_rps": 1.4,
}


def configmap(namespace: str, name: str, seed: int) -> dict[str, Any]:
    payload = (f"{seed:08x}" * (PAYLOAD_BYTES // 8 + 1))[:PAYLOAD_BYTES]
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": name, "namespace": namespace, "labels": {"bench": "api"}},
        "data": {"payload": payload},
    }


def cm_path(namespace: str, name: str = "") -> str:
    base = f"/api/v1/namespaces/{namespace}/configmaps"
    return f"{base}/{name}" if name else base


class Counters:
    def __init__(self) -> None:
        self.errors: list[str] = []
        self.created = 0

    def check(self, status: int, expected: int, what: str, body: bytes) -> None:
        if status != expected and len(self.errors) < 20:
            self.errors.append(f"{what}: {status} {body[:200]!r}")


async def open_connections(server: Server, n: int) -> list[Connection]:
    conns = [await server.connection().open() for _ in range(n)]
    for c in conns:
        # Warm up: the TLS handshake and the first authenticated request are not measured.
        await c.request("GET", "/api/v1/namespaces/default")
    return conns


async def close_all(conns: list[Connection]) -> None:
    for c in conns:
        await c.close()


async def timed_phase(
    server: Server,
    workers: list[Callable[[list[float]], Awaitable[None]]],
) -> dict[str, Any]:
    """Run the workers together; latency stats, throughput, server and client CPU per op."""
    lat: list[float] = []
    cpu0, client0 = server.cpu_s(), time.process_time()
    began = time.perf_counter()
    await asyncio.gather(*(w(lat) for w in workers))
    wall = time.perf_counter() - began
    stats = summarize(lat, wall)
    n = max(1, len(lat))
    stats["server_cpu_ms_per_op"] = (server.cpu_s() - cpu0) * 1e3 / n
    stats["client_cpu_ms_per_op"] = (time.process_time() - client0) * 1e3 / n
    return stats


async def crud_level(
    server: Server, clients: int, per_client: int, counters: Counters
) -> dict[str, Any]:
    """create, then get, then update ``clients * per_client`` ConfigMaps in ``bench``."""
    conns = await open_connections(server, clients)
    bodies = [
        [
            orjson.dumps(configmap("bench", f"c{clients}-w{w}-{i}", w * 100_000 + i))
            for i in range(per_client)
        ]
        for w in range(clients)
    ]
    created: list[list[dict[str, Any]]] = [[] for _ in range(clients)]

    def creator(w: int) -> Callable[[list[float]], Awaitable[None]]:
        async def run(lat: list[float]) -> None:
            conn = conns[w]
            for body in bodies[w]:
                t = time.perf_counter()
                status, data = await conn.request("POST", cm_path("bench"), body)
                lat.append(time.perf_counter() - t)
                counters.check(status, 201, "create", data)
                if status == 201:
                    created[w].append(orjson.loads(data))
            counters.created += len(created[w])

        return run

    def getter(w: int) -> Callable[[list[float]], Awaitable[None]]:
        paths = [cm_path("bench", o["metadata"]["name"]) for o in created[w]]

        async def run(lat: list[float]) -> None:
            conn = conns[w]
            for path in paths:
                t = time.perf_counter()
                status, data = await conn.request("GET", path)
                lat.append(time.perf_counter() - t)
                counters.check(status, 200, "get", data)

        return run

    def updater(w: int) -> Callable[[list[float]], Awaitable[None]]:
        prepared = []
        for o in created[w]:
            o["data"]["payload"] = o["data"]["payload"][::-1]
            prepared.append((cm_path("bench", o["metadata"]["name"]), orjson.dumps(o)))

        async def run(lat: list[float]) -> None:
            conn = conns[w]
            for path, body in prepared:
                t = time.perf_counter()
                status, data = await conn.request("PUT", path, body)
                lat.append(time.perf_counter() - t)
                counters.check(status, 200, "update", data)

        return run

    try:
        out = {"create": await timed_phase(server, [creator(w) for w in range(clients)])}
        out["get"] = await timed_phase(server, [getter(w) for w in range(clients)])
        out["update"] = await timed_phase(server, [updater(w) for w in range(clients)])
    finally:
        await close_all(conns)
    return out


async def bulk_create(
    server: Server, namespace: str, count: int, counters: Counters, *, start: int = 0
) -> float:
    """Create ConfigMaps ``start`` to ``start + count - 1`` with 50 clients; returns the wall
    seconds."""
    clients = min(50, max(1, count))
    conns = await open_connections(server, clients)
    began = time.perf_counter()

    async def run(w: int) -> None:
        for i in range(start + w, start + count, clients):
            body = orjson.dumps(configmap(namespace, f"{namespace}-{i}", i))
            status, data = await conns[w].request("POST", cm_path(namespace), body)
            counters.check(status, 201, f"create in {namespace}", data)
            if status == 201:
                counters.created += 1

    try:
        await asyncio.gather(*(run(w) for w in range(clients)))
    finally:
        await close_all(conns)
    return time.perf_counter() - began


async def create_namespace(server: Server, name: str) -> None:
    conn = await server.connection().open()
    try:
        body = orjson.dumps({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})
        status, data = await conn.request("POST", "/api/v1/namespaces", body)
        if status != 201:
            raise RuntimeError(f"cannot create namespace {name}: {status} {data[:200]!r}")
    finally:
        await conn.close()


async def list_phase(server: Server, repeats: int) -> dict[str, Any]:
    conn = await server.connection().open()
    out: dict[str, Any] = {}
    try:
        variants = {
            "json": (cm_path("bench-list"), ("Accept: application/json",)),
            "table": (cm_path("bench-list"), (TABLE_ACCEPT,)),
        }
        for label, (path, headers) in variants.items():
            times, size, items = [], 0, 0
            for _ in range(repeats):
                t = time.perf_counter()
                status, data = await conn.request("GET", path, headers=headers)
                times.append(time.perf_counter() - t)
                if status != 200:
                    raise RuntimeError(f"list {label}: {status} {data[:200]!r}")
                size = len(data)
            doc = orjson.loads(data)
            items = len(doc.get("items") or doc.get("rows") or [])
            out[label] = {
                "median_ms": statistics.median(times) * 1e3,
                "min_ms": min(times) * 1e3,
                "bytes": size,
                "items": items,
            }
        # kubectl get pages by 500 (``--chunk-size``): the whole walk, Table form.
        times = []
        pages = 0
        for _ in range(repeats):
            t = time.perf_counter()
            token, pages = "", 0
            while True:
                path = (
                    cm_path("bench-list") + "?limit=500" + (f"&continue={token}" if token else "")
                )
                status, data = await conn.request("GET", path, headers=(TABLE_ACCEPT,))
                if status != 200:
                    raise RuntimeError(f"paged list: {status} {data[:200]!r}")
                pages += 1
                token = orjson.loads(data).get("metadata", {}).get("continue", "")
                if not token:
                    break
            times.append(time.perf_counter() - t)
        out["table_paged_500"] = {
            "median_ms": statistics.median(times) * 1e3,
            "min_ms": min(times) * 1e3,
            "pages": pages,
        }
    finally:
        await conn.close()
    return out


async def watch_phase(server: Server, events: int, counters: Counters) -> dict[str, Any]:
    """Sequential writes; each timed from the moment its POST is sent to its watch event."""
    watcher = await server.connection().open()
    writer = await server.connection().open()
    arrived: dict[str, float] = {}
    waiting: dict[str, asyncio.Future[float]] = {}
    loop = asyncio.get_running_loop()

    async def read_events() -> None:
        while True:
            line = await watcher.next_line()
            now = time.perf_counter()
            name = orjson.loads(line)["object"]["metadata"]["name"]
            arrived[name] = now
            future = waiting.pop(name, None)
            if future is not None and not future.done():
                future.set_result(now)

    try:
        await watcher.stream(cm_path("bench-watch") + "?watch=1&allowWatchBookmarks=false")
        reader = asyncio.create_task(read_events())
        to_event: list[float] = []
        ack_to_event: list[float] = []
        try:
            for i in range(events + 1):
                name = f"w-{i}"
                future: asyncio.Future[float] = loop.create_future()
                waiting[name] = future
                body = orjson.dumps(configmap("bench-watch", name, i))
                sent = time.perf_counter()
                status, data = await writer.request("POST", cm_path("bench-watch"), body)
                acked = time.perf_counter()
                counters.check(status, 201, "watch create", data)
                got = await asyncio.wait_for(future, timeout=30)
                if i == 0:
                    continue  # the first write proves the watch is established
                counters.created += 1
                to_event.append(got - sent)
                ack_to_event.append(got - acked)
        finally:
            reader.cancel()
        stats = summarize(to_event, sum(to_event))
        ack = sorted(ack_to_event)
        stats["event_minus_ack_p50_ms"] = ack[len(ack) // 2] * 1e3
        del stats["ops_per_s"], stats["wall_s"]
        return stats
    finally:
        await watcher.close()
        await writer.close()


async def httpx_check(
    server: Server, clients: int, per_client: int, counters: Counters
) -> dict[str, Any]:
    """The same durable creates through httpx, to show what the client costs."""
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    headers = {"Authorization": f"Bearer {server.token}", "Content-Type": "application/json"}
    async with httpx.AsyncClient(
        base_url=server.url, verify=server.ssl_context(), limits=limits, headers=headers
    ) as client:
        await asyncio.gather(*(client.get("/api/v1/namespaces/default") for _ in range(clients)))

        def creator(w: int) -> Callable[[list[float]], Awaitable[None]]:
            bodies = [
                orjson.dumps(configmap("bench", f"hx{clients}-w{w}-{i}", i))
                for i in range(per_client)
            ]

            async def run(lat: list[float]) -> None:
                for body in bodies:
                    t = time.perf_counter()
                    r = await client.post(cm_path("bench"), content=body)
                    lat.append(time.perf_counter() - t)
                    counters.check(r.status_code, 201, "httpx create", r.content)
                    counters.created += r.status_code == 201

            return run

        return await timed_phase(server, [creator(w) for w in range(clients)])


async def startup_runs(mode: str, runs: int, env: dict[str, str]) -> dict[str, Any]:
    """Fresh data directory (certificates generated) and restart (reused), ``runs`` each."""
    fresh_line, fresh_ready, again_line, again_ready = [], [], [], []
    for _ in range(runs):
        server = Server(mode=mode, keep_data_dir=True, env=env)
        try:
            for line_list, ready_list in ((fresh_line, fresh_ready), (again_line, again_ready)):
                # A port chosen up front, so /readyz can be polled from the moment of spawn.
                port = free_port()
                server.listen = f"127.0.0.1:{port}"
                began = server.spawn()
                assert server.data_dir is not None
                ca = server.data_dir / "pki" / "ca.crt"
                ready_task = asyncio.create_task(_poll_after_ca(ca, port))
                await asyncio.to_thread(server.wait_ready_line, began)
                ready_at = await ready_task
                line_list.append(server.ready_line_s)
                ready_list.append(ready_at - began)
                server.stop()
        finally:
            server.keep_data_dir = False
            server.stop()
    return {
        "fresh_ready_line_s": statistics.median(fresh_line),
        "fresh_readyz_s": statistics.median(fresh_ready),
        "restart_ready_line_s": statistics.median(again_line),
        "restart_readyz_s": statistics.median(again_ready),
        "fresh_readyz_all_s": fresh_ready,
        "restart_readyz_all_s": again_ready,
        "runs": runs,
    }


def _wait_for_ca(ca: pathlib.Path, deadline: float) -> ssl.SSLContext:
    """The CA file appears during a first start, maybe half-written; until it loads, nothing
    can verify the server."""
    while True:
        try:
            return ssl.create_default_context(cafile=str(ca))
        except (ssl.SSLError, OSError):
            if time.monotonic() > deadline:
                raise
            time.sleep(0.005)


async def _poll_after_ca(ca: pathlib.Path, port: int) -> float:
    deadline = time.monotonic() + 60
    ctx = await asyncio.to_thread(_wait_for_ca, ca, deadline)
    return await poll_readyz("127.0.0.1", port, ctx, deadline)


async def run_mode(mode: str, args: argparse.Namespace) -> dict[str, Any]:
    quick = args.quick
    result: dict[str, Any] = {"mode": mode, "load_at_start": [round(x, 2) for x in load()]}
    cached = bytecode_env(args.pyc_dir, src=args.src)
    inherited = bytecode_env(None, src=args.src)
    runs = 3 if quick else 5
    print(f"[{mode}] start-up runs...", flush=True)
    # One start fills the bytecode cache; the measured starts then read it, as an installed
    # kubeling reads the .pyc files pip compiled.
    await startup_runs(mode, 1, cached)
    result["startup"] = await startup_runs(mode, runs, cached)
    # And as this process's environment runs it (PYTHONDONTWRITEBYTECODE=1 in the shared
    # checkout: every start compiles kubeling's sources).
    result["startup_inherited_env"] = await startup_runs(mode, runs, inherited)
    result["startup_inherited_env"]["PYTHONDONTWRITEBYTECODE"] = inherited.get(
        "PYTHONDONTWRITEBYTECODE", ""
    )

    server = Server(mode=mode, env=cached)
    counters = Counters()
    try:
        began = server.spawn()
        await asyncio.to_thread(server.wait_ready_line, began)
        result["ready_line"] = server.ready_line
        await asyncio.sleep(2.0)  # let controllers finish their first sync before "idle"
        result["idle_rss_mb"] = server.rss_mb()
        for ns in ("bench", "bench-list", "bench-watch", "bench-fill"):
            await create_namespace(server, ns)

        levels = {1: 150, 10: 50, 50: 20} if quick else {1: 500, 10: 200, 50: 50}
        result["crud"] = {}
        for clients, per_client in levels.items():
            print(f"[{mode}] {clients} client(s) x {per_client} create/get/update...", flush=True)
            result["crud"][str(clients)] = await crud_level(server, clients, per_client, counters)

        print(f"[{mode}] httpx comparison...", flush=True)
        result["httpx"] = {
            "1": await httpx_check(server, 1, 100, counters),
            "50": await httpx_check(server, 50, 20, counters),
        }

        print(f"[{mode}] watch delivery...", flush=True)
        result["watch"] = await watch_phase(server, 100 if quick else 300, counters)

        # The 5,000 listed objects, created in two parts so that RSS is read with exactly
        # 10,000 benchmark ConfigMaps stored.
        print(f"[{mode}] 5,000 objects for list (RSS at 10,000 stored)...", flush=True)
        first = min(5000, max(0, 10_000 - counters.created))
        fill_s = await bulk_create(server, "bench-list", first, counters) if first else 0.0
        if counters.created < 10_000:
            await bulk_create(server, "bench-fill", 10_000 - counters.created, counters)
        await asyncio.sleep(2.0)  # let watchers and informers drain before reading RSS
        result["stored_configmaps"] = counters.created
        result["rss_10k_mb"] = server.rss_mb()
        if first < 5000:
            fill_s += await bulk_create(server, "bench-list", 5000 - first, counters, start=first)
        result["list_fill_creates_per_s"] = 5000 / fill_s
        result["list"] = await list_phase(server, 3 if quick else 5)
        result["server_cpu_total_s"] = server.cpu_s()
        result["load_at_end"] = [round(x, 2) for x in load()]
        result["errors"] = counters.errors
    finally:
        result["exit_code"] = server.stop()
    return result


def floor_phase(quick: bool) -> dict[str, Any]:
    value = orjson.dumps(
        {
            **configmap("bench", "floor-0000000", 0),
            "metadata": {
                "name": "floor-0000000",
                "namespace": "bench",
                "labels": {"bench": "api"},
                "uid": "6f1c2a53-0e0f-4a57-9b9f-2d2b1f6f3b1a",
                "resourceVersion": "",
                "creationTimestamp": "2026-12-04T00:00:00Z",
                "managedFields": [
                    {
                        "manager": "python",
                        "operation": "Update",
                        "apiVersion": "v1",
                        "time": "2026-12-04T00:00:00Z",
                        "fieldsType": "FieldsV1",
                        "fieldsV1": {"f:data": {".": {}, "f:payload": {}}},
                    }
                ],
            },
        }
    )
    return sqlite_floor(
        value,
        single=200 if quick else 500,
        batched=2000 if quick else 5000,
        batch=50,
        directory=pathlib.Path(tempfile.gettempdir()),
    )


# --- report -------------------------------------------------------------------------------


def fmt(value: float, digits: int = 1) -> str:
    if value != value:  # NaN
        return "-"
    if value >= 1000:
        return f"{value:,.0f}"
    return f"{value:.{digits}f}"


def print_report(report: dict[str, Any]) -> None:
    modes = report["modes"]
    floor = report["sqlite_floor"]
    names = [m["mode"] for m in modes]
    width = 44

    def row(label: str, values: list[str], extra: str = "") -> None:
        cells = "".join(f"{v:>14}" for v in values)
        print(f"{label:<{width}}{cells}  {extra}")

    print()
    print(
        f"kubeling API benchmark {report['date']}  load before {report['load_before']}, "
        f"after {report['load_after']}"
    )
    m = report["machine"]
    print(f"{m['nproc']} x {m['cpu']}, {m['memory_mb']} MB, /tmp on {m['tmp_disk']}")
    print()
    row("", names)
    row(
        "ready line, fresh data dir (s)",
        [fmt(x["startup"]["fresh_ready_line_s"], 3) for x in modes],
    )
    row(
        "/readyz 200, fresh data dir (s)",
        [fmt(x["startup"]["fresh_readyz_s"], 3) for x in modes],
        "target < 1 s",
    )
    row("ready line, restart (s)", [fmt(x["startup"]["restart_ready_line_s"], 3) for x in modes])
    row("/readyz 200, restart (s)", [fmt(x["startup"]["restart_readyz_s"], 3) for x in modes])
    row(
        "/readyz 200, fresh / restart, no .pyc (s)",
        [
            f"{fmt(x['startup_inherited_env']['fresh_readyz_s'], 2)}"
            f"/{fmt(x['startup_inherited_env']['restart_readyz_s'], 2)}"
            for x in modes
        ],
        "(inherited env: PYTHONDONTWRITEBYTECODE="
        f"{modes[0]['startup_inherited_env']['PYTHONDONTWRITEBYTECODE'] or 'unset'})",
    )
    for clients in ("1", "10", "50"):
        for verb in ("create", "get", "update"):
            stats = [x["crud"][clients][verb] for x in modes]
            row(
                f"{verb} x{clients} p50 / p99 (ms)",
                [f"{fmt(s['p50_ms'], 2)}/{fmt(s['p99_ms'], 1)}" for s in stats],
            )
            row(
                f"{verb} x{clients} ops/s (server CPU ms/op)",
                [f"{fmt(s['ops_per_s'], 0)} ({fmt(s['server_cpu_ms_per_op'], 2)})" for s in stats],
            )
    for clients in ("1", "50"):
        stats = [x["httpx"][clients] for x in modes]
        row(
            f"httpx create x{clients} p50 (ms), ops/s",
            [f"{fmt(s['p50_ms'], 2)}, {fmt(s['ops_per_s'], 0)}" for s in stats],
        )
        raw = [x["crud"][clients]["create"] for x in modes]
        row(
            f"client CPU ms/op x{clients}: raw / httpx",
            [
                f"{fmt(r['client_cpu_ms_per_op'], 2)}/{fmt(s['client_cpu_ms_per_op'], 2)}"
                for r, s in zip(raw, stats, strict=True)
            ],
        )
    for label, key in (("list 5,000 JSON", "json"), ("list 5,000 Table", "table")):
        row(
            f"{label} median (ms), MB",
            [
                f"{fmt(x['list'][key]['median_ms'], 0)}, {x['list'][key]['bytes'] / 1e6:.1f}"
                for x in modes
            ],
        )
    row(
        "list 5,000 Table by 500s (ms)",
        [fmt(x["list"]["table_paged_500"]["median_ms"], 0) for x in modes],
    )
    row(
        "watch write → event p50 / p99 (ms)",
        [f"{fmt(x['watch']['p50_ms'], 2)}/{fmt(x['watch']['p99_ms'], 1)}" for x in modes],
    )
    row(
        "create x50: 1,000 / server CPU ms per op",
        [fmt(1000 / x["crud"]["50"]["create"]["server_cpu_ms_per_op"], 0) for x in modes],
        "(creates/s one free core could serve)",
    )
    row(
        "1-min load at mode start / end",
        [f"{x['load_at_start'][0]:.1f} / {x['load_at_end'][0]:.1f}" for x in modes],
    )
    row("RSS idle (MB)", [fmt(x["idle_rss_mb"]) for x in modes], "target < 100 MB")
    row(
        "RSS with 10,000 ConfigMaps (MB)",
        [fmt(x["rss_10k_mb"]) for x in modes],
        f"({', '.join(str(x['stored_configmaps']) for x in modes)} stored)",
    )
    print()
    s, b = floor["single"], floor["batched"]
    print(
        f"raw SQLite floor ({floor['value_bytes']} B rows, WAL, synchronous=FULL): one insert "
        f"per transaction p50 {fmt(s['p50_ms'], 2)} ms p99 {fmt(s['p99_ms'], 2)} ms, "
        f"{fmt(s['ops_per_s'], 0)}/s; batches of {b['batch']}: {fmt(b['rows_per_s'], 0)} rows/s "
        f"(commit p50 {fmt(b['p50_ms'], 2)} ms)"
    )
    print()
    row("vs floor and targets", names)
    row(
        "create x1 p50 / raw insert p50",
        [fmt(x["crud"]["1"]["create"]["p50_ms"] / s["p50_ms"], 2) for x in modes],
    )
    row(
        "create x50 ops/s / raw batched rows/s",
        [fmt(x["crud"]["50"]["create"]["ops_per_s"] / b["rows_per_s"], 3) for x in modes],
    )
    for t in report["targets"]:
        row(
            f"{t['what']} ({t['target']})",
            [f"{'ok' if r['met'] else 'MISS'} {fmt(r['ratio'], 2)}" for r in t["by_mode"]],
            "ratio = measured / target",
        )
    errors = [e for x in modes for e in x["errors"]]
    if errors:
        print(f"\n{len(errors)} unexpected answers, first: {errors[:3]}")
    print(f"exit codes after SIGTERM: {[x['exit_code'] for x in modes]}")


def targets(modes: list[dict[str, Any]]) -> list[dict[str, Any]]:
    def entry(what: str, target: str, values: list[float], limit: float, below: bool) -> Any:
        return {
            "what": what,
            "target": target,
            "by_mode": [
                {"value": v, "ratio": v / limit, "met": v < limit if below else v >= limit}
                for v in values
            ],
        }

    return [
        entry(
            "ready, fresh",
            "< 1 s",
            [x["startup"]["fresh_readyz_s"] for x in modes],
            TARGETS["ready_s"],
            True,
        ),
        entry(
            "ready, restart",
            "< 1 s",
            [x["startup"]["restart_readyz_s"] for x in modes],
            TARGETS["ready_s"],
            True,
        ),
        entry(
            "create x1 p50",
            "< 5 ms",
            [x["crud"]["1"]["create"]["p50_ms"] for x in modes],
            TARGETS["create_p50_ms_1"],
            True,
        ),
        entry(
            "idle RSS", "< 100 MB", [x["idle_rss_mb"] for x in modes], TARGETS["idle_rss_mb"], True
        ),
        entry(
            "creates/s x50",
            ">= 1,000/s",
            [x["crud"]["50"]["create"]["ops_per_s"] for x in modes],
            TARGETS["creates_per_s_50"],
            False,
        ),
        entry(
            "create x50 p99",
            "< 100 ms",
            [x["crud"]["50"]["create"]["p99_ms"] for x in modes],
            TARGETS["create_p99_ms_50"],
            True,
        ),
    ]


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer samples (about a minute)")
    parser.add_argument("--mode", choices=("up", "api", "both"), default="both")
    parser.add_argument("--tag", default="", help="suffix for the results file name")
    parser.add_argument(
        "--wait-load",
        type=float,
        default=0.0,
        metavar="LOAD",
        help="first wait (up to 10 minutes) until the 1-minute load average is below LOAD",
    )
    parser.add_argument(
        "--src",
        default="",
        metavar="DIR",
        help="run the kubeling package found in DIR (e.g. a `git archive` of another commit's "
        "src/) instead of the installed one",
    )
    args = parser.parse_args()
    if args.wait_load:
        seen, waited = wait_for_low_load(args.wait_load, 600)
        print(f"load {seen:.2f} after waiting {waited:.0f} s", flush=True)
    now = datetime.datetime.now(datetime.UTC)
    report: dict[str, Any] = {
        "date": now.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "machine": machine(),
        "load_before": [round(x, 2) for x in load()],
        "quick": args.quick,
        "src": args.src or "installed (editable checkout)",
        "references_from_issue_2": REFERENCES,
    }
    print("raw SQLite floor...", flush=True)
    report["sqlite_floor"] = floor_phase(args.quick)
    modes = ("up", "api") if args.mode == "both" else (args.mode,)
    args.pyc_dir = pathlib.Path(tempfile.mkdtemp(prefix="kubeling-bench-pyc-"))
    try:
        report["modes"] = [await run_mode(mode, args) for mode in modes]
    finally:
        shutil.rmtree(args.pyc_dir, ignore_errors=True)
    report["load_after"] = [round(x, 2) for x in load()]
    report["targets"] = targets(report["modes"])
    print_report(report)
    RESULTS.mkdir(exist_ok=True)
    suffix = f"-{args.tag}" if args.tag else ""
    out = RESULTS / f"api-{now.strftime('%Y-%m-%d')}{suffix}.json"
    out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"\nwrote {out.relative_to(RESULTS.parent.parent)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(asyncio.run(main()))
