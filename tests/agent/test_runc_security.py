"""What a container on the host-root overlay may see and be (issue 5): the kubeling data
directory and host secrets are masked, and the pod's groups reach the process.

The masking test needs a data directory outside ``/tmp`` (which containers see as an empty
tmpfs anyway, so a data directory there would prove nothing): it uses one under
``/var/tmp`` and a file under ``/root``, both its own and removed afterwards.
"""

from __future__ import annotations

import shutil
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from kubeling.agent import mounts
from kubeling.agent.runtime import RuncRuntime
from kubeling.agent.runtime.runc import masked_host_dirs
from kubeling.agent.sandbox import Node, PodSandbox, teardown_pod
from kubeling.agent.volumes import VolumeSources
from tests.agent.conftest import assert_nothing_left, requires_runc

pytestmark = [pytest.mark.root, requires_runc]


@pytest.fixture
async def host_root_node() -> AsyncIterator[Node]:
    """A runc node whose cluster data directory is ``/var/tmp/kubeling-test-*`` (the agent's
    is its ``agent/``, as ``Cluster`` lays it out); no pod network."""
    cluster_dir = Path("/var/tmp") / f"kubeling-test-{uuid.uuid4().hex[:12]}"
    data_dir = cluster_dir / "agent"
    data_dir.mkdir(parents=True)
    node = Node(data_dir=data_dir, runtime=RuncRuntime(data_dir=data_dir))
    try:
        yield node
    finally:
        for uid in node.known_pod_uids() | {
            i.pod_uid for i in await node.runtime.list_containers()
        }:
            await teardown_pod(node, uid)
        assert_nothing_left(data_dir, None, set())
        assert mounts.mounts_under(cluster_dir) == []
        shutil.rmtree(cluster_dir)


def make_pod(name: str, script: str, **spec: object) -> dict:
    return {
        "metadata": {"name": name, "namespace": "shop", "uid": str(uuid.uuid4())},
        "spec": {
            "containers": [
                {"name": "app", "image": "busybox", "command": ["/bin/sh", "-c", script]}
            ],
            **spec,
        },
    }


async def run_to_exit(node: Node, pod: dict) -> tuple[int | None, str]:
    """Run the pod's one container to its end: (exit code, its log)."""
    volumes, errors = await node.prepare_volumes(pod, VolumeSources())
    assert errors == []
    sb = await PodSandbox.create(pod, node=node, volumes=volumes)
    started = await sb.start_container("app")
    assert started.image.from_host
    status = await sb.wait_container("app", within=30)
    log = started.log_path.read_text()
    await sb.teardown()
    return status.exit_code, log


def test_masked_dirs_cover_the_cluster_data_dir_and_host_secrets(tmp_path: Path) -> None:
    agent = tmp_path / "cluster" / "agent"
    dirs = masked_host_dirs(agent)
    assert dirs[:2] == [str(agent.parent), str(agent)]
    assert {"/root", "/home", "/etc/ssh", "/var/lib"} <= set(dirs)
    # An agent directory not named ``agent`` is not inside a cluster's: only it is masked.
    assert masked_host_dirs(tmp_path / "solo")[0] == str(tmp_path / "solo")
    assert str(tmp_path) not in masked_host_dirs(tmp_path / "solo")
    # Never the host root itself.
    assert "/" not in masked_host_dirs(Path("/agent"))


async def test_host_root_container_cannot_read_data_dir_or_root(host_root_node: Node) -> None:
    cluster_dir = host_root_node.data_dir.parent
    ca_key = cluster_dir / "pki" / "ca.key"
    ca_key.parent.mkdir()
    ca_key.write_text("not-for-pods-ca\n")
    agent_file = host_root_node.data_dir / "secret"
    agent_file.write_text("not-for-pods-agent\n")
    root_file = Path("/root") / f".kubeling-test-{uuid.uuid4().hex[:12]}"
    root_file.write_text("not-for-pods-root\n")
    try:
        script = (
            f"cat {ca_key} {agent_file} {root_file} /etc/shadow 2>/dev/null; "
            f"ls -A {cluster_dir} /root; "
            # The view is still the host's: its binaries run and /etc is there.
            "test -s /etc/passwd && echo passwd-visible; "
            f"touch {cluster_dir}/x 2>/dev/null && echo writable; exit 0"
        )
        code, log = await run_to_exit(host_root_node, make_pod("peek", script))
    finally:
        root_file.unlink()
    assert code == 0, log
    assert "passwd-visible" in log
    assert "not-for-pods" not in log
    assert root_file.name not in log and "pki" not in log and "agent" not in log
    assert "writable" not in log
    assert not (cluster_dir / "x").exists()


async def test_fs_group_and_supplemental_groups_reach_the_process(host_root_node: Node) -> None:
    pod = make_pod(
        "groups",
        "grep -E '^(Uid|Gid|Groups):' /proc/self/status",
        securityContext={
            "runAsUser": 1000,
            "runAsGroup": 1000,
            "fsGroup": 2000,
            "supplementalGroups": [3000],
        },
    )
    code, log = await run_to_exit(host_root_node, pod)
    assert code == 0, log
    fields = {}
    for line in log.splitlines():
        key, _, value = line.split(" ", 3)[3].partition(":")
        fields[key] = value.split()
    assert fields["Uid"][0] == "1000" and fields["Gid"][0] == "1000"
    assert fields["Groups"] == ["2000", "3000"]


async def test_host_path_without_type_on_a_missing_path_runs(
    host_root_node: Node, tmp_path: Path
) -> None:
    missing = tmp_path / "not" / "yet"
    pod = make_pod("hp", "echo made > /data/out", volumes=[])
    pod["spec"]["containers"][0]["volumeMounts"] = [{"name": "data", "mountPath": "/data"}]
    pod["spec"]["volumes"] = [{"name": "data", "hostPath": {"path": str(missing)}}]
    code, log = await run_to_exit(host_root_node, pod)
    assert code == 0, log
    assert (missing / "out").read_text() == "made\n"
