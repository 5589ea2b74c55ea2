"""An in-memory ``Client`` for testing what sits on top of the client (informers, the
controller runner, the event recorder) without a registry: a revision counter, a history for
watch replay that tests can compact, and hooks to break watches on purpose."""

from __future__ import annotations

import asyncio
import builtins
import copy
from collections.abc import AsyncIterator, Callable
from typing import Any

from kubeling.client.interface import PatchType, WatchEvent
from kubeling.machinery.errors import AlreadyExists, Gone, NotFound, StatusError
from kubeling.machinery.objects import partial_object_metadata, partial_object_metadata_list
from kubeling.machinery.types import Obj, ResourceInfo, WatchEventType

_END = object()


def _matches(obj: Obj, namespace: str, label_selector: str) -> bool:
    meta = obj.get("metadata") or {}
    if namespace and meta.get("namespace") != namespace:
        return False
    labels = meta.get("labels") or {}
    for term in filter(None, label_selector.split(",")):
        key, _, value = term.partition("=")
        if labels.get(key) != value:
            return False
    return True


class FakeClient:
    def __init__(self) -> None:
        self.objects: dict[tuple[str, str, str], Obj] = {}
        self.rv = 100
        self.history: list[tuple[int, str, WatchEventType, Obj]] = []
        self.oldest = 0
        self.watchers: list[tuple[str, str, str, asyncio.Queue[Any]]] = []
        self.calls: list[tuple[str, str]] = []
        self.fail_next: dict[str, list[StatusError]] = {}
        self.watch_started = asyncio.Condition()
        self.watch_count = 0

    # --- helpers for tests ---------------------------------------------------------------

    def _bump(self) -> int:
        self.rv += 1
        return self.rv

    def _emit(self, plural: str, etype: WatchEventType, obj: Obj) -> None:
        rv = int(obj["metadata"]["resourceVersion"])
        self.history.append((rv, plural, etype, copy.deepcopy(obj)))
        for w_plural, ns, sel, queue in self.watchers:
            if w_plural == plural and _matches(obj, ns, sel):
                queue.put_nowait(WatchEvent(type=etype, object=copy.deepcopy(obj)))

    def compact(self) -> None:
        """Forget all history: watches from any earlier revision answer Gone."""
        self.oldest = self.rv + 1
        self.history.clear()

    def break_watches(self, error: StatusError) -> None:
        for *_, queue in self.watchers:
            queue.put_nowait(error)

    def bookmark(self, plural: str) -> None:
        rv = self._bump()
        for w_plural, _, _, queue in self.watchers:
            if w_plural == plural:
                queue.put_nowait(
                    WatchEvent(type="BOOKMARK", object={"metadata": {"resourceVersion": str(rv)}})
                )

    def silently_delete(self, resource: ResourceInfo, *, name: str, namespace: str = "") -> None:
        """Delete without telling watchers (as if the event fell into a compacted gap)."""
        del self.objects[(resource.plural, namespace, name)]
        self._bump()

    async def wait_watches(self, n: int) -> None:
        async with self.watch_started:
            await self.watch_started.wait_for(lambda: self.watch_count >= n)

    def _maybe_fail(self, verb: str) -> None:
        pending = self.fail_next.get(verb)
        if pending:
            raise pending.pop(0)

    # --- Client --------------------------------------------------------------------------

    async def get(
        self, resource: ResourceInfo, *, name: str, namespace: str = "", subresource: str = ""
    ) -> Obj:
        self.calls.append(("get", name))
        self._maybe_fail("get")
        try:
            return copy.deepcopy(self.objects[(resource.plural, namespace, name)])
        except KeyError:
            raise NotFound.for_object(
                resource=resource.plural, group=resource.group, name=name
            ) from None

    async def list(
        self,
        resource: ResourceInfo,
        *,
        namespace: str = "",
        label_selector: str = "",
        field_selector: str = "",
        limit: int = 0,
        continue_: str = "",
        resource_version: str = "",
        metadata_only: bool = False,
    ) -> Obj:
        self.calls.append(("list", resource.plural))
        self._maybe_fail("list")
        items = [
            copy.deepcopy(o)
            for (plural, _, _), o in sorted(self.objects.items())
            if plural == resource.plural and _matches(o, namespace, label_selector)
        ]
        start = int(continue_ or 0)
        meta: Obj = {"resourceVersion": str(self.rv)}
        if limit and start + limit < len(items):
            meta["continue"] = str(start + limit)
            items = items[start : start + limit]
        else:
            items = items[start:]
        if metadata_only:
            return partial_object_metadata_list({"metadata": meta, "items": items})
        return {
            "kind": f"{resource.kind}List",
            "apiVersion": "v1",
            "metadata": meta,
            "items": items,
        }

    async def watch(
        self,
        resource: ResourceInfo,
        *,
        namespace: str = "",
        label_selector: str = "",
        field_selector: str = "",
        resource_version: str = "",
        allow_bookmarks: bool = True,
        timeout_seconds: int = 0,
        metadata_only: bool = False,
    ) -> AsyncIterator[WatchEvent]:
        self.calls.append(("watch", resource_version))
        self._maybe_fail("watch")
        queue: asyncio.Queue[Any] = asyncio.Queue()
        if resource_version in ("", "0"):
            for (plural, _, _), o in sorted(self.objects.items()):
                if plural == resource.plural and _matches(o, namespace, label_selector):
                    queue.put_nowait(WatchEvent(type="ADDED", object=copy.deepcopy(o)))
        else:
            since = int(resource_version)
            if since < self.oldest - 1:
                raise Gone(f"too old resource version: {since} ({self.oldest})")
            for rv, plural, etype, o in self.history:
                if (
                    rv > since
                    and plural == resource.plural
                    and _matches(o, namespace, label_selector)
                ):
                    queue.put_nowait(WatchEvent(type=etype, object=copy.deepcopy(o)))
        entry = (resource.plural, namespace, label_selector, queue)
        self.watchers.append(entry)
        async with self.watch_started:
            self.watch_count += 1
            self.watch_started.notify_all()
        try:
            while True:
                item = await queue.get()
                if isinstance(item, StatusError):
                    raise item
                if item is _END:
                    return
                if metadata_only:
                    item = WatchEvent(type=item.type, object=partial_object_metadata(item.object))
                yield item
        finally:
            self.watchers.remove(entry)

    async def create(
        self,
        resource: ResourceInfo,
        obj: Obj,
        *,
        namespace: str = "",
        subresource: str = "",
        name: str = "",
        dry_run: bool = False,
        field_manager: str = "",
    ) -> Obj:
        self.calls.append(("create", obj["metadata"].get("name", "")))
        self._maybe_fail("create")
        obj = copy.deepcopy(obj)
        meta = obj.setdefault("metadata", {})
        namespace = namespace or meta.get("namespace", "")
        if resource.namespaced:
            meta["namespace"] = namespace
        key = (resource.plural, namespace, meta["name"])
        if key in self.objects:
            raise AlreadyExists.for_object(
                resource=resource.plural, group=resource.group, name=meta["name"]
            )
        meta["resourceVersion"] = str(self._bump())
        meta.setdefault("uid", f"uid-{meta['name']}")
        obj.setdefault("kind", resource.kind)
        obj.setdefault("apiVersion", resource.api_version)
        self.objects[key] = obj
        self._emit(resource.plural, "ADDED", obj)
        return copy.deepcopy(obj)

    async def update(
        self,
        resource: ResourceInfo,
        obj: Obj,
        *,
        subresource: str = "",
        dry_run: bool = False,
        field_manager: str = "",
    ) -> Obj:
        self.calls.append(("update", obj["metadata"]["name"]))
        self._maybe_fail("update")
        obj = copy.deepcopy(obj)
        meta = obj["metadata"]
        key = (resource.plural, meta.get("namespace", ""), meta["name"])
        if key not in self.objects:
            raise NotFound.for_object(resource=resource.plural, group="", name=meta["name"])
        meta["resourceVersion"] = str(self._bump())
        self.objects[key] = obj
        self._emit(resource.plural, "MODIFIED", obj)
        return copy.deepcopy(obj)

    async def patch(
        self,
        resource: ResourceInfo,
        *,
        name: str,
        patch: Obj | builtins.list[Obj],
        patch_type: PatchType,
        namespace: str = "",
        subresource: str = "",
        field_manager: str = "",
        force: bool = False,
        dry_run: bool = False,
    ) -> Obj:
        self.calls.append(("patch", name))
        self._maybe_fail("patch")
        assert patch_type == "merge" and isinstance(patch, dict)
        key = (resource.plural, namespace, name)
        if key not in self.objects:
            raise NotFound.for_object(resource=resource.plural, group="", name=name)
        obj = copy.deepcopy(self.objects[key])
        obj.update(copy.deepcopy(patch))
        obj["metadata"]["resourceVersion"] = str(self._bump())
        self.objects[key] = obj
        self._emit(resource.plural, "MODIFIED", obj)
        return copy.deepcopy(obj)

    async def delete(
        self,
        resource: ResourceInfo,
        *,
        name: str,
        namespace: str = "",
        grace_period_seconds: int | None = None,
        propagation_policy: str = "",
        preconditions: Obj | None = None,
        dry_run: bool = False,
    ) -> Obj:
        self.calls.append(("delete", name))
        key = (resource.plural, namespace, name)
        if key not in self.objects:
            raise NotFound.for_object(resource=resource.plural, group="", name=name)
        obj = self.objects.pop(key)
        obj["metadata"]["resourceVersion"] = str(self._bump())
        self._emit(resource.plural, "DELETED", obj)
        return copy.deepcopy(obj)

    async def close(self) -> None:
        for *_, queue in self.watchers:
            queue.put_nowait(_END)


async def eventually(predicate: Callable[[], bool], *, within: float = 10.0) -> None:
    """Return as soon as ``predicate()`` holds; ``TimeoutError`` after ``within`` seconds."""
    async with asyncio.timeout(within):
        # Polling is the point here: the state checked has no event of its own.
        while not predicate():  # noqa: ASYNC110
            await asyncio.sleep(0.01)
