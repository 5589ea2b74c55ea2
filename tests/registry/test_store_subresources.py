"""Subresources (status, scale, pods/binding, namespaces/finalize), graceful pod deletion
and events.k8s.io Events sharing core Events' storage."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from kubeling.machinery import resources as r
from kubeling.machinery.errors import BadRequest, Conflict, Invalid, MethodNotAllowed, NotFound
from kubeling.registry.registry import Registry
from tests.registry.conftest import FakeClock, ctx


def sts(name: str = "web", replicas: int = 2) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "StatefulSet",
        "metadata": {"name": name},
        "spec": {
            "serviceName": name,
            "replicas": replicas,
            "selector": {
                "matchLabels": {"app": name},
                "matchExpressions": [{"key": "tier", "operator": "In", "values": ["b", "a"]}],
            },
            "template": {
                "metadata": {"labels": {"app": name, "tier": "a"}},
                "spec": {"containers": [{"name": "c", "image": "nginx"}]},
            },
        },
    }


def pod(name: str = "p", node: str = "") -> dict[str, Any]:
    spec: dict[str, Any] = {"containers": [{"name": "c", "image": "nginx"}]}
    if node:
        spec["nodeName"] = node
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name}, "spec": spec}


async def test_main_update_ignores_status_and_status_update_ignores_spec(
    registry: Registry,
) -> None:
    store = registry.store(r.STATEFULSETS)
    made = await store.create(sts(), namespace="default", ctx=ctx())
    body = dict(made)
    body["status"] = {"replicas": 5}
    out, _ = await store.update(body, namespace="default", name="web", ctx=ctx())
    assert out.get("status", {}).get("replicas", 0) != 5
    body = dict(out)
    body["status"] = {"replicas": 2, "readyReplicas": 1}
    body["spec"] = {**out["spec"], "replicas": 9}
    out2, _ = await store.update(
        body, namespace="default", name="web", ctx=ctx(), subresource="status"
    )
    assert out2["status"]["readyReplicas"] == 1
    assert out2["spec"]["replicas"] == 2
    assert out2["metadata"]["generation"] == out["metadata"]["generation"]


async def test_status_patch(registry: Registry) -> None:
    store = registry.store(r.STATEFULSETS)
    await store.create(sts(), namespace="default", ctx=ctx())
    out, _ = await store.patch(
        namespace="default",
        name="web",
        patch=b'{"status":{"replicas":2,"observedGeneration":1}}',
        content_type="application/merge-patch+json",
        ctx=ctx(),
        subresource="status",
    )
    assert out["status"]["observedGeneration"] == 1


def _entry(obj: dict[str, Any], manager: str, subresource: str = "") -> dict[str, Any]:
    found = [
        e
        for e in obj["metadata"].get("managedFields", [])
        if e["manager"] == manager and e.get("subresource", "") == subresource
    ]
    assert len(found) == 1, obj["metadata"].get("managedFields")
    return found[0]


async def test_status_apply_owns_status_fields_and_prunes_them(registry: Registry) -> None:
    store = registry.store(r.STATEFULSETS)
    await store.create(sts(), namespace="default", ctx=ctx())
    applied = {
        "apiVersion": "apps/v1",
        "kind": "StatefulSet",
        "metadata": {"name": "web"},
        "spec": {"replicas": 9},
        "status": {"replicas": 2, "readyReplicas": 1},
    }
    out, _ = await store.patch(
        namespace="default",
        name="web",
        patch=orjson.dumps(applied),
        content_type="application/apply-patch+yaml",
        ctx=ctx(field_manager="ctl"),
        subresource="status",
    )
    assert out["status"]["readyReplicas"] == 1
    assert out["spec"]["replicas"] == 2  # spec is a reset field through /status
    entry = _entry(out, "ctl", "status")
    assert entry["operation"] == "Apply"
    assert entry["fieldsV1"] == {"f:status": {"f:readyReplicas": {}, "f:replicas": {}}}
    # The manager stops applying readyReplicas: it owned it alone, so it goes.
    applied["status"] = {"replicas": 2}
    out, _ = await store.patch(
        namespace="default",
        name="web",
        patch=orjson.dumps(applied),
        content_type="application/apply-patch+yaml",
        ctx=ctx(field_manager="ctl"),
        subresource="status",
    )
    assert "readyReplicas" not in out["status"]
    assert _entry(out, "ctl", "status")["fieldsV1"] == {"f:status": {"f:replicas": {}}}


async def test_status_apply_conflicts_with_another_manager_unless_forced(
    registry: Registry,
) -> None:
    store = registry.store(r.STATEFULSETS)
    await store.create(sts(), namespace="default", ctx=ctx())
    await store.patch(
        namespace="default",
        name="web",
        patch=b'{"status":{"replicas":2,"availableReplicas":1}}',
        content_type="application/merge-patch+json",
        ctx=ctx(field_manager="controller"),
        subresource="status",
    )
    applied = orjson.dumps(
        {
            "apiVersion": "apps/v1",
            "kind": "StatefulSet",
            "metadata": {"name": "web"},
            "status": {"availableReplicas": 2},
        }
    )
    with pytest.raises(Conflict) as e:
        await store.patch(
            namespace="default",
            name="web",
            patch=applied,
            content_type="application/apply-patch+yaml",
            ctx=ctx(field_manager="ctl"),
            subresource="status",
        )
    assert e.value.message == (
        'Apply failed with 1 conflict: conflict with "controller" with subresource "status" using '
        "apps/v1: .status.availableReplicas"
    )
    out, _ = await store.patch(
        namespace="default",
        name="web",
        patch=applied,
        content_type="application/apply-patch+yaml",
        ctx=ctx(field_manager="ctl", force=True),
        subresource="status",
    )
    assert out["status"]["availableReplicas"] == 2
    assert _entry(out, "controller", "status")["fieldsV1"] == {"f:status": {"f:replicas": {}}}


async def test_status_apply_needs_a_field_manager(registry: Registry) -> None:
    store = registry.store(r.STATEFULSETS)
    await store.create(sts(), namespace="default", ctx=ctx())
    with pytest.raises(BadRequest) as e:
        await store.patch(
            namespace="default",
            name="web",
            patch=b'{"apiVersion":"apps/v1","kind":"StatefulSet","status":{"replicas":1}}',
            content_type="application/apply-patch+yaml",
            ctx=ctx(field_manager=""),
            subresource="status",
        )
    assert e.value.message == "PATCH, fieldManager is required for apply requests"


async def test_scale_get_and_merge_patch(registry: Registry) -> None:
    store = registry.store(r.STATEFULSETS)
    made = await store.create(sts(), namespace="default", ctx=ctx())
    scale = await store.get(namespace="default", name="web", subresource="scale")
    assert scale == {
        "kind": "Scale",
        "apiVersion": "autoscaling/v1",
        "metadata": {
            "name": "web",
            "namespace": "default",
            "uid": made["metadata"]["uid"],
            "resourceVersion": made["metadata"]["resourceVersion"],
            "creationTimestamp": made["metadata"]["creationTimestamp"],
        },
        "spec": {"replicas": 2},
        "status": {"replicas": 0, "selector": "app=web,tier in (a,b)"},
    }
    out, _ = await store.patch(
        namespace="default",
        name="web",
        patch=b'{"spec":{"replicas":5}}',
        content_type="application/merge-patch+json",
        ctx=ctx(),
        subresource="scale",
    )
    assert out["spec"]["replicas"] == 5
    parent = await store.get(namespace="default", name="web")
    assert parent["spec"]["replicas"] == 5
    assert parent["metadata"]["generation"] == 2


async def test_scale_put_with_stale_resource_version_is_conflict(registry: Registry) -> None:
    store = registry.store(r.STATEFULSETS)
    await store.create(sts(), namespace="default", ctx=ctx())
    scale = await store.get(namespace="default", name="web", subresource="scale")
    scale["spec"]["replicas"] = 3
    await store.update(scale, namespace="default", name="web", ctx=ctx(), subresource="scale")
    scale["spec"]["replicas"] = 4
    with pytest.raises(Conflict) as e:
        await store.update(scale, namespace="default", name="web", ctx=ctx(), subresource="scale")
    assert e.value.message.startswith('Operation cannot be fulfilled on statefulsets.apps "web"')


async def test_scale_negative_replicas_is_invalid(registry: Registry) -> None:
    store = registry.store(r.STATEFULSETS)
    await store.create(sts(), namespace="default", ctx=ctx())
    with pytest.raises(Invalid) as e:
        await store.patch(
            namespace="default",
            name="web",
            patch=b'{"spec":{"replicas":-1}}',
            content_type="application/merge-patch+json",
            ctx=ctx(),
            subresource="scale",
        )
    assert e.value.message == (
        'Scale.autoscaling "web" is invalid: spec.replicas: Invalid value: -1: must be '
        "greater than or equal to 0"
    )


async def test_binding_assigns_node_once(registry: Registry) -> None:
    pods = registry.store(r.PODS)
    await pods.create(pod(), namespace="default", ctx=ctx())
    binding = {
        "apiVersion": "v1",
        "kind": "Binding",
        "metadata": {"name": "p"},
        "target": {"kind": "Node", "name": "node-1"},
    }
    out = await pods.create(
        binding, namespace="default", name="p", subresource="binding", ctx=ctx()
    )
    assert out == {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success"}
    got = await pods.get(namespace="default", name="p")
    assert got["spec"]["nodeName"] == "node-1"
    cond = [c for c in got["status"]["conditions"] if c["type"] == "PodScheduled"]
    assert cond[0]["status"] == "True"
    binding["target"]["name"] = "node-2"
    with pytest.raises(Conflict) as e:
        await pods.create(binding, namespace="default", name="p", subresource="binding", ctx=ctx())
    assert e.value.message == (
        'Operation cannot be fulfilled on pods/binding "p": pod p is already assigned to node '
        '"node-1"'
    )


async def test_binding_missing_pod_is_not_found(registry: Registry) -> None:
    binding = {"metadata": {"name": "p"}, "target": {"name": "n"}}
    with pytest.raises(NotFound) as e:
        await registry.store(r.PODS).create(
            binding, namespace="default", name="p", subresource="binding", ctx=ctx()
        )
    assert e.value.message == 'pods "p" not found'


async def test_unimplemented_subresource_is_method_not_allowed(registry: Registry) -> None:
    with pytest.raises(MethodNotAllowed):
        await registry.store(r.PODS).get(namespace="default", name="p", subresource="log")
    with pytest.raises(NotFound):
        await registry.store(r.CONFIGMAPS).get(namespace="default", name="p", subresource="scale")


async def test_scheduled_pod_deletes_gracefully(registry: Registry, clock: FakeClock) -> None:
    pods = registry.store(r.PODS)
    await pods.create(pod(node="node-1"), namespace="default", ctx=ctx())
    out, finished = await pods.delete(
        namespace="default", name="p", options={"propagationPolicy": "Background"}, ctx=ctx()
    )
    assert not finished
    assert out["kind"] == "Pod"
    assert out["metadata"]["deletionGracePeriodSeconds"] == 30
    assert out["metadata"]["deletionTimestamp"] == "2025-01-01T10:00:30Z"
    again, finished = await pods.delete(namespace="default", name="p", options=None, ctx=ctx())
    assert not finished and again["metadata"]["deletionGracePeriodSeconds"] == 30
    gone, finished = await pods.delete(
        namespace="default", name="p", options={"gracePeriodSeconds": 0}, ctx=ctx()
    )
    assert finished
    assert gone["kind"] == "Pod"  # pods answer a finished DELETE with the object
    with pytest.raises(NotFound):
        await pods.get(namespace="default", name="p")


async def test_unscheduled_pod_deletes_at_once(registry: Registry) -> None:
    pods = registry.store(r.PODS)
    await pods.create(pod(), namespace="default", ctx=ctx())
    out, finished = await pods.delete(namespace="default", name="p", options={}, ctx=ctx())
    assert finished
    assert out["metadata"]["name"] == "p"


def core_event() -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {"name": "e1"},
        "involvedObject": {"kind": "Pod", "namespace": "default", "name": "p", "uid": "u1"},
        "reason": "Scheduled",
        "message": "Successfully assigned default/p to node-1",
        "type": "Normal",
        "source": {"component": "default-scheduler"},
        "count": 1,
        "firstTimestamp": "2025-01-01T10:00:00Z",
        "lastTimestamp": "2025-01-01T10:00:00Z",
        "reportingComponent": "default-scheduler",
        "reportingInstance": "kubeling",
    }


async def test_events_v1_reads_core_events(registry: Registry) -> None:
    await registry.store(r.EVENTS).create(core_event(), namespace="default", ctx=ctx())
    ev = await registry.store(r.EVENTS_V1).get(namespace="default", name="e1")
    assert ev["apiVersion"] == "events.k8s.io/v1" and ev["kind"] == "Event"
    assert ev["regarding"]["uid"] == "u1"
    assert ev["note"] == "Successfully assigned default/p to node-1"
    assert ev["deprecatedSource"] == {"component": "default-scheduler"}
    assert ev["deprecatedCount"] == 1
    assert ev["deprecatedFirstTimestamp"] == "2025-01-01T10:00:00Z"
    assert ev["reportingController"] == "default-scheduler"
    assert "involvedObject" not in ev and "message" not in ev


async def test_events_v1_writes_are_core_events(registry: Registry) -> None:
    body = {
        "apiVersion": "events.k8s.io/v1",
        "kind": "Event",
        "metadata": {"name": "e2"},
        "eventTime": "2025-01-01T10:00:00.000000Z",
        "regarding": {"kind": "Pod", "namespace": "default", "name": "p", "uid": "u1"},
        "reason": "Pulled",
        "note": "pulled",
        "type": "Normal",
        "action": "Pull",
        "reportingController": "kubeling/agent",
        "reportingInstance": "node-1",
    }
    await registry.store(r.EVENTS_V1).create(body, namespace="default", ctx=ctx())
    core = await registry.store(r.EVENTS).get(namespace="default", name="e2")
    assert core["apiVersion"] == "v1"
    assert core["involvedObject"]["name"] == "p"
    assert core["message"] == "pulled"
    assert core["reportingComponent"] == "kubeling/agent"
    listed = await registry.store(r.EVENTS).list(
        namespace="default", field_selector="involvedObject.uid=u1"
    )
    assert [i["metadata"]["name"] for i in listed["items"]] == ["e2"]
    raw = await registry.backend.get("/registry/core/events/default/e2")
    assert raw is not None and b'"involvedObject"' in raw.value
    assert b"resourceVersion" not in raw.value
    assert orjson.loads(raw.value)["apiVersion"] == "v1"


async def test_events_v1_watch_converts_events(registry: Registry) -> None:
    import asyncio

    it = aiter(registry.store(r.EVENTS_V1).watch(namespace="default"))
    pending = asyncio.ensure_future(anext(it))
    await registry.store(r.EVENTS).create(core_event(), namespace="default", ctx=ctx())
    t, ev = await asyncio.wait_for(pending, timeout=5)
    assert t == "ADDED"
    assert ev["apiVersion"] == "events.k8s.io/v1"
    assert ev["regarding"]["name"] == "p"
    await it.aclose()  # type: ignore[attr-defined]


async def test_binding_uid_precondition_conflict(registry: Registry) -> None:
    pods = registry.store(r.PODS)
    made = await pods.create(pod(), namespace="default", ctx=ctx())
    binding = {"metadata": {"name": "p", "uid": "other"}, "target": {"name": "n1"}}
    with pytest.raises(Conflict) as e:
        await pods.create(binding, namespace="default", name="p", subresource="binding", ctx=ctx())
    assert e.value.message == (
        'Operation cannot be fulfilled on pods "p": StorageError: invalid object, Code: 4, '
        "Key: /registry/core/pods/default/p, ResourceVersion: 0, AdditionalErrorMsg: "
        f"Precondition failed: UID in precondition: other, UID in object meta: "
        f"{made['metadata']['uid']}"
    )


async def test_events_v1_create_validates_by_v1_rules(registry: Registry) -> None:
    body = {
        "apiVersion": "events.k8s.io/v1",
        "kind": "Event",
        "metadata": {"name": "e3"},
        "regarding": {"kind": "Pod", "namespace": "default", "name": "p"},
        "reason": "Pulled",
        "note": "pulled",
        "type": "Normal",
    }
    with pytest.raises(Invalid) as e:
        await registry.store(r.EVENTS_V1).create(body, namespace="default", ctx=ctx())
    assert "eventTime: Required value" in e.value.message


async def test_registered_subresource_serves_requests(registry: Registry) -> None:
    from kubeling.registry.subresources import Subresource

    class Log(Subresource):
        async def get(self, *, namespace: str, name: str) -> dict[str, Any]:
            pod = await self.store.get(namespace=namespace, name=name)
            return {"text": f"logs of {pod['metadata']['name']}"}

    registry.register_subresource("log", Log)
    await registry.store(r.PODS).create(pod(), namespace="default", ctx=ctx())
    out = await registry.store(r.PODS).get(namespace="default", name="p", subresource="log")
    assert out == {"text": "logs of p"}


def _workload(kind: str) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "selector": {"matchLabels": {"app": "w"}},
        "template": {
            "metadata": {"labels": {"app": "w"}},
            "spec": {"containers": [{"name": "c", "image": "nginx"}]},
        },
    }
    if kind == "StatefulSet":
        spec["serviceName"] = "w"
    return {"apiVersion": "apps/v1", "kind": kind, "metadata": {"name": "w"}, "spec": spec}


_CLAIM = {
    "apiVersion": "v1",
    "kind": "PersistentVolumeClaim",
    "metadata": {"name": "w"},
    "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}},
}
_VOLUME = {
    "apiVersion": "v1",
    "kind": "PersistentVolume",
    "metadata": {"name": "w"},
    "spec": {
        "capacity": {"storage": "1Gi"},
        "accessModes": ["ReadWriteOnce"],
        "hostPath": {"path": "/tmp/w"},
    },
}


@pytest.mark.parametrize(
    ("resource", "body", "spec_change", "status", "labels_persist"),
    [
        pytest.param(
            r.PODS, pod("w"), {"activeDeadlineSeconds": 5}, {"phase": "Running"}, True, id="pod"
        ),
        pytest.param(
            r.PERSISTENTVOLUMECLAIMS,
            _CLAIM,
            {"volumeName": "x"},
            {"phase": "Bound"},
            True,
            id="pvc",
        ),
        pytest.param(
            r.PERSISTENTVOLUMES,
            _VOLUME,
            {"storageClassName": "x"},
            {"phase": "Available"},
            True,
            id="pv",
        ),
        pytest.param(
            r.STATEFULSETS,
            _workload("StatefulSet"),
            {"minReadySeconds": 7},
            {"replicas": 1, "availableReplicas": 1},
            True,
            id="statefulset",
        ),
        pytest.param(
            r.REPLICASETS,
            _workload("ReplicaSet"),
            {"minReadySeconds": 7},
            {"replicas": 1, "availableReplicas": 1},
            True,
            id="replicaset",
        ),
        pytest.param(
            r.DEPLOYMENTS,
            _workload("Deployment"),
            {"minReadySeconds": 7},
            {"replicas": 1, "availableReplicas": 1},
            False,
            id="deployment",
        ),
    ],
)
async def test_status_update_keeps_spec_and_takes_metadata_as_upstream(
    registry: Registry,
    resource: Any,
    body: dict[str, Any],
    spec_change: dict[str, Any],
    status: dict[str, Any],
    labels_persist: bool,
) -> None:
    store = registry.store(resource)
    made = await store.create(body, namespace="default", ctx=ctx())
    sent = orjson.loads(orjson.dumps(made))
    sent["metadata"]["labels"] = {"via": "status"}
    sent["metadata"]["annotations"] = {"note": "status"}
    sent["metadata"]["uid"] = made["metadata"]["uid"]
    sent["metadata"]["creationTimestamp"] = "2000-01-01T00:00:00Z"
    sent["spec"].update(spec_change)
    sent["status"] = {**(made.get("status") or {}), **status}
    out, _ = await store.update(
        sent, namespace="default", name="w", ctx=ctx(), subresource="status"
    )
    assert out["spec"] == made["spec"], "spec comes from the stored object"
    assert out["metadata"]["creationTimestamp"] == made["metadata"]["creationTimestamp"]
    assert out["metadata"]["annotations"] == {"note": "status"}
    assert out["status"] == sent["status"]
    if labels_persist:
        assert out["metadata"]["labels"] == {"via": "status"}
    else:
        assert out["metadata"].get("labels") == made["metadata"].get("labels")


async def test_pod_status_update_keeps_owner_references_and_qos_class(
    registry: Registry,
) -> None:
    pods = registry.store(r.PODS)
    made = await pods.create(pod("q"), namespace="default", ctx=ctx())
    sent = orjson.loads(orjson.dumps(made))
    sent["metadata"]["ownerReferences"] = [
        {"apiVersion": "v1", "kind": "ConfigMap", "name": "x", "uid": "u-1"}
    ]
    sent["status"] = {"phase": "Running"}
    out, _ = await pods.update(sent, namespace="default", name="q", ctx=ctx(), subresource="status")
    assert "ownerReferences" not in out["metadata"]
    assert out["status"] == {"phase": "Running", "qosClass": made["status"]["qosClass"]}


async def test_replicationcontroller_is_served_with_scale(registry: Registry) -> None:
    store = registry.store(r.REPLICATIONCONTROLLERS)
    body = {
        "apiVersion": "v1",
        "kind": "ReplicationController",
        "metadata": {"name": "rc"},
        "spec": {
            "replicas": 2,
            "template": {
                "metadata": {"labels": {"app": "rc", "tier": "b"}},
                "spec": {"containers": [{"name": "c", "image": "nginx"}]},
            },
        },
    }
    made = await store.create(body, namespace="default", ctx=ctx())
    assert made["spec"]["selector"] == {"app": "rc", "tier": "b"}
    scale = await store.get(namespace="default", name="rc", subresource="scale")
    assert scale["spec"] == {"replicas": 2}
    assert scale["status"] == {"replicas": 0, "selector": "app=rc,tier=b"}
    await store.patch(
        namespace="default",
        name="rc",
        patch=b'{"spec":{"replicas":0}}',
        content_type="application/merge-patch+json",
        ctx=ctx(),
        subresource="scale",
    )
    listed = await store.list(namespace="default", field_selector="status.replicas=0")
    assert [i["metadata"]["name"] for i in listed["items"]] == ["rc"]
    assert listed["items"][0]["spec"]["replicas"] == 0
