"""Serving the ASGI app over HTTPS with uvicorn, inside the caller's event loop.

The listening socket is bound here, before uvicorn starts, so that ``--listen :0`` knows its
port at once (for the kubeconfig and the ready line). uvicorn's own signal capture is turned
off: the process owner (``kubeling up`` or a test) decides when to stop and calls ``stop``.

TLS requests a client certificate without requiring one, so token users and certificate
users share the port. uvicorn does not put the peer certificate in the ASGI scope; the
protocol subclass below copies the verified certificate into the per-connection ``state``
mapping, which uvicorn copies into each request's scope.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import ssl
from collections.abc import Generator
from typing import Any

import uvicorn

try:
    # httptools parses requests and writes response heads in C; with h11 (pure Python) the
    # HTTP layer was about half the server CPU of a GET and a fifth of a create's (measured
    # by bench/bench_api.py, see bench/README.md). h11 remains the fallback.
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol as _HttpProtocol
except ImportError:  # pragma: no cover - httptools is a dependency
    from uvicorn.protocols.http.h11_impl import H11Protocol as _HttpProtocol  # type: ignore[assignment]

from kubeling.apiserver.app import App
from kubeling.apiserver.auth import Pki

log = logging.getLogger(__name__)


class _PeerCertProtocol(_HttpProtocol):
    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        ssl_object = transport.get_extra_info("ssl_object")
        if ssl_object is not None:
            peer = ssl_object.getpeercert()
            if peer:
                self.app_state = {**self.app_state, "kubeling.peer_cert": peer}
        super().connection_made(transport)


class _Server(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield


def bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # An explicit IPPROTO_TCP matters: asyncio sets TCP_NODELAY only on sockets whose proto
    # says TCP, and without it every answer written in two parts waits ~40 ms for an ACK.
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if family == socket.AF_INET6 and host == "::":
        sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
    sock.bind((host, port))
    sock.listen(1024)
    sock.setblocking(False)
    return sock


class HttpsServer:
    """uvicorn serving ``app`` on an already-bound socket."""

    def __init__(self, app: App, sock: socket.socket, *, pki: Pki) -> None:
        self.app = app
        self.sock = sock
        config = uvicorn.Config(
            app,
            http=_PeerCertProtocol,
            ws="websockets-sansio",
            lifespan="off",
            log_config=None,
            access_log=False,
            ssl_certfile=str(pki.serving_cert),
            ssl_keyfile=str(pki.serving_key),
            ssl_ca_certs=str(pki.ca_cert),
            ssl_cert_reqs=ssl.CERT_OPTIONAL,
            timeout_keep_alive=120,
            timeout_graceful_shutdown=5,
            server_header=False,
            date_header=False,
        )
        self._server = _Server(config)
        self._task: asyncio.Task[Any] | None = None

    @property
    def port(self) -> int:
        port: int = self.sock.getsockname()[1]
        return port

    async def start(self) -> None:
        self._task = asyncio.create_task(self._server.serve(sockets=[self.sock]))
        while not self._server.started:
            if self._task.done():
                task, self._task = self._task, None
                task.result()
                raise RuntimeError("the API server stopped while starting")
            await asyncio.sleep(0.005)

    async def stop(self) -> None:
        self.app.stopping.set()
        self._server.should_exit = True
        if self._task is not None:
            await self._task
            self._task = None
