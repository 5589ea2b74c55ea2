"""The Endpoints controller: one ``Endpoints`` object per selector Service, from its pods.

It mirrors upstream's ``pkg/controller/endpoint``: for each Service with a selector (not
ExternalName) the pods it selects become addresses when they have an IP and are not
terminal (``ShouldPodBeInEndpoints``; terminating pods only with
``publishNotReadyAddresses``). Ready pods go to ``addresses``, the others to
``notReadyAddresses`` (or all to ``addresses`` with ``publishNotReadyAddresses``); each
address carries the pod IP of the Service's first family, ``nodeName``, a ``targetRef``
and, when the pod's ``hostname`` is set and its ``subdomain`` names the Service,
``hostname`` (``ShouldSetHostname``). Ports are the Service's, with named target ports
resolved per pod, and pods with the same resolved ports share a subset (``RepackSubsets``).
Labels are copied from the Service (plus ``service.kubernetes.io/headless`` for headless
ones), ``endpoints.kubernetes.io/last-change-trigger-time`` records the earliest change
behind an update, and more than 1000 addresses are truncated and annotated as upstream.

The helpers that decide which pods count and how their ports resolve are shared with the
EndpointSlice controller (``controllers.endpointslice``), so the two never disagree, and the
key design choice is the same as upstream's: every Service is reconciled whole from the
informer caches (pods and services), never patched incrementally, so a missed event is
corrected by the next one.
"""

from __future__ import annotations

import ipaddress
import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final

from kubeling.client.controller import Controller
from kubeling.client.events import WARNING, EventRecorder
from kubeling.client.informer import Informer, object_key, split_key
from kubeling.client.interface import Client
from kubeling.machinery import objects
from kubeling.machinery.errors import AlreadyExists, Forbidden, NotFound
from kubeling.machinery.resources import ENDPOINTS, PODS, SERVICES
from kubeling.machinery.selectors import selector_from_set
from kubeling.machinery.types import Obj

log = logging.getLogger(__name__)

COMPONENT: Final = "endpoint-controller"
HEADLESS_LABEL: Final = "service.kubernetes.io/headless"
TRIGGER_TIME_ANNOTATION: Final = "endpoints.kubernetes.io/last-change-trigger-time"
OVER_CAPACITY_ANNOTATION: Final = "endpoints.kubernetes.io/over-capacity"
TOLERATE_UNREADY_ANNOTATION: Final = "service.alpha.kubernetes.io/tolerate-unready-endpoints"
MAX_CAPACITY: Final = 1000
NAMESPACE_TERMINATING_CAUSE: Final = "NamespaceTerminating"
LEADER_ANNOTATION: Final = "control-plane.alpha.kubernetes.io/leader"


# --- helpers shared with the EndpointSlice controller ----------------------------------------


is_pod_ready = objects.is_pod_ready


def pod_ips(pod: Obj) -> list[str]:
    """``status.podIPs`` (or the single ``status.podIP`` an older writer set)."""
    status = pod.get("status") or {}
    ips = [p.get("ip") for p in status.get("podIPs") or [] if isinstance(p, dict)]
    out = [ip for ip in ips if isinstance(ip, str) and ip]
    if not out and isinstance(status.get("podIP"), str) and status["podIP"]:
        out = [status["podIP"]]
    return out


def is_ipv6(ip: str) -> bool:
    try:
        return ipaddress.ip_address(ip).version == 6
    except ValueError:
        return False


def should_pod_be_in_endpoints(pod: Obj, *, include_terminating: bool) -> bool:
    """upstream ``ShouldPodBeInEndpoints``: not terminal, has an IP, and not terminating
    unless asked to include terminating pods."""
    phase = (pod.get("status") or {}).get("phase")
    if phase in ("Succeeded", "Failed"):
        return False
    if not pod_ips(pod):
        return False
    return include_terminating or not objects.deletion_timestamp(pod)


def should_set_hostname(pod: Obj, svc: Obj) -> bool:
    """upstream ``ShouldSetHostname``: the pod names a hostname and the Service as its
    subdomain (in the same namespace)."""
    spec = pod.get("spec") or {}
    return (
        bool(spec.get("hostname"))
        and spec.get("subdomain") == objects.name(svc)
        and objects.namespace(svc) == objects.namespace(pod)
    )


def is_headless(svc: Obj) -> bool:
    return (svc.get("spec") or {}).get("clusterIP") == "None"


