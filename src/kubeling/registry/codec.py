"""Store keys and the object ⇄ bytes codec of the generic store.

Keys follow ``/registry/<group-or-core>/<resource>/[<namespace>/]<name>`` so that a prefix
read answers every list the API offers: one namespace, all namespaces, one cluster-scoped
collection. The stored bytes are the object's JSON without ``metadata.resourceVersion``:
the revision the store stamps on a write *is* the resourceVersion, so it is put back on read
from ``mod_revision`` and can never disagree with the store.
"""

from __future__ import annotations

from typing import Any

import orjson

from kubeling.machinery import schema as schemas
from kubeling.machinery.types import GroupVersionKind, Obj, ResourceInfo
from kubeling.storage.interface import KeyValue


def storage_group(info: ResourceInfo) -> str:
    group = info.group if info.storage_group is None else info.storage_group
    return group or "core"


def storage_resource(info: ResourceInfo) -> str:
    return info.storage_resource or info.plural


def key_prefix(info: ResourceInfo, namespace: str = "") -> str:
    """The prefix of a collection: every object, or one namespace's (trailing ``/``)."""
    base = f"/registry/{storage_group(info)}/{storage_resource(info)}/"
    if info.namespaced and namespace:
        return f"{base}{namespace}/"
    return base


def object_key(info: ResourceInfo, *, namespace: str, name: str) -> str:
    return f"{key_prefix(info, namespace)}{name}"


def encode(obj: Obj) -> bytes:
    """Stored bytes: the object without ``metadata.resourceVersion``."""
    meta = obj.get("metadata")
    if isinstance(meta, dict) and "resourceVersion" in meta:
        obj = {**obj, "metadata": {k: v for k, v in meta.items() if k != "resourceVersion"}}
    # orjson hands back its whole output buffer (16 kB for a 1.4 kB ConfigMap); stored values
    # live on in the watch window and the memory store, so keep an exact-size copy.
    return bytes(memoryview(orjson.dumps(obj)))


def decode(value: bytes, revision: int) -> Obj:
    """An object read back, with ``resourceVersion`` set to the revision given."""
    try:
        obj: Obj = orjson.loads(value)
    except orjson.JSONDecodeError:
        # Encryption at rest hook: values of encrypted resources are decrypted by
        # ``registry.encryption.EncryptingBackend`` before they get here; one still carrying
        # the ``k8s:enc:`` envelope means no key ring is configured. Say so, never garbage.
        if value.startswith(b"k8s:enc:"):
            from kubeling.registry.encryption import not_decrypted_error

            raise not_decrypted_error(value) from None
        raise
    obj.setdefault("metadata", {})["resourceVersion"] = str(revision)
    return obj


def decode_kv(kv: KeyValue) -> Obj:
    return decode(kv.value, kv.mod_revision)


# -- Go's omitempty -----------------------------------------------------------------------------

# A compiled schema spot: ("o", {field: (droppable, child spec)}), ("l", item spec),
# ("m", value spec) or None (a scalar or free-form JSON: nothing below is looked at). Keyed
# by the identity of the spec dict, which the cache keeps alive (the definitions never change).
_Spot = tuple[str, Any] | None
_SPOTS: dict[int, tuple[dict[str, Any], _Spot]] = {}
_OBJECT_META = "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"


def _container(node: schemas.SchemaNode) -> bool:
    return node.is_map or node.is_list


def _spot(spec: dict[str, Any]) -> _Spot:
    hit = _SPOTS.get(id(spec))
    if hit is not None and hit[0] is spec:
        return hit[1]
    resolved = _resolve(spec)
    out: _Spot = None
    if resolved.is_object:
        required = set(resolved.required)
        props: dict[str, Any] = resolved.spec["properties"]
        fields = {}
        for name, child_spec in props.items():
            child = _resolve(child_spec)
            droppable = name not in required and _container(child)
            if resolved.ref == _OBJECT_META and name == "managedFields":
                # ``[]`` is not nothing there: it asks to reset ownership (the field manager
                # sees a non-nil empty slice), so it reaches machinery.managedfields.
                droppable = False
            fields[name] = (droppable, child_spec)
        out = ("o", fields)
    elif resolved.is_list:
        out = ("l", resolved.spec["items"])
    elif resolved.is_map and isinstance(resolved.spec["additionalProperties"], dict):
        out = ("m", resolved.spec["additionalProperties"])
    _SPOTS[id(spec)] = (spec, out)
    return out


