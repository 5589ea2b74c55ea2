"""Deployment controller (with the ReplicaSet controller) over a LocalClient registry.

Pods are made Ready by the tests (no node agent here); ``settle`` plays the agent until the
Deployment reaches a state, so rollouts progress the way they would on a node.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from kubeling.controllers import deployment, replicaset
from kubeling.machinery import objects
from kubeling.machinery.resources import DEPLOYMENTS, PODS, REPLICASETS
from kubeling.machinery.types import Obj
from tests.controllers.test_replicaset import Env, env

__all__ = ["env"]


def make_deployment(
    name: str,
    replicas: int,
    *,
    image: str = "nginx:1.27",
    strategy: Obj | None = None,
    history: int | None = None,
    deadline: int | None = None,
) -> Obj:
    spec: Obj = {
        "replicas": replicas,
        "selector": {"matchLabels": {"app": name}},
        "template": {
            "metadata": {"labels": {"app": name}},
            "spec": {"containers": [{"name": "web", "image": image}]},
        },
    }
    if strategy is not None:
        spec["strategy"] = strategy
    if history is not None:
        spec["revisionHistoryLimit"] = history
    if deadline is not None:
        spec["progressDeadlineSeconds"] = deadline
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name}, "spec": spec}


async def get_d(env: Env, name: str) -> Obj:
    return await env.client.get(DEPLOYMENTS, name=name, namespace="default")


async def replica_sets(env: Env, app: str) -> list[Obj]:
    out = await env.client.list(REPLICASETS, namespace="default", label_selector=f"app={app}")
    return sorted(out["items"], key=deployment.revision)


def rollout_done(d: Obj) -> bool:
    """kubectl's DeploymentStatusViewer: ``successfully rolled out``."""
    status = d.get("status") or {}
    if objects.generation(d) > int(status.get("observedGeneration") or 0):
        return False
    replicas = d["spec"]["replicas"]
    updated = int(status.get("updatedReplicas") or 0)
    return (
        updated >= replicas
        and int(status.get("replicas") or 0) <= updated
        and int(status.get("availableReplicas") or 0) >= updated
    )


async def settle(env: Env, name: str, *, within: float = 15.0) -> Obj:
    """Act as the node agent (mark every pod Ready) until the rollout completes."""

    async def step() -> Obj | None:
        await env.ready_all(selector=f"app={name}")
        d = await get_d(env, name)
        return d if rollout_done(d) else None

    result: Obj = await env.eventually(step, within=within)
    return result


def start(env: Env) -> None:
    env.start(replicaset.build, deployment.build)


# --- pure helpers -------------------------------------------------------------------------------


def test_safe_encode_uses_upstream_alphabet() -> None:
    # Byte b maps to alphabet[b % 27]: digits give the familiar "66b6c48dd5" look.
    assert deployment.safe_encode("0123456789") == "456789bcdf"


def test_fnv32a_matches_reference_vectors() -> None:
    assert deployment.fnv32a(b"") == 0x811C9DC5
    assert deployment.fnv32a(b"a") == 0xE40C292C
    assert deployment.fnv32a(b"foobar") == 0xBF9CF968


def test_compute_hash_changes_with_collision_count() -> None:
    template = {"metadata": {"labels": {"app": "x"}}, "spec": {"containers": []}}
    plain = deployment.compute_hash(template, None)
    assert plain == deployment.compute_hash(template, None)
    assert deployment.compute_hash(template, 1) not in (plain, deployment.compute_hash(template, 2))
    assert set(plain) <= set(deployment.SAFE_ALPHABET)


@pytest.mark.parametrize(
    ("surge", "unavailable", "replicas", "expected"),
    [
        pytest.param("25%", "25%", 4, (1, 1), id="quarters"),
        pytest.param("25%", "25%", 1, (1, 0), id="surge-rounds-up-unavailable-down"),
        pytest.param(0, 0, 3, (0, 1), id="both-zero-means-one-unavailable"),
        pytest.param(2, "50%", 5, (2, 2), id="mixed"),
    ],
)
def test_resolve_fenceposts(surge: Any, unavailable: Any, replicas: int, expected: Any) -> None:
    d = make_deployment(
        "x",
        replicas,
        strategy={
            "type": "RollingUpdate",
            "rollingUpdate": {"maxSurge": surge, "maxUnavailable": unavailable},
        },
    )
    assert deployment.resolve_fenceposts(d) == expected


