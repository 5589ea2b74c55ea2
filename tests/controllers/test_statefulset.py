"""StatefulSet controller over a LocalClient on a MemoryBackend registry.

No node agent runs here: tests make pods Running and Ready themselves through the status
subresource, either one by one (``ready``) or with a stand-in kubelet (``Kubelet``) that
readies every pod whose image is not ``BROKEN``. No garbage collector runs either, so the
retention-policy tests check the ownerReferences that drive it and delete claims themselves
where the collector would.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import pytest

from kubeling.client.interface import WatchEvent
from kubeling.controllers import history
from kubeling.controllers.statefulset import (
    POD_INDEX_LABEL,
    POD_NAME_LABEL,
    REVISION_LABEL,
    StatefulSetController,
)
from kubeling.machinery import objects as o
from kubeling.machinery.errors import Invalid
from kubeling.machinery.resources import (
    CONTROLLERREVISIONS,
    PERSISTENTVOLUMECLAIMS,
    PODS,
    STATEFULSETS,
)
from kubeling.machinery.types import Obj
from tests.controllers.conftest import Api, wait_until

NS = "default"
IMAGE = "busybox:1.36"
BROKEN = "kubeling.invalid/broken:never"


def make_sts(
    name: str = "web",
    *,
    replicas: int = 3,
    claims: tuple[str, ...] = ("www",),
    policy: str | None = None,
    when_scaled: str | None = None,
    when_deleted: str | None = None,
    partition: int | None = None,
    on_delete: bool = False,
    history_limit: int | None = None,
    image: str = IMAGE,
    claim_labels: dict[str, str] | None = None,
) -> Obj:
    spec: dict[str, Any] = {
        "serviceName": name,
        "replicas": replicas,
        "selector": {"matchLabels": {"app": name}},
        "template": {
            "metadata": {"labels": {"app": name, "tier": "db"}},
            "spec": {
                "containers": [
                    {
                        "name": "c",
                        "image": image,
                        "command": ["sleep", "3600"],
                        "volumeMounts": [{"name": c, "mountPath": f"/{c}"} for c in claims],
                    }
                ]
            },
        },
        "volumeClaimTemplates": [
            {
                "metadata": {"name": c, **({"labels": dict(claim_labels)} if claim_labels else {})},
                "spec": {
                    "accessModes": ["ReadWriteOnce"],
                    "resources": {"requests": {"storage": "1Gi"}},
                },
            }
            for c in claims
        ],
    }
    if policy:
        spec["podManagementPolicy"] = policy
    retention = {}
    if when_scaled:
        retention["whenScaled"] = when_scaled
    if when_deleted:
        retention["whenDeleted"] = when_deleted
    if retention:
        spec["persistentVolumeClaimRetentionPolicy"] = retention
    if on_delete:
        spec["updateStrategy"] = {"type": "OnDelete"}
    elif partition is not None:
        spec["updateStrategy"] = {
            "type": "RollingUpdate",
            "rollingUpdate": {"partition": partition},
        }
    if history_limit is not None:
        spec["revisionHistoryLimit"] = history_limit
    return {
        "apiVersion": "apps/v1",
        "kind": "StatefulSet",
        "metadata": {"name": name, "namespace": NS},
        "spec": spec,
    }


# -- helpers --------------------------------------------------------------------------------


async def pods(api: Api) -> dict[str, Obj]:
    items = (await api.client.list(PODS, namespace=NS)).get("items") or []
    return {o.name(p): p for p in items}


async def claims(api: Api) -> dict[str, Obj]:
    items = (await api.client.list(PERSISTENTVOLUMECLAIMS, namespace=NS)).get("items") or []
    return {o.name(c): c for c in items}


async def get_sts(api: Api, name: str = "web") -> Obj:
    return await api.client.get(STATEFULSETS, name=name, namespace=NS)


async def ready(api: Api, name: str) -> None:
    """What a kubelet reports for a started container that passes its probes."""
    await api.client.patch(
        PODS,
        name=name,
        namespace=NS,
        patch={
            "status": {
                "phase": "Running",
                "conditions": [
                    {"type": "Ready", "status": "True", "lastTransitionTime": o.now_rfc3339()}
                ],
            }
        },
        patch_type="merge",
        subresource="status",
    )


class Kubelet:
    """Readies every pod whose first container's image is not ``BROKEN``, as it appears."""

    def __init__(self, api: Api) -> None:
        self.api = api
        self.task: asyncio.Task[None] | None = None

    async def _run(self) -> None:
        while True:
            for name, pod in (await pods(self.api)).items():
                image = pod["spec"]["containers"][0].get("image")
                if image != BROKEN and o.deletion_timestamp(pod) is None and not _is_ready(pod):
                    with contextlib.suppress(Exception):
                        await ready(self.api, name)
            # A stand-in node agent polls like a kubelet's sync loop does.
            await asyncio.sleep(0.01)

    def start(self) -> None:
        self.task = asyncio.create_task(self._run())

    async def stop(self) -> None:
        if self.task is not None:
            self.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.task


