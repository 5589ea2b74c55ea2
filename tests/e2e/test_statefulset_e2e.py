"""StatefulSets through the real kubectl: apply, ``rollout status``, ``scale``, claims kept.

No node agent is assumed: a background thread plays one, marking the set's pods Running and
Ready through the status subresource (``kubectl patch --subresource=status``) while kubectl
waits. Where an agent runs, it has readied them already and the thread finds nothing to do.
"""

from __future__ import annotations

import json
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest

from tests.e2e.conftest import Kubeling

pytestmark = pytest.mark.e2e

WAIT = 60.0

MANIFEST = """\
apiVersion: v1
kind: Service
metadata: {name: web}
spec:
  clusterIP: None
  selector: {app: web}
  ports: [{name: http, port: 80}]
---
apiVersion: apps/v1
kind: StatefulSet
metadata: {name: web}
spec:
  serviceName: web
  replicas: 2
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      # sleep as PID 1 ignores SIGTERM, so every replaced pod would wait out the default
      # 30 s grace period (as upstream); a rolling update and an undo replace four pods.
      terminationGracePeriodSeconds: 1
      containers:
      - name: c
        image: busybox:1.36
        command: ["sleep", "3600"]
        volumeMounts: [{name: www, mountPath: /data}]
  volumeClaimTemplates:
  - metadata: {name: www}
    spec:
      accessModes: ["ReadWriteOnce"]
      resources: {requests: {storage: 1Gi}}
"""


def _json(k: Kubeling, *args: str) -> Any:
    return json.loads(k.ok(*args, "-o", "json"))


def _live_pods(k: Kubeling, ns: str) -> list[dict[str, Any]]:
    items = _json(k, "get", "pods", "-n", ns, "-l", "app=web")["items"]
    return [p for p in items if not p["metadata"].get("deletionTimestamp")]


def _is_ready(pod: dict[str, Any]) -> bool:
    status = pod.get("status") or {}
    return status.get("phase") == "Running" and any(
        c.get("type") == "Ready" and c.get("status") == "True"
        for c in status.get("conditions") or []
    )


def _ready_all(k: Kubeling, ns: str) -> None:
    now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    body = json.dumps(
        {
            "status": {
                "phase": "Running",
                "conditions": [{"type": "Ready", "status": "True", "lastTransitionTime": now}],
            }
        }
    )
    for pod in _live_pods(k, ns):
        if not _is_ready(pod):
            k.kubectl(
                "patch",
                "pod",
                pod["metadata"]["name"],
                "-n",
                ns,
                "--subresource=status",
                "--type=merge",
                "-p",
                body,
            )


@contextmanager
def readied(k: Kubeling, ns: str) -> Iterator[None]:
    """Ready the set's pods in the background until the block ends."""
    stop = threading.Event()

    def loop() -> None:
        while not stop.is_set():
            try:
                _ready_all(k, ns)
            except AssertionError:
                pass  # one failed kubectl call; the next round tries again
            # The stand-in kubelet polls, as a real one's sync loop does.
            stop.wait(0.3)

    worker = threading.Thread(target=loop, daemon=True)
    worker.start()
    try:
        yield
    finally:
        stop.set()
        worker.join(WAIT)


