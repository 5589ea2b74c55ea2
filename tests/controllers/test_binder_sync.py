"""Upstream's binder scenarios (pv_controller binder_test.go, §1.13 of the behaviour
reference), one test each, named after the scenario number: the initial objects are made
through the real registry, one sync runs (or several, for the multi-sync ones), and the
test checks the resulting objects and events."""

from __future__ import annotations

import pytest

from kubeling.controllers.volume.index import (
    ANN_BIND_COMPLETED as BC,
)
from kubeling.controllers.volume.index import (
    ANN_BOUND_BY_CONTROLLER as BBC,
)
from kubeling.controllers.volume.index import ANN_SELECTED_NODE
from kubeling.machinery.types import Obj
from tests.controllers.conftest import (
    BinderHarness,
    make_class,
    make_pod,
    make_pv,
    make_pvc,
    ref_to,
)

OTHER_UID = "11111111-2222-3333-4444-555555555555"


def ann(obj: Obj) -> dict[str, str]:
    return obj["metadata"].get("annotations") or {}


def phase(obj: Obj) -> str:
    return (obj.get("status") or {}).get("phase", "")


def assert_bound(volume: Obj, claim: Obj, *, capacity: bool = True) -> None:
    assert phase(volume) == "Bound"
    assert phase(claim) == "Bound"
    ref = volume["spec"]["claimRef"]
    assert (ref["namespace"], ref["name"], ref["uid"]) == (
        claim["metadata"]["namespace"],
        claim["metadata"]["name"],
        claim["metadata"]["uid"],
    )
    assert claim["spec"]["volumeName"] == volume["metadata"]["name"]
    assert ann(claim)[BC] == "yes"
    if capacity:  # copied on the transition into Bound only
        assert claim["status"]["capacity"] == volume["spec"]["capacity"]
    assert claim["status"]["accessModes"] == volume["spec"]["accessModes"]


# -- Set 1: claim without volumeName ------------------------------------------------------------


async def test_sync_1_1_successful_bind(harness: BinderHarness) -> None:
    await harness.volume(make_pv("volume1-1"))
    await harness.claim(make_pvc("claim1-1"))
    await harness.sync_claim("claim1-1")
    volume, claim = await harness.get_volume("volume1-1"), await harness.get_claim("claim1-1")
    assert_bound(volume, claim)
    assert ann(volume)[BBC] == "yes"
    assert ann(claim)[BBC] == "yes"
    assert volume["status"].get("lastPhaseTransitionTime")
    assert await harness.events(claim) == []


async def test_sync_1_2_noop_when_only_volume_is_too_small(harness: BinderHarness) -> None:
    await harness.volume(make_pv("volume1-2", "1Gi"))
    await harness.claim(make_pvc("claim1-2", "10Gi"))
    await harness.sync_claim("claim1-2")
    volume, claim = await harness.get_volume("volume1-2"), await harness.get_claim("claim1-2")
    assert phase(volume) == "Available" and "claimRef" not in volume["spec"]
    assert phase(claim) == "Pending" and not claim["spec"].get("volumeName")
    [message] = await harness.messages(claim, "FailedBinding")
    assert message.startswith(
        "no persistent volumes available for this claim and no storage class is set"
    )
    # kubeling's addition: the refused candidate and why
    assert "volume1-2: 1Gi < 10Gi" in message
    [event] = await harness.events(claim, "FailedBinding")
    assert event["type"] == "Normal"
    assert event["source"]["component"] == "persistentvolume-controller"


async def test_sync_1_3_reset_wrongly_bound_claim_to_pending(harness: BinderHarness) -> None:
    await harness.volume(make_pv("volume1-3", "1Gi"))
    await harness.claim(make_pvc("claim1-3", "10Gi"), phase="Bound")
    await harness.sync_claim("claim1-3")
    claim = await harness.get_claim("claim1-3")
    assert phase(claim) == "Pending"
    assert await harness.messages(claim, "FailedBinding")


async def test_sync_1_4_smallest_volume_wins(harness: BinderHarness) -> None:
    await harness.volume(make_pv("volume1-4-big", "10Gi"))
    await harness.volume(make_pv("volume1-4-small", "1Gi"))
    await harness.claim(make_pvc("claim1-4", "1Gi"))
    await harness.sync_claim("claim1-4")
    assert_bound(await harness.get_volume("volume1-4-small"), await harness.get_claim("claim1-4"))
    assert phase(await harness.get_volume("volume1-4-big")) == "Available"


