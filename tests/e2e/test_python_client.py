"""The official ``kubernetes`` Python client against a real ``kubeling up``."""

from __future__ import annotations

import threading

import pytest
from kubernetes import client, config, dynamic, watch

from tests.e2e.conftest import Kubeling

pytestmark = pytest.mark.e2e


def test_python_client_lists_creates_reads_and_watches(shared_kubeling: Kubeling) -> None:
    api_client = config.new_client_from_config(config_file=str(shared_kubeling.kubeconfig))
    try:
        core = client.CoreV1Api(api_client)
        names = {ns.metadata.name for ns in core.list_namespace().items}
        assert {"default", "kube-system"} <= names

        core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name="pyclient")))
        listed = core.list_namespaced_config_map("pyclient")
        start_rv = listed.metadata.resource_version

        seen: list[tuple[str, str, dict[str, str] | None]] = []
        both_seen = threading.Event()

        def consume() -> None:
            w = watch.Watch()
            for event in w.stream(
                core.list_namespaced_config_map,
                "pyclient",
                resource_version=start_rv,
                timeout_seconds=30,
            ):
                seen.append((event["type"], event["object"].metadata.name, event["object"].data))
                if len(seen) >= 2:
                    both_seen.set()
                    w.stop()
            both_seen.set()

        watcher = threading.Thread(target=consume)
        watcher.start()

        body = client.V1ConfigMap(
            metadata=client.V1ObjectMeta(name="from-python", labels={"made-by": "python"}),
            data={"greeting": "hello"},
        )
        created = core.create_namespaced_config_map("pyclient", body)
        assert created.metadata.uid
        read = core.read_namespaced_config_map("from-python", "pyclient")
        assert read.data == {"greeting": "hello"}
        assert read.metadata.labels == {"made-by": "python"}
        core.patch_namespaced_config_map("from-python", "pyclient", {"data": {"greeting": "hi"}})

        assert both_seen.wait(30), seen
        watcher.join(30)
        assert seen == [
            ("ADDED", "from-python", {"greeting": "hello"}),
            ("MODIFIED", "from-python", {"greeting": "hi"}),
        ]
    finally:
        api_client.close()


def test_dynamic_client_discovers_and_server_side_applies(shared_kubeling: Kubeling) -> None:
    api_client = config.new_client_from_config(config_file=str(shared_kubeling.kubeconfig))
    try:
        dyn = dynamic.DynamicClient(api_client)
        sts = dyn.resources.get(api_version="apps/v1", kind="StatefulSet")
        assert (sts.name, sts.namespaced, sts.short_names) == ("statefulsets", True, ["sts"])
        cms = dyn.resources.get(api_version="v1", kind="ConfigMap")
        dyn.resources.get(api_version="v1", kind="Namespace").create(
            body={"metadata": {"name": "dynamic"}}
        )
        applied = cms.server_side_apply(
            body={
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "metadata": {"name": "applied"},
                "data": {"x": "y"},
            },
            namespace="dynamic",
            field_manager="pytest",
        )
        assert applied.to_dict()["data"] == {"x": "y"}
        listed = cms.get(namespace="dynamic")
        assert [i.metadata.name for i in listed.items] == ["applied"]
        managers = [
            m.manager for m in cms.get(name="applied", namespace="dynamic").metadata.managedFields
        ]
        assert managers == ["pytest"]
    finally:
        api_client.close()
