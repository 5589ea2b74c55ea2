"""Field reports (``shared/acceptance/field-reports.md``) end to end: the real kubectl against
``kubeling up``, each scenario asserting the report's correct outcome.

Only the reports that had no test, or only a weaker one, are here (the map of every report to
its tests is in the report of the session that wrote this file); the rest are covered closer
to the code (``tests/controllers/test_binder_field_reports.py``, ``tests/dns/``, ...).

One server for the module, each test in its own namespace. Scenarios that need something to
run inside a container (themes D and E) use the runc runtime and skip, with the reason, where
it is unavailable (not root, or no runc); the server then runs with the default runtime and
the API-only scenarios (themes F, H, I) still run. Pods that bypass the scheduler are bound
with ``spec.nodeName``. B36 registers a second Node through the API; it runs last and removes
that Node, so the other scenarios see one node.
"""

from __future__ import annotations

import base64
import json
import pathlib
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import yaml

from kubeling.agent.runtime import runc_unavailable_reason
from tests.agent.conftest import requires_root, requires_runc, root_skip_reason, test_network
from tests.e2e.conftest import Kubeling, start_kubeling, stop_kubeling

pytestmark = [pytest.mark.e2e]

WAIT = 60.0


def poll(predicate: Callable[[], Any], timeout: float = WAIT, *, what: str) -> Any:
    """The first truthy value of ``predicate()``; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            pytest.fail(f"timed out after {timeout}s waiting for {what}")
        # Each round is a kubectl call; the states polled here have no event kubectl waits on.
        time.sleep(0.2)


def runc_usable() -> bool:
    return root_skip_reason() is None and runc_unavailable_reason() is None


@pytest.fixture(scope="module")
def k(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Kubeling]:
    base = tmp_path_factory.mktemp("field-reports")
    cache = base / "kube-cache"
    cache.mkdir()
    with pytest.MonkeyPatch.context() as mp:
        extra: list[str] = []
        if runc_usable():
            network = test_network(base / "data" / "agent")
            mp.setenv("KUBELING_POD_BRIDGE", network.bridge)
            mp.setenv("KUBELING_POD_CIDR", str(network.subnet))
            extra.append("--runtime=runc")
        server = start_kubeling(base / "data", cache, *extra)
    try:
        yield server
    finally:
        code = stop_kubeling(server)
        assert code == 0, f"kubeling up exited {code}:\n" + "\n".join(server.output)


def runc_test(fn: Any) -> Any:
    return requires_root(requires_runc(fn))


# -- helpers ------------------------------------------------------------------------------------


def namespace(k: Kubeling, name: str) -> str:
    k.ok("create", "namespace", name)
    return name


def get(k: Kubeling, *args: str) -> Any:
    return json.loads(k.ok("get", *args, "-o", "json"))


def node_name(k: Kubeling) -> str:
    return k.ok("get", "nodes", "-o", "jsonpath={.items[0].metadata.name}").strip()


def apply_pod(
    k: Kubeling, ns: str, name: str, container: dict[str, Any], *, bind: bool = True, **spec: Any
) -> None:
    pod_spec: dict[str, Any] = {
        "terminationGracePeriodSeconds": 2,
        "containers": [{"name": "c", "image": "busybox:1.36", **container}],
        **spec,
    }
    if bind:
        pod_spec["nodeName"] = node_name(k)
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name}, "spec": pod_spec}
    k.ok("apply", "-n", ns, "-f", "-", input=yaml.safe_dump(pod))


def pod(k: Kubeling, ns: str, name: str) -> Any:
    return get(k, "pod", name, "-n", ns)


def waiting(k: Kubeling, ns: str, name: str) -> dict[str, str]:
    """The first container's ``state.waiting`` (empty when it is not waiting)."""
    statuses = (pod(k, ns, name).get("status") or {}).get("containerStatuses") or []
    return (statuses[0].get("state") or {}).get("waiting") or {} if statuses else {}


