"""Upstream's reusable validators: names, labels, keys, ports, quantities, label selectors.

Two layers, as in apimachinery: ``is_*`` functions take a string and return the list of
upstream's message texts (``IsDNS1123Label`` and friends), and ``validate_*`` functions wrap
them into ``FieldError`` lists with upstream's paths. The texts are byte-for-byte upstream's
because kubectl prints them verbatim and users search for them (note the two spaces before
each ``or`` in the examples: that is how ``RegexError`` joins them).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any, Final

from kubeling.machinery import field as f
from kubeling.machinery.field import FieldError, Path
from kubeling.machinery.quantity import Quantity, parse_quantity_or_none
from kubeling.machinery.selectors import regex_error

# -- message builders ------------------------------------------------------------------------


def max_len_error(length: int) -> str:
    return f"must be no more than {length} characters"


EMPTY_ERROR: Final = "must be non-empty"

# -- names -----------------------------------------------------------------------------------

DNS1123_LABEL_MAX: Final = 63
DNS1123_SUBDOMAIN_MAX: Final = 253
DNS1035_LABEL_MAX: Final = 63

_DNS1123_LABEL_FMT: Final = "[a-z0-9]([-a-z0-9]*[a-z0-9])?"
_DNS1123_LABEL_MSG: Final = (
    "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', "
    "and must start and end with an alphanumeric character"
)
_DNS1123_SUBDOMAIN_FMT: Final = _DNS1123_LABEL_FMT + r"(\." + _DNS1123_LABEL_FMT + ")*"
_DNS1123_SUBDOMAIN_MSG: Final = (
    "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' "
    "or '.', and must start and end with an alphanumeric character"
)
_DNS1035_LABEL_FMT: Final = "[a-z]([-a-z0-9]*[a-z0-9])?"
_DNS1035_LABEL_MSG: Final = (
    "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with "
    "an alphabetic character, and end with an alphanumeric character"
)

_DNS1123_LABEL_RE: Final = re.compile(f"^{_DNS1123_LABEL_FMT}$")
_DNS1123_SUBDOMAIN_RE: Final = re.compile(f"^{_DNS1123_SUBDOMAIN_FMT}$")
_DNS1035_LABEL_RE: Final = re.compile(f"^{_DNS1035_LABEL_FMT}$")


def is_dns1123_label(value: str) -> list[str]:
    errs = []
    if len(value) > DNS1123_LABEL_MAX:
        errs.append(max_len_error(DNS1123_LABEL_MAX))
    if not _DNS1123_LABEL_RE.fullmatch(value):
        errs.append(regex_error(_DNS1123_LABEL_MSG, _DNS1123_LABEL_FMT, "my-name", "123-abc"))
    return errs


def is_dns1123_subdomain(value: str) -> list[str]:
    errs = []
    if len(value) > DNS1123_SUBDOMAIN_MAX:
        errs.append(max_len_error(DNS1123_SUBDOMAIN_MAX))
    if not _DNS1123_SUBDOMAIN_RE.fullmatch(value):
        errs.append(regex_error(_DNS1123_SUBDOMAIN_MSG, _DNS1123_SUBDOMAIN_FMT, "example.com"))
    return errs


def is_dns1035_label(value: str) -> list[str]:
    errs = []
    if len(value) > DNS1035_LABEL_MAX:
        errs.append(max_len_error(DNS1035_LABEL_MAX))
    if not _DNS1035_LABEL_RE.fullmatch(value):
        errs.append(regex_error(_DNS1035_LABEL_MSG, _DNS1035_LABEL_FMT, "my-name", "abc-123"))
    return errs


def is_path_segment_name(value: str) -> list[str]:
    """Upstream ``IsValidPathSegmentName``: what every name must satisfy to sit in a URL."""
    for bad in (".", ".."):
        if value == bad:
            return [f"may not be '{bad}'"]
    return [f"may not contain '{bad}'" for bad in ("/", "%") if bad in value]


NAME_CHECKS: Final[dict[str, Callable[[str], list[str]]]] = {
    "subdomain": is_dns1123_subdomain,
    "label": is_dns1123_label,
    "label1035": is_dns1035_label,
    "segment": is_path_segment_name,
}


def validate_name(
    name: str, *, kind: str = "subdomain", path: Path | None = None
) -> list[FieldError]:
    """``metadata.name`` checks; ``kind`` is ``Strategy.name_validation``."""
    p = path if path is not None else Path("metadata.name")
    if not name:
        return [f.required(p, "name or generateName is required")]
    return [f.invalid(p, name, msg) for msg in NAME_CHECKS[kind](name)]


# -- qualified names, labels, annotations ----------------------------------------------------

QUALIFIED_NAME_MAX: Final = 63
LABEL_VALUE_MAX: Final = 63
TOTAL_ANNOTATION_SIZE: Final = 256 * 1024

_QUALIFIED_NAME_FMT: Final = "([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]"
_QUALIFIED_NAME_MSG: Final = (
    "must consist of alphanumeric characters, '-', '_' or '.', and must start and end with "
    "an alphanumeric character"
)
_QUALIFIED_NAME_RE: Final = re.compile(f"^{_QUALIFIED_NAME_FMT}$")
_LABEL_VALUE_FMT: Final = f"({_QUALIFIED_NAME_FMT})?"
_LABEL_VALUE_MSG: Final = (
    "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' "
    "or '.', and must start and end with an alphanumeric character"
)
_LABEL_VALUE_RE: Final = re.compile(f"^{_LABEL_VALUE_FMT}$")


def is_qualified_name(value: str) -> list[str]:
    """Upstream ``IsQualifiedName``: ``[prefix/]name`` as label keys and annotations use."""
    errs: list[str] = []
    parts = value.split("/")
    if len(parts) == 1:
        name = parts[0]
    elif len(parts) == 2:
        prefix, name = parts
        if not prefix:
            errs.append("prefix part " + EMPTY_ERROR)
        else:
            errs.extend("prefix part " + m for m in is_dns1123_subdomain(prefix))
    else:
        return [
            "a qualified name "
            + regex_error(_QUALIFIED_NAME_MSG, _QUALIFIED_NAME_FMT, "MyName", "my.name", "123-abc")
            + " with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')"
        ]
    if not name:
        errs.append("name part " + EMPTY_ERROR)
    elif len(name) > QUALIFIED_NAME_MAX:
        errs.append("name part " + max_len_error(QUALIFIED_NAME_MAX))
    if name and not _QUALIFIED_NAME_RE.fullmatch(name):
        errs.append(
            "name part "
            + regex_error(_QUALIFIED_NAME_MSG, _QUALIFIED_NAME_FMT, "MyName", "my.name", "123-abc")
        )
    return errs


def is_label_value(value: str) -> list[str]:
    errs = []
    if len(value) > LABEL_VALUE_MAX:
        errs.append(max_len_error(LABEL_VALUE_MAX))
    if not _LABEL_VALUE_RE.fullmatch(value):
        errs.append(regex_error(_LABEL_VALUE_MSG, _LABEL_VALUE_FMT, "MyValue", "my_value", "12345"))
    return errs


def validate_labels(labels: Mapping[str, Any] | None, path: Path) -> list[FieldError]:
    """Upstream ``ValidateLabels``: errors sit on the map's path, not on a keyed path."""
    errs: list[FieldError] = []
    for key in sorted(labels or {}):
        value = (labels or {})[key]
        errs.extend(f.invalid(path, key, m) for m in is_qualified_name(key))
        text = value if isinstance(value, str) else str(value)
        errs.extend(f.invalid(path, text, m) for m in is_label_value(text))
    return errs


