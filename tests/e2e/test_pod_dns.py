"""Pods resolve cluster names through kubeling's DNS on the pod bridge (issue 4).

One ``kubeling up --runtime=runc`` for the module, on a private bridge and /24
(``KUBELING_POD_BRIDGE``, ``KUBELING_POD_CIDR``) and *without* ``--dns-listen``: pods must
get the cluster DNS all the same, served on the bridge address only. A headless Service and
a two-replica StatefulSet ``web``; lookups run inside ``web-1`` with the host's ``getent``
(the pods run on the host's root filesystem). The resolv.conf policies and the
``setHostnameAsFQDN`` hostname are checked without root as well.
"""

from __future__ import annotations

import json
import pathlib
import subprocess
from collections.abc import Iterator
from typing import Any

import pytest

from kubeling.agent.errors import AgentError
from kubeling.agent.network import BridgeNetwork, render_resolv_conf
from kubeling.agent.runtime.simulated import SimulatedRuntime
from kubeling.agent.sandbox import Node, PodSandbox
from tests.agent.conftest import link_exists, requires_root, requires_runc, test_network
from tests.e2e.conftest import Kubeling, start_kubeling, stop_kubeling
from tests.helpers.waiting import poll

NS = "pod-dns"
ZONE = "cluster.local"
WAIT = 60.0

MANIFEST = f"""\
apiVersion: v1
kind: Namespace
metadata: {{name: {NS}}}
---
apiVersion: v1
kind: Service
metadata: {{name: web, namespace: {NS}}}
spec:
  clusterIP: None
  selector: {{app: web}}
  ports: [{{name: http, port: 80}}]
---
apiVersion: apps/v1
kind: StatefulSet
metadata: {{name: web, namespace: {NS}}}
spec:
  serviceName: web
  replicas: 2
  selector: {{matchLabels: {{app: web}}}}
  template:
    metadata: {{labels: {{app: web}}}}
    spec:
      terminationGracePeriodSeconds: 1
      containers:
      - name: c
        image: busybox:1.36
        command: ["sh", "-c", "trap 'exit 0' TERM; while :; do sleep 3600 & wait $!; done"]
"""

# One UDP query for an A record, sent from inside the pod to the first nameserver of its
# resolv.conf; prints the response code. getent cannot tell REFUSED from NXDOMAIN.
RCODE_PROBE = """\
import random, socket, struct, sys
server = next(l.split()[1] for l in open('/etc/resolv.conf') if l.startswith('nameserver'))
qid = random.randrange(65536)
name = b''.join(bytes([len(p)]) + p.encode() for p in sys.argv[1].strip('.').split('.'))
query = struct.pack('!HHHHHH', qid, 0x0100, 1, 0, 0, 0) + name + b'\\0' + struct.pack('!HH', 1, 1)
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.settimeout(5)
s.sendto(query, (server, 53))
reply = s.recv(4096)
assert struct.unpack('!H', reply[:2])[0] == qid
print(reply[3] & 0x0F)
"""
RCODE_REFUSED = 5


def dns_sockets(pid: int) -> set[tuple[str, str]]:
    """``(protocol, local address)`` of every socket ``pid`` holds on port 53."""
    out = subprocess.run(
        ["ss", "-H", "-l", "-n", "-u", "-t", "-p", "sport", "=", ":53"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    found = set()
    for line in out.splitlines():
        fields = line.split()
        if f"pid={pid}," in line:
            found.add((fields[0], fields[4]))
    return found


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Kubeling, BridgeNetwork]]:
    base = tmp_path_factory.mktemp("pod-dns")
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
        code = stop_kubeling(k)
        assert code == 0, f"kubeling up exited {code}:\n" + "\n".join(k.output)
        assert not link_exists(network.bridge), "the bridge outlived kubeling up"
        assert dns_sockets(k.proc.pid) == set()


