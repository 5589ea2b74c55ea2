"""Volume preparers on disk: payloads, the atomic writer, hostPath checks, tmpfs media."""

from __future__ import annotations

import base64
import os
import socket
import stat
from pathlib import Path

import pytest

from kubeling.agent import mounts
from kubeling.agent.errors import VolumeSetupError
from kubeling.agent.volumes import (
    AtomicWriter,
    FileProjection,
    SubPathDirectoryError,
    VolumeSources,
    prepare_pod_volumes,
    prepare_volume,
    resolve_sub_path,
    teardown_pod_volumes,
)
from tests.agent.conftest import requires_root


def pod(*volumes: dict, containers: list | None = None, labels: dict | None = None) -> dict:
    return {
        "metadata": {"name": "web-0", "namespace": "shop", "uid": "uid-1", "labels": labels or {}},
        "spec": {"volumes": list(volumes), "containers": containers or [{"name": "app"}]},
    }


def cm(name: str, **data: str) -> dict:
    return {"metadata": {"name": name}, "data": data}


def test_atomic_writer_lays_out_data_symlink_and_visible_links(tmp_path: Path) -> None:
    w = AtomicWriter(tmp_path / "v")
    assert w.write({"a": FileProjection(b"1"), "sub/b": FileProjection(b"2", 0o600)})
    v = tmp_path / "v"
    data_target = os.readlink(v / "..data")
    assert data_target.startswith("..") and data_target != "..data"
    assert os.readlink(v / "a") == "..data/a"
    assert os.readlink(v / "sub") == "..data/sub"
    assert (v / "sub" / "b").read_bytes() == b"2"
    assert stat.S_IMODE((v / "sub" / "b").stat().st_mode) == 0o600
    assert stat.S_IMODE((v / "a").stat().st_mode) == 0o644


def test_atomic_writer_swaps_whole_version_and_removes_old(tmp_path: Path) -> None:
    v = tmp_path / "v"
    w = AtomicWriter(v)
    w.write({"a": FileProjection(b"1"), "gone": FileProjection(b"x")})
    first = os.readlink(v / "..data")
    assert not w.write({"a": FileProjection(b"1"), "gone": FileProjection(b"x")})
    assert os.readlink(v / "..data") == first
    assert w.write({"a": FileProjection(b"2")})
    assert os.readlink(v / "..data") != first
    assert not (v / first).exists()
    assert not os.path.lexists(v / "gone")
    assert (v / "a").read_bytes() == b"2"
    assert sorted(e for e in os.listdir(v) if not e.startswith("..")) == ["a"]


@pytest.mark.parametrize(
    "path",
    [
        pytest.param("/abs", id="absolute"),
        pytest.param("a/../b", id="dotdot"),
        pytest.param("..hidden", id="reserved"),
        pytest.param("x" * 256, id="long-segment"),
    ],
)
def test_atomic_writer_rejects_bad_paths(tmp_path: Path, path: str) -> None:
    with pytest.raises(ValueError, match="invalid path"):
        AtomicWriter(tmp_path / "v").write({path: FileProjection(b"")})


def test_config_map_volume_projects_items_with_modes(tmp_path: Path) -> None:
    p = pod(
        {
            "name": "cfg",
            "configMap": {
                "name": "app",
                "defaultMode": 0o640,
                "items": [
                    {"key": "k1", "path": "conf/one"},
                    {"key": "k2", "path": "two", "mode": 0o400},
                ],
            },
        }
    )
    sources = VolumeSources(config_maps={"app": cm("app", k1="v1", k2="v2", k3="v3")})
    vol = prepare_volume(p["spec"]["volumes"][0], pod=p, pod_dir=tmp_path, sources=sources)
    assert vol.read_only
    assert vol.path == tmp_path / "volumes" / "kubernetes.io~configmap" / "cfg"
    assert (vol.path / "conf" / "one").read_text() == "v1"
    assert stat.S_IMODE((vol.path / "conf" / "one").stat().st_mode) == 0o640
    assert stat.S_IMODE((vol.path / "two").stat().st_mode) == 0o400
    assert not (vol.path / "k3").exists()
    vol.teardown()
    assert not vol.path.exists()


