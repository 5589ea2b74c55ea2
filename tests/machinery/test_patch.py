"""JSON patch, merge patch and strategic merge patch against upstream's semantics.

The strategic cases are built from what kubectl sends: client-side apply's three-way
patches (``$setElementOrder``, ``$patch: delete``, ``$retainKeys``, ``null``), ``kubectl
edit`` diffs and ``kubectl patch`` bodies.
"""

from __future__ import annotations

from typing import Any

import pytest

from kubeling.machinery import errors, schema
from kubeling.machinery.objects import deep_copy
from kubeling.machinery.patch import (
    REJECTED,
    JSONPatchFailure,
    PatchApplyError,
    json_patch,
    merge_patch,
    strategic_merge_patch,
)
from kubeling.machinery.types import GroupVersionKind

POD = schema.for_kind(GroupVersionKind(group="", version="v1", kind="Pod"))
STS = schema.for_kind(GroupVersionKind(group="apps", version="v1", kind="StatefulSet"))
DEPLOY = schema.for_kind(GroupVersionKind(group="apps", version="v1", kind="Deployment"))
CM = schema.for_kind(GroupVersionKind(group="", version="v1", kind="ConfigMap"))


def _pod(**spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": "web-0",
            "namespace": "default",
            "labels": {"app": "web", "tier": "fe"},
            "finalizers": ["a.example.com/x", "b.example.com/y"],
        },
        "spec": spec
        or {
            "containers": [
                {
                    "name": "nginx",
                    "image": "nginx:1.25",
                    "args": ["--one", "--two"],
                    "ports": [{"containerPort": 80, "name": "web"}],
                    "env": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}],
                },
                {"name": "sidecar", "image": "busybox"},
            ],
            "volumes": [{"name": "data", "emptyDir": {}}],
        },
    }


def _sts_template(spec: dict[str, Any]) -> dict[str, Any]:
    return {"spec": {"template": {"spec": spec}}}


# -- strategic merge patch -----------------------------------------------------------------------


