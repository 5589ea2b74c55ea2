"""Logs and exec through the API server's proxy to the agent, in one in-process cluster.

The cluster (``Cluster`` with the memory store) runs the agent with runc and a private
bridge and /24; exec is driven by the official Python client's ``stream()`` (v5/v4) and by
a bare WebSocket client for the older sub-protocols (``channel.k8s.io``,
``base64.channel.k8s.io``). The simulated-runtime case checks the error users get there.
Nothing may be left behind: no mount, container, namespace or bridge.
"""

from __future__ import annotations

import asyncio
import base64
import json
import ssl
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest
import websockets

from kubeling.agent import mounts
from kubeling.agent.network import BridgeNetwork
from kubeling.cluster import Cluster, ClusterConfig
from kubeling.machinery.errors import AlreadyExists
from kubeling.machinery.resources import NODES, PODS, SERVICEACCOUNTS
from kubeling.machinery.types import Obj
from tests.agent.conftest import (
    assert_nothing_left,
    netns_names,
    requires_root,
    requires_runc,
    test_network,
)
from tests.agent.test_kubelet import wait_until


@dataclass
class Api:
    cluster: Cluster
    http: httpx.AsyncClient
    node: str

    @property
    def token(self) -> str:
        return self.cluster.token

    async def create_pod(self, name: str, command: list[str], **spec: Any) -> Obj:
        client = self.cluster.local_client()
        body = {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": name, "namespace": "default"},
            "spec": {
                "nodeName": self.node,
                "automountServiceAccountToken": False,
                "terminationGracePeriodSeconds": 1,
                "containers": [{"name": "c", "image": "busybox:1.36", "command": command}],
                **spec,
            },
        }
        return await client.create(PODS, body, namespace="default")

    async def wait_running(self, name: str) -> None:
        client = self.cluster.local_client()

        async def running() -> bool:
            pod = await client.get(PODS, name=name, namespace="default")
            return (pod.get("status") or {}).get("phase") == "Running"

        await wait_until(running, 20, what=f"{name} Running")


async def _cluster(
    tmp_path: Path, runtime: str, monkeypatch: pytest.MonkeyPatch
) -> tuple[Cluster, BridgeNetwork]:
    network = test_network(tmp_path / "agent")
    monkeypatch.setenv("KUBELING_POD_BRIDGE", network.bridge)
    monkeypatch.setenv("KUBELING_POD_CIDR", str(network.subnet))
    cluster = Cluster(
        ClusterConfig(data_dir=tmp_path, listen="127.0.0.1:0", store="memory", runtime=runtime)
    )
    await cluster.start()
    client = cluster.local_client()
    try:
        await client.create(SERVICEACCOUNTS, {"metadata": {"name": "default"}}, namespace="default")
    except AlreadyExists:  # the ServiceAccount controller was first
        pass
    return cluster, network


@pytest.fixture
async def api(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest
) -> AsyncIterator[Api]:
    runtime = getattr(request, "param", "runc")
    before = netns_names()
    cluster, network = await _cluster(tmp_path, runtime, monkeypatch)
    ctx = ssl.create_default_context(cafile=str(tmp_path / "pki" / "ca.crt"))
    http = httpx.AsyncClient(
        base_url=cluster.url, verify=ctx, headers={"Authorization": f"Bearer {cluster.token}"}
    )
    nodes = await cluster.local_client().list(NODES)
    try:
        yield Api(cluster=cluster, http=http, node=nodes["items"][0]["metadata"]["name"])
    finally:
        await http.aclose()
        uids = {p["metadata"]["uid"] for p in (await cluster.local_client().list(PODS))["items"]}
        await cluster.stop()
        assert mounts.mounts_under(tmp_path) == []
        assert_nothing_left(tmp_path / "agent", network, before, pod_uids=uids, kept_pod_dirs=uids)


def _ssl(api: Api) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(api.cluster.data_dir / "pki" / "ca.crt"))


async def ws_exec(
    api: Api, pod: str, command: list[str], protocol: str, *, stdin: bytes | None = None
) -> list[tuple[int, bytes]]:
    """Run one exec over a raw WebSocket; the frames received, decoded to (channel, bytes)."""
    query = urlencode([("command", c) for c in command]) + "&stdout=true&stderr=true"
    if stdin is not None:
        query += "&stdin=true"
    url = (
        api.cluster.url.replace("https://", "wss://")
        + f"/api/v1/namespaces/default/pods/{pod}/exec?{query}"
    )
    frames: list[tuple[int, bytes]] = []
    async with websockets.connect(
        url,
        ssl=_ssl(api),
        subprotocols=[protocol],  # type: ignore[list-item]
        additional_headers={"Authorization": f"Bearer {api.token}"},
    ) as ws:
        assert ws.subprotocol == protocol
        b64 = "base64" in protocol
        if stdin is not None:
            if b64:
                await ws.send("0" + base64.b64encode(stdin).decode())
            else:
                await ws.send(b"\x00" + stdin)
            if protocol.startswith("v5."):
                await ws.send(b"\xff\x00")
        async for message in ws:
            if b64:
                assert isinstance(message, str)
                frames.append((int(message[0]), base64.b64decode(message[1:])))
            else:
                assert isinstance(message, bytes)
                frames.append((message[0], message[1:]))
    return frames


