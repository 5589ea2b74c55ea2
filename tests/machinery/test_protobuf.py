"""Protobuf request bodies: real kubectl captures (fixtures/protobuf) and hand-built edge cases."""

from __future__ import annotations

import base64
import pathlib

import pytest

from kubeling.machinery.errors import BadRequest, UnsupportedMediaType
from kubeling.machinery.protobuf import MAGIC, decode, is_protobuf

FIXTURES = pathlib.Path(__file__).parent / "fixtures" / "protobuf"


def _fixture(name: str) -> bytes:
    return (FIXTURES / f"{name}.bin").read_bytes()


# -- a minimal encoder, only to build edge cases kubectl's commands cannot produce ------------


def _varint(n: int) -> bytes:
    n &= (1 << 64) - 1
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def _len(number: int, payload: bytes | str) -> bytes:
    data = payload.encode() if isinstance(payload, str) else payload
    return _varint(number << 3 | 2) + _varint(len(data)) + data


def _int(number: int, value: int) -> bytes:
    return _varint(number << 3) + _varint(value)


def _entry(number: int, key: str, value: bytes | str) -> bytes:
    return _len(number, _len(1, key) + _len(2, value))


def _envelope(api_version: str, kind: str, raw: bytes) -> bytes:
    type_meta = _len(1, api_version) + _len(2, kind)
    return MAGIC + _len(1, type_meta) + _len(2, raw) + _len(3, "") + _len(4, "")


# -- real kubectl bodies --------------------------------------------------------------------------


def test_decode_kubectl_create_configmap() -> None:
    obj = decode(_fixture("configmap"))
    assert obj["apiVersion"] == "v1"
    assert obj["kind"] == "ConfigMap"
    assert obj["metadata"] == {"name": "c1"}
    assert obj["data"] == {"f.txt": "hello\nworld\n", "x": "y"}
    assert base64.b64decode(obj["binaryData"]["bin.dat"]) == bytes([0, 1, 2, 255, 254])
    assert "immutable" not in obj


def test_decode_kubectl_create_secret_generic() -> None:
    obj = decode(_fixture("secret_generic"))
    assert obj["kind"] == "Secret"
    assert obj["metadata"] == {"name": "s1"}
    assert {k: base64.b64decode(v) for k, v in obj["data"].items()} == {
        "pw": b"s3cr3t",
        "f.txt": b"hello\nworld\n",
    }
    assert "type" not in obj  # kubectl sends "", the server defaults it to Opaque


def test_decode_kubectl_create_secret_docker_registry() -> None:
    obj = decode(_fixture("secret_docker"))
    assert obj["type"] == "kubernetes.io/dockerconfigjson"
    config = base64.b64decode(obj["data"][".dockerconfigjson"])
    assert config == b'{"auths":{"reg.example":{"username":"u","password":"p","auth":"dTpw"}}}'


def test_decode_kubectl_create_namespace_and_serviceaccount() -> None:
    ns = decode(_fixture("namespace"))
    assert (ns["apiVersion"], ns["kind"], ns["metadata"]) == ("v1", "Namespace", {"name": "ns1"})
    sa = decode(_fixture("serviceaccount"))
    assert sa["kind"] == "ServiceAccount"
    assert sa["metadata"] == {"name": "sa1", "namespace": "team"}


def test_decode_kubectl_create_deployment() -> None:
    obj = decode(_fixture("deployment"))
    assert (obj["apiVersion"], obj["kind"]) == ("apps/v1", "Deployment")
    assert obj["metadata"] == {"name": "web", "namespace": "team", "labels": {"app": "web"}}
    spec = obj["spec"]
    assert spec["replicas"] == 2
    assert spec["selector"] == {"matchLabels": {"app": "web"}}
    assert spec["template"]["metadata"] == {"labels": {"app": "web"}}
    assert spec["template"]["spec"]["containers"] == [
        {"name": "nginx", "image": "nginx:1.27", "ports": [{"containerPort": 80}],
         "resources": {}}
    ]  # fmt: skip


def test_decode_kubectl_create_token() -> None:
    obj = decode(_fixture("token"))
    assert (obj["apiVersion"], obj["kind"]) == ("authentication.k8s.io/v1", "TokenRequest")
    assert obj["spec"] == {"audiences": ["api"], "expirationSeconds": 3600}


def test_decode_kubectl_create_token_bound_to_object() -> None:
    obj = decode(_fixture("token_bound"))
    assert obj["spec"] == {
        "boundObjectRef": {"kind": "Pod", "apiVersion": "v1", "name": "p1", "uid": "u-1"}
    }