# --- controller behaviour -------------------------------------------------------------------------


async def test_deployment_creates_hashed_replicaset_and_rolls_out(env: Env) -> None:
    start(env)
    d = await env.client.create(DEPLOYMENTS, make_deployment("web", 3), namespace="default")
    rss = await env.eventually(lambda: replica_sets(env, "web"))
    rs = rss[0]
    pod_hash = rs["metadata"]["labels"][deployment.HASH_LABEL]
    assert rs["metadata"]["name"] == f"web-{pod_hash}"
    assert rs["spec"]["selector"]["matchLabels"] == {"app": "web", "pod-template-hash": pod_hash}
    assert rs["spec"]["template"]["metadata"]["labels"]["pod-template-hash"] == pod_hash
    assert objects.is_controlled_by(rs, d)
    assert rs["metadata"]["annotations"][deployment.REVISION] == "1"
    assert rs["metadata"]["annotations"][deployment.DESIRED_REPLICAS] == "3"
    assert rs["metadata"]["annotations"][deployment.MAX_REPLICAS] == "4"
    done = await settle(env, "web")
    status = done["status"]
    assert done["metadata"]["annotations"][deployment.REVISION] == "1"
    assert {k: status.get(k) for k in ("replicas", "updatedReplicas", "readyReplicas")} == {
        "replicas": 3,
        "updatedReplicas": 3,
        "readyReplicas": 3,
    }
    assert "unavailableReplicas" not in status

    async def complete() -> Obj | None:
        cur = await get_d(env, "web")
        cond = deployment.get_condition(cur.get("status") or {}, "Progressing")
        return cur if cond and cond["reason"] == "NewReplicaSetAvailable" else None

    cur = await env.eventually(complete)
    conds = {c["type"]: c for c in cur["status"]["conditions"]}
    assert conds["Available"]["status"] == "True"
    assert conds["Available"]["reason"] == "MinimumReplicasAvailable"
    assert conds["Available"]["message"] == "Deployment has minimum availability."
    assert (
        conds["Progressing"]["message"]
        == f'ReplicaSet "{rs["metadata"]["name"]}" has successfully progressed.'
    )
    events = await env.eventually(lambda: env.events(reason="ScalingReplicaSet"))
    assert events[0]["message"] == f"Scaled up replica set {rs['metadata']['name']} from 0 to 3"
    assert events[0]["involvedObject"]["kind"] == "Deployment"


async def test_deployment_progressing_reason_new_replicaset_created_first(env: Env) -> None:
    start(env)
    await env.client.create(DEPLOYMENTS, make_deployment("web", 2), namespace="default")

    async def observed() -> Obj | None:
        d = await get_d(env, "web")
        return d if (d.get("status") or {}).get("conditions") else None

    d = await env.eventually(observed)
    progressing = deployment.get_condition(d["status"], "Progressing")
    assert progressing is not None
    assert progressing["reason"] in {"NewReplicaSetCreated", "ReplicaSetUpdated"}
    assert progressing["status"] == "True"
    available = deployment.get_condition(d["status"], "Available")
    assert available is not None and available["status"] == "False"
    assert available["reason"] == "MinimumReplicasUnavailable"


