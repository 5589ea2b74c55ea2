"""The namespace controller: empties a terminating namespace, then lets the API remove it.

A DELETE of a namespace only marks it (``deletionTimestamp``, phase ``Terminating``); the
registry keeps it while ``spec.finalizers`` holds ``kubernetes``. This controller, like
upstream's ``NamespacedResourcesDeleter``, deletes every object of every namespaced
resource in it, reports progress in the namespace's five deletion conditions with upstream's
reasons and texts, and once nothing is left removes ``kubernetes`` through the ``finalize``
subresource and repeats the DELETE, which now completes (so ``kubectl delete ns`` returns).

Design choice: it does not poll for leftovers. It subscribes to the shared informers of
every namespaced kind and re-examines a terminating namespace whenever something in it
disappears; a slow fallback re-check covers objects that linger (a pod's grace period).
"""

from __future__ import annotations

import logging
from typing import Any

from kubeling.client.controller import Controller
from kubeling.client.informer import Informer
from kubeling.client.interface import Client
from kubeling.machinery import objects
from kubeling.machinery.errors import Conflict, NotFound, StatusError
from kubeling.machinery.objects import deep_copy
from kubeling.machinery.resources import ALL, EVENTS, EVENTS_V1, NAMESPACES
from kubeling.machinery.types import Obj, ResourceInfo

log = logging.getLogger(__name__)

FINALIZER = "kubernetes"
RECHECK_SECONDS = 5.0
"""How soon a namespace with content still terminating is looked at again regardless."""

DISCOVERY_FAILURE = "NamespaceDeletionDiscoveryFailure"
PARSING_FAILURE = "NamespaceDeletionGroupVersionParsingFailure"
CONTENT_FAILURE = "NamespaceDeletionContentFailure"
CONTENT_REMAINING = "NamespaceContentRemaining"
FINALIZERS_REMAINING = "NamespaceFinalizersRemaining"


def content_resources() -> list[ResourceInfo]:
    """Every namespaced resource that can be listed and deleted. ``events.k8s.io`` events
    share core events' storage, so deleting the core ones covers both."""
    return [
        r
        for r in ALL
        if r.namespaced and r is not EVENTS_V1 and "delete" in r.verbs and "list" in r.verbs
    ]


def _group_resource(resource: ResourceInfo) -> str:
    # Upstream formats "%s.%s" of resource and group, so core kinds read "pods.".
    return f"{resource.plural}.{resource.group}"


def deletion_conditions(
    *,
    failures: list[str],
    remaining: dict[str, int],
    finalizers: dict[str, int],
    existing: list[Obj] | None,
    now: str,
) -> list[Obj]:
    """The five conditions upstream's deleter maintains, in its order."""
    wanted: list[tuple[str, str, str, str]] = [
        (
            DISCOVERY_FAILURE,
            "False",
            "ResourcesDiscovered",
            "All resources successfully discovered",
        ),
        (
            PARSING_FAILURE,
            "False",
            "ParsedGroupVersions",
            "All legacy kube types successfully parsed",
        ),
    ]
    if failures:
        wanted.append(
            (
                CONTENT_FAILURE,
                "True",
                "ContentDeletionFailed",
                f"Failed to delete all resource types, {len(failures)} remaining: "
                + ", ".join(failures),
            )
        )
    else:
        wanted.append(
            (
                CONTENT_FAILURE,
                "False",
                "ContentDeleted",
                "All content successfully deleted, may be waiting on finalization",
            )
        )
    if remaining:
        items = [
            f"{name} has {count} resource instances" for name, count in sorted(remaining.items())
        ]
        wanted.append(
            (
                CONTENT_REMAINING,
                "True",
                "SomeResourcesRemain",
                "Some resources are remaining: " + ", ".join(items),
            )
        )
    else:
        wanted.append(
            (CONTENT_REMAINING, "False", "ContentRemoved", "All content successfully removed")
        )
    if finalizers:
        items = [
            f"{name} in {count} resource instances" for name, count in sorted(finalizers.items())
        ]
        wanted.append(
            (
                FINALIZERS_REMAINING,
                "True",
                "SomeFinalizersRemain",
                "Some content in the namespace has finalizers remaining: " + ", ".join(items),
            )
        )
    else:
        wanted.append(
            (
                FINALIZERS_REMAINING,
                "False",
                "ContentHasNoFinalizers",
                "All content-preserving finalizers finished",
            )
        )
    out: list[Obj] = []
    for type_, status, reason, message in wanted:
        current = objects.get_condition(existing, type_)
        since = now
        if current is not None and current.get("status") == status:
            since = current.get("lastTransitionTime") or now
        out.append(
            {
                "type": type_,
                "status": status,
                "lastTransitionTime": since,
                "reason": reason,
                "message": message,
            }
        )
    # Conditions of other writers are kept after ours.
    ours = {w[0] for w in wanted}
    out.extend(c for c in existing or [] if c.get("type") not in ours)
    return out


