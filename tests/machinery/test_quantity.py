"""Quantity parsing and canonical printing, against upstream's documented examples."""

from __future__ import annotations

import pytest

from kubeling.machinery.errors import BadRequest
from kubeling.machinery.quantity import (
    ERR_FORMAT_WRONG,
    QuantityError,
    canonicalize,
    parse_quantity,
    parse_quantity_or_bad_request,
    parse_quantity_or_none,
)


@pytest.mark.parametrize(
    ("text", "canonical"),
    [
        pytest.param("1Gi", "1Gi", id="binary"),
        pytest.param("1.5Gi", "1536Mi", id="fractional-binary-steps-down"),
        pytest.param("0.5Gi", "512Mi", id="half-gi"),
        pytest.param("1024", "1024", id="plain-int-stays-decimal"),
        pytest.param("1000", "1k", id="decimal-thousand"),
        pytest.param("1100", "1100", id="decimal-no-clean-suffix"),
        pytest.param("500m", "500m", id="milli"),
        pytest.param("0.5", "500m", id="fraction-to-milli"),
        pytest.param("1.5", "1500m", id="one-and-half"),
        pytest.param("1e3", "1e3", id="exponent"),
        pytest.param("1E6", "1e6", id="exponent-upper"),
        pytest.param("12e-3", "12e-3", id="negative-exponent"),
        pytest.param("0.1n", "1n", id="rounds-up-to-nano"),
        pytest.param("-1Gi", "-1Gi", id="negative"),
        pytest.param("0", "0", id="zero"),
        pytest.param("1000k", "1M", id="k-to-M"),
        pytest.param("1023Ki", "1023Ki", id="kibi"),
        pytest.param(5, "5", id="json-int"),
    ],
)
def test_canonicalize_prints_upstream_form(text: str | int, canonical: str) -> None:
    assert canonicalize(text) == canonical


def test_quantity_compares_by_value_across_formats() -> None:
    assert parse_quantity("1Gi") > parse_quantity("1G")
    assert parse_quantity("1000M") == parse_quantity("1G")
    assert parse_quantity("1Ki") == parse_quantity("1024")
    assert parse_quantity("100m") < parse_quantity("1")


def test_quantity_add_keeps_first_format() -> None:
    total = parse_quantity("1Gi") + parse_quantity("512Mi")
    assert str(total) == "1536Mi"
    assert (parse_quantity("1") - parse_quantity("250m")).canonical() == "750m"


def test_quantity_int_and_milli_values_round_up() -> None:
    assert parse_quantity("1.5").int_value() == 2
    assert parse_quantity("1Gi").int_value() == 1073741824
    assert parse_quantity("1.5").milli_value() == 1500


@pytest.mark.parametrize(
    ("text", "message"),
    [
        pytest.param("abc", ERR_FORMAT_WRONG, id="letters"),
        pytest.param("1Gx", ERR_FORMAT_WRONG, id="bad-suffix-char"),
        pytest.param("", ERR_FORMAT_WRONG, id="empty"),
        pytest.param("1Kii", "unable to parse quantity's suffix", id="bad-suffix"),
        pytest.param("1.2.3", "unable to parse numeric part of quantity", id="two-dots"),
    ],
)
def test_parse_quantity_rejects_with_upstream_message(text: str, message: str) -> None:
    with pytest.raises(QuantityError) as exc:
        parse_quantity(text)
    assert str(exc.value) == message


def test_error_message_quotes_upstream_regex() -> None:
    assert ERR_FORMAT_WRONG == (
        "quantities must match the regular expression "
        "'^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'"
    )
    with pytest.raises(BadRequest):
        parse_quantity_or_bad_request("1Q")


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        pytest.param("1Gi", "1Gi", id="string"),
        pytest.param(3, "3", id="integer"),
        pytest.param(None, None, id="absent"),
        pytest.param(True, None, id="boolean"),
        pytest.param({"x": 1}, None, id="map"),
        pytest.param("1 Gi", None, id="unparseable"),
    ],
)
def test_parse_quantity_or_none_returns_none_for_what_does_not_parse(
    value: object, expected: str | None
) -> None:
    q = parse_quantity_or_none(value)
    assert (q.canonical() if q is not None else None) == expected
