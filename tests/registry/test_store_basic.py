"""The generic store's verbs on ConfigMaps and Namespaces: create, get, list, update, delete."""

from __future__ import annotations

from typing import Any

import pytest

from kubeling.machinery import decode as decoding
from kubeling.machinery import resources as r
from kubeling.machinery.errors import (
    AlreadyExists,
    BadRequest,
    Conflict,
    Forbidden,
    Invalid,
    NotFound,
)
from kubeling.registry import bootstrap, codec
from kubeling.registry.registry import Registry
from kubeling.storage.memory import MemoryBackend
from tests.registry.conftest import FakeClock, ctx


def cm(name: str = "cm1", **extra: object) -> dict[str, object]:
    body: dict[str, object] = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": name},
        "data": {"a": "1"},
    }
    body.update(extra)
    return body


async def test_create_sets_server_metadata(registry: Registry, clock: FakeClock) -> None:
    out = await registry.store(r.CONFIGMAPS).create(cm(), namespace="default", ctx=ctx())
    m = out["metadata"]
    assert out["kind"] == "ConfigMap" and out["apiVersion"] == "v1"
    assert m["namespace"] == "default"
    assert len(m["uid"]) == 36
    assert m["creationTimestamp"] == "2025-01-01T10:00:00Z"
    assert int(m["resourceVersion"]) > 0
    assert m["managedFields"][0]["manager"] == "kubectl-create"
    assert m["managedFields"][0]["operation"] == "Update"
    assert m["managedFields"][0]["fieldsV1"] == {"f:data": {".": {}, "f:a": {}}}
    got = await registry.store(r.CONFIGMAPS).get(namespace="default", name="cm1")
    assert got == out


async def test_create_twice_is_already_exists_with_upstream_text(registry: Registry) -> None:
    store = registry.store(r.PERSISTENTVOLUMECLAIMS)
    pvc = {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": {"name": "x"},
        "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}},
    }
    await store.create(pvc, namespace="default", ctx=ctx())
    with pytest.raises(AlreadyExists) as e:
        await store.create(pvc, namespace="default", ctx=ctx())
    assert e.value.message == 'persistentvolumeclaims "x" already exists'
    assert e.value.to_status()["details"] == {"name": "x", "kind": "persistentvolumeclaims"}
    apps = registry.store(r.STATEFULSETS)
    sts = {
        "apiVersion": "apps/v1",
        "kind": "StatefulSet",
        "metadata": {"name": "web"},
        "spec": {
            "serviceName": "web",
            "selector": {"matchLabels": {"app": "web"}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {"containers": [{"name": "c", "image": "nginx"}]},
            },
        },
    }
    await apps.create(sts, namespace="default", ctx=ctx())
    with pytest.raises(AlreadyExists) as e:
        await apps.create(sts, namespace="default", ctx=ctx())
    assert e.value.message == 'statefulsets.apps "web" already exists'


async def test_create_namespace_mismatch_is_bad_request(registry: Registry) -> None:
    body = cm()
    body["metadata"] = {"name": "cm1", "namespace": "kube-system"}
    with pytest.raises(BadRequest) as e:
        await registry.store(r.CONFIGMAPS).create(body, namespace="default", ctx=ctx())
    assert e.value.message == (
        "the namespace of the provided object does not match the namespace sent on the request"
    )


async def test_create_wrong_api_version_is_bad_request(registry: Registry) -> None:
    body = cm()
    body["apiVersion"] = "apps/v1"
    with pytest.raises(BadRequest) as e:
        await registry.store(r.CONFIGMAPS).create(body, namespace="default", ctx=ctx())
    assert e.value.message.startswith('ConfigMap in version "v1" cannot be handled as a ConfigMap:')
    assert "apps/v1" in e.value.message


