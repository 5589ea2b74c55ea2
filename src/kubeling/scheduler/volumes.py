"""Volume binding for the scheduler: upstream's VolumeBinding plugin, as pure functions.

``prefilter`` sorts a pod's claims into bound, WaitForFirstConsumer and Immediate ones and
refuses the pod outright for a missing, deleting or lost claim or an unbound Immediate one
(upstream's PreFilter). ``find_pod_volumes`` then answers, node by node, whether the bound
claims' volumes may be used there (PV node affinity) and how the WaitForFirstConsumer
claims would be satisfied: by a matching Available volume (a static binding the scheduler
writes itself) or by provisioning (the ``volume.kubernetes.io/selected-node`` annotation
the provisioner reacts to). ``check_bindings`` is the PreBind wait: done once every claim
is fully bound, an error when a provisioner gave up (it removes ``selected-node``) or a
volume was unbound under us. Messages are upstream's (v1.32).

kubeling says more than upstream: ``explain_*`` name the claim and why no volume fits it
(``my-pv3: 3Gi < 5Gi``), for the sentence the scheduler appends to FailedScheduling.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any, Final, Protocol

from kubeling.machinery import objects
from kubeling.machinery.objects import claim_class, volume_class
from kubeling.machinery.quantity import QuantityError, parse_quantity
from kubeling.machinery.selectors import label_selector_from_object
from kubeling.machinery.types import Obj
from kubeling.scheduler.nodes import describe_terms, selector_terms_match

ANN_SELECTED_NODE: Final = "volume.kubernetes.io/selected-node"
ANN_BIND_COMPLETED: Final = "pv.kubernetes.io/bind-completed"
ANN_BOUND_BY_CONTROLLER: Final = "pv.kubernetes.io/bound-by-controller"
NO_PROVISIONER: Final = "kubernetes.io/no-provisioner"
WAIT_FOR_FIRST_CONSUMER: Final = "WaitForFirstConsumer"

ERR_UNBOUND_IMMEDIATE: Final = "pod has unbound immediate PersistentVolumeClaims"
ERR_BIND_CONFLICT: Final = "node(s) didn't find available persistent volumes to bind"
ERR_NODE_CONFLICT: Final = "node(s) had volume node affinity conflict"
ERR_PV_NOT_EXIST: Final = (
    "node(s) unavailable due to one or more pvc(s) bound to non-existent pv(s)"
)

EXPLAIN_CANDIDATES: Final = 3


class VolumeLookup(Protocol):
    """What the scheduler's caches answer (each call returns a copy the caller may keep)."""

    def claim(self, namespace: str, name: str) -> Obj | None: ...

    def volume(self, name: str) -> Obj | None: ...

    def storage_class(self, name: str) -> Obj | None: ...

    def volumes_of_class(self, class_name: str) -> list[Obj]: ...

    def all_volumes(self) -> list[Obj]: ...


class VolumeError(Exception):
    """PreFilter refused the pod; ``str()`` is upstream's message."""


# -- small readers ----------------------------------------------------------------------------


def claim_key(claim: Obj) -> str:
    return f"{objects.namespace(claim)}/{objects.name(claim)}"


def is_fully_bound(claim: Obj) -> bool:
    return bool((claim.get("spec") or {}).get("volumeName")) and (
        ANN_BIND_COMPLETED in objects.annotations(claim)
    )


def _size(value: object) -> Fraction | None:
    try:
        return parse_quantity(value).value  # type: ignore[arg-type]
    except (QuantityError, TypeError, ValueError):
        return None


def _claim_request(claim: Obj) -> tuple[str, Fraction]:
    text = objects.get_path(claim, "spec.resources.requests.storage")
    return str(text or "0"), _size(text) or Fraction(0)


def _volume_capacity(pv: Obj) -> tuple[str, Fraction]:
    text = objects.get_path(pv, "spec.capacity.storage")
    return str(text or "0"), _size(text) or Fraction(0)


