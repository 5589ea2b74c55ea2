"""The generic REST store: what every resource does the same way, as upstream's
``registry/generic/registry.Store`` does it.

A write is a fixed sequence of steps, each named after its upstream counterpart so the code
can be read side by side with ``store.go`` and ``rest/create.go``/``update.go``/
``delete.go``: decode (type meta, strict fields), default, mutating admission, prepare
(``BeforeCreate``/``BeforeUpdate``: metadata the server owns, status split, generation),
validate (ObjectMeta, then the kind's rules), validating admission, then one
compare-and-swap on the backend. Updates run in a loop that re-reads and retries when the
swap loses a race (``GuaranteedUpdate``), unless the client named the resourceVersion it
expects, in which case the loss is the client's 409.

The pipeline works on the *internal* form, which is the stored one (core/v1 for
events.k8s.io Events, as upstream's internal version): request bodies are converted in,
answers converted out (``conversion``), and only validation sees the request's version.
Reads put the revision back as ``resourceVersion`` (``codec``).
"""

from __future__ import annotations

import asyncio
import builtins
import contextlib
import copy
import logging
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TYPE_CHECKING, Any, Final

import orjson

from kubeling.machinery import decode as decoding
from kubeling.machinery import managedfields, selectors
from kubeling.machinery import schema as schemas
from kubeling.machinery.errors import (
    AlreadyExists,
    BadRequest,
    Conflict,
    Gone,
    Invalid,
    NotFound,
    StatusError,
)
from kubeling.machinery.field import FieldError, invalid_error
from kubeling.machinery.types import Obj, ResourceInfo, WatchEventType
from kubeling.registry import codec, conversion, meta
from kubeling.registry.admission import Attributes, Chain, Operation
from kubeling.registry.context import RequestContext
from kubeling.registry.options import (
    PROPAGATION_POLICIES,
    ExpiredContinue,
    decode_continue,
    delete_options,
    encode_continue,
    parse_resource_version,
    too_large_resource_version,
    validate_list_options,
)
from kubeling.registry.patching import apply_patch, parse_patch, patch_type
from kubeling.registry.strategy import Strategy
from kubeling.storage.interface import (
    Backend,
    Compacted,
    FutureRevision,
    KeyExists,
    KeyNotFound,
    KeyValue,
    RevisionMismatch,
    StoreClosed,
    WatchLagging,
)

if TYPE_CHECKING:
    from kubeling.registry.subresources import Subresource

log = logging.getLogger(__name__)

# Anything orjson would change on the way through (YAML timestamps, dict subclasses such as
# decode's DuplicateKeysDict, integers beyond 64 bits, non-string keys) makes it raise here.
_COPY_STRICT: Final = orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_SUBCLASS


def _copy_body(obj: Obj) -> Obj:
    """A deep copy of a request body on the write path. An orjson round trip costs about a
    seventh of ``copy.deepcopy`` on a 1 KB ConfigMap (5 vs 38 us; two or three copies per
    create or update, see bench/README.md); what it cannot carry unchanged falls back to
    ``copy.deepcopy``. (NaN comes back null, as ``codec.encode`` would store it anyway.)"""
    try:
        out: Obj = orjson.loads(orjson.dumps(obj, option=_COPY_STRICT))
    except TypeError:
        return copy.deepcopy(obj)
    return out


OPTIMISTIC_LOCK_MSG: Final = (
    "the object has been modified; please apply your changes to the latest version and try again"
)
NAMESPACE_MISMATCH_MSG: Final = (
    "the namespace of the provided object does not match the namespace sent on the request"
)
INITIAL_EVENTS_END: Final = "k8s.io/initial-events-end"
_MAX_ATTEMPTS: Final = 16
_GENERATE_NAME_ATTEMPTS: Final = 8
_EXPIRED_CONTINUE_MSG: Final = (
    "The provided continue parameter is too old to display a consistent list result. You can "
    "start a new list without the continue parameter, or use the continue token in this "
    "response to retrieve the remainder of the results. Continuing with the provided token "
    "results in an inconsistent list - objects that were created, modified, or deleted "
    "between the time the first chunk was returned and now may show up in the list."
)
_EXPIRED_LIST_MSG: Final = "The resourceVersion for the provided list is too old."
# upstream's ReturnDeletedObject: these registries answer a finished DELETE with the object,
# the others with a Success Status.
_RETURNS_DELETED_OBJECT: Final = frozenset(
    {
        ("", "pods"),
        ("", "serviceaccounts"),
        ("", "persistentvolumes"),
        ("", "persistentvolumeclaims"),
        ("", "namespaces"),
        ("", "services"),
    }
)


FRESH_WAIT: Final = 3.0
"""upstream's watch cache ``blockTimeout``: how long a read at a resourceVersion the store has
not reached yet waits for it before the 504 ``Too large resource version``."""


class _HexZero:
    """Renders as ``0x0``: upstream prints the missing update resourceVersion (a uint64)
    with ``%#v``, and kubectl users know the text ``Invalid value: 0x0``."""

    def __repr__(self) -> str:
        return "0x0"


class Deps:
    """What a store needs from the registry that owns it (kept small for tests)."""

    def __init__(
        self,
        *,
        backend: Backend,
        clock: Callable[[], float],
        admission: Chain,
        bookmark_interval: float,
        subresource_factory: Callable[[ResourceStore, str], Subresource] | None = None,
        fresh_wait: float = FRESH_WAIT,
    ) -> None:
        self.backend = backend
        self.clock = clock
        self.admission = admission
        self.bookmark_interval = bookmark_interval
        self.fresh_wait = fresh_wait
        self.subresource_factory = subresource_factory


