"""Pods and the pod-template rules every workload shares.

``default_pod_spec`` and ``validate_pod_spec`` are written once and used by Pods and by the
templates of Deployments, ReplicaSets and StatefulSets, as upstream's ``SetDefaults_PodSpec``
and ``ValidatePodSpec`` are. What only a Pod gets (admission-time service account,
default tolerations, ``status.phase: Pending`` and ``qosClass`` on create, the narrow set
of fields an update may change) lives on ``PodStrategy``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, Final

from kubeling.machinery import field as f
from kubeling.machinery.field import FieldError, Path
from kubeling.machinery.objects import deep_copy
from kubeling.machinery.types import Obj
from kubeling.registry.kinds.base import PrintedStrategy, sub
from kubeling.registry.validation import (
    is_config_map_key,
    is_dns1123_label,
    is_dns1123_subdomain,
    is_relaxed_env_var_name,
    is_valid_port_name,
    is_valid_port_num,
    quantity,
    validate_annotations,
    validate_labels,
    validate_nonnegative,
    validate_quantity,
)

# -- defaults --------------------------------------------------------------------------------

VOLUME_SOURCES: Final = (
    "emptyDir",
    "hostPath",
    "gitRepo",
    "gcePersistentDisk",
    "awsElasticBlockStore",
    "secret",
    "nfs",
    "iscsi",
    "glusterfs",
    "flocker",
    "persistentVolumeClaim",
    "rbd",
    "cinder",
    "cephfs",
    "quobyte",
    "downwardAPI",
    "fc",
    "flexVolume",
    "configMap",
    "azureFile",
    "vsphereVolume",
    "photonPersistentDisk",
    "portworxVolume",
    "azureDisk",
    "storageos",
    "projected",
    "scaleIO",
    "csi",
    "ephemeral",
    "image",
)
"""Pod volume source fields, in the order upstream's ``validateVolumeSource`` visits them
(the second one found is the one reported as "may not specify more than 1 volume type")."""

HOST_PATH_TYPES: Final = (
    "",
    "BlockDevice",
    "CharDevice",
    "Directory",
    "DirectoryOrCreate",
    "File",
    "FileOrCreate",
    "Socket",
)
DEFAULT_MODE: Final = 0o644


def _default_probe(probe: Any) -> None:
    if not isinstance(probe, dict):
        return
    probe.setdefault("timeoutSeconds", 1)
    probe.setdefault("periodSeconds", 10)
    probe.setdefault("successThreshold", 1)
    probe.setdefault("failureThreshold", 3)
    http = probe.get("httpGet")
    if isinstance(http, dict):
        http.setdefault("path", "/")
        http.setdefault("scheme", "HTTP")


def _image_pull_policy(image: str) -> str:
    """Upstream: ``Always`` for ``:latest`` or an untagged image, else ``IfNotPresent``."""
    if "@" in image:
        return "IfNotPresent"
    last = image.rsplit("/", 1)[-1]
    tag = last.rpartition(":")[2] if ":" in last else ""
    return "Always" if tag in ("", "latest") else "IfNotPresent"


def _default_container(c: dict[str, Any]) -> None:
    c.setdefault("terminationMessagePath", "/dev/termination-log")
    c.setdefault("terminationMessagePolicy", "File")
    if not c.get("imagePullPolicy"):
        c["imagePullPolicy"] = _image_pull_policy(str(c.get("image") or ""))
    for port in c.get("ports") or []:
        if isinstance(port, dict) and not port.get("protocol"):
            port["protocol"] = "TCP"
    for ev in c.get("env") or []:
        ref = (ev.get("valueFrom") or {}).get("fieldRef") if isinstance(ev, dict) else None
        if isinstance(ref, dict) and not ref.get("apiVersion"):
            ref["apiVersion"] = "v1"
    resources = c.get("resources")
    if isinstance(resources, dict) and resources.get("limits"):
        # SetDefaults_Pod: a limit without a request requests the limit
        requests = sub(resources, "requests")
        for name, value in resources["limits"].items():
            requests.setdefault(name, value)
    for probe in ("livenessProbe", "readinessProbe", "startupProbe"):
        _default_probe(c.get(probe))


def _default_items(source: dict[str, Any]) -> None:
    for item in source.get("items") or []:
        ref = item.get("fieldRef") if isinstance(item, dict) else None
        if isinstance(ref, dict) and not ref.get("apiVersion"):
            ref["apiVersion"] = "v1"


def default_volume(vol: dict[str, Any]) -> None:
    if not any(vol.get(s) is not None for s in VOLUME_SOURCES):
        # SetDefaults_Volume: a volume with no source is an emptyDir
        vol["emptyDir"] = {}
    if isinstance(vol.get("hostPath"), dict):
        vol["hostPath"].setdefault("type", "")
    for kind in ("secret", "configMap", "downwardAPI", "projected"):
        source = vol.get(kind)
        if isinstance(source, dict):
            source.setdefault("defaultMode", DEFAULT_MODE)
            _default_items(source)
            for proj in source.get("sources") or []:
                if isinstance(proj, dict):
                    for inner in proj.values():
                        if isinstance(inner, dict):
                            _default_items(inner)
                    token = proj.get("serviceAccountToken")
                    if isinstance(token, dict):
                        token.setdefault("expirationSeconds", 3600)
    if isinstance(vol.get("iscsi"), dict):
        vol["iscsi"].setdefault("iscsiInterface", "default")


def default_pod_spec(spec: dict[str, Any]) -> None:
    """``SetDefaults_PodSpec`` plus the nested container and volume defaults."""
    spec.setdefault("dnsPolicy", "ClusterFirst")
    spec.setdefault("restartPolicy", "Always")
    spec.setdefault("terminationGracePeriodSeconds", 30)
    if not isinstance(spec.get("securityContext"), dict):
        spec["securityContext"] = {}
    spec.setdefault("schedulerName", "default-scheduler")
    spec.setdefault("enableServiceLinks", True)
    for c in (spec.get("initContainers") or []) + (spec.get("containers") or []):
        if isinstance(c, dict):
            _default_container(c)
            if spec.get("hostNetwork"):
                # with the host's network a container port is a host port
                for port in c.get("ports") or []:
                    if isinstance(port, dict) and not port.get("hostPort"):
                        port["hostPort"] = port.get("containerPort")
    for vol in spec.get("volumes") or []:
        if isinstance(vol, dict):
            default_volume(vol)


def default_pod_template(template: dict[str, Any]) -> None:
    default_pod_spec(sub(template, "spec"))


# -- validation ------------------------------------------------------------------------------


def _validate_key_to_path(items: list[Any] | None, path: Path) -> list[FieldError]:
    errs: list[FieldError] = []
    for i, item in enumerate(items or []):
        ip = path.index(i)
        if not item.get("key"):
            errs.append(f.required(ip.child("key")))
        errs.extend(_validate_relative_path(item.get("path", ""), ip.child("path")))
        errs.extend(_validate_mode(item.get("mode"), ip.child("mode")))
    return errs


def _validate_relative_path(value: str, path: Path) -> list[FieldError]:
    if not value:
        return [f.required(path)]
    errs = []
    if value.startswith("/"):
        errs.append(f.invalid(path, value, "must be a relative path"))
    if ".." in value.split("/"):
        errs.append(f.invalid(path, value, "must not contain '..'"))
    return errs


def _validate_mode(mode: Any, path: Path) -> list[FieldError]:
    if mode is not None and not (isinstance(mode, int) and 0 <= mode <= 0o777):
        return [
            f.invalid(path, mode, "must be a number between 0 and 0777 (octal), both inclusive")
        ]
    return []


def _validate_source(kind: str, source: Any, path: Path) -> list[FieldError]:
    if not isinstance(source, dict):
        return []
    errs: list[FieldError] = []
    if kind == "hostPath":
        hp = source.get("path", "")
        if not hp:
            errs.append(f.required(path.child("path")))
        elif ".." in hp.split("/"):
            errs.append(f.invalid(path.child("path"), hp, "must not contain '..'"))
        htype = source.get("type", "")
        if htype not in HOST_PATH_TYPES:
            errs.append(f.not_supported(path.child("type"), htype, HOST_PATH_TYPES))
    elif kind == "nfs":
        if not source.get("server"):
            errs.append(f.required(path.child("server")))
        npath = source.get("path", "")
        if not npath:
            errs.append(f.required(path.child("path")))
        elif not npath.startswith("/"):
            errs.append(f.invalid(path.child("path"), npath, "must be an absolute path"))
    elif kind == "secret":
        if not source.get("secretName"):
            errs.append(f.required(path.child("secretName")))
        errs.extend(_validate_mode(source.get("defaultMode"), path.child("defaultMode")))
        errs.extend(_validate_key_to_path(source.get("items"), path.child("items")))
    elif kind == "configMap":
        name = source.get("name", "")
        if not name:
            errs.append(f.required(path.child("name")))
        else:
            errs.extend(f.invalid(path.child("name"), name, m) for m in is_dns1123_subdomain(name))
        errs.extend(_validate_mode(source.get("defaultMode"), path.child("defaultMode")))
        errs.extend(_validate_key_to_path(source.get("items"), path.child("items")))
    elif kind == "persistentVolumeClaim":
        if not source.get("claimName"):
            errs.append(f.required(path.child("claimName")))
    elif kind == "emptyDir":
        if source.get("medium", "") not in ("", "Memory", "HugePages"):
            errs.append(
                f.not_supported(path.child("medium"), source["medium"], ("", "HugePages", "Memory"))
            )
        if source.get("sizeLimit") is not None:
            errs.extend(validate_quantity(source["sizeLimit"], path.child("sizeLimit")))
    elif kind in ("downwardAPI", "projected"):
        errs.extend(_validate_mode(source.get("defaultMode"), path.child("defaultMode")))
    return errs


def validate_volume_sources(
    holder: dict[str, Any], path: Path, *, sources: tuple[str, ...] = VOLUME_SOURCES
) -> list[FieldError]:
    """Exactly one source; the later ones are forbidden, none is "must specify a volume type"."""
    errs: list[FieldError] = []
    found = 0
    for kind in sources:
        if holder.get(kind) is None:
            continue
        if found:
            errs.append(f.forbidden(path.child(kind), "may not specify more than 1 volume type"))
            continue
        found += 1
        errs.extend(_validate_source(kind, holder[kind], path.child(kind)))
    if not found:
        errs.append(f.required(path, "must specify a volume type"))
    return errs


def validate_volumes(volumes: list[Any], path: Path) -> tuple[set[str], list[FieldError]]:
    errs: list[FieldError] = []
    names: set[str] = set()
    for i, vol in enumerate(volumes or []):
        vp = path.index(i)
        errs.extend(validate_volume_sources(vol, vp))
        name = vol.get("name", "")
        if not name:
            errs.append(f.required(vp.child("name")))
        else:
            errs.extend(f.invalid(vp.child("name"), name, m) for m in is_dns1123_label(name))
        if name in names:
            errs.append(f.duplicate(vp.child("name"), name))
        names.add(name)
    return names, errs


def _validate_env(env: list[Any], path: Path) -> list[FieldError]:
    errs: list[FieldError] = []
    for i, ev in enumerate(env or []):
        ep = path.index(i)
        name = ev.get("name", "")
        if not name:
            errs.append(f.required(ep.child("name")))
        else:
            errs.extend(f.invalid(ep.child("name"), name, m) for m in is_relaxed_env_var_name(name))
        value_from = ev.get("valueFrom")
        if value_from is None:
            continue
        vp = ep.child("valueFrom")
        refs = [
            k
            for k in ("fieldRef", "resourceFieldRef", "configMapKeyRef", "secretKeyRef")
            if value_from.get(k) is not None
        ]
        if not refs:
            errs.append(
                f.invalid(
                    vp,
                    "",
                    "must specify one of: `fieldRef`, `resourceFieldRef`, `configMapKeyRef` or "
                    "`secretKeyRef`",
                )
            )
        elif len(refs) > 1:
            errs.append(f.invalid(vp, "", "may not have more than one field specified at a time"))
        elif ev.get("value"):
            errs.append(f.invalid(vp, "", "may not be specified when `value` is not empty"))
        for kind in ("configMapKeyRef", "secretKeyRef"):
            ref = value_from.get(kind)
            if not isinstance(ref, dict):
                continue
            rp = vp.child(kind)
            if not ref.get("name"):
                errs.append(f.required(rp.child("name")))
            key = ref.get("key", "")
            if not key:
                errs.append(f.required(rp.child("key")))
            else:
                errs.extend(f.invalid(rp.child("key"), key, m) for m in is_config_map_key(key))
    return errs


def _validate_resources(resources: dict[str, Any] | None, path: Path) -> list[FieldError]:
    errs: list[FieldError] = []
    resources = resources or {}
    limits = resources.get("limits") or {}
    requests = resources.get("requests") or {}
    for part, values in (("limits", limits), ("requests", requests)):
        for name in sorted(values):
            errs.extend(validate_quantity(values[name], path.child(part).key(name)))
    for name in sorted(requests):
        req, lim = quantity(requests[name]), quantity(limits.get(name))
        if req is not None and lim is not None and lim < req:
            errs.append(
                f.invalid(
                    path.child("requests").key(name),
                    str(req),
                    f"must be less than or equal to {name} limit of {lim}",
                )
            )
    return errs


_PULL_POLICIES: Final = ("Always", "IfNotPresent", "Never")
_PROTOCOLS: Final = ("SCTP", "TCP", "UDP")


def _validate_containers(
    containers: list[Any],
    path: Path,
    *,
    volumes: set[str],
    seen: set[str],
    port_names: set[str],
    for_pod: bool,
) -> list[FieldError]:
    errs: list[FieldError] = []
    for i, c in enumerate(containers):
        cp = path.index(i)
        name = c.get("name", "")
        if not name:
            errs.append(f.required(cp.child("name")))
        else:
            errs.extend(f.invalid(cp.child("name"), name, m) for m in is_dns1123_label(name))
        if name and name in seen:
            errs.append(f.duplicate(cp.child("name"), name))
        seen.add(name)
        image = c.get("image") or ""
        if for_pod and not image:
            errs.append(f.required(cp.child("image")))
        if image and image != image.strip():
            errs.append(
                f.invalid(cp.child("image"), image, "must not have leading or trailing whitespace")
            )
        policy = c.get("imagePullPolicy", "")
        if not policy:
            errs.append(f.required(cp.child("imagePullPolicy")))
        elif policy not in _PULL_POLICIES:
            errs.append(f.not_supported(cp.child("imagePullPolicy"), policy, _PULL_POLICIES))
        tmp = c.get("terminationMessagePolicy", "File")
        if tmp not in ("File", "FallbackToLogsOnError"):
            errs.append(
                f.not_supported(
                    cp.child("terminationMessagePolicy"), tmp, ("FallbackToLogsOnError", "File")
                )
            )
        for j, port in enumerate(c.get("ports") or []):
            pp = cp.child("ports").index(j)
            pname = port.get("name", "")
            if pname:
                errs.extend(
                    f.invalid(pp.child("name"), pname, m) for m in is_valid_port_name(pname)
                )
                if pname in port_names:
                    errs.append(f.duplicate(pp.child("name"), pname))
                port_names.add(pname)
            number = port.get("containerPort")
            if not number:
                errs.append(f.required(pp.child("containerPort")))
            else:
                errs.extend(
                    f.invalid(pp.child("containerPort"), number, m)
                    for m in is_valid_port_num(number)
                )
            if port.get("hostPort"):
                errs.extend(
                    f.invalid(pp.child("hostPort"), port["hostPort"], m)
                    for m in is_valid_port_num(port["hostPort"])
                )
            proto = port.get("protocol", "")
            if not proto:
                errs.append(f.required(pp.child("protocol")))
            elif proto not in _PROTOCOLS:
                errs.append(f.not_supported(pp.child("protocol"), proto, _PROTOCOLS))
        errs.extend(_validate_env(c.get("env") or [], cp.child("env")))
        mount_paths: set[str] = set()
        for j, mnt in enumerate(c.get("volumeMounts") or []):
            mp = cp.child("volumeMounts").index(j)
            mname = mnt.get("name", "")
            if not mname:
                errs.append(f.required(mp.child("name")))
            if mname not in volumes:
                errs.append(f.not_found(mp.child("name"), mname))
            mpath = mnt.get("mountPath", "")
            if not mpath:
                errs.append(f.required(mp.child("mountPath")))
            if mpath in mount_paths:
                errs.append(f.invalid(mp.child("mountPath"), mpath, "must be unique"))
            mount_paths.add(mpath)
            sub_path = mnt.get("subPath", "")
            if sub_path:
                if sub_path.startswith("/"):
                    errs.append(f.invalid(mp.child("subPath"), sub_path, "must be a relative path"))
                if ".." in sub_path.split("/"):
                    errs.append(f.invalid(mp.child("subPath"), sub_path, "must not contain '..'"))
        errs.extend(_validate_resources(c.get("resources"), cp.child("resources")))
    return errs


_RESTART_POLICIES: Final = ("Always", "Never", "OnFailure")
_DNS_POLICIES: Final = ("ClusterFirst", "ClusterFirstWithHostNet", "Default", "None")


def validate_pod_spec(
    spec: dict[str, Any], path: Path, *, for_pod: bool = True
) -> list[FieldError]:
    """``ValidatePodSpec``'s common rules; ``for_pod`` adds what only Pods require (image)."""
    volumes, errs = validate_volumes(spec.get("volumes") or [], path.child("volumes"))
    containers = spec.get("containers") or []
    seen: set[str] = set()
    port_names: set[str] = set()
    if not containers:
        errs.append(f.required(path.child("containers")))
    errs.extend(
        _validate_containers(
            containers,
            path.child("containers"),
            volumes=volumes,
            seen=seen,
            port_names=port_names,
            for_pod=for_pod,
        )
    )
    errs.extend(
        _validate_containers(
            spec.get("initContainers") or [],
            path.child("initContainers"),
            volumes=volumes,
            seen=seen,
            port_names=set(),
            for_pod=for_pod,
        )
    )
    restart = spec.get("restartPolicy", "")
    if not restart:
        errs.append(f.required(path.child("restartPolicy")))
    elif restart not in _RESTART_POLICIES:
        errs.append(f.not_supported(path.child("restartPolicy"), restart, _RESTART_POLICIES))
    dns = spec.get("dnsPolicy", "")
    if not dns:
        errs.append(f.required(path.child("dnsPolicy")))
    elif dns not in _DNS_POLICIES:
        errs.append(f.not_supported(path.child("dnsPolicy"), dns, _DNS_POLICIES))
    errs.extend(validate_labels(spec.get("nodeSelector"), path.child("nodeSelector")))
    sa = spec.get("serviceAccountName", "")
    if sa:
        errs.extend(
            f.invalid(path.child("serviceAccountName"), sa, m) for m in is_dns1123_subdomain(sa)
        )
    for key in ("hostname", "subdomain"):
        value = spec.get(key, "")
        if value:
            errs.extend(f.invalid(path.child(key), value, m) for m in is_dns1123_label(value))
    errs.extend(
        validate_nonnegative(
            spec.get("terminationGracePeriodSeconds"), path.child("terminationGracePeriodSeconds")
        )
    )
    deadline = spec.get("activeDeadlineSeconds")
    if deadline is not None and (not isinstance(deadline, int) or deadline <= 0):
        errs.append(
            f.invalid(
                path.child("activeDeadlineSeconds"),
                deadline,
                "must be between 1 and 2147483647, inclusive",
            )
        )
    return errs