def volume_fits_node(pv: Obj, node: Obj) -> bool:
    """``CheckNodeAffinity``: a PV without required node affinity fits every node."""
    required = objects.get_path(pv, "spec.nodeAffinity.required")
    if not isinstance(required, dict):
        return True
    return selector_terms_match(required.get("nodeSelectorTerms"), node)


def _volume_affinity_terms(pv: Obj) -> list[Any] | None:
    required = objects.get_path(pv, "spec.nodeAffinity.required")
    if not isinstance(required, dict):
        return None
    return list(required.get("nodeSelectorTerms") or [])


def is_delay_binding(claim: Obj, lookup: VolumeLookup) -> bool:
    """``IsDelayBindingMode``: no class, or a class that does not exist, is Immediate."""
    name = claim_class(claim)
    if not name:
        return False
    sc = lookup.storage_class(name)
    return sc is not None and sc.get("volumeBindingMode") == WAIT_FOR_FIRST_CONSUMER


# -- PreFilter --------------------------------------------------------------------------------


def pod_claim_refs(pod: Obj) -> list[tuple[str, bool]]:
    """(claim name, generic ephemeral?) for every volume of the pod backed by a claim."""
    out: list[tuple[str, bool]] = []
    for vol in (pod.get("spec") or {}).get("volumes") or []:
        if not isinstance(vol, dict):
            continue
        pvc = vol.get("persistentVolumeClaim")
        if isinstance(pvc, dict) and pvc.get("claimName"):
            out.append((str(pvc["claimName"]), False))
        elif isinstance(vol.get("ephemeral"), dict):
            out.append((f"{objects.name(pod)}-{vol.get('name', '')}", True))
    return out


@dataclass(kw_only=True)
class PodClaims:
    bound: list[Obj] = field(default_factory=list)
    delayed: list[Obj] = field(default_factory=list)
    """Unbound claims of WaitForFirstConsumer classes without ``spec.volumeName``."""
    immediate: list[Obj] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        return not (self.bound or self.delayed or self.immediate)


def prefilter(pod: Obj, lookup: VolumeLookup) -> PodClaims:
    """Upstream's ``podHasPVCs`` and ``GetPodVolumeClaims``; raises ``VolumeError``."""
    namespace = objects.namespace(pod)
    claims: list[Obj] = []
    for name, ephemeral in pod_claim_refs(pod):
        claim = lookup.claim(namespace, name)
        if claim is None:
            if ephemeral:
                raise VolumeError(
                    "waiting for ephemeral volume controller to create the "
                    f'persistentvolumeclaim "{name}"'
                )
            raise VolumeError(f'persistentvolumeclaim "{name}" not found')
        if (claim.get("status") or {}).get("phase") == "Lost":
            raise VolumeError(
                f'persistentvolumeclaim "{name}" bound to non-existent persistentvolume '
                f'"{(claim.get("spec") or {}).get("volumeName", "")}"'
            )
        if objects.deletion_timestamp(claim):
            raise VolumeError(f'persistentvolumeclaim "{name}" is being deleted')
        if ephemeral:
            ref = objects.controller_ref(claim)
            if ref is None or ref.get("uid") != objects.uid(pod):
                raise VolumeError(
                    f"PVC {namespace}/{name} was not created for pod {namespace}/"
                    f"{objects.name(pod)} (pod is not owner)"
                )
        claims.append(claim)
    result = PodClaims()
    for claim in claims:
        if is_fully_bound(claim):
            result.bound.append(claim)
        elif is_delay_binding(claim, lookup) and not (claim.get("spec") or {}).get("volumeName"):
            result.delayed.append(claim)
        else:
            result.immediate.append(claim)
    return result


# -- Filter: one node -------------------------------------------------------------------------


@dataclass(kw_only=True)
class NodeVolumes:
    """How the pod's claims would be satisfied on one node."""

    reasons: list[str] = field(default_factory=list)
    bindings: list[tuple[Obj, Obj]] = field(default_factory=list)
    """(claim, volume) pairs the scheduler binds itself."""
    provisions: list[Obj] = field(default_factory=list)
    """Claims to annotate with ``selected-node``."""
    conflicts: list[tuple[Obj, str]] = field(default_factory=list)
    """(claim, reason) for kubeling's explanation."""


