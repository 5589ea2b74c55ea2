"""Pod teardown that finishes every step: many pods at once, and a failed container listing.

Issue 5: ``runc list`` fails when another container's state directory goes while it
reads it, and a teardown that trusted that listing left the pod's overlay mounted and
its bundle behind.
"""

from __future__ import annotations

import asyncio
import uuid

import pytest

from kubeling.agent import mounts
from kubeling.agent.errors import AgentError, ContainerError
from kubeling.agent.runtime import RuncRuntime, SimulatedRuntime
from kubeling.agent.runtime.base import ContainerInfo
from kubeling.agent.sandbox import Node, PodSandbox, container_id
from kubeling.agent.volumes import VolumeSources
from tests.agent.conftest import requires_runc


def make_pod(name: str, containers: list[str]) -> dict:
    return {
        "metadata": {"name": name, "namespace": "race", "uid": str(uuid.uuid4())},
        "spec": {
            "containers": [{"name": c} for c in containers],
            "volumes": [{"name": "mem", "emptyDir": {}}],
        },
    }


async def sandbox_for(node: Node, pod: dict) -> PodSandbox:
    volumes, errors = await node.prepare_volumes(pod, VolumeSources())
    assert errors == []
    return await PodSandbox.create(pod, node=node, volumes=volumes)


class BrokenListing(SimulatedRuntime):
    """A runtime whose listing fails, as ``runc list`` does during a concurrent delete."""

    async def list_containers(self) -> list[ContainerInfo]:
        raise ContainerError("runc list failed: stat /x/runc/root/other: no such file")


async def test_failed_listing_still_removes_the_known_containers(tmp_path) -> None:
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    runtime = BrokenListing()
    node = Node(data_dir=data_dir, runtime=runtime)
    sb = await sandbox_for(node, make_pod("p", ["a", "b"]))
    await sb.start_container("a")
    await sb.start_container("b")
    assert (await sb.container_status("a")).state == "running"  # type: ignore[union-attr]
    with pytest.raises(AgentError, match=r"incomplete: listing containers: runc list failed"):
        await sb.teardown()
    # The listing failed, yet every other step ran: both containers and the pod's files.
    assert await sb.container_status("a") is None
    assert await sb.container_status("b") is None
    assert not node.pod_dir(sb.uid).exists()


async def test_removal_failure_is_reported_and_other_containers_still_go(tmp_path) -> None:
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    runtime = SimulatedRuntime()
    node = Node(data_dir=data_dir, runtime=runtime)
    sb = await sandbox_for(node, make_pod("p", ["a", "b"]))
    await sb.start_container("a")
    await sb.start_container("b")
    original = runtime.remove
    stuck = container_id(sb.uid, "a")

    async def remove(cid: str) -> None:
        if cid == stuck:
            raise ContainerError("device or resource busy")
        await original(cid)

    runtime.remove = remove  # type: ignore[method-assign]
    with pytest.raises(AgentError, match=rf"removing container {stuck}: device or resource busy"):
        await sb.teardown()
    assert await sb.container_status("b") is None
    runtime.remove = original  # type: ignore[method-assign]
    await sb.teardown()  # the retry finishes the job
    assert await runtime.list_containers() == []


@pytest.mark.root
@requires_runc
async def test_runc_listing_survives_failures(runc_node: Node) -> None:
    runtime = runc_node.runtime
    assert isinstance(runtime, RuncRuntime)
    sb = await sandbox_for(runc_node, make_pod("p", ["app"]))
    await sb.start_container("app")
    real = runtime._runc
    calls: list[str] = []

    async def failing_list(*args: str, check: bool = True) -> tuple[int, str, str]:
        if args[0] == "list":
            calls.append("list")
            return 1, "", "stat /x/runc/root/gone: no such file or directory"
        return await real(*args, check=check)

    runtime._runc = failing_list  # type: ignore[method-assign]
    try:
        infos = await runtime.list_containers()
    finally:
        runtime._runc = real  # type: ignore[method-assign]
    assert len(calls) >= 2  # retried before reading each state
    assert [(i.id, i.pod_uid, i.container_name, i.state) for i in infos] == [
        (container_id(sb.uid, "app"), sb.uid, "app", "running")
    ]
    await sb.teardown(grace_seconds=1)


@pytest.mark.root
@requires_runc
async def test_many_pods_torn_down_at_once_leave_nothing(runc_node: Node) -> None:
    runtime = runc_node.runtime
    assert isinstance(runtime, RuncRuntime)
    sandboxes = await asyncio.gather(
        *(sandbox_for(runc_node, make_pod(f"d-{n}", ["app"])) for n in range(10))
    )
    for sb in sandboxes:
        await sb.start_container("app", env=[], restart_count=0)
    assert len(await runtime.list_containers()) == 10
    assert any(m for m in mounts.mounts_under(runtime.bundles))
    done = asyncio.Event()
    listings = 0

    async def keep_listing() -> None:
        # runc list fails when a state directory goes while it reads: the teardowns below
        # make that happen, and neither they nor these listings may fail for it.
        nonlocal listings
        while not done.is_set():
            await runtime.list_containers()
            listings += 1

    async def tear_all() -> None:
        try:
            await asyncio.gather(*(sb.teardown(grace_seconds=2) for sb in sandboxes))
        finally:
            done.set()

    await asyncio.gather(tear_all(), keep_listing(), keep_listing())
    assert listings > 0
    assert mounts.mounts_under(runc_node.data_dir) == []
    assert list(runtime.bundles.iterdir()) == []
    assert list(runtime.root.iterdir()) == []
    assert await runtime.list_containers() == []
    assert list((runc_node.data_dir / "pods").iterdir()) == []
