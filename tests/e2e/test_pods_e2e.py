"""Pods for real: ``kubeling up`` with runc, driven by kubectl (logs, exec, cp, volumes).

One server for the module, on a private bridge and /24 (``KUBELING_POD_BRIDGE`` and
``KUBELING_POD_CIDR``); pods are bound with ``spec.nodeName`` so these tests do not depend
on the scheduler. The last test stops the server with SIGTERM and checks that nothing the
agent made is left: mounts, runc containers, network namespaces, the bridge.
"""

from __future__ import annotations

import json
import pathlib
import subprocess
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import yaml

from kubeling.agent import mounts
from tests.agent.conftest import (
    link_exists,
    netns_names,
    requires_root,
    requires_runc,
    test_network,
)
from tests.e2e.conftest import Kubeling, start_kubeling, stop_kubeling
from tests.helpers import waiting

pytestmark = [pytest.mark.e2e]


def poll(predicate: Callable[[], Any], timeout: float = 30.0, *, what: str = "") -> Any:
    """``tests.helpers.waiting.poll`` with this module's deadline and a 0.1 s round."""
    return waiting.poll(predicate, timeout, what=what, interval=0.1)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Kubeling, Any]]:
    base = tmp_path_factory.mktemp("pods")
    cache = base / "kube-cache"
    cache.mkdir()
    network = test_network(base / "data" / "agent")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("KUBELING_POD_BRIDGE", network.bridge)
        mp.setenv("KUBELING_POD_CIDR", str(network.subnet))
        k = start_kubeling(base / "data", cache, "--runtime=runc")
    try:
        yield k, network
    finally:
        if k.proc.poll() is None:
            stop_kubeling(k)


@pytest.fixture
def k(cluster: tuple[Kubeling, Any]) -> Kubeling:
    if cluster[0].proc.poll() is not None:
        pytest.skip("the module's kubeling up has stopped")
    return cluster[0]


def node_name(k: Kubeling) -> str:
    return k.ok("get", "nodes", "-o", "jsonpath={.items[0].metadata.name}").strip()


def apply_pod(k: Kubeling, name: str, container: dict[str, Any], **spec: Any) -> None:
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name},
        "spec": {
            "nodeName": node_name(k),
            "terminationGracePeriodSeconds": 2,
            "containers": [{"name": "c", "image": "busybox:1.36", **container}],
            **spec,
        },
    }
    k.ok("apply", "-f", "-", input=yaml.safe_dump(pod))


def wait_ready(k: Kubeling, name: str) -> None:
    k.ok("wait", "--for=condition=Ready", f"pod/{name}", "--timeout=60s")


needs_runc = [requires_root, requires_runc]


def runc_test(fn: Any) -> Any:
    for mark in needs_runc:
        fn = mark(fn)
    return fn


@runc_test
def test_node_registered_and_ready(k: Kubeling) -> None:
    out = k.ok("get", "nodes", "-o", "json")
    node = json.loads(out)["items"][0]
    ready = {c["type"]: c["status"] for c in node["status"]["conditions"]}["Ready"]
    assert ready == "True"
    assert node["status"]["nodeInfo"]["containerRuntimeVersion"].startswith("runc://")
    assert "Using the runc runtime" in "\n".join(k.output)


@runc_test
def test_kubectl_logs_and_follow(k: Kubeling) -> None:
    apply_pod(
        k, "talk", {"command": ["sh", "-c", "for i in 1 2 3; do echo line $i; done; sleep 3600"]}
    )
    wait_ready(k, "talk")
    poll(lambda: k.kubectl("logs", "talk").stdout == "line 1\nline 2\nline 3\n", what="logs")
    assert k.ok("logs", "talk", "--tail=1") == "line 3\n"
    stamped = k.ok("logs", "talk", "--timestamps").splitlines()[0]
    assert stamped.endswith("Z line 1")
    prev = k.kubectl("logs", "talk", "--previous")
    assert prev.returncode == 1
    assert 'previous terminated container "c" in pod "talk" not found' in prev.stderr
    apply_pod(
        k,
        "count",
        {"command": ["sh", "-c", "for i in 1 2 3; do echo n$i; sleep 0.3; done"]},
        restartPolicy="Never",
    )
    poll(
        lambda: (
            k.kubectl("get", "pod", "count", "-o", "jsonpath={.status.phase}").stdout
            in ("Running", "Succeeded")
        )
    )
    followed = k.kubectl("logs", "-f", "count", timeout=30)
    assert followed.returncode == 0 and followed.stdout == "n1\nn2\nn3\n"


