"""The garbage collector: deletes objects whose owners are gone, honouring propagation.

Like upstream's ``pkg/controller/garbagecollector`` it keeps a graph of every object's
owner references, fed by metadata-only informers over every served kind (events excepted:
nothing owns them and they are the busiest kind), so that its memory follows the number of
objects, not their size; it acts on three situations:

- a dependent whose owners are all gone (or waiting for their dependents to go) is deleted,
  with the propagation its own finalizers ask for (background otherwise); one with a live
  owner merely loses its references to the absent ones;
- an owner deleted with ``propagationPolicy: Foreground`` carries the ``foregroundDeletion``
  finalizer: every dependent is deleted, and the finalizer is removed once no dependent with
  ``blockOwnerDeletion: true`` remains, which lets the API server finish the delete;
- an owner deleted with ``Orphan`` carries the ``orphan`` finalizer: the references to it
  are stripped from its dependents, then the finalizer is removed.

The work queue is keyed by uid, the identity owner references use. An owner missing from
the caches is looked up live before a dependent is condemned, since one informer may lag
another (the pod may be seen before the ReplicaSet that just created it).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from kubeling.client.controller import Controller, retry_on_conflict
from kubeling.client.informer import Informer
from kubeling.client.interface import Client
from kubeling.machinery import objects
from kubeling.machinery.errors import Conflict, NotFound
from kubeling.machinery.objects import deep_copy
from kubeling.machinery.resources import ALL, EVENTS, EVENTS_V1, by_kind
from kubeling.machinery.types import Obj, ResourceInfo

log = logging.getLogger(__name__)

ORPHAN = "orphan"
FOREGROUND = "foregroundDeletion"
SKIPPED: tuple[ResourceInfo, ...] = (EVENTS, EVENTS_V1)
UNSEEN_DEPENDENT_RETRY = 0.2
"""Seconds before an owner waiting on a dependent its informer has not delivered is rechecked."""


@dataclass(kw_only=True)
class Node:
    resource: ResourceInfo
    obj: Obj
    dependents: set[str] = field(default_factory=set)

    @property
    def uid(self) -> str:
        return objects.uid(self.obj)

    @property
    def namespace(self) -> str:
        return objects.namespace(self.obj)

    @property
    def name(self) -> str:
        return objects.name(self.obj)

    @property
    def owners(self) -> list[Obj]:
        return [r for r in objects.owner_references(self.obj) if isinstance(r, dict)]

    @property
    def deleting(self) -> bool:
        return bool(objects.deletion_timestamp(self.obj))

    def has_finalizer(self, name: str) -> bool:
        return name in objects.finalizers(self.obj)

    @property
    def deleting_dependents(self) -> bool:
        return self.deleting and self.has_finalizer(FOREGROUND)

    def describe(self) -> str:
        where = f"{self.namespace}/{self.name}" if self.namespace else self.name
        return f"{self.resource.kind} {where}"


def _owner_uids(obj: Obj) -> set[str]:
    return {str(r.get("uid")) for r in objects.owner_references(obj) if isinstance(r, dict)}


class GarbageCollector(Controller):
    name = "garbagecollector"

    def __init__(
        self,
        *,
        client: Client,
        informers: list[tuple[ResourceInfo, Informer]],
        workers: int = 4,
    ) -> None:
        super().__init__(workers=workers)
        self.client = client
        self.resources = [resource for resource, _ in informers]
        self.nodes: dict[str, Node] = {}
        self.dependents: dict[str, set[str]] = {}
        """owner uid → dependent uids; kept even while the owner is not (yet) observed."""
        for resource, informer in informers:
            self._connect(resource, informer)
            self.wait_for(informer)

    def _connect(self, resource: ResourceInfo, informer: Informer) -> None:
        def added(obj: Obj) -> None:
            self._observe(resource, obj)

        def updated(_old: Obj, new: Obj) -> None:
            self._observe(resource, new)

        def deleted(obj: Obj) -> None:
            self._forget(resource, obj)

        informer.add_handler(on_add=added, on_update=updated, on_delete=deleted)

    # --- the graph -------------------------------------------------------------------------

    def _observe(self, resource: ResourceInfo, obj: Obj) -> None:
        uid = objects.uid(obj)
        if not uid:
            return
        old = self.nodes.get(uid)
        old_owners = _owner_uids(old.obj) if old is not None else set()
        new_owners = _owner_uids(obj)
        node = Node(resource=resource, obj=obj)
        self.nodes[uid] = node
        for owner in old_owners - new_owners:
            self._unlink(owner, uid)
            # An owner waiting for this dependent may be free now.
            self._enqueue_if_waiting(owner)
        for owner in new_owners - old_owners:
            self.dependents.setdefault(owner, set()).add(uid)
        if new_owners:
            self.enqueue(uid)
        if node.deleting and (node.has_finalizer(ORPHAN) or node.has_finalizer(FOREGROUND)):
            self.enqueue(uid)
            if node.has_finalizer(FOREGROUND):
                for dep in self.dependents.get(uid, ()):
                    self.enqueue(dep)
        if node.deleting:
            # A dependent being deleted may be what a foreground owner waits for.
            for owner in new_owners:
                self._enqueue_if_waiting(owner)

    def _unlink(self, owner: str, uid: str) -> None:
        """Drop ``uid`` from ``owner``'s dependents, and the owner's entry once empty."""
        deps = self.dependents.get(owner)
        if deps is not None:
            deps.discard(uid)
            if not deps:
                del self.dependents[owner]

    def _forget(self, resource: ResourceInfo, obj: Obj) -> None:
        uid = objects.uid(obj)
        if not uid:
            return
        node = self.nodes.pop(uid, None)
        owners = _owner_uids(node.obj if node is not None else obj)
        for owner in owners:
            self._unlink(owner, uid)
            self._enqueue_if_waiting(owner)
        # Its dependents may be dangling now (background propagation).
        for dep in self.dependents.get(uid, ()):
            self.enqueue(dep)

    def _enqueue_if_waiting(self, owner_uid: str) -> None:
        owner = self.nodes.get(owner_uid)
        if owner is not None and owner.deleting_dependents:
            self.enqueue(owner_uid)

    def dependents_of(self, uid: str) -> list[Node]:
        return [self.nodes[d] for d in sorted(self.dependents.get(uid, ())) if d in self.nodes]

    # --- reconcile -------------------------------------------------------------------------

    async def reconcile(self, key: str) -> None:
        node = self.nodes.get(key)
        if node is None:
            return
        if node.deleting:
            if node.has_finalizer(ORPHAN):
                await self._orphan_dependents(node)
                return
            if node.has_finalizer(FOREGROUND):
                await self._process_deleting_dependents(node)
                return
            return
        if node.owners:
            await self._attempt_to_delete(node)

    async def _attempt_to_delete(self, node: Node, *, live: bool = False) -> None:
        solid: list[Obj] = []
        dangling: list[Obj] = []
        waiting: list[Obj] = []
        for ref in node.owners:
            state = await self._classify(node, ref)
            {"solid": solid, "dangling": dangling, "waiting": waiting}[state].append(ref)
        if not dangling and not waiting:
            return
        if not live:
            # About to act, on a graph that may be behind the API (an orphaning patch that
            # just stripped the owner reference, say): decide again on the object as it is
            # now, as upstream's GC does. Only here, so that the common case (every owner
            # there) costs no request.
            fresh = await self._read_live(node)
            if fresh is not None and fresh.owners:
                await self._attempt_to_delete(fresh, live=True)
            return
        if solid:
            gone = [str(r.get("uid")) for r in (*dangling, *waiting)]
            log.info(
                "Garbage collector removes owner references %s from %s.",
                ", ".join(gone),
                node.describe(),
            )
            await self._patch_owner_refs(node, [{"$patch": "delete", "uid": uid} for uid in gone])
            return
        dependents = self.dependents_of(node.uid)
        if waiting and not dependents:
            # Its own dependents may not have reached the graph yet (pods being created as
            # the owner goes): a background delete here would let the waiting owner finish
            # before them. Ask the API server.
            dependents = await self._live_dependents(node)
        if waiting and dependents:
            # Delete in the foreground so the waiting owner's wait covers the whole chain.
            # Only when one of our own dependents also waits on its dependents are our
            # references made non-blocking first: that breaks a possible cycle (upstream's
            # same guard, with the same false positives).
            if any(dep.deleting_dependents for dep in dependents):
                await self._patch_owner_refs(
                    node,
                    [
                        {**_ref_key(ref), "uid": ref.get("uid"), "blockOwnerDeletion": False}
                        for ref in node.owners
                        if ref.get("blockOwnerDeletion")
                    ],
                )
            policy = "Foreground"
        elif node.has_finalizer(ORPHAN):
            policy = "Orphan"
        elif node.has_finalizer(FOREGROUND):
            policy = "Foreground"
        else:
            policy = "Background"
        log.info(
            "Garbage collector deletes %s (owners gone; propagation %s).", node.describe(), policy
        )
        try:
            await self.client.delete(
                node.resource,
                name=node.name,
                namespace=node.namespace,
                propagation_policy=policy,
                preconditions={"uid": node.uid},
            )
        except NotFound:
            return
        except Conflict:
            # The uid precondition failed: a new object took the name; nothing to do.
            return

    async def _read_live(self, cached: Node) -> Node | None:
        """``cached`` as the API server has it now; None once it is gone or replaced."""
        try:
            obj = await self.client.get(
                cached.resource, name=cached.name, namespace=cached.namespace
            )
        except NotFound:
            return None
        if objects.uid(obj) != cached.uid:
            return None
        return Node(resource=cached.resource, obj=obj, dependents=cached.dependents)

    async def _classify(self, node: Node, ref: Obj) -> str:
        uid = str(ref.get("uid") or "")
        owner = self.nodes.get(uid)
        if owner is not None:
            return "waiting" if owner.deleting_dependents else "solid"
        resource = by_kind(api_version=str(ref.get("apiVersion") or ""), kind=str(ref.get("kind")))
        if resource is None:
            # TODO(#4): owners of kinds kubeling does not serve (custom resources) are never
            # resolved; their dependents are left alone rather than deleted by mistake.
            log.debug("Unknown owner kind %s of %s; leaving it.", ref.get("kind"), node.describe())
            return "solid"
        if resource.namespaced and not node.namespace:
            # A cluster-scoped dependent cannot have a namespaced owner: the reference is
            # treated as absent, as upstream does.
            return "dangling"
        try:
            live = await self.client.get(
                resource,
                name=str(ref.get("name") or ""),
                namespace=node.namespace if resource.namespaced else "",
            )
        except NotFound:
            return "dangling"
        if objects.uid(live) != uid:
            return "dangling"
        if objects.deletion_timestamp(live) and FOREGROUND in objects.finalizers(live):
            return "waiting"
        return "solid"

    async def _patch_owner_refs(self, node: Node, entries: list[Obj]) -> None:
        if not entries:
            return
        patch = {"metadata": {"ownerReferences": entries, "uid": node.uid}}
        try:
            await self.client.patch(
                node.resource,
                name=node.name,
                namespace=node.namespace,
                patch=patch,
                patch_type="strategic",
            )
        except NotFound:
            return

    async def _orphan_dependents(self, owner: Node) -> None:
        # Orphaning, like the end of a foreground deletion, is final: a dependent the graph
        # has not seen yet (its informer lags the API) would lose its owner and then be
        # collected as dangling. Both are rare, so the dependents are read live instead.
        for dep in await self._live_dependents(owner):
            log.info("Garbage collector orphans %s from %s.", dep.describe(), owner.describe())
            await self._patch_owner_refs(dep, [{"$patch": "delete", "uid": owner.uid}])
        await self._remove_finalizer(owner, ORPHAN)

    async def _process_deleting_dependents(self, owner: Node) -> None:
        blocking = []
        for dep in await self._live_dependents(owner):
            for ref in dep.owners:
                if ref.get("uid") == owner.uid and ref.get("blockOwnerDeletion") is True:
                    blocking.append(dep)
                    break
        if not blocking:
            await self._remove_finalizer(owner, FOREGROUND)
            return
        for dep in blocking:
            if not dep.deleting:
                if dep.uid in self.nodes:
                    self.enqueue(dep.uid)
                else:
                    # Not in the graph yet: condemn it once its informer delivers it, and
                    # look at the owner again meanwhile.
                    self.enqueue_after(owner.uid, UNSEEN_DEPENDENT_RETRY)

    async def _live_dependents(self, owner: Node) -> list[Node]:
        """The objects whose owner references name ``owner``, read from the API server
        (metadata only) rather than the graph: those the informers already delivered and
        those still on their way."""
        found: list[Node] = []
        for resource in self.resources:
            if resource.namespaced and not owner.namespace:
                namespace = ""  # a cluster-scoped owner may own objects in any namespace
            elif resource.namespaced:
                namespace = owner.namespace
            elif owner.namespace:
                continue  # a namespaced owner cannot own a cluster-scoped object
            else:
                namespace = ""
            listed = await self.client.list(resource, namespace=namespace, metadata_only=True)
            for item in listed.get("items") or []:
                if owner.uid in _owner_uids(item):
                    found.append(Node(resource=resource, obj=item))
        return found

    async def _remove_finalizer(self, node: Node, finalizer: str) -> None:
        async def attempt() -> None:
            try:
                current = await self.client.get(
                    node.resource, name=node.name, namespace=node.namespace
                )
            except NotFound:
                return
            if objects.uid(current) != node.uid:
                return
            names = objects.finalizers(current)
            if finalizer not in names:
                return
            body = deep_copy(current)
            body["metadata"]["finalizers"] = [f for f in names if f != finalizer]
            await self.client.update(node.resource, body)

        try:
            await retry_on_conflict(attempt)
        except NotFound:
            return
        log.info("Garbage collector removed the %s finalizer of %s.", finalizer, node.describe())


def _ref_key(ref: Obj) -> Obj:
    return {k: ref[k] for k in ("apiVersion", "kind", "name") if k in ref}


def informed_resources() -> list[ResourceInfo]:
    return [r for r in ALL if r not in SKIPPED and "list" in r.verbs and "watch" in r.verbs]


def build(ctx: Any) -> GarbageCollector:
    return GarbageCollector(
        client=ctx.client,
        informers=[
            (r, ctx.informers.informer(r, metadata_only=True)) for r in informed_resources()
        ],
    )
