"""The controller manager: builds every controller over one client and one informer factory.

Like kube-controller-manager, controllers share informers (one list+watch per resource for
all of them) and run side by side in one event loop. Each controller module exposes a
``build(ctx) -> Controller`` function and is named in ``BUILDERS``; the manager starts
them all and stops them in reverse order. Which controllers run is data, not code
(``ClusterConfig.controllers`` names them), so tests that run one controller alone, or none,
need no special cases.
"""

from __future__ import annotations

import asyncio
import importlib
import logging
import pathlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from kubeling.client.controller import Controller
from kubeling.client.events import EventRecorder
from kubeling.client.informer import SharedInformerFactory
from kubeling.client.interface import Client

log = logging.getLogger(__name__)


@dataclass(kw_only=True)
class ControllerContext:
    """What every controller may use; nothing else crosses into a controller."""

    client: Client
    informers: SharedInformerFactory
    data_dir: pathlib.Path
    """The cluster's data directory (the local-path provisioner keeps volumes under it)."""
    node_name: str = ""
    """The node this process runs an agent for, when it runs one."""
    options: dict[str, object] = field(default_factory=dict)
    """Per-controller settings, keyed by controller name (e.g. ``{"local-path": {...}}``)."""

    def recorder(self, component: str) -> EventRecorder:
        return EventRecorder(self.client, component=component)


Builder = Callable[[ControllerContext], Controller]

BUILDERS: dict[str, str] = {
    # name → "module:function"; modules are imported only when the controller is enabled.
    "serviceaccount": "kubeling.controllers.serviceaccount:build",
    "namespace": "kubeling.controllers.namespace:build",
    "garbagecollector": "kubeling.controllers.garbagecollector:build",
    "statefulset": "kubeling.controllers.statefulset:build",
    "deployment": "kubeling.controllers.deployment:build",
    "replicaset": "kubeling.controllers.replicaset:build",
    "endpoint": "kubeling.controllers.endpoints:build",
    "endpointslice": "kubeling.controllers.endpointslice:build",
    "endpointslicemirroring": "kubeling.controllers.endpointslice:build_mirroring",
    "local-path-provisioner": "kubeling.controllers.provisioner:build",
    "volume-expansion": "kubeling.controllers.expansion:build",
    "persistentvolume-binder": "kubeling.controllers.pvbinder:build",
    "pvc-protection": "kubeling.controllers.pvbinder:build_pvc_protection",
    "pv-protection": "kubeling.controllers.pvbinder:build_pv_protection",
    "scheduler": "kubeling.scheduler:build",
}


class ControllerManager:
    def __init__(self, ctx: ControllerContext, *, enabled: Sequence[str] | None = None) -> None:
        self.ctx = ctx
        names = list(BUILDERS) if enabled is None else list(enabled)
        unknown = [n for n in names if n not in BUILDERS]
        if unknown:
            raise ValueError(f"unknown controllers: {', '.join(unknown)}")
        self.names = names
        self.controllers: list[Controller] = []
        self._tasks: list[asyncio.Task[None]] = []

    async def start(self) -> None:
        for name in self.names:
            module_name, _, func = BUILDERS[name].partition(":")
            build: Builder = getattr(importlib.import_module(module_name), func)
            self.controllers.append(build(self.ctx))
        # Informers start after every controller registered its handlers, so no controller
        # misses the initial list.
        self.ctx.informers.start()
        for controller in self.controllers:
            self._tasks.append(asyncio.create_task(controller.run(), name=controller.name))
        log.info("Started %d controllers: %s.", len(self.controllers), ", ".join(self.names))

    async def stop(self) -> None:
        for controller in reversed(self.controllers):
            await controller.stop()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self.ctx.informers.stop()
        self._tasks.clear()
        self.controllers.clear()
