"""Node filters and the least-allocated score: what upstream's NodeUnschedulable,
TaintToleration, NodeAffinity, NodePorts and NodeResourcesFit plugins decide, as pure
functions.

Each filter answers ``None`` (the node passes) or a ``Rejection``: the plugin's reasons,
worded exactly as upstream's, and whether preemption could help (``resolvable``), which
decides the "preemption: ..." half of a FailedScheduling message. Filters run in
upstream's order and a node is rejected by the first one that fails, so the histogram in
the message counts each node once, as upstream's does.

kubeling runs no node lifecycle controller, so nothing taints a node that stops being
Ready. The taint filter therefore treats a node whose Ready condition is not ``True`` as
if it carried the taint the lifecycle controller would add
(``node.kubernetes.io/not-ready:NoSchedule``, or ``unreachable`` for ``Unknown``), which
a pod can tolerate the usual way.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any, Final

from kubeling.machinery import objects
from kubeling.machinery.quantity import QuantityError, parse_quantity
from kubeling.machinery.types import Obj

ERR_UNSCHEDULABLE: Final = "node(s) were unschedulable"
ERR_AFFINITY: Final = "node(s) didn't match Pod's node affinity/selector"
ERR_TOO_MANY_PODS: Final = "Too many pods"
ERR_PORTS: Final = "node(s) didn't have free ports for the requested pod ports"

TAINT_UNSCHEDULABLE: Final = "node.kubernetes.io/unschedulable"
TAINT_NOT_READY: Final = "node.kubernetes.io/not-ready"
TAINT_UNREACHABLE: Final = "node.kubernetes.io/unreachable"

# upstream's DefaultMilliCPURequest and DefaultMemoryRequest, used only for scoring so that
# pods without requests still spread
DEFAULT_MILLI_CPU: Final = 100
DEFAULT_MEMORY: Final = 200 * 1024 * 1024
MAX_NODE_SCORE: Final = 100

Resources = dict[str, Fraction]


@dataclass(frozen=True, kw_only=True)
class Rejection:
    """Why one plugin refused one node."""

    reasons: tuple[str, ...]
    resolvable: bool = False
    """upstream's ``Unschedulable`` (preemption might help) rather than
    ``UnschedulableAndUnresolvable``."""


# -- quantities -------------------------------------------------------------------------------


def _quantity(value: object) -> Fraction:
    try:
        return parse_quantity(value).value  # type: ignore[arg-type]
    except (QuantityError, TypeError, ValueError):
        return Fraction(0)


def _add(into: Resources, items: Mapping[str, Any] | None) -> None:
    for name, value in (items or {}).items():
        into[name] = into.get(name, Fraction(0)) + _quantity(value)


def _max_into(into: Resources, items: Resources) -> None:
    for name, value in items.items():
        if value > into.get(name, Fraction(0)):
            into[name] = value


def _requests(container: Obj) -> Mapping[str, Any]:
    return ((container.get("resources") or {}).get("requests")) or {}


def pod_requests(pod: Obj) -> Resources:
    """``resourcehelper.PodRequests``: the containers' sum, raised to what any init
    container needs (sidecars, ``restartPolicy: Always``, run beside what follows them),
    plus the pod overhead."""
    spec = pod.get("spec") or {}
    total: Resources = {}
    for c in spec.get("containers") or []:
        _add(total, _requests(c))
    sidecars: Resources = {}
    init_peak: Resources = {}
    for c in spec.get("initContainers") or []:
        own: Resources = {}
        _add(own, _requests(c))
        if c.get("restartPolicy") == "Always":
            _add(total, _requests(c))
            _add(sidecars, _requests(c))
            step = dict(sidecars)
        else:
            step = dict(own)
            for name, value in sidecars.items():
                step[name] = step.get(name, Fraction(0)) + value
        _max_into(init_peak, step)
    _max_into(total, init_peak)
    _add(total, spec.get("overhead"))
    return total


def pod_nonzero_requests(pod: Obj) -> tuple[int, int]:
    """(milli-CPU, memory bytes) for scoring: containers that ask for nothing count as
    upstream's defaults (100m, 200Mi), so empty pods still spread across nodes."""
    spec = pod.get("spec") or {}
    cpu = 0
    memory = 0
    for c in spec.get("containers") or []:
        req = _requests(c)
        cpu += int(_quantity(req["cpu"]) * 1000) if "cpu" in req else DEFAULT_MILLI_CPU
        memory += int(_quantity(req["memory"])) if "memory" in req else DEFAULT_MEMORY
    return cpu, memory


def allocatable(node: Obj) -> Resources:
    out: Resources = {}
    _add(out, (node.get("status") or {}).get("allocatable"))
    return out


# -- node selectors (pod affinity and PV node affinity share them) ---------------------------


def _int64(text: str) -> int | None:
    try:
        return int(text, 10)
    except (TypeError, ValueError):
        return None


