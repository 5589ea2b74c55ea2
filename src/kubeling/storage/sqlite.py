"""SqliteBackend: the revisioned log in one SQLite file, written by one thread with group commit.

The table is a log in the style of kine: one row per write, the row id *is* the revision,
a delete writes a tombstone row, and the current value of a key is its newest row. That makes
point-in-time lists (for paginated ``continue`` tokens) a query over rows ``<= revision``.

Writes go through a single writer thread that owns the only write connection. It takes every
operation queued so far, checks each against its own in-memory copy of the current state
(so a compare-and-swap costs a dict lookup, not a query), writes all of them in ONE
transaction and commits once with ``synchronous=FULL`` in WAL mode: one fsync makes a whole
batch durable, which is what lets many concurrent writers share the disk's fsync rate. Only
then does it hand the results to the event loop, which updates its read index, publishes the
events to the watch window in revision order and resolves the callers' futures, all in one
callback, so a caller that sees its write acknowledged can read it back at once.

Reads at the current revision are answered from that loop-side index without touching SQLite;
point-in-time reads run on a small reader pool with their own connections. The event loop
never waits on SQLite.

History is bounded by compaction (on demand, and every N writes or T seconds in the writer),
which drops superseded rows and tombstones below the horizon but never a live key's newest
row. The current revision and the horizon are persisted in ``meta`` so revisions never go
backwards across restarts, even when compaction removed the newest rows' predecessors.
"""

from __future__ import annotations

import asyncio
import builtins
import concurrent.futures
import fcntl
import logging
import pathlib
import queue
import sqlite3
import threading
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import IO, Any, Literal, TypeVar

from kubeling.storage.index import KeyIndex, prefix_end
from kubeling.storage.interface import (
    Compacted,
    Event,
    FutureRevision,
    KeyExists,
    KeyNotFound,
    KeyValue,
    ListResult,
    RevisionMismatch,
    StorageError,
    StoreClosed,
)
from kubeling.storage.watch import DEFAULT_WATCHER_QUEUE, DEFAULT_WINDOW_SIZE, WatchWindow

log = logging.getLogger(__name__)

# One line per storage operation, below DEBUG (STYLE-ANCHORS §12).
TRACE = 5
logging.addLevelName(TRACE, "TRACE")

# A batch larger than this is split so one transaction cannot hold the write lock for long,
# and so one commit's events stay well inside a watcher's queue (DEFAULT_WATCHER_QUEUE).
MAX_BATCH = 1_000
DEFAULT_COMPACT_KEEP = 10_000
DEFAULT_COMPACT_EVERY_WRITES = 10_000
DEFAULT_COMPACT_INTERVAL = 300.0
BUSY_TIMEOUT_MS = 5_000

_SCHEMA = (
    """CREATE TABLE IF NOT EXISTS kv (
        id INTEGER PRIMARY KEY,
        name TEXT NOT NULL,
        deleted INTEGER NOT NULL,
        create_revision INTEGER NOT NULL,
        prev_revision INTEGER NOT NULL,
        value BLOB NOT NULL
    )""",
    "CREATE INDEX IF NOT EXISTS kv_name_id ON kv (name, id)",
    "CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value INTEGER NOT NULL)",
    "INSERT OR IGNORE INTO meta (name, value) VALUES ('revision', 0), ('compacted', 0)",
)

_INSERT = (
    "INSERT INTO kv (id, name, deleted, create_revision, prev_revision, value)"
    " VALUES (?, ?, ?, ?, ?, ?)"
)

# The newest row of every key; the live ones are the current state.
_LOAD_CURRENT = """
    SELECT k.id, k.name, k.create_revision, k.value FROM kv AS k
    JOIN (SELECT MAX(id) AS id FROM kv GROUP BY name) AS m ON k.id = m.id
    WHERE k.deleted = 0
"""

# Recent rows with the row each one replaced, to refill the watch window after a restart.
_LOAD_EVENTS = """
    SELECT k.id, k.name, k.deleted, k.create_revision, k.value,
           p.id, p.create_revision, p.value
    FROM kv AS k LEFT JOIN kv AS p ON p.id = k.prev_revision AND k.prev_revision > 0
    WHERE k.id > ? ORDER BY k.id
"""