def _is_ready(pod: Obj) -> bool:
    cond = o.get_condition((pod.get("status") or {}).get("conditions"), "Ready")
    return (pod.get("status") or {}).get("phase") == "Running" and bool(
        cond and cond.get("status") == "True"
    )


@pytest.fixture
async def kubelet(api: Api) -> AsyncIterator[Kubelet]:
    k = Kubelet(api)
    yield k
    await k.stop()


async def start(api: Api, **kwargs: Any) -> StatefulSetController:
    controller = StatefulSetController(
        api.client, api.informers, recorder=api.recorder("statefulset-controller"), **kwargs
    )
    await api.start(controller)
    return controller


async def settled(api: Api, *, replicas: int, ready_: int | None = None, name: str = "web") -> Obj:
    """Wait until the set's status reports ``replicas`` pods (and ``ready_`` ready ones)
    for its current generation, and return the set."""
    got: dict[str, Obj] = {}

    async def check() -> bool:
        sts = await get_sts(api, name)
        status = sts.get("status") or {}
        got["sts"] = sts
        return (
            status.get("observedGeneration") == o.generation(sts)
            and status.get("replicas", 0) == replicas
            and (ready_ is None or status.get("readyReplicas", 0) == ready_)
        )

    await wait_until(check, what=f"status replicas={replicas} ready={ready_}")
    return got["sts"]


async def rolled_out(api: Api, name: str = "web") -> Obj:
    """Wait until every replica is ready at the update revision and it became current."""
    got: dict[str, Obj] = {}

    async def check() -> bool:
        sts = await get_sts(api, name)
        status = sts.get("status") or {}
        got["sts"] = sts
        n = sts["spec"]["replicas"]
        return (
            status.get("observedGeneration") == o.generation(sts)
            and status.get("readyReplicas", 0) == n
            and status.get("updatedReplicas", 0) == n
            and status.get("replicas") == n
            and status.get("currentRevision") == status.get("updateRevision")
        )

    await wait_until(check, what="the rollout to finish")
    return got["sts"]


async def set_image(api: Api, image: str, name: str = "web") -> None:
    await api.client.patch(
        STATEFULSETS,
        name=name,
        namespace=NS,
        patch={"spec": {"template": {"spec": {"containers": [{"name": "c", "image": image}]}}}},
        patch_type="strategic",
    )


async def scale(api: Api, replicas: int, name: str = "web") -> None:
    await api.client.patch(
        STATEFULSETS,
        name=name,
        namespace=NS,
        patch={"spec": {"replicas": replicas}},
        patch_type="merge",
        subresource="scale",
    )


async def messages(api: Api, reason: str) -> list[str]:
    events = await api.events(reason=reason)
    events.sort(key=lambda e: o.resource_version(e) and int(o.resource_version(e)))
    return [e["message"] for e in events]


@contextlib.asynccontextmanager
async def pod_deletions(api: Api) -> AsyncIterator[list[str]]:
    """Names of pods as their DELETED events arrive, in order."""
    seen: list[str] = []
    rv = o.resource_version(await api.client.list(PODS, namespace=NS))

    async def follow() -> None:
        event: WatchEvent
        async for event in api.client.watch(PODS, namespace=NS, resource_version=rv):
            if event.type == "DELETED":
                seen.append(o.name(event.object))

    task = asyncio.create_task(follow())
    try:
        yield seen
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


# -- creation, identity, ordering -----------------------------------------------------------


