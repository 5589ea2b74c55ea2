"""Label and field selectors: grammar, canonical text, matching and upstream's errors."""

from __future__ import annotations

from typing import Any

import pytest

from kubeling.machinery import errors
from kubeling.machinery.selectors import (
    FieldSelector,
    LabelSelector,
    SelectorError,
    escape_field_value,
    format_label_selector,
    label_selector_from_object,
    new_requirement,
    object_meta_fields,
    parse_field_selector,
    parse_label_selector,
    selector_from_set,
    selector_to_string,
    unescape_field_value,
)

_NAME_MSG = (
    "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and "
    "end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex "
    "used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')"
)
_VALUE_MSG = (
    "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or "
    "'.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or "
    "'my_value',  or '12345', regex used for validation is "
    "'(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')"
)


@pytest.mark.parametrize(
    ("text", "canonical"),
    [
        pytest.param("", "", id="empty"),
        pytest.param("app=web", "app=web", id="equals"),
        pytest.param("app==web", "app==web", id="double-equals"),
        pytest.param("tier!=db", "tier!=db", id="not-equals"),
        pytest.param("app=web,tier!=db", "app=web,tier!=db", id="kubectl-l"),
        pytest.param("tier!=db,app=web", "app=web,tier!=db", id="sorted-by-key"),
        pytest.param("env in (prod, dev)", "env in (dev,prod)", id="in-values-sorted"),
        pytest.param("env notin (x)", "env notin (x)", id="notin"),
        pytest.param("app", "app", id="exists"),
        pytest.param("!app", "!app", id="does-not-exist"),
        pytest.param("  a = b ,  ! c ", "a=b,!c", id="whitespace"),
        pytest.param("a=", "a=", id="empty-value"),
        pytest.param("a in ()", "a in ()", id="empty-set-means-empty-string"),
        pytest.param("a in (in,notin)", "a in (in,notin)", id="keywords-as-values"),
        pytest.param("x>5,y<3", "x>5,y<3", id="gt-lt"),
        pytest.param("app.kubernetes.io/name=web", "app.kubernetes.io/name=web", id="prefixed-key"),
    ],
)
def test_parse_label_selector_canonical_string(text: str, canonical: str) -> None:
    assert str(parse_label_selector(text)) == canonical


@pytest.mark.parametrize(
    ("text", "labels", "expected"),
    [
        pytest.param("", {}, True, id="empty-matches-all"),
        pytest.param("app=web", {"app": "web"}, True, id="eq"),
        pytest.param("app=web", {"app": "db"}, False, id="eq-miss"),
        pytest.param("app=web", {}, False, id="eq-absent"),
        pytest.param("app!=web", {}, True, id="ne-absent-matches"),
        pytest.param("app!=web", {"app": "web"}, False, id="ne-miss"),
        pytest.param("env in (a,b)", {"env": "b"}, True, id="in"),
        pytest.param("env in (a,b)", {}, False, id="in-absent"),
        pytest.param("env notin (a,b)", {}, True, id="notin-absent"),
        pytest.param("env notin (a,b)", {"env": "a"}, False, id="notin-hit"),
        pytest.param("app", {"app": ""}, True, id="exists-empty-value"),
        pytest.param("!app", {"app": "x"}, False, id="not-exists"),
        pytest.param("a=", {"a": ""}, True, id="empty-value-equality"),
        pytest.param("a in ()", {"a": ""}, True, id="empty-set"),
        pytest.param("x>5", {"x": "6"}, True, id="gt"),
        pytest.param("x>5", {"x": "5"}, False, id="gt-equal"),
        pytest.param("x>5", {"x": "six"}, False, id="gt-not-a-number"),
        pytest.param("x<5", {"x": "-1"}, True, id="lt-negative"),
        pytest.param("app=web,tier", {"app": "web"}, False, id="and"),
    ],
)
def test_label_selector_matches(text: str, labels: dict[str, str], expected: bool) -> None:
    assert parse_label_selector(text).matches(labels) is expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        pytest.param(
            "app:monolith",
            f'unable to parse requirement: <nil>: Invalid value: "app:monolith": {_NAME_MSG}',
            id="colon-in-key",
        ),
        pytest.param("a=b c", "found 'c', expected: ',' or 'end of string'", id="space-separated"),
        pytest.param("a,", "found '', expected: identifier after ','", id="trailing-comma"),
        pytest.param(
            "=a", "found '=', expected: !, identifier, or 'end of string'", id="leading-operator"
        ),
        pytest.param(
            "a in x", "unable to parse requirement: found 'x' expected: '('", id="in-no-paren"
        ),
        pytest.param(
            "a in (x",
            "unable to parse requirement: found '', expected: ',' or ')'",
            id="in-unclosed",
        ),
        pytest.param(
            "a b",
            "unable to parse requirement: found 'b', expected: '=', '!=', '==', 'in', notin'",
            id="missing-operator",
        ),
        pytest.param(
            "a=-b",
            f'unable to parse requirement: values[0][a]: Invalid value: "-b": {_VALUE_MSG}',
            id="bad-value",
        ),
        pytest.param(
            "x>y",
            'unable to parse requirement: values[0]: Invalid value: "y": '
            "for 'Gt', 'Lt' operators, the value must be an integer",
            id="gt-non-integer",
        ),
        pytest.param(
            "a/b/c=d",
            'unable to parse requirement: <nil>: Invalid value: "a/b/c": a qualified name must '
            "consist of alphanumeric characters, '-', '_' or '.', and must start and end with an "
            "alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used "
            "for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]') with an optional DNS "
            "subdomain prefix and '/' (e.g. 'example.com/MyName')",
            id="two-slashes",
        ),
        pytest.param(
            "app.kubernetes_io/name=x",
            'unable to parse requirement: <nil>: Invalid value: "app.kubernetes_io/name": '
            "prefix part a lowercase RFC 1123 subdomain must consist of lower case alphanumeric "
            "characters, '-' or '.', and must start and end with an alphanumeric character "
            "(e.g. 'example.com', regex used for validation is "
            "'[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')",
            id="bad-prefix",
        ),
    ],
)
def test_parse_label_selector_errors_match_upstream(text: str, message: str) -> None:
    with pytest.raises(SelectorError) as info:
        parse_label_selector(text)
    assert info.value.message == message
    assert isinstance(info.value, errors.BadRequest)
    assert info.value.code == 400


