"""Real containers: runc bundles on the host-root overlay, with volumes and the pod network.

Every test runs under the ``runc_node`` fixture, which afterwards asserts nothing is left:
no mounts under the data directory, no runc containers, no namespace, veth or bridge.
"""

from __future__ import annotations

import re
import uuid
from pathlib import Path

import pytest

from kubeling.agent import mounts
from kubeling.agent.errors import ContainerError
from kubeling.agent.network import NETNS_DIR
from kubeling.agent.runtime import RuncRuntime
from kubeling.agent.sandbox import Node, PodSandbox, container_id
from kubeling.agent.volumes import VolumeSources
from tests.agent.conftest import link_exists, netns_names, requires_runc

pytestmark = [pytest.mark.root, requires_runc]

CRI_LINE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z (stdout|stderr) [PF] (.*)$")


def make_pod(
    name: str, containers: list[dict], volumes: list[dict] | None = None, **spec: object
) -> dict:
    return {
        "metadata": {"name": name, "namespace": "shop", "uid": str(uuid.uuid4())},
        "spec": {"containers": containers, "volumes": volumes or [], **spec},
    }


def cm(**data: str) -> VolumeSources:
    return VolumeSources(config_maps={"app": {"metadata": {"name": "app"}, "data": data}})


async def sandbox_for(node: Node, pod: dict, sources: VolumeSources | None = None) -> PodSandbox:
    volumes, errors = await node.prepare_volumes(pod, sources or VolumeSources())
    assert errors == []
    return await PodSandbox.create(pod, node=node, volumes=volumes)


def log_lines(path: Path) -> list[tuple[str, str]]:
    out = []
    for line in path.read_text().splitlines():
        m = CRI_LINE.match(line)
        assert m, f"not a CRI log line: {line!r}"
        out.append((m.group(1), m.group(2)))
    return out


def memory_limit_of(pid: int) -> int:
    """The memory cgroup (v1) limit of a process, read from the host side."""
    for line in Path(f"/proc/{pid}/cgroup").read_text().splitlines():
        if ":memory:" in line:
            rel = line.split(":", 2)[2].lstrip("/")
            return int(Path("/sys/fs/cgroup/memory", rel, "memory.limit_in_bytes").read_text())
    raise AssertionError("no memory cgroup")


async def exec_output(sb: PodSandbox, name: str, argv: list[str]) -> tuple[int, bytes, bytes]:
    session = await sb.exec(name, argv)
    await session.close_stdin()
    out = b""
    while chunk := await session.read_stdout():
        out += chunk
    err = b""
    while chunk := await session.read_stderr():
        err += chunk
    return await session.wait(), out, err


async def test_container_writes_empty_dir_and_reads_config_map(runc_node: Node) -> None:
    pod = make_pod(
        "writer",
        [
            {
                "name": "app",
                "image": "not-imported:1",
                "command": ["/bin/sh", "-c"],
                "args": ["cat /etc/cfg/greeting > /data/out; echo to-out; echo to-err >&2; exit 3"],
                "volumeMounts": [
                    {"name": "data", "mountPath": "/data"},
                    {"name": "cfg", "mountPath": "/etc/cfg"},
                ],
            }
        ],
        [{"name": "data", "emptyDir": {}}, {"name": "cfg", "configMap": {"name": "app"}}],
    )
    sb = await sandbox_for(runc_node, pod, cm(greeting="hello from configmap"))
    started = await sb.start_container("app")
    assert started.image.from_host and "never pulls" in started.image.note
    status = await sb.wait_container("app", within=30)
    assert status.exit_code == 3 and status.finished_at
    assert (sb.volumes["data"].path / "out").read_text() == "hello from configmap"
    assert log_lines(started.log_path) in (
        [("stdout", "to-out"), ("stderr", "to-err")],
        [("stderr", "to-err"), ("stdout", "to-out")],
    )
    assert (
        started.log_path
        == runc_node.data_dir / "logs" / "pods" / f"shop_writer_{sb.uid}" / "app" / "0.log"
    )
    await sb.teardown()
    assert not started.log_path.exists()
    assert mounts.mounts_under(runc_node.data_dir) == []


