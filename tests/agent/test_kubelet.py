"""The node agent against a real registry (memory store) with the simulated runtime.

Each test gets an API (``Registry`` on ``MemoryBackend`` through ``LocalClient``, with the
TokenRequest subresource the cluster installs) and a ``Kubelet`` for node ``node-1`` with
a short back-off base. Pods are bound by setting ``spec.nodeName`` (no scheduler here).
Everything the agent made is checked gone after ``stop``.
"""

from __future__ import annotations

import asyncio
import base64
import inspect
import os
import ssl
import stat
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from kubeling.agent import mounts
from kubeling.agent.errors import ContainerError
from kubeling.agent.kubelet import Kubelet
from kubeling.apiserver.satokens import ServiceAccountTokens
from kubeling.client.local import LocalClient
from kubeling.machinery.errors import Invalid, NotFound
from kubeling.machinery.resources import (
    CONFIGMAPS,
    EVENTS,
    LEASES,
    NAMESPACES,
    NODES,
    PODS,
    SECRETS,
    SERVICEACCOUNTS,
    SERVICES,
)
from kubeling.machinery.types import Obj
from kubeling.registry.registry import Registry
from kubeling.storage.memory import MemoryBackend
from tests.helpers.waiting import wait_until

NODE = "node-1"


@dataclass
class Env:
    client: LocalClient
    kubelet: Kubelet
    data_dir: Path

    async def create_pod(self, name: str, containers: list[Obj], **spec: Any) -> Obj:
        spec.setdefault("automountServiceAccountToken", False)
        body = {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": name, "namespace": "default"},
            "spec": {"nodeName": NODE, "containers": containers, **spec},
        }
        return await self.client.create(PODS, body, namespace="default")

    async def pod(self, name: str) -> Obj:
        return await self.client.get(PODS, name=name, namespace="default")

    async def status(self, name: str) -> Obj:
        return (await self.pod(name)).get("status") or {}

    async def container(self, name: str, index: int = 0, *, init: bool = False) -> Obj:
        key = "initContainerStatuses" if init else "containerStatuses"
        statuses = (await self.status(name)).get(key) or [{}]
        return statuses[index] if index < len(statuses) else {}

    async def phase(self, name: str) -> str:
        return str((await self.status(name)).get("phase", ""))

    async def wait_phase(self, name: str, phase: str, timeout: float = 10.0) -> None:  # noqa: ASYNC109
        async def reached() -> bool:
            return await self.phase(name) == phase

        await wait_until(reached, timeout, what=f"pod {name} {phase}")

    async def events(self, name: str) -> list[tuple[str, str, str]]:
        await self.kubelet.recorder.flush()
        items = (await self.client.list(EVENTS, namespace="default"))["items"]
        return [
            (e["type"], e["reason"], e["message"])
            for e in items
            if e["involvedObject"].get("name") == name
        ]

    async def wait_event(self, name: str, reason: str, message: str = "") -> tuple[str, str, str]:
        async def found() -> tuple[str, str, str] | None:
            for e in await self.events(name):
                if e[1] == reason and message in e[2]:
                    return e
            return None

        found_event: tuple[str, str, str] = await wait_until(
            found, what=f"event {reason} {message!r} on {name}"
        )
        return found_event

    def pod_dir(self, uid: str) -> Path:
        return self.data_dir / "pods" / uid


@pytest.fixture
async def env(tmp_path: Path) -> AsyncIterator[Env]:
    backend = MemoryBackend()
    await backend.start()
    registry = Registry.open(backend=backend)
    if inspect.isawaitable(registry):
        registry = await registry
    await registry.bootstrap()
    tokens = ServiceAccountTokens(tmp_path)
    registry.register_subresource("token", tokens.subresource_class())
    client = LocalClient(registry)
    await client.create(SERVICEACCOUNTS, {"metadata": {"name": "default"}}, namespace="default")
    data_dir = tmp_path / "agent"
    kubelet = Kubelet(
        client,
        node_name=NODE,
        data_dir=data_dir,
        runtime="simulated",
        backoff_base=0.05,
        backoff_max=0.4,
        ca_cert=b"-----BEGIN CERTIFICATE-----\ntest\n-----END CERTIFICATE-----\n",
        lease_seconds=1,
        shutdown_grace=1,
    )
    await kubelet.start()
    try:
        yield Env(client=client, kubelet=kubelet, data_dir=data_dir)
    finally:
        bound = await bound_pod_uids(client)
        await kubelet.stop()
        assert mounts.mounts_under(tmp_path) == []
        # Pods still bound keep their directories for the next agent; nothing else stays.
        assert pod_dirs_left(data_dir) <= bound
        await backend.close()


async def bound_pod_uids(client: LocalClient) -> set[str]:
    """The pods still bound to ``NODE`` and not finished: an agent stop keeps their dirs."""
    pods = (await client.list(PODS))["items"]
    return {
        p["metadata"]["uid"]
        for p in pods
        if (p.get("spec") or {}).get("nodeName") == NODE
        and (p.get("status") or {}).get("phase") not in ("Succeeded", "Failed")
    }


