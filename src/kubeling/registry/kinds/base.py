"""The strategy every kubeling kind starts from: upstream's printers and a few helpers.

Each kind's strategy subclasses ``PrintedStrategy`` so that ``columns``/``row`` come from the
kind's entry in ``registry.printers.PRINTERS`` (one table of columns for the whole server,
like upstream's ``AddHandlers``); kinds add only defaults and validation.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from kubeling.machinery.types import Obj
from kubeling.registry.printers import PRINTERS
from kubeling.registry.strategy import Column, Strategy

log = logging.getLogger(__name__)


@dataclass(kw_only=True)
class PrintedStrategy(Strategy):
    def columns(self) -> list[Column]:
        printer = PRINTERS.get(self.info.kind)
        return list(printer[0]) if printer else super().columns()

    def row(self, obj: Obj, *, now: float) -> list[Any]:
        printer = PRINTERS.get(self.info.kind)
        if not printer:
            return super().row(obj, now=now)
        try:
            return printer[1](obj, now=now)
        except (TypeError, ValueError, KeyError, AttributeError, IndexError):
            # upstream prints typed objects, so a row cannot fail there; here a stored value
            # of an odd shape (written by an older kubeling) must not turn a whole list into
            # a 500, so that object's row says <unknown> after its name
            name = (obj.get("metadata") or {}).get("name", "")
            log.warning(
                "Printing the %s row of %r failed; showing <unknown> cells.",
                self.info.kind,
                name,
                exc_info=True,
            )
            return [name] + ["<unknown>"] * (len(printer[0]) - 1)


def sub(obj: Obj, key: str) -> dict[str, Any]:
    """``obj[key]`` as a dict, created (and stored) when missing or null."""
    value = obj.get(key)
    if not isinstance(value, dict):
        value = {}
        obj[key] = value
    return value


def clear_status(obj: Obj) -> None:
    obj.pop("status", None)
