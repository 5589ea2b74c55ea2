"""FailedScheduling messages, built the way upstream's v1.32 ``FitError.Error()`` builds them.

``0/3 nodes are available: <PreFilter message>.`` when a PreFilter plugin refused the pod
(then every node carries the same status and no per-node histogram is printed), otherwise
``0/3 nodes are available: 1 Insufficient cpu, 2 node(s) were unschedulable.`` (each
reason counted over the nodes it refused, sorted as strings), then the preemption
plugin's verdict in the same shape behind ``preemption:``. kubeling never preempts: a node
refused for a reason preemption could address (``Unschedulable``) reports upstream's "No
preemption victims found for incoming pod", which is what upstream says when no pod of
lower priority runs there.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from typing import Final

from kubeling.machinery.types import Obj
from kubeling.scheduler.nodes import Rejection

NO_NODES_AVAILABLE: Final = "no nodes available to schedule pods"
PREEMPTION_NOT_HELPFUL: Final = "Preemption is not helpful for scheduling"
NO_VICTIMS: Final = "No preemption victims found for incoming pod"
NOT_ELIGIBLE_NEVER: Final = "not eligible due to preemptionPolicy=Never."


def _histogram(reasons: Iterable[str]) -> str:
    counts = Counter(reasons)
    return ", ".join(sorted(f"{n} {reason}" for reason, n in counts.items()))


def _available(num_nodes: int) -> str:
    return f"0/{num_nodes} nodes are available:"


def preemption_message(pod: Obj, num_nodes: int, rejections: Mapping[str, Rejection]) -> str:
    """What upstream's DefaultPreemption PostFilter reports when it finds no candidate."""
    # TODO(#3): pods of lower priority are never preempted; a node full of them reports
    # "No preemption victims found" where upstream would evict them.
    if (pod.get("spec") or {}).get("preemptionPolicy") == "Never":
        return f"preemption: {NOT_ELIGIBLE_NEVER}"
    verdicts = [NO_VICTIMS if r.resolvable else PREEMPTION_NOT_HELPFUL for r in rejections.values()]
    return f"preemption: {_available(num_nodes)} {_histogram(verdicts)}."


def fit_error(
    pod: Obj,
    *,
    num_nodes: int,
    rejections: Mapping[str, Rejection],
    prefilter_message: str = "",
) -> str:
    """The whole upstream message for a pod no node can take."""
    text = _available(num_nodes)
    if prefilter_message:
        text += f" {prefilter_message}."
    else:
        histogram = _histogram(r for rej in rejections.values() for r in rej.reasons)
        if histogram:
            text += f" {histogram}."
    text += f" {preemption_message(pod, num_nodes, rejections)}."
    return text
