"""The runc runtime: each container an OCI bundle run by runc through a detached shim.

Layout under ``<data>/runc``: ``root/`` is runc's ``--root`` (kubeling's own state
directory, so ``runc list`` there shows only kubeling's containers and other runc users
are never touched) and ``bundles/<id>/`` holds ``config.json``, the overlay root
(``rootfs`` over ``upper``/``work``), and ``state/`` written by the shim (``pid``,
``exit.json``). The root filesystem is an overlay of the image layers (or of the host's
``/``), mounted read-only by runc (``root.readonly``) after it has created the mount
points, which is why an upper layer exists at all.

cgroups: see ``cgroups_path`` (v1: nested under the agent's own cgroup).
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import json
import logging
import os
import pty
import secrets
import shutil
import signal
import struct
import sys
import termios
import time
from pathlib import Path
from typing import Any

from kubeling.agent import mounts
from kubeling.agent.errors import ContainerError
from kubeling.agent.runtime.base import (
    ContainerConfig,
    ContainerInfo,
    ContainerRuntime,
    ContainerStatus,
    ExecSession,
    ExecStartError,
)

log = logging.getLogger(__name__)

ANNOTATION_POD_UID = "io.kubeling.pod.uid"
ANNOTATION_CONTAINER = "io.kubeling.container.name"
DEFAULT_PATH = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
# The capabilities a container runtime grants by default (containerd's default set).
DEFAULT_CAPS = [
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_FSETID",
    "CAP_FOWNER",
    "CAP_MKNOD",
    "CAP_NET_RAW",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETFCAP",
    "CAP_SETPCAP",
    "CAP_NET_BIND_SERVICE",
    "CAP_SYS_CHROOT",
    "CAP_KILL",
    "CAP_AUDIT_WRITE",
]


UNIFIED_CGROUP = Path("/sys/fs/cgroup/cgroup.controllers")


def cgroups_path(container_id: str) -> str:
    """Where runc puts the container's cgroup.

    cgroup v1: relative, so runc nests it under the agent's own cgroup in each hierarchy
    and container limits stay inside the agent's. cgroup v2 forbids controllers in a
    cgroup that still has processes (the agent's own), so there the containers go under a
    ``/kubeling`` cgroup of their own, as other runtimes do.
    TODO(#5): the cgroup v2 path is untested (the development machine runs v1).
    """
    if UNIFIED_CGROUP.exists():
        return f"/kubeling/{container_id}"
    return f"kubeling-{container_id}"


HOST_SECRET_DIRS = ("/root", "/home", "/etc/ssh", "/etc/ssl/private", "/var/lib")
"""Host directories hidden from containers on the host-root overlay: home directories
(credentials, kubeconfigs, SSH keys), the SSH host keys, TLS private keys and the state of
other services (container runtimes, package managers, databases)."""
HOST_SECRET_FILES = ("/etc/shadow", "/etc/gshadow", "/etc/shadow-", "/etc/gshadow-")
"""Host files hidden the same way (password hashes and their backups)."""


def masked_host_dirs(agent_data_dir: Path) -> list[str]:
    """The directories a host-root container sees as empty read-only tmpfs mounts.

    First kubeling's own data: the cluster's ``--data-dir`` (CA key, admin kubeconfig,
    ``state.db``), which is the parent of the agent's directory when the agent's is named
    ``agent`` (``Cluster`` runs the agent in ``<data-dir>/agent``), then the agent's own
    directory (pod volumes, secrets, bundles), then ``HOST_SECRET_DIRS``. Never ``/``.
    """
    agent = Path(os.path.realpath(agent_data_dir))
    dirs = []
    if agent.name == "agent" and agent.parent != Path("/"):
        dirs.append(str(agent.parent))
    if agent != Path("/"):
        dirs.append(str(agent))
    return [*dirs, *HOST_SECRET_DIRS]


def _host_root_masks(dirs: list[str], later: list[str]) -> list[dict[str, Any]]:
    """tmpfs mounts over ``dirs``: the outermost of nested ones, only those that exist on
    the host. Read-only unless a later mount (a volume) goes inside one, for which runc
    must create the mount point; that tmpfs is still empty and the container's own."""
    chosen: list[str] = []
    for d in dirs:
        if not os.path.isdir(d) or any(_inside(d, c) for c in chosen):
            continue
        chosen = [c for c in chosen if not _inside(c, d)] + [d]
    out = []
    for d in chosen:
        ro = not any(_inside(t, d) and t.rstrip("/") != d for t in later)
        options = ["nosuid", "nodev", "noexec", "mode=755", "size=64k"]
        out.append(
            {
                "destination": d,
                "type": "tmpfs",
                "source": "tmpfs",
                "options": [*options, "ro"] if ro else options,
            }
        )
    return out


def _inside(path: str, directory: str) -> bool:
    path, directory = path.rstrip("/") or "/", directory.rstrip("/") or "/"
    return path == directory or path.startswith(directory + "/")


def oci_spec(
    config: ContainerConfig, *, container_id: str, masked_dirs: list[str] | None = None
) -> dict[str, Any]:
    """The OCI runtime spec (config.json) for one container.

    On the host-root overlay (no image layers) ``masked_dirs`` (``masked_host_dirs``) are
    hidden under empty tmpfs mounts and ``HOST_SECRET_FILES`` under /dev/null (runc's
    ``maskedPaths``); volumes are mounted after, so one inside a masked directory works.
    """
    env = list(config.env)
    if not any(e.startswith("PATH=") for e in env):
        env.insert(0, DEFAULT_PATH)
    if config.hostname and not any(e.startswith("HOSTNAME=") for e in env):
        env.append(f"HOSTNAME={config.hostname}")
    caps = list(DEFAULT_CAPS)
    oci_mounts: list[dict[str, Any]] = [
        {"destination": "/proc", "type": "proc", "source": "proc"},
        {
            "destination": "/dev",
            "type": "tmpfs",
            "source": "tmpfs",
            "options": ["nosuid", "strictatime", "mode=755", "size=65536k"],
        },
        {
            "destination": "/dev/pts",
            "type": "devpts",
            "source": "devpts",
            "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620"],
        },
        {
            "destination": "/dev/shm",
            "type": "tmpfs",
            "source": "shm",
            "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"],
        },
        {
            "destination": "/dev/mqueue",
            "type": "mqueue",
            "source": "mqueue",
            "options": ["nosuid", "noexec", "nodev"],
        },
        {
            "destination": "/sys",
            "type": "sysfs",
            "source": "sysfs",
            "options": ["nosuid", "noexec", "nodev", "ro"],
        },
        {
            "destination": "/tmp",
            "type": "tmpfs",
            "source": "tmpfs",
            "options": ["nosuid", "nodev", "mode=1777"],
        },
        {
            "destination": "/run",
            "type": "tmpfs",
            "source": "tmpfs",
            "options": ["nosuid", "nodev", "mode=755"],
        },
    ]
    host_root = config.rootfs_layers is None
    if host_root:
        later = [m.container_path for m in config.mounts]
        oci_mounts.extend(_host_root_masks(list(masked_dirs or HOST_SECRET_DIRS), later))
    for m in config.mounts:
        options = ["rbind", "rprivate", "ro" if m.read_only else "rw"]
        oci_mounts.append(
            {
                "destination": m.container_path,
                "type": "bind",
                "source": str(m.host_path),
                "options": options,
            }
        )
    namespaces: list[dict[str, str]] = [
        {"type": "pid"},
        {"type": "ipc"},
        {"type": "uts"},
        {"type": "mount"},
    ]
    if config.netns_path is not None:
        namespaces.append({"type": "network", "path": str(config.netns_path)})
    else:
        namespaces.append({"type": "network"})
    resources: dict[str, Any] = {"devices": [{"allow": False, "access": "rwm"}]}
    if config.memory_limit:
        resources["memory"] = {"limit": config.memory_limit}
    if config.cpu_millis:
        period = 100_000
        resources["cpu"] = {
            "quota": max(1000, config.cpu_millis * period // 1000),
            "period": period,
        }
    user: dict[str, Any] = {"uid": config.uid, "gid": config.gid}
    if config.additional_gids:
        user["additionalGids"] = list(config.additional_gids)
    return {
        "ociVersion": "1.0.2",
        "process": {
            "terminal": False,
            "user": user,
            "args": config.argv,
            "env": env,
            "cwd": config.working_dir or "/",
            "capabilities": {k: caps for k in ("bounding", "effective", "permitted")},
            "noNewPrivileges": True,
        },
        "root": {"path": "rootfs", "readonly": True},
        "hostname": config.hostname or config.pod_name,
        "mounts": oci_mounts,
        "annotations": {
            ANNOTATION_POD_UID: config.pod_uid,
            ANNOTATION_CONTAINER: config.name,
        },
        "linux": {
            "cgroupsPath": cgroups_path(container_id),
            "namespaces": namespaces,
            "resources": resources,
            "maskedPaths": [
                "/proc/acpi",
                "/proc/kcore",
                "/proc/keys",
                "/proc/latency_stats",
                "/proc/timer_list",
                "/proc/timer_stats",
                "/proc/sched_debug",
                "/proc/scsi",
                "/sys/firmware",
                *(HOST_SECRET_FILES if host_root else ()),
            ],
            "readonlyPaths": [
                "/proc/asound",
                "/proc/bus",
                "/proc/fs",
                "/proc/irq",
                "/proc/sys",
                "/proc/sysrq-trigger",
            ],
        },
    }


def _rfc3339(epoch: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch))