SMP_CASES = [
    pytest.param(
        _pod(),
        {"metadata": {"labels": {"tier": None}}},
        lambda out: out["metadata"]["labels"] == {"app": "web"},
        id="null-deletes-label",
    ),
    pytest.param(
        _pod(),
        {"metadata": {"labels": {"$patch": "replace", "only": "this"}}},
        lambda out: out["metadata"]["labels"] == {"only": "this"},
        id="patch-replace-of-map",
    ),
    pytest.param(
        _pod(),
        {"metadata": {"labels": {"$patch": "delete"}}},
        lambda out: out["metadata"]["labels"] == {},
        id="patch-delete-of-map-empties-it",
    ),
    pytest.param(
        _pod(),
        {
            "spec": {
                "$setElementOrder/containers": [{"name": "nginx"}],
                "containers": [
                    {"name": "nginx", "image": "nginx:1.27", "ports": None},
                    {"name": "sidecar", "$patch": "delete"},
                ],
            }
        },
        lambda out: (
            out["spec"]["containers"]
            == [
                {
                    "name": "nginx",
                    "image": "nginx:1.27",
                    "args": ["--one", "--two"],
                    "env": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}],
                }
            ]
        ),
        id="apply-deletes-container-by-key-and-nulls-ports",
    ),
    pytest.param(
        _pod(),
        {
            "spec": {
                "$setElementOrder/containers": [{"name": "sidecar"}, {"name": "nginx"}],
                "containers": [{"name": "nginx", "image": "nginx:1.27"}],
            }
        },
        lambda out: (
            [c["name"] for c in out["spec"]["containers"]] == ["sidecar", "nginx"]
            and out["spec"]["containers"][1]["image"] == "nginx:1.27"
            and out["spec"]["containers"][1]["args"] == ["--one", "--two"]
        ),
        id="set-element-order-reorders-merged-list",
    ),
    pytest.param(
        _pod(),
        {"spec": {"containers": [{"name": "extra", "image": "pause"}]}},
        lambda out: [c["name"] for c in out["spec"]["containers"]] == ["extra", "nginx", "sidecar"],
        id="new-element-without-order-goes-first-as-upstream",
    ),
    pytest.param(
        _pod(),
        {
            "spec": {
                "$setElementOrder/containers": [
                    {"name": "nginx"},
                    {"name": "sidecar"},
                    {"name": "extra"},
                ],
                "containers": [{"name": "extra", "image": "pause"}],
            }
        },
        lambda out: [c["name"] for c in out["spec"]["containers"]] == ["nginx", "sidecar", "extra"],
        id="new-element-placed-by-set-element-order",
    ),
    pytest.param(
        _pod(),
        {
            "spec": {
                "containers": [
                    {
                        "name": "nginx",
                        "$setElementOrder/env": [{"name": "A"}, {"name": "C"}, {"name": "B"}],
                        "env": [{"name": "C", "value": "3"}],
                    }
                ]
            }
        },
        lambda out: (
            out["spec"]["containers"][0]["env"]
            == [
                {"name": "A", "value": "1"},
                {"name": "C", "value": "3"},
                {"name": "B", "value": "2"},
            ]
        ),
        id="nested-env-merge-with-order",
    ),
    pytest.param(
        _pod(),
        {"spec": {"containers": [{"name": "nginx", "env": [{"name": "A", "valueFrom": None}]}]}},
        lambda out: out["spec"]["containers"][0]["env"][0] == {"name": "A", "value": "1"},
        id="null-for-absent-field-is-ignored",
    ),
    pytest.param(
        _pod(),
        {
            "spec": {
                "containers": [{"name": "nginx", "ports": [{"containerPort": 443, "name": "tls"}]}]
            }
        },
        lambda out: (
            out["spec"]["containers"][0]["ports"]
            == [{"containerPort": 443, "name": "tls"}, {"containerPort": 80, "name": "web"}]
        ),
        id="ports-merge-by-container-port",
    ),
    pytest.param(
        _pod(),
        {"spec": {"containers": [{"name": "nginx", "args": ["--three"]}]}},
        lambda out: out["spec"]["containers"][0]["args"] == ["--three"],
        id="atomic-args-list-replaced",
    ),
    pytest.param(
        _pod(),
        {"spec": {"containers": [{"name": "nginx", "$deleteFromPrimitiveList/args": ["--one"]}]}},
        lambda out: out["spec"]["containers"][0]["args"] == ["--two"],
        id="delete-from-primitive-list-on-atomic-list",
    ),
    pytest.param(
        _pod(),
        {"metadata": {"finalizers": ["c.example.com/z"]}},
        lambda out: (
            out["metadata"]["finalizers"]
            == ["c.example.com/z", "a.example.com/x", "b.example.com/y"]
        ),
        id="finalizers-merge-as-set",
    ),
    pytest.param(
        _pod(),
        {"metadata": {"finalizers": ["b.example.com/y", "c.example.com/z"]}},
        lambda out: (
            out["metadata"]["finalizers"]
            == ["a.example.com/x", "b.example.com/y", "c.example.com/z"]
        ),
        id="finalizers-merge-deduplicates",
    ),
    pytest.param(
        _pod(),
        {"metadata": {"$deleteFromPrimitiveList/finalizers": ["a.example.com/x"]}},
        lambda out: out["metadata"]["finalizers"] == ["b.example.com/y"],
        id="delete-from-primitive-list",
    ),
    pytest.param(
        _pod(),
        {
            "metadata": {
                "$setElementOrder/finalizers": ["c.example.com/z", "b.example.com/y"],
                "$deleteFromPrimitiveList/finalizers": ["a.example.com/x"],
                "finalizers": ["c.example.com/z"],
            }
        },
        lambda out: out["metadata"]["finalizers"] == ["c.example.com/z", "b.example.com/y"],
        id="primitive-list-add-delete-and-order-as-apply-sends",
    ),
    pytest.param(
        _pod(),
        {
            "spec": {
                "volumes": [
                    {
                        "$retainKeys": ["hostPath", "name"],
                        "name": "data",
                        "hostPath": {"path": "/x"},
                    }
                ]
            }
        },
        lambda out: out["spec"]["volumes"] == [{"name": "data", "hostPath": {"path": "/x"}}],
        id="retain-keys-switches-volume-source",
    ),
    pytest.param(
        _pod(),
        {
            "spec": {
                "volumes": [
                    {
                        "$retainKeys": ["hostPath", "name"],
                        "name": "data",
                        "emptyDir": None,
                        "hostPath": {"path": "/x"},
                    }
                ]
            }
        },
        lambda out: out["spec"]["volumes"] == [{"name": "data", "hostPath": {"path": "/x"}}],
        id="retain-keys-with-explicit-null-as-apply-sends",
    ),
    pytest.param(
        _pod(),
        {"spec": {"volumes": [{"name": "data", "hostPath": {"path": "/x"}}]}},
        lambda out: (
            out["spec"]["volumes"] == [{"name": "data", "emptyDir": {}, "hostPath": {"path": "/x"}}]
        ),
        id="without-retain-keys-both-sources-stay-as-upstream",
    ),
    pytest.param(
        _pod(),
        {"spec": {"containers": [{"name": "only", "image": "x"}, {"$patch": "replace"}]}},
        lambda out: out["spec"]["containers"] == [{"name": "only", "image": "x"}],
        id="patch-replace-element-replaces-list",
    ),
    pytest.param(
        _pod(),
        {
            "spec": {
                "initContainers": [
                    {"name": "init", "image": "busybox", "ports": None},
                    {"name": "gone", "$patch": "delete"},
                ],
                "$setElementOrder/initContainers": [{"name": "init"}],
            }
        },
        lambda out: out["spec"]["initContainers"] == [{"name": "init", "image": "busybox"}],
        id="new-list-keeps-no-directives-or-nulls",
    ),
    pytest.param(
        _pod(),
        {
            "spec": {
                "tolerations": [
                    {"key": "a", "operator": "Exists"},
                    {"key": "b", "$patch": "delete"},
                ],
                "nodeSelector": {"$patch": "replace", "disk": "ssd"},
            }
        },
        lambda out: (
            out["spec"]["tolerations"] == [{"key": "a", "operator": "Exists"}]
            and "nodeSelector" not in out["spec"]
        ),
        id="new-values-with-patch-directives-dropped-as-remove-directives",
    ),
    pytest.param(
        _pod(),
        {"spec": {"securityContext": {"runAsUser": 1000, "fsGroup": None}}},
        lambda out: out["spec"]["securityContext"] == {"runAsUser": 1000},
        id="new-map-drops-nulls",
    ),
    pytest.param(
        _pod(),
        {"spec": {"containers": [{"name": "nginx", "image": 5}]}},
        lambda out: out["spec"]["containers"][0]["image"] == 5,
        id="scalar-type-change-replaces",
    ),
    pytest.param(
        _pod(),
        {"$patch": "replace", "metadata": {"name": "x"}},
        lambda out: out == {"metadata": {"name": "x"}},
        id="root-replace",
    ),
]


