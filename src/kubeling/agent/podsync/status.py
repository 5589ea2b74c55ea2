"""PodStatus from what the worker knows: pure functions over ``ContainerRecord``s.

The phase follows the kubelet's ``getPhase``: init containers not done keep the pod
Pending (or Failed when one failed under ``restartPolicy: Never``); a container waiting
for its first start keeps it Pending; one running makes it Running; when all have stopped,
``Always`` (and ``OnFailure`` with a failure) means Running — they are about to restart —
else Succeeded or Failed. Conditions carry upstream's reasons and messages
(``ContainersNotReady`` / ``containers with unready status: [a b]``), and keep their
``lastTransitionTime`` until their status really changes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime

from kubeling.machinery.types import Obj


def now_rfc3339() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class ContainerRecord:
    """What the worker knows of one container, in the API's terms."""

    name: str
    image: str
    init: bool = False
    restart_count: int = 0
    state: Obj = field(default_factory=lambda: {"waiting": {"reason": "ContainerCreating"}})
    last_state: Obj = field(default_factory=dict)
    container_id: str = ""
    image_id: str = ""
    ready: bool = False
    started: bool = False
    """Startup probe passed (or none): liveness and readiness probes run only after."""
    ever_started: bool = False

    @property
    def running(self) -> bool:
        return "running" in self.state

    @property
    def terminated(self) -> Obj | None:
        t: Obj | None = self.state.get("terminated")
        return t

    @property
    def succeeded(self) -> bool:
        t = self.terminated
        return t is not None and t.get("exitCode") == 0

    def to_status(self) -> Obj:
        out: Obj = {
            "name": self.name,
            "state": self.state,
            "lastState": self.last_state,
            # An init container that completed counts as ready (upstream's prober manager).
            "ready": self.ready or (self.init and self.succeeded),
            "restartCount": self.restart_count,
            "image": self.image,
            "imageID": self.image_id,
        }
        if self.container_id:
            out["containerID"] = self.container_id
        out["started"] = self.running and self.started
        return out


def restart_wanted(policy: str, exit_code: int) -> bool:
    if policy == "Always":
        return True
    if policy == "OnFailure":
        return exit_code != 0
    return False


def pod_phase(
    *, init: list[ContainerRecord], main: list[ContainerRecord], restart_policy: str
) -> str:
    for c in init:
        if c.succeeded:
            continue
        t = c.terminated
        if t is not None and restart_policy == "Never":
            return "Failed"
        return "Pending"
    running = waiting = stopped = succeeded = failed = 0
    for c in main:
        if c.running:
            running += 1
        elif c.terminated is not None:
            stopped += 1
            if c.succeeded:
                succeeded += 1
            else:
                failed += 1
        elif c.last_state.get("terminated"):
            # Waiting to restart (CrashLoopBackOff): it has run, so it counts as stopped.
            stopped += 1
            if c.last_state["terminated"].get("exitCode") == 0:
                succeeded += 1
            else:
                failed += 1
        else:
            waiting += 1
    if waiting:
        return "Pending"
    if running:
        return "Running"
    if stopped:
        if restart_policy == "Always":
            return "Running"
        if failed == 0:
            return "Succeeded"
        if restart_policy == "OnFailure":
            return "Running"
        return "Failed"
    return "Pending"


def _names(records: list[ContainerRecord]) -> str:
    return "[" + " ".join(c.name for c in records) + "]"


def conditions(
    *,
    previous: list[Obj],
    sandbox_ready: bool,
    init: list[ContainerRecord],
    main: list[ContainerRecord],
    phase: str,
) -> list[Obj]:
    """Upstream's pod conditions merged into ``previous`` (PodScheduled is kept as it is)."""
    wanted: dict[str, tuple[str, str, str]] = {}
    wanted["PodReadyToStartContainers"] = ("True" if sandbox_ready else "False", "", "")
    pending_init = [c for c in init if not c.succeeded]
    if phase == "Succeeded" and not pending_init:
        wanted["Initialized"] = ("True", "PodCompleted", "")
    elif pending_init:
        wanted["Initialized"] = (
            "False",
            "ContainersNotInitialized",
            f"containers with incomplete status: {_names(pending_init)}",
        )
    else:
        wanted["Initialized"] = ("True", "", "")
    unready = [c for c in main if not c.ready]
    if phase == "Succeeded":
        ready = ("False", "PodCompleted", "")
    elif phase == "Failed" and unready:
        ready = ("False", "PodFailed", "")
    elif unready:
        ready = (
            "False",
            "ContainersNotReady",
            f"containers with unready status: {_names(unready)}",
        )
    else:
        ready = ("True", "", "")
    wanted["ContainersReady"] = ready
    wanted["Ready"] = ready
    now = now_rfc3339()
    by_type = {c.get("type"): c for c in previous}
    out: list[Obj] = []
    order = ["PodReadyToStartContainers", "Initialized", "Ready", "ContainersReady"]
    for ctype in order:
        status, reason, message = wanted[ctype]
        old = by_type.get(ctype) or {}
        cond: Obj = {"type": ctype, "status": status, "lastProbeTime": None}
        cond["lastTransitionTime"] = (
            old.get("lastTransitionTime") if old.get("status") == status else now
        ) or now
        if reason:
            cond["reason"] = reason
        if message:
            cond["message"] = message
        out.append(cond)
    out.extend(c for t, c in by_type.items() if t not in order)
    # PodScheduled first, as upstream lists it.
    out.sort(key=lambda c: 0 if c.get("type") == "PodScheduled" else 1)
    return out
