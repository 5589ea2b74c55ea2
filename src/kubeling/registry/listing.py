"""The list path of the generic store: label and field selectors, and the paged,
revision-pinned ``<Kind>List`` upstream's etcd store answers (``store.go`` ``GetList``).

Paging follows upstream's contract rather than an offset: a page ends with a continue
token naming the last key returned and the revision the first page was read at, and every
later page reads at that same revision, so a paged list is one consistent snapshot. When
the backend has compacted that revision the client gets the 410 with a fresh token that
goes on at the latest revision instead (upstream's inconsistent continue). A read at a
resourceVersion the store has not reached waits for it briefly (``wait_until_fresh``),
as upstream's watch cache does, before the 504. Parsing and validating the options
themselves is ``options``'s job.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from typing import Final

from kubeling.machinery import selectors
from kubeling.machinery.errors import BadRequest, Gone
from kubeling.machinery.types import Obj
from kubeling.registry import codec
from kubeling.registry.context import RequestContext
from kubeling.registry.options import (
    ExpiredContinue,
    decode_continue,
    encode_continue,
    parse_resource_version,
    too_large_resource_version,
    validate_list_options,
)
from kubeling.registry.storebase import StoreBase
from kubeling.registry.strategy import Strategy
from kubeling.storage.interface import Compacted, FutureRevision, StoreClosed, WatchLagging

_EXPIRED_CONTINUE_MSG: Final = (
    "The provided continue parameter is too old to display a consistent list result. You can "
    "start a new list without the continue parameter, or use the continue token in this "
    "response to retrieve the remainder of the results. Continuing with the provided token "
    "results in an inconsistent list - objects that were created, modified, or deleted "
    "between the time the first chunk was returned and now may show up in the list."
)
_EXPIRED_LIST_MSG: Final = "The resourceVersion for the provided list is too old."


class ListingMixin(StoreBase):
    """``list`` and what reads share with it: selector matching and the freshness wait."""

    def _matcher(self, label_selector: str, field_selector: str) -> Callable[[Obj], bool] | None:
        labels = selectors.parse_label_selector(label_selector) if label_selector else None
        fields = selectors.parse_field_selector(field_selector) if field_selector else None
        if labels is not None and labels.empty:
            labels = None
        if fields is not None:
            if fields.empty:
                fields = None
            elif self.strategy.field_selector_labels:
                fields = fields.check_supported(self._supported_fields())
            elif type(self.strategy).field_labels is Strategy.field_labels:
                fields = fields.check_supported(selectors.DEFAULT_FIELDS, generic=True)
            # TODO(#2): a strategy with field_labels but no field_selector_labels declared
            # accepts any label (unknown ones read as ""), instead of upstream's 400.
        if labels is None and fields is None:
            return None

        def match(obj: Obj) -> bool:
            m = obj.get("metadata") or {}
            if labels is not None and not labels.matches(m.get("labels") or {}):
                return False
            return fields is None or fields.matches(self.field_set(obj))

        return match

    def _supported_fields(self) -> set[str]:
        names = set(selectors.DEFAULT_FIELDS)
        names.update(self.strategy.field_selector_labels)
        return names

    def field_set(self, obj: Obj) -> dict[str, str]:
        m = obj.get("metadata") or {}
        out = {"metadata.name": m.get("name") or "", "metadata.namespace": m.get("namespace") or ""}
        out.update(self.strategy.field_labels(obj))
        return out

    async def list(
        self,
        *,
        namespace: str = "",
        label_selector: str = "",
        field_selector: str = "",
        limit: int = 0,
        continue_: str = "",
        resource_version: str = "",
        resource_version_match: str = "",
        ctx: RequestContext | None = None,
    ) -> Obj:
        """A ``<Kind>List``, paged by ``limit``/``continue`` as upstream's etcd store pages."""
        match = self._matcher(label_selector, field_selector)
        prefix = codec.key_prefix(self.info, self._ns(namespace))
        revision, start_after = await self._list_start(
            prefix, continue_, resource_version, resource_version_match, limit
        )
        items: list[Obj] = []
        more = False
        last_key = ""
        read_revision = revision
        while True:
            want = 0 if limit <= 0 else max(limit - len(items), 1)
            try:
                result = await self._backend.list(
                    prefix, start_after=start_after, limit=want, revision=read_revision
                )
            except Compacted:
                if continue_:
                    raise self._expired_continue(start_after, prefix) from None
                raise Gone(_EXPIRED_LIST_MSG) from None
            except FutureRevision as e:
                raise too_large_resource_version(e.requested, e.current) from None
            # Later pages of this list must come from the same revision.
            read_revision = result.revision
            for kv in result.items:
                last_key = kv.key
                obj = codec.decode_kv(kv)
                if match is None or match(obj):
                    items.append(self.to_served(obj))
            more = result.more
            if not more or limit <= 0 or len(items) >= limit:
                break
            start_after = last_key
        token = ""
        remaining: int | None = None
        if more and limit > 0 and last_key:
            token = encode_continue(last_key, prefix, read_revision)
            if match is None:
                # upstream counts the rest only when no selector filters it (etcd's Count).
                tail = await self._backend.list(
                    prefix, start_after=last_key, revision=read_revision
                )
                remaining = len(tail.items)
        return codec.list_object(
            self.info, items, revision=read_revision, continue_=token, remaining=remaining
        )

    async def _list_start(
        self,
        prefix: str,
        continue_: str,
        resource_version: str,
        match: str,
        limit: int,
    ) -> tuple[int, str]:
        """The revision to read at and the key to start after."""
        validate_list_options(resource_version=resource_version, match=match, continue_=continue_)
        if continue_:
            if resource_version and resource_version != "0":
                raise BadRequest("specifying resource version is not allowed when using continue")
            rev, start = decode_continue(continue_, prefix)
            return rev, start
        if not resource_version or resource_version == "0":
            return 0, ""
        rv = parse_resource_version(resource_version)
        current = await self._backend.current_revision()
        exact = match == "Exact" or (not match and limit > 0)
        if exact:
            return rv, ""
        if rv > current:
            await self.wait_until_fresh(rv, current=current)
        return 0, ""

    async def wait_until_fresh(self, rv: int, *, current: int) -> None:
        """upstream ``waitUntilFreshAndBlock``: a read at a resourceVersion newer than the
        store waits up to ``fresh_wait`` seconds for the store to reach it (another writer
        may be about to), then answers ``too_large_resource_version``."""
        wait = self._deps.fresh_wait
        if wait > 0:
            events = aiter(self._backend.watch("", after_revision=current))
            try:
                async with asyncio.timeout(wait):
                    async for event in events:
                        if event.kv.mod_revision >= rv:
                            return
            except (TimeoutError, StoreClosed, WatchLagging, Compacted):
                pass
            finally:
                aclose = getattr(events, "aclose", None)
                if aclose is not None:
                    with contextlib.suppress(Exception):
                        await aclose()
            current = await self._backend.current_revision()
            if rv <= current:
                return
        raise too_large_resource_version(rv, current)

    def _expired_continue(self, start_after: str, prefix: str) -> Gone:
        """upstream ``handleCompactedErrorForPaging``: 410 with a token (rv -1) that goes on
        at the latest revision, for clients that accept an inconsistent list."""
        return ExpiredContinue(
            _EXPIRED_CONTINUE_MSG, continue_token=encode_continue(start_after, prefix, -1)
        )
