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

``ResourceStore`` is the entry point of every verb: it routes ``<name>/<subresource>``
requests to their handler, decodes request bodies and turns PUT, PATCH and apply into the
``build`` step of one guaranteed update. The paths behind it are mixins, one module
each, over ``storebase.StoreBase`` (shared state, conversion, admission):

- ``listing``: selectors and the paged list; ``watching``: watch events;
- ``creating``: ``BeforeCreate`` and the create; ``updating``: ``GuaranteedUpdate``;
- ``deleting``: graceful deletion, finalizers and preconditions;

and the request options and patch formats are pure functions in ``options`` and
``patching``. ``NamespaceStore`` is the one kind whose create and delete differ.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from kubeling.machinery import decode as decoding
from kubeling.machinery import managedfields
from kubeling.machinery import schema as schemas
from kubeling.machinery.errors import BadRequest, NotFound
from kubeling.machinery.types import Obj
from kubeling.registry import meta
from kubeling.registry.context import RequestContext
from kubeling.registry.deleting import DeletingMixin, gc_finalizers
from kubeling.registry.options import delete_options
from kubeling.registry.patching import apply_patch, parse_patch, patch_type
from kubeling.registry.storebase import copy_body
from kubeling.registry.updating import UpdatingMixin
from kubeling.registry.watching import WatchingMixin

if TYPE_CHECKING:
    from kubeling.registry.subresources import Subresource

log = logging.getLogger(__name__)


class ResourceStore(UpdatingMixin, DeletingMixin, WatchingMixin):
    """One served resource's REST verbs over the backend.

    Every method takes the namespace from the URL (ignored for cluster-scoped resources)
    and returns JSON-shaped dicts in the served version. Errors are ``StatusError``s with
    upstream's reason, code and message. ``list``, ``watch``, ``delete`` and the write
    loops come from the mixins the module docstring names.
    """

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

    # -- get ---------------------------------------------------------------------------------------

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
            return copy_body(body)

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
                changed, finalizers = gc_finalizers(ns, opts)
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