def _expression_matches(expr: Mapping[str, Any], labels: Mapping[str, str]) -> bool:
    key = expr.get("key") or ""
    op = expr.get("operator") or ""
    values = [str(v) for v in expr.get("values") or []]
    if op == "In":
        return key in labels and labels[key] in values
    if op == "NotIn":
        return key not in labels or labels[key] not in values
    if op == "Exists":
        return key in labels
    if op == "DoesNotExist":
        return key not in labels
    if op in ("Gt", "Lt"):
        if key not in labels or len(values) != 1:
            return False
        have, want = _int64(labels[key]), _int64(values[0])
        if have is None or want is None:
            return False
        return have > want if op == "Gt" else have < want
    return False


def _field_matches(expr: Mapping[str, Any], node: Obj) -> bool:
    # Only metadata.name is a valid node field, with In/NotIn and exactly one value.
    values = [str(v) for v in expr.get("values") or []]
    if expr.get("key") != "metadata.name" or len(values) != 1:
        return False
    if expr.get("operator") == "In":
        return objects.name(node) in values
    if expr.get("operator") == "NotIn":
        return objects.name(node) not in values
    return False


def term_matches(term: Mapping[str, Any], node: Obj) -> bool:
    """One ``NodeSelectorTerm``: every expression and field holds; an empty term matches
    no node, as upstream's."""
    exprs = term.get("matchExpressions") or []
    fields = term.get("matchFields") or []
    if not exprs and not fields:
        return False
    labels = objects.labels(node)
    return all(_expression_matches(e, labels) for e in exprs) and all(
        _field_matches(f, node) for f in fields
    )


def selector_terms_match(terms: Iterable[Mapping[str, Any]] | None, node: Obj) -> bool:
    """A ``NodeSelector``: any term matches (no terms: no node)."""
    return any(term_matches(t, node) for t in terms or [])


def describe_terms(terms: Iterable[Mapping[str, Any]] | None) -> str:
    """``kubernetes.io/hostname in (node-a)``, terms joined by `` or ``."""
    out = []
    for term in terms or []:
        parts = []
        for e in term.get("matchExpressions") or []:
            op = str(e.get("operator") or "")
            values = ",".join(str(v) for v in e.get("values") or [])
            key = e.get("key") or ""
            if op in ("In", "NotIn"):
                parts.append(f"{key} {op.lower()} ({values})")
            elif op == "Exists":
                parts.append(str(key))
            elif op == "DoesNotExist":
                parts.append(f"!{key}")
            else:
                parts.append(f"{key} {op} {values}")
        for f in term.get("matchFields") or []:
            values = ",".join(str(v) for v in f.get("values") or [])
            parts.append(f"{f.get('key')} {str(f.get('operator') or '').lower()} ({values})")
        out.append(", ".join(parts) or "<empty term>")
    return " or ".join(out) or "<no terms>"


# -- filters in upstream's order --------------------------------------------------------------


def _tolerates(toleration: Mapping[str, Any], taint: Mapping[str, Any]) -> bool:
    """``Toleration.ToleratesTaint``."""
    effect = toleration.get("effect") or ""
    if effect and effect != taint.get("effect"):
        return False
    key = toleration.get("key") or ""
    op = toleration.get("operator") or "Equal"
    # an empty key with Exists tolerates every taint
    if key != (taint.get("key") or "") and not (key == "" and op == "Exists"):
        return False
    if op == "Exists":
        return True
    return (toleration.get("value") or "") == (taint.get("value") or "")


def tolerated(pod: Obj, taint: Mapping[str, Any]) -> bool:
    return any(_tolerates(t, taint) for t in (pod.get("spec") or {}).get("tolerations") or [])


def ready_status(node: Obj) -> str:
    """The Ready condition's status (``"Unknown"`` when the node posted none yet)."""
    cond = objects.get_condition((node.get("status") or {}).get("conditions"), "Ready")
    return str(cond.get("status") or "Unknown") if cond else "Unknown"


def effective_taints(node: Obj) -> list[Obj]:
    taints = [t for t in (node.get("spec") or {}).get("taints") or [] if isinstance(t, dict)]
    status = ready_status(node)
    if status != "True":
        key = TAINT_NOT_READY if status == "False" else TAINT_UNREACHABLE
        if not any(t.get("key") == key and t.get("effect") == "NoSchedule" for t in taints):
            taints.append({"key": key, "effect": "NoSchedule"})
    return taints


def filter_unschedulable(pod: Obj, node: Obj) -> Rejection | None:
    if not (node.get("spec") or {}).get("unschedulable"):
        return None
    if tolerated(pod, {"key": TAINT_UNSCHEDULABLE, "effect": "NoSchedule"}):
        return None
    return Rejection(reasons=(ERR_UNSCHEDULABLE,))


def filter_taints(pod: Obj, node: Obj) -> Rejection | None:
    for taint in effective_taints(node):
        if taint.get("effect") not in ("NoSchedule", "NoExecute"):
            continue
        if not tolerated(pod, taint):
            return Rejection(
                reasons=(
                    f"node(s) had untolerated taint {{{taint.get('key', '')}: "
                    f"{taint.get('value', '')}}}",
                )
            )
    return None


