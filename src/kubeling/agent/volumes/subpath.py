"""subPath: one path inside a volume bound at a container's mountPath.

For ordinary volumes the sub-path is resolved inside the volume and may not escape it
through ``..`` or symlinks. A missing one is created as upstream's ``makeMounts`` does
(``SafeMakeDir``): directory by directory, none of them through a symlink, each with the
volume directory's own mode (0777 for an emptyDir or a provisioned volume), so a non-root
container can write where the volume lets it.

For atomically written volumes (configMap, secret, projected, downwardAPI) kubeling keeps
subPath mounts up to date, unlike upstream. A bind mount pins an inode, and the atomic
writer replaces inodes, so binding ``<vol>/<key>`` would freeze the first version. Instead
each subPath gets a *stable copy* — a file (or directory tree) with a fixed inode — and
that copy is bound. After every atomic update the copies are rewritten in place (same
inode), so the running container sees the change at once. The copies live outside the
volume, where upstream keeps its subPath bind sources,
``<pod>/volume-subpaths/<volume>/<container>/<index>``, so a container that mounts the
whole volume sees only the object's keys; they are listed in ``subpaths.json`` there, so an
agent that restarts (and re-prepares the volume) keeps refreshing them. For volumes on a
tmpfs (secret, projected, downwardAPI) that directory is a tmpfs too, so secret bytes
never reach the node's disk. Trade-off: an in-place rewrite is not atomic; a reader racing
the refresh may see a partly written file for an instant. Whole-volume mounts keep full
atomicity.

A subPath naming a key the object lacks gets an empty directory, as upstream's
``SafeMakeDir`` makes one in the volume: the container starts and sees no file.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

from kubeling.agent.errors import VolumeSetupError
from kubeling.agent.volumes.base import PreparedVolume, SubPathCopy, ensure_tmpfs

REGISTRY = "subpaths.json"
"""``<container>/<index>`` → subPath, kept on disk so a restarted agent still refreshes."""


class SubPathDirectoryError(VolumeSetupError):
    """A missing subPath could not be created (upstream's ``failed to create subPath
    directory for volumeMount ...``, as opposed to ``failed to prepare subPath ...``)."""


def _check_sub_path(volume: str, sub_path: str) -> None:
    if os.path.isabs(sub_path) or ".." in sub_path.split("/"):
        raise VolumeSetupError(
            volume, f"subPath {sub_path!r} must be a relative path without '..'", retryable=False
        )


def _within(path: Path, base: Path) -> bool:
    return path == base or str(path).startswith(str(base).rstrip("/") + "/")


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


def _make_dirs(volume: PreparedVolume, base: Path, sub_path: str, mode: int) -> None:
    """upstream's SafeMakeDir: each missing component made with ``mode`` (exactly, not
    through the umask), never following a symlink out of the volume."""
    current = base
    for part in [p for p in sub_path.split("/") if p not in ("", ".")]:
        nxt = current / part
        try:
            if os.path.lexists(nxt):
                real = nxt.resolve()
                if not _within(real, base) or not real.is_dir():
                    raise SubPathDirectoryError(
                        volume.name,
                        f"cannot create directory {sub_path!r}: {part!r} is not a directory "
                        f"of volume path {str(base)!r}",
                    )
                current = real
                continue
            os.mkdir(nxt, mode)
            os.chmod(nxt, mode)
        except OSError as exc:
            raise SubPathDirectoryError(
                volume.name, f"cannot create directory {sub_path!r}: {exc.strerror}"
            ) from exc
        current = nxt


def resolve_sub_path(volume: PreparedVolume, sub_path: str, *, container: str, index: int) -> Path:
    """The host path to bind for ``subPath``; raises ``VolumeSetupError``
    (``SubPathDirectoryError`` when a missing directory could not be made)."""
    _check_sub_path(volume.name, sub_path)
    if volume.writer is not None:
        return _stable_copy(volume, sub_path, container=container, index=index)
    base = volume.path.resolve()
    full = volume.path / sub_path
    if not os.path.exists(full):  # upstream's PathExists follows symlinks
        _make_dirs(volume, base, sub_path, os.stat(base).st_mode & 0o7777)
    real = full.resolve()
    if not _within(real, base):
        raise VolumeSetupError(
            volume.name,
            f"subpath {str(real)!r} not within volume path {str(base)!r}",
            retryable=False,
        )
    return real


def _subpath_dir(volume: PreparedVolume) -> Path:
    if volume.subpath_dir is None:
        raise VolumeSetupError(volume.name, f"volume {volume.name} keeps no subPath copies")
    return volume.subpath_dir


def _stable_copy(volume: PreparedVolume, sub_path: str, *, container: str, index: int) -> Path:
    home = _subpath_dir(volume)
    if volume.subpath_on_tmpfs:
        ensure_tmpfs(home)
    else:
        home.mkdir(parents=True, exist_ok=True)
    stable = home / container / str(index)
    stable.parent.mkdir(parents=True, exist_ok=True)
    src = volume.path / sub_path
    if src.exists():
        _sync_tree(src.resolve(), stable)
    elif not os.path.lexists(stable):
        mode = volume.path.stat().st_mode & 0o7777
        stable.mkdir(mode)
        os.chmod(stable, mode)
    key = f"{container}/{index}"
    registry = _load_registry(home)
    if registry.get(key) != sub_path:
        registry[key] = sub_path
        tmp = home / f"{REGISTRY}.tmp"
        tmp.write_text(json.dumps(registry))
        os.rename(tmp, home / REGISTRY)
    return stable


def _load_registry(home: Path) -> dict[str, str]:
    try:
        data: dict[str, str] = json.loads((home / REGISTRY).read_text())
        return data
    except (OSError, ValueError):
        return {}


def subpath_copies(volume: PreparedVolume) -> list[SubPathCopy]:
    """The stable copies of this volume, read from its on-disk registry."""
    if volume.subpath_dir is None:
        return []
    return [
        SubPathCopy(sub_path=sub, stable=volume.subpath_dir / key)
        for key, sub in sorted(_load_registry(volume.subpath_dir).items())
    ]


def refresh_copies(volume: PreparedVolume) -> None:
    """Called after each atomic update: bring every stable copy in line, in place."""
    for copy in subpath_copies(volume):
        src = volume.path / copy.sub_path
        if src.exists() and os.path.lexists(copy.stable):
            _sync_tree(src.resolve(), copy.stable)
