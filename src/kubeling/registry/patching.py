"""The four patch formats of a PATCH request, as pure functions: which format a
Content-Type names (``patch_type``), the patch document parsed with upstream's decoding
errors (``parse_patch``), and one patch applied to an object (``apply_patch``).

The merge algorithms themselves live in ``machinery.patch``; this module is only the
request-facing edge, shared by the main resource (``store``) and its subresources
(``subresources``) so both refuse a bad patch with the same words. Server-side apply is
parsed here but merged by ``machinery.managedfields`` through the store, because it needs
the object's managedFields and the request's field manager.
"""

from __future__ import annotations

from typing import Any, Final

import orjson

from kubeling.machinery import decode as decoding
from kubeling.machinery.errors import BadRequest, UnsupportedMediaType
from kubeling.machinery.types import Obj, ResourceInfo

_PATCH_TYPES: Final = (
    "application/apply-patch+yaml",
    "application/json-patch+json",
    "application/merge-patch+json",
    "application/strategic-merge-patch+json",
)


def patch_type(content_type: str) -> str:
    base = content_type.split(";", 1)[0].strip().lower()
    mapping = {
        "application/json-patch+json": "json",
        "application/merge-patch+json": "merge",
        "application/strategic-merge-patch+json": "strategic",
        "application/apply-patch+yaml": "apply",
        "application/apply-patch+cbor": "",
    }
    kind = mapping.get(base, "")
    if not kind:
        raise UnsupportedMediaType(
            "the body of the request was in an unknown format - accepted media types include: "
            + ", ".join(_PATCH_TYPES)
        )
    return kind


def parse_patch(kind: str, raw: bytes) -> Any:
    decoding.check_depth(raw)
    if kind == "apply":
        import yaml

        try:
            doc = yaml.safe_load(raw) if raw.strip() else {}
        except yaml.YAMLError as e:
            raise decoding.yaml_syntax_error(e) from None
        except RecursionError:
            raise decoding.too_deep() from None
        decoding.check_value_depth(doc)
        return doc
    try:
        doc = orjson.loads(raw)
    except orjson.JSONDecodeError as e:
        raise BadRequest(f"error decoding patch: {decoding.go_json_error(raw) or e}") from None
    if kind == "json" and not isinstance(doc, list):
        raise BadRequest("json: cannot unmarshal object into Go value of type jsonpatch.Patch")
    if kind in ("merge", "strategic") and not isinstance(doc, dict):
        raise BadRequest(
            "json: cannot unmarshal array into Go value of type map[string]interface {}"
        )
    return doc


def apply_patch(kind: str, current: Obj, document: Any, *, info: ResourceInfo) -> Obj:
    """One call per patch type into ``machinery.patch``."""
    from kubeling.machinery import patch as patches
    from kubeling.machinery import schema

    if kind == "json":
        out = patches.json_patch(current, document)
    elif kind == "merge":
        out = patches.merge_patch(current, document)
    else:
        out = patches.strategic_merge_patch(current, document, schema=schema.for_kind(info.gvk))
    if not isinstance(out, dict):
        raise BadRequest("the patch produced something that is not an object")
    return out
