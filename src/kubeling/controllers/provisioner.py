"""The built-in ``kubeling.io/local-path`` provisioner and the default StorageClass.

It speaks the external-provisioner protocol (sig-storage-lib-external-provisioner's), so the
same hand-off serves it and any provisioner someone runs beside kubeling: the binder
annotates a claim with ``volume.kubernetes.io/storage-provisioner: kubeling.io/local-path``
(for a WaitForFirstConsumer class only once the scheduler wrote
``volume.kubernetes.io/selected-node``), this controller creates one directory per volume and a
PersistentVolume pre-bound to the claim, and the binder completes the bind. When a volume it
made is ``Released`` with reclaim policy ``Delete`` it removes, keeps or archives the
directory (class parameter ``onDelete``) and deletes the PersistentVolume, as an external
deleter does.

As upstream, a WaitForFirstConsumer claim is provisioned only once the scheduler picked a
node: a pod that sets ``spec.nodeName`` itself skips the scheduler, nothing writes
``selected-node``, and the claim stays Pending (field report B12; upstream's docs say not to
use ``nodeName`` with such classes). kubeling keeps that behaviour rather than guess a node.

Design choices:

- No helper pod: the directory is made by this process, which runs on the node it
  provisions for. A claim whose selected node is another node is left to that node's
  provisioner. Directories are ``<data-dir>/storage/<pv>_<namespace>_<claim>`` (rancher's
  local-path layout) or what the ``pathPattern`` parameter renders to; a rendered path that
  is absolute, contains ``..`` or resolves outside the storage root (through a symlink) is
  refused, and deletion re-checks the same before removing anything.
- Mode 0777, like rancher's ``mkdir -m 0777``, so any container user can write the volume.
  Ownership is the provisioner's user: root when kubeling runs as root (the usual case with
  the runc runtime); kubeling does not chown to anyone else.
- The PersistentVolume source is ``hostPath`` of type ``Directory`` (the node agent
  bind-mounts it), pinned with ``nodeAffinity`` to the node by ``kubernetes.io/hostname``.
  rancher uses ``DirectoryOrCreate``; ``Directory`` makes a vanished volume directory fail
  the mount visibly instead of silently starting empty.
"""

from __future__ import annotations

import asyncio
import logging
import os
import pathlib
import re
import shutil
from typing import TYPE_CHECKING, Any, Final

from kubeling.client.controller import Controller
from kubeling.client.events import NORMAL, WARNING, EventRecorder
from kubeling.client.informer import SharedInformerFactory, object_key
from kubeling.client.interface import Client
from kubeling.machinery import objects
from kubeling.machinery.errors import AlreadyExists, NotFound, PermanentError, RetryableError
from kubeling.machinery.objects import claim_class, claim_reference
from kubeling.machinery.resources import PERSISTENTVOLUMECLAIMS, PERSISTENTVOLUMES, STORAGECLASSES
from kubeling.machinery.types import Obj

if TYPE_CHECKING:
    from kubeling.controllers.manager import ControllerContext

log = logging.getLogger(__name__)

PROVISIONER: Final = "kubeling.io/local-path"
DEFAULT_CLASS_NAME: Final = "local-path"

ANN_STORAGE_PROVISIONER: Final = "volume.kubernetes.io/storage-provisioner"
ANN_BETA_STORAGE_PROVISIONER: Final = "volume.beta.kubernetes.io/storage-provisioner"
ANN_SELECTED_NODE: Final = "volume.kubernetes.io/selected-node"
ANN_PROVISIONED_BY: Final = "pv.kubernetes.io/provisioned-by"
HOSTNAME_LABEL: Final = "kubernetes.io/hostname"

PARAM_PATH_PATTERN: Final = "pathPattern"
PARAM_ON_DELETE: Final = "onDelete"
ON_DELETE_MODES: Final = ("delete", "retain", "archive")
ARCHIVE_PREFIX: Final = "archived-"
VOLUME_DIR_MODE: Final = 0o777

