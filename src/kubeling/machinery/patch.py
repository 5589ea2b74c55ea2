"""The three body-carrying PATCH types the API server applies: JSON patch (RFC 6902), JSON
merge patch (RFC 7386) and Kubernetes strategic merge patch.

Each function takes the current object and the decoded patch and returns a new object; the
inputs are never modified (both are deep-copied first, after which the algorithms mutate
their private copies freely, as upstream's do).

JSON and merge patch follow ``gopkg.in/evanphx/json-patch.v4`` as the apiserver uses it,
quirks included: ``replace`` needs an existing non-null value, negative array indexes count
from the end, the document root cannot be a path, and a merge patch prunes nulls from
values it adds.

Strategic merge patch reimplements the merge side of ``apimachinery/pkg/util/strategicpatch``
(``StrategicMergeMapPatch`` with ``MergeParallelList`` and ``IgnoreUnmatchedNulls``),
reading ``x-kubernetes-patch-strategy`` / ``-patch-merge-key`` from the upstream schema
instead of Go struct tags. The ordering rules (``$setElementOrder``, patch order, live order)
reproduce upstream's sort, including its tie-breaking, so kubectl sees the list order a
real server would store. Values stored as is (the live object has nothing to merge them
with) lose null members and every ``$patch``-carrying map, as upstream's
``removeDirectives`` does; kubeling applies the same cleaning on the few paths where upstream
still stores patch values verbatim (a list added together with its ``$setElementOrder``, a
``replace``-strategy map, an atomic list) and drops the other directive keys too, so no
``$`` directive is ever persisted.

Errors carry upstream's texts and codes: malformed directives are 400, a list of lists or a
failing JSON patch operation is 422 with the generic "rejected" sentence, and any other SMP
failure is a 500 whose message is the raw upstream error (``PatchApplyError``).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import Any, Final

import orjson

from kubeling.machinery.errors import (
    BadRequest,
    InternalError,
    Invalid,
    KubelingError,
    RequestEntityTooLarge,
    StatusError,
)
from kubeling.machinery.objects import deep_copy
from kubeling.machinery.schema import SchemaNode
from kubeling.machinery.types import Obj

REJECTED: Final = "the server rejected our request due to an error in our request"
"""``NewGenericServerResponse(422, ...)``'s message: upstream drops the detail."""

MAX_JSON_PATCH_OPERATIONS: Final = 10000


class PatchApplyError(InternalError):
    """A patch upstream fails with a plain Go error: HTTP 500 with an empty (Unknown)
    reason, so kubectl prints ``Error from server: <message>``."""

    reason = ""


class JSONPatchFailure(KubelingError):
    """Why a JSON patch operation failed, in evanphx/json-patch's words.

    The API answers only ``REJECTED``; this is chained as ``__cause__`` for logs.
    """


# -- Go formatting, for messages that print values with %v -----------------------------------


def _go(value: Any) -> str:
    if value is None:
        return "<nil>"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value
    if isinstance(value, float):
        if value.is_integer() and abs(value) < 1e21:
            return str(int(value))
        return repr(value)
    if isinstance(value, dict):
        return "map[" + " ".join(f"{k}:{_go(value[k])}" for k in sorted(value)) + "]"
    if isinstance(value, list):
        return "[" + " ".join(_go(v) for v in value) + "]"
    return str(value)


def _go_kind(value: Any) -> str:
    if isinstance(value, dict):
        return "map"
    if isinstance(value, list):
        return "slice"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, str):
        return "string"
    if isinstance(value, int):
        return "int64"
    if isinstance(value, float):
        return "float64"
    return "invalid"


def _go_s(value: Any) -> str:
    """``%s`` of an interface value: strings bare, anything else ``%!s(T=v)``."""
    if isinstance(value, str):
        return value
    if value is None:
        return "%!s(<nil>)"
    return f"%!s({_go_kind(value)}={_go(value)})"


def _go_eq(a: Any, b: Any) -> bool:
    """Go's ``==`` on decoded JSON interface values: same dynamic type and value."""
    return type(a) is type(b) and a == b


