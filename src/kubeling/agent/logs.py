"""Reading the CRI-format container logs the shim writes, for ``kubectl logs``.

Each line is ``<RFC3339Nano> <stdout|stderr> <P|F> <content>``; ``P`` lines are pieces
of one long line and are joined with the next until an ``F``. The options mirror
``PodLogOptions``: ``timestamps``, ``sinceTime``/``sinceSeconds`` (as a datetime),
``tailLines`` and ``limitBytes``; ``--previous`` is the caller picking restart N-1's file.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path


@dataclass(frozen=True)
class LogLine:
    timestamp: str
    stream: str
    content: bytes

    @property
    def time(self) -> datetime:
        # Python parses microseconds; the nanosecond digits beyond are dropped.
        head, _, frac = self.timestamp.rstrip("Z").partition(".")
        return datetime.fromisoformat(f"{head}.{(frac + '000000')[:6]}").replace(tzinfo=UTC)


def parse_log(data: bytes) -> list[LogLine]:
    """Full lines (partials joined), skipping anything malformed."""
    lines: list[LogLine] = []
    pending: dict[str, tuple[str, bytes]] = {}
    for raw in data.split(b"\n"):
        parts = raw.split(b" ", 3)
        if len(parts) < 3 or parts[2] not in (b"P", b"F"):
            continue
        ts, stream, tag = parts[0].decode(), parts[1].decode(), parts[2]
        content = parts[3] if len(parts) == 4 else b""
        first_ts, prefix = pending.pop(stream, (ts, b""))
        if tag == b"P":
            pending[stream] = (first_ts, prefix + content)
            continue
        lines.append(LogLine(first_ts, stream, prefix + content))
    return lines


def read_log(
    path: Path,
    *,
    timestamps: bool = False,
    since: datetime | None = None,
    tail: int | None = None,
    limit_bytes: int | None = None,
) -> bytes:
    """The log as ``kubectl logs`` prints it (stdout and stderr interleaved)."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return b""
    selected: deque[LogLine] | list[LogLine] = [
        line for line in parse_log(data) if since is None or line.time >= since
    ]
    if tail is not None:
        selected = deque(selected, maxlen=max(tail, 0))
    out = b"".join(
        (line.timestamp.encode() + b" " if timestamps else b"") + line.content + b"\n"
        for line in selected
    )
    return out[:limit_bytes] if limit_bytes is not None else out