async def test_create_generate_name_appends_five_safe_characters(registry: Registry) -> None:
    body = cm()
    body["metadata"] = {"generateName": "web-"}
    out = await registry.store(r.CONFIGMAPS).create(body, namespace="default", ctx=ctx())
    name = out["metadata"]["name"]
    assert name.startswith("web-") and len(name) == 9
    assert set(name[4:]) <= set("bcdfghjklmnpqrstvwxz2456789")
    assert out["metadata"]["generateName"] == "web-"


async def test_create_without_name_is_invalid(registry: Registry) -> None:
    body = cm()
    body["metadata"] = {}
    with pytest.raises(Invalid) as e:
        await registry.store(r.CONFIGMAPS).create(body, namespace="default", ctx=ctx())
    assert e.value.message == (
        'ConfigMap "" is invalid: metadata.name: Required value: name or generateName is required'
    )


async def test_create_bad_label_is_invalid_with_cause(registry: Registry) -> None:
    body = cm()
    body["metadata"] = {"name": "cm1", "labels": {"a": "-x"}}
    with pytest.raises(Invalid) as e:
        await registry.store(r.CONFIGMAPS).create(body, namespace="default", ctx=ctx())
    assert e.value.message.startswith(
        'ConfigMap "cm1" is invalid: metadata.labels: Invalid value: "-x": a valid label must'
    )
    assert e.value.causes[0].field == "metadata.labels"


async def test_create_bad_finalizer_is_invalid(registry: Registry) -> None:
    body = cm()
    body["metadata"] = {"name": "cm1", "finalizers": ["foo"]}
    with pytest.raises(Invalid) as e:
        await registry.store(r.CONFIGMAPS).create(body, namespace="default", ctx=ctx())
    assert e.value.message == (
        'ConfigMap "cm1" is invalid: metadata.finalizers: Invalid value: "foo": name is '
        "neither a standard finalizer name nor is it fully qualified"
    )


async def test_create_strict_unknown_field_is_bad_request(registry: Registry) -> None:
    body = cm(bogus=1)
    with pytest.raises(BadRequest) as e:
        await registry.store(r.CONFIGMAPS).create(body, namespace="default", ctx=ctx())
    assert e.value.message == (
        'ConfigMap in version "v1" cannot be handled as a ConfigMap: strict decoding error: '
        'unknown field "bogus"'
    )


async def test_create_warn_mode_drops_unknown_field_with_warning(registry: Registry) -> None:
    c = ctx(field_validation="Warn")
    out = await registry.store(r.CONFIGMAPS).create(cm(bogus=1), namespace="default", ctx=c)
    assert "bogus" not in out
    assert c.warnings == ['unknown field "bogus"']


async def test_create_dry_run_writes_nothing(registry: Registry) -> None:
    store = registry.store(r.CONFIGMAPS)
    out = await store.create(cm(), namespace="default", ctx=ctx(dry_run=True))
    assert out["metadata"]["name"] == "cm1"
    assert "resourceVersion" not in out["metadata"]
    with pytest.raises(NotFound):
        await store.get(namespace="default", name="cm1")


async def test_create_in_missing_namespace_is_not_found(registry: Registry) -> None:
    with pytest.raises(NotFound) as e:
        await registry.store(r.CONFIGMAPS).create(cm(), namespace="nope", ctx=ctx())
    assert e.value.message == 'namespaces "nope" not found'


async def test_create_in_terminating_namespace_is_forbidden(registry: Registry) -> None:
    ns = registry.store(r.NAMESPACES)
    await ns.create(
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "gone"}},
        namespace="",
        ctx=ctx(),
    )
    await ns.delete(namespace="", name="gone", options=None, ctx=ctx())
    with pytest.raises(Forbidden) as e:
        await registry.store(r.CONFIGMAPS).create(cm("x"), namespace="gone", ctx=ctx())
    assert e.value.message == (
        'configmaps "x" is forbidden: unable to create new content in namespace gone because '
        "it is being terminated"
    )
    assert e.value.causes[0].reason == "NamespaceTerminating"
    assert e.value.causes[0].field == "metadata.namespace"


