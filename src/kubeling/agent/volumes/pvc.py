"""persistentVolumeClaim: bind the bound PersistentVolume's storage into the pod.

The caller resolves claim → PV through the API; this module only turns the PV's source
into a host path: ``hostPath`` and ``local`` volumes are bound directly (the directory must
exist: provisioners create it), ``nfs`` volumes are mounted with the PV's
``mountOptions``. Other sources fail clearly.

Failures read as the kubelet's: a claim with no bound volume is never mounted at all
(upstream's volume manager fails to *process* it, ``error processing PVC <ns>/<claim>: PVC
is not bound``, reported once for the pod by ``prepare_pod_volumes``), and a set-up
failure of a bound claim names the PersistentVolume, as ``MountVolume.SetUp failed for
volume "<pv>"`` does upstream.
"""

from __future__ import annotations

from pathlib import Path

from kubeling.agent.errors import VolumeSetupError
from kubeling.agent.volumes.base import PreparedVolume
from kubeling.agent.volumes.hostpath import check_host_path
from kubeling.agent.volumes.nfs import prepare_nfs
from kubeling.machinery.types import Obj

NOT_BOUND = "PVC is not bound"


class ClaimNotBoundError(VolumeSetupError):
    """The claim has no bound PersistentVolume yet: the volume cannot even be processed."""

    def __init__(self, volume: str, *, claim: str, reason: str) -> None:
        super().__init__(volume, reason)
        self.claim = claim


class ClaimSetUpError(VolumeSetupError):
    """Setting up the claim's PersistentVolume failed; events name the PV."""

    def __init__(self, volume: str, message: str, *, pv: str, retryable: bool = True) -> None:
        super().__init__(volume, message, retryable=retryable)
        self.pv = pv

    @property
    def event_message(self) -> str:
        return f'MountVolume.SetUp failed for volume "{self.pv}" : {self.message}'


def prepare_claim(
    name: str,
    source: Obj,
    *,
    pod_dir: Path,
    claims: dict[str, Obj],
    claim_errors: dict[str, str] | None = None,
) -> PreparedVolume:
    """``claims``: claimName → bound PV; ``claim_errors``: claimName → why it has none, in
    upstream's words (default ``PVC is not bound``)."""
    claim_errors = claim_errors or {}
    claim = source.get("claimName", "")
    pv = claims.get(claim)
    if pv is None:
        raise ClaimNotBoundError(name, claim=claim, reason=claim_errors.get(claim, NOT_BOUND))
    pv_name = (pv.get("metadata") or {}).get("name", "")
    try:
        return _prepare_bound(name, source, pv, pod_dir=pod_dir)
    except ClaimSetUpError:
        raise
    except VolumeSetupError as exc:
        raise ClaimSetUpError(name, exc.message, pv=pv_name, retryable=exc.retryable) from exc


def _prepare_bound(name: str, source: Obj, pv: Obj, *, pod_dir: Path) -> PreparedVolume:
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
        f"persistent volume {pv.get('metadata', {}).get('name', '')} has an unsupported "
        f"source ({kinds})",
        retryable=False,
    )
