"""``Cluster`` in-process: the composition root that ``kubeling up`` and tests share."""

from __future__ import annotations

import pathlib
import ssl

import httpx
import pytest

from kubeling.cluster import Cluster, ClusterConfig, split_host_port
from kubeling.machinery import resources


class _Recorder:
    def __init__(self, name: str, log: list[str]) -> None:
        self.name = name
        self.log = log

    async def start(self) -> None:
        self.log.append(f"start {self.name}")

    async def stop(self) -> None:
        self.log.append(f"stop {self.name}")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param("127.0.0.1:6443", ("127.0.0.1", 6443), id="ipv4"),
        pytest.param("[::1]:0", ("::1", 0), id="ipv6"),
        pytest.param(":8443", ("0.0.0.0", 8443), id="any"),
    ],
)
def test_split_host_port(text: str, expected: tuple[str, int]) -> None:
    assert split_host_port(text) == expected


@pytest.mark.parametrize("text", ["6443", "host:port", "127.0.0.1:70000"])
def test_split_host_port_rejects_bad_addresses(text: str) -> None:
    with pytest.raises(ValueError):
        split_host_port(text)


async def test_cluster_serves_kubeconfig_credentials_and_runs_components(
    tmp_path: pathlib.Path,
) -> None:
    log: list[str] = []
    config = ClusterConfig(data_dir=tmp_path, listen="127.0.0.1:0", store="memory")
    cluster = Cluster(config, components=[_Recorder("a", log), _Recorder("b", log)])
    async with cluster:
        assert log == ["start a", "start b"]
        assert cluster.kubeconfig.exists()
        assert f"server: {cluster.url}" in cluster.kubeconfig.read_text()
        tls = ssl.create_default_context(cafile=str(tmp_path / "pki" / "ca.crt"))
        async with httpx.AsyncClient(
            verify=tls, headers={"Authorization": f"Bearer {cluster.token}"}
        ) as c:
            r = await c.get(f"{cluster.url}/api/v1/namespaces/kube-system")
            assert r.status_code == 200
            assert r.json()["metadata"]["name"] == "kube-system"
        local = cluster.local_client()
        listed = await local.list(resources.NAMESPACES)
        assert "default" in {n["metadata"]["name"] for n in listed["items"]}
    assert log == ["start a", "start b", "stop b", "stop a"]


async def test_cluster_start_failure_leaves_nothing_running(tmp_path: pathlib.Path) -> None:
    config = ClusterConfig(data_dir=tmp_path, listen="127.0.0.1:0", store="bogus://x")
    cluster = Cluster(config)
    with pytest.raises(ValueError):
        await cluster.start()
    assert cluster.backend is None
    await cluster.stop()
