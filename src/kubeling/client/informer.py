"""Informers: a local, watch-fed cache of one resource, with change handlers and indexes.

An informer lists the resource, then watches from the list's resourceVersion, keeping a
cache keyed ``namespace/name`` (``name`` for cluster-scoped objects, as client-go's
``MetaNamespaceKeyFunc``). Handlers see adds, updates and deletes; after a relist (the watch
answered ``Gone``, or failed repeatedly) the cache is diffed against the new list so handlers
still see every object that changed or vanished meanwhile. A resync period re-delivers every
cached object as an update, the safety net client-go offers against missed edge triggers.

The design choice is one watch per (resource, namespace, selectors) shared by every
controller in the process: ``SharedInformerFactory`` hands out the same ``Informer`` for the
same scope, and each controller adds its own handlers. Handlers receive the cached objects
themselves and must treat them as read-only; ``get``, ``list`` and ``by_index`` return deep
copies, which callers may change freely.

A ``metadata_only`` informer caches ``PartialObjectMetadata`` (without ``managedFields``)
instead of whole objects, like client-go's metadata informers: for a controller that only
follows owner references and finalizers, as the garbage collector does over every kind, it
keeps a few hundred bytes per object where a ConfigMap or Secret may hold a megabyte.
"""

from __future__ import annotations

import asyncio
import builtins
import contextlib
import inspect
import logging
import random
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass

from kubeling.client.interface import Client, WatchEvent
from kubeling.machinery.errors import Gone, StatusError
from kubeling.machinery.objects import PARTIAL_OBJECT_METADATA, deep_copy, partial_object_metadata
from kubeling.machinery.types import Obj, ResourceInfo

log = logging.getLogger(__name__)

AddHandler = Callable[[Obj], Awaitable[None] | None]
UpdateHandler = Callable[[Obj, Obj], Awaitable[None] | None]
DeleteHandler = Callable[[Obj], Awaitable[None] | None]
IndexFunc = Callable[[Obj], Iterable[str]]

LIST_PAGE_SIZE = 500


def object_key(obj: Obj) -> str:
    """``namespace/name``, or ``name`` for cluster-scoped objects."""
    meta = obj.get("metadata") or {}
    namespace = meta.get("namespace") or ""
    name = meta.get("name") or ""
    return f"{namespace}/{name}" if namespace else name


def split_key(key: str) -> tuple[str, str]:
    """``(namespace, name)`` from a key made by ``object_key``."""
    namespace, _, name = key.rpartition("/")
    return namespace, name


def namespace_index(obj: Obj) -> list[str]:
    return [(obj.get("metadata") or {}).get("namespace") or ""]


def _rv(obj: Obj) -> str:
    return str((obj.get("metadata") or {}).get("resourceVersion") or "")


@dataclass(frozen=True, kw_only=True)
class _Handlers:
    on_add: AddHandler | None
    on_update: UpdateHandler | None
    on_delete: DeleteHandler | None


