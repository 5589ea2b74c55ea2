"""The EndpointSlice controller: ``discovery.k8s.io/v1`` slices for every selector Service.

It mirrors upstream's ``pkg/controller/endpointslice``: the pods a Service selects that have
an IP and are not terminal (terminating ones included, marked so) become endpoints, one
slice family per address type of the Service (``spec.ipFamilies``), pods with the same
resolved ports sharing slices of at most 100 endpoints. Each endpoint carries its address,
``conditions`` (``serving`` = pod Ready, ``terminating`` = being deleted, ``ready`` =
serving and not terminating, or always with ``publishNotReadyAddresses``), ``hostname``
(``ShouldSetHostname``), ``nodeName`` and a ``targetRef``. Slices are named
``<service>-<random>``, owned by their Service (the garbage collector removes them with
it), labelled ``kubernetes.io/service-name`` and ``endpointslice.kubernetes.io/managed-by:
endpointslice-controller.k8s.io`` (plus the Service's own labels and
``service.kubernetes.io/headless``) and annotated with
``endpoints.kubernetes.io/last-change-trigger-time``. A Service with no endpoints keeps one
empty placeholder slice, as upstream.

The key design choice is reuse over churn, as upstream's reconciler: desired endpoints are
grouped by (address type, ports), and each group fills the existing slices of the same shape
before any slice is created, so a pod turning Ready rewrites one slice in place (which is
what cluster DNS watches) instead of replacing slices.
"""

from __future__ import annotations

import logging
import time
from typing import Any, Final

from kubeling.client.controller import Controller
from kubeling.client.events import WARNING, EventRecorder
from kubeling.client.informer import Informer, split_key
from kubeling.client.interface import Client
from kubeling.controllers.endpoints import (
    HEADLESS_LABEL,
    TRIGGER_TIME_ANNOTATION,
    ObjectRefs,
    TriggerTimeTracker,
    find_port,
    format_trigger_time,
    is_headless,
    is_pod_ready,
    pod_endpoints_changed,
    pod_ip_for_family,
    pod_service_keys,
    selected_pods,
    service_families,
    should_pod_be_in_endpoints,
    should_set_hostname,
    target_ref,
)
from kubeling.machinery import objects
from kubeling.machinery.errors import Forbidden, NotFound
from kubeling.machinery.resources import ENDPOINTSLICES, PODS, SERVICES
from kubeling.machinery.types import Obj

log = logging.getLogger(__name__)

COMPONENT: Final = "endpoint-slice-controller"
SERVICE_NAME_LABEL: Final = "kubernetes.io/service-name"
MANAGED_BY_LABEL: Final = "endpointslice.kubernetes.io/managed-by"
CONTROLLER_NAME: Final = "endpointslice-controller.k8s.io"
MAX_ENDPOINTS_PER_SLICE: Final = 100
"""upstream's ``--max-endpoints-per-slice`` default."""

PortsKey = tuple[tuple[str, int, str], ...]


def slice_service_key(es: Obj) -> str | None:
    """``namespace/service`` of a slice labelled with its Service's name."""
    svc = objects.labels(es).get(SERVICE_NAME_LABEL)
    return f"{objects.namespace(es)}/{svc}" if svc else None


def _ports_key(ports: list[Obj] | None) -> PortsKey:
    return tuple(
        sorted(
            (str(p.get("name") or ""), int(p.get("port") or 0), str(p.get("protocol") or ""))
            for p in ports or []
        )
    )


def _endpoint_sort_key(ep: Obj) -> tuple[str, str]:
    return ((ep.get("targetRef") or {}).get("name") or "", (ep.get("addresses") or [""])[0])


def address_types(svc: Obj) -> list[str]:
    """upstream ``getAddressTypesForService``: the Service's families (IPv4 by default)."""
    return service_families(svc) or ["IPv4"]


