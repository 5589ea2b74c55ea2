"""Server-side printing: the ``meta.k8s.io/v1`` Table columns and cells of every kind.

Columns and cell texts are upstream v1.32's ``pkg/printers/internalversion`` ones because
kubectl prints whatever the server sends: ``kubectl get pods`` looks right only if STATUS is
computed the way upstream computes it. As on the upstream API server, rows always carry the
wide (priority 1) cells too; kubectl hides those columns unless ``-o wide``. Ages are
``duration.HumanDuration`` texts computed against the ``now`` the caller passes, so that
tests and list responses are deterministic.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any, Final

from kubeling.machinery.objects import claim_class, is_default_class, volume_class
from kubeling.machinery.types import Obj
from kubeling.registry.strategy import AGE_COLUMN, NAME_COLUMN, Column
from kubeling.registry.validation import format_labels, quantity, selector_string

if TYPE_CHECKING:
    from kubeling.registry.strategy import Strategy

# -- times -----------------------------------------------------------------------------------


def parse_time(text: Any) -> float | None:
    """Epoch seconds of an RFC 3339 (micro)time, or None when absent or unparseable."""
    if not text or not isinstance(text, str):
        return None
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def human_duration(seconds: float) -> str:
    """Upstream ``duration.HumanDuration``: two significant units at most, coarser with age."""
    s = int(seconds)
    if s < -1:
        return "<invalid>"
    if s < 0:
        return "0s"
    if s < 60 * 2:
        return f"{s}s"
    minutes = s // 60
    if minutes < 10:
        rest = s % 60
        return f"{minutes}m" if rest == 0 else f"{minutes}m{rest}s"
    if minutes < 60 * 3:
        return f"{minutes}m"
    hours = s // 3600
    if hours < 8:
        rest = minutes % 60
        return f"{hours}h" if rest == 0 else f"{hours}h{rest}m"
    if hours < 48:
        return f"{hours}h"
    if hours < 24 * 8:
        rest = hours % 24
        return f"{hours // 24}d" if rest == 0 else f"{hours // 24}d{rest}h"
    if hours < 24 * 365 * 2:
        return f"{hours // 24}d"
    if hours < 24 * 365 * 8:
        days = (hours // 24) % 365
        years = hours // 24 // 365
        return f"{years}y" if days == 0 else f"{years}y{days}d"
    return f"{hours // 24 // 365}y"


def since(timestamp: Any, *, now: float) -> str:
    """Upstream ``translateTimestampSince``: ``<unknown>`` for a missing timestamp."""
    t = parse_time(timestamp)
    if t is None:
        return "<unknown>"
    return human_duration(now - t)


def age(obj: Obj, *, now: float) -> str:
    """The AGE cell: time since ``metadata.creationTimestamp``."""
    return since((obj.get("metadata") or {}).get("creationTimestamp"), now=now)


# -- shared helpers --------------------------------------------------------------------------

_ACCESS_MODE_SHORT: Final = (
    ("ReadWriteOnce", "RWO"),
    ("ReadOnlyMany", "ROX"),
    ("ReadWriteMany", "RWX"),
    ("ReadWriteOncePod", "RWOP"),
)


def access_modes_string(modes: Iterable[str] | None) -> str:
    """Upstream ``GetAccessModesAsString``: fixed order, no duplicates."""
    present = set(modes or ())
    return ",".join(short for mode, short in _ACCESS_MODE_SHORT if mode in present)


def quantity_string(value: Any) -> str:
    """A quantity as upstream's ``Quantity.String()`` prints it (canonical form)."""
    if value is None:
        return "0"
    q = quantity(value)
    return str(q) if q is not None else str(value)


def _meta(obj: Obj) -> dict[str, Any]:
    return obj.get("metadata") or {}


def _spec(obj: Obj) -> dict[str, Any]:
    return obj.get("spec") or {}


def _status(obj: Obj) -> dict[str, Any]:
    return obj.get("status") or {}


def _name(obj: Obj) -> str:
    return str(_meta(obj).get("name", ""))


def _deleting(obj: Obj) -> bool:
    return bool(_meta(obj).get("deletionTimestamp"))


def _template_containers(obj: Obj) -> tuple[str, str]:
    containers = ((_spec(obj).get("template") or {}).get("spec") or {}).get("containers") or []
    names = ",".join(c.get("name", "") for c in containers)
    images = ",".join(c.get("image", "") for c in containers)
    return names, images


def _unset(value: Any) -> str:
    """Upstream prints ``<unset>`` for a nil pointer field, the value otherwise."""
    return "<unset>" if value is None else str(value)


def _list_with_more(items: list[str], more: bool, count: int, limit: int) -> str:
    text = ",".join(items)
    return f"{text} + {count - limit} more..." if more else text


