"""Upstream's type definitions, loaded once and walked by field name.

The ``kubernetes-validate`` package ships the OpenAPI definitions of every built-in kind
for each Kubernetes release, with the extensions that matter to a server:
``x-kubernetes-patch-merge-key`` / ``-patch-strategy`` (strategic merge patch),
``x-kubernetes-list-type`` / ``-list-map-keys`` (server-side apply) and
``x-kubernetes-group-version-kind``. kubeling pins v1.32 and reads those definitions
instead of restating field lists by hand: strict decoding, patching, managed fields and
the ``/openapi/v3`` documents all walk the same ``SchemaNode`` tree.

The JSON is about 1.3 MB; it is parsed lazily on first use and nodes are cached, so start-up
does not pay for it.
"""

from __future__ import annotations

import functools
import importlib.util
import pathlib
from dataclasses import dataclass
from typing import Any, Final

import orjson

from kubeling.machinery import resources
from kubeling.machinery.types import GroupVersionKind

KUBERNETES_VERSION: Final = "v1.32.0"
_DEFINITIONS_DIR: Final = f"kubernetes-json-schema/{KUBERNETES_VERSION}-local"
_REF_PREFIX: Final = "#/$defs/"
QUANTITY_DEFINITION: Final = "io.k8s.apimachinery.pkg.api.resource.Quantity"
INT_OR_STRING_DEFINITION: Final = "io.k8s.apimachinery.pkg.util.intstr.IntOrString"


@functools.cache
def definitions() -> dict[str, Any]:
    """All upstream definitions by their OpenAPI name (``io.k8s.api.core.v1.Pod``)."""
    # find_spec locates the package without running its __init__, which imports jsonschema
    # (about 0.2 s of the start-up budget, spent on every first create); only the data file
    # is needed here.
    spec = importlib.util.find_spec("kubernetes_validate")
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError("the kubernetes-validate package is not installed")
    package = pathlib.Path(next(iter(spec.submodule_search_locations)))
    raw = (package / _DEFINITIONS_DIR / "_definitions.json").read_bytes()
    defs: dict[str, Any] = orjson.loads(raw)["$defs"]
    return defs


@functools.cache
def _gvk_index() -> dict[tuple[str, str, str], str]:
    out: dict[tuple[str, str, str], str] = {}
    for name, d in definitions().items():
        for g in d.get("x-kubernetes-group-version-kind") or ():
            out[(g.get("group", ""), g["version"], g["kind"])] = name
    return out


def definition_name(gvk: GroupVersionKind) -> str | None:
    """The definition name of a kind, e.g. ``io.k8s.api.apps.v1.StatefulSet``."""
    return _gvk_index().get((gvk.group, gvk.version, gvk.kind))


def _types(spec: dict[str, Any]) -> frozenset[str]:
    t = spec.get("type")
    if t is None:
        return frozenset()
    if isinstance(t, str):
        return frozenset({t}) - {"null"}
    return frozenset(t) - {"null"}


