"""The binder running for real: informers feed it, its own queue drives the syncs, and the
protection controllers and the local-path provisioner run beside it through the manager."""

from __future__ import annotations

import pathlib

import pytest

from kubeling.controllers.manager import ControllerManager
from kubeling.controllers.volume.binder import COMPONENT, PersistentVolumeBinder
from kubeling.controllers.volume.index import ANN_STORAGE_PROVISIONER
from kubeling.machinery.errors import NotFound
from kubeling.machinery.resources import (
    PERSISTENTVOLUMECLAIMS,
    PERSISTENTVOLUMES,
    STORAGECLASSES,
)
from kubeling.machinery.types import Obj
from tests.controllers.conftest import Api, make_class, make_pv, make_pvc, wait_until


def phase(obj: Obj | None) -> str:
    return ((obj or {}).get("status") or {}).get("phase", "")


async def get(api: Api, resource: object, name: str, namespace: str = "") -> Obj | None:
    try:
        return await api.client.get(resource, name=name, namespace=namespace)  # type: ignore[arg-type]
    except NotFound:
        return None


async def claim_phase(api: Api, name: str) -> str:
    return phase(await get(api, PERSISTENTVOLUMECLAIMS, name, "default"))


async def volume_phase(api: Api, name: str) -> str:
    return phase(await get(api, PERSISTENTVOLUMES, name))


@pytest.fixture
async def manager(api: Api) -> ControllerManager:
    manager = ControllerManager(
        api.ctx,
        enabled=["persistentvolume-binder", "pvc-protection", "pv-protection"],
    )
    await manager.start()
    await api.informers.wait_for_sync()
    return manager


async def stop(manager: ControllerManager) -> None:
    await manager.stop()


async def test_controller_binds_claim_created_before_its_volume(api: Api) -> None:
    binder = PersistentVolumeBinder(
        client=api.client, recorder=api.recorder(COMPONENT), informers=api.informers
    )
    await api.start(binder)
    await api.client.create(PERSISTENTVOLUMECLAIMS, make_pvc("data", "1Gi"))
    await wait_until(lambda: api.events(reason="FailedBinding"), what="a FailedBinding event")
    await api.client.create(PERSISTENTVOLUMES, make_pv("data-pv", "2Gi"))
    # no resync runs within the wait below (15 s period): the new volume wakes the claim
    await wait_until(lambda: _bound(api, "data", "data-pv"), what="data bound to data-pv")


async def _bound(api: Api, claim: str, volume: str) -> bool:
    c = await get(api, PERSISTENTVOLUMECLAIMS, claim, "default")
    v = await get(api, PERSISTENTVOLUMES, volume)
    return (
        phase(c) == "Bound"
        and phase(v) == "Bound"
        and (c or {}).get("spec", {}).get("volumeName") == volume
    )


async def test_controller_full_lifecycle_with_retain(api: Api, manager: ControllerManager) -> None:
    try:
        await api.client.create(PERSISTENTVOLUMES, make_pv("keep", "1Gi", policy="Retain"))
        await wait_until(lambda: _volume_is(api, "keep", "Available"), what="keep Available")
        await api.client.create(PERSISTENTVOLUMECLAIMS, make_pvc("data", "1Gi"))
        await wait_until(lambda: _bound(api, "data", "keep"), what="bound")
        claim = await get(api, PERSISTENTVOLUMECLAIMS, "data", "default")
        assert claim is not None
        assert "kubernetes.io/pvc-protection" in claim["metadata"]["finalizers"]
        await api.client.delete(PERSISTENTVOLUMECLAIMS, name="data", namespace="default")
        await wait_until(
            lambda: _volume_is(api, "keep", "Released"), what="keep Released after delete"
        )
        assert await get(api, PERSISTENTVOLUMECLAIMS, "data", "default") is None
        volume = await get(api, PERSISTENTVOLUMES, "keep")
        assert volume is not None
        assert volume["spec"]["claimRef"]["uid"] == claim["metadata"]["uid"]
    finally:
        await stop(manager)


async def _volume_is(api: Api, name: str, want: str) -> bool:
    return await volume_phase(api, name) == want


