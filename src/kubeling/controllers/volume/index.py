"""What the volume binder knows and how a claim finds its volume, without scanning every PV.

Upstream's ``persistentVolumeOrderedIndex`` groups volumes by their exact access-mode set and
walks each group linearly, so one sync costs O(volumes) and binding N claims costs O(N²).
kubeling keeps upstream's decision (mode groups searched smallest first, a volume pre-bound
to the claim wins at once, otherwise the smallest Available volume of the same class that
fits) but indexes the free volumes of each (mode set, class) pair in a list sorted by
capacity: the smallest fitting volume is a bisection away, and only volumes that fail the
remaining checks (volumeMode, selector, deletion) are stepped over. Volumes reserved for a
claim (``spec.claimRef``) are indexed by the claim's ``namespace/name``.

The caches hold the informers' objects themselves (read-only, never mutated here) and the
binder's own writes, whichever is newer by resourceVersion, as upstream's
``storeObjectUpdate`` does, so a sync never acts on a state older than its last write.

``explain`` is kubeling's addition: when nothing matches, it names the closest volumes and
why each was refused, for the FailedBinding event.
"""

from __future__ import annotations

import bisect
import functools
import itertools
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from fractions import Fraction
from typing import Any, Final

from kubeling.machinery import objects as o
from kubeling.machinery.objects import claim_class, volume_class
from kubeling.machinery.quantity import parse_quantity_or_none
from kubeling.machinery.selectors import SelectorError, label_selector_from_object
from kubeling.machinery.types import Obj

ANN_BIND_COMPLETED: Final = "pv.kubernetes.io/bind-completed"
ANN_BOUND_BY_CONTROLLER: Final = "pv.kubernetes.io/bound-by-controller"
ANN_PROVISIONED_BY: Final = "pv.kubernetes.io/provisioned-by"
ANN_MIGRATED_TO: Final = "pv.kubernetes.io/migrated-to"
ANN_STORAGE_PROVISIONER: Final = "volume.kubernetes.io/storage-provisioner"
ANN_BETA_STORAGE_PROVISIONER: Final = "volume.beta.kubernetes.io/storage-provisioner"
ANN_SELECTED_NODE: Final = "volume.kubernetes.io/selected-node"

MODE_ABBREVIATIONS: Final = {
    "ReadWriteOnce": "RWO",
    "ReadOnlyMany": "ROX",
    "ReadWriteMany": "RWX",
    "ReadWriteOncePod": "RWOP",
}

# -- object helpers ----------------------------------------------------------------------------


def spec(obj: Obj) -> dict[str, Any]:
    s = obj.get("spec")
    return s if isinstance(s, dict) else {}


def status(obj: Obj) -> dict[str, Any]:
    s = obj.get("status")
    return s if isinstance(s, dict) else {}


def phase(obj: Obj) -> str:
    return str(status(obj).get("phase") or "")


def has_annotation(obj: Obj, key: str) -> bool:
    return key in o.annotations(obj)


def claim_key(claim: Obj) -> str:
    return f"{o.namespace(claim)}/{o.name(claim)}"


def claim_ref(volume: Obj) -> dict[str, Any] | None:
    ref = spec(volume).get("claimRef")
    return ref if isinstance(ref, dict) else None


def claim_ref_key(ref: dict[str, Any]) -> str:
    return f"{ref.get('namespace') or ''}/{ref.get('name') or ''}"


def claim_class_unset(claim: Obj) -> bool:
    """True when the claim expresses no class at all (nil spec field, no beta annotation):
    only such claims are defaulted, at admission or retroactively."""
    return not o.claim_has_class(claim)


def volume_mode(obj: Obj) -> str:
    return spec(obj).get("volumeMode") or "Filesystem"


def access_modes(obj: Obj) -> frozenset[str]:
    return frozenset(spec(obj).get("accessModes") or ())


def abbreviate_modes(modes: Iterable[str]) -> str:
    return ",".join(MODE_ABBREVIATIONS.get(m, m) for m in sorted(modes)) or "none"