WAIT_FOR_FIRST_CONSUMER: Final = "WaitForFirstConsumer"

_CLAIM = "claim"
_VOLUME = "volume"


class ProvisioningError(Exception):
    """Provisioning cannot succeed as asked; ``permanent`` ones are not retried until the
    claim or its class changes."""

    def __init__(self, message: str, *, permanent: bool = False) -> None:
        super().__init__(message)
        self.permanent = permanent


# -- helpers shared with the tests and the expansion controller ------------------------------


def claim_provisioner(claim: Obj) -> str:
    """The provisioner the binder asked for (the GA key wins over the beta one)."""
    ann = objects.annotations(claim)
    if ANN_STORAGE_PROVISIONER in ann:
        return ann[ANN_STORAGE_PROVISIONER]
    return ann.get(ANN_BETA_STORAGE_PROVISIONER, "")


_GO_FIELD = re.compile(r"\{\{-?\s*(.*?)\s*-?\}\}")
_DOLLAR_FIELD = re.compile(r"\$\{\s*(\.[A-Za-z0-9_.\-/]+)\s*\}")
_INDEX_CALL = re.compile(r'^index\s+(\.PVC\.(?:Labels|Annotations))\s+"([^"]*)"$')


def _lookup(expr: str, *, pv_name: str, claim: Obj) -> str:
    """One template expression: ``.PVName``, ``.PVC.Namespace``, ``.PVC.Name``,
    ``.PVC.Labels.<key>``, ``.PVC.Annotations.<key>`` or ``index .PVC.Labels "<key>"``
    (rancher's Go-template names); nfs-subdir's lower-case ``.PVC.namespace`` style too."""
    m = _INDEX_CALL.match(expr)
    if m:
        expr = f"{m.group(1)}.{m.group(2)}"
    meta = objects.meta(claim)
    if expr == ".PVName":
        return pv_name
    head, _, rest = expr.partition(".PVC.")
    if head or not rest:
        raise ProvisioningError(f"pathPattern: unknown field {expr!r}", permanent=True)
    field, _, key = rest.partition(".")
    lowered = field.lower()
    if lowered in ("namespace", "name") and not key:
        return str(meta.get(lowered) or "")
    if lowered in ("labels", "annotations") and key:
        return str((meta.get(lowered) or {}).get(key, ""))
    raise ProvisioningError(f"pathPattern: unknown field {expr!r}", permanent=True)


def render_path_pattern(pattern: str, *, pv_name: str, claim: Obj) -> str:
    """The relative directory a ``pathPattern`` names for this claim (not yet checked)."""

    def sub(m: re.Match[str]) -> str:
        return _lookup(m.group(1).strip(), pv_name=pv_name, claim=claim)

    return _DOLLAR_FIELD.sub(sub, _GO_FIELD.sub(sub, pattern))


def volume_relative_path(sc: Obj, *, pv_name: str, claim: Obj) -> str:
    """Where under the storage root the volume lives, checked to stay inside it."""
    pattern = (sc.get("parameters") or {}).get(PARAM_PATH_PATTERN, "")
    if not pattern:
        return f"{pv_name}_{objects.namespace(claim)}_{objects.name(claim)}"
    rendered = render_path_pattern(pattern, pv_name=pv_name, claim=claim)
    return check_relative_path(rendered)


def check_relative_path(rendered: str) -> str:
    """A clean relative path, or ``ProvisioningError``: no absolute paths, no ``..``."""
    if rendered.startswith("/"):
        raise ProvisioningError(
            f"pathPattern rendered an absolute path {rendered!r}; it must be relative to "
            "the storage directory",
            permanent=True,
        )
    parts = [p for p in rendered.split("/") if p not in ("", ".")]
    if any(p == ".." for p in parts):
        raise ProvisioningError(
            f"pathPattern rendered {rendered!r}, which contains '..'", permanent=True
        )
    if not parts:
        raise ProvisioningError(f"pathPattern rendered an empty path {rendered!r}", permanent=True)
    return "/".join(parts)