class RuncExec(ExecSession):
    """``runc exec`` as a child of the agent: pipes, or a pty we hold the master of."""

    def __init__(self, proc: asyncio.subprocess.Process, *, master: int | None) -> None:
        self.proc = proc
        self.master = master
        self.tty = master is not None
        self._nudge: asyncio.Future[None] | None = None

    async def write_stdin(self, data: bytes) -> None:
        if self.master is not None:
            await asyncio.to_thread(os.write, self.master, data)
            return
        assert self.proc.stdin is not None
        self.proc.stdin.write(data)
        await self.proc.stdin.drain()

    async def close_stdin(self) -> None:
        if self.master is not None:
            # A terminal has no half-close; end-of-file is the EOF character.
            await asyncio.to_thread(os.write, self.master, b"\x04")
            return
        assert self.proc.stdin is not None
        self.proc.stdin.close()

    async def read_stdout(self, n: int = 65536) -> bytes:
        if self.master is not None:
            try:
                return await asyncio.to_thread(os.read, self.master, n)
            except OSError:  # EIO once the terminal's other side is closed
                return b""
        assert self.proc.stdout is not None
        return await self.proc.stdout.read(n)

    async def read_stderr(self, n: int = 65536) -> bytes:
        if self.master is not None:
            return b""
        assert self.proc.stderr is not None
        return await self.proc.stderr.read(n)

    async def resize(self, *, cols: int, rows: int) -> None:
        if self.master is not None:
            # runc copies the outer terminal's size to the inner one on SIGWINCH.
            fcntl.ioctl(self.master, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
            if self._nudge is None or self._nudge.done():
                self._nudge = asyncio.ensure_future(self._winch_again())

    async def _winch_again(self) -> None:
        # A resize that lands while runc exec is still starting (kubectl sends one first
        # thing) comes before runc listens for SIGWINCH and would be lost: say it again.
        for delay in (0.05, 0.2, 0.5):
            await asyncio.sleep(delay)
            if self.proc.returncode is not None:
                return
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.proc.pid, signal.SIGWINCH)

    async def wait(self) -> int:
        code = await self.proc.wait()
        return code

    async def kill(self) -> None:
        # Signal the pid directly: Process.kill() polls first, and a poll that reaps a child
        # which has just exited steals its status from asyncio's watcher (reported as 255).
        if self.proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.proc.pid, signal.SIGKILL)

    def close(self) -> None:
        if self._nudge is not None:
            self._nudge.cancel()
        if self.master is not None:
            os.close(self.master)
            self.master = None


