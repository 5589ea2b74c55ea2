"""The pod network: a kubeling-owned bridge, one network namespace and veth per pod.

Each pod gets ``eth0`` in its own namespace with an address from the bridge's subnet and
the bridge's address as the cluster DNS server. Pods get *only* the connected route of the
subnet, no default route: with no route off the bridge a pod cannot reach anything but its
peers and the node's bridge address, whatever the host's ``ip_forward`` setting, and the
host's other interfaces, routes, sysctls and firewall are never touched. The IPAM is one
file per address under the state directory (created with O_EXCL), so allocations survive
an agent restart and two agents never hand out the same address.

``/etc/hosts`` and ``/etc/resolv.conf`` are rendered the way the kubelet renders them.
"""

from __future__ import annotations

import asyncio
import hashlib
import ipaddress
import json
import logging
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from kubeling.agent.errors import NetworkError
from kubeling.machinery.types import Obj

log = logging.getLogger(__name__)

DEFAULT_BRIDGE = "kubeling0"
DEFAULT_CIDR = "10.244.0.0/16"
NETNS_DIR = Path("/run/netns")


async def ip(*args: str, check: bool = True) -> str:
    """Run ``ip``; raise ``NetworkError`` with its stderr when ``check`` and it fails."""
    try:
        proc = await asyncio.create_subprocess_exec(
            "ip", *args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
        )
    except FileNotFoundError as exc:
        raise NetworkError("iproute2 (`ip`) is not installed") from exc
    out, err = await proc.communicate()
    if check and proc.returncode != 0:
        raise NetworkError(f"ip {' '.join(args)} failed: {err.decode().strip()}")
    return out.decode()


def _is_mounted(path: Path) -> bool:
    """A namespace is bind-mounted on the file (pathlib's is_mount sees directories only)."""
    return os.path.ismount(path)


@dataclass(frozen=True)
class PodNetwork:
    """What a pod's containers join: the namespace path, and the pod's address."""

    pod_uid: str
    netns: str
    netns_path: Path
    ip: str
    prefix_len: int
    gateway: str
    host_veth: str


