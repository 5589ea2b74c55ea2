"""The local-path provisioner: directories, the volumes it writes, pathPattern, onDelete."""

from __future__ import annotations

import os
import pathlib
import stat

import pytest

from kubeling.controllers.provisioner import (
    ANN_PROVISIONED_BY,
    ANN_SELECTED_NODE,
    ANN_STORAGE_PROVISIONER,
    DEFAULT_CLASS_NAME,
    PROVISIONER,
    LocalPathProvisioner,
    ProvisioningError,
    check_relative_path,
    ensure_default_storage_class,
    render_path_pattern,
)
from kubeling.machinery.errors import NotFound
from kubeling.machinery.resources import (
    NAMESPACES,
    PERSISTENTVOLUMECLAIMS,
    PERSISTENTVOLUMES,
    STORAGECLASSES,
)
from kubeling.machinery.types import Obj
from tests.controllers.conftest import Api, wait_until

NODE = "node-a"


def storage_class(name: str = "lp", **fields: object) -> Obj:
    sc: Obj = {
        "apiVersion": "storage.k8s.io/v1",
        "kind": "StorageClass",
        "metadata": {"name": name},
        "provisioner": PROVISIONER,
    }
    sc.update(fields)
    return sc


def claim(
    name: str = "data",
    *,
    sc: str = "lp",
    provisioner: str = PROVISIONER,
    size: str = "1Gi",
    annotations: dict[str, str] | None = None,
    labels: dict[str, str] | None = None,
    **spec: object,
) -> Obj:
    ann = dict(annotations or {})
    if provisioner:
        # what the binder writes before handing the claim to a provisioner
        ann[ANN_STORAGE_PROVISIONER] = provisioner
        ann["volume.beta.kubernetes.io/storage-provisioner"] = provisioner
    body: Obj = {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": {"name": name, "annotations": ann, "labels": labels or {}},
        "spec": {
            "storageClassName": sc,
            "accessModes": ["ReadWriteOnce"],
            "resources": {"requests": {"storage": size}},
            **spec,
        },
    }
    return body


@pytest.fixture
async def prov(api: Api) -> LocalPathProvisioner:
    controller = LocalPathProvisioner(
        client=api.client,
        informers=api.informers,
        storage_root=api.ctx.data_dir / "storage",
        node_name=NODE,
        recorder=api.recorder(f"{PROVISIONER}_{NODE}"),
    )
    await api.start(controller)
    return controller


async def volume_for(api: Api, c: Obj) -> Obj:
    name = f"pvc-{c['metadata']['uid']}"
    found: list[Obj] = []

    async def exists() -> bool:
        try:
            found.append(await api.client.get(PERSISTENTVOLUMES, name=name))
        except NotFound:
            return False
        return True

    await wait_until(exists, what=f"volume {name}")
    return found[-1]


async def has_volume(api: Api, c: Obj) -> bool:
    try:
        await api.client.get(PERSISTENTVOLUMES, name=f"pvc-{c['metadata']['uid']}")
    except NotFound:
        return False
    return True


async def create_claim(api: Api, body: Obj) -> Obj:
    return await api.client.create(PERSISTENTVOLUMECLAIMS, body, namespace="default")


