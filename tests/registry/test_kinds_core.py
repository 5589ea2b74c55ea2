"""Core/v1 kinds: Namespace, ConfigMap, Secret, Service, Endpoints, Node, Event."""

from __future__ import annotations

import base64
from typing import Any

import pytest

from kubeling.machinery import resources as r
from tests.registry.test_kinds_support import create, tutorial, update


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def meta(name: str = "x", **extra: Any) -> dict[str, Any]:
    return {"name": name, "namespace": "default", **extra}


# -- Namespace -------------------------------------------------------------------------------


def test_namespace_create_sets_finalizer_and_active_phase() -> None:
    out, errs = create(r.NAMESPACES, {"metadata": {"name": "team-a"}, "status": {"phase": "X"}})
    assert errs == []
    assert out["spec"] == {"finalizers": ["kubernetes"]}
    assert out["status"] == {"phase": "Active"}


def test_namespace_update_keeps_finalizers() -> None:
    old, _ = create(r.NAMESPACES, {"metadata": {"name": "team-a"}})
    out, errs = update(r.NAMESPACES, {"metadata": {"name": "team-a"}, "spec": {}}, old)
    assert errs == []
    assert out["spec"]["finalizers"] == ["kubernetes"]


# -- ConfigMap -------------------------------------------------------------------------------

CONFIG_KEY = (
    "a valid config key must consist of alphanumeric characters, '-', '_' or '.' (e.g. "
    "'key.name',  or 'KEY_NAME',  or 'key-name', regex used for validation is "
    "'[-._a-zA-Z0-9]+')"
)


def test_configmap_bad_key() -> None:
    _, errs = create(r.CONFIGMAPS, {"metadata": meta(), "data": {"key#1": "v"}})
    assert errs == [f'data[key#1]: Invalid value: "key#1": {CONFIG_KEY}']


def test_configmap_data_binary_overlap() -> None:
    _, errs = create(
        r.CONFIGMAPS, {"metadata": meta(), "data": {"a": "1"}, "binaryData": {"a": b64("1")}}
    )
    assert errs == [
        'data[a]: Invalid value: "a": duplicate of key present in binaryData',
        'binaryData[a]: Invalid value: "a": duplicate of key present in data',
    ]


def test_configmap_total_size_limit() -> None:
    _, ok = create(r.CONFIGMAPS, {"metadata": meta(), "data": {"a": "x" * 1048576}})
    assert ok == []
    _, errs = create(r.CONFIGMAPS, {"metadata": meta(), "data": {"a": "x" * 1048576, "b": "y"}})
    assert errs == ["[]: Too long: may not be more than 1048576 bytes"]


def test_configmap_immutable() -> None:
    old = {"metadata": meta(), "data": {"a": "1"}, "immutable": True}
    _, errs = update(r.CONFIGMAPS, {"metadata": meta(), "data": {"a": "2"}}, old)
    assert errs == [
        "immutable: Forbidden: field is immutable when `immutable` is set",
        "data: Forbidden: field is immutable when `immutable` is set",
    ]
    _, errs = update(r.CONFIGMAPS, {**old, "metadata": meta(labels={"a": "b"})}, old)
    assert errs == []


# -- Secret ----------------------------------------------------------------------------------


def test_secret_string_data_folded_and_type_defaulted() -> None:
    out, errs = create(r.SECRETS, {"metadata": meta(), "stringData": {"user": "admin"},
                                   "data": {"user": b64("old"), "pw": b64("x")}})  # fmt: skip
    assert errs == []
    assert "stringData" not in out
    assert out["data"] == {"user": b64("admin"), "pw": b64("x")}
    assert out["type"] == "Opaque"


def test_tutorial_tls_secret_missing_key_names_tls_key() -> None:
    (secret,) = tutorial("09-tls-missing-key.yaml")
    _, errs = create(r.SECRETS, secret)
    assert errs == ["data[tls.key]: Required value"]


def test_tutorial_opaque_secret_is_valid() -> None:
    secrets = [d for d in tutorial("08-secret.yaml") if d["kind"] == "Secret"]
    _, errs = create(r.SECRETS, secrets[0])
    assert errs == []


