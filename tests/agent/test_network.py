"""Pod network: namespaces on a private bridge, reachable from each other and nothing else."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
from typing import Any

import pytest

from kubeling.agent.errors import NetworkError
from kubeling.agent.network import (
    NETNS_DIR,
    BridgeNetwork,
    ip,
    render_hosts,
    render_resolv_conf,
)
from tests.agent.conftest import link_exists, netns_names, requires_root

SERVER = """
import socket, sys
s = socket.socket()
s.bind((sys.argv[1], 8080))
s.listen(1)
print("listening", flush=True)
conn, peer = s.accept()
conn.sendall(("hello " + peer[0]).encode())
conn.close()
"""
CLIENT = """
import socket, sys
c = socket.create_connection((sys.argv[1], 8080), timeout=10)
print(c.recv(100).decode())
"""

REFUSED_PROBE = """
import socket, sys
try:
    socket.create_connection((sys.argv[1], 9), timeout=10)
except ConnectionRefusedError:
    print("refused")
except OSError as exc:
    print(repr(exc))
"""


async def in_netns(netns: str, *args: str) -> subprocess.CompletedProcess[str]:
    return await asyncio.to_thread(
        subprocess.run,
        ["ip", "netns", "exec", netns, *args],
        capture_output=True,
        text=True,
        timeout=30,
    )


@requires_root
async def test_pods_get_addresses_and_reach_each_other_on_the_bridge(
    net_only: BridgeNetwork,
) -> None:
    a = await net_only.setup_pod("pod-a")
    b = await net_only.setup_pod("pod-b")
    assert a.ip != b.ip
    assert a.gateway == net_only.gateway == net_only.dns_ip
    assert {a.ip, b.ip} <= {str(h) for h in net_only.subnet.hosts()}
    assert a.netns in netns_names() and link_exists(net_only.bridge)
    # set-up is idempotent: the same pod keeps its address and namespace
    assert await net_only.setup_pod("pod-a") == a

    addrs = json.loads(
        (await in_netns(a.netns, "ip", "-j", "-4", "addr", "show", "dev", "eth0")).stdout
    )
    assert [(i["local"], i["prefixlen"]) for i in addrs[0]["addr_info"]] == [
        (a.ip, net_only.subnet.prefixlen)
    ]

    server = await asyncio.create_subprocess_exec(
        "ip", "netns", "exec", a.netns, sys.executable, "-c", SERVER, a.ip,
        stdout=asyncio.subprocess.PIPE,
    )  # fmt: skip
    try:
        assert server.stdout is not None
        assert (await asyncio.wait_for(server.stdout.readline(), 30)).strip() == b"listening"
        reply = await in_netns(b.netns, sys.executable, "-c", CLIENT, a.ip)
        assert reply.stdout.strip() == f"hello {b.ip}", reply.stderr
    finally:
        if server.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(server.pid, signal.SIGKILL)  # not server.kill(): its poll can reap
        await server.wait()


@requires_root
async def test_pod_has_only_the_bridge_route(net_only: BridgeNetwork) -> None:
    a = await net_only.setup_pod("pod-a")
    routes = json.loads((await in_netns(a.netns, "ip", "-j", "-4", "route", "show")).stdout)
    assert [(r["dst"], r["dev"]) for r in routes] == [(str(net_only.subnet), "eth0")]
    assert not any(r.get("gateway") for r in routes)
    v6 = json.loads((await in_netns(a.netns, "ip", "-j", "-6", "route", "show")).stdout or "[]")
    assert all(r["dst"] == "fe80::/64" for r in v6)  # link-local only, never a default route
    # "route get" only consults the table: nothing is sent anywhere.
    for outside in ("192.0.2.1", "8.8.8.8"):
        res = await in_netns(a.netns, "ip", "route", "get", outside)
        assert res.returncode != 0 and "unreachable" in res.stderr.lower()
    links = json.loads((await in_netns(a.netns, "ip", "-j", "link", "show")).stdout)
    assert sorted(link["ifname"] for link in links) == ["eth0", "lo"]
    assert all("UP" in link["flags"] for link in links)


@requires_root
async def test_teardown_removes_namespace_veth_and_address(net_only: BridgeNetwork) -> None:
    a = await net_only.setup_pod("pod-a")
    await net_only.teardown_pod("pod-a")
    assert a.netns not in netns_names()
    assert not link_exists(a.host_veth)
    assert net_only.known_pods() == []
    await net_only.teardown_pod("pod-a")  # idempotent
    again = await net_only.setup_pod("pod-c")
    assert again.ip == a.ip  # the address was released and is handed out again


def test_ipam_files_hand_out_distinct_addresses(tmp_path) -> None:
    net = BridgeNetwork(state_dir=tmp_path, bridge="kltestipam", cidr="10.99.0.0/29")
    got = [net.allocate(f"p{i}") for i in range(5)]
    assert got == ["10.99.0.2", "10.99.0.3", "10.99.0.4", "10.99.0.5", "10.99.0.6"]
    assert net.allocate("p2") == "10.99.0.4"
    try:
        net.allocate("p-extra")
    except Exception as exc:
        assert "no free address" in str(exc)
    else:
        raise AssertionError("a /29 has only five pod addresses")
    net.release("p0")
    assert net.allocate("p-extra") == "10.99.0.2"


def test_hosts_and_resolv_conf_match_the_kubelet() -> None:
    hosts = render_hosts(pod_ip="10.244.0.5", hostname="web-0", subdomain="nginx", namespace="shop")
    assert hosts == (
        "# Kubernetes-managed hosts file.\n"
        "127.0.0.1\tlocalhost\n"
        "::1\tlocalhost ip6-localhost ip6-loopback\n"
        "fe00::0\tip6-localnet\n"
        "fe00::0\tip6-mcastprefix\n"
        "fe00::1\tip6-allnodes\n"
        "fe00::2\tip6-allrouters\n"
        "10.244.0.5\tweb-0.nginx.shop.svc.cluster.local\tweb-0\n"
    )
    assert render_hosts(pod_ip="10.244.0.6", hostname="solo").endswith("10.244.0.6\tsolo\n")
    assert render_resolv_conf(nameserver="10.244.0.1", namespace="shop") == (
        "nameserver 10.244.0.1\n"
        "search shop.svc.cluster.local svc.cluster.local cluster.local\n"
        "options ndots:5\n"
    )
    custom = render_resolv_conf(
        nameserver="10.244.0.1",
        namespace="shop",
        dns_policy="None",
        dns_config={"nameservers": ["10.244.0.9"], "options": [{"name": "ndots", "value": "2"}]},
    )
    assert custom == "nameserver 10.244.0.9\noptions ndots:2\n"


@requires_root
async def test_bridge_refuses_a_subnet_the_host_already_routes(tmp_path) -> None:
    routes = json.loads(await ip("-j", "-4", "route"))
    taken = [r["dst"] for r in routes if r.get("dst") not in (None, "default")]
    if not taken:
        pytest.skip("the host has no non-default IPv4 route to collide with")
    net = BridgeNetwork(
        state_dir=tmp_path,
        bridge="kltestclash",
        cidr=taken[0] if "/" in taken[0] else f"{taken[0]}/32",
    )
    with pytest.raises(NetworkError, match="overlaps the host route"):
        await net.setup_pod("p")
    assert not link_exists("kltestclash")


async def _peer_not_renamed(net: BridgeNetwork, uid: str) -> None:
    netns, host_veth, peer = net._names(uid)
    await ip("netns", "add", netns)
    await ip("link", "add", host_veth, "type", "veth", "peer", "name", peer)
    await ip("link", "set", peer, "netns", netns)


async def _peer_left_on_the_host(net: BridgeNetwork, uid: str) -> None:
    netns, host_veth, peer = net._names(uid)
    await ip("netns", "add", netns)
    await ip("link", "add", host_veth, "type", "veth", "peer", "name", peer)


async def _eth0_without_address(net: BridgeNetwork, uid: str) -> None:
    await _peer_not_renamed(net, uid)
    netns, _host_veth, peer = net._names(uid)
    await ip("-n", netns, "link", "set", peer, "name", "eth0")


async def _everything_but_loopback(net: BridgeNetwork, uid: str) -> None:
    await net.setup_pod(uid)
    await ip("-n", net._names(uid)[0], "link", "set", "lo", "down")


async def _host_veth_out_of_the_bridge(net: BridgeNetwork, uid: str) -> None:
    await net.setup_pod(uid)
    await ip("link", "set", net._names(uid)[1], "nomaster")


async def _wrong_address(net: BridgeNetwork, uid: str) -> None:
    await net.setup_pod(uid)
    await ip("-n", net._names(uid)[0], "addr", "flush", "dev", "eth0")
    await ip("-n", net._names(uid)[0], "addr", "add", "192.0.2.7/24", "dev", "eth0")


async def _netns_file_never_mounted(net: BridgeNetwork, uid: str) -> None:
    NETNS_DIR.mkdir(parents=True, exist_ok=True)
    (NETNS_DIR / net._names(uid)[0]).touch()


@requires_root
@pytest.mark.parametrize(
    "break_it",
    [
        pytest.param(_peer_not_renamed, id="peer-in-netns-not-renamed"),
        pytest.param(_peer_left_on_the_host, id="peer-never-moved"),
        pytest.param(_eth0_without_address, id="eth0-without-address"),
        pytest.param(_everything_but_loopback, id="loopback-down"),
        pytest.param(_host_veth_out_of_the_bridge, id="host-veth-not-in-bridge"),
        pytest.param(_wrong_address, id="foreign-address"),
        pytest.param(_netns_file_never_mounted, id="netns-file-not-mounted"),
    ],
)
async def test_setup_completes_a_network_an_agent_killed_half_way_left(
    net_only: BridgeNetwork, break_it: Any
) -> None:
    await net_only.ensure_bridge()
    await break_it(net_only, "pod-a")
    a = await net_only.setup_pod("pod-a")
    assert await net_only.check_pod("pod-a") == []
    links = json.loads((await in_netns(a.netns, "ip", "-j", "-4", "addr", "show")).stdout)
    assert {link["ifname"]: [(i["local"], i["prefixlen"]) for i in link["addr_info"]]
            for link in links} == {"lo": [("127.0.0.1", 8)], "eth0": [(a.ip, 24)]}  # fmt: skip
    assert all("UP" in link["flags"] for link in links)
    assert not link_exists(net_only._names("pod-a")[2])
    # and it carries traffic: the node's bridge address answers (refuses) a connection
    probe = await in_netns(a.netns, sys.executable, "-c", REFUSED_PROBE, net_only.gateway)
    assert probe.stdout.strip() == "refused", probe.stdout + probe.stderr


@requires_root
async def test_setup_completes_an_intact_pair_in_place(net_only: BridgeNetwork) -> None:
    a = await net_only.setup_pod("pod-a")
    before = json.loads((await in_netns(a.netns, "ip", "-j", "link", "show", "eth0")).stdout)
    await ip("link", "set", a.host_veth, "down")
    assert await net_only.check_pod("pod-a") == [f"host veth {a.host_veth} is down"]
    assert await net_only.setup_pod("pod-a") == a
    after = json.loads((await in_netns(a.netns, "ip", "-j", "link", "show", "eth0")).stdout)
    assert after[0]["ifindex"] == before[0]["ifindex"]  # completed, not rebuilt
    assert await net_only.check_pod("pod-a") == []


def test_ipam_reclaims_an_address_file_a_killed_agent_left_empty(tmp_path) -> None:
    net = BridgeNetwork(state_dir=tmp_path, bridge="kltestipam", cidr="10.99.0.0/29")
    assert net.allocate("p0") == "10.99.0.2"
    (net.ipam_dir / "10.99.0.3").touch()  # created, owner never written
    assert net.known_pods() == ["p0"]
    assert net.allocate("p1") == "10.99.0.3"
    assert (net.ipam_dir / "10.99.0.3").read_text() == "p1"
    assert net.known_pods() == ["p0", "p1"]
