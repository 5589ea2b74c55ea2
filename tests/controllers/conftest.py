"""Shared fixtures for controller tests: a real registry in memory, reached through the client.

``api`` is an ``Api`` bundle: a ``Registry`` on ``MemoryBackend`` (with the system
namespaces), a ``LocalClient`` on it, a ``SharedInformerFactory`` and a
``ControllerContext`` (data dir under ``tmp_path``). Informers are not started by the
fixture; a test that runs controllers starts them (``api.start(controller, ...)``) and the
fixture stops everything it started. ``wait_until`` polls a predicate (sync or async) until
it holds, without fixed sleeps.
"""

from __future__ import annotations

import asyncio
import pathlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from kubeling.client.controller import Controller
from kubeling.client.events import EventRecorder
from kubeling.client.informer import SharedInformerFactory
from kubeling.client.local import LocalClient
from kubeling.controllers.manager import ControllerContext
from kubeling.machinery.resources import EVENTS
from kubeling.machinery.types import Obj
from kubeling.registry.registry import Registry
from kubeling.storage.memory import MemoryBackend
from tests.helpers.waiting import wait_until as wait_until  # re-exported for the suites here


@dataclass
class Api:
    registry: Registry
    client: LocalClient
    informers: SharedInformerFactory
    ctx: ControllerContext
    recorders: list[EventRecorder] = field(default_factory=list)
    _tasks: list[asyncio.Task[None]] = field(default_factory=list)
    _controllers: list[Controller] = field(default_factory=list)

    def recorder(self, component: str) -> EventRecorder:
        recorder = EventRecorder(self.client, component=component)
        self.recorders.append(recorder)
        return recorder

    async def start(self, *controllers: Controller) -> None:
        """Start the informers and run ``controllers`` until the test ends."""
        self.informers.start()
        for controller in controllers:
            self._controllers.append(controller)
            self._tasks.append(asyncio.create_task(controller.run()))
        await self.informers.wait_for_sync()

    async def events(self, obj: Obj | None = None, *, reason: str = "") -> list[Obj]:
        """Events written so far (after flushing every recorder made here), optionally
        only about ``obj`` and with ``reason``."""
        for recorder in self.recorders:
            await recorder.flush()
        items = (await self.client.list(EVENTS)).get("items") or []
        out = []
        for event in items:
            involved = event.get("involvedObject") or {}
            if obj is not None:
                meta = obj.get("metadata") or {}
                if involved.get("name") != meta.get("name"):
                    continue
                if involved.get("kind") != obj.get("kind"):
                    continue
            if reason and event.get("reason") != reason:
                continue
            out.append(event)
        return out

    async def close(self) -> None:
        for controller in reversed(self._controllers):
            await controller.stop(grace=2.0)
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self.informers.stop()
        for recorder in self.recorders:
            await recorder.close()


@pytest.fixture
async def api(tmp_path: pathlib.Path) -> AsyncIterator[Api]:
    backend = MemoryBackend()
    await backend.start()
    registry = await Registry.open(backend=backend)
    await registry.bootstrap()
    client = LocalClient(registry)
    informers = SharedInformerFactory(client)
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    ctx = ControllerContext(client=client, informers=informers, data_dir=data_dir)
    bundle = Api(registry=registry, client=client, informers=informers, ctx=ctx)
    try:
        yield bundle
    finally:
        await bundle.close()
        await client.close()
        await registry.close()
        await backend.close()


# -- storage objects ----------------------------------------------------------------------------


