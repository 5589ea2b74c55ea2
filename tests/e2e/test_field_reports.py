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
import calendar
import json
import pathlib
import time
from collections.abc import Iterator
from typing import Any

import pytest
import yaml
from dnslib import RCODE, DNSRecord

from kubeling.agent.runtime import runc_unavailable_reason
from tests.agent.conftest import requires_root, requires_runc, root_skip_reason, test_network
from tests.e2e.conftest import Kubeling, start_kubeling, stop_kubeling
from tests.helpers.dns import free_port, query_udp, record_values
from tests.helpers.waiting import poll

pytestmark = [pytest.mark.e2e]

WAIT = 60.0


DNS_PORT = 0  # the module's server's DNS port, picked when the server starts
ZONE = "svc.cluster.local"


def dns(name: str, qtype: str = "A") -> DNSRecord:
    """Ask the cluster's DNS server directly, over UDP on loopback."""
    return query_udp(DNS_PORT, name, qtype)


def answers(name: str, qtype: str = "A") -> list[str]:
    return record_values(dns(name, qtype), qtype)


def unpublished(name: str, qtype: str = "A") -> bool:
    """NXDOMAIN, or an empty answer: the name publishes nothing."""
    reply = dns(name, qtype)
    return reply.header.rcode == RCODE.NXDOMAIN or (
        reply.header.rcode == RCODE.NOERROR and not reply.rr
    )


def runc_usable() -> bool:
    return root_skip_reason() is None and runc_unavailable_reason() is None


@pytest.fixture(scope="module")
def k(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Kubeling]:
    global DNS_PORT
    DNS_PORT = free_port()
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
        server = start_kubeling(base / "data", cache, f"--dns-listen=127.0.0.1:{DNS_PORT}", *extra)
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


@runc_test
def test_b23_config_map_refs_and_env_from_block_the_same_way(k: Kubeling) -> None:
    ns = namespace(k, "b23-cm")
    apply_pod(
        k,
        ns,
        "keyref",
        {
            "command": ["sh", "-c", "echo MODE=$MODE; sleep 3600"],
            "env": [
                {"name": "MODE", "valueFrom": {"configMapKeyRef": {"name": "cfg", "key": "mode"}}}
            ],
        },
    )
    apply_pod(
        k,
        ns,
        "envfrom",
        {
            "command": ["sh", "-c", "echo SECRET_X=$X; sleep 3600"],
            "envFrom": [{"secretRef": {"name": "bulk"}}],
        },
    )

    def waiting_message(name: str) -> str:
        w = waiting(k, ns, name)
        return w.get("message", "") if w.get("reason") == "CreateContainerConfigError" else ""

    poll(lambda: waiting_message("keyref") == 'configmap "cfg" not found', what="cfg not found")
    poll(lambda: waiting_message("envfrom") == 'secret "bulk" not found', what="bulk not found")
    k.ok("create", "configmap", "cfg", "-n", ns, "--from-literal=other=1")
    poll(
        lambda: waiting_message("keyref") == f"couldn't find key mode in ConfigMap {ns}/cfg",
        what="the missing ConfigMap key",
    )
    k.ok("patch", "configmap", "cfg", "-n", ns, "-p", '{"data":{"mode":"on"}}')
    k.ok("create", "secret", "generic", "bulk", "-n", ns, "--from-literal=X=y")
    for name, line in (("keyref", "MODE=on\n"), ("envfrom", "SECRET_X=y\n")):
        wait_ready(k, ns, name)
        poll(lambda n=name, w=line: k.kubectl("logs", "-n", ns, n).stdout == w, what=line)


def test_b22_env_file_with_an_invalid_key_is_refused_by_kubectl(
    k: Kubeling, tmp_path: pathlib.Path
) -> None:
    """The client-side half of B22 (the values are ``test_pods_e2e``'s
    ``test_configmap_from_env_file_keeps_quotes``)."""
    ns = namespace(k, "b22")
    env_file = tmp_path / "bad.env"
    env_file.write_text("GOOD=1\n1BAD=x\n")
    refused = k.kubectl("create", "configmap", "app-env", "-n", ns, f"--from-env-file={env_file}")
    assert refused.returncode != 0
    assert '"1BAD" is not a valid key name' in refused.stderr, refused.stderr
    assert k.kubectl("get", "configmap", "app-env", "-n", ns).returncode != 0


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
    assert "metadata.annotations: Too long: may not be more than 262144 bytes" in applied.stderr
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
    assert "Too long: may not be more than 1048576 bytes" in refused.stderr
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


# -- Themes A, B, C: classes, binding, protection ---------------------------------------------------


def claim(name: str, size: str = "1Gi", **spec: Any) -> str:
    body = {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": {"name": name},
        "spec": {
            "accessModes": ["ReadWriteOnce"],
            "resources": {"requests": {"storage": size}},
            **spec,
        },
    }
    return yaml.safe_dump(body)


