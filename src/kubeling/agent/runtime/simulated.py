"""The simulated runtime: the same interface with no processes, for machines without runc.

A simulated container is "running" from ``start`` until ``stop``, unless its command says
how it ends. The rule, applied to the container's argv:

- ``true`` → exits 0 at once; ``false`` → exits 1 at once;
- a shell script (``sh -c '...'``) or argv whose last two words are ``exit N`` → exits N
  at once;
- anything else (including no command) runs until stopped; ``stop`` records exit code 143
  (128 + SIGTERM, what a process that honours SIGTERM reports).

Logs and exec raise ``NotSupportedError``: there is no process to read from or enter.
Volumes are still prepared on disk by the sandbox, so file contents can be checked.
"""

from __future__ import annotations

import asyncio
import os
import shlex
import time

from kubeling.agent.errors import ContainerError, NotSupportedError
from kubeling.agent.runtime.base import (
    ContainerConfig,
    ContainerInfo,
    ContainerRuntime,
    ContainerStatus,
    ExecSession,
)

STOPPED_EXIT_CODE = 143


def simulated_exit_code(argv: list[str]) -> int | None:
    """The exit code the rule above gives ``argv``, or None for "runs until stopped"."""
    if not argv:
        return None
    base = os.path.basename(argv[0])
    if base == "true" and len(argv) == 1:
        return 0
    if base == "false" and len(argv) == 1:
        return 1
    words = list(argv)
    if len(argv) >= 3 and argv[-2] == "-c":
        try:
            words = shlex.split(argv[-1].replace(";", " ; "))
        except ValueError:
            return None
    if len(words) >= 2 and words[-2] == "exit" and words[-1].isdigit():
        return int(words[-1]) % 256
    return None


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


class SimulatedRuntime(ContainerRuntime):
    name = "simulated"
    runs_processes = False

    def __init__(self) -> None:
        self._containers: dict[str, tuple[ContainerConfig, ContainerStatus]] = {}
        self._changed = asyncio.Condition()

    async def start(self, container_id: str, config: ContainerConfig) -> ContainerStatus:
        code = simulated_exit_code(config.argv)
        now = _now()
        if code is None:
            status = ContainerStatus(id=container_id, state="running", pid=0, started_at=now)
        else:
            status = ContainerStatus(
                id=container_id, state="exited", exit_code=code, started_at=now, finished_at=now
            )
        await self._set(container_id, config, status)
        return status

    async def _set(
        self, container_id: str, config: ContainerConfig, status: ContainerStatus
    ) -> None:
        async with self._changed:
            self._containers[container_id] = (config, status)
            self._changed.notify_all()

    async def status(self, container_id: str) -> ContainerStatus | None:
        entry = self._containers.get(container_id)
        return entry[1] if entry else None

    async def wait(self, container_id: str, *, within: float | None = None) -> ContainerStatus:
        async def exited() -> ContainerStatus:
            async with self._changed:
                while True:
                    entry = self._containers.get(container_id)
                    if entry is None:
                        raise ContainerError(f"container {container_id} not found")
                    if entry[1].state == "exited":
                        return entry[1]
                    await self._changed.wait()

        return await asyncio.wait_for(exited(), within)

    async def stop(self, container_id: str, *, grace_seconds: float = 30) -> ContainerStatus | None:
        entry = self._containers.get(container_id)
        if entry is None:
            return None
        config, status = entry
        if status.state != "exited":
            status = ContainerStatus(
                id=container_id,
                state="exited",
                exit_code=STOPPED_EXIT_CODE,
                started_at=status.started_at,
                finished_at=_now(),
            )
            await self._set(container_id, config, status)
        return status

    async def remove(self, container_id: str) -> None:
        async with self._changed:
            self._containers.pop(container_id, None)
            self._changed.notify_all()

    async def exec(
        self,
        container_id: str,
        argv: list[str],
        *,
        tty: bool = False,
        env: list[str] | None = None,
        size: tuple[int, int] | None = None,
    ) -> ExecSession:
        raise NotSupportedError(
            "the simulated runtime runs no processes: exec is not available "
            "(start kubeling as root with runc installed for real containers)"
        )

    async def list_containers(self) -> list[ContainerInfo]:
        return [
            ContainerInfo(id=cid, pod_uid=cfg.pod_uid, container_name=cfg.name, state=st.state)
            for cid, (cfg, st) in self._containers.items()
        ]
