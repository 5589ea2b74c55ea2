"""The in-process transport of ``Client``: calls the registry directly, skipping HTTP.

In the single-process ``kubeling up`` the controllers, scheduler, agent and DNS share the API
server's event loop, so serialising every object to JSON and back over loopback TLS would be
pure overhead. This client does what the HTTP edge does instead, with no wire: it builds the
``RequestContext`` the edge would (user, field manager, user agent, dry run, force, and
``Warn`` field validation, what the edge assumes when a client sends no ``fieldValidation``),
encodes patches to the bytes and content type the edge would receive, ends watches after
``timeoutSeconds`` and turns the store's ``(type, object)`` pairs into ``WatchEvent``s.

The one thing HTTP gives for free is isolation: a decoded response is the caller's own. So
every object crosses this boundary as a deep copy, both ways, and code above can mutate what
it gets back without corrupting the registry's state (or another watcher's events). The copy
is ``objects.deep_copy`` (an orjson round trip, what a decoded response is anyway) rather
than ``copy.deepcopy``, which dominated the cost of each write.
"""

from __future__ import annotations

import asyncio
import builtins
import logging
from collections.abc import AsyncIterator
from typing import Any

import orjson

from kubeling.client.interface import PATCH_CONTENT_TYPES, PatchType, WatchEvent
from kubeling.machinery.objects import (
    deep_copy,
    partial_object_metadata,
    partial_object_metadata_list,
)
from kubeling.machinery.types import Obj, ResourceInfo
from kubeling.registry.context import SYSTEM, RequestContext, UserInfo

log = logging.getLogger(__name__)

USER_AGENT = "kubeling"


class LocalClient:
    """``Client`` over a ``registry.Registry`` in the same process."""

    def __init__(
        self,
        registry: Any,
        *,
        user: UserInfo = SYSTEM,
        field_manager: str = "",
        user_agent: str = USER_AGENT,
    ) -> None:
        self.registry = registry
        self.user = user
        self.field_manager = field_manager
        self.user_agent = user_agent
        self.namespace = "default"
        """Mirrors ``HttpClient.namespace`` (a kubeconfig context's namespace)."""
        self.warnings: list[str] = []
        """Warnings the registry attached to responses (the HTTP ``Warning`` header)."""

    def _ctx(
        self, *, field_manager: str = "", dry_run: bool = False, force: bool = False
    ) -> RequestContext:
        return RequestContext(
            user=self.user,
            field_manager=field_manager or self.field_manager,
            user_agent=self.user_agent,
            field_validation="Warn",
            dry_run=dry_run,
            force=force,
        )

    def _done(self, ctx: RequestContext) -> None:
        for text in ctx.warnings:
            if text not in self.warnings:
                self.warnings.append(text)
                log.warning("API server warning: %s", text)

    # --- Client ----------------------------------------------------------------------------

    async def get(
        self, resource: ResourceInfo, *, name: str, namespace: str = "", subresource: str = ""
    ) -> Obj:
        ctx = self._ctx()
        obj = await self.registry.store(resource).get(
            ctx=ctx, namespace=_ns(resource, namespace), name=name, subresource=subresource
        )
        self._done(ctx)
        return deep_copy(obj)

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
        ctx = self._ctx()
        result = await self.registry.store(resource).list(
            ctx=ctx,
            namespace=_ns(resource, namespace),
            label_selector=label_selector,
            field_selector=field_selector,
            limit=limit,
            continue_=continue_,
            resource_version=resource_version,
            resource_version_match="",
        )
        self._done(ctx)
        if metadata_only:
            return deep_copy(partial_object_metadata_list(result))
        return deep_copy(result)

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
        ctx = self._ctx()
        events = self.registry.store(resource).watch(
            ctx=ctx,
            namespace=_ns(resource, namespace),
            label_selector=label_selector,
            field_selector=field_selector,
            resource_version=resource_version,
            allow_bookmarks=allow_bookmarks,
        )
        iterator = aiter(events)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_seconds if timeout_seconds else None
        try:
            while True:
                try:
                    if deadline is None:
                        event = await anext(iterator)
                    else:
                        remaining = deadline - loop.time()
                        if remaining <= 0:
                            return
                        async with asyncio.timeout(remaining):
                            event = await anext(iterator)
                except StopAsyncIteration:
                    return
                except TimeoutError:
                    # timeoutSeconds elapsed: the HTTP edge closes the stream cleanly.
                    return
                etype, obj = _event_parts(event)
                if etype == "BOOKMARK" and not allow_bookmarks:
                    continue
                if metadata_only and etype != "ERROR":
                    # Only the metadata is copied: the point of asking for it.
                    obj = partial_object_metadata(obj)
                yield WatchEvent(type=etype, object=deep_copy(obj))
        finally:
            aclose = getattr(iterator, "aclose", None)
            if aclose is not None:
                await aclose()

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
        ctx = self._ctx(field_manager=field_manager, dry_run=dry_run)
        namespace = namespace or (obj.get("metadata") or {}).get("namespace") or ""
        kwargs: dict[str, Any] = {"namespace": _ns(resource, namespace), "ctx": ctx}
        if subresource:
            kwargs["name"] = name
            kwargs["subresource"] = subresource
        out = await self.registry.store(resource).create(deep_copy(obj), **kwargs)
        self._done(ctx)
        return deep_copy(out)

    async def update(
        self,
        resource: ResourceInfo,
        obj: Obj,
        *,
        subresource: str = "",
        dry_run: bool = False,
        field_manager: str = "",
    ) -> Obj:
        ctx = self._ctx(field_manager=field_manager, dry_run=dry_run)
        meta = obj.get("metadata") or {}
        out, _created = await self.registry.store(resource).update(
            deep_copy(obj),
            namespace=_ns(resource, meta.get("namespace") or ""),
            name=meta.get("name") or "",
            ctx=ctx,
            subresource=subresource,
        )
        self._done(ctx)
        return deep_copy(out)

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
        ctx = self._ctx(field_manager=field_manager, dry_run=dry_run, force=force)
        out, _created = await self.registry.store(resource).patch(
            namespace=_ns(resource, namespace),
            name=name,
            patch=orjson.dumps(patch),
            content_type=PATCH_CONTENT_TYPES[patch_type],
            ctx=ctx,
            subresource=subresource,
        )
        self._done(ctx)
        return deep_copy(out)

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
        ctx = self._ctx(dry_run=dry_run)
        options: Obj = {}
        if grace_period_seconds is not None:
            options["gracePeriodSeconds"] = grace_period_seconds
        if propagation_policy:
            options["propagationPolicy"] = propagation_policy
        if preconditions:
            options["preconditions"] = deep_copy(preconditions)
        if dry_run:
            options["dryRun"] = ["All"]
        out, _finished = await self.registry.store(resource).delete(
            namespace=_ns(resource, namespace), name=name, options=options, ctx=ctx
        )
        self._done(ctx)
        return deep_copy(out)

    async def close(self) -> None:
        """Nothing to release: the registry belongs to whoever opened it."""


def _ns(resource: ResourceInfo, namespace: str) -> str:
    # The URL of a cluster-scoped resource has no namespace segment, so the HTTP edge never
    # sees one; drop it here too.
    return namespace if resource.namespaced else ""


def _event_parts(event: Any) -> tuple[Any, Obj]:
    if isinstance(event, tuple):
        return event[0], event[1]
    return event.type, event.object
