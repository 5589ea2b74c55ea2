"""Images without a registry: OCI (or ``docker save``) archives imported into a local store.

kubeling never pulls. ``import_oci_archive`` unpacks each layer once into
``<data>/images/layers/<digest>/``, translating whiteouts to overlayfs's form (``.wh.x`` →
a 0/0 character device, ``.wh..wh..opq`` → the ``trusted.overlay.opaque`` xattr), so a
container's root is just an overlay of those directories. ``resolve`` answers for any other
image name with the host's root filesystem and says so (``from_host=True`` plus a note the
caller turns into an event): the pod runs, with binaries from the node.

Layer extraction refuses members that would land outside the layer directory, including
through a symlink extracted earlier.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tarfile
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from kubeling.agent.errors import ImageError

REF_ANNOTATIONS = ("io.containerd.image.name", "org.opencontainers.image.ref.name")


def normalize_image(name: str) -> str:
    """``busybox`` → ``docker.io/library/busybox:latest``, as image references resolve."""
    ref = name
    if "@" in ref:
        return ref
    first, _, rest = ref.partition("/")
    if not rest or ("." not in first and ":" not in first and first != "localhost"):
        ref = f"docker.io/{ref}" if rest else f"docker.io/library/{ref}"
    if ":" not in ref.rsplit("/", 1)[-1]:
        ref += ":latest"
    return ref


@dataclass(frozen=True)
class ResolvedImage:
    """What a container's root is built from."""

    name: str
    layers: list[Path] | None
    """Layer directories, top first (overlay ``lowerdir`` order); None = the host's root."""
    config: dict[str, Any] = field(default_factory=dict)
    """The image config's ``config`` section: Env, Entrypoint, Cmd, WorkingDir, User."""
    note: str = ""

    @property
    def from_host(self) -> bool:
        return self.layers is None