def validate_annotations(annotations: Mapping[str, Any] | None, path: Path) -> list[FieldError]:
    errs: list[FieldError] = []
    total = 0
    for key in sorted(annotations or {}):
        value = (annotations or {})[key]
        errs.extend(f.invalid(path, key, m) for m in is_qualified_name(key.lower()))
        total += len(key) + len(str(value))
    if total > TOTAL_ANNOTATION_SIZE:
        errs.append(too_long_no_value(path, TOTAL_ANNOTATION_SIZE))
    return errs


def too_long_no_value(path: Path, max_bytes: int) -> FieldError:
    """``field.TooLong`` as v1.32 prints it: the (whole-object) value is never shown."""
    return FieldError(
        "FieldValueTooLong", str(path), detail=f"may not be more than {max_bytes} bytes"
    )


def validate_object_meta(
    obj: Mapping[str, Any], *, namespaced: bool, name_validation: str = "subdomain"
) -> list[FieldError]:
    """Upstream ``ValidateObjectMeta``: name (unless generateName), namespace, labels,
    annotations. Offered for the generic store; strategies do not call it themselves."""
    meta = obj.get("metadata") or {}
    p = Path("metadata")
    errs: list[FieldError] = []
    name = meta.get("name") or ""
    if name or not meta.get("generateName"):
        errs.extend(validate_name(name, kind=name_validation, path=p.child("name")))
    ns = meta.get("namespace") or ""
    if namespaced:
        if not ns:
            errs.append(f.required(p.child("namespace")))
        else:
            errs.extend(f.invalid(p.child("namespace"), ns, m) for m in is_dns1123_label(ns))
    elif ns:
        errs.append(f.forbidden(p.child("namespace"), "not allowed on this type"))
    errs.extend(validate_labels(meta.get("labels"), p.child("labels")))
    errs.extend(validate_annotations(meta.get("annotations"), p.child("annotations")))
    return errs