def desired_endpoints(svc: Obj, pods: list[Obj]) -> dict[tuple[str, PortsKey], list[Any]]:
    """(address type, ports key) → [ports, endpoints...] for the Service's pods."""
    spec = svc.get("spec") or {}
    publish = spec.get("publishNotReadyAddresses") is True
    service_ports = [p for p in spec.get("ports") or [] if isinstance(p, dict)]
    out: dict[tuple[str, PortsKey], list[Any]] = {}
    for pod in pods:
        if not should_pod_be_in_endpoints(pod, include_terminating=True):
            continue
        ports: list[Obj] = []
        for sp in service_ports:
            number = find_port(pod, sp)
            if number is None:
                continue
            port: Obj = {
                "name": sp.get("name") or "",
                "port": number,
                "protocol": sp.get("protocol") or "TCP",
            }
            if sp.get("appProtocol"):
                port["appProtocol"] = sp["appProtocol"]
            ports.append(port)
        ports.sort(key=lambda p: (p["name"], p["port"], p["protocol"]))
        serving = is_pod_ready(pod)
        terminating = bool(objects.deletion_timestamp(pod))
        for family in address_types(svc):
            ip = pod_ip_for_family(pod, family)
            if ip is None:
                continue
            ep: Obj = {
                "addresses": [ip],
                "conditions": {
                    "ready": publish or (serving and not terminating),
                    "serving": serving,
                    "terminating": terminating,
                },
            }
            if should_set_hostname(pod, svc):
                ep["hostname"] = (pod.get("spec") or {})["hostname"]
            ep["targetRef"] = target_ref(pod)
            node = (pod.get("spec") or {}).get("nodeName")
            if node:
                ep["nodeName"] = node
            group = out.setdefault((family, _ports_key(ports)), [ports])
            group.append(ep)
    for group in out.values():
        group[1:] = sorted(group[1:], key=_endpoint_sort_key)
    return out


def slice_labels(svc: Obj) -> dict[str, str]:
    """upstream ``setEndpointSliceLabels``: the Service's labels (minus the two the
    controller owns) plus service-name, managed-by and, for headless ones, headless."""
    labels = {
        k: v
        for k, v in objects.labels(svc).items()
        if k not in (SERVICE_NAME_LABEL, MANAGED_BY_LABEL, HEADLESS_LABEL)
    }
    if is_headless(svc):
        labels[HEADLESS_LABEL] = ""
    labels[SERVICE_NAME_LABEL] = objects.name(svc)
    labels[MANAGED_BY_LABEL] = CONTROLLER_NAME
    return labels


