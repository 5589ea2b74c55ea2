"""DNS test fixtures: a registry in memory, the EndpointSlice controller, and a
``DnsServer`` on 127.0.0.1 (a free port), queried over real UDP and TCP sockets."""

from __future__ import annotations

import asyncio
import struct
from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest
from dnslib import QTYPE, RCODE, DNSRecord

from kubeling.controllers.endpointslice import build as build_slices
from kubeling.dns.server import DnsServer
from tests.controllers.conftest import Api, api, wait_until

__all__ = ["Dns", "api", "wait_until"]


class _Client(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.reply: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()

    def datagram_received(self, data: bytes, addr: object) -> None:
        if not self.reply.done():
            self.reply.set_result(data)


async def udp_exchange(addr: tuple[str, int], payload: bytes) -> bytes:
    loop = asyncio.get_running_loop()
    transport, proto = await loop.create_datagram_endpoint(_Client, remote_addr=addr)
    try:
        transport.sendto(payload)
        async with asyncio.timeout(5):
            return await proto.reply
    finally:
        transport.close()


async def tcp_exchange(addr: tuple[str, int], payload: bytes) -> bytes:
    reader, writer = await asyncio.open_connection(*addr)
    try:
        writer.write(struct.pack("!H", len(payload)) + payload)
        await writer.drain()
        async with asyncio.timeout(5):
            (length,) = struct.unpack("!H", await reader.readexactly(2))
            return await reader.readexactly(length)
    finally:
        writer.close()
        await writer.wait_closed()


@dataclass
class Dns:
    api: Api
    server: DnsServer

    @property
    def addr(self) -> tuple[str, int]:
        return self.server.addresses[0]

    async def query(self, name: str, qtype: str = "A", *, tcp: bool = False) -> DNSRecord:
        payload = DNSRecord.question(name, qtype).pack()
        exchange = tcp_exchange if tcp else udp_exchange
        return DNSRecord.parse(await exchange(self.addr, payload))

    async def rcode(self, name: str, qtype: str = "A") -> str:
        return str(RCODE.get((await self.query(name, qtype)).header.rcode))

    async def values(self, name: str, qtype: str = "A") -> list[str]:
        """The answer's rdata texts for records of ``qtype``, sorted."""
        reply = await self.query(name, qtype)
        want = getattr(QTYPE, qtype)
        return sorted(str(rr.rdata) for rr in reply.rr if rr.rtype == want)

    async def until_values(self, name: str, expected: list[str], qtype: str = "A") -> None:
        async def check() -> bool:
            return await self.values(name, qtype) == sorted(expected)

        await wait_until(check, what=f"{qtype} {name} = {expected}")

    async def until_rcode(self, name: str, rcode: str, qtype: str = "A") -> None:
        async def check() -> bool:
            return await self.rcode(name, qtype) == rcode

        await wait_until(check, what=f"{qtype} {name} answers {rcode}")


@pytest.fixture
async def dns(api: Api) -> AsyncIterator[Dns]:
    controller = build_slices(api.ctx)
    await api.start(controller)
    server = DnsServer(api.client, listen=[("127.0.0.1", 0)])
    await server.start()
    try:
        yield Dns(api=api, server=server)
    finally:
        await server.stop()
