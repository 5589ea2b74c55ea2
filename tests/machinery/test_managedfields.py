"""Server-side apply and managedFields tracking, checked against upstream's FieldsV1 shapes,
conflict texts and ownership rules."""

from __future__ import annotations

import copy
from typing import Any

import pytest
import yaml

from kubeling.machinery import managedfields as mf
from kubeling.machinery import schema
from kubeling.machinery.errors import BadRequest, Conflict
from kubeling.machinery.types import GroupVersionKind, Obj
from tests.shared import TUTORIAL_DIR

CM = schema.for_kind(GroupVersionKind(group="", version="v1", kind="ConfigMap"))
POD = schema.for_kind(GroupVersionKind(group="", version="v1", kind="Pod"))
DEPLOY = schema.for_kind(GroupVersionKind(group="apps", version="v1", kind="Deployment"))
STS = schema.for_kind(GroupVersionKind(group="apps", version="v1", kind="StatefulSet"))

T1 = "2026-12-04T10:00:00Z"
T2 = "2026-12-04T10:05:00Z"
T3 = "2026-12-04T10:10:00Z"


def stored(obj: Obj, rv: str = "1") -> Obj:
    """What the store adds to a written object."""
    out = copy.deepcopy(obj)
    out["metadata"].update(uid="u-1", resourceVersion=rv, creationTimestamp=T1)
    return out


def entries(obj: Obj) -> list[dict[str, Any]]:
    return list(obj["metadata"].get("managedFields") or [])


def by_manager(obj: Obj) -> dict[str, dict[str, Any]]:
    return {e["manager"]: e for e in entries(obj)}


def configmap(**data: str) -> Obj:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "cm1", "namespace": "default", "labels": {"app": "demo"}},
        "data": dict(data),
    }


def deployment(*, replicas: int | None = 2, image: str = "nginx:1.27") -> Obj:
    spec: Obj = {
        "selector": {"matchLabels": {"app": "web"}},
        "template": {
            "metadata": {"labels": {"app": "web"}},
            "spec": {"containers": [{"name": "nginx", "image": image}]},
        },
    }
    if replicas is not None:
        spec["replicas"] = replicas
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "default"},
        "spec": spec,
    }


def ssa(live: Obj | None, applied: Obj, **kw: Any) -> Obj:
    kw.setdefault("manager", "kubectl")
    kw.setdefault("force", False)
    kw.setdefault("now", T2)
    kind = applied["kind"]
    kw.setdefault("schema", {"ConfigMap": CM, "Pod": POD, "Deployment": DEPLOY}.get(kind, STS))
    kw.setdefault("api_version", applied["apiVersion"])
    return mf.apply(live, applied, **kw)


# -- field sets and FieldsV1 -----------------------------------------------------------------

POD_OBJ: Obj = {
    "apiVersion": "v1",
    "kind": "Pod",
    "metadata": {"name": "p", "labels": {"app": "web"}, "finalizers": ["a/b"]},
    "spec": {
        "containers": [
            {
                "name": "web",
                "image": "nginx",
                "ports": [
                    {"containerPort": 8080, "protocol": "TCP"},
                    {"containerPort": 80},
                    {"containerPort": 443, "protocol": "UDP"},
                ],
                "args": ["-v"],
            }
        ],
        "nodeSelector": {},
        "tolerations": [{"key": "k", "operator": "Exists"}],
    },
}

POD_FIELDS = {
    "f:apiVersion": {},
    "f:kind": {},
    "f:metadata": {
        "f:finalizers": {'v:"a/b"': {}},
        "f:labels": {"f:app": {}},
        "f:name": {},
    },
    "f:spec": {
        "f:containers": {
            'k:{"name":"web"}': {
                ".": {},
                "f:args": {},
                "f:image": {},
                "f:name": {},
                "f:ports": {
                    'k:{"containerPort":80,"protocol":"TCP"}': {".": {}, "f:containerPort": {}},
                    'k:{"containerPort":443,"protocol":"UDP"}': {
                        ".": {},
                        "f:containerPort": {},
                        "f:protocol": {},
                    },
                    'k:{"containerPort":8080,"protocol":"TCP"}': {
                        ".": {},
                        "f:containerPort": {},
                        "f:protocol": {},
                    },
                },
            }
        },
        "f:nodeSelector": {},
        "f:tolerations": {},
    },
}


