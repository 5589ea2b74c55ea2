"""Resource verbs: turn one routed REST request into a registry call and its answer.

The registry does the work (defaults, validation, preconditions, storage); this module only
translates: query parameters and headers into a ``RequestContext`` and call arguments, the
registry's objects into JSON or ``Table`` answers, and watch events into a newline-delimited
chunked stream. Each registry call is a single statement with keyword arguments, so the
interface the edge relies on is visible at a glance.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Final

import orjson

from kubeling.apiserver import negotiation
from kubeling.apiserver.http import (
    NOT_ALLOWED,
    Message,
    Request,
    Send,
    respond,
    respond_error,
    respond_json,
    warning_headers,
)
from kubeling.machinery import decode
from kubeling.machinery.errors import (
    BadRequest,
    Cause,
    Gone,
    Invalid,
    MethodNotAllowed,
    StatusError,
)
from kubeling.machinery.field import invalid_error
from kubeling.machinery.objects import partial_object_metadata, partial_object_metadata_list
from kubeling.machinery.types import Obj, ResourceInfo
from kubeling.registry import meta
from kubeling.registry.context import FieldValidation, RequestContext, UserInfo

log = logging.getLogger(__name__)

_STREAMING: Final = frozenset({"log", "exec", "attach", "portforward", "proxy"})
DEFAULT_WATCH_SECONDS: Final = 1800
"""Upstream's ``--min-request-timeout``: a watch without ``timeoutSeconds`` ends after
between this and twice this; reflectors simply re-watch."""


StreamHandler = Callable[[Request, Send, "Target", UserInfo], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class Target:
    """What a resource path names."""

    info: ResourceInfo
    namespace: str
    """The namespace from the path; empty for cluster-scoped kinds and all-namespace lists."""
    name: str
    """Empty for a collection."""
    subresource: str


def _bool(value: str) -> bool:
    return value.lower() in ("true", "1")


def _int(req: Request, name: str) -> int | None:
    text = req.q(name)
    if not text:
        return None
    try:
        return int(text)
    except ValueError:
        raise BadRequest(f"invalid value for {name}: {text!r}") from None


_OPTIONS_KIND: Final = {
    "POST": "CreateOptions",
    "PUT": "UpdateOptions",
    "PATCH": "PatchOptions",
    "DELETE": "DeleteOptions",
}


def _invalid_option(method: str, field_name: str, bad: str, supported: str) -> Invalid:
    """upstream's 422 for a bad write option (``ValidateCreateOptions`` and friends)."""
    kind = _OPTIONS_KIND.get(method, "CreateOptions")
    detail = f"Unsupported value: {bad}: supported values: {supported}"
    return Invalid(
        f'{kind}.meta.k8s.io "" is invalid: {field_name}: {detail}',
        kind=kind,
        group="meta.k8s.io",
        causes=[Cause(reason="FieldValueNotSupported", message=detail, field=field_name)],
    )


def _dry_run(method: str, values: list[str]) -> bool:
    if any(v != "All" for v in values):
        # Go prints the rejected []string with %#v.
        bad = "[]string{" + ", ".join(f'"{v}"' for v in values) + "}"
        raise _invalid_option(method, "dryRun", bad, '"All"')
    return bool(values)


def _field_validation(method: str, value: str) -> FieldValidation:
    """Upstream treats a request without ``fieldValidation`` as ``Warn``."""
    if not value:
        return "Warn"
    if value in ("Strict", "Warn", "Ignore"):
        return value  # type: ignore[return-value]
    raise _invalid_option(method, "fieldValidation", f'"{value}"', '"", "Ignore", "Strict", "Warn"')


def _check_field_manager(req: Request) -> None:
    method = req.method
    if method not in ("POST", "PUT", "PATCH"):
        return
    apply = None
    if method == "PATCH":
        apply = negotiation.media_type(req.header(b"content-type")).startswith("application/apply")
    errs = meta.validate_write_options(
        req.q("fieldManager"), apply=apply, force_given="force" in req.query
    )
    if errs:
        raise invalid_error(kind=_OPTIONS_KIND[method], group="meta.k8s.io", name="", errors=errs)


def build_context(req: Request, user: UserInfo) -> RequestContext:
    method = req.method
    _check_field_manager(req)
    return RequestContext(
        user=user,
        field_manager=req.q("fieldManager"),
        user_agent=req.header(b"user-agent").decode("latin-1"),
        field_validation=_field_validation(method, req.q("fieldValidation")),
        dry_run=_dry_run(method, req.query.get("dryRun", [])),
        force=_bool(req.q("force")),
    )