@pytest.mark.parametrize("with_uid", [pytest.param(False, id="1-5"), pytest.param(True, id="1-6")])
async def test_sync_1_5_and_1_6_prebound_volume_wins_over_smaller(
    harness: BinderHarness, with_uid: bool
) -> None:
    claim = await harness.claim(make_pvc("claim1-5", "1Gi"))
    await harness.volume(make_pv("volume1-5", "10Gi", claim_ref=ref_to(claim, uid=with_uid)))
    await harness.volume(make_pv("volume1-5-free", "1Gi"))
    await harness.sync_claim("claim1-5")
    volume, claim = await harness.get_volume("volume1-5"), await harness.get_claim("claim1-5")
    assert_bound(volume, claim)
    assert claim["status"]["capacity"]["storage"] == "10Gi"
    assert BBC not in ann(volume)
    assert ann(claim)[BBC] == "yes"
    assert phase(await harness.get_volume("volume1-5-free")) == "Available"


async def test_sync_1_7_volume_prebound_to_other_uid_is_not_bound(harness: BinderHarness) -> None:
    claim = await harness.claim(make_pvc("claim1-7", "1Gi"))
    ref = ref_to(claim) | {"uid": OTHER_UID}
    await harness.volume(make_pv("volume1-7", "10Gi", claim_ref=ref))
    await harness.sync_claim("claim1-7")
    claim = await harness.get_claim("claim1-7")
    assert phase(claim) == "Pending"
    assert (await harness.get_volume("volume1-7"))["spec"]["claimRef"]["uid"] == OTHER_UID
    assert await harness.messages(claim, "FailedBinding")


async def test_sync_1_8_complete_bind_after_crash_volume_bound(harness: BinderHarness) -> None:
    claim = await harness.claim(make_pvc("claim1-8"))
    await harness.volume(
        make_pv("volume1-8", claim_ref=ref_to(claim), annotations={BBC: "yes"}), phase="Pending"
    )
    await harness.sync_claim("claim1-8")
    volume, claim = await harness.get_volume("volume1-8"), await harness.get_claim("claim1-8")
    assert_bound(volume, claim)
    assert ann(claim)[BBC] == "yes"


async def test_sync_1_9_complete_bind_after_crash_volume_status_saved(
    harness: BinderHarness,
) -> None:
    claim = await harness.claim(make_pvc("claim1-9"))
    await harness.volume(
        make_pv("volume1-9", claim_ref=ref_to(claim), annotations={BBC: "yes"}), phase="Bound"
    )
    await harness.sync_claim("claim1-9")
    assert_bound(await harness.get_volume("volume1-9"), await harness.get_claim("claim1-9"))


async def test_sync_1_10_complete_bind_after_crash_claim_bound(harness: BinderHarness) -> None:
    claim = await harness.claim(
        make_pvc("claim1-10", volume_name="volume1-10", annotations={BBC: "yes", BC: "yes"})
    )
    await harness.volume(
        make_pv("volume1-10", claim_ref=ref_to(claim), annotations={BBC: "yes"}), phase="Bound"
    )
    await harness.sync_claim("claim1-10")
    assert_bound(await harness.get_volume("volume1-10"), await harness.get_claim("claim1-10"))


async def test_sync_1_11_bind_when_selector_matches(harness: BinderHarness) -> None:
    await harness.volume(make_pv("volume1-11", labels={"tier": "gold"}))
    await harness.claim(make_pvc("claim1-11", selector={"matchLabels": {"tier": "gold"}}))
    await harness.sync_claim("claim1-11")
    assert_bound(await harness.get_volume("volume1-11"), await harness.get_claim("claim1-11"))


async def test_sync_1_12_no_bind_when_selector_does_not_match(harness: BinderHarness) -> None:
    await harness.volume(make_pv("volume1-12", labels={"tier": "silver"}))
    await harness.claim(make_pvc("claim1-12", selector={"matchLabels": {"tier": "gold"}}))
    await harness.sync_claim("claim1-12")
    claim = await harness.get_claim("claim1-12")
    assert phase(claim) == "Pending"
    [message] = await harness.messages(claim, "FailedBinding")
    assert "volume1-12: labels do not match selector" in message


async def test_sync_1_13_delayed_binding_waits_for_first_consumer(harness: BinderHarness) -> None:
    await harness.storage_class(make_class("wait", binding_mode="WaitForFirstConsumer"))
    await harness.volume(make_pv("volume1-13", storage_class="wait"))
    await harness.claim(make_pvc("claim1-13", storage_class="wait"))
    await harness.sync_claim("claim1-13")
    claim = await harness.get_claim("claim1-13")
    assert phase(claim) == "Pending"
    assert "claimRef" not in (await harness.get_volume("volume1-13"))["spec"]
    assert await harness.messages(claim, "WaitForFirstConsumer") == [
        "waiting for first consumer to be created before binding"
    ]


