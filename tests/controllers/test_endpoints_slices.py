"""The EndpointSlice controller on a real registry (LocalClient over MemoryBackend)."""

from __future__ import annotations

from typing import Any

import pytest

from kubeling.controllers.endpoints import HEADLESS_LABEL, TRIGGER_TIME_ANNOTATION
from kubeling.controllers.endpointslice import (
    CONTROLLER_NAME,
    MANAGED_BY_LABEL,
    SERVICE_NAME_LABEL,
    EndpointSliceController,
)
from kubeling.machinery.resources import ENDPOINTSLICES, PODS, SERVICES
from kubeling.machinery.types import Obj
from tests.controllers.conftest import Api, wait_until
from tests.dns.support import create_pod, create_service, pod, service, set_pod_status


async def _slices(api: Api, svc: str) -> list[Obj]:
    listed = await api.client.list(
        ENDPOINTSLICES, namespace="default", label_selector=f"{SERVICE_NAME_LABEL}={svc}"
    )
    return listed.get("items") or []


def _endpoints(slices: list[Obj]) -> dict[str, Obj]:
    return {ep["addresses"][0]: ep for es in slices for ep in es.get("endpoints") or []}


def _make(api: Api, max_per_slice: int = 100) -> EndpointSliceController:
    from kubeling.client.events import EventRecorder

    return EndpointSliceController(
        client=api.client,
        services=api.informers.informer(SERVICES),
        pods=api.informers.informer(PODS),
        slices=api.informers.informer(ENDPOINTSLICES),
        recorder=EventRecorder(api.client, component="endpoint-slice-controller"),
        max_endpoints_per_slice=max_per_slice,
    )


@pytest.fixture
async def controller(api: Api) -> EndpointSliceController:
    ctl = _make(api)
    await api.start(ctl)
    return ctl


async def _until(api: Api, svc: str, predicate: Any, what: str) -> list[Obj]:
    found: dict[str, list[Obj]] = {}

    async def check() -> bool:
        found["s"] = await _slices(api, svc)
        return bool(predicate(found["s"]))

    await wait_until(check, what=what)
    return found["s"]


async def test_endpointslice_conditions_labels_and_owner(
    api: Api, controller: EndpointSliceController
) -> None:
    svc = await create_service(
        api.client, service("web", selector={"app": "web"}, headless=True, labels={"t": "1"})
    )
    await create_pod(
        api.client,
        pod("web-0", labels={"app": "web"}, hostname="web-0", subdomain="web"),
        ip="10.244.0.2",
        ready=True,
    )
    await create_pod(api.client, pod("web-1", labels={"app": "web"}), ip="10.244.0.3")
    slices = await _until(
        api, "web", lambda s: len(_endpoints(s)) == 2, "two endpoints in the slices"
    )
    assert len(slices) == 1
    es = slices[0]
    assert es["metadata"]["name"].startswith("web-")
    assert es["addressType"] == "IPv4"
    assert es["metadata"]["labels"] == {
        "t": "1",
        SERVICE_NAME_LABEL: "web",
        MANAGED_BY_LABEL: CONTROLLER_NAME,
        HEADLESS_LABEL: "",
    }
    owner = es["metadata"]["ownerReferences"][0]
    assert owner["kind"] == "Service" and owner["uid"] == svc["metadata"]["uid"]
    assert owner["controller"] is True
    assert TRIGGER_TIME_ANNOTATION in es["metadata"]["annotations"]
    eps = _endpoints(slices)
    ready = eps["10.244.0.2"]
    assert ready["conditions"] == {"ready": True, "serving": True, "terminating": False}
    assert ready["hostname"] == "web-0"
    assert ready["nodeName"] == "node-1"
    assert ready["targetRef"]["name"] == "web-0"
    not_ready = eps["10.244.0.3"]
    assert not_ready["conditions"] == {"ready": False, "serving": False, "terminating": False}
    assert "hostname" not in not_ready


async def test_endpointslice_publish_not_ready_forces_ready(
    api: Api, controller: EndpointSliceController
) -> None:
    await create_service(
        api.client,
        service(
            "peers",
            selector={"app": "peer"},
            headless=True,
            publish_not_ready=True,
            ports=[{"name": "client", "port": 4222}],
        ),
    )
    await create_pod(api.client, pod("peer-0", labels={"app": "peer"}), ip="10.244.0.2")
    slices = await _until(api, "peers", lambda s: _endpoints(s), "an endpoint")
    ep = _endpoints(slices)["10.244.0.2"]
    assert ep["conditions"] == {"ready": True, "serving": False, "terminating": False}
    assert slices[0]["ports"] == [{"name": "client", "port": 4222, "protocol": "TCP"}]


async def test_endpointslice_terminating_pod_kept_with_condition(
    api: Api, controller: EndpointSliceController
) -> None:
    await create_service(api.client, service("web", selector={"app": "web"}))
    await create_pod(api.client, pod("a", labels={"app": "web"}), ip="10.244.0.2", ready=True)
    await _until(api, "web", lambda s: _endpoints(s), "an endpoint")
    # a finalizer keeps the pod around while it is terminating
    await api.client.patch(
        PODS,
        name="a",
        namespace="default",
        patch={"metadata": {"finalizers": ["test/hold"]}},
        patch_type="merge",
    )
    await api.client.delete(PODS, name="a", namespace="default", grace_period_seconds=0)
    slices = await _until(
        api,
        "web",
        lambda s: _endpoints(s).get("10.244.0.2", {}).get("conditions", {}).get("terminating"),
        "the endpoint marked terminating",
    )
    assert _endpoints(slices)["10.244.0.2"]["conditions"] == {
        "ready": False,
        "serving": True,
        "terminating": True,
    }
    current = await api.client.get(PODS, name="a", namespace="default")
    current["metadata"]["finalizers"] = []
    await api.client.update(PODS, current)