@pytest.mark.parametrize(("live", "patch", "check"), SMP_CASES)
def test_strategic_merge_patch_applies_like_upstream(live: Any, patch: Any, check: Any) -> None:
    before = deep_copy(live)
    patch_before = deep_copy(patch)
    out = strategic_merge_patch(live, patch, schema=POD)
    assert check(out), out
    assert live == before
    assert patch == patch_before


def _no_directives(value: Any) -> bool:
    if isinstance(value, dict):
        return all(not k.startswith("$") and _no_directives(v) for k, v in value.items())
    if isinstance(value, list):
        return all(_no_directives(v) for v in value)
    return value is not None


@pytest.mark.parametrize(("live", "patch", "check"), SMP_CASES)
def test_strategic_merge_patch_never_persists_directives_or_nulls(
    live: Any, patch: Any, check: Any
) -> None:
    assert _no_directives(strategic_merge_patch(live, patch, schema=POD))


def test_strategic_merge_patch_statefulset_apply_example_from_trace() -> None:
    live = _sts_template(
        {
            "containers": [
                {"name": "nginx", "image": "nginx:1.25", "ports": [{"containerPort": 80}]},
                {"name": "sidecar", "image": "busybox"},
            ]
        }
    )
    patch = {
        "spec": {
            "template": {
                "spec": {
                    "$setElementOrder/containers": [{"name": "nginx"}],
                    "containers": [
                        {"name": "nginx", "image": "nginx:1.27", "ports": None},
                        {"name": "sidecar", "$patch": "delete"},
                    ],
                }
            }
        }
    }
    out = strategic_merge_patch(live, patch, schema=STS)
    assert out == _sts_template({"containers": [{"name": "nginx", "image": "nginx:1.27"}]})


def test_strategic_merge_patch_configmap_apply_example_from_trace() -> None:
    live = {"data": {"a": "1", "b": "2"}, "metadata": {"name": "cm1", "annotations": {"x": "y"}}}
    patch = {
        "data": {"b": None, "c": "3"},
        "metadata": {"annotations": {"kubectl.kubernetes.io/last-applied-configuration": "{}\n"}},
    }
    out = strategic_merge_patch(live, patch, schema=CM)
    assert out["data"] == {"a": "1", "c": "3"}
    assert out["metadata"]["annotations"] == {
        "x": "y",
        "kubectl.kubernetes.io/last-applied-configuration": "{}\n",
    }


