"""Storage object in-use protection: the admission plugin adds the finalizers, the
controllers lift them only when nothing uses the object (field report B09 included)."""

from __future__ import annotations

from typing import Any

import pytest

from kubeling.controllers.volume.protection import (
    PV_PROTECTION_FINALIZER,
    PVC_PROTECTION_FINALIZER,
    PVCProtectionController,
    PVProtectionController,
    pod_uses_claim,
)
from kubeling.machinery.errors import NotFound
from kubeling.machinery.resources import PERSISTENTVOLUMECLAIMS, PERSISTENTVOLUMES, PODS
from kubeling.machinery.types import Obj
from tests.controllers.conftest import Api, make_pod, make_pv, make_pvc, wait_until


async def exists(api: Api, resource: Any, name: str, namespace: str = "") -> bool:
    try:
        await api.client.get(resource, name=name, namespace=namespace)
    except NotFound:
        return False
    return True


async def start_protection(api: Api) -> None:
    await api.start(
        PVCProtectionController(client=api.client, informers=api.informers),
        PVProtectionController(client=api.client, informers=api.informers),
    )


async def set_pod_phase(api: Api, name: str, phase: str) -> None:
    pod = await api.client.get(PODS, name=name, namespace="default")
    pod["status"] = {**(pod.get("status") or {}), "phase": phase}
    await api.client.update(PODS, pod, subresource="status")


async def test_admission_adds_protection_finalizers_on_create(api: Api) -> None:
    claim = await api.client.create(PERSISTENTVOLUMECLAIMS, make_pvc("data"))
    volume = await api.client.create(PERSISTENTVOLUMES, make_pv("data-pv"))
    assert claim["metadata"]["finalizers"] == [PVC_PROTECTION_FINALIZER]
    assert volume["metadata"]["finalizers"] == [PV_PROTECTION_FINALIZER]


async def test_admission_keeps_existing_finalizers_without_duplicates(api: Api) -> None:
    volume = await api.client.create(
        PERSISTENTVOLUMES,
        make_pv("held", finalizers=["example.com/hold", PV_PROTECTION_FINALIZER]),
    )
    assert volume["metadata"]["finalizers"] == ["example.com/hold", PV_PROTECTION_FINALIZER]


async def test_unused_claim_is_deleted(api: Api) -> None:
    await start_protection(api)
    await api.client.create(PERSISTENTVOLUMECLAIMS, make_pvc("free"))
    await api.client.delete(PERSISTENTVOLUMECLAIMS, name="free", namespace="default")
    await wait_until(
        lambda: _gone(api, PERSISTENTVOLUMECLAIMS, "free", "default"), what="claim deleted"
    )


async def _gone(api: Api, resource: Any, name: str, namespace: str = "") -> bool:
    return not await exists(api, resource, name, namespace)


@pytest.mark.parametrize(
    ("pod_phase", "blocks"),
    [
        pytest.param("Running", True, id="running"),
        pytest.param("Succeeded", True, id="B09-succeeded"),
        pytest.param("Failed", True, id="failed"),
    ],
)
async def test_scheduled_pod_blocks_claim_deletion_whatever_its_phase(
    api: Api, pod_phase: str, blocks: bool
) -> None:
    """B09: a completed pod keeps the claim Terminating until the pod object is gone."""
    await start_protection(api)
    await api.client.create(PERSISTENTVOLUMECLAIMS, make_pvc("data"))
    await api.client.create(PODS, make_pod("once", "data", node="node1", restart_policy="Never"))
    await set_pod_phase(api, "once", pod_phase)
    await api.client.delete(PERSISTENTVOLUMECLAIMS, name="data", namespace="default")
    # the pod update that made it terminal queued the claim: let that sync happen, then check
    controller_claims = api.informers.informer(PERSISTENTVOLUMECLAIMS)

    def deleting_in_cache() -> bool:
        claim = controller_claims.get("default/data")
        return claim is not None and claim["metadata"].get("deletionTimestamp") is not None

    await wait_until(deleting_in_cache, what="the informer saw the deletion")
    for controller in api._controllers:
        if isinstance(controller, PVCProtectionController):
            await controller.process("default/data")
    claim = await api.client.get(PERSISTENTVOLUMECLAIMS, name="data", namespace="default")
    assert claim["metadata"]["finalizers"] == [PVC_PROTECTION_FINALIZER]
    assert claim["metadata"].get("deletionTimestamp")
    await api.client.delete(PODS, name="once", namespace="default", grace_period_seconds=0)
    await wait_until(
        lambda: _gone(api, PERSISTENTVOLUMECLAIMS, "data", "default"),
        what="the claim deleted once the pod is gone",
    )


