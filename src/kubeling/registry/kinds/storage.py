"""PersistentVolume, PersistentVolumeClaim and StorageClass.

Claim and volume specs are also validated inside StatefulSet ``volumeClaimTemplates``, so the
spec rules are plain functions (``default_claim``, ``validate_claim_spec``) the apps kinds
reuse. Update rules follow ``ValidatePersistentVolumeClaimUpdate`` with
RecoverVolumeExpansionFailure off: a bound claim may only grow ``resources.requests``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, Final

from kubeling.machinery import field as f
from kubeling.machinery.field import FieldError, Path
from kubeling.machinery.objects import deep_copy
from kubeling.machinery.types import Obj
from kubeling.registry.kinds.base import PrintedStrategy, sub
from kubeling.registry.kinds.pods import validate_volume_sources
from kubeling.registry.validation import (
    GoLiteral,
    is_dns1123_subdomain,
    is_qualified_name,
    quantity,
    too_long_no_value,
    validate_immutable,
    validate_label_selector,
    validate_positive_quantity,
    validate_quantity,
)

ACCESS_MODES: Final = ("ReadOnlyMany", "ReadWriteMany", "ReadWriteOnce", "ReadWriteOncePod")
VOLUME_MODES: Final = ("Block", "Filesystem")
RECLAIM_POLICIES: Final = ("Delete", "Recycle", "Retain")

PV_SOURCES: Final = (
    "hostPath",
    "gcePersistentDisk",
    "awsElasticBlockStore",
    "glusterfs",
    "flocker",
    "nfs",
    "rbd",
    "quobyte",
    "cephfs",
    "iscsi",
    "cinder",
    "fc",
    "flexVolume",
    "azureFile",
    "vsphereVolume",
    "photonPersistentDisk",
    "portworxVolume",
    "azureDisk",
    "scaleIO",
    "local",
    "storageos",
    "csi",
)
"""PersistentVolumeSource fields in ``ValidatePersistentVolumeSpec``'s order."""

CLAIM_UPDATE_FORBIDDEN: Final = (
    "spec is immutable after creation except resources.requests and volumeAttributesClassName "
    "for bound claims"
)


def _validate_access_modes(
    modes: list[Any], path: Path, *, required_detail: str
) -> list[FieldError]:
    errs: list[FieldError] = []
    if not modes:
        errs.append(f.required(path, required_detail))
    for mode in modes:
        if mode not in ACCESS_MODES:
            errs.append(f.not_supported(path, mode, ACCESS_MODES))
    if "ReadWriteOncePod" in modes and len(modes) > 1:
        errs.append(f.forbidden(path, "may not use ReadWriteOncePod with other access modes"))
    return errs


def _validate_class_name(spec: dict[str, Any], path: Path) -> list[FieldError]:
    name = spec.get("storageClassName")
    if not name:
        return []
    return [f.invalid(path, name, m) for m in is_dns1123_subdomain(name)]


def _validate_volume_mode(spec: dict[str, Any], path: Path) -> list[FieldError]:
    mode = spec.get("volumeMode")
    if mode is not None and mode not in VOLUME_MODES:
        return [f.not_supported(path, mode, VOLUME_MODES)]
    return []


# -- PersistentVolumeClaim -------------------------------------------------------------------


def default_claim(claim: dict[str, Any]) -> None:
    """``SetDefaults_PersistentVolumeClaim`` (also applied to StatefulSet claim templates)."""
    sub(claim, "spec").setdefault("volumeMode", "Filesystem")
    status = sub(claim, "status")
    if not status.get("phase"):
        status["phase"] = "Pending"


def validate_claim_spec(spec: dict[str, Any], path: Path) -> list[FieldError]:
    """``ValidatePersistentVolumeClaimSpec``."""
    errs = _validate_access_modes(
        spec.get("accessModes") or [],
        path.child("accessModes"),
        required_detail="at least 1 access mode is required",
    )
    errs.extend(validate_label_selector(spec.get("selector"), path.child("selector")))
    requests = ((spec.get("resources") or {}).get("requests")) or {}
    storage_path = path.child("resources").key("storage")
    if "storage" not in requests:
        errs.append(f.required(storage_path))
    else:
        # upstream checks "greater than zero" first: -1Gi is reported as not positive
        qty_errs = validate_positive_quantity(requests["storage"], storage_path)
        errs.extend(qty_errs or validate_quantity(requests["storage"], storage_path))
    errs.extend(_validate_class_name(spec, path.child("storageClassName")))
    errs.extend(_validate_volume_mode(spec, path.child("volumeMode")))
    return errs


def _canonical_resources(spec: dict[str, Any]) -> None:
    """Quantities compare semantically upstream (``1Gi`` equals ``1024Mi``)."""
    resources = spec.get("resources")
    if not isinstance(resources, dict):
        return
    for part in ("requests", "limits"):
        values = resources.get(part)
        if isinstance(values, dict):
            for name, value in values.items():
                q = quantity(value)
                if q is not None:
                    values[name] = q.canonical()


