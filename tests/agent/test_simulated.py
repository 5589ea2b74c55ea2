"""The simulated runtime and the runtime choice."""

from __future__ import annotations

from pathlib import Path

import pytest

from kubeling.agent.errors import ContainerError, NotSupportedError
from kubeling.agent.runtime import (
    RuncRuntime,
    SimulatedRuntime,
    runc_unavailable_reason,
    select_runtime,
)
from kubeling.agent.runtime.simulated import STOPPED_EXIT_CODE, simulated_exit_code
from kubeling.agent.sandbox import Node, PodSandbox, teardown_pod
from kubeling.agent.volumes import VolumeSources


@pytest.mark.parametrize(
    ("argv", "code"),
    [
        pytest.param([], None, id="placeholder"),
        pytest.param(["sleep", "3600"], None, id="long-running"),
        pytest.param(["true"], 0, id="true"),
        pytest.param(["/bin/false"], 1, id="false"),
        pytest.param(["/bin/sh", "-c", "echo hi; exit 3"], 3, id="script-exit"),
        pytest.param(["sh", "-c", "echo $(date); sleep 10"], None, id="script-runs"),
    ],
)
def test_simulated_exit_rule(argv: list[str], code: int | None) -> None:
    assert simulated_exit_code(argv) == code


def test_select_runtime_explains_the_choice(tmp_path: Path) -> None:
    runtime, reason = select_runtime("simulated", data_dir=tmp_path)
    assert isinstance(runtime, SimulatedRuntime) and "as requested" in reason
    runtime, reason = select_runtime("auto", data_dir=tmp_path)
    problem = runc_unavailable_reason()
    if problem is None:
        assert isinstance(runtime, RuncRuntime) and reason.startswith("Using the runc runtime")
    else:
        assert isinstance(runtime, SimulatedRuntime) and problem in reason
        with pytest.raises(ContainerError, match=problem):
            select_runtime("runc", data_dir=tmp_path)
    with pytest.raises(ValueError, match="unknown runtime"):
        select_runtime("docker", data_dir=tmp_path)


def test_missing_runc_binary_is_reported() -> None:
    reason = runc_unavailable_reason("kubeling-no-such-runc")
    assert reason is not None
    assert (
        "kubeling-no-such-runc is not installed" in reason or "root" in reason or "Linux" in reason
    )


async def test_simulated_pod_runs_prepares_volumes_and_refuses_exec(simulated_node: Node) -> None:
    pod = {
        "metadata": {"name": "sim", "namespace": "default", "uid": "sim-uid"},
        "spec": {
            "containers": [
                {"name": "server", "volumeMounts": [{"name": "data", "mountPath": "/data"}]},
                {"name": "job", "command": ["sh", "-c", "do-work; exit 2"]},
            ],
            "volumes": [{"name": "data", "emptyDir": {}}],
        },
    }
    volumes, errors = await simulated_node.prepare_volumes(pod, VolumeSources())
    assert errors == [] and volumes["data"].path.is_dir()
    sb = await PodSandbox.create(pod, node=simulated_node, volumes=volumes)
    server = await sb.start_container("server")
    assert server.status.state == "running"
    job = await sb.start_container("job")
    assert (job.status.state, job.status.exit_code) == ("exited", 2)
    assert (sb.pod_dir / "etc-hosts").read_text().endswith("127.0.0.1\tsim\n")
    with pytest.raises(NotSupportedError, match="exec is not available"):
        await sb.exec("server", ["ls"])
    stopped = await sb.stop_container("server", grace_seconds=0)
    assert stopped is not None and stopped.exit_code == STOPPED_EXIT_CODE
    assert (await sb.wait_container("server", within=1)).state == "exited"
    await sb.teardown()
    assert not sb.pod_dir.exists()
    assert await simulated_node.runtime.list_containers() == []
    await teardown_pod(simulated_node, "sim-uid")  # idempotent


def test_auto_falls_back_to_simulated_without_root(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("os.geteuid", lambda: 1000)
    runtime, reason = select_runtime("auto", data_dir=tmp_path)
    assert isinstance(runtime, SimulatedRuntime)
    assert reason == (
        "Using the simulated runtime because runc needs root (running as uid 1000): "
        "pods go Running without processes; volumes are still prepared on disk."
    )
    with pytest.raises(
        ContainerError, match=r"^the runc runtime was requested but runc needs root"
    ):
        select_runtime("runc", data_dir=tmp_path)
