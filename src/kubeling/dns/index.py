"""The in-memory view cluster DNS answers from, and the answers themselves.

``ClusterIndex`` holds what the Kubernetes DNS specification (schema 1.1.0) needs and
nothing else: per Service its type, cluster IPs, external name and named ports; per Service
the endpoints of its EndpointSlices (address, hostname, ready); per pod its IPs. Watches
feed it through ``set_*``/``remove_*``; ``resolve`` turns a question into an ``Answer``
(rcode, records, additional records) without touching the network, so the record rules
can be tested, and benchmarked, apart from the wire.

The rules, by name under the zone (``<zone>`` is ``cluster.local``):

- ``dns-version.<zone>`` TXT ``1.1.0``.
- ``<svc>.<ns>.svc.<zone>``: A/AAAA of the cluster IPs; for a headless Service one record
  per *ready* endpoint (NXDOMAIN when it has none); CNAME to ``externalName`` for an
  ExternalName Service.
- ``<label>.<svc>.<ns>.svc.<zone>`` for headless Services only: the endpoint whose hostname
  (or, lacking one, dashed IP) is ``label``, when ready.
- ``_<port>._<proto>.<svc>.<ns>.svc.<zone>`` SRV for named ports: the Service name for a
  ClusterIP Service, each ready endpoint's name for a headless one.
- ``<a-b-c-d>.<ns>.pod.<zone>``: A for a pod with that IP in that namespace (CoreDNS's
  ``pods verified``: never an answer for an IP no pod has).
- PTR ``d.c.b.a.in-addr.arpa`` (and ``ip6.arpa``) for cluster IPs and hostnamed ready
  endpoints of headless Services.

A name that exists with no data of the asked type is NODATA (NOERROR, no answer), a name
that does not exist NXDOMAIN, both with the zone's SOA so resolvers cache the negative
answer only for the SOA minimum; names outside the zone, and reverse names of addresses the
cluster does not own, are REFUSED: this server never forwards and never recurses.

"Ready" is the EndpointSlice ``conditions.ready`` (absent means ready), which the slice
controller already forces for ``publishNotReadyAddresses``; the deprecated
``service.alpha.kubernetes.io/tolerate-unready-endpoints`` annotation is honoured too.
"""

from __future__ import annotations

import ipaddress
import time
from dataclasses import dataclass, field
from typing import Final

from kubeling.machinery.types import Obj

SCHEMA_VERSION: Final = "1.1.0"
TOLERATE_UNREADY: Final = "service.alpha.kubernetes.io/tolerate-unready-endpoints"
SERVICE_NAME_LABEL: Final = "kubernetes.io/service-name"

NOERROR: Final = 0
NXDOMAIN: Final = 3
REFUSED: Final = 5


@dataclass(frozen=True)
class Record:
    """One resource record: ``name`` absolute with a trailing dot, ``data`` per type
    (an address, a target name, ``(priority, weight, port, target)`` for SRV, text)."""

    name: str
    rtype: str
    data: object


@dataclass
class Answer:
    rcode: int = NOERROR
    records: list[Record] = field(default_factory=list)
    additional: list[Record] = field(default_factory=list)
    authoritative: bool = True
    """False for REFUSED: not a name this server answers for."""


@dataclass(frozen=True)
class Port:
    name: str
    port: int
    protocol: str


@dataclass
class Service:
    namespace: str
    name: str
    type: str
    cluster_ips: list[str]
    external_name: str
    headless: bool
    ports: list[Port]
    tolerate_unready: bool


@dataclass(frozen=True)
class Endpoint:
    ip: str
    hostname: str
    ready: bool

    @property
    def label(self) -> str:
        """The endpoint's DNS label: its hostname, else its IP with dashes (CoreDNS's
        "system-generated unique label")."""
        return self.hostname or self.ip.replace(".", "-").replace(":", "-")


@dataclass
class _Slice:
    endpoints: list[Endpoint]
    ports: list[Port]


