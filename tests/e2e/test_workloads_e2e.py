"""Deployments, ReplicaSets, garbage collection and namespaces through the real kubectl.

No node agent is assumed: ``PodReadier`` plays one by marking the pods of a selector Running
and Ready through the status subresource (``kubectl patch --subresource=status``), in a
thread, while kubectl waits. When an agent does run, it has marked them already and the
helper finds nothing to do.
"""

from __future__ import annotations

import json
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from tests.e2e.conftest import Kubeling

pytestmark = pytest.mark.e2e

WAIT = 60.0


def _ns(k: Kubeling, name: str) -> str:
    k.ok("create", "namespace", name)
    return name


def _pods(k: Kubeling, ns: str, selector: str) -> list[dict[str, object]]:
    out = k.ok("get", "pods", "-n", ns, "-l", selector, "-o", "json")
    items: list[dict[str, object]] = json.loads(out)["items"]
    return [p for p in items if not p["metadata"].get("deletionTimestamp")]  # type: ignore[union-attr]


def _ready(pod: dict[str, object]) -> bool:
    conditions = (pod.get("status") or {}).get("conditions") or []  # type: ignore[union-attr]
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)


def mark_ready(k: Kubeling, ns: str, selector: str) -> int:
    """Mark every not-ready pod of ``selector`` Running and Ready; how many it marked."""
    marked = 0
    now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    body = json.dumps(
        {
            "status": {
                "phase": "Running",
                "conditions": [
                    {"type": "Ready", "status": "True", "lastTransitionTime": now},
                    {"type": "ContainersReady", "status": "True", "lastTransitionTime": now},
                ],
            }
        }
    )
    for pod in _pods(k, ns, selector):
        if _ready(pod):
            continue
        name = pod["metadata"]["name"]  # type: ignore[index]
        result = k.kubectl(
            "patch", "pod", name, "-n", ns, "--subresource=status", "--type=merge", "-p", body
        )
        if result.returncode == 0:
            marked += 1
    return marked


@contextmanager
def pods_readied(k: Kubeling, ns: str, selector: str) -> Iterator[None]:
    """Keep marking new pods Ready in the background until the block ends."""
    stop = threading.Event()

    def loop() -> None:
        while not stop.is_set():
            mark_ready(k, ns, selector)
            stop.wait(0.3)

    worker = threading.Thread(target=loop, daemon=True)
    worker.start()
    try:
        yield
    finally:
        stop.set()
        worker.join(30)


def poll(predicate: object, *, within: float = WAIT, what: str = "") -> object:
    deadline = time.monotonic() + within
    while True:
        value = predicate()  # type: ignore[operator]
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        # Polling the cluster through kubectl is the point: there is no event to wait on.
        time.sleep(0.2)


def rollout_status(k: Kubeling, ns: str, name: str) -> subprocess.CompletedProcess[str]:
    return k.kubectl(
        "rollout", "status", f"deployment/{name}", "-n", ns, "--timeout=60s", timeout=90
    )


def test_create_deployment_rolls_out_and_kubectl_rollout_status_finishes(
    shared_kubeling: Kubeling,
) -> None:
    k = shared_kubeling
    ns = _ns(k, "wl-create")
    out = k.ok("create", "deployment", "web", "--image=nginx:1.27", "--replicas=2", "-n", ns)
    assert out.strip() == "deployment.apps/web created"
    with pods_readied(k, ns, "app=web"):
        result = rollout_status(k, ns, "web")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.strip().splitlines()
    assert lines[-1] == 'deployment "web" successfully rolled out'
    for line in lines[:-1]:
        assert line.startswith('Waiting for deployment "web" rollout to finish: ') or (
            line == "Waiting for deployment spec update to be observed..."
        ), line
    rs = json.loads(k.ok("get", "rs", "-n", ns, "-l", "app=web", "-o", "json"))["items"]
    assert len(rs) == 1
    pod_hash = rs[0]["metadata"]["labels"]["pod-template-hash"]
    assert rs[0]["metadata"]["name"] == f"web-{pod_hash}"
    assert rs[0]["metadata"]["ownerReferences"][0]["kind"] == "Deployment"
    pods = _pods(k, ns, "app=web")
    assert len(pods) == 2
    for pod in pods:
        assert pod["metadata"]["name"].startswith(f"web-{pod_hash}-")  # type: ignore[index]
    table = k.ok("get", "deployment", "web", "-n", ns, "--no-headers").split()
    assert table[:4] == ["web", "2/2", "2", "2"]
    # The default service account exists in the new namespace.
    assert k.ok("get", "serviceaccount", "default", "-n", ns, "-o", "name").strip() == (
        "serviceaccount/default"
    )
    described = k.ok("describe", "deployment", "web", "-n", ns)
    assert "NewReplicaSetAvailable" in described
    assert f"Scaled up replica set web-{pod_hash} from 0 to 2" in described


