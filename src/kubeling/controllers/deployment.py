"""The Deployment controller: rolls a Deployment's template out through ReplicaSets.

It follows upstream's ``pkg/controller/deployment`` step by step, so that ``kubectl rollout
status|history|undo|restart`` and ``kubectl describe`` see what they see upstream: one
ReplicaSet per template named ``<deployment>-<pod-template-hash>``, the
``deployment.kubernetes.io/revision`` (and ``revision-history``, ``desired-replicas``,
``max-replicas``) annotations, rolling updates bounded by maxSurge/maxUnavailable, Recreate,
proportional scaling of a rollout in flight, ``revisionHistoryLimit`` clean-up, and the
status counts and Available/Progressing conditions with upstream's reasons and messages.

Design choices: the controller never touches pods (the ReplicaSet controller does); every
write carries the resourceVersion it read, so a stale cache ends in ``Conflict`` and a retry
rather than a lost update. One deviation: upstream writes the deployment's revision
annotation through ``/status`` (its status strategy keeps annotations); kubeling's ``/status``
keeps all metadata, so the annotation goes through a merge patch of the object instead (it
does not bump ``generation``). The pod-template hash is fnv32a over the template, as upstream,
but over its canonical JSON rather than Go's ``spew`` dump of the struct, so hashes differ
from a real cluster's for the same template (names stay stable within kubeling).
"""

from __future__ import annotations

import logging
import math
from datetime import datetime, timedelta
from typing import Any

import orjson

from kubeling.client.controller import Controller, resolve_controller_ref
from kubeling.client.events import NORMAL, WARNING, EventRecorder
from kubeling.client.informer import Informer, object_key, split_key
from kubeling.client.interface import Client
from kubeling.controllers.replicaset import (
    ClaimManager,
    selector_of,
    spec_replicas,
    utcnow,
    with_type,
)
from kubeling.machinery import objects
from kubeling.machinery.errors import AlreadyExists, Forbidden, NotFound, StatusError
from kubeling.machinery.objects import deep_copy
from kubeling.machinery.resources import DEPLOYMENTS, PODS, REPLICASETS
from kubeling.machinery.types import Obj

log = logging.getLogger(__name__)

COMPONENT = "deployment-controller"

HASH_LABEL = "pod-template-hash"
REVISION = "deployment.kubernetes.io/revision"
REVISION_HISTORY = "deployment.kubernetes.io/revision-history"
DESIRED_REPLICAS = "deployment.kubernetes.io/desired-replicas"
MAX_REPLICAS = "deployment.kubernetes.io/max-replicas"
LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"
ROLLBACK_TO = "deprecated.deployment.rollback.to"
MAX_REV_HISTORY_CHARS = 2000
SKIP_COPY = frozenset({LAST_APPLIED, REVISION, REVISION_HISTORY, DESIRED_REPLICAS, MAX_REPLICAS})
SKIP_COPY_ALL = SKIP_COPY | {ROLLBACK_TO}

# Condition reasons (upstream deploymentutil).
FAILED_RS_CREATE = "FailedRSCreate"
NEW_RS = "NewReplicaSetCreated"
FOUND_NEW_RS = "FoundNewReplicaSet"
RS_UPDATED = "ReplicaSetUpdated"
NEW_RS_AVAILABLE = "NewReplicaSetAvailable"
TIMED_OUT = "ProgressDeadlineExceeded"
PAUSED = "DeploymentPaused"
RESUMED = "DeploymentResumed"
MIN_AVAILABLE = "MinimumReplicasAvailable"
MIN_UNAVAILABLE = "MinimumReplicasUnavailable"

SAFE_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"


# --- hashing -----------------------------------------------------------------------------------


def fnv32a(data: bytes) -> int:
    h = 0x811C9DC5
    for b in data:
        h ^= b
        h = (h * 0x01000193) & 0xFFFFFFFF
    return h


def safe_encode(text: str) -> str:
    """apimachinery ``rand.SafeEncodeString``: each byte mapped onto a vowel-free alphabet
    (no bad words in generated names)."""
    return "".join(SAFE_ALPHABET[b % len(SAFE_ALPHABET)] for b in text.encode())


def compute_hash(template: Obj, collision_count: int | None) -> str:
    """``controller.ComputeHash``: fnv32a of the template plus, when set, the collision count
    as 8 little-endian bytes (only the low four are written, as upstream)."""
    data = orjson.dumps(_drop_nulls(template), option=orjson.OPT_SORT_KEYS)
    if collision_count is not None:
        data += (collision_count & 0xFFFFFFFF).to_bytes(4, "little") + b"\x00" * 4
    return safe_encode(str(fnv32a(data)))


def _drop_nulls(value: Any) -> Any:
    """Go decodes ``null`` as the zero value, so ``creationTimestamp: null`` (which kubectl
    sends inside templates) and an absent field are the same template."""
    if isinstance(value, dict):
        return {k: _drop_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_drop_nulls(v) for v in value]
    return value


def _without_hash(template: Obj | None) -> Obj:
    out: Obj = _drop_nulls(template or {})
    meta = out.get("metadata")
    if isinstance(meta, dict):
        labels = dict(meta.get("labels") or {})
        labels.pop(HASH_LABEL, None)
        if labels:
            meta["labels"] = labels
        else:
            meta.pop("labels", None)
        if not meta:
            out.pop("metadata", None)
    return out


