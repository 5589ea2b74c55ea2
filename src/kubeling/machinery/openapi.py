"""The ``/openapi/v3`` documents: one per served group-version, plus the root listing them.

kubectl reads these for two things: whether the server validates fields itself (the PATCH
operation of a kind must list ``fieldValidation``; otherwise kubectl falls back to client-side
validation against ``/openapi/v2``) and ``kubectl explain``.
The documents are built from the same upstream v1.32 definitions ``machinery.schema`` walks,
converted back to OpenAPI v3 form (``#/components/schemas/`` refs, single ``type`` strings,
``oneOf`` for Quantity and IntOrString), with ``paths`` for exactly the resources kubeling
serves (``machinery.resources.ALL``). Building one costs tens of milliseconds, so each
document is built on first request and its bytes and hash are kept for the process' life.

``/openapi/v2`` is served as an empty protobuf ``openapi_v2.Document`` (``V2_DOCUMENT``): kubectl
downloads it only for client-side validation of a kind the v3 documents do not list (a typo'd
``apiVersion``/``kind``), finds no model for it, skips validation and reaches its REST-mapping
error (``no matches for kind ...``) as it does against upstream.
"""

from __future__ import annotations

import functools
import hashlib
from typing import Any, Final

import orjson

from kubeling.machinery import resources, schema
from kubeling.machinery.types import GroupVersionKind, ResourceInfo

_SCHEMA_PREFIX: Final = "#/components/schemas/"
_DEF_PREFIX: Final = "#/$defs/"
_META: Final = "io.k8s.apimachinery.pkg.apis.meta.v1."
_QUANTITY: Final = "io.k8s.apimachinery.pkg.api.resource.Quantity"
_INT_OR_STRING: Final = "io.k8s.apimachinery.pkg.util.intstr.IntOrString"
_SCALE: Final = "io.k8s.api.autoscaling.v1.Scale"
_SCALE_GVK: Final = GroupVersionKind(group="autoscaling", version="v1", kind="Scale")

# upstream publishes these two as oneOf in v3 (OpenAPIV3OneOfTypes on the Go types)
_ONE_OF: Final[dict[str, dict[str, Any]]] = {
    _QUANTITY: {"oneOf": [{"type": "string"}, {"type": "number"}]},
    _INT_OR_STRING: {"oneOf": [{"type": "integer"}, {"type": "string"}]},
}
_ALWAYS: Final = (
    _META + "Status",
    _META + "DeleteOptions",
    _META + "Patch",
    _META + "WatchEvent",
    _META + "APIResourceList",
)
_RESPONSE_TYPES: Final = (
    "application/json",
    "application/yaml",
    "application/vnd.kubernetes.protobuf",
)
_PATCH_TYPES: Final = (
    "application/apply-patch+yaml",
    "application/json-patch+json",
    "application/merge-patch+json",
    "application/strategic-merge-patch+json",
)


# -- schema conversion ----------------------------------------------------------------------------


def _convert(spec: dict[str, Any], refs: set[str], *, strip_enum: bool = False) -> dict[str, Any]:
    """One JSON-Schema node of the definitions file → its OpenAPI v3 form."""
    out: dict[str, Any] = {}
    for key, value in spec.items():
        if key == "$ref":
            continue
        if key == "type":
            types = [value] if isinstance(value, str) else [t for t in value if t != "null"]
            if len(types) == 1:
                out["type"] = types[0]
            elif types:
                out["oneOf"] = [{"type": t} for t in types]
        elif key == "properties":
            out[key] = {
                name: _convert(p, refs, strip_enum=name in ("apiVersion", "kind"))
                for name, p in value.items()
            }
        elif key in ("items", "additionalProperties") and isinstance(value, dict):
            out[key] = _convert(value, refs)
        elif key in ("allOf", "oneOf", "anyOf"):
            out[key] = [_convert(x, refs) for x in value]
        elif key == "enum":
            if not strip_enum:
                values = [v for v in value if v is not None]
                if values:
                    out[key] = values
        else:
            out[key] = value
    ref = spec.get("$ref")
    if ref is not None:
        name = str(ref).removeprefix(_DEF_PREFIX)
        refs.add(name)
        target = {"$ref": _SCHEMA_PREFIX + name}
        if not out:
            return target
        # upstream's v3 wraps a described reference in allOf (siblings of $ref are ignored)
        return {"allOf": [target], **out}
    return out