def _hkey(value: Any) -> Any:
    """A hashable key with Go's equality (``1`` and ``1.0`` and ``True`` differ)."""
    if isinstance(value, dict | list):
        return ("json", orjson.dumps(value, option=orjson.OPT_SORT_KEYS))
    return (type(value).__name__, value)


# -- JSON patch (RFC 6902) ---------------------------------------------------------------------


def _unescape_pointer(token: str) -> str:
    return re.sub("~[01]", lambda m: "/" if m.group() == "~1" else "~", token)


_Container = dict[str, Any] | list[Any]


def _find_container(doc: _Container, path: str) -> tuple[_Container | None, str]:
    """evanphx ``findObject``: the parent container of ``path`` and the last token.

    As upstream, the text before the first ``/`` is ignored and the root itself is not
    addressable."""
    split = path.split("/")
    if len(split) < 2:
        return None, ""
    cur: Any = doc
    for raw in split[1:-1]:
        part = _unescape_pointer(raw)
        if isinstance(cur, dict):
            nxt = cur.get(part)
        elif isinstance(cur, list):
            idx = _array_index(cur, part, for_add=False)
            if idx is None:
                return None, ""
            nxt = cur[idx]
        else:
            return None, ""
        if not isinstance(nxt, dict | list):
            return None, ""
        cur = nxt
    return cur, _unescape_pointer(split[-1])


def _array_index(arr: list[Any], key: str, *, for_add: bool) -> int | None:
    if not re.fullmatch(r"[+-]?[0-9]+", key):
        return None
    idx = int(key)
    size = len(arr) + 1 if for_add else len(arr)
    if idx >= size or idx < -size:
        return None
    return idx + size if idx < 0 else idx


def _json_get(con: _Container, key: str) -> tuple[bool, Any]:
    """(ok, value); a missing object key is ok with ``None`` (evanphx's ``partialDoc.get``)."""
    if isinstance(con, dict):
        return True, con.get(key)
    idx = _array_index(con, key, for_add=False)
    if idx is None:
        return False, None
    return True, con[idx]


def _json_add(con: _Container, key: str, value: Any, path: str) -> None:
    if isinstance(con, dict):
        con[key] = value
        return
    if key == "-":
        con.append(value)
        return
    idx = _array_index(con, key, for_add=True)
    if idx is None:
        raise JSONPatchFailure(f"Unable to access invalid index: {key}")
    con.insert(idx, value)


def _json_remove(con: _Container, key: str, path: str) -> Any:
    if isinstance(con, dict):
        if key not in con:
            raise JSONPatchFailure(f"Unable to remove nonexistent key: {key}: missing value")
        return con.pop(key)
    idx = _array_index(con, key, for_add=False)
    if idx is None:
        raise JSONPatchFailure(f"Unable to access invalid index: {key}: invalid index referenced")
    return con.pop(idx)


def _json_equal(a: Any, b: Any) -> bool:
    """JSON value equality: numbers by value, but ``true`` is not ``1``."""
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    if isinstance(a, int | float) and isinstance(b, int | float):
        return a == b
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_json_equal(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_json_equal(x, y) for x, y in zip(a, b, strict=True))
    return type(a) is type(b) and a == b


_GO_JSON_KIND: Final = {
    dict: "object",
    list: "array",
    str: "string",
    bool: "bool",
    int: "number",
    float: "number",
}