class ResourceStore:
    """One served resource's REST verbs over the backend.

    Every method takes the namespace from the URL (ignored for cluster-scoped resources)
    and returns JSON-shaped dicts in the served version. Errors are ``StatusError``s with
    upstream's reason, code and message.
    """

    def __init__(self, *, info: ResourceInfo, strategy: Strategy, deps: Deps) -> None:
        self.info = info
        self.strategy = strategy
        self._deps = deps
        self._backend = deps.backend
        self._to_storage, self._from_storage = conversion.converters(info)
        self._subresources: dict[str, Subresource] = {}

    # -- small helpers -------------------------------------------------------------------------

    def _ns(self, namespace: str) -> str:
        return namespace if self.info.namespaced else ""

    def _key(self, namespace: str, name: str) -> str:
        return codec.object_key(self.info, namespace=self._ns(namespace), name=name)

    def now(self) -> float:
        return self._deps.clock()

    def not_found(self, name: str) -> NotFound:
        return NotFound.for_object(resource=self.info.plural, group=self.info.group, name=name)

    def conflict(self, name: str, detail: str = OPTIMISTIC_LOCK_MSG) -> Conflict:
        return Conflict.for_object(
            resource=self.info.plural, group=self.info.group, name=name, detail=detail
        )

    def invalid(self, name: str, errors: list[FieldError]) -> Invalid:
        return invalid_error(kind=self.info.kind, group=self.info.group, name=name, errors=errors)

    # The write pipeline (strategy hooks, admission, selectors) works on the *internal*
    # form, which is the stored one (core/v1 Events for events.k8s.io too, as upstream's
    # internal version); request bodies are converted in, answers converted out.

    def served(self, kv: KeyValue) -> Obj:
        """The object at ``kv`` in the served version, with its resourceVersion."""
        return self.to_served(codec.decode_kv(kv))

    def to_served(self, internal: Obj) -> Obj:
        return codec.with_type_meta(self.info, self._from_storage(internal))

    def to_internal(self, served: Obj) -> Obj:
        return self._to_storage(served)

    def _for_validation(self, internal: Obj) -> Obj:
        """Validation sees the request's version, as upstream validates an events.k8s.io
        Event by that API's rules (``eventTime``, ``action``... required); every other hook
        sees the internal form."""
        if self._to_storage is self._from_storage:
            return internal
        return self.to_served(internal)

    def _stored_bytes(self, internal: Obj) -> bytes:
        return codec.encode(internal)

    async def read(self, namespace: str, name: str) -> tuple[KeyValue, Obj]:
        """The current object (internal form) and its key-value; ``NotFound`` if absent."""
        kv = await self._backend.get(self._key(namespace, name))
        if kv is None:
            raise self.not_found(name)
        return kv, codec.decode_kv(kv)

    def _decode_body(self, obj: Obj, ctx: RequestContext) -> Obj:
        """Type meta and strict field checks on a request body (``fieldValidation``)."""
        if not isinstance(obj, dict):
            raise decoding.cannot_be_handled(
                self.info.gvk, "json: cannot unmarshal array into Go value of type struct"
            )
        decoding.check_type_meta(obj, gvk=self.info.gvk)
        out, warnings = decoding.decode_object(obj, gvk=self.info.gvk, mode=ctx.field_validation)
        for text in warnings:
            ctx.warn(text)
        out = codec.drop_empty(_copy_body(out), self.info.gvk)
        out["apiVersion"] = self.info.api_version
        out["kind"] = self.info.kind
        if not isinstance(out.get("metadata"), dict):
            out["metadata"] = {}
        return self.to_internal(out)

    async def _admit(
        self,
        phase: str,
        op: Operation,
        obj: Obj | None,
        old: Obj | None,
        *,
        namespace: str,
        name: str,
        ctx: RequestContext,
        subresource: str = "",
    ) -> None:
        attrs = Attributes(
            operation=op,
            info=self.info,
            namespace=self._ns(namespace),
            name=name,
            obj=obj,
            old=old,
            subresource=subresource,
            ctx=ctx,
        )
        if phase == "admit":
            await self._deps.admission.admit(attrs)
        else:
            await self._deps.admission.validate(attrs)

    def _manager(self, ctx: RequestContext) -> str:
        return meta.manager_name(ctx.field_manager, ctx.user_agent)

    def _track_fields(
        self, new: Obj, old: Obj | None, *, ctx: RequestContext, operation: str, subresource: str
    ) -> None:
        """Record a write in managedFields (``machinery.managedfields.track_update``); an
        Apply already recorded its entry when it merged. Fields the write cannot own
        (status on the main resource, spec through /status) are upstream's reset fields."""
        if operation == "Apply":
            return
        managedfields.track_update(
            old,
            new,
            manager=self._manager(ctx),
            schema=schemas.for_kind(self.info.gvk),
            api_version=self.info.api_version,
            now=meta.rfc3339(self.now()),
            subresource=subresource,
            ignored=managedfields.reset_fields(
                subresource, status_subresource=self.strategy.status_subresource
            ),
        )

    # -- subresources ------------------------------------------------------------------------

    def subresource(self, name: str) -> Subresource:
        """The handler of ``<resource>/<name>`` (``status``, ``scale``, ``binding``,
        ``finalize``); ``NotFound`` when this resource does not serve it."""
        if name not in self.info.subresources or self._deps.subresource_factory is None:
            raise NotFound("the server could not find the requested resource")
        sub = self._subresources.get(name)
        if sub is None:
            sub = self._deps.subresource_factory(self, name)
            self._subresources[name] = sub
        return sub

    # -- get / list ----------------------------------------------------------------------------

    async def get(
        self,
        *,
        namespace: str,
        name: str,
        subresource: str = "",
        ctx: RequestContext | None = None,
    ) -> Obj:
        if subresource:
            return await self.subresource(subresource).get(namespace=namespace, name=name)
        _kv, obj = await self.read(namespace, name)
        return self.to_served(obj)

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

    # -- watch ---------------------------------------------------------------------------------

    def watch(
        self,
        *,
        namespace: str = "",
        label_selector: str = "",
        field_selector: str = "",
        resource_version: str = "",
        allow_bookmarks: bool = False,
        send_initial_events: bool | None = None,
        ctx: RequestContext | None = None,
    ) -> AsyncIterator[tuple[WatchEventType, Obj]]:
        """Events as ``(type, object)``; see ``_watch`` for the semantics."""
        match = self._matcher(label_selector, field_selector)
        if resource_version and resource_version != "0":
            parse_resource_version(resource_version)
        return self._watch(
            namespace=namespace,
            match=match,
            resource_version=resource_version,
            allow_bookmarks=allow_bookmarks,
            send_initial_events=send_initial_events,
        )

    async def _watch(
        self,
        *,
        namespace: str,
        match: Callable[[Obj], bool] | None,
        resource_version: str,
        allow_bookmarks: bool,
        send_initial_events: bool | None,
    ) -> AsyncIterator[tuple[WatchEventType, Obj]]:
        """Upstream's watch semantics.

        ``""``/``"0"``: synthetic ADDED events for the current matching objects, then
        changes (``send_initial_events=False`` skips the synthetic events). ``N``: changes
        after N; too old raises ``Gone`` at the first iteration. ``send_initial_events=True``
        ends the initial events with a BOOKMARK annotated ``k8s.io/initial-events-end``.
        Selector transitions turn into ADDED/DELETED as upstream's cacher does. Bookmarks
        (when allowed) follow every ``bookmark_interval`` seconds of quiet.
        """
        prefix = codec.key_prefix(self.info, self._ns(namespace))
        initial = resource_version in ("", "0") and send_initial_events is not False
        if send_initial_events and resource_version not in ("", "0"):
            initial = True
            # upstream's cacher waits for a watch list to be at least as fresh as asked (an
            # ERROR event after the wait); a plain watch from a future resourceVersion is
            # established at once and simply waits for the store to get there.
            rv = int(resource_version)
            current = await self._backend.current_revision()
            if rv > current:
                await self.wait_until_fresh(rv, current=current)
        start: int
        if initial:
            result = await self._backend.list(prefix)
            start = result.revision
            for kv in result.items:
                obj = codec.decode_kv(kv)
                if match is None or match(obj):
                    yield "ADDED", self.to_served(obj)
            if send_initial_events:
                yield (
                    "BOOKMARK",
                    codec.bookmark(self.info, start, annotations={INITIAL_EVENTS_END: "true"}),
                )
        elif resource_version in ("", "0"):
            start = await self._backend.current_revision()
        else:
            start = int(resource_version)

        events = aiter(self._backend.watch(prefix, after_revision=start))
        last = start
        pending: asyncio.Task[Any] | None = None
        interval = self._deps.bookmark_interval
        try:
            while True:
                if pending is None:
                    pending = asyncio.ensure_future(anext(events))
                if allow_bookmarks and interval > 0:
                    done, _ = await asyncio.wait({pending}, timeout=interval)
                    if not done:
                        yield "BOOKMARK", codec.bookmark(self.info, last)
                        continue
                try:
                    event = await pending
                except StopAsyncIteration:
                    return
                except Compacted as e:
                    raise Gone(
                        f"too old resource version: {resource_version} ({e.oldest})"
                    ) from None
                except WatchLagging as e:
                    yield "ERROR", Gone(f"watch closed: {e}; relist and watch again").to_status()
                    return
                except StoreClosed:
                    return
                finally:
                    pending = None
                last = event.kv.mod_revision
                out = self._watch_event(event, match)
                if out is not None:
                    yield out
        finally:
            if pending is not None:
                pending.cancel()
                # Retrieve whatever it ends with, so nothing is logged as unhandled.
                pending.add_done_callback(_swallow)
            aclose = getattr(events, "aclose", None)
            if aclose is not None:
                try:
                    await aclose()
                except (RuntimeError, StatusError, StoreClosed, WatchLagging, Compacted):
                    pass

    def _watch_event(
        self, event: Any, match: Callable[[Obj], bool] | None
    ) -> tuple[WatchEventType, Obj] | None:
        rev = event.kv.mod_revision
        if event.type == "DELETE":
            prev = event.prev or event.kv
            obj = codec.decode(prev.value, rev)
            if match is None or match(obj):
                return "DELETED", self.to_served(obj)
            return None
        cur = codec.decode_kv(event.kv)
        cur_ok = match is None or match(cur)
        if event.prev is None:
            return ("ADDED", self.to_served(cur)) if cur_ok else None
        if match is None:
            return "MODIFIED", self.to_served(cur)
        old = codec.decode(event.prev.value, rev)
        old_ok = match(old)
        if cur_ok and old_ok:
            return "MODIFIED", self.to_served(cur)
        if cur_ok:
            return "ADDED", self.to_served(cur)
        if old_ok:
            # upstream's cacher: the previous content, with the event's resourceVersion.
            return "DELETED", self.to_served(old)
        return None

    # -- create --------------------------------------------------------------------------------

    async def create(
        self,
        obj: Obj,
        *,
        namespace: str,
        ctx: RequestContext,
        name: str = "",
        subresource: str = "",
    ) -> Obj:
        """POST to the collection (or, with ``subresource``, to ``<name>/<subresource>``)."""
        if subresource:
            return await self.subresource(subresource).create(
                obj, namespace=namespace, name=name, ctx=ctx
            )
        body = self._decode_body(obj, ctx)
        return await self.create_decoded(body, namespace=namespace, ctx=ctx)

    async def create_decoded(
        self,
        obj: Obj,
        *,
        namespace: str,
        ctx: RequestContext,
        operation: str = "Update",
    ) -> Obj:
        """Create from a decoded body (also the create-on-update and apply-create path)."""
        ns = self._ns(namespace)
        m = obj["metadata"]
        if self.info.namespaced and not ns:
            # Only in-process callers omit it; the URL of a namespaced create always has it.
            ns = m.get("namespace") or ""
        if self.info.namespaced:
            body_ns = m.get("namespace") or ""
            if body_ns and ns and body_ns != ns:
                raise BadRequest(NAMESPACE_MISMATCH_MSG)
            if ns:
                m["namespace"] = ns
        else:
            m.pop("namespace", None)
        # upstream's storage refuses it (after validation and admission, never on a dry run)
        rv_set = _nonzero_resource_version(m.get("resourceVersion"))
        self.strategy.default(obj)
        generated = not m.get("name") and bool(m.get("generateName"))
        for attempt in range(_GENERATE_NAME_ATTEMPTS if generated else 1):
            candidate = _copy_body(obj)
            cm = candidate["metadata"]
            if generated:
                cm["name"] = meta.generate_name(cm["generateName"])
            prepared = await self._before_create(candidate, ns=ns, ctx=ctx, operation=operation)
            name = prepared["metadata"]["name"]
            if ctx.dry_run:
                if await self._backend.get(self._key(ns, name)) is not None:
                    raise AlreadyExists.for_object(
                        resource=self.info.plural, group=self.info.group, name=name
                    )
                return self.to_served(prepared)
            if rv_set:
                raise _ResourceVersionSetOnCreate(
                    "resourceVersion should not be set on objects to be created"
                )
            try:
                kv = await self._backend.create(self._key(ns, name), self._stored_bytes(prepared))
            except KeyExists:
                if generated and attempt + 1 < _GENERATE_NAME_ATTEMPTS:
                    continue
                raise AlreadyExists.for_object(
                    resource=self.info.plural, group=self.info.group, name=name
                ) from None
            log.debug(
                "Created %s %s/%s at revision %d.", self.info.qualified, ns, name, kv.mod_revision
            )
            return self.served(kv)
        raise AssertionError("unreachable")

    async def _before_create(
        self, obj: Obj, *, ns: str, ctx: RequestContext, operation: str
    ) -> Obj:
        m = obj["metadata"]
        name = m.get("name") or ""
        await self._admit("admit", "CREATE", obj, None, namespace=ns, name=name, ctx=ctx)
        m = obj.setdefault("metadata", {})
        # rest.BeforeCreate: what the server owns on a new object.
        for key in (
            "deletionTimestamp",
            "deletionGracePeriodSeconds",
            "selfLink",
            "resourceVersion",
        ):
            m.pop(key, None)
        m["uid"] = str(uuid.uuid4())
        m["creationTimestamp"] = meta.rfc3339(self.now())
        if self.strategy.generation_tracks:
            m["generation"] = 1
        else:
            m.pop("generation", None)
        clear = self.strategy.clear_status_on_create
        if clear is None:
            clear = self.strategy.status_subresource
        if clear:
            obj.pop("status", None)
        self.strategy.prepare_for_create(obj)
        # managedFields (machinery.managedfields): an Apply recorded them when it merged.
        self._track_fields(obj, None, ctx=ctx, operation=operation, subresource="")
        errs = meta.validate_object_meta(
            obj, namespaced=self.info.namespaced, name_validation=self.strategy.name_validation
        )
        errs.extend(self.strategy.validate(self._for_validation(obj)))
        if errs:
            raise self.invalid(m.get("name") or "", errs)
        for text in self.strategy.warnings(obj):
            ctx.warn(text)
        await self._admit("validate", "CREATE", obj, None, namespace=ns, name=m["name"], ctx=ctx)
        return obj

    # -- update and patch ----------------------------------------------------------------------

    async def update(
        self,
        obj: Obj,
        *,
        namespace: str,
        name: str,
        ctx: RequestContext,
        subresource: str = "",
    ) -> tuple[Obj, bool]:
        """PUT: replace the object (``created`` is True when allow_create_on_update created
        it). ``metadata.resourceVersion`` in the body is the precondition."""
        if subresource:
            return await self.subresource(subresource).update(
                obj, namespace=namespace, name=name, ctx=ctx
            )
        body = self._decode_body(obj, ctx)
        self._check_name_and_namespace(body, namespace=namespace, name=name)
        precondition = bool(body["metadata"].get("resourceVersion"))

        async def build(_current: Obj | None) -> Obj:
            return _copy_body(body)

        return await self.guaranteed_update(
            namespace=namespace,
            name=name,
            ctx=ctx,
            build=build,
            precondition=precondition,
            uid_precondition=body["metadata"].get("uid") or "",
        )

    def _check_name_and_namespace(self, obj: Obj, *, namespace: str, name: str) -> None:
        """The update and patch handlers' ``checkName``: the body names the URL's object."""
        m = obj.setdefault("metadata", {})
        body_name = m.get("name") or ""
        if body_name != name:
            raise BadRequest(
                f"the name of the object ({body_name}) does not match the name on the URL ({name})"
            )
        ns = self._ns(namespace)
        if self.info.namespaced:
            body_ns = m.get("namespace") or ""
            if body_ns and ns and body_ns != ns:
                raise BadRequest(
                    f"the namespace of the object ({body_ns}) does not match the namespace on "
                    f"the request ({ns})"
                )
            if ns:
                m["namespace"] = ns
        else:
            m.pop("namespace", None)

    async def patch(
        self,
        *,
        namespace: str,
        name: str,
        patch: bytes,
        content_type: str,
        ctx: RequestContext,
        subresource: str = "",
    ) -> tuple[Obj, bool]:
        """PATCH with one of upstream's four patch types; apply creates a missing object."""
        if subresource:
            return await self.subresource(subresource).patch(
                namespace=namespace, name=name, patch=patch, content_type=content_type, ctx=ctx
            )
        ptype = patch_type(content_type)
        if ptype == "apply":
            return await self._apply(namespace=namespace, name=name, patch=patch, ctx=ctx)
        document = parse_patch(ptype, patch)
        precondition = b'"resourceVersion"' in patch

        async def build(current: Obj | None) -> Obj:
            if current is None:
                raise self.not_found(name)
            patched = apply_patch(ptype, current, document, info=self.info)
            return self._after_patch(patched, namespace=namespace, name=name, ctx=ctx)

        return await self.guaranteed_update(
            namespace=namespace,
            name=name,
            ctx=ctx,
            build=build,
            precondition=precondition,
            allow_create=False,
        )

    def _after_patch(self, patched: Obj, *, namespace: str, name: str, ctx: RequestContext) -> Obj:
        out = self._decode_body(patched, ctx)
        self._check_name_and_namespace(out, namespace=namespace, name=name)
        return out

    def applied_configuration(self, patch: bytes, ctx: RequestContext) -> Obj:
        """The body of an apply PATCH, checked as upstream's apply patcher does before it
        merges anything."""
        if not ctx.field_manager:
            raise BadRequest("PATCH, fieldManager is required for apply requests")
        applied = parse_patch("apply", patch)
        if not isinstance(applied, dict):
            raise BadRequest("unable to decode the apply configuration: expected an object")
        decoding.check_type_meta(applied, gvk=self.info.gvk)
        if not applied.get("apiVersion") or not applied.get("kind"):
            raise BadRequest("apiVersion and kind must be set in an apply configuration")
        decoding.check_typed_patch(applied, gvk=self.info.gvk)
        return applied

    def applied(
        self, current: Obj | None, applied: Obj, *, ctx: RequestContext, subresource: str = ""
    ) -> Obj:
        """``applied`` merged onto ``current`` by ``machinery.managedfields.apply``: prune
        what this manager stopped applying, 409 on other managers' fields unless force, the
        Apply entry. The fields ``subresource`` may not own (upstream's reset fields: status
        on the main resource, spec through ``/status``) are left out of the entry."""
        return managedfields.apply(
            current,
            applied,
            manager=ctx.field_manager,
            force=ctx.force,
            schema=schemas.for_kind(self.info.gvk),
            api_version=self.info.api_version,
            now=meta.rfc3339(self.now()),
            subresource=subresource,
            ignored=managedfields.reset_fields(
                subresource, status_subresource=self.strategy.status_subresource
            ),
        )

    async def _apply(
        self, *, namespace: str, name: str, patch: bytes, ctx: RequestContext
    ) -> tuple[Obj, bool]:
        """Server-side apply, create-if-absent (``machinery.managedfields.apply``)."""
        applied = self.applied_configuration(patch, ctx)
        precondition = bool((applied.get("metadata") or {}).get("resourceVersion"))

        async def build(current: Obj | None) -> Obj:
            merged = self.applied(current, applied, ctx=ctx)
            out = self._decode_body(merged, ctx)
            self._check_name_and_namespace(out, namespace=namespace, name=name)
            return out

        return await self.guaranteed_update(
            namespace=namespace,
            name=name,
            ctx=ctx,
            build=build,
            precondition=precondition,
            allow_create=True,
            operation="Apply",
        )

    async def guaranteed_update(
        self,
        *,
        namespace: str,
        name: str,
        ctx: RequestContext,
        build: Callable[[Obj | None], Awaitable[Obj]],
        precondition: bool,
        subresource: str = "",
        allow_create: bool | None = None,
        operation: str = "Update",
        fields_subresource: str | None = None,
        uid_precondition: str = "",
    ) -> tuple[Obj, bool]:
        """Read, build the new object from the current one, prepare, swap; retry on a lost
        race unless the client set a resourceVersion precondition (``GuaranteedUpdate``).

        ``build`` gets the current object in the served form (None when absent) and returns
        the new one in the internal form (``_decode_body`` output). ``subresource`` picks the
        status split (``"status"``) or none; ``fields_subresource`` is what the managedFields
        entry names (defaults to ``subresource``; ``scale`` writes the parent)."""
        key = self._key(namespace, name)
        if allow_create is None:
            allow_create = self.strategy.allow_create_on_update and not subresource
        for _attempt in range(_MAX_ATTEMPTS):
            kv = await self._backend.get(key)
            current = codec.decode_kv(kv) if kv is not None else None
            new = await build(self.to_served(current) if current is not None else None)
            if kv is None or current is None:
                if not allow_create:
                    raise self.not_found(name)
                new.setdefault("metadata", {}).pop("resourceVersion", None)
                try:
                    created = await self.create_decoded(
                        new, namespace=namespace, ctx=ctx, operation=operation
                    )
                except AlreadyExists:
                    continue
                return created, True
            cur_uid = current["metadata"].get("uid", "")
            if uid_precondition and uid_precondition != cur_uid:
                # upstream: a PUT body's uid is a storage precondition, checked before
                # anything else, and its failure is a Conflict wrapping the storage error.
                raise self.conflict(
                    name,
                    storage_precondition_failed(
                        key,
                        f"Precondition failed: UID in precondition: {uid_precondition}, UID in "
                        f"object meta: {cur_uid}",
                    ),
                )
            new_rv = (new.get("metadata") or {}).get("resourceVersion") or ""
            cur_rv = current["metadata"]["resourceVersion"]
            if not new_rv:
                if not self.strategy.allow_unconditional_update:
                    raise invalid_error(
                        kind=self.info.qualified,
                        group=self.info.group,
                        name=name,
                        errors=[
                            FieldError(
                                "FieldValueInvalid",
                                "metadata.resourceVersion",
                                _HexZero(),
                                "must be specified for an update",
                            )
                        ],
                    )
                new["metadata"]["resourceVersion"] = cur_rv
            elif new_rv != cur_rv:
                raise self.conflict(name)
            prepared = await self._before_update(
                new,
                current,
                ns=namespace,
                name=name,
                ctx=ctx,
                subresource=subresource,
                operation=operation,
                fields_subresource=subresource
                if fields_subresource is None
                else fields_subresource,
            )
            if self._should_delete_during_update(prepared, current):
                if ctx.dry_run:
                    return self.to_served(prepared), False
                try:
                    await self._backend.delete(key, expected_revision=kv.mod_revision)
                except (RevisionMismatch, KeyNotFound):
                    if precondition:
                        raise self.conflict(name) from None
                    continue
                return self.to_served(prepared), False
            written = await self._write_over(
                key, prepared, current=current, kv=kv, ctx=ctx, name=name, precondition=precondition
            )
            if written is not None:
                return written, False
        raise self.conflict(name)

    async def raw_update(
        self,
        *,
        namespace: str,
        name: str,
        ctx: RequestContext,
        mutate: Callable[[Obj], None],
        precondition: bool,
    ) -> Obj:
        """Change the stored object with ``mutate`` and nothing else: no strategy, no
        admission (upstream's subresources that write storage directly, e.g. binding)."""
        key = self._key(namespace, name)
        for _attempt in range(_MAX_ATTEMPTS):
            kv, current = await self.read(namespace, name)
            new = copy.deepcopy(current)
            mutate(new)
            written = await self._write_over(
                key, new, current=current, kv=kv, ctx=ctx, name=name, precondition=precondition
            )
            if written is not None:
                return written
        raise self.conflict(name)

    async def _write_over(
        self,
        key: str,
        new: Obj,
        *,
        current: Obj,
        kv: KeyValue,
        ctx: RequestContext,
        name: str,
        precondition: bool,
    ) -> Obj | None:
        """Swap ``new`` in for ``current`` (read as ``kv``) and return it as served; None when
        another writer came first and the caller should read again, which with a
        resourceVersion precondition is a Conflict instead. Shared by the update paths so
        that they agree on no-op and dry-run writes."""
        if codec.without_resource_version(new) == codec.without_resource_version(current):
            # upstream writes nothing for a no-op update: same resourceVersion back.
            return self.to_served(current)
        if ctx.dry_run:
            return self.to_served(new)
        try:
            out = await self._backend.update(
                key, self._stored_bytes(new), expected_revision=kv.mod_revision
            )
        except (RevisionMismatch, KeyNotFound):
            if precondition:
                raise self.conflict(name) from None
            return None
        return self.served(out)

    async def _before_update(
        self,
        new: Obj,
        old: Obj,
        *,
        ns: str,
        name: str,
        ctx: RequestContext,
        subresource: str,
        operation: str,
        fields_subresource: str = "",
    ) -> Obj:
        self.strategy.default(new)
        await self._admit(
            "admit", "UPDATE", new, old, namespace=ns, name=name, ctx=ctx, subresource=subresource
        )
        nm = new.setdefault("metadata", {})
        om = old["metadata"]
        if subresource == "status":
            # upstream's status strategies: the body's status and metadata, the old spec;
            # the kind's hook resets what else its /status may not touch (Deployment
            # labels, Pod ownerReferences); rest.BeforeUpdate below keeps the server's
            # metadata (uid, creationTimestamp, generation, deletionTimestamp...).
            if "spec" in old:
                new["spec"] = copy.deepcopy(old["spec"])
            else:
                new.pop("spec", None)
            self.strategy.prepare_for_status_update(new, old)
        elif subresource == "":
            if self.strategy.status_subresource:
                if "status" in old:
                    new["status"] = copy.deepcopy(old["status"])
                else:
                    new.pop("status", None)
            self.strategy.prepare_for_update(new, old)
        # rest.BeforeUpdate: what a client may not change through any endpoint.
        if "generation" in om:
            nm["generation"] = om["generation"]
        else:
            nm.pop("generation", None)
        if not nm.get("uid"):
            nm["uid"] = om.get("uid")
        if om.get("creationTimestamp"):
            nm["creationTimestamp"] = om["creationTimestamp"]
        if om.get("deletionTimestamp"):
            nm["deletionTimestamp"] = om["deletionTimestamp"]
        else:
            nm.pop("deletionTimestamp", None)
        if (
            om.get("deletionGracePeriodSeconds") is not None
            and nm.get("deletionGracePeriodSeconds") is None
        ):
            nm["deletionGracePeriodSeconds"] = om["deletionGracePeriodSeconds"]
        nm.pop("selfLink", None)
        # An Apply already computed managedFields (absent: no manager owns anything).
        if "managedFields" not in nm and "managedFields" in om and operation != "Apply":
            nm["managedFields"] = copy.deepcopy(om["managedFields"])
        tracked = self.strategy.generation_tracks
        if (
            subresource == ""
            and "generation" in nm
            and any(new.get(f) != old.get(f) for f in tracked)
        ):
            nm["generation"] = int(nm["generation"]) + 1
        self._track_fields(new, old, ctx=ctx, operation=operation, subresource=fields_subresource)
        errs = meta.validate_object_meta_update(
            new, old, namespaced=self.info.namespaced, name_validation=self.strategy.name_validation
        )
        if subresource == "status":
            errs.extend(
                self.strategy.validate_status_update(
                    self._for_validation(new), self._for_validation(old)
                )
            )
        else:
            errs.extend(
                self.strategy.validate_update(self._for_validation(new), self._for_validation(old))
            )
        if errs:
            raise self.invalid(name, errs)
        for text in self.strategy.warnings(new):
            ctx.warn(text)
        await self._admit(
            "validate",
            "UPDATE",
            new,
            old,
            namespace=ns,
            name=name,
            ctx=ctx,
            subresource=subresource,
        )
        return new

    def _should_delete_during_update(self, new: Obj, old: Obj) -> bool:
        """upstream ``ShouldDeleteDuringUpdate``: the update removed the last finalizer of
        an object whose deletion was requested and has no grace period pending."""
        nm, om = new["metadata"], old["metadata"]
        if nm.get("finalizers") or not om.get("finalizers") or not om.get("deletionTimestamp"):
            return False
        is_namespace = self.info.kind == "Namespace" and not self.info.group
        if is_namespace and (new.get("spec") or {}).get("finalizers"):
            return False
        grace = om.get("deletionGracePeriodSeconds")
        return grace is None or grace == 0

    # -- delete --------------------------------------------------------------------------------

    def _check_delete_preconditions(self, obj: Obj, opts: Obj) -> None:
        pre = opts.get("preconditions") or {}
        m = obj["metadata"]
        kind = f"{self.info.kind}.{self.info.group}" if self.info.group else self.info.kind
        name = m.get("name", "")
        uid = pre.get("uid")
        if uid is not None and uid != m.get("uid"):
            raise Conflict(
                f'Operation cannot be fulfilled on {kind} "{name}": the UID in the precondition '
                f"({uid}) does not match the UID in record ({m.get('uid')}). The object might "
                "have been deleted and then recreated",
                kind=self.info.kind,
                group=self.info.group,
                name=name,
            )
        rv = pre.get("resourceVersion")
        if rv is not None and rv != m.get("resourceVersion"):
            raise Conflict(
                f'Operation cannot be fulfilled on {kind} "{name}": the ResourceVersion in the '
                f"precondition ({rv}) does not match the ResourceVersion in record "
                f"({m.get('resourceVersion')}). The object might have been modified",
                kind=self.info.kind,
                group=self.info.group,
                name=name,
            )

    def _graceful_strategy(self) -> bool:
        return type(self.strategy).check_graceful_delete is not Strategy.check_graceful_delete

    def _before_delete(self, obj: Obj, opts: Obj) -> tuple[bool, bool]:
        """upstream ``rest.BeforeDelete``: ``(graceful, pending)``; mutates ``obj``/``opts``."""
        grace = opts.get("gracePeriodSeconds")
        if grace is not None and grace < 0:
            grace = opts["gracePeriodSeconds"] = 1
        m = obj["metadata"]
        dgps = m.get("deletionGracePeriodSeconds")
        if dgps is not None and dgps < 0:
            dgps = m["deletionGracePeriodSeconds"] = 1
        if not self._graceful_strategy():
            return False, False
        if m.get("deletionTimestamp"):
            if dgps is None or dgps == 0:
                return False, False
            if grace is not None:
                if grace >= dgps:
                    return False, True
                start = meta.parse_time(m["deletionTimestamp"]) - dgps
                m["deletionTimestamp"] = meta.rfc3339(start + grace)
                m["deletionGracePeriodSeconds"] = grace
                return True, False
            opts["gracePeriodSeconds"] = dgps
            return False, True
        period = self.strategy.check_graceful_delete(obj, opts)
        if period is None:
            return False, False
        opts["gracePeriodSeconds"] = period
        m["deletionTimestamp"] = meta.rfc3339(self.now() + period)
        m["deletionGracePeriodSeconds"] = period
        if int(m.get("generation") or 0) > 0:
            m["generation"] = int(m["generation"]) + 1
        return True, False

    @staticmethod
    def _gc_finalizers(obj: Obj, opts: Obj) -> tuple[bool, builtins.list[str]]:
        """upstream ``deletionFinalizersForGarbageCollection``."""
        current = list((obj.get("metadata") or {}).get("finalizers") or [])
        policy = opts.get("propagationPolicy")
        orphan_opt = opts.get("orphanDependents")
        orphan = False
        foreground = False
        if orphan_opt is not None:
            orphan = bool(orphan_opt)
        elif policy in PROPAGATION_POLICIES:
            orphan = policy == "Orphan"
            foreground = policy == "Foreground"
        else:
            for f in current:
                if f == "orphan":
                    orphan = True
                    break
                if f == "foregroundDeletion":
                    foreground = True
                    break
        out = [f for f in current if f not in ("orphan", "foregroundDeletion")]
        if orphan:
            out.append("orphan")
        if foreground:
            out.append("foregroundDeletion")
        if set(out) == set(current):
            return False, current
        return True, out

    def deleted_answer(self, obj: Obj) -> Obj:
        """What a finished DELETE returns: the object, or a Success ``Status``."""
        flag = self.strategy.return_deleted_object
        if flag is None:
            flag = (self.info.group, self.info.plural) in _RETURNS_DELETED_OBJECT
        if flag:
            return self.to_served(obj)
        m = obj.get("metadata") or {}
        details: Obj = {"name": m.get("name", "")}
        if self.info.group:
            details["group"] = self.info.group
        details["kind"] = self.info.plural
        details["uid"] = m.get("uid", "")
        return {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Success",
            "details": details,
        }

    async def delete(
        self,
        *,
        namespace: str,
        name: str,
        options: Obj | None,
        ctx: RequestContext,
    ) -> tuple[Obj, bool]:
        """DELETE: ``(answer, finished)``. ``finished`` is False while graceful deletion or
        finalizers keep the object (the answer is then the object with deletionTimestamp).
        ``options`` is the DeleteOptions body (None is the same as ``{}``)."""
        opts, dry_run = delete_options(options, ctx=ctx)
        await self._admit("admit", "DELETE", None, None, namespace=namespace, name=name, ctx=ctx)
        return await self.delete_now(namespace=namespace, name=name, opts=opts, dry_run=dry_run)

    async def delete_now(
        self, *, namespace: str, name: str, opts: Obj, dry_run: bool
    ) -> tuple[Obj, bool]:
        key = self._key(namespace, name)
        for _attempt in range(_MAX_ATTEMPTS):
            try:
                return await self._delete_attempt(key, namespace, name, opts, dry_run)
            except _Retry:
                continue
        raise self.conflict(name)

    async def _delete_attempt(
        self, key: str, namespace: str, name: str, opts: Obj, dry_run: bool
    ) -> tuple[Obj, bool]:
        """One pass of upstream's ``Store.Delete`` (+ ``updateForGracefulDeletionAndFinalizers``)."""
        kv, obj = await self.read(namespace, name)
        self._check_delete_preconditions(obj, opts)
        attempt_opts = copy.deepcopy(opts)
        graceful, pending = self._before_delete(obj, attempt_opts)
        if pending:
            return self.to_served(obj), False
        changed, finalizers = self._gc_finalizers(obj, attempt_opts)
        m = obj["metadata"]
        if changed:
            if finalizers:
                m["finalizers"] = finalizers
            else:
                m.pop("finalizers", None)
        pending_finalizers = bool(m.get("finalizers"))
        rev = kv.mod_revision
        if pending_finalizers:
            if not graceful:
                self._mark_deleting(obj)
            return await self._write_deleting(key, obj, rev, dry_run=dry_run)
        if graceful and int(attempt_opts.get("gracePeriodSeconds") or 0) > 0:
            return await self._write_deleting(key, obj, rev, dry_run=dry_run)
        if dry_run:
            return self.deleted_answer(obj), True
        try:
            last = await self._backend.delete(key, expected_revision=rev)
        except (RevisionMismatch, KeyNotFound):
            raise _Retry() from None
        gone = codec.decode(last.value, rev)
        log.debug("Deleted %s %s/%s.", self.info.qualified, self._ns(namespace), name)
        return self.deleted_answer(gone), True

    def _mark_deleting(self, obj: Obj) -> None:
        """upstream ``markAsDeleting``: deletionTimestamp now (never later), grace 0."""
        m = obj["metadata"]
        now = self.now()
        existing = m.get("deletionTimestamp")
        if not existing and int(m.get("generation") or 0) > 0:
            m["generation"] = int(m["generation"]) + 1
        if not existing or meta.parse_time(existing) > now:
            m["deletionTimestamp"] = meta.rfc3339(now)
        m["deletionGracePeriodSeconds"] = 0

    async def _write_deleting(
        self, key: str, obj: Obj, rev: int, *, dry_run: bool
    ) -> tuple[Obj, bool]:
        if dry_run:
            return self.to_served(obj), False
        current = await self._backend.get(key)
        if current is not None and codec.without_resource_version(
            codec.decode_kv(current)
        ) == codec.without_resource_version(obj):
            return self.served(current), False
        try:
            out = await self._backend.update(key, self._stored_bytes(obj), expected_revision=rev)
        except (RevisionMismatch, KeyNotFound):
            raise _Retry() from None
        return self.served(out), False

    async def delete_collection(
        self,
        *,
        namespace: str,
        label_selector: str,
        field_selector: str,
        options: Obj | None,
        ctx: RequestContext,
    ) -> Obj:
        """DELETE on the collection: every matching object, one by one, as upstream's
        ``DeleteCollection``; answers the list of the objects it deleted."""
        listed = await self.list(
            namespace=namespace, label_selector=label_selector, field_selector=field_selector
        )
        deleted: list[Obj] = []
        for item in listed["items"]:
            m = item["metadata"]
            try:
                await self.delete(
                    namespace=m.get("namespace", ""), name=m["name"], options=options, ctx=ctx
                )
            except NotFound:
                continue
            deleted.append(item)
        listed["items"] = deleted
        return listed


