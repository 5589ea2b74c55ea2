"""Service cluster IP allocation (``registry.plugins.services``) through the API: families,
headless, duplicates refused with upstream's message, release on delete, no leak on a
failed create, and no double allocation after a restart (a new registry on the same store)."""

from __future__ import annotations

import asyncio
import ipaddress

import pytest

from kubeling.client.local import LocalClient
from kubeling.machinery.errors import Invalid
from kubeling.machinery.resources import SERVICES
from kubeling.machinery.types import Obj
from kubeling.registry.registry import Registry
from tests.controllers.conftest import Api
from tests.dns.support import service

RANGE = ipaddress.ip_network("10.96.0.0/16")


async def _create(api: Api, obj: Obj, *, dry_run: bool = False) -> Obj:
    return await api.client.create(SERVICES, obj, dry_run=dry_run)


async def test_clusterip_allocated_from_range_with_families(api: Api) -> None:
    svc = await _create(api, service("a", selector={"app": "a"}))
    spec = svc["spec"]
    assert ipaddress.ip_address(spec["clusterIP"]) in RANGE
    assert spec["clusterIPs"] == [spec["clusterIP"]]
    assert spec["ipFamilies"] == ["IPv4"]
    assert spec["ipFamilyPolicy"] == "SingleStack"
    # dynamic picks stay out of the low band kept for hand-picked addresses
    assert int(ipaddress.ip_address(spec["clusterIP"])) - int(RANGE.network_address) > 256


async def test_clusterip_headless_gets_none(api: Api) -> None:
    svc = await _create(api, service("h", selector={"app": "h"}, headless=True))
    assert svc["spec"]["clusterIP"] == "None"
    assert svc["spec"]["clusterIPs"] == ["None"]
    assert svc["spec"]["ipFamilyPolicy"] == "SingleStack"
    # headless without selector: RequireDualStack and both families, as upstream
    bare = await _create(api, service("bare", headless=True))
    assert bare["spec"]["ipFamilyPolicy"] == "RequireDualStack"
    assert bare["spec"]["ipFamilies"] == ["IPv4", "IPv6"]


async def test_clusterip_duplicate_refused_with_upstream_message(api: Api) -> None:
    await _create(api, service("dns", cluster_ip="10.96.0.10"))
    with pytest.raises(Invalid) as info:
        await _create(api, service("other", cluster_ip="10.96.0.10"))
    assert str(info.value) == (
        'Service "other" is invalid: spec.clusterIPs: Invalid value: ["10.96.0.10"]: '
        "failed to allocate IP 10.96.0.10: provided IP is already allocated"
    )


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        pytest.param(
            {"clusterIP": "192.168.1.1"},
            'spec.clusterIPs: Invalid value: ["192.168.1.1"]: failed to allocate IP '
            "192.168.1.1: the provided IP (192.168.1.1) is not in the valid range. The range "
            "of valid IPs is 10.96.0.0/16",
            id="out-of-range",
        ),
        pytest.param(
            {"ipFamilyPolicy": "RequireDualStack"},
            'spec.ipFamilyPolicy: Invalid value: "RequireDualStack": this cluster is not '
            "configured for dual-stack services",
            id="require-dual-stack",
        ),
        pytest.param(
            {"ipFamilies": ["IPv6"]},
            'spec.ipFamilies[0]: Invalid value: "IPv6": not configured on this cluster',
            id="ipv6-family",
        ),
        pytest.param(
            {"clusterIP": "fd00::10"},
            'spec.clusterIPs[0]: Invalid value: ["fd00::10"]: IPv6 is not configured on '
            "this cluster",
            id="ipv6-address",
        ),
    ],
)
async def test_clusterip_refusals(api: Api, spec: dict[str, object], message: str) -> None:
    obj = service("bad", selector={"app": "x"})
    obj["spec"].update(spec)
    with pytest.raises(Invalid) as info:
        await _create(api, obj)
    assert str(info.value) == f'Service "bad" is invalid: {message}'


async def test_clusterip_prefer_dual_stack_on_single_stack_cluster(api: Api) -> None:
    obj = service("p", selector={"app": "p"})
    obj["spec"]["ipFamilyPolicy"] = "PreferDualStack"
    svc = await _create(api, obj)
    assert svc["spec"]["ipFamilies"] == ["IPv4"]
    assert len(svc["spec"]["clusterIPs"]) == 1


async def test_clusterip_released_on_delete(api: Api) -> None:
    await _create(api, service("first", cluster_ip="10.96.0.20"))
    await api.client.delete(SERVICES, name="first", namespace="default")
    again = await _create(api, service("second", cluster_ip="10.96.0.20"))
    assert again["spec"]["clusterIP"] == "10.96.0.20"


async def test_clusterip_failed_create_does_not_keep_the_address(api: Api) -> None:
    bad = service("x", cluster_ip="10.96.0.30")
    bad["spec"]["ports"] = [{"name": "http", "port": 0}]  # invalid: refused after allocation
    with pytest.raises(Invalid):
        await _create(api, bad)
    # the same name retries at once, another name after the in-flight grace is checked
    ok = await _create(api, service("x", cluster_ip="10.96.0.30"))
    assert ok["spec"]["clusterIP"] == "10.96.0.30"


async def test_clusterip_failed_create_frees_address_for_another_service(api: Api) -> None:
    bad = service("x", cluster_ip="10.96.0.31")
    bad["spec"]["ports"] = [{"name": "http", "port": 0}]
    with pytest.raises(Invalid):
        await _create(api, bad)
    plugin = next(
        p
        for p in api.registry.admission.plugins
        if type(p).__name__ == "ServiceClusterIPAllocation"
    )
    allocator = plugin.allocator  # type: ignore[attr-defined]
    # past the in-flight grace a reservation with no stored Service is a failed create
    allocator._clock = lambda: 1e12
    other = await _create(api, service("y", cluster_ip="10.96.0.31"))
    assert other["spec"]["clusterIP"] == "10.96.0.31"