@pytest.mark.parametrize(
    ("volume", "sources", "message"),
    [
        pytest.param(
            {"name": "v", "configMap": {"name": "missing"}},
            VolumeSources(),
            'configmap "missing" not found',
            id="configmap-missing",
        ),
        pytest.param(
            {"name": "v", "secret": {"secretName": "nope"}},
            VolumeSources(),
            'secret "nope" not found',
            id="secret-missing",
        ),
        pytest.param(
            {"name": "v", "configMap": {"name": "c", "items": [{"key": "absent", "path": "p"}]}},
            VolumeSources(config_maps={"c": cm("c", present="1")}),
            "configmap references non-existent config key: absent",
            id="configmap-key-missing",
        ),
    ],
)
def test_missing_objects_fail_with_upstream_messages(
    tmp_path: Path, volume: dict, sources: VolumeSources, message: str
) -> None:
    p = pod(volume)
    prepared, errors = prepare_pod_volumes(p, pod_dir=tmp_path, sources=sources)
    assert prepared == {}
    assert [e.message for e in errors] == [message]
    assert errors[0].event_message == f'MountVolume.SetUp failed for volume "v" : {message}'


def test_optional_missing_config_map_and_key_give_what_exists(tmp_path: Path) -> None:
    p = pod(
        {"name": "a", "configMap": {"name": "missing", "optional": True}},
        {
            "name": "b",
            "configMap": {
                "name": "c",
                "optional": True,
                "items": [{"key": "absent", "path": "x"}, {"key": "k", "path": "y"}],
            },
        },
    )
    prepared, errors = prepare_pod_volumes(
        p, pod_dir=tmp_path, sources=VolumeSources(config_maps={"c": cm("c", k="v")})
    )
    assert errors == []
    assert [e for e in os.listdir(prepared["a"].path) if not e.startswith("..")] == []
    assert sorted(e for e in os.listdir(prepared["b"].path) if not e.startswith("..")) == ["y"]
    teardown_pod_volumes(tmp_path)


@pytest.mark.parametrize(
    ("make", "path_type", "expected"),
    [
        pytest.param(
            "file",
            "Directory",
            "hostPath type check failed: {p} is not a directory",
            id="dir-on-file",
        ),
        pytest.param(
            "none",
            "Directory",
            "hostPath type check failed: {p} is not a directory",
            id="dir-missing",
        ),
        pytest.param(
            "dir", "File", "hostPath type check failed: {p} is not a file", id="file-on-dir"
        ),
        pytest.param(
            "dir",
            "FileOrCreate",
            "hostPath type check failed: {p} is not a file",
            id="file-or-create-on-dir",
        ),
        pytest.param(
            "file",
            "DirectoryOrCreate",
            "hostPath type check failed: {p} is not a directory",
            id="dir-or-create-on-file",
        ),
        pytest.param(
            "file", "Socket", "hostPath type check failed: {p} is not a socket file", id="socket"
        ),
        pytest.param(
            "file",
            "CharDevice",
            "hostPath type check failed: {p} is not a character device",
            id="char",
        ),
        pytest.param(
            "file",
            "BlockDevice",
            "hostPath type check failed: {p} is not a block device",
            id="block",
        ),
        pytest.param("file", "Bogus", "Bogus is an invalid volume type", id="invalid-type"),
    ],
)
def test_host_path_type_errors(tmp_path: Path, make: str, path_type: str, expected: str) -> None:
    target = tmp_path / "x"
    if make == "file":
        target.write_text("")
    elif make == "dir":
        target.mkdir()
    with pytest.raises(VolumeSetupError) as info:
        prepare_volume(
            {"name": "h", "hostPath": {"path": str(target), "type": path_type}},
            pod=pod(),
            pod_dir=tmp_path,
            sources=VolumeSources(),
        )
    assert info.value.message == expected.format(p=target)


def test_host_path_types_that_pass(tmp_path: Path) -> None:
    created_dir = tmp_path / "made" / "deep"
    created_file = tmp_path / "f"
    sock_path = tmp_path / "s.sock"
    with socket.socket(socket.AF_UNIX) as s:
        s.bind(str(sock_path))
        for source in (
            {"path": str(created_dir), "type": "DirectoryOrCreate"},
            {"path": str(created_file), "type": "FileOrCreate"},
            {"path": str(sock_path), "type": "Socket"},
            {"path": "/dev/null", "type": "CharDevice"},
            {"path": str(tmp_path / "whatever"), "type": ""},
        ):
            vol = prepare_volume(
                {"name": "h", "hostPath": source},
                pod=pod(),
                pod_dir=tmp_path,
                sources=VolumeSources(),
            )
            assert vol.path == Path(source["path"])
            vol.teardown()  # never removes a host path
    assert stat.S_IMODE(created_dir.stat().st_mode) == 0o755 & ~_umask()
    assert created_file.is_file() and created_file.read_bytes() == b""


