"""The in-memory index of a store's current state: every live key and its latest value.

Both backends answer ``get``, ``list`` and ``count`` at the current revision from this index,
so those reads never touch disk and never wait for the writer. Keys are kept in a sorted
list next to the dict so a prefix is a contiguous slice found by bisection: ``count`` is two
binary searches and a page of ``list`` costs only the keys it returns.
"""

from __future__ import annotations

import bisect

from kubeling.storage.interface import KeyValue


def prefix_end(prefix: str) -> str:
    """The smallest string greater than every string that starts with ``prefix``.

    ``""`` stands for "no upper bound" (the empty prefix matches everything).
    """
    if not prefix:
        return ""
    # Bumping the last character gives the exclusive upper bound of the prefix range;
    # U+10FFFF cannot be bumped, so drop it and bump the one before (etcd's rule on bytes).
    stripped = prefix.rstrip("\U0010ffff")
    if not stripped:
        return ""
    return stripped[:-1] + chr(ord(stripped[-1]) + 1)


class KeyIndex:
    """Live keys in key order with their latest ``KeyValue``. Not thread-safe: one owner."""

    __slots__ = ("_keys", "_values")

    def __init__(self) -> None:
        self._values: dict[str, KeyValue] = {}
        self._keys: list[str] = []

    def __len__(self) -> int:
        return len(self._values)

    def get(self, key: str) -> KeyValue | None:
        return self._values.get(key)

    def put(self, kv: KeyValue) -> None:
        if kv.key not in self._values:
            bisect.insort(self._keys, kv.key)
        self._values[kv.key] = kv

    def remove(self, key: str) -> None:
        if self._values.pop(key, None) is not None:
            at = bisect.bisect_left(self._keys, key)
            del self._keys[at]

    def _bounds(self, prefix: str, start_after: str) -> tuple[int, int]:
        lo = bisect.bisect_left(self._keys, prefix)
        if start_after and start_after >= prefix:
            lo = bisect.bisect_right(self._keys, start_after)
        end = prefix_end(prefix)
        hi = bisect.bisect_left(self._keys, end) if end else len(self._keys)
        return lo, max(lo, hi)

    def page(
        self, prefix: str, *, start_after: str = "", limit: int = 0
    ) -> tuple[list[KeyValue], bool]:
        """Values under ``prefix`` after ``start_after``; the flag says ``limit`` cut it short."""
        lo, hi = self._bounds(prefix, start_after)
        more = False
        if limit > 0 and hi - lo > limit:
            hi = lo + limit
            more = True
        return [self._values[k] for k in self._keys[lo:hi]], more

    def count(self, prefix: str) -> int:
        lo, hi = self._bounds(prefix, "")
        return hi - lo

    def items(self) -> list[KeyValue]:
        return [self._values[k] for k in self._keys]
