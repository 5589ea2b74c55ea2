"""Reclaim of Released volumes: upstream's recycle_test.go (6-x, 7-1) and delete_test.go
(8-x, 9-1) scenarios, plus Retain, against real directories under ``tmp_path``."""

from __future__ import annotations

import pathlib

import pytest

from kubeling.controllers.volume.binder import PV_CONTROLLER_FINALIZER
from kubeling.controllers.volume.index import ANN_BOUND_BY_CONTROLLER as BBC
from kubeling.controllers.volume.index import ANN_PROVISIONED_BY
from kubeling.controllers.volume.reclaim import HOST_PATH_PLUGIN, VolumeInUseError
from kubeling.machinery.errors import NotFound
from kubeling.machinery.resources import PERSISTENTVOLUMECLAIMS, PERSISTENTVOLUMES, PODS
from kubeling.machinery.types import Obj
from tests.controllers.conftest import BinderHarness, make_pod, make_pv, make_pvc, ref_to

GONE_UID = "99999999-8888-7777-6666-555555555555"


def gone_ref(name: str = "gone") -> dict[str, str]:
    return {
        "kind": "PersistentVolumeClaim",
        "apiVersion": "v1",
        "namespace": "default",
        "name": name,
        "uid": GONE_UID,
    }


def fill(path: pathlib.Path) -> pathlib.Path:
    path.mkdir(parents=True, exist_ok=True)
    (path / "data.txt").write_text("payload")
    (path / ".hidden").write_text("x")
    (path / "sub").mkdir()
    (path / "sub" / "deep.txt").write_text("y")
    return path


def phase(obj: Obj) -> str:
    return (obj.get("status") or {}).get("phase", "")


async def volume_gone_or_deleting(h: BinderHarness, name: str) -> bool:
    try:
        volume = await h.get_volume(name)
    except NotFound:
        return True
    return volume["metadata"].get("deletionTimestamp") is not None


# -- Retain -----------------------------------------------------------------------------------


async def test_retain_keeps_released_volume_and_data(
    harness: BinderHarness, tmp_path: pathlib.Path
) -> None:
    path = fill(tmp_path / "retain")
    await harness.volume(make_pv("kept", host_path=str(path), policy="Retain"))
    await harness.claim(make_pvc("data"))
    await harness.sync_claim("data")
    uid = (await harness.get_claim("data"))["metadata"]["uid"]
    await harness.client.delete(PERSISTENTVOLUMECLAIMS, name="data", namespace="default")
    await harness.client.patch(
        PERSISTENTVOLUMECLAIMS,
        name="data",
        namespace="default",
        patch={"metadata": {"finalizers": None}},
        patch_type="merge",
    )
    await harness.sync_volume("kept")
    volume = await harness.get_volume("kept")
    assert phase(volume) == "Released"
    assert volume["spec"]["claimRef"]["uid"] == uid
    assert (path / "data.txt").read_text() == "payload"


# -- Recycle ----------------------------------------------------------------------------------


async def test_recycle_6_1_controller_bound_volume_becomes_available(
    harness: BinderHarness, tmp_path: pathlib.Path
) -> None:
    path = fill(tmp_path / "recycle")
    await harness.volume(
        make_pv(
            "volume6-1",
            policy="Recycle",
            claim_ref=gone_ref(),
            annotations={BBC: "yes"},
            host_path=str(path),
        ),
        phase="Bound",
    )
    await harness.sync_volume("volume6-1")
    volume = await harness.get_volume("volume6-1")
    assert phase(volume) == "Available"
    assert "claimRef" not in volume["spec"]
    assert BBC not in (volume["metadata"].get("annotations") or {})
    assert path.is_dir() and list(path.iterdir()) == []
    [event] = await harness.events(volume, "VolumeRecycled")
    assert (event["type"], event["message"]) == ("Normal", "Volume recycled")