def claim_phase(k: Kubeling, ns: str, name: str) -> str:
    return str((get(k, "pvc", name, "-n", ns).get("status") or {}).get("phase", ""))


def storage_class(name: str, *, default: bool = False, **fields: Any) -> str:
    body: dict[str, Any] = {
        "apiVersion": "storage.k8s.io/v1",
        "kind": "StorageClass",
        "metadata": {"name": name},
        "provisioner": PROVISIONER,
        **fields,
    }
    if default:
        body["metadata"]["annotations"] = {DEFAULT_CLASS: "true"}
    return yaml.safe_dump(body)


PROVISIONER = "kubeling.io/local-path"
DEFAULT_CLASS = "storageclass.kubernetes.io/is-default-class"
WFFC_MESSAGE = "waiting for first consumer to be created before binding"


def test_b01_unset_class_gets_the_default_and_skips_a_classless_volume(
    k: Kubeling, tmp_path: pathlib.Path
) -> None:
    ns = namespace(k, "b01")
    # kubeling up made its own default class; it steps aside so ``b01-standard`` is the one
    k.ok("annotate", "storageclass", "local-path", f"{DEFAULT_CLASS}=false", "--overwrite")
    try:
        k.ok(
            "apply",
            "-f",
            "-",
            input=storage_class(
                "b01-standard", default=True, volumeBindingMode="WaitForFirstConsumer"
            ),
        )
        pv = {
            "apiVersion": "v1",
            "kind": "PersistentVolume",
            "metadata": {"name": "b01-data-pv"},
            "spec": {  # no storageClassName: class ""
                "capacity": {"storage": "5Gi"},
                "accessModes": ["ReadWriteOnce"],
                "hostPath": {"path": str(tmp_path / "data-pv"), "type": "DirectoryOrCreate"},
            },
        }
        k.ok("apply", "-f", "-", input=json.dumps(pv))
        k.ok("apply", "-n", ns, "-f", "-", input=claim("data", "5Gi"))
        assert get(k, "pvc", "data", "-n", ns)["spec"]["storageClassName"] == "b01-standard"
        poll(
            lambda: WFFC_MESSAGE in events(k, ns, "data", "WaitForFirstConsumer"),
            what="the WaitForFirstConsumer event",
        )
        assert claim_phase(k, ns, "data") == "Pending"
        assert get(k, "pv", "b01-data-pv")["status"]["phase"] == "Available"

        # a consumer: a new volume is provisioned for it; the class-less one stays Available
        apply_pod(
            k,
            ns,
            "app",
            {"command": ["sleep", "3600"], "volumeMounts": [{"name": "d", "mountPath": "/d"}]},
            bind=False,
            volumes=[{"name": "d", "persistentVolumeClaim": {"claimName": "data"}}],
        )
        poll(lambda: claim_phase(k, ns, "data") == "Bound", what="data to be provisioned")
        provisioned = get(k, "pvc", "data", "-n", ns)["spec"]["volumeName"]
        assert provisioned != "b01-data-pv"
        assert get(k, "pv", provisioned)["spec"]["storageClassName"] == "b01-standard"
        assert get(k, "pv", "b01-data-pv")["status"]["phase"] == "Available"

        # variant: an explicit "" gets no default and binds the class-less volume at once
        k.ok("apply", "-n", ns, "-f", "-", input=claim("empty", "5Gi", storageClassName=""))
        poll(lambda: claim_phase(k, ns, "empty") == "Bound", what="the claim with class ''")
        bound = get(k, "pvc", "empty", "-n", ns)["spec"]
        assert (bound["storageClassName"], bound["volumeName"]) == ("", "b01-data-pv")
    finally:
        k.kubectl("annotate", "storageclass", "local-path", f"{DEFAULT_CLASS}=true", "--overwrite")
        k.kubectl("delete", "storageclass", "b01-standard", "--wait=false")


def test_b02_empty_class_is_kept_through_apply_and_disables_provisioning(k: Kubeling) -> None:
    ns = namespace(k, "b02")
    manifest = claim("data", storageClassName="")
    k.ok("apply", "-n", ns, "-f", "-", input=manifest)
    assert get(k, "pvc", "data", "-n", ns)["spec"]["storageClassName"] == ""
    poll(
        lambda: any(m.startswith(NO_CLASS) for m in events(k, ns, "data", "FailedBinding")),
        what="the FailedBinding event",
    )
    k.ok("apply", "-n", ns, "-f", "-", input=manifest)  # the round trip keeps "" too
    live = get(k, "pvc", "data", "-n", ns)
    assert live["spec"]["storageClassName"] == ""
    assert (live["status"].get("phase"), live["spec"].get("volumeName")) == ("Pending", None)
    annotations = live["metadata"].get("annotations") or {}
    assert "volume.kubernetes.io/storage-provisioner" not in annotations

    # the field omitted: the default class is written in, and the claim is provisioned
    k.ok("apply", "-n", ns, "-f", "-", input=claim("omitted"))
    assert get(k, "pvc", "omitted", "-n", ns)["spec"]["storageClassName"] == "local-path"
    poll(lambda: claim_phase(k, ns, "omitted") == "Bound", what="the defaulted claim bound")
    assert claim_phase(k, ns, "data") == "Pending"
    # a claim of class "" left Pending would bind the next class-less volume of a later test
    k.ok("delete", "pvc", "data", "-n", ns, "--wait=false")