def test_scale_set_image_history_undo_and_restart(shared_kubeling: Kubeling) -> None:
    k = shared_kubeling
    ns = _ns(k, "wl-rollout")
    k.ok("create", "deployment", "web", "--image=nginx:1.27", "--replicas=1", "-n", ns)
    with pods_readied(k, ns, "app=web"):
        assert rollout_status(k, ns, "web").returncode == 0
        assert k.ok("scale", "deployment", "web", "--replicas=3", "-n", ns).strip() == (
            "deployment.apps/web scaled"
        )
        poll(lambda: len(_pods(k, ns, "app=web")) == 3, what="three pods")
        assert rollout_status(k, ns, "web").returncode == 0
        k.ok("set", "image", "deployment/web", "nginx=nginx:1.28", "-n", ns)
        done = rollout_status(k, ns, "web")
        assert done.returncode == 0, done.stderr
        assert done.stdout.strip().splitlines()[-1] == 'deployment "web" successfully rolled out'
        history = k.ok("rollout", "history", "deployment/web", "-n", ns)
        revisions = [line.split()[0] for line in history.splitlines()[2:] if line.strip()]
        assert revisions == ["1", "2"]
        undo = k.ok("rollout", "undo", "deployment/web", "-n", ns)
        assert undo.strip() == "deployment.apps/web rolled back"
        assert rollout_status(k, ns, "web").returncode == 0
        image = k.ok(
            "get",
            "deployment",
            "web",
            "-n",
            ns,
            "-o",
            "jsonpath={.spec.template.spec.containers[0].image}",
        )
        assert image == "nginx:1.27"
        history = k.ok("rollout", "history", "deployment/web", "-n", ns)
        revisions = [line.split()[0] for line in history.splitlines()[2:] if line.strip()]
        assert revisions == ["2", "3"]
        restart = k.ok("rollout", "restart", "deployment/web", "-n", ns)
        assert restart.strip() == "deployment.apps/web restarted"
        assert rollout_status(k, ns, "web").returncode == 0
    rs = json.loads(k.ok("get", "rs", "-n", ns, "-o", "json"))["items"]
    revisions = sorted(
        int(r["metadata"]["annotations"]["deployment.kubernetes.io/revision"]) for r in rs
    )
    assert revisions == [2, 3, 4]
    pods = _pods(k, ns, "app=web")
    assert len(pods) == 3


def test_delete_deployment_cascades_and_delete_namespace_completes(
    shared_kubeling: Kubeling,
) -> None:
    k = shared_kubeling
    ns = _ns(k, "wl-delete")
    k.ok("create", "deployment", "gone", "--image=nginx:1.27", "--replicas=2", "-n", ns)
    k.ok("create", "deployment", "kept", "--image=nginx:1.27", "--replicas=1", "-n", ns)
    poll(lambda: len(_pods(k, ns, "app=gone")) == 2, what="pods of gone")
    poll(lambda: len(_pods(k, ns, "app=kept")) == 1, what="pods of kept")
    assert k.ok("delete", "deployment", "gone", "-n", ns).strip() == (
        'deployment.apps "gone" deleted'
    )
    poll(
        lambda: (
            not _pods(k, ns, "app=gone")
            and not json.loads(k.ok("get", "rs", "-n", ns, "-l", "app=gone", "-o", "json"))["items"]
        ),
        what="replica sets and pods of the deleted deployment",
    )
    # Foreground: kubectl waits until the dependents and then the owner are gone.
    k.ok("create", "deployment", "fg", "--image=nginx:1.27", "--replicas=2", "-n", ns)
    poll(lambda: len(_pods(k, ns, "app=fg")) == 2, what="pods of fg")
    result = k.kubectl(
        "delete", "deployment", "fg", "-n", ns, "--cascade=foreground", "--timeout=60s", timeout=90
    )
    assert result.returncode == 0, result.stderr
    assert not _pods(k, ns, "app=fg")
    assert not json.loads(k.ok("get", "rs", "-n", ns, "-l", "app=fg", "-o", "json"))["items"]
    # Orphan: the replica set stays, without its owner reference.
    k.ok("delete", "deployment", "kept", "-n", ns, "--cascade=orphan")
    rs = json.loads(k.ok("get", "rs", "-n", ns, "-l", "app=kept", "-o", "json"))["items"]
    assert len(rs) == 1
    assert not rs[0]["metadata"].get("ownerReferences")
    # Deleting the namespace waits for its content and returns once it is gone.
    result = k.kubectl("delete", "namespace", ns, "--timeout=60s", timeout=90)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f'namespace "{ns}" deleted'
    gone = k.kubectl("get", "namespace", ns)
    assert gone.returncode != 0
    assert "NotFound" in gone.stderr


STUCK = """\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: stuck
  namespace: {ns}
spec:
  replicas: 1
  progressDeadlineSeconds: 1
  selector:
    matchLabels: {{app: stuck}}
  template:
    metadata:
      labels: {{app: stuck}}
    spec:
      nodeSelector: {{kubeling.test/no-such-node: "true"}}
      containers:
      - name: app
        image: nginx:1.27
"""


def test_rollout_status_reports_progress_deadline_exceeded(shared_kubeling: Kubeling) -> None:
    k = shared_kubeling
    ns = _ns(k, "wl-stuck")
    k.ok("apply", "-f", "-", input=STUCK.format(ns=ns))
    # The pod can never be scheduled (and nobody marks it Ready): the deadline passes and
    # kubectl says so.
    result = rollout_status(k, ns, "stuck")
    assert result.returncode == 1
    assert 'error: deployment "stuck" exceeded its progress deadline' in result.stderr
    described = k.ok("describe", "deployment", "stuck", "-n", ns)
    assert "ProgressDeadlineExceeded" in described
