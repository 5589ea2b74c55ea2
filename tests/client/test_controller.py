"""Controller runner: informers feed keys, workers reconcile, the retry policy by exception."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
from collections.abc import AsyncIterator

import pytest

from kubeling.client.controller import Controller, retry_on_conflict
from kubeling.client.informer import SharedInformerFactory
from kubeling.client.workqueue import ItemExponentialBackoff
from kubeling.machinery.errors import (
    Cause,
    Conflict,
    Forbidden,
    PermanentError,
    RetryableError,
    ServiceUnavailable,
)
from kubeling.machinery.resources import CONFIGMAPS
from kubeling.machinery.types import Obj
from tests.client.fakes import FakeClient, eventually

pytestmark = pytest.mark.looptime


class Recording(Controller):
    name = "recording"

    def __init__(self, factory: SharedInformerFactory, *, workers: int = 1) -> None:
        super().__init__(workers=workers, rate_limiter=ItemExponentialBackoff(base=1.0, cap=60.0))
        self.informer = factory.informer(CONFIGMAPS)
        self.watch(self.informer)
        self.seen: list[tuple[str, float]] = []
        self.behaviour: dict[str, list[BaseException | None]] = {}
        self.changed = asyncio.Event()
        self.active: set[str] = set()
        self.overlap = False

    async def reconcile(self, key: str) -> None:
        loop = asyncio.get_running_loop()
        if key in self.active:
            self.overlap = True
        self.active.add(key)
        try:
            self.seen.append((key, loop.time()))
            self.changed.set()
            await asyncio.sleep(0.1)
            plan = self.behaviour.get(key)
            if plan:
                outcome = plan.pop(0)
                if outcome is not None:
                    raise outcome
        finally:
            self.active.discard(key)

    def count(self, key: str) -> int:
        return sum(1 for k, _ in self.seen if k == key)

    async def wait_count(self, key: str, n: int) -> None:
        async with asyncio.timeout(600):
            while self.count(key) < n:
                self.changed.clear()
                await self.changed.wait()


@contextlib.asynccontextmanager
async def running() -> AsyncIterator[tuple[FakeClient, Recording]]:
    # A context manager inside the test rather than a fixture: looptime's virtual clock only
    # runs inside the test body, and teardown waits on loop timers.
    fake = FakeClient()
    factory = SharedInformerFactory(fake)
    ctrl = Recording(factory, workers=3)
    await fake.create(CONFIGMAPS, {"metadata": {"name": "a", "namespace": "default"}})
    runner = asyncio.create_task(ctrl.run())
    yield fake, ctrl
    await ctrl.stop()
    with contextlib.suppress(asyncio.CancelledError):
        await runner
    await factory.stop()
    await fake.close()


async def test_controller_reconciles_existing_and_new_objects() -> None:
    async with running() as (fake, ctrl):
        await ctrl.wait_count("default/a", 1)
        await fake.create(CONFIGMAPS, {"metadata": {"name": "b", "namespace": "default"}})
        await ctrl.wait_count("default/b", 1)
        assert not ctrl.overlap


async def test_controller_retryable_error_requeues_after_its_delay() -> None:
    async with running() as (fake, ctrl):
        await ctrl.wait_count("default/a", 1)
        ctrl.behaviour["default/b"] = [RetryableError("not yet", delay=42.0), None]
        await fake.create(CONFIGMAPS, {"metadata": {"name": "b", "namespace": "default"}})
        await ctrl.wait_count("default/b", 2)
        times = [t for k, t in ctrl.seen if k == "default/b"]
        assert times[1] - times[0] == pytest.approx(42.1, abs=0.05)
        assert ctrl.queue.num_requeues("default/b") == 0


async def test_controller_other_errors_back_off_exponentially() -> None:
    async with running() as (fake, ctrl):
        await ctrl.wait_count("default/a", 1)
        ctrl.behaviour["default/b"] = [RuntimeError("boom"), RuntimeError("boom"), None]
        await fake.create(CONFIGMAPS, {"metadata": {"name": "b", "namespace": "default"}})
        await ctrl.wait_count("default/b", 3)
        times = [t for k, t in ctrl.seen if k == "default/b"]
        gaps = [round(b - a, 1) for a, b in itertools.pairwise(times)]
        assert gaps == [1.1, 2.1]
        # Success forgets the backoff.
        await eventually(lambda: ctrl.queue.num_requeues("default/b") == 0)


async def test_controller_permanent_error_is_not_retried() -> None:
    async with running() as (fake, ctrl):
        await ctrl.wait_count("default/a", 1)
        ctrl.behaviour["default/b"] = [PermanentError("bad spec")]
        await fake.create(CONFIGMAPS, {"metadata": {"name": "b", "namespace": "default"}})
        await ctrl.wait_count("default/b", 1)
        await asyncio.sleep(3600)
        assert ctrl.count("default/b") == 1
        # A later change to the object brings it back.
        await fake.patch(
            CONFIGMAPS,
            name="b",
            namespace="default",
            patch={"data": {"x": "1"}},
            patch_type="merge",
        )
        await ctrl.wait_count("default/b", 2)


async def test_controller_stop_lets_current_reconcile_finish() -> None:
    fake = FakeClient()
    factory = SharedInformerFactory(fake)
    ctrl = Recording(factory, workers=1)
    finished: list[str] = []

    async def slow(key: str) -> None:
        await asyncio.sleep(5)
        finished.append(key)

    ctrl.reconcile = slow  # type: ignore[method-assign]
    await fake.create(CONFIGMAPS, {"metadata": {"name": "a", "namespace": "default"}})
    runner = asyncio.create_task(ctrl.run())
    await eventually(lambda: ctrl.queue.is_processing("default/a"))
    await ctrl.stop(grace=30)
    await runner
    await factory.stop()
    assert finished == ["default/a"]


async def test_controller_stop_before_sync_returns() -> None:
    fake = FakeClient()
    fake.fail_next["list"] = [ServiceUnavailable("down")] * 100
    factory = SharedInformerFactory(fake)
    ctrl = Recording(factory, workers=1)
    runner = asyncio.create_task(ctrl.run())
    await eventually(lambda: ("list", "configmaps") in fake.calls)
    await ctrl.stop()
    async with asyncio.timeout(5):
        await runner
    await factory.stop()
    assert ctrl.seen == []


async def test_controller_stop_does_not_start_queued_keys() -> None:
    fake = FakeClient()
    factory = SharedInformerFactory(fake)
    ctrl = Recording(factory, workers=1)
    gate = asyncio.Event()

    async def blocking(key: str) -> None:
        ctrl.seen.append((key, 0.0))
        await gate.wait()

    ctrl.reconcile = blocking  # type: ignore[method-assign]
    for name in ("a", "b", "c"):
        await fake.create(CONFIGMAPS, {"metadata": {"name": name, "namespace": "default"}})
    runner = asyncio.create_task(ctrl.run())
    await eventually(lambda: len(ctrl.seen) == 1)
    stopping = asyncio.create_task(ctrl.stop(grace=30))
    await asyncio.sleep(0)
    gate.set()
    await stopping
    await runner
    await factory.stop()
    assert [k for k, _ in ctrl.seen] == ["default/a"]


async def test_retry_on_conflict_rereads_until_the_write_lands() -> None:
    fake = FakeClient()
    await fake.create(CONFIGMAPS, {"metadata": {"name": "a", "namespace": "default"}})
    conflicts = [Conflict("stale"), Conflict("stale")]
    fake.fail_next["update"] = list(conflicts)
    attempts = 0

    async def bump() -> Obj:
        nonlocal attempts
        attempts += 1
        cm = await fake.get(CONFIGMAPS, name="a", namespace="default")
        cm["data"] = {"n": str(attempts)}
        return await fake.update(CONFIGMAPS, cm)

    out = await retry_on_conflict(bump)
    assert attempts == 3
    assert out["data"] == {"n": "3"}


async def test_retry_on_conflict_gives_up_and_raises() -> None:
    calls = 0

    async def always() -> None:
        nonlocal calls
        calls += 1
        raise Conflict("stale")

    with pytest.raises(Conflict):
        await retry_on_conflict(always, attempts=4)
    assert calls == 4


async def test_controller_terminating_namespace_is_retried_without_a_warning(
    caplog: pytest.LogCaptureFixture,
) -> None:
    terminating = Forbidden(
        'pods "x" is forbidden: unable to create new content in namespace default because it '
        "is being terminated",
        causes=[Cause(reason="NamespaceTerminating", message="namespace default is terminating")],
    )
    other = Forbidden('pods "x" is forbidden: something else')
    async with running() as (fake, ctrl):
        await ctrl.wait_count("default/a", 1)
        ctrl.behaviour["default/b"] = [terminating, other, None]
        with caplog.at_level(logging.DEBUG, logger="kubeling.client.controller"):
            await fake.create(CONFIGMAPS, {"metadata": {"name": "b", "namespace": "default"}})
            await ctrl.wait_count("default/b", 3)
        warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
        # Only the other Forbidden is worth a warning; both were retried.
        assert len(warnings) == 1
        assert "something else" in warnings[0]
