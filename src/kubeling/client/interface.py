"""The API client every controller, the scheduler, the node agent and DNS program against.

Two transports implement it: ``client.http`` speaks HTTPS to any API server (kubeling's or,
in principle, upstream's); ``client.local`` calls the registry in the same process and skips
HTTP, for the single-process ``kubeling up``. Both raise the same ``StatusError``
subclasses from ``machinery.errors`` and return the same JSON-shaped dicts, so code above
cannot tell them apart.
"""

from __future__ import annotations

import builtins
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Literal, Protocol

from kubeling.machinery.types import Obj, ResourceInfo, WatchEventType

PatchType = Literal["json", "merge", "strategic", "apply"]

PATCH_CONTENT_TYPES: dict[PatchType, str] = {
    "json": "application/json-patch+json",
    "merge": "application/merge-patch+json",
    "strategic": "application/strategic-merge-patch+json",
    "apply": "application/apply-patch+yaml",
}


@dataclass(frozen=True, kw_only=True, slots=True)
class WatchEvent:
    type: WatchEventType
    object: Obj


class Client(Protocol):
    """Typed access to the Kubernetes API. ``resource`` is the served ``ResourceInfo``."""

    async def get(
        self, resource: ResourceInfo, *, name: str, namespace: str = "", subresource: str = ""
    ) -> Obj: ...

    async def list(
        self,
        resource: ResourceInfo,
        *,
        namespace: str = "",
        label_selector: str = "",
        field_selector: str = "",
        limit: int = 0,
        continue_: str = "",
        resource_version: str = "",
        metadata_only: bool = False,
    ) -> Obj:
        """A ``<Kind>List`` with ``metadata.resourceVersion`` (and ``continue``).

        ``metadata_only``: a ``PartialObjectMetadataList`` whose items carry only type meta
        and metadata, as client-go's metadata client asks for them.
        """
        ...

    def watch(
        self,
        resource: ResourceInfo,
        *,
        namespace: str = "",
        label_selector: str = "",
        field_selector: str = "",
        resource_version: str = "",
        allow_bookmarks: bool = True,
        timeout_seconds: int = 0,
        metadata_only: bool = False,
    ) -> AsyncIterator[WatchEvent]:
        """Events after ``resource_version``; raises ``Gone`` when it is too old.

        ``metadata_only``: event objects are ``PartialObjectMetadata``.
        """
        ...

    async def create(
        self,
        resource: ResourceInfo,
        obj: Obj,
        *,
        namespace: str = "",
        subresource: str = "",
        name: str = "",
        dry_run: bool = False,
        field_manager: str = "",
    ) -> Obj:
        """POST to the collection, or to ``name/subresource`` (e.g. ``pods/x/binding``)."""
        ...

    async def update(
        self,
        resource: ResourceInfo,
        obj: Obj,
        *,
        subresource: str = "",
        dry_run: bool = False,
        field_manager: str = "",
    ) -> Obj:
        """PUT; ``obj.metadata.resourceVersion`` is the precondition when set."""
        ...

    async def patch(
        self,
        resource: ResourceInfo,
        *,
        name: str,
        patch: Obj | builtins.list[Obj],
        patch_type: PatchType,
        namespace: str = "",
        subresource: str = "",
        field_manager: str = "",
        force: bool = False,
        dry_run: bool = False,
    ) -> Obj: ...

    async def delete(
        self,
        resource: ResourceInfo,
        *,
        name: str,
        namespace: str = "",
        grace_period_seconds: int | None = None,
        propagation_policy: str = "",
        preconditions: Obj | None = None,
        dry_run: bool = False,
    ) -> Obj:
        """DELETE; returns the object (with deletionTimestamp) or the final Status."""
        ...

    async def close(self) -> None: ...