def events(k: Kubeling, ns: str, name: str, reason: str) -> list[str]:
    items = get(k, "events", "-n", ns, "--field-selector", f"involvedObject.name={name}")
    return [e.get("message", "") for e in items["items"] if e.get("reason") == reason]


def wait_ready(k: Kubeling, ns: str, name: str) -> None:
    k.ok("wait", "-n", ns, "--for=condition=Ready", f"pod/{name}", f"--timeout={int(WAIT)}s")


def b64(data: str | bytes) -> str:
    raw = data.encode() if isinstance(data, str) else data
    return base64.b64encode(raw).decode()


# -- Theme D: hostPath, emptyDir ------------------------------------------------------------------


@runc_test
def test_b15_hostpath_type_check_fails_the_mount_and_creates_nothing(
    k: Kubeling, tmp_path: pathlib.Path
) -> None:
    ns = namespace(k, "b15")
    missing = tmp_path / "srv" / "app-missing"
    mount = {"command": ["sleep", "3600"], "volumeMounts": [{"name": "data", "mountPath": "/data"}]}

    def host_path(path: pathlib.Path, kind: str) -> list[dict[str, Any]]:
        return [{"name": "data", "hostPath": {"path": str(path), "type": kind}}]

    apply_pod(k, ns, "web", mount, volumes=host_path(missing, "Directory"))
    message = (
        f'MountVolume.SetUp failed for volume "data" : hostPath type check failed: '
        f"{missing} is not a directory"
    )
    poll(lambda: message in events(k, ns, "web", "FailedMount"), what="the FailedMount event")
    current = pod(k, ns, "web")
    assert current["status"]["phase"] == "Pending"
    assert waiting(k, ns, "web").get("reason") == "ContainerCreating"
    assert not missing.exists() and not missing.parent.exists(), "the check creates nothing"

    # DirectoryOrCreate makes the path (and its parents) 0755, owned by the agent (root)
    created = tmp_path / "srv" / "app-created" / "deep"
    apply_pod(k, ns, "made", mount, volumes=host_path(created, "DirectoryOrCreate"))
    wait_ready(k, ns, "made")
    assert created.is_dir() and oct(created.stat().st_mode & 0o777) == "0o755"
    assert (created.stat().st_uid, created.stat().st_gid) == (0, 0)

    # File on a directory fails the same way; an empty type checks nothing
    apply_pod(k, ns, "file", mount, volumes=host_path(created, "File"))
    not_file = (
        f'MountVolume.SetUp failed for volume "data" : hostPath type check failed: '
        f"{created} is not a file"
    )
    poll(lambda: not_file in events(k, ns, "file", "FailedMount"), what="the 'not a file' event")
    apply_pod(k, ns, "any", mount, volumes=host_path(created, ""))
    wait_ready(k, ns, "any")


@runc_test
def test_b17_disk_emptydir_size_limit_is_no_quota_and_the_pod_is_evicted(k: Kubeling) -> None:
    ns = namespace(k, "b17")
    apply_pod(
        k,
        ns,
        "disk",
        {
            "command": [
                "sh",
                "-c",
                "dd if=/dev/zero of=/scratch/f bs=1M count=20 2>/dev/null; echo rc=$?; sleep 3600",
            ],
            "volumeMounts": [{"name": "scratch", "mountPath": "/scratch"}],
        },
        restartPolicy="Never",
        volumes=[{"name": "scratch", "emptyDir": {"sizeLimit": "10Mi"}}],
    )
    poll(lambda: "rc=0" in k.kubectl("logs", "-n", ns, "disk").stdout, what="the 20Mi write")
    status = poll(
        lambda: (s := pod(k, ns, "disk")["status"]).get("phase") == "Failed" and s,
        what="the pod to be evicted",
    )
    assert status.get("reason") == "Evicted"
    assert status.get("message", "").startswith(
        'Usage of EmptyDir volume "scratch" exceeds the limit "10Mi". '
    ), status
    restarts = [c.get("restartCount", 0) for c in status.get("containerStatuses") or []]
    assert restarts in ([], [0]), "an evicted pod is not restarted in place"


