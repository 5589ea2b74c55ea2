"""The delete path of the generic store, as upstream's ``Store.Delete`` with
``rest.BeforeDelete`` and ``updateForGracefulDeletionAndFinalizers``: preconditions,
graceful deletion, the garbage collector's ``orphan``/``foregroundDeletion`` finalizers,
and what a finished DELETE answers.

A DELETE does not always delete. While a grace period runs or finalizers remain, it is an
*update* that sets ``deletionTimestamp`` (and the GC finalizers the propagation policy
asks for), and the answer is the object with ``finished=False``; the key is removed only
when nothing holds it any more, here or later in ``updating`` when an update removes the
last finalizer. Each attempt is one compare-and-swap on the revision it read, retried
from a fresh read when another writer came first. The DeleteOptions body itself is
checked by ``options.delete_options``.
"""

from __future__ import annotations

import copy
import logging
from typing import Final

from kubeling.machinery.errors import Conflict, NotFound
from kubeling.machinery.types import Obj
from kubeling.registry import codec, meta
from kubeling.registry.context import RequestContext
from kubeling.registry.listing import ListingMixin
from kubeling.registry.options import PROPAGATION_POLICIES, delete_options
from kubeling.registry.storebase import MAX_ATTEMPTS
from kubeling.registry.strategy import Strategy
from kubeling.storage.interface import KeyNotFound, RevisionMismatch

log = logging.getLogger(__name__)

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


class DeletingMixin(ListingMixin):
    """``delete``, ``delete_now`` and ``delete_collection`` (which lists first)."""

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
        for _attempt in range(MAX_ATTEMPTS):
            try:
                return await self._delete_attempt(key, namespace, name, opts, dry_run)
            except _Retry:
                continue
        raise self.conflict(name)

    async def _delete_attempt(
        self, key: str, namespace: str, name: str, opts: Obj, dry_run: bool
    ) -> tuple[Obj, bool]:
        """One pass of upstream's ``Store.Delete`` and its
        ``updateForGracefulDeletionAndFinalizers``."""
        kv, obj = await self.read(namespace, name)
        self._check_delete_preconditions(obj, opts)
        attempt_opts = copy.deepcopy(opts)
        graceful, pending = self._before_delete(obj, attempt_opts)
        if pending:
            return self.to_served(obj), False
        changed, finalizers = gc_finalizers(obj, attempt_opts)
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


class _Retry(Exception):
    """Internal: the swap lost a race; re-read and try again."""


def gc_finalizers(obj: Obj, opts: Obj) -> tuple[bool, list[str]]:
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