def _umask() -> int:
    old = os.umask(0)
    os.umask(old)
    return old


def test_file_or_create_does_not_create_parents(tmp_path: Path) -> None:
    target = tmp_path / "no" / "f"
    with pytest.raises(VolumeSetupError) as info:
        prepare_volume(
            {"name": "h", "hostPath": {"path": str(target), "type": "FileOrCreate"}},
            pod=pod(),
            pod_dir=tmp_path,
            sources=VolumeSources(),
        )
    assert info.value.message == f"open {target}: no such file or directory"
    assert not target.parent.exists()


def test_empty_dir_on_disk_is_0777_and_survives_reprepare(tmp_path: Path) -> None:
    p = pod({"name": "scratch", "emptyDir": {}})
    vol = prepare_volume(p["spec"]["volumes"][0], pod=p, pod_dir=tmp_path, sources=VolumeSources())
    assert stat.S_IMODE(vol.path.stat().st_mode) == 0o777
    (vol.path / "keep").write_text("data")
    again = prepare_volume(
        p["spec"]["volumes"][0], pod=p, pod_dir=tmp_path, sources=VolumeSources()
    )
    assert (again.path / "keep").read_text() == "data"
    teardown_pod_volumes(tmp_path)
    assert not vol.path.exists()


@requires_root  # projected and downwardAPI volumes sit on tmpfs
def test_projected_combines_sources_and_downward_api(tmp_path: Path) -> None:
    p = pod(
        {
            "name": "kube-api-access-abcde",
            "projected": {
                "defaultMode": 420,
                "sources": [
                    {"serviceAccountToken": {"path": "token", "expirationSeconds": 3607}},
                    {
                        "configMap": {
                            "name": "kube-root-ca.crt",
                            "items": [{"key": "ca.crt", "path": "ca.crt"}],
                        }
                    },
                    {
                        "downwardAPI": {
                            "items": [
                                {
                                    "path": "namespace",
                                    "fieldRef": {"fieldPath": "metadata.namespace"},
                                }
                            ]
                        }
                    },
                    {"secret": {"name": "s"}},
                ],
            },
        },
        {
            "name": "labels",
            "downwardAPI": {
                "items": [{"path": "labels", "fieldRef": {"fieldPath": "metadata.labels"}}]
            },
        },
        labels={"b": "2", "a": "x y"},
    )
    calls = []

    def token(audience: str | None, expiry: int) -> bytes:
        calls.append((audience, expiry))
        return b"tok"

    sources = VolumeSources(
        config_maps={"kube-root-ca.crt": cm("kube-root-ca.crt", **{"ca.crt": "CA"})},
        secrets={
            "s": {"metadata": {"name": "s"}, "data": {"pw": base64.b64encode(b"hunter2").decode()}}
        },
        service_account_token=token,
    )
    prepared, errors = prepare_pod_volumes(p, pod_dir=tmp_path, sources=sources)
    assert errors == []
    vol = prepared["kube-api-access-abcde"]
    assert {n: (vol.path / n).read_bytes() for n in ("token", "ca.crt", "namespace", "pw")} == {
        "token": b"tok",
        "ca.crt": b"CA",
        "namespace": b"shop",
        "pw": b"hunter2",
    }
    assert calls == [(None, 3607)]
    assert (prepared["labels"].path / "labels").read_text() == 'a="x y"\nb="2"'
    relabelled = dict(p, metadata=dict(p["metadata"], labels={"a": "new"}))
    assert prepared["labels"].refresh(VolumeSources(pod=relabelled))
    assert (prepared["labels"].path / "labels").read_text() == 'a="new"'
    teardown_pod_volumes(tmp_path)
    assert mounts.mounts_under(tmp_path) == []


