"""What upstream keeps in ``stateful_set_utils.go``: identities, pod state, claims, revisions.

Pure functions over JSON-shaped StatefulSets, pods and claims, so that the sync in
``controller`` reads as upstream's does and each rule can be tested alone: how a pod's name
maps to its set and ordinal, which labels and volumes a member carries, which revision a
new pod is built from, which ownerReferences express a claim retention policy, and how the
status is counted. Nothing here talks to the API.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

from kubeling.controllers import history
from kubeling.machinery import objects as o
from kubeling.machinery.errors import StatusError
from kubeling.machinery.resources import STATEFULSETS
from kubeling.machinery.types import Obj

COMPONENT: Final = "statefulset-controller"
POD_NAME_LABEL: Final = "statefulset.kubernetes.io/pod-name"
POD_INDEX_LABEL: Final = "apps.kubernetes.io/pod-index"
REVISION_LABEL: Final = history.CONTROLLER_REVISION_HASH_LABEL
SET_API_VERSION: Final = STATEFULSETS.api_version
SET_KIND: Final = STATEFULSETS.kind

RETAIN: Final = "Retain"
DELETE: Final = "Delete"

_POD_NAME = re.compile(r"^(.*)-([0-9]+)$")
_INT32_MAX: Final = 2**31 - 1


class SyncError(StatusError):
    """Several API answers from one sync, joined as upstream's ``utilerrors.Aggregate``
    prints them (one error alone, else ``[e1, e2]``)."""

    @classmethod
    def join(cls, errors: Sequence[str]) -> SyncError:
        text = errors[0] if len(errors) == 1 else "[" + ", ".join(errors) + "]"
        return cls(text)


# -- names and ordinals ---------------------------------------------------------------------


def parent_and_ordinal(pod_name: str) -> tuple[str, int]:
    """``getParentNameAndOrdinal``: ``("web", 2)`` for ``web-2``; ``("", -1)`` otherwise."""
    m = _POD_NAME.match(pod_name)
    if m is None:
        return "", -1
    digits = m.group(2)
    # strconv.ParseInt(.., 10, 32): out-of-range ordinals are no ordinal at all.
    if len(digits) > 10 or int(digits) > _INT32_MAX:
        return m.group(1), -1
    return m.group(1), int(digits)


def ordinal_of(pod: Obj) -> int:
    return parent_and_ordinal(o.name(pod))[1]


def is_member_of(sts: Obj, pod: Obj) -> bool:
    return parent_and_ordinal(o.name(pod))[0] == o.name(sts)


def pod_name(sts: Obj, ordinal: int) -> str:
    return f"{o.name(sts)}-{ordinal}"


def claim_name(template_name: str, set_name: str, ordinal: int) -> str:
    """``<template>-<set>-<ordinal>``, the name a set's pod finds its claim by."""
    return f"{template_name}-{set_name}-{ordinal}"


def spec_of(sts: Obj) -> dict[str, Any]:
    spec = sts.get("spec")
    return spec if isinstance(spec, dict) else {}


def spec_replicas(sts: Obj) -> int:
    value = spec_of(sts).get("replicas")
    return 1 if value is None else int(value)


def start_ordinal(sts: Obj) -> int:
    return int((spec_of(sts).get("ordinals") or {}).get("start") or 0)


def end_ordinal(sts: Obj) -> int:
    """The last ordinal in range (inclusive); ``start - 1`` when scaled to zero."""
    return start_ordinal(sts) + spec_replicas(sts) - 1


def in_ordinal_range(pod: Obj, sts: Obj) -> bool:
    ordinal = ordinal_of(pod)
    return start_ordinal(sts) <= ordinal <= end_ordinal(sts)


def claim_templates(sts: Obj) -> list[Obj]:
    return [t for t in spec_of(sts).get("volumeClaimTemplates") or [] if isinstance(t, dict)]


def retention_policy(sts: Obj) -> tuple[str, str]:
    """``(whenScaled, whenDeleted)``, Retain where unset."""
    policy = spec_of(sts).get("persistentVolumeClaimRetentionPolicy") or {}
    return policy.get("whenScaled") or RETAIN, policy.get("whenDeleted") or RETAIN


def allows_burst(sts: Obj) -> bool:
    return spec_of(sts).get("podManagementPolicy") == "Parallel"