async def test_statefulset_creates_ordinal_pods_one_at_a_time_with_identity(api: Api) -> None:
    await api.client.create(STATEFULSETS, make_sts(claim_labels={"disk": "ssd", "app": "x"}))
    await start(api)

    await settled(api, replicas=1)
    assert list(await pods(api)) == ["web-0"], "OrderedReady waits for web-0 to be Ready"

    pod = (await pods(api))["web-0"]
    sts = await get_sts(api)
    assert pod["spec"]["hostname"] == "web-0"
    assert pod["spec"]["subdomain"] == "web"
    assert pod["metadata"]["generateName"] == "web-"
    labels = pod["metadata"]["labels"]
    assert labels[POD_NAME_LABEL] == "web-0"
    assert labels[POD_INDEX_LABEL] == "0"
    assert labels["tier"] == "db"
    assert labels[REVISION_LABEL] == sts["status"]["updateRevision"]
    assert labels[REVISION_LABEL].startswith("web-")
    assert pod["metadata"]["ownerReferences"] == [
        {
            "apiVersion": "apps/v1",
            "kind": "StatefulSet",
            "name": "web",
            "uid": o.uid(sts),
            "controller": True,
            "blockOwnerDeletion": True,
        }
    ]
    volumes = {v["name"]: v for v in pod["spec"]["volumes"]}
    assert volumes["www"]["persistentVolumeClaim"] == {"claimName": "www-web-0"}
    claim = (await claims(api))["www-web-0"]
    # The template's labels, overwritten by the selector's matchLabels; no owner (Retain).
    assert claim["metadata"]["labels"] == {"disk": "ssd", "app": "web"}
    assert "ownerReferences" not in claim["metadata"]
    assert claim["spec"]["resources"]["requests"]["storage"] == "1Gi"

    await ready(api, "web-0")
    await settled(api, replicas=2, ready_=1)
    assert sorted(await pods(api)) == ["web-0", "web-1"]
    await ready(api, "web-1")
    await settled(api, replicas=3, ready_=2)
    await ready(api, "web-2")
    sts = await settled(api, replicas=3, ready_=3)
    status = sts["status"]
    assert status["currentRevision"] == status["updateRevision"]
    assert status["currentReplicas"] == status["updatedReplicas"] == 3
    assert status["availableReplicas"] == 3
    assert status["collisionCount"] == 0

    created = await messages(api, "SuccessfulCreate")
    assert created == [
        "create Claim www-web-0 Pod web-0 in StatefulSet web success",
        "create Pod web-0 in StatefulSet web successful",
        "create Claim www-web-1 Pod web-1 in StatefulSet web success",
        "create Pod web-1 in StatefulSet web successful",
        "create Claim www-web-2 Pod web-2 in StatefulSet web success",
        "create Pod web-2 in StatefulSet web successful",
    ]
    revisions = (await api.client.list(CONTROLLERREVISIONS, namespace=NS))["items"]
    assert [o.name(r) for r in revisions] == [status["updateRevision"]]
    rev = revisions[0]
    assert rev["revision"] == 1
    hash_ = rev["metadata"]["labels"][history.CONTROLLER_REVISION_HASH_LABEL]
    assert o.name(rev) == f"web-{hash_}"
    assert rev["metadata"]["labels"]["app"] == "web"
    assert rev["data"]["spec"]["template"]["$patch"] == "replace"
    assert o.controller_ref(rev) is not None and o.controller_ref(rev)["uid"] == o.uid(sts)


async def test_statefulset_parallel_creates_all_pods_without_waiting(api: Api) -> None:
    await api.client.create(STATEFULSETS, make_sts(policy="Parallel", replicas=4))
    await start(api)
    await settled(api, replicas=4, ready_=0)
    assert sorted(await pods(api)) == ["web-0", "web-1", "web-2", "web-3"]
    assert sorted(await claims(api)) == ["www-web-0", "www-web-1", "www-web-2", "www-web-3"]


async def test_statefulset_scale_down_goes_in_reverse_and_keeps_claims(
    api: Api, kubelet: Kubelet
) -> None:
    await api.client.create(STATEFULSETS, make_sts(replicas=3))
    await start(api)
    kubelet.start()
    await settled(api, replicas=3, ready_=3)
    before = await claims(api)

    async with pod_deletions(api) as deleted:
        await scale(api, 1)
        await settled(api, replicas=1, ready_=1)
    assert deleted == ["web-2", "web-1"]
    assert sorted(await pods(api)) == ["web-0"]
    kept = await claims(api)
    assert sorted(kept) == ["www-web-0", "www-web-1", "www-web-2"]
    assert await messages(api, "SuccessfulDelete") == [
        "delete Pod web-2 in StatefulSet web successful",
        "delete Pod web-1 in StatefulSet web successful",
    ]

    await scale(api, 3)
    await settled(api, replicas=3, ready_=3)
    after = await pods(api)
    assert after["web-2"]["spec"]["volumes"][0]["persistentVolumeClaim"]["claimName"] == (
        "www-web-2"
    )
    # The same claims (same uid): the data comes back with the pod.
    assert {n: o.uid(c) for n, c in (await claims(api)).items()} == {
        n: o.uid(c) for n, c in before.items()
    }


