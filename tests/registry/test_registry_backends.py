"""The Registry facade end to end on every store backend: MemoryBackend and SQLite."""

from __future__ import annotations

import asyncio
import pathlib
from collections.abc import AsyncIterator
from typing import Any

import pytest

from kubeling.machinery import resources as r
from kubeling.machinery.errors import Conflict, NotFound
from kubeling.registry.registry import Registry
from kubeling.storage.interface import Backend
from kubeling.storage.memory import MemoryBackend
from tests.registry.conftest import FakeClock, ctx


@pytest.fixture(params=["memory", "sqlite"])
async def any_registry(
    request: pytest.FixtureRequest, tmp_path: pathlib.Path
) -> AsyncIterator[Registry]:
    backend: Backend
    if request.param == "memory":
        backend = MemoryBackend()
    else:
        from kubeling.storage.sqlite import SqliteBackend

        backend = SqliteBackend(tmp_path / "state.db")
    await backend.start()
    reg = await Registry.open(backend=backend, clock=FakeClock())
    await reg.bootstrap()
    try:
        yield reg
    finally:
        await reg.close()
        await backend.close()


def cm(name: str, **data: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": data}


async def test_registry_lists_serves_every_catalogued_resource(any_registry: Registry) -> None:
    assert r.STATEFULSETS in any_registry.resources()
    assert any_registry.store(r.PODS).info is r.PODS
    assert any_registry.strategy(r.PODS).status_subresource


async def test_registry_crud_cycle(any_registry: Registry) -> None:
    store = any_registry.store(r.CONFIGMAPS)
    made = await store.create(cm("a", k="1"), namespace="default", ctx=ctx())
    rv = made["metadata"]["resourceVersion"]
    made["data"] = {"k": "2"}
    updated, _ = await store.update(made, namespace="default", name="a", ctx=ctx())
    assert int(updated["metadata"]["resourceVersion"]) > int(rv)
    made["metadata"]["resourceVersion"] = rv
    with pytest.raises(Conflict):
        await store.update(made, namespace="default", name="a", ctx=ctx())
    listed = await store.list(namespace="default")
    assert [i["data"] for i in listed["items"]] == [{"k": "2"}]
    old = await store.list(namespace="default", resource_version=rv, resource_version_match="Exact")
    assert [i["data"] for i in old["items"]] == [{"k": "1"}]
    _, finished = await store.delete(namespace="default", name="a", options=None, ctx=ctx())
    assert finished
    with pytest.raises(NotFound):
        await store.get(namespace="default", name="a")


async def test_registry_paged_list(any_registry: Registry) -> None:
    store = any_registry.store(r.CONFIGMAPS)
    for n in ("a", "b", "c"):
        await store.create(cm(n), namespace="default", ctx=ctx())
    first = await store.list(namespace="default", limit=2)
    await store.create(cm("ab"), namespace="default", ctx=ctx())
    rest = await store.list(namespace="default", limit=2, continue_=first["metadata"]["continue"])
    got = [i["metadata"]["name"] for i in first["items"] + rest["items"]]
    assert got == ["a", "b", "c"]


async def test_registry_watch(any_registry: Registry) -> None:
    store = any_registry.store(r.CONFIGMAPS)
    await store.create(cm("a"), namespace="default", ctx=ctx())
    listed = await store.list(namespace="default")
    it = aiter(
        store.watch(namespace="default", resource_version=listed["metadata"]["resourceVersion"])
    )
    pending = asyncio.ensure_future(anext(it))
    await store.create(cm("b"), namespace="default", ctx=ctx())
    await store.delete(namespace="default", name="a", options=None, ctx=ctx())
    t1, o1 = await asyncio.wait_for(pending, timeout=10)
    t2, o2 = await asyncio.wait_for(anext(it), timeout=10)
    assert (t1, o1["metadata"]["name"]) == ("ADDED", "b")
    assert (t2, o2["metadata"]["name"]) == ("DELETED", "a")
    await it.aclose()  # type: ignore[attr-defined]


async def test_concurrent_patches_all_land(any_registry: Registry) -> None:
    store = any_registry.store(r.CONFIGMAPS)
    await store.create(cm("a"), namespace="default", ctx=ctx())

    async def label(i: int) -> None:
        await store.patch(
            namespace="default",
            name="a",
            patch=b'{"metadata":{"labels":{"l%d":"v"}}}' % i,
            content_type="application/merge-patch+json",
            ctx=ctx(field_manager=f"m{i}"),
        )

    await asyncio.gather(*(label(i) for i in range(8)))
    got = await store.get(namespace="default", name="a")
    assert got["metadata"]["labels"] == {f"l{i}": "v" for i in range(8)}
