"""Provisioning hand-off and default classes: upstream's provision_test.go scenarios that
apply to a binder without in-tree provisioning plugins (11-x, 12-x), and the retroactive
default StorageClass."""

from __future__ import annotations

import pytest

from kubeling.controllers.volume.index import (
    ANN_BETA_STORAGE_PROVISIONER,
    ANN_BIND_COMPLETED,
    ANN_BOUND_BY_CONTROLLER,
    ANN_PROVISIONED_BY,
    ANN_SELECTED_NODE,
    ANN_STORAGE_PROVISIONER,
)
from kubeling.machinery.types import Obj
from tests.controllers.conftest import BinderHarness, make_class, make_pv, make_pvc, ref_to

EXTERNAL = "vendor.com/my-volume"
EXTERNAL_MESSAGE = (
    "Waiting for a volume to be created either by the external provisioner 'vendor.com/my-volume' "
    "or manually by the system administrator. If volume creation is delayed, please verify "
    "that the provisioner is running and correctly registered."
)


def ann(obj: Obj) -> dict[str, str]:
    return obj["metadata"].get("annotations") or {}


def phase(obj: Obj) -> str:
    return (obj.get("status") or {}).get("phase", "")


async def test_provision_11_17_external_provisioner_annotates_claim_and_records_event(
    harness: BinderHarness,
) -> None:
    await harness.storage_class(make_class("external", provisioner=EXTERNAL))
    await harness.claim(make_pvc("claim11-17", storage_class="external"))
    await harness.sync_claim("claim11-17")
    claim = await harness.get_claim("claim11-17")
    assert ann(claim)[ANN_STORAGE_PROVISIONER] == EXTERNAL
    assert ann(claim)[ANN_BETA_STORAGE_PROVISIONER] == EXTERNAL
    assert phase(claim) == "Pending"
    [event] = await harness.events(claim, "ExternalProvisioning")
    assert (event["type"], event["message"]) == ("Normal", EXTERNAL_MESSAGE)


async def test_provision_builtin_local_path_is_annotated_without_external_event(
    harness: BinderHarness,
) -> None:
    await harness.storage_class(make_class("local-path", provisioner="kubeling.io/local-path"))
    await harness.claim(make_pvc("claim-lp", storage_class="local-path"))
    await harness.sync_claim("claim-lp")
    claim = await harness.get_claim("claim-lp")
    assert ann(claim)[ANN_STORAGE_PROVISIONER] == "kubeling.io/local-path"
    assert ann(claim)[ANN_BETA_STORAGE_PROVISIONER] == "kubeling.io/local-path"
    assert await harness.events(claim) == []


@pytest.mark.parametrize(
    "provisioner",
    [
        pytest.param("kubernetes.io/fake", id="11-2/11-18"),
        pytest.param("kubernetes.io/no-provisioner", id="no-provisioner"),
    ],
)
async def test_provision_11_2_and_11_18_unknown_in_tree_plugin_fails(
    harness: BinderHarness, provisioner: str
) -> None:
    await harness.storage_class(make_class("gold", provisioner=provisioner))
    await harness.claim(make_pvc("claim11-2", storage_class="gold"))
    await harness.sync_claim("claim11-2")
    claim = await harness.get_claim("claim11-2")
    assert ANN_STORAGE_PROVISIONER not in ann(claim)
    [event] = await harness.events(claim, "ProvisioningFailed")
    assert (event["type"], event["message"]) == (
        "Warning",
        f"no volume plugin matched name: {provisioner}",
    )


@pytest.mark.parametrize("provisioner", [EXTERNAL, "kubeling.io/local-path"])
async def test_provision_11_6_and_11_22_matching_volume_is_bound_instead(
    harness: BinderHarness, provisioner: str
) -> None:
    await harness.storage_class(make_class("gold", provisioner=provisioner))
    await harness.volume(make_pv("volume11-6", storage_class="gold"))
    await harness.claim(make_pvc("claim11-6", storage_class="gold"))
    await harness.sync_claim("claim11-6")
    claim = await harness.get_claim("claim11-6")
    assert claim["spec"]["volumeName"] == "volume11-6"
    assert ANN_STORAGE_PROVISIONER not in ann(claim)
    assert await harness.events(claim, "ExternalProvisioning") == []