@requires_root
def test_memory_empty_dir_is_tmpfs_sized_by_limit(tmp_path: Path) -> None:
    p = pod(
        {"name": "mem", "emptyDir": {"medium": "Memory", "sizeLimit": "64Mi"}},
        containers=[{"name": "a", "resources": {"limits": {"memory": "32Mi"}}}],
    )
    vol = prepare_volume(p["spec"]["volumes"][0], pod=p, pod_dir=tmp_path, sources=VolumeSources())
    st = os.statvfs(vol.path)
    assert mounts.is_mount_point(vol.path)
    assert st.f_blocks * st.f_frsize == 32 * 1024 * 1024
    teardown_pod_volumes(tmp_path)
    assert mounts.mounts_under(tmp_path) == []
    assert not vol.path.exists()


@requires_root
def test_secret_volume_lives_on_tmpfs_and_updates(tmp_path: Path) -> None:
    def secret(value: bytes) -> VolumeSources:
        return VolumeSources(
            secrets={
                "db": {
                    "metadata": {"name": "db"},
                    "data": {"password": base64.b64encode(value).decode()},
                }
            }
        )

    p = pod({"name": "creds", "secret": {"secretName": "db"}})
    vol = prepare_volume(p["spec"]["volumes"][0], pod=p, pod_dir=tmp_path, sources=secret(b"one"))
    assert mounts.is_mount_point(vol.path)
    with open("/proc/self/mountinfo") as f:
        assert any(f" {vol.path} " in line and " - tmpfs " in line for line in f)
    assert (vol.path / "password").read_bytes() == b"one"
    assert vol.refresh(secret(b"two"))
    assert (vol.path / "password").read_bytes() == b"two"
    assert not vol.refresh(secret(b"two"))
    teardown_pod_volumes(tmp_path)
    assert mounts.mounts_under(tmp_path) == []


def test_sub_path_of_config_map_key_is_refreshed_in_place(tmp_path: Path) -> None:
    p = pod({"name": "cfg", "configMap": {"name": "app"}})
    vol = prepare_volume(
        p["spec"]["volumes"][0],
        pod=p,
        pod_dir=tmp_path,
        sources=VolumeSources(config_maps={"app": cm("app", conf="v1")}),
    )
    stable = resolve_sub_path(vol, "conf", container="app", index=0)
    inode = stable.stat().st_ino
    assert stable.read_text() == "v1"
    assert vol.refresh(VolumeSources(config_maps={"app": cm("app", conf="version2")}))
    assert stable.read_text() == "version2"
    assert stable.stat().st_ino == inode
    # An agent restart re-prepares the volume: the copy is still known and still refreshed.
    again = prepare_volume(
        p["spec"]["volumes"][0],
        pod=p,
        pod_dir=tmp_path,
        sources=VolumeSources(config_maps={"app": cm("app", conf="version2")}),
    )
    assert again.refresh(VolumeSources(config_maps={"app": cm("app", conf="three")}))
    assert stable.read_text() == "three" and stable.stat().st_ino == inode
    teardown_pod_volumes(tmp_path)


def test_sub_path_may_not_escape_the_volume(tmp_path: Path) -> None:
    p = pod({"name": "scratch", "emptyDir": {}})
    vol = prepare_volume(p["spec"]["volumes"][0], pod=p, pod_dir=tmp_path, sources=VolumeSources())
    os.symlink("/etc", vol.path / "link")
    with pytest.raises(VolumeSetupError, match="not within volume path"):
        resolve_sub_path(vol, "link", container="app", index=0)
    with pytest.raises(VolumeSetupError, match=r"without '\.\.'"):
        resolve_sub_path(vol, "../x", container="app", index=0)
    made = resolve_sub_path(vol, "new/dir", container="app", index=1)
    assert made.is_dir() and made == (vol.path / "new" / "dir").resolve()
    teardown_pod_volumes(tmp_path)


def test_host_path_without_type_creates_a_missing_directory(tmp_path: Path) -> None:
    target = tmp_path / "new" / "deep"
    vol = prepare_volume(
        {"name": "h", "hostPath": {"path": str(target)}},
        pod=pod(),
        pod_dir=tmp_path,
        sources=VolumeSources(),
    )
    assert vol.path == target and target.is_dir()
    assert stat.S_IMODE(target.stat().st_mode) == 0o755 & ~_umask()
    # An existing file is left as it is: no type checks nothing.
    existing = tmp_path / "file"
    existing.write_text("keep")
    prepare_volume(
        {"name": "h", "hostPath": {"path": str(existing), "type": ""}},
        pod=pod(),
        pod_dir=tmp_path,
        sources=VolumeSources(),
    )
    assert existing.read_text() == "keep"


