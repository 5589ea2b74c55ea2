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

from collections.abc import Awaitable, Callable, Sequence
from typing import Final

from kubeling.machinery.resources import STORAGECLASSES
from kubeling.machinery.types import Obj, ResourceInfo
from kubeling.registry.admission import Attributes, Plugin

ObjectLister = Callable[[ResourceInfo], Awaitable[list[Obj]]]
"""``resource`` → every stored object of that (cluster-scoped) resource."""

ANN_DEFAULT_CLASS: Final = "storageclass.kubernetes.io/is-default-class"
ANN_BETA_DEFAULT_CLASS: Final = "storageclass.beta.kubernetes.io/is-default-class"
ANN_BETA_STORAGE_CLASS: Final = "volume.beta.kubernetes.io/storage-class"
PVC_PROTECTION_FINALIZER: Final = "kubernetes.io/pvc-protection"
PV_PROTECTION_FINALIZER: Final = "kubernetes.io/pv-protection"


def _annotations(obj: Obj) -> dict[str, str]:
    return (obj.get("metadata") or {}).get("annotations") or {}


def is_default_class(sc: Obj) -> bool:
    """``IsDefaultAnnotation``."""
    ann = _annotations(sc)
    return ann.get(ANN_DEFAULT_CLASS) == "true" or ann.get(ANN_BETA_DEFAULT_CLASS) == "true"


def default_class(classes: Sequence[Obj]) -> Obj | None:
    """``GetDefaultClass``: the newest default class; ties by name ascending."""
    defaults = [sc for sc in classes if is_default_class(sc)]
    if not defaults:
        return None
    defaults.sort(key=lambda sc: (sc.get("metadata") or {}).get("name") or "")
    # RFC 3339 timestamps in UTC sort as text; a stable sort keeps names ascending on ties
    defaults.sort(
        key=lambda sc: (sc.get("metadata") or {}).get("creationTimestamp") or "", reverse=True
    )
    return defaults[0]


def claim_has_class(claim: Obj) -> bool:
    """``PersistentVolumeClaimHasClass``: the beta annotation or a non-nil spec field."""
    if ANN_BETA_STORAGE_CLASS in _annotations(claim):
        return True
    return (claim.get("spec") or {}).get("storageClassName") is not None


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
