"""subPath mounts seen from inside real containers."""

from __future__ import annotations

import pytest

from kubeling.agent.sandbox import Node
from tests.agent.conftest import requires_runc
from tests.agent.test_runc import cm, make_pod, sandbox_for

pytestmark = [pytest.mark.root, requires_runc]


async def test_non_root_container_writes_into_a_sub_path_kubeling_created(
    runc_node: Node,
) -> None:
    pod = make_pod(
        "writer",
        [
            {
                "name": "app",
                "command": ["/bin/sh", "-c", "touch /data/ok && ls -A /cm"],
                "volumeMounts": [
                    {"name": "scratch", "mountPath": "/data", "subPath": "data"},
                    {"name": "cfg", "mountPath": "/cm"},
                    {"name": "cfg", "mountPath": "/etc/app.conf", "subPath": "app.conf"},
                ],
            }
        ],
        [{"name": "scratch", "emptyDir": {}}, {"name": "cfg", "configMap": {"name": "app"}}],
        securityContext={"runAsUser": 1000, "runAsGroup": 1000},
    )
    sb = await sandbox_for(runc_node, pod, cm(**{"app.conf": "x=1"}))
    await sb.start_container("app")
    status = await sb.wait_container("app", within=30)
    log = sb.log_path("app", 0).read_text()
    assert status.exit_code == 0, log
    assert (sb.volumes["scratch"].path / "data" / "ok").stat().st_uid == 1000
    # the whole-volume mount shows the ConfigMap's files and the writer's own, nothing else
    listed = sorted(line.split(" ", 3)[3] for line in log.splitlines())
    assert [n for n in listed if not n.startswith("..2")] == ["..data", "app.conf"]
    await sb.teardown()
