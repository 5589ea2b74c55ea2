"""Garbage collector: background, foreground and orphan propagation, dangling owners."""

from __future__ import annotations

from kubeling.controllers import deployment, garbagecollector, replicaset
from kubeling.machinery import objects
from kubeling.machinery.errors import NotFound
from kubeling.machinery.resources import CONFIGMAPS, DEPLOYMENTS, REPLICASETS
from kubeling.machinery.types import Obj
from tests.controllers.test_deployment import make_deployment, replica_sets, settle
from tests.controllers.test_replicaset import Env, env, replica_set

__all__ = ["env"]


def configmap(name: str, *owners: Obj, block: bool = False) -> Obj:
    refs = []
    for owner in owners:
        ref = objects.owner_reference(owner, controller=False, block_owner_deletion=block)
        refs.append(ref)
    meta: Obj = {"name": name}
    if refs:
        meta["ownerReferences"] = refs
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta}


async def exists(env: Env, resource: object, name: str) -> bool:
    try:
        await env.client.get(resource, name=name, namespace="default")  # type: ignore[arg-type]
    except NotFound:
        return False
    return True


async def gone(env: Env, resource: object, name: str) -> bool:
    return not await exists(env, resource, name)


async def test_gc_background_deletes_dependents_of_a_deleted_owner(env: Env) -> None:
    env.start(garbagecollector.build)
    owner = await env.client.create(CONFIGMAPS, configmap("owner"), namespace="default")
    owner.setdefault("kind", "ConfigMap")
    owner.setdefault("apiVersion", "v1")
    await env.client.create(CONFIGMAPS, configmap("child", owner), namespace="default")
    await env.client.create(CONFIGMAPS, configmap("loner"), namespace="default")
    await env.client.delete(CONFIGMAPS, name="owner", namespace="default")
    await env.eventually(lambda: gone(env, CONFIGMAPS, "child"))
    assert await exists(env, CONFIGMAPS, "loner")


async def test_gc_deletes_dependent_created_with_an_already_absent_owner(env: Env) -> None:
    env.start(garbagecollector.build)
    ghost = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "ghost", "uid": "5f0c1b8e-0000-4000-8000-00000000abcd"},
    }
    await env.client.create(CONFIGMAPS, configmap("child", ghost), namespace="default")
    await env.eventually(lambda: gone(env, CONFIGMAPS, "child"))


async def test_gc_keeps_dependent_with_a_live_owner_and_drops_the_dangling_reference(
    env: Env,
) -> None:
    env.start(garbagecollector.build)
    alive = await env.client.create(CONFIGMAPS, configmap("alive"), namespace="default")
    alive.update(kind="ConfigMap", apiVersion="v1")
    ghost = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "ghost", "uid": "5f0c1b8e-0000-4000-8000-00000000abcd"},
    }
    await env.client.create(CONFIGMAPS, configmap("child", alive, ghost), namespace="default")

    async def one_ref() -> bool:
        child = await env.client.get(CONFIGMAPS, name="child", namespace="default")
        return [r["uid"] for r in objects.owner_references(child)] == [alive["metadata"]["uid"]]

    await env.eventually(one_ref)


async def test_gc_foreground_deletes_dependents_before_the_owner(env: Env) -> None:
    env.start(replicaset.build, deployment.build, garbagecollector.build)
    await env.client.create(DEPLOYMENTS, make_deployment("web", 2), namespace="default")
    await settle(env, "web")
    rs_name = (await replica_sets(env, "web"))[0]["metadata"]["name"]
    answer = await env.client.delete(
        DEPLOYMENTS, name="web", namespace="default", propagation_policy="Foreground"
    )
    # The owner stays, marked, while its dependents go.
    assert answer["metadata"]["finalizers"] == ["foregroundDeletion"]
    assert answer["metadata"]["deletionTimestamp"]

    order_broken = False

    async def all_gone() -> bool:
        nonlocal order_broken
        # Read the owner first: once it is gone, its dependents must already be gone (and
        # nothing recreates them without it).
        owner_gone = await gone(env, DEPLOYMENTS, "web")
        rs_gone = await gone(env, REPLICASETS, rs_name)
        pods_gone = not await env.pods(selector="app=web")
        if owner_gone and not (rs_gone and pods_gone):
            order_broken = True
        return owner_gone and rs_gone and pods_gone

    await env.eventually(all_gone)
    assert not order_broken


async def test_gc_foreground_owner_waits_for_a_blocking_dependent(env: Env) -> None:
    env.start(garbagecollector.build)
    owner = await env.client.create(CONFIGMAPS, configmap("owner"), namespace="default")
    owner.update(kind="ConfigMap", apiVersion="v1")
    child = configmap("child", owner, block=True)
    child["metadata"]["finalizers"] = ["example.com/hold"]
    await env.client.create(CONFIGMAPS, child, namespace="default")
    await env.client.delete(
        CONFIGMAPS, name="owner", namespace="default", propagation_policy="Foreground"
    )

    async def child_deleting() -> bool:
        c = await env.client.get(CONFIGMAPS, name="child", namespace="default")
        return bool(objects.deletion_timestamp(c))

    await env.eventually(child_deleting)
    # The blocking child is held by its own finalizer: the owner must still be there.
    assert await exists(env, CONFIGMAPS, "owner")
    await env.client.patch(
        CONFIGMAPS,
        name="child",
        namespace="default",
        patch={"metadata": {"finalizers": None}},
        patch_type="merge",
    )
    await env.eventually(lambda: gone(env, CONFIGMAPS, "owner"))


async def test_gc_orphan_strips_owner_references_and_keeps_dependents(env: Env) -> None:
    env.start(replicaset.build, garbagecollector.build)
    await env.client.create(REPLICASETS, replica_set("web", 2), namespace="default")
    pods = await env.eventually(lambda: _n_pods(env, 2))
    await env.client.delete(
        REPLICASETS, name="web", namespace="default", propagation_policy="Orphan"
    )
    await env.eventually(lambda: gone(env, REPLICASETS, "web"))
    left = await env.pods(selector="app=web")
    assert sorted(p["metadata"]["name"] for p in left) == sorted(
        p["metadata"]["name"] for p in pods
    )
    assert all(not p["metadata"].get("ownerReferences") for p in left)


async def _n_pods(env: Env, n: int) -> list[Obj] | None:
    pods = await env.pods(selector="app=web")
    return pods if len(pods) == n else None


async def test_gc_background_delete_of_deployment_removes_replicasets_and_pods(env: Env) -> None:
    env.start(replicaset.build, deployment.build, garbagecollector.build)
    await env.client.create(DEPLOYMENTS, make_deployment("web", 2), namespace="default")
    await settle(env, "web")
    await env.client.delete(
        DEPLOYMENTS, name="web", namespace="default", propagation_policy="Background"
    )

    async def emptied() -> bool:
        rss = await env.client.list(REPLICASETS, namespace="default")
        return not rss["items"] and not await env.pods(selector="app=web")

    await env.eventually(emptied)
