"""CRI log reading: partial lines, timestamps, since, tail, limit."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from kubeling.agent.logs import parse_log, read_log
from kubeling.agent.runtime.shim import copy_stream

LOG = (
    b"2026-12-04T10:00:00.000000001Z stdout F first\n"
    b"2026-12-04T10:00:01.000000000Z stderr P par\n"
    b"2026-12-04T10:00:02.000000000Z stdout F second\n"
    b"2026-12-04T10:00:03.000000000Z stderr F tial\n"
    b"2026-12-04T10:00:04.500000000Z stdout F \n"
)


def test_parse_joins_partial_lines_per_stream() -> None:
    lines = parse_log(LOG)
    assert [(line.stream, line.content) for line in lines] == [
        ("stdout", b"first"),
        ("stdout", b"second"),
        ("stderr", b"partial"),
        ("stdout", b""),
    ]
    assert lines[2].timestamp == "2026-12-04T10:00:01.000000000Z"


def test_read_log_options(tmp_path: Path) -> None:
    path = tmp_path / "0.log"
    path.write_bytes(LOG)
    assert read_log(path) == b"first\nsecond\npartial\n\n"
    assert read_log(path, tail=2) == b"partial\n\n"
    assert read_log(path, tail=0) == b""
    assert read_log(path, since=datetime(2026, 12, 4, 10, 0, 2, tzinfo=UTC)) == b"second\n\n"
    assert read_log(path, timestamps=True, tail=1) == b"2026-12-04T10:00:04.500000000Z \n"
    assert read_log(path, limit_bytes=8) == b"first\nse"
    assert read_log(tmp_path / "missing.log") == b""


def test_shim_writes_cri_lines_and_cuts_long_lines(tmp_path: Path) -> None:
    import io
    import threading

    src = io.BytesIO(b"short\n" + b"x" * (16 * 1024 + 5) + b"\nlast-no-newline")
    out = io.BytesIO()
    copy_stream(src, "stdout", out, threading.Lock())  # type: ignore[arg-type]
    lines = parse_log(out.getvalue())
    assert [(line.stream, len(line.content)) for line in lines] == [
        ("stdout", 5),
        ("stdout", 16 * 1024 + 5),
        ("stdout", 15),
    ]
    tags = [raw.split(b" ")[2] for raw in out.getvalue().splitlines()]
    assert tags == [b"F", b"P", b"F", b"F"]
