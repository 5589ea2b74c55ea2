"""The Registry facade: one ``ResourceStore`` per served resource over one backend.

This is what the API server edge and the in-process client program against. It owns the
wiring only: which strategy serves which resource (``registry.catalog``), the admission
chain, the subresource handlers and the clock. The backend is opened and closed by whoever
created it (``kubeling.cluster``); the registry never closes it.

``Registry.open(backend=...)`` → ``registry.store(info)`` → ``create/get/list/watch/update/
patch/delete/delete_collection``; subresources through ``registry.subresource(info, name)``
or the ``subresource=`` argument of the store's verbs.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable

from kubeling.machinery import resources
from kubeling.machinery.errors import NotFound
from kubeling.machinery.types import Obj, ResourceInfo
from kubeling.registry import bootstrap as bootstrapping
from kubeling.registry import codec, subresources
from kubeling.registry.admission import Chain, default_chain
from kubeling.registry.eventttl import DEFAULT_EVENT_TTL, EventExpiry
from kubeling.registry.plugins.resize import PersistentVolumeClaimResize
from kubeling.registry.plugins.services import (
    ClusterIPAllocator,
    NodePortAllocator,
    ServiceClusterIPAllocation,
)
from kubeling.registry.plugins.storage import storage_plugins
from kubeling.registry.store import NamespaceStore, ResourceStore
from kubeling.registry.storebase import FRESH_WAIT, Deps
from kubeling.registry.strategy import Strategy
from kubeling.storage.interface import Backend

log = logging.getLogger(__name__)

DEFAULT_BOOKMARK_INTERVAL = 1.0


def _catalog_strategy(info: ResourceInfo) -> Strategy:
    try:
        from kubeling.registry import catalog
    except ImportError:  # pragma: no cover - the catalog ships with the package
        return Strategy(info=info)
    try:
        return catalog.strategy_for(info)
    except KeyError:
        return Strategy(info=info)


class Registry:
    """Every served resource's store, sharing one backend, clock and admission chain."""

    def __init__(
        self,
        *,
        backend: Backend,
        clock: Callable[[], float],
        served: Iterable[ResourceInfo],
        strategy_for: Callable[[ResourceInfo], Strategy],
        bookmark_interval: float,
        admission: Chain | None = None,
        fresh_wait: float = FRESH_WAIT,
        event_ttl: float = DEFAULT_EVENT_TTL,
    ) -> None:
        self.backend = backend
        self.clock = clock
        self._resources = tuple(served)
        self._strategy_for = strategy_for
        self.admission = admission or default_chain(self._namespace_lookup)
        if admission is None:
            self.admission.plugins.append(PersistentVolumeClaimResize(self._object_lookup))
            self.admission.plugins.extend(storage_plugins(self._object_list))
            self.admission.plugins.append(
                ServiceClusterIPAllocation(
                    ClusterIPAllocator(lister=self._object_list, lookup=self._object_lookup),
                    NodePortAllocator(lister=self._object_list, lookup=self._object_lookup),
                )
            )
        self._deps = Deps(
            backend=backend,
            clock=clock,
            admission=self.admission,
            bookmark_interval=bookmark_interval,
            subresource_factory=self._make_subresource,
            fresh_wait=fresh_wait,
        )
        self._subresource_classes: dict[str, type[subresources.Subresource]] = {}
        self._stores: dict[ResourceInfo, ResourceStore] = {}
        self._closed = False
        self.event_expiry = EventExpiry(backend, ttl=event_ttl, clock=clock)

    @classmethod
    async def open(
        cls,
        *,
        backend: Backend,
        clock: Callable[[], float] = time.time,
        served: Iterable[ResourceInfo] = resources.ALL,
        strategy_for: Callable[[ResourceInfo], Strategy] | None = None,
        bookmark_interval: float = DEFAULT_BOOKMARK_INTERVAL,
        admission: Chain | None = None,
        fresh_wait: float = FRESH_WAIT,
        event_ttl: float = DEFAULT_EVENT_TTL,
    ) -> Registry:
        """A registry over an already started ``backend``.

        ``strategy_for`` defaults to ``registry.catalog.strategy_for``; ``bookmark_interval``
        is the seconds of quiet (event-loop time) after which a watch that allows bookmarks
        gets one; ``admission`` replaces the default chain (NamespaceLifecycle and the
        namespace name label); ``fresh_wait`` is how long a read at a resourceVersion the
        store has not reached waits for it before the 504 (upstream's 3 s); ``event_ttl`` is
        how long core Events live after they were last recorded (upstream ``--event-ttl``,
        one hour) once ``start_event_expiry`` runs the sweep.
        """
        return cls(
            backend=backend,
            clock=clock,
            served=served,
            strategy_for=strategy_for or _catalog_strategy,
            bookmark_interval=bookmark_interval,
            admission=admission,
            fresh_wait=fresh_wait,
            event_ttl=event_ttl,
        )

    def resources(self) -> tuple[ResourceInfo, ...]:
        return self._resources

    def strategy(self, info: ResourceInfo) -> Strategy:
        return self.store(info).strategy

    def store(self, info: ResourceInfo) -> ResourceStore:
        """The store of a served resource; ``NotFound`` for one this registry does not serve."""
        existing = self._stores.get(info)
        if existing is not None:
            return existing
        if info not in self._resources:
            raise NotFound("the server could not find the requested resource")
        cls = NamespaceStore if info.kind == "Namespace" and not info.group else ResourceStore
        store = cls(info=info, strategy=self._strategy_for(info), deps=self._deps)
        self._stores[info] = store
        return store

    def subresource(self, info: ResourceInfo, name: str) -> subresources.Subresource:
        """The handler of ``<info.plural>/<name>``; see ``registry.subresources``."""
        return self.store(info).subresource(name)

    def register_subresource(self, name: str, cls: type[subresources.Subresource]) -> None:
        """Serve ``name`` (e.g. ``log``, ``exec``, ``token``) with ``cls`` for every resource
        that lists it in ``ResourceInfo.subresources``; replaces a built-in handler too.
        Register before the first request that uses it (handlers are cached per store)."""
        self._subresource_classes[name] = cls

    def _make_subresource(self, store: ResourceStore, name: str) -> subresources.Subresource:
        cls = self._subresource_classes.get(name)
        if cls is not None:
            return cls(store, name)
        return subresources.make(store, name)

    async def _object_lookup(self, info: ResourceInfo, namespace: str, name: str) -> Obj | None:
        """The stored object, for admission plugins that read other objects (a lister)."""
        kv = await self.backend.get(codec.object_key(info, namespace=namespace, name=name))
        return codec.decode_kv(kv) if kv is not None else None

    async def _object_list(self, info: ResourceInfo) -> list[Obj]:
        """Every stored object of a cluster-scoped resource, for admission plugins."""
        listed = await self.backend.list(codec.key_prefix(info))
        return [codec.decode_kv(kv) for kv in listed.items]

    async def _namespace_lookup(self, name: str) -> Obj | None:
        kv = await self.backend.get(codec.object_key(resources.NAMESPACES, namespace="", name=name))
        return codec.decode_kv(kv) if kv is not None else None

    async def bootstrap(self) -> None:
        """Create the system namespaces if missing (idempotent)."""
        await bootstrapping.ensure_system_namespaces(self)

    def start_event_expiry(self) -> None:
        """Sweep expired Events now and periodically (``registry.eventttl``); ``close``
        stops it. Whoever runs the cluster calls this once; tests sweep by hand."""
        if self.event_expiry.ttl > 0:
            self.event_expiry.start()

    async def close(self) -> None:
        """Release what the registry holds (the backend stays open: its owner closes it)."""
        await self.event_expiry.stop()
        self._closed = True
        self._stores.clear()