class ImageStore:
    def __init__(self, data_dir: Path) -> None:
        self.base = data_dir / "images"
        self.layers_dir = self.base / "layers"
        self.refs_dir = self.base / "refs"

    def _ref_path(self, name: str) -> Path:
        return self.refs_dir / (hashlib.sha256(name.encode()).hexdigest() + ".json")

    def resolve(self, image: str) -> ResolvedImage:
        name = normalize_image(image)
        try:
            record = json.loads(self._ref_path(name).read_text())
        except (OSError, ValueError):
            return ResolvedImage(
                name=name,
                layers=None,
                note=(
                    f'Image "{image}" is not in the node\'s image store (kubeling never pulls); '
                    "the container runs on a read-only view of the node's root filesystem, "
                    "with the kubeling data directory and host secrets masked."
                ),
            )
        layers = [self.layers_dir / d for d in reversed(record["layers"])]
        return ResolvedImage(name=name, layers=layers, config=record.get("config") or {})

    def images(self) -> list[str]:
        if not self.refs_dir.exists():
            return []
        return sorted(json.loads(p.read_text())["name"] for p in self.refs_dir.glob("*.json"))

    def import_oci_archive(self, path: Path) -> list[str]:
        """Import every tagged image of an OCI layout or ``docker save`` tar; their names."""
        try:
            with tarfile.open(path) as archive:
                names = archive.getnames()
                members = {n.lstrip("./"): n for n in names}

                def read(member: str) -> bytes:
                    f = archive.extractfile(members[member.lstrip("./")])
                    if f is None:
                        raise ImageError(f"{member} is not a file in {path}")
                    return f.read()

                def open_blob(member: str) -> IO[bytes]:
                    f = archive.extractfile(members[member.lstrip("./")])
                    if f is None:
                        raise ImageError(f"{member} is not a file in {path}")
                    return f

                if "index.json" in members:
                    images = self._oci_images(json.loads(read("index.json")), read)
                elif "manifest.json" in members:
                    images = self._docker_images(json.loads(read("manifest.json")), read)
                else:
                    raise ImageError(f"{path} is neither an OCI layout nor a docker save archive")
                imported = []
                for name, config, layer_members in images:
                    layer_ids = [self._unpack_layer(member, open_blob) for member in layer_members]
                    self.refs_dir.mkdir(parents=True, exist_ok=True)
                    record = {
                        "name": name,
                        "layers": layer_ids,
                        "config": config.get("config") or {},
                    }
                    tmp = self._ref_path(name).with_suffix(".tmp")
                    tmp.write_text(json.dumps(record))
                    os.rename(tmp, self._ref_path(name))
                    imported.append(name)
                return imported
        except (tarfile.TarError, KeyError, ValueError) as exc:
            raise ImageError(f"cannot import {path}: {exc}") from exc

    @staticmethod
    def _blob(digest: str) -> str:
        algo, _, hexd = digest.partition(":")
        return f"blobs/{algo}/{hexd}"

    def _oci_images(
        self, index: dict[str, Any], read: Any
    ) -> list[tuple[str, dict[str, Any], list[str]]]:
        out = []
        for desc in index.get("manifests") or []:
            ann = desc.get("annotations") or {}
            name = next((ann[k] for k in REF_ANNOTATIONS if k in ann), "")
            manifest = json.loads(read(self._blob(desc["digest"])))
            if "manifests" in manifest:  # a nested index: take its first (platform) manifest
                manifest = json.loads(read(self._blob(manifest["manifests"][0]["digest"])))
            if not name:
                continue
            if ":" not in name and "/" not in name:
                # A bare tag ("latest") names nothing on its own: it needs the containerd name.
                continue
            config = json.loads(read(self._blob(manifest["config"]["digest"])))
            out.append(
                (
                    normalize_image(name),
                    config,
                    [self._blob(layer["digest"]) for layer in manifest["layers"]],
                )
            )
        if not out:
            raise ImageError("the archive's index.json names no image (no ref.name annotation)")
        return out

    @staticmethod
    def _docker_images(
        manifest: list[dict[str, Any]], read: Any
    ) -> list[tuple[str, dict[str, Any], list[str]]]:
        out = []
        for entry in manifest:
            config = json.loads(read(entry["Config"]))
            for tag in entry.get("RepoTags") or []:
                out.append((normalize_image(tag), config, list(entry["Layers"])))
        return out

    def _unpack_layer(self, member: str, open_blob: Any) -> str:
        hasher = hashlib.sha256()
        with open_blob(member) as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                hasher.update(chunk)
        layer_id = hasher.hexdigest()
        dest = self.layers_dir / layer_id
        if dest.exists():
            return layer_id
        self.layers_dir.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{layer_id}.", dir=self.layers_dir))
        try:
            with open_blob(member) as raw, tarfile.open(fileobj=raw, mode="r:*") as layer:
                for entry in layer:
                    _extract_member(layer, entry, tmp)
            os.rename(tmp, dest)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        return layer_id


def _safe_target(root: Path, name: str) -> Path:
    parts = [p for p in name.split("/") if p not in ("", ".")]
    if any(p == ".." for p in parts):
        raise ImageError(f"layer member {name!r} escapes the layer")
    current = root
    for part in parts[:-1]:
        current = current / part
        if current.is_symlink():
            raise ImageError(f"layer member {name!r} goes through the symlink {part!r}")
    return root.joinpath(*parts) if parts else root


def _extract_member(layer: tarfile.TarFile, entry: tarfile.TarInfo, root: Path) -> None:
    target = _safe_target(root, entry.name)
    base = target.name
    if base == ".wh..wh..opq":
        target.parent.mkdir(parents=True, exist_ok=True)
        os.setxattr(target.parent, "trusted.overlay.opaque", b"y")
        return
    if base.startswith(".wh."):
        whiteout = target.parent / base[len(".wh.") :]
        target.parent.mkdir(parents=True, exist_ok=True)
        if os.path.lexists(whiteout):
            (shutil.rmtree if whiteout.is_dir() and not whiteout.is_symlink() else os.unlink)(
                whiteout
            )
        os.mknod(whiteout, 0o600 | 0o020000, os.makedev(0, 0))
        return
    if entry.islnk():
        _safe_target(root, entry.linkname)
    if os.path.lexists(target) and not (entry.isdir() and target.is_dir()):
        (shutil.rmtree if target.is_dir() and not target.is_symlink() else os.unlink)(target)
    layer.extract(entry, root, set_attrs=True, numeric_owner=True, filter="fully_trusted")
