"""Storage admission: ``DefaultStorageClass`` and ``StorageObjectInUseProtection``.

``DefaultStorageClass`` (mutating, PersistentVolumeClaim create only) gives a claim that
names no class at all (nil ``spec.storageClassName`` and no beta annotation) the cluster's
default class: the class annotated ``storageclass.kubernetes.io/is-default-class: "true"``
(or the beta key), the newest by creationTimestamp when there are several, ties broken by
name ascending (upstream's ``GetDefaultClass`` since 1.26). An explicit ``""`` is a choice,
"no class", and is left alone; with no default the class stays nil and the binder assigns
one retroactively once a default appears.

``StorageObjectInUseProtection`` (mutating, create only) adds ``kubernetes.io/pvc-protection``
to every new claim and ``kubernetes.io/pv-protection`` to every new volume; the protection
controllers lift them when the object is no longer in use.

Both read nothing but StorageClasses, through a lister the registry provides (upstream
reads an informer's lister), so they never go through a client.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Final

from kubeling.machinery.objects import claim_has_class, default_class
from kubeling.machinery.resources import STORAGECLASSES
from kubeling.machinery.types import Obj, ResourceInfo
from kubeling.registry.admission import Attributes, Plugin

ObjectLister = Callable[[ResourceInfo], Awaitable[list[Obj]]]
"""``resource`` → every stored object of that (cluster-scoped) resource."""

PVC_PROTECTION_FINALIZER: Final = "kubernetes.io/pvc-protection"
PV_PROTECTION_FINALIZER: Final = "kubernetes.io/pv-protection"


def _is_core(a: Attributes, plural: str) -> bool:
    return not a.info.group and a.info.plural == plural


class DefaultStorageClass:
    """Upstream's ``DefaultStorageClass`` admission plugin."""

    def __init__(self, lister: ObjectLister) -> None:
        self._lister = lister

    async def admit(self, a: Attributes) -> None:
        if a.operation != "CREATE" or a.subresource or a.obj is None:
            return
        if not _is_core(a, "persistentvolumeclaims") or claim_has_class(a.obj):
            return
        default = default_class(await self._lister(STORAGECLASSES))
        if default is None:
            return
        spec = a.obj.get("spec")
        if not isinstance(spec, dict):
            spec = {}
            a.obj["spec"] = spec
        spec["storageClassName"] = default["metadata"]["name"]

    async def validate(self, a: Attributes) -> None:
        return None


class StorageObjectInUseProtection:
    """Upstream's ``StorageObjectInUseProtection`` admission plugin."""

    async def admit(self, a: Attributes) -> None:
        if a.operation != "CREATE" or a.subresource or a.obj is None:
            return
        if _is_core(a, "persistentvolumeclaims"):
            finalizer = PVC_PROTECTION_FINALIZER
        elif _is_core(a, "persistentvolumes"):
            finalizer = PV_PROTECTION_FINALIZER
        else:
            return
        meta = a.obj.get("metadata")
        if not isinstance(meta, dict):
            meta = {}
            a.obj["metadata"] = meta
        finalizers = list(meta.get("finalizers") or [])
        if finalizer not in finalizers:
            finalizers.append(finalizer)
        meta["finalizers"] = finalizers

    async def validate(self, a: Attributes) -> None:
        return None


def storage_plugins(lister: ObjectLister) -> list[Plugin]:
    """The plugins in upstream's order (DefaultStorageClass before the protection)."""
    return [DefaultStorageClass(lister), StorageObjectInUseProtection()]
