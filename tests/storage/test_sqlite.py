"""What only the SQLite backend promises: durability, restart, bounded files, group commit."""

from __future__ import annotations

import asyncio
import contextlib
import os
import pathlib
import signal
import sqlite3
import sys
from collections.abc import AsyncIterator
from typing import Any

import pytest

from kubeling.storage import open_backend
from kubeling.storage.interface import (
    Compacted,
    Event,
    KeyExists,
    KeyValue,
    StorageError,
    StoreClosed,
)
from kubeling.storage.memory import MemoryBackend
from kubeling.storage.sqlite import SqliteBackend

CRASH_WRITER = pathlib.Path(__file__).with_name("crash_writer.py")
ACKS_BEFORE_KILL = 400
EVENT_DEADLINE = 10.0


@contextlib.asynccontextmanager
async def opened(path: pathlib.Path, **options: Any) -> AsyncIterator[SqliteBackend]:
    store = SqliteBackend(path, **options)
    await store.start()
    try:
        yield store
    finally:
        await store.close()


def parse_ack(line: bytes) -> tuple[str, int, str]:
    assert line.endswith(b"\n"), f"torn acknowledgement line {line!r}"
    key, revision, value = line.decode().split()
    return key, int(revision), value


def row_count(path: pathlib.Path) -> int:
    with contextlib.closing(sqlite3.connect(path)) as conn:
        (count,) = conn.execute("SELECT COUNT(*) FROM kv").fetchone()
    return int(count)


def on_disk_size(path: pathlib.Path) -> int:
    wal = path.with_name(path.name + "-wal")
    return path.stat().st_size + (wal.stat().st_size if wal.exists() else 0)


async def test_sqlite_reopen_keeps_state_and_continues_revisions(tmp_path: pathlib.Path) -> None:
    db = tmp_path / "state.db"
    async with opened(db) as store:
        await store.create("/p/a", b"A")  # 1
        await store.create("/p/b", b"B")  # 2
        await store.update("/p/a", b"A2", expected_revision=1)  # 3
        await store.delete("/p/b")  # 4
        await store.create("/p/empty", b"")  # 5
    async with opened(db) as store:
        assert await store.current_revision() == 5
        empty = await store.get("/p/empty")
        assert empty is not None and empty.value == b""
        a = await store.get("/p/a")
        assert a is not None
        assert (a.value, a.create_revision, a.mod_revision) == (b"A2", 1, 3)
        assert await store.get("/p/b") is None
        at2 = await store.list("/p/", revision=2)
        assert [(i.key, i.value) for i in at2.items] == [("/p/a", b"A"), ("/p/b", b"B")]
        assert (await store.create("/p/c", b"C")).mod_revision == 6


async def test_sqlite_revision_never_goes_back_after_compaction_and_reopen(
    tmp_path: pathlib.Path,
) -> None:
    db = tmp_path / "state.db"
    async with opened(db) as store:
        for n in range(10):
            await store.create(f"/k/{n}", b"x")
        for n in range(10):
            await store.delete(f"/k/{n}")
        assert await store.compact(keep_revisions=0) == 20
    # Every row was superseded or a tombstone below the horizon: the log is empty.
    assert row_count(db) == 0
    async with opened(db) as store:
        assert await store.current_revision() == 20
        assert await store.count("/") == 0
        with pytest.raises(Compacted):
            await store.list("/k/", revision=19)
        assert (await store.create("/k/0", b"again")).mod_revision == 21


async def test_sqlite_watch_resumes_from_the_log_after_reopen(tmp_path: pathlib.Path) -> None:
    db = tmp_path / "state.db"
    async with opened(db) as store:
        await store.create("/w/a", b"A")  # 1
        await store.update("/w/a", b"A2", expected_revision=1)  # 2
        await store.delete("/w/a")  # 3
        await store.create("/w/b", b"B")  # 4
    async with opened(db) as store:
        stream = store.watch("/w/", after_revision=1)
        try:
            events: list[Event] = [
                await asyncio.wait_for(anext(stream), EVENT_DEADLINE) for _ in range(3)
            ]
        finally:
            await stream.aclose()  # type: ignore[attr-defined]
        assert [(e.type, e.kv.key, e.kv.mod_revision) for e in events] == [
            ("PUT", "/w/a", 2),
            ("DELETE", "/w/a", 3),
            ("PUT", "/w/b", 4),
        ]
        assert events[0].prev is not None and events[0].prev.value == b"A"
        assert events[1].prev is not None
        assert (events[1].prev.value, events[1].prev.mod_revision) == (b"A2", 2)
        assert events[2].prev is None


