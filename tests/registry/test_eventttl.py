"""Event expiry (upstream ``--event-ttl``): Events go once last recorded ``ttl`` ago."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from kubeling.machinery import resources as r
from kubeling.machinery.errors import NotFound
from kubeling.registry import meta
from kubeling.registry.eventttl import EventExpiry, last_recorded, sweep_interval
from kubeling.registry.registry import Registry
from kubeling.storage.memory import MemoryBackend
from tests.registry.conftest import FakeClock, ctx


def event(name: str, ns: str = "default", **times: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {"name": name},
        "involvedObject": {"kind": "Pod", "name": "p", "namespace": ns},
        "reason": "Started",
        "message": "m",
        "type": "Normal",
        "source": {"component": "kubelet"},
        **times,
    }


async def test_sweep_deletes_events_last_recorded_a_ttl_ago(
    registry: Registry, backend: MemoryBackend, clock: FakeClock
) -> None:
    events = registry.store(r.EVENTS)
    now = meta.rfc3339(clock.now)
    await events.create(event("old", lastTimestamp=now), namespace="default", ctx=ctx())
    await events.create(event("micro", "kube-system", eventTime=meta.rfc3339_micro(clock.now),
                              reportingComponent="kubelet", reportingInstance="n1",
                              action="Start"), namespace="kube-system", ctx=ctx())  # fmt: skip
    expiry = EventExpiry(backend, ttl=3600, clock=clock)
    clock.advance(1800)
    await events.create(event("newer", lastTimestamp=meta.rfc3339(clock.now)),
                        namespace="default", ctx=ctx())  # fmt: skip
    assert await expiry.sweep() == 0
    clock.advance(1800)
    assert await expiry.sweep() == 2
    for ns, name in (("default", "old"), ("kube-system", "micro")):
        with pytest.raises(NotFound):
            await events.get(namespace=ns, name=name)
    assert (await events.get(namespace="default", name="newer"))["metadata"]["name"] == "newer"


async def test_recording_an_event_again_renews_it(
    registry: Registry, backend: MemoryBackend, clock: FakeClock
) -> None:
    events = registry.store(r.EVENTS)
    made = await events.create(
        event("e", lastTimestamp=meta.rfc3339(clock.now)), namespace="default", ctx=ctx()
    )
    clock.advance(3000)
    made["lastTimestamp"] = meta.rfc3339(clock.now)
    made["count"] = 2
    await events.update(made, namespace="default", name="e", ctx=ctx())
    clock.advance(3000)
    assert await EventExpiry(backend, ttl=3600, clock=clock).sweep() == 0
    clock.advance(600)
    assert await EventExpiry(backend, ttl=3600, clock=clock).sweep() == 1


async def test_events_v1_series_counts_as_recorded() -> None:
    t0 = 1_735_725_600.0
    ev = {
        "metadata": {"creationTimestamp": meta.rfc3339(t0)},
        "eventTime": meta.rfc3339_micro(t0),
        "series": {"count": 3, "lastObservedTime": meta.rfc3339_micro(t0 + 500)},
    }
    assert last_recorded(ev) == pytest.approx(t0 + 500)
    assert last_recorded({"metadata": {"creationTimestamp": meta.rfc3339(t0)}}) == t0
    assert last_recorded({"metadata": {}}) is None


def test_sweep_interval_bounds() -> None:
    assert sweep_interval(3600) == 60
    assert sweep_interval(100) == 10
    assert sweep_interval(3) == 1


async def test_registry_runs_and_stops_the_sweep(backend: MemoryBackend, clock: FakeClock) -> None:
    reg = await Registry.open(backend=backend, clock=clock, event_ttl=60)
    await reg.bootstrap()
    await reg.store(r.EVENTS).create(
        event("gone", lastTimestamp=meta.rfc3339(clock.now - 120)), namespace="default", ctx=ctx()
    )
    watch = reg.store(r.EVENTS).watch(namespace="default", resource_version="0")
    assert (await asyncio.wait_for(anext(watch), 5))[0] == "ADDED"
    reg.start_event_expiry()  # sweeps at once, then every interval
    etype, obj = await asyncio.wait_for(anext(watch), 5)
    assert (etype, obj["metadata"]["name"]) == ("DELETED", "gone")
    await watch.aclose()  # type: ignore[attr-defined]
    await reg.close()
    assert reg.event_expiry._task is None
