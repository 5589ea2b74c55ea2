"""Strategies against odd bodies: printers never fail, validators never raise on what decodes."""

from __future__ import annotations

import contextlib
import copy
import random
from typing import Any

import pytest

from kubeling.machinery import resources as r
from kubeling.machinery.decode import decode_object
from kubeling.machinery.errors import BadRequest, Invalid, StatusError
from kubeling.registry.catalog import strategies
from kubeling.registry.registry import Registry
from tests.registry.conftest import FakeClock, ctx

NOW = 1_700_000_000.0


def _strategy(info: Any) -> Any:
    return strategies()[info]


def test_row_of_an_odd_object_shows_unknown_cells_instead_of_raising() -> None:
    s = _strategy(r.DEPLOYMENTS)
    odd = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web", "creationTimestamp": "2023-11-14T22:13:20Z"},
        "spec": {"template": {"spec": {"containers": [{"name": "c", "image": None}]}}},
    }
    row = s.row(odd, now=NOW)
    assert row[0] == "web"
    assert len(row) == len(s.columns())
    assert "<unknown>" in row


# Bodies with most of the nested shapes the validators walk (lists of objects, maps, probes,
# projected volumes, affinity terms); the fuzz below breaks them one spot at a time.
_POD_SPEC: dict[str, Any] = {
    "containers": [
        {
            "name": "c",
            "image": "i",
            "env": [{"name": "A", "valueFrom": {"secretKeyRef": {"name": "s", "key": "k"}}}],
            "envFrom": [{"configMapRef": {"name": "c"}}],
            "ports": [{"containerPort": 80, "name": "http"}],
            "livenessProbe": {"httpGet": {"port": 80, "path": "/"}},
            "readinessProbe": {"exec": {"command": ["a"]}},
            "lifecycle": {"preStop": {"exec": {"command": ["a"]}}},
            "securityContext": {"capabilities": {"add": ["X"]}},
            "resources": {"limits": {"cpu": "1"}, "requests": {"cpu": "1"}},
            "volumeMounts": [{"name": "v", "mountPath": "/a"}],
        }
    ],
    "initContainers": [{"name": "i", "image": "i"}],
    "volumes": [
        {
            "name": "v",
            "projected": {
                "sources": [
                    {"secret": {"name": "s", "items": [{"key": "a", "path": "b"}]}},
                    {"serviceAccountToken": {"path": "t"}},
                    {
                        "downwardAPI": {
                            "items": [{"path": "p", "fieldRef": {"fieldPath": "metadata.name"}}]
                        }
                    },
                ]
            },
        },
        {"name": "w", "configMap": {"name": "c", "items": [{"key": "a", "path": "b"}]}},
        {"name": "x", "persistentVolumeClaim": {"claimName": "c"}},
        {"name": "h", "hostPath": {"path": "/tmp", "type": "DirectoryOrCreate"}},
    ],
    "affinity": {
        "nodeAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": {
                "nodeSelectorTerms": [
                    {"matchExpressions": [{"key": "a", "operator": "In", "values": ["b"]}]}
                ]
            }
        },
        "podAntiAffinity": {
            "preferredDuringSchedulingIgnoredDuringExecution": [
                {
                    "weight": 1,
                    "podAffinityTerm": {"topologyKey": "k", "labelSelector": {"matchLabels": {}}},
                }
            ]
        },
    },
    "tolerations": [{"key": "k", "operator": "Exists"}],
    "topologySpreadConstraints": [
        {"maxSkew": 1, "topologyKey": "k", "whenUnsatisfiable": "DoNotSchedule"}
    ],
    "dnsConfig": {"nameservers": ["1.1.1.1"], "options": [{"name": "ndots", "value": "2"}]},
    "hostAliases": [{"ip": "1.2.3.4", "hostnames": ["a"]}],
    "imagePullSecrets": [{"name": "x"}],
    "readinessGates": [{"conditionType": "a"}],
    "securityContext": {"sysctls": [{"name": "a", "value": "b"}]},
}
_TEMPLATE = {"metadata": {"labels": {"app": "a"}}, "spec": _POD_SPEC}
_SELECTOR = {
    "matchLabels": {"app": "a"},
    "matchExpressions": [{"key": "app", "operator": "Exists"}],
}
SEEDS: list[dict[str, Any]] = [
    {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}, "spec": _POD_SPEC},
    {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "d"},
        "spec": {
            "selector": _SELECTOR,
            "template": _TEMPLATE,
            "strategy": {"rollingUpdate": {"maxSurge": "25%", "maxUnavailable": 1}},
        },
    },
    {
        "apiVersion": "apps/v1",
        "kind": "StatefulSet",
        "metadata": {"name": "s"},
        "spec": {
            "selector": _SELECTOR,
            "serviceName": "s",
            "template": _TEMPLATE,
            "volumeClaimTemplates": [
                {
                    "metadata": {"name": "data"},
                    "spec": {
                        "accessModes": ["ReadWriteOnce"],
                        "resources": {"requests": {"storage": "1Gi"}},
                    },
                }
            ],
        },
    },
    {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "s"},
        "spec": {
            "selector": {"a": "b"},
            "ports": [{"port": 80, "targetPort": 8080, "name": "http", "nodePort": 30080}],
            "type": "NodePort",
        },
    },
    {
        "apiVersion": "v1",
        "kind": "PersistentVolume",
        "metadata": {"name": "pv"},
        "spec": {
            "capacity": {"storage": "1Gi"},
            "accessModes": ["ReadWriteOnce"],
            "local": {"path": "/tmp"},
            "claimRef": {"namespace": "default", "name": "c"},
            "nodeAffinity": {
                "required": {
                    "nodeSelectorTerms": [
                        {"matchExpressions": [{"key": "a", "operator": "In", "values": ["b"]}]}
                    ]
                }
            },
        },
    },
    {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {"name": "n"},
        "spec": {"podCIDR": "10.0.0.0/24", "taints": [{"key": "k", "effect": "NoSchedule"}]},
        "status": {
            "capacity": {"cpu": "1"},
            "addresses": [{"type": "InternalIP", "address": "1.2.3.4"}],
            "conditions": [{"type": "Ready", "status": "True"}],
        },
    },
    {
        "apiVersion": "v1",
        "kind": "Endpoints",
        "metadata": {"name": "e"},
        "subsets": [
            {
                "addresses": [{"ip": "10.0.0.1", "targetRef": {"kind": "Pod", "name": "p"}}],
                "ports": [{"port": 80}],
            }
        ],
    },
    {
        "apiVersion": "discovery.k8s.io/v1",
        "kind": "EndpointSlice",
        "metadata": {"name": "e"},
        "addressType": "IPv4",
        "endpoints": [{"addresses": ["10.0.0.1"], "conditions": {"ready": True}}],
        "ports": [{"port": 80, "name": "a", "protocol": "TCP"}],
    },
    {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {"name": "e"},
        "involvedObject": {"kind": "Pod", "name": "p"},
        "reason": "R",
        "message": "m",
        "type": "Normal",
        "source": {"component": "x"},
        "count": 1,
    },
    {
        "apiVersion": "storage.k8s.io/v1",
        "kind": "StorageClass",
        "metadata": {"name": "sc"},
        "provisioner": "p",
        "parameters": {"a": "b"},
        "allowedTopologies": [{"matchLabelExpressions": [{"key": "k", "values": ["v"]}]}],
    },
    {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "s", "labels": {"a": "b"}, "finalizers": ["x/y"]},
        "data": {"a": "YWJj"},
        "stringData": {"b": "c"},
    },
    {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": "c",
            "ownerReferences": [{"apiVersion": "v1", "kind": "X", "name": "x", "uid": "u"}],
        },
        "data": {"a": "b"},
    },
]
_ODD_VALUES = [None, [None], {}, [], "", "x", 0, -1, 2**31 - 1, True, [1], [""], [{}], {"a": None}]


