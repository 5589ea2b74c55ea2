"""MemoryBackend: the storage contract with no durability, for unit tests and throwaway runs.

Every operation runs to completion on the event loop without awaiting, so each write is
atomic and revisions are handed out in the order writes arrive, exactly as the single SQLite
writer does. History for point-in-time lists is the event log itself: the state at revision
N is the current state with every later event undone (each event carries its ``prev``).
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from kubeling.storage.index import KeyIndex
from kubeling.storage.interface import (
    Compacted,
    Event,
    FutureRevision,
    KeyExists,
    KeyNotFound,
    KeyValue,
    ListResult,
    RevisionMismatch,
    StoreClosed,
)
from kubeling.storage.watch import DEFAULT_WATCHER_QUEUE, DEFAULT_WINDOW_SIZE, WatchWindow

DEFAULT_HISTORY = 10_000


class MemoryBackend:
    """An in-process ``Backend``; state is lost when the object goes away."""

    def __init__(
        self,
        *,
        window_size: int = DEFAULT_WINDOW_SIZE,
        watcher_queue: int = DEFAULT_WATCHER_QUEUE,
        history: int = DEFAULT_HISTORY,
    ) -> None:
        self._index = KeyIndex()
        self._log: list[Event] = []
        self._revision = 0
        self._compacted = 0
        # The log is compacted to ``history`` revisions once it holds twice that many, so
        # memory stays bounded without compacting on every write.
        self._history = history
        self._window = WatchWindow(size=window_size, watcher_queue=watcher_queue)
        self._closed = False

    async def start(self) -> None:
        pass

    async def close(self) -> None:
        self._closed = True
        self._window.close()

    def _check_open(self) -> None:
        if self._closed:
            raise StoreClosed("the store is closed")

    async def current_revision(self) -> int:
        self._check_open()
        return self._revision

    async def get(self, key: str) -> KeyValue | None:
        self._check_open()
        return self._index.get(key)

    async def list(
        self,
        prefix: str,
        *,
        start_after: str = "",
        limit: int = 0,
        revision: int = 0,
    ) -> ListResult:
        self._check_open()
        if revision == 0 or revision == self._revision:
            items, more = self._index.page(prefix, start_after=start_after, limit=limit)
            return ListResult(items=items, revision=self._revision, more=more)
        if revision > self._revision:
            raise FutureRevision(requested=revision, current=self._revision)
        if revision < self._compacted:
            raise Compacted(requested=revision, oldest=self._compacted)
        state = {kv.key: kv for kv in self._index.page(prefix)[0]}
        for event in reversed(self._log):
            if event.kv.mod_revision <= revision:
                break
            key = event.kv.key
            if not key.startswith(prefix):
                continue
            if event.prev is None:
                state.pop(key, None)
            else:
                state[key] = event.prev
        keys = sorted(k for k in state if k > start_after)
        more = 0 < limit < len(keys)
        if more:
            keys = keys[:limit]
        return ListResult(items=[state[k] for k in keys], revision=revision, more=more)

    async def count(self, prefix: str) -> int:
        self._check_open()
        return self._index.count(prefix)

    def _commit(self, event: Event) -> None:
        self._revision = event.kv.mod_revision
        if event.type == "DELETE":
            self._index.remove(event.kv.key)
        else:
            self._index.put(event.kv)
        self._log.append(event)
        self._window.publish((event,))
        if len(self._log) >= 2 * self._history:
            self._compact(self._history)

    def _current(self, key: str, expected_revision: int) -> KeyValue:
        kv = self._index.get(key)
        if kv is None:
            raise KeyNotFound(key)
        if expected_revision and kv.mod_revision != expected_revision:
            raise RevisionMismatch(key, expected=expected_revision, actual=kv.mod_revision)
        return kv

    async def create(self, key: str, value: bytes) -> KeyValue:
        self._check_open()
        if self._index.get(key) is not None:
            raise KeyExists(key)
        rev = self._revision + 1
        kv = KeyValue(key=key, value=value, create_revision=rev, mod_revision=rev)
        self._commit(Event(type="PUT", kv=kv, prev=None))
        return kv

    async def update(self, key: str, value: bytes, *, expected_revision: int) -> KeyValue:
        self._check_open()
        prev = self._current(key, expected_revision)
        kv = KeyValue(
            key=key,
            value=value,
            create_revision=prev.create_revision,
            mod_revision=self._revision + 1,
        )
        self._commit(Event(type="PUT", kv=kv, prev=prev))
        return kv

    async def delete(self, key: str, *, expected_revision: int = 0) -> KeyValue:
        self._check_open()
        prev = self._current(key, expected_revision)
        rev = self._revision + 1
        tomb = KeyValue(key=key, value=b"", create_revision=prev.create_revision, mod_revision=rev)
        self._commit(Event(type="DELETE", kv=tomb, prev=prev))
        return KeyValue(
            key=key, value=prev.value, create_revision=prev.create_revision, mod_revision=rev
        )

    def watch(self, prefix: str, *, after_revision: int) -> AsyncIterator[Event]:
        return self._window.watch(prefix, after_revision=after_revision)

    def _compact(self, keep_revisions: int) -> int:
        horizon = max(self._compacted, self._revision - max(keep_revisions, 0))
        cut = 0
        while cut < len(self._log) and self._log[cut].kv.mod_revision <= horizon:
            cut += 1
        del self._log[:cut]
        self._compacted = horizon
        return horizon

    async def compact(self, *, keep_revisions: int) -> int:
        self._check_open()
        return self._compact(keep_revisions)