NO_CLASS = "no persistent volumes available for this claim and no storage class is set"


def test_b02_failed_binding_message_is_upstreams_then_names_the_refused_volumes(
    k: Kubeling, tmp_path: pathlib.Path
) -> None:
    """The event starts with upstream's exact sentence, then (kubeling's deliberate addition,
    docs/storage.md) names the closest volume and why it was refused."""
    ns = namespace(k, "b02-message")
    pv = {
        "apiVersion": "v1",
        "kind": "PersistentVolume",
        "metadata": {"name": "b02-slow-pv"},
        "spec": {
            "storageClassName": "b02-slow",
            "capacity": {"storage": "1Gi"},
            "accessModes": ["ReadWriteOnce"],
            "hostPath": {"path": str(tmp_path / "slow"), "type": "DirectoryOrCreate"},
        },
    }
    k.ok("apply", "-f", "-", input=json.dumps(pv))
    try:
        k.ok("apply", "-n", ns, "-f", "-", input=claim("data", storageClassName=""))
        messages = poll(
            lambda: events(k, ns, "data", "FailedBinding"), what="the FailedBinding event"
        )
        # Other tests' volumes share this module's cluster, so other candidates may be named
        # too; the one refused for its class must be among them.
        assert len(messages) == 1
        head, sep, candidates = messages[0].partition("; candidates: ")
        assert (head, sep) == (NO_CLASS, "; candidates: ")
        assert 'b02-slow-pv: class "b02-slow" != ""' in candidates
    finally:
        k.kubectl("delete", "pvc", "data", "-n", ns, "--wait=false")
        k.kubectl("delete", "pv", "b02-slow-pv", "--wait=false")


def test_b07_class_fields_are_immutable_and_the_volume_policy_is_not(k: Kubeling) -> None:
    ns = namespace(k, "b07")
    fast = {"reclaimPolicy": "Delete", "parameters": {"tier": "a"}}
    k.ok("apply", "-f", "-", input=storage_class("b07-fast", **fast))
    try:
        k.ok("apply", "-n", ns, "-f", "-", input=claim("data", storageClassName="b07-fast"))
        poll(lambda: claim_phase(k, ns, "data") == "Bound", what="data provisioned")
        pv = get(k, "pvc", "data", "-n", ns)["spec"]["volumeName"]
        assert get(k, "pv", pv)["spec"]["persistentVolumeReclaimPolicy"] == "Delete"

        changes = [
            ({**fast, "reclaimPolicy": "Retain"}, "reclaimPolicy: Forbidden: updates to reclaimPolicy are forbidden."),
            ({**fast, "parameters": {"tier": "b"}}, "parameters: Forbidden: updates to parameters are forbidden."),
            ({**fast, "volumeBindingMode": "WaitForFirstConsumer"}, 'volumeBindingMode: Invalid value: "WaitForFirstConsumer": field is immutable'),
        ]  # fmt: skip
        for fields, message in changes:
            refused = k.kubectl("apply", "-f", "-", input=storage_class("b07-fast", **fields))
            assert refused.returncode != 0 and message in refused.stderr, refused.stderr
        other = storage_class("b07-fast", **fast).replace(PROVISIONER, "vendor.example/x")
        refused = k.kubectl("apply", "-f", "-", input=other)
        assert "provisioner: Forbidden: updates to provisioner are forbidden." in refused.stderr
        grow = k.kubectl(
            "apply", "-f", "-", input=storage_class("b07-fast", allowVolumeExpansion=True, **fast)
        )
        assert grow.returncode == 0, grow.stderr
        sc = get(k, "storageclass", "b07-fast")
        assert (sc["reclaimPolicy"], sc["allowVolumeExpansion"]) == ("Delete", True)

        k.ok("patch", "pv", pv, "-p", '{"spec":{"persistentVolumeReclaimPolicy":"Retain"}}')
        k.ok("delete", "pvc", "data", "-n", ns, f"--timeout={int(WAIT)}s")
        poll(
            lambda: get(k, "pv", pv)["status"].get("phase") == "Released",
            what="the volume Released",
        )
        assert not get(k, "pv", pv)["metadata"].get("deletionTimestamp"), "Retain keeps it"
    finally:
        k.kubectl("delete", "storageclass", "b07-fast", "--wait=false")


