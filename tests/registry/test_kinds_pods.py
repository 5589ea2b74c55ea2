"""Pods: defaults, create-time status, validation messages and update rules."""

from __future__ import annotations

from typing import Any

import pytest

from kubeling.machinery import resources as r
from tests.registry.test_kinds_support import create, tutorial, update


def pod(**spec: Any) -> dict[str, Any]:
    base: dict[str, Any] = {"containers": [{"name": "app", "image": "nginx:1.25"}]}
    base.update(spec)
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "namespace": "default"},
            "spec": base}  # fmt: skip


def test_pod_defaults_match_upstream() -> None:
    out, errs = create(r.PODS, pod(volumes=[{"name": "v"}]))
    assert errs == []
    spec = out["spec"]
    assert spec["restartPolicy"] == "Always"
    assert spec["dnsPolicy"] == "ClusterFirst"
    assert spec["terminationGracePeriodSeconds"] == 30
    assert spec["schedulerName"] == "default-scheduler"
    assert spec["securityContext"] == {}
    assert spec["enableServiceLinks"] is True
    assert spec["serviceAccountName"] == "default"
    assert {t["key"] for t in spec["tolerations"]} == {
        "node.kubernetes.io/not-ready",
        "node.kubernetes.io/unreachable",
    }
    c = spec["containers"][0]
    assert c["imagePullPolicy"] == "IfNotPresent"
    assert c["terminationMessagePath"] == "/dev/termination-log"
    assert c["terminationMessagePolicy"] == "File"
    assert spec["volumes"][0] == {"name": "v", "emptyDir": {}}
    assert out["status"] == {"phase": "Pending", "qosClass": "BestEffort"}


@pytest.mark.parametrize(
    ("image", "policy"),
    [
        pytest.param("nginx", "Always", id="untagged"),
        pytest.param("nginx:latest", "Always", id="latest"),
        pytest.param("registry:5000/nginx", "Always", id="port-not-tag"),
        pytest.param("nginx:1.25", "IfNotPresent", id="tagged"),
    ],
)
def test_pod_image_pull_policy_default(image: str, policy: str) -> None:
    out, _ = create(r.PODS, pod(containers=[{"name": "a", "image": image}]))
    assert out["spec"]["containers"][0]["imagePullPolicy"] == policy


def test_pod_container_defaults_ports_probes_and_requests() -> None:
    container = {
        "name": "a",
        "image": "x:1",
        "ports": [{"containerPort": 80}],
        "readinessProbe": {"httpGet": {"port": 80}},
        "resources": {"limits": {"cpu": "1", "memory": "1Gi"}},
    }
    out, errs = create(r.PODS, pod(containers=[container]))
    assert errs == []
    c = out["spec"]["containers"][0]
    assert c["ports"][0]["protocol"] == "TCP"
    assert c["readinessProbe"] == {
        "httpGet": {"port": 80, "path": "/", "scheme": "HTTP"},
        "timeoutSeconds": 1,
        "periodSeconds": 10,
        "successThreshold": 1,
        "failureThreshold": 3,
    }
    assert c["resources"]["requests"] == {"cpu": "1", "memory": "1Gi"}
    assert out["status"]["qosClass"] == "Guaranteed"


def test_pod_qos_burstable() -> None:
    c = {"name": "a", "image": "x:1", "resources": {"requests": {"cpu": "100m"}}}
    out, _ = create(r.PODS, pod(containers=[c]))
    assert out["status"]["qosClass"] == "Burstable"


def test_pod_volume_source_defaults() -> None:
    vols = [
        {"name": "s", "secret": {"secretName": "x"}},
        {"name": "c", "configMap": {"name": "x"}},
        {"name": "h", "hostPath": {"path": "/tmp"}},
    ]
    out, errs = create(r.PODS, pod(volumes=vols))
    assert errs == []
    assert out["spec"]["volumes"][0]["secret"]["defaultMode"] == 420
    assert out["spec"]["volumes"][1]["configMap"]["defaultMode"] == 420
    assert out["spec"]["volumes"][2]["hostPath"]["type"] == ""


def test_pod_requires_containers() -> None:
    _, errs = create(r.PODS, pod(containers=[]))
    assert errs == ["spec.containers: Required value"]


def test_pod_container_name_and_image_rules() -> None:
    _, errs = create(r.PODS, pod(containers=[{"name": "a", "image": "x"}, {"name": "a"}]))
    assert errs == [
        'spec.containers[1].name: Duplicate value: "a"',
        "spec.containers[1].image: Required value",
    ]


def test_pod_volume_mount_must_name_a_volume() -> None:
    c = {"name": "a", "image": "x:1", "volumeMounts": [{"name": "x", "mountPath": "/x"}]}
    _, errs = create(r.PODS, pod(containers=[c]))
    assert errs == ['spec.containers[0].volumeMounts[0].name: Not found: "x"']


