"""The API server's side of ``pods/log`` and ``pods/exec``: find the pod's node agent, proxy.

As upstream, the API server checks the request (pod exists, has a node, the container
is one of its own: ``a container name must be specified for pod web, choose one of: [a
b]``), finds the agent from the Node object (``status.addresses`` InternalIP and
``status.daemonEndpoints.kubeletEndpoint.Port``) and streams the agent's answer back.
Kubeling only ever dials a loopback address: a Node claiming any other address gets an
error, never a connection.

Exec arrives as a WebSocket. The sub-protocol is the first one the client offers that
kubeling speaks, as upstream's ``wsstream`` chooses: ``v5.channel.k8s.io`` (kubectl 1.30+;
channel 255 closes stdin), ``v4.channel.k8s.io`` (the exit as a ``Status`` JSON on
channel 3), ``channel.k8s.io`` (channel 3 carries an error text) and
``base64.channel.k8s.io`` / ``v4.base64.channel.k8s.io`` (text frames: an ASCII channel
digit then base64). Errors found before the command starts are answered as an HTTP
``Status`` instead of the upgrade; kubectl then retries with SPDY, whose POST gets the
same ``Status`` here, so the user sees the real reason.

The agent speaks a simple framing (``agent.server``) on a loopback port, authenticated by
a secret the cluster gives both halves; see that module for why not TLS.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import ipaddress
import json
import logging
import struct
from typing import Any
from urllib.parse import quote, urlencode

from kubeling.apiserver.app import App
from kubeling.apiserver.handlers import Target
from kubeling.apiserver.http import Message, Receive, Request, Scope, Send, respond, respond_error
from kubeling.machinery.errors import (
    BadRequest,
    InternalError,
    NotFound,
    StatusError,
    Unauthorized,
)
from kubeling.machinery.resources import NODES, PODS
from kubeling.machinery.types import Obj
from kubeling.registry.context import RequestContext, UserInfo

log = logging.getLogger(__name__)

PROTOCOLS = (
    "v5.channel.k8s.io",
    "v4.channel.k8s.io",
    "v4.base64.channel.k8s.io",
    "channel.k8s.io",
    "base64.channel.k8s.io",
)
LOG_PARAMS = (
    "follow",
    "tailLines",
    "timestamps",
    "sinceSeconds",
    "sinceTime",
    "previous",
    "limitBytes",
)
EXEC_PARAMS = ("stdin", "stdout", "stderr", "tty")


def frame(channel: int, payload: bytes) -> bytes:
    """The agent's framing (``agent.server``): channel byte, 4-byte big-endian length."""
    return struct.pack(">BI", channel, len(payload)) + payload


async def read_frame(reader: asyncio.StreamReader) -> tuple[int, bytes] | None:
    try:
        channel, length = struct.unpack(">BI", await reader.readexactly(5))
        return channel, await reader.readexactly(length)
    except (asyncio.IncompleteReadError, ConnectionError):
        return None


def agent_error(code: int, body: bytes) -> StatusError:
    """The agent's non-success answer as the same error (its own ``Status`` message)."""
    try:
        message = str(json.loads(body).get("message", ""))
    except (ValueError, AttributeError):
        message = body.decode(errors="replace")
    cls = {400: BadRequest, 401: Unauthorized, 404: NotFound}.get(code, InternalError)
    return cls(message)


def install(app: App, registry: Any, *, agent_token: str) -> None:
    """Register the handlers on the app (``http_streams``, ``websocket_handlers``)."""
    proxy = AgentProxy(registry, agent_token=agent_token)
    app.http_streams["pods/log"] = proxy.logs
    app.http_streams["pods/exec"] = proxy.exec_http
    app.websocket_handlers["pods/exec"] = proxy.exec_websocket
    # TODO(#5): pods/attach and pods/portforward are not proxied yet; they answer 405.