async def test_sync_1_13_delayed_binding_names_unscheduled_pods(harness: BinderHarness) -> None:
    from kubeling.machinery.resources import PODS

    await harness.storage_class(make_class("wait", binding_mode="WaitForFirstConsumer"))
    await harness.claim(make_pvc("claim1-13b", storage_class="wait"))
    await harness.client.create(PODS, make_pod("app", "claim1-13b"))
    await harness.sync_claim("claim1-13b")
    claim = await harness.get_claim("claim1-13b")
    assert await harness.messages(claim, "WaitForPodScheduled") == [
        "waiting for pod app to be scheduled"
    ]
    await harness.client.create(PODS, make_pod("app2", "claim1-13b"))
    await harness.sync_claim("claim1-13b")
    assert "waiting for pods app,app2 to be scheduled" in await harness.messages(
        claim, "WaitForPodScheduled"
    )


async def test_sync_1_14_prebound_volume_binds_in_delayed_class(harness: BinderHarness) -> None:
    await harness.storage_class(make_class("wait", binding_mode="WaitForFirstConsumer"))
    claim = await harness.claim(make_pvc("claim1-14", storage_class="wait"))
    await harness.volume(make_pv("volume1-14", storage_class="wait", claim_ref=ref_to(claim)))
    await harness.sync_claim("claim1-14")
    assert_bound(await harness.get_volume("volume1-14"), await harness.get_claim("claim1-14"))


async def test_sync_1_15_prebound_claim_binds_named_volume(harness: BinderHarness) -> None:
    await harness.volume(make_pv("volume1-15", "10Gi"))
    await harness.volume(make_pv("volume1-15-small", "1Gi"))
    await harness.claim(make_pvc("claim1-15", "1Gi", volume_name="volume1-15"))
    await harness.sync_claim("claim1-15")
    volume, claim = await harness.get_volume("volume1-15"), await harness.get_claim("claim1-15")
    assert_bound(volume, claim)
    assert ann(volume)[BBC] == "yes"
    assert BBC not in ann(claim)
    assert claim["status"]["capacity"]["storage"] == "10Gi"


async def test_sync_1_16_prebound_claim_with_other_access_mode_stays_pending(
    harness: BinderHarness,
) -> None:
    await harness.volume(make_pv("volume1-16", modes=("ReadWriteOnce",)))
    await harness.claim(make_pvc("claim1-16", modes=("ReadWriteMany",), volume_name="volume1-16"))
    await harness.sync_claim("claim1-16")
    claim = await harness.get_claim("claim1-16")
    assert phase(claim) == "Pending"
    assert "claimRef" not in (await harness.get_volume("volume1-16"))["spec"]
    # upstream's 1-16 expects no event from its fake checks; the real checkVolumeSatisfyClaim
    # answers "incompatible accessMode", which kubeling reports
    assert await harness.messages(claim, "VolumeMismatch") == [
        'Cannot bind to requested volume "volume1-16": incompatible accessMode'
    ]


@pytest.mark.parametrize("volume_phase", ["Pending", "Failed", "Released", ""])
async def test_sync_1_17_non_available_volumes_are_skipped(
    harness: BinderHarness, volume_phase: str
) -> None:
    await harness.volume(make_pv("volume1-17"), phase=volume_phase or "Pending")
    await harness.claim(make_pvc("claim1-17"))
    await harness.sync_claim("claim1-17")
    assert phase(await harness.get_claim("claim1-17")) == "Pending"
    assert "claimRef" not in (await harness.get_volume("volume1-17"))["spec"]


async def test_sync_1_18_scheduler_prebound_volume_completes(harness: BinderHarness) -> None:
    await harness.storage_class(make_class("wait", binding_mode="WaitForFirstConsumer"))
    claim = await harness.claim(
        make_pvc("claim1-18", storage_class="wait", annotations={ANN_SELECTED_NODE: "node1"})
    )
    await harness.volume(
        make_pv(
            "volume1-18", storage_class="wait", claim_ref=ref_to(claim), annotations={BBC: "yes"}
        )
    )
    await harness.sync_claim("claim1-18")
    volume, claim = await harness.get_volume("volume1-18"), await harness.get_claim("claim1-18")
    assert_bound(volume, claim)
    assert ann(claim)[BBC] == "yes"


# -- Set 2: claim with volumeName ---------------------------------------------------------------


async def test_sync_2_1_claim_prebound_to_missing_volume_is_unchanged(
    harness: BinderHarness,
) -> None:
    before = await harness.claim(make_pvc("claim2-1", volume_name="volume2-1"))
    await harness.sync_claim("claim2-1")
    after = await harness.get_claim("claim2-1")
    assert after["metadata"]["resourceVersion"] == before["metadata"]["resourceVersion"]
    assert await harness.events(after) == []


async def test_sync_2_2_claim_prebound_to_missing_volume_reset_to_pending(
    harness: BinderHarness,
) -> None:
    await harness.claim(make_pvc("claim2-2", volume_name="volume2-2"), phase="Bound")
    await harness.sync_claim("claim2-2")
    assert phase(await harness.get_claim("claim2-2")) == "Pending"


