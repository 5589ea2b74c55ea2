"""Subresources: ``status``, ``scale``, ``pods/binding`` and ``namespaces/finalize``.

Each subresource is a small object with the verbs it serves (``get``, ``create``,
``update``, ``patch``); the base class answers 405 for the rest, so adding one (pods/log,
pods/exec, serviceaccounts/token) is a subclass plus one entry in ``FACTORIES``. Handlers
reach them through ``ResourceStore.subresource(name)`` (or ``Registry.subresource``), or by
passing ``subresource=`` to the store's verbs.

``status`` and ``scale`` go through the store's update pipeline (preconditions, admission,
validation, retries) with the parent's strategy, as upstream's status and scale REST
objects share the parent's store. ``binding`` and ``finalize`` write the one field they own
straight to the stored object, as upstream's ``BindingREST`` and ``FinalizeREST`` do, so a
pod's update validation (``spec`` is immutable) does not reject the scheduler's binding.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any, Final

from kubeling.machinery import decode as decoding
from kubeling.machinery import selectors
from kubeling.machinery.errors import BadRequest, Conflict, MethodNotAllowed
from kubeling.machinery.field import FieldError, Path, invalid, invalid_error, required
from kubeling.machinery.types import GroupVersionKind, Obj, ResourceInfo
from kubeling.registry import meta, validation
from kubeling.registry.context import RequestContext
from kubeling.registry.patching import apply_patch, parse_patch, patch_type
from kubeling.registry.store import ResourceStore
from kubeling.registry.updating import storage_precondition_failed

SCALE_INFO: Final = ResourceInfo(
    group="autoscaling",
    version="v1",
    kind="Scale",
    plural="scale",
    singular="scale",
    namespaced=True,
)
BINDING_GVK: Final = GroupVersionKind(group="", version="v1", kind="Binding")


class Subresource:
    """One ``<resource>/<name>`` endpoint; verbs not overridden answer 405."""

    name: str = ""

    def __init__(self, store: ResourceStore, name: str) -> None:
        self.store = store
        self.name = name

    def _not_allowed(self) -> MethodNotAllowed:
        return MethodNotAllowed(
            "the server does not allow this method on the requested resource",
            kind=f"{self.store.info.plural}/{self.name}",
            group=self.store.info.group,
        )

    async def get(self, *, namespace: str, name: str) -> Obj:
        raise self._not_allowed()

    async def create(self, obj: Obj, *, namespace: str, name: str, ctx: RequestContext) -> Obj:
        raise self._not_allowed()

    async def update(
        self, obj: Obj, *, namespace: str, name: str, ctx: RequestContext
    ) -> tuple[Obj, bool]:
        raise self._not_allowed()

    async def patch(
        self, *, namespace: str, name: str, patch: bytes, content_type: str, ctx: RequestContext
    ) -> tuple[Obj, bool]:
        raise self._not_allowed()


def _patch_document(content_type: str, patch: bytes) -> tuple[str, Any]:
    kind = patch_type(content_type)
    return kind, parse_patch(kind, patch)


def _patched(kind: str, current: Obj, document: Any, *, info: ResourceInfo) -> Obj:
    if kind == "apply":
        # TODO(#2): server-side apply on /scale and /finalize merges like a merge patch and
        # records no Apply entry (upstream converts the parent's managedFields to the
        # Scale's and back); /status applies for real (Status.patch).
        return apply_patch("merge", current, document, info=info)
    return apply_patch(kind, current, document, info=info)


class Status(Subresource):
    """``/status``: reads the object; writes change ``status`` only (the strategy's
    ``prepare_for_status_update`` and ``validate_status_update`` hooks apply)."""

    async def get(self, *, namespace: str, name: str) -> Obj:
        return await self.store.get(namespace=namespace, name=name)

    async def update(
        self, obj: Obj, *, namespace: str, name: str, ctx: RequestContext
    ) -> tuple[Obj, bool]:
        store = self.store
        body = store._decode_body(obj, ctx)
        store._check_name_and_namespace(body, namespace=namespace, name=name)
        precondition = bool(body["metadata"].get("resourceVersion"))

        async def build(current: Obj | None) -> Obj:
            if current is None:
                raise store.not_found(name)
            return copy.deepcopy(body)

        return await store.guaranteed_update(
            namespace=namespace,
            name=name,
            ctx=ctx,
            build=build,
            precondition=precondition,
            subresource="status",
            allow_create=False,
            uid_precondition=body["metadata"].get("uid") or "",
        )

    async def patch(
        self, *, namespace: str, name: str, patch: bytes, content_type: str, ctx: RequestContext
    ) -> tuple[Obj, bool]:
        store = self.store
        kind = patch_type(content_type)
        operation = "Update"
        if kind == "apply":
            # upstream: the status field manager owns what the apply sets under its
            # (manager, "status") entry; spec is a reset field there, so it is neither
            # merged into the write (the status split keeps the old spec) nor owned.
            document: Any = store.applied_configuration(patch, ctx)
            operation = "Apply"
            precondition = bool((document.get("metadata") or {}).get("resourceVersion"))
        else:
            document = parse_patch(kind, patch)
            precondition = b'"resourceVersion"' in patch

        async def build(current: Obj | None) -> Obj:
            if current is None:
                raise store.not_found(name)
            if kind == "apply":
                patched = store.applied(current, document, ctx=ctx, subresource="status")
            else:
                patched = apply_patch(kind, current, document, info=store.info)
            return store._after_patch(patched, namespace=namespace, name=name, ctx=ctx)

        return await store.guaranteed_update(
            namespace=namespace,
            name=name,
            ctx=ctx,
            build=build,
            precondition=precondition,
            subresource="status",
            allow_create=False,
            operation=operation,
        )


def scale_of(parent: Obj) -> Obj:
    """The ``autoscaling/v1`` Scale of a Deployment, ReplicaSet, StatefulSet or
    ReplicationController (whose selector is a plain label map)."""
    m = parent.get("metadata") or {}
    spec = parent.get("spec") or {}
    status = parent.get("status") or {}
    wanted = spec.get("selector")
    if parent.get("kind") == "ReplicationController":
        wanted = {"matchLabels": wanted or {}}
    try:
        selector = selectors.selector_to_string(wanted)
    except BadRequest:
        selector = ""
    out_meta: Obj = {"name": m.get("name", "")}
    for key in ("namespace", "uid", "resourceVersion", "creationTimestamp"):
        if m.get(key):
            out_meta[key] = m[key]
    return {
        "kind": "Scale",
        "apiVersion": "autoscaling/v1",
        "metadata": out_meta,
        "spec": {"replicas": int(spec.get("replicas") or 0)},
        "status": {"replicas": int(status.get("replicas") or 0), "selector": selector},
    }


class Scale(Subresource):
    """``/scale`` of the apps workloads: reads and writes ``spec.replicas`` of the parent
    through the parent's update pipeline (so ``generation`` moves, as upstream)."""

    async def get(self, *, namespace: str, name: str) -> Obj:
        return scale_of(await self.store.get(namespace=namespace, name=name))

    def _decode_scale(self, obj: Any, ctx: RequestContext) -> Obj:
        if not isinstance(obj, dict):
            raise decoding.cannot_be_handled(
                SCALE_INFO.gvk, "json: cannot unmarshal array into Go value of type struct"
            )
        decoding.check_type_meta(obj, gvk=SCALE_INFO.gvk)
        out, warnings = decoding.decode_object(obj, gvk=SCALE_INFO.gvk, mode=ctx.field_validation)
        for text in warnings:
            ctx.warn(text)
        return copy.deepcopy(out)

    def _validate(self, scale: Obj, name: str) -> None:
        replicas = (scale.get("spec") or {}).get("replicas", 0)
        if isinstance(replicas, int) and replicas < 0:
            raise invalid_error(
                kind="Scale",
                group="autoscaling",
                name=name,
                errors=[
                    invalid(Path("spec.replicas"), replicas, "must be greater than or equal to 0")
                ],
            )

    def _apply_scale(self, current: Obj, scale: Obj, *, name: str) -> Obj:
        m = scale.get("metadata") or {}
        if (m.get("name") or name) != name:
            raise BadRequest(
                f"the name of the object ({m.get('name')}) does not match the name on the URL "
                f"({name})"
            )
        self._validate(scale, name)
        new = copy.deepcopy(current)
        new.setdefault("spec", {})["replicas"] = int((scale.get("spec") or {}).get("replicas") or 0)
        if m.get("resourceVersion"):
            new["metadata"]["resourceVersion"] = m["resourceVersion"]
        return self.store.to_internal(new)

    async def _write(
        self,
        *,
        namespace: str,
        name: str,
        ctx: RequestContext,
        to_scale: Callable[[Obj], Obj],
        precondition: bool,
    ) -> tuple[Obj, bool]:
        store = self.store

        async def build(current: Obj | None) -> Obj:
            if current is None:
                raise store.not_found(name)
            return self._apply_scale(current, to_scale(current), name=name)

        parent, _ = await store.guaranteed_update(
            namespace=namespace,
            name=name,
            ctx=ctx,
            build=build,
            precondition=precondition,
            allow_create=False,
            fields_subresource="scale",
        )
        return scale_of(parent), False

    async def update(
        self, obj: Obj, *, namespace: str, name: str, ctx: RequestContext
    ) -> tuple[Obj, bool]:
        scale = self._decode_scale(obj, ctx)
        precondition = bool((scale.get("metadata") or {}).get("resourceVersion"))
        return await self._write(
            namespace=namespace,
            name=name,
            ctx=ctx,
            to_scale=lambda _current: scale,
            precondition=precondition,
        )

    async def patch(
        self, *, namespace: str, name: str, patch: bytes, content_type: str, ctx: RequestContext
    ) -> tuple[Obj, bool]:
        kind, document = _patch_document(content_type, patch)

        def to_scale(current: Obj) -> Obj:
            patched = _patched(kind, scale_of(current), document, info=SCALE_INFO)
            return self._decode_scale(patched, ctx)

        return await self._write(
            namespace=namespace,
            name=name,
            ctx=ctx,
            to_scale=to_scale,
            precondition=b'"resourceVersion"' in patch,
        )