async def test_provisioner_creates_directory_and_prebound_volume(
    api: Api, prov: LocalPathProvisioner
) -> None:
    await api.client.create(
        STORAGECLASSES, storage_class(reclaimPolicy="Retain", mountOptions=["noatime"])
    )
    c = await create_claim(api, claim(accessModes=["ReadWriteOnce", "ReadOnlyMany"], size="2Gi"))
    pv = await volume_for(api, c)

    uid = c["metadata"]["uid"]
    directory = api.ctx.data_dir / "storage" / f"pvc-{uid}_default_data"
    assert directory.is_dir()
    assert stat.S_IMODE(directory.stat().st_mode) == 0o777
    assert directory.stat().st_uid == os.geteuid()
    assert pv["metadata"]["annotations"][ANN_PROVISIONED_BY] == PROVISIONER
    spec = pv["spec"]
    assert spec["capacity"] == {"storage": "2Gi"}
    assert spec["accessModes"] == ["ReadWriteOnce", "ReadOnlyMany"]
    assert spec["persistentVolumeReclaimPolicy"] == "Retain"
    assert spec["storageClassName"] == "lp"
    assert spec["mountOptions"] == ["noatime"]
    assert spec["volumeMode"] == "Filesystem"
    assert spec["hostPath"] == {"path": str(directory.resolve()), "type": "Directory"}
    assert spec["claimRef"]["uid"] == uid
    assert (spec["claimRef"]["namespace"], spec["claimRef"]["name"]) == ("default", "data")
    term = spec["nodeAffinity"]["required"]["nodeSelectorTerms"][0]
    assert term["matchExpressions"] == [
        {"key": "kubernetes.io/hostname", "operator": "In", "values": [NODE]}
    ]
    provisioning = await api.events(c, reason="Provisioning")
    assert [e["message"] for e in provisioning] == [
        'External provisioner is provisioning volume for claim "default/data"'
    ]
    succeeded = await api.events(c, reason="ProvisioningSucceeded")
    assert [e["message"] for e in succeeded] == [f"Successfully provisioned volume pvc-{uid}"]
    assert succeeded[0]["source"]["component"] == f"{PROVISIONER}_{NODE}"


async def test_provisioner_leaves_claims_of_other_provisioners_and_waiting_ones(
    api: Api, prov: LocalPathProvisioner
) -> None:
    await api.client.create(STORAGECLASSES, storage_class())
    await api.client.create(
        STORAGECLASSES, storage_class("late", volumeBindingMode="WaitForFirstConsumer")
    )
    other = await create_claim(api, claim("other", provisioner="example.com/nfs"))
    plain = await create_claim(api, claim("plain", provisioner=""))
    waiting = await create_claim(api, claim("waiting", sc="late"))
    elsewhere = await create_claim(
        api, claim("elsewhere", sc="late", annotations={ANN_SELECTED_NODE: "node-b"})
    )
    # The queue is FIFO: once the last claim is provisioned, the earlier ones were decided.
    last = await create_claim(api, claim("last"))
    await volume_for(api, last)
    for c in (other, plain, waiting, elsewhere):
        assert not await has_volume(api, c), c["metadata"]["name"]
    assert sorted(p.name for p in (api.ctx.data_dir / "storage").iterdir()) == [
        f"pvc-{last['metadata']['uid']}_default_last"
    ]

    # The scheduler picks this node for the waiting claim: now it is provisioned here.
    waiting["metadata"]["annotations"][ANN_SELECTED_NODE] = NODE
    await api.client.update(PERSISTENTVOLUMECLAIMS, waiting)
    pv = await volume_for(api, waiting)
    expr = pv["spec"]["nodeAffinity"]["required"]["nodeSelectorTerms"][0]["matchExpressions"][0]
    assert expr["values"] == [NODE]


async def test_provisioner_waits_for_a_missing_class(api: Api, prov: LocalPathProvisioner) -> None:
    c = await create_claim(api, claim(sc="arrives-later"))
    other = await create_claim(api, claim("other", sc="lp"))
    await api.client.create(STORAGECLASSES, storage_class())
    await volume_for(api, other)
    assert not await has_volume(api, c)
    await api.client.create(STORAGECLASSES, storage_class("arrives-later"))
    await volume_for(api, c)


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        pytest.param(
            {"volumeMode": "Block"},
            "kubeling.io/local-path does not support block volume provisioning",
            id="block",
        ),
        pytest.param(
            {"selector": {"matchLabels": {"tier": "gold"}}},
            "claim.Spec.Selector is not supported",
            id="selector",
        ),
    ],
)
async def test_provisioner_refuses_what_a_directory_cannot_be(
    api: Api, prov: LocalPathProvisioner, spec: Obj, message: str
) -> None:
    await api.client.create(STORAGECLASSES, storage_class())
    c = await create_claim(api, claim(**spec))

    async def failed() -> bool:
        return bool(await api.events(c, reason="ProvisioningFailed"))

    await wait_until(failed, what="ProvisioningFailed")
    events = await api.events(c, reason="ProvisioningFailed")
    assert events[0]["message"] == message
    assert events[0]["type"] == "Warning"
    assert not await has_volume(api, c)
    assert not (api.ctx.data_dir / "storage").exists() or not any(
        (api.ctx.data_dir / "storage").iterdir()
    )