def make_pv(
    name: str,
    size: str = "1Gi",
    *,
    modes: tuple[str, ...] = ("ReadWriteOnce",),
    storage_class: str | None = "",
    policy: str = "Retain",
    claim_ref: dict[str, Any] | None = None,
    annotations: dict[str, str] | None = None,
    labels: dict[str, str] | None = None,
    volume_mode: str | None = None,
    host_path: str = "",
    finalizers: list[str] | None = None,
) -> Obj:
    """A PersistentVolume manifest (hostPath source under ``host_path`` or ``/tmp/<name>``)."""
    spec: dict[str, Any] = {
        "capacity": {"storage": size},
        "accessModes": list(modes),
        "persistentVolumeReclaimPolicy": policy,
        "hostPath": {"path": host_path or f"/tmp/kubeling-test-{name}"},
    }
    if storage_class is not None:
        spec["storageClassName"] = storage_class
    if claim_ref is not None:
        spec["claimRef"] = claim_ref
    if volume_mode is not None:
        spec["volumeMode"] = volume_mode
    meta: dict[str, Any] = {"name": name}
    if annotations:
        meta["annotations"] = dict(annotations)
    if labels:
        meta["labels"] = dict(labels)
    if finalizers:
        meta["finalizers"] = list(finalizers)
    return {"apiVersion": "v1", "kind": "PersistentVolume", "metadata": meta, "spec": spec}


def make_pvc(
    name: str,
    size: str = "1Gi",
    *,
    namespace: str = "default",
    modes: tuple[str, ...] = ("ReadWriteOnce",),
    storage_class: str | None = "",
    volume_name: str = "",
    annotations: dict[str, str] | None = None,
    selector: dict[str, Any] | None = None,
    volume_mode: str | None = None,
) -> Obj:
    """A PersistentVolumeClaim manifest; ``storage_class=None`` leaves the class unset."""
    spec: dict[str, Any] = {
        "accessModes": list(modes),
        "resources": {"requests": {"storage": size}},
    }
    if storage_class is not None:
        spec["storageClassName"] = storage_class
    if volume_name:
        spec["volumeName"] = volume_name
    if selector is not None:
        spec["selector"] = selector
    if volume_mode is not None:
        spec["volumeMode"] = volume_mode
    meta: dict[str, Any] = {"name": name, "namespace": namespace}
    if annotations:
        meta["annotations"] = dict(annotations)
    return {"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": meta, "spec": spec}


def make_class(
    name: str,
    *,
    provisioner: str = "kubeling.io/local-path",
    binding_mode: str = "Immediate",
    default: bool = False,
    reclaim_policy: str = "Delete",
    allow_expansion: bool | None = None,
) -> Obj:
    sc: Obj = {
        "apiVersion": "storage.k8s.io/v1",
        "kind": "StorageClass",
        "metadata": {"name": name},
        "provisioner": provisioner,
        "volumeBindingMode": binding_mode,
        "reclaimPolicy": reclaim_policy,
    }
    if default:
        sc["metadata"]["annotations"] = {"storageclass.kubernetes.io/is-default-class": "true"}
    if allow_expansion is not None:
        sc["allowVolumeExpansion"] = allow_expansion
    return sc


def make_pod(
    name: str,
    *claims: str,
    namespace: str = "default",
    node: str = "",
    restart_policy: str = "Always",
) -> Obj:
    """A pod mounting ``claims`` (optionally already bound to ``node``)."""
    spec: dict[str, Any] = {
        "restartPolicy": restart_policy,
        "containers": [
            {
                "name": "c",
                "image": "busybox:1.36",
                "volumeMounts": [
                    {"name": f"v{i}", "mountPath": f"/d{i}"} for i in range(len(claims))
                ],
            }
        ],
        "volumes": [
            {"name": f"v{i}", "persistentVolumeClaim": {"claimName": c}}
            for i, c in enumerate(claims)
        ],
    }
    if node:
        spec["nodeName"] = node
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": namespace},
        "spec": spec,
    }


# -- the volume binder, driven by hand ---------------------------------------------------------


def ref_to(claim: Obj, *, uid: bool = True) -> dict[str, Any]:
    """A ``claimRef`` naming ``claim`` (with its uid unless ``uid=False``)."""
    ref: dict[str, Any] = {
        "kind": "PersistentVolumeClaim",
        "apiVersion": "v1",
        "namespace": claim["metadata"].get("namespace", "default"),
        "name": claim["metadata"]["name"],
    }
    if uid:
        ref["uid"] = claim["metadata"]["uid"]
    return ref


