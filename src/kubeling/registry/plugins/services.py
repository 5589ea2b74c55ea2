"""Service cluster IPs: the allocation upstream's Service REST does at create.

Every Service of a type other than ExternalName gets its ``spec.ipFamilyPolicy``,
``spec.ipFamilies``, ``spec.clusterIPs`` and ``spec.clusterIP`` settled here, following
upstream's ``initIPFamilyFields`` and ``allocClusterIPs``: headless Services (``None``) get
no address (a selectorless headless Service defaults to ``RequireDualStack`` and both
families, as upstream), a requested address must lie in the range and be free, anything
else gets the next free address. Refusals carry upstream's messages (``failed to allocate
IP 10.96.0.10: provided IP is already allocated``, ``... is not configured on this
cluster``, ``this cluster is not configured for dual-stack services``).

The range is ``10.96.0.0/16`` by default: the start of kubeadm's default service CIDR
(``10.96.0.0/12``), so addresses look as users know them from real clusters, and a /16
(65534 addresses) is more than one host ever needs while staying clear of the pod network
(``10.244.0.0/16``, the agent's bridge). As upstream (``ServiceIPStaticSubrange``), dynamic
picks come from the upper part of the range first, so the low addresses that people pin by
hand (``10.96.0.10`` for DNS) rarely collide with an automatic one.

The key design choice is that the store is the truth and the in-memory map only a cache.
The map is derived from the stored Services on first use, so a restart never hands out an
address twice; each allocation reserves its address in the map at once (admission runs
before the write, as upstream's ``BeginCreate``), so two concurrent creates cannot take the
same one. An admission plugin gets no "the write failed" callback, so instead of releasing
on failure the allocator *verifies* a reservation when someone else wants its address: if
the Service it names is not stored with that address (the create failed, the Service was
deleted, or it became ExternalName) and the reservation is not a create still in flight,
the address is free. Delete admission only marks the Service's reservations as settled (its
create is over); the store then says when the address is free, so a delete that fails or
waits on finalizers never releases an address still in use.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import random
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, Final

from kubeling.machinery.errors import InternalError
from kubeling.machinery.field import FieldError, invalid, invalid_error
from kubeling.machinery.field import Path as FieldPath
from kubeling.machinery.resources import SERVICES
from kubeling.machinery.types import Obj, ResourceInfo
from kubeling.registry.admission import Attributes

log = logging.getLogger(__name__)

ObjectLister = Callable[[ResourceInfo], Awaitable[list[Obj]]]
ObjectLookup = Callable[[ResourceInfo, str, str], Awaitable[Obj | None]]

DEFAULT_SERVICE_CIDR: Final = "10.96.0.0/16"
IPV4: Final = "IPv4"
IPV6: Final = "IPv6"
SINGLE_STACK: Final = "SingleStack"
PREFER_DUAL_STACK: Final = "PreferDualStack"
REQUIRE_DUAL_STACK: Final = "RequireDualStack"
ALREADY_ALLOCATED: Final = "provided IP is already allocated"
NODE_PORT_ALLOCATED: Final = "provided port is already allocated"
DEFAULT_NODE_PORT_RANGE: Final = (30000, 32767)
IN_FLIGHT_GRACE: Final = 30.0
"""Seconds a reservation whose Service is not (yet) stored still counts as a create in
flight; a create takes milliseconds, so only a failed one is ever older than this."""

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def family_of(ip: str) -> str:
    return IPV6 if ":" in ip else IPV4


def _static_band(size: int) -> int:
    """upstream ``calculateRangeOffset``: min(max(16, size/16), 256) addresses at the start
    of the range are left to hand-picked IPs while the rest has room."""
    if size < 16:
        return 0
    return min(max(16, size // 16), 256)


@dataclass
class _Hold:
    key: str
    """``namespace/name`` of the Service the address was given to."""
    since: float
    confirmed: bool
    """False while the create that took the address may still be in flight."""


class IPRange:
    """One family's range: the usable addresses between network and broadcast."""

    def __init__(self, cidr: str) -> None:
        self.network: Network = ipaddress.ip_network(cidr)
        self.family = IPV6 if self.network.version == 6 else IPV4
        self.first = int(self.network.network_address) + 1
        last = int(self.network.broadcast_address)
        # IPv4 loses the broadcast address; IPv6 has none but upstream skips the last one too.
        self.size = max(0, last - self.first)
        self.offset = _static_band(self.size)

    def contains(self, ip: str) -> bool:
        try:
            addr = ipaddress.ip_address(ip)
        except ValueError:
            return False
        return addr.version == self.network.version and self.first <= int(addr) < (
            self.first + self.size
        )

    def address(self, index: int) -> str:
        return str(ipaddress.ip_address(self.first + index))

    def __str__(self) -> str:
        return str(self.network)