@runc_test
def test_b09_a_completed_pod_keeps_its_claim_terminating(k: Kubeling) -> None:
    ns = namespace(k, "b09")
    k.ok("apply", "-n", ns, "-f", "-", input=claim("data"))
    k.ok("apply", "-n", ns, "-f", "-", input=claim("unused"))
    poll(lambda: claim_phase(k, ns, "data") == "Bound", what="data bound")
    apply_pod(
        k,
        ns,
        "once",
        {
            "command": ["sh", "-c", "echo done > /data/out"],
            "volumeMounts": [{"name": "data", "mountPath": "/data"}],
        },
        restartPolicy="Never",
        volumes=[{"name": "data", "persistentVolumeClaim": {"claimName": "data"}}],
    )
    k.ok(
        "wait", "-n", ns, "pod/once", "--for=jsonpath={.status.phase}=Succeeded",
        f"--timeout={int(WAIT)}s",
    )  # fmt: skip
    k.ok("delete", "pvc", "data", "unused", "-n", ns, "--wait=false")
    # the unused claim going shows the protection controller has acted on this namespace
    k.ok("wait", "-n", ns, "--for=delete", "pvc/unused", f"--timeout={int(WAIT)}s")
    held = get(k, "pvc", "data", "-n", ns)["metadata"]
    assert held.get("deletionTimestamp")
    assert held.get("finalizers") == ["kubernetes.io/pvc-protection"]
    assert "Terminating" in k.ok("get", "pvc", "data", "-n", ns)
    k.ok("delete", "pod", "once", "-n", ns)
    k.ok("wait", "-n", ns, "--for=delete", "pvc/data", f"--timeout={int(WAIT)}s")


def test_b12_wait_for_first_consumer_binds_for_node_selector_not_node_name(k: Kubeling) -> None:
    ns = namespace(k, "b12")
    node = node_name(k)
    k.ok(
        "apply",
        "-f",
        "-",
        input=storage_class("b12-lp", volumeBindingMode="WaitForFirstConsumer"),
    )
    try:
        for name in ("pinned", "selected"):
            k.ok("apply", "-n", ns, "-f", "-", input=claim(name, "10Mi", storageClassName="b12-lp"))
        mount = {"command": ["sleep", "3600"], "volumeMounts": [{"name": "d", "mountPath": "/d"}]}

        def uses(name: str) -> list[dict[str, Any]]:
            return [{"name": "d", "persistentVolumeClaim": {"claimName": name}}]

        apply_pod(k, ns, "pinned", mount, volumes=uses("pinned"))  # spec.nodeName
        apply_pod(
            k,
            ns,
            "selected",
            mount,
            bind=False,
            nodeSelector={"kubernetes.io/hostname": node},
            volumes=uses("selected"),
        )
        poll(lambda: claim_phase(k, ns, "selected") == "Bound", what="the nodeSelector claim")
        selected = get(k, "pvc", "selected", "-n", ns)["metadata"]["annotations"]
        assert selected["volume.kubernetes.io/selected-node"] == node
        k.ok("wait", "-n", ns, "--for=condition=Ready", "pod/selected", f"--timeout={int(WAIT)}s")

        # by now the nodeName pod has had as long: its claim is still waiting, never provisioned
        pinned = get(k, "pvc", "pinned", "-n", ns)
        assert pinned["status"]["phase"] == "Pending"
        assert "volume.kubernetes.io/selected-node" not in (
            pinned["metadata"].get("annotations") or {}
        )
        assert WFFC_MESSAGE in events(k, ns, "pinned", "WaitForFirstConsumer")
        assert pod(k, ns, "pinned")["status"].get("phase") == "Pending"
    finally:
        k.kubectl("delete", "storageclass", "b12-lp", "--wait=false")


def host_pv(name: str, path: pathlib.Path, size: str = "1Gi", **spec: Any) -> str:
    body = {
        "apiVersion": "v1",
        "kind": "PersistentVolume",
        "metadata": {"name": name},
        "spec": {
            "storageClassName": "",
            "capacity": {"storage": size},
            "accessModes": ["ReadWriteOnce"],
            "hostPath": {"path": str(path), "type": "DirectoryOrCreate"},
            **spec,
        },
    }
    return json.dumps(body)


@pytest.mark.parametrize(
    ("size", "pv_class", "mismatch"),
    [
        pytest.param("120Gi", "", None, id="bound-whole-capacity"),
        pytest.param("1Gi", "", "requested PV is too small", id="a-too-small"),
        pytest.param("120Gi", "slow", "storageClassName does not match", id="b-other-class"),
    ],
)
def test_b04_prebound_claim_reports_the_whole_volume_capacity(
    k: Kubeling,
    tmp_path: pathlib.Path,
    request: pytest.FixtureRequest,
    size: str,
    pv_class: str,
    mismatch: str | None,
) -> None:
    variant = request.node.callspec.id
    ns = namespace(k, f"b04-{variant}")
    pv = f"b04-big-pv-{variant}"
    rwx = ["ReadWriteMany"]
    k.ok("apply", "-f", "-", input=host_pv(pv, tmp_path / "big", size, accessModes=rwx, storageClassName=pv_class, persistentVolumeReclaimPolicy="Retain"))  # fmt: skip
    try:
        small = claim("small", "2Gi", storageClassName="", volumeName=pv, accessModes=rwx)
        k.ok("apply", "-n", ns, "-f", "-", input=small)
        if mismatch is None:
            poll(lambda: claim_phase(k, ns, "small") == "Bound", what="small bound")
            out = k.ok(
                "get", "pvc", "small", "-n", ns, "-o",
                "jsonpath={.status.phase} {.status.capacity.storage} "
                "{.spec.resources.requests.storage}",
            )  # fmt: skip
            assert out == "Bound 120Gi 2Gi"
        else:
            message = f'Cannot bind to requested volume "{pv}": {mismatch}'
            poll(lambda: message in events(k, ns, "small", "VolumeMismatch"), what=message)
            assert claim_phase(k, ns, "small") == "Pending"
    finally:
        k.kubectl("delete", "pvc", "small", "-n", ns, "--wait=false")
        k.kubectl("delete", "pv", pv, "--wait=false")