def _apply_op(doc: dict[str, Any], op: dict[str, Any]) -> None:
    kind = op.get("op")
    path = op.get("path")
    if kind not in ("add", "remove", "replace", "move", "copy", "test"):
        raise JSONPatchFailure(f"Unexpected kind: {kind if isinstance(kind, str) else 'unknown'}")
    if not isinstance(path, str):
        raise JSONPatchFailure("operation missing path field")
    value = deep_copy(op.get("value"))
    if kind in ("move", "copy"):
        src = op.get("from")
        if not isinstance(src, str):
            raise JSONPatchFailure("operation missing from field")
        con, key = _find_container(doc, src)
        if con is None:
            raise JSONPatchFailure(
                f"{kind} operation does not apply: doc is missing from path: {src}"
            )
        ok, value = _json_get(con, key)
        if not ok:
            raise JSONPatchFailure(f"error in get for path: '{src}'")
        if kind == "move":
            _json_remove(con, key, src)
        elif isinstance(con, dict) and key not in con:
            raise JSONPatchFailure(
                f"copy operation does not apply: doc is missing from path: {src}"
            )
        else:
            value = deep_copy(value)
    con, key = _find_container(doc, path)
    if con is None:
        where = "destination path" if kind in ("move", "copy") else "path"
        raise JSONPatchFailure(f"{kind} operation does not apply: doc is missing {where}: {path}")
    if kind in ("add", "move", "copy"):
        _json_add(con, key, value, path)
    elif kind == "remove":
        _json_remove(con, key, path)
    elif kind == "replace":
        ok, current = _json_get(con, key)
        if not ok or current is None:
            raise JSONPatchFailure(
                f"replace operation does not apply: doc is missing key: {path}: missing value"
            )
        if isinstance(con, dict):
            con[key] = value
        else:
            idx = _array_index(con, key, for_add=False)
            if idx is None:  # _json_get accepted the index above, so this cannot happen
                raise JSONPatchFailure(
                    f"replace operation does not apply: doc is missing key: {path}: missing value"
                )
            con[idx] = value
    else:  # test
        ok, current = _json_get(con, key)
        if not ok:
            raise JSONPatchFailure(f"test operation does not apply: is missing path: {path}")
        if current is None and value is None:
            return
        if current is None or value is None or not _json_equal(current, value):
            raise JSONPatchFailure(f"testing value {path} failed: test failed")


def json_patch(doc: Obj, ops: Any) -> Obj:
    """Apply an RFC 6902 patch (``application/json-patch+json``) to a copy of ``doc``.

    Raises ``BadRequest`` when the body is not a list of operation objects (the strict
    decode every request gets by default), ``RequestEntityTooLarge`` past 10000 operations
    and ``Invalid`` (422, ``REJECTED``) when an operation does not apply.
    """
    if not isinstance(ops, list):
        raise BadRequest(
            "error decoding patch: json: cannot unmarshal "
            f"{_GO_JSON_KIND.get(type(ops), 'object')} into Go value of type []handlers.jsonPatchOp"
        )
    for op in ops:
        if op is not None and not isinstance(op, dict):
            raise BadRequest(
                "error decoding patch: json: cannot unmarshal "
                f"{_GO_JSON_KIND.get(type(op), 'object')} into Go value of type handlers.jsonPatchOp"
            )
        for fname in ("op", "path", "from"):
            v = (op or {}).get(fname)
            if v is not None and not isinstance(v, str):
                raise BadRequest(
                    "error decoding patch: json: cannot unmarshal "
                    f"{_GO_JSON_KIND.get(type(v), 'object')} into Go struct field "
                    f"jsonPatchOp.{fname} of type string"
                )
    if len(ops) > MAX_JSON_PATCH_OPERATIONS:
        raise RequestEntityTooLarge(
            "Request entity too large: The allowed maximum operations in a JSON patch is "
            f"{MAX_JSON_PATCH_OPERATIONS}, "
            f"got {len(ops)}"
        )
    out: dict[str, Any] = deep_copy(doc)
    for op in ops:
        try:
            _apply_op(out, op or {})
        except JSONPatchFailure as e:
            raise Invalid(REJECTED) from e
    return out


# -- JSON merge patch (RFC 7386) -----------------------------------------------------------------


def _prune_nulls(value: Any) -> Any:
    """evanphx ``pruneNulls``: drop null members of objects, at any depth."""
    if isinstance(value, dict):
        return {k: _prune_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_prune_nulls(v) for v in value]
    return value


def _merge_docs(doc: dict[str, Any], patch: dict[str, Any]) -> None:
    for k, v in patch.items():
        if v is None:
            doc.pop(k, None)
            continue
        cur = doc.get(k)
        if cur is None:
            doc[k] = _prune_nulls(v)
        elif isinstance(cur, dict) and isinstance(v, dict):
            _merge_docs(cur, v)
        elif isinstance(cur, dict):
            # Upstream returns a non-object patch value as is when the target is an object.
            doc[k] = v
        else:
            doc[k] = _prune_nulls(v)