@dataclass(kw_only=True)
class PersistentVolumeClaimStrategy(PrintedStrategy):
    status_subresource: ClassVar[bool] = True
    generation_tracks: ClassVar[tuple[str, ...]] = ()

    def default(self, obj: Obj) -> None:
        default_claim(obj)

    def prepare_for_create(self, obj: Obj) -> None:
        obj["status"] = {"phase": "Pending"}

    def validate(self, obj: Obj) -> list[FieldError]:
        return validate_claim_spec(obj.get("spec") or {}, Path("spec"))

    def validate_update(self, new: Obj, old: Obj) -> list[FieldError]:
        errs = self.validate(new)
        nspec = deep_copy(new.get("spec") or {})
        ospec = deep_copy(old.get("spec") or {})
        if not ospec.get("volumeName"):
            # the binder may set volumeName once
            ospec["volumeName"] = nspec.get("volumeName")
        # RetroactiveDefaultStorageClass: a nil class may be set once
        if ospec.get("storageClassName") is None:
            ospec["storageClassName"] = nspec.get("storageClassName")
        old_req = (ospec.get("resources") or {}).get("requests") or {}
        new_req = (nspec.get("resources") or {}).get("requests") or {}
        if (new.get("status") or {}).get("phase") == "Bound" and "requests" in (
            nspec.get("resources") or {}
        ):
            if "storage" in old_req:
                new_req["storage"] = old_req["storage"]
            else:
                new_req.pop("storage", None)
        _canonical_resources(nspec)
        _canonical_resources(ospec)
        clean_new = {k: v for k, v in nspec.items() if v is not None}
        clean_old = {k: v for k, v in ospec.items() if v is not None}
        if clean_new != clean_old:
            errs.append(f.forbidden(Path("spec"), CLAIM_UPDATE_FORBIDDEN))
        old_size = quantity(
            (((old.get("spec") or {}).get("resources") or {}).get("requests") or {}).get("storage")
        )
        new_size = quantity(
            (((new.get("spec") or {}).get("resources") or {}).get("requests") or {}).get("storage")
        )
        capacity = quantity(((old.get("status") or {}).get("capacity") or {}).get("storage"))
        # RecoverVolumeExpansionFailure (beta, on by default since 1.32): a request may come
        # back down to recover from a failed expansion, but never to what the volume has.
        if (
            old_size is not None
            and new_size is not None
            and new_size < old_size
            and not new_size > (capacity if capacity is not None else 0)
        ):
            errs.append(
                f.forbidden(
                    Path("spec.resources.requests.storage"),
                    "field can not be less than status.capacity",
                )
            )
        errs.extend(
            validate_immutable(
                (new.get("spec") or {}).get("volumeMode"),
                (old.get("spec") or {}).get("volumeMode"),
                Path("volumeMode"),
            )
        )
        return errs


# -- PersistentVolume ------------------------------------------------------------------------


def default_volume(pv: dict[str, Any]) -> None:
    spec = sub(pv, "spec")
    spec.setdefault("persistentVolumeReclaimPolicy", "Retain")
    spec.setdefault("volumeMode", "Filesystem")
    if isinstance(spec.get("hostPath"), dict):
        spec["hostPath"].setdefault("type", "")
    status = sub(pv, "status")
    if not status.get("phase"):
        status["phase"] = "Pending"


def _validate_local(spec: dict[str, Any], path: Path) -> list[FieldError]:
    local = spec.get("local")
    if not isinstance(local, dict):
        return []
    errs: list[FieldError] = []
    lp = local.get("path", "")
    if not lp:
        errs.append(f.required(path.child("local", "path")))
    elif ".." in lp.split("/"):
        errs.append(f.invalid(path.child("local", "path"), lp, "must not contain '..'"))
    if not spec.get("nodeAffinity"):
        errs.append(f.required(path.child("nodeAffinity"), "Local volume requires node affinity"))
    return errs


def validate_volume_spec(spec: dict[str, Any], path: Path) -> list[FieldError]:
    """``ValidatePersistentVolumeSpec``."""
    errs = _validate_access_modes(
        spec.get("accessModes") or [], path.child("accessModes"), required_detail=""
    )
    capacity = spec.get("capacity")
    cp = path.child("capacity")
    if not capacity:
        errs.append(f.required(cp))
    if not capacity or "storage" not in capacity or len(capacity) > 1:
        shown = capacity if capacity else GoLiteral("core.ResourceList(nil)")
        errs.append(f.not_supported(cp, shown, ("storage",)))
    for name, value in sorted((capacity or {}).items()):
        qty_errs = validate_quantity(value, cp.key(name))
        errs.extend(qty_errs or validate_positive_quantity(value, cp.key(name)))
    policy = spec.get("persistentVolumeReclaimPolicy", "")
    if policy and policy not in RECLAIM_POLICIES:
        errs.append(
            f.not_supported(path.child("persistentVolumeReclaimPolicy"), policy, RECLAIM_POLICIES)
        )
    errs.extend(_validate_class_name(spec, path.child("storageClassName")))
    errs.extend(_validate_volume_mode(spec, path.child("volumeMode")))
    source_errs = validate_volume_sources(spec, path, sources=PV_SOURCES)
    errs.extend(e for e in source_errs if not e.field.startswith(str(path.child("local"))))
    errs.extend(_validate_local(spec, path))
    host_path = spec.get("hostPath")
    if policy == "Recycle" and isinstance(host_path, dict) and host_path.get("path") == "/":
        errs.append(
            f.forbidden(
                path.child("persistentVolumeReclaimPolicy"),
                "may not be 'recycle' for a hostPath mount of '/'",
            )
        )
    return errs