def contained_path(root: pathlib.Path, relative: str) -> pathlib.Path:
    """``root/relative`` after resolving symlinks; ``ProvisioningError`` if that leaves
    ``root`` or is ``root`` itself."""
    base = root.resolve()
    target = (base / relative).resolve()
    if target == base or base not in target.parents:
        raise ProvisioningError(
            f"volume path {relative!r} resolves outside the storage directory {base}",
            permanent=True,
        )
    return target


def node_affinity(node: str) -> Obj:
    return {
        "required": {
            "nodeSelectorTerms": [
                {"matchExpressions": [{"key": HOSTNAME_LABEL, "operator": "In", "values": [node]}]}
            ]
        }
    }


def affinity_nodes(pv: Obj) -> list[str]:
    """The hostnames a volume's ``kubernetes.io/hostname In`` affinity allows (empty: any)."""
    terms = ((((pv.get("spec") or {}).get("nodeAffinity") or {}).get("required")) or {}).get(
        "nodeSelectorTerms"
    ) or []
    out: list[str] = []
    for term in terms:
        for expr in term.get("matchExpressions") or []:
            if expr.get("key") == HOSTNAME_LABEL and expr.get("operator") == "In":
                out.extend(expr.get("values") or [])
    return out


def build_volume(
    *,
    claim: Obj,
    sc: Obj,
    pv_name: str,
    path: pathlib.Path,
    node: str,
) -> Obj:
    """The PersistentVolume for ``claim``, pre-bound to it (the binder completes the bind)."""
    spec_in = claim.get("spec") or {}
    requests = (spec_in.get("resources") or {}).get("requests") or {}
    spec: dict[str, Any] = {
        "capacity": {"storage": requests.get("storage", "0")},
        "accessModes": list(spec_in.get("accessModes") or []),
        "persistentVolumeReclaimPolicy": sc.get("reclaimPolicy") or "Delete",
        "storageClassName": claim_class(claim),
        "volumeMode": spec_in.get("volumeMode") or "Filesystem",
        "hostPath": {"path": str(path), "type": "Directory"},
        "claimRef": claim_reference(claim),
    }
    if sc.get("mountOptions"):
        # Copied as every external provisioner does; a bind-mounted directory takes none.
        spec["mountOptions"] = list(sc["mountOptions"])
    if node:
        spec["nodeAffinity"] = node_affinity(node)
    return {
        "apiVersion": "v1",
        "kind": "PersistentVolume",
        "metadata": {"name": pv_name, "annotations": {ANN_PROVISIONED_BY: PROVISIONER}},
        "spec": spec,
    }


def default_storage_class() -> Obj:
    return {
        "apiVersion": "storage.k8s.io/v1",
        "kind": "StorageClass",
        "metadata": {
            "name": DEFAULT_CLASS_NAME,
            "annotations": {objects.DEFAULT_CLASS_ANNOTATION: "true"},
        },
        "provisioner": PROVISIONER,
        "reclaimPolicy": "Delete",
        "volumeBindingMode": "Immediate",
        "allowVolumeExpansion": True,
    }


DEFAULT_CLASS_MARKER: Final = ".default-storage-class-created"


async def ensure_default_storage_class(
    client: Client, *, enabled: bool, data_dir: pathlib.Path | None = None
) -> Obj | None:
    """Create the ``local-path`` default StorageClass unless turned off.

    With ``data_dir`` it is created at the cluster's first start only (a marker file under
    ``data_dir/storage`` remembers it), so a class the user deleted stays deleted across
    restarts; without it, it is created whenever missing. Returns the class written, or
    ``None`` when nothing was created.
    """
    if not enabled:
        return None
    marker = data_dir / "storage" / DEFAULT_CLASS_MARKER if data_dir is not None else None
    if marker is not None and marker.exists():
        return None
    created: Obj | None = None
    try:
        created = await client.create(STORAGECLASSES, default_storage_class())
        log.info("Created the default StorageClass %s (%s).", DEFAULT_CLASS_NAME, PROVISIONER)
    except AlreadyExists:
        log.debug("StorageClass %s already exists.", DEFAULT_CLASS_NAME)
    if marker is not None:
        marker.parent.mkdir(parents=True, exist_ok=True)
        marker.write_text("created\n")
    return created


