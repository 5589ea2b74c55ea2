"""kubeling's exception tree, and how each exception becomes a Kubernetes ``Status``.

Every layer raises these; only the API edge turns them into HTTP answers, and the client
turns HTTP answers back into them, so a controller catches ``Conflict`` whether it talks to
the API server in-process or over HTTPS. The classes mirror apimachinery's
``StatusReason`` values one for one: the reason, the HTTP code and the message format are
what kubectl and client libraries already know how to print and retry.

Controller-facing failures that are not API answers state their retry policy in their type
(``PermanentError`` versus ``RetryableError``), so a work queue decides without parsing text.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar


@dataclass(frozen=True, kw_only=True)
class Cause:
    """One ``details.causes[]`` entry: what is wrong with which field."""

    reason: str
    message: str
    field: str = ""

    def to_dict(self) -> dict[str, str]:
        out = {"reason": self.reason, "message": self.message}
        if self.field:
            out["field"] = self.field
        return out


class KubelingError(Exception):
    """Root of every error kubeling raises on purpose."""


class StatusError(KubelingError):
    """An error the API answers with: carries the Status reason, code and details.

    Subclasses fix ``reason`` and ``code``; the message is the full sentence kubectl prints
    after ``Error from server (<reason>): ``.
    """

    reason: ClassVar[str] = "InternalError"
    code: ClassVar[int] = 500

    def __init__(
        self,
        message: str,
        *,
        kind: str = "",
        name: str = "",
        group: str = "",
        causes: tuple[Cause, ...] | list[Cause] = (),
        retry_after_seconds: int | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.kind = kind
        self.name = name
        self.group = group
        self.causes = tuple(causes)
        self.retry_after_seconds = retry_after_seconds

    def to_status(self) -> dict[str, Any]:
        """The ``Status`` object the API server sends for this error."""
        details: dict[str, Any] = {}
        if self.name:
            details["name"] = self.name
        if self.group:
            details["group"] = self.group
        if self.kind:
            details["kind"] = self.kind
        if self.causes:
            details["causes"] = [c.to_dict() for c in self.causes]
        if self.retry_after_seconds is not None:
            details["retryAfterSeconds"] = self.retry_after_seconds
        status: dict[str, Any] = {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code,
        }
        if not self.reason:
            del status["reason"]  # omitempty: errors upstream returns as plain Go errors
        if details:
            status["details"] = details
        return status

    @classmethod
    def from_status(cls, status: dict[str, Any], *, code: int | None = None) -> StatusError:
        """Rebuild the matching subclass from a ``Status`` answer (used by the HTTP client)."""
        reason = status.get("reason") or ""
        http_code = int(status.get("code") or code or 500)
        target = _BY_REASON.get(reason) or _BY_CODE.get(http_code) or InternalError
        details = status.get("details") or {}
        causes = [
            Cause(
                reason=c.get("reason", ""),
                message=c.get("message", ""),
                field=c.get("field", ""),
            )
            for c in details.get("causes") or ()
        ]
        return target(
            status.get("message") or "",
            kind=details.get("kind", ""),
            name=details.get("name", ""),
            group=details.get("group", ""),
            causes=causes,
            retry_after_seconds=details.get("retryAfterSeconds"),
        )


def _qualified(kind: str, group: str) -> str:
    """upstream's ``qualifiedResource.String()``: ``pods`` or ``deployments.apps``."""
    return f"{kind}.{group}" if group else kind


class BadRequest(StatusError):
    reason = "BadRequest"
    code = 400


class Unauthorized(StatusError):
    reason = "Unauthorized"
    code = 401


class Forbidden(StatusError):
    reason = "Forbidden"
    code = 403


class NotFound(StatusError):
    reason = "NotFound"
    code = 404

    @classmethod
    def for_object(cls, *, resource: str, group: str, name: str) -> NotFound:
        """``pods "web-0" not found``, as ``errors.NewNotFound`` words it."""
        return cls(
            f'{_qualified(resource, group)} "{name}" not found',
            kind=resource,
            group=group,
            name=name,
        )


class MethodNotAllowed(StatusError):
    reason = "MethodNotAllowed"
    code = 405


class NotAcceptable(StatusError):
    reason = "NotAcceptable"
    code = 406


class AlreadyExists(StatusError):
    reason = "AlreadyExists"
    code = 409

    @classmethod
    def for_object(cls, *, resource: str, group: str, name: str) -> AlreadyExists:
        return cls(
            f'{_qualified(resource, group)} "{name}" already exists',
            kind=resource,
            group=group,
            name=name,
        )


class Conflict(StatusError):
    reason = "Conflict"
    code = 409

    @classmethod
    def for_object(cls, *, resource: str, group: str, name: str, detail: str) -> Conflict:
        """``Operation cannot be fulfilled on pods "x": <detail>``."""
        return cls(
            f'Operation cannot be fulfilled on {_qualified(resource, group)} "{name}": {detail}',
            kind=resource,
            group=group,
            name=name,
        )


class Gone(StatusError):
    """The requested resourceVersion left the watch window or history (HTTP 410)."""

    reason = "Expired"
    code = 410


class RequestEntityTooLarge(StatusError):
    reason = "RequestEntityTooLarge"
    code = 413


class UnsupportedMediaType(StatusError):
    reason = "UnsupportedMediaType"
    code = 415


class Invalid(StatusError):
    """A semantically invalid object (HTTP 422), with one cause per field error."""

    reason = "Invalid"
    code = 422


class TooManyRequests(StatusError):
    reason = "TooManyRequests"
    code = 429


class InternalError(StatusError):
    reason = "InternalError"
    code = 500


class ServiceUnavailable(StatusError):
    reason = "ServiceUnavailable"
    code = 503


class Timeout(StatusError):
    reason = "Timeout"
    code = 504


_BY_REASON: dict[str, type[StatusError]] = {
    cls.reason: cls
    for cls in (
        BadRequest,
        Unauthorized,
        Forbidden,
        NotFound,
        MethodNotAllowed,
        NotAcceptable,
        AlreadyExists,
        Conflict,
        Gone,
        RequestEntityTooLarge,
        UnsupportedMediaType,
        Invalid,
        TooManyRequests,
        InternalError,
        ServiceUnavailable,
        Timeout,
    )
}
_BY_CODE: dict[int, type[StatusError]] = {
    400: BadRequest,
    401: Unauthorized,
    403: Forbidden,
    404: NotFound,
    405: MethodNotAllowed,
    406: NotAcceptable,
    409: Conflict,
    410: Gone,
    413: RequestEntityTooLarge,
    415: UnsupportedMediaType,
    422: Invalid,
    429: TooManyRequests,
    503: ServiceUnavailable,
    504: Timeout,
}


# --- Failures of controllers and the node agent ---------------------------------------------


class PermanentError(KubelingError):
    """A step that will fail the same way until something in the cluster changes."""


@dataclass(eq=False)
class RetryableError(KubelingError):
    """A step that may succeed if tried again after ``delay`` seconds."""

    message: str
    delay: float = field(default=1.0, kw_only=True)

    def __str__(self) -> str:
        return self.message
