"""Asking a cluster DNS server on loopback, for the e2e suites that start one
(``kubeling up --dns-listen=127.0.0.1:<port>``)."""

from __future__ import annotations

import socket
import struct

from dnslib import QTYPE, DNSRecord


def free_port() -> int:
    """A port free for both UDP and TCP on 127.0.0.1 (the OS picks it)."""
    for _ in range(20):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
            udp.bind(("127.0.0.1", 0))
            port = int(udp.getsockname()[1])
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as tcp:
                try:
                    tcp.bind(("127.0.0.1", port))
                except OSError:
                    continue
                return port
    raise AssertionError("no free port for DNS")


def query_udp(port: int, name: str, qtype: str = "A") -> DNSRecord:
    """One question over UDP to 127.0.0.1:``port``; the parsed reply."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(5)
        s.sendto(DNSRecord.question(name, qtype).pack(), ("127.0.0.1", port))
        data, _ = s.recvfrom(65535)
    return DNSRecord.parse(data)


def query_tcp(port: int, name: str, qtype: str = "A") -> DNSRecord:
    """One question over TCP (two-byte length prefix, RFC 1035 4.2.2); the parsed reply."""
    payload = DNSRecord.question(name, qtype).pack()
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(struct.pack("!H", len(payload)) + payload)
        head = s.recv(2, socket.MSG_WAITALL)
        (length,) = struct.unpack("!H", head)
        data = s.recv(length, socket.MSG_WAITALL)
    return DNSRecord.parse(data)


def record_values(reply: DNSRecord, qtype: str = "A") -> list[str]:
    """The sorted values of the answer records of ``qtype`` (an SRV record's target)."""
    want = getattr(QTYPE, qtype)
    if qtype == "SRV":
        return sorted(str(rr.rdata.target) for rr in reply.rr if rr.rtype == want)
    return sorted(str(rr.rdata) for rr in reply.rr if rr.rtype == want)