def merge_patch(doc: Obj, patch: Any) -> Obj:
    """Apply an RFC 7386 merge patch (``application/merge-patch+json``) to a copy of ``doc``:
    objects merge, ``null`` deletes, everything else (lists included) replaces."""
    if patch is None:
        raise BadRequest("Invalid JSON Patch")
    if not isinstance(patch, dict):
        raise BadRequest(
            "error decoding patch: json: cannot unmarshal "
            f"{_GO_JSON_KIND.get(type(patch), 'object')} into Go value of type "
            "map[string]interface {}"
        )
    out: dict[str, Any] = deep_copy(doc)
    _merge_docs(out, deep_copy(patch))
    return out


# -- strategic merge patch ---------------------------------------------------------------------

_DIRECTIVE: Final = "$patch"
_REPLACE: Final = "replace"
_DELETE: Final = "delete"
_MERGE: Final = "merge"
_RETAIN_KEYS: Final = "$retainKeys"
_DELETE_FROM_PRIMITIVE_LIST: Final = "$deleteFromPrimitiveList"
_SET_ELEMENT_ORDER: Final = "$setElementOrder"

# mergepatch's sentinel errors, and how interpretStrategicMergePatchError answers them.
ERR_BAD_JSON_DOC: Final = "invalid JSON document"
ERR_NO_LIST_OF_LISTS: Final = "lists of lists are not supported"
ERR_BAD_PRIMITIVE_LIST: Final = "invalid patch format of primitive list"
ERR_BAD_RETAIN_KEYS: Final = "invalid patch format of retainKeys"
ERR_BAD_SET_ELEMENT_ORDER: Final = "invalid patch format of setElementOrder list"
ERR_NOT_MATCH_RETAIN_KEYS: Final = "patch content doesn't match retainKeys list"
ERR_UNSUPPORTED_FORMAT: Final = "strategic merge patch format is not supported"
_BAD_REQUEST_ERRORS: Final = frozenset(
    {
        ERR_BAD_JSON_DOC,
        ERR_BAD_PRIMITIVE_LIST,
        ERR_BAD_RETAIN_KEYS,
        ERR_BAD_SET_ELEMENT_ORDER,
        ERR_UNSUPPORTED_FORMAT,
    }
)
_INVALID_ERRORS: Final = frozenset({ERR_NO_LIST_OF_LISTS, ERR_NOT_MATCH_RETAIN_KEYS})


class _Fail(Exception):
    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def _to_status(err: _Fail) -> StatusError:
    if err.message in _BAD_REQUEST_ERRORS:
        return BadRequest(err.message)
    if err.message in _INVALID_ERRORS:
        return Invalid(REJECTED)
    return PatchApplyError(err.message)


def _no_merge_key(m: Any, key: str) -> _Fail:
    return _Fail(f"map: {_go(m)} does not contain declared merge key: {key}")


def _bad_arg_type(expected: str, actual: Any) -> _Fail:
    return _Fail(f"expected a {expected}, but received a {_go_kind(actual)}")


def _bad_patch_type(directive: Any, m: Any) -> _Fail:
    return _Fail(f"unknown patch type: {_go_s(directive)} in map: {_go(m)}")


class _Meta:
    """Patch metadata of one field: its schema node, strategy and merge key."""

    __slots__ = ("merge_key", "node", "strategy")

    def __init__(self, node: SchemaNode | None, strategy: str, merge_key: str) -> None:
        self.node = node
        self.strategy = strategy
        self.merge_key = merge_key

    def items(self) -> SchemaNode | None:
        return self.node.items() if self.node is not None else None


def _lookup(node: SchemaNode | None, key: str) -> _Meta:
    child: SchemaNode | None = None
    if node is not None:
        if node.is_object:
            child = node.field(key)
        elif node.is_map:
            child = node.values()
    if child is None:
        return _Meta(None, "", "")
    strategies = child.patch_strategy - {"retainKeys"}
    if len(strategies) > 1:
        raise _Fail(f"unexpected patch strategy: [{' '.join(sorted(child.patch_strategy))}]")
    return _Meta(child, next(iter(strategies), ""), child.patch_merge_key)


def _is_directive_key(key: str) -> bool:
    return (
        key in (_DIRECTIVE, _RETAIN_KEYS)
        or key.startswith(_SET_ELEMENT_ORDER)
        or key.startswith(_DELETE_FROM_PRIMITIVE_LIST)
    )