@pytest.mark.parametrize(
    ("type_", "data", "annotations", "expected"),
    [
        pytest.param("kubernetes.io/tls", {}, {}, ["data[tls.crt]: Required value",
                                                    "data[tls.key]: Required value"], id="tls"),
        pytest.param("kubernetes.io/dockerconfigjson", {}, {},
                     ["data[.dockerconfigjson]: Required value"], id="dockerconfigjson-missing"),
        pytest.param("kubernetes.io/dockerconfigjson", {".dockerconfigjson": b64("{bad")}, {},
                     ['data[.dockerconfigjson]: Invalid value: "<secret contents redacted>": '
                      "invalid character 'b' looking for beginning of object key string"],
                     id="dockerconfigjson-bad-json"),
        pytest.param("kubernetes.io/dockercfg", {".dockercfg": b64("[1]")}, {},
                     ['data[.dockercfg]: Invalid value: "<secret contents redacted>": json: '
                      "cannot unmarshal array into Go value of type map[string]interface {}"],
                     id="dockercfg-not-object"),
        pytest.param("kubernetes.io/dockercfg", {".dockercfg": b64("{}x")}, {},
                     ['data[.dockercfg]: Invalid value: "<secret contents redacted>": '
                      "invalid character 'x' after top-level value"],
                     id="dockercfg-trailing"),
        pytest.param("kubernetes.io/dockerconfigjson", {".dockerconfigjson": b64('{"auths":{}}')},
                     {}, [], id="dockerconfigjson-ok"),
        pytest.param("kubernetes.io/dockercfg", {}, {}, ["data[.dockercfg]: Required value"],
                     id="dockercfg"),
        pytest.param("kubernetes.io/basic-auth", {}, {}, ["data[username]: Required value",
                                                           "data[password]: Required value"],
                     id="basic-auth"),
        pytest.param("kubernetes.io/basic-auth", {"password": ""}, {}, [], id="basic-auth-one"),
        pytest.param("kubernetes.io/ssh-auth", {}, {}, ["data[ssh-privatekey]: Required value"],
                     id="ssh-auth"),
        pytest.param("kubernetes.io/service-account-token", {}, {},
                     ["metadata.annotations[kubernetes.io/service-account.name]: Required value"],
                     id="sa-token"),
        pytest.param("kubernetes.io/service-account-token", {},
                     {"kubernetes.io/service-account.name": "default"}, [], id="sa-token-ok"),
        pytest.param("example.com/custom", {}, {}, [], id="custom"),
    ],
)  # fmt: skip
def test_secret_types_required_keys(
    type_: str, data: dict[str, str], annotations: dict[str, str], expected: list[str]
) -> None:
    obj = {"metadata": meta(annotations=annotations), "type": type_, "data": data}
    _, errs = create(r.SECRETS, obj)
    assert errs == expected


def test_secret_size_limit_counts_decoded_bytes() -> None:
    big = base64.b64encode(b"x" * (1024 * 1024)).decode()
    _, ok = create(r.SECRETS, {"metadata": meta(), "data": {"a": big}})
    assert ok == []
    _, errs = create(r.SECRETS, {"metadata": meta(), "data": {"a": big, "b": b64("y")}})
    assert errs == ["data: Too long: may not be more than 1048576 bytes"]


def test_secret_type_and_immutable_rules() -> None:
    old = {"metadata": meta(), "type": "Opaque", "data": {"a": b64("1")}, "immutable": True}
    new = {"metadata": meta(), "type": "kubernetes.io/basic-auth", "data": {"username": b64("u")},
           "immutable": True}  # fmt: skip
    _, errs = update(r.SECRETS, new, old)
    assert errs == [
        'type: Invalid value: "kubernetes.io/basic-auth": field is immutable',
        "data: Forbidden: field is immutable when `immutable` is set",
    ]


# -- Service ---------------------------------------------------------------------------------


def test_tutorial_headless_service_defaults() -> None:
    svc = next(d for d in tutorial("15-statefulset.yaml") if d["kind"] == "Service")
    out, errs = create(r.SERVICES, svc)
    assert errs == []
    spec = out["spec"]
    assert spec["type"] == "ClusterIP"
    assert spec["sessionAffinity"] == "None"
    assert spec["clusterIPs"] == ["None"]
    assert spec["ports"][0] == {"port": 80, "name": "http", "protocol": "TCP", "targetPort": 80}
    assert spec["internalTrafficPolicy"] == "Cluster"
    assert out["status"] == {"loadBalancer": {}}


