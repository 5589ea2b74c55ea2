"""nfs: the real kernel mount, or a failure that says exactly why — never a silent success.

The mount is attempted with mount(2) and the options the kernel's NFS client takes
(``addr=`` plus the PV's ``mountOptions``). When the kernel has no NFS client, or the
server does not answer, the error message reads like upstream's mount failures
("mount failed: ... Mounting command: ... Output: ...") with our explanation as the output,
so the ``FailedMount`` event tells the user what to fix.
"""

from __future__ import annotations

import errno
import ipaddress
import os
import socket
from pathlib import Path

from kubeling.agent import mounts
from kubeling.agent.errors import MountError, VolumeSetupError
from kubeling.agent.volumes.base import PreparedVolume, plugin_dir
from kubeling.machinery.types import Obj


def kernel_has_nfs() -> bool:
    with open("/proc/filesystems", encoding="utf-8") as f:
        return any(line.split()[-1] in ("nfs", "nfs4") for line in f if line.strip())


def _explain(err: int, server: str) -> str:
    if err == errno.ENODEV:
        return (
            "the kernel has no NFS client (no nfs in /proc/filesystems and it could not be "
            "loaded); install/load the nfs kernel module on this node"
        )
    if err in (errno.ETIMEDOUT, errno.ECONNREFUSED, errno.EHOSTUNREACH, errno.ENETUNREACH):
        return f"NFS server {server} did not answer"
    if err == errno.EACCES:
        return f"access denied by server {server}"
    return "the NFS mount was refused by the kernel"


def mount_nfs(
    name: str,
    *,
    server: str,
    export: str,
    target: Path,
    read_only: bool,
    mount_options: list[str],
) -> None:
    """Mount ``server:export`` on ``target``; ``VolumeSetupError`` says why not."""
    try:
        addr = str(ipaddress.ip_address(server))
    except ValueError:
        try:
            addr = str(socket.getaddrinfo(server, None, type=socket.SOCK_STREAM)[0][4][0])
        except OSError as exc:
            raise VolumeSetupError(
                name, f"mount failed: cannot resolve NFS server {server}: {exc}"
            ) from exc
    options = [*mount_options, f"addr={addr}"]
    if not any(o.startswith("vers=") or o.startswith("nfsvers=") for o in mount_options):
        options.append("vers=4.2")
    fstype = "nfs"
    flags = mounts.MS_RDONLY if read_only else 0
    data = ",".join(o for o in options if o not in ("ro", "rw"))
    if "ro" in mount_options:
        flags |= mounts.MS_RDONLY
    target.mkdir(parents=True, exist_ok=True)
    source = f"{server}:{export}"
    try:
        mounts.mount(source, target, fstype, flags, data)
    except MountError as exc:
        args = f"-t {fstype} -o {','.join(options)}{',ro' if flags & mounts.MS_RDONLY else ''}"
        raise VolumeSetupError(
            name,
            f"mount failed: {os.strerror(exc.errno)}\nMounting command: mount\n"
            f"Mounting arguments: {args} {source} {target}\n"
            f"Output: {_explain(exc.errno, server)}",
        ) from exc


def prepare_nfs(
    name: str, source: Obj, *, pod_dir: Path, mount_options: list[str] | None = None
) -> PreparedVolume:
    target = plugin_dir(pod_dir, "nfs", name)
    if not mounts.is_mount_point(target):
        try:
            mount_nfs(
                name,
                server=source.get("server", ""),
                export=source.get("path", ""),
                target=target,
                read_only=bool(source.get("readOnly")),
                mount_options=list(mount_options or ()),
            )
        except VolumeSetupError:
            # Leave nothing behind for a failed attempt; the next sync tries again.
            if target.is_dir() and not mounts.is_mount_point(target):
                target.rmdir()
            raise
    return PreparedVolume(
        name=name,
        kind="nfs",
        path=target,
        read_only=bool(source.get("readOnly")),
        owned_dir=target,
    )
