"""Storage object in-use protection: the controllers that lift the protection finalizers.

The ``StorageObjectInUseProtection`` admission plugin puts ``kubernetes.io/pvc-protection``
on every new claim and ``kubernetes.io/pv-protection`` on every new volume; these two
controllers (upstream's ``pvc-protection`` and ``pv-protection``) remove them once the
object is being deleted and nothing uses it any more, and add them to objects created
before the plugin ran.

A claim is in use while a *scheduled* pod (``spec.nodeName`` set) names it in a
``persistentVolumeClaim`` volume, whatever the pod's phase: a Succeeded pod may not have
finished unmounting, so it blocks too (upstream v1.32 ``podUsesPVC``; kubernetes#92598).
Only generic ephemeral volumes stop counting once the pod is shut down (deleting with a
zero grace period). The informer's pods are asked first, then a live list, so a pod the
cache has not seen yet cannot lose its claim. A volume is in use while its phase is Bound.
"""

from __future__ import annotations

import logging
from typing import Final

from kubeling.client.controller import Controller
from kubeling.client.informer import Informer, SharedInformerFactory, split_key
from kubeling.client.interface import Client
from kubeling.controllers.volume.binder import pod_claim_names
from kubeling.controllers.volume.index import phase
from kubeling.machinery import objects as o
from kubeling.machinery.errors import NotFound
from kubeling.machinery.resources import PERSISTENTVOLUMECLAIMS, PERSISTENTVOLUMES, PODS
from kubeling.machinery.types import Obj, ResourceInfo

log = logging.getLogger(__name__)

PVC_PROTECTION_FINALIZER: Final = "kubernetes.io/pvc-protection"
PV_PROTECTION_FINALIZER: Final = "kubernetes.io/pv-protection"
POD_PVC_INDEX: Final = "pod-pvc"


def pod_pvc_index(pod: Obj) -> list[str]:
    return [f"{o.namespace(pod)}/{c}" for c in pod_claim_names(pod)]


def pod_is_shut_down(pod: Obj) -> bool:
    meta = o.meta(pod)
    return meta.get("deletionTimestamp") is not None and meta.get("deletionGracePeriodSeconds") == 0


def pod_uses_claim(pod: Obj, claim: Obj) -> bool:
    """Upstream's ``podUsesPVC``."""
    if not (pod.get("spec") or {}).get("nodeName"):
        return False
    name = o.name(claim)
    for volume in (pod.get("spec") or {}).get("volumes") or []:
        pvc = volume.get("persistentVolumeClaim")
        if isinstance(pvc, dict) and pvc.get("claimName") == name:
            return True
        if volume.get("ephemeral") is not None and not pod_is_shut_down(pod):
            if f"{o.name(pod)}-{volume.get('name', '')}" != name:
                continue
            owner = o.controller_ref(claim)
            if owner is not None and owner.get("uid") == o.uid(pod):
                return True
    return False


def needs_finalizer(obj: Obj, finalizer: str) -> bool:
    return o.deletion_timestamp(obj) is None and finalizer not in o.finalizers(obj)


def is_deletion_candidate(obj: Obj, finalizer: str) -> bool:
    return o.deletion_timestamp(obj) is not None and finalizer in o.finalizers(obj)


async def _set_finalizer(
    client: Client, resource: ResourceInfo, obj: Obj, finalizer: str, *, present: bool
) -> None:
    clone = o.deep_copy(obj)
    finalizers = [f for f in o.finalizers(obj) if f != finalizer]
    if present:
        finalizers.append(finalizer)
    clone["metadata"]["finalizers"] = finalizers
    try:
        await client.update(resource, clone)
    except NotFound:
        return


