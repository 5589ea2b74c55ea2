"""The storage contract: what every ``Backend`` must do, with exact revisions.

``test_contract.py`` runs ``BackendContract`` once per backend (the ``make_backend`` fixture
in conftest is parametrized), so a new backend is covered by adding its name there.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from kubeling.storage.interface import (
    Backend,
    Compacted,
    Event,
    FutureRevision,
    KeyExists,
    KeyNotFound,
    KeyValue,
    RevisionMismatch,
    StoreClosed,
    WatchLagging,
)
from tests.storage.conftest import MakeBackend

# A generous bound for a watch event that is already committed; only reached on failure.
EVENT_DEADLINE = 10.0


async def next_event(stream: AsyncIterator[Event]) -> Event:
    return await asyncio.wait_for(anext(stream), EVENT_DEADLINE)


def kv(key: str, value: bytes, create: int, mod: int) -> KeyValue:
    return KeyValue(key=key, value=value, create_revision=create, mod_revision=mod)


async def seed(backend: Backend, *keys: str) -> list[KeyValue]:
    return [await backend.create(k, k.encode()) for k in keys]


class BackendContract:
    # --- single-key writes ---------------------------------------------------------------

    async def test_create_stamps_the_next_revision(self, backend: Backend) -> None:
        assert await backend.current_revision() == 0
        first = await backend.create("/pods/default/a", b"A")
        second = await backend.create("/pods/default/b", b"B")
        assert first == kv("/pods/default/a", b"A", 1, 1)
        assert second == kv("/pods/default/b", b"B", 2, 2)
        assert await backend.get("/pods/default/a") == first
        assert await backend.current_revision() == 2

    async def test_create_existing_key_raises_key_exists(self, backend: Backend) -> None:
        await backend.create("/k", b"1")
        with pytest.raises(KeyExists) as caught:
            await backend.create("/k", b"2")
        assert caught.value.key == "/k"
        assert await backend.get("/k") == kv("/k", b"1", 1, 1)
        assert await backend.current_revision() == 1

    async def test_get_missing_key_returns_none(self, backend: Backend) -> None:
        assert await backend.get("/nope") is None

    async def test_update_with_matching_revision_keeps_create_revision(
        self, backend: Backend
    ) -> None:
        await backend.create("/k", b"1")
        await backend.create("/other", b"x")
        updated = await backend.update("/k", b"2", expected_revision=1)
        assert updated == kv("/k", b"2", 1, 3)
        assert await backend.get("/k") == updated

    async def test_update_with_stale_revision_raises_mismatch(self, backend: Backend) -> None:
        await backend.create("/k", b"1")
        await backend.update("/k", b"2", expected_revision=1)
        with pytest.raises(RevisionMismatch) as caught:
            await backend.update("/k", b"3", expected_revision=1)
        assert (caught.value.key, caught.value.expected, caught.value.actual) == ("/k", 1, 2)
        assert await backend.get("/k") == kv("/k", b"2", 1, 2)

    async def test_update_with_zero_revision_is_unconditional(self, backend: Backend) -> None:
        await backend.create("/k", b"1")
        await backend.update("/k", b"2", expected_revision=0)
        assert await backend.update("/k", b"3", expected_revision=0) == kv("/k", b"3", 1, 3)

    async def test_update_missing_key_raises_not_found(self, backend: Backend) -> None:
        with pytest.raises(KeyNotFound):
            await backend.update("/k", b"1", expected_revision=0)
        with pytest.raises(KeyNotFound):
            await backend.update("/k", b"1", expected_revision=5)

    async def test_failed_writes_consume_no_revision(self, backend: Backend) -> None:
        await backend.create("/k", b"1")
        with pytest.raises(KeyExists):
            await backend.create("/k", b"1")
        with pytest.raises(RevisionMismatch):
            await backend.update("/k", b"2", expected_revision=9)
        with pytest.raises(KeyNotFound):
            await backend.delete("/missing")
        assert await backend.current_revision() == 1
        assert (await backend.create("/j", b"")).mod_revision == 2

    async def test_delete_returns_last_value_at_the_delete_revision(self, backend: Backend) -> None:
        await backend.create("/k", b"1")
        await backend.update("/k", b"2", expected_revision=1)
        deleted = await backend.delete("/k", expected_revision=2)
        assert deleted == kv("/k", b"2", 1, 3)
        assert await backend.get("/k") is None
        assert await backend.current_revision() == 3

    async def test_delete_preconditions(self, backend: Backend) -> None:
        with pytest.raises(KeyNotFound):
            await backend.delete("/k")
        await backend.create("/k", b"1")
        with pytest.raises(RevisionMismatch) as caught:
            await backend.delete("/k", expected_revision=7)
        assert (caught.value.expected, caught.value.actual) == (7, 1)
        assert (await backend.delete("/k")).mod_revision == 2

    async def test_recreate_after_delete_gets_a_new_create_revision(self, backend: Backend) -> None:
        await backend.create("/k", b"1")
        await backend.delete("/k")
        assert await backend.create("/k", b"again") == kv("/k", b"again", 3, 3)

    # --- lists and counts ------------------------------------------------------------------

    async def test_list_returns_keys_under_prefix_in_order(self, backend: Backend) -> None:
        await seed(backend, "/p/c", "/p/a", "/q/a", "/p/b")
        result = await backend.list("/p/")
        assert [i.key for i in result.items] == ["/p/a", "/p/b", "/p/c"]
        assert [i.mod_revision for i in result.items] == [2, 4, 1]
        assert result.revision == 4
        assert result.more is False

    async def test_list_pages_with_start_after_and_limit(self, backend: Backend) -> None:
        await seed(backend, "/p/a", "/p/b", "/p/c", "/p/d", "/p/e")
        first = await backend.list("/p/", limit=2)
        assert ([i.key for i in first.items], first.more) == (["/p/a", "/p/b"], True)
        second = await backend.list("/p/", start_after="/p/b", limit=2, revision=first.revision)
        assert ([i.key for i in second.items], second.more) == (["/p/c", "/p/d"], True)
        last = await backend.list("/p/", start_after="/p/d", limit=2, revision=first.revision)
        assert ([i.key for i in last.items], last.more) == (["/p/e"], False)
        exact = await backend.list("/p/", start_after="/p/c", limit=2)
        assert ([i.key for i in exact.items], exact.more) == (["/p/d", "/p/e"], False)

    async def test_list_at_past_revision_shows_that_state(self, backend: Backend) -> None:
        await seed(backend, "/p/a", "/p/b")  # 1, 2
        await backend.update("/p/a", b"A2", expected_revision=1)  # 3
        await backend.delete("/p/b")  # 4
        await backend.create("/p/c", b"C")  # 5
        at2 = await backend.list("/p/", revision=2)
        assert at2.items == [kv("/p/a", b"/p/a", 1, 1), kv("/p/b", b"/p/b", 2, 2)]
        assert at2.revision == 2
        at3 = await backend.list("/p/", revision=3)
        assert [(i.key, i.value) for i in at3.items] == [("/p/a", b"A2"), ("/p/b", b"/p/b")]
        at4 = await backend.list("/p/", revision=4)
        assert [i.key for i in at4.items] == ["/p/a"]
        paged = await backend.list("/p/", revision=3, start_after="/p/a", limit=1)
        assert ([i.key for i in paged.items], paged.more) == (["/p/b"], False)
        now = await backend.list("/p/")
        assert [i.key for i in now.items] == ["/p/a", "/p/c"]
        assert now.revision == 5

    async def test_list_at_future_revision_raises(self, backend: Backend) -> None:
        await seed(backend, "/p/a")
        with pytest.raises(FutureRevision):
            await backend.list("/p/", revision=2)

    async def test_list_at_compacted_revision_raises(self, backend: Backend) -> None:
        await seed(backend, "/p/a", "/p/b", "/p/c", "/p/d")
        await backend.update("/p/a", b"new", expected_revision=1)  # 5
        oldest = await backend.compact(keep_revisions=2)
        assert oldest == 3
        with pytest.raises(Compacted) as caught:
            await backend.list("/p/", revision=2)
        assert (caught.value.requested, caught.value.oldest) == (2, 3)
        at3 = await backend.list("/p/", revision=3)
        assert [(i.key, i.value) for i in at3.items] == [
            ("/p/a", b"/p/a"),
            ("/p/b", b"/p/b"),
            ("/p/c", b"/p/c"),
        ]
        # Compaction never drops a live key's latest value, however old it is.
        assert await backend.get("/p/b") == kv("/p/b", b"/p/b", 2, 2)

    async def test_count_counts_live_keys_under_prefix(self, backend: Backend) -> None:
        await seed(backend, "/p/a", "/p/b", "/q/a")
        await backend.delete("/p/a")
        assert await backend.count("/p/") == 1
        assert await backend.count("/") == 2
        assert await backend.count("/r/") == 0

    async def test_prefix_does_not_match_sibling_with_longer_name(self, backend: Backend) -> None:
        await seed(backend, "/a/x", "/ab/x", "/a", "/a0")
        assert [i.key for i in (await backend.list("/a/")).items] == ["/a/x"]
        assert await backend.count("/a/") == 1
        stream = backend.watch("/a/", after_revision=0)
        try:
            await backend.create("/ab/y", b"")
            await backend.create("/a/y", b"")
            assert (await next_event(stream)).kv.key == "/a/x"
            assert (await next_event(stream)).kv.key == "/a/y"
        finally:
            await stream.aclose()  # type: ignore[attr-defined]

    # --- concurrency -----------------------------------------------------------------------

    async def test_concurrent_creates_get_distinct_gapless_revisions(
        self, backend: Backend
    ) -> None:
        created = await asyncio.gather(
            *(backend.create(f"/c/{n:03}", str(n).encode()) for n in range(200))
        )
        assert sorted(c.mod_revision for c in created) == list(range(1, 201))
        assert await backend.count("/c/") == 200
        assert await backend.current_revision() == 200

    async def test_concurrent_cas_updates_let_exactly_one_win(self, backend: Backend) -> None:
        await backend.create("/k", b"0")
        results = await asyncio.gather(
            *(backend.update("/k", str(n).encode(), expected_revision=1) for n in range(20)),
            return_exceptions=True,
        )
        winners = [r for r in results if isinstance(r, KeyValue)]
        assert len(winners) == 1
        assert all(isinstance(r, RevisionMismatch) for r in results if r not in winners)
        assert await backend.get("/k") == winners[0]
        assert winners[0].mod_revision == 2

    # --- watch -----------------------------------------------------------------------------

    async def test_watch_replays_then_streams_live(self, backend: Backend) -> None:
        await seed(backend, "/w/a", "/w/b")
        await backend.update("/w/a", b"A2", expected_revision=1)
        stream = backend.watch("/w/", after_revision=1)
        try:
            replayed = [await next_event(stream), await next_event(stream)]
            assert [(e.type, e.kv.key, e.kv.mod_revision) for e in replayed] == [
                ("PUT", "/w/b", 2),
                ("PUT", "/w/a", 3),
            ]
            assert replayed[0].prev is None
            assert replayed[1].prev == kv("/w/a", b"/w/a", 1, 1)
            await backend.create("/w/c", b"C")
            live = await next_event(stream)
            assert (live.type, live.kv, live.prev) == ("PUT", kv("/w/c", b"C", 4, 4), None)
        finally:
            await stream.aclose()  # type: ignore[attr-defined]

    async def test_watch_from_current_revision_sees_only_new_events(self, backend: Backend) -> None:
        await seed(backend, "/w/a")
        stream = backend.watch("/w/", after_revision=await backend.current_revision())
        try:
            waiting = asyncio.ensure_future(next_event(stream))
            await backend.create("/w/b", b"")
            assert (await waiting).kv.mod_revision == 2
        finally:
            await stream.aclose()  # type: ignore[attr-defined]

    async def test_watch_delete_event_carries_previous_value(self, backend: Backend) -> None:
        await backend.create("/w/a", b"A")
        await backend.update("/w/a", b"A2", expected_revision=1)
        await backend.delete("/w/a")
        stream = backend.watch("/w/", after_revision=2)
        try:
            event = await next_event(stream)
            assert event.type == "DELETE"
            assert event.kv == kv("/w/a", b"", 1, 3)
            assert event.prev == kv("/w/a", b"A2", 1, 2)
        finally:
            await stream.aclose()  # type: ignore[attr-defined]

    async def test_watch_older_than_window_raises_compacted(
        self, make_backend: MakeBackend
    ) -> None:
        backend = await make_backend(window_size=3)
        await seed(backend, "/w/1", "/w/2", "/w/3", "/w/4", "/w/5")
        with pytest.raises(Compacted) as caught:
            await next_event(backend.watch("/w/", after_revision=1))
        assert caught.value.requested == 1
        stream = backend.watch("/w/", after_revision=2)
        try:
            assert [(await next_event(stream)).kv.mod_revision for _ in range(3)] == [3, 4, 5]
        finally:
            await stream.aclose()  # type: ignore[attr-defined]

    async def test_slow_watcher_is_ended_with_lagging_not_skipped(
        self, make_backend: MakeBackend
    ) -> None:
        backend = await make_backend(watcher_queue=4)
        stream = backend.watch("/w/", after_revision=0)
        try:
            waiting = asyncio.ensure_future(next_event(stream))
            await backend.create("/w/0", b"")
            assert (await waiting).kv.mod_revision == 1
            for n in range(1, 20):
                await backend.create(f"/w/{n}", b"")
            seen: list[int] = []
            with pytest.raises(WatchLagging):
                while True:
                    seen.append((await next_event(stream)).kv.mod_revision)
            # Whatever was delivered is a gapless run; the rest is refused loudly.
            assert seen == list(range(2, 2 + len(seen)))
            assert len(seen) <= 4
        finally:
            await stream.aclose()  # type: ignore[attr-defined]

    async def test_close_ends_watch_with_store_closed(self, make_backend: MakeBackend) -> None:
        backend = await make_backend()
        stream = backend.watch("/w/", after_revision=0)
        waiting = asyncio.ensure_future(next_event(stream))
        await backend.create("/w/a", b"")
        assert (await waiting).kv.key == "/w/a"
        await backend.close()
        with pytest.raises(StoreClosed):
            await next_event(stream)
        with pytest.raises(StoreClosed):
            await backend.create("/w/b", b"")