def pod_matches_node(pod: Obj, node: Obj) -> bool:
    """``nodeSelector`` and the required node affinity (``GetRequiredNodeAffinity``)."""
    spec = pod.get("spec") or {}
    labels = objects.labels(node)
    for key, value in (spec.get("nodeSelector") or {}).items():
        if labels.get(key) != value:
            return False
    required = objects.get_path(
        spec, ["affinity", "nodeAffinity", "requiredDuringSchedulingIgnoredDuringExecution"]
    )
    if isinstance(required, dict):
        return selector_terms_match(required.get("nodeSelectorTerms"), node)
    return True


def filter_affinity(pod: Obj, node: Obj) -> Rejection | None:
    return None if pod_matches_node(pod, node) else Rejection(reasons=(ERR_AFFINITY,))


HostPort = tuple[str, str, int]
"""(hostIP, protocol, hostPort)"""


def host_ports(pod: Obj) -> list[HostPort]:
    """Every ``hostPort`` the pod's containers (and init containers) ask for."""
    spec = pod.get("spec") or {}
    out: list[HostPort] = []
    for c in [*(spec.get("initContainers") or []), *(spec.get("containers") or [])]:
        for p in c.get("ports") or []:
            port = int(p.get("hostPort") or 0)
            if port > 0:
                out.append((p.get("hostIP") or "0.0.0.0", p.get("protocol") or "TCP", port))
    return out


def _ports_conflict(a: HostPort, b: HostPort) -> bool:
    if a[1:] != b[1:]:
        return False
    # the wildcard address conflicts with every address
    return a[0] == b[0] or "0.0.0.0" in (a[0], b[0])


@dataclass(frozen=True, kw_only=True)
class PodLoad:
    """What one pod takes from its node, computed once per pod version."""

    requests: Resources
    milli_cpu: int
    memory: int
    ports: tuple[HostPort, ...]


def pod_load(pod: Obj) -> PodLoad:
    cpu, memory = pod_nonzero_requests(pod)
    return PodLoad(
        requests=pod_requests(pod), milli_cpu=cpu, memory=memory, ports=tuple(host_ports(pod))
    )


@dataclass(kw_only=True)
class NodeUsage:
    """What the pods on a node (bound or assumed) request, kept up to date incrementally."""

    pods: int = 0
    requested: Resources = field(default_factory=dict)
    milli_cpu: int = 0
    memory: int = 0
    ports: list[HostPort] = field(default_factory=list)

    def add(self, pod: Obj) -> None:
        self.add_load(pod_load(pod))

    def add_load(self, load: PodLoad) -> None:
        self.pods += 1
        self.ports.extend(load.ports)
        for name, value in load.requests.items():
            self.requested[name] = self.requested.get(name, Fraction(0)) + value
        self.milli_cpu += load.milli_cpu
        self.memory += load.memory

    def remove_load(self, load: PodLoad) -> None:
        self.pods -= 1
        for port in load.ports:
            self.ports.remove(port)
        for name, value in load.requests.items():
            self.requested[name] = self.requested.get(name, Fraction(0)) - value
        self.milli_cpu -= load.milli_cpu
        self.memory -= load.memory


def filter_ports(pod: Obj, usage: NodeUsage) -> Rejection | None:
    """``NodePorts``: a host port another pod on the node already holds."""
    for wanted in host_ports(pod):
        if any(_ports_conflict(wanted, used) for used in usage.ports):
            return Rejection(reasons=(ERR_PORTS,), resolvable=True)
    return None


def filter_resources(pod: Obj, node: Obj, usage: NodeUsage) -> Rejection | None:
    """``NodeResourcesFit``: pod count, then each requested resource, every shortfall named."""
    alloc = allocatable(node)
    reasons: list[str] = []
    if usage.pods + 1 > int(alloc.get("pods", Fraction(0))):
        reasons.append(ERR_TOO_MANY_PODS)
    want = pod_requests(pod)
    ordered: list[str] = [r for r in ("cpu", "memory", "ephemeral-storage") if r in want]
    ordered += sorted(r for r in want if r not in ("cpu", "memory", "ephemeral-storage", "pods"))
    for name in ordered:
        need = want[name]
        if need <= 0:
            continue
        free = alloc.get(name, Fraction(0)) - usage.requested.get(name, Fraction(0))
        if need > free:
            reasons.append(f"Insufficient {name}")
    if reasons:
        return Rejection(reasons=tuple(reasons), resolvable=True)
    return None


# -- scoring ------------------------------------------------------------------------------------


def least_allocated_score(pod: Obj, node: Obj, usage: NodeUsage) -> int:
    """``NodeResourcesFit`` with the LeastAllocated strategy, CPU and memory weighted 1:1:
    the share of each left free once the pod is placed, 0..100."""
    alloc = allocatable(node)
    cpu, memory = pod_nonzero_requests(pod)
    scores = []
    for capacity, used in (
        (int(alloc.get("cpu", Fraction(0)) * 1000), usage.milli_cpu + cpu),
        (int(alloc.get("memory", Fraction(0))), usage.memory + memory),
    ):
        if capacity <= 0 or used > capacity:
            scores.append(0)
        else:
            scores.append((capacity - used) * MAX_NODE_SCORE // capacity)
    return sum(scores) // len(scores)