class NamespaceController(Controller):
    name = "namespace"

    def __init__(
        self,
        *,
        client: Client,
        namespaces: Informer,
        resources: list[ResourceInfo],
        content: list[Informer],
        workers: int = 2,
    ) -> None:
        super().__init__(workers=workers)
        self.client = client
        self.namespaces = namespaces
        self.resources = resources
        """What is deleted; ``content`` are informers whose deletions trigger a re-check."""
        self.watch(namespaces)
        for informer in content:
            informer.add_handler(on_delete=self._content_deleted, on_update=self._content_updated)

    def _content_deleted(self, obj: Obj) -> None:
        self._maybe_enqueue(objects.namespace(obj))

    def _content_updated(self, old: Obj, new: Obj) -> None:
        if objects.finalizers(old) != objects.finalizers(new):
            self._maybe_enqueue(objects.namespace(new))

    def _maybe_enqueue(self, namespace: str) -> None:
        if not namespace:
            return
        ns = self.namespaces.get(namespace)
        if ns is not None and objects.deletion_timestamp(ns):
            self.enqueue(namespace)

    async def reconcile(self, key: str) -> None:
        cached = self.namespaces.get(key)
        if cached is None or not objects.deletion_timestamp(cached):
            return
        try:
            ns = await self.client.get(NAMESPACES, name=key)
        except NotFound:
            return
        if not objects.deletion_timestamp(ns):
            return
        if FINALIZER not in ((ns.get("spec") or {}).get("finalizers") or []):
            await self._delete_namespace(ns)
            return
        failures, remaining, finalizers = await self._delete_all_content(key)
        now = objects.now_rfc3339()
        status = deep_copy(ns.get("status") or {})
        status["phase"] = "Terminating"
        status["conditions"] = deletion_conditions(
            failures=failures,
            remaining=remaining,
            finalizers=finalizers,
            existing=status.get("conditions"),
            now=now,
        )
        if status != (ns.get("status") or {}):
            body = deep_copy(ns)
            body["status"] = status
            try:
                ns = await self.client.update(NAMESPACES, body, subresource="status")
            except (Conflict, NotFound):
                # Someone else wrote in between; the next pass rewrites the conditions.
                self.enqueue_after(key, 0.1)
                return
        if failures or remaining:
            log.info(
                "Namespace %s still has content: %s.",
                key,
                ", ".join(f"{k}={v}" for k, v in sorted(remaining.items())) or "; ".join(failures),
            )
            self.enqueue_after(key, RECHECK_SECONDS)
            return
        await self._finalize(ns)

    async def _delete_all_content(
        self, namespace: str
    ) -> tuple[list[str], dict[str, int], dict[str, int]]:
        failures: list[str] = []
        remaining: dict[str, int] = {}
        finalizers: dict[str, int] = {}
        for resource in self.resources:
            try:
                listed = await self.client.list(resource, namespace=namespace)
            except StatusError as e:
                failures.append(f"{resource.qualified}: {e}")
                continue
            items = list(listed.get("items") or [])
            for item in items:
                if objects.deletion_timestamp(item):
                    continue
                try:
                    await self.client.delete(
                        resource,
                        name=objects.name(item),
                        namespace=namespace,
                        preconditions={"uid": objects.uid(item)},
                    )
                except (NotFound, Conflict):
                    continue
                except StatusError as e:
                    failures.append(f"{resource.qualified} {objects.name(item)}: {e}")
            if not items:
                continue
            try:
                after = await self.client.list(resource, namespace=namespace)
            except StatusError as e:
                failures.append(f"{resource.qualified}: {e}")
                continue
            left = list(after.get("items") or [])
            if left:
                remaining[_group_resource(resource)] = len(left)
                for item in left:
                    for name in objects.finalizers(item):
                        finalizers[name] = finalizers.get(name, 0) + 1
        return failures, remaining, finalizers

    async def _finalize(self, ns: Obj) -> None:
        body = deep_copy(ns)
        spec = body.setdefault("spec", {})
        spec["finalizers"] = [f for f in spec.get("finalizers") or [] if f != FINALIZER]
        try:
            out = await self.client.update(NAMESPACES, body, subresource="finalize")
        except NotFound:
            return
        log.info("Namespace %s is empty; finalized.", objects.name(ns))
        await self._delete_namespace(out)

    async def _delete_namespace(self, ns: Obj) -> None:
        if (ns.get("spec") or {}).get("finalizers"):
            return
        try:
            await self.client.delete(
                NAMESPACES, name=objects.name(ns), preconditions={"uid": objects.uid(ns)}
            )
        except (NotFound, Conflict):
            return


def build(ctx: Any) -> NamespaceController:
    return NamespaceController(
        client=ctx.client,
        namespaces=ctx.informers.informer(NAMESPACES),
        resources=content_resources(),
        # Events are the busiest kind and never hold a namespace up: no watch on them.
        content=[ctx.informers.informer(r) for r in content_resources() if r is not EVENTS],
    )
