"""One pod's worker: from bound to running to gone, level-triggered.

A ``PodWorker`` is one asyncio task that re-runs ``_sync`` whenever something it depends
on changes (the pod, a ConfigMap/Secret/claim it uses, a container exiting, a probe result,
a back-off expiring) and otherwise sleeps. Each sync moves the pod as far as it can:

1. volumes (``Node.prepare_volumes``; failures are ``FailedMount`` events and the pod
   stays ContainerCreating, retried with back-off and at once when an object appears);
2. the sandbox (network, /etc files);
3. init containers one at a time, then every container, each with its environment
   resolved now (``CreateContainerConfigError`` until it resolves), restarted per
   ``restartPolicy`` with the kubelet's CrashLoopBackOff (base doubling to a cap,
   measured from the container's finish, reset after 2 × cap without a crash);
4. status through ``pods/status`` when it changed.

Deletion is graceful: SIGTERM, the pod's grace period, SIGKILL, teardown of every mount
and the namespace, then the pod object is deleted with grace 0 and a UID precondition (so
a pod re-created under the same name is never touched). A worker that finds its pod
already terminating (the agent restarted mid-deletion) adopts the containers still
running, sends them SIGTERM again and gives them what is left of the grace period
(``metadata.deletionTimestamp`` is when it ends); a preStop hook that already ran (its
marker is in the pod directory) is not run again.

Agent restarts: ``stop_containers`` (the agent's stop) writes each container's last
termination to ``<pod dir>/containers/<name>/agent-stop.json``; the next agent's worker
reads it back, so the container is started again as a restart (``restartCount`` + 1,
``lastState.terminated`` from the record, the previous run's log kept for ``--previous``),
init containers run again (the sandbox is new, as upstream re-runs them after a node
reboot), and ``restartPolicy`` decides as for any exit: a ``Never`` pod whose container
was stopped ends Failed.

Service-account tokens: unless ``automountServiceAccountToken`` is false on the pod or its
ServiceAccount, the worker adds the volume upstream's admission plugin would add
(``kube-api-access-*``: token from ``serviceaccounts/token``, ``ca.crt``, ``namespace``)
to its own copy of the pod, mounted at ``/var/run/secrets/kubernetes.io/serviceaccount``.
"""

from __future__ import annotations

import asyncio
import copy
import hashlib
import json
import logging
import os
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kubeling.agent.env import ContainerConfigError, expand, resolve_env
from kubeling.agent.errors import AgentError, NotSupportedError, VolumeSetupError
from kubeling.agent.logs import read_log
from kubeling.agent.podsync.prober import run_probe
from kubeling.agent.podsync.status import (
    ContainerRecord,
    conditions,
    now_rfc3339,
    pod_phase,
    restart_wanted,
)
from kubeling.agent.quantity import to_bytes
from kubeling.agent.runtime.base import ContainerStatus
from kubeling.agent.sandbox import PodSandbox, container_id, teardown_pod
from kubeling.agent.volumes import PreparedVolume, SubPathDirectoryError, VolumeSources
from kubeling.client.events import NORMAL, WARNING
from kubeling.machinery.errors import Conflict, NotFound, StatusError
from kubeling.machinery.resources import PODS, SERVICEACCOUNTS
from kubeling.machinery.types import Obj

if TYPE_CHECKING:
    from kubeling.agent.kubelet import Kubelet

log = logging.getLogger(__name__)

SA_MOUNT_PATH = "/var/run/secrets/kubernetes.io/serviceaccount"
TOKEN_SECONDS = 3607
"""What upstream's admission plugin asks for the automounted token."""
ROOT_CA_CONFIGMAP = "kube-root-ca.crt"
STOP_RECORD = "agent-stop.json"
"""Per container, in the pod directory: its last termination, written at agent stop."""
PRE_STOP_MARKER = "pre-stop-ran"
"""Per container, in the pod directory: its preStop hook ran for the pod's deletion."""
MIN_GRACE = 2.0
"""upstream's minimumGracePeriodInSeconds: what SIGTERM gets at least, after a preStop hook
or when the deletion's grace period ran out while no agent was there."""
TEARDOWN_RETRY_FIRST = 0.2
TEARDOWN_RETRY_MAX = 30.0
"""Back-off between attempts to tear a deleted pod down (seconds)."""


@dataclass
class _Backoff:
    delay: float
    last: float
    """Monotonic time of the finish that set ``delay``."""


def _fmt_duration(seconds: float) -> str:
    """Go's Duration.String for the whole seconds and minutes back-off uses (10s, 1m20s, 5m0s)."""
    total = int(seconds)
    if total < 60:
        return f"{seconds:g}s" if seconds != total else f"{total}s"
    return f"{total // 60}m{total % 60}s"