@runc_test
def test_kubectl_exec_exit_codes_stdin_and_cp(k: Kubeling, tmp_path: pathlib.Path) -> None:
    apply_pod(k, "box", {"command": ["sleep", "3600"]})
    wait_ready(k, "box")
    out = k.kubectl("exec", "box", "--", "sh", "-c", "echo out; echo err >&2; exit 3")
    assert out.returncode == 3
    assert out.stdout == "out\n" and "err" in out.stderr
    assert "command terminated with exit code 3" in out.stderr
    assert k.kubectl("exec", "-i", "box", "--", "cat", input="piped\n").stdout == "piped\n"
    src = tmp_path / "in.txt"
    src.write_text("copied data\n")
    k.ok("cp", str(src), "box:/tmp/in.txt")
    assert k.ok("exec", "box", "--", "cat", "/tmp/in.txt") == "copied data\n"
    back = tmp_path / "back.txt"
    k.ok("cp", "box:/tmp/in.txt", str(back))
    assert back.read_text() == "copied data\n"
    bad = k.kubectl("exec", "box", "-c", "nope", "--", "true")
    assert bad.returncode == 1 and "container nope is not valid for pod box" in bad.stderr


@runc_test
def test_configmap_hot_update_subpath_and_env(k: Kubeling) -> None:
    k.ok("create", "configmap", "web-conf", '--from-literal=app.json={"v":1}')
    apply_pod(
        k,
        "web",
        {
            "command": ["sleep", "3600"],
            "env": [
                {
                    "name": "V",
                    "valueFrom": {"configMapKeyRef": {"name": "web-conf", "key": "app.json"}},
                }
            ],
            "volumeMounts": [
                {"name": "conf", "mountPath": "/etc/conf-dir"},
                {"name": "conf", "mountPath": "/etc/app.json", "subPath": "app.json"},
            ],
        },
        volumes=[{"name": "conf", "configMap": {"name": "web-conf"}}],
    )
    wait_ready(k, "web")
    assert k.ok("exec", "web", "--", "cat", "/etc/conf-dir/app.json") == '{"v":1}'
    k.ok("patch", "configmap", "web-conf", "-p", json.dumps({"data": {"app.json": '{"v":2}'}}))
    # Within two seconds, through the watch (upstream: up to a minute or more).
    poll(
        lambda: k.kubectl("exec", "web", "--", "cat", "/etc/conf-dir/app.json").stdout == '{"v":2}',
        2.0,
        what="the directory mount to show v2",
    )
    # kubeling refreshes subPath mounts too (upstream never does: B20); env stays v1.
    poll(lambda: k.kubectl("exec", "web", "--", "cat", "/etc/app.json").stdout == '{"v":2}', 2.0)
    assert k.ok("exec", "web", "--", "printenv", "V") == '{"v":1}\n'
    ro = k.kubectl("exec", "web", "--", "sh", "-c", "echo x > /etc/conf-dir/new")
    assert ro.returncode != 0


@runc_test
def test_secret_bytes_reach_env_and_files_unchanged(k: Kubeling, tmp_path: pathlib.Path) -> None:
    pw = tmp_path / "pass.txt"
    pw.write_text("secret123\n")
    k.ok(
        "create",
        "secret",
        "generic",
        "db",
        f"--from-file=password={pw}",
        "--from-literal=password2=secret123",
    )
    apply_pod(
        k,
        "sec",
        {
            "command": ["sleep", "3600"],
            "env": [
                {"name": "P1", "valueFrom": {"secretKeyRef": {"name": "db", "key": "password"}}},
                {"name": "P2", "valueFrom": {"secretKeyRef": {"name": "db", "key": "password2"}}},
            ],
            "volumeMounts": [{"name": "s", "mountPath": "/s"}],
        },
        volumes=[{"name": "s", "secret": {"secretName": "db"}}],
    )
    wait_ready(k, "sec")
    out = k.ok(
        "exec",
        "sec",
        "--",
        "sh",
        "-c",
        'printf %s "$P1" | wc -c; printf %s "$P2" | wc -c; wc -c < /s/password',
    )
    assert [int(x) for x in out.split()] == [10, 9, 10]
    listing = k.ok(
        "exec", "sec", "--", "ls", "/var/run/secrets/kubernetes.io/serviceaccount"
    ).split()
    assert {"token", "ca.crt", "namespace"} <= set(listing)
    token = k.ok("exec", "sec", "--", "cat", "/var/run/secrets/kubernetes.io/serviceaccount/token")
    who = k.kubectl(
        "auth", "whoami", f"--token={token}", "-o", "jsonpath={.status.userInfo.username}"
    )
    assert who.stdout == "system:serviceaccount:default:default", who.stderr