async def test_controller_delete_policy_removes_volume_and_directory(
    api: Api, manager: ControllerManager, tmp_path: pathlib.Path
) -> None:
    path = tmp_path / "vol"
    path.mkdir()
    (path / "f").write_text("x")
    try:
        await api.client.create(
            PERSISTENTVOLUMES, make_pv("scratch", policy="Delete", host_path=str(path))
        )
        await api.client.create(PERSISTENTVOLUMECLAIMS, make_pvc("tmp"))
        await wait_until(lambda: _bound(api, "tmp", "scratch"), what="bound")
        await api.client.delete(PERSISTENTVOLUMECLAIMS, name="tmp", namespace="default")

        async def gone() -> bool:
            return await get(api, PERSISTENTVOLUMES, "scratch") is None

        await wait_until(gone, what="the volume deleted (pv-protection lifted)")
        assert not path.exists()
    finally:
        await stop(manager)


async def test_controller_bound_volume_is_protected_until_released(
    api: Api, manager: ControllerManager
) -> None:
    try:
        await api.client.create(PERSISTENTVOLUMES, make_pv("guarded"))
        await api.client.create(PERSISTENTVOLUMECLAIMS, make_pvc("user"))
        await wait_until(lambda: _bound(api, "user", "guarded"), what="bound")
        await api.client.delete(PERSISTENTVOLUMES, name="guarded")
        volume = await get(api, PERSISTENTVOLUMES, "guarded")
        assert volume is not None and volume["metadata"].get("deletionTimestamp")
        assert "kubernetes.io/pv-protection" in volume["metadata"]["finalizers"]
        await api.client.delete(PERSISTENTVOLUMECLAIMS, name="user", namespace="default")

        async def gone() -> bool:
            return await get(api, PERSISTENTVOLUMES, "guarded") is None

        await wait_until(gone, what="the released volume deleted")
    finally:
        await stop(manager)


async def test_controller_retroactive_default_on_class_creation(
    api: Api, manager: ControllerManager
) -> None:
    try:
        await api.client.create(PERSISTENTVOLUMECLAIMS, make_pvc("early", storage_class=None))
        claim = await get(api, PERSISTENTVOLUMECLAIMS, "early", "default")
        assert claim is not None and claim["spec"].get("storageClassName") is None
        await api.client.create(
            STORAGECLASSES, make_class("standard", default=True, provisioner="vendor.com/x")
        )

        async def defaulted() -> bool:
            c = await get(api, PERSISTENTVOLUMECLAIMS, "early", "default")
            ann = ((c or {}).get("metadata") or {}).get("annotations") or {}
            return (c or {}).get("spec", {}).get("storageClassName") == "standard" and (
                ann.get(ANN_STORAGE_PROVISIONER) == "vendor.com/x"
            )

        await wait_until(defaulted, what="the default class and the provisioner annotation")
    finally:
        await stop(manager)


async def test_controller_with_local_path_provisioner_binds_dynamic_claim(api: Api) -> None:
    manager = ControllerManager(
        api.ctx, enabled=["persistentvolume-binder", "local-path-provisioner"]
    )
    await manager.start()
    try:
        await api.client.create(
            STORAGECLASSES, make_class("lp", provisioner="kubeling.io/local-path")
        )
        await api.client.create(PERSISTENTVOLUMECLAIMS, make_pvc("dyn", "10Mi", storage_class="lp"))

        async def bound() -> bool:
            c = await get(api, PERSISTENTVOLUMECLAIMS, "dyn", "default")
            return phase(c) == "Bound"

        await wait_until(bound, timeout=20, what="the provisioned claim Bound")
        claim = await get(api, PERSISTENTVOLUMECLAIMS, "dyn", "default")
        assert claim is not None
        assert claim["spec"]["volumeName"] == f"pvc-{claim['metadata']['uid']}"
    finally:
        await manager.stop()


async def test_controller_periodic_resync_syncs_again_without_changes(api: Api) -> None:
    binder = PersistentVolumeBinder(
        client=api.client,
        recorder=api.recorder(COMPONENT),
        informers=api.informers,
        resync_period=0.05,
    )
    await api.start(binder)
    await api.client.create(PERSISTENTVOLUMECLAIMS, make_pvc("waiting"))

    async def synced_again() -> bool:
        events = await api.events(reason="FailedBinding")
        # the recorder folds repeats of one message into one Event with a count
        return any((e.get("count") or 0) >= 3 for e in events)

    await wait_until(synced_again, what="FailedBinding repeated by the resync")
