"""HttpClient request shapes and answer handling, against an in-memory httpx transport.

These pin what goes on the wire (paths, query parameters, content types, DeleteOptions) and
how answers come back (Status to the matching StatusError, retries on Retry-After, transport
failures as ServiceUnavailable, watch lines and ERROR events). The real HTTPS server is
exercised in ``test_conformance.py``.
"""

from __future__ import annotations

import base64
import pathlib
from collections.abc import Callable

import httpx
import orjson
import pytest

from kubeling.client.http import HttpClient, KubeconfigError
from kubeling.machinery.errors import (
    AlreadyExists,
    Conflict,
    Gone,
    InternalError,
    Invalid,
    NotFound,
    ServiceUnavailable,
    Timeout,
    TooManyRequests,
)
from kubeling.machinery.resources import CONFIGMAPS, NODES, PODS, STATEFULSETS

pytestmark = pytest.mark.looptime

Handler = Callable[[httpx.Request], httpx.Response]


def _client(handler: Handler, **kwargs: object) -> HttpClient:
    return HttpClient(
        server="http://127.0.0.1:1",
        token="s3cret",
        transport=httpx.MockTransport(handler),
        **kwargs,  # type: ignore[arg-type]
    )


def _status(code: int, reason: str, message: str, **details: object) -> httpx.Response:
    body = {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason,
        "code": code,
    }
    if details:
        body["details"] = details
    return httpx.Response(code, json=body)


async def test_http_get_builds_path_and_sends_token() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"kind": "StatefulSet", "metadata": {"name": "web"}})

    client = _client(handler)
    obj = await client.get(STATEFULSETS, name="web", namespace="prod", subresource="scale")
    await client.get(NODES, name="node-1", namespace="ignored")
    await client.close()
    assert obj["metadata"]["name"] == "web"
    assert seen[0].url.path == "/apis/apps/v1/namespaces/prod/statefulsets/web/scale"
    assert seen[0].headers["authorization"] == "Bearer s3cret"
    assert seen[0].headers["accept"] == "application/json"
    assert seen[1].url.path == "/api/v1/nodes/node-1"


async def test_http_list_sends_selectors_and_paging() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"kind": "PodList", "items": [], "metadata": {}})

    client = _client(handler)
    await client.list(
        PODS,
        namespace="default",
        label_selector="app=web,tier!=db",
        field_selector="spec.nodeName=n1",
        limit=2,
        continue_="abc",
        resource_version="0",
    )
    await client.list(PODS)
    await client.close()
    assert seen[0].url.path == "/api/v1/namespaces/default/pods"
    assert dict(seen[0].url.params) == {
        "labelSelector": "app=web,tier!=db",
        "fieldSelector": "spec.nodeName=n1",
        "limit": "2",
        "continue": "abc",
        "resourceVersion": "0",
    }
    assert seen[1].url.path == "/api/v1/pods"
    assert not seen[1].url.params


async def test_http_writes_send_the_right_verbs_and_bodies() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(201 if request.method == "POST" else 200, json={"kind": "X"})

    client = _client(handler)
    cm = {"metadata": {"name": "a", "namespace": "ns1"}, "data": {"k": "v"}}
    await client.create(CONFIGMAPS, cm, field_manager="ctl", dry_run=True)
    await client.create(
        PODS,
        {"target": {"kind": "Node", "name": "n1"}},
        namespace="ns1",
        name="web-0",
        subresource="binding",
    )
    await client.update(CONFIGMAPS, cm, field_manager="ctl")
    await client.update(PODS, {"metadata": {"name": "p", "namespace": "ns1"}}, subresource="status")
    await client.patch(
        CONFIGMAPS,
        name="a",
        namespace="ns1",
        patch={"data": {"k": None}},
        patch_type="merge",
    )
    await client.patch(
        CONFIGMAPS,
        name="a",
        namespace="ns1",
        patch={"apiVersion": "v1", "kind": "ConfigMap"},
        patch_type="apply",
        field_manager="me",
        force=True,
    )
    await client.patch(
        CONFIGMAPS,
        name="a",
        namespace="ns1",
        patch=[{"op": "remove", "path": "/data/k"}],
        patch_type="json",
    )
    await client.delete(
        PODS,
        name="web-0",
        namespace="ns1",
        grace_period_seconds=0,
        propagation_policy="Foreground",
        preconditions={"uid": "u1"},
        dry_run=True,
    )
    await client.close()

    create, binding, put, put_status, merge, apply, jsonpatch, delete = seen
    assert (create.method, create.url.path) == ("POST", "/api/v1/namespaces/ns1/configmaps")
    assert dict(create.url.params) == {"dryRun": "All", "fieldManager": "ctl"}
    assert create.headers["content-type"] == "application/json"
    assert orjson.loads(create.content) == cm
    assert binding.url.path == "/api/v1/namespaces/ns1/pods/web-0/binding"
    assert (put.method, put.url.path) == ("PUT", "/api/v1/namespaces/ns1/configmaps/a")
    assert put_status.url.path == "/api/v1/namespaces/ns1/pods/p/status"
    assert merge.method == "PATCH"
    assert merge.headers["content-type"] == "application/merge-patch+json"
    assert orjson.loads(merge.content) == {"data": {"k": None}}
    assert apply.headers["content-type"] == "application/apply-patch+yaml"
    assert dict(apply.url.params) == {"fieldManager": "me", "force": "true"}
    assert jsonpatch.headers["content-type"] == "application/json-patch+json"
    assert delete.method == "DELETE"
    assert orjson.loads(delete.content) == {
        "kind": "DeleteOptions",
        "apiVersion": "v1",
        "gracePeriodSeconds": 0,
        "propagationPolicy": "Foreground",
        "preconditions": {"uid": "u1"},
        "dryRun": ["All"],
    }


