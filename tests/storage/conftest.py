"""Backend fixtures: every contract test runs once per backend named in ``BACKENDS``."""

from __future__ import annotations

import pathlib
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest

from kubeling.storage.interface import Backend
from kubeling.storage.memory import MemoryBackend

# TODO(#2): add "etcd" once the etcd backend exists; the contract suite then covers it too.
BACKENDS = ["memory", "sqlite"]

MakeBackend = Callable[..., Awaitable[Backend]]


def build_backend(kind: str, directory: pathlib.Path, **options: Any) -> Backend:
    if kind == "memory":
        return MemoryBackend(**options)
    if kind == "sqlite":
        from kubeling.storage.sqlite import SqliteBackend

        return SqliteBackend(directory / "state.db", **options)
    raise AssertionError(f"unknown backend {kind}")


@pytest.fixture(params=BACKENDS)
async def make_backend(
    request: pytest.FixtureRequest, tmp_path: pathlib.Path
) -> AsyncIterator[MakeBackend]:
    made: list[Backend] = []

    async def make(**options: Any) -> Backend:
        directory = tmp_path / f"store{len(made)}"
        directory.mkdir()
        backend = build_backend(request.param, directory, **options)
        await backend.start()
        made.append(backend)
        return backend

    yield make
    for backend in made:
        await backend.close()


@pytest.fixture
async def backend(make_backend: MakeBackend) -> Backend:
    return await make_backend()