async def test_recycle_6_2_user_reserved_volume_keeps_reservation(
    harness: BinderHarness, tmp_path: pathlib.Path
) -> None:
    path = fill(tmp_path / "recycle")
    await harness.volume(
        make_pv("volume6-2", policy="Recycle", claim_ref=gone_ref(), host_path=str(path)),
        phase="Bound",
    )
    await harness.sync_volume("volume6-2")
    volume = await harness.get_volume("volume6-2")
    assert phase(volume) == "Available"
    assert volume["spec"]["claimRef"]["name"] == "gone"
    assert "uid" not in volume["spec"]["claimRef"]
    assert list(path.iterdir()) == []


async def test_recycle_6_3_no_recycler_fails_the_volume(harness: BinderHarness) -> None:
    manifest = make_pv("volume6-3", policy="Recycle", claim_ref=gone_ref())
    del manifest["spec"]["hostPath"]
    manifest["spec"]["nfs"] = {"server": "127.0.0.1", "path": "/export"}
    await harness.volume(manifest, phase="Bound")
    await harness.sync_volume("volume6-3")
    volume = await harness.get_volume("volume6-3")
    assert phase(volume) == "Failed"
    assert volume["status"]["message"] == "No recycler plugin found for the volume!"
    [event] = await harness.events(volume, "VolumeFailedRecycle")
    assert (event["type"], event["message"]) == (
        "Warning",
        "No recycler plugin found for the volume!",
    )


async def test_recycle_6_5_recycler_error_fails_the_volume(harness: BinderHarness) -> None:
    async def broken(volume: Obj) -> None:
        raise OSError("disk on fire")

    harness.binder.plugins.recyclers[HOST_PATH_PLUGIN] = broken
    await harness.volume(
        make_pv("volume6-5", policy="Recycle", claim_ref=gone_ref()), phase="Bound"
    )
    await harness.sync_volume("volume6-5")
    volume = await harness.get_volume("volume6-5")
    assert phase(volume) == "Failed"
    assert await harness.messages(volume, "VolumeFailedRecycle") == ["Recycle failed: disk on fire"]


async def test_recycle_6_6_volume_deleted_before_the_operation_is_left_alone(
    harness: BinderHarness,
) -> None:
    calls: list[str] = []

    async def recycler(volume: Obj) -> None:
        calls.append(volume["metadata"]["name"])

    harness.binder.plugins.recyclers[HOST_PATH_PLUGIN] = recycler
    await harness.volume(
        make_pv("volume6-6", policy="Recycle", claim_ref=gone_ref()), phase="Released"
    )
    await harness.binder.load()
    stale = harness.binder.volumes.get("volume6-6")
    assert stale is not None
    await harness.client.patch(
        PERSISTENTVOLUMES,
        name="volume6-6",
        patch={"metadata": {"finalizers": None}},
        patch_type="merge",
    )
    await harness.client.delete(PERSISTENTVOLUMES, name="volume6-6")
    await harness.binder.reclaim(stale)
    assert calls == []
    assert await harness.events() == []


async def test_recycle_6_7_volume_already_made_available_is_skipped(
    harness: BinderHarness,
) -> None:
    calls: list[str] = []

    async def recycler(volume: Obj) -> None:
        calls.append(volume["metadata"]["name"])

    harness.binder.plugins.recyclers[HOST_PATH_PLUGIN] = recycler
    await harness.volume(
        make_pv("volume6-7", policy="Recycle", claim_ref=gone_ref()), phase="Released"
    )
    await harness.binder.load()
    stale = harness.binder.volumes.get("volume6-7")
    assert stale is not None
    current = await harness.get_volume("volume6-7")
    del current["spec"]["claimRef"]
    await harness.client.update(PERSISTENTVOLUMES, current)
    await harness.binder.reclaim(stale)
    assert calls == []


async def test_recycle_6_9_reserved_volume_recycled_while_new_claim_exists(
    harness: BinderHarness, tmp_path: pathlib.Path
) -> None:
    path = fill(tmp_path / "recycle")
    await harness.claim(make_pvc("gone"))  # same name, new uid
    await harness.volume(
        make_pv("volume6-9", policy="Recycle", claim_ref=gone_ref(), host_path=str(path)),
        phase="Bound",
    )
    await harness.sync_volume("volume6-9")
    volume = await harness.get_volume("volume6-9")
    assert phase(volume) == "Available"
    assert volume["spec"]["claimRef"]["name"] == "gone"
    assert "uid" not in volume["spec"]["claimRef"]
    assert list(path.iterdir()) == []


