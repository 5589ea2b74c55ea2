"""Object accessors, timestamps, copying, owner references and conditions."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from kubeling.machinery import objects


def _sts() -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "StatefulSet",
        "metadata": {
            "name": "web",
            "namespace": "default",
            "uid": "u-1",
            "labels": {"app": "web"},
            "annotations": {"a": "b"},
            "resourceVersion": "12",
            "generation": 3,
        },
        "spec": {"template": {"spec": {"containers": [{"name": "nginx"}]}}},
    }


def test_accessors_read_metadata() -> None:
    obj = _sts()
    assert objects.name(obj) == "web"
    assert objects.namespace(obj) == "default"
    assert objects.uid(obj) == "u-1"
    assert objects.labels(obj) == {"app": "web"}
    assert objects.annotations(obj) == {"a": "b"}
    assert objects.resource_version(obj) == "12"
    assert objects.generation(obj) == 3
    assert objects.namespaced_name(obj) == "default/web"
    assert objects.finalizers(obj) == []
    assert objects.deletion_timestamp(obj) is None


def test_accessors_on_bare_object_do_not_create_metadata() -> None:
    obj: dict[str, Any] = {"kind": "Node"}
    assert objects.name(obj) == ""
    assert objects.labels(obj) == {}
    assert objects.namespaced_name({"metadata": {"name": "n1"}}) == "n1"
    assert obj == {"kind": "Node"}
    objects.ensure_meta(obj)["name"] = "n1"
    assert obj == {"kind": "Node", "metadata": {"name": "n1"}}


def test_now_rfc3339_is_whole_seconds_utc() -> None:
    fixed = datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=timezone(timedelta(hours=2)))
    assert objects.now_rfc3339(fixed) == "2026-01-02T01:04:05Z"
    assert objects.now_rfc3339_micro(fixed) == "2026-01-02T01:04:05.678901Z"
    live = objects.now_rfc3339()
    assert len(live) == 20
    assert live.endswith("Z")
    assert objects.parse_rfc3339(live).tzinfo is not None


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param("2026-01-02T03:04:05Z", datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC), id="z"),
        pytest.param(
            "2026-01-02T05:04:05+02:00", datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC), id="offset"
        ),
        pytest.param(
            "2026-01-02T03:04:05.123456789Z",
            datetime(2026, 1, 2, 3, 4, 5, 123456, tzinfo=UTC),
            id="nanoseconds",
        ),
        pytest.param(
            "2026-01-02T03:04:05.5Z",
            datetime(2026, 1, 2, 3, 4, 5, 500000, tzinfo=UTC),
            id="short-fraction",
        ),
    ],
)
def test_parse_rfc3339(text: str, expected: datetime) -> None:
    assert objects.parse_rfc3339(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        pytest.param("2026-01-02 03:04:05Z", id="space"),
        pytest.param("2026-01-02T03:04:05", id="no-zone"),
        pytest.param("yesterday", id="words"),
        pytest.param("", id="empty"),
    ],
)
def test_parse_rfc3339_rejects(text: str) -> None:
    with pytest.raises(ValueError):
        objects.parse_rfc3339(text)


def test_deep_copy_is_independent() -> None:
    obj = _sts()
    copied = objects.deep_copy(obj)
    assert copied == obj
    copied["spec"]["template"]["spec"]["containers"][0]["name"] = "changed"
    copied["metadata"]["labels"]["x"] = "y"
    assert obj["spec"]["template"]["spec"]["containers"][0]["name"] == "nginx"
    assert "x" not in obj["metadata"]["labels"]


def test_deep_copy_falls_back_for_values_orjson_refuses() -> None:
    value = {"big": 2**70, "nested": [{"t": (1, 2)}]}
    copied = objects.deep_copy(value)
    assert copied == {"big": 2**70, "nested": [{"t": [1, 2]}]}
    copied["nested"][0]["t"].append(3)
    assert value["nested"][0]["t"] == (1, 2)


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        pytest.param("metadata.name", "web", id="dotted"),
        pytest.param("spec.template.spec.containers.0.name", "nginx", id="list-index"),
        pytest.param(["metadata", "labels", "app"], "web", id="sequence"),
        pytest.param("spec.missing.deeper", None, id="missing"),
        pytest.param("spec.template.spec.containers.5", None, id="index-out-of-range"),
        pytest.param("metadata.name.x", None, id="through-scalar"),
    ],
)
def test_get_path(path: Any, expected: Any) -> None:
    assert objects.get_path(_sts(), path) == expected


def test_get_path_default_and_set_path() -> None:
    obj: dict[str, Any] = {}
    assert objects.get_path(obj, "spec.resources.requests", {}) == {}
    objects.set_path(obj, "spec.resources.requests", {"cpu": "1"})
    objects.set_path(obj, ["metadata", "labels", "app.kubernetes.io/name"], "web")
    assert obj == {
        "spec": {"resources": {"requests": {"cpu": "1"}}},
        "metadata": {"labels": {"app.kubernetes.io/name": "web"}},
    }


def test_owner_reference_and_controlled_by() -> None:
    owner = _sts()
    ref = objects.owner_reference(owner)
    assert ref == {
        "apiVersion": "apps/v1",
        "kind": "StatefulSet",
        "name": "web",
        "uid": "u-1",
        "controller": True,
        "blockOwnerDeletion": True,
    }
    pod = {"metadata": {"name": "web-0", "ownerReferences": [ref]}}
    assert objects.is_controlled_by(pod, owner)
    assert objects.controller_ref(pod) is ref
    other = _sts()
    other["metadata"]["uid"] = "u-2"
    assert not objects.is_controlled_by(pod, other)
    plain = objects.owner_reference(owner, controller=False, block_owner_deletion=False)
    assert not objects.is_controlled_by({"metadata": {"ownerReferences": [plain]}}, owner)
    assert objects.controller_ref({"metadata": {}}) is None


def test_set_condition_keeps_transition_time_when_status_unchanged() -> None:
    first = objects.set_condition(
        None, "Ready", "False", reason="Starting", message="m1", now="2026-01-01T00:00:00Z"
    )
    assert first == [
        {
            "type": "Ready",
            "status": "False",
            "lastTransitionTime": "2026-01-01T00:00:00Z",
            "reason": "Starting",
            "message": "m1",
        }
    ]
    same = objects.set_condition(
        first, "Ready", "False", reason="StillStarting", now="2026-01-01T00:01:00Z"
    )
    assert same[0]["lastTransitionTime"] == "2026-01-01T00:00:00Z"
    assert same[0]["reason"] == "StillStarting"
    assert "message" not in same[0]
    flipped = objects.set_condition(same, "Ready", "True", now="2026-01-01T00:02:00Z")
    assert flipped[0]["lastTransitionTime"] == "2026-01-01T00:02:00Z"
    assert flipped[0]["status"] == "True"
    assert first[0]["reason"] == "Starting"


def test_set_condition_keeps_other_conditions_and_extra_keys() -> None:
    conditions = [
        {"type": "Initialized", "status": "True", "lastTransitionTime": "t0"},
        {"type": "Ready", "status": "True", "lastTransitionTime": "t0", "lastProbeTime": None},
    ]
    out = objects.set_condition(conditions, "Ready", "True", now="t1")
    assert out[0] is conditions[0]
    assert out[1] == {
        "type": "Ready",
        "status": "True",
        "lastTransitionTime": "t0",
        "lastProbeTime": None,
    }
    assert objects.get_condition(out, "Ready") == out[1]
    assert objects.get_condition(out, "Nope") is None
    assert [c["type"] for c in objects.remove_condition(out, "Initialized")] == ["Ready"]


def _pod(status: str | None, since: str | None = None) -> dict[str, Any]:
    cond: dict[str, Any] = {"type": "Ready", "status": status}
    if since is not None:
        cond["lastTransitionTime"] = since
    return {"status": {"conditions": [cond]} if status is not None else {}}


@pytest.mark.parametrize(
    ("pod", "min_ready", "ready", "available"),
    [
        pytest.param(_pod(None), 0, False, False, id="no-ready-condition"),
        pytest.param(_pod("False", "2026-01-01T00:00:00Z"), 0, False, False, id="not-ready"),
        pytest.param(_pod("True"), 0, True, True, id="ready-no-min"),
        pytest.param(_pod("True", "2026-01-01T00:00:00Z"), 10, True, True, id="long-enough"),
        pytest.param(_pod("True", "2026-01-01T00:00:55Z"), 10, True, False, id="too-recently"),
        pytest.param(_pod("True", "2026-01-01T00:00:50Z"), 10, True, False, id="exactly-min"),
        pytest.param(_pod("True"), 10, True, False, id="no-transition-time"),
        pytest.param(_pod("True", "yesterday"), 10, True, False, id="unreadable-time"),
    ],
)
def test_is_pod_available_needs_ready_for_longer_than_min_ready_seconds(
    pod: dict[str, Any], min_ready: int, ready: bool, available: bool
) -> None:
    now = datetime(2026, 1, 1, 0, 1, 0, tzinfo=UTC)
    assert objects.is_pod_ready(pod) is ready
    assert objects.is_pod_available(pod, min_ready_seconds=min_ready, now=now) is available


def _class(name: str, created: str, *, default: str = "true", beta: bool = False) -> dict[str, Any]:
    key = objects.BETA_DEFAULT_CLASS_ANNOTATION if beta else objects.DEFAULT_CLASS_ANNOTATION
    return {"metadata": {"name": name, "creationTimestamp": created, "annotations": {key: default}}}


def test_default_class_is_the_newest_default_with_ties_by_name() -> None:
    old = _class("old", "2026-01-01T00:00:00Z")
    b = _class("b", "2026-02-01T00:00:00Z", beta=True)
    a = _class("a", "2026-02-01T00:00:00Z")
    off = _class("off", "2026-03-01T00:00:00Z", default="false")
    assert objects.default_class([old, b, a, off]) is a
    assert objects.default_class([old, off]) is old
    assert objects.default_class([off]) is None


@pytest.mark.parametrize(
    ("claim", "has_class", "class_name"),
    [
        pytest.param({"spec": {}}, False, "", id="nothing"),
        pytest.param({"spec": {"storageClassName": ""}}, True, "", id="explicitly-none"),
        pytest.param({"spec": {"storageClassName": "fast"}}, True, "fast", id="field"),
        pytest.param(
            {
                "metadata": {"annotations": {objects.BETA_STORAGE_CLASS_ANNOTATION: "slow"}},
                "spec": {"storageClassName": "fast"},
            },
            True,
            "slow",
            id="beta-annotation-wins",
        ),
    ],
)
def test_claim_class_and_has_class(claim: dict[str, Any], has_class: bool, class_name: str) -> None:
    assert objects.claim_has_class(claim) is has_class
    assert objects.claim_class(claim) == class_name


def test_claim_reference_names_the_claim_with_uid_and_resource_version() -> None:
    claim = {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": {"name": "data", "namespace": "shop", "uid": "u-1", "resourceVersion": "42"},
    }
    ref = objects.claim_reference(claim)
    assert ref == {
        "kind": "PersistentVolumeClaim",
        "namespace": "shop",
        "name": "data",
        "uid": "u-1",
        "apiVersion": "v1",
        "resourceVersion": "42",
    }
    # ObjectReference's field order, as upstream serializes it
    assert list(ref) == ["kind", "namespace", "name", "uid", "apiVersion", "resourceVersion"]
