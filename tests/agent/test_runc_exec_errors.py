"""An exec whose command cannot start is an error, not runc's log line and exit 255."""

from __future__ import annotations

import json
import re

import pytest

from kubeling.agent.runtime.base import ExecStartError
from kubeling.agent.sandbox import Node
from tests.agent.conftest import requires_root, requires_runc
from tests.agent.test_logs_exec import Api, api, joined, ws_exec  # noqa: F401 - the fixture
from tests.agent.test_runc import exec_output, make_pod, sandbox_for

pytestmark = [pytest.mark.root, requires_runc]

UPSTREAM = re.compile(
    r"^Internal error occurred: error executing command in container: failed to exec in "
    r'container: failed to start exec "[0-9a-f]{64}": OCI runtime exec failed: exec failed: '
    r'unable to start container process: exec: "nosuchcmd": executable file not found in '
    r"\$PATH: unknown$"
)


@pytest.mark.parametrize("tty", [pytest.param(False, id="pipes"), pytest.param(True, id="tty")])
async def test_exec_of_a_missing_executable_is_containerd_s_error(
    runc_node: Node, tty: bool
) -> None:
    sb = await sandbox_for(runc_node, make_pod("web", [{"name": "app"}]))
    await sb.start_container("app")
    with pytest.raises(ExecStartError) as info:
        await sb.exec("app", ["nosuchcmd", "arg"], tty=tty)
    assert UPSTREAM.match(str(info.value)), str(info.value)
    # a command that starts and fails keeps its own exit code and output
    code, out, err = await exec_output(sb, "app", ["/bin/sh", "-c", "echo hi; exit 255"])
    assert (code, out, err) == (255, b"hi\n", b"")
    state_dir = sb.pod_dir.parent.parent / "runc" / "bundles"
    assert not list(state_dir.glob("*/state/exec-*.pid"))  # no pid file left behind
    await sb.teardown(grace_seconds=1)


@requires_root
async def test_exec_of_a_missing_executable_reaches_the_client_as_an_internal_error(
    api: Api,  # noqa: F811
) -> None:
    await api.create_pod("web", ["sleep", "3600"])
    await api.wait_running("web")
    frames = await ws_exec(api, "web", ["nosuchcmd"], "v5.channel.k8s.io")
    assert joined(frames, 1) == joined(frames, 2) == b""
    status = json.loads(joined(frames, 3))
    assert (status["status"], status["reason"], status["code"]) == ("Failure", "InternalError", 500)
    assert UPSTREAM.match(status["message"]), status["message"]
    assert status["details"]["causes"] == [
        {"message": status["message"].removeprefix("Internal error occurred: ")}
    ]
