"""Cluster DNS: answer latency, and the time from a pod turning Ready to its record being served.

Run on demand: ``python bench/bench_dns.py [QUERIES] [PODS]`` (defaults 2,000 and 100).
In one process it builds a registry on ``MemoryBackend``, runs the EndpointSlice controller
and a ``DnsServer`` on 127.0.0.1 (a free port) over ``LocalClient``, as ``kubeling up`` does,
and a client thread that speaks plain UDP to it (so client work does not run on the
server's event loop).

1. Answer latency: QUERIES sequential queries per kind (ClusterIP A, headless A with 10
   ready endpoints, a per-pod A, SRV over 10 endpoints, NXDOMAIN, REFUSED), p50 and p99 of
   the round trip in microseconds. Repeated questions are served from the server's answer
   memo, so the last column also times building the answer afresh (lookup and encoding,
   in-process, no socket): what the first query after a change costs.
2. Ready to served: PODS pods of a headless Service are created with an IP but not Ready;
   then, one at a time, the pod's Ready condition is written through the status subresource
   (as the node agent does) and the client polls ``<pod>.<svc>.<ns>.svc.cluster.local``
   every 1 ms until it answers. The time runs from just before the status write to the
   first answer: API write, watch event, EndpointSlice controller, slice write, watch event,
   DNS index.
"""

from __future__ import annotations

import asyncio
import logging
import pathlib
import socket
import statistics
import sys
import threading
import time
from typing import Any

from dnslib import DNSRecord

from kubeling.client.informer import SharedInformerFactory
from kubeling.client.local import LocalClient
from kubeling.controllers.endpointslice import build as build_slices
from kubeling.controllers.manager import ControllerContext
from kubeling.dns.server import DnsServer
from kubeling.machinery.resources import PODS, SERVICES
from kubeling.registry.registry import Registry
from kubeling.storage.memory import MemoryBackend

NS = "default"
ZONE = "cluster.local"


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    k = max(0, min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1))))
    return ordered[k]


class UdpClient:
    """A blocking UDP DNS client for a worker thread."""

    def __init__(self, addr: tuple[str, int]) -> None:
        self.addr = addr
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.settimeout(2)
        self.sock.connect(addr)

    def ask(self, name: str, qtype: str = "A") -> bytes:
        """The raw answer: parsing it in dnslib would cost more than the server's work."""
        self.sock.send(DNSRecord.question(name, qtype).pack())
        return self.sock.recv(65535)

    def answers(self, name: str, qtype: str = "A") -> int:
        """ANCOUNT of the answer (header bytes 6-7)."""
        return int.from_bytes(self.ask(name, qtype)[6:8], "big")

    def close(self) -> None:
        self.sock.close()


def pod(name: str, *, service: str, ip: str, hostname: bool = True) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "nodeName": "bench-node",
        "containers": [{"name": "c", "image": "busybox:1.36"}],
    }
    if hostname:
        spec["hostname"] = name
        spec["subdomain"] = service
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": NS, "labels": {"app": service}},
        "spec": spec,
    }


async def set_status(client: LocalClient, name: str, ip: str, ready: bool) -> None:
    current = await client.get(PODS, name=name, namespace=NS)
    current["status"] = {
        "phase": "Running",
        "podIP": ip,
        "podIPs": [{"ip": ip}],
        "conditions": [{"type": "Ready", "status": "True" if ready else "False"}],
    }
    await client.update(PODS, current, subresource="status")


def headless(name: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name, "namespace": NS},
        "spec": {
            "clusterIP": "None",
            "selector": {"app": name},
            "ports": [{"name": "http", "port": 80}],
        },
    }


async def wait_answer(client: UdpClient, name: str, limit: float = 10.0) -> bool:
    def poll() -> bool:
        deadline = time.monotonic() + limit
        while time.monotonic() < deadline:
            if client.answers(name):
                return True
            time.sleep(0.001)  # the polling interval of the measurement itself
        return False

    return await asyncio.to_thread(poll)