def _bound_to_claim(pv: Obj, claim: Obj) -> bool:
    """``IsVolumeBoundToClaim``: claimRef names the claim, uid empty or equal."""
    ref = (pv.get("spec") or {}).get("claimRef")
    if not isinstance(ref, dict):
        return False
    if ref.get("name") != objects.name(claim) or ref.get("namespace") != objects.namespace(claim):
        return False
    return not ref.get("uid") or ref.get("uid") == objects.uid(claim)


def _modes(obj: Obj) -> list[str]:
    return [str(m) for m in (obj.get("spec") or {}).get("accessModes") or []]


def _volume_mode(obj: Obj) -> str:
    return (obj.get("spec") or {}).get("volumeMode") or "Filesystem"


def volume_mismatch(
    claim: Obj, pv: Obj, *, node: Obj | None = None, chosen: Mapping[str, str] | None = None
) -> str | None:
    """Why ``pv`` cannot serve ``claim`` through the scheduler (``FindMatchingVolume`` with
    delayed binding), or ``None`` when it can. The words are kubeling's."""
    name = objects.name(pv)
    if chosen and name in chosen and chosen[name] != claim_key(claim):
        return f"chosen for {chosen[name]}"
    ref = (pv.get("spec") or {}).get("claimRef")
    if isinstance(ref, dict) and not _bound_to_claim(pv, claim):
        return f"bound to {ref.get('namespace', '')}/{ref.get('name', '')}"
    want_text, want = _claim_request(claim)
    have_text, have = _volume_capacity(pv)
    if have < want:
        return f"{have_text} < {want_text}"
    if _volume_mode(pv) != _volume_mode(claim):
        return f"volumeMode {_volume_mode(pv)} != {_volume_mode(claim)}"
    if objects.deletion_timestamp(pv):
        return "being deleted"
    if node is not None and not volume_fits_node(pv, node):
        return f"node affinity ({describe_terms(_volume_affinity_terms(pv))})"
    if _bound_to_claim(pv, claim):
        return None
    phase = (pv.get("status") or {}).get("phase") or ""
    if phase != "Available":
        return phase or "no phase"
    selector = (claim.get("spec") or {}).get("selector")
    if selector and not label_selector_from_object(selector).matches(objects.labels(pv)):
        return "labels do not match the claim's selector"
    if volume_class(pv) != claim_class(claim):
        return f'class "{volume_class(pv)}" != "{claim_class(claim)}"'
    missing = [m for m in _modes(claim) if m not in _modes(pv)]
    if missing:
        return f"access modes {','.join(_modes(pv))} lack {','.join(missing)}"
    return None


def find_matching_volume(
    claim: Obj, volumes: Iterable[Obj], node: Obj, chosen: Mapping[str, str]
) -> Obj | None:
    """The smallest volume that fits (a volume pre-bound to the claim wins outright)."""
    best: Obj | None = None
    best_size = Fraction(0)
    for pv in sorted(volumes, key=objects.name):
        if volume_mismatch(claim, pv, node=node, chosen=chosen) is not None:
            if _bound_to_claim(pv, claim) and not volume_fits_node(pv, node):
                # a volume reserved for this claim but not usable here: nothing else may do
                return None
            continue
        if _bound_to_claim(pv, claim):
            return pv
        _, size = _volume_capacity(pv)
        if best is None or size < best_size:
            best, best_size = pv, size
    return best


def _topology_allows(sc: Obj, node: Obj) -> bool:
    """``MatchTopologySelectorTerms`` on the class's ``allowedTopologies``."""
    terms = sc.get("allowedTopologies") or []
    if not terms:
        return True
    labels = objects.labels(node)
    for term in terms:
        exprs = (term or {}).get("matchLabelExpressions") or []
        if all(labels.get(e.get("key", "")) in (e.get("values") or []) for e in exprs):
            return True
    return False