@dataclass(frozen=True, eq=False)
class SchemaNode:
    """One point in a type: an object with properties, a list, a map, or a scalar.

    ``field``, ``items`` and ``values`` step into properties, list items and map values;
    they return ``None`` where the schema has no such child (an unknown field).
    """

    spec: dict[str, Any]
    ref: str = ""
    """The definition name this node was reached through, if any (for messages)."""

    @property
    def types(self) -> frozenset[str]:
        """JSON types allowed here, without ``null``; empty means anything
        (IntOrString and Quantity are ``{"string", "integer"|"number"}``)."""
        if "oneOf" in self.spec:
            out: set[str] = set()
            for alt in self.spec["oneOf"]:
                out |= _types(alt)
            return frozenset(out)
        return _types(self.spec)

    @property
    def is_object(self) -> bool:
        return "properties" in self.spec

    @property
    def is_map(self) -> bool:
        """A ``map[string]T``: any key allowed, values of one type."""
        return "additionalProperties" in self.spec and "properties" not in self.spec

    @property
    def is_list(self) -> bool:
        return "items" in self.spec

    @property
    def is_free_form(self) -> bool:
        """Arbitrary JSON (``RawExtension``, ``JSON``, ``fieldsV1``): no field checks below."""
        return (
            not self.is_object
            and not self.is_map
            and not self.is_list
            and (not self.types or self.types == frozenset({"object"}))
        )

    @property
    def required(self) -> tuple[str, ...]:
        return tuple(self.spec.get("required") or ())

    @property
    def properties(self) -> tuple[str, ...]:
        return tuple((self.spec.get("properties") or {}).keys())

    @functools.cached_property
    def property_names(self) -> frozenset[str]:
        """The object's property names as a set, computed once per node (for membership
        tests in hot paths)."""
        return frozenset(self.spec.get("properties") or ())

    @property
    def is_quantity(self) -> bool:
        """A ``resource.Quantity`` (a string such as ``1Gi``, or a JSON number)."""
        return self.ref == QUANTITY_DEFINITION

    @property
    def is_int_or_string(self) -> bool:
        """An ``intstr.IntOrString`` (``80`` or ``"http"``)."""
        return self.ref == INT_OR_STRING_DEFINITION

    @property
    def description(self) -> str:
        return str(self.spec.get("description", ""))

    @property
    def format(self) -> str:
        return str(self.spec.get("format", ""))

    @property
    def enum(self) -> tuple[Any, ...]:
        return tuple(v for v in self.spec.get("enum") or () if v is not None)

    # -- list and patch metadata (on the list-typed field itself) -----------------------------

    @property
    def patch_strategy(self) -> frozenset[str]:
        """``{"merge"}``, ``{"merge", "retainKeys"}``, ``{"replace"}`` or empty."""
        raw = self.spec.get("x-kubernetes-patch-strategy", "")
        return frozenset(s for s in raw.split(",") if s)

    @property
    def patch_merge_key(self) -> str:
        return str(self.spec.get("x-kubernetes-patch-merge-key", ""))

    @property
    def list_type(self) -> str:
        """``atomic`` (the default for lists), ``set`` or ``map``."""
        return str(self.spec.get("x-kubernetes-list-type", "atomic"))

    @property
    def list_map_keys(self) -> tuple[str, ...]:
        return tuple(self.spec.get("x-kubernetes-list-map-keys") or ())

    @property
    def map_type(self) -> str:
        """``granular`` (the default for maps and structs) or ``atomic``."""
        return str(self.spec.get("x-kubernetes-map-type", "granular"))

    # -- stepping -------------------------------------------------------------------------------

    def field(self, name: str) -> SchemaNode | None:
        props = self.spec.get("properties")
        if not props or name not in props:
            return None
        return _node(props[name])

    def items(self) -> SchemaNode | None:
        if "items" not in self.spec:
            return None
        return _node(self.spec["items"])

    def values(self) -> SchemaNode | None:
        add = self.spec.get("additionalProperties")
        if not isinstance(add, dict):
            return None
        return _node(add)


def _node(spec: dict[str, Any]) -> SchemaNode:
    """Resolve a property spec: follow ``$ref`` (also under ``allOf``) and keep the
    list/patch extensions, which upstream puts on the referencing property."""
    ref = spec.get("$ref")
    if ref is None and len(spec.get("allOf") or ()) == 1:
        ref = spec["allOf"][0].get("$ref")
    if ref is None:
        return SchemaNode(spec)
    name = ref.removeprefix(_REF_PREFIX)
    target = definitions()[name]
    extras = {k: v for k, v in spec.items() if k.startswith("x-kubernetes-")}
    if extras:
        return SchemaNode({**target, **extras}, ref=name)
    return _definition_node(name)


@functools.cache
def _definition_node(name: str) -> SchemaNode:
    return SchemaNode(definitions()[name], ref=name)


def for_kind(gvk: GroupVersionKind) -> SchemaNode | None:
    """The root node of a kind, or ``None`` when upstream has no such kind."""
    name = definition_name(gvk)
    return _definition_node(name) if name else None


def for_definition(name: str) -> SchemaNode:
    return _definition_node(name)


def kinds_with_definitions() -> dict[GroupVersionKind, str]:
    """Every kind upstream defines, mapped to its definition name."""
    return {
        GroupVersionKind(group=g, version=v, kind=k): name
        for (g, v, k), name in _gvk_index().items()
    }


def served_definitions() -> dict[GroupVersionKind, str]:
    """The definition name of each kind kubeling serves (``machinery.resources.ALL``);
    served kinds upstream does not define are left out."""
    out: dict[GroupVersionKind, str] = {}
    for r in resources.ALL:
        name = definition_name(r.gvk)
        if name is not None:
            out[r.gvk] = name
    return out