async def test_sync_2_3_claim_prebound_to_free_volume_binds(harness: BinderHarness) -> None:
    await harness.volume(make_pv("volume2-3"))
    await harness.claim(make_pvc("claim2-3", volume_name="volume2-3"))
    await harness.sync_claim("claim2-3")
    volume, claim = await harness.get_volume("volume2-3"), await harness.get_claim("claim2-3")
    assert_bound(volume, claim)
    assert ann(volume)[BBC] == "yes"
    assert BBC not in ann(claim)


@pytest.mark.parametrize("with_uid", [pytest.param(False, id="2-4"), pytest.param(True, id="2-5")])
async def test_sync_2_4_and_2_5_mutually_reserved_bind_without_bbc(
    harness: BinderHarness, with_uid: bool
) -> None:
    claim = await harness.claim(make_pvc("claim2-4", volume_name="volume2-4"))
    await harness.volume(make_pv("volume2-4", claim_ref=ref_to(claim, uid=with_uid)))
    await harness.sync_claim("claim2-4")
    volume, claim = await harness.get_volume("volume2-4"), await harness.get_claim("claim2-4")
    assert_bound(volume, claim)
    assert BBC not in ann(volume) and BBC not in ann(claim)


async def test_sync_2_6_named_volume_bound_elsewhere_resets_user_claim(
    harness: BinderHarness,
) -> None:
    other = await harness.claim(make_pvc("other2-6"))
    await harness.volume(make_pv("volume2-6", claim_ref=ref_to(other)), phase="Bound")
    await harness.claim(make_pvc("claim2-6", volume_name="volume2-6"), phase="Bound")
    await harness.sync_claim("claim2-6")
    claim = await harness.get_claim("claim2-6")
    assert phase(claim) == "Pending"
    [event] = await harness.events(claim, "FailedBinding")
    assert event["message"] == 'volume "volume2-6" already bound to a different claim.'
    assert event["type"] == "Warning"


async def test_sync_2_7_named_volume_bound_elsewhere_with_bbc_is_an_error(
    harness: BinderHarness,
) -> None:
    from kubeling.controllers.volume.binder import BindingError

    other = await harness.claim(make_pvc("other2-7"))
    await harness.volume(make_pv("volume2-7", claim_ref=ref_to(other)), phase="Bound")
    await harness.claim(make_pvc("claim2-7", volume_name="volume2-7", annotations={BBC: "yes"}))
    with pytest.raises(BindingError):
        await harness.sync_claim("claim2-7")


async def test_sync_2_8_prebound_claim_ignores_selector(harness: BinderHarness) -> None:
    await harness.volume(make_pv("volume2-8", labels={"tier": "silver"}))
    await harness.claim(
        make_pvc("claim2-8", volume_name="volume2-8", selector={"matchLabels": {"tier": "gold"}})
    )
    await harness.sync_claim("claim2-8")
    assert_bound(await harness.get_volume("volume2-8"), await harness.get_claim("claim2-8"))


@pytest.mark.parametrize(
    ("volume", "reason"),
    [
        pytest.param(make_pv("volume2-9", "1Gi"), "requested PV is too small", id="2-9"),
        pytest.param(
            make_pv("volume2-9", "10Gi", storage_class="slow"),
            "storageClassName does not match",
            id="2-10",
        ),
        pytest.param(
            make_pv("volume2-9", "10Gi", volume_mode="Block"),
            "incompatible volumeMode",
            id="14-8",
        ),
    ],
)
async def test_sync_2_9_and_2_10_prebound_claim_mismatch_warns(
    harness: BinderHarness, volume: Obj, reason: str
) -> None:
    await harness.volume(volume)
    await harness.claim(make_pvc("claim2-9", "5Gi", volume_name="volume2-9"))
    await harness.sync_claim("claim2-9")
    claim = await harness.get_claim("claim2-9")
    assert phase(claim) == "Pending"
    [event] = await harness.events(claim, "VolumeMismatch")
    assert event["type"] == "Warning"
    assert event["message"] == f'Cannot bind to requested volume "volume2-9": {reason}'


async def test_sync_prebound_claim_to_volume_being_deleted_warns(harness: BinderHarness) -> None:
    from kubeling.machinery.resources import PERSISTENTVOLUMES

    await harness.volume(make_pv("volume-del", finalizers=["example.com/hold"]))
    await harness.client.delete(PERSISTENTVOLUMES, name="volume-del")
    await harness.claim(make_pvc("claim-del", volume_name="volume-del"))
    await harness.sync_claim("claim-del")
    assert await harness.messages(await harness.get_claim("claim-del"), "VolumeMismatch") == [
        'Cannot bind to requested volume "volume-del": the volume is marked for deletion '
        '"volume-del"'
    ]