@pytest.mark.parametrize("path_type", ["", "DirectoryOrCreate", "FileOrCreate", "Directory"])
def test_relative_host_path_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, path_type: str
) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(VolumeSetupError) as info:
        prepare_volume(
            {"name": "h", "hostPath": {"path": "data/logs", "type": path_type}},
            pod=pod(),
            pod_dir=tmp_path / "pod",
            sources=VolumeSources(),
        )
    assert info.value.event_message == (
        'MountVolume.SetUp failed for volume "h" : hostPath "data/logs" is not an absolute '
        "path: kubeling mounts only absolute paths on the node"
    )
    assert not info.value.retryable
    assert str(tmp_path) not in info.value.event_message
    assert list(tmp_path.iterdir()) == []  # nothing created relative to the working directory


@pytest.mark.parametrize(
    ("volume_mode", "sub_path"),
    [
        pytest.param(0o777, "data", id="emptydir-0777"),
        pytest.param(0o777, "pg/data/deep", id="nested-0777"),
        pytest.param(0o750, "private", id="volume-0750"),
    ],
)
def test_sub_path_directories_get_the_volume_directory_mode(
    tmp_path: Path, volume_mode: int, sub_path: str
) -> None:
    volume_dir = tmp_path / "pv"
    volume_dir.mkdir()
    os.chmod(volume_dir, volume_mode)
    pv = {"metadata": {"name": "pvc-1234"}, "spec": {"local": {"path": str(volume_dir)}}}
    p = pod({"name": "data", "persistentVolumeClaim": {"claimName": "data"}})
    vol = prepare_volume(
        p["spec"]["volumes"][0],
        pod=p,
        pod_dir=tmp_path / "pod",
        sources=VolumeSources(claims={"data": pv}),
    )
    old_umask = os.umask(0o022)
    try:
        made = resolve_sub_path(vol, sub_path, container="app", index=0)
    finally:
        os.umask(old_umask)
    assert made == (volume_dir / sub_path).resolve()
    current = volume_dir
    for part in sub_path.split("/"):
        current = current / part
        assert stat.S_IMODE(current.stat().st_mode) == volume_mode, current
    # an existing directory keeps whatever mode it has
    os.chmod(made, 0o700)
    assert resolve_sub_path(vol, sub_path, container="app", index=0) == made
    assert stat.S_IMODE(made.stat().st_mode) == 0o700


def test_empty_dir_sub_path_is_writable_by_any_user(tmp_path: Path) -> None:
    p = pod({"name": "scratch", "emptyDir": {}})
    vol = prepare_volume(p["spec"]["volumes"][0], pod=p, pod_dir=tmp_path, sources=VolumeSources())
    made = resolve_sub_path(vol, "data", container="app", index=0)
    assert stat.S_IMODE(made.stat().st_mode) == 0o777
    teardown_pod_volumes(tmp_path)


def test_sub_path_is_not_created_through_a_symlink_out_of_the_volume(tmp_path: Path) -> None:
    p = pod({"name": "scratch", "emptyDir": {}})
    vol = prepare_volume(p["spec"]["volumes"][0], pod=p, pod_dir=tmp_path, sources=VolumeSources())
    outside = tmp_path / "outside"
    outside.mkdir()
    os.symlink(outside, vol.path / "link")
    (vol.path / "file").write_text("x")
    for sub in ("link/new", "file/new"):
        with pytest.raises(SubPathDirectoryError):
            resolve_sub_path(vol, sub, container="app", index=0)
    assert list(outside.iterdir()) == []
    teardown_pod_volumes(tmp_path)


def test_sub_path_copies_live_outside_the_volume_and_keep_refreshing(tmp_path: Path) -> None:
    p = pod({"name": "cfg", "configMap": {"name": "app"}})
    sources = VolumeSources(config_maps={"app": cm("app", conf="v1", other="o")})
    vol = prepare_volume(p["spec"]["volumes"][0], pod=p, pod_dir=tmp_path, sources=sources)
    stable = resolve_sub_path(vol, "conf", container="app", index=3)
    assert stable == tmp_path / "volume-subpaths" / "cfg" / "app" / "3"
    # the volume directory holds the writer's files only: no copy, no bookkeeping
    assert sorted(n for n in os.listdir(vol.path) if not n.startswith("..")) == ["conf", "other"]
    hidden = sorted(n for n in os.listdir(vol.path) if n.startswith(".."))
    assert len(hidden) == 2 and hidden[1] == "..data"  # the writer's version dir and link
    assert os.readlink(vol.path / "..data") == hidden[0]
    inode = stable.stat().st_ino
    assert vol.refresh(VolumeSources(config_maps={"app": cm("app", conf="v2", other="o")}))
    assert stable.read_text() == "v2" and stable.stat().st_ino == inode
    teardown_pod_volumes(tmp_path)
    assert not (tmp_path / "volume-subpaths").exists()


