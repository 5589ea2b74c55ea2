"""Label and field selectors: parsing, matching and printing as apimachinery does.

Label selectors follow ``k8s.io/apimachinery/pkg/labels``: the same lexer (so ``in`` may be
a value, ``a in ()`` means the empty string, ``>``/``<`` compare integers), the same
validation of keys and values through ``field`` errors, the same error sentences (with
upstream's ``<nil>`` field path for errors found while parsing) and the same canonical
``String()`` form: requirements sorted by key, set values sorted. ``LabelSelector`` objects
(``matchLabels``/``matchExpressions``) convert through ``metav1.LabelSelectorAsSelector``:
``None`` selects nothing, an empty object selects everything.

Field selectors follow ``pkg/fields``: terms split on unescaped commas and sorted, ``\\``
escapes ``\\``, ``,`` and ``=`` in values, and a missing field reads as the empty string.
Which fields a kind supports is the caller's table; ``FieldSelector.check_supported``
produces upstream's two error texts.

Both kinds of parse failure raise ``SelectorError`` (a 400 BadRequest), whose message is
the text the API server returns.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Final

from kubeling.machinery import field
from kubeling.machinery.errors import BadRequest


class SelectorError(BadRequest):
    """A label or field selector that does not parse or is not supported (HTTP 400)."""


# -- validation of label keys and values (k8s.io/apimachinery/pkg/util/validation) ----------

_QUALIFIED_NAME_FMT: Final = "([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]"
_QUALIFIED_NAME_RE: Final = re.compile(f"^{_QUALIFIED_NAME_FMT}$")
_QUALIFIED_NAME_MAX: Final = 63
_QUALIFIED_NAME_MSG: Final = (
    "must consist of alphanumeric characters, '-', '_' or '.', and must start and end with "
    "an alphanumeric character"
)
_DNS1123_SUBDOMAIN_FMT: Final = r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*"
_DNS1123_SUBDOMAIN_RE: Final = re.compile(f"^{_DNS1123_SUBDOMAIN_FMT}$")
_LABEL_VALUE_FMT: Final = "(" + _QUALIFIED_NAME_FMT + ")?"
_LABEL_VALUE_RE: Final = re.compile(f"^{_LABEL_VALUE_FMT}$")


def regex_error(msg: str, fmt: str, *examples: str) -> str:
    """``validation.RegexError``: the message, examples, and the regex itself (note the two
    spaces before each ``or``: upstream appends ``", "`` to every example, then joins)."""
    if not examples:
        return f"{msg} (regex used for validation is '{fmt}')"
    text = msg + " (e.g. "
    for i, example in enumerate(examples):
        if i > 0:
            text += " or "
        text += f"'{example}', "
    return text + f"regex used for validation is '{fmt}')"


def qualified_name_errors(value: str) -> list[str]:
    """``validation.IsQualifiedName``: ``[prefix/]name`` as label and annotation keys."""
    errs: list[str] = []
    parts = value.split("/")
    if len(parts) == 1:
        name = parts[0]
    elif len(parts) == 2:
        prefix, name = parts
        if not prefix:
            errs.append("prefix part must be non-empty")
        else:
            errs.extend("prefix part " + e for e in dns1123_subdomain_errors(prefix))
    else:
        return [
            "a qualified name "
            + regex_error(_QUALIFIED_NAME_MSG, _QUALIFIED_NAME_FMT, "MyName", "my.name", "123-abc")
            + " with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')"
        ]
    if not name:
        errs.append("name part must be non-empty")
    elif len(name) > _QUALIFIED_NAME_MAX:
        errs.append(f"name part must be no more than {_QUALIFIED_NAME_MAX} characters")
    if not _QUALIFIED_NAME_RE.match(name):
        errs.append(
            "name part "
            + regex_error(_QUALIFIED_NAME_MSG, _QUALIFIED_NAME_FMT, "MyName", "my.name", "123-abc")
        )
    return errs


def dns1123_subdomain_errors(value: str) -> list[str]:
    """``validation.IsDNS1123Subdomain``."""
    errs: list[str] = []
    if len(value) > 253:
        errs.append("must be no more than 253 characters")
    if not _DNS1123_SUBDOMAIN_RE.match(value):
        errs.append(
            regex_error(
                "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric "
                "characters, '-' or '.', and must start and end with an alphanumeric character",
                _DNS1123_SUBDOMAIN_FMT,
                "example.com",
            )
        )
    return errs


def label_value_errors(value: str) -> list[str]:
    """``validation.IsValidLabelValue``."""
    errs: list[str] = []
    if len(value) > 63:
        errs.append("must be no more than 63 characters")
    if not _LABEL_VALUE_RE.match(value):
        errs.append(
            regex_error(
                "a valid label must be an empty string or consist of alphanumeric characters, "
                "'-', '_' or '.', and must start and end with an alphanumeric character",
                _LABEL_VALUE_FMT,
                "MyValue",
                "my_value",
                "12345",
            )
        )
    return errs


# -- label requirements ------------------------------------------------------------------------

IN: Final = "in"
NOT_IN: Final = "notin"
EQUALS: Final = "="
DOUBLE_EQUALS: Final = "=="
NOT_EQUALS: Final = "!="
EXISTS: Final = "exists"
DOES_NOT_EXIST: Final = "!"
GREATER_THAN: Final = "gt"
LESS_THAN: Final = "lt"

_OPERATORS: Final = (
    DOES_NOT_EXIST,
    EQUALS,
    DOUBLE_EQUALS,
    IN,
    NOT_EQUALS,
    NOT_IN,
    EXISTS,
    GREATER_THAN,
    LESS_THAN,
)


class _GoStrings:
    """A ``[]string`` bad value, printed the way ``field.Invalid`` prints it (``%#v``)."""

    def __init__(self, values: Iterable[str]) -> None:
        self.values = list(values)

    def __repr__(self) -> str:
        return "[]string{" + ", ".join(f'"{v}"' for v in self.values) + "}"


# Go's %v for a nil path: errors found while parsing carry no field path.
_NIL_PATH: Final = "<nil>"


def _parse_int64(text: str) -> int | None:
    if not re.fullmatch(r"[+-]?[0-9]+", text):
        return None
    n = int(text)
    return n if -(2**63) <= n < 2**63 else None


@dataclass(frozen=True, slots=True)
class Requirement:
    """One term: ``key``, an operator (the constants above) and its values."""

    key: str
    operator: str
    values: tuple[str, ...] = ()

    def matches(self, labels: Mapping[str, str]) -> bool:
        op = self.operator
        if op in (IN, EQUALS, DOUBLE_EQUALS):
            return self.key in labels and labels[self.key] in self.values
        if op in (NOT_IN, NOT_EQUALS):
            return self.key not in labels or labels[self.key] not in self.values
        if op == EXISTS:
            return self.key in labels
        if op == DOES_NOT_EXIST:
            return self.key not in labels
        if op in (GREATER_THAN, LESS_THAN):
            if self.key not in labels or len(self.values) != 1:
                return False
            have = _parse_int64(labels[self.key])
            want = _parse_int64(self.values[0])
            if have is None or want is None:
                return False
            return have > want if op == GREATER_THAN else have < want
        return False

    def __str__(self) -> str:
        op = self.operator
        if op == DOES_NOT_EXIST:
            return "!" + self.key
        if op == EXISTS:
            return self.key
        values = self.values[0] if len(self.values) == 1 else ",".join(sorted(self.values))
        if op in (IN, NOT_IN):
            return f"{self.key} {op} ({values})"
        sym = {GREATER_THAN: ">", LESS_THAN: "<"}.get(op, op)
        return f"{self.key}{sym}{values}"


def new_requirement(
    key: str, operator: str, values: Iterable[str] = (), *, path: str | None = None
) -> Requirement:
    """``labels.NewRequirement``: validate and build; raises ``SelectorError``.

    ``path`` is the field path prefix for messages; ``None`` is upstream's nil path.
    """
    vals = tuple(values)
    errs: list[field.FieldError] = []
    base = field.Path(path or "")
    key_path = base.child("key")
    value_path = base.child("values")
    key_errs = qualified_name_errors(key)
    if key_errs:
        errs.append(field.invalid(key_path, key, "; ".join(key_errs)))
    if operator in (IN, NOT_IN):
        if not vals:
            errs.append(
                field.invalid(
                    value_path,
                    _GoStrings(()),
                    "for 'in', 'notin' operators, values set can't be empty",
                )
            )
    elif operator in (EQUALS, DOUBLE_EQUALS, NOT_EQUALS):
        if len(vals) != 1:
            errs.append(
                field.invalid(
                    value_path,
                    _GoStrings(vals),
                    "exact-match compatibility requires one single value",
                )
            )
    elif operator in (EXISTS, DOES_NOT_EXIST):
        if vals:
            errs.append(
                field.invalid(
                    value_path,
                    _GoStrings(vals),
                    "values set must be empty for exists and does not exist",
                )
            )
    elif operator in (GREATER_THAN, LESS_THAN):
        if len(vals) != 1:
            errs.append(
                field.invalid(
                    value_path,
                    _GoStrings(vals),
                    "for 'Gt', 'Lt' operators, exactly one value is required",
                )
            )
        for i, v in enumerate(vals):
            if _parse_int64(v) is None:
                errs.append(
                    field.invalid(
                        value_path.index(i),
                        v,
                        "for 'Gt', 'Lt' operators, the value must be an integer",
                    )
                )
    else:
        errs.append(field.not_supported(base.child("operator"), operator, _OPERATORS))
    for i, v in enumerate(vals):
        value_errs = label_value_errors(v)
        if value_errs:
            errs.append(field.invalid(value_path.index(i).key(key), v, "; ".join(value_errs)))
    if errs:
        raise SelectorError(field.aggregate_message(errs))
    return Requirement(key, operator, vals)


# -- label selectors -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class LabelSelector:
    """A parsed label selector. ``nothing=True`` is ``labels.Nothing()``; no requirements
    is ``labels.Everything()``."""

    requirements: tuple[Requirement, ...] = ()
    nothing: bool = False

    @classmethod
    def everything(cls) -> LabelSelector:
        return cls()

    @classmethod
    def select_nothing(cls) -> LabelSelector:
        return cls(nothing=True)

    @property
    def empty(self) -> bool:
        """True when it selects everything (``Selector.Empty()``)."""
        return not self.nothing and not self.requirements

    def matches(self, labels: Mapping[str, str] | None) -> bool:
        if self.nothing:
            return False
        ls = labels or {}
        return all(r.matches(ls) for r in self.requirements)

    def exact_value(self, key: str) -> str | None:
        """The value ``key`` must equal (``=``, ``==`` or a one-value ``in``), for indexes
        (``Selector.RequiresExactMatch``)."""
        for r in self.requirements:
            if r.key == key and r.operator in (EQUALS, DOUBLE_EQUALS, IN) and len(r.values) == 1:
                return r.values[0]
        return None

    def __str__(self) -> str:
        if self.nothing:
            return ""
        return ",".join(str(r) for r in self.requirements)


def _sorted(reqs: Iterable[Requirement]) -> tuple[Requirement, ...]:
    return tuple(sorted(reqs, key=lambda r: r.key))


# Lexer tokens (labels.Token).
_END, _IDENT, _ERROR = "end", "ident", "error"
_KEYWORDS: Final = {
    ")": ")",
    ",": ",",
    "!": "!",
    "==": "==",
    "=": "=",
    ">": ">",
    "in": "in",
    "<": "<",
    "!=": "!=",
    "notin": "notin",
    "(": "(",
}
_SPECIAL: Final = frozenset("=!(),><")
_WHITESPACE: Final = frozenset(" \t\r\n")


def _lex(text: str) -> list[tuple[str, str]]:
    """``labels.Lexer`` over bytes: identifiers end at whitespace or a special symbol;
    runs of special symbols take the longest keyword prefix."""
    data = text.encode()
    out: list[tuple[str, str]] = []
    pos = 0
    n = len(data)
    while True:
        while pos < n and chr(data[pos]) in _WHITESPACE:
            pos += 1
        if pos >= n or data[pos] == 0:
            out.append((_END, ""))
            return out
        if chr(data[pos]) in _SPECIAL:
            buf = ""
            last: tuple[str, str] | None = None
            while pos < n and data[pos] != 0 and chr(data[pos]) in _SPECIAL:
                buf += chr(data[pos])
                if buf in _KEYWORDS:
                    last = (_KEYWORDS[buf], buf)
                    pos += 1
                elif last is not None:
                    break
                else:
                    pos += 1
            if last is None:
                out.append((_ERROR, f"error expected: keyword found '{buf}'"))
            else:
                out.append(last)
            continue
        start = pos
        while pos < n and data[pos] != 0:
            ch = chr(data[pos])
            if ch in _SPECIAL or ch in _WHITESPACE:
                break
            pos += 1
        word = data[start:pos].decode(errors="replace")
        out.append((word if word in (IN, NOT_IN) else _IDENT, word))


class _Parser:
    """``labels.Parser``: recursive descent with a one-token lookahead."""

    def __init__(self, text: str) -> None:
        self.items = _lex(text)
        self.pos = 0

    def _peek(self, values_ctx: bool) -> tuple[str, str]:
        tok, lit = self.items[self.pos]
        if values_ctx and tok in (IN, NOT_IN):
            tok = _IDENT
        return tok, lit

    def _take(self, values_ctx: bool) -> tuple[str, str]:
        item = self._peek(values_ctx)
        if self.pos < len(self.items) - 1:
            self.pos += 1
        return item

    def parse(self) -> list[Requirement]:
        reqs: list[Requirement] = []
        while True:
            tok, lit = self._peek(True)
            if tok in (_IDENT, "!"):
                try:
                    reqs.append(self._requirement())
                except SelectorError as e:
                    raise SelectorError(f"unable to parse requirement: {e.message}") from None
                tok, lit = self._take(True)
                if tok == _END:
                    return reqs
                if tok == ",":
                    tok2, lit2 = self._peek(True)
                    if tok2 not in (_IDENT, "!"):
                        raise SelectorError(f"found '{lit2}', expected: identifier after ','")
                else:
                    raise SelectorError(f"found '{lit}', expected: ',' or 'end of string'")
            elif tok == _END:
                return reqs
            else:
                raise SelectorError(f"found '{lit}', expected: !, identifier, or 'end of string'")

    def _requirement(self) -> Requirement:
        operator = ""
        tok, lit = self._take(True)
        if tok == "!":
            operator = DOES_NOT_EXIST
            tok, lit = self._take(True)
        if tok != _IDENT:
            raise SelectorError(f"found '{lit}', expected: identifier")
        key_errs = qualified_name_errors(lit)
        if key_errs:
            err = field.invalid(field.Path(_NIL_PATH), lit, "; ".join(key_errs))
            raise SelectorError(str(err))
        key = lit
        nxt, _ = self._peek(True)
        if nxt in (_END, ",") and operator != DOES_NOT_EXIST:
            operator = EXISTS
        if operator in (EXISTS, DOES_NOT_EXIST):
            return new_requirement(key, operator, ())
        operator = self._operator()
        values = self._set_values() if operator in (IN, NOT_IN) else self._exact_value()
        return new_requirement(key, operator, sorted(values))

    def _operator(self) -> str:
        tok, lit = self._take(False)
        ops = {"in": IN, "notin": NOT_IN, "=": EQUALS, "==": DOUBLE_EQUALS, "!=": NOT_EQUALS}
        ops.update({">": GREATER_THAN, "<": LESS_THAN})
        if tok in ops:
            return ops[tok]
        raise SelectorError(f"found '{lit}', expected: '=', '!=', '==', 'in', notin'")

    def _set_values(self) -> set[str]:
        tok, lit = self._take(True)
        if tok != "(":
            raise SelectorError(f"found '{lit}' expected: '('")
        tok, lit = self._peek(True)
        if tok in (_IDENT, ","):
            values = self._identifier_list()
            tok, _ = self._take(True)
            if tok != ")":
                raise SelectorError(f"found '{lit}', expected: ')'")
            return values
        if tok == ")":
            self._take(True)
            return {""}
        raise SelectorError(f"found '{lit}', expected: ',', ')' or identifier")

    def _identifier_list(self) -> set[str]:
        values: set[str] = set()
        while True:
            tok, lit = self._take(True)
            if tok == _IDENT:
                values.add(lit)
                tok2, lit2 = self._peek(True)
                if tok2 == ",":
                    continue
                if tok2 == ")":
                    return values
                raise SelectorError(f"found '{lit2}', expected: ',' or ')'")
            if tok == ",":
                if not values:
                    values.add("")
                tok2, _ = self._peek(True)
                if tok2 == ")":
                    values.add("")
                    return values
                if tok2 == ",":
                    self._take(True)
                    values.add("")
                continue
            raise SelectorError(f"found '{lit}', expected: ',', or identifier")

    def _exact_value(self) -> set[str]:
        tok, _ = self._peek(True)
        if tok in (_END, ","):
            return {""}
        tok, lit = self._take(True)
        if tok == _IDENT:
            return {lit}
        raise SelectorError(f"found '{lit}', expected: identifier")


def parse_label_selector(text: str) -> LabelSelector:
    """``labels.Parse``: the ``?labelSelector=`` / ``kubectl -l`` string form."""
    return LabelSelector(_sorted(_Parser(text).parse()))


_EXPRESSION_OPERATORS: Final = {
    "In": IN,
    "NotIn": NOT_IN,
    "Exists": EXISTS,
    "DoesNotExist": DOES_NOT_EXIST,
}


def label_selector_from_object(selector: Mapping[str, Any] | None) -> LabelSelector:
    """``metav1.LabelSelectorAsSelector``: ``None`` selects nothing, ``{}`` everything."""
    if selector is None:
        return LabelSelector.select_nothing()
    match_labels = selector.get("matchLabels") or {}
    expressions = selector.get("matchExpressions") or []
    if not match_labels and not expressions:
        return LabelSelector.everything()
    reqs: list[Requirement] = []
    for k, v in match_labels.items():
        reqs.append(new_requirement(k, EQUALS, (v,)))
    for expr in expressions:
        op = expr.get("operator", "")
        if op not in _EXPRESSION_OPERATORS:
            raise SelectorError(f'"{op}" is not a valid label selector operator')
        reqs.append(
            new_requirement(
                expr.get("key", ""), _EXPRESSION_OPERATORS[op], expr.get("values") or ()
            )
        )
    return LabelSelector(_sorted(reqs))


def selector_to_string(selector: Mapping[str, Any] | None) -> str:
    """``LabelSelectorAsSelector(s).String()`` (the scale subresource's ``status.selector``)."""
    return str(label_selector_from_object(selector))


def format_label_selector(selector: Mapping[str, Any] | None) -> str:
    """``metav1.FormatLabelSelector`` as ``kubectl describe`` prints it: ``<none>`` when
    empty, ``<error>`` when invalid."""
    try:
        text = selector_to_string(selector)
    except SelectorError:
        return "<error>"
    return text or "<none>"


def selector_from_set(labels: Mapping[str, str]) -> LabelSelector:
    """``labels.SelectorFromSet``: every pair must match exactly (empty set: everything).

    Like upstream it does not validate; use ``label_selector_from_object`` to validate."""
    return LabelSelector(_sorted(Requirement(k, EQUALS, (v,)) for k, v in labels.items()))


# -- field selectors --------------------------------------------------------------------------

DEFAULT_FIELDS: Final = ("metadata.name", "metadata.namespace")
"""What every kind supports (``runtime.DefaultMetaV1FieldSelectorConversion``)."""


@dataclass(frozen=True, slots=True)
class FieldTerm:
    field: str
    value: str
    negated: bool = False

    def matches(self, fields: Mapping[str, str]) -> bool:
        equal = fields.get(self.field, "") == self.value
        return not equal if self.negated else equal

    def __str__(self) -> str:
        op = "!=" if self.negated else "="
        return f"{self.field}{op}{escape_field_value(self.value)}"


@dataclass(frozen=True, slots=True)
class FieldSelector:
    """A parsed field selector: an AND of ``field=value`` / ``field!=value`` terms."""

    terms: tuple[FieldTerm, ...] = ()

    @property
    def empty(self) -> bool:
        return not self.terms

    def matches(self, fields: Mapping[str, str]) -> bool:
        return all(t.matches(fields) for t in self.terms)

    def exact_value(self, field_name: str) -> str | None:
        """``RequiresExactMatch``: the value an ``=`` term demands of ``field_name``."""
        for t in self.terms:
            if t.field == field_name and not t.negated:
                return t.value
        return None

    @property
    def name(self) -> str | None:
        """The ``metadata.name`` an equality term pins, for single-object fast paths."""
        return self.exact_value("metadata.name")

    def fields(self) -> tuple[str, ...]:
        return tuple(t.field for t in self.terms)

    def check_supported(
        self,
        supported: Collection[str],
        *,
        aliases: Mapping[str, str] | None = None,
        generic: bool = False,
    ) -> FieldSelector:
        """Reject fields the kind does not support, and rename ``aliases`` (pods map the
        old ``spec.host`` to ``spec.nodeName``).

        ``generic=True`` is for kinds without their own conversion function, where
        upstream answers ``"x" is not a known field selector: only "metadata.name",
        "metadata.namespace"``; otherwise ``field label not supported: x``.
        """
        renamed: list[FieldTerm] = []
        for t in self.terms:
            name = t.field
            if name not in supported and aliases and name in aliases:
                name = aliases[name]
            elif name not in supported:
                if generic:
                    raise SelectorError(
                        f'"{t.field}" is not a known field selector: only '
                        '"metadata.name", "metadata.namespace"'
                    )
                raise SelectorError(f"field label not supported: {t.field}")
            renamed.append(FieldTerm(name, t.value, t.negated))
        return FieldSelector(tuple(renamed))

    def __str__(self) -> str:
        return ",".join(str(t) for t in self.terms)


def escape_field_value(value: str) -> str:
    """``fields.EscapeValue``."""
    return value.replace("\\", "\\\\").replace(",", "\\,").replace("=", "\\=")


def unescape_field_value(value: str) -> str:
    """``fields.UnescapeValue``; raises ``SelectorError`` with upstream's wording."""
    if not any(c in value for c in "\\,="):
        return value
    out: list[str] = []
    in_slash = False
    for c in value:
        if in_slash:
            if c in "\\,=":
                out.append(c)
            else:
                raise SelectorError(f"invalid field selector: invalid escape sequence: \\{c}")
            in_slash = False
            continue
        if c == "\\":
            in_slash = True
        elif c in ",=":
            # Go prints the rune with %v: its code point.
            raise SelectorError(f"invalid field selector: unescaped character in value: {ord(c)}")
        else:
            out.append(c)
    if in_slash:
        raise SelectorError("invalid field selector: invalid escape sequence: \\")
    return "".join(out)


def _split_terms(text: str) -> list[str]:
    if not text:
        return []
    terms: list[str] = []
    start = 0
    in_slash = False
    for i, c in enumerate(text):
        if in_slash:
            in_slash = False
        elif c == "\\":
            in_slash = True
        elif c == ",":
            terms.append(text[start:i])
            start = i + 1
    terms.append(text[start:])
    return terms


def parse_field_selector(text: str) -> FieldSelector:
    """``fields.ParseSelector``: the ``?fieldSelector=`` string form."""
    parts = sorted(_split_terms(text))
    terms: list[FieldTerm] = []
    for part in parts:
        if not part:
            continue
        for i in range(len(part)):
            rest = part[i:]
            op = next((o for o in ("!=", "==", "=") if rest.startswith(o)), None)
            if op is not None:
                lhs, rhs = part[:i], part[i + len(op) :]
                terms.append(FieldTerm(lhs, unescape_field_value(rhs), op == "!="))
                break
        else:
            raise SelectorError(f"invalid selector: '{text}'; can't understand '{part}'")
    return FieldSelector(tuple(terms))


def object_meta_fields(obj: Mapping[str, Any]) -> dict[str, str]:
    """``metadata.name`` and ``metadata.namespace`` field labels of an object (the
    ``generic.ObjectMetaFieldsSet`` every kind starts from)."""
    meta = obj.get("metadata") or {}
    return {
        "metadata.name": str(meta.get("name") or ""),
        "metadata.namespace": str(meta.get("namespace") or ""),
    }
