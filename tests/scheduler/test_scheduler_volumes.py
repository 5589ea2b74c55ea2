"""The scheduler and volumes: PreFilter messages, PV node affinity, WaitForFirstConsumer
(static bindings and provisioning through ``selected-node``), and field reports B12 and B36.

No PV binder runs here: ``Cluster.bind_claim`` and ``FakeProvisioner`` play the binder's
and a provisioner's parts, so each test controls exactly when a claim becomes bound.
"""

from __future__ import annotations

import asyncio
from typing import Any

from kubeling.machinery.errors import NotFound
from kubeling.machinery.resources import PERSISTENTVOLUMECLAIMS, PERSISTENTVOLUMES, PODS
from kubeling.machinery.types import Obj
from tests.scheduler.conftest import (
    Cluster,
    hostname_affinity,
    make_class,
    make_node,
    make_pod,
    make_pv,
    make_pvc,
    wait_until,
)

SELECTED_NODE = "volume.kubernetes.io/selected-node"
NOT_HELPFUL = (
    "preemption: 0/{n} nodes are available: {n} Preemption is not helpful for scheduling.."
)


def not_helpful(n: int) -> str:
    return NOT_HELPFUL.format(n=n)


class FakeProvisioner:
    """A provisioner and binder in one: for every claim annotated with ``selected-node``
    it creates a volume pinned to that node and binds the claim to it. With
    ``refuse_first`` it first gives up once, removing ``selected-node`` as a provisioner
    asking to reschedule does."""

    def __init__(self, cluster: Cluster, *, refuse_first: bool = False) -> None:
        self.cluster = cluster
        self.refuse_first = refuse_first
        self.provisioned: dict[str, str] = {}
        """claim name → node"""
        self.pod_node_when_provisioning: dict[str, str] = {}
        self.refused: list[str] = []

    async def run(self) -> None:
        client = self.cluster.client
        while True:
            listed = await client.list(PERSISTENTVOLUMECLAIMS, namespace="default")
            for claim in listed.get("items") or []:
                await self._handle(claim)
            await asyncio.sleep(0.01)  # a fake: polling keeps it simple

    async def _handle(self, claim: Obj) -> None:
        name = claim["metadata"]["name"]
        node = (claim["metadata"].get("annotations") or {}).get(SELECTED_NODE)
        if not node or name in self.provisioned or claim["spec"].get("volumeName"):
            return
        if self.refuse_first and name not in self.refused:
            self.refused.append(name)
            del claim["metadata"]["annotations"][SELECTED_NODE]
            await self.cluster.client.update(PERSISTENTVOLUMECLAIMS, claim)
            return
        for pod in (await self.cluster.client.list(PODS, namespace="default"))["items"]:
            self.pod_node_when_provisioning[pod["metadata"]["name"]] = pod["spec"].get(
                "nodeName", ""
            )
        pv_name = f"pvc-{claim['metadata']['uid']}"
        pv = make_pv(pv_name, claim["spec"]["resources"]["requests"]["storage"], node=node)
        pv["spec"]["storageClassName"] = claim["spec"].get("storageClassName", "")
        await self.cluster.volume(pv, phase="Available")
        await self.cluster.bind_claim(name, pv_name)
        self.provisioned[name] = node


async def claim_annotation(cluster: Cluster, name: str) -> str | None:
    claim = await cluster.get_claim(name)
    return (claim["metadata"].get("annotations") or {}).get(SELECTED_NODE)


# -- PreFilter ----------------------------------------------------------------------------------


async def test_unbound_immediate_claim_blocks_and_names_the_closest_volume(
    cluster: Cluster,
) -> None:
    await cluster.node(make_node("node-a"))
    await cluster.volume(make_pv("my-pv3", "3Gi"))
    await cluster.claim(make_pvc("data", "5Gi"))
    await cluster.start()
    await cluster.pod(make_pod("app", "data"))
    message = (
        "0/1 nodes are available: pod has unbound immediate PersistentVolumeClaims. "
        f"{not_helpful(1)} Claim default/data: no volume matches (my-pv3: 3Gi < 5Gi)."
    )
    await cluster.wait_message("app", "FailedScheduling", message)
    condition = await cluster.condition("app")
    assert condition is not None
    assert (condition["status"], condition["reason"]) == ("False", "Unschedulable")
    assert condition["message"] == message
    # the binder binds the claim: the claim's change re-queues the pod
    await cluster.volume(make_pv("big", "10Gi"))
    await cluster.bind_claim("data", "big")
    assert await cluster.wait_scheduled("app") == "node-a"
    condition = await cluster.condition("app")
    assert condition is not None
    assert condition["status"] == "True"


