"""Work queue semantics (client-go's): dedup, one worker per key, delays and backoff.

Delays run on the loop's timers under ``looptime`` virtual time, so nothing here sleeps on
the wall clock and the loop time itself is what the assertions check.
"""

from __future__ import annotations

import asyncio

import pytest

from kubeling.client.workqueue import (
    ItemExponentialBackoff,
    MaxOf,
    ShutDown,
    TokenBucket,
    WorkQueue,
)

pytestmark = pytest.mark.looptime


def _queue() -> WorkQueue[str]:
    return WorkQueue(name="test", rate_limiter=ItemExponentialBackoff(base=1.0, cap=60.0))


async def test_workqueue_deduplicates_queued_keys() -> None:
    q = _queue()
    for key in ("a", "b", "a", "a", "b", "c"):
        q.add(key)
    assert len(q) == 3
    assert [await q.get() for _ in range(3)] == ["a", "b", "c"]


async def test_workqueue_requeues_key_added_while_processing_only_after_done() -> None:
    q = _queue()
    q.add("a")
    key = await q.get()
    assert key == "a"
    q.add("a")
    q.add("a")
    # Not handed out again while the first worker holds it.
    assert len(q) == 0
    second = asyncio.create_task(q.get())
    await asyncio.sleep(0)
    assert not second.done()
    q.done("a")
    assert await asyncio.wait_for(second, 1) == "a"
    q.done("a")
    assert len(q) == 0


async def test_workqueue_never_gives_one_key_to_two_workers() -> None:
    q = _queue()
    active: set[str] = set()
    overlaps: list[str] = []
    processed: list[str] = []

    async def worker() -> None:
        while True:
            try:
                key = await q.get()
            except ShutDown:
                return
            if key in active:
                overlaps.append(key)
            active.add(key)
            await asyncio.sleep(0.5)  # virtual time: lets other workers run meanwhile
            processed.append(key)
            active.discard(key)
            q.done(key)

    workers = [asyncio.create_task(worker()) for _ in range(4)]
    for _ in range(5):
        for key in ("x", "y"):
            q.add(key)
        await asyncio.sleep(0.2)
    # Shutting down lets workers drain what is queued (and what done() re-queues).
    q.shut_down()
    await asyncio.gather(*workers)
    assert overlaps == []
    assert set(processed) == {"x", "y"}
    # Re-adds during processing were coalesced, not dropped and not multiplied.
    assert 2 <= processed.count("x") <= 4


async def test_workqueue_add_after_waits_for_the_delay() -> None:
    q = _queue()
    loop = asyncio.get_running_loop()
    start = loop.time()
    q.add_after("a", 5.0)
    q.add_after("a", 10.0)  # a later duplicate does not postpone it
    assert len(q) == 0
    assert await q.get() == "a"
    assert loop.time() - start == pytest.approx(5.0, abs=0.01)
    q.done("a")
    assert q.pending_delayed() == 0


async def test_workqueue_add_after_earlier_duplicate_wins() -> None:
    q = _queue()
    loop = asyncio.get_running_loop()
    start = loop.time()
    q.add_after("a", 10.0)
    q.add_after("a", 2.0)
    assert await q.get() == "a"
    assert loop.time() - start == pytest.approx(2.0, abs=0.01)
    q.done("a")
    await asyncio.sleep(20)
    assert len(q) == 0, "the cancelled 10s timer must not add the key again"


async def test_workqueue_rate_limited_backs_off_exponentially_until_forget() -> None:
    q = _queue()
    loop = asyncio.get_running_loop()
    delays = []
    for _ in range(4):
        start = loop.time()
        q.add_rate_limited("a")
        key = await q.get()
        delays.append(round(loop.time() - start, 2))
        q.done(key)
    assert delays == [1.0, 2.0, 4.0, 8.0]
    assert q.num_requeues("a") == 4
    q.forget("a")
    assert q.num_requeues("a") == 0
    start = loop.time()
    q.add_rate_limited("a")
    await q.get()
    assert loop.time() - start == pytest.approx(1.0, abs=0.01)


def test_item_backoff_is_capped() -> None:
    limiter: ItemExponentialBackoff[str] = ItemExponentialBackoff(base=0.005, cap=1000.0)
    delays = [limiter.when("k") for _ in range(100)]
    assert delays[0] == 0.005
    assert delays[1] == 0.01
    assert max(delays) == 1000.0
    assert limiter.when("other") == 0.005


def test_token_bucket_allows_burst_then_spaces_by_qps() -> None:
    now = [0.0]
    bucket: TokenBucket[str] = TokenBucket(qps=10.0, burst=3, clock=lambda: now[0])
    assert [bucket.when("k") for _ in range(3)] == [0.0, 0.0, 0.0]
    assert bucket.when("k") == pytest.approx(0.1)
    assert bucket.when("k") == pytest.approx(0.2)
    now[0] = 10.0
    assert bucket.when("k") == 0.0


def test_max_of_takes_the_longest_delay() -> None:
    now = [0.0]
    limiter: MaxOf[str] = MaxOf(
        ItemExponentialBackoff(base=1.0, cap=100.0),
        TokenBucket(qps=1.0, burst=1, clock=lambda: now[0]),
    )
    assert limiter.when("a") == 1.0
    assert limiter.when("a") == 2.0  # bucket asks 1.0, backoff 2.0
    assert limiter.num_requeues("a") == 2


async def test_workqueue_shutdown_drains_then_raises() -> None:
    q = _queue()
    q.add("a")
    waiter_q = _queue()
    blocked = asyncio.create_task(waiter_q.get())
    await asyncio.sleep(0)
    q.shut_down()
    waiter_q.shut_down()
    q.add("b")  # ignored after shut-down
    assert await q.get() == "a"
    with pytest.raises(ShutDown):
        await q.get()
    with pytest.raises(ShutDown):
        await blocked


async def test_workqueue_shutdown_cancels_delayed_adds() -> None:
    q = _queue()
    q.add_after("a", 5.0)
    q.shut_down()
    await asyncio.sleep(10)
    assert len(q) == 0
    with pytest.raises(ShutDown):
        await q.get()
