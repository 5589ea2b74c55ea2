"""Volume plugins the binder uses to reclaim Released volumes: recyclers and deleters.

Upstream's PV controller finds a recycler or deleter among its in-tree volume plugins, by
the ``pv.kubernetes.io/provisioned-by`` name or by the volume's source. kubeling has one
in-tree plugin that can do either, ``kubernetes.io/host-path``, running in the controller's
own process: recycling scrubs the directory's contents in place (upstream starts a busybox
pod that does ``rm -rf /scrub/..?* /scrub/.[!.]* /scrub/*``; kubeling needs no pod for a
directory it can reach), and deleting removes the directory, only under ``/tmp`` as
upstream's hostPath deleter insists. The filesystem work runs in a thread so the event
loop keeps serving other syncs. Tests swap ``Plugins`` tables to inject failures.
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Final

from kubeling.controllers.volume.index import spec
from kubeling.machinery.types import Obj

HOST_PATH_PLUGIN: Final = "kubernetes.io/host-path"
# upstream's hostPath deleter test: an unanchored regexp match, kept as is.
_HOST_PATH_DELETABLE: Final = re.compile(r"/tmp/.+")

Operation = Callable[[Obj], Awaitable[None]]


class VolumeInUseError(Exception):
    """The deleter needs more time (upstream ``DeletedVolumeInUseError``): the volume stays
    Released and only a Normal ``VolumeDelete`` event is written."""


class PluginSetupError(Exception):
    """The plugin cannot serve this volume at all (upstream: ``NewDeleter`` failed)."""


def _host_path(volume: Obj) -> str:
    hp = spec(volume).get("hostPath")
    if not isinstance(hp, dict):
        raise PluginSetupError("spec.PersistentVolumeSource.HostPath is nil")
    return str(hp.get("path") or "")


def _scrub(path: str) -> None:
    if os.path.realpath(path) == "/":
        raise ValueError("refusing to scrub /")
    if not os.path.isdir(path):
        return
    with os.scandir(path) as entries:
        for entry in entries:
            if entry.is_dir(follow_symlinks=False):
                shutil.rmtree(entry.path)
            else:
                os.unlink(entry.path)
    # upstream's scrubber checks the directory is empty afterwards
    if os.listdir(path):
        raise OSError(f"{path} is not empty after scrubbing")


async def recycle_host_path(volume: Obj) -> None:
    await asyncio.to_thread(_scrub, _host_path(volume))


def _remove(path: str) -> None:
    if not _HOST_PATH_DELETABLE.search(path):
        raise ValueError(f"host_path deleter only supports /tmp/.+ but received provided {path}")
    # os.RemoveAll semantics: a missing path is already deleted
    if os.path.isdir(path) and not os.path.islink(path):
        shutil.rmtree(path)
    elif os.path.lexists(path):
        os.unlink(path)


async def delete_host_path(volume: Obj) -> None:
    await asyncio.to_thread(_remove, _host_path(volume))


@dataclass(kw_only=True)
class Plugins:
    """Recyclers and deleters by plugin name, and which volume source each serves."""

    recyclers: dict[str, Operation] = field(
        default_factory=lambda: {HOST_PATH_PLUGIN: recycle_host_path}
    )
    deleters: dict[str, Operation] = field(
        default_factory=lambda: {HOST_PATH_PLUGIN: delete_host_path}
    )
    sources: dict[str, str] = field(default_factory=lambda: {"hostPath": HOST_PATH_PLUGIN})
    # TODO(#3): nfs volumes have an upstream recycler (a scrubber pod on the share); kubeling
    # has none yet, so Recycle on an nfs volume ends Failed "No recycler plugin found".

    def _by_spec(self, volume: Obj, table: dict[str, Operation]) -> Operation | None:
        s = spec(volume)
        for source, plugin in self.sources.items():
            if s.get(source) is not None and plugin in table:
                return table[plugin]
        return None

    def recycler_for(self, volume: Obj) -> Operation | None:
        return self._by_spec(volume, self.recyclers)

    def deleter_named(self, name: str) -> Operation | None:
        return self.deleters.get(name)

    def deleter_for(self, volume: Obj) -> Operation | None:
        return self._by_spec(volume, self.deleters)
