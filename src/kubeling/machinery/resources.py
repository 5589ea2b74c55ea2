"""The catalogue of resources kubeling serves, as discovery describes them.

Names, short names, categories, verbs and subresources are upstream v1.32's, so that
``kubectl api-resources`` and kubectl's resource mapping (``pvc``, ``sts``, ``cm``...) behave
the same. Everything that needs to name a resource (the API server's router, the registry,
clients, controllers) imports the constants here instead of spelling paths by hand.
"""

from __future__ import annotations

from typing import Final

from kubeling.machinery.types import ResourceInfo

_NO_COLLECTION_DELETE: Final = ("create", "delete", "get", "list", "patch", "update", "watch")

NAMESPACES: Final = ResourceInfo(
    group="",
    version="v1",
    kind="Namespace",
    plural="namespaces",
    singular="namespace",
    namespaced=False,
    short_names=("ns",),
    verbs=_NO_COLLECTION_DELETE,
    subresources=("finalize", "status"),
)
PODS: Final = ResourceInfo(
    group="",
    version="v1",
    kind="Pod",
    plural="pods",
    singular="pod",
    namespaced=True,
    short_names=("po",),
    categories=("all",),
    subresources=("binding", "eviction", "exec", "log", "status"),
)
SERVICES: Final = ResourceInfo(
    group="",
    version="v1",
    kind="Service",
    plural="services",
    singular="service",
    namespaced=True,
    short_names=("svc",),
    categories=("all",),
    subresources=("status",),
)
REPLICATIONCONTROLLERS: Final = ResourceInfo(
    group="",
    version="v1",
    kind="ReplicationController",
    plural="replicationcontrollers",
    singular="replicationcontroller",
    namespaced=True,
    short_names=("rc",),
    categories=("all",),
    subresources=("scale", "status"),
)
ENDPOINTS: Final = ResourceInfo(
    group="",
    version="v1",
    kind="Endpoints",
    plural="endpoints",
    singular="endpoints",
    namespaced=True,
    short_names=("ep",),
)
CONFIGMAPS: Final = ResourceInfo(
    group="",
    version="v1",
    kind="ConfigMap",
    plural="configmaps",
    singular="configmap",
    namespaced=True,
    short_names=("cm",),
)
SECRETS: Final = ResourceInfo(
    group="",
    version="v1",
    kind="Secret",
    plural="secrets",
    singular="secret",
    namespaced=True,
)
PERSISTENTVOLUMES: Final = ResourceInfo(
    group="",
    version="v1",
    kind="PersistentVolume",
    plural="persistentvolumes",
    singular="persistentvolume",
    namespaced=False,
    short_names=("pv",),
    subresources=("status",),
)
PERSISTENTVOLUMECLAIMS: Final = ResourceInfo(
    group="",
    version="v1",
    kind="PersistentVolumeClaim",
    plural="persistentvolumeclaims",
    singular="persistentvolumeclaim",
    namespaced=True,
    short_names=("pvc",),
    subresources=("status",),
)
SERVICEACCOUNTS: Final = ResourceInfo(
    group="",
    version="v1",
    kind="ServiceAccount",
    plural="serviceaccounts",
    singular="serviceaccount",
    namespaced=True,
    short_names=("sa",),
    subresources=("token",),
)
EVENTS: Final = ResourceInfo(
    group="",
    version="v1",
    kind="Event",
    plural="events",
    singular="event",
    namespaced=True,
    short_names=("ev",),
)
NODES: Final = ResourceInfo(
    group="",
    version="v1",
    kind="Node",
    plural="nodes",
    singular="node",
    namespaced=False,
    short_names=("no",),
    subresources=("status",),
)
DEPLOYMENTS: Final = ResourceInfo(
    group="apps",
    version="v1",
    kind="Deployment",
    plural="deployments",
    singular="deployment",
    namespaced=True,
    short_names=("deploy",),
    categories=("all",),
    subresources=("scale", "status"),
)
REPLICASETS: Final = ResourceInfo(
    group="apps",
    version="v1",
    kind="ReplicaSet",
    plural="replicasets",
    singular="replicaset",
    namespaced=True,
    short_names=("rs",),
    categories=("all",),
    subresources=("scale", "status"),
)
DAEMONSETS: Final = ResourceInfo(
    group="apps",
    version="v1",
    kind="DaemonSet",
    plural="daemonsets",
    singular="daemonset",
    namespaced=True,
    short_names=("ds",),
    categories=("all",),
    subresources=("status",),
)
STATEFULSETS: Final = ResourceInfo(
    group="apps",
    version="v1",
    kind="StatefulSet",
    plural="statefulsets",
    singular="statefulset",
    namespaced=True,
    short_names=("sts",),
    categories=("all",),
    subresources=("scale", "status"),
)
CONTROLLERREVISIONS: Final = ResourceInfo(
    group="apps",
    version="v1",
    kind="ControllerRevision",
    plural="controllerrevisions",
    singular="controllerrevision",
    namespaced=True,
)
STORAGECLASSES: Final = ResourceInfo(
    group="storage.k8s.io",
    version="v1",
    kind="StorageClass",
    plural="storageclasses",
    singular="storageclass",
    namespaced=False,
    short_names=("sc",),
)
ENDPOINTSLICES: Final = ResourceInfo(
    group="discovery.k8s.io",
    version="v1",
    kind="EndpointSlice",
    plural="endpointslices",
    singular="endpointslice",
    namespaced=True,
)
EVENTS_V1: Final = ResourceInfo(
    group="events.k8s.io",
    version="v1",
    kind="Event",
    plural="events",
    singular="event",
    namespaced=True,
    short_names=("ev",),
    storage_group="",
)
LEASES: Final = ResourceInfo(
    group="coordination.k8s.io",
    version="v1",
    kind="Lease",
    plural="leases",
    singular="lease",
    namespaced=True,
)

ALL: Final[tuple[ResourceInfo, ...]] = (
    NAMESPACES,
    PODS,
    SERVICES,
    ENDPOINTS,
    CONFIGMAPS,
    SECRETS,
    PERSISTENTVOLUMES,
    PERSISTENTVOLUMECLAIMS,
    SERVICEACCOUNTS,
    EVENTS,
    NODES,
    REPLICATIONCONTROLLERS,
    DEPLOYMENTS,
    REPLICASETS,
    DAEMONSETS,
    STATEFULSETS,
    CONTROLLERREVISIONS,
    STORAGECLASSES,
    ENDPOINTSLICES,
    EVENTS_V1,
    LEASES,
)

BY_GROUP_VERSION_PLURAL: Final[dict[tuple[str, str, str], ResourceInfo]] = {
    (r.group, r.version, r.plural): r for r in ALL
}


def lookup(*, group: str, version: str, plural: str) -> ResourceInfo | None:
    return BY_GROUP_VERSION_PLURAL.get((group, version, plural))


def by_kind(*, api_version: str, kind: str) -> ResourceInfo | None:
    group, _, version = api_version.rpartition("/")
    for r in ALL:
        if r.group == group and r.version == version and r.kind == kind:
            return r
    return None
