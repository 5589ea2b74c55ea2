"""Kubernetes ``resource.Quantity``: parse, compare, add, and print the way upstream does.

A quantity is held as an exact ``Fraction`` plus the format it was written in (binary SI,
decimal SI or decimal exponent), because upstream prints a value back in its original
format family: ``1.5Gi`` comes back as ``1536Mi`` and ``1500m`` as ``1500m``. Values finer
than one nano-unit are rounded up to it, as upstream's ``inf.Dec`` arithmetic does.
"""

from __future__ import annotations

import functools
import math
import re
from dataclasses import dataclass
from fractions import Fraction
from typing import Final, Literal

from kubeling.machinery.errors import BadRequest

QuantityFormat = Literal["BinarySI", "DecimalSI", "DecimalExponent"]

QUANTITY_PATTERN: Final = r"^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$"
ERR_FORMAT_WRONG: Final = f"quantities must match the regular expression '{QUANTITY_PATTERN}'"
ERR_NUMERIC: Final = "unable to parse numeric part of quantity"
ERR_SUFFIX: Final = "unable to parse quantity's suffix"

_RE: Final = re.compile(QUANTITY_PATTERN)
_NUMBER_RE: Final = re.compile(r"^[0-9]*\.?[0-9]*$")
_EXP_RE: Final = re.compile(r"^[eE]([-+]?[0-9]+)$")

_BINARY: Final = {"Ki": 10, "Mi": 20, "Gi": 30, "Ti": 40, "Pi": 50, "Ei": 60}
_DECIMAL: Final = {
    "n": -9,
    "u": -6,
    "m": -3,
    "": 0,
    "k": 3,
    "M": 6,
    "G": 9,
    "T": 12,
    "P": 15,
    "E": 18,
}
_DECIMAL_SUFFIX: Final = {v: k for k, v in _DECIMAL.items()}
_BINARY_SUFFIX: Final = {v: k for k, v in _BINARY.items()}
_NANO: Final = Fraction(1, 10**9)


class QuantityError(ValueError):
    """A quantity string upstream would refuse; ``str()`` is upstream's message."""


@functools.total_ordering
@dataclass(frozen=True, eq=False)
class Quantity:
    """An exact amount plus the format it prints in."""

    value: Fraction
    format: QuantityFormat = "DecimalSI"

    # -- arithmetic and ordering (format-independent) -----------------------------------------

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Quantity):
            return self.value == other.value
        if isinstance(other, int | Fraction):
            return self.value == other
        return NotImplemented

    def __hash__(self) -> int:
        return hash(self.value)

    def __lt__(self, other: Quantity | int) -> bool:
        rhs = other.value if isinstance(other, Quantity) else Fraction(other)
        return self.value < rhs

    def __add__(self, other: Quantity) -> Quantity:
        return Quantity(self.value + other.value, self.format)

    def __sub__(self, other: Quantity) -> Quantity:
        return Quantity(self.value - other.value, self.format)

    def __neg__(self) -> Quantity:
        return Quantity(-self.value, self.format)

    def is_zero(self) -> bool:
        return self.value == 0

    def int_value(self) -> int:
        """Upstream ``Value()``: whole units, rounded away from zero."""
        return _ceil_away(self.value)

    def milli_value(self) -> int:
        """Upstream ``MilliValue()``: thousandths, rounded away from zero."""
        return _ceil_away(self.value * 1000)

    # -- printing -------------------------------------------------------------------------------

    def __str__(self) -> str:
        return self.canonical()

    def __repr__(self) -> str:
        return f"Quantity({self.canonical()!r})"

    def canonical(self) -> str:
        """Upstream's ``String()``: the canonical form in the quantity's format family."""
        value = self.value
        if value == 0:
            return "0"
        fmt = self.format
        if fmt == "BinarySI":
            if -1024 < value < 1024 or value.denominator != 1:
                # upstream shows small or fractional binary values in decimal, to avoid
                # rounding and confusion
                fmt = "DecimalSI"
            else:
                return _binary_string(int(value))
        return _decimal_string(value, exponent_form=fmt == "DecimalExponent")