def equal_ignore_hash(a: Obj | None, b: Obj | None) -> bool:
    return _without_hash(a) == _without_hash(b)


# --- small accessors ---------------------------------------------------------------------------


def _spec(obj: Obj) -> Obj:
    return obj.get("spec") or {}


def _status(obj: Obj) -> Obj:
    return obj.get("status") or {}


def _ann(obj: Obj) -> dict[str, str]:
    return objects.annotations(obj)


def revision(rs: Obj) -> int:
    try:
        return int(_ann(rs).get(REVISION, "0") or 0)
    except ValueError:
        return 0


def _created_key(obj: Obj) -> tuple[str, str]:
    return (objects.meta(obj).get("creationTimestamp") or "", objects.name(obj))


def _int_or_percent(value: Any, total: int, *, round_up: bool) -> int:
    if value is None:
        return 0
    if isinstance(value, int):
        return value
    text = str(value)
    if text.endswith("%"):
        pct = int(text[:-1])
        exact = pct * total / 100
        return math.ceil(exact) if round_up else math.floor(exact)
    return int(text)


def is_rolling(d: Obj) -> bool:
    return ((_spec(d).get("strategy") or {}).get("type") or "RollingUpdate") == "RollingUpdate"


def resolve_fenceposts(d: Obj) -> tuple[int, int]:
    """``ResolveFenceposts``: (maxSurge, maxUnavailable); both zero means one unavailable."""
    rolling = (_spec(d).get("strategy") or {}).get("rollingUpdate") or {}
    desired = spec_replicas(d)
    surge = _int_or_percent(rolling.get("maxSurge", "25%"), desired, round_up=True)
    unavailable = _int_or_percent(rolling.get("maxUnavailable", "25%"), desired, round_up=False)
    if surge == 0 and unavailable == 0:
        unavailable = 1
    return surge, unavailable


def max_surge(d: Obj) -> int:
    return resolve_fenceposts(d)[0] if is_rolling(d) else 0


def max_unavailable(d: Obj) -> int:
    replicas = spec_replicas(d)
    if not is_rolling(d) or replicas == 0:
        return 0
    return min(resolve_fenceposts(d)[1], replicas)


def _sum(rss: list[Obj], fn: Any) -> int:
    return sum(int(fn(rs) or 0) for rs in rss if rs is not None)


def spec_count(rss: list[Obj]) -> int:
    return _sum(rss, spec_replicas)


def actual_count(rss: list[Obj]) -> int:
    return _sum(rss, lambda rs: _status(rs).get("replicas"))


def ready_count(rss: list[Obj]) -> int:
    return _sum(rss, lambda rs: _status(rs).get("readyReplicas"))


def available_count(rss: list[Obj]) -> int:
    return _sum(rss, lambda rs: _status(rs).get("availableReplicas"))


def active(rss: list[Obj]) -> list[Obj]:
    return [rs for rs in rss if rs is not None and spec_replicas(rs) > 0]


def _int_annotation(rs: Obj, key: str) -> int | None:
    value = _ann(rs).get(key)
    if value is None:
        return None
    try:
        return int(value)
    except ValueError:
        return None


def set_replicas_annotations(rs: Obj, *, desired: int, max_replicas: int) -> bool:
    ann = objects.ensure_meta(rs).setdefault("annotations", {})
    changed = False
    for key, value in ((DESIRED_REPLICAS, str(desired)), (MAX_REPLICAS, str(max_replicas))):
        if ann.get(key) != value:
            ann[key] = value
            changed = True
    return changed


def replicas_annotations_need_update(rs: Obj, *, desired: int, max_replicas: int) -> bool:
    ann = _ann(rs)
    return ann.get(DESIRED_REPLICAS) != str(desired) or ann.get(MAX_REPLICAS) != str(max_replicas)


def set_new_rs_annotations(d: Obj, rs: Obj, new_revision: str, *, exists: bool) -> bool:
    """upstream ``SetNewReplicaSetAnnotations``."""
    ann = objects.ensure_meta(rs).setdefault("annotations", {})
    changed = False
    for key, value in _ann(d).items():
        if key in SKIP_COPY_ALL:
            continue
        if ann.get(key) != value:
            ann[key] = value
            changed = True
    old_revision = ann.get(REVISION, "")
    try:
        old_int = int(old_revision) if old_revision else 0
    except ValueError:
        old_int = 0
    new_int = int(new_revision)
    if old_int < new_int:
        ann[REVISION] = new_revision
        changed = True
        if old_revision:
            history = [h for h in (ann.get(REVISION_HISTORY) or "").split(",") if h]
            history.append(old_revision)
            text = ",".join(history)
            while len(text) > MAX_REV_HISTORY_CHARS and len(history) > 1:
                history.pop(0)
                text = ",".join(history)
            ann[REVISION_HISTORY] = text
    if not exists and set_replicas_annotations(
        rs, desired=spec_replicas(d), max_replicas=spec_replicas(d) + max_surge(d)
    ):
        changed = True
    return changed


# --- conditions --------------------------------------------------------------------------------


def get_condition(status: Obj, type_: str) -> Obj | None:
    return objects.get_condition(status.get("conditions"), type_)


def new_condition(type_: str, status: str, reason: str, message: str, now: str) -> Obj:
    return {
        "type": type_,
        "status": status,
        "lastUpdateTime": now,
        "lastTransitionTime": now,
        "reason": reason,
        "message": message,
    }


