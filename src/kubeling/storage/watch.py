"""The watch window: the most recent events in memory, replayed to watchers, then live.

Every backend publishes each committed change here, in revision order, on the event loop.
A watcher names the revision it has seen; the window replays what came after it and then
hands over live events with no gap, because taking the replay snapshot and registering for
live events happen in one synchronous step on the loop (nothing can publish in between).

The window is a bounded ring: a watcher asking for a revision older than the window's start
gets ``Compacted`` (the API edge answers 410 Gone) and must relist. Each watcher's live queue
is bounded too; a watcher that falls that far behind is ended with ``WatchLagging`` after it
has read what it was already given, so a consumer can miss events only by being told so.
"""

from __future__ import annotations

import asyncio
import collections
from collections.abc import AsyncIterator, Iterable

from kubeling.storage.interface import Compacted, Event, StorageError, StoreClosed, WatchLagging

DEFAULT_WINDOW_SIZE = 10_000
# Generous on purpose: a single group commit publishes up to a thousand events at once, and
# a healthy consumer must not be ended for a burst it would drain in milliseconds.
DEFAULT_WATCHER_QUEUE = 5_000


class _Watcher:
    __slots__ = ("after", "error", "limit", "prefix", "queue", "wake")

    def __init__(self, prefix: str, *, after: int, limit: int) -> None:
        self.prefix = prefix
        self.after = after
        self.limit = limit
        self.queue: collections.deque[Event] = collections.deque()
        self.error: StorageError | None = None
        self.wake = asyncio.Event()

    def offer(self, event: Event) -> None:
        if self.error is not None:
            return
        if len(self.queue) >= self.limit:
            # Dropping the event would let the consumer believe it is in sync; ending the
            # watch makes it relist instead. Queued events are still delivered first.
            self.error = WatchLagging(
                f"watch on {self.prefix!r} fell more than {self.limit} events behind "
                f"at revision {event.kv.mod_revision}"
            )
        else:
            self.queue.append(event)
        self.wake.set()

    def fail(self, error: StorageError) -> None:
        if self.error is None:
            self.error = error
        self.wake.set()


class WatchWindow:
    """A ring of recent events plus the live watchers fed from it. Loop-thread only."""

    def __init__(
        self,
        *,
        start_revision: int = 0,
        size: int = DEFAULT_WINDOW_SIZE,
        watcher_queue: int = DEFAULT_WATCHER_QUEUE,
    ) -> None:
        if size < 1 or watcher_queue < 1:
            raise ValueError("the watch window and each watcher queue hold at least one event")
        self._events: collections.deque[Event] = collections.deque()
        self._size = size
        self._watcher_queue = watcher_queue
        # Watchers may start after any revision >= this one; older ones are gone.
        self._start = start_revision
        self._last = start_revision
        self._watchers: set[_Watcher] = set()
        self._closed: StorageError | None = None

    @property
    def start_revision(self) -> int:
        """The oldest ``after_revision`` a watch can still start from."""
        return self._start

    @property
    def watcher_count(self) -> int:
        return len(self._watchers)

    def publish(self, events: Iterable[Event]) -> None:
        """Append committed events (in revision order) and hand them to matching watchers."""
        for event in events:
            rev = event.kv.mod_revision
            if rev <= self._last:
                raise ValueError(f"event at revision {rev} published after revision {self._last}")
            self._last = rev
            if len(self._events) >= self._size:
                self._start = self._events.popleft().kv.mod_revision
            self._events.append(event)
            key = event.kv.key
            for watcher in self._watchers:
                if key.startswith(watcher.prefix) and rev > watcher.after:
                    watcher.offer(event)

    def close(self, error: StorageError | None = None) -> None:
        """End every watch (after it drains) with ``error``, default ``StoreClosed``."""
        self._closed = error or StoreClosed("the store is closed")
        for watcher in self._watchers:
            watcher.fail(self._closed)

    def watch(self, prefix: str, *, after_revision: int) -> AsyncIterator[Event]:
        return self._run(prefix, after_revision)

    def _replay(self, prefix: str, after: int) -> list[Event]:
        # Walk back from the newest event: the cost is the replayed tail, not the window.
        found: list[Event] = []
        for event in reversed(self._events):
            if event.kv.mod_revision <= after:
                break
            if event.kv.key.startswith(prefix):
                found.append(event)
        found.reverse()
        return found

    async def _run(self, prefix: str, after: int) -> AsyncIterator[Event]:
        if self._closed is not None:
            raise self._closed
        if after < self._start:
            raise Compacted(requested=after, oldest=self._start)
        # Snapshot and registration with no await in between: nothing is published twice
        # or lost between the replay and the live feed.
        replay = self._replay(prefix, after)
        watcher = _Watcher(prefix, after=max(after, self._last), limit=self._watcher_queue)
        self._watchers.add(watcher)
        try:
            for event in replay:
                yield event
            while True:
                while watcher.queue:
                    yield watcher.queue.popleft()
                if watcher.error is not None:
                    raise watcher.error
                watcher.wake.clear()
                await watcher.wake.wait()
        finally:
            self._watchers.discard(watcher)