async def test_deployment_rolling_update_respects_surge_and_unavailability(env: Env) -> None:
    start(env)
    strategy = {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}}
    await env.client.create(
        DEPLOYMENTS, make_deployment("web", 3, strategy=strategy), namespace="default"
    )
    await settle(env, "web")
    first = (await replica_sets(env, "web"))[0]
    await env.client.patch(
        DEPLOYMENTS,
        name="web",
        namespace="default",
        patch={
            "spec": {"template": {"spec": {"containers": [{"name": "web", "image": "nginx:2"}]}}}
        },
        patch_type="strategic",
    )
    # Play the agent one pod at a time, checking the bounds at every step.
    max_total = 0

    async def step() -> Obj | None:
        nonlocal max_total
        rss = await replica_sets(env, "web")
        total = sum(rs["spec"]["replicas"] for rs in rss)
        max_total = max(max_total, total)
        available = sum(int((rs.get("status") or {}).get("availableReplicas") or 0) for rs in rss)
        # maxUnavailable 0: never fewer than 3 available once the first rollout finished.
        assert available >= 3 or total > 3
        pods = [
            p for p in await env.live_pods(selector="app=web") if not replicaset.is_pod_ready(p)
        ]
        if pods:
            await env.mark_ready(pods[0])
        d = await get_d(env, "web")
        return d if rollout_done(d) and len(rss) == 2 else None

    done = await env.eventually(step, within=20)
    assert max_total <= 4
    rss = await replica_sets(env, "web")
    assert [rs["metadata"]["annotations"][deployment.REVISION] for rs in rss] == ["1", "2"]
    assert rss[0]["metadata"]["name"] == first["metadata"]["name"]
    assert rss[0]["spec"]["replicas"] == 0
    assert rss[1]["spec"]["replicas"] == 3
    assert done["metadata"]["annotations"][deployment.REVISION] == "2"
    pods = await env.live_pods(selector="app=web")

    async def old_pods_gone() -> bool:
        pods = await env.live_pods(selector="app=web")
        return len(pods) == 3 and all(
            p["spec"]["containers"][0]["image"] == "nginx:2" for p in pods
        )

    await env.eventually(old_pods_gone)
    del pods


async def test_deployment_recreate_scales_old_to_zero_before_new(env: Env) -> None:
    start(env)
    await env.client.create(
        DEPLOYMENTS,
        make_deployment("web", 2, strategy={"type": "Recreate"}),
        namespace="default",
    )
    await settle(env, "web")
    await env.client.patch(
        DEPLOYMENTS,
        name="web",
        namespace="default",
        patch={
            "spec": {"template": {"spec": {"containers": [{"name": "web", "image": "nginx:2"}]}}}
        },
        patch_type="strategic",
    )
    seen_mixed = False

    async def step() -> Obj | None:
        nonlocal seen_mixed
        pods = await env.live_pods(selector="app=web")
        images = {p["spec"]["containers"][0]["image"] for p in pods}
        if len(images) > 1:
            seen_mixed = True
        await env.ready_all(selector="app=web")
        d = await get_d(env, "web")
        rss = await replica_sets(env, "web")
        return d if rollout_done(d) and len(rss) == 2 else None

    await env.eventually(step, within=20)
    assert not seen_mixed
    rss = await replica_sets(env, "web")
    assert [rs["spec"]["replicas"] for rs in rss] == [0, 2]


async def test_deployment_scale_resizes_replicaset_with_event(env: Env) -> None:
    start(env)
    await env.client.create(DEPLOYMENTS, make_deployment("web", 1), namespace="default")
    await settle(env, "web")
    await env.client.patch(
        DEPLOYMENTS,
        name="web",
        namespace="default",
        patch={"spec": {"replicas": 4}},
        patch_type="merge",
        subresource="scale",
    )
    done = await settle(env, "web")
    assert done["status"]["replicas"] == 4
    rs = (await replica_sets(env, "web"))[0]
    assert rs["spec"]["replicas"] == 4
    assert rs["metadata"]["annotations"][deployment.DESIRED_REPLICAS] == "4"
    events = await env.eventually(lambda: env.events(reason="ScalingReplicaSet"))
    messages = [e["message"] for e in events]
    assert f"Scaled up replica set {rs['metadata']['name']} from 1 to 4" in messages


async def test_deployment_revision_history_limit_deletes_oldest(env: Env) -> None:
    start(env)
    await env.client.create(DEPLOYMENTS, make_deployment("web", 1, history=1), namespace="default")
    await settle(env, "web")
    for image in ("nginx:2", "nginx:3"):
        await env.client.patch(
            DEPLOYMENTS,
            name="web",
            namespace="default",
            patch={
                "spec": {"template": {"spec": {"containers": [{"name": "web", "image": image}]}}}
            },
            patch_type="strategic",
        )
        await settle(env, "web")

    async def two_left() -> list[Obj] | None:
        rss = await replica_sets(env, "web")
        return rss if len(rss) == 2 else None

    rss = await env.eventually(two_left)
    assert [deployment.revision(rs) for rs in rss] == [2, 3]