def test_strategic_merge_patch_deployment_strategy_retain_keys_drops_rolling_update() -> None:
    live = {
        "spec": {
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1}},
            "replicas": 2,
        }
    }
    patch = {"spec": {"strategy": {"$retainKeys": ["type"], "type": "Recreate"}}}
    out = strategic_merge_patch(live, patch, schema=DEPLOY)
    assert out["spec"] == {"strategy": {"type": "Recreate"}, "replicas": 2}


def test_strategic_merge_patch_without_schema_merges_maps_and_replaces_lists() -> None:
    live = {"a": {"b": 1, "c": 2}, "l": [{"name": "x"}, {"name": "y"}]}
    out = strategic_merge_patch(live, {"a": {"c": None, "d": 3}, "l": [{"name": "z"}]}, schema=None)
    assert out == {"a": {"b": 1, "d": 3}, "l": [{"name": "z"}]}


SMP_ERRORS = [
    pytest.param(
        {"metadata": {"labels": {"$retainKeys": "app", "app": "x"}}},
        errors.BadRequest,
        "invalid patch format of retainKeys",
        id="retain-keys-not-a-list",
    ),
    pytest.param(
        {"spec": {"volumes": [{"$retainKeys": ["name"], "name": "data", "hostPath": {}}]}},
        errors.BadRequest,
        "invalid patch format of retainKeys",
        id="patch-field-outside-retain-keys",
    ),
    pytest.param(
        {"metadata": {"$deleteFromPrimitiveList": ["a"]}},
        errors.BadRequest,
        "invalid patch format of primitive list",
        id="delete-list-without-field",
    ),
    pytest.param(
        {"spec": {"$setElementOrderX/containers": []}},
        errors.BadRequest,
        "invalid patch format of setElementOrder list",
        id="bad-set-element-order-prefix",
    ),
    pytest.param(
        {"spec": {"containers": [{"image": "x"}]}},
        PatchApplyError,
        "map: map[image:x] does not contain declared merge key: name",
        id="element-without-merge-key",
    ),
    pytest.param(
        {"spec": {"containers": [{"name": "nginx", "$patch": "bogus"}]}},
        PatchApplyError,
        "unknown patch type: bogus in map: map[$patch:bogus name:nginx]",
        id="unknown-list-element-directive",
    ),
    pytest.param(
        {"metadata": {"labels": {"$patch": "bogus"}}},
        PatchApplyError,
        "unknown patch type: bogus in map: map[$patch:bogus]",
        id="unknown-map-directive",
    ),
    pytest.param(
        {"spec": {"containers": [{"name": "nginx", "$patch": "merge"}]}},
        PatchApplyError,
        "merging lists cannot yet be specified in the patch",
        id="merge-directive-in-list",
    ),
    pytest.param(
        {"spec": {"containers": [{"name": "a", "$patch": "delete"}, "x"]}},
        PatchApplyError,
        "list element types are not identical: "
        "[[map[args:[--one --two] env:[map[name:A value:1] map[name:B value:2]] image:nginx:1.25 "
        "name:nginx ports:[map[containerPort:80 name:web]]] map[image:busybox name:sidecar]] "
        "[map[$patch:delete name:a] x]]",
        id="mixed-element-types",
    ),
    pytest.param(
        {
            "spec": {
                "$setElementOrder/containers": [{"name": "nginx"}],
                "containers": [{"name": "sidecar", "image": "x"}],
            }
        },
        PatchApplyError,
        "The order in patch list:\n[map[image:x name:sidecar]]\n doesn't match "
        "$setElementOrder list:\n[map[name:nginx]]\n",
        id="patch-list-outside-set-element-order",
    ),
    pytest.param(
        {"spec": {"$setElementOrder/containers": {"name": "nginx"}}},
        PatchApplyError,
        "expected a slice, but received a map",
        id="set-element-order-not-a-list",
    ),
]


@pytest.mark.parametrize(("patch", "exc", "message"), SMP_ERRORS)
def test_strategic_merge_patch_errors_carry_upstream_text(
    patch: Any, exc: type[errors.StatusError], message: str
) -> None:
    with pytest.raises(exc) as info:
        strategic_merge_patch(_pod(), patch, schema=POD)
    assert type(info.value) is exc
    assert info.value.message == message