async def test_sqlite_watch_after_reopen_refuses_revisions_below_the_window(
    tmp_path: pathlib.Path,
) -> None:
    db = tmp_path / "state.db"
    async with opened(db) as store:
        for n in range(6):
            await store.create(f"/w/{n}", b"")
    async with opened(db, window_size=4) as store:
        with pytest.raises(Compacted) as caught:
            await anext(store.watch("/w/", after_revision=1))
        assert caught.value.oldest == 2
        stream = store.watch("/w/", after_revision=2)
        try:
            first = await asyncio.wait_for(anext(stream), EVENT_DEADLINE)
        finally:
            await stream.aclose()  # type: ignore[attr-defined]
        assert first.kv.mod_revision == 3


async def test_sqlite_group_commit_batches_concurrent_writes(tmp_path: pathlib.Path) -> None:
    async with opened(tmp_path / "state.db") as store:
        created = await asyncio.gather(*(store.create(f"/g/{n:04}", b"v") for n in range(500)))
        stats = store.stats
    assert sorted(kv.mod_revision for kv in created) == list(range(1, 501))
    assert stats.operations == 500
    # Each transaction costs an fsync; 500 concurrent writers must share them.
    assert stats.transactions <= 50
    assert stats.largest_batch >= 10


async def test_sqlite_sequential_writes_commit_one_transaction_each(
    tmp_path: pathlib.Path,
) -> None:
    async with opened(tmp_path / "state.db") as store:
        for n in range(5):
            await store.create(f"/s/{n}", b"v")
        assert (store.stats.transactions, store.stats.operations) == (5, 5)


async def test_sqlite_file_stays_bounded_under_repeated_updates(tmp_path: pathlib.Path) -> None:
    db = tmp_path / "state.db"
    keys = [f"/hot/{n:02}" for n in range(20)]
    value = b"x" * 2_000

    async def round_of_updates(store: SqliteBackend) -> None:
        await asyncio.gather(*(store.update(k, value, expected_revision=0) for k in keys))

    async with opened(db, compact_keep=100, compact_every_writes=400) as store:
        for k in keys:
            await store.create(k, value)
        for _ in range(50):
            await round_of_updates(store)
        warm = on_disk_size(db)
        for _ in range(250):
            await round_of_updates(store)
        assert store.stats.compactions >= 10
        rows = row_count(db)
        size = on_disk_size(db)
    # History is at most keep + one compaction period, plus each key's newest row.
    assert rows <= 100 + 400 + len(keys) + MAX_SLACK_ROWS
    assert size <= 2 * warm, (warm, size)


# A group commit can overshoot the compaction trigger by one batch (one update per key).
MAX_SLACK_ROWS = 20


async def test_sqlite_compacts_in_the_background_when_the_interval_passes(
    tmp_path: pathlib.Path,
) -> None:
    async with opened(
        tmp_path / "state.db", compact_keep=1, compact_every_writes=1_000_000, compact_interval=0.05
    ) as store:
        await store.create("/k", b"1")
        for n in range(2, 6):
            await store.update("/k", str(n).encode(), expected_revision=0)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + EVENT_DEADLINE
        while store.stats.compactions == 0:
            assert loop.time() < deadline, "no background compaction ran"
            await asyncio.sleep(0.01)
        with pytest.raises(Compacted) as caught:
            await store.list("/", revision=2)
        assert caught.value.oldest == 4
        assert (await store.list("/", revision=4)).items[0].value == b"4"


