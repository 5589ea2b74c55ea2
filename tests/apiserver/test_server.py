"""The HTTPS server itself: TLS with the generated PKI, both credentials, watch streaming."""

from __future__ import annotations

import asyncio
import pathlib
import ssl
from collections.abc import AsyncIterator
from typing import Any

import httpx
import orjson
import pytest

from kubeling.apiserver import auth
from kubeling.apiserver.app import App
from kubeling.apiserver.server import HttpsServer, bind
from kubeling.machinery.errors import Gone
from kubeling.registry.context import ADMIN, RequestContext


class _WatchStore:
    def __init__(self, feed: asyncio.Queue[Any]) -> None:
        self.feed = feed
        self.closed = asyncio.Event()

    async def watch_events(self, resource_version: str) -> AsyncIterator[tuple[str, Any]]:
        if resource_version == "1":
            raise Gone("too old resource version: 1 (5)")
        try:
            while True:
                item = await self.feed.get()
                yield item
        finally:
            self.closed.set()

    def watch(self, *, ctx: RequestContext, resource_version: str, **kw: Any) -> Any:
        return self.watch_events(resource_version)


class _Registry:
    def __init__(self) -> None:
        self.feed: asyncio.Queue[Any] = asyncio.Queue()
        self.last: _WatchStore | None = None

    def store(self, info: Any) -> _WatchStore:
        self.last = _WatchStore(self.feed)
        return self.last


@pytest.fixture
async def served(tmp_path: pathlib.Path) -> AsyncIterator[tuple[str, auth.Pki, _Registry]]:
    sock = bind("127.0.0.1", 0)
    pki = auth.ensure_pki(tmp_path, hosts=["127.0.0.1"])
    registry = _Registry()
    app = App(
        registry=registry,
        authenticators=[
            auth.TokenAuthenticator({pki.read_token(): ADMIN}),
            auth.cert_authenticator,
        ],
        server_address="127.0.0.1",
    )
    server = HttpsServer(app, sock, pki=pki)
    await server.start()
    try:
        yield auth.server_url("127.0.0.1", server.port), pki, registry
    finally:
        await server.stop()


def _tls(pki: auth.Pki, *, client_cert: bool = False) -> ssl.SSLContext:
    ctx = ssl.create_default_context(cafile=str(pki.ca_cert))
    if client_cert:
        ctx.load_cert_chain(str(pki.admin_cert), str(pki.admin_key))
    return ctx


def test_pki_is_reused_and_reissued_only_for_new_hosts(tmp_path: pathlib.Path) -> None:
    first = auth.ensure_pki(tmp_path, hosts=["127.0.0.1"])
    ca, cert, token = (
        first.ca_cert.read_bytes(),
        first.serving_cert.read_bytes(),
        first.read_token(),
    )
    assert oct(first.admin_token.stat().st_mode & 0o777) == "0o600"
    assert oct(first.ca_key.stat().st_mode & 0o777) == "0o600"
    again = auth.ensure_pki(tmp_path, hosts=["127.0.0.1"])
    assert again.serving_cert.read_bytes() == cert
    other = auth.ensure_pki(tmp_path, hosts=["127.0.0.2"])
    assert other.serving_cert.read_bytes() != cert
    assert other.ca_cert.read_bytes() == ca
    assert other.read_token() == token


async def test_tls_verifies_by_ip_and_token_authenticates(
    served: tuple[str, auth.Pki, _Registry],
) -> None:
    url, pki, _ = served
    async with httpx.AsyncClient(verify=_tls(pki)) as c:
        r = await c.get(f"{url}/api/v1", headers={"Authorization": f"Bearer {pki.read_token()}"})
        assert r.status_code == 200
        r = await c.get(f"{url}/api/v1")
        assert r.status_code == 401


async def test_admin_client_certificate_authenticates(
    served: tuple[str, auth.Pki, _Registry],
) -> None:
    url, pki, _ = served
    async with httpx.AsyncClient(verify=_tls(pki, client_cert=True)) as c:
        r = await c.get(f"{url}/apis")
        assert r.status_code == 200
        assert r.json()["kind"] == "APIGroupList"