async def test_unbound_immediate_claim_of_a_provisioning_class_says_what_it_waits_for(
    cluster: Cluster,
) -> None:
    await cluster.node(make_node("node-a"))
    await cluster.storage_class(make_class("fast", provisioner="example.com/nas"))
    await cluster.claim(make_pvc("data", storage_class="fast"))
    await cluster.start()
    await cluster.pod(make_pod("app", "data"))
    await cluster.wait_message(
        "app",
        "FailedScheduling",
        "0/1 nodes are available: pod has unbound immediate PersistentVolumeClaims. "
        f"{not_helpful(1)} Claim default/data: waiting for provisioner example.com/nas to "
        "create a volume.",
    )


async def test_missing_claim_is_reported_then_found(cluster: Cluster) -> None:
    await cluster.node(make_node("node-a"))
    await cluster.node(make_node("node-b"))
    await cluster.start()
    await cluster.pod(make_pod("app", "data"))
    await cluster.wait_message(
        "app",
        "FailedScheduling",
        f'0/2 nodes are available: persistentvolumeclaim "data" not found. {not_helpful(2)}',
    )
    await cluster.claim(make_pvc("data"))
    await cluster.volume(make_pv("pv-1"))
    await cluster.bind_claim("data", "pv-1")
    assert await cluster.wait_scheduled("app") == "node-a"


async def test_claim_being_deleted_blocks_the_pod(cluster: Cluster) -> None:
    await cluster.node(make_node("node-a"))
    await cluster.claim(make_pvc("data", finalizers=["example.com/hold"]))
    await cluster.client.delete(PERSISTENTVOLUMECLAIMS, name="data", namespace="default")
    await cluster.start()
    await cluster.pod(make_pod("app", "data"))
    await cluster.wait_message(
        "app",
        "FailedScheduling",
        f'0/1 nodes are available: persistentvolumeclaim "data" is being deleted. {not_helpful(1)}',
    )
    claim = await cluster.get_claim("data")
    claim["metadata"]["finalizers"] = []
    await cluster.client.update(PERSISTENTVOLUMECLAIMS, claim)


# -- bound claims: PV node affinity ---------------------------------------------------------------


async def test_bound_claim_volume_node_affinity_conflict(cluster: Cluster) -> None:
    await cluster.node(make_node("node-a"))
    await cluster.volume(make_pv("local-1", node="node-b"))
    await cluster.claim(make_pvc("data"))
    await cluster.bind_claim("data", "local-1")
    await cluster.start()
    await cluster.pod(make_pod("app", "data"))
    await cluster.wait_message(
        "app",
        "FailedScheduling",
        "0/1 nodes are available: 1 node(s) had volume node affinity conflict. "
        f"{not_helpful(1)} Claim default/data: bound to volume local-1, usable only on nodes "
        "with kubernetes.io/hostname in (node-b).",
    )
    # the node the volume lives on joins: the pod follows its volume
    await cluster.node(make_node("node-b"))
    assert await cluster.wait_scheduled("app") == "node-b"


async def test_claim_bound_to_a_missing_volume(cluster: Cluster) -> None:
    await cluster.node(make_node("node-a"))
    await cluster.volume(make_pv("gone"))
    await cluster.claim(make_pvc("data"))
    await cluster.bind_claim("data", "gone")
    await cluster.client.delete(PERSISTENTVOLUMES, name="gone")
    # the pv-protection finalizer holds it while it is bound; an administrator forces it
    await cluster.client.patch(
        PERSISTENTVOLUMES, name="gone", patch={"metadata": {"finalizers": None}}, patch_type="merge"
    )
    await cluster.start()
    await cluster.pod(make_pod("app", "data"))
    await cluster.wait_message(
        "app",
        "FailedScheduling",
        "0/1 nodes are available: 1 node(s) unavailable due to one or more pvc(s) bound to "
        f"non-existent pv(s). {not_helpful(1)} Claim default/data: bound to volume gone, which "
        "does not exist.",
    )