async def test_sqlite_writer_crash_fails_callers_instead_of_hanging(
    tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    async with opened(tmp_path / "state.db") as store:
        await store.create("/k", b"1")
        stream = store.watch("/", after_revision=1)

        def broken_commit(*_: object) -> None:
            raise RuntimeError("injected writer bug")

        monkeypatch.setattr(store, "_commit", broken_commit)
        with pytest.raises(StoreClosed, match="injected writer bug"):
            await asyncio.wait_for(store.create("/j", b"2"), EVENT_DEADLINE)
        with pytest.raises(StoreClosed):
            await store.create("/i", b"3")
        with pytest.raises(StoreClosed):
            await asyncio.wait_for(anext(stream), EVENT_DEADLINE)
    assert "stopped unexpectedly" in caplog.text


async def test_sqlite_open_failure_raises_storage_error(tmp_path: pathlib.Path) -> None:
    store = SqliteBackend(tmp_path)  # a directory, not a file
    with pytest.raises(StorageError):
        await store.start()
    await store.close()


async def test_sqlite_second_opener_of_a_file_is_refused(tmp_path: pathlib.Path) -> None:
    db = tmp_path / "state.db"
    async with opened(db):
        other = SqliteBackend(db)
        with pytest.raises(StorageError, match="in use by another process"):
            await other.start()
        await other.close()
    # The lock goes with the store that held it.
    async with opened(db) as store:
        assert await store.current_revision() == 0


async def test_sqlite_failed_commit_fails_its_batch_and_leaves_no_gap(
    tmp_path: pathlib.Path,
) -> None:
    db = tmp_path / "state.db"
    async with opened(db):
        pass
    with contextlib.closing(sqlite3.connect(db)) as conn:
        conn.execute(
            "CREATE TRIGGER refuse_boom BEFORE INSERT ON kv WHEN NEW.name = '/boom'"
            " BEGIN SELECT RAISE(ABORT, 'refused by test trigger'); END"
        )
        conn.commit()
    async with opened(db) as store:
        results = await asyncio.gather(
            *(store.create(f"/ok/{n}", b"v") for n in range(5)),
            store.create("/boom", b"v"),
            *(store.create(f"/ok/{n}", b"v") for n in range(5, 10)),
            return_exceptions=True,
        )
        assert isinstance(results[5], StorageError)
        assert "refused by test trigger" in str(results[5])
        committed = [r for r in results if isinstance(r, KeyValue)]
        # Writes sharing the failed transaction fail with it; the rest keep their revisions,
        # and no revision is burnt by the rollback.
        assert sorted(kv.mod_revision for kv in committed) == list(range(1, len(committed) + 1))
        assert await store.get("/boom") is None
        assert await store.current_revision() == len(committed)
        after = await store.create("/after", b"v")
        assert after.mod_revision == len(committed) + 1
        for r in results:
            if isinstance(r, StorageError):
                assert not isinstance(r, KeyExists)
    async with opened(db) as store:
        assert await store.current_revision() == len(committed) + 1
        assert await store.count("/ok/") == len(committed)


async def test_sqlite_acknowledged_writes_survive_kill_9(tmp_path: pathlib.Path) -> None:
    db = tmp_path / "state.db"
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        str(CRASH_WRITER),
        str(db),
        "16",
        stdout=asyncio.subprocess.PIPE,
        # Unbuffered stdout would write each piece of a line separately (see crash_writer).
        env={k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"},
    )
    assert proc.stdout is not None
    acks: list[tuple[str, int, str]] = []
    try:
        while len(acks) < ACKS_BEFORE_KILL:
            line = await proc.stdout.readline()
            assert line, "the writer exited before it was killed"
            acks.append(parse_ack(line))
        # os.kill, not proc.kill(): Popen.send_signal polls first, and that poll can reap a
        # dead child before asyncio's watcher does, which then reports exit code 255.
        os.kill(proc.pid, signal.SIGKILL)
        # Lines still in the pipe were acknowledged before the kill. Each is one write of
        # less than PIPE_BUF, so none is torn; a line without its newline would not count.
        rest = await proc.stdout.read()
        acks.extend(parse_ack(line) for line in rest.splitlines(keepends=True))
    finally:
        if proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(proc.pid, signal.SIGKILL)
        await proc.wait()
    assert proc.returncode == -signal.SIGKILL

    async with opened(db) as store:
        assert await store.current_revision() >= max(ack[1] for ack in acks)
        for key, revision, value in acks:
            at = await store.list(key, revision=revision)
            found = {i.key: i for i in at.items}
            assert key in found, (key, revision)
            assert (found[key].value.decode(), found[key].mod_revision) == (value, revision)
        newest: dict[str, int] = {}
        for key, revision, _ in acks:
            newest[key] = max(newest.get(key, 0), revision)
        for key, revision in newest.items():
            current = await store.get(key)
            assert current is not None and current.mod_revision >= revision


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        pytest.param("memory", MemoryBackend, id="memory"),
        pytest.param("sqlite", SqliteBackend, id="sqlite-default"),
    ],
)
def test_open_backend_picks_backend_by_url(
    tmp_path: pathlib.Path, url: str, expected: type
) -> None:
    backend = open_backend(url, data_dir=tmp_path)
    assert isinstance(backend, expected)
    if isinstance(backend, SqliteBackend):
        assert backend.path == tmp_path / "state.db"


def test_open_backend_sqlite_url_takes_absolute_path(tmp_path: pathlib.Path) -> None:
    backend = open_backend(f"sqlite://{tmp_path}/other.db", data_dir=tmp_path / "unused")
    assert isinstance(backend, SqliteBackend)
    assert backend.path == tmp_path / "other.db"


@pytest.mark.parametrize(
    ("url", "message"),
    [
        pytest.param("etcd://127.0.0.1:2379", "the etcd store is not available yet", id="etcd"),
        pytest.param("sqlite://relative.db", "absolute", id="relative-sqlite"),
        pytest.param("postgres://x", "unknown store URL", id="unknown"),
    ],
)
def test_open_backend_rejects_unusable_urls(tmp_path: pathlib.Path, url: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        open_backend(url, data_dir=tmp_path)
