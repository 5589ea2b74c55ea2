"""Field reports B29, B30 and B31 (theme G): per-pod DNS names of headless Services.

The workload controllers create the pods (StatefulSet, Deployment/ReplicaSet); the tests
play the node agent, giving each pod an IP and its Ready condition through the status
subresource. DNS is queried over UDP on 127.0.0.1.
"""

from __future__ import annotations

from typing import Any

import pytest

from kubeling.controllers import deployment, replicaset, statefulset
from kubeling.machinery.resources import (
    DEPLOYMENTS,
    ENDPOINTSLICES,
    PODS,
    SERVICES,
    STATEFULSETS,
)
from kubeling.machinery.types import Obj
from tests.dns.conftest import Dns, wait_until
from tests.dns.support import create_pod, pod, service, set_pod_status

ZONE = "cluster.local"
NS = "default"


def _sts(name: str, *, service_name: str, replicas: int, parallel: bool = False) -> Obj:
    spec: dict[str, Any] = {
        "serviceName": service_name,
        "replicas": replicas,
        "selector": {"matchLabels": {"app": name}},
        "template": {
            "metadata": {"labels": {"app": name}},
            "spec": {"containers": [{"name": "c", "image": "busybox:1.36"}]},
        },
    }
    if parallel:
        spec["podManagementPolicy"] = "Parallel"
    return {
        "apiVersion": "apps/v1",
        "kind": "StatefulSet",
        "metadata": {"name": name, "namespace": NS},
        "spec": spec,
    }


async def _pod(dns: Dns, name: str) -> Obj | None:
    items = (await dns.api.client.list(PODS, namespace=NS)).get("items") or []
    return next((p for p in items if p["metadata"]["name"] == name), None)


async def _run_pod(dns: Dns, name: str, ip: str, *, ready: bool) -> Obj:
    """Wait for the controller's pod, then give it an IP (and Ready) as the agent would."""

    async def exists() -> bool:
        return await _pod(dns, name) is not None

    await wait_until(exists, what=f"pod {name} created")
    current = await _pod(dns, name)
    assert current is not None
    return await set_pod_status(dns.api.client, current, ip=ip, ready=ready)


@pytest.fixture
async def sts_dns(dns: Dns) -> Dns:
    await dns.api.start(statefulset.build(dns.api.ctx))
    return dns


@pytest.mark.parametrize("variant", ["A", "B", "C"])
async def test_b29_per_pod_names_need_headless_service_named_service_name(
    sts_dns: Dns, variant: str
) -> None:
    dns = sts_dns
    client = dns.api.client
    if variant == "A":
        svc = await client.create(SERVICES, service("web", selector={"app": "web"}))
    elif variant == "B":
        svc = await client.create(
            SERVICES, service("web-hs", selector={"app": "web"}, headless=True)
        )
    else:
        svc = await client.create(SERVICES, service("web", selector={"app": "web"}, headless=True))
    await client.create(STATEFULSETS, _sts("web", service_name="web", replicas=2))
    p0 = await _run_pod(dns, "web-0", "10.244.0.10", ready=True)
    assert p0["spec"]["hostname"] == "web-0" and p0["spec"]["subdomain"] == "web"
    await _run_pod(dns, "web-1", "10.244.0.11", ready=True)
    both = ["10.244.0.10", "10.244.0.11"]
    if variant == "A":
        await dns.until_values(f"web.{NS}.svc.{ZONE}", [svc["spec"]["clusterIP"]])
        assert await dns.rcode(f"web-0.web.{NS}.svc.{ZONE}") == "NXDOMAIN"
    elif variant == "B":
        await dns.until_values(f"web-hs.{NS}.svc.{ZONE}", both)
        assert await dns.rcode(f"web-0.web-hs.{NS}.svc.{ZONE}") == "NXDOMAIN"
        assert await dns.rcode(f"web-0.web.{NS}.svc.{ZONE}") == "NXDOMAIN"
        assert await dns.rcode(f"web.{NS}.svc.{ZONE}") == "NXDOMAIN"
    else:
        await dns.until_values(f"web.{NS}.svc.{ZONE}", both)
        await dns.until_values(f"web-0.web.{NS}.svc.{ZONE}", ["10.244.0.10"])
        await dns.until_values(f"web-1.web.{NS}.svc.{ZONE}", ["10.244.0.11"])