async def test_read_only_mounts_and_root_are_read_only(runc_node: Node) -> None:
    script = (
        "touch /ro/x 2>/dev/null && exit 10; "
        "touch /cfg/x 2>/dev/null && exit 11; "
        "touch /newfile 2>/dev/null && exit 12; "
        "touch /rw/y || exit 13; exit 0"
    )
    pod = make_pod(
        "ro",
        [
            {
                "name": "app",
                "command": ["/bin/sh", "-c", script],
                "volumeMounts": [
                    {"name": "data", "mountPath": "/ro", "readOnly": True},
                    {"name": "data", "mountPath": "/rw"},
                    {"name": "cfg", "mountPath": "/cfg"},  # configMap: read-only regardless
                ],
            }
        ],
        [{"name": "data", "emptyDir": {}}, {"name": "cfg", "configMap": {"name": "app"}}],
    )
    sb = await sandbox_for(runc_node, pod, cm(k="v"))
    await sb.start_container("app")
    status = await sb.wait_container("app", within=30)
    assert status.exit_code == 0, log_lines(sb.log_path("app"))
    assert (sb.volumes["data"].path / "y").exists()
    assert not (sb.volumes["data"].path / "x").exists()
    await sb.teardown()


async def test_config_map_update_is_seen_by_running_container(runc_node: Node) -> None:
    pod = make_pod(
        "watcher",
        [
            {
                "name": "app",  # no command: the placeholder keeps it running
                "volumeMounts": [
                    {"name": "cfg", "mountPath": "/etc/cfg"},
                    {"name": "cfg", "mountPath": "/etc/app.conf", "subPath": "app.conf"},
                ],
            }
        ],
        [{"name": "cfg", "configMap": {"name": "app"}}],
    )
    sb = await sandbox_for(runc_node, pod, cm(**{"app.conf": "v1", "other": "o1"}))
    started = await sb.start_container("app")
    assert started.status.state == "running"
    assert await exec_output(sb, "app", ["cat", "/etc/cfg/app.conf", "/etc/app.conf"]) == (
        0,
        b"v1v1",
        b"",
    )
    changed = await sb.update_volumes(cm(**{"app.conf": "version-2", "other": "o1"}))
    assert changed == ["cfg"]
    code, out, _ = await exec_output(sb, "app", ["cat", "/etc/cfg/app.conf", "/etc/app.conf"])
    assert (code, out) == (0, b"version-2version-2")
    code, out, _ = await exec_output(sb, "app", ["readlink", "/etc/cfg/..data"])
    assert out.startswith(b"..20")
    await sb.teardown(grace_seconds=1)


async def test_exec_streams_exit_code_and_tty(runc_node: Node) -> None:
    pod = make_pod("execd", [{"name": "app"}])
    sb = await sandbox_for(runc_node, pod)
    await sb.start_container("app")
    session = await sb.exec("app", ["/bin/sh", "-c", "cat; echo oops >&2; exit 4"])
    await session.write_stdin(b"ping\n")
    await session.close_stdin()
    assert await session.read_stdout() == b"ping\n"
    assert await session.read_stderr() == b"oops\n"
    assert await session.wait() == 4

    tty = await sb.exec("app", ["/bin/sh", "-c", "tty; stty size"], tty=True, size=(120, 40))
    await tty.resize(cols=120, rows=40)
    out = b""
    while chunk := await tty.read_stdout():
        out += chunk
    assert await tty.wait() == 0
    lines = out.decode().split("\r\n")
    assert lines[0].startswith("/dev/pts/") and lines[1] == "40 120"
    tty.close()
    await sb.teardown(grace_seconds=1)


async def test_restart_keeps_empty_dir_and_writes_a_new_log(runc_node: Node) -> None:
    pod = make_pod(
        "crashy",
        [
            {
                "name": "app",
                "command": ["/bin/sh", "-c", "echo run >> /data/runs; echo started; exit 1"],
                "volumeMounts": [{"name": "data", "mountPath": "/data"}],
            }
        ],
        [{"name": "data", "emptyDir": {}}],
    )
    sb = await sandbox_for(runc_node, pod)
    for restart in range(2):
        await sb.start_container("app", restart_count=restart)
        assert (await sb.wait_container("app", within=30)).exit_code == 1
    assert (sb.volumes["data"].path / "runs").read_text() == "run\nrun\n"
    assert log_lines(sb.log_path("app", 0)) == [("stdout", "started")]
    assert log_lines(sb.log_path("app", 1)) == [("stdout", "started")]
    await sb.teardown()


