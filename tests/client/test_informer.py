"""Informer: initial list, watch updates, relist after Gone, indexes, resync, sharing."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable

import pytest

from kubeling.client.informer import Informer, SharedInformerFactory, object_key, split_key
from kubeling.machinery.errors import Gone, ServiceUnavailable
from kubeling.machinery.resources import CONFIGMAPS, NAMESPACES, PODS
from kubeling.machinery.types import Obj
from tests.client.fakes import FakeClient, eventually

pytestmark = pytest.mark.looptime


def _cm(name: str, namespace: str = "default", **labels: str) -> Obj:
    return {
        "metadata": {"name": name, "namespace": namespace, "labels": labels},
        "data": {"v": "1"},
    }


class Recorder:
    def __init__(self) -> None:
        self.events: list[tuple[str, str]] = []
        self.changed = asyncio.Event()

    def add(self, obj: Obj) -> None:
        self.events.append(("add", object_key(obj)))
        self.changed.set()

    def update(self, old: Obj, new: Obj) -> None:
        self.events.append(("update", object_key(new)))
        self.changed.set()

    def delete(self, obj: Obj) -> None:
        self.events.append(("delete", object_key(obj)))
        self.changed.set()

    def attach(self, informer: Informer) -> None:
        informer.add_handler(on_add=self.add, on_update=self.update, on_delete=self.delete)

    async def wait_for(self, predicate: Callable[[], bool]) -> None:
        # Virtual time: generous, since resync tests wait for tens of loop seconds.
        async with asyncio.timeout(120):
            while not predicate():
                self.changed.clear()
                await self.changed.wait()


@pytest.fixture
async def fake() -> AsyncIterator[FakeClient]:
    client = FakeClient()
    yield client
    await client.close()


@pytest.fixture
async def started() -> AsyncIterator[list[Informer]]:
    informers: list[Informer] = []
    yield informers
    for informer in informers:
        await informer.stop()


def test_object_key_round_trips() -> None:
    assert object_key(_cm("a", "ns1")) == "ns1/a"
    assert object_key({"metadata": {"name": "node-1"}}) == "node-1"
    assert split_key("ns1/a") == ("ns1", "a")
    assert split_key("node-1") == ("", "node-1")


async def test_informer_initial_list_fills_cache_and_calls_add(
    fake: FakeClient, started: list[Informer]
) -> None:
    for i in range(7):
        await fake.create(CONFIGMAPS, _cm(f"cm{i}"))
    informer = Informer(fake, CONFIGMAPS)
    rec = Recorder()
    rec.attach(informer)
    informer.start()
    started.append(informer)
    await informer.wait_synced()
    assert informer.has_synced
    assert sorted(informer.keys()) == [f"default/cm{i}" for i in range(7)]
    assert sorted(rec.events) == [("add", f"default/cm{i}") for i in range(7)]
    cached = informer.get("default/cm3")
    assert cached is not None
    assert cached["kind"] == "ConfigMap"
    assert cached["apiVersion"] == "v1"
    assert informer.last_sync_resource_version == str(fake.rv)


async def test_informer_follows_list_pages(fake: FakeClient, started: list[Informer]) -> None:
    import kubeling.client.informer as informer_module

    for i in range(5):
        await fake.create(CONFIGMAPS, _cm(f"cm{i}"))
    old = informer_module.LIST_PAGE_SIZE
    informer_module.LIST_PAGE_SIZE = 2
    try:
        informer = Informer(fake, CONFIGMAPS)
        informer.start()
        started.append(informer)
        await informer.wait_synced()
    finally:
        informer_module.LIST_PAGE_SIZE = old
    assert len(informer) == 5
    assert [c for c in fake.calls if c[0] == "list"] == [("list", "configmaps")] * 3


async def test_informer_applies_watch_events(fake: FakeClient, started: list[Informer]) -> None:
    await fake.create(CONFIGMAPS, _cm("a"))
    informer = Informer(fake, CONFIGMAPS)
    rec = Recorder()
    rec.attach(informer)
    informer.start()
    started.append(informer)
    await informer.wait_synced()
    await fake.wait_watches(1)

    await fake.create(CONFIGMAPS, _cm("b"))
    await fake.patch(
        CONFIGMAPS, name="a", namespace="default", patch={"data": {"v": "2"}}, patch_type="merge"
    )
    await fake.delete(CONFIGMAPS, name="b", namespace="default")
    await rec.wait_for(lambda: len(rec.events) == 4)
    assert rec.events == [
        ("add", "default/a"),
        ("add", "default/b"),
        ("update", "default/a"),
        ("delete", "default/b"),
    ]
    a = informer.get("default/a")
    assert a is not None and a["data"] == {"v": "2"}
    assert informer.get("default/b") is None
    assert informer.last_sync_resource_version == str(fake.rv)


async def test_informer_returns_copies_callers_can_mutate(
    fake: FakeClient, started: list[Informer]
) -> None:
    await fake.create(CONFIGMAPS, _cm("a"))
    informer = Informer(fake, CONFIGMAPS)
    informer.start()
    started.append(informer)
    await informer.wait_synced()
    got = informer.get("default/a")
    assert got is not None
    got["data"]["v"] = "mutated"
    again = informer.get("default/a")
    assert again is not None and again["data"]["v"] == "1"


async def test_informer_peek_returns_the_cached_object_which_updates_replace(
    fake: FakeClient, started: list[Informer]
) -> None:
    await fake.create(CONFIGMAPS, _cm("a"))
    informer = Informer(fake, CONFIGMAPS)
    informer.start()
    started.append(informer)
    await informer.wait_synced()
    first = informer.peek("default/a")
    assert first is not None and first is informer.peek("default/a")
    assert informer.peek("default/missing") is None
    await fake.patch(
        CONFIGMAPS, name="a", namespace="default", patch={"data": {"v": "2"}}, patch_type="merge"
    )
    await eventually(lambda: (informer.peek("default/a") or {}).get("data", {}).get("v") == "2")
    # An update replaces the cached object; a reference taken earlier stays as it was.
    assert first["data"]["v"] == "1"


async def test_informer_relists_after_gone_and_reports_missed_deletes(
    fake: FakeClient, started: list[Informer]
) -> None:
    for name in ("a", "b", "c"):
        await fake.create(CONFIGMAPS, _cm(name))
    informer = Informer(fake, CONFIGMAPS)
    rec = Recorder()
    rec.attach(informer)
    informer.start()
    started.append(informer)
    await informer.wait_synced()
    await fake.wait_watches(1)
    assert informer.relists == 1

    # While the watch is "away": b vanishes without an event, d appears, history compacts.
    fake.silently_delete(CONFIGMAPS, name="b", namespace="default")
    fake.objects[("configmaps", "default", "d")] = {
        "kind": "ConfigMap",
        "apiVersion": "v1",
        "metadata": {"name": "d", "namespace": "default", "resourceVersion": str(fake.rv + 1)},
    }
    fake.rv += 1
    fake.compact()
    fake.break_watches(Gone("too old resource version: 1 (2)"))

    await rec.wait_for(lambda: ("delete", "default/b") in rec.events)
    await rec.wait_for(lambda: ("add", "default/d") in rec.events)
    assert informer.relists == 2
    assert sorted(informer.keys()) == ["default/a", "default/c", "default/d"]
    # Unchanged objects were not re-delivered as updates by the relist.
    assert not any(e[0] == "update" for e in rec.events)


async def test_informer_rewatches_from_last_version_after_transient_error(
    fake: FakeClient, started: list[Informer]
) -> None:
    await fake.create(CONFIGMAPS, _cm("a"))
    informer = Informer(fake, CONFIGMAPS, backoff_initial=1.0)
    rec = Recorder()
    rec.attach(informer)
    informer.start()
    started.append(informer)
    await informer.wait_synced()
    await fake.wait_watches(1)
    rv_before = informer.last_sync_resource_version

    fake.break_watches(ServiceUnavailable("connection reset"))
    await fake.wait_watches(2)
    assert fake.calls[-1] == ("watch", rv_before)
    assert informer.relists == 1, "a transient error re-watches; it does not relist"
    await fake.create(CONFIGMAPS, _cm("b"))
    await rec.wait_for(lambda: ("add", "default/b") in rec.events)


async def test_informer_retries_failed_initial_list_with_backoff(
    fake: FakeClient, started: list[Informer]
) -> None:
    await fake.create(CONFIGMAPS, _cm("a"))
    fake.fail_next["list"] = [ServiceUnavailable("down"), ServiceUnavailable("down")]
    informer = Informer(fake, CONFIGMAPS, backoff_initial=1.0)
    informer.start()
    started.append(informer)
    loop = asyncio.get_running_loop()
    start = loop.time()
    async with asyncio.timeout(60):
        await informer.wait_synced()
    # Two failures back off ~1s then ~2s (plus up to 20% jitter) before the third list.
    assert 3.0 <= loop.time() - start <= 3.7
    assert informer.keys() == ["default/a"]


async def test_informer_honours_bookmarks(fake: FakeClient, started: list[Informer]) -> None:
    await fake.create(CONFIGMAPS, _cm("a"))
    informer = Informer(fake, CONFIGMAPS)
    rec = Recorder()
    rec.attach(informer)
    informer.start()
    started.append(informer)
    await informer.wait_synced()
    await fake.wait_watches(1)
    fake.bookmark("configmaps")
    await eventually(lambda: informer.last_sync_resource_version == str(fake.rv))
    assert rec.events == [("add", "default/a")]
    # The next watch resumes from the bookmark.
    fake.break_watches(ServiceUnavailable("reset"))
    await fake.wait_watches(2)
    assert fake.calls[-1] == ("watch", str(fake.rv))


async def test_informer_index_tracks_changes(fake: FakeClient, started: list[Informer]) -> None:
    def node_of(pod: Obj) -> list[str]:
        node = (pod.get("spec") or {}).get("nodeName")
        return [node] if node else []

    await fake.create(PODS, {"metadata": {"name": "p1", "namespace": "default"}, "spec": {}})
    await fake.create(
        PODS, {"metadata": {"name": "p2", "namespace": "default"}, "spec": {"nodeName": "n1"}}
    )
    informer = Informer(fake, PODS)
    informer.add_index("node", node_of)
    rec = Recorder()
    rec.attach(informer)
    informer.start()
    started.append(informer)
    await informer.wait_synced()
    await fake.wait_watches(1)
    assert [object_key(p) for p in informer.by_index("node", "n1")] == ["default/p2"]

    await fake.patch(
        PODS, name="p1", namespace="default", patch={"spec": {"nodeName": "n1"}}, patch_type="merge"
    )
    await fake.patch(
        PODS, name="p2", namespace="default", patch={"spec": {"nodeName": "n2"}}, patch_type="merge"
    )
    await rec.wait_for(lambda: len(rec.events) == 4)
    assert informer.index_keys("node", "n1") == ["default/p1"]
    assert informer.index_keys("node", "n2") == ["default/p2"]
    await fake.delete(PODS, name="p2", namespace="default")
    await rec.wait_for(lambda: len(rec.events) == 5)
    assert informer.by_index("node", "n2") == []
    assert [object_key(p) for p in informer.list(namespace="default")] == ["default/p1"]


async def test_informer_label_selector_scopes_cache(
    fake: FakeClient, started: list[Informer]
) -> None:
    await fake.create(CONFIGMAPS, _cm("web", app="web"))
    await fake.create(CONFIGMAPS, _cm("db", app="db"))
    informer = Informer(fake, CONFIGMAPS, label_selector="app=web")
    informer.start()
    started.append(informer)
    await informer.wait_synced()
    assert informer.keys() == ["default/web"]


async def test_informer_resync_redelivers_cached_objects(
    fake: FakeClient, started: list[Informer]
) -> None:
    await fake.create(NAMESPACES, {"metadata": {"name": "ns1"}})
    informer = Informer(fake, NAMESPACES, resync_period=30.0)
    rec = Recorder()
    rec.attach(informer)
    informer.start()
    started.append(informer)
    await informer.wait_synced()
    loop = asyncio.get_running_loop()
    start = loop.time()
    await rec.wait_for(lambda: ("update", "ns1") in rec.events)
    assert loop.time() - start == pytest.approx(30.0, abs=0.5)
    await rec.wait_for(lambda: rec.events.count(("update", "ns1")) == 2)


async def test_informer_late_handler_sees_existing_objects(
    fake: FakeClient, started: list[Informer]
) -> None:
    await fake.create(CONFIGMAPS, _cm("a"))
    informer = Informer(fake, CONFIGMAPS)
    informer.start()
    started.append(informer)
    await informer.wait_synced()
    rec = Recorder()
    rec.attach(informer)
    assert rec.events == [("add", "default/a")]


async def test_informer_handler_error_does_not_stop_others(
    fake: FakeClient, started: list[Informer]
) -> None:
    await fake.create(CONFIGMAPS, _cm("a"))
    informer = Informer(fake, CONFIGMAPS)

    def broken(obj: Obj) -> None:
        raise RuntimeError("handler bug")

    informer.add_handler(on_add=broken)
    rec = Recorder()
    rec.attach(informer)
    informer.start()
    started.append(informer)
    await informer.wait_synced()
    assert rec.events == [("add", "default/a")]


async def test_shared_factory_shares_one_informer_per_scope(fake: FakeClient) -> None:
    factory = SharedInformerFactory(fake)
    a = factory.informer(CONFIGMAPS)
    b = factory.informer(CONFIGMAPS)
    c = factory.informer(CONFIGMAPS, namespace="kube-system")
    assert a is b
    assert a is not c
    factory.start()
    try:
        async with asyncio.timeout(5):
            await factory.wait_for_sync()
        await fake.wait_watches(2)
        assert len([call for call in fake.calls if call[0] == "watch"]) == 2
    finally:
        await factory.stop()
    assert not a.running
