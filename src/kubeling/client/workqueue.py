"""A rate-limited work queue for controllers, with client-go's workqueue semantics.

Keys, not objects, go through the queue: a key queued twice is processed once (dedup), a key
is never handed to two workers at once (one added while it is being processed is queued again
when the worker calls ``done``), and failures back off per key exponentially until ``forget``.
Everything runs on the asyncio loop and all delays are the loop's own timers, so tests run
under ``looptime`` virtual time without sleeping on the wall clock; the token bucket reads an
injectable ``clock`` (the loop's ``time()`` by default) for the same reason.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable, Hashable
from typing import Generic, Protocol, TypeVar

K = TypeVar("K", bound=Hashable)

Clock = Callable[[], float]


class ShutDown(Exception):
    """``get`` on a queue that is shut down and has nothing left to hand out."""


def _loop_clock() -> float:
    return asyncio.get_running_loop().time()


class RateLimiter(Protocol[K]):  # type: ignore[misc]
    """How long an item waits before it is re-queued after a failure."""

    def when(self, item: K) -> float: ...

    def forget(self, item: K) -> None: ...

    def num_requeues(self, item: K) -> int: ...


class ItemExponentialBackoff(Generic[K]):
    """``base * 2**failures`` per item, capped; client-go's 5 ms .. 1000 s by default."""

    def __init__(self, *, base: float = 0.005, cap: float = 1000.0) -> None:
        self.base = base
        self.cap = cap
        self._failures: dict[K, int] = {}

    def when(self, item: K) -> float:
        n = self._failures.get(item, 0)
        self._failures[item] = n + 1
        # 2**n overflows a float long before the cap matters; stop doubling early.
        if n > 60:
            return self.cap
        return min(self.base * float(2**n), self.cap)

    def forget(self, item: K) -> None:
        self._failures.pop(item, None)

    def num_requeues(self, item: K) -> int:
        return self._failures.get(item, 0)


class TokenBucket(Generic[K]):
    """An overall rate across all items (client-go's 10 qps, burst 100 by default)."""

    def __init__(self, *, qps: float = 10.0, burst: int = 100, clock: Clock | None = None) -> None:
        self.qps = qps
        self.burst = burst
        self._clock = clock or _loop_clock
        self._tokens = float(burst)
        self._last: float | None = None

    def when(self, item: K) -> float:
        now = self._clock()
        if self._last is not None:
            self._tokens = min(float(self.burst), self._tokens + (now - self._last) * self.qps)
        self._last = now
        # Reserve a token even if it is in the future: later callers queue behind this one.
        self._tokens -= 1.0
        if self._tokens >= 0:
            return 0.0
        return -self._tokens / self.qps

    def forget(self, item: K) -> None:
        pass

    def num_requeues(self, item: K) -> int:
        return 0


class MaxOf(Generic[K]):
    """The longest delay any of several limiters asks for."""

    def __init__(self, *limiters: RateLimiter[K]) -> None:
        self.limiters = limiters

    def when(self, item: K) -> float:
        return max(limiter.when(item) for limiter in self.limiters)

    def forget(self, item: K) -> None:
        for limiter in self.limiters:
            limiter.forget(item)

    def num_requeues(self, item: K) -> int:
        return max(limiter.num_requeues(item) for limiter in self.limiters)


def default_rate_limiter(*, clock: Clock | None = None) -> RateLimiter[K]:
    """client-go's ``DefaultControllerRateLimiter``: per-item backoff and an overall bucket."""
    return MaxOf(ItemExponentialBackoff(), TokenBucket(clock=clock))


class WorkQueue(Generic[K]):
    """Deduplicating FIFO of keys with delayed and rate-limited adds.

    Workers loop ``key = await q.get()`` / process / ``q.done(key)``; ``get`` raises
    ``ShutDown`` once ``shut_down()`` was called and the queue has drained.
    """

    def __init__(self, *, name: str = "", rate_limiter: RateLimiter[K] | None = None) -> None:
        self.name = name
        self.rate_limiter: RateLimiter[K] = rate_limiter or default_rate_limiter()
        self._queue: deque[K] = deque()
        self._dirty: set[K] = set()
        self._processing: set[K] = set()
        self._waiters: list[asyncio.Future[None]] = []
        self._delayed: dict[K, tuple[float, asyncio.TimerHandle]] = {}
        self._shutting_down = False

    # --- plain queue ---------------------------------------------------------------------

    def add(self, key: K) -> None:
        if self._shutting_down or key in self._dirty:
            return
        self._dirty.add(key)
        if key in self._processing:
            # done() puts it back; a second worker must not see it meanwhile.
            return
        self._queue.append(key)
        self._wake()

    async def get(self) -> K:
        while not self._queue:
            if self._shutting_down:
                raise ShutDown(self.name)
            waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            self._waiters.append(waiter)
            try:
                await waiter
            finally:
                if waiter in self._waiters:
                    self._waiters.remove(waiter)
        key = self._queue.popleft()
        self._processing.add(key)
        self._dirty.discard(key)
        return key

    def done(self, key: K) -> None:
        self._processing.discard(key)
        if key in self._dirty:
            self._queue.append(key)
            self._wake()

    def shut_down(self) -> None:
        self._shutting_down = True
        for _, handle in self._delayed.values():
            handle.cancel()
        self._delayed.clear()
        self._wake()

    @property
    def shutting_down(self) -> bool:
        return self._shutting_down

    def __len__(self) -> int:
        return len(self._queue)

    def is_processing(self, key: K) -> bool:
        return key in self._processing

    def _wake(self) -> None:
        # Wake every waiter: each re-checks the queue, so a cancelled waiter cannot swallow
        # the only wake-up while others keep sleeping.
        waiters, self._waiters = self._waiters, []
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(None)

    # --- delays ----------------------------------------------------------------------------

    def add_after(self, key: K, delay: float) -> None:
        if self._shutting_down:
            return
        if delay <= 0:
            self.add(key)
            return
        loop = asyncio.get_running_loop()
        ready_at = loop.time() + delay
        existing = self._delayed.get(key)
        if existing is not None:
            if existing[0] <= ready_at:
                return  # the earlier wake-up wins, as client-go's waitingForQueue does
            existing[1].cancel()
        handle = loop.call_at(ready_at, self._fire, key)
        self._delayed[key] = (ready_at, handle)

    def _fire(self, key: K) -> None:
        self._delayed.pop(key, None)
        self.add(key)

    def pending_delayed(self) -> int:
        return len(self._delayed)

    # --- rate limiting ---------------------------------------------------------------------

    def add_rate_limited(self, key: K) -> None:
        self.add_after(key, self.rate_limiter.when(key))

    def forget(self, key: K) -> None:
        self.rate_limiter.forget(key)

    def num_requeues(self, key: K) -> int:
        return self.rate_limiter.num_requeues(key)