class AgentProxy:
    def __init__(self, registry: Any, *, agent_token: str) -> None:
        self.registry = registry
        self.token = agent_token

    # --- locating the agent ----------------------------------------------------------------

    async def _pod_and_agent(
        self, target: Target, user: UserInfo, container: str
    ) -> tuple[Obj, str, str, int]:
        """(pod, container, agent host, agent port), or the upstream error."""
        ctx = RequestContext(user=user)
        pod = await self.registry.store(PODS).get(
            namespace=target.namespace, name=target.name, ctx=ctx
        )
        spec = pod.get("spec") or {}
        names = [c["name"] for c in spec.get("containers") or []]
        init_names = [c["name"] for c in spec.get("initContainers") or []]
        ephemeral = [c["name"] for c in spec.get("ephemeralContainers") or []]
        name = target.name
        if not container:
            if len(names) == 1:
                container = names[0]
            else:
                message = (
                    f"a container name must be specified for pod {name}, "
                    f"choose one of: [{' '.join(names)}]"
                )
                if init_names:
                    message += f" or one of the init containers: [{' '.join(init_names)}]"
                raise BadRequest(message)
        elif container not in names + init_names + ephemeral:
            raise BadRequest(f"container {container} is not valid for pod {name}")
        node_name = spec.get("nodeName")
        if not node_name:
            raise BadRequest(f"pod {name} does not have a host assigned")
        node = await self.registry.store(NODES).get(namespace="", name=node_name, ctx=ctx)
        status = node.get("status") or {}
        port = int(
            ((status.get("daemonEndpoints") or {}).get("kubeletEndpoint") or {}).get("Port") or 0
        )
        host = ""
        for addr in status.get("addresses") or []:
            if addr.get("type") == "InternalIP":
                host = addr.get("address", "")
                break
        try:
            loopback = ipaddress.ip_address(host).is_loopback
        except ValueError:
            loopback = False
        if not port or not loopback:
            raise InternalError(
                f"node {node_name} has no node-agent endpoint kubeling can reach "
                f"(address {host or 'none'}, port {port}; kubeling proxies to loopback only)"
            )
        return pod, container, host, port

    async def _connect(
        self, host: str, port: int, path: str, *, upgrade: bool
    ) -> tuple[asyncio.StreamReader, asyncio.StreamWriter, int, bytes]:
        """Send the request; return the streams, the status code and (non-101/200) body."""
        try:
            reader, writer = await asyncio.open_connection(host, port)
        except OSError as exc:
            raise InternalError(f"error dialing backend: dial tcp {host}:{port}: {exc}") from exc
        head = (
            f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nAuthorization: Bearer {self.token}\r\n"
        )
        if upgrade:
            head += "Connection: Upgrade\r\nUpgrade: kubeling-exec\r\n"
        writer.write((head + "\r\n").encode())
        await writer.drain()
        status_line = await reader.readline()
        headers: dict[str, str] = {}
        while True:
            line = (await reader.readline()).decode("latin-1")
            if line in ("\r\n", "\n", ""):
                break
            k, _, v = line.partition(":")
            headers[k.strip().lower()] = v.strip()
        parts = status_line.split()
        code = int(parts[1]) if len(parts) >= 2 and parts[1].isdigit() else 502
        body = b""
        if code not in (101, 200):
            length = int(headers.get("content-length") or 0)
            body = await reader.readexactly(length) if length else await reader.read()
            writer.close()
        return reader, writer, code, body

    # --- logs ------------------------------------------------------------------------------

    async def logs(self, req: Request, send: Send, target: Target, user: UserInfo) -> None:
        _pod, container, host, port = await self._pod_and_agent(target, user, req.q("container"))
        params = [(k, req.q(k)) for k in LOG_PARAMS if req.q(k)]
        path = (
            f"/containerLogs/{quote(target.namespace)}/{quote(target.name)}/{quote(container)}"
            + (f"?{urlencode(params)}" if params else "")
        )
        reader, writer, code, body = await self._connect(host, port, path, upgrade=False)
        if code != 200:
            raise agent_error(code, body)
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", b"text/plain")],
            }
        )

        async def pump() -> None:
            while chunk := await reader.read(65536):
                await send({"type": "http.response.body", "body": chunk, "more_body": True})

        async def disconnected() -> None:
            while (await req.receive())["type"] != "http.disconnect":
                pass

        pumping = asyncio.create_task(pump())
        watching = asyncio.create_task(disconnected())
        try:
            await asyncio.wait({pumping, watching}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for t in (pumping, watching):
                t.cancel()
            for t in (pumping, watching):
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await t
            writer.close()
        with contextlib.suppress(Exception):
            await send({"type": "http.response.body", "body": b"", "more_body": False})

    # --- exec ------------------------------------------------------------------------------

    def _exec_path(self, target: Target, container: str, query: dict[str, list[str]]) -> str:
        params: list[tuple[str, str]] = [("command", c) for c in query.get("command") or []]
        for k in EXEC_PARAMS:
            if query.get(k):
                params.append((k, query[k][0]))
        return (
            f"/exec/{quote(target.namespace)}/{quote(target.name)}/{quote(container)}?"
            + urlencode(params)
        )

    async def exec_http(self, req: Request, send: Send, target: Target, user: UserInfo) -> None:
        """A plain-HTTP exec (kubectl's SPDY fallback after a refused WebSocket)."""
        _pod, container, host, port = await self._pod_and_agent(target, user, req.q("container"))
        if not req.query.get("command"):
            raise BadRequest("you must specify at least 1 command")
        # The agent checks what only it knows (container running, a runtime with processes)
        # without starting anything, so the user sees that reason rather than ours below.
        path = self._exec_path(target, container, req.query) + "&dryRun=true"
        _reader, writer, code, body = await self._connect(host, port, path, upgrade=False)
        writer.close()
        if code != 200:
            raise agent_error(code, body)
        raise BadRequest(
            "kubeling serves exec over WebSocket only (" + ", ".join(PROTOCOLS) + "); "
            "SPDY is not supported"
        )

    async def exec_websocket(
        self, scope: Scope, receive: Receive, send: Send, target: Target, user: UserInfo
    ) -> None:
        req = Request(scope, receive)
        message = await receive()
        if message["type"] != "websocket.connect":
            return
        offered = list(scope.get("subprotocols") or [])
        protocol = next((p for p in offered if p in PROTOCOLS), None)
        try:
            if offered and protocol is None:
                raise BadRequest(
                    "unable to upgrade connection: none of the offered sub-protocols is "
                    "supported: " + ", ".join(offered)
                )
            _pod, container, host, port = await self._pod_and_agent(
                target, user, req.q("container")
            )
            if not req.query.get("command"):
                raise BadRequest("you must specify at least 1 command")
            path = self._exec_path(target, container, req.query)
            reader, writer, code, body = await self._connect(host, port, path, upgrade=True)
            if code != 101:
                raise agent_error(code, body)
        except StatusError as exc:
            await _deny(scope, send, exc)
            return
        await send({"type": "websocket.accept", "subprotocol": protocol})
        session = _Session(protocol or "channel.k8s.io", send)
        upstream = asyncio.create_task(self._from_client(receive, writer, session))
        try:
            await self._to_client(reader, session)
        finally:
            upstream.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await upstream
            writer.close()
        with contextlib.suppress(Exception):
            await send({"type": "websocket.close", "code": 1000})

    async def _from_client(
        self, receive: Receive, writer: asyncio.StreamWriter, session: _Session
    ) -> None:
        while True:
            message = await receive()
            if message["type"] == "websocket.disconnect":
                writer.close()
                return
            decoded = session.decode(message)
            if decoded is None:
                continue
            channel, payload = decoded
            writer.write(frame(channel, payload))
            await writer.drain()

    async def _to_client(self, reader: asyncio.StreamReader, session: _Session) -> None:
        while True:
            got = await read_frame(reader)
            if got is None:
                return
            channel, payload = got
            await session.send(channel, payload)
            if channel == 3:
                return


class _Session:
    """One client's sub-protocol: how frames are encoded and what channel 3 carries."""

    def __init__(self, protocol: str, send: Send) -> None:
        self.protocol = protocol
        self.base64 = "base64" in protocol
        self.status_json = protocol.startswith(("v4.", "v5."))
        self._send = send

    def decode(self, message: Message) -> tuple[int, bytes] | None:
        if self.base64:
            text = message.get("text") or (message.get("bytes") or b"").decode("ascii", "replace")
            if not text or not text[0].isdigit():
                return None
            try:
                return int(text[0]), base64.b64decode(text[1:])
            except ValueError:
                return None
        data = message.get("bytes") or (message.get("text") or "").encode()
        if not data:
            return None
        channel, payload = data[0], data[1:]
        if channel == 255 and not self.protocol.startswith("v5."):
            return None  # only v5 has the close channel
        return channel, payload

    async def send(self, channel: int, payload: bytes) -> None:
        if channel == 3 and not self.status_json:
            # Before v4 the error channel carried text, and nothing on success.
            try:
                status = json.loads(payload)
            except ValueError:
                status = {}
            if status.get("status") == "Success":
                return
            payload = str(status.get("message") or payload.decode(errors="replace")).encode()
        if self.base64:
            text = str(channel) + base64.b64encode(payload).decode()
            await self._send({"type": "websocket.send", "text": text})
        else:
            await self._send({"type": "websocket.send", "bytes": bytes([channel]) + payload})


async def _deny(scope: Scope, send: Send, exc: StatusError) -> None:
    """Refuse the upgrade with the error as an HTTP Status where the server allows it."""
    if "websocket.http.response" in (scope.get("extensions") or {}):
        body = json.dumps(exc.to_status()).encode()
        await send(
            {
                "type": "websocket.http.response.start",
                "status": exc.code,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                ],
            }
        )
        await send({"type": "websocket.http.response.body", "body": body})
        return
    await send({"type": "websocket.close", "code": 1008})


__all__ = ["AgentProxy", "install", "respond", "respond_error"]
