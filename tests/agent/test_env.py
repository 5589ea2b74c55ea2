"""Container environment resolution with the kubelet's order, expansion and messages."""

from __future__ import annotations

import base64

import pytest

from kubeling.agent.env import ContainerConfigError, expand, resolve_env

POD = {
    "metadata": {"name": "web-0", "namespace": "shop", "uid": "u-1", "labels": {"app": "web"}},
    "spec": {
        "nodeName": "node-a",
        "containers": [{"name": "app", "resources": {"limits": {"memory": "64Mi"}}}],
    },
    "status": {"podIP": "10.244.0.7"},
}
CMS = {"cfg": {"metadata": {"name": "cfg"}, "data": {"mode": "prod", "level": "debug"}}}
SECRETS = {
    "db": {"metadata": {"name": "db"}, "data": {"password": base64.b64encode(b"s3cret").decode()}}
}


def test_expand_follows_kubernetes_rules() -> None:
    env = {"A": "1"}
    assert expand("$(A)-$(B)-$$(A)-$$", env) == "1-$(B)-$(A)-$"


def test_env_from_then_env_in_order_with_expansion() -> None:
    container = {
        "name": "app",
        "envFrom": [
            {"configMapRef": {"name": "cfg"}, "prefix": "CFG_"},
            {"secretRef": {"name": "db"}},
        ],
        "env": [
            {"name": "GREETING", "value": "mode=$(CFG_mode) svc=$(WEB_SERVICE_HOST)"},
            {"name": "LEVEL", "valueFrom": {"configMapKeyRef": {"name": "cfg", "key": "level"}}},
            {"name": "PW", "valueFrom": {"secretKeyRef": {"name": "db", "key": "password"}}},
            {"name": "POD", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
            {"name": "APP", "valueFrom": {"fieldRef": {"fieldPath": "metadata.labels['app']"}}},
            {"name": "IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}},
            {
                "name": "MEM_MI",
                "valueFrom": {"resourceFieldRef": {"resource": "limits.memory", "divisor": "1Mi"}},
            },
        ],
    }
    env = resolve_env(
        POD,
        container,
        config_maps=CMS,
        secrets=SECRETS,
        service_env={"WEB_SERVICE_HOST": "10.96.0.5"},
    )
    assert env == [
        ("WEB_SERVICE_HOST", "10.96.0.5"),
        ("CFG_mode", "prod"),
        ("CFG_level", "debug"),
        ("password", "s3cret"),
        ("GREETING", "mode=prod svc=10.96.0.5"),
        ("LEVEL", "debug"),
        ("PW", "s3cret"),
        ("POD", "web-0"),
        ("APP", "web"),
        ("IP", "10.244.0.7"),
        ("MEM_MI", "64"),
    ]


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        pytest.param(
            {"configMapKeyRef": {"name": "nope", "key": "k"}},
            'configmap "nope" not found',
            id="cm-missing",
        ),
        pytest.param(
            {"secretKeyRef": {"name": "nope", "key": "k"}},
            'secret "nope" not found',
            id="secret-missing",
        ),
        pytest.param(
            {"configMapKeyRef": {"name": "cfg", "key": "k"}},
            "couldn't find key k in ConfigMap shop/cfg",
            id="cm-key",
        ),
        pytest.param(
            {"secretKeyRef": {"name": "db", "key": "k"}},
            "couldn't find key k in Secret shop/db",
            id="secret-key",
        ),
    ],
)
def test_missing_references_fail_with_kubelet_messages(entry: dict, message: str) -> None:
    container = {"name": "app", "env": [{"name": "X", "valueFrom": entry}]}
    with pytest.raises(ContainerConfigError) as info:
        resolve_env(POD, container, config_maps=CMS, secrets=SECRETS)
    assert str(info.value) == message
    optional = {k: dict(v, optional=True) for k, v in entry.items()}
    assert (
        resolve_env(
            POD,
            {"name": "app", "env": [{"name": "X", "valueFrom": optional}]},
            config_maps=CMS,
            secrets=SECRETS,
        )
        == []
    )


def test_env_from_missing_object() -> None:
    container = {"name": "app", "envFrom": [{"configMapRef": {"name": "gone"}}]}
    with pytest.raises(ContainerConfigError, match=r'^configmap "gone" not found$'):
        resolve_env(POD, container, config_maps={}, secrets={})
    container = {"name": "app", "envFrom": [{"secretRef": {"name": "gone", "optional": True}}]}
    assert resolve_env(POD, container, config_maps={}, secrets={}) == []