@pytest.mark.parametrize(
    ("obj", "node", "expected"),
    [
        pytest.param(
            configmap(a="1", c="3"),
            CM,
            {
                "f:apiVersion": {},
                "f:data": {"f:a": {}, "f:c": {}},
                "f:kind": {},
                "f:metadata": {"f:labels": {"f:app": {}}, "f:name": {}, "f:namespace": {}},
            },
            id="configmap-map-entries",
        ),
        pytest.param(POD_OBJ, POD, POD_FIELDS, id="pod-list-maps-sets-atomic-lists"),
        pytest.param(
            {"spec": {"replicas": None, "selector": {"matchLabels": {"a": "b"}}, "strategy": {}}},
            DEPLOY,
            {"f:spec": {"f:replicas": {}, "f:selector": {}, "f:strategy": {}}},
            id="null-empty-and-atomic-struct-are-leaves",
        ),
        pytest.param(
            {"spec": {"template": {"spec": {"containers": []}}}},
            DEPLOY,
            {},
            id="empty-list-map-owns-nothing",
        ),
    ],
)
def test_fields_of_matches_upstream_fieldsv1(obj: Obj, node: Any, expected: Obj) -> None:
    fs = mf.fields_of(obj, schema=node)
    encoded = mf.encode_fields_v1(fs)
    assert encoded == expected
    # upstream's order: "." first, then fields by name, keys by value (80 < 443 < 8080).
    assert list_keys(encoded) == list_keys(expected)


def list_keys(node: Obj) -> list[Any]:
    return [(k, list_keys(v)) for k, v in node.items()]


def test_statefulset_volume_claim_templates_are_one_atomic_field() -> None:
    sts = {
        "spec": {
            "volumeClaimTemplates": [
                {"metadata": {"name": "data"}, "spec": {"accessModes": ["ReadWriteOnce"]}}
            ]
        }
    }
    assert mf.encode_fields_v1(mf.fields_of(sts, schema=STS)) == {
        "f:spec": {"f:volumeClaimTemplates": {}}
    }


def test_decode_canonicalises_keys_and_round_trips() -> None:
    raw = {
        "f:spec": {
            "f:ports": {
                'k:{ "protocol": "TCP", "port": 80 }': {".": {}, "f:port": {}},
            }
        }
    }
    fs = mf.decode_fields_v1(raw)
    assert fs.strings() == [
        '.spec.ports[port=80,protocol="TCP"]',
        '.spec.ports[port=80,protocol="TCP"].port',
    ]
    encoded = mf.encode_fields_v1(fs)
    assert encoded == {
        "f:spec": {"f:ports": {'k:{"port":80,"protocol":"TCP"}': {".": {}, "f:port": {}}}}
    }
    assert mf.decode_fields_v1(encoded) == fs
    with pytest.raises(ValueError):
        mf.decode_fields_v1({"x:nope": {}})


def test_set_operations_follow_upstream_membership() -> None:
    a = mf.FieldSet.from_paths(("f:spec", "f:replicas"), ("f:spec", "f:paused"))
    b = mf.FieldSet.from_paths(("f:spec", "f:replicas"))
    assert a.difference(b).strings() == [".spec.paused"]
    assert a.intersection(b) == b
    assert b.union(a) == a
    spec = mf.FieldSet.from_paths(("f:spec",))
    # Difference is path by path; RecursiveDifference drops the subtree of a member.
    assert a.difference(spec) == a
    assert a.recursive_difference(spec).empty()


# -- Update tracking -------------------------------------------------------------------------


def test_create_records_the_creator_with_upstream_shapes() -> None:
    new = stored(configmap(a="1"))
    mf.track_update(None, new, manager="kubectl-create", schema=CM, api_version="v1", now=T1)
    assert entries(new) == [
        {
            "manager": "kubectl-create",
            "operation": "Update",
            "apiVersion": "v1",
            "time": T1,
            "fieldsType": "FieldsV1",
            "fieldsV1": {
                "f:data": {".": {}, "f:a": {}},
                "f:metadata": {"f:labels": {".": {}, "f:app": {}}},
            },
        }
    ]