def _resolve(spec: dict[str, Any]) -> schemas.SchemaNode:
    ref = spec.get("$ref")
    if ref is None and len(spec.get("allOf") or ()) == 1:
        ref = spec["allOf"][0].get("$ref")
    if ref is None:
        return schemas.SchemaNode(spec)
    return schemas.for_definition(str(ref).removeprefix("#/$defs/"))


def _drop_empty(value: Any, spec: dict[str, Any]) -> None:
    spot = _spot(spec)
    if spot is None:
        return
    kind, sub = spot
    if kind == "o":
        if not isinstance(value, dict):
            return
        for name in [k for k, v in value.items() if isinstance(v, (dict, list))]:
            entry = sub.get(name)
            if entry is None:
                continue
            v = value[name]
            if not v and entry[0]:
                del value[name]
            elif v:
                _drop_empty(v, entry[1])
    elif kind == "l":
        if isinstance(value, list):
            for item in value:
                if isinstance(item, (dict, list)) and item:
                    _drop_empty(item, sub)
    elif isinstance(value, dict):
        for item in value.values():
            if isinstance(item, (dict, list)) and item:
                _drop_empty(item, sub)


def drop_empty(obj: Obj, gvk: GroupVersionKind) -> Obj:
    """Drop, in place, the empty maps and lists of optional fields, as upstream's decode
    into Go structs and encode with ``omitempty`` does: ``metadata.annotations: {}``,
    ``data: {}`` or ``finalizers: []`` in a request body are not there in what the server
    stores and answers. Required fields keep theirs (``EndpointSlice.endpoints: []``), and
    empty structs stay (``emptyDir: {}`` is a non-nil pointer in Go)."""
    name = schemas.definition_name(gvk)
    if name is not None:
        _drop_empty(obj, schemas.definitions()[name])
    return obj


def without_resource_version(obj: Obj) -> Obj:
    """``obj`` for comparisons that must ignore the resourceVersion: a new top level and
    metadata, everything else shared with ``obj`` (compare it, never mutate it). No deep copy:
    this runs twice on every update (bench/README.md)."""
    meta = obj.get("metadata")
    if not isinstance(meta, dict) or "resourceVersion" not in meta:
        return obj
    return {**obj, "metadata": {k: v for k, v in meta.items() if k != "resourceVersion"}}


def list_object(
    info: ResourceInfo,
    items: list[Obj],
    *,
    revision: int,
    continue_: str = "",
    remaining: int | None = None,
) -> Obj:
    """A ``<Kind>List``; items carry no kind/apiVersion, as upstream's JSON lists."""
    meta: dict[str, Any] = {"resourceVersion": str(revision)}
    if continue_:
        meta["continue"] = continue_
    if remaining is not None:
        meta["remainingItemCount"] = remaining
    for item in items:
        item.pop("kind", None)
        item.pop("apiVersion", None)
    return {
        "kind": f"{info.kind}List",
        "apiVersion": info.api_version,
        "metadata": meta,
        "items": items,
    }


# ObjectMeta's fields in the order upstream's JSON encoder writes them (struct order), so
# ``kubectl get -o json`` reads the same as against a real API server.
_META_ORDER = (
    "name",
    "generateName",
    "namespace",
    "selfLink",
    "uid",
    "resourceVersion",
    "generation",
    "creationTimestamp",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
    "labels",
    "annotations",
    "ownerReferences",
    "finalizers",
    "managedFields",
)


def ordered_meta(meta: dict[str, Any]) -> dict[str, Any]:
    out = {k: meta[k] for k in _META_ORDER if k in meta}
    if len(out) != len(meta):
        out.update((k, v) for k, v in meta.items() if k not in out)
    return out


def with_type_meta(info: ResourceInfo, obj: Obj) -> Obj:
    """Put ``kind`` and ``apiVersion`` first and ObjectMeta in upstream's field order."""
    rest = {k: v for k, v in obj.items() if k not in ("apiVersion", "kind")}
    m = rest.get("metadata")
    if isinstance(m, dict):
        rest["metadata"] = ordered_meta(m)
    return {"kind": info.kind, "apiVersion": info.api_version, **rest}


def bookmark(
    info: ResourceInfo, revision: int, *, annotations: dict[str, str] | None = None
) -> Obj:
    meta: dict[str, Any] = {"resourceVersion": str(revision)}
    if annotations:
        meta["annotations"] = dict(annotations)
    return {"kind": info.kind, "apiVersion": info.api_version, "metadata": meta}