async def test_b36_pod_pinned_to_a_cordoned_node_by_local_volume_stays_pending(
    cluster: Cluster,
) -> None:
    """Field report B36: db-0's volume lives on node-a; node-a is cordoned and db-0 deleted;
    the new db-0 stays Pending (nothing moves or re-provisions) until node-a is uncordoned."""
    await cluster.node(make_node("node-a"))
    await cluster.node(make_node("node-b"))
    await cluster.storage_class(make_class("local", binding_mode="WaitForFirstConsumer"))
    provisioner = FakeProvisioner(cluster)
    cluster.spawn(provisioner.run())
    await cluster.claim(make_pvc("data-db-0", storage_class="local"))
    await cluster.start()
    await cluster.pod(make_pod("db-0", "data-db-0"))
    assert await cluster.wait_scheduled("db-0") == "node-a"
    volume = (await cluster.get_claim("data-db-0"))["spec"]["volumeName"]

    await cluster.patch_node("node-a", {"spec": {"unschedulable": True}})
    await cluster.client.delete(PODS, name="db-0", namespace="default", grace_period_seconds=0)

    async def gone() -> bool:
        try:
            await cluster.get_pod("db-0")
        except NotFound:
            return True
        return False

    await wait_until(gone, what="db-0 to be deleted")
    await cluster.pod(make_pod("db-0", "data-db-0"))
    await cluster.wait_message(
        "db-0",
        "FailedScheduling",
        "0/2 nodes are available: 1 node(s) had volume node affinity conflict, 1 node(s) were "
        f"unschedulable. {not_helpful(2)} Claim default/data-db-0: bound to volume {volume}, "
        "usable only on nodes with kubernetes.io/hostname in (node-a).",
    )
    assert await cluster.node_of("db-0") == ""
    assert list(provisioner.provisioned) == ["data-db-0"]  # nothing re-provisioned
    await cluster.patch_node("node-a", {"spec": {"unschedulable": None}})
    assert await cluster.wait_scheduled("db-0") == "node-a"


# -- WaitForFirstConsumer --------------------------------------------------------------------------


async def test_wait_for_first_consumer_selects_a_node_and_binds_after_the_claim(
    cluster: Cluster,
) -> None:
    """Field report B12, nodeSelector variant: the claim is provisioned for the node the
    scheduler picked, and the pod is bound only once the claim is."""
    await cluster.node(make_node("node-a"))
    await cluster.node(make_node("node-b"))
    await cluster.storage_class(make_class("lp", binding_mode="WaitForFirstConsumer"))
    await cluster.claim(make_pvc("data", "10Mi", storage_class="lp"))
    provisioner = FakeProvisioner(cluster)
    cluster.spawn(provisioner.run())
    await cluster.start()
    await cluster.pod(make_pod("app", "data", node_selector={"kubernetes.io/hostname": "node-b"}))
    assert await cluster.wait_scheduled("app") == "node-b"
    assert provisioner.provisioned == {"data": "node-b"}
    assert provisioner.pod_node_when_provisioning["app"] == ""
    assert await claim_annotation(cluster, "data") == "node-b"
    claim = await cluster.get_claim("data")
    pv = await cluster.client.get(PERSISTENTVOLUMES, name=claim["spec"]["volumeName"])
    assert pv["spec"]["nodeAffinity"] == hostname_affinity("node-b")
    await cluster.wait_message("app", "Scheduled", "Successfully assigned default/app to node-b")


async def test_b12_pod_with_node_name_never_triggers_provisioning(cluster: Cluster) -> None:
    """Field report B12: ``spec.nodeName`` skips the scheduler, so nothing writes
    ``selected-node`` and a WaitForFirstConsumer claim stays Pending (upstream's caveat)."""
    await cluster.node(make_node("node-a"))
    await cluster.storage_class(make_class("lp", binding_mode="WaitForFirstConsumer"))
    await cluster.claim(make_pvc("data", "10Mi", storage_class="lp"))
    await cluster.start()
    await cluster.pod(make_pod("app", "data", node_name="node-a"))
    # a later pod is scheduled, so the scheduler has long seen (and skipped) "app"
    await cluster.pod(make_pod("sentinel"))
    assert await cluster.wait_scheduled("sentinel") == "node-a"
    assert await claim_annotation(cluster, "data") is None
    assert await cluster.messages("app", "Scheduled") == []