def test_update_moves_changed_fields_and_keeps_untouched_managers() -> None:
    d = stored(deployment())
    mf.track_update(None, d, manager="kubectl-create", schema=DEPLOY, api_version="apps/v1", now=T1)
    created = copy.deepcopy(entries(d))
    scaled = copy.deepcopy(d)
    scaled["spec"]["replicas"] = 5
    mf.track_update(
        d, scaled, manager="kube-controller-manager", schema=DEPLOY, api_version="apps/v1", now=T2
    )
    got = by_manager(scaled)
    assert got["kube-controller-manager"]["fieldsV1"] == {"f:spec": {"f:replicas": {}}}
    assert got["kube-controller-manager"]["time"] == T2
    creator = got["kubectl-create"]
    assert creator["time"] == T1  # losing a field does not touch the time
    assert "f:replicas" not in creator["fieldsV1"]["f:spec"]
    assert "f:selector" in creator["fieldsV1"]["f:spec"]
    assert d["metadata"]["managedFields"] == created  # old is not modified

    # A write that changes nothing keeps managedFields byte for byte.
    again = copy.deepcopy(scaled)
    mf.track_update(
        scaled, again, manager="kubectl-edit", schema=DEPLOY, api_version="apps/v1", now=T3
    )
    assert entries(again) == entries(scaled)


def test_update_removing_the_only_field_drops_the_entry() -> None:
    old = stored(configmap(a="1"))
    old["metadata"]["managedFields"] = [
        {
            "manager": "other",
            "operation": "Update",
            "apiVersion": "v1",
            "time": T1,
            "fieldsType": "FieldsV1",
            "fieldsV1": {"f:data": {"f:a": {}}},
        }
    ]
    new = copy.deepcopy(old)
    del new["data"]["a"]
    mf.track_update(old, new, manager="kubectl-edit", schema=CM, api_version="v1", now=T2)
    assert "managedFields" not in new["metadata"]


@pytest.mark.parametrize("reset", [[], [{}]], ids=["empty-list", "one-empty-entry"])
def test_update_with_empty_managed_fields_resets_them(reset: list[Any]) -> None:
    old = stored(configmap(a="1"))
    mf.track_update(None, old, manager="kubectl-create", schema=CM, api_version="v1", now=T1)
    new = copy.deepcopy(old)
    new["metadata"]["managedFields"] = reset
    mf.track_update(old, new, manager="kubectl-patch", schema=CM, api_version="v1", now=T2)
    assert "managedFields" not in new["metadata"]


def test_update_that_sends_managed_fields_replaces_them() -> None:
    old = stored(configmap(a="1"))
    mf.track_update(None, old, manager="kubectl-create", schema=CM, api_version="v1", now=T1)
    sent = [
        {
            "manager": "kubectl",
            "operation": "Apply",
            "apiVersion": "v1",
            "time": T1,
            "fieldsType": "FieldsV1",
            "fieldsV1": {"f:data": {"f:a": {}}},
        }
    ]
    new = copy.deepcopy(old)
    new["metadata"]["managedFields"] = copy.deepcopy(sent)
    mf.track_update(old, new, manager="kubectl", schema=CM, api_version="v1", now=T2)
    assert entries(new) == sent


def test_subresource_writes_keep_live_managed_fields_and_name_the_subresource() -> None:
    old = stored(deployment())
    mf.track_update(
        None, old, manager="kubectl-create", schema=DEPLOY, api_version="apps/v1", now=T1
    )
    new = copy.deepcopy(old)
    new["metadata"]["managedFields"] = []  # ignored through a subresource
    new["status"] = {"replicas": 2}
    mf.track_update(
        old,
        new,
        manager="kube-controller-manager",
        schema=DEPLOY,
        api_version="apps/v1",
        now=T2,
        subresource="status",
    )
    got = by_manager(new)
    assert set(got) == {"kubectl-create", "kube-controller-manager"}
    assert got["kube-controller-manager"]["subresource"] == "status"
    assert got["kube-controller-manager"]["fieldsV1"] == {"f:status": {"f:replicas": {}}}


