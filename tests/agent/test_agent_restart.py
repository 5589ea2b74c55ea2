"""What survives a stop and start of the node agent (simulated runtime; runc versions of
the main cases are in test_kubelet_runc.py).

Each test stops one ``Kubelet`` as SIGTERM to ``kubeling up`` does (``stop``) and starts a
second one on the same data directory against the same API, as the next ``kubeling up``.
"""

from __future__ import annotations

import inspect
import json
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from kubeling.agent import mounts
from kubeling.agent.kubelet import Kubelet
from kubeling.client.local import LocalClient
from kubeling.machinery.resources import CONFIGMAPS, PODS, SERVICEACCOUNTS
from kubeling.machinery.types import Obj
from kubeling.registry.registry import Registry
from kubeling.storage.memory import MemoryBackend
from tests.agent.test_kubelet import NODE, bound_pod_uids, pod_dirs_left, sleeper
from tests.helpers.waiting import wait_until


@dataclass
class Agents:
    client: LocalClient
    data_dir: Path
    started: list[Kubelet]

    async def start(self) -> Kubelet:
        k = Kubelet(
            self.client,
            node_name=NODE,
            data_dir=self.data_dir,
            runtime="simulated",
            backoff_base=0.05,
            backoff_max=0.4,
            lease_seconds=1,
            shutdown_grace=1,
        )
        self.started.append(k)
        await k.start()
        return k

    async def create_pod(self, name: str, containers: list[Obj], **spec: Any) -> Obj:
        spec.setdefault("automountServiceAccountToken", False)
        body = {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": name, "namespace": "default"},
            "spec": {"nodeName": NODE, "containers": containers, **spec},
        }
        return await self.client.create(PODS, body, namespace="default")

    async def status(self, name: str) -> Obj:
        pod = await self.client.get(PODS, name=name, namespace="default")
        return pod.get("status") or {}

    async def wait_status(self, name: str, check: Callable[[Obj], bool], what: str) -> Obj:
        async def reached() -> Obj | None:
            status = await self.status(name)
            return status if check(status) else None

        result: Obj = await wait_until(reached, what=what)
        return result


@pytest.fixture
async def agents(tmp_path: Path) -> AsyncIterator[Agents]:
    backend = MemoryBackend()
    await backend.start()
    registry = Registry.open(backend=backend)
    if inspect.isawaitable(registry):
        registry = await registry
    await registry.bootstrap()
    client = LocalClient(registry)
    await client.create(SERVICEACCOUNTS, {"metadata": {"name": "default"}}, namespace="default")
    out = Agents(client=client, data_dir=tmp_path / "agent", started=[])
    try:
        yield out
    finally:
        bound = await bound_pod_uids(client)
        for k in out.started:
            await k.stop()
        assert mounts.mounts_under(tmp_path) == []
        assert pod_dirs_left(out.data_dir) <= bound
        await backend.close()


def running_after_restart(count: int) -> Callable[[Obj], bool]:
    def check(status: Obj) -> bool:
        cs = (status.get("containerStatuses") or [{}])[0]
        return "running" in (cs.get("state") or {}) and cs.get("restartCount") == count

    return check


def empty_dir(data_dir: Path, uid: str, volume: str) -> Path:
    return data_dir / "pods" / uid / "volumes" / "kubernetes.io~empty-dir" / volume


async def test_stop_keeps_disk_empty_dirs_and_the_restart_is_counted(agents: Agents) -> None:
    await agents.client.create(
        CONFIGMAPS, {"metadata": {"name": "conf"}, "data": {"k": "one"}}, namespace="default"
    )
    first = await agents.start()
    pod = await agents.create_pod(
        "keep",
        [
            sleeper(
                volumeMounts=[{"name": "d", "mountPath": "/d"}, {"name": "cm", "mountPath": "/c"}]
            )
        ],
        volumes=[
            {"name": "d", "emptyDir": {}},
            {"name": "mem", "emptyDir": {"medium": "Memory"}},
            {"name": "cm", "configMap": {"name": "conf"}},
        ],
    )
    uid = pod["metadata"]["uid"]
    await agents.wait_status("keep", running_after_restart(0), "keep running")
    marker = empty_dir(agents.data_dir, uid, "d") / "marker"
    marker.write_text("precious\n")
    in_memory = empty_dir(agents.data_dir, uid, "mem") / "gone"
    in_memory.write_text("lost at stop when it is a tmpfs\n")
    tmpfs = mounts.is_mount_point(in_memory.parent)
    cm_file = agents.data_dir / "pods" / uid / "volumes" / "kubernetes.io~configmap" / "cm" / "k"
    assert cm_file.read_text() == "one"

    await first.stop()
    agents.started.remove(first)
    assert marker.read_text() == "precious\n"  # the pod is still bound: its data stays
    assert in_memory.exists() is not tmpfs  # medium: Memory is lost (without root: a dir)
    assert not cm_file.exists()  # everything else is written again at the next start
    assert mounts.mounts_under(agents.data_dir) == []
    await agents.client.patch(
        CONFIGMAPS,
        name="conf",
        namespace="default",
        patch={"data": {"k": "two"}},
        patch_type="merge",
    )

    await agents.start()
    status = await agents.wait_status("keep", running_after_restart(1), "keep restarted")
    cs = status["containerStatuses"][0]
    term = cs["lastState"]["terminated"]
    assert (term["exitCode"], term["reason"]) == (143, "Error")  # SIGTERM, as recorded
    assert term["finishedAt"] and term["startedAt"]
    assert term["containerID"] == f"simulated://{uid}_c"
    assert marker.read_text() == "precious\n"
    assert cm_file.read_text() == "two"
    # The record of the stop was used once: the next stop writes a new one.
    assert not (agents.data_dir / "pods" / uid / "containers" / "c" / "agent-stop.json").exists()