def provision_obstacle(claim: Obj, node: Obj, lookup: VolumeLookup) -> str | None:
    """Why the claim's class cannot provision a volume for ``node`` (None: it can)."""
    name = claim_class(claim)
    if not name:
        return "no storage class is set"
    sc = lookup.storage_class(name)
    if sc is None:
        return f'storageclass "{name}" not found'
    provisioner = sc.get("provisioner") or ""
    if not provisioner or provisioner == NO_PROVISIONER:
        return f'class "{name}" does not provision volumes ({provisioner or "no provisioner"})'
    if not _topology_allows(sc, node):
        return f'class "{name}" allowedTopologies exclude node {objects.name(node)}'
    return None


def find_pod_volumes(
    claims: PodClaims, node: Obj, lookup: VolumeLookup, *, reserved: Mapping[str, str]
) -> NodeVolumes:
    """Upstream's ``FindPodVolumes`` for one node. ``reserved`` maps volumes the scheduler
    is binding right now to their claim keys, so two pods never get the same volume."""
    out = NodeVolumes()
    node_name = objects.name(node)
    bound_ok = True
    bound_found = True
    for claim in claims.bound:
        pv_name = str((claim.get("spec") or {}).get("volumeName") or "")
        pv = lookup.volume(pv_name)
        if pv is None:
            bound_found = False
            out.conflicts.append((claim, f"bound to volume {pv_name}, which does not exist"))
            break
        if not volume_fits_node(pv, node):
            bound_ok = False
            out.conflicts.append(
                (
                    claim,
                    f"bound to volume {pv_name}, usable only on nodes with "
                    f"{describe_terms(_volume_affinity_terms(pv))}",
                )
            )
            break
    unbound_ok = True
    to_find: list[Obj] = []
    to_provision: list[Obj] = []
    for claim in claims.delayed:
        selected = objects.annotations(claim).get(ANN_SELECTED_NODE)
        if selected:
            if selected != node_name:
                unbound_ok = False
                out.conflicts.append((claim, f"waits for node {selected} ({ANN_SELECTED_NODE})"))
                to_find, to_provision = [], []
                break
            to_provision.append(claim)
        else:
            to_find.append(claim)
    if unbound_ok:
        chosen = dict(reserved)
        for claim in sorted(to_find, key=lambda c: _claim_request(c)[1]):
            pv = find_matching_volume(
                claim, lookup.volumes_of_class(claim_class(claim)), node, chosen
            )
            if pv is None:
                to_provision.append(claim)
                continue
            chosen[objects.name(pv)] = claim_key(claim)
            out.bindings.append((claim, pv))
        for claim in to_provision:
            obstacle = provision_obstacle(claim, node, lookup)
            if obstacle is not None:
                unbound_ok = False
                class_name = claim_class(claim)
                candidates = explain_candidates(claim, lookup.volumes_of_class(class_name))
                if candidates:
                    text = f"no volume fits ({candidates}) and {obstacle}"
                else:
                    text = f'no volume of class "{class_name}" exists and {obstacle}'
                out.conflicts.append((claim, text))
                out.bindings, out.provisions = [], []
                break
            out.provisions.append(claim)
    if not bound_ok:
        out.reasons.append(ERR_NODE_CONFLICT)
    if not unbound_ok:
        out.reasons.append(ERR_BIND_CONFLICT)
    if not bound_found:
        out.reasons.append(ERR_PV_NOT_EXIST)
    return out


# -- PreBind: waiting for the binder and the provisioner ---------------------------------------


class BindingError(Exception):
    """The binding cannot complete on this node; ``str()`` is upstream's wording."""


def _rv(obj: Obj) -> int:
    try:
        return int(objects.resource_version(obj) or 0)
    except ValueError:
        return 0


