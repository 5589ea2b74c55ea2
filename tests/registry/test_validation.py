"""The shared validators: upstream's exact message texts and paths."""

from __future__ import annotations

import pytest

from kubeling.machinery.field import Path
from kubeling.registry import validation as v

SUBDOMAIN_MSG = (
    "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or "
    "'.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used "
    "for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"
)
LABEL_MSG = (
    "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and "
    "must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex "
    "used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')"
)
DNS1035_MSG = (
    "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an "
    "alphabetic character, and end with an alphanumeric character (e.g. 'my-name',  or "
    "'abc-123', regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')"
)
CONFIG_KEY_MSG = (
    "a valid config key must consist of alphanumeric characters, '-', '_' or '.' (e.g. "
    "'key.name',  or 'KEY_NAME',  or 'key-name', regex used for validation is "
    "'[-._a-zA-Z0-9]+')"
)


def test_subdomain_rejects_upper_case_with_upstream_text() -> None:
    assert v.is_dns1123_subdomain("MyData") == [SUBDOMAIN_MSG]
    assert v.is_dns1123_subdomain("my-data.example") == []


def test_subdomain_too_long_reports_length_and_regex_separately() -> None:
    assert v.is_dns1123_subdomain("a" * 254) == ["must be no more than 253 characters"]
    assert v.is_dns1123_subdomain("a" * 253) == []


def test_dns1123_label_text_has_two_spaces_before_or() -> None:
    assert v.is_dns1123_label("a.b") == [LABEL_MSG]
    assert v.is_dns1123_label("a" * 64) == ["must be no more than 63 characters"]


def test_dns1035_label_rejects_leading_digit() -> None:
    assert v.is_dns1035_label("1web") == [DNS1035_MSG]
    assert v.is_dns1035_label("web-1") == []


def test_validate_name_renders_field_error() -> None:
    errs = v.validate_name("MyData")
    assert [str(e) for e in errs] == [f'metadata.name: Invalid value: "MyData": {SUBDOMAIN_MSG}']


def test_validate_name_empty_is_required() -> None:
    errs = v.validate_name("", kind="label")
    assert [str(e) for e in errs] == [
        "metadata.name: Required value: name or generateName is required"
    ]


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        pytest.param(".", ["may not be '.'"], id="dot"),
        pytest.param("..", ["may not be '..'"], id="dotdot"),
        pytest.param("a/b%c", ["may not contain '/'", "may not contain '%'"], id="slash-percent"),
        pytest.param("Any_Thing", [], id="ok"),
    ],
)
def test_path_segment_name(value: str, expected: list[str]) -> None:
    assert v.is_path_segment_name(value) == expected


def test_config_key_messages() -> None:
    assert v.is_config_map_key("key#1") == [CONFIG_KEY_MSG]
    assert v.is_config_map_key("..data") == ["must not start with '..'"]
    assert v.is_config_map_key(".") == ["must not be '.'"]
    assert v.is_config_map_key("tls.crt") == []


def test_qualified_name_prefix_and_name_parts() -> None:
    assert v.is_qualified_name("example.com/MyName") == []
    assert v.is_qualified_name("/x") == ["prefix part must be non-empty"]
    errs = v.is_qualified_name("a/b/c")
    assert errs[0].startswith("a qualified name must consist of alphanumeric characters")
    assert errs[0].endswith(
        "with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')"
    )
    assert v.is_qualified_name("x/" + "a" * 64) == ["name part must be no more than 63 characters"]


def test_label_value_message() -> None:
    assert v.is_label_value("bad value") == [
        "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' "
        "or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or "
        "'my_value',  or '12345', regex used for validation is "
        "'(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')"
    ]
    assert v.is_label_value("") == []


def test_validate_labels_errors_sit_on_the_map_path() -> None:
    errs = v.validate_labels({"app": "bad value"}, Path("metadata.labels"))
    assert len(errs) == 1
    assert errs[0].field == "metadata.labels"
    assert str(errs[0]).startswith('metadata.labels: Invalid value: "bad value": a valid label')


def test_annotations_total_size_limit() -> None:
    big = {"a": "x" * (256 * 1024)}
    errs = v.validate_annotations(big, Path("metadata.annotations"))
    assert [str(e) for e in errs] == [
        "metadata.annotations: Too long: may not be more than 262144 bytes"
    ]
    assert v.validate_annotations({"a": "x"}, Path("metadata.annotations")) == []