async def test_statefulset_ordered_scale_down_waits_for_unhealthy_pods(api: Api) -> None:
    await api.client.create(STATEFULSETS, make_sts(replicas=3, claims=()))
    await start(api)
    for name in ("web-0", "web-1", "web-2"):
        await wait_until(lambda n=name: _exists(api, n), what=name)
        await ready(api, name)
    await settled(api, replicas=3, ready_=3)
    # web-0 stops being ready: OrderedReady must not delete web-2 meanwhile.
    await api.client.patch(
        PODS,
        name="web-0",
        namespace=NS,
        patch={"status": {"conditions": [{"type": "Ready", "status": "False"}]}},
        patch_type="merge",
        subresource="status",
    )
    await scale(api, 2)
    await settled(api, replicas=3, ready_=2)
    assert sorted(await pods(api)) == ["web-0", "web-1", "web-2"]
    await ready(api, "web-0")
    await settled(api, replicas=2, ready_=2)
    assert sorted(await pods(api)) == ["web-0", "web-1"]


async def _exists(api: Api, name: str) -> bool:
    return name in await pods(api)


async def test_statefulset_adopts_matching_orphan_pod(api: Api) -> None:
    # OnDelete: a pod without a revision label would otherwise be rolled (upstream too).
    sts = make_sts(replicas=1, claims=(), on_delete=True)
    orphan = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": "web-0",
            "namespace": NS,
            "labels": {"app": "web", POD_NAME_LABEL: "web-0", POD_INDEX_LABEL: "0"},
        },
        "spec": sts["spec"]["template"]["spec"],
    }
    created = await api.client.create(PODS, orphan)
    await api.client.create(STATEFULSETS, sts)
    await start(api)
    await settled(api, replicas=1)
    pod = (await pods(api))["web-0"]
    assert o.uid(pod) == o.uid(created), "adopted, not replaced"
    ref = o.controller_ref(pod)
    assert ref is not None and ref["uid"] == o.uid(await get_sts(api))


async def test_statefulset_pod_create_failure_is_a_warning_event(api: Api) -> None:
    sts = make_sts(replicas=1, claims=())
    # The set's own validation only checks the template's metadata and restartPolicy
    # (upstream too); the pod's validation then refuses the container name.
    sts["spec"]["template"]["spec"]["containers"][0]["name"] = "Not_Valid"
    await api.client.create(STATEFULSETS, sts)
    await start(api)

    async def failed() -> list[str]:
        return await messages(api, "FailedCreate")

    await wait_until(failed, what="a FailedCreate event")
    text = (await failed())[0]
    assert text.startswith("create Pod web-0 in StatefulSet web failed error: ")
    assert 'Pod "web-0" is invalid' in text
    assert await pods(api) == {}


# -- claims and the retention policy (B33) --------------------------------------------------


@pytest.mark.parametrize(
    ("when_scaled", "when_deleted", "set_owned"),
    [
        pytest.param("Retain", "Retain", False, id="retain-retain"),
        pytest.param("Retain", "Delete", True, id="delete-with-set"),
        pytest.param("Delete", "Retain", False, id="delete-on-scale"),
        pytest.param("Delete", "Delete", True, id="delete-both"),
    ],
)
async def test_statefulset_claim_owners_follow_retention_policy(
    api: Api, kubelet: Kubelet, when_scaled: str, when_deleted: str, set_owned: bool
) -> None:
    await api.client.create(
        STATEFULSETS, make_sts(replicas=3, when_scaled=when_scaled, when_deleted=when_deleted)
    )
    await start(api)
    kubelet.start()
    await settled(api, replicas=3, ready_=3)
    uid = o.uid(await get_sts(api))

    def owner_uids(claim: Obj) -> list[str]:
        return [r["uid"] for r in o.owner_references(claim) if r.get("controller") is True]

    async def in_range_owned() -> bool:
        got = await claims(api)
        return all(
            owner_uids(got[f"www-web-{i}"]) == ([uid] if set_owned else []) for i in range(3)
        )

    await wait_until(in_range_owned, what="claims owned as the policy says")

    live = await pods(api)
    await scale(api, 1)
    await settled(api, replicas=1, ready_=1)
    got = await claims(api)
    assert sorted(got) == ["www-web-0", "www-web-1", "www-web-2"], "no collector runs here"
    for i in (1, 2):
        refs = owner_uids(got[f"www-web-{i}"])
        if when_scaled == "Delete":
            # Owned by the condemned pod alone, so the collector deletes it with the pod.
            assert refs == [o.uid(live[f"web-{i}"])]
            assert o.owner_references(got[f"www-web-{i}"])[0]["kind"] == "Pod"
        else:
            assert refs == ([uid] if set_owned else [])
    assert owner_uids(got["www-web-0"]) == ([uid] if set_owned else [])


