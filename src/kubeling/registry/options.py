"""The options a read or a delete request carries, checked and parsed as upstream's
``apimachinery`` validation does: ``ListOptions`` (``resourceVersion``,
``resourceVersionMatch``, ``continue``), ``DeleteOptions`` (``propagationPolicy``,
``orphanDependents``, ``dryRun``), and the errors upstream answers about resourceVersions
(the 504 ``Too large resource version``, the 410 for an expired continue token).

Everything here is a pure function of its arguments: the store (``listing``, ``watching``,
``deleting``) decides *when* to check, this module only says *what* a valid option is and
how upstream words the refusal, so the texts live in one place and can be tested alone.
Continue tokens are upstream's own encoding (base64url JSON with ``v``/``rv``/``start``),
so a token from a real apiserver's client library round-trips here unchanged.
"""

from __future__ import annotations

import base64
import binascii
import copy
from typing import Any, Final

import orjson

from kubeling.machinery.errors import BadRequest, Cause, Gone, Timeout
from kubeling.machinery.field import FieldError, forbidden, invalid_error, not_supported
from kubeling.machinery.field import Path as FieldPath
from kubeling.machinery.types import Obj
from kubeling.registry.context import RequestContext

_CONTINUE_VERSION: Final = "meta.k8s.io/v1"
PROPAGATION_POLICIES: Final = ("Foreground", "Background", "Orphan")
"""``DeleteOptions.propagationPolicy`` values, in upstream's order (its error lists them so)."""

_TOO_LARGE_CAUSE: Final = Cause(
    reason="ResourceVersionTooLarge", message="Too large resource version", field=""
)


def too_large_resource_version(requested: int, current: int) -> Timeout:
    """upstream ``storage.NewTooLargeResourceVersionError``: a ``NewTimeoutError`` (504,
    ``Timeout: `` before the text, retry after a second) with the cause clients test for."""
    return Timeout(
        f"Timeout: Too large resource version: {requested}, current: {current}",
        causes=(_TOO_LARGE_CAUSE,),
        retry_after_seconds=1,
    )


class ExpiredContinue(Gone):
    """A 410 for a compacted continue token; its Status carries ``metadata.continue``."""

    def __init__(self, message: str, *, continue_token: str) -> None:
        super().__init__(message)
        self.continue_token = continue_token

    def to_status(self) -> dict[str, Any]:
        status = super().to_status()
        status["metadata"] = {"continue": self.continue_token}
        return status


def _not_supported_in_order(path: str, value: Any, supported: tuple[str, ...]) -> FieldError:
    """``field.NotSupported`` with the values in the caller's order (upstream does not sort)."""
    quoted = ", ".join(orjson.dumps(v).decode() for v in supported)
    return FieldError("FieldValueNotSupported", path, value, f"supported values: {quoted}")


def validate_list_options(*, resource_version: str, match: str, continue_: str) -> None:
    """upstream ``ValidateListOptions``: a 422 on ``ListOptions.meta.k8s.io``."""
    errs: list[FieldError] = []
    if match:
        path = FieldPath("resourceVersionMatch")
        if not resource_version:
            errs.append(
                forbidden(
                    path, "resourceVersionMatch is forbidden unless resourceVersion is provided"
                )
            )
        if continue_:
            errs.append(
                forbidden(path, "resourceVersionMatch is forbidden when continue is provided")
            )
        if match not in ("Exact", "NotOlderThan"):
            errs.append(
                _not_supported_in_order(
                    "resourceVersionMatch", match, ("Exact", "NotOlderThan", "")
                )
            )
        if match == "Exact" and resource_version == "0":
            errs.append(
                forbidden(path, 'resourceVersionMatch "exact" is forbidden for resourceVersion "0"')
            )
    if errs:
        raise invalid_error(kind="ListOptions", group="meta.k8s.io", name="", errors=errs)


def parse_resource_version(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise BadRequest(f"invalid resource version: {text!r}") from None
    if value < 0:
        raise BadRequest(f"invalid resource version: {text!r}")
    return value


def encode_continue(last_key: str, prefix: str, revision: int) -> str:
    """upstream's token: base64url (no padding) of ``{"v":..,"rv":..,"start":..}``, where
    ``start`` is the key after the last one returned, relative to the list's prefix."""
    start = last_key[len(prefix) :] + "\x00"
    raw = orjson.dumps({"v": _CONTINUE_VERSION, "rv": revision, "start": start})
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def decode_continue(token: str, prefix: str) -> tuple[int, str]:
    """``(revision, start_after key)`` from a continue token, with upstream's errors."""
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        data = orjson.loads(raw)
    except (binascii.Error, ValueError):
        raise BadRequest("continue key is not valid: illegal base64 data") from None
    if not isinstance(data, dict) or data.get("v") != _CONTINUE_VERSION:
        raise BadRequest(
            "continue key is not valid: server does not recognize this encoded version"
        )
    rv = data.get("rv")
    if not isinstance(rv, int) or rv == 0:
        raise BadRequest(
            "continue key is not valid: incorrect encoded start resourceVersion "
            f"(version {_CONTINUE_VERSION})"
        )
    start = data.get("start")
    if not isinstance(start, str) or not start:
        raise BadRequest(
            "continue key is not valid: encoded start key empty (version meta.k8s.io/v1)"
        )
    # Our tokens name the key after the last one returned (last key + NUL); the list resumes
    # after that last key. A negative rv (upstream's "inconsistent" token) reads the latest.
    last = start[:-1] if start.endswith("\x00") else start
    return max(rv, 0), prefix + last


def delete_options(options: Obj | None, *, ctx: RequestContext) -> tuple[Obj, bool]:
    """upstream ``ValidateDeleteOptions`` on a DeleteOptions body (None is the same as
    ``{}``): a copy of it, and whether this is a dry run (the request's or the body's
    ``dryRun: [All]``)."""
    opts = copy.deepcopy(options) if options else {}
    errs: list[FieldError] = []
    policy = opts.get("propagationPolicy")
    if policy is not None and policy not in PROPAGATION_POLICIES:
        errs.append(
            _not_supported_in_order("propagationPolicy", policy, (*PROPAGATION_POLICIES, "nil"))
        )
    if policy is not None and opts.get("orphanDependents") is not None:
        errs.append(
            FieldError(
                "FieldValueInvalid",
                "propagationPolicy",
                policy,
                "orphanDependents and deletionPropagation cannot be both set",
            )
        )
    dry_run = opts.get("dryRun") or []
    for value in dry_run:
        if value != "All":
            errs.append(not_supported(FieldPath("dryRun"), value, ("All",)))
    if errs:
        raise invalid_error(kind="DeleteOptions", group="meta.k8s.io", name="", errors=errs)
    return opts, ctx.dry_run or "All" in dry_run
