"""The ReplicaSet controller: keeps ``spec.replicas`` pods matching a ReplicaSet's selector.

It mirrors upstream's ``pkg/controller/replicaset``: pods are claimed through controller
owner references (orphans whose labels match are adopted, owned pods whose labels stopped
matching are released), missing pods are created from the template with
``generateName: <rs>-`` in slow-start batches, surplus pods are deleted in upstream's
preference order (unscheduled, pending, not ready, newer first), and the status counts
replicas, fully labelled, ready and available (ready for ``minReadySeconds``) pods.

The key design choice is upstream's *expectations*: after creating or deleting pods the
controller waits until its informer has seen those changes before it counts pods again, so a
cache that lags its own writes never makes it create (or delete) twice. The pod-claiming and
readiness helpers here are shared with the Deployment controller.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from kubeling.client.controller import Controller, resolve_controller_ref
from kubeling.client.events import NORMAL, WARNING, EventRecorder
from kubeling.client.informer import Informer, object_key, split_key
from kubeling.client.interface import Client
from kubeling.machinery import objects
from kubeling.machinery.errors import Conflict, Forbidden, Invalid, NotFound, StatusError
from kubeling.machinery.objects import (
    deep_copy,
    is_pod_available,
    is_pod_ready,
    pod_ready_condition,
)
from kubeling.machinery.resources import PODS, REPLICASETS
from kubeling.machinery.selectors import LabelSelector, label_selector_from_object
from kubeling.machinery.types import Obj, ResourceInfo

log = logging.getLogger(__name__)

COMPONENT = "replicaset-controller"
BURST_REPLICAS = 500
"""Upstream's ``BurstReplicas``: at most this many creations or deletions per sync."""
SLOW_START_INITIAL_BATCH = 1
EXPECTATIONS_TIMEOUT = 300.0
"""Upstream's ``ExpectationsTimeout``: stale expectations are dropped after five minutes."""
POD_DELETION_COST = "controller.kubernetes.io/pod-deletion-cost"


# --- pod helpers (shared with the Deployment controller) -------------------------------------


def is_pod_active(pod: Obj) -> bool:
    """upstream ``controller.IsPodActive``: not terminal and not being deleted."""
    phase = (pod.get("status") or {}).get("phase")
    return phase not in ("Succeeded", "Failed") and not objects.deletion_timestamp(pod)


def spec_replicas(obj: Obj) -> int:
    value = (obj.get("spec") or {}).get("replicas")
    return 1 if value is None else int(value)


def utcnow() -> datetime:
    return datetime.now(UTC)


def with_type(obj: Obj, resource: ResourceInfo) -> Obj:
    """Informer objects from a list carry no kind; owner refs and events need it."""
    obj.setdefault("kind", resource.kind)
    obj.setdefault("apiVersion", resource.api_version)
    return obj


def selector_of(obj: Obj) -> LabelSelector:
    """The object's ``spec.selector``; an invalid or empty one selects nothing, as upstream
    refuses to act on it."""
    raw = (obj.get("spec") or {}).get("selector")
    try:
        selector = label_selector_from_object(raw)
    except StatusError:
        return LabelSelector.select_nothing()
    if not raw or selector.empty:
        return LabelSelector.select_nothing()
    return selector


# --- adoption and release (upstream ControllerRefManager) ------------------------------------


