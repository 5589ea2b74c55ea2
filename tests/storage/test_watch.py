"""The watch window and key index on their own, beyond what the backend contract covers."""

from __future__ import annotations

import asyncio

import pytest

from kubeling.storage.index import KeyIndex, prefix_end
from kubeling.storage.interface import Event, KeyValue, StoreClosed, WatchLagging
from kubeling.storage.watch import WatchWindow

EVENT_DEADLINE = 10.0


def put(key: str, rev: int) -> Event:
    return Event(
        type="PUT",
        kv=KeyValue(key=key, value=b"", create_revision=rev, mod_revision=rev),
        prev=None,
    )


async def registered(window: WatchWindow, count: int) -> None:
    """Yield to the loop until ``count`` watches have started (they register on first read)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + EVENT_DEADLINE
    while window.watcher_count < count:
        assert loop.time() < deadline, "the watch never registered"
        await asyncio.sleep(0)


async def take(window_stream: object, n: int) -> list[int]:
    stream = window_stream
    return [
        (await asyncio.wait_for(anext(stream), EVENT_DEADLINE)).kv.mod_revision  # type: ignore[call-overload]
        for _ in range(n)
    ]


async def test_window_rejects_events_out_of_revision_order() -> None:
    window = WatchWindow()
    window.publish([put("/a", 1), put("/a", 2)])
    with pytest.raises(ValueError):
        window.publish([put("/a", 2)])


async def test_watch_after_a_future_revision_skips_events_up_to_it() -> None:
    window = WatchWindow()
    window.publish([put("/a", 1)])
    stream = window.watch("/", after_revision=3)
    waiting = asyncio.ensure_future(take(stream, 1))
    await registered(window, 1)
    window.publish([put("/a", 2), put("/a", 3), put("/a", 4)])
    assert await waiting == [4]
    await stream.aclose()  # type: ignore[attr-defined]


async def test_closing_a_watch_unregisters_it() -> None:
    window = WatchWindow()
    stream = window.watch("/", after_revision=0)
    waiting = asyncio.ensure_future(take(stream, 1))
    await registered(window, 1)
    window.publish([put("/a", 1)])
    assert await waiting == [1]
    await stream.aclose()  # type: ignore[attr-defined]
    assert window.watcher_count == 0


async def test_one_lagging_watcher_does_not_disturb_another() -> None:
    window = WatchWindow(watcher_queue=2)
    slow = window.watch("/", after_revision=0)
    fast = window.watch("/", after_revision=0)
    slow_first = asyncio.ensure_future(take(slow, 1))
    fast_first = asyncio.ensure_future(take(fast, 1))
    await registered(window, 2)
    window.publish([put("/a", 1)])
    assert await slow_first == [1]
    assert await fast_first == [1]
    for rev in range(2, 7):
        window.publish([put("/a", rev)])
        assert await take(fast, 1) == [rev]
    assert await take(slow, 2) == [2, 3]
    with pytest.raises(WatchLagging):
        await take(slow, 1)
    await fast.aclose()  # type: ignore[attr-defined]


async def test_window_close_delivers_queued_events_before_store_closed() -> None:
    window = WatchWindow()
    stream = window.watch("/", after_revision=0)
    first = asyncio.ensure_future(take(stream, 1))
    await registered(window, 1)
    window.publish([put("/a", 1), put("/a", 2)])
    window.close()
    assert await first == [1]
    assert await take(stream, 1) == [2]
    with pytest.raises(StoreClosed):
        await take(stream, 1)
    with pytest.raises(StoreClosed):
        await take(window.watch("/", after_revision=0), 1)


@pytest.mark.parametrize(
    ("prefix", "end"),
    [
        pytest.param("", "", id="everything"),
        pytest.param("/a/", "/a0", id="slash"),
        pytest.param("/a", "/b", id="letter"),
        pytest.param("/a\U0010ffff", "/b", id="max-code-point"),
        pytest.param("\U0010ffff", "", id="only-max-code-point"),
    ],
)
def test_prefix_end_is_the_first_string_past_the_prefix(prefix: str, end: str) -> None:
    assert prefix_end(prefix) == end


def test_index_keeps_keys_sorted_across_put_and_remove() -> None:
    index = KeyIndex()
    for key in ["/c", "/a", "/b", "/a/x"]:
        index.put(KeyValue(key=key, value=b"", create_revision=1, mod_revision=1))
    index.remove("/b")
    index.remove("/missing")
    assert [kv.key for kv in index.items()] == ["/a", "/a/x", "/c"]
    assert index.count("/a") == 2
    assert index.count("/a/") == 1
    items, more = index.page("/", start_after="/a", limit=1)
    assert ([kv.key for kv in items], more) == (["/a/x"], True)
