"""Importing OCI archives into the node's image store, and running a container from one."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import tarfile
from pathlib import Path

import pytest

from kubeling.agent import mounts
from kubeling.agent.errors import ImageError
from kubeling.agent.images import ImageStore, normalize_image
from kubeling.agent.sandbox import Node, PodSandbox
from kubeling.agent.volumes import VolumeSources
from tests.agent.conftest import requires_root, requires_runc


def layer(entries: list[tuple[str, bytes | str | None]], *, compress: bool = False) -> bytes:
    """A layer tar: (name, bytes) is a file, (name, "->target") a symlink, (name, None) a dir."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name, content in entries:
            info = tarfile.TarInfo(name)
            if content is None:
                info.type, info.mode = tarfile.DIRTYPE, 0o755
                tar.addfile(info)
            elif isinstance(content, str):
                info.type, info.linkname = tarfile.SYMTYPE, content[2:]
                tar.addfile(info)
            else:
                info.size, info.mode = len(content), 0o755
                tar.addfile(info, io.BytesIO(content))
    data = buf.getvalue()
    return gzip.compress(data) if compress else data


def oci_archive(path: Path, name: str, layers: list[bytes], config: dict) -> Path:
    blobs: dict[str, bytes] = {}

    def add(data: bytes) -> dict:
        digest = "sha256:" + hashlib.sha256(data).hexdigest()
        blobs[digest] = data
        return {"digest": digest, "size": len(data)}

    config_desc = add(json.dumps({"config": config, "rootfs": {"type": "layers"}}).encode())
    manifest = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": dict(config_desc, mediaType="application/vnd.oci.image.config.v1+json"),
        "layers": [
            dict(add(lay), mediaType="application/vnd.oci.image.layer.v1.tar") for lay in layers
        ],
    }
    manifest_desc = add(json.dumps(manifest).encode())
    index = {
        "schemaVersion": 2,
        "manifests": [dict(manifest_desc, annotations={"io.containerd.image.name": name})],
    }
    with tarfile.open(path, "w") as tar:
        files = {
            "oci-layout": b'{"imageLayoutVersion":"1.0.0"}',
            "index.json": json.dumps(index).encode(),
        }
        files.update({f"blobs/sha256/{d.split(':')[1]}": b for d, b in blobs.items()})
        for fname, data in files.items():
            info = tarfile.TarInfo(fname)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


def test_normalize_image_names() -> None:
    assert normalize_image("busybox") == "docker.io/library/busybox:latest"
    assert normalize_image("nginx:1.25") == "docker.io/library/nginx:1.25"
    assert normalize_image("bitnami/redis") == "docker.io/bitnami/redis:latest"
    assert normalize_image("harbor.example.com/app/web:2") == "harbor.example.com/app/web:2"
    assert normalize_image("localhost:5000/x") == "localhost:5000/x:latest"


def test_unknown_image_resolves_to_the_host_root_with_a_note(tmp_path: Path) -> None:
    resolved = ImageStore(tmp_path).resolve("nginx:1.25")
    assert resolved.from_host and resolved.layers is None
    assert resolved.note.startswith('Image "nginx:1.25" is not in the node\'s image store')


def test_import_refuses_a_layer_that_escapes_through_a_symlink(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    evil = layer([("evil", f"->{outside}"), ("evil/pwned", b"x")])
    archive = oci_archive(tmp_path / "evil.tar", "example.com/evil:1", [evil], {})
    with pytest.raises(ImageError, match="through the symlink"):
        ImageStore(tmp_path / "data").import_oci_archive(archive)
    assert list(outside.iterdir()) == []
    assert ImageStore(tmp_path / "data").images() == []


def _real(path: str) -> bytes:
    return Path(os.path.realpath(path)).read_bytes()


@requires_root  # whiteouts are character devices and trusted.* xattrs
def test_import_translates_whiteouts_for_overlayfs(tmp_path: Path) -> None:
    base = layer([("etc", None), ("etc/a.txt", b"a"), ("etc/b.txt", b"b"), ("opt/x/old", b"o")])
    top = layer(
        [("etc/.wh.a.txt", b""), ("opt/x/.wh..wh..opq", b""), ("opt/x/new", b"n")], compress=True
    )
    archive = oci_archive(tmp_path / "img.tar", "example.com/demo:1", [base, top], {"Env": ["A=1"]})
    store = ImageStore(tmp_path / "data")
    assert store.import_oci_archive(archive) == ["example.com/demo:1"]
    assert store.import_oci_archive(archive) == ["example.com/demo:1"]  # re-import is a no-op
    resolved = store.resolve("example.com/demo:1")
    assert resolved.layers is not None and len(resolved.layers) == 2
    assert resolved.config == {"Env": ["A=1"]}
    merged = tmp_path / "merged"
    merged.mkdir()
    mounts.mount(
        "overlay",
        merged,
        "overlay",
        mounts.MS_RDONLY,
        "lowerdir=" + ":".join(map(str, resolved.layers)),
    )
    try:
        assert sorted(os.listdir(merged / "etc")) == ["b.txt"]
        assert sorted(os.listdir(merged / "opt" / "x")) == ["new"]
    finally:
        mounts.umount(merged)
    assert mounts.mounts_under(tmp_path) == []


@requires_runc
@pytest.mark.root
@pytest.mark.skipif(
    not Path("/lib64/ld-linux-x86-64.so.2").exists(),
    reason="the test image is built from an x86-64 glibc host's /bin/sh",
)
async def test_container_runs_from_an_imported_image(runc_node: Node, tmp_path: Path) -> None:
    # A minimal image: the host's dash and the two libraries it needs, nothing else.
    files = layer(
        [
            ("bin/sh", _real("/bin/sh")),
            ("lib/x86_64-linux-gnu/libc.so.6", _real("/lib/x86_64-linux-gnu/libc.so.6")),
            ("lib64/ld-linux-x86-64.so.2", _real("/lib64/ld-linux-x86-64.so.2")),
            ("etc/only-in-image", b"yes"),
        ]
    )
    config = {
        "Env": ["FROM_IMAGE=yes", "PATH=/bin"],
        "Cmd": [
            "/bin/sh",
            "-c",
            "echo $FROM_IMAGE; read x < /etc/only-in-image; echo $x; test -e /usr && exit 9; exit 0",
        ],
    }
    assert runc_node.images is not None
    runc_node.images.import_oci_archive(
        oci_archive(tmp_path / "img.tar", "example.com/tiny:1", [files], config)
    )
    pod = {
        "metadata": {"name": "tiny", "namespace": "default", "uid": "tiny-uid"},
        "spec": {"containers": [{"name": "app", "image": "example.com/tiny:1"}]},
    }
    volumes, _ = await runc_node.prepare_volumes(pod, VolumeSources())
    sb = await PodSandbox.create(pod, node=runc_node, volumes=volumes)
    started = await sb.start_container("app")
    assert not started.image.from_host
    status = await sb.wait_container("app", within=30)
    lines = [line.split(" ", 3)[3] for line in started.log_path.read_text().splitlines()]
    assert (status.exit_code, lines) == (0, ["yes", "yes"])
    await sb.teardown()