async def test_b30_not_ready_pods_have_no_dns_until_published(sts_dns: Dns) -> None:
    dns = sts_dns
    client = dns.api.client
    await client.create(
        SERVICES,
        service(
            "peers",
            selector={"app": "peer"},
            headless=True,
            ports=[{"name": "client", "port": 4222}],
        ),
    )
    await client.create(STATEFULSETS, _sts("peer", service_name="peers", replicas=3, parallel=True))
    pods = [await _run_pod(dns, f"peer-{i}", f"10.244.1.{i + 1}", ready=False) for i in range(3)]

    async def slices_list_three() -> bool:
        items = (await client.list(ENDPOINTSLICES, namespace=NS)).get("items") or []
        eps = [ep for es in items for ep in es.get("endpoints") or []]
        return len(eps) == 3 and all(ep["conditions"]["ready"] is False for ep in eps)

    await wait_until(slices_list_three, what="three not-ready endpoints in the slices")
    assert await dns.rcode(f"peer-0.peers.{NS}.svc.{ZONE}") == "NXDOMAIN"
    assert await dns.rcode(f"peers.{NS}.svc.{ZONE}") == "NXDOMAIN"
    assert await dns.rcode(f"_client._tcp.peers.{NS}.svc.{ZONE}", "SRV") == "NXDOMAIN"

    # flag false, peer-0 becomes Ready: only peer-0 is published
    await set_pod_status(client, pods[0], ip="10.244.1.1", ready=True)
    await dns.until_values(f"peers.{NS}.svc.{ZONE}", ["10.244.1.1"])
    await dns.until_values(f"peer-0.peers.{NS}.svc.{ZONE}", ["10.244.1.1"])
    assert await dns.rcode(f"peer-1.peers.{NS}.svc.{ZONE}") == "NXDOMAIN"

    # publishNotReadyAddresses: every pod with an IP is published, regardless of readiness
    await client.patch(
        SERVICES,
        name="peers",
        namespace=NS,
        patch={"spec": {"publishNotReadyAddresses": True}},
        patch_type="merge",
    )
    everyone = ["10.244.1.1", "10.244.1.2", "10.244.1.3"]
    await dns.until_values(f"peers.{NS}.svc.{ZONE}", everyone)
    for i in range(3):
        await dns.until_values(f"peer-{i}.peers.{NS}.svc.{ZONE}", [f"10.244.1.{i + 1}"])
    srv = await dns.query(f"_client._tcp.peers.{NS}.svc.{ZONE}", "SRV")
    assert sorted(str(rr.rdata.target) for rr in srv.rr) == [
        f"peer-{i}.peers.{NS}.svc.{ZONE}." for i in range(3)
    ]
    negative = await dns.query(f"peer-9.peers.{NS}.svc.{ZONE}")
    assert negative.auth[0].rdata.times[-1] <= 5  # negative TTL kept short


async def test_b31_subdomain_without_hostname_gives_no_per_pod_record(dns: Dns) -> None:
    api = dns.api
    await api.start(deployment.build(api.ctx), replicaset.build(api.ctx))
    client = api.client
    await client.create(
        SERVICES,
        service(
            "dep", selector={"app": "dep"}, headless=True, ports=[{"name": "http", "port": 80}]
        ),
    )
    await client.create(
        DEPLOYMENTS,
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": "dep", "namespace": NS},
            "spec": {
                "replicas": 2,
                "selector": {"matchLabels": {"app": "dep"}},
                "template": {
                    "metadata": {"labels": {"app": "dep"}},
                    "spec": {
                        "subdomain": "dep",
                        "setHostnameAsFQDN": True,
                        "containers": [{"name": "c", "image": "busybox:1.36"}],
                    },
                },
            },
        },
    )
    await create_pod(
        client,
        pod("solo", labels={"app": "dep"}, hostname="solo", subdomain="dep"),
        ip="10.244.3.9",
        ready=True,
    )

    async def two_deployment_pods() -> bool:
        items = (await client.list(PODS, namespace=NS)).get("items") or []
        return len([p for p in items if p["metadata"]["name"].startswith("dep-")]) == 2

    await wait_until(two_deployment_pods, what="the Deployment's two pods")
    items = (await client.list(PODS, namespace=NS)).get("items") or []
    dep_pods = sorted(
        (p for p in items if p["metadata"]["name"].startswith("dep-")),
        key=lambda p: p["metadata"]["name"],
    )
    for i, p in enumerate(dep_pods):
        assert not p["spec"].get("hostname")
        await set_pod_status(client, p, ip=f"10.244.3.{i + 1}", ready=True)
    await dns.until_values(f"dep.{NS}.svc.{ZONE}", ["10.244.3.1", "10.244.3.2", "10.244.3.9"])
    await dns.until_values(f"solo.dep.{NS}.svc.{ZONE}", ["10.244.3.9"])
    # the FQDN a Deployment pod reports for itself (<pod-name>.dep.<ns>.svc...) has no record
    for p in dep_pods:
        assert await dns.rcode(f"{p['metadata']['name']}.dep.{NS}.svc.{ZONE}") == "NXDOMAIN"