def test_b06_released_volume_is_not_rebound_to_a_recreated_claim(
    k: Kubeling, tmp_path: pathlib.Path
) -> None:
    ns = namespace(k, "b06")
    data = tmp_path / "b06-data-pv"
    data.mkdir()
    pv = "b06-data-pv"
    k.ok("apply", "-f", "-", input=host_pv(pv, data, persistentVolumeReclaimPolicy="Retain"))
    manifest = claim("data", storageClassName="", volumeName=pv)
    try:
        k.ok("apply", "-n", ns, "-f", "-", input=manifest)
        poll(lambda: claim_phase(k, ns, "data") == "Bound", what="data bound")
        old_uid = get(k, "pvc", "data", "-n", ns)["metadata"]["uid"]
        (data / "old.txt").write_text("kept")
        k.ok("delete", "pvc", "data", "-n", ns, f"--timeout={int(WAIT)}s")
        poll(
            lambda: (
                k.ok("get", "pv", pv, "-o", "jsonpath={.status.phase} {.spec.claimRef.uid}")
                == f"Released {old_uid}"
            ),
            what="the volume Released, still naming the old claim",
        )
        k.ok("apply", "-n", ns, "-f", "-", input=manifest)  # same claim again, new uid
        message = f'volume "{pv}" already bound to a different claim.'
        poll(lambda: message in events(k, ns, "data", "FailedBinding"), what=message)
        assert claim_phase(k, ns, "data") == "Pending"

        k.ok(
            "patch", "pv", pv, "--type=json", "-p", '[{"op":"remove","path":"/spec/claimRef/uid"}]'
        )
        poll(lambda: claim_phase(k, ns, "data") == "Bound", what="the claim bound again")
        bound = get(k, "pv", pv)["spec"]["claimRef"]
        assert (bound["namespace"], bound["name"]) == (ns, "data")
        assert bound["uid"] == get(k, "pvc", "data", "-n", ns)["metadata"]["uid"] != old_uid
        assert (data / "old.txt").read_text() == "kept", "Retain keeps the data"
    finally:
        k.kubectl("delete", "pvc", "data", "-n", ns, "--wait=false")
        k.kubectl("delete", "pv", pv, "--wait=false")


def test_b10_of_two_default_classes_the_newest_wins(k: Kubeling) -> None:
    """Names chosen so the tie rule (name ascending) would pick the older class: only the
    newest-creationTimestamp rule picks ``b10-zz-new``."""
    ns = namespace(k, "b10")
    try:
        k.ok("apply", "-f", "-", input=storage_class("b10-aa-old", default=True))
        stamp = get(k, "storageclass", "b10-aa-old")["metadata"]["creationTimestamp"]
        created = calendar.timegm(time.strptime(stamp, "%Y-%m-%dT%H:%M:%SZ"))
        # creationTimestamps have whole seconds: the next class must be a second younger
        poll(lambda: time.time() >= created + 1.05, what="the next second")
        k.ok("apply", "-f", "-", input=storage_class("b10-zz-new", default=True))
        k.ok("apply", "-n", ns, "-f", "-", input=claim("data"))
        assert get(k, "pvc", "data", "-n", ns)["spec"]["storageClassName"] == "b10-zz-new"
        k.ok("apply", "-n", ns, "-f", "-", input=claim("named", storageClassName="b10-aa-old"))
        assert get(k, "pvc", "named", "-n", ns)["spec"]["storageClassName"] == "b10-aa-old"
    finally:
        k.kubectl("delete", "pvc", "data", "named", "-n", ns, "--wait=false")
        k.kubectl("delete", "storageclass", "b10-aa-old", "b10-zz-new", "--wait=false")