def validate_pod_template(
    template: dict[str, Any] | None, path: Path, *, spec_rules: bool = True
) -> list[FieldError]:
    """``ValidatePodTemplateSpec``: labels, annotations and (unless disabled) the spec."""
    if template is None:
        return [f.required(path)]
    meta = template.get("metadata") or {}
    errs = validate_labels(meta.get("labels"), path.child("labels"))
    errs.extend(validate_annotations(meta.get("annotations"), path.child("annotations")))
    if spec_rules:
        errs.extend(
            validate_pod_spec(template.get("spec") or {}, path.child("spec"), for_pod=False)
        )
    return errs


# -- QoS -------------------------------------------------------------------------------------


def qos_class(spec: dict[str, Any]) -> str:
    """Upstream ``GetPodQOS`` over cpu and memory."""
    requests: dict[str, Any] = {}
    limits: dict[str, Any] = {}
    guaranteed = True
    for c in (spec.get("containers") or []) + (spec.get("initContainers") or []):
        res = c.get("resources") or {}
        for name, value in (res.get("requests") or {}).items():
            q = quantity(value)
            if name in ("cpu", "memory") and q is not None and not q.is_zero():
                requests[name] = requests[name] + q if name in requests else q
        found = set()
        for name, value in (res.get("limits") or {}).items():
            q = quantity(value)
            if name in ("cpu", "memory") and q is not None and not q.is_zero():
                found.add(name)
                limits[name] = limits[name] + q if name in limits else q
        if found != {"cpu", "memory"}:
            guaranteed = False
    if not requests and not limits:
        return "BestEffort"
    same = requests.keys() == limits.keys() and all(requests[k] == limits[k] for k in requests)
    if guaranteed and same:
        return "Guaranteed"
    return "Burstable"


