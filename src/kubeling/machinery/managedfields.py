"""Server-side apply and ``metadata.managedFields``: upstream's field ownership on JSON dicts.

This mirrors ``sigs.k8s.io/structured-merge-diff`` (field sets, compare, merge, prune) and
the apiserver's field manager chain (``Update``/``Apply`` operations, stripped metadata,
reset fields, ``kubectl`` last-applied handling, the cap of ten update managers, conflict
errors, timestamp-only changes ignored) closely enough that managedFields read the same as
a real cluster's and ``kubectl apply --server-side`` behaves the same.

Key design choice: a field set is kept in the ``FieldsV1`` wire shape itself -- nested dicts
keyed by path elements (``f:name``, ``k:{"name":"c"}``, ``v:"x"``, ``i:0``) where ``{}`` is
a leaf member and a ``"."`` key marks a member that also has children. Keys are built in
upstream's canonical text, so sets are compared, united and subtracted as plain dicts and
stored entries need no decoding on the hot path (every update tracks ownership). Results
are always normalised (no empty non-member nodes), so dict equality is set equality.
Structure (list maps, sets, atomic lists and maps) comes from the upstream OpenAPI
definitions via ``machinery.schema``, with upstream's ``schemaconv`` rules: an explicit
``x-kubernetes-list-type`` wins, else ``patch-strategy: merge`` makes a list associative by
its merge key (or a set), else lists are atomic.
"""

from __future__ import annotations

import datetime
import functools
from collections.abc import Iterator, Mapping
from typing import Any, Final

import orjson

from kubeling.machinery import schema as schema_mod
from kubeling.machinery.errors import BadRequest, Cause, Conflict, StatusError
from kubeling.machinery.objects import deep_copy
from kubeling.machinery.quantity import parse_quantity
from kubeling.machinery.schema import SchemaNode
from kubeling.machinery.types import Obj

__all__ = [
    "FieldSet",
    "UntypedValueError",
    "apply",
    "decode_fields_v1",
    "encode_fields_v1",
    "fields_of",
    "reset_fields",
    "track_update",
]

LAST_APPLIED_ANNOTATION: Final = "kubectl.kubernetes.io/last-applied-configuration"
MAX_UPDATE_MANAGERS: Final = 10
"""upstream ``DefaultMaxUpdateManagers``: older Update entries merge into ``ancient-changes``."""
ANCIENT_CHANGES: Final = "ancient-changes"
CONFLICT_REASON: Final = "FieldManagerConflict"

_M: Final = "."
"""The member marker inside a node that also has children."""

Node = dict[str, Any]

# Paths the apiserver's stripMetaManager takes out of every manager's set (a path-level
# difference, so children of metadata stay owned).
_STRIP: Final[Node] = {
    "f:apiVersion": {},
    "f:kind": {},
    "f:metadata": {
        _M: {},
        "f:name": {},
        "f:namespace": {},
        "f:creationTimestamp": {},
        "f:selfLink": {},
        "f:uid": {},
        "f:clusterName": {},
        "f:generation": {},
        "f:managedFields": {},
        "f:resourceVersion": {},
    },
}

# List-map keys the upstream OpenAPI gives a default for (``protocol`` of container, service
# and endpoint ports is ``TCP``); an applied item may omit them.
_KEY_DEFAULTS: Final[dict[str, Any]] = {"protocol": "TCP"}


class UntypedValueError(StatusError):
    """An object the schema cannot type for field sets (an associative list item without
    its key, duplicated keys in an applied list): upstream's field manager returns a plain
    error, which the API answers as a 500 with no reason."""

    reason = ""
    code = 500


class _TypedError(Exception):
    """A value does not fit the schema in a way field sets cannot express."""

    def __init__(self, message: str, path: tuple[str, ...] = ()) -> None:
        super().__init__(message)
        self.message = message
        self.path = path

    def within(self, pe: str) -> _TypedError:
        return _TypedError(self.message, (pe, *self.path))

    def __str__(self) -> str:
        prefix = _path_string(self.path)
        return f"{prefix}: {self.message}" if prefix else self.message


# -- canonical path element text -------------------------------------------------------------


def _json(value: Any) -> str:
    """Go's ``encoding/json`` text for a value: compact, sorted keys, HTML characters escaped."""
    text = orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode()
    if "<" in text or ">" in text or "&" in text or "\u2028" in text or "\u2029" in text:
        text = (
            text.replace("<", "\\u003c")
            .replace(">", "\\u003e")
            .replace("&", "\\u0026")
            .replace("\u2028", "\\u2028")
            .replace("\u2029", "\\u2029")
        )
    return text


@functools.lru_cache(maxsize=4096)
def _canonical_pe(pe: str) -> str:
    """A path element from a client, rewritten in canonical text (``k:`` fields sorted)."""
    if pe == _M or pe.startswith("f:"):
        return pe
    if pe.startswith("k:"):
        fields = orjson.loads(pe[2:])
        if not isinstance(fields, dict):
            raise ValueError(f"key path element is not an object: {pe}")
        return "k:" + _json(fields)
    if pe.startswith("v:"):
        return "v:" + _json(orjson.loads(pe[2:]))
    if pe.startswith("i:"):
        return f"i:{int(pe[2:])}"
    raise ValueError(f"unknown path element type: {pe}")


def _value_order(v: Any) -> tuple[Any, ...]:
    # upstream value.Compare: numbers < strings < bools < lists < maps < null
    if isinstance(v, bool):
        return (2, v)
    if isinstance(v, int | float):
        return (0, v)
    if isinstance(v, str):
        return (1, v)
    if isinstance(v, list):
        return (3, len(v), tuple(_value_order(x) for x in v))
    if isinstance(v, dict):
        return (4, len(v), tuple((k, _value_order(v[k])) for k in sorted(v)))
    return (5,)


@functools.lru_cache(maxsize=8192)
def _pe_order(pe: str) -> tuple[Any, ...]:
    """upstream ``PathElement.Compare``: fields, then keys, then values, then indexes."""
    kind, body = pe[:2], pe[2:]
    if kind == "f:":
        return (0, body)
    if kind == "k:":
        fields = orjson.loads(body)
        return (1, len(fields), tuple((k, _value_order(fields[k])) for k in sorted(fields)))
    if kind == "v:":
        return (2, _value_order(orjson.loads(body)))
    if kind == "i:":
        return (3, int(body))
    return (4, pe)