def _has_patch_directive(value: Any) -> bool:
    return isinstance(value, dict) and _DIRECTIVE in value


def _fresh(value: Any) -> Any:
    """A patch value stored as is (the live object had nothing to merge it with).

    Upstream's ``removeDirectives`` drops every map that carries ``$patch`` (as a member
    or as a list element) and ``discardNullValuesFromPatch`` drops null members; kubeling
    also drops the other directive keys, which upstream would leave for its typed decoding
    to reject or ignore. Callers drop the field when the value itself has ``$patch``.
    """
    if isinstance(value, dict):
        return {
            k: _fresh(v)
            for k, v in value.items()
            if v is not None and not _is_directive_key(k) and not _has_patch_directive(v)
        }
    if isinstance(value, list):
        return [_fresh(v) for v in value if not _has_patch_directive(v)]
    return value


def _store(original: dict[str, Any], key: str, value: Any) -> None:
    if _has_patch_directive(value):
        original.pop(key, None)
    else:
        original[key] = _fresh(value)


def _extract_key(key: str, prefix: str) -> str:
    parts = key.split("/", 1)
    if len(parts) <= 1 or parts[0] != prefix:
        if prefix == _DELETE_FROM_PRIMITIVE_LIST:
            raise _Fail(ERR_BAD_PRIMITIVE_LIST)
        raise _Fail(ERR_BAD_SET_ELEMENT_ORDER)
    return parts[1]


def _slice_element_kind(*slices: Sequence[Any]) -> str:
    """``sliceElementType``: ``"map"`` or a scalar type; all elements must agree."""
    prev: str | None = None
    for s in slices:
        for v in s:
            cur = _go_kind(v) if v is not None else "nil"
            if prev is None:
                prev = cur
                if cur == "slice":
                    raise _Fail(ERR_NO_LIST_OF_LISTS)
            elif prev != cur:
                raise _Fail(
                    "list element types are not identical: " + _go([list(x) for x in slices])
                )
    if prev is None:
        raise _Fail("no elements in any of the given slices")
    return prev


def _find_by_key(items: Sequence[Any], key: str, value: Any) -> int:
    """``findMapInSliceBasedOnKeyValue``: index of the first map whose ``key`` equals
    ``value``, or -1."""
    for i, v in enumerate(items):
        if not isinstance(v, dict):
            raise _Fail(f"value for key {i} is not a map.")
        if key in v and _go_eq(v[key], value):
            return i
    return -1


def _apply_retain_keys(original: dict[str, Any], patch: dict[str, Any]) -> None:
    if _RETAIN_KEYS not in patch:
        return
    retain = patch.pop(_RETAIN_KEYS)
    if not isinstance(retain, list):
        raise _Fail(ERR_BAD_RETAIN_KEYS)
    keep = {k for k in retain if isinstance(k, str)}
    for k, v in patch.items():
        if (
            v is None
            or k.startswith(_DELETE_FROM_PRIMITIVE_LIST)
            or k.startswith(_SET_ELEMENT_ORDER)
        ):
            continue
        if k not in keep:
            raise _Fail(ERR_BAD_RETAIN_KEYS)
    for k in list(original):
        if k not in keep:
            del original[k]


def _validate_merge_keys(merge_key: str, *lists: Sequence[Any]) -> None:
    for items in lists:
        for item in items:
            if not isinstance(item, dict):
                raise _bad_arg_type("map", item)
            if merge_key not in item:
                raise _no_merge_key(item, merge_key)


def _split_deletions(items: Sequence[Any]) -> tuple[list[Any], list[Any]]:
    keep: list[Any] = []
    delete: list[Any] = []
    for v in items:
        if not isinstance(v, dict):
            raise _bad_arg_type("map", v)
        (delete if v.get(_DIRECTIVE) == _DELETE else keep).append(v)
    return keep, delete


def _position_lookup(order: Sequence[Any], merge_key: str, kind: str) -> Callable[[Any], int]:
    """upstream's ``index(order, item)``: the first position with the same merge key value
    (maps) or the same value (scalars), -1 when absent."""
    positions: dict[Any, int] = {}
    for i, v in enumerate(order):
        probe = (v.get(merge_key) if isinstance(v, dict) else None) if kind == "map" else v
        positions.setdefault(_hkey(probe), i)

    def index(item: Any) -> int:
        probe = (item.get(merge_key) if isinstance(item, dict) else None) if kind == "map" else item
        return positions.get(_hkey(probe), -1)

    return index