def _col(name: str, description: str, *, type: str = "string", priority: int = 0) -> Column:
    return Column(name=name, type=type, description=description, priority=priority)


_CONTAINERS_COL: Final = _col("Containers", "Names of each container in the template.", priority=1)
_IMAGES_COL: Final = _col(
    "Images", "Images referenced by each container in the template.", priority=1
)

# -- Pod -------------------------------------------------------------------------------------

NODE_UNREACHABLE_REASON: Final = "NodeLost"

POD_COLUMNS: Final = [
    NAME_COLUMN,
    _col("Ready", "The aggregate readiness state of this pod for accepting traffic."),
    _col("Status", "The aggregate status of the containers in this pod."),
    _col(
        "Restarts",
        "The number of times the containers in this pod have been restarted and when the last "
        "container in this pod has restarted.",
    ),
    AGE_COLUMN,
    _col("IP", "The IP address assigned to this pod.", priority=1),
    _col("Node", "The name of the node this pod runs on.", priority=1),
    _col("Nominated Node", "The name of the node where this pod is nominated to run.", priority=1),
    _col("Readiness Gates", "The pod readiness gates that are satisfied.", priority=1),
]


def _condition_true(status: Mapping[str, Any], kind: str) -> bool:
    return any(
        c.get("type") == kind and c.get("status") == "True" for c in status.get("conditions") or []
    )


def _terminated_reason(term: Mapping[str, Any], prefix: str = "") -> str:
    if term.get("reason"):
        return prefix + str(term["reason"])
    if term.get("signal"):
        return f"{prefix}Signal:{term['signal']}"
    return f"{prefix}ExitCode:{term.get('exitCode', 0)}"


def _pod_ip(status: Mapping[str, Any]) -> str:
    ips = status.get("podIPs") or []
    ip = ips[0].get("ip", "") if ips else status.get("podIP", "")
    return str(ip) if ip else "<none>"


def pod_row(pod: Obj, *, now: float) -> list[Any]:
    """Upstream ``printPod``: READY, the STATUS reason and RESTARTS with its last time."""
    spec, status = _spec(pod), _status(pod)
    init_specs = spec.get("initContainers") or []
    sidecars = {c.get("name") for c in init_specs if c.get("restartPolicy") == "Always"}
    total = len(spec.get("containers") or []) + len(sidecars)
    ready = 0
    restarts = 0
    last_restart: float | None = None
    reason = status.get("reason") or status.get("phase") or ""
    for cond in status.get("conditions") or []:
        if cond.get("type") == "PodScheduled" and cond.get("reason") == "SchedulingGated":
            reason = "SchedulingGated"

    def note_restart(cs: Mapping[str, Any]) -> None:
        nonlocal last_restart
        finished = parse_time(
            ((cs.get("lastState") or {}).get("terminated") or {}).get("finishedAt")
        )
        if finished is not None and (last_restart is None or finished > last_restart):
            last_restart = finished

    initializing = False
    sidecar_restarts = 0
    sidecar_last: float | None = None
    init_statuses = status.get("initContainerStatuses") or []
    for i, cs in enumerate(init_statuses):
        restarts += int(cs.get("restartCount") or 0)
        note_restart(cs)
        state = cs.get("state") or {}
        term, waiting = state.get("terminated"), state.get("waiting")
        is_sidecar = cs.get("name") in sidecars
        if is_sidecar:
            sidecar_restarts += int(cs.get("restartCount") or 0)
            finished = parse_time(
                ((cs.get("lastState") or {}).get("terminated") or {}).get("finishedAt")
            )
            if finished is not None and (sidecar_last is None or finished > sidecar_last):
                sidecar_last = finished
        if term is not None and term.get("exitCode", 0) == 0:
            continue
        if is_sidecar and cs.get("started"):
            if cs.get("ready"):
                ready += 1
            continue
        if term is not None:
            reason = _terminated_reason(term, "Init:")
        elif waiting and waiting.get("reason") and waiting.get("reason") != "PodInitializing":
            reason = "Init:" + str(waiting["reason"])
        else:
            reason = f"Init:{i}/{len(init_specs)}"
        initializing = True
        break

    if not initializing or _condition_true(status, "Initialized"):
        # only sidecars' restarts count once the pod is initialized
        restarts, last_restart = sidecar_restarts, sidecar_last
        has_running = False
        for cs in reversed(status.get("containerStatuses") or []):
            restarts += int(cs.get("restartCount") or 0)
            note_restart(cs)
            state = cs.get("state") or {}
            waiting, term = state.get("waiting"), state.get("terminated")
            if waiting and waiting.get("reason"):
                reason = str(waiting["reason"])
            elif term is not None:
                reason = _terminated_reason(term)
            elif cs.get("ready") and state.get("running") is not None:
                has_running = True
                ready += 1
        if reason == "Completed" and has_running:
            reason = "Running" if _condition_true(status, "Ready") else "NotReady"

    phase = status.get("phase")
    if _deleting(pod) and status.get("reason") == NODE_UNREACHABLE_REASON:
        reason = "Unknown"
    elif _deleting(pod) and phase not in ("Succeeded", "Failed"):
        reason = "Terminating"

    restarts_text = str(restarts)
    if restarts and last_restart is not None:
        restarts_text = f"{restarts} ({human_duration(now - last_restart)} ago)"

    gates = spec.get("readinessGates") or []
    if gates:
        true_types = {
            c.get("type") for c in status.get("conditions") or [] if c.get("status") == "True"
        }
        passed = sum(1 for g in gates if g.get("conditionType") in true_types)
        gates_text = f"{passed}/{len(gates)}"
    else:
        gates_text = "<none>"
    return [
        _name(pod),
        f"{ready}/{total}",
        reason,
        restarts_text,
        age(pod, now=now),
        _pod_ip(status),
        spec.get("nodeName") or "<none>",
        status.get("nominatedNodeName") or "<none>",
        gates_text,
    ]