async def test_statefulset_scale_up_waits_for_stale_claims_to_go(
    api: Api, kubelet: Kubelet
) -> None:
    await api.client.create(STATEFULSETS, make_sts(replicas=2, when_scaled="Delete"))
    await start(api)
    kubelet.start()
    await settled(api, replicas=2, ready_=2)
    await scale(api, 1)
    await settled(api, replicas=1, ready_=1)
    stale = (await claims(api))["www-web-1"]
    assert o.owner_references(stale)[0]["name"] == "web-1"

    await scale(api, 2)
    await settled(api, replicas=1, ready_=1)
    assert sorted(await pods(api)) == ["web-0"], "a claim about to be collected is not reused"
    # What the garbage collector (and, with no pod left, the protection controller) does
    # once web-1 is gone:
    await api.client.delete(PERSISTENTVOLUMECLAIMS, name="www-web-1", namespace=NS)
    await api.client.patch(
        PERSISTENTVOLUMECLAIMS,
        name="www-web-1",
        namespace=NS,
        patch={"metadata": {"finalizers": None}},
        patch_type="merge",
    )
    await settled(api, replicas=2, ready_=2)
    fresh = (await claims(api))["www-web-1"]
    assert o.uid(fresh) != o.uid(stale)
    assert "ownerReferences" not in fresh["metadata"]


async def test_statefulset_volume_claim_templates_are_immutable(api: Api) -> None:
    """B35: a bigger size or another template is refused with upstream's message."""
    await api.client.create(STATEFULSETS, make_sts(replicas=1))
    sts = await get_sts(api)
    bigger = o.deep_copy(sts)
    bigger["spec"]["volumeClaimTemplates"][0]["spec"]["resources"]["requests"]["storage"] = "2Gi"
    more = o.deep_copy(sts)
    more["spec"]["volumeClaimTemplates"].append(
        o.deep_copy(more["spec"]["volumeClaimTemplates"][0])
    )
    more["spec"]["volumeClaimTemplates"][1]["metadata"]["name"] = "logs"
    for changed in (bigger, more):
        with pytest.raises(Invalid) as err:
            await api.client.update(STATEFULSETS, changed)
        assert (
            "spec: Forbidden: updates to statefulset spec for fields other than 'replicas', "
            "'ordinals', 'template', 'updateStrategy', 'revisionHistoryLimit', "
            "'persistentVolumeClaimRetentionPolicy' and 'minReadySeconds' are forbidden"
        ) in str(err.value)


# -- updates and revisions ------------------------------------------------------------------


async def test_statefulset_rolling_update_respects_partition(api: Api, kubelet: Kubelet) -> None:
    await api.client.create(STATEFULSETS, make_sts(replicas=3, partition=2))
    await start(api)
    kubelet.start()
    first = await rolled_out(api)
    rev1 = first["status"]["updateRevision"]

    await set_image(api, "busybox:1.37")

    async def partial() -> bool:
        status = (await get_sts(api)).get("status") or {}
        return status.get("updatedReplicas") == 1 and status.get("readyReplicas") == 3

    await wait_until(partial, what="web-2 updated")
    sts = await get_sts(api)
    rev2 = sts["status"]["updateRevision"]
    assert rev2 != rev1
    assert sts["status"]["currentRevision"] == rev1
    assert sts["status"]["currentReplicas"] == 2
    got = await pods(api)
    assert {n: p["metadata"]["labels"][REVISION_LABEL] for n, p in got.items()} == {
        "web-0": rev1,
        "web-1": rev1,
        "web-2": rev2,
    }
    assert got["web-2"]["spec"]["containers"][0]["image"] == "busybox:1.37"

    async with pod_deletions(api) as deleted:
        await api.client.patch(
            STATEFULSETS,
            name="web",
            namespace=NS,
            patch={"spec": {"updateStrategy": {"rollingUpdate": {"partition": 0}}}},
            patch_type="merge",
        )
        done = await rolled_out(api)
    assert deleted == ["web-1", "web-0"]
    assert done["status"]["currentRevision"] == rev2
    revs = history.sort_revisions(
        (await api.client.list(CONTROLLERREVISIONS, namespace=NS))["items"]
    )
    assert [(o.name(r), r["revision"]) for r in revs] == [(rev1, 1), (rev2, 2)]