# Newest row at or below the revision for each key in range; tombstones mean "absent".
# Walking the (name, id) index in key order lets LIMIT stop the scan after one page, so a
# paginated list costs a page per request rather than the whole rest of the prefix.
_LIST_AT = """
    SELECT k.name, k.value, k.create_revision, k.id FROM kv AS k
    WHERE k.name >= ? AND k.name > ? AND (? = '' OR k.name < ?) AND k.deleted = 0
      AND k.id = (SELECT MAX(n.id) FROM kv AS n WHERE n.name = k.name AND n.id <= ?)
    ORDER BY k.name
    LIMIT ?
"""

# For every key written in (previous horizon, horizon]: drop its rows older than its newest
# row in that range, and that newest row too when it is a tombstone. Rows above the horizon
# and a live key's newest row at or below it survive, so the state at the horizon is intact.
_COMPACT = """
    DELETE FROM kv WHERE id IN (
        SELECT k.id FROM kv AS k
        JOIN (
            SELECT name, MAX(id) AS top FROM kv WHERE id > ? AND id <= ? GROUP BY name
        ) AS c ON k.name = c.name
        WHERE k.id < c.top OR (k.id = c.top AND k.deleted = 1)
    )
"""

T = TypeVar("T")


@dataclass(frozen=True, kw_only=True, slots=True)
class WriterStats:
    """Counters from the writer thread, for tests and metrics."""

    transactions: int
    """Write transactions committed (one per group commit)."""
    operations: int
    """Writes that committed (failed preconditions are not counted)."""
    largest_batch: int
    compactions: int


_OpKind = Literal["create", "update", "delete", "compact", "stop"]


@dataclass(slots=True)
class _Op:
    kind: _OpKind
    future: asyncio.Future[Any] | None
    key: str = ""
    value: bytes = b""
    expected: int = 0


@dataclass(slots=True)
class _Loaded:
    revision: int
    compacted: int
    current: list[KeyValue]
    events: list[Event]
    window_start: int


def _translate(exc: Exception, doing: str) -> StorageError:
    error = StorageError(f"the sqlite store failed to {doing}: {exc}")
    error.__cause__ = exc
    return error