@dataclass(kw_only=True)
class PersistentVolumeStrategy(PrintedStrategy):
    status_subresource: ClassVar[bool] = True
    generation_tracks: ClassVar[tuple[str, ...]] = ()

    def default(self, obj: Obj) -> None:
        default_volume(obj)

    def prepare_for_create(self, obj: Obj) -> None:
        obj["status"] = {"phase": "Pending"}

    def validate(self, obj: Obj) -> list[FieldError]:
        return validate_volume_spec(obj.get("spec") or {}, Path("spec"))

    def validate_update(self, new: Obj, old: Obj) -> list[FieldError]:
        errs = self.validate(new)
        nspec, ospec = new.get("spec") or {}, old.get("spec") or {}
        new_source = {k: nspec.get(k) for k in PV_SOURCES if nspec.get(k) is not None}
        old_source = {k: ospec.get(k) for k in PV_SOURCES if ospec.get(k) is not None}
        if new_source != old_source:
            errs.append(
                f.forbidden(
                    Path("spec.persistentvolumesource"),
                    "spec.persistentvolumesource is immutable after creation",
                )
            )
        errs.extend(
            validate_immutable(nspec.get("volumeMode"), ospec.get("volumeMode"), Path("volumeMode"))
        )
        if ospec.get("nodeAffinity") is not None:
            errs.extend(
                validate_immutable(
                    nspec.get("nodeAffinity"), ospec.get("nodeAffinity"), Path("nodeAffinity")
                )
            )
        return errs


# -- StorageClass ----------------------------------------------------------------------------

MAX_PROVISIONER_PARAMETERS: Final = 512
MAX_PROVISIONER_PARAMETER_SIZE: Final = 256 * 1024
BINDING_MODES: Final = ("Immediate", "WaitForFirstConsumer")


@dataclass(kw_only=True)
class StorageClassStrategy(PrintedStrategy):
    generation_tracks: ClassVar[tuple[str, ...]] = ()

    def default(self, obj: Obj) -> None:
        if not obj.get("reclaimPolicy"):
            obj["reclaimPolicy"] = "Delete"
        if not obj.get("volumeBindingMode"):
            obj["volumeBindingMode"] = "Immediate"

    def validate(self, obj: Obj) -> list[FieldError]:
        errs: list[FieldError] = []
        provisioner = obj.get("provisioner", "")
        if not provisioner:
            errs.append(f.required(Path("provisioner")))
        else:
            errs.extend(
                f.invalid(Path("provisioner"), provisioner, m)
                for m in is_qualified_name(provisioner.lower())
            )
        params = obj.get("parameters") or {}
        size = sum(len(k) + len(str(v)) for k, v in params.items())
        if len(params) > MAX_PROVISIONER_PARAMETERS:
            errs.append(f.too_many(Path("parameters"), len(params), MAX_PROVISIONER_PARAMETERS))
        if size > MAX_PROVISIONER_PARAMETER_SIZE:
            errs.append(too_long_no_value(Path("parameters"), MAX_PROVISIONER_PARAMETER_SIZE))
        policy = obj.get("reclaimPolicy", "")
        if policy not in ("Delete", "Retain"):
            errs.append(f.not_supported(Path("reclaimPolicy"), policy, ("Delete", "Retain")))
        mode = obj.get("volumeBindingMode")
        if not mode:
            errs.append(f.required(Path("volumeBindingMode")))
        elif mode not in BINDING_MODES:
            errs.append(f.not_supported(Path("volumeBindingMode"), mode, BINDING_MODES))
        return errs

    def validate_update(self, new: Obj, old: Obj) -> list[FieldError]:
        errs = self.validate(new)
        if (new.get("parameters") or {}) != (old.get("parameters") or {}):
            errs.append(f.forbidden(Path("parameters"), "updates to parameters are forbidden."))
        if new.get("provisioner") != old.get("provisioner"):
            errs.append(f.forbidden(Path("provisioner"), "updates to provisioner are forbidden."))
        if new.get("reclaimPolicy") != old.get("reclaimPolicy"):
            errs.append(
                f.forbidden(Path("reclaimPolicy"), "updates to reclaimPolicy are forbidden.")
            )
        errs.extend(
            validate_immutable(
                new.get("volumeBindingMode"),
                old.get("volumeBindingMode"),
                Path("volumeBindingMode"),
            )
        )
        return errs
