"""HttpClient against the real HTTPS edge over a real Registry on 127.0.0.1: TLS
verification, both credentials, Status errors, streamed watches and 410s, and transport
failures."""

from __future__ import annotations

import asyncio
import pathlib
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest

from kubeling.apiserver import auth
from kubeling.apiserver.app import App
from kubeling.apiserver.server import HttpsServer, bind
from kubeling.client.http import HttpClient
from kubeling.client.informer import Informer
from kubeling.machinery.errors import (
    AlreadyExists,
    Gone,
    NotFound,
    ServiceUnavailable,
    Unauthorized,
)
from kubeling.machinery.resources import CONFIGMAPS
from kubeling.registry.context import ADMIN
from kubeling.registry.registry import Registry
from kubeling.storage.memory import MemoryBackend
from tests.client.fakes import eventually


@dataclass
class Served:
    url: str
    pki: auth.Pki
    kubeconfig: pathlib.Path
    backend: MemoryBackend


@pytest.fixture
async def served(tmp_path: pathlib.Path) -> AsyncIterator[Served]:
    # A small watch window so a few writes push old revisions out (410 Gone).
    backend = MemoryBackend(window_size=4)
    await backend.start()
    registry = await Registry.open(backend=backend)
    await registry.bootstrap()
    sock = bind("127.0.0.1", 0)
    pki = auth.ensure_pki(tmp_path, hosts=["127.0.0.1"])
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
    url = auth.server_url("127.0.0.1", server.port)
    kubeconfig = tmp_path / "kubeconfig"
    auth.write_kubeconfig(kubeconfig, pki, server=url)
    try:
        yield Served(url=url, pki=pki, kubeconfig=kubeconfig, backend=backend)
    finally:
        await server.stop()
        await registry.close()
        await backend.close()


def _cm(name: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": name, "namespace": "default"},
        "data": {"k": "v"},
    }


async def test_http_client_from_kubeconfig_round_trip(served: Served) -> None:
    client = HttpClient.from_kubeconfig(served.kubeconfig)
    try:
        created = await client.create(CONFIGMAPS, _cm("a"))
        assert created["metadata"]["uid"]
        with pytest.raises(AlreadyExists, match='configmaps "a" already exists'):
            await client.create(CONFIGMAPS, _cm("a"))
        got = await client.get(CONFIGMAPS, name="a", namespace="default")
        assert got["data"] == {"k": "v"}
        patched = await client.patch(
            CONFIGMAPS,
            name="a",
            namespace="default",
            patch={"data": {"k": "w"}},
            patch_type="merge",
        )
        assert patched["data"] == {"k": "w"}
        answer = await client.delete(CONFIGMAPS, name="a", namespace="default")
        assert answer["status"] == "Success"
        with pytest.raises(NotFound, match='configmaps "a" not found'):
            await client.get(CONFIGMAPS, name="a", namespace="default")
    finally:
        await client.close()


async def test_http_client_authenticates_with_client_certificate(served: Served) -> None:
    client = HttpClient(
        server=served.url,
        ca_data=served.pki.ca_cert.read_bytes(),
        client_cert_data=served.pki.admin_cert.read_bytes(),
        client_key_data=served.pki.admin_key.read_bytes(),
    )
    try:
        listed = await client.list(CONFIGMAPS, namespace="default")
        assert listed["kind"] == "ConfigMapList"
    finally:
        await client.close()


async def test_http_client_bad_token_is_unauthorized(served: Served) -> None:
    client = HttpClient(server=served.url, ca_data=served.pki.ca_cert.read_bytes(), token="wrong")
    try:
        with pytest.raises(Unauthorized):
            await client.list(CONFIGMAPS)
    finally:
        await client.close()


async def test_http_client_rejects_a_server_not_signed_by_its_ca(
    served: Served, tmp_path: pathlib.Path
) -> None:
    other = auth.ensure_pki(tmp_path / "other", hosts=["127.0.0.1"])
    client = HttpClient(server=served.url, ca_data=other.ca_cert.read_bytes(), token="x")
    try:
        with pytest.raises(ServiceUnavailable, match="CERTIFICATE_VERIFY_FAILED"):
            await client.list(CONFIGMAPS)
    finally:
        await client.close()


async def test_http_client_connection_refused_is_service_unavailable() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    client = HttpClient(server=f"https://127.0.0.1:{port}", token="x")
    try:
        with pytest.raises(ServiceUnavailable):
            await client.get(CONFIGMAPS, name="a", namespace="default")
    finally:
        await client.close()


