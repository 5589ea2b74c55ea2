"""projected and downwardAPI volumes, and the service-account token projection.

A projected volume merges secret, configMap, downwardAPI and serviceAccountToken sources
into one ``..data`` directory (upstream pkg/volume/projected); it lives on tmpfs because it
usually carries a token. Downward API values are rendered as the kubelet renders them:
labels and annotations as sorted ``key="value"`` lines, resources divided and rounded up.
"""

from __future__ import annotations

import json
import math
from fractions import Fraction
from pathlib import Path

from kubeling.agent.errors import VolumeSetupError
from kubeling.agent.volumes.atomic import FileProjection, Payload
from kubeling.agent.volumes.base import PreparedVolume, VolumeSources, plugin_dir
from kubeling.agent.volumes.configmap_secret import (
    DEFAULT_MODE,
    config_map_payload,
    prepare_atomic,
    secret_payload,
)
from kubeling.machinery.quantity import parse_quantity
from kubeling.machinery.types import Obj


def _format_map(values: dict[str, str]) -> str:
    # Go's %q quoting is JSON-compatible for the printable text labels carry.
    return "\n".join(f"{k}={json.dumps(v, ensure_ascii=False)}" for k, v in sorted(values.items()))


def field_ref_value(pod: Obj, field_path: str) -> str:
    meta = pod.get("metadata") or {}
    spec = pod.get("spec") or {}
    status = pod.get("status") or {}
    for prefix, mapping in (("metadata.labels", "labels"), ("metadata.annotations", "annotations")):
        if field_path == prefix:
            return _format_map(meta.get(mapping) or {})
        if field_path.startswith(prefix + "['") and field_path.endswith("']"):
            return str((meta.get(mapping) or {}).get(field_path[len(prefix) + 2 : -2], ""))
    simple = {
        "metadata.name": meta.get("name"),
        "metadata.namespace": meta.get("namespace"),
        "metadata.uid": meta.get("uid"),
        "spec.nodeName": spec.get("nodeName"),
        "spec.serviceAccountName": spec.get("serviceAccountName"),
        "status.hostIP": status.get("hostIP"),
        "status.podIP": status.get("podIP"),
    }
    if field_path not in simple:
        raise ValueError(f"unsupported fieldPath: {field_path}")
    return str(simple[field_path] or "")


def resource_field_value(pod: Obj, ref: Obj, *, default_container: str = "") -> str:
    container_name = ref.get("containerName") or default_container
    resource = ref.get("resource", "")
    divisor = parse_quantity(ref.get("divisor") or "1").value
    if divisor == 0:
        divisor = Fraction(1)
    for c in (pod.get("spec") or {}).get("containers") or []:
        if c.get("name") != container_name:
            continue
        section, _, res = resource.partition(".")
        value = ((c.get("resources") or {}).get(section) or {}).get(res)
        if value is None:
            # TODO(#5): upstream falls back to the node's allocatable; we write 0.
            return "0"
        return str(math.ceil(parse_quantity(value).value / divisor))
    raise ValueError(f"container {container_name} not found in pod")


def downward_api_payload(items: list[Obj], pod: Obj, *, default_mode: int | None) -> Payload:
    mode = DEFAULT_MODE if default_mode is None else default_mode
    payload: Payload = {}
    for item in items:
        if item.get("fieldRef"):
            value = field_ref_value(pod, item["fieldRef"].get("fieldPath", ""))
        elif item.get("resourceFieldRef"):
            value = resource_field_value(pod, item["resourceFieldRef"])
        else:
            continue
        item_mode = item.get("mode")
        payload[item["path"]] = FileProjection(
            value.encode(), mode if item_mode is None else item_mode
        )
    return payload


def projected_payload(source: Obj, sources: VolumeSources, pod: Obj) -> Payload:
    default_mode = source.get("defaultMode")
    payload: Payload = {}
    for part in source.get("sources") or []:
        if "secret" in part:
            sub = dict(part["secret"], defaultMode=default_mode)
            payload.update(secret_payload(sub, sources, name_field="name"))
        elif "configMap" in part:
            payload.update(
                config_map_payload(dict(part["configMap"], defaultMode=default_mode), sources)
            )
        elif "downwardAPI" in part:
            items = part["downwardAPI"].get("items") or []
            payload.update(downward_api_payload(items, pod, default_mode=default_mode))
        elif "serviceAccountToken" in part:
            tok = part["serviceAccountToken"]
            if sources.service_account_token is None:
                raise ValueError("no service account token available for projection")
            data = sources.service_account_token(
                tok.get("audience"), int(tok.get("expirationSeconds") or 3600)
            )
            mode = DEFAULT_MODE if default_mode is None else default_mode
            payload[tok.get("path", "token")] = FileProjection(data, mode)
        # TODO(#5): clusterTrustBundle and podCertificate sources are not projected.
    return payload


def prepare_projected(
    name: str, source: Obj, *, pod: Obj, pod_dir: Path, sources: VolumeSources
) -> PreparedVolume:
    return prepare_atomic(
        name,
        "projected",
        plugin_dir(pod_dir, "projected", name),
        lambda s: projected_payload(source, s, s.pod or pod),
        sources,
        on_tmpfs=True,
        pod_dir=pod_dir,
    )


def prepare_downward_api(
    name: str, source: Obj, *, pod: Obj, pod_dir: Path, sources: VolumeSources
) -> PreparedVolume:
    items = source.get("items") or []
    mode = source.get("defaultMode")
    try:
        return prepare_atomic(
            name,
            "downwardAPI",
            plugin_dir(pod_dir, "downward-api", name),
            lambda s: downward_api_payload(items, s.pod or pod, default_mode=mode),
            sources,
            on_tmpfs=True,
            pod_dir=pod_dir,
        )
    except ValueError as exc:
        raise VolumeSetupError(name, str(exc), retryable=False) from exc