def pod_dirs_left(data_dir: Path) -> set[str]:
    pods = data_dir / "pods"
    return {d.name for d in pods.iterdir()} if pods.exists() else set()


def sleeper(name: str = "c", **extra: Any) -> Obj:
    return {"name": name, "image": "busybox:1.36", "command": ["sleep", "3600"], **extra}


# --- node and lease ------------------------------------------------------------------------


async def test_kubelet_registers_node_with_endpoint_and_conditions(env: Env) -> None:
    node = await env.client.get(NODES, name=NODE)
    status = node["status"]
    assert status["daemonEndpoints"]["kubeletEndpoint"]["Port"] == env.kubelet.port > 0
    assert {"type": "InternalIP", "address": "127.0.0.1"} in status["addresses"]
    ready = {c["type"]: c for c in status["conditions"]}["Ready"]
    assert (ready["status"], ready["reason"]) == ("True", "KubeletReady")
    assert ready["message"] == "kubelet is posting ready status"
    assert int(status["capacity"]["pods"]) == 110
    assert status["allocatable"]["cpu"] == status["capacity"]["cpu"]
    assert status["nodeInfo"]["kubeletVersion"].startswith("v1.32")
    assert node["metadata"]["labels"]["kubernetes.io/hostname"] == NODE


async def test_kubelet_renews_its_lease(env: Env) -> None:
    lease = await env.client.get(LEASES, name=NODE, namespace="kube-node-lease")
    assert lease["spec"]["holderIdentity"] == NODE
    assert lease["metadata"]["ownerReferences"][0]["kind"] == "Node"
    first = lease["spec"]["renewTime"]

    async def renewed() -> bool:
        again = await env.client.get(LEASES, name=NODE, namespace="kube-node-lease")
        return bool(again["spec"]["renewTime"] != first)

    await wait_until(renewed, 5, what="a renewed lease")


# --- lifecycle -----------------------------------------------------------------------------


async def test_pod_runs_with_full_status_and_events(env: Env) -> None:
    created = await env.create_pod("web", [sleeper()])
    await env.wait_phase("web", "Running")

    async def ready() -> bool:
        conds = {c["type"]: c["status"] for c in (await env.status("web")).get("conditions", [])}
        return conds.get("Ready") == "True"

    await wait_until(ready, what="Ready")
    status = await env.status("web")
    assert status["hostIP"] == "127.0.0.1" and status["hostIPs"] == [{"ip": "127.0.0.1"}]
    assert status["podIP"] and status["podIPs"] == [{"ip": status["podIP"]}]
    assert status["startTime"]
    assert status["qosClass"] == "BestEffort"
    types = [c["type"] for c in status["conditions"]]
    for t in ("PodReadyToStartContainers", "Initialized", "Ready", "ContainersReady"):
        assert t in types
    cs = status["containerStatuses"][0]
    assert cs["name"] == "c" and cs["ready"] is True and cs["started"] is True
    assert cs["restartCount"] == 0 and "running" in cs["state"]
    assert cs["image"] == "busybox:1.36" and cs["containerID"].startswith("simulated://")
    reasons = [e[1] for e in await env.events("web")]
    assert reasons[:3] == ["Pulled", "Created", "Started"]
    messages = [e[2] for e in await env.events("web")]
    assert "Created container: c" in messages and "Started container c" in messages
    assert any("not in the node's image store" in m for m in messages)
    assert env.pod_dir(created["metadata"]["uid"]).is_dir()


@pytest.mark.parametrize(
    ("policy", "command", "phase", "reason"),
    [
        pytest.param("Never", ["sh", "-c", "exit 1"], "Failed", "Error", id="never-fails"),
        pytest.param("OnFailure", ["true"], "Succeeded", "Completed", id="onfailure-succeeds"),
        pytest.param("Never", ["true"], "Succeeded", "Completed", id="never-succeeds"),
    ],
)
async def test_pod_terminal_phase_follows_restart_policy(
    env: Env, policy: str, command: list[str], phase: str, reason: str
) -> None:
    created = await env.create_pod(
        "job", [{"name": "c", "image": "busybox", "command": command}], restartPolicy=policy
    )
    await env.wait_phase("job", phase)
    cs = await env.container("job")
    assert cs["state"]["terminated"]["reason"] == reason
    assert cs["restartCount"] == 0
    conds = {c["type"]: c for c in (await env.status("job"))["conditions"]}
    assert conds["Ready"]["status"] == "False"
    # A finished pod's mounts and namespace go at once; its object stays.
    await wait_until(lambda: not env.pod_dir(created["metadata"]["uid"]).exists())


