"""The real kubectl against a real ``kubeling up``."""

from __future__ import annotations

import json
import pathlib
import ssl
import subprocess
import urllib.error
import urllib.request

import pytest
import yaml

from tests.e2e.conftest import Kubeling, kubectl_path, start_kubeling, stop_kubeling
from tests.shared import tutorial

pytestmark = pytest.mark.e2e


CM = """\
apiVersion: v1
kind: ConfigMap
metadata:
  name: settings
  namespace: {ns}
  labels:
    app: demo
data:
  a: "1"
"""


def _ns(k: Kubeling, name: str) -> str:
    k.ok("create", "namespace", name)
    return name


def test_kubectl_version_reports_server_1_32(shared_kubeling: Kubeling) -> None:
    out = shared_kubeling.ok("version", "-o", "json")
    versions = json.loads(out)
    server = versions["serverVersion"]
    assert (server["major"], server["minor"]) == ("1", "32")
    # The dispatcher in front of kubectl picked the bundled kubectl matching minor 32.
    assert versions["clientVersion"]["gitVersion"].startswith("v1.32.")
    assert server["gitVersion"] == "v1.32.0-kubeling"


def test_api_resources_lists_upstream_short_names(shared_kubeling: Kubeling) -> None:
    out = shared_kubeling.ok("api-resources", "--no-headers")
    rows = {line.split()[0]: line.split() for line in out.splitlines()}
    for name, short in [
        ("persistentvolumes", "pv"),
        ("persistentvolumeclaims", "pvc"),
        ("configmaps", "cm"),
        ("storageclasses", "sc"),
        ("statefulsets", "sts"),
        ("services", "svc"),
    ]:
        assert short in rows[name], rows[name]


def test_get_namespaces_shows_default_and_kube_system(shared_kubeling: Kubeling) -> None:
    out = shared_kubeling.ok("get", "ns")
    lines = out.splitlines()
    assert lines[0].split() == ["NAME", "STATUS", "AGE"]
    names = {line.split()[0] for line in lines[1:]}
    assert {"default", "kube-system"} <= names


def test_create_configmap_sends_protobuf_and_reads_back(shared_kubeling: Kubeling) -> None:
    k = shared_kubeling
    ns = _ns(k, "proto")
    out = k.ok("create", "configmap", "c1", "-n", ns, "--from-literal=x=y", "--from-literal=z=w")
    assert out.strip() == "configmap/c1 created"
    obj = json.loads(k.ok("get", "cm", "c1", "-n", ns, "-o", "json"))
    assert obj["data"] == {"x": "y", "z": "w"}
    assert obj["metadata"]["namespace"] == ns


def test_apply_twice_second_is_unchanged(shared_kubeling: Kubeling) -> None:
    k = shared_kubeling
    ns = _ns(k, "apply")
    manifest = CM.format(ns=ns)
    assert k.ok("apply", "-f", "-", input=manifest).strip() == "configmap/settings created"
    assert k.ok("apply", "-f", "-", input=manifest).strip() == "configmap/settings unchanged"
    changed = manifest.replace('a: "1"', 'a: "2"')
    assert k.ok("apply", "-f", "-", input=changed).strip() == "configmap/settings configured"
    assert k.ok("get", "cm", "settings", "-n", ns, "-o", "jsonpath={.data.a}") == "2"


def test_get_output_formats(shared_kubeling: Kubeling) -> None:
    k = shared_kubeling
    ns = _ns(k, "formats")
    k.ok("apply", "-f", "-", input=CM.format(ns=ns))
    as_yaml = yaml.safe_load(k.ok("get", "cm", "settings", "-n", ns, "-o", "yaml"))
    assert as_yaml["kind"] == "ConfigMap"
    assert as_yaml["metadata"]["labels"] == {"app": "demo"}
    as_json = json.loads(k.ok("get", "cm", "-n", ns, "-o", "json"))
    assert [i["metadata"]["name"] for i in as_json["items"]] == ["settings"]
    table = k.ok("get", "cm", "-n", ns).splitlines()
    assert table[0].split() == ["NAME", "DATA", "AGE"]
    assert table[1].split()[:2] == ["settings", "1"]
    wide = k.ok("get", "cm", "-n", ns, "-o", "wide").splitlines()
    assert wide[1].split()[0] == "settings"
    assert k.ok("get", "cm", "-n", ns, "-o", "jsonpath={.items[*].metadata.name}") == "settings"
    labels = k.ok("get", "cm", "settings", "-n", ns, "--show-labels").splitlines()
    assert labels[1].split()[-1] == "app=demo"


