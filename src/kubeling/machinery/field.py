"""Field errors: what validation finds, worded as apimachinery's ``field.Error`` words it.

Validation code builds a list of ``FieldError`` values with a ``Path`` (``spec.volumes[0].name``,
``data[tls.key]``) and turns the list into one ``Invalid`` error. The rendering rules are
upstream's, because kubectl prints them verbatim and users search for them:
``<path>: <Type>[: <bad value>][: <detail>]``, string bad values double-quoted, several
errors joined as ``[e1, e2]`` in the Status message, one ``Cause`` per error.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Final, Literal

import orjson

from kubeling.machinery.errors import Cause, Invalid

ErrorType = Literal[
    "FieldValueRequired",
    "FieldValueInvalid",
    "FieldValueNotSupported",
    "FieldValueForbidden",
    "FieldValueTooLong",
    "FieldValueTooMany",
    "FieldValueDuplicate",
    "FieldValueNotFound",
    "InternalError",
]

_TYPE_TEXT: Final[dict[ErrorType, str]] = {
    "FieldValueRequired": "Required value",
    "FieldValueInvalid": "Invalid value",
    "FieldValueNotSupported": "Unsupported value",
    "FieldValueForbidden": "Forbidden",
    "FieldValueTooLong": "Too long",
    "FieldValueTooMany": "Too many",
    "FieldValueDuplicate": "Duplicate value",
    "FieldValueNotFound": "Not found",
    "InternalError": "Internal error",
}

# Types whose message never shows the bad value, as in field/errors.go.
_NO_VALUE: Final = frozenset({"FieldValueRequired", "FieldValueForbidden", "InternalError"})

_OMIT: Final = object()


@dataclass(frozen=True)
class Path:
    """A field path such as ``spec.containers[0].name`` or ``data[tls.crt]``."""

    text: str = ""

    def child(self, name: str, *more: str) -> Path:
        out = self.text
        for part in (name, *more):
            out = f"{out}.{part}" if out else part
        return Path(out)

    def index(self, i: int) -> Path:
        return Path(f"{self.text}[{i}]")

    def key(self, k: str) -> Path:
        return Path(f"{self.text}[{k}]")

    def __str__(self) -> str:
        return self.text


ROOT: Final = Path()


def render_value(value: Any) -> str:
    """Bad values as upstream prints them: strings quoted, numbers bare, the rest as JSON."""
    if isinstance(value, str):
        return orjson.dumps(value).decode()
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    if value is None:
        return "null"
    try:
        return orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode()
    except TypeError:
        return repr(value)


@dataclass(frozen=True)
class FieldError:
    type: ErrorType
    field: str
    bad_value: Any = _OMIT
    detail: str = ""

    def __str__(self) -> str:
        # A root path prints as "[]" upstream (e.g. the ConfigMap size limit:
        # `ConfigMap "x" is invalid: []: Too long: may not be more than 1048576 bytes`).
        head = f"{self.field or '[]'}: "
        text = _TYPE_TEXT[self.type]
        parts = [f"{head}{text}"]
        if self.type not in _NO_VALUE and self.bad_value is not _OMIT:
            parts.append(render_value(self.bad_value))
        if self.detail:
            parts.append(self.detail)
        return ": ".join(parts)

    def to_cause(self) -> Cause:
        return Cause(reason=self.type, message=self.body(), field=self.field)

    def body(self) -> str:
        """The message without the leading field path (what ``causes[].message`` holds)."""
        text = str(self)
        return text[len(self.field or "[]") + 2 :]


def required(path: Path, detail: str = "") -> FieldError:
    return FieldError("FieldValueRequired", str(path), detail=detail)


def invalid(path: Path, value: Any, detail: str = "") -> FieldError:
    return FieldError("FieldValueInvalid", str(path), value, detail)


def not_supported(path: Path, value: Any, supported: Iterable[str]) -> FieldError:
    quoted = ", ".join(f'"{v}"' for v in sorted(supported))
    detail = f"supported values: {quoted}" if quoted else ""
    return FieldError("FieldValueNotSupported", str(path), value, detail)


def forbidden(path: Path, detail: str) -> FieldError:
    return FieldError("FieldValueForbidden", str(path), detail=detail)


def too_long(path: Path, max_length: int) -> FieldError:
    """v1.32's wording (a real v1.32.3 API server answers an oversized annotation set with
    ``metadata.annotations: Too long: may not be more than 262144 bytes``); the value itself is
    never shown, only the limit. Older servers said "must have at most N bytes"."""
    return FieldError(
        "FieldValueTooLong", str(path), detail=f"may not be more than {max_length} bytes"
    )


def too_many(path: Path, actual: int, max_items: int) -> FieldError:
    return FieldError(
        "FieldValueTooMany", str(path), actual, f"must have at most {max_items} items"
    )


def duplicate(path: Path, value: Any) -> FieldError:
    return FieldError("FieldValueDuplicate", str(path), value)


def not_found(path: Path, value: Any) -> FieldError:
    return FieldError("FieldValueNotFound", str(path), value)


def aggregate_message(errors: Sequence[FieldError]) -> str:
    """``e1`` alone, or ``[e1, e2]``, as ``utilerrors.NewAggregate`` prints them."""
    texts = [str(e) for e in errors]
    if len(texts) == 1:
        return texts[0]
    return "[" + ", ".join(texts) + "]"


def invalid_error(*, kind: str, group: str, name: str, errors: Sequence[FieldError]) -> Invalid:
    """``<Kind>[.<group>] "<name>" is invalid: <errors>`` with one cause per error (HTTP 422).

    The kind is qualified by its group as upstream's ``GroupKind.String()`` does
    (``StatefulSet.apps "web" is invalid``); kubectl prints the message as it comes.
    """
    qualified = f"{kind}.{group}" if group else kind
    return Invalid(
        f'{qualified} "{name}" is invalid: {aggregate_message(errors)}',
        kind=kind,
        group=group,
        name=name,
        causes=[e.to_cause() for e in errors],
    )
