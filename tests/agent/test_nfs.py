"""nfs: the mount is really attempted, and a failure says why — never a silent success.

Only 127.0.0.1 is ever named as a server. On this kind of machine the kernel usually has
no NFS client, and the message must say so; where it has one, nothing serves NFS on
loopback and the message must say the server did not answer.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from kubeling.agent import mounts
from kubeling.agent.errors import VolumeSetupError
from kubeling.agent.volumes import VolumeSources, prepare_volume
from kubeling.agent.volumes.nfs import kernel_has_nfs
from tests.agent.conftest import needs_root

pytestmark = [pytest.mark.root, needs_root]

POD = {
    "metadata": {"name": "p", "namespace": "d", "uid": "u"},
    "spec": {"containers": [{"name": "a"}]},
}


def expected_reason() -> str:
    if kernel_has_nfs():
        return "NFS server 127.0.0.1 did not answer"
    return "the kernel has no NFS client"


def test_inline_nfs_against_loopback_fails_with_a_clear_reason(tmp_path: Path) -> None:
    volume = {"name": "share", "nfs": {"server": "127.0.0.1", "path": "/exports/data"}}
    with pytest.raises(VolumeSetupError) as info:
        prepare_volume(volume, pod=POD, pod_dir=tmp_path, sources=VolumeSources())
    message = info.value.message
    assert message.startswith("mount failed: ")
    assert "Mounting command: mount\nMounting arguments: -t nfs" in message
    assert "127.0.0.1:/exports/data" in message
    assert expected_reason() in message
    assert info.value.event_message.startswith(
        'MountVolume.SetUp failed for volume "share" : mount failed: '
    )
    assert mounts.mounts_under(tmp_path) == []
    assert not (tmp_path / "volumes" / "kubernetes.io~nfs" / "share").exists()


def test_nfs_persistent_volume_passes_mount_options(tmp_path: Path) -> None:
    pv = {
        "metadata": {"name": "pv-nfs"},
        "spec": {
            "nfs": {"server": "127.0.0.1", "path": "/srv/nfs"},
            "mountOptions": ["nfsvers=4.1", "hard"],
        },
    }
    volume = {"name": "data", "persistentVolumeClaim": {"claimName": "www-web-0", "readOnly": True}}
    with pytest.raises(VolumeSetupError) as info:
        prepare_volume(
            volume, pod=POD, pod_dir=tmp_path, sources=VolumeSources(claims={"www-web-0": pv})
        )
    assert "-o nfsvers=4.1,hard,addr=127.0.0.1,ro " in info.value.message
    assert expected_reason() in info.value.message
    assert mounts.mounts_under(tmp_path) == []


def test_host_path_persistent_volume_binds_its_directory(tmp_path: Path) -> None:
    data = tmp_path / "pv-data"
    data.mkdir()
    pv = {"metadata": {"name": "pv-1"}, "spec": {"hostPath": {"path": str(data)}}}
    volume = {"name": "data", "persistentVolumeClaim": {"claimName": "c"}}
    vol = prepare_volume(volume, pod=POD, pod_dir=tmp_path, sources=VolumeSources(claims={"c": pv}))
    assert vol.path == data and not vol.read_only
    with pytest.raises(VolumeSetupError, match=r"^PVC is not bound$"):
        prepare_volume(
            {"name": "x", "persistentVolumeClaim": {"claimName": "other"}},
            pod=POD,
            pod_dir=tmp_path,
            sources=VolumeSources(),
        )