# -- Theme E: env from a Secret ---------------------------------------------------------------------


@runc_test
def test_b23_missing_secret_key_blocks_the_container_until_it_exists(k: Kubeling) -> None:
    ns = namespace(k, "b23")
    ref: dict[str, Any] = {"name": "db", "key": "password"}
    apply_pod(
        k,
        ns,
        "strict",
        {
            "command": ["sh", "-c", "echo PASS=$DB_PASS; sleep 3600"],
            "env": [{"name": "DB_PASS", "valueFrom": {"secretKeyRef": ref}}],
        },
    )
    apply_pod(
        k,
        ns,
        "lenient",
        {
            "command": ["sh", "-c", "echo PASS=${DB_PASS:-unset}; sleep 3600"],
            "env": [{"name": "DB_PASS", "valueFrom": {"secretKeyRef": {**ref, "optional": True}}}],
        },
    )

    def waiting_is(message: str) -> bool:
        w = waiting(k, ns, "strict")
        return w.get("reason") == "CreateContainerConfigError" and w.get("message") == message

    poll(lambda: waiting_is('secret "db" not found'), what="secret not found")
    wait_ready(k, ns, "lenient")
    poll(lambda: k.kubectl("logs", "-n", ns, "lenient").stdout == "PASS=unset\n", what="unset")
    uid = pod(k, ns, "strict")["metadata"]["uid"]

    k.ok("create", "secret", "generic", "db", "-n", ns, "--from-literal=pass=x")
    poll(
        lambda: waiting_is(f"couldn't find key password in Secret {ns}/db"),
        what="the missing key message",
    )
    fixed = k.ok(
        "create", "secret", "generic", "db", "--from-literal=password=x", "--dry-run=client",
        "-o", "yaml",
    )  # fmt: skip
    k.ok("apply", "-n", ns, "-f", "-", input=fixed)
    wait_ready(k, ns, "strict")
    poll(lambda: k.kubectl("logs", "-n", ns, "strict").stdout == "PASS=x\n", what="PASS=x")
    assert pod(k, ns, "strict")["metadata"]["uid"] == uid, "started without re-creating the pod"
    # env is resolved at container start: the optional ref does not pick the value up later
    assert k.ok("logs", "-n", ns, "lenient") == "PASS=unset\n"
    assert k.kubectl("exec", "-n", ns, "lenient", "--", "printenv", "DB_PASS").returncode == 1
    lenient = pod(k, ns, "lenient")["status"]["containerStatuses"][0]
    assert lenient["restartCount"] == 0


# -- Theme F: Secret types ------------------------------------------------------------------------


def apply_secret(k: Kubeling, ns: str, name: str, kind: str, **fields: Any) -> Any:
    secret = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name}, "type": kind}
    secret.update(fields)
    return k.kubectl("apply", "-n", ns, "-f", "-", input=json.dumps(secret))