# -- storage ---------------------------------------------------------------------------------

PVC_COLUMNS: Final = [
    NAME_COLUMN,
    _col(
        "Status", "PersistentVolumeClaimStatus is the current status of a persistent volume claim."
    ),
    _col(
        "Volume", "VolumeName is the binding reference to the PersistentVolume backing this claim."
    ),
    _col("Capacity", "Capacity represents the actual resources of the underlying volume."),
    _col(
        "Access Modes",
        "AccessModes contains the actual access modes the volume backing the PVC has.",
    ),
    _col("StorageClass", "StorageClass of the pvc"),
    _col("VolumeAttributesClass", "VolumeAttributesClass of the pvc"),
    AGE_COLUMN,
    _col(
        "VolumeMode", "VolumeMode defines what type of volume is required by the claim.", priority=1
    ),
]


def pvc_row(pvc: Obj, *, now: float) -> list[Any]:
    spec, status = _spec(pvc), _status(pvc)
    phase = "Terminating" if _deleting(pvc) else status.get("phase", "")
    capacity = access = ""
    if spec.get("volumeName"):
        access = access_modes_string(status.get("accessModes"))
        capacity = quantity_string((status.get("capacity") or {}).get("storage"))
    return [
        _name(pvc),
        phase,
        spec.get("volumeName", ""),
        capacity,
        access,
        claim_class(pvc),
        _unset(spec.get("volumeAttributesClassName")),
        age(pvc, now=now),
        _unset(spec.get("volumeMode")),
    ]


PV_COLUMNS: Final = [
    NAME_COLUMN,
    _col(
        "Capacity", "capacity is the description of the persistent volume's resources and capacity."
    ),
    _col("Access Modes", "accessModes contains all ways the volume can be mounted."),
    _col(
        "Reclaim Policy",
        "persistentVolumeReclaimPolicy defines what happens to a persistent volume when released from its claim.",
    ),
    _col(
        "Status",
        "phase indicates if a volume is available, bound to a claim, or released by a claim.",
    ),
    _col(
        "Claim",
        "claimRef is part of a bi-directional binding between PersistentVolume and PersistentVolumeClaim.",
    ),
    _col("StorageClass", "StorageClass of the pv"),
    _col("VolumeAttributesClass", "VolumeAttributesClass of the pv"),
    _col(
        "Reason",
        "reason is a brief CamelCase string that describes any failure and is meant for machine parsing and tidy display in the CLI.",
    ),
    AGE_COLUMN,
    _col(
        "VolumeMode",
        "volumeMode defines if a volume is intended to be used with a formatted filesystem or to remain in raw block state.",
        priority=1,
    ),
]


def pv_row(pv: Obj, *, now: float) -> list[Any]:
    spec, status = _spec(pv), _status(pv)
    ref = spec.get("claimRef")
    claim = f"{ref.get('namespace', '')}/{ref.get('name', '')}" if ref else ""
    return [
        _name(pv),
        quantity_string((spec.get("capacity") or {}).get("storage")),
        access_modes_string(spec.get("accessModes")),
        spec.get("persistentVolumeReclaimPolicy", ""),
        "Terminating" if _deleting(pv) else status.get("phase", ""),
        claim,
        volume_class(pv),
        _unset(spec.get("volumeAttributesClassName")),
        status.get("reason", ""),
        age(pv, now=now),
        _unset(spec.get("volumeMode")),
    ]


