"""Deployment, ReplicaSet, StatefulSet and ControllerRevision rules."""

from __future__ import annotations

import copy
from typing import Any

from kubeling.machinery import resources as r
from tests.registry.test_kinds_support import create, tutorial, update

SELECTOR_MISMATCH = (
    'spec.template.metadata.labels: Invalid value: map[string]string{"app":"other"}: `selector` '
    "does not match template `labels`"
)


def workload(kind: str, **spec: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "selector": {"matchLabels": {"app": "web"}},
        "template": {
            "metadata": {"labels": {"app": "web"}},
            "spec": {"containers": [{"name": "web", "image": "nginx:1"}]},
        },
    }
    base.update(spec)
    return {"apiVersion": "apps/v1", "kind": kind,
            "metadata": {"name": "web", "namespace": "default"}, "spec": base}  # fmt: skip


def test_statefulset_defaults_from_tutorial() -> None:
    sts = next(d for d in tutorial("15-statefulset.yaml") if d["kind"] == "StatefulSet")
    out, errs = create(r.STATEFULSETS, sts)
    assert errs == []
    spec = out["spec"]
    assert spec["podManagementPolicy"] == "OrderedReady"
    assert spec["updateStrategy"] == {"type": "RollingUpdate", "rollingUpdate": {"partition": 0}}
    assert spec["revisionHistoryLimit"] == 10
    assert spec["persistentVolumeClaimRetentionPolicy"] == {
        "whenDeleted": "Retain",
        "whenScaled": "Retain",
    }
    assert spec["replicas"] == 3
    tmpl = spec["template"]["spec"]
    assert tmpl["restartPolicy"] == "Always"
    assert tmpl["containers"][0]["imagePullPolicy"] == "IfNotPresent"
    claim = spec["volumeClaimTemplates"][0]
    assert claim["spec"]["volumeMode"] == "Filesystem"
    assert claim["status"] == {"phase": "Pending"}
    assert "status" not in out


def test_statefulset_replicas_default_one() -> None:
    out, errs = create(r.STATEFULSETS, workload("StatefulSet"))
    assert errs == []
    assert out["spec"]["replicas"] == 1


def test_statefulset_selector_must_match_template() -> None:
    obj = workload("StatefulSet")
    obj["spec"]["template"]["metadata"]["labels"] = {"app": "other"}
    _, errs = create(r.STATEFULSETS, obj)
    assert errs == [SELECTOR_MISMATCH]


def test_statefulset_restart_policy_and_selector_required() -> None:
    obj = workload("StatefulSet")
    del obj["spec"]["selector"]
    obj["spec"]["template"]["spec"]["restartPolicy"] = "Never"
    _, errs = create(r.STATEFULSETS, obj)
    assert errs == [
        "spec.selector: Required value",
        'spec.template.spec.restartPolicy: Unsupported value: "Never": supported values: "Always"',
    ]


def test_statefulset_update_limits_mutable_fields() -> None:
    old, _ = create(r.STATEFULSETS, workload("StatefulSet", serviceName="web"))
    scaled = copy.deepcopy(old)
    scaled["spec"]["replicas"] = 5
    scaled["spec"]["template"]["spec"]["containers"][0]["image"] = "nginx:2"
    assert update(r.STATEFULSETS, scaled, old)[1] == []
    renamed = copy.deepcopy(old)
    renamed["spec"]["serviceName"] = "other"
    assert update(r.STATEFULSETS, renamed, old)[1] == [
        "spec: Forbidden: updates to statefulset spec for fields other than 'replicas', "
        "'ordinals', 'template', 'updateStrategy', 'revisionHistoryLimit', "
        "'persistentVolumeClaimRetentionPolicy' and 'minReadySeconds' are forbidden"
    ]


def test_deployment_defaults_from_tutorial() -> None:
    (dep,) = tutorial("01-deployment.yaml")
    out, errs = create(r.DEPLOYMENTS, dep)
    assert errs == []
    spec = out["spec"]
    assert spec["strategy"] == {
        "type": "RollingUpdate",
        "rollingUpdate": {"maxUnavailable": "25%", "maxSurge": "25%"},
    }
    assert spec["revisionHistoryLimit"] == 10
    assert spec["progressDeadlineSeconds"] == 600
    assert spec["template"]["spec"]["dnsPolicy"] == "ClusterFirst"


