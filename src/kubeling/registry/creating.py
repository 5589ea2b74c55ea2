"""The create path of the generic store, as upstream's ``Store.Create`` with
``rest.BeforeCreate``: namespace checks, defaulting, mutating admission, the metadata the
server owns (uid, creationTimestamp, generation), the managedFields entry, validation,
validating admission, then one create on the backend.

When a ``generateName`` name turns out to be taken, the next attempt runs the pipeline
again from mutating admission on, with a fresh copy of the defaulted body and a new name:
admission and validation must see the name that is stored, so a retry cannot reuse a
prepared object. The path starts from a decoded body so that it also serves the
create-on-update and apply-create cases (``updating``); decoding the request is the entry
point's job (``store``).
"""

from __future__ import annotations

import logging
import uuid
from typing import Any, Final

from kubeling.machinery.errors import AlreadyExists, BadRequest, StatusError
from kubeling.machinery.types import Obj
from kubeling.registry import meta
from kubeling.registry.context import RequestContext
from kubeling.registry.storebase import StoreBase, copy_body
from kubeling.storage.interface import KeyExists

log = logging.getLogger(__name__)

NAMESPACE_MISMATCH_MSG: Final = (
    "the namespace of the provided object does not match the namespace sent on the request"
)
_GENERATE_NAME_ATTEMPTS: Final = 8


class CreatingMixin(StoreBase):
    """``create_decoded`` and the ``_before_create`` hook kinds override."""

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
            candidate = copy_body(obj)
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


class _ResourceVersionSetOnCreate(StatusError):
    """upstream's ``storage.ErrResourceVersionSetOnCreate``: a plain Go error, so the API
    answers it as a 500 with no reason."""

    reason = ""
    code = 500


def _nonzero_resource_version(value: Any) -> bool:
    """Whether upstream's storage would see a resourceVersion on a new object: one that parses
    as a non-zero uint64 (``"0"`` and unparsable text pass, as upstream)."""
    return isinstance(value, str) and value.isascii() and value.isdigit() and 0 < int(value) < 2**64