def _swallow(task: asyncio.Task[Any]) -> None:
    if not task.cancelled():
        task.exception()


class NamespaceStore(ResourceStore):
    """Namespaces: created Active with the ``kubernetes`` finalizer; a first DELETE only
    marks them Terminating (upstream's namespace REST), and the final DELETE happens once
    the namespace controller has emptied ``spec.finalizers`` through ``/finalize``."""

    async def _before_create(
        self, obj: Obj, *, ns: str, ctx: RequestContext, operation: str
    ) -> Obj:
        out = await super()._before_create(obj, ns=ns, ctx=ctx, operation=operation)
        out["status"] = {**(out.get("status") or {}), "phase": "Active"}
        spec = out.setdefault("spec", {})
        finalizers = list(spec.get("finalizers") or [])
        if "kubernetes" not in finalizers:
            finalizers.append("kubernetes")
        spec["finalizers"] = finalizers
        return out

    async def delete(
        self,
        *,
        namespace: str,
        name: str,
        options: Obj | None,
        ctx: RequestContext,
    ) -> tuple[Obj, bool]:
        opts, dry_run = delete_options(options, ctx=ctx)
        await self._admit("admit", "DELETE", None, None, namespace="", name=name, ctx=ctx)
        _kv, current = await self.read("", name)
        self._check_delete_preconditions(current, opts)
        if not current["metadata"].get("deletionTimestamp"):

            def terminate(ns: Obj) -> None:
                self._check_delete_preconditions(ns, opts)
                m = ns["metadata"]
                if not m.get("deletionTimestamp"):
                    m["deletionTimestamp"] = meta.rfc3339(self.now())
                ns.setdefault("status", {})["phase"] = "Terminating"
                changed, finalizers = self._gc_finalizers(ns, opts)
                if changed:
                    if finalizers:
                        m["finalizers"] = finalizers
                    else:
                        m.pop("finalizers", None)

            dry = RequestContext(
                user=ctx.user,
                field_manager=ctx.field_manager,
                user_agent=ctx.user_agent,
                dry_run=dry_run,
            )
            out = await self.raw_update(
                namespace="", name=name, ctx=dry, mutate=terminate, precondition=False
            )
            log.info("Namespace %s is terminating.", name)
            return out, False
        if (current.get("spec") or {}).get("finalizers"):
            return self.to_served(current), False
        return await self.delete_now(namespace="", name=name, opts=opts, dry_run=dry_run)


class _Retry(Exception):
    """Internal: the swap lost a race; re-read and try again."""


class _ResourceVersionSetOnCreate(StatusError):
    """upstream's ``storage.ErrResourceVersionSetOnCreate``: a plain Go error, so the API
    answers it as a 500 with no reason."""

    reason = ""
    code = 500


def _nonzero_resource_version(value: Any) -> bool:
    """Whether upstream's storage would see a resourceVersion on a new object: one that parses
    as a non-zero uint64 (``"0"`` and unparsable text pass, as upstream)."""
    return isinstance(value, str) and value.isascii() and value.isdigit() and 0 < int(value) < 2**64


# -- resourceVersion and continue tokens ---------------------------------------------------------


def storage_precondition_failed(key: str, detail: str) -> str:
    """upstream's ``StorageError`` text for a failed precondition (``ErrCodeInvalidObj``),
    which Conflict answers quote verbatim."""
    return (
        f"StorageError: invalid object, Code: 4, Key: {key}, ResourceVersion: 0, "
        f"AdditionalErrorMsg: {detail}"
    )
