"""Pod sandboxes: the one place that turns a pod's spec into runtime, network and mounts.

The pod-sync loop decides *what* should happen (create, start, restart, stop, delete);
``PodSandbox`` does it. ``Node`` holds what all pods share (data directory, runtime,
network, image store) and the node layout:

    <data>/pods/<uid>/volumes/kubernetes.io~<plugin>/<volume>   (upstream's layout)
    <data>/pods/<uid>/etc-hosts, resolv.conf, hostname
    <data>/pods/<uid>/containers/<name>/termination-log
    <data>/logs/pods/<ns>_<name>_<uid>/<container>/<restartCount>.log   (CRI format)

``PodSandbox.create`` is idempotent — calling it for a pod whose namespace and containers
already exist (an agent restart) attaches to them — and ``teardown`` works from whatever
is on disk, so it also cleans up after a set-up that failed half-way.

An agent stop (``Node.shutdown`` with ``keep``) stops every container and undoes every
mount, overlay and namespace, but leaves the directory of each pod still bound to the
node: disk emptyDirs keep their files (as upstream's keep theirs over a node reboot;
``medium: Memory`` ones are lost), and the worker's per-container stop records
(``containers/<name>/agent-stop.json``) let the next agent count the restart.
"""

from __future__ import annotations

import asyncio
import logging
import shutil
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from kubeling.agent import mounts
from kubeling.agent.env import expand
from kubeling.agent.errors import AgentError, ContainerError, VolumeSetupError
from kubeling.agent.images import ImageStore, ResolvedImage
from kubeling.agent.network import BridgeNetwork, PodNetwork, render_hosts, render_resolv_conf
from kubeling.agent.quantity import to_bytes, to_millicores
from kubeling.agent.runtime.base import (
    ContainerConfig,
    ContainerInfo,
    ContainerRuntime,
    ContainerStatus,
    ExecSession,
    Mount,
)
from kubeling.agent.volumes import (
    PreparedVolume,
    VolumeSources,
    prepare_pod_volumes,
    resolve_sub_path,
    teardown_pod_volumes,
)
from kubeling.agent.volumes.base import teardown_dir
from kubeling.machinery.types import Obj

log = logging.getLogger(__name__)

PLACEHOLDER_ARGV = ["sh", "-c", "trap 'exit 143' TERM INT; while :; do sleep 3600 & wait $!; done"]
"""What a container with no command runs on the host root: it waits until stopped. As PID 1
a bare ``sleep`` would ignore SIGTERM and every delete would take the full grace period;
this one ends at SIGTERM with 143, as a process killed by it reports."""

FQDN_MAX_LEN = 64
"""The kernel's nodename field: 64 characters (upstream's fqdnMaxLen for setHostnameAsFQDN)."""


@dataclass
class Node:
    """What every pod sandbox on this node shares."""

    data_dir: Path
    runtime: ContainerRuntime
    network: BridgeNetwork | None = None
    images: ImageStore | None = None
    cluster_domain: str = "cluster.local"

    def __post_init__(self) -> None:
        if self.images is None:
            self.images = ImageStore(self.data_dir)

    def pod_dir(self, pod_uid: str) -> Path:
        return self.data_dir / "pods" / pod_uid

    def pod_log_dir(self, namespace: str, name: str, pod_uid: str) -> Path:
        return self.data_dir / "logs" / "pods" / f"{namespace}_{name}_{pod_uid}"

    async def prepare_volumes(
        self, pod: Obj, sources: VolumeSources
    ) -> tuple[dict[str, PreparedVolume], list[VolumeSetupError]]:
        """All of the pod's volumes, in a worker thread (an NFS mount can block)."""
        pod_dir = self.pod_dir(pod["metadata"]["uid"])
        return await asyncio.to_thread(prepare_pod_volumes, pod, pod_dir=pod_dir, sources=sources)

    def known_pod_uids(self) -> set[str]:
        """Pods with something on this node: a directory, an address or a container."""
        uids: set[str] = set()
        pods = self.data_dir / "pods"
        if pods.exists():
            uids.update(p.name for p in pods.iterdir())
        if self.network is not None:
            uids.update(self.network.known_pods())
        return uids

    async def recover(self, keep: set[str]) -> tuple[list[ContainerInfo], list[str]]:
        """At agent start: adopt containers of pods in ``keep``, remove every other pod.

        Returns the adopted containers and the UIDs of the pods torn down.
        """
        adopted, _removed = await self.runtime.adopt_or_remove(lambda i: i.pod_uid in keep)
        gone = []
        for uid in sorted(self.known_pod_uids() - keep):
            await teardown_pod(self, uid)
            gone.append(uid)
        return adopted, gone

    async def shutdown(self, *, grace_seconds: float = 30, keep: Iterable[str] = ()) -> None:
        """Agent stop: every pod torn down, then the bridge if kubeling created it.

        The pods in ``keep`` (still bound to this node) lose their containers, mounts and
        namespace too, but keep their directory (disk emptyDirs, stop records) for the
        next agent; every other pod goes entirely. Logs are kept either way.
        """
        kept = set(keep)
        uids = self.known_pod_uids() | {i.pod_uid for i in await self.runtime.list_containers()}
        results = await asyncio.gather(
            *(
                teardown_pod(
                    self,
                    uid,
                    grace_seconds=grace_seconds,
                    keep_logs=True,
                    keep_dir=uid in kept,
                )
                for uid in sorted(uids)
            ),
            return_exceptions=True,
        )
        if self.network is not None:
            await self.network.remove_bridge()
        failures = [str(r) for r in results if isinstance(r, BaseException)]
        if failures:
            raise AgentError("; ".join(failures))


