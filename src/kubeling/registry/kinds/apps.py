"""apps/v1: Deployment, ReplicaSet, StatefulSet and ControllerRevision.

All three workloads default and check their pod template with the shared rules in
``kinds.pods``; StatefulSets, like upstream, check only the template's metadata and
restartPolicy (their volumeMounts may name claim templates, which a pod-spec check would
refuse). ``spec.selector`` is immutable in apps/v1 for all three.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, Final

from kubeling.machinery import field as f
from kubeling.machinery.field import FieldError, Path
from kubeling.machinery.objects import deep_copy
from kubeling.machinery.types import Obj
from kubeling.registry.kinds.base import PrintedStrategy, sub
from kubeling.registry.kinds.pods import default_pod_template, validate_pod_template
from kubeling.registry.kinds.storage import default_claim
from kubeling.registry.validation import (
    go_string_map,
    selector_matches,
    validate_immutable,
    validate_label_selector,
    validate_nonnegative,
)

SELECTOR_MISMATCH: Final = "`selector` does not match template `labels`"
STATEFULSET_UPDATE_FORBIDDEN: Final = (
    "updates to statefulset spec for fields other than 'replicas', 'ordinals', 'template', "
    "'updateStrategy', 'revisionHistoryLimit', 'persistentVolumeClaimRetentionPolicy' and "
    "'minReadySeconds' are forbidden"
)


def _validate_selector(spec: dict[str, Any], path: Path, *, kind: str) -> list[FieldError]:
    selector = spec.get("selector")
    sp = path.child("selector")
    if selector is None:
        return [f.required(sp)]
    errs = validate_label_selector(selector, sp)
    if not selector.get("matchLabels") and not selector.get("matchExpressions"):
        errs.append(f.invalid(sp, selector, f"empty selector is invalid for {kind}"))
    return errs


def _validate_template(
    spec: dict[str, Any], path: Path, *, spec_rules: bool, owner: str = "ReplicaSet"
) -> list[FieldError]:
    template = spec.get("template")
    tp = path.child("template")
    if template is None:
        return [f.required(tp)]
    errs: list[FieldError] = []
    selector = spec.get("selector") or {}
    labels = (template.get("metadata") or {}).get("labels")
    non_empty = bool(selector.get("matchLabels") or selector.get("matchExpressions"))
    if non_empty and not selector_matches(selector, labels or {}):
        errs.append(
            f.invalid(tp.child("metadata", "labels"), go_string_map(labels), SELECTOR_MISMATCH)
        )
    errs.extend(validate_pod_template(template, tp, spec_rules=spec_rules))
    restart = (template.get("spec") or {}).get("restartPolicy", "")
    if restart != "Always":
        errs.append(f.not_supported(tp.child("spec", "restartPolicy"), restart, ("Always",)))
    if (template.get("spec") or {}).get("activeDeadlineSeconds") is not None:
        errs.append(
            f.forbidden(
                tp.child("spec", "activeDeadlineSeconds"),
                f"activeDeadlineSeconds in {owner} is not Supported",
            )
        )
    return errs


def _nonneg(spec: dict[str, Any], path: Path, *keys: str) -> list[FieldError]:
    errs: list[FieldError] = []
    for key in keys:
        errs.extend(validate_nonnegative(spec.get(key), path.child(key)))
    return errs


def _selector_immutable(new: Obj, old: Obj) -> list[FieldError]:
    return validate_immutable(
        (new.get("spec") or {}).get("selector"),
        (old.get("spec") or {}).get("selector"),
        Path("spec.selector"),
    )


@dataclass(kw_only=True)
class _WorkloadStrategy(PrintedStrategy):
    status_subresource: ClassVar[bool] = True

    def prepare_for_create(self, obj: Obj) -> None:
        obj.pop("status", None)


# -- Deployment ------------------------------------------------------------------------------


def _is_zero_int_or_percent(value: Any) -> bool:
    return value in (0, "0", "0%")


@dataclass(kw_only=True)
class DeploymentStrategy(_WorkloadStrategy):
    def prepare_for_status_update(self, new: Obj, old: Obj) -> None:
        """upstream ``deploymentStatusStrategy``: deployments/status keeps the old labels
        (annotations may change there, as for every other kind)."""
        nm, om = sub(new, "metadata"), old.get("metadata") or {}
        if "labels" in om:
            nm["labels"] = deep_copy(om["labels"])
        else:
            nm.pop("labels", None)

    def default(self, obj: Obj) -> None:
        spec = sub(obj, "spec")
        spec.setdefault("replicas", 1)
        strategy = sub(spec, "strategy")
        strategy.setdefault("type", "RollingUpdate")
        if strategy["type"] == "RollingUpdate":
            rolling = sub(strategy, "rollingUpdate")
            rolling.setdefault("maxUnavailable", "25%")
            rolling.setdefault("maxSurge", "25%")
        spec.setdefault("revisionHistoryLimit", 10)
        spec.setdefault("progressDeadlineSeconds", 600)
        default_pod_template(sub(spec, "template"))

    def validate(self, obj: Obj) -> list[FieldError]:
        spec = obj.get("spec") or {}
        sp = Path("spec")
        errs = _nonneg(spec, sp, "replicas")
        errs.extend(_validate_selector(spec, sp, kind="deployment"))
        errs.extend(_validate_template(spec, sp, spec_rules=True))
        strategy = spec.get("strategy") or {}
        stype = strategy.get("type", "")
        stp = sp.child("strategy")
        if stype not in ("Recreate", "RollingUpdate"):
            errs.append(f.not_supported(stp, stype, ("Recreate", "RollingUpdate")))
        rolling = strategy.get("rollingUpdate")
        if stype == "Recreate" and rolling is not None:
            errs.append(
                f.forbidden(
                    stp.child("rollingUpdate"),
                    "may not be specified when strategy `type` is 'Recreate'",
                )
            )
        if (
            stype == "RollingUpdate"
            and isinstance(rolling, dict)
            and _is_zero_int_or_percent(rolling.get("maxUnavailable"))
            and _is_zero_int_or_percent(rolling.get("maxSurge"))
        ):
            errs.append(
                f.invalid(
                    stp.child("rollingUpdate", "maxUnavailable"),
                    rolling.get("maxUnavailable"),
                    "may not be 0 when `maxSurge` is 0",
                )
            )
        errs.extend(_nonneg(spec, sp, "minReadySeconds", "revisionHistoryLimit"))
        deadline = spec.get("progressDeadlineSeconds")
        if deadline is not None:
            errs.extend(validate_nonnegative(deadline, sp.child("progressDeadlineSeconds")))
            if isinstance(deadline, int) and deadline <= (spec.get("minReadySeconds") or 0):
                errs.append(
                    f.invalid(
                        sp.child("progressDeadlineSeconds"),
                        deadline,
                        "must be greater than minReadySeconds",
                    )
                )
        return errs

    def validate_update(self, new: Obj, old: Obj) -> list[FieldError]:
        return self.validate(new) + _selector_immutable(new, old)


# -- ReplicaSet ------------------------------------------------------------------------------


@dataclass(kw_only=True)
class ReplicaSetStrategy(_WorkloadStrategy):
    field_selector_labels: ClassVar[tuple[str, ...]] = ("status.replicas",)

    def field_labels(self, obj: Obj) -> dict[str, str]:
        return {"status.replicas": str((obj.get("status") or {}).get("replicas", 0))}

    def default(self, obj: Obj) -> None:
        spec = sub(obj, "spec")
        spec.setdefault("replicas", 1)
        default_pod_template(sub(spec, "template"))

    def validate(self, obj: Obj) -> list[FieldError]:
        spec = obj.get("spec") or {}
        sp = Path("spec")
        errs = _nonneg(spec, sp, "replicas", "minReadySeconds")
        # upstream's ReplicaSet text says "deployment" too
        errs.extend(_validate_selector(spec, sp, kind="deployment"))
        errs.extend(_validate_template(spec, sp, spec_rules=True))
        return errs

    def validate_update(self, new: Obj, old: Obj) -> list[FieldError]:
        return self.validate(new) + _selector_immutable(new, old)


# -- ReplicationController -------------------------------------------------------------------


@dataclass(kw_only=True)
class ReplicationControllerStrategy(_WorkloadStrategy):
    """core/v1 ReplicationController: served (defaults, validation, Table, status and scale)
    so that clients that walk every workload kind (``kubectl cluster-info dump``, ``get all``)
    work; kubeling runs no replication manager, so an RC's pods are never created: use a
    Deployment or ReplicaSet. Upstream's rules: the selector is a plain label map, defaulted
    from the template's labels (as are the RC's own labels), and it may change."""

    field_selector_labels: ClassVar[tuple[str, ...]] = ("status.replicas",)

    def field_labels(self, obj: Obj) -> dict[str, str]:
        return {"status.replicas": str((obj.get("status") or {}).get("replicas", 0))}

    def default(self, obj: Obj) -> None:
        # SetDefaults_ReplicationController
        spec = sub(obj, "spec")
        template = spec.get("template")
        labels = (template.get("metadata") or {}).get("labels") if template else None
        if labels is not None:
            if not spec.get("selector"):
                spec["selector"] = dict(labels)
            meta = sub(obj, "metadata")
            if not meta.get("labels"):
                meta["labels"] = dict(labels)
        spec.setdefault("replicas", 1)
        if template is not None:
            default_pod_template(template)

    def prepare_for_create(self, obj: Obj) -> None:
        obj["status"] = {"replicas": 0}

    def validate(self, obj: Obj) -> list[FieldError]:
        spec = obj.get("spec") or {}
        sp = Path("spec")
        errs = _nonneg(spec, sp, "minReadySeconds")
        selector = spec.get("selector") or {}
        if not selector:
            errs.append(f.required(sp.child("selector")))
        errs.extend(_nonneg(spec, sp, "replicas"))
        template = spec.get("template")
        tp = sp.child("template")
        if template is None:
            errs.append(f.required(tp))
            return errs
        labels = (template.get("metadata") or {}).get("labels")
        if selector and not selector_matches({"matchLabels": selector}, labels or {}):
            errs.append(
                f.invalid(tp.child("metadata", "labels"), go_string_map(labels), SELECTOR_MISMATCH)
            )
        errs.extend(validate_pod_template(template, tp, spec_rules=True))
        tspec = template.get("spec") or {}
        restart = tspec.get("restartPolicy", "")
        if restart != "Always":
            errs.append(f.not_supported(tp.child("spec", "restartPolicy"), restart, ("Always",)))
        if tspec.get("activeDeadlineSeconds") is not None:
            errs.append(
                f.forbidden(
                    tp.child("spec", "activeDeadlineSeconds"),
                    "activeDeadlineSeconds in ReplicationController is not Supported",
                )
            )
        return errs


# -- DaemonSet -------------------------------------------------------------------------------


@dataclass(kw_only=True)
class DaemonSetStrategy(_WorkloadStrategy):
    """apps/v1 DaemonSet: served (defaults, validation, Table, status) so that clients that
    walk every workload kind (``kubectl cluster-info dump``, ``get all``) work; kubeling runs
    no daemon set controller, so a DaemonSet's pods are never created."""

    def default(self, obj: Obj) -> None:
        # SetDefaults_DaemonSet (apps/v1)
        spec = sub(obj, "spec")
        strategy = sub(spec, "updateStrategy")
        strategy.setdefault("type", "RollingUpdate")
        if strategy["type"] == "RollingUpdate":
            rolling = sub(strategy, "rollingUpdate")
            rolling.setdefault("maxUnavailable", 1)
            rolling.setdefault("maxSurge", 0)
        spec.setdefault("revisionHistoryLimit", 10)
        default_pod_template(sub(spec, "template"))

    def prepare_for_create(self, obj: Obj) -> None:
        obj["status"] = {
            "currentNumberScheduled": 0,
            "numberMisscheduled": 0,
            "desiredNumberScheduled": 0,
            "numberReady": 0,
        }

    def validate(self, obj: Obj) -> list[FieldError]:
        spec = obj.get("spec") or {}
        sp = Path("spec")
        errs = _validate_selector(spec, sp, kind="daemonset")
        errs.extend(_validate_template(spec, sp, spec_rules=True, owner="DaemonSet"))
        errs.extend(_nonneg(spec, sp, "minReadySeconds"))
        strategy = spec.get("updateStrategy") or {}
        stype = strategy.get("type", "")
        stp = sp.child("updateStrategy")
        if stype == "RollingUpdate":
            rolling = strategy.get("rollingUpdate")
            rp = stp.child("rollingUpdate")
            if not isinstance(rolling, dict):
                errs.append(f.required(rp))
            else:
                # TODO(#2): the int-or-percent and 100% checks of ValidateRollingUpdateDaemonSet
                # are not made; only the exactly-one-non-zero rule is.
                unavailable = not _is_zero_int_or_percent(rolling.get("maxUnavailable", 0))
                surge = not _is_zero_int_or_percent(rolling.get("maxSurge", 0))
                if unavailable and surge:
                    errs.append(
                        f.invalid(
                            rp.child("maxSurge"),
                            rolling.get("maxSurge"),
                            "may not be set when maxUnavailable is non-zero",
                        )
                    )
                elif not unavailable and not surge:
                    errs.append(
                        f.required(rp.child("maxUnavailable"), "cannot be 0 when maxSurge is 0")
                    )
        elif stype != "OnDelete":
            # TODO(#2): upstream quotes the whole strategy struct (%#v) as the value.
            errs.append(f.not_supported(stp, stype, ("RollingUpdate", "OnDelete")))
        errs.extend(_nonneg(spec, sp, "revisionHistoryLimit"))
        return errs

    def validate_update(self, new: Obj, old: Obj) -> list[FieldError]:
        return self.validate(new) + _selector_immutable(new, old)


