"""The revisioned key-value store under the registry, and how a store URL picks a backend.

``open_backend`` is the only place that knows the backends by name; everything above codes
against ``storage.interface.Backend``. Backends are returned unstarted: the caller awaits
``start()`` (and ``close()``) on its own event loop.
"""

from __future__ import annotations

import pathlib

from kubeling.storage.interface import Backend


def open_backend(url: str, *, data_dir: pathlib.Path) -> Backend:
    """``sqlite`` (``data_dir/state.db``), ``sqlite:///abs/path.db``, or ``memory``."""
    if url == "memory":
        from kubeling.storage.memory import MemoryBackend

        return MemoryBackend()
    if url == "sqlite" or url.startswith("sqlite://"):
        from kubeling.storage.sqlite import SqliteBackend

        if url == "sqlite":
            path = data_dir / "state.db"
        else:
            rest = url.removeprefix("sqlite://")
            if not rest.startswith("/") or rest == "/":
                raise ValueError(f"a sqlite store URL needs an absolute file path: {url!r}")
            path = pathlib.Path(rest)
        return SqliteBackend(path)
    if url.startswith("etcd://"):
        # TODO(#2): the etcd backend is not written; only sqlite and memory stores run today.
        raise ValueError("the etcd store is not available yet")
    raise ValueError(f"unknown store URL {url!r}: use sqlite, sqlite:///abs/path.db or memory")
