"""The agent's own endpoint: container logs and exec, for the API server's proxy only.

Transport choice: plain HTTP/1.1 on 127.0.0.1 with a shared bearer secret, not HTTPS. The
agent and the API server are two halves of one ``kubeling up`` process on one machine;
TLS on loopback would add a handshake to every ``kubectl logs`` and exec and a certificate
to manage while protecting nothing the kernel does not already protect. What does need
protecting — other local users reaching a root shell in any container — is covered by
binding to loopback only and requiring the secret (compared in constant time) that the
cluster hands both halves at start; it never leaves the process or touches disk.

Endpoints, named after the kubelet's:

- ``GET /containerLogs/{ns}/{pod}/{container}?follow&tailLines&timestamps&sinceSeconds&
  sinceTime&previous&limitBytes`` → ``200 text/plain`` with the log, streamed to the end
  (``follow``: until the container exits or the client leaves), or a ``Status`` with the
  kubelet's message (``container "c" in pod "p" is waiting to start: ContainerCreating``).
- ``GET /exec/{ns}/{pod}/{container}?command=..&stdin&stdout&stderr&tty`` with
  ``Upgrade: kubeling-exec`` → ``101``, then frames both ways: one channel byte, a 4-byte
  big-endian length, the payload. Channels are the remotecommand ones (0 stdin, 1 stdout,
  2 stderr, 3 the final ``Status``, 4 resize JSON, 255 close-of-stdin); the proxy maps
  them to whichever WebSocket sub-protocol the client negotiated.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import json
import logging
import secrets
import struct
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, unquote, urlsplit

from kubeling.agent.errors import AgentError
from kubeling.agent.logs import parse_log, read_log
from kubeling.machinery.errors import (
    BadRequest,
    NotFound,
    StatusError,
    Unauthorized,
)

if TYPE_CHECKING:
    from kubeling.agent.kubelet import Kubelet
    from kubeling.agent.podsync.status import ContainerRecord
    from kubeling.agent.podsync.worker import PodWorker

log = logging.getLogger(__name__)

STDIN, STDOUT, STDERR, ERROR, RESIZE, CLOSE = 0, 1, 2, 3, 4, 255
FOLLOW_POLL = 0.1
TTY_SIZE_WAIT = 0.5
"""How long a tty exec waits for the client's first resize before starting without one."""
_REASONS = {
    200: "OK",
    400: "Bad Request",
    401: "Unauthorized",
    404: "Not Found",
    500: "Internal Server Error",
}


def frame(channel: int, payload: bytes) -> bytes:
    return struct.pack(">BI", channel, len(payload)) + payload


async def read_frame(reader: asyncio.StreamReader) -> tuple[int, bytes] | None:
    try:
        head = await reader.readexactly(5)
        channel, length = struct.unpack(">BI", head)
        return channel, await reader.readexactly(length)
    except (asyncio.IncompleteReadError, ConnectionError):
        return None


def exit_status(code: int) -> dict[str, Any]:
    """The ``Status`` the kubelet sends on the error channel when a command ends."""
    if code == 0:
        return {"metadata": {}, "status": "Success"}
    return {
        "metadata": {},
        "status": "Failure",
        "message": f"command terminated with non-zero exit code: exit status {code}",
        "reason": "NonZeroExitCode",
        "details": {"causes": [{"reason": "ExitCode", "message": str(code)}]},
    }


def _bool(values: dict[str, list[str]], name: str) -> bool:
    # The official Python client sends True/False; kubectl sends true.
    return (values.get(name) or [""])[0].lower() in ("true", "1")