async def test_wait_for_first_consumer_static_volume_on_the_only_usable_node(
    cluster: Cluster,
) -> None:
    await cluster.node(make_node("node-a", unschedulable=True))
    await cluster.node(make_node("node-b"))
    no_prov = make_class(
        "local", provisioner="kubernetes.io/no-provisioner", binding_mode="WaitForFirstConsumer"
    )
    await cluster.storage_class(no_prov)
    await cluster.volume(make_pv("pv-a", storage_class="local", node="node-a"))
    await cluster.volume(make_pv("pv-b", storage_class="local", node="node-b"))
    await cluster.claim(make_pvc("data", storage_class="local"))
    await cluster.start()
    await cluster.pod(make_pod("app", "data"))

    async def reserved() -> bool:
        pv = await cluster.client.get(PERSISTENTVOLUMES, name="pv-b")
        return bool(pv["spec"].get("claimRef"))

    await wait_until(reserved, what="the scheduler to write pv-b's claimRef")
    pv = await cluster.client.get(PERSISTENTVOLUMES, name="pv-b")
    claim = await cluster.get_claim("data")
    assert pv["spec"]["claimRef"]["uid"] == claim["metadata"]["uid"]
    assert pv["metadata"]["annotations"]["pv.kubernetes.io/bound-by-controller"] == "yes"
    assert (await cluster.client.get(PERSISTENTVOLUMES, name="pv-a"))["spec"].get(
        "claimRef"
    ) is None
    assert await cluster.node_of("app") == ""  # waits for the binder
    await cluster.bind_claim("data", "pv-b")
    assert await cluster.wait_scheduled("app") == "node-b"


async def test_wait_for_first_consumer_without_volume_or_provisioner_explains(
    cluster: Cluster,
) -> None:
    await cluster.node(make_node("node-a"))
    await cluster.node(make_node("node-b"))
    no_prov = make_class(
        "local", provisioner="kubernetes.io/no-provisioner", binding_mode="WaitForFirstConsumer"
    )
    await cluster.storage_class(no_prov)
    await cluster.volume(make_pv("pv-a", "1Gi", storage_class="local", node="node-a"))
    await cluster.claim(make_pvc("data", "5Gi", storage_class="local"))
    await cluster.start()
    await cluster.pod(make_pod("app", "data"))
    await cluster.wait_message(
        "app",
        "FailedScheduling",
        "0/2 nodes are available: 2 node(s) didn't find available persistent volumes to bind. "
        f'{not_helpful(2)} Claim default/data: no volume fits (pv-a: 1Gi < 5Gi) and class "local" '
        "does not provision volumes (kubernetes.io/no-provisioner).",
    )
    # an administrator adds a big enough volume on node-b: the pod is retried and lands there
    await cluster.volume(make_pv("pv-b", "8Gi", storage_class="local", node="node-b"))

    async def reserved() -> bool:
        pv = await cluster.client.get(PERSISTENTVOLUMES, name="pv-b")
        return bool(pv["spec"].get("claimRef"))

    await wait_until(reserved, what="pv-b to be reserved for the claim")
    await cluster.bind_claim("data", "pv-b")
    assert await cluster.wait_scheduled("app") == "node-b"


async def test_two_pods_never_get_the_same_static_volume(cluster: Cluster) -> None:
    await cluster.node(make_node("node-a"))
    no_prov = make_class(
        "local", provisioner="kubernetes.io/no-provisioner", binding_mode="WaitForFirstConsumer"
    )
    await cluster.storage_class(no_prov)
    await cluster.volume(make_pv("only", storage_class="local", node="node-a"))
    await cluster.claim(make_pvc("one", storage_class="local"))
    await cluster.claim(make_pvc("two", storage_class="local"))
    await cluster.start()
    await cluster.pod(make_pod("first", "one"))
    await cluster.pod(make_pod("second", "two"))
    await cluster.wait_message(
        "second",
        "FailedScheduling",
        "0/1 nodes are available: 1 node(s) didn't find available persistent volumes to bind. "
        f"{not_helpful(1)} Claim default/two: no volume fits (only: bound to default/one) and "
        'class "local" does not provision volumes (kubernetes.io/no-provisioner).',
    )
    pv = await cluster.client.get(PERSISTENTVOLUMES, name="only")
    assert pv["spec"]["claimRef"]["name"] == "one"


