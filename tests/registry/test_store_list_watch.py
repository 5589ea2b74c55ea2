"""Lists (selectors, paging, resourceVersion) and watches (initial events, transitions,
too-old versions, bookmarks) of the generic store."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest

from kubeling.machinery import resources as r
from kubeling.machinery.errors import BadRequest, Gone, Invalid, Timeout
from kubeling.registry import options
from kubeling.registry.registry import Registry
from kubeling.storage.memory import MemoryBackend
from tests.registry.conftest import FakeClock, ctx


def cm(name: str, labels: dict[str, str] | None = None) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name}
    if labels:
        meta["labels"] = labels
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta, "data": {"k": name}}


async def make(registry: Registry, *names: str, ns: str = "default", **labels: str) -> None:
    for n in names:
        await registry.store(r.CONFIGMAPS).create(cm(n, labels or None), namespace=ns, ctx=ctx())


def names(lst: dict[str, Any]) -> list[str]:
    return [i["metadata"]["name"] for i in lst["items"]]


async def next_event(it: AsyncIterator[tuple[str, Any]]) -> tuple[str, Any]:
    return await asyncio.wait_for(anext(it), timeout=5)


# -- list ------------------------------------------------------------------------------------


async def test_list_shape_and_namespace_scope(registry: Registry) -> None:
    await make(registry, "a", "b")
    await make(registry, "c", ns="kube-system")
    out = await registry.store(r.CONFIGMAPS).list(namespace="default")
    assert out["kind"] == "ConfigMapList" and out["apiVersion"] == "v1"
    assert out["metadata"]["resourceVersion"] == str(await registry.backend.current_revision())
    assert names(out) == ["a", "b"]
    assert "kind" not in out["items"][0]
    every = await registry.store(r.CONFIGMAPS).list()
    assert names(every) == ["a", "b", "c"]


async def test_list_label_and_field_selectors(registry: Registry) -> None:
    await make(registry, "a", tier="fe")
    await make(registry, "b", tier="be")
    store = registry.store(r.CONFIGMAPS)
    assert names(await store.list(label_selector="tier=fe")) == ["a"]
    assert names(await store.list(label_selector="tier in (fe,be),tier!=be")) == ["a"]
    assert names(await store.list(field_selector="metadata.name=b")) == ["b"]
    assert names(await store.list(field_selector="metadata.namespace!=default")) == []


async def test_list_unknown_field_label_is_bad_request(registry: Registry) -> None:
    with pytest.raises(BadRequest) as e:
        await registry.store(r.CONFIGMAPS).list(field_selector="spec.foo=x")
    assert e.value.message == (
        '"spec.foo" is not a known field selector: only "metadata.name", "metadata.namespace"'
    )


async def test_list_pages_with_continue_at_the_first_revision(registry: Registry) -> None:
    await make(registry, "a", "b", "c", "d", "e")
    store = registry.store(r.CONFIGMAPS)
    first = await store.list(namespace="default", limit=2)
    assert names(first) == ["a", "b"]
    assert first["metadata"]["remainingItemCount"] == 3
    token = first["metadata"]["continue"]
    await make(registry, "bb")  # written after the first page: not in this list
    second = await store.list(namespace="default", limit=2, continue_=token)
    assert names(second) == ["c", "d"]
    assert second["metadata"]["resourceVersion"] == first["metadata"]["resourceVersion"]
    third = await store.list(namespace="default", limit=2, continue_=second["metadata"]["continue"])
    assert names(third) == ["e"]
    assert "continue" not in third["metadata"]


async def test_list_continue_token_has_upstream_shape(registry: Registry) -> None:
    await make(registry, "a", "b")
    out = await registry.store(r.CONFIGMAPS).list(namespace="default", limit=1)
    raw = out["metadata"]["continue"]
    import base64

    import orjson

    data = orjson.loads(base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4)))
    assert data == {
        "v": "meta.k8s.io/v1",
        "rv": int(out["metadata"]["resourceVersion"]),
        "start": "a\x00",
    }


async def test_list_limit_with_selector_fills_the_page(registry: Registry) -> None:
    await make(registry, "a", tier="x")
    await make(registry, "b", "c")
    await make(registry, "d", "e", tier="x")
    out = await registry.store(r.CONFIGMAPS).list(label_selector="tier=x", limit=2)
    assert names(out) == ["a", "d"]
    assert out["metadata"]["continue"]
    assert "remainingItemCount" not in out["metadata"]


async def test_list_expired_continue_is_gone(registry: Registry, backend: MemoryBackend) -> None:
    await make(registry, "a", "b", "c")
    store = registry.store(r.CONFIGMAPS)
    first = await store.list(namespace="default", limit=1)
    await make(registry, "d", "e")
    await backend.compact(keep_revisions=1)
    with pytest.raises(Gone) as e:
        await store.list(namespace="default", limit=1, continue_=first["metadata"]["continue"])
    assert e.value.message.startswith(
        "The provided continue parameter is too old to display a consistent list result."
    )
    assert e.value.code == 410
    token = e.value.to_status()["metadata"]["continue"]
    rest = await store.list(namespace="default", limit=10, continue_=token)
    assert names(rest) == ["b", "c", "d", "e"]


async def test_list_bad_continue_is_bad_request(registry: Registry) -> None:
    with pytest.raises(BadRequest) as e:
        await registry.store(r.CONFIGMAPS).list(continue_="!!!")
    assert e.value.message.startswith("continue key is not valid")


async def test_list_exact_resource_version_reads_history(registry: Registry) -> None:
    await make(registry, "a")
    rv = (await registry.store(r.CONFIGMAPS).list())["metadata"]["resourceVersion"]
    await make(registry, "b")
    old = await registry.store(r.CONFIGMAPS).list(
        resource_version=rv, resource_version_match="Exact"
    )
    assert names(old) == ["a"]
    assert old["metadata"]["resourceVersion"] == rv
    latest = await registry.store(r.CONFIGMAPS).list(resource_version="0")
    assert names(latest) == ["a", "b"]


async def test_list_exact_compacted_resource_version_is_gone(
    registry: Registry, backend: MemoryBackend
) -> None:
    await make(registry, "a", "b", "c")
    await backend.compact(keep_revisions=1)
    with pytest.raises(Gone) as e:
        await registry.store(r.CONFIGMAPS).list(
            resource_version="2", resource_version_match="Exact"
        )
    assert e.value.message == "The resourceVersion for the provided list is too old."


async def test_list_match_without_resource_version_is_invalid(registry: Registry) -> None:
    with pytest.raises(Invalid) as e:
        await registry.store(r.CONFIGMAPS).list(resource_version_match="NotOlderThan")
    assert e.value.message == (
        'ListOptions.meta.k8s.io "" is invalid: resourceVersionMatch: Forbidden: '
        "resourceVersionMatch is forbidden unless resourceVersion is provided"
    )


@pytest.fixture
async def impatient(backend: MemoryBackend, clock: FakeClock) -> AsyncIterator[Registry]:
    """A registry that does not wait for the store to reach a future resourceVersion."""
    reg = await Registry.open(backend=backend, clock=clock, fresh_wait=0)
    await reg.bootstrap()
    yield reg
    await reg.close()


@pytest.mark.parametrize("match", ["", "NotOlderThan", "Exact"])
async def test_list_future_resource_version_is_too_large(
    impatient: Registry, backend: MemoryBackend, match: str
) -> None:
    current = await backend.current_revision()
    with pytest.raises(Timeout) as e:
        await impatient.store(r.CONFIGMAPS).list(
            namespace="default",
            resource_version=str(current + 10),
            resource_version_match=match,
        )
    assert e.value.to_status() == {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": f"Timeout: Too large resource version: {current + 10}, current: {current}",
        "reason": "Timeout",
        "details": {
            "causes": [
                {"reason": "ResourceVersionTooLarge", "message": "Too large resource version"}
            ],
            "retryAfterSeconds": 1,
        },
        "code": 504,
    }


async def test_list_future_resource_version_waits_for_the_store(
    registry: Registry, backend: MemoryBackend
) -> None:
    current = await backend.current_revision()
    listing = asyncio.ensure_future(
        registry.store(r.CONFIGMAPS).list(namespace="default", resource_version=str(current + 2))
    )
    await make(registry, "a")
    assert not listing.done()
    await make(registry, "b")
    got = await asyncio.wait_for(listing, timeout=5)
    assert names(got) == ["a", "b"]


# -- watch -----------------------------------------------------------------------------------


async def test_watch_from_zero_sends_initial_added_then_changes(registry: Registry) -> None:
    await make(registry, "a")
    store = registry.store(r.CONFIGMAPS)
    it = aiter(store.watch(namespace="default", resource_version="0"))
    t, obj = await next_event(it)
    assert (t, obj["metadata"]["name"], obj["kind"]) == ("ADDED", "a", "ConfigMap")
    await make(registry, "b")
    t, obj = await next_event(it)
    assert (t, obj["metadata"]["name"]) == ("ADDED", "b")
    got = await store.get(namespace="default", name="b")
    got["data"] = {"k": "changed"}
    updated, _ = await store.update(got, namespace="default", name="b", ctx=ctx())
    t, obj = await next_event(it)
    assert t == "MODIFIED" and obj["data"] == {"k": "changed"}
    assert obj["metadata"]["resourceVersion"] == updated["metadata"]["resourceVersion"]
    await store.delete(namespace="default", name="b", options=None, ctx=ctx())
    t, obj = await next_event(it)
    assert t == "DELETED" and obj["metadata"]["name"] == "b"
    assert int(obj["metadata"]["resourceVersion"]) == await registry.backend.current_revision()
    await it.aclose()  # type: ignore[attr-defined]


async def test_watch_from_revision_sends_only_later_changes(registry: Registry) -> None:
    await make(registry, "a")
    rv = (await registry.store(r.CONFIGMAPS).list())["metadata"]["resourceVersion"]
    await make(registry, "b")
    it = aiter(registry.store(r.CONFIGMAPS).watch(resource_version=rv))
    t, obj = await next_event(it)
    assert (t, obj["metadata"]["name"]) == ("ADDED", "b")
    await it.aclose()  # type: ignore[attr-defined]


async def test_watch_too_old_is_gone_before_any_event(registry: Registry) -> None:
    backend = MemoryBackend(window_size=2)
    await backend.start()
    reg = await Registry.open(backend=backend, clock=FakeClock())
    await reg.bootstrap()
    await make(reg, "a", "b", "c")
    it = aiter(reg.store(r.CONFIGMAPS).watch(resource_version="1"))
    with pytest.raises(Gone) as e:
        await next_event(it)
    assert e.value.message.startswith("too old resource version: 1 (")
    assert e.value.to_status()["reason"] == "Expired"
    await backend.close()


async def test_watch_selector_transitions(registry: Registry) -> None:
    store = registry.store(r.CONFIGMAPS)
    await make(registry, "a", tier="fe")
    it = aiter(store.watch(namespace="default", label_selector="tier=fe"))
    t, _ = await next_event(it)
    assert t == "ADDED"
    obj = await store.get(namespace="default", name="a")
    obj["metadata"]["labels"] = {"tier": "be"}
    moved, _ = await store.update(obj, namespace="default", name="a", ctx=ctx())
    t, seen = await next_event(it)
    assert t == "DELETED"
    assert seen["metadata"]["labels"] == {"tier": "fe"}  # the previous content...
    assert seen["metadata"]["resourceVersion"] == moved["metadata"]["resourceVersion"]
    moved["metadata"]["labels"] = {"tier": "fe"}
    await store.update(moved, namespace="default", name="a", ctx=ctx())
    t, seen = await next_event(it)
    assert t == "ADDED" and seen["metadata"]["labels"] == {"tier": "fe"}
    await it.aclose()  # type: ignore[attr-defined]


async def test_watch_send_initial_events_ends_with_annotated_bookmark(registry: Registry) -> None:
    await make(registry, "a")
    it = aiter(
        registry.store(r.CONFIGMAPS).watch(
            resource_version="", allow_bookmarks=True, send_initial_events=True
        )
    )
    t, obj = await next_event(it)
    assert t == "ADDED"
    t, obj = await next_event(it)
    assert t == "BOOKMARK"
    assert obj == {
        "kind": "ConfigMap",
        "apiVersion": "v1",
        "metadata": {
            "resourceVersion": str(await registry.backend.current_revision()),
            "annotations": {"k8s.io/initial-events-end": "true"},
        },
    }
    await it.aclose()  # type: ignore[attr-defined]


@pytest.mark.looptime
async def test_watch_bookmark_after_quiet_interval(registry: Registry) -> None:
    await make(registry, "a")
    rv = await registry.backend.current_revision()
    it = aiter(registry.store(r.CONFIGMAPS).watch(resource_version=str(rv), allow_bookmarks=True))
    t, obj = await asyncio.wait_for(anext(it), timeout=10)
    assert t == "BOOKMARK"
    assert obj["metadata"] == {"resourceVersion": str(rv)}
    await make(registry, "b")
    t, obj = await asyncio.wait_for(anext(it), timeout=10)
    assert (t, obj["metadata"]["name"]) == ("ADDED", "b")
    await it.aclose()  # type: ignore[attr-defined]


async def test_watch_lagging_consumer_gets_expired_error(registry: Registry) -> None:
    backend = MemoryBackend(watcher_queue=1)
    await backend.start()
    reg = await Registry.open(backend=backend, clock=FakeClock())
    await reg.bootstrap()
    it = aiter(
        reg.store(r.CONFIGMAPS).watch(resource_version=str(await backend.current_revision()))
    )
    first = asyncio.ensure_future(anext(it))
    for _ in range(100):  # let the watch register with the backend before writing
        if backend._window.watcher_count:
            break
        await asyncio.sleep(0)
    assert backend._window.watcher_count == 1
    await make(reg, "a", "b", "c")
    t, _ = await asyncio.wait_for(first, timeout=5)
    assert t == "ADDED"
    seen = [await next_event(it)]
    while seen[-1][0] != "ERROR":
        seen.append(await next_event(it))
    status = seen[-1][1]
    assert status["code"] == 410 and status["reason"] == "Expired"
    await backend.close()


def test_continue_round_trip() -> None:
    token = options.encode_continue(
        "/registry/core/configmaps/default/b", "/registry/core/configmaps/default/", 7
    )
    assert options.decode_continue(token, "/registry/core/configmaps/default/") == (
        7,
        "/registry/core/configmaps/default/b",
    )


async def test_watch_list_from_future_resource_version_is_too_large(
    impatient: Registry, backend: MemoryBackend
) -> None:
    current = await backend.current_revision()
    events = impatient.store(r.CONFIGMAPS).watch(
        namespace="default", resource_version=str(current + 5), send_initial_events=True
    )
    with pytest.raises(Timeout) as e:
        await next_event(events)
    assert e.value.message == (
        f"Timeout: Too large resource version: {current + 5}, current: {current}"
    )


async def test_watch_from_future_resource_version_waits_for_it(
    impatient: Registry, backend: MemoryBackend
) -> None:
    # upstream's cacher establishes a plain watch at once; events after the revision come.
    current = await backend.current_revision()
    events = impatient.store(r.CONFIGMAPS).watch(
        namespace="default", resource_version=str(current + 2)
    )
    first = asyncio.ensure_future(next_event(events))
    await make(impatient, "a", "b", "c")
    etype, obj = await first
    assert (etype, obj["metadata"]["name"]) == ("ADDED", "c")
    await events.aclose()  # type: ignore[attr-defined]
