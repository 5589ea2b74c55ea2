"""persistentVolumeClaim: bind the bound PersistentVolume's storage into the pod.

The caller resolves claim → PV through the API; this module only turns the PV's source
into a host path: ``hostPath`` and ``local`` volumes are bound directly (the directory must
exist: provisioners create it), ``nfs`` volumes are mounted with the PV's
``mountOptions``. Other sources fail clearly.
"""

from __future__ import annotations

from pathlib import Path

from kubeling.agent.errors import VolumeSetupError
from kubeling.agent.volumes.base import PreparedVolume
from kubeling.agent.volumes.hostpath import check_host_path
from kubeling.agent.volumes.nfs import prepare_nfs
from kubeling.machinery.types import Obj


def prepare_claim(
    name: str, source: Obj, *, pod_dir: Path, claims: dict[str, Obj]
) -> PreparedVolume:
    claim = source.get("claimName", "")
    pv = claims.get(claim)
    if pv is None:
        raise VolumeSetupError(name, f'persistentvolumeclaim "{claim}" not found or not bound')
    spec = pv.get("spec") or {}
    forced_ro = bool(source.get("readOnly"))
    if "hostPath" in spec or "local" in spec:
        src = spec.get("hostPath") or spec.get("local") or {}
        path = src.get("path", "")
        try:
            check_host_path(path, "Directory" if "local" in spec else (src.get("type") or ""))
        except ValueError as exc:
            raise VolumeSetupError(name, str(exc)) from exc
        return PreparedVolume(
            name=name, kind="persistentVolumeClaim", path=Path(path), read_only=forced_ro
        )
    if "nfs" in spec:
        vol = prepare_nfs(
            name,
            dict(spec["nfs"], readOnly=forced_ro or spec["nfs"].get("readOnly", False)),
            pod_dir=pod_dir,
            mount_options=spec.get("mountOptions"),
        )
        vol.kind = "persistentVolumeClaim"
        return vol
    kinds = ", ".join(
        k
        for k in spec
        if isinstance(spec[k], dict) and k not in ("capacity", "claimRef", "nodeAffinity")
    )
    raise VolumeSetupError(
        name,
        f"persistent volume {pv.get('metadata', {}).get('name', '')} has an unsupported source ({kinds})",
        retryable=False,
    )
