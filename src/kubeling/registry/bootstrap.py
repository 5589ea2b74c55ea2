"""What a fresh cluster holds before anyone writes: the system namespaces.

Upstream's bootstrap controller creates ``kube-system``, ``kube-public`` and
``kube-node-lease`` (and ``default`` comes from the service IP bootstrap); kubeling creates
the four at start, through the normal create path so they get every default (phase Active,
the ``kubernetes`` finalizer, the ``kubernetes.io/metadata.name`` label). Running it again
creates only what is missing, so a restart on an existing store is a no-op.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Final

from kubeling.machinery import resources
from kubeling.machinery.errors import AlreadyExists
from kubeling.registry.context import SYSTEM, RequestContext

if TYPE_CHECKING:
    from kubeling.registry.registry import Registry

log = logging.getLogger(__name__)

SYSTEM_NAMESPACES: Final = ("default", "kube-system", "kube-public", "kube-node-lease")
MANAGER: Final = "kube-apiserver"


async def ensure_system_namespaces(registry: Registry) -> None:
    store = registry.store(resources.NAMESPACES)
    for name in SYSTEM_NAMESPACES:
        if await registry.backend.get(store._key("", name)) is not None:
            continue
        ctx = RequestContext(user=SYSTEM, field_manager=MANAGER, field_validation="Strict")
        try:
            await store.create(
                {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}},
                namespace="",
                ctx=ctx,
            )
        except AlreadyExists:
            continue
        log.info("Created system namespace %s.", name)
