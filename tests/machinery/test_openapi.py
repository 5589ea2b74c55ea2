"""The /openapi/v3 documents: structure, and what the real kubectl makes of them."""

from __future__ import annotations

import json
import pathlib
import shutil
import subprocess
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import orjson
import pytest

from kubeling.machinery import openapi, resources


def _doc(gv: str) -> dict[str, Any]:
    data = openapi.group_version_document(gv)
    assert data is not None
    parsed: dict[str, Any] = orjson.loads(data)
    return parsed


def test_root_lists_every_served_group_version_with_hash() -> None:
    root = orjson.loads(openapi.root_document())
    expected = {f"apis/{r.group}/{r.version}" if r.group else "api/v1" for r in resources.ALL}
    assert set(root["paths"]) == expected
    for gv, entry in root["paths"].items():
        h = openapi.group_version_hash(gv)
        assert h is not None and len(h) == 128 and h == h.upper()
        assert entry["serverRelativeURL"] == f"/openapi/v3/{gv}?hash={h}"


def test_unknown_group_version_is_none() -> None:
    assert openapi.group_version_document("apis/batch/v1") is None
    assert openapi.group_version_hash("apis/nope/v1") is None
    assert openapi.group_version_document("/openapi/v3/api/v1") == (
        openapi.group_version_document("api/v1")
    )


def test_every_patch_operation_lists_server_side_validation_params() -> None:
    for gv in openapi.group_version_paths():
        doc = _doc(gv)
        assert doc["openapi"] == "3.0.0"
        patches = [(p, item["patch"]) for p, item in doc["paths"].items() if "patch" in item]
        assert patches, gv
        for path, op in patches:
            names = {p["name"] for p in op["parameters"]}
            assert {"dryRun", "fieldManager", "fieldValidation", "force"} <= names, path
            assert op["x-kubernetes-action"] == "patch"
            assert set(op["x-kubernetes-group-version-kind"]) == {"group", "version", "kind"}


def test_paths_cover_served_resources_and_subresources() -> None:
    core = _doc("api/v1")["paths"]
    pvcs = "/api/v1/namespaces/{namespace}/persistentvolumeclaims"
    assert core[pvcs]["post"]["x-kubernetes-action"] == "post"
    assert core[pvcs]["get"]["x-kubernetes-action"] == "list"
    assert core[pvcs + "/{name}"]["get"]["x-kubernetes-group-version-kind"] == {
        "group": "",
        "version": "v1",
        "kind": "PersistentVolumeClaim",
    }
    assert "patch" in core[pvcs + "/{name}/status"]
    assert "/api/v1/persistentvolumes/{name}" in core
    assert "/api/v1/namespaces/{name}" in core
    apps = _doc("apis/apps/v1")["paths"]
    scale = apps["/apis/apps/v1/namespaces/{namespace}/statefulsets/{name}/scale"]["patch"]
    assert scale["x-kubernetes-group-version-kind"] == {
        "group": "autoscaling",
        "version": "v1",
        "kind": "Scale",
    }
    assert "io.k8s.api.autoscaling.v1.Scale" in _doc("apis/apps/v1")["components"]["schemas"]


def test_schemas_are_openapi_v3_form_and_closed_under_refs() -> None:
    doc = _doc("api/v1")
    schemas = doc["components"]["schemas"]
    text = orjson.dumps(doc).decode()
    assert "#/$defs/" not in text
    for ref in {part.split('"')[0] for part in text.split('"$ref":"#/components/schemas/')[1:]}:
        assert ref in schemas, ref
    pvc = schemas["io.k8s.api.core.v1.PersistentVolumeClaim"]
    assert pvc["x-kubernetes-group-version-kind"] == [
        {"group": "", "kind": "PersistentVolumeClaim", "version": "v1"}
    ]
    assert pvc["properties"]["apiVersion"]["type"] == "string"
    assert "enum" not in pvc["properties"]["kind"]
    spec = schemas["io.k8s.api.core.v1.PersistentVolumeClaimSpec"]["properties"]
    assert spec["resources"]["allOf"] == [
        {"$ref": "#/components/schemas/io.k8s.api.core.v1.VolumeResourceRequirements"}
    ]
    assert spec["resources"]["description"].startswith("resources represents the minimum")
    assert spec["accessModes"]["x-kubernetes-list-type"] == "atomic"
    assert schemas["io.k8s.apimachinery.pkg.api.resource.Quantity"]["oneOf"] == [
        {"type": "string"},
        {"type": "number"},
    ]
    containers = schemas["io.k8s.api.core.v1.PodSpec"]["properties"]["containers"]
    assert containers["x-kubernetes-patch-merge-key"] == "name"


def test_documents_are_cached_bytes() -> None:
    assert openapi.group_version_document("api/v1") is openapi.group_version_document("api/v1")
    assert openapi.root_document() is openapi.root_document()


# -- the real kubectl against a loopback server serving these documents -----------------------


def _discovery() -> dict[str, Any]:
    out: dict[str, Any] = {}
    for r in resources.ALL:
        gv = r.api_version
        entry = out.setdefault(
            gv, {"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": gv, "resources": []}
        )
        entry["resources"].append(
            {
                "name": r.plural,
                "singularName": r.singular,
                "namespaced": r.namespaced,
                "kind": r.kind,
                "verbs": list(r.verbs),
                "shortNames": list(r.short_names),
            }
        )
    return out


