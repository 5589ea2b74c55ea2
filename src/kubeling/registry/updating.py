"""The update path of the generic store, as upstream's ``Store.Update`` and
``GuaranteedUpdate`` with ``rest.BeforeUpdate``: read, build the new object from the
current one, default, admit, keep what clients may not change, bump generation, record
managedFields, validate, then one compare-and-swap on the revision that was read.

The loop re-reads and rebuilds when the swap loses a race, unless the client named the
resourceVersion it expects, in which case the loss is the client's 409: ``build`` is a
callback precisely so that a PUT, every patch type, server-side apply and the
subresources all get that retry with their own way of producing the new object. An update
that writes nothing new answers the current object without a write (same
resourceVersion), and one that removes the last finalizer of an object being deleted
deletes it (``ShouldDeleteDuringUpdate``).
"""

from __future__ import annotations

import copy
from collections.abc import Awaitable, Callable

from kubeling.machinery.errors import AlreadyExists
from kubeling.machinery.field import FieldError, invalid_error
from kubeling.machinery.types import Obj
from kubeling.registry import codec, meta
from kubeling.registry.context import RequestContext
from kubeling.registry.creating import CreatingMixin
from kubeling.registry.storebase import MAX_ATTEMPTS
from kubeling.storage.interface import KeyNotFound, KeyValue, RevisionMismatch


class UpdatingMixin(CreatingMixin):
    """``guaranteed_update`` (every update, patch and apply) and ``raw_update``."""

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
        for _attempt in range(MAX_ATTEMPTS):
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
        for _attempt in range(MAX_ATTEMPTS):
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


def storage_precondition_failed(key: str, detail: str) -> str:
    """upstream's ``StorageError`` text for a failed precondition (``ErrCodeInvalidObj``),
    which Conflict answers quote verbatim."""
    return (
        f"StorageError: invalid object, Code: 4, Key: {key}, ResourceVersion: 0, "
        f"AdditionalErrorMsg: {detail}"
    )


class _HexZero:
    """Renders as ``0x0``: upstream prints the missing update resourceVersion (a uint64)
    with ``%#v``, and kubectl users know the text ``Invalid value: 0x0``."""

    def __repr__(self) -> str:
        return "0x0"
