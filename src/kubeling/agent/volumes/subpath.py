"""subPath: one path inside a volume bound at a container's mountPath.

For ordinary volumes the sub-path is resolved inside the volume (created as a directory
when missing, as upstream does) and may not escape it through ``..`` or symlinks.

For atomically written volumes (configMap, secret, projected, downwardAPI) kubeling keeps
subPath mounts up to date, unlike upstream. A bind mount pins an inode, and the atomic
writer replaces inodes, so binding ``<vol>/<key>`` would freeze the first version. Instead
each subPath gets a *stable copy* — a file (or directory tree) with a fixed inode, stored
inside the volume's own directory as ``..subpath_<container>_<index>`` (``..`` names are
reserved by the writer; for secrets this stays on the tmpfs) — and that copy is bound.
After every atomic update the copies are rewritten in place (same inode), so the running
container sees the change at once. The copies are listed in ``..subpaths.json`` in the
volume directory, so an agent that restarts (and re-prepares the volume) keeps refreshing
them. Trade-off: an in-place rewrite is not atomic; a reader
racing the refresh may see a partly written file for an instant. Whole-volume mounts keep
full atomicity.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

from kubeling.agent.errors import VolumeSetupError
from kubeling.agent.volumes.base import PreparedVolume, SubPathCopy

REGISTRY = "..subpaths.json"
"""Stable copy name → subPath, kept on disk so a restarted agent still refreshes them."""


def _check_sub_path(volume: str, sub_path: str) -> None:
    if os.path.isabs(sub_path) or ".." in sub_path.split("/"):
        raise VolumeSetupError(
            volume, f"subPath {sub_path!r} must be a relative path without '..'", retryable=False
        )


def _write_in_place(dest: Path, data: bytes, mode: int) -> None:
    fd = os.open(dest, os.O_WRONLY | os.O_CREAT, 0o644)
    try:
        os.pwrite(fd, data, 0)
        os.ftruncate(fd, len(data))
    finally:
        os.close(fd)
    os.chmod(dest, mode)


def _sync_tree(src: Path, dest: Path) -> None:
    """Make ``dest`` match ``src`` keeping ``dest``'s (and its files') inodes."""
    if src.is_dir():
        if dest.exists() and not dest.is_dir():
            dest.unlink()
        dest.mkdir(exist_ok=True)
        wanted = set(os.listdir(src))
        for entry in os.listdir(dest):
            if entry not in wanted:
                target = dest / entry
                if target.is_dir() and not target.is_symlink():
                    shutil.rmtree(target)
                else:
                    target.unlink()
        for entry in wanted:
            _sync_tree(src / entry, dest / entry)
        return
    data = src.read_bytes()
    mode = src.stat().st_mode & 0o7777
    if dest.is_dir() and not dest.is_symlink():
        shutil.rmtree(dest)
    if not dest.exists() or dest.read_bytes() != data or (dest.stat().st_mode & 0o7777) != mode:
        _write_in_place(dest, data, mode)


def resolve_sub_path(volume: PreparedVolume, sub_path: str, *, container: str, index: int) -> Path:
    """The host path to bind for ``subPath``; raises ``VolumeSetupError``."""
    _check_sub_path(volume.name, sub_path)
    if volume.writer is not None:
        src = volume.path / sub_path
        if not src.exists():
            raise VolumeSetupError(
                volume.name, f"subPath {sub_path} does not exist in volume {volume.name}"
            )
        stable = volume.path / f"..subpath_{container}_{index}"
        _sync_tree(src.resolve(), stable)
        registry = _load_registry(volume.path)
        if registry.get(stable.name) != sub_path:
            registry[stable.name] = sub_path
            tmp = volume.path / f"{REGISTRY}.tmp"
            tmp.write_text(json.dumps(registry))
            os.rename(tmp, volume.path / REGISTRY)
        return stable
    base = volume.path.resolve()
    full = volume.path / sub_path
    if not os.path.lexists(full):
        full.mkdir(mode=0o755, parents=True, exist_ok=True)
    real = full.resolve()
    if real != base and not str(real).startswith(str(base).rstrip("/") + "/"):
        raise VolumeSetupError(
            volume.name,
            f"subpath {str(real)!r} not within volume path {str(base)!r}",
            retryable=False,
        )
    return real


def _load_registry(volume_dir: Path) -> dict[str, str]:
    try:
        data: dict[str, str] = json.loads((volume_dir / REGISTRY).read_text())
        return data
    except (OSError, ValueError):
        return {}


def subpath_copies(volume: PreparedVolume) -> list[SubPathCopy]:
    """The stable copies of this volume, read from its on-disk registry."""
    return [
        SubPathCopy(sub_path=sub, stable=volume.path / name)
        for name, sub in sorted(_load_registry(volume.path).items())
    ]


def refresh_copies(volume: PreparedVolume) -> None:
    """Called after each atomic update: bring every stable copy in line, in place."""
    for copy in subpath_copies(volume):
        src = volume.path / copy.sub_path
        if src.exists():
            _sync_tree(src.resolve(), copy.stable)
