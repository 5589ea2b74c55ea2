"""Legacy discovery documents (``/api``, ``/api/v1``, ``/apis``, ``/apis/<g>[/<v>]``).

Built once from the resource catalogue and kept as encoded bytes: kubectl fetches them on
every command with a cold cache, in parallel, so they must cost nothing per request. The
shapes and the subresource entries (``pods/status``, ``statefulsets/scale`` with its
``autoscaling/v1`` group) are upstream v1.32's.

Aggregated discovery (``apidiscovery.k8s.io/v2``) is served too, for clients that ask for
it in ``Accept``: kubectl then needs two requests instead of one per group-version. kubectl
picks the format only by the response Content-Type, so the aggregated answers go out with
that type and only when it was asked for.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Final

import orjson

from kubeling.machinery.types import ResourceInfo

# (group, version, kind, verbs) of each subresource; "" group/version means the parent's,
# kind None means the parent's kind.
_SUBRESOURCES: Final[dict[str, tuple[str, str, str | None, tuple[str, ...]]]] = {
    "status": ("", "", None, ("get", "patch", "update")),
    "scale": ("autoscaling", "v1", "Scale", ("get", "patch", "update")),
    "binding": ("", "", "Binding", ("create",)),
    "eviction": ("policy", "v1", "Eviction", ("create",)),
    "exec": ("", "", "PodExecOptions", ("create", "get")),
    "attach": ("", "", "PodAttachOptions", ("create", "get")),
    "portforward": ("", "", "PodPortForwardOptions", ("create", "get")),
    "log": ("", "", None, ("get",)),
    "finalize": ("", "", None, ("update",)),
    "token": ("authentication.k8s.io", "v1", "TokenRequest", ("create",)),
    "ephemeralcontainers": ("", "", None, ("get", "patch", "update")),
    "resize": ("", "", None, ("get", "patch", "update")),
    "proxy": (
        "",
        "",
        None,
        ("create", "delete", "get", "patch", "update"),
    ),
}


def _resource_entry(r: ResourceInfo) -> dict[str, Any]:
    out: dict[str, Any] = {
        "name": r.plural,
        "singularName": r.singular,
        "namespaced": r.namespaced,
        "kind": r.kind,
        "verbs": list(r.verbs),
    }
    if r.short_names:
        out["shortNames"] = list(r.short_names)
    if r.categories:
        out["categories"] = list(r.categories)
    return out


def _subresource_entry(r: ResourceInfo, sub: str) -> dict[str, Any]:
    group, version, kind, verbs = _SUBRESOURCES.get(sub, ("", "", None, ("get",)))
    out: dict[str, Any] = {
        "name": f"{r.plural}/{sub}",
        "singularName": "",
        "namespaced": r.namespaced,
    }
    if group:
        out["group"] = group
        out["version"] = version
    out["kind"] = kind or r.kind
    out["verbs"] = list(verbs)
    return out


@dataclass(frozen=True)
class Discovery:
    """Encoded discovery answers by request path."""

    documents: dict[str, bytes]
    """``/api``, ``/apis``, ``/api/v1``, ``/apis/apps``, ``/apis/apps/v1``..."""
    group_versions: dict[str, dict[str, ResourceInfo]]
    """``"v1"`` / ``"apps/v1"`` → plural → resource, for routing."""
    aggregated: dict[str, dict[str, bytes]]
    """``/api`` and ``/apis`` → ``v2`` / ``v2beta1`` → APIGroupDiscoveryList."""


def build(resources: Iterable[ResourceInfo], *, server_address: str) -> Discovery:
    by_gv: dict[tuple[str, str], list[ResourceInfo]] = {}
    for r in resources:
        by_gv.setdefault((r.group, r.version), []).append(r)

    docs: dict[str, bytes] = {}
    routes: dict[str, dict[str, ResourceInfo]] = {}
    groups: dict[str, list[str]] = {}
    for (group, version), items in by_gv.items():
        gv = f"{group}/{version}" if group else version
        routes[gv] = {r.plural: r for r in items}
        entries: list[dict[str, Any]] = []
        for r in sorted(items, key=lambda r: r.plural):
            entries.append(_resource_entry(r))
            entries.extend(_subresource_entry(r, s) for s in sorted(r.subresources))
        path = f"/apis/{gv}" if group else f"/api/{gv}"
        docs[path] = orjson.dumps(
            {
                "kind": "APIResourceList",
                "apiVersion": "v1",
                "groupVersion": gv,
                "resources": entries,
            }
        )
        if group:
            groups.setdefault(group, []).append(version)

    core_versions = [v for (g, v) in by_gv if not g]
    docs["/api"] = orjson.dumps(
        {
            "kind": "APIVersions",
            "versions": core_versions,
            "serverAddressByClientCIDRs": [
                {"clientCIDR": "0.0.0.0/0", "serverAddress": server_address}
            ],
        }
    )
    group_docs = []
    for group, versions in groups.items():
        entry = {
            "name": group,
            "versions": [{"groupVersion": f"{group}/{v}", "version": v} for v in versions],
            "preferredVersion": {"groupVersion": f"{group}/{versions[0]}", "version": versions[0]},
        }
        group_docs.append(entry)
        docs[f"/apis/{group}"] = orjson.dumps({"kind": "APIGroup", "apiVersion": "v1", **entry})
    docs["/apis"] = orjson.dumps({"kind": "APIGroupList", "apiVersion": "v1", "groups": group_docs})
    aggregated = {
        "/api": _aggregated([("", by_gv)]),
        "/apis": _aggregated([(g, by_gv) for g in groups]),
    }
    return Discovery(documents=docs, group_versions=routes, aggregated=aggregated)


AGGREGATED_CONTENT_TYPE: Final = (
    "application/json;g=apidiscovery.k8s.io;v={v};as=APIGroupDiscoveryList"
)


@functools.lru_cache(maxsize=64)
def aggregated_version(accept: bytes) -> str:
    """``v2`` or ``v2beta1`` when the client prefers aggregated discovery, else ``""``."""
    if b"APIGroupDiscoveryList" not in accept:
        return ""
    for part in accept.decode("latin-1").split(","):
        media, *params = (p.strip() for p in part.split(";"))
        values = dict(p.partition("=")[::2] for p in params)
        if values.get("as") == "APIGroupDiscoveryList":
            if values.get("g") == "apidiscovery.k8s.io" and values.get("v") in ("v2", "v2beta1"):
                return values["v"]
            continue
        if media in ("application/json", "*/*", "application/*"):
            return ""
    return ""


def _aggregated_resource(r: ResourceInfo) -> dict[str, Any]:
    out: dict[str, Any] = {
        "resource": r.plural,
        "responseKind": {"group": r.group, "version": r.version, "kind": r.kind},
        "scope": "Namespaced" if r.namespaced else "Cluster",
        "singularResource": r.singular,
        "verbs": list(r.verbs),
    }
    if r.short_names:
        out["shortNames"] = list(r.short_names)
    if r.categories:
        out["categories"] = list(r.categories)
    subs = []
    for sub in sorted(r.subresources):
        group, version, kind, verbs = _SUBRESOURCES.get(sub, ("", "", None, ("get",)))
        subs.append(
            {
                "subresource": sub,
                "responseKind": {
                    "group": group if group else r.group,
                    "version": version if group else r.version,
                    "kind": kind or r.kind,
                },
                "verbs": list(verbs),
            }
        )
    if subs:
        out["subresources"] = subs
    return out


def _aggregated(
    groups: list[tuple[str, dict[tuple[str, str], list[ResourceInfo]]]],
) -> dict[str, bytes]:
    items = []
    for group, by_gv in groups:
        versions = [
            {
                "version": version,
                "resources": [
                    _aggregated_resource(r) for r in sorted(served, key=lambda r: r.plural)
                ],
                "freshness": "Current",
            }
            for (g, version), served in by_gv.items()
            if g == group
        ]
        items.append({"metadata": {"name": group} if group else {}, "versions": versions})
    out = {}
    for v in ("v2", "v2beta1"):
        out[v] = orjson.dumps(
            {
                "kind": "APIGroupDiscoveryList",
                "apiVersion": f"apidiscovery.k8s.io/{v}",
                "metadata": {},
                "items": items,
            }
        )
    return out