class Binding(Subresource):
    """``pods/<name>/binding``: the scheduler's assignment of a pod to a node."""

    async def create(self, obj: Obj, *, namespace: str, name: str, ctx: RequestContext) -> Obj:
        store = self.store
        if not isinstance(obj, dict):
            raise decoding.cannot_be_handled(
                BINDING_GVK, "json: cannot unmarshal array into Go value of type struct"
            )
        decoding.check_type_meta(obj, gvk=BINDING_GVK)
        body, warnings = decoding.decode_object(obj, gvk=BINDING_GVK, mode=ctx.field_validation)
        for text in warnings:
            ctx.warn(text)
        bm = body.get("metadata") or {}
        if (bm.get("name") or name) != name:
            raise BadRequest("name in URL does not match name in Binding object")
        target = body.get("target") or {}
        errs: list[FieldError] = []
        if target.get("kind") not in (None, "", "Node"):
            errs.append(invalid(Path("target.kind"), target.get("kind"), "must be empty or 'Node'"))
        if not target.get("name"):
            errs.append(required(Path("target.name")))
        if errs:
            raise invalid_error(kind="Binding", group="", name=name, errors=errs)
        node = target["name"]
        uid = bm.get("uid") or ""
        rv = bm.get("resourceVersion") or ""
        annotations = bm.get("annotations") or {}

        def conflict(detail: str) -> Conflict:
            return Conflict(
                f'Operation cannot be fulfilled on pods/binding "{name}": {detail}',
                kind="pods/binding",
                name=name,
            )

        def assign(pod: Obj) -> None:
            pm = pod["metadata"]
            key = store._key(namespace, name)
            if uid and uid != pm.get("uid"):
                raise store.conflict(
                    name,
                    storage_precondition_failed(
                        key,
                        f"Precondition failed: UID in precondition: {uid}, UID in object meta: "
                        f"{pm.get('uid', '')}",
                    ),
                )
            if rv and rv != pm.get("resourceVersion"):
                raise store.conflict(
                    name,
                    storage_precondition_failed(
                        key,
                        f"Precondition failed: ResourceVersion in precondition: {rv}, "
                        f"ResourceVersion in object meta: {pm.get('resourceVersion', '')}",
                    ),
                )
            if pm.get("deletionTimestamp"):
                raise conflict(f"pod {name} is being deleted, cannot be assigned to a host")
            spec = pod.setdefault("spec", {})
            if spec.get("nodeName"):
                raise conflict(f'pod {name} is already assigned to node "{spec["nodeName"]}"')
            if spec.get("schedulingGates"):
                raise conflict(f"pod {name} has non-empty .spec.schedulingGates")
            spec["nodeName"] = node
            if annotations:
                pm["annotations"] = {**(pm.get("annotations") or {}), **annotations}
            set_condition(
                pod, {"type": "PodScheduled", "status": "True"}, now=meta.rfc3339(store.now())
            )

        await store.raw_update(
            namespace=namespace, name=name, ctx=ctx, mutate=assign, precondition=bool(rv)
        )
        return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success"}