STORAGECLASS_COLUMNS: Final = [
    NAME_COLUMN,
    _col("Provisioner", "provisioner indicates the type of the provisioner."),
    _col(
        "ReclaimPolicy",
        "reclaimPolicy controls the reclaimPolicy for dynamically provisioned PersistentVolumes of this storage class.",
    ),
    _col(
        "VolumeBindingMode",
        "volumeBindingMode indicates how PersistentVolumeClaims should be provisioned and bound.",
    ),
    _col(
        "AllowVolumeExpansion",
        "allowVolumeExpansion shows whether the storage class allow volume expand.",
    ),
    AGE_COLUMN,
]


def storageclass_row(sc: Obj, *, now: float) -> list[Any]:
    name = _name(sc) + (" (default)" if is_default_class(sc) else "")
    return [
        name,
        sc.get("provisioner", ""),
        sc.get("reclaimPolicy") or "Delete",
        sc.get("volumeBindingMode") or "Immediate",
        bool(sc.get("allowVolumeExpansion", False)),
        age(sc, now=now),
    ]


# -- config ----------------------------------------------------------------------------------

CONFIGMAP_COLUMNS: Final = [
    NAME_COLUMN,
    _col("Data", "Data contains the configuration data."),
    AGE_COLUMN,
]


def configmap_row(cm: Obj, *, now: float) -> list[Any]:
    count = len(cm.get("data") or {}) + len(cm.get("binaryData") or {})
    return [_name(cm), count, age(cm, now=now)]


SECRET_COLUMNS: Final = [
    NAME_COLUMN,
    _col("Type", "Used to facilitate programmatic handling of secret data."),
    _col("Data", "Data contains the secret data."),
    AGE_COLUMN,
]


def secret_row(secret: Obj, *, now: float) -> list[Any]:
    return [
        _name(secret),
        secret.get("type", ""),
        len(secret.get("data") or {}),
        age(secret, now=now),
    ]


SERVICEACCOUNT_COLUMNS: Final = [
    NAME_COLUMN,
    _col(
        "Secrets",
        "Secrets is a list of the secrets in the same namespace that pods running using this ServiceAccount are allowed to use.",
    ),
    AGE_COLUMN,
]


def serviceaccount_row(sa: Obj, *, now: float) -> list[Any]:
    return [_name(sa), len(sa.get("secrets") or []), age(sa, now=now)]


# -- network ---------------------------------------------------------------------------------

SERVICE_COLUMNS: Final = [
    NAME_COLUMN,
    _col("Type", "type determines how the Service is exposed."),
    _col("Cluster-IP", "clusterIP is the IP address of the service."),
    _col(
        "External-IP",
        "externalIPs is a list of IP addresses for which nodes in the cluster will also accept traffic for this service.",
    ),
    _col("Port(s)", "The list of ports that are exposed by this service."),
    AGE_COLUMN,
    _col(
        "Selector",
        "Route service traffic to pods with label keys and values matching this selector.",
        priority=1,
    ),
]


def _service_external_ip(svc: Obj) -> str:
    spec = _spec(svc)
    kind = spec.get("type") or "ClusterIP"
    external = spec.get("externalIPs") or []
    if kind in ("ClusterIP", "NodePort"):
        return ",".join(external) if external else "<none>"
    if kind == "LoadBalancer":
        ingress = (_status(svc).get("loadBalancer") or {}).get("ingress") or []
        ips = [i.get("ip") or i.get("hostname") or "" for i in ingress]
        ips = [ip for ip in ips if ip] + list(external)
        return ",".join(ips) if ips else "<pending>"
    if kind == "ExternalName":
        return str(spec.get("externalName", ""))
    return "<unknown>"


def _service_ports(ports: list[dict[str, Any]]) -> str:
    parts = []
    for p in ports:
        proto = p.get("protocol") or "TCP"
        if p.get("nodePort"):
            parts.append(f"{p.get('port')}:{p['nodePort']}/{proto}")
        else:
            parts.append(f"{p.get('port')}/{proto}")
    return ",".join(parts)


def service_row(svc: Obj, *, now: float) -> list[Any]:
    spec = _spec(svc)
    cluster_ips = spec.get("clusterIPs") or ([spec["clusterIP"]] if spec.get("clusterIP") else [])
    return [
        _name(svc),
        spec.get("type") or "ClusterIP",
        cluster_ips[0] if cluster_ips else "<none>",
        _service_external_ip(svc),
        _service_ports(spec.get("ports") or []) or "<none>",
        age(svc, now=now),
        format_labels(spec.get("selector")),
    ]


ENDPOINTS_COLUMNS: Final = [
    NAME_COLUMN,
    _col("Endpoints", "The set of all endpoints is the union of all subsets."),
    AGE_COLUMN,
]


def _host_port(ip: str, port: Any) -> str:
    return f"[{ip}]:{port}" if ":" in ip else f"{ip}:{port}"


