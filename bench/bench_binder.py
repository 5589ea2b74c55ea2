"""Binder throughput: claims bound per second with N claims and N volumes, N = 1,000 and 10,000.

Run on demand: ``python bench/bench_binder.py [N ...]``. For each N it builds a registry on
``MemoryBackend``, creates N Available volumes (sizes 1-4Gi, two classes, two access-mode
sets, so the index has real buckets) and N claims that each fit some volume, then starts
the PersistentVolumeBinder with its informers, exactly as ``kubeling up`` runs it (one worker,
LocalClient, every bind = four registry writes), and times from the start until every claim
is Bound. It prints one row per N and the growth ratio (time per claim at the largest N over
time per claim at the smallest: 1.0 is linear, N-fold would be quadratic).

A second table runs the same syncs against ``NullApi``, a dict that only bumps
resourceVersions (no validation, admission, copies or watch fan-out), driving
``sync_claim`` directly: the binder's own cost per claim, which is what its indexes
control; the difference to the first table is the cost of the registry's write path.
"""

from __future__ import annotations

import asyncio
import logging
import sys
import time
from typing import Any

from kubeling.client.events import EventRecorder
from kubeling.client.informer import SharedInformerFactory
from kubeling.client.local import LocalClient
from kubeling.controllers.volume.binder import COMPONENT, PersistentVolumeBinder
from kubeling.machinery.resources import PERSISTENTVOLUMECLAIMS, PERSISTENTVOLUMES
from kubeling.registry.registry import Registry
from kubeling.storage.memory import MemoryBackend

CLASSES = ("", "gold")
MODES = (("ReadWriteOnce",), ("ReadWriteOnce", "ReadWriteMany"))


def volume(i: int) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "PersistentVolume",
        "metadata": {"name": f"pv-{i:05d}"},
        "spec": {
            "capacity": {"storage": f"{1 + i % 4}Gi"},
            "accessModes": list(MODES[i % 2]),
            "storageClassName": CLASSES[(i // 2) % 2],
            "hostPath": {"path": f"/tmp/bench-{i}"},
        },
    }


def claim(i: int) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": {"name": f"claim-{i:05d}", "namespace": "default"},
        "spec": {
            "accessModes": ["ReadWriteOnce"],
            "resources": {"requests": {"storage": f"{1 + i % 4}Gi"}},
            "storageClassName": CLASSES[(i // 2) % 2],
        },
    }


async def run(n: int) -> tuple[float, float]:
    """Seconds to set everything up, and seconds from the binder's start to all Bound."""
    backend = MemoryBackend()
    await backend.start()
    registry = await Registry.open(backend=backend)
    await registry.bootstrap()
    client = LocalClient(registry)
    setup_started = time.perf_counter()
    for i in range(n):
        created = await client.create(PERSISTENTVOLUMES, volume(i))
        created["status"] = {"phase": "Available"}
        await client.update(PERSISTENTVOLUMES, created, subresource="status")
    for i in range(n):
        await client.create(PERSISTENTVOLUMECLAIMS, claim(i))
    setup = time.perf_counter() - setup_started

    informers = SharedInformerFactory(client)
    recorder = EventRecorder(client, component=COMPONENT)
    binder = PersistentVolumeBinder(
        client=client, recorder=recorder, informers=informers, resync_period=0
    )
    started = time.perf_counter()
    informers.start()
    task = asyncio.create_task(binder.run())

    def bound() -> int:
        return sum(1 for c in binder.claims if (c.get("status") or {}).get("phase") == "Bound")

    while bound() < n:
        await asyncio.sleep(0.05)
        if task.done():
            task.result()
            raise RuntimeError("the binder stopped")
    elapsed = time.perf_counter() - started
    await binder.stop()
    await task
    await informers.stop()
    await recorder.close()
    await registry.close()
    await backend.close()
    return setup, elapsed


class NullApi:
    """Just enough of ``Client`` for the binder's writes: stores what it is given."""

    def __init__(self) -> None:
        self.objects: dict[tuple[str, str, str], dict[str, Any]] = {}
        self.rv = 0

    async def update(self, resource: Any, obj: dict[str, Any], **_: Any) -> dict[str, Any]:
        self.rv += 1
        meta = obj["metadata"]
        meta["resourceVersion"] = str(self.rv)
        self.objects[(resource.plural, meta.get("namespace", ""), meta["name"])] = obj
        return obj


async def run_null(n: int) -> float:
    """Seconds for the binder alone to bind ``n`` claims (no registry, no informers)."""
    api = NullApi()
    binder = PersistentVolumeBinder(
        client=api,  # type: ignore[arg-type]
        recorder=EventRecorder(api, component=COMPONENT),  # type: ignore[arg-type]
        resync_period=0,
    )
    for i in range(n):
        pv = volume(i)
        pv["metadata"].update(uid=f"pv-uid-{i}", resourceVersion="1")
        pv["status"] = {"phase": "Available"}
        binder.volumes.store(pv)
        pvc = claim(i)
        pvc["metadata"].update(uid=f"pvc-uid-{i}", resourceVersion="1")
        pvc["status"] = {"phase": "Pending"}
        binder.claims.store(pvc)
    started = time.perf_counter()
    for pvc in list(binder.claims):
        await binder.sync_claim(pvc)
    elapsed = time.perf_counter() - started
    unbound = [c for c in binder.claims if (c.get("status") or {}).get("phase") != "Bound"]
    if unbound:
        raise RuntimeError(f"{len(unbound)} claims left unbound")
    return elapsed


def table(title: str, rows: list[tuple[int, float]]) -> None:
    print(title)
    print(f"{'claims+volumes':>15} {'seconds':>8} {'claims/s':>9} {'ms/claim':>9}")
    for n, elapsed in rows:
        print(f"{n:>15} {elapsed:>8.2f} {n / elapsed:>9.0f} {elapsed / n * 1000:>9.3f}")
    if len(rows) > 1:
        (n0, t0), (n1, t1) = rows[0], rows[-1]
        print(
            f"growth: {n1 // n0}x the claims took {t1 / t0:.1f}x the time "
            f"(per-claim cost ratio {(t1 / n1) / (t0 / n0):.2f}; 1.00 = linear)"
        )
    print()


async def main(sizes: list[int]) -> None:
    logging.basicConfig(level=logging.WARNING)
    rows = []
    setups = []
    for n in sizes:
        setup, elapsed = await run(n)
        setups.append(setup)
        rows.append((n, elapsed))
    table(
        "Binder with informers on the in-memory registry (LocalClient, 4 writes per bind):",
        rows,
    )
    print("(setup, not timed above: " + ", ".join(f"{s:.1f}s" for s in setups) + ")\n")
    table(
        "Binder alone (NullApi, sync_claim driven directly):",
        [(n, await run_null(n)) for n in sizes],
    )


if __name__ == "__main__":
    asyncio.run(main([int(a) for a in sys.argv[1:]] or [1000, 10000]))
