"""discovery.k8s.io EndpointSlices and coordination.k8s.io Leases.

(events.k8s.io Events share core Events' storage and strategy: see ``kinds.core``.)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Final

from kubeling.machinery import field as f
from kubeling.machinery.field import FieldError, Path
from kubeling.machinery.types import Obj
from kubeling.registry.kinds.base import PrintedStrategy
from kubeling.registry.validation import is_valid_port_num, validate_nonnegative

ADDRESS_TYPES: Final = ("FQDN", "IPv4", "IPv6")
MAX_ENDPOINTS: Final = 1000


@dataclass(kw_only=True)
class EndpointSliceStrategy(PrintedStrategy):
    generation_tracks: ClassVar[tuple[str, ...]] = ()

    def default(self, obj: Obj) -> None:
        for port in obj.get("ports") or []:
            if isinstance(port, dict):
                port.setdefault("name", "")
                if not port.get("protocol"):
                    port["protocol"] = "TCP"

    def validate(self, obj: Obj) -> list[FieldError]:
        errs: list[FieldError] = []
        kind = obj.get("addressType", "")
        if not kind:
            errs.append(f.required(Path("addressType")))
        elif kind not in ADDRESS_TYPES:
            errs.append(f.not_supported(Path("addressType"), kind, ADDRESS_TYPES))
        endpoints = obj.get("endpoints") or []
        if len(endpoints) > MAX_ENDPOINTS:
            errs.append(f.too_many(Path("endpoints"), len(endpoints), MAX_ENDPOINTS))
        for i, ep in enumerate(endpoints):
            addresses = ep.get("addresses") or []
            ap = Path("endpoints").index(i).child("addresses")
            if not addresses:
                errs.append(f.required(ap, "must contain at least 1 address"))
            elif len(addresses) > 100:
                errs.append(f.too_many(ap, len(addresses), 100))
        for i, port in enumerate(obj.get("ports") or []):
            pp = Path("ports").index(i)
            if port.get("port") is not None:
                errs.extend(
                    f.invalid(pp.child("port"), port["port"], m)
                    for m in is_valid_port_num(port["port"])
                )
            proto = port.get("protocol", "TCP")
            if proto not in ("SCTP", "TCP", "UDP"):
                errs.append(f.not_supported(pp.child("protocol"), proto, ("SCTP", "TCP", "UDP")))
        return errs

    def validate_update(self, new: Obj, old: Obj) -> list[FieldError]:
        errs = self.validate(new)
        if new.get("addressType") != old.get("addressType"):
            errs.append(
                f.invalid(Path("addressType"), new.get("addressType"), "field is immutable")
            )
        return errs


@dataclass(kw_only=True)
class LeaseStrategy(PrintedStrategy):
    generation_tracks: ClassVar[tuple[str, ...]] = ()
    allow_create_on_update: ClassVar[bool] = True

    def validate(self, obj: Obj) -> list[FieldError]:
        spec = obj.get("spec") or {}
        errs: list[FieldError] = []
        duration = spec.get("leaseDurationSeconds")
        if duration is not None and (not isinstance(duration, int) or duration <= 0):
            errs.append(
                f.invalid(Path("spec.leaseDurationSeconds"), duration, "must be greater than 0")
            )
        errs.extend(
            validate_nonnegative(spec.get("leaseTransitions"), Path("spec.leaseTransitions"))
        )
        return errs
