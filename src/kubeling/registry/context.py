"""What a request carries into the registry besides its object.

The HTTP edge builds a ``RequestContext`` from headers and query parameters; the in-process
client builds one directly. Either way the registry sees the same fields: who is asking,
which field manager writes, how strictly to decode, whether to persist at all, and a list
to which any layer appends ``Warning`` texts for the response.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

FieldValidation = Literal["Strict", "Warn", "Ignore"]


@dataclass(frozen=True, kw_only=True)
class UserInfo:
    name: str
    groups: tuple[str, ...] = ()
    uid: str = ""


ADMIN = UserInfo(name="kubernetes-admin", groups=("system:masters", "system:authenticated"))
SYSTEM = UserInfo(name="system:kubeling", groups=("system:masters", "system:authenticated"))


@dataclass(kw_only=True)
class RequestContext:
    user: UserInfo = SYSTEM
    field_manager: str = ""
    """Empty means "derive from the user agent", as upstream does."""
    user_agent: str = ""
    field_validation: FieldValidation = "Strict"
    """Strict rejects unknown or duplicate fields, Warn drops them with a warning, Ignore
    drops them silently. kubectl sends Strict by default; a request without the parameter
    is treated as Warn upstream, which the HTTP edge reproduces."""
    dry_run: bool = False
    force: bool = False
    """Server-side apply: take ownership of conflicting fields."""
    warnings: list[str] = field(default_factory=list)

    def warn(self, text: str) -> None:
        if text not in self.warnings:
            self.warnings.append(text)