def test_label_and_field_selectors_filter(shared_kubeling: Kubeling) -> None:
    k = shared_kubeling
    ns = _ns(k, "selectors")
    k.ok("create", "configmap", "one", "-n", ns, "--from-literal=a=b")
    k.ok("create", "configmap", "two", "-n", ns, "--from-literal=a=b")
    k.ok("label", "configmap", "two", "-n", ns, "tier=db")
    names = k.ok("get", "cm", "-n", ns, "-l", "tier=db", "-o", "name").split()
    assert names == ["configmap/two"]
    names = k.ok("get", "cm", "-n", ns, "-l", "tier!=db", "-o", "name").split()
    assert "configmap/one" in names
    assert "configmap/two" not in names
    names = k.ok(
        "get", "cm", "-n", ns, "--field-selector", "metadata.name=one", "-o", "name"
    ).split()
    assert names == ["configmap/one"]


def test_get_all_namespaces_shows_namespace_column(shared_kubeling: Kubeling) -> None:
    k = shared_kubeling
    ns = _ns(k, "allns")
    k.ok("create", "configmap", "everywhere", "-n", ns, "--from-literal=a=b")
    lines = k.ok("get", "cm", "-A").splitlines()
    assert lines[0].split()[:2] == ["NAMESPACE", "NAME"]
    assert [ns, "everywhere"] in [line.split()[:2] for line in lines[1:]]


def test_delete_removes_object_and_missing_is_not_found(shared_kubeling: Kubeling) -> None:
    k = shared_kubeling
    ns = _ns(k, "deleting")
    k.ok("create", "configmap", "gone", "-n", ns, "--from-literal=a=b")
    assert k.ok("delete", "cm", "gone", "-n", ns).strip() == 'configmap "gone" deleted'
    r = k.kubectl("get", "cm", "gone", "-n", ns)
    assert r.returncode == 1
    assert 'Error from server (NotFound): configmaps "gone" not found' in r.stderr


def test_explain_pvc_resources_describes_requests(shared_kubeling: Kubeling) -> None:
    out = shared_kubeling.ok("explain", "pvc.spec.resources")
    assert "KIND:       PersistentVolumeClaim" in out
    assert "requests" in out
    assert "limits" in out


def test_apply_tutorial_claim_as_written_is_strict_decoding_error(
    shared_kubeling: Kubeling,
) -> None:
    manifest = tutorial("11-pvc-as-written.yaml").read_text()
    r = shared_kubeling.kubectl("apply", "-f", "-", input=manifest)
    assert r.returncode == 1
    assert 'strict decoding error: unknown field "spec.resources.request"' in r.stderr


def test_request_without_credentials_is_401(shared_kubeling: Kubeling) -> None:
    ctx = ssl.create_default_context(cafile=str(shared_kubeling.ca_file))
    req = urllib.request.Request(f"{shared_kubeling.url}/api/v1/namespaces")
    with pytest.raises(urllib.error.HTTPError) as info:
        urllib.request.urlopen(req, context=ctx, timeout=10)
    assert info.value.code == 401
    body = json.loads(info.value.read())
    assert (body["kind"], body["reason"]) == ("Status", "Unauthorized")
    # The TLS certificate verified against the cluster CA by IP: /version needs no token.
    with urllib.request.urlopen(f"{shared_kubeling.url}/version", context=ctx, timeout=10) as r:
        assert json.loads(r.read())["minor"] == "32"


def test_restart_on_same_data_dir_keeps_objects(
    kubeling_dirs: tuple[pathlib.Path, pathlib.Path],
) -> None:
    data, cache = kubeling_dirs
    first = start_kubeling(data, cache)
    try:
        first.ok("create", "configmap", "kept", "--from-literal=a=b")
    finally:
        assert stop_kubeling(first) == 0
    second = start_kubeling(data, cache)
    try:
        obj = json.loads(second.ok("get", "cm", "kept", "-o", "json"))
        assert obj["data"] == {"a": "b"}
        assert second.token == first.token
    finally:
        assert stop_kubeling(second) == 0


