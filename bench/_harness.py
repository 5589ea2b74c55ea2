"""Shared pieces of the API benchmark: a minimal HTTP/1.1-over-TLS client, the server process
under test, the raw SQLite floor, and the machine description.

The client is deliberately tiny (one request at a time per keep-alive connection, requests
built as bytes, responses parsed by Content-Length or chunked framing) because on a 2-core
machine the load generator competes with the server for CPU: a heavier client would make the
server look slower than it is. ``bench_api.py`` measures httpx against it in the same run.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import pathlib
import platform
import re
import shutil
import signal
import socket
import sqlite3
import ssl
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

REPO = pathlib.Path(__file__).resolve().parent.parent
VENV_BIN = pathlib.Path(sys.executable).parent


def percentile(sorted_values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile of an already sorted sequence (``q`` in 0..100)."""
    if not sorted_values:
        return float("nan")
    rank = max(1, -(-len(sorted_values) * q // 100))
    return sorted_values[int(rank) - 1]


def summarize(latencies: list[float], wall: float) -> dict[str, float]:
    """p50/p99/max in milliseconds and throughput in operations per second."""
    values = sorted(latencies)
    return {
        "n": len(values),
        "p50_ms": percentile(values, 50) * 1e3,
        "p99_ms": percentile(values, 99) * 1e3,
        "max_ms": (values[-1] if values else float("nan")) * 1e3,
        "ops_per_s": len(values) / wall if wall > 0 else float("nan"),
        "wall_s": wall,
    }


# --- the HTTP client ----------------------------------------------------------------------


class HttpError(Exception):
    pass


class Connection:
    """One keep-alive HTTP/1.1 connection over TLS; one request in flight at a time."""

    def __init__(self, host: str, port: int, ctx: ssl.SSLContext, token: str) -> None:
        self.host = host
        self.port = port
        self.ctx = ctx
        self._auth = f"Authorization: Bearer {token}\r\n".encode() if token else b""
        self._host_header = f"Host: {host}:{port}\r\n".encode()
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def open(self) -> Connection:
        self.reader, self.writer = await asyncio.open_connection(
            self.host, self.port, ssl=self.ctx, server_hostname=self.host, limit=1 << 20
        )
        return self

    async def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            with contextlib.suppress(Exception):
                await self.writer.wait_closed()
            self.writer = None

    def _head(self, method: str, path: str, body: bytes | None, headers: Sequence[str]) -> bytes:
        parts = [f"{method} {path} HTTP/1.1\r\n".encode(), self._host_header, self._auth]
        for h in headers:
            parts.append(h.encode() + b"\r\n")
        if body is not None:
            parts.append(b"Content-Type: application/json\r\n")
            parts.append(b"Content-Length: %d\r\n" % len(body))
        parts.append(b"\r\n")
        return b"".join(parts)

    async def _read_head(self) -> tuple[int, dict[bytes, bytes]]:
        assert self.reader is not None
        line = await self.reader.readline()
        if not line:
            raise HttpError("connection closed by the server")
        status = int(line.split(b" ", 2)[1])
        headers: dict[bytes, bytes] = {}
        while True:
            line = await self.reader.readline()
            if line in (b"\r\n", b"\n", b""):
                break
            k, _, v = line.partition(b":")
            headers[k.strip().lower()] = v.strip()
        return status, headers

    async def _read_chunk(self) -> bytes:
        """One chunk of a chunked body (b"" for the last)."""
        assert self.reader is not None
        size = int((await self.reader.readline()).split(b";")[0], 16)
        data = await self.reader.readexactly(size + 2)
        return data[:-2]

    async def request(
        self,
        method: str,
        path: str,
        body: bytes | None = None,
        headers: Sequence[str] = ("Accept: application/json",),
    ) -> tuple[int, bytes]:
        assert self.reader is not None and self.writer is not None
        head = self._head(method, path, body, headers)
        self.writer.write(head + body if body is not None else head)
        status, resp_headers = await self._read_head()
        length = resp_headers.get(b"content-length")
        if length is not None:
            data = await self.reader.readexactly(int(length))
        elif resp_headers.get(b"transfer-encoding", b"").lower() == b"chunked":
            chunks = []
            while chunk := await self._read_chunk():
                chunks.append(chunk)
            data = b"".join(chunks)
        else:
            data = b""
        return status, data

    async def stream(self, path: str) -> None:
        """Send a GET whose answer is a stream (a watch) and read its head."""
        assert self.writer is not None
        self.writer.write(self._head("GET", path, None, ("Accept: application/json",)))
        status, headers = await self._read_head()
        if status != 200:
            raise HttpError(f"watch {path} answered {status}")
        if headers.get(b"transfer-encoding", b"").lower() != b"chunked":
            raise HttpError("a watch answer is expected to be chunked")
        self._pending = b""

    async def next_line(self) -> bytes:
        """The next newline-terminated line of a streamed chunked body."""
        while b"\n" not in self._pending:
            chunk = await self._read_chunk()
            if not chunk:
                raise HttpError("the watch ended")
            self._pending += chunk
        line, _, self._pending = self._pending.partition(b"\n")
        return line


# --- the server under test ----------------------------------------------------------------


READY_RE = re.compile(rb"ready at (https://\S+)")


def bytecode_env(cache_dir: pathlib.Path | None, *, src: str = "") -> dict[str, str]:
    """The environment for a server that reads and writes compiled bytecode under
    ``cache_dir`` (as an installed kubeling reads its .pyc files), or, with None, this
    process's environment unchanged. ``src``: a directory holding another ``kubeling``
    package to run instead of the installed one (before/after comparisons)."""
    env = dict(os.environ)
    if src:
        env["PYTHONPATH"] = os.pathsep.join(p for p in (src, env.get("PYTHONPATH", "")) if p)
    if cache_dir is None:
        return env
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env["PYTHONPYCACHEPREFIX"] = str(cache_dir)
    return env


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def ticks_per_second() -> int:
    return os.sysconf("SC_CLK_TCK")


def proc_cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process (its threads included), from /proc."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / ticks_per_second()


def proc_rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for pid {pid}")


@dataclass
class Server:
    """A ``kubeling up`` (or the API-only launcher) in a fresh temporary data directory."""

    mode: str
    """``up``: the real ``kubeling up`` (controllers and the simulated node agent run);
    ``api``: ``bench/_apiserver.py``, the same Cluster with no controllers and no agent."""
    listen: str = "127.0.0.1:0"
    data_dir: pathlib.Path | None = None
    keep_data_dir: bool = False
    proc: subprocess.Popen[bytes] | None = None
    url: str = ""
    host: str = ""
    port: int = 0
    token: str = ""
    ready_line_s: float = 0.0
    ready_line: str = ""
    stderr_path: pathlib.Path | None = None
    env: dict[str, str] | None = None
    """The server's environment (None: this process's)."""
    _owned_dirs: list[pathlib.Path] = field(default_factory=list)

    def command(self) -> list[str]:
        assert self.data_dir is not None
        common = ["--data-dir", str(self.data_dir), "--listen", self.listen, "--store", "sqlite"]
        if self.mode == "up":
            return [str(VENV_BIN / "kubeling"), "up", *common, "--runtime", "simulated"]
        launcher = pathlib.Path(__file__).with_name("_apiserver.py")
        return [sys.executable, str(launcher), *common]

    def spawn(self) -> float:
        """Start the process; returns its spawn time (``time.perf_counter``)."""
        if self.data_dir is None:
            self.data_dir = pathlib.Path(tempfile.mkdtemp(prefix=f"kubeling-bench-{self.mode}-"))
            self._owned_dirs.append(self.data_dir)
        self.stderr_path = self.data_dir.parent / (self.data_dir.name + ".stderr")
        stderr = open(self.stderr_path, "wb")  # noqa: SIM115
        began = time.perf_counter()
        self.proc = subprocess.Popen(
            self.command(), stdout=subprocess.PIPE, stderr=stderr, cwd=self.data_dir, env=self.env
        )
        stderr.close()
        return began

    def wait_ready_line(self, began: float, timeout: float = 60.0) -> None:
        assert self.proc is not None and self.proc.stdout is not None and self.data_dir
        # readline blocks; the server prints one line when ready or exits on failure.
        deadline = time.monotonic() + timeout
        line = b""
        while time.monotonic() < deadline:
            line = self.proc.stdout.readline()
            if line or self.proc.poll() is not None:
                break
        self.ready_line_s = time.perf_counter() - began
        m = READY_RE.search(line)
        if not m:
            tail = b""
            if self.stderr_path is not None and self.stderr_path.exists():
                tail = self.stderr_path.read_bytes()[-2000:]
            raise RuntimeError(
                f"{self.mode} server did not print its ready line: {line!r}; stderr: {tail!r}"
            )
        self.ready_line = line.decode().strip()
        self.url = m.group(1).decode()
        hostport = self.url.removeprefix("https://")
        self.host, _, port = hostport.rpartition(":")
        self.host = self.host.strip("[]")
        self.port = int(port)
        self.token = (self.data_dir / "pki" / "admin.token").read_text().strip()

    def ssl_context(self) -> ssl.SSLContext:
        assert self.data_dir is not None
        return ssl.create_default_context(cafile=str(self.data_dir / "pki" / "ca.crt"))

    def connection(self) -> Connection:
        return Connection(self.host, self.port, self.ssl_context(), self.token)

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def rss_mb(self) -> float:
        return proc_rss_mb(self.pid)

    def cpu_s(self) -> float:
        return proc_cpu_seconds(self.pid)

    def stop(self) -> int | None:
        """SIGTERM by pid, wait, SIGKILL if it hangs; remove the data dirs we made."""
        code: int | None = None
        if self.proc is not None:
            if self.proc.poll() is None:
                self.proc.send_signal(signal.SIGTERM)
                try:
                    code = self.proc.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    self.proc.kill()
                    code = self.proc.wait(timeout=15)
            else:
                code = self.proc.returncode
            if self.proc.stdout is not None:
                self.proc.stdout.close()
            self.proc = None
        if not self.keep_data_dir:
            self.cleanup()
        return code

    def cleanup(self) -> None:
        for d in self._owned_dirs:
            shutil.rmtree(d, ignore_errors=True)
            if self.stderr_path is not None:
                with contextlib.suppress(FileNotFoundError):
                    self.stderr_path.unlink()
        self._owned_dirs.clear()


async def poll_readyz(host: str, port: int, ctx: ssl.SSLContext, deadline: float) -> float:
    """Poll ``GET /readyz`` until it answers 200; returns ``time.perf_counter`` at that answer.

    Each attempt is a fresh TLS connection (as a client waiting for a cluster would do); a
    refused connection or a 500 is retried after 5 ms."""
    while time.monotonic() < deadline:
        conn = Connection(host, port, ctx, "")
        try:
            await conn.open()
            status, _ = await conn.request("GET", "/readyz", headers=())
            if status == 200:
                return time.perf_counter()
        except (OSError, HttpError, asyncio.IncompleteReadError, ssl.SSLError):
            pass
        finally:
            await conn.close()
        await asyncio.sleep(0.005)
    raise TimeoutError("readyz never answered 200")


# --- the raw SQLite floor -----------------------------------------------------------------

_FLOOR_SCHEMA = (
    # The same shape as the kubeling store's log table and index, so the floor pays for the
    # same B-tree work per row.
    """CREATE TABLE kv (
        id INTEGER PRIMARY KEY, name TEXT NOT NULL, deleted INTEGER NOT NULL,
        create_revision INTEGER NOT NULL, prev_revision INTEGER NOT NULL, value BLOB NOT NULL
    )""",
    "CREATE INDEX kv_name_id ON kv (name, id)",
)
_FLOOR_INSERT = (
    "INSERT INTO kv (id, name, deleted, create_revision, prev_revision, value)"
    " VALUES (?, ?, 0, ?, 0, ?)"
)


def sqlite_floor(
    value: bytes, *, single: int, batched: int, batch: int, directory: pathlib.Path
) -> dict[str, Any]:
    """Raw inserts from Python's sqlite3 with kubeling's durability (WAL, synchronous=FULL).

    ``single``: one insert per transaction, each timed (the best a one-client durable create
    can do). ``batched``: ``batched`` rows in transactions of ``batch`` (what group commit
    can reach when ``batch`` writers wait together)."""
    d = pathlib.Path(tempfile.mkdtemp(prefix="kubeling-bench-sqlite-", dir=directory))
    try:
        conn = sqlite3.connect(d / "floor.db", isolation_level=None)
        assert conn.execute("PRAGMA journal_mode = WAL").fetchone()[0] == "wal"
        conn.execute("PRAGMA synchronous = FULL")
        for s in _FLOOR_SCHEMA:
            conn.execute(s)
        rev = 0
        lat: list[float] = []
        began = time.perf_counter()
        for i in range(single):
            rev += 1
            t = time.perf_counter()
            conn.execute("BEGIN IMMEDIATE")
            conn.execute(_FLOOR_INSERT, (rev, f"/registry/configmaps/floor/single-{i}", rev, value))
            conn.execute("COMMIT")
            lat.append(time.perf_counter() - t)
        single_stats = summarize(lat, time.perf_counter() - began)
        lat = []
        began = time.perf_counter()
        for start in range(0, batched, batch):
            t = time.perf_counter()
            conn.execute("BEGIN IMMEDIATE")
            for i in range(start, min(start + batch, batched)):
                rev += 1
                conn.execute(
                    _FLOOR_INSERT, (rev, f"/registry/configmaps/floor/batch-{i}", rev, value)
                )
            conn.execute("COMMIT")
            lat.append(time.perf_counter() - t)
        wall = time.perf_counter() - began
        batch_stats = summarize(lat, wall)
        batch_stats["rows_per_s"] = batched / wall
        batch_stats["batch"] = batch
        conn.close()
        return {"value_bytes": len(value), "single": single_stats, "batched": batch_stats}
    finally:
        shutil.rmtree(d, ignore_errors=True)


# --- the machine --------------------------------------------------------------------------


def machine() -> dict[str, Any]:
    cpu = ""
    with contextlib.suppress(OSError), open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    mem_mb = 0
    with contextlib.suppress(OSError), open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemTotal:"):
                mem_mb = int(line.split()[1]) // 1024
    disk = ""
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        out = subprocess.run(
            ["df", "-hT", tempfile.gettempdir()], capture_output=True, text=True, timeout=5
        ).stdout.splitlines()
        if len(out) > 1:
            dev, fstype, size = out[1].split()[:3]
            disk = f"{dev} {fstype} {size}"
    return {
        "nproc": os.cpu_count(),
        "cpu": cpu,
        "memory_mb": mem_mb,
        "tmp_disk": disk,
        "kernel": platform.release(),
        "python": platform.python_version(),
    }


def load() -> tuple[float, float, float]:
    return os.getloadavg()


def wait_for_low_load(limit: float, max_wait: float) -> tuple[float, float]:
    """Wait (at most ``max_wait`` s) until the 1-minute load is below ``limit``.

    Returns the load seen at the end and the seconds waited."""
    began = time.monotonic()
    while True:
        one = os.getloadavg()[0]
        waited = time.monotonic() - began
        if one < limit or waited >= max_wait:
            return one, waited
        time.sleep(min(5.0, max_wait - waited))