async def test_clusterip_dry_run_reserves_nothing(api: Api) -> None:
    dry = await _create(api, service("d", cluster_ip="10.96.0.40"), dry_run=True)
    assert dry["spec"]["clusterIP"] == "10.96.0.40"
    real = await _create(api, service("e", cluster_ip="10.96.0.40"))
    assert real["spec"]["clusterIP"] == "10.96.0.40"


async def test_clusterip_concurrent_creates_get_distinct_addresses(api: Api) -> None:
    created = await asyncio.gather(
        *(_create(api, service(f"s{i}", selector={"app": "x"})) for i in range(30))
    )
    ips = [s["spec"]["clusterIP"] for s in created]
    assert len(set(ips)) == 30


async def test_clusterip_restart_derives_allocations_from_the_store(api: Api) -> None:
    taken = await _create(api, service("kept", cluster_ip="10.96.0.50"))
    dynamic = await _create(api, service("dyn", selector={"app": "x"}))
    # a second registry on the same backend: what a restarted kubeling sees
    fresh = await Registry.open(backend=api.registry.backend)
    client = LocalClient(fresh)
    try:
        for ip in (taken["spec"]["clusterIP"], dynamic["spec"]["clusterIP"]):
            with pytest.raises(Invalid, match="provided IP is already allocated"):
                await client.create(SERVICES, service("dup", cluster_ip=ip))
    finally:
        await fresh.close()


async def test_clusterip_external_name_gets_none_and_keeps_ip_on_update(api: Api) -> None:
    ext = await _create(api, service("ext", type_="ExternalName", external_name="a.example"))
    assert "clusterIP" not in ext["spec"]
    svc = await _create(api, service("web", selector={"app": "web"}))
    ip = svc["spec"]["clusterIP"]
    svc["spec"].pop("clusterIP")
    svc["spec"].pop("clusterIPs")
    svc["spec"]["selector"] = {"app": "other"}
    updated = await api.client.update(SERVICES, svc)
    assert updated["spec"]["clusterIP"] == ip


def _node_port_service(name: str, *ports: dict[str, object]) -> Obj:
    obj = service(name, selector={"app": name}, type_="NodePort")
    obj["spec"]["ports"] = list(ports) or [{"name": "http", "port": 80}]
    return obj


async def test_nodeport_allocated_in_range_and_kept_on_update(api: Api) -> None:
    svc = await _create(
        api, _node_port_service("np", {"name": "a", "port": 80}, {"name": "b", "port": 81})
    )
    ports = [p["nodePort"] for p in svc["spec"]["ports"]]
    assert all(30000 <= p <= 32767 for p in ports) and len(set(ports)) == 2
    # an apply that omits the node ports keeps them; a new port gets a fresh one
    svc["spec"]["ports"] = [
        {"name": "a", "port": 80, "protocol": "TCP", "targetPort": 80},
        {"name": "b", "port": 81, "protocol": "TCP", "targetPort": 81},
        {"name": "c", "port": 82, "protocol": "TCP", "targetPort": 82},
    ]
    updated = await api.client.update(SERVICES, svc)
    after = [p["nodePort"] for p in updated["spec"]["ports"]]
    assert after[:2] == ports
    assert 30000 <= after[2] <= 32767 and after[2] not in ports


async def test_nodeport_duplicate_and_out_of_range_refused(api: Api) -> None:
    await _create(api, _node_port_service("first", {"name": "http", "port": 80, "nodePort": 30080}))
    with pytest.raises(Invalid) as info:
        await _create(
            api, _node_port_service("second", {"name": "http", "port": 80, "nodePort": 30080})
        )
    assert str(info.value) == (
        'Service "second" is invalid: spec.ports[0].nodePort: Invalid value: 30080: '
        "provided port is already allocated"
    )
    with pytest.raises(Invalid) as info:
        await _create(
            api, _node_port_service("third", {"name": "http", "port": 80, "nodePort": 80})
        )
    assert str(info.value) == (
        'Service "third" is invalid: spec.ports[0].nodePort: Invalid value: 80: provided port '
        "is not in the valid range. The range of valid ports is 30000-32767"
    )
    # the refused create took no cluster IP with it: a hand-picked address is still free
    fourth = await _create(api, service("fourth", cluster_ip="10.96.0.60"))
    assert fourth["spec"]["clusterIP"] == "10.96.0.60"


async def test_nodeport_released_on_delete(api: Api) -> None:
    await _create(api, _node_port_service("a", {"name": "http", "port": 80, "nodePort": 30090}))
    await api.client.delete(SERVICES, name="a", namespace="default")
    again = await _create(
        api, _node_port_service("b", {"name": "http", "port": 80, "nodePort": 30090})
    )
    assert again["spec"]["ports"][0]["nodePort"] == 30090


async def test_nodeport_not_allocated_for_clusterip_or_lb_without_node_ports(api: Api) -> None:
    plain = await _create(api, service("plain", selector={"app": "x"}))
    assert "nodePort" not in plain["spec"]["ports"][0]
    lb = service("lb", selector={"app": "x"}, type_="LoadBalancer")
    lb["spec"]["allocateLoadBalancerNodePorts"] = False
    created = await _create(api, lb)
    assert "nodePort" not in created["spec"]["ports"][0]