@requires_root
def test_secret_sub_path_copies_stay_on_tmpfs(tmp_path: Path) -> None:
    secret = {"metadata": {"name": "s"}, "data": {"pw": base64.b64encode(b"one").decode()}}
    p = pod({"name": "creds", "secret": {"secretName": "s"}})
    vol = prepare_volume(
        p["spec"]["volumes"][0],
        pod=p,
        pod_dir=tmp_path,
        sources=VolumeSources(secrets={"s": secret}),
    )
    stable = resolve_sub_path(vol, "pw", container="app", index=0)
    assert stable.read_bytes() == b"one"
    home = tmp_path / "volume-subpaths" / "creds"
    with open("/proc/self/mountinfo") as f:
        assert any(f" {home} " in line and " - tmpfs " in line for line in f)
    teardown_pod_volumes(tmp_path)
    assert mounts.mounts_under(tmp_path) == []


def test_sub_path_of_a_missing_key_is_an_empty_directory(tmp_path: Path) -> None:
    p = pod({"name": "cfg", "configMap": {"name": "app"}})
    sources = VolumeSources(config_maps={"app": cm("app", present="1")})
    vol = prepare_volume(p["spec"]["volumes"][0], pod=p, pod_dir=tmp_path, sources=sources)
    made = resolve_sub_path(vol, "absent.conf", container="app", index=0)
    assert made.is_dir() and list(made.iterdir()) == []
    assert not (vol.path / "absent.conf").exists()
    # a refresh that still lacks the key leaves the directory alone
    vol.refresh(VolumeSources(config_maps={"app": cm("app", present="2")}))
    assert made.is_dir()
    teardown_pod_volumes(tmp_path)


def test_unbound_claim_is_one_volume_manager_error(tmp_path: Path) -> None:
    p = pod(
        {"name": "data", "persistentVolumeClaim": {"claimName": "data"}},
        {"name": "logs", "persistentVolumeClaim": {"claimName": "logs-claim"}},
        {"name": "unused", "persistentVolumeClaim": {"claimName": "spare"}},
        {"name": "conf", "configMap": {"name": "missing"}},
        containers=[
            {
                "name": "app",
                "volumeMounts": [
                    {"name": n, "mountPath": f"/{n}"} for n in ("logs", "data", "conf")
                ],
            }
        ],
    )
    _prepared, errors = prepare_pod_volumes(
        p,
        pod_dir=tmp_path,
        sources=VolumeSources(
            claim_errors={
                "logs-claim": 'failed to fetch PVC from API server: persistentvolumeclaims "logs-claim" not found'
            }
        ),
    )
    assert [e.event_message for e in errors] == [
        'MountVolume.SetUp failed for volume "conf" : configmap "missing" not found',
        "Unable to attach or mount volumes: unmounted volumes=[conf data logs], unattached "
        "volumes=[], failed to process volumes=[data logs]: error processing PVC shop/data: "
        "PVC is not bound; error processing PVC shop/logs-claim: failed to fetch PVC from API "
        'server: persistentvolumeclaims "logs-claim" not found',
    ]


def test_bound_claim_set_up_failure_names_the_persistent_volume(tmp_path: Path) -> None:
    missing = tmp_path / "gone"
    pv = {"metadata": {"name": "pvc-9f1c"}, "spec": {"local": {"path": str(missing)}}}
    p = pod({"name": "data", "persistentVolumeClaim": {"claimName": "data"}})
    _prepared, errors = prepare_pod_volumes(
        p, pod_dir=tmp_path, sources=VolumeSources(claims={"data": pv})
    )
    assert [e.event_message for e in errors] == [
        f'MountVolume.SetUp failed for volume "pvc-9f1c" : hostPath type check failed: '
        f"{missing} is not a directory"
    ]