async def test_a_second_stop_and_start_counts_again(agents: Agents) -> None:
    first = await agents.start()
    await agents.create_pod("twice", [sleeper()])
    await agents.wait_status("twice", running_after_restart(0), "twice running")
    await first.stop()
    agents.started.remove(first)
    second = await agents.start()
    await agents.wait_status("twice", running_after_restart(1), "first restart")
    await second.stop()
    agents.started.remove(second)
    await agents.start()
    status = await agents.wait_status("twice", running_after_restart(2), "second restart")
    assert status["containerStatuses"][0]["lastState"]["terminated"]["exitCode"] == 143


async def test_pod_deleted_while_the_agent_was_down_goes_entirely(agents: Agents) -> None:
    first = await agents.start()
    pod = await agents.create_pod(
        "drop",
        [sleeper()],
        volumes=[{"name": "d", "emptyDir": {}}],
        terminationGracePeriodSeconds=0,
    )
    uid = pod["metadata"]["uid"]
    await agents.wait_status("drop", running_after_restart(0), "drop running")
    await first.stop()
    agents.started.remove(first)
    assert (agents.data_dir / "pods" / uid).is_dir()
    await agents.client.delete(PODS, name="drop", namespace="default", grace_period_seconds=0)
    await agents.start()
    assert not (agents.data_dir / "pods" / uid).exists()
    assert not list((agents.data_dir / "logs" / "pods").glob(f"*_{uid}"))


async def test_init_containers_run_again_and_count_a_restart(agents: Agents) -> None:
    first = await agents.start()
    await agents.create_pod(
        "init",
        [sleeper()],
        initContainers=[{"name": "setup", "image": "busybox", "command": ["true"]}],
    )
    await agents.wait_status("init", running_after_restart(0), "init pod running")
    await first.stop()
    agents.started.remove(first)
    await agents.start()
    status = await agents.wait_status("init", running_after_restart(1), "init pod restarted")
    setup = status["initContainerStatuses"][0]
    # The sandbox is new, so the init container ran again, as upstream after a reboot.
    assert setup["restartCount"] == 1
    assert setup["state"]["terminated"]["reason"] == "Completed"
    assert setup["lastState"]["terminated"]["exitCode"] == 0


async def test_never_pod_stopped_with_the_agent_ends_failed(agents: Agents) -> None:
    first = await agents.start()
    pod = await agents.create_pod("once", [sleeper()], restartPolicy="Never")
    await agents.wait_status("once", running_after_restart(0), "once running")
    await first.stop()
    agents.started.remove(first)
    await agents.start()
    status = await agents.wait_status(
        "once", lambda s: s.get("phase") == "Failed", "the Never pod Failed"
    )
    cs = status["containerStatuses"][0]
    assert cs["restartCount"] == 0
    assert cs["state"]["terminated"]["exitCode"] == 143
    assert not (agents.data_dir / "pods" / pod["metadata"]["uid"]).exists()


async def test_stop_record_holds_the_last_termination(agents: Agents) -> None:
    first = await agents.start()
    pod = await agents.create_pod("rec", [sleeper()])
    await agents.wait_status("rec", running_after_restart(0), "rec running")
    await first.stop()
    agents.started.remove(first)
    record = agents.data_dir / "pods" / pod["metadata"]["uid"] / "containers" / "c"
    saved = json.loads((record / "agent-stop.json").read_text())
    assert saved["restartCount"] == 0
    assert saved["terminated"]["exitCode"] == 143
    assert saved["terminated"]["reason"] == "Error"
