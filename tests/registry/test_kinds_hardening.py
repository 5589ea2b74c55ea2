"""Strategies against odd bodies: printers never fail, validators never raise on what decodes."""

from __future__ import annotations

from typing import Any

from kubeling.machinery import resources as r
from kubeling.registry.catalog import strategies

NOW = 1_700_000_000.0


def _strategy(info: Any) -> Any:
    return strategies()[info]


def test_row_of_an_odd_object_shows_unknown_cells_instead_of_raising() -> None:
    s = _strategy(r.DEPLOYMENTS)
    odd = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web", "creationTimestamp": "2023-11-14T22:13:20Z"},
        "spec": {"template": {"spec": {"containers": [{"name": "c", "image": None}]}}},
    }
    row = s.row(odd, now=NOW)
    assert row[0] == "web"
    assert len(row) == len(s.columns())
    assert "<unknown>" in row
