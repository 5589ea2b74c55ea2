"""The names kubeling's signatures use for objects, resources and revisions.

Objects stay what they are on the wire: JSON-shaped dicts. A typed model per kind would
have to be kept in step with the upstream schema by hand; the schema itself (see
``machinery.schema``) is the one source of truth for field names and types, and code that
needs structure reads it with the small accessors in ``machinery.objects``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal, NewType

Obj = dict[str, Any]
"""A Kubernetes object (or list, or Status) as decoded JSON."""

Uid = NewType("Uid", str)
Revision = NewType("Revision", int)
"""A store revision; its decimal text is the ``resourceVersion``."""

WatchEventType = Literal["ADDED", "MODIFIED", "DELETED", "BOOKMARK", "ERROR"]


@dataclass(frozen=True, kw_only=True)
class GroupVersionKind:
    group: str
    version: str
    kind: str

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version


@dataclass(frozen=True, kw_only=True)
class ResourceInfo:
    """One served resource: what discovery lists and what routing and storage key on."""

    group: str
    version: str
    kind: str
    plural: str
    singular: str
    namespaced: bool
    short_names: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    verbs: tuple[str, ...] = (
        "create",
        "delete",
        "deletecollection",
        "get",
        "list",
        "patch",
        "update",
        "watch",
    )
    subresources: tuple[str, ...] = ()
    """Served subresources, e.g. ``("status", "scale")``."""
    storage_resource: str = ""
    """The store key's resource segment when it differs from ``plural`` (events.k8s.io
    events share core events' storage); empty means ``plural``."""
    storage_group: str | None = None
    """The store key's group segment when it differs from ``group``."""
    extra: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def gvk(self) -> GroupVersionKind:
        return GroupVersionKind(group=self.group, version=self.version, kind=self.kind)

    @property
    def qualified(self) -> str:
        """``pods`` or ``deployments.apps``: how errors name the resource."""
        return f"{self.plural}.{self.group}" if self.group else self.plural

    def path(self, *, namespace: str | None = None, name: str | None = None) -> str:
        """The REST path of the collection or of one object."""
        base = f"/apis/{self.group}/{self.version}" if self.group else f"/api/{self.version}"
        if self.namespaced and namespace:
            base = f"{base}/namespaces/{namespace}"
        base = f"{base}/{self.plural}"
        return f"{base}/{name}" if name else base