# -- the Pod strategy ------------------------------------------------------------------------

_NOT_READY_TOLERATION: Final = {
    "key": "node.kubernetes.io/not-ready",
    "operator": "Exists",
    "effect": "NoExecute",
    "tolerationSeconds": 300,
}
_UNREACHABLE_TOLERATION: Final = {
    "key": "node.kubernetes.io/unreachable",
    "operator": "Exists",
    "effect": "NoExecute",
    "tolerationSeconds": 300,
}

POD_UPDATE_FORBIDDEN: Final = (
    "pod updates may not change fields other than `spec.containers[*].image`,"
    "`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,`spec.tolerations` (only "
    "additions to existing tolerations),`spec.terminationGracePeriodSeconds` (allow it to be "
    "set to 1 if it was previously negative)"
)


@dataclass(kw_only=True)
class PodStrategy(PrintedStrategy):
    status_subresource: ClassVar[bool] = True
    generation_tracks: ClassVar[tuple[str, ...]] = ()
    field_selector_labels: ClassVar[tuple[str, ...]] = (
        "spec.nodeName",
        "spec.restartPolicy",
        "spec.schedulerName",
        "spec.serviceAccountName",
        "spec.hostNetwork",
        "status.phase",
        "status.podIP",
        "status.nominatedNodeName",
    )

    def check_graceful_delete(self, obj: Obj, options: Obj) -> int | None:
        """Upstream ``podStrategy.CheckGracefulDelete``: the request's grace period, else the
        pod's own; 0 for a pod never scheduled or already finished."""
        spec, status = obj.get("spec") or {}, obj.get("status") or {}
        period = options.get("gracePeriodSeconds")
        if period is None:
            period = spec.get("terminationGracePeriodSeconds") or 0
        if not spec.get("nodeName") or status.get("phase") in ("Failed", "Succeeded"):
            period = 0
        return 1 if period < 0 else int(period)

    def default(self, obj: Obj) -> None:
        default_pod_spec(sub(obj, "spec"))

    def prepare_for_create(self, obj: Obj) -> None:
        spec = sub(obj, "spec")
        # What upstream's admission chain adds to every new pod: the ServiceAccount plugin's
        # account name, DefaultTolerationSeconds' two tolerations and Priority's 0.
        spec.setdefault("serviceAccountName", "default")
        spec.setdefault("serviceAccount", spec["serviceAccountName"])
        tolerations = spec.setdefault("tolerations", [])
        keys = {t.get("key") for t in tolerations if isinstance(t, dict)}
        for extra in (_NOT_READY_TOLERATION, _UNREACHABLE_TOLERATION):
            if extra["key"] not in keys:
                tolerations.append(dict(extra))
        spec.setdefault("priority", 0)
        default_pod_spec(spec)
        obj["status"] = {"phase": "Pending", "qosClass": qos_class(spec)}

    def prepare_for_status_update(self, new: Obj, old: Obj) -> None:
        """upstream ``podStatusStrategy``: pods/status may not touch ownerReferences (old
        kubelets corrupted them); a status without ``qosClass`` keeps the old one."""
        nm, om = sub(new, "metadata"), old.get("metadata") or {}
        if "ownerReferences" in om:
            nm["ownerReferences"] = deep_copy(om["ownerReferences"])
        else:
            nm.pop("ownerReferences", None)
        old_qos = (old.get("status") or {}).get("qosClass")
        if old_qos and not (new.get("status") or {}).get("qosClass"):
            sub(new, "status")["qosClass"] = old_qos

    def validate(self, obj: Obj) -> list[FieldError]:
        return validate_pod_spec(obj.get("spec") or {}, Path("spec"))

    def validate_update(self, new: Obj, old: Obj) -> list[FieldError]:
        errs = self.validate(new)
        new_spec = deep_copy(new.get("spec") or {})
        old_spec = old.get("spec") or {}
        path = Path("spec")
        for kind in ("containers", "initContainers"):
            if len(new_spec.get(kind) or []) != len(old_spec.get(kind) or []):
                errs.append(
                    f.forbidden(path.child(kind), "pod updates may not add or remove containers")
                )
                return errs
            for nc, oc in zip(new_spec.get(kind) or [], old_spec.get(kind) or [], strict=True):
                nc["image"] = oc.get("image")
        new_spec["activeDeadlineSeconds"] = old_spec.get("activeDeadlineSeconds")
        old_tolerations = old_spec.get("tolerations") or []
        new_tolerations = new_spec.get("tolerations") or []
        if all(t in new_tolerations for t in old_tolerations):
            new_spec["tolerations"] = old_spec.get("tolerations")
        old_grace = old_spec.get("terminationGracePeriodSeconds")
        if isinstance(old_grace, int) and old_grace < 0:
            new_spec["terminationGracePeriodSeconds"] = old_grace
        gates = new_spec.get("schedulingGates") or []
        if all(g in (old_spec.get("schedulingGates") or []) for g in gates):
            new_spec["schedulingGates"] = old_spec.get("schedulingGates")
        normalized_old = {k: v for k, v in old_spec.items() if v is not None}
        normalized_new = {k: v for k, v in new_spec.items() if v is not None}
        if normalized_new != normalized_old:
            errs.append(f.forbidden(path, POD_UPDATE_FORBIDDEN))
        return errs

    def field_labels(self, obj: Obj) -> dict[str, str]:
        spec, status = obj.get("spec") or {}, obj.get("status") or {}
        return {
            "spec.nodeName": str(spec.get("nodeName", "")),
            "spec.restartPolicy": str(spec.get("restartPolicy", "")),
            "spec.schedulerName": str(spec.get("schedulerName", "")),
            "spec.serviceAccountName": str(spec.get("serviceAccountName", "")),
            "spec.hostNetwork": "true" if spec.get("hostNetwork") else "false",
            "status.phase": str(status.get("phase", "")),
            "status.podIP": str(status.get("podIP", "")),
            "status.nominatedNodeName": str(status.get("nominatedNodeName", "")),
        }
