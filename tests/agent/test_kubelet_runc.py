"""The node agent with real runc containers: exec probes and an agent restart.

Root and runc only (skipped with the reason otherwise). Each test runs a ``Kubelet`` on a
private bridge and /24 against an in-memory API, and checks afterwards that no mount,
container, namespace or bridge is left.
"""

from __future__ import annotations

import contextlib
import inspect
import json
import subprocess
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from kubeling.agent import mounts
from kubeling.agent.kubelet import Kubelet
from kubeling.agent.network import BridgeNetwork
from kubeling.client.local import LocalClient
from kubeling.machinery.errors import NotFound
from kubeling.machinery.resources import PODS
from kubeling.machinery.types import Obj
from kubeling.registry.registry import Registry
from kubeling.storage.memory import MemoryBackend
from tests.agent.conftest import (
    assert_nothing_left,
    netns_names,
    requires_root,
    requires_runc,
    test_network,
)
from tests.agent.test_kubelet import wait_until

pytestmark = [pytest.mark.root]
NODE = "node-r"


@dataclass
class Env:
    client: LocalClient
    data_dir: Path
    network: BridgeNetwork
    uids: set[str]

    def kubelet(self) -> Kubelet:
        return Kubelet(
            self.client,
            node_name=NODE,
            data_dir=self.data_dir,
            runtime="runc",
            backoff_base=0.1,
            bridge=self.network.bridge,
            pod_cidr=str(self.network.subnet),
            shutdown_grace=1,
        )

    async def create_pod(self, name: str, container: Obj, **spec: Any) -> Obj:
        body = {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": name, "namespace": "default"},
            "spec": {
                "nodeName": NODE,
                "automountServiceAccountToken": False,
                "terminationGracePeriodSeconds": 1,
                "containers": [{"name": "c", "image": "busybox:1.36", **container}],
                **spec,
            },
        }
        created = await self.client.create(PODS, body, namespace="default")
        self.uids.add(created["metadata"]["uid"])
        return created

    async def container(self, name: str) -> Obj:
        pod = await self.client.get(PODS, name=name, namespace="default")
        return ((pod.get("status") or {}).get("containerStatuses") or [{}])[0]


@pytest.fixture
async def env(tmp_path: Path) -> AsyncIterator[Env]:
    backend = MemoryBackend()
    await backend.start()
    registry = Registry.open(backend=backend)
    if inspect.isawaitable(registry):
        registry = await registry
    await registry.bootstrap()
    data_dir = tmp_path / "agent"
    network = test_network(data_dir)
    before = netns_names()
    env = Env(client=LocalClient(registry), data_dir=data_dir, network=network, uids=set())
    try:
        yield env
    finally:
        # An agent stop keeps the directories of pods still bound (nothing mounted in them).
        bound = {p["metadata"]["uid"] for p in (await env.client.list(PODS))["items"]}
        assert_nothing_left(data_dir, network, before, pod_uids=env.uids, kept_pod_dirs=bound)
        await backend.close()


async def crash(k: Kubelet) -> None:
    """Stop the agent's tasks as a killed process would: containers and mounts stay."""
    for t in k._tasks:
        t.cancel()
    await k.informers.stop()
    for w in list(k.workers.values()):
        await w.cancel()
    k.workers.clear()
    if k.server is not None:
        await k.server.stop()  # type: ignore[attr-defined]
    await k.recorder.close()
    k._started = False


def runc_pid(data_dir: Path, cid: str) -> int:
    out = subprocess.run(
        ["runc", "--root", str(data_dir / "runc" / "root"), "state", cid],
        capture_output=True,
        text=True,
    )
    return int(json.loads(out.stdout)["pid"]) if out.returncode == 0 else 0