async def test_provisioner_path_pattern_names_the_directory(
    api: Api, prov: LocalPathProvisioner
) -> None:
    pattern = "{{ .PVC.Namespace }}/{{ .PVC.Labels.app }}/{{ .PVC.Name }}"
    await api.client.create(STORAGECLASSES, storage_class(parameters={"pathPattern": pattern}))
    c = await create_claim(api, claim(labels={"app": "web"}))
    pv = await volume_for(api, c)
    directory = api.ctx.data_dir / "storage" / "default" / "web" / "data"
    assert directory.is_dir()
    assert stat.S_IMODE(directory.stat().st_mode) == 0o777
    assert pv["spec"]["hostPath"]["path"] == str(directory.resolve())


@pytest.mark.parametrize(
    ("pattern", "annotations", "fragment"),
    [
        pytest.param("../escape", {}, "contains '..'", id="dotdot"),
        pytest.param("/etc/{{ .PVC.Name }}", {}, "absolute path", id="absolute"),
        pytest.param(
            "{{ .PVC.Annotations.where }}",
            {"where": "a/../../../x"},
            "contains '..'",
            id="dotdot-from-annotation",
        ),
        pytest.param("{{ .PVC.Spec }}", {}, "unknown field", id="unknown-field"),
        pytest.param("link/{{ .PVC.Name }}", {}, "outside the storage directory", id="symlink"),
    ],
)
async def test_provisioner_path_pattern_cannot_escape(
    api: Api,
    prov: LocalPathProvisioner,
    tmp_path: pathlib.Path,
    pattern: str,
    annotations: dict[str, str],
    fragment: str,
) -> None:
    root = api.ctx.data_dir / "storage"
    root.mkdir()
    outside = tmp_path / "outside"
    outside.mkdir()
    (root / "link").symlink_to(outside)
    await api.client.create(STORAGECLASSES, storage_class(parameters={"pathPattern": pattern}))
    c = await create_claim(api, claim(annotations=annotations))

    async def failed() -> bool:
        return bool(await api.events(c, reason="ProvisioningFailed"))

    await wait_until(failed, what="ProvisioningFailed")
    [event] = await api.events(c, reason="ProvisioningFailed")
    assert fragment in event["message"]
    assert not await has_volume(api, c)
    assert list(outside.iterdir()) == []
    assert sorted(p.name for p in root.iterdir()) == ["link"]


@pytest.mark.parametrize(
    ("pattern", "expected"),
    [
        pytest.param("{{ .PVName }}", "pvc-1", id="pv-name"),
        pytest.param("{{.PVC.Namespace}}-{{.PVC.Name}}", "ns-data", id="no-spaces"),
        pytest.param('{{ index .PVC.Labels "app.kubernetes.io/name" }}', "db", id="index"),
        pytest.param("${.PVC.namespace}/${.PVC.name}", "ns/data", id="nfs-subdir-style"),
        pytest.param("{{ .PVC.Annotations.missing }}x", "x", id="missing-key-is-empty"),
    ],
)
def test_render_path_pattern_fields(pattern: str, expected: str) -> None:
    c = {
        "metadata": {
            "name": "data",
            "namespace": "ns",
            "labels": {"app.kubernetes.io/name": "db"},
        }
    }
    assert render_path_pattern(pattern, pv_name="pvc-1", claim=c) == expected