def quantity_value(text: Any) -> Fraction | None:
    if text is None:
        return None
    if isinstance(text, str):
        return _parsed(text)
    q = parse_quantity_or_none(text)
    return q.value if q is not None else None


@functools.lru_cache(maxsize=4096)
def _parsed(text: str) -> Fraction | None:
    # sizes repeat (every sync re-reads the same few "1Gi"s): parse each text once
    q = parse_quantity_or_none(text)
    return q.value if q is not None else None


def volume_capacity(volume: Obj) -> Fraction | None:
    return quantity_value((spec(volume).get("capacity") or {}).get("storage"))


def claim_request(claim: Obj) -> Fraction:
    requests = (spec(claim).get("resources") or {}).get("requests") or {}
    return quantity_value(requests.get("storage")) or Fraction(0)


def is_volume_bound_to_claim(volume: Obj, claim: Obj) -> bool:
    """``IsVolumeBoundToClaim``: claimRef names the claim, with its uid or none."""
    ref = claim_ref(volume)
    if ref is None:
        return False
    if ref.get("name") != o.name(claim) or ref.get("namespace") != o.namespace(claim):
        return False
    uid = ref.get("uid") or ""
    return not uid or uid == o.uid(claim)


def selector_matches(claim: Obj, volume: Obj) -> bool:
    raw = spec(claim).get("selector")
    if raw is None:
        return True
    try:
        return label_selector_from_object(raw).matches(o.labels(volume))
    except SelectorError:
        return False


def check_volume_satisfy_claim(volume: Obj, claim: Obj) -> str | None:
    """``checkVolumeSatisfyClaim``: why a claim may not bind the volume it names."""
    capacity = volume_capacity(volume)
    if capacity is None or capacity < claim_request(claim):
        return "requested PV is too small"
    if volume_class(volume) != claim_class(claim):
        return "storageClassName does not match"
    if o.deletion_timestamp(volume) is not None:
        return f'the volume is marked for deletion "{o.name(volume)}"'
    if volume_mode(volume) != volume_mode(claim):
        return "incompatible volumeMode"
    if not access_modes(claim) <= access_modes(volume):
        return "incompatible accessMode"
    return None


def resource_version_int(obj: Obj) -> int:
    try:
        return int(o.resource_version(obj) or 0)
    except ValueError:
        return 0


def is_stale(new: Obj, old: Obj | None) -> bool:
    """True when ``old`` is a newer version of the same object than ``new``."""
    if old is None or o.uid(old) != o.uid(new):
        return False
    return resource_version_int(new) < resource_version_int(old)


# -- caches ------------------------------------------------------------------------------------


class ObjectCache:
    """Objects by key, replaced only by a newer resourceVersion (``storeObjectUpdate``)."""

    def __init__(self, key: Callable[[Obj], str]) -> None:
        self._key = key
        self.objects: dict[str, Obj] = {}

    def key_of(self, obj: Obj) -> str:
        return self._key(obj)

    def store(self, obj: Obj) -> bool:
        """Keep ``obj`` unless the cache has a newer version; True when it was kept."""
        key = self._key(obj)
        if is_stale(obj, self.objects.get(key)):
            return False
        self.objects[key] = obj
        return True

    def delete(self, obj: Obj) -> Obj | None:
        key = self._key(obj)
        old = self.objects.get(key)
        if old is not None and o.uid(old) and o.uid(obj) and o.uid(old) != o.uid(obj):
            return None  # a newer object with the same name replaced it already
        return self.objects.pop(key, None)

    def get(self, key: str) -> Obj | None:
        return self.objects.get(key)

    def __len__(self) -> int:
        return len(self.objects)

    def __iter__(self) -> Iterator[Obj]:
        return iter(list(self.objects.values()))


@dataclass(frozen=True, slots=True)
class _Entry:
    modes: frozenset[str]
    reserved_for: str | None
    free_key: tuple[frozenset[str], str] | None
    sort_key: tuple[Fraction, str]


