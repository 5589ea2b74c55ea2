"""Resource quantities in the units the node enforces: bytes for memory and sizes, millicores
for CPU.

Parsing is ``machinery.quantity``'s (upstream ``resource.ParseQuantity``); this module only
names the two conversions the agent applies to limits and ``sizeLimit``. Both round away from
zero as upstream's ``Value()`` and ``MilliValue()`` do, so a limit never shrinks below what the
pod asked for. A malformed quantity raises ``QuantityError``, a ``ValueError``.
"""

from __future__ import annotations

from kubeling.machinery.quantity import parse_quantity


def to_bytes(value: str | int | float) -> int:
    """Whole bytes (upstream ``Value()``)."""
    return parse_quantity(value).int_value()


def to_millicores(value: str | int | float) -> int:
    """Thousandths of a CPU (upstream ``MilliValue()``)."""
    return parse_quantity(value).milli_value()