def _spots(value: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [path] if path else []
    if isinstance(value, dict):
        for k, v in value.items():
            out += _spots(v, (*path, k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            out += _spots(v, (*path, i))
    return out


@pytest.mark.parametrize("seed", range(8))
def test_validators_never_raise_on_a_body_that_decodes(seed: int) -> None:
    """A seeded fuzz (the same cases every run): break 1-3 spots of a valid body with nulls
    and wrong-shaped values; whatever still decodes must end in a StatusError at worst."""
    rng = random.Random(seed)
    for _ in range(150):
        _break_and_check(rng)


def _break_and_check(rng: random.Random) -> None:
    seed = rng.choice(SEEDS)
    body = copy.deepcopy(seed)
    for _ in range(rng.randint(1, 3)):
        spots = [p for p in _spots(body) if p[0] not in ("apiVersion", "kind")]
        path = rng.choice(spots)
        target = body
        for k in path[:-1]:
            target = target[k]
        target[path[-1]] = copy.deepcopy(rng.choice(_ODD_VALUES))
    info = next(
        i for i in strategies() if (i.api_version, i.kind) == (seed["apiVersion"], seed["kind"])
    )
    try:
        obj, _ = decode_object(body, gvk=info.gvk, mode="Ignore")
    except BadRequest:
        return  # upstream's decoder refuses it too: a 400, not a crash
    s = strategies()[info]
    obj = copy.deepcopy(obj)
    if not isinstance(obj.get("metadata"), dict):
        obj["metadata"] = {}
    old = copy.deepcopy(seed)
    s.default(old)
    s.prepare_for_create(old)
    # each step may refuse with a StatusError; anything else would be a 500
    with contextlib.suppress(StatusError):
        s.default(obj)
        s.prepare_for_create(obj)
        s.validate(obj)
        s.row(obj, now=NOW)
        new = copy.deepcopy(obj)
        s.prepare_for_update(new, old)
        s.validate_update(new, old)


def _configmap(name: str, **metadata: Any) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, **metadata}}


async def test_create_with_a_resource_version_is_refused_by_storage_as_upstream(
    registry: Registry,
) -> None:
    store = registry.store(r.CONFIGMAPS)
    with pytest.raises(StatusError) as exc:
        await store.create(_configmap("rv", resourceVersion="5"), namespace="default", ctx=ctx())
    status = exc.value.to_status()
    assert "reason" not in status  # a plain Go error upstream: no reason at all
    assert (status["code"], status["message"]) == (
        500,
        "resourceVersion should not be set on objects to be created",
    )
    # validation comes first, as upstream's storage only sees valid objects
    with pytest.raises(Invalid):
        await store.create(
            _configmap("rv", resourceVersion="5", labels={"-bad": "x"}),
            namespace="default",
            ctx=ctx(),
        )
    # a dry run never reaches storage; "0" and unparsable versions are no version at all
    await store.create(
        _configmap("rv", resourceVersion="5"), namespace="default", ctx=ctx(dry_run=True)
    )
    for i, rv in enumerate(("0", "-1", "abc")):
        out = await store.create(
            _configmap(f"ok{i}", resourceVersion=rv), namespace="default", ctx=ctx()
        )
        assert out["metadata"]["resourceVersion"] not in ("0", "-1", "abc")


async def test_binding_replaces_an_unschedulable_pod_scheduled_condition(
    registry: Registry, clock: FakeClock
) -> None:
    pods = registry.store(r.PODS)
    body = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "p"},
        "spec": {"containers": [{"name": "c", "image": "busybox"}]},
    }
    created = await pods.create(body, namespace="default", ctx=ctx())
    unschedulable = {
        "type": "PodScheduled",
        "status": "False",
        "reason": "Unschedulable",
        "message": "0/1 nodes are available: 1 node(s) were unschedulable.",
        "lastProbeTime": None,
        "lastTransitionTime": "2025-01-01T10:00:00Z",
    }
    created["status"]["conditions"] = [unschedulable]
    await pods.update(created, namespace="default", name="p", ctx=ctx(), subresource="status")
    clock.advance(60)
    binding = {
        "apiVersion": "v1",
        "kind": "Binding",
        "metadata": {"name": "p"},
        "target": {"kind": "Node", "name": "node-1"},
    }
    await pods.create(binding, namespace="default", name="p", subresource="binding", ctx=ctx())
    got = await pods.get(namespace="default", name="p")
    assert got["status"]["conditions"] == [
        {
            "type": "PodScheduled",
            "status": "True",
            "lastProbeTime": None,
            "lastTransitionTime": "2025-01-01T10:01:00Z",
        }
    ]