# -- the controller --------------------------------------------------------------------------


class LocalPathProvisioner(Controller):
    """Provisions and deletes ``kubeling.io/local-path`` volumes on this node."""

    name = "local-path-provisioner"

    def __init__(
        self,
        *,
        client: Client,
        informers: SharedInformerFactory,
        storage_root: pathlib.Path,
        node_name: str = "",
        recorder: EventRecorder | None = None,
        provisioner_name: str = PROVISIONER,
    ) -> None:
        super().__init__()
        self.client = client
        self.storage_root = storage_root
        self.node_name = node_name
        self.provisioner_name = provisioner_name
        # upstream's library names its event source "<provisioner>_<identity>".
        self.recorder = recorder or EventRecorder(
            client, component=f"{provisioner_name}_{node_name or 'kubeling'}"
        )
        self.claims = informers.informer(PERSISTENTVOLUMECLAIMS)
        self.volumes = informers.informer(PERSISTENTVOLUMES)
        self.classes = informers.informer(STORAGECLASSES)
        self.watch(self.claims, key_func=lambda o: f"{_CLAIM}:{object_key(o)}")
        self.watch(self.volumes, key_func=lambda o: f"{_VOLUME}:{object_key(o)}")
        self.classes.add_handler(
            on_add=self._class_changed, on_update=lambda _o, n: self._class_changed(n)
        )
        self.wait_for(self.classes)

    def _class_changed(self, sc: Obj) -> None:
        # A claim may have waited for its class (created after it, or fixed): retry those.
        if sc.get("provisioner") != self.provisioner_name:
            return
        for claim in self.claims.list():
            if claim_class(claim) == objects.name(sc):
                self.enqueue(f"{_CLAIM}:{object_key(claim)}")

    async def reconcile(self, key: str) -> None:
        kind, _, rest = key.partition(":")
        if kind == _CLAIM:
            await self.sync_claim(rest)
        elif kind == _VOLUME:
            await self.sync_volume(rest)

    # -- provisioning ------------------------------------------------------------------------

    def should_provision(self, claim: Obj, sc: Obj | None) -> bool:
        """The library's ``shouldProvision``: annotated for us, no volume yet, and for a
        WaitForFirstConsumer class a selected node."""
        if (claim.get("spec") or {}).get("volumeName"):
            return False
        if objects.deletion_timestamp(claim):
            return False
        if claim_provisioner(claim) != self.provisioner_name:
            return False
        if sc is None or sc.get("volumeBindingMode") != WAIT_FOR_FIRST_CONSUMER:
            return True
        return bool(objects.annotations(claim).get(ANN_SELECTED_NODE))

    async def sync_claim(self, key: str) -> None:
        claim = self.claims.get(key)
        if claim is None or not self.should_provision(claim, None):
            return
        class_name = claim_class(claim)
        sc = self.classes.get(class_name)
        if sc is None:
            raise RetryableError(f'storageClass "{class_name}" not found', delay=5.0)
        if not self.should_provision(claim, sc):
            return
        if sc.get("provisioner") != self.provisioner_name:
            log.debug("Claim %s: class %s is not provisioned by us.", key, class_name)
            return
        selected = objects.annotations(claim).get(ANN_SELECTED_NODE, "")
        if selected and self.node_name and selected != self.node_name:
            # TODO(#3): several nodes need one provisioner per node; claims selected for a
            # node whose kubeling runs no provisioner wait forever today.
            log.debug("Claim %s is for node %s, not %s; skipping.", key, selected, self.node_name)
            return
        node = selected or self.node_name
        pv_name = f"pvc-{objects.uid(claim)}"
        if self.volumes.get(pv_name) is not None or await self._volume_exists(pv_name):
            return
        try:
            self._check_claim(claim, sc)
        except ProvisioningError as e:
            self.recorder.event(claim, WARNING, "ProvisioningFailed", str(e))
            raise PermanentError(f"claim {key}: {e}") from e
        self.recorder.event(
            claim,
            NORMAL,
            "Provisioning",
            f'External provisioner is provisioning volume for claim "{key}"',
        )
        try:
            taken = self._taken_paths(pv_name)
            path = await asyncio.to_thread(self._make_directory, sc, pv_name, claim, taken)
        except ProvisioningError as e:
            self.recorder.event(claim, WARNING, "ProvisioningFailed", str(e))
            if e.permanent:
                raise PermanentError(f"claim {key}: {e}") from e
            raise
        except OSError as e:
            message = f"failed to create volume directory for claim {key}: {e}"
            self.recorder.event(claim, WARNING, "ProvisioningFailed", message)
            raise
        pv = build_volume(claim=claim, sc=sc, pv_name=pv_name, path=path, node=node)
        try:
            await self.client.create(PERSISTENTVOLUMES, pv)
        except AlreadyExists:
            log.debug("Volume %s already exists; claim %s was provisioned before.", pv_name, key)
            return
        log.info("Provisioned volume %s for claim %s at %s.", pv_name, key, path)
        self.recorder.event(
            claim, NORMAL, "ProvisioningSucceeded", f"Successfully provisioned volume {pv_name}"
        )

    async def _volume_exists(self, name: str) -> bool:
        # The informer can lag behind a create this controller made a moment ago; asking
        # the API avoids a second Provisioning round (and its events) for the same claim.
        try:
            await self.client.get(PERSISTENTVOLUMES, name=name)
        except NotFound:
            return False
        return True

    def _check_claim(self, claim: Obj, sc: Obj) -> None:
        spec = claim.get("spec") or {}
        if spec.get("volumeMode") == "Block":
            raise ProvisioningError(
                f"{self.provisioner_name} does not support block volume provisioning",
                permanent=True,
            )
        if spec.get("selector"):
            # rancher's local-path wording
            raise ProvisioningError("claim.Spec.Selector is not supported", permanent=True)
        on_delete = (sc.get("parameters") or {}).get(PARAM_ON_DELETE, "delete")
        if on_delete not in ON_DELETE_MODES:
            raise ProvisioningError(
                f'invalid {PARAM_ON_DELETE} parameter "{on_delete}" in StorageClass '
                f'"{objects.name(sc)}": must be one of {", ".join(ON_DELETE_MODES)}',
                permanent=True,
            )

    def _taken_paths(self, pv_name: str) -> dict[str, str]:
        """Directory → volume, for every other volume this informer knows."""
        taken: dict[str, str] = {}
        for pv in self.volumes.list():
            spec = pv.get("spec") or {}
            path = (spec.get("hostPath") or spec.get("local") or {}).get("path")
            if path and objects.name(pv) != pv_name:
                taken[str(path)] = objects.name(pv)
        return taken

    def _make_directory(
        self, sc: Obj, pv_name: str, claim: Obj, taken: dict[str, str]
    ) -> pathlib.Path:
        relative = volume_relative_path(sc, pv_name=pv_name, claim=claim)
        self.storage_root.mkdir(parents=True, exist_ok=True)
        target = contained_path(self.storage_root, relative)
        if str(target) in taken:
            # A pathPattern can render the same directory for two claims (rancher lets them
            # share it silently); kubeling refuses while another volume still holds it.
            raise ProvisioningError(
                f"volume directory {target} is already used by volume {taken[str(target)]}"
            )
        target.parent.mkdir(parents=True, exist_ok=True)
        # Re-check after creating parents: a symlink placed among them must not lead out.
        target = contained_path(self.storage_root, relative)
        target.mkdir(exist_ok=True)
        os.chmod(target, VOLUME_DIR_MODE)
        return target

    # -- deletion ----------------------------------------------------------------------------

    def should_delete(self, pv: Obj) -> bool:
        """The library's ``shouldDelete``, for volumes this provisioner made on this node."""
        if objects.annotations(pv).get(ANN_PROVISIONED_BY) != self.provisioner_name:
            return False
        if objects.deletion_timestamp(pv):
            return False
        if (pv.get("status") or {}).get("phase") != "Released":
            return False
        if (pv.get("spec") or {}).get("persistentVolumeReclaimPolicy") != "Delete":
            return False
        nodes = affinity_nodes(pv)
        return not (nodes and self.node_name and self.node_name not in nodes)

    async def sync_volume(self, name: str) -> None:
        pv = self.volumes.get(name)
        if pv is None or not self.should_delete(pv):
            return
        spec = pv.get("spec") or {}
        class_name = spec.get("storageClassName") or ""
        sc = self.classes.get(class_name) if class_name else None
        on_delete = ((sc or {}).get("parameters") or {}).get(PARAM_ON_DELETE, "delete")
        try:
            outcome = await asyncio.to_thread(self._remove_directory, pv, on_delete)
        except (ProvisioningError, OSError) as e:
            self.recorder.event(pv, WARNING, "VolumeFailedDelete", str(e))
            if isinstance(e, ProvisioningError) and e.permanent:
                raise PermanentError(f"volume {name}: {e}") from e
            raise
        try:
            await self.client.delete(PERSISTENTVOLUMES, name=name)
        except NotFound:
            pass
        log.info("Deleted volume %s (%s).", name, outcome)

    def _remove_directory(self, pv: Obj, on_delete: str) -> str:
        spec = pv.get("spec") or {}
        path_text = (spec.get("hostPath") or spec.get("local") or {}).get("path", "")
        if on_delete not in ON_DELETE_MODES:
            raise ProvisioningError(
                f'invalid {PARAM_ON_DELETE} parameter "{on_delete}": must be one of '
                f"{', '.join(ON_DELETE_MODES)}",
                permanent=True,
            )
        base = self.storage_root.resolve()
        path = pathlib.Path(path_text)
        # Never remove anything this provisioner could not have made.
        if not path_text or not path.is_absolute() or base not in path.resolve().parents:
            raise ProvisioningError(
                f"refusing to delete {path_text!r}: not under the storage directory {base}",
                permanent=True,
            )
        if not path.exists() and not path.is_symlink():
            return f"directory {path} was already gone"
        if on_delete == "retain":
            return f"directory {path} retained"
        if on_delete == "archive":
            archived = path.with_name(ARCHIVE_PREFIX + path.name)
            n = 1
            while archived.exists():
                n += 1
                archived = path.with_name(f"{ARCHIVE_PREFIX}{path.name}-{n}")
            path.rename(archived)
            return f"directory archived as {archived}"
        if path.is_symlink() or not path.is_dir():
            path.unlink()
        else:
            shutil.rmtree(path)
        return f"directory {path} removed"


def build(ctx: ControllerContext) -> LocalPathProvisioner:
    """``BUILDERS`` entry: the provisioner over the manager's shared informers."""
    options = ctx.options.get("local-path-provisioner") or {}
    if not isinstance(options, dict):
        raise TypeError("local-path-provisioner options must be a mapping")
    storage_root = pathlib.Path(options.get("storage_root") or ctx.data_dir / "storage")
    return LocalPathProvisioner(
        client=ctx.client,
        informers=ctx.informers,
        storage_root=storage_root,
        node_name=ctx.node_name,
        recorder=ctx.recorder(f"{PROVISIONER}_{ctx.node_name or 'kubeling'}"),
    )
