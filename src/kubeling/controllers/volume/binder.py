"""The PersistentVolume binder: upstream's PV controller (binding, reclaim, provisioning hand-off).

It follows ``pv_controller.go`` decision for decision, so its tables can be read side by side
with upstream's: ``sync_claim`` splits on the ``bind-completed`` annotation into the unbound
and bound claim tables, ``sync_volume`` is ``syncVolume``; ``bind`` writes the four steps
in upstream's order (volume claimRef, volume status, claim volumeName + annotations, claim
status), each skipped when already done, so a crash between any two writes is completed
by the next sync of either object.

Design choices: one work queue carries both kinds (``claim:<ns>/<name>`` and
``volume:<name>`` keys), so a claim and a volume are never synced at the same time and the
binder's caches need no locks; every write goes back into those caches at once (newest
resourceVersion wins) so the next sync does not act on the informer's older copy; the
match is an index lookup (``index.VolumeIndex``), not a scan; reclaim operations run inline
in the volume's sync (their filesystem work in a thread) instead of upstream's goroutine
map, which the single queue makes unnecessary. A periodic full resync (upstream's
``--pvclaimbinder-sync-period``, 15 s) is the safety net for anything a watch missed.

kubeling's addition: when an unbound claim with no class finds nothing, the FailedBinding
event names the closest volumes and why each was refused.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any, Final

from kubeling.client.controller import Controller
from kubeling.client.events import NORMAL, WARNING, EventRecorder
from kubeling.client.informer import SharedInformerFactory
from kubeling.client.interface import Client
from kubeling.controllers.volume import index as ix
from kubeling.controllers.volume.index import (
    ANN_BETA_STORAGE_PROVISIONER,
    ANN_BIND_COMPLETED,
    ANN_BOUND_BY_CONTROLLER,
    ANN_MIGRATED_TO,
    ANN_PROVISIONED_BY,
    ANN_SELECTED_NODE,
    ANN_STORAGE_PROVISIONER,
    ObjectCache,
    VolumeIndex,
    claim_class_unset,
    claim_key,
    claim_ref,
    claim_ref_key,
    has_annotation,
    phase,
    spec,
)
from kubeling.controllers.volume.reclaim import Plugins, PluginSetupError, VolumeInUseError
from kubeling.machinery import objects as o
from kubeling.machinery.errors import NotFound
from kubeling.machinery.objects import claim_class
from kubeling.machinery.resources import (
    PERSISTENTVOLUMECLAIMS,
    PERSISTENTVOLUMES,
    PODS,
    STORAGECLASSES,
)
from kubeling.machinery.types import Obj

log = logging.getLogger(__name__)

COMPONENT: Final = "persistentvolume-controller"
LOCAL_PATH_PROVISIONER: Final = "kubeling.io/local-path"
BUILTIN_PROVISIONERS: Final = frozenset({LOCAL_PATH_PROVISIONER})
PV_CONTROLLER_FINALIZER: Final = "kubernetes.io/pv-controller"
DEFAULT_RESYNC_PERIOD: Final = 15.0

NO_CLASS_MESSAGE: Final = (
    "no persistent volumes available for this claim and no storage class is set"
)
CLAIM_LOST_REFERENCE: Final = (
    "Bound claim has lost reference to PersistentVolume. Data on the volume is lost!"
)
CLAIM_LOST_VOLUME: Final = "Bound claim has lost its PersistentVolume. Data on the volume is lost!"
CLAIM_MISBOUND: Final = "Two claims are bound to the same volume, this one is bound incorrectly"
WAIT_FOR_FIRST_CONSUMER: Final = "waiting for first consumer to be created before binding"
EXTERNAL_PROVISIONING: Final = (
    "Waiting for a volume to be created either by the external provisioner '%s' or manually "
    "by the system administrator. If volume creation is delayed, please verify that the "
    "provisioner is running and correctly registered."
)

CLAIM_PREFIX: Final = "claim:"
VOLUME_PREFIX: Final = "volume:"


class BindingError(Exception):
    """A state the controller cannot resolve (upstream returns an error from the sync)."""


def _pod_key(pod: Obj) -> str:
    return f"{o.namespace(pod)}/{o.name(pod)}"


def pod_claim_names(pod: Obj) -> list[str]:
    """Claims a pod's volumes refer to: ``persistentVolumeClaim`` volumes and generic
    ephemeral volumes (whose claim is ``<pod>-<volume>``)."""
    names: list[str] = []
    for volume in (pod.get("spec") or {}).get("volumes") or []:
        pvc = volume.get("persistentVolumeClaim")
        if isinstance(pvc, dict) and pvc.get("claimName"):
            names.append(str(pvc["claimName"]))
        elif volume.get("ephemeral") is not None:
            names.append(f"{o.name(pod)}-{volume.get('name', '')}")
    return names


def pod_terminated(pod: Obj) -> bool:
    """``IsPodTerminated``: phase Failed or Succeeded."""
    return (pod.get("status") or {}).get("phase") in ("Failed", "Succeeded")


class Draft:
    """A copy of a cached object made on the first change, so a sync that changes
    nothing (the periodic resync of a bound pair) copies nothing."""

    def __init__(self, original: Obj) -> None:
        self.original = original
        self._copy: Obj | None = None

    @property
    def obj(self) -> Obj:
        if self._copy is None:
            self._copy = o.deep_copy(self.original)
        return self._copy

    @property
    def dirty(self) -> bool:
        return self._copy is not None


class PodsByClaim:
    """Pods by the ``namespace/claim`` keys of the claims they use."""

    def __init__(self) -> None:
        self._pods: dict[str, Obj] = {}
        self._by_claim: dict[str, set[str]] = {}
        self._claims_of: dict[str, list[str]] = {}

    def store(self, pod: Obj) -> None:
        key = _pod_key(pod)
        self.delete(pod)
        claims = [f"{o.namespace(pod)}/{c}" for c in pod_claim_names(pod)]
        if not claims:
            return
        self._pods[key] = pod
        self._claims_of[key] = claims
        for c in claims:
            self._by_claim.setdefault(c, set()).add(key)

    def delete(self, pod: Obj) -> None:
        key = _pod_key(pod)
        self._pods.pop(key, None)
        for c in self._claims_of.pop(key, []):
            keys = self._by_claim.get(c)
            if keys is not None:
                keys.discard(key)
                if not keys:
                    del self._by_claim[c]

    def using(self, claim: str) -> list[Obj]:
        return [self._pods[k] for k in sorted(self._by_claim.get(claim, ())) if k in self._pods]


class PersistentVolumeBinder(Controller):
    """Binds claims to volumes, reclaims released volumes, hands claims to provisioners."""

    name = "persistentvolume-binder"

    def __init__(
        self,
        *,
        client: Client,
        recorder: EventRecorder,
        informers: SharedInformerFactory | None = None,
        plugins: Plugins | None = None,
        resync_period: float = DEFAULT_RESYNC_PERIOD,
        explain_limit: int = 3,
    ) -> None:
        super().__init__()
        self.client = client
        self.recorder = recorder
        self.plugins = plugins or Plugins()
        self.resync_period = resync_period
        self.explain_limit = explain_limit
        self.volumes = VolumeIndex()
        self.claims = ObjectCache(claim_key)
        self.classes = ObjectCache(o.name)
        self.pods = PodsByClaim()
        self._waiting: dict[str, set[str]] = {}
        """Unbound claims that found no volume, by class: a new volume wakes them."""
        self._resync_task: asyncio.Task[None] | None = None
        if informers is not None:
            self._wire(informers)

    # --- wiring ------------------------------------------------------------------------------

    def _wire(self, informers: SharedInformerFactory) -> None:
        pvs = informers.informer(PERSISTENTVOLUMES)
        pvcs = informers.informer(PERSISTENTVOLUMECLAIMS)
        classes = informers.informer(STORAGECLASSES)
        pods = informers.informer(PODS)
        pvs.add_handler(
            on_add=self.on_volume,
            on_update=lambda _old, new: self.on_volume(new),
            on_delete=self.on_volume_deleted,
        )
        pvcs.add_handler(
            on_add=self.on_claim,
            on_update=lambda _old, new: self.on_claim(new),
            on_delete=self.on_claim_deleted,
        )
        classes.add_handler(
            on_add=self.on_class,
            on_update=lambda _old, new: self.on_class(new),
            on_delete=self.on_class_deleted,
        )
        pods.add_handler(
            on_add=lambda pod: self.pods.store(pod),
            on_update=lambda _old, new: self.pods.store(new),
            on_delete=lambda pod: self.pods.delete(pod),
        )
        for informer in (pvs, pvcs, classes, pods):
            self.wait_for(informer)

    def on_volume(self, volume: Obj) -> None:
        self.volumes.store(volume)
        self.enqueue(VOLUME_PREFIX + o.name(volume))
        self._wake_waiting_claims(volume)

    def _wake_waiting_claims(self, volume: Obj) -> None:
        """A volume that became usable re-queues the claims that found nothing last time,
        so they need not wait for the periodic resync (upstream waits up to 15 s)."""
        ref = claim_ref(volume)
        if ref is not None:
            if not ref.get("uid"):
                self.enqueue(CLAIM_PREFIX + claim_ref_key(ref))
            return
        if phase(volume) != "Available":
            return
        for key in sorted(self._waiting.pop(o.volume_class(volume), ())):
            self.enqueue(CLAIM_PREFIX + key)

    def on_volume_deleted(self, volume: Obj) -> None:
        self.volumes.delete(volume)
        ref = claim_ref(volume)
        if ref is not None:
            # the claim bound to it must notice (it becomes Lost)
            self.enqueue(CLAIM_PREFIX + claim_ref_key(ref))

    def on_claim(self, claim: Obj) -> None:
        self.claims.store(claim)
        self.enqueue(CLAIM_PREFIX + claim_key(claim))

    def on_claim_deleted(self, claim: Obj) -> None:
        self.claims.delete(claim)
        volume_name = spec(claim).get("volumeName")
        if volume_name:
            # its volume is released now
            self.enqueue(VOLUME_PREFIX + volume_name)

    def on_class(self, sc: Obj) -> None:
        self.classes.store(sc)
        if o.is_default_class(sc):
            # claims waiting without a class get the new default (retroactive default)
            for claim in self.claims:
                if claim_class_unset(claim) and not spec(claim).get("volumeName"):
                    self.enqueue(CLAIM_PREFIX + claim_key(claim))

    def on_class_deleted(self, sc: Obj) -> None:
        self.classes.delete(sc)

    async def load(self) -> None:
        """Replace the caches with live lists (tests drive syncs without informers)."""
        self.volumes = VolumeIndex()
        self.claims = ObjectCache(claim_key)
        self.classes = ObjectCache(o.name)
        self.pods = PodsByClaim()
        for resource, store in (
            (PERSISTENTVOLUMES, self.volumes.store),
            (PERSISTENTVOLUMECLAIMS, self.claims.store),
            (STORAGECLASSES, self.classes.store),
            (PODS, self.pods.store),
        ):
            listed = await self.client.list(resource)
            for item in listed.get("items") or []:
                item.setdefault("kind", resource.kind)
                item.setdefault("apiVersion", resource.api_version)
                store(item)

    # --- running -----------------------------------------------------------------------------

    async def run(self) -> None:
        if self.resync_period > 0:
            self._resync_task = asyncio.create_task(self._resync_loop(), name="pv resync")
        try:
            await super().run()
        finally:
            if self._resync_task is not None:
                self._resync_task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await self._resync_task

    async def _resync_loop(self) -> None:
        while True:
            await asyncio.sleep(self.resync_period)
            self.resync()

    def resync(self) -> None:
        """Queue every known claim and volume (upstream's periodic ``resync``)."""
        for claim in self.claims:
            self.enqueue(CLAIM_PREFIX + claim_key(claim))
        for volume in self.volumes:
            self.enqueue(VOLUME_PREFIX + o.name(volume))

    async def reconcile(self, key: str) -> None:
        if key.startswith(CLAIM_PREFIX):
            claim = self.claims.get(key[len(CLAIM_PREFIX) :])
            if claim is not None:
                await self.sync_claim(claim)
        elif key.startswith(VOLUME_PREFIX):
            volume = self.volumes.get(key[len(VOLUME_PREFIX) :])
            if volume is not None:
                await self.sync_volume(volume)

    # --- claims ------------------------------------------------------------------------------

    async def sync_claim(self, claim: Obj) -> None:
        """``syncClaim``: the unbound or the bound table, by ``bind-completed``."""
        if not has_annotation(claim, ANN_BIND_COMPLETED):
            await self._sync_unbound_claim(claim)
        else:
            await self._sync_bound_claim(claim)

    def is_delay_binding(self, claim: Obj) -> bool:
        cls = claim_class(claim)
        if not cls:
            return False
        sc = self.classes.get(cls)
        return sc is not None and sc.get("volumeBindingMode") == "WaitForFirstConsumer"

    def default_class(self) -> Obj | None:
        """``GetDefaultClass``: the newest default class (ties: name ascending)."""
        return o.default_class(self.classes)

    async def _sync_unbound_claim(self, claim: Obj) -> None:
        volume_name = spec(claim).get("volumeName") or ""
        if not volume_name:
            delay = self.is_delay_binding(claim)
            volume = self.volumes.find_best_match(claim, delay_binding=delay)
            if volume is not None:
                await self.bind(volume, claim)
                return
            self._waiting.setdefault(claim_class(claim), set()).add(claim_key(claim))
            if claim_class_unset(claim):
                default = self.default_class()
                if default is not None:
                    await self._assign_default_class(claim, default)
                    return
            if delay and not self._delay_provisioning(claim):
                self._emit_waiting(claim)
            elif claim_class(claim):
                await self.provision_claim(claim)
                return
            else:
                message = NO_CLASS_MESSAGE
                why = self.volumes.explain(claim, limit=self.explain_limit)
                if why:
                    message += f"; candidates: {why}"
                self.recorder.event(claim, NORMAL, "FailedBinding", message)
            await self._update_claim_status(claim, "Pending", None)
            return
        volume = self.volumes.get(volume_name)
        if volume is None:
            # the named volume may come later: stay Pending, no event
            await self._update_claim_status(claim, "Pending", None)
            return
        ref = claim_ref(volume)
        if ref is None:
            reason = ix.check_volume_satisfy_claim(volume, claim)
            if reason is not None:
                self.recorder.event(
                    claim,
                    WARNING,
                    "VolumeMismatch",
                    f'Cannot bind to requested volume "{volume_name}": {reason}',
                )
                await self._update_claim_status(claim, "Pending", None)
                return
            await self.bind(volume, claim)
            return
        if ix.is_volume_bound_to_claim(volume, claim):
            await self.bind(volume, claim)
            return
        if not has_annotation(claim, ANN_BOUND_BY_CONTROLLER):
            self.recorder.event(
                claim,
                WARNING,
                "FailedBinding",
                f'volume "{volume_name}" already bound to a different claim.',
            )
            await self._update_claim_status(claim, "Pending", None)
            return
        raise BindingError(
            f'invalid binding of claim "{claim_key(claim)}" to volume "{volume_name}": volume '
            f'already claimed by "{claim_ref_key(ref)}"'
        )

    @staticmethod
    def _delay_provisioning(claim: Obj) -> bool:
        """``IsDelayBindingProvisioning``: the scheduler chose a node for provisioning."""
        return bool(o.annotations(claim).get(ANN_SELECTED_NODE))

    def _emit_waiting(self, claim: Obj) -> None:
        waiting = [
            o.name(p)
            for p in self.pods.using(claim_key(claim))
            if not pod_terminated(p) and not (p.get("spec") or {}).get("nodeName")
        ]
        if len(waiting) > 1:
            reason, message = (
                "WaitForPodScheduled",
                f"waiting for pods {','.join(waiting)} to be scheduled",
            )
        elif waiting:
            reason, message = "WaitForPodScheduled", f"waiting for pod {waiting[0]} to be scheduled"
        else:
            reason, message = "WaitForFirstConsumer", WAIT_FOR_FIRST_CONSUMER
        self.recorder.event(claim, NORMAL, reason, message)

    async def _assign_default_class(self, claim: Obj, default: Obj) -> None:
        clone = o.deep_copy(claim)
        clone.setdefault("spec", {})["storageClassName"] = o.name(default)
        new = await self.client.update(PERSISTENTVOLUMECLAIMS, clone)
        self.claims.store(new)
        log.info(
            "Binder assigned the default StorageClass %s to claim %s.",
            o.name(default),
            claim_key(claim),
        )
        # the spec changed: sync again with the class (the informer would queue it too)
        self.enqueue(CLAIM_PREFIX + claim_key(claim))

    async def _sync_bound_claim(self, claim: Obj) -> None:
        volume_name = spec(claim).get("volumeName") or ""
        if not volume_name:
            await self._update_claim_status_with_event(
                claim, "Lost", None, WARNING, "ClaimLost", CLAIM_LOST_REFERENCE
            )
            return
        volume = self.volumes.get(volume_name)
        if volume is None:
            await self._update_claim_status_with_event(
                claim, "Lost", None, WARNING, "ClaimLost", CLAIM_LOST_VOLUME
            )
            return
        ref = claim_ref(volume)
        if ref is None or (ref.get("uid") or "") == o.uid(claim):
            await self.bind(volume, claim)
            return
        await self._update_claim_status_with_event(
            claim, "Lost", None, WARNING, "ClaimMisbound", CLAIM_MISBOUND
        )

    # --- provisioning hand-off ---------------------------------------------------------------

    async def provision_claim(self, claim: Obj) -> None:
        """``provisionClaim`` for a claim whose class names a provisioner: annotate the claim
        for the provisioner (kubeling's built-in one or an external one) to act on."""
        cls = claim_class(claim)
        sc = self.classes.get(cls)
        if sc is None:
            self.recorder.event(
                claim,
                WARNING,
                "ProvisioningFailed",
                f'storageclass.storage.k8s.io "{cls}" not found',
            )
            return
        provisioner = str(sc.get("provisioner") or "")
        if provisioner.startswith("kubernetes.io/"):
            # upstream's in-tree plugins; kubeling has no provisioning one of them
            self.recorder.event(
                claim,
                WARNING,
                "ProvisioningFailed",
                f"no volume plugin matched name: {provisioner}",
            )
            return
        claim = await self._set_claim_provisioner(claim, provisioner)
        if provisioner not in BUILTIN_PROVISIONERS:
            self.recorder.event(
                claim, NORMAL, "ExternalProvisioning", EXTERNAL_PROVISIONING % provisioner
            )

    async def _set_claim_provisioner(self, claim: Obj, provisioner: str) -> Obj:
        ann = o.annotations(claim)
        if (
            ann.get(ANN_STORAGE_PROVISIONER) == provisioner
            and ann.get(ANN_BETA_STORAGE_PROVISIONER) == provisioner
        ):
            return claim
        clone = o.deep_copy(claim)
        annotations = o.ensure_meta(clone).setdefault("annotations", {})
        annotations[ANN_STORAGE_PROVISIONER] = provisioner
        annotations[ANN_BETA_STORAGE_PROVISIONER] = provisioner
        new = await self.client.update(PERSISTENTVOLUMECLAIMS, clone)
        self.claims.store(new)
        return new

    # --- the bind ----------------------------------------------------------------------------

    async def bind(self, volume: Obj, claim: Obj) -> None:
        """Upstream's ``bind``: four writes, each skipped when already done."""
        old_volume, old_claim = volume, claim
        volume = await self._bind_volume_to_claim(volume, claim)
        volume = await self._update_volume_phase(volume, "Bound")
        claim = await self._bind_claim_to_volume(claim, volume)
        claim = await self._update_claim_status(claim, "Bound", volume)
        if volume is not old_volume or claim is not old_claim:  # quiet on resyncs
            log.info("Binder bound claim %s to volume %s.", claim_key(claim), o.name(volume))

    async def _bind_volume_to_claim(self, volume: Obj, claim: Obj) -> Obj:
        set_bbc = not ix.is_volume_bound_to_claim(volume, claim)
        draft = Draft(volume)
        ref = claim_ref(volume)
        if (
            ref is None
            or ref.get("name") != o.name(claim)
            or ref.get("namespace") != o.namespace(claim)
            or (ref.get("uid") or "") != o.uid(claim)
        ):
            draft.obj.setdefault("spec", {})["claimRef"] = o.claim_reference(claim)
        if set_bbc and not has_annotation(volume, ANN_BOUND_BY_CONTROLLER):
            o.ensure_meta(draft.obj).setdefault("annotations", {})[ANN_BOUND_BY_CONTROLLER] = "yes"
        if not draft.dirty:
            return volume
        new = await self.client.update(PERSISTENTVOLUMES, draft.obj)
        self.volumes.store(new)
        return new

    async def _bind_claim_to_volume(self, claim: Obj, volume: Obj) -> Obj:
        draft = Draft(claim)
        annotations = o.annotations(claim)
        if spec(claim).get("volumeName") != o.name(volume):
            draft.obj.setdefault("spec", {})["volumeName"] = o.name(volume)
            if ANN_BOUND_BY_CONTROLLER not in annotations:
                o.ensure_meta(draft.obj).setdefault("annotations", {})[ANN_BOUND_BY_CONTROLLER] = (
                    "yes"
                )
        if ANN_BIND_COMPLETED not in annotations:
            o.ensure_meta(draft.obj).setdefault("annotations", {})[ANN_BIND_COMPLETED] = "yes"
        if not draft.dirty:
            return claim
        new = await self.client.update(PERSISTENTVOLUMECLAIMS, draft.obj)
        self.claims.store(new)
        return new

    async def _update_claim_status(self, claim: Obj, to: str, volume: Obj | None) -> Obj:
        """``updateClaimStatus``: phase, and access modes and capacity from the volume
        (capacity only on the transition into the phase), or both cleared."""
        current = ix.status(claim)
        draft = Draft(claim)

        def st() -> dict[str, Any]:
            status: dict[str, Any] = draft.obj.setdefault("status", {})
            return status

        if current.get("phase") != to:
            st()["phase"] = to
        if volume is None:
            for field in ("accessModes", "capacity"):
                if current.get(field) is not None:
                    del st()[field]
        else:
            modes = spec(volume).get("accessModes")
            if current.get("accessModes") != modes:
                st()["accessModes"] = o.deep_copy(modes)
            if current.get("phase") != to:
                capacity = (spec(volume).get("capacity") or {}).get("storage")
                if capacity is None:
                    raise BindingError(
                        f'PersistentVolume "{o.name(volume)}" is without a storage capacity'
                    )
                have = (current.get("capacity") or {}).get("storage")
                if have is None or ix.quantity_value(have) != ix.quantity_value(capacity):
                    st()["capacity"] = o.deep_copy(spec(volume).get("capacity"))
        if not draft.dirty:
            return claim
        new = await self.client.update(PERSISTENTVOLUMECLAIMS, draft.obj, subresource="status")
        self.claims.store(new)
        return new

    async def _update_claim_status_with_event(
        self, claim: Obj, to: str, volume: Obj | None, etype: str, reason: str, message: str
    ) -> Obj:
        if phase(claim) == to:
            return claim
        new = await self._update_claim_status(claim, to, volume)
        self.recorder.event(new, etype, reason, message)
        return new

    async def _update_volume_phase(self, volume: Obj, to: str, message: str = "") -> Obj:
        if phase(volume) == to:
            return volume
        clone = o.deep_copy(volume)
        st: dict[str, Any] = clone.setdefault("status", {})
        st["phase"] = to
        if message:
            st["message"] = message
        else:
            st.pop("message", None)
        # upstream's registry stamps this on every phase change (GA in 1.31); kubeling's
        # registry does not, so the binder does as it writes the phase
        st["lastPhaseTransitionTime"] = o.now_rfc3339()
        new = await self.client.update(PERSISTENTVOLUMES, clone, subresource="status")
        self.volumes.store(new)
        return new

    async def _update_volume_phase_with_event(
        self, volume: Obj, to: str, etype: str, reason: str, message: str
    ) -> Obj:
        if phase(volume) == to:
            return volume
        new = await self._update_volume_phase(volume, to, message)
        self.recorder.event(new, etype, reason, message)
        return new

    async def _unbind_volume(self, volume: Obj) -> Obj:
        """``unbindVolume``: roll back a controller's binding fully, a user's reservation
        only down to its uid; then the volume is Available."""
        clone = o.deep_copy(volume)
        if has_annotation(volume, ANN_BOUND_BY_CONTROLLER):
            clone.setdefault("spec", {}).pop("claimRef", None)
            annotations = o.ensure_meta(clone).get("annotations") or {}
            annotations.pop(ANN_BOUND_BY_CONTROLLER, None)
            if annotations:
                clone["metadata"]["annotations"] = annotations
            else:
                clone["metadata"].pop("annotations", None)
        else:
            ref = clone.setdefault("spec", {}).get("claimRef") or {}
            ref.pop("uid", None)
        new = await self.client.update(PERSISTENTVOLUMES, clone)
        self.volumes.store(new)
        return await self._update_volume_phase(new, "Available")

    # --- volumes -----------------------------------------------------------------------------

    async def _find_claim_for(self, volume: Obj, ref: dict[str, Any]) -> Obj | None:
        """The claim ``ref`` names, as upstream looks it up: cache, then (for a volume not
        yet Released) the API, and the API again when the cached uid differs."""
        key = claim_ref_key(ref)
        claim = self.claims.get(key)
        if claim is None and phase(volume) not in ("Released", "Failed"):
            claim = await self._get_claim(ref)
        if claim is not None and o.uid(claim) != (ref.get("uid") or ""):
            # the cache may be older than the volume: ask the API server before releasing
            claim = await self._get_claim(ref)
            if claim is not None and o.uid(claim) != (ref.get("uid") or ""):
                claim = None
        return claim

    async def _get_claim(self, ref: dict[str, Any]) -> Obj | None:
        try:
            claim = await self.client.get(
                PERSISTENTVOLUMECLAIMS,
                name=ref.get("name") or "",
                namespace=ref.get("namespace") or "",
            )
        except NotFound:
            return None
        self.claims.store(claim)
        return claim

    async def sync_volume(self, volume: Obj) -> None:
        """``syncVolume``."""
        ref = claim_ref(volume)
        if ref is None or not ref.get("uid"):
            # free, or reserved for a claim by name: the claim's sync binds it
            await self._update_volume_phase(volume, "Available")
            return
        claim = await self._find_claim_for(volume, ref)
        if claim is None:
            if phase(volume) not in ("Released", "Failed"):
                log.info(
                    "Volume %s is released; reclaim policy %s will run.",
                    o.name(volume),
                    spec(volume).get("persistentVolumeReclaimPolicy"),
                )
                volume = await self._update_volume_phase(volume, "Released")
            await self.reclaim(volume)
            return
        bound_to = spec(claim).get("volumeName") or ""
        if not bound_to:
            if ix.volume_mode(volume) != ix.volume_mode(claim):
                self.recorder.event(
                    volume,
                    WARNING,
                    "VolumeMismatch",
                    "Cannot bind PersistentVolume to requested PersistentVolumeClaim "
                    f'"{o.name(claim)}" due to incompatible volumeMode.',
                )
                self.recorder.event(
                    claim,
                    WARNING,
                    "VolumeMismatch",
                    f'Cannot bind PersistentVolume "{o.name(volume)}" to requested '
                    "PersistentVolumeClaim due to incompatible volumeMode.",
                )
                return
            self.enqueue(CLAIM_PREFIX + claim_key(claim))
            return
        if bound_to == o.name(volume):
            await self._update_volume_phase(volume, "Bound")
            return
        if (
            has_annotation(volume, ANN_PROVISIONED_BY)
            and spec(volume).get("persistentVolumeReclaimPolicy") == "Delete"
        ):
            # provisioned for this claim, which got bound elsewhere: not needed any more
            if phase(volume) not in ("Released", "Failed"):
                volume = await self._update_volume_phase(volume, "Released")
            await self.reclaim(volume)
            return
        await self._unbind_volume(volume)

    # --- reclaim -----------------------------------------------------------------------------

    async def reclaim(self, volume: Obj) -> None:
        """``reclaimVolume``: apply the volume's reclaim policy."""
        if o.annotations(volume).get(ANN_MIGRATED_TO):
            return
        policy = spec(volume).get("persistentVolumeReclaimPolicy")
        if policy == "Retain":
            return
        if policy == "Recycle":
            await self._recycle(volume)
        elif policy == "Delete":
            await self._delete(volume)
        else:
            await self._update_volume_phase_with_event(
                volume,
                "Failed",
                WARNING,
                "VolumeUnknownReclaimPolicy",
                "Volume has unrecognized PersistentVolumeReclaimPolicy",
            )

    def is_volume_released(self, volume: Obj) -> bool:
        """``isVolumeReleased``: bound (with uid) to a claim that is gone or bound to
        another volume."""
        ref = claim_ref(volume)
        if ref is None or not ref.get("uid"):
            return False
        claim = self.claims.get(claim_ref_key(ref))
        if claim is not None and o.uid(claim) == ref.get("uid"):
            bound_to = spec(claim).get("volumeName") or ""
            return bool(bound_to) and bound_to != o.name(volume)
        return True

    async def _fresh_volume(self, volume: Obj) -> Obj | None:
        try:
            fresh = await self.client.get(PERSISTENTVOLUMES, name=o.name(volume))
        except NotFound:
            return None
        self.volumes.store(fresh)
        return fresh

    async def _recycle(self, volume: Obj) -> None:
        fresh = await self._fresh_volume(volume)
        if fresh is None or not self.is_volume_released(fresh):
            return
        ref = claim_ref(fresh) or {}
        key = claim_ref_key(ref)
        users = sorted(_pod_key(p) for p in self.pods.using(key) if not pod_terminated(p))
        if users and self.claims.get(key) is None:
            self.recorder.event(
                fresh, NORMAL, "VolumeFailedRecycle", f"Volume is used by pods: {','.join(users)}"
            )
            return
        recycler = self.plugins.recycler_for(fresh)
        if recycler is None:
            await self._update_volume_phase_with_event(
                fresh,
                "Failed",
                WARNING,
                "VolumeFailedRecycle",
                "No recycler plugin found for the volume!",
            )
            return
        try:
            await recycler(fresh)
        except Exception as e:
            await self._update_volume_phase_with_event(
                fresh, "Failed", WARNING, "VolumeFailedRecycle", f"Recycle failed: {e}"
            )
            return
        log.info("Binder recycled volume %s.", o.name(fresh))
        self.recorder.event(fresh, NORMAL, "VolumeRecycled", "Volume recycled")
        await self._unbind_volume(fresh)

    async def _delete(self, volume: Obj) -> None:
        fresh = await self._fresh_volume(volume)
        if fresh is None or not self.is_volume_released(fresh):
            return
        try:
            deleted = await self._delete_storage(fresh)
        except VolumeInUseError as e:
            self.recorder.event(volume, NORMAL, "VolumeDelete", str(e))
            return
        except Exception as e:
            log.info("Deleting volume %s failed: %s.", o.name(volume), e)
            await self._update_volume_phase_with_event(
                volume, "Failed", WARNING, "VolumeFailedDelete", str(e)
            )
            return
        if not deleted:
            return  # an external provisioner deletes it
        log.info("Binder deleted the storage of volume %s; deleting the object.", o.name(volume))
        with contextlib.suppress(NotFound):
            await self.client.delete(PERSISTENTVOLUMES, name=o.name(volume))

    async def _delete_storage(self, volume: Obj) -> bool:
        """``doDeleteVolume``: True when the storage is gone, False when an external
        deleter owns the volume; raises the plugin's error."""
        provisioned_by = o.annotations(volume).get(ANN_PROVISIONED_BY) or ""
        if provisioned_by:
            deleter = self.plugins.deleter_named(provisioned_by)
            if deleter is None:
                if not provisioned_by.startswith("kubernetes.io/"):
                    return False
                raise BindingError(f"no volume plugin matched name: {provisioned_by}")
        else:
            if o.annotations(volume).get(ANN_MIGRATED_TO) or spec(volume).get("csi"):
                return False
            deleter = self.plugins.deleter_for(volume)
            if deleter is None:
                raise BindingError(
                    f'error getting deleter volume plugin for volume "{o.name(volume)}": '
                    "no volume plugin matched"
                )
        try:
            await deleter(volume)
        except PluginSetupError as e:
            raise BindingError(
                f'failed to create deleter for volume "{o.name(volume)}": {e}'
            ) from e
        await self._remove_deletion_finalizer(volume)
        return True

    async def _remove_deletion_finalizer(self, volume: Obj) -> None:
        fresh = await self._fresh_volume(volume)
        if fresh is None or PV_CONTROLLER_FINALIZER not in o.finalizers(fresh):
            return
        clone = o.deep_copy(fresh)
        clone["metadata"]["finalizers"] = [
            f for f in o.finalizers(fresh) if f != PV_CONTROLLER_FINALIZER
        ]
        self.volumes.store(await self.client.update(PERSISTENTVOLUMES, clone))