def test_service_requires_ports_unless_headless() -> None:
    _, errs = create(r.SERVICES, {"metadata": meta(), "spec": {"selector": {"app": "x"}}})
    assert errs == ["spec.ports: Required value"]
    _, errs = create(r.SERVICES, {"metadata": meta(), "spec": {"clusterIP": "None"}})
    assert errs == []


def test_service_port_rules() -> None:
    spec = {"ports": [{"port": 80}, {"port": 0, "name": "b", "protocol": "ICMP"}], "type": "Magic"}
    _, errs = create(r.SERVICES, {"metadata": meta(), "spec": spec})
    assert errs == [
        'spec.type: Unsupported value: "Magic": supported values: "ClusterIP", "ExternalName", '
        '"LoadBalancer", "NodePort"',
        "spec.ports[0].name: Required value",
        "spec.ports[1].port: Invalid value: 0: must be between 1 and 65535, inclusive",
        'spec.ports[1].protocol: Unsupported value: "ICMP": supported values: "SCTP", "TCP", "UDP"',
        "spec.ports[1].targetPort: Invalid value: 0: must be between 1 and 65535, inclusive",
    ]


def test_service_external_name_required() -> None:
    _, errs = create(r.SERVICES, {"metadata": meta(), "spec": {"type": "ExternalName"}})
    assert errs == ["spec.externalName: Required value"]


def test_service_update_keeps_allocated_cluster_ip() -> None:
    old = {"metadata": meta(), "spec": {"type": "ClusterIP", "clusterIP": "10.96.0.10",
           "clusterIPs": ["10.96.0.10"], "ports": [{"port": 80, "protocol": "TCP"}]}}  # fmt: skip
    out, errs = update(r.SERVICES, {"metadata": meta(), "spec": {"ports": [{"port": 81}]}}, old)
    assert errs == []
    assert out["spec"]["clusterIP"] == "10.96.0.10"
    changed = {"metadata": meta(), "spec": {**old["spec"], "clusterIPs": ["10.96.0.11"]}}
    _, errs = update(r.SERVICES, changed, old)
    assert errs == ['spec.clusterIPs[0]: Invalid value: "10.96.0.11": may not change once set']


# -- Endpoints, Node, Event ------------------------------------------------------------------


def test_endpoints_defaults_and_address_ip() -> None:
    ep = {"metadata": meta(), "subsets": [{"addresses": [{"ip": "nope"}], "ports": [{"port": 80}]}]}
    out, errs = create(r.ENDPOINTS, ep)
    assert out["subsets"][0]["ports"][0]["protocol"] == "TCP"
    assert errs == [
        'subsets[0].addresses[0].ip: Invalid value: "nope": must be a valid IP address, (e.g. '
        "10.9.8.7 or 2001:db8::ffff)"
    ]


def test_node_allocatable_defaults_to_capacity() -> None:
    node = {"metadata": {"name": "n1"}, "status": {"capacity": {"cpu": "2"}}}
    out, errs = create(r.NODES, node)
    assert errs == []
    assert out["status"]["allocatable"] == {"cpu": "2"}


def test_event_namespace_must_match_involved_object() -> None:
    ev = {"metadata": meta("e", namespace="a"), "involvedObject": {"namespace": "b", "kind": "Pod"}}
    _, errs = create(r.EVENTS, ev)
    assert errs == ['involvedObject.namespace: Invalid value: "b": does not match event.namespace']


def test_event_field_labels_for_describe() -> None:
    from kubeling.registry.catalog import strategies

    ev = {"involvedObject": {"kind": "Pod", "name": "web-0", "namespace": "default", "uid": "u"},
          "type": "Warning", "reason": "FailedMount", "source": {"component": "kubelet"}}  # fmt: skip
    labels = strategies()[r.EVENTS].field_labels(ev)
    assert labels["involvedObject.name"] == "web-0"
    assert labels["involvedObject.uid"] == "u"
    assert labels["type"] == "Warning"
    assert labels["source"] == "kubelet"
