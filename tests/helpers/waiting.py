"""``wait_until`` (async) and ``poll`` (sync): a predicate polled with a deadline instead of
a fixed sleep.

The states tests wait for (a status another task writes, an object a controller creates)
have no event of their own, so polling is the point. ``wait_until``'s delay starts at 2 ms
and doubles to 50 ms, so a condition that already holds costs nothing and a slow one little
CPU; ``poll`` waits a fixed ``interval`` because each of its rounds is a kubectl call.
"""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Callable
from typing import Any

import pytest

Predicate = Callable[[], Any]
"""A sync or async callable; its result counts when truthy."""


async def wait_until(predicate: Predicate, timeout: float = 10.0, *, what: str = "") -> Any:  # noqa: ASYNC109 - a poll with a deadline, by design
    """Return the first truthy value of ``predicate()``; fail the test after ``timeout``
    seconds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    delay = 0.002
    while True:
        result = predicate()
        if inspect.isawaitable(result):
            result = await result
        if result:
            return result
        if loop.time() >= deadline:
            pytest.fail(f"timed out after {timeout}s waiting for {what or predicate!r}")
        await asyncio.sleep(delay)
        delay = min(delay * 2, 0.05)


def poll(
    predicate: Callable[[], Any],
    timeout: float = 60.0,
    *,
    what: str = "",
    interval: float = 0.2,
) -> Any:
    """``wait_until`` for synchronous tests (kubectl against ``kubeling up``): the first truthy
    value of ``predicate()``; fail the test after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            pytest.fail(f"timed out after {timeout}s waiting for {what or predicate!r}")
        # Each round is a kubectl call or a query; the states polled have no event to block on.
        time.sleep(interval)