async def test_recycle_6_10_unknown_reclaim_policy_fails_the_volume(
    harness: BinderHarness,
) -> None:
    await harness.volume(make_pv("volume6-10", claim_ref=gone_ref()), phase="Released")
    await harness.binder.load()
    volume = harness.binder.volumes.get("volume6-10")
    assert volume is not None
    odd = {**volume, "spec": {**volume["spec"], "persistentVolumeReclaimPolicy": "Shred"}}
    await harness.binder.reclaim(odd)
    volume = await harness.get_volume("volume6-10")
    assert phase(volume) == "Failed"
    [event] = await harness.events(volume, "VolumeUnknownReclaimPolicy")
    assert (event["type"], event["message"]) == (
        "Warning",
        "Volume has unrecognized PersistentVolumeReclaimPolicy",
    )


async def test_recycle_7_1_failure_then_success_ends_available(harness: BinderHarness) -> None:
    attempts: list[int] = []

    async def flaky(volume: Obj) -> None:
        attempts.append(1)
        if len(attempts) == 1:
            raise OSError("busy")

    harness.binder.plugins.recyclers[HOST_PATH_PLUGIN] = flaky
    await harness.volume(
        make_pv("volume7-1", policy="Recycle", claim_ref=gone_ref(), annotations={BBC: "yes"}),
        phase="Bound",
    )
    await harness.sync_volume("volume7-1")
    assert phase(await harness.get_volume("volume7-1")) == "Failed"
    await harness.sync_volume("volume7-1")  # Failed volumes are retried on every sync
    volume = await harness.get_volume("volume7-1")
    assert phase(volume) == "Available"
    assert "claimRef" not in volume["spec"]
    assert len(attempts) == 2


async def test_recycle_refused_while_pods_use_the_old_claim(
    harness: BinderHarness, tmp_path: pathlib.Path
) -> None:
    path = fill(tmp_path / "recycle")
    await harness.client.create(PODS, make_pod("app", "gone", node="node1"))
    await harness.volume(
        make_pv("in-use", policy="Recycle", claim_ref=gone_ref(), host_path=str(path)),
        phase="Bound",
    )
    await harness.sync_volume("in-use")
    volume = await harness.get_volume("in-use")
    assert phase(volume) == "Released"
    assert await harness.messages(volume, "VolumeFailedRecycle") == [
        "Volume is used by pods: default/app"
    ]
    assert (path / "data.txt").exists()


# -- Delete -----------------------------------------------------------------------------------


@pytest.mark.parametrize("bbc", [pytest.param(True, id="8-1"), pytest.param(False, id="8-2")])
async def test_delete_8_1_and_8_2_released_volume_and_storage_are_deleted(
    harness: BinderHarness, tmp_path: pathlib.Path, bbc: bool
) -> None:
    path = fill(tmp_path / "delete")
    await harness.volume(
        make_pv(
            "volume8-1",
            policy="Delete",
            claim_ref=gone_ref(),
            host_path=str(path),
            annotations={BBC: "yes"} if bbc else None,
        ),
        phase="Bound",
    )
    await harness.sync_volume("volume8-1")
    assert not path.exists()
    assert await volume_gone_or_deleting(harness, "volume8-1")


async def test_delete_8_3_no_deleter_fails_the_volume(harness: BinderHarness) -> None:
    manifest = make_pv("volume8-3", policy="Delete", claim_ref=gone_ref())
    del manifest["spec"]["hostPath"]
    manifest["spec"]["nfs"] = {"server": "127.0.0.1", "path": "/export"}
    await harness.volume(manifest, phase="Bound")
    await harness.sync_volume("volume8-3")
    volume = await harness.get_volume("volume8-3")
    assert phase(volume) == "Failed"
    message = 'error getting deleter volume plugin for volume "volume8-3": no volume plugin matched'
    assert volume["status"]["message"] == message
    [event] = await harness.events(volume, "VolumeFailedDelete")
    assert (event["type"], event["message"]) == ("Warning", message)


