"""Cluster DNS end to end: ``kubeling up --dns-listen 127.0.0.1:<port>``, a headless Service
and StatefulSet-style pods applied with kubectl, and ``web-0.web.<ns>.svc.cluster.local``
resolved over UDP and TCP from the host.

The pods name a node no agent runs (``spec.nodeName: dns-e2e-ghost``), so the test itself
plays the node agent: it gives them an IP and the Ready condition through the status
subresource with ``kubectl patch --subresource=status``.
"""

from __future__ import annotations

import json
import pathlib
from collections.abc import Iterator

import pytest
from dnslib import RCODE

from tests.e2e.conftest import Kubeling, start_kubeling, stop_kubeling
from tests.helpers.dns import free_port, query_tcp, query_udp, record_values
from tests.helpers.waiting import poll

pytestmark = pytest.mark.e2e

NS = "dns-e2e"
WAIT = 30.0

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
apiVersion: v1
kind: Service
metadata: {{name: front, namespace: {NS}}}
spec:
  selector: {{app: web}}
  ports: [{{name: http, port: 80}}]
""" + "".join(
    f"""---
apiVersion: v1
kind: Pod
metadata: {{name: web-{i}, namespace: {NS}, labels: {{app: web}}}}
spec:
  hostname: web-{i}
  subdomain: web
  nodeName: dns-e2e-ghost
  containers: [{{name: c, image: busybox:1.36, command: [sleep, "3600"]}}]
"""
    for i in range(2)
)


@pytest.fixture
def dns_kubeling(
    kubeling_dirs: tuple[pathlib.Path, pathlib.Path],
) -> Iterator[tuple[Kubeling, int]]:
    data, cache = kubeling_dirs
    port = free_port()
    k = start_kubeling(data, cache, f"--dns-listen=127.0.0.1:{port}")
    try:
        yield k, port
    finally:
        code = stop_kubeling(k)
        assert code == 0, f"kubeling up exited {code}:\n" + "\n".join(k.output)


def _ready(k: Kubeling, name: str, ip: str) -> None:
    status = {
        "status": {
            "phase": "Running",
            "podIP": ip,
            "podIPs": [{"ip": ip}],
            "conditions": [{"type": "Ready", "status": "True"}],
        }
    }
    k.ok(
        "patch",
        "pod",
        name,
        "-n",
        NS,
        "--subresource=status",
        "--type=merge",
        "-p",
        json.dumps(status),
    )


def test_dns_e2e_headless_pod_names_resolve(dns_kubeling: tuple[Kubeling, int]) -> None:
    k, port = dns_kubeling
    k.ok("apply", "-f", "-", input=MANIFEST)
    zone = "svc.cluster.local"
    # nothing is Ready yet: no per-pod record
    assert query_udp(port, f"web-0.web.{NS}.{zone}").header.rcode == RCODE.NXDOMAIN
    _ready(k, "web-0", "10.244.50.2")
    _ready(k, "web-1", "10.244.50.3")

    poll(
        lambda: (
            record_values(query_udp(port, f"web.{NS}.{zone}")) == ["10.244.50.2", "10.244.50.3"]
        ),
        WAIT,
        what="both pods in the headless Service's A records",
        interval=0.05,
    )
    assert record_values(query_udp(port, f"web-0.web.{NS}.{zone}")) == ["10.244.50.2"]
    assert record_values(query_tcp(port, f"web-1.web.{NS}.{zone}")) == ["10.244.50.3"]
    srv = query_udp(port, f"_http._tcp.web.{NS}.{zone}", "SRV")
    assert sorted(str(rr.rdata.target) for rr in srv.rr) == [
        f"web-0.web.{NS}.{zone}.",
        f"web-1.web.{NS}.{zone}.",
    ]
    # the ClusterIP Service resolves to the address kubectl shows
    cluster_ip = k.ok("get", "svc", "front", "-n", NS, "-o", "jsonpath={.spec.clusterIP}").strip()
    assert cluster_ip.startswith("10.96.")
    poll(
        lambda: record_values(query_udp(port, f"front.{NS}.{zone}")) == [cluster_ip],
        WAIT,
        what="front's cluster IP",
        interval=0.05,
    )
    reverse = ".".join(reversed(cluster_ip.split("."))) + ".in-addr.arpa"
    assert record_values(query_udp(port, reverse, "PTR"), "PTR") == [f"front.{NS}.{zone}."]
    # kubectl shows the endpoints and slices the controllers wrote
    endpoints = json.loads(k.ok("get", "endpoints", "web", "-n", NS, "-o", "json"))
    hostnames = sorted(a.get("hostname") for a in endpoints["subsets"][0]["addresses"])
    assert hostnames == ["web-0", "web-1"]
    # outside the zone: refused, never forwarded
    assert query_udp(port, "example.com").header.rcode == RCODE.REFUSED
    # a deleted pod disappears from DNS
    k.ok("delete", "pod", "web-1", "-n", NS, "--grace-period=0", "--force", "--wait=false")
    poll(
        lambda: query_udp(port, f"web-1.web.{NS}.{zone}").header.rcode == RCODE.NXDOMAIN,
        WAIT,
        what="web-1 gone from DNS",
        interval=0.05,
    )
