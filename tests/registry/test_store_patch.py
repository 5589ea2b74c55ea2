"""PATCH in its four content types, server-side apply's create-if-absent, and the
resourceVersion rules patches share with updates."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from kubeling.machinery import resources as r
from kubeling.machinery.errors import BadRequest, Conflict, NotFound, UnsupportedMediaType
from kubeling.registry.registry import Registry
from tests.registry.conftest import ctx

MERGE = "application/merge-patch+json"
JSON = "application/json-patch+json"
SMP = "application/strategic-merge-patch+json"
APPLY = "application/apply-patch+yaml"


def sts(name: str = "web") -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "StatefulSet",
        "metadata": {"name": name},
        "spec": {
            "serviceName": name,
            "replicas": 1,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {
                    "containers": [
                        {"name": "nginx", "image": "nginx:1.26", "ports": [{"containerPort": 80}]},
                        {"name": "sidecar", "image": "busybox"},
                    ]
                },
            },
        },
    }


async def test_merge_patch_labels(registry: Registry) -> None:
    store = registry.store(r.CONFIGMAPS)
    await store.create(
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x"}},
        namespace="default",
        ctx=ctx(),
    )
    out, created = await store.patch(
        namespace="default",
        name="x",
        patch=b'{"metadata":{"labels":{"tier":"fe"}}}',
        content_type=MERGE,
        ctx=ctx(field_manager="kubectl-label"),
    )
    assert not created
    assert out["metadata"]["labels"] == {"tier": "fe"}
    managers = [e["manager"] for e in out["metadata"]["managedFields"]]
    assert "kubectl-label" in managers


async def test_json_patch(registry: Registry) -> None:
    store = registry.store(r.CONFIGMAPS)
    await store.create(
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x"}, "data": {"a": "1"}},
        namespace="default",
        ctx=ctx(),
    )
    ops = [
        {"op": "replace", "path": "/data/a", "value": "2"},
        {"op": "add", "path": "/data/b", "value": "3"},
    ]
    out, _ = await store.patch(
        namespace="default", name="x", patch=orjson.dumps(ops), content_type=JSON, ctx=ctx()
    )
    assert out["data"] == {"a": "2", "b": "3"}


async def test_strategic_merge_patch_merges_containers_by_name(registry: Registry) -> None:
    store = registry.store(r.STATEFULSETS)
    first = await store.create(sts(), namespace="default", ctx=ctx())
    assert first["metadata"]["generation"] == 1
    patch = {
        "spec": {
            "template": {
                "spec": {
                    "$setElementOrder/containers": [{"name": "nginx"}],
                    "containers": [
                        {"name": "nginx", "image": "nginx:1.27"},
                        {"name": "sidecar", "$patch": "delete"},
                    ],
                }
            }
        }
    }
    out, _ = await store.patch(
        namespace="default", name="web", patch=orjson.dumps(patch), content_type=SMP, ctx=ctx()
    )
    containers = out["spec"]["template"]["spec"]["containers"]
    assert [c["name"] for c in containers] == ["nginx"]
    assert containers[0]["image"] == "nginx:1.27"
    assert containers[0]["ports"][0]["containerPort"] == 80
    assert out["metadata"]["generation"] == 2


async def test_noop_patch_keeps_resource_version_and_generation(registry: Registry) -> None:
    store = registry.store(r.STATEFULSETS)
    first = await store.create(sts(), namespace="default", ctx=ctx())
    out, _ = await store.patch(
        namespace="default",
        name="web",
        patch=b'{"spec":{"replicas":1}}',
        content_type=SMP,
        ctx=ctx(field_manager="kubectl-patch"),
    )
    assert out["metadata"]["resourceVersion"] == first["metadata"]["resourceVersion"]
    assert out["metadata"]["generation"] == 1


async def test_patch_with_stale_resource_version_is_conflict(registry: Registry) -> None:
    store = registry.store(r.CONFIGMAPS)
    await store.create(
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x"}},
        namespace="default",
        ctx=ctx(),
    )
    with pytest.raises(Conflict) as e:
        await store.patch(
            namespace="default",
            name="x",
            patch=b'{"metadata":{"resourceVersion":"1","labels":{"a":"b"}}}',
            content_type=MERGE,
            ctx=ctx(),
        )
    assert e.value.message.startswith('Operation cannot be fulfilled on configmaps "x"')


async def test_patch_missing_is_not_found(registry: Registry) -> None:
    with pytest.raises(NotFound):
        await registry.store(r.CONFIGMAPS).patch(
            namespace="default", name="x", patch=b"{}", content_type=MERGE, ctx=ctx()
        )


async def test_patch_unknown_content_type_is_415(registry: Registry) -> None:
    with pytest.raises(UnsupportedMediaType) as e:
        await registry.store(r.CONFIGMAPS).patch(
            namespace="default", name="x", patch=b"{}", content_type="text/plain", ctx=ctx()
        )
    assert e.value.message == (
        "the body of the request was in an unknown format - accepted media types include: "
        "application/apply-patch+yaml, application/json-patch+json, "
        "application/merge-patch+json, application/strategic-merge-patch+json"
    )


async def test_apply_creates_then_updates(registry: Registry) -> None:
    store = registry.store(r.CONFIGMAPS)
    body = b"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cm1\ndata:\n  a: '1'\n"
    out, created = await store.patch(
        namespace="default",
        name="cm1",
        patch=body,
        content_type=APPLY,
        ctx=ctx(field_manager="kubectl"),
    )
    assert created
    assert out["data"] == {"a": "1"}
    entry = out["metadata"]["managedFields"][0]
    assert (entry["manager"], entry["operation"]) == ("kubectl", "Apply")
    out, created = await store.patch(
        namespace="default",
        name="cm1",
        patch=b'{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"cm1"},"data":{"c":"3"}}',
        content_type=APPLY,
        ctx=ctx(field_manager="kubectl"),
    )
    assert not created
    assert out["data"]["c"] == "3"


async def test_apply_without_field_manager_is_bad_request(registry: Registry) -> None:
    with pytest.raises(BadRequest) as e:
        await registry.store(r.CONFIGMAPS).patch(
            namespace="default",
            name="cm1",
            patch=b'{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"cm1"}}',
            content_type=APPLY,
            ctx=ctx(field_manager=""),
        )
    assert e.value.message == "PATCH, fieldManager is required for apply requests"


async def test_patch_strict_unknown_field_is_bad_request(registry: Registry) -> None:
    store = registry.store(r.CONFIGMAPS)
    await store.create(
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x"}},
        namespace="default",
        ctx=ctx(),
    )
    with pytest.raises(BadRequest) as e:
        await store.patch(
            namespace="default", name="x", patch=b'{"bogus":1}', content_type=MERGE, ctx=ctx()
        )
    assert 'strict decoding error: unknown field "bogus"' in e.value.message


async def test_apply_manager_owns_exactly_what_it_applied(registry: Registry) -> None:
    store = registry.store(r.CONFIGMAPS)
    c = ctx(field_manager="kubectl")
    first = b'{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"cm1","labels":{"app":"demo"}},"data":{"a":"1","c":"3"}}'
    out, _ = await store.patch(
        namespace="default", name="cm1", patch=first, content_type=APPLY, ctx=c
    )
    entry = next(e for e in out["metadata"]["managedFields"] if e["operation"] == "Apply")
    assert entry["fieldsV1"] == {
        "f:data": {"f:a": {}, "f:c": {}},
        "f:metadata": {"f:labels": {"f:app": {}}},
    }
    second = b'{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"cm1"},"data":{"a":"1"}}'
    out, _ = await store.patch(
        namespace="default", name="cm1", patch=second, content_type=APPLY, ctx=c
    )
    entry = next(e for e in out["metadata"]["managedFields"] if e["operation"] == "Apply")
    assert entry["fieldsV1"] == {"f:data": {"f:a": {}}}


async def test_empty_annotations_in_a_patch_leave_no_empty_map(registry: Registry) -> None:
    # kubectl diff after an apply --server-side sends exactly this dry-run patch; upstream's
    # decode into ObjectMeta and omitempty encode leave no ``annotations: {}`` behind.
    store = registry.store(r.CONFIGMAPS)
    made = await store.create(
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": {"a": "1"}},
        namespace="default",
        ctx=ctx(),
    )
    patch = orjson.dumps(
        {"metadata": {"annotations": {}, "resourceVersion": made["metadata"]["resourceVersion"]}}
    )
    out, _ = await store.patch(
        namespace="default",
        name="c",
        patch=patch,
        content_type=SMP,
        ctx=ctx(field_manager="kubectl-client-side-apply", dry_run=True),
    )
    assert "annotations" not in out["metadata"]
    assert out == made, "nothing changed, so nothing is written or owned"


@pytest.mark.parametrize(
    ("resource", "body", "absent", "kept"),
    [
        pytest.param(
            r.CONFIGMAPS,
            {
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "metadata": {"name": "x", "labels": {}, "annotations": {}, "finalizers": []},
                "data": {},
            },
            [
                ("metadata", "labels"),
                ("metadata", "annotations"),
                ("metadata", "finalizers"),
                ("data",),
            ],
            [],
            id="configmap-maps-and-lists",
        ),
        pytest.param(
            r.PODS,
            {
                "apiVersion": "v1",
                "kind": "Pod",
                "metadata": {"name": "x"},
                "spec": {
                    "containers": [{"name": "c", "image": "i", "env": [], "resources": {}}],
                    "volumes": [{"name": "v", "emptyDir": {}}],
                    "nodeSelector": {},
                },
            },
            [("spec", "nodeSelector"), ("spec", "containers", 0, "env")],
            [("spec", "volumes", 0, "emptyDir"), ("spec", "containers", 0, "resources")],
            id="pod-structs-stay",
        ),
        pytest.param(
            r.ENDPOINTSLICES,
            {
                "apiVersion": "discovery.k8s.io/v1",
                "kind": "EndpointSlice",
                "metadata": {"name": "x"},
                "addressType": "IPv4",
                "endpoints": [],
                "ports": [],
            },
            [("ports",)],
            [("endpoints",)],
            id="required-list-stays",
        ),
    ],
)
async def test_create_drops_empty_optional_maps_and_lists(
    registry: Registry,
    resource: Any,
    body: dict[str, Any],
    absent: list[tuple[Any, ...]],
    kept: list[tuple[Any, ...]],
) -> None:
    out = await registry.store(resource).create(body, namespace="default", ctx=ctx())

    def at(path: tuple[Any, ...]) -> Any:
        v: Any = out
        for step in path[:-1]:
            v = v[step]
        return v, path[-1]

    for path in absent:
        parent, last = at(path)
        assert last not in parent, path
    for path in kept:
        parent, last = at(path)
        assert parent[last] in ({}, []), path
