"""Volume expansion: admission (PersistentVolumeClaimResize), validation, and the resizer."""

from __future__ import annotations

import asyncio
import contextlib

import pytest

from kubeling.client.interface import WatchEvent
from kubeling.controllers.expansion import (
    EXTERNAL_EXPANDING_MESSAGE,
    FS_RESIZE_PENDING_MESSAGE,
    VolumeExpansionController,
)
from kubeling.controllers.provisioner import ANN_PROVISIONED_BY, PROVISIONER
from kubeling.machinery.errors import Forbidden, Invalid
from kubeling.machinery.resources import (
    PERSISTENTVOLUMECLAIMS,
    PERSISTENTVOLUMES,
    STORAGECLASSES,
)
from kubeling.machinery.types import Obj
from kubeling.registry.admission import Attributes
from kubeling.registry.plugins.resize import CLASS_FORBIDS, NOT_BOUND, PersistentVolumeClaimResize
from tests.controllers.conftest import Api, wait_until

FORBIDDEN_TEXT = (
    'persistentvolumeclaims "data" is forbidden: only dynamically provisioned pvc can be '
    "resized and the storageclass that provisions the pvc must support resize"
)


async def make_class(api: Api, name: str = "lp", **fields: object) -> Obj:
    body: Obj = {
        "apiVersion": "storage.k8s.io/v1",
        "kind": "StorageClass",
        "metadata": {"name": name},
        "provisioner": PROVISIONER,
        **fields,
    }
    return await api.client.create(STORAGECLASSES, body)


async def bound_claim(
    api: Api, *, sc: str = "lp", size: str = "1Gi", provisioned_by: str = PROVISIONER
) -> tuple[Obj, Obj]:
    """A claim and a volume bound to each other, as the binder leaves them."""
    c = await api.client.create(
        PERSISTENTVOLUMECLAIMS,
        {
            "apiVersion": "v1",
            "kind": "PersistentVolumeClaim",
            "metadata": {"name": "data"},
            "spec": {
                "storageClassName": sc,
                "accessModes": ["ReadWriteOnce"],
                "resources": {"requests": {"storage": size}},
            },
        },
        namespace="default",
    )
    pv_name = f"pvc-{c['metadata']['uid']}"
    annotations = {ANN_PROVISIONED_BY: provisioned_by} if provisioned_by else {}
    pv = await api.client.create(
        PERSISTENTVOLUMES,
        {
            "apiVersion": "v1",
            "kind": "PersistentVolume",
            "metadata": {"name": pv_name, "annotations": annotations},
            "spec": {
                "capacity": {"storage": size},
                "accessModes": ["ReadWriteOnce"],
                "storageClassName": sc,
                "persistentVolumeReclaimPolicy": "Delete",
                "hostPath": {"path": "/tmp/kubeling-test-never-mounted"},
                "claimRef": {
                    "kind": "PersistentVolumeClaim",
                    "namespace": "default",
                    "name": "data",
                    "uid": c["metadata"]["uid"],
                },
            },
        },
    )
    pv["status"] = {"phase": "Bound"}
    pv = await api.client.update(PERSISTENTVOLUMES, pv, subresource="status")
    c["spec"]["volumeName"] = pv_name
    c = await api.client.update(PERSISTENTVOLUMECLAIMS, c)
    c["status"] = {
        "phase": "Bound",
        "accessModes": ["ReadWriteOnce"],
        "capacity": {"storage": size},
    }
    c = await api.client.update(PERSISTENTVOLUMECLAIMS, c, subresource="status")
    return c, pv


async def grow(api: Api, size: str, name: str = "data") -> Obj:
    return await api.client.patch(
        PERSISTENTVOLUMECLAIMS,
        name=name,
        namespace="default",
        patch={"spec": {"resources": {"requests": {"storage": size}}}},
        patch_type="strategic",
    )


# -- B13: admission and validation -----------------------------------------------------------


