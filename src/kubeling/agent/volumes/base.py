"""What a prepared volume is, and what the preparers are given to work from.

A ``PreparedVolume`` is a host path ready to bind into containers plus what it takes to
refresh and remove it. Preparers are synchronous and idempotent: calling one again for the
same pod re-uses what is on disk (an emptyDir keeps its data, an unchanged ConfigMap is not
rewritten), so the sync loop can simply retry. NFS mounts can block, so callers run
preparers in a worker thread (``asyncio.to_thread``).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from kubeling.agent import mounts
from kubeling.agent.volumes.atomic import AtomicWriter, Payload
from kubeling.machinery.types import Obj

TokenSource = Callable[[str | None, int], bytes]
"""Given (audience, expirationSeconds), the service-account token bytes to project."""


@dataclass
class VolumeSources:
    """The API objects a pod's volumes are built from, looked up by the caller."""

    config_maps: dict[str, Obj] = field(default_factory=dict)
    secrets: dict[str, Obj] = field(default_factory=dict)
    claims: dict[str, Obj] = field(default_factory=dict)
    """claimName → the bound PersistentVolume object."""
    claim_errors: dict[str, str] = field(default_factory=dict)
    """claimName → why it has no bound volume, in upstream's words (``PVC is not bound``
    when absent; ``failed to fetch PVC from API server: ...`` for a missing claim)."""
    service_account_token: TokenSource | None = None
    pod: Obj | None = None
    """The pod as it is now, when the downward API should see changed labels/annotations."""


@dataclass(frozen=True)
class SubPathCopy:
    """A subPath of an atomically written volume, kept as a stable inode (see subpath.py)."""

    sub_path: str
    stable: Path


@dataclass
class PreparedVolume:
    """A volume ready to bind: ``path`` is what containers get at their mountPath."""

    name: str
    kind: str
    path: Path
    read_only: bool = False
    """Always mounted read-only whatever the volumeMount says (configMap, secret, ...)."""
    owned_dir: Path | None = None
    """The directory this volume created; removed (after unmounting) on teardown."""
    writer: AtomicWriter | None = None
    project: Callable[[VolumeSources], Payload] | None = None
    notes: list[str] = field(default_factory=list)
    subpath_dir: Path | None = None
    """Where an atomically written volume keeps its subPath copies (subpath.py), outside
    the directory containers see: ``<pod>/volume-subpaths/<volume>``."""
    subpath_on_tmpfs: bool = False

    @property
    def updatable(self) -> bool:
        return self.writer is not None

    def update(self, payload: Payload) -> bool:
        """Rewrite atomically; containers see the new files at once. False if unchanged."""
        if self.writer is None:
            raise TypeError(f"volume {self.name} ({self.kind}) has no atomic payload")
        from kubeling.agent.volumes.subpath import refresh_copies

        changed = self.writer.write(payload)
        if changed:
            refresh_copies(self)
        return changed

    def refresh(self, sources: VolumeSources) -> bool:
        """Re-project from new objects (a ConfigMap or Secret changed) and update."""
        if self.project is None:
            raise TypeError(f"volume {self.name} ({self.kind}) has no atomic payload")
        from kubeling.agent.errors import VolumeSetupError

        try:
            payload = self.project(sources)
        except ValueError as exc:
            raise VolumeSetupError(self.name, str(exc)) from exc
        return self.update(payload)

    def teardown(self) -> None:
        """Unmount and remove what this volume created; a no-op the second time."""
        if self.subpath_dir is not None:
            teardown_dir(self.subpath_dir)
        if self.owned_dir is None:
            return
        teardown_dir(self.owned_dir)


def teardown_dir(path: Path) -> None:
    mounts.unmount_all_under(path)
    if path.is_symlink() or path.is_file():
        path.unlink()
    elif path.exists():
        shutil.rmtree(path)


def ensure_tmpfs(path: Path, *, size_bytes: int | None = None, mode: int = 0o755) -> None:
    """Mount a tmpfs at ``path`` unless one already is (idempotent re-prepare)."""
    path.mkdir(parents=True, exist_ok=True)
    if os.geteuid() != 0:
        # Without root (the simulated runtime as a normal user) there is no mount(2):
        # the files go to an ordinary directory, on disk.
        return
    if mounts.is_mount_point(path):
        return
    options = [f"mode={mode:o}"]
    if size_bytes is not None:
        options.append(f"size={size_bytes}")
    mounts.mount("tmpfs", path, "tmpfs", mounts.MS_NOSUID | mounts.MS_NODEV, ",".join(options))


def plugin_dir(pod_dir: Path, plugin: str, name: str) -> Path:
    """upstream's node layout: ``<pod>/volumes/kubernetes.io~<plugin>/<volume>``."""
    return pod_dir / "volumes" / f"kubernetes.io~{plugin}" / name


def subpaths_dir(pod_dir: Path, name: str) -> Path:
    """upstream's node layout for subPath bind sources: ``<pod>/volume-subpaths/<volume>``."""
    return pod_dir / "volume-subpaths" / name


def chmod_exact(path: Path, mode: int) -> None:
    # mkdir applies the umask; volumes promise an exact mode (emptyDir 0777).
    os.chmod(path, mode)