def test_b25_typed_secrets_need_their_keys_and_the_type_is_immutable(k: Kubeling) -> None:
    ns = namespace(k, "b25")
    tls = "kubernetes.io/tls"
    junk = b64("-----")
    base = apply_secret(k, ns, "ldap-tls", tls, data={"cert.pem": junk, "key.pem": junk})
    assert base.returncode != 0
    assert "data[tls.crt]: Required value" in base.stderr
    assert "data[tls.key]: Required value" in base.stderr

    only_crt = apply_secret(k, ns, "ldap-tls", tls, data={"tls.crt": junk})
    assert only_crt.returncode != 0
    assert "data[tls.key]: Required value" in only_crt.stderr
    assert "data[tls.crt]" not in only_crt.stderr

    full = {"tls.crt": junk, "tls.key": junk, "ca.crt": junk}  # PEM content is not checked
    assert apply_secret(k, ns, "ldap-tls", tls, data=full).returncode == 0
    assert sorted(get(k, "secret", "ldap-tls", "-n", ns)["data"]) == sorted(full)

    retyped = apply_secret(k, ns, "ldap-tls", "Opaque", data=full)
    assert retyped.returncode != 0
    assert 'type: Invalid value: "Opaque": field is immutable' in retyped.stderr
    assert get(k, "secret", "ldap-tls", "-n", ns)["type"] == tls

    basic = apply_secret(k, ns, "basic", "kubernetes.io/basic-auth", data={"user": junk})
    assert basic.returncode != 0
    assert "data[username]: Required value" in basic.stderr
    assert "data[password]: Required value" in basic.stderr
    assert (
        apply_secret(k, ns, "basic", "kubernetes.io/basic-auth", data={"password": junk})
    ).returncode == 0
    ssh = apply_secret(k, ns, "ssh", "kubernetes.io/ssh-auth", data={"id_rsa": junk})
    assert ssh.returncode != 0 and "data[ssh-privatekey]: Required value" in ssh.stderr
    token = apply_secret(k, ns, "tok", "kubernetes.io/service-account-token")
    assert token.returncode != 0
    assert (
        "metadata.annotations[kubernetes.io/service-account.name]: Required value" in token.stderr
    )


def test_b26_double_base64_docker_config_is_rejected_without_echoing_it(k: Kubeling) -> None:
    ns = namespace(k, "b26")
    cfg = '{"auths":{"registry.example":{"auth":"dXNlcjpwYXNz"}}}'
    once = b64(cfg)
    twice = b64(once)
    kind = "kubernetes.io/dockerconfigjson"

    refused = apply_secret(k, ns, "regcred", kind, data={".dockerconfigjson": twice})
    assert refused.returncode != 0
    assert (
        'data[.dockerconfigjson]: Invalid value: "<secret contents redacted>": '
        "invalid character 'e' looking for beginning of value"
    ) in refused.stderr
    for secret in (cfg, once, twice, "dXNlcjpwYXNz"):
        assert secret not in refused.stderr + refused.stdout, "the error echoes the secret"

    assert apply_secret(k, ns, "regcred", kind, data={".dockerconfigjson": once}).returncode == 0
    stored = get(k, "secret", "regcred", "-n", ns)
    assert base64.b64decode(stored["data"][".dockerconfigjson"]).decode() == cfg

    missing = apply_secret(k, ns, "nokey", kind, data={"config.json": once})
    assert missing.returncode != 0
    assert "data[.dockerconfigjson]: Required value" in missing.stderr
    old = apply_secret(k, ns, "old", "kubernetes.io/dockercfg", data={".dockercfg": twice})
    assert old.returncode != 0
    assert (
        'data[.dockercfg]: Invalid value: "<secret contents redacted>": '
        "invalid character 'e' looking for beginning of value"
    ) in old.stderr

    # stringData takes the raw JSON and is returned only as data
    assert apply_secret(k, ns, "raw", kind, stringData={".dockerconfigjson": cfg}).returncode == 0
    raw = get(k, "secret", "raw", "-n", ns)
    assert "stringData" not in raw
    assert base64.b64decode(raw["data"][".dockerconfigjson"]).decode() == cfg


@runc_test
def test_b28_echo_piped_to_base64_keeps_its_newline_in_env_and_files(k: Kubeling) -> None:
    """The ``echo x | base64`` half of B28 (the ``--from-file``/``--from-literal`` half is
    ``test_pods_e2e.test_secret_bytes_reach_env_and_files_unchanged``)."""
    ns = namespace(k, "b28")
    assert (
        apply_secret(k, ns, "db", "Opaque", data={"password": b64("secret123\n")}).returncode == 0
    )
    apply_pod(
        k,
        ns,
        "sec",
        {
            "command": ["sleep", "3600"],
            "env": [
                {"name": "P", "valueFrom": {"secretKeyRef": {"name": "db", "key": "password"}}}
            ],
            "volumeMounts": [{"name": "s", "mountPath": "/s"}],
        },
        volumes=[{"name": "s", "secret": {"secretName": "db"}}],
    )
    wait_ready(k, ns, "sec")
    out = k.ok(
        "exec", "-n", ns, "sec", "--", "sh", "-c", 'printf %s "$P" | wc -c; wc -c < /s/password'
    )
    assert [int(n) for n in out.split()] == [10, 10]