def format_endpoints(ep: Obj) -> str:
    subsets = ep.get("subsets") or []
    if not subsets:
        return "<none>"
    items: list[str] = []
    limit, more, count = 3, False, 0
    for ss in subsets:
        addresses = ss.get("addresses") or []
        ports = ss.get("ports") or []
        if not ports:
            count += len(addresses)
            for a in addresses:
                if len(items) == limit:
                    more = True
                    break
                items.append(a.get("ip", ""))
            continue
        for port in ports:
            count += len(addresses)
            for a in addresses:
                if len(items) == limit:
                    more = True
                    break
                items.append(_host_port(a.get("ip", ""), port.get("port")))
    return _list_with_more(items, more, count, limit)


def endpoints_row(ep: Obj, *, now: float) -> list[Any]:
    return [_name(ep), format_endpoints(ep), age(ep, now=now)]


ENDPOINTSLICE_COLUMNS: Final = [
    NAME_COLUMN,
    _col("AddressType", "The IP protocol for this slice"),
    _col("Ports", "The ports for this slice"),
    _col("Endpoints", "The endpoints for this slice"),
    AGE_COLUMN,
]


def endpointslice_row(es: Obj, *, now: float) -> list[Any]:
    limit = 3
    ports = es.get("ports") or []
    if ports:
        texts: list[str] = []
        for p in ports[:limit]:
            if p.get("port") is not None:
                texts.append(str(p["port"]))
            elif p.get("name") is not None:
                texts.append(str(p["name"]))
            else:
                texts.append("*")
        ports_text = _list_with_more(texts, len(ports) > limit, len(ports), limit)
    else:
        ports_text = "<unset>"
    endpoints = es.get("endpoints") or []
    if endpoints:
        addresses = [a for e in endpoints for a in e.get("addresses") or []]
        ep_text = _list_with_more(addresses[:limit], len(addresses) > limit, len(addresses), limit)
    else:
        ep_text = "<unset>"
    return [_name(es), es.get("addressType", ""), ports_text, ep_text, age(es, now=now)]


# -- cluster ---------------------------------------------------------------------------------

NAMESPACE_COLUMNS: Final = [
    NAME_COLUMN,
    _col("Status", "The status of the namespace"),
    AGE_COLUMN,
]


def namespace_row(ns: Obj, *, now: float) -> list[Any]:
    return [_name(ns), _status(ns).get("phase", ""), age(ns, now=now)]


NODE_COLUMNS: Final = [
    NAME_COLUMN,
    _col("Status", "The status of the node"),
    _col("Roles", "The roles of the node"),
    AGE_COLUMN,
    _col("Version", "Kubelet Version reported by the node."),
    _col("Internal-IP", "List of addresses reachable to the node.", priority=1),
    _col("External-IP", "List of addresses reachable to the node.", priority=1),
    _col(
        "OS-Image",
        "OS Image reported by the node from /etc/os-release (e.g. Debian GNU/Linux 7 (wheezy)).",
        priority=1,
    ),
    _col(
        "Kernel-Version",
        "Kernel Version reported by the node from 'uname -r' (e.g. 3.16.0-0.bpo.4-amd64).",
        priority=1,
    ),
    _col(
        "Container-Runtime",
        "ContainerRuntime Version reported by the node through runtime remote API (e.g. containerd://1.4.2).",
        priority=1,
    ),
]

_ROLE_PREFIX: Final = "node-role.kubernetes.io/"


def node_row(node: Obj, *, now: float) -> list[Any]:
    spec, status = _spec(node), _status(node)
    by_type = {c.get("type"): c for c in status.get("conditions") or []}
    states = []
    ready = by_type.get("Ready")
    if ready is not None:
        states.append("Ready" if ready.get("status") == "True" else "NotReady")
    if not states:
        states.append("Unknown")
    if spec.get("unschedulable"):
        states.append("SchedulingDisabled")
    roles = set()
    for key, value in (_meta(node).get("labels") or {}).items():
        if key.startswith(_ROLE_PREFIX) and key[len(_ROLE_PREFIX) :]:
            roles.add(key[len(_ROLE_PREFIX) :])
        elif key == "kubernetes.io/role" and value:
            roles.add(value)
    info = status.get("nodeInfo") or {}

    def address(kind: str) -> str:
        for a in status.get("addresses") or []:
            if a.get("type") == kind:
                return str(a.get("address", ""))
        return "<none>"

    return [
        _name(node),
        ",".join(states),
        ",".join(sorted(roles)) if roles else "<none>",
        age(node, now=now),
        info.get("kubeletVersion", ""),
        address("InternalIP"),
        address("ExternalIP"),
        info.get("osImage") or "<unknown>",
        info.get("kernelVersion") or "<unknown>",
        info.get("containerRuntimeVersion") or "<unknown>",
    ]


