"""The scheduler on nodes alone: binding, node filters, their messages, spreading, retries."""

from __future__ import annotations

import pathlib

import pytest

from kubeling.client.informer import SharedInformerFactory
from kubeling.machinery.resources import PODS
from tests.scheduler.conftest import Cluster, make_node, make_pod, wait_until

# upstream's PostFilter message ends with a period and FitError adds its separator: "..".
NOT_HELPFUL_1 = "preemption: 0/1 nodes are available: 1 Preemption is not helpful for scheduling.."


async def test_scheduler_binds_pod_to_the_only_ready_node(cluster: Cluster) -> None:
    await cluster.node(make_node("node-a"))
    await cluster.start()
    await cluster.pod(make_pod("app"))
    assert await cluster.wait_scheduled("app") == "node-a"
    await cluster.wait_message("app", "Scheduled", "Successfully assigned default/app to node-a")
    condition = await cluster.condition("app")
    assert condition is not None
    assert condition["status"] == "True"
    assert await cluster.messages("app", "FailedScheduling") == []


async def test_scheduler_leaves_pods_of_other_schedulers_and_assigned_pods_alone(
    cluster: Cluster,
) -> None:
    await cluster.node(make_node("node-a"))
    await cluster.node(make_node("node-b"))
    await cluster.start()
    await cluster.pod(make_pod("custom", scheduler_name="my-scheduler"))
    await cluster.pod(make_pod("pinned", node_name="node-b"))
    await cluster.pod(make_pod("ours"))
    assert await cluster.wait_scheduled("ours") == "node-a"
    # "ours" was queued after the others, so the scheduler has seen them by now
    assert await cluster.node_of("custom") == ""
    assert await cluster.node_of("pinned") == "node-b"
    assert await cluster.messages("custom", "FailedScheduling") == []
    assert await cluster.messages("pinned", "Scheduled") == []


async def test_scheduler_reports_no_nodes_then_schedules_when_one_registers(
    cluster: Cluster,
) -> None:
    await cluster.start()
    await cluster.pod(make_pod("app"))
    await cluster.wait_message("app", "FailedScheduling", "no nodes available to schedule pods")
    condition = await cluster.condition("app")
    assert condition is not None
    assert (condition["status"], condition["reason"]) == ("False", "Unschedulable")
    assert condition["message"] == "no nodes available to schedule pods"
    await cluster.node(make_node("node-a"))
    assert await cluster.wait_scheduled("app") == "node-a"


@pytest.mark.parametrize(
    ("node", "pod", "message"),
    [
        pytest.param(
            make_node("node-a", unschedulable=True),
            make_pod("app"),
            f"0/1 nodes are available: 1 node(s) were unschedulable. {NOT_HELPFUL_1}",
            id="cordoned",
        ),
        pytest.param(
            make_node("node-a", ready="False"),
            make_pod("app"),
            "0/1 nodes are available: 1 node(s) had untolerated taint "
            f"{{node.kubernetes.io/not-ready: }}. {NOT_HELPFUL_1}",
            id="not-ready",
        ),
        pytest.param(
            make_node("node-a", ready=None),
            make_pod("app"),
            "0/1 nodes are available: 1 node(s) had untolerated taint "
            f"{{node.kubernetes.io/unreachable: }}. {NOT_HELPFUL_1}",
            id="never-posted-status",
        ),
        pytest.param(
            make_node(
                "node-a", taints=[{"key": "dedicated", "value": "db", "effect": "NoSchedule"}]
            ),
            make_pod("app"),
            "0/1 nodes are available: 1 node(s) had untolerated taint {dedicated: db}. "
            + NOT_HELPFUL_1,
            id="taint",
        ),
        pytest.param(
            make_node("node-a"),
            make_pod("app", node_selector={"disk": "ssd"}),
            f"0/1 nodes are available: 1 node(s) didn't match Pod's node affinity/selector. "
            f"{NOT_HELPFUL_1}",
            id="node-selector",
        ),
        pytest.param(
            make_node("node-a", cpu="1"),
            make_pod("app", cpu="1500m"),
            "0/1 nodes are available: 1 Insufficient cpu. preemption: 0/1 nodes are available: "
            "1 No preemption victims found for incoming pod..",
            id="cpu",
        ),
        pytest.param(
            make_node("node-a", cpu="1", memory="1Gi"),
            make_pod("app", cpu="2", memory="2Gi"),
            "0/1 nodes are available: 1 Insufficient cpu, 1 Insufficient memory. preemption: "
            "0/1 nodes are available: 1 No preemption victims found for incoming pod..",
            id="cpu-and-memory",
        ),
        pytest.param(
            make_node("node-a", pods="0"),
            make_pod("app"),
            "0/1 nodes are available: 1 Too many pods. preemption: 0/1 nodes are available: "
            "1 No preemption victims found for incoming pod..",
            id="pods",
        ),
    ],
)
async def test_scheduler_reports_node_filter_failures_as_upstream(
    cluster: Cluster, node: dict, pod: dict, message: str
) -> None:
    await cluster.node(node)
    await cluster.start()
    await cluster.pod(pod)
    await cluster.wait_message("app", "FailedScheduling", message)
    condition = await cluster.condition("app")
    assert condition is not None
    assert condition["status"] == "False"
    assert condition["reason"] == "Unschedulable"
    assert condition["message"] == message
    assert await cluster.node_of("app") == ""


