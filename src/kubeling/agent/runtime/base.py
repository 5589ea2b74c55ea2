"""The container runtime interface the sandbox drives, and the values it passes around.

A runtime knows containers by an id (``<pod uid>_<container name>``); it does not know
pods, volumes or the network — the sandbox resolves those into a ``ContainerConfig`` of
plain paths and numbers. Every call is async; a runtime keeps its state on disk where it
can (runc does) so a restarted agent can adopt what is still running.
"""

from __future__ import annotations

import abc
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from kubeling.agent.errors import ContainerError

ContainerState = Literal["created", "running", "exited", "unknown"]


@dataclass(frozen=True)
class Mount:
    """A bind mount into the container (a volume, a subPath or /etc/hosts)."""

    host_path: Path
    container_path: str
    read_only: bool = False


@dataclass
class ContainerConfig:
    """Everything a runtime needs to start one container, already resolved."""

    pod_uid: str
    pod_namespace: str
    pod_name: str
    name: str
    argv: list[str]
    log_path: Path
    env: list[str] = field(default_factory=list)
    """``NAME=value`` strings, in order."""
    working_dir: str = "/"
    uid: int = 0
    gid: int = 0
    additional_gids: list[int] = field(default_factory=list)
    """Supplementary groups: the pod's ``fsGroup`` then its ``supplementalGroups``."""
    hostname: str = ""
    mounts: list[Mount] = field(default_factory=list)
    netns_path: Path | None = None
    rootfs_layers: list[Path] | None = None
    """Image layers, top first; None = a read-only overlay of the host's root."""
    memory_limit: int | None = None
    cpu_millis: int | None = None
    restart_count: int = 0


@dataclass(frozen=True)
class ContainerStatus:
    id: str
    state: ContainerState
    pid: int = 0
    exit_code: int | None = None
    started_at: str = ""
    finished_at: str = ""
    """RFC 3339 UTC timestamps; empty when not known."""
    oom_killed: bool = False
    """The container's memory cgroup OOM-killed one of its processes (upstream's reason
    ``OOMKilled``, whatever the exit code)."""


@dataclass(frozen=True)
class ContainerInfo:
    """A container found by ``list()``, with the labels kubeling put on it."""

    id: str
    pod_uid: str
    container_name: str
    state: ContainerState


class ExecStartError(ContainerError):
    """An exec whose command never started (no such executable, say); the message is the
    whole text the kubelet's streaming server reports for it (an internal error)."""


class ExecSession(abc.ABC):
    """A process running inside a container, with its streams and exit code."""

    tty: bool

    @abc.abstractmethod
    async def write_stdin(self, data: bytes) -> None: ...

    @abc.abstractmethod
    async def close_stdin(self) -> None: ...

    @abc.abstractmethod
    async def read_stdout(self, n: int = 65536) -> bytes:
        """The next bytes of stdout (the terminal with a tty); ``b""`` at the end."""

    @abc.abstractmethod
    async def read_stderr(self, n: int = 65536) -> bytes:
        """The next bytes of stderr; always ``b""`` with a tty (merged into stdout)."""

    @abc.abstractmethod
    async def resize(self, *, cols: int, rows: int) -> None: ...

    @abc.abstractmethod
    async def wait(self) -> int:
        """The process's exit code."""

    @abc.abstractmethod
    async def kill(self) -> None: ...

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release the session's terminal (tty sessions); call after ``wait``."""


class ContainerRuntime(abc.ABC):
    name: str
    runs_processes: bool

    @abc.abstractmethod
    async def start(self, container_id: str, config: ContainerConfig) -> ContainerStatus:
        """Create and start; returns once the container is running (or already exited)."""

    @abc.abstractmethod
    async def status(self, container_id: str) -> ContainerStatus | None:
        """None when the runtime has no such container."""

    @abc.abstractmethod
    async def wait(self, container_id: str, *, within: float | None = None) -> ContainerStatus:
        """Until the container has exited (``TimeoutError`` after ``within`` seconds)."""

    @abc.abstractmethod
    async def stop(self, container_id: str, *, grace_seconds: float = 30) -> ContainerStatus | None:
        """SIGTERM, then SIGKILL after the grace period; returns the final status."""

    @abc.abstractmethod
    async def remove(self, container_id: str) -> None:
        """Stop if needed and delete everything the runtime holds for it; idempotent."""

    @abc.abstractmethod
    async def exec(
        self,
        container_id: str,
        argv: list[str],
        *,
        tty: bool = False,
        env: list[str] | None = None,
        size: tuple[int, int] | None = None,
    ) -> ExecSession:
        """Start ``argv`` in the container; with ``tty``, ``size`` (cols, rows) is the
        terminal's size from the first moment (a later ``resize`` can race the command)."""

    @abc.abstractmethod
    async def list_containers(self) -> list[ContainerInfo]: ...

    async def adopt_or_remove(
        self, keep: Callable[[ContainerInfo], bool]
    ) -> tuple[list[ContainerInfo], list[ContainerInfo]]:
        """At agent start: keep the containers ``keep`` accepts, remove the rest."""
        adopted, removed = [], []
        for info in await self.list_containers():
            if keep(info):
                adopted.append(info)
            else:
                await self.remove(info.id)
                removed.append(info)
        return adopted, removed

    async def close(self) -> None:  # noqa: B027 - optional hook
        """Release runtime-wide resources (not containers)."""