def test_more_than_ten_update_managers_merge_into_ancient_changes() -> None:
    obj = stored(configmap())
    for i in range(11):
        nxt = copy.deepcopy(obj)
        nxt["data"][f"k{i}"] = "v"
        mf.track_update(
            obj, nxt, manager=f"m{i}", schema=CM, api_version="v1", now=f"2026-12-04T10:{i:02}:00Z"
        )
        obj = nxt
    got = by_manager(obj)
    assert len(got) == 10
    assert "m0" not in got and "m1" not in got
    ancient = got["ancient-changes"]
    assert ancient["fieldsV1"]["f:data"] == {"f:k0": {}, "f:k1": {}}
    assert ancient["time"] == "2026-12-04T10:01:00Z"


# -- Apply -----------------------------------------------------------------------------------


def test_apply_creates_with_the_applied_field_set() -> None:
    out = ssa(None, configmap(a="1", c="3"))
    assert out["data"] == {"a": "1", "c": "3"}
    assert entries(out) == [
        {
            "manager": "kubectl",
            "operation": "Apply",
            "apiVersion": "v1",
            "time": T2,
            "fieldsType": "FieldsV1",
            "fieldsV1": {
                "f:data": {"f:a": {}, "f:c": {}},
                "f:metadata": {"f:labels": {"f:app": {}}},
            },
        }
    ]


def test_apply_twice_returns_the_live_object_unchanged() -> None:
    live = stored(ssa(None, deployment()))
    again = ssa(live, deployment(), now=T3)
    assert again == live
    assert again is not live


def test_reapplying_a_non_canonical_quantity_changes_nothing() -> None:
    # The store keeps 1536Mi for 1.5Gi; upstream merges typed values, equal by value.
    d = deployment()
    d["spec"]["template"]["spec"]["containers"][0]["resources"] = {
        "limits": {"memory": "1.5Gi", "cpu": "1000m"}
    }
    live = stored(ssa(None, d))
    limits = live["spec"]["template"]["spec"]["containers"][0]["resources"]["limits"]
    assert limits == {"memory": "1536Mi", "cpu": "1"}
    again = ssa(live, d, now=T3)
    assert again == live


def test_apply_removes_a_field_the_manager_no_longer_applies() -> None:
    live = stored(ssa(None, configmap(a="1", c="3")))
    out = ssa(live, configmap(a="1"), now=T3)
    assert out["data"] == {"a": "1"}
    assert by_manager(out)["kubectl"]["fieldsV1"]["f:data"] == {"f:a": {}}
    assert by_manager(out)["kubectl"]["time"] == T3


def test_apply_keeps_a_dropped_field_another_manager_owns() -> None:
    live = stored(ssa(None, configmap(a="1", c="3")))
    live = stored(ssa(live, configmap(c="3"), manager="other"), rv="2")
    out = ssa(live, configmap(a="1"), now=T3)
    assert out["data"] == {"a": "1", "c": "3"}
    assert by_manager(out)["other"]["fieldsV1"]["f:data"] == {"f:c": {}}


def test_apply_keeps_fields_nobody_owns_while_pruning() -> None:
    live = stored(ssa(None, deployment()))
    # The server defaulted a field inside the container: no manager owns it.
    live["spec"]["template"]["spec"]["containers"][0]["imagePullPolicy"] = "IfNotPresent"
    live["spec"]["replicas"] = 2
    out = ssa(live, deployment(replicas=None), now=T3)
    assert "replicas" not in out["spec"]
    assert out["spec"]["template"]["spec"]["containers"][0]["imagePullPolicy"] == "IfNotPresent"


def test_two_appliers_share_a_field_with_equal_values() -> None:
    live = stored(ssa(None, configmap(a="1")))
    out = ssa(live, configmap(a="1"), manager="other")
    got = by_manager(out)
    assert got["kubectl"]["fieldsV1"]["f:data"] == {"f:a": {}}
    assert got["other"]["fieldsV1"]["f:data"] == {"f:a": {}}
    # Dropping it from one applier keeps the value: the other still owns it.
    out2 = ssa(stored(out, rv="2"), configmap(), manager="other")
    assert out2["data"] == {"a": "1"}