async def test_delete_8_4_deleter_cannot_be_made_for_the_volume(harness: BinderHarness) -> None:
    """The hostPath deleter named by provisioned-by, for a volume with another source."""
    manifest = make_pv(
        "volume8-4",
        policy="Delete",
        claim_ref=gone_ref(),
        annotations={ANN_PROVISIONED_BY: HOST_PATH_PLUGIN},
    )
    del manifest["spec"]["hostPath"]
    manifest["spec"]["nfs"] = {"server": "127.0.0.1", "path": "/export"}
    await harness.volume(manifest, phase="Bound")
    await harness.sync_volume("volume8-4")
    volume = await harness.get_volume("volume8-4")
    assert phase(volume) == "Failed"
    assert await harness.messages(volume, "VolumeFailedDelete") == [
        'failed to create deleter for volume "volume8-4": spec.PersistentVolumeSource.HostPath '
        "is nil"
    ]


async def test_delete_host_path_outside_tmp_is_refused(harness: BinderHarness) -> None:
    await harness.volume(
        make_pv("srv", policy="Delete", claim_ref=gone_ref(), host_path="/srv/kubeling-never"),
        phase="Bound",
    )
    await harness.sync_volume("srv")
    volume = await harness.get_volume("srv")
    assert phase(volume) == "Failed"
    assert await harness.messages(volume, "VolumeFailedDelete") == [
        "host_path deleter only supports /tmp/.+ but received provided /srv/kubeling-never"
    ]


async def test_delete_8_5_and_9_1_failure_then_success(harness: BinderHarness) -> None:
    attempts: list[int] = []

    async def flaky(volume: Obj) -> None:
        attempts.append(1)
        if len(attempts) == 1:
            raise OSError("Mock delete error")

    harness.binder.plugins.deleters[HOST_PATH_PLUGIN] = flaky
    await harness.volume(make_pv("volume9-1", policy="Delete", claim_ref=gone_ref()), phase="Bound")
    await harness.sync_volume("volume9-1")
    volume = await harness.get_volume("volume9-1")
    assert phase(volume) == "Failed"
    assert await harness.messages(volume, "VolumeFailedDelete") == ["Mock delete error"]
    await harness.sync_volume("volume9-1")
    assert await volume_gone_or_deleting(harness, "volume9-1")


async def test_delete_volume_in_use_is_only_a_normal_event(harness: BinderHarness) -> None:
    async def busy(volume: Obj) -> None:
        raise VolumeInUseError("volume is still attached")

    harness.binder.plugins.deleters[HOST_PATH_PLUGIN] = busy
    await harness.volume(make_pv("busy", policy="Delete", claim_ref=gone_ref()), phase="Bound")
    await harness.sync_volume("busy")
    volume = await harness.get_volume("busy")
    assert phase(volume) == "Released"
    [event] = await harness.events(volume, "VolumeDelete")
    assert (event["type"], event["message"]) == ("Normal", "volume is still attached")


async def test_delete_8_6_volume_gone_before_the_operation(harness: BinderHarness) -> None:
    calls: list[str] = []

    async def deleter(volume: Obj) -> None:
        calls.append("x")

    harness.binder.plugins.deleters[HOST_PATH_PLUGIN] = deleter
    await harness.volume(
        make_pv("volume8-6", policy="Delete", claim_ref=gone_ref()), phase="Released"
    )
    await harness.binder.load()
    stale = harness.binder.volumes.get("volume8-6")
    assert stale is not None
    await harness.client.patch(
        PERSISTENTVOLUMES,
        name="volume8-6",
        patch={"metadata": {"finalizers": None}},
        patch_type="merge",
    )
    await harness.client.delete(PERSISTENTVOLUMES, name="volume8-6")
    await harness.binder.reclaim(stale)
    assert calls == []