def _is_v6(ip: str) -> bool:
    return ":" in ip


def _service_from(obj: Obj) -> Service:
    meta = obj.get("metadata") or {}
    spec = obj.get("spec") or {}
    type_ = spec.get("type") or "ClusterIP"
    ips = [ip for ip in spec.get("clusterIPs") or [] if isinstance(ip, str) and ip]
    if not ips and isinstance(spec.get("clusterIP"), str) and spec["clusterIP"]:
        ips = [spec["clusterIP"]]
    headless = type_ != "ExternalName" and bool(ips) and ips[0] == "None"
    ports = [
        Port(str(p.get("name") or ""), int(p.get("port") or 0), str(p.get("protocol") or "TCP"))
        for p in spec.get("ports") or []
        if isinstance(p, dict)
    ]
    annotation = str((meta.get("annotations") or {}).get(TOLERATE_UNREADY, "")).lower()
    return Service(
        namespace=str(meta.get("namespace") or ""),
        name=str(meta.get("name") or ""),
        type=type_,
        cluster_ips=[] if headless or type_ == "ExternalName" else ips,
        external_name=str(spec.get("externalName") or "") if type_ == "ExternalName" else "",
        headless=headless,
        ports=ports,
        tolerate_unready=annotation in ("1", "t", "true"),
    )


def _slice_from(obj: Obj) -> _Slice:
    want_v6 = obj.get("addressType") == "IPv6"
    endpoints: list[Endpoint] = []
    if obj.get("addressType") in ("IPv4", "IPv6"):
        for ep in obj.get("endpoints") or []:
            if not isinstance(ep, dict):
                continue
            ready = (ep.get("conditions") or {}).get("ready")
            for ip in ep.get("addresses") or []:
                if isinstance(ip, str) and _is_v6(ip) == want_v6:
                    endpoints.append(
                        Endpoint(
                            ip=ip, hostname=str(ep.get("hostname") or ""), ready=ready is not False
                        )
                    )
    ports = [
        Port(str(p.get("name") or ""), int(p.get("port") or 0), str(p.get("protocol") or "TCP"))
        for p in obj.get("ports") or []
        if isinstance(p, dict) and p.get("port") is not None
    ]
    return _Slice(endpoints=endpoints, ports=ports)


def reverse_name_to_ip(labels: list[str]) -> str | None:
    """``["4","3","2","1","in-addr","arpa"]`` → ``1.2.3.4`` (likewise nibbles for
    ``ip6.arpa``); None when the name is not a whole address."""
    if labels[-2:] == ["in-addr", "arpa"] and len(labels) == 6:
        try:
            return str(ipaddress.IPv4Address(".".join(reversed(labels[:4]))))
        except ValueError:
            return None
    if labels[-2:] == ["ip6", "arpa"] and len(labels) == 34:
        nibbles = "".join(reversed(labels[:32]))
        if len(nibbles) != 32:
            return None
        try:
            return str(ipaddress.IPv6Address(int(nibbles, 16)))
        except ValueError:
            return None
    return None


