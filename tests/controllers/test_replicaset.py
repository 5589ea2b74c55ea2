"""ReplicaSet controller over a LocalClient on a MemoryBackend registry.

No node agent runs here: tests make pods Running and Ready themselves through the status
subresource. ``Env`` and the ``env`` fixture are shared with the other workload tests.
"""

from __future__ import annotations

import asyncio
import pathlib
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from kubeling.client.controller import Controller
from kubeling.client.informer import SharedInformerFactory
from kubeling.client.local import LocalClient
from kubeling.controllers import replicaset
from kubeling.controllers.manager import ControllerContext
from kubeling.machinery import objects
from kubeling.machinery.resources import EVENTS, PODS, REPLICASETS
from kubeling.machinery.types import Obj
from kubeling.registry.registry import Registry
from kubeling.storage.memory import MemoryBackend

WITHIN = 10.0


class Env:
    """A registry, a client and controllers built through their ``build(ctx)``."""

    def __init__(self, client: LocalClient, ctx: ControllerContext) -> None:
        self.client = client
        self.ctx = ctx
        self.controllers: list[Controller] = []
        self.tasks: list[asyncio.Task[None]] = []

    def start(self, *builders: Callable[[Any], Controller]) -> list[Controller]:
        built = [b(self.ctx) for b in builders]
        self.controllers.extend(built)
        self.ctx.informers.start()
        for c in built:
            self.tasks.append(asyncio.create_task(c.run()))
        return built

    async def stop(self) -> None:
        for c in reversed(self.controllers):
            await c.stop()
        for t in self.tasks:
            t.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        await self.ctx.informers.stop()

    async def eventually(self, fn: Callable[[], Any], *, within: float = WITHIN) -> Any:
        """Poll the async (or plain) predicate ``fn`` until it returns something truthy."""
        last: Any = None
        async with asyncio.timeout(within):
            while True:
                result = fn()
                if asyncio.iscoroutine(result):
                    result = await result
                last = result
                if last:
                    return last
                await asyncio.sleep(0.02)

    async def pods(self, namespace: str = "default", selector: str = "") -> list[Obj]:
        out = await self.client.list(PODS, namespace=namespace, label_selector=selector)
        return list(out["items"])

    async def live_pods(self, namespace: str = "default", selector: str = "") -> list[Obj]:
        return [
            p for p in await self.pods(namespace, selector) if not objects.deletion_timestamp(p)
        ]

    async def mark_ready(self, pod: Obj, *, ready: bool = True, node: str = "") -> Obj:
        """What a node agent would do: Running, with a Ready condition."""
        now = objects.now_rfc3339()
        status = "True" if ready else "False"
        patch: Obj = {
            "status": {
                "phase": "Running",
                "conditions": [
                    {"type": "Ready", "status": status, "lastTransitionTime": now},
                    {"type": "ContainersReady", "status": status, "lastTransitionTime": now},
                ],
            }
        }
        return await self.client.patch(
            PODS,
            name=objects.name(pod),
            namespace=objects.namespace(pod),
            patch=patch,
            patch_type="merge",
            subresource="status",
        )

    async def ready_all(self, namespace: str = "default", selector: str = "") -> int:
        count = 0
        for pod in await self.live_pods(namespace, selector):
            if not replicaset.is_pod_ready(pod):
                await self.mark_ready(pod)
                count += 1
        return count

    async def events(self, namespace: str = "default", *, reason: str = "") -> list[Obj]:
        out = await self.client.list(EVENTS, namespace=namespace)
        return [e for e in out["items"] if not reason or e.get("reason") == reason]


@pytest.fixture
async def env() -> AsyncIterator[Env]:
    backend = MemoryBackend()
    await backend.start()
    registry = await Registry.open(backend=backend)
    await registry.bootstrap()
    client = LocalClient(registry)
    ctx = ControllerContext(
        client=client,
        informers=SharedInformerFactory(client),
        data_dir=pathlib.Path("."),
    )
    e = Env(client, ctx)
    try:
        yield e
    finally:
        await e.stop()
        close = getattr(registry, "close", None)
        if close is not None:
            await close()
        await backend.close()


def container(image: str = "nginx:1.27") -> Obj:
    return {"name": "web", "image": image}