@pytest.mark.parametrize("name", ["default", "kube-system", "kube-public"])
async def test_delete_system_namespace_is_forbidden(registry: Registry, name: str) -> None:
    with pytest.raises(Forbidden) as e:
        await registry.store(r.NAMESPACES).delete(namespace="", name=name, options=None, ctx=ctx())
    assert e.value.message == f'namespaces "{name}" is forbidden: this namespace may not be deleted'


async def test_bootstrap_is_idempotent_and_labels_namespaces(registry: Registry) -> None:
    await registry.bootstrap()
    out = await registry.store(r.NAMESPACES).list()
    names = [i["metadata"]["name"] for i in out["items"]]
    assert names == ["default", "kube-node-lease", "kube-public", "kube-system"]
    for item in out["items"]:
        assert item["metadata"]["labels"] == {
            "kubernetes.io/metadata.name": item["metadata"]["name"]
        }
        assert item["status"] == {"phase": "Active"}
        assert item["spec"] == {"finalizers": ["kubernetes"]}


async def test_bootstrap_restart_reads_keys_only(
    backend: MemoryBackend, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = await Registry.open(backend=backend, clock=clock)
    created = await bootstrap.ensure_system_namespaces(first)
    assert created == list(bootstrap.SYSTEM_NAMESPACES)
    made = (await first.store(r.NAMESPACES).get(namespace="", name="kube-system"))["metadata"]
    assert made["managedFields"][0]["manager"] == "kube-apiserver"

    def no_decoding(*_args: Any, **_kwargs: Any) -> Any:
        raise AssertionError("the bootstrap decoded a body")

    monkeypatch.setattr(decoding, "decode_object", no_decoding)
    again = await Registry.open(backend=backend, clock=clock)
    assert await bootstrap.ensure_system_namespaces(again) == []
    assert again._stores == {}, "no store or strategy built on a restart"
    await backend.delete(codec.object_key(r.NAMESPACES, namespace="", name="kube-node-lease"))
    assert await bootstrap.ensure_system_namespaces(again) == ["kube-node-lease"]


async def test_update_stale_resource_version_is_conflict(registry: Registry) -> None:
    store = registry.store(r.CONFIGMAPS)
    first = await store.create(cm("x"), namespace="default", ctx=ctx())
    first["data"] = {"a": "2"}
    await store.update(first, namespace="default", name="x", ctx=ctx())
    first["data"] = {"a": "3"}
    with pytest.raises(Conflict) as e:
        await store.update(first, namespace="default", name="x", ctx=ctx())
    assert e.value.message == (
        'Operation cannot be fulfilled on configmaps "x": the object has been modified; please '
        "apply your changes to the latest version and try again"
    )


async def test_update_without_resource_version_is_unconditional(registry: Registry) -> None:
    store = registry.store(r.CONFIGMAPS)
    await store.create(cm("x"), namespace="default", ctx=ctx())
    out, created = await store.update(
        cm("x", data={"a": "9"}), namespace="default", name="x", ctx=ctx()
    )
    assert not created
    assert out["data"] == {"a": "9"}


async def test_update_noop_keeps_resource_version(registry: Registry, clock: FakeClock) -> None:
    store = registry.store(r.CONFIGMAPS)
    first = await store.create(cm("x"), namespace="default", ctx=ctx())
    clock.advance(60)
    out, _ = await store.update(first, namespace="default", name="x", ctx=ctx())
    assert out["metadata"]["resourceVersion"] == first["metadata"]["resourceVersion"]
    assert out == first


async def test_update_keeps_uid_and_creation_timestamp(
    registry: Registry, clock: FakeClock
) -> None:
    store = registry.store(r.CONFIGMAPS)
    first = await store.create(cm("x"), namespace="default", ctx=ctx())
    clock.advance(60)
    body = cm("x", data={"b": "2"})
    body["metadata"] = {"name": "x", "creationTimestamp": "2000-01-01T00:00:00Z"}
    out, _ = await store.update(body, namespace="default", name="x", ctx=ctx(field_manager="m2"))
    assert out["metadata"]["uid"] == first["metadata"]["uid"]
    assert out["metadata"]["creationTimestamp"] == first["metadata"]["creationTimestamp"]
    managers = {e["manager"]: e for e in out["metadata"]["managedFields"]}
    assert managers["m2"]["time"] == "2025-01-01T10:01:00Z"


async def test_update_with_other_uid_is_precondition_conflict(registry: Registry) -> None:
    store = registry.store(r.CONFIGMAPS)
    made = await store.create(cm("x"), namespace="default", ctx=ctx())
    body = cm("x")
    body["metadata"] = {"name": "x", "uid": "other"}
    with pytest.raises(Conflict) as e:
        await store.update(body, namespace="default", name="x", ctx=ctx())
    assert e.value.message == (
        'Operation cannot be fulfilled on configmaps "x": StorageError: invalid object, Code: 4, '
        "Key: /registry/core/configmaps/default/x, ResourceVersion: 0, AdditionalErrorMsg: "
        "Precondition failed: UID in precondition: other, UID in object meta: "
        f"{made['metadata']['uid']}"
    )


async def test_patch_changing_uid_is_invalid(registry: Registry) -> None:
    store = registry.store(r.CONFIGMAPS)
    await store.create(cm("x"), namespace="default", ctx=ctx())
    with pytest.raises(Invalid) as e:
        await store.patch(
            namespace="default",
            name="x",
            patch=b'{"metadata":{"uid":"other"}}',
            content_type="application/merge-patch+json",
            ctx=ctx(),
        )
    assert 'metadata.uid: Invalid value: "other": field is immutable' in e.value.message


async def test_update_name_mismatch_is_bad_request(registry: Registry) -> None:
    store = registry.store(r.CONFIGMAPS)
    await store.create(cm("x"), namespace="default", ctx=ctx())
    with pytest.raises(BadRequest) as e:
        await store.update(cm("y"), namespace="default", name="x", ctx=ctx())
    assert e.value.message == "the name of the object (y) does not match the name on the URL (x)"


async def test_update_missing_object_is_not_found(registry: Registry) -> None:
    with pytest.raises(NotFound) as e:
        await registry.store(r.CONFIGMAPS).update(cm("x"), namespace="default", name="x", ctx=ctx())
    assert e.value.message == 'configmaps "x" not found'


async def test_update_creates_when_kind_allows_create_on_update(registry: Registry) -> None:
    store = registry.store(r.LEASES)
    assert store.strategy.allow_create_on_update
    body = {
        "apiVersion": "coordination.k8s.io/v1",
        "kind": "Lease",
        "metadata": {"name": "n1", "namespace": "kube-node-lease"},
        "spec": {"holderIdentity": "n1"},
    }
    out, created = await store.update(body, namespace="kube-node-lease", name="n1", ctx=ctx())
    assert created
    assert out["spec"]["holderIdentity"] == "n1"


async def test_delete_returns_status_for_configmaps(registry: Registry) -> None:
    store = registry.store(r.CONFIGMAPS)
    made = await store.create(cm("x"), namespace="default", ctx=ctx())
    out, finished = await store.delete(namespace="default", name="x", options=None, ctx=ctx())
    assert finished
    assert out == {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Success",
        "details": {"name": "x", "kind": "configmaps", "uid": made["metadata"]["uid"]},
    }
    with pytest.raises(NotFound):
        await store.get(namespace="default", name="x")


async def test_delete_missing_is_not_found(registry: Registry) -> None:
    with pytest.raises(NotFound) as e:
        await registry.store(r.CONFIGMAPS).delete(
            namespace="default", name="nope", options=None, ctx=ctx()
        )
    assert e.value.message == 'configmaps "nope" not found'


async def test_delete_dry_run_keeps_object(registry: Registry) -> None:
    store = registry.store(r.CONFIGMAPS)
    await store.create(cm("x"), namespace="default", ctx=ctx())
    _out, finished = await store.delete(
        namespace="default", name="x", options={"dryRun": ["All"]}, ctx=ctx()
    )
    assert finished
    assert (await store.get(namespace="default", name="x"))["metadata"]["name"] == "x"


async def test_delete_uid_precondition_conflict(registry: Registry) -> None:
    store = registry.store(r.CONFIGMAPS)
    made = await store.create(cm("x"), namespace="default", ctx=ctx())
    with pytest.raises(Conflict) as e:
        await store.delete(
            namespace="default",
            name="x",
            options={"preconditions": {"uid": "u1"}},
            ctx=ctx(),
        )
    assert e.value.message == (
        f'Operation cannot be fulfilled on ConfigMap "x": the UID in the precondition (u1) does '
        f"not match the UID in record ({made['metadata']['uid']}). The object might have been "
        "deleted and then recreated"
    )


async def test_finalizers_hold_object_until_update_empties_them(registry: Registry) -> None:
    store = registry.store(r.CONFIGMAPS)
    body = cm("x")
    body["metadata"] = {"name": "x", "finalizers": ["example.com/hold"]}
    await store.create(body, namespace="default", ctx=ctx())
    out, finished = await store.delete(namespace="default", name="x", options=None, ctx=ctx())
    assert not finished
    assert out["metadata"]["deletionTimestamp"] == "2025-01-01T10:00:00Z"
    assert out["metadata"]["deletionGracePeriodSeconds"] == 0
    again, finished = await store.delete(namespace="default", name="x", options=None, ctx=ctx())
    assert not finished
    assert again["metadata"]["resourceVersion"] == out["metadata"]["resourceVersion"]
    out["metadata"]["finalizers"] = []
    await store.update(out, namespace="default", name="x", ctx=ctx())
    with pytest.raises(NotFound):
        await store.get(namespace="default", name="x")


@pytest.mark.parametrize(
    ("policy", "finalizer"),
    [
        pytest.param("Orphan", "orphan", id="orphan"),
        pytest.param("Foreground", "foregroundDeletion", id="foreground"),
    ],
)
async def test_delete_propagation_adds_gc_finalizer(
    registry: Registry, policy: str, finalizer: str
) -> None:
    store = registry.store(r.CONFIGMAPS)
    await store.create(cm("x"), namespace="default", ctx=ctx())
    out, finished = await store.delete(
        namespace="default", name="x", options={"propagationPolicy": policy}, ctx=ctx()
    )
    assert not finished
    assert out["metadata"]["finalizers"] == [finalizer]
    assert out["metadata"]["deletionTimestamp"]


async def test_delete_bad_propagation_policy_is_invalid(registry: Registry) -> None:
    store = registry.store(r.CONFIGMAPS)
    await store.create(cm("x"), namespace="default", ctx=ctx())
    with pytest.raises(Invalid) as e:
        await store.delete(
            namespace="default", name="x", options={"propagationPolicy": "Sideways"}, ctx=ctx()
        )
    assert e.value.message == (
        'DeleteOptions.meta.k8s.io "" is invalid: propagationPolicy: Unsupported value: '
        '"Sideways": supported values: "Foreground", "Background", "Orphan", "nil"'
    )


async def test_namespace_delete_terminates_then_finalize_then_delete(registry: Registry) -> None:
    ns = registry.store(r.NAMESPACES)
    await ns.create(
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "work"}},
        namespace="",
        ctx=ctx(),
    )
    out, finished = await ns.delete(namespace="", name="work", options=None, ctx=ctx())
    assert not finished
    assert out["status"]["phase"] == "Terminating"
    assert out["metadata"]["deletionTimestamp"] == "2025-01-01T10:00:00Z"
    assert out["spec"]["finalizers"] == ["kubernetes"]
    out["spec"]["finalizers"] = []
    fin, _ = await ns.update(out, namespace="", name="work", ctx=ctx(), subresource="finalize")
    assert "finalizers" not in fin["spec"]
    gone, finished = await ns.delete(namespace="", name="work", options=None, ctx=ctx())
    assert finished
    assert gone["metadata"]["name"] == "work"
    with pytest.raises(NotFound):
        await ns.get(namespace="", name="work")