@pytest.mark.parametrize(
    ("rendered", "expected"),
    [
        pytest.param("a//b/./c/", "a/b/c", id="cleaned"),
        pytest.param("a/..b", "a/..b", id="dots-inside-a-name-are-fine"),
    ],
)
def test_check_relative_path_cleans(rendered: str, expected: str) -> None:
    assert check_relative_path(rendered) == expected


@pytest.mark.parametrize("rendered", ["", "/", "./", "a/../b", "/abs"])
def test_check_relative_path_refuses(rendered: str) -> None:
    with pytest.raises(ProvisioningError):
        check_relative_path(rendered)


async def release(api: Api, pv: Obj) -> None:
    """What the binder does when the claim is gone: phase Released."""
    fresh = await api.client.get(PERSISTENTVOLUMES, name=pv["metadata"]["name"])
    fresh["status"] = {"phase": "Released"}
    await api.client.update(PERSISTENTVOLUMES, fresh, subresource="status")


async def volume_deleted(api: Api, name: str) -> bool:
    try:
        pv = await api.client.get(PERSISTENTVOLUMES, name=name)
    except NotFound:
        return True
    return bool(pv["metadata"].get("deletionTimestamp"))


@pytest.mark.parametrize(
    ("on_delete", "remains"),
    [
        pytest.param(None, [], id="default-deletes"),
        pytest.param("delete", [], id="delete"),
        pytest.param("retain", ["{dir}"], id="retain"),
        pytest.param("archive", ["archived-{dir}"], id="archive"),
    ],
)
async def test_provisioner_on_delete_modes(
    api: Api, prov: LocalPathProvisioner, on_delete: str | None, remains: list[str]
) -> None:
    params = {"onDelete": on_delete} if on_delete else {}
    await api.client.create(STORAGECLASSES, storage_class(parameters=params))
    c = await create_claim(api, claim())
    pv = await volume_for(api, c)
    directory = pathlib.Path(pv["spec"]["hostPath"]["path"])
    (directory / "file").write_text("kept?")
    (directory / "sub").mkdir()
    await release(api, pv)
    await wait_until(lambda: volume_deleted(api, pv["metadata"]["name"]), what="PV deleted")
    root = api.ctx.data_dir / "storage"
    expected = [r.format(dir=directory.name) for r in remains]
    assert sorted(p.name for p in root.iterdir()) == expected
    for name in expected:
        assert (root / name / "file").read_text() == "kept?"


async def test_provisioner_deletes_only_its_own_released_delete_volumes(
    api: Api, prov: LocalPathProvisioner
) -> None:
    await api.client.create(STORAGECLASSES, storage_class(reclaimPolicy="Retain"))
    c = await create_claim(api, claim())
    pv = await volume_for(api, c)
    await release(api, pv)
    # A Retain volume stays; prove the sync ran by deleting a Delete volume after it.
    await api.client.create(STORAGECLASSES, storage_class("gone"))
    c2 = await create_claim(api, claim("second", sc="gone"))
    pv2 = await volume_for(api, c2)
    await release(api, pv2)
    await wait_until(lambda: volume_deleted(api, pv2["metadata"]["name"]), what="PV deleted")
    assert not await volume_deleted(api, pv["metadata"]["name"])
    kept, removed = (pathlib.Path(v["spec"]["hostPath"]["path"]) for v in (pv, pv2))
    assert kept.is_dir()
    assert not removed.exists()


async def test_provisioner_refuses_to_delete_outside_its_directory(
    api: Api, prov: LocalPathProvisioner, tmp_path: pathlib.Path
) -> None:
    outside = tmp_path / "precious"
    outside.mkdir()
    (outside / "data").write_text("do not delete")
    pv: Obj = {
        "apiVersion": "v1",
        "kind": "PersistentVolume",
        "metadata": {"name": "forged", "annotations": {ANN_PROVISIONED_BY: PROVISIONER}},
        "spec": {
            "capacity": {"storage": "1Gi"},
            "accessModes": ["ReadWriteOnce"],
            "persistentVolumeReclaimPolicy": "Delete",
            "hostPath": {"path": str(outside)},
        },
    }
    created = await api.client.create(PERSISTENTVOLUMES, pv)
    await release(api, created)

    async def failed() -> bool:
        return bool(await api.events(created, reason="VolumeFailedDelete"))

    await wait_until(failed, what="VolumeFailedDelete")
    [event] = await api.events(created, reason="VolumeFailedDelete")
    assert "not under the storage directory" in event["message"]
    assert (outside / "data").read_text() == "do not delete"
    assert not await volume_deleted(api, "forged")


