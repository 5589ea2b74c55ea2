"""Pod start latency and ConfigMap-to-file propagation, runc and simulated side by side.

``python bench/bench_pods.py [--pods N] [--updates M]`` (defaults 40 and 100).

For each runtime (runc needs root and runc; otherwise that column says why it is
missing) one in-process ``Cluster`` runs on the memory store with every controller and the
node agent on a private bridge. A claim is bound to a hostPath PersistentVolume once;
then N pods are created one after another, each with an emptyDir, a configMap, a secret
and that claim as volumes (plus the automounted service-account token), and the time from
the create call to the watch event that shows ``phase: Running`` is recorded; each pod is
deleted (not timed) before the next. Propagation: one pod mounts a ConfigMap, the
ConfigMap is patched M times, and each time the clock runs from the patch call until the
file in the pod's volume directory on the node holds the new value (what a container
sees through its bind mount). Percentiles are nearest-rank.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import logging
import os
import platform
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _harness import percentile
from kubeling.agent.runtime import runc_unavailable_reason
from kubeling.cluster import Cluster, ClusterConfig
from kubeling.machinery.errors import AlreadyExists, NotFound
from kubeling.machinery.resources import (
    CONFIGMAPS,
    PERSISTENTVOLUMECLAIMS,
    PERSISTENTVOLUMES,
    PODS,
    SECRETS,
    SERVICEACCOUNTS,
)

NS = "default"


def pod_body(name: str, node: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": NS},
        "spec": {
            "nodeName": node,
            "terminationGracePeriodSeconds": 0,
            "containers": [
                {
                    "name": "app",
                    "image": "busybox:1.36",
                    "command": ["sleep", "3600"],
                    "volumeMounts": [
                        {"name": "scratch", "mountPath": "/scratch"},
                        {"name": "conf", "mountPath": "/etc/conf"},
                        {"name": "creds", "mountPath": "/etc/creds"},
                        {"name": "data", "mountPath": "/data"},
                    ],
                }
            ],
            "volumes": [
                {"name": "scratch", "emptyDir": {}},
                {"name": "conf", "configMap": {"name": "bench-conf"}},
                {"name": "creds", "secret": {"secretName": "bench-creds"}},
                {"name": "data", "persistentVolumeClaim": {"claimName": "bench-data"}},
            ],
        },
    }


async def setup(cluster: Cluster, work: Path) -> str:
    client = cluster.local_client()
    await client.create(
        CONFIGMAPS, {"metadata": {"name": "bench-conf"}, "data": {"v": "0"}}, namespace=NS
    )
    secret = {"metadata": {"name": "bench-creds"}, "data": {"pw": base64.b64encode(b"x").decode()}}
    await client.create(SECRETS, secret, namespace=NS)
    (work / "pv").mkdir()
    pv = {
        "metadata": {"name": "bench-pv"},
        "spec": {
            "capacity": {"storage": "1Gi"},
            "accessModes": ["ReadWriteMany"],
            "storageClassName": "",
            "hostPath": {"path": str(work / "pv"), "type": "Directory"},
        },
    }
    await client.create(PERSISTENTVOLUMES, pv)
    pvc = {
        "metadata": {"name": "bench-data"},
        "spec": {
            "accessModes": ["ReadWriteMany"],
            "storageClassName": "",
            "volumeName": "bench-pv",
            "resources": {"requests": {"storage": "1Gi"}},
        },
    }
    await client.create(PERSISTENTVOLUMECLAIMS, pvc, namespace=NS)
    try:
        await client.create(SERVICEACCOUNTS, {"metadata": {"name": "default"}}, namespace=NS)
    except AlreadyExists:
        pass
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        claim = await client.get(PERSISTENTVOLUMECLAIMS, name="bench-data", namespace=NS)
        if (claim.get("status") or {}).get("phase") == "Bound":
            break
        await asyncio.sleep(0.05)
    else:
        raise RuntimeError("the benchmark's claim never bound")
    nodes = cluster.local_client()
    from kubeling.machinery.resources import NODES

    return str((await nodes.list(NODES))["items"][0]["metadata"]["name"])


async def start_latencies(cluster: Cluster, node: str, n: int) -> list[float]:
    client = cluster.local_client()
    out: list[float] = []
    for i in range(n):
        name = f"bench-{i}"
        listed = await client.list(PODS, namespace=NS)
        rv = listed["metadata"]["resourceVersion"]
        began = time.perf_counter()
        await client.create(PODS, pod_body(name, node), namespace=NS)
        async for event in client.watch(
            PODS, namespace=NS, field_selector=f"metadata.name={name}", resource_version=rv
        ):
            if (event.object.get("status") or {}).get("phase") == "Running":
                out.append(time.perf_counter() - began)
                break
        await client.delete(PODS, name=name, namespace=NS)
        while True:
            try:
                await client.get(PODS, name=name, namespace=NS)
            except NotFound:
                break
            await asyncio.sleep(0.01)
    return out


async def propagation(cluster: Cluster, node: str, m: int) -> list[float]:
    client = cluster.local_client()
    pod = await client.create(PODS, pod_body("bench-prop", node), namespace=NS)
    uid = pod["metadata"]["uid"]

    async def phase() -> str:
        pod = await client.get(PODS, name="bench-prop", namespace=NS)
        return str((pod.get("status") or {}).get("phase"))

    while await phase() != "Running":  # noqa: ASYNC110 - set up, not measured
        await asyncio.sleep(0.01)
    path = cluster.data_dir / "agent" / "pods" / uid / "volumes" / "kubernetes.io~configmap"
    path = path / "conf" / "v"
    out: list[float] = []
    for i in range(1, m + 1):
        value = str(i)
        began = time.perf_counter()
        await client.patch(
            CONFIGMAPS,
            name="bench-conf",
            namespace=NS,
            patch={"data": {"v": value}},
            patch_type="merge",
        )
        while True:
            try:
                if path.read_text() == value:
                    break
            except OSError:
                pass
            # Polling the file is the measurement itself: the agent has no event to await.
            await asyncio.sleep(0.0005)
        out.append(time.perf_counter() - began)
    await client.delete(PODS, name="bench-prop", namespace=NS)
    return out


async def run_one(runtime: str, n: int, m: int, index: int) -> dict[str, list[float]]:
    work = Path(tempfile.mkdtemp(prefix=f"bench-pods-{runtime}-"))
    os.environ["KUBELING_POD_BRIDGE"] = f"klbench{os.getpid() % 10000}{index}"
    os.environ["KUBELING_POD_CIDR"] = f"10.{220 + index}.{os.getpid() % 250}.0/24"
    cluster = Cluster(
        ClusterConfig(data_dir=work, listen="127.0.0.1:0", store="memory", runtime=runtime)
    )
    await cluster.start()
    try:
        node = await setup(cluster, work)
        starts = await start_latencies(cluster, node, n)
        props = await propagation(cluster, node, m)
    finally:
        await cluster.stop()
    return {"start": starts, "propagation": props}


def row(label: str, values: list[float] | None, reason: str = "") -> str:
    if not values:
        return f"| {label} | – | – | – | {reason} |"
    s = sorted(values)
    return (
        f"| {label} | {len(s)} | {percentile(s, 50) * 1000:.0f} | {percentile(s, 99) * 1000:.0f} |"
        f" max {s[-1] * 1000:.0f} ms |"
    )


async def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--pods", type=int, default=40)
    parser.add_argument("--updates", type=int, default=100)
    args = parser.parse_args()
    logging.basicConfig(level=logging.ERROR)
    results: dict[str, dict[str, list[float]] | None] = {}
    reason = runc_unavailable_reason()
    for i, runtime in enumerate(("runc", "simulated")):
        if runtime == "runc" and reason:
            results[runtime] = None
            continue
        results[runtime] = await run_one(runtime, args.pods, args.updates, i)
    print(
        f"# Pods benchmark, {time.strftime('%Y-%m-%d %H:%M')} UTC, {platform.node()}, {os.cpu_count()} CPUs"
    )
    print()
    print("| measurement | n | p50 ms | p99 ms | note |")
    print("|---|---:|---:|---:|---|")
    for runtime in ("runc", "simulated"):
        r = results[runtime]
        print(row(f"start to Running, {runtime}", r["start"] if r else None, reason or ""))
    for runtime in ("runc", "simulated"):
        r = results[runtime]
        print(row(f"ConfigMap to file, {runtime}", r["propagation"] if r else None, reason or ""))
    return 0


if __name__ == "__main__":
    raise SystemExit(asyncio.run(main()))