async def test_crashing_container_backs_off_with_upstream_texts(env: Env) -> None:
    created = await env.create_pod(
        "crash", [{"name": "c", "image": "busybox", "command": ["sh", "-c", "exit 2"]}]
    )
    uid = created["metadata"]["uid"]

    async def looping() -> Obj | None:
        cs = await env.container("crash")
        waiting = (cs.get("state") or {}).get("waiting") or {}
        if waiting.get("reason") == "CrashLoopBackOff" and cs.get("restartCount", 0) >= 2:
            return cs
        return None

    cs = await wait_until(looping, what="CrashLoopBackOff after two restarts")
    message = cs["state"]["waiting"]["message"]
    assert message.startswith("back-off ") and message.endswith(
        f"restarting failed container=c pod=crash_default({uid})"
    )
    assert cs["lastState"]["terminated"]["exitCode"] == 2
    assert cs["lastState"]["terminated"]["reason"] == "Error"
    assert await env.phase("crash") == "Running"  # restartPolicy Always: it is restarting
    await env.wait_event(
        "crash", "BackOff", f"Back-off restarting failed container c in pod crash_default({uid})"
    )


async def test_backoff_doubles_up_to_the_cap(env: Env) -> None:
    await env.create_pod("crash", [{"name": "c", "image": "busybox", "command": ["false"]}])
    seen: set[str] = set()

    async def capped() -> bool:
        cs = await env.container("crash")
        msg = ((cs.get("state") or {}).get("waiting") or {}).get("message", "")
        if msg:
            seen.add(msg.split()[1])
        return "0.4s" in seen

    await wait_until(capped, what="the back-off to reach its cap")
    assert {"0.05s", "0.1s", "0.2s", "0.4s"} <= seen
    assert "0.8s" not in seen


async def test_init_containers_run_in_order_before_containers(env: Env) -> None:
    await env.create_pod(
        "init",
        [sleeper()],
        initContainers=[
            {"name": "a", "image": "busybox", "command": ["true"]},
            {"name": "b", "image": "busybox", "command": ["sh", "-c", "exit 0"]},
        ],
    )
    await env.wait_phase("init", "Running")
    status = await env.status("init")
    assert [s["state"]["terminated"]["reason"] for s in status["initContainerStatuses"]] == [
        "Completed",
        "Completed",
    ]
    assert [s["ready"] for s in status["initContainerStatuses"]] == [True, True]
    assert {c["type"]: c["status"] for c in status["conditions"]}["Initialized"] == "True"


async def test_failed_init_container_fails_a_never_pod(env: Env) -> None:
    await env.create_pod(
        "init",
        [sleeper()],
        restartPolicy="Never",
        initContainers=[{"name": "a", "image": "busybox", "command": ["false"]}],
    )
    await env.wait_phase("init", "Failed")
    status = await env.status("init")
    init = {c["type"]: c for c in status["conditions"]}["Initialized"]
    assert (init["status"], init["reason"]) == ("False", "ContainersNotInitialized")
    assert init["message"] == "containers with incomplete status: [a]"
    assert status["containerStatuses"][0]["state"]["waiting"]["reason"] == "PodInitializing"


async def test_graceful_delete_stops_tears_down_and_removes_pod(env: Env) -> None:
    created = await env.create_pod("web", [sleeper()], terminationGracePeriodSeconds=5)
    uid = created["metadata"]["uid"]
    await env.wait_phase("web", "Running")
    assert env.pod_dir(uid).exists()
    await env.client.delete(PODS, name="web", namespace="default")

    async def gone() -> bool:
        try:
            await env.pod("web")
        except NotFound:
            return True
        return False

    await wait_until(gone, what="the pod object to be removed")
    assert not env.pod_dir(uid).exists()
    assert ("Normal", "Killing", "Stopping container c") in await env.events("web")
    assert uid not in env.kubelet.workers


async def test_delete_retries_a_failed_teardown_before_removing_the_pod(env: Env) -> None:
    created = await env.create_pod("web", [sleeper()])
    uid = created["metadata"]["uid"]
    await env.wait_phase("web", "Running")
    runtime = env.kubelet.node.runtime
    real_list = runtime.list_containers
    healed = asyncio.Event()
    failures = 0

    async def flaky_list() -> Any:
        nonlocal failures
        if not healed.is_set():
            failures += 1
            raise ContainerError("runc list failed: stat /x/runc/root/other: no such file")
        return await real_list()

    runtime.list_containers = flaky_list  # type: ignore[method-assign]
    try:
        await env.client.delete(PODS, name="web", namespace="default")
        await wait_until(lambda: failures >= 3, what="teardown to be retried")
        # Not deleted while its teardown is incomplete (upstream keeps retrying termination).
        assert (await env.pod("web"))["metadata"]["deletionTimestamp"]
        healed.set()

        async def gone() -> bool:
            try:
                await env.pod("web")
            except NotFound:
                return True
            return False

        await wait_until(gone, what="the pod object to be removed")
    finally:
        runtime.list_containers = real_list  # type: ignore[method-assign]
    assert not env.pod_dir(uid).exists()
    assert [i for i in await runtime.list_containers() if i.pod_uid == uid] == []


async def test_delete_does_not_touch_a_recreated_pod_of_the_same_name(env: Env) -> None:
    await env.create_pod("web", [sleeper()])
    await env.wait_phase("web", "Running")
    await env.client.delete(PODS, name="web", namespace="default", grace_period_seconds=0)
    again = await env.create_pod("web", [sleeper()])
    await env.wait_phase("web", "Running")
    assert (await env.pod("web"))["metadata"]["uid"] == again["metadata"]["uid"]


# --- probes --------------------------------------------------------------------------------


