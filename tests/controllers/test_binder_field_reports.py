"""Field reports of themes A, B and C (``shared/acceptance/field-reports.md``): each scenario
as its own test, against the real registry (with its admission plugins) and the binder.
B09 (a completed pod keeps the claim Terminating) lives in ``test_protection.py``."""

from __future__ import annotations

import pathlib
from collections.abc import AsyncIterator

import pytest

from kubeling.client.local import LocalClient
from kubeling.controllers.manager import ControllerManager
from kubeling.controllers.volume.index import ANN_PROVISIONED_BY, ANN_SELECTED_NODE
from kubeling.controllers.volume.index import ANN_STORAGE_PROVISIONER as ANN_PROVISIONER
from kubeling.machinery.errors import Forbidden, Invalid
from kubeling.machinery.resources import (
    PERSISTENTVOLUMECLAIMS,
    PERSISTENTVOLUMES,
    PODS,
    STORAGECLASSES,
)
from kubeling.machinery.types import Obj
from kubeling.registry.registry import Registry
from kubeling.storage.memory import MemoryBackend
from tests.controllers.conftest import (
    Api,
    BinderHarness,
    make_class,
    make_pod,
    make_pv,
    make_pvc,
    wait_until,
)

PROV = "kubeling.io/local-path"
NO_CLASS = "no persistent volumes available for this claim and no storage class is set"


def phase(obj: Obj) -> str:
    return (obj.get("status") or {}).get("phase", "")


def ann(obj: Obj) -> dict[str, str]:
    return obj["metadata"].get("annotations") or {}


async def force_delete_claim(h: BinderHarness, name: str) -> None:
    """``kubectl delete pvc`` with the protection controller's part done at once."""
    await h.client.delete(PERSISTENTVOLUMECLAIMS, name=name, namespace="default")
    await h.client.patch(
        PERSISTENTVOLUMECLAIMS,
        name=name,
        namespace="default",
        patch={"metadata": {"finalizers": None}},
        patch_type="merge",
    )


# -- Theme A ------------------------------------------------------------------------------------


async def test_b01_unset_class_gets_default_and_skips_classless_volume(
    harness: BinderHarness,
) -> None:
    await harness.storage_class(
        make_class("standard", provisioner=PROV, binding_mode="WaitForFirstConsumer", default=True)
    )
    await harness.volume(make_pv("data-pv", "5Gi", storage_class=None))
    claim = await harness.claim(make_pvc("data", "5Gi", storage_class=None))
    assert claim["spec"]["storageClassName"] == "standard"
    await harness.sync_claim("data")
    await harness.sync_volume("data-pv")
    claim = await harness.get_claim("data")
    assert phase(claim) == "Pending"
    assert phase(await harness.get_volume("data-pv")) == "Available"
    assert await harness.messages(claim, "WaitForFirstConsumer") == [
        "waiting for first consumer to be created before binding"
    ]
    # variant: an explicit empty class binds the class-less volume at once
    await force_delete_claim(harness, "data")
    await harness.claim(make_pvc("data", "5Gi", storage_class=""))
    await harness.sync_claim("data")
    assert (await harness.get_claim("data"))["spec"]["volumeName"] == "data-pv"


async def test_b02_empty_class_disables_provisioning_even_with_a_default(
    harness: BinderHarness,
) -> None:
    await harness.storage_class(make_class("standard", provisioner=PROV, default=True))
    claim = await harness.claim(make_pvc("data", storage_class=""))
    assert claim["spec"]["storageClassName"] == ""
    await harness.sync_claim("data")
    claim = await harness.get_claim("data")
    assert claim["spec"]["storageClassName"] == ""
    assert phase(claim) == "Pending"
    assert ANN_PROVISIONER not in ann(claim)
    [event] = await harness.events(claim, "FailedBinding")
    assert (event["type"], event["message"]) == ("Normal", NO_CLASS)


async def test_b02_variant_omitted_class_is_provisioned_and_bound(api: Api) -> None:
    manager = ControllerManager(
        api.ctx, enabled=["persistentvolume-binder", "local-path-provisioner"]
    )
    await manager.start()
    try:
        await api.client.create(
            STORAGECLASSES, make_class("standard", provisioner=PROV, default=True)
        )
        claim = await api.client.create(
            PERSISTENTVOLUMECLAIMS, make_pvc("data", storage_class=None)
        )
        assert claim["spec"]["storageClassName"] == "standard"

        async def bound() -> bool:
            c = await api.client.get(PERSISTENTVOLUMECLAIMS, name="data", namespace="default")
            return phase(c) == "Bound"

        await wait_until(bound, timeout=20, what="the claim provisioned and Bound")
    finally:
        await manager.stop()