class EndpointSliceController(Controller):
    name = "endpointslice"

    def __init__(
        self,
        *,
        client: Client,
        services: Informer,
        pods: Informer,
        slices: Informer,
        recorder: EventRecorder | None = None,
        max_endpoints_per_slice: int = MAX_ENDPOINTS_PER_SLICE,
    ) -> None:
        super().__init__(workers=2)
        self.client = client
        self.services = services
        self.pods = pods
        self.slices = slices
        self.recorder = recorder
        self.max_endpoints = max_endpoints_per_slice
        self.triggers = TriggerTimeTracker()
        self._created: dict[str, dict[str, float]] = {}
        """Slices this controller created that its cache has not shown yet, per Service
        (upstream's ``endpointSliceTracker``): syncing before they appear would create
        them twice."""
        self._written: dict[tuple[str, str], str] = {}
        """(namespace, slice) → the resourceVersion of this controller's last write."""
        self._replaced: dict[tuple[str, str], str] = {}
        """(namespace, slice) → the resourceVersion this controller last overwrote: while
        the cache still shows it, the cache is behind our own write (upstream's stale
        tracking), and syncing from it would only earn a conflict and a backoff."""
        self.service_refs = ObjectRefs(services)
        self.pod_refs = ObjectRefs(pods)
        self.slice_refs = ObjectRefs(slices, group=slice_service_key)
        self.watch(services)
        pods.add_handler(
            on_add=self._pod_added, on_update=self._pod_updated, on_delete=self._pod_added
        )
        self.wait_for(pods)
        # A slice someone else changed or deleted is put back by its Service's next sync.
        slices.add_handler(
            on_update=lambda _old, new: self._slice_changed(new), on_delete=self._slice_changed
        )
        self.wait_for(slices)

    def _slice_changed(self, es: Obj) -> None:
        if objects.labels(es).get(MANAGED_BY_LABEL) != CONTROLLER_NAME:
            return
        slot = (objects.namespace(es), objects.name(es))
        if self._written.get(slot) == objects.resource_version(
            es
        ) and not objects.deletion_timestamp(es):
            return  # our own write coming back: nothing to sync (upstream's ShouldSync)
        key = slice_service_key(es)
        if key:
            self.enqueue(key)

    def _pod_added(self, pod: Obj) -> None:
        for key in pod_service_keys(self.service_refs, pod):
            self.enqueue(key)

    def _pod_updated(self, old: Obj, new: Obj) -> None:
        if not pod_endpoints_changed(old, new):
            return
        for key in pod_service_keys(self.service_refs, new, objects.labels(old)):
            self.enqueue(key)

    def _managed_slices(self, key: str) -> list[Obj]:
        return [
            es
            for es in self.slice_refs.list(key)
            if objects.labels(es).get(MANAGED_BY_LABEL) == CONTROLLER_NAME
        ]

    async def reconcile(self, key: str) -> None:
        namespace, _name = split_key(key)
        svc = self.service_refs.get(key)
        if svc is None:
            # The garbage collector removes owned slices; delete them here too so a cluster
            # without it (or a slice that lost its owner reference) keeps nothing stale.
            self.triggers.forget(key)
            for es in self._managed_slices(key):
                await self._delete(es)
            return
        spec = svc.get("spec") or {}
        if spec.get("type") == "ExternalName" or spec.get("selector") is None:
            return
        if self._awaiting_own_creates(key) or self._cache_behind(key):
            self.enqueue_after(key, 0.005)
            return
        pods = selected_pods(svc, self.pod_refs.list(namespace))
        trigger = self.triggers.compute(key, svc, pods)
        desired = desired_endpoints(svc, pods)
        existing = self._managed_slices(key)
        svc_uid = objects.uid(svc)
        # Slices owned by an earlier Service of the same name are not ours to reuse.
        stale = [es for es in existing if not self._owned_by(es, svc_uid)]
        existing = [es for es in existing if self._owned_by(es, svc_uid)]
        labels = slice_labels(svc)
        annotations: dict[str, str] = {}
        if trigger is not None:
            annotations[TRIGGER_TIME_ANNOTATION] = format_trigger_time(trigger)

        wanted: list[tuple[str, list[Obj], list[Obj]]] = []
        for (address_type, _ports), group in sorted(desired.items(), key=lambda kv: kv[0]):
            ports, endpoints = group[0], group[1:]
            for start in range(0, len(endpoints), self.max_endpoints):
                wanted.append((address_type, ports, endpoints[start : start + self.max_endpoints]))
        if not wanted:
            # upstream keeps one empty placeholder slice for a Service without endpoints.
            wanted.append((address_types(svc)[0], [], []))

        pool: dict[tuple[str, PortsKey], list[Obj]] = {}
        for es in sorted(existing, key=objects.name):
            shape = (str(es.get("addressType") or ""), _ports_key(es.get("ports")))
            pool.setdefault(shape, []).append(es)
        for address_type, ports, endpoints in wanted:
            candidates = pool.get((address_type, _ports_key(ports))) or []
            current = candidates.pop(0) if candidates else None
            await self._write(
                svc, current, address_type, ports, endpoints, labels=labels, annotations=annotations
            )
        for leftovers in pool.values():
            for es in leftovers:
                await self._delete(es)
        for es in stale:
            await self._delete(es)

    def _cache_behind(self, key: str) -> bool:
        behind = False
        for es in self._managed_slices(key):
            slot = (objects.namespace(es), objects.name(es))
            replaced = self._replaced.get(slot)
            if replaced is None:
                continue
            if objects.resource_version(es) == replaced:
                behind = True
            else:
                del self._replaced[slot]
        return behind

    def _awaiting_own_creates(self, key: str) -> bool:
        pending = self._created.get(key)
        if not pending:
            return False
        namespace, _ = split_key(key)
        now = time.monotonic()
        for name, at in list(pending.items()):
            seen = self.slice_refs.get(f"{namespace}/{name}") is not None
            if seen or now - at > 5.0:
                del pending[name]
        if not pending:
            del self._created[key]
            return False
        return True

    @staticmethod
    def _owned_by(es: Obj, uid: str) -> bool:
        ref = objects.controller_ref(es)
        return ref is not None and ref.get("uid") == uid

    async def _write(
        self,
        svc: Obj,
        current: Obj | None,
        address_type: str,
        ports: list[Obj],
        endpoints: list[Obj],
        *,
        labels: dict[str, str],
        annotations: dict[str, str],
    ) -> None:
        if current is not None:
            current_labels = objects.labels(current)
            if (
                (current.get("endpoints") or []) == endpoints
                and (current.get("ports") or []) == ports
                and current_labels == labels
            ):
                return
            body = objects.deep_copy(current)  # the cache's own object: never mutate it
            meta = objects.ensure_meta(body)
            kept = {
                k: v
                for k, v in (meta.get("annotations") or {}).items()
                if k != TRIGGER_TIME_ANNOTATION
            }
            kept.update(annotations)
            meta["annotations"] = kept
            if not kept:
                meta.pop("annotations")
        else:
            owner = dict(svc)
            owner.setdefault("apiVersion", "v1")
            owner.setdefault("kind", "Service")
            body = {
                "apiVersion": "discovery.k8s.io/v1",
                "kind": "EndpointSlice",
                "metadata": {
                    "generateName": f"{objects.name(svc)}-",
                    "namespace": objects.namespace(svc),
                    "ownerReferences": [objects.owner_reference(owner)],
                },
                "addressType": address_type,
            }
            meta = body["metadata"]
            if annotations:
                meta["annotations"] = dict(annotations)
        meta["labels"] = dict(labels)
        body["endpoints"] = endpoints
        body["ports"] = ports
        body.setdefault("apiVersion", "discovery.k8s.io/v1")
        body.setdefault("kind", "EndpointSlice")
        try:
            if current is None:
                out = await self.client.create(
                    ENDPOINTSLICES, body, namespace=objects.namespace(svc)
                )
                key = objects.namespaced_name(svc)
                self._created.setdefault(key, {})[objects.name(out)] = time.monotonic()
                self._written[(objects.namespace(out), objects.name(out))] = (
                    objects.resource_version(out)
                )
                log.debug("Created endpoint slice %s.", objects.namespaced_name(out))
            else:
                replaced = objects.resource_version(body)
                out = await self.client.update(ENDPOINTSLICES, body)
                slot = (objects.namespace(body), objects.name(body))
                self._replaced[slot] = replaced
                self._written[slot] = objects.resource_version(out)
        except Forbidden:
            if current is None:
                return  # a terminating namespace refuses creations; nothing to do
            raise
        except Exception as e:
            if self.recorder is not None and not isinstance(e, NotFound):
                owner = dict(svc)
                owner.setdefault("apiVersion", "v1")
                owner.setdefault("kind", "Service")
                self.recorder.event(
                    owner,
                    WARNING,
                    "FailedToUpdateEndpointSlices",
                    "Error updating Endpoint Slices for Service "
                    f"{objects.namespaced_name(svc)}: {e}",
                )
            raise

    async def _delete(self, es: Obj) -> None:
        self._replaced.pop((objects.namespace(es), objects.name(es)), None)
        self._written.pop((objects.namespace(es), objects.name(es)), None)
        try:
            await self.client.delete(
                ENDPOINTSLICES, name=objects.name(es), namespace=objects.namespace(es)
            )
        except NotFound:
            pass


def build(ctx: Any) -> EndpointSliceController:
    return EndpointSliceController(
        client=ctx.client,
        services=ctx.informers.informer(SERVICES),
        pods=ctx.informers.informer(PODS),
        slices=ctx.informers.informer(ENDPOINTSLICES),
        recorder=ctx.recorder(COMPONENT),
    )