async def test_deployment_rollback_by_template_reuses_old_replicaset(env: Env) -> None:
    """What ``kubectl rollout undo`` does: put an old set's template back (a JSON patch)."""
    start(env)
    await env.client.create(DEPLOYMENTS, make_deployment("web", 1), namespace="default")
    await settle(env, "web")
    first = (await replica_sets(env, "web"))[0]
    await env.client.patch(
        DEPLOYMENTS,
        name="web",
        namespace="default",
        patch={
            "spec": {"template": {"spec": {"containers": [{"name": "web", "image": "nginx:2"}]}}}
        },
        patch_type="strategic",
    )
    await settle(env, "web")
    template = first["spec"]["template"]
    template["metadata"]["labels"].pop("pod-template-hash")
    await env.client.patch(
        DEPLOYMENTS,
        name="web",
        namespace="default",
        patch=[{"op": "replace", "path": "/spec/template", "value": template}],
        patch_type="json",
    )
    await settle(env, "web")

    async def reused() -> list[Obj] | None:
        rss = await replica_sets(env, "web")
        return rss if [deployment.revision(r) for r in rss] == [2, 3] else None

    rss = await env.eventually(reused)
    assert rss[1]["metadata"]["name"] == first["metadata"]["name"]
    assert rss[1]["metadata"]["annotations"][deployment.REVISION_HISTORY] == "1"
    assert (await get_d(env, "web"))["metadata"]["annotations"][deployment.REVISION] == "3"


async def test_deployment_progress_deadline_exceeded(env: Env) -> None:
    start(env)
    await env.client.create(DEPLOYMENTS, make_deployment("web", 1, deadline=1), namespace="default")

    async def timed_out() -> Obj | None:
        d = await get_d(env, "web")
        cond = deployment.get_condition(d.get("status") or {}, "Progressing")
        return cond if cond and cond["reason"] == "ProgressDeadlineExceeded" else None

    cond = await env.eventually(timed_out)
    assert cond["status"] == "False"
    rs = (await replica_sets(env, "web"))[0]
    assert cond["message"] == f'ReplicaSet "{rs["metadata"]["name"]}" has timed out progressing.'


async def test_deployment_paused_sets_condition_and_holds_rollout(env: Env) -> None:
    start(env)
    await env.client.create(DEPLOYMENTS, make_deployment("web", 1), namespace="default")
    await settle(env, "web")
    await env.client.patch(
        DEPLOYMENTS,
        name="web",
        namespace="default",
        patch={
            "spec": {
                "paused": True,
                "template": {"spec": {"containers": [{"name": "web", "image": "nginx:2"}]}},
            }
        },
        patch_type="strategic",
    )

    async def paused() -> Obj | None:
        d = await get_d(env, "web")
        cond = deployment.get_condition(d.get("status") or {}, "Progressing")
        return cond if cond and cond["reason"] == "DeploymentPaused" else None

    cond = await env.eventually(paused)
    assert cond["status"] == "Unknown"
    assert cond["message"] == "Deployment is paused"
    assert len(await replica_sets(env, "web")) == 1
    await env.client.patch(
        DEPLOYMENTS,
        name="web",
        namespace="default",
        patch={"spec": {"paused": False}},
        patch_type="merge",
    )
    await settle(env, "web")

    async def two() -> bool:
        return len(await replica_sets(env, "web")) == 2

    await env.eventually(two)


async def test_deployment_restart_annotation_rolls_new_pods(env: Env) -> None:
    """``kubectl rollout restart`` patches a template annotation."""
    start(env)
    await env.client.create(DEPLOYMENTS, make_deployment("web", 2), namespace="default")
    await settle(env, "web")
    before = {p["metadata"]["name"] for p in await env.live_pods(selector="app=web")}
    await env.client.patch(
        DEPLOYMENTS,
        name="web",
        namespace="default",
        patch={
            "spec": {
                "template": {
                    "metadata": {
                        "annotations": {"kubectl.kubernetes.io/restartedAt": "2026-12-04T00:00:00Z"}
                    }
                }
            }
        },
        patch_type="strategic",
    )

    async def replaced() -> bool:
        await env.ready_all(selector="app=web")
        pods = await env.live_pods(selector="app=web")
        names = {p["metadata"]["name"] for p in pods}
        return len(pods) == 2 and not names & before and rollout_done(await get_d(env, "web"))

    await env.eventually(replaced, within=20)


