"""Schema-driven decoding of request bodies: unknown and duplicate fields, type errors.

Upstream decodes a body into Go structs with ``sigs.k8s.io/json``'s strict mode, which
reports every unknown and duplicate field (``unknown field "spec.containers[0].foo"``) in
document order, and the first type mismatch (``json: cannot unmarshal string into Go struct
field DeploymentSpec.spec.replicas of type int32``). kubeling has no Go structs; it walks the
already-parsed JSON against the upstream schema (``machinery.schema``) and produces the same
texts. JSON nulls are replaced on the way as Go would leave them (a zero value), and
quantities are rewritten in their canonical form (``1.5Gi`` as ``1536Mi``), so every object
stored is one Go could have written. Duplicate keys vanish in an ordinary JSON parse, so
``loads`` parses with a pairs hook that keeps, only for objects that really have duplicates,
the original key/value sequence.

Speed matters (every write passes through here): each schema spot is compiled once into a
small ``_Compiled`` record cached by the identity of its definition dict, and a value is only
copied when a field under it has to be dropped.
"""

from __future__ import annotations

import binascii
import calendar
import functools
import json
import re
from typing import Any, Final, Literal

from kubeling.machinery import protobuf, schema
from kubeling.machinery.errors import BadRequest, StatusError
from kubeling.machinery.quantity import QuantityError, parse_quantity
from kubeling.machinery.types import GroupVersionKind, Obj

Mode = Literal["Strict", "Warn", "Ignore"]
MODES: Final[tuple[Mode, ...]] = ("Strict", "Warn", "Ignore")

_MAX_STRICT_ERRORS: Final = 100
_QUANTITY: Final = "io.k8s.apimachinery.pkg.api.resource.Quantity"
_INT_OR_STRING: Final = "io.k8s.apimachinery.pkg.util.intstr.IntOrString"
_REF_PREFIX: Final = "#/$defs/"
_BASE64_CHARS: Final = re.compile(rb"[^A-Za-z0-9+/=\r\n]")
# Upstream's JSON decoder refuses nesting deeper than 10000. kubeling walks bodies with
# recursive Python (decoding, deep copies, patches, managed fields; up to about three frames a
# level against the interpreter's 1000), so a body as deep as upstream allows would end in a
# RecursionError, a 500. No Kubernetes object comes near 100 levels (CRD schemas nest about
# two levels per schema level), so bodies deeper than that are refused up front with a 400.
MAX_DEPTH: Final = 100
_NESTING_TOKENS: Final = re.compile(rb'"(?:[^"\\]|\\.)*"|[\[\]{}]')


# -- parsing with duplicate detection ---------------------------------------------------------


class DuplicateKeysDict(dict[str, Any]):
    """A JSON object that had a key more than once; ``pairs`` keeps every occurrence in
    order (the dict itself holds the last value, as Go's decoder does)."""

    __slots__ = ("pairs",)

    def __init__(self, pairs: list[tuple[str, Any]]) -> None:
        super().__init__(pairs)
        self.pairs = pairs