async def test_b13_resize_refused_by_class_then_allowed_and_shrink_forbidden(api: Api) -> None:
    await make_class(api)
    await bound_claim(api)

    # step 1: the class does not allow expansion
    with pytest.raises(Forbidden) as refused:
        await grow(api, "2Gi")
    assert refused.value.message == FORBIDDEN_TEXT
    assert refused.value.code == 403

    # allowVolumeExpansion is mutable: flip it and retry (step 2)
    await api.client.patch(
        STORAGECLASSES, name="lp", patch={"allowVolumeExpansion": True}, patch_type="merge"
    )
    grown = await grow(api, "2Gi")
    assert grown["spec"]["resources"]["requests"]["storage"] == "2Gi"
    # no resizer runs in this test: the capacity stays until one acts
    assert grown["status"]["capacity"] == {"storage": "1Gi"}

    # step 3: shrinking is refused by validation (below the previous value with
    # RecoverVolumeExpansionFailure off; at or below status.capacity with it on)
    with pytest.raises(Invalid) as shrunk:
        await grow(api, "1Gi")
    assert "spec.resources.requests.storage: Forbidden: field can not be less than" in (
        shrunk.value.message
    )


async def test_b13_pending_claim_cannot_be_resized(api: Api) -> None:
    await make_class(api, allowVolumeExpansion=True)
    await api.client.create(
        PERSISTENTVOLUMECLAIMS,
        {
            "apiVersion": "v1",
            "kind": "PersistentVolumeClaim",
            "metadata": {"name": "data"},
            "spec": {
                "storageClassName": "lp",
                "accessModes": ["ReadWriteOnce"],
                "resources": {"requests": {"storage": "1Gi"}},
            },
        },
        namespace="default",
    )
    # step 4: validation refuses it before admission would ("Only bound ...")
    with pytest.raises(Invalid) as refused:
        await grow(api, "2Gi")
    assert "spec is immutable after creation except resources.requests" in refused.value.message


def _attrs(new: Obj, old: Obj, *, subresource: str = "") -> Attributes:
    return Attributes(
        operation="UPDATE",
        info=PERSISTENTVOLUMECLAIMS,
        namespace="default",
        name="data",
        obj=new,
        old=old,
        subresource=subresource,
    )


def _claim(size: str, *, phase: str = "Bound", sc: str | None = "gold", beta: str = "") -> Obj:
    meta: Obj = {"name": "data", "namespace": "default"}
    if beta:
        meta["annotations"] = {"volume.beta.kubernetes.io/storage-class": beta}
    spec: Obj = {"resources": {"requests": {"storage": size}}}
    if sc is not None:
        spec["storageClassName"] = sc
    return {"metadata": meta, "spec": spec, "status": {"phase": phase}}


CLASSES = {
    "gold": {"metadata": {"name": "gold"}, "allowVolumeExpansion": True},
    "silver": {"metadata": {"name": "silver"}, "allowVolumeExpansion": False},
    "bronze": {"metadata": {"name": "bronze"}},
}


async def _lookup(info: object, namespace: str, name: str) -> Obj | None:
    return CLASSES.get(name)


@pytest.mark.parametrize(
    ("new", "old", "subresource", "error"),
    [
        pytest.param(_claim("2Gi"), _claim("1Gi"), "", None, id="allowed"),
        pytest.param(_claim("1Gi"), _claim("1Gi"), "", None, id="same-size"),
        pytest.param(_claim("2Gi"), _claim("1Gi", phase="Pending"), "", NOT_BOUND, id="pending"),
        pytest.param(
            _claim("2Gi", sc="silver"), _claim("1Gi", sc="silver"), "", CLASS_FORBIDS, id="false"
        ),
        pytest.param(
            _claim("2Gi", sc="bronze"), _claim("1Gi", sc="bronze"), "", CLASS_FORBIDS, id="unset"
        ),
        pytest.param(
            _claim("2Gi", sc="nosuch"), _claim("1Gi", sc="nosuch"), "", CLASS_FORBIDS, id="missing"
        ),
        pytest.param(_claim("2Gi", sc=None), _claim("1Gi", sc=None), "", CLASS_FORBIDS, id="nil"),
        pytest.param(_claim("2Gi"), _claim("1Gi", sc="silver"), "", CLASS_FORBIDS, id="changed"),
        pytest.param(
            _claim("2Gi", sc="silver", beta="gold"),
            _claim("1Gi", sc="silver", beta="gold"),
            "",
            None,
            id="beta-annotation-wins",
        ),
        pytest.param(
            _claim("2Gi", sc="silver"), _claim("1Gi", sc="silver"), "status", None, id="status"
        ),
    ],
)
async def test_resize_admission_rules(
    new: Obj, old: Obj, subresource: str, error: str | None
) -> None:
    plugin = PersistentVolumeClaimResize(_lookup)  # type: ignore[arg-type]
    attrs = _attrs(new, old, subresource=subresource)
    await plugin.admit(attrs)
    if error is None:
        await plugin.validate(attrs)
        return
    with pytest.raises(Forbidden) as refused:
        await plugin.validate(attrs)
    assert refused.value.message == f'persistentvolumeclaims "data" is forbidden: {error}'