class Health:
    """A loopback HTTP server whose answer the test sets."""

    def __init__(self, tls: ssl.SSLContext | None = None) -> None:
        self.code = 200
        self.server: asyncio.Server | None = None
        self.port = 0
        self.tls = tls

    async def __aenter__(self) -> Health:
        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            while (await reader.readline()) not in (b"\r\n", b""):
                pass
            writer.write(f"HTTP/1.1 {self.code} X\r\nContent-Length: 0\r\n\r\n".encode())
            await writer.drain()
            writer.close()

        self.server = await asyncio.start_server(handle, "127.0.0.1", 0, ssl=self.tls)
        self.port = self.server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self.server is not None
        self.server.close()
        await self.server.wait_closed()


async def test_readiness_probe_follows_the_endpoint(env: Env) -> None:
    async with Health() as health:
        probe = {
            "httpGet": {"host": "127.0.0.1", "port": health.port, "path": "/healthz"},
            "periodSeconds": 1,
            "failureThreshold": 1,
        }
        await env.create_pod("web", [sleeper(readinessProbe=probe)])

        async def ready_is(value: bool) -> bool:
            cs = await env.container("web")
            return cs.get("ready") is value and "running" in (cs.get("state") or {})

        await wait_until(lambda: ready_is(True), what="ready")
        health.code = 503
        await wait_until(lambda: ready_is(False), what="not ready")
        conds = {c["type"]: c for c in (await env.status("web"))["conditions"]}
        assert conds["Ready"]["reason"] == "ContainersNotReady"
        assert conds["Ready"]["message"] == "containers with unready status: [c]"
        await env.wait_event(
            "web", "Unhealthy", "Readiness probe failed: HTTP probe failed with statuscode: 503"
        )
        health.code = 200
        await wait_until(lambda: ready_is(True), what="ready again")


async def test_https_probe_skips_certificate_verification(env: Env, tmp_path: Path) -> None:
    from kubeling.apiserver.auth import ensure_pki

    pki = ensure_pki(tmp_path / "tls")
    tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    tls.load_cert_chain(pki.serving_cert, pki.serving_key)
    async with Health(tls) as health:
        probe = {
            "httpGet": {"host": "127.0.0.1", "port": health.port, "scheme": "HTTPS"},
            "periodSeconds": 1,
        }
        await env.create_pod("tls", [sleeper(readinessProbe=probe)])

        async def ready() -> bool:
            return bool((await env.container("tls")).get("ready"))

        await wait_until(ready, what="ready through an HTTPS probe")


async def test_liveness_failure_restarts_the_container(env: Env) -> None:
    async with Health() as health:
        closed = health.port
    probe = {
        "tcpSocket": {"host": "127.0.0.1", "port": closed},
        "periodSeconds": 1,
        "failureThreshold": 1,
    }
    await env.create_pod("live", [sleeper(livenessProbe=probe)])
    await env.wait_event("live", "Killing", "Container c failed liveness probe, will be restarted")
    await env.wait_event(
        "live",
        "Unhealthy",
        f"Liveness probe failed: dial tcp 127.0.0.1:{closed}: connect: connection refused",
    )

    async def restarted() -> bool:
        return int((await env.container("live")).get("restartCount", 0)) >= 1

    await wait_until(restarted, what="a restart after the liveness failure")


async def test_startup_probe_gates_readiness(env: Env) -> None:
    async with Health() as health:
        health.code = 500
        startup = {
            "httpGet": {"host": "127.0.0.1", "port": health.port},
            "periodSeconds": 1,
            "failureThreshold": 30,
        }
        await env.create_pod("slow", [sleeper(startupProbe=startup)])
        await env.wait_phase("slow", "Running")
        cs = await env.container("slow")
        assert cs["started"] is False and cs["ready"] is False
        health.code = 200

        async def started() -> bool:
            cs = await env.container("slow")
            return bool(cs.get("started") and cs.get("ready"))

        await wait_until(started, what="started and ready")


async def test_probe_refuses_a_host_off_loopback(env: Env) -> None:
    probe = {
        "tcpSocket": {"host": "10.1.2.3", "port": 80},
        "periodSeconds": 1,
        "failureThreshold": 1,
    }
    await env.create_pod("far", [sleeper(readinessProbe=probe)])
    await env.wait_event("far", "Unhealthy", "kubeling probes only loopback")


# --- volumes and env -----------------------------------------------------------------------


async def test_missing_configmap_is_failedmount_until_it_appears(env: Env) -> None:
    created = await env.create_pod(
        "cm",
        [sleeper(volumeMounts=[{"name": "conf", "mountPath": "/etc/conf"}])],
        volumes=[{"name": "conf", "configMap": {"name": "app"}}],
    )
    await env.wait_event(
        "cm",
        "FailedMount",
        'MountVolume.SetUp failed for volume "conf" : configmap "app" not found',
    )
    assert await env.phase("cm") == "Pending"
    assert (await env.container("cm"))["state"]["waiting"]["reason"] == "ContainerCreating"
    await env.client.create(
        CONFIGMAPS, {"metadata": {"name": "app"}, "data": {"k": "v"}}, namespace="default"
    )
    await env.wait_phase("cm", "Running")
    path = env.pod_dir(created["metadata"]["uid"]) / "volumes/kubernetes.io~configmap/conf/k"
    assert path.read_text() == "v"


