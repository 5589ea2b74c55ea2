"""Per-kind behaviour: what the generic REST store asks of each kind.

The generic store (``registry.store``) owns everything every kind shares: metadata, uids,
resourceVersion preconditions, finalizers and graceful deletion, watches, dry runs. A
``Strategy`` adds what only a kind knows, the way upstream's ``rest.RESTCreateStrategy``
and friends do: defaults, semantic validation with upstream's messages, which fields the
status subresource may change, when ``generation`` moves, printer columns and the field
selectors it supports.

Hooks receive JSON-shaped dicts and mutate them in place (defaults, prepare_*) or return
``FieldError`` lists (validate_*); they never touch the store.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

from kubeling.machinery.field import FieldError
from kubeling.machinery.types import Obj, ResourceInfo


@dataclass(frozen=True, kw_only=True)
class Column:
    """A Table column definition (``meta.k8s.io/v1`` TableColumnDefinition)."""

    name: str
    type: str = "string"
    format: str = ""
    description: str = ""
    priority: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "type": self.type,
            "format": self.format,
            "description": self.description,
            "priority": self.priority,
        }


NAME_COLUMN = Column(
    name="Name",
    format="name",
    description="Name must be unique within a namespace.",
)
AGE_COLUMN = Column(
    name="Age",
    description="CreationTimestamp is a timestamp representing the server time when this "
    "object was created.",
)


@dataclass(kw_only=True)
class Strategy:
    """Defaults to the behaviour of a kind with no spec/status split and no extra rules."""

    info: ResourceInfo
    status_subresource: ClassVar[bool] = False
    """If True, main-resource writes keep the stored ``status`` and ``/status`` writes keep
    everything but ``status`` (and metadata labels/annotations, as upstream)."""
    generation_tracks: ClassVar[tuple[str, ...]] = ("spec",)
    """Top-level fields whose change bumps ``metadata.generation``; empty disables it."""
    allow_create_on_update: ClassVar[bool] = False
    """PUT of a missing object creates it (upstream: Events, Leases, Endpoints...)."""
    name_validation: ClassVar[str] = "subdomain"
    """``subdomain`` (RFC 1123 subdomain), ``label`` (RFC 1123 label), ``label1035``
    (RFC 1035 label, Services), or ``segment`` (path segment name only)."""
    allow_unconditional_update: ClassVar[bool] = True
    """A PUT without ``metadata.resourceVersion`` overwrites whatever is stored (upstream's
    ``AllowUnconditionalUpdate``); False answers 422 ``must be specified for an update``."""
    clear_status_on_create: ClassVar[bool | None] = None
    """Drop a client-sent ``status`` on create before ``prepare_for_create``; None means
    "when ``status_subresource``" (Nodes keep theirs: set False)."""
    return_deleted_object: ClassVar[bool | None] = None
    """A finished DELETE answers the object (True) or a Success Status (False); None uses
    upstream's choice for the resource (pods, PVs, PVCs, service accounts, services and
    namespaces answer the object)."""
    field_selector_labels: ClassVar[tuple[str, ...]] = ()
    """Field selector labels this kind supports beyond ``metadata.name`` and
    ``metadata.namespace`` (the keys ``field_labels`` returns); others answer 400
    ``field label not supported: <label>``."""
    extra: dict[str, Any] = field(default_factory=dict)

    # -- create / update ---------------------------------------------------------------------

    def default(self, obj: Obj) -> None:
        """Fill defaults in place, as upstream's SetDefaults_* do (runs on every write)."""

    def prepare_for_create(self, obj: Obj) -> None:
        """Clear what a client may not set on create (status of most kinds)."""

    def prepare_for_update(self, new: Obj, old: Obj) -> None:
        """Carry over what a client may not change through this endpoint."""

    def validate(self, obj: Obj) -> list[FieldError]:
        """Semantic validation of a new object (ValidateX in upstream)."""
        return []

    def validate_update(self, new: Obj, old: Obj) -> list[FieldError]:
        """Update validation: immutable fields and allowed transitions."""
        return self.validate(new)

    def warnings(self, obj: Obj) -> list[str]:
        """``Warning:`` headers for deprecated or suspicious input (code 299)."""
        return []

    # -- delete ------------------------------------------------------------------------------

    def check_graceful_delete(self, obj: Obj, options: Obj) -> int | None:
        """Graceful deletion (upstream ``CheckGracefulDelete``): the grace period in seconds
        this delete gets, or None to delete at once. Only kinds that override this hook
        support graceful deletion (pods: ``spec.terminationGracePeriodSeconds`` unless
        ``options.gracePeriodSeconds``; 0 when unscheduled or terminated). A positive period
        sets ``deletionTimestamp`` (now + period) and ``deletionGracePeriodSeconds`` and
        keeps the object until a delete with grace 0."""
        return None

    # -- status subresource ------------------------------------------------------------------

    def prepare_for_status_update(self, new: Obj, old: Obj) -> None:
        """What a ``/status`` write may not change beyond ``spec`` (which the store keeps
        from old): upstream's status strategy of the kind (e.g. Deployment labels)."""

    def validate_status_update(self, new: Obj, old: Obj) -> list[FieldError]:
        return []

    # -- reading -----------------------------------------------------------------------------

    def columns(self) -> list[Column]:
        """Table columns, ``Name`` first, upstream's order; priority 1 = ``-o wide``."""
        return [NAME_COLUMN, AGE_COLUMN]

    def row(self, obj: Obj, *, now: float) -> list[Any]:
        """One Table row matching ``columns()``; ``now`` is the epoch used for ages."""
        from kubeling.registry.printers import age

        return [obj["metadata"]["name"], age(obj, now=now)]

    def field_labels(self, obj: Obj) -> dict[str, str]:
        """Values for field selectors; ``metadata.name`` and ``metadata.namespace`` are
        always added by the store."""
        return {}