# -- StatefulSet -----------------------------------------------------------------------------

POD_MANAGEMENT_POLICIES: Final = ("OrderedReady", "Parallel")
RETENTION_POLICIES: Final = ("Delete", "Retain")
_STS_MUTABLE: Final = (
    "replicas",
    "template",
    "updateStrategy",
    "minReadySeconds",
    "ordinals",
    "revisionHistoryLimit",
    "persistentVolumeClaimRetentionPolicy",
)


@dataclass(kw_only=True)
class StatefulSetStrategy(_WorkloadStrategy):
    def default(self, obj: Obj) -> None:
        spec = sub(obj, "spec")
        spec.setdefault("replicas", 1)
        spec.setdefault("podManagementPolicy", "OrderedReady")
        strategy = sub(spec, "updateStrategy")
        strategy.setdefault("type", "RollingUpdate")
        if strategy["type"] == "RollingUpdate":
            sub(strategy, "rollingUpdate").setdefault("partition", 0)
        spec.setdefault("revisionHistoryLimit", 10)
        retention = sub(spec, "persistentVolumeClaimRetentionPolicy")
        retention.setdefault("whenDeleted", "Retain")
        retention.setdefault("whenScaled", "Retain")
        default_pod_template(sub(spec, "template"))
        for claim in spec.get("volumeClaimTemplates") or []:
            if isinstance(claim, dict):
                default_claim(claim)

    def validate(self, obj: Obj) -> list[FieldError]:
        spec = obj.get("spec") or {}
        sp = Path("spec")
        errs: list[FieldError] = []
        policy = spec.get("podManagementPolicy", "")
        if not policy:
            errs.append(f.required(sp.child("podManagementPolicy")))
        elif policy not in POD_MANAGEMENT_POLICIES:
            errs.append(
                f.invalid(
                    sp.child("podManagementPolicy"), policy, "must be 'OrderedReady' or 'Parallel'"
                )
            )
        strategy = spec.get("updateStrategy") or {}
        up = sp.child("updateStrategy")
        stype = strategy.get("type", "")
        rolling = strategy.get("rollingUpdate")
        if not stype:
            errs.append(f.required(up))
        elif stype == "OnDelete":
            if rolling is not None:
                errs.append(
                    f.invalid(
                        up.child("rollingUpdate"),
                        rolling,
                        "only allowed for updateStrategy 'RollingUpdate'",
                    )
                )
        elif stype == "RollingUpdate":
            if isinstance(rolling, dict):
                errs.extend(
                    validate_nonnegative(
                        rolling.get("partition"), up.child("rollingUpdate", "partition")
                    )
                )
        else:
            errs.append(f.invalid(up, strategy, "must be 'RollingUpdate' or 'OnDelete'"))
        retention = spec.get("persistentVolumeClaimRetentionPolicy") or {}
        rp = sp.child("persistentVolumeClaimRetentionPolicy")
        for key in ("whenDeleted", "whenScaled"):
            value = retention.get(key, "")
            if value not in RETENTION_POLICIES:
                errs.append(f.not_supported(rp.child(key), value, RETENTION_POLICIES))
        errs.extend(_nonneg(spec, sp, "replicas", "minReadySeconds"))
        ordinals = spec.get("ordinals") or {}
        errs.extend(validate_nonnegative(ordinals.get("start"), sp.child("ordinals", "start")))
        errs.extend(_validate_selector(spec, sp, kind="statefulset"))
        errs.extend(_validate_template(spec, sp, spec_rules=False, owner="StatefulSet"))
        return errs

    def validate_update(self, new: Obj, old: Obj) -> list[FieldError]:
        errs = self.validate(new)
        nspec = deep_copy(new.get("spec") or {})
        ospec = old.get("spec") or {}
        for key in _STS_MUTABLE:
            if key in ospec:
                nspec[key] = ospec[key]
            else:
                nspec.pop(key, None)
        if nspec != ospec:
            errs.append(f.forbidden(Path("spec"), STATEFULSET_UPDATE_FORBIDDEN))
        return errs


# -- ControllerRevision ----------------------------------------------------------------------


@dataclass(kw_only=True)
class ControllerRevisionStrategy(PrintedStrategy):
    generation_tracks: ClassVar[tuple[str, ...]] = ()

    def validate(self, obj: Obj) -> list[FieldError]:
        errs: list[FieldError] = []
        if obj.get("data") is None:
            errs.append(f.required(Path("data"), "data is mandatory"))
        errs.extend(validate_nonnegative(obj.get("revision"), Path("revision")))
        return errs

    def validate_update(self, new: Obj, old: Obj) -> list[FieldError]:
        errs = self.validate(new)
        if new.get("data") != old.get("data"):
            errs.append(f.invalid(Path("data"), new.get("data"), "field is immutable"))
        return errs
