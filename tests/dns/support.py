"""Builders shared by the Endpoints, EndpointSlice and DNS tests: Services and pods made
Ready (or not) through the status subresource, as a node agent would."""

from __future__ import annotations

from typing import Any

from kubeling.client.interface import Client
from kubeling.machinery.resources import PODS, SERVICES
from kubeling.machinery.types import Obj


def service(
    name: str,
    *,
    namespace: str = "default",
    selector: dict[str, str] | None = None,
    headless: bool = False,
    ports: list[dict[str, Any]] | None = None,
    publish_not_ready: bool = False,
    labels: dict[str, str] | None = None,
    cluster_ip: str = "",
    type_: str = "",
    external_name: str = "",
) -> Obj:
    spec: dict[str, Any] = {}
    if selector is not None:
        spec["selector"] = dict(selector)
    if headless:
        spec["clusterIP"] = "None"
    elif cluster_ip:
        spec["clusterIP"] = cluster_ip
    if ports is not None:
        spec["ports"] = ports
    elif not headless and type_ != "ExternalName":
        spec["ports"] = [{"name": "http", "port": 80}]
    if publish_not_ready:
        spec["publishNotReadyAddresses"] = True
    if type_:
        spec["type"] = type_
    if external_name:
        spec["externalName"] = external_name
    meta: dict[str, Any] = {"name": name, "namespace": namespace}
    if labels:
        meta["labels"] = dict(labels)
    return {"apiVersion": "v1", "kind": "Service", "metadata": meta, "spec": spec}


def pod(
    name: str,
    *,
    namespace: str = "default",
    labels: dict[str, str] | None = None,
    hostname: str = "",
    subdomain: str = "",
    node: str = "node-1",
    container_ports: list[dict[str, Any]] | None = None,
) -> Obj:
    container: dict[str, Any] = {"name": "c", "image": "busybox:1.36"}
    if container_ports:
        container["ports"] = container_ports
    spec: dict[str, Any] = {"containers": [container]}
    if hostname:
        spec["hostname"] = hostname
    if subdomain:
        spec["subdomain"] = subdomain
    if node:
        spec["nodeName"] = node
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": namespace, "labels": dict(labels or {})},
        "spec": spec,
    }


async def set_pod_status(
    client: Client,
    obj: Obj,
    *,
    ip: str = "",
    ready: bool = False,
    phase: str = "Running",
    transition: str = "2026-01-01T00:00:00Z",
) -> Obj:
    """Write the pod's status as a node agent would: phase, IPs, the Ready condition."""
    meta = obj["metadata"]
    current = await client.get(PODS, name=meta["name"], namespace=meta["namespace"])
    status: dict[str, Any] = {
        "phase": phase,
        "conditions": [
            {
                "type": "Ready",
                "status": "True" if ready else "False",
                "lastTransitionTime": transition,
            }
        ],
    }
    if ip:
        status["podIP"] = ip
        status["podIPs"] = [{"ip": ip}]
    current["status"] = status
    return await client.update(PODS, current, subresource="status")


async def create_pod(client: Client, obj: Obj, *, ip: str = "", ready: bool = False) -> Obj:
    created = await client.create(PODS, obj)
    if ip or ready:
        created = await set_pod_status(client, created, ip=ip, ready=ready)
    return created


async def create_service(client: Client, obj: Obj) -> Obj:
    return await client.create(SERVICES, obj)