async def test_watch_streams_one_json_line_per_event_and_ends_on_disconnect(
    served: tuple[str, auth.Pki, _Registry],
) -> None:
    url, pki, registry = served
    headers = {"Authorization": f"Bearer {pki.read_token()}"}
    cm = {"kind": "ConfigMap", "apiVersion": "v1", "metadata": {"name": "a"}}
    await registry.feed.put(("ADDED", cm))
    async with (
        httpx.AsyncClient(verify=_tls(pki)) as c,
        c.stream(
            "GET", f"{url}/api/v1/namespaces/default/configmaps?watch=true", headers=headers
        ) as r,
    ):
        assert r.status_code == 200
        lines = r.aiter_lines()
        assert orjson.loads(await anext(lines)) == {"type": "ADDED", "object": cm}
        await registry.feed.put(("DELETED", cm))
        assert orjson.loads(await anext(lines))["type"] == "DELETED"
    assert registry.last is not None
    await asyncio.wait_for(registry.last.closed.wait(), 10)


async def test_watch_from_too_old_version_sends_error_event_with_410(
    served: tuple[str, auth.Pki, _Registry],
) -> None:
    url, pki, _ = served
    headers = {"Authorization": f"Bearer {pki.read_token()}"}
    async with httpx.AsyncClient(verify=_tls(pki)) as c:
        r = await c.get(
            f"{url}/api/v1/namespaces/default/configmaps?watch=1&resourceVersion=1",
            headers=headers,
        )
    assert r.status_code == 200
    events = [orjson.loads(line) for line in r.text.splitlines()]
    assert len(events) == 1
    assert events[0]["type"] == "ERROR"
    assert events[0]["object"]["code"] == 410
    assert events[0]["object"]["reason"] == "Expired"


async def test_watch_ends_after_timeout_seconds(served: tuple[str, auth.Pki, _Registry]) -> None:
    url, pki, _ = served
    headers = {"Authorization": f"Bearer {pki.read_token()}"}
    async with httpx.AsyncClient(verify=_tls(pki), timeout=30) as c:
        r = await c.get(
            f"{url}/api/v1/namespaces/default/configmaps?watch=true&timeoutSeconds=1",
            headers=headers,
        )
    assert r.status_code == 200
    assert r.text == ""


async def test_websocket_upgrade_reaches_registered_handler_with_user(
    tmp_path: pathlib.Path,
) -> None:
    import websockets

    sock = bind("127.0.0.1", 0)
    pki = auth.ensure_pki(tmp_path, hosts=["127.0.0.1"])
    app = App(
        registry=_Registry(),
        authenticators=[auth.TokenAuthenticator({pki.read_token(): ADMIN})],
        server_address="127.0.0.1",
    )
    seen: list[tuple[str, str, str, str]] = []

    async def exec_handler(scope: Any, receive: Any, send: Any, target: Any, user: Any) -> None:
        seen.append((target.namespace, target.name, target.subresource, user.name))
        assert (await receive())["type"] == "websocket.connect"
        await send({"type": "websocket.accept", "subprotocol": "v5.channel.k8s.io"})
        await send({"type": "websocket.send", "bytes": b"\x01hi\n"})
        await send({"type": "websocket.close", "code": 1000})

    app.websocket_handlers["pods/exec"] = exec_handler
    server = HttpsServer(app, sock, pki=pki)
    await server.start()
    try:
        url = f"wss://127.0.0.1:{server.port}/api/v1/namespaces/ns1/pods/web-0/exec?command=ls"
        async with websockets.connect(
            url,
            ssl=_tls(pki),
            subprotocols=["v5.channel.k8s.io"],  # type: ignore[list-item]
            additional_headers={"Authorization": f"Bearer {pki.read_token()}"},
        ) as ws:
            assert ws.subprotocol == "v5.channel.k8s.io"
            assert await ws.recv() == b"\x01hi\n"
        assert seen == [("ns1", "web-0", "exec", ADMIN.name)]
        with pytest.raises(websockets.InvalidStatus) as info:
            async with websockets.connect(url, ssl=_tls(pki)):
                pass
        assert info.value.response.status_code == 403
    finally:
        await server.stop()
