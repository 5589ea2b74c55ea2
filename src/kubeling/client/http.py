"""The HTTPS transport of ``Client``: JSON over httpx to any Kubernetes-compatible API server.

Failures come back as the same ``StatusError`` subclasses the registry raises in-process:
a ``Status`` body is rebuilt with ``StatusError.from_status``, a body that is not one is
wrapped by its HTTP code, and transport failures (refused, reset, TLS, timeouts) become
``ServiceUnavailable`` or ``Timeout`` so no httpx exception escapes to controllers. Answers
429 and 5xx that carry ``Retry-After`` are retried a few times as client-go does, since the
server promises it did not act on them. Watches are one streamed, chunked response read line
by line; an ``ERROR`` event is raised as its Status (``Gone`` for 410) and ends the stream.
"""

from __future__ import annotations

import asyncio
import base64
import builtins
import contextlib
import logging
import os
import ssl
import tempfile
from collections.abc import AsyncIterator, Mapping
from pathlib import Path
from typing import Any

import httpx
import orjson
import yaml

from kubeling.client.interface import PATCH_CONTENT_TYPES, PatchType, WatchEvent
from kubeling.machinery.errors import (
    BadRequest,
    ServiceUnavailable,
    StatusError,
    Timeout,
)
from kubeling.machinery.types import Obj, ResourceInfo

log = logging.getLogger(__name__)

MAX_RETRIES = 5
# client-go's metadata client asks this way, with plain JSON as the fallback a server
# without PartialObjectMetadata support would answer (the caller then gets whole objects).
METADATA_ACCEPT = "application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1,application/json"
METADATA_LIST_ACCEPT = (
    "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1,application/json"
)
MAX_RETRY_AFTER = 30.0
_NO_STATUS_MESSAGES = {
    404: "the server could not find the requested resource",
    401: "Unauthorized",
    403: "Forbidden",
}


class KubeconfigError(ValueError):
    """The kubeconfig is missing, malformed or names an unknown context/cluster/user."""


def _b64(data: str) -> bytes:
    return base64.b64decode(data)


def _read_maybe_relative(base: Path, path: str) -> bytes:
    p = Path(path)
    if not p.is_absolute():
        p = base / p
    return p.read_bytes()