def deployment_scaled_by_controller() -> Obj:
    live = stored(ssa(None, deployment()))
    scaled = copy.deepcopy(live)
    scaled["spec"]["replicas"] = 5
    mf.track_update(
        live,
        scaled,
        manager="kube-controller-manager",
        schema=DEPLOY,
        api_version="apps/v1",
        now=T2,
    )
    return scaled


def test_apply_conflict_names_the_update_manager_and_field() -> None:
    live = deployment_scaled_by_controller()
    with pytest.raises(Conflict) as info:
        ssa(live, deployment(replicas=3), now=T3)
    status = info.value.to_status()
    assert status["code"] == 409 and status["reason"] == "Conflict"
    assert status["message"] == (
        'Apply failed with 1 conflict: conflict with "kube-controller-manager" using apps/v1:'
        " .spec.replicas"
    )
    assert status["details"]["causes"] == [
        {
            "reason": "FieldManagerConflict",
            "message": 'conflict with "kube-controller-manager" using apps/v1',
            "field": ".spec.replicas",
        }
    ]


def test_apply_with_force_takes_ownership() -> None:
    live = deployment_scaled_by_controller()
    out = ssa(live, deployment(replicas=3), force=True, now=T3)
    assert out["spec"]["replicas"] == 3
    got = by_manager(out)
    assert "kube-controller-manager" not in got  # its only field moved
    assert got["kubectl"]["fieldsV1"]["f:spec"]["f:replicas"] == {}


def test_apply_without_the_contested_field_leaves_it_to_the_controller() -> None:
    live = deployment_scaled_by_controller()
    out = ssa(live, deployment(replicas=None), now=T3)
    assert out["spec"]["replicas"] == 5
    assert by_manager(out)["kube-controller-manager"]["fieldsV1"] == {"f:spec": {"f:replicas": {}}}


def test_conflicts_with_several_fields_and_managers_list_each_path() -> None:
    live = stored(ssa(None, deployment()))
    ci = deployment(replicas=None, image="nginx:1.28")
    live = stored(ssa(live, ci, manager="ci", force=True), rv="2")
    with pytest.raises(Conflict) as info:
        ssa(live, deployment(replicas=9, image="nginx:1.29"), manager="someone")
    assert info.value.message == (
        'Apply failed with 2 conflicts: conflicts with "ci":\n'
        '- .spec.template.spec.containers[name="nginx"].image\n'
        'conflicts with "kubectl":\n'
        "- .spec.replicas"
    )
    assert [c.field for c in info.value.causes] == [
        '.spec.template.spec.containers[name="nginx"].image',
        ".spec.replicas",
    ]


def test_apply_merges_list_maps_by_key_and_replaces_atomic_lists() -> None:
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "p", "namespace": "default"},
        "spec": {
            "containers": [
                {"name": "a", "image": "x", "args": ["1", "2"], "ports": [{"containerPort": 80}]}
            ]
        },
    }
    live = stored(ssa(None, pod))
    live["spec"]["containers"][0]["terminationMessagePath"] = "/dev/termination-log"
    live["spec"]["containers"][0]["ports"][0]["protocol"] = "TCP"
    mine = copy.deepcopy(pod)
    mine["spec"]["containers"] = [{"name": "b", "image": "y"}]
    live = stored(ssa(live, mine, manager="sidecar-injector"), rv="2")
    assert [c["name"] for c in live["spec"]["containers"]] == ["a", "b"]
    changed = copy.deepcopy(pod)
    changed["spec"]["containers"][0]["args"] = ["3"]
    out = ssa(live, changed, now=T3)
    a, b = out["spec"]["containers"]
    assert a["args"] == ["3"]
    assert a["terminationMessagePath"] == "/dev/termination-log"
    assert a["ports"] == [{"containerPort": 80, "protocol": "TCP"}]
    assert b == {"name": "b", "image": "y"}


