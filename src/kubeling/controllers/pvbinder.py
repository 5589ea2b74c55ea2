"""Entry points of the volume controllers for the controller manager.

``build`` makes the PersistentVolume binder (``controllers.volume.binder``) over the shared
informers; ``build_pvc_protection`` and ``build_pv_protection`` the two protection
controllers (``controllers.volume.protection``). Options come from
``ctx.options["persistentvolume-binder"]`` (``resync_period`` in seconds).
"""

from __future__ import annotations

from kubeling.client.controller import Controller
from kubeling.controllers.manager import ControllerContext
from kubeling.controllers.volume.binder import (
    COMPONENT,
    DEFAULT_RESYNC_PERIOD,
    PersistentVolumeBinder,
)
from kubeling.controllers.volume.protection import PVCProtectionController, PVProtectionController


def build(ctx: ControllerContext) -> Controller:
    options = ctx.options.get("persistentvolume-binder") or {}
    if not isinstance(options, dict):
        raise TypeError("persistentvolume-binder options must be a mapping")
    period = options.get("resync_period", DEFAULT_RESYNC_PERIOD)
    return PersistentVolumeBinder(
        client=ctx.client,
        recorder=ctx.recorder(COMPONENT),
        informers=ctx.informers,
        resync_period=float(period),
    )


def build_pvc_protection(ctx: ControllerContext) -> Controller:
    return PVCProtectionController(client=ctx.client, informers=ctx.informers)


def build_pv_protection(ctx: ControllerContext) -> Controller:
    return PVProtectionController(client=ctx.client, informers=ctx.informers)