def service_families(svc: Obj) -> list[str]:
    """The Service's IP families; the legacy guess (from its cluster IP) when unset."""
    spec = svc.get("spec") or {}
    families = [f for f in spec.get("ipFamilies") or [] if f in ("IPv4", "IPv6")]
    if families:
        return families
    ip = spec.get("clusterIP") or ""
    if ip and ip != "None":
        return ["IPv6" if is_ipv6(ip) else "IPv4"]
    return []


def pod_ip_for_family(pod: Obj, family: str) -> str | None:
    want_v6 = family == "IPv6"
    for ip in pod_ips(pod):
        if is_ipv6(ip) == want_v6:
            return ip
    return None


def pod_ip_for_service(svc: Obj, pod: Obj) -> str | None:
    """upstream ``podToEndpointAddressForService``: the pod IP of the Service's first
    family (without families: of the cluster IP's family, or the pod's own first IP's)."""
    families = service_families(svc)
    if families:
        return pod_ip_for_family(pod, families[0])
    ips = pod_ips(pod)
    return pod_ip_for_family(pod, "IPv6" if is_ipv6(ips[0]) else "IPv4") if ips else None


def find_port(pod: Obj, service_port: Obj) -> int | None:
    """upstream ``podutil.FindPort``: a numeric targetPort as is; a named one looked up in
    the pod's containers (same name and protocol); None when the pod has no such port."""
    target = service_port.get("targetPort")
    if target is None:
        target = service_port.get("port")
    if isinstance(target, int) and not isinstance(target, bool):
        return target
    if not isinstance(target, str):
        return None
    protocol = service_port.get("protocol") or "TCP"
    spec = pod.get("spec") or {}
    containers = list(spec.get("containers") or [])
    # Sidecars (restartable init containers) serve ports too, as upstream since 1.29.
    containers += [
        c for c in spec.get("initContainers") or [] if (c or {}).get("restartPolicy") == "Always"
    ]
    for container in containers:
        for port in (container or {}).get("ports") or []:
            if port.get("name") == target and (port.get("protocol") or "TCP") == protocol:
                value = port.get("containerPort")
                return int(value) if isinstance(value, int) else None
    return None


def target_ref(pod: Obj) -> Obj:
    return {
        "kind": "Pod",
        "namespace": objects.namespace(pod),
        "name": objects.name(pod),
        "uid": objects.uid(pod),
    }


def tolerates_unready(svc: Obj) -> bool:
    """``publishNotReadyAddresses``, or the deprecated annotation the Endpoints controller
    still honours."""
    if (svc.get("spec") or {}).get("publishNotReadyAddresses") is True:
        return True
    value = objects.annotations(svc).get(TOLERATE_UNREADY_ANNOTATION, "")
    return value.lower() in ("1", "t", "true")


def service_selects(svc: Obj, labels: dict[str, str]) -> bool:
    selector = (svc.get("spec") or {}).get("selector")
    if not selector:
        return False
    return selector_from_set(selector).matches(labels)


def selected_pods(svc: Obj, pods: Iterable[Obj]) -> list[Obj]:
    selector = (svc.get("spec") or {}).get("selector") or {}
    matcher = selector_from_set(selector)
    return [p for p in pods if matcher.matches(objects.labels(p))]


def _parse_time(text: object) -> datetime | None:
    if not isinstance(text, str) or not text:
        return None
    try:
        return objects.parse_rfc3339(text)
    except ValueError:
        return None


@dataclass
class _TriggerState:
    pods: dict[str, datetime] = field(default_factory=dict)
    service: datetime | None = None


class TriggerTimeTracker:
    """upstream ``TriggerTimeTracker``: the earliest trigger time (a pod's Ready transition,
    or the Service's creation) that changed since the last sync of a Service."""

    def __init__(self) -> None:
        self._state: dict[str, _TriggerState] = {}

    def compute(self, key: str, svc: Obj, pods: Iterable[Obj]) -> datetime | None:
        state = self._state.setdefault(key, _TriggerState())
        earliest: datetime | None = None
        seen: dict[str, datetime] = {}
        for pod in pods:
            cond = objects.get_condition((pod.get("status") or {}).get("conditions"), "Ready")
            t = _parse_time((cond or {}).get("lastTransitionTime"))
            if t is None:
                continue
            name = objects.name(pod)
            seen[name] = t
            last = state.pods.get(name)
            if last is None or t > last:
                earliest = t if earliest is None else min(earliest, t)
        created = _parse_time(objects.meta(svc).get("creationTimestamp"))
        if created is not None and (state.service is None or created > state.service):
            earliest = created if earliest is None else min(earliest, created)
        state.pods = seen
        state.service = created
        return earliest

    def forget(self, key: str) -> None:
        self._state.pop(key, None)