def replica_set(name: str, replicas: int, *, labels: Obj | None = None, min_ready: int = 0) -> Obj:
    labels = labels or {"app": name}
    spec: Obj = {
        "replicas": replicas,
        "selector": {"matchLabels": dict(labels)},
        "template": {"metadata": {"labels": dict(labels)}, "spec": {"containers": [container()]}},
    }
    if min_ready:
        spec["minReadySeconds"] = min_ready
    return {"apiVersion": "apps/v1", "kind": "ReplicaSet", "metadata": {"name": name}, "spec": spec}


async def rs_status(env: Env, name: str) -> Obj:
    rs = await env.client.get(REPLICASETS, name=name, namespace="default")
    return dict(rs.get("status") or {})


# --- tests ------------------------------------------------------------------------------------


async def test_replicaset_creates_pods_with_controller_reference_and_events(env: Env) -> None:
    env.start(replicaset.build)
    rs = await env.client.create(REPLICASETS, replica_set("web", 3), namespace="default")
    pods = await env.eventually(lambda: _count(env, "app=web", 3))
    for pod in pods:
        assert pod["metadata"]["name"].startswith("web-")
        assert len(pod["metadata"]["name"]) == len("web-") + 5
        assert pod["metadata"]["generateName"] == "web-"
        assert pod["metadata"]["ownerReferences"] == [
            {
                "apiVersion": "apps/v1",
                "kind": "ReplicaSet",
                "name": "web",
                "uid": rs["metadata"]["uid"],
                "controller": True,
                "blockOwnerDeletion": True,
            }
        ]
    await env.eventually(lambda: _rs_status_is(env, "web", {"replicas": 3}))
    events = await env.eventually(lambda: _events_n(env, "SuccessfulCreate", 3))
    names = sorted(p["metadata"]["name"] for p in pods)
    assert sorted(e["message"] for e in events) == sorted(f"Created pod: {n}" for n in names)
    assert {e["involvedObject"]["kind"] for e in events} == {"ReplicaSet"}
    assert {e["source"]["component"] for e in events} == {"replicaset-controller"}


async def _count(env: Env, selector: str, n: int) -> list[Obj] | None:
    pods = await env.live_pods(selector=selector)
    return pods if len(pods) == n else None


async def _rs_status_is(env: Env, name: str, subset: Obj) -> bool:
    status = await rs_status(env, name)
    return all(status.get(k) == v for k, v in subset.items())


async def _events_n(env: Env, reason: str, n: int) -> list[Obj] | None:
    events = await env.events(reason=reason)
    return events if len(events) >= n else None


async def test_replicaset_status_counts_ready_and_fully_labeled_pods(env: Env) -> None:
    env.start(replicaset.build)
    await env.client.create(REPLICASETS, replica_set("web", 2), namespace="default")
    pods = await env.eventually(lambda: _count(env, "app=web", 2))
    await env.mark_ready(pods[0])
    await env.eventually(
        lambda: _rs_status_is(
            env,
            "web",
            {
                "replicas": 2,
                "fullyLabeledReplicas": 2,
                "readyReplicas": 1,
                "availableReplicas": 1,
                "observedGeneration": 1,
            },
        )
    )
    await env.mark_ready(pods[1])
    await env.eventually(
        lambda: _rs_status_is(env, "web", {"readyReplicas": 2, "availableReplicas": 2})
    )


async def test_replicaset_min_ready_seconds_delays_availability(env: Env) -> None:
    env.start(replicaset.build)
    await env.client.create(REPLICASETS, replica_set("slow", 1, min_ready=1), namespace="default")
    pods = await env.eventually(lambda: _count(env, "app=slow", 1))
    await env.mark_ready(pods[0])
    await env.eventually(lambda: _rs_status_is(env, "slow", {"readyReplicas": 1}))
    status = await rs_status(env, "slow")
    assert "availableReplicas" not in status
    # Available once the pod has been Ready for longer than minReadySeconds: the controller
    # requeues itself for that moment.
    await env.eventually(lambda: _rs_status_is(env, "slow", {"availableReplicas": 1}))


async def test_replicaset_scale_down_deletes_not_ready_pods_first(env: Env) -> None:
    env.start(replicaset.build)
    await env.client.create(REPLICASETS, replica_set("web", 3), namespace="default")
    pods = await env.eventually(lambda: _count(env, "app=web", 3))
    ready = pods[:2]
    for pod in ready:
        await env.mark_ready(pod)
    await env.eventually(lambda: _rs_status_is(env, "web", {"readyReplicas": 2}))
    await env.client.patch(
        REPLICASETS,
        name="web",
        namespace="default",
        patch={"spec": {"replicas": 2}},
        patch_type="merge",
    )
    left = await env.eventually(lambda: _count(env, "app=web", 2))
    assert sorted(p["metadata"]["name"] for p in left) == sorted(
        p["metadata"]["name"] for p in ready
    )
    deleted = await env.eventually(lambda: _events_n(env, "SuccessfulDelete", 1))
    assert deleted[0]["message"] == f"Deleted pod: {pods[2]['metadata']['name']}"