class AgentServer:
    def __init__(self, kubelet: Kubelet, *, token: str = "") -> None:
        self.kubelet = kubelet
        if not token:
            token = secrets.token_urlsafe(32)
            kubelet.server_token = token
        self._token = f"Bearer {token}".encode()
        self._server: asyncio.Server | None = None
        self._conns: set[asyncio.Task[Any]] = set()
        self.port = 0

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self._server = await asyncio.start_server(self._handle, host, port)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            for t in list(self._conns):
                t.cancel()
            await self._server.wait_closed()
            self._server = None

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._conns.add(task)
        try:
            await self._serve(reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        except asyncio.CancelledError:
            pass
        except Exception:
            log.exception("Agent endpoint request failed.")
        finally:
            self._conns.discard(task)
            writer.close()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        line = (await reader.readline()).decode("latin-1").strip()
        headers: dict[str, str] = {}
        while True:
            h = (await reader.readline()).decode("latin-1")
            if h in ("\r\n", "\n", ""):
                break
            k, _, v = h.partition(":")
            headers[k.strip().lower()] = v.strip()
        parts = line.split()
        if len(parts) < 2:
            return
        if not hmac.compare_digest(headers.get("authorization", "").encode(), self._token):
            await self._error(writer, Unauthorized("Unauthorized"))
            return
        url = urlsplit(parts[1])
        query = parse_qs(url.query, keep_blank_values=True)
        segs = [unquote(s) for s in url.path.strip("/").split("/")]
        try:
            if len(segs) == 4 and segs[0] == "containerLogs":
                await self._logs(writer, segs[1], segs[2], segs[3], query)
            elif len(segs) == 4 and segs[0] == "exec":
                await self._exec(reader, writer, segs[1], segs[2], segs[3], query)
            else:
                raise NotFound("the server could not find the requested resource")
        except StatusError as exc:
            await self._error(writer, exc)

    async def _error(self, writer: asyncio.StreamWriter, exc: StatusError) -> None:
        body = json.dumps(exc.to_status()).encode()
        code = exc.code
        writer.write(
            f"HTTP/1.1 {code} {_REASONS.get(code, 'Error')}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode()
            + body
        )
        await writer.drain()

    def _worker(self, ns: str, pod: str) -> PodWorker:
        worker = self.kubelet.find_pod(ns, pod)
        if worker is None:
            raise NotFound(f'pod "{pod}" not found')
        return worker

    # --- logs ------------------------------------------------------------------------------

    async def _logs(
        self, writer: asyncio.StreamWriter, ns: str, pod: str, name: str, q: dict[str, list[str]]
    ) -> None:
        worker = self._worker(ns, pod)
        rec = worker.records.get(name)
        if rec is None:
            raise BadRequest(f"container {name} is not valid for pod {pod}")
        if not self.kubelet.node.runtime.runs_processes:
            raise BadRequest(
                "the simulated runtime runs no processes, so container logs are not available "
                "(start kubeling as root with runc installed for real containers)"
            )
        previous = _bool(q, "previous")
        index = _log_index(rec, pod=pod, previous=previous)
        path = self.kubelet.node.pod_log_dir(ns, pod, worker.uid) / name / f"{index}.log"
        timestamps = _bool(q, "timestamps")
        since: datetime | None = None
        if q.get("sinceSeconds"):
            since = datetime.now(UTC) - timedelta(seconds=int(q["sinceSeconds"][0]))
        elif q.get("sinceTime"):
            since = datetime.fromisoformat(q["sinceTime"][0].replace("Z", "+00:00"))
        tail = int(q["tailLines"][0]) if q.get("tailLines") else None
        limit = int(q["limitBytes"][0]) if q.get("limitBytes") else None
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nConnection: close\r\n\r\n")
        data = await asyncio.to_thread(
            read_log, path, timestamps=timestamps, since=since, tail=tail, limit_bytes=limit
        )
        writer.write(data)
        await writer.drain()
        if not _bool(q, "follow") or previous:
            return
        sent = len(data)
        try:
            offset = path.stat().st_size
        except OSError:
            offset = 0
        gen = worker._generation.get(name)
        partial = b""
        ending = False
        while limit is None or sent < limit:
            chunk = await asyncio.to_thread(_read_from, path, offset)
            offset += len(chunk)
            chunk = partial + chunk
            complete, _, partial = chunk.rpartition(b"\n")
            if complete:
                out = b"".join(
                    (ln.timestamp.encode() + b" " if timestamps else b"") + ln.content + b"\n"
                    for ln in parse_log(complete + b"\n")
                    if since is None or ln.time >= since
                )
                if limit is not None:
                    out = out[: limit - sent]
                writer.write(out)
                await writer.drain()
                sent += len(out)
                continue
            if ending or writer.is_closing():
                return
            if worker.finished or worker._generation.get(name) != gen or not rec.running:
                # One more read: the last lines land before the exit is seen.
                ending = True
                continue
            await asyncio.sleep(FOLLOW_POLL)

    # --- exec ------------------------------------------------------------------------------

    async def _exec(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        ns: str,
        pod: str,
        name: str,
        q: dict[str, list[str]],
    ) -> None:
        worker = self._worker(ns, pod)
        rec = worker.records.get(name)
        if rec is None:
            raise BadRequest(f"container {name} is not valid for pod {pod}")
        argv = q.get("command") or []
        if not argv:
            raise BadRequest("you must specify at least 1 command")
        if worker.sandbox is None or not rec.running:
            raise BadRequest(f'container not found ("{name}")')
        if not self.kubelet.node.runtime.runs_processes:
            raise BadRequest(
                "the simulated runtime runs no processes, so exec is not available "
                "(start kubeling as root with runc installed for real containers)"
            )
        if _bool(q, "dryRun"):
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
            await writer.drain()
            return
        tty = _bool(q, "tty")
        writer.write(
            b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: kubeling-exec\r\n"
            b"Connection: Upgrade\r\n\r\n"
        )
        await writer.drain()
        lock = asyncio.Lock()

        async def send(channel: int, payload: bytes) -> None:
            async with lock:
                writer.write(frame(channel, payload))
                await writer.drain()

        first: tuple[int, bytes] | None = None
        size: tuple[int, int] | None = None
        if tty:
            # kubectl -t sends the terminal size first: start the command with it, so that
            # the command never sees a 0x0 terminal.
            with contextlib.suppress(TimeoutError):
                first = await asyncio.wait_for(read_frame(reader), TTY_SIZE_WAIT)
            if first is not None and first[0] == RESIZE:
                size = _size(first[1])
                first = None
        try:
            session = await worker.sandbox.exec(name, argv, tty=tty, size=size)
        except AgentError as exc:
            # The streaming server's NewInternalError: the cause without the prefix, code 500.
            message = str(exc)
            cause = message.removeprefix("Internal error occurred: ")
            failure = {
                "metadata": {},
                "status": "Failure",
                "message": message,
                "reason": "InternalError",
                "details": {"causes": [{"message": cause}]},
                "code": 500,
            }
            await send(ERROR, json.dumps(failure).encode())
            return

        async def pump(read: Any, channel: int) -> None:
            while chunk := await read():
                await send(channel, chunk)

        async def feed() -> None:
            if not _bool(q, "stdin"):
                await session.close_stdin()
            pending = first
            while True:
                got, pending = (pending, None) if pending else (await read_frame(reader), None)
                if got is None:
                    # The client went away: end the command too.
                    await session.kill()
                    return
                channel, payload = got
                if channel == STDIN:
                    await session.write_stdin(payload)
                elif channel == CLOSE and payload[:1] == bytes([STDIN]):
                    await session.close_stdin()
                elif channel == RESIZE:
                    new_size = _size(payload)
                    if new_size is not None:
                        with contextlib.suppress(OSError):
                            await session.resize(cols=new_size[0], rows=new_size[1])

        feeder = asyncio.create_task(feed())
        try:
            pumps = [pump(session.read_stdout, STDOUT)]
            if not tty:
                pumps.append(pump(session.read_stderr, STDERR))
            await asyncio.gather(*pumps)
            code = await session.wait()
            await send(ERROR, json.dumps(exit_status(code)).encode())
        finally:
            feeder.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await feeder
            if session.tty:
                # A tty's reads end with the process; wait before releasing the terminal.
                with contextlib.suppress(Exception):
                    await session.kill()
            session.close()


def _size(payload: bytes) -> tuple[int, int] | None:
    """(cols, rows) from a resize message ``{"Width":80,"Height":24}``; None for 0x0."""
    try:
        size = json.loads(payload)
        cols, rows = int(size.get("Width") or 0), int(size.get("Height") or 0)
    except (ValueError, TypeError, AttributeError):
        return None
    return (cols, rows) if cols and rows else None


def _read_from(path: Path, offset: int) -> bytes:
    try:
        with open(path, "rb") as f:
            f.seek(offset)
            return f.read()
    except OSError:
        return b""


def _log_index(rec: ContainerRecord, *, pod: str, previous: bool) -> int:
    """Which run's log file, by the kubelet's ``validateContainerLogStatus`` rules."""
    name = rec.name
    waiting = rec.state.get("waiting")
    last = rec.last_state.get("terminated")
    if previous:
        if not last:
            raise BadRequest(f'previous terminated container "{name}" in pod "{pod}" not found')
        return rec.restart_count if waiting else rec.restart_count - 1
    if rec.running or rec.terminated is not None:
        return rec.restart_count
    if last:
        return rec.restart_count
    reason = (waiting or {}).get("reason", "")
    raise BadRequest(f'container "{name}" in pod "{pod}" is waiting to start: {reason}')
