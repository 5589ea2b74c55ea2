"""A container killed by its memory cgroup is told apart from one that merely exited 137."""

from __future__ import annotations

import pytest

from kubeling.agent.sandbox import Node
from tests.agent.conftest import requires_runc
from tests.agent.test_runc import make_pod, sandbox_for

pytestmark = [pytest.mark.root, requires_runc]

GREEDY = "a = bytearray(200 * 1024 * 1024)"


@pytest.mark.parametrize(
    ("command", "oom"),
    [
        pytest.param(["python3", "-c", GREEDY], True, id="over-the-limit"),
        pytest.param(
            ["/bin/sh", "-c", "sleep 100 & kill -9 $!; wait $!"], False, id="exit-137-not-oom"
        ),
    ],
)
async def test_memory_cgroup_kill_is_reported_as_oom(
    runc_node: Node, command: list[str], oom: bool
) -> None:
    pod = make_pod(
        "oom",
        [{"name": "app", "command": command, "resources": {"limits": {"memory": "32Mi"}}}],
    )
    sb = await sandbox_for(runc_node, pod)
    await sb.start_container("app")
    status = await sb.wait_container("app", within=60)
    assert status.exit_code == 137
    assert status.oom_killed is oom
    # the container's runc state (kept for the counter) is gone once it is recorded
    assert runc_node.runtime.root.exists()  # type: ignore[attr-defined]
    assert not (runc_node.runtime.root / status.id).exists()  # type: ignore[attr-defined]
    # a restart under the same id works after the kept container was deleted
    await sb.start_container("app", restart_count=1)
    again = await sb.wait_container("app", within=60)
    assert (again.exit_code, again.oom_killed) == (137, oom)
    await sb.teardown()