@pytest.mark.parametrize(
    ("response", "error", "message"),
    [
        pytest.param(
            _status(404, "NotFound", 'configmaps "nope" not found', name="nope", kind="configmaps"),
            NotFound,
            'configmaps "nope" not found',
            id="not-found",
        ),
        pytest.param(
            _status(409, "AlreadyExists", 'configmaps "a" already exists'),
            AlreadyExists,
            'configmaps "a" already exists',
            id="already-exists",
        ),
        pytest.param(
            _status(409, "Conflict", 'Operation cannot be fulfilled on configmaps "a": stale'),
            Conflict,
            'Operation cannot be fulfilled on configmaps "a": stale',
            id="conflict",
        ),
        pytest.param(
            httpx.Response(404, text="404 page not found"),
            NotFound,
            "the server could not find the requested resource",
            id="404-without-status",
        ),
        pytest.param(
            httpx.Response(500, text="oops"),
            InternalError,
            "oops",
            id="500-plain-text",
        ),
        pytest.param(
            httpx.Response(503, text=""),
            ServiceUnavailable,
            "the server answered HTTP 503",
            id="503-without-retry-after",
        ),
    ],
)
async def test_http_error_answers_become_status_errors(
    response: httpx.Response, error: type[Exception], message: str
) -> None:
    client = _client(lambda _: response)
    with pytest.raises(error) as info:
        await client.get(CONFIGMAPS, name="a", namespace="default")
    await client.close()
    assert type(info.value) is error
    assert str(info.value) == message


async def test_http_invalid_keeps_causes() -> None:
    response = _status(
        422,
        "Invalid",
        'Pod "bad" is invalid: spec.containers: Required value',
        name="bad",
        kind="Pod",
        causes=[
            {
                "reason": "FieldValueRequired",
                "message": "Required value",
                "field": "spec.containers",
            }
        ],
    )
    client = _client(lambda _: response)
    with pytest.raises(Invalid) as info:
        await client.create(PODS, {"metadata": {"name": "bad"}}, namespace="default")
    await client.close()
    assert info.value.kind == "Pod"
    assert info.value.name == "bad"
    assert [(c.reason, c.field) for c in info.value.causes] == [
        ("FieldValueRequired", "spec.containers")
    ]


async def test_http_retries_retry_after_answers() -> None:
    answers = [
        httpx.Response(429, headers={"Retry-After": "2"}, json={}),
        httpx.Response(503, headers={"Retry-After": "1"}, text="busy"),
        httpx.Response(200, json={"kind": "ConfigMap", "metadata": {"name": "a"}}),
    ]
    calls = 0

    def handler(_: httpx.Request) -> httpx.Response:
        nonlocal calls
        calls += 1
        return answers.pop(0)

    client = _client(handler)
    obj = await client.get(CONFIGMAPS, name="a", namespace="default")
    await client.close()
    assert obj["metadata"]["name"] == "a"
    assert calls == 3


async def test_http_gives_up_after_max_retries() -> None:
    calls = 0

    def handler(_: httpx.Request) -> httpx.Response:
        nonlocal calls
        calls += 1
        response = _status(429, "TooManyRequests", "slow down")
        response.headers["Retry-After"] = "1"
        return response

    client = _client(handler, max_retries=2)
    with pytest.raises(TooManyRequests, match="slow down"):
        await client.get(CONFIGMAPS, name="a", namespace="default")
    await client.close()
    assert calls == 3