async def test_configmaps_are_watched_only_where_pods_run_here(env: Env) -> None:
    await env.client.create(NAMESPACES, {"metadata": {"name": "other"}})
    await env.client.create(
        CONFIGMAPS, {"metadata": {"name": "elsewhere"}, "data": {"k": "v"}}, namespace="other"
    )
    assert env.kubelet.watched_namespaces == []
    assert env.kubelet.config_maps("other") == {}
    await env.create_pod("web", [sleeper()], terminationGracePeriodSeconds=0)
    await env.wait_phase("web", "Running")
    assert env.kubelet.watched_namespaces == ["default"]
    await env.client.delete(PODS, name="web", namespace="default")

    async def unwatched() -> bool:
        return env.kubelet.watched_namespaces == []

    await wait_until(unwatched, what="the agent to stop watching namespace default")
    # A pod arriving afterwards gets a fresh watch that sees what changed meanwhile.
    await env.client.create(
        CONFIGMAPS, {"metadata": {"name": "late"}, "data": {"k": "v2"}}, namespace="default"
    )
    created = await env.create_pod(
        "again",
        [sleeper(volumeMounts=[{"name": "conf", "mountPath": "/etc/conf"}])],
        volumes=[{"name": "conf", "configMap": {"name": "late"}}],
    )
    await env.wait_phase("again", "Running")
    path = env.pod_dir(created["metadata"]["uid"]) / "volumes/kubernetes.io~configmap/conf/k"
    assert path.read_text() == "v2"


async def test_configmap_change_reaches_files_and_subpath_copies_quickly(env: Env) -> None:
    await env.client.create(
        CONFIGMAPS,
        {"metadata": {"name": "web-conf"}, "data": {"app.json": '{"v":1}'}},
        namespace="default",
    )
    created = await env.create_pod(
        "web",
        [
            sleeper(
                env=[
                    {
                        "name": "V",
                        "valueFrom": {"configMapKeyRef": {"name": "web-conf", "key": "app.json"}},
                    }
                ],
                volumeMounts=[
                    {"name": "conf", "mountPath": "/etc/conf-dir"},
                    {"name": "conf", "mountPath": "/etc/app.json", "subPath": "app.json"},
                ],
            )
        ],
        volumes=[{"name": "conf", "configMap": {"name": "web-conf"}}],
    )
    await env.wait_phase("web", "Running")
    vol = env.pod_dir(created["metadata"]["uid"]) / "volumes/kubernetes.io~configmap/conf"
    copies = list((env.pod_dir(created["metadata"]["uid"]) / "volume-subpaths/conf/c").iterdir())
    assert not [p for p in vol.iterdir() if "subpath" in p.name]  # nothing of it in the volume
    assert len(copies) == 1 and copies[0].read_text() == '{"v":1}'
    inode = copies[0].stat().st_ino
    await env.client.patch(
        CONFIGMAPS,
        name="web-conf",
        namespace="default",
        patch={"data": {"app.json": '{"v":2}'}},
        patch_type="merge",
    )
    # The directory mount and (kubeling's improvement on B20) the subPath copy both follow.
    await wait_until(lambda: (vol / "app.json").read_text() == '{"v":2}', 2.0, what="hot update")
    await wait_until(lambda: copies[0].read_text() == '{"v":2}', 2.0, what="subPath refresh")
    assert copies[0].stat().st_ino == inode  # same inode: a bind mount of it sees the change
    # The env var was resolved at start and stays, as upstream.
    runtime = env.kubelet.node.runtime
    config, _status = runtime._containers[f"{created['metadata']['uid']}_c"]  # type: ignore[attr-defined]
    assert 'V={"v":1}' in config.env


async def test_env_from_missing_secret_is_create_container_config_error_then_recovers(
    env: Env,
) -> None:
    await env.create_pod(
        "strict",
        [
            sleeper(
                env=[
                    {
                        "name": "DB_PASS",
                        "valueFrom": {"secretKeyRef": {"name": "db", "key": "password"}},
                    }
                ]
            )
        ],
    )
    await env.create_pod(
        "lenient",
        [
            sleeper(
                env=[
                    {
                        "name": "DB_PASS",
                        "valueFrom": {
                            "secretKeyRef": {"name": "db", "key": "password", "optional": True}
                        },
                    }
                ]
            )
        ],
    )
    await env.wait_phase("lenient", "Running")

    async def waiting_message() -> str:
        cs = await env.container("strict")
        w = (cs.get("state") or {}).get("waiting") or {}
        return str(w.get("message", "")) if w.get("reason") == "CreateContainerConfigError" else ""

    assert await wait_until(waiting_message) == 'secret "db" not found'
    await env.wait_event("strict", "Failed", 'Error: secret "db" not found')
    wrong = {"metadata": {"name": "db"}, "data": {"pass": base64.b64encode(b"x").decode()}}
    await env.client.create(SECRETS, wrong, namespace="default")

    async def wrong_key() -> bool:
        return await waiting_message() == "couldn't find key password in Secret default/db"

    await wait_until(wrong_key, what="the wrong-key message")
    uid = (await env.pod("strict"))["metadata"]["uid"]
    await env.client.patch(
        SECRETS,
        name="db",
        namespace="default",
        patch={"data": {"password": base64.b64encode(b"x").decode()}},
        patch_type="merge",
    )
    await env.wait_phase("strict", "Running")
    assert (await env.pod("strict"))["metadata"]["uid"] == uid  # not re-created


