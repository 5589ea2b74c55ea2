"""The ASGI application: routing, authentication, and the non-resource endpoints.

One callable, no middleware stack: a request is routed by splitting its path once, the
non-resource answers (``/version``, discovery, health) are pre-encoded bytes, and resource
paths go to ``handlers.ResourceHandler``. Every ``StatusError`` becomes its ``Status``
answer here; anything else becomes a 500 ``InternalError`` and one log line with the
traceback, the only place the edge logs a failure.

Routing follows upstream's URL grammar, including its one ambiguity:
``/api/v1/namespaces/{name}[/status|/finalize]`` is the Namespace object, while
``/api/v1/namespaces/{ns}/{resource}[/{name}[/{sub}]]`` is a namespaced collection or object.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Final

import orjson

from kubeling.apiserver import discovery, reviews
from kubeling.apiserver.auth import Authenticator, authenticate
from kubeling.apiserver.handlers import ResourceHandler, StreamHandler, Target
from kubeling.apiserver.http import (
    Message,
    Receive,
    Request,
    Scope,
    Send,
    respond,
    respond_error,
    respond_json,
)
from kubeling.machinery import resources
from kubeling.machinery.errors import (
    InternalError,
    NotFound,
    StatusError,
    Unauthorized,
)
from kubeling.machinery.types import ResourceInfo
from kubeling.registry.context import UserInfo

log = logging.getLogger(__name__)

WebSocketHandler = Callable[[Scope, Receive, Send, Target, UserInfo], Awaitable[None]]

VERSION_INFO: Final = {
    "major": "1",
    "minor": "32",
    "gitVersion": "v1.32.0-kubeling",
    "gitCommit": "0000000000000000000000000000000000000000",
    "gitTreeState": "clean",
    "buildDate": "2026-01-01T00:00:00Z",
    "goVersion": "go1.23.0",
    "compiler": "gc",
    "platform": "linux/amd64",
}
_UNAUTHENTICATED: Final = frozenset({"/version", "/version/", "/healthz", "/livez", "/readyz"})


def _not_found() -> NotFound:
    return NotFound("the server could not find the requested resource")


class OpenApi:
    """``/openapi/v3`` documents, built on first use and cached encoded with their ETags."""

    def __init__(self) -> None:
        self._root: tuple[bytes, str] | None = None
        self._docs: dict[str, tuple[bytes, str]] = {}
        self._lock = asyncio.Lock()

    @staticmethod
    def _encode(doc: Any) -> tuple[bytes, str]:
        body = doc if isinstance(doc, bytes) else orjson.dumps(doc)
        return body, hashlib.sha512(body).hexdigest()[:32].upper()

    async def root(self) -> tuple[bytes, str]:
        if self._root is None:
            async with self._lock:
                if self._root is None:
                    from kubeling.machinery import openapi

                    doc = await asyncio.to_thread(openapi.root_document)
                    self._root = self._encode(doc)
        return self._root

    async def group_version(self, path: str) -> tuple[bytes, str] | None:
        cached = self._docs.get(path)
        if cached is None:
            async with self._lock:
                cached = self._docs.get(path)
                if cached is None:
                    found = await asyncio.to_thread(_load_group_version, path)
                    if found is None:
                        return None
                    cached = self._docs[path] = found
        return cached


def _load_group_version(path: str) -> tuple[bytes, str] | None:
    from kubeling.machinery import openapi

    doc = openapi.group_version_document(path)
    digest = openapi.group_version_hash(path)
    if doc is None or digest is None:
        return None
    return doc, digest


class App:
    """The API server as an ASGI application."""

    def __init__(
        self,
        *,
        registry: Any,
        authenticators: Sequence[Authenticator],
        server_address: str,
        catalogue: Sequence[ResourceInfo] = (*resources.ALL, *reviews.RESOURCES),
        ready: Callable[[], bool] = lambda: True,
    ) -> None:
        self.authenticators = list(authenticators)
        """Tried in order; append more (service-account tokens) at any time."""
        self._discovery = discovery.build(catalogue, server_address=server_address)
        self._version = orjson.dumps(VERSION_INFO)
        self.stopping = asyncio.Event()
        """Set on shutdown: open watches end so the server can stop."""
        self._resources = ResourceHandler(registry, stopping=self.stopping)
        self._openapi = OpenApi()
        self._ready = ready
        self.websocket_handlers: dict[str, WebSocketHandler] = {}
        """WebSocket handlers (``pods/exec``, ``pods/attach``, ``pods/portforward``) by
        ``<plural>/<subresource>``; each gets the raw ASGI scope, receive and send, and
        answers the handshake itself (``websocket.accept`` with its sub-protocol)."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "http":
            await self._http(scope, receive, send)
        elif kind == "lifespan":
            await _lifespan(receive, send)
        elif kind == "websocket":
            await self._websocket(scope, receive, send)

    @property
    def http_streams(self) -> dict[str, StreamHandler]:
        """Handlers of streaming subresources over plain HTTP (``pods/log``), by
        ``<plural>/<subresource>``; unregistered ones answer 405."""
        return self._resources.streams

    async def _websocket(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Authenticate and route an upgrade to its registered handler, else refuse it.

        A refused upgrade (403) makes kubectl retry with SPDY, a POST that the HTTP side
        then answers with a Status."""
        req = Request(scope, receive)
        handler: WebSocketHandler | None = None
        target: Target | None = None
        user = authenticate(self.authenticators, req.headers.get(b"authorization"), _peer(scope))
        if user is not None:
            try:
                parts = req.path.strip("/").split("/")
                if parts[0] == "api" and len(parts) >= 3:
                    target = self._resolve(parts[1], parts[2:])
                elif parts[0] == "apis" and len(parts) >= 4:
                    target = self._resolve(f"{parts[1]}/{parts[2]}", parts[3:])
            except StatusError:
                target = None
            if target is not None and target.name and target.subresource:
                key = f"{target.info.plural}/{target.subresource}"
                handler = self.websocket_handlers.get(key)
        if handler is None or target is None or user is None:
            # TODO(#5): only exec has a WebSocket handler; attach and port-forward upgrades
            # are refused here, and kubectl reports the failed upgrade.
            await send({"type": "websocket.close", "code": 1008})
            return
        try:
            await handler(scope, receive, send, target, user)
        except Exception:
            log.exception("Internal error serving WebSocket %s.", req.path)

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        req = Request(scope, receive)
        status = 0
        debug = log.isEnabledFor(logging.DEBUG)
        began = time.perf_counter() if debug else 0.0

        async def tracked(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            path = req.path
            if path in _UNAUTHENTICATED:
                await self._unauthenticated(req, tracked)
                return
            user = authenticate(
                self.authenticators, req.headers.get(b"authorization"), _peer(scope)
            )
            if user is None:
                raise Unauthorized("Unauthorized")
            await self._route(req, tracked, user)
        except StatusError as e:
            if not status:
                await respond_error(tracked, e)
        except Exception:
            log.exception("Internal error serving %s %s.", req.method, req.path)
            if not status:
                await respond_error(
                    tracked,
                    InternalError("an error on the server prevented the request from succeeding"),
                )
        finally:
            if debug:
                log.debug(
                    "%s %s?%s -> %d in %.1f ms",
                    req.method,
                    req.path,
                    req.query_string.decode("latin-1"),
                    status,
                    (time.perf_counter() - began) * 1000,
                )

    async def _unauthenticated(self, req: Request, send: Send) -> None:
        if req.path.startswith("/version"):
            await respond(send, 200, self._version)
        elif req.path == "/readyz" and not self._ready():
            await respond(send, 500, b"readyz check failed", content_type=b"text/plain")
        else:
            await respond(send, 200, b"ok", content_type=b"text/plain; charset=utf-8")

    async def _route(self, req: Request, send: Send, user: UserInfo) -> None:
        path = req.path.rstrip("/") or "/"
        doc = self._discovery.documents.get(path)
        if doc is not None and req.method == "GET":
            aggregated = self._discovery.aggregated.get(path)
            version = discovery.aggregated_version(req.header(b"accept")) if aggregated else ""
            if aggregated and version:
                content_type = discovery.AGGREGATED_CONTENT_TYPE.format(v=version).encode()
                await respond(send, 200, aggregated[version], content_type=content_type)
                return
            await respond(send, 200, doc)
            return
        parts = path.strip("/").split("/")
        head = parts[0]
        if head == "api" and len(parts) >= 3:
            gv, rest = parts[1], parts[2:]
        elif head == "apis" and len(parts) >= 4:
            gv, rest = f"{parts[1]}/{parts[2]}", parts[3:]
        elif head == "openapi":
            await self._serve_openapi(req, send, parts)
            return
        elif path in ("/", ""):
            await respond_json(send, 200, {"paths": sorted(self._discovery.documents)})
            return
        else:
            raise _not_found()
        target = self._resolve(gv, rest)
        if target.info in reviews.RESOURCES and not target.name:
            await reviews.handle(req, send, target.info, user)
            return
        await self._resources.handle(req, send, target, user)

    def _resolve(self, gv: str, rest: list[str]) -> Target:
        routes = self._discovery.group_versions.get(gv)
        if routes is None or "" in rest:
            raise _not_found()
        n = len(rest)
        if rest[0] == "namespaces" and n >= 3:
            ns = rest[1]
            info = routes.get(rest[2])
            if info is not None and info.namespaced:
                name = rest[3] if n >= 4 else ""
                sub = rest[4] if n >= 5 else ""
                if n > 5 or (sub and sub not in info.subresources):
                    raise _not_found()
                return Target(info=info, namespace=ns, name=name, subresource=sub)
            if n == 3 and gv == "v1" and rest[2] in resources.NAMESPACES.subresources:
                return Target(info=resources.NAMESPACES, namespace="", name=ns, subresource=rest[2])
            raise _not_found()
        info = routes.get(rest[0])
        if info is None or n > 3:
            raise _not_found()
        name = rest[1] if n >= 2 else ""
        sub = rest[2] if n >= 3 else ""
        if sub and sub not in info.subresources:
            raise _not_found()
        if info.namespaced and name:
            # A namespaced object needs its namespace in the path.
            raise _not_found()
        return Target(info=info, namespace="", name=name, subresource=sub)

    async def _serve_openapi(self, req: Request, send: Send, parts: list[str]) -> None:
        if len(parts) == 2 and parts[1] == "v2" and req.method == "GET":
            # Protobuf only, never JSON (kubectl parses it as protobuf whatever it gets).
            from kubeling.machinery import openapi

            await respond(
                send, 200, openapi.V2_DOCUMENT, content_type=openapi.V2_CONTENT_TYPE.encode()
            )
            return
        if len(parts) < 2 or parts[1] != "v3" or req.method != "GET":
            raise _not_found()
        if len(parts) == 2:
            body, etag = await self._openapi.root()
            await self._send_cached(req, send, body, etag, immutable=False)
            return
        gv_path = "/".join(parts[2:])
        found = await self._openapi.group_version(gv_path)
        if found is None:
            raise _not_found()
        body, etag = found
        wanted = req.q("hash")
        if wanted and wanted != etag:
            # Upstream redirects a stale hash to the current document's URL.
            location = f"/openapi/v3/{gv_path}?hash={etag}".encode()
            await send(
                {
                    "type": "http.response.start",
                    "status": 301,
                    "headers": [(b"location", location), (b"content-length", b"0")],
                }
            )
            await send({"type": "http.response.body", "body": b""})
            return
        await self._send_cached(req, send, body, etag, immutable=bool(wanted))

    async def _send_cached(
        self, req: Request, send: Send, body: bytes, etag: str, *, immutable: bool
    ) -> None:
        quoted = f'"{etag}"'.encode()
        cache = b"public, immutable" if immutable else b"no-cache, private"
        headers = [(b"etag", quoted), (b"cache-control", cache), (b"vary", b"Accept")]
        if req.header(b"if-none-match") == quoted:
            await send({"type": "http.response.start", "status": 304, "headers": headers})
            await send({"type": "http.response.body", "body": b""})
            return
        await respond(send, 200, body, headers=headers)


def _peer(scope: Scope) -> dict[str, Any] | None:
    state = scope.get("state")
    if state:
        peer: dict[str, Any] | None = state.get("kubeling.peer_cert")
        return peer
    return None


async def _lifespan(receive: Receive, send: Send) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return