def _pairs_hook(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    d = dict(pairs)
    if len(d) != len(pairs):
        return DuplicateKeysDict(pairs)
    return d


def check_depth(raw: bytes | str) -> None:
    """Refuse JSON text nested more than ``MAX_DEPTH`` arrays and objects deep (``BadRequest``);
    brackets inside strings do not count."""
    data = raw.encode() if isinstance(raw, str) else raw
    if data.count(b"[") + data.count(b"{") <= MAX_DEPTH:
        return  # the common case: too few brackets to nest that deep, no scan
    depth = 0
    for m in _NESTING_TOKENS.finditer(data):
        token = m.group()
        if token in (b"[", b"{"):
            depth += 1
            if depth > MAX_DEPTH:
                raise too_deep()
        elif token in (b"]", b"}"):
            depth -= 1


def check_value_depth(value: Any) -> None:
    """``check_depth`` for an already parsed value (YAML, whose block style nests by
    indentation rather than brackets); iterative, so a deep value cannot exhaust the stack."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        v, depth = stack.pop()
        if isinstance(v, dict):
            children: Any = v.values()
        elif isinstance(v, list):
            children = v
        else:
            continue
        if depth > MAX_DEPTH:
            raise too_deep()
        stack.extend((c, depth + 1) for c in children if isinstance(c, dict | list))


def too_deep() -> BadRequest:
    return BadRequest(
        f"the request body is nested too deeply: kubeling accepts at most {MAX_DEPTH} levels of "
        "JSON arrays and objects"
    )


class BodySyntaxError(BadRequest):
    """A body that does not parse. ``decode_error`` is what upstream's decoder says about it
    (``couldn't get version/kind; json parse error: unexpected end of JSON input``), which
    callers that know the endpoint's kind reword as upstream does (``unrecognized``)."""

    def __init__(self, message: str, *, decode_error: str) -> None:
        super().__init__(message)
        self.decode_error = decode_error


def json_syntax_error(data: bytes, fallback: str) -> BodySyntaxError:
    text = f"couldn't get version/kind; json parse error: {go_json_error(data) or fallback}"
    return BodySyntaxError(text, decode_error=text)


def yaml_syntax_error(e: Exception) -> BodySyntaxError:
    text = yaml_error(e)
    return BodySyntaxError(f"error decoding YAML: {text}", decode_error=text)


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")  # Python accepts NaN and Infinity; Go does not


def loads(raw: bytes | str) -> Any:
    """Parse JSON, remembering duplicate keys for ``decode_object``.

    Raises ``BodySyntaxError`` (a ``BadRequest``) for malformed JSON, ``BadRequest`` for JSON
    nested deeper than ``MAX_DEPTH``. Objects without duplicate keys are plain dicts.
    """
    check_depth(raw)
    try:
        return json.loads(raw, object_pairs_hook=_pairs_hook, parse_constant=_reject_constant)
    except (ValueError, UnicodeDecodeError) as e:
        data = raw.encode() if isinstance(raw, str) else raw
        raise json_syntax_error(data, str(e)) from e


_GO_STRUCT_TYPE_META: Final = (
    'struct { APIVersion string "json:\\"apiVersion,omitempty\\""; '
    'Kind string "json:\\"kind,omitempty\\"" }'
)


def unrecognized(kind: str, detail: str, raw: bytes) -> BadRequest:
    """upstream's ``transformDecodeError`` when the body named no kind: ``the object provided is
    unrecognized (must be of type <Kind>): <detail> (<first 30 bytes, or their hex>)``."""
    if not raw:
        summary = "<empty>"
    elif raw[:1] == b"{":
        summary = raw[:30].decode("utf-8", "replace") + (" ..." if len(raw) > 30 else "")
    else:
        summary = raw[:30].hex() + (" ..." if len(raw) > 30 else "")
    return BadRequest(
        f"the object provided is unrecognized (must be of type {kind}): {detail} ({summary})"
    )


def not_an_object(value: Any) -> str:
    """The text upstream's type-meta probe gives for a JSON body that is not an object."""
    return (
        f"couldn't get version/kind; json parse error: json: cannot unmarshal {_json_kind(value)} "
        f"into Go value of type {_GO_STRUCT_TYPE_META}"
    )


def _go_quote_char(c: int) -> str:
    if c == ord("'"):
        return "'\\''"
    if c == ord('"'):
        return "'\"'"
    named = {7: "\\a", 8: "\\b", 9: "\\t", 10: "\\n", 11: "\\v", 12: "\\f", 13: "\\r", 92: "\\\\"}
    if c in named:
        return f"'{named[c]}'"
    if c < 0x20 or c == 0x7F:
        return f"'\\x{c:02x}'"
    return f"'{chr(c)}'"


_LITERALS: Final = {ord("t"): b"true", ord("f"): b"false", ord("n"): b"null"}
_WS: Final = frozenset(b" \t\r\n")
_DIGITS: Final = frozenset(b"0123456789")
_HEX: Final = frozenset(b"0123456789abcdefABCDEF")


def go_json_error(data: bytes) -> str | None:
    """The message of Go's ``encoding/json`` scanner for malformed ``data`` (``invalid
    character 'x' after object key``, ``unexpected end of JSON input``), or None when Go's
    scanner accepts it."""
    stack: list[str] = []  # "key", "value" (object) or "array"
    n = len(data)
    i = 0

    def bad(c: int, context: str) -> str:
        return f"invalid character {_go_quote_char(c)} {context}"

    def end_value(i: int) -> tuple[int, str | None]:
        """After a complete value at ``data[i:]``: the next position, or an error."""
        while True:
            while i < n and data[i] in _WS:
                i += 1
            if not stack:
                if i < n:
                    return i, bad(data[i], "after top-level value")
                return i, None
            if i >= n:
                return i, "unexpected end of JSON input"
            c = data[i]
            top = stack[-1]
            if top == "key":
                if c != ord(":"):
                    return i, bad(c, "after object key")
                stack[-1] = "value"
                return i + 1, ""
            if top == "value":
                if c == ord(","):
                    stack[-1] = "key"
                    return i + 1, "key"
                if c != ord("}"):
                    return i, bad(c, "after object key:value pair")
                stack.pop()
                i += 1
                continue
            if c == ord(","):
                return i + 1, ""
            if c != ord("]"):
                return i, bad(c, "after array element")
            stack.pop()
            i += 1

    def string(i: int) -> tuple[int, str | None]:
        i += 1  # the opening quote
        while i < n:
            c = data[i]
            if c == ord('"'):
                return i + 1, None
            if c == ord("\\"):
                i += 1
                if i >= n:
                    break
                e = data[i]
                if e == ord("u"):
                    for k in range(1, 5):
                        if i + k >= n:
                            return n, "unexpected end of JSON input"
                        if data[i + k] not in _HEX:
                            return i + k, bad(data[i + k], "in \\u hexadecimal character escape")
                    i += 5
                    continue
                if e not in b'bfnrt\\/"':
                    return i, bad(e, "in string escape code")
            elif c < 0x20:
                return i, bad(c, "in string literal")
            i += 1
        return n, "unexpected end of JSON input"

    def number(i: int) -> tuple[int, str | None]:
        if data[i] == ord("-"):
            i += 1
            if i >= n:
                return n, "unexpected end of JSON input"
            if data[i] not in _DIGITS:
                return i, bad(data[i], "in numeric literal")
        if data[i] == ord("0"):
            i += 1
        else:
            while i < n and data[i] in _DIGITS:
                i += 1
        if i < n and data[i] == ord("."):
            i += 1
            if i >= n:
                return n, "unexpected end of JSON input"
            if data[i] not in _DIGITS:
                return i, bad(data[i], "after decimal point in numeric literal")
            while i < n and data[i] in _DIGITS:
                i += 1
        if i < n and data[i] in b"eE":
            i += 1
            if i < n and data[i] in b"+-":
                i += 1
            if i >= n:
                return n, "unexpected end of JSON input"
            if data[i] not in _DIGITS:
                return i, bad(data[i], "in exponent of numeric literal")
            while i < n and data[i] in _DIGITS:
                i += 1
        return i, None

    expect = "value"  # what may start at i: "value", "key" (a string), "value|]" or "key|}"
    while True:
        while i < n and data[i] in _WS:
            i += 1
        if i >= n:
            return "unexpected end of JSON input"
        c = data[i]
        if expect in ("key", "key|}"):
            if c == ord("}") and expect == "key|}":
                stack.pop()
                i += 1
            elif c != ord('"'):
                return bad(c, "looking for beginning of object key string")
            else:
                i, err = string(i)
                if err:
                    return err
            # after a key (top "key") end_value reads the colon; after "}" the parent's next
            i, step = end_value(i)
        elif c == ord("]") and expect == "value|]":
            stack.pop()
            i, step = end_value(i + 1)
        elif c == ord("{"):
            stack.append("key")
            expect = "key|}"
            i += 1
            continue
        elif c == ord("["):
            stack.append("array")
            expect = "value|]"
            i += 1
            continue
        elif c == ord('"'):
            i, err = string(i)
            if err:
                return err
            i, step = end_value(i)
        elif c == ord("-") or c in _DIGITS:
            i, err = number(i)
            if err:
                return err
            i, step = end_value(i)
        elif c in _LITERALS:
            word = _LITERALS[c]
            for k in range(1, len(word)):
                if i + k >= n:
                    return "unexpected end of JSON input"
                if data[i + k] != word[k]:
                    return bad(
                        data[i + k],
                        f"in literal {word.decode()} (expecting {_go_quote_char(word[k])})",
                    )
            i, step = end_value(i + len(word))
        else:
            return bad(c, "looking for beginning of value")
        if step is None:
            return None
        if step.startswith(("invalid", "unexpected")):
            return step
        expect = "key" if step == "key" else "value"


def has_duplicates(value: Any) -> bool:
    """Whether any object inside ``value`` (as returned by ``loads``) repeated a key."""
    if isinstance(value, DuplicateKeysDict):
        return True
    if isinstance(value, dict):
        return any(has_duplicates(v) for v in value.values())
    if isinstance(value, list):
        return any(has_duplicates(v) for v in value)
    return False


# -- compiled schema ----------------------------------------------------------------------------

_OBJECT, _MAP, _LIST, _SCALAR, _FREE, _QTY, _INTSTR, _TIME, _BYTES = range(9)


class _Compiled:
    """One schema spot, reduced to what the walk needs."""

    __slots__ = ("_child", "_child_specs", "go_type", "json_types", "kind", "props", "struct")

    def __init__(self) -> None:
        self.kind = _FREE
        self.go_type = ""
        self.struct = ""
        self.json_types: frozenset[str] = frozenset()
        self.props: dict[str, _Compiled | None] = {}
        self._child_specs: dict[str, Any] = {}
        self._child: _Compiled | None = None

    def prop(self, name: str) -> _Compiled | Literal[False] | None:
        """The compiled child for a property, or ``False`` when unknown."""
        try:
            return self.props[name]
        except KeyError:
            pass
        spec = self._child_specs.get(name)
        if spec is None:
            return False
        c = _compile(spec)
        self.props[name] = c
        return c

    def child(self) -> _Compiled:
        c = self._child
        if c is None:
            raise TypeError(f"{self.go_type} has no element type")
        return c


_cache: dict[int, _Compiled] = {}


def _resolve(spec: dict[str, Any]) -> tuple[dict[str, Any], str]:
    ref = spec.get("$ref")
    if ref is None and len(spec.get("allOf") or ()) == 1:
        ref = spec["allOf"][0].get("$ref")
    if ref is None:
        return spec, ""
    name = str(ref).removeprefix(_REF_PREFIX)
    return schema.definitions()[name], name


def _short(def_name: str) -> str:
    """``io.k8s.api.core.v1.Container`` → ``v1.Container`` (Go's ``reflect.Type`` text)."""
    parts = def_name.split(".")
    return ".".join(parts[-2:]) if len(parts) >= 2 else def_name


def _json_types(spec: dict[str, Any]) -> frozenset[str]:
    t = spec.get("type")
    if t is None:
        return frozenset()
    if isinstance(t, str):
        return frozenset({t}) - {"null"}
    return frozenset(t) - {"null"}


def _compile(spec: dict[str, Any], *, name: str = "") -> _Compiled:
    """Compile a property spec (cached by identity: specs live as long as the definitions)."""
    key = id(spec)
    hit = _cache.get(key)
    if hit is not None:
        return hit
    if name:
        target = spec
    else:
        target, name = _resolve(spec)
        if name:
            return _definition(name)
    c = _Compiled()
    _cache[key] = c  # before recursing: definitions are recursive (JSONSchemaProps)
    types = _json_types(target)
    if name == _QUANTITY:
        c.kind, c.go_type = _QTY, "resource.Quantity"
    elif name == _INT_OR_STRING:
        c.kind, c.go_type = _INTSTR, "intstr.IntOrString"
    elif "properties" in target:
        c.kind = _OBJECT
        c.struct = name.rsplit(".", 1)[-1] if name else ""
        c.go_type = _short(name) if name else "struct"
        c._child_specs = target["properties"]
    elif isinstance(target.get("additionalProperties"), dict):
        c.kind = _MAP
        c._child = _compile(target["additionalProperties"])
        c.go_type = "map[string]" + c._child.go_type
    elif "items" in target:
        c.kind = _LIST
        c._child = _compile(target["items"])
        c.go_type = "[]" + c._child.go_type
    elif not types or types == {"object"}:
        c.kind, c.go_type = _FREE, "interface {}"
    elif target.get("format") == "date-time":
        c.kind, c.go_type = _TIME, "v1.Time"
    elif target.get("format") == "byte":
        c.kind, c.go_type = _BYTES, "[]uint8"
    else:
        c.kind = _SCALAR
        c.json_types = types
        fmt = target.get("format", "")
        if "integer" in types:
            c.go_type = fmt if fmt in ("int32", "int64") else "int"
        elif "number" in types:
            c.go_type = "float64"
        elif "boolean" in types:
            c.go_type = "bool"
        else:
            c.go_type = "string"
    return c


@functools.cache
def _definition(name: str) -> _Compiled:
    return _compile(schema.definitions()[name], name=name)


def _root(gvk: GroupVersionKind) -> _Compiled | None:
    name = schema.definition_name(gvk)
    return _definition(name) if name else None


# -- the walk -------------------------------------------------------------------------------------


class _Fatal(Exception):
    """An error upstream returns at once (custom unmarshalers), ending the decode."""


def _zero(c: _Compiled) -> Any:
    """What Go's typed decoding leaves for a JSON ``null`` inside a list or map of ``c``: the
    type's zero value as Go marshals it again (``None`` where Go's zero value marshals as
    ``null``: slices, maps, times, free-form values)."""
    kind = c.kind
    if kind == _SCALAR:
        go = c.go_type
        return "" if go == "string" else False if go == "bool" else 0
    if kind == _OBJECT:
        return {}
    if kind == _QTY:
        return "0"  # resource.Quantity's UnmarshalJSON reads null as zero
    if kind == _INTSTR:
        return 0
    if kind == _BYTES:
        return ""  # a nil []byte comes back from etcd's protobuf as an empty one
    return None


def _json_kind(v: Any) -> str:
    if isinstance(v, bool):
        return "bool"
    if isinstance(v, str):
        return "string"
    if isinstance(v, int | float):
        return "number"
    if isinstance(v, dict):
        return "object"
    if isinstance(v, list):
        return "array"
    return "null"


class _Walk:
    __slots__ = ("errors", "keep", "seen", "type_error")

    def __init__(self, *, keep: bool) -> None:
        self.errors: list[str] = []
        self.seen: set[str] = set()
        self.type_error: str | None = None
        self.keep = keep

    def strict(self, msg: str) -> None:
        if len(self.errors) >= _MAX_STRICT_ERRORS or msg in self.seen:
            return
        self.seen.add(msg)
        self.errors.append(msg)

    def mismatch(self, value: Any, c: _Compiled, struct: str, go_path: str) -> None:
        if self.type_error is not None:
            return
        what = _json_kind(value)
        if what == "number" and c.kind == _SCALAR and c.go_type in ("int32", "int64", "int"):
            what = f"number {_number_text(value)}"
        if struct or go_path:
            self.type_error = (
                f"json: cannot unmarshal {what} into Go struct field {struct}.{go_path} "
                f"of type {c.go_type}"
            )
        else:
            self.type_error = f"json: cannot unmarshal {what} into Go value of type {c.go_type}"

    def value(self, c: _Compiled, v: Any, path: str, struct: str, go_path: str) -> Any:
        """Check ``v`` against ``c``; return ``v`` itself, or a copy without unknown fields."""
        if v is None:
            return v
        kind = c.kind
        if kind == _OBJECT:
            if not isinstance(v, dict):
                self.mismatch(v, c, struct, go_path)
                return v
            return self.obj(c, v, path, go_path)
        if kind == _LIST:
            if not isinstance(v, list):
                self.mismatch(v, c, struct, go_path)
                return v
            item = c.child()
            if item.kind in (_SCALAR, _FREE):
                if item.kind == _SCALAR:
                    has_null = False
                    for x in v:
                        if x is None:
                            has_null = True
                        elif not _scalar_ok(item, x):
                            self.mismatch(x, item, struct, go_path)
                            break
                    if has_null:
                        zero = _zero(item)
                        return [zero if x is None else x for x in v]
                return v
            out: list[Any] | None = None
            for i, x in enumerate(v):
                nx = (
                    _zero(item)
                    if x is None
                    else self.value(item, x, f"{path}[{i}]", struct, go_path)
                )
                if nx is not x:
                    if out is None:
                        out = list(v)
                    out[i] = nx
            return v if out is None else out
        if kind == _MAP:
            if not isinstance(v, dict):
                self.mismatch(v, c, struct, go_path)
                return v
            val = c.child()
            if isinstance(v, DuplicateKeysDict):
                seen: set[str] = set()
                for k, _ in v.pairs:
                    if k in seen:
                        self.strict(f'duplicate field "{_join(path, k)}"')
                    seen.add(k)
            if val.kind == _FREE:
                return dict(v) if isinstance(v, DuplicateKeysDict) and self.keep else v
            if val.kind == _SCALAR:
                has_null = False
                for x in v.values():
                    if x is None:
                        has_null = True
                    elif not _scalar_ok(val, x):
                        self.mismatch(x, val, struct, go_path)
                        break
                if has_null:
                    zero = _zero(val)
                    return {k: zero if x is None else x for k, x in v.items()}
                return dict(v) if isinstance(v, DuplicateKeysDict) and self.keep else v
            mout: dict[str, Any] | None = (
                dict(v) if isinstance(v, DuplicateKeysDict) and self.keep else None
            )
            for k, x in v.items():
                nx = (
                    _zero(val) if x is None else self.value(val, x, _join(path, k), struct, go_path)
                )
                if nx is not x:
                    if mout is None:
                        mout = dict(v)
                    mout[k] = nx
            return v if mout is None else mout
        if kind == _SCALAR:
            if not _scalar_ok(c, v):
                self.mismatch(v, c, struct, go_path)
            return v
        if kind == _QTY:
            if isinstance(v, bool) or not isinstance(v, str | int | float):
                raise _Fatal(
                    "quantities must match the regular expression "
                    "'^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'"
                )
            try:
                canonical = parse_quantity(v).canonical()
            except QuantityError as e:
                raise _Fatal(str(e)) from e
            # Go keeps a Quantity, not the text it was read from, so what is stored and
            # served is the canonical form: 1.5Gi reads back as 1536Mi, 1000m as 1.
            return v if canonical == v else canonical
        if kind == _INTSTR:
            if isinstance(v, str) or (isinstance(v, int) and not isinstance(v, bool)):
                return v
            what = _json_kind(v)
            if what == "number":
                what = f"number {_number_text(v)}"
            raise _Fatal(f"json: cannot unmarshal {what} into Go value of type int32")
        if kind == _TIME:
            if not isinstance(v, str):
                raise _Fatal(f"json: cannot unmarshal {_json_kind(v)} into Go value of type string")
            err = _rfc3339_error(v)
            if err is not None:
                raise _Fatal(err)
            return v
        if kind == _BYTES:
            if not isinstance(v, str):
                self.mismatch(v, c, struct, go_path)
                return v
            err = _base64_error(v)
            if err is not None:
                if self.type_error is None:
                    self.type_error = err
                return v
            return _base64_canonical(v)
        return v  # free-form

    def obj(self, c: _Compiled, v: dict[str, Any], path: str, go_path: str) -> dict[str, Any]:
        struct = c.struct
        out: dict[str, Any] | None = None
        if isinstance(v, DuplicateKeysDict):
            items: Any = v.pairs
            if self.keep:
                out = dict(v)
            seen: set[str] = set()
        else:
            items = v.items()
            seen = set()
        dup_check = isinstance(v, DuplicateKeysDict)
        for k, x in items:
            child = c.prop(k)
            if child is False:
                self.strict(f'unknown field "{_join(path, k)}"')
                if self.keep:
                    if out is None:
                        out = dict(v)
                    out.pop(k, None)
                continue
            if dup_check:
                if k in seen:
                    self.strict(f'duplicate field "{_join(path, k)}"')
                seen.add(k)
            if child is None:
                continue
            if x is None:
                # Go leaves a field it reads null at its zero value, which omitempty (or a nil
                # pointer) leaves out of the object it writes back
                if v.get(k, 0) is None:
                    if out is None:
                        out = dict(v)
                    out.pop(k, None)
                continue
            nx = self.value(child, x, _join(path, k), struct, _join(go_path, k))
            if nx is not x:
                if out is None:
                    out = dict(v)
                if v.get(k) is x:
                    out[k] = nx
        return v if out is None else out


def _join(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name


def _number_text(v: Any) -> str:
    # Go quotes the literal; a float here was written with a fraction or exponent
    return repr(v) if isinstance(v, float) else str(v)


def _scalar_ok(c: _Compiled, v: Any) -> bool:
    go = c.go_type
    if go == "string":
        return isinstance(v, str)
    if go == "bool":
        return isinstance(v, bool)
    if isinstance(v, bool) or not isinstance(v, int | float):
        return False
    if go == "float64":
        return True
    if isinstance(v, float):
        return False  # Go's ParseInt refuses "1.0" and "1e3" for integer fields
    n = int(v)
    if go == "int32":
        return -(2**31) <= n < 2**31
    return -(2**63) <= n < 2**63


_RFC3339: Final = "2006-01-02T15:04:05Z07:00"
# Go's time.Parse walks the layout element by element; these are RFC 3339's elements:
# (layout text, kind) with kind "lit" (literal), "year", "num2" (exactly two digits),
# "num12" (one or two digits), "sec" (two digits plus optional fraction), "tz".
_RFC3339_ELEMENTS: Final = (
    ("2006", "year"),
    ("-", "lit"),
    ("01", "num2"),
    ("-", "lit"),
    ("02", "num2"),
    ("T", "lit"),
    ("15", "num12"),
    (":", "lit"),
    ("04", "num2"),
    (":", "lit"),
    ("05", "sec"),
    ("Z07:00", "tz"),
)
_RANGE_NAMES: Final = {"01": "month", "15": "hour", "04": "minute", "05": "second"}
_RANGE_LIMITS: Final = {"01": (1, 12), "15": (0, 23), "04": (0, 59), "05": (0, 59)}


def _go_quote(s: str) -> str:
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _getnum(value: str, *, fixed: bool) -> tuple[int, str] | None:
    if not value[:1].isdigit():
        return None
    if not value[1:2].isdigit():
        return None if fixed else (int(value[0]), value[1:])
    return int(value[:2]), value[2:]


def _rfc3339_error(text: str) -> str | None:
    """Go's ``time.Parse(time.RFC3339, text)`` error text (what ``metav1.Time`` returns), or
    ``None`` when ``text`` parses."""

    def cannot(value: str, elem: str) -> str:
        return (
            f"parsing time {_go_quote(text)} as {_go_quote(_RFC3339)}: cannot parse "
            f"{_go_quote(value)} as {_go_quote(elem)}"
        )

    def out_of_range(what: str) -> str:
        return f"parsing time {_go_quote(text)}: {what} out of range"

    value = text
    fields: dict[str, int] = {}
    for elem, kind in _RFC3339_ELEMENTS:
        hold = value
        if kind == "lit":
            if not value.startswith(elem):
                return cannot(value, elem)
            value = value[len(elem) :]
            continue
        if kind == "year":
            if len(value) < 4 or not value[:4].isdigit():
                return cannot(hold, elem)
            fields["year"], value = int(value[:4]), value[4:]
            continue
        if kind == "tz":
            if value.startswith("Z"):
                value = value[1:]
                continue
            if len(value) < 6 or value[3] != ":":
                return cannot(hold, elem)
            sign, hh, mm, value = value[0], value[1:3], value[4:6], value[6:]
            if _getnum(hh, fixed=True) is None or _getnum(mm, fixed=True) is None:
                return cannot(hold, elem)
            if int(hh) > 24:
                return out_of_range("time zone offset hour")
            if int(mm) > 60:
                return out_of_range("time zone offset minute")
            if sign not in "+-":
                return cannot(hold, elem)
            continue
        got = _getnum(value, fixed=kind != "num12")
        if got is None:
            return cannot(hold, elem)
        n, value = got
        fields[elem] = n
        if elem in _RANGE_LIMITS:
            lo, hi = _RANGE_LIMITS[elem]
            if not lo <= n <= hi:
                return out_of_range(_RANGE_NAMES[elem])
        if kind == "sec" and len(value) >= 2 and value[0] in ".," and value[1].isdigit():
            i = 2
            while i < len(value) and value[i].isdigit():
                i += 1
            value = value[i:]
    if value:
        return f"parsing time {_go_quote(text)}: extra text: {_go_quote(value)}"
    year, month, day = fields["year"], fields["01"], fields["02"]
    if not 1 <= day <= calendar.monthrange(year, month)[1]:
        return out_of_range("day")
    return None


def _base64_error(s: str) -> str | None:
    """Go's ``base64.StdEncoding`` verdict, reduced to the position of the first bad byte."""
    data = s.encode()
    m = _BASE64_CHARS.search(data)
    if m is not None:
        return f"illegal base64 data at input byte {m.start()}"
    if b"\r" in data or b"\n" in data:
        data = data.replace(b"\r", b"").replace(b"\n", b"")  # Go skips line breaks
    try:
        binascii.a2b_base64(data, strict_mode=True)
    except binascii.Error:
        # TODO(#2): Go reports the exact offset of a misplaced '=' or a short final quantum;
        # this points at the end of the last complete quantum instead.
        return f"illegal base64 data at input byte {len(data) - len(data) % 4}"
    return None


def _base64_canonical(s: str) -> str:
    """Go decodes a ``[]byte`` field and encodes the bytes again when it writes the object, so
    line breaks (which its decoder skips) and stray padding bits are gone from what it stores.
    ``s`` has passed ``_base64_error``; returns ``s`` itself when it is already canonical."""
    raw = s.encode()
    again = binascii.b2a_base64(binascii.a2b_base64(raw), newline=False)
    return s if again == raw else again.decode()


# -- YAML errors ------------------------------------------------------------------------------------

# PyYAML's wording of a problem -> libyaml's (which go-yaml reports)
_YAML_PROBLEMS: Final = (
    ("mapping values are not allowed here", "mapping values are not allowed in this context"),
    ("expected ',' or ']'", "did not find expected ',' or ']'"),
    ("expected ',' or '}'", "did not find expected ',' or '}'"),
    ("expected the node content", "did not find expected node content"),
    ("expected '<document start>'", "did not find expected <document start>"),
)


def yaml_error(e: Exception) -> str:
    """go-yaml's text for a PyYAML error, as sigs.k8s.io/yaml wraps it: ``error converting
    YAML to JSON: yaml: line N: <problem>``. go-yaml numbers a scanner error's line from 1 and
    a parser error's from 0 (it reuses libyaml's mark as it is)."""
    problem = str(getattr(e, "problem", "") or "") or "unknown problem parsing YAML content"
    for python_text, go_text in _YAML_PROBLEMS:
        if problem.startswith(python_text):
            problem = go_text
            break
    else:
        if problem.startswith("found character") and problem.endswith("cannot start any token"):
            problem = "found character that cannot start any token"
        elif problem.startswith("expected <block end>"):
            context = str(getattr(e, "context", "") or "")
            problem = (
                "did not find expected '-' indicator"
                if "collection" in context or "sequence" in context
                else "did not find expected key"
            )
    scanner = type(e).__name__ == "ScannerError"
    mark = getattr(e, "problem_mark", None) or getattr(e, "context_mark", None)
    line = (mark.line + 1 if scanner else mark.line) if mark is not None else 0
    where = f"line {line}: " if line else ""
    return f"error converting YAML to JSON: yaml: {where}{problem}"


# -- server-side apply's typed patch ---------------------------------------------------------------


class TypedPatchError(StatusError):
    """structured-merge-diff's verdict on an apply configuration; upstream returns it as a plain
    Go error, so the API answers a 500 with no reason (kubectl: ``Error from server: ...``)."""

    reason = ""
    code = 500


def _go_v(v: Any) -> str:
    """Go's ``%v`` of a decoded JSON value."""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, dict):
        return "map[" + " ".join(f"{k}:{_go_v(x)}" for k, x in sorted(v.items())) + "]"
    if isinstance(v, list):
        return "[" + " ".join(_go_v(x) for x in v) + "]"
    return "<nil>" if v is None else str(v)


def _go_sharp_v(v: Any) -> str:
    """Go's ``%#v`` of a decoded JSON value (``interface {}`` inside maps and slices)."""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, str):
        return json.dumps(v, ensure_ascii=False)
    if isinstance(v, dict):
        inner = ", ".join(f"{json.dumps(k)}:{_go_sharp_v(x)}" for k, x in sorted(v.items()))
        return "map[string]interface {}{" + inner + "}"
    if isinstance(v, list):
        return "[]interface {}{" + ", ".join(_go_sharp_v(x) for x in v) + "}"
    return "interface {}(nil)" if v is None else str(v)


def _go_type(v: Any) -> str:
    """Go's ``%T`` of a decoded JSON value."""
    if isinstance(v, bool):
        return "bool"
    if isinstance(v, str):
        return "string"
    if isinstance(v, int):
        return "int64"
    if isinstance(v, float):
        return "float64"
    if isinstance(v, dict):
        return "map[string]interface {}"
    return "[]interface {}"


def _smd_key(v: Any) -> str:
    return json.dumps(v, ensure_ascii=False, separators=(",", ":"))


def _smd_walk(spec: dict[str, Any], value: Any, path: str, errs: list[str]) -> None:
    target, name = _resolve(spec)
    if value is None or name in (_QUANTITY, _INT_OR_STRING):
        return  # null is always allowed; quantities and int-or-strings are untyped scalars
    if "properties" in target or isinstance(target.get("additionalProperties"), dict):
        if not isinstance(value, dict):
            errs.append(f"{path}: expected map, got &{{{_go_v(value)}}}")
            return
        props = target.get("properties")
        for k in sorted(value):
            child_path = f"{path}.{k}"
            if props is not None:
                if k not in props:
                    errs.append(f"{child_path}: field not declared in schema")
                    continue
                _smd_walk(props[k], value[k], child_path, errs)
            else:
                _smd_walk(target["additionalProperties"], value[k], child_path, errs)
        return
    if "items" in target:
        if not isinstance(value, list):
            errs.append(f"{path}: expected list, got &{{{_go_v(value)}}}")
            return
        list_type = target.get("x-kubernetes-list-type", "atomic")
        keys = target.get("x-kubernetes-list-map-keys") or ()
        for i, item in enumerate(value):
            if list_type == "map" and keys and isinstance(item, dict):
                element = ",".join(f"{k}={_smd_key(item[k])}" for k in keys if k in item)
            elif list_type == "set":
                element = "=" + _smd_key(item)
            else:
                element = str(i)
            _smd_walk(target["items"], item, f"{path}[{element}]", errs)
        return
    types = _json_types(target)
    if not types or types == {"object"}:
        return  # free-form (RawExtension, JSON): deduced, anything goes
    if "string" in types:
        if not isinstance(value, str):
            errs.append(
                f"{path}: expected string, got &value.valueUnstructured{{Value:{_go_sharp_v(value)}}}"
            )
    elif "integer" in types or "number" in types:
        if isinstance(value, bool) or not isinstance(value, int | float):
            errs.append(f"{path}: expected numeric (int or float), got {_go_type(value)}")
    elif "boolean" in types and not isinstance(value, bool):
        errs.append(f"{path}: expected boolean, got &{{{_go_v(value)}}}")


def check_typed_patch(applied: Obj, *, gvk: GroupVersionKind) -> None:
    """Server-side apply turns the configuration into a typed value before merging anything
    (so before conflicts, and whatever ``fieldValidation`` says): a field the schema does not
    declare, or a value of the wrong type, fails the request (``TypedPatchError``) with
    structured-merge-diff's text. Kinds without an upstream schema pass."""
    name = schema.definition_name(gvk)
    if name is None:
        return
    errs: list[str] = []
    _smd_walk(schema.definitions()[name], applied, "", errs)
    if not errs:
        return
    detail = errs[0] if len(errs) == 1 else "\n".join(["errors:", *(f"  {e}" for e in errs)])
    m = applied.get("metadata")
    m = m if isinstance(m, dict) else {}
    raise TypedPatchError(
        f"failed to create typed patch object ({m.get('namespace') or ''}/{m.get('name') or ''}; "
        f"{gvk.group}/{gvk.version}, Kind={gvk.kind}): {detail}"
    )


# -- public entry points --------------------------------------------------------------------------


def cannot_be_handled(
    gvk: GroupVersionKind, detail: str, *, target_kind: str | None = None
) -> BadRequest:
    """Upstream's 400 for a body that does not decode (``transformDecodeError``):
    ``<body Kind> in version "<body version>" cannot be handled as a <endpoint Kind>: ...``."""
    return BadRequest(
        f'{gvk.kind} in version "{gvk.version}" cannot be handled as a '
        f"{target_kind or gvk.kind}: {detail}"
    )


def _body_gvk(body: Obj, endpoint: GroupVersionKind) -> GroupVersionKind:
    """The type the body names, defaulted from the endpoint where it names none."""
    api_version = body.get("apiVersion")
    kind = body.get("kind")
    if not isinstance(api_version, str) or not api_version:
        api_version = endpoint.api_version
    if not isinstance(kind, str) or not kind:
        kind = endpoint.kind
    group, _, version = api_version.rpartition("/")
    return GroupVersionKind(group=group, version=version, kind=kind)


def _go_package(gvk: GroupVersionKind, *, internal: bool) -> str:
    if not internal:
        return gvk.version
    return gvk.group.split(".", 1)[0] if gvk.group else "core"


def _type_meta_error(body_gvk: GroupVersionKind, endpoint: GroupVersionKind) -> BadRequest | None:
    """The error upstream's codec gives when the body names another kind than the endpoint's
    (before any field is checked), or ``None``."""
    if body_gvk.kind == endpoint.kind and body_gvk.group == endpoint.group:
        return None
    if schema.definition_name(body_gvk) is None:
        # the wording of kube-apiserver's scheme for a type it does not know
        return cannot_be_handled(
            body_gvk,
            f'no kind "{body_gvk.kind}" is registered for version "{body_gvk.api_version}" in '
            'scheme "k8s.io/kubernetes/pkg/api/legacyscheme/scheme.go:30"',
            target_kind=endpoint.kind,
        )
    if body_gvk.kind == endpoint.kind:
        return None  # same kind from another group: the API version check below refuses it
    return cannot_be_handled(
        body_gvk,
        f"converting ({_go_package(body_gvk, internal=False)}.{body_gvk.kind}) to "
        f"({_go_package(endpoint, internal=True)}.{endpoint.kind}): unknown conversion",
        target_kind=endpoint.kind,
    )


def check_type_meta(body: Obj, *, gvk: GroupVersionKind) -> None:
    """Refuse a body whose ``apiVersion``/``kind`` name another type than the endpoint's.

    Empty values are allowed (upstream defaults them from the endpoint). ``decode_object``
    already does this; it is here for bodies that skip schema decoding."""
    body_gvk = _body_gvk(body, gvk)
    err = _type_meta_error(body_gvk, gvk)
    if err is not None:
        raise err
    if body_gvk.api_version != gvk.api_version:
        raise _api_version_error(body_gvk, gvk)


def _api_version_error(body_gvk: GroupVersionKind, endpoint: GroupVersionKind) -> BadRequest:
    return BadRequest(
        f"the API version in the data ({body_gvk.api_version}) does not match the expected API "
        f"version ({endpoint.api_version})"
    )


def decode_object(
    body: Any,
    *,
    gvk: GroupVersionKind,
    mode: Mode = "Strict",
    raw: bytes | None = None,
) -> tuple[Obj, list[str]]:
    """Check a request body against its kind's schema, as upstream's strict decoder does.

    ``gvk`` is the type the endpoint expects. ``body`` should come from ``loads`` (so
    duplicate keys are known); pass ``raw`` instead (``body`` is then ignored) to have it
    parsed here. Returns the object, with unknown fields dropped and JSON nulls replaced as
    Go's typed decoding leaves them (a null field is absent, a null in a list or map of
    strings is ``""``, of objects ``{}``; free-form values keep theirs), unless there was
    nothing to change (then ``body`` itself is returned, not a copy), and the warning texts
    (``unknown field "spec.foo"``; only in ``Warn`` mode).

    Raises ``BadRequest`` with upstream's texts, in upstream's order: a body naming another
    kind (conversion error); a type error (``... cannot be handled as a <Kind>: json: cannot
    unmarshal ...``, in every mode); unknown/duplicate fields (``Strict`` only); a body naming
    another API version of the kind (``the API version in the data ...``). Kinds without an
    upstream schema are returned unchanged.
    """
    if raw is not None:
        body = loads(raw)
    if not isinstance(body, dict):
        raise cannot_be_handled(
            gvk, f"json: cannot unmarshal {_json_kind(body)} into Go value of type struct"
        )
    body_gvk = _body_gvk(body, gvk)
    err = _type_meta_error(body_gvk, gvk)
    if err is not None:
        raise err
    root = _root(body_gvk)
    out: Obj = body
    warnings: list[str] = []
    if root is not None:
        walk = _Walk(keep=mode != "Strict")
        try:
            out = walk.obj(root, body, "", "")
        except _Fatal as e:
            raise cannot_be_handled(body_gvk, str(e), target_kind=gvk.kind) from None
        if walk.type_error is not None:
            raise cannot_be_handled(body_gvk, walk.type_error, target_kind=gvk.kind)
        if mode == "Strict" and walk.errors:
            raise cannot_be_handled(
                body_gvk,
                "strict decoding error: " + ", ".join(walk.errors),
                target_kind=gvk.kind,
            )
        if mode == "Warn":
            warnings = walk.errors
    if body_gvk.api_version != gvk.api_version:
        raise _api_version_error(body_gvk, gvk)
    return out, warnings


def decode_body(
    raw: bytes,
    *,
    content_type: str | None,
    gvk: GroupVersionKind,
    mode: Mode = "Strict",
) -> tuple[Obj, list[str]]:
    """A create/update request body (JSON, or kubectl's protobuf) through ``decode_object``.

    A missing ``Content-Type`` is JSON (kubectl sends none on some subresource PUTs)."""
    body: Any = protobuf.decode(raw) if protobuf.is_protobuf(content_type) else loads(raw)
    return decode_object(body, gvk=gvk, mode=mode)


__all__ = [
    "MAX_DEPTH",
    "MODES",
    "DuplicateKeysDict",
    "Mode",
    "TypedPatchError",
    "cannot_be_handled",
    "check_depth",
    "check_type_meta",
    "check_typed_patch",
    "check_value_depth",
    "decode_body",
    "decode_object",
    "go_json_error",
    "has_duplicates",
    "json_syntax_error",
    "loads",
    "not_an_object",
    "too_deep",
    "unrecognized",
    "yaml_error",
    "yaml_syntax_error",
]