class ClusterIndex:
    def __init__(self, *, zone: str = "cluster.local") -> None:
        self.zone = zone.strip(".").lower()
        self.zone_labels = self.zone.split(".")
        self.services: dict[tuple[str, str], Service] = {}
        self._slices: dict[tuple[str, str], dict[str, _Slice]] = {}
        self._slice_owner: dict[tuple[str, str], tuple[str, str]] = {}
        self._pods: dict[tuple[str, str], list[str]] = {}
        self._pod_ips: dict[tuple[str, str], int] = {}
        """(namespace, ip) → how many pods have it (a restarted pod can overlap its
        predecessor for a moment)."""
        self._namespaces: dict[str, int] = {}
        self.serial = int(time.time())
        self.changes = 0

    def _changed(self) -> None:
        self.changes += 1
        self.serial = max(self.serial + 1, int(time.time()))

    # --- updates (from watches) -----------------------------------------------------------

    def set_service(self, obj: Obj) -> None:
        svc = _service_from(obj)
        key = (svc.namespace, svc.name)
        if key not in self.services:
            self._namespaces[svc.namespace] = self._namespaces.get(svc.namespace, 0) + 1
        self.services[key] = svc
        self._changed()

    def remove_service(self, obj: Obj) -> None:
        meta = obj.get("metadata") or {}
        key = (str(meta.get("namespace") or ""), str(meta.get("name") or ""))
        if self.services.pop(key, None) is not None:
            left = self._namespaces.get(key[0], 1) - 1
            if left > 0:
                self._namespaces[key[0]] = left
            else:
                self._namespaces.pop(key[0], None)
        self._changed()

    def set_slice(self, obj: Obj) -> None:
        meta = obj.get("metadata") or {}
        namespace = str(meta.get("namespace") or "")
        name = str(meta.get("name") or "")
        service = str((meta.get("labels") or {}).get(SERVICE_NAME_LABEL) or "")
        self._drop_slice(namespace, name)
        if service:
            owner = (namespace, service)
            self._slices.setdefault(owner, {})[name] = _slice_from(obj)
            self._slice_owner[(namespace, name)] = owner
        self._changed()

    def remove_slice(self, obj: Obj) -> None:
        meta = obj.get("metadata") or {}
        self._drop_slice(str(meta.get("namespace") or ""), str(meta.get("name") or ""))
        self._changed()

    def _drop_slice(self, namespace: str, name: str) -> None:
        owner = self._slice_owner.pop((namespace, name), None)
        if owner is None:
            return
        slices = self._slices.get(owner)
        if slices is not None:
            slices.pop(name, None)
            if not slices:
                del self._slices[owner]

    def set_pod(self, obj: Obj) -> None:
        meta = obj.get("metadata") or {}
        key = (str(meta.get("namespace") or ""), str(meta.get("name") or ""))
        status = obj.get("status") or {}
        ips = [p.get("ip") for p in status.get("podIPs") or [] if isinstance(p, dict)]
        clean = [ip for ip in ips if isinstance(ip, str) and ip]
        if not clean and isinstance(status.get("podIP"), str) and status["podIP"]:
            clean = [status["podIP"]]
        if status.get("phase") in ("Succeeded", "Failed"):
            clean = []
        self._remove_pod_key(key)
        if clean:
            self._pods[key] = clean
            for ip in clean:
                self._pod_ips[(key[0], ip)] = self._pod_ips.get((key[0], ip), 0) + 1
        self._changed()

    def remove_pod(self, obj: Obj) -> None:
        meta = obj.get("metadata") or {}
        self._remove_pod_key((str(meta.get("namespace") or ""), str(meta.get("name") or "")))
        self._changed()

    def _remove_pod_key(self, key: tuple[str, str]) -> None:
        for ip in self._pods.pop(key, []):
            left = self._pod_ips.get((key[0], ip), 1) - 1
            if left > 0:
                self._pod_ips[(key[0], ip)] = left
            else:
                self._pod_ips.pop((key[0], ip), None)

    # --- reading ----------------------------------------------------------------------------

    def endpoints(self, svc: Service) -> list[Endpoint]:
        """The Service's distinct endpoints over all its slices, ready first."""
        seen: dict[tuple[str, str], Endpoint] = {}
        for sl in (self._slices.get((svc.namespace, svc.name)) or {}).values():
            for ep in sl.endpoints:
                key = (ep.ip, ep.hostname)
                if key not in seen or (ep.ready and not seen[key].ready):
                    seen[key] = ep
        return sorted(seen.values(), key=lambda e: (e.ip, e.hostname))

    def ready_endpoints(self, svc: Service) -> list[Endpoint]:
        return [e for e in self.endpoints(svc) if e.ready or svc.tolerate_unready]

    def _endpoint_ports(self, svc: Service, ep: Endpoint) -> list[Port]:
        ports: list[Port] = []
        for sl in (self._slices.get((svc.namespace, svc.name)) or {}).values():
            if any(e.ip == ep.ip for e in sl.endpoints):
                ports.extend(p for p in sl.ports if p not in ports)
        return ports

    def fqdn(self, *labels: str) -> str:
        return ".".join([*labels, self.zone]) + "."

    # --- resolution -------------------------------------------------------------------------

    def resolve(self, qname: str, qtype: str) -> Answer:
        """The answer to ``qname``/``qtype`` (``qname`` as asked; matched case-insensitively,
        answered under the asked spelling)."""
        name = qname.rstrip(".")
        labels = name.lower().split(".") if name else []
        owner = name + "."
        zl = self.zone_labels
        if labels[-2:] in (["in-addr", "arpa"], ["ip6", "arpa"]):
            return self._reverse(labels, owner, qtype)
        if labels[-len(zl) :] != zl:
            return Answer(rcode=REFUSED, authoritative=False)
        rel = labels[: len(labels) - len(zl)]
        if not rel:
            return Answer()  # the apex exists; SOA and NS are added by the wire layer
        if rel == ["dns-version"]:
            if qtype in ("TXT", "ANY"):
                return Answer(records=[Record(owner, "TXT", SCHEMA_VERSION)])
            return Answer()
        if rel[-1] == "svc":
            return self._svc(rel[:-1], owner, qtype)
        if rel[-1] == "pod":
            return self._pod(rel[:-1], owner, qtype)
        return Answer(rcode=NXDOMAIN)

    def _svc(self, rel: list[str], owner: str, qtype: str) -> Answer:
        if not rel:
            return Answer()  # svc.<zone>: an empty non-terminal
        namespace = rel[-1]
        if len(rel) == 1:
            return Answer() if namespace in self._namespaces else Answer(rcode=NXDOMAIN)
        svc = self.services.get((namespace, rel[-2]))
        if svc is None:
            return Answer(rcode=NXDOMAIN)
        if len(rel) == 2:
            return self._service(svc, owner, qtype)
        if len(rel) == 3:
            label = rel[0]
            if label.startswith("_"):
                # _<proto>.<svc>...: exists when some named port uses that protocol
                if any(p.name and p.protocol.lower() == label[1:] for p in self._ports(svc)):
                    return Answer()
                return Answer(rcode=NXDOMAIN)
            return self._endpoint(svc, label, owner, qtype)
        if len(rel) == 4 and rel[0].startswith("_") and rel[1].startswith("_"):
            return self._srv(svc, rel[0][1:], rel[1][1:], owner, qtype)
        return Answer(rcode=NXDOMAIN)

    def _ports(self, svc: Service) -> list[Port]:
        if not svc.headless:
            return svc.ports
        out: list[Port] = []
        for sl in (self._slices.get((svc.namespace, svc.name)) or {}).values():
            out.extend(p for p in sl.ports if p not in out)
        return out

    def _address_records(self, owner: str, ips: list[str], qtype: str) -> list[Record]:
        out: list[Record] = []
        for ip in ips:
            if _is_v6(ip) and qtype in ("AAAA", "ANY"):
                out.append(Record(owner, "AAAA", ip))
            elif not _is_v6(ip) and qtype in ("A", "ANY"):
                out.append(Record(owner, "A", ip))
        return out

    def _service(self, svc: Service, owner: str, qtype: str) -> Answer:
        if svc.type == "ExternalName":
            if not svc.external_name:
                return Answer()
            target = svc.external_name.rstrip(".") + "."
            return Answer(records=[Record(owner, "CNAME", target)])
        if svc.headless:
            ready = self.ready_endpoints(svc)
            if not ready:
                return Answer(rcode=NXDOMAIN)
            seen: list[str] = []
            for ep in ready:
                if ep.ip not in seen:
                    seen.append(ep.ip)
            return Answer(records=self._address_records(owner, seen, qtype))
        return Answer(records=self._address_records(owner, svc.cluster_ips, qtype))

    def _endpoint(self, svc: Service, label: str, owner: str, qtype: str) -> Answer:
        if not svc.headless:
            return Answer(rcode=NXDOMAIN)
        ips = [ep.ip for ep in self.ready_endpoints(svc) if ep.label.lower() == label]
        if not ips:
            return Answer(rcode=NXDOMAIN)
        return Answer(records=self._address_records(owner, ips, qtype))

    def _srv(self, svc: Service, port_name: str, proto: str, owner: str, qtype: str) -> Answer:
        if svc.type == "ExternalName":
            return Answer(rcode=NXDOMAIN)

        def matches(p: Port) -> bool:
            return bool(p.name) and p.name.lower() == port_name and p.protocol.lower() == proto

        if not svc.headless:
            ports = [p for p in svc.ports if matches(p)]
            if not ports:
                return Answer(rcode=NXDOMAIN)
            if qtype not in ("SRV", "ANY"):
                return Answer()
            target = self.fqdn(svc.name, svc.namespace, "svc")
            return Answer(
                records=[Record(owner, "SRV", (0, 100, p.port, target)) for p in ports],
                additional=self._address_records(target, svc.cluster_ips, "ANY"),
            )
        records: list[Record] = []
        additional: list[Record] = []
        for ep in self.ready_endpoints(svc):
            for p in self._endpoint_ports(svc, ep):
                if not matches(p):
                    continue
                target = self.fqdn(ep.label, svc.name, svc.namespace, "svc")
                record = Record(owner, "SRV", (0, 100, p.port, target))
                if record not in records:
                    records.append(record)
                for extra in self._address_records(target, [ep.ip], "ANY"):
                    if extra not in additional:
                        additional.append(extra)
        if not records:
            return Answer(rcode=NXDOMAIN)
        if qtype not in ("SRV", "ANY"):
            return Answer()
        if records:
            share = max(1, 100 // len(records))
            records = [
                Record(r.name, "SRV", (0, share, r.data[2], r.data[3]))  # type: ignore[index]
                for r in records
            ]
        return Answer(records=records, additional=additional)

    def _pod(self, rel: list[str], owner: str, qtype: str) -> Answer:
        if not rel:
            return Answer()
        namespace = rel[-1]
        known_namespace = any(ns == namespace for ns, _ in self._pod_ips)
        if len(rel) == 1:
            return Answer() if known_namespace else Answer(rcode=NXDOMAIN)
        if len(rel) != 2:
            return Answer(rcode=NXDOMAIN)
        label = rel[0]
        candidates = [label.replace("-", ".")]
        if label.count("-") > 3 or ":" in label:
            candidates = [label.replace("-", ":")]
        for text in candidates:
            try:
                ip = str(ipaddress.ip_address(text))
            except ValueError:
                continue
            if (namespace, ip) in self._pod_ips:
                return Answer(records=self._address_records(owner, [ip], qtype))
        return Answer(rcode=NXDOMAIN)

    def _reverse(self, labels: list[str], owner: str, qtype: str) -> Answer:
        ip = reverse_name_to_ip(labels)
        if ip is None:
            return Answer(rcode=REFUSED, authoritative=False)
        targets: list[str] = []
        for svc in self.services.values():
            if ip in svc.cluster_ips:
                targets.append(self.fqdn(svc.name, svc.namespace, "svc"))
            elif svc.headless:
                for ep in self.ready_endpoints(svc):
                    if ep.ip == ip and ep.hostname:
                        targets.append(self.fqdn(ep.hostname, svc.name, svc.namespace, "svc"))
        if not targets:
            return Answer(rcode=REFUSED, authoritative=False)
        if qtype not in ("PTR", "ANY"):
            return Answer()
        return Answer(records=[Record(owner, "PTR", t) for t in sorted(set(targets))])