def format_trigger_time(t: datetime) -> str:
    """``time.RFC3339Nano`` of a whole-second time: ``2026-01-02T03:04:05Z``."""
    text = t.strftime("%Y-%m-%dT%H:%M:%S")
    if t.microsecond:
        text += ("." + f"{t.microsecond:06d}").rstrip("0")
    return text + "Z"


class ObjectRefs:
    """The objects an informer caches, by namespace and name, *without copying*.

    ``Informer.list`` deep-copies every object it returns, which for a namespace of pods
    (managedFields included) costs far more than the reconcile that reads them. Handlers
    receive the cached objects themselves, which the informer replaces (never mutates) on
    update, so holding references is safe as long as callers treat them as read-only;
    a caller that wants to change one copies it first.
    """

    def __init__(self, informer: Informer, *, group: Any = None) -> None:
        self._group = group or (lambda obj: objects.namespace(obj))
        self._items: dict[str, dict[str, Obj]] = {}
        self._where: dict[str, str] = {}
        informer.add_handler(
            on_add=self._put, on_update=lambda _old, new: self._put(new), on_delete=self._drop
        )

    def _put(self, obj: Obj) -> None:
        key = object_key(obj)
        group = self._group(obj)
        previous = self._where.get(key)
        if previous is not None and previous != group:
            self._items.get(previous, {}).pop(key, None)
        if group is None:
            self._where.pop(key, None)
            return
        self._items.setdefault(group, {})[key] = obj
        self._where[key] = group

    def _drop(self, obj: Obj) -> None:
        key = object_key(obj)
        group = self._where.pop(key, None)
        if group is not None:
            bucket = self._items.get(group)
            if bucket is not None:
                bucket.pop(key, None)
                if not bucket:
                    del self._items[group]

    def list(self, group: str) -> list[Obj]:
        """The cached objects of ``group`` (a namespace by default), read-only."""
        return list((self._items.get(group) or {}).values())

    def get(self, key: str) -> Obj | None:
        group = self._where.get(key)
        return None if group is None else self._items[group].get(key)


def pod_service_keys(services: ObjectRefs, pod: Obj, *extra_labels: dict[str, str]) -> set[str]:
    """Keys of the Services in the pod's namespace that select it (under any of the given
    label sets: an update checks old and new labels)."""
    namespace = objects.namespace(pod)
    label_sets = [objects.labels(pod), *extra_labels]
    keys: set[str] = set()
    for svc in services.list(namespace):
        if any(service_selects(svc, labels) for labels in label_sets):
            keys.add(object_key(svc))
    return keys


def pod_endpoints_changed(old: Obj, new: Obj) -> bool:
    """Whether a pod update can change any endpoint (upstream ``podEndpointsChanged``)."""
    if objects.labels(old) != objects.labels(new):
        return True
    if bool(objects.deletion_timestamp(old)) != bool(objects.deletion_timestamp(new)):
        return True
    if is_pod_ready(old) != is_pod_ready(new):
        return True
    if pod_ips(old) != pod_ips(new):
        return True
    ospec, nspec = old.get("spec") or {}, new.get("spec") or {}
    for key in ("hostname", "subdomain", "nodeName", "containers", "initContainers"):
        if ospec.get(key) != nspec.get(key):
            return True
    return (old.get("status") or {}).get("phase") != (new.get("status") or {}).get("phase")


# --- the controller ---------------------------------------------------------------------------


def _port_key(port: Obj) -> tuple[str, int, str]:
    return (str(port.get("name") or ""), int(port.get("port") or 0), str(port.get("protocol")))


def _address_key(addr: Obj) -> tuple[Any, ...]:
    # upstream sorts by IP, then by target uid
    return (addr.get("ip") or "", ((addr.get("targetRef") or {}).get("uid") or ""))