def test_b13_shrink_and_pending_claim_resize_are_refused(k: Kubeling) -> None:
    """Steps 3 and 4 of B13 (steps 1 and 2 are ``test_storage_e2e``'s
    ``test_resize_refused_by_a_class_without_expansion``)."""
    ns = namespace(k, "b13")
    k.ok("apply", "-f", "-", input=storage_class("b13-grow", allowVolumeExpansion=True))
    try:
        k.ok("apply", "-n", ns, "-f", "-", input=claim("data", storageClassName="b13-grow"))
        poll(lambda: claim_phase(k, ns, "data") == "Bound", what="data bound")
        grow = '{"spec":{"resources":{"requests":{"storage":"2Gi"}}}}'
        k.ok("patch", "pvc", "data", "-n", ns, "-p", grow)
        shrink = '{"spec":{"resources":{"requests":{"storage":"1Gi"}}}}'
        refused = k.kubectl("patch", "pvc", "data", "-n", ns, "-p", shrink)
        assert refused.returncode != 0
        # below the previous value (RecoverVolumeExpansionFailure off) or at/below
        # status.capacity (on): 1Gi is refused either way
        assert "spec.resources.requests.storage: Forbidden: field can not be less than" in (
            refused.stderr
        )
        assert get(k, "pvc", "data", "-n", ns)["spec"]["resources"]["requests"] == {
            "storage": "2Gi"
        }

        k.ok("apply", "-n", ns, "-f", "-", input=claim("pending", storageClassName="b13-none"))
        refused = k.kubectl("patch", "pvc", "pending", "-n", ns, "-p", grow)
        assert refused.returncode != 0
        assert "spec is immutable after creation except resources.requests" in refused.stderr
    finally:
        k.kubectl("delete", "pvc", "data", "pending", "-n", ns, "--wait=false")
        k.kubectl("delete", "storageclass", "b13-grow", "--wait=false")


B29_SET = """\
apiVersion: apps/v1
kind: StatefulSet
metadata: {name: web}
spec:
  serviceName: web
  replicas: 2
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      terminationGracePeriodSeconds: 2
      containers: [{name: c, image: busybox:1.36, command: ["sleep", "3600"]}]
"""


@runc_test
@pytest.mark.parametrize(
    ("variant", "service", "headless"),
    [("A", "web", False), ("B", "web-hs", True), ("C", "web", True)],
)
def test_b29_per_pod_names_need_a_headless_service_named_service_name(
    k: Kubeling, variant: str, service: str, headless: bool
) -> None:
    ns = namespace(k, f"b29-{variant.lower()}")
    svc: dict[str, Any] = {"selector": {"app": "web"}, "ports": [{"name": "http", "port": 80}]}
    if headless:
        svc["clusterIP"] = "None"
    body = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": service}, "spec": svc}
    k.ok("apply", "-n", ns, "-f", "-", input=json.dumps(body))
    k.ok("apply", "-n", ns, "-f", "-", input=B29_SET)
    k.ok("rollout", "status", "sts/web", "-n", ns, "--timeout=60s")
    web0 = pod(k, ns, "web-0")
    assert (web0["spec"]["hostname"], web0["spec"]["subdomain"]) == ("web-0", "web")
    ips = sorted(pod_ip(k, ns, f"web-{i}") for i in range(2))
    zone = f"{ns}.{ZONE}"
    if variant == "A":
        cluster_ip = get(k, "svc", "web", "-n", ns)["spec"]["clusterIP"]
        poll(lambda: answers(f"web.{zone}") == [cluster_ip], what="web's ClusterIP")
        assert dns(f"web-0.web.{zone}").header.rcode == RCODE.NXDOMAIN
    elif variant == "B":
        poll(lambda: answers(f"web-hs.{zone}") == ips, what="web-hs's pod addresses")
        assert dns(f"web-0.web-hs.{zone}").header.rcode == RCODE.NXDOMAIN
        assert dns(f"web-0.web.{zone}").header.rcode == RCODE.NXDOMAIN
        assert dns(f"web.{zone}").header.rcode == RCODE.NXDOMAIN
    else:
        poll(lambda: answers(f"web.{zone}") == ips, what="web's pod addresses")
        assert answers(f"web-0.web.{zone}") == [pod_ip(k, ns, "web-0")]
        assert answers(f"web-1.web.{zone}") == [pod_ip(k, ns, "web-1")]


# -- Theme E: subPath refresh (kubeling does better than upstream) -------------------------------