def _ceil_away(v: Fraction) -> int:
    return math.ceil(v) if v >= 0 else -math.ceil(-v)


def _binary_string(n: int) -> str:
    sign = "-" if n < 0 else ""
    n = abs(n)
    exp = 0
    while exp < 60 and n % 1024 == 0:
        n //= 1024
        exp += 10
    return f"{sign}{n}{_BINARY_SUFFIX.get(exp, '')}"


def _decimal_string(value: Fraction, *, exponent_form: bool) -> str:
    sign = "-" if value < 0 else ""
    v = abs(value)
    # round up to nano precision: integer count of nano units
    nanos = math.ceil(v / _NANO)
    exp = -9
    while nanos % 1000 == 0 and nanos != 0 and (exponent_form or exp < 18):
        nanos //= 1000
        exp += 3
    suffix = (f"e{exp}" if exp != 0 else "") if exponent_form else _DECIMAL_SUFFIX[exp]
    return f"{sign}{nanos}{suffix}"


def parse_quantity(text: str | int | float) -> Quantity:
    """Parse a quantity as upstream's ``ParseQuantity``; raises ``QuantityError``."""
    if isinstance(text, bool):
        raise QuantityError(ERR_FORMAT_WRONG)
    if isinstance(text, int):
        return Quantity(Fraction(text), "DecimalSI")
    if isinstance(text, float):
        text = repr(text)
    s = text.strip()
    if not s:
        raise QuantityError(ERR_FORMAT_WRONG)
    m = _RE.match(s)
    if m is None:
        raise QuantityError(ERR_FORMAT_WRONG)
    number, suffix = m.group(1), m.group(2)
    sign = 1
    if number[0] in "+-":
        sign = -1 if number[0] == "-" else 1
        number = number[1:]
    if not _NUMBER_RE.match(number) or number in ("", ".") or number.count(".") > 1:
        raise QuantityError(ERR_NUMERIC)
    magnitude = Fraction(number)
    fmt: QuantityFormat
    if suffix in _BINARY:
        fmt = "BinarySI"
        mult = Fraction(2 ** _BINARY[suffix])
    elif suffix in _DECIMAL:
        fmt = "DecimalSI"
        mult = Fraction(10) ** _DECIMAL[suffix]
    else:
        em = _EXP_RE.match(suffix)
        if em is None:
            raise QuantityError(ERR_SUFFIX)
        fmt = "DecimalExponent"
        mult = Fraction(10) ** int(em.group(1))
    value = sign * magnitude * mult
    # upstream keeps at most nano precision, rounding away from zero
    if (value / _NANO).denominator != 1:
        value = Fraction(_ceil_away(value / _NANO)) * _NANO
    return Quantity(value, fmt)


def parse_quantity_or_none(value: object) -> Quantity | None:
    """The parsed quantity, or None when ``value`` is absent, not of a quantity's JSON type,
    or does not parse: for readers of objects whose decoding already reported bad values."""
    if not isinstance(value, str | int | float):
        return None
    try:
        return parse_quantity(value)
    except ValueError:  # QuantityError, or a number Fraction cannot hold
        return None


def parse_quantity_or_bad_request(text: str | int | float) -> Quantity:
    """``parse_quantity`` raising ``BadRequest`` with upstream's text instead."""
    try:
        return parse_quantity(text)
    except QuantityError as e:
        raise BadRequest(str(e)) from e


def canonicalize(text: str | int | float) -> str:
    """The canonical string of a quantity as upstream would serialize it back."""
    return parse_quantity(text).canonical()


def is_valid(text: object) -> bool:
    if not isinstance(text, str | int | float) or isinstance(text, bool):
        return False
    try:
        parse_quantity(text)
    except QuantityError:
        return False
    return True