class _Server(BaseHTTPRequestHandler):
    discovery: dict[str, Any] = {}
    seen: list[str] = []

    def log_message(self, *args: Any) -> None:
        pass

    def _send(self, code: int, data: bytes) -> None:
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        self.seen.append(self.path)
        path = self.path.split("?")[0]
        groups = sorted({gv.split("/")[0] for gv in self.discovery if "/" in gv})
        if path == "/version":
            body: Any = {"major": "1", "minor": "32", "gitVersion": "v1.32.0"}
        elif path == "/api":
            body = {"kind": "APIVersions", "versions": ["v1"]}
        elif path == "/apis":
            body = {
                "kind": "APIGroupList",
                "apiVersion": "v1",
                "groups": [
                    {
                        "name": g,
                        "versions": [{"groupVersion": f"{g}/v1", "version": "v1"}],
                        "preferredVersion": {"groupVersion": f"{g}/v1", "version": "v1"},
                    }
                    for g in groups
                ],
            }
        elif path == "/api/v1":
            body = self.discovery["v1"]
        elif path.startswith("/apis/") and path.removeprefix("/apis/") in self.discovery:
            body = self.discovery[path.removeprefix("/apis/")]
        elif path == "/openapi/v3":
            self._send(200, openapi.root_document())
            return
        elif path.startswith("/openapi/v3/") and (doc := openapi.group_version_document(path)):
            self._send(200, doc)
            return
        else:
            self._send(404, b'{"kind":"Status","apiVersion":"v1","status":"Failure","code":404}')
            return
        self._send(200, json.dumps(body).encode())

    def do_POST(self) -> None:
        self.seen.append("POST " + self.path)
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self._send(201, body)


@pytest.fixture
def kubeconfig(tmp_path: pathlib.Path) -> Iterator[pathlib.Path]:
    if shutil.which("kubectl") is None:
        pytest.skip("kubectl is not installed on this machine")
    _Server.discovery = _discovery()
    _Server.seen = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Server)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    config = tmp_path / "kubeconfig"
    config.write_text(
        json.dumps(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "current-context": "c",
                "clusters": [
                    {"name": "c", "cluster": {"server": f"http://127.0.0.1:{server.server_port}"}}
                ],
                "users": [{"name": "u", "user": {}}],
                "contexts": [{"name": "c", "context": {"cluster": "c", "user": "u"}}],
            }
        )
    )
    try:
        yield config
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


def _kubectl(config: pathlib.Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["kubectl", "--kubeconfig", str(config), *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_kubectl_explain_pvc_spec_resources(kubeconfig: pathlib.Path) -> None:
    proc = _kubectl(kubeconfig, "explain", "pvc.spec.resources")
    assert proc.returncode == 0, proc.stderr
    lines = [line.rstrip() for line in proc.stdout.splitlines()]
    assert lines[0] == "KIND:       PersistentVolumeClaim"
    assert lines[1] == "VERSION:    v1"
    assert "FIELD: resources <VolumeResourceRequirements>" in lines
    assert any(
        line.strip().startswith("resources represents the minimum resources") for line in lines
    )
    assert any(
        line.strip().startswith("VolumeResourceRequirements describes the storage")
        for line in lines
    )
    assert "  limits\t<map[string]Quantity>" in lines
    assert "  requests\t<map[string]Quantity>" in lines
    assert any(p.startswith("/openapi/v3/api/v1?hash=") for p in _Server.seen)


def test_kubectl_explain_deployment_lists_fields(kubeconfig: pathlib.Path) -> None:
    proc = _kubectl(kubeconfig, "explain", "deployment.spec.template.spec.containers.ports")
    assert proc.returncode == 0, proc.stderr
    assert "GROUP:      apps" in proc.stdout
    assert "FIELD: ports <[]ContainerPort>" in proc.stdout
    assert "  containerPort\t<integer> -required-" in proc.stdout


def test_kubectl_create_uses_server_side_validation(
    kubeconfig: pathlib.Path, tmp_path: pathlib.Path
) -> None:
    manifest = tmp_path / "pvc.json"
    manifest.write_text(
        json.dumps(
            {
                "apiVersion": "v1",
                "kind": "PersistentVolumeClaim",
                "metadata": {"name": "data", "namespace": "default"},
                "spec": {"resources": {"request": {"storage": "1Gi"}}},
            }
        )
    )
    proc = _kubectl(kubeconfig, "create", "-f", str(manifest))
    assert proc.returncode == 0, proc.stderr
    posts = [p for p in _Server.seen if p.startswith("POST ")]
    assert len(posts) == 1
    # kubectl found fieldValidation on the PVC PATCH operation, so it leaves checking to us
    assert posts[0].startswith("POST /api/v1/namespaces/default/persistentvolumeclaims?")
    assert "fieldValidation=Strict" in posts[0]


def test_v2_document_is_a_protobuf_openapi_document_without_definitions() -> None:
    from kubeling.machinery import openapi as oa
    from kubeling.machinery.protobuf import _fields

    fields = _fields(oa.V2_DOCUMENT)
    assert [(n, w) for n, w, _ in fields] == [(1, 2), (2, 2)]  # swagger, info; no definitions
    assert fields[0][2] == b"2.0"
    info = _fields(fields[1][2])
    assert [(n, v) for n, _, v in info] == [(1, b"Kubernetes"), (2, b"v1.32.0")]
    assert "@" not in oa.V2_CONTENT_TYPE  # client-go must be able to parse it