class _Book:
    """Reservations of one kind of value (addresses, node ports) to Services, with the
    store as the truth (see the module docstring)."""

    # TODO(#2): reservations live in one API server's memory; several servers sharing etcd
    # could hand out the same dynamic value at the same moment (upstream keeps the bitmap, or
    # IPAddress objects, in the store). One server per store is safe today.

    what = "value"

    def __init__(
        self,
        *,
        lister: ObjectLister,
        lookup: ObjectLookup,
        clock: Callable[[], float] = time.monotonic,
        rng: random.Random | None = None,
    ) -> None:
        self._lister = lister
        self._lookup = lookup
        self._clock = clock
        self._rng = rng or random.Random()
        self._held: dict[str, _Hold] = {}
        self._loaded = False
        self._lock = asyncio.Lock()

    def _values(self, svc: Obj) -> list[str]:
        raise NotImplementedError

    async def _load(self) -> None:
        if self._loaded:
            return
        for svc in await self._lister(SERVICES):
            key = _key(svc)
            for value in self._values(svc):
                self._held[value] = _Hold(key=key, since=0.0, confirmed=True)
        self._loaded = True
        log.debug("Service %s allocator loaded %d reservations.", self.what, len(self._held))

    async def _taken(self, value: str, key: str) -> bool:
        """Whether ``value`` belongs to another Service (verifying a stale reservation)."""
        hold = self._held.get(value)
        if hold is None:
            return False
        namespace, _, name = hold.key.partition("/")
        stored = await self._lookup(SERVICES, namespace, name)
        if stored is not None and value in self._values(stored):
            hold.confirmed = True
            return True
        if not hold.confirmed and hold.key != key and self._clock() - hold.since < IN_FLIGHT_GRACE:
            return True
        del self._held[value]
        return False

    def _reserve(self, value: str, key: str, dry_run: bool) -> None:
        if not dry_run:
            self._held[value] = _Hold(key=key, since=self._clock(), confirmed=False)

    async def _next_free(
        self, bands: Sequence[tuple[int, int]], make: Callable[[int], str], key: str
    ) -> str | None:
        # upstream: a random start in the upper band, scanning upward and wrapping; then
        # the static band, so hand-picked values stay free as long as possible.
        for lo, hi in bands:
            count = hi - lo
            if count <= 0:
                continue
            start = self._rng.randrange(count)
            for step in range(count):
                candidate = make(lo + (start + step) % count)
                if candidate not in self._held or not await self._taken(candidate, key):
                    return candidate
        return None

    def settle(self, key: str) -> None:
        """The Service ``key`` is being deleted, so its create is no longer in flight: from
        now on the store alone says whether it still holds its values."""
        for hold in self._held.values():
            if hold.key == key:
                hold.confirmed = True

    def release(self, value: str) -> None:
        """Forget a reservation at once (a caller that knows the write never happened)."""
        self._held.pop(value, None)

    def holder(self, value: str) -> str | None:
        hold = self._held.get(value)
        return hold.key if hold else None