def test_sort_by_uses_full_row_objects(shared_kubeling: Kubeling) -> None:
    k = shared_kubeling
    ns = _ns(k, "sorting")
    for name in ("zeta", "alpha", "mid"):
        k.ok("create", "configmap", name, "-n", ns, "--from-literal=a=b")
    lines = k.ok("get", "cm", "-n", ns, "--sort-by=.metadata.name").splitlines()
    assert [line.split()[0] for line in lines[1:]] == ["alpha", "mid", "zeta"]


def test_label_annotate_patch_and_scale(shared_kubeling: Kubeling) -> None:
    k = shared_kubeling
    ns = _ns(k, "writes")
    k.ok("create", "configmap", "cm", "-n", ns, "--from-literal=a=b")
    assert k.ok("label", "cm", "cm", "-n", ns, "x=y").strip() == "configmap/cm labeled"
    assert k.ok("annotate", "cm", "cm", "-n", ns, "n=1").strip() == "configmap/cm annotated"
    assert (
        k.ok("patch", "cm", "cm", "-n", ns, "-p", '{"data":{"a":"c"}}').strip()
        == "configmap/cm patched"
    )
    assert (
        k.ok("patch", "cm", "cm", "-n", ns, "-p", '{"data":{"a":"c"}}').strip()
        == "configmap/cm patched (no change)"
    )
    assert (
        k.ok(
            "patch",
            "cm",
            "cm",
            "-n",
            ns,
            "--type",
            "json",
            "-p",
            '[{"op":"add","path":"/data/j","value":"k"}]',
        ).strip()
        == "configmap/cm patched"
    )
    obj = json.loads(k.ok("get", "cm", "cm", "-n", ns, "-o", "json"))
    assert obj["data"] == {"a": "c", "j": "k"}
    assert obj["metadata"]["labels"] == {"x": "y"}
    assert obj["metadata"]["annotations"] == {"n": "1"}

    sts = tutorial("15-statefulset.yaml").read_text()
    k.ok("apply", "-n", ns, "-f", "-", input=sts)
    assert k.ok("scale", "-n", ns, "sts", "web", "--replicas=5").strip() == (
        "statefulset.apps/web scaled"
    )
    assert k.ok("get", "-n", ns, "sts", "web", "-o", "jsonpath={.spec.replicas}") == "5"


def test_server_side_apply_and_server_dry_run(shared_kubeling: Kubeling) -> None:
    k = shared_kubeling
    ns = _ns(k, "ssa")
    manifest = CM.format(ns=ns)
    out = k.ok("apply", "--server-side", "-f", "-", input=manifest)
    assert out.strip() == "configmap/settings serverside-applied"
    managers = json.loads(
        k.ok("get", "cm", "settings", "-n", ns, "-o", "json", "--show-managed-fields")
    )
    assert [m["manager"] for m in managers["metadata"]["managedFields"]] == ["kubectl"]
    out = k.ok("create", "configmap", "dry", "-n", ns, "--from-literal=a=b", "--dry-run=server")
    assert out.strip() == "configmap/dry created (server dry run)"
    r = k.kubectl("get", "cm", "dry", "-n", ns)
    assert r.returncode == 1
    assert "NotFound" in r.stderr


def test_auth_can_i_and_whoami(shared_kubeling: Kubeling) -> None:
    assert shared_kubeling.ok("auth", "can-i", "create", "pods").strip() == "yes"
    who = shared_kubeling.ok("auth", "whoami").splitlines()
    assert who[1].split() == ["Username", "kubernetes-admin"]


