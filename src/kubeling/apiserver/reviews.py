"""Self-review endpoints answered by the edge itself: ``auth can-i`` and ``auth whoami``.

``SelfSubjectAccessReview``, ``SelfSubjectRulesReview`` and ``SelfSubjectReview`` are
create-only virtual resources: nothing is stored, the answer is computed from the requesting
user. kubeling has no authorizer yet, so every authenticated user may do everything, which
is what upstream's ``AlwaysAllow`` authorizer answers (``allowed: true`` with no reason, and
wildcard rules).
"""

from __future__ import annotations

import copy
from typing import Any, Final

from kubeling.apiserver import negotiation
from kubeling.apiserver.http import NOT_ALLOWED, Request, Send, respond_json
from kubeling.machinery.errors import BadRequest, Cause, Invalid, MethodNotAllowed
from kubeling.machinery.types import Obj, ResourceInfo
from kubeling.registry.context import UserInfo

_CREATE_ONLY: Final = ("create",)

SELF_SUBJECT_ACCESS_REVIEWS: Final = ResourceInfo(
    group="authorization.k8s.io",
    version="v1",
    kind="SelfSubjectAccessReview",
    plural="selfsubjectaccessreviews",
    singular="selfsubjectaccessreview",
    namespaced=False,
    verbs=_CREATE_ONLY,
)
SELF_SUBJECT_RULES_REVIEWS: Final = ResourceInfo(
    group="authorization.k8s.io",
    version="v1",
    kind="SelfSubjectRulesReview",
    plural="selfsubjectrulesreviews",
    singular="selfsubjectrulesreview",
    namespaced=False,
    verbs=_CREATE_ONLY,
)
SELF_SUBJECT_REVIEWS: Final = ResourceInfo(
    group="authentication.k8s.io",
    version="v1",
    kind="SelfSubjectReview",
    plural="selfsubjectreviews",
    singular="selfsubjectreview",
    namespaced=False,
    verbs=_CREATE_ONLY,
)
RESOURCES: Final = (SELF_SUBJECT_ACCESS_REVIEWS, SELF_SUBJECT_RULES_REVIEWS, SELF_SUBJECT_REVIEWS)


async def handle(req: Request, send: Send, info: ResourceInfo, user: UserInfo) -> None:
    if req.method != "POST":
        raise MethodNotAllowed(NOT_ALLOWED)
    if info is SELF_SUBJECT_REVIEWS:
        # The request carries nothing but type meta; who is asking is the whole answer.
        spec: Obj = {}
    else:
        body = negotiation.decode_body(await req.body(), req.header(b"content-type"))
        if not isinstance(body, dict):
            raise BadRequest(f"{info.kind} must be an object")
        spec = copy.deepcopy(body.get("spec") or {})
    out: dict[str, Any] = {
        "kind": info.kind,
        "apiVersion": info.api_version,
        "metadata": {"creationTimestamp": None},
    }
    if info is SELF_SUBJECT_ACCESS_REVIEWS:
        if not spec.get("resourceAttributes") and not spec.get("nonResourceAttributes"):
            detail = "exactly one of nonResourceAttributes or resourceAttributes must be specified"
            raise Invalid(
                'SelfSubjectAccessReview.authorization.k8s.io "" is invalid: '
                f'spec.resourceAttributes: Invalid value: "null": {detail}',
                kind=info.kind,
                group=info.group,
                causes=[
                    Cause(
                        reason="FieldValueInvalid",
                        message=f'Invalid value: "null": {detail}',
                        field="spec.resourceAttributes",
                    )
                ],
            )
        out["spec"] = spec
        out["status"] = {"allowed": True}
    elif info is SELF_SUBJECT_RULES_REVIEWS:
        out["spec"] = spec
        out["status"] = {
            "resourceRules": [{"verbs": ["*"], "apiGroups": ["*"], "resources": ["*"]}],
            "nonResourceRules": [{"verbs": ["*"], "nonResourceURLs": ["*"]}],
            "incomplete": False,
        }
    else:
        user_info: dict[str, Any] = {"username": user.name, "groups": list(user.groups)}
        if user.uid:
            user_info["uid"] = user.uid
        out["status"] = {"userInfo": user_info}
    await respond_json(send, 201, out)