async def test_endpointslice_placeholder_when_no_endpoints(
    api: Api, controller: EndpointSliceController
) -> None:
    await create_service(api.client, service("empty", selector={"app": "none"}))
    slices = await _until(api, "empty", lambda s: len(s) == 1, "a placeholder slice")
    assert not slices[0].get("endpoints")
    assert not slices[0].get("ports")


async def test_endpointslice_ready_transition_updates_slice_in_place(
    api: Api, controller: EndpointSliceController
) -> None:
    await create_service(api.client, service("web", selector={"app": "web"}))
    p = await create_pod(api.client, pod("a", labels={"app": "web"}), ip="10.244.0.2")
    first = await _until(api, "web", lambda s: _endpoints(s), "an endpoint")
    await set_pod_status(
        api.client, p, ip="10.244.0.2", ready=True, transition="2026-01-01T00:01:00Z"
    )
    later = await _until(
        api,
        "web",
        lambda s: _endpoints(s).get("10.244.0.2", {}).get("conditions", {}).get("ready"),
        "the endpoint ready",
    )
    assert [s["metadata"]["name"] for s in later] == [s["metadata"]["name"] for s in first]
    assert later[0]["metadata"]["annotations"][TRIGGER_TIME_ANNOTATION] == "2026-01-01T00:01:00Z"


async def test_endpointslice_splits_at_max_endpoints(api: Api) -> None:
    ctl = _make(api, max_per_slice=2)
    await api.start(ctl)
    await create_service(api.client, service("web", selector={"app": "web"}))
    for i in range(5):
        await create_pod(
            api.client, pod(f"p{i}", labels={"app": "web"}), ip=f"10.244.0.{i + 2}", ready=True
        )
    await _until(api, "web", lambda s: len(_endpoints(s)) == 5, "five endpoints")
    await wait_until(lambda: _count_ok(api), what="slices settle at three of at most two endpoints")
    slices = await _slices(api, "web")
    assert sorted(len(s.get("endpoints") or []) for s in slices) == [1, 2, 2]


async def _count_ok(api: Api) -> bool:
    slices = await _slices(api, "web")
    return len(slices) == 3 and len(_endpoints(slices)) == 5


async def test_endpointslice_deleted_with_service(
    api: Api, controller: EndpointSliceController
) -> None:
    await create_service(api.client, service("web", selector={"app": "web"}))
    await _until(api, "web", lambda s: len(s) == 1, "a slice")
    await api.client.delete(SERVICES, name="web", namespace="default")
    await _until(api, "web", lambda s: not s, "no slices")


async def test_endpointslice_mirroring_selectorless_service(api: Api) -> None:
    from kubeling.controllers.endpointslice import (
        MIRRORING_CONTROLLER_NAME,
        build_mirroring,
    )
    from kubeling.machinery.resources import ENDPOINTS

    await api.start(build_mirroring(api.ctx))
    await create_service(api.client, service("ext-db", ports=[{"name": "pg", "port": 5432}]))
    manual = {
        "apiVersion": "v1",
        "kind": "Endpoints",
        "metadata": {"name": "ext-db", "labels": {"team": "db"}},
        "subsets": [
            {
                "addresses": [{"ip": "10.1.0.5", "hostname": "primary"}],
                "notReadyAddresses": [{"ip": "10.1.0.6"}],
                "ports": [{"name": "pg", "port": 5432}],
            }
        ],
    }
    ep = await api.client.create(ENDPOINTS, manual, namespace="default")
    slices = await _until(api, "ext-db", lambda s: len(_endpoints(s)) == 2, "mirrored endpoints")
    es = slices[0]
    assert es["metadata"]["labels"] == {
        "team": "db",
        SERVICE_NAME_LABEL: "ext-db",
        MANAGED_BY_LABEL: MIRRORING_CONTROLLER_NAME,
    }
    assert es["metadata"]["ownerReferences"][0]["kind"] == "Endpoints"
    assert es["metadata"]["ownerReferences"][0]["uid"] == ep["metadata"]["uid"]
    assert es["ports"] == [{"name": "pg", "port": 5432, "protocol": "TCP"}]
    eps = _endpoints(slices)
    assert eps["10.1.0.5"]["conditions"] == {"ready": True}
    assert eps["10.1.0.5"]["hostname"] == "primary"
    assert eps["10.1.0.6"]["conditions"] == {"ready": False}
    # skip-mirror removes the mirror
    await api.client.patch(
        ENDPOINTS,
        name="ext-db",
        namespace="default",
        patch={"metadata": {"labels": {"endpointslice.kubernetes.io/skip-mirror": "true"}}},
        patch_type="merge",
    )
    await _until(api, "ext-db", lambda s: not s, "the mirror removed")


async def test_endpointslice_mirroring_ignores_selector_services(api: Api) -> None:
    from kubeling.controllers.endpointslice import MIRRORING_CONTROLLER_NAME, build_mirroring

    mirror = build_mirroring(api.ctx)
    await api.start(mirror, _make(api))
    await create_service(api.client, service("web", selector={"app": "web"}))
    await create_pod(api.client, pod("a", labels={"app": "web"}), ip="10.244.0.2", ready=True)
    slices = await _until(api, "web", lambda s: _endpoints(s), "the controller's slice")
    await mirror.process("default/web")
    slices = await _slices(api, "web")
    managers = {s["metadata"]["labels"][MANAGED_BY_LABEL] for s in slices}
    assert managers == {CONTROLLER_NAME}
    assert MIRRORING_CONTROLLER_NAME not in managers
