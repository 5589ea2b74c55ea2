"""The strategy every kubeling kind starts from: upstream's printers and a few helpers.

Each kind's strategy subclasses ``PrintedStrategy`` so that ``columns``/``row`` come from the
kind's entry in ``registry.printers.PRINTERS`` (one table of columns for the whole server,
like upstream's ``AddHandlers``); kinds add only defaults and validation.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from kubeling.machinery.types import Obj
from kubeling.registry.printers import PRINTERS
from kubeling.registry.strategy import Column, Strategy


@dataclass(kw_only=True)
class PrintedStrategy(Strategy):
    def columns(self) -> list[Column]:
        printer = PRINTERS.get(self.info.kind)
        return list(printer[0]) if printer else super().columns()

    def row(self, obj: Obj, *, now: float) -> list[Any]:
        printer = PRINTERS.get(self.info.kind)
        return printer[1](obj, now=now) if printer else super().row(obj, now=now)


def sub(obj: Obj, key: str) -> dict[str, Any]:
    """``obj[key]`` as a dict, created (and stored) when missing or null."""
    value = obj.get(key)
    if not isinstance(value, dict):
        value = {}
        obj[key] = value
    return value


def clear_status(obj: Obj) -> None:
    obj.pop("status", None)
