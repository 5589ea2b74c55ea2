"""Metadata rules of the generic store: managedFields, field managers, preconditions and
the strategy hooks that change the generic behaviour."""

from __future__ import annotations

from typing import Any, ClassVar

import pytest

from kubeling.machinery import resources as r
from kubeling.machinery.errors import Invalid
from kubeling.machinery.types import ResourceInfo
from kubeling.registry import meta
from kubeling.registry.catalog import strategy_for
from kubeling.registry.context import RequestContext
from kubeling.registry.registry import Registry
from kubeling.registry.strategy import Strategy
from kubeling.storage.memory import MemoryBackend
from tests.registry.conftest import FakeClock, ctx


def cm(name: str, **data: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": data}


async def test_field_manager_comes_from_user_agent(registry: Registry) -> None:
    c = RequestContext(user_agent="kubectl/v1.32.4 (linux/amd64) kubernetes/abc")
    out = await registry.store(r.CONFIGMAPS).create(cm("a", k="1"), namespace="default", ctx=c)
    assert out["metadata"]["managedFields"][0]["manager"] == "kubectl"


async def test_managed_fields_move_to_the_manager_that_changed_them(
    registry: Registry, clock: FakeClock
) -> None:
    store = registry.store(r.CONFIGMAPS)
    made = await store.create(cm("a", k="1", j="2"), namespace="default", ctx=ctx())
    clock.advance(5)
    made["data"]["k"] = "9"
    out, _ = await store.update(made, namespace="default", name="a", ctx=ctx(field_manager="edit"))
    by = {e["manager"]: e for e in out["metadata"]["managedFields"]}
    assert by["kubectl-create"]["fieldsV1"] == {"f:data": {".": {}, "f:j": {}}}
    assert by["kubectl-create"]["time"] == "2025-01-01T10:00:00Z"
    assert by["edit"]["fieldsV1"] == {"f:data": {"f:k": {}}}
    assert by["edit"]["time"] == "2025-01-01T10:00:05Z"


async def test_status_write_records_status_subresource_entry(registry: Registry) -> None:
    store = registry.store(r.PERSISTENTVOLUMECLAIMS)
    pvc = {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": {"name": "data"},
        "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}},
    }
    made = await store.create(pvc, namespace="default", ctx=ctx())
    made["status"] = {"phase": "Bound"}
    out, _ = await store.update(
        made,
        namespace="default",
        name="data",
        ctx=ctx(field_manager="binder"),
        subresource="status",
    )
    assert out["status"]["phase"] == "Bound"
    entry = next(e for e in out["metadata"]["managedFields"] if e["manager"] == "binder")
    assert entry["subresource"] == "status"
    assert entry["fieldsV1"] == {"f:status": {"f:phase": {}}}


class _StrictUpdates(Strategy):
    allow_unconditional_update: ClassVar[bool] = False
    generation_tracks: ClassVar[tuple[str, ...]] = ()


async def test_unconditional_update_refused_when_strategy_says_so(clock: FakeClock) -> None:
    backend = MemoryBackend()
    await backend.start()

    def pick(info: ResourceInfo) -> Strategy:
        if info is r.CONFIGMAPS:
            return _StrictUpdates(info=info)
        return strategy_for(info)

    reg = await Registry.open(backend=backend, clock=clock, strategy_for=pick)
    await reg.bootstrap()
    store = reg.store(r.CONFIGMAPS)
    await store.create(cm("a"), namespace="default", ctx=ctx())
    with pytest.raises(Invalid) as e:
        await store.update(cm("a", k="2"), namespace="default", name="a", ctx=ctx())
    assert e.value.message == (
        'configmaps "a" is invalid: metadata.resourceVersion: Invalid value: 0x0: must be '
        "specified for an update"
    )
    await backend.close()


async def test_background_delete_drops_orphan_finalizer_and_deletes(registry: Registry) -> None:
    store = registry.store(r.CONFIGMAPS)
    body = cm("a")
    body["metadata"]["finalizers"] = ["orphan"]
    await store.create(body, namespace="default", ctx=ctx())
    _out, finished = await store.delete(
        namespace="default", name="a", options={"propagationPolicy": "Background"}, ctx=ctx()
    )
    assert finished


async def test_removing_finalizers_of_pod_in_grace_period_does_not_delete(
    registry: Registry,
) -> None:
    pods = registry.store(r.PODS)
    body = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "p", "finalizers": ["example.com/x"]},
        "spec": {"nodeName": "n1", "containers": [{"name": "c", "image": "nginx"}]},
    }
    await pods.create(body, namespace="default", ctx=ctx())
    out, finished = await pods.delete(namespace="default", name="p", options={}, ctx=ctx())
    assert not finished and out["metadata"]["deletionGracePeriodSeconds"] == 30
    out["metadata"]["finalizers"] = []
    kept, _ = await pods.update(out, namespace="default", name="p", ctx=ctx())
    assert "finalizers" not in kept["metadata"] or kept["metadata"]["finalizers"] == []
    _gone, finished = await pods.delete(
        namespace="default", name="p", options={"gracePeriodSeconds": 0}, ctx=ctx()
    )
    assert finished


def test_generate_name_is_truncated_prefix_plus_five() -> None:
    name = meta.generate_name("x" * 70)
    assert len(name) == 63 and name.startswith("x" * 58)


def test_owner_references_need_all_fields_and_one_controller() -> None:
    errs = meta.validate_owner_references(
        [
            {
                "apiVersion": "apps/v1",
                "kind": "ReplicaSet",
                "name": "a",
                "uid": "1",
                "controller": True,
            },
            {
                "apiVersion": "apps/v1",
                "kind": "ReplicaSet",
                "name": "b",
                "uid": "2",
                "controller": True,
            },
            {"apiVersion": "", "kind": "X", "name": "c", "uid": "3"},
        ]
    )
    texts = [str(e) for e in errs]
    assert (
        'metadata.ownerReferences.apiVersion: Invalid value: "": version must not be empty' in texts
    )
    assert any(
        'Only one reference can have Controller set to true. Found "true" in references for '
        "ReplicaSet/a and ReplicaSet/b" in t
        for t in texts
    )


def test_generate_name_prefix_is_validated_with_trailing_dash_masked() -> None:
    assert meta.validate_generate_name("web-", name_validation="subdomain") == []
    errs = meta.validate_generate_name("Web-", name_validation="subdomain")
    assert errs and errs[0].field == "metadata.generateName"


async def test_create_does_not_own_status_of_kinds_with_status_subresource(
    registry: Registry,
) -> None:
    out = await registry.store(r.PODS).create(
        {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": "p"},
            "spec": {"containers": [{"name": "c", "image": "nginx"}]},
        },
        namespace="default",
        ctx=ctx(),
    )
    assert out["status"]["phase"] == "Pending"
    fields = out["metadata"]["managedFields"][0]["fieldsV1"]
    assert "f:status" not in fields and "f:spec" in fields
