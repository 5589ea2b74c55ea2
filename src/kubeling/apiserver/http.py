"""The few ASGI primitives the API edge needs: a parsed request and ways to answer it.

No framework: a request is parsed once into ``Request`` (path segments, query, the headers
the edge reads) and answered with one ``http.response.start`` plus one body, or a stream of
body chunks for watches. Headers are kept as bytes, as ASGI hands them over, so the hot path
does no decoding it does not need.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any, Final
from urllib.parse import parse_qs

import orjson

from kubeling.machinery.errors import RequestEntityTooLarge, StatusError

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

JSON: Final = b"application/json"
NOT_ALLOWED: Final = "the server does not allow this method on the requested resource"
"""Upstream's text for a verb a path does not serve (405 MethodNotAllowed)."""
MAX_BODY: Final = 3 * 1024 * 1024
"""Upstream's request body limit (``MaxRequestBodyBytes``, 3 MiB)."""


class Request:
    __slots__ = ("_query", "headers", "method", "path", "query_string", "receive", "scope")

    def __init__(self, scope: Scope, receive: Receive) -> None:
        self.scope = scope
        self.receive = receive
        # WebSocket scopes have no method; their handshake is a GET.
        self.method: str = scope.get("method", "GET")
        self.path: str = scope["path"]
        self.query_string: bytes = scope.get("query_string", b"")
        headers: dict[bytes, bytes] = {}
        for k, v in scope["headers"]:
            # Repeated headers (Accept, Warning) fold into one comma-separated value.
            headers[k] = headers[k] + b"," + v if k in headers else v
        self.headers = headers
        self._query: dict[str, list[str]] | None = None

    @property
    def query(self) -> dict[str, list[str]]:
        if self._query is None:
            self._query = (
                parse_qs(self.query_string.decode("latin-1"), keep_blank_values=True)
                if self.query_string
                else {}
            )
        return self._query

    def q(self, name: str, default: str = "") -> str:
        values = self.query.get(name)
        return values[0] if values else default

    def header(self, name: bytes) -> bytes:
        return self.headers.get(name, b"")

    async def body(self) -> bytes:
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await self.receive()
            if message["type"] == "http.disconnect":
                break
            chunk = message.get("body", b"")
            if chunk:
                size += len(chunk)
                if size > MAX_BODY:
                    raise RequestEntityTooLarge(f"Request entity too large: limit is {MAX_BODY}")
                chunks.append(chunk)
            if not message.get("more_body", False):
                break
        return b"".join(chunks)


def warning_headers(warnings: list[str]) -> list[tuple[bytes, bytes]]:
    """``Warning: 299 - "text"`` headers; kubectl prints only code 299."""
    out = []
    for text in warnings:
        escaped = text.replace("\\", "\\\\").replace('"', '\\"')
        out.append((b"warning", f'299 - "{escaped}"'.encode()))
    return out


async def respond(
    send: Send,
    status: int,
    body: bytes,
    *,
    content_type: bytes = JSON,
    headers: list[tuple[bytes, bytes]] | None = None,
) -> None:
    all_headers = [
        (b"content-type", content_type),
        (b"content-length", str(len(body)).encode()),
    ]
    if headers:
        all_headers.extend(headers)
    await send({"type": "http.response.start", "status": status, "headers": all_headers})
    await send({"type": "http.response.body", "body": body})


async def respond_json(
    send: Send,
    status: int,
    obj: Any,
    *,
    headers: list[tuple[bytes, bytes]] | None = None,
    pretty: bool = False,
) -> None:
    option = orjson.OPT_INDENT_2 if pretty else 0
    await respond(send, status, orjson.dumps(obj, option=option), headers=headers)


async def respond_error(
    send: Send, error: StatusError, *, headers: list[tuple[bytes, bytes]] | None = None
) -> None:
    extra = list(headers or ())
    if error.retry_after_seconds is not None:
        extra.append((b"retry-after", str(error.retry_after_seconds).encode()))
    await respond_json(send, error.code, error.to_status(), headers=extra)


def success_status(**details: Any) -> dict[str, Any]:
    out: dict[str, Any] = {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Success",
    }
    if details:
        out["details"] = details
    return out