def test_get_watch_prints_table_rows_for_changes(shared_kubeling: Kubeling) -> None:
    k = shared_kubeling
    ns = _ns(k, "watching")
    proc = subprocess.Popen(
        [
            kubectl_path(),
            f"--kubeconfig={k.kubeconfig}",
            f"--cache-dir={k.cache_dir}",
            "get",
            "cm",
            "-n",
            ns,
            "-w",
            "--request-timeout=30s",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        k.ok("create", "configmap", "first", "-n", ns, "--from-literal=a=b")
        header = proc.stdout.readline()
        assert header.split() == ["NAME", "DATA", "AGE"]
        assert proc.stdout.readline().split()[:2] == ["first", "1"]
        k.ok("label", "cm", "first", "-n", ns, "x=y")
        assert proc.stdout.readline().split()[:2] == ["first", "1"]
    finally:
        proc.terminate()
        proc.wait(10)


def test_delete_waits_until_gone_and_wait_for_delete_returns(shared_kubeling: Kubeling) -> None:
    k = shared_kubeling
    ns = _ns(k, "waiting")
    k.ok("create", "configmap", "w", "-n", ns, "--from-literal=a=b")
    assert k.ok("delete", "cm", "w", "-n", ns, "--wait=true").strip() == 'configmap "w" deleted'
    assert k.kubectl("wait", "--for=delete", "cm/w", "-n", ns, "--timeout=10s").returncode == 0


def test_get_status_subresource_prints_a_table(shared_kubeling: Kubeling) -> None:
    lines = shared_kubeling.ok("get", "ns", "default", "--subresource=status").splitlines()
    assert lines[0].split() == ["NAME", "STATUS", "AGE"]
    assert lines[1].split()[:2] == ["default", "Active"]


def test_validate_warn_prints_server_warning_and_succeeds(shared_kubeling: Kubeling) -> None:
    k = shared_kubeling
    ns = _ns(k, "warnings")
    manifest = CM.format(ns=ns).replace("\ndata:\n", "\nbogus: 1\ndata:\n")
    r = k.kubectl("apply", "--validate=warn", "-f", "-", input=manifest)
    assert r.returncode == 0, r.stderr
    assert 'Warning: unknown field "bogus"' in r.stderr
    r = k.kubectl("apply", "-f", "-", input=manifest.replace("settings", "strict"))
    assert r.returncode == 1
    assert 'strict decoding error: unknown field "bogus"' in r.stderr


def test_validate_warn_keeps_the_warning_when_the_request_is_refused(
    shared_kubeling: Kubeling,
) -> None:
    k = shared_kubeling
    ns = _ns(k, "warn-refused")
    manifest = CM.format(ns=ns).replace("\ndata:\n", "\nbogus: 1\ndata:\n")
    manifest = manifest.replace("name: settings", "name: Not_Valid")
    r = k.kubectl("create", "--validate=warn", "-f", "-", input=manifest)
    assert r.returncode == 1
    assert 'Warning: unknown field "bogus"' in r.stderr
    assert 'ConfigMap "Not_Valid" is invalid: metadata.name: Invalid value' in r.stderr


def test_unknown_resource_type_is_reported_by_kubectl(shared_kubeling: Kubeling) -> None:
    r = shared_kubeling.kubectl("get", "nosuchthings")
    assert r.returncode == 1
    assert 'the server doesn\'t have a resource type "nosuchthings"' in r.stderr


def test_create_secret_generic_protobuf_defaults_type_opaque(shared_kubeling: Kubeling) -> None:
    k = shared_kubeling
    ns = _ns(k, "secrets")
    assert k.ok(
        "create", "secret", "generic", "s1", "-n", ns, "--from-literal=pw=s3cr3t"
    ).strip() == ("secret/s1 created")
    obj = json.loads(k.ok("get", "secret", "s1", "-n", ns, "-o", "json"))
    assert obj["type"] == "Opaque"
    assert obj["data"] == {"pw": "czNjcjN0"}


def test_cluster_info_dump_walks_every_workload_kind(
    shared_kubeling: Kubeling, tmp_path: pathlib.Path
) -> None:
    # cluster-info dump lists nodes, events, replicationcontrollers, services, daemonsets,
    # deployments, replicasets and pods; a 404 on any of them fails the whole command.
    k = shared_kubeling
    ns = _ns(k, "dump-e2e")
    rc = (
        "apiVersion: v1\nkind: ReplicationController\nmetadata: {name: web}\nspec:\n"
        "  replicas: 2\n  template:\n    metadata: {labels: {app: web}}\n"
        "    spec: {containers: [{name: c, image: nginx}]}\n"
    )
    k.ok("apply", "-n", ns, "-f", "-", input=rc)
    rows = k.ok("get", "rc", "-n", ns, "--no-headers").split()
    assert rows[:4] == ["web", "2", "0", "0"]
    out = tmp_path / "dump"
    k.ok("cluster-info", "dump", "--namespaces", ns, f"--output-directory={out}")
    dumped = json.loads((out / ns / "replication-controllers.json").read_text())
    assert [i["metadata"]["name"] for i in dumped["items"]] == ["web"]
    assert json.loads((out / ns / "daemonsets.json").read_text())["items"] == []
