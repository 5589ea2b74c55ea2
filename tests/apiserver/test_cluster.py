"""``Cluster`` in-process: the composition root that ``kubeling up`` and tests share."""

from __future__ import annotations

import pathlib
import ssl

import httpx
import orjson
import pytest

from kubeling.cluster import Cluster, ClusterConfig, split_host_port
from kubeling.machinery import resources


class _Recorder:
    def __init__(self, name: str, log: list[str], cluster: list[Cluster] | None = None) -> None:
        self.name = name
        self.log = log
        self.cluster = cluster

    async def start(self) -> None:
        self.log.append(f"start {self.name}")
        if self.cluster:
            # Components start while the API already serves but is not ready yet.
            c = self.cluster[0]
            tls = ssl.create_default_context(cafile=str(c.data_dir / "pki" / "ca.crt"))
            async with httpx.AsyncClient(verify=tls) as client:
                r = await client.get(f"{c.url}/readyz")
                self.log.append(f"readyz {r.status_code}")

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
    holder: list[Cluster] = []
    cluster = Cluster(config, components=[_Recorder("a", log, holder), _Recorder("b", log)])
    holder.append(cluster)
    async with cluster:
        assert log == ["start a", "readyz 500", "start b"]
        assert cluster.kubeconfig.exists()
        assert f"server: {cluster.url}" in cluster.kubeconfig.read_text()
        tls = ssl.create_default_context(cafile=str(tmp_path / "pki" / "ca.crt"))
        async with httpx.AsyncClient(
            verify=tls, headers={"Authorization": f"Bearer {cluster.token}"}
        ) as c:
            assert (await c.get(f"{cluster.url}/readyz")).text == "ok"
            r = await c.get(f"{cluster.url}/api/v1/namespaces/kube-system")
            assert r.status_code == 200
            assert r.json()["metadata"]["name"] == "kube-system"
        local = cluster.local_client()
        listed = await local.list(resources.NAMESPACES)
        assert "default" in {n["metadata"]["name"] for n in listed["items"]}
    assert log == ["start a", "readyz 500", "start b", "stop b", "stop a"]


async def test_cluster_start_failure_leaves_nothing_running(tmp_path: pathlib.Path) -> None:
    config = ClusterConfig(data_dir=tmp_path, listen="127.0.0.1:0", store="bogus://x")
    cluster = Cluster(config)
    with pytest.raises(ValueError):
        await cluster.start()
    assert cluster.backend is None
    await cluster.stop()


async def test_watch_on_object_path_streams_only_that_object(tmp_path: pathlib.Path) -> None:
    config = ClusterConfig(data_dir=tmp_path, listen="127.0.0.1:0", store="memory", controllers=())
    async with Cluster(config) as cluster:
        local = cluster.local_client()
        for name in ("a", "b"):
            await local.create(
                resources.CONFIGMAPS, {"metadata": {"name": name, "namespace": "default"}}
            )
        tls = ssl.create_default_context(cafile=str(tmp_path / "pki" / "ca.crt"))
        async with (
            httpx.AsyncClient(
                verify=tls, headers={"Authorization": f"Bearer {cluster.token}"}
            ) as c,
            c.stream(
                "GET", f"{cluster.url}/api/v1/namespaces/default/configmaps/b?watch=true"
            ) as r,
        ):
            lines = r.aiter_lines()
            first = orjson.loads(await anext(lines))
            assert (first["type"], first["object"]["metadata"]["name"]) == ("ADDED", "b")
            await local.patch(
                resources.CONFIGMAPS,
                name="a",
                namespace="default",
                patch={"data": {"x": "1"}},
                patch_type="merge",
            )
            await local.patch(
                resources.CONFIGMAPS,
                name="b",
                namespace="default",
                patch={"data": {"x": "2"}},
                patch_type="merge",
            )
            second = orjson.loads(await anext(lines))
            assert second["type"] == "MODIFIED"
            assert second["object"]["metadata"]["name"] == "b"
            assert second["object"]["data"] == {"x": "2"}


async def test_first_start_creates_the_default_storage_class_once(tmp_path: pathlib.Path) -> None:
    config = ClusterConfig(data_dir=tmp_path, listen="127.0.0.1:0", store="sqlite")
    async with Cluster(config) as cluster:
        local = cluster.local_client()
        classes = (await local.list(resources.STORAGECLASSES))["items"]
        annotations = [c["metadata"].get("annotations", {}) for c in classes]
        assert [a.get("storageclass.kubernetes.io/is-default-class") for a in annotations] == [
            "true"
        ]
        await local.delete(resources.STORAGECLASSES, name=classes[0]["metadata"]["name"])
    # A class the user deleted stays deleted across restarts.
    async with Cluster(config) as cluster:
        local = cluster.local_client()
        assert (await local.list(resources.STORAGECLASSES))["items"] == []