async def test_provisioner_giving_up_resets_selected_node_and_the_pod_is_rescheduled(
    cluster: Cluster,
) -> None:
    await cluster.node(make_node("node-a"))
    await cluster.storage_class(make_class("lp", binding_mode="WaitForFirstConsumer"))
    await cluster.claim(make_pvc("data", storage_class="lp"))
    provisioner = FakeProvisioner(cluster, refuse_first=True)
    cluster.spawn(provisioner.run())
    await cluster.start()
    await cluster.pod(make_pod("app", "data"))
    await cluster.wait_message(
        "app",
        "FailedScheduling",
        'running PreBind plugin "VolumeBinding": binding volumes: selectedNode annotation reset '
        'for PVC "data"',
    )
    assert await cluster.wait_scheduled("app") == "node-a"
    assert provisioner.refused == ["data"]
    assert provisioner.provisioned == {"data": "node-a"}


async def test_volume_binding_times_out_and_reports_it(cluster: Cluster) -> None:
    cluster.scheduler.bind_timeout = 0.2
    await cluster.node(make_node("node-a"))
    await cluster.storage_class(make_class("lp", binding_mode="WaitForFirstConsumer"))
    await cluster.claim(make_pvc("data", storage_class="lp"))
    await cluster.start()
    await cluster.pod(make_pod("app", "data"))
    message = 'running PreBind plugin "VolumeBinding": binding volumes: context deadline exceeded'
    await cluster.wait_message("app", "FailedScheduling", message)
    condition = await cluster.condition("app")
    assert condition is not None
    assert condition["reason"] == "SchedulerError"
    assert await claim_annotation(cluster, "data") == "node-a"
    assert await cluster.node_of("app") == ""


async def test_selected_node_elsewhere_keeps_the_pod_off_other_nodes(cluster: Cluster) -> None:
    await cluster.node(make_node("node-a"))
    await cluster.storage_class(make_class("lp", binding_mode="WaitForFirstConsumer"))
    claim: dict[str, Any] = make_pvc("data", storage_class="lp")
    claim["metadata"]["annotations"] = {SELECTED_NODE: "node-z"}
    await cluster.claim(claim)
    await cluster.start()
    await cluster.pod(make_pod("app", "data"))
    await cluster.wait_message(
        "app",
        "FailedScheduling",
        "0/1 nodes are available: 1 node(s) didn't find available persistent volumes to bind. "
        f"{not_helpful(1)} Claim default/data: waits for node node-z ({SELECTED_NODE}).",
    )


async def test_read_write_once_pod_claim_admits_one_pod_at_a_time(cluster: Cluster) -> None:
    await cluster.node(make_node("node-a"))
    await cluster.volume(make_pv("pv-1", modes=("ReadWriteOncePod",)))
    claim = make_pvc("data")
    claim["spec"]["accessModes"] = ["ReadWriteOncePod"]
    await cluster.claim(claim)
    await cluster.bind_claim("data", "pv-1")
    await cluster.start()
    await cluster.pod(make_pod("first", "data"))
    assert await cluster.wait_scheduled("first") == "node-a"
    await cluster.pod(make_pod("second", "data"))
    await cluster.wait_message(
        "second",
        "FailedScheduling",
        "0/1 nodes are available: 1 node has pod using PersistentVolumeClaim with the same name "
        "and ReadWriteOncePod access mode. preemption: 0/1 nodes are available: 1 No preemption "
        "victims found for incoming pod.. Claim default/data: ReadWriteOncePod, in use by pod "
        "default/first on node node-a.",
    )
    await cluster.client.delete(PODS, name="first", namespace="default", grace_period_seconds=0)
    assert await cluster.wait_scheduled("second") == "node-a"


async def test_a_storage_class_appearing_retries_the_pod(cluster: Cluster) -> None:
    """A claim whose class does not exist counts as Immediate (upstream's
    IsDelayBindingMode); once the WaitForFirstConsumer class appears, the pod is retried
    and the claim gets its node."""
    await cluster.node(make_node("node-a"))
    await cluster.claim(make_pvc("data", storage_class="late"))
    await cluster.start()
    await cluster.pod(make_pod("app", "data"))
    await cluster.wait_message(
        "app",
        "FailedScheduling",
        "0/1 nodes are available: pod has unbound immediate PersistentVolumeClaims. "
        f'{not_helpful(1)} Claim default/data: storageclass "late" not found.',
    )
    await cluster.storage_class(make_class("late", binding_mode="WaitForFirstConsumer"))

    async def selected() -> bool:
        return await claim_annotation(cluster, "data") == "node-a"

    await wait_until(selected, what="the claim to get its selected node")