async def test_container_sees_pod_identity_network_and_limits(runc_node: Node) -> None:
    pod = make_pod(
        "web-0",
        [
            {
                "name": "app",
                "resources": {"limits": {"memory": "48Mi", "cpu": "250m"}},
                "env": [{"name": "GREETING", "value": "hi"}],
            }
        ],
        hostname="web-0",
        subdomain="nginx",
    )
    sb = await sandbox_for(runc_node, pod)
    await sb.start_container("app")
    assert sb.ip is not None and runc_node.network is not None
    code, out, _ = await exec_output(
        sb, "app", ["/bin/sh", "-c", "hostname; echo $GREETING; cat /etc/resolv.conf /etc/hosts"]
    )
    assert code == 0
    text = out.decode()
    assert text.startswith("web-0\nhi\n")
    assert (
        f"nameserver {runc_node.network.dns_ip}\nsearch shop.svc.cluster.local svc.cluster.local cluster.local\noptions ndots:5\n"
        in text
    )
    assert f"{sb.ip}\tweb-0.nginx.shop.svc.cluster.local\tweb-0\n" in text
    code, out, _ = await exec_output(sb, "app", ["ip", "-o", "-4", "addr", "show", "dev", "eth0"])
    assert f"inet {sb.ip}/" in out.decode()
    status = await sb.container_status("app")
    assert status is not None and status.pid
    assert memory_limit_of(status.pid) == 48 * 1024 * 1024
    await sb.teardown(grace_seconds=1)


async def test_agent_restart_adopts_known_pods_and_removes_others(runc_node: Node) -> None:
    keep = make_pod("keep", [{"name": "app"}])
    drop = make_pod("drop", [{"name": "app"}], [{"name": "data", "emptyDir": {"medium": "Memory"}}])
    kept = await sandbox_for(runc_node, keep)
    dropped = await sandbox_for(runc_node, drop)
    await kept.start_container("app")
    await dropped.start_container("app")
    assert dropped.network is not None
    # A new agent process: fresh runtime object, same data directory.
    fresh = Node(
        data_dir=runc_node.data_dir,
        runtime=RuncRuntime(data_dir=runc_node.data_dir),
        network=runc_node.network,
    )
    adopted, gone = await fresh.recover({kept.uid})
    assert [(i.pod_uid, i.container_name, i.state) for i in adopted] == [
        (kept.uid, "app", "running")
    ]
    assert gone == [dropped.uid]
    assert await fresh.runtime.status(container_id(dropped.uid, "app")) is None
    assert not dropped.pod_dir.exists()
    assert dropped.network.netns not in netns_names()
    assert not (NETNS_DIR / dropped.network.netns).exists()
    attached = await PodSandbox.create(keep, node=fresh, volumes=kept.volumes)
    assert attached.ip == kept.ip
    status = await attached.container_status("app")
    assert status is not None and status.state == "running"
    await attached.teardown(grace_seconds=1)


async def test_node_shutdown_stops_every_pod_and_removes_the_bridge(runc_node: Node) -> None:
    first = await sandbox_for(runc_node, make_pod("one", [{"name": "app"}]))
    second = await sandbox_for(
        runc_node,
        make_pod("two", [{"name": "app"}], [{"name": "m", "emptyDir": {"medium": "Memory"}}]),
    )
    await first.start_container("app")
    await second.start_container("app")
    assert runc_node.network is not None
    assert link_exists(runc_node.network.bridge)
    await runc_node.shutdown(grace_seconds=0.5)
    assert await runc_node.runtime.list_containers() == []
    assert not link_exists(runc_node.network.bridge)
    assert mounts.mounts_under(runc_node.data_dir) == []
    # Logs are kept on shutdown (the pods may come back); they go with pod deletion.
    assert first.log_path("app").exists()


async def test_start_failure_is_an_error_and_leaves_no_bundle(runc_node: Node) -> None:
    sb = await sandbox_for(
        runc_node, make_pod("broken", [{"name": "app", "command": ["/no/such/binary"]}])
    )
    with pytest.raises(ContainerError, match=r"failed to start: .*/no/such/binary"):
        await sb.start_container("app")
    assert await sb.container_status("app") is None
    assert mounts.mounts_under(runc_node.data_dir / "runc") == []
    await sb.teardown()


async def test_teardown_cleans_up_after_partial_set_up(runc_node: Node) -> None:
    pod = make_pod("half", [{"name": "app"}], [{"name": "mem", "emptyDir": {"medium": "Memory"}}])
    volumes, _ = await runc_node.prepare_volumes(pod, VolumeSources())
    assert runc_node.network is not None
    net = await runc_node.network.setup_pod(pod["metadata"]["uid"])
    # No sandbox object, nothing started: the agent crashed here.
    assert mounts.mounts_under(runc_node.data_dir)
    from kubeling.agent.sandbox import teardown_pod

    await teardown_pod(runc_node, pod["metadata"]["uid"])
    await teardown_pod(runc_node, pod["metadata"]["uid"])  # and again: idempotent
    assert mounts.mounts_under(runc_node.data_dir) == []
    assert net.netns not in netns_names()
    assert not volumes["mem"].path.exists()
    assert not link_exists(net.host_veth)
