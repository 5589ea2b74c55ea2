"""Container runtimes (runc, simulated) and the choice between them.

``select_runtime`` decides once, at agent start, and returns the reason in a sentence the
caller logs and can put in an event, so a user on a machine without runc learns why pods
have no processes.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from kubeling.agent.errors import ContainerError
from kubeling.agent.runtime.base import (
    ContainerConfig,
    ContainerInfo,
    ContainerRuntime,
    ContainerState,
    ContainerStatus,
    ExecSession,
    Mount,
)
from kubeling.agent.runtime.runc import RuncRuntime
from kubeling.agent.runtime.simulated import SimulatedRuntime

__all__ = [
    "ContainerConfig",
    "ContainerInfo",
    "ContainerRuntime",
    "ContainerState",
    "ContainerStatus",
    "ExecSession",
    "Mount",
    "RuncRuntime",
    "SimulatedRuntime",
    "runc_unavailable_reason",
    "select_runtime",
]


def runc_unavailable_reason(runc: str = "runc") -> str | None:
    """Why runc containers cannot run here, or None when they can."""
    if os.uname().sysname != "Linux":
        return f"runc needs Linux (this is {os.uname().sysname})"
    if os.geteuid() != 0:
        return f"runc needs root (running as uid {os.geteuid()})"
    if shutil.which(runc) is None:
        return f"{runc} is not installed (scripts/bootstrap.sh installs it)"
    with open("/proc/filesystems", encoding="utf-8") as f:
        if not any(line.split()[-1] == "overlay" for line in f if line.strip()):
            return "the kernel has no overlay filesystem for container roots"
    if shutil.which("ip") is None:
        return "iproute2 (`ip`) is not installed, so pods cannot get a network namespace"
    return None


def select_runtime(
    mode: str, *, data_dir: Path, runc: str = "runc"
) -> tuple[ContainerRuntime, str]:
    """``auto`` | ``runc`` | ``simulated`` → (runtime, the reason for it, one sentence)."""
    if mode == "simulated":
        return (
            SimulatedRuntime(),
            "Using the simulated runtime, as requested: pods run no processes.",
        )
    if mode not in ("auto", "runc"):
        raise ValueError(f"unknown runtime {mode!r}: expected auto, runc or simulated")
    problem = runc_unavailable_reason(runc)
    if problem is None:
        return RuncRuntime(data_dir=data_dir, runc=runc), (
            f"Using the runc runtime ({shutil.which(runc)}): containers run for real."
        )
    if mode == "runc":
        raise ContainerError(f"the runc runtime was requested but {problem}")
    return SimulatedRuntime(), (
        f"Using the simulated runtime because {problem}: pods go Running without processes; "
        "volumes are still prepared on disk."
    )
