"""Break-it cases against a real ``kubeling up``: odd bodies answer as upstream, never a 500.

Raw HTTPS requests (not kubectl) so that the exact body reaches the server; each test works in
its own namespace of one shared server.
"""

from __future__ import annotations

import json
import ssl
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

import pytest

from tests.e2e.conftest import Kubeling

pytestmark = pytest.mark.e2e


class Api:
    def __init__(self, k: Kubeling) -> None:
        self.k = k
        self.ssl = ssl.create_default_context(cafile=str(k.ca_file))

    def call(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        content_type: str = "application/json",
    ) -> tuple[int, Any]:
        data: bytes | None
        if body is None or isinstance(body, bytes):
            data = body
        elif isinstance(body, str):
            data = body.encode()
        else:
            data = json.dumps(body).encode()
        req = urllib.request.Request(
            self.k.url + path,
            data=data,
            method=method,
            headers={"Authorization": f"Bearer {self.k.token}", "Content-Type": content_type},
        )
        try:
            with urllib.request.urlopen(req, context=self.ssl, timeout=30) as resp:
                return resp.status, json.loads(resp.read())
        except urllib.error.HTTPError as e:
            return e.code, json.loads(e.read())

    def namespace(self, name: str) -> str:
        code, out = self.call(
            "POST",
            "/api/v1/namespaces",
            {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}},
        )
        assert code == 201, out
        return name


@pytest.fixture(scope="module")
def api(shared_kubeling: Kubeling) -> Api:
    return Api(shared_kubeling)


def _deployment(name: str, container: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name},
        "spec": {
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {"containers": [container]},
            },
        },
    }


def test_nulls_are_stored_as_go_would_leave_them_and_tables_still_print(
    api: Api, shared_kubeling: Kubeling
) -> None:
    ns = api.namespace("hard-nulls")
    code, cm = api.call(
        "POST",
        f"/api/v1/namespaces/{ns}/configmaps",
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "c"},
            "data": {"key1": None},
        },
    )
    assert (code, cm["data"]) == (201, {"key1": ""})

    deploy = f"/apis/apps/v1/namespaces/{ns}/deployments"
    code, out = api.call("POST", deploy, _deployment("web", {"name": "c", "image": "busybox"}))
    assert code == 201, out
    ops = [
        {"op": "replace", "path": "/spec/template/spec/containers/0/image", "value": None},
        {"op": "add", "path": "/metadata/labels", "value": {"x": None}},
    ]
    code, out = api.call("PATCH", f"{deploy}/web", ops, content_type="application/json-patch+json")
    assert code == 200, out
    assert "image" not in out["spec"]["template"]["spec"]["containers"][0]
    assert out["metadata"]["labels"] == {"x": ""}
    smp = {"spec": {"template": {"spec": {"containers": [{"name": "c", "args": [None]}]}}}}
    code, out = api.call(
        "PATCH", f"{deploy}/web", smp, content_type="application/strategic-merge-patch+json"
    )
    assert code == 200, out
    assert out["spec"]["template"]["spec"]["containers"][0]["args"] == [""]

    # the printers (a Table of each) and typed clients read what was stored
    shared_kubeling.ok("get", "deploy", "-n", ns)
    shared_kubeling.ok("get", "rs", "-A")
    code, listed = api.call("GET", f"{deploy}?labelSelector=x")
    assert code == 200 and [d["metadata"]["name"] for d in listed["items"]] == ["web"]


@pytest.mark.parametrize("field_name", ["containers", "env", "ports", "volumes"])
def test_null_list_elements_in_a_pod_template_are_required_fields_not_a_crash(
    api: Api, field_name: str
) -> None:
    ns = "default"
    container: dict[str, Any] = {"name": "c", "image": "busybox"}
    body = _deployment(f"nulls-{field_name}", container)
    pod_spec = body["spec"]["template"]["spec"]
    if field_name in ("containers", "volumes"):
        pod_spec[field_name] = [None]
    else:
        container[field_name] = [None]
    code, out = api.call("POST", f"/apis/apps/v1/namespaces/{ns}/deployments", body)
    assert code == 422, out
    where = {
        "containers": "spec.template.spec.containers[0].name",
        "volumes": "spec.template.spec.volumes[0].name",
        "env": "spec.template.spec.containers[0].env[0].name",
        "ports": "spec.template.spec.containers[0].ports[0].containerPort",
    }[field_name]
    assert f"{where}: Required value" in out["message"]