async def test_delete_8_7_claim_bound_again_before_the_operation(harness: BinderHarness) -> None:
    calls: list[str] = []

    async def deleter(volume: Obj) -> None:
        calls.append("x")

    harness.binder.plugins.deleters[HOST_PATH_PLUGIN] = deleter
    claim = await harness.claim(make_pvc("back", volume_name="volume8-7"), phase="Bound")
    await harness.volume(
        make_pv("volume8-7", policy="Delete", claim_ref=ref_to(claim)), phase="Released"
    )
    await harness.binder.load()
    volume = harness.binder.volumes.get("volume8-7")
    assert volume is not None
    await harness.binder.reclaim(volume)
    assert calls == []
    assert phase(await harness.get_volume("volume8-7")) == "Released"


async def test_delete_8_9_user_bound_volume_deleted_beside_new_same_named_claim(
    harness: BinderHarness, tmp_path: pathlib.Path
) -> None:
    path = fill(tmp_path / "delete")
    newer = await harness.claim(make_pvc("gone"))
    await harness.volume(
        make_pv("volume8-9", policy="Delete", claim_ref=gone_ref(), host_path=str(path)),
        phase="Bound",
    )
    await harness.sync_volume("volume8-9")
    assert await volume_gone_or_deleting(harness, "volume8-9")
    after = await harness.get_claim("gone")
    assert after["metadata"]["resourceVersion"] == newer["metadata"]["resourceVersion"]


async def test_delete_8_10_external_deleter_leaves_released_volume(
    harness: BinderHarness, tmp_path: pathlib.Path
) -> None:
    path = fill(tmp_path / "external")
    await harness.volume(
        make_pv(
            "volume8-10",
            policy="Delete",
            claim_ref=gone_ref(),
            host_path=str(path),
            annotations={ANN_PROVISIONED_BY: "vendor.com/my-volume"},
        ),
        phase="Bound",
    )
    await harness.sync_volume("volume8-10")
    volume = await harness.get_volume("volume8-10")
    assert phase(volume) == "Released"
    assert volume["metadata"].get("deletionTimestamp") is None
    assert (path / "data.txt").exists()
    assert await harness.events(volume) == []


@pytest.mark.parametrize(
    ("provisioner", "deleted"),
    [
        pytest.param(HOST_PATH_PLUGIN, True, id="8-11"),
        pytest.param("vendor.com/x", False, id="8-12"),
    ],
)
async def test_delete_8_11_and_8_12_extra_provisioned_volume_of_rebound_claim(
    harness: BinderHarness, tmp_path: pathlib.Path, provisioner: str, deleted: bool
) -> None:
    path = fill(tmp_path / "extra")
    claim = await harness.claim(make_pvc("claim8-11", volume_name="winner"), phase="Bound")
    await harness.volume(
        make_pv(
            "loser",
            policy="Delete",
            claim_ref=ref_to(claim),
            host_path=str(path),
            annotations={BBC: "yes", ANN_PROVISIONED_BY: provisioner},
        ),
        phase="Bound",
    )
    await harness.sync_volume("loser")
    if deleted:
        assert await volume_gone_or_deleting(harness, "loser")
        assert not path.exists()
    else:
        assert phase(await harness.get_volume("loser")) == "Released"
        assert path.exists()


async def test_delete_removes_pv_controller_finalizer_after_storage(
    harness: BinderHarness, tmp_path: pathlib.Path
) -> None:
    path = fill(tmp_path / "fin")
    await harness.volume(
        make_pv(
            "fin",
            policy="Delete",
            claim_ref=gone_ref(),
            host_path=str(path),
            annotations={ANN_PROVISIONED_BY: HOST_PATH_PLUGIN},
            finalizers=[PV_CONTROLLER_FINALIZER],
        ),
        phase="Bound",
    )
    await harness.sync_volume("fin")
    assert not path.exists()
    volume = await harness.get_volume("fin")  # pv-protection still holds it
    assert PV_CONTROLLER_FINALIZER not in volume["metadata"].get("finalizers", [])
    assert volume["metadata"].get("deletionTimestamp") is not None
