"""Registry fixtures: a Registry over a fresh MemoryBackend with a fake clock."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from kubeling.registry.context import RequestContext
from kubeling.registry.registry import Registry
from kubeling.storage.memory import MemoryBackend

T0 = 1_735_725_600.0  # 2025-01-01T10:00:00Z


class FakeClock:
    """An injected wall clock that moves only when a test says so."""

    def __init__(self, now: float = T0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
async def backend() -> AsyncIterator[MemoryBackend]:
    b = MemoryBackend()
    await b.start()
    yield b
    await b.close()


@pytest.fixture
async def registry(backend: MemoryBackend, clock: FakeClock) -> AsyncIterator[Registry]:
    reg = await Registry.open(backend=backend, clock=clock)
    await reg.bootstrap()
    yield reg
    await reg.close()


def ctx(**kwargs: object) -> RequestContext:
    """A request context as kubectl sends it (Strict field validation)."""
    kwargs.setdefault("field_manager", "kubectl-create")
    return RequestContext(**kwargs)  # type: ignore[arg-type]