# -- Set 3: claim with bind-completed -----------------------------------------------------------


async def test_sync_3_1_claim_lost_its_volume_reference(harness: BinderHarness) -> None:
    await harness.claim(make_pvc("claim3-1", annotations={BC: "yes"}), phase="Bound")
    await harness.sync_claim("claim3-1")
    claim = await harness.get_claim("claim3-1")
    assert phase(claim) == "Lost"
    [event] = await harness.events(claim, "ClaimLost")
    assert event["type"] == "Warning"
    assert event["message"] == (
        "Bound claim has lost reference to PersistentVolume. Data on the volume is lost!"
    )


async def test_sync_3_2_claim_lost_its_volume(harness: BinderHarness) -> None:
    await harness.claim(
        make_pvc("claim3-2", volume_name="volume3-2", annotations={BC: "yes"}), phase="Bound"
    )
    await harness.sync_claim("claim3-2")
    claim = await harness.get_claim("claim3-2")
    assert phase(claim) == "Lost"
    assert await harness.messages(claim, "ClaimLost") == [
        "Bound claim has lost its PersistentVolume. Data on the volume is lost!"
    ]
    # the event fires on the phase change only
    await harness.sync_claim("claim3-2")
    assert len(await harness.messages(claim, "ClaimLost")) == 1


async def test_sync_3_3_free_volume_is_bound_again(harness: BinderHarness) -> None:
    await harness.volume(make_pv("volume3-3"))
    await harness.claim(
        make_pvc("claim3-3", volume_name="volume3-3", annotations={BC: "yes", BBC: "yes"}),
        phase="Pending",
    )
    await harness.sync_claim("claim3-3")
    assert_bound(await harness.get_volume("volume3-3"), await harness.get_claim("claim3-3"))


@pytest.mark.parametrize(
    "other_name", [pytest.param("claim3-4", id="3-4"), pytest.param("other3-6", id="3-6")]
)
async def test_sync_3_4_and_3_6_claim_misbound(harness: BinderHarness, other_name: str) -> None:
    claim = await harness.claim(
        make_pvc("claim3-4", volume_name="volume3-4", annotations={BC: "yes"}), phase="Bound"
    )
    ref = ref_to(claim) | {"name": other_name, "uid": OTHER_UID}
    await harness.volume(make_pv("volume3-4", claim_ref=ref), phase="Bound")
    await harness.sync_claim("claim3-4")
    claim = await harness.get_claim("claim3-4")
    assert phase(claim) == "Lost"
    [event] = await harness.events(claim, "ClaimMisbound")
    assert event["message"] == (
        "Two claims are bound to the same volume, this one is bound incorrectly"
    )


async def test_sync_3_5_correct_binding_sets_phases(harness: BinderHarness) -> None:
    claim = await harness.claim(
        make_pvc("claim3-5", volume_name="volume3-5", annotations={BC: "yes"}), phase="Pending"
    )
    await harness.volume(make_pv("volume3-5", claim_ref=ref_to(claim)), phase="Pending")
    await harness.sync_claim("claim3-5")
    assert_bound(await harness.get_volume("volume3-5"), await harness.get_claim("claim3-5"))


async def test_sync_3_7_free_volume_rebound_despite_selector(harness: BinderHarness) -> None:
    await harness.volume(make_pv("volume3-7", labels={"tier": "silver"}))
    await harness.claim(
        make_pvc(
            "claim3-7",
            volume_name="volume3-7",
            annotations={BC: "yes"},
            selector={"matchLabels": {"tier": "gold"}},
        ),
        phase="Bound",
    )
    await harness.sync_claim("claim3-7")
    claim = await harness.get_claim("claim3-7")
    assert_bound(await harness.get_volume("volume3-7"), claim, capacity=False)
    assert "capacity" not in claim["status"]


# -- Set 4: syncVolume ---------------------------------------------------------------------------


async def test_sync_4_1_volume_without_claim_ref_becomes_available(
    harness: BinderHarness,
) -> None:
    await harness.volume(make_pv("volume4-1"), phase="Pending")
    await harness.sync_volume("volume4-1")
    assert phase(await harness.get_volume("volume4-1")) == "Available"


async def test_sync_4_2_reserved_volume_becomes_available(harness: BinderHarness) -> None:
    claim = await harness.claim(make_pvc("claim4-2"))
    await harness.volume(make_pv("volume4-2", claim_ref=ref_to(claim, uid=False)), phase="Pending")
    await harness.sync_volume("volume4-2")
    assert phase(await harness.get_volume("volume4-2")) == "Available"