async def test_scheduler_counts_each_node_once_in_upstream_filter_order(cluster: Cluster) -> None:
    # node-a fails two filters; only the first (NodeUnschedulable) is reported for it
    await cluster.node(make_node("node-a", unschedulable=True, cpu="1"))
    await cluster.node(make_node("node-b", cpu="1"))
    await cluster.node(make_node("node-c", labels={"disk": "hdd"}))
    await cluster.start()
    await cluster.pod(make_pod("app", cpu="2", node_selector={"kubernetes.io/os": "plan9"}))
    await cluster.wait_message(
        "app",
        "FailedScheduling",
        "0/3 nodes are available: 1 node(s) were unschedulable, 2 node(s) didn't match Pod's "
        "node affinity/selector. preemption: 0/3 nodes are available: 3 Preemption is not "
        "helpful for scheduling..",
    )


async def test_scheduler_honours_tolerations_for_not_ready_and_cordoned_nodes(
    cluster: Cluster,
) -> None:
    await cluster.node(make_node("node-a", ready="False", unschedulable=True))
    await cluster.start()
    tolerate_all = [{"operator": "Exists"}]
    await cluster.pod(make_pod("app", tolerations=tolerate_all))
    assert await cluster.wait_scheduled("app") == "node-a"


async def test_scheduler_required_node_affinity_picks_the_matching_node(cluster: Cluster) -> None:
    await cluster.node(make_node("node-a", labels={"zone": "z1"}))
    await cluster.node(make_node("node-b", labels={"zone": "z2"}))
    await cluster.start()
    affinity = {
        "nodeAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": {
                "nodeSelectorTerms": [
                    {"matchExpressions": [{"key": "zone", "operator": "NotIn", "values": ["z1"]}]}
                ]
            }
        }
    }
    await cluster.pod(make_pod("app", affinity=affinity))
    assert await cluster.wait_scheduled("app") == "node-b"


async def test_scheduler_spreads_pods_by_least_allocated_with_ties_by_name(
    cluster: Cluster,
) -> None:
    for name in ("node-c", "node-a", "node-b"):
        await cluster.node(make_node(name, cpu="2", memory="4Gi"))
    await cluster.start()
    for i in range(6):
        await cluster.pod(make_pod(f"web-{i}", cpu="500m", memory="512Mi"))
    placed = {}
    for i in range(6):
        placed[f"web-{i}"] = await cluster.wait_scheduled(f"web-{i}")
    counts = {n: list(placed.values()).count(n) for n in ("node-a", "node-b", "node-c")}
    assert counts == {"node-a": 2, "node-b": 2, "node-c": 2}
    # the first pod found three equal nodes and took the first by name
    assert placed["web-0"] == "node-a"


async def test_scheduler_retries_when_resources_free_up(cluster: Cluster) -> None:
    await cluster.node(make_node("node-a", cpu="1"))
    await cluster.start()
    await cluster.pod(make_pod("big", cpu="800m"))
    assert await cluster.wait_scheduled("big") == "node-a"
    await cluster.pod(make_pod("next", cpu="800m"))
    await cluster.wait_message(
        "next",
        "FailedScheduling",
        "0/1 nodes are available: 1 Insufficient cpu. preemption: 0/1 nodes are available: "
        "1 No preemption victims found for incoming pod..",
    )
    await cluster.client.delete(PODS, name="big", namespace="default", grace_period_seconds=0)
    assert await cluster.wait_scheduled("next") == "node-a"


