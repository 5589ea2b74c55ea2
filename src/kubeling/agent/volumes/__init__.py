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
from kubeling.agent.volumes.pvc import ClaimNotBoundError, prepare_claim
from kubeling.agent.volumes.subpath import SubPathDirectoryError, resolve_sub_path
from kubeling.machinery.types import Obj

__all__ = [
    "AtomicWriter",
    "FileProjection",
    "Payload",
    "PreparedVolume",
    "SubPathDirectoryError",
    "TokenSource",
    "UnprocessedVolumesError",
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
            name,
            volume["persistentVolumeClaim"],
            pod_dir=pod_dir,
            claims=sources.claims,
            claim_errors=sources.claim_errors,
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
    """Every volume of the pod: the ones that worked, and one error per one that did not.

    Claims with no bound volume make one error for the pod, the volume manager's (see
    ``UnprocessedVolumesError``); a volume no container mounts is skipped there, as the
    kubelet's populator skips it, so an unused unbound claim blocks nothing.
    """
    prepared: dict[str, PreparedVolume] = {}
    errors: list[VolumeSetupError] = []
    unbound: list[ClaimNotBoundError] = []
    used = mounted_volume_names(pod)
    for volume in (pod.get("spec") or {}).get("volumes") or []:
        try:
            prepared[volume["name"]] = prepare_volume(
                volume, pod=pod, pod_dir=pod_dir, sources=sources
            )
        except ClaimNotBoundError as exc:
            if volume["name"] in used:
                unbound.append(exc)
        except VolumeSetupError as exc:
            errors.append(exc)
    if unbound:
        namespace = (pod.get("metadata") or {}).get("namespace") or "default"
        failed = sorted({e.volume for e in errors} | {e.volume for e in unbound})
        errors.append(
            UnprocessedVolumesError(
                unmounted=[v for v in failed if v in used],
                unprocessed=sorted(e.volume for e in unbound),
                causes=[
                    f"error processing PVC {namespace}/{e.claim}: {e.message}" for e in unbound
                ],
            )
        )
    return prepared, errors


def mounted_volume_names(pod: Obj) -> set[str]:
    """The volumes some container mounts (upstream's ``GetPodVolumeNames``)."""
    spec = pod.get("spec") or {}
    names: set[str] = set()
    for c in (
        (spec.get("initContainers") or [])
        + (spec.get("containers") or [])
        + (spec.get("ephemeralContainers") or [])
    ):
        names.update(m.get("name", "") for m in c.get("volumeMounts") or [])
        names.update(d.get("name", "") for d in c.get("volumeDevices") or [])
    return names


class UnprocessedVolumesError(VolumeSetupError):
    """Volumes the kubelet's volume manager could not even process (a claim that is not
    bound): one ``FailedMount`` for the pod, ``Unable to attach or mount volumes: ...``."""

    def __init__(self, *, unmounted: list[str], unprocessed: list[str], causes: list[str]):
        super().__init__(",".join(unprocessed), "; ".join(causes))
        self.unmounted = unmounted
        self.unprocessed = unprocessed

    @property
    def event_message(self) -> str:
        # Go's %v of a []string: "[a b]"; kubeling has no attachable volumes, so the
        # unattached list is always empty.
        return (
            f"Unable to attach or mount volumes: unmounted volumes=[{' '.join(self.unmounted)}]"
            f", unattached volumes=[], failed to process volumes=[{' '.join(self.unprocessed)}]"
            f": {self.message}"
        )


def teardown_pod_volumes(pod_dir: Path) -> None:
    """Unmount and delete every volume under ``pod_dir``, whatever state set-up reached,
    and the subPath copies kept beside them."""
    teardown_dir(pod_dir / "volume-subpaths")
    teardown_dir(pod_dir / "volumes")