def test_deployment_validation_messages() -> None:
    obj = workload("Deployment", replicas=-1, selector={})
    obj["spec"]["strategy"] = {"type": "RollingUpdate",
                               "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 0}}  # fmt: skip
    _, errs = create(r.DEPLOYMENTS, obj)
    assert errs == [
        "spec.replicas: Invalid value: -1: must be greater than or equal to 0",
        "spec.selector: Invalid value: {}: empty selector is invalid for deployment",
        "spec.strategy.rollingUpdate.maxUnavailable: Invalid value: 0: may not be 0 when "
        "`maxSurge` is 0",
    ]


def test_deployment_template_pod_spec_checked() -> None:
    obj = workload("Deployment")
    obj["spec"]["template"]["spec"]["containers"][0]["volumeMounts"] = [
        {"name": "x", "mountPath": "/x"}
    ]
    _, errs = create(r.DEPLOYMENTS, obj)
    assert errs == ['spec.template.spec.containers[0].volumeMounts[0].name: Not found: "x"']


def test_selector_immutable_for_deployment_and_replicaset() -> None:
    for info, kind in ((r.DEPLOYMENTS, "Deployment"), (r.REPLICASETS, "ReplicaSet")):
        old, _ = create(info, workload(kind))
        new = copy.deepcopy(old)
        new["spec"]["selector"] = {"matchLabels": {"app": "web", "x": "y"}}
        new["spec"]["template"]["metadata"]["labels"]["x"] = "y"
        _, errs = update(info, new, old)
        assert errs == [
            'spec.selector: Invalid value: {"matchLabels":{"app":"web","x":"y"}}: field is '
            "immutable"
        ], kind


def test_replicaset_defaults() -> None:
    out, errs = create(r.REPLICASETS, workload("ReplicaSet"))
    assert errs == []
    assert out["spec"]["replicas"] == 1


def test_controllerrevision_data_required_and_immutable() -> None:
    _, errs = create(r.CONTROLLERREVISIONS, {"metadata": {"name": "c"}, "revision": 1})
    assert errs == ["data: Required value: data is mandatory"]
    old = {"metadata": {"name": "c"}, "revision": 1, "data": {"a": 1}}
    _, errs = update(r.CONTROLLERREVISIONS, {**old, "data": {"a": 2}}, old)
    assert errs == ['data: Invalid value: {"a":2}: field is immutable']


def test_active_deadline_forbidden_in_workload_templates() -> None:
    for info, kind in ((r.STATEFULSETS, "StatefulSet"), (r.DEPLOYMENTS, "Deployment")):
        obj = workload(kind)
        obj["spec"]["template"]["spec"]["activeDeadlineSeconds"] = 5
        _, errs = create(info, obj)
        owner = "StatefulSet" if kind == "StatefulSet" else "ReplicaSet"
        assert errs == [
            "spec.template.spec.activeDeadlineSeconds: Forbidden: activeDeadlineSeconds in "
            f"{owner} is not Supported"
        ], kind


def test_statefulset_policy_and_strategy_messages() -> None:
    obj = workload("StatefulSet", podManagementPolicy="Sometimes",
                   updateStrategy={"type": "Later"})  # fmt: skip
    _, errs = create(r.STATEFULSETS, obj)
    assert errs == [
        "spec.podManagementPolicy: Invalid value: \"Sometimes\": must be 'OrderedReady' or "
        "'Parallel'",
        'spec.updateStrategy: Invalid value: {"type":"Later"}: must be \'RollingUpdate\' or '
        "'OnDelete'",
    ]
    obj = workload("StatefulSet", updateStrategy={"type": "OnDelete", "rollingUpdate": {}})
    _, errs = create(r.STATEFULSETS, obj)
    assert errs == [
        "spec.updateStrategy.rollingUpdate: Invalid value: {}: only allowed for updateStrategy "
        "'RollingUpdate'"
    ]


def rc(**spec: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "template": {
            "metadata": {"labels": {"app": "web"}},
            "spec": {"containers": [{"name": "web", "image": "nginx:1"}]},
        }
    }
    base.update(spec)
    return {"apiVersion": "v1", "kind": "ReplicationController",
            "metadata": {"name": "web", "namespace": "default"}, "spec": base}  # fmt: skip


def test_replicationcontroller_defaults_selector_and_labels_from_template() -> None:
    out, errs = create(r.REPLICATIONCONTROLLERS, rc())
    assert errs == []
    assert out["spec"]["selector"] == {"app": "web"}
    assert out["metadata"]["labels"] == {"app": "web"}
    assert out["spec"]["replicas"] == 1
    assert out["spec"]["template"]["spec"]["restartPolicy"] == "Always"
    assert out["status"] == {"replicas": 0}


def test_replicationcontroller_validation_messages() -> None:
    obj = rc(replicas=-1, minReadySeconds=-2, selector={"app": "other"})
    obj["spec"]["template"]["spec"]["restartPolicy"] = "Never"
    obj["spec"]["template"]["spec"]["activeDeadlineSeconds"] = 5
    _, errs = create(r.REPLICATIONCONTROLLERS, obj)
    assert errs == [
        "spec.minReadySeconds: Invalid value: -2: must be greater than or equal to 0",
        "spec.replicas: Invalid value: -1: must be greater than or equal to 0",
        'spec.template.metadata.labels: Invalid value: map[string]string{"app":"web"}: '
        "`selector` does not match template `labels`",
        'spec.template.spec.restartPolicy: Unsupported value: "Never": supported values: "Always"',
        "spec.template.spec.activeDeadlineSeconds: Forbidden: activeDeadlineSeconds in "
        "ReplicationController is not Supported",
    ]
    _, errs = create(r.REPLICATIONCONTROLLERS, rc(template=None))
    assert errs == ["spec.selector: Required value", "spec.template: Required value"]


def test_replicationcontroller_selector_may_change() -> None:
    old, _ = create(r.REPLICATIONCONTROLLERS, rc())
    new = copy.deepcopy(old)
    new["spec"]["selector"] = {"app": "web", "x": "y"}
    new["spec"]["template"]["metadata"]["labels"]["x"] = "y"
    assert update(r.REPLICATIONCONTROLLERS, new, old)[1] == []


def test_daemonset_defaults_and_status() -> None:
    out, errs = create(r.DAEMONSETS, workload("DaemonSet"))
    assert errs == []
    assert out["spec"]["updateStrategy"] == {
        "type": "RollingUpdate",
        "rollingUpdate": {"maxUnavailable": 1, "maxSurge": 0},
    }
    assert out["spec"]["revisionHistoryLimit"] == 10
    assert out["status"] == {"currentNumberScheduled": 0, "numberMisscheduled": 0,
                             "desiredNumberScheduled": 0, "numberReady": 0}  # fmt: skip


def test_daemonset_validation_messages() -> None:
    obj = workload("DaemonSet", selector={}, minReadySeconds=-1)
    obj["spec"]["updateStrategy"] = {"type": "RollingUpdate",
                                     "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 0}}  # fmt: skip
    obj["spec"]["template"]["spec"]["activeDeadlineSeconds"] = 3
    _, errs = create(r.DAEMONSETS, obj)
    assert errs == [
        "spec.selector: Invalid value: {}: empty selector is invalid for daemonset",
        "spec.template.spec.activeDeadlineSeconds: Forbidden: activeDeadlineSeconds in DaemonSet "
        "is not Supported",
        "spec.minReadySeconds: Invalid value: -1: must be greater than or equal to 0",
        "spec.updateStrategy.rollingUpdate.maxUnavailable: Required value: cannot be 0 when "
        "maxSurge is 0",
    ]
    obj = workload("DaemonSet")
    obj["spec"]["updateStrategy"] = {"type": "RollingUpdate",
                                     "rollingUpdate": {"maxUnavailable": 1, "maxSurge": 1}}  # fmt: skip
    assert create(r.DAEMONSETS, obj)[1] == [
        "spec.updateStrategy.rollingUpdate.maxSurge: Invalid value: 1: may not be set when "
        "maxUnavailable is non-zero"
    ]
