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
                continue
            with os.fdopen(fd, "w") as f:
                f.write(pod_uid)
            return addr
        raise NetworkError(f"no free address left in pod CIDR {self.subnet}")

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
        """Namespace, veth into the bridge, address, loopback; idempotent per pod."""
        await self.ensure_bridge()
        netns, host_veth, peer = self._names(pod_uid)
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
        if (NETNS_DIR / netns).exists() and await self._link_exists(host_veth):
            return result
        try:
            if not (NETNS_DIR / netns).exists():
                await ip("netns", "add", netns)
            if not await self._link_exists(host_veth):
                await ip("link", "add", host_veth, "type", "veth", "peer", "name", peer)
                await ip("link", "set", peer, "netns", netns)
                await ip("-n", netns, "link", "set", peer, "name", "eth0")
            await ip(
                "-n", netns, "addr", "replace", f"{addr}/{self.subnet.prefixlen}", "dev", "eth0"
            )
            await ip("-n", netns, "link", "set", "eth0", "up")
            await ip("-n", netns, "link", "set", "lo", "up")
            await ip("link", "set", host_veth, "master", self.bridge)
            await ip("link", "set", host_veth, "up")
        except NetworkError:
            await self.teardown_pod(pod_uid)
            raise
        return result

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
        return sorted(set(self._allocated().values()))

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