async def test_provision_11_14_missing_class_fails(harness: BinderHarness) -> None:
    await harness.claim(make_pvc("claim11-14", storage_class="non-existing"))
    await harness.sync_claim("claim11-14")
    claim = await harness.get_claim("claim11-14")
    assert phase(claim) == "Pending"
    assert ANN_STORAGE_PROVISIONER not in ann(claim)
    assert await harness.messages(claim, "ProvisioningFailed") == [
        'storageclass.storage.k8s.io "non-existing" not found'
    ]


@pytest.mark.parametrize(
    "storage_class", [pytest.param("", id="11-15"), pytest.param(None, id="11-16")]
)
async def test_provision_11_15_and_11_16_no_class_never_provisions(
    harness: BinderHarness, storage_class: str | None
) -> None:
    await harness.claim(make_pvc("claim11-15", storage_class=storage_class))
    await harness.sync_claim("claim11-15")
    claim = await harness.get_claim("claim11-15")
    assert ANN_STORAGE_PROVISIONER not in ann(claim)
    assert await harness.messages(claim, "FailedBinding") == [
        "no persistent volumes available for this claim and no storage class is set"
    ]


async def test_provision_11_23_selected_node_skips_matching_volume_and_provisions(
    harness: BinderHarness,
) -> None:
    await harness.storage_class(
        make_class(
            "wait", provisioner="kubeling.io/local-path", binding_mode="WaitForFirstConsumer"
        )
    )
    await harness.volume(make_pv("static", storage_class="wait"))
    await harness.claim(
        make_pvc("claim11-23", storage_class="wait", annotations={ANN_SELECTED_NODE: "node1"})
    )
    await harness.sync_claim("claim11-23")
    claim = await harness.get_claim("claim11-23")
    assert not claim["spec"].get("volumeName")
    assert ann(claim)[ANN_STORAGE_PROVISIONER] == "kubeling.io/local-path"
    assert "claimRef" not in (await harness.get_volume("static"))["spec"]


async def test_provision_11_24_selected_node_external_class_annotates(
    harness: BinderHarness,
) -> None:
    await harness.storage_class(
        make_class("wait", provisioner=EXTERNAL, binding_mode="WaitForFirstConsumer")
    )
    await harness.claim(
        make_pvc("claim11-24", storage_class="wait", annotations={ANN_SELECTED_NODE: "node1"})
    )
    await harness.sync_claim("claim11-24")
    claim = await harness.get_claim("claim11-24")
    assert ann(claim)[ANN_STORAGE_PROVISIONER] == EXTERNAL
    assert await harness.messages(claim, "ExternalProvisioning") == [EXTERNAL_MESSAGE]


async def test_provision_wffc_without_selected_node_does_not_provision(
    harness: BinderHarness,
) -> None:
    await harness.storage_class(
        make_class("wait", provisioner=EXTERNAL, binding_mode="WaitForFirstConsumer")
    )
    await harness.claim(make_pvc("claim-wait", storage_class="wait"))
    await harness.sync_claim("claim-wait")
    claim = await harness.get_claim("claim-wait")
    assert ANN_STORAGE_PROVISIONER not in ann(claim)
    assert await harness.messages(claim, "WaitForFirstConsumer") == [
        "waiting for first consumer to be created before binding"
    ]


