"""The node agent: registers the Node, keeps its Lease, and runs a worker per bound pod.

``Kubelet`` is what ``kubeling up`` starts beside the controllers. On ``start`` it picks
the runtime (``select_runtime``, one sentence saying why), starts its own endpoint for
logs and exec (``agent.server``), registers the Node (capacity, allocatable, addresses,
conditions, nodeInfo, ``daemonEndpoints.kubeletEndpoint.Port``) and renews a Lease in
``kube-node-lease`` every ``lease_seconds / 4``, as upstream does.

Pods come from an informer with ``fieldSelector=spec.nodeName=<node>``; ConfigMaps,
Secrets, claims, volumes and ServiceAccounts come from informers too, so nothing is
polled: a ConfigMap change reaches its pods' mounted files as soon as the watch delivers
it (upstream waits for its periodic sync), and a FailedMount for a missing object is
retried the moment the object appears. ConfigMaps and Secrets are watched per namespace,
and only in namespaces where this node runs pods: a namespace of ten thousand ConfigMaps
and no pods here costs the agent nothing (upstream's kubelet goes further, one watch per
referenced object; with pods per namespace few, a namespace watch is the simpler middle).

An agent that starts where an earlier one left containers running adopts those of pods
still bound here and removes everything else (``Node.recover``). ``stop`` stops every
container and undoes every mount and namespace, and removes the bridge it created; the
directories of pods still bound here stay (disk emptyDirs, the records of each
container's stop), so the next agent starts those pods again as a restart of their
containers (``restartCount`` + 1, ``lastState``, ``logs --previous``). Logs are kept.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import os
import platform
import re
import socket
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Protocol

from kubeling.agent.network import DEFAULT_BRIDGE, DEFAULT_CIDR, BridgeNetwork
from kubeling.agent.podsync.worker import PodWorker
from kubeling.agent.runtime import select_runtime
from kubeling.agent.sandbox import Node
from kubeling.client.events import EventRecorder
from kubeling.client.informer import Informer, SharedInformerFactory
from kubeling.client.interface import Client
from kubeling.machinery.errors import AlreadyExists, Conflict, NotFound, StatusError
from kubeling.machinery.resources import (
    CONFIGMAPS,
    LEASES,
    NODES,
    PERSISTENTVOLUMECLAIMS,
    PERSISTENTVOLUMES,
    PODS,
    SECRETS,
    SERVICEACCOUNTS,
    SERVICES,
)
from kubeling.machinery.types import Obj

log = logging.getLogger(__name__)

KUBELET_VERSION = "v1.32.0-kubeling"
LEASE_NAMESPACE = "kube-node-lease"


class BridgeService(Protocol):
    """Something served on the pod bridge's address (the cluster DNS): ``Kubelet`` starts
    it once the bridge exists and stops it before the bridge goes."""

    async def start(self) -> None: ...

    async def stop(self) -> None: ...


def default_node_name() -> str:
    """The host name, lower-cased and made a DNS subdomain, as the kubelet names its Node."""
    name = re.sub(r"[^a-z0-9.-]", "-", socket.gethostname().lower()).strip("-.")
    return name or "kubeling-node"


def _micro_now() -> str:
    now = datetime.now(UTC)
    return now.strftime("%Y-%m-%dT%H:%M:%S.") + f"{now.microsecond:06d}Z"


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _memory_kib() -> int:
    try:
        with open("/proc/meminfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("MemTotal:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def _read(path: str) -> str:
    try:
        with open(path, encoding="utf-8") as f:
            return f.read().strip()
    except OSError:
        return ""


def _os_image() -> str:
    for line in _read("/etc/os-release").splitlines():
        if line.startswith("PRETTY_NAME="):
            return line.split("=", 1)[1].strip('"')
    return platform.system()


_ARCH = {"x86_64": "amd64", "aarch64": "arm64", "armv7l": "arm"}


def _env_name(name: str) -> str:
    return name.upper().replace("-", "_")


def service_variables(svc: Obj) -> dict[str, str]:
    """upstream's ``envvars.FromServices`` for one Service, in its order."""
    spec = svc["spec"]
    prefix = _env_name(svc["metadata"]["name"])
    ip = spec["clusterIP"]
    ports = spec["ports"]
    out = {f"{prefix}_SERVICE_HOST": ip, f"{prefix}_SERVICE_PORT": str(ports[0]["port"])}
    for p in ports:
        if p.get("name"):
            out[f"{prefix}_SERVICE_PORT_{_env_name(p['name'])}"] = str(p["port"])
    host = f"[{ip}]" if ":" in ip else ip
    for i, p in enumerate(ports):
        proto = (p.get("protocol") or "TCP").lower()
        url = f"{proto}://{host}:{p['port']}"
        if i == 0:
            out[f"{prefix}_PORT"] = url
        key = f"{prefix}_PORT_{p['port']}_{proto.upper()}"
        out[key] = url
        out[f"{key}_PROTO"] = proto
        out[f"{key}_PORT"] = str(p["port"])
        out[f"{key}_ADDR"] = ip
    return out