class ClusterIPAllocator(_Book):
    """The address book of every family's range (one family unless configured dual)."""

    what = "IP"

    def __init__(
        self,
        *,
        lister: ObjectLister,
        lookup: ObjectLookup,
        ranges: Sequence[str] = (DEFAULT_SERVICE_CIDR,),
        clock: Callable[[], float] = time.monotonic,
        rng: random.Random | None = None,
    ) -> None:
        super().__init__(lister=lister, lookup=lookup, clock=clock, rng=rng)
        self.ranges: dict[str, IPRange] = {}
        for cidr in ranges:
            r = IPRange(cidr)
            if r.family in self.ranges:
                raise ValueError(f"two service ranges of family {r.family}")
            self.ranges[r.family] = r
        if not self.ranges:
            raise ValueError("at least one service range is required")
        self.default_family = IPRange(ranges[0]).family

    @property
    def dual_stack(self) -> bool:
        return len(self.ranges) > 1

    def _values(self, svc: Obj) -> list[str]:
        return [ip for ip in _cluster_ips(svc) if ip != "None"]

    async def allocate(self, ip: str, *, family: str, key: str, dry_run: bool) -> str:
        """Reserve ``ip`` (or the next free address when empty) for Service ``key``.

        Raises ``ValueError`` with upstream's reason for a requested address that cannot be
        had, and ``InternalError`` when the range is full."""
        r = self.ranges[family]
        async with self._lock:
            await self._load()
            if ip:
                if not r.contains(ip):
                    raise ValueError(
                        f"the provided IP ({ip}) is not in the valid range. "
                        f"The range of valid IPs is {r}"
                    )
                if await self._taken(ip, key):
                    raise ValueError(ALREADY_ALLOCATED)
                self._reserve(ip, key, dry_run)
                return ip
            found = await self._next_free(((r.offset, r.size), (0, r.offset)), r.address, key)
            if found is None:
                raise InternalError(
                    "Internal error occurred: failed to allocate a serviceIP: range is full"
                )
            self._reserve(found, key, dry_run)
            return found


