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

``EndpointSliceMirroringController`` (upstream's ``endpointslicemirroring``) does the same
for Services without a selector, from the Endpoints someone wrote by hand.

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
    LEADER_ANNOTATION,
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
from kubeling.machinery.resources import ENDPOINTS, ENDPOINTSLICES, PODS, SERVICES
from kubeling.machinery.types import Obj

log = logging.getLogger(__name__)

COMPONENT: Final = "endpoint-slice-controller"
SERVICE_NAME_LABEL: Final = "kubernetes.io/service-name"
MANAGED_BY_LABEL: Final = "endpointslice.kubernetes.io/managed-by"
CONTROLLER_NAME: Final = "endpointslice-controller.k8s.io"
MIRRORING_CONTROLLER_NAME: Final = "endpointslicemirroring-controller.k8s.io"
MIRRORING_COMPONENT: Final = "endpointslicemirroring-controller"
SKIP_MIRROR_LABEL: Final = "endpointslice.kubernetes.io/skip-mirror"
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
    manager = CONTROLLER_NAME
    """The ``endpointslice.kubernetes.io/managed-by`` value of the slices this controller
    writes (and the only slices it touches)."""

    def __init__(
        self,
        *,
        client: Client,
        services: Informer,
        pods: Informer | None,
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
        self.slice_refs = ObjectRefs(slices, group=slice_service_key)
        self.watch(services)
        if pods is not None:
            self.pod_refs = ObjectRefs(pods)
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
        if objects.labels(es).get(MANAGED_BY_LABEL) != self.manager:
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
            if objects.labels(es).get(MANAGED_BY_LABEL) == self.manager
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

        wanted = self._chunked(desired)
        if not wanted:
            # upstream keeps one empty placeholder slice for a Service without endpoints.
            wanted.append((address_types(svc)[0], [], []))

        owner = dict(svc)
        owner.setdefault("apiVersion", "v1")
        owner.setdefault("kind", "Service")
        await self._place(owner, wanted, existing, labels=labels, annotations=annotations)
        for es in stale:
            await self._delete(es)

    def _chunked(
        self, groups: dict[tuple[str, PortsKey], list[Any]]
    ) -> list[tuple[str, list[Obj], list[Obj]]]:
        """(address type, ports, endpoints) per slice to write: each group's endpoints cut
        into slices of at most ``max_endpoints``, groups in a stable order."""
        wanted: list[tuple[str, list[Obj], list[Obj]]] = []
        for (address_type, _ports), group in sorted(groups.items(), key=lambda kv: kv[0]):
            ports, endpoints = group[0], group[1:]
            for start in range(0, len(endpoints), self.max_endpoints):
                wanted.append((address_type, ports, endpoints[start : start + self.max_endpoints]))
        return wanted

    async def _place(
        self,
        owner: Obj,
        wanted: list[tuple[str, list[Obj], list[Obj]]],
        existing: list[Obj],
        *,
        labels: dict[str, str],
        annotations: dict[str, str],
    ) -> None:
        """Fill existing slices of the same (address type, ports) shape first, create the
        rest, delete what is left over."""
        pool: dict[tuple[str, PortsKey], list[Obj]] = {}
        for es in sorted(existing, key=objects.name):
            shape = (str(es.get("addressType") or ""), _ports_key(es.get("ports")))
            pool.setdefault(shape, []).append(es)
        for address_type, ports, endpoints in wanted:
            candidates = pool.get((address_type, _ports_key(ports))) or []
            current = candidates.pop(0) if candidates else None
            await self._write(
                owner,
                current,
                address_type,
                ports,
                endpoints,
                labels=labels,
                annotations=annotations,
            )
        for leftovers in pool.values():
            for es in leftovers:
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
        owner: Obj,
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
            body = {
                "apiVersion": "discovery.k8s.io/v1",
                "kind": "EndpointSlice",
                "metadata": {
                    "generateName": f"{objects.name(owner)}-",
                    "namespace": objects.namespace(owner),
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
                    ENDPOINTSLICES, body, namespace=objects.namespace(owner)
                )
                key = objects.namespaced_name(owner)
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
                self.recorder.event(
                    owner,
                    WARNING,
                    "FailedToUpdateEndpointSlices",
                    f"Error updating Endpoint Slices for {owner.get('kind')} "
                    f"{objects.namespaced_name(owner)}: {e}",
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


class EndpointSliceMirroringController(EndpointSliceController):
    """upstream's ``endpointslicemirroring`` controller: the Endpoints of a Service without
    a selector (written by hand or by another tool) mirrored into EndpointSlices managed by
    ``endpointslicemirroring-controller.k8s.io``, so everything that reads slices (cluster
    DNS among them) sees them. ``addresses`` become ready endpoints, ``notReadyAddresses``
    not-ready ones; Endpoints labelled ``endpointslice.kubernetes.io/skip-mirror: "true"``
    are left alone."""

    name = "endpointslicemirroring"
    manager = MIRRORING_CONTROLLER_NAME

    def __init__(
        self,
        *,
        client: Client,
        services: Informer,
        endpoints: Informer,
        slices: Informer,
        recorder: EventRecorder | None = None,
        max_endpoints_per_slice: int = MAX_ENDPOINTS_PER_SLICE,
    ) -> None:
        super().__init__(
            client=client,
            services=services,
            pods=None,
            slices=slices,
            recorder=recorder,
            max_endpoints_per_slice=max_endpoints_per_slice,
        )
        self.endpoints = endpoints
        self.watch(endpoints)

    @staticmethod
    def should_mirror(svc: Obj | None, ep: Obj | None) -> bool:
        if svc is None or ep is None:
            return False
        if (svc.get("spec") or {}).get("selector") is not None:
            return False
        if objects.labels(ep).get(SKIP_MIRROR_LABEL) == "true":
            return False
        return LEADER_ANNOTATION not in objects.annotations(ep)

    async def reconcile(self, key: str) -> None:
        svc = self.service_refs.get(key)
        ep = self.endpoints.get(key)
        existing = self._managed_slices(key)
        if not self.should_mirror(svc, ep) or ep is None:
            for es in existing:
                await self._delete(es)
            return
        if self._awaiting_own_creates(key) or self._cache_behind(key):
            self.enqueue_after(key, 0.005)
            return
        groups: dict[tuple[str, PortsKey], list[Any]] = {}
        for subset in ep.get("subsets") or []:
            ports: list[Obj] = []
            for p in subset.get("ports") or []:
                port: Obj = {
                    "name": p.get("name") or "",
                    "port": p.get("port"),
                    "protocol": p.get("protocol") or "TCP",
                }
                if p.get("appProtocol"):
                    port["appProtocol"] = p["appProtocol"]
                ports.append(port)
            ports.sort(key=lambda p: (p["name"], p["port"] or 0, p["protocol"]))
            for ready, field_name in ((True, "addresses"), (False, "notReadyAddresses")):
                for addr in subset.get(field_name) or []:
                    ip = addr.get("ip")
                    if not isinstance(ip, str) or not ip:
                        continue
                    endpoint: Obj = {"addresses": [ip], "conditions": {"ready": ready}}
                    for name in ("hostname", "nodeName", "targetRef"):
                        if addr.get(name):
                            endpoint[name] = objects.deep_copy(addr[name])
                    family = "IPv6" if ":" in ip else "IPv4"
                    group = groups.setdefault((family, _ports_key(ports)), [ports])
                    if endpoint not in group[1:]:
                        group.append(endpoint)
        wanted = self._chunked(groups)
        owner = dict(ep)
        owner.setdefault("apiVersion", "v1")
        owner.setdefault("kind", "Endpoints")
        uid = objects.uid(ep)
        stale = [es for es in existing if not self._owned_by(es, uid)]
        labels = {
            k: v
            for k, v in objects.labels(ep).items()
            if k not in (SERVICE_NAME_LABEL, MANAGED_BY_LABEL, SKIP_MIRROR_LABEL)
        }
        labels[SERVICE_NAME_LABEL] = objects.name(ep)
        labels[MANAGED_BY_LABEL] = self.manager
        await self._place(
            owner,
            wanted,
            [es for es in existing if self._owned_by(es, uid)],
            labels=labels,
            annotations={},
        )
        for es in stale:
            await self._delete(es)


def build_mirroring(ctx: Any) -> EndpointSliceMirroringController:
    return EndpointSliceMirroringController(
        client=ctx.client,
        services=ctx.informers.informer(SERVICES),
        endpoints=ctx.informers.informer(ENDPOINTS),
        slices=ctx.informers.informer(ENDPOINTSLICES),
        recorder=ctx.recorder(MIRRORING_COMPONENT),
    )


def build(ctx: Any) -> EndpointSliceController:
    return EndpointSliceController(
        client=ctx.client,
        services=ctx.informers.informer(SERVICES),
        pods=ctx.informers.informer(PODS),
        slices=ctx.informers.informer(ENDPOINTSLICES),
        recorder=ctx.recorder(COMPONENT),
    )