async def test_replicaset_recreates_a_deleted_pod(env: Env) -> None:
    env.start(replicaset.build)
    await env.client.create(REPLICASETS, replica_set("web", 2), namespace="default")
    pods = await env.eventually(lambda: _count(env, "app=web", 2))
    await env.client.delete(PODS, name=pods[0]["metadata"]["name"], namespace="default")
    again = await env.eventually(lambda: _count(env, "app=web", 2))
    assert pods[0]["metadata"]["name"] not in {p["metadata"]["name"] for p in again}


async def test_replicaset_adopts_matching_orphans_and_releases_relabelled_pods(env: Env) -> None:
    orphan = await env.client.create(
        PODS,
        {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": "stray", "labels": {"app": "web"}},
            "spec": {"containers": [container()]},
        },
        namespace="default",
    )
    env.start(replicaset.build)
    rs = await env.client.create(REPLICASETS, replica_set("web", 2), namespace="default")

    async def adopted() -> bool:
        pod = await env.client.get(PODS, name="stray", namespace="default")
        return objects.is_controlled_by(pod, rs)

    await env.eventually(adopted)
    # The adopted orphan counts: only one more pod is created.
    await env.eventually(lambda: _count(env, "app=web", 2))
    assert (
        orphan["metadata"]["uid"]
        == (await env.client.get(PODS, name="stray", namespace="default"))["metadata"]["uid"]
    )
    # Relabel it: the set releases it (drops its owner reference) and makes a replacement.
    await env.client.patch(
        PODS,
        name="stray",
        namespace="default",
        patch={"metadata": {"labels": {"app": "other"}}},
        patch_type="merge",
    )

    async def released() -> bool:
        pod = await env.client.get(PODS, name="stray", namespace="default")
        return not pod["metadata"].get("ownerReferences")

    await env.eventually(released)
    await env.eventually(lambda: _count(env, "app=web", 2))


async def test_replicaset_leaves_pods_owned_by_another_controller(env: Env) -> None:
    await env.client.create(
        PODS,
        {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {
                "name": "foreign",
                "labels": {"app": "web"},
                "ownerReferences": [
                    {
                        "apiVersion": "apps/v1",
                        "kind": "ReplicaSet",
                        "name": "someone-else",
                        "uid": "6c6f3b3e-0000-4000-8000-000000000001",
                        "controller": True,
                    }
                ],
            },
            "spec": {"containers": [container()]},
        },
        namespace="default",
    )
    env.start(replicaset.build)
    await env.client.create(REPLICASETS, replica_set("web", 1), namespace="default")
    pods = await env.eventually(lambda: _count(env, "app=web", 2))
    foreign = next(p for p in pods if p["metadata"]["name"] == "foreign")
    assert foreign["metadata"]["ownerReferences"][0]["name"] == "someone-else"
    await env.eventually(lambda: _rs_status_is(env, "web", {"replicas": 1}))


def test_deletion_order_prefers_unscheduled_pending_unready_newer() -> None:
    def pod(
        name: str,
        *,
        node: str = "",
        phase: str = "Running",
        ready: bool = True,
        created: str = "2026-01-01T00:00:00Z",
    ) -> Obj:
        conditions = [
            {
                "type": "Ready",
                "status": "True" if ready else "False",
                "lastTransitionTime": "2026-01-01T00:00:00Z",
            }
        ]
        return {
            "metadata": {"name": name, "creationTimestamp": created},
            "spec": {"nodeName": node},
            "status": {"phase": phase, "conditions": conditions},
        }

    pods = [
        pod("old-ready", node="n1"),
        pod("new-ready", node="n1", created="2026-01-02T00:00:00Z"),
        pod("unready", node="n1", ready=False),
        pod("pending", node="n1", phase="Pending", ready=False),
        pod("unscheduled", phase="Pending", ready=False),
    ]
    order = replicaset.pods_to_delete(pods, [], 4)
    assert [p["metadata"]["name"] for p in order] == [
        "unscheduled",
        "pending",
        "unready",
        "new-ready",
    ]
