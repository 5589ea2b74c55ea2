"""The scheduler: binds pending pods to nodes through ``pods/<name>/binding``.

One scheduling cycle at a time (one worker), as upstream: the cycle reads the informer
caches, runs the filters of ``scheduler.nodes`` and the volume checks of
``scheduler.volumes`` on every node, scores the survivors (least allocated, ties broken
by node name so placement is reproducible) and *assumes* the pod on the winner, so the
next cycle already counts its requests before the binding shows up in the cache.

A pod whose WaitForFirstConsumer claims need a volume goes through upstream's
VolumeBinding assume/bind phases: the scheduler writes the static bindings it chose
(volume ``claimRef``) and ``volume.kubernetes.io/selected-node`` on claims to provision,
then parks the pod until every claim is fully bound (claim and volume events re-queue
it; the binder and the provisioner do the work) and only then binds the pod. A provisioner
that gives up removes ``selected-node``, which aborts the wait and schedules afresh, and
so does the ten-minute bind timeout.

A pod no node can take gets upstream's FailedScheduling event and ``PodScheduled=False``
condition, with one more sentence naming the claims involved and why (kubeling's
addition), and waits in the unschedulable set until a node, claim, volume, class or
assigned pod changes; it is then retried after its per-pod backoff (1 s doubling to 10 s,
as upstream), and in any case every five minutes.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from typing import Any, Final, Protocol

from kubeling.client.controller import Controller
from kubeling.client.events import NORMAL, WARNING, EventRecorder
from kubeling.client.informer import SharedInformerFactory, object_key, split_key
from kubeling.client.interface import Client
from kubeling.machinery import objects
from kubeling.machinery.errors import Conflict, NotFound, StatusError
from kubeling.machinery.resources import (
    NODES,
    PERSISTENTVOLUMECLAIMS,
    PERSISTENTVOLUMES,
    PODS,
    STORAGECLASSES,
)
from kubeling.machinery.types import Obj
from kubeling.scheduler import nodes as nodefilters
from kubeling.scheduler.diagnosis import NO_NODES_AVAILABLE, fit_error
from kubeling.scheduler.nodes import NodeUsage, PodLoad, Rejection, least_allocated_score, pod_load
from kubeling.scheduler.volumes import (
    ANN_BOUND_BY_CONTROLLER,
    ANN_SELECTED_NODE,
    ERR_UNBOUND_IMMEDIATE,
    BindingError,
    NodeVolumes,
    PodClaims,
    VolumeError,
    check_bindings,
    claim_key,
    explain_unbound_immediate,
    find_pod_volumes,
    pod_claim_refs,
    prefilter,
)

log = logging.getLogger(__name__)

SCHEDULER_NAME: Final = "default-scheduler"
COMPONENT: Final = "default-scheduler"
BIND_TIMEOUT: Final = 600.0
"""upstream's VolumeBinding ``bindTimeoutSeconds`` default"""
INITIAL_BACKOFF: Final = 1.0
MAX_BACKOFF: Final = 10.0
UNSCHEDULABLE_FLUSH: Final = 300.0
"""upstream's ``podMaxInUnschedulablePodsDuration``"""

ERR_RWOP_CONFLICT: Final = (
    "node has pod using PersistentVolumeClaim with the same name and ReadWriteOncePod access mode"
)
REASON_UNSCHEDULABLE: Final = "Unschedulable"
REASON_SCHEDULER_ERROR: Final = "SchedulerError"
REASON_GATED: Final = "SchedulingGated"
GATED_MESSAGE: Final = "Scheduling is blocked due to non-empty scheduling gates"

_IDX_CLAIM: Final = "scheduler:claim"
_IDX_CLASS: Final = "scheduler:class"


class BuildContext(Protocol):
    """The parts of the controller manager's context the scheduler uses."""

    client: Client
    informers: SharedInformerFactory
    options: dict[str, object]

    def recorder(self, component: str) -> EventRecorder: ...


@dataclass(kw_only=True)
class _Failure:
    attempts: int
    at: float
    has_claims: bool


@dataclass(kw_only=True)
class _PendingBind:
    """A pod assumed on ``node`` whose claims are being bound (upstream's PreBind wait)."""

    node: str
    uid: str
    bindings: list[tuple[str, str, int]] = field(default_factory=list)
    provisions: list[tuple[str, int]] = field(default_factory=list)
    deadline: float = 0.0

    def claims(self) -> set[str]:
        return {k for k, _, _ in self.bindings} | {k for k, _ in self.provisions}

    def volumes(self) -> set[str]:
        return {v for _, v, _ in self.bindings}


