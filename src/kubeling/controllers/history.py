"""ControllerRevision helpers: naming, hashing, ordering and writing revision history.

Upstream's ``pkg/controller/history`` for kubeling: a workload controller snapshots the part
of its spec that defines a version (a StatefulSet's pod template) as a ControllerRevision
named ``<parent>-<hash>``, labelled ``controller-revision-hash: <hash>`` and owned by the
parent, with a ``revision`` number that orders the history. Revisions are found again by
content, not by name, so rolling back to an old template re-numbers the old revision
instead of creating a new one.

The hash follows upstream's recipe: 32-bit FNV-1 over the revision's raw data plus the
decimal collision count, printed in decimal and passed through ``SafeEncodeString``'s
vowel-free alphabet. The raw data is the JSON Go's ``json.Marshal`` would write for the
same map (sorted keys, compact, HTML characters escaped); since kubeling's defaulting of a
pod template is close to but not byte-identical with upstream's, names are stable within
kubeling but are not guaranteed to equal the names a real cluster would pick for the same
manifest.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Final

import orjson

from kubeling.client.controller import retry_on_conflict
from kubeling.client.interface import Client
from kubeling.machinery import objects as o
from kubeling.machinery.errors import AlreadyExists, Conflict
from kubeling.machinery.resources import CONTROLLERREVISIONS
from kubeling.machinery.types import Obj

log = logging.getLogger(__name__)

CONTROLLER_REVISION_HASH_LABEL: Final = "controller-revision-hash"
"""``apps.ControllerRevisionHashLabelKey`` (also ``StatefulSetRevisionLabel`` on pods)."""

_SAFE_ALPHABET: Final = "bcdfghjklmnpqrstvwxz2456789"
_FNV32_OFFSET: Final = 0x811C9DC5
_FNV32_PRIME: Final = 0x01000193
_NAME_PREFIX_MAX: Final = 223


def safe_encode(text: str) -> str:
    """``rand.SafeEncodeString``: map each byte onto an alphabet without vowels (so no
    words appear in names) and without easily confused characters."""
    return "".join(_SAFE_ALPHABET[b % len(_SAFE_ALPHABET)] for b in text.encode())


def fnv32(data: bytes, value: int = _FNV32_OFFSET) -> int:
    """32-bit FNV-1 (multiply, then xor), Go's ``hash/fnv.New32``; pass ``value`` to
    continue a running hash."""
    for byte in data:
        value = ((value * _FNV32_PRIME) & 0xFFFFFFFF) ^ byte
    return value


def go_json(value: Any) -> bytes:
    """What ``json.Marshal`` of a ``map[string]interface{}`` gives: sorted keys, no spaces,
    and ``<``, ``>``, ``&``, U+2028 and U+2029 escaped (those only occur inside strings)."""
    raw = orjson.dumps(value, option=orjson.OPT_SORT_KEYS)
    if any(c in raw for c in (b"<", b">", b"&", b"\xe2\x80\xa8", b"\xe2\x80\xa9")):
        raw = (
            raw.replace(b"<", b"\\u003c")
            .replace(b">", b"\\u003e")
            .replace(b"&", b"\\u0026")
            .replace("\u2028".encode(), b"\\u2028")
            .replace("\u2029".encode(), b"\\u2029")
        )
    return raw


def hash_revision(data: Any, collision_count: int | None) -> str:
    """``history.HashControllerRevision`` of a revision whose ``data`` is ``data``."""
    value = fnv32(go_json(data))
    if collision_count is not None:
        value = fnv32(str(collision_count).encode(), value)
    return safe_encode(str(value))


def revision_name(prefix: str, hash_: str) -> str:
    """``history.ControllerRevisionName``: ``<prefix>-<hash>``, the prefix cut to 223."""
    return f"{prefix[:_NAME_PREFIX_MAX]}-{hash_}"


def new_controller_revision(
    parent: Obj,
    *,
    template_labels: Mapping[str, str] | None,
    data: Obj,
    revision: int,
    collision_count: int | None,
    annotations: Mapping[str, str] | None = None,
) -> Obj:
    """``history.NewControllerRevision``: a revision owned by ``parent`` (controller ref),
    labelled with the template's labels and the hash, named ``<parent>-<hash>``."""
    hash_ = hash_revision(data, collision_count)
    labels = dict(template_labels or {})
    labels[CONTROLLER_REVISION_HASH_LABEL] = hash_
    meta: Obj = {
        "name": revision_name(o.name(parent), hash_),
        "namespace": o.namespace(parent),
        "labels": labels,
        "ownerReferences": [o.owner_reference(parent)],
    }
    if annotations:
        meta["annotations"] = dict(annotations)
    return {
        "apiVersion": CONTROLLERREVISIONS.api_version,
        "kind": CONTROLLERREVISIONS.kind,
        "metadata": meta,
        "data": o.deep_copy(data),
        "revision": revision,
    }