async def run(queries: int, pods: int) -> None:
    backend = MemoryBackend()
    await backend.start()
    registry = await Registry.open(backend=backend)
    await registry.bootstrap()
    client = LocalClient(registry)
    informers = SharedInformerFactory(client)
    ctx = ControllerContext(client=client, informers=informers, data_dir=pathlib.Path("."))
    controller = build_slices(ctx)
    informers.start()
    task = asyncio.create_task(controller.run())
    await informers.wait_for_sync()
    server = DnsServer(client, listen=[("127.0.0.1", 0)])
    await server.start()
    udp = UdpClient(server.addresses[0])
    try:
        # --- fixtures for latency -----------------------------------------------------------
        await client.create(
            SERVICES,
            {
                "apiVersion": "v1",
                "kind": "Service",
                "metadata": {"name": "front", "namespace": NS},
                "spec": {"selector": {"app": "front"}, "ports": [{"name": "http", "port": 80}]},
            },
        )
        await client.create(SERVICES, headless("db"))
        for i in range(10):
            name, ip = f"db-{i}", f"10.244.9.{i + 1}"
            await client.create(PODS, pod(name, service="db", ip=ip))
            await set_status(client, name, ip, True)
        await wait_answer(udp, f"db-9.db.{NS}.svc.{ZONE}")
        kinds = [
            ("ClusterIP A", f"front.{NS}.svc.{ZONE}", "A"),
            ("headless A (10)", f"db.{NS}.svc.{ZONE}", "A"),
            ("per-pod A", f"db-3.db.{NS}.svc.{ZONE}", "A"),
            ("SRV (10)", f"_http._tcp.db.{NS}.svc.{ZONE}", "SRV"),
            ("NXDOMAIN", f"nope.{NS}.svc.{ZONE}", "A"),
            ("REFUSED", "example.com", "A"),
        ]
        rows: list[tuple[str, float, float, float]] = []
        for label, name, qtype in kinds:

            def measure(name: str = name, qtype: str = qtype) -> list[float]:
                wire = DNSRecord.question(name, qtype).pack()
                out = []
                for _ in range(queries):
                    t0 = time.perf_counter()
                    udp.sock.send(wire)
                    udp.sock.recv(65535)
                    out.append((time.perf_counter() - t0) * 1e6)
                return out

            samples = await asyncio.to_thread(measure)
            # The same question built afresh, bypassing the answer memo: what the first
            # query after a change costs (lookup plus dnslib encoding), in-process.
            wire = DNSRecord.question(name, qtype).pack()
            fresh = []
            for _ in range(min(queries, 500)):
                t0 = time.perf_counter()
                server._answer(wire, max_size=512)
                fresh.append((time.perf_counter() - t0) * 1e6)
            rows.append(
                (label, percentile(samples, 50), percentile(samples, 99), percentile(fresh, 50))
            )

        # --- ready to served ----------------------------------------------------------------
        await client.create(SERVICES, headless("web"))
        for i in range(pods):
            name, ip = f"web-{i}", f"10.244.{10 + i // 250}.{i % 250 + 1}"
            await client.create(PODS, pod(name, service="web", ip=ip))
            await set_status(client, name, ip, False)
        # Let the controller finish the set-up backlog (every pod not Ready in the slices)
        # so each measurement sees one change, not the queue behind it.
        while True:
            web = server.index.services.get((NS, "web"))
            if web is not None and len(server.index.endpoints(web)) == pods:
                break
            await asyncio.sleep(0.01)
        delays: list[float] = []
        missed = 0
        for i in range(pods):
            name, ip = f"web-{i}", f"10.244.{10 + i // 250}.{i % 250 + 1}"
            t0 = time.perf_counter()
            await set_status(client, name, ip, True)
            if await wait_answer(udp, f"{name}.web.{NS}.svc.{ZONE}"):
                delays.append((time.perf_counter() - t0) * 1e3)
            else:
                missed += 1
    finally:
        udp.close()
        await server.stop()
        await controller.stop()
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await informers.stop()
        await registry.close()
        await backend.close()

    print(f"Answer latency over UDP, {queries} sequential queries each (microseconds)")
    print()
    print("| query | p50 µs | p99 µs | uncached p50 µs |")
    print("|---|---:|---:|---:|")
    for label, p50, p99, uncached in rows:
        print(f"| {label} | {p50:.0f} | {p99:.0f} | {uncached:.0f} |")
    print()
    print(f"Pod Ready → its record served, {pods} pods one at a time (milliseconds)")
    print()
    print("| pods | p50 ms | p99 ms | max ms | never served |")
    print("|---:|---:|---:|---:|---:|")
    print(
        f"| {pods} | {percentile(delays, 50):.1f} | {percentile(delays, 99):.1f} | "
        f"{max(delays) if delays else float('nan'):.1f} | {missed} |"
    )
    if delays:
        print(f"\nmean {statistics.fmean(delays):.1f} ms")


def main() -> None:
    logging.basicConfig(level=logging.WARNING)
    queries = int(sys.argv[1]) if len(sys.argv) > 1 else 2000
    pods = int(sys.argv[2]) if len(sys.argv) > 2 else 100
    assert threading.current_thread() is threading.main_thread()
    asyncio.run(run(queries, pods))


if __name__ == "__main__":
    main()
