"""Resource quantities as the agent needs them: bytes for memory and sizes, millicores for CPU.

Only the parsing the node needs (limits, ``sizeLimit``); the API server validates the
canonical form. Decimal and binary suffixes follow apimachinery's ``resource.Quantity``.
"""

from __future__ import annotations

import math
import re
from decimal import Decimal, InvalidOperation

_SUFFIX = {
    "": Decimal(1),
    "k": Decimal(10) ** 3,
    "M": Decimal(10) ** 6,
    "G": Decimal(10) ** 9,
    "T": Decimal(10) ** 12,
    "P": Decimal(10) ** 15,
    "E": Decimal(10) ** 18,
    "Ki": Decimal(2) ** 10,
    "Mi": Decimal(2) ** 20,
    "Gi": Decimal(2) ** 30,
    "Ti": Decimal(2) ** 40,
    "Pi": Decimal(2) ** 50,
    "Ei": Decimal(2) ** 60,
    "m": Decimal(1) / 1000,
    "u": Decimal(1) / 10**6,
    "n": Decimal(1) / 10**9,
}
_RE = re.compile(r"^([+-]?[0-9.]+(?:[eE][+-]?[0-9]+)?)([a-zA-Z]*)$")


def parse_quantity(value: str | int | float) -> Decimal:
    """The quantity's value in base units; ``ValueError`` for malformed input."""
    if isinstance(value, int | float):
        return Decimal(str(value))
    m = _RE.match(value.strip())
    if not m or m.group(2) not in _SUFFIX:
        raise ValueError(f"quantities must match the regular expression: {value!r}")
    try:
        number = Decimal(m.group(1))
    except InvalidOperation as exc:
        raise ValueError(f"invalid quantity {value!r}") from exc
    return number * _SUFFIX[m.group(2)]


def to_bytes(value: str | int | float) -> int:
    """Bytes, rounded up like apimachinery's ``Value()``."""
    return math.ceil(parse_quantity(value))


def to_millicores(value: str | int | float) -> int:
    return math.ceil(parse_quantity(value) * 1000)
