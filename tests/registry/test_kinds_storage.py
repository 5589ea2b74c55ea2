"""PersistentVolume, PersistentVolumeClaim and StorageClass rules."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from kubeling.machinery import resources as r
from tests.registry.test_kinds_support import create, tutorial, update


def pvc(**spec: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "accessModes": ["ReadWriteOnce"],
        "resources": {"requests": {"storage": "1Gi"}},
    }
    base.update(spec)
    return {"metadata": {"name": "data", "namespace": "default"}, "spec": base}


def pv(**spec: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "capacity": {"storage": "5Gi"},
        "accessModes": ["ReadWriteMany"],
        "nfs": {"server": "127.0.0.1", "path": "/srv"},
    }
    base.update(spec)
    return {"metadata": {"name": "pv1"}, "spec": base}


# -- PVC -------------------------------------------------------------------------------------


def test_pvc_defaults_and_pending_status() -> None:
    out, errs = create(r.PERSISTENTVOLUMECLAIMS, pvc())
    assert errs == []
    assert out["spec"]["volumeMode"] == "Filesystem"
    assert out["status"] == {"phase": "Pending"}


def test_pvc_without_size_or_modes() -> None:
    _, errs = create(r.PERSISTENTVOLUMECLAIMS, pvc(accessModes=[], resources={}))
    assert errs == [
        "spec.accessModes: Required value: at least 1 access mode is required",
        "spec.resources[storage]: Required value",
    ]


def test_pvc_tutorial_typo_lacks_size() -> None:
    (claim,) = tutorial("11-pvc-as-written.yaml")
    # what is left once the unknown field "request" is dropped (--validate=warn)
    claim["spec"]["resources"].pop("request")
    _, errs = create(r.PERSISTENTVOLUMECLAIMS, claim)
    assert errs == ["spec.resources[storage]: Required value"]


def test_pvc_tutorial_claims_are_valid() -> None:
    checked = []
    for name in ("12-pvc.yaml", "14-dynamic-pvc.yaml", "13-local-pv-pod.yaml"):
        for claim in tutorial(name):
            if claim["kind"] == "PersistentVolumeClaim":
                assert create(r.PERSISTENTVOLUMECLAIMS, claim)[1] == [], name
                checked.append(name)
    # Each manifest declares a claim; a renamed kind or an emptied file must not pass silently.
    assert sorted(set(checked)) == ["12-pvc.yaml", "13-local-pv-pod.yaml", "14-dynamic-pvc.yaml"]


def test_pvc_zero_size_and_bad_modes() -> None:
    _, errs = create(
        r.PERSISTENTVOLUMECLAIMS,
        pvc(accessModes=["ReadWriteSometimes"], resources={"requests": {"storage": "0"}}),
    )
    assert errs == [
        'spec.accessModes: Unsupported value: "ReadWriteSometimes": supported values: '
        '"ReadOnlyMany", "ReadWriteMany", "ReadWriteOnce", "ReadWriteOncePod"',
        'spec.resources[storage]: Invalid value: "0": must be greater than zero',
    ]
    _, errs = create(
        r.PERSISTENTVOLUMECLAIMS, pvc(accessModes=["ReadWriteOncePod", "ReadOnlyMany"])
    )
    assert errs == [
        "spec.accessModes: Forbidden: may not use ReadWriteOncePod with other access modes"
    ]


def test_pvc_negative_size_is_not_greater_than_zero() -> None:
    _, errs = create(
        r.PERSISTENTVOLUMECLAIMS,
        pvc(accessModes=["ReadWriteOnce"], resources={"requests": {"storage": "-1Gi"}}),
    )
    assert errs == ['spec.resources[storage]: Invalid value: "-1Gi": must be greater than zero']


def test_pvc_bound_claim_may_grow_but_not_shrink() -> None:
    old, _ = create(r.PERSISTENTVOLUMECLAIMS, pvc(volumeName="pv1"))
    old["status"] = {"phase": "Bound", "capacity": {"storage": "1Gi"}}
    grown = copy.deepcopy(old)
    grown["spec"]["resources"]["requests"]["storage"] = "2Gi"
    assert update(r.PERSISTENTVOLUMECLAIMS, grown, old)[1] == []
    shrunk = copy.deepcopy(old)
    shrunk["spec"]["resources"]["requests"]["storage"] = "500Mi"
    assert update(r.PERSISTENTVOLUMECLAIMS, shrunk, old)[1] == [
        "spec.resources.requests.storage: Forbidden: field can not be less than status.capacity"
    ]


@pytest.mark.parametrize(
    ("request_", "errors"),
    [
        pytest.param("3Gi", [], id="above-capacity-recovers"),
        pytest.param(
            "1Gi",
            [
                "spec.resources.requests.storage: Forbidden: field can not be less than status.capacity"
            ],
            id="down-to-capacity",
        ),
    ],
)
def test_pvc_request_may_come_back_down_to_recover_a_failed_expansion(
    request_: str, errors: list[str]
) -> None:
    # RecoverVolumeExpansionFailure (on by default in 1.32): asked 5Gi, the volume has 1Gi.
    old, _ = create(r.PERSISTENTVOLUMECLAIMS, pvc(volumeName="pv1"))
    old["spec"]["resources"]["requests"]["storage"] = "5Gi"
    old["status"] = {"phase": "Bound", "capacity": {"storage": "1Gi"}}
    lowered = copy.deepcopy(old)
    lowered["spec"]["resources"]["requests"]["storage"] = request_
    assert update(r.PERSISTENTVOLUMECLAIMS, lowered, old)[1] == errors


def test_pvc_spec_immutable_except_binding_and_bound_requests() -> None:
    old, _ = create(r.PERSISTENTVOLUMECLAIMS, pvc())
    bind = copy.deepcopy(old)
    bind["spec"]["volumeName"] = "pv1"
    assert update(r.PERSISTENTVOLUMECLAIMS, bind, old)[1] == []
    resized = copy.deepcopy(old)
    resized["spec"]["resources"]["requests"]["storage"] = "2Gi"
    assert update(r.PERSISTENTVOLUMECLAIMS, resized, old)[1] == [
        "spec: Forbidden: spec is immutable after creation except resources.requests and "
        "volumeAttributesClassName for bound claims"
    ]
    modes = copy.deepcopy(old)
    modes["spec"]["accessModes"] = ["ReadWriteMany"]
    assert update(r.PERSISTENTVOLUMECLAIMS, modes, old)[1][0].startswith("spec: Forbidden")


def test_pvc_class_may_be_set_once_when_nil() -> None:
    old, _ = create(r.PERSISTENTVOLUMECLAIMS, pvc())
    new = copy.deepcopy(old)
    new["spec"]["storageClassName"] = "standard"
    assert update(r.PERSISTENTVOLUMECLAIMS, new, old)[1] == []


# -- PV --------------------------------------------------------------------------------------


def test_tutorial_nfs_pvs_pass_with_defaults() -> None:
    volumes = tutorial("10-pvs.yaml")
    assert volumes, "the tutorial's PV manifest declares no volume"
    for volume in volumes:
        out, errs = create(r.PERSISTENTVOLUMES, volume)
        assert errs == []
        assert out["spec"]["persistentVolumeReclaimPolicy"] == "Retain"
        assert out["spec"]["volumeMode"] == "Filesystem"
        assert out["status"] == {"phase": "Pending"}


def test_pv_with_nothing() -> None:
    _, errs = create(r.PERSISTENTVOLUMES, {"metadata": {"name": "code-pv"}, "spec": {}})
    assert errs == [
        "spec.accessModes: Required value",
        "spec.capacity: Required value",
        'spec.capacity: Unsupported value: core.ResourceList(nil): supported values: "storage"',
        "spec: Required value: must specify a volume type",
    ]


def test_pv_two_sources_and_bad_policy() -> None:
    spec = {"hostPath": {"path": "/x"}, "persistentVolumeReclaimPolicy": "Keep"}
    _, errs = create(r.PERSISTENTVOLUMES, pv(**spec))
    assert errs == [
        'spec.persistentVolumeReclaimPolicy: Unsupported value: "Keep": supported values: '
        '"Delete", "Recycle", "Retain"',
        "spec.nfs: Forbidden: may not specify more than 1 volume type",
    ]


def test_pv_local_requires_node_affinity() -> None:
    spec = pv()["spec"]
    del spec["nfs"]
    spec["local"] = {"path": "/mnt/disk"}
    _, errs = create(r.PERSISTENTVOLUMES, {"metadata": {"name": "l"}, "spec": spec})
    assert errs == ["spec.nodeAffinity: Required value: Local volume requires node affinity"]


def test_pv_source_immutable_on_update() -> None:
    old, _ = create(r.PERSISTENTVOLUMES, pv())
    new = copy.deepcopy(old)
    new["spec"]["nfs"]["path"] = "/other"
    assert update(r.PERSISTENTVOLUMES, new, old)[1] == [
        "spec.persistentvolumesource: Forbidden: spec.persistentvolumesource is immutable after "
        "creation"
    ]
    new = copy.deepcopy(old)
    new["spec"]["claimRef"] = {"namespace": "default", "name": "data"}
    assert update(r.PERSISTENTVOLUMES, new, old)[1] == []


# -- StorageClass ----------------------------------------------------------------------------


def test_storageclass_defaults_and_required_provisioner() -> None:
    out, errs = create(r.STORAGECLASSES, {"metadata": {"name": "sc"}, "provisioner": "x.io/p"})
    assert errs == []
    assert out["reclaimPolicy"] == "Delete"
    assert out["volumeBindingMode"] == "Immediate"
    _, errs = create(r.STORAGECLASSES, {"metadata": {"name": "sc"}})
    assert errs == ["provisioner: Required value"]


def test_storageclass_immutable_fields() -> None:
    old, _ = create(
        r.STORAGECLASSES,
        {"metadata": {"name": "sc"}, "provisioner": "x.io/p", "parameters": {"a": "1"}},
    )
    new = {**old, "parameters": {"a": "2"}, "reclaimPolicy": "Retain",
           "volumeBindingMode": "WaitForFirstConsumer", "provisioner": "y.io/p"}  # fmt: skip
    assert update(r.STORAGECLASSES, new, old)[1] == [
        "parameters: Forbidden: updates to parameters are forbidden.",
        "provisioner: Forbidden: updates to provisioner are forbidden.",
        "reclaimPolicy: Forbidden: updates to reclaimPolicy are forbidden.",
        'volumeBindingMode: Invalid value: "WaitForFirstConsumer": field is immutable',
    ]
    expandable = {**old, "allowVolumeExpansion": True}
    assert update(r.STORAGECLASSES, expandable, old)[1] == []


def test_pvc_same_size_in_other_units_is_not_a_change() -> None:
    old, _ = create(r.PERSISTENTVOLUMECLAIMS, pvc())
    new = copy.deepcopy(old)
    new["spec"]["resources"]["requests"]["storage"] = "1024Mi"
    assert update(r.PERSISTENTVOLUMECLAIMS, new, old)[1] == []