async def test_deployment_pod_template_hash_isolates_revisions(env: Env) -> None:
    start(env)
    await env.client.create(DEPLOYMENTS, make_deployment("web", 1), namespace="default")
    await settle(env, "web")
    pods = await env.live_pods(selector="app=web")
    rs = (await replica_sets(env, "web"))[0]
    assert (
        pods[0]["metadata"]["labels"]["pod-template-hash"]
        == rs["metadata"]["labels"]["pod-template-hash"]
    )
    assert pods[0]["metadata"]["name"].startswith(rs["metadata"]["name"] + "-")
    await asyncio.sleep(0)
    assert await env.client.get(PODS, name=pods[0]["metadata"]["name"], namespace="default")


def test_equal_ignore_hash_treats_null_as_absent() -> None:
    """kubectl's rollout undo sends ``metadata.creationTimestamp: null`` in the template."""
    stored = {"metadata": {"labels": {"app": "x", "pod-template-hash": "abc"}}, "spec": {}}
    sent = {"metadata": {"creationTimestamp": None, "labels": {"app": "x"}}, "spec": {}}
    assert deployment.equal_ignore_hash(stored, sent)
    assert deployment.compute_hash(sent, None) == deployment.compute_hash(
        {"metadata": {"labels": {"app": "x"}}, "spec": {}}, None
    )
    assert not deployment.equal_ignore_hash(stored, {"metadata": {"labels": {"app": "y"}}})


async def test_deployment_scaling_mid_rollout_is_proportional(env: Env) -> None:
    """The upstream documentation's example: 10 replicas, maxSurge 3, maxUnavailable 2, a
    rollout stuck at old 8 / new 5, scaled to 15: the 5 extra go 3 to old, 2 to new."""
    start(env)
    strategy = {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 3, "maxUnavailable": 2}}
    await env.client.create(
        DEPLOYMENTS, make_deployment("web", 10, strategy=strategy), namespace="default"
    )
    await settle(env, "web", within=30)
    await env.client.patch(
        DEPLOYMENTS,
        name="web",
        namespace="default",
        patch={
            "spec": {"template": {"spec": {"containers": [{"name": "web", "image": "nginx:2"}]}}}
        },
        patch_type="strategic",
    )

    async def stuck() -> list[int] | None:
        rss = await replica_sets(env, "web")
        sizes = [rs["spec"]["replicas"] for rs in rss]
        return sizes if sizes == [8, 5] else None

    await env.eventually(stuck)
    await env.client.patch(
        DEPLOYMENTS,
        name="web",
        namespace="default",
        patch={"spec": {"replicas": 15}},
        patch_type="merge",
    )

    async def spread() -> list[int] | None:
        rss = await replica_sets(env, "web")
        sizes = [rs["spec"]["replicas"] for rs in rss]
        return sizes if sizes == [11, 7] else None

    await env.eventually(spread)
    rss = await replica_sets(env, "web")
    assert {rs["metadata"]["annotations"][deployment.DESIRED_REPLICAS] for rs in rss} == {"15"}
    assert {rs["metadata"]["annotations"][deployment.MAX_REPLICAS] for rs in rss} == {"18"}


async def test_status_of_a_deployment_gone_meanwhile_is_dropped_quietly(env: Env) -> None:
    # A foreground deletion can finish while the controller still holds the cached object.
    [_rs, controller] = env.start(replicaset.build, deployment.build)
    assert isinstance(controller, deployment.DeploymentController)
    ghost = make_deployment("ghost", 1)
    ghost["metadata"].update(namespace="default", uid="0000", resourceVersion="1")
    await controller._write_status(ghost, {"observedGeneration": 1})
    assert (await env.client.list(DEPLOYMENTS, namespace="default"))["items"] == []
