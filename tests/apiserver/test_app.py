"""The API edge without a registry behind it: routing, auth, discovery, errors."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from kubeling.apiserver.app import App
from kubeling.apiserver.auth import TokenAuthenticator
from kubeling.machinery import resources
from kubeling.machinery.errors import NotFound
from kubeling.registry.context import ADMIN, RequestContext

TOKEN = "secret-token"


class _Store:
    def __init__(self, info: Any, calls: list[tuple[Any, ...]]) -> None:
        self.info = info
        self.calls = calls

    async def get(
        self, *, ctx: RequestContext, name: str, namespace: str, subresource: str = ""
    ) -> Any:
        self.calls.append(("get", self.info.plural, namespace, name, subresource, ctx.user.name))
        if name == "missing":
            raise NotFound.for_object(resource=self.info.plural, group=self.info.group, name=name)
        if name == "boom":
            raise RuntimeError("unexpected")
        return {
            "kind": self.info.kind,
            "apiVersion": self.info.api_version,
            "metadata": {"name": name},
        }

    async def create(self, obj: Any, *, namespace: str, ctx: RequestContext, **kw: Any) -> Any:
        self.calls.append(
            ("create", self.info.plural, namespace, obj, ctx.field_validation, ctx.dry_run)
        )
        ctx.warn('unknown field "x"')
        return obj


class _Registry:
    def __init__(self) -> None:
        self.calls: list[tuple[Any, ...]] = []

    def store(self, info: Any) -> _Store:
        return _Store(info, self.calls)


@pytest.fixture
def registry() -> _Registry:
    return _Registry()


@pytest.fixture
async def client(registry: _Registry) -> Any:
    app = App(
        registry=registry,
        authenticators=[TokenAuthenticator({TOKEN: ADMIN})],
        server_address="127.0.0.1:6443",
    )
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(
        transport=transport,
        base_url="https://test",
        headers={"Authorization": f"Bearer {TOKEN}"},
    ) as c:
        yield c


async def test_version_answers_minor_32_without_credentials(client: httpx.AsyncClient) -> None:
    r = await client.get("/version", headers={"Authorization": ""})
    assert r.status_code == 200
    assert r.json()["major"] == "1"
    assert r.json()["minor"] == "32"
    assert r.json()["gitVersion"].startswith("v1.32.0")


@pytest.mark.parametrize("path", ["/healthz", "/livez", "/readyz"])
async def test_health_endpoints_answer_ok(client: httpx.AsyncClient, path: str) -> None:
    r = await client.get(path, headers={"Authorization": ""})
    assert (r.status_code, r.text) == (200, "ok")


@pytest.mark.parametrize(
    "auth",
    [pytest.param("", id="none"), pytest.param("Bearer wrong", id="wrong-token")],
)
async def test_request_without_valid_credentials_is_401_status(
    client: httpx.AsyncClient, auth: str
) -> None:
    r = await client.get("/api/v1/namespaces/default/configmaps/x", headers={"Authorization": auth})
    assert r.status_code == 401
    assert r.json()["kind"] == "Status"
    assert r.json()["reason"] == "Unauthorized"


async def test_core_discovery_lists_subresources_and_short_names(client: httpx.AsyncClient) -> None:
    r = await client.get("/api/v1")
    body = r.json()
    assert body["kind"] == "APIResourceList"
    by_name = {e["name"]: e for e in body["resources"]}
    assert by_name["persistentvolumeclaims"]["shortNames"] == ["pvc"]
    assert by_name["pods/status"] == {
        "name": "pods/status",
        "singularName": "",
        "namespaced": True,
        "kind": "Pod",
        "verbs": ["get", "patch", "update"],
    }
    assert by_name["namespaces"]["namespaced"] is False


async def test_apps_discovery_scale_names_autoscaling_group(client: httpx.AsyncClient) -> None:
    body = (await client.get("/apis/apps/v1")).json()
    scale = next(e for e in body["resources"] if e["name"] == "statefulsets/scale")
    assert (scale["group"], scale["version"], scale["kind"]) == ("autoscaling", "v1", "Scale")


async def test_group_list_names_every_served_group(client: httpx.AsyncClient) -> None:
    body = (await client.get("/apis")).json()
    names = {g["name"] for g in body["groups"]}
    assert {r.group for r in resources.ALL if r.group} | {
        "authorization.k8s.io",
        "authentication.k8s.io",
    } == names
    api = (await client.get("/api")).json()
    assert api["versions"] == ["v1"]


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        pytest.param(
            "/api/v1/namespaces/default", ("namespaces", "", "default", ""), id="namespace"
        ),
        pytest.param(
            "/api/v1/namespaces/kube-system/status",
            ("namespaces", "", "kube-system", "status"),
            id="namespace-status",
        ),
        pytest.param(
            "/api/v1/namespaces/ns1/pods/web-0/status",
            ("pods", "ns1", "web-0", "status"),
            id="namespaced-subresource",
        ),
        pytest.param(
            "/apis/apps/v1/namespaces/ns1/statefulsets/web",
            ("statefulsets", "ns1", "web", ""),
            id="group-resource",
        ),
        pytest.param(
            "/api/v1/persistentvolumes/pv1", ("persistentvolumes", "", "pv1", ""), id="cluster"
        ),
    ],
)
async def test_paths_route_to_resource_namespace_name_subresource(
    client: httpx.AsyncClient, registry: _Registry, path: str, expected: tuple[str, ...]
) -> None:
    r = await client.get(path)
    assert r.status_code == 200, r.text
    assert registry.calls[-1][1:5] == expected


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/nopes",
        "/apis/apps/v1/namespaces/x",
        "/api/v1/namespaces/default/pods/web-0/nosuchsub",
        "/api/v1/pods/web-0",
        "/apis/nogroup/v1/things",
        "/openapi/v1",
        "/api/v1/namespaces//configmaps",
    ],
)
async def test_unknown_paths_are_404_status(client: httpx.AsyncClient, path: str) -> None:
    r = await client.get(path)
    assert r.status_code == 404
    assert r.json()["reason"] == "NotFound"


async def test_not_found_from_registry_keeps_its_message(client: httpx.AsyncClient) -> None:
    r = await client.get("/api/v1/namespaces/default/configmaps/missing")
    assert r.status_code == 404
    assert r.json()["message"] == 'configmaps "missing" not found'
    assert r.json()["details"] == {"name": "missing", "kind": "configmaps"}


async def test_unexpected_exception_is_500_internal_error(
    client: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    r = await client.get("/api/v1/namespaces/default/configmaps/boom")
    assert r.status_code == 500
    assert r.json()["reason"] == "InternalError"
    assert any("Internal error serving GET" in rec.message for rec in caplog.records)


async def test_create_passes_query_options_and_returns_warnings(
    client: httpx.AsyncClient, registry: _Registry
) -> None:
    r = await client.post(
        "/api/v1/namespaces/default/configmaps?fieldValidation=Strict&dryRun=All",
        json={"metadata": {"name": "a"}},
    )
    assert r.status_code == 201
    assert registry.calls[-1] == (
        "create",
        "configmaps",
        "default",
        {"metadata": {"name": "a"}},
        "Strict",
        True,
    )
    assert r.headers["warning"] == '299 - "unknown field \\"x\\""'


async def test_field_validation_defaults_to_warn_and_rejects_unknown_values(
    client: httpx.AsyncClient, registry: _Registry
) -> None:
    r = await client.post("/api/v1/namespaces/default/configmaps", json={"metadata": {}})
    assert r.status_code == 201
    assert registry.calls[-1][4] == "Warn"
    r = await client.post(
        "/api/v1/namespaces/default/configmaps?fieldValidation=Bogus", json={"metadata": {}}
    )
    assert r.status_code == 422
    assert r.json()["message"] == (
        'CreateOptions.meta.k8s.io "" is invalid: fieldValidation: Unsupported value: "Bogus": '
        'supported values: "", "Ignore", "Strict", "Warn"'
    )


async def test_unknown_dry_run_value_is_invalid(client: httpx.AsyncClient) -> None:
    r = await client.post("/api/v1/namespaces/default/configmaps?dryRun=Some", json={})
    assert r.status_code == 422
    assert r.json()["message"] == (
        'CreateOptions.meta.k8s.io "" is invalid: dryRun: Unsupported value: []string{"Some"}: '
        'supported values: "All"'
    )


async def test_malformed_json_body_is_400(client: httpx.AsyncClient) -> None:
    r = await client.post(
        "/api/v1/namespaces/default/configmaps",
        content=b"{not json",
        headers={"Content-Type": "application/json"},
    )
    assert r.status_code == 400
    assert r.json()["reason"] == "BadRequest"


async def test_unknown_body_media_type_is_415(client: httpx.AsyncClient) -> None:
    r = await client.post(
        "/api/v1/namespaces/default/configmaps",
        content=b"x",
        headers={"Content-Type": "text/csv"},
    )
    assert r.status_code == 415
    assert r.json()["reason"] == "UnsupportedMediaType"


async def test_openapi_v3_root_links_documents_by_hash(client: httpx.AsyncClient) -> None:
    root = await client.get("/openapi/v3")
    assert root.status_code == 200
    url = root.json()["paths"]["api/v1"]["serverRelativeURL"]
    assert url.startswith("/openapi/v3/api/v1?hash=")
    doc = await client.get(url)
    assert doc.status_code == 200
    assert doc.headers["cache-control"] == "public, immutable"
    assert "io.k8s.api.core.v1.PersistentVolumeClaim" in doc.json()["components"]["schemas"]
    again = await client.get(url, headers={"If-None-Match": doc.headers["etag"]})
    assert again.status_code == 304


async def test_openapi_v3_stale_hash_redirects_to_current(client: httpx.AsyncClient) -> None:
    r = await client.get("/openapi/v3/apis/apps/v1?hash=STALE")
    assert r.status_code == 301
    assert r.headers["location"].startswith("/openapi/v3/apis/apps/v1?hash=")
    assert r.headers["location"] != "/openapi/v3/apis/apps/v1?hash=STALE"


async def test_openapi_v3_unknown_group_version_is_404(client: httpx.AsyncClient) -> None:
    r = await client.get("/openapi/v3/apis/nope/v1")
    assert r.status_code == 404


AGGREGATED_ACCEPT = (
    "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,"
    "application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList,"
    "application/json"
)


async def test_aggregated_discovery_only_when_asked(client: httpx.AsyncClient) -> None:
    r = await client.get("/apis", headers={"Accept": AGGREGATED_ACCEPT})
    assert r.headers["content-type"] == (
        "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList"
    )
    apps = next(i for i in r.json()["items"] if i["metadata"]["name"] == "apps")
    sts = next(x for x in apps["versions"][0]["resources"] if x["resource"] == "statefulsets")
    assert sts["scope"] == "Namespaced"
    assert sts["shortNames"] == ["sts"]
    scale = next(s for s in sts["subresources"] if s["subresource"] == "scale")
    assert scale["responseKind"] == {"group": "autoscaling", "version": "v1", "kind": "Scale"}
    core = (await client.get("/api", headers={"Accept": AGGREGATED_ACCEPT})).json()
    assert [v["version"] for v in core["items"][0]["versions"]] == ["v1"]
    plain = await client.get("/apis", headers={"Accept": "application/json"})
    assert plain.headers["content-type"] == "application/json"
    assert plain.json()["kind"] == "APIGroupList"


async def test_self_subject_access_review_allows_and_echoes_spec(
    client: httpx.AsyncClient,
) -> None:
    spec = {"resourceAttributes": {"namespace": "default", "verb": "create", "resource": "pods"}}
    r = await client.post(
        "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews",
        json={
            "apiVersion": "authorization.k8s.io/v1",
            "kind": "SelfSubjectAccessReview",
            "spec": spec,
        },
    )
    assert r.status_code == 201
    assert r.json()["spec"] == spec
    assert r.json()["status"] == {"allowed": True}


async def test_self_subject_access_review_without_attributes_is_invalid(
    client: httpx.AsyncClient,
) -> None:
    r = await client.post(
        "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews", json={"spec": {}}
    )
    assert r.status_code == 422
    assert r.json()["details"]["causes"][0]["field"] == "spec.resourceAttributes"


async def test_self_subject_review_names_the_caller(client: httpx.AsyncClient) -> None:
    r = await client.post("/apis/authentication.k8s.io/v1/selfsubjectreviews", content=b"")
    assert r.status_code == 201
    assert r.json()["status"]["userInfo"] == {
        "username": ADMIN.name,
        "groups": list(ADMIN.groups),
    }


@pytest.mark.parametrize(
    ("method", "path"),
    [
        pytest.param("DELETE", "/api/v1/namespaces", id="no-deletecollection"),
        pytest.param("GET", "/api/v1/namespaces/default/pods/web-0/log", id="log-unregistered"),
        pytest.param("GET", "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews", id="review"),
    ],
)
async def test_unserved_verbs_are_405_with_upstream_text(
    client: httpx.AsyncClient, method: str, path: str
) -> None:
    r = await client.request(method, path)
    assert r.status_code == 405
    assert r.json()["reason"] == "MethodNotAllowed"
    assert r.json()["message"] == "the server does not allow this method on the requested resource"


async def test_openapi_v2_is_protobuf_never_json(client: httpx.AsyncClient) -> None:
    r = await client.get(
        "/openapi/v2",
        headers={"Accept": "application/com.github.proto-openapi.spec.v2@v1.0+protobuf"},
    )
    assert r.status_code == 200
    assert r.headers["content-type"] == "application/com.github.proto-openapi.spec.v2.v1.0+protobuf"
    assert r.content[:1] == b"\x0a"  # field 1 (swagger), length-delimited: not "{"
