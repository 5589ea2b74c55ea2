"""The Endpoints controller on a real registry (LocalClient over MemoryBackend)."""

from __future__ import annotations

from typing import Any

import pytest

from kubeling.controllers.endpoints import (
    HEADLESS_LABEL,
    TRIGGER_TIME_ANNOTATION,
    EndpointsController,
    build,
)
from kubeling.machinery.errors import NotFound
from kubeling.machinery.resources import ENDPOINTS, PODS, SERVICES
from kubeling.machinery.types import Obj
from tests.controllers.conftest import Api, wait_until
from tests.dns.support import create_pod, create_service, pod, service, set_pod_status


async def _endpoints(api: Api, name: str, namespace: str = "default") -> Obj | None:
    try:
        return await api.client.get(ENDPOINTS, name=name, namespace=namespace)
    except NotFound:
        return None


def _ips(ep: Obj | None, field: str = "addresses") -> list[str]:
    if ep is None:
        return []
    return sorted(a["ip"] for s in ep.get("subsets") or [] for a in s.get(field) or [])


@pytest.fixture
async def controller(api: Api) -> EndpointsController:
    ctl = build(api.ctx)
    await api.start(ctl)
    return ctl


async def _until_ips(api: Api, name: str, ready: list[str], not_ready: list[str]) -> Obj:
    found: dict[str, Any] = {}

    async def check() -> bool:
        ep = await _endpoints(api, name)
        found["ep"] = ep
        return _ips(ep) == sorted(ready) and _ips(ep, "notReadyAddresses") == sorted(not_ready)

    await wait_until(check, what=f"endpoints {name} ready={ready} notReady={not_ready}")
    return found["ep"]


async def test_endpoints_ready_and_not_ready_addresses(
    api: Api, controller: EndpointsController
) -> None:
    await create_service(api.client, service("web", selector={"app": "web"}))
    await create_pod(api.client, pod("a", labels={"app": "web"}), ip="10.244.0.2", ready=True)
    await create_pod(api.client, pod("b", labels={"app": "web"}), ip="10.244.0.3", ready=False)
    await create_pod(api.client, pod("other", labels={"app": "x"}), ip="10.244.0.4", ready=True)
    await create_pod(api.client, pod("noip", labels={"app": "web"}))
    ep = await _until_ips(api, "web", ["10.244.0.2"], ["10.244.0.3"])
    subset = ep["subsets"][0]
    assert subset["ports"] == [{"name": "http", "port": 80, "protocol": "TCP"}]
    addr = subset["addresses"][0]
    assert addr["nodeName"] == "node-1"
    assert addr["targetRef"]["kind"] == "Pod" and addr["targetRef"]["name"] == "a"
    assert addr["targetRef"]["uid"]
    assert "hostname" not in addr
    assert ep["metadata"]["annotations"][TRIGGER_TIME_ANNOTATION] == "2026-01-01T00:00:00Z"
    assert HEADLESS_LABEL not in (ep["metadata"].get("labels") or {})


async def test_endpoints_follow_readiness_and_deletion(
    api: Api, controller: EndpointsController
) -> None:
    await create_service(api.client, service("web", selector={"app": "web"}))
    p = await create_pod(api.client, pod("a", labels={"app": "web"}), ip="10.244.0.2")
    await _until_ips(api, "web", [], ["10.244.0.2"])
    await set_pod_status(api.client, p, ip="10.244.0.2", ready=True)
    await _until_ips(api, "web", ["10.244.0.2"], [])
    await api.client.delete(PODS, name="a", namespace="default", grace_period_seconds=0)
    await _until_ips(api, "web", [], [])


async def test_endpoints_terminal_pods_are_left_out(
    api: Api, controller: EndpointsController
) -> None:
    await create_service(api.client, service("web", selector={"app": "web"}))
    p = await create_pod(api.client, pod("a", labels={"app": "web"}), ip="10.244.0.2", ready=True)
    await _until_ips(api, "web", ["10.244.0.2"], [])
    await set_pod_status(api.client, p, ip="10.244.0.2", ready=False, phase="Succeeded")
    await _until_ips(api, "web", [], [])


async def test_endpoints_publish_not_ready_addresses_lists_all_as_ready(
    api: Api, controller: EndpointsController
) -> None:
    await create_service(
        api.client,
        service("peers", selector={"app": "peer"}, headless=True, publish_not_ready=True),
    )
    await create_pod(api.client, pod("p0", labels={"app": "peer"}), ip="10.244.0.2")
    await create_pod(api.client, pod("p1", labels={"app": "peer"}), ip="10.244.0.3", ready=True)
    ep = await _until_ips(api, "peers", ["10.244.0.2", "10.244.0.3"], [])
    assert ep["metadata"]["labels"][HEADLESS_LABEL] == ""
    # headless without ports: addresses and no ports
    assert "ports" not in ep["subsets"][0]