class BinderHarness:
    """A ``PersistentVolumeBinder`` with no informers: tests create objects through the
    client, then run exactly the syncs they mean to (each reloads the binder's caches)."""

    def __init__(self, api: Api) -> None:
        from kubeling.controllers.volume.binder import COMPONENT, PersistentVolumeBinder

        self.api = api
        self.client = api.client
        self.binder = PersistentVolumeBinder(
            client=api.client, recorder=api.recorder(COMPONENT), resync_period=0
        )

    async def _set_status(self, resource: Any, obj: Obj, status: dict[str, Any]) -> Obj:
        obj = dict(obj)
        obj["status"] = {**(obj.get("status") or {}), **status}
        return await self.client.update(resource, obj, subresource="status")

    async def claim(self, manifest: Obj, *, phase: str = "", **status: Any) -> Obj:
        from kubeling.machinery.resources import PERSISTENTVOLUMECLAIMS

        created = await self.client.create(PERSISTENTVOLUMECLAIMS, manifest)
        if phase or status:
            created = await self._set_status(
                PERSISTENTVOLUMECLAIMS, created, {**({"phase": phase} if phase else {}), **status}
            )
        return created

    async def volume(self, manifest: Obj, *, phase: str = "Available", **status: Any) -> Obj:
        from kubeling.machinery.resources import PERSISTENTVOLUMES

        created = await self.client.create(PERSISTENTVOLUMES, manifest)
        if phase or status:
            created = await self._set_status(
                PERSISTENTVOLUMES, created, {**({"phase": phase} if phase else {}), **status}
            )
        return created

    async def storage_class(self, manifest: Obj) -> Obj:
        from kubeling.machinery.resources import STORAGECLASSES

        return await self.client.create(STORAGECLASSES, manifest)

    async def get_claim(self, name: str, namespace: str = "default") -> Obj:
        from kubeling.machinery.resources import PERSISTENTVOLUMECLAIMS

        return await self.client.get(PERSISTENTVOLUMECLAIMS, name=name, namespace=namespace)

    async def get_volume(self, name: str) -> Obj:
        from kubeling.machinery.resources import PERSISTENTVOLUMES

        return await self.client.get(PERSISTENTVOLUMES, name=name)

    async def sync_claim(self, name: str, namespace: str = "default") -> None:
        await self.binder.load()
        claim = self.binder.claims.get(f"{namespace}/{name}")
        assert claim is not None, f"claim {namespace}/{name} not found"
        await self.binder.sync_claim(claim)

    async def sync_volume(self, name: str) -> None:
        await self.binder.load()
        volume = self.binder.volumes.get(name)
        assert volume is not None, f"volume {name} not found"
        await self.binder.sync_volume(volume)

    async def converge(self, rounds: int = 5) -> None:
        """Sync every claim, then every volume, ``rounds`` times (upstream's multi-sync)."""
        for _ in range(rounds):
            await self.binder.load()
            for claim in list(self.binder.claims):
                current = self.binder.claims.get(
                    f"{claim['metadata']['namespace']}/{claim['metadata']['name']}"
                )
                if current is not None:
                    await self.binder.sync_claim(current)
            for volume in list(self.binder.volumes):
                current = self.binder.volumes.get(volume["metadata"]["name"])
                if current is not None:
                    await self.binder.sync_volume(current)

    async def events(self, obj: Obj | None = None, reason: str = "") -> list[Obj]:
        return await self.api.events(obj, reason=reason)

    async def messages(self, obj: Obj, reason: str = "") -> list[str]:
        return [e["message"] for e in await self.events(obj, reason)]


@pytest.fixture
def harness(api: Api) -> BinderHarness:
    return BinderHarness(api)