async def test_sync_4_3_volume_of_missing_claim_is_released_and_retained(
    harness: BinderHarness,
) -> None:
    ref = {
        "kind": "PersistentVolumeClaim",
        "namespace": "default",
        "name": "gone",
        "uid": OTHER_UID,
    }
    await harness.volume(make_pv("volume4-3", claim_ref=ref, policy="Retain"), phase="Bound")
    await harness.sync_volume("volume4-3")
    volume = await harness.get_volume("volume4-3")
    assert phase(volume) == "Released"
    assert volume["spec"]["claimRef"]["uid"] == OTHER_UID
    await harness.sync_volume("volume4-3")
    assert phase(await harness.get_volume("volume4-3")) == "Released"


async def test_sync_4_4_claim_with_other_uid_releases_volume(harness: BinderHarness) -> None:
    claim = await harness.claim(make_pvc("claim4-4"))
    ref = ref_to(claim) | {"uid": OTHER_UID}
    await harness.volume(make_pv("volume4-4", claim_ref=ref), phase="Bound")
    await harness.sync_volume("volume4-4")
    assert phase(await harness.get_volume("volume4-4")) == "Released"


@pytest.mark.parametrize(
    "bbc", [pytest.param(True, id="by-controller"), pytest.param(False, id="by-user")]
)
async def test_sync_4_5_volume_waits_for_claim_sync(harness: BinderHarness, bbc: bool) -> None:
    claim = await harness.claim(make_pvc("claim4-5"))
    before = await harness.volume(
        make_pv("volume4-5", claim_ref=ref_to(claim), annotations={BBC: "yes"} if bbc else None),
        phase="Bound",
    )
    await harness.sync_volume("volume4-5")
    after = await harness.get_volume("volume4-5")
    assert after["metadata"]["resourceVersion"] == before["metadata"]["resourceVersion"]
    assert "claim:default/claim4-5" in harness.binder.queue._queue


async def test_sync_4_6_mutually_bound_volume_is_bound(harness: BinderHarness) -> None:
    claim = await harness.claim(make_pvc("claim4-6", volume_name="volume4-6"), phase="Bound")
    await harness.volume(make_pv("volume4-6", claim_ref=ref_to(claim)), phase="Released")
    await harness.sync_volume("volume4-6")
    assert phase(await harness.get_volume("volume4-6")) == "Bound"


async def test_sync_4_7_controller_bound_volume_of_claim_bound_elsewhere_is_unbound(
    harness: BinderHarness,
) -> None:
    claim = await harness.claim(make_pvc("claim4-7", volume_name="other"), phase="Bound")
    await harness.volume(
        make_pv("volume4-7", claim_ref=ref_to(claim), annotations={BBC: "yes"}), phase="Bound"
    )
    await harness.sync_volume("volume4-7")
    volume = await harness.get_volume("volume4-7")
    assert phase(volume) == "Available"
    assert "claimRef" not in volume["spec"]
    assert BBC not in ann(volume)


async def test_sync_4_8_user_reserved_volume_keeps_reservation(harness: BinderHarness) -> None:
    claim = await harness.claim(make_pvc("claim4-8", volume_name="other"), phase="Bound")
    await harness.volume(make_pv("volume4-8", claim_ref=ref_to(claim)), phase="Bound")
    await harness.sync_volume("volume4-8")
    volume = await harness.get_volume("volume4-8")
    assert phase(volume) == "Available"
    assert volume["spec"]["claimRef"]["name"] == "claim4-8"
    assert "uid" not in volume["spec"]["claimRef"]


# -- Set 13: classes -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("claim_class", "volumes", "expected"),
    [
        pytest.param("gold", [("v-1", "1Gi", ""), ("v-10", "10Gi", "gold")], "v-10", id="13-1"),
        pytest.param(None, [("v-1", "1Gi", "gold"), ("v-10", "10Gi", "")], "v-10", id="13-2"),
        pytest.param(
            "gold", [("v-1", "1Gi", "silver"), ("v-10", "10Gi", "gold")], "v-10", id="13-3"
        ),
        pytest.param("", [("v-1", "1Gi", "gold"), ("v-10", "10Gi", "")], "v-10", id="13-4"),
        pytest.param(None, [("v-1", "1Gi", "")], "v-1", id="13-5"),
    ],
)
async def test_sync_13_class_is_a_hard_filter(
    harness: BinderHarness,
    claim_class: str | None,
    volumes: list[tuple[str, str, str]],
    expected: str,
) -> None:
    for name, size, cls in volumes:
        await harness.volume(make_pv(name, size, storage_class=cls))
    await harness.claim(make_pvc("claim13", "1Gi", storage_class=claim_class))
    await harness.sync_claim("claim13")
    assert_bound(await harness.get_volume(expected), await harness.get_claim("claim13"))