def test_apply_replaces_statefulset_volume_claim_templates_whole() -> None:
    def sts(size: str) -> Obj:
        return {
            "apiVersion": "apps/v1",
            "kind": "StatefulSet",
            "metadata": {"name": "web", "namespace": "default"},
            "spec": {
                "volumeClaimTemplates": [
                    {
                        "metadata": {"name": "data"},
                        "spec": {"resources": {"requests": {"storage": size}}},
                    }
                ]
            },
        }

    live = stored(ssa(None, sts("1Gi")))
    live["spec"]["volumeClaimTemplates"][0]["spec"]["volumeMode"] = "Filesystem"
    out = ssa(live, sts("2Gi"), now=T3)
    assert out["spec"]["volumeClaimTemplates"] == sts("2Gi")["spec"]["volumeClaimTemplates"]
    assert by_manager(out)["kubectl"]["fieldsV1"] == {"f:spec": {"f:volumeClaimTemplates": {}}}


def test_apply_null_unsets_the_field_but_owns_it() -> None:
    live = stored(ssa(None, deployment(replicas=4), manager="first"))
    applied = deployment()
    applied["spec"]["replicas"] = None
    out = ssa(live, applied, force=True, now=T3)
    assert "replicas" not in out["spec"]
    assert by_manager(out)["kubectl"]["fieldsV1"]["f:spec"]["f:replicas"] == {}


def test_apply_status_is_not_owned_when_status_is_reset() -> None:
    applied = deployment()
    applied["status"] = {"replicas": 7}
    out = ssa(None, applied, ignored=mf.reset_fields("", status_subresource=True))
    assert "f:status" not in by_manager(out)["kubectl"]["fieldsV1"]


def test_client_side_apply_then_server_side_apply_takes_over_without_conflict() -> None:
    manifest = configmap(a="1", c="3")
    last_applied = (
        '{"apiVersion":"v1","data":{"a":"1","c":"3"},"kind":"ConfigMap",'
        '"metadata":{"annotations":{},"labels":{"app":"demo"},"name":"cm1",'
        '"namespace":"default"}}\n'
    )
    created = copy.deepcopy(manifest)
    created["metadata"]["annotations"] = {mf.LAST_APPLIED_ANNOTATION: last_applied}
    created = stored(created)
    mf.track_update(
        None, created, manager="kubectl-client-side-apply", schema=CM, api_version="v1", now=T1
    )
    changed = configmap(a="2", c="3")
    # Another applier conflicts with the client-side-apply manager...
    with pytest.raises(Conflict) as info:
        ssa(created, changed, manager="helm")
    assert '"kubectl-client-side-apply" using v1' in info.value.message
    # ...but kubectl may take over what its annotation still describes.
    out = ssa(created, changed, now=T3)
    assert out["data"] == {"a": "2", "c": "3"}
    got = by_manager(out)
    assert "f:a" not in got["kubectl-client-side-apply"]["fieldsV1"]["f:data"]
    assert got["kubectl"]["fieldsV1"]["f:data"] == {"f:a": {}, "f:c": {}}
    # The annotation follows the applied configuration (sorted keys, no annotations key
    # when the configuration has none, trailing newline).
    annotation = out["metadata"]["annotations"][mf.LAST_APPLIED_ANNOTATION]
    assert annotation == (
        '{"apiVersion":"v1","data":{"a":"2","c":"3"},"kind":"ConfigMap",'
        '"metadata":{"labels":{"app":"demo"},"name":"cm1","namespace":"default"}}\n'
    )


def test_last_applied_takeover_is_only_for_the_kubectl_manager_and_matching_values() -> None:
    last_applied = (
        '{"apiVersion":"v1","data":{"a":"1"},"kind":"ConfigMap","metadata":{"name":"cm1"}}'
    )
    created = stored(configmap(a="1", b="2"))
    created["metadata"]["annotations"] = {mf.LAST_APPLIED_ANNOTATION: last_applied}
    mf.track_update(
        None, created, manager="kubectl-client-side-apply", schema=CM, api_version="v1", now=T1
    )
    with pytest.raises(Conflict):
        ssa(created, configmap(a="2"), manager="kubectl-other")
    # b was never in the annotation: still a conflict for kubectl, and only b is reported.
    with pytest.raises(Conflict) as info:
        ssa(created, configmap(a="2", b="3"))
    assert [c.field for c in info.value.causes] == [".data.b"]