EVENT_COLUMNS: Final = [
    _col("Last Seen", "Time when this Event was last observed."),
    _col("Type", "Type of this event (Normal, Warning), new types could be added in the future"),
    _col(
        "Reason",
        "This should be a short, machine understandable string that gives the reason for the transition into the object's current status.",
    ),
    _col("Object", "The object that this event is about."),
    _col("Subobject", "If the event is about a subobject, the path to it.", priority=1),
    _col(
        "Source",
        "The component reporting this event. Should be a short machine understandable string.",
        priority=1,
    ),
    _col("Message", "A human-readable description of the status of this operation."),
    _col("First Seen", "Time when this Event was first observed.", priority=1),
    _col("Count", "The number of times this event has occurred.", priority=1),
    Column(name="Name", format="name", description=NAME_COLUMN.description, priority=1),
]


_EVENTS_V1_ONLY: Final = ("regarding", "note", "deprecatedSource", "deprecatedCount")


def is_events_v1(ev: Obj) -> bool:
    """Whether an Event is in the events.k8s.io/v1 shape (list items carry no apiVersion)."""
    if str(ev.get("apiVersion", "")).startswith("events.k8s.io/"):
        return True
    return "involvedObject" not in ev and any(k in ev for k in _EVENTS_V1_ONLY)


def event_row(ev: Obj, *, now: float) -> list[Any]:
    """``printEvent``; reads both the core/v1 and the events.k8s.io/v1 field names."""
    v1 = is_events_v1(ev)
    first_ts = ev.get("deprecatedFirstTimestamp") if v1 else ev.get("firstTimestamp")
    last_ts = ev.get("deprecatedLastTimestamp") if v1 else ev.get("lastTimestamp")
    first = since(first_ts, now=now) if first_ts else since(ev.get("eventTime"), now=now)
    last = since(last_ts, now=now) if last_ts else first
    count = (ev.get("deprecatedCount") if v1 else ev.get("count")) or 0
    series = ev.get("series")
    if series:
        last = since(series.get("lastObservedTime"), now=now)
        count = series.get("count") or 0
    elif count == 0:
        count = 1
    ref = (ev.get("regarding") if v1 else ev.get("involvedObject")) or {}
    kind = str(ref.get("kind", "")).lower()
    target = f"{kind}/{ref['name']}" if ref.get("name") else kind
    source = (ev.get("deprecatedSource") if v1 else ev.get("source")) or {}
    reporter = ev.get("reportingController") if v1 else ev.get("reportingComponent")
    component = source.get("component") or reporter or ""
    instance = source.get("host") or ev.get("reportingInstance") or ""
    message = (ev.get("note") if v1 else ev.get("message")) or ""
    return [
        last,
        ev.get("type", ""),
        ev.get("reason", ""),
        target,
        ref.get("fieldPath", ""),
        f"{component}, {instance}" if instance else component,
        message.strip(),
        first,
        int(count),
        _name(ev),
    ]


LEASE_COLUMNS: Final = [
    NAME_COLUMN,
    _col("Holder", "The holder of the lease"),
    AGE_COLUMN,
]


def lease_row(lease: Obj, *, now: float) -> list[Any]:
    return [_name(lease), _spec(lease).get("holderIdentity", ""), age(lease, now=now)]


# -- apps ------------------------------------------------------------------------------------

# upstream types these two "string" although their cells are integers (as it does ConfigMap
# and Secret DATA, Event COUNT and ControllerRevision REVISION); kubectl prints cells by
# value, so the definitions are kept exactly as upstream declares them.
DEPLOYMENT_COLUMNS: Final = [
    NAME_COLUMN,
    _col("Ready", "Number of the pod with ready state"),
    _col(
        "Up-to-date",
        "Total number of non-terminated pods targeted by this deployment that have the desired template spec.",
    ),
    _col(
        "Available",
        "Total number of available pods (ready for at least minReadySeconds) targeted by this deployment.",
    ),
    AGE_COLUMN,
    _CONTAINERS_COL,
    _IMAGES_COL,
    _col(
        "Selector",
        "Label selector for pods. Existing ReplicaSets whose pods are selected by this will be the ones affected by this deployment.",
        priority=1,
    ),
]


def deployment_row(d: Obj, *, now: float) -> list[Any]:
    spec, status = _spec(d), _status(d)
    names, images = _template_containers(d)
    return [
        _name(d),
        f"{status.get('readyReplicas', 0)}/{spec.get('replicas', 0)}",
        int(status.get("updatedReplicas", 0)),
        int(status.get("availableReplicas", 0)),
        age(d, now=now),
        names,
        images,
        selector_string(spec.get("selector")),
    ]


