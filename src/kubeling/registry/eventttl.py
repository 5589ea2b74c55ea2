"""Event expiry: core Events are deleted ``ttl`` seconds after they were last recorded.

Upstream stores every Event under an etcd lease of ``--event-ttl`` (one hour by default), so
an Event disappears an hour after its last write whatever its finalizers. kubeling's store
has no leases; instead a periodic sweep reads the Events (one prefix read of the shared
``/registry/core/events/`` collection, which events.k8s.io Events are too) and deletes those
whose latest time -- ``lastTimestamp``, ``eventTime``, ``series.lastObservedTime`` or, when
none is set, ``creationTimestamp`` -- is ``ttl`` or more in the past. A delete is
conditional on the revision read, so an Event recorded again meanwhile survives. Deletes go
to the backend directly, as a lease expiry does: watchers see DELETED, no finalizer or
admission runs. The sweep costs one list per interval, nothing on the write path.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import Final

from kubeling.machinery import resources
from kubeling.machinery.types import Obj
from kubeling.registry import codec
from kubeling.registry.meta import parse_time
from kubeling.storage.interface import Backend, KeyNotFound, RevisionMismatch, StorageError

log = logging.getLogger(__name__)

DEFAULT_EVENT_TTL: Final = 3600.0
"""upstream ``--event-ttl`` default: one hour."""
MAX_SWEEP_INTERVAL: Final = 60.0


def last_recorded(event: Obj) -> float | None:
    """Epoch seconds of the latest time an Event says it was recorded, or None."""
    series = event.get("series") or {}
    texts = [
        event.get("lastTimestamp"),
        event.get("eventTime"),
        series.get("lastObservedTime") if isinstance(series, dict) else None,
    ]
    times: list[float] = []
    for text in texts:
        if isinstance(text, str) and text:
            with contextlib.suppress(ValueError):
                times.append(parse_time(text))
    if not times:
        created = (event.get("metadata") or {}).get("creationTimestamp")
        if isinstance(created, str) and created:
            with contextlib.suppress(ValueError):
                times.append(parse_time(created))
    return max(times) if times else None


def sweep_interval(ttl: float) -> float:
    """How often to sweep: a tenth of the TTL, at least a second, at most a minute."""
    return max(1.0, min(MAX_SWEEP_INTERVAL, ttl / 10))


class EventExpiry:
    """Deletes expired core Events; ``sweep`` once, or ``start`` a periodic task."""

    def __init__(
        self,
        backend: Backend,
        *,
        ttl: float = DEFAULT_EVENT_TTL,
        clock: Callable[[], float],
        interval: float | None = None,
    ) -> None:
        self._backend = backend
        self.ttl = ttl
        self._clock = clock
        self.interval = sweep_interval(ttl) if interval is None else interval
        self._task: asyncio.Task[None] | None = None

    async def sweep(self) -> int:
        """Delete every Event last recorded ``ttl`` or more ago; returns how many went."""
        prefix = codec.key_prefix(resources.EVENTS)
        listed = await self._backend.list(prefix)
        deadline = self._clock() - self.ttl
        expired = 0
        for kv in listed.items:
            try:
                event = codec.decode_kv(kv)
            except (ValueError, StorageError):
                continue
            last = last_recorded(event)
            if last is None or last > deadline:
                continue
            try:
                await self._backend.delete(kv.key, expected_revision=kv.mod_revision)
            except (RevisionMismatch, KeyNotFound):
                continue  # recorded again (or deleted) since the list: not expired now
            expired += 1
        if expired:
            log.debug("Expired %d events older than %.0f seconds.", expired, self.ttl)
        return expired

    def start(self) -> None:
        """Sweep now and then every ``interval`` seconds until ``stop``."""
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(
                self._run(), name="kubeling-event-expiry"
            )

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _run(self) -> None:
        while True:
            try:
                await self.sweep()
            except StorageError as e:
                # the store is closing or briefly unavailable: the next round tries again
                log.debug("Event expiry sweep skipped: %s", e)
            await asyncio.sleep(self.interval)
