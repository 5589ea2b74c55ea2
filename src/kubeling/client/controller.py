"""The runner every controller shares: informers feed keys into a work queue, workers reconcile.

A controller subclasses ``Controller``, asks its ``SharedInformerFactory`` for informers in
``__init__``, connects them with ``watch`` (or its own handlers calling ``enqueue``), and
implements ``async def reconcile(key)``. The runner owns the retry policy so reconcilers
state intent through exceptions instead of queue calls: returning forgets the key's backoff,
``RetryableError(delay=...)`` re-queues after that delay, ``PermanentError`` drops the key
until something changes it again, and any other exception is retried with per-key
exponential backoff. Each failure is logged once, where the decision is made.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import TypeVar

from kubeling.client.informer import Informer, object_key
from kubeling.client.workqueue import RateLimiter, ShutDown, WorkQueue
from kubeling.machinery import objects
from kubeling.machinery.errors import (
    Conflict,
    Forbidden,
    PermanentError,
    RetryableError,
    StatusError,
)
from kubeling.machinery.types import Obj

log = logging.getLogger(__name__)

KeyFunc = Callable[[Obj], str | None]
T = TypeVar("T")


async def retry_on_conflict(
    fn: Callable[[], Awaitable[T]], *, attempts: int = 5, delay: float = 0.01
) -> T:
    """Run ``fn`` (which should re-read what it writes) until it does not raise
    ``Conflict``, like client-go's ``retry.RetryOnConflict`` with its default backoff:
    five tries, 10 ms doubling. The last ``Conflict`` propagates."""
    for attempt in range(attempts):
        try:
            return await fn()
        except Conflict:
            if attempt == attempts - 1:
                raise
            await asyncio.sleep(delay * (2**attempt))
    raise AssertionError("unreachable")


def resolve_controller_ref(owners: Informer, obj: Obj, *, kind: str) -> str | None:
    """``resolveControllerRef``: the key in ``owners`` of the object that ``obj``'s
    controller reference names, or None when the reference is of another kind or names an
    owner the cache does not hold under that uid (a deleted owner's same-named successor
    does not own ``obj``)."""
    ref = objects.controller_ref(obj)
    if ref is None or ref.get("kind") != kind:
        return None
    key = f"{objects.namespace(obj)}/{ref.get('name')}"
    owner = owners.peek(key)
    if owner is None or objects.uid(owner) != ref.get("uid"):
        return None
    return key


class Controller:
    """Base class: override ``reconcile``; call ``run()`` and later ``stop()``."""

    name: str = "controller"

    def __init__(
        self,
        *,
        name: str = "",
        workers: int = 1,
        rate_limiter: RateLimiter[str] | None = None,
    ) -> None:
        if name:
            self.name = name
        self.workers = workers
        self.queue: WorkQueue[str] = WorkQueue(name=self.name, rate_limiter=rate_limiter)
        self._informers: list[Informer] = []
        self._worker_tasks: list[asyncio.Task[None]] = []
        self._stopped = asyncio.Event()

    async def reconcile(self, key: str) -> None:
        raise NotImplementedError

    # --- wiring ----------------------------------------------------------------------------

    def watch(self, informer: Informer, *, key_func: KeyFunc | None = None) -> None:
        """Enqueue ``key_func(obj)`` (the object's own key by default) on every change;
        the runner also waits for this informer to sync before starting workers."""
        fn = key_func or object_key

        def enqueue(obj: Obj) -> None:
            key = fn(obj)
            if key:
                self.queue.add(key)

        informer.add_handler(
            on_add=enqueue,
            on_update=lambda _old, new: enqueue(new),
            on_delete=enqueue,
        )
        self.wait_for(informer)

    def wait_for(self, informer: Informer) -> None:
        """Have ``run`` wait for ``informer`` to sync (and start it if nobody did)."""
        if informer not in self._informers:
            self._informers.append(informer)

    def enqueue(self, key: str) -> None:
        self.queue.add(key)

    def enqueue_after(self, key: str, delay: float) -> None:
        self.queue.add_after(key, delay)

    # --- running ---------------------------------------------------------------------------

    async def run(self) -> None:
        """Start informers (if needed), wait for their sync, run workers until ``stop``."""
        for informer in self._informers:
            if not informer.running:
                informer.start()

        async def all_synced() -> None:
            for informer in self._informers:
                await informer.wait_synced()

        async def stop_requested() -> None:
            await self._stopped.wait()

        synced = asyncio.ensure_future(all_synced())
        stopped = asyncio.ensure_future(stop_requested())
        try:
            await asyncio.wait({synced, stopped}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for waiter in (synced, stopped):
                waiter.cancel()
        if self._stopped.is_set():
            return  # stopped before the caches ever synced: no worker was started
        log.info("Controller %s synced; starting %d worker(s).", self.name, self.workers)
        self._worker_tasks = [
            asyncio.create_task(self._worker(), name=f"{self.name} worker {i}")
            for i in range(self.workers)
        ]
        try:
            await self._stopped.wait()
        finally:
            self.queue.shut_down()
            await self._join_workers()

    async def stop(self, *, grace: float = 10.0) -> None:
        """Shut the queue down and let workers finish their current key (up to ``grace``)."""
        self._stopped.set()
        self.queue.shut_down()
        await self._join_workers(grace=grace)

    async def _join_workers(self, *, grace: float = 10.0) -> None:
        tasks = [t for t in self._worker_tasks if not t.done()]
        if tasks:
            _, pending = await asyncio.wait(tasks, timeout=grace)
            for task in pending:
                task.cancel()
            for task in pending:
                with contextlib.suppress(asyncio.CancelledError):
                    await task

    async def _worker(self) -> None:
        while True:
            try:
                key = await self.queue.get()
            except ShutDown:
                return
            if self._stopped.is_set():
                # Stopping: finish the key in hand (none here) but start no new work; the
                # next owner of this controller relists and sees everything again.
                self.queue.done(key)
                return
            try:
                await self.process(key)
            finally:
                self.queue.done(key)

    async def process(self, key: str) -> None:
        """Reconcile ``key`` once and apply the retry policy (public for tests)."""
        try:
            await self.reconcile(key)
        except asyncio.CancelledError:
            raise
        except RetryableError as e:
            log.info("Controller %s retries %s in %.1fs: %s.", self.name, key, e.delay, e)
            self.queue.forget(key)
            self.queue.add_after(key, e.delay)
        except PermanentError as e:
            log.warning("Controller %s gives up on %s: %s.", self.name, key, e)
            self.queue.forget(key)
        except Conflict as e:
            # A stale read; the informer will catch up, so retry soon without noise.
            log.debug("%s: conflict on %s (%s); retrying.", self.name, key, e)
            self.queue.add_rate_limited(key)
        except Exception as e:
            if _in_terminating_namespace(e):
                # The namespace is being deleted with everything in it; creating there is
                # refused until it is gone, as upstream's controllers expect: no warning.
                log.debug("%s: %s is in a terminating namespace (%s).", self.name, key, e)
                self.queue.add_rate_limited(key)
                return
            log.warning(
                "Controller %s failed to reconcile %s (attempt %d): %s.",
                self.name,
                key,
                self.queue.num_requeues(key) + 1,
                e,
                # A StatusError is the cluster answering; anything else is likely a bug.
                exc_info=not isinstance(e, (StatusError, OSError)),
            )
            self.queue.add_rate_limited(key)
        else:
            self.queue.forget(key)


def _in_terminating_namespace(error: Exception) -> bool:
    """upstream's ``HasStatusCause(err, NamespaceTerminatingCause)``."""
    return isinstance(error, Forbidden) and any(
        c.reason == "NamespaceTerminating" for c in error.causes
    )