class ResourceHandler:
    """Serves every resource path against one registry."""

    def __init__(self, registry: Any, *, stopping: asyncio.Event) -> None:
        self._registry = registry
        self._stopping = stopping
        self.streams: dict[str, StreamHandler] = {}
        """Plain-HTTP handlers of streaming subresources by ``<plural>/<sub>``
        (``pods/log``), registered by whoever serves them (the node agent's integration)."""

    # -- dispatch ----------------------------------------------------------------------------

    async def handle(self, req: Request, send: Send, target: Target, user: UserInfo) -> None:
        ctx = build_context(req, user)
        started = False

        async def tracked(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self._dispatch(req, tracked, target, ctx, user)
        except StatusError as e:
            if started or not ctx.warnings:
                raise
            # Upstream records warnings as it decodes, so a request refused afterwards
            # still carries them (kubectl prints "Warning: unknown field ..." before the error).
            await respond_error(send, e, headers=warning_headers(ctx.warnings))

    async def _dispatch(
        self, req: Request, send: Send, target: Target, ctx: RequestContext, user: UserInfo
    ) -> None:
        method = req.method
        store = self._registry.store(target.info)
        ns, name, sub = target.namespace, target.name, target.subresource
        if name:
            if sub in _STREAMING:
                stream = self.streams.get(f"{target.info.plural}/{sub}")
                if stream is not None:
                    await stream(req, send, target, user)
                    return
                # TODO(#5): attach, port-forward and proxy have no handler; they answer 405
                # (logs and exec are registered by the node agent's integration).
                raise MethodNotAllowed(NOT_ALLOWED)
            if method == "GET" and not sub and _bool(req.q("watch")):
                # The old single-object watch path: a watch of the collection narrowed to
                # this name, as upstream serves it.
                await self._watch(req, send, target, ctx)
                return
            if method == "GET":
                obj = await store.get(ctx=ctx, namespace=ns, name=name, subresource=sub)
                code = 200
            elif method == "PUT":
                body = await self._body(req, "" if sub not in ("", "status") else target.info.kind)
                obj, created = await store.update(
                    body, namespace=ns, name=name, ctx=ctx, subresource=sub
                )
                code = 201 if created else 200
            elif method == "PATCH":
                raw, content_type = await req.body(), req.header(b"content-type")
                obj, created = await store.patch(
                    namespace=ns,
                    name=name,
                    patch=raw,
                    content_type=negotiation.media_type(content_type),
                    ctx=ctx,
                    subresource=sub,
                )
                code = 201 if created else 200
            elif method == "POST":
                # Subresources that create: pods/x/binding, pods/x/eviction, sa/x/token.
                body = await self._body(req)
                obj = await store.create(body, namespace=ns, name=name, subresource=sub, ctx=ctx)
                code = 201
            elif method == "DELETE":
                options = await self._delete_options(req, ctx)
                obj, finished = await store.delete(
                    namespace=ns, name=name, options=options, ctx=ctx
                )
                code = 200 if finished or options.get("orphanDependents") is not False else 202
            else:
                raise MethodNotAllowed(NOT_ALLOWED)
            await self._answer_object(req, send, target, ctx, obj, code)
            return
        if method == "GET":
            if _bool(req.q("watch")):
                await self._watch(req, send, target, ctx)
            else:
                await self._list(req, send, target, ctx)
            return
        if method == "POST":
            body = await self._body(req, target.info.kind)
            obj = await store.create(body, namespace=ns, ctx=ctx)
            code = 201
        elif method == "DELETE" and "deletecollection" in target.info.verbs:
            options = await self._delete_options(req, ctx)
            obj = await store.delete_collection(
                namespace=ns,
                label_selector=req.q("labelSelector"),
                field_selector=req.q("fieldSelector"),
                options=options,
                ctx=ctx,
            )
            code = 200
        else:
            raise MethodNotAllowed(NOT_ALLOWED)
        await self._answer_object(req, send, target, ctx, obj, code)

    async def _body(self, req: Request, kind: str = "") -> Any:
        """The parsed body; with the ``kind`` the endpoint decodes into, a body that does not
        parse into an object gets upstream's ``the object provided is unrecognized`` text."""
        raw = await req.body()
        try:
            body = negotiation.decode_body(raw, req.header(b"content-type"))
        except decode.BodySyntaxError as e:
            if not kind:
                raise
            raise decode.unrecognized(kind, e.decode_error, raw) from None
        if kind and body is not None and not isinstance(body, dict):
            raise decode.unrecognized(kind, decode.not_an_object(body), raw)
        return body

    # -- reading -----------------------------------------------------------------------------

    async def _list(self, req: Request, send: Send, target: Target, ctx: RequestContext) -> None:
        store = self._registry.store(target.info)
        result = await store.list(
            ctx=ctx,
            namespace=target.namespace,
            label_selector=req.q("labelSelector"),
            field_selector=req.q("fieldSelector"),
            limit=_int(req, "limit") or 0,
            continue_=req.q("continue"),
            resource_version=req.q("resourceVersion"),
            resource_version_match=req.q("resourceVersionMatch"),
        )
        form, version = negotiation.answer_form(req.header(b"accept"), listing=True)
        refusal = negotiation.not_acceptable(
            form, listing=True, type_name=_go_type(target.info, listing=True)
        )
        if refusal is not None:
            raise refusal
        if form == negotiation.TABLE:
            result = self._table(req, target, result["items"], version, result.get("metadata"))
        elif form == negotiation.PARTIAL_LIST:
            result = partial_object_metadata_list(result, version=version)
        await respond_json(
            send, 200, result, headers=warning_headers(ctx.warnings), pretty=_bool(req.q("pretty"))
        )

    def _table(
        self,
        req: Request,
        target: Target,
        objects: list[Obj],
        version: str,
        list_meta: Obj | None,
    ) -> Obj:
        from kubeling.registry.printers import build_table

        include = req.q("includeObject") or "Metadata"
        if include not in ("None", "Metadata", "Object"):
            raise BadRequest(
                f'includeObject: Unsupported value: "{include}": supported values: '
                f'"None", "Metadata", "Object"'
            )
        strategy = self._registry.store(target.info).strategy
        if include == "Object":
            # List items omit their type meta, but a row's embedded object must carry it:
            # kubectl decodes it on its own (``--sort-by``).
            info = target.info
            objects = [{"kind": info.kind, "apiVersion": info.api_version, **o} for o in objects]
        table = build_table(
            strategy, objects, now=time.time(), include_object=include, list_meta=list_meta or {}
        )
        if version != "v1":
            table["apiVersion"] = f"meta.k8s.io/{version}"
        return table

    async def _answer_object(
        self,
        req: Request,
        send: Send,
        target: Target,
        ctx: RequestContext,
        obj: Obj,
        code: int,
    ) -> None:
        form, version = negotiation.answer_form(req.header(b"accept"), listing=False)
        refusal = negotiation.not_acceptable(
            form, listing=False, type_name=_go_type(target.info, listing=False)
        )
        if refusal is not None:
            if req.method == "GET":
                raise refusal
            form = ""  # a write is done; its answer falls back to the object itself
        # A status subresource answers the whole object, which prints like the object.
        if form and obj.get("kind") != "Status" and target.subresource in ("", "status"):
            if form == negotiation.TABLE:
                obj = self._table(req, target, [obj], version, {"resourceVersion": ""})
            else:
                obj = partial_object_metadata(obj, version=version)
        await respond_json(
            send, code, obj, headers=warning_headers(ctx.warnings), pretty=_bool(req.q("pretty"))
        )

    async def _watch(self, req: Request, send: Send, target: Target, ctx: RequestContext) -> None:
        store = self._registry.store(target.info)
        timeout: float | None = _int(req, "timeoutSeconds")
        if timeout is None or timeout <= 0:
            # Spread out when idle watches end, so that reflectors do not re-list in step.
            timeout = DEFAULT_WATCH_SECONDS * (1 + random.random())
        form, version = negotiation.answer_form(req.header(b"accept"), listing=False)
        refusal = negotiation.not_acceptable(
            form, listing=False, type_name=_go_type(target.info, listing=False)
        )
        if refusal is not None:
            raise refusal
        table = version if form == negotiation.TABLE else ""
        partial = version if form == negotiation.PARTIAL else ""
        field_selector = req.q("fieldSelector")
        if target.name:
            by_name = f"metadata.name={target.name}"
            field_selector = f"{field_selector},{by_name}" if field_selector else by_name
        events: AsyncIterator[Any] = store.watch(
            ctx=ctx,
            namespace=target.namespace,
            label_selector=req.q("labelSelector"),
            field_selector=field_selector,
            resource_version=req.q("resourceVersion"),
            allow_bookmarks=_bool(req.q("allowWatchBookmarks")),
            send_initial_events=_bool(req.q("sendInitialEvents"))
            if "sendInitialEvents" in req.query
            else None,
        )
        content_type = b"application/json"
        if form:
            content_type = f"application/json;as={form};v={version};g=meta.k8s.io".encode()
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [
                    (b"content-type", content_type),
                    (b"cache-control", b"no-cache, private"),
                    *warning_headers(ctx.warnings),
                ],
            }
        )

        first_table = True

        async def pump() -> None:
            nonlocal first_table
            try:
                async for event in events:
                    etype, obj = _event_parts(event)
                    if table and etype not in ("ERROR", "BOOKMARK"):
                        obj = self._table(req, target, [obj], table, {"resourceVersion": ""})
                        if not first_table:
                            # Upstream sends column definitions with the first event only.
                            obj["columnDefinitions"] = []
                        first_table = False
                    elif partial and etype != "ERROR":
                        obj = partial_object_metadata(obj, version=partial)
                    line = orjson.dumps({"type": etype, "object": obj}) + b"\n"
                    await send({"type": "http.response.body", "body": line, "more_body": True})
            except Gone as e:
                line = orjson.dumps({"type": "ERROR", "object": e.to_status()}) + b"\n"
                await send({"type": "http.response.body", "body": line, "more_body": True})
            except StatusError as e:
                line = orjson.dumps({"type": "ERROR", "object": e.to_status()}) + b"\n"
                await send({"type": "http.response.body", "body": line, "more_body": True})

        async def disconnected() -> None:
            while True:
                message = await req.receive()
                if message["type"] == "http.disconnect":
                    return

        tasks = [
            asyncio.ensure_future(pump()),
            asyncio.ensure_future(disconnected()),
            asyncio.ensure_future(self._stopping.wait()),
        ]
        try:
            await asyncio.wait(tasks, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for t in tasks:
                t.cancel()
            for t in tasks:
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await t
            close = getattr(events, "aclose", None)
            if close is not None:
                with contextlib.suppress(Exception):
                    await close()
            if tasks[0].done() and not tasks[0].cancelled() and tasks[0].exception():
                log.error(
                    "Watch of %s failed.", target.info.qualified, exc_info=tasks[0].exception()
                )
        with contextlib.suppress(Exception):
            await send({"type": "http.response.body", "body": b"", "more_body": False})

    # -- deleting ----------------------------------------------------------------------------

    async def _delete_options(self, req: Request, ctx: RequestContext) -> Obj:
        """DeleteOptions from the body (kubectl's way) merged with query parameters."""
        raw = await req.body()
        options: Obj = {}
        if raw.strip():
            parsed = negotiation.decode_body(raw, req.header(b"content-type"))
            if not isinstance(parsed, dict):
                raise BadRequest("DeleteOptions must be an object")
            options = dict(parsed)
        grace = _int(req, "gracePeriodSeconds")
        if grace is not None:
            options["gracePeriodSeconds"] = grace
        if req.q("propagationPolicy"):
            options["propagationPolicy"] = req.q("propagationPolicy")
        if "orphanDependents" in req.query:
            options["orphanDependents"] = _bool(req.q("orphanDependents"))
        dry = options.get("dryRun") or []
        if dry:
            ctx.dry_run = _dry_run(req.method, list(dry))
        elif ctx.dry_run:
            options["dryRun"] = ["All"]
        return options


def _event_parts(event: Any) -> tuple[str, Obj]:
    if isinstance(event, tuple):
        return event[0], event[1]
    if isinstance(event, dict):
        return event["type"], event["object"]
    return event.type, event.object


async def respond_plain(send: Send, text: str) -> None:
    await respond(send, 200, text.encode(), content_type=b"text/plain; charset=utf-8")


def _go_type(info: ResourceInfo, *, listing: bool) -> str:
    """The Go type upstream names in a 406 (its internal API package and kind)."""
    package = info.group.split(".")[0] if info.group and info.group != "events.k8s.io" else "core"
    return f"*{package}.{info.kind}{'List' if listing else ''}"
