"""The cluster DNS server: UDP and TCP on the addresses given, answering from watches.

``DnsServer(client, listen=[(host, port)])`` lists and watches Services, EndpointSlices
and Pods through the API client (``client.informer``), keeps ``dns.index.ClusterIndex``
current from the watch events, and answers queries from it: nothing is read per query, so
a change is served as soon as its watch event arrives (no polling, no cache to expire).
It binds only the addresses it is given (loopback in tests and for the host, the pod
bridge's address for pods) and never sends a packet anywhere else: names outside the
cluster zone are REFUSED, there is no forwarder and no recursion.

Every answer carries TTL 5 s, the default of CoreDNS's ``kubernetes`` plugin: short enough
that an endpoint turning Ready or a pod being replaced is seen by caching resolvers within
seconds (the headless-Service peer discovery of field report B30 depends on it), long enough
to absorb the bursts of lookups a resolver's search list makes. Negative answers carry the
zone's SOA with the same 5 s minimum, so an NXDOMAIN is never cached for longer either.

The wire format is dnslib's. UDP answers larger than the client's limit (512 bytes, or its
EDNS0 payload size) come back truncated with TC set, and the client retries over TCP, where
each message is framed by its two-byte length (RFC 1035 §4.2.2).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import struct
from collections.abc import Sequence
from typing import Any, Final

from dnslib import (
    AAAA,
    CNAME,
    EDNS0,
    NS,
    OPCODE,
    PTR,
    QTYPE,
    RCODE,
    RR,
    SOA,
    SRV,
    TXT,
    A,
    DNSError,
    DNSHeader,
    DNSRecord,
)

from kubeling.client.informer import Informer
from kubeling.client.interface import Client
from kubeling.dns.index import NXDOMAIN, REFUSED, Answer, ClusterIndex, Record
from kubeling.machinery.resources import ENDPOINTSLICES, PODS, SERVICES

log = logging.getLogger(__name__)

DEFAULT_ZONE: Final = "cluster.local"
DEFAULT_TTL: Final = 5
UDP_DEFAULT_SIZE: Final = 512
EDNS_PAYLOAD: Final = 1232
"""What this server advertises and caps clients at (the DNS flag day 2020 value)."""
SYNC_TIMEOUT: Final = 60.0
TCP_IDLE_TIMEOUT: Final = 10.0
MEMO_SIZE: Final = 4096
CLASS_IN: Final = 1
CLASS_ANY: Final = 255


class DnsServer:
    """Cluster DNS: ``await start()`` (returns once the caches are synced and the sockets
    bound; ``addresses`` then lists the bound ``(host, port)``), ``await stop()``."""

    def __init__(
        self,
        client: Client,
        *,
        listen: Sequence[tuple[str, int]],
        zone: str = DEFAULT_ZONE,
        ttl: int = DEFAULT_TTL,
    ) -> None:
        if not listen:
            raise ValueError("DnsServer needs at least one address to listen on")
        self.client = client
        self.listen = list(listen)
        self.ttl = ttl
        self.index = ClusterIndex(zone=zone)
        self.zone = self.index.zone
        self.addresses: list[tuple[str, int]] = []
        self._informers: list[Informer] = []
        self._transports: list[asyncio.DatagramTransport] = []
        self._servers: list[asyncio.Server] = []
        self._connections: set[asyncio.Task[None]] = set()
        self.queries = 0
        self._memo: dict[tuple[bytes, int], bytes] = {}
        self._memo_changes = -1

    # --- lifecycle ---------------------------------------------------------------------------

    async def start(self) -> None:
        idx = self.index
        services = Informer(self.client, SERVICES)
        services.add_handler(
            on_add=idx.set_service,
            on_update=lambda _o, n: idx.set_service(n),
            on_delete=idx.remove_service,
        )
        slices = Informer(self.client, ENDPOINTSLICES)
        slices.add_handler(
            on_add=idx.set_slice,
            on_update=lambda _o, n: idx.set_slice(n),
            on_delete=idx.remove_slice,
        )
        pods = Informer(self.client, PODS)
        pods.add_handler(
            on_add=idx.set_pod, on_update=lambda _o, n: idx.set_pod(n), on_delete=idx.remove_pod
        )
        self._informers = [services, slices, pods]
        try:
            for informer in self._informers:
                informer.start()
            async with asyncio.timeout(SYNC_TIMEOUT):
                for informer in self._informers:
                    await informer.wait_synced()
            for host, port in self.listen:
                self.addresses.append(await self._bind(host, port))
        except BaseException:
            await self.stop()
            raise
        log.info(
            "Cluster DNS serving %s on %s.",
            self.zone,
            ", ".join(_format_addr(h, p) for h, p in self.addresses),
        )

    async def _bind(self, host: str, port: int) -> tuple[str, int]:
        loop = asyncio.get_running_loop()
        attempts = 5 if port == 0 else 1
        for attempt in range(attempts):
            transport, _ = await loop.create_datagram_endpoint(
                lambda: _UdpProtocol(self), local_addr=(host, port)
            )
            bound = transport.get_extra_info("sockname")[1]
            try:
                server = await asyncio.start_server(self._serve_tcp, host, bound)
            except OSError:
                transport.close()
                if attempt + 1 == attempts:
                    raise
                continue
            self._transports.append(transport)
            self._servers.append(server)
            return host, int(bound)
        raise AssertionError("unreachable")

    async def stop(self) -> None:
        for transport in self._transports:
            transport.close()
        self._transports.clear()
        for server in self._servers:
            server.close()
        for task in list(self._connections):
            task.cancel()
        for task in list(self._connections):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        for server in self._servers:
            with contextlib.suppress(Exception):
                await server.wait_closed()
        self._servers.clear()
        for informer in self._informers:
            await informer.stop()
        self._informers.clear()
        if self.addresses:
            log.info("Cluster DNS stopped.")
        self.addresses.clear()

    # --- TCP -----------------------------------------------------------------------------

    async def _serve_tcp(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._connections.add(task)
        try:
            while True:
                try:
                    async with asyncio.timeout(TCP_IDLE_TIMEOUT):
                        head = await reader.readexactly(2)
                        (length,) = struct.unpack("!H", head)
                        data = await reader.readexactly(length)
                except (asyncio.IncompleteReadError, TimeoutError, ConnectionError):
                    return
                reply = self.handle(data, max_size=65535)
                if reply is None:
                    return
                writer.write(struct.pack("!H", len(reply)) + reply)
                await writer.drain()
        finally:
            if task is not None:
                self._connections.discard(task)
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    # --- answering -----------------------------------------------------------------------

    def handle(self, data: bytes, *, max_size: int) -> bytes | None:
        """The wire answer to one query message (None: not even worth an error reply).

        Answers are memoized by the request's bytes after its ID (flags, question, EDNS)
        until the index changes: dnslib's encoder costs far more than the lookup, and a
        resolver asks the same few names over and over.
        """
        self.queries += 1
        if self._memo_changes != self.index.changes or len(self._memo) >= MEMO_SIZE:
            self._memo.clear()
            self._memo_changes = self.index.changes
        key = (bytes(data[2:]), max_size)
        cached = self._memo.get(key)
        if cached is not None:
            return bytes(data[:2]) + cached[2:]
        reply = self._answer(data, max_size=max_size)
        if reply is not None and len(data) >= 12:
            self._memo[key] = reply
        return reply

    def _answer(self, data: bytes, *, max_size: int) -> bytes | None:
        try:
            request = DNSRecord.parse(data)
        except (DNSError, struct.error, IndexError, ValueError):
            return _format_error(data)
        if request.header.qr:
            return None  # a response sent to us: never answer those
        edns = next((r for r in request.ar if r.rtype == QTYPE.OPT), None)
        limit = max_size
        if max_size < 65535:
            limit = max(UDP_DEFAULT_SIZE, min(int(edns.rclass), EDNS_PAYLOAD)) if edns else 512
        reply = DNSRecord(
            DNSHeader(id=request.header.id, qr=1, rd=request.header.rd, ra=0, aa=0),
            q=request.questions[0] if request.questions else None,
        )
        if edns is not None:
            reply.add_ar(EDNS0(udp_len=EDNS_PAYLOAD))
        if request.header.opcode != OPCODE.QUERY:
            reply.header.rcode = RCODE.NOTIMP
            return bytes(reply.pack())
        if len(request.questions) != 1:
            reply.header.rcode = RCODE.FORMERR
            return bytes(reply.pack())
        question = request.questions[0]
        if question.qclass not in (CLASS_IN, CLASS_ANY):
            reply.header.rcode = RCODE.REFUSED  # only the Internet class is served
            return bytes(reply.pack())
        qname = str(question.qname)
        qtype = QTYPE.get(question.qtype, str(question.qtype))
        answer = self.index.resolve(qname, str(qtype))
        self._fill(reply, answer, qname, str(qtype))
        packed = bytes(reply.pack())
        if len(packed) > limit:
            reply.rr = []
            reply.auth = []
            reply.ar = [r for r in reply.ar if r.rtype == QTYPE.OPT]
            reply.header.tc = 1
            packed = bytes(reply.pack())
        return packed

    def _fill(self, reply: DNSRecord, answer: Answer, qname: str, qtype: str) -> None:
        if answer.rcode == REFUSED:
            reply.header.rcode = RCODE.REFUSED
            return
        reply.header.aa = 1
        reply.header.rcode = answer.rcode
        for record in answer.records:
            reply.add_answer(self._rr(record))
        for record in answer.additional:
            reply.add_ar(self._rr(record))
        apex = qname.rstrip(".").lower() == self.zone
        if apex and answer.rcode == 0 and qtype in ("SOA", "ANY"):
            reply.add_answer(self._soa(qname))
        elif apex and answer.rcode == 0 and qtype == "NS":
            reply.add_answer(RR(qname, QTYPE.NS, ttl=self.ttl, rdata=NS(f"ns.dns.{self.zone}.")))
        if not reply.rr and (answer.rcode in (0, NXDOMAIN)) and answer.authoritative:
            # NODATA and NXDOMAIN carry the SOA: its minimum bounds negative caching.
            reply.add_auth(self._soa(f"{self.zone}."))

    def _soa(self, owner: str) -> RR:
        return RR(
            owner,
            QTYPE.SOA,
            ttl=self.ttl,
            rdata=SOA(
                f"ns.dns.{self.zone}.",
                f"hostmaster.{self.zone}.",
                (self.index.serial & 0xFFFFFFFF, 7200, 1800, 86400, self.ttl),
            ),
        )

    def _rr(self, record: Record) -> RR:
        rdata: Any
        if record.rtype == "A":
            rdata = A(str(record.data))
        elif record.rtype == "AAAA":
            rdata = AAAA(str(record.data))
        elif record.rtype == "SRV":
            fields: tuple[int, int, int, str] = record.data  # type: ignore[assignment]
            rdata = SRV(priority=fields[0], weight=fields[1], port=fields[2], target=fields[3])
        elif record.rtype == "PTR":
            rdata = PTR(str(record.data))
        elif record.rtype == "CNAME":
            rdata = CNAME(str(record.data))
        elif record.rtype == "TXT":
            rdata = TXT(str(record.data))
        else:
            raise ValueError(f"unsupported record type {record.rtype}")
        return RR(record.name, getattr(QTYPE, record.rtype), ttl=self.ttl, rdata=rdata)


class _UdpProtocol(asyncio.DatagramProtocol):
    def __init__(self, server: DnsServer) -> None:
        self.server = server
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: tuple[str | Any, int]) -> None:
        try:
            reply = self.server.handle(data, max_size=UDP_DEFAULT_SIZE)
        except Exception:
            log.exception("Answering a DNS query failed.")
            reply = _server_failure(data)
        if reply is not None and self.transport is not None:
            self.transport.sendto(reply, addr)

    def error_received(self, exc: Exception) -> None:
        log.debug("DNS UDP socket error: %s", exc)


def _format_error(data: bytes) -> bytes | None:
    """FORMERR for a message we cannot parse, if it has at least a header to answer."""
    if len(data) < 12:
        return None
    (qid, flags) = struct.unpack("!HH", data[:4])
    if flags & 0x8000:
        return None
    return struct.pack("!HHHHHH", qid, 0x8000 | (flags & 0x0100) | RCODE.FORMERR, 0, 0, 0, 0)


def _server_failure(data: bytes) -> bytes | None:
    if len(data) < 12:
        return None
    (qid, flags) = struct.unpack("!HH", data[:4])
    return struct.pack("!HHHHHH", qid, 0x8000 | (flags & 0x0100) | RCODE.SERVFAIL, 0, 0, 0, 0)


def _format_addr(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