def build_subsets(svc: Obj, pods: Iterable[Obj]) -> tuple[list[Obj], int, int]:
    """The Service's ``subsets`` (already repacked and sorted) and the ready and not-ready
    address counts."""
    spec = svc.get("spec") or {}
    tolerate = tolerates_unready(svc)
    ports = [p for p in spec.get("ports") or [] if isinstance(p, dict)]
    groups: dict[tuple[tuple[str, int, str], ...], tuple[list[Obj], list[Obj], list[Obj]]] = {}
    ready_count = not_ready_count = 0
    for pod in pods:
        if not should_pod_be_in_endpoints(pod, include_terminating=tolerate):
            continue
        ip = pod_ip_for_service(svc, pod)
        if ip is None:
            continue
        addr: Obj = {"ip": ip}
        if should_set_hostname(pod, svc):
            addr["hostname"] = (pod.get("spec") or {})["hostname"]
        node = (pod.get("spec") or {}).get("nodeName")
        if node:
            addr["nodeName"] = node
        addr["targetRef"] = target_ref(pod)
        resolved: list[Obj] = []
        if ports:
            for sp in ports:
                number = find_port(pod, sp)
                if number is None:
                    log.debug(
                        "Failed to find port %s of service %s on pod %s.",
                        sp.get("name") or sp.get("port"),
                        objects.namespaced_name(svc),
                        objects.namespaced_name(pod),
                    )
                    continue
                ep: Obj = {"port": number, "protocol": sp.get("protocol") or "TCP"}
                if sp.get("name"):
                    ep["name"] = sp["name"]
                if sp.get("appProtocol"):
                    ep["appProtocol"] = sp["appProtocol"]
                resolved.append(ep)
            if not resolved:
                continue
        elif not is_headless(svc):
            # Only headless Services may have no ports.
            continue
        resolved.sort(key=_port_key)
        key = tuple(_port_key(p) for p in resolved)
        group = groups.setdefault(key, (resolved, [], []))
        if tolerate or is_pod_ready(pod):
            group[1].append(addr)
            ready_count += 1
        else:
            group[2].append(addr)
            not_ready_count += 1
    subsets: list[Obj] = []
    for key in sorted(groups):
        resolved, ready, not_ready = groups[key]
        subset: Obj = {}
        if ready:
            subset["addresses"] = sorted(ready, key=_address_key)
        if not_ready:
            subset["notReadyAddresses"] = sorted(not_ready, key=_address_key)
        if resolved:
            subset["ports"] = resolved
        subsets.append(subset)
    return subsets, ready_count, not_ready_count