class HttpClient:
    """``Client`` over HTTPS. Build with ``from_kubeconfig`` or directly."""

    def __init__(
        self,
        *,
        server: str,
        ca_data: bytes | str | None = None,
        token: str | None = None,
        client_cert_data: bytes | None = None,
        client_key_data: bytes | None = None,
        insecure_skip_tls_verify: bool = False,
        tls_server_name: str = "",
        namespace: str = "default",
        timeout: float = 30.0,
        user_agent: str = "kubeling",
        max_retries: int = MAX_RETRIES,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.server = server.rstrip("/")
        self.namespace = namespace
        """The kubeconfig context's namespace, for callers that want a default."""
        self.max_retries = max_retries
        self.timeout = timeout
        self._tls_server_name = tls_server_name
        headers = {"Accept": "application/json", "User-Agent": user_agent}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        verify: ssl.SSLContext | bool = True
        if self.server.startswith("https://"):
            verify = self._ssl_context(
                ca_data=ca_data,
                client_cert_data=client_cert_data,
                client_key_data=client_key_data,
                insecure=insecure_skip_tls_verify,
            )
        self._http = httpx.AsyncClient(
            base_url=self.server,
            headers=headers,
            verify=verify,
            timeout=httpx.Timeout(timeout),
            # Proxies from the environment must never see cluster traffic.
            trust_env=False,
            transport=transport,
        )
        self._warned: set[str] = set()

    @staticmethod
    def _ssl_context(
        *,
        ca_data: bytes | str | None,
        client_cert_data: bytes | None,
        client_key_data: bytes | None,
        insecure: bool,
    ) -> ssl.SSLContext:
        if insecure:
            ctx = ssl.create_default_context()
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
        elif ca_data:
            cadata = ca_data.decode() if isinstance(ca_data, bytes) else ca_data
            ctx = ssl.create_default_context(cadata=cadata)
        else:
            ctx = ssl.create_default_context()
        if client_cert_data and client_key_data:
            # ssl only loads key pairs from files: write them to a private temporary
            # directory just long enough to load them.
            with tempfile.TemporaryDirectory(prefix="kubeling-client-") as tmp:
                cert = os.path.join(tmp, "cert.pem")
                key = os.path.join(tmp, "key.pem")
                for path, data in ((cert, client_cert_data), (key, client_key_data)):
                    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
                    with os.fdopen(fd, "wb") as f:
                        f.write(data)
                ctx.load_cert_chain(cert, key)
        return ctx

    @classmethod
    def from_kubeconfig(
        cls, path: str | os.PathLike[str], *, context: str = "", **kwargs: Any
    ) -> HttpClient:
        """Read server, CA and credentials from a kubeconfig's (current) context."""
        p = Path(path)
        try:
            config = yaml.safe_load(p.read_text()) or {}
        except (OSError, yaml.YAMLError) as e:
            raise KubeconfigError(f"cannot read kubeconfig {p}: {e}") from e
        name = context or config.get("current-context") or ""

        def pick(section: str, wanted: str) -> dict[str, Any]:
            for entry in config.get(section) or []:
                if entry.get("name") == wanted:
                    return dict(entry.get(section[:-1]) or {})
            raise KubeconfigError(f"kubeconfig {p}: no {section[:-1]} named {wanted!r}")

        ctx = pick("contexts", name)
        cluster = pick("clusters", ctx.get("cluster", ""))
        user = pick("users", ctx.get("user", "")) if ctx.get("user") else {}
        base = p.parent

        ca: bytes | None = None
        if cluster.get("certificate-authority-data"):
            ca = _b64(cluster["certificate-authority-data"])
        elif cluster.get("certificate-authority"):
            ca = _read_maybe_relative(base, cluster["certificate-authority"])
        token = user.get("token")
        if not token and user.get("tokenFile"):
            token = _read_maybe_relative(base, user["tokenFile"]).decode().strip()
        cert = key = None
        if user.get("client-certificate-data"):
            cert = _b64(user["client-certificate-data"])
        elif user.get("client-certificate"):
            cert = _read_maybe_relative(base, user["client-certificate"])
        if user.get("client-key-data"):
            key = _b64(user["client-key-data"])
        elif user.get("client-key"):
            key = _read_maybe_relative(base, user["client-key"])
        return cls(
            server=cluster.get("server", ""),
            ca_data=ca,
            token=token,
            client_cert_data=cert,
            client_key_data=key,
            insecure_skip_tls_verify=bool(cluster.get("insecure-skip-tls-verify")),
            tls_server_name=cluster.get("tls-server-name", ""),
            namespace=ctx.get("namespace") or "default",
            **kwargs,
        )

    # --- plumbing ----------------------------------------------------------------------------

    @staticmethod
    def _path(
        resource: ResourceInfo, *, namespace: str, name: str = "", subresource: str = ""
    ) -> str:
        path = resource.path(namespace=namespace or None, name=name or None)
        return f"{path}/{subresource}" if subresource else path

    def _extensions(self) -> dict[str, Any]:
        return {"sni_hostname": self._tls_server_name} if self._tls_server_name else {}

    async def _request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str] | None = None,
        body: Any = None,
        content_type: str = "application/json",
        accept: str = "",
    ) -> Obj:
        content = None
        headers: dict[str, str] = {"Accept": accept} if accept else {}
        if body is not None:
            content = body if isinstance(body, bytes) else orjson.dumps(body)
            headers["Content-Type"] = content_type
        attempt = 0
        while True:
            try:
                response = await self._http.request(
                    method,
                    path,
                    params=params,
                    content=content,
                    headers=headers,
                    extensions=self._extensions(),
                )
            except httpx.TimeoutException as e:
                raise Timeout(f"{method} {self.server}{path}: request timed out ({e!r})") from e
            except httpx.HTTPError as e:
                raise ServiceUnavailable(f"{method} {self.server}{path}: {_describe(e)}") from e
            self._note_warnings(response)
            if response.status_code < 300:
                try:
                    out: Obj = orjson.loads(response.content) if response.content else {}
                except orjson.JSONDecodeError as e:
                    raise BadRequest(
                        f"{method} {path}: the server answered {response.status_code} with "
                        f"a body that is not JSON"
                    ) from e
                return out
            retry_after = _retry_after(response)
            if (
                retry_after is not None
                and (response.status_code == 429 or response.status_code >= 500)
                and attempt < self.max_retries
            ):
                attempt += 1
                log.debug(
                    "%s %s answered %d; retrying in %.1fs.",
                    method,
                    path,
                    response.status_code,
                    retry_after,
                )
                await _sleep(retry_after)
                continue
            raise _error_from_response(response.status_code, response.content)

    def _note_warnings(self, response: httpx.Response) -> None:
        for value in response.headers.get_list("warning"):
            code, _, rest = value.partition(" ")
            if code != "299":
                continue
            text = rest.partition(" ")[2].strip()
            if text.startswith('"') and text.endswith('"'):
                text = text[1:-1].replace('\\"', '"')
            if text not in self._warned:
                self._warned.add(text)
                log.warning("API server warning: %s", text)

    # --- Client ----------------------------------------------------------------------------

    async def get(
        self, resource: ResourceInfo, *, name: str, namespace: str = "", subresource: str = ""
    ) -> Obj:
        path = self._path(resource, namespace=namespace, name=name, subresource=subresource)
        return await self._request("GET", path)

    async def list(
        self,
        resource: ResourceInfo,
        *,
        namespace: str = "",
        label_selector: str = "",
        field_selector: str = "",
        limit: int = 0,
        continue_: str = "",
        resource_version: str = "",
        metadata_only: bool = False,
    ) -> Obj:
        params: dict[str, str] = {}
        if label_selector:
            params["labelSelector"] = label_selector
        if field_selector:
            params["fieldSelector"] = field_selector
        if limit:
            params["limit"] = str(limit)
        if continue_:
            params["continue"] = continue_
        if resource_version:
            params["resourceVersion"] = resource_version
        return await self._request(
            "GET",
            self._path(resource, namespace=namespace),
            params=params,
            accept=METADATA_LIST_ACCEPT if metadata_only else "",
        )

    async def watch(
        self,
        resource: ResourceInfo,
        *,
        namespace: str = "",
        label_selector: str = "",
        field_selector: str = "",
        resource_version: str = "",
        allow_bookmarks: bool = True,
        timeout_seconds: int = 0,
        metadata_only: bool = False,
    ) -> AsyncIterator[WatchEvent]:
        params: dict[str, str] = {"watch": "true"}
        if label_selector:
            params["labelSelector"] = label_selector
        if field_selector:
            params["fieldSelector"] = field_selector
        if resource_version:
            params["resourceVersion"] = resource_version
        if allow_bookmarks:
            params["allowWatchBookmarks"] = "true"
        if timeout_seconds:
            params["timeoutSeconds"] = str(timeout_seconds)
        path = self._path(resource, namespace=namespace)
        # The server may stay silent for as long as nothing changes; only connecting is
        # bounded by the client's timeout.
        read_timeout = timeout_seconds + 30.0 if timeout_seconds else None
        timeout = httpx.Timeout(self.timeout, read=read_timeout)
        try:
            headers = {"Accept": METADATA_ACCEPT} if metadata_only else {}
            async with self._http.stream(
                "GET",
                path,
                params=params,
                headers=headers,
                timeout=timeout,
                extensions=self._extensions(),
            ) as response:
                if response.status_code >= 300:
                    body = await response.aread()
                    raise _error_from_response(response.status_code, body)
                async for line in response.aiter_lines():
                    line = line.strip()
                    if not line:
                        continue
                    try:
                        event = orjson.loads(line)
                    except orjson.JSONDecodeError as e:
                        raise ServiceUnavailable(
                            f"watch {path}: undecodable event {line[:200]!r}"
                        ) from e
                    kind = event.get("type")
                    obj = event.get("object") or {}
                    if kind == "ERROR":
                        raise StatusError.from_status(obj)
                    yield WatchEvent(type=kind, object=obj)
        except httpx.TimeoutException as e:
            raise Timeout(f"watch {self.server}{path}: timed out ({e!r})") from e
        except httpx.HTTPError as e:
            raise ServiceUnavailable(f"watch {self.server}{path}: {_describe(e)}") from e

    async def create(
        self,
        resource: ResourceInfo,
        obj: Obj,
        *,
        namespace: str = "",
        subresource: str = "",
        name: str = "",
        dry_run: bool = False,
        field_manager: str = "",
    ) -> Obj:
        namespace = namespace or (obj.get("metadata") or {}).get("namespace") or ""
        path = self._path(
            resource,
            namespace=namespace,
            name=name if subresource else "",
            subresource=subresource,
        )
        return await self._request(
            "POST", path, params=_write_params(dry_run, field_manager), body=obj
        )

    async def update(
        self,
        resource: ResourceInfo,
        obj: Obj,
        *,
        subresource: str = "",
        dry_run: bool = False,
        field_manager: str = "",
    ) -> Obj:
        meta = obj.get("metadata") or {}
        path = self._path(
            resource,
            namespace=meta.get("namespace") or "",
            name=meta.get("name") or "",
            subresource=subresource,
        )
        return await self._request(
            "PUT", path, params=_write_params(dry_run, field_manager), body=obj
        )

    async def patch(
        self,
        resource: ResourceInfo,
        *,
        name: str,
        patch: Obj | builtins.list[Obj],
        patch_type: PatchType,
        namespace: str = "",
        subresource: str = "",
        field_manager: str = "",
        force: bool = False,
        dry_run: bool = False,
    ) -> Obj:
        params = _write_params(dry_run, field_manager)
        if force:
            params["force"] = "true"
        path = self._path(resource, namespace=namespace, name=name, subresource=subresource)
        return await self._request(
            "PATCH",
            path,
            params=params,
            body=orjson.dumps(patch),
            content_type=PATCH_CONTENT_TYPES[patch_type],
        )

    async def delete(
        self,
        resource: ResourceInfo,
        *,
        name: str,
        namespace: str = "",
        grace_period_seconds: int | None = None,
        propagation_policy: str = "",
        preconditions: Obj | None = None,
        dry_run: bool = False,
    ) -> Obj:
        options: Obj = {"kind": "DeleteOptions", "apiVersion": "v1"}
        if grace_period_seconds is not None:
            options["gracePeriodSeconds"] = grace_period_seconds
        if propagation_policy:
            options["propagationPolicy"] = propagation_policy
        if preconditions:
            options["preconditions"] = preconditions
        if dry_run:
            options["dryRun"] = ["All"]
        path = self._path(resource, namespace=namespace, name=name)
        return await self._request("DELETE", path, body=options)

    async def close(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> HttpClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()


def _write_params(dry_run: bool, field_manager: str) -> dict[str, str]:
    params: dict[str, str] = {}
    if dry_run:
        params["dryRun"] = "All"
    if field_manager:
        params["fieldManager"] = field_manager
    return params


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("retry-after")
    if value is None:
        return None
    with contextlib.suppress(ValueError):
        return min(max(float(value), 0.0), MAX_RETRY_AFTER)
    return 1.0


async def _sleep(seconds: float) -> None:
    await asyncio.sleep(seconds)


def _describe(e: httpx.HTTPError) -> str:
    cause = e.__cause__ or e.__context__
    text = str(e) or type(e).__name__
    if cause is not None and str(cause) and str(cause) not in text:
        text = f"{text} ({cause})"
    return text


def _error_from_response(code: int, content: bytes) -> StatusError:
    try:
        body = orjson.loads(content) if content else None
    except orjson.JSONDecodeError:
        body = None
    if isinstance(body, dict) and body.get("kind") == "Status":
        return StatusError.from_status(body, code=code)
    text = content.decode(errors="replace").strip()
    message = _NO_STATUS_MESSAGES.get(code) or text or f"the server answered HTTP {code}"
    return StatusError.from_status({"message": message, "code": code}, code=code)