class SqliteBackend:
    """A durable ``Backend`` in the SQLite file at ``path``."""

    def __init__(
        self,
        path: pathlib.Path | str,
        *,
        window_size: int = DEFAULT_WINDOW_SIZE,
        watcher_queue: int = DEFAULT_WATCHER_QUEUE,
        compact_keep: int = DEFAULT_COMPACT_KEEP,
        compact_every_writes: int = DEFAULT_COMPACT_EVERY_WRITES,
        compact_interval: float = DEFAULT_COMPACT_INTERVAL,
        readers: int = 2,
    ) -> None:
        self.path = pathlib.Path(path)
        self._window_size = window_size
        self._watcher_queue = watcher_queue
        self._compact_keep = compact_keep
        self._compact_every = compact_every_writes
        if compact_interval <= 0 or compact_every_writes < 1 or compact_keep < 0:
            raise ValueError("compaction needs a positive interval and write count")
        self._compact_interval = compact_interval
        self._reader_count = readers

        # Loop-side state: what has been acknowledged to callers.
        self._index = KeyIndex()
        self._revision = 0
        # Replaced in start() by a window that begins at the stored revision; until then a
        # watch ends at once rather than waiting on a window nothing feeds.
        self._window = WatchWindow(size=window_size, watcher_queue=watcher_queue)
        self._window.close(StoreClosed(f"the sqlite store {self.path} is not started"))
        self._loop: asyncio.AbstractEventLoop | None = None
        self._started = False
        self._closed = False
        self._released = False

        # Writer-side state: touched only by the writer thread once it runs.
        self._queue: queue.SimpleQueue[_Op] = queue.SimpleQueue()
        self._writer: threading.Thread | None = None
        self._w_state: dict[str, KeyValue] = {}
        self._w_revision = 0
        self._w_compacted = 0
        self._w_since_compact = 0
        self._w_batch: builtins.list[_Op] = []
        self._w_stats = WriterStats(transactions=0, operations=0, largest_batch=0, compactions=0)

        self._readers: concurrent.futures.ThreadPoolExecutor | None = None
        self._reader_local = threading.local()
        self._reader_conns: list[sqlite3.Connection] = []
        self._reader_lock = threading.Lock()

    # --- lifecycle -----------------------------------------------------------------------

    async def start(self) -> None:
        if self._started:
            return
        self._loop = asyncio.get_running_loop()
        ready: asyncio.Future[_Loaded] = self._loop.create_future()
        self._writer = threading.Thread(
            target=self._writer_main, args=(ready,), name="kubeling-sqlite-writer", daemon=True
        )
        self._writer.start()
        loaded = await ready
        for kv in loaded.current:
            self._index.put(kv)
        self._revision = loaded.revision
        self._window = WatchWindow(
            start_revision=loaded.window_start,
            size=self._window_size,
            watcher_queue=self._watcher_queue,
        )
        self._window.publish(loaded.events)
        self._readers = concurrent.futures.ThreadPoolExecutor(
            max_workers=self._reader_count, thread_name_prefix="kubeling-sqlite-read"
        )
        self._started = True
        log.debug(
            "Opened sqlite store %s at revision %d with %d keys.",
            self.path,
            loaded.revision,
            len(loaded.current),
        )

    async def close(self) -> None:
        self._closed = True
        if not self._started or self._released:
            return
        self._released = True
        writer = self._writer
        if writer is not None and writer.is_alive():
            self._queue.put(_Op("stop", None))
            # The writer's last result callbacks are queued on the loop before this join
            # completes, so every acknowledged write is resolved before the watches end.
            await asyncio.to_thread(writer.join)
        self._window.close()
        if self._readers is not None:
            await asyncio.to_thread(self._readers.shutdown, wait=True)
        await asyncio.to_thread(self._close_readers)

    def _close_readers(self) -> None:
        with self._reader_lock:
            for conn in self._reader_conns:
                conn.close()
            self._reader_conns.clear()

    def _check_open(self) -> None:
        if self._closed or not self._started:
            raise StoreClosed(f"the sqlite store {self.path} is not open")

    @property
    def stats(self) -> WriterStats:
        return self._w_stats

    # --- reads ---------------------------------------------------------------------------

    async def current_revision(self) -> int:
        self._check_open()
        return self._revision

    async def get(self, key: str) -> KeyValue | None:
        self._check_open()
        return self._index.get(key)

    async def count(self, prefix: str) -> int:
        self._check_open()
        return self._index.count(prefix)

    async def list(
        self,
        prefix: str,
        *,
        start_after: str = "",
        limit: int = 0,
        revision: int = 0,
    ) -> ListResult:
        self._check_open()
        current = self._revision
        if revision == 0 or revision == current:
            items, more = self._index.page(prefix, start_after=start_after, limit=limit)
            return ListResult(items=items, revision=current, more=more)
        if revision > current:
            raise FutureRevision(requested=revision, current=current)
        rows = await self._read(self._list_at, prefix, start_after, limit, revision)
        more = 0 < limit < len(rows)
        if more:
            rows = rows[:limit]
        return ListResult(items=rows, revision=revision, more=more)

    async def _read(self, fn: Callable[..., T], *args: Any) -> T:
        loop, readers = self._loop, self._readers
        if loop is None or readers is None:
            raise StoreClosed(f"the sqlite store {self.path} is not open")
        return await loop.run_in_executor(readers, fn, *args)

    def _reader(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._reader_local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
            conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
            conn.execute("PRAGMA query_only = 1")
            self._reader_local.conn = conn
            with self._reader_lock:
                self._reader_conns.append(conn)
        return conn

    def _list_at(
        self, prefix: str, start_after: str, limit: int, revision: int
    ) -> builtins.list[KeyValue]:
        try:
            conn = self._reader()
            # One read transaction: the horizon check and the rows see the same snapshot,
            # so a compaction committing meanwhile cannot hand back a half-compacted state.
            conn.execute("BEGIN")
            try:
                (compacted,) = conn.execute(
                    "SELECT value FROM meta WHERE name = 'compacted'"
                ).fetchone()
                if revision < compacted:
                    raise Compacted(requested=revision, oldest=compacted)
                end = prefix_end(prefix)
                rows = conn.execute(
                    _LIST_AT,
                    (prefix, start_after, end, end, revision, limit + 1 if limit > 0 else -1),
                ).fetchall()
            finally:
                conn.execute("COMMIT")
        except sqlite3.Error as exc:
            raise _translate(exc, f"list {prefix!r} at revision {revision}") from exc
        return [
            KeyValue(key=name, value=value, create_revision=created, mod_revision=rev)
            for name, value, created, rev in rows
        ]

    def watch(self, prefix: str, *, after_revision: int) -> AsyncIterator[Event]:
        return self._window.watch(prefix, after_revision=after_revision)

    # --- writes --------------------------------------------------------------------------

    def _submit(self, op: _Op) -> asyncio.Future[Any]:
        self._check_open()
        if self._loop is None:
            raise StoreClosed(f"the sqlite store {self.path} is not open")
        future: asyncio.Future[Any] = self._loop.create_future()
        op.future = future
        self._queue.put(op)
        return future

    async def create(self, key: str, value: bytes) -> KeyValue:
        result: KeyValue = await self._submit(_Op("create", None, key, bytes(value)))
        return result

    async def update(self, key: str, value: bytes, *, expected_revision: int) -> KeyValue:
        op = _Op("update", None, key, bytes(value), expected_revision)
        result: KeyValue = await self._submit(op)
        return result

    async def delete(self, key: str, *, expected_revision: int = 0) -> KeyValue:
        result: KeyValue = await self._submit(_Op("delete", None, key, b"", expected_revision))
        return result

    async def compact(self, *, keep_revisions: int) -> int:
        result: int = await self._submit(_Op("compact", None, expected=keep_revisions))
        return result

    # --- the writer thread ---------------------------------------------------------------

    def _post(self, callback: Callable[..., None], *args: Any) -> None:
        if self._loop is None:
            return  # never opened: nobody is waiting for a result
        try:
            self._loop.call_soon_threadsafe(callback, *args)
        except RuntimeError:
            # The loop is closed: nobody is left to receive the results.
            pass

    def _connect_writer(self) -> sqlite3.Connection:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        # auto_vacuum only takes effect before the first table exists; later opens keep it.
        conn.execute("PRAGMA auto_vacuum = INCREMENTAL")
        mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
        if str(mode).lower() != "wal":
            raise sqlite3.OperationalError(f"cannot switch {self.path} to WAL (got {mode})")
        # FULL: the WAL is fsynced at every commit, so an acknowledged write survives a crash.
        conn.execute("PRAGMA synchronous = FULL")
        conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        conn.execute("BEGIN IMMEDIATE")
        for statement in _SCHEMA:
            conn.execute(statement)
        conn.execute("COMMIT")
        return conn

    def _load(self, conn: sqlite3.Connection) -> _Loaded:
        meta = dict(conn.execute("SELECT name, value FROM meta").fetchall())
        (newest,) = conn.execute("SELECT COALESCE(MAX(id), 0) FROM kv").fetchone()
        revision = max(int(meta["revision"]), int(newest))
        compacted = int(meta["compacted"])
        current = [
            KeyValue(key=name, value=value, create_revision=created, mod_revision=rev)
            for rev, name, created, value in conn.execute(_LOAD_CURRENT)
        ]
        # Every revision above the horizon still has its row, so the newest window_size of
        # them are exactly the events a watcher can resume from after a restart.
        window_start = max(compacted, revision - self._window_size)
        events: builtins.list[Event] = []
        for rev, name, deleted, created, value, p_rev, p_created, p_value in conn.execute(
            _LOAD_EVENTS, (window_start,)
        ):
            prev = None
            if p_rev is not None:
                prev = KeyValue(
                    key=name, value=p_value, create_revision=p_created, mod_revision=p_rev
                )
            if deleted:
                kv = KeyValue(key=name, value=b"", create_revision=created, mod_revision=rev)
                events.append(Event(type="DELETE", kv=kv, prev=prev))
            else:
                kv = KeyValue(key=name, value=value, create_revision=created, mod_revision=rev)
                events.append(Event(type="PUT", kv=kv, prev=prev))
        return _Loaded(
            revision=revision,
            compacted=compacted,
            current=current,
            events=events,
            window_start=window_start,
        )

    def _lock(self) -> IO[bytes]:
        # Two processes writing one file would each trust their own in-memory state and
        # hand out the same revisions; an advisory lock (released by the kernel even on
        # kill -9) turns that into an error at start.
        self.path.parent.mkdir(parents=True, exist_ok=True)
        handle = open(self.path.with_name(self.path.name + ".lock"), "wb")  # noqa: SIM115
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as exc:
            handle.close()
            raise StorageError(
                f"the sqlite store {self.path} is in use by another process"
            ) from exc
        return handle

    def _writer_main(self, ready: asyncio.Future[_Loaded]) -> None:
        lock: IO[bytes] | None = None
        conn: sqlite3.Connection | None = None
        try:
            lock = self._lock()
            conn = self._connect_writer()
            loaded = self._load(conn)
        except Exception as exc:
            if conn is not None:
                conn.close()
            if lock is not None:
                lock.close()
            error = exc if isinstance(exc, StorageError) else _translate(exc, f"open {self.path}")
            self._post(_settle, ready, error)
            return
        self._w_state = {kv.key: kv for kv in loaded.current}
        self._w_revision = loaded.revision
        self._w_compacted = loaded.compacted
        self._post(_settle, ready, loaded)
        try:
            self._writer_loop(conn)
        except BaseException as exc:
            # A bug in the writer must not leave callers waiting forever: fail them all.
            log.exception("The sqlite writer for %s stopped unexpectedly.", self.path)
            self._post(self._writer_died, exc)
        finally:
            conn.close()
            lock.close()

    def _writer_died(self, exc: BaseException) -> None:
        self._closed = True
        error = StoreClosed(f"the sqlite writer for {self.path} stopped: {exc!r}")
        self._window.close(error)
        # The writer thread is gone, so its last batch and the queue are ours to fail.
        for op in self._w_batch:
            _settle(op.future, error)
        while True:
            try:
                op = self._queue.get_nowait()
            except queue.Empty:
                break
            _settle(op.future, error)

    def _writer_loop(self, conn: sqlite3.Connection) -> None:
        last_compact = time.monotonic()
        while True:
            # Idle with nothing written since the last compaction: nothing to time out for.
            wait: float | None = None
            if self._w_since_compact:
                wait = max(0.0, last_compact + self._compact_interval - time.monotonic())
            try:
                batch = [self._queue.get(timeout=wait)]
            except queue.Empty:
                batch = []
            self._w_batch = batch
            # Group commit: whatever queued up while the previous fsync ran goes in one go.
            while len(batch) < MAX_BATCH:
                try:
                    batch.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            writes = [op for op in batch if op.kind in ("create", "update", "delete")]
            if writes:
                self._commit(conn, writes)
            for op in batch:
                if op.kind == "compact":
                    self._run_compaction(conn, op.expected, op.future)
            now = time.monotonic()
            due = now - last_compact >= self._compact_interval
            if self._w_since_compact >= self._compact_every or (due and self._w_since_compact):
                self._run_compaction(conn, self._compact_keep, None)
                last_compact = now
            elif due:
                last_compact = now
            if any(op.kind == "stop" for op in batch):
                return

    def _commit(self, conn: sqlite3.Connection, ops: builtins.list[_Op]) -> None:
        state = self._w_state
        rev = self._w_revision
        undo: dict[str, KeyValue | None] = {}
        rows: builtins.list[tuple[int, str, int, int, int, bytes]] = []
        events: builtins.list[Event] = []
        outcomes: builtins.list[tuple[asyncio.Future[Any] | None, object]] = []
        trace = log.isEnabledFor(TRACE)
        for op in ops:
            key = op.key
            current = state.get(key)
            try:
                if op.kind == "create":
                    if current is not None:
                        raise KeyExists(key)
                    rev += 1
                    new = KeyValue(key=key, value=op.value, create_revision=rev, mod_revision=rev)
                    rows.append((rev, key, 0, rev, 0, op.value))
                    events.append(Event(type="PUT", kv=new, prev=None))
                    result: KeyValue = new
                else:
                    if current is None:
                        raise KeyNotFound(key)
                    if op.expected and current.mod_revision != op.expected:
                        raise RevisionMismatch(
                            key, expected=op.expected, actual=current.mod_revision
                        )
                    rev += 1
                    created = current.create_revision
                    if op.kind == "update":
                        new = KeyValue(
                            key=key, value=op.value, create_revision=created, mod_revision=rev
                        )
                        rows.append((rev, key, 0, created, current.mod_revision, op.value))
                        events.append(Event(type="PUT", kv=new, prev=current))
                        result = new
                    else:
                        tomb = KeyValue(
                            key=key, value=b"", create_revision=created, mod_revision=rev
                        )
                        rows.append((rev, key, 1, created, current.mod_revision, b""))
                        events.append(Event(type="DELETE", kv=tomb, prev=current))
                        result = KeyValue(
                            key=key, value=current.value, create_revision=created, mod_revision=rev
                        )
            except StorageError as exc:
                outcomes.append((op.future, exc))
                if trace:
                    log.log(
                        TRACE, "%s key=%s rv=%d => err=%s", op.kind.upper(), key, op.expected, exc
                    )
                continue
            if key not in undo:
                undo[key] = current
            if events[-1].type == "DELETE":
                state.pop(key, None)
            else:
                state[key] = result
            outcomes.append((op.future, result))
            if trace:
                log.log(TRACE, "%s key=%s rv=%d => rv=%d", op.kind.upper(), key, op.expected, rev)

        if rows:
            try:
                conn.execute("BEGIN IMMEDIATE")
                try:
                    conn.executemany(_INSERT, rows)
                    conn.execute("UPDATE meta SET value = ? WHERE name = 'revision'", (rev,))
                    conn.execute("COMMIT")
                except BaseException:
                    conn.execute("ROLLBACK")
                    raise
            except sqlite3.Error as exc:
                # Nothing of the batch is on disk: forget it in memory too and fail every
                # caller in it (their preconditions were checked against the lost writes).
                for key, previous in undo.items():
                    if previous is None:
                        state.pop(key, None)
                    else:
                        state[key] = previous
                error = _translate(exc, "commit")
                self._post(_fail_all, [f for f, _ in outcomes], error)
                return
            self._w_revision = rev
            self._w_since_compact += len(rows)
            stats = self._w_stats
            self._w_stats = WriterStats(
                transactions=stats.transactions + 1,
                operations=stats.operations + len(rows),
                largest_batch=max(stats.largest_batch, len(rows)),
                compactions=stats.compactions,
            )
            if trace:
                log.log(TRACE, "COMMIT ops=%d => rv=%d", len(rows), rev)
        self._post(self._finish, events, outcomes, rev)

    def _finish(
        self,
        events: builtins.list[Event],
        outcomes: builtins.list[tuple[asyncio.Future[Any] | None, object]],
        revision: int,
    ) -> None:
        # Index first, then watchers, then callers: an acknowledged write is readable.
        for event in events:
            if event.type == "DELETE":
                self._index.remove(event.kv.key)
            else:
                self._index.put(event.kv)
        if events:
            self._revision = revision
            self._window.publish(events)
        for future, outcome in outcomes:
            _settle(future, outcome)

    def _run_compaction(
        self, conn: sqlite3.Connection, keep: int, future: asyncio.Future[Any] | None
    ) -> None:
        previous = self._w_compacted
        horizon = max(previous, self._w_revision - max(keep, 0))
        try:
            if horizon > previous:
                conn.execute("BEGIN IMMEDIATE")
                try:
                    deleted = conn.execute(_COMPACT, (previous, horizon)).rowcount
                    conn.execute("UPDATE meta SET value = ? WHERE name = 'compacted'", (horizon,))
                    conn.execute("COMMIT")
                except BaseException:
                    conn.execute("ROLLBACK")
                    raise
                # Fold the WAL back into the file and hand freed pages back to the
                # filesystem, so a stream of updates to the same keys keeps the size flat.
                conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()
                conn.execute("PRAGMA incremental_vacuum").fetchall()
                log.debug(
                    "Compacted %s to revision %d, dropping %d rows.", self.path, horizon, deleted
                )
        except sqlite3.Error as exc:
            if future is not None:
                self._post(_settle, future, _translate(exc, "compact"))
            else:
                # A background compaction has no caller to raise to; the next one retries.
                log.warning("Compacting %s to revision %d failed: %s.", self.path, horizon, exc)
            return
        self._w_compacted = horizon
        self._w_since_compact = 0
        stats = self._w_stats
        self._w_stats = WriterStats(
            transactions=stats.transactions,
            operations=stats.operations,
            largest_batch=stats.largest_batch,
            compactions=stats.compactions + 1,
        )
        if future is not None:
            self._post(_settle, future, horizon)


def _settle(future: asyncio.Future[Any] | None, outcome: object) -> None:
    if future is None or future.done():
        return
    if isinstance(outcome, BaseException):
        future.set_exception(outcome)
    else:
        future.set_result(outcome)


def _fail_all(futures: list[asyncio.Future[Any] | None], error: StorageError) -> None:
    for future in futures:
        _settle(future, error)
