"""kubeling's addition: a Pending claim's FailedBinding event names the closest volumes and
why each was refused, short enough for ``kubectl describe``."""

from __future__ import annotations

from tests.controllers.conftest import BinderHarness, make_pv, make_pvc

BASE = "no persistent volumes available for this claim and no storage class is set"
GONE = {
    "kind": "PersistentVolumeClaim",
    "apiVersion": "v1",
    "namespace": "default",
    "name": "old",
    "uid": "99999999-8888-7777-6666-555555555555",
}


async def test_explain_names_candidates_and_reasons(harness: BinderHarness) -> None:
    await harness.volume(make_pv("my-pv2", "5Gi", storage_class="standard"))
    await harness.volume(make_pv("my-pv3", "3Gi"))
    await harness.volume(make_pv("my-pv4", "5Gi", claim_ref=GONE), phase="Released")
    await harness.claim(make_pvc("my-claim", "5Gi", storage_class=""))
    await harness.sync_claim("my-claim")
    [message] = await harness.messages(await harness.get_claim("my-claim"), "FailedBinding")
    assert message == (
        f'{BASE}; candidates: my-pv2: class "standard" != ""; my-pv3: 3Gi < 5Gi; my-pv4: Released'
    )


async def test_explain_is_capped_and_ranks_closest_first(harness: BinderHarness) -> None:
    for i in range(6):
        await harness.volume(
            make_pv(f"far-{i}", "1Gi", storage_class="gold", modes=("ReadOnlyMany",))
        )
    await harness.volume(make_pv("near", "1Gi"))
    await harness.claim(make_pvc("claim", "2Gi"))
    await harness.sync_claim("claim")
    [message] = await harness.messages(await harness.get_claim("claim"), "FailedBinding")
    candidates = message.removeprefix(f"{BASE}; candidates: ")
    assert candidates.startswith("near: 1Gi < 2Gi; far-0: ")
    assert "far-0: modes ROX lack RWO" in candidates or "far-0: class" in candidates
    assert candidates.count(": ") <= 4  # three candidates and their reasons
    assert candidates.endswith("(+4 more)")
    assert len(candidates) <= 260


async def test_explain_reports_access_modes_volume_mode_and_reservations(
    harness: BinderHarness,
) -> None:
    await harness.volume(make_pv("rox", "5Gi", modes=("ReadOnlyMany",)))
    await harness.volume(make_pv("block", "5Gi", volume_mode="Block"))
    await harness.volume(
        make_pv("taken", "5Gi", claim_ref={**GONE, "name": "other"}), phase="Bound"
    )
    await harness.claim(make_pvc("c", "5Gi"))
    await harness.sync_claim("c")
    [message] = await harness.messages(await harness.get_claim("c"), "FailedBinding")
    assert "rox: modes ROX lack RWO" in message
    assert "block: volumeMode Block != Filesystem" in message
    assert "taken: bound to default/other" in message


async def test_explain_without_any_volume_is_upstreams_message(harness: BinderHarness) -> None:
    await harness.claim(make_pvc("lonely"))
    await harness.sync_claim("lonely")
    assert await harness.messages(await harness.get_claim("lonely"), "FailedBinding") == [BASE]
