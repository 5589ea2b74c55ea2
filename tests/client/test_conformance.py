"""Both transports against the real registry: same answers, same errors, same shapes.

``local`` is a ``LocalClient`` on a ``Registry`` over ``MemoryBackend``; ``http`` is an
``HttpClient`` (from the written kubeconfig: CA + bearer token) on an in-process ``Cluster``
serving HTTPS on 127.0.0.1. Every test runs against both, and ``test_transports_agree`` drives
one cluster through both clients and compares the answers field by field.
"""

from __future__ import annotations

import asyncio
import copy
import pathlib
from collections.abc import AsyncIterator
from typing import Any

import pytest

pytest.importorskip("kubeling.registry.registry", reason="the registry facade has not landed")

from kubeling.client.events import EventRecorder
from kubeling.client.http import HttpClient
from kubeling.client.informer import Informer
from kubeling.client.interface import Client
from kubeling.client.local import LocalClient
from kubeling.cluster import Cluster, ClusterConfig
from kubeling.machinery.errors import AlreadyExists, Conflict, Invalid, NotFound, StatusError
from kubeling.machinery.resources import CONFIGMAPS, EVENTS, NAMESPACES, PODS
from kubeling.machinery.types import Obj
from kubeling.registry.registry import Registry
from kubeling.storage.memory import MemoryBackend
from tests.client.fakes import eventually


async def _local() -> tuple[Client, Any, Any]:
    backend = MemoryBackend()
    await backend.start()
    registry = await Registry.open(backend=backend)
    bootstrap = getattr(registry, "bootstrap", None)
    if bootstrap is not None:
        await bootstrap()
    return LocalClient(registry), registry, backend


@pytest.fixture(params=["local", "http"])
async def api(request: pytest.FixtureRequest, tmp_path: pathlib.Path) -> AsyncIterator[Client]:
    if request.param == "local":
        client, registry, backend = await _local()
        try:
            yield client
        finally:
            await client.close()
            close = getattr(registry, "close", None)
            if close is not None:
                await close()
            await backend.close()
    else:
        cluster = Cluster(ClusterConfig(data_dir=tmp_path, listen="127.0.0.1:0", store="memory"))
        await cluster.start()
        http = HttpClient.from_kubeconfig(cluster.kubeconfig)
        try:
            yield http
        finally:
            await http.close()
            await cluster.stop()


def _cm(name: str, **data: str) -> Obj:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": name, "namespace": "default", "labels": {"app": "t"}},
        "data": data,
    }


async def test_client_crud_round_trip(api: Client) -> None:
    created = await api.create(CONFIGMAPS, _cm("a", k="v"))
    assert created["kind"] == "ConfigMap"
    assert created["apiVersion"] == "v1"
    assert created["metadata"]["uid"]
    assert created["metadata"]["resourceVersion"]
    assert created["data"] == {"k": "v"}

    got = await api.get(CONFIGMAPS, name="a", namespace="default")
    assert got["metadata"]["uid"] == created["metadata"]["uid"]

    got["data"]["k"] = "v2"
    updated = await api.update(CONFIGMAPS, got)
    assert updated["data"] == {"k": "v2"}
    assert int(updated["metadata"]["resourceVersion"]) > int(created["metadata"]["resourceVersion"])

    merged = await api.patch(
        CONFIGMAPS, name="a", namespace="default", patch={"data": {"x": "1"}}, patch_type="merge"
    )
    assert merged["data"] == {"k": "v2", "x": "1"}
    smp = await api.patch(
        CONFIGMAPS,
        name="a",
        namespace="default",
        patch={"data": {"x": None}},
        patch_type="strategic",
    )
    assert smp["data"] == {"k": "v2"}
    jp = await api.patch(
        CONFIGMAPS,
        name="a",
        namespace="default",
        patch=[{"op": "replace", "path": "/data/k", "value": "v3"}],
        patch_type="json",
    )
    assert jp["data"] == {"k": "v3"}

    listed = await api.list(CONFIGMAPS, namespace="default", label_selector="app=t")
    assert listed["kind"] == "ConfigMapList"
    assert [i["metadata"]["name"] for i in listed["items"]] == ["a"]
    assert listed["metadata"]["resourceVersion"]

    await api.delete(CONFIGMAPS, name="a", namespace="default")
    with pytest.raises(NotFound) as info:
        await api.get(CONFIGMAPS, name="a", namespace="default")
    assert str(info.value) == 'configmaps "a" not found'