async def test_statefulset_rollback_renumbers_the_old_revision(api: Api, kubelet: Kubelet) -> None:
    await api.client.create(STATEFULSETS, make_sts(replicas=1, claims=()))
    await start(api)
    kubelet.start()
    rev1 = (await rolled_out(api))["status"]["updateRevision"]
    await set_image(api, "busybox:1.37")
    rev2 = (await rolled_out(api))["status"]["updateRevision"]
    await set_image(api, IMAGE)
    back = (await rolled_out(api))["status"]["updateRevision"]
    assert back == rev1 != rev2
    revs = history.sort_revisions(
        (await api.client.list(CONTROLLERREVISIONS, namespace=NS))["items"]
    )
    assert [(o.name(r), r["revision"]) for r in revs] == [(rev2, 2), (rev1, 3)]


async def test_statefulset_history_limit_drops_unused_revisions(api: Api, kubelet: Kubelet) -> None:
    await api.client.create(STATEFULSETS, make_sts(replicas=1, claims=(), history_limit=1))
    await start(api)
    kubelet.start()
    names = [(await rolled_out(api))["status"]["updateRevision"]]
    for tag in ("1.37", "1.38", "1.39"):
        await set_image(api, f"busybox:{tag}")
        names.append((await rolled_out(api))["status"]["updateRevision"])

    async def trimmed() -> bool:
        items = (await api.client.list(CONTROLLERREVISIONS, namespace=NS))["items"]
        return sorted(o.name(r) for r in items) == sorted(names[-2:])

    await wait_until(trimmed, what="only the live revision and one old one")


async def test_statefulset_on_delete_updates_only_deleted_pods(api: Api, kubelet: Kubelet) -> None:
    await api.client.create(STATEFULSETS, make_sts(replicas=2, claims=(), on_delete=True))
    await start(api)
    kubelet.start()
    await settled(api, replicas=2, ready_=2)
    rev1 = (await get_sts(api))["status"]["updateRevision"]
    await set_image(api, "busybox:1.37")

    async def observed() -> bool:
        sts = await get_sts(api)
        return sts["status"].get("observedGeneration") == o.generation(sts)

    await wait_until(observed, what="the new template observed")
    sts = await get_sts(api)
    rev2 = sts["status"]["updateRevision"]
    assert rev2 != rev1
    assert {p["metadata"]["labels"][REVISION_LABEL] for p in (await pods(api)).values()} == {rev1}

    await api.client.delete(PODS, name="web-1", namespace=NS)

    async def replaced() -> bool:
        got = await pods(api)
        return "web-1" in got and got["web-1"]["metadata"]["labels"][REVISION_LABEL] == rev2

    await wait_until(replaced, what="web-1 recreated at the new revision")
    assert (await pods(api))["web-0"]["metadata"]["labels"][REVISION_LABEL] == rev1


# -- beyond upstream: recovering from a broken revision -------------------------------------


@pytest.mark.parametrize("policy", ["OrderedReady", "Parallel"])
async def test_statefulset_reverting_a_broken_template_replaces_stuck_pods(
    api: Api, kubelet: Kubelet, policy: str
) -> None:
    await api.client.create(STATEFULSETS, make_sts(replicas=3, policy=policy))
    await start(api)
    kubelet.start()
    rev1 = (await rolled_out(api))["status"]["updateRevision"]

    await set_image(api, BROKEN)

    async def stuck() -> bool:
        got = await pods(api)
        pod = got.get("web-2")
        return pod is not None and pod["spec"]["containers"][0]["image"] == BROKEN

    await wait_until(stuck, what="web-2 recreated from the broken template")
    broken_rev = (await pods(api))["web-2"]["metadata"]["labels"][REVISION_LABEL]
    assert broken_rev != rev1
    await settled(api, replicas=3, ready_=2)
    assert {n: p["metadata"]["labels"][REVISION_LABEL] for n, p in (await pods(api)).items()} == {
        "web-0": rev1,
        "web-1": rev1,
        "web-2": broken_rev,
    }, "the rollout stalls on web-2"

    await set_image(api, IMAGE)
    done = await rolled_out(api)
    assert done["status"]["updateRevision"] == rev1
    assert {p["metadata"]["labels"][REVISION_LABEL] for p in (await pods(api)).values()} == {rev1}