class Informer:
    """List+watch cache of one resource in one scope. Start with ``start()``."""

    def __init__(
        self,
        client: Client,
        resource: ResourceInfo,
        *,
        namespace: str = "",
        label_selector: str = "",
        field_selector: str = "",
        resync_period: float = 0.0,
        backoff_initial: float = 0.8,
        backoff_max: float = 30.0,
        metadata_only: bool = False,
    ) -> None:
        self.client = client
        self.metadata_only = metadata_only
        self.resource = resource
        self.namespace = namespace
        self.label_selector = label_selector
        self.field_selector = field_selector
        self.resync_period = resync_period
        self.backoff_initial = backoff_initial
        self.backoff_max = backoff_max
        self._cache: dict[str, Obj] = {}
        self._handlers: list[_Handlers] = []
        self._index_funcs: dict[str, IndexFunc] = {"namespace": namespace_index}
        self._indexes: dict[str, dict[str, set[str]]] = {"namespace": {}}
        self._index_values: dict[str, dict[str, list[str]]] = {"namespace": {}}
        self._synced = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._last_rv = ""
        self._background: set[asyncio.Future[None]] = set()
        self.relists = 0
        """How many times the informer listed (1 after the initial sync)."""

    # --- configuration ---------------------------------------------------------------------

    def add_handler(
        self,
        *,
        on_add: AddHandler | None = None,
        on_update: UpdateHandler | None = None,
        on_delete: DeleteHandler | None = None,
    ) -> None:
        """Register handlers; a handler added after sync first sees every cached object as
        an add, as client-go's ``AddEventHandler`` does."""
        handlers = _Handlers(on_add=on_add, on_update=on_update, on_delete=on_delete)
        self._handlers.append(handlers)
        if self._synced.is_set() and on_add is not None:
            for obj in list(self._cache.values()):
                self._spawn_call(on_add, obj)

    def add_index(self, name: str, fn: IndexFunc) -> None:
        """Index cached objects by every value ``fn`` returns for them."""
        self._index_funcs[name] = fn
        self._indexes[name] = {}
        self._index_values[name] = {}
        for key, obj in self._cache.items():
            self._index_add(name, key, obj)

    # --- reading the cache -----------------------------------------------------------------

    @property
    def has_synced(self) -> bool:
        return self._synced.is_set()

    async def wait_synced(self) -> None:
        """Return once the first list is in the cache (bound it with ``asyncio.timeout``)."""
        await self._synced.wait()

    @property
    def last_sync_resource_version(self) -> str:
        return self._last_rv

    def get(self, key: str) -> Obj | None:
        obj = self._cache.get(key)
        return deep_copy(obj) if obj is not None else None

    def peek(self, key: str) -> Obj | None:
        """The cached object itself, not a copy, for reads on per-event paths.

        The informer replaces a cached object on update and never mutates it, so the
        reference stays a consistent snapshot; the caller must not mutate it either.
        """
        return self._cache.get(key)

    def get_by_name(self, *, name: str, namespace: str = "") -> Obj | None:
        return self.get(f"{namespace}/{name}" if namespace else name)

    def keys(self) -> builtins.list[str]:
        return list(self._cache)

    def list(self, *, namespace: str | None = None) -> builtins.list[Obj]:
        if namespace is None:
            return [deep_copy(o) for o in self._cache.values()]
        return self.by_index("namespace", namespace)

    def by_index(self, name: str, value: str) -> builtins.list[Obj]:
        keys = self._indexes[name].get(value, set())
        return [deep_copy(self._cache[k]) for k in sorted(keys) if k in self._cache]

    def index_keys(self, name: str, value: str) -> builtins.list[str]:
        return sorted(self._indexes[name].get(value, set()))

    def __len__(self) -> int:
        return len(self._cache)

    # --- running ---------------------------------------------------------------------------

    def start(self) -> None:
        if self._tasks:
            return
        self._tasks.append(asyncio.create_task(self._run(), name=f"informer {self._scope()}"))
        if self.resync_period > 0:
            self._tasks.append(
                asyncio.create_task(self._resync_loop(), name=f"resync {self._scope()}")
            )

    @property
    def running(self) -> bool:
        return bool(self._tasks)

    async def stop(self) -> None:
        tasks, self._tasks = self._tasks, []
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task

    def _scope(self) -> str:
        scope = self.resource.qualified
        if self.namespace:
            scope += f" in {self.namespace}"
        if self.label_selector:
            scope += f" -l {self.label_selector}"
        if self.field_selector:
            scope += f" --field-selector {self.field_selector}"
        return scope

    async def _run(self) -> None:
        delay = self.backoff_initial
        need_list = True
        while True:
            listed_now = False
            try:
                if need_list:
                    await self._list_and_replace()
                    need_list = False
                    listed_now = True
                    delay = self.backoff_initial
                loop = asyncio.get_running_loop()
                opened = loop.time()
                if await self._watch_once() or loop.time() - opened >= 1.0:
                    # A stream that ended cleanly (timeoutSeconds) is simply re-watched.
                    delay = self.backoff_initial
                    continue
                # An empty stream that closed at once: do not spin on a broken server.
                log.debug(
                    "Watch of %s closed at once; re-watching after %.1fs.", self._scope(), delay
                )
            except asyncio.CancelledError:
                raise
            except Gone as e:
                log.debug("Watch of %s expired (%s); relisting.", self._scope(), e)
                need_list = True
                if not listed_now:
                    continue
                # Expired right after a fresh list: back off rather than list in a loop.
            except StatusError as e:
                log.warning(
                    "Informer for %s failed: %s; retrying in %.1fs.", self._scope(), e, delay
                )
            except Exception:
                log.exception("Informer for %s failed; retrying in %.1fs.", self._scope(), delay)
            # Any other failure: back off, then relist if we never listed, else re-watch from
            # the last resourceVersion (a Gone then forces the relist).
            await asyncio.sleep(delay * (1 + random.random() * 0.2))
            delay = min(delay * 2, self.backoff_max)
            if not self._last_rv:
                need_list = True

    async def _list_and_replace(self) -> None:
        items: builtins.list[Obj] = []
        continue_ = ""
        rv = ""
        while True:
            page = await self.client.list(
                self.resource,
                namespace=self.namespace,
                label_selector=self.label_selector,
                field_selector=self.field_selector,
                limit=LIST_PAGE_SIZE,
                continue_=continue_,
                metadata_only=self.metadata_only,
            )
            items.extend(page.get("items") or [])
            meta = page.get("metadata") or {}
            if not rv:
                rv = str(meta.get("resourceVersion") or "")
            continue_ = meta.get("continue") or ""
            if not continue_:
                break
        self.relists += 1
        await self._replace(items)
        self._last_rv = rv
        self._synced.set()

    async def _replace(self, items: builtins.list[Obj]) -> None:
        fresh: dict[str, Obj] = {}
        for item in items:
            obj = self._prepare(item)
            fresh[object_key(obj)] = obj
        for key in [k for k in self._cache if k not in fresh]:
            gone = self._cache.pop(key)
            self._index_remove(key, gone)
            await self._dispatch_delete(gone)
        for key, obj in fresh.items():
            old = self._cache.get(key)
            self._store(key, obj, old)
            if old is None:
                await self._dispatch_add(obj)
            elif _rv(old) != _rv(obj):
                await self._dispatch_update(old, obj)

    async def _watch_once(self) -> int:
        """Follow one watch stream to its end; the number of events it carried."""
        stream = self.client.watch(
            self.resource,
            namespace=self.namespace,
            label_selector=self.label_selector,
            field_selector=self.field_selector,
            resource_version=self._last_rv,
            allow_bookmarks=True,
            timeout_seconds=random.randint(300, 600),
            metadata_only=self.metadata_only,
        )
        count = 0
        try:
            async for event in stream:
                count += 1
                await self._apply(event)
            return count
        finally:
            aclose = getattr(stream, "aclose", None)
            if aclose is not None:
                await aclose()

    async def _apply(self, event: WatchEvent) -> None:
        obj = event.object
        rv = _rv(obj)
        if event.type == "BOOKMARK":
            if rv:
                self._last_rv = rv
            return
        obj = self._prepare(obj)
        key = object_key(obj)
        if event.type in ("ADDED", "MODIFIED"):
            old = self._cache.get(key)
            self._store(key, obj, old)
            if old is None:
                await self._dispatch_add(obj)
            else:
                await self._dispatch_update(old, obj)
        elif event.type == "DELETED":
            old = self._cache.pop(key, None)
            if old is not None:
                self._index_remove(key, old)
            await self._dispatch_delete(obj)
        if rv:
            self._last_rv = rv

    async def _resync_loop(self) -> None:
        while True:
            await asyncio.sleep(self.resync_period)
            if not self._synced.is_set():
                continue
            for obj in list(self._cache.values()):
                await self._dispatch_update(obj, obj)

    # --- cache and index bookkeeping -------------------------------------------------------

    def _prepare(self, obj: Obj) -> Obj:
        """The object as the cache keeps it and handlers see it."""
        if not self.metadata_only:
            # List items carry no kind/apiVersion on the wire; watch objects do. Make both
            # look the same to handlers.
            obj.setdefault("kind", self.resource.kind)
            obj.setdefault("apiVersion", self.resource.api_version)
            return obj
        # A server without metadata support answers whole objects: keep only the metadata.
        (obj.get("metadata") or {}).pop("managedFields", None)
        return obj if obj.get("kind") == PARTIAL_OBJECT_METADATA else partial_object_metadata(obj)

    def _store(self, key: str, obj: Obj, old: Obj | None) -> None:
        if old is not None:
            self._index_remove(key, old)
        self._cache[key] = obj
        for name in self._index_funcs:
            self._index_add(name, key, obj)

    def _index_add(self, name: str, key: str, obj: Obj) -> None:
        try:
            values = list(self._index_funcs[name](obj))
        except Exception:
            log.exception("Index function %r failed on %s.", name, key)
            values = []
        self._index_values[name][key] = values
        for value in values:
            self._indexes[name].setdefault(value, set()).add(key)

    def _index_remove(self, key: str, obj: Obj) -> None:
        for name in self._index_funcs:
            for value in self._index_values[name].pop(key, []):
                bucket = self._indexes[name].get(value)
                if bucket is not None:
                    bucket.discard(key)
                    if not bucket:
                        del self._indexes[name][value]

    # --- handler dispatch ------------------------------------------------------------------

    async def _dispatch_add(self, obj: Obj) -> None:
        for h in self._handlers:
            if h.on_add is not None:
                await self._call(h.on_add, obj)

    async def _dispatch_update(self, old: Obj, new: Obj) -> None:
        for h in self._handlers:
            if h.on_update is not None:
                await self._call(h.on_update, old, new)

    async def _dispatch_delete(self, obj: Obj) -> None:
        for h in self._handlers:
            if h.on_delete is not None:
                await self._call(h.on_delete, obj)

    async def _call(self, fn: Callable[..., Awaitable[None] | None], *args: Obj) -> None:
        try:
            result = fn(*args)
            if inspect.isawaitable(result):
                await result
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("An informer handler for %s failed.", self._scope())

    def _spawn_call(self, fn: Callable[..., Awaitable[None] | None], *args: Obj) -> None:
        try:
            result = fn(*args)
        except Exception:
            log.exception("An informer handler for %s failed.", self._scope())
            return
        if inspect.isawaitable(result):

            async def _await(aw: Awaitable[None]) -> None:
                try:
                    await aw
                except Exception:
                    log.exception("An informer handler for %s failed.", self._scope())

            task = asyncio.ensure_future(_await(result))
            self._background.add(task)
            task.add_done_callback(self._background.discard)


