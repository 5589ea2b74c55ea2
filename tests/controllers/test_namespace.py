"""Namespace controller: a terminating namespace is emptied, finalized and removed."""

from __future__ import annotations

from kubeling.controllers import deployment, garbagecollector, namespace, replicaset, serviceaccount
from kubeling.machinery import objects
from kubeling.machinery.errors import Forbidden, NotFound
from kubeling.machinery.resources import CONFIGMAPS, DEPLOYMENTS, NAMESPACES, PODS, SECRETS
from kubeling.machinery.types import Obj
from tests.controllers.test_deployment import make_deployment
from tests.controllers.test_replicaset import Env, env

__all__ = ["env"]


async def make_namespace(env: Env, name: str) -> Obj:
    return await env.client.create(
        NAMESPACES, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}
    )


async def ns_gone(env: Env, name: str) -> bool:
    try:
        await env.client.get(NAMESPACES, name=name)
    except NotFound:
        return True
    return False


def test_deletion_conditions_use_upstream_reasons_and_texts() -> None:
    conds = namespace.deletion_conditions(
        failures=[],
        remaining={"pods.": 2, "deployments.apps": 1},
        finalizers={"example.com/hold": 1},
        existing=None,
        now="2026-12-04T00:00:00Z",
    )
    by_type = {c["type"]: c for c in conds}
    assert [c["type"] for c in conds] == [
        "NamespaceDeletionDiscoveryFailure",
        "NamespaceDeletionGroupVersionParsingFailure",
        "NamespaceDeletionContentFailure",
        "NamespaceContentRemaining",
        "NamespaceFinalizersRemaining",
    ]
    assert by_type["NamespaceContentRemaining"]["message"] == (
        "Some resources are remaining: deployments.apps has 1 resource instances, "
        "pods. has 2 resource instances"
    )
    assert by_type["NamespaceContentRemaining"]["reason"] == "SomeResourcesRemain"
    assert by_type["NamespaceFinalizersRemaining"]["message"] == (
        "Some content in the namespace has finalizers remaining: "
        "example.com/hold in 1 resource instances"
    )
    assert by_type["NamespaceDeletionContentFailure"]["reason"] == "ContentDeleted"
    assert by_type["NamespaceDeletionDiscoveryFailure"]["status"] == "False"


async def test_namespace_delete_removes_content_then_namespace(env: Env) -> None:
    env.start(namespace.build)
    await make_namespace(env, "shop")
    for i in range(3):
        await env.client.create(
            CONFIGMAPS,
            {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": f"cm{i}"}},
            namespace="shop",
        )
    await env.client.create(
        SECRETS,
        {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"}, "data": {}},
        namespace="shop",
    )
    answer = await env.client.delete(NAMESPACES, name="shop")
    assert answer["status"]["phase"] == "Terminating"
    await env.eventually(lambda: ns_gone(env, "shop"))
    for resource in (CONFIGMAPS, SECRETS):
        listed = await env.client.list(resource, namespace="shop")
        assert listed["items"] == []


async def test_namespace_waits_for_content_finalizers_and_reports_them(env: Env) -> None:
    env.start(namespace.build)
    await make_namespace(env, "shop")
    await env.client.create(
        CONFIGMAPS,
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "held", "finalizers": ["example.com/hold"]},
        },
        namespace="shop",
    )
    await env.client.delete(NAMESPACES, name="shop")

    async def reported() -> Obj | None:
        ns = await env.client.get(NAMESPACES, name="shop")
        cond = objects.get_condition(
            (ns.get("status") or {}).get("conditions"), "NamespaceFinalizersRemaining"
        )
        return ns if cond and cond["status"] == "True" else None

    ns = await env.eventually(reported)
    conds = {c["type"]: c for c in ns["status"]["conditions"]}
    assert conds["NamespaceContentRemaining"]["message"] == (
        "Some resources are remaining: configmaps. has 1 resource instances"
    )
    assert ns["spec"]["finalizers"] == ["kubernetes"]
    # Creations in a terminating namespace are refused.
    try:
        await env.client.create(
            CONFIGMAPS,
            {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "late"}},
            namespace="shop",
        )
    except Forbidden:
        pass
    else:
        raise AssertionError("a create in a terminating namespace succeeded")
    await env.client.patch(
        CONFIGMAPS,
        name="held",
        namespace="shop",
        patch={"metadata": {"finalizers": None}},
        patch_type="merge",
    )
    await env.eventually(lambda: ns_gone(env, "shop"))


async def test_namespace_delete_with_workloads_running(env: Env) -> None:
    env.start(
        namespace.build,
        serviceaccount.build,
        replicaset.build,
        deployment.build,
        garbagecollector.build,
    )
    await make_namespace(env, "shop")
    await env.client.create(DEPLOYMENTS, make_deployment("web", 2), namespace="shop")

    async def two_pods() -> bool:
        return len(await env.pods(namespace="shop", selector="app=web")) == 2

    await env.eventually(two_pods)
    await env.client.delete(NAMESPACES, name="shop")
    await env.eventually(lambda: ns_gone(env, "shop"))
    for resource in (PODS, DEPLOYMENTS):
        listed = await env.client.list(resource, namespace="shop")
        assert listed["items"] == []
