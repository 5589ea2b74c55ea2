"""emptyDir: a directory born with the pod, shared by its containers, gone with the pod.

``medium: Memory`` is a tmpfs sized by the smaller of ``sizeLimit`` and the pod's memory
limit (upstream's rule). The directory outlives container restarts because it belongs to
the pod directory, not to any container.
"""

from __future__ import annotations

import os
from pathlib import Path

from kubeling.agent.errors import VolumeSetupError
from kubeling.agent.quantity import to_bytes
from kubeling.agent.volumes.base import PreparedVolume, chmod_exact, ensure_tmpfs, plugin_dir
from kubeling.machinery.types import Obj


def pod_memory_limit(pod: Obj) -> int | None:
    """Sum of container memory limits, or None when any container is unlimited."""
    total = 0
    for c in (pod.get("spec") or {}).get("containers") or []:
        limit = ((c.get("resources") or {}).get("limits") or {}).get("memory")
        if limit is None:
            return None
        total += to_bytes(limit)
    return total or None


def prepare_empty_dir(name: str, source: Obj, *, pod: Obj, pod_dir: Path) -> PreparedVolume:
    path = plugin_dir(pod_dir, "empty-dir", name)
    medium = source.get("medium") or ""
    if medium not in ("", "Memory"):
        # TODO(#5): HugePages media are not supported; they fail the mount clearly.
        raise VolumeSetupError(name, f"unsupported emptyDir medium {medium!r}", retryable=False)
    if medium == "Memory":
        size: int | None = None
        try:
            if source.get("sizeLimit") is not None:
                size = to_bytes(source["sizeLimit"])
            limit = pod_memory_limit(pod)
        except ValueError as exc:
            raise VolumeSetupError(name, str(exc), retryable=False) from exc
        if limit is not None:
            size = limit if size is None else min(size, limit)
        ensure_tmpfs(path, size_bytes=size, mode=0o777)
    else:
        # A disk sizeLimit is enforced by the pod worker, which evicts the pod as upstream.
        path.mkdir(parents=True, exist_ok=True)
    fs_group = ((pod.get("spec") or {}).get("securityContext") or {}).get("fsGroup")
    if fs_group is not None and os.geteuid() == 0:
        # upstream's SetVolumeOwnership: the group becomes fsGroup and the setgid bit makes
        # new files inherit it (hostPath volumes get no such treatment: B16).
        os.chown(path, -1, int(fs_group))
        chmod_exact(path, 0o2777)
    else:
        chmod_exact(path, 0o777)
    return PreparedVolume(name=name, kind="emptyDir", path=path, owned_dir=path)
