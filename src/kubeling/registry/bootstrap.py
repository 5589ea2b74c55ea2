"""What a fresh cluster holds before anyone writes: the system namespaces.

Upstream's bootstrap controller creates ``kube-system``, ``kube-public`` and
``kube-node-lease`` (and ``default`` comes from the service IP bootstrap); kubeling creates
the four at start, through the normal create path so they get every default (phase Active,
the ``kubernetes`` finalizer, the ``kubernetes.io/metadata.name`` label). Running it again
creates only what is missing, so a restart on an existing store is a no-op.

Start-up time matters (``kubeling up`` is ready in well under a second): existence is
checked with plain key reads before any store or strategy is built, so a restart on a data
directory that has the four touches neither the strategies nor the schema; and the bodies
the server writes itself skip the strict decoding of request bodies (they are known good),
going straight to defaulting, validation and admission.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Final

from kubeling.machinery import resources
from kubeling.machinery.errors import AlreadyExists
from kubeling.registry import codec
from kubeling.registry.context import SYSTEM, RequestContext

if TYPE_CHECKING:
    from kubeling.registry.registry import Registry

log = logging.getLogger(__name__)

SYSTEM_NAMESPACES: Final = ("default", "kube-system", "kube-public", "kube-node-lease")
MANAGER: Final = "kube-apiserver"


async def ensure_system_namespaces(registry: Registry) -> list[str]:
    """Create the system namespaces that are missing; returns the names created."""
    missing = [
        name
        for name in SYSTEM_NAMESPACES
        if await registry.backend.get(
            codec.object_key(resources.NAMESPACES, namespace="", name=name)
        )
        is None
    ]
    if not missing:
        return []
    store = registry.store(resources.NAMESPACES)
    ctx = RequestContext(user=SYSTEM, field_manager=MANAGER, field_validation="Strict")
    created: list[str] = []
    for name in missing:
        body = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}
        try:
            await store.create_decoded(store.to_internal(body), namespace="", ctx=ctx)
        except AlreadyExists:
            continue
        created.append(name)
        log.info("Created system namespace %s.", name)
    return created