class Kubelet:
    """The agent of one node. ``await start()``; ``await stop()``."""

    def __init__(
        self,
        client: Client,
        *,
        node_name: str = "",
        data_dir: Path,
        runtime: str = "auto",
        server_token: str = "",
        ca_cert: bytes = b"",
        backoff_base: float = 10.0,
        backoff_max: float = 300.0,
        lease_seconds: int = 40,
        node_status_seconds: float = 60.0,
        bridge: str = "",
        pod_cidr: str = "",
        host_ip: str = "127.0.0.1",
        shutdown_grace: float = 10.0,
        bridge_service: Callable[[BridgeNetwork], BridgeService] | None = None,
    ) -> None:
        self.client = client
        self.node_name = node_name or default_node_name()
        self.data_dir = data_dir
        self.runtime_mode = runtime
        self.server_token = server_token
        self.ca_cert = ca_cert
        self.backoff_base = backoff_base
        self.backoff_max = backoff_max
        self.lease_seconds = lease_seconds
        self.node_status_seconds = node_status_seconds
        # KUBELING_POD_BRIDGE / KUBELING_POD_CIDR let tests (and two clusters on one host)
        # keep their pod networks apart; the IPAM is per data directory.
        self.bridge = bridge or os.environ.get("KUBELING_POD_BRIDGE") or DEFAULT_BRIDGE
        self.pod_cidr = pod_cidr or os.environ.get("KUBELING_POD_CIDR") or DEFAULT_CIDR
        self.host_ip = host_ip
        self.shutdown_grace = shutdown_grace
        # The agent layer cannot import dns/, so the composition root hands in a factory.
        self.bridge_service = bridge_service
        self._bridge_services: list[BridgeService] = []
        self.runtime_reason = ""
        self.node: Node = None  # type: ignore[assignment]  # set in start()
        self.recorder = EventRecorder(client, component="kubelet", host=self.node_name)
        self.informers = SharedInformerFactory(client)
        self.workers: dict[str, PodWorker] = {}
        self.server: object | None = None
        self.port = 0
        self._tasks: list[asyncio.Task[None]] = []
        self._node_uid = ""
        self._pods: Informer | None = None
        self._sources: dict[str, _NamespaceSources] = {}
        self._pvcs: Informer | None = None
        self._pvs: Informer | None = None
        self._sas: Informer | None = None
        self._services: Informer | None = None
        self._started = False
        self._transitions: dict[str, str] = {}
        self._background: set[asyncio.Task[None]] = set()

    # --- lifecycle -------------------------------------------------------------------------

    async def start(self) -> None:
        from kubeling.agent.server import AgentServer

        self.data_dir.mkdir(parents=True, exist_ok=True)
        runtime, self.runtime_reason = select_runtime(self.runtime_mode, data_dir=self.data_dir)
        # Said once, whatever the log level: it decides whether pods run processes at all.
        log.warning("%s", self.runtime_reason)
        network = BridgeNetwork(state_dir=self.data_dir, bridge=self.bridge, cidr=self.pod_cidr)
        self.node = Node(data_dir=self.data_dir, runtime=runtime, network=network)
        server = AgentServer(self, token=self.server_token)
        await server.start()
        self.server = server
        self.port = server.port
        self._started = True
        if runtime.runs_processes and self.bridge_service is not None:
            # Pods' resolv.conf names the bridge address: it must exist and be served before
            # any pod starts (adopted ones included). A bind failure fails the start rather
            # than leave pods asking whatever else may hold that port.
            await network.ensure_bridge()
            service = self.bridge_service(network)
            await service.start()
            self._bridge_services.append(service)
        await self._register_node()
        await self._renew_lease()

        f = self.informers
        self._pods = f.informer(PODS, field_selector=f"spec.nodeName={self.node_name}")
        self._pvcs = f.informer(PERSISTENTVOLUMECLAIMS)
        self._pvs = f.informer(PERSISTENTVOLUMES)
        self._sas = f.informer(SERVICEACCOUNTS)
        self._services = f.informer(SERVICES)
        for inf in (self._pvcs, self._pvs, self._sas):
            inf.add_handler(
                on_add=self._claims_changed,
                on_update=lambda _old, o: self._claims_changed(o),
            )
        f.start()
        await f.wait_for_sync()
        keep = {p["metadata"]["uid"] for p in self._pods.list()}
        adopted, removed = await self.node.recover(keep)
        if adopted or removed:
            log.info(
                "Agent restart: adopted %d container(s), removed %d pod(s) no longer bound here.",
                len(adopted),
                len(removed),
            )
        self._pods.add_handler(
            on_add=self._pod_added, on_update=self._pod_updated, on_delete=self._pod_deleted
        )
        self._tasks.append(asyncio.create_task(self._lease_loop(), name="kubelet-lease"))
        self._tasks.append(asyncio.create_task(self._status_loop(), name="kubelet-node-status"))
        log.info(
            "Node agent for %s is running (%s runtime, endpoint 127.0.0.1:%d).",
            self.node_name,
            runtime.name,
            self.port,
        )

    async def stop(self) -> None:
        if not self._started:
            return
        self._started = False
        for t in self._tasks:
            t.cancel()
        for t in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await t
        self._tasks.clear()
        await self.informers.stop()
        sources = list(self._sources.values())
        self._sources.clear()
        await asyncio.gather(*(src.stop() for src in sources))
        workers = list(self.workers.values())
        await asyncio.gather(*(w.cancel() for w in workers))
        # Each pod gets its own grace period (capped), all at once, before the teardown.
        await asyncio.gather(
            *(w.stop_containers(min(w.grace(), self.shutdown_grace)) for w in workers),
            return_exceptions=True,
        )
        # Pods still bound here keep their directories (disk emptyDirs, stop records) for
        # the next agent, as a node reboot keeps them upstream.
        bound = {w.uid for w in workers if not (w.gone or w.terminal)}
        self.workers.clear()
        # Once the containers are stopped (a preStop hook may still resolve names), and
        # before the bridge and its address go away with the node's shutdown.
        while self._bridge_services:
            try:
                await self._bridge_services.pop().stop()
            except Exception:
                log.exception("Stopping a service on the pod bridge failed.")
        try:
            await self.node.shutdown(grace_seconds=self.shutdown_grace, keep=bound)
        except Exception as exc:
            log.warning("Node agent stop: %s", exc)
        await self.node.runtime.close()
        if self.server is not None:
            await self.server.stop()  # type: ignore[attr-defined]
            self.server = None
        await self.recorder.close()
        log.info("Node agent for %s stopped; its pods' containers are stopped.", self.node_name)

    # --- lookups for workers ---------------------------------------------------------------

    @property
    def watched_namespaces(self) -> list[str]:
        """The namespaces whose ConfigMaps and Secrets the agent watches: those with pods here."""
        return sorted(self._sources)

    async def sources_synced(self, namespace: str) -> None:
        """Wait until the ConfigMaps and Secrets of ``namespace`` are cached (at once when a
        pod there already waited); a worker calls this before it reads them."""
        src = self._sources.get(namespace)
        if src is not None:
            await src.wait_synced()

    def config_maps(self, namespace: str) -> dict[str, Obj]:
        src = self._sources.get(namespace)
        if src is None:
            return {}
        return {o["metadata"]["name"]: o for o in src.config_maps.list()}

    def secrets(self, namespace: str) -> dict[str, Obj]:
        src = self._sources.get(namespace)
        if src is None:
            return {}
        return {o["metadata"]["name"]: o for o in src.secrets.list()}

    def service_account(self, namespace: str, name: str) -> Obj | None:
        return self._sas.get_by_name(name=name, namespace=namespace) if self._sas else None

    def service_env(self, namespace: str, *, links: bool) -> dict[str, str]:
        """The kubelet's service variables: ``kubernetes`` always, the namespace's Services
        when ``enableServiceLinks`` (``<NAME>_SERVICE_HOST``, ``_PORT``, docker links)."""
        if self._services is None:
            return {}
        chosen: dict[str, Obj] = {}
        for svc in self._services.list():
            meta, spec = svc.get("metadata") or {}, svc.get("spec") or {}
            if spec.get("clusterIP") in (None, "", "None") or not spec.get("ports"):
                continue
            name = meta.get("name", "")
            if meta.get("namespace") == "default" and name == "kubernetes":
                chosen.setdefault(name, svc)
            elif meta.get("namespace") == namespace and links:
                chosen[name] = svc
        env: dict[str, str] = {}
        for name in sorted(chosen):
            env.update(service_variables(chosen[name]))
        return env

    def claim_problem(self, namespace: str, claim: str) -> str | None:
        """Why a pod may not use ``claim`` yet, in the volume manager's words, or None."""
        assert self._pvcs is not None
        pvc = self._pvcs.get_by_name(name=claim, namespace=namespace)
        if pvc is None:
            return (
                f'failed to fetch PVC from API server: persistentvolumeclaims "{claim}" not found'
            )
        if (pvc.get("metadata") or {}).get("deletionTimestamp"):
            # upstream starts no pod on a claim that is going away
            return "PVC is being deleted"
        if (pvc.get("status") or {}).get("phase") != "Bound":
            return "PVC is not bound"
        return None

    def bound_volume(self, namespace: str, claim: str) -> Obj | None:
        """The PersistentVolume a claim is bound to, or None while it is not."""
        assert self._pvcs is not None and self._pvs is not None
        pvc = self._pvcs.get_by_name(name=claim, namespace=namespace)
        if pvc is None or (pvc.get("status") or {}).get("phase") != "Bound":
            return None
        volume = (pvc.get("spec") or {}).get("volumeName")
        return self._pvs.get_by_name(name=volume) if volume else None

    def find_pod(self, namespace: str, name: str) -> PodWorker | None:
        for w in self.workers.values():
            if w.namespace == namespace and w.name == name and not w.finished:
                return w
        return None

    # --- informer handlers -----------------------------------------------------------------

    def _pod_added(self, pod: Obj) -> None:
        uid = pod["metadata"]["uid"]
        worker = self.workers.get(uid)
        if worker is None:
            self._watch_sources(pod["metadata"].get("namespace") or "default", uid)
            worker = PodWorker(self, pod)
            self.workers[uid] = worker
            worker.start()
            assert worker.task is not None
            worker.task.add_done_callback(functools.partial(self._worker_done, uid))
        else:
            worker.update(pod)

    def _pod_updated(self, _old: Obj, pod: Obj) -> None:
        self._pod_added(pod)

    def _pod_deleted(self, pod: Obj) -> None:
        worker = self.workers.get(pod["metadata"]["uid"])
        if worker is not None:
            worker.mark_gone()

    def _worker_done(self, uid: str, _task: object) -> None:
        worker = self.workers.get(uid)
        if worker is not None and worker.finished:
            del self.workers[uid]
            self._unwatch_sources(worker.namespace, uid)

    def _watch_sources(self, namespace: str, uid: str) -> None:
        src = self._sources.get(namespace)
        if src is None:
            src = _NamespaceSources(self.client, namespace)
            src.config_maps.add_handler(
                on_add=self._config_map_changed,
                on_update=lambda _old, o: self._config_map_changed(o),
                on_delete=self._config_map_changed,
            )
            src.secrets.add_handler(
                on_add=self._secret_changed,
                on_update=lambda _old, o: self._secret_changed(o),
                on_delete=self._secret_changed,
            )
            src.start()
            self._sources[namespace] = src
            log.debug("Watching ConfigMaps and Secrets in namespace %s.", namespace)
        src.users.add(uid)

    def _unwatch_sources(self, namespace: str, uid: str) -> None:
        src = self._sources.get(namespace)
        if src is None:
            return
        src.users.discard(uid)
        if not src.users:
            # Removed from the map at once, so a pod arriving meanwhile starts a fresh watch
            # rather than share one that is shutting down.
            del self._sources[namespace]
            task = asyncio.create_task(src.stop(), name=f"kubelet-unwatch {namespace}")
            self._background.add(task)
            task.add_done_callback(self._background.discard)
            log.debug("Stopped watching ConfigMaps and Secrets in namespace %s.", namespace)

    def _config_map_changed(self, obj: Obj) -> None:
        self._source_changed("configMap", obj)

    def _secret_changed(self, obj: Obj) -> None:
        self._source_changed("secret", obj)

    def _source_changed(self, kind: str, obj: Obj) -> None:
        meta = obj.get("metadata") or {}
        ns, name = meta.get("namespace") or "", meta.get("name") or ""
        for w in self.workers.values():
            if w.namespace == ns and w.references(kind, name):
                w.wake(refresh_volumes=True)

    def _claims_changed(self, obj: Obj) -> None:
        ns = (obj.get("metadata") or {}).get("namespace")
        for w in self.workers.values():
            if w.volumes is None and (ns is None or ns == w.namespace):
                w.wake()

    # --- Node and Lease --------------------------------------------------------------------

    def _node_status(self) -> Obj:
        now = _now()
        cpus = str(os.cpu_count() or 1)
        memory = f"{_memory_kib()}Ki"
        try:
            st = os.statvfs(self.data_dir)
            storage = f"{st.f_blocks * st.f_frsize // 1024}Ki"
        except OSError:
            storage = "0"
        capacity = {"cpu": cpus, "memory": memory, "pods": "110", "ephemeral-storage": storage}

        def cond(ctype: str, status: str, reason: str, message: str) -> Obj:
            return {
                "type": ctype,
                "status": status,
                "lastHeartbeatTime": now,
                "lastTransitionTime": self._transitions.setdefault(ctype, now),
                "reason": reason,
                "message": message,
            }

        runtime = self.node.runtime
        return {
            "capacity": capacity,
            "allocatable": dict(capacity),
            "addresses": [
                {"type": "InternalIP", "address": self.host_ip},
                {"type": "Hostname", "address": self.node_name},
            ],
            "conditions": [
                cond(
                    "MemoryPressure",
                    "False",
                    "KubeletHasSufficientMemory",
                    "kubelet has sufficient memory available",
                ),
                cond(
                    "DiskPressure",
                    "False",
                    "KubeletHasNoDiskPressure",
                    "kubelet has no disk pressure",
                ),
                cond(
                    "PIDPressure",
                    "False",
                    "KubeletHasSufficientPID",
                    "kubelet has sufficient PID available",
                ),
                cond("Ready", "True", "KubeletReady", "kubelet is posting ready status"),
            ],
            "daemonEndpoints": {"kubeletEndpoint": {"Port": self.port}},
            "nodeInfo": {
                "machineID": _read("/etc/machine-id"),
                "systemUUID": _read("/sys/class/dmi/id/product_uuid") or _read("/etc/machine-id"),
                "bootID": _read("/proc/sys/kernel/random/boot_id"),
                "kernelVersion": platform.release(),
                "osImage": _os_image(),
                "containerRuntimeVersion": f"{runtime.name}://kubeling",
                "kubeletVersion": KUBELET_VERSION,
                "kubeProxyVersion": "",
                "operatingSystem": "linux",
                "architecture": _ARCH.get(platform.machine(), platform.machine()),
            },
        }

    async def _register_node(self) -> None:
        arch = _ARCH.get(platform.machine(), platform.machine())
        labels = {
            "beta.kubernetes.io/arch": arch,
            "beta.kubernetes.io/os": "linux",
            "kubernetes.io/arch": arch,
            "kubernetes.io/hostname": self.node_name,
            "kubernetes.io/os": "linux",
        }
        body: Obj = {
            "apiVersion": "v1",
            "kind": "Node",
            "metadata": {
                "name": self.node_name,
                "labels": labels,
                "annotations": {"volumes.kubernetes.io/controller-managed-attach-detach": "true"},
            },
            "spec": {"podCIDR": self.pod_cidr, "podCIDRs": [self.pod_cidr]},
        }
        try:
            node = await self.client.create(NODES, body)
        except AlreadyExists:
            node = await self.client.patch(
                NODES,
                name=self.node_name,
                patch={"metadata": {"labels": labels}},
                patch_type="merge",
            )
        self._node_uid = node["metadata"]["uid"]
        await self._post_node_status()
        log.info("Registered node %s.", self.node_name)

    async def _post_node_status(self) -> None:
        await self.client.patch(
            NODES,
            name=self.node_name,
            patch={"status": self._node_status()},
            patch_type="merge",
            subresource="status",
        )

    def _lease_body(self) -> Obj:
        return {
            "apiVersion": "coordination.k8s.io/v1",
            "kind": "Lease",
            "metadata": {
                "name": self.node_name,
                "namespace": LEASE_NAMESPACE,
                "ownerReferences": [
                    {
                        "apiVersion": "v1",
                        "kind": "Node",
                        "name": self.node_name,
                        "uid": self._node_uid,
                    }
                ],
            },
            "spec": {
                "holderIdentity": self.node_name,
                "leaseDurationSeconds": self.lease_seconds,
                "renewTime": _micro_now(),
            },
        }

    async def _renew_lease(self) -> None:
        try:
            await self.client.patch(
                LEASES,
                name=self.node_name,
                namespace=LEASE_NAMESPACE,
                patch={"spec": {"holderIdentity": self.node_name, "renewTime": _micro_now()}},
                patch_type="merge",
            )
        except NotFound:
            with contextlib.suppress(AlreadyExists):
                await self.client.create(LEASES, self._lease_body(), namespace=LEASE_NAMESPACE)

    async def _lease_loop(self) -> None:
        interval = self.lease_seconds / 4
        while True:
            await asyncio.sleep(interval)
            try:
                await self._renew_lease()
            except (StatusError, OSError) as exc:
                log.warning("Renewing the node lease failed: %s", exc)

    async def _status_loop(self) -> None:
        while True:
            await asyncio.sleep(self.node_status_seconds)
            try:
                await self._post_node_status()
            except NotFound:
                # Someone deleted the Node: register again, as the kubelet does on restart.
                with contextlib.suppress(StatusError):
                    await self._register_node()
            except (StatusError, OSError, Conflict) as exc:
                log.warning("Posting node status failed: %s", exc)


__all__ = ["Kubelet", "default_node_name"]


class _NamespaceSources:
    """The ConfigMaps and Secrets of one namespace, watched while pods there run here."""

    def __init__(self, client: Client, namespace: str) -> None:
        self.config_maps = Informer(client, CONFIGMAPS, namespace=namespace)
        self.secrets = Informer(client, SECRETS, namespace=namespace)
        self.users: set[str] = set()
        """The uids of this node's pods in the namespace; the watch stops with the last."""

    def start(self) -> None:
        self.config_maps.start()
        self.secrets.start()

    async def wait_synced(self) -> None:
        await self.config_maps.wait_synced()
        await self.secrets.wait_synced()

    async def stop(self) -> None:
        await self.config_maps.stop()
        await self.secrets.stop()
