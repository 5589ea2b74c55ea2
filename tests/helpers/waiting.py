"""``wait_until``: poll a predicate with a deadline instead of sleeping a fixed time.

The states tests wait for (a status another task writes, an object a controller creates)
have no event of their own, so polling is the point; the delay starts at 2 ms and doubles
to 50 ms, so a condition that already holds costs nothing and a slow one little CPU.
"""

from __future__ import annotations

import asyncio
import inspect
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