async def test_subpath_expr_with_backsteps_is_create_container_config_error(env: Env) -> None:
    c = sleeper(
        env=[{"name": "X", "value": "../../../../etc"}],
        volumeMounts=[{"name": "data", "mountPath": "/data", "subPathExpr": "$(X)"}],
    )
    await env.create_pod("expr", [c], volumes=[{"name": "data", "emptyDir": {}}])
    text = "unable to provision SubPath `../../../../etc`: must not contain '..'"

    async def waiting() -> Obj | None:
        state = (await env.container("expr")).get("state") or {}
        return state.get("waiting") if (state.get("waiting") or {}).get("message") else None

    assert await wait_until(waiting) == {"reason": "CreateContainerConfigError", "message": text}
    await env.wait_event("expr", "Failed", f"Error: {text}")
    status = await env.container("expr")
    assert status["restartCount"] == 0
    assert await env.phase("expr") == "Pending"
    assert not [e for e in await env.events("expr") if e[1] in ("Started", "BackOff")]


async def test_subpath_symlink_out_of_the_volume_waits_and_is_retried(
    env: Env, tmp_path: Path
) -> None:
    shared = tmp_path / "shared"
    shared.mkdir()
    (shared / "link").symlink_to("/etc")
    c = sleeper(volumeMounts=[{"name": "data", "mountPath": "/data", "subPath": "link"}])
    volumes = [{"name": "data", "hostPath": {"path": str(shared), "type": "Directory"}}]
    await env.create_pod("sym", [c], volumes=volumes)
    text = 'failed to prepare subPath for volumeMount "data" of container "c"'

    async def waiting() -> Obj | None:
        state = (await env.container("sym")).get("state") or {}
        return state.get("waiting") if (state.get("waiting") or {}).get("message") else None

    assert await wait_until(waiting) == {"reason": "CreateContainerConfigError", "message": text}
    await env.wait_event("sym", "Failed", f"Error: {text}")
    assert (await env.container("sym"))["restartCount"] == 0
    # Retried with back-off: once the link is a directory of the volume, the container runs.
    (shared / "link").unlink()
    (shared / "link").mkdir()
    await env.wait_phase("sym", "Running")
    status = await env.container("sym")
    assert status["restartCount"] == 0
    assert "running" in status["state"]


async def test_hostpath_directory_missing_is_failedmount(env: Env, tmp_path: Path) -> None:
    missing = tmp_path / "app-missing"
    await env.create_pod(
        "hp",
        [sleeper(volumeMounts=[{"name": "data", "mountPath": "/data"}])],
        volumes=[{"name": "data", "hostPath": {"path": str(missing), "type": "Directory"}}],
    )
    await env.wait_event(
        "hp",
        "FailedMount",
        f'MountVolume.SetUp failed for volume "data" : hostPath type check failed: {missing} is not a directory',
    )
    assert await env.phase("hp") == "Pending"
    assert not missing.exists()


async def test_hostpath_file_type_on_a_directory_is_failedmount(env: Env, tmp_path: Path) -> None:
    await env.create_pod(
        "hpf",
        [sleeper(volumeMounts=[{"name": "data", "mountPath": "/data"}])],
        volumes=[{"name": "data", "hostPath": {"path": str(tmp_path), "type": "File"}}],
    )
    await env.wait_event(
        "hpf",
        "FailedMount",
        f'MountVolume.SetUp failed for volume "data" : hostPath type check failed: {tmp_path} is not a file',
    )
    assert await env.phase("hpf") == "Pending"


async def test_hostpath_without_type_checks_nothing(env: Env, tmp_path: Path) -> None:
    missing = tmp_path / "nothing-here"
    await env.create_pod(
        "hpn",
        [sleeper(volumeMounts=[{"name": "data", "mountPath": "/data"}])],
        volumes=[{"name": "data", "hostPath": {"path": str(missing)}}],
    )
    await env.wait_phase("hpn", "Running")


async def test_hostpath_directory_or_create_makes_a_0755_directory(
    env: Env, tmp_path: Path
) -> None:
    target = tmp_path / "srv" / "app-logs" / "web"
    await env.create_pod(
        "hp",
        [sleeper(volumeMounts=[{"name": "logs", "mountPath": "/logs"}])],
        volumes=[{"name": "logs", "hostPath": {"path": str(target), "type": "DirectoryOrCreate"}}],
        securityContext={"runAsUser": 1000, "fsGroup": 2000},
    )
    await env.wait_phase("hp", "Running")
    st = target.stat()
    assert stat.S_ISDIR(st.st_mode) and stat.S_IMODE(st.st_mode) == 0o755
    assert st.st_uid == os.geteuid()  # owned by the agent; fsGroup is not applied (B16)
    assert st.st_gid != 2000