def _normalize_slice_order(
    to_sort: Sequence[Any], order: Sequence[Any], merge_key: str, kind: str
) -> list[Any]:
    to_delete: list[Any] = []
    items = list(to_sort)
    if kind == "map":
        _validate_merge_keys(merge_key, items, order)
        items, to_delete = _split_deletions(items)
    index = _position_lookup(order, merge_key, kind)

    def less(a: Any, b: Any) -> bool:
        ia = index(a)
        if ia >= 0:
            ib = index(b)
            if ib >= 0:
                return ia < ib
        return True

    # Go's sort.SliceStable is an insertion sort for the list sizes objects have; with
    # upstream's comparator (true whenever an item is not in ``order``) the exact
    # algorithm decides where such items land, so it is reproduced step for step.
    for i in range(1, len(items)):
        j = i
        while j > 0 and less(items[j], items[j - 1]):
            items[j], items[j - 1] = items[j - 1], items[j]
            j -= 1
    return items + to_delete


def _merge_sorted(
    left: Sequence[Any],
    right: Sequence[Any],
    server_order: Sequence[Any],
    merge_key: str,
    kind: str,
) -> list[Any]:
    """``mergeSortedSlice``: interleave server-only items (left) into patch items (right)
    by their live positions."""
    index = _position_lookup(server_order, merge_key, kind)
    out: list[Any] = []
    i = j = 0
    while i < len(left) or j < len(right):
        if i >= len(left):
            out.append(right[j])
            j += 1
        elif j >= len(right):
            out.append(left[i])
            i += 1
        else:
            li, ri = index(left[i]), index(right[j])
            if li >= 0 and ri >= 0 and li < ri:
                out.append(left[i])
                i += 1
            else:
                out.append(right[j])
                j += 1
    return out


def _normalize_element_order(
    patch_items: Sequence[Any],
    server_only: Sequence[Any],
    patch_order: Sequence[Any],
    server_order: Sequence[Any],
    merge_key: str,
    kind: str,
) -> list[Any]:
    patched = _normalize_slice_order(patch_items, patch_order, merge_key, kind)
    server = _normalize_slice_order(server_only, server_order, merge_key, kind)
    return _merge_sorted(server, patched, server_order, merge_key, kind)


def _partition_primitives(items: Sequence[Any], by: Sequence[Any]) -> tuple[list[Any], list[Any]]:
    present = {_hkey(v) for v in by}
    inside: list[Any] = []
    outside: list[Any] = []
    for v in items:
        (inside if _hkey(v) in present else outside).append(v)
    return inside, outside


def _partition_maps(
    items: Sequence[Any], by: Sequence[Any], merge_key: str
) -> tuple[list[Any], list[Any]]:
    inside: list[Any] = []
    outside: list[Any] = []
    for v in items:
        if not isinstance(v, dict):
            raise _bad_arg_type("map", v)
        if merge_key not in v:
            raise _no_merge_key(v, merge_key)
        (inside if _find_by_key(by, merge_key, v[merge_key]) >= 0 else outside).append(v)
    return inside, outside


def _partition(
    items: Sequence[Any], by: Sequence[Any], merge_key: str
) -> tuple[list[Any], list[Any]]:
    if merge_key:
        return _partition_maps(items, by, merge_key)
    return _partition_primitives(items, by)


def _dedup_scalars(items: list[Any]) -> list[Any]:
    """upstream's in-place ``deduplicateScalars`` (it moves the last item into each hole)."""
    s = list(items)
    length = len(s) - 1
    i = 0
    while i < length:
        j = i + 1
        while j <= length:
            if _go_eq(s[i], s[j]):
                s[j] = s[length]
                s = s[:length]
                length -= 1
                j -= 1
            j += 1
        i += 1
    return s