class PodWorker:
    def __init__(self, kubelet: Kubelet, pod: Obj) -> None:
        self.k = kubelet
        self.pod = pod
        meta = pod["metadata"]
        self.uid: str = meta["uid"]
        self.namespace: str = meta.get("namespace") or "default"
        self.name: str = meta["name"]
        self.gone = False
        self.finished = False
        self._wake = asyncio.Event()
        self._refresh = False
        self._next: float | None = None
        self.task: asyncio.Task[None] | None = None
        self.records: dict[str, ContainerRecord] = {}
        self._generation: dict[str, int] = {}
        self._exits: dict[str, tuple[int, ContainerStatus]] = {}
        self._finished_at: dict[str, float] = {}
        self._backoff: dict[str, _Backoff] = {}
        self._backoff_reported: dict[str, float] = {}
        self._config_retry = 0
        self._volume_retry = 0
        self._tasks: dict[str, list[asyncio.Task[None]]] = {}
        self.volumes: dict[str, PreparedVolume] | None = None
        self.sandbox: PodSandbox | None = None
        self.effective: Obj | None = None
        self.start_time: str | None = None
        self.terminal = False
        self._last_status: Obj | None = None
        self._tokens: dict[tuple[str | None, int], tuple[bytes, float]] = {}
        self._automount_volume = ""
        self._pod_reason: tuple[str, str] | None = None
        self._rerun_init: set[str] = set()
        """Init containers that succeeded before the agent stopped: run again, as the
        sandbox they prepared is new."""

    # --- the outside's side ----------------------------------------------------------------

    def start(self) -> None:
        self.task = asyncio.create_task(
            self._run(), name=f"pod-worker {self.namespace}/{self.name}"
        )

    def update(self, pod: Obj) -> None:
        old = self.pod.get("metadata") or {}
        new = pod.get("metadata") or {}
        self.pod = pod
        # Changed labels or annotations rewrite downwardAPI files, as upstream does.
        changed = any(old.get(k) != new.get(k) for k in ("labels", "annotations"))
        self.wake(refresh_volumes=changed)

    def mark_gone(self) -> None:
        self.gone = True
        self.wake()

    def wake(self, *, refresh_volumes: bool = False) -> None:
        if refresh_volumes:
            self._refresh = True
        self._wake.set()

    def references(self, kind: str, name: str) -> bool:
        """Whether a ConfigMap/Secret called ``name`` feeds this pod's volumes or env."""
        return name in _referenced(self.effective or self.pod, kind)

    async def cancel(self) -> None:
        """Stop the worker without touching the pod (agent shutdown)."""
        self._cancel_container_tasks()
        if self.task is not None:
            self.task.cancel()
            try:
                await self.task
            except (asyncio.CancelledError, Exception):
                pass

    # --- the loop --------------------------------------------------------------------------

    async def _run(self) -> None:
        failures = 0
        while not self.finished:
            self._wake.clear()
            self._next = None
            try:
                await self._sync()
                failures = 0
            except asyncio.CancelledError:
                raise
            except Exception:
                failures += 1
                log.exception("Syncing pod %s/%s failed; retrying.", self.namespace, self.name)
                self._schedule(min(0.5 * 2**failures, 30.0))
            if self.finished:
                break
            timeout = None if self._next is None else max(0.0, self._next - time.monotonic())
            try:
                await asyncio.wait_for(self._wake.wait(), timeout)
            except TimeoutError:
                pass
        self._cancel_container_tasks()

    def _schedule(self, delay: float) -> None:
        at = time.monotonic() + delay
        if self._next is None or at < self._next:
            self._next = at

    async def _sync(self) -> None:
        pod = self.pod
        if self.gone or (pod.get("metadata") or {}).get("deletionTimestamp"):
            await self._terminate()
            return
        if self.terminal:
            return
        if self.start_time is None:
            self.start_time = (pod.get("status") or {}).get("startTime") or now_rfc3339()
            if (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed"):
                # Finished before this agent started (a restart): never run it again, as
                # the kubelet never restarts a terminal pod; keep its statuses for logs.
                self._records_from_status()
                self.terminal = True
                return
        self._ensure_records()
        await self.k.sources_synced(self.namespace)
        if self.volumes is None:
            if not await self._setup_volumes():
                await self._write_status()
                return
        elif self._refresh or self._tokens_due():
            self._refresh = False
            await self._refresh_volumes()
        if self.sandbox is None and not await self._create_sandbox():
            await self._write_status()
            return
        self._collect_exits()
        message = await self._local_storage_exceeded()
        if message is not None:
            await self._evict("Evicted", message)
            return
        if self._past_deadline():
            await self._evict(
                "DeadlineExceeded", "Pod was active on the node longer than the specified deadline"
            )
            return
        await self._run_containers()
        phase = self._phase()
        if phase in ("Succeeded", "Failed"):
            await self._finish(phase)
        await self._write_status(phase)

    # --- local storage limits --------------------------------------------------------------

    async def _local_storage_exceeded(self) -> str | None:
        """upstream's eviction message when a disk emptyDir outgrows its ``sizeLimit``."""
        limits = []
        for v in (self.pod.get("spec") or {}).get("volumes") or []:
            ed = v.get("emptyDir")
            if ed is not None and ed.get("sizeLimit") and (ed.get("medium") or "") == "":
                volume = (self.volumes or {}).get(v["name"])
                if volume is not None:
                    limits.append((v["name"], str(ed["sizeLimit"]), volume.path))
        if not limits:
            return None
        # The kubelet's eviction manager checks on its housekeeping period; kubeling every 2 s.
        self._schedule(2.0)
        for name, limit, path in limits:
            used = await asyncio.to_thread(_disk_usage, path)
            if used > to_bytes(limit):
                return f'Usage of EmptyDir volume "{name}" exceeds the limit "{limit}". '
        return None

    def _past_deadline(self) -> bool:
        """``activeDeadlineSeconds`` since the pod's start has passed (then: Failed)."""
        deadline = (self.pod.get("spec") or {}).get("activeDeadlineSeconds")
        if deadline is None or self.start_time is None:
            return False
        started = datetime.strptime(self.start_time, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
        left = started.timestamp() + int(deadline) - time.time()
        if left > 0:
            self._schedule(left)
            return False
        return True

    async def _evict(self, reason: str, message: str) -> None:
        """Killed, Failed with ``reason``, never restarted: the eviction manager's and the
        active-deadline handler's way to end a pod."""
        kind = WARNING if reason == "Evicted" else NORMAL  # the deadline event is Normal
        self.k.recorder.event(self.pod, kind, reason, message)
        self._cancel_container_tasks()
        assert self.sandbox is not None
        for name, rec in self.records.items():
            if not rec.running:
                continue
            self.k.recorder.event(self.pod, NORMAL, "Killing", f"Stopping container {name}")
            st = await self.sandbox.stop_container(name, grace_seconds=0)
            term: Obj = {
                "exitCode": st.exit_code if st and st.exit_code is not None else 137,
                "reason": "Error",
                "startedAt": (rec.state.get("running") or {}).get("startedAt"),
                "finishedAt": (st.finished_at if st else "") or now_rfc3339(),
                "containerID": rec.container_id,
            }
            rec.state = {"terminated": term}
            rec.ready = False
        self._pod_reason = (reason, message)
        await self._finish("Failed")
        await self._write_status("Failed")

    # --- records ---------------------------------------------------------------------------

    def _specs(self) -> tuple[list[Obj], list[Obj]]:
        spec = (self.effective or self.pod).get("spec") or {}
        return list(spec.get("initContainers") or []), list(spec.get("containers") or [])

    def _ensure_records(self) -> None:
        if self.records:
            return
        init, main = self._specs()
        status = self.pod.get("status") or {}
        counts = {
            s.get("name"): int(s.get("restartCount") or 0)
            for s in (status.get("containerStatuses") or [])
            + (status.get("initContainerStatuses") or [])
        }
        for c in init:
            self.records[c["name"]] = ContainerRecord(
                name=c["name"],
                image=c.get("image", ""),
                init=True,
                restart_count=counts.get(c["name"], 0),
                state={"waiting": {"reason": "PodInitializing"}},
            )
        waiting = "PodInitializing" if init else "ContainerCreating"
        for c in main:
            self.records[c["name"]] = ContainerRecord(
                name=c["name"],
                image=c.get("image", ""),
                restart_count=counts.get(c["name"], 0),
                state={"waiting": {"reason": waiting}},
            )
        last = {
            s.get("name"): s.get("lastState") or {}
            for s in (status.get("containerStatuses") or [])
            + (status.get("initContainerStatuses") or [])
        }
        for name, rec in self.records.items():
            # An agent killed without stopping: the run before the adopted one stays known.
            if (last.get(name) or {}).get("terminated"):
                rec.last_state = copy.deepcopy(last[name])
        self._restore_stop_records()

    # --- what survives an agent stop -------------------------------------------------------

    def _stop_record_path(self, name: str) -> Path:
        return self.k.node.pod_dir(self.uid) / "containers" / name / STOP_RECORD

    def _save_stop_records(self) -> None:
        """Each container's last termination, for the next agent (see the module doc)."""
        for name, rec in self.records.items():
            term = rec.terminated or rec.last_state.get("terminated")
            if not rec.ever_started or not term:
                continue
            path = self._stop_record_path(name)
            record = {"restartCount": rec.restart_count, "terminated": term, "init": rec.init}
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
                tmp = path.with_suffix(".tmp")
                tmp.write_text(json.dumps(record))
                tmp.replace(path)
            except OSError as exc:
                log.warning(
                    "Recording the stop of %s/%s %s: %s", self.namespace, self.name, name, exc
                )

    def _restore_stop_records(self) -> None:
        """A pod the previous agent stopped: each container that ran is terminated, as the
        record says, so the next start counts as a restart."""
        policy = (self.pod.get("spec") or {}).get("restartPolicy") or "Always"
        for name, rec in self.records.items():
            try:
                saved = json.loads(self._stop_record_path(name).read_text())
                term = dict(saved["terminated"])
                count = int(saved["restartCount"])
            except (OSError, ValueError, KeyError, TypeError):
                continue
            rec.restart_count = count
            rec.state = {"terminated": term}
            rec.container_id = str(term.get("containerID") or "")
            rec.ever_started = True
            self._finished_at[name] = time.monotonic()
            if rec.init and policy != "Never":
                self._rerun_init.add(name)
            log.info(
                "Container %s of pod %s/%s was stopped with the agent (exit code %s).",
                name,
                self.namespace,
                self.name,
                term.get("exitCode"),
            )

    def _forget_stop_record(self, name: str) -> None:
        self._stop_record_path(name).unlink(missing_ok=True)

    def _records_from_status(self) -> None:
        status = self.pod.get("status") or {}
        for key, init in (("initContainerStatuses", True), ("containerStatuses", False)):
            for cs in status.get(key) or []:
                self.records[cs["name"]] = ContainerRecord(
                    name=cs["name"],
                    image=cs.get("image", ""),
                    init=init,
                    restart_count=int(cs.get("restartCount") or 0),
                    state=cs.get("state") or {},
                    last_state=cs.get("lastState") or {},
                    container_id=cs.get("containerID", ""),
                    image_id=cs.get("imageID", ""),
                    ever_started=True,
                )

    def _tokens_due(self) -> bool:
        """A projected token is past 80% of its lifetime (upstream's refresh rule)."""
        now = time.monotonic()
        due = False
        for (_aud, seconds), (_token, fetched) in self._tokens.items():
            left = fetched + 0.8 * seconds - now
            if left <= 0:
                due = True
            else:
                self._schedule(left)
        return due

    def _lists(self) -> tuple[list[ContainerRecord], list[ContainerRecord]]:
        init, main = self._specs()
        return [self.records[c["name"]] for c in init], [self.records[c["name"]] for c in main]

    def _phase(self) -> str:
        init, main = self._lists()
        policy = (self.pod.get("spec") or {}).get("restartPolicy") or "Always"
        return pod_phase(init=init, main=main, restart_policy=policy)

    # --- volumes ---------------------------------------------------------------------------

    def _effective_pod(self) -> Obj:
        """The pod as the containers see it: plus the service-account volume when due."""
        pod = copy.deepcopy(self.pod)
        spec = pod.setdefault("spec", {})
        if self._automount(pod):
            name = self._automount_volume or (
                "kube-api-access-" + hashlib.sha256(self.uid.encode()).hexdigest()[:5]
            )
            self._automount_volume = name
            spec.setdefault("volumes", []).append(
                {
                    "name": name,
                    "projected": {
                        "defaultMode": 0o644,
                        "sources": [
                            {
                                "serviceAccountToken": {
                                    "expirationSeconds": TOKEN_SECONDS,
                                    "path": "token",
                                }
                            },
                            {
                                "configMap": {
                                    "name": ROOT_CA_CONFIGMAP,
                                    "items": [{"key": "ca.crt", "path": "ca.crt"}],
                                }
                            },
                            {
                                "downwardAPI": {
                                    "items": [
                                        {
                                            "path": "namespace",
                                            "fieldRef": {
                                                "apiVersion": "v1",
                                                "fieldPath": "metadata.namespace",
                                            },
                                        }
                                    ]
                                }
                            },
                        ],
                    },
                }
            )
            for c in (spec.get("initContainers") or []) + (spec.get("containers") or []):
                c.setdefault("volumeMounts", []).append(
                    {"name": name, "mountPath": SA_MOUNT_PATH, "readOnly": True}
                )
        status = pod.setdefault("status", {})
        status["hostIP"] = self.k.host_ip
        status["hostIPs"] = [{"ip": self.k.host_ip}]
        if self.sandbox is not None and self.sandbox.ip:
            status["podIP"] = self.sandbox.ip
            status["podIPs"] = [{"ip": self.sandbox.ip}]
        return pod

    def _automount(self, pod: Obj) -> bool:
        spec = pod.get("spec") or {}
        if spec.get("automountServiceAccountToken") is False:
            return False
        for c in (spec.get("initContainers") or []) + (spec.get("containers") or []):
            for m in c.get("volumeMounts") or []:
                if (m.get("mountPath") or "").rstrip("/") == SA_MOUNT_PATH:
                    return False  # already there (an admission plugin, or the user)
        if spec.get("automountServiceAccountToken") is True:
            return True
        sa = self.k.service_account(self.namespace, _sa_name(pod))
        return not (sa is not None and sa.get("automountServiceAccountToken") is False)

    async def _sources(self, pod: Obj) -> VolumeSources:
        ns = self.namespace
        config_maps = self.k.config_maps(ns)
        if ROOT_CA_CONFIGMAP not in config_maps and self.k.ca_cert:
            # Upstream's root-CA publisher writes this ConfigMap in every namespace; until
            # kubeling has one, the agent supplies the cluster CA itself.
            config_maps[ROOT_CA_CONFIGMAP] = {"data": {"ca.crt": self.k.ca_cert.decode()}}
        claims: dict[str, Obj] = {}
        claim_errors: dict[str, str] = {}
        for v in (pod.get("spec") or {}).get("volumes") or []:
            claim = (v.get("persistentVolumeClaim") or {}).get("claimName")
            if not claim:
                continue
            problem = self.k.claim_problem(ns, claim)
            pv = self.k.bound_volume(ns, claim) if problem is None else None
            if pv is not None:
                claims[claim] = pv
            elif problem is not None:
                claim_errors[claim] = problem
        token_errors: dict[tuple[str | None, int], str] = {}
        for aud, seconds in _token_requests(pod):
            cached = self._tokens.get((aud, seconds))
            if cached is not None and time.monotonic() - cached[1] < 0.8 * seconds:
                continue
            try:
                token = await self._request_token(pod, aud, seconds)
                self._tokens[(aud, seconds)] = (token, time.monotonic())
            except StatusError as exc:
                token_errors[(aud, seconds)] = str(exc)

        def token_source(audience: str | None, seconds: int) -> bytes:
            key = (audience, seconds)
            if key in token_errors:
                raise ValueError(f"failed to fetch token: {token_errors[key]}")
            if key not in self._tokens:
                raise ValueError("failed to fetch token: no token requested")
            return self._tokens[key][0]

        return VolumeSources(
            config_maps=config_maps,
            secrets=self.k.secrets(ns),
            claims=claims,
            claim_errors=claim_errors,
            service_account_token=token_source,
            pod=pod,
        )

    async def _request_token(self, pod: Obj, audience: str | None, seconds: int) -> bytes:
        body: Obj = {
            "apiVersion": "authentication.k8s.io/v1",
            "kind": "TokenRequest",
            "spec": {
                "audiences": [audience] if audience else [],
                "expirationSeconds": seconds,
                "boundObjectRef": {
                    "apiVersion": "v1",
                    "kind": "Pod",
                    "name": self.name,
                    "uid": self.uid,
                },
            },
        }
        out = await self.k.client.create(
            SERVICEACCOUNTS, body, namespace=self.namespace, name=_sa_name(pod), subresource="token"
        )
        return str((out.get("status") or {}).get("token") or "").encode()

    async def _setup_volumes(self) -> bool:
        effective = self._effective_pod()
        sources = await self._sources(effective)
        prepared, errors = await self.k.node.prepare_volumes(effective, sources)
        if errors:
            for err in errors:
                self.k.recorder.event(self.pod, WARNING, "FailedMount", err.event_message)
            self._volume_retry += 1
            self._schedule(min(0.5 * 2 ** (self._volume_retry - 1), 30.0))
            return False
        self._volume_retry = 0
        self.volumes = prepared
        self.effective = effective
        return True

    async def _refresh_volumes(self) -> None:
        if self.volumes is None:
            return
        self.effective = self._merge_meta(self.effective or self._effective_pod())
        sources = await self._sources(self.effective)
        for name, volume in self.volumes.items():
            if not volume.updatable:
                continue
            try:
                if await asyncio.to_thread(volume.refresh, sources):
                    log.debug("Updated volume %s of pod %s/%s.", name, self.namespace, self.name)
            except VolumeSetupError as exc:
                # Upstream keeps the last good content when the source vanishes or breaks.
                log.info(
                    "Volume %s of pod %s/%s not refreshed: %s", name, self.namespace, self.name, exc
                )

    def _merge_meta(self, effective: Obj) -> Obj:
        """The latest labels and annotations (for downwardAPI files) on the effective pod."""
        out = copy.deepcopy(effective)
        meta = self.pod.get("metadata") or {}
        for key in ("labels", "annotations"):
            if key in meta:
                out["metadata"][key] = copy.deepcopy(meta[key])
            else:
                out["metadata"].pop(key, None)
        return out

    # --- sandbox and containers ------------------------------------------------------------

    async def _create_sandbox(self) -> bool:
        assert self.effective is not None and self.volumes is not None
        spec = self.pod.get("spec") or {}
        shared = [k for k in ("hostNetwork", "hostPID", "hostIPC") if spec.get(k)]
        if shared:
            # Pods never get a route beyond kubeling's bridge, so host namespaces are not
            # shared; say so rather than let the pod believe it has them.
            self.k.recorder.event(
                self.pod,
                WARNING,
                "HostNamespacesIgnored",
                f"kubeling runs every pod in its own namespaces: {', '.join(shared)} ignored",
            )
        try:
            self.sandbox = await PodSandbox.create(
                self.effective, node=self.k.node, volumes=self.volumes
            )
        except AgentError as exc:
            self.k.recorder.event(
                self.pod, WARNING, "FailedCreatePodSandBox", f"Failed to create pod sandbox: {exc}"
            )
            self._schedule(5.0)
            return False
        self.effective = self._effective_pod_with(self.effective)
        self.sandbox.pod = self.effective
        await self._adopt()
        return True

    def _effective_pod_with(self, effective: Obj) -> Obj:
        out = copy.deepcopy(effective)
        status = out.setdefault("status", {})
        if self.sandbox is not None and self.sandbox.ip:
            status["podIP"] = self.sandbox.ip
            status["podIPs"] = [{"ip": self.sandbox.ip}]
        return out

    async def _adopt(self) -> None:
        """Containers an earlier agent left: running ones are watched, exited ones judged."""
        assert self.sandbox is not None
        for name, rec in self.records.items():
            st = await self.sandbox.container_status(name)
            if st is None or st.state not in ("running", "exited"):
                continue
            rec.ever_started = True
            rec.container_id = f"{self.k.node.runtime.name}://{container_id(self.uid, name)}"
            self._generation[name] = self._generation.get(name, 0) + 1
            self._rerun_init.discard(name)
            self._forget_stop_record(name)  # the runtime still has it: that is the truth
            if st.state == "running":
                rec.state = {"running": {"startedAt": st.started_at or now_rfc3339()}}
                self._after_start(name)
            else:
                self._exits[name] = (self._generation[name], st)
            log.info(
                "Adopted container %s of pod %s/%s (%s).", name, self.namespace, self.name, st.state
            )

    def _collect_exits(self) -> None:
        for name, (gen, st) in list(self._exits.items()):
            del self._exits[name]
            rec = self.records.get(name)
            if rec is None or gen != self._generation.get(name):
                continue
            self._stop_container_tasks(name)
            self._record_exit(name, rec, st)

    def _record_exit(self, name: str, rec: ContainerRecord, st: ContainerStatus) -> None:
        """The container ended as ``st`` says: its record becomes terminated."""
        code = st.exit_code if st.exit_code is not None else 137
        term: Obj = {
            "exitCode": code,
            "reason": "OOMKilled" if st.oom_killed else "Completed" if code == 0 else "Error",
            "startedAt": st.started_at or (rec.state.get("running") or {}).get("startedAt"),
            "finishedAt": st.finished_at or now_rfc3339(),
            "containerID": rec.container_id,
        }
        if self.sandbox is not None:
            message = self.sandbox.termination_message(name)
            policy = self._container_spec(name).get("terminationMessagePolicy")
            if not message and code != 0 and policy == "FallbackToLogsOnError":
                # upstream: the log's last 80 lines, at most 2048 bytes of them.
                log_file = self.sandbox.log_path(name, rec.restart_count)
                message = read_log(log_file, tail=80)[-2048:].decode(errors="replace")
            if message:
                term["message"] = message
        rec.state = {"terminated": term}
        rec.ready = False
        rec.started = False
        self._finished_at[name] = time.monotonic()

    async def _run_containers(self) -> None:
        init_specs, main_specs = self._specs()
        policy = (self.pod.get("spec") or {}).get("restartPolicy") or "Always"
        for c in init_specs:
            rec = self.records[c["name"]]
            if rec.succeeded and c["name"] not in self._rerun_init:
                continue
            if rec.running:
                return
            t = rec.terminated
            if t is not None and policy == "Never":
                return
            await self._start(c, rec)
            return
        for c in main_specs:
            rec = self.records[c["name"]]
            if rec.running:
                continue
            t = rec.terminated
            if t is not None and not restart_wanted(policy, int(t.get("exitCode") or 0)):
                continue
            await self._start(c, rec)

    def _pod_ref(self) -> str:
        return f"{self.name}_{self.namespace}({self.uid})"

    def _in_backoff(self, name: str, rec: ContainerRecord) -> float:
        """Seconds left of the container's back-off (0: start now); updates the entry."""
        if not rec.ever_started:
            return 0.0
        finished = self._finished_at.get(name, time.monotonic())
        entry = self._backoff.get(name)
        now = time.monotonic()
        if entry is not None and finished - entry.last <= 2 * self.k.backoff_max:
            left = entry.delay - (now - finished)
            if left > 0:
                return left
            entry.delay = min(entry.delay * 2, self.k.backoff_max)
            entry.last = finished
            return 0.0
        self._backoff[name] = _Backoff(delay=self.k.backoff_base, last=finished)
        return 0.0

    async def _start(self, c: Obj, rec: ContainerRecord) -> None:
        assert self.sandbox is not None and self.effective is not None
        name = c["name"]
        left = self._in_backoff(name, rec)
        if left > 0:
            delay = self._backoff[name].delay
            if rec.terminated is not None:
                rec.last_state = {"terminated": rec.terminated}
            rec.state = {
                "waiting": {
                    "reason": "CrashLoopBackOff",
                    "message": f"back-off {_fmt_duration(delay)} restarting failed "
                    f"container={name} pod={self._pod_ref()}",
                }
            }
            if self._backoff_reported.get(name) != self._finished_at.get(name):
                self._backoff_reported[name] = self._finished_at.get(name, 0.0)
                self.k.recorder.event(
                    self.pod,
                    WARNING,
                    "BackOff",
                    f"Back-off restarting failed container {name} in pod {self._pod_ref()}",
                )
            self._schedule(left)
            return
        ns = self.namespace
        try:
            links = (self.pod.get("spec") or {}).get("enableServiceLinks")
            env = resolve_env(
                self.effective,
                c,
                config_maps=self.k.config_maps(ns),
                secrets=self.k.secrets(ns),
                service_env=self.k.service_env(ns, links=links is not False),
            )
        except ContainerConfigError as exc:
            self._config_error(rec, str(exc))
            return
        restart = rec.ever_started
        count = rec.restart_count + (1 if restart else 0)
        image = self.sandbox.resolve_image(name)
        if image.from_host:
            self.k.recorder.event(self.pod, NORMAL, "Pulled", image.note)
        else:
            self.k.recorder.event(
                self.pod,
                NORMAL,
                "Pulled",
                f'Container image "{c.get("image", "")}" already present on machine',
            )
        message = _sub_path_problem(c, env)
        if message is not None:
            self._config_error(rec, message)
            return
        try:
            started = await self.sandbox.start_container(name, env=env, restart_count=count)
        except VolumeSetupError as exc:
            # A subPath the volume cannot give (a symlink out of it, say): upstream's
            # CreateContainerConfigError with a text that tells nothing of the host, not a
            # failed start. The container never ran, so no restart is counted.
            log.info("Preparing subPath of %s/%s %s: %s", self.namespace, self.name, name, exc)
            step = "create subPath directory" if isinstance(exc, SubPathDirectoryError) else None
            self._config_error(
                rec,
                f'failed to {step or "prepare subPath"} for volumeMount "{exc.volume}" of '
                f'container "{name}"',
            )
            return
        except AgentError as exc:
            self.k.recorder.event(self.pod, WARNING, "Failed", f"Error: {exc}")
            self._forget_stop_record(name)
            if restart and rec.terminated is not None:
                rec.last_state = {"terminated": rec.terminated}
            rec.restart_count = count
            rec.ever_started = True
            now = now_rfc3339()
            rec.state = {
                "terminated": {
                    "exitCode": 128,
                    "reason": "StartError",
                    "message": str(exc),
                    "startedAt": now,
                    "finishedAt": now,
                }
            }
            self._finished_at[name] = time.monotonic()
            self._schedule(self.k.backoff_base)
            return
        self._config_retry = 0
        self._forget_stop_record(name)
        self._rerun_init.discard(name)
        if restart and rec.terminated is not None:
            rec.last_state = {"terminated": rec.terminated}
        rec.restart_count = count
        rec.ever_started = True
        rec.container_id = f"{self.k.node.runtime.name}://{container_id(self.uid, name)}"
        rec.image_id = image.name if not image.from_host else f"kubeling-host-root://{image.name}"
        rec.state = {"running": {"startedAt": started.status.started_at or now_rfc3339()}}
        self.k.recorder.event(self.pod, NORMAL, "Created", f"Created container: {name}")
        self.k.recorder.event(self.pod, NORMAL, "Started", f"Started container {name}")
        self._generation[name] = self._generation.get(name, 0) + 1
        self._after_start(name)
        post_start = (c.get("lifecycle") or {}).get("postStart")
        if post_start:
            # As the kubelet: the start is not done until the hook is; a failed hook kills
            # the container (the message stays out of the event: it may carry secrets).
            error = await self._run_hook(name, post_start, self.grace())
            if error is not None:
                log.info(
                    "postStart hook of %s/%s %s failed: %s", self.namespace, self.name, name, error
                )
                self.k.recorder.event(
                    self.pod, WARNING, "FailedPostStartHook", "PostStartHook failed"
                )
                await self.sandbox.stop_container(name, grace_seconds=self.grace())

    def _config_error(self, rec: ContainerRecord, message: str) -> None:
        """The container cannot be created as specified (yet): waiting with upstream's
        ``CreateContainerConfigError``, a ``Failed`` event, a retry with back-off; its
        restart count stays, as nothing ran."""
        if rec.terminated is not None:
            rec.last_state = {"terminated": rec.terminated}
        rec.state = {"waiting": {"reason": "CreateContainerConfigError", "message": message}}
        self.k.recorder.event(self.pod, WARNING, "Failed", f"Error: {message}")
        self._config_retry += 1
        self._schedule(min(0.5 * 2 ** (self._config_retry - 1), 10.0))

    # --- lifecycle hooks -------------------------------------------------------------------

    async def _run_hook(self, name: str, hook: Obj, limit: float) -> str | None:
        """Run a postStart/preStop handler; None when it worked, else upstream's text."""
        pod_ref = self._pod_ref()
        try:
            async with asyncio.timeout(max(limit, 1.0)):
                if "exec" in hook:
                    if not self.k.node.runtime.runs_processes:
                        return None  # nothing to run a command in (simulated runtime)
                    argv = list((hook["exec"] or {}).get("command") or [])
                    code, output = await self._exec_probe(name, argv, max(limit, 1.0))
                    if code == 0:
                        return None
                    return (
                        f"Exec lifecycle hook ([{' '.join(argv)}]) for Container {json.dumps(name)}"
                        f" in Pod {json.dumps(pod_ref)} failed - error: command "
                        f"'{' '.join(argv)}' exited with {code}: , message: "
                        f"{json.dumps(output.decode(errors='replace'))}"
                    )
                if "httpGet" in hook:
                    ok, text = await run_probe(
                        {"httpGet": hook["httpGet"], "timeoutSeconds": max(int(limit), 1)},
                        container=self._container_spec(name),
                        pod_ip=self.sandbox.ip if self.sandbox and self.sandbox.ip else "",
                        pod_reachable=self.k.node.runtime.runs_processes,
                        exec_fn=None,
                    )
                    if ok:
                        return None
                    path = (hook["httpGet"] or {}).get("path") or "/"
                    return (
                        f"Http lifecycle hook ({path}) for Container {json.dumps(name)} in Pod "
                        f"{json.dumps(pod_ref)} failed - error: {text}"
                    )
                if "sleep" in hook:
                    await asyncio.sleep(float((hook["sleep"] or {}).get("seconds") or 0))
                    return None
        except TimeoutError:
            return f"lifecycle hook for Container {json.dumps(name)} timed out"
        except AgentError as exc:
            return str(exc)
        return None

    async def _stop_with_pre_stop(self, name: str, grace: float) -> None:
        """preStop within the grace period, then SIGTERM with what is left (at least 2 s).

        The hook runs once per deletion: a marker in the pod directory, written before it
        starts, keeps an agent restarted mid-deletion from running it again (upstream's
        kubelet remembers it in memory only, so its restart may run the hook twice)."""
        assert self.sandbox is not None
        pre_stop = (self._container_spec(name).get("lifecycle") or {}).get("preStop")
        if pre_stop and grace > 0 and self._mark_pre_stop(name):
            began = time.monotonic()
            error = await self._run_hook(name, pre_stop, grace)
            if error is not None:
                self.k.recorder.event(self.pod, WARNING, "FailedPreStopHook", error)
            grace = max(grace - (time.monotonic() - began), MIN_GRACE)
        await self.sandbox.stop_container(name, grace_seconds=grace)

    def _mark_pre_stop(self, name: str) -> bool:
        """Record that the preStop hook of ``name`` runs now; False when it already ran."""
        marker = self.k.node.pod_dir(self.uid) / "containers" / name / PRE_STOP_MARKER
        if marker.exists():
            log.info(
                "preStop hook of %s/%s %s already ran before the agent restarted; not again.",
                self.namespace,
                self.name,
                name,
            )
            return False
        try:
            marker.parent.mkdir(parents=True, exist_ok=True)
            marker.touch()
        except OSError as exc:
            log.warning(
                "Recording the preStop hook of %s/%s %s: %s", self.namespace, self.name, name, exc
            )
        return True

    def _after_start(self, name: str) -> None:
        """Watch for the exit; start the container's probes."""
        gen = self._generation[name]
        rec = self.records[name]
        c = self._container_spec(name)
        tasks = [asyncio.create_task(self._watch_exit(name, gen))]
        startup = c.get("startupProbe")
        rec.started = startup is None
        rec.ready = rec.started and not c.get("readinessProbe") and not rec.init
        if startup:
            tasks.append(asyncio.create_task(self._probe_loop(name, gen, "Startup", startup)))
        if c.get("livenessProbe"):
            tasks.append(
                asyncio.create_task(self._probe_loop(name, gen, "Liveness", c["livenessProbe"]))
            )
        if c.get("readinessProbe") and not rec.init:
            tasks.append(
                asyncio.create_task(self._probe_loop(name, gen, "Readiness", c["readinessProbe"]))
            )
        self._stop_container_tasks(name)
        self._tasks[name] = tasks

    def _container_spec(self, name: str) -> Obj:
        init, main = self._specs()
        for c in init + main:
            if c["name"] == name:
                return c
        return {"name": name}

    async def _watch_exit(self, name: str, gen: int) -> None:
        assert self.sandbox is not None
        try:
            st = await self.sandbox.wait_container(name)
        except AgentError:
            st = ContainerStatus(id=container_id(self.uid, name), state="exited", exit_code=137)
        self._exits[name] = (gen, st)
        self.wake()

    def _stop_container_tasks(self, name: str) -> None:
        current = asyncio.current_task()
        for t in self._tasks.pop(name, []):
            if t is not current:
                t.cancel()

    def _cancel_container_tasks(self) -> None:
        for name in list(self._tasks):
            self._stop_container_tasks(name)

    # --- probes ----------------------------------------------------------------------------

    async def _exec_probe(self, name: str, argv: list[str], limit: float) -> tuple[int, bytes]:
        assert self.sandbox is not None
        session = await self.sandbox.exec(name, argv)
        try:
            await session.close_stdin()

            async def drain(read: Any) -> bytes:
                out = b""
                while chunk := await read():
                    out += chunk
                return out

            async with asyncio.timeout(limit):
                out, err, code = await asyncio.gather(
                    drain(session.read_stdout), drain(session.read_stderr), session.wait()
                )
            return code, out + err
        except TimeoutError:
            await session.kill()
            raise
        finally:
            session.close()

    async def _probe_loop(self, name: str, gen: int, kind: str, probe: Obj) -> None:
        rec = self.records[name]
        c = self._container_spec(name)
        period = float(probe.get("periodSeconds") or 10)
        success_threshold = int(probe.get("successThreshold") or 1)
        failure_threshold = int(probe.get("failureThreshold") or 3)
        await asyncio.sleep(float(probe.get("initialDelaySeconds") or 0))
        runs = self.k.node.runtime.runs_processes
        successes = failures = 0
        while self._generation.get(name) == gen and rec.running:
            if kind != "Startup" and not rec.started:
                await asyncio.sleep(min(period, 0.5))
                continue
            ok, output = await run_probe(
                probe,
                container=c,
                pod_ip=self.sandbox.ip if self.sandbox and self.sandbox.ip else "",
                pod_reachable=runs
                and self.sandbox is not None
                and self.sandbox.network is not None,
                exec_fn=(lambda argv, t: self._exec_probe(name, argv, t)) if runs else None,
            )
            if self._generation.get(name) != gen or not rec.running:
                return
            if ok:
                successes, failures = successes + 1, 0
            else:
                successes, failures = 0, failures + 1
                self.k.recorder.event(
                    self.pod, WARNING, "Unhealthy", f"{kind} probe failed: {output}"
                )
            if kind == "Readiness":
                if ok and successes >= success_threshold and not rec.ready:
                    rec.ready = True
                    self.wake()
                elif not ok and failures >= failure_threshold and rec.ready:
                    rec.ready = False
                    self.wake()
            elif kind == "Startup":
                if ok:
                    rec.started = True
                    rec.ready = not c.get("readinessProbe")
                    self.wake()
                    return
                if failures >= failure_threshold:
                    await self._kill_for_probe(name, "startup")
                    return
            elif not ok and failures >= failure_threshold:
                await self._kill_for_probe(name, "liveness")
                return
            await asyncio.sleep(period)

    async def _kill_for_probe(self, name: str, probe: str) -> None:
        assert self.sandbox is not None
        self.k.recorder.event(
            self.pod,
            NORMAL,
            "Killing",
            f"Container {name} failed {probe} probe, will be restarted",
        )
        await self.sandbox.stop_container(name, grace_seconds=self.grace())

    # --- ending ----------------------------------------------------------------------------

    def grace(self) -> float:
        meta = self.pod.get("metadata") or {}
        if meta.get("deletionGracePeriodSeconds") is not None:
            return float(meta["deletionGracePeriodSeconds"])
        value = (self.pod.get("spec") or {}).get("terminationGracePeriodSeconds")
        return float(30 if value is None else value)

    def grace_left(self) -> float:
        """What is left of a deletion's grace period: it ends at ``deletionTimestamp``
        (the API server sets it to the delete's time plus the period), so an agent that
        restarted mid-deletion gives the containers the rest of it, not all of it again;
        at least ``MIN_GRACE`` when the end has passed meanwhile."""
        grace = self.grace()
        stamp = (self.pod.get("metadata") or {}).get("deletionTimestamp")
        if grace <= 0 or not stamp:
            return grace
        try:
            end = datetime.fromisoformat(str(stamp).replace("Z", "+00:00")).timestamp()
        except ValueError:
            return grace
        return min(grace, max(end - time.time(), MIN_GRACE))

    async def stop_containers(self, grace: float) -> None:
        """SIGTERM every running container, SIGKILL after ``grace`` (agent shutdown); then
        each container's last termination is recorded in the pod directory, for the next
        agent to count the restart."""
        if self.sandbox is None:
            return
        self._cancel_container_tasks()
        running = [n for n, r in self.records.items() if r.running]
        results = await asyncio.gather(
            *(self.sandbox.stop_container(n, grace_seconds=grace) for n in running),
            return_exceptions=True,
        )
        for name, result in zip(running, results, strict=True):
            if not isinstance(result, ContainerStatus):
                if isinstance(result, BaseException):
                    log.warning(
                        "Stopping %s of pod %s/%s: %s", name, self.namespace, self.name, result
                    )
                # Nothing known of its end: recorded as killed.
                result = ContainerStatus(id=container_id(self.uid, name), state="exited")
            self._record_exit(name, self.records[name], result)
        if not (self.gone or self.terminal) and self.k.node.pod_dir(self.uid).is_dir():
            self._save_stop_records()

    async def _finish(self, phase: str) -> None:
        """A pod that reached Succeeded or Failed: its containers and mounts go, logs stay."""
        self.terminal = True
        self._cancel_container_tasks()
        for name, rec in self.records.items():
            rec.ready = False
            if rec.running and self.sandbox is not None:
                await self.sandbox.stop_container(name, grace_seconds=self.grace())
        if self.sandbox is not None:
            try:
                await self.sandbox.teardown(grace_seconds=0, keep_logs=True)
            except AgentError as exc:
                log.warning("Cleaning up %s pod %s/%s: %s", phase, self.namespace, self.name, exc)
        log.info("Pod %s/%s %s.", self.namespace, self.name, phase)

    async def _teardown_until_done(self) -> None:
        """Tear the pod down, retrying with back-off until every step succeeded: the pod
        object goes only after that, as upstream's kubelet retries termination (a pod
        deleted with a mount or container left would never be cleaned up)."""
        delay = TEARDOWN_RETRY_FIRST
        while True:
            try:
                await teardown_pod(
                    self.k.node,
                    self.uid,
                    volumes=(self.volumes or {}).values(),
                    container_names=list(self.records),
                    grace_seconds=0,
                    log_dir=self.k.node.pod_log_dir(self.namespace, self.name, self.uid),
                )
                return
            except AgentError as exc:
                log.warning(
                    "Tearing down pod %s/%s: %s; retrying in %gs",
                    self.namespace,
                    self.name,
                    exc,
                    delay,
                )
            await asyncio.sleep(delay)
            delay = min(delay * 2, TEARDOWN_RETRY_MAX)

    async def _adopt_for_deletion(self) -> None:
        """The pod was already terminating when this worker started (an agent restart):
        its containers still running get the graceful stop rather than a SIGKILL."""
        self._ensure_records()
        runtime = self.k.node.runtime
        running: dict[str, ContainerStatus] = {}
        for name in self.records:
            try:
                st = await runtime.status(container_id(self.uid, name))
            except AgentError:
                continue
            if st is not None and st.state == "running":
                running[name] = st
        if not running:
            return
        try:
            # Attaches to the namespace that exists (the address, for an httpGet preStop).
            self.sandbox = await PodSandbox.create(self.pod, node=self.k.node, volumes={})
        except AgentError as exc:
            log.warning(
                "Attaching to pod %s/%s for its deletion: %s", self.namespace, self.name, exc
            )
            self.sandbox = PodSandbox(pod=self.pod, node=self.k.node, volumes={})
        for name, st in running.items():
            rec = self.records[name]
            rec.ever_started = True
            rec.container_id = f"{runtime.name}://{container_id(self.uid, name)}"
            rec.state = {"running": {"startedAt": st.started_at or now_rfc3339()}}
            log.info(
                "Adopted container %s of terminating pod %s/%s.", name, self.namespace, self.name
            )

    async def _terminate(self) -> None:
        """Graceful deletion: Killing events, SIGTERM, grace, SIGKILL, teardown, delete."""
        self.finished = True
        self._cancel_container_tasks()
        grace = 0.0 if self.gone else self.grace_left()
        if self.sandbox is None and not self.terminal and grace > 0:
            await self._adopt_for_deletion()
        if self.sandbox is not None and not self.terminal:
            running = [n for n, r in self.records.items() if r.running]
            for name in running:
                self.k.recorder.event(self.pod, NORMAL, "Killing", f"Stopping container {name}")
            await asyncio.gather(
                *(self._stop_with_pre_stop(n, grace) for n in running), return_exceptions=True
            )
        await self._teardown_until_done()
        if not self.gone:
            try:
                await self.k.client.delete(
                    PODS,
                    name=self.name,
                    namespace=self.namespace,
                    grace_period_seconds=0,
                    preconditions={"uid": self.uid},
                )
            except (NotFound, Conflict):
                pass
            except StatusError:
                # Everything on the node is gone already; the delete is retried by the loop.
                self.finished = False
                raise
        log.info("Pod %s/%s is gone from this node.", self.namespace, self.name)

    # --- status ----------------------------------------------------------------------------

    async def _write_status(self, phase: str | None = None) -> None:
        if self.gone or self.finished:
            return
        init, main = self._lists()
        phase = phase or self._phase()
        current = self.pod.get("status") or {}
        previous = list(current.get("conditions") or [])
        if self._last_status is not None:
            mine = {c["type"]: c for c in self._last_status.get("conditions") or []}
            previous = [mine.pop(c.get("type"), c) for c in previous] + list(mine.values())
        status: Obj = {
            "phase": phase,
            "conditions": conditions(
                previous=previous,
                sandbox_ready=self.sandbox is not None and not self.terminal,
                init=init,
                main=main,
                phase=phase,
            ),
            "hostIP": self.k.host_ip,
            "hostIPs": [{"ip": self.k.host_ip}],
            "startTime": self.start_time,
            "containerStatuses": [r.to_status() for r in main],
        }
        if init:
            status["initContainerStatuses"] = [r.to_status() for r in init]
        if self.sandbox is not None and self.sandbox.ip:
            status["podIP"] = self.sandbox.ip
            status["podIPs"] = [{"ip": self.sandbox.ip}]
        if self._pod_reason is not None:
            status["reason"], status["message"] = self._pod_reason
        if status == self._last_status:
            return
        try:
            out = await self.k.client.patch(
                PODS,
                name=self.name,
                namespace=self.namespace,
                patch={"status": status},
                patch_type="merge",
                subresource="status",
            )
        except NotFound:
            return
        self._last_status = status
        if (out.get("metadata") or {}).get("uid") == self.uid:
            self.pod = out


def _disk_usage(path: Path) -> int:
    """Bytes allocated under ``path``, as du counts them (what the eviction manager measures)."""
    total = 0
    for root, dirs, files in os.walk(path):
        for entry in dirs + files:
            try:
                total += os.lstat(os.path.join(root, entry)).st_blocks * 512
            except OSError:
                continue
    return total


def _sa_name(pod: Obj) -> str:
    spec = pod.get("spec") or {}
    return str(spec.get("serviceAccountName") or spec.get("serviceAccount") or "default")


def _token_requests(pod: Obj) -> list[tuple[str | None, int]]:
    out = []
    for v in (pod.get("spec") or {}).get("volumes") or []:
        for src in (v.get("projected") or {}).get("sources") or []:
            tok = src.get("serviceAccountToken")
            if tok is not None:
                key = (tok.get("audience"), int(tok.get("expirationSeconds") or 3600))
                if key not in out:
                    out.append(key)
    return out


def _referenced(pod: Obj, kind: str) -> set[str]:
    """Names of the ConfigMaps (``kind="configMap"``) or Secrets a pod's volumes/env use."""
    names: set[str] = set()
    spec = pod.get("spec") or {}
    for v in spec.get("volumes") or []:
        if kind == "configMap" and v.get("configMap"):
            names.add(v["configMap"].get("name", ""))
        if kind == "secret" and v.get("secret"):
            names.add(v["secret"].get("secretName", ""))
        for src in (v.get("projected") or {}).get("sources") or []:
            if src.get(kind):
                names.add(src[kind].get("name", ""))
    ref_key = "configMapKeyRef" if kind == "configMap" else "secretKeyRef"
    from_key = "configMapRef" if kind == "configMap" else "secretRef"
    for c in (spec.get("initContainers") or []) + (spec.get("containers") or []):
        for e in c.get("env") or []:
            ref = (e.get("valueFrom") or {}).get(ref_key)
            if ref:
                names.add(ref.get("name", ""))
        for e in c.get("envFrom") or []:
            if e.get(from_key):
                names.add(e[from_key].get("name", ""))
    if kind == "configMap" and _token_requests(pod):
        names.add(ROOT_CA_CONFIGMAP)
    return names


__all__ = ["NotSupportedError", "PodWorker"]


def _sub_path_problem(container: Obj, env: list[tuple[str, str]]) -> str | None:
    """upstream's makeMounts checks of each (expanded) subPath, with its texts; the
    escape through a symlink is caught where the path is resolved."""
    values = dict(env)
    for vm in container.get("volumeMounts") or []:
        sub = vm.get("subPath") or expand(vm.get("subPathExpr") or "", values)
        if not sub:
            continue
        if sub.startswith("/"):
            return f"error SubPath `{sub}` must not be an absolute path"
        if ".." in sub.split("/"):
            return f"unable to provision SubPath `{sub}`: must not contain '..'"
    return None
