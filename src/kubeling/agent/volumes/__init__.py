"""Pod volumes on the node: one preparer per volume source, all idempotent.

``prepare_volume`` turns one ``pod.spec.volumes[]`` entry into a ``PreparedVolume`` (a host
path to bind, its read-only rule, and how to refresh and remove it) or raises
``VolumeSetupError`` with upstream's message for a ``FailedMount`` event.
``prepare_pod_volumes`` does all of a pod's volumes, keeping going past failures so every
broken volume is reported in one sync, as the kubelet's volume manager does.
"""

from __future__ import annotations

from pathlib import Path

from kubeling.agent.errors import VolumeSetupError
from kubeling.agent.volumes.atomic import AtomicWriter, FileProjection, Payload
from kubeling.agent.volumes.base import PreparedVolume, TokenSource, VolumeSources, teardown_dir
from kubeling.agent.volumes.configmap_secret import prepare_config_map, prepare_secret
from kubeling.agent.volumes.emptydir import prepare_empty_dir
from kubeling.agent.volumes.hostpath import prepare_host_path
from kubeling.agent.volumes.nfs import prepare_nfs
from kubeling.agent.volumes.projected import prepare_downward_api, prepare_projected
from kubeling.agent.volumes.pvc import prepare_claim
from kubeling.agent.volumes.subpath import resolve_sub_path
from kubeling.machinery.types import Obj

__all__ = [
    "AtomicWriter",
    "FileProjection",
    "Payload",
    "PreparedVolume",
    "TokenSource",
    "VolumeSetupError",
    "VolumeSources",
    "prepare_pod_volumes",
    "prepare_volume",
    "resolve_sub_path",
    "teardown_pod_volumes",
]


def prepare_volume(
    volume: Obj, *, pod: Obj, pod_dir: Path, sources: VolumeSources
) -> PreparedVolume:
    name = volume.get("name", "")
    if "emptyDir" in volume:
        return prepare_empty_dir(name, volume["emptyDir"] or {}, pod=pod, pod_dir=pod_dir)
    if "hostPath" in volume:
        return prepare_host_path(name, volume["hostPath"])
    if "configMap" in volume:
        return prepare_config_map(name, volume["configMap"], pod_dir=pod_dir, sources=sources)
    if "secret" in volume:
        return prepare_secret(name, volume["secret"], pod_dir=pod_dir, sources=sources)
    if "projected" in volume:
        return prepare_projected(
            name, volume["projected"], pod=pod, pod_dir=pod_dir, sources=sources
        )
    if "downwardAPI" in volume:
        return prepare_downward_api(
            name, volume["downwardAPI"], pod=pod, pod_dir=pod_dir, sources=sources
        )
    if "persistentVolumeClaim" in volume:
        return prepare_claim(
            name, volume["persistentVolumeClaim"], pod_dir=pod_dir, claims=sources.claims
        )
    if "nfs" in volume:
        # Inline nfs volumes carry no mountOptions upstream; only PVs do.
        return prepare_nfs(name, volume["nfs"], pod_dir=pod_dir)
    kinds = [k for k in volume if k != "name"]
    raise VolumeSetupError(
        name,
        f"volume type {', '.join(kinds) or '(none)'} is not supported by kubeling",
        retryable=False,
    )


def prepare_pod_volumes(
    pod: Obj, *, pod_dir: Path, sources: VolumeSources
) -> tuple[dict[str, PreparedVolume], list[VolumeSetupError]]:
    """Every volume of the pod: the ones that worked, and one error per one that did not."""
    prepared: dict[str, PreparedVolume] = {}
    errors: list[VolumeSetupError] = []
    for volume in (pod.get("spec") or {}).get("volumes") or []:
        try:
            prepared[volume["name"]] = prepare_volume(
                volume, pod=pod, pod_dir=pod_dir, sources=sources
            )
        except VolumeSetupError as exc:
            errors.append(exc)
    return prepared, errors


def teardown_pod_volumes(pod_dir: Path) -> None:
    """Unmount and delete every volume under ``pod_dir``, whatever state set-up reached."""
    teardown_dir(pod_dir / "volumes")