# -- config keys, env vars, ports ------------------------------------------------------------

_CONFIG_KEY_FMT: Final = "[-._a-zA-Z0-9]+"
_CONFIG_KEY_MSG: Final = (
    "a valid config key must consist of alphanumeric characters, '-', '_' or '.'"
)
_CONFIG_KEY_RE: Final = re.compile(f"^{_CONFIG_KEY_FMT}$")


def _chdir_prefix(value: str) -> list[str]:
    if value == ".":
        return ["must not be '.'"]
    if value == "..":
        return ["must not be '..'"]
    if value.startswith(".."):
        return ["must not start with '..'"]
    return []


def is_config_map_key(value: str) -> list[str]:
    errs = []
    if len(value) > DNS1123_SUBDOMAIN_MAX:
        errs.append(max_len_error(DNS1123_SUBDOMAIN_MAX))
    if not _CONFIG_KEY_RE.fullmatch(value):
        errs.append(
            regex_error(_CONFIG_KEY_MSG, _CONFIG_KEY_FMT, "key.name", "KEY_NAME", "key-name")
        )
    errs.extend(_chdir_prefix(value))
    return errs


_ENV_VAR_FMT: Final = "[-._a-zA-Z][-._a-zA-Z0-9]*"
_ENV_VAR_MSG: Final = (
    "a valid environment variable name must consist of alphabetic characters, digits, '_', "
    "'-', or '.', and must not start with a digit"
)
_ENV_VAR_RE: Final = re.compile(f"^{_ENV_VAR_FMT}$")
_RELAXED_ENV_VAR_RE: Final = re.compile(r"^[ -<>-~]+$")
_RELAXED_ENV_VAR_MSG: Final = (
    "a valid environment variable name must consist only of printable ASCII characters other "
    "than '='"
)


def is_env_var_name(value: str) -> list[str]:
    """The strict rule (what ``kubectl create --from-env-file`` still applies)."""
    errs = []
    if not _ENV_VAR_RE.fullmatch(value):
        errs.append(
            regex_error(_ENV_VAR_MSG, _ENV_VAR_FMT, "my.env-name", "MY_ENV.NAME", "MyEnvName1")
        )
    errs.extend(_chdir_prefix(value))
    return errs


def is_relaxed_env_var_name(value: str) -> list[str]:
    """v1.32's pod rule: RelaxedEnvironmentVariableValidation is beta and on by default."""
    errs = []
    if not value:
        errs.append("environment variable name " + EMPTY_ERROR)
    elif not _RELAXED_ENV_VAR_RE.fullmatch(value):
        errs.append(_RELAXED_ENV_VAR_MSG)
    return errs


_PORT_NAME_CHARSET_RE: Final = re.compile(r"^[-a-z0-9]+$")
_PORT_NAME_LETTER_RE: Final = re.compile(r".*[a-z].*")


def is_valid_port_name(value: str) -> list[str]:
    errs = []
    if len(value) > 15:
        errs.append(max_len_error(15))
    if not _PORT_NAME_CHARSET_RE.match(value):
        errs.append("must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)")
    if not _PORT_NAME_LETTER_RE.match(value):
        errs.append("must contain at least one letter (a-z)")
    if "--" in value:
        errs.append("must not contain consecutive hyphens")
    if value and (value[0] == "-" or value[-1] == "-"):
        errs.append("must not begin or end with a hyphen")
    return errs


def is_valid_port_num(port: Any) -> list[str]:
    if isinstance(port, int) and not isinstance(port, bool) and 1 <= port <= 65535:
        return []
    return ["must be between 1 and 65535, inclusive"]


def validate_nonnegative(value: Any, path: Path) -> list[FieldError]:
    if isinstance(value, int | float) and value < 0:
        return [f.invalid(path, value, "must be greater than or equal to 0")]
    return []


def validate_immutable(new: Any, old: Any, path: Path) -> list[FieldError]:
    """Upstream ``ValidateImmutableField``."""
    if new != old:
        return [f.invalid(path, new, "field is immutable")]
    return []


# -- quantities ------------------------------------------------------------------------------


def quantity(value: Any) -> Quantity | None:
    """The parsed quantity, or None when absent or unparseable (decoding reports those)."""
    return parse_quantity_or_none(value)


def validate_quantity(value: Any, path: Path) -> list[FieldError]:
    """A resource quantity: parseable and non-negative (``ValidateResourceQuantityValue``)."""
    q = quantity(value)
    if q is None:
        return [f.invalid(path, value, "must be a valid quantity")]
    if q < 0:
        return [f.invalid(path, str(q), "must be greater than or equal to 0")]
    return []


