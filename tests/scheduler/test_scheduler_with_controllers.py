"""The scheduler beside the real PV binder and local-path provisioner (as ``kubeling up``
runs them): field report B12 end to end, both variants."""

from __future__ import annotations

import pathlib
from collections.abc import AsyncIterator

import pytest

from kubeling.client.informer import SharedInformerFactory
from kubeling.controllers.manager import ControllerContext, ControllerManager
from kubeling.machinery.resources import PERSISTENTVOLUMES
from tests.scheduler.conftest import Cluster, make_class, make_node, make_pod, make_pvc, wait_until

SELECTED_NODE = "volume.kubernetes.io/selected-node"


@pytest.fixture
async def controllers(cluster: Cluster, tmp_path: pathlib.Path) -> AsyncIterator[None]:
    informers = SharedInformerFactory(cluster.client)
    ctx = ControllerContext(client=cluster.client, informers=informers, data_dir=tmp_path)
    manager = ControllerManager(
        ctx, enabled=["persistentvolume-binder", "local-path-provisioner", "scheduler"]
    )
    await manager.start()
    try:
        yield
    finally:
        await manager.stop()


async def test_b12_node_selector_provisions_on_the_chosen_node_and_binds(
    cluster: Cluster, controllers: None
) -> None:
    await cluster.node(make_node("node-a"))
    await cluster.node(make_node("node-b"))
    await cluster.storage_class(
        make_class("lp", provisioner="kubeling.io/local-path", binding_mode="WaitForFirstConsumer")
    )
    await cluster.claim(make_pvc("data", "10Mi", storage_class="lp"))
    await cluster.pod(make_pod("app", "data", node_selector={"kubernetes.io/hostname": "node-b"}))
    assert await cluster.wait_scheduled("app") == "node-b"
    claim = await cluster.get_claim("data")
    assert claim["metadata"]["annotations"][SELECTED_NODE] == "node-b"
    assert claim["status"]["phase"] == "Bound"
    pv = await cluster.client.get(PERSISTENTVOLUMES, name=claim["spec"]["volumeName"])
    terms = pv["spec"]["nodeAffinity"]["required"]["nodeSelectorTerms"]
    assert terms[0]["matchExpressions"][0]["values"] == ["node-b"]


async def test_b12_node_name_leaves_the_claim_waiting_for_its_first_consumer(
    cluster: Cluster, controllers: None
) -> None:
    await cluster.node(make_node("node-a"))
    await cluster.storage_class(
        make_class("lp", provisioner="kubeling.io/local-path", binding_mode="WaitForFirstConsumer")
    )
    await cluster.claim(make_pvc("data", "10Mi", storage_class="lp"))
    await cluster.pod(make_pod("app", "data", node_name="node-a"))

    async def waiting() -> bool:
        return bool(
            await cluster.messages("data", "WaitForFirstConsumer", kind="PersistentVolumeClaim")
        )

    await wait_until(waiting, what="the binder's WaitForFirstConsumer event")
    # a pod the scheduler does handle goes through, so it has seen (and skipped) "app"
    await cluster.pod(make_pod("sentinel"))
    assert await cluster.wait_scheduled("sentinel") == "node-a"
    claim = await cluster.get_claim("data")
    assert SELECTED_NODE not in (claim["metadata"].get("annotations") or {})
    assert (claim.get("status") or {}).get("phase") == "Pending"
