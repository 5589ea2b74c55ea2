"""``PersistentVolumeClaimResize``: upstream's admission check on growing a claim.

A PersistentVolumeClaim update that raises ``spec.resources.requests.storage`` is refused
with 403 Forbidden unless the claim was Bound before the update and both the old and new
claim name the same non-empty class (the beta annotation first, as upstream's
``GetPersistentVolumeClaimClass``) whose ``allowVolumeExpansion`` is true. Requests that do
not grow the claim, and writes to subresources (``status``), pass untouched; shrinking is
the PVC strategy's validation, not this plugin's. Like upstream's v1.32 plugin it no longer
asks whether the volume plugin can resize; the resizer decides that.

The plugin reads StorageClasses through a lookup the registry provides (upstream reads a
lister), so it never goes through a client.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from fractions import Fraction
from typing import Final

from kubeling.machinery.objects import claim_class
from kubeling.machinery.quantity import Quantity, QuantityError, parse_quantity
from kubeling.machinery.resources import STORAGECLASSES
from kubeling.machinery.types import Obj, ResourceInfo
from kubeling.registry.admission import Attributes, forbidden

ObjectLookup = Callable[[ResourceInfo, str, str], Awaitable[Obj | None]]
"""``(resource, namespace, name)`` → the stored object, or ``None``."""

NOT_BOUND: Final = "Only bound persistent volume claims can be expanded"
CLASS_FORBIDS: Final = (
    "only dynamically provisioned pvc can be resized and "
    "the storageclass that provisions the pvc must support resize"
)


def _requested(claim: Obj) -> object:
    return (((claim.get("spec") or {}).get("resources") or {}).get("requests") or {}).get("storage")


def _size(claim: Obj) -> Quantity | None:
    text = _requested(claim)
    if text is None:
        return Quantity(Fraction(0))
    try:
        return parse_quantity(text)  # type: ignore[arg-type]
    except (QuantityError, TypeError, ValueError):
        return None


def _grows(new: Obj, old: Obj) -> bool:
    """``newSize.Cmp(oldSize) > 0``; a missing size counts as zero, an unparsable one is
    left to the strategy's validation."""
    new_size, old_size = _size(new), _size(old)
    return new_size is not None and old_size is not None and old_size < new_size


class PersistentVolumeClaimResize:
    """Validating admission for ``persistentvolumeclaims`` updates."""

    def __init__(self, lookup: ObjectLookup) -> None:
        self._lookup = lookup

    async def admit(self, a: Attributes) -> None:
        return None

    async def validate(self, a: Attributes) -> None:
        if a.operation != "UPDATE" or a.subresource:
            return
        if a.info.group or a.info.plural != "persistentvolumeclaims":
            return
        if a.obj is None or a.old is None or not _grows(a.obj, a.old):
            return
        if ((a.old.get("status") or {}).get("phase")) != "Bound":
            raise forbidden(a, NOT_BOUND)
        if not await self._allow_resize(a.obj, a.old):
            raise forbidden(a, CLASS_FORBIDS)

    async def _allow_resize(self, new: Obj, old: Obj) -> bool:
        new_class, old_class = claim_class(new), claim_class(old)
        if not new_class or not old_class or new_class != old_class:
            return False
        sc = await self._lookup(STORAGECLASSES, "", new_class)
        return sc is not None and sc.get("allowVolumeExpansion") is True
