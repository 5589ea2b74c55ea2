"""The StatefulSet controller's sync: upstream's ``StatefulSetController`` and
``defaultStatefulSetControl`` (with ``StatefulPodControl``) over kubeling's client.

One worker owns a set's key at a time; each sync reads pods, claims and revisions from the
shared informers, writes through the API and lets the runner retry on errors. See the
package docstring for the behaviour and where it deliberately differs from upstream.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from kubeling.client.controller import Controller, resolve_controller_ref, retry_on_conflict
from kubeling.client.events import NORMAL, WARNING, EventRecorder
from kubeling.client.informer import Informer, SharedInformerFactory, object_key
from kubeling.client.interface import Client
from kubeling.controllers import history
from kubeling.controllers.statefulset.utils import (
    COMPONENT,
    RETAIN,
    SET_API_VERSION,
    SET_KIND,
    Revisions,
    Status,
    SyncError,
    allows_burst,
    apply_revision,
    claim_name,
    claim_owner_up_to_date,
    claim_templates,
    claims_for,
    controller_ref,
    has_stale_owner_ref,
    has_unexpected_controller,
    identity_matches,
    is_available,
    is_created,
    is_healthy,
    is_member_of,
    is_running_and_ready,
    is_terminating,
    max_unavailable_of,
    new_revision,
    new_versioned_pod,
    ordinal_of,
    partition_of,
    phase,
    pod_revision,
    retention_policy,
    run_for_all,
    spec_of,
    spec_replicas,
    start_ordinal,
    status_changed,
    storage_matches,
    update_claim_owner_refs,
    update_identity,
    update_storage,
    update_strategy,
)
from kubeling.machinery import objects as o
from kubeling.machinery.errors import AlreadyExists, Conflict, NotFound, StatusError
from kubeling.machinery.resources import (
    CONTROLLERREVISIONS,
    PERSISTENTVOLUMECLAIMS,
    PODS,
    STATEFULSETS,
)
from kubeling.machinery.selectors import LabelSelector, SelectorError, label_selector_from_object
from kubeling.machinery.types import Obj, ResourceInfo

if TYPE_CHECKING:
    from kubeling.controllers.manager import ControllerContext

log = logging.getLogger(__name__)


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
        max_unavailable: bool = False,
    ) -> None:
        super().__init__(workers=workers)
        self.client = client
        self.recorder = recorder or EventRecorder(client, component=COMPONENT)
        self.replace_broken_pods = replace_broken_pods
        """Replace unready pods at an outdated revision without waiting (see module doc)."""
        self.max_unavailable = max_unavailable
        """Honour ``rollingUpdate.maxUnavailable``: upstream's MaxUnavailableStatefulSet
        feature gate, alpha and off by default in v1.32, so off by default here too."""
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

    def _set_for_ref(self, pod: Obj) -> str | None:
        """``resolveControllerRef``: the key of the set controlling ``pod``, if it is ours
        (of the apps group too, which upstream's kind-only check leaves out)."""
        ref = o.controller_ref(pod)
        if ref is not None and str(ref.get("apiVersion", "")).split("/")[0] != STATEFULSETS.group:
            return None
        return resolve_controller_ref(self.sets, pod, kind=SET_KIND)

    def _sets_selecting(self, pod: Obj) -> list[str]:
        """``getPodStatefulSets``: sets in the pod's namespace whose selector matches it."""
        keys: list[str] = []
        for sts in self.sets.list(namespace=o.namespace(pod)):
            try:
                selector = label_selector_from_object(spec_of(sts).get("selector"))
            except SelectorError:
                continue
            if not selector.empty and selector.matches(o.labels(pod)):
                keys.append(object_key(sts))
        return keys

    def _pod_added(self, pod: Obj) -> None:
        key = self._set_for_ref(pod)
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
            old_key = self._set_for_ref(old)
            if old_key is not None:
                self.enqueue(old_key)
        key = self._set_for_ref(new)
        if key is not None:
            self.enqueue(key)
            sts = self.sets.peek(key)
            min_ready = int(spec_of(sts or {}).get("minReadySeconds") or 0)
            if min_ready > 0 and not o.is_pod_ready(old) and o.is_pod_ready(new):
                # Upstream adds a second: readiness times are whole seconds.
                self.enqueue_after(key, float(min_ready + 1))
            return
        if new_ref is None and (o.labels(old) != o.labels(new) or old_ref != new_ref):
            for key in self._sets_selecting(new):
                self.enqueue(key)

    def _pod_deleted(self, pod: Obj) -> None:
        key = self._set_for_ref(pod)
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
            selector = label_selector_from_object(spec_of(sts).get("selector"))
        except SelectorError as e:
            # Not transient: the set must be fixed first (upstream does not retry either).
            log.warning("StatefulSet %s has an invalid selector: %s.", key, e)
            return
        revisions = await self._revisions_for(sts, selector)
        pods = await self._claim_pods(sts, selector)
        status = await self._update_set(sts, pods, revisions)
        min_ready = int(spec_of(sts).get("minReadySeconds") or 0)
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
                adopted = await self._adopt(sts, CONTROLLERREVISIONS, rev)
                if adopted is not None:
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
            adopted = await self._adopt(sts, PODS, pod)
            if adopted is not None:
                out.append(adopted)
        return out

    async def _adopt(self, sts: Obj, resource: ResourceInfo, obj: Obj) -> Obj | None:
        """Make ``sts`` the controller of an orphan pod or revision; the uid precondition
        keeps a same-named replacement from being adopted by mistake."""
        try:
            adopted = await self.client.patch(
                resource,
                name=o.name(obj),
                namespace=o.namespace(obj),
                patch={"metadata": {"ownerReferences": [controller_ref(sts)], "uid": o.uid(obj)}},
                patch_type="strategic",
            )
        except NotFound:
            return None
        log.info(
            "StatefulSet %s adopted %s %s.", o.namespaced_name(sts), resource.kind, o.name(obj)
        )
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
        # status is None only when _perform_update failed, and then its error is listed.
        if status is not None and not errors:
            return status
        if len(errors) == 1:
            raise errors[0]
        raise SyncError.join([str(e) for e in errors])

    async def _set_revisions(self, sts: Obj, revisions: list[Obj]) -> Revisions:
        """``getStatefulSetRevisions``: find or create the update revision (re-numbering an
        equal older one, which is a rollback) and the current one."""
        collision_count = int((sts.get("status") or {}).get("collisionCount") or 0)
        candidate = new_revision(
            sts, number=history.next_revision(revisions), collision_count=collision_count
        )
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
                self.client, sts, revision=candidate, collision_count=collision_count
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
        min_ready = int(spec_of(sts).get("minReadySeconds") or 0)
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
                current_set=sync.current_set,
                update_set=sync.update_set,
                current_revision=revs.current_name,
                update_revision=revs.update_name,
                ordinal=start + i,
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
            return await self._process_replica(sync, i, monotonic=monotonic)

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
            return await self._process_condemned(sync, i, monotonic=monotonic)

        if await run_for_all(len(sync.condemned), condemned_step, monotonic=monotonic):
            recount()
            return
        recount()
        stype, _ = update_strategy(sts)
        if stype == "OnDelete":
            return
        await self._rolling_update(sync)

    async def _process_replica(self, sync: _Sync, i: int, *, monotonic: bool) -> bool:
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
        if not is_available(pod, int(spec_of(sts).get("minReadySeconds") or 0)) and monotonic:
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

    async def _process_condemned(self, sync: _Sync, i: int, *, monotonic: bool) -> bool:
        """``processCondemned``: delete surplus pods, highest ordinal first when ordered."""
        pod = sync.condemned[i]
        if is_terminating(pod):
            return monotonic
        first = sync.first_unhealthy is pod
        if not is_running_and_ready(pod) and monotonic and not first:
            return True
        min_ready = int(spec_of(sync.sts).get("minReadySeconds") or 0)
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
        if self.max_unavailable:
            await self._rolling_update_max_unavailable(sync)
            return
        _, rolling = update_strategy(sync.sts)
        update_min = int((rolling or {}).get("partition") or 0)
        for target in range(len(sync.replicas) - 1, update_min - 1, -1):
            pod = sync.replicas[target]
            if pod_revision(pod) != sync.revisions.update_name and not is_terminating(pod):
                await self._delete_for_update(sync, pod)
                return
            if not is_healthy(pod):
                return

    async def _rolling_update_max_unavailable(self, sync: _Sync) -> None:
        """``updateStatefulSetAfterInvariantEstablished`` (the MaxUnavailableStatefulSet
        gate): replace up to ``maxUnavailable`` pods at once, counting the unhealthy ones."""
        _, rolling = update_strategy(sync.sts)
        update_min = int((rolling or {}).get("partition") or 0)
        allowed = max_unavailable_of(sync.sts)
        unavailable = sum(1 for pod in sync.replicas if not is_healthy(pod))
        if unavailable >= allowed:
            log.debug(
                "StatefulSet %s has %d unavailable pods (maxUnavailable %d); waiting.",
                o.namespaced_name(sync.sts),
                unavailable,
                allowed,
            )
            return
        budget = allowed - unavailable
        for target in range(len(sync.replicas) - 1, update_min - 1, -1):
            if budget <= 0:
                return
            pod = sync.replicas[target]
            if pod_revision(pod) != sync.revisions.update_name and not is_terminating(pod):
                await self._delete_for_update(sync, pod)
                budget -= 1

    async def _delete_for_update(self, sync: _Sync, pod: Obj) -> None:
        """Delete an out-of-date replica; the next pass recreates it at the update revision."""
        log.info(
            "Pod %s of StatefulSet %s is terminating for update to revision %s.",
            o.name(pod),
            o.namespaced_name(sync.sts),
            sync.revisions.update_name,
        )
        await self._delete_pod(sync.sts, pod, missing_ok=True)
        sync.status.current_replicas -= 1

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
            try:
                existing = await self.client.get(PODS, name=o.name(pod), namespace=o.namespace(pod))
            except NotFound:
                existing = {}
            if o.is_controlled_by(existing, sts):
                # Ours, created moments ago: the cache is behind and its event is coming.
                log.debug("Pod %s already exists; waiting for the cache.", o.name(pod))
                return False
            raise  # someone else's pod holds the name: retried with backoff, as upstream
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
        if not status_changed(sts, status):
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
        limit = spec_of(sts).get("revisionHistoryLimit")
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
    options = ctx.options.get("statefulset")
    gates = options if isinstance(options, dict) else {}
    return StatefulSetController(
        ctx.client,
        ctx.informers,
        recorder=ctx.recorder(COMPONENT),
        max_unavailable=bool(gates.get("MaxUnavailableStatefulSet", False)),
    )