class SharedInformerFactory:
    """One ``Informer`` per (resource, namespace, selectors, form), shared by all its users."""

    def __init__(self, client: Client, *, resync_period: float = 0.0) -> None:
        self.client = client
        self.resync_period = resync_period
        self._informers: dict[tuple[str, str, str, str, str, str, bool], Informer] = {}

    def informer(
        self,
        resource: ResourceInfo,
        *,
        namespace: str = "",
        label_selector: str = "",
        field_selector: str = "",
        metadata_only: bool = False,
    ) -> Informer:
        key = (
            resource.group,
            resource.version,
            resource.plural,
            namespace,
            label_selector,
            field_selector,
            metadata_only,
        )
        informer = self._informers.get(key)
        if informer is None:
            informer = Informer(
                self.client,
                resource,
                namespace=namespace,
                label_selector=label_selector,
                field_selector=field_selector,
                resync_period=self.resync_period,
                metadata_only=metadata_only,
            )
            self._informers[key] = informer
        return informer

    def start(self) -> None:
        """Start every informer not yet running (safe to call again after adding more)."""
        for informer in self._informers.values():
            informer.start()

    async def wait_for_sync(self) -> None:
        for informer in list(self._informers.values()):
            await informer.wait_synced()

    async def stop(self) -> None:
        for informer in self._informers.values():
            await informer.stop()