REPLICASET_COLUMNS: Final = [
    NAME_COLUMN,
    _col("Desired", "Replicas is the number of desired pods.", type="integer"),
    _col("Current", "Replicas is the most recently observed number of replicas.", type="integer"),
    _col("Ready", "The number of ready replicas for this replica set.", type="integer"),
    AGE_COLUMN,
    _CONTAINERS_COL,
    _IMAGES_COL,
    _col(
        "Selector",
        "Selector is a label query over pods that should match the replica count.",
        priority=1,
    ),
]


def replicaset_row(rs: Obj, *, now: float) -> list[Any]:
    spec, status = _spec(rs), _status(rs)
    names, images = _template_containers(rs)
    return [
        _name(rs),
        int(spec.get("replicas", 0)),
        int(status.get("replicas", 0)),
        int(status.get("readyReplicas", 0)),
        age(rs, now=now),
        names,
        images,
        selector_string(spec.get("selector")) or "<none>",
    ]


DAEMONSET_COLUMNS: Final = [
    NAME_COLUMN,
    _col(
        "Desired",
        "The total number of nodes that should be running the daemon pod (including nodes "
        "correctly running the daemon pod). More info: "
        "https://kubernetes.io/docs/concepts/workloads/controllers/daemonset/",
        type="integer",
    ),
    _col(
        "Current",
        "The number of nodes that are running at least 1 daemon pod and are supposed to run "
        "the daemon pod. More info: "
        "https://kubernetes.io/docs/concepts/workloads/controllers/daemonset/",
        type="integer",
    ),
    _col(
        "Ready",
        "numberReady is the number of nodes that should be running the daemon pod and have one "
        "or more of the daemon pod running with a Ready Condition.",
        type="integer",
    ),
    _col(
        "Up-to-date",
        "The total number of nodes that are running updated daemon pod",
        type="integer",
    ),
    _col(
        "Available",
        "The number of nodes that should be running the daemon pod and have one or more of the "
        "daemon pod running and available (ready for at least spec.minReadySeconds)",
        type="integer",
    ),
    _col(
        "Node Selector",
        "NodeSelector is a selector which must be true for the pod to fit on a node. Selector "
        "which must match a node's labels for the pod to be scheduled on that node. More info: "
        "https://kubernetes.io/docs/concepts/configuration/assign-pod-node/",
    ),
    AGE_COLUMN,
    _CONTAINERS_COL,
    _IMAGES_COL,
    _col(
        "Selector",
        "A label query over pods that are managed by the daemon set. Must match in order to be "
        "controlled. It must match the pod template's labels. More info: "
        "https://kubernetes.io/docs/concepts/overview/working-with-objects/labels/"
        "#label-selectors",
        priority=1,
    ),
]


def daemonset_row(ds: Obj, *, now: float) -> list[Any]:
    """upstream ``printDaemonSet``."""
    spec, status = _spec(ds), _status(ds)
    names, images = _template_containers(ds)
    node_selector = ((spec.get("template") or {}).get("spec") or {}).get("nodeSelector") or {}
    return [
        _name(ds),
        int(status.get("desiredNumberScheduled", 0)),
        int(status.get("currentNumberScheduled", 0)),
        int(status.get("numberReady", 0)),
        int(status.get("updatedNumberScheduled", 0)),
        int(status.get("numberAvailable", 0)),
        ",".join(f"{k}={node_selector[k]}" for k in sorted(node_selector)) or "<none>",
        age(ds, now=now),
        names,
        images,
        selector_string(spec.get("selector")) or "<none>",
    ]


REPLICATIONCONTROLLER_COLUMNS: Final = [
    NAME_COLUMN,
    _col(
        "Desired",
        "Replicas is the number of desired replicas. This is a pointer to distinguish between "
        "explicit zero and unspecified. Defaults to 1. More info: "
        "https://kubernetes.io/docs/concepts/workloads/controllers/replicationcontroller"
        "#what-is-a-replicationcontroller",
        type="integer",
    ),
    _col(
        "Current",
        "Replicas is the most recently observed number of replicas. More info: "
        "https://kubernetes.io/docs/concepts/workloads/controllers/replicationcontroller"
        "#what-is-a-replicationcontroller",
        type="integer",
    ),
    _col("Ready", "The number of ready replicas for this replication controller.", type="integer"),
    AGE_COLUMN,
    _CONTAINERS_COL,
    _IMAGES_COL,
    _col(
        "Selector",
        "Selector is a label query over pods that should match the Replicas count. If Selector "
        "is empty, it is defaulted to the labels present on the Pod template. Label keys and "
        "values that must match in order to be controlled by this replication controller, if "
        "empty defaulted to labels on Pod template. More info: "
        "https://kubernetes.io/docs/concepts/overview/working-with-objects/labels/"
        "#label-selectors",
        priority=1,
    ),
]