@pytest.mark.parametrize("scenario", ["12-2", "12-4"])
async def test_provision_12_2_and_12_4_external_volume_completes_the_bind(
    harness: BinderHarness, scenario: str
) -> None:
    await harness.storage_class(make_class("external", provisioner=EXTERNAL))
    await harness.claim(make_pvc("claim12-2", storage_class="external"))
    await harness.sync_claim("claim12-2")
    claim = await harness.get_claim("claim12-2")
    # what an external provisioner writes: a PV pre-bound to the claim, with provisioned-by
    volume = make_pv(
        f"pvc-{claim['metadata']['uid']}",
        storage_class="external",
        policy="Delete",
        claim_ref=ref_to(claim),
        annotations={ANN_PROVISIONED_BY: EXTERNAL},
    )
    if scenario == "12-4":
        volume["metadata"]["annotations"][ANN_BOUND_BY_CONTROLLER] = "yes"
    await harness.volume(volume, phase="")
    await harness.converge()
    claim = await harness.get_claim("claim12-2")
    pv = await harness.get_volume(f"pvc-{claim['metadata']['uid']}")
    assert phase(claim) == "Bound" and phase(pv) == "Bound"
    assert claim["spec"]["volumeName"] == pv["metadata"]["name"]
    assert ann(claim)[ANN_BIND_COMPLETED] == "yes"
    assert ann(claim)[ANN_BOUND_BY_CONTROLLER] == "yes"
    assert ann(claim)[ANN_STORAGE_PROVISIONER] == EXTERNAL


async def test_provision_12_3_external_provisioner_never_acts(harness: BinderHarness) -> None:
    await harness.storage_class(make_class("external", provisioner=EXTERNAL))
    await harness.claim(make_pvc("claim12-3", storage_class="external"))
    await harness.converge(rounds=3)
    claim = await harness.get_claim("claim12-3")
    assert phase(claim) == "Pending"
    assert ann(claim)[ANN_STORAGE_PROVISIONER] == EXTERNAL
    [event] = await harness.events(claim, "ExternalProvisioning")
    assert event["count"] >= 2  # repeated on every sync, aggregated by the recorder


# -- the retroactive default class --------------------------------------------------------------


async def test_retroactive_default_class_assigned_to_unset_claim(harness: BinderHarness) -> None:
    await harness.claim(make_pvc("early", storage_class=None))
    await harness.sync_claim("early")
    assert (await harness.get_claim("early"))["spec"].get("storageClassName") is None
    await harness.storage_class(make_class("standard", default=True))
    await harness.sync_claim("early")
    assert (await harness.get_claim("early"))["spec"]["storageClassName"] == "standard"


async def test_retroactive_default_never_touches_explicit_empty_class(
    harness: BinderHarness,
) -> None:
    await harness.claim(make_pvc("explicit", storage_class=""))
    await harness.storage_class(make_class("standard", default=True))
    await harness.sync_claim("explicit")
    assert (await harness.get_claim("explicit"))["spec"]["storageClassName"] == ""


async def test_retroactive_default_not_applied_when_a_classless_volume_matches(
    harness: BinderHarness,
) -> None:
    await harness.claim(make_pvc("early", storage_class=None))
    await harness.volume(make_pv("classless", storage_class=""))
    await harness.storage_class(
        make_class("standard", default=True, binding_mode="WaitForFirstConsumer")
    )
    # the claim was created before the default existed: admission left it nil
    claim = await harness.get_claim("early")
    assert claim["spec"].get("storageClassName") is None
    await harness.sync_claim("early")
    claim = await harness.get_claim("early")
    assert claim["spec"]["volumeName"] == "classless"


async def test_retroactive_default_picks_newest_default(harness: BinderHarness) -> None:
    await harness.claim(make_pvc("early", storage_class=None))
    harness.binder.classes.store(
        {
            **make_class("older", default=True),
            "metadata": {
                "name": "older",
                "creationTimestamp": "2026-01-01T00:00:00Z",
                "annotations": {"storageclass.kubernetes.io/is-default-class": "true"},
            },
        }
    )
    harness.binder.classes.store(
        {
            **make_class("newer", default=True),
            "metadata": {
                "name": "newer",
                "creationTimestamp": "2026-06-01T00:00:00Z",
                "annotations": {"storageclass.kubernetes.io/is-default-class": "true"},
            },
        }
    )
    default = harness.binder.default_class()
    assert default is not None and default["metadata"]["name"] == "newer"
