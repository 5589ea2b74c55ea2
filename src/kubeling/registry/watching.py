"""The watch path of the generic store: a backend change feed turned into upstream's watch
events for one resource, namespace and selector (the cacher's semantics in
``storage/cacher``, without a cache).

The key design choice is that a selector is applied to *both* sides of each change: an
object that starts matching arrives as ADDED and one that stops matching as DELETED with
its previous content, as upstream's cacher reports transitions, so a client's view of
"the matching objects" stays right without relisting. The initial state is synthesised
from one list at a single revision and the feed starts right after it, so nothing is lost
or doubled between the two. A bookmark is sent when the pending read of the feed has been
quiet for ``bookmark_interval``; that read stays pending across the bookmark, so waiting
for one never drops an event.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any, Final

from kubeling.machinery.errors import Gone, StatusError
from kubeling.machinery.types import Obj, WatchEventType
from kubeling.registry import codec
from kubeling.registry.context import RequestContext
from kubeling.registry.listing import ListingMixin
from kubeling.registry.options import parse_resource_version
from kubeling.storage.interface import Compacted, StoreClosed, WatchLagging

INITIAL_EVENTS_END: Final = "k8s.io/initial-events-end"


class WatchingMixin(ListingMixin):
    """``watch``: initial events, selector transitions, bookmarks, too-old versions."""

    def watch(
        self,
        *,
        namespace: str = "",
        label_selector: str = "",
        field_selector: str = "",
        resource_version: str = "",
        allow_bookmarks: bool = False,
        send_initial_events: bool | None = None,
        ctx: RequestContext | None = None,
    ) -> AsyncIterator[tuple[WatchEventType, Obj]]:
        """Events as ``(type, object)``; see ``_watch`` for the semantics."""
        match = self._matcher(label_selector, field_selector)
        if resource_version and resource_version != "0":
            parse_resource_version(resource_version)
        return self._watch(
            namespace=namespace,
            match=match,
            resource_version=resource_version,
            allow_bookmarks=allow_bookmarks,
            send_initial_events=send_initial_events,
        )

    async def _watch(
        self,
        *,
        namespace: str,
        match: Callable[[Obj], bool] | None,
        resource_version: str,
        allow_bookmarks: bool,
        send_initial_events: bool | None,
    ) -> AsyncIterator[tuple[WatchEventType, Obj]]:
        """Upstream's watch semantics.

        ``""``/``"0"``: synthetic ADDED events for the current matching objects, then
        changes (``send_initial_events=False`` skips the synthetic events). ``N``: changes
        after N; too old raises ``Gone`` at the first iteration. ``send_initial_events=True``
        ends the initial events with a BOOKMARK annotated ``k8s.io/initial-events-end``.
        Selector transitions turn into ADDED/DELETED as upstream's cacher does. Bookmarks
        (when allowed) follow every ``bookmark_interval`` seconds of quiet.
        """
        prefix = codec.key_prefix(self.info, self._ns(namespace))
        initial = resource_version in ("", "0") and send_initial_events is not False
        if send_initial_events and resource_version not in ("", "0"):
            initial = True
            # upstream's cacher waits for a watch list to be at least as fresh as asked (an
            # ERROR event after the wait); a plain watch from a future resourceVersion is
            # established at once and simply waits for the store to get there.
            rv = int(resource_version)
            current = await self._backend.current_revision()
            if rv > current:
                await self.wait_until_fresh(rv, current=current)
        start: int
        if initial:
            result = await self._backend.list(prefix)
            start = result.revision
            for kv in result.items:
                obj = codec.decode_kv(kv)
                if match is None or match(obj):
                    yield "ADDED", self.to_served(obj)
            if send_initial_events:
                yield (
                    "BOOKMARK",
                    codec.bookmark(self.info, start, annotations={INITIAL_EVENTS_END: "true"}),
                )
        elif resource_version in ("", "0"):
            start = await self._backend.current_revision()
        else:
            start = int(resource_version)

        events = aiter(self._backend.watch(prefix, after_revision=start))
        last = start
        pending: asyncio.Task[Any] | None = None
        interval = self._deps.bookmark_interval
        try:
            while True:
                if pending is None:
                    pending = asyncio.ensure_future(anext(events))
                if allow_bookmarks and interval > 0:
                    done, _ = await asyncio.wait({pending}, timeout=interval)
                    if not done:
                        yield "BOOKMARK", codec.bookmark(self.info, last)
                        continue
                try:
                    event = await pending
                except StopAsyncIteration:
                    return
                except Compacted as e:
                    raise Gone(
                        f"too old resource version: {resource_version} ({e.oldest})"
                    ) from None
                except WatchLagging as e:
                    yield "ERROR", Gone(f"watch closed: {e}; relist and watch again").to_status()
                    return
                except StoreClosed:
                    return
                finally:
                    pending = None
                last = event.kv.mod_revision
                out = self._watch_event(event, match)
                if out is not None:
                    yield out
        finally:
            if pending is not None:
                pending.cancel()
                # Retrieve whatever it ends with, so nothing is logged as unhandled.
                pending.add_done_callback(_swallow)
            aclose = getattr(events, "aclose", None)
            if aclose is not None:
                try:
                    await aclose()
                except (RuntimeError, StatusError, StoreClosed, WatchLagging, Compacted):
                    pass

    def _watch_event(
        self, event: Any, match: Callable[[Obj], bool] | None
    ) -> tuple[WatchEventType, Obj] | None:
        rev = event.kv.mod_revision
        if event.type == "DELETE":
            prev = event.prev or event.kv
            obj = codec.decode(prev.value, rev)
            if match is None or match(obj):
                return "DELETED", self.to_served(obj)
            return None
        cur = codec.decode_kv(event.kv)
        cur_ok = match is None or match(cur)
        if event.prev is None:
            return ("ADDED", self.to_served(cur)) if cur_ok else None
        if match is None:
            return "MODIFIED", self.to_served(cur)
        old = codec.decode(event.prev.value, rev)
        old_ok = match(old)
        if cur_ok and old_ok:
            return "MODIFIED", self.to_served(cur)
        if cur_ok:
            return "ADDED", self.to_served(cur)
        if old_ok:
            # upstream's cacher: the previous content, with the event's resourceVersion.
            return "DELETED", self.to_served(old)
        return None


def _swallow(task: asyncio.Task[Any]) -> None:
    if not task.cancelled():
        task.exception()
