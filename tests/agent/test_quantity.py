"""The agent's unit conversions for limits, and the downward API's rounded resource values."""

from __future__ import annotations

import pytest

from kubeling.agent.quantity import to_bytes, to_millicores
from kubeling.agent.volumes.emptydir import pod_memory_limit
from kubeling.agent.volumes.projected import resource_field_value


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        pytest.param("64Mi", 64 * 2**20, id="binary"),
        pytest.param("1G", 10**9, id="decimal"),
        pytest.param("1.5Ki", 1536, id="fractional-binary"),
        pytest.param("1500m", 2, id="milli-rounds-up"),
        pytest.param("1e3", 1000, id="exponent"),
        pytest.param(4096, 4096, id="int"),
    ],
)
def test_to_bytes_rounds_up_to_whole_bytes(value: str | int, expected: int) -> None:
    assert to_bytes(value) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        pytest.param("250m", 250, id="milli"),
        pytest.param("2", 2000, id="cores"),
        pytest.param("0.1", 100, id="fraction"),
        pytest.param("1u", 1, id="micro-rounds-up"),
        pytest.param(0.5, 500, id="float"),
    ],
)
def test_to_millicores_rounds_up_to_whole_millicores(value: str | float, expected: int) -> None:
    assert to_millicores(value) == expected


@pytest.mark.parametrize("value", ["", "1Qi", "abc", "1..5"])
def test_malformed_quantity_raises_a_value_error(value: str) -> None:
    # the volume preparers turn a ValueError into a permanent VolumeSetupError
    with pytest.raises(ValueError):
        to_bytes(value)


def _pod(limits: dict[str, str]) -> dict:
    return {"spec": {"containers": [{"name": "app", "resources": {"limits": limits}}]}}


@pytest.mark.parametrize(
    ("resource", "divisor", "expected"),
    [
        pytest.param("limits.memory", None, "134217728", id="bytes"),
        pytest.param("limits.memory", "1Mi", "128", id="mebibytes"),
        pytest.param("limits.memory", "1G", "1", id="rounds-up"),
        pytest.param("limits.cpu", "1m", "1500", id="millicores"),
        pytest.param("limits.cpu", None, "2", id="cores-round-up"),
        pytest.param("limits.cpu", "0", "2", id="zero-divisor-is-one"),
    ],
)
def test_resource_field_value_divides_and_rounds_up(
    resource: str, divisor: str | None, expected: str
) -> None:
    ref = {"containerName": "app", "resource": resource}
    if divisor is not None:
        ref["divisor"] = divisor
    pod = _pod({"memory": "128Mi", "cpu": "1500m"})
    assert resource_field_value(pod, ref) == expected


def test_pod_memory_limit_sums_containers_in_bytes() -> None:
    pod = {
        "spec": {
            "containers": [
                {"name": "a", "resources": {"limits": {"memory": "64Mi"}}},
                {"name": "b", "resources": {"limits": {"memory": "1M"}}},
            ]
        }
    }
    assert pod_memory_limit(pod) == 64 * 2**20 + 10**6
