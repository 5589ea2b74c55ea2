"""What every verb path of the generic store shares: the resource it serves, its strategy
and backend (``Deps``), and the small steps more than one path takes (storage keys,
upstream's NotFound/Conflict/Invalid for this resource, body decoding, admission, the
managedFields record, the conversion between the stored and the served form).

The verb paths are mixins over ``StoreBase``, one module each (``listing``, ``watching``,
``deleting``, ``creating``, ``updating``), and ``store.ResourceStore`` composes them. A
mixin rather than functions that take the store: the paths call each other's methods
(``delete_collection`` lists, an update may create, ``NamespaceStore`` overrides the
delete and create hooks), and as methods they keep the names and override points they had
when the store was one class.

The pipeline works on the *internal* form, which is the stored one (core/v1 Events for
events.k8s.io too, as upstream's internal version): request bodies are converted in,
answers converted out (``conversion``), and only validation sees the request's version.
Reads put the revision back as ``resourceVersion`` (``codec``).
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import TYPE_CHECKING, Final

import orjson

from kubeling.machinery import decode as decoding
from kubeling.machinery import managedfields, objects
from kubeling.machinery import schema as schemas
from kubeling.machinery.errors import Conflict, Invalid, NotFound, RequestEntityTooLarge
from kubeling.machinery.field import FieldError, invalid_error
from kubeling.machinery.types import Obj, ResourceInfo
from kubeling.registry import codec, conversion, meta
from kubeling.registry.admission import Attributes, Chain, Operation
from kubeling.registry.context import RequestContext
from kubeling.registry.strategy import Strategy
from kubeling.storage.interface import Backend, KeyValue

if TYPE_CHECKING:
    from kubeling.registry.store import ResourceStore
    from kubeling.registry.subresources import Subresource

OPTIMISTIC_LOCK_MSG: Final = (
    "the object has been modified; please apply your changes to the latest version and try again"
)
MAX_ATTEMPTS: Final = 16
"""How often a write re-reads and retries after losing a compare-and-swap race."""
FRESH_WAIT: Final = 3.0
"""upstream's watch cache ``blockTimeout``: how long a read at a resourceVersion the store has
not reached yet waits for it before the 504 ``Too large resource version``."""
MAX_OBJECT_BYTES: Final = 1_572_864
"""The largest object the store takes: etcd's default request limit (1.5 MiB), which bounds
every upstream object. A ConfigMap or Secret at its own 1 MiB data limit fits."""

# Anything orjson would change on the way through (YAML timestamps, dict subclasses such as
# decode's DuplicateKeysDict, integers beyond 64 bits, non-string keys) makes it raise here.
_COPY_STRICT: Final = orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_SUBCLASS


def copy_body(obj: Obj) -> Obj:
    """A deep copy of a request body on the write path. An orjson round trip costs about a
    seventh of ``copy.deepcopy`` on a 1 KB ConfigMap (5 vs 38 us; two or three copies per
    create or update, see bench/README.md); what it cannot carry unchanged falls back to
    ``copy.deepcopy``. (NaN comes back null, as ``codec.encode`` would store it anyway.)"""
    try:
        out: Obj = orjson.loads(orjson.dumps(obj, option=_COPY_STRICT))
    except TypeError:
        return copy.deepcopy(obj)
    return out


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


class StoreBase:
    """One served resource over the backend: the state and shared steps of every verb path.

    Every method takes the namespace from the URL (ignored for cluster-scoped resources).
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
        data = codec.encode(internal)
        size = len(data) - _base64_slack(self.info.kind, internal)
        if size > MAX_OBJECT_BYTES:
            # Upstream hears etcd's "request is too large" and answers it as a 500 (a known
            # wart: clients retry it); the same words, as the 413 they deserve.
            raise RequestEntityTooLarge(
                f"etcdserver: request is too large ({self.info.kind} {objects.name(internal)!r} "
                f"takes {size} bytes stored; the limit is {MAX_OBJECT_BYTES})"
            )
        return data

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
        out = codec.drop_empty(copy_body(out), self.info.gvk)
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


def _base64_slack(kind: str, obj: Obj) -> int:
    """What base64 adds to binary values over the raw bytes etcd would hold (upstream
    stores protobuf): a Secret or ConfigMap at its 1 MiB data limit, plus what metadata
    upstream allows, must fit as it does there."""
    field = "data" if kind == "Secret" else "binaryData" if kind == "ConfigMap" else ""
    values = obj.get(field) if field else None
    if not isinstance(values, dict):
        return 0
    return sum(len(v) - len(v) * 3 // 4 for v in values.values() if isinstance(v, str))