# -- Theme I: kubectl apply ------------------------------------------------------------------------


def test_b37_client_side_apply_of_a_big_configmap_hits_the_annotation_limit(
    k: Kubeling, tmp_path: pathlib.Path
) -> None:
    ns = namespace(k, "b37")
    big = tmp_path / "big.txt"
    big.write_text("a" * 300_000)
    manifest = k.ok(
        "create", "configmap", "big", f"--from-file={big}", "--dry-run=client", "-o", "yaml"
    )
    applied = k.kubectl("apply", "-n", ns, "-f", "-", input=manifest)
    assert applied.returncode != 0
    assert "metadata.annotations: Too long: must have at most 262144 bytes" in applied.stderr
    assert k.kubectl("get", "configmap", "big", "-n", ns).returncode != 0

    k.ok("create", "-n", ns, "-f", "-", input=manifest)
    k.ok("apply", "--server-side", "-n", ns, "-f", "-", input=manifest)
    live = get(k, "configmap", "big", "-n", ns, "--show-managed-fields")
    assert len(live["data"]["big.txt"]) == 300_000
    annotations = live["metadata"].get("annotations") or {}
    assert "kubectl.kubernetes.io/last-applied-configuration" not in annotations
    managers = {m["manager"] for m in live["metadata"].get("managedFields") or []}
    assert "kubectl" in managers, managers

    huge = tmp_path / "huge.txt"
    huge.write_text("a" * 1_100_000)
    refused = k.kubectl("create", "configmap", "huge", "-n", ns, f"--from-file={huge}")
    assert refused.returncode != 0
    assert "Too long: must have at most 1048576 bytes" in refused.stderr
    assert k.kubectl("get", "configmap", "huge", "-n", ns).returncode != 0


def workload(kind: str, volume: dict[str, Any], *, replicas: int, name: str = "app") -> str:
    spec: dict[str, Any] = {
        "replicas": replicas,
        "selector": {"matchLabels": {"app": name}},
        "template": {
            "metadata": {"labels": {"app": name}},
            "spec": {
                "terminationGracePeriodSeconds": 2,
                "containers": [
                    {
                        "name": "c",
                        "image": "busybox:1.36",
                        "command": ["sleep", "3600"],
                        "volumeMounts": [{"name": "conf", "mountPath": "/conf"}],
                    }
                ],
                "volumes": [{"name": "conf", **volume}],
            },
        },
    }
    if kind == "StatefulSet":
        spec["serviceName"] = name
    return yaml.safe_dump(
        {"apiVersion": "apps/v1", "kind": kind, "metadata": {"name": name}, "spec": spec}
    )


CONFIG_MAP = {"configMap": {"name": "app-conf"}}
PROJECTED = {"projected": {"sources": [{"configMap": {"name": "app-conf"}}]}}
TWO_TYPES = "may not specify more than 1 volume type"


def volume_sources(volume: dict[str, Any]) -> set[str]:
    return set(volume) - {"name"}


def template_sources(k: Kubeling, ns: str, resource: str) -> list[set[str]]:
    live = get(k, resource, "-n", ns)["spec"]["template"]["spec"]["volumes"]
    return [volume_sources(v) for v in live]


def assert_no_pod_has_two_volume_types(k: Kubeling, ns: str) -> None:
    for p in get(k, "pods", "-n", ns)["items"]:
        for v in p["spec"].get("volumes") or []:
            assert len(volume_sources(v)) == 1, (p["metadata"]["name"], v)