def validate_positive_quantity(value: Any, path: Path) -> list[FieldError]:
    q = quantity(value)
    if q is None:
        return [f.invalid(path, value, "must be a valid quantity")]
    if q <= 0:
        return [f.invalid(path, str(q), "must be greater than zero")]
    return []


# -- Go-rendered bad values -------------------------------------------------------------------


class GoLiteral:
    """A bad value upstream prints with Go's ``%#v`` (maps, nil collections).

    ``FieldError`` renders values it cannot serialize with ``repr``; this carries the exact
    Go text (``map[string]string{"app":"web"}``, ``core.ResourceList(nil)``) through it."""

    def __init__(self, text: str) -> None:
        self.text = text

    def __repr__(self) -> str:
        return self.text

    def __eq__(self, other: object) -> bool:
        return isinstance(other, GoLiteral) and other.text == self.text

    def __hash__(self) -> int:
        return hash(self.text)


def _go_quote(text: str) -> str:
    out = []
    for ch in text:
        if ch in ('"', "\\"):
            out.append("\\" + ch)
        elif ch == "\n":
            out.append("\\n")
        elif ch == "\t":
            out.append("\\t")
        elif ord(ch) < 0x20 or ord(ch) == 0x7F:
            out.append(f"\\x{ord(ch):02x}")
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'


def go_string_map(value: Mapping[str, Any] | None) -> GoLiteral:
    """``%#v`` of a ``map[string]string``: keys sorted, ``(nil)`` for an absent map."""
    if value is None:
        return GoLiteral("map[string]string(nil)")
    body = ", ".join(f"{_go_quote(k)}:{_go_quote(str(value[k]))}" for k in sorted(value))
    return GoLiteral("map[string]string{" + body + "}")


# -- label selectors -------------------------------------------------------------------------

_SELECTOR_OPERATORS: Final = ("DoesNotExist", "Exists", "In", "NotIn")


def validate_label_selector(selector: Mapping[str, Any] | None, path: Path) -> list[FieldError]:
    """Upstream ``ValidateLabelSelector`` (metav1 form)."""
    if not selector:
        return []
    errs = validate_labels(selector.get("matchLabels"), path.child("matchLabels"))
    for i, req in enumerate(selector.get("matchExpressions") or []):
        rp = path.child("matchExpressions").index(i)
        op = req.get("operator", "")
        values = req.get("values") or []
        if op in ("In", "NotIn"):
            if not values:
                errs.append(
                    f.required(
                        rp.child("values"), "must be specified when `operator` is 'In' or 'NotIn'"
                    )
                )
        elif op in ("Exists", "DoesNotExist"):
            if values:
                errs.append(
                    f.forbidden(
                        rp.child("values"),
                        "may not be specified when `operator` is 'Exists' or 'DoesNotExist'",
                    )
                )
        else:
            errs.append(f.invalid(rp.child("operator"), op, "not a valid selector operator"))
        key = req.get("key", "")
        errs.extend(f.invalid(rp.child("key"), key, m) for m in is_qualified_name(key))
    return errs


def selector_matches(selector: Mapping[str, Any] | None, labels: Mapping[str, str] | None) -> bool:
    """Whether a metav1 LabelSelector selects ``labels``; an empty selector selects all."""
    labels = labels or {}
    if not selector:
        return True
    for k, v in (selector.get("matchLabels") or {}).items():
        if labels.get(k) != v:
            return False
    for req in selector.get("matchExpressions") or []:
        key, op, values = req.get("key"), req.get("operator"), req.get("values") or []
        if op == "In" and labels.get(key) not in values:
            return False
        if op == "NotIn" and key in labels and labels[key] in values:
            return False
        if op == "Exists" and key not in labels:
            return False
        if op == "DoesNotExist" and key in labels:
            return False
    return True


def selector_string(selector: Mapping[str, Any] | None) -> str:
    """``metav1.LabelSelectorAsSelector(s).String()``: requirements sorted by key."""
    if not selector:
        return ""
    reqs: list[tuple[str, str]] = []
    for k, v in (selector.get("matchLabels") or {}).items():
        reqs.append((k, f"{k}={v}"))
    for req in selector.get("matchExpressions") or []:
        key, op = req.get("key", ""), req.get("operator", "")
        values = ",".join(sorted(req.get("values") or []))
        text = {
            "In": f"{key} in ({values})",
            "NotIn": f"{key} notin ({values})",
            "Exists": key,
            "DoesNotExist": f"!{key}",
        }.get(op, key)
        reqs.append((key, text))
    return ",".join(text for _, text in sorted(reqs, key=lambda r: r[0]))


def format_labels(labels: Mapping[str, str] | None) -> str:
    """``labels.FormatLabels``: ``k=v`` sorted by key, ``<none>`` when empty."""
    if not labels:
        return "<none>"
    return ",".join(f"{k}={labels[k]}" for k in sorted(labels))