@pytest.mark.parametrize(
    ("obj", "canonical", "labels", "expected"),
    [
        pytest.param(None, "", {"a": "b"}, False, id="nil-selects-nothing"),
        pytest.param({}, "", {"a": "b"}, True, id="empty-selects-everything"),
        pytest.param({"matchLabels": {"app": "web"}}, "app=web", {"app": "web"}, True, id="labels"),
        pytest.param(
            {
                "matchLabels": {"z": "1"},
                "matchExpressions": [
                    {"key": "env", "operator": "In", "values": ["prod", "dev"]},
                    {"key": "gone", "operator": "DoesNotExist"},
                    {"key": "a", "operator": "Exists"},
                    {"key": "b", "operator": "NotIn", "values": ["x"]},
                ],
            },
            "a,b notin (x),env in (dev,prod),!gone,z=1",
            {"z": "1", "env": "dev", "a": ""},
            True,
            id="expressions",
        ),
    ],
)
def test_label_selector_from_object(
    obj: Any, canonical: str, labels: dict[str, str], expected: bool
) -> None:
    sel = label_selector_from_object(obj)
    assert str(sel) == canonical
    assert sel.matches(labels) is expected
    assert selector_to_string(obj) == canonical


def test_label_selector_from_object_rejects_bad_operator() -> None:
    with pytest.raises(SelectorError) as info:
        label_selector_from_object({"matchExpressions": [{"key": "a", "operator": "Equals"}]})
    assert info.value.message == '"Equals" is not a valid label selector operator'


def test_label_selector_from_object_in_without_values() -> None:
    with pytest.raises(SelectorError) as info:
        label_selector_from_object({"matchExpressions": [{"key": "a", "operator": "In"}]})
    assert info.value.message == (
        "values: Invalid value: []string{}: for 'in', 'notin' operators, values set can't be empty"
    )


@pytest.mark.parametrize(
    ("obj", "text"),
    [
        pytest.param(None, "<none>", id="nil"),
        pytest.param({}, "<none>", id="empty"),
        pytest.param({"matchLabels": {"app": "web"}}, "app=web", id="labels"),
        pytest.param({"matchLabels": {"-bad": "x"}}, "<error>", id="invalid"),
    ],
)
def test_format_label_selector_as_describe(obj: Any, text: str) -> None:
    assert format_label_selector(obj) == text


def test_label_selector_constructors_and_exact_value() -> None:
    assert LabelSelector.everything().matches(None)
    assert LabelSelector.everything().empty
    assert not LabelSelector.select_nothing().matches({})
    assert not LabelSelector.select_nothing().empty
    sel = selector_from_set({"b": "2", "a": "1"})
    assert str(sel) == "a=1,b=2"
    assert sel.exact_value("b") == "2"
    assert parse_label_selector("a in (x)").exact_value("a") == "x"
    assert parse_label_selector("a in (x,y)").exact_value("a") is None
    assert parse_label_selector("a!=x").exact_value("a") is None