async def test_statefulset_upstream_mode_leaves_broken_pods_for_the_user(
    api: Api, kubelet: Kubelet
) -> None:
    await api.client.create(STATEFULSETS, make_sts(replicas=2, claims=()))
    await start(api, replace_broken_pods=False)
    kubelet.start()
    rev1 = (await rolled_out(api))["status"]["updateRevision"]
    await set_image(api, BROKEN)

    async def stuck() -> bool:
        pod = (await pods(api)).get("web-1")
        return pod is not None and pod["spec"]["containers"][0]["image"] == BROKEN

    await wait_until(stuck, what="web-1 on the broken template")
    await set_image(api, IMAGE)

    async def reverted() -> bool:
        sts = await get_sts(api)
        status = sts.get("status") or {}
        return (
            status.get("observedGeneration") == o.generation(sts)
            and status.get("updateRevision") == rev1
        )

    await wait_until(reverted, what="the revert observed")
    pod = (await pods(api))["web-1"]
    assert pod["spec"]["containers"][0]["image"] == BROKEN, "upstream needs a manual delete"
    await api.client.delete(PODS, name="web-1", namespace=NS)
    await rolled_out(api)


async def test_statefulset_claim_create_failure_fails_the_pod_create(api: Api) -> None:
    sts = make_sts(replicas=1)
    # Accepted with the set (upstream checks claim templates only when claims are made).
    sts["spec"]["volumeClaimTemplates"][0]["spec"]["accessModes"] = ["ReadWriteSometimes"]
    await api.client.create(STATEFULSETS, sts)
    await start(api)

    async def both() -> bool:
        return len(set(await messages(api, "FailedCreate"))) >= 2

    await wait_until(both, what="FailedCreate events for the claim and the pod")
    texts = set(await messages(api, "FailedCreate"))
    claim_error = (
        'PersistentVolumeClaim "www-web-0" is invalid: spec.accessModes: Unsupported value: '
        '"ReadWriteSometimes"'
    )
    assert any(
        t.startswith("create Claim www-web-0 for Pod web-0 in StatefulSet web failed error: ")
        and claim_error in t
        for t in texts
    ), texts
    assert any(
        t.startswith(
            "create Pod web-0 in StatefulSet web failed error: failed to create PVC www-web-0: "
        )
        and claim_error in t
        for t in texts
    ), texts
    assert await pods(api) == {}


async def test_statefulset_restores_identity_labels(api: Api, kubelet: Kubelet) -> None:
    await api.client.create(STATEFULSETS, make_sts(replicas=1, claims=()))
    await start(api)
    kubelet.start()
    await settled(api, replicas=1, ready_=1)
    await api.client.patch(
        PODS,
        name="web-0",
        namespace=NS,
        patch={"metadata": {"labels": {POD_INDEX_LABEL: None, POD_NAME_LABEL: "other"}}},
        patch_type="merge",
    )

    async def restored() -> bool:
        labels = (await pods(api))["web-0"]["metadata"]["labels"]
        return labels.get(POD_INDEX_LABEL) == "0" and labels.get(POD_NAME_LABEL) == "web-0"

    await wait_until(restored, what="the identity labels back")
    assert "update Pod web-0 in StatefulSet web successful" in await messages(
        api, "SuccessfulUpdate"
    )


async def test_statefulset_min_ready_seconds_gates_availability(api: Api, kubelet: Kubelet) -> None:
    sts = make_sts(replicas=2, claims=())
    # Two seconds: timestamps have whole seconds, so a pod is unavailable for at least one.
    sts["spec"]["minReadySeconds"] = 2
    await api.client.create(STATEFULSETS, sts)
    await start(api)
    kubelet.start()
    await settled(api, replicas=1, ready_=1)
    # web-0 is Ready but not yet available, so web-1 waits (OrderedReady).
    status = (await get_sts(api))["status"]
    assert status["availableReplicas"] == 0
    assert sorted(await pods(api)) == ["web-0"]

    async def available() -> bool:
        return (await get_sts(api))["status"].get("availableReplicas") == 2

    await wait_until(available, what="both pods available after minReadySeconds")


async def test_statefulset_replaces_a_failed_pod_under_the_same_name(
    api: Api, kubelet: Kubelet
) -> None:
    await api.client.create(STATEFULSETS, make_sts(replicas=2))
    await start(api)
    kubelet.start()
    await settled(api, replicas=2, ready_=2)
    before = await pods(api)
    claim_uid = o.uid((await claims(api))["www-web-0"])
    await api.client.patch(
        PODS,
        name="web-0",
        namespace=NS,
        patch={"status": {"phase": "Failed", "conditions": [{"type": "Ready", "status": "False"}]}},
        patch_type="merge",
        subresource="status",
    )

    async def replaced() -> bool:
        pod = (await pods(api)).get("web-0")
        return pod is not None and o.uid(pod) != o.uid(before["web-0"]) and _is_ready(pod)

    await wait_until(replaced, what="a new web-0")
    assert o.uid((await pods(api))["web-1"]) == o.uid(before["web-1"])
    assert o.uid((await claims(api))["www-web-0"]) == claim_uid, "the same claim, the same data"