@pytest.mark.parametrize(
    ("pv", "expected"),
    [
        pytest.param(
            make_pv("big-pv", "120Gi", modes=("ReadWriteMany",)), None, id="bound-whole-capacity"
        ),
        pytest.param(
            make_pv("big-pv", "1Gi", modes=("ReadWriteMany",)),
            "requested PV is too small",
            id="a-too-small",
        ),
        pytest.param(
            make_pv("big-pv", "120Gi", modes=("ReadWriteMany",), storage_class="slow"),
            "storageClassName does not match",
            id="b-other-class",
        ),
    ],
)
async def test_b04_prebound_claim_reports_whole_volume_capacity(
    harness: BinderHarness, pv: Obj, expected: str | None
) -> None:
    await harness.volume(pv)
    await harness.claim(
        make_pvc("small", "2Gi", modes=("ReadWriteMany",), volume_name="big-pv", storage_class="")
    )
    await harness.sync_claim("small")
    claim = await harness.get_claim("small")
    if expected is None:
        assert (
            phase(claim),
            claim["status"]["capacity"]["storage"],
            claim["spec"]["resources"]["requests"]["storage"],
        ) == ("Bound", "120Gi", "2Gi")
    else:
        assert phase(claim) == "Pending"
        assert await harness.messages(claim, "VolumeMismatch") == [
            f'Cannot bind to requested volume "big-pv": {expected}'
        ]


# -- Theme B ------------------------------------------------------------------------------------


async def test_b06_released_volume_is_not_rebound_to_recreated_claim(
    harness: BinderHarness, tmp_path: pathlib.Path
) -> None:
    data = tmp_path / "data-pv"
    data.mkdir()
    (data / "old.txt").write_text("kept")
    await harness.volume(make_pv("data-pv", policy="Retain", host_path=str(data)))
    manifest = make_pvc("data", volume_name="data-pv")
    await harness.claim(manifest)
    await harness.sync_claim("data")
    old_uid = (await harness.get_claim("data"))["metadata"]["uid"]
    await force_delete_claim(harness, "data")
    await harness.sync_volume("data-pv")
    volume = await harness.get_volume("data-pv")
    assert (phase(volume), volume["spec"]["claimRef"]["uid"]) == ("Released", old_uid)

    await harness.claim(manifest)  # same claim again, new uid
    await harness.sync_claim("data")
    claim = await harness.get_claim("data")
    assert phase(claim) == "Pending"
    assert await harness.messages(claim, "FailedBinding") == [
        'volume "data-pv" already bound to a different claim.'
    ]

    await harness.client.patch(
        PERSISTENTVOLUMES,
        name="data-pv",
        patch=[{"op": "remove", "path": "/spec/claimRef/uid"}],
        patch_type="json",
    )
    await harness.sync_volume("data-pv")
    assert phase(await harness.get_volume("data-pv")) == "Available"
    await harness.sync_claim("data")
    claim = await harness.get_claim("data")
    assert (phase(claim), claim["spec"]["volumeName"]) == ("Bound", "data-pv")
    assert (data / "old.txt").read_text() == "kept"


async def test_b06_removing_whole_claim_ref_frees_volume_for_any_claim(
    harness: BinderHarness,
) -> None:
    await harness.volume(make_pv("data-pv", policy="Retain"))
    await harness.claim(make_pvc("data", volume_name="data-pv"))
    await harness.sync_claim("data")
    await force_delete_claim(harness, "data")
    await harness.sync_volume("data-pv")
    await harness.client.patch(
        PERSISTENTVOLUMES,
        name="data-pv",
        patch=[{"op": "remove", "path": "/spec/claimRef"}],
        patch_type="json",
    )
    await harness.sync_volume("data-pv")
    await harness.claim(make_pvc("somebody-else"))
    await harness.sync_claim("somebody-else")
    assert (await harness.get_claim("somebody-else"))["spec"]["volumeName"] == "data-pv"


async def test_b07_class_reclaim_policy_immutable_volume_policy_mutable(
    harness: BinderHarness,
) -> None:
    await harness.storage_class(make_class("fast", provisioner=PROV, reclaim_policy="Delete"))
    sc = await harness.client.get(STORAGECLASSES, name="fast")
    sc["reclaimPolicy"] = "Retain"
    with pytest.raises(Invalid) as refused:
        await harness.client.update(STORAGECLASSES, sc)
    assert "reclaimPolicy: Forbidden: updates to reclaimPolicy are forbidden." in str(refused.value)
    # a volume "provisioned" for the claim with the class policy, then switched to Retain
    claim = await harness.claim(make_pvc("data", storage_class="fast"))
    name = f"pvc-{claim['metadata']['uid']}"
    await harness.volume(
        make_pv(
            name,
            storage_class="fast",
            policy="Delete",
            annotations={ANN_PROVISIONED_BY: PROV},
        )
    )
    await harness.sync_claim("data")
    assert (await harness.get_claim("data"))["spec"]["volumeName"] == name
    await harness.client.patch(
        PERSISTENTVOLUMES,
        name=name,
        patch={"spec": {"persistentVolumeReclaimPolicy": "Retain"}},
        patch_type="merge",
    )
    await force_delete_claim(harness, "data")
    await harness.sync_volume(name)
    volume = await harness.get_volume(name)
    assert phase(volume) == "Released"
    assert volume["metadata"].get("deletionTimestamp") is None


# -- Theme C ------------------------------------------------------------------------------------