async def test_unscheduled_pod_does_not_block_claim_deletion(api: Api) -> None:
    await start_protection(api)
    await api.client.create(PERSISTENTVOLUMECLAIMS, make_pvc("data"))
    await api.client.create(PODS, make_pod("pending", "data"))
    await api.client.delete(PERSISTENTVOLUMECLAIMS, name="data", namespace="default")
    await wait_until(
        lambda: _gone(api, PERSISTENTVOLUMECLAIMS, "data", "default"), what="claim deleted"
    )
    assert await exists(api, PODS, "pending", "default")


def _pod(volumes: list[Obj], *, node: str = "n1", uid: str = "pod-uid", **meta: Any) -> Obj:
    return {
        "metadata": {"name": "p", "namespace": "default", "uid": uid, **meta},
        "spec": {"nodeName": node, "volumes": volumes},
    }


def _claim(name: str, *, owner_uid: str = "") -> Obj:
    meta: dict[str, Any] = {"name": name, "namespace": "default"}
    if owner_uid:
        meta["ownerReferences"] = [
            {"apiVersion": "v1", "kind": "Pod", "name": "p", "uid": owner_uid, "controller": True}
        ]
    return {"metadata": meta}


@pytest.mark.parametrize(
    ("pod", "claim", "uses"),
    [
        pytest.param(
            _pod([{"name": "v", "persistentVolumeClaim": {"claimName": "c"}}]),
            _claim("c"),
            True,
            id="pvc-volume",
        ),
        pytest.param(
            _pod([{"name": "v", "persistentVolumeClaim": {"claimName": "c"}}], node=""),
            _claim("c"),
            False,
            id="unscheduled",
        ),
        pytest.param(
            _pod([{"name": "v", "persistentVolumeClaim": {"claimName": "other"}}]),
            _claim("c"),
            False,
            id="other-claim",
        ),
        pytest.param(
            _pod([{"name": "v", "ephemeral": {"volumeClaimTemplate": {}}}]),
            _claim("p-v", owner_uid="pod-uid"),
            True,
            id="ephemeral-owned",
        ),
        pytest.param(
            _pod([{"name": "v", "ephemeral": {"volumeClaimTemplate": {}}}]),
            _claim("p-v", owner_uid="someone-else"),
            False,
            id="ephemeral-not-owned",
        ),
        pytest.param(
            _pod(
                [{"name": "v", "ephemeral": {"volumeClaimTemplate": {}}}],
                deletionTimestamp="2026-01-01T00:00:00Z",
                deletionGracePeriodSeconds=0,
            ),
            _claim("p-v", owner_uid="pod-uid"),
            False,
            id="ephemeral-shut-down",
        ),
        pytest.param(
            _pod(
                [{"name": "v", "persistentVolumeClaim": {"claimName": "c"}}],
                deletionTimestamp="2026-01-01T00:00:00Z",
                deletionGracePeriodSeconds=0,
            ),
            _claim("c"),
            True,
            id="pvc-volume-shut-down-still-counts",
        ),
    ],
)
def test_pod_uses_claim_matches_upstream(pod: Obj, claim: Obj, uses: bool) -> None:
    assert pod_uses_claim(pod, claim) is uses


async def test_volume_without_admission_finalizer_gets_it_from_controller(api: Api) -> None:
    await start_protection(api)
    volume = await api.client.create(PERSISTENTVOLUMES, make_pv("old"))
    volume["metadata"]["finalizers"] = []
    await api.client.update(PERSISTENTVOLUMES, volume)

    async def protected() -> bool:
        v = await api.client.get(PERSISTENTVOLUMES, name="old")
        return PV_PROTECTION_FINALIZER in (v["metadata"].get("finalizers") or [])

    await wait_until(protected, what="the finalizer added back")


async def test_bound_volume_stays_until_no_longer_bound(api: Api) -> None:
    await start_protection(api)
    volume = await api.client.create(PERSISTENTVOLUMES, make_pv("bound"))
    volume["status"] = {"phase": "Bound"}
    await api.client.update(PERSISTENTVOLUMES, volume, subresource="status")
    await api.client.delete(PERSISTENTVOLUMES, name="bound")
    informer = api.informers.informer(PERSISTENTVOLUMES)
    await wait_until(
        lambda: (informer.get("bound") or {}).get("metadata", {}).get("deletionTimestamp"),
        what="the informer saw the deletion",
    )
    for controller in api._controllers:
        if isinstance(controller, PVProtectionController):
            await controller.process("bound")
    assert await exists(api, PERSISTENTVOLUMES, "bound")
    volume = await api.client.get(PERSISTENTVOLUMES, name="bound")
    volume["status"] = {"phase": "Released"}
    await api.client.update(PERSISTENTVOLUMES, volume, subresource="status")
    await wait_until(lambda: _gone(api, PERSISTENTVOLUMES, "bound"), what="volume deleted")
