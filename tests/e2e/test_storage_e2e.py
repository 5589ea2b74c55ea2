"""Dynamic provisioning, expansion and reclaim through the real kubectl and ``kubeling up``.

The tutorial's ``14-dynamic-pvc.yaml`` names no class: the cluster's default class
``local-path`` (created at first start) provisions a directory under the data dir, the
claim binds, ``kubectl get pvc/pv`` print upstream's columns, growing the claim walks the
resize, shrinking and resizing in a class without expansion are refused with upstream's
texts, and deleting the claim removes the volume and its directory.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable
from typing import Any

import pytest

from tests.e2e.conftest import Kubeling
from tests.shared import TUTORIAL_DIR

pytestmark = pytest.mark.e2e

TUTORIAL = TUTORIAL_DIR / "14-dynamic-pvc.yaml"
DEADLINE = 30.0

DYNAMIC_PVC = """\
apiVersion: v1
kind: PersistentVolumeClaim
metadata:
  name: dynamic-claim
spec:
  accessModes:
    - ReadWriteOnce
  resources:
    requests:
      storage: 2Gi
"""


def poll(predicate: Callable[[], Any], what: str, timeout: float = DEADLINE) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


def get_json(k: Kubeling, *args: str) -> dict[str, Any] | None:
    res = k.kubectl("get", *args, "-o", "json")
    if res.returncode != 0:
        return None
    value: dict[str, Any] = json.loads(res.stdout)
    return value


def table(text: str) -> list[list[str]]:
    """``kubectl get`` output split on runs of two or more spaces (columns may hold one)."""
    return [re.split(r"\s{2,}", line.strip()) for line in text.strip().splitlines()]


def test_dynamic_claim_through_kubectl(kubeling_up: Kubeling) -> None:
    k = kubeling_up
    manifest = TUTORIAL.read_text() if TUTORIAL.exists() else DYNAMIC_PVC
    classes = table(k.ok("get", "storageclass"))
    assert classes[0] == [
        "NAME",
        "PROVISIONER",
        "RECLAIMPOLICY",
        "VOLUMEBINDINGMODE",
        "ALLOWVOLUMEEXPANSION",
        "AGE",
    ]
    assert classes[1][:5] == [
        "local-path (default)",
        "kubeling.io/local-path",
        "Delete",
        "Immediate",
        "true",
    ]

    assert k.ok("apply", "-f", "-", input=manifest).strip() == (
        "persistentvolumeclaim/dynamic-claim created"
    )

    def bound() -> dict[str, Any] | None:
        c = get_json(k, "pvc", "dynamic-claim")
        return c if c and c["status"].get("phase") == "Bound" else None

    claim = poll(bound, "claim Bound")
    uid = claim["metadata"]["uid"]
    pv_name = f"pvc-{uid}"
    assert claim["spec"]["storageClassName"] == "local-path"
    assert claim["spec"]["volumeName"] == pv_name
    # The directory lives on this node: the volume says so, so the scheduler keeps its pods here.
    node = k.ok("get", "nodes", "-o", "jsonpath={.items[0].metadata.name}").strip()
    affinity = get_json(k, "pv", pv_name)["spec"]["nodeAffinity"]["required"]
    assert affinity["nodeSelectorTerms"] == [
        {
            "matchExpressions": [
                {"key": "kubernetes.io/hostname", "operator": "In", "values": [node]}
            ]
        }
    ]

    rows = table(k.ok("get", "pvc"))
    assert rows[0] == [
        "NAME",
        "STATUS",
        "VOLUME",
        "CAPACITY",
        "ACCESS MODES",
        "STORAGECLASS",
        "VOLUMEATTRIBUTESCLASS",
        "AGE",
    ]
    assert rows[1][:7] == [
        "dynamic-claim",
        "Bound",
        pv_name,
        "2Gi",
        "RWO",
        "local-path",
        "<unset>",
    ]
    pv_rows = table(k.ok("get", "pv"))
    assert pv_rows[0][:7] == [
        "NAME",
        "CAPACITY",
        "ACCESS MODES",
        "RECLAIM POLICY",
        "STATUS",
        "CLAIM",
        "STORAGECLASS",
    ]
    assert pv_rows[1][:7] == [
        pv_name,
        "2Gi",
        "RWO",
        "Delete",
        "Bound",
        "default/dynamic-claim",
        "local-path",
    ]
    directory = k.data_dir / "storage" / f"{pv_name}_default_dynamic-claim"
    assert directory.is_dir()
    assert (directory.stat().st_mode & 0o777) == 0o777
    events = k.ok("get", "events", "--field-selector", "involvedObject.name=dynamic-claim")
    assert "ProvisioningSucceeded" in events
    assert f"Successfully provisioned volume {pv_name}" in events

    # Growing the claim: the resizer walks the states and the capacity follows.
    k.ok(
        "patch",
        "pvc",
        "dynamic-claim",
        "-p",
        '{"spec":{"resources":{"requests":{"storage":"3Gi"}}}}',
    )

    def grown() -> bool:
        c = get_json(k, "pvc", "dynamic-claim") or {}
        return (c.get("status") or {}).get("capacity", {}).get("storage") == "3Gi"

    poll(grown, "capacity 3Gi")
    pv = get_json(k, "pv", pv_name) or {}
    assert pv["spec"]["capacity"] == {"storage": "3Gi"}
    resize_events = k.ok("get", "events", "--field-selector", "involvedObject.name=dynamic-claim")
    assert "Resizing" in resize_events
    assert "FileSystemResizeRequired" in resize_events

    shrink = k.kubectl(
        "patch",
        "pvc",
        "dynamic-claim",
        "-p",
        '{"spec":{"resources":{"requests":{"storage":"1Gi"}}}}',
    )
    assert shrink.returncode != 0
    assert "spec.resources.requests.storage: Forbidden: field can not be less than" in shrink.stderr

    k.ok("delete", "pvc", "dynamic-claim", "--wait=true")
    poll(lambda: k.kubectl("get", "pv", pv_name).returncode != 0, "volume deleted")
    assert not directory.exists()


def test_resize_refused_by_a_class_without_expansion(kubeling_up: Kubeling) -> None:
    k = kubeling_up
    k.ok(
        "apply",
        "-f",
        "-",
        input="""\
apiVersion: storage.k8s.io/v1
kind: StorageClass
metadata: {name: fixed}
provisioner: kubeling.io/local-path
---
apiVersion: v1
kind: PersistentVolumeClaim
metadata: {name: data}
spec:
  storageClassName: fixed
  accessModes: [ReadWriteOnce]
  resources: {requests: {storage: 1Gi}}
""",
    )
    poll(
        lambda: (get_json(k, "pvc", "data") or {}).get("status", {}).get("phase") == "Bound",
        "claim Bound",
    )
    grow = '{"spec":{"resources":{"requests":{"storage":"2Gi"}}}}'
    refused = k.kubectl("patch", "pvc", "data", "-p", grow)
    assert refused.returncode == 1
    assert refused.stderr.strip() == (
        'Error from server (Forbidden): persistentvolumeclaims "data" is forbidden: only '
        "dynamically provisioned pvc can be resized and the storageclass that provisions the "
        "pvc must support resize"
    )
    k.ok("patch", "storageclass", "fixed", "-p", '{"allowVolumeExpansion":true}')
    assert k.ok("patch", "pvc", "data", "-p", grow).strip() == (
        "persistentvolumeclaim/data patched"
    )
    poll(
        lambda: (
            (get_json(k, "pvc", "data") or {}).get("status", {}).get("capacity")
            == {"storage": "2Gi"}
        ),
        "capacity 2Gi",
    )