@pytest.fixture
async def clocked() -> AsyncIterator[tuple[LocalClient, list[float]]]:
    """A client on a registry whose clock the test sets (creationTimestamps to the second)."""
    now = [1_700_000_000.0]
    backend = MemoryBackend()
    await backend.start()
    registry = await Registry.open(backend=backend, clock=lambda: now[0])
    await registry.bootstrap()
    yield LocalClient(registry), now
    await registry.close()
    await backend.close()


@pytest.mark.parametrize(
    ("first", "second"),
    [pytest.param("slow", "fast", id="report"), pytest.param("fast", "slow", id="reversed")],
)
async def test_b10_newest_of_two_default_classes_wins(
    clocked: tuple[LocalClient, list[float]], first: str, second: str
) -> None:
    client, now = clocked
    await client.create(STORAGECLASSES, make_class(first, provisioner=PROV, default=True))
    now[0] += 2
    await client.create(STORAGECLASSES, make_class(second, provisioner=PROV, default=True))
    claim = await client.create(PERSISTENTVOLUMECLAIMS, make_pvc("data", storage_class=None))
    assert claim["spec"]["storageClassName"] == second
    explicit = await client.create(PERSISTENTVOLUMECLAIMS, make_pvc("named", storage_class=first))
    assert explicit["spec"]["storageClassName"] == first


async def test_b10_default_classes_created_in_the_same_second_pick_name_ascending(
    clocked: tuple[LocalClient, list[float]],
) -> None:
    client, _ = clocked
    for name in ("zeta", "alpha", "mid"):
        await client.create(STORAGECLASSES, make_class(name, provisioner=PROV, default=True))
    claim = await client.create(PERSISTENTVOLUMECLAIMS, make_pvc("data", storage_class=None))
    assert claim["spec"]["storageClassName"] == "alpha"


async def test_b12_wait_for_first_consumer_with_node_name_never_binds(
    harness: BinderHarness,
) -> None:
    await harness.storage_class(
        make_class("lp", provisioner=PROV, binding_mode="WaitForFirstConsumer")
    )
    await harness.claim(make_pvc("data", "10Mi", storage_class="lp"))
    await harness.client.create(PODS, make_pod("app", "data", node="node1"))
    for _ in range(3):
        await harness.sync_claim("data")
    claim = await harness.get_claim("data")
    assert phase(claim) == "Pending"
    assert ANN_PROVISIONER not in ann(claim)
    assert set(await harness.messages(claim)) == {
        "waiting for first consumer to be created before binding"
    }


async def test_b12_variant_scheduler_selected_node_starts_provisioning(
    harness: BinderHarness,
) -> None:
    """With ``nodeSelector`` the scheduler writes ``selected-node``; here the test writes it
    as the scheduler would, and the binder hands the claim to the provisioner."""
    await harness.storage_class(
        make_class("lp", provisioner=PROV, binding_mode="WaitForFirstConsumer")
    )
    await harness.claim(
        make_pvc("data", "10Mi", storage_class="lp", annotations={ANN_SELECTED_NODE: "node1"})
    )
    await harness.sync_claim("data")
    assert ann(await harness.get_claim("data"))[ANN_PROVISIONER] == PROV


async def test_b13_expansion_needs_class_permission_and_never_shrinks(
    harness: BinderHarness,
) -> None:
    await harness.storage_class(make_class("plain", provisioner="vendor.com/x"))
    claim = await harness.claim(make_pvc("data", "1Gi", storage_class="plain"))
    await harness.volume(make_pv(f"pvc-{claim['metadata']['uid']}", "1Gi", storage_class="plain"))
    await harness.sync_claim("data")
    assert phase(await harness.get_claim("data")) == "Bound"

    async def resize(size: str) -> Obj:
        return await harness.client.patch(
            PERSISTENTVOLUMECLAIMS,
            name="data",
            namespace="default",
            patch={"spec": {"resources": {"requests": {"storage": size}}}},
            patch_type="merge",
        )

    with pytest.raises(Forbidden) as step1:
        await resize("2Gi")
    assert str(step1.value).endswith(
        "only dynamically provisioned pvc can be resized and the storageclass that provisions "
        "the pvc must support resize"
    )
    await harness.client.patch(
        STORAGECLASSES, name="plain", patch={"allowVolumeExpansion": True}, patch_type="merge"
    )
    grown = await resize("2Gi")
    assert grown["spec"]["resources"]["requests"]["storage"] == "2Gi"
    assert grown["status"]["capacity"]["storage"] == "1Gi"
    with pytest.raises(Invalid):
        await resize("1Gi")
    # step 4: a Pending claim's spec cannot change at all
    await harness.claim(make_pvc("pending", "1Gi", storage_class="unknown-class"))
    with pytest.raises(Invalid) as step4:
        await harness.client.patch(
            PERSISTENTVOLUMECLAIMS,
            name="pending",
            namespace="default",
            patch={"spec": {"resources": {"requests": {"storage": "2Gi"}}}},
            patch_type="merge",
        )
    assert "spec is immutable after creation except resources.requests" in str(step4.value)
