"""Volume expansion: grow bound claims whose request went up, the way upstream's resizers do.

Two upstream roles in one controller, split by who provisioned the volume:

- For ``kubeling.io/local-path`` volumes it is the resizer (external-resizer's flow with
  RecoverVolumeExpansionFailure, on by default in v1.32): the claim's status gets condition
  ``Resizing``, ``allocatedResources[storage]`` = the new request and
  ``allocatedResourceStatuses[storage]`` = ``ControllerResizeInProgress`` (event
  ``Resizing``); the volume's ``spec.capacity`` is raised; then condition
  ``FileSystemResizePending`` with ``NodeResizePending`` (event
  ``FileSystemResizeRequired``); finally ``status.capacity`` takes the new size and the
  conditions and the in-progress status are cleared. A local-path volume is a plain
  directory: there is nothing to grow on disk, at the controller or on the node, so the
  node step (the kubelet's upstream) completes at once, here, with an event saying why.
  Each step is its own write, so watchers see every state upstream shows.
- For any other volume it is the in-tree expand controller, which has no plugin that can
  resize it: a Normal ``ExternalExpanding`` event ("waiting for an external controller to
  expand this PVC"), once per requested size, and nothing else.

Whether a claim may grow at all is decided at admission (``PersistentVolumeClaimResize``:
bound claims of a class with ``allowVolumeExpansion``); shrinking is refused by validation.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any, Final

from kubeling.client.controller import Controller
from kubeling.client.events import NORMAL, EventRecorder
from kubeling.client.informer import SharedInformerFactory, object_key
from kubeling.client.interface import Client
from kubeling.controllers.provisioner import ANN_PROVISIONED_BY, PROVISIONER
from kubeling.machinery import objects
from kubeling.machinery.errors import NotFound, RetryableError
from kubeling.machinery.quantity import Quantity, parse_quantity_or_none
from kubeling.machinery.resources import PERSISTENTVOLUMECLAIMS, PERSISTENTVOLUMES
from kubeling.machinery.types import Obj

if TYPE_CHECKING:
    from kubeling.controllers.manager import ControllerContext

log = logging.getLogger(__name__)

EXPAND_COMPONENT: Final = "volume_expand"
RESIZER_COMPONENT: Final = f"external-resizer {PROVISIONER}"

RESIZING: Final = "Resizing"
FS_RESIZE_PENDING: Final = "FileSystemResizePending"
CONTROLLER_RESIZE_IN_PROGRESS: Final = "ControllerResizeInProgress"
NODE_RESIZE_PENDING: Final = "NodeResizePending"

FS_RESIZE_PENDING_MESSAGE: Final = (
    "Waiting for user to (re-)start a pod to finish file system resize of volume on node."
)
EXTERNAL_EXPANDING_MESSAGE: Final = "waiting for an external controller to expand this PVC"


def requested_size(claim: Obj) -> Quantity | None:
    return parse_quantity_or_none(
        objects.get_path(claim, ("spec", "resources", "requests", "storage"))
    )


def capacity_size(claim: Obj) -> Quantity | None:
    return parse_quantity_or_none(objects.get_path(claim, ("status", "capacity", "storage")))


def needs_expansion(claim: Obj) -> bool:
    """Bound, and the request is above the capacity the claim has (upstream's test)."""
    status = claim.get("status") or {}
    if status.get("phase") != "Bound" or not (claim.get("spec") or {}).get("volumeName"):
        return False
    request, capacity = requested_size(claim), capacity_size(claim)
    return request is not None and capacity is not None and capacity < request


class VolumeExpansionController(Controller):
    """Resizes local-path volumes; points every other claim at an external resizer."""

    name = "volume-expansion"

    def __init__(
        self,
        *,
        client: Client,
        informers: SharedInformerFactory,
        recorder: EventRecorder | None = None,
        resizer_recorder: EventRecorder | None = None,
        resizer_name: str = PROVISIONER,
    ) -> None:
        super().__init__()
        self.client = client
        self.resizer_name = resizer_name
        self.recorder = recorder or EventRecorder(client, component=EXPAND_COMPONENT)
        self.resizer_recorder = resizer_recorder or EventRecorder(
            client, component=f"external-resizer {resizer_name}"
        )
        self.claims = informers.informer(PERSISTENTVOLUMECLAIMS)
        self.watch(self.claims)
        self._told_external: set[tuple[str, str]] = set()

    async def reconcile(self, key: str) -> None:
        claim = self.claims.get(key)
        if claim is None or not needs_expansion(claim):
            return
        volume_name = claim["spec"]["volumeName"]
        try:
            pv = await self.client.get(PERSISTENTVOLUMES, name=volume_name)
        except NotFound:
            raise RetryableError(
                f'failed to get PV "{volume_name}": not found', delay=5.0
            ) from None
        ref = (pv.get("spec") or {}).get("claimRef") or {}
        if ref.get("namespace") != objects.namespace(claim) or ref.get("uid") != objects.uid(claim):
            raise RetryableError(
                f"persistent Volume is not bound to PVC being updated : {key}", delay=5.0
            )
        if objects.annotations(pv).get(ANN_PROVISIONED_BY) != self.resizer_name:
            self._external(claim)
            return
        await self.expand(claim, pv)

    def _external(self, claim: Obj) -> None:
        request = str(requested_size(claim))
        told = (objects.uid(claim), request)
        if told in self._told_external:
            return
        self._told_external.add(told)
        self.recorder.event(claim, NORMAL, "ExternalExpanding", EXTERNAL_EXPANDING_MESSAGE)

    async def expand(self, claim: Obj, pv: Obj) -> None:
        request = requested_size(claim)
        if request is None:
            raise ValueError(f"claim {objects.namespaced_name(claim)} requests no storage")
        request_text = str(objects.get_path(claim, ("spec", "resources", "requests", "storage")))
        pv_name = objects.name(pv)
        status = claim.get("status") or {}
        allocated = parse_quantity_or_none((status.get("allocatedResources") or {}).get("storage"))
        state = (status.get("allocatedResourceStatuses") or {}).get("storage")
        if allocated != request or state not in (
            CONTROLLER_RESIZE_IN_PROGRESS,
            NODE_RESIZE_PENDING,
        ):
            claim = await self._mark_controller_resize(claim, request_text)
            self.resizer_recorder.event(
                claim, NORMAL, "Resizing", f"External resizer is resizing volume {pv_name}"
            )
            state = CONTROLLER_RESIZE_IN_PROGRESS
        if state == CONTROLLER_RESIZE_IN_PROGRESS:
            # The controller-side resize: a directory has no size to change; the volume
            # object records the new capacity.
            pv_capacity = parse_quantity_or_none(
                objects.get_path(pv, ("spec", "capacity", "storage"))
            )
            if pv_capacity is None or pv_capacity < request:
                pv = objects.deep_copy(pv)
                pv["spec"].setdefault("capacity", {})["storage"] = request_text
                pv = await self.client.update(PERSISTENTVOLUMES, pv)
            claim = await self._mark_node_resize_pending(claim)
            self.resizer_recorder.event(
                claim,
                NORMAL,
                "FileSystemResizeRequired",
                "Require file system resize of volume on node",
            )
        await self._mark_resize_finished(claim, request_text)
        self.resizer_recorder.event(
            claim,
            NORMAL,
            "FileSystemResizeSuccessful",
            f'volume "{pv_name}" is a local-path directory: no file system to resize',
        )
        log.info("Expanded claim %s and volume %s to %s.", object_key(claim), pv_name, request_text)

    async def _write_status(self, claim: Obj, status: dict[str, Any]) -> Obj:
        body = objects.deep_copy(claim)
        body["status"] = status
        return await self.client.update(PERSISTENTVOLUMECLAIMS, body, subresource="status")

    async def _mark_controller_resize(self, claim: Obj, size: str) -> Obj:
        status = objects.deep_copy(claim.get("status") or {})
        conditions = objects.remove_condition(status.get("conditions"), FS_RESIZE_PENDING)
        status["conditions"] = objects.set_condition(conditions, RESIZING, "True")
        status.setdefault("allocatedResources", {})["storage"] = size
        status.setdefault("allocatedResourceStatuses", {})["storage"] = (
            CONTROLLER_RESIZE_IN_PROGRESS
        )
        return await self._write_status(claim, status)

    async def _mark_node_resize_pending(self, claim: Obj) -> Obj:
        status = objects.deep_copy(claim.get("status") or {})
        conditions = objects.remove_condition(status.get("conditions"), RESIZING)
        status["conditions"] = objects.set_condition(
            conditions, FS_RESIZE_PENDING, "True", message=FS_RESIZE_PENDING_MESSAGE
        )
        status.setdefault("allocatedResourceStatuses", {})["storage"] = NODE_RESIZE_PENDING
        return await self._write_status(claim, status)

    async def _mark_resize_finished(self, claim: Obj, size: str) -> Obj:
        status = objects.deep_copy(claim.get("status") or {})
        status.setdefault("capacity", {})["storage"] = size
        conditions = [
            c
            for c in status.get("conditions") or []
            if c.get("type") not in (RESIZING, FS_RESIZE_PENDING)
        ]
        if conditions:
            status["conditions"] = conditions
        else:
            status.pop("conditions", None)
        statuses = dict(status.get("allocatedResourceStatuses") or {})
        statuses.pop("storage", None)
        if statuses:
            status["allocatedResourceStatuses"] = statuses
        else:
            status.pop("allocatedResourceStatuses", None)
        return await self._write_status(claim, status)


def build(ctx: ControllerContext) -> VolumeExpansionController:
    """``BUILDERS`` entry."""
    return VolumeExpansionController(
        client=ctx.client,
        informers=ctx.informers,
        recorder=ctx.recorder(EXPAND_COMPONENT),
        resizer_recorder=ctx.recorder(RESIZER_COMPONENT),
    )
