"""The pure parts of the scheduler: tolerations, node selectors, pod requests, scoring,
volume matching and the FailedScheduling message shape."""

from __future__ import annotations

from fractions import Fraction
from typing import Any

import pytest

from kubeling.scheduler import nodes, volumes
from kubeling.scheduler.diagnosis import fit_error
from kubeling.scheduler.nodes import NodeUsage, Rejection
from tests.scheduler.conftest import make_node, make_pod, make_pv, make_pvc


@pytest.mark.parametrize(
    ("toleration", "taint", "expected"),
    [
        pytest.param({"operator": "Exists"}, {"key": "a", "effect": "NoSchedule"}, True, id="all"),
        pytest.param(
            {"key": "a", "operator": "Equal", "value": "1", "effect": "NoSchedule"},
            {"key": "a", "value": "1", "effect": "NoSchedule"},
            True,
            id="equal",
        ),
        pytest.param(
            {"key": "a", "value": "2"},
            {"key": "a", "value": "1", "effect": "NoSchedule"},
            False,
            id="other-value",
        ),
        pytest.param(
            {"key": "a", "operator": "Exists", "effect": "NoExecute"},
            {"key": "a", "effect": "NoSchedule"},
            False,
            id="other-effect",
        ),
        pytest.param(
            {"key": "b", "operator": "Exists"},
            {"key": "a", "effect": "NoSchedule"},
            False,
            id="other-key",
        ),
        pytest.param(
            {"key": "a", "operator": "Exists"},
            {"key": "a", "value": "x", "effect": "NoSchedule"},
            True,
            id="exists-any-value",
        ),
    ],
)
def test_tolerations_match_as_upstream(
    toleration: dict[str, Any], taint: dict[str, Any], expected: bool
) -> None:
    pod = make_pod("p", tolerations=[toleration])
    assert nodes.tolerated(pod, taint) is expected


def test_not_ready_node_gets_the_lifecycle_controllers_taint_once() -> None:
    node = make_node("n", ready="False")
    assert nodes.effective_taints(node) == [
        {"key": "node.kubernetes.io/not-ready", "effect": "NoSchedule"}
    ]
    node["spec"]["taints"] = [{"key": "node.kubernetes.io/not-ready", "effect": "NoSchedule"}]
    assert len(nodes.effective_taints(node)) == 1
    assert nodes.effective_taints(make_node("n")) == []


@pytest.mark.parametrize(
    ("expr", "expected"),
    [
        pytest.param({"key": "zone", "operator": "In", "values": ["a", "b"]}, True, id="in"),
        pytest.param({"key": "zone", "operator": "NotIn", "values": ["a"]}, False, id="notin"),
        pytest.param({"key": "gpu", "operator": "DoesNotExist"}, True, id="doesnotexist"),
        pytest.param({"key": "zone", "operator": "Exists"}, True, id="exists"),
        pytest.param({"key": "cores", "operator": "Gt", "values": ["4"]}, True, id="gt"),
        pytest.param({"key": "cores", "operator": "Lt", "values": ["4"]}, False, id="lt"),
        pytest.param({"key": "zone", "operator": "Gt", "values": ["4"]}, False, id="gt-not-int"),
    ],
)
def test_node_selector_operators(expr: dict[str, Any], expected: bool) -> None:
    node = make_node("n", labels={"zone": "a", "cores": "8"})
    assert nodes.term_matches({"matchExpressions": [expr]}, node) is expected


def test_node_selector_terms_are_ored_and_empty_terms_match_nothing() -> None:
    node = make_node("n", labels={"zone": "a"})
    miss = {"matchExpressions": [{"key": "zone", "operator": "In", "values": ["b"]}]}
    field = {"matchFields": [{"key": "metadata.name", "operator": "In", "values": ["n"]}]}
    assert nodes.selector_terms_match([miss, field], node)
    assert not nodes.selector_terms_match([miss], node)
    assert not nodes.selector_terms_match([{}], node)
    assert not nodes.selector_terms_match([], node)