class NodePortAllocator(_Book):
    """Node ports of NodePort and LoadBalancer Services (upstream's default 30000-32767)."""

    what = "node port"

    def __init__(
        self,
        *,
        lister: ObjectLister,
        lookup: ObjectLookup,
        first: int = DEFAULT_NODE_PORT_RANGE[0],
        last: int = DEFAULT_NODE_PORT_RANGE[1],
        clock: Callable[[], float] = time.monotonic,
        rng: random.Random | None = None,
    ) -> None:
        super().__init__(lister=lister, lookup=lookup, clock=clock, rng=rng)
        self.first = first
        self.size = last - first + 1
        # upstream ServiceNodePortStaticSubrange: min(max(16, size/32), 128) low ports
        self.offset = min(max(16, self.size // 32), 128) if self.size >= 16 else 0
        self.range_text = f"{first}-{last}"

    def _values(self, svc: Obj) -> list[str]:
        return [str(p) for p in _node_ports(svc)]

    async def allocate(self, port: int, *, key: str, dry_run: bool) -> int:
        async with self._lock:
            await self._load()
            if port:
                if not self.first <= port < self.first + self.size:
                    raise ValueError(
                        "provided port is not in the valid range. "
                        f"The range of valid ports is {self.range_text}"
                    )
                if await self._taken(str(port), key):
                    raise ValueError(NODE_PORT_ALLOCATED)
                self._reserve(str(port), key, dry_run)
                return port
            found = await self._next_free(
                ((self.offset, self.size), (0, self.offset)), lambda i: str(self.first + i), key
            )
            if found is None:
                raise InternalError(
                    "Internal error occurred: failed to allocate a nodePort: range is full"
                )
            self._reserve(found, key, dry_run)
            return int(found)


def _wants_node_ports(spec: dict[str, Any]) -> bool:
    kind = spec.get("type") or "ClusterIP"
    if kind == "NodePort":
        return True
    return kind == "LoadBalancer" and spec.get("allocateLoadBalancerNodePorts") is not False


def _key(svc: Obj) -> str:
    meta = svc.get("metadata") or {}
    return f"{meta.get('namespace') or ''}/{meta.get('name') or ''}"


def _node_ports(svc: Obj) -> list[int]:
    spec = svc.get("spec") or {}
    out: list[int] = []
    for port in spec.get("ports") or []:
        value = port.get("nodePort") if isinstance(port, dict) else None
        if isinstance(value, int) and not isinstance(value, bool) and value and value not in out:
            out.append(value)
    return out


def _cluster_ips(svc: Obj) -> list[str]:
    spec = svc.get("spec") or {}
    if spec.get("type") == "ExternalName":
        return []
    ips = [ip for ip in spec.get("clusterIPs") or [] if isinstance(ip, str) and ip]
    if not ips and isinstance(spec.get("clusterIP"), str) and spec["clusterIP"]:
        ips = [spec["clusterIP"]]
    return ips


class ServiceClusterIPAllocation:
    """Mutating admission for ``services``: IP family fields and cluster IPs at create
    (and when an ExternalName Service becomes one that needs an address), node ports for
    NodePort and LoadBalancer Services at create and update."""

    def __init__(
        self, allocator: ClusterIPAllocator, node_ports: NodePortAllocator | None = None
    ) -> None:
        self.allocator = allocator
        self.node_ports = node_ports

    async def admit(self, a: Attributes) -> None:
        if a.info.group or a.info.plural != "services" or a.subresource:
            return
        if a.operation == "DELETE":
            if not a.dry_run:
                self.allocator.settle(f"{a.namespace}/{a.name}")
                if self.node_ports is not None:
                    self.node_ports.settle(f"{a.namespace}/{a.name}")
            return
        if a.obj is None or a.operation not in ("CREATE", "UPDATE"):
            return
        spec = a.obj.get("spec")
        if not isinstance(spec, dict) or spec.get("type", "ClusterIP") == "ExternalName":
            return
        name = a.name or (a.obj.get("metadata") or {}).get("name") or ""
        key = f"{a.namespace}/{name}"
        old_spec = ((a.old or {}).get("spec") or {}) if a.operation == "UPDATE" else None
        allocated: list[str] = []
        # On update the strategy carries allocated addresses over (clusterIPs[0] is
        # immutable); only an ExternalName Service turning into another type needs some.
        if old_spec is None or old_spec.get("type", "ClusterIP") == "ExternalName":
            self._normalize(spec)
            errors = self._init_families(spec)
            if errors:
                raise invalid_error(kind="Service", group="", name=name, errors=errors)
            allocated = await self._allocate(spec, key=key, name=name, dry_run=a.dry_run)
        try:
            if self.node_ports is not None and _wants_node_ports(spec):
                await self._allocate_node_ports(
                    spec, old_spec, key=key, name=name, dry_run=a.dry_run
                )
        except BaseException:
            # upstream reverts the whole transaction: no address stays half-allocated.
            for ip in allocated:
                self.allocator.release(ip)
            raise

    async def _allocate_node_ports(
        self,
        spec: dict[str, Any],
        old_spec: dict[str, Any] | None,
        *,
        key: str,
        name: str,
        dry_run: bool,
    ) -> None:
        """upstream ``initNodePorts``/``updateNodePorts``: a requested port must be in range
        and free; a port the Service already had (same port and protocol on update) is
        kept; the rest get the next free port."""
        assert self.node_ports is not None
        ours: dict[tuple[Any, Any], int] = {}
        owned: set[int] = set()
        if old_spec is not None and _wants_node_ports(old_spec):
            for port in old_spec.get("ports") or []:
                if isinstance(port, dict) and port.get("nodePort"):
                    ours[(port.get("port"), port.get("protocol") or "TCP")] = port["nodePort"]
                    owned.add(port["nodePort"])
        taken_here: list[int] = []
        try:
            for i, port in enumerate(spec.get("ports") or []):
                if not isinstance(port, dict):
                    continue
                wanted = port.get("nodePort") or 0
                if not isinstance(wanted, int) or isinstance(wanted, bool):
                    continue  # the strategy's validation reports the type
                if not wanted:
                    previous = ours.get((port.get("port"), port.get("protocol") or "TCP"))
                    if previous:
                        port["nodePort"] = previous
                        continue
                elif wanted in owned or wanted in taken_here:
                    continue
                try:
                    port["nodePort"] = await self.node_ports.allocate(
                        wanted, key=key, dry_run=dry_run
                    )
                except ValueError as e:
                    raise invalid_error(
                        kind="Service",
                        group="",
                        name=name,
                        errors=[
                            invalid(
                                FieldPath("spec.ports").index(i).child("nodePort"), wanted, str(e)
                            )
                        ],
                    ) from None
                taken_here.append(port["nodePort"])
        except BaseException:
            if not dry_run:
                for value in taken_here:
                    if value not in owned:
                        self.node_ports.release(str(value))
            raise

    async def validate(self, a: Attributes) -> None:
        return None

    @staticmethod
    def _normalize(spec: dict[str, Any]) -> None:
        ip = spec.get("clusterIP")
        ips = spec.get("clusterIPs")
        if ip and not ips:
            spec["clusterIPs"] = [ip]
        elif ips and not ip and isinstance(ips, list) and isinstance(ips[0], str):
            spec["clusterIP"] = ips[0]

    def _init_families(self, spec: dict[str, Any]) -> list[FieldError]:
        """upstream ``initIPFamilyFields`` for a create."""
        al = self.allocator
        sp = FieldPath("spec")
        headless_selectorless = spec.get("clusterIP") == "None" and not spec.get("selector")
        if not spec.get("ipFamilyPolicy"):
            spec["ipFamilyPolicy"] = REQUIRE_DUAL_STACK if headless_selectorless else SINGLE_STACK
        policy = spec["ipFamilyPolicy"]
        ips: list[str] = [ip for ip in spec.get("clusterIPs") or [] if isinstance(ip, str)]
        families: list[str] = [f for f in spec.get("ipFamilies") or [] if isinstance(f, str)]
        errs: list[FieldError] = []
        if policy == SINGLE_STACK:
            if len(ips) == 2:
                errs.append(
                    invalid(
                        sp.child("ipFamilyPolicy"),
                        policy,
                        "must be 'RequireDualStack' or 'PreferDualStack' when multiple cluster "
                        "IPs are specified",
                    )
                )
            if len(families) == 2:
                errs.append(
                    invalid(
                        sp.child("ipFamilyPolicy"),
                        policy,
                        "must be 'RequireDualStack' or 'PreferDualStack' when multiple IP "
                        "families are specified",
                    )
                )
        for i, ip in enumerate(ips):
            if ip == "None":
                break
            family = family_of(ip)
            if i >= len(families):
                if family not in al.ranges:
                    errs.append(
                        invalid(
                            sp.child("clusterIPs").index(i),
                            ips,
                            f"{family} is not configured on this cluster",
                        )
                    )
                else:
                    families.append(family)
        if errs:
            return errs
        if headless_selectorless:
            if not families:
                families = [al.default_family]
            if len(families) < 2 and policy != SINGLE_STACK:
                families.append(IPV6 if families[0] == IPV4 else IPV4)
            spec["ipFamilies"] = families
            return []
        if policy == REQUIRE_DUAL_STACK and not al.dual_stack:
            errs.append(
                invalid(
                    sp.child("ipFamilyPolicy"),
                    policy,
                    "this cluster is not configured for dual-stack services",
                )
            )
        for i, family in enumerate(families):
            if family not in al.ranges:
                errs.append(
                    invalid(
                        sp.child("ipFamilies").index(i), family, "not configured on this cluster"
                    )
                )
        if errs:
            return errs
        if not families:
            families = [al.default_family]
        if policy != SINGLE_STACK and len(families) == 1 and al.dual_stack:
            families.append(IPV6 if families[0] == IPV4 else IPV4)
        spec["ipFamilies"] = families
        return []

    async def _allocate(
        self, spec: dict[str, Any], *, key: str, name: str, dry_run: bool
    ) -> list[str]:
        """Allocate the cluster IPs; the addresses newly reserved (for a later revert)."""
        ips: list[str] = list(spec.get("clusterIPs") or [])
        if ips and ips[0] == "None":
            spec["clusterIP"] = "None"
            spec["clusterIPs"] = ["None"]
            return []
        families: list[str] = spec["ipFamilies"]
        while len(ips) < len(families):
            ips.append("")
        done: list[str] = []
        try:
            for i, family in enumerate(families):
                try:
                    ips[i] = await self.allocator.allocate(
                        ips[i], family=family, key=key, dry_run=dry_run
                    )
                except ValueError as e:
                    raise invalid_error(
                        kind="Service",
                        group="",
                        name=name,
                        errors=[
                            invalid(
                                FieldPath("spec.clusterIPs"),
                                list(spec.get("clusterIPs") or []),
                                f"failed to allocate IP {ips[i]}: {e}",
                            )
                        ],
                    ) from None
                done.append(ips[i])
        except BaseException:
            # upstream reverts the whole transaction: no address stays half-allocated.
            if not dry_run:
                for ip in done:
                    self.allocator.release(ip)
            raise
        spec["clusterIPs"] = ips
        spec["clusterIP"] = ips[0]
        if not dry_run:
            log.debug("Allocated cluster IPs %s to Service %s.", ", ".join(ips), key)
        return [] if dry_run else done