def test_port_name_rules() -> None:
    assert v.is_valid_port_name("http") == []
    assert v.is_valid_port_name("123") == ["must contain at least one letter (a-z)"]
    assert v.is_valid_port_name("a--b") == ["must not contain consecutive hyphens"]
    assert v.is_valid_port_name("-ab") == ["must not begin or end with a hyphen"]
    assert v.is_valid_port_name("HTTP") == [
        "must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)",
        "must contain at least one letter (a-z)",
    ]
    assert v.is_valid_port_name("a" * 16) == ["must be no more than 15 characters"]


def test_port_number_range() -> None:
    assert v.is_valid_port_num(80) == []
    assert v.is_valid_port_num(0) == ["must be between 1 and 65535, inclusive"]
    assert v.is_valid_port_num(65536) == ["must be between 1 and 65535, inclusive"]


def test_env_var_names_strict_and_relaxed() -> None:
    assert v.is_env_var_name("MY_VAR") == []
    assert v.is_env_var_name("1abc") == [
        "a valid environment variable name must consist of alphabetic characters, digits, '_', "
        "'-', or '.', and must not start with a digit (e.g. 'my.env-name',  or 'MY_ENV.NAME',  "
        "or 'MyEnvName1', regex used for validation is '[-._a-zA-Z][-._a-zA-Z0-9]*')"
    ]
    assert v.is_relaxed_env_var_name("1abc") == []
    assert v.is_relaxed_env_var_name("A=B") == [
        "a valid environment variable name must consist only of printable ASCII characters "
        "other than '='"
    ]


def test_quantity_validation() -> None:
    assert v.validate_quantity("5Gi", Path("x")) == []
    assert [str(e) for e in v.validate_positive_quantity("0", Path("spec.resources[storage]"))] == [
        'spec.resources[storage]: Invalid value: "0": must be greater than zero'
    ]
    assert [str(e) for e in v.validate_quantity("-1", Path("q"))] == [
        'q: Invalid value: "-1": must be greater than or equal to 0'
    ]


def test_selector_matching_and_string() -> None:
    sel = {
        "matchLabels": {"app": "web"},
        "matchExpressions": [
            {"key": "tier", "operator": "In", "values": ["b", "a"]},
            {"key": "gone", "operator": "DoesNotExist"},
        ],
    }
    assert v.selector_matches(sel, {"app": "web", "tier": "a"})
    assert not v.selector_matches(sel, {"app": "web", "tier": "c"})
    assert not v.selector_matches(sel, {"app": "web", "tier": "a", "gone": "x"})
    assert v.selector_string(sel) == "app=web,!gone,tier in (a,b)"
    assert v.format_labels({"b": "2", "a": "1"}) == "a=1,b=2"
    assert v.format_labels({}) == "<none>"


def test_label_selector_operator_rules() -> None:
    errs = v.validate_label_selector(
        {"matchExpressions": [{"key": "a", "operator": "In"}]}, Path("spec.selector")
    )
    assert [str(e) for e in errs] == [
        "spec.selector.matchExpressions[0].values: Required value: must be specified when "
        "`operator` is 'In' or 'NotIn'"
    ]


def test_object_meta_namespace_rules() -> None:
    obj = {"metadata": {"name": "x"}}
    assert [str(e) for e in v.validate_object_meta(obj, namespaced=True)] == [
        "metadata.namespace: Required value"
    ]
    obj = {"metadata": {"name": "x", "namespace": "default"}}
    assert [str(e) for e in v.validate_object_meta(obj, namespaced=False)] == [
        "metadata.namespace: Forbidden: not allowed on this type"
    ]


def test_go_string_map_rendering_in_field_errors() -> None:
    from kubeling.machinery.field import invalid

    bad = v.go_string_map({"b": "2", "a": 'q"t'})
    assert (
        str(invalid(Path("x"), bad, "d"))
        == 'x: Invalid value: map[string]string{"a":"q\\"t", "b":"2"}: d'
    )
    assert repr(v.go_string_map(None)) == "map[string]string(nil)"
    assert repr(v.go_string_map({})) == "map[string]string{}"