def joined(frames: list[tuple[int, bytes]], channel: int) -> bytes:
    return b"".join(p for c, p in frames if c == channel)


@requires_root
@requires_runc
@pytest.mark.parametrize(
    "protocol",
    ["v5.channel.k8s.io", "v4.channel.k8s.io", "channel.k8s.io", "base64.channel.k8s.io"],
)
async def test_exec_over_each_subprotocol(api: Api, protocol: str) -> None:
    await api.create_pod("web", ["sleep", "3600"])
    await api.wait_running("web")
    frames = await ws_exec(api, "web", ["sh", "-c", "echo out; echo err >&2; exit 3"], protocol)
    assert joined(frames, 1) == b"out\n"
    assert joined(frames, 2) == b"err\n"
    error = joined(frames, 3)
    if protocol.startswith(("v4", "v5")):
        status = json.loads(error)
        assert status["reason"] == "NonZeroExitCode"
        assert status["details"]["causes"] == [{"reason": "ExitCode", "message": "3"}]
        assert status["message"] == "command terminated with non-zero exit code: exit status 3"
    else:
        assert error == b"command terminated with non-zero exit code: exit status 3"
    ok = await ws_exec(api, "web", ["true"], protocol)
    if protocol.startswith(("v4", "v5")):
        assert json.loads(joined(ok, 3)) == {"metadata": {}, "status": "Success"}
    else:
        assert joined(ok, 3) == b""


@requires_root
@requires_runc
async def test_exec_stdin_is_closed_by_v5_channel_255(api: Api) -> None:
    await api.create_pod("web", ["sleep", "3600"])
    await api.wait_running("web")
    frames = await ws_exec(api, "web", ["cat"], "v5.channel.k8s.io", stdin=b"abc\n")
    assert joined(frames, 1) == b"abc\n"
    assert json.loads(joined(frames, 3))["status"] == "Success"


@requires_root
@requires_runc
async def test_exec_with_a_tty_applies_the_resize(api: Api) -> None:
    await api.create_pod("web", ["sleep", "3600"])
    await api.wait_running("web")
    query = "command=sh&stdin=true&stdout=true&tty=true"
    url = api.cluster.url.replace("https://", "wss://")
    url += f"/api/v1/namespaces/default/pods/web/exec?{query}"
    out = b""
    status = b""
    async with websockets.connect(
        url,
        ssl=_ssl(api),
        subprotocols=["v5.channel.k8s.io"],  # type: ignore[list-item]
        additional_headers={"Authorization": f"Bearer {api.token}"},
    ) as ws:
        await ws.send(b'\x04{"Width":100,"Height":30}')
        await ws.send(b"\x00stty size; exit 7\r")
        async for message in ws:
            assert isinstance(message, bytes)
            if message[0] == 1:
                out += message[1:]
            elif message[0] == 3:
                status = message[1:]
            assert message[0] != 2  # a tty has no separate stderr
    assert b"30 100\r\n" in out
    assert json.loads(status)["details"]["causes"] == [{"reason": "ExitCode", "message": "7"}]


@requires_root
@requires_runc
async def test_exec_through_the_official_python_client(api: Api) -> None:
    from kubernetes import client as k8s
    from kubernetes.stream import stream

    await api.create_pod("web", ["sleep", "3600"])
    await api.wait_running("web")
    config = k8s.Configuration()
    config.host = api.cluster.url
    config.ssl_ca_cert = str(api.cluster.data_dir / "pki" / "ca.crt")
    config.api_key = {"authorization": f"Bearer {api.token}"}

    def run() -> tuple[str, int | None]:
        core = k8s.CoreV1Api(k8s.ApiClient(config))
        out = stream(
            core.connect_get_namespaced_pod_exec,
            "web",
            "default",
            command=["sh", "-c", "echo hello-from-python"],
            stderr=True,
            stdin=False,
            stdout=True,
            tty=False,
        )
        resp = stream(
            core.connect_get_namespaced_pod_exec,
            "web",
            "default",
            command=["sh", "-c", "exit 4"],
            stderr=True,
            stdin=False,
            stdout=True,
            tty=False,
            _preload_content=False,
        )
        resp.run_forever(timeout=10)
        return str(out), resp.returncode

    out, code = await asyncio.to_thread(run)
    assert out.strip() == "hello-from-python"
    assert code == 4