class BridgeNetwork:
    """The node's pod network on one bridge and subnet (both configurable for tests)."""

    def __init__(
        self, *, state_dir: Path, bridge: str = DEFAULT_BRIDGE, cidr: str = DEFAULT_CIDR
    ) -> None:
        if len(bridge) > 15:
            raise ValueError(f"bridge name {bridge!r} is longer than 15 characters")
        self.bridge = bridge
        self.subnet = ipaddress.ip_network(cidr)
        if not isinstance(self.subnet, ipaddress.IPv4Network) or self.subnet.prefixlen > 29:
            raise ValueError(f"pod CIDR {cidr} must be an IPv4 network of /29 or larger")
        self.gateway = str(next(self.subnet.hosts()))
        self.state_dir = state_dir / "network" / bridge
        self.ipam_dir = self.state_dir / "ipam"
        self._bridge_lock = asyncio.Lock()

    @property
    def dns_ip(self) -> str:
        """The address on the bridge where the cluster DNS server should listen for pods."""
        return self.gateway

    def _names(self, pod_uid: str) -> tuple[str, str, str]:
        digest = hashlib.sha1(f"{self.bridge}/{pod_uid}".encode()).hexdigest()
        return f"kl-{digest[:16]}", f"kv{digest[:12]}", f"kp{digest[:12]}"

    async def _link_exists(self, name: str) -> bool:
        return bool((await ip("-j", "link", "show", "dev", name, check=False)).strip())

    async def ensure_bridge(self) -> bool:
        """Create the bridge with the gateway address; True when this call created it."""
        async with self._bridge_lock:  # pods set up concurrently must not both create it
            return await self._ensure_bridge()

    async def _ensure_bridge(self) -> bool:
        if await self._link_exists(self.bridge):
            return False
        routes = json.loads(await ip("-j", "-4", "route", "show", "table", "all") or "[]")
        for route in routes:
            dst = route.get("dst", "")
            if (
                dst in ("default", "")
                or route.get("dev") == self.bridge
                or route.get("type")
                in (
                    "local",
                    "broadcast",
                )
            ):
                continue
            try:
                net = ipaddress.ip_network(dst, strict=False)
            except ValueError:
                continue
            if net.overlaps(self.subnet):
                raise NetworkError(
                    f"pod CIDR {self.subnet} overlaps the host route {dst} on {route.get('dev')}"
                )
        await ip("link", "add", "name", self.bridge, "type", "bridge")
        self.state_dir.mkdir(parents=True, exist_ok=True)
        (self.state_dir / "bridge-created").write_text(self.bridge)
        await ip("addr", "add", f"{self.gateway}/{self.subnet.prefixlen}", "dev", self.bridge)
        await ip("link", "set", self.bridge, "up")
        log.info("Created pod bridge %s with address %s.", self.bridge, self.gateway)
        return True

    async def remove_bridge(self) -> None:
        """Delete the bridge if kubeling created it; other pods must be gone first."""
        marker = self.state_dir / "bridge-created"
        if marker.exists():
            if await self._link_exists(self.bridge):
                await ip("link", "del", self.bridge)
            marker.unlink()

    def _allocated(self) -> dict[str, str]:
        out = {}
        if self.ipam_dir.is_dir():
            for entry in os.listdir(self.ipam_dir):
                try:
                    out[entry] = (self.ipam_dir / entry).read_text()
                except OSError:
                    continue
        return out

    def allocate(self, pod_uid: str) -> str:
        """The pod's address: the one it already holds, else the lowest free one."""
        self.ipam_dir.mkdir(parents=True, exist_ok=True)
        for addr, owner in self._allocated().items():
            if owner == pod_uid:
                return addr
        for host in self.subnet.hosts():
            addr = str(host)
            if addr == self.gateway:
                continue
            try:
                fd = os.open(self.ipam_dir / addr, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                if not self._abandoned(addr):
                    continue
                # An agent killed between creating the file and writing its owner: the
                # address was never handed out.
                (self.ipam_dir / addr).unlink(missing_ok=True)
                try:
                    fd = os.open(self.ipam_dir / addr, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
                except FileExistsError:
                    continue
            with os.fdopen(fd, "w") as f:
                f.write(pod_uid)
            return addr
        raise NetworkError(f"no free address left in pod CIDR {self.subnet}")

    def _abandoned(self, addr: str) -> bool:
        try:
            return (self.ipam_dir / addr).stat().st_size == 0
        except FileNotFoundError:
            return False

    def release(self, pod_uid: str) -> None:
        for addr, owner in self._allocated().items():
            if owner == pod_uid:
                (self.ipam_dir / addr).unlink(missing_ok=True)

    def reserve(self, pod_uid: str) -> PodNetwork:
        """An address only, no namespace: for runtimes that run no processes."""
        return PodNetwork(
            pod_uid=pod_uid,
            netns="",
            netns_path=Path(),
            ip=self.allocate(pod_uid),
            prefix_len=self.subnet.prefixlen,
            gateway=self.gateway,
            host_veth="",
        )

    async def setup_pod(self, pod_uid: str) -> PodNetwork:
        """Namespace, veth into the bridge, address, loopback; idempotent and verified.

        An agent killed part-way through a set-up leaves any prefix of its steps done (a
        peer not yet renamed ``eth0``, an ``eth0`` without its address, a veth outside the
        bridge), so what exists is never trusted: the namespace is inspected, a pair that
        is only missing its address, up state or bridge port is completed, anything else
        is rebuilt, and the result is checked again before the address is handed out.
        The namespace itself is kept: containers adopted after a restart live in it.
        """
        await self.ensure_bridge()
        netns, host_veth, _peer = self._names(pod_uid)
        addr = self.allocate(pod_uid)
        result = PodNetwork(
            pod_uid=pod_uid,
            netns=netns,
            netns_path=NETNS_DIR / netns,
            ip=addr,
            prefix_len=self.subnet.prefixlen,
            gateway=self.gateway,
            host_veth=host_veth,
        )
        await self._ensure_netns(netns)
        problems = await self.check_pod(pod_uid)
        if not problems:
            return result
        if await self._pair_intact(pod_uid):
            log.info("Completing the network of pod %s: %s.", pod_uid, "; ".join(problems))
            await self._configure(netns, host_veth, addr)
            problems = await self.check_pod(pod_uid)
        if problems:
            log.info("Rebuilding the network of pod %s: %s.", pod_uid, "; ".join(problems))
            await self._rebuild_links(pod_uid)
            await self._configure(netns, host_veth, addr)
            problems = await self.check_pod(pod_uid)
        if problems:
            raise NetworkError(
                f"network of pod {pod_uid} is not usable after set-up: {'; '.join(problems)}"
            )
        return result

    async def _ensure_netns(self, netns: str) -> None:
        path = NETNS_DIR / netns
        # ``ip netns add`` creates the file, then bind-mounts a new namespace on it: killed
        # in between, it leaves a plain file that would join containers to nothing.
        if path.exists() and not _is_mounted(path):
            await ip("netns", "del", netns, check=False)
            path.unlink(missing_ok=True)
        if not path.exists():
            await ip("netns", "add", netns)

    async def _links(self, pod_uid: str) -> tuple[Obj | None, dict[str, Obj], list[Obj]]:
        """The host veth, the namespace's links by name (with addresses), its IPv4 routes."""
        netns, host_veth, _peer = self._names(pod_uid)
        host = json.loads(await ip("-j", "link", "show", "dev", host_veth, check=False) or "[]")
        if not (NETNS_DIR / netns).exists():
            return (host[0] if host else None), {}, []
        links = json.loads(await ip("-n", netns, "-j", "addr", "show", check=False) or "[]")
        routes = json.loads(await ip("-n", netns, "-j", "-4", "route", "show", check=False) or "[]")
        return (host[0] if host else None), {link["ifname"]: link for link in links}, routes

    async def check_pod(self, pod_uid: str) -> list[str]:
        """What is wrong with the pod's network, in words; empty when it is usable: the
        host veth up in the bridge, its peer ``eth0`` up with exactly the pod's address,
        the subnet's route on ``eth0``, loopback up."""
        netns, host_veth, peer = self._names(pod_uid)
        addr = self.allocate(pod_uid)
        if not _is_mounted(NETNS_DIR / netns):
            return [f"network namespace {netns} is missing"]
        host, links, routes = await self._links(pod_uid)
        problems = []
        if host is None:
            problems.append(f"host veth {host_veth} is missing")
        else:
            if host.get("master") != self.bridge:
                problems.append(f"host veth {host_veth} is not on bridge {self.bridge}")
            if "UP" not in host.get("flags", []):
                problems.append(f"host veth {host_veth} is down")
        lo = links.get("lo")
        if lo is None or "UP" not in lo.get("flags", []):
            problems.append("lo is down")
        if peer in links:
            problems.append(f"veth peer {peer} was never renamed eth0")
        eth0 = links.get("eth0")
        if eth0 is None:
            problems.append("eth0 is missing")
            return problems
        if host is not None and eth0.get("link_index") != host.get("ifindex"):
            problems.append(f"eth0 is not the peer of {host_veth}")
        if "UP" not in eth0.get("flags", []):
            problems.append("eth0 is down")
        have = [
            f"{a.get('local')}/{a.get('prefixlen')}"
            for a in eth0.get("addr_info", [])
            if a.get("family") == "inet"
        ]
        want = f"{addr}/{self.subnet.prefixlen}"
        if have != [want]:
            problems.append(f"eth0 has IPv4 addresses {have or 'none'}, not [{want}]")
        if not any(r.get("dst") == str(self.subnet) and r.get("dev") == "eth0" for r in routes):
            problems.append(f"no route to {self.subnet} on eth0")
        return problems

    async def _pair_intact(self, pod_uid: str) -> bool:
        """The host veth exists and its peer is this namespace's ``eth0``: only addresses,
        up states and the bridge port can be missing, and those are set in place."""
        host, links, _routes = await self._links(pod_uid)
        eth0 = links.get("eth0")
        return (
            host is not None
            and eth0 is not None
            and eth0.get("link_index") == host.get("ifindex")
            and self._names(pod_uid)[2] not in links
        )

    async def _rebuild_links(self, pod_uid: str) -> None:
        """Remove every veth end of the pod, wherever it was left, and make a new pair.

        The peer is created in the namespace already named ``eth0``, so no later kill can
        leave it half-moved or unrenamed."""
        netns, host_veth, peer = self._names(pod_uid)
        for link in (host_veth, peer):
            if await self._link_exists(link):
                await ip("link", "del", link, check=False)
        _host, links, _routes = await self._links(pod_uid)
        for name in ("eth0", peer):
            if name in links:
                await ip("-n", netns, "link", "del", name, check=False)
        await ip("link", "add", host_veth, "type", "veth", "peer", "name", "eth0", "netns", netns)

    async def _configure(self, netns: str, host_veth: str, addr: str) -> None:
        await ip("-n", netns, "link", "set", "lo", "up")
        await ip("link", "set", host_veth, "master", self.bridge)
        await ip("link", "set", host_veth, "up")
        want = f"{addr}/{self.subnet.prefixlen}"
        shown = json.loads(await ip("-n", netns, "-j", "-4", "addr", "show", "dev", "eth0"))
        for info in shown[0].get("addr_info", []) if shown else []:
            if f"{info.get('local')}/{info.get('prefixlen')}" != want:
                await ip("-n", netns, "addr", "del", f"{info['local']}/{info['prefixlen']}",
                         "dev", "eth0")  # fmt: skip
        await ip("-n", netns, "addr", "replace", want, "dev", "eth0")
        await ip("-n", netns, "link", "set", "eth0", "up")

    async def teardown_pod(self, pod_uid: str) -> None:
        """Remove the pod's namespace, veth and address; safe after a partial set-up."""
        netns, host_veth, peer = self._names(pod_uid)
        if (NETNS_DIR / netns).exists():
            await ip("netns", "del", netns)
        for link in (host_veth, peer):
            if await self._link_exists(link):
                await ip("link", "del", link, check=False)
        self.release(pod_uid)

    def known_pods(self) -> list[str]:
        """Pod UIDs holding an address (for adopt-or-remove at start)."""
        return sorted({owner for owner in self._allocated().values() if owner})

    def forget_state(self) -> None:
        if self.state_dir.exists() and not (self.state_dir / "bridge-created").exists():
            shutil.rmtree(self.state_dir, ignore_errors=True)


def render_hosts(
    *,
    pod_ip: str,
    hostname: str,
    subdomain: str = "",
    namespace: str = "",
    cluster_domain: str = "cluster.local",
    host_aliases: list[Obj] | None = None,
) -> str:
    """The kubelet's managed ``/etc/hosts`` (pkg/kubelet managedHostsFileContent)."""
    lines = [
        "# Kubernetes-managed hosts file.",
        "127.0.0.1\tlocalhost",
        "::1\tlocalhost ip6-localhost ip6-loopback",
        "fe00::0\tip6-localnet",
        "fe00::0\tip6-mcastprefix",
        "fe00::1\tip6-allnodes",
        "fe00::2\tip6-allrouters",
    ]
    if subdomain:
        lines.append(
            f"{pod_ip}\t{hostname}.{subdomain}.{namespace}.svc.{cluster_domain}\t{hostname}"
        )
    else:
        lines.append(f"{pod_ip}\t{hostname}")
    if host_aliases:
        lines.append("")
        lines.append("# Entries added by HostAliases.")
        for alias in host_aliases:
            for name in alias.get("hostnames") or []:
                lines.append(f"{alias.get('ip', '')}\t{name}")
    return "\n".join(lines) + "\n"


def render_resolv_conf(
    *,
    nameserver: str,
    namespace: str,
    cluster_domain: str = "cluster.local",
    dns_policy: str = "ClusterFirst",
    dns_config: Obj | None = None,
) -> str:
    """What the kubelet writes for ClusterFirst pods, plus ``spec.dnsConfig`` merged in.

    The host's own search domains are deliberately not appended: pods have no route to
    the host's resolvers, so they would only slow lookups down.

    ``Default`` (upstream: the node's resolv.conf) gets the cluster DNS as its only server
    but none of the cluster's search list or ``ndots:5``: the node's nameservers are out of
    a pod's reach (no route off the bridge), and the bridge address is the one resolver it
    can reach; that server REFUSES everything outside the zone, so nothing is forwarded.
    ``None`` gets ``spec.dnsConfig`` alone, as upstream (docs/pods.md, "Cluster DNS").
    """
    servers: list[str] = []
    searches: list[str] = []
    options: list[str] = []
    if dns_policy == "Default":
        servers = [nameserver]
    elif dns_policy != "None":  # ClusterFirst, and ClusterFirstWithHostNet (no host network)
        servers = [nameserver]
        searches = [f"{namespace}.svc.{cluster_domain}", f"svc.{cluster_domain}", cluster_domain]
        options = ["ndots:5"]
    config = dns_config or {}
    servers += [s for s in config.get("nameservers") or [] if s not in servers]
    searches += [s for s in config.get("searches") or [] if s not in searches]
    for opt in config.get("options") or []:
        text = opt.get("name", "") + (f":{opt['value']}" if opt.get("value") else "")
        options = [o for o in options if o.split(":")[0] != opt.get("name")] + [text]
    out = [f"nameserver {s}" for s in servers]
    if searches:
        out.append("search " + " ".join(searches))
    if options:
        out.append("options " + " ".join(options))
    return "\n".join(out) + "\n"
