"""mount(2)/umount(2) through libc, and the mount table read from mountinfo.

Calling the syscalls directly (rather than the ``mount`` binary) gives the kernel's errno
back unchanged, which is what a clear ``FailedMount`` reason needs, and works on machines
without util-linux helpers. Teardown is driven by ``/proc/self/mountinfo``, never by our own
bookkeeping, so it also cleans up after a crash half-way through set-up.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import errno as errno_mod
import os
from pathlib import Path

from kubeling.agent.errors import MountError

MS_RDONLY = 0x1
MS_NOSUID = 0x2
MS_NODEV = 0x4
MS_NOEXEC = 0x8
MS_REMOUNT = 0x20
MS_BIND = 0x1000
MS_REC = 0x4000
MS_PRIVATE = 1 << 18
MNT_DETACH = 0x2

_libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
_libc.mount.argtypes = [ctypes.c_char_p] * 3 + [ctypes.c_ulong, ctypes.c_char_p]
_libc.umount2.argtypes = [ctypes.c_char_p, ctypes.c_int]


def mount(source: str, target: str | Path, fstype: str, flags: int = 0, data: str = "") -> None:
    """mount(2); raises ``MountError`` with the kernel's errno and its text."""
    rc = _libc.mount(
        source.encode(),
        str(target).encode(),
        fstype.encode() if fstype else None,
        flags,
        data.encode() if data else None,
    )
    if rc != 0:
        err = ctypes.get_errno()
        raise MountError(
            f"mount {source} on {target} (type {fstype or 'none'}) failed: {os.strerror(err)}",
            errno=err,
        )


def bind(source: str | Path, target: str | Path, *, read_only: bool = False) -> None:
    """Bind ``source`` onto ``target``; read-only needs the second, remounting call."""
    mount(str(source), target, "", MS_BIND | MS_REC)
    if read_only:
        mount("", target, "", MS_BIND | MS_REMOUNT | MS_RDONLY)


def umount(target: str | Path, *, lazy: bool = False) -> None:
    """umount2(2); a path that is not a mount point is not an error."""
    rc = _libc.umount2(str(target).encode(), MNT_DETACH if lazy else 0)
    if rc != 0:
        err = ctypes.get_errno()
        if err in (errno_mod.EINVAL, errno_mod.ENOENT):
            return
        raise MountError(f"unmount {target} failed: {os.strerror(err)}", errno=err)


def _unescape(field: str) -> str:
    # mountinfo escapes space, tab, newline and backslash as \ooo octal.
    out, i = [], 0
    while i < len(field):
        if field[i] == "\\" and i + 4 <= len(field) and field[i + 1 : i + 4].isdigit():
            out.append(chr(int(field[i + 1 : i + 4], 8)))
            i += 4
        else:
            out.append(field[i])
            i += 1
    return "".join(out)


def mount_points() -> list[str]:
    """Every mount point of this mount namespace, in mountinfo order (parents first)."""
    points = []
    with open("/proc/self/mountinfo", encoding="utf-8", errors="surrogateescape") as f:
        for line in f:
            parts = line.split(" ")
            if len(parts) > 4:
                points.append(_unescape(parts[4]))
    return points


def mounts_under(root: str | Path) -> list[str]:
    """Mount points at or below ``root``, deepest (latest) first: the order to unmount."""
    base = os.path.realpath(root)
    prefix = base.rstrip("/") + "/"
    found = [p for p in mount_points() if p == base or p.startswith(prefix)]
    return list(reversed(found))


def is_mount_point(path: str | Path) -> bool:
    return os.path.realpath(path) in mount_points()


def unmount_all_under(root: str | Path) -> None:
    """Unmount everything at or below ``root``; repeated until the table shows none.

    Stacked mounts (a path mounted twice) need one umount per layer, hence the loop; a
    busy mount is detached lazily rather than left behind, since the pod is going away.
    """
    for _ in range(64):
        points = mounts_under(root)
        if not points:
            return
        for point in points:
            try:
                umount(point)
            except MountError as exc:
                if exc.errno != errno_mod.EBUSY:
                    raise
                umount(point, lazy=True)
    remaining = mounts_under(root)
    if remaining:
        raise MountError(f"mounts still present under {root}: {', '.join(remaining)}")