def test_strategic_merge_patch_unknown_errors_have_empty_reason_and_500() -> None:
    with pytest.raises(PatchApplyError) as info:
        strategic_merge_patch(_pod(), {"spec": {"containers": [{"image": "x"}]}}, schema=POD)
    status = info.value.to_status()
    assert status["code"] == 500
    assert "reason" not in status  # omitempty: upstream sends no reason at all


def test_strategic_merge_patch_list_of_lists_is_422_rejected() -> None:
    live = {"metadata": {"finalizers": []}}
    with pytest.raises(errors.Invalid) as info:
        strategic_merge_patch(live, {"metadata": {"finalizers": [["a"]]}}, schema=POD)
    assert info.value.message == REJECTED
    assert info.value.code == 422


@pytest.mark.parametrize(
    ("patch", "message"),
    [
        pytest.param(
            [],
            "json: cannot unmarshal array into Go value of type map[string]interface {}",
            id="list",
        ),
        pytest.param(
            "x",
            "json: cannot unmarshal string into Go value of type map[string]interface {}",
            id="str",
        ),
    ],
)
def test_strategic_merge_patch_body_must_be_an_object(patch: Any, message: str) -> None:
    with pytest.raises(errors.BadRequest) as info:
        strategic_merge_patch(_pod(), patch, schema=POD)
    assert info.value.message == message


# -- JSON merge patch --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("doc", "patch", "expected"),
    [
        pytest.param(
            {"metadata": {"labels": {"a": "1"}}},
            {"metadata": {"labels": {"tier": "fe"}}},
            {"metadata": {"labels": {"a": "1", "tier": "fe"}}},
            id="label-adds",
        ),
        pytest.param(
            {"metadata": {"labels": {"a": "1", "x": "2"}}},
            {"metadata": {"labels": {"x": None}}},
            {"metadata": {"labels": {"a": "1"}}},
            id="unlabel",
        ),
        pytest.param(
            {"spec": {"list": [1, 2, 3]}},
            {"spec": {"list": [4]}},
            {"spec": {"list": [4]}},
            id="lists-replace",
        ),
        pytest.param(
            {"spec": {}},
            {"spec": {"new": {"a": 1, "b": None, "c": {"d": None}}}},
            {"spec": {"new": {"a": 1, "c": {}}}},
            id="nulls-pruned-from-added-values",
        ),
        pytest.param(
            {"spec": {"x": 1}},
            {"spec": {"x": {"y": None, "z": 2}}},
            {"spec": {"x": {"z": 2}}},
            id="scalar-becomes-object",
        ),
        pytest.param(
            {"a": None},
            {"a": {"b": 1}},
            {"a": {"b": 1}},
            id="null-target-is-absent",
        ),
        pytest.param(
            {"spec": {"replicas": 3}},
            {"spec": {"replicas": 5}},
            {"spec": {"replicas": 5}},
            id="scale-body",
        ),
    ],
)
def test_merge_patch_follows_rfc7386(doc: Any, patch: Any, expected: Any) -> None:
    before = deep_copy(doc)
    assert merge_patch(doc, patch) == expected
    assert doc == before


@pytest.mark.parametrize(
    ("patch", "message"),
    [
        pytest.param(None, "Invalid JSON Patch", id="null"),
        pytest.param(
            [1],
            "error decoding patch: json: cannot unmarshal array into Go value of type "
            "map[string]interface {}",
            id="array",
        ),
    ],
)
def test_merge_patch_rejects_non_objects(patch: Any, message: str) -> None:
    with pytest.raises(errors.BadRequest) as info:
        merge_patch({"a": 1}, patch)
    assert info.value.message == message


# -- JSON patch ------------------------------------------------------------------------------

DOC: dict[str, Any] = {
    "metadata": {"name": "web", "annotations": {"example.com/a": "1", "t~x": "2"}},
    "spec": {"replicas": 1, "list": ["a", "b", "c"], "maybe": None},
}