def update_strategy(sts: Obj) -> tuple[str, dict[str, Any] | None]:
    strategy = spec_of(sts).get("updateStrategy") or {}
    rolling = strategy.get("rollingUpdate")
    return strategy.get("type") or "RollingUpdate", rolling if isinstance(rolling, dict) else None


def max_unavailable_of(sts: Obj) -> int:
    """``getStatefulSetMaxUnavailable``: ``rollingUpdate.maxUnavailable`` (default 1) as a
    number of pods; percentages of ``replicas`` round down, and the result is at least 1."""
    _, rolling = update_strategy(sts)
    value = (rolling or {}).get("maxUnavailable", 1)
    if isinstance(value, str) and value.endswith("%"):
        try:
            number = int(value[:-1]) * spec_replicas(sts) // 100
        except ValueError:
            number = 1
    else:
        try:
            number = int(value)
        except (TypeError, ValueError):
            number = 1
    return max(number, 1)


def partition_of(sts: Obj) -> int:
    _, rolling = update_strategy(sts)
    return int((rolling or {}).get("partition") or 0)


# -- pod state ------------------------------------------------------------------------------


def phase(pod: Obj) -> str:
    return str((pod.get("status") or {}).get("phase") or "")


def is_created(pod: Obj) -> bool:
    """A pod the API server holds (it sets ``phase: Pending`` on create)."""
    return phase(pod) != ""


def is_terminating(pod: Obj) -> bool:
    return o.deletion_timestamp(pod) is not None


def is_running_and_ready(pod: Obj) -> bool:
    return phase(pod) == "Running" and o.is_pod_ready(pod)


def is_available(pod: Obj, min_ready_seconds: int, now: datetime | None = None) -> bool:
    """``podutil.IsPodAvailable`` at ``now`` (the current time by default)."""
    return o.is_pod_available(
        pod, min_ready_seconds=min_ready_seconds, now=now or datetime.now(UTC)
    )


def is_healthy(pod: Obj) -> bool:
    return is_running_and_ready(pod) and not is_terminating(pod)


def pod_revision(pod: Obj) -> str:
    return o.labels(pod).get(REVISION_LABEL, "")


# -- building pods and claims ---------------------------------------------------------------


def controller_ref(sts: Obj) -> Obj:
    """``metav1.NewControllerRef(set, apps/v1 StatefulSet)``."""
    return {
        "apiVersion": SET_API_VERSION,
        "kind": SET_KIND,
        "name": o.name(sts),
        "uid": o.uid(sts),
        "controller": True,
        "blockOwnerDeletion": True,
    }


def claims_for(sts: Obj, ordinal: int) -> list[tuple[str, Obj]]:
    """``getPersistentVolumeClaims``: ``(template name, claim)`` in template order; each
    claim carries the template's labels overlaid with the selector's ``matchLabels``."""
    match_labels = (spec_of(sts).get("selector") or {}).get("matchLabels") or {}
    out: list[tuple[str, Obj]] = []
    for template in claim_templates(sts):
        claim = o.deep_copy(template)
        meta = o.ensure_meta(claim)
        template_name = str(meta.get("name") or "")
        meta["name"] = claim_name(template_name, o.name(sts), ordinal)
        meta["namespace"] = o.namespace(sts)
        labels = meta.get("labels")
        if isinstance(labels, dict):
            labels.update(match_labels)
        elif match_labels:
            meta["labels"] = dict(match_labels)
        claim["apiVersion"] = "v1"
        claim["kind"] = "PersistentVolumeClaim"
        claim.pop("status", None)
        out.append((template_name, claim))
    return out


def update_storage(sts: Obj, pod: Obj) -> None:
    """``updateStorage``: one claim volume per template, replacing same-named volumes."""
    spec = pod.setdefault("spec", {})
    claims = claims_for(sts, ordinal_of(pod))
    names = {template_name for template_name, _ in claims}
    volumes: list[Obj] = [
        {"name": template_name, "persistentVolumeClaim": {"claimName": o.name(claim)}}
        for template_name, claim in claims
    ]
    for volume in spec.get("volumes") or []:
        if volume.get("name") not in names:
            volumes.append(volume)
    if volumes:
        spec["volumes"] = volumes