@pytest.mark.parametrize(
    ("applied", "message"),
    [
        pytest.param(
            {**configmap(), "apiVersion": "v2"},
            "Incorrect version specified in apply patch. Specified patch version: v2, expected: v1",
            id="version",
        ),
        pytest.param(
            {**configmap(), "metadata": {"name": "cm1", "managedFields": []}},
            "metadata.managedFields must be nil",
            id="managed-fields",
        ),
    ],
)
def test_apply_rejects_bad_configurations(applied: Obj, message: str) -> None:
    with pytest.raises(BadRequest) as info:
        mf.apply(None, applied, manager="m", force=False, schema=CM, api_version="v1", now=T1)
    assert info.value.message == message


def test_apply_rejects_a_list_map_item_without_its_key() -> None:
    svc_schema = schema.for_kind(GroupVersionKind(group="", version="v1", kind="Service"))
    svc = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "s", "namespace": "default"},
        "spec": {"ports": [{"name": "http"}]},
    }
    with pytest.raises(mf.UntypedValueError) as info:
        mf.apply(None, svc, manager="m", force=False, schema=svc_schema, api_version="v1", now=T1)
    assert info.value.code == 500 and info.value.reason == ""
    assert info.value.message == (
        "failed to create typed patch object (default/s; /v1, Kind=Service): .spec.ports: "
        'element 0: associative list with keys has an element that omits key field "port" '
        "(and doesn't have default value)"
    )


def test_apply_does_not_modify_its_inputs() -> None:
    live = deployment_scaled_by_controller()
    applied = deployment(replicas=3)
    live_copy, applied_copy = copy.deepcopy(live), copy.deepcopy(applied)
    out = ssa(live, applied, force=True)
    assert live == live_copy and applied == applied_copy
    out["spec"]["template"]["spec"]["containers"][0]["image"] = "changed"
    assert live == live_copy and applied == applied_copy


TUTORIAL = TUTORIAL_DIR


def tutorial_documents() -> list[Any]:
    if not TUTORIAL.is_dir():
        return [pytest.param(None, id="no-tutorial", marks=pytest.mark.skip("no tutorial"))]
    out = []
    for path in sorted(TUTORIAL.glob("*.yaml")):
        for i, doc in enumerate(yaml.safe_load_all(path.read_text())):
            if doc:
                out.append(pytest.param(doc, id=f"{path.stem}-{i}-{doc['kind']}"))
    return out


@pytest.mark.parametrize("doc", tutorial_documents())
def test_tutorial_manifests_apply_twice_as_a_no_op(doc: Obj) -> None:
    group, _, version = doc["apiVersion"].rpartition("/")
    node = schema.for_kind(GroupVersionKind(group=group, version=version, kind=doc["kind"]))
    assert node is not None
    doc["metadata"].setdefault("namespace", "default")
    first = mf.apply(
        None,
        doc,
        manager="kubectl",
        force=False,
        schema=node,
        api_version=doc["apiVersion"],
        now=T1,
    )
    (entry,) = entries(first)
    assert mf.encode_fields_v1(mf.decode_fields_v1(entry["fieldsV1"])) == entry["fieldsV1"]
    live = stored(first)
    again = mf.apply(
        live,
        doc,
        manager="kubectl",
        force=False,
        schema=node,
        api_version=doc["apiVersion"],
        now=T2,
    )
    assert again == live


def test_untyped_errors_name_the_item_by_its_key() -> None:
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "p", "namespace": "default"},
        "spec": {"containers": [{"name": "c", "image": "x", "env": [{"value": "1"}]}]},
    }
    with pytest.raises(mf.UntypedValueError) as info:
        ssa(None, pod)
    assert info.value.message == (
        "failed to create typed patch object (default/p; /v1, Kind=Pod): "
        '.spec.containers[name="c"].env: element 0: associative list with keys has an '
        'element that omits key field "name" (and doesn\'t have default value)'
    )