def test_decode_kubectl_create_service() -> None:
    obj = decode(_fixture("service"))
    assert (obj["apiVersion"], obj["kind"]) == ("v1", "Service")
    assert obj["metadata"] == {"name": "svc1", "namespace": "team", "labels": {"app": "svc1"}}
    assert obj["spec"] == {
        "ports": [{"name": "80-8080", "protocol": "TCP", "port": 80, "targetPort": 8080}],
        "selector": {"app": "svc1"},
        "type": "ClusterIP",
    }
    nodeport = decode(_fixture("service_nodeport"))["spec"]
    assert nodeport["type"] == "NodePort"
    assert nodeport["ports"] == [
        {"name": "443-https", "protocol": "TCP", "port": 443, "targetPort": "https",
         "nodePort": 30443}
    ]  # fmt: skip


def test_decode_kubectl_auth_can_i() -> None:
    obj = decode(_fixture("can_i"))
    assert obj["kind"] == "SelfSubjectAccessReview"
    assert obj["spec"] == {
        "resourceAttributes": {"namespace": "team", "verb": "get", "resource": "pods"}
    }
    nonres = decode(_fixture("can_i_nonresource"))
    assert nonres["spec"] == {"nonResourceAttributes": {"path": "/healthz", "verb": "get"}}
    rules = decode(_fixture("can_i_list"))
    assert (rules["kind"], rules["spec"]) == ("SelfSubjectRulesReview", {"namespace": "team"})


# -- hand-built edge cases ------------------------------------------------------------------------


def test_decode_object_meta_fields() -> None:
    owner = _len(1, "StatefulSet") + _len(3, "web") + _len(4, "u-1") + _len(5, "apps/v1")
    owner += _int(6, 1) + _int(7, 0)
    meta = (
        _len(1, "m")
        + _len(3, "ns")
        + _len(2, "")
        + _entry(11, "app", "web")
        + _entry(12, "note", "x")
        + _len(13, owner)
        + _len(14, "example.com/f")
        + _len(14, "other/f")
        + _len(8, _int(1, 1735725600))
        + _int(10, 30)
    )
    raw = _len(1, meta) + _entry(2, "k", "v") + _int(4, 0)
    obj = decode(_envelope("v1", "ConfigMap", raw))
    assert obj["metadata"] == {
        "name": "m",
        "namespace": "ns",
        "labels": {"app": "web"},
        "annotations": {"note": "x"},
        "ownerReferences": [
            {"kind": "StatefulSet", "name": "web", "uid": "u-1", "apiVersion": "apps/v1",
             "controller": True, "blockOwnerDeletion": False}
        ],
        "finalizers": ["example.com/f", "other/f"],
        "creationTimestamp": "2025-01-01T10:00:00Z",
        "deletionGracePeriodSeconds": 30,
    }  # fmt: skip
    assert obj["immutable"] is False  # a pointer field: present because it was set


def test_decode_secret_string_data_and_unknown_fields_skipped() -> None:
    raw = _len(1, _len(1, "s")) + _entry(4, "user", "admin") + _len(3, "Opaque")
    raw += _len(99, "from a newer client") + _int(98, 7)
    obj = decode(_envelope("v1", "Secret", raw))
    assert obj == {"kind": "Secret", "apiVersion": "v1", "metadata": {"name": "s"},
                   "stringData": {"user": "admin"}, "type": "Opaque"}  # fmt: skip


def test_decode_negative_int() -> None:
    raw = _len(2, _int(1, -1))  # replicas: -1 (Go writes int32 as a 64-bit varint)
    assert decode(_envelope("apps/v1", "Deployment", raw))["spec"]["replicas"] == -1


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(b"{}", id="json"),
        pytest.param(MAGIC + b"\x0a\x05ab", id="truncated-len"),
        pytest.param(MAGIC + b"\x0a", id="truncated-varint"),
        pytest.param(MAGIC + b"\x0b", id="group-wire-type"),
        pytest.param(_envelope("v1", "ConfigMap", b"\x0a\x02\x0a\xff"), id="bad-nested"),
    ],
)
def test_decode_malformed_is_bad_request(body: bytes) -> None:
    with pytest.raises(BadRequest):
        decode(body)


def test_decode_unknown_kind_is_415() -> None:
    with pytest.raises(UnsupportedMediaType) as exc:
        decode(_envelope("v1", "Pod", b""))
    assert exc.value.code == 415


def test_is_protobuf() -> None:
    assert is_protobuf("application/vnd.kubernetes.protobuf")
    assert is_protobuf("application/vnd.kubernetes.protobuf; charset=x")
    assert not is_protobuf("application/json")
    assert not is_protobuf(None)
