"""The agent reports a container its memory cgroup killed as ``OOMKilled``, as upstream."""

from __future__ import annotations

import pytest

from kubeling.machinery.types import Obj
from tests.agent.conftest import requires_root, requires_runc
from tests.agent.test_kubelet import wait_until
from tests.agent.test_kubelet_runc import Env, env  # noqa: F401 - the fixture

pytestmark = [pytest.mark.root]


@requires_root
@requires_runc
@pytest.mark.parametrize(
    ("command", "reason"),
    [
        pytest.param(
            ["python3", "-c", "a = bytearray(200 * 1024 * 1024)"], "OOMKilled", id="oom-killed"
        ),
        pytest.param(["sh", "-c", "sleep 100 & kill -9 $!; wait $!"], "Error", id="exit-137"),
    ],
)
async def test_memory_cgroup_kill_is_reason_oom_killed(
    env: Env,  # noqa: F811
    command: list[str],
    reason: str,
) -> None:
    k = env.kubelet()
    await k.start()
    try:
        await env.create_pod(
            "oom",
            {"command": command, "resources": {"limits": {"memory": "32Mi"}}},
            restartPolicy="Never",
        )

        async def terminated() -> Obj | None:
            t: Obj | None = ((await env.container("oom")).get("state") or {}).get("terminated")
            return t

        term = await wait_until(terminated, 30, what="the container to end")
        assert (term["exitCode"], term["reason"]) == (137, reason)
    finally:
        await k.stop()