def set_condition(obj: Obj, condition: Obj, *, now: str) -> None:
    """``UpdatePodCondition``: the condition of that type is replaced whole (an old reason
    and message go); the transition time moves only when the status changes."""
    status = obj.setdefault("status", {})
    conditions: list[Obj] = status.setdefault("conditions", [])
    new = {**condition, "lastProbeTime": None, "lastTransitionTime": now}
    for i, c in enumerate(conditions):
        if c.get("type") == condition["type"]:
            if c.get("status") == condition.get("status"):
                new["lastTransitionTime"] = c.get("lastTransitionTime")
            conditions[i] = new
            return
    conditions.append(new)


class Finalize(Subresource):
    """``namespaces/<name>/finalize``: replaces ``spec.finalizers`` (the namespace
    controller empties it when the namespace's content is gone)."""

    async def update(
        self, obj: Obj, *, namespace: str, name: str, ctx: RequestContext
    ) -> tuple[Obj, bool]:
        store = self.store
        body = store._decode_body(obj, ctx)
        store._check_name_and_namespace(body, namespace="", name=name)
        return await self._finalize(name=name, ctx=ctx, finalizers=lambda _cur: body, body=body)

    async def patch(
        self, *, namespace: str, name: str, patch: bytes, content_type: str, ctx: RequestContext
    ) -> tuple[Obj, bool]:
        store = self.store
        kind, document = _patch_document(content_type, patch)

        def patched(current: Obj) -> Obj:
            out = _patched(kind, current, document, info=store.info)
            return store._after_patch(out, namespace="", name=name, ctx=ctx)

        return await self._finalize(name=name, ctx=ctx, finalizers=patched, body=None)

    async def _finalize(
        self,
        *,
        name: str,
        ctx: RequestContext,
        finalizers: Callable[[Obj], Obj],
        body: Obj | None,
    ) -> tuple[Obj, bool]:
        store = self.store
        rv = ((body or {}).get("metadata") or {}).get("resourceVersion") or ""

        def mutate(ns: Obj) -> None:
            if rv and rv != ns["metadata"].get("resourceVersion"):
                raise store.conflict(name)
            wanted = finalizers(copy.deepcopy(ns))
            names = list((wanted.get("spec") or {}).get("finalizers") or [])
            errs: list[FieldError] = []
            for i, fin in enumerate(names):
                for msg in _finalizer_name_errors(str(fin)):
                    errs.append(invalid(Path("spec.finalizers").index(i), fin, msg))
            if errs:
                raise store.invalid(name, errs)
            spec = ns.setdefault("spec", {})
            if names:
                spec["finalizers"] = names
            else:
                spec.pop("finalizers", None)

        out = await store.raw_update(
            namespace="", name=name, ctx=ctx, mutate=mutate, precondition=bool(rv)
        )
        return out, False


def _finalizer_name_errors(name: str) -> list[str]:
    errs: list[str] = validation.is_qualified_name(name)
    if errs:
        return errs
    if "/" not in name and name not in meta.STANDARD_FINALIZERS:
        return ["name is neither a standard finalizer name nor is it fully qualified"]
    return []


FACTORIES: dict[str, type[Subresource]] = {
    "status": Status,
    "scale": Scale,
    "binding": Binding,
    "finalize": Finalize,
}
"""Subresource name → handler class; names a resource lists in ``ResourceInfo.subresources``
but that are missing here (log, exec, token, eviction...) answer 405 for now."""


def make(store: ResourceStore, name: str) -> Subresource:
    cls = FACTORIES.get(name, Subresource)
    return cls(store, name)