async def test_secret_bytes_keep_their_trailing_newline(env: Env) -> None:
    data = {
        "password": base64.b64encode(b"secret123\n").decode(),
        "password2": base64.b64encode(b"secret123").decode(),
    }
    await env.client.create(
        SECRETS, {"metadata": {"name": "db"}, "data": data}, namespace="default"
    )
    created = await env.create_pod(
        "s",
        [sleeper(volumeMounts=[{"name": "s", "mountPath": "/s"}])],
        volumes=[{"name": "s", "secret": {"secretName": "db"}}],
    )
    await env.wait_phase("s", "Running")
    vol = env.pod_dir(created["metadata"]["uid"]) / "volumes/kubernetes.io~secret/s"
    assert len((vol / "password").read_bytes()) == 10
    assert len((vol / "password2").read_bytes()) == 9
    assert stat.S_IMODE((vol / "..data" / "password").stat().st_mode) == 0o644


async def test_service_account_token_is_mounted_unless_disabled(env: Env) -> None:
    created = await env.create_pod("sa", [sleeper()], automountServiceAccountToken=None)
    await env.wait_phase("sa", "Running")
    vols = env.pod_dir(created["metadata"]["uid"]) / "volumes/kubernetes.io~projected"
    (vol,) = list(vols.iterdir())
    assert vol.name.startswith("kube-api-access-")
    assert sorted(p.name for p in vol.iterdir() if not p.name.startswith("..")) == [
        "ca.crt",
        "namespace",
        "token",
    ]
    assert (vol / "namespace").read_text() == "default"
    assert (vol / "ca.crt").read_text().startswith("-----BEGIN CERTIFICATE-----")
    token = (vol / "token").read_text()
    assert token.count(".") == 2
    off = await env.create_pod("nosa", [sleeper()], automountServiceAccountToken=False)
    await env.wait_phase("nosa", "Running")
    assert not (env.pod_dir(off["metadata"]["uid"]) / "volumes/kubernetes.io~projected").exists()


async def test_service_account_automount_false_on_the_account_is_honoured(env: Env) -> None:
    await env.client.create(
        SERVICEACCOUNTS,
        {"metadata": {"name": "quiet"}, "automountServiceAccountToken": False},
        namespace="default",
    )
    await wait_until(lambda: env.kubelet.service_account("default", "quiet") is not None)
    created = await env.create_pod(
        "q", [sleeper()], automountServiceAccountToken=None, serviceAccountName="quiet"
    )
    await env.wait_phase("q", "Running")
    assert not (
        env.pod_dir(created["metadata"]["uid"]) / "volumes/kubernetes.io~projected"
    ).exists()


async def test_missing_service_account_is_failedmount(env: Env) -> None:
    await env.create_pod(
        "nosa", [sleeper()], automountServiceAccountToken=None, serviceAccountName="ghost"
    )
    await env.wait_event(
        "nosa", "FailedMount", 'failed to fetch token: serviceaccounts "ghost" not found'
    )
    assert await env.phase("nosa") == "Pending"


async def test_disk_emptydir_over_its_size_limit_evicts_the_pod(env: Env) -> None:
    created = await env.create_pod(
        "disk",
        [sleeper(volumeMounts=[{"name": "scratch", "mountPath": "/scratch"}])],
        volumes=[{"name": "scratch", "emptyDir": {"sizeLimit": "1Mi"}}],
    )
    await env.wait_phase("disk", "Running")
    vol = env.pod_dir(created["metadata"]["uid"]) / "volumes/kubernetes.io~empty-dir/scratch"
    # The write itself succeeds (sizeLimit is no quota on disk); the agent then evicts (B17).
    (vol / "f").write_bytes(os.urandom(2 * 1024 * 1024))
    await env.wait_phase("disk", "Failed")
    status = await env.status("disk")
    message = 'Usage of EmptyDir volume "scratch" exceeds the limit "1Mi". '
    assert (status["reason"], status["message"]) == ("Evicted", message)
    assert ("Warning", "Evicted", message) in await env.events("disk")
    cs = status["containerStatuses"][0]
    assert "terminated" in cs["state"] and cs["restartCount"] == 0


async def test_active_deadline_fails_the_pod(env: Env) -> None:
    await env.create_pod("late", [sleeper()], activeDeadlineSeconds=1)
    await env.wait_phase("late", "Running")
    await env.wait_phase("late", "Failed", timeout=15)
    status = await env.status("late")
    message = "Pod was active on the node longer than the specified deadline"
    assert (status["reason"], status["message"]) == ("DeadlineExceeded", message)
    assert ("Normal", "DeadlineExceeded", message) in await env.events("late")