async def test_client_errors_are_the_same_subclasses(api: Client) -> None:
    await api.create(CONFIGMAPS, _cm("a"))
    with pytest.raises(AlreadyExists) as exists:
        await api.create(CONFIGMAPS, _cm("a"))
    assert str(exists.value) == 'configmaps "a" already exists'

    stale = await api.get(CONFIGMAPS, name="a", namespace="default")
    await api.patch(
        CONFIGMAPS, name="a", namespace="default", patch={"data": {"n": "1"}}, patch_type="merge"
    )
    with pytest.raises(Conflict) as conflict:
        await api.update(CONFIGMAPS, stale)
    assert str(conflict.value) == (
        'Operation cannot be fulfilled on configmaps "a": the object has been modified; '
        "please apply your changes to the latest version and try again"
    )

    bad = _cm("Not_A_Name")
    with pytest.raises(Invalid) as invalid:
        await api.create(CONFIGMAPS, bad)
    assert invalid.value.kind == "ConfigMap"
    assert any(c.field == "metadata.name" for c in invalid.value.causes)

    with pytest.raises(NotFound):
        await api.delete(CONFIGMAPS, name="nope", namespace="default")


async def test_client_dry_run_does_not_persist(api: Client) -> None:
    out = await api.create(CONFIGMAPS, _cm("dry"), dry_run=True)
    assert out["metadata"]["name"] == "dry"
    with pytest.raises(NotFound):
        await api.get(CONFIGMAPS, name="dry", namespace="default")


async def test_client_watch_sees_changes_in_order(api: Client) -> None:
    listed = await api.list(CONFIGMAPS, namespace="default")
    rv = listed["metadata"]["resourceVersion"]
    seen: list[tuple[str, str]] = []
    done = asyncio.Event()

    async def consume() -> None:
        async for event in api.watch(CONFIGMAPS, namespace="default", resource_version=rv):
            if event.type == "BOOKMARK":
                continue
            seen.append((event.type, event.object["metadata"]["name"]))
            assert event.object["kind"] == "ConfigMap"
            if len(seen) == 3:
                done.set()
                return

    task = asyncio.create_task(consume())
    await api.create(CONFIGMAPS, _cm("w"))
    await api.patch(
        CONFIGMAPS, name="w", namespace="default", patch={"data": {"a": "b"}}, patch_type="merge"
    )
    await api.delete(CONFIGMAPS, name="w", namespace="default")
    async with asyncio.timeout(10):
        await done.wait()
        await task
    assert seen == [("ADDED", "w"), ("MODIFIED", "w"), ("DELETED", "w")]


async def test_client_watch_without_version_starts_with_current_objects(api: Client) -> None:
    await api.create(CONFIGMAPS, _cm("pre"))
    async with asyncio.timeout(10):
        async for event in api.watch(CONFIGMAPS, namespace="default"):
            assert (event.type, event.object["metadata"]["name"]) == ("ADDED", "pre")
            break


async def test_client_watch_ends_after_timeout_seconds(api: Client) -> None:
    listed = await api.list(CONFIGMAPS, namespace="default")
    events = []
    async with asyncio.timeout(15):
        async for event in api.watch(
            CONFIGMAPS,
            namespace="default",
            resource_version=listed["metadata"]["resourceVersion"],
            timeout_seconds=1,
        ):
            events.append(event)
    assert all(e.type == "BOOKMARK" for e in events)


async def test_informer_over_both_transports(api: Client) -> None:
    await api.create(CONFIGMAPS, _cm("i1"))
    informer = Informer(api, CONFIGMAPS, namespace="default")
    informer.start()
    try:
        async with asyncio.timeout(10):
            await informer.wait_synced()
        assert informer.keys() == ["default/i1"]
        await api.create(CONFIGMAPS, _cm("i2"))
        await api.delete(CONFIGMAPS, name="i1", namespace="default")
        await eventually(lambda: informer.keys() == ["default/i2"])
    finally:
        await informer.stop()


async def test_metadata_only_list_and_watch_carry_no_body(api: Client) -> None:
    created = await api.create(CONFIGMAPS, _cm("m1", k="v"))
    listed = await api.list(CONFIGMAPS, namespace="default", metadata_only=True)
    assert (listed["kind"], listed["apiVersion"]) == ("PartialObjectMetadataList", "meta.k8s.io/v1")
    [item] = listed["items"]
    assert set(item) == {"kind", "apiVersion", "metadata"}
    assert (item["kind"], item["apiVersion"]) == ("PartialObjectMetadata", "meta.k8s.io/v1")
    assert item["metadata"]["uid"] == created["metadata"]["uid"]
    assert item["metadata"]["labels"] == {"app": "t"}

    updated = await api.patch(
        CONFIGMAPS, name="m1", namespace="default", patch={"data": {"k": "w"}}, patch_type="merge"
    )
    events = []
    async for event in api.watch(
        CONFIGMAPS,
        namespace="default",
        resource_version=listed["metadata"]["resourceVersion"],
        allow_bookmarks=False,
        metadata_only=True,
        timeout_seconds=5,
    ):
        events.append(event)
        break
    [event] = events
    assert event.type == "MODIFIED"
    assert set(event.object) == {"kind", "apiVersion", "metadata"}
    assert event.object["kind"] == "PartialObjectMetadata"
    assert event.object["metadata"]["resourceVersion"] == updated["metadata"]["resourceVersion"]


