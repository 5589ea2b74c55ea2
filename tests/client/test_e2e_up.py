"""The client library against a real ``kubeling up`` subprocess, through its kubeconfig."""

from __future__ import annotations

import asyncio
import pathlib
from collections.abc import Iterator

import pytest

from kubeling.client.events import EventRecorder
from kubeling.client.http import HttpClient
from kubeling.client.informer import SharedInformerFactory
from kubeling.machinery.errors import NotFound
from kubeling.machinery.resources import CONFIGMAPS, EVENTS, NAMESPACES
from tests.client.fakes import eventually
from tests.e2e.conftest import Kubeling, start_kubeling, stop_kubeling

pytestmark = pytest.mark.e2e


@pytest.fixture
def up(tmp_path: pathlib.Path) -> Iterator[Kubeling]:
    cache = tmp_path / "kube-cache"
    cache.mkdir()
    k = start_kubeling(tmp_path / "data", cache)
    try:
        yield k
    finally:
        code = stop_kubeling(k)
        assert code == 0, f"kubeling up exited {code}:\n" + "\n".join(k.output)


async def test_client_library_against_kubeling_up(up: Kubeling) -> None:
    client = HttpClient.from_kubeconfig(up.kubeconfig)
    factory = SharedInformerFactory(client)
    try:
        namespaces = await client.list(NAMESPACES)
        names = {n["metadata"]["name"] for n in namespaces["items"]}
        assert {"default", "kube-system"} <= names

        informer = factory.informer(CONFIGMAPS, namespace="default")
        factory.start()
        async with asyncio.timeout(20):
            await factory.wait_for_sync()
        await client.create(
            CONFIGMAPS,
            {"metadata": {"name": "e2e", "namespace": "default"}, "data": {"a": "1"}},
        )
        await eventually(lambda: informer.get("default/e2e") is not None, within=20)

        recorder = EventRecorder(client, component="client-e2e")
        cm = await client.get(CONFIGMAPS, name="e2e", namespace="default")
        recorder.event(cm, "Normal", "Seen", "seen by the e2e test")
        recorder.event(cm, "Normal", "Seen", "seen by the e2e test")
        await recorder.flush()
        await recorder.close()
        events = await client.list(
            EVENTS, namespace="default", field_selector="involvedObject.name=e2e"
        )
        assert [(e["reason"], e["count"]) for e in events["items"]] == [("Seen", 2)]

        await client.delete(CONFIGMAPS, name="e2e", namespace="default")
        await eventually(lambda: informer.get("default/e2e") is None, within=20)
        with pytest.raises(NotFound):
            await client.get(CONFIGMAPS, name="e2e", namespace="default")
    finally:
        await factory.stop()
        await client.close()