def test_pod_volume_names_unique_and_one_source() -> None:
    vols = [
        {"name": "v", "emptyDir": {}},
        {"name": "v", "emptyDir": {}, "hostPath": {"path": "/tmp"}},
    ]
    _, errs = create(r.PODS, pod(volumes=vols))
    assert errs == [
        "spec.volumes[1].hostPath: Forbidden: may not specify more than 1 volume type",
        'spec.volumes[1].name: Duplicate value: "v"',
    ]


def test_pod_host_path_type_values() -> None:
    _, errs = create(
        r.PODS, pod(volumes=[{"name": "h", "hostPath": {"path": "/x", "type": "Dir"}}])
    )
    assert errs == [
        'spec.volumes[0].hostPath.type: Unsupported value: "Dir": supported values: "", '
        '"BlockDevice", "CharDevice", "Directory", "DirectoryOrCreate", "File", "FileOrCreate", '
        '"Socket"'
    ]


def test_pod_restart_policy_values() -> None:
    _, errs = create(r.PODS, pod(restartPolicy="Sometimes"))
    assert errs == [
        'spec.restartPolicy: Unsupported value: "Sometimes": supported values: "Always", '
        '"Never", "OnFailure"'
    ]


def test_pod_env_and_ports_validation() -> None:
    c = {
        "name": "a",
        "image": "x:1",
        "ports": [{"containerPort": 70000, "name": "HTTP"}],
        "env": [{"name": "A", "valueFrom": {"configMapKeyRef": {"name": "c", "key": "bad key"}}}],
    }
    _, errs = create(r.PODS, pod(containers=[c]))
    assert errs[0].startswith('spec.containers[0].ports[0].name: Invalid value: "HTTP": must')
    assert (
        "spec.containers[0].ports[0].containerPort: Invalid value: 70000: must be between 1 and "
        "65535, inclusive" in errs
    )
    assert errs[-1].startswith(
        'spec.containers[0].env[0].valueFrom.configMapKeyRef.key: Invalid value: "bad key": '
        "a valid config key"
    )


def test_pod_update_allows_image_change_only() -> None:
    old, errs = create(r.PODS, pod())
    assert errs == []
    new = {**old, "spec": {**old["spec"], "containers": [dict(old["spec"]["containers"][0])]}}
    new["spec"]["containers"][0]["image"] = "nginx:1.26"
    _, errs = update(r.PODS, new, old)
    assert errs == []
    new["spec"]["restartPolicy"] = "Never"
    _, errs = update(r.PODS, new, old)
    assert len(errs) == 1
    assert errs[0].startswith(
        "spec: Forbidden: pod updates may not change fields other than "
        "`spec.containers[*].image`,`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`"
    )


def test_pod_update_refuses_adding_containers() -> None:
    old, _ = create(r.PODS, pod())
    new = {**old, "spec": {**old["spec"], "containers": old["spec"]["containers"] * 2}}
    _, errs = update(r.PODS, new, old)
    assert "spec.containers: Forbidden: pod updates may not add or remove containers" in errs


@pytest.mark.parametrize(
    "manifest",
    [
        "02-emptydir.yaml",
        "03-hostpath-missing.yaml",
        "04-hostpath-create.yaml",
        "05-nfs.yaml",
        "06-env-pod.yaml",
        "07-cm-volume.yaml",
        "08-secret.yaml",
        "13-local-pv-pod.yaml",
        "16-missing-claim.yaml",
    ],
)
def test_tutorial_pods_are_valid(manifest: str) -> None:
    pods = [d for d in tutorial(manifest) if d["kind"] == "Pod"]
    assert pods
    for obj in pods:
        out, errs = create(r.PODS, obj)
        assert errs == [], (manifest, errs)
        assert out["status"]["phase"] == "Pending"


@pytest.mark.parametrize(
    ("spec", "status", "options", "period"),
    [
        pytest.param({"nodeName": "n1", "terminationGracePeriodSeconds": 30}, {}, {}, 30,
                     id="pod-default"),
        pytest.param({"nodeName": "n1", "terminationGracePeriodSeconds": 30}, {},
                     {"gracePeriodSeconds": 5}, 5, id="request-wins"),
        pytest.param({"terminationGracePeriodSeconds": 30}, {}, {}, 0, id="unscheduled"),
        pytest.param({"nodeName": "n1", "terminationGracePeriodSeconds": 30},
                     {"phase": "Succeeded"}, {}, 0, id="finished"),
        pytest.param({"nodeName": "n1"}, {}, {"gracePeriodSeconds": -3}, 1, id="negative"),
    ],
)  # fmt: skip
def test_pod_graceful_delete_period(
    spec: dict[str, Any], status: dict[str, Any], options: dict[str, Any], period: int
) -> None:
    from kubeling.registry.catalog import strategies

    obj = {"metadata": {"name": "p"}, "spec": spec, "status": status}
    assert strategies()[r.PODS].check_graceful_delete(obj, options) == period


def test_pod_host_network_ports_default_host_port() -> None:
    c = {"name": "a", "image": "x:1", "ports": [{"containerPort": 8080}]}
    out, errs = create(r.PODS, pod(hostNetwork=True, containers=[c]))
    assert errs == []
    assert out["spec"]["containers"][0]["ports"][0]["hostPort"] == 8080