async def test_statefulset_waits_while_a_foreign_pod_holds_the_name(api: Api) -> None:
    sts = make_sts(replicas=1, claims=())
    foreign = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "web-0", "namespace": NS, "labels": {"app": "other"}},
        "spec": sts["spec"]["template"]["spec"],
    }
    squatter = await api.client.create(PODS, foreign)
    await api.client.create(STATEFULSETS, sts)
    await start(api)
    await settled(api, replicas=0)
    pod = (await pods(api))["web-0"]
    assert o.uid(pod) == o.uid(squatter)
    assert "ownerReferences" not in pod["metadata"], "not adopted: the selector does not match"

    await api.client.delete(PODS, name="web-0", namespace=NS)

    async def ours() -> bool:
        pod = (await pods(api)).get("web-0")
        return pod is not None and o.controller_ref(pod) is not None

    await wait_until(ours, what="the set's own web-0")


async def test_statefulset_ordinals_start_shifts_names_and_claims(api: Api) -> None:
    sts = make_sts(replicas=2, policy="Parallel")
    sts["spec"]["ordinals"] = {"start": 5}
    await api.client.create(STATEFULSETS, sts)
    await start(api)
    await settled(api, replicas=2)
    got = await pods(api)
    assert sorted(got) == ["web-5", "web-6"]
    assert got["web-6"]["metadata"]["labels"][POD_INDEX_LABEL] == "6"
    assert sorted(await claims(api)) == ["www-web-5", "www-web-6"]


async def test_statefulset_parallel_scale_down_removes_all_surplus_at_once(api: Api) -> None:
    # Nothing is Ready here: OrderedReady would wait, Parallel does not.
    await api.client.create(STATEFULSETS, make_sts(replicas=4, policy="Parallel", claims=()))
    await start(api)
    await settled(api, replicas=4, ready_=0)
    await scale(api, 1)
    await settled(api, replicas=1, ready_=0)
    assert sorted(await pods(api)) == ["web-0"]
    deleted = await messages(api, "SuccessfulDelete")
    assert sorted(deleted) == [
        f"delete Pod web-{i} in StatefulSet web successful" for i in (1, 2, 3)
    ]


@pytest.mark.parametrize(
    ("gate", "replaced_at_once"),
    [
        pytest.param(False, ["web-3"], id="gate-off-one-at-a-time"),
        pytest.param(True, ["web-2", "web-3"], id="gate-on-two-at-once"),
    ],
)
async def test_statefulset_max_unavailable_follows_the_feature_gate(
    api: Api, gate: bool, replaced_at_once: list[str]
) -> None:
    sts = make_sts(replicas=4, claims=(), partition=0)
    sts["spec"]["updateStrategy"]["rollingUpdate"]["maxUnavailable"] = "50%"
    await api.client.create(STATEFULSETS, sts)
    await start(api, max_unavailable=gate)
    for i in range(4):
        await wait_until(lambda n=f"web-{i}": _exists(api, n), what=f"web-{i}")
        await ready(api, f"web-{i}")
    rev1 = (await rolled_out(api))["status"]["updateRevision"]

    # Nothing readies the replacements: the rollout stops once its budget is spent.
    await set_image(api, "busybox:1.37")
    expected = [f"delete Pod {n} in StatefulSet web successful" for n in replaced_at_once]

    async def spent() -> bool:
        sts = await get_sts(api)
        status = sts.get("status") or {}
        return (
            sorted(await messages(api, "SuccessfulDelete")) == expected
            and status.get("observedGeneration") == o.generation(sts)
            and status.get("readyReplicas") == 4 - len(replaced_at_once)
        )

    await wait_until(spent, what=f"{replaced_at_once} replaced")
    lowest = replaced_at_once[0]

    async def recreated() -> bool:
        pod = (await pods(api)).get(lowest)
        return pod is not None and pod["metadata"]["labels"][REVISION_LABEL] != rev1

    await wait_until(recreated, what=f"{lowest} at the new revision")
    got = await pods(api)
    for name in ("web-0", "web-1"):
        assert got[name]["metadata"]["labels"][REVISION_LABEL] == rev1
