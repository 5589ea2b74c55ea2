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
container sees the change at once. Trade-off: an in-place rewrite is not atomic; a reader
racing the refresh may see a partly written file for an instant. Whole-volume mounts keep
full atomicity.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from kubeling.agent.errors import VolumeSetupError
from kubeling.agent.volumes.base import PreparedVolume, SubPathCopy


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
        if not any(c.stable == stable for c in volume.subpath_copies):
            volume.subpath_copies.append(SubPathCopy(sub_path=sub_path, stable=stable))
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


def refresh_copies(volume: PreparedVolume) -> None:
    """Called after each atomic update: bring every stable copy in line, in place."""
    for copy in volume.subpath_copies:
        src = volume.path / copy.sub_path
        if src.exists():
            _sync_tree(src.resolve(), copy.stable)
