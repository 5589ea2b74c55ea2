"""Content negotiation: what the client wants back, and what it sent.

Answers are always JSON (every client lists ``application/json`` among its Accept types);
the choice that matters is the ``meta.k8s.io`` form asked for: a ``Table``, which is how
``kubectl get`` gets its columns, or ``PartialObjectMetadata``, which is how metadata-only
clients (client-go's metadata informers, kubeling's own garbage collector over HTTP) read.
Request bodies arrive as JSON, YAML (server-side apply from non-kubectl clients), or the
``k8s\\0`` protobuf envelope that kubectl's typed commands (``create configmap``,
``create secret``...) send with no JSON fallback.
"""

from __future__ import annotations

import functools
from typing import Any, Final

from kubeling.machinery import decode
from kubeling.machinery.errors import NotAcceptable, UnsupportedMediaType

PROTOBUF: Final = "application/vnd.kubernetes.protobuf"
PATCH_TYPES: Final[dict[str, str]] = {
    "application/json-patch+json": "json",
    "application/merge-patch+json": "merge",
    "application/strategic-merge-patch+json": "strategic",
    "application/apply-patch+yaml": "apply",
    "application/apply-patch+cbor": "apply-cbor",
}
_ACCEPTED: Final = "application/json, application/yaml, application/vnd.kubernetes.protobuf"


TABLE: Final = "Table"
PARTIAL: Final = "PartialObjectMetadata"
PARTIAL_LIST: Final = "PartialObjectMetadataList"
NOT_ACCEPTABLE: Final = "!"
_FORMS: Final = (TABLE, PARTIAL, PARTIAL_LIST)
_SERVED_MEDIA_TYPES: Final = (
    "application/json, application/yaml, application/vnd.kubernetes.protobuf"
)


@functools.lru_cache(maxsize=64)
def answer_form(accept: bytes, *, listing: bool) -> tuple[str, str]:
    """The ``meta.k8s.io`` form the first acceptable media type asks for, and its version:
    ``("Table", "v1")``, ``("PartialObjectMetadata", "v1")``, ``("PartialObjectMetadataList",
    "v1")``, ``("", "")`` for the object itself, or ``NOT_ACCEPTABLE`` when every type
    listed asks for a form kubeling does not serve. Whether a partial form fits the request
    (a list for a list) is the caller's check, as upstream answers a mismatch with its own
    406 rather than trying the next type."""
    if b"as=" not in accept:
        return "", ""
    for part in accept.decode("latin-1").split(","):
        media, *params = (p.strip() for p in part.split(";"))
        if media not in ("application/json", "*/*", "application/*"):
            continue
        values = dict(p.partition("=")[::2] for p in params)
        form = values.get("as")
        if form is None:
            # A plain JSON type listed before any other form wins.
            return "", ""
        if form not in _FORMS:
            continue
        if values.get("g") == "meta.k8s.io" and values.get("v") in ("v1", "v1beta1"):
            return form, values["v"]
    return NOT_ACCEPTABLE, ""


def not_acceptable(form: str, *, listing: bool, type_name: str) -> NotAcceptable | None:
    """upstream's 406 for ``form`` when it cannot answer this request, else None.

    ``type_name`` stands for the Go type upstream prints (``*core.ConfigMapList``)."""
    if form == NOT_ACCEPTABLE:
        return NotAcceptable(f"only the following media types are accepted: {_SERVED_MEDIA_TYPES}")
    if form == PARTIAL and listing:
        return NotAcceptable(
            f"you requested {PARTIAL}, but the requested object is a list ({type_name})"
        )
    if form == PARTIAL_LIST and not listing:
        return NotAcceptable(
            f"you requested {PARTIAL_LIST}, but the requested object is not a list ({type_name})"
        )
    return None


def table_version(accept: bytes) -> str:
    """``v1`` or ``v1beta1`` when the first acceptable media type is a Table, else ``""``."""
    if b"Table" not in accept:
        return ""
    form, version = answer_form(accept, listing=True)
    return version if form == TABLE else ""


def media_type(content_type: bytes) -> str:
    return content_type.decode("latin-1").partition(";")[0].strip().lower()


def decode_body(raw: bytes, content_type: bytes) -> Any:
    """Parse a POST/PUT body into JSON-shaped data (duplicate keys kept for strict decoding)."""
    media = media_type(content_type)
    if media in ("", "application/json", "*/*"):
        return decode.loads(raw)
    if media in ("application/yaml", "application/x-yaml", "text/yaml"):
        return load_yaml(raw)
    if media == PROTOBUF:
        from kubeling.machinery import protobuf

        return protobuf.decode(raw)
    raise UnsupportedMediaType(
        f"the body of the request was in an unknown format - accepted media types include: "
        f"{_ACCEPTED}"
    )


def load_yaml(raw: bytes) -> Any:
    stripped = raw.lstrip()
    if stripped[:1] in (b"{", b"["):
        # kubectl sends server-side apply bodies as JSON text, which is valid YAML.
        return decode.loads(raw)
    import yaml

    decode.check_depth(raw)
    try:
        doc = yaml.safe_load(raw)
    except yaml.YAMLError as e:
        raise decode.yaml_syntax_error(e) from e
    except RecursionError:
        raise decode.too_deep() from None
    decode.check_value_depth(doc)
    return doc


def decode_patch(raw: bytes, content_type: bytes) -> tuple[str, Any]:
    """The patch type (``json``, ``merge``, ``strategic``, ``apply``) and the parsed patch."""
    media = media_type(content_type)
    patch_type = PATCH_TYPES.get(media)
    if patch_type is None or patch_type == "apply-cbor":
        raise UnsupportedMediaType(
            f"the body of the request was in an unknown format - accepted media types include: "
            f"{', '.join(t for t in PATCH_TYPES if not t.endswith('cbor'))}"
        )
    if patch_type == "apply":
        return patch_type, load_yaml(raw)
    return patch_type, decode.loads(raw)