def revision_number(rev: Obj) -> int:
    return int(rev.get("revision") or 0)


def sort_revisions(revisions: Iterable[Obj]) -> list[Obj]:
    """``history.SortControllerRevisions``: by revision number, then name."""
    return sorted(revisions, key=lambda r: (revision_number(r), o.name(r)))


def next_revision(sorted_revisions: Sequence[Obj]) -> int:
    """One more than the newest revision's number (1 for an empty history)."""
    return revision_number(sorted_revisions[-1]) + 1 if sorted_revisions else 1


def equal_revision(a: Obj | None, b: Obj | None) -> bool:
    """``history.EqualRevision``: the same data (hash labels are only a shortcut)."""
    if a is None or b is None:
        return a is b
    ha = o.labels(a).get(CONTROLLER_REVISION_HASH_LABEL)
    hb = o.labels(b).get(CONTROLLER_REVISION_HASH_LABEL)
    if ha and hb and ha != hb and a.get("data") != b.get("data"):
        return False
    return bool(a.get("data") == b.get("data"))


def find_equal_revisions(revisions: Iterable[Obj], needle: Obj) -> list[Obj]:
    """Every revision whose data equals ``needle``'s, in the input's order."""
    return [r for r in revisions if equal_revision(r, needle)]


async def create_controller_revision(
    client: Client, parent: Obj, *, revision: Obj, collision_count: int
) -> tuple[Obj, int]:
    """``realHistory.CreateControllerRevision``: create ``revision``, re-hashing with a
    bumped collision count while the name is taken by a revision with other data.

    Returns the stored revision and the (possibly increased) collision count, which the
    caller must persist in its status so the next sync picks the same name.
    """
    clone = o.deep_copy(revision)
    while True:
        hash_ = hash_revision(revision.get("data"), collision_count)
        clone["metadata"]["name"] = revision_name(o.name(parent), hash_)
        try:
            created = await client.create(CONTROLLERREVISIONS, clone, namespace=o.namespace(parent))
            return created, collision_count
        except AlreadyExists:
            existing = await client.get(
                CONTROLLERREVISIONS, name=clone["metadata"]["name"], namespace=o.namespace(parent)
            )
            if existing.get("data") == clone.get("data"):
                return existing, collision_count
            log.info(
                "ControllerRevision %s/%s exists with other data; bumping the collision count.",
                o.namespace(parent),
                clone["metadata"]["name"],
            )
            collision_count += 1


async def update_revision_number(client: Client, revision: Obj, number: int) -> Obj:
    """``realHistory.UpdateControllerRevision``: give an old revision a new number (a
    rollback), re-reading it on conflict."""
    current: Obj = o.deep_copy(revision)

    async def attempt() -> Obj:
        nonlocal current
        if revision_number(current) == number:
            return current
        current["revision"] = number
        try:
            return await client.update(CONTROLLERREVISIONS, current)
        except Conflict:
            current = await client.get(
                CONTROLLERREVISIONS, name=o.name(revision), namespace=o.namespace(revision)
            )
            raise

    return await retry_on_conflict(attempt)