def check_bindings(
    *,
    bindings: Iterable[tuple[str, str, int]],
    provisions: Iterable[tuple[str, int]],
    node: Obj,
    lookup: VolumeLookup,
) -> bool:
    """Upstream's ``checkBindings``: True once every claim is fully bound; raises
    ``BindingError`` when the node can no longer work. ``bindings`` are (claim key, volume,
    resourceVersion written), ``provisions`` (claim key, resourceVersion written)."""
    node_name = objects.name(node)
    done = True
    for key, pv_name, written in bindings:
        pv = lookup.volume(pv_name)
        namespace, _, name = key.partition("/")
        claim = lookup.claim(namespace, name)
        if pv is None or claim is None:
            raise BindingError(
                f'failed to check binding: "{pv_name if pv is None else key}" not found'
            )
        if _rv(pv) < written:
            done = False  # the cache has not seen our write yet
            continue
        if not volume_fits_node(pv, node):
            raise BindingError(
                f'pv "{pv_name}" node affinity doesn\'t match node "{node_name}": '
                "no matching NodeSelectorTerms"
            )
        ref = (pv.get("spec") or {}).get("claimRef")
        if not isinstance(ref, dict) or not ref.get("uid"):
            raise BindingError(f'ClaimRef got reset for pv "{pv_name}"')
        if not is_fully_bound(claim):
            done = False
    for key, written in provisions:
        namespace, _, name = key.partition("/")
        claim = lookup.claim(namespace, name)
        if claim is None:
            raise BindingError(f'failed to check binding: persistentvolumeclaim "{name}" not found')
        if _rv(claim) < written:
            done = False
            continue
        if objects.annotations(claim).get(ANN_SELECTED_NODE) != node_name:
            raise BindingError(f'selectedNode annotation reset for PVC "{name}"')
        volume_name = (claim.get("spec") or {}).get("volumeName")
        if volume_name:
            pv = lookup.volume(str(volume_name))
            if pv is None:
                done = False  # the volume may not have reached the cache yet
                continue
            if not volume_fits_node(pv, node):
                raise BindingError(
                    f'pv "{volume_name}" node affinity doesn\'t match node "{node_name}": '
                    "no matching NodeSelectorTerms"
                )
        if not is_fully_bound(claim):
            done = False
    return done


# -- kubeling's explanations -------------------------------------------------------------------


def explain_candidates(
    claim: Obj, volumes: Iterable[Obj], *, limit: int = EXPLAIN_CANDIDATES
) -> str:
    """``my-pv2: class "standard" != ""; my-pv3: 3Gi < 5Gi``: the closest volumes (same
    class first, then by name) and why each does not fit."""
    want_class = claim_class(claim)
    rows: list[tuple[int, str, str]] = []
    for pv in volumes:
        why = volume_mismatch(claim, pv)
        if why is None:
            terms = _volume_affinity_terms(pv)
            why = f"node affinity ({describe_terms(terms)})" if terms is not None else "fits"
        rank = 0 if volume_class(pv) == want_class else 1
        rows.append((rank, objects.name(pv), why))
    rows.sort()
    shown = [f"{name}: {why}" for _, name, why in rows[:limit]]
    if len(rows) > limit:
        shown.append(f"{len(rows) - limit} more")
    return "; ".join(shown)


def explain_unbound_immediate(claim: Obj, lookup: VolumeLookup) -> str:
    """Why an Immediate claim is still Pending, as far as the scheduler can tell."""
    name = claim_class(claim)
    if name:
        sc = lookup.storage_class(name)
        if sc is None:
            return f'storageclass "{name}" not found'
        provisioner = sc.get("provisioner") or ""
        if provisioner and provisioner != NO_PROVISIONER:
            return f"waiting for provisioner {provisioner} to create a volume"
    if (claim.get("spec") or {}).get("volumeName"):
        return f"waiting for volume {claim['spec']['volumeName']} to bind"
    candidates = explain_candidates(claim, lookup.all_volumes())
    if not candidates:
        return "no volume matches (there are no volumes)"
    return f"no volume matches ({candidates})"