@requires_root
@requires_runc
async def test_logs_options_through_the_proxy(api: Api) -> None:
    await api.create_pod("talk", ["sh", "-c", "for i in 1 2 3; do echo line $i; done; sleep 3600"])
    await api.wait_running("talk")
    path = "/api/v1/namespaces/default/pods/talk/log"

    async def three_lines() -> bool:
        r = await api.http.get(path)
        return r.text == "line 1\nline 2\nline 3\n"

    await wait_until(three_lines, 10, what="three log lines")
    r = await api.http.get(path, params={"tailLines": "1"})
    assert r.text == "line 3\n" and r.headers["content-type"].startswith("text/plain")
    r = await api.http.get(path, params={"timestamps": "true", "container": "c"})
    first = r.text.splitlines()[0]
    stamp, _, rest = first.partition(" ")
    assert rest == "line 1" and stamp.endswith("Z") and "T" in stamp
    r = await api.http.get(path, params={"limitBytes": "4"})
    assert r.text == "line"
    r = await api.http.get(path, params={"previous": "true"})
    assert r.status_code == 400
    assert r.json()["message"] == 'previous terminated container "c" in pod "talk" not found'
    r = await api.http.get(path, params={"container": "nope"})
    assert (
        r.status_code == 400 and r.json()["message"] == "container nope is not valid for pod talk"
    )


@requires_root
@requires_runc
async def test_logs_follow_streams_until_the_container_exits(api: Api) -> None:
    await api.create_pod(
        "count",
        ["sh", "-c", "for i in 1 2 3 4 5; do echo n$i; sleep 0.2; done"],
        restartPolicy="Never",
    )
    await api.wait_running("count")
    chunks: list[str] = []
    async with api.http.stream(
        "GET", "/api/v1/namespaces/default/pods/count/log", params={"follow": "true"}, timeout=20
    ) as r:
        assert r.status_code == 200
        async for text in r.aiter_text():
            chunks.append(text)
    assert "".join(chunks) == "".join(f"n{i}\n" for i in range(1, 6))


@requires_root
@requires_runc
async def test_logs_of_a_waiting_container_say_why(api: Api) -> None:
    client = api.cluster.local_client()
    body = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "blocked", "namespace": "default"},
        "spec": {
            "nodeName": api.node,
            "automountServiceAccountToken": False,
            "containers": [
                {
                    "name": "c",
                    "image": "busybox",
                    "command": ["sleep", "1"],
                    "volumeMounts": [{"name": "v", "mountPath": "/v"}],
                }
            ],
            "volumes": [{"name": "v", "configMap": {"name": "absent"}}],
        },
    }
    await client.create(PODS, body, namespace="default")

    async def refused() -> str:
        r = await api.http.get("/api/v1/namespaces/default/pods/blocked/log")
        return str(r.json().get("message", "")) if r.status_code == 400 else ""

    message = await wait_until(refused, 10, what="a 400 for a waiting container")
    assert message == 'container "c" in pod "blocked" is waiting to start: ContainerCreating'


@pytest.mark.parametrize("api", ["simulated"], indirect=True)
async def test_simulated_runtime_says_logs_and_exec_are_unavailable(api: Api) -> None:
    await api.create_pod("sim", ["sleep", "3600"])
    await api.wait_running("sim")
    r = await api.http.get("/api/v1/namespaces/default/pods/sim/log")
    assert r.status_code == 400 and "simulated runtime runs no processes" in r.json()["message"]
    # The SPDY fallback (what kubectl tries after a refused WebSocket) gets the same reason.
    r = await api.http.post("/api/v1/namespaces/default/pods/sim/exec", params={"command": "ls"})
    assert r.status_code == 400 and "simulated runtime runs no processes" in r.json()["message"]
    with pytest.raises(websockets.InvalidStatus) as err:
        await ws_exec(api, "sim", ["ls"], "v5.channel.k8s.io")
    assert err.value.response.status_code == 400


async def test_agent_endpoint_refuses_requests_without_the_secret(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cluster, _network = await _cluster(tmp_path, "simulated", monkeypatch)
    try:
        node = (await cluster.local_client().list(NODES))["items"][0]
        port = node["status"]["daemonEndpoints"]["kubeletEndpoint"]["Port"]
        async with httpx.AsyncClient() as c:
            r = await c.get(f"http://127.0.0.1:{port}/containerLogs/default/x/c")
            assert r.status_code == 401
            r = await c.get(
                f"http://127.0.0.1:{port}/containerLogs/default/x/c",
                headers={"Authorization": "Bearer wrong"},
            )
            assert r.status_code == 401
    finally:
        await cluster.stop()