def _definition(name: str, refs: set[str]) -> dict[str, Any]:
    spec = schema.definitions()[name]
    if name in _ONE_OF:
        out = dict(_ONE_OF[name])
        if "description" in spec:
            out = {"description": spec["description"], **out}
        return out
    return _convert(spec, refs)


def _components(roots: set[str]) -> dict[str, Any]:
    """Every definition reachable from ``roots``, converted, sorted by name."""
    done: dict[str, Any] = {}
    todo = sorted(roots)
    while todo:
        name = todo.pop()
        if name in done:
            continue
        refs: set[str] = set()
        done[name] = _definition(name, refs)
        todo.extend(r for r in refs if r not in done)
    return dict(sorted(done.items()))


# -- paths ----------------------------------------------------------------------------------------


def _query(name: str, typ: str = "string", *, unique: bool = True) -> dict[str, Any]:
    out: dict[str, Any] = {"name": name, "in": "query", "schema": {"type": typ}}
    if unique:
        out["uniqueItems"] = True
    return out


def _path_param(name: str) -> dict[str, Any]:
    return {
        "name": name,
        "in": "path",
        "required": True,
        "schema": {"type": "string", "uniqueItems": True},
    }


_WRITE_PARAMS: Final = (_query("dryRun"), _query("fieldManager"), _query("fieldValidation"))
_PATCH_PARAMS: Final = (*_WRITE_PARAMS, _query("force", "boolean"))
_LIST_PARAMS: Final = (
    _query("allowWatchBookmarks", "boolean"),
    _query("continue"),
    _query("fieldSelector"),
    _query("labelSelector"),
    _query("limit", "integer"),
    _query("resourceVersion"),
    _query("resourceVersionMatch"),
    _query("sendInitialEvents", "boolean"),
    _query("timeoutSeconds", "integer"),
    _query("watch", "boolean"),
)
_DELETE_PARAMS: Final = (
    _query("dryRun"),
    _query("gracePeriodSeconds", "integer"),
    _query("ignoreStoreReadErrorWithClusterBreakingPotential", "boolean"),
    _query("orphanDependents", "boolean"),
    _query("propagationPolicy"),
)


def _ref(name: str) -> dict[str, Any]:
    return {"$ref": _SCHEMA_PREFIX + name}


def _responses(codes: tuple[str, ...], schema_name: str) -> dict[str, Any]:
    content = {t: {"schema": _ref(schema_name)} for t in _RESPONSE_TYPES}
    out: dict[str, Any] = {c: {"description": _CODE_TEXT[c], "content": content} for c in codes}
    out["401"] = {"description": "Unauthorized"}
    return out


_CODE_TEXT: Final = {"200": "OK", "201": "Created", "202": "Accepted"}


def _op_id_parts(r: ResourceInfo) -> tuple[str, str]:
    """``("CoreV1", "core_v1")`` / ``("StorageV1", "storage_v1")``: upstream's op-id prefix
    and tag for a group-version."""
    label = r.group.split(".", 1)[0] if r.group else "core"
    camel = label[:1].upper() + label[1:] + r.version[:1].upper() + r.version[1:]
    return camel, f"{label}_{r.version}"


def _gvk_ext(gvk: GroupVersionKind) -> dict[str, str]:
    return {"group": gvk.group, "version": gvk.version, "kind": gvk.kind}


def _operation(
    *,
    action: str,
    op_id: str,
    tag: str,
    gvk: GroupVersionKind,
    params: tuple[dict[str, Any], ...],
    responses: dict[str, Any],
    body: dict[str, Any] | None = None,
) -> dict[str, Any]:
    op: dict[str, Any] = {"tags": [tag], "operationId": op_id}
    if params:
        op["parameters"] = list(params)
    if body is not None:
        op["requestBody"] = body
    op["responses"] = responses
    op["x-kubernetes-action"] = action
    op["x-kubernetes-group-version-kind"] = _gvk_ext(gvk)
    return op


def _json_body(schema_name: str) -> dict[str, Any]:
    return {
        "content": {"*/*": {"schema": _ref(schema_name)}},
        "required": True,
    }


def _patch_body() -> dict[str, Any]:
    return {
        "content": {t: {"schema": _ref(_META + "Patch")} for t in _PATCH_TYPES},
        "required": True,
    }