@runc_test
def test_b20_secret_subpath_file_is_refreshed_and_env_changes_on_restart(k: Kubeling) -> None:
    """kubeling's documented behaviour, better than upstream's: a subPath-mounted Secret (or
    ConfigMap) file follows updates like the directory mount does (upstream: never, until
    the container restarts). Env stays as resolved at container start, as upstream, and a
    container restart picks the new value up."""
    ns = namespace(k, "b20")
    k.ok("create", "secret", "generic", "web-sec", "-n", ns, "--from-literal=app.json=v1")
    apply_pod(
        k,
        ns,
        "web",
        {
            "command": [
                "sh",
                "-c",
                'trap "exit 0" TERM; while [ ! -f /tmp/stop ]; do sleep 0.2; done',
            ],
            "env": [
                {
                    "name": "V",
                    "valueFrom": {"secretKeyRef": {"name": "web-sec", "key": "app.json"}},
                }
            ],
            "volumeMounts": [
                {"name": "conf", "mountPath": "/etc/conf-dir"},
                {"name": "conf", "mountPath": "/etc/app.json", "subPath": "app.json"},
            ],
        },
        volumes=[{"name": "conf", "secret": {"secretName": "web-sec"}}],
    )
    wait_ready(k, ns, "web")

    def cat(path: str) -> str:
        return k.kubectl("exec", "-n", ns, "web", "--", "cat", path).stdout

    assert (cat("/etc/conf-dir/app.json"), cat("/etc/app.json")) == ("v1", "v1")
    k.ok(
        "patch", "secret", "web-sec", "-n", ns, "-p", json.dumps({"data": {"app.json": b64("v2")}})
    )
    poll(lambda: cat("/etc/conf-dir/app.json") == "v2", what="the directory mount at v2")
    poll(lambda: cat("/etc/app.json") == "v2", what="the subPath file at v2")
    assert k.ok("exec", "-n", ns, "web", "--", "printenv", "V") == "v1\n"

    k.ok("exec", "-n", ns, "web", "--", "touch", "/tmp/stop")  # the container exits 0

    def restarted() -> bool:
        statuses = pod(k, ns, "web")["status"].get("containerStatuses") or []
        return bool(statuses) and statuses[0]["restartCount"] == 1 and statuses[0]["ready"]

    poll(restarted, what="the container restarted")
    assert k.ok("exec", "-n", ns, "web", "--", "printenv", "V") == "v2\n"
    assert (cat("/etc/conf-dir/app.json"), cat("/etc/app.json")) == ("v2", "v2")


# -- Theme G: DNS of real pods -----------------------------------------------------------------------


def pod_ip(k: Kubeling, ns: str, name: str) -> str:
    return str((pod(k, ns, name).get("status") or {}).get("podIP") or "")


@runc_test
def test_b30_not_ready_pods_have_no_dns_until_ready_or_published(k: Kubeling) -> None:
    ns = namespace(k, "b30")
    manifest = """\
apiVersion: v1
kind: Service
metadata: {name: peers}
spec:
  clusterIP: None
  selector: {app: peer}
  ports: [{name: client, port: 4222}]
---
apiVersion: apps/v1
kind: StatefulSet
metadata: {name: peer}
spec:
  serviceName: peers
  replicas: 3
  podManagementPolicy: Parallel
  selector: {matchLabels: {app: peer}}
  template:
    metadata: {labels: {app: peer}}
    spec:
      terminationGracePeriodSeconds: 2
      containers:
      - name: c
        image: busybox:1.36
        command: ["sleep", "3600"]
        readinessProbe: {exec: {command: ["test", "-f", "/tmp/ready"]}, periodSeconds: 1}
"""
    k.ok("apply", "-n", ns, "-f", "-", input=manifest)
    peers = [f"peer-{i}" for i in range(3)]
    ips = poll(
        lambda: (
            all(k.kubectl("get", "pod", p, "-n", ns).returncode == 0 for p in peers)
            and all(ip := [pod_ip(k, ns, p) for p in peers])
            and ip
        ),
        what="three pods with IPs",
    )

    def slice_ready() -> list[bool]:
        items = get(k, "endpointslices", "-n", ns)["items"]
        return [ep["conditions"].get("ready") for s in items for ep in s.get("endpoints") or []]

    poll(lambda: slice_ready() == [False, False, False], what="three not-ready endpoints")
    base = f"peers.{ns}.{ZONE}"
    assert unpublished(f"peer-0.{base}")
    assert unpublished(base)
    assert unpublished(f"_client._tcp.{base}", "SRV")

    # readiness publishes that pod only
    k.ok("exec", "-n", ns, "peer-0", "--", "touch", "/tmp/ready")
    poll(lambda: answers(base) == [ips[0]], what="peer-0 alone in the headless set")
    assert answers(f"peer-0.{base}") == [ips[0]]
    assert unpublished(f"peer-1.{base}")

    # publishNotReadyAddresses: every pod with an IP, whatever its probes say
    k.ok("patch", "svc", "peers", "-n", ns, "-p", '{"spec":{"publishNotReadyAddresses":true}}')
    poll(lambda: answers(base) == sorted(ips), what="all three published")
    for name, ip in zip(peers, ips, strict=True):
        assert answers(f"{name}.{base}") == [ip]
    assert answers(f"_client._tcp.{base}", "SRV") == [f"{p}.{base}." for p in peers]
    ready = {c["type"]: c["status"] for c in pod(k, ns, "peer-1")["status"].get("conditions") or []}
    assert ready.get("Ready") == "False", "published, though its probe still fails"