async def test_sync_beta_class_annotation_overrides_spec(harness: BinderHarness) -> None:
    await harness.volume(
        make_pv(
            "v-beta",
            storage_class="",
            annotations={"volume.beta.kubernetes.io/storage-class": "gold"},
        )
    )
    await harness.volume(make_pv("v-plain", storage_class=""))
    await harness.claim(
        make_pvc("claim-beta", annotations={"volume.beta.kubernetes.io/storage-class": "gold"})
    )
    await harness.sync_claim("claim-beta")
    assert_bound(await harness.get_volume("v-beta"), await harness.get_claim("claim-beta"))


# -- Set 14: volumeMode --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("pv_mode", "pvc_mode", "binds"),
    [
        pytest.param("Block", "Block", True, id="14-1"),
        pytest.param("Filesystem", "Filesystem", True, id="14-2"),
        pytest.param(None, "Filesystem", True, id="nil-is-filesystem"),
        pytest.param("Block", "Filesystem", False, id="14-3"),
        pytest.param("Filesystem", "Block", False, id="14-4"),
    ],
)
async def test_sync_14_volume_mode_must_match(
    harness: BinderHarness, pv_mode: str | None, pvc_mode: str, binds: bool
) -> None:
    await harness.volume(make_pv("volume14", volume_mode=pv_mode))
    await harness.claim(make_pvc("claim14", volume_mode=pvc_mode))
    await harness.sync_claim("claim14")
    claim = await harness.get_claim("claim14")
    if binds:
        assert_bound(await harness.get_volume("volume14"), claim)
    else:
        assert phase(claim) == "Pending"
        [message] = await harness.messages(claim, "FailedBinding")
        assert "volumeMode" in message


async def test_sync_14_5_mode_mismatch_with_provisioner_class_provisions(
    harness: BinderHarness,
) -> None:
    await harness.storage_class(make_class("gold", provisioner="kubernetes.io/fake"))
    await harness.volume(make_pv("volume14-5", storage_class="gold", volume_mode="Block"))
    await harness.claim(make_pvc("claim14-5", storage_class="gold", volume_mode="Filesystem"))
    await harness.sync_claim("claim14-5")
    claim = await harness.get_claim("claim14-5")
    [event] = await harness.events(claim, "ProvisioningFailed")
    assert event["type"] == "Warning"
    assert event["message"] == "no volume plugin matched name: kubernetes.io/fake"


async def test_sync_14_5_1_modes_match_class_differs_provisions(harness: BinderHarness) -> None:
    await harness.storage_class(make_class("gold", provisioner="kubernetes.io/fake"))
    await harness.volume(make_pv("volume14-5-1", storage_class="silver", volume_mode="Block"))
    await harness.claim(make_pvc("claim14-5-1", storage_class="gold", volume_mode="Block"))
    await harness.sync_claim("claim14-5-1")
    claim = await harness.get_claim("claim14-5-1")
    assert "claimRef" not in (await harness.get_volume("volume14-5-1"))["spec"]
    [event] = await harness.events(claim, "ProvisioningFailed")
    assert event["type"] == "Warning"


async def test_sync_14_5_2_prebound_claim_with_other_class_warns(harness: BinderHarness) -> None:
    await harness.volume(make_pv("volume14-5-2", storage_class="silver", volume_mode="Block"))
    await harness.claim(
        make_pvc(
            "claim14-5-2", storage_class="gold", volume_mode="Block", volume_name="volume14-5-2"
        )
    )
    await harness.sync_claim("claim14-5-2")
    assert await harness.messages(await harness.get_claim("claim14-5-2"), "VolumeMismatch") == [
        'Cannot bind to requested volume "volume14-5-2": storageClassName does not match'
    ]


async def test_sync_14_8_1_reserved_volume_with_other_mode_fails_binding(
    harness: BinderHarness,
) -> None:
    claim = await harness.claim(make_pvc("claim14-8-1", volume_mode="Filesystem"))
    await harness.volume(
        make_pv("volume14-8-1", claim_ref=ref_to(claim, uid=False), volume_mode="Block")
    )
    await harness.sync_claim("claim14-8-1")
    claim = await harness.get_claim("claim14-8-1")
    assert phase(claim) == "Pending"
    assert await harness.messages(claim, "FailedBinding")


@pytest.mark.parametrize("mode", ["Block", "Filesystem"])
@pytest.mark.parametrize("side", ["volume", "claim"])
async def test_sync_14_9_to_14_12_prebinding_with_matching_mode_binds(
    harness: BinderHarness, mode: str, side: str
) -> None:
    claim = await harness.claim(
        make_pvc("claim14-9", volume_mode=mode, volume_name="volume14-9" if side == "claim" else "")
    )
    ref = ref_to(claim, uid=False) if side == "volume" else None
    await harness.volume(make_pv("volume14-9", volume_mode=mode, claim_ref=ref))
    await harness.sync_claim("claim14-9")
    assert_bound(await harness.get_volume("volume14-9"), await harness.get_claim("claim14-9"))


