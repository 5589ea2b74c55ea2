"""Table columns and cells as upstream v1.32's printers produce them."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from kubeling.machinery import resources as r
from kubeling.registry import printers as p
from kubeling.registry.catalog import strategies

NOW = datetime(2025, 1, 1, 12, 0, 0, tzinfo=UTC).timestamp()


def ts(seconds_ago: float) -> str:
    return datetime.fromtimestamp(NOW - seconds_ago, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def meta(name: str, *, ago: float = 300, **extra: Any) -> dict[str, Any]:
    return {"name": name, "namespace": "default", "creationTimestamp": ts(ago), **extra}


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        pytest.param(-5, "<invalid>", id="future"),
        pytest.param(-1, "0s", id="skew"),
        pytest.param(5, "5s", id="seconds"),
        pytest.param(119, "119s", id="under-two-minutes"),
        pytest.param(182, "3m2s", id="minutes-seconds"),
        pytest.param(600, "10m", id="ten-minutes"),
        pytest.param(179 * 60, "179m", id="under-three-hours"),
        pytest.param(5 * 3600, "5h", id="hours"),
        pytest.param(5 * 3600 + 120, "5h2m", id="hours-minutes"),
        pytest.param(30 * 3600, "30h", id="under-two-days"),
        pytest.param(3 * 86400, "3d", id="days"),
        pytest.param(3 * 86400 + 7200, "3d2h", id="days-hours"),
        pytest.param(100 * 86400, "100d", id="many-days"),
        pytest.param(3 * 365 * 86400 + 10 * 86400, "3y10d", id="years-days"),
        pytest.param(9 * 365 * 86400, "9y", id="years"),
    ],
)
def test_human_duration(seconds: float, text: str) -> None:
    assert p.human_duration(seconds) == text


def test_age_unknown_without_timestamp() -> None:
    assert p.age({"metadata": {"name": "x"}}, now=NOW) == "<unknown>"
    assert p.age({"metadata": meta("x", ago=182)}, now=NOW) == "3m2s"


def names(kind_info: Any) -> list[str]:
    return [c.name for c in strategies()[kind_info].columns()]


def wide(kind_info: Any) -> list[str]:
    return [c.name for c in strategies()[kind_info].columns() if c.priority == 1]


def test_column_sets_match_upstream() -> None:
    assert names(r.PODS) == [
        "Name", "Ready", "Status", "Restarts", "Age",
        "IP", "Node", "Nominated Node", "Readiness Gates",
    ]  # fmt: skip
    assert wide(r.PODS) == ["IP", "Node", "Nominated Node", "Readiness Gates"]
    assert names(r.PERSISTENTVOLUMECLAIMS) == [
        "Name", "Status", "Volume", "Capacity", "Access Modes", "StorageClass",
        "VolumeAttributesClass", "Age", "VolumeMode",
    ]  # fmt: skip
    assert names(r.PERSISTENTVOLUMES) == [
        "Name", "Capacity", "Access Modes", "Reclaim Policy", "Status", "Claim",
        "StorageClass", "VolumeAttributesClass", "Reason", "Age", "VolumeMode",
    ]  # fmt: skip
    assert names(r.STORAGECLASSES) == [
        "Name", "Provisioner", "ReclaimPolicy", "VolumeBindingMode",
        "AllowVolumeExpansion", "Age",
    ]  # fmt: skip
    assert names(r.CONFIGMAPS) == ["Name", "Data", "Age"]
    assert names(r.SECRETS) == ["Name", "Type", "Data", "Age"]
    assert names(r.SERVICES) == [
        "Name", "Type", "Cluster-IP", "External-IP", "Port(s)", "Age", "Selector",
    ]  # fmt: skip
    assert names(r.NAMESPACES) == ["Name", "Status", "Age"]
    assert names(r.EVENTS) == [
        "Last Seen", "Type", "Reason", "Object", "Subobject", "Source", "Message",
        "First Seen", "Count", "Name",
    ]  # fmt: skip
    assert names(r.DEPLOYMENTS) == [
        "Name", "Ready", "Up-to-date", "Available", "Age", "Containers", "Images", "Selector",
    ]  # fmt: skip
    assert names(r.STATEFULSETS) == ["Name", "Ready", "Age", "Containers", "Images"]
    assert wide(r.STATEFULSETS) == ["Containers", "Images"]
    assert names(r.CONTROLLERREVISIONS) == ["Name", "Controller", "Revision", "Age"]


def test_every_row_has_one_cell_per_column() -> None:
    for info, strategy in strategies().items():
        obj = {"apiVersion": info.api_version, "kind": info.kind, "metadata": meta("x")}
        row = strategy.row(obj, now=NOW)
        assert len(row) == len(strategy.columns()), info.kind


def pod(status: dict[str, Any], *, containers: int = 1, **metadata: Any) -> dict[str, Any]:
    return {
        "metadata": meta("web-0", **metadata),
        "spec": {"containers": [{"name": f"c{i}"} for i in range(containers)]},
        "status": status,
    }


def test_pod_running_ready_row() -> None:
    obj = pod(
        {
            "phase": "Running",
            "podIP": "10.0.0.7",
            "containerStatuses": [
                {"name": "c0", "ready": True, "restartCount": 0, "state": {"running": {}}}
            ],
        }
    )
    obj["spec"]["nodeName"] = "node-1"
    assert p.pod_row(obj, now=NOW) == [
        "web-0", "1/1", "Running", "0", "5m", "10.0.0.7", "node-1", "<none>", "<none>",
    ]  # fmt: skip


def test_pod_pending_container_creating() -> None:
    obj = pod(
        {
            "phase": "Pending",
            "containerStatuses": [
                {"name": "c0", "ready": False, "restartCount": 0,
                 "state": {"waiting": {"reason": "ContainerCreating"}}},
            ],
        }
    )  # fmt: skip
    row = p.pod_row(obj, now=NOW)
    assert row[1:4] == ["0/1", "ContainerCreating", "0"]
    assert row[5] == "<none>"


def test_pod_crash_loop_with_restart_age() -> None:
    obj = pod(
        {
            "phase": "Running",
            "containerStatuses": [
                {
                    "name": "c0",
                    "ready": False,
                    "restartCount": 2,
                    "state": {"waiting": {"reason": "CrashLoopBackOff"}},
                    "lastState": {"terminated": {"exitCode": 1, "finishedAt": ts(300)}},
                }
            ],
        }
    )
    assert p.pod_row(obj, now=NOW)[1:4] == ["0/1", "CrashLoopBackOff", "2 (5m ago)"]


def test_pod_completed_and_exit_code() -> None:
    done = pod(
        {"phase": "Succeeded",
         "containerStatuses": [{"name": "c0", "state": {"terminated": {"reason": "Completed"}}}]}
    )  # fmt: skip
    assert p.pod_row(done, now=NOW)[2] == "Completed"
    failed = pod(
        {"phase": "Failed",
         "containerStatuses": [{"name": "c0", "state": {"terminated": {"exitCode": 3}}}]}
    )  # fmt: skip
    assert p.pod_row(failed, now=NOW)[2] == "ExitCode:3"


def test_pod_terminating_when_deleted() -> None:
    obj = pod({"phase": "Running"}, deletionTimestamp=ts(1))
    assert p.pod_row(obj, now=NOW)[2] == "Terminating"
    done = pod({"phase": "Succeeded"}, deletionTimestamp=ts(1))
    assert p.pod_row(done, now=NOW)[2] == "Succeeded"


def test_pod_init_container_status() -> None:
    obj = pod({"phase": "Pending", "initContainerStatuses": [{"name": "i", "state": {}}]})
    obj["spec"]["initContainers"] = [{"name": "i"}]
    assert p.pod_row(obj, now=NOW)[2] == "Init:0/1"


def test_pod_readiness_gates_count() -> None:
    obj = pod({"phase": "Running", "conditions": [{"type": "g1", "status": "True"}]})
    obj["spec"]["readinessGates"] = [{"conditionType": "g1"}, {"conditionType": "g2"}]
    assert p.pod_row(obj, now=NOW)[8] == "1/2"


def test_pvc_rows_bound_and_pending() -> None:
    bound = {
        "metadata": meta("data"),
        "spec": {"volumeName": "pv-1", "storageClassName": "manual", "volumeMode": "Filesystem",
                 "resources": {"requests": {"storage": "1Gi"}}},
        "status": {"phase": "Bound", "accessModes": ["ReadWriteMany", "ReadWriteOnce"],
                   "capacity": {"storage": "1024Mi"}},
    }  # fmt: skip
    assert p.pvc_row(bound, now=NOW) == [
        "data", "Bound", "pv-1", "1Gi", "RWO,RWX", "manual", "<unset>", "5m", "Filesystem",
    ]  # fmt: skip
    pending = {"metadata": meta("p"), "spec": {}, "status": {"phase": "Pending"}}
    assert p.pvc_row(pending, now=NOW) == [
        "p", "Pending", "", "", "", "", "<unset>", "5m", "<unset>",
    ]  # fmt: skip


def test_pv_row_with_claim() -> None:
    pv = {
        "metadata": meta("my-pv1"),
        "spec": {"capacity": {"storage": "5Gi"}, "accessModes": ["ReadWriteMany"],
                 "persistentVolumeReclaimPolicy": "Retain", "volumeMode": "Filesystem",
                 "claimRef": {"namespace": "default", "name": "my-pvc"}},
        "status": {"phase": "Bound"},
    }  # fmt: skip
    assert p.pv_row(pv, now=NOW) == [
        "my-pv1", "5Gi", "RWX", "Retain", "Bound", "default/my-pvc", "", "<unset>", "", "5m",
        "Filesystem",
    ]  # fmt: skip


def test_storageclass_default_suffix() -> None:
    sc = {
        "metadata": meta(
            "local", annotations={"storageclass.kubernetes.io/is-default-class": "true"}
        ),
        "provisioner": "rancher.io/local-path",
        "volumeBindingMode": "WaitForFirstConsumer",
    }
    assert p.storageclass_row(sc, now=NOW) == [
        "local (default)", "rancher.io/local-path", "Delete", "WaitForFirstConsumer", False, "5m",
    ]  # fmt: skip


def test_config_and_secret_rows() -> None:
    cm = {"metadata": meta("c"), "data": {"a": "1"}, "binaryData": {"b": "AA=="}}
    assert p.configmap_row(cm, now=NOW) == ["c", 2, "5m"]
    secret = {"metadata": meta("s"), "type": "Opaque", "data": {"a": "MQ=="}}
    assert p.secret_row(secret, now=NOW) == ["s", "Opaque", 1, "5m"]


def test_service_rows() -> None:
    headless = {
        "metadata": meta("web"),
        "spec": {"type": "ClusterIP", "clusterIP": "None", "clusterIPs": ["None"],
                 "ports": [{"port": 80, "protocol": "TCP"}], "selector": {"app": "web"}},
    }  # fmt: skip
    assert p.service_row(headless, now=NOW) == [
        "web", "ClusterIP", "None", "<none>", "80/TCP", "5m", "app=web",
    ]  # fmt: skip
    node_port = {
        "metadata": meta("np"),
        "spec": {"type": "NodePort", "clusterIPs": ["10.96.0.9"],
                 "ports": [{"port": 80, "nodePort": 30080, "protocol": "TCP"}]},
    }  # fmt: skip
    assert p.service_row(node_port, now=NOW)[2:5] == ["10.96.0.9", "<none>", "80:30080/TCP"]
    lb = {"metadata": meta("lb"), "spec": {"type": "LoadBalancer", "ports": []}}
    assert p.service_row(lb, now=NOW)[2:5] == ["<none>", "<pending>", "<none>"]


def test_endpoints_formatting_with_more() -> None:
    ep = {
        "metadata": meta("web"),
        "subsets": [
            {"addresses": [{"ip": f"10.0.0.{i}"} for i in range(5)], "ports": [{"port": 80}]}
        ],
    }
    assert p.endpoints_row(ep, now=NOW)[1] == "10.0.0.0:80,10.0.0.1:80,10.0.0.2:80 + 2 more..."
    headless = {"metadata": meta("h"), "subsets": [{"addresses": [{"ip": "10.0.0.1"}]}]}
    assert p.endpoints_row(headless, now=NOW)[1] == "10.0.0.1"
    assert p.endpoints_row({"metadata": meta("e")}, now=NOW)[1] == "<none>"


def test_event_row_core_and_events_v1() -> None:
    ev = {
        "apiVersion": "v1",
        "metadata": meta("web-0.1"),
        "involvedObject": {"kind": "Pod", "name": "web-0", "fieldPath": "spec.containers{web}"},
        "reason": "Pulled",
        "type": "Normal",
        "message": " pulled \n",
        "firstTimestamp": ts(600),
        "lastTimestamp": ts(60),
        "count": 3,
        "source": {"component": "kubelet", "host": "node-1"},
    }
    assert p.event_row(ev, now=NOW) == [
        "60s", "Normal", "Pulled", "pod/web-0", "spec.containers{web}", "kubelet, node-1",
        "pulled", "10m", 3, "web-0.1",
    ]  # fmt: skip
    v1 = {
        "apiVersion": "events.k8s.io/v1",
        "metadata": meta("x"),
        "regarding": {"kind": "PersistentVolumeClaim", "name": "data"},
        "note": "waiting",
        "eventTime": "2025-01-01T11:59:00.000000Z",
        "reportingController": "pv-controller",
        "type": "Normal",
        "reason": "WaitForFirstConsumer",
    }
    row = p.event_row(v1, now=NOW)
    assert row[0] == "60s" and row[3] == "persistentvolumeclaim/data"
    assert row[5] == "pv-controller" and row[8] == 1


def test_workload_rows() -> None:
    template = {"spec": {"containers": [{"name": "web", "image": "nginx:1"},
                                        {"name": "side", "image": "busybox"}]}}  # fmt: skip
    dep = {
        "metadata": meta("d"),
        "spec": {"replicas": 3, "selector": {"matchLabels": {"app": "d"}}, "template": template},
        "status": {"readyReplicas": 2, "updatedReplicas": 3, "availableReplicas": 2},
    }
    assert p.deployment_row(dep, now=NOW) == [
        "d", "2/3", 3, 2, "5m", "web,side", "nginx:1,busybox", "app=d",
    ]  # fmt: skip
    sts = {"metadata": meta("web"), "spec": {"replicas": 3, "template": template}, "status": {}}
    assert p.statefulset_row(sts, now=NOW) == ["web", "0/3", "5m", "web,side", "nginx:1,busybox"]
    cr = {
        "metadata": meta(
            "web-5d9",
            ownerReferences=[{"apiVersion": "apps/v1", "kind": "StatefulSet", "name": "web",
                              "controller": True}],
        ),
        "revision": 2,
    }  # fmt: skip
    assert p.controllerrevision_row(cr, now=NOW) == ["web-5d9", "statefulset.apps/web", 2, "5m"]


def test_node_row_roles_and_status() -> None:
    node = {
        "metadata": meta("n1", labels={"node-role.kubernetes.io/control-plane": ""}),
        "spec": {"unschedulable": True},
        "status": {
            "conditions": [{"type": "Ready", "status": "True"}],
            "addresses": [{"type": "InternalIP", "address": "127.0.0.1"}],
            "nodeInfo": {"kubeletVersion": "v1.32.0"},
        },
    }
    assert p.node_row(node, now=NOW)[:6] == [
        "n1", "Ready,SchedulingDisabled", "control-plane", "5m", "v1.32.0", "127.0.0.1",
    ]  # fmt: skip


def test_build_table_include_object_modes() -> None:
    strategy = strategies()[r.CONFIGMAPS]
    cm = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta("c", uid="u1"), "data": {}}
    table = p.build_table(strategy, [cm], now=NOW, list_meta={"resourceVersion": "7"})
    assert table["kind"] == "Table" and table["apiVersion"] == "meta.k8s.io/v1"
    assert table["metadata"] == {"resourceVersion": "7"}
    assert [c["name"] for c in table["columnDefinitions"]] == ["Name", "Data", "Age"]
    assert table["rows"][0]["cells"] == ["c", 0, "5m"]
    assert table["rows"][0]["object"] == {
        "kind": "PartialObjectMetadata",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": cm["metadata"],
    }
    full = p.build_table(strategy, [cm], now=NOW, include_object="Object", list_meta={})
    assert full["rows"][0]["object"] is cm
    bare = p.build_table(strategy, [cm], now=NOW, include_object="None", list_meta={})
    assert "object" not in bare["rows"][0]


def test_pod_sidecar_counts_as_ready_container_and_init_restarts_drop() -> None:
    obj = pod(
        {
            "phase": "Running",
            "podIPs": [{"ip": "10.0.0.9"}],
            "conditions": [{"type": "Initialized", "status": "True"}],
            "initContainerStatuses": [
                {"name": "setup", "restartCount": 4, "state": {"terminated": {"exitCode": 0}}},
                {"name": "proxy", "restartCount": 1, "started": True, "ready": True,
                 "state": {"running": {}},
                 "lastState": {"terminated": {"exitCode": 1, "finishedAt": ts(120)}}},
            ],
            "containerStatuses": [
                {"name": "c0", "ready": True, "restartCount": 0, "state": {"running": {}}}
            ],
        }
    )  # fmt: skip
    obj["spec"]["initContainers"] = [
        {"name": "setup"},
        {"name": "proxy", "restartPolicy": "Always"},
    ]
    row = p.pod_row(obj, now=NOW)
    assert row[1:4] == ["2/2", "Running", "1 (2m ago)"]
    assert row[5] == "10.0.0.9"


def test_pvc_volume_attributes_class_unset_only_when_absent() -> None:
    claim = {"metadata": meta("c"), "spec": {"volumeAttributesClassName": "gold"}, "status": {}}
    assert p.pvc_row(claim, now=NOW)[6] == "gold"
    assert p.pvc_row({"metadata": meta("c"), "spec": {}}, now=NOW)[6] == "<unset>"


def test_replicaset_empty_selector_prints_none() -> None:
    rs = {"metadata": meta("rs"), "spec": {"replicas": 1}, "status": {}}
    assert p.replicaset_row(rs, now=NOW) == ["rs", 1, 0, 0, "5m", "", "", "<none>"]


def test_event_row_events_v1_list_item_without_type_meta() -> None:
    item = {"metadata": meta("x"), "regarding": {"kind": "Pod", "name": "p"}, "note": "hi",
            "deprecatedCount": 2, "type": "Normal", "reason": "R",
            "deprecatedLastTimestamp": ts(30), "deprecatedFirstTimestamp": ts(90)}  # fmt: skip
    row = p.event_row(item, now=NOW)
    assert row[:4] == ["30s", "Normal", "R", "pod/p"]
    assert row[6:9] == ["hi", "90s", 2]


# upstream v1.32 printers.go declares these columns "integer"; every other column of the
# kinds kubeling serves is "string" (ConfigMap/Secret DATA, Event COUNT, Deployment
# UP-TO-DATE and AVAILABLE and ControllerRevision REVISION included, integer cells and all).
_UPSTREAM_INTEGER_COLUMNS = {
    (plural, name)
    for plural in ("replicasets", "replicationcontrollers")
    for name in ("Desired", "Current", "Ready")
}.union(("daemonsets", name) for name in ("Up-to-date", "Available", "Desired",
                                         "Current", "Ready"))  # fmt: skip


@pytest.mark.parametrize("info", r.ALL, ids=lambda i: f"{i.group or 'core'}-{i.plural}")
def test_column_types_are_upstreams(info: r.ResourceInfo) -> None:
    from kubeling.registry.catalog import strategy_for

    columns = strategy_for(info).columns()
    for c in columns:
        want = "integer" if (info.plural, c.name) in _UPSTREAM_INTEGER_COLUMNS else "string"
        assert c.type == want, (info.plural, c.name)


def test_data_and_count_cells_are_integers_as_upstream() -> None:
    cm = {"metadata": meta("c"), "data": {"a": "1"}, "binaryData": {"b": "AA=="}}
    assert p.configmap_row(cm, now=NOW)[1] == 2
    secret = {"metadata": meta("s"), "type": "Opaque", "data": {"a": "MQ=="}}
    assert p.secret_row(secret, now=NOW)[2] == 1


def test_replicationcontroller_row_prints_the_selector_map() -> None:
    rc = {"metadata": meta("rc"), "spec": {"replicas": 2, "selector": {"b": "2", "a": "1"},
          "template": {"spec": {"containers": [{"name": "c", "image": "i"}]}}},
          "status": {"replicas": 1, "readyReplicas": 1}}  # fmt: skip
    assert p.replicationcontroller_row(rc, now=NOW) == ["rc", 2, 1, 1, "5m", "c", "i", "a=1,b=2"]


def test_daemonset_row() -> None:
    ds = {"metadata": meta("ds"), "spec": {"selector": {"matchLabels": {"app": "d"}},
          "template": {"spec": {"nodeSelector": {"os": "linux"},
                                "containers": [{"name": "c", "image": "i"}]}}},
          "status": {"desiredNumberScheduled": 1, "numberReady": 1}}  # fmt: skip
    assert p.daemonset_row(ds, now=NOW) == ["ds", 1, 0, 1, 0, 0, "os=linux", "5m", "c", "i",
                                            "app=d"]  # fmt: skip