def test_new_requirement_validates_operator() -> None:
    with pytest.raises(SelectorError) as info:
        new_requirement("a", "~", ("b",))
    assert info.value.message.startswith('operator: Unsupported value: "~": supported values: ')


# -- field selectors ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "canonical"),
    [
        pytest.param("", "", id="empty"),
        pytest.param("metadata.name=web-0", "metadata.name=web-0", id="equals"),
        pytest.param("metadata.name==web-0", "metadata.name=web-0", id="double-equals"),
        pytest.param("status.phase!=Running", "status.phase!=Running", id="not-equals"),
        pytest.param(
            "spec.nodeName=n1,metadata.namespace=default",
            "metadata.namespace=default,spec.nodeName=n1",
            id="sorted-terms",
        ),
        pytest.param("a=x\\,y\\=z\\\\", "a=x\\,y\\=z\\\\", id="escapes-round-trip"),
        pytest.param("a=", "a=", id="empty-value"),
        pytest.param("a=b,,c=d", "a=b,c=d", id="empty-term-skipped"),
    ],
)
def test_parse_field_selector_canonical_string(text: str, canonical: str) -> None:
    assert str(parse_field_selector(text)) == canonical


@pytest.mark.parametrize(
    ("text", "fields", "expected"),
    [
        pytest.param("", {}, True, id="empty"),
        pytest.param("metadata.name=a", {"metadata.name": "a"}, True, id="eq"),
        pytest.param("metadata.name=a", {"metadata.name": "b"}, False, id="eq-miss"),
        pytest.param("spec.nodeName=", {}, True, id="missing-reads-as-empty"),
        pytest.param("spec.nodeName!=", {"spec.nodeName": "n1"}, True, id="scheduled"),
        pytest.param("a=x\\,y", {"a": "x,y"}, True, id="escaped-comma"),
        pytest.param("a=1,b!=2", {"a": "1", "b": "2"}, False, id="and"),
    ],
)
def test_field_selector_matches(text: str, fields: dict[str, str], expected: bool) -> None:
    assert parse_field_selector(text).matches(fields) is expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        pytest.param("abc", "invalid selector: 'abc'; can't understand 'abc'", id="no-operator"),
        pytest.param(
            "a=b=c", "invalid field selector: unescaped character in value: 61", id="raw-equals"
        ),
        pytest.param(
            "a=b\\x", "invalid field selector: invalid escape sequence: \\x", id="bad-escape"
        ),
        pytest.param(
            "a=b\\", "invalid field selector: invalid escape sequence: \\", id="trailing-slash"
        ),
    ],
)
def test_parse_field_selector_errors(text: str, message: str) -> None:
    with pytest.raises(SelectorError) as info:
        parse_field_selector(text)
    assert info.value.message == message


def test_field_selector_check_supported_messages_and_aliases() -> None:
    pods = ("metadata.name", "metadata.namespace", "spec.nodeName", "status.phase")
    sel = parse_field_selector("spec.host=n1,status.phase=Running")
    renamed = sel.check_supported(pods, aliases={"spec.host": "spec.nodeName"})
    assert str(renamed) == "spec.nodeName=n1,status.phase=Running"
    with pytest.raises(SelectorError) as info:
        parse_field_selector("spec.bogus=x").check_supported(pods)
    assert info.value.message == "field label not supported: spec.bogus"
    with pytest.raises(SelectorError) as info:
        parse_field_selector("spec.bogus=x").check_supported(
            ("metadata.name", "metadata.namespace"), generic=True
        )
    assert info.value.message == (
        '"spec.bogus" is not a known field selector: only "metadata.name", "metadata.namespace"'
    )


def test_field_selector_name_fast_path() -> None:
    assert parse_field_selector("metadata.name=web-0,status.phase=Running").name == "web-0"
    assert parse_field_selector("metadata.name!=web-0").name is None
    assert FieldSelector().name is None
    assert FieldSelector().empty


def test_field_value_escaping_round_trips() -> None:
    raw = "a,b=c\\d"
    assert escape_field_value(raw) == "a\\,b\\=c\\\\d"
    assert unescape_field_value(escape_field_value(raw)) == raw


def test_object_meta_fields() -> None:
    obj = {"metadata": {"name": "x", "namespace": "ns"}}
    assert object_meta_fields(obj) == {"metadata.name": "x", "metadata.namespace": "ns"}
    assert object_meta_fields({}) == {"metadata.name": "", "metadata.namespace": ""}