def update_identity(sts: Obj, pod: Obj) -> None:
    """``updateIdentity``: name, namespace and the two identity labels."""
    ordinal = ordinal_of(pod)
    meta = o.ensure_meta(pod)
    meta["name"] = pod_name(sts, ordinal)
    meta["namespace"] = o.namespace(sts)
    labels = meta.get("labels")
    if not isinstance(labels, dict):
        labels = meta["labels"] = {}
    labels[POD_NAME_LABEL] = meta["name"]
    labels[POD_INDEX_LABEL] = str(ordinal)


def identity_matches(sts: Obj, pod: Obj) -> bool:
    """``identityMatches``. Like upstream it checks the pod-name label only; a lost
    pod-index label comes back with the next identity repair."""
    parent, ordinal = parent_and_ordinal(o.name(pod))
    return (
        ordinal >= 0
        and parent == o.name(sts)
        and o.name(pod) == pod_name(sts, ordinal)
        and o.namespace(pod) == o.namespace(sts)
        and o.labels(pod).get(POD_NAME_LABEL) == o.name(pod)
    )


def storage_matches(sts: Obj, pod: Obj) -> bool:
    ordinal = ordinal_of(pod)
    if ordinal < 0:
        return False
    volumes = {v.get("name"): v for v in (pod.get("spec") or {}).get("volumes") or []}
    for template in claim_templates(sts):
        template_name = o.name(template)
        source = (volumes.get(template_name) or {}).get("persistentVolumeClaim") or {}
        if source.get("claimName") != claim_name(template_name, o.name(sts), ordinal):
            return False
    return True


def new_pod(sts: Obj, ordinal: int) -> Obj:
    """``newStatefulSetPod``: the template with the set's identity and storage."""
    template = spec_of(sts).get("template") or {}
    tmeta = template.get("metadata") or {}
    meta: Obj = {
        "name": pod_name(sts, ordinal),
        "generateName": f"{o.name(sts)}-",
        "namespace": o.namespace(sts),
        "labels": dict(tmeta.get("labels") or {}),
        "ownerReferences": [controller_ref(sts)],
    }
    if tmeta.get("annotations"):
        meta["annotations"] = dict(tmeta["annotations"])
    if tmeta.get("finalizers"):
        meta["finalizers"] = list(tmeta["finalizers"])
    pod: Obj = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": meta,
        "spec": o.deep_copy(template.get("spec") or {}),
    }
    update_identity(sts, pod)
    # Set once at creation: a pod's hostname and subdomain are immutable afterwards.
    pod["spec"]["hostname"] = meta["name"]
    service = spec_of(sts).get("serviceName") or ""
    if service:
        pod["spec"]["subdomain"] = service
    else:
        pod["spec"].pop("subdomain", None)  # upstream assigns "" (omitted on the wire)
    update_storage(sts, pod)
    return pod


def new_versioned_pod(
    *,
    current_set: Obj,
    update_set: Obj,
    current_revision: str,
    update_revision: str,
    ordinal: int,
) -> Obj:
    """``newVersionedStatefulSetPod``: ordinals below the partition stay at the current
    revision; everything else is built from the update revision."""
    stype, rolling = update_strategy(current_set)
    start = start_ordinal(current_set)
    current_replicas = int((current_set.get("status") or {}).get("currentReplicas") or 0)
    if (stype == "RollingUpdate" and rolling is None and ordinal < start + current_replicas) or (
        rolling is not None and ordinal < start + int(rolling.get("partition") or 0)
    ):
        pod = new_pod(current_set, ordinal)
        o.labels(pod)[REVISION_LABEL] = current_revision
        return pod
    pod = new_pod(update_set, ordinal)
    o.labels(pod)[REVISION_LABEL] = update_revision
    return pod


# -- revisions ------------------------------------------------------------------------------


def revision_data(sts: Obj) -> Obj:
    """``getPatch``: a strategic merge patch that replaces the pod template."""
    template = o.deep_copy(spec_of(sts).get("template") or {})
    template["$patch"] = "replace"
    return {"spec": {"template": template}}


def new_revision(sts: Obj, *, number: int, collision_count: int) -> Obj:
    return history.new_controller_revision(
        sts,
        template_labels=((spec_of(sts).get("template") or {}).get("metadata") or {}).get("labels"),
        data=revision_data(sts),
        revision=number,
        collision_count=collision_count,
        annotations=o.annotations(sts),
    )