def _terminal(pod: Obj) -> bool:
    return (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed")


def _node_name(pod: Obj) -> str:
    return str((pod.get("spec") or {}).get("nodeName") or "")


def _pod_claim_keys(pod: Obj) -> list[str]:
    ns = objects.namespace(pod)
    return [f"{ns}/{name}" for name, _ in pod_claim_refs(pod)]


def _pod_view(pod: Obj) -> tuple[Any, ...]:
    """What about a pod can change its own scheduling (its status cannot)."""
    return (
        pod.get("spec"),
        objects.labels(pod),
        objects.annotations(pod),
        objects.deletion_timestamp(pod),
    )


def _node_view(node: Obj) -> tuple[Any, ...]:
    """What about a node can change a scheduling decision (heartbeats do not)."""
    spec = node.get("spec") or {}
    status = node.get("status") or {}
    return (
        sorted(objects.labels(node).items()),
        bool(spec.get("unschedulable")),
        repr(spec.get("taints") or []),
        sorted((status.get("allocatable") or {}).items()),
        nodefilters.ready_status(node),
    )


class Scheduler(Controller):
    """``default-scheduler``: place pods on nodes."""

    name = "scheduler"

    def __init__(
        self,
        *,
        client: Client,
        informers: SharedInformerFactory,
        recorder: EventRecorder,
        scheduler_name: str = SCHEDULER_NAME,
        bind_timeout: float = BIND_TIMEOUT,
        initial_backoff: float = INITIAL_BACKOFF,
        max_backoff: float = MAX_BACKOFF,
    ) -> None:
        super().__init__(name="scheduler", workers=1)
        self.client = client
        self.recorder = recorder
        self.scheduler_name = scheduler_name
        self.bind_timeout = bind_timeout
        self.initial_backoff = initial_backoff
        self.max_backoff = max_backoff
        self.pods = informers.informer(PODS)
        self.nodes = informers.informer(NODES)
        self.claims = informers.informer(PERSISTENTVOLUMECLAIMS)
        self.volumes = informers.informer(PERSISTENTVOLUMES)
        self.classes = informers.informer(STORAGECLASSES)
        self.pods.add_index(_IDX_CLAIM, _pod_claim_keys)
        self.volumes.add_index(_IDX_CLASS, lambda pv: [objects.volume_class(pv)])
        self._unschedulable: dict[str, _Failure] = {}
        self._assumed: dict[str, str] = {}
        """pod key → node, for pods placed by us but not yet seen bound in the cache"""
        self._loads: dict[str, tuple[str, PodLoad]] = {}
        """pod key → (node, load) for every pod counted on a node: bound or assumed"""
        self._usage_by_node: dict[str, NodeUsage] = {}
        self._binding: dict[str, _PendingBind] = {}
        self._reserved: dict[str, str] = {}
        """volume → claim key, for static bindings in flight"""
        self._cluster_events = 0
        """bumped by every change that may make pods schedulable; a cycle that saw it move
        retries after the backoff instead of waiting for the next change (upstream's
        moveRequestCycle), since the change may have come too late for its snapshot"""
        self._cycle_events = 0

        self.pods.add_handler(
            on_add=self._pod_added, on_update=self._pod_updated, on_delete=self._pod_deleted
        )
        self.nodes.add_handler(on_add=self._node_added, on_update=self._node_updated)
        self.claims.add_handler(
            on_add=self._claim_changed,
            on_update=lambda _old, new: self._claim_changed(new),
            on_delete=self._claim_changed,
        )
        self.volumes.add_handler(
            on_add=self._volume_changed,
            on_update=lambda _old, new: self._volume_changed(new),
            on_delete=self._volume_changed,
        )
        self.classes.add_handler(
            on_add=self._class_changed, on_update=lambda _old, new: self._class_changed(new)
        )
        for informer in (self.pods, self.nodes, self.claims, self.volumes, self.classes):
            self.wait_for(informer)

    # -- which pods are ours -------------------------------------------------------------------

    def responsible_for(self, pod: Obj) -> bool:
        spec = pod.get("spec") or {}
        return (
            not spec.get("nodeName")
            and (spec.get("schedulerName") or SCHEDULER_NAME) == self.scheduler_name
            and not objects.deletion_timestamp(pod)
            and not _terminal(pod)
        )

    # -- event handlers: what re-queues which pods ----------------------------------------------

    def _now(self) -> float:
        return asyncio.get_running_loop().time()

    def _backoff(self, attempts: int) -> float:
        if attempts <= 0:
            return 0.0
        return min(self.initial_backoff * float(2 ** (attempts - 1)), self.max_backoff)

    def _retry(self, key: str) -> None:
        """Move an unschedulable pod back to the queue, once its backoff has passed."""
        failure = self._unschedulable.get(key)
        if failure is None:
            return
        delay = failure.at + self._backoff(failure.attempts) - self._now()
        self.queue.add_after(key, max(delay, 0.0))

    def _retry_all(self, *, with_claims_only: bool = False) -> None:
        self._cluster_events += 1
        for key, failure in list(self._unschedulable.items()):
            if with_claims_only and not failure.has_claims:
                continue
            self._retry(key)

    def _account(self, key: str, node: str, load: PodLoad) -> None:
        self._unaccount(key)
        self._loads[key] = (node, load)
        self._usage_by_node.setdefault(node, NodeUsage()).add_load(load)

    def _unaccount(self, key: str) -> None:
        entry = self._loads.pop(key, None)
        if entry is not None:
            node, load = entry
            self._usage_by_node[node].remove_load(load)
            if self._usage_by_node[node].pods == 0:
                del self._usage_by_node[node]

    def _track(self, pod: Obj) -> None:
        """Keep the per-node usage in step with a pod the cache just changed."""
        key = object_key(pod)
        node = _node_name(pod)
        if node and not _terminal(pod):
            current = self._loads.get(key)
            if current is None or current[0] != node or key in self._assumed:
                self._account(key, node, pod_load(pod))
        elif node or key not in self._assumed:
            self._unaccount(key)

    def _forget_assumed(self, key: str) -> None:
        if self._assumed.pop(key, None) is None:
            return
        pod = self.pods.get(key)
        if pod is None or not _node_name(pod):
            self._unaccount(key)

    def _pod_added(self, pod: Obj) -> None:
        self._track(pod)
        if self.responsible_for(pod):
            self.enqueue(object_key(pod))

    def _pod_updated(self, old: Obj, pod: Obj) -> None:
        key = object_key(pod)
        self._track(pod)
        if _node_name(pod):
            self._assumed.pop(key, None)
            self._unschedulable.pop(key, None)
            pending = self._binding.pop(key, None)
            if pending is not None:
                self._release(pending)  # bound by someone else meanwhile
            if _terminal(pod) and not _terminal(old):
                self._retry_all()  # its requests are free again
            return
        if key in self._binding:
            self.enqueue(key)
        elif key in self._unschedulable:
            # upstream's isPodUpdated: our own status write (or any status change) is no
            # reason to try again; a change to the spec, labels or annotations is
            if _pod_view(old) != _pod_view(pod):
                self._retry(key)
        elif self.responsible_for(pod):
            self.enqueue(key)

    def _pod_deleted(self, pod: Obj) -> None:
        key = object_key(pod)
        self._unschedulable.pop(key, None)
        self._unaccount(key)
        assumed = self._assumed.pop(key, None)
        pending = self._binding.pop(key, None)
        if pending is not None:
            self._release(pending)
        if _node_name(pod) or assumed is not None:
            self._retry_all()

    def _node_added(self, _node: Obj) -> None:
        self._retry_all()

    def _node_updated(self, old: Obj, new: Obj) -> None:
        if _node_view(old) != _node_view(new):
            self._retry_all()
        for key, pending in self._binding.items():
            if pending.node == objects.name(new):
                self.enqueue(key)

    def _claim_changed(self, claim: Obj) -> None:
        ckey = object_key(claim)
        self._cluster_events += 1
        for key in self.pods.index_keys(_IDX_CLAIM, ckey):
            if key in self._unschedulable:
                self._retry(key)
        for key, pending in self._binding.items():
            if ckey in pending.claims():
                self.enqueue(key)

    def _volume_changed(self, pv: Obj) -> None:
        name = objects.name(pv)
        self._retry_all(with_claims_only=True)
        for key, pending in self._binding.items():
            if name in pending.volumes() or pending.provisions:
                self.enqueue(key)

    def _class_changed(self, _sc: Obj) -> None:
        self._retry_all(with_claims_only=True)

    # -- the cycle ------------------------------------------------------------------------------

    async def reconcile(self, key: str) -> None:
        self._cycle_events = self._cluster_events
        pod = self.pods.get(key)
        if pod is None:
            self._unschedulable.pop(key, None)
            return
        if key in self._binding:
            await self._continue_binding(key, pod)
            return
        if key in self._assumed:
            return  # bound by us a moment ago; the cache has not caught up yet
        if not self.responsible_for(pod):
            self._unschedulable.pop(key, None)
            return
        if (pod.get("spec") or {}).get("schedulingGates"):
            await self._set_condition(pod, reason=REASON_GATED, message=GATED_MESSAGE)
            return
        await self.schedule_one(key, pod)

    def _read_write_once_pod_conflict(self, key: str, claims: PodClaims) -> tuple[str, str] | None:
        """``VolumeRestrictions``: a ReadWriteOncePod claim another scheduled pod uses
        (claim key, kubeling's note), or None."""
        for claim in [*claims.bound, *claims.delayed, *claims.immediate]:
            if "ReadWriteOncePod" not in ((claim.get("spec") or {}).get("accessModes") or []):
                continue
            ckey = claim_key(claim)
            for other in self.pods.index_keys(_IDX_CLAIM, ckey):
                if other != key and other in self._loads:
                    node = self._loads[other][0]
                    return ckey, f"ReadWriteOncePod, in use by pod {other} on node {node}"
        return None

    async def schedule_one(self, key: str, pod: Obj) -> None:
        """One scheduling cycle for ``pod`` (public for tests)."""
        nodes = sorted(self.nodes.list(), key=objects.name)
        if not nodes:
            await self._unschedulable_pod(key, pod, NO_NODES_AVAILABLE)
            return
        lookup = _Lookup(self)
        claims = PodClaims()
        notes: dict[str, str] = {}
        prefilter_message = ""
        try:
            claims = prefilter(pod, lookup)
        except VolumeError as e:
            prefilter_message = str(e)
        else:
            if claims.immediate:
                prefilter_message = ERR_UNBOUND_IMMEDIATE
                for claim in claims.immediate:
                    notes[claim_key(claim)] = explain_unbound_immediate(claim, lookup)
        if prefilter_message:
            same = Rejection(reasons=(prefilter_message,))
            message = fit_error(
                pod,
                num_nodes=len(nodes),
                rejections={objects.name(n): same for n in nodes},
                prefilter_message=prefilter_message,
            )
            await self._unschedulable_pod(key, pod, _with_notes(message, notes))
            return

        usage = {
            objects.name(n): self._usage_by_node.get(objects.name(n)) or NodeUsage() for n in nodes
        }
        rejections: dict[str, Rejection] = {}
        plans: dict[str, NodeVolumes] = {}
        feasible: list[Obj] = []
        rwop = self._read_write_once_pod_conflict(key, claims)
        if rwop is not None:
            notes.setdefault(rwop[0], rwop[1])
        # TODO(#3): inter-pod affinity and anti-affinity, topology spread constraints, volume
        # count limits and preferred (soft) node affinity are not evaluated; pods that use
        # them are placed as if they had none.
        for node in nodes:
            name = objects.name(node)
            rejection: Rejection | None = (
                nodefilters.filter_unschedulable(pod, node)
                or nodefilters.filter_taints(pod, node)
                or nodefilters.filter_affinity(pod, node)
                or nodefilters.filter_ports(pod, usage[name])
                or nodefilters.filter_resources(pod, node, usage[name])
                or (Rejection(reasons=(ERR_RWOP_CONFLICT,), resolvable=True) if rwop else None)
            )
            if rejection is None and not claims.empty:
                plan = find_pod_volumes(claims, node, lookup, reserved=self._reserved)
                if plan.reasons:
                    rejection = Rejection(reasons=tuple(plan.reasons))
                    for claim, text in plan.conflicts:
                        notes.setdefault(claim_key(claim), text)
                else:
                    plans[name] = plan
            if rejection is not None:
                rejections[name] = rejection
            else:
                feasible.append(node)
        if not feasible:
            message = fit_error(pod, num_nodes=len(nodes), rejections=rejections)
            await self._unschedulable_pod(key, pod, _with_notes(message, notes))
            return

        # highest score first; ties go to the first node by name, so placement is
        # reproducible (upstream picks among ties at random)
        best = min(
            feasible,
            key=lambda n: (-least_allocated_score(pod, n, usage[objects.name(n)]), objects.name(n)),
        )
        node_name = objects.name(best)
        self._assumed[key] = node_name
        self._account(key, node_name, pod_load(pod))
        chosen = plans.get(node_name)
        if chosen is not None and (chosen.bindings or chosen.provisions):
            await self._start_volume_binding(key, pod, node_name, chosen)
            return
        await self._bind(key, pod, node_name)

    # -- volume binding (assume, write, wait) ------------------------------------------------

    async def _start_volume_binding(
        self, key: str, pod: Obj, node_name: str, plan: NodeVolumes
    ) -> None:
        pending = _PendingBind(
            node=node_name, uid=objects.uid(pod), deadline=self._now() + self.bind_timeout
        )
        self._binding[key] = pending
        try:
            for claim, pv in plan.bindings:
                ckey = claim_key(claim)
                self._reserved[objects.name(pv)] = ckey
                spec = pv.setdefault("spec", {})
                spec["claimRef"] = objects.claim_reference(claim)
                objects.ensure_meta(pv).setdefault("annotations", {})[ANN_BOUND_BY_CONTROLLER] = (
                    "yes"
                )
                written = await self.client.update(PERSISTENTVOLUMES, pv)
                pending.bindings.append((ckey, objects.name(pv), _rv(written)))
                log.info(
                    "Scheduler bound volume %s to claim %s for pod %s.", objects.name(pv), ckey, key
                )
            for claim in plan.provisions:
                ckey = claim_key(claim)
                annotations = objects.ensure_meta(claim).setdefault("annotations", {})
                if annotations.get(ANN_SELECTED_NODE) != node_name:
                    annotations[ANN_SELECTED_NODE] = node_name
                    written = await self.client.update(PERSISTENTVOLUMECLAIMS, claim)
                    log.info(
                        "Scheduler selected node %s for claim %s of pod %s.", node_name, ckey, key
                    )
                else:
                    written = claim
                pending.provisions.append((ckey, _rv(written)))
        except StatusError as e:
            await self._abort_binding(
                key, pod, f'running PreBind plugin "VolumeBinding": binding volumes: {e}'
            )
            return
        await self._continue_binding(key, pod)

    async def _continue_binding(self, key: str, pod: Obj) -> None:
        pending = self._binding.get(key)
        if pending is None:
            return
        if objects.uid(pod) != pending.uid or _node_name(pod) or objects.deletion_timestamp(pod):
            self._binding.pop(key, None)
            self._release(pending)
            self._forget_assumed(key)
            if self.responsible_for(pod):
                self.enqueue(key)
            return
        node = self.nodes.get(pending.node)
        try:
            if node is None:
                raise BindingError(f'node "{pending.node}" not found')
            done = check_bindings(
                bindings=pending.bindings,
                provisions=pending.provisions,
                node=node,
                lookup=_Lookup(self),
            )
        except BindingError as e:
            await self._abort_binding(
                key, pod, f'running PreBind plugin "VolumeBinding": binding volumes: {e}'
            )
            return
        if done:
            self._binding.pop(key, None)
            self._release(pending)
            await self._bind(key, pod, pending.node)
        elif self._now() >= pending.deadline:
            await self._abort_binding(
                key,
                pod,
                'running PreBind plugin "VolumeBinding": binding volumes: context deadline exceeded',
            )
        else:
            # a delayed add keeps only the earliest wake-up: re-arm the deadline each time
            self.queue.add_after(key, pending.deadline - self._now())

    def _release(self, pending: _PendingBind) -> None:
        for volume in pending.volumes():
            self._reserved.pop(volume, None)

    async def _abort_binding(self, key: str, pod: Obj, message: str) -> None:
        pending = self._binding.pop(key, None)
        if pending is not None:
            self._release(pending)
        self._forget_assumed(key)
        await self._unschedulable_pod(key, pod, message, reason=REASON_SCHEDULER_ERROR)

    # -- outcomes -----------------------------------------------------------------------------

    async def _bind(self, key: str, pod: Obj, node_name: str) -> None:
        namespace, name = split_key(key)
        binding = {
            "apiVersion": "v1",
            "kind": "Binding",
            "metadata": {"name": name, "namespace": namespace, "uid": objects.uid(pod)},
            "target": {"apiVersion": "v1", "kind": "Node", "name": node_name},
        }
        try:
            await self.client.create(
                PODS, binding, namespace=namespace, name=name, subresource="binding"
            )
        except (Conflict, NotFound) as e:
            # Assigned by someone else, deleted or replaced meanwhile: nothing to retry.
            self._forget_assumed(key)
            log.info("Scheduler could not bind pod %s to %s: %s", key, node_name, e)
            return
        except StatusError as e:
            self._forget_assumed(key)
            await self._unschedulable_pod(
                key, pod, f"Binding rejected: {e}", reason=REASON_SCHEDULER_ERROR
            )
            return
        self._unschedulable.pop(key, None)
        log.info("Scheduler bound pod %s to node %s.", key, node_name)
        self.recorder.event(pod, NORMAL, "Scheduled", f"Successfully assigned {key} to {node_name}")

    async def _unschedulable_pod(
        self, key: str, pod: Obj, message: str, *, reason: str = REASON_UNSCHEDULABLE
    ) -> None:
        previous = self._unschedulable.get(key)
        attempts = previous.attempts + 1 if previous else 1
        self._unschedulable[key] = _Failure(
            attempts=attempts, at=self._now(), has_claims=bool(pod_claim_refs(pod))
        )
        log.debug("Pod %s is unschedulable: %s", key, message)
        self.recorder.event(pod, WARNING, "FailedScheduling", message)
        await self._set_condition(pod, reason=reason, message=message)
        if reason != REASON_UNSCHEDULABLE or self._cluster_events != self._cycle_events:
            # an error, or the cluster changed during the cycle: retry after the backoff
            self._retry(key)
        else:
            # the periodic flush of upstream's unschedulable pods
            self.queue.add_after(key, UNSCHEDULABLE_FLUSH)

    async def _set_condition(self, pod: Obj, *, reason: str, message: str) -> None:
        conditions = (pod.get("status") or {}).get("conditions")
        current = objects.get_condition(conditions, "PodScheduled")
        if (
            current is not None
            and current.get("status") == "False"
            and current.get("reason") == reason
            and current.get("message") == message
        ):
            return
        updated = objects.set_condition(
            conditions, "PodScheduled", "False", reason=reason, message=message
        )
        entry = objects.get_condition(updated, "PodScheduled")
        assert entry is not None
        entry = {**entry, "lastProbeTime": None}
        try:
            await self.client.patch(
                PODS,
                name=objects.name(pod),
                namespace=objects.namespace(pod),
                subresource="status",
                patch={"status": {"conditions": [entry]}},
                patch_type="strategic",
            )
        except NotFound:
            return


def _rv(obj: Obj) -> int:
    try:
        return int(objects.resource_version(obj) or 0)
    except ValueError:
        return 0


def _with_notes(message: str, notes: dict[str, str]) -> str:
    """Upstream's message, then kubeling's sentence naming each claim and why."""
    if not notes:
        return message
    text = "; ".join(f"claim {key}: {why}" for key, why in sorted(notes.items()))
    return f"{message} {text[0].upper()}{text[1:]}."


class _Lookup:
    """``VolumeLookup`` over the scheduler's informers."""

    def __init__(self, scheduler: Scheduler) -> None:
        self.s = scheduler

    def claim(self, namespace: str, name: str) -> Obj | None:
        return self.s.claims.get_by_name(name=name, namespace=namespace)

    def volume(self, name: str) -> Obj | None:
        return self.s.volumes.get_by_name(name=name)

    def storage_class(self, name: str) -> Obj | None:
        return self.s.classes.get_by_name(name=name)

    def volumes_of_class(self, class_name: str) -> list[Obj]:
        return self.s.volumes.by_index(_IDX_CLASS, class_name)

    def all_volumes(self) -> list[Obj]:
        return self.s.volumes.list()


def build(ctx: BuildContext) -> Scheduler:
    """The controller manager's entry point (``BUILDERS["scheduler"]``)."""
    options = ctx.options.get("scheduler") or {}
    assert isinstance(options, dict)
    return Scheduler(
        client=ctx.client,
        informers=ctx.informers,
        recorder=ctx.recorder(COMPONENT),
        bind_timeout=float(options.get("bind_timeout", BIND_TIMEOUT)),
        initial_backoff=float(options.get("initial_backoff", INITIAL_BACKOFF)),
        max_backoff=float(options.get("max_backoff", MAX_BACKOFF)),
    )