def _merge_key_values_equal(left: Any, right: Any, merge_key: str) -> bool:
    if not merge_key:
        return _go_eq(left, right)
    if not isinstance(left, dict):
        raise _bad_arg_type("map", left)
    if not isinstance(right, dict):
        raise _bad_arg_type("map", right)
    if merge_key not in left:
        raise _no_merge_key(left, merge_key)
    if merge_key not in right:
        raise _no_merge_key(right, merge_key)
    return _go_eq(left[merge_key], right[merge_key])


def _validate_patch_with_set_order(
    patch_list: Sequence[Any], order: Sequence[Any], merge_key: str
) -> None:
    """The items of the patch list must appear in ``$setElementOrder`` in the same order."""
    if not order or not patch_list:
        return
    non_delete = _split_deletions(patch_list)[0] if merge_key else list(patch_list)
    pi = si = 0
    while pi < len(non_delete) and si < len(order):
        item = non_delete[pi]
        if isinstance(item, dict) and _DIRECTIVE in item:
            pi += 1
            continue
        if _merge_key_values_equal(item, order[si], merge_key):
            pi += 1
        si += 1
    if pi < len(non_delete) and si >= len(order):
        raise _Fail(
            f"The order in patch list:\n{_go(list(patch_list))}\n doesn't match "
            f"{_SET_ELEMENT_ORDER} list:\n{_go(list(order))}\n"
        )


def _merge_set_element_order(
    original: dict[str, Any], patch: dict[str, Any], node: SchemaNode | None
) -> None:
    """``mergePatchIntoOriginal``: merge each list named by a ``$setElementOrder/<f>``
    directive and put the result in the order the directive gives."""
    for key in [k for k in patch if k.startswith(_SET_ELEMENT_ORDER)]:
        order = patch.pop(key)
        if not isinstance(order, list):
            raise _bad_arg_type("slice", order)
        field_name = _extract_key(key, _SET_ELEMENT_ORDER)
        found_original = field_name in original
        found_patch = field_name in patch
        live = original.get(field_name)
        patched = patch.get(field_name)
        if found_original and not isinstance(live, list):
            raise _bad_arg_type("slice", live)
        if found_patch and not isinstance(patched, list):
            raise _bad_arg_type("slice", patched)
        live_list: list[Any] = live if isinstance(live, list) else []
        patch_list: list[Any] = patched if isinstance(patched, list) else []
        meta = _lookup(node, field_name)
        _validate_patch_with_set_order(patch_list, order, meta.merge_key)
        if not found_original and not found_patch:
            # Upstream returns here and leaves later directives in the patch, which then
            # get stored as fields; kubeling skips only this one.
            continue
        if found_original and not found_patch:
            merged = live_list
        else:
            merged = _merge_slice_handler(live_list, patch_list, meta, is_delete_list=False)
        patch_items, server_only = _partition(merged, order, meta.merge_key)
        kind = _slice_element_kind(live_list, patch_list)
        original[field_name] = _normalize_element_order(
            patch_items, server_only, order, live_list, meta.merge_key, kind
        )
        patch.pop(field_name, None)


def _directive_in_map(directive: Any, patch: dict[str, Any]) -> dict[str, Any]:
    if directive == _REPLACE:
        del patch[_DIRECTIVE]
        replaced: dict[str, Any] = _fresh(patch)
        return replaced
    if directive == _DELETE:
        return {}
    raise _bad_patch_type(directive, patch)


def _merge_map(
    original: dict[str, Any], patch: dict[str, Any], node: SchemaNode | None
) -> dict[str, Any]:
    if _DIRECTIVE in patch:
        return _directive_in_map(patch[_DIRECTIVE], patch)
    _apply_retain_keys(original, patch)
    _merge_set_element_order(original, patch, node)
    for raw_key, value in patch.items():
        key = raw_key
        is_delete_list = False
        if raw_key.startswith(_DELETE_FROM_PRIMITIVE_LIST):
            key = _extract_key(raw_key, _DELETE_FROM_PRIMITIVE_LIST)
            is_delete_list = True
        if value is None:
            original.pop(key, None)
            continue
        if key not in original:
            if not is_delete_list:
                _store(original, key, value)
            continue
        current = original[key]
        if isinstance(current, dict) and isinstance(value, dict):
            meta = _lookup(node, key)
            if meta.strategy == _REPLACE:
                original[key] = _fresh(value)
            else:
                original[key] = _merge_map(current, value, meta.node)
        elif isinstance(current, list) and isinstance(value, list):
            meta = _lookup(node, key)
            original[key] = _merge_slice_handler(
                current, value, meta, is_delete_list=is_delete_list
            )
        elif _go_kind(current) != _go_kind(value):
            if not is_delete_list:
                _store(original, key, value)
        else:
            original[key] = value
    return original