def test_pod_requests_take_the_init_container_peak_and_add_sidecars() -> None:
    pod = make_pod("p", cpu="500m", memory="100Mi")
    pod["spec"]["initContainers"] = [
        {"name": "sidecar", "restartPolicy": "Always", "resources": {"requests": {"cpu": "100m"}}},
        {"name": "setup", "resources": {"requests": {"cpu": "2", "memory": "50Mi"}}},
    ]
    pod["spec"]["overhead"] = {"cpu": "10m"}
    requests = nodes.pod_requests(pod)
    # max(containers + sidecar = 600m, setup + sidecar = 2100m) + overhead
    assert requests["cpu"] == Fraction(2110, 1000)
    assert requests["memory"] == 100 * 1024 * 1024


def test_least_allocated_prefers_the_emptier_node() -> None:
    pod = make_pod("p", cpu="1", memory="1Gi")
    node = make_node("n", cpu="4", memory="4Gi")
    empty = NodeUsage()
    busy = NodeUsage()
    busy.add(make_pod("q", cpu="2", memory="2Gi"))
    assert nodes.least_allocated_score(pod, node, empty) == 75
    assert nodes.least_allocated_score(pod, node, busy) == 25


def test_volume_mismatch_reasons_name_what_differs() -> None:
    claim = make_pvc("data", "5Gi", storage_class="gold")
    claim["metadata"]["uid"] = "u1"

    def pv(**kw: Any) -> dict[str, Any]:
        out = make_pv("v", kw.pop("size", "10Gi"), storage_class=kw.pop("sc", "gold"), **kw)
        out["status"] = {"phase": kw.get("phase", "Available")}
        return out

    assert volumes.volume_mismatch(claim, pv()) is None
    assert volumes.volume_mismatch(claim, pv(size="3Gi")) == "3Gi < 5Gi"
    assert volumes.volume_mismatch(claim, pv(sc="")) == 'class "" != "gold"'
    assert (
        volumes.volume_mismatch(claim, pv(modes=("ReadOnlyMany",)))
        == "access modes ReadOnlyMany lack ReadWriteOnce"
    )
    released = pv()
    released["status"]["phase"] = "Released"
    assert volumes.volume_mismatch(claim, released) == "Released"
    other = pv(claim_ref={"namespace": "default", "name": "other", "uid": "u2"})
    assert volumes.volume_mismatch(claim, other) == "bound to default/other"
    pinned = pv(node="node-b")
    assert (
        volumes.volume_mismatch(claim, pinned, node=make_node("node-a"))
        == "node affinity (kubernetes.io/hostname in (node-b))"
    )


def test_find_matching_volume_takes_the_smallest_that_fits_on_the_node() -> None:
    claim = make_pvc("data", "1Gi", storage_class="local")
    claim["metadata"]["uid"] = "u1"
    candidates = []
    for name, size, node in (
        ("big", "10Gi", "node-a"),
        ("small", "2Gi", "node-a"),
        ("tiny", "1Gi", "node-b"),
    ):
        pv = make_pv(name, size, storage_class="local", node=node)
        pv["status"] = {"phase": "Available"}
        candidates.append(pv)
    best = volumes.find_matching_volume(claim, candidates, make_node("node-a"), {})
    assert best is not None and best["metadata"]["name"] == "small"
    taken = volumes.find_matching_volume(
        claim, candidates, make_node("node-a"), {"small": "default/other"}
    )
    assert taken is not None and taken["metadata"]["name"] == "big"


def test_fit_error_counts_reasons_per_node_and_sorts_them() -> None:
    pod = make_pod("p")
    rejections = {
        "a": Rejection(reasons=("node(s) were unschedulable",)),
        "b": Rejection(reasons=("Insufficient cpu", "Insufficient memory"), resolvable=True),
        "c": Rejection(reasons=("Insufficient cpu",), resolvable=True),
    }
    assert fit_error(pod, num_nodes=3, rejections=rejections) == (
        "0/3 nodes are available: 1 Insufficient memory, 1 node(s) were unschedulable, "
        "2 Insufficient cpu. preemption: 0/3 nodes are available: 1 Preemption is not helpful "
        "for scheduling, 2 No preemption victims found for incoming pod.."
    )