class PVCProtectionController(Controller):
    name = "pvc-protection"

    def __init__(self, *, client: Client, informers: SharedInformerFactory) -> None:
        super().__init__()
        self.client = client
        self.claims: Informer = informers.informer(PERSISTENTVOLUMECLAIMS)
        self.pods: Informer = informers.informer(PODS)
        self.pods.add_index(POD_PVC_INDEX, pod_pvc_index)
        self.claims.add_handler(
            on_add=self._claim_changed, on_update=lambda _old, new: self._claim_changed(new)
        )
        self.pods.add_handler(
            on_add=lambda pod: self._pod_changed(pod, deleted=False),
            on_update=self._pod_updated,
            on_delete=lambda pod: self._pod_changed(pod, deleted=True),
        )
        self.wait_for(self.claims)
        self.wait_for(self.pods)

    def _claim_changed(self, claim: Obj) -> None:
        if needs_finalizer(claim, PVC_PROTECTION_FINALIZER) or is_deletion_candidate(
            claim, PVC_PROTECTION_FINALIZER
        ):
            self.enqueue(f"{o.namespace(claim)}/{o.name(claim)}")

    def _pod_updated(self, old: Obj, new: Obj) -> None:
        self._pod_changed(new, deleted=False)
        if o.uid(old) != o.uid(new):
            # an update may hide a delete and re-create under the same name
            self._pod_changed(old, deleted=True)

    def _pod_changed(self, pod: Obj, *, deleted: bool) -> None:
        # Only a pod that stopped counting can unblock a claim.
        scheduled = bool((pod.get("spec") or {}).get("nodeName"))
        terminated = (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed")
        if not deleted and not terminated and scheduled:
            return
        for key in pod_pvc_index(pod):
            self.enqueue(key)

    async def reconcile(self, key: str) -> None:
        namespace, name = split_key(key)
        claim = self.claims.get(key)
        if claim is None:
            return
        if is_deletion_candidate(claim, PVC_PROTECTION_FINALIZER):
            if await self.is_being_used(claim):
                log.debug("Keeping claim %s: a pod uses it.", key)
                return
            await _set_finalizer(
                self.client,
                PERSISTENTVOLUMECLAIMS,
                claim,
                PVC_PROTECTION_FINALIZER,
                present=False,
            )
            log.info("Removed the protection finalizer from claim %s/%s.", namespace, name)
            return
        if needs_finalizer(claim, PVC_PROTECTION_FINALIZER):
            await _set_finalizer(
                self.client, PERSISTENTVOLUMECLAIMS, claim, PVC_PROTECTION_FINALIZER, present=True
            )

    async def is_being_used(self, claim: Obj) -> bool:
        key = f"{o.namespace(claim)}/{o.name(claim)}"
        for pod in self.pods.by_index(POD_PVC_INDEX, key):
            if pod_uses_claim(pod, claim):
                return True
        listed = await self.client.list(PODS, namespace=o.namespace(claim))
        return any(pod_uses_claim(pod, claim) for pod in listed.get("items") or [])


class PVProtectionController(Controller):
    name = "pv-protection"

    def __init__(self, *, client: Client, informers: SharedInformerFactory) -> None:
        super().__init__()
        self.client = client
        self.volumes: Informer = informers.informer(PERSISTENTVOLUMES)
        self.volumes.add_handler(
            on_add=self._volume_changed, on_update=lambda _old, new: self._volume_changed(new)
        )
        self.wait_for(self.volumes)

    def _volume_changed(self, volume: Obj) -> None:
        if needs_finalizer(volume, PV_PROTECTION_FINALIZER) or is_deletion_candidate(
            volume, PV_PROTECTION_FINALIZER
        ):
            self.enqueue(o.name(volume))

    async def reconcile(self, key: str) -> None:
        volume = self.volumes.get(key)
        if volume is None:
            return
        if is_deletion_candidate(volume, PV_PROTECTION_FINALIZER):
            if phase(volume) == "Bound":
                return
            await _set_finalizer(
                self.client, PERSISTENTVOLUMES, volume, PV_PROTECTION_FINALIZER, present=False
            )
            log.info("Removed the protection finalizer from volume %s.", key)
            return
        if needs_finalizer(volume, PV_PROTECTION_FINALIZER):
            await _set_finalizer(
                self.client, PERSISTENTVOLUMES, volume, PV_PROTECTION_FINALIZER, present=True
            )