def merge_without_retain_keys(k: Kubeling, ns: str, resource: str) -> Any:
    """The strategic-merge patch the report's kubectl sent for a missing last-applied: the
    new volume by name and no ``$retainKeys`` directive, so the server merges it into the
    old volume instead of replacing its source."""
    patch = {"spec": {"template": {"spec": {"volumes": [{"name": "conf", **PROJECTED}]}}}}
    return k.kubectl("patch", resource, "-n", ns, "--type=strategic", "-p", json.dumps(patch))


def test_b38_apply_without_last_applied_never_yields_a_pod_with_two_volume_types(
    k: Kubeling,
) -> None:
    """kubectl 1.32 sends ``$retainKeys`` with the volume, and the server must honour it:
    ``kubectl create`` then ``kubectl apply`` replaces the source. The report's patch (no
    directive) merges both sources; a StatefulSet may store that (upstream) or refuse it
    (stricter, acceptable), but no pod is ever created with two volume types, and a
    Deployment refuses it at once."""
    ns = namespace(k, "b38")
    k.ok("create", "configmap", "app-conf", "-n", ns, "--from-literal=k=v")

    k.ok("create", "-n", ns, "-f", "-", input=workload("StatefulSet", CONFIG_MAP, replicas=1))
    poll(lambda: k.kubectl("get", "pod", "app-0", "-n", ns).returncode == 0, what="app-0")
    first_uid = pod(k, ns, "app-0")["metadata"]["uid"]
    applied = k.kubectl(
        "apply", "-n", ns, "-f", "-", input=workload("StatefulSet", PROJECTED, replicas=1)
    )
    assert applied.returncode == 0, applied.stderr
    assert "missing the kubectl.kubernetes.io/last-applied-configuration" in applied.stderr
    assert template_sources(k, ns, "sts/app") == [{"projected"}]
    k.ok("rollout", "restart", "sts/app", "-n", ns)

    def replaced() -> bool:
        got = k.kubectl("get", "pod", "app-0", "-n", ns, "-o", "json")
        if got.returncode != 0:
            return False
        current = json.loads(got.stdout)
        return current["metadata"]["uid"] != first_uid and [
            volume_sources(v) for v in current["spec"]["volumes"] if v["name"] == "conf"
        ] == [{"projected"}]

    poll(replaced, what="app-0 re-created with the projected volume only")

    # the report's merge, on a StatefulSet created without the annotation
    k.ok(
        "create",
        "-n",
        ns,
        "-f",
        "-",
        input=workload("StatefulSet", CONFIG_MAP, replicas=1, name="legacy"),
    )
    poll(lambda: k.kubectl("get", "pod", "legacy-0", "-n", ns).returncode == 0, what="legacy-0")
    merged = merge_without_retain_keys(k, ns, "sts/legacy")
    if merged.returncode != 0:  # the stricter, acceptable outcome
        assert TWO_TYPES in merged.stderr
        assert template_sources(k, ns, "sts/legacy") == [{"configMap"}]
    else:  # upstream: stored; the controller then fails to create the pod
        assert template_sources(k, ns, "sts/legacy") == [{"configMap", "projected"}]
        k.ok("rollout", "restart", "sts/legacy", "-n", ns)
        poll(
            lambda: any(TWO_TYPES in m for m in events(k, ns, "legacy", "FailedCreate")),
            what="the FailedCreate event",
        )
    assert_no_pod_has_two_volume_types(k, ns)

    # a Deployment refuses the same merge
    k.ok("create", "-n", ns, "-f", "-", input=workload("Deployment", CONFIG_MAP, replicas=0))
    dep = merge_without_retain_keys(k, ns, "deployment/app")
    assert dep.returncode != 0 and TWO_TYPES in dep.stderr, dep
    assert template_sources(k, ns, "deployment/app") == [{"configMap"}]

    # control run: apply then apply nulls configMap, only projected remains
    k.ok("delete", "deployment", "app", "-n", ns)
    k.ok("apply", "-n", ns, "-f", "-", input=workload("Deployment", CONFIG_MAP, replicas=0))
    k.ok("apply", "-n", ns, "-f", "-", input=workload("Deployment", PROJECTED, replicas=0))
    assert template_sources(k, ns, "deployment/app") == [{"projected"}]
    assert_no_pod_has_two_volume_types(k, ns)