async def test_metadata_only_informer_caches_metadata_without_managed_fields(api: Client) -> None:
    await api.create(CONFIGMAPS, _cm("m2", big="x" * 10_000))
    informer = Informer(api, CONFIGMAPS, namespace="default", metadata_only=True)
    seen: list[Obj] = []
    informer.add_handler(on_add=seen.append, on_update=lambda _old, new: seen.append(new))
    informer.start()
    try:
        async with asyncio.timeout(10):
            await informer.wait_synced()
        cached = informer.get("default/m2")
        assert cached is not None
        assert cached["kind"] == "PartialObjectMetadata"
        assert "data" not in cached
        assert "managedFields" not in cached["metadata"]
        assert cached["metadata"]["name"] == "m2"
        await api.patch(
            CONFIGMAPS,
            name="m2",
            namespace="default",
            patch={"metadata": {"labels": {"app": "u"}}},
            patch_type="merge",
        )
        await eventually(lambda: any(o["metadata"]["labels"] == {"app": "u"} for o in seen))
        assert all(set(o) == {"kind", "apiVersion", "metadata"} for o in seen)
        assert all("managedFields" not in o["metadata"] for o in seen)
    finally:
        await informer.stop()


async def test_event_recorder_over_both_transports(api: Client) -> None:
    ns = await api.get(NAMESPACES, name="default")
    rec = EventRecorder(api, component="test-controller", host="h1")
    for _ in range(3):
        rec.event(ns, "Normal", "Checked", "all good")
    await rec.flush()
    await rec.close()
    listed = await api.list(EVENTS, namespace="default")
    [event] = [e for e in listed["items"] if e["reason"] == "Checked"]
    assert event["count"] == 3
    assert event["involvedObject"]["kind"] == "Namespace"
    assert event["involvedObject"]["name"] == "default"
    assert event["source"] == {"component": "test-controller", "host": "h1"}


async def test_local_client_never_aliases_registry_objects() -> None:
    client, registry, backend = await _local()
    try:
        source = _cm("alias", k="v")
        created = await client.create(CONFIGMAPS, source)
        source["data"]["k"] = "changed-input"
        created["data"]["k"] = "changed-output"
        got = await client.get(CONFIGMAPS, name="alias", namespace="default")
        assert got["data"] == {"k": "v"}
        got["metadata"]["labels"]["app"] = "changed"
        listed = await client.list(CONFIGMAPS, namespace="default")
        assert listed["items"][0]["metadata"]["labels"] == {"app": "t"}
    finally:
        close = getattr(registry, "close", None)
        if close is not None:
            await close()
        await backend.close()


_VOLATILE = ("uid", "resourceVersion", "creationTimestamp", "managedFields", "generation")


def _stable(obj: Obj) -> Obj:
    out = copy.deepcopy(obj)
    meta = out.get("metadata") or {}
    for key in _VOLATILE:
        meta.pop(key, None)
    for item in out.get("items") or []:
        for key in _VOLATILE:
            item.get("metadata", {}).pop(key, None)
    out.get("metadata", {}).pop("resourceVersion", None)
    return out


async def test_transports_agree(tmp_path: pathlib.Path) -> None:
    # An API server alone: with the scheduler and node agent running, whether the pod is
    # bound before the delete depends on timing, and the two transports' answers differ.
    async with Cluster(
        ClusterConfig(data_dir=tmp_path, listen="127.0.0.1:0", store="memory", controllers=())
    ) as cluster:
        local = LocalClient(cluster.registry)
        http = HttpClient.from_kubeconfig(cluster.kubeconfig)
        try:
            results: dict[str, list[Any]] = {}
            for label, client in (("local", local), ("http", http)):
                name = f"agree-{label}"
                out: list[Any] = []
                pod = {
                    "apiVersion": "v1",
                    "kind": "Pod",
                    "metadata": {"name": name, "namespace": "default"},
                    "spec": {"containers": [{"name": "c", "image": "busybox"}]},
                }
                created = await client.create(PODS, pod)
                out.append(_stable(created))
                patched = await client.patch(
                    PODS,
                    name=name,
                    namespace="default",
                    patch={"metadata": {"labels": {"x": "y"}}},
                    patch_type="strategic",
                )
                out.append(_stable(patched))
                for call in (
                    client.get(PODS, name="missing", namespace="default"),
                    client.create(PODS, pod),
                ):
                    try:
                        await call
                    except StatusError as e:
                        out.append((type(e).__name__, str(e), e.kind, e.name))
                deleted = await client.delete(
                    PODS, name=name, namespace="default", grace_period_seconds=0
                )
                out.append(_stable(deleted))
                results[label] = out
            text = repr(results["local"]).replace("agree-local", "NAME")
            assert text == repr(results["http"]).replace("agree-http", "NAME")
        finally:
            await http.close()