async def test_delete_collection_deletes_matching(registry: Registry) -> None:
    store = registry.store(r.CONFIGMAPS)
    for name, tier in (("a", "fe"), ("b", "be"), ("c", "fe")):
        body = cm(name)
        body["metadata"] = {"name": name, "labels": {"tier": tier}}
        await store.create(body, namespace="default", ctx=ctx())
    out = await store.delete_collection(
        namespace="default", label_selector="tier=fe", field_selector="", options=None, ctx=ctx()
    )
    assert out["kind"] == "ConfigMapList"
    assert [i["metadata"]["name"] for i in out["items"]] == ["a", "c"]
    left = await store.list(namespace="default")
    assert [i["metadata"]["name"] for i in left["items"]] == ["b"]


async def test_no_new_finalizers_once_deleting(registry: Registry) -> None:
    store = registry.store(r.CONFIGMAPS)
    body = cm("x")
    body["metadata"] = {"name": "x", "finalizers": ["example.com/a"]}
    await store.create(body, namespace="default", ctx=ctx())
    out, _ = await store.delete(namespace="default", name="x", options=None, ctx=ctx())
    out["metadata"]["finalizers"] = ["example.com/a", "example.com/b"]
    with pytest.raises(Invalid) as e:
        await store.update(out, namespace="default", name="x", ctx=ctx())
    assert e.value.message == (
        'ConfigMap "x" is invalid: metadata.finalizers: Forbidden: no new finalizers can be '
        'added if the object is being deleted, found new finalizers []string{"example.com/b"}'
    )