@pytest.fixture(scope="module")
def web(cluster: tuple[Kubeling, BridgeNetwork]) -> dict[str, str]:
    """The StatefulSet rolled out: pod name → pod IP."""
    k, _ = cluster
    k.ok("apply", "-f", "-", input=MANIFEST)
    k.ok("rollout", "status", "sts/web", "-n", NS, "--timeout=90s")
    pods = json.loads(k.ok("get", "pods", "-n", NS, "-l", "app=web", "-o", "json"))["items"]
    ips = {p["metadata"]["name"]: p["status"].get("podIP", "") for p in pods}
    assert sorted(ips) == ["web-0", "web-1"] and all(ips.values()), ips
    return ips


def getent(k: Kubeling, *args: str) -> subprocess.CompletedProcess[str]:
    return k.kubectl("exec", "-n", NS, "web-1", "--", "getent", *args)


def lines_of(result: subprocess.CompletedProcess[str]) -> list[list[str]]:
    return [line.split() for line in result.stdout.splitlines() if line.strip()]


@requires_root
@requires_runc
@pytest.mark.e2e
def test_pod_dns_served_on_the_bridge_address_only(
    cluster: tuple[Kubeling, BridgeNetwork], web: dict[str, str]
) -> None:
    k, network = cluster
    expected = {("udp", f"{network.dns_ip}:53"), ("tcp", f"{network.dns_ip}:53")}
    assert dns_sockets(k.proc.pid) == expected
    resolv = k.ok("exec", "-n", NS, "web-1", "--", "cat", "/etc/resolv.conf")
    assert resolv == (
        f"nameserver {network.dns_ip}\nsearch {NS}.svc.{ZONE} svc.{ZONE} {ZONE}\noptions ndots:5\n"
    )


@requires_root
@requires_runc
@pytest.mark.e2e
def test_pod_dns_getent_resolves_a_peer_by_its_stable_name(
    cluster: tuple[Kubeling, BridgeNetwork], web: dict[str, str]
) -> None:
    k, _ = cluster
    # The record follows the EndpointSlice, which may trail the rollout by an instant.
    result = poll(
        lambda: (r := getent(k, "hosts", "web-0.web")).returncode == 0 and r,
        what="web-0.web to resolve inside web-1",
    )
    assert lines_of(result) == [[web["web-0"], f"web-0.web.{NS}.svc.{ZONE}"]]


@requires_root
@requires_runc
@pytest.mark.e2e
def test_pod_dns_headless_service_name_lists_every_ready_pod(
    cluster: tuple[Kubeling, BridgeNetwork], web: dict[str, str]
) -> None:
    k, _ = cluster
    name = f"web.{NS}.svc.{ZONE}"

    def both() -> list[str]:
        result = getent(k, "ahostsv4", name)
        found = sorted({fields[0] for fields in lines_of(result)})
        return found if found == sorted(web.values()) else []

    poll(both, what=f"{name} to list both pods")
    result = getent(k, "hosts", name)
    assert result.returncode == 0, result.stderr
    assert sorted(fields[0] for fields in lines_of(result)) == sorted(web.values())


@requires_root
@requires_runc
@pytest.mark.e2e
def test_pod_dns_names_outside_the_zone_are_refused_not_forwarded(
    cluster: tuple[Kubeling, BridgeNetwork], web: dict[str, str]
) -> None:
    k, _ = cluster
    result = getent(k, "hosts", "kubernetes.io")
    assert result.returncode == 2 and result.stdout == "", result
    probe = k.kubectl(
        "exec", "-n", NS, "web-1", "--", "/usr/bin/python3", "-c", RCODE_PROBE, "kubernetes.io."
    )
    if probe.returncode != 0 and "executable file not found" in probe.stderr + probe.stdout:
        pytest.skip("the host root has no /usr/bin/python3 to send a raw query from the pod")
    assert probe.returncode == 0, probe.stderr
    assert int(probe.stdout) == RCODE_REFUSED


