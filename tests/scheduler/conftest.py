"""Fixtures for scheduler tests: a real registry in memory, reached through ``LocalClient``.

``cluster`` bundles the registry, a client, an informer factory and a ``Scheduler`` with
short backoffs; ``await cluster.start()`` runs it until the test ends. Nodes are created
through the API (the node agent registers them in a real cluster). ``wait_until`` polls a
predicate with a deadline. The object builders follow ``tests/controllers/conftest.py``
(copied, not imported, so the two suites can change independently).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable
from dataclasses import dataclass, field
from typing import Any

import pytest

from kubeling.client.events import EventRecorder
from kubeling.client.informer import SharedInformerFactory
from kubeling.client.local import LocalClient
from kubeling.machinery.resources import (
    EVENTS,
    NODES,
    PERSISTENTVOLUMECLAIMS,
    PERSISTENTVOLUMES,
    PODS,
    STORAGECLASSES,
)
from kubeling.machinery.types import Obj
from kubeling.registry.registry import Registry
from kubeling.scheduler import COMPONENT, Scheduler
from kubeling.storage.memory import MemoryBackend
from tests.helpers.waiting import wait_until

# -- builders ---------------------------------------------------------------------------------


def make_node(
    name: str,
    *,
    cpu: str = "4",
    memory: str = "8Gi",
    pods: str = "110",
    ready: str | None = "True",
    unschedulable: bool = False,
    labels: dict[str, str] | None = None,
    taints: list[dict[str, Any]] | None = None,
) -> Obj:
    """A Node as the node agent registers it (hostname label, Ready condition)."""
    spec: dict[str, Any] = {}
    if unschedulable:
        spec["unschedulable"] = True
    if taints:
        spec["taints"] = taints
    status: dict[str, Any] = {"allocatable": {"cpu": cpu, "memory": memory, "pods": pods}}
    status["capacity"] = dict(status["allocatable"])
    if ready is not None:
        status["conditions"] = [{"type": "Ready", "status": ready, "reason": "KubeletReady"}]
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": name,
            "labels": {"kubernetes.io/hostname": name, **(labels or {})},
        },
        "spec": spec,
        "status": status,
    }


def make_pod(
    name: str,
    *claims: str,
    namespace: str = "default",
    cpu: str = "",
    memory: str = "",
    node_selector: dict[str, str] | None = None,
    node_name: str = "",
    tolerations: list[dict[str, Any]] | None = None,
    scheduler_name: str = "",
    gates: list[str] | None = None,
    affinity: dict[str, Any] | None = None,
) -> Obj:
    requests: dict[str, str] = {}
    if cpu:
        requests["cpu"] = cpu
    if memory:
        requests["memory"] = memory
    container: dict[str, Any] = {
        "name": "c",
        "image": "busybox:1.36",
        "volumeMounts": [{"name": f"v{i}", "mountPath": f"/d{i}"} for i in range(len(claims))],
    }
    if requests:
        container["resources"] = {"requests": requests}
    spec: dict[str, Any] = {
        "containers": [container],
        "volumes": [
            {"name": f"v{i}", "persistentVolumeClaim": {"claimName": c}}
            for i, c in enumerate(claims)
        ],
    }
    if node_selector:
        spec["nodeSelector"] = node_selector
    if node_name:
        spec["nodeName"] = node_name
    if tolerations:
        spec["tolerations"] = tolerations
    if scheduler_name:
        spec["schedulerName"] = scheduler_name
    if gates:
        spec["schedulingGates"] = [{"name": g} for g in gates]
    if affinity:
        spec["affinity"] = affinity
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": namespace},
        "spec": spec,
    }


def hostname_affinity(*nodes: str) -> dict[str, Any]:
    return {
        "required": {
            "nodeSelectorTerms": [
                {
                    "matchExpressions": [
                        {"key": "kubernetes.io/hostname", "operator": "In", "values": list(nodes)}
                    ]
                }
            ]
        }
    }


def make_pv(
    name: str,
    size: str = "1Gi",
    *,
    storage_class: str = "",
    modes: tuple[str, ...] = ("ReadWriteOnce",),
    node: str = "",
    claim_ref: dict[str, Any] | None = None,
) -> Obj:
    spec: dict[str, Any] = {
        "capacity": {"storage": size},
        "accessModes": list(modes),
        "persistentVolumeReclaimPolicy": "Retain",
        "storageClassName": storage_class,
        "hostPath": {"path": f"/tmp/kubeling-scheduler-test-{name}"},
    }
    if node:
        spec["nodeAffinity"] = hostname_affinity(node)
    if claim_ref is not None:
        spec["claimRef"] = claim_ref
    return {
        "apiVersion": "v1",
        "kind": "PersistentVolume",
        "metadata": {"name": name},
        "spec": spec,
    }


def make_pvc(
    name: str,
    size: str = "1Gi",
    *,
    namespace: str = "default",
    storage_class: str | None = "",
    finalizers: list[str] | None = None,
) -> Obj:
    spec: dict[str, Any] = {
        "accessModes": ["ReadWriteOnce"],
        "resources": {"requests": {"storage": size}},
    }
    if storage_class is not None:
        spec["storageClassName"] = storage_class
    meta: dict[str, Any] = {"name": name, "namespace": namespace}
    if finalizers:
        meta["finalizers"] = finalizers
    return {"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": meta, "spec": spec}


def make_class(
    name: str, *, provisioner: str = "test.kubeling.io/fake", binding_mode: str = "Immediate"
) -> Obj:
    return {
        "apiVersion": "storage.k8s.io/v1",
        "kind": "StorageClass",
        "metadata": {"name": name},
        "provisioner": provisioner,
        "volumeBindingMode": binding_mode,
        "reclaimPolicy": "Delete",
    }


# -- the cluster --------------------------------------------------------------------------------


@dataclass
class Cluster:
    registry: Registry
    client: LocalClient
    informers: SharedInformerFactory
    recorder: EventRecorder
    scheduler: Scheduler
    _tasks: list[asyncio.Task[Any]] = field(default_factory=list)

    async def start(self) -> None:
        self.informers.start()
        self._tasks.append(asyncio.create_task(self.scheduler.run()))
        await self.informers.wait_for_sync()

    def spawn(self, coro: Awaitable[Any]) -> None:
        """Run a helper (a fake provisioner, say) until the test ends."""
        self._tasks.append(asyncio.ensure_future(coro))

    # -- writes ---------------------------------------------------------------------------------

    async def node(self, manifest: Obj) -> Obj:
        return await self.client.create(NODES, manifest)

    async def patch_node(self, name: str, patch: Obj) -> Obj:
        return await self.client.patch(NODES, name=name, patch=patch, patch_type="merge")

    async def pod(self, manifest: Obj) -> Obj:
        return await self.client.create(PODS, manifest, namespace=manifest["metadata"]["namespace"])

    async def claim(self, manifest: Obj) -> Obj:
        return await self.client.create(
            PERSISTENTVOLUMECLAIMS, manifest, namespace=manifest["metadata"]["namespace"]
        )

    async def volume(self, manifest: Obj, *, phase: str = "Available") -> Obj:
        created = await self.client.create(PERSISTENTVOLUMES, manifest)
        created["status"] = {"phase": phase}
        return await self.client.update(PERSISTENTVOLUMES, created, subresource="status")

    async def storage_class(self, manifest: Obj) -> Obj:
        return await self.client.create(STORAGECLASSES, manifest)

    async def bind_claim(self, claim_name: str, pv_name: str, namespace: str = "default") -> None:
        """What the PV binder does once a volume is chosen: both sides, then both phases."""
        claim = await self.get_claim(claim_name, namespace)
        pv = await self.client.get(PERSISTENTVOLUMES, name=pv_name)
        pv["spec"]["claimRef"] = {
            "kind": "PersistentVolumeClaim",
            "apiVersion": "v1",
            "namespace": namespace,
            "name": claim_name,
            "uid": claim["metadata"]["uid"],
        }
        pv = await self.client.update(PERSISTENTVOLUMES, pv)
        pv["status"] = {"phase": "Bound"}
        await self.client.update(PERSISTENTVOLUMES, pv, subresource="status")
        claim["spec"]["volumeName"] = pv_name
        claim["metadata"].setdefault("annotations", {})["pv.kubernetes.io/bind-completed"] = "yes"
        claim = await self.client.update(PERSISTENTVOLUMECLAIMS, claim)
        claim["status"] = {"phase": "Bound"}
        await self.client.update(PERSISTENTVOLUMECLAIMS, claim, subresource="status")

    # -- reads ----------------------------------------------------------------------------------

    async def get_pod(self, name: str, namespace: str = "default") -> Obj:
        return await self.client.get(PODS, name=name, namespace=namespace)

    async def get_claim(self, name: str, namespace: str = "default") -> Obj:
        return await self.client.get(PERSISTENTVOLUMECLAIMS, name=name, namespace=namespace)

    async def node_of(self, name: str, namespace: str = "default") -> str:
        pod = await self.get_pod(name, namespace)
        return str(pod["spec"].get("nodeName") or "")

    async def wait_scheduled(self, name: str) -> str:
        async def scheduled() -> bool:
            return bool(await self.node_of(name))

        await wait_until(scheduled, what=f"pod {name} to be scheduled")
        return await self.node_of(name)

    async def messages(self, name: str, reason: str, *, kind: str = "Pod") -> list[str]:
        await self.recorder.flush()
        items = (await self.client.list(EVENTS)).get("items") or []
        return [
            e["message"]
            for e in items
            if e.get("reason") == reason
            and (e.get("involvedObject") or {}).get("name") == name
            and (e.get("involvedObject") or {}).get("kind") == kind
        ]

    async def wait_message(self, name: str, reason: str, message: str) -> None:
        async def seen() -> bool:
            return message in await self.messages(name, reason)

        async def describe() -> str:
            return repr(await self.messages(name, reason))

        try:
            await wait_until(seen, what=f"{reason} {message!r} on {name}")
        except pytest.fail.Exception:
            pytest.fail(f"no {reason} {message!r}; saw {await describe()}")

    async def condition(self, name: str, namespace: str = "default") -> Obj | None:
        pod = await self.get_pod(name, namespace)
        for c in (pod.get("status") or {}).get("conditions") or []:
            if c.get("type") == "PodScheduled":
                return c
        return None

    async def close(self) -> None:
        await self.scheduler.stop(grace=2.0)
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self.informers.stop()
        await self.recorder.close()


@pytest.fixture
async def cluster() -> AsyncIterator[Cluster]:
    backend = MemoryBackend()
    await backend.start()
    registry = await Registry.open(backend=backend)
    await registry.bootstrap()
    client = LocalClient(registry)
    informers = SharedInformerFactory(client)
    recorder = EventRecorder(client, component=COMPONENT)
    scheduler = Scheduler(
        client=client,
        informers=informers,
        recorder=recorder,
        initial_backoff=0.01,
        max_backoff=0.05,
    )
    bundle = Cluster(
        registry=registry,
        client=client,
        informers=informers,
        recorder=recorder,
        scheduler=scheduler,
    )
    try:
        yield bundle
    finally:
        await bundle.close()
        await client.close()
        await registry.close()
        await backend.close()