async def test_endpoints_hostname_only_when_subdomain_names_the_service(
    api: Api, controller: EndpointsController
) -> None:
    await create_service(api.client, service("web", selector={"app": "web"}, headless=True))
    await create_pod(
        api.client,
        pod("web-0", labels={"app": "web"}, hostname="web-0", subdomain="web"),
        ip="10.244.0.2",
        ready=True,
    )
    # subdomain without hostname (B31) and hostname with another subdomain (B29 B)
    await create_pod(
        api.client,
        pod("dep-x", labels={"app": "web"}, subdomain="web"),
        ip="10.244.0.3",
        ready=True,
    )
    await create_pod(
        api.client,
        pod("web-1", labels={"app": "web"}, hostname="web-1", subdomain="other"),
        ip="10.244.0.4",
        ready=True,
    )
    ep = await _until_ips(api, "web", ["10.244.0.2", "10.244.0.3", "10.244.0.4"], [])
    hostnames = {a["ip"]: a.get("hostname") for a in ep["subsets"][0]["addresses"]}
    assert hostnames == {"10.244.0.2": "web-0", "10.244.0.3": None, "10.244.0.4": None}


async def test_endpoints_named_target_port_resolves_per_pod(
    api: Api, controller: EndpointsController
) -> None:
    ports = [{"name": "http", "port": 80, "targetPort": "web"}]
    await create_service(api.client, service("web", selector={"app": "web"}, ports=ports))
    await create_pod(
        api.client,
        pod("a", labels={"app": "web"}, container_ports=[{"name": "web", "containerPort": 8080}]),
        ip="10.244.0.2",
        ready=True,
    )
    await create_pod(
        api.client,
        pod("b", labels={"app": "web"}, container_ports=[{"name": "web", "containerPort": 9090}]),
        ip="10.244.0.3",
        ready=True,
    )
    # no such port: left out
    await create_pod(api.client, pod("c", labels={"app": "web"}), ip="10.244.0.4", ready=True)
    ep = await _until_ips(api, "web", ["10.244.0.2", "10.244.0.3"], [])
    by_port = {s["ports"][0]["port"]: [a["ip"] for a in s["addresses"]] for s in ep["subsets"]}
    assert by_port == {8080: ["10.244.0.2"], 9090: ["10.244.0.3"]}


async def test_endpoints_labels_copied_and_removed_with_service(
    api: Api, controller: EndpointsController
) -> None:
    await create_service(api.client, service("web", selector={"app": "web"}, labels={"team": "a"}))
    await create_pod(api.client, pod("a", labels={"app": "web"}), ip="10.244.0.2", ready=True)
    ep = await _until_ips(api, "web", ["10.244.0.2"], [])
    assert ep["metadata"]["labels"] == {"team": "a"}
    await api.client.delete(SERVICES, name="web", namespace="default")

    async def gone() -> bool:
        return await _endpoints(api, "web") is None

    await wait_until(gone, what="endpoints deleted with their service")


async def test_endpoints_not_written_for_selectorless_or_external_name(
    api: Api, controller: EndpointsController
) -> None:
    await create_service(api.client, service("manual"))
    await create_service(
        api.client, service("ext", type_="ExternalName", external_name="example.invalid")
    )
    # a third, ordinary service proves the controller had its chance to act
    await create_service(api.client, service("web", selector={"app": "web"}))
    await create_pod(api.client, pod("a", labels={"app": "web"}), ip="10.244.0.2", ready=True)
    await _until_ips(api, "web", ["10.244.0.2"], [])
    await controller.process("default/manual")
    await controller.process("default/ext")
    assert await _endpoints(api, "manual") is None
    assert await _endpoints(api, "ext") is None


async def test_endpoints_recreated_after_deletion(
    api: Api, controller: EndpointsController
) -> None:
    await create_service(api.client, service("web", selector={"app": "web"}))
    await create_pod(api.client, pod("a", labels={"app": "web"}), ip="10.244.0.2", ready=True)
    await _until_ips(api, "web", ["10.244.0.2"], [])
    await api.client.delete(ENDPOINTS, name="web", namespace="default")
    await _until_ips(api, "web", ["10.244.0.2"], [])


async def test_endpoints_relabelled_pod_leaves(api: Api, controller: EndpointsController) -> None:
    await create_service(api.client, service("web", selector={"app": "web"}))
    await create_pod(api.client, pod("a", labels={"app": "web"}), ip="10.244.0.2", ready=True)
    await _until_ips(api, "web", ["10.244.0.2"], [])
    await api.client.patch(
        PODS,
        name="a",
        namespace="default",
        patch={"metadata": {"labels": {"app": "other"}}},
        patch_type="merge",
    )
    await _until_ips(api, "web", [], [])


async def test_endpoints_leftover_without_service_deleted_at_start(api: Api) -> None:
    # Endpoints whose Service vanished while no controller ran (and one holding a leader
    # lock, which upstream never touches)
    await api.client.create(
        ENDPOINTS,
        {"apiVersion": "v1", "kind": "Endpoints", "metadata": {"name": "orphan"}},
        namespace="default",
    )
    await api.client.create(
        ENDPOINTS,
        {
            "apiVersion": "v1",
            "kind": "Endpoints",
            "metadata": {
                "name": "lock",
                "annotations": {"control-plane.alpha.kubernetes.io/leader": "{}"},
            },
        },
        namespace="default",
    )
    await api.start(build(api.ctx))

    async def orphan_gone() -> bool:
        return await _endpoints(api, "orphan") is None

    await wait_until(orphan_gone, what="the leftover Endpoints deleted")
    assert await _endpoints(api, "lock") is not None