def test_too_deep_body_is_a_400_and_the_limit_itself_is_served(api: Api) -> None:
    path = "/apis/apps/v1/namespaces/default/controllerrevisions"

    def revision(name: str, depth: int) -> str:
        # the object and its data field are two of the levels
        data = "[" * (depth - 1) + "]" * (depth - 1)
        return (
            '{"apiVersion":"apps/v1","kind":"ControllerRevision","metadata":{"name":"'
            + name
            + '"},"revision":1,"data":'
            + data
            + "}"
        )

    code, out = api.call("POST", path, revision("deep-ok", 100))
    assert code == 201, out
    code, out = api.call("GET", f"{path}/deep-ok")
    assert code == 200
    for depth in (101, 1000):
        code, out = api.call("POST", path, revision(f"deep-{depth}", depth))
        assert (code, out["reason"]) == (400, "BadRequest"), out
        assert "nested too deeply" in out["message"]
    patch = '{"data":' + "[" * 1000 + "]" * 1000 + "}"
    code, out = api.call(
        "PATCH", f"{path}/deep-ok", patch, content_type="application/merge-patch+json"
    )
    assert code == 400, out


def test_create_with_resource_version_is_refused_as_upstream_storage_does(api: Api) -> None:
    code, out = api.call(
        "POST",
        "/api/v1/namespaces/default/configmaps",
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "rv", "resourceVersion": "5"},
        },
    )
    assert code == 500
    assert out["message"] == "resourceVersion should not be set on objects to be created"
    assert not out.get("reason")


def test_secret_data_is_stored_reencoded(api: Api) -> None:
    code, out = api.call(
        "POST",
        "/api/v1/namespaces/default/secrets",
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "nl"},
            "data": {"a": "YWJj\nZA=="},
        },
    )
    assert (code, out["data"]) == (201, {"a": "YWJjZA=="})


@pytest.mark.parametrize(
    ("method", "query", "content_type", "message"),
    [
        pytest.param(
            "POST",
            "?fieldManager=" + "m" * 129,
            "application/json",
            'CreateOptions.meta.k8s.io "" is invalid: fieldManager: Too long: may not be more '
            "than 128 bytes",
            id="too-long",
        ),
        pytest.param(
            "POST",
            "?fieldManager=" + urllib.parse.quote("a\x01b"),
            "application/json",
            'CreateOptions.meta.k8s.io "" is invalid: fieldManager: Invalid value: "a\\x01b": '
            "invalid character U+0001 (at position 1)",
            id="non-printable",
        ),
        pytest.param(
            "PATCH",
            "",
            "application/apply-patch+yaml",
            'PatchOptions.meta.k8s.io "" is invalid: fieldManager: Required value: is required '
            "for apply patch",
            id="apply-without-manager",
        ),
        pytest.param(
            "PATCH",
            "?force=true",
            "application/merge-patch+json",
            'PatchOptions.meta.k8s.io "" is invalid: force: Forbidden: may not be specified for '
            "non-apply patch",
            id="force-without-apply",
        ),
    ],
)
def test_field_manager_option_is_validated(
    api: Api, method: str, query: str, content_type: str, message: str
) -> None:
    path = "/api/v1/namespaces/default/configmaps"
    if method == "PATCH":
        path += "/fm"
    body = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "fm"}}
    code, out = api.call(method, path + query, body, content_type=content_type)
    assert (code, out["reason"], out["message"]) == (422, "Invalid", message)


def test_body_over_the_limit_is_413_with_upstream_text(api: Api) -> None:
    body = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "big"},
        "data": {"a": "x" * (3 * 1024 * 1024)},
    }
    code, out = api.call("POST", "/api/v1/namespaces/default/configmaps", body)
    assert (code, out["reason"], out["message"]) == (
        413,
        "RequestEntityTooLarge",
        "Request entity too large: limit is 3145728",
    )


def test_server_side_apply_refuses_undeclared_fields_and_wrong_types_first(
    api: Api, shared_kubeling: Kubeling
) -> None:
    ns = api.namespace("hard-ssa")
    manifest = (
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c\n  namespace: hard-ssa\n"
        "foo: bar\ndata:\n  a: '1'\n"
    )
    for validate in ("--validate=false", "--validate=strict"):
        result = shared_kubeling.kubectl(
            "apply", "--server-side", validate, "-f", "-", input=manifest
        )
        assert result.returncode != 0
        assert (
            "failed to create typed patch object (hard-ssa/c; /v1, Kind=ConfigMap): .foo: field "
            "not declared in schema" in result.stderr
        ), result.stderr
    code, _ = api.call("GET", f"/api/v1/namespaces/{ns}/configmaps/c")
    assert code == 404
    # an int in a string map is a type error even where another manager owns the field
    shared_kubeling.ok(
        "apply",
        "--server-side",
        "--field-manager=first",
        "-f",
        "-",
        input=manifest.replace("foo: bar\n", ""),
    )
    result = shared_kubeling.kubectl(
        "apply",
        "--server-side",
        "--field-manager=second",
        "--validate=false",
        "-f",
        "-",
        input=manifest.replace("foo: bar\n", "").replace("'1'", "1"),
    )
    assert result.returncode != 0
    assert ".data.a: expected string, got &value.valueUnstructured{Value:1}" in result.stderr


