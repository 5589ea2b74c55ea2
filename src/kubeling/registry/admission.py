"""Admission: the built-in plugins every write passes through, in upstream's two phases.

Mutating plugins run before the object is prepared and validated; validating plugins run
after validation, just before the write (upstream's ``createValidation`` /
``updateValidation``). Plugins see an ``Attributes`` record, may change ``obj`` in the
mutating phase, and reject by raising a ``StatusError``.

kubeling ships the plugins a stock cluster relies on: ``NamespaceLifecycle`` (no content in
missing or terminating namespaces; the immortal namespaces cannot be deleted) and the
``kubernetes.io/metadata.name`` label upstream puts on every Namespace. Plugins read
namespaces through a lookup function the registry provides, never through a client.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Final, Literal, Protocol

from kubeling.machinery.errors import Cause, Forbidden, NotFound
from kubeling.machinery.types import Obj, ResourceInfo
from kubeling.registry.context import RequestContext

Operation = Literal["CREATE", "UPDATE", "DELETE", "CONNECT"]
NamespaceLookup = Callable[[str], Awaitable[Obj | None]]

# upstream's NamespaceLifecycle registration: default, kube-system and kube-public.
# kube-node-lease is not among them; the bootstrap recreates it if it is deleted.
IMMORTAL_NAMESPACES: Final = frozenset({"default", "kube-system", "kube-public"})
METADATA_NAME_LABEL: Final = "kubernetes.io/metadata.name"
NAMESPACE_TERMINATING_CAUSE: Final = "NamespaceTerminating"


@dataclass(kw_only=True)
class Attributes:
    operation: Operation
    info: ResourceInfo
    namespace: str
    name: str
    obj: Obj | None
    old: Obj | None = None
    subresource: str = ""
    ctx: RequestContext = field(default_factory=RequestContext)

    @property
    def dry_run(self) -> bool:
        return self.ctx.dry_run


class Plugin(Protocol):
    async def admit(self, a: Attributes) -> None:
        """Mutating phase: may change ``a.obj``."""

    async def validate(self, a: Attributes) -> None:
        """Validating phase: may only reject."""


def forbidden(a: Attributes, reason: str, *, causes: Sequence[Cause] = ()) -> Forbidden:
    """``admission.NewForbidden``: ``<resource> "<name>" is forbidden: <reason>``; the name
    falls back to the object's, then to ``Unknown``."""
    name = a.name or ((a.obj or {}).get("metadata") or {}).get("name") or "Unknown"
    return Forbidden(
        f'{a.info.qualified} "{name}" is forbidden: {reason}',
        kind=a.info.plural,
        group=a.info.group,
        name=name,
        causes=list(causes),
    )


class NamespaceLifecycle:
    """Upstream's ``NamespaceLifecycle`` admission plugin."""

    def __init__(self, lookup: NamespaceLookup) -> None:
        self._lookup = lookup

    async def admit(self, a: Attributes) -> None:
        if a.operation == "DELETE" and a.info.kind == "Namespace" and not a.info.group:
            if a.name in IMMORTAL_NAMESPACES:
                raise forbidden(a, "this namespace may not be deleted")
            return
        if not a.info.namespaced or not a.namespace:
            return
        if a.operation not in ("CREATE", "UPDATE"):
            return
        ns = await self._lookup(a.namespace)
        if ns is None:
            raise NotFound.for_object(resource="namespaces", group="", name=a.namespace)
        if a.operation != "CREATE":
            return
        if (ns.get("status") or {}).get("phase") != "Terminating":
            return
        raise forbidden(
            a,
            f"unable to create new content in namespace {a.namespace} because it is being "
            "terminated",
            causes=[
                Cause(
                    reason=NAMESPACE_TERMINATING_CAUSE,
                    message=f"namespace {a.namespace} is being terminated",
                    field="metadata.namespace",
                )
            ],
        )

    async def validate(self, a: Attributes) -> None:
        return None


class NamespaceNameLabel:
    """Every Namespace carries ``kubernetes.io/metadata.name: <name>`` (upstream sets it on
    create and on every update, so a client cannot remove or change it)."""

    async def admit(self, a: Attributes) -> None:
        if a.info.kind != "Namespace" or a.info.group or a.obj is None:
            return
        if a.operation not in ("CREATE", "UPDATE"):
            return
        meta = a.obj.setdefault("metadata", {})
        name = meta.get("name") or a.name
        if name:
            labels = meta.get("labels") or {}
            labels[METADATA_NAME_LABEL] = name
            meta["labels"] = labels

    async def validate(self, a: Attributes) -> None:
        return None


class Chain:
    """The configured plugins, run in order for each phase."""

    def __init__(self, plugins: Sequence[Plugin]) -> None:
        self.plugins = list(plugins)

    async def admit(self, a: Attributes) -> None:
        for p in self.plugins:
            await p.admit(a)

    async def validate(self, a: Attributes) -> None:
        for p in self.plugins:
            await p.validate(a)


def default_chain(lookup: NamespaceLookup) -> Chain:
    return Chain([NamespaceLifecycle(lookup), NamespaceNameLabel()])
