"""Which strategy serves which resource: the generic store looks kinds up here.

One ``Strategy`` instance per served resource. ``events.k8s.io`` Events get the same
strategy class as core Events (they share storage); the instance carries its own
``ResourceInfo`` so error messages name the right group.
"""

from __future__ import annotations

import functools
from typing import Final

from kubeling.machinery import resources as r
from kubeling.machinery.types import ResourceInfo
from kubeling.registry.kinds.apps import (
    ControllerRevisionStrategy,
    DaemonSetStrategy,
    DeploymentStrategy,
    ReplicaSetStrategy,
    ReplicationControllerStrategy,
    StatefulSetStrategy,
)
from kubeling.registry.kinds.core import (
    ConfigMapStrategy,
    EndpointsStrategy,
    EventStrategy,
    EventV1Strategy,
    NamespaceStrategy,
    NodeStrategy,
    SecretStrategy,
    ServiceAccountStrategy,
    ServiceStrategy,
)
from kubeling.registry.kinds.misc import EndpointSliceStrategy, LeaseStrategy
from kubeling.registry.kinds.pods import PodStrategy
from kubeling.registry.kinds.storage import (
    PersistentVolumeClaimStrategy,
    PersistentVolumeStrategy,
    StorageClassStrategy,
)
from kubeling.registry.strategy import Strategy

STRATEGY_CLASSES: Final[dict[ResourceInfo, type[Strategy]]] = {
    r.NAMESPACES: NamespaceStrategy,
    r.PODS: PodStrategy,
    r.SERVICES: ServiceStrategy,
    r.ENDPOINTS: EndpointsStrategy,
    r.CONFIGMAPS: ConfigMapStrategy,
    r.SECRETS: SecretStrategy,
    r.PERSISTENTVOLUMES: PersistentVolumeStrategy,
    r.PERSISTENTVOLUMECLAIMS: PersistentVolumeClaimStrategy,
    r.SERVICEACCOUNTS: ServiceAccountStrategy,
    r.EVENTS: EventStrategy,
    r.NODES: NodeStrategy,
    r.REPLICATIONCONTROLLERS: ReplicationControllerStrategy,
    r.DEPLOYMENTS: DeploymentStrategy,
    r.REPLICASETS: ReplicaSetStrategy,
    r.DAEMONSETS: DaemonSetStrategy,
    r.STATEFULSETS: StatefulSetStrategy,
    r.CONTROLLERREVISIONS: ControllerRevisionStrategy,
    r.STORAGECLASSES: StorageClassStrategy,
    r.ENDPOINTSLICES: EndpointSliceStrategy,
    r.EVENTS_V1: EventV1Strategy,
    r.LEASES: LeaseStrategy,
}


@functools.cache
def strategies() -> dict[ResourceInfo, Strategy]:
    """A strategy for every entry of ``machinery.resources.ALL`` (built once, shared)."""
    out: dict[ResourceInfo, Strategy] = {}
    for info in r.ALL:
        cls = STRATEGY_CLASSES.get(info, Strategy)
        out[info] = cls(info=info)
    return out


def strategy_for(info: ResourceInfo) -> Strategy:
    return strategies()[info]