@pytest.mark.parametrize("bbc", [pytest.param(True, id="14-13"), pytest.param(False, id="14-13-1")])
async def test_sync_14_13_volume_sync_warns_on_mode_mismatch(
    harness: BinderHarness, bbc: bool
) -> None:
    claim = await harness.claim(make_pvc("claim14-13", volume_mode="Filesystem"))
    before = await harness.volume(
        make_pv(
            "volume14-13",
            claim_ref=ref_to(claim),
            annotations={BBC: "yes"} if bbc else None,
            volume_mode="Block",
        ),
        phase="Bound",
    )
    await harness.sync_volume("volume14-13")
    assert (await harness.get_volume("volume14-13"))["metadata"]["resourceVersion"] == (
        before["metadata"]["resourceVersion"]
    )
    assert await harness.messages(before, "VolumeMismatch") == [
        'Cannot bind PersistentVolume to requested PersistentVolumeClaim "claim14-13" due to '
        "incompatible volumeMode."
    ]
    assert await harness.messages(claim, "VolumeMismatch") == [
        'Cannot bind PersistentVolume "volume14-13" to requested PersistentVolumeClaim due to '
        "incompatible volumeMode."
    ]


@pytest.mark.parametrize("bbc", [pytest.param(True, id="14-14"), pytest.param(False, id="14-14-1")])
async def test_sync_14_14_volume_sync_with_matching_mode_is_silent(
    harness: BinderHarness, bbc: bool
) -> None:
    claim = await harness.claim(make_pvc("claim14-14", volume_mode="Block"))
    await harness.volume(
        make_pv(
            "volume14-14",
            claim_ref=ref_to(claim),
            annotations={BBC: "yes"} if bbc else None,
            volume_mode="Block",
        ),
        phase="Bound",
    )
    await harness.sync_volume("volume14-14")
    assert await harness.events() == []


# -- access-mode groups --------------------------------------------------------------------------


async def test_sync_access_mode_group_with_fewest_modes_wins_over_smaller_volume(
    harness: BinderHarness,
) -> None:
    await harness.volume(make_pv("rwo-10", "10Gi", modes=("ReadWriteOnce",)))
    await harness.volume(make_pv("rwo-rwx-1", "1Gi", modes=("ReadWriteOnce", "ReadWriteMany")))
    await harness.claim(make_pvc("claim-modes", "1Gi", modes=("ReadWriteOnce",)))
    await harness.sync_claim("claim-modes")
    assert_bound(await harness.get_volume("rwo-10"), await harness.get_claim("claim-modes"))


async def test_sync_claim_modes_must_be_covered(harness: BinderHarness) -> None:
    await harness.volume(make_pv("rwo", "1Gi", modes=("ReadWriteOnce",)))
    await harness.volume(make_pv("rwo-rox", "5Gi", modes=("ReadWriteOnce", "ReadOnlyMany")))
    await harness.claim(make_pvc("claim-rox", "1Gi", modes=("ReadOnlyMany",)))
    await harness.sync_claim("claim-rox")
    assert_bound(await harness.get_volume("rwo-rox"), await harness.get_claim("claim-rox"))


async def test_sync_volume_being_deleted_is_not_chosen(harness: BinderHarness) -> None:
    from kubeling.machinery.resources import PERSISTENTVOLUMES

    await harness.volume(make_pv("deleting", "1Gi", finalizers=["example.com/hold"]))
    await harness.client.delete(PERSISTENTVOLUMES, name="deleting")
    await harness.volume(make_pv("healthy", "2Gi"))
    await harness.claim(make_pvc("claim-deleting", "1Gi"))
    await harness.sync_claim("claim-deleting")
    assert_bound(await harness.get_volume("healthy"), await harness.get_claim("claim-deleting"))


# -- multi-sync ----------------------------------------------------------------------------------


async def test_multisync_10_1_simple_bind_converges(harness: BinderHarness) -> None:
    await harness.volume(make_pv("volume10-1"), phase="Pending")
    await harness.claim(make_pvc("claim10-1"))
    await harness.converge()
    assert_bound(await harness.get_volume("volume10-1"), await harness.get_claim("claim10-1"))


async def test_multisync_10_2_second_volume_of_bind_race_is_rolled_back(
    harness: BinderHarness,
) -> None:
    claim = await harness.claim(make_pvc("claim10-2", volume_name="volume10-2-1"))
    await harness.volume(make_pv("volume10-2-1", claim_ref=ref_to(claim), annotations={BBC: "yes"}))
    await harness.volume(make_pv("volume10-2-2", claim_ref=ref_to(claim), annotations={BBC: "yes"}))
    await harness.converge()
    assert_bound(await harness.get_volume("volume10-2-1"), await harness.get_claim("claim10-2"))
    loser = await harness.get_volume("volume10-2-2")
    assert phase(loser) == "Available"
    assert "claimRef" not in loser["spec"]