@requires_root
@requires_runc
async def test_restarted_agent_adopts_running_containers_and_removes_unbound_pods(env: Env) -> None:
    first = env.kubelet()
    await first.start()
    try:
        kept = await env.create_pod("kept", {"command": ["sleep", "3600"]})
        gone = await env.create_pod("gone", {"command": ["sleep", "3600"]})

        async def both_running() -> bool:
            states = [await env.container(n) for n in ("kept", "gone")]
            return all("running" in (s.get("state") or {}) for s in states)

        await wait_until(both_running, 20, what="both pods running")
        kept_cid = f"{kept['metadata']['uid']}_c"
        pid = runc_pid(env.data_dir, kept_cid)
        assert pid
    except BaseException:
        await first.stop()
        raise
    await crash(first)
    # While no agent runs, one pod is force-deleted: nobody is there to stop it.
    await env.client.delete(PODS, name="gone", namespace="default", grace_period_seconds=0)
    second = env.kubelet()
    await second.start()
    try:
        assert runc_pid(env.data_dir, kept_cid) == pid  # the same process, adopted
        assert not (env.data_dir / "pods" / gone["metadata"]["uid"]).exists()
        assert runc_pid(env.data_dir, f"{gone['metadata']['uid']}_c") == 0

        async def still_running() -> bool:
            cs = await env.container("kept")
            return "running" in (cs.get("state") or {}) and cs.get("restartCount") == 0

        await wait_until(still_running, 10, what="the adopted container reported running")
        await env.client.delete(PODS, name="kept", namespace="default")

        async def deleted() -> bool:
            try:
                await env.client.get(PODS, name="kept", namespace="default")
            except NotFound:
                return True
            return False

        await wait_until(deleted, 20, what="the adopted pod deleted")
        assert runc_pid(env.data_dir, kept_cid) == 0
    finally:
        await second.stop()


@requires_root
@requires_runc
async def test_exec_readiness_and_liveness_probes_run_in_the_container(env: Env) -> None:
    k = env.kubelet()
    await k.start()
    try:
        readiness = {
            "exec": {"command": ["cat", "/tmp/ready"]},
            "periodSeconds": 1,
            "failureThreshold": 1,
        }
        liveness = {
            "exec": {"command": ["test", "!", "-e", "/tmp/die"]},
            "periodSeconds": 1,
            "failureThreshold": 1,
        }
        await env.create_pod(
            "probed",
            {"command": ["sleep", "3600"], "readinessProbe": readiness, "livenessProbe": liveness},
        )

        async def state(ready: bool) -> bool:
            cs = await env.container("probed")
            return cs.get("ready") is ready and "running" in (cs.get("state") or {})

        await wait_until(lambda: state(False), 20, what="running, not ready")
        worker = next(iter(k.workers.values()))
        assert worker.sandbox is not None

        async def run(*argv: str) -> None:
            assert worker.sandbox is not None
            session = await worker.sandbox.exec("c", list(argv))
            await session.close_stdin()
            with contextlib.suppress(Exception):
                while await session.read_stdout():
                    pass
            assert await session.wait() == 0
            session.close()

        await run("sh", "-c", "echo ok > /tmp/ready")
        await wait_until(lambda: state(True), 10, what="ready after the file appears")
        await run("touch", "/tmp/die")

        async def restarted() -> bool:
            return int((await env.container("probed")).get("restartCount", 0)) >= 1

        await wait_until(restarted, 20, what="a restart from the liveness probe")
    finally:
        await k.stop()


@requires_root
@requires_runc
async def test_http_readiness_probe_reaches_the_pod_address(env: Env) -> None:
    k = env.kubelet()
    await k.start()
    try:
        probe = {"httpGet": {"path": "/", "port": "web"}, "periodSeconds": 1, "failureThreshold": 1}
        # python3 comes from the node's root filesystem (the image is not imported).
        await env.create_pod(
            "served",
            {
                "command": ["python3", "-m", "http.server", "8080", "--directory", "/tmp"],
                "ports": [{"name": "web", "containerPort": 8080}],
                "readinessProbe": probe,
            },
        )

        async def ready() -> bool:
            return bool((await env.container("served")).get("ready"))

        await wait_until(ready, 30, what="ready through the pod's own address")
        pod = await env.client.get(PODS, name="served", namespace="default")
        assert pod["status"]["podIP"].startswith(str(env.network.subnet).rsplit(".", 1)[0])
    finally:
        await k.stop()


@requires_root
@requires_runc
@pytest.mark.parametrize(
    ("container", "message"),
    [
        pytest.param(
            {"command": ["sh", "-c", "printf written > /dev/termination-log; exit 1"]},
            "written",
            id="termination-log",
        ),
        pytest.param(
            {
                "command": ["sh", "-c", "echo boom; exit 1"],
                "terminationMessagePolicy": "FallbackToLogsOnError",
            },
            "boom\n",
            id="fallback-to-logs",
        ),
    ],
)
async def test_termination_message_reaches_the_status(
    env: Env, container: Obj, message: str
) -> None:
    k = env.kubelet()
    await k.start()
    try:
        await env.create_pod("msg", container, restartPolicy="Never")

        async def terminated() -> Obj | None:
            t: Obj | None = ((await env.container("msg")).get("state") or {}).get("terminated")
            return t

        term = await wait_until(terminated, 20, what="the container to end")
        assert (term["exitCode"], term["reason"]) == (1, "Error")
        assert term["message"] == message
    finally:
        await k.stop()