def _merge_slice_handler(
    original: list[Any], patch: list[Any], meta: _Meta, *, is_delete_list: bool
) -> list[Any]:
    # Deletion lists apply whatever the field's strategy, as current upstream does.
    if meta.strategy == _MERGE or is_delete_list:
        return _merge_slice(original, patch, meta, is_delete_list=is_delete_list)
    fresh: list[Any] = _fresh(patch)
    return fresh


def _merge_slice(
    original: list[Any], patch: list[Any], meta: _Meta, *, is_delete_list: bool
) -> list[Any]:
    if not original and not patch:
        return original
    kind = _slice_element_kind(original, patch)
    merge_key = meta.merge_key
    if kind != "map":
        if is_delete_list:
            gone = {_hkey(v) for v in patch}
            return [v for v in original if _hkey(v) not in gone]
        merged = _dedup_scalars(original + patch)
    else:
        if not merge_key:
            name = meta.node.ref if meta.node is not None and meta.node.ref else "map"
            raise _Fail(f"cannot merge lists without merge key for {name}")
        original, patch = _merge_slice_special_elements(original, patch, merge_key)
        merged = _merge_slice_plain_elements(original, patch, merge_key, meta.items())
    patch_items, server_only = _partition(merged, patch, merge_key)
    return _normalize_element_order(patch_items, server_only, patch, original, merge_key, kind)


def _merge_slice_special_elements(
    original: list[Any], patch: list[Any], merge_key: str
) -> tuple[list[Any], list[Any]]:
    """Apply ``{"$patch": "delete"|"replace"}`` list elements; return the remaining live
    list and the patch without them."""
    plain: list[Any] = []
    replace = False
    for v in patch:
        if _DIRECTIVE not in v:
            plain.append(v)
            continue
        directive = v[_DIRECTIVE]
        if directive == _DELETE:
            if merge_key not in v:
                raise _no_merge_key(v, merge_key)
            while (idx := _find_by_key(original, merge_key, v[merge_key])) >= 0:
                original = original[:idx] + original[idx + 1 :]
        elif directive == _REPLACE:
            replace = True
        elif directive == _MERGE:
            raise _Fail("merging lists cannot yet be specified in the patch")
        else:
            raise _bad_patch_type(directive, v)
    if replace:
        return [_fresh(v) for v in plain], []
    return original, plain


def _merge_slice_plain_elements(
    original: list[Any], patch: list[Any], merge_key: str, item_node: SchemaNode | None
) -> list[Any]:
    merged = list(original)
    for v in patch:
        if merge_key not in v:
            raise _no_merge_key(v, merge_key)
        idx = _find_by_key(merged, merge_key, v[merge_key])
        if idx >= 0:
            merged[idx] = _merge_map(merged[idx], v, item_node)
        else:
            merged.append(_fresh(v))
    return merged


def strategic_merge_patch(doc: Obj, patch: Any, *, schema: SchemaNode | None) -> Obj:
    """Apply a strategic merge patch (``application/strategic-merge-patch+json``) to a copy
    of ``doc``, with patch strategies and merge keys from ``schema`` (the kind's root node,
    ``schema.for_kind(gvk)``; ``None`` merges maps and replaces every list).

    Raises ``BadRequest`` for a body that is not an object or a malformed directive,
    ``Invalid`` (``REJECTED``) for a list of lists, ``PatchApplyError`` (500) otherwise.
    """
    if not isinstance(patch, dict):
        raise BadRequest(
            f"json: cannot unmarshal {_GO_JSON_KIND.get(type(patch), 'object')} "
            "into Go value of type map[string]interface {}"
        )
    original: dict[str, Any] = deep_copy(doc)
    try:
        return _merge_map(original, deep_copy(patch), schema)
    except _Fail as e:
        raise _to_status(e) from None