@requires_root
@requires_runc
@pytest.mark.e2e
def test_pod_dns_an_fqdn_hostname_too_long_for_the_kernel_fails_the_sandbox(
    cluster: tuple[Kubeling, BridgeNetwork],
) -> None:
    k, _ = cluster
    hostname = "h" * 40
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "long-fqdn", "namespace": NS},
        "spec": {
            "hostname": hostname,
            "subdomain": "web",
            "setHostnameAsFQDN": True,
            "terminationGracePeriodSeconds": 1,
            "containers": [{"name": "c", "image": "busybox:1.36", "command": ["true"]}],
        },
    }
    k.ok("apply", "-f", "-", input=json.dumps(pod))
    fqdn = f"{hostname}.web.{NS}.svc.{ZONE}"
    message = (
        "Failed to create pod sandbox: failed to construct FQDN from pod hostname and cluster "
        f"domain, FQDN {fqdn} is too long (64 characters is the max, {len(fqdn)} characters "
        "requested)"
    )

    def events() -> list[str]:
        out = k.ok(
            "get",
            "events",
            "-n",
            NS,
            "--field-selector=involvedObject.name=long-fqdn,reason=FailedCreatePodSandBox",
            "-o",
            "jsonpath={.items[*].message}",
        )
        return [out] if out else []

    assert poll(events, what="the FailedCreatePodSandBox event") == [message]
    status = json.loads(k.ok("get", "pod", "-n", NS, "long-fqdn", "-o", "json"))["status"]
    assert status["phase"] == "Pending"
    k.ok("delete", "pod", "-n", NS, "long-fqdn", "--wait=true", "--timeout=60s")


# -- without root: what the agent writes -----------------------------------------------------


def sandbox(tmp_path: pathlib.Path, **spec: Any) -> PodSandbox:
    pod = {"metadata": {"name": "web-0", "namespace": "shop", "uid": "u1"}, "spec": spec}
    node = Node(data_dir=tmp_path, runtime=SimulatedRuntime())
    return PodSandbox(pod=pod, node=node, volumes={})


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        pytest.param({}, "web-0", id="short-by-default"),
        pytest.param({"subdomain": "web"}, "web-0", id="subdomain-alone"),
        pytest.param({"setHostnameAsFQDN": True}, "web-0", id="no-subdomain-no-fqdn"),
        pytest.param(
            {"setHostnameAsFQDN": True, "subdomain": "web"},
            "web-0.web.shop.svc.cluster.local",
            id="fqdn",
        ),
        pytest.param(
            {"setHostnameAsFQDN": True, "subdomain": "web", "hostname": "db"},
            "db.web.shop.svc.cluster.local",
            id="fqdn-of-spec-hostname",
        ),
    ],
)
def test_pod_dns_kernel_hostname_follows_set_hostname_as_fqdn(
    tmp_path: pathlib.Path, spec: dict[str, Any], expected: str
) -> None:
    assert sandbox(tmp_path, **spec).kernel_hostname == expected


def test_pod_dns_kernel_hostname_over_64_characters_is_an_error(tmp_path: pathlib.Path) -> None:
    box = sandbox(tmp_path, setHostnameAsFQDN=True, subdomain="s" * 40)
    with pytest.raises(AgentError, match=r"too long \(64 characters is the max, 69 characters"):
        box.kernel_hostname  # noqa: B018
    exactly = sandbox(tmp_path, setHostnameAsFQDN=True, subdomain="s" * 35)
    assert len(exactly.kernel_hostname) == 64


@pytest.mark.parametrize(
    ("policy", "expected"),
    [
        pytest.param(
            "ClusterFirst",
            "nameserver 10.9.0.1\nsearch shop.svc.cluster.local svc.cluster.local cluster.local\n"
            "options ndots:5\n",
            id="ClusterFirst",
        ),
        pytest.param(
            "ClusterFirstWithHostNet",
            "nameserver 10.9.0.1\nsearch shop.svc.cluster.local svc.cluster.local cluster.local\n"
            "options ndots:5\n",
            id="ClusterFirstWithHostNet",
        ),
        pytest.param("Default", "nameserver 10.9.0.1\n", id="Default-bridge-only"),
        pytest.param("None", "nameserver 10.9.0.7\n", id="None-dnsConfig-only"),
    ],
)
def test_pod_dns_resolv_conf_follows_the_dns_policy(policy: str, expected: str) -> None:
    config = {"nameservers": ["10.9.0.7"]} if policy == "None" else None
    text = render_resolv_conf(
        nameserver="10.9.0.1", namespace="shop", dns_policy=policy, dns_config=config
    )
    assert text == expected