@requires_root
@requires_runc
async def test_pre_stop_runs_before_the_container_is_stopped(env: Env, tmp_path: Path) -> None:
    shared = tmp_path / "shared"
    shared.mkdir()
    k = env.kubelet()
    await k.start()
    try:
        await env.create_pod(
            "hooked",
            {
                "command": ["sleep", "3600"],
                "lifecycle": {"preStop": {"exec": {"command": ["sh", "-c", "echo bye > /out/x"]}}},
                "volumeMounts": [{"name": "out", "mountPath": "/out"}],
            },
            volumes=[{"name": "out", "hostPath": {"path": str(shared)}}],
            terminationGracePeriodSeconds=5,
        )

        async def running() -> bool:
            return "running" in ((await env.container("hooked")).get("state") or {})

        await wait_until(running, 20, what="running")
        await env.client.delete(PODS, name="hooked", namespace="default")

        async def deleted() -> bool:
            try:
                await env.client.get(PODS, name="hooked", namespace="default")
            except NotFound:
                return True
            return False

        await wait_until(deleted, 20, what="deleted")
        assert (shared / "x").read_text() == "bye\n"
    finally:
        await k.stop()


@requires_root
@requires_runc
async def test_failed_post_start_hook_kills_the_container(env: Env) -> None:
    k = env.kubelet()
    await k.start()
    try:
        await env.create_pod(
            "post",
            {
                "command": ["sleep", "3600"],
                "lifecycle": {"postStart": {"exec": {"command": ["sh", "-c", "exit 1"]}}},
            },
        )

        async def restarted() -> bool:
            return int((await env.container("post")).get("restartCount", 0)) >= 1

        await wait_until(restarted, 30, what="a restart after the failed hook")
        await k.recorder.flush()
        from kubeling.machinery.resources import EVENTS

        events = (await env.client.list(EVENTS, namespace="default"))["items"]
        assert ("FailedPostStartHook", "PostStartHook failed") in {
            (e["reason"], e["message"]) for e in events
        }
    finally:
        await k.stop()


@requires_root
@requires_runc
async def test_container_without_command_waits_and_ends_at_sigterm(env: Env) -> None:
    k = env.kubelet()
    await k.start()
    try:
        await env.create_pod("idle", {}, terminationGracePeriodSeconds=60)

        async def running() -> bool:
            return "running" in ((await env.container("idle")).get("state") or {})

        await wait_until(running, 20, what="the placeholder running")
        await env.client.delete(PODS, name="idle", namespace="default")

        async def deleted() -> bool:
            try:
                await env.client.get(PODS, name="idle", namespace="default")
            except NotFound:
                return True
            return False

        # Well inside the 60 s grace period: the placeholder honours SIGTERM.
        await wait_until(deleted, 20, what="the pod gone before its grace period ran out")
    finally:
        await k.stop()


async def run_in(k: Kubelet, pod: str, *argv: str) -> bytes:
    """Run ``argv`` in container ``c`` of ``pod``; its stdout (the exit code must be 0)."""
    worker = k.find_pod("default", pod)
    assert worker is not None and worker.sandbox is not None
    session = await worker.sandbox.exec("c", list(argv))
    await session.close_stdin()
    out = b""
    while chunk := await session.read_stdout():
        out += chunk
    assert await session.wait() == 0
    session.close()
    return out


async def agent_logs(k: Kubelet, pod: str, **query: str) -> str:
    """The agent endpoint's ``containerLogs`` answer, as the API server's proxy gets it."""
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{k.port}") as http:
        r = await http.get(
            f"/containerLogs/default/{pod}/c",
            params=query,
            headers={"Authorization": f"Bearer {k.server_token}"},
        )
    assert r.status_code == 200, r.text
    return r.text


