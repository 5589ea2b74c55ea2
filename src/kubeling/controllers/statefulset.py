"""The StatefulSet controller: ordinal pods with stable names, their claims, revisions, status.

This is upstream v1.32's ``pkg/controller/statefulset`` on kubeling's client. For each set it
claims the pods named ``<set>-<ordinal>`` (adopting orphans that match the selector,
releasing those that no longer do), snapshots the pod template into ControllerRevisions
(``history``), and then makes one pass of upstream's ``updateStatefulSet``:

- every ordinal in ``[start, start+replicas)`` gets a pod, created from the current or the
  update revision (``rollingUpdate.partition`` decides), with ``spec.hostname`` = its name,
  ``spec.subdomain`` = ``serviceName``, the labels ``statefulset.kubernetes.io/pod-name``,
  ``apps.kubernetes.io/pod-index`` and ``controller-revision-hash`` (the revision's name),
  and one ``persistentVolumeClaim`` volume per ``volumeClaimTemplates`` entry, pointing at
  ``<template>-<set>-<ordinal>``; claims are created first and never deleted here;
- ``OrderedReady`` stops at the first pod that is not Running and Ready (so pods come up
  one by one, in order) and removes surplus pods from the highest ordinal down, one at a
  time; ``Parallel`` does both in slow-start batches without waiting;
- ``persistentVolumeClaimRetentionPolicy`` is expressed, as upstream, only through
  controller ownerReferences on the claims (to the set for ``whenDeleted: Delete``, to the
  condemned pod for ``whenScaled: Delete``); the garbage collector does the deleting. A
  claim whose pod reference is stale blocks re-creation of that pod until it is gone, so a
  scaled-up pod never mounts a claim that is about to be deleted;
- ``RollingUpdate`` deletes the highest-ordinal pod not at the update revision (down to the
  partition) and waits for each replacement to be Running and Ready; ``OnDelete`` leaves
  updates to the user. (``maxUnavailable`` needs upstream's alpha MaxUnavailableStatefulSet
  gate, off by default in v1.32, so it is ignored here too.)
- status (replicas, readyReplicas, availableReplicas, currentReplicas, updatedReplicas,
  currentRevision, updateRevision, observedGeneration, collisionCount) is written only when
  it changed, and a finished rolling update promotes the update revision to current.

Events and their texts are upstream's (``SuccessfulCreate`` "create Pod web-0 in
StatefulSet web successful", "create Claim www-web-0 Pod web-0 in StatefulSet web success",
``FailedCreate`` "... failed error: ...", ``SuccessfulDelete``), from the component
``statefulset-controller``.

Beyond upstream, on purpose: upstream documents that a rollout stuck on a broken template
("forced rollback") needs the user to delete the stuck pods after reverting the template,
because ``OrderedReady`` waits forever for a pod that will never be Ready. Here, under
``RollingUpdate``, a pod at or above the partition that is not Running and Ready and is
not at the update revision is deleted and recreated at the update revision straight away:
reverting the template (or fixing it) is enough. Healthy pods still roll one at a time.

Two smaller deviations, both to avoid noise from informer lag: a claim that already exists
when we try to create it counts as created (upstream fails the pod create and retries), and
a pod that already exists ends the sync quietly (its watch event brings us back). Claims
whose stale-pod reference blocked a pod are watched, so the pod is created as soon as the
garbage collector removes the claim rather than on the next unrelated event.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Final

from kubeling.client.controller import Controller, retry_on_conflict
from kubeling.client.events import NORMAL, WARNING, EventRecorder
from kubeling.client.informer import Informer, SharedInformerFactory, object_key
from kubeling.client.interface import Client
from kubeling.controllers import history
from kubeling.machinery import objects as o
from kubeling.machinery.errors import AlreadyExists, Conflict, NotFound, StatusError
from kubeling.machinery.resources import (
    CONTROLLERREVISIONS,
    PERSISTENTVOLUMECLAIMS,
    PODS,
    STATEFULSETS,
)
from kubeling.machinery.selectors import LabelSelector, SelectorError, label_selector_from_object
from kubeling.machinery.types import Obj

if TYPE_CHECKING:
    from kubeling.controllers.manager import ControllerContext

log = logging.getLogger(__name__)

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


def _spec(sts: Obj) -> dict[str, Any]:
    spec = sts.get("spec")
    return spec if isinstance(spec, dict) else {}


def spec_replicas(sts: Obj) -> int:
    value = _spec(sts).get("replicas")
    return 1 if value is None else int(value)


def start_ordinal(sts: Obj) -> int:
    return int((_spec(sts).get("ordinals") or {}).get("start") or 0)


def end_ordinal(sts: Obj) -> int:
    """The last ordinal in range (inclusive); ``start - 1`` when scaled to zero."""
    return start_ordinal(sts) + spec_replicas(sts) - 1


def in_ordinal_range(pod: Obj, sts: Obj) -> bool:
    ordinal = ordinal_of(pod)
    return start_ordinal(sts) <= ordinal <= end_ordinal(sts)


def claim_templates(sts: Obj) -> list[Obj]:
    return [t for t in _spec(sts).get("volumeClaimTemplates") or [] if isinstance(t, dict)]


def retention_policy(sts: Obj) -> tuple[str, str]:
    """``(whenScaled, whenDeleted)``, Retain where unset."""
    policy = _spec(sts).get("persistentVolumeClaimRetentionPolicy") or {}
    return policy.get("whenScaled") or RETAIN, policy.get("whenDeleted") or RETAIN


def allows_burst(sts: Obj) -> bool:
    return _spec(sts).get("podManagementPolicy") == "Parallel"


def update_strategy(sts: Obj) -> tuple[str, dict[str, Any] | None]:
    strategy = _spec(sts).get("updateStrategy") or {}
    rolling = strategy.get("rollingUpdate")
    return strategy.get("type") or "RollingUpdate", rolling if isinstance(rolling, dict) else None


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


def _ready_condition(pod: Obj) -> Obj | None:
    return o.get_condition((pod.get("status") or {}).get("conditions"), "Ready")


def is_ready(pod: Obj) -> bool:
    cond = _ready_condition(pod)
    return cond is not None and cond.get("status") == "True"


def is_running_and_ready(pod: Obj) -> bool:
    return phase(pod) == "Running" and is_ready(pod)


def is_available(pod: Obj, min_ready_seconds: int, now: datetime | None = None) -> bool:
    """``podutil.IsPodAvailable``: Ready, and for longer than ``minReadySeconds``."""
    if not is_ready(pod):
        return False
    if min_ready_seconds <= 0:
        return True
    cond = _ready_condition(pod) or {}
    try:
        since = o.parse_rfc3339(str(cond.get("lastTransitionTime") or ""))
    except ValueError:
        return False
    return since + timedelta(seconds=min_ready_seconds) < (now or datetime.now(UTC))


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
    match_labels = (_spec(sts).get("selector") or {}).get("matchLabels") or {}
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
    parent, ordinal = parent_and_ordinal(o.name(pod))
    labels = o.labels(pod)
    return (
        ordinal >= 0
        and parent == o.name(sts)
        and o.name(pod) == pod_name(sts, ordinal)
        and o.namespace(pod) == o.namespace(sts)
        and labels.get(POD_NAME_LABEL) == o.name(pod)
        and labels.get(POD_INDEX_LABEL) == str(ordinal)
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
    template = _spec(sts).get("template") or {}
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
    service = _spec(sts).get("serviceName") or ""
    if service:
        pod["spec"]["subdomain"] = service
    update_storage(sts, pod)
    return pod


def new_versioned_pod(
    current_set: Obj, update_set: Obj, current_revision: str, update_revision: str, ordinal: int
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
    template = o.deep_copy(_spec(sts).get("template") or {})
    template["$patch"] = "replace"
    return {"spec": {"template": template}}


def new_revision(sts: Obj, number: int, collision_count: int) -> Obj:
    return history.new_controller_revision(
        sts,
        template_labels=((_spec(sts).get("template") or {}).get("metadata") or {}).get("labels"),
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


def _inconsistent(sts: Obj, status: Status) -> bool:
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


# -- the controller -------------------------------------------------------------------------


@dataclass(kw_only=True)
class _Sync:
    """One sync of one set: what ``updateStatefulSet`` computes and passes around."""

    sts: Obj
    current_set: Obj
    update_set: Obj
    revisions: Revisions
    status: Status
    replicas: list[Obj] = field(default_factory=list)
    condemned: list[Obj] = field(default_factory=list)
    first_unhealthy: Obj | None = None


class StatefulSetController(Controller):
    name = "statefulset-controller"

    def __init__(
        self,
        client: Client,
        informers: SharedInformerFactory,
        *,
        recorder: EventRecorder | None = None,
        workers: int = 5,
        replace_broken_pods: bool = True,
    ) -> None:
        super().__init__(workers=workers)
        self.client = client
        self.recorder = recorder or EventRecorder(client, component=COMPONENT)
        self.replace_broken_pods = replace_broken_pods
        """Replace unready pods at an outdated revision without waiting (see module doc)."""
        self.sets: Informer = informers.informer(STATEFULSETS)
        self.pods: Informer = informers.informer(PODS)
        self.claims: Informer = informers.informer(PERSISTENTVOLUMECLAIMS)
        self.history: Informer = informers.informer(CONTROLLERREVISIONS)
        self.watch(self.sets)
        self.pods.add_handler(
            on_add=self._pod_added, on_update=self._pod_updated, on_delete=self._pod_deleted
        )
        self.wait_for(self.pods)
        self.claims.add_handler(on_delete=self._claim_deleted)
        self.wait_for(self.claims)
        self.wait_for(self.history)

    # --- event handlers --------------------------------------------------------------------

    def _set_for_ref(self, namespace: str, ref: Obj | None) -> str | None:
        """``resolveControllerRef``: the key of the set ``ref`` names, if it is ours."""
        if ref is None or ref.get("kind") != SET_KIND:
            return None
        if str(ref.get("apiVersion", "")).split("/")[0] != STATEFULSETS.group:
            return None
        key = f"{namespace}/{ref.get('name', '')}"
        sts = self.sets.get(key)
        if sts is None or o.uid(sts) != ref.get("uid"):
            return None
        return key

    def _sets_selecting(self, pod: Obj) -> list[str]:
        """``getPodStatefulSets``: sets in the pod's namespace whose selector matches it."""
        keys: list[str] = []
        for sts in self.sets.list(namespace=o.namespace(pod)):
            try:
                selector = label_selector_from_object(_spec(sts).get("selector"))
            except SelectorError:
                continue
            if not selector.empty and selector.matches(o.labels(pod)):
                keys.append(object_key(sts))
        return keys

    def _pod_added(self, pod: Obj) -> None:
        key = self._set_for_ref(o.namespace(pod), o.controller_ref(pod))
        if key is not None:
            self.enqueue(key)
        elif o.controller_ref(pod) is None:
            for key in self._sets_selecting(pod):
                self.enqueue(key)

    def _pod_updated(self, old: Obj, new: Obj) -> None:
        if o.resource_version(old) == o.resource_version(new):
            return
        old_ref, new_ref = o.controller_ref(old), o.controller_ref(new)
        if old_ref != new_ref:
            old_key = self._set_for_ref(o.namespace(old), old_ref)
            if old_key is not None:
                self.enqueue(old_key)
        key = self._set_for_ref(o.namespace(new), new_ref)
        if key is not None:
            self.enqueue(key)
            sts = self.sets.get(key)
            min_ready = int(_spec(sts or {}).get("minReadySeconds") or 0)
            if min_ready > 0 and not is_ready(old) and is_ready(new):
                self.enqueue_after(key, float(min_ready))
            return
        if new_ref is None and (o.labels(old) != o.labels(new) or old_ref != new_ref):
            for key in self._sets_selecting(new):
                self.enqueue(key)

    def _pod_deleted(self, pod: Obj) -> None:
        key = self._set_for_ref(o.namespace(pod), o.controller_ref(pod))
        if key is not None:
            self.enqueue(key)

    def _claim_deleted(self, claim: Obj) -> None:
        # A stale claim blocks its pod's re-creation; its deletion unblocks the set.
        name = o.name(claim)
        for sts in self.sets.list(namespace=o.namespace(claim)):
            for template in claim_templates(sts):
                if name.startswith(f"{o.name(template)}-{o.name(sts)}-"):
                    self.enqueue(object_key(sts))
                    break

    # --- events ----------------------------------------------------------------------------

    def _pod_event(self, verb: str, sts: Obj, pod: Obj, err: BaseException | None) -> None:
        if err is None:
            self.recorder.event(
                sts,
                NORMAL,
                f"Successful{verb.title()}",
                f"{verb} Pod {o.name(pod)} in StatefulSet {o.name(sts)} successful",
            )
        else:
            self.recorder.event(
                sts,
                WARNING,
                f"Failed{verb.title()}",
                f"{verb} Pod {o.name(pod)} in StatefulSet {o.name(sts)} failed error: {err}",
            )

    def _claim_event(
        self, verb: str, sts: Obj, pod: Obj, claim: Obj, err: BaseException | None
    ) -> None:
        if err is None:
            self.recorder.event(
                sts,
                NORMAL,
                f"Successful{verb.title()}",
                f"{verb} Claim {o.name(claim)} Pod {o.name(pod)} in StatefulSet "
                f"{o.name(sts)} success",
            )
        else:
            self.recorder.event(
                sts,
                WARNING,
                f"Failed{verb.title()}",
                f"{verb} Claim {o.name(claim)} for Pod {o.name(pod)} in StatefulSet "
                f"{o.name(sts)} failed error: {err}",
            )

    # --- the sync --------------------------------------------------------------------------

    async def reconcile(self, key: str) -> None:
        sts = self.sets.get(key)
        if sts is None:
            return
        sts.setdefault("apiVersion", SET_API_VERSION)
        sts.setdefault("kind", SET_KIND)
        try:
            selector = label_selector_from_object(_spec(sts).get("selector"))
        except SelectorError as e:
            # Not transient: the set must be fixed first (upstream does not retry either).
            log.warning("StatefulSet %s has an invalid selector: %s.", key, e)
            return
        revisions = await self._revisions_for(sts, selector)
        pods = await self._claim_pods(sts, selector)
        status = await self._update_set(sts, pods, revisions)
        min_ready = int(_spec(sts).get("minReadySeconds") or 0)
        if min_ready > 0 and status.available_replicas != spec_replicas(sts):
            # Availability is a matter of time: look again when the wait is over.
            self.enqueue_after(key, float(min_ready))

    async def _can_adopt(self, sts: Obj) -> bool:
        """``canAdoptFunc``: re-read the set; adopt only for the live, undeleted one."""
        try:
            fresh = await self.client.get(
                STATEFULSETS, name=o.name(sts), namespace=o.namespace(sts)
            )
        except NotFound:
            return False
        return o.uid(fresh) == o.uid(sts) and o.deletion_timestamp(fresh) is None

    async def _revisions_for(self, sts: Obj, selector: LabelSelector) -> list[Obj]:
        """``ListRevisions`` (owned by the set, or orphans matching its selector), adopting
        the orphans, sorted."""
        owned: list[Obj] = []
        orphans: list[Obj] = []
        for rev in self.history.list(namespace=o.namespace(sts)):
            if not selector.matches(o.labels(rev)):
                continue
            ref = o.controller_ref(rev)
            if ref is None:
                orphans.append(rev)
            elif ref.get("uid") == o.uid(sts):
                owned.append(rev)
        if orphans and await self._can_adopt(sts):
            for rev in orphans:
                try:
                    adopted = await self.client.patch(
                        CONTROLLERREVISIONS,
                        name=o.name(rev),
                        namespace=o.namespace(rev),
                        patch={
                            "metadata": {
                                "ownerReferences": [controller_ref(sts)],
                                "uid": o.uid(rev),
                            }
                        },
                        patch_type="strategic",
                    )
                except NotFound:
                    continue
                log.info("StatefulSet %s adopted ControllerRevision %s.", o.name(sts), o.name(rev))
                owned.append(adopted)
        return history.sort_revisions(owned)

    async def _claim_pods(self, sts: Obj, selector: LabelSelector) -> list[Obj]:
        """``ClaimPods``: our pods, plus orphans we adopt; release ours that stopped
        matching. Only pods named like the set's members are considered."""
        out: list[Obj] = []
        can_adopt: bool | None = None
        deleting = o.deletion_timestamp(sts) is not None
        for pod in self.pods.list(namespace=o.namespace(sts)):
            ref = o.controller_ref(pod)
            matches = not selector.empty and selector.matches(o.labels(pod))
            member = is_member_of(sts, pod)
            if ref is not None:
                if ref.get("uid") != o.uid(sts):
                    continue
                if matches and member:
                    out.append(pod)
                elif not deleting:
                    await self._release_pod(sts, pod)
                continue
            if deleting or not matches or not member or is_terminating(pod):
                continue
            if can_adopt is None:
                can_adopt = await self._can_adopt(sts)
            if not can_adopt:
                continue
            adopted = await self._adopt_pod(sts, pod)
            if adopted is not None:
                out.append(adopted)
        return out

    async def _adopt_pod(self, sts: Obj, pod: Obj) -> Obj | None:
        try:
            adopted = await self.client.patch(
                PODS,
                name=o.name(pod),
                namespace=o.namespace(pod),
                patch={"metadata": {"ownerReferences": [controller_ref(sts)], "uid": o.uid(pod)}},
                patch_type="strategic",
            )
        except NotFound:
            return None
        log.info("StatefulSet %s adopted pod %s.", o.namespaced_name(sts), o.name(pod))
        return adopted

    async def _release_pod(self, sts: Obj, pod: Obj) -> None:
        try:
            await self.client.patch(
                PODS,
                name=o.name(pod),
                namespace=o.namespace(pod),
                patch={
                    "metadata": {
                        "ownerReferences": [{"$patch": "delete", "uid": o.uid(sts)}],
                        "uid": o.uid(pod),
                    }
                },
                patch_type="strategic",
            )
        except NotFound:
            return
        log.info("StatefulSet %s released pod %s.", o.namespaced_name(sts), o.name(pod))

    async def _update_set(self, sts: Obj, pods: list[Obj], revisions: list[Obj]) -> Status:
        """``UpdateStatefulSet``: revisions, one update pass, status, history limit."""
        revs = await self._set_revisions(sts, revisions)
        errors: list[BaseException] = []
        status: Status | None = None
        try:
            status = await self._perform_update(sts, revs, pods)
        except StatusError as e:
            errors.append(e)
        try:
            await self._truncate_history(sts, pods, revisions, revs)
        except StatusError as e:
            errors.append(e)
        if len(errors) == 1:
            raise errors[0]
        if errors:
            raise SyncError.join([str(e) for e in errors])
        assert status is not None
        return status

    async def _set_revisions(self, sts: Obj, revisions: list[Obj]) -> Revisions:
        """``getStatefulSetRevisions``: find or create the update revision (re-numbering an
        equal older one, which is a rollback) and the current one."""
        collision_count = int((sts.get("status") or {}).get("collisionCount") or 0)
        candidate = new_revision(sts, history.next_revision(revisions), collision_count)
        equal = history.find_equal_revisions(revisions, candidate)
        update: Obj
        if equal and history.equal_revision(revisions[-1], equal[-1]):
            update = revisions[-1]
        elif equal:
            update = await history.update_revision_number(
                self.client, equal[-1], history.revision_number(candidate)
            )
            log.info(
                "StatefulSet %s rolls back to ControllerRevision %s (now revision %d).",
                o.namespaced_name(sts),
                o.name(update),
                history.revision_number(update),
            )
        else:
            update, collision_count = await history.create_controller_revision(
                self.client, sts, candidate, collision_count
            )
        current_name = (sts.get("status") or {}).get("currentRevision") or ""
        current = next((r for r in revisions if o.name(r) == current_name), None)
        return Revisions(
            current=current if current is not None else update,
            update=update,
            collision_count=collision_count,
        )

    async def _perform_update(self, sts: Obj, revs: Revisions, pods: list[Obj]) -> Status:
        """``performUpdate``: one pass, then the status, even when the pass failed."""
        status = Status(
            observed_generation=o.generation(sts),
            current_revision=revs.current_name,
            update_revision=revs.update_name,
            collision_count=revs.collision_count,
        )
        error: BaseException | None = None
        try:
            await self._update_pods(sts, revs, pods, status)
        except StatusError as e:
            error = e
        try:
            await self._write_status(sts, status)
        except StatusError as e:
            if error is None:
                raise
            raise SyncError.join([str(error), str(e)]) from e
        if error is not None:
            raise error
        return status

    async def _update_pods(
        self, sts: Obj, revs: Revisions, pods: list[Obj], status: Status
    ) -> None:
        """``updateStatefulSet``: create, fix, condemn and roll pods; fills ``status``."""
        min_ready = int(_spec(sts).get("minReadySeconds") or 0)
        status.recount(min_ready, pods)
        sync = _Sync(
            sts=sts,
            current_set=apply_revision(sts, revs.current),
            update_set=apply_revision(sts, revs.update),
            revisions=revs,
            status=status,
        )
        start, count = start_ordinal(sts), spec_replicas(sts)
        slots: list[Obj | None] = [None] * max(count, 0)
        for pod in pods:
            ordinal = ordinal_of(pod)
            if start <= ordinal < start + count:
                slots[ordinal - start] = pod
            elif ordinal >= 0:
                sync.condemned.append(pod)
        sync.replicas = [
            pod
            if pod is not None
            else new_versioned_pod(
                sync.current_set, sync.update_set, revs.current_name, revs.update_name, start + i
            )
            for i, pod in enumerate(slots)
        ]
        sync.condemned.sort(key=ordinal_of, reverse=True)
        unhealthy = [p for p in sync.replicas if not is_healthy(p)]
        unhealthy += [p for p in reversed(sync.condemned) if not is_healthy(p)]
        sync.first_unhealthy = unhealthy[0] if unhealthy else None
        if unhealthy:
            log.debug(
                "StatefulSet %s has %d unhealthy pods; the first is %s.",
                o.namespaced_name(sts),
                len(unhealthy),
                o.name(unhealthy[0]),
            )

        def recount() -> None:
            status.recount(min_ready, sync.replicas, sync.condemned)

        if o.deletion_timestamp(sts) is not None:
            return  # a set being deleted only gets its status refreshed
        monotonic = not allows_burst(sts)

        async def replica_step(i: int) -> bool:
            return await self._process_replica(sync, monotonic, i)

        if await run_for_all(len(sync.replicas), replica_step, monotonic=monotonic):
            recount()
            return

        async def claim_step(i: int) -> bool:
            pod = sync.condemned[i]
            if not await self._claims_match_policy(sync.update_set, pod):
                await self._update_claims_for_policy(sync.update_set, pod)
            return False

        if await run_for_all(len(sync.condemned), claim_step, monotonic=monotonic):
            recount()
            return

        async def condemned_step(i: int) -> bool:
            return await self._process_condemned(sync, monotonic, i)

        if await run_for_all(len(sync.condemned), condemned_step, monotonic=monotonic):
            recount()
            return
        recount()
        stype, _ = update_strategy(sts)
        if stype == "OnDelete":
            return
        await self._rolling_update(sync)

    async def _process_replica(self, sync: _Sync, monotonic: bool, i: int) -> bool:
        """``processReplica``: True stops the pass (blocked, or waiting for a change)."""
        sts, pod = sync.sts, sync.replicas[i]
        if phase(pod) in ("Failed", "Succeeded"):
            # A finished pod is replaced; the new one comes once the old one is gone.
            if not is_terminating(pod):
                await self._delete_pod(sts, pod)
            return True
        if not is_created(pod):
            if await self._pod_claim_is_stale(sts, pod):
                log.info(
                    "StatefulSet %s waits for the stale claims of %s to be deleted.",
                    o.namespaced_name(sts),
                    o.name(pod),
                )
                return True
            if not await self._create_pod(sts, pod):
                return True
            return monotonic
        if phase(pod) == "Pending":
            await self._create_missing_claims(sts, pod)
        if self._stuck_on_outdated_revision(sync, pod):
            log.info(
                "Pod %s of StatefulSet %s is not ready at outdated revision %s; replacing it "
                "with revision %s.",
                o.name(pod),
                o.namespaced_name(sts),
                pod_revision(pod),
                sync.revisions.update_name,
            )
            await self._delete_pod(sts, pod, missing_ok=True)
            return True
        if is_terminating(pod) and monotonic:
            return True
        if not is_running_and_ready(pod) and monotonic:
            return True
        if not is_available(pod, int(_spec(sts).get("minReadySeconds") or 0)) and monotonic:
            return True
        try:
            retention_match = await self._claims_match_policy(sync.update_set, pod)
        except StatusError:
            retention_match = True
        if identity_matches(sts, pod) and storage_matches(sts, pod) and retention_match:
            return False
        await self._update_stateful_pod(sync.update_set, pod)
        return False

    def _stuck_on_outdated_revision(self, sync: _Sync, pod: Obj) -> bool:
        """Beyond upstream: an unready pod at a revision the rollout is moving away from."""
        if not self.replace_broken_pods:
            return False
        stype, _ = update_strategy(sync.sts)
        return (
            stype == "RollingUpdate"
            and ordinal_of(pod) >= start_ordinal(sync.sts) + partition_of(sync.sts)
            and pod_revision(pod) != sync.revisions.update_name
            and not is_terminating(pod)
            and not is_running_and_ready(pod)
        )

    async def _process_condemned(self, sync: _Sync, monotonic: bool, i: int) -> bool:
        """``processCondemned``: delete surplus pods, highest ordinal first when ordered."""
        pod = sync.condemned[i]
        if is_terminating(pod):
            return monotonic
        first = sync.first_unhealthy is pod
        if not is_running_and_ready(pod) and monotonic and not first:
            return True
        min_ready = int(_spec(sync.sts).get("minReadySeconds") or 0)
        if not is_available(pod, min_ready) and monotonic and not first:
            return True
        log.info(
            "Pod %s of StatefulSet %s is terminating for scale down.",
            o.name(pod),
            o.namespaced_name(sync.sts),
        )
        await self._delete_pod(sync.sts, pod)
        return monotonic

    async def _rolling_update(self, sync: _Sync) -> None:
        """Delete the highest pod not at the update revision, down to the partition, and
        wait for each replacement to be healthy."""
        _, rolling = update_strategy(sync.sts)
        update_min = int((rolling or {}).get("partition") or 0)
        for target in range(len(sync.replicas) - 1, update_min - 1, -1):
            pod = sync.replicas[target]
            if pod_revision(pod) != sync.revisions.update_name and not is_terminating(pod):
                log.info(
                    "Pod %s of StatefulSet %s is terminating for update to revision %s.",
                    o.name(pod),
                    o.namespaced_name(sync.sts),
                    sync.revisions.update_name,
                )
                await self._delete_pod(sync.sts, pod, missing_ok=True)
                sync.status.current_replicas -= 1
                return
            if not is_healthy(pod):
                return

    # --- pod and claim writes --------------------------------------------------------------

    async def _create_pod(self, sts: Obj, pod: Obj) -> bool:
        """``CreateStatefulPod``: claims first, then the pod. False when the pod already
        existed (our cache is behind; its event brings the set back)."""
        try:
            await self._create_claims(sts, pod)
        except SyncError as e:
            self._pod_event("create", sts, pod, e)
            raise
        try:
            await self.client.create(PODS, pod, namespace=o.namespace(sts))
        except AlreadyExists:
            log.debug("Pod %s already exists; waiting for the cache.", o.name(pod))
            return False
        except StatusError as e:
            self._pod_event("create", sts, pod, e)
            raise
        try:
            await self._update_claims_for_policy(sts, pod)
        except StatusError as e:
            self._pod_event("update", sts, pod, e)
            raise
        self._pod_event("create", sts, pod, None)
        log.info("StatefulSet %s created pod %s.", o.namespaced_name(sts), o.name(pod))
        return True

    async def _delete_pod(self, sts: Obj, pod: Obj, *, missing_ok: bool = False) -> None:
        try:
            await self.client.delete(PODS, name=o.name(pod), namespace=o.namespace(pod))
        except NotFound as e:
            self._pod_event("delete", sts, pod, e)
            if missing_ok:
                return
            raise
        except StatusError as e:
            self._pod_event("delete", sts, pod, e)
            raise
        self._pod_event("delete", sts, pod, None)

    async def _create_claims(self, sts: Obj, pod: Obj) -> None:
        """``createPersistentVolumeClaims``: create each missing claim of ``pod``."""
        errors: list[str] = []
        for _, claim in claims_for(sts, ordinal_of(pod)):
            name = o.name(claim)
            existing = self.claims.get_by_name(name=name, namespace=o.namespace(sts))
            if existing is not None:
                if is_terminating(existing):
                    errors.append(f"pvc {name} is being deleted")
                continue
            try:
                await self.client.create(PERSISTENTVOLUMECLAIMS, claim, namespace=o.namespace(sts))
            except AlreadyExists:
                # The cache is behind a claim created moments ago: it exists, which is all
                # the pod needs.
                continue
            except StatusError as e:
                errors.append(f"failed to create PVC {name}: {e}")
                self._claim_event("create", sts, pod, claim, e)
                continue
            self._claim_event("create", sts, pod, claim, None)
            log.info("StatefulSet %s created claim %s.", o.namespaced_name(sts), name)
        if errors:
            raise SyncError.join(errors)

    async def _create_missing_claims(self, sts: Obj, pod: Obj) -> None:
        await self._create_claims(sts, pod)
        try:
            await self._update_claims_for_policy(sts, pod)
        except StatusError as e:
            self._pod_event("update", sts, pod, e)
            raise

    def _pod_claims(self, sts: Obj, pod: Obj) -> list[tuple[str, Obj | None]]:
        out: list[tuple[str, Obj | None]] = []
        for template in claim_templates(sts):
            name = claim_name(o.name(template), o.name(sts), ordinal_of(pod))
            out.append((name, self.claims.get_by_name(name=name, namespace=o.namespace(sts))))
        return out

    async def _pod_claim_is_stale(self, sts: Obj, pod: Obj) -> bool:
        """``PodClaimIsStale``: under whenScaled Delete, a claim still owned by an earlier
        pod of this name is about to be collected and must not be reused."""
        if retention_policy(sts)[0] == RETAIN:
            return False
        return any(
            claim is not None and has_stale_owner_ref(claim, pod, pod=True)
            for _, claim in self._pod_claims(sts, pod)
        )

    async def _claims_match_policy(self, sts: Obj, pod: Obj) -> bool:
        return all(
            claim is None or claim_owner_up_to_date(claim, sts, pod)
            for _, claim in self._pod_claims(sts, pod)
        )

    async def _update_claims_for_policy(self, sts: Obj, pod: Obj) -> None:
        """``UpdatePodClaimForRetentionPolicy``: rewrite the ownerReferences of each claim."""
        for name, claim in self._pod_claims(sts, pod):
            if claim is None:
                continue  # not in the cache yet: the next sync sees it
            if has_unexpected_controller(claim, sts, pod):
                self.recorder.event(
                    sts,
                    WARNING,
                    "ConflictingController",
                    f"PersistentVolumeClaim {name} has a conflicting OwnerReference that acts "
                    "as a manging controller, the retention policy is ignored for this claim",
                )
            if claim_owner_up_to_date(claim, sts, pod):
                continue
            update_claim_owner_refs(claim, sts, pod)
            try:
                await self.client.update(PERSISTENTVOLUMECLAIMS, claim)
            except Conflict:
                raise  # our cache was behind; the runner retries quietly
            except StatusError as e:
                raise SyncError(
                    f"could not update claim {name} for delete policy ownerRefs: {e}"
                ) from e
            log.info(
                "StatefulSet %s set the ownerReferences of claim %s for its retention policy.",
                o.namespaced_name(sts),
                name,
            )

    async def _update_stateful_pod(self, sts: Obj, pod: Obj) -> None:
        """``UpdateStatefulPod``: restore identity labels and storage, fix claim owners."""
        current = o.deep_copy(pod)
        attempted = False

        async def attempt() -> None:
            nonlocal current, attempted
            consistent = True
            if not identity_matches(sts, current):
                update_identity(sts, current)
                consistent = False
            if not storage_matches(sts, current):
                update_storage(sts, current)
                consistent = False
                try:
                    await self._create_claims(sts, current)
                except SyncError as e:
                    self._pod_event("update", sts, current, e)
                    raise
            if not await self._claims_match_policy(sts, current):
                try:
                    await self._update_claims_for_policy(sts, current)
                except StatusError as e:
                    self._pod_event("update", sts, current, e)
                    raise
                consistent = False
            if consistent:
                return
            attempted = True
            try:
                await self.client.update(PODS, current)
            except Conflict:
                fresh = self.pods.get_by_name(name=o.name(pod), namespace=o.namespace(pod))
                if fresh is not None:
                    current = fresh
                raise

        error: StatusError | None = None
        try:
            await retry_on_conflict(attempt)
        except StatusError as e:
            error = e
        if attempted:
            self._pod_event("update", sts, current, error)
        if error is not None:
            raise error

    # --- status and history ----------------------------------------------------------------

    async def _write_status(self, sts: Obj, status: Status) -> None:
        """``updateStatefulSetStatus``: finish a completed rollout, write if changed."""
        stype, _ = update_strategy(sts)
        replicas = spec_replicas(sts)
        if (
            stype == "RollingUpdate"
            and status.updated_replicas == replicas
            and status.ready_replicas == replicas
            and status.replicas == replicas
        ):
            status.current_replicas = status.updated_replicas
            status.current_revision = status.update_revision
        if not _inconsistent(sts, status):
            return
        target = o.deep_copy(sts)

        async def attempt() -> None:
            nonlocal target
            target["status"] = status.to_obj()
            try:
                await self.client.update(STATEFULSETS, target, subresource="status")
            except NotFound:
                return  # deleted meanwhile: nothing left to report on
            except Conflict:
                target = await self.client.get(
                    STATEFULSETS, name=o.name(sts), namespace=o.namespace(sts)
                )
                raise

        await retry_on_conflict(attempt)

    async def _truncate_history(
        self, sts: Obj, pods: list[Obj], revisions: list[Obj], revs: Revisions
    ) -> None:
        """``truncateHistory``: delete the oldest revisions no pod uses, beyond the limit."""
        live = {revs.current_name, revs.update_name, *(pod_revision(p) for p in pods)}
        old = [r for r in revisions if o.name(r) not in live]
        limit = _spec(sts).get("revisionHistoryLimit")
        limit = 10 if limit is None else int(limit)
        for rev in old[: max(len(old) - limit, 0)]:
            try:
                await self.client.delete(
                    CONTROLLERREVISIONS, name=o.name(rev), namespace=o.namespace(rev)
                )
            except NotFound:
                continue
            log.info(
                "StatefulSet %s deleted ControllerRevision %s (history limit %d).",
                o.namespaced_name(sts),
                o.name(rev),
                limit,
            )


def build(ctx: ControllerContext) -> StatefulSetController:
    """The manager's entry point (``BUILDERS["statefulset"]``)."""
    return StatefulSetController(ctx.client, ctx.informers, recorder=ctx.recorder(COMPONENT))