@dataclass(kw_only=True)
class ClaimManager:
    """Adopts matching orphans and releases owned objects that no longer match."""

    client: Client
    resource: ResourceInfo
    """The kind being claimed (pods, replicasets)."""
    owner: Obj
    owner_resource: ResourceInfo
    selector: LabelSelector
    _checked: bool = field(default=False, init=False)

    async def claim(self, candidates: Iterable[Obj]) -> list[Obj]:
        owner_uid = objects.uid(self.owner)
        owner_deleting = bool(objects.deletion_timestamp(self.owner))
        claimed: list[Obj] = []
        for obj in candidates:
            ref = objects.controller_ref(obj)
            matches = self.selector.matches(objects.labels(obj))
            if ref is not None:
                if ref.get("uid") != owner_uid:
                    continue
                if matches or owner_deleting:
                    claimed.append(obj)
                    continue
                await self._release(obj)
                continue
            if owner_deleting or not matches or objects.deletion_timestamp(obj):
                continue
            adopted = await self._adopt(obj)
            if adopted is not None:
                claimed.append(adopted)
        return claimed

    async def _can_adopt(self) -> bool:
        if self._checked:
            return True
        fresh = await self.client.get(
            self.owner_resource,
            name=objects.name(self.owner),
            namespace=objects.namespace(self.owner),
        )
        if objects.uid(fresh) != objects.uid(self.owner):
            return False
        if objects.deletion_timestamp(fresh):
            return False
        self._checked = True
        return True

    async def _adopt(self, obj: Obj) -> Obj | None:
        if not await self._can_adopt():
            return None
        ref = objects.owner_reference(with_type(deep_copy(self.owner), self.owner_resource))
        ref["apiVersion"] = self.owner_resource.api_version
        ref["kind"] = self.owner_resource.kind
        patch = {"metadata": {"ownerReferences": [ref], "uid": objects.uid(obj)}}
        try:
            out = await self.client.patch(
                self.resource,
                name=objects.name(obj),
                namespace=objects.namespace(obj),
                patch=patch,
                patch_type="strategic",
            )
        except NotFound:
            return None
        log.info(
            "%s %s adopted %s %s.",
            self.owner_resource.kind,
            objects.namespaced_name(self.owner),
            self.resource.kind,
            objects.namespaced_name(obj),
        )
        return out

    async def _release(self, obj: Obj) -> None:
        patch = {
            "metadata": {
                "ownerReferences": [{"$patch": "delete", "uid": objects.uid(self.owner)}],
                "uid": objects.uid(obj),
            }
        }
        try:
            await self.client.patch(
                self.resource,
                name=objects.name(obj),
                namespace=objects.namespace(obj),
                patch=patch,
                patch_type="strategic",
            )
        except (NotFound, Invalid):
            # upstream ignores both: the object is gone, or being deleted and re-owned.
            return


# --- expectations -----------------------------------------------------------------------------


@dataclass
class _Expectation:
    adds: int = 0
    dels: int = 0
    deleting: set[str] = field(default_factory=set)
    stamp: float = field(default_factory=time.monotonic)


class Expectations:
    """Creations and deletions a controller is waiting to see (upstream
    ``UIDTrackingControllerExpectations``, keyed by pod key instead of uid for deletes)."""

    def __init__(self) -> None:
        self._items: dict[str, _Expectation] = {}

    def satisfied(self, key: str) -> bool:
        exp = self._items.get(key)
        if exp is None:
            return True
        if exp.adds <= 0 and exp.dels <= 0:
            return True
        return time.monotonic() - exp.stamp > EXPECTATIONS_TIMEOUT

    def expect_creations(self, key: str, count: int) -> None:
        self._items[key] = _Expectation(adds=count)

    def expect_deletions(self, key: str, pod_keys: Sequence[str]) -> None:
        self._items[key] = _Expectation(dels=len(pod_keys), deleting=set(pod_keys))

    def creation_observed(self, key: str) -> None:
        exp = self._items.get(key)
        if exp is not None and exp.adds > 0:
            exp.adds -= 1

    def creations_skipped(self, key: str, count: int) -> None:
        for _ in range(count):
            self.creation_observed(key)

    def deletion_observed(self, key: str, pod_key: str) -> None:
        exp = self._items.get(key)
        if exp is not None and pod_key in exp.deleting:
            exp.deleting.discard(pod_key)
            exp.dels -= 1

    def forget(self, key: str) -> None:
        self._items.pop(key, None)