@runc_test
def test_hostpath_is_root_owned_and_fsgroup_applies_to_emptydir_only(
    k: Kubeling, tmp_path: pathlib.Path
) -> None:
    host = tmp_path / "srv" / "app-logs" / "web"
    script = "ls -ld /logs; touch /logs/x && echo WRITE-OK || echo WRITE-DENIED; touch /scratch/y; ls -n /scratch/y; sleep 3600"
    apply_pod(
        k,
        "perm",
        {
            "command": ["sh", "-c", script],
            "volumeMounts": [
                {"name": "logs", "mountPath": "/logs"},
                {"name": "scratch", "mountPath": "/scratch"},
            ],
        },
        securityContext={"runAsUser": 1000, "runAsGroup": 1000, "fsGroup": 2000},
        volumes=[
            {"name": "logs", "hostPath": {"path": str(host), "type": "DirectoryOrCreate"}},
            {"name": "scratch", "emptyDir": {}},
        ],
    )
    wait_ready(k, "perm")
    logs = poll(
        lambda: "/scratch/y" in (out := k.kubectl("logs", "perm").stdout) and out,
        what="the script's output",
    )
    lines = logs.splitlines()
    assert lines[0].startswith("drwxr-xr-x") and " root " in lines[0]
    assert "WRITE-DENIED" in lines and "WRITE-OK" not in lines
    (listed,) = [line for line in lines if line.endswith("/scratch/y")]
    assert listed.split()[3] == "2000", logs  # a file in the emptyDir gets the fsGroup
    assert oct(host.stat().st_mode & 0o777) == "0o755"


@runc_test
def test_memory_emptydir_is_sized_by_size_limit(k: Kubeling) -> None:
    apply_pod(
        k,
        "mem",
        {
            "command": [
                "sh",
                "-c",
                "df -k /cache | tail -1; dd if=/dev/zero of=/cache/f bs=1M count=100 2>&1 | head -1; sleep 3600",
            ],
            "resources": {"limits": {"memory": "256Mi"}},
            "volumeMounts": [{"name": "cache", "mountPath": "/cache"}],
        },
        volumes=[{"name": "cache", "emptyDir": {"medium": "Memory", "sizeLimit": "64Mi"}}],
    )
    wait_ready(k, "mem")
    logs = poll(lambda: (out := k.kubectl("logs", "mem").stdout).count("\n") >= 2 and out)
    size_kib = int(logs.splitlines()[0].split()[1])
    assert size_kib == 64 * 1024
    assert "No space left on device" in logs


def test_configmap_from_env_file_keeps_quotes(
    k: Kubeling, tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    env_file = tmp_path / "app.env"
    lines = ["# comment", "A=hello", 'B="hello world"', "C='hello world'", "   D=indented"]
    lines += ["E=value # not a comment", "F=trail   ", "", "APP_G"]
    env_file.write_text("\n".join(lines) + "\n")
    monkeypatch.setenv("APP_G", "from-shell")  # a key without '=' reads kubectl's environment
    k.ok("create", "configmap", "app-env", f"--from-env-file={env_file}")
    data = json.loads(k.ok("get", "configmap", "app-env", "-o", "json"))["data"]
    assert data == {
        "A": "hello",
        "B": '"hello world"',
        "C": "'hello world'",
        "D": "indented",
        "E": "value # not a comment",
        "F": "trail   ",
        "APP_G": "from-shell",
    }


@runc_test
def test_delete_pod_waits_for_graceful_stop(k: Kubeling) -> None:
    apply_pod(k, "bye", {"command": ["sleep", "3600"]})
    wait_ready(k, "bye")
    uid = k.ok("get", "pod", "bye", "-o", "jsonpath={.metadata.uid}")
    k.ok("delete", "pod", "bye", "--wait=true", "--timeout=30s")
    assert k.kubectl("get", "pod", "bye").returncode == 1
    assert not (k.data_dir / "agent" / "pods" / uid).exists()
    events = k.ok("get", "events", "--field-selector", "involvedObject.name=bye", "-o", "json")
    reasons = [e["reason"] for e in json.loads(events)["items"]]
    assert "Killing" in reasons


@runc_test
def test_sigterm_stops_every_pod_and_leaves_nothing(
    cluster: tuple[Kubeling, Any],
) -> None:
    k, network = cluster
    if k.proc.poll() is not None:
        pytest.skip("the module's kubeling up has stopped")
    apply_pod(k, "last", {"command": ["sleep", "3600"]})
    wait_ready(k, "last")
    pods = json.loads(k.ok("get", "pods", "-A", "-o", "json"))["items"]
    ours = {network._names(p["metadata"]["uid"])[0] for p in pods}
    assert ours & netns_names()  # the running pods have their namespaces now
    assert stop_kubeling(k) == 0
    data_dir = k.data_dir / "agent"
    assert mounts.mounts_under(k.data_dir) == []
    runc_root = data_dir / "runc" / "root"
    if runc_root.exists():
        listed = subprocess.run(
            ["runc", "--root", str(runc_root), "list", "-q"], capture_output=True, text=True
        )
        assert listed.stdout.strip() == ""
    # Other clusters may run on this machine: only this cluster's namespaces are checked.
    assert ours & netns_names() == set()
    assert not link_exists(network.bridge)
    # Pods still bound keep their directories (disk emptyDirs) for the next start, as a
    # node reboot keeps them upstream; nothing is mounted in them (checked above).
    left = (
        {d.name for d in (data_dir / "pods").iterdir()} if (data_dir / "pods").exists() else set()
    )
    last_uid = next(p["metadata"]["uid"] for p in pods if p["metadata"]["name"] == "last")
    assert last_uid in left
    assert left <= {p["metadata"]["uid"] for p in pods}