@pytest.mark.parametrize(
    ("ops", "path", "expected"),
    [
        pytest.param(
            [{"op": "replace", "path": "/spec/replicas", "value": 3}],
            ["spec", "replicas"],
            3,
            id="replace",
        ),
        pytest.param(
            [{"op": "add", "path": "/metadata/labels", "value": {"a": "b"}}],
            ["metadata", "labels"],
            {"a": "b"},
            id="add-member",
        ),
        pytest.param(
            [{"op": "add", "path": "/spec/list/-", "value": "d"}],
            ["spec", "list"],
            ["a", "b", "c", "d"],
            id="append-dash",
        ),
        pytest.param(
            [{"op": "add", "path": "/spec/list/1", "value": "x"}],
            ["spec", "list"],
            ["a", "x", "b", "c"],
            id="insert-index",
        ),
        pytest.param(
            [{"op": "add", "path": "/spec/list/3", "value": "x"}],
            ["spec", "list"],
            ["a", "b", "c", "x"],
            id="insert-at-end-index",
        ),
        pytest.param(
            [{"op": "remove", "path": "/spec/list/-1"}],
            ["spec", "list"],
            ["a", "b"],
            id="negative-index-counts-from-end",
        ),
        pytest.param(
            [{"op": "remove", "path": "/metadata/annotations/example.com~1a"}],
            ["metadata", "annotations"],
            {"t~x": "2"},
            id="tilde-one-is-slash",
        ),
        pytest.param(
            [{"op": "replace", "path": "/metadata/annotations/t~0x", "value": "3"}],
            ["metadata", "annotations", "t~x"],
            "3",
            id="tilde-zero-is-tilde",
        ),
        pytest.param(
            [{"op": "move", "from": "/spec/list/0", "path": "/spec/first"}],
            ["spec"],
            {"replicas": 1, "list": ["b", "c"], "maybe": None, "first": "a"},
            id="move",
        ),
        pytest.param(
            [{"op": "copy", "from": "/spec/list", "path": "/spec/copy"}],
            ["spec", "copy"],
            ["a", "b", "c"],
            id="copy",
        ),
        pytest.param(
            [
                {"op": "test", "path": "/spec/replicas", "value": 1.0},
                {"op": "replace", "path": "/spec/replicas", "value": 2},
            ],
            ["spec", "replicas"],
            2,
            id="test-passes-numbers-by-value",
        ),
        pytest.param(
            [
                {"op": "test", "path": "/spec/missing", "value": None},
                {"op": "add", "path": "/spec/missing", "value": 1},
            ],
            ["spec", "missing"],
            1,
            id="test-null-matches-absent",
        ),
    ],
)
def test_json_patch_applies_operations(ops: Any, path: list[str], expected: Any) -> None:
    before = deep_copy(DOC)
    out = json_patch(DOC, ops)
    cur: Any = out
    for step in path:
        cur = cur[step]
    assert cur == expected
    assert before == DOC


def test_json_patch_copy_is_independent_of_source() -> None:
    out = json_patch(
        DOC,
        [
            {"op": "copy", "from": "/spec/list", "path": "/spec/copy"},
            {"op": "add", "path": "/spec/copy/-", "value": "z"},
        ],
    )
    assert out["spec"]["list"] == ["a", "b", "c"]
    assert out["spec"]["copy"] == ["a", "b", "c", "z"]


@pytest.mark.parametrize(
    ("ops", "detail"),
    [
        pytest.param(
            [{"op": "replace", "path": "/spec/nope", "value": 1}],
            "replace operation does not apply: doc is missing key: /spec/nope",
            id="replace-missing-key",
        ),
        pytest.param(
            [{"op": "replace", "path": "/spec/maybe", "value": 1}],
            "replace operation does not apply: doc is missing key: /spec/maybe",
            id="replace-null-value",
        ),
        pytest.param(
            [{"op": "remove", "path": "/spec/nope"}],
            "Unable to remove nonexistent key: nope",
            id="remove-missing",
        ),
        pytest.param(
            [{"op": "add", "path": "/status/phase", "value": "x"}],
            "add operation does not apply: doc is missing path: /status/phase",
            id="add-missing-parent",
        ),
        pytest.param(
            [{"op": "add", "path": "/spec/list/5", "value": "x"}],
            "Unable to access invalid index: 5",
            id="index-out-of-range",
        ),
        pytest.param(
            [{"op": "test", "path": "/spec/replicas", "value": 2}],
            "testing value /spec/replicas failed",
            id="test-fails",
        ),
        pytest.param(
            [{"op": "test", "path": "/spec/replicas", "value": True}],
            "testing value /spec/replicas failed",
            id="test-bool-is-not-number",
        ),
        pytest.param(
            [{"op": "add", "path": "", "value": {}}],
            "add operation does not apply: doc is missing path: ",
            id="root-not-addressable",
        ),
        pytest.param([{"op": "frob", "path": "/a"}], "Unexpected kind: frob", id="unknown-op"),
        pytest.param(
            [{"op": "move", "from": "/spec/nope", "path": "/spec/x"}],
            "Unable to remove nonexistent key: nope",
            id="move-missing-source",
        ),
    ],
)
def test_json_patch_failures_are_422_rejected(ops: Any, detail: str) -> None:
    with pytest.raises(errors.Invalid) as info:
        json_patch(DOC, ops)
    assert info.value.message == REJECTED
    assert info.value.code == 422
    assert isinstance(info.value.__cause__, JSONPatchFailure)
    assert str(info.value.__cause__).startswith(detail)