# --- deletion order ---------------------------------------------------------------------------

_PHASE_RANK = {"Pending": 0, "Unknown": 1, "Running": 2}


def _deletion_cost(pod: Obj) -> int:
    try:
        return int(objects.annotations(pod).get(POD_DELETION_COST, "0"))
    except ValueError:
        return 0


def _restarts(pod: Obj) -> int:
    statuses = (pod.get("status") or {}).get("containerStatuses") or []
    return sum(int(s.get("restartCount") or 0) for s in statuses if isinstance(s, dict))


def deletion_order_key(pod: Obj, *, related_on_node: int) -> tuple[Any, ...]:
    """Sort key putting the pod to delete first, as upstream's ``ActivePodsWithRanks``:
    unscheduled < scheduled, Pending < Unknown < Running, not ready < ready, lower
    deletion cost first, more pods of the owner on the same node first, ready for less time
    first, more restarts first, newer first."""
    spec = pod.get("spec") or {}
    status = pod.get("status") or {}
    ready = is_pod_ready(pod)
    cond = pod_ready_condition(pod)
    ready_since = (cond or {}).get("lastTransitionTime") or "" if ready else ""
    created = objects.meta(pod).get("creationTimestamp") or ""
    return (
        1 if spec.get("nodeName") else 0,
        _PHASE_RANK.get(status.get("phase") or "", 0),
        1 if ready else 0,
        _deletion_cost(pod),
        -related_on_node,
        # Later ready time first: invert by sorting on a negated ordinal of the string.
        _Desc(ready_since),
        -_restarts(pod),
        _Desc(created),
    )


@dataclass(frozen=True, order=False)
class _Desc:
    """Orders strings descending (newest timestamp first), with empty first of all."""

    value: str

    def __lt__(self, other: _Desc) -> bool:
        if not self.value or not other.value:
            return bool(not self.value and other.value)
        return self.value > other.value


def pods_to_delete(filtered: list[Obj], related: list[Obj], count: int) -> list[Obj]:
    """upstream ``getPodsToDelete``: rank by pods of the same owner set on the same node."""
    if count >= len(filtered):
        return list(filtered)
    per_node: dict[str, int] = {}
    for pod in related:
        node = (pod.get("spec") or {}).get("nodeName") or ""
        if node and is_pod_active(pod):
            per_node[node] = per_node.get(node, 0) + 1

    def key(pod: Obj) -> tuple[Any, ...]:
        node = (pod.get("spec") or {}).get("nodeName") or ""
        return deletion_order_key(pod, related_on_node=per_node.get(node, 0) if node else 0)

    return sorted(filtered, key=key)[:count]


# --- the controller ---------------------------------------------------------------------------


def pod_from_template(owner: Obj, owner_resource: ResourceInfo) -> Obj:
    """upstream ``GetPodFromTemplate``: labels, annotations and finalizers of the template,
    ``generateName: <owner>-`` and a controller reference."""
    template = deep_copy((owner.get("spec") or {}).get("template") or {})
    tmeta = template.get("metadata") or {}
    meta: Obj = {"generateName": f"{objects.name(owner)}-"}
    for key in ("labels", "annotations", "finalizers"):
        if tmeta.get(key):
            meta[key] = tmeta[key]
    ref = objects.owner_reference(owner)
    ref["apiVersion"] = owner_resource.api_version
    ref["kind"] = owner_resource.kind
    meta["ownerReferences"] = [ref]
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": meta,
        "spec": template.get("spec") or {},
    }