def _until(check: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + WAIT
    while not check():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        # Polling kubectl: these states have no single event kubectl could wait on.
        time.sleep(0.2)


def _rollout_status(k: Kubeling, ns: str) -> subprocess.CompletedProcess[str]:
    return k.kubectl(
        "rollout", "status", "sts/web", "-n", ns, f"--timeout={int(WAIT)}s", timeout=WAIT + 10
    )


def test_statefulset_apply_rollout_status_and_scale(kubeling_up: Kubeling) -> None:
    k = kubeling_up
    ns = "sts-e2e"
    k.ok("create", "namespace", ns)
    out = k.ok("apply", "-n", ns, "-f", "-", input=MANIFEST)
    assert "statefulset.apps/web created" in out

    with readied(k, ns):
        done = _rollout_status(k, ns)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[-1] == (
        "partitioned roll out complete: 2 new pods have been updated..."
    )

    pods = {p["metadata"]["name"]: p for p in _live_pods(k, ns)}
    assert sorted(pods) == ["web-0", "web-1"]
    assert pods["web-1"]["spec"]["hostname"] == "web-1"
    assert pods["web-1"]["spec"]["subdomain"] == "web"
    assert pods["web-1"]["metadata"]["labels"]["apps.kubernetes.io/pod-index"] == "1"
    claims = _json(k, "get", "pvc", "-n", ns)["items"]
    assert sorted(c["metadata"]["name"] for c in claims) == ["www-web-0", "www-web-1"]

    sts = _json(k, "get", "sts", "web", "-n", ns)
    status = sts["status"]
    assert status["currentRevision"] == status["updateRevision"]
    assert status["readyReplicas"] == 2
    revisions = _json(k, "get", "controllerrevisions", "-n", ns)["items"]
    assert [r["metadata"]["name"] for r in revisions] == [status["updateRevision"]]

    events = k.ok(
        "get",
        "events",
        "-n",
        ns,
        "--field-selector",
        "reason=SuccessfulCreate",
        "-o",
        "jsonpath={range .items[*]}{.message}{'\\n'}{end}",
    )
    assert "create Claim www-web-0 Pod web-0 in StatefulSet web success" in events
    assert "create Pod web-1 in StatefulSet web successful" in events

    assert k.ok("scale", "sts", "web", "-n", ns, "--replicas=3").strip() == (
        "statefulset.apps/web scaled"
    )
    with readied(k, ns):
        done = _rollout_status(k, ns)
    assert done.returncode == 0, done.stderr
    assert "partitioned roll out complete: 3 new pods have been updated..." in done.stdout
    row = k.ok("get", "sts", "web", "-n", ns, "--no-headers").split()
    assert row[:2] == ["web", "3/3"]

    k.ok("scale", "sts", "web", "-n", ns, "--replicas=1")
    _until(
        lambda: [p["metadata"]["name"] for p in _live_pods(k, ns)] == ["web-0"],
        "the scale-down to web-0",
    )
    k.ok("wait", "--for=delete", "pod/web-1", "pod/web-2", "-n", ns, f"--timeout={int(WAIT)}s")
    claims = _json(k, "get", "pvc", "-n", ns)["items"]
    assert sorted(c["metadata"]["name"] for c in claims) == [
        "www-web-0",
        "www-web-1",
        "www-web-2",
    ], "claims outlive scaled-down pods by default"


def test_statefulset_when_scaled_delete_collects_claims(kubeling_up: Kubeling) -> None:
    """B33 with ``whenScaled: Delete``: claims of removed ordinals are garbage-collected, and
    a scale-up gets fresh ones."""
    k = kubeling_up
    ns = "sts-b33"
    k.ok("create", "namespace", ns)
    manifest = MANIFEST.replace(
        "  serviceName: web\n",
        "  serviceName: web\n"
        "  persistentVolumeClaimRetentionPolicy: {whenScaled: Delete, whenDeleted: Retain}\n",
    )
    k.ok("apply", "-n", ns, "-f", "-", input=manifest)
    with readied(k, ns):
        assert _rollout_status(k, ns).returncode == 0
    first = {
        c["metadata"]["name"]: c["metadata"]["uid"]
        for c in _json(k, "get", "pvc", "-n", ns)["items"]
    }
    assert sorted(first) == ["www-web-0", "www-web-1"]

    k.ok("scale", "sts", "web", "-n", ns, "--replicas=1")

    def collected() -> bool:
        names = [c["metadata"]["name"] for c in _json(k, "get", "pvc", "-n", ns)["items"]]
        return names == ["www-web-0"]

    _until(collected, "www-web-1 to be garbage-collected")

    k.ok("scale", "sts", "web", "-n", ns, "--replicas=2")
    with readied(k, ns):
        assert _rollout_status(k, ns).returncode == 0
    again = {
        c["metadata"]["name"]: c["metadata"]["uid"]
        for c in _json(k, "get", "pvc", "-n", ns)["items"]
    }
    assert again["www-web-0"] == first["www-web-0"]
    assert again["www-web-1"] != first["www-web-1"], "a fresh claim, not the collected one"

    k.ok("delete", "sts", "web", "-n", ns)
    _until(lambda: not _live_pods(k, ns), "the set's pods to go with it")
    left = sorted(c["metadata"]["name"] for c in _json(k, "get", "pvc", "-n", ns)["items"])
    assert left == ["www-web-0", "www-web-1"], "whenDeleted: Retain keeps every claim"


def test_statefulset_claim_templates_change_only_through_orphan_delete(
    kubeling_up: Kubeling,
) -> None:
    """B35: a bigger claim template is refused; the workaround (orphan delete, re-apply)
    keeps pods and claims, and only claims made later get the new size."""
    k = kubeling_up
    ns = "sts-b35"
    k.ok("create", "namespace", ns)
    k.ok("apply", "-n", ns, "-f", "-", input=MANIFEST)
    with readied(k, ns):
        assert _rollout_status(k, ns).returncode == 0
    bigger = MANIFEST.replace("storage: 1Gi", "storage: 2Gi")

    refused = k.kubectl("apply", "-n", ns, "-f", "-", input=bigger)
    assert refused.returncode != 0
    assert (
        "spec: Forbidden: updates to statefulset spec for fields other than 'replicas', "
        "'ordinals', 'template', 'updateStrategy', 'revisionHistoryLimit', "
        "'persistentVolumeClaimRetentionPolicy' and 'minReadySeconds' are forbidden"
    ) in refused.stderr

    pods_before = {p["metadata"]["name"]: p["metadata"]["uid"] for p in _live_pods(k, ns)}
    k.ok("delete", "sts", "web", "-n", ns, "--cascade=orphan")

    def orphaned() -> bool:
        return all(not p["metadata"].get("ownerReferences") for p in _live_pods(k, ns))

    _until(orphaned, "the pods to be orphaned")
    k.ok("apply", "-n", ns, "-f", "-", input=bigger)

    def adopted() -> bool:
        refs = [p["metadata"].get("ownerReferences") or [] for p in _live_pods(k, ns)]
        return len(refs) == 2 and all(r and r[0]["kind"] == "StatefulSet" for r in refs)

    _until(adopted, "the new set to adopt the pods")
    with readied(k, ns):
        assert _rollout_status(k, ns).returncode == 0
    assert {p["metadata"]["name"]: p["metadata"]["uid"] for p in _live_pods(k, ns)} == (
        pods_before
    ), "adopted as they were, not replaced"

    k.ok("scale", "sts", "web", "-n", ns, "--replicas=3")
    with readied(k, ns):
        assert _rollout_status(k, ns).returncode == 0
    sizes = {
        c["metadata"]["name"]: c["spec"]["resources"]["requests"]["storage"]
        for c in _json(k, "get", "pvc", "-n", ns)["items"]
    }
    assert sizes == {"www-web-0": "1Gi", "www-web-1": "1Gi", "www-web-2": "2Gi"}


def test_statefulset_set_image_history_and_undo(kubeling_up: Kubeling) -> None:
    k = kubeling_up
    ns = "sts-undo"
    k.ok("create", "namespace", ns)
    k.ok("apply", "-n", ns, "-f", "-", input=MANIFEST)
    with readied(k, ns):
        assert _rollout_status(k, ns).returncode == 0
        first = _json(k, "get", "sts", "web", "-n", ns)["status"]["updateRevision"]
        k.ok("set", "image", "sts/web", "c=busybox:1.37", "-n", ns)
        rolled = _rollout_status(k, ns)
        assert rolled.returncode == 0
        assert "Waiting for partitioned roll out to finish: 1 out of 2 new pods" in rolled.stdout
        history = k.ok("rollout", "history", "sts/web", "-n", ns).split()
        assert history[-4:] == ["1", "<none>", "2", "<none>"]

        assert k.ok("rollout", "undo", "sts/web", "-n", ns).strip() == (
            "statefulset.apps/web rolled back"
        )
        assert _rollout_status(k, ns).returncode == 0
    sts = _json(k, "get", "sts", "web", "-n", ns)
    assert sts["spec"]["template"]["spec"]["containers"][0]["image"] == "busybox:1.36"
    assert sts["status"]["currentRevision"] == sts["status"]["updateRevision"] == first
    numbers = {
        r["metadata"]["name"]: r["revision"]
        for r in _json(k, "get", "controllerrevisions", "-n", ns)["items"]
    }
    assert numbers[first] == 3, "the old revision is renumbered, not copied"
    assert len(numbers) == 2
    images = {p["spec"]["containers"][0]["image"] for p in _live_pods(k, ns)}
    assert images == {"busybox:1.36"}


def test_statefulset_when_deleted_delete_collects_claims_with_the_set(
    kubeling_up: Kubeling,
) -> None:
    k = kubeling_up
    ns = "sts-whendeleted"
    k.ok("create", "namespace", ns)
    manifest = MANIFEST.replace(
        "  serviceName: web\n",
        "  serviceName: web\n"
        "  persistentVolumeClaimRetentionPolicy: {whenScaled: Retain, whenDeleted: Delete}\n",
    )
    k.ok("apply", "-n", ns, "-f", "-", input=manifest)
    with readied(k, ns):
        assert _rollout_status(k, ns).returncode == 0
    owners = {
        c["metadata"]["name"]: [r["kind"] for r in c["metadata"].get("ownerReferences") or []]
        for c in _json(k, "get", "pvc", "-n", ns)["items"]
    }
    assert owners == {"www-web-0": ["StatefulSet"], "www-web-1": ["StatefulSet"]}

    k.ok("delete", "sts", "web", "-n", ns)
    _until(lambda: not _json(k, "get", "pvc", "-n", ns)["items"], "the claims to go with the set")
    assert not _live_pods(k, ns)


# B36 (a pod pinned to a cordoned node by its local volume) is covered end to end by
# tests/e2e/test_field_reports.py::test_b36_*, which registers a second Node through the API.