# -- the resizer -----------------------------------------------------------------------------


@pytest.fixture
async def expander(api: Api) -> VolumeExpansionController:
    controller = VolumeExpansionController(
        client=api.client,
        informers=api.informers,
        recorder=api.recorder("volume_expand"),
        resizer_recorder=api.recorder(f"external-resizer {PROVISIONER}"),
    )
    await api.start(controller)
    return controller


def _summary(claim: Obj) -> tuple[object, ...]:
    status = claim.get("status") or {}
    conditions = tuple(
        (c["type"], c["status"], c.get("message", "")) for c in status.get("conditions") or []
    )
    return (
        (status.get("capacity") or {}).get("storage"),
        (status.get("allocatedResources") or {}).get("storage"),
        (status.get("allocatedResourceStatuses") or {}).get("storage"),
        conditions,
    )


async def test_expansion_walks_upstream_states_for_local_path(
    api: Api, expander: VolumeExpansionController
) -> None:
    await make_class(api, allowVolumeExpansion=True)
    c, pv = await bound_claim(api)
    seen: list[tuple[object, ...]] = []
    done = asyncio.Event()

    async def record() -> None:
        stream = api.client.watch(
            PERSISTENTVOLUMECLAIMS,
            namespace="default",
            resource_version=c["metadata"]["resourceVersion"],
        )
        event: WatchEvent
        async for event in stream:
            if event.type != "MODIFIED":
                continue
            seen.append(_summary(event.object))
            if (event.object["status"].get("capacity") or {}).get("storage") == "3Gi":
                done.set()
                return

    watcher = asyncio.create_task(record())
    try:
        await grow(api, "3Gi")
        async with asyncio.timeout(10):
            await done.wait()
    finally:
        watcher.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await watcher

    states = [s for s in seen if s[1] is not None]  # the spec patch itself changes no status
    assert states == [
        ("1Gi", "3Gi", "ControllerResizeInProgress", (("Resizing", "True", ""),)),
        (
            "1Gi",
            "3Gi",
            "NodeResizePending",
            (("FileSystemResizePending", "True", FS_RESIZE_PENDING_MESSAGE),),
        ),
        ("3Gi", "3Gi", None, ()),
    ]
    volume = await api.client.get(PERSISTENTVOLUMES, name=pv["metadata"]["name"])
    assert volume["spec"]["capacity"] == {"storage": "3Gi"}
    reasons = [e["reason"] for e in await api.events(c)]
    assert reasons == ["Resizing", "FileSystemResizeRequired", "FileSystemResizeSuccessful"]
    [resizing] = await api.events(c, reason="Resizing")
    assert resizing["message"] == f"External resizer is resizing volume {pv['metadata']['name']}"
    assert resizing["source"]["component"] == f"external-resizer {PROVISIONER}"


async def test_expansion_leaves_other_volumes_to_an_external_resizer(
    api: Api, expander: VolumeExpansionController
) -> None:
    await make_class(api, allowVolumeExpansion=True)
    c, pv = await bound_claim(api, provisioned_by="example.com/nfs")
    await grow(api, "2Gi")

    async def told() -> bool:
        return bool(await api.events(c, reason="ExternalExpanding"))

    await wait_until(told, what="ExternalExpanding")
    [event] = await api.events(c, reason="ExternalExpanding")
    assert event["message"] == EXTERNAL_EXPANDING_MESSAGE
    assert event["type"] == "Normal"
    assert event["source"]["component"] == "volume_expand"
    claim = await api.client.get(PERSISTENTVOLUMECLAIMS, name="data", namespace="default")
    assert claim["status"]["capacity"] == {"storage": "1Gi"}
    assert "conditions" not in claim["status"]
    volume = await api.client.get(PERSISTENTVOLUMES, name=pv["metadata"]["name"])
    assert volume["spec"]["capacity"] == {"storage": "1Gi"}