def set_condition(status: Obj, cond: Obj) -> None:
    """upstream ``SetDeploymentCondition``: same status and reason → no change; the
    transition time survives when only the reason changes; the new entry goes last."""
    current = get_condition(status, cond["type"])
    if (
        current is not None
        and current.get("status") == cond["status"]
        and current.get("reason") == cond["reason"]
    ):
        return
    if current is not None and current.get("status") == cond["status"]:
        cond = {**cond, "lastTransitionTime": current.get("lastTransitionTime")}
    rest = [c for c in status.get("conditions") or [] if c.get("type") != cond["type"]]
    status["conditions"] = [*rest, cond]


def remove_condition(status: Obj, type_: str) -> None:
    rest = [c for c in status.get("conditions") or [] if c.get("type") != type_]
    if rest:
        status["conditions"] = rest
    else:
        status.pop("conditions", None)


def has_progress_deadline(d: Obj) -> bool:
    deadline = _spec(d).get("progressDeadlineSeconds")
    return deadline is not None and int(deadline) != 2**31 - 1


def deployment_complete(d: Obj, status: Obj) -> bool:
    replicas = spec_replicas(d)
    return (
        int(status.get("updatedReplicas") or 0) == replicas
        and int(status.get("replicas") or 0) == replicas
        and int(status.get("availableReplicas") or 0) == replicas
        and int(status.get("observedGeneration") or 0) >= objects.generation(d)
    )


def deployment_progressing(d: Obj, new: Obj) -> bool:
    old = _status(d)

    def n(s: Obj, k: str) -> int:
        return int(s.get(k) or 0)

    old_old = n(old, "replicas") - n(old, "updatedReplicas")
    new_old = n(new, "replicas") - n(new, "updatedReplicas")
    return (
        n(new, "updatedReplicas") > n(old, "updatedReplicas")
        or new_old < old_old
        or n(new, "readyReplicas") > n(old, "readyReplicas")
        or n(new, "availableReplicas") > n(old, "availableReplicas")
    )


def deployment_timed_out(d: Obj, status: Obj, now: datetime) -> bool:
    if not has_progress_deadline(d):
        return False
    cond = get_condition(status, "Progressing")
    if cond is None or cond.get("reason") == NEW_RS_AVAILABLE:
        return False
    if cond.get("reason") == TIMED_OUT:
        return True
    since = cond.get("lastUpdateTime")
    if not since:
        return False
    deadline = timedelta(seconds=int(_spec(d)["progressDeadlineSeconds"]))
    return objects.parse_rfc3339(since) + deadline < now


def calculate_status(all_rss: list[Obj], new_rs: Obj | None, d: Obj, *, now: str) -> Obj:
    """upstream ``calculateStatus``; zero fields are omitted as Go's omitempty does."""
    available = available_count(all_rss)
    total = spec_count(all_rss)
    unavailable = max(total - available, 0)
    status: Obj = {}
    values = (
        ("observedGeneration", objects.generation(d)),
        ("replicas", actual_count(all_rss)),
        ("updatedReplicas", actual_count([new_rs] if new_rs is not None else [])),
        ("readyReplicas", ready_count(all_rss)),
        ("availableReplicas", available),
        ("unavailableReplicas", unavailable),
    )
    for key, value in values:
        if value:
            status[key] = value
    conditions = deep_copy(_status(d).get("conditions") or [])
    if conditions:
        status["conditions"] = conditions
    if _status(d).get("collisionCount") is not None:
        status["collisionCount"] = _status(d)["collisionCount"]
    if available >= spec_replicas(d) - max_unavailable(d):
        cond = new_condition(
            "Available", "True", MIN_AVAILABLE, "Deployment has minimum availability.", now
        )
    else:
        cond = new_condition(
            "Available",
            "False",
            MIN_UNAVAILABLE,
            "Deployment does not have minimum availability.",
            now,
        )
    set_condition(status, cond)
    return status


# --- proportional scaling helpers --------------------------------------------------------------


def _replica_set_fraction(rs: Obj, d: Obj) -> int:
    if spec_replicas(d) == 0:
        return -spec_replicas(rs)
    deployment_replicas = spec_replicas(d) + max_surge(d)
    annotated = _int_annotation(rs, MAX_REPLICAS)
    if annotated is None:
        annotated = int(_status(d).get("replicas") or 0)
    if annotated == 0:
        return 0
    new_size = spec_replicas(rs) * deployment_replicas / annotated
    # Go's math.Round rounds half away from zero (sizes are never negative here).
    rounded = math.floor(new_size + 0.5)
    return rounded - spec_replicas(rs)


def get_proportion(rs: Obj | None, d: Obj, to_add: int, added: int) -> int:
    if rs is None or spec_replicas(rs) == 0 or to_add == 0 or to_add == added:
        return 0
    fraction = _replica_set_fraction(rs, d)
    allowed = to_add - added
    return min(fraction, allowed) if to_add > 0 else max(fraction, allowed)


def find_active_or_latest(new_rs: Obj | None, old_rss: list[Obj]) -> Obj | None:
    if new_rs is None and not old_rss:
        return None
    olds = sorted(old_rss, key=_created_key, reverse=True)
    live = active([*olds, new_rs] if new_rs is not None else olds)
    if not live:
        return new_rs if new_rs is not None else olds[0]
    if len(live) == 1:
        return live[0]
    return None