def _resource_paths(r: ResourceInfo, kind_def: str) -> dict[str, Any]:
    camel, tag = _op_id_parts(r)
    gvk = r.gvk
    kind = r.kind
    scoped = "Namespaced" if r.namespaced else ""
    prefix = f"/apis/{r.group}/{r.version}" if r.group else f"/api/{r.version}"
    base = (
        f"{prefix}/namespaces/{{namespace}}/{r.plural}" if r.namespaced else f"{prefix}/{r.plural}"
    )
    item = base + "/{name}"
    list_def = kind_def + "List"
    ns_params = [_path_param("namespace")] if r.namespaced else []
    verbs = set(r.verbs)
    paths: dict[str, Any] = {}

    collection: dict[str, Any] = {}
    if "list" in verbs:
        collection["get"] = _operation(
            action="list",
            op_id=f"list{camel}{scoped}{kind}",
            tag=tag,
            gvk=gvk,
            params=_LIST_PARAMS,
            responses=_responses(("200",), list_def),
        )
    if "create" in verbs:
        collection["post"] = _operation(
            action="post",
            op_id=f"create{camel}{scoped}{kind}",
            tag=tag,
            gvk=gvk,
            params=_WRITE_PARAMS,
            body=_json_body(kind_def),
            responses=_responses(("200", "201", "202"), kind_def),
        )
    if "deletecollection" in verbs:
        collection["delete"] = _operation(
            action="deletecollection",
            op_id=f"delete{camel}Collection{scoped}{kind}",
            tag=tag,
            gvk=gvk,
            params=(*_DELETE_PARAMS, *_LIST_PARAMS[1:-1]),
            body=_json_body(_META + "DeleteOptions"),
            responses=_responses(("200",), _META + "Status"),
        )
    if collection:
        collection["parameters"] = [*ns_params, _query("pretty")]
        paths[base] = collection

    one: dict[str, Any] = {}
    if "get" in verbs:
        one["get"] = _operation(
            action="get",
            op_id=f"read{camel}{scoped}{kind}",
            tag=tag,
            gvk=gvk,
            params=(),
            responses=_responses(("200",), kind_def),
        )
    if "update" in verbs:
        one["put"] = _operation(
            action="put",
            op_id=f"replace{camel}{scoped}{kind}",
            tag=tag,
            gvk=gvk,
            params=_WRITE_PARAMS,
            body=_json_body(kind_def),
            responses=_responses(("200", "201"), kind_def),
        )
    if "patch" in verbs:
        one["patch"] = _operation(
            action="patch",
            op_id=f"patch{camel}{scoped}{kind}",
            tag=tag,
            gvk=gvk,
            params=_PATCH_PARAMS,
            body=_patch_body(),
            responses=_responses(("200", "201"), kind_def),
        )
    if "delete" in verbs:
        one["delete"] = _operation(
            action="delete",
            op_id=f"delete{camel}{scoped}{kind}",
            tag=tag,
            gvk=gvk,
            params=_DELETE_PARAMS,
            body=_json_body(_META + "DeleteOptions"),
            responses=_responses(("200", "202"), _META + "Status"),
        )
    if one:
        one["parameters"] = [_path_param("name"), *ns_params, _query("pretty")]
        paths[item] = one

    if r.namespaced and "list" in verbs:
        paths[f"{prefix}/{r.plural}"] = {
            "get": _operation(
                action="list",
                op_id=f"list{camel}{kind}ForAllNamespaces",
                tag=tag,
                gvk=gvk,
                params=_LIST_PARAMS,
                responses=_responses(("200",), list_def),
            ),
            "parameters": [_query("pretty")],
        }

    for sub, sub_gvk, sub_def in (("status", gvk, kind_def), ("scale", _SCALE_GVK, _SCALE)):
        if sub not in r.subresources:
            continue
        suffix = sub[:1].upper() + sub[1:]
        paths[f"{item}/{sub}"] = {
            "get": _operation(
                action="get",
                op_id=f"read{camel}{scoped}{kind}{suffix}",
                tag=tag,
                gvk=sub_gvk,
                params=(),
                responses=_responses(("200",), sub_def),
            ),
            "put": _operation(
                action="put",
                op_id=f"replace{camel}{scoped}{kind}{suffix}",
                tag=tag,
                gvk=sub_gvk,
                params=_WRITE_PARAMS,
                body=_json_body(sub_def),
                responses=_responses(("200", "201"), sub_def),
            ),
            "patch": _operation(
                action="patch",
                op_id=f"patch{camel}{scoped}{kind}{suffix}",
                tag=tag,
                gvk=sub_gvk,
                params=_PATCH_PARAMS,
                body=_patch_body(),
                responses=_responses(("200", "201"), sub_def),
            ),
            "parameters": [_path_param("name"), *ns_params, _query("pretty")],
        }
    return paths