@requires_root
@requires_runc
async def test_stop_and_start_keeps_empty_dir_data_and_counts_a_restart(env: Env) -> None:
    script = (
        "echo run-$(cat /d/runs 2>/dev/null | wc -l); echo x >> /d/runs; "
        "trap 'exit 143' TERM; while :; do sleep 1 & wait $!; done"
    )
    first = env.kubelet()
    await first.start()
    try:
        pod = await env.create_pod(
            "keep",
            {"command": ["sh", "-c", script], "volumeMounts": [{"name": "d", "mountPath": "/d"}]},
            volumes=[{"name": "d", "emptyDir": {}}],
        )
        uid = pod["metadata"]["uid"]

        async def running(count: int) -> Obj | None:
            cs = await env.container("keep")
            ok = "running" in (cs.get("state") or {}) and cs.get("restartCount") == count
            return cs if ok else None

        await wait_until(lambda: running(0), 20, what="keep running")
        await run_in(first, "keep", "sh", "-c", "echo precious > /d/marker")
    finally:
        await first.stop()
    # SIGTERM to kubeling up: nothing of the pod is left running or mounted ...
    assert mounts.mounts_under(env.data_dir) == []
    assert runc_pid(env.data_dir, f"{uid}_c") == 0
    assert env.network._names(uid)[0] not in netns_names()
    # ... but the pod is still bound, so its directory (and emptyDir) stays.
    kept = env.data_dir / "pods" / uid / "volumes" / "kubernetes.io~empty-dir" / "d" / "marker"
    assert kept.read_text() == "precious\n"

    second = env.kubelet()
    await second.start()
    try:
        cs = await wait_until(lambda: running(1), 20, what="keep restarted by the new agent")
        term = cs["lastState"]["terminated"]
        assert (term["exitCode"], term["reason"]) == (143, "Error")
        assert term["finishedAt"] >= term["startedAt"]
        assert await run_in(second, "keep", "cat", "/d/marker") == b"precious\n"

        async def logged() -> bool:
            return "run-1" in await agent_logs(second, "keep")

        await wait_until(logged, 10, what="the second run's log")
        previous = await agent_logs(second, "keep", previous="true")
        assert "run-0" in previous and "run-1" not in previous
        pid = runc_pid(env.data_dir, f"{uid}_c")
    except BaseException:
        await second.stop()
        raise
    # kill -9 now: the next agent adopts the running container and keeps what it knew.
    await crash(second)
    third = env.kubelet()
    await third.start()
    try:
        assert runc_pid(env.data_dir, f"{uid}_c") == pid

        def adopted() -> bool:
            worker = third.find_pod("default", "keep")
            rec = worker.records.get("c") if worker is not None else None
            return rec is not None and rec.running

        await wait_until(adopted, 20, what="keep adopted")
        cs = await wait_until(lambda: running(1), 20, what="keep reported running")
        assert cs["lastState"]["terminated"]["exitCode"] == 143
        assert "run-0" in await agent_logs(third, "keep", previous="true")
    finally:
        await third.stop()
    assert mounts.mounts_under(env.data_dir) == []


@requires_root
@requires_runc
async def test_restart_mid_deletion_keeps_the_rest_of_the_grace_period(
    env: Env, tmp_path: Path
) -> None:
    shared = tmp_path / "shared"
    shared.mkdir()
    out = shared / "log"
    # The TERM handler needs 6 s: far more than a restarted agent takes to start, far less
    # than the 60 s grace period. A SIGKILL at restart would leave "exiting" unwritten.
    script = (
        "trap 'sleep 6; echo exiting >> /out/log; exit 0' TERM; while :; do sleep 1 & wait $!; done"
    )
    first = env.kubelet()
    await first.start()
    try:
        await env.create_pod(
            "grace",
            {
                "command": ["sh", "-c", script],
                "lifecycle": {
                    "preStop": {"exec": {"command": ["sh", "-c", "echo prestop >> /out/log"]}}
                },
                "volumeMounts": [{"name": "out", "mountPath": "/out"}],
            },
            volumes=[{"name": "out", "hostPath": {"path": str(shared)}}],
            terminationGracePeriodSeconds=60,
        )

        async def running() -> bool:
            return "running" in ((await env.container("grace")).get("state") or {})

        await wait_until(running, 20, what="grace running")
        await env.client.delete(PODS, name="grace", namespace="default")
        await wait_until(
            lambda: out.exists() and "prestop" in out.read_text(), 20, what="the preStop hook"
        )
    except BaseException:
        await first.stop()
        raise
    await crash(first)  # kill -9 of kubeling up, mid-deletion
    second = env.kubelet()
    await second.start()
    try:

        async def deleted() -> bool:
            try:
                await env.client.get(PODS, name="grace", namespace="default")
            except NotFound:
                return True
            return False

        await wait_until(deleted, 40, what="the pod deleted after its TERM handler")
        lines = out.read_text().splitlines()
        assert lines.count("prestop") == 1  # not run again by the restarted agent
        assert "exiting" in lines  # SIGTERM and the rest of the grace, not SIGKILL
    finally:
        await second.stop()
