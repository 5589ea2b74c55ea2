"""Probe failure texts as upstream's prober writes them (Go's net errors), not Python's."""

from __future__ import annotations

import asyncio
import errno
import re
import socket
import struct
from typing import Any

import pytest

from kubeling.agent.podsync import prober
from kubeling.agent.podsync.prober import run_probe


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def probe(kind: str, port: int, host: str = "127.0.0.1", **spec: Any) -> tuple[bool, str]:
    return await run_probe(
        {kind: {"host": host, "port": port, **spec}, "timeoutSeconds": 1},
        container={"name": "c"},
        pod_ip="",
        pod_reachable=False,
        exec_fn=None,
    )


async def test_tcp_probe_refused_reads_as_go() -> None:
    port = closed_port()
    assert await probe("tcpSocket", port) == (
        False,
        f"dial tcp 127.0.0.1:{port}: connect: connection refused",
    )


async def test_http_probe_refused_reads_as_go() -> None:
    port = closed_port()
    assert await probe("httpGet", port, path="/healthz") == (
        False,
        f'Get "http://127.0.0.1:{port}/healthz": dial tcp 127.0.0.1:{port}: connect: '
        "connection refused",
    )


async def test_http_probe_closed_without_answer_is_eof() -> None:
    async def hang_up(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while (await reader.readline()) not in (b"\r\n", b""):
            pass
        writer.close()

    server = await asyncio.start_server(hang_up, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        assert await probe("httpGet", port) == (False, f'Get "http://127.0.0.1:{port}/": EOF')
    finally:
        server.close()
        await server.wait_closed()


async def test_http_probe_reset_reads_as_go() -> None:
    async def reset(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while (await reader.readline()) not in (b"\r\n", b""):
            pass
        sock = writer.get_extra_info("socket")
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        writer.close()  # linger 0: the close is a reset

    server = await asyncio.start_server(reset, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        ok, text = await probe("httpGet", port)
    finally:
        server.close()
        await server.wait_closed()
    assert not ok
    assert re.fullmatch(
        rf'Get "http://127\.0\.0\.1:{port}/": read tcp 127\.0\.0\.1:\d+->127\.0\.0\.1:{port}: '
        r"read: connection reset by peer",
        text,
    ), text


@pytest.mark.parametrize(
    ("failure", "text"),
    [
        (
            OSError(errno.ECONNREFUSED, "Connect call failed ('127.0.0.9', 8080)"),
            "connection refused",
        ),
        (
            OSError(errno.EHOSTUNREACH, "Connect call failed ('127.0.0.9', 8080)"),
            "no route to host",
        ),
        (
            OSError(errno.ENETUNREACH, "Connect call failed ('127.0.0.9', 8080)"),
            "network is unreachable",
        ),
        (TimeoutError(), None),
    ],
)
async def test_dial_errors_map_to_go_texts(
    monkeypatch: pytest.MonkeyPatch, failure: BaseException, text: str | None
) -> None:
    async def fail(*args: Any, **kwargs: Any) -> Any:
        raise failure

    # No packet leaves: the dial itself is replaced by the failure under test.
    monkeypatch.setattr(prober.asyncio, "open_connection", fail)
    tcp = await probe("tcpSocket", 8080, host="127.0.0.9")
    http = await probe("httpGet", 8080, host="127.0.0.9")
    if text is None:
        assert tcp == (False, "dial tcp 127.0.0.9:8080: i/o timeout")
        assert http == (
            False,
            'Get "http://127.0.0.9:8080/": context deadline exceeded (Client.Timeout exceeded '
            "while awaiting headers)",
        )
    else:
        assert tcp == (False, f"dial tcp 127.0.0.9:8080: connect: {text}")
        assert http == (
            False,
            f'Get "http://127.0.0.9:8080/": dial tcp 127.0.0.9:8080: connect: {text}',
        )


def test_multiple_address_failure_reports_the_errno_of_the_first() -> None:
    first = OSError(errno.ECONNREFUSED, "Connect call failed ('::1', 80)")
    try:
        try:
            raise first
        except OSError:
            raise OSError("Multiple exceptions: [Errno 111] ...") from None
    except OSError as exc:
        combined = exc
    combined.__cause__ = first
    assert prober._reason(combined) == "connection refused"
