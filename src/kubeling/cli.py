"""The ``kubeling`` command line (filled in by the API server work)."""

from __future__ import annotations


def main(argv: list[str] | None = None) -> int:
    raise SystemExit("kubeling: not built yet")
