"""Fixtures for the agent's tests: a throw-away node, and a leak check after each test.

Root tests get their own bridge name and /24 (derived from the pid and a counter, so
parallel runs never share one) and a data directory under pytest's tmp_path. After the
test, whatever it did, the fixture tears the node down and then asserts nothing is left:
no mount under the data directory, no container in runc's list under our ``--root``, no
network namespace or veth the test created, no bridge.
"""

from __future__ import annotations

import itertools
import json
import os
import shutil
import subprocess
from collections.abc import AsyncIterator, Callable, Collection
from pathlib import Path
from typing import Any, TypeVar

import pytest

from kubeling.agent import mounts
from kubeling.agent.network import BridgeNetwork
from kubeling.agent.runtime import RuncRuntime, SimulatedRuntime, runc_unavailable_reason
from kubeling.agent.sandbox import Node, teardown_pod

_counter = itertools.count()
F = TypeVar("F", bound=Callable[..., Any])


def root_skip_reason() -> str | None:
    if os.geteuid() != 0:
        return "needs root (mounts, network namespaces)"
    if shutil.which("ip") is None:
        return "needs iproute2"
    return None


needs_root = pytest.mark.skipif(root_skip_reason() is not None, reason=root_skip_reason() or "")


def requires_root(fn: F) -> F:
    """Marks a test ``root`` and skips it, with the reason, when not running as root."""
    return pytest.mark.root(needs_root(fn))  # type: ignore[no-any-return]


requires_runc = pytest.mark.skipif(
    runc_unavailable_reason() is not None,
    reason=f"runc runtime unavailable: {runc_unavailable_reason()}",
)


def netns_names() -> set[str]:
    out = subprocess.run(["ip", "-j", "netns", "list"], capture_output=True, text=True).stdout
    return {n["name"] for n in json.loads(out or "[]")}


def link_exists(name: str) -> bool:
    return subprocess.run(["ip", "link", "show", "dev", name], capture_output=True).returncode == 0


def test_network(data_dir: Path) -> BridgeNetwork:
    n = next(_counter)
    pid = os.getpid()
    bridge = f"klt{pid % 100000}x{n}"
    cidr = f"10.{200 + pid % 50}.{(pid // 50 + n) % 256}.0/24"
    return BridgeNetwork(state_dir=data_dir, bridge=bridge, cidr=cidr)


test_network.__test__ = False  # type: ignore[attr-defined]


def track_pods(network: BridgeNetwork) -> set[str]:
    """The UIDs of every pod whose namespace ``network`` sets up from now on, so leak checks
    look at this test's namespaces only (other clusters may run on the machine)."""
    seen: set[str] = set()
    original = network.setup_pod

    async def setup_pod(pod_uid: str) -> Any:
        seen.add(pod_uid)
        return await original(pod_uid)

    network.setup_pod = setup_pod  # type: ignore[method-assign]
    return seen


def assert_nothing_left(
    data_dir: Path,
    network: BridgeNetwork | None,
    netns_before: set[str],
    *,
    pod_uids: set[str] | None = None,
    kept_pod_dirs: Collection[str] = (),
) -> None:
    """Nothing of ``data_dir``/``network`` is left. With ``pod_uids`` only those pods'
    namespaces are checked, so other clusters running on the machine do not interfere.
    ``kept_pod_dirs``: pods still bound when the agent stopped, whose directories (and
    nothing mounted in them) an agent stop keeps for the next start."""
    assert mounts.mounts_under(data_dir) == []
    runc_root = data_dir / "runc" / "root"
    if runc_root.exists():
        out = subprocess.run(
            ["runc", "--root", str(runc_root), "list", "-q"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        assert out.strip() == ""
    pods = data_dir / "pods"
    assert not pods.exists() or {d.name for d in pods.iterdir()} <= set(kept_pod_dirs)
    if network is not None:
        if pod_uids is not None:
            assert {network._names(u)[0] for u in pod_uids} & netns_names() == set()
        else:
            assert netns_names() - netns_before == set()
        assert not link_exists(network.bridge)
        for veth in subprocess.run(
            ["ip", "-o", "link"], capture_output=True, text=True
        ).stdout.splitlines():
            assert f"master {network.bridge} " not in veth


@pytest.fixture
async def runc_node(tmp_path: Path) -> AsyncIterator[Node]:
    """A node with the runc runtime and a private bridge; torn down and leak-checked."""
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    network = test_network(data_dir)
    before = netns_names()
    uids = track_pods(network)
    node = Node(data_dir=data_dir, runtime=RuncRuntime(data_dir=data_dir), network=network)
    try:
        yield node
    finally:
        for uid in node.known_pod_uids() | {
            i.pod_uid for i in await node.runtime.list_containers()
        }:
            await teardown_pod(node, uid)
        await network.remove_bridge()
        assert_nothing_left(data_dir, network, before, pod_uids=uids)


@pytest.fixture
async def net_only(tmp_path: Path) -> AsyncIterator[BridgeNetwork]:
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    network = test_network(data_dir)
    before = netns_names()
    uids = track_pods(network)
    try:
        yield network
    finally:
        for uid in network.known_pods():
            await network.teardown_pod(uid)
        await network.remove_bridge()
        assert_nothing_left(data_dir, network, before, pod_uids=uids)


@pytest.fixture
def simulated_node(tmp_path: Path) -> Node:
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    return Node(data_dir=data_dir, runtime=SimulatedRuntime())
