"""EventRecorder: Event shape, aggregation of repeats, spam filter, never raising."""

from __future__ import annotations

import logging
import re

import pytest

from kubeling.client.events import EventRecorder
from kubeling.machinery.errors import Forbidden, InternalError
from kubeling.machinery.resources import EVENTS
from kubeling.machinery.types import Obj
from tests.client.fakes import FakeClient

pytestmark = pytest.mark.looptime

POD: Obj = {
    "kind": "Pod",
    "apiVersion": "v1",
    "metadata": {"name": "web-0", "namespace": "prod", "uid": "u-1", "resourceVersion": "7"},
}
NODE: Obj = {"kind": "Node", "apiVersion": "v1", "metadata": {"name": "node-1", "uid": "u-n"}}


def _events(fake: FakeClient) -> list[Obj]:
    return [o for (plural, _, _), o in sorted(fake.objects.items()) if plural == "events"]


async def test_event_recorder_writes_upstream_shape() -> None:
    fake = FakeClient()
    rec = EventRecorder(fake, component="default-scheduler", host="node-1")
    rec.event(POD, "Normal", "Scheduled", "Successfully assigned prod/web-0 to node-1")
    await rec.flush()
    [ev] = _events(fake)
    assert re.fullmatch(r"web-0\.[0-9a-f]+", ev["metadata"]["name"])
    assert ev["metadata"]["namespace"] == "prod"
    assert ev["involvedObject"] == {
        "kind": "Pod",
        "namespace": "prod",
        "name": "web-0",
        "uid": "u-1",
        "apiVersion": "v1",
        "resourceVersion": "7",
    }
    assert ev["reason"] == "Scheduled"
    assert ev["message"] == "Successfully assigned prod/web-0 to node-1"
    assert ev["type"] == "Normal"
    assert ev["count"] == 1
    assert ev["source"] == {"component": "default-scheduler", "host": "node-1"}
    assert ev["reportingComponent"] == "default-scheduler"
    assert ev["reportingInstance"] == "node-1"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", ev["firstTimestamp"])
    assert ev["lastTimestamp"] == ev["firstTimestamp"]
    await rec.close()


async def test_event_recorder_puts_cluster_scoped_objects_in_default() -> None:
    fake = FakeClient()
    rec = EventRecorder(fake, component="kubelet")
    rec.event(NODE, "Normal", "NodeReady", "Node node-1 status is now: NodeReady")
    await rec.flush()
    [ev] = _events(fake)
    assert ev["metadata"]["namespace"] == "default"
    assert "namespace" not in ev["involvedObject"]
    assert ev["source"] == {"component": "kubelet"}
    await rec.close()


async def test_event_recorder_aggregates_repeats_by_patching_count() -> None:
    fake = FakeClient()
    rec = EventRecorder(fake, component="kubelet")
    for _ in range(3):
        rec.event(POD, "Warning", "BackOff", "Back-off restarting failed container")
    rec.event(POD, "Warning", "BackOff", "a different message")
    await rec.flush()
    events = _events(fake)
    assert len(events) == 2
    by_message = {e["message"]: e for e in events}
    assert by_message["Back-off restarting failed container"]["count"] == 3
    assert by_message["a different message"]["count"] == 1
    assert [c[0] for c in fake.calls] == ["create", "patch", "patch", "create"]
    await rec.close()


async def test_event_recorder_recreates_when_aggregated_event_was_deleted() -> None:
    fake = FakeClient()
    rec = EventRecorder(fake, component="kubelet")
    rec.event(POD, "Normal", "Pulled", "pulled")
    await rec.flush()
    [ev] = _events(fake)
    await fake.delete(EVENTS, name=ev["metadata"]["name"], namespace="prod")
    rec.event(POD, "Normal", "Pulled", "pulled")
    await rec.flush()
    [again] = _events(fake)
    assert again["count"] == 1
    await rec.close()


async def test_event_recorder_spam_filter_bounds_events_per_object() -> None:
    fake = FakeClient()
    rec = EventRecorder(fake, component="ctl")
    for i in range(40):
        rec.event(POD, "Normal", "Tick", f"tick {i}")
    await rec.flush()
    assert len(_events(fake)) == 25
    await rec.close()


async def test_event_recorder_never_raises_and_warns_once(caplog: pytest.LogCaptureFixture) -> None:
    fake = FakeClient()
    fake.fail_next["create"] = [Forbidden("events is forbidden"), Forbidden("events is forbidden")]
    rec = EventRecorder(fake, component="ctl")
    with caplog.at_level(logging.WARNING, logger="kubeling.client.events"):
        rec.event(POD, "Normal", "A", "one")
        rec.event(POD, "Normal", "B", "two")
        await rec.flush()
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert "forbidden" in warnings[0].getMessage()
    assert _events(fake) == []
    await rec.close()


async def test_event_recorder_retries_server_errors() -> None:
    fake = FakeClient()
    fake.fail_next["create"] = [InternalError("etcd hiccup")]
    rec = EventRecorder(fake, component="ctl")
    rec.event(POD, "Normal", "A", "one")
    await rec.flush()
    assert len(_events(fake)) == 1
    await rec.close()


def test_event_recorder_outside_a_loop_does_not_raise(caplog: pytest.LogCaptureFixture) -> None:
    rec = EventRecorder(FakeClient.__new__(FakeClient), component="ctl")
    with caplog.at_level(logging.WARNING, logger="kubeling.client.events"):
        rec.event(POD, "Normal", "A", "one")
    assert any("could not queue" in r.getMessage() for r in caplog.records)
