"""Core/v1 kinds other than Pods and volumes: Namespace, ConfigMap, Secret, Service,
Endpoints, ServiceAccount, Node and Event.

Secrets keep ``data`` as the base64 text JSON carries; sizes and JSON checks decode it.
``stringData`` is folded into ``data`` by ``default`` (upstream does it while converting the
request to its internal form, so validation and storage never see ``stringData``).
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import json
from dataclasses import dataclass
from typing import Any, ClassVar, Final

from kubeling.machinery import field as f
from kubeling.machinery.field import FieldError, Path
from kubeling.machinery.types import Obj
from kubeling.registry.kinds.base import PrintedStrategy, sub
from kubeling.registry.printers import is_events_v1
from kubeling.registry.validation import (
    is_config_map_key,
    is_dns1123_label,
    is_dns1123_subdomain,
    is_valid_port_name,
    is_valid_port_num,
    too_long_no_value,
    validate_labels,
)

MAX_SECRET_SIZE: Final = 1024 * 1024
"""``core.MaxSecretSize``: the 1 MiB bound on Secret and ConfigMap payloads."""

IMMUTABLE_SET: Final = "field is immutable when `immutable` is set"

# -- Namespace -------------------------------------------------------------------------------


@dataclass(kw_only=True)
class NamespaceStrategy(PrintedStrategy):
    status_subresource: ClassVar[bool] = True
    field_selector_labels: ClassVar[tuple[str, ...]] = ("status.phase",)
    generation_tracks: ClassVar[tuple[str, ...]] = ()
    name_validation: ClassVar[str] = "label"

    def prepare_for_create(self, obj: Obj) -> None:
        sub(obj, "spec").setdefault("finalizers", ["kubernetes"])
        obj["status"] = {"phase": "Active"}

    def prepare_for_update(self, new: Obj, old: Obj) -> None:
        # spec.finalizers change only through the finalize subresource
        old_finalizers = (old.get("spec") or {}).get("finalizers")
        if old_finalizers is not None:
            sub(new, "spec")["finalizers"] = old_finalizers
        else:
            (new.get("spec") or {}).pop("finalizers", None)

    def validate(self, obj: Obj) -> list[FieldError]:
        errs = []
        for i, name in enumerate((obj.get("spec") or {}).get("finalizers") or []):
            if "/" not in name and name != "kubernetes":
                errs.append(
                    f.invalid(
                        Path("spec.finalizers").index(i),
                        name,
                        "name is neither a standard finalizer name nor is it fully qualified",
                    )
                )
        return errs

    def field_labels(self, obj: Obj) -> dict[str, str]:
        return {"status.phase": str((obj.get("status") or {}).get("phase", ""))}


# -- ConfigMap and Secret --------------------------------------------------------------------


def _decoded_len(value: Any) -> int:
    if not isinstance(value, str):
        return 0
    try:
        return len(base64.b64decode(value, validate=True))
    except (binascii.Error, ValueError):
        return len(value)


def _decode(value: Any) -> bytes:
    try:
        return base64.b64decode(value or "", validate=True)
    except (binascii.Error, ValueError):
        return str(value).encode()


def _validate_keys(values: dict[str, Any], path: Path) -> list[FieldError]:
    errs: list[FieldError] = []
    for key in sorted(values):
        errs.extend(f.invalid(path.key(key), key, m) for m in is_config_map_key(key))
    return errs


@dataclass(kw_only=True)
class ConfigMapStrategy(PrintedStrategy):
    generation_tracks: ClassVar[tuple[str, ...]] = ()

    def validate(self, obj: Obj) -> list[FieldError]:
        data = obj.get("data") or {}
        binary = obj.get("binaryData") or {}
        errs: list[FieldError] = []
        total = 0
        for key in sorted(data):
            errs.extend(_validate_keys({key: None}, Path("data")))
            if key in binary:
                errs.append(
                    f.invalid(Path("data").key(key), key, "duplicate of key present in binaryData")
                )
            total += len(str(data[key]).encode())
        for key in sorted(binary):
            errs.extend(_validate_keys({key: None}, Path("binaryData")))
            if key in data:
                errs.append(
                    f.invalid(Path("binaryData").key(key), key, "duplicate of key present in data")
                )
            total += _decoded_len(binary[key])
        if total > MAX_SECRET_SIZE:
            # upstream reports the whole object here (an empty path), not ``data``
            errs.append(too_long_no_value(Path(""), MAX_SECRET_SIZE))
        return errs

    def validate_update(self, new: Obj, old: Obj) -> list[FieldError]:
        errs = self.validate(new)
        if old.get("immutable"):
            if not new.get("immutable"):
                errs.append(f.forbidden(Path("immutable"), IMMUTABLE_SET))
            if (new.get("data") or {}) != (old.get("data") or {}):
                errs.append(f.forbidden(Path("data"), IMMUTABLE_SET))
            if (new.get("binaryData") or {}) != (old.get("binaryData") or {}):
                errs.append(f.forbidden(Path("binaryData"), IMMUTABLE_SET))
        return errs


SECRET_TYPES: Final = {
    "opaque": "Opaque",
    "sa_token": "kubernetes.io/service-account-token",
    "dockercfg": "kubernetes.io/dockercfg",
    "dockerconfigjson": "kubernetes.io/dockerconfigjson",
    "basic_auth": "kubernetes.io/basic-auth",
    "ssh_auth": "kubernetes.io/ssh-auth",
    "tls": "kubernetes.io/tls",
}
SERVICE_ACCOUNT_NAME_KEY: Final = "kubernetes.io/service-account.name"
REDACTED: Final = "<secret contents redacted>"


def go_json_error(raw: bytes) -> str | None:
    """The error ``json.Unmarshal(raw, &map[string]interface{}{})`` would give, or None."""
    try:
        value = json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        return "invalid character looking for beginning of value"
    except json.JSONDecodeError as e:
        text = raw.decode("utf-8")
        if not text.strip() or e.pos >= len(text):
            return "unexpected end of JSON input"
        context = {
            "Expecting property name enclosed in double quotes": "looking for beginning of "
            "object key string",
            "Expecting ':' delimiter": "after object key",
            "Extra data": "after top-level value",
        }.get(e.msg, "looking for beginning of value")
        if e.msg == "Expecting ',' delimiter":
            inner = text[: e.pos].rstrip()
            in_array = inner.rfind("[") > inner.rfind("{")
            context = "after array element" if in_array else "after object key:value pair"
        return f"invalid character '{text[e.pos]}' {context}"
    if isinstance(value, dict):
        return None
    go_type = {list: "array", str: "string", bool: "bool", type(None): ""}.get(
        type(value), "number"
    )
    if not go_type:
        return None  # null unmarshals into a map without error
    return f"json: cannot unmarshal {go_type} into Go value of type map[string]interface {{}}"


@dataclass(kw_only=True)
class SecretStrategy(PrintedStrategy):
    generation_tracks: ClassVar[tuple[str, ...]] = ()
    field_selector_labels: ClassVar[tuple[str, ...]] = ("type",)

    def default(self, obj: Obj) -> None:
        string_data = obj.pop("stringData", None)
        if string_data:
            data = sub(obj, "data")
            for key, value in string_data.items():
                data[key] = base64.b64encode(str(value).encode()).decode()
        if not obj.get("type"):
            obj["type"] = "Opaque"

    def validate(self, obj: Obj) -> list[FieldError]:
        data = obj.get("data") or {}
        dp = Path("data")
        errs = _validate_keys(data, dp)
        if sum(_decoded_len(v) for v in data.values()) > MAX_SECRET_SIZE:
            errs.append(too_long_no_value(dp, MAX_SECRET_SIZE))
        kind = obj.get("type", "")
        if kind == SECRET_TYPES["sa_token"]:
            ann = (obj.get("metadata") or {}).get("annotations") or {}
            if not ann.get(SERVICE_ACCOUNT_NAME_KEY):
                errs.append(f.required(Path("metadata.annotations").key(SERVICE_ACCOUNT_NAME_KEY)))
        elif kind in (SECRET_TYPES["dockercfg"], SECRET_TYPES["dockerconfigjson"]):
            key = ".dockercfg" if kind == SECRET_TYPES["dockercfg"] else ".dockerconfigjson"
            if key not in data:
                errs.append(f.required(dp.key(key)))
            else:
                problem = go_json_error(_decode(data[key]))
                if problem:
                    errs.append(f.invalid(dp.key(key), REDACTED, problem))
        elif kind == SECRET_TYPES["basic_auth"]:
            if "username" not in data and "password" not in data:
                errs.append(f.required(dp.key("username")))
                errs.append(f.required(dp.key("password")))
        elif kind == SECRET_TYPES["ssh_auth"]:
            if not _decode(data.get("ssh-privatekey")):
                errs.append(f.required(dp.key("ssh-privatekey")))
        elif kind == SECRET_TYPES["tls"]:
            for key in ("tls.crt", "tls.key"):
                if key not in data:
                    errs.append(f.required(dp.key(key)))
        return errs

    def validate_update(self, new: Obj, old: Obj) -> list[FieldError]:
        errs = self.validate(new)
        if new.get("type", "") != old.get("type", ""):
            errs.append(f.invalid(Path("type"), new.get("type", ""), "field is immutable"))
        if old.get("immutable"):
            if not new.get("immutable"):
                errs.append(f.forbidden(Path("immutable"), IMMUTABLE_SET))
            if (new.get("data") or {}) != (old.get("data") or {}):
                errs.append(f.forbidden(Path("data"), IMMUTABLE_SET))
        return errs

    def field_labels(self, obj: Obj) -> dict[str, str]:
        return {"type": str(obj.get("type", ""))}


# -- Service and Endpoints -------------------------------------------------------------------

SERVICE_TYPES: Final = ("ClusterIP", "ExternalName", "LoadBalancer", "NodePort")
PROTOCOLS: Final = ("SCTP", "TCP", "UDP")
_IP_DETAIL: Final = "must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)"


def _valid_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def _validate_port_num_or_name(value: Any, path: Path) -> list[FieldError]:
    if isinstance(value, int) and not isinstance(value, bool):
        return [f.invalid(path, value, m) for m in is_valid_port_num(value)]
    if isinstance(value, str):
        if not value:
            return [f.required(path)]
        return [f.invalid(path, value, m) for m in is_valid_port_name(value)]
    return [f.invalid(path, value, "must be an integer or a port name")]


@dataclass(kw_only=True)
class ServiceStrategy(PrintedStrategy):
    status_subresource: ClassVar[bool] = True
    generation_tracks: ClassVar[tuple[str, ...]] = ()
    name_validation: ClassVar[str] = "label1035"

    def default(self, obj: Obj) -> None:
        spec = sub(obj, "spec")
        spec.setdefault("type", "ClusterIP")
        spec.setdefault("sessionAffinity", "None")
        if spec["type"] != "ExternalName":
            spec.setdefault("internalTrafficPolicy", "Cluster")
        if spec["type"] in ("NodePort", "LoadBalancer"):
            spec.setdefault("externalTrafficPolicy", "Cluster")
        if spec["type"] == "LoadBalancer":
            spec.setdefault("allocateLoadBalancerNodePorts", True)
        for port in spec.get("ports") or []:
            if not isinstance(port, dict):
                continue
            if not port.get("protocol"):
                port["protocol"] = "TCP"
            if port.get("targetPort") in (None, 0, ""):
                port["targetPort"] = port.get("port")

    def prepare_for_create(self, obj: Obj) -> None:
        spec = sub(obj, "spec")
        obj["status"] = {"loadBalancer": {}}
        if spec.get("type", "ClusterIP") != "ExternalName":
            # TODO(#2): cluster IP allocation is the Service REST's job upstream; until the
            # allocator exists only explicit clusterIPs (and "None") are recorded.
            if spec.get("clusterIP") and not spec.get("clusterIPs"):
                spec["clusterIPs"] = [spec["clusterIP"]]
            spec.setdefault("ipFamilyPolicy", "SingleStack")
            spec.setdefault("ipFamilies", ["IPv4"])

    def prepare_for_update(self, new: Obj, old: Obj) -> None:
        # a client that omits the allocated values keeps them, as upstream's REST does
        nspec, ospec = sub(new, "spec"), old.get("spec") or {}
        if nspec.get("type", "ClusterIP") == "ExternalName":
            return
        if ospec.get("type", "ClusterIP") == "ExternalName":
            return
        for key in ("clusterIP", "clusterIPs", "ipFamilies", "ipFamilyPolicy"):
            if not nspec.get(key) and ospec.get(key):
                nspec[key] = ospec[key]
        old_ports = {(p.get("port"), p.get("protocol", "TCP")): p for p in ospec.get("ports") or []}
        for port in nspec.get("ports") or []:
            prev = old_ports.get((port.get("port"), port.get("protocol", "TCP")))
            if prev and prev.get("nodePort") and not port.get("nodePort"):
                port["nodePort"] = prev["nodePort"]

    def validate(self, obj: Obj) -> list[FieldError]:
        spec = obj.get("spec") or {}
        sp = Path("spec")
        errs: list[FieldError] = []
        kind = spec.get("type", "")
        headless = spec.get("clusterIP") == "None"
        if kind not in SERVICE_TYPES:
            errs.append(f.not_supported(sp.child("type"), kind, SERVICE_TYPES))
        ports = spec.get("ports") or []
        if not ports and not headless and kind != "ExternalName":
            errs.append(f.required(sp.child("ports")))
        names: set[str] = set()
        seen: set[tuple[Any, Any]] = set()
        for i, port in enumerate(ports):
            pp = sp.child("ports").index(i)
            name = port.get("name", "")
            if len(ports) > 1 and not name:
                errs.append(f.required(pp.child("name")))
            elif name:
                errs.extend(f.invalid(pp.child("name"), name, m) for m in is_dns1123_label(name))
                if name in names:
                    errs.append(f.duplicate(pp.child("name"), name))
                names.add(name)
            errs.extend(
                f.invalid(pp.child("port"), port.get("port"), m)
                for m in is_valid_port_num(port.get("port"))
            )
            proto = port.get("protocol", "")
            if not proto:
                errs.append(f.required(pp.child("protocol")))
            elif proto not in PROTOCOLS:
                errs.append(f.not_supported(pp.child("protocol"), proto, PROTOCOLS))
            if "targetPort" in port:
                errs.extend(_validate_port_num_or_name(port["targetPort"], pp.child("targetPort")))
            key = (port.get("port"), proto)
            if key in seen:
                errs.append(f.duplicate(pp, {"port": port.get("port"), "protocol": proto}))
            seen.add(key)
        if kind == "ExternalName":
            if spec.get("clusterIP"):
                errs.append(
                    f.forbidden(sp.child("clusterIP"), "may not be set for ExternalName services")
                )
            ext = spec.get("externalName", "")
            if not ext:
                errs.append(f.required(sp.child("externalName")))
            else:
                errs.extend(
                    f.invalid(sp.child("externalName"), ext, m) for m in is_dns1123_subdomain(ext)
                )
        else:
            ips = spec.get("clusterIPs") or ([spec["clusterIP"]] if spec.get("clusterIP") else [])
            for i, ip in enumerate(ips):
                if ip != "None" and not _valid_ip(ip):
                    errs.append(f.invalid(sp.child("clusterIPs").index(i), ip, _IP_DETAIL))
            if headless and kind != "ClusterIP":
                errs.append(
                    f.invalid(
                        sp.child("clusterIPs").index(0),
                        "None",
                        "may only be set to 'None' for ClusterIP services",
                    )
                )
        errs.extend(validate_labels(spec.get("selector"), sp.child("selector")))
        affinity = spec.get("sessionAffinity", "")
        if affinity not in ("ClientIP", "None"):
            errs.append(
                f.not_supported(sp.child("sessionAffinity"), affinity, ("ClientIP", "None"))
            )
        for i, ip in enumerate(spec.get("externalIPs") or []):
            if not _valid_ip(ip):
                errs.append(f.invalid(sp.child("externalIPs").index(i), ip, _IP_DETAIL))
        return errs

    def validate_update(self, new: Obj, old: Obj) -> list[FieldError]:
        errs = self.validate(new)
        nspec, ospec = new.get("spec") or {}, old.get("spec") or {}
        if "ExternalName" not in (nspec.get("type"), ospec.get("type")):
            old_ips = ospec.get("clusterIPs") or []
            new_ips = nspec.get("clusterIPs") or []
            if old_ips and new_ips and old_ips[0] != new_ips[0]:
                errs.append(
                    f.invalid(
                        Path("spec.clusterIPs").index(0), new_ips[0], "may not change once set"
                    )
                )
        return errs


@dataclass(kw_only=True)
class EndpointsStrategy(PrintedStrategy):
    generation_tracks: ClassVar[tuple[str, ...]] = ()
    allow_create_on_update: ClassVar[bool] = True

    def default(self, obj: Obj) -> None:
        for subset in obj.get("subsets") or []:
            for port in subset.get("ports") or []:
                if isinstance(port, dict) and not port.get("protocol"):
                    port["protocol"] = "TCP"

    def validate(self, obj: Obj) -> list[FieldError]:
        errs: list[FieldError] = []
        for i, subset in enumerate(obj.get("subsets") or []):
            sp = Path("subsets").index(i)
            for kind in ("addresses", "notReadyAddresses"):
                for j, addr in enumerate(subset.get(kind) or []):
                    ip = addr.get("ip", "")
                    ap = sp.child(kind).index(j).child("ip")
                    if not ip:
                        errs.append(f.required(ap))
                    elif not _valid_ip(ip):
                        errs.append(f.invalid(ap, ip, _IP_DETAIL))
            ports = subset.get("ports") or []
            for j, port in enumerate(ports):
                pp = sp.child("ports").index(j)
                name = port.get("name", "")
                if len(ports) > 1 and not name:
                    errs.append(f.required(pp.child("name")))
                elif name:
                    errs.extend(
                        f.invalid(pp.child("name"), name, m) for m in is_dns1123_label(name)
                    )
                errs.extend(
                    f.invalid(pp.child("port"), port.get("port"), m)
                    for m in is_valid_port_num(port.get("port"))
                )
                proto = port.get("protocol", "")
                if proto not in PROTOCOLS:
                    errs.append(f.not_supported(pp.child("protocol"), proto, PROTOCOLS))
        return errs


# -- ServiceAccount, Node, Event -------------------------------------------------------------


@dataclass(kw_only=True)
class ServiceAccountStrategy(PrintedStrategy):
    generation_tracks: ClassVar[tuple[str, ...]] = ()


@dataclass(kw_only=True)
class NodeStrategy(PrintedStrategy):
    status_subresource: ClassVar[bool] = True
    generation_tracks: ClassVar[tuple[str, ...]] = ()
    clear_status_on_create: ClassVar[bool | None] = False
    """Upstream: "Nodes allow *all* fields, including status, to be set on create"."""
    field_selector_labels: ClassVar[tuple[str, ...]] = ("spec.unschedulable",)

    def default(self, obj: Obj) -> None:
        status = obj.get("status")
        if isinstance(status, dict) and status.get("capacity") and not status.get("allocatable"):
            # SetDefaults_NodeStatus: allocatable defaults to capacity
            status["allocatable"] = dict(status["capacity"])

    def field_labels(self, obj: Obj) -> dict[str, str]:
        unschedulable = (obj.get("spec") or {}).get("unschedulable")
        return {"spec.unschedulable": "true" if unschedulable else "false"}


_EVENT_REF_FIELDS: Final = (
    "kind",
    "namespace",
    "name",
    "uid",
    "apiVersion",
    "resourceVersion",
    "fieldPath",
)
_EVENT_LABELS: Final = (
    *(f"involvedObject.{k}" for k in _EVENT_REF_FIELDS),
    "reason",
    "reportingComponent",
    "source",
    "type",
)


@dataclass(kw_only=True)
class EventStrategy(PrintedStrategy):
    """Core/v1 Events; events.k8s.io/v1 Events are stored in the same place and shape."""

    generation_tracks: ClassVar[tuple[str, ...]] = ()
    allow_create_on_update: ClassVar[bool] = True
    field_selector_labels: ClassVar[tuple[str, ...]] = _EVENT_LABELS

    def validate(self, obj: Obj) -> list[FieldError]:
        v1 = is_events_v1(obj)
        ref = (obj.get("regarding") if v1 else obj.get("involvedObject")) or {}
        ref_path = Path("regarding.namespace" if v1 else "involvedObject.namespace")
        ns = (obj.get("metadata") or {}).get("namespace", "")
        ref_ns = ref.get("namespace", "")
        errs: list[FieldError] = []
        if (ref_ns and ref_ns != ns) or (not ref_ns and ns not in ("", "default")):
            errs.append(f.invalid(ref_path, ref_ns, "does not match event.namespace"))
        if v1:
            for key in (
                "eventTime",
                "reportingController",
                "reportingInstance",
                "action",
                "reason",
            ):
                if not obj.get(key):
                    errs.append(f.required(Path(key)))
            if obj.get("type") not in ("Normal", "Warning"):
                errs.append(
                    f.invalid(Path("type"), "", f"has invalid value: {obj.get('type', '')}")
                )
        return errs

    def field_labels(self, obj: Obj) -> dict[str, str]:
        v1 = is_events_v1(obj)
        ref = (obj.get("regarding") if v1 else obj.get("involvedObject")) or {}
        source = (obj.get("deprecatedSource") if v1 else obj.get("source")) or {}
        reporter = obj.get("reportingController") if v1 else obj.get("reportingComponent")
        labels = {f"involvedObject.{k}": str(ref.get(k, "")) for k in _EVENT_REF_FIELDS}
        labels.update({f"regarding.{k}": str(ref.get(k, "")) for k in _EVENT_REF_FIELDS})
        labels.update(
            {
                "reason": str(obj.get("reason", "")),
                "reportingComponent": str(reporter or ""),
                "reportingController": str(reporter or ""),
                "source": str(source.get("component", "")),
                "type": str(obj.get("type", "")),
            }
        )
        return labels


@dataclass(kw_only=True)
class EventV1Strategy(EventStrategy):
    """events.k8s.io/v1: same storage and rules; field selectors also take the v1 names."""

    field_selector_labels: ClassVar[tuple[str, ...]] = (
        *_EVENT_LABELS,
        *(f"regarding.{k}" for k in _EVENT_REF_FIELDS),
        "reportingController",
    )