# -- documents ------------------------------------------------------------------------------------


def _gv_path(r: ResourceInfo) -> str:
    return f"apis/{r.group}/{r.version}" if r.group else f"api/{r.version}"


@functools.cache
def group_version_paths() -> tuple[str, ...]:
    """The served group-versions as the root document names them (``api/v1``,
    ``apis/apps/v1``...), sorted."""
    return tuple(sorted({_gv_path(r) for r in resources.ALL}))


def _build(gv_path: str) -> dict[str, Any]:
    paths: dict[str, Any] = {}
    roots: set[str] = set(_ALWAYS)
    for r in resources.ALL:
        if _gv_path(r) != gv_path:
            continue
        kind_def = schema.definition_name(r.gvk)
        if kind_def is None:
            # TODO(#2): a served kind without an upstream definition gets no paths; kubectl
            # then validates it client-side against the empty /openapi/v2 (no validation).
            continue
        roots.add(kind_def)
        if kind_def + "List" in schema.definitions():
            roots.add(kind_def + "List")
        if "scale" in r.subresources:
            roots.add(_SCALE)
        paths.update(_resource_paths(r, kind_def))
    return {
        "openapi": "3.0.0",
        "info": {"title": "Kubernetes", "version": schema.KUBERNETES_VERSION},
        "paths": dict(sorted(paths.items())),
        "components": {
            "schemas": _components(roots),
            "securitySchemes": {
                "BearerToken": {
                    "type": "apiKey",
                    "description": "Bearer Token authentication",
                    "name": "authorization",
                    "in": "header",
                }
            },
        },
        "security": [{"BearerToken": []}],
    }


@functools.cache
def _document(gv_path: str) -> tuple[bytes, str]:
    data = orjson.dumps(_build(gv_path))
    # upstream's ETag and ?hash= value: the SHA-512 of the document, upper-case hex
    return data, hashlib.sha512(data).hexdigest().upper()


def _normalize(path: str) -> str:
    return path.removeprefix("/").removeprefix("openapi/v3/").split("?", 1)[0].rstrip("/")


def group_version_document(path: str) -> bytes | None:
    """The JSON bytes of one group-version's document (``api/v1``, ``apis/apps/v1``; a leading
    ``/openapi/v3/`` is accepted), or ``None`` when that group-version is not served."""
    gv = _normalize(path)
    if gv not in group_version_paths():
        return None
    return _document(gv)[0]


def group_version_hash(path: str) -> str | None:
    """The document's hash (the root's ``?hash=`` value and the ``ETag``), or ``None``."""
    gv = _normalize(path)
    if gv not in group_version_paths():
        return None
    return _document(gv)[1]


@functools.cache
def root_document() -> bytes:
    """``GET /openapi/v3``: ``{"paths": {"api/v1": {"serverRelativeURL": ...}, ...}}``."""
    paths = {
        gv: {"serverRelativeURL": f"/openapi/v3/{gv}?hash={_document(gv)[1]}"}
        for gv in group_version_paths()
    }
    return orjson.dumps({"paths": paths})


def _pb_string(field_number: int, text: str) -> bytes:
    """One length-delimited protobuf field (wire type 2); short enough for a one-byte length."""
    data = text.encode()
    assert len(data) < 128
    return bytes([field_number << 3 | 2, len(data)]) + data


# gnostic's openapi_v2.Document: swagger = 1, info = 2 (Info: title = 1, version = 2); no
# definitions, so every kind is one kubectl has no client-side schema for.
_V2_INFO: Final = _pb_string(1, "Kubernetes") + _pb_string(2, "v1.32.0")
V2_DOCUMENT: Final = _pb_string(1, "2.0") + bytes([2 << 3 | 2, len(_V2_INFO)]) + _V2_INFO
# upstream answers with the dotted form: the "@" of the Accept type kubectl sends does not parse
# as a media type, and client-go refuses a response whose Content-Type does not parse
V2_CONTENT_TYPE: Final = "application/com.github.proto-openapi.spec.v2.v1.0+protobuf"