class RuncRuntime(ContainerRuntime):
    name = "runc"
    runs_processes = True

    def __init__(self, *, data_dir: Path, runc: str = "runc") -> None:
        self.runc = shutil.which(runc) or runc
        self.base = data_dir / "runc"
        self.root = self.base / "root"
        self.bundles = self.base / "bundles"
        self.masked_dirs = masked_host_dirs(data_dir)
        self._reapers: set[asyncio.Future[int]] = set()

    async def _runc(self, *args: str, check: bool = True) -> tuple[int, str, str]:
        proc = await asyncio.create_subprocess_exec(
            self.runc,
            "--root",
            str(self.root),
            *args,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        out, err = await proc.communicate()
        code = proc.returncode or 0
        if check and code != 0:
            raise ContainerError(
                f"runc {args[0]} failed: {err.decode().strip() or out.decode().strip()}"
            )
        return code, out.decode(), err.decode()

    def _bundle(self, container_id: str) -> Path:
        return self.bundles / container_id

    async def _runc_state(self, container_id: str) -> dict[str, Any] | None:
        code, out, _ = await self._runc("state", container_id, check=False)
        if code != 0:
            return None
        state: dict[str, Any] = json.loads(out)
        return state

    async def start(self, container_id: str, config: ContainerConfig) -> ContainerStatus:
        bundle = self._bundle(container_id)
        if bundle.exists():
            await self.remove(container_id)
        self.root.mkdir(parents=True, exist_ok=True)
        rootfs = bundle / "rootfs"
        for d in ("rootfs", "upper", "work", "state"):
            (bundle / d).mkdir(parents=True, exist_ok=True)
        lower = ":".join(str(p) for p in config.rootfs_layers) if config.rootfs_layers else "/"
        try:
            mounts.mount(
                "overlay",
                rootfs,
                "overlay",
                0,
                f"lowerdir={lower},upperdir={bundle / 'upper'},workdir={bundle / 'work'}",
            )
            spec = oci_spec(config, container_id=container_id, masked_dirs=self.masked_dirs)
            (bundle / "config.json").write_text(json.dumps(spec, indent=1))
            config.log_path.parent.mkdir(parents=True, exist_ok=True)
            shim_log = os.open(
                bundle / "state" / "shim.log", os.O_WRONLY | os.O_CREAT | os.O_APPEND
            )
            try:
                # The shim runs as a script in isolated mode: it needs only the standard
                # library, and importing the kubeling package would double its start time.
                shim = await asyncio.create_subprocess_exec(
                    sys.executable,
                    "-I",
                    str(Path(__file__).with_name("shim.py")),
                    "--runc",
                    self.runc,
                    "--root",
                    str(self.root),
                    "--bundle",
                    str(bundle),
                    "--id",
                    container_id,
                    "--log",
                    str(config.log_path),
                    stdin=asyncio.subprocess.DEVNULL,
                    stdout=shim_log,
                    stderr=shim_log,
                    start_new_session=True,
                )
            finally:
                os.close(shim_log)
            # The shim is reaped by a watcher task so it never lingers as a zombie.
            task = asyncio.ensure_future(shim.wait())
            self._reapers.add(task)
            task.add_done_callback(self._reapers.discard)
            deadline = time.monotonic() + 30
            state_dir = bundle / "state"
            while time.monotonic() < deadline:
                if not (state_dir / "pid").exists() and not (state_dir / "exit.json").exists():
                    # Cheap until runc has written the pid file; only then ask runc.
                    await asyncio.sleep(0.005)
                    continue
                status = await self.status(container_id)
                if status is not None and status.state == "running":
                    return status
                if status is not None and status.state == "exited":
                    if not (bundle / "state" / "pid").exists():
                        # runc never got the process going: that is a start error, not an exit.
                        raise ContainerError(
                            f"container {container_id} failed to start: {self._failure(config)}"
                        )
                    return status
                await asyncio.sleep(0.02)
            raise ContainerError(
                f"container {container_id} did not start: {self._shim_log(container_id)}"
            )
        except BaseException:
            await self.remove(container_id)
            raise

    @staticmethod
    def _failure(config: ContainerConfig) -> str:
        try:
            lines = config.log_path.read_text(errors="replace").splitlines()
        except OSError:
            return "no output"
        return lines[-1].split(" ", 3)[-1] if lines else "no output"

    def _shim_log(self, container_id: str) -> str:
        try:
            return (self._bundle(container_id) / "state" / "shim.log").read_text()[-2000:].strip()
        except OSError:
            return ""

    def _exit_record(self, container_id: str) -> dict[str, Any] | None:
        try:
            record: dict[str, Any] = json.loads(
                (self._bundle(container_id) / "state" / "exit.json").read_text()
            )
            return record
        except (OSError, ValueError):
            return None

    async def status(self, container_id: str) -> ContainerStatus | None:
        bundle = self._bundle(container_id)
        if not bundle.exists():
            return None
        started = ""
        pid_file = bundle / "state" / "pid"
        if pid_file.exists():
            started = _rfc3339(pid_file.stat().st_mtime)
        record = self._exit_record(container_id)
        if record is not None:
            return ContainerStatus(
                id=container_id,
                state="exited",
                exit_code=int(record["exitCode"]),
                started_at=started,
                finished_at=record.get("finishedAt", ""),
                oom_killed=bool(record.get("oomKilled")),
            )
        state = await self._runc_state(container_id)
        if state is None:
            # Neither running nor recorded as exited: still being created, or the shim died.
            return ContainerStatus(id=container_id, state="unknown" if started else "created")
        status = state.get("status")
        if status == "running":
            return ContainerStatus(
                id=container_id, state="running", pid=int(state.get("pid") or 0), started_at=started
            )
        if status == "stopped":
            return ContainerStatus(id=container_id, state="unknown", started_at=started)
        return ContainerStatus(id=container_id, state="created")

    async def wait(self, container_id: str, *, within: float | None = None) -> ContainerStatus:
        deadline = None if within is None else time.monotonic() + within
        delay = 0.01
        while True:
            status = await self.status(container_id)
            if status is None:
                raise ContainerError(f"container {container_id} not found")
            if status.state == "exited":
                return status
            if deadline is not None and time.monotonic() >= deadline:
                raise TimeoutError(f"container {container_id} still {status.state}")
            await asyncio.sleep(delay)
            delay = min(delay * 2, 0.2)

    async def stop(self, container_id: str, *, grace_seconds: float = 30) -> ContainerStatus | None:
        status = await self.status(container_id)
        if status is None or status.state == "exited":
            return status
        await self._runc("kill", container_id, "TERM", check=False)
        try:
            return await self.wait(container_id, within=grace_seconds)
        except TimeoutError:
            pass
        await self._runc("kill", "--all", container_id, "KILL", check=False)
        try:
            return await self.wait(container_id, within=10)
        except TimeoutError:
            # The shim is gone (killed with the agent's session?): clean up through runc.
            await self._runc("delete", "--force", container_id, check=False)
            return await self.status(container_id)

    async def remove(self, container_id: str) -> None:
        bundle = self._bundle(container_id)
        state = await self._runc_state(container_id)
        if state is not None and state.get("status") in ("running", "created", "paused"):
            await self.stop(container_id, grace_seconds=0)
        await self._runc("delete", "--force", container_id, check=False)
        # The shim writes exit.json after runc returns; give it the moment it needs so it
        # does not write into a bundle we are deleting.
        shim_pid = self._read_int(bundle / "state" / "shim.pid")
        deadline = time.monotonic() + 10
        while True:
            if not shim_pid or not _alive(shim_pid) or time.monotonic() >= deadline:
                break
            await asyncio.sleep(0.02)
        if bundle.exists():
            mounts.unmount_all_under(bundle)
            shutil.rmtree(bundle, ignore_errors=True)

    @staticmethod
    def _read_int(path: Path) -> int:
        try:
            return int(path.read_text().strip())
        except (OSError, ValueError):
            return 0

    async def exec(
        self,
        container_id: str,
        argv: list[str],
        *,
        tty: bool = False,
        env: list[str] | None = None,
        size: tuple[int, int] | None = None,
    ) -> ExecSession:
        status = await self.status(container_id)
        if status is None or status.state != "running":
            raise ContainerError(f"container {container_id} is not running")
        exec_id = secrets.token_hex(32)
        pid_file = self._bundle(container_id) / "state" / f"exec-{exec_id[:16]}.pid"
        # JSON logs: with a terminal runc would colour its text log lines.
        args = [self.runc, "--root", str(self.root), "--log-format", "json", "exec"]
        args += ["--pid-file", str(pid_file)]
        for e in env or ():
            args += ["--env", e]
        if tty:
            args.append("--tty")
        args += [container_id, *argv]
        master: int | None = None
        if not tty:
            proc = await asyncio.create_subprocess_exec(
                *args,
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
            )
        else:
            master, slave = pty.openpty()
            if size is not None:
                cols, rows = size
                fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))

            def controlling_terminal() -> None:
                # runc sizes the container's terminal from its own: make ours its controlling
                # tty.
                fcntl.ioctl(0, termios.TIOCSCTTY, 0)

            try:
                proc = await asyncio.create_subprocess_exec(
                    *args,
                    stdin=slave,
                    stdout=slave,
                    stderr=slave,
                    start_new_session=True,
                    preexec_fn=controlling_terminal,
                )
            finally:
                os.close(slave)
        session = RuncExec(proc, master=master)
        try:
            await self._exec_started(session, pid_file, exec_id)
        except BaseException:
            session.close()
            raise
        finally:
            pid_file.unlink(missing_ok=True)
        return session

    @staticmethod
    async def _exec_started(session: RuncExec, pid_file: Path, exec_id: str) -> None:
        """Until runc has started the process (it writes ``--pid-file``) or has given up.

        A command that cannot start (no such executable) is runc's exit 255 with its log
        line on stderr, which must not reach the client as the command's own output and
        exit code: it becomes the error containerd reports for it, which the kubelet's
        streaming server sends as an internal error.
        """
        exited = asyncio.ensure_future(session.proc.wait())
        delay = 0.002
        while not exited.done() and not _exists(pid_file):
            await asyncio.wait({exited}, timeout=delay)
            delay = min(delay * 2, 0.05)
        if _exists(pid_file):
            return
        if session.master is not None:
            output = await asyncio.to_thread(_drain, session.master)
        else:
            assert session.proc.stderr is not None and session.proc.stdout is not None
            output = await session.proc.stderr.read() + await session.proc.stdout.read()
        raise ExecStartError(
            "Internal error occurred: error executing command in container: failed to exec in "
            f'container: failed to start exec "{exec_id}": OCI runtime exec failed: '
            f"{runc_error(output.decode(errors='replace'))}: unknown"
        )

    async def _runc_list(self) -> list[dict[str, Any]]:
        """``runc list``, which fails outright when another container's state directory
        goes away while it reads it (a concurrent delete): retried, then, if it keeps
        failing, rebuilt from ``runc state`` of each state directory still there."""
        error = ""
        for attempt in range(3):
            code, out, err = await self._runc("list", "--format", "json", check=False)
            if code == 0:
                listed: list[dict[str, Any]] = json.loads(out or "null") or []
                return listed
            error = err.strip() or out.strip()
            await asyncio.sleep(0.01 * (attempt + 1))
        log.debug("runc list kept failing (%s); reading each container's state", error)
        entries = []
        for d in sorted(self.root.iterdir()) if self.root.exists() else []:
            state = await self._runc_state(d.name)
            if state is not None:
                entries.append(state)
        return entries

    async def list_containers(self) -> list[ContainerInfo]:
        if not self.root.exists():
            return []
        infos = []
        for entry in await self._runc_list():
            ann = entry.get("annotations") or {}
            state = {"running": "running", "created": "created", "stopped": "exited"}.get(
                entry.get("status", ""), "unknown"
            )
            infos.append(
                ContainerInfo(
                    id=entry["id"],
                    pod_uid=ann.get(ANNOTATION_POD_UID, ""),
                    container_name=ann.get(ANNOTATION_CONTAINER, ""),
                    state=state,  # type: ignore[arg-type]
                )
            )
        # Bundles whose container already exited are not in runc's list but still ours.
        known = {i.id for i in infos}
        if self.bundles.exists():
            for bundle in sorted(self.bundles.iterdir()):
                if bundle.name in known:
                    continue
                try:
                    ann = json.loads((bundle / "config.json").read_text()).get("annotations") or {}
                except (OSError, ValueError):
                    ann = {}
                infos.append(
                    ContainerInfo(
                        id=bundle.name,
                        pod_uid=ann.get(ANNOTATION_POD_UID, ""),
                        container_name=ann.get(ANNOTATION_CONTAINER, ""),
                        state="exited" if self._exit_record(bundle.name) else "unknown",
                    )
                )
        return infos


def runc_error(output: str) -> str:
    """The message of runc's last error log line (``--log-format json``); else the text."""
    message = ""
    for line in output.splitlines():
        try:
            entry = json.loads(line.strip())
        except ValueError:
            continue
        if isinstance(entry, dict) and entry.get("level") in ("error", "fatal"):
            message = str(entry.get("msg", ""))
    return message or output.strip() or "exec failed"


def _exists(path: Path) -> bool:
    return path.exists()


def _drain(fd: int) -> bytes:
    out = b""
    while True:
        try:
            chunk = os.read(fd, 65536)
        except OSError:  # EIO: the terminal's other side is closed and nothing is left
            return out
        if not chunk:
            return out
        out += chunk


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie is dead for our purpose; its parent (us) reaps it through the reaper task.
    try:
        with open(f"/proc/{pid}/stat", encoding="utf-8") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False