def truncate(subsets: list[Obj]) -> bool:
    """upstream ``truncateEndpoints``: keep at most 1000 addresses, ready ones first,
    spread over subsets in proportion; True when anything was cut."""
    total_ready = sum(len(s.get("addresses") or []) for s in subsets)
    total_not_ready = sum(len(s.get("notReadyAddresses") or []) for s in subsets)
    if total_ready + total_not_ready <= MAX_CAPACITY:
        return False
    truncate_ready = total_ready > MAX_CAPACITY
    limit = MAX_CAPACITY if truncate_ready else MAX_CAPACITY - total_ready
    total = total_ready if truncate_ready else total_not_ready
    room = limit
    field_name = "addresses" if truncate_ready else "notReadyAddresses"
    for subset in subsets:
        have = subset.get(field_name) or []
        share = -(-len(have) * limit // total) if total else 0
        share = min(share, room)
        if have:
            subset[field_name] = have[:share]
        if truncate_ready:
            subset.pop("notReadyAddresses", None)
        room -= len(subset.get(field_name) or [])
    for subset in subsets:
        if not subset.get(field_name):
            subset.pop(field_name, None)
    return True


class EndpointsController(Controller):
    name = "endpoint"

    def __init__(
        self,
        *,
        client: Client,
        services: Informer,
        pods: Informer,
        endpoints: Informer,
        recorder: EventRecorder | None = None,
    ) -> None:
        super().__init__(workers=2)
        self.client = client
        self.services = services
        self.pods = pods
        self.endpoints = endpoints
        self.recorder = recorder
        self.triggers = TriggerTimeTracker()
        self.service_refs = ObjectRefs(services)
        self.pod_refs = ObjectRefs(pods)
        self._replaced: dict[str, str] = {}
        """Service key → the Endpoints resourceVersion this controller last overwrote
        (upstream's ``staleEndpointsTracker``): while the cache shows it, wait for the
        cache instead of syncing from it."""
        self.watch(services)
        pods.add_handler(
            on_add=self._pod_added, on_update=self._pod_updated, on_delete=self._pod_added
        )
        self.wait_for(pods)
        endpoints.add_handler(
            on_add=self._endpoints_listed, on_delete=lambda ep: self.enqueue(object_key(ep))
        )
        self.wait_for(endpoints)

    def _endpoints_listed(self, ep: Obj) -> None:
        """upstream ``checkLeftoverEndpoints``: Endpoints found by the first list are synced
        once, so those whose Service went away while no controller ran are deleted. Later
        adds are left alone (someone may create Endpoints before their Service)."""
        if self.endpoints.has_synced:
            return
        if LEADER_ANNOTATION in objects.annotations(ep):
            return
        self.enqueue(object_key(ep))

    def _pod_added(self, pod: Obj) -> None:
        for key in pod_service_keys(self.service_refs, pod):
            self.enqueue(key)

    def _pod_updated(self, old: Obj, new: Obj) -> None:
        if not pod_endpoints_changed(old, new):
            return
        for key in pod_service_keys(self.service_refs, new, objects.labels(old)):
            self.enqueue(key)

    async def reconcile(self, key: str) -> None:
        namespace, name = split_key(key)
        svc = self.service_refs.get(key)
        if svc is None:
            self.triggers.forget(key)
            self._replaced.pop(key, None)
            # upstream deletes the Endpoints of a Service that is gone (the Service may
            # have been recreated meanwhile: the next add re-creates them).
            if self.endpoints.get(key) is not None:
                try:
                    await self.client.delete(ENDPOINTS, name=name, namespace=namespace)
                except NotFound:
                    pass
            return
        spec = svc.get("spec") or {}
        if spec.get("type") == "ExternalName" or spec.get("selector") is None:
            # ExternalName Services get no endpoints; selectorless ones are managed by hand.
            return
        current = self.endpoints.get(key)
        replaced = self._replaced.get(key)
        if current is not None and replaced is not None:
            if objects.resource_version(current) == replaced:
                self.enqueue_after(key, 0.005)
                return
            del self._replaced[key]
        pods = selected_pods(svc, self.pod_refs.list(namespace))
        trigger = self.triggers.compute(key, svc, pods)
        subsets, ready, not_ready = build_subsets(svc, pods)
        svc_labels = dict(objects.labels(svc))
        if current is not None:
            labels = {k: v for k, v in objects.labels(current).items() if k != HEADLESS_LABEL}
            over = OVER_CAPACITY_ANNOTATION in objects.annotations(current)
            count = ready + not_ready
            if (
                (current.get("subsets") or []) == subsets
                and labels == svc_labels
                and over == (count > MAX_CAPACITY)
            ):
                return
        body: Obj = (
            current
            if current is not None
            else {
                "apiVersion": "v1",
                "kind": "Endpoints",
                "metadata": {"name": name, "namespace": namespace},
            }
        )
        body.setdefault("apiVersion", "v1")
        body.setdefault("kind", "Endpoints")
        meta = objects.ensure_meta(body)
        annotations = dict(meta.get("annotations") or {})
        if trigger is not None:
            annotations[TRIGGER_TIME_ANNOTATION] = format_trigger_time(trigger)
        else:
            annotations.pop(TRIGGER_TIME_ANNOTATION, None)
        if truncate(subsets):
            annotations[OVER_CAPACITY_ANNOTATION] = "truncated"
        else:
            annotations.pop(OVER_CAPACITY_ANNOTATION, None)
        labels = dict(svc_labels)
        if is_headless(svc):
            labels[HEADLESS_LABEL] = ""
        meta["labels"] = labels
        if annotations:
            meta["annotations"] = annotations
        else:
            meta.pop("annotations", None)
        if subsets:
            body["subsets"] = subsets
        else:
            body.pop("subsets", None)
        log.debug(
            "Updating endpoints of service %s: %d ready, %d not ready.", key, ready, not_ready
        )
        try:
            if current is None:
                await self.client.create(ENDPOINTS, body, namespace=namespace)
            else:
                replaced = objects.resource_version(body)
                await self.client.update(ENDPOINTS, body)
                self._replaced[key] = replaced
        except Forbidden as e:
            if current is None and any(
                c.reason == NAMESPACE_TERMINATING_CAUSE for c in getattr(e, "causes", ()) or ()
            ):
                return
            self._failed(body, current is None, key, e)
            raise
        except AlreadyExists:
            # Our cache lags a create (ours or someone's): retry once it catches up.
            self.enqueue_after(key, 0.05)
        except Exception as e:
            if not isinstance(e, NotFound):
                self._failed(body, current is None, key, e)
            raise

    def _failed(self, body: Obj, create: bool, key: str, e: Exception) -> None:
        if self.recorder is None:
            return
        namespace, name = split_key(key)
        if create:
            self.recorder.event(
                body,
                WARNING,
                "FailedToCreateEndpoint",
                f"Failed to create endpoint for service {namespace}/{name}: {e}",
            )
        else:
            self.recorder.event(
                body,
                WARNING,
                "FailedToUpdateEndpoint",
                f"Failed to update endpoint {namespace}/{name}: {e}",
            )


def build(ctx: Any) -> EndpointsController:
    return EndpointsController(
        client=ctx.client,
        services=ctx.informers.informer(SERVICES),
        pods=ctx.informers.informer(PODS),
        endpoints=ctx.informers.informer(ENDPOINTS),
        recorder=ctx.recorder(COMPONENT),
    )
