"""An agent killed with a pod's network half set up completes it when it starts again."""

from __future__ import annotations

import json
import subprocess

import pytest

from kubeling.agent.network import ip
from kubeling.machinery.resources import PODS
from kubeling.machinery.types import Obj
from tests.agent.conftest import requires_root, requires_runc
from tests.agent.test_kubelet import wait_until
from tests.agent.test_kubelet_runc import Env, crash, env, runc_pid  # noqa: F401 - fixture

pytestmark = [pytest.mark.root]


def links_in(pid: int) -> dict[str, Obj]:
    """The container's own view of its links (through its network namespace)."""
    out = subprocess.run(
        ["nsenter", "-t", str(pid), "-n", "ip", "-j", "-4", "addr", "show"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return {link["ifname"]: link for link in json.loads(out)}


@requires_root
@requires_runc
async def test_restarted_agent_repairs_the_network_of_an_adopted_pod(env: Env) -> None:  # noqa: F811
    first = env.kubelet()
    await first.start()
    try:
        pod = await env.create_pod("net", {"command": ["sleep", "3600"]})

        async def pod_ip() -> str | None:
            got = await env.client.get(PODS, name="net", namespace="default")
            return (got.get("status") or {}).get("podIP")

        address = await wait_until(pod_ip, 20, what="the pod's address")
        cid = f"{pod['metadata']['uid']}_c"
        pid = runc_pid(env.data_dir, cid)
        assert pid
    except BaseException:
        await first.stop()
        raise
    await crash(first)
    # What a kill between the veth steps leaves: the peer not renamed, no address, lo down.
    netns, _host_veth, peer = env.network._names(pod["metadata"]["uid"])
    await ip("-n", netns, "link", "set", "eth0", "down")
    await ip("-n", netns, "addr", "flush", "dev", "eth0")
    await ip("-n", netns, "link", "set", "eth0", "name", peer)
    await ip("-n", netns, "link", "set", "lo", "down")
    assert "eth0" not in links_in(pid)
    second = env.kubelet()
    await second.start()
    try:

        async def repaired() -> dict[str, Obj] | None:
            links = links_in(pid)
            eth0 = links.get("eth0") or {}
            addrs = [a["local"] for a in eth0.get("addr_info", [])]
            lo_up = "UP" in (links.get("lo") or {}).get("flags", [])
            return links if addrs == [address] and "UP" in eth0.get("flags", []) and lo_up else None

        links = await wait_until(repaired, 20, what="eth0 back with the pod's address")
        assert peer not in links
        assert runc_pid(env.data_dir, cid) == pid  # the same process, adopted, not restarted
        assert await env.network.check_pod(pod["metadata"]["uid"]) == []
        got = await env.client.get(PODS, name="net", namespace="default")
        assert got["status"]["podIP"] == address
    finally:
        await second.stop()