def apply_revision(sts: Obj, revision: Obj) -> Obj:
    """``ApplyRevision``: the set with the revision's template (its ``$patch: replace``)."""
    restored: Obj = o.deep_copy(sts)
    template = o.deep_copy(((revision.get("data") or {}).get("spec") or {}).get("template") or {})
    template.pop("$patch", None)
    restored.setdefault("spec", {})["template"] = template
    return restored


# -- claim ownership (persistentVolumeClaimRetentionPolicy) ---------------------------------


def _matches_ref(ref: Obj, obj: Obj, api_version: str, kind: str) -> bool:
    return (
        ref.get("apiVersion") == api_version
        and ref.get("kind") == kind
        and ref.get("name") == o.name(obj)
    )


def _matches_set(ref: Obj, sts: Obj) -> bool:
    return _matches_ref(ref, sts, SET_API_VERSION, SET_KIND)


def _matches_pod(ref: Obj, pod: Obj) -> bool:
    return _matches_ref(ref, pod, "v1", "Pod")


def has_owner_ref(target: Obj, owner: Obj) -> bool:
    owner_uid = o.uid(owner)
    return any(ref.get("uid") == owner_uid for ref in o.owner_references(target))


def has_stale_owner_ref(target: Obj, owner: Obj, *, pod: bool) -> bool:
    """A reference naming ``owner`` (same kind and name) but another uid."""
    for ref in o.owner_references(target):
        if _matches_pod(ref, owner) if pod else _matches_set(ref, owner):
            return ref.get("uid") != o.uid(owner)
    return False


def has_unexpected_controller(claim: Obj, sts: Obj, pod: Obj) -> bool:
    """Another controller (or a stale us) manages the claim; ignored under Retain/Retain."""
    if retention_policy(sts) == (RETAIN, RETAIN):
        return False
    for ref in o.owner_references(claim):
        if _matches_set(ref, sts):
            if ref.get("uid") != o.uid(sts):
                return True
            continue
        if _matches_pod(ref, pod):
            if ref.get("uid") != o.uid(pod):
                return True
            continue
        if ref.get("controller") is True:
            return True
    return False


def _has_non_controller_owner(claim: Obj, sts: Obj, pod: Obj) -> bool:
    uids = {o.uid(sts), o.uid(pod)}
    return any(
        ref.get("uid") in uids and ref.get("controller") is not True
        for ref in o.owner_references(claim)
    )


def claim_owner_up_to_date(claim: Obj, sts: Obj, pod: Obj) -> bool:
    """``isClaimOwnerUpToDate``: do the claim's ownerReferences express the policy?

    Retain/Retain: no reference; whenDeleted Delete: the set; whenScaled Delete: the pod
    once it is scaled down (and then no longer the set). Stale references and foreign
    controllers count as up to date, so such claims are left alone."""
    if has_stale_owner_ref(claim, sts, pod=False) or has_stale_owner_ref(claim, pod, pod=True):
        return True
    if has_unexpected_controller(claim, sts, pod):
        return not (has_owner_ref(claim, sts) or has_owner_ref(claim, pod))
    if _has_non_controller_owner(claim, sts, pod):
        return False
    when_scaled, when_deleted = retention_policy(sts)
    set_ref = has_owner_ref(claim, sts)
    pod_ref = has_owner_ref(claim, pod)
    scaled_down = not in_ordinal_range(pod, sts)
    if when_scaled == DELETE and when_deleted == DELETE:
        return scaled_down != set_ref and scaled_down == pod_ref
    if when_scaled == DELETE:
        return not set_ref and scaled_down == pod_ref
    if when_deleted == DELETE:
        return set_ref and not pod_ref
    return not set_ref and not pod_ref


def _add_controller_ref(refs: list[Obj], owner_ref: Obj) -> list[Obj]:
    if any(ref.get("uid") == owner_ref["uid"] for ref in refs):
        return refs
    return [*refs, owner_ref]


def _pod_controller_ref(pod: Obj) -> Obj:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "name": o.name(pod),
        "uid": o.uid(pod),
        "controller": True,
        "blockOwnerDeletion": True,
    }


