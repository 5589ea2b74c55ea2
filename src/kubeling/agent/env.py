"""A container's environment, resolved as the kubelet resolves it at container start.

Order and rules follow the kubelet's ``makeEnvironmentVariables``: ``envFrom`` sources
first (with their ``prefix``), then ``env`` entries in order, each ``value`` expanded with
``$(VAR)`` against what is defined so far (service variables included). ``valueFrom``
reads ConfigMap/Secret keys, pod fields and container resources. A missing object or key
fails with the kubelet's message — the caller reports it as waiting reason
``CreateContainerConfigError`` and a ``Failed`` event ``Error: <message>`` — unless the
reference is ``optional``. Values are read once: a changed ConfigMap needs a restart.
"""

from __future__ import annotations

import base64
import re

from kubeling.agent.errors import AgentError
from kubeling.agent.volumes.projected import field_ref_value, resource_field_value
from kubeling.machinery.types import Obj

_VAR_REF = re.compile(r"\$\(([A-Za-z_][A-Za-z0-9_.-]*)\)")


def expand(text: str, env: dict[str, str]) -> str:
    """Kubernetes' ``$(VAR)`` expansion (``$$`` escapes); unknown references stay as they are."""
    out, i = [], 0
    while i < len(text):
        if text.startswith("$$", i):
            out.append("$")
            i += 2
            continue
        m = _VAR_REF.match(text, i)
        if m:
            out.append(env.get(m.group(1), m.group(0)))
            i = m.end()
            continue
        out.append(text[i])
        i += 1
    return "".join(out)


class ContainerConfigError(AgentError):
    """The container's configuration cannot be resolved (CreateContainerConfigError)."""


def _cm_data(obj: Obj) -> dict[str, str]:
    out = dict(obj.get("data") or {})
    for k, v in (obj.get("binaryData") or {}).items():
        out[k] = base64.b64decode(v).decode(errors="replace")
    return out


def _secret_data(obj: Obj) -> dict[str, str]:
    data = obj.get("data") or {}
    return {k: base64.b64decode(v).decode(errors="replace") for k, v in data.items()}


def resolve_env(
    pod: Obj,
    container: Obj,
    *,
    config_maps: dict[str, Obj],
    secrets: dict[str, Obj],
    service_env: dict[str, str] | None = None,
) -> list[tuple[str, str]]:
    """``(name, value)`` pairs in definition order; later names override earlier ones."""
    namespace = (pod.get("metadata") or {}).get("namespace") or "default"
    env: dict[str, str] = dict(service_env or {})
    for source in container.get("envFrom") or []:
        prefix = source.get("prefix") or ""
        if "configMapRef" in source:
            ref, kind, objects, decode = source["configMapRef"], "configmap", config_maps, _cm_data
        elif "secretRef" in source:
            ref, kind, objects, decode = source["secretRef"], "secret", secrets, _secret_data
        else:
            continue
        obj = objects.get(ref.get("name", ""))
        if obj is None:
            if ref.get("optional"):
                continue
            raise ContainerConfigError(f'{kind} "{ref.get("name", "")}" not found')
        for key, value in decode(obj).items():
            env[prefix + key] = value
    for item in container.get("env") or []:
        name = item["name"]
        source = item.get("valueFrom")
        if source is None:
            env[name] = expand(item.get("value") or "", env)
            continue
        if "configMapKeyRef" in source or "secretKeyRef" in source:
            is_cm = "configMapKeyRef" in source
            ref = source["configMapKeyRef" if is_cm else "secretKeyRef"]
            obj = (config_maps if is_cm else secrets).get(ref.get("name", ""))
            kind, title = ("configmap", "ConfigMap") if is_cm else ("secret", "Secret")
            if obj is None:
                if ref.get("optional"):
                    continue
                raise ContainerConfigError(f'{kind} "{ref.get("name", "")}" not found')
            data = _cm_data(obj) if is_cm else _secret_data(obj)
            key = ref.get("key", "")
            if key not in data:
                if ref.get("optional"):
                    continue
                raise ContainerConfigError(
                    f"couldn't find key {key} in {title} {namespace}/{ref.get('name', '')}"
                )
            env[name] = data[key]
        elif "fieldRef" in source:
            try:
                env[name] = field_ref_value(pod, source["fieldRef"].get("fieldPath", ""))
            except ValueError as exc:
                raise ContainerConfigError(str(exc)) from exc
        elif "resourceFieldRef" in source:
            try:
                env[name] = resource_field_value(
                    pod, source["resourceFieldRef"], default_container=container.get("name", "")
                )
            except ValueError as exc:
                raise ContainerConfigError(str(exc)) from exc
    return list(env.items())