def test_apply_of_an_unknown_kind_reaches_kubectls_mapping_error(shared_kubeling: Kubeling) -> None:
    manifest = "apiVersion: apps/v1\nkind: ConfigMap\nmetadata:\n  name: wrong-kind\n"
    for args in (("apply",), ("create",), ("apply", "--server-side")):
        result = shared_kubeling.kubectl(*args, "-f", "-", input=manifest)
        assert result.returncode != 0
        assert 'no matches for kind "ConfigMap" in version "apps/v1"' in result.stderr, (
            result.stderr
        )
        assert "failed to download openapi" not in result.stderr
    # valid kinds still validate on the server and explain still reads v3
    good = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: right-kind\n  namespace: default\n"
    shared_kubeling.ok("apply", "-f", "-", input=good)
    bad = good + "bogus: 1\n"
    result = shared_kubeling.kubectl("apply", "-f", "-", input=bad.replace("right", "bad"))
    assert 'strict decoding error: unknown field "bogus"' in result.stderr, result.stderr
    assert "FIELD: data <map[string]string>" in shared_kubeling.ok("explain", "configmap.data")


_TYPE_META_STRUCT = (
    'struct { APIVersion string "json:\\"apiVersion,omitempty\\""; '
    'Kind string "json:\\"kind,omitempty\\"" }'
)


@pytest.mark.parametrize(
    ("method", "body", "content_type", "message"),
    [
        pytest.param(
            "POST",
            '{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"t"',
            "application/json",
            "the object provided is unrecognized (must be of type ConfigMap): couldn't get "
            "version/kind; json parse error: unexpected end of JSON input "
            '({"apiVersion":"v1","kind":"Con ...)',
            id="truncated-json",
        ),
        pytest.param(
            "POST",
            '"abc"',
            "application/json",
            "the object provided is unrecognized (must be of type ConfigMap): couldn't get "
            f"version/kind; json parse error: json: cannot unmarshal string into Go value of type "
            f"{_TYPE_META_STRUCT} (2261626322)",
            id="json-string",
        ),
        pytest.param(
            "POST",
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: y\n  bad: : y\n",
            "application/yaml",
            "the object provided is unrecognized (must be of type ConfigMap): error converting "
            "YAML to JSON: yaml: line 5: mapping values are not allowed in this context "
            "(61706956657273696f6e3a2076310a6b696e643a20436f6e6669674d6170 ...)",
            id="bad-yaml",
        ),
        pytest.param(
            "PATCH",
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: y\n  bad: : y\n",
            "application/apply-patch+yaml",
            "error decoding YAML: error converting YAML to JSON: yaml: line 5: mapping values are "
            "not allowed in this context",
            id="bad-apply-yaml",
        ),
    ],
)
def test_unparsable_bodies_get_upstreams_decode_texts(
    api: Api, method: str, body: str, content_type: str, message: str
) -> None:
    path = "/api/v1/namespaces/default/configmaps"
    if method == "PATCH":
        path += "/y?fieldManager=m"
    code, out = api.call(method, path, body, content_type=content_type)
    assert (code, out["reason"], out["message"]) == (400, "BadRequest", message)


def test_null_finalizer_reads_as_an_empty_name(api: Api) -> None:
    code, out = api.call(
        "POST",
        "/api/v1/namespaces/default/configmaps",
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "f", "finalizers": [None]}},
    )
    assert code == 422
    assert 'metadata.finalizers: Invalid value: ""' in out["message"]


@pytest.mark.parametrize(
    "content_type",
    ["application/merge-patch+json", "application/strategic-merge-patch+json"],
)
def test_malformed_patch_is_described_in_go_json_words(api: Api, content_type: str) -> None:
    path = "/api/v1/namespaces/default/configmaps/patched"
    api.call("POST", "/api/v1/namespaces/default/configmaps", {"metadata": {"name": "patched"}})
    code, out = api.call("PATCH", path, '{"data": {"a": "b"}', content_type=content_type)
    assert (code, out["message"]) == (400, "error decoding patch: unexpected end of JSON input")