B31_MANIFEST = """\
apiVersion: v1
kind: Service
metadata: {name: dep}
spec: {clusterIP: None, selector: {app: dep}, ports: [{name: http, port: 80}]}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: dep}
spec:
  replicas: 2
  selector: {matchLabels: {app: dep}}
  template:
    metadata: {labels: {app: dep}}
    spec:
      subdomain: dep
      setHostnameAsFQDN: true
      terminationGracePeriodSeconds: 2
      containers: [{name: c, image: busybox:1.36, command: ["sleep", "3600"]}]
---
apiVersion: v1
kind: Pod
metadata: {name: solo, labels: {app: dep}}
spec:
  hostname: solo
  subdomain: dep
  terminationGracePeriodSeconds: 2
  containers: [{name: c, image: busybox:1.36, command: ["sleep", "3600"]}]
"""


@pytest.fixture(scope="module")
def b31(k: Kubeling) -> tuple[str, list[str]]:
    """The B31 workload, Ready: the namespace and the Deployment's two pod names."""
    if not runc_usable():
        pytest.skip("needs the runc runtime (root and runc)")
    ns = namespace(k, "b31")
    k.ok("apply", "-n", ns, "-f", "-", input=B31_MANIFEST)

    def three() -> list[str]:
        items = get(k, "pods", "-n", ns, "-l", "app=dep")["items"]
        return [p["metadata"]["name"] for p in items] if len(items) == 3 else []

    names = poll(three, what="three pods")
    k.ok("wait", "-n", ns, "--for=condition=Ready", *[f"pod/{n}" for n in names], "--timeout=60s")
    return ns, [n for n in names if n != "solo"]


@runc_test
def test_b31_subdomain_without_hostname_gives_no_per_pod_record(
    k: Kubeling, b31: tuple[str, list[str]]
) -> None:
    ns, deployment_pods = b31
    ips = sorted(pod_ip(k, ns, n) for n in [*deployment_pods, "solo"])
    base = f"dep.{ns}.{ZONE}"
    poll(lambda: answers(base) == ips, what="the headless Service's three addresses")
    assert answers(f"solo.{base}") == [pod_ip(k, ns, "solo")]
    for name in deployment_pods:
        assert not pod(k, ns, name)["spec"].get("hostname")
        assert dns(f"{name}.{base}").header.rcode == RCODE.NXDOMAIN, "no spec.hostname"


@runc_test
def test_b31_set_hostname_as_fqdn_reports_the_fqdn_that_does_not_resolve(
    k: Kubeling, b31: tuple[str, list[str]]
) -> None:
    ns, deployment_pods = b31
    for name in deployment_pods:
        fqdn = k.ok("exec", "-n", ns, name, "--", "hostname").strip()
        assert fqdn == f"{name}.dep.{ns}.{ZONE}"
        assert dns(fqdn).header.rcode == RCODE.NXDOMAIN


# -- Theme H: claims kept across a scale-down ------------------------------------------------------


@runc_test
def test_b33_scale_down_keeps_claims_and_scale_up_reattaches_the_data(k: Kubeling) -> None:
    ns = namespace(k, "b33")
    manifest = """\
apiVersion: apps/v1
kind: StatefulSet
metadata: {name: db}
spec:
  serviceName: db
  replicas: 3
  selector: {matchLabels: {app: db}}
  template:
    metadata: {labels: {app: db}}
    spec:
      terminationGracePeriodSeconds: 2
      containers:
      - {name: c, image: busybox:1.36, command: ["sh", "-c", "[ -f /data/m ] || hostname > /data/m; sleep 3600"], volumeMounts: [{name: data, mountPath: /data}]}
  volumeClaimTemplates:
  - metadata: {name: data}
    spec: {accessModes: ["ReadWriteOnce"], resources: {requests: {storage: 1Gi}}}
"""
    k.ok("apply", "-n", ns, "-f", "-", input=manifest)
    k.ok("rollout", "status", "sts/db", "-n", ns, "--timeout=90s")
    k.ok("exec", "-n", ns, "db-2", "--", "sh", "-c", "echo first-life > /data/extra")
    claims = {c["metadata"]["name"]: c["metadata"]["uid"] for c in get(k, "pvc", "-n", ns)["items"]}
    assert sorted(claims) == ["data-db-0", "data-db-1", "data-db-2"]

    k.ok("scale", "sts", "db", "-n", ns, "--replicas=1")
    k.ok("wait", "-n", ns, "--for=delete", "pod/db-1", "pod/db-2", "--timeout=60s")
    kept = {c["metadata"]["name"]: c["metadata"]["uid"] for c in get(k, "pvc", "-n", ns)["items"]}
    assert kept == claims, "Retain (the default) keeps every claim"

    k.ok("scale", "sts", "db", "-n", ns, "--replicas=3")
    k.ok("rollout", "status", "sts/db", "-n", ns, "--timeout=90s")
    assert k.ok("exec", "-n", ns, "db-2", "--", "cat", "/data/m", "/data/extra") == (
        "db-2\nfirst-life\n"
    )
    again = {c["metadata"]["name"]: c["metadata"]["uid"] for c in get(k, "pvc", "-n", ns)["items"]}
    assert again == claims


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
