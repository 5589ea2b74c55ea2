"""The provisioner with the binder and the protection controllers: dynamic provisioning end
to end in one process, and field reports B10 (two defaults) and B12 (WaitForFirstConsumer
with ``nodeName``)."""

from __future__ import annotations

import dataclasses
import pathlib
from collections.abc import AsyncIterator

import pytest

from kubeling.client.local import LocalClient
from kubeling.controllers.manager import ControllerManager
from kubeling.controllers.provisioner import (
    ANN_SELECTED_NODE,
    DEFAULT_CLASS_NAME,
    PROVISIONER,
    ensure_default_storage_class,
)
from kubeling.machinery.errors import NotFound
from kubeling.machinery.resources import (
    EVENTS,
    PERSISTENTVOLUMECLAIMS,
    PERSISTENTVOLUMES,
    PODS,
    STORAGECLASSES,
)
from kubeling.machinery.types import Obj
from kubeling.registry.registry import Registry
from kubeling.storage.memory import MemoryBackend
from tests.controllers.conftest import Api, wait_until
from tests.registry.conftest import FakeClock

NODE = "node-a"
CONTROLLERS = (
    "persistentvolume-binder",
    "pvc-protection",
    "pv-protection",
    "local-path-provisioner",
)


@pytest.fixture
async def cluster(api: Api) -> AsyncIterator[Api]:
    """``api`` with the volume controllers running as ``kubeling up`` runs them."""
    ctx = dataclasses.replace(api.ctx, node_name=NODE)
    manager = ControllerManager(ctx, enabled=CONTROLLERS)
    await manager.start()
    try:
        yield api
    finally:
        await manager.stop()