def env_of(k: Kubeling, ns: str, name: str) -> dict[str, str]:
    dep = get(k, "deployment", name, "-n", ns)
    env = dep["spec"]["template"]["spec"]["containers"][0].get("env") or []
    return {e["name"]: e.get("value", "") for e in env}


def deployment(name: str, env: dict[str, str]) -> str:
    body = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name},
        "spec": {
            "replicas": 0,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {
                    "containers": [
                        {
                            "name": "c",
                            "image": "busybox:1.36",
                            "command": ["sleep", "3600"],
                            "env": [{"name": n, "value": v} for n, v in env.items()],
                        }
                    ]
                },
            },
        },
    }
    return yaml.safe_dump(body)


def test_b40_apply_keeps_env_added_by_another_writer_and_removes_its_own(k: Kubeling) -> None:
    ns = namespace(k, "b40")
    web = deployment("web", {"A": "1"})
    k.ok("apply", "-n", ns, "-f", "-", input=web)
    k.ok("set", "env", "deployment/web", "-n", ns, "EXTRA=1")
    k.ok("apply", "-n", ns, "-f", "-", input=web)
    assert env_of(k, ns, "web") == {"A": "1", "EXTRA": "1"}
    k.ok("apply", "--server-side", "-n", ns, "-f", "-", input=web)
    assert env_of(k, ns, "web") == {"A": "1", "EXTRA": "1"}
    managed = get(k, "deployment", "web", "-n", ns, "--show-managed-fields")["metadata"][
        "managedFields"
    ]
    extra_owners = [
        m["manager"] for m in managed if '"k:{\\"name\\":\\"EXTRA\\"}"' in json.dumps(m)
    ]
    assert extra_owners == ["kubectl-set"], managed

    # removal path, client-side: EXTRA enters last-applied first, then leaving the file removes it
    k.ok("apply", "-n", ns, "-f", "-", input=deployment("csa", {"A": "1", "EXTRA": "1"}))
    k.ok("apply", "-n", ns, "-f", "-", input=deployment("csa", {"A": "1"}))
    assert env_of(k, ns, "csa") == {"A": "1"}
    # and server-side: the applying manager owns EXTRA, so dropping it removes it
    k.ok(
        "apply",
        "--server-side",
        "-n",
        ns,
        "-f",
        "-",
        input=deployment("ssa", {"A": "1", "EXTRA": "1"}),
    )
    k.ok("apply", "--server-side", "-n", ns, "-f", "-", input=deployment("ssa", {"A": "1"}))
    assert env_of(k, ns, "ssa") == {"A": "1"}


# -- Theme H: a pod pinned by its local volume (two nodes; runs last) ------------------------------


B36_MANIFEST = """\
apiVersion: storage.k8s.io/v1
kind: StorageClass
metadata: {name: b36-local}
provisioner: kubeling.io/local-path
volumeBindingMode: WaitForFirstConsumer
---
apiVersion: apps/v1
kind: StatefulSet
metadata: {name: db}
spec:
  serviceName: db
  replicas: 1
  selector: {matchLabels: {app: db}}
  template:
    metadata: {labels: {app: db}}
    spec:
      terminationGracePeriodSeconds: 2
      containers:
      - {name: c, image: busybox:1.36, command: ["sleep", "3600"], volumeMounts: [{name: data, mountPath: /data}]}
  volumeClaimTemplates:
  - metadata: {name: data}
    spec:
      storageClassName: b36-local
      accessModes: ["ReadWriteOnce"]
      resources: {requests: {storage: 10Mi}}
"""