def is_saturated(d: Obj, rs: Obj | None) -> bool:
    if rs is None:
        return False
    desired = _int_annotation(rs, DESIRED_REPLICAS)
    replicas = spec_replicas(d)
    return (
        desired == replicas
        and spec_replicas(rs) == replicas
        and int(_status(rs).get("availableReplicas") or 0) == replicas
    )


# --- the controller ----------------------------------------------------------------------------


class DeploymentController(Controller):
    name = "deployment"

    def __init__(
        self,
        *,
        client: Client,
        deployments: Informer,
        replicasets: Informer,
        pods: Informer,
        recorder: EventRecorder,
        workers: int = 2,
    ) -> None:
        super().__init__(workers=workers)
        self.client = client
        self.deployments = deployments
        self.replicasets = replicasets
        self.pods = pods
        self.recorder = recorder
        self.watch(deployments)
        replicasets.add_handler(
            on_add=self._rs_changed,
            on_update=lambda old, new: self._rs_updated(old, new),
            on_delete=self._rs_changed,
        )
        pods.add_handler(on_delete=self._pod_deleted)
        self.wait_for(replicasets)
        self.wait_for(pods)

    # --- event handlers --------------------------------------------------------------------

    def _owner_key(self, obj: Obj) -> str | None:
        return resolve_controller_ref(self.deployments, obj, kind=DEPLOYMENTS.kind)

    def _matching(self, rs: Obj) -> list[str]:
        labels = objects.labels(rs)
        return [
            object_key(d)
            for d in self.deployments.list(namespace=objects.namespace(rs))
            if selector_of(d).matches(labels)
        ]

    def _rs_changed(self, rs: Obj) -> None:
        key = self._owner_key(rs)
        if key is not None:
            self.enqueue(key)
        elif objects.controller_ref(rs) is None:
            for k in self._matching(rs):
                self.enqueue(k)

    def _rs_updated(self, old: Obj, new: Obj) -> None:
        if objects.resource_version(old) == objects.resource_version(new):
            return
        if objects.controller_ref(old) != objects.controller_ref(new):
            old_key = self._owner_key(old)
            if old_key is not None:
                self.enqueue(old_key)
        self._rs_changed(new)

    def _pod_deleted(self, pod: Obj) -> None:
        # Recreate waits for every old pod to be gone before it scales the new set up.
        ref = objects.controller_ref(pod)
        if ref is None or ref.get("kind") != REPLICASETS.kind:
            return
        # Read-only lookups once per pod deletion: the cached objects, not copies.
        rs = self.replicasets.peek(f"{objects.namespace(pod)}/{ref.get('name')}")
        if rs is None:
            return
        key = self._owner_key(rs)
        if key is None:
            return
        d = self.deployments.peek(key)
        if d is not None and not is_rolling(d):
            self.enqueue(key)

    # --- sync ------------------------------------------------------------------------------

    async def reconcile(self, key: str) -> None:
        cached = self.deployments.get(key)
        if cached is None:
            return
        d = with_type(cached, DEPLOYMENTS)
        namespace, _name = split_key(key)
        raw_selector = _spec(d).get("selector") or {}
        if not raw_selector.get("matchLabels") and not raw_selector.get("matchExpressions"):
            self.recorder.event(
                d,
                WARNING,
                "SelectingAll",
                "This deployment is selecting all pods. A non-empty selector is required.",
            )
            if int(_status(d).get("observedGeneration") or 0) < objects.generation(d):
                status = {**_status(d), "observedGeneration": objects.generation(d)}
                await self._write_status(d, status)
            return
        rs_list = await self._replica_sets_for(d, namespace)
        if objects.deletion_timestamp(d):
            await self._sync_status_only(d, rs_list)
            return
        await self._check_paused_conditions(d)
        if _spec(d).get("paused"):
            await self._sync(d, rs_list)
            return
        if await self._is_scaling_event(d, rs_list):
            await self._sync(d, rs_list)
            return
        if is_rolling(d):
            await self._rollout_rolling(d, rs_list)
        else:
            await self._rollout_recreate(d, rs_list, namespace)

    async def _replica_sets_for(self, d: Obj, namespace: str) -> list[Obj]:
        candidates = [
            with_type(rs, REPLICASETS) for rs in self.replicasets.list(namespace=namespace)
        ]
        manager = ClaimManager(
            client=self.client,
            resource=REPLICASETS,
            owner=d,
            owner_resource=DEPLOYMENTS,
            selector=selector_of(d),
        )
        claimed = await manager.claim(candidates)
        return [with_type(rs, REPLICASETS) for rs in claimed]

    # --- revisions and the new ReplicaSet --------------------------------------------------

    def _find_new(self, d: Obj, rs_list: list[Obj]) -> Obj | None:
        template = _spec(d).get("template")
        for rs in sorted(rs_list, key=_created_key):
            if equal_ignore_hash(_spec(rs).get("template"), template):
                return rs
        return None

    async def _all_replica_sets(
        self, d: Obj, rs_list: list[Obj], *, create: bool
    ) -> tuple[Obj | None, list[Obj]]:
        """``getAllReplicaSetsAndSyncRevision``: the new set (created when asked) and the
        old ones."""
        existing_new = self._find_new(d, rs_list)
        old = [rs for rs in rs_list if existing_new is None or rs is not existing_new]
        new_rs = await self._get_new_rs(d, rs_list, old, existing_new, create=create)
        return new_rs, old

    async def _get_new_rs(
        self,
        d: Obj,
        rs_list: list[Obj],
        old_rss: list[Obj],
        existing: Obj | None,
        *,
        create: bool,
    ) -> Obj | None:
        max_old = max((revision(rs) for rs in old_rss), default=0)
        new_revision = str(max_old + 1)
        now = objects.now_rfc3339()
        if existing is not None:
            rs_copy = deep_copy(existing)
            annotations_updated = set_new_rs_annotations(d, rs_copy, new_revision, exists=True)
            min_ready = _spec(d).get("minReadySeconds") or 0
            min_ready_changed = (_spec(rs_copy).get("minReadySeconds") or 0) != min_ready
            if annotations_updated or min_ready_changed:
                rs_copy.setdefault("spec", {})["minReadySeconds"] = min_ready
                out = await self.client.update(REPLICASETS, rs_copy)
                _replace(existing, with_type(out, REPLICASETS))
            rs_revision = _ann(existing).get(REVISION, "")
            annotation_changed = _ann(d).get(REVISION) != rs_revision and bool(rs_revision)
            status = deep_copy(_status(d))
            status_changed = False
            if has_progress_deadline(d) and get_condition(status, "Progressing") is None:
                msg = f'Found new replica set "{objects.name(existing)}"'
                set_condition(status, new_condition("Progressing", "True", FOUND_NEW_RS, msg, now))
                status_changed = True
            if annotation_changed:
                await self._set_revision(d, rs_revision)
            if status_changed:
                await self._write_status(d, status)
            return existing
        if not create:
            return None
        template = deep_copy(_spec(d).get("template") or {})
        collision = _status(d).get("collisionCount")
        pod_hash = compute_hash(template, collision)
        tmeta = template.setdefault("metadata", {})
        tmeta["labels"] = {**(tmeta.get("labels") or {}), HASH_LABEL: pod_hash}
        selector = deep_copy(_spec(d).get("selector") or {})
        selector["matchLabels"] = {**(selector.get("matchLabels") or {}), HASH_LABEL: pod_hash}
        ref = objects.owner_reference(d)
        ref["apiVersion"] = DEPLOYMENTS.api_version
        ref["kind"] = DEPLOYMENTS.kind
        new_rs: Obj = {
            "apiVersion": REPLICASETS.api_version,
            "kind": REPLICASETS.kind,
            "metadata": {
                "name": f"{objects.name(d)}-{pod_hash}",
                "namespace": objects.namespace(d),
                "ownerReferences": [ref],
                "labels": dict(tmeta["labels"]),
            },
            "spec": {
                "replicas": 0,
                "minReadySeconds": _spec(d).get("minReadySeconds") or 0,
                "selector": selector,
                "template": template,
            },
        }
        new_count = self._new_rs_new_replicas(d, [*old_rss, new_rs], new_rs)
        new_rs["spec"]["replicas"] = new_count
        set_new_rs_annotations(d, new_rs, new_revision, exists=False)
        already_exists = False
        try:
            created = await self.client.create(REPLICASETS, new_rs, namespace=objects.namespace(d))
        except AlreadyExists:
            found = await self.client.get(
                REPLICASETS, name=new_rs["metadata"]["name"], namespace=objects.namespace(d)
            )
            if objects.is_controlled_by(found, d) and equal_ignore_hash(
                _spec(found).get("template"), _spec(d).get("template")
            ):
                created = found
                already_exists = True
            else:
                # A hash collision: bump collisionCount so the next try hashes differently.
                status = deep_copy(_status(d))
                status["collisionCount"] = int(status.get("collisionCount") or 0) + 1
                await self._write_status(d, status)
                raise
        except StatusError as e:
            if isinstance(e, Forbidden) and any(
                c.reason == "NamespaceTerminating" for c in e.causes
            ):
                raise
            msg = f'Failed to create new replica set "{new_rs["metadata"]["name"]}": {e}'
            if has_progress_deadline(d):
                status = deep_copy(_status(d))
                set_condition(
                    status, new_condition("Progressing", "False", FAILED_RS_CREATE, msg, now)
                )
                await self._write_status(d, status)
            self.recorder.event(d, WARNING, FAILED_RS_CREATE, msg)
            raise
        created = with_type(created, REPLICASETS)
        if not already_exists and new_count > 0:
            self.recorder.event(
                d,
                NORMAL,
                "ScalingReplicaSet",
                f"Scaled up replica set {objects.name(created)} from 0 to {new_count}",
            )
        if _ann(d).get(REVISION) != new_revision:
            await self._set_revision(d, new_revision)
        if not already_exists and has_progress_deadline(d):
            msg = f'Created new replica set "{objects.name(created)}"'
            status = deep_copy(_status(d))
            set_condition(status, new_condition("Progressing", "True", NEW_RS, msg, now))
            await self._write_status(d, status)
        rs_list.append(created)
        return created

    def _new_rs_new_replicas(self, d: Obj, all_rss: list[Obj], new_rs: Obj) -> int:
        """``NewRSNewReplicas``: how big the new set may be now."""
        if not is_rolling(d):
            return spec_replicas(d)
        surge = max_surge(d)
        current = spec_count(all_rss)
        max_total = spec_replicas(d) + surge
        if current >= max_total:
            return spec_replicas(new_rs)
        scale_up = min(max_total - current, spec_replicas(d) - spec_replicas(new_rs))
        return spec_replicas(new_rs) + scale_up

    # --- writes ----------------------------------------------------------------------------

    async def _set_revision(self, d: Obj, value: str) -> None:
        out = await self.client.patch(
            DEPLOYMENTS,
            name=objects.name(d),
            namespace=objects.namespace(d),
            patch={
                "metadata": {
                    "annotations": {REVISION: value},
                    "resourceVersion": objects.resource_version(d),
                }
            },
            patch_type="merge",
        )
        _replace(d, with_type(out, DEPLOYMENTS))

    async def _write_status(self, d: Obj, status: Obj) -> None:
        body = deep_copy(d)
        body["status"] = status
        try:
            out = await self.client.update(DEPLOYMENTS, body, subresource="status")
        except NotFound:
            # Gone meanwhile (a foreground deletion finishing): nothing left to report on,
            # as the ReplicaSet and StatefulSet controllers treat it.
            log.debug(
                "Deployment %s is gone; its status is not written.", objects.namespaced_name(d)
            )
            return
        _replace(d, with_type(out, DEPLOYMENTS))

    async def _scale_rs(self, rs: Obj, new_scale: int, d: Obj) -> bool:
        """``scaleReplicaSet``: size and replica annotations in one update; an event when
        the size changed."""
        size_changes = spec_replicas(rs) != new_scale
        desired, maximum = spec_replicas(d), spec_replicas(d) + max_surge(d)
        if not size_changes and not replicas_annotations_need_update(
            rs, desired=desired, max_replicas=maximum
        ):
            return False
        old_scale = spec_replicas(rs)
        body = deep_copy(rs)
        body.setdefault("spec", {})["replicas"] = new_scale
        set_replicas_annotations(body, desired=desired, max_replicas=maximum)
        out = await self.client.update(REPLICASETS, body)
        _replace(rs, with_type(out, REPLICASETS))
        if size_changes:
            op = "up" if old_scale < new_scale else "down"
            self.recorder.event(
                d,
                NORMAL,
                "ScalingReplicaSet",
                f"Scaled {op} replica set {objects.name(rs)} from {old_scale} to {new_scale}",
            )
        return size_changes

    async def _scale_and_record(self, rs: Obj, new_scale: int, d: Obj) -> bool:
        if spec_replicas(rs) == new_scale:
            return False
        return await self._scale_rs(rs, new_scale, d)

    # --- sync paths ------------------------------------------------------------------------

    async def _sync_status_only(self, d: Obj, rs_list: list[Obj]) -> None:
        new_rs, old = await self._all_replica_sets(d, rs_list, create=False)
        await self._sync_deployment_status([*old, *([new_rs] if new_rs else [])], new_rs, d)

    async def _sync(self, d: Obj, rs_list: list[Obj]) -> None:
        """Scaling or paused: resize proportionally, no rollout."""
        new_rs, old = await self._all_replica_sets(d, rs_list, create=False)
        await self._scale(d, new_rs, old)
        if _spec(d).get("paused"):
            await self._cleanup(d, old)
        await self._sync_deployment_status([*old, *([new_rs] if new_rs else [])], new_rs, d)

    async def _check_paused_conditions(self, d: Obj) -> None:
        if not has_progress_deadline(d):
            return
        cond = get_condition(_status(d), "Progressing")
        if cond is not None and cond.get("reason") == TIMED_OUT:
            return
        paused = bool(_spec(d).get("paused"))
        exists = cond is not None and cond.get("reason") == PAUSED
        now = objects.now_rfc3339()
        status = deep_copy(_status(d))
        if paused and not exists:
            set_condition(
                status, new_condition("Progressing", "Unknown", PAUSED, "Deployment is paused", now)
            )
        elif not paused and exists:
            set_condition(
                status,
                new_condition("Progressing", "Unknown", RESUMED, "Deployment is resumed", now),
            )
        else:
            return
        await self._write_status(d, status)

    async def _is_scaling_event(self, d: Obj, rs_list: list[Obj]) -> bool:
        new_rs, old = await self._all_replica_sets(d, rs_list, create=False)
        for rs in active([*old, *([new_rs] if new_rs else [])]):
            desired = _int_annotation(rs, DESIRED_REPLICAS)
            if desired is not None and desired != spec_replicas(d):
                return True
        return False

    async def _scale(self, d: Obj, new_rs: Obj | None, old_rss: list[Obj]) -> None:
        target = find_active_or_latest(new_rs, old_rss)
        if target is not None:
            if spec_replicas(target) != spec_replicas(d):
                await self._scale_and_record(target, spec_replicas(d), d)
            return
        if is_saturated(d, new_rs):
            for rs in active(old_rss):
                await self._scale_and_record(rs, 0, d)
            return
        if not is_rolling(d):
            return
        all_rss = active([*old_rss, *([new_rs] if new_rs else [])])
        current = spec_count(all_rss)
        allowed = spec_replicas(d) + max_surge(d) if spec_replicas(d) > 0 else 0
        to_add = allowed - current
        if to_add > 0:
            # Largest first, newer first on a tie.
            all_rss.sort(key=lambda rs: _created_key(rs), reverse=True)
            all_rss.sort(key=spec_replicas, reverse=True)
        elif to_add < 0:
            # Largest first, older first on a tie.
            all_rss.sort(key=_created_key)
            all_rss.sort(key=spec_replicas, reverse=True)
        added = 0
        sizes: dict[str, int] = {}
        for rs in all_rss:
            if to_add != 0:
                proportion = get_proportion(rs, d, to_add, added)
                sizes[objects.name(rs)] = spec_replicas(rs) + proportion
                added += proportion
            else:
                sizes[objects.name(rs)] = spec_replicas(rs)
        for i, rs in enumerate(all_rss):
            name = objects.name(rs)
            if i == 0 and to_add != 0:
                sizes[name] = max(sizes[name] + to_add - added, 0)
            await self._scale_rs(rs, sizes[name], d)

    async def _cleanup(self, d: Obj, old_rss: list[Obj]) -> None:
        """``cleanupDeployment``: delete the oldest scaled-down sets past the history limit."""
        limit = _spec(d).get("revisionHistoryLimit")
        if limit is None:
            return
        cleanable = [rs for rs in old_rss if not objects.deletion_timestamp(rs)]
        diff = len(cleanable) - int(limit)
        if diff <= 0:
            return
        cleanable.sort(key=lambda rs: (revision(rs), *_created_key(rs)))
        for rs in cleanable[:diff]:
            if (
                int(_status(rs).get("replicas") or 0) != 0
                or spec_replicas(rs) != 0
                or objects.generation(rs) > int(_status(rs).get("observedGeneration") or 0)
            ):
                continue
            log.info("Deleting old replica set %s.", objects.namespaced_name(rs))
            try:
                await self.client.delete(
                    REPLICASETS, name=objects.name(rs), namespace=objects.namespace(rs)
                )
            except NotFound:
                pass

    async def _sync_deployment_status(self, all_rss: list[Obj], new_rs: Obj | None, d: Obj) -> None:
        status = calculate_status(all_rss, new_rs, d, now=objects.now_rfc3339())
        if _same_status(_status(d), status):
            return
        await self._write_status(d, status)

    async def _sync_rollout_status(self, all_rss: list[Obj], new_rs: Obj | None, d: Obj) -> None:
        now_dt = utcnow()
        now = objects.now_rfc3339(now_dt)
        status = calculate_status(all_rss, new_rs, d, now=now)
        if not has_progress_deadline(d):
            remove_condition(status, "Progressing")
        current = get_condition(_status(d), "Progressing")
        complete_before = (
            int(status.get("replicas") or 0) == int(status.get("updatedReplicas") or 0)
            and current is not None
            and current.get("reason") == NEW_RS_AVAILABLE
        )
        if has_progress_deadline(d) and not complete_before:
            name = objects.name(new_rs) if new_rs is not None else ""
            if deployment_complete(d, status):
                msg = (
                    f'ReplicaSet "{name}" has successfully progressed.'
                    if new_rs is not None
                    else f'Deployment "{objects.name(d)}" has successfully progressed.'
                )
                set_condition(
                    status, new_condition("Progressing", "True", NEW_RS_AVAILABLE, msg, now)
                )
            elif deployment_progressing(d, status):
                msg = (
                    f'ReplicaSet "{name}" is progressing.'
                    if new_rs is not None
                    else f'Deployment "{objects.name(d)}" is progressing.'
                )
                cond = new_condition("Progressing", "True", RS_UPDATED, msg, now)
                if current is not None:
                    if current.get("status") == "True":
                        cond["lastTransitionTime"] = current.get("lastTransitionTime")
                    remove_condition(status, "Progressing")
                set_condition(status, cond)
            elif deployment_timed_out(d, status, now_dt):
                msg = (
                    f'ReplicaSet "{name}" has timed out progressing.'
                    if new_rs is not None
                    else f'Deployment "{objects.name(d)}" has timed out progressing.'
                )
                set_condition(status, new_condition("Progressing", "False", TIMED_OUT, msg, now))
        failure = self._replica_failure(all_rss, new_rs)
        if failure is not None:
            set_condition(status, failure)
        else:
            remove_condition(status, "ReplicaFailure")
        if _same_status(_status(d), status):
            self._requeue_stuck(d, status, now_dt)
            return
        await self._write_status(d, status)

    def _replica_failure(self, all_rss: list[Obj], new_rs: Obj | None) -> Obj | None:
        """``getReplicaFailures``: the new set's ReplicaFailure condition, else an old one's."""
        ordered = ([new_rs] if new_rs is not None else []) + [
            rs for rs in all_rss if rs is not new_rs
        ]
        for rs in ordered:
            cond = get_condition(_status(rs), "ReplicaFailure")
            if cond is not None and cond.get("status") == "True":
                now = cond.get("lastTransitionTime") or objects.now_rfc3339()
                return {
                    "type": "ReplicaFailure",
                    "status": "True",
                    "lastUpdateTime": now,
                    "lastTransitionTime": now,
                    "reason": cond.get("reason", ""),
                    "message": cond.get("message", ""),
                }
        return None

    def _requeue_stuck(self, d: Obj, status: Obj, now: datetime) -> None:
        cond = get_condition(_status(d), "Progressing")
        if not has_progress_deadline(d) or cond is None:
            return
        if deployment_complete(d, status) or cond.get("reason") == TIMED_OUT:
            return
        since = cond.get("lastUpdateTime")
        if not since:
            return
        deadline = objects.parse_rfc3339(since) + timedelta(
            seconds=int(_spec(d)["progressDeadlineSeconds"])
        )
        after = (deadline - now).total_seconds()
        key = object_key(d)
        if after < 1.0:
            self.queue.add_rate_limited(key)
        else:
            self.enqueue_after(key, after + 1.0)

    # --- RollingUpdate ---------------------------------------------------------------------

    async def _rollout_rolling(self, d: Obj, rs_list: list[Obj]) -> None:
        new_rs, old = await self._all_replica_sets(d, rs_list, create=True)
        all_rss = [*old, *([new_rs] if new_rs else [])]
        if new_rs is not None and await self._reconcile_new(d, all_rss, new_rs):
            await self._sync_rollout_status(all_rss, new_rs, d)
            return
        if await self._reconcile_old(d, all_rss, active(old), new_rs):
            await self._sync_rollout_status(all_rss, new_rs, d)
            return
        if deployment_complete(d, _status(d)):
            await self._cleanup(d, old)
        await self._sync_rollout_status(all_rss, new_rs, d)

    async def _reconcile_new(self, d: Obj, all_rss: list[Obj], new_rs: Obj) -> bool:
        if spec_replicas(new_rs) == spec_replicas(d):
            return False
        if spec_replicas(new_rs) > spec_replicas(d):
            return await self._scale_and_record(new_rs, spec_replicas(d), d)
        count = self._new_rs_new_replicas(d, all_rss, new_rs)
        return await self._scale_and_record(new_rs, count, d)

    async def _reconcile_old(
        self, d: Obj, all_rss: list[Obj], old_rss: list[Obj], new_rs: Obj | None
    ) -> bool:
        old_pods = spec_count(old_rss)
        if old_pods == 0:
            return False
        all_pods = spec_count(all_rss)
        min_available = spec_replicas(d) - max_unavailable(d)
        new_unavailable = 0
        if new_rs is not None:
            new_unavailable = spec_replicas(new_rs) - int(
                _status(new_rs).get("availableReplicas") or 0
            )
        max_scaled_down = all_pods - min_available - new_unavailable
        if max_scaled_down <= 0:
            return False
        cleaned = await self._cleanup_unhealthy(d, old_rss, max_scaled_down)
        all_now = [*old_rss, *([new_rs] if new_rs else [])]
        scaled = await self._scale_down_old_for_rolling(d, all_now, old_rss)
        return cleaned + scaled > 0

    async def _cleanup_unhealthy(self, d: Obj, old_rss: list[Obj], max_cleanup: int) -> int:
        total = 0
        for rs in sorted(old_rss, key=_created_key):
            if total >= max_cleanup:
                break
            replicas = spec_replicas(rs)
            available = int(_status(rs).get("availableReplicas") or 0)
            if replicas == 0 or replicas == available:
                continue
            scaled_down = min(max_cleanup - total, replicas - available)
            await self._scale_and_record(rs, replicas - scaled_down, d)
            total += scaled_down
        return total

    async def _scale_down_old_for_rolling(
        self, d: Obj, all_rss: list[Obj], old_rss: list[Obj]
    ) -> int:
        min_available = spec_replicas(d) - max_unavailable(d)
        available = available_count(all_rss)
        if available <= min_available:
            return 0
        to_scale = available - min_available
        total = 0
        for rs in sorted(old_rss, key=_created_key):
            if total >= to_scale:
                break
            replicas = spec_replicas(rs)
            if replicas == 0:
                continue
            count = min(replicas, to_scale - total)
            await self._scale_and_record(rs, replicas - count, d)
            total += count
        return total

    # --- Recreate --------------------------------------------------------------------------

    async def _rollout_recreate(self, d: Obj, rs_list: list[Obj], namespace: str) -> None:
        new_rs, old = await self._all_replica_sets(d, rs_list, create=False)
        all_rss = [*old, *([new_rs] if new_rs else [])]
        scaled_down = False
        for rs in active(old):
            if await self._scale_and_record(rs, 0, d):
                scaled_down = True
        if scaled_down:
            await self._sync_rollout_status(all_rss, new_rs, d)
            return
        if self._old_pods_running(new_rs, old, namespace):
            await self._sync_rollout_status(all_rss, new_rs, d)
            return
        if new_rs is None:
            new_rs, old = await self._all_replica_sets(d, rs_list, create=True)
            all_rss = [*old, *([new_rs] if new_rs else [])]
        if new_rs is not None:
            await self._scale_and_record(new_rs, spec_replicas(d), d)
        if deployment_complete(d, _status(d)):
            await self._cleanup(d, old)
        await self._sync_rollout_status(all_rss, new_rs, d)

    def _old_pods_running(self, new_rs: Obj | None, old_rss: list[Obj], namespace: str) -> bool:
        if actual_count(old_rss) > 0:
            return True
        old_uids = {objects.uid(rs) for rs in old_rss}
        for pod in self.pods.list(namespace=namespace):
            ref = objects.controller_ref(pod)
            if ref is None or ref.get("uid") not in old_uids:
                continue
            if (_status(pod).get("phase") or "") in ("Failed", "Succeeded"):
                continue
            return True
        return False


def _replace(target: Obj, source: Obj) -> None:
    target.clear()
    target.update(source)


def _same_status(a: Obj, b: Obj) -> bool:
    return a == b


def build(ctx: Any) -> DeploymentController:
    return DeploymentController(
        client=ctx.client,
        deployments=ctx.informers.informer(DEPLOYMENTS),
        replicasets=ctx.informers.informer(REPLICASETS),
        pods=ctx.informers.informer(PODS),
        recorder=ctx.recorder(COMPONENT),
    )