def _go_value(v: Any) -> str:
    """upstream ``value.ToString`` (strings quoted like Go's ``%q``)."""
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, str):
        return orjson.dumps(v).decode()
    if isinstance(v, list):
        return "[" + ",".join(_go_value(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{" + ",".join(f"{k}={_go_value(v[k])}" for k in sorted(v)) + "}"
    return str(v)


@functools.lru_cache(maxsize=8192)
def _pe_string(pe: str) -> str:
    kind, body = pe[:2], pe[2:]
    if kind == "f:":
        return "." + body
    if kind == "k:":
        fields = orjson.loads(body)
        return "[" + ",".join(f"{k}={_go_value(fields[k])}" for k in fields) + "]"
    if kind == "v:":
        return f"[={_go_value(orjson.loads(body))}]"
    if kind == "i:":
        return f"[{body}]"
    return pe


def _path_string(path: tuple[str, ...]) -> str:
    """upstream ``fieldpath.Path.String``: ``.spec.containers[name="c"].image``."""
    return "".join(_pe_string(pe) for pe in path)


# -- schema ----------------------------------------------------------------------------------

_STRUCT, _MAP, _ATOMIC, _LIST_MAP, _LIST_SET, _SCALAR, _DEDUCED = range(7)
_GRANULAR_MAPS: Final = (_STRUCT, _MAP, _DEDUCED)
_ASSOC_LISTS: Final = (_LIST_MAP, _LIST_SET)


class _Type:
    """One schema point compiled for field-set walks (upstream ``schema.Atom``)."""

    __slots__ = ("_children", "_item", "keys", "kind", "props", "required", "spec", "src")

    def __init__(self, spec: dict[str, Any], src: object) -> None:
        self.spec = spec
        self.src = src
        self.props: dict[str, Any] = spec.get("properties") or {}
        self.required: frozenset[str] = frozenset(spec.get("required") or ())
        self.keys: tuple[str, ...] = ()
        self._children: dict[str, _Type] = {}
        self._item: _Type | None = None
        atomic_map = spec.get("x-kubernetes-map-type") == "atomic"
        if "properties" in spec:
            self.kind = _ATOMIC if atomic_map else _STRUCT
        elif isinstance(spec.get("additionalProperties"), dict):
            self.kind = _ATOMIC if atomic_map else _MAP
        elif "items" in spec:
            self.kind = _list_kind(spec)
            if self.kind == _LIST_MAP:
                merge_key = spec.get("x-kubernetes-patch-merge-key")
                self.keys = tuple(spec.get("x-kubernetes-list-map-keys") or ()) or (
                    (str(merge_key),) if merge_key else ()
                )
                if not self.keys:
                    self.kind = _ATOMIC
        elif "oneOf" in spec:
            self.kind = _SCALAR
        else:
            t = spec.get("type")
            types = {t} if isinstance(t, str) else set(t or ())
            types.discard("null")
            self.kind = _DEDUCED if not types or types == {"object"} else _SCALAR

    def child(self, name: str) -> _Type:
        kind = self.kind
        if kind == _STRUCT:
            got = self._children.get(name)
            if got is None:
                prop = self.props.get(name)
                got = _resolve(prop) if prop is not None else _DEDUCED_TYPE
                self._children[name] = got
            return got
        if kind == _MAP:
            if self._item is None:
                self._item = _resolve(self.spec["additionalProperties"])
            return self._item
        return _DEDUCED_TYPE

    def item(self) -> _Type:
        if self._item is None:
            items = self.spec.get("items")
            self._item = _resolve(items) if isinstance(items, dict) else _DEDUCED_TYPE
        return self._item

    def has_field(self, name: str) -> bool:
        return self.kind == _STRUCT and name in self.props


def _list_kind(spec: dict[str, Any]) -> int:
    """upstream ``schemaconv.getListElementRelationship``."""
    list_type = spec.get("x-kubernetes-list-type")
    if list_type == "atomic":
        return _ATOMIC
    if list_type == "set":
        return _LIST_SET
    if list_type == "map":
        return _LIST_MAP
    if spec.get("x-kubernetes-patch-strategy") in ("merge", "merge,retainKeys"):
        return _LIST_MAP if spec.get("x-kubernetes-patch-merge-key") else _LIST_SET
    return _ATOMIC


_DEDUCED_TYPE: Final = _Type({}, None)
_TYPES: dict[int, _Type] = {}


def _resolve(prop: dict[str, Any]) -> _Type:
    """The compiled type of a property spec (``$ref`` followed, extensions kept); cached by
    the identity of the spec dict, which lives as long as the loaded definitions."""
    got = _TYPES.get(id(prop))
    if got is not None and got.src is prop:
        return got
    ref = prop.get("$ref")
    if ref is None and len(prop.get("allOf") or ()) == 1:
        ref = prop["allOf"][0].get("$ref")
    spec = prop
    if ref is not None:
        target = schema_mod.definitions()[ref.rsplit("/", 1)[-1]]
        extras = {k: v for k, v in prop.items() if k.startswith("x-kubernetes-")}
        spec = {**target, **extras} if extras else target
    got = _Type(spec, prop)
    _TYPES[id(prop)] = got
    return got


def _root(node: SchemaNode | None) -> _Type:
    if node is None:
        return _DEDUCED_TYPE
    return _resolve(node.spec)


def _item_pe(t: _Type, item: Any) -> str:
    """upstream ``listItemToPathElement`` for associative lists."""
    if t.kind == _LIST_SET:
        return "v:" + _json(item)
    if not isinstance(item, dict):
        raise _TypedError("expected map, got " + _json(item))
    fields: dict[str, Any] = {}
    for key in t.keys:
        value = item.get(key)
        if value is None:
            if key not in _KEY_DEFAULTS:
                raise _TypedError(
                    f'associative list with keys has an element that omits key field "{key}"'
                    " (and doesn't have default value)"
                )
            value = _KEY_DEFAULTS[key]
        fields[key] = value
    return "k:" + _json(fields)


# -- field set algebra on normalised nodes ---------------------------------------------------


def _is_member(node: Node) -> bool:
    return not node or _M in node


def _mk(member: bool, children: Node) -> Node | None:
    if not children:
        return {} if member else None
    if member:
        return {_M: {}, **children}
    return children


def _union(a: Node, b: Node, root: bool = False) -> Node:
    if a is b:
        return a
    if root and not b:
        return a
    if root and not a:
        return b
    out: Node = {}
    for k, v in a.items():
        if k == _M:
            continue
        bv = b.get(k)
        out[k] = v if bv is None else _union(v, bv)
    for k, v in b.items():
        if k != _M and k not in a:
            out[k] = v
    if root:
        return out
    made = _mk(_is_member(a) or _is_member(b), out)
    return made if made is not None else {}


def _difference(a: Node, b: Node, root: bool = False) -> Node | None:
    """upstream ``Set.Difference``: paths of ``a`` not in ``b`` (path by path)."""
    out: Node = {}
    for k, v in a.items():
        if k == _M:
            continue
        bv = b.get(k)
        if bv is None:
            out[k] = v
        else:
            rest = _difference(v, bv)
            if rest is not None:
                out[k] = rest
    if root:
        return out
    return _mk(_is_member(a) and not _is_member(b), out)


def _recursive_difference(a: Node, b: Node, root: bool = False) -> Node | None:
    """upstream ``Set.RecursiveDifference``: a member of ``b`` removes its whole subtree."""
    out: Node = {}
    for k, v in a.items():
        if k == _M:
            continue
        bv = b.get(k)
        if bv is None:
            out[k] = v
        elif not _is_member(bv):
            rest = _recursive_difference(v, bv)
            if rest is not None:
                out[k] = rest
    if root:
        return out
    return _mk(_is_member(a), out)


def _intersection(a: Node, b: Node, root: bool = False) -> Node | None:
    out: Node = {}
    for k, v in a.items():
        if k == _M:
            continue
        bv = b.get(k)
        if bv is not None:
            both = _intersection(v, bv)
            if both is not None:
                out[k] = both
    if root:
        return out
    return _mk(_is_member(a) and _is_member(b), out)


def _member_paths(node: Node, prefix: tuple[str, ...], out: list[tuple[str, ...]]) -> None:
    if prefix and _is_member(node):
        out.append(prefix)
    for k in sorted((k for k in node if k != _M), key=_pe_order):
        _member_paths(node[k], (*prefix, k), out)


def _ensure_named_members(node: Node, t: _Type, root: bool = False) -> Node:
    """upstream ``EnsureNamedFieldsAreMembers``: a declared struct field with children is
    also a member (so prune can remove it); map keys are not."""
    out: Node = {}
    for k, v in node.items():
        if k == _M:
            continue
        if k.startswith("f:"):
            name = k[2:]
            nv = _ensure_named_members(v, t.child(name)) if v else v
            if nv and _M not in nv and t.has_field(name):
                nv = {_M: {}, **nv}
            out[k] = nv
        elif k.startswith(("k:", "v:")):
            out[k] = _ensure_named_members(v, t.item()) if v else v
        else:
            out[k] = v
    if root or not _is_member(node):
        return out
    return {_M: {}, **out} if out else {}


class FieldSet:
    """A set of field paths, stored in ``FieldsV1`` shape (see the module docstring).

    Treat instances as immutable: operations return new sets and may share structure.
    """

    __slots__ = ("_root",)

    def __init__(self, root: Node | None = None) -> None:
        self._root: Node = root or {}

    @classmethod
    def from_paths(cls, *paths: tuple[str, ...] | list[str]) -> FieldSet:
        """Build from paths of path-element texts, e.g. ``("f:spec", "f:replicas")``."""
        root: Node = {}
        for path in paths:
            node: Node = {}
            for pe in reversed(path):
                node = {pe: node}
            root = _union(root, node, root=True)
        return cls(root)

    @property
    def raw(self) -> Node:
        """The normalised node tree (read-only)."""
        return self._root

    def empty(self) -> bool:
        return not self._root

    def __bool__(self) -> bool:
        return bool(self._root)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, FieldSet) and self._root == other._root

    def __repr__(self) -> str:
        return f"FieldSet({self.strings()!r})"

    def union(self, other: FieldSet) -> FieldSet:
        return FieldSet(_union(self._root, other._root, root=True))

    def difference(self, other: FieldSet) -> FieldSet:
        return FieldSet(_difference(self._root, other._root, root=True))

    def recursive_difference(self, other: FieldSet) -> FieldSet:
        return FieldSet(_recursive_difference(self._root, other._root, root=True))

    def intersection(self, other: FieldSet) -> FieldSet:
        return FieldSet(_intersection(self._root, other._root, root=True))

    def paths(self) -> list[tuple[str, ...]]:
        """Member paths in upstream's order."""
        out: list[tuple[str, ...]] = []
        _member_paths(self._root, (), out)
        return out

    def strings(self) -> list[str]:
        """Member paths as upstream prints them (``.spec.replicas``)."""
        return [_path_string(p) for p in self.paths()]

    def __iter__(self) -> Iterator[tuple[str, ...]]:
        return iter(self.paths())


# -- FieldsV1 --------------------------------------------------------------------------------


def _encode(node: Node) -> Node:
    out: Node = {}
    children = [k for k in node if k != _M]
    if _M in node and children:
        out[_M] = {}
    for k in sorted(children, key=_pe_order):
        out[k] = _encode(node[k])
    return out


def encode_fields_v1(fs: FieldSet) -> Obj:
    """The ``fieldsV1`` object of a set, in upstream's key order (``.`` first, then fields,
    keys, values, indexes)."""
    return _encode(fs.raw)


def _decode(raw: Any, root: bool = False) -> Node:
    if not isinstance(raw, dict):
        raise ValueError("fieldsV1 entries must be objects")
    out: Node = {}
    member = False
    for k, v in raw.items():
        if k == _M:
            member = True
            continue
        child = _decode(v)
        out[_canonical_pe(k)] = child
    if root:
        return out
    if member and out:
        return {_M: {}, **out}
    return out


def decode_fields_v1(raw: Obj) -> FieldSet:
    """Parse a ``fieldsV1`` object; ``ValueError`` if it is not one."""
    return FieldSet(_decode(raw, root=True))


# -- fields of an object ---------------------------------------------------------------------


def _node_of(v: Any, t: _Type, member: bool) -> Node | None:
    """upstream ``ToFieldSet`` below one path; ``member`` says whether the path itself is in
    the set when the value has children."""
    kind = t.kind
    if isinstance(v, dict) and kind in _GRANULAR_MAPS:
        if not v:
            return {}
        out: Node = {_M: {}} if member else {}
        for key, cv in v.items():
            pe = "f:" + key
            try:
                child = _node_of(cv, t.child(key), not t.has_field(key))
            except _TypedError as e:
                raise e.within(pe) from None
            if child is not None:
                out[pe] = child
        if member:
            return out if len(out) > 1 else {}
        return out or None
    if isinstance(v, list) and kind in _ASSOC_LISTS:
        out = {_M: {}} if member else {}
        it = t.item()
        for i, item in enumerate(v):
            try:
                pe = _item_pe(t, item)
            except _TypedError as e:
                raise _TypedError(f"element {i}: {e}") from None
            if pe in out:
                # upstream keeps duplicated entries atomic: the item is owned as a whole.
                out[pe] = {}
                continue
            if kind == _LIST_MAP:
                try:
                    child = _node_of(item, it, True)
                except _TypedError as e:
                    raise e.within(pe) from None
            else:
                child = {}
            out[pe] = child if child is not None else {}
        if member:
            return out if len(out) > 1 else {}
        return out or None
    return {}


def fields_of(obj: Obj, *, schema: SchemaNode | None) -> FieldSet:
    """The field set of an object, as upstream's ``ToFieldSet``: every leaf, every list
    item, every map entry, null or empty maps; struct fields only through their children.
    ``apiVersion``, ``kind`` and ``metadata.name`` are included (the managers strip them)."""
    try:
        node = _node_of(obj, _root(schema), False)
    except _TypedError as e:
        raise ValueError(str(e)) from None
    return FieldSet(node or {})


def _all_node(v: Any, t: _Type) -> Node:
    """Every path at and below a value that exists on one side only (compare's Added or
    Removed: leaves plus every non-leaf node)."""
    kind = t.kind
    if isinstance(v, dict) and v and kind in _GRANULAR_MAPS:
        out: Node = {_M: {}}
        for key, cv in v.items():
            out["f:" + key] = _all_node(cv, t.child(key))
        return out
    if isinstance(v, list) and v and kind in _ASSOC_LISTS:
        out = {_M: {}}
        it = t.item()
        for item in v:
            pe = _item_pe(t, item)
            if pe not in out:
                out[pe] = _all_node(item, it) if kind == _LIST_MAP else {}
        return out
    return {}


# -- compare ---------------------------------------------------------------------------------

_ABSENT: Final = object()
_Diff = tuple[Node | None, Node | None, Node | None]
_NO_DIFF: Final[_Diff] = (None, None, None)
_LEAF_MODIFIED: Final[_Diff] = (None, {}, None)


def _index_items(t: _Type, items: list[Any]) -> tuple[list[tuple[str, Any]], dict[str, Any]]:
    order: list[tuple[str, Any]] = []
    seen: dict[str, Any] = {}
    for i, item in enumerate(items):
        try:
            pe = _item_pe(t, item)
        except _TypedError as e:
            raise _TypedError(f"element {i}: {e}") from None
        order.append((pe, item))
        if pe in seen:
            seen[pe] = _ABSENT  # duplicated: no single item to pair with
        else:
            seen[pe] = item
    return order, seen


def _compare(lhs: Any, rhs: Any, t: _Type) -> _Diff:
    """upstream ``TypedValue.Compare`` below one path where both sides exist (either may be
    null): (added, modified, removed) nodes; the path itself is never added or removed."""
    if lhs == rhs:
        return _NO_DIFF
    kind = t.kind
    if (
        kind in _GRANULAR_MAPS
        and (lhs is None or isinstance(lhs, dict))
        and (rhs is None or isinstance(rhs, dict))
    ):
        ld: dict[str, Any] = lhs or {}
        rd: dict[str, Any] = rhs or {}
        if not ld and not rd:
            return _LEAF_MODIFIED
        added: Node = {}
        modified: Node = {}
        removed: Node = {}
        for key, rv in rd.items():
            lv = ld.get(key, _ABSENT)
            if lv is _ABSENT:
                ct = t.child(key)
                if key in _ZERO_STRUCTS and ct.kind == _STRUCT and isinstance(rv, dict):
                    # A Go object always carries its non-pointer structs: compare with {}.
                    _put(added, modified, removed, "f:" + key, _compare({}, rv, ct))
                else:
                    added["f:" + key] = _all_node(rv, ct)
            elif lv != rv:
                _put(added, modified, removed, "f:" + key, _compare(lv, rv, t.child(key)))
        for key, lv in ld.items():
            if key not in rd:
                ct = t.child(key)
                if key in _ZERO_STRUCTS and ct.kind == _STRUCT and isinstance(lv, dict):
                    _put(added, modified, removed, "f:" + key, _compare(lv, {}, ct))
                else:
                    removed["f:" + key] = _all_node(lv, ct)
        return (added or None, modified or None, removed or None)
    if (
        kind in _ASSOC_LISTS
        and (lhs is None or isinstance(lhs, list))
        and (rhs is None or isinstance(rhs, list))
    ):
        ll: list[Any] = lhs or []
        rl: list[Any] = rhs or []
        if not ll and not rl:
            return _LEAF_MODIFIED
        it = t.item()
        _, lseen = _index_items(t, ll)
        _, rseen = _index_items(t, rl)
        added, modified, removed = {}, {}, {}
        for pe, ritem in rseen.items():
            if pe not in lseen:
                added[pe] = _all_node(ritem, it) if kind == _LIST_MAP else {}
                continue
            litem = lseen[pe]
            if litem is _ABSENT or ritem is _ABSENT:
                # duplicated keys: the item can only be compared as a whole.
                modified[pe] = {}
            elif litem != ritem and kind == _LIST_MAP:
                _put(added, modified, removed, pe, _compare(litem, ritem, it))
        for pe, litem in lseen.items():
            if pe not in rseen:
                removed[pe] = _all_node(litem, it) if kind == _LIST_MAP else {}
        return (added or None, modified or None, removed or None)
    return _LEAF_MODIFIED


def _put(added: Node, modified: Node, removed: Node, pe: str, diff: _Diff) -> None:
    a, m, r = diff
    if a is not None:
        added[pe] = a
    if m is not None:
        modified[pe] = m
    if r is not None:
        removed[pe] = r


def _compare_root(lhs: Obj, rhs: Obj, t: _Type) -> tuple[Node, Node, Node]:
    a, m, r = _compare(lhs, rhs, t)
    return a or {}, m or {}, r or {}


_ZERO_STRUCTS: Final = frozenset({"metadata", "spec", "status", "template", "resources"})


def _zero_object(new: Any, t: _Type) -> Any:
    """What upstream compares a created object against: the Go zero value of the kind,
    approximated as the non-pointer structs (metadata, spec, status, pod templates) being
    present and required lists and maps being null; everything else is absent, so a
    creator owns e.g. ``.metadata.labels`` itself (``.: {}``) but not ``.spec``."""
    out: dict[str, Any] = {}
    if not isinstance(new, dict) or t.kind != _STRUCT:
        return out
    for key, v in new.items():
        ct = t.child(key)
        if (
            isinstance(v, dict)
            and ct.kind == _STRUCT
            and (key in _ZERO_STRUCTS or key in t.required)
        ):
            out[key] = _zero_object(v, ct)
        elif key in t.required and ct.kind in (_LIST_MAP, _LIST_SET, _MAP):
            out[key] = None
    return out


# -- merge and remove ------------------------------------------------------------------------


def _clean(v: Any) -> Any:
    """A copy without null map values (a null in an applied configuration unsets)."""
    if isinstance(v, dict):
        return {k: _clean(x) for k, x in v.items() if x is not None}
    if isinstance(v, list):
        return [_clean(x) for x in v]
    return v


def _merge(lhs: Any, rhs: Any, t: _Type) -> Any:
    """upstream ``TypedValue.Merge``: the applied value wins at leaves and atomic nodes;
    granular maps merge by key; associative lists merge by key in upstream's order."""
    kind = t.kind
    if isinstance(lhs, dict) and isinstance(rhs, dict) and kind in _GRANULAR_MAPS:
        if not lhs and not rhs:
            return {}
        out = dict(lhs)
        for key, rv in rhs.items():
            if rv is None:
                out.pop(key, None)
                continue
            lv = lhs.get(key)
            pe = "f:" + key
            try:
                out[key] = _merge(lv, rv, t.child(key)) if lv is not None else _clean(rv)
            except _TypedError as e:
                raise e.within(pe) from None
        return out
    if isinstance(lhs, list) and isinstance(rhs, list) and kind in _ASSOC_LISTS:
        return _merge_list(lhs, rhs, t)
    return _clean(rhs)


def _merge_list(lhs: list[Any], rhs: list[Any], t: _Type) -> list[Any]:
    it = t.item()
    lorder, lseen = _index_items(t, lhs)
    rorder, rseen = _index_items(t, rhs)
    if len(rorder) != len(rseen):
        dup = next(pe for pe, v in rseen.items() if v is _ABSENT)
        raise _TypedError(f"duplicate entries for key {_pe_string(dup)}")
    shared = [pe for pe, _ in rorder if pe in lseen]
    next_shared = shared.pop(0) if shared else None
    merged_rhs: set[str] = set()
    out: list[Any] = []

    def item(pe: str, lchild: Any, rchild: Any) -> Any:
        if rchild is None:
            return lchild
        if lchild is None or lchild is _ABSENT:
            return _clean(rchild)
        try:
            return _merge(lchild, rchild, it) if t.kind == _LIST_MAP else rchild
        except _TypedError as e:
            raise e.within(pe) from None

    li = ri = 0
    while li < len(lorder) or ri < len(rorder):
        if li < len(lorder) and ri < len(rorder):
            lpe = lorder[li][0]
            if lpe == rorder[ri][0]:
                merged_rhs.add(lpe)
                out.append(item(lpe, lseen[lpe], rseen[lpe]))
                li += 1
                ri += 1
                next_shared = shared.pop(0) if shared else None
                continue
            if lpe in rseen and next_shared is not None and next_shared != lpe:
                li += 1
                continue
        if li < len(lorder):
            lpe, litem = lorder[li]
            if lpe not in rseen:
                out.append(litem)
                li += 1
                continue
            if lpe in merged_rhs:
                li += 1
                continue
        if ri < len(rorder):
            rpe = rorder[ri][0]
            merged_rhs.add(rpe)
            out.append(item(rpe, lseen.get(rpe), rseen[rpe]))
            ri += 1
            if next_shared is not None and next_shared == rpe:
                next_shared = shared.pop(0) if shared else None
    return out


def _remove_items(v: Any, s: Node, t: _Type) -> Any:
    """upstream ``RemoveItems``: drop every member path of ``s`` (with its subtree)."""
    if isinstance(v, dict):
        out: dict[str, Any] = {}
        for key, cv in v.items():
            sv = s.get("f:" + key)
            if sv is None:
                out[key] = cv
            elif not _is_member(sv):
                out[key] = _remove_items(cv, sv, t.child(key))
        return out
    if isinstance(v, list) and t.kind in _ASSOC_LISTS:
        kept: list[Any] = []
        it = t.item()
        for item in v:
            sv = s.get(_item_pe(t, item))
            if sv is None:
                kept.append(item)
            elif not _is_member(sv):
                kept.append(_remove_items(item, sv, it))
        return kept
    return v


def _set_of(v: Obj, t: _Type) -> Node:
    return _ensure_named_members(_node_of(v, t, False) or {}, t, root=True)


def _prune(merged: Obj, owned: Node, last: Node, t: _Type) -> Obj:
    """upstream ``Updater.prune``: remove what the applier applied last time but not now,
    unless another manager (or this apply) owns it; fields nobody ever owned stay."""
    last_e = _ensure_named_members(last, t, root=True)
    owned_e = _ensure_named_members(owned, t, root=True)
    if not _difference(last_e, owned_e, root=True):
        return merged
    pruned = _remove_items(merged, last_e, t)
    merged_set = _set_of(merged, t)
    # addBackOwnedItems
    keep = _union(_set_of(pruned, t), owned_e, root=True)
    pruned = _remove_items(merged, _difference(merged_set, keep, root=True) or {}, t)
    # addBackDanglingItems
    gone = _difference(merged_set, _set_of(pruned, t), root=True) or {}
    result: Obj = _remove_items(merged, _intersection(gone, last_e, root=True) or {}, t)
    return result


# -- managers --------------------------------------------------------------------------------


class _Manager:
    __slots__ = ("api_version", "fields", "manager", "operation", "raw", "subresource", "time")

    def __init__(
        self,
        *,
        manager: str,
        operation: str,
        api_version: str,
        subresource: str,
        time: str | None,
        fields: Node,
        raw: Obj | None = None,
    ) -> None:
        self.manager = manager
        self.operation = operation
        self.api_version = api_version
        self.subresource = subresource
        self.time = time
        self.fields = fields
        self.raw = raw
        """The entry as read, while nothing about it changed (re-used verbatim)."""

    def changed(self, fields: Node, *, time: str | None = None) -> _Manager:
        """A copy with another field set (and ``time``, if given); managers are never
        modified in place, so the sets read from the live object stay comparable."""
        return _Manager(
            manager=self.manager,
            operation=self.operation,
            api_version=self.api_version,
            subresource=self.subresource,
            time=self.time if time is None else time,
            fields=fields,
        )

    @property
    def applied(self) -> bool:
        return self.operation == "Apply"

    def describe(self) -> str:
        """upstream ``printManager``."""
        text = orjson.dumps(self.manager).decode()
        if self.subresource:
            text = f"{text} with subresource {orjson.dumps(self.subresource).decode()}"
        if self.operation == "Update":
            text = f"{text} using {self.api_version}"
        return text

    def encode(self) -> Obj:
        if self.raw is not None:
            return dict(self.raw)
        entry: Obj = {}
        if self.manager:
            entry["manager"] = self.manager
        if self.operation:
            entry["operation"] = self.operation
        if self.api_version:
            entry["apiVersion"] = self.api_version
        if self.time:
            entry["time"] = self.time
        entry["fieldsType"] = "FieldsV1"
        entry["fieldsV1"] = _encode(self.fields)
        if self.subresource:
            entry["subresource"] = self.subresource
        return entry


_Ident = tuple[str, str, str, str]


def _ident(manager: str, operation: str, api_version: str, subresource: str) -> _Ident:
    """upstream ``BuildManagerIdentifier``: appliers are one manager across API versions."""
    return (manager, operation, "" if operation == "Apply" else api_version, subresource)


def _decode_managers(raw: Any, *, canonical: bool) -> dict[_Ident, _Manager]:
    """upstream ``DecodeManagedFields``; ``ValueError`` on anything malformed."""
    if raw is None:
        return {}
    if not isinstance(raw, list):
        raise ValueError("managedFields must be a list")
    out: dict[_Ident, _Manager] = {}
    for e in raw:
        if not isinstance(e, dict):
            raise ValueError("managedFields entries must be objects")
        ftype = e.get("fieldsType") or ""
        if ftype and ftype != "FieldsV1":
            raise ValueError(f"invalid fieldsType {ftype!r}")
        fv1 = e.get("fieldsV1")
        if fv1 is None:
            fields: Node = {}
        elif canonical:
            fields = _decode(fv1, root=True)
        else:
            if not isinstance(fv1, dict):
                raise ValueError("fieldsV1 must be an object")
            fields = fv1
        m = _Manager(
            manager=str(e.get("manager") or ""),
            operation=str(e.get("operation") or ""),
            api_version=str(e.get("apiVersion") or ""),
            subresource=str(e.get("subresource") or ""),
            time=e.get("time"),
            fields=fields,
            raw=None if canonical else e,
        )
        key = _ident(m.manager, m.operation, m.api_version, m.subresource)
        if key in out:
            raise ValueError(f"duplicate entries for manager {key!r}")
        out[key] = m
    return out


@functools.lru_cache(maxsize=1024)
def _seconds(time: str | None) -> int:
    if not time:
        return 0
    try:
        return int(datetime.datetime.fromisoformat(time.replace("Z", "+00:00")).timestamp())
    except ValueError:
        return 0


def _cap_update_managers(managers: dict[_Ident, _Manager]) -> None:
    """upstream ``capManagersManager``: past ten Update entries, the oldest merge into one
    ``ancient-changes`` entry per API version."""
    updaters = [k for k, m in managers.items() if not m.applied]
    if len(updaters) <= MAX_UPDATE_MANAGERS:
        return
    updaters.sort(key=lambda k: (_seconds(managers[k].time), k))
    first_by_version: dict[str, _Ident] = {}
    length = len(updaters)
    for key in updaters:
        if length <= MAX_UPDATE_MANAGERS:
            break
        m = managers[key]
        version = m.api_version
        bucket = _ident(ANCIENT_CHANGES, "Update", version, "")
        first = first_by_version.get(version)
        if first is None:
            first_by_version[version] = key
            continue
        if bucket not in managers:
            moved = managers.pop(first)
            managers[bucket] = _Manager(
                manager=ANCIENT_CHANGES,
                operation="Update",
                api_version=version,
                subresource="",
                time=moved.time,
                fields=moved.fields,
            )
        target = managers[bucket]
        # The bucket takes the time of the newest update merged into it.
        managers[bucket] = target.changed(_union(target.fields, m.fields, root=True), time=m.time)
        del managers[key]
        length -= 1


def _encode_managers(managers: Mapping[_Ident, _Manager]) -> list[Obj]:
    """upstream ``sortEncodedManagedFields``: Apply before Update, then by time, manager,
    API version and subresource."""
    entries = [m for m in managers.values() if m.fields]
    entries.sort(
        key=lambda m: (m.operation, _seconds(m.time), m.manager, m.api_version, m.subresource)
    )
    return [m.encode() for m in entries]


def _same_sets(a: Mapping[_Ident, _Manager], b: Mapping[_Ident, _Manager]) -> bool:
    if a.keys() != b.keys():
        return False
    return all(a[k].fields == b[k].fields for k in a)


def _is_reset(sent: Any) -> bool:
    """upstream ``isResetManagedFields``: ``[]`` or ``[{}]`` clears ownership."""
    if not isinstance(sent, list):
        return False
    return len(sent) == 0 or (len(sent) == 1 and sent[0] == {})


def _without_managed_fields(obj: Obj) -> Obj:
    meta = obj.get("metadata")
    if not isinstance(meta, dict) or "managedFields" not in meta:
        return obj
    return {**obj, "metadata": {k: v for k, v in meta.items() if k != "managedFields"}}


def _set_managed_fields(obj: Obj, entries: list[Obj]) -> None:
    meta = obj.setdefault("metadata", {})
    if entries:
        meta["managedFields"] = entries
    else:
        meta.pop("managedFields", None)


def reset_fields(subresource: str, *, status_subresource: bool) -> FieldSet | None:
    """The fields a write through ``subresource`` cannot own (upstream ``GetResetFields``):
    status on the main resource of a kind with a status subresource, spec through
    ``/status``."""
    if not status_subresource:
        return None
    if subresource == "":
        return FieldSet({"f:status": {}})
    if subresource == "status":
        return FieldSet({"f:spec": {}})
    return None


# -- Update ----------------------------------------------------------------------------------


def track_update(
    old: Obj | None,
    new: Obj,
    *,
    manager: str,
    schema: SchemaNode | None,
    api_version: str,
    now: str,
    subresource: str = "",
    ignored: FieldSet | None = None,
) -> None:
    """Record a non-apply write in ``new["metadata"]["managedFields"]`` (in place; ``old``
    is not modified; ``old`` is None on create).

    As upstream's field manager: the writer (operation ``Update``, keyed by manager, API
    version and subresource) gains the fields the write added or changed and its ``time``
    becomes ``now``; every other manager loses those fields and the removed ones; entries
    left empty disappear; more than ten Update entries merge into ``ancient-changes``.
    Ownership comes from the request's managedFields when it carries any (``[]`` or
    ``[{}]`` resets them), else from ``old``; writes to a subresource always use ``old``'s.
    A write that changes nothing but managedFields timestamps keeps the old ones.
    """
    t = _root(schema)
    meta = new.setdefault("metadata", {})
    old_raw = ((old or {}).get("metadata") or {}).get("managedFields")
    sent = meta.get("managedFields")
    managers: dict[_Ident, _Manager]
    try:
        old_managers = _decode_managers(old_raw, canonical=False)
    except ValueError:
        old_managers = {}
    if subresource or sent is None or sent is old_raw or sent == old_raw:
        managers = dict(old_managers)
    elif _is_reset(sent):
        managers = {}
    else:
        try:
            managers = _decode_managers(sent, canonical=True)
        except ValueError:
            managers = {}
        if not managers:
            managers = dict(old_managers)
    new_v = _without_managed_fields(new)
    old_v = _without_managed_fields(old) if old is not None else _zero_object(new_v, t)
    try:
        added, modified, removed = _compare_root(old_v, new_v, t)
    except _TypedError:
        # upstream UpdateNoErrors: keep the live object's managedFields.
        _set_managed_fields(new, list(old_raw or []))
        return
    if ignored is not None and ignored:
        added = _recursive_difference(added, ignored.raw, root=True) or {}
        modified = _recursive_difference(modified, ignored.raw, root=True) or {}
        removed = _recursive_difference(removed, ignored.raw, root=True) or {}
    changed = _union(modified, added, root=True)
    if changed or removed:
        for key, m in list(managers.items()):
            rest = m.fields
            if changed:
                rest = _difference(rest, changed, root=True) or {}
            if removed:
                rest = _difference(rest, removed, root=True) or {}
            if rest != m.fields:
                managers[key] = m.changed(rest)
    gained = _difference(changed, _STRIP, root=True) or {}
    if gained:
        key = _ident(manager, "Update", api_version, subresource)
        mine = managers.get(key)
        if mine is None:
            mine = managers[key] = _Manager(
                manager=manager,
                operation="Update",
                api_version=api_version,
                subresource=subresource,
                time=now,
                fields={},
            )
        managers[key] = mine.changed(_union(mine.fields, gained, root=True), time=now)
    _cap_update_managers(managers)
    if old is not None and new_v == old_v and _same_sets(managers, old_managers):
        # upstream IgnoreManagedFieldsTimestampsTransformer: no write for a no-op.
        _set_managed_fields(new, list(old_raw or []))
        return
    _set_managed_fields(new, _encode_managers(managers))


# -- Apply -----------------------------------------------------------------------------------


def _gvk_text(applied: Obj) -> str:
    api_version = str(applied.get("apiVersion") or "")
    group, _, version = api_version.rpartition("/")
    return f"{group}/{version}, Kind={applied.get('kind') or ''}"


def _conflict_error(conflicts: list[tuple[_Manager, tuple[str, ...]]]) -> Conflict:
    """upstream ``NewConflictError``: message and one ``FieldManagerConflict`` cause each."""
    causes = [
        Cause(
            reason=CONFLICT_REASON,
            message=f"conflict with {m.describe()}",
            field=_path_string(path),
        )
        for m, path in conflicts
    ]
    if len(conflicts) == 1:
        m, path = conflicts[0]
        message = (
            f"Apply failed with 1 conflict: conflict with {m.describe()}: {_path_string(path)}"
        )
    else:
        by_manager: dict[str, list[str]] = {}
        for m, path in conflicts:
            by_manager.setdefault(m.describe(), []).append(_path_string(path))
        lines: list[str] = []
        for who in sorted(by_manager):
            lines.append(f"conflicts with {who}:")
            lines.extend(f"- {p}" for p in by_manager[who])
        message = f"Apply failed with {len(conflicts)} conflicts: " + "\n".join(lines)
    return Conflict(message, causes=causes)


def _allowed_by_last_applied(live: Obj, t: _Type, api_version: str) -> Node:
    """upstream ``lastAppliedManager``: fields of the client-side-apply annotation whose
    values still match the live object may be taken over by ``kubectl`` without a conflict
    (only that manager name: others opt out this way)."""
    annotations = (live.get("metadata") or {}).get("annotations") or {}
    text = annotations.get(LAST_APPLIED_ANNOTATION)
    if not text:
        return {}
    try:
        last = orjson.loads(text)
    except orjson.JSONDecodeError:
        return {}
    if not isinstance(last, dict) or last.get("apiVersion") != api_version:
        return {}
    try:
        last_set = _node_of(last, t, False) or {}
        added, modified, removed = _compare_root(last, _without_managed_fields(live), t)
    except _TypedError:
        return {}
    # Fields whose last-applied value is not what the live object holds stay contested.
    for differing in (modified, added, removed):
        last_set = _difference(last_set, differing, root=True) or {}
    return last_set


def _last_applied_text(applied: Obj) -> str:
    """upstream ``buildLastApplied``: the applied configuration without the annotation,
    as Go encodes an unstructured object (sorted keys, trailing newline)."""
    copy_ = dict(applied)
    meta = dict(copy_.get("metadata") or {})
    annotations = meta.get("annotations")
    if isinstance(annotations, dict):
        meta["annotations"] = {k: v for k, v in annotations.items() if k != LAST_APPLIED_ANNOTATION}
    else:
        # Go's SetAnnotations(nil) drops the key.
        meta.pop("annotations", None)
    copy_["metadata"] = meta
    return _json(copy_) + "\n"


def apply(
    live: Obj | None,
    applied: Obj,
    *,
    manager: str,
    force: bool,
    schema: SchemaNode | None,
    api_version: str,
    now: str,
    subresource: str = "",
    ignored: FieldSet | None = None,
) -> Obj:
    """Server-side apply of ``applied`` onto ``live`` (None: the object does not exist yet);
    returns the new object with managedFields updated. Neither input is modified and the
    result shares nothing with them.

    As upstream: the configuration merges into the live object by the schema (list maps by
    their keys, sets unioned, atomic lists and maps replaced, null unsets); fields this
    manager applied last time and omits now are removed unless another manager owns them;
    fields of other managers this apply would change raise ``Conflict`` (reason
    ``FieldManagerConflict`` per field) unless ``force``, which takes them over; equal values
    are shared without conflict. The applier's entry (operation ``Apply``) holds exactly the
    applied fields, minus ``ignored`` and the metadata the server owns. ``kubectl`` may take
    over fields its client-side-apply annotation still describes, and keeps that annotation
    in step. Re-applying the same configuration returns the live object unchanged.
    """
    if not isinstance(applied, dict):
        raise BadRequest("unable to decode the apply configuration: expected an object")
    patch_version = str(applied.get("apiVersion") or "")
    if patch_version != api_version:
        raise BadRequest(
            "Incorrect version specified in apply patch. Specified patch version: "
            f"{patch_version}, expected: {api_version}"
        )
    applied_meta = applied.get("metadata")
    if isinstance(applied_meta, dict) and applied_meta.get("managedFields") is not None:
        raise BadRequest("metadata.managedFields must be nil")
    t = _root(schema)
    live_obj: Obj = live if live is not None else {}
    live_raw = (live_obj.get("metadata") or {}).get("managedFields")
    try:
        live_managers = _decode_managers(live_raw, canonical=False)
    except ValueError:
        live_managers = {}
    live_v = _without_managed_fields(live_obj)
    am = applied_meta if isinstance(applied_meta, dict) else {}
    where = f"{am.get('namespace') or ''}/{am.get('name') or ''}"
    try:
        applied_set = _node_of(applied, t, False) or {}
    except _TypedError as e:
        raise UntypedValueError(
            f"failed to create typed patch object ({where}; {_gvk_text(applied)}): {e}"
        ) from None
    # Upstream merges typed values, where 1.5Gi and 1536Mi are one quantity: a re-apply of
    # the same configuration changes nothing and shares the value with its owner.
    typed = _canonical_quantities(applied, schema)
    try:
        merged = _merge(live_v, typed, t) if live is not None else _clean(typed)
    except _TypedError as e:
        raise UntypedValueError(
            f"failed to create typed live object ({where}; {_gvk_text(applied)}): {e}"
        ) from None
    me = _ident(manager, "Apply", api_version, subresource)
    previous = live_managers.get(me)
    last_set = previous.fields if previous is not None else {}
    if ignored is not None and ignored:
        applied_set = _recursive_difference(applied_set, ignored.raw, root=True) or {}
        last_set = _recursive_difference(last_set, ignored.raw, root=True) or {}
    others = {k: m for k, m in live_managers.items() if k != me}
    if last_set:
        owned: Node = applied_set
        for m in others.values():
            owned = _union(owned, m.fields, root=True)
        merged = _prune(merged, owned, last_set, t)

    if live is not None:
        added, modified, removed = _compare_root(live_v, merged, t)
    else:
        added, modified, removed = {}, {}, {}
    if ignored is not None and ignored:
        added = _recursive_difference(added, ignored.raw, root=True) or {}
        modified = _recursive_difference(modified, ignored.raw, root=True) or {}
        removed = _recursive_difference(removed, ignored.raw, root=True) or {}
    changed = _union(modified, added, root=True)

    conflicts: list[tuple[_Manager, tuple[str, ...]]] = []
    if changed:
        for m in others.values():
            both = _intersection(m.fields, changed, root=True)
            if both:
                conflicts.extend((m, p) for p in FieldSet(both).paths())
    if conflicts and not force:
        allowed: Node = {}
        if manager == "kubectl":
            allowed = _allowed_by_last_applied(live_obj, t, api_version)
        remaining = [(m, p) for m, p in conflicts if not _has_path(allowed, p)]
        if remaining:
            remaining.sort(key=lambda c: (c[0].describe(), [_pe_order(pe) for pe in c[1]]))
            raise _conflict_error(remaining)

    managers: dict[_Ident, _Manager] = {}
    for k, m in others.items():
        rest = m.fields
        if changed:
            rest = _difference(rest, changed, root=True) or {}
        if removed:
            rest = _difference(rest, removed, root=True) or {}
        if rest != m.fields:
            m = m.changed(rest)
        if rest:
            managers[k] = m
    mine = _difference(applied_set, _STRIP, root=True) or {}
    if mine:
        managers[me] = _Manager(
            manager=manager,
            operation="Apply",
            api_version=api_version,
            subresource=subresource,
            time=now,
            fields=mine,
        )
    _cap_update_managers(managers)

    result: Obj = merged
    if manager == "kubectl":
        annotations = (result.get("metadata") or {}).get("annotations") or {}
        if annotations.get(LAST_APPLIED_ANNOTATION):
            result = {**result, "metadata": {**result["metadata"]}}
            result["metadata"]["annotations"] = {
                **annotations,
                LAST_APPLIED_ANNOTATION: _last_applied_text(applied),
            }
    if live is not None and result == live_v and _same_sets(managers, live_managers):
        # Nothing but the applier's timestamp would change: upstream writes nothing.
        out: Obj = deep_copy(live)
        return out
    out = deep_copy(result)
    _set_managed_fields(out, _encode_managers(managers))
    return out


def _canonical_quantities(value: Any, node: SchemaNode | None) -> Any:
    """``value`` with every quantity the schema declares in its canonical form; the rest
    shared, not copied."""
    if node is None:
        return value
    if node.is_quantity:
        if isinstance(value, str | int | float) and not isinstance(value, bool):
            try:
                return parse_quantity(value).canonical()
            except ValueError:  # QuantityError: left for validation to report
                return value
        return value
    if isinstance(value, dict):
        if node.is_map:
            child = node.values()
            return {k: _canonical_quantities(v, child) for k, v in value.items()}
        if node.is_object:
            return {k: _canonical_quantities(v, node.field(k)) for k, v in value.items()}
        return value
    if isinstance(value, list) and node.is_list:
        item = node.items()
        return [_canonical_quantities(v, item) for v in value]
    return value


def _has_path(node: Node, path: tuple[str, ...]) -> bool:
    for pe in path:
        nxt = node.get(pe)
        if nxt is None:
            return False
        node = nxt
    return _is_member(node)