async def test_ensure_default_storage_class_once(api: Api) -> None:
    data_dir = api.ctx.data_dir
    assert await ensure_default_storage_class(api.client, enabled=False, data_dir=data_dir) is None
    with pytest.raises(NotFound):
        await api.client.get(STORAGECLASSES, name=DEFAULT_CLASS_NAME)

    created = await ensure_default_storage_class(api.client, enabled=True, data_dir=data_dir)
    assert created is not None
    sc = await api.client.get(STORAGECLASSES, name=DEFAULT_CLASS_NAME)
    assert sc["provisioner"] == PROVISIONER
    assert sc["reclaimPolicy"] == "Delete"
    assert sc["volumeBindingMode"] == "Immediate"
    assert sc["allowVolumeExpansion"] is True
    assert sc["metadata"]["annotations"] == {"storageclass.kubernetes.io/is-default-class": "true"}

    # Deleted by the user: a restart of the same cluster does not bring it back.
    await api.client.delete(STORAGECLASSES, name=DEFAULT_CLASS_NAME)
    assert await ensure_default_storage_class(api.client, enabled=True, data_dir=data_dir) is None
    with pytest.raises(NotFound):
        await api.client.get(STORAGECLASSES, name=DEFAULT_CLASS_NAME)
    # Without a data dir it is simply created when missing, and tolerated when present.
    assert await ensure_default_storage_class(api.client, enabled=True) is not None
    assert await ensure_default_storage_class(api.client, enabled=True) is None


async def test_provisioner_refuses_a_directory_another_volume_holds(
    api: Api, prov: LocalPathProvisioner
) -> None:
    await api.client.create(
        STORAGECLASSES, storage_class(parameters={"pathPattern": "{{ .PVC.Name }}"})
    )
    first = await create_claim(api, claim())
    pv = await volume_for(api, first)
    await api.client.create(
        NAMESPACES, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "other"}}
    )
    second = await api.client.create(PERSISTENTVOLUMECLAIMS, claim(), namespace="other")

    async def failed() -> bool:
        return bool(await api.events(second, reason="ProvisioningFailed"))

    await wait_until(failed, what="ProvisioningFailed")
    [event] = await api.events(second, reason="ProvisioningFailed")
    assert event["message"] == (
        f"volume directory {pv['spec']['hostPath']['path']} is already used by volume "
        f"{pv['metadata']['name']}"
    )
    assert not await has_volume(api, second)


async def test_provisioner_does_not_provision_twice(api: Api, prov: LocalPathProvisioner) -> None:
    """Upstream 11-7: a volume with the claim's name exists already; nothing is redone."""
    await api.client.create(STORAGECLASSES, storage_class())
    c = await create_claim(api, claim())
    pv = await volume_for(api, c)
    # Another change to the claim (the binder has not bound it yet) triggers another sync.
    c = await api.client.get(PERSISTENTVOLUMECLAIMS, name="data", namespace="default")
    c["metadata"].setdefault("labels", {})["touched"] = "yes"
    await api.client.update(PERSISTENTVOLUMECLAIMS, c)
    marker = await create_claim(api, claim("marker"))
    await volume_for(api, marker)
    assert [e["reason"] for e in await api.events(c)] == ["Provisioning", "ProvisioningSucceeded"]
    assert (await api.client.get(PERSISTENTVOLUMES, name=pv["metadata"]["name"]))["metadata"][
        "uid"
    ] == pv["metadata"]["uid"]
