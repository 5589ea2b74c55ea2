"""Recording core/v1 Events about objects, the way client-go's event recorder does.

``event()`` never blocks and never raises: it hands the event to a background writer, like
upstream's broadcaster, because a controller must not fail its reconcile over telemetry. The
writer mirrors upstream's correlator: a repeat of the same (source, object, type, reason,
message) within the cache's lifetime patches ``count`` and ``lastTimestamp`` on the Event
written the first time instead of creating another, and a per-object token bucket (burst 25,
one token per five minutes, upstream's spam filter) drops floods. Names are
``<object-name>.<nanoseconds as hex>`` and Events of cluster-scoped objects go to
``default``, both as upstream.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import OrderedDict
from dataclasses import dataclass
from datetime import UTC, datetime

from kubeling.client.interface import Client
from kubeling.machinery.errors import NotFound, StatusError
from kubeling.machinery.resources import EVENTS
from kubeling.machinery.types import Obj

log = logging.getLogger(__name__)

NORMAL = "Normal"
WARNING = "Warning"

_CACHE_SIZE = 4096
_SPAM_BURST = 25
_SPAM_QPS = 1.0 / 300.0
_WRITE_ATTEMPTS = 3


def _now_rfc3339() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(kw_only=True)
class _Seen:
    name: str
    namespace: str
    count: int
    first_timestamp: str


@dataclass(kw_only=True)
class _Bucket:
    tokens: float
    last: float


class EventRecorder:
    """Writes Events on behalf of ``component`` (``source.component``, reportingComponent)."""

    def __init__(
        self,
        client: Client,
        *,
        component: str,
        host: str = "",
        queue_size: int = 1000,
    ) -> None:
        self.client = client
        self.component = component
        self.host = host
        self._queue: asyncio.Queue[Obj] | None = None
        self._queue_size = queue_size
        self._task: asyncio.Task[None] | None = None
        self._seen: OrderedDict[tuple[str, ...], _Seen] = OrderedDict()
        self._buckets: OrderedDict[tuple[str, ...], _Bucket] = OrderedDict()
        self._warned = False
        self._closed = False

    # --- the caller's side -----------------------------------------------------------------

    def event(self, obj: Obj, type: str, reason: str, message: str) -> None:
        """Record an Event about ``obj``; ``type`` is ``Normal`` or ``Warning``."""
        try:
            self._enqueue(self._build(obj, type, reason, message))
        except Exception as e:
            self._warn_once("could not queue an event: %s", e)

    def eventf(self, obj: Obj, type: str, reason: str, fmt: str, *args: object) -> None:
        self.event(obj, type, reason, fmt % args if args else fmt)

    async def flush(self) -> None:
        """Wait until every queued event was written (or dropped)."""
        if self._queue is not None:
            await self._queue.join()

    async def close(self) -> None:
        self._closed = True
        await self.flush()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    # --- building --------------------------------------------------------------------------

    def _build(self, obj: Obj, type: str, reason: str, message: str) -> Obj:
        meta = obj.get("metadata") or {}
        involved: Obj = {
            "kind": obj.get("kind", ""),
            "namespace": meta.get("namespace", ""),
            "name": meta.get("name", ""),
            "uid": meta.get("uid", ""),
            "apiVersion": obj.get("apiVersion", ""),
            "resourceVersion": meta.get("resourceVersion", ""),
        }
        involved = {k: v for k, v in involved.items() if v}
        ts = _now_rfc3339()
        source: Obj = {"component": self.component}
        if self.host:
            source["host"] = self.host
        return {
            "kind": "Event",
            "apiVersion": "v1",
            "metadata": {
                "name": f"{meta.get('name', '')}.{time.time_ns():x}",
                "namespace": meta.get("namespace") or "default",
            },
            "involvedObject": involved,
            "reason": reason,
            "message": message,
            "source": source,
            "firstTimestamp": ts,
            "lastTimestamp": ts,
            "count": 1,
            "type": type,
            "eventTime": None,
            "reportingComponent": self.component,
            "reportingInstance": self.host,
        }

    def _enqueue(self, event: Obj) -> None:
        if self._closed:
            return
        asyncio.get_running_loop()  # raises outside a loop, before any coroutine exists
        if self._queue is None:
            self._queue = asyncio.Queue(maxsize=self._queue_size)
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._writer(), name=f"events {self.component}")
        try:
            self._queue.put_nowait(event)
        except asyncio.QueueFull:
            # Upstream's broadcaster drops on a full channel rather than blocking the caller.
            self._warn_once("the event queue is full; dropping events")

    # --- the writer's side -----------------------------------------------------------------

    async def _writer(self) -> None:
        if self._queue is None:
            return  # started before any event was queued: nothing to write
        # The writer ends when the queue runs dry and ``_enqueue`` starts a new one, so an
        # idle recorder that nobody closes leaves no task pending when the loop ends.
        while not self._queue.empty():
            event = self._queue.get_nowait()
            try:
                await self._record(event)
            except asyncio.CancelledError:
                raise
            except Exception as e:
                self._warn_once("could not write event %s: %s", event["metadata"]["name"], e)
            finally:
                self._queue.task_done()

    def _object_key(self, event: Obj) -> tuple[str, ...]:
        io = event["involvedObject"]
        return (
            self.component,
            self.host,
            io.get("kind", ""),
            io.get("namespace", ""),
            io.get("name", ""),
            io.get("uid", ""),
            io.get("apiVersion", ""),
        )

    def _allow(self, key: tuple[str, ...]) -> bool:
        now = asyncio.get_running_loop().time()
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = _Bucket(tokens=float(_SPAM_BURST), last=now)
            self._buckets[key] = bucket
            if len(self._buckets) > _CACHE_SIZE:
                self._buckets.popitem(last=False)
        bucket.tokens = min(float(_SPAM_BURST), bucket.tokens + (now - bucket.last) * _SPAM_QPS)
        bucket.last = now
        if bucket.tokens < 1.0:
            return False
        bucket.tokens -= 1.0
        return True

    # TODO(#4): upstream's EventAggregator also folds more than 10 events with the same
    # reason but different messages (within 10 minutes) into one "(combined from similar
    # events): ..." Event; today each distinct message gets its own Event.
    async def _record(self, event: Obj) -> None:
        obj_key = self._object_key(event)
        if not self._allow(obj_key):
            log.debug("Dropping event %s/%s: rate limited.", event["reason"], event["message"])
            return
        key = (*obj_key, event["type"], event["reason"], event["message"])
        seen = self._seen.get(key)
        for attempt in range(_WRITE_ATTEMPTS):
            try:
                if seen is not None:
                    try:
                        await self._patch_repeat(seen, event)
                        self._seen.move_to_end(key)
                        return
                    except NotFound:
                        # Somebody deleted the aggregated Event; start a fresh one.
                        self._seen.pop(key, None)
                        seen = None
                written = await self.client.create(
                    EVENTS, event, namespace=event["metadata"]["namespace"]
                )
                meta = written.get("metadata") or {}
                self._seen[key] = _Seen(
                    name=meta.get("name", event["metadata"]["name"]),
                    namespace=meta.get("namespace", event["metadata"]["namespace"]),
                    count=int(written.get("count") or 1),
                    first_timestamp=event["firstTimestamp"],
                )
                if len(self._seen) > _CACHE_SIZE:
                    self._seen.popitem(last=False)
                return
            except StatusError as e:
                # 4xx other than conflicts will not get better by retrying.
                if 400 <= e.code < 500 and e.code not in (409, 429):
                    raise
                if attempt == _WRITE_ATTEMPTS - 1:
                    raise
                await asyncio.sleep(0.5 * (2**attempt))

    async def _patch_repeat(self, seen: _Seen, event: Obj) -> None:
        count = seen.count + 1
        await self.client.patch(
            EVENTS,
            name=seen.name,
            namespace=seen.namespace,
            patch={
                "count": count,
                "lastTimestamp": event["lastTimestamp"],
                "message": event["message"],
            },
            patch_type="merge",
        )
        seen.count = count

    def _warn_once(self, fmt: str, *args: object) -> None:
        text = fmt % args if args else fmt
        if not self._warned:
            self._warned = True
            log.warning("EventRecorder %s: %s", self.component, text)
        else:
            log.debug("EventRecorder %s: %s", self.component, text)