def container_id(pod_uid: str, name: str) -> str:
    return f"{pod_uid}_{name}"


def _numeric_user(user: str) -> tuple[int | None, int | None]:
    uid_s, _, gid_s = user.partition(":")
    uid = int(uid_s) if uid_s.isdigit() else None
    gid = int(gid_s) if gid_s.isdigit() else None
    return uid, gid


def container_argv(container: Obj, image: ResolvedImage, env: dict[str, str]) -> list[str]:
    """upstream's command/args rules over the image's Entrypoint/Cmd."""
    entrypoint = list(image.config.get("Entrypoint") or [])
    cmd = list(image.config.get("Cmd") or [])
    command = container.get("command")
    args = container.get("args")
    if command:
        argv = list(command) + list(args or [])
    elif args:
        argv = entrypoint + list(args)
    else:
        argv = entrypoint + cmd
    if not argv:
        if image.from_host:
            return list(PLACEHOLDER_ARGV)
        raise ContainerError(f"no command specified for container {container.get('name')}")
    return [expand(a, env) for a in argv]


@dataclass
class StartedContainer:
    status: ContainerStatus
    image: ResolvedImage
    log_path: Path


@dataclass
class PodSandbox:
    pod: Obj
    node: Node
    volumes: dict[str, PreparedVolume]
    network: PodNetwork | None = None
    images: dict[str, ResolvedImage] = field(default_factory=dict)

    @property
    def uid(self) -> str:
        return str(self.pod["metadata"]["uid"])

    @property
    def namespace(self) -> str:
        return str(self.pod["metadata"].get("namespace") or "default")

    @property
    def name(self) -> str:
        return str(self.pod["metadata"]["name"])

    @property
    def pod_dir(self) -> Path:
        return self.node.pod_dir(self.uid)

    @property
    def ip(self) -> str | None:
        return self.network.ip if self.network else None

    @property
    def hostname(self) -> str:
        return str((self.pod.get("spec") or {}).get("hostname") or self.name)[:63]

    @property
    def kernel_hostname(self) -> str:
        """The containers' hostname (``uname -n``, /etc/hostname): the short name, or the
        pod's FQDN when ``spec.setHostnameAsFQDN`` and a subdomain make one (upstream's
        GetNodenameForKernel, with its error and 64-character limit of the kernel field)."""
        spec = self.pod.get("spec") or {}
        subdomain = spec.get("subdomain") or ""
        if not (spec.get("setHostnameAsFQDN") and subdomain):
            return self.hostname
        fqdn = f"{self.hostname}.{subdomain}.{self.namespace}.svc.{self.node.cluster_domain}"
        if len(fqdn) > FQDN_MAX_LEN:
            raise AgentError(
                "failed to construct FQDN from pod hostname and cluster domain, FQDN "
                f"{fqdn} is too long ({FQDN_MAX_LEN} characters is the max, "
                f"{len(fqdn)} characters requested)"
            )
        return fqdn

    @classmethod
    async def create(
        cls, pod: Obj, *, node: Node, volumes: dict[str, PreparedVolume]
    ) -> PodSandbox:
        """The pod's network and files; idempotent (attaches to what already exists)."""
        sandbox = cls(pod=pod, node=node, volumes=volumes)
        # Before any network is set up: upstream fails the sandbox, and so the pod stays
        # ContainerCreating with FailedCreatePodSandBox events, when the FQDN cannot be used.
        sandbox.kernel_hostname  # noqa: B018
        sandbox.pod_dir.mkdir(parents=True, exist_ok=True)
        try:
            if node.network is not None:
                if node.runtime.runs_processes:
                    sandbox.network = await node.network.setup_pod(sandbox.uid)
                else:
                    sandbox.network = node.network.reserve(sandbox.uid)
            sandbox._write_etc_files()
        except BaseException:
            # Undo only what this call may have made; volumes are the caller's, and a pod
            # with containers (an attach after restart) is left for an explicit teardown.
            running = [i for i in await node.runtime.list_containers() if i.pod_uid == sandbox.uid]
            if node.network is not None and not running:
                await node.network.teardown_pod(sandbox.uid)
            raise
        return sandbox

    def _write_etc_files(self) -> None:
        spec = self.pod.get("spec") or {}
        ip = self.ip or "127.0.0.1"
        (self.pod_dir / "etc-hosts").write_text(
            render_hosts(
                pod_ip=ip,
                hostname=self.hostname,
                subdomain=spec.get("subdomain") or "",
                namespace=self.namespace,
                cluster_domain=self.node.cluster_domain,
                host_aliases=spec.get("hostAliases"),
            )
        )
        nameserver = self.node.network.dns_ip if self.node.network else "127.0.0.1"
        (self.pod_dir / "resolv.conf").write_text(
            render_resolv_conf(
                nameserver=nameserver,
                namespace=self.namespace,
                cluster_domain=self.node.cluster_domain,
                dns_policy=spec.get("dnsPolicy") or "ClusterFirst",
                dns_config=spec.get("dnsConfig"),
            )
        )
        (self.pod_dir / "hostname").write_text(self.kernel_hostname + "\n")

    def container_spec(self, name: str) -> Obj:
        spec = self.pod.get("spec") or {}
        for c in (spec.get("initContainers") or []) + (spec.get("containers") or []):
            if c.get("name") == name:
                return dict(c)
        raise ContainerError(f"pod {self.namespace}/{self.name} has no container {name}")

    def log_path(self, name: str, restart_count: int = 0) -> Path:
        return (
            self.node.pod_log_dir(self.namespace, self.name, self.uid)
            / name
            / f"{restart_count}.log"
        )

    def resolve_image(self, name: str) -> ResolvedImage:
        image = self.container_spec(name).get("image") or ""
        assert self.node.images is not None
        resolved = self.node.images.resolve(image)
        self.images[name] = resolved
        return resolved

    def _mounts(self, container: Obj, env: dict[str, str]) -> list[Mount]:
        out: list[Mount] = []
        targets = set()
        for index, vm in enumerate(container.get("volumeMounts") or []):
            volume = self.volumes.get(vm.get("name", ""))
            if volume is None:
                raise ContainerError(f"volume {vm.get('name')} is not prepared for this pod")
            host = volume.path
            sub = vm.get("subPath") or expand(vm.get("subPathExpr") or "", env)
            if sub:
                host = resolve_sub_path(volume, sub, container=container["name"], index=index)
            read_only = bool(vm.get("readOnly")) or volume.read_only
            out.append(Mount(host_path=host, container_path=vm["mountPath"], read_only=read_only))
            targets.add(vm["mountPath"].rstrip("/"))
        for target, source in (
            ("/etc/hosts", "etc-hosts"),
            ("/etc/resolv.conf", "resolv.conf"),
            ("/etc/hostname", "hostname"),
        ):
            if target not in targets:
                out.append(Mount(host_path=self.pod_dir / source, container_path=target))
        term_path = container.get("terminationMessagePath") or "/dev/termination-log"
        term = self.pod_dir / "containers" / container["name"] / "termination-log"
        term.parent.mkdir(parents=True, exist_ok=True)
        term.touch()
        out.append(Mount(host_path=term, container_path=term_path))
        return out

    def build_config(
        self, name: str, *, env: list[tuple[str, str]] | None = None, restart_count: int = 0
    ) -> tuple[ContainerConfig, ResolvedImage]:
        """The runtime config for one container (exposed so the sync loop can inspect it)."""
        container = self.container_spec(name)
        image = self.resolve_image(name)
        env_pairs: list[tuple[str, str]] = []
        for item in image.config.get("Env") or []:
            k, _, v = item.partition("=")
            env_pairs.append((k, v))
        env_map = dict(env_pairs)
        if env is None:
            # Without the caller's resolution (env.resolve_env) only literal values are known.
            for e in container.get("env") or []:
                if "valueFrom" not in e:
                    env_map[e["name"]] = expand(e.get("value") or "", env_map)
        else:
            env_map.update(env)  # already expanded by resolve_env
        pod_sc = (self.pod.get("spec") or {}).get("securityContext") or {}
        sc = container.get("securityContext") or {}
        img_uid, img_gid = _numeric_user(str(image.config.get("User") or ""))
        uid = sc.get("runAsUser", pod_sc.get("runAsUser", img_uid or 0))
        gid = sc.get("runAsGroup", pod_sc.get("runAsGroup", img_gid or 0))
        # The kubelet's order: fsGroup, then supplementalGroups (kuberuntime security_context).
        groups: list[int] = []
        for g in [pod_sc.get("fsGroup"), *(pod_sc.get("supplementalGroups") or [])]:
            if g is not None and int(g) not in groups:
                groups.append(int(g))
        limits = (container.get("resources") or {}).get("limits") or {}
        config = ContainerConfig(
            pod_uid=self.uid,
            pod_namespace=self.namespace,
            pod_name=self.name,
            name=name,
            argv=container_argv(container, image, env_map),
            log_path=self.log_path(name, restart_count),
            env=[f"{k}={v}" for k, v in env_map.items()],
            working_dir=container.get("workingDir") or image.config.get("WorkingDir") or "/",
            uid=int(uid),
            gid=int(gid),
            additional_gids=groups,
            hostname=self.kernel_hostname,
            mounts=self._mounts(container, env_map),
            netns_path=self.network.netns_path if self.network and self.network.netns else None,
            rootfs_layers=image.layers,
            memory_limit=to_bytes(limits["memory"]) if "memory" in limits else None,
            cpu_millis=to_millicores(limits["cpu"]) if "cpu" in limits else None,
            restart_count=restart_count,
        )
        return config, image

    async def start_container(
        self, name: str, *, env: list[tuple[str, str]] | None = None, restart_count: int = 0
    ) -> StartedContainer:
        """Start (or restart: the previous run is removed, volumes stay) one container.

        ``env`` is the container's environment as the sync loop resolved it
        (``env.resolve_env``: valueFrom, envFrom, service variables); None takes only
        the literal ``value`` entries. The image's ``Env`` comes first either way.
        """
        config, image = self.build_config(name, env=env, restart_count=restart_count)
        status = await self.node.runtime.start(container_id(self.uid, name), config)
        return StartedContainer(status=status, image=image, log_path=config.log_path)

    async def container_status(self, name: str) -> ContainerStatus | None:
        return await self.node.runtime.status(container_id(self.uid, name))

    async def wait_container(self, name: str, *, within: float | None = None) -> ContainerStatus:
        return await self.node.runtime.wait(container_id(self.uid, name), within=within)

    async def stop_container(
        self, name: str, *, grace_seconds: float = 30
    ) -> ContainerStatus | None:
        return await self.node.runtime.stop(
            container_id(self.uid, name), grace_seconds=grace_seconds
        )

    async def exec(
        self, name: str, argv: list[str], *, tty: bool = False, size: tuple[int, int] | None = None
    ) -> ExecSession:
        return await self.node.runtime.exec(container_id(self.uid, name), argv, tty=tty, size=size)

    def termination_message(self, name: str) -> str:
        path = self.pod_dir / "containers" / name / "termination-log"
        try:
            return path.read_text(errors="replace")[:4096]
        except OSError:
            return ""

    async def update_volumes(self, sources: VolumeSources) -> list[str]:
        """Re-project every ``..data`` volume; the names of those that changed."""
        changed = []
        for name, volume in self.volumes.items():
            if volume.updatable and await asyncio.to_thread(volume.refresh, sources):
                changed.append(name)
        return changed

    def _container_names(self) -> list[str]:
        spec = self.pod.get("spec") or {}
        kinds = ("initContainers", "containers", "ephemeralContainers")
        return [c["name"] for k in kinds for c in spec.get(k) or [] if c.get("name")]

    async def teardown(self, *, grace_seconds: float = 30, keep_logs: bool = False) -> None:
        await teardown_pod(
            self.node,
            self.uid,
            volumes=self.volumes.values(),
            container_names=self._container_names(),
            grace_seconds=grace_seconds,
            log_dir=self.node.pod_log_dir(self.namespace, self.name, self.uid),
            keep_logs=keep_logs,
        )