class ReplicaSetController(Controller):
    name = "replicaset"

    def __init__(
        self,
        *,
        client: Client,
        replicasets: Informer,
        pods: Informer,
        recorder: EventRecorder,
        workers: int = 2,
    ) -> None:
        super().__init__(workers=workers)
        self.client = client
        self.replicasets = replicasets
        self.pods = pods
        self.recorder = recorder
        self.expectations = Expectations()
        self.watch(replicasets)
        replicasets.add_handler(on_delete=self._rs_deleted)
        pods.add_handler(on_add=self._pod_added, on_update=self._pod_updated)
        pods.add_handler(on_delete=self._pod_deleted)
        self.wait_for(pods)

    # --- event handlers --------------------------------------------------------------------

    def _rs_deleted(self, rs: Obj) -> None:
        self.expectations.forget(object_key(rs))

    def _owner_key(self, pod: Obj) -> str | None:
        return resolve_controller_ref(self.replicasets, pod, kind=REPLICASETS.kind)

    def _matching_sets(self, pod: Obj) -> list[str]:
        out: list[str] = []
        labels = objects.labels(pod)
        for rs in self.replicasets.list(namespace=objects.namespace(pod)):
            if selector_of(rs).matches(labels):
                out.append(object_key(rs))
        return out

    def _pod_added(self, pod: Obj) -> None:
        if objects.deletion_timestamp(pod):
            # A restarted controller sees pods mid-deletion as adds: count them gone.
            self._pod_deleted(pod)
            return
        key = self._owner_key(pod)
        if key is not None:
            self.expectations.creation_observed(key)
            self.enqueue(key)
            return
        if objects.controller_ref(pod) is None:
            for rs_key in self._matching_sets(pod):
                self.enqueue(rs_key)

    def _pod_updated(self, old: Obj, new: Obj) -> None:
        if objects.resource_version(old) == objects.resource_version(new):
            return
        labels_changed = objects.labels(old) != objects.labels(new)
        if objects.deletion_timestamp(new) and not objects.deletion_timestamp(old):
            # Graceful deletion started: count the pod as deleted now (upstream does too).
            self._pod_deleted(new)
            if labels_changed:
                self._pod_deleted(old)
            return
        old_ref, new_ref = objects.controller_ref(old), objects.controller_ref(new)
        if old_ref != new_ref and old_ref is not None:
            old_key = self._owner_key(old)
            if old_key is not None:
                self.enqueue(old_key)
        key = self._owner_key(new)
        if key is not None:
            self.enqueue(key)
            rs = self.replicasets.peek(key)  # read-only, once per pod event: no copy
            min_ready = int(((rs or {}).get("spec") or {}).get("minReadySeconds") or 0)
            if min_ready > 0 and not is_pod_ready(old) and is_pod_ready(new):
                # The pod becomes available minReadySeconds from now; look again then.
                self.enqueue_after(key, min_ready + 1.0)
            return
        if new_ref is None and (labels_changed or old_ref is not None):
            for rs_key in self._matching_sets(new):
                self.enqueue(rs_key)

    def _pod_deleted(self, pod: Obj) -> None:
        ref = objects.controller_ref(pod)
        if ref is None or ref.get("kind") != REPLICASETS.kind:
            return
        key = f"{objects.namespace(pod)}/{ref.get('name')}"
        self.expectations.deletion_observed(key, object_key(pod))
        self.enqueue(key)

    # --- reconcile -------------------------------------------------------------------------

    async def reconcile(self, key: str) -> None:
        cached = self.replicasets.get(key)
        if cached is None:
            self.expectations.forget(key)
            return
        rs = with_type(cached, REPLICASETS)
        namespace, _name = split_key(key)
        needs_sync = self.expectations.satisfied(key)
        selector = selector_of(rs)
        all_pods = self.pods.list(namespace=namespace)
        active = [p for p in all_pods if is_pod_active(p)]

        manager = ClaimManager(
            client=self.client,
            resource=PODS,
            owner=rs,
            owner_resource=REPLICASETS,
            selector=selector,
        )
        filtered = await manager.claim(active)
        manage_error: Exception | None = None
        if needs_sync and not objects.deletion_timestamp(rs):
            try:
                await self._manage_replicas(rs, key, filtered, all_pods)
            except StatusError as e:
                manage_error = e
        await self._update_status(rs, filtered, manage_error)
        if manage_error is not None:
            raise manage_error
        min_ready = int((rs.get("spec") or {}).get("minReadySeconds") or 0)
        status = rs.get("status") or {}
        wanted = spec_replicas(rs)
        if (
            min_ready > 0
            and status.get("readyReplicas") == wanted
            and status.get("availableReplicas") != wanted
        ):
            self.enqueue_after(key, float(min_ready))

    async def _manage_replicas(
        self, rs: Obj, key: str, filtered: list[Obj], all_pods: list[Obj]
    ) -> None:
        diff = len(filtered) - spec_replicas(rs)
        if diff < 0:
            await self._create_pods(rs, key, min(-diff, BURST_REPLICAS))
        elif diff > 0:
            count = min(diff, BURST_REPLICAS)
            related = [p for p in all_pods if self._related(p, rs)]
            victims = pods_to_delete(filtered, related, count)
            await self._delete_pods(rs, key, victims)

    def _related(self, pod: Obj, rs: Obj) -> bool:
        """Pods of any ReplicaSet owned by the same controller (upstream ranks by them)."""
        owner = objects.controller_ref(rs)
        ref = objects.controller_ref(pod)
        if ref is None:
            return False
        if ref.get("uid") == objects.uid(rs):
            return True
        if owner is None:
            return False
        sibling = self.replicasets.get(f"{objects.namespace(pod)}/{ref.get('name')}")
        sibling_owner = objects.controller_ref(sibling) if sibling else None
        return sibling_owner is not None and sibling_owner.get("uid") == owner.get("uid")

    async def _create_pods(self, rs: Obj, key: str, count: int) -> None:
        self.expectations.expect_creations(key, count)
        namespace = objects.namespace(rs)
        template = pod_from_template(rs, REPLICASETS)
        remaining = count
        batch = SLOW_START_INITIAL_BATCH
        created = 0
        first_error: StatusError | None = None
        while remaining > 0:
            size = min(batch, remaining)
            results = await asyncio.gather(
                *(self._create_one(rs, namespace, template) for _ in range(size)),
                return_exceptions=True,
            )
            errors = [r for r in results if isinstance(r, BaseException)]
            created += size - len(errors)
            for err in errors:
                if not isinstance(err, StatusError):
                    raise err
                first_error = first_error or err
            if errors:
                break
            remaining -= size
            batch *= 2
        skipped = count - created
        if skipped > 0:
            # Creations that never happened will never be observed.
            self.expectations.creations_skipped(key, skipped)
        if first_error is not None:
            raise first_error

    async def _create_one(self, rs: Obj, namespace: str, template: Obj) -> None:
        try:
            pod = await self.client.create(PODS, deep_copy(template), namespace=namespace)
        except StatusError as e:
            if isinstance(e, Forbidden) and _namespace_terminating(e):
                # Upstream stays silent when the namespace is going away.
                raise
            self.recorder.event(rs, WARNING, "FailedCreate", f"Error creating: {e}")
            raise
        self.recorder.event(rs, NORMAL, "SuccessfulCreate", f"Created pod: {objects.name(pod)}")

    async def _delete_pods(self, rs: Obj, key: str, victims: list[Obj]) -> None:
        self.expectations.expect_deletions(key, [object_key(p) for p in victims])
        results = await asyncio.gather(
            *(self._delete_one(rs, key, pod) for pod in victims), return_exceptions=True
        )
        for result in results:
            if isinstance(result, BaseException):
                raise result

    async def _delete_one(self, rs: Obj, key: str, pod: Obj) -> None:
        try:
            await self.client.delete(PODS, name=objects.name(pod), namespace=objects.namespace(pod))
        except NotFound:
            self.expectations.deletion_observed(key, object_key(pod))
            return
        except StatusError as e:
            self.expectations.deletion_observed(key, object_key(pod))
            self.recorder.event(rs, WARNING, "FailedDelete", f"Error deleting: {e}")
            raise
        self.recorder.event(rs, NORMAL, "SuccessfulDelete", f"Deleted pod: {objects.name(pod)}")

    # --- status ----------------------------------------------------------------------------

    async def _update_status(self, rs: Obj, filtered: list[Obj], error: Exception | None) -> None:
        status = calculate_status(rs, filtered, error, now=utcnow())
        body = deep_copy(rs)
        # upstream ``updateReplicaSetStatus``: one retry on a fresh read after a conflict.
        for attempt in range(2):
            current = body.get("status") or {}
            if _status_equal(current, status) and current.get("observedGeneration") == status.get(
                "observedGeneration"
            ):
                rs["status"] = current
                return
            body["status"] = status
            try:
                updated = await self.client.update(REPLICASETS, body, subresource="status")
            except NotFound:
                return
            except Conflict:
                if attempt:
                    raise
                try:
                    body = await self.client.get(
                        REPLICASETS, name=objects.name(rs), namespace=objects.namespace(rs)
                    )
                except NotFound:
                    return
                if objects.uid(body) != objects.uid(rs):
                    return
                # The status keeps the generation it was computed from, as upstream.
                continue
            rs["status"] = updated.get("status") or {}
            return