async def test_label_change_rewrites_downward_api_files(env: Env) -> None:
    items = [{"path": "labels", "fieldRef": {"fieldPath": "metadata.labels"}}]
    created = await env.create_pod(
        "dapi",
        [sleeper(volumeMounts=[{"name": "info", "mountPath": "/info"}])],
        volumes=[{"name": "info", "downwardAPI": {"items": items}}],
    )
    await env.wait_phase("dapi", "Running")
    path = (
        env.pod_dir(created["metadata"]["uid"]) / "volumes/kubernetes.io~downward-api/info/labels"
    )
    assert path.read_text() == ""
    await env.client.patch(
        PODS,
        name="dapi",
        namespace="default",
        patch={"metadata": {"labels": {"tier": "web"}}},
        patch_type="merge",
    )
    await wait_until(lambda: path.read_text() == 'tier="web"', 2.0, what="the labels file")


async def test_service_variables_follow_enable_service_links(env: Env) -> None:
    svc = {
        "metadata": {"name": "my-db"},
        "spec": {"selector": {"app": "db"}, "ports": [{"name": "pg", "port": 5432}]},
    }
    created_svc = await env.client.create(SERVICES, svc, namespace="default")
    ip = created_svc["spec"]["clusterIP"]
    await wait_until(lambda: "MY_DB_SERVICE_HOST" in env.kubelet.service_env("default", links=True))
    on = await env.create_pod("on", [sleeper(env=[{"name": "URL", "value": "$(MY_DB_PORT)"}])])
    off = await env.create_pod("off", [sleeper()], enableServiceLinks=False)
    await env.wait_phase("on", "Running")
    await env.wait_phase("off", "Running")
    runtime = env.kubelet.node.runtime
    on_env = runtime._containers[f"{on['metadata']['uid']}_c"][0].env  # type: ignore[attr-defined]
    off_env = runtime._containers[f"{off['metadata']['uid']}_c"][0].env  # type: ignore[attr-defined]
    for item in (
        f"MY_DB_SERVICE_HOST={ip}",
        "MY_DB_SERVICE_PORT=5432",
        "MY_DB_SERVICE_PORT_PG=5432",
        f"MY_DB_PORT=tcp://{ip}:5432",
        f"MY_DB_PORT_5432_TCP=tcp://{ip}:5432",
        "MY_DB_PORT_5432_TCP_PROTO=tcp",
        "MY_DB_PORT_5432_TCP_PORT=5432",
        f"MY_DB_PORT_5432_TCP_ADDR={ip}",
        f"URL=tcp://{ip}:5432",
    ):
        assert item in on_env
    assert not any(e.startswith("MY_DB_") for e in off_env)


async def test_host_network_is_refused_with_a_warning(env: Env) -> None:
    await env.create_pod("hn", [sleeper()], hostNetwork=True)
    await env.wait_phase("hn", "Running")
    await env.wait_event("hn", "HostNamespacesIgnored", "hostNetwork ignored")
    assert (await env.status("hn"))["podIP"] != "127.0.0.1"


async def test_projected_token_is_renewed_before_it_expires(env: Env) -> None:
    created = await env.create_pod("tok", [sleeper()], automountServiceAccountToken=None)
    await env.wait_phase("tok", "Running")
    worker = env.kubelet.workers[created["metadata"]["uid"]]
    vols = env.pod_dir(created["metadata"]["uid"]) / "volumes/kubernetes.io~projected"
    (vol,) = list(vols.iterdir())
    first = (vol / "token").read_text()
    # Age the cached token past 80% of its lifetime, as time would.
    for key, (token, _fetched) in list(worker._tokens.items()):
        worker._tokens[key] = (token, _fetched - 0.81 * key[1])
    worker.wake()
    await wait_until(lambda: (vol / "token").read_text() != first, 5, what="a new token")


# --- field reports on the API side (themes F) ----------------------------------------------


@pytest.mark.parametrize(
    ("data", "missing"),
    [
        pytest.param(
            {"cert.pem": "LS0tLQ==", "key.pem": "LS0tLQ=="}, ["tls.crt", "tls.key"], id="neither"
        ),
        pytest.param({"tls.crt": "LS0tLQ=="}, ["tls.key"], id="only-crt"),
    ],
)
async def test_tls_secret_requires_both_keys(
    env: Env, data: dict[str, str], missing: list[str]
) -> None:
    body = {"metadata": {"name": "ldap-tls"}, "type": "kubernetes.io/tls", "data": data}
    with pytest.raises(Invalid) as err:
        await env.client.create(SECRETS, body, namespace="default")
    for key in missing:
        assert f"data[{key}]: Required value" in str(err.value)


async def test_double_base64_dockerconfigjson_is_rejected_without_echoing_it(env: Env) -> None:
    cfg = b'{"auths":{"registry.example":{"auth":"dXNlcjpwYXNz"}}}'
    once = base64.b64encode(cfg).decode()
    twice = base64.b64encode(once.encode()).decode()
    body = {
        "metadata": {"name": "regcred"},
        "type": "kubernetes.io/dockerconfigjson",
        "data": {".dockerconfigjson": twice},
    }
    with pytest.raises(Invalid) as err:
        await env.client.create(SECRETS, body, namespace="default")
    assert "<secret contents redacted>" in str(err.value) and once not in str(err.value)
    body["data"] = {".dockerconfigjson": once}
    await env.client.create(SECRETS, body, namespace="default")