async def test_delete_resource_version_precondition_conflict(registry: Registry) -> None:
    store = registry.store(r.CONFIGMAPS)
    made = await store.create(cm("x"), namespace="default", ctx=ctx())
    rv = made["metadata"]["resourceVersion"]
    with pytest.raises(Conflict) as e:
        await store.delete(
            namespace="default",
            name="x",
            options={"preconditions": {"resourceVersion": "1"}},
            ctx=ctx(),
        )
    assert e.value.message == (
        'Operation cannot be fulfilled on ConfigMap "x": the ResourceVersion in the '
        f"precondition (1) does not match the ResourceVersion in record ({rv}). The object "
        "might have been modified"
    )
    _out, finished = await store.delete(
        namespace="default", name="x", options={"preconditions": {"resourceVersion": rv}}, ctx=ctx()
    )
    assert finished


async def test_delete_legacy_orphan_dependents_adds_orphan_finalizer(registry: Registry) -> None:
    store = registry.store(r.CONFIGMAPS)
    await store.create(cm("x"), namespace="default", ctx=ctx())
    out, finished = await store.delete(
        namespace="default", name="x", options={"orphanDependents": True}, ctx=ctx()
    )
    assert not finished
    assert out["metadata"]["finalizers"] == ["orphan"]


async def test_update_namespace_mismatch_is_bad_request(registry: Registry) -> None:
    store = registry.store(r.CONFIGMAPS)
    await store.create(cm("x"), namespace="default", ctx=ctx())
    body = cm("x")
    body["metadata"] = {"name": "x", "namespace": "kube-system"}
    with pytest.raises(BadRequest) as e:
        await store.update(body, namespace="default", name="x", ctx=ctx())
    assert e.value.message == (
        "the namespace of the object (kube-system) does not match the namespace on the request "
        "(default)"
    )
