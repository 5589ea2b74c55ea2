"""Node-agent behaviour a fresh-clone tester checked with kubectl (issue #5): exec of a
missing binary, OOMKilled, non-root writes into a subPath kubeling created, and a
configMap volume that shows only its keys."""

from __future__ import annotations

import pytest

from tests.e2e.conftest import Kubeling
from tests.e2e.test_pods_e2e import (  # noqa: F401 - the fixtures
    apply_pod,
    cluster,
    k,
    poll,
    runc_test,
    wait_ready,
)

pytestmark = [pytest.mark.e2e]


@runc_test
def test_exec_of_a_missing_binary_is_containerd_s_internal_error(k: Kubeling) -> None:  # noqa: F811
    apply_pod(k, "nobin", {"command": ["sleep", "3600"]})
    wait_ready(k, "nobin")
    out = k.kubectl("exec", "nobin", "--", "nosuchcmd")
    assert out.returncode == 1, out.stderr
    assert out.stderr.startswith(
        "error: Internal error occurred: error executing command in container: failed to exec "
        'in container: failed to start exec "'
    ), out.stderr
    assert out.stderr.rstrip().endswith(
        "OCI runtime exec failed: exec failed: unable to start container process: exec: "
        '"nosuchcmd": executable file not found in $PATH: unknown'
    ), out.stderr
    assert "level=error" not in out.stderr


@runc_test
def test_memory_limit_kill_is_oom_killed(k: Kubeling) -> None:  # noqa: F811
    apply_pod(
        k,
        "greedy",
        {
            "command": ["python3", "-c", "a = bytearray(200 * 1024 * 1024)"],
            "resources": {"limits": {"memory": "32Mi"}},
        },
        restartPolicy="Never",
    )
    path = "{.status.containerStatuses[0].state.terminated.reason}"

    def reason() -> str:
        return k.kubectl("get", "pod", "greedy", "-o", f"jsonpath={path}").stdout

    assert poll(lambda: reason() or None, 60, what="the container to end") == "OOMKilled"
    code = "{.status.containerStatuses[0].state.terminated.exitCode}"
    assert k.ok("get", "pod", "greedy", "-o", f"jsonpath={code}") == "137"


@runc_test
def test_non_root_writes_into_sub_paths_and_config_dir_shows_only_keys(k: Kubeling) -> None:  # noqa: F811
    k.ok("create", "configmap", "app-cm", "--from-literal=app.conf=x=1")
    apply_pod(
        k,
        "nonroot",
        {
            "command": ["sleep", "3600"],
            "securityContext": {"runAsUser": 1000},
            "volumeMounts": [
                {"name": "scratch", "mountPath": "/data", "subPath": "data"},
                {"name": "cm", "mountPath": "/cm"},
                {"name": "cm", "mountPath": "/etc/app.conf", "subPath": "app.conf"},
                {"name": "cm", "mountPath": "/etc/missing", "subPath": "missing.conf"},
            ],
        },
        volumes=[
            {"name": "scratch", "emptyDir": {}},
            {"name": "cm", "configMap": {"name": "app-cm"}},
        ],
    )
    wait_ready(k, "nonroot")
    assert k.kubectl("exec", "nonroot", "--", "touch", "/data/ok").returncode == 0
    listed = k.ok("exec", "nonroot", "--", "ls", "-A", "/cm").split()
    assert [n for n in listed if not n.startswith("..2")] == ["..data", "app.conf"]
    assert k.ok("exec", "nonroot", "--", "cat", "/etc/app.conf") == "x=1"
    assert k.ok("exec", "nonroot", "--", "ls", "-A", "/etc/missing") == ""
