"""configMap and secret volumes: the object's keys as files, written by the atomic writer.

Payload rules follow pkg/volume/configmap and pkg/volume/secret (``MakePayload``): every
key without ``items``; only the listed keys with ``items`` (a missing one fails unless
``optional``); ``defaultMode`` 0644, per-item ``mode``. Secret volumes sit on a tmpfs so
their bytes never reach the node's disk. Both are always mounted read-only.
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from pathlib import Path

from kubeling.agent.errors import VolumeSetupError
from kubeling.agent.volumes.atomic import AtomicWriter, FileProjection, Payload
from kubeling.agent.volumes.base import (
    PreparedVolume,
    VolumeSources,
    ensure_tmpfs,
    plugin_dir,
    subpaths_dir,
)
from kubeling.machinery.types import Obj

DEFAULT_MODE = 0o644


def config_map_data(cm: Obj) -> dict[str, bytes]:
    out = {k: str(v).encode() for k, v in (cm.get("data") or {}).items()}
    for k, v in (cm.get("binaryData") or {}).items():
        out[k] = base64.b64decode(v)
    return out


def secret_data(secret: Obj) -> dict[str, bytes]:
    out = {k: base64.b64decode(v) for k, v in (secret.get("data") or {}).items()}
    # stringData is write-only in the API; accept it for objects built by hand in tests.
    for k, v in (secret.get("stringData") or {}).items():
        out[k] = str(v).encode()
    return out


def make_payload(
    data: dict[str, bytes],
    items: list[Obj] | None,
    *,
    default_mode: int | None,
    optional: bool,
    missing_key_message: Callable[[str], str],
) -> Payload:
    """upstream's MakePayload: keys (or the listed items) to file projections."""
    mode = DEFAULT_MODE if default_mode is None else default_mode
    payload: Payload = {}
    if not items:
        for key, value in data.items():
            payload[key] = FileProjection(value, mode)
        return payload
    for item in items:
        key = item.get("key", "")
        if key not in data:
            if optional:
                continue
            raise ValueError(missing_key_message(key))
        item_mode = item.get("mode")
        payload[item.get("path") or key] = FileProjection(
            data[key], mode if item_mode is None else item_mode
        )
    return payload


def config_map_payload(source: Obj, sources: VolumeSources) -> Payload:
    """Raises ``ValueError`` with upstream's text for a missing object or key."""
    name = source.get("name", "")
    optional = bool(source.get("optional"))
    cm = sources.config_maps.get(name)
    if cm is None:
        if optional:
            return {}
        raise ValueError(f'configmap "{name}" not found')
    return make_payload(
        config_map_data(cm),
        source.get("items"),
        default_mode=source.get("defaultMode"),
        optional=optional,
        missing_key_message=lambda k: f"configmap references non-existent config key: {k}",
    )


def secret_payload(
    source: Obj, sources: VolumeSources, *, name_field: str = "secretName"
) -> Payload:
    name = source.get(name_field, "")
    optional = bool(source.get("optional"))
    secret = sources.secrets.get(name)
    if secret is None:
        if optional:
            return {}
        raise ValueError(f'secret "{name}" not found')
    return make_payload(
        secret_data(secret),
        source.get("items"),
        default_mode=source.get("defaultMode"),
        optional=optional,
        missing_key_message=lambda k: f"references non-existent secret key: {k}",
    )


def prepare_atomic(
    name: str,
    kind: str,
    path: Path,
    project: Callable[[VolumeSources], Payload],
    sources: VolumeSources,
    *,
    on_tmpfs: bool,
    pod_dir: Path,
) -> PreparedVolume:
    """Shared by every ``..data`` volume: compute the payload first, then touch the disk."""
    try:
        payload = project(sources)
    except ValueError as exc:
        raise VolumeSetupError(name, str(exc)) from exc
    if on_tmpfs:
        ensure_tmpfs(path)
    else:
        path.mkdir(parents=True, exist_ok=True)
    volume = PreparedVolume(
        name=name,
        kind=kind,
        path=path,
        read_only=True,
        owned_dir=path,
        writer=AtomicWriter(path),
        project=project,
        subpath_dir=subpaths_dir(pod_dir, name),
        subpath_on_tmpfs=on_tmpfs,
    )
    try:
        volume.update(payload)
    except ValueError as exc:
        raise VolumeSetupError(name, str(exc), retryable=False) from exc
    return volume


def prepare_config_map(
    name: str, source: Obj, *, pod_dir: Path, sources: VolumeSources
) -> PreparedVolume:
    return prepare_atomic(
        name,
        "configMap",
        plugin_dir(pod_dir, "configmap", name),
        lambda s: config_map_payload(source, s),
        sources,
        on_tmpfs=False,
        pod_dir=pod_dir,
    )


def prepare_secret(
    name: str, source: Obj, *, pod_dir: Path, sources: VolumeSources
) -> PreparedVolume:
    return prepare_atomic(
        name,
        "secret",
        plugin_dir(pod_dir, "secret", name),
        lambda s: secret_payload(source, s),
        sources,
        on_tmpfs=True,
        pod_dir=pod_dir,
    )