def update_claim_owner_refs(claim: Obj, sts: Obj, pod: Obj) -> None:
    """``updateClaimOwnerRefForSetAndPod``: rewrite our references on ``claim`` in place."""
    unexpected = has_unexpected_controller(claim, sts, pod)
    refs = [
        ref
        for ref in o.owner_references(claim)
        if not (_matches_set(ref, sts) or _matches_pod(ref, pod))
    ]
    if not unexpected:
        when_scaled, when_deleted = retention_policy(sts)
        scaled_down = not in_ordinal_range(pod, sts)
        if when_scaled == DELETE and scaled_down:
            refs = _add_controller_ref(refs, _pod_controller_ref(pod))
        if when_deleted == DELETE and (when_scaled == RETAIN or not scaled_down):
            refs = _add_controller_ref(refs, controller_ref(sts))
    meta = o.ensure_meta(claim)
    if refs:
        meta["ownerReferences"] = refs
    else:
        meta.pop("ownerReferences", None)


# -- status ---------------------------------------------------------------------------------


@dataclass(kw_only=True)
class Revisions:
    current: Obj
    update: Obj
    collision_count: int

    @property
    def current_name(self) -> str:
        return o.name(self.current)

    @property
    def update_name(self) -> str:
        return o.name(self.update)


@dataclass(kw_only=True)
class Status:
    observed_generation: int
    current_revision: str
    update_revision: str
    collision_count: int
    replicas: int = 0
    ready_replicas: int = 0
    available_replicas: int = 0
    current_replicas: int = 0
    updated_replicas: int = 0

    def recount(self, min_ready_seconds: int, *pod_lists: Sequence[Obj]) -> None:
        """``updateStatus``/``computeReplicaStatus`` over the given pods."""
        self.replicas = self.ready_replicas = self.available_replicas = 0
        self.current_replicas = self.updated_replicas = 0
        now = datetime.now(UTC)
        for pods in pod_lists:
            for pod in pods:
                if is_created(pod):
                    self.replicas += 1
                if is_running_and_ready(pod):
                    self.ready_replicas += 1
                    if is_available(pod, min_ready_seconds, now):
                        self.available_replicas += 1
                if is_created(pod) and not is_terminating(pod):
                    revision = pod_revision(pod)
                    if revision == self.current_revision:
                        self.current_replicas += 1
                    if revision == self.update_revision:
                        self.updated_replicas += 1

    def to_obj(self) -> Obj:
        """The ``status`` map, omitting what Go's ``omitempty`` would."""
        out: Obj = {}
        if self.observed_generation:
            out["observedGeneration"] = self.observed_generation
        out["replicas"] = self.replicas
        for key, value in (
            ("readyReplicas", self.ready_replicas),
            ("currentReplicas", self.current_replicas),
            ("updatedReplicas", self.updated_replicas),
            ("currentRevision", self.current_revision),
            ("updateRevision", self.update_revision),
        ):
            if value:
                out[key] = value
        out["collisionCount"] = self.collision_count
        out["availableReplicas"] = self.available_replicas
        return out


def status_changed(sts: Obj, status: Status) -> bool:
    """``inconsistentStatus``: does the set's stored status differ from ``status``?"""
    old = sts.get("status") or {}
    return (
        status.observed_generation > int(old.get("observedGeneration") or 0)
        or status.replicas != int(old.get("replicas") or 0)
        or status.current_replicas != int(old.get("currentReplicas") or 0)
        or status.ready_replicas != int(old.get("readyReplicas") or 0)
        or status.updated_replicas != int(old.get("updatedReplicas") or 0)
        or status.current_revision != (old.get("currentRevision") or "")
        or status.available_replicas != int(old.get("availableReplicas") or 0)
        or status.update_revision != (old.get("updateRevision") or "")
    )


# -- running callbacks over pods ------------------------------------------------------------

PodStep = Callable[[int], Awaitable[bool]]


async def _slow_start_batch(count: int, fn: PodStep) -> None:
    """``slowStartBatch``: batches of 1, 2, 4... run concurrently; the first error stops."""
    done = 0
    batch = 1
    while done < count:
        size = min(batch, count - done)
        results = await asyncio.gather(
            *(fn(i) for i in range(done, done + size)), return_exceptions=True
        )
        for result in results:
            if isinstance(result, BaseException):
                raise result
        done += size
        batch *= 2


async def run_for_all(count: int, fn: PodStep, *, monotonic: bool) -> bool:
    """``runForAll``: True when the caller should stop this sync."""
    if monotonic:
        for i in range(count):
            if await fn(i):
                return True
        return False
    await _slow_start_batch(count, fn)
    return False