async def test_http_client_watch_streams_and_raises_gone(served: Served) -> None:
    client = HttpClient.from_kubeconfig(served.kubeconfig)
    try:
        first = await client.create(CONFIGMAPS, _cm("w"))
        rv = first["metadata"]["resourceVersion"]
        seen: list[tuple[str, str]] = []

        async def consume() -> None:
            async for event in client.watch(CONFIGMAPS, namespace="default", resource_version=rv):
                if event.type != "BOOKMARK":
                    seen.append((event.type, event.object["data"].get("k", "")))
                if len(seen) == 2:
                    return

        task = asyncio.create_task(consume())
        for value in ("1", "2"):
            await client.patch(
                CONFIGMAPS,
                name="w",
                namespace="default",
                patch={"data": {"k": value}},
                patch_type="merge",
            )
        async with asyncio.timeout(10):
            await task
        assert seen == [("MODIFIED", "1"), ("MODIFIED", "2")]

        for i in range(6):
            await client.patch(
                CONFIGMAPS,
                name="w",
                namespace="default",
                patch={"data": {"n": str(i)}},
                patch_type="merge",
            )
        with pytest.raises(Gone, match="too old resource version"):
            async with asyncio.timeout(10):
                async for _ in client.watch(CONFIGMAPS, namespace="default", resource_version=rv):
                    pass
    finally:
        await client.close()


async def test_http_client_watch_timeout_seconds_ends_cleanly(served: Served) -> None:
    client = HttpClient.from_kubeconfig(served.kubeconfig)
    try:
        listed = await client.list(CONFIGMAPS, namespace="default")
        events = []
        async with asyncio.timeout(15):
            async for event in client.watch(
                CONFIGMAPS,
                namespace="default",
                resource_version=listed["metadata"]["resourceVersion"],
                timeout_seconds=1,
            ):
                events.append(event.type)
        assert set(events) <= {"BOOKMARK"}
    finally:
        await client.close()


async def test_informer_over_https_follows_changes(served: Served) -> None:
    client = HttpClient.from_kubeconfig(served.kubeconfig)
    informer = Informer(client, CONFIGMAPS, namespace="default")
    try:
        await client.create(CONFIGMAPS, _cm("i1"))
        informer.start()
        async with asyncio.timeout(10):
            await informer.wait_synced()
        assert informer.keys() == ["default/i1"]
        await client.create(CONFIGMAPS, _cm("i2"))
        await eventually(lambda: informer.keys() == ["default/i1", "default/i2"])
    finally:
        await informer.stop()
        await client.close()


async def test_local_client_watch_from_an_expired_version_raises_gone() -> None:
    from kubeling.client.local import LocalClient

    backend = MemoryBackend(window_size=4)
    await backend.start()
    registry = await Registry.open(backend=backend)
    await registry.bootstrap()
    client = LocalClient(registry)
    try:
        first = await client.create(CONFIGMAPS, _cm("w"))
        for i in range(6):
            await client.patch(
                CONFIGMAPS,
                name="w",
                namespace="default",
                patch={"data": {"n": str(i)}},
                patch_type="merge",
            )
        with pytest.raises(Gone, match="too old resource version"):
            async with asyncio.timeout(10):
                async for _ in client.watch(
                    CONFIGMAPS,
                    namespace="default",
                    resource_version=first["metadata"]["resourceVersion"],
                ):
                    pass
    finally:
        await registry.close()
        await backend.close()


@pytest.mark.parametrize(
    ("path", "accept", "message"),
    [
        pytest.param(
            "/api/v1/namespaces/default/configmaps/a",
            "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1",
            "you requested PartialObjectMetadataList, but the requested object is not a list "
            "(*core.ConfigMap)",
            id="list-form-for-object",
        ),
        pytest.param(
            "/api/v1/namespaces/default/configmaps",
            "application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1",
            "you requested PartialObjectMetadata, but the requested object is a list "
            "(*core.ConfigMapList)",
            id="object-form-for-list",
        ),
        pytest.param(
            "/api/v1/namespaces/default/configmaps",
            "application/json;as=Foo;g=meta.k8s.io;v=v1",
            "only the following media types are accepted: application/json, application/yaml, "
            "application/vnd.kubernetes.protobuf",
            id="unknown-form",
        ),
    ],
)
async def test_a_form_that_cannot_answer_the_request_is_406(
    served: Served, path: str, accept: str, message: str
) -> None:
    client = HttpClient.from_kubeconfig(served.kubeconfig)
    try:
        await client.create(CONFIGMAPS, _cm("a"))
        response = await client._http.get(path, headers={"Accept": accept})
        assert response.status_code == 406
        status = response.json()
        assert (status["reason"], status["message"]) == ("NotAcceptable", message)
        plain = await client._http.get(path, headers={"Accept": "application/json"})
        assert plain.status_code == 200
    finally:
        await client.close()