def claim_body(name: str, *, sc: str | None = None, size: str = "1Gi") -> Obj:
    spec: Obj = {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": size}}}
    if sc is not None:
        spec["storageClassName"] = sc
    return {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": {"name": name},
        "spec": spec,
    }


async def get_claim(api: Api, name: str) -> Obj | None:
    try:
        return await api.client.get(PERSISTENTVOLUMECLAIMS, name=name, namespace="default")
    except NotFound:
        return None


async def wait_bound(api: Api, name: str) -> Obj:
    async def bound() -> bool:
        c = await get_claim(api, name)
        return c is not None and c["status"].get("phase") == "Bound"

    await wait_until(bound, what=f"claim {name} Bound")
    c = await get_claim(api, name)
    assert c is not None
    return c


def is_dir(path: str) -> bool:
    return pathlib.Path(path).is_dir()


def exists(path: str) -> bool:
    return pathlib.Path(path).exists()


async def reasons(api: Api, name: str) -> set[str]:
    items = (await api.client.list(EVENTS, namespace="default"))["items"]
    return {e["reason"] for e in items if e["involvedObject"].get("name") == name}


async def test_dynamic_claim_is_provisioned_bound_and_cleaned_up(cluster: Api) -> None:
    api = cluster
    await ensure_default_storage_class(api.client, enabled=True, data_dir=api.ctx.data_dir)
    created = await api.client.create(
        PERSISTENTVOLUMECLAIMS, claim_body("dynamic-claim", size="2Gi"), namespace="default"
    )
    # DefaultStorageClass admission named the class at create
    assert created["spec"]["storageClassName"] == DEFAULT_CLASS_NAME
    c = await wait_bound(api, "dynamic-claim")
    pv_name = f"pvc-{c['metadata']['uid']}"
    assert c["spec"]["volumeName"] == pv_name
    assert c["status"]["capacity"] == {"storage": "2Gi"}
    ann = c["metadata"]["annotations"]
    assert ann["volume.kubernetes.io/storage-provisioner"] == PROVISIONER
    assert ann["volume.beta.kubernetes.io/storage-provisioner"] == PROVISIONER
    assert ann["pv.kubernetes.io/bind-completed"] == "yes"
    pv = await api.client.get(PERSISTENTVOLUMES, name=pv_name)
    assert pv["status"]["phase"] == "Bound"
    assert pv["spec"]["persistentVolumeReclaimPolicy"] == "Delete"
    directory = pv["spec"]["hostPath"]["path"]
    assert is_dir(directory)
    assert pathlib.PurePath(directory).parent == (api.ctx.data_dir / "storage").resolve()

    async def provisioned_events() -> bool:
        return {"ProvisioningSucceeded", "Provisioning"} <= await reasons(api, "dynamic-claim")

    await wait_until(provisioned_events, what="provisioning events")
    # kubeling's own provisioner is not "external": no ExternalProvisioning event
    assert "ExternalProvisioning" not in await reasons(api, "dynamic-claim")

    await api.client.delete(PERSISTENTVOLUMECLAIMS, name="dynamic-claim", namespace="default")

    async def volume_gone() -> bool:
        try:
            await api.client.get(PERSISTENTVOLUMES, name=pv_name)
        except NotFound:
            return True
        return False

    await wait_until(volume_gone, what="volume deleted")
    assert not exists(directory)
    assert await get_claim(api, "dynamic-claim") is None


async def test_b12_wait_for_first_consumer_with_node_name_never_binds(cluster: Api) -> None:
    """B12: a pod that names its node skips the scheduler, so nothing writes
    ``volume.kubernetes.io/selected-node`` and the claim waits forever (upstream behaves
    the same; its docs say not to use nodeName with WaitForFirstConsumer)."""
    api = cluster
    await api.client.create(
        STORAGECLASSES,
        {
            "apiVersion": "storage.k8s.io/v1",
            "kind": "StorageClass",
            "metadata": {"name": "lp"},
            "provisioner": PROVISIONER,
            "volumeBindingMode": "WaitForFirstConsumer",
        },
    )
    await api.client.create(
        STORAGECLASSES,
        {
            "apiVersion": "storage.k8s.io/v1",
            "kind": "StorageClass",
            "metadata": {"name": "now"},
            "provisioner": PROVISIONER,
        },
    )
    await api.client.create(
        PERSISTENTVOLUMECLAIMS, claim_body("data", sc="lp", size="10Mi"), namespace="default"
    )
    await api.client.create(
        PODS,
        {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": "app"},
            "spec": {
                "nodeName": NODE,
                "containers": [
                    {
                        "name": "c",
                        "image": "busybox:1.36",
                        "command": ["sleep", "3600"],
                        "volumeMounts": [{"name": "data", "mountPath": "/data"}],
                    }
                ],
                "volumes": [{"name": "data", "persistentVolumeClaim": {"claimName": "data"}}],
            },
        },
        namespace="default",
    )

    async def waiting() -> bool:
        return "WaitForFirstConsumer" in await reasons(api, "data")

    await wait_until(waiting, what="WaitForFirstConsumer event")
    # An Immediate claim made afterwards is provisioned and bound: the controllers ran, and
    # the first claim was seen before it.
    await api.client.create(
        PERSISTENTVOLUMECLAIMS, claim_body("later", sc="now"), namespace="default"
    )
    await wait_bound(api, "later")
    c = await get_claim(api, "data")
    assert c is not None
    assert c["status"]["phase"] == "Pending"
    assert ANN_SELECTED_NODE not in (c["metadata"].get("annotations") or {})
    volumes = (await api.client.list(PERSISTENTVOLUMES))["items"]
    assert [v["spec"]["claimRef"]["name"] for v in volumes] == ["later"]

    # The variant with nodeSelector goes through the scheduler, which writes selected-node;
    # doing what it writes shows the rest of the chain: provisioned on that node, bound.
    c["metadata"].setdefault("annotations", {})[ANN_SELECTED_NODE] = NODE
    await api.client.update(PERSISTENTVOLUMECLAIMS, c)
    bound = await wait_bound(api, "data")
    pv = await api.client.get(PERSISTENTVOLUMES, name=bound["spec"]["volumeName"])
    term = pv["spec"]["nodeAffinity"]["required"]["nodeSelectorTerms"][0]
    assert term["matchExpressions"][0]["values"] == [NODE]


@pytest.fixture
async def clocked(tmp_path: pathlib.Path) -> AsyncIterator[tuple[LocalClient, FakeClock]]:
    clock = FakeClock()
    backend = MemoryBackend()
    await backend.start()
    registry = await Registry.open(backend=backend, clock=clock)
    await registry.bootstrap()
    client = LocalClient(registry)
    try:
        yield client, clock
    finally:
        await client.close()
        await registry.close()
        await backend.close()


def default_class_body(name: str) -> Obj:
    return {
        "apiVersion": "storage.k8s.io/v1",
        "kind": "StorageClass",
        "metadata": {
            "name": name,
            "annotations": {"storageclass.kubernetes.io/is-default-class": "true"},
        },
        "provisioner": PROVISIONER,
    }


async def test_b10_two_default_classes_newest_wins(
    clocked: tuple[LocalClient, FakeClock],
) -> None:
    client, clock = clocked
    # "fast" first and "slow" two seconds later: the newer one wins although "fast" sorts
    # first by name.
    await client.create(STORAGECLASSES, default_class_body("fast"))
    clock.advance(2)
    await client.create(STORAGECLASSES, default_class_body("slow"))
    c = await client.create(PERSISTENTVOLUMECLAIMS, claim_body("data"), namespace="default")
    assert c["spec"]["storageClassName"] == "slow"
    # a claim that names its class (even "") is not touched
    explicit = await client.create(
        PERSISTENTVOLUMECLAIMS, claim_body("mine", sc="fast"), namespace="default"
    )
    assert explicit["spec"]["storageClassName"] == "fast"
    none = await client.create(
        PERSISTENTVOLUMECLAIMS, claim_body("none", sc=""), namespace="default"
    )
    assert none["spec"]["storageClassName"] == ""


async def test_b10_same_second_defaults_tie_by_name(
    clocked: tuple[LocalClient, FakeClock],
) -> None:
    client, _clock = clocked
    await client.create(STORAGECLASSES, default_class_body("zeta"))
    await client.create(STORAGECLASSES, default_class_body("alpha"))
    c = await client.create(PERSISTENTVOLUMECLAIMS, claim_body("data"), namespace="default")
    assert c["spec"]["storageClassName"] == "alpha"


async def test_default_class_is_local_path_and_only_default(
    clocked: tuple[LocalClient, FakeClock],
) -> None:
    client, _clock = clocked
    await ensure_default_storage_class(client, enabled=True)
    classes = (await client.list(STORAGECLASSES))["items"]
    defaults = [
        sc["metadata"]["name"]
        for sc in classes
        if (sc["metadata"].get("annotations") or {}).get(
            "storageclass.kubernetes.io/is-default-class"
        )
        == "true"
    ]
    assert defaults == [DEFAULT_CLASS_NAME]
