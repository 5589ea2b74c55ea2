"""hostPath: a path on the node, checked against ``type`` with upstream's messages.

The checks and texts mirror pkg/volume/hostpath/host_path.go (``checkTypeInternal``): the
``...OrCreate`` types create what is missing (directory 0755 with parents, file 0644
without), the others only check; no type creates a missing directory, as containerd does.
A relative path is refused. Nothing is owned, so teardown never touches the path.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from kubeling.agent.errors import VolumeSetupError
from kubeling.agent.volumes.base import PreparedVolume
from kubeling.machinery.types import Obj

_CHECKS = {
    "Directory": (stat.S_ISDIR, "directory"),
    "File": (stat.S_ISREG, "file"),
    "Socket": (stat.S_ISSOCK, "socket file"),
    "CharDevice": (stat.S_ISCHR, "character device"),
    "BlockDevice": (stat.S_ISBLK, "block device"),
}


def _is(path: str, test: object) -> bool:
    try:
        mode = os.stat(path).st_mode  # follows symlinks, as the kubelet does
    except OSError:
        return False
    return bool(test(mode))  # type: ignore[operator]


def check_host_path(path: str, path_type: str) -> None:
    """Raise ``ValueError`` with upstream's text when ``path`` fails ``path_type``.

    Type ``""`` checks nothing, but a missing path is made a directory (0755, with
    parents): the kubelet leaves it to the runtime, and containerd creates a missing bind
    source so, where runc alone would fail the container.
    """
    if path_type == "":
        if not os.path.lexists(path):
            os.makedirs(path, mode=0o755, exist_ok=True)
        return
    if path_type == "DirectoryOrCreate":
        if not os.path.lexists(path):
            os.makedirs(path, mode=0o755, exist_ok=True)
            return
        path_type = "Directory"
    elif path_type == "FileOrCreate":
        if not os.path.lexists(path):
            fd = os.open(path, os.O_CREAT | os.O_RDONLY, 0o644)
            os.close(fd)
            return
        path_type = "File"
    if path_type not in _CHECKS:
        raise ValueError(f"{path_type} is an invalid volume type")
    test, description = _CHECKS[path_type]
    if not _is(path, test):
        raise ValueError(f"hostPath type check failed: {path} is not a {description}")


def prepare_host_path(name: str, source: Obj) -> PreparedVolume:
    path = source.get("path") or ""
    path_type = source.get("type") or ""
    if not os.path.isabs(path):
        # Upstream's validation lets it through, and the runtime would resolve it against
        # its own working directory; kubeling's is no place for a pod's data.
        raise VolumeSetupError(
            name,
            f'hostPath "{path}" is not an absolute path: '
            "kubeling mounts only absolute paths on the node",
            retryable=False,
        )
    try:
        check_host_path(path, path_type)
    except ValueError as exc:
        raise VolumeSetupError(name, str(exc)) from exc
    except OSError as exc:
        # FileOrCreate does not create parents; Go's *PathError wording.
        reason = (exc.strerror or str(exc)).lower()
        raise VolumeSetupError(name, f"open {path}: {reason}") from exc
    return PreparedVolume(name=name, kind="hostPath", path=Path(path))
