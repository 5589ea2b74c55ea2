"""Probes: exec, httpGet and tcpSocket, with the kubelet's results and failure texts.

``run_probe`` does one attempt and returns ``(ok, output)``; the worker applies
``initialDelaySeconds``, ``periodSeconds``, ``successThreshold`` and ``failureThreshold``.
Texts follow upstream's probers (``HTTP probe failed with statuscode: 503``, ``dial tcp
10.244.0.5:80: connect: connection refused``, an exec probe's own output).

Safety and the simulated runtime: a probe only ever connects to a loopback address or to
the pod's own address when the pod really has a network namespace on kubeling's bridge.
Under the simulated runtime there is no process and no namespace behind the pod IP, so a
probe without an explicit loopback ``host`` (and every exec probe) counts as a success and
says so in its output; an explicit ``host`` anywhere else fails the probe.
"""

from __future__ import annotations

import asyncio
import errno
import ipaddress
import os
import ssl
from collections.abc import Awaitable, Callable

from kubeling.machinery.types import Obj

ExecFn = Callable[[list[str], float], Awaitable[tuple[int, bytes]]]
"""Run argv in the container with a timeout: (exit code, combined output)."""

NOT_PROBED = "not probed: the simulated runtime runs no processes"


def probe_kind(probe: Obj) -> str:
    for kind in ("exec", "httpGet", "tcpSocket", "grpc"):
        if kind in probe:
            return kind
    return ""


def resolve_port(port: object, container: Obj) -> int:
    if isinstance(port, int):
        return port
    text = str(port)
    if text.isdigit():
        return int(text)
    for p in container.get("ports") or []:
        if p.get("name") == text:
            return int(p.get("containerPort") or 0)
    raise ValueError(f"unable to find port {text!r} in container")


def _loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


def _target(spec: Obj, pod_ip: str, *, pod_reachable: bool) -> tuple[str | None, str]:
    """(host to dial or None for "skip as success", failure text when the host is refused)."""
    host = spec.get("host") or ""
    if host:
        if _loopback(host) or (pod_reachable and host == pod_ip):
            return host, ""
        return None, f"kubeling probes only loopback or the pod's own address, not {host}"
    if pod_reachable and pod_ip:
        return pod_ip, ""
    return None, ""


async def run_probe(
    probe: Obj,
    *,
    container: Obj,
    pod_ip: str,
    pod_reachable: bool,
    exec_fn: ExecFn | None,
) -> tuple[bool, str]:
    timeout = float(probe.get("timeoutSeconds") or 1)
    kind = probe_kind(probe)
    if kind == "exec":
        if exec_fn is None:
            return True, NOT_PROBED
        argv = list((probe["exec"] or {}).get("command") or [])
        try:
            code, output = await exec_fn(argv, timeout)
        except TimeoutError:
            return False, f"command {argv!r} timed out"
        except Exception as exc:  # the runtime's own failure fails the probe, as upstream
            return False, str(exc)
        return code == 0, output.decode(errors="replace")
    if kind in ("httpGet", "tcpSocket"):
        spec = probe[kind] or {}
        try:
            port = resolve_port(spec.get("port"), container)
        except ValueError as exc:
            return False, str(exc)
        host, refused = _target(spec, pod_ip, pod_reachable=pod_reachable)
        if host is None:
            return (False, refused) if refused else (True, NOT_PROBED)
        if kind == "tcpSocket":
            return await _tcp(host, port, timeout)
        return await _http(host, port, spec, timeout)
    if kind == "grpc":
        # TODO(#5): gRPC health probes are not implemented; they fail with this text.
        return False, "gRPC probes are not supported by kubeling"
    return True, ""


def _hostport(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


async def _tcp(host: str, port: int, limit: float) -> tuple[bool, str]:
    try:
        async with asyncio.timeout(limit):
            _reader, writer = await asyncio.open_connection(host, port)
    except TimeoutError:
        return False, f"dial tcp {_hostport(host, port)}: i/o timeout"
    except OSError as exc:
        return False, f"dial tcp {_hostport(host, port)}: connect: {_reason(exc)}"
    writer.close()
    return True, ""


GO_ERRNO_TEXT = {
    errno.ECONNREFUSED: "connection refused",
    errno.EHOSTUNREACH: "no route to host",
    errno.ENETUNREACH: "network is unreachable",
    errno.ETIMEDOUT: "connection timed out",
    errno.ECONNRESET: "connection reset by peer",
    errno.EADDRNOTAVAIL: "cannot assign requested address",
    errno.EACCES: "permission denied",
    errno.EPERM: "operation not permitted",
}
"""Go's texts for the errnos a dial meets (its syscall table, as ``net`` errors read)."""


def _reason(exc: OSError) -> str:
    """The errno as Go's net errors say it: ``connection refused``, not Python's
    ``Connect call failed ('10.0.0.1', 80)``."""
    code = exc.errno
    if code is None:
        # asyncio's "Multiple exceptions" (one per address tried): Go reports the first.
        for inner in getattr(exc, "__context__", None), getattr(exc, "__cause__", None):
            if isinstance(inner, OSError) and inner.errno is not None:
                code = inner.errno
                break
    if code is None:
        return str(exc)
    if code in GO_ERRNO_TEXT:
        return GO_ERRNO_TEXT[code]
    text = os.strerror(code)
    return text[:1].lower() + text[1:]


async def _http(host: str, port: int, spec: Obj, limit: float) -> tuple[bool, str]:
    scheme = (spec.get("scheme") or "HTTP").lower()
    path = spec.get("path") or "/"
    if not path.startswith("/"):
        path = "/" + path
    url = f"{scheme}://{_hostport(host, port)}{path}"
    tls: ssl.SSLContext | None = None
    if scheme == "https":
        # As the kubelet's prober: TLS without verifying the certificate.
        tls = ssl.create_default_context()
        tls.check_hostname = False
        tls.verify_mode = ssl.CERT_NONE
    elif scheme != "http":
        return False, f'Get "{url}": unsupported protocol scheme "{scheme}"'
    headers = {"Host": _hostport(host, port), "User-Agent": "kube-probe/1.32", "Accept": "*/*"}
    for h in spec.get("httpHeaders") or []:
        headers[str(h.get("name", ""))] = str(h.get("value", ""))
    request = f"GET {path} HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in headers.items())
    request += "Connection: close\r\n\r\n"
    local = ""
    try:
        async with asyncio.timeout(limit):
            reader, writer = await asyncio.open_connection(host, port, ssl=tls)
            sockname = writer.get_extra_info("sockname") or ("", 0)
            local = _hostport(str(sockname[0]), int(sockname[1])) + "->"
            try:
                writer.write(request.encode("latin-1"))
                await writer.drain()
                line = await reader.readline()
            finally:
                writer.close()
    except TimeoutError:
        return False, (
            f'Get "{url}": context deadline exceeded (Client.Timeout exceeded while awaiting '
            "headers)"
        )
    except OSError as exc:
        if local:
            remote = local + _hostport(host, port)
            return False, f'Get "{url}": read tcp {remote}: read: {_reason(exc)}'
        return False, f'Get "{url}": dial tcp {_hostport(host, port)}: connect: {_reason(exc)}'
    if not line:
        return False, f'Get "{url}": EOF'
    parts = line.decode("latin-1").split()
    if len(parts) < 2 or not parts[1].isdigit():
        return False, f'Get "{url}": malformed HTTP response {line[:40]!r}'
    code = int(parts[1])
    if 200 <= code < 400:
        return True, ""
    return False, f"HTTP probe failed with statuscode: {code}"
