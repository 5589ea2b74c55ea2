"""The storage contract: a revisioned key-value log that every backend implements.

The API server needs exactly what etcd offers, so the interface is etcd's data model and
nothing more: keys under a prefix, every write stamped with the next cluster-wide revision,
compare-and-swap on a key's ``mod_revision``, point-in-time lists, and a watch that replays
every change after a given revision. Objects are opaque ``bytes`` here; encoding and the
``resourceVersion`` field belong to the registry above.

A SQLite backend (one writer, group commit, WAL) and an etcd backend both implement
``Backend``; ``tests/storage/contract.py`` is the suite every backend must pass.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Literal, Protocol

from kubeling.machinery.errors import KubelingError


@dataclass(frozen=True, kw_only=True, slots=True)
class KeyValue:
    key: str
    value: bytes
    create_revision: int
    mod_revision: int


@dataclass(frozen=True, kw_only=True, slots=True)
class ListResult:
    items: list[KeyValue]
    revision: int
    """The revision the list is consistent at (the store's revision when it was read, or
    the revision that was asked for)."""
    more: bool
    """True when ``limit`` cut the list short; continue after ``items[-1].key``."""


EventType = Literal["PUT", "DELETE"]


@dataclass(frozen=True, kw_only=True, slots=True)
class Event:
    """One change, as the watch replays it.

    For a PUT, ``kv`` is the new value and ``prev`` the value before (``None`` for a
    create). For a DELETE, ``kv.value`` is empty, ``kv.mod_revision`` is the delete's
    revision, and ``prev`` is the last value the key had.
    """

    type: EventType
    kv: KeyValue
    prev: KeyValue | None


# --- Errors: raised by every backend for the same conditions --------------------------------


class StorageError(KubelingError):
    """Root of storage failures."""


class KeyExists(StorageError):
    def __init__(self, key: str) -> None:
        super().__init__(f"key {key!r} already exists")
        self.key = key


class KeyNotFound(StorageError):
    def __init__(self, key: str) -> None:
        super().__init__(f"key {key!r} not found")
        self.key = key


class RevisionMismatch(StorageError):
    """Compare-and-swap failed: the key's ``mod_revision`` is not the expected one."""

    def __init__(self, key: str, *, expected: int, actual: int) -> None:
        super().__init__(f"key {key!r} is at revision {actual}, not {expected}")
        self.key = key
        self.expected = expected
        self.actual = actual


class Compacted(StorageError):
    """The revision asked for is older than the oldest one the store still holds."""

    def __init__(self, *, requested: int, oldest: int) -> None:
        super().__init__(f"revision {requested} is compacted; the oldest kept is {oldest}")
        self.requested = requested
        self.oldest = oldest


class FutureRevision(StorageError):
    """A point-in-time read asked for a revision the store has not reached yet."""

    def __init__(self, *, requested: int, current: int) -> None:
        super().__init__(f"revision {requested} is newer than the current revision {current}")
        self.requested = requested
        self.current = current


class WatchLagging(StorageError):
    """A watcher fell too far behind and was closed rather than allowed to skip events."""


class StoreClosed(StorageError):
    """The backend is closed or lost its connection; no further operations succeed."""


class Backend(Protocol):
    """What the registry needs from a store. All writes are durable when they return."""

    async def start(self) -> None:
        """Open the store (create the schema, start the writer and the watch feed)."""

    async def close(self) -> None:
        """Flush pending writes, end every watch with ``StoreClosed`` and release files."""

    async def current_revision(self) -> int: ...

    async def get(self, key: str) -> KeyValue | None: ...

    async def list(
        self,
        prefix: str,
        *,
        start_after: str = "",
        limit: int = 0,
        revision: int = 0,
    ) -> ListResult:
        """Keys under ``prefix`` in key order, after ``start_after``.

        ``limit`` 0 means all. ``revision`` 0 means the current state; otherwise the state
        as of that revision (raises ``Compacted`` when it is no longer kept, and
        ``FutureRevision`` when it is newer than the store's current revision).
        """
        ...

    async def count(self, prefix: str) -> int: ...

    async def create(self, key: str, value: bytes) -> KeyValue:
        """Insert a new key; raises ``KeyExists``."""
        ...

    async def update(self, key: str, value: bytes, *, expected_revision: int) -> KeyValue:
        """Replace ``key`` if its ``mod_revision`` equals ``expected_revision``.

        Raises ``KeyNotFound`` or ``RevisionMismatch``. ``expected_revision`` 0 means
        unconditional.
        """
        ...

    async def delete(self, key: str, *, expected_revision: int = 0) -> KeyValue:
        """Remove ``key`` and return its last value; same preconditions as ``update``.

        The returned ``KeyValue`` carries the last value, with ``mod_revision`` set to the
        delete's own revision.
        """
        ...

    def watch(self, prefix: str, *, after_revision: int) -> AsyncIterator[Event]:
        """Every change under ``prefix`` with a revision greater than ``after_revision``,
        in revision order, then each new change as it commits.

        Raises ``Compacted`` (at first iteration) when ``after_revision`` is older than
        what the store can replay, and ``WatchLagging`` when the consumer falls too far
        behind. Never skips an event.
        """
        ...

    async def compact(self, *, keep_revisions: int) -> int:
        """Drop history older than the newest ``keep_revisions`` revisions; returns the
        oldest revision still kept."""
        ...