def register_node(k: Kubeling, name: str, *, unschedulable: bool) -> None:
    """A Node that no agent runs: registered, Ready, with room for pods."""
    node = {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {"name": name, "labels": {"kubernetes.io/hostname": name}},
        "spec": {"unschedulable": unschedulable},
    }
    k.ok("create", "-f", "-", input=json.dumps(node))
    now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    room = {"cpu": "8", "memory": "16Gi", "pods": "110", "ephemeral-storage": "100Gi"}
    status = {
        "status": {
            "capacity": room,
            "allocatable": room,
            "conditions": [
                {
                    "type": "Ready",
                    "status": "True",
                    "reason": "KubeletReady",
                    "lastHeartbeatTime": now,
                    "lastTransitionTime": now,
                }
            ],
        }
    }
    k.ok("patch", "node", name, "--subresource=status", "--type=merge", "-p", json.dumps(status))


def test_b36_pod_pinned_by_local_volume_to_a_cordoned_node_stays_pending(k: Kubeling) -> None:
    ns = namespace(k, "b36")
    node_a = node_name(k)
    node_b = "b36-node-b"
    register_node(k, node_b, unschedulable=True)  # so db-0 lands on node-a, which runs pods
    try:
        k.ok("apply", "-n", ns, "-f", "-", input=B36_MANIFEST)
        placed = poll(
            lambda: (
                pod(k, ns, "db-0")["spec"].get("nodeName")
                if k.kubectl("get", "pod", "db-0", "-n", ns).returncode == 0
                else ""
            ),
            what="db-0 to be scheduled",
        )
        assert placed == node_a
        claim = poll(
            lambda: (
                (c := get(k, "pvc", "data-db-0", "-n", ns))["status"].get("phase") == "Bound" and c
            ),
            what="data-db-0 to be bound",
        )
        volume = claim["spec"]["volumeName"]
        affinity = get(k, "pv", volume)["spec"]["nodeAffinity"]["required"]["nodeSelectorTerms"]
        assert affinity[0]["matchExpressions"] == [
            {"key": "kubernetes.io/hostname", "operator": "In", "values": [node_a]}
        ]
        first_uid = pod(k, ns, "db-0")["metadata"]["uid"]

        k.ok("uncordon", node_b)
        k.ok("cordon", node_a)
        k.ok("delete", "pod", "db-0", "-n", ns, f"--timeout={int(WAIT)}s")

        def recreated() -> Any:
            got = k.kubectl("get", "pod", "db-0", "-n", ns, "-o", "json")
            if got.returncode != 0:
                return None
            current = json.loads(got.stdout)
            return current["metadata"]["uid"] != first_uid and current

        again = poll(recreated, what="the new db-0")
        messages = poll(
            lambda: events(k, ns, "db-0", "FailedScheduling"), what="FailedScheduling for db-0"
        )
        assert any(
            m.startswith(
                "0/2 nodes are available: 1 node(s) had volume node affinity conflict, "
                "1 node(s) were unschedulable."
            )
            for m in messages
        ), messages
        current = pod(k, ns, "db-0")
        assert current["metadata"]["uid"] == again["metadata"]["uid"]
        assert not current["spec"].get("nodeName") and current["status"]["phase"] == "Pending"
        # nothing migrated or re-provisioned
        claims = get(k, "pvc", "-n", ns)["items"]
        assert [(c["metadata"]["uid"], c["spec"]["volumeName"]) for c in claims] == [
            (claim["metadata"]["uid"], volume)
        ]
        assert [pv["metadata"]["name"] for pv in get(k, "pv")["items"] if pv["spec"].get(
            "storageClassName") == "b36-local"] == [volume]  # fmt: skip

        # recovery: uncordon node-a and db-0 goes back to it, with the same volume
        k.ok("uncordon", node_a)
        assert (
            poll(lambda: pod(k, ns, "db-0")["spec"].get("nodeName"), what="db-0 rescheduled")
            == node_a
        )
    finally:
        k.kubectl("uncordon", node_a)
        k.kubectl("delete", "node", node_b, "--wait=false")