def replicationcontroller_row(rc: Obj, *, now: float) -> list[Any]:
    """upstream ``printReplicationController``: the selector is a plain label map."""
    spec, status = _spec(rc), _status(rc)
    names, images = _template_containers(rc)
    selector = spec.get("selector") or {}
    return [
        _name(rc),
        int(spec.get("replicas", 0)),
        int(status.get("replicas", 0)),
        int(status.get("readyReplicas", 0)),
        age(rc, now=now),
        names,
        images,
        ",".join(f"{k}={selector[k]}" for k in sorted(selector)) or "<none>",
    ]


STATEFULSET_COLUMNS: Final = [
    NAME_COLUMN,
    _col("Ready", "Number of the pod with ready state"),
    AGE_COLUMN,
    _CONTAINERS_COL,
    _IMAGES_COL,
]


def statefulset_row(sts: Obj, *, now: float) -> list[Any]:
    names, images = _template_containers(sts)
    ready = _status(sts).get("readyReplicas", 0)
    return [
        _name(sts),
        f"{ready}/{_spec(sts).get('replicas', 0)}",
        age(sts, now=now),
        names,
        images,
    ]


CONTROLLERREVISION_COLUMNS: Final = [
    NAME_COLUMN,
    _col("Controller", "Controller of the object"),
    _col("Revision", "Revision indicates the revision of the state represented by Data."),
    AGE_COLUMN,
]


def controllerrevision_row(cr: Obj, *, now: float) -> list[Any]:
    controller = "<none>"
    for ref in _meta(cr).get("ownerReferences") or []:
        if ref.get("controller"):
            group = str(ref.get("apiVersion", "")).rpartition("/")[0]
            kind = str(ref.get("kind", ""))
            group_kind = f"{kind}.{group}" if group else kind
            controller = (
                f"{group_kind.lower()}/{ref.get('name', '')}" if kind else ref.get("name", "")
            )
            break
    return [_name(cr), controller, int(cr.get("revision", 0)), age(cr, now=now)]


# -- lookup and Table ------------------------------------------------------------------------

Printer = tuple[list[Column], Callable[..., list[Any]]]

PRINTERS: Final[dict[str, Printer]] = {
    "Pod": (POD_COLUMNS, pod_row),
    "PersistentVolumeClaim": (PVC_COLUMNS, pvc_row),
    "PersistentVolume": (PV_COLUMNS, pv_row),
    "StorageClass": (STORAGECLASS_COLUMNS, storageclass_row),
    "ConfigMap": (CONFIGMAP_COLUMNS, configmap_row),
    "Secret": (SECRET_COLUMNS, secret_row),
    "ServiceAccount": (SERVICEACCOUNT_COLUMNS, serviceaccount_row),
    "Service": (SERVICE_COLUMNS, service_row),
    "Endpoints": (ENDPOINTS_COLUMNS, endpoints_row),
    "EndpointSlice": (ENDPOINTSLICE_COLUMNS, endpointslice_row),
    "Namespace": (NAMESPACE_COLUMNS, namespace_row),
    "Node": (NODE_COLUMNS, node_row),
    "Event": (EVENT_COLUMNS, event_row),
    "Lease": (LEASE_COLUMNS, lease_row),
    "Deployment": (DEPLOYMENT_COLUMNS, deployment_row),
    "ReplicaSet": (REPLICASET_COLUMNS, replicaset_row),
    "ReplicationController": (REPLICATIONCONTROLLER_COLUMNS, replicationcontroller_row),
    "DaemonSet": (DAEMONSET_COLUMNS, daemonset_row),
    "StatefulSet": (STATEFULSET_COLUMNS, statefulset_row),
    "ControllerRevision": (CONTROLLERREVISION_COLUMNS, controllerrevision_row),
}


def partial_metadata(obj: Obj) -> Obj:
    """The ``PartialObjectMetadata`` a row carries for ``includeObject=Metadata``."""
    return {
        "kind": "PartialObjectMetadata",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": dict(_meta(obj)),
    }


def build_table(
    strategy: Strategy,
    objects: Iterable[Obj],
    *,
    now: float,
    include_object: str = "Metadata",
    list_meta: Obj,
) -> Obj:
    """A ``meta.k8s.io/v1`` Table of ``objects``; ``include_object`` is the query parameter
    (``""``/``Metadata``, ``Object`` or ``None``; the caller rejects anything else)."""
    rows = []
    for obj in objects:
        row: dict[str, Any] = {"cells": strategy.row(obj, now=now)}
        if include_object in ("", "Metadata"):
            row["object"] = partial_metadata(obj)
        elif include_object == "Object":
            row["object"] = obj
        rows.append(row)
    return {
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": dict(list_meta),
        "columnDefinitions": [c.to_dict() for c in strategy.columns()],
        "rows": rows,
    }