def _namespace_terminating(e: StatusError) -> bool:
    return any(c.reason == "NamespaceTerminating" for c in e.causes)


def _status_equal(a: Obj, b: Obj) -> bool:
    def strip(s: Obj) -> Obj:
        out = {k: v for k, v in s.items() if k != "conditions"}
        out["conditions"] = [
            {k: v for k, v in c.items() if k != "lastTransitionTime"}
            for c in s.get("conditions") or []
        ]
        return out

    return strip(a) == strip(b)


def calculate_status(
    rs: Obj, filtered: list[Obj], error: Exception | None, *, now: datetime
) -> Obj:
    """upstream ``calculateStatus``; zero counts are omitted as the Go JSON does
    (``replicas`` is the one field always present)."""
    template_labels = ((rs.get("spec") or {}).get("template") or {}).get("metadata") or {}
    wanted = template_labels.get("labels") or {}
    min_ready = int((rs.get("spec") or {}).get("minReadySeconds") or 0)
    fully = ready = available = 0
    for pod in filtered:
        labels = objects.labels(pod)
        if all(labels.get(k) == v for k, v in wanted.items()):
            fully += 1
        if is_pod_ready(pod):
            ready += 1
            if is_pod_available(pod, min_ready_seconds=min_ready, now=now):
                available += 1
    current = rs.get("status") or {}
    status: Obj = {"replicas": len(filtered)}
    for field_name, value in (
        ("fullyLabeledReplicas", fully),
        ("readyReplicas", ready),
        ("availableReplicas", available),
    ):
        if value:
            status[field_name] = value
    generation = objects.generation(rs)
    if generation:
        status["observedGeneration"] = generation
    conditions = list(current.get("conditions") or [])
    failure = objects.get_condition(conditions, "ReplicaFailure")
    if error is not None and failure is None:
        diff = len(filtered) - spec_replicas(rs)
        reason = "FailedCreate" if diff < 0 else "FailedDelete"
        conditions = objects.set_condition(
            conditions, "ReplicaFailure", "True", reason=reason, message=str(error)
        )
    elif error is None and failure is not None:
        conditions = objects.remove_condition(conditions, "ReplicaFailure")
    if conditions:
        status["conditions"] = conditions
    return status


def build(ctx: Any) -> ReplicaSetController:
    return ReplicaSetController(
        client=ctx.client,
        replicasets=ctx.informers.informer(REPLICASETS),
        pods=ctx.informers.informer(PODS),
        recorder=ctx.recorder(COMPONENT),
    )