async def test_scheduler_retries_when_a_node_is_uncordoned(cluster: Cluster) -> None:
    await cluster.node(make_node("node-a", unschedulable=True))
    await cluster.start()
    await cluster.pod(make_pod("app"))
    await cluster.wait_message(
        "app",
        "FailedScheduling",
        f"0/1 nodes are available: 1 node(s) were unschedulable. {NOT_HELPFUL_1}",
    )
    await cluster.patch_node("node-a", {"spec": {"unschedulable": None}})
    assert await cluster.wait_scheduled("app") == "node-a"


async def test_scheduler_marks_gated_pods_and_schedules_them_once_ungated(
    cluster: Cluster,
) -> None:
    await cluster.node(make_node("node-a"))
    await cluster.start()
    await cluster.pod(make_pod("app", gates=["example.com/wait"]))

    async def gated() -> bool:
        condition = await cluster.condition("app")
        return condition is not None and condition.get("reason") == "SchedulingGated"

    await wait_until(gated, what="the SchedulingGated condition")
    condition = await cluster.condition("app")
    assert condition is not None
    assert condition["message"] == "Scheduling is blocked due to non-empty scheduling gates"
    assert await cluster.node_of("app") == ""
    await cluster.client.patch(
        PODS,
        name="app",
        namespace="default",
        patch={"spec": {"schedulingGates": None}},
        patch_type="merge",
    )
    assert await cluster.wait_scheduled("app") == "node-a"


async def test_scheduler_preemption_never_pods_say_they_are_not_eligible(
    cluster: Cluster,
) -> None:
    await cluster.node(make_node("node-a", cpu="1"))
    await cluster.start()
    pod = make_pod("app", cpu="2")
    pod["spec"]["preemptionPolicy"] = "Never"
    await cluster.pod(pod)
    # upstream appends its separator to a message that already ends in a period
    await cluster.wait_message(
        "app",
        "FailedScheduling",
        "0/1 nodes are available: 1 Insufficient cpu. preemption: not eligible due to "
        "preemptionPolicy=Never..",
    )


async def test_controller_manager_runs_the_scheduler_by_name(
    cluster: Cluster, tmp_path: pathlib.Path
) -> None:
    from kubeling.controllers.manager import BUILDERS, ControllerContext, ControllerManager

    assert BUILDERS["scheduler"] == "kubeling.scheduler:build"
    informers = SharedInformerFactory(cluster.client)
    ctx = ControllerContext(client=cluster.client, informers=informers, data_dir=tmp_path)
    manager = ControllerManager(ctx, enabled=["scheduler"])
    await manager.start()
    try:
        await cluster.node(make_node("node-a"))
        await cluster.pod(make_pod("app"))
        assert await cluster.wait_scheduled("app") == "node-a"
    finally:
        await manager.stop()


async def test_scheduler_keeps_host_ports_apart(cluster: Cluster) -> None:
    await cluster.node(make_node("node-a"))
    await cluster.start()
    for name in ("web-1", "web-2"):
        pod = make_pod(name)
        pod["spec"]["containers"][0]["ports"] = [{"containerPort": 80, "hostPort": 8080}]
        await cluster.pod(pod)
    assert await cluster.wait_scheduled("web-1") == "node-a"
    await cluster.wait_message(
        "web-2",
        "FailedScheduling",
        "0/1 nodes are available: 1 node(s) didn't have free ports for the requested pod ports. "
        "preemption: 0/1 nodes are available: 1 No preemption victims found for incoming pod..",
    )
    await cluster.node(make_node("node-b"))
    assert await cluster.wait_scheduled("web-2") == "node-b"


async def test_scheduler_frees_the_requests_of_finished_pods(cluster: Cluster) -> None:
    await cluster.node(make_node("node-a", cpu="1"))
    await cluster.start()
    await cluster.pod(make_pod("job", cpu="800m"))
    assert await cluster.wait_scheduled("job") == "node-a"
    await cluster.pod(make_pod("next", cpu="800m"))
    await cluster.wait_message(
        "next",
        "FailedScheduling",
        "0/1 nodes are available: 1 Insufficient cpu. preemption: 0/1 nodes are available: "
        "1 No preemption victims found for incoming pod..",
    )
    job = await cluster.get_pod("job")
    job["status"]["phase"] = "Succeeded"
    await cluster.client.update(PODS, job, subresource="status")
    assert await cluster.wait_scheduled("next") == "node-a"
