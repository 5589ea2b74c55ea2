"""The binder's volume index against a literal transcription of upstream's linear search
(``findBestMatchForClaim`` over mode groups + ``FindMatchingVolume``), on seeded random
volume sets with stores, updates and deletes in between."""

from __future__ import annotations

import random
from fractions import Fraction
from typing import Any

import pytest

from kubeling.controllers.volume import index as ix
from kubeling.machinery import objects
from kubeling.machinery.types import Obj

SIZES = ("1Gi", "2Gi", "500Mi", "3Gi", "10Gi", "1G")
MODE_SETS = (
    ("ReadWriteOnce",),
    ("ReadWriteOnce", "ReadWriteMany"),
    ("ReadOnlyMany",),
    ("ReadWriteOnce", "ReadOnlyMany", "ReadWriteMany"),
)
CLASSES = ("", "gold")
PHASES = ("Available", "Available", "Available", "Bound", "Released", "Pending")


def reference_match(volumes: list[Obj], claim: Obj, *, delay_binding: bool) -> Obj | None:
    """Upstream's algorithm, one group at a time, scanning every volume of the group."""
    wanted = ix.access_modes(claim)
    groups = sorted(
        {ix.access_modes(v) for v in volumes if wanted <= ix.access_modes(v)},
        key=lambda m: (len(m), sorted(m)),
    )
    request = ix.claim_request(claim)
    for group in groups:
        smallest: Obj | None = None
        smallest_size = Fraction(0)
        for volume in sorted(
            (v for v in volumes if ix.access_modes(v) == group),
            key=lambda v: v["metadata"]["name"],
        ):
            ref = ix.claim_ref(volume)
            if ref is not None and not ix.is_volume_bound_to_claim(volume, claim):
                continue
            size = ix.volume_capacity(volume) or Fraction(0)
            if size < request:
                continue
            if ix.volume_mode(volume) != ix.volume_mode(claim):
                continue
            if volume["metadata"].get("deletionTimestamp"):
                continue
            if ix.is_volume_bound_to_claim(volume, claim):
                return volume
            if delay_binding:
                continue
            if ix.phase(volume) != "Available":
                continue
            if not ix.selector_matches(claim, volume):
                continue
            if objects.volume_class(volume) != objects.claim_class(claim):
                continue
            if smallest is None or size < smallest_size:
                smallest, smallest_size = volume, size
        if smallest is not None:
            return smallest
    return None


def random_volume(rng: random.Random, i: int, claims: list[Obj]) -> Obj:
    spec: dict[str, Any] = {
        "capacity": {"storage": rng.choice(SIZES)},
        "accessModes": list(rng.choice(MODE_SETS)),
        "storageClassName": rng.choice(CLASSES),
        "volumeMode": rng.choice(("Filesystem", "Filesystem", "Block")),
    }
    meta: dict[str, Any] = {"name": f"pv-{i:03d}", "uid": f"pv-uid-{i}", "resourceVersion": "1"}
    if rng.random() < 0.3:
        meta["labels"] = {"tier": rng.choice(("a", "b"))}
    if rng.random() < 0.05:
        meta["deletionTimestamp"] = "2026-01-01T00:00:00Z"
    phase = rng.choice(PHASES)
    if rng.random() < 0.15:
        target = rng.choice(claims)
        spec["claimRef"] = {
            "namespace": "default",
            "name": target["metadata"]["name"],
            "uid": rng.choice(("", target["metadata"]["uid"], "stale-uid")),
        }
    return {"metadata": meta, "spec": spec, "status": {"phase": phase}}


def random_claim(rng: random.Random, i: int) -> Obj:
    spec: dict[str, Any] = {
        "accessModes": list(rng.choice(MODE_SETS[:3])),
        "resources": {"requests": {"storage": rng.choice(SIZES)}},
        "storageClassName": rng.choice(CLASSES),
    }
    if rng.random() < 0.3:
        spec["volumeMode"] = "Block"
    if rng.random() < 0.2:
        spec["selector"] = {"matchLabels": {"tier": rng.choice(("a", "b"))}}
    return {
        "metadata": {"name": f"claim-{i}", "namespace": "default", "uid": f"claim-uid-{i}"},
        "spec": spec,
    }


@pytest.mark.parametrize("seed", range(8))
@pytest.mark.parametrize("delay_binding", [False, True])
def test_index_matches_upstream_linear_search(seed: int, delay_binding: bool) -> None:
    rng = random.Random(seed)
    claims = [random_claim(rng, i) for i in range(25)]
    volumes = {v["metadata"]["name"]: v for v in (random_volume(rng, i, claims) for i in range(60))}
    index = ix.VolumeIndex()
    for volume in volumes.values():
        index.store(volume)
    # churn: updates (new resourceVersions) and deletes, as informers deliver them
    for step in range(40):
        name = rng.choice(sorted(volumes))
        if rng.random() < 0.3:
            index.delete(volumes.pop(name))
            continue
        fresh = random_volume(rng, int(name.split("-")[1]), claims)
        fresh["metadata"]["resourceVersion"] = str(2 + step)
        volumes[name] = fresh
        index.store(fresh)
    assert len(index) == len(volumes)
    for claim in claims:
        expected = reference_match(list(volumes.values()), claim, delay_binding=delay_binding)
        got = index.find_best_match(claim, delay_binding=delay_binding)
        expected_name = expected["metadata"]["name"] if expected else None
        got_name = got["metadata"]["name"] if got else None
        if expected_name != got_name and expected is not None and got is not None:
            # upstream keeps the first of equal sizes it meets (map order); kubeling the
            # first by name: equal sizes and both acceptable is the only allowed difference
            assert ix.volume_capacity(expected) == ix.volume_capacity(got)
            assert not ix.is_volume_bound_to_claim(got, claim)
        else:
            assert got_name == expected_name, claim


def test_index_ignores_stale_versions() -> None:
    index = ix.VolumeIndex()
    newer = {
        "metadata": {"name": "v", "uid": "u", "resourceVersion": "5"},
        "spec": {"capacity": {"storage": "1Gi"}, "accessModes": ["ReadWriteOnce"]},
        "status": {"phase": "Bound"},
    }
    older = {**newer, "metadata": {**newer["metadata"], "resourceVersion": "4"}}
    older["status"] = {"phase": "Available"}
    assert index.store(newer)
    assert not index.store(older)
    assert ix.phase(index.get("v") or {}) == "Bound"
    claim = {
        "metadata": {"name": "c", "namespace": "default", "uid": "cu"},
        "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}},
    }
    assert index.find_best_match(claim, delay_binding=False) is None