@pytest.mark.parametrize(
    ("ops", "message"),
    [
        pytest.param(
            {"op": "add"},
            "error decoding patch: json: cannot unmarshal object into Go value of type "
            "[]handlers.jsonPatchOp",
            id="object-body",
        ),
        pytest.param(
            ["add"],
            "error decoding patch: json: cannot unmarshal string into Go value of type "
            "handlers.jsonPatchOp",
            id="string-op",
        ),
        pytest.param(
            [{"op": 1, "path": "/a"}],
            "error decoding patch: json: cannot unmarshal number into Go struct field "
            "jsonPatchOp.op of type string",
            id="numeric-op-name",
        ),
    ],
)
def test_json_patch_bad_body_is_400(ops: Any, message: str) -> None:
    with pytest.raises(errors.BadRequest) as info:
        json_patch(DOC, ops)
    assert info.value.message == message


def test_json_patch_operation_limit() -> None:
    ops = [{"op": "test", "path": "/spec/replicas", "value": 1}] * 10001
    with pytest.raises(errors.RequestEntityTooLarge) as info:
        json_patch(DOC, ops)
    assert info.value.message == (
        "Request entity too large: The allowed maximum operations in a JSON patch is 10000, "
        "got 10001"
    )


# Captured from kubectl v1.32 (`kubectl apply --validate=false -f new.json`) against a loopback
# capture server whose Pod carried the last-applied configuration of `_pod()`; only the
# last-applied annotation's value is shortened here.
KUBECTL_APPLY_BODY: dict[str, Any] = {
    "metadata": {
        "$deleteFromPrimitiveList/finalizers": ["a.example.com/x"],
        "$setElementOrder/finalizers": ["b.example.com/y", "c.example.com/z"],
        "annotations": {"kubectl.kubernetes.io/last-applied-configuration": "<new.json>\n"},
        "finalizers": ["c.example.com/z"],
        "labels": {"tier": None},
    },
    "spec": {
        "$setElementOrder/containers": [{"name": "nginx"}],
        "$setElementOrder/volumes": [{"name": "data"}],
        "containers": [
            {
                "$setElementOrder/env": [{"name": "A"}, {"name": "C"}, {"name": "B"}],
                "args": ["--three"],
                "env": [{"name": "C", "value": "3"}],
                "image": "nginx:1.27",
                "name": "nginx",
                "ports": None,
            },
            {"$patch": "delete", "name": "sidecar"},
        ],
        "volumes": [
            {
                "$retainKeys": ["hostPath", "name"],
                "emptyDir": None,
                "hostPath": {"path": "/srv"},
                "name": "data",
            }
        ],
    },
}


def test_strategic_merge_patch_of_captured_kubectl_apply_yields_new_manifest() -> None:
    out = strategic_merge_patch(_pod(), KUBECTL_APPLY_BODY, schema=POD)
    assert out["metadata"]["labels"] == {"app": "web"}
    assert out["metadata"]["finalizers"] == ["b.example.com/y", "c.example.com/z"]
    assert out["metadata"]["annotations"] == {
        "kubectl.kubernetes.io/last-applied-configuration": "<new.json>\n"
    }
    assert out["spec"] == {
        "containers": [
            {
                "name": "nginx",
                "image": "nginx:1.27",
                "args": ["--three"],
                "env": [
                    {"name": "A", "value": "1"},
                    {"name": "C", "value": "3"},
                    {"name": "B", "value": "2"},
                ],
            }
        ],
        "volumes": [{"name": "data", "hostPath": {"path": "/srv"}}],
    }
