"""Store keys, the stored bytes and the events.k8s.io conversion, without a backend."""

from __future__ import annotations

import orjson

from kubeling.machinery import resources as r
from kubeling.registry import codec, conversion
from kubeling.storage.interface import KeyValue


def test_keys_name_group_resource_namespace() -> None:
    assert codec.object_key(r.PODS, namespace="default", name="web-0") == (
        "/registry/core/pods/default/web-0"
    )
    assert codec.object_key(r.STATEFULSETS, namespace="ns", name="web") == (
        "/registry/apps/statefulsets/ns/web"
    )
    assert codec.object_key(r.PERSISTENTVOLUMES, namespace="ignored", name="pv1") == (
        "/registry/core/persistentvolumes/pv1"
    )
    assert codec.key_prefix(r.EVENTS_V1, "default") == codec.key_prefix(r.EVENTS, "default")
    assert codec.key_prefix(r.PODS) == "/registry/core/pods/"


def test_stored_bytes_have_no_resource_version_and_read_back_with_revision() -> None:
    obj = {"kind": "ConfigMap", "metadata": {"name": "a", "resourceVersion": "3"}}
    raw = codec.encode(obj)
    assert b"resourceVersion" not in raw
    assert obj["metadata"]["resourceVersion"] == "3"  # the caller's object is untouched
    back = codec.decode_kv(KeyValue(key="k", value=raw, create_revision=7, mod_revision=9))
    assert back["metadata"] == {"name": "a", "resourceVersion": "9"}


def test_served_objects_put_kind_first_and_metadata_in_upstream_order() -> None:
    obj = {
        "data": {},
        "metadata": {"managedFields": [], "uid": "u", "name": "a", "resourceVersion": "1"},
        "apiVersion": "v1",
    }
    out = codec.with_type_meta(r.CONFIGMAPS, obj)
    assert list(out) == ["kind", "apiVersion", "data", "metadata"]
    assert list(out["metadata"]) == ["name", "uid", "resourceVersion", "managedFields"]


def test_event_conversion_round_trips() -> None:
    core = {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {"name": "e", "namespace": "default"},
        "involvedObject": {"kind": "Pod", "name": "p"},
        "message": "m",
        "source": {"component": "c", "host": "h"},
        "firstTimestamp": "2025-01-01T10:00:00Z",
        "lastTimestamp": "2025-01-01T10:00:01Z",
        "count": 2,
        "reportingComponent": "rc",
        "reportingInstance": "ri",
        "eventTime": None,
        "series": {"count": 2, "lastObservedTime": "2025-01-01T10:00:01.000000Z"},
        "type": "Normal",
        "reason": "R",
        "action": "A",
        "related": {"kind": "Node", "name": "n"},
    }
    to_storage, from_storage = conversion.converters(r.EVENTS_V1)
    v1 = from_storage(core)
    assert set(v1) == {
        "apiVersion",
        "kind",
        "metadata",
        "regarding",
        "note",
        "deprecatedSource",
        "deprecatedFirstTimestamp",
        "deprecatedLastTimestamp",
        "deprecatedCount",
        "reportingController",
        "reportingInstance",
        "eventTime",
        "series",
        "type",
        "reason",
        "action",
        "related",
    }
    assert to_storage(v1) == core
    assert orjson.dumps(conversion.converters(r.CONFIGMAPS)[0]({"a": 1})) == b'{"a":1}'
