"""Conversions between served versions that share one stored form.

``events.k8s.io/v1`` Events are stored as core ``v1`` Events, as upstream does, so both
APIs see the same objects (``kubectl describe`` reads core Events that controllers may write
through either API). Reads through ``events.k8s.io`` convert the stored core Event; writes
convert to core before storing. The field mapping is upstream's
(``pkg/apis/events/v1/conversion.go``): renamed fields move, the shared ones are copied.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Final

from kubeling.machinery.types import Obj, ResourceInfo

# (events.k8s.io/v1 field, core/v1 field)
_RENAMED: Final = (
    ("regarding", "involvedObject"),
    ("note", "message"),
    ("deprecatedSource", "source"),
    ("deprecatedFirstTimestamp", "firstTimestamp"),
    ("deprecatedLastTimestamp", "lastTimestamp"),
    ("deprecatedCount", "count"),
    ("reportingController", "reportingComponent"),
)
_SHARED: Final = (
    "metadata",
    "eventTime",
    "series",
    "type",
    "reason",
    "action",
    "related",
    "reportingInstance",
)


def _move(src: Obj, pairs: tuple[tuple[str, str], ...], *, api_version: str) -> Obj:
    out: Obj = {"kind": "Event", "apiVersion": api_version}
    for key in _SHARED:
        if key in src:
            out[key] = src[key]
    for a, b in pairs:
        if a in src:
            out[b] = src[a]
    return out


def event_core_to_v1(core: Obj) -> Obj:
    """A stored core/v1 Event as events.k8s.io/v1 serves it."""
    return _move(core, tuple((b, a) for a, b in _RENAMED), api_version="events.k8s.io/v1")


def event_v1_to_core(ev: Obj) -> Obj:
    """An events.k8s.io/v1 Event in the stored core/v1 form."""
    return _move(ev, _RENAMED, api_version="v1")


Converter = Callable[[Obj], Obj]


def _identity(obj: Obj) -> Obj:
    return obj


def converters(info: ResourceInfo) -> tuple[Converter, Converter]:
    """``(to_storage, from_storage)`` for a served resource; identity when they coincide."""
    if info.group == "events.k8s.io" and info.kind == "Event":
        return event_v1_to_core, event_core_to_v1
    return _identity, _identity