async def teardown_pod(
    node: Node,
    pod_uid: str,
    *,
    volumes: Iterable[PreparedVolume] = (),
    container_names: Iterable[str] = (),
    grace_seconds: float = 0,
    log_dir: Path | None = None,
    keep_logs: bool = False,
    keep_dir: bool = False,
) -> None:
    """Stop and remove everything of one pod; each step runs even if an earlier one failed.

    ``keep_dir`` (an agent stop with the pod still bound here) unmounts everything under
    the pod directory and removes every volume but the disk emptyDirs, and keeps the rest
    of the directory (see ``release_pod_dir``).

    The pod's containers are the ids of ``container_names`` (what the caller knows of the
    pod) and whatever the runtime lists for it; a failed listing (runc's fails when
    another pod's container goes at the same moment) still lets the known ones go, and is
    reported with every other failed step in one ``AgentError`` so the caller retries.
    """
    errors: list[str] = []
    ids = {container_id(pod_uid, n) for n in container_names}
    try:
        ids.update(i.id for i in await node.runtime.list_containers() if i.pod_uid == pod_uid)
    except AgentError as exc:
        errors.append(f"listing containers: {exc}")

    async def stop_and_remove(cid: str) -> None:
        try:
            status = await node.runtime.status(cid)
            if status is not None and status.state == "running":
                await node.runtime.stop(cid, grace_seconds=grace_seconds)
        except (AgentError, OSError) as exc:
            errors.append(f"stopping container {cid}: {exc}")
        try:
            await node.runtime.remove(cid)
        except (AgentError, OSError) as exc:
            errors.append(f"removing container {cid}: {exc}")

    await asyncio.gather(*(stop_and_remove(cid) for cid in sorted(ids)))
    pod_dir = node.pod_dir(pod_uid)
    if keep_dir:
        try:
            await asyncio.to_thread(release_pod_dir, pod_dir)
        except (AgentError, OSError) as exc:
            errors.append(f"pod directory: {exc}")
    else:
        for volume in list(volumes):
            try:
                await asyncio.to_thread(volume.teardown)
            except (AgentError, OSError) as exc:
                errors.append(f"volume {volume.name}: {exc}")
        try:
            await asyncio.to_thread(teardown_pod_volumes, pod_dir)
            await asyncio.to_thread(mounts.unmount_all_under, pod_dir)
            if pod_dir.exists():
                shutil.rmtree(pod_dir)
        except (AgentError, OSError) as exc:
            errors.append(f"pod directory: {exc}")
    if node.network is not None:
        try:
            await node.network.teardown_pod(pod_uid)
        except AgentError as exc:
            errors.append(f"network: {exc}")
    if not keep_logs:
        logs_root = node.data_dir / "logs" / "pods"
        dirs = (
            [log_dir]
            if log_dir
            else list(logs_root.glob(f"*_{pod_uid}"))
            if logs_root.exists()
            else []
        )
        for d in dirs:
            shutil.rmtree(d, ignore_errors=True)
    if errors:
        raise AgentError(f"teardown of pod {pod_uid} incomplete: " + "; ".join(errors))