async def test_http_connection_errors_become_service_unavailable() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("Connection refused", request=request)

    client = _client(handler)
    with pytest.raises(ServiceUnavailable) as info:
        await client.list(PODS)
    assert "Connection refused" in str(info.value)
    with pytest.raises(ServiceUnavailable):
        async for _ in client.watch(PODS):
            pass
    await client.close()


async def test_http_timeouts_become_timeout() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("timed out", request=request)

    client = _client(handler)
    with pytest.raises(Timeout):
        await client.get(PODS, name="p", namespace="default")
    await client.close()


async def test_http_watch_parses_lines_and_raises_gone() -> None:
    seen: list[httpx.Request] = []
    lines = [
        {
            "type": "ADDED",
            "object": {"kind": "Pod", "metadata": {"name": "a", "resourceVersion": "5"}},
        },
        {"type": "BOOKMARK", "object": {"kind": "Pod", "metadata": {"resourceVersion": "6"}}},
        {
            "type": "ERROR",
            "object": {
                "kind": "Status",
                "apiVersion": "v1",
                "metadata": {},
                "status": "Failure",
                "message": "too old resource version: 1 (5)",
                "reason": "Expired",
                "code": 410,
            },
        },
    ]

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        body = b"".join(orjson.dumps(line) + b"\n" for line in lines)
        # Split mid-line so the client must reassemble lines across chunks.
        return httpx.Response(200, content=_chunks(body, 7))

    client = _client(handler)
    events = []
    with pytest.raises(Gone) as info:
        async for event in client.watch(
            PODS, namespace="default", resource_version="1", timeout_seconds=300
        ):
            events.append((event.type, event.object["metadata"]["resourceVersion"]))
    await client.close()
    assert events == [("ADDED", "5"), ("BOOKMARK", "6")]
    assert str(info.value) == "too old resource version: 1 (5)"
    assert dict(seen[0].url.params) == {
        "watch": "true",
        "resourceVersion": "1",
        "allowWatchBookmarks": "true",
        "timeoutSeconds": "300",
    }


async def test_http_watch_error_status_on_open() -> None:
    client = _client(lambda _: _status(410, "Expired", "too old resource version: 1 (9)"))
    with pytest.raises(Gone):
        async for _ in client.watch(PODS, resource_version="1"):
            pass
    await client.close()


async def _chunks(data: bytes, size: int):  # type: ignore[no-untyped-def]
    for i in range(0, len(data), size):
        yield data[i : i + size]


def test_kubeconfig_reads_token_ca_and_namespace(tmp_path: pathlib.Path) -> None:
    ca = _self_signed_ca_pem()
    (tmp_path / "token").write_text("tok-from-file\n")
    (tmp_path / "config").write_text(
        f"""
apiVersion: v1
kind: Config
clusters:
- name: c1
  cluster:
    server: https://127.0.0.1:6443
    certificate-authority-data: {base64.b64encode(ca).decode()}
users:
- name: u1
  user:
    tokenFile: token
contexts:
- name: ctx1
  context: {{cluster: c1, user: u1, namespace: team}}
current-context: ctx1
"""
    )
    client = HttpClient.from_kubeconfig(tmp_path / "config")
    assert client.server == "https://127.0.0.1:6443"
    assert client.namespace == "team"
    assert client._http.headers["authorization"] == "Bearer tok-from-file"


def test_kubeconfig_unknown_context_is_an_error(tmp_path: pathlib.Path) -> None:
    (tmp_path / "config").write_text("apiVersion: v1\nkind: Config\ncurrent-context: nope\n")
    with pytest.raises(KubeconfigError, match="no context named 'nope'"):
        HttpClient.from_kubeconfig(tmp_path / "config")


def _self_signed_ca_pem() -> bytes:
    import datetime

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "test-ca")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(now)
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    return cert.public_bytes(serialization.Encoding.PEM)


async def test_http_logs_each_server_warning_once(caplog: pytest.LogCaptureFixture) -> None:
    def handler(_: httpx.Request) -> httpx.Response:
        return httpx.Response(
            200,
            json={"kind": "ConfigMap"},
            headers=[
                ("Warning", '299 - "unknown field \\"bogus\\""'),
                ("Warning", '199 - "ignored code"'),
            ],
        )

    client = _client(handler)
    with caplog.at_level("WARNING", logger="kubeling.client.http"):
        await client.get(CONFIGMAPS, name="a", namespace="default")
        await client.get(CONFIGMAPS, name="a", namespace="default")
    await client.close()
    assert [r.getMessage() for r in caplog.records] == ['API server warning: unknown field "bogus"']