class VolumeIndex:
    """Every PersistentVolume the binder knows, indexed for ``find_best_match``."""

    def __init__(self) -> None:
        self.volumes: dict[str, Obj] = {}
        self._entries: dict[str, _Entry] = {}
        self._mode_sets: dict[frozenset[str], int] = {}
        self._reserved: dict[str, set[str]] = {}
        self._free: dict[tuple[frozenset[str], str], list[tuple[Fraction, str]]] = {}

    def __len__(self) -> int:
        return len(self.volumes)

    def __iter__(self) -> Iterator[Obj]:
        return iter(list(self.volumes.values()))

    def get(self, name: str) -> Obj | None:
        return self.volumes.get(name)

    def store(self, volume: Obj) -> bool:
        """Index ``volume`` unless a newer version is known; True when it was kept."""
        name = o.name(volume)
        if is_stale(volume, self.volumes.get(name)):
            return False
        self._unindex(name)
        self.volumes[name] = volume
        modes = access_modes(volume)
        ref = claim_ref(volume)
        reserved_for = claim_ref_key(ref) if ref is not None else None
        free_key = None
        sort_key = (volume_capacity(volume) or Fraction(0), name)
        if ref is None and phase(volume) == "Available":
            free_key = (modes, volume_class(volume))
            bisect.insort(self._free.setdefault(free_key, []), sort_key)
        if reserved_for is not None:
            self._reserved.setdefault(reserved_for, set()).add(name)
        self._mode_sets[modes] = self._mode_sets.get(modes, 0) + 1
        self._entries[name] = _Entry(
            modes=modes, reserved_for=reserved_for, free_key=free_key, sort_key=sort_key
        )
        return True

    def delete(self, volume: Obj) -> Obj | None:
        name = o.name(volume)
        old = self.volumes.get(name)
        if old is not None and o.uid(old) and o.uid(volume) and o.uid(old) != o.uid(volume):
            return None
        self._unindex(name)
        return self.volumes.pop(name, None)

    def _unindex(self, name: str) -> None:
        entry = self._entries.pop(name, None)
        if entry is None:
            return
        if entry.free_key is not None:
            bucket = self._free.get(entry.free_key, [])
            i = bisect.bisect_left(bucket, entry.sort_key)
            if i < len(bucket) and bucket[i] == entry.sort_key:
                del bucket[i]
            if not bucket:
                self._free.pop(entry.free_key, None)
        if entry.reserved_for is not None:
            names = self._reserved.get(entry.reserved_for)
            if names is not None:
                names.discard(name)
                if not names:
                    del self._reserved[entry.reserved_for]
        count = self._mode_sets.get(entry.modes, 0) - 1
        if count > 0:
            self._mode_sets[entry.modes] = count
        else:
            self._mode_sets.pop(entry.modes, None)

    def reserved_for(self, key: str) -> list[Obj]:
        """Volumes whose claimRef names the claim ``namespace/name`` (any uid)."""
        return [self.volumes[n] for n in sorted(self._reserved.get(key, ())) if n in self.volumes]

    def mode_groups(self, claim: Obj) -> list[frozenset[str]]:
        """Indexed mode sets that include every mode the claim asks for, fewest modes first
        (upstream's ``allPossibleMatchingAccessModes``)."""
        wanted = access_modes(claim)
        groups = [m for m in self._mode_sets if wanted <= m]
        groups.sort(key=lambda m: (len(m), sorted(m)))
        return groups

    def find_best_match(self, claim: Obj, *, delay_binding: bool) -> Obj | None:
        """``findBestMatchForClaim`` in the controller's form (no node)."""
        request = claim_request(claim)
        wanted_mode = volume_mode(claim)
        reserved = [
            v for v in self.reserved_for(claim_key(claim)) if is_volume_bound_to_claim(v, claim)
        ]
        cls = claim_class(claim)
        for group in self.mode_groups(claim):
            for volume in reserved:
                if access_modes(volume) != group:
                    continue
                capacity = volume_capacity(volume)
                if capacity is None or capacity < request:
                    continue
                if volume_mode(volume) != wanted_mode:
                    continue
                if o.deletion_timestamp(volume) is not None:
                    continue
                return volume
            if delay_binding:
                continue
            bucket = self._free.get((group, cls))
            if not bucket:
                continue
            # walk from the smallest that fits without copying the rest of the bucket
            for i in range(bisect.bisect_left(bucket, (request, "")), len(bucket)):
                volume = self.volumes[bucket[i][1]]
                if volume_mode(volume) != wanted_mode:
                    continue
                if o.deletion_timestamp(volume) is not None:
                    continue
                if not selector_matches(claim, volume):
                    continue
                return volume
        return None

    # -- kubeling's explanation --------------------------------------------------------------

    def refusals(self, claim: Obj, volume: Obj) -> list[str]:
        """Every reason ``volume`` cannot serve ``claim``, most fundamental first."""
        reasons: list[str] = []
        ref = claim_ref(volume)
        ph = phase(volume) or "Pending"
        if ref is not None and not is_volume_bound_to_claim(volume, claim):
            if ph in ("Released", "Failed"):
                reasons.append(ph)
            elif ph == "Bound":
                reasons.append(f"bound to {claim_ref_key(ref)}")
            else:
                reasons.append(f"reserved for {claim_ref_key(ref)}")
        elif ref is None and ph != "Available":
            reasons.append(ph)
        vclass, cclass = volume_class(volume), claim_class(claim)
        if vclass != cclass:
            reasons.append(f'class "{vclass}" != "{cclass}"')
        if not access_modes(claim) <= access_modes(volume):
            reasons.append(
                f"modes {abbreviate_modes(access_modes(volume))} "
                f"lack {abbreviate_modes(access_modes(claim) - access_modes(volume))}"
            )
        capacity = volume_capacity(volume)
        if capacity is None or capacity < claim_request(claim):
            have = (spec(volume).get("capacity") or {}).get("storage") or "0"
            want = ((spec(claim).get("resources") or {}).get("requests") or {}).get("storage")
            reasons.append(f"{have} < {want}")
        if volume_mode(volume) != volume_mode(claim):
            reasons.append(f"volumeMode {volume_mode(volume)} != {volume_mode(claim)}")
        if ref is None and not selector_matches(claim, volume):
            reasons.append("labels do not match selector")
        if o.deletion_timestamp(volume) is not None:
            reasons.append("being deleted")
        return reasons

    def _explain_candidates(self, claim: Obj) -> Iterator[Obj]:
        """Volumes most likely to be close first: those reserved for the claim, then the
        free ones of its class, then the rest."""
        seen: set[str] = set()
        first = list(self.reserved_for(claim_key(claim)))
        cls = claim_class(claim)
        for (_, vclass), bucket in self._free.items():
            if vclass == cls:
                first.extend(self.volumes[name] for _, name in bucket)
        for volume in itertools.chain(first, self.volumes.values()):
            name = o.name(volume)
            if name not in seen:
                seen.add(name)
                yield volume

    def explain(
        self, claim: Obj, *, limit: int = 3, max_chars: int = 200, scan_limit: int = 1000
    ) -> str:
        """``name: reason; name: reason`` for the closest refused volumes (fewest reasons,
        then name), at most ``limit`` of them and about ``max_chars``
        characters; ``""`` when there is no volume at all. At most ``scan_limit`` volumes
        are looked at, the likeliest first."""
        scored: list[tuple[int, str, list[str]]] = []
        # A bounded look: an explanation must not cost a scan of every volume on every
        # sync of every pending claim.
        for volume in itertools.islice(self._explain_candidates(claim), scan_limit):
            reasons = self.refusals(claim, volume)
            if reasons:
                scored.append((len(reasons), o.name(volume), reasons))
        scored.sort()
        parts: list[str] = []
        used = 0
        for _, name, reasons in scored[:limit]:
            part = f"{name}: {', '.join(reasons)}"
            if parts and used + len(part) + 2 > max_chars:
                break
            if len(part) > max_chars:
                part = part[: max_chars - 3] + "..."
            parts.append(part)
            used += len(part) + 2
        more = len(scored) - len(parts)
        text = "; ".join(parts)
        if more > 0 and text:
            text += f" (+{more} more)"
        return text