EMPTY_DIR_PLUGIN = "kubernetes.io~empty-dir"


def release_pod_dir(pod_dir: Path) -> None:
    """Leave a pod's directory as a node reboot would: nothing mounted under it, disk
    emptyDirs with their files, every other volume removed (ConfigMaps, Secrets, tokens
    and the rest are written again when the pod starts on the next agent), ``medium:
    Memory`` emptyDirs emptied, and the termination-message files gone (a new run gets
    an empty one; the last message is in the worker's stop record)."""
    if not pod_dir.exists():
        return
    volumes = pod_dir / "volumes"
    empty_dirs = volumes / EMPTY_DIR_PLUGIN
    if empty_dirs.is_dir():
        for child in sorted(empty_dirs.iterdir()):
            if mounts.is_mount_point(child):
                teardown_dir(child)  # a tmpfs: its bytes are gone with the mount
    mounts.unmount_all_under(pod_dir)
    if volumes.is_dir():
        for plugin in sorted(volumes.iterdir()):
            if plugin.name != EMPTY_DIR_PLUGIN:
                teardown_dir(plugin)
    # Stable copies of atomically written volumes' subPaths (made again at container start).
    teardown_dir(pod_dir / "volume-subpaths")
    containers = pod_dir / "containers"
    if containers.is_dir():
        for term in containers.glob("*/termination-log"):
            term.unlink(missing_ok=True)
