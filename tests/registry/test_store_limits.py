"""How big an object the store takes: etcd's 1.5 MiB, which every upstream object lives under."""

from __future__ import annotations

import base64

import pytest

from kubeling.machinery import resources as r
from kubeling.machinery.errors import NotFound, RequestEntityTooLarge
from kubeling.registry.registry import Registry
from kubeling.registry.storebase import MAX_OBJECT_BYTES
from tests.registry.conftest import ctx


def deployment(name: str, env_bytes: int) -> dict[str, object]:
    chunk = 20_000
    env = [{"name": f"V{i}", "value": "x" * chunk} for i in range(env_bytes // chunk)]
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name},
        "spec": {
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {"containers": [{"name": "c", "image": "busybox", "env": env}]},
            },
        },
    }


async def test_an_object_over_the_limit_is_refused_and_nothing_is_stored(
    registry: Registry,
) -> None:
    store = registry.store(r.DEPLOYMENTS)
    with pytest.raises(RequestEntityTooLarge) as refused:
        await store.create(deployment("huge", 2_000_000), namespace="default", ctx=ctx())
    assert refused.value.code == 413
    assert str(refused.value).startswith("etcdserver: request is too large (Deployment 'huge'")
    assert f"the limit is {MAX_OBJECT_BYTES})" in str(refused.value)
    with pytest.raises(NotFound):
        await store.get(namespace="default", name="huge", ctx=ctx())


async def test_an_update_over_the_limit_keeps_the_stored_object(registry: Registry) -> None:
    store = registry.store(r.DEPLOYMENTS)
    created = await store.create(deployment("grows", 100_000), namespace="default", ctx=ctx())
    bigger = deployment("grows", 2_000_000)
    bigger["metadata"] = dict(created["metadata"])
    with pytest.raises(RequestEntityTooLarge):
        await store.update(bigger, namespace="default", name="grows", ctx=ctx())
    current = await store.get(namespace="default", name="grows", ctx=ctx())
    assert current["metadata"]["resourceVersion"] == created["metadata"]["resourceVersion"]


async def test_configmap_and_secret_at_their_own_1mib_limit_fit(registry: Registry) -> None:
    # Binary data is the worst case: base64 makes 1 MiB take 1.4 MB of JSON.
    raw = base64.b64encode(bytes(range(256)) * 4096).decode()
    await registry.store(r.CONFIGMAPS).create(
        {"metadata": {"name": "full"}, "binaryData": {"blob": raw}},
        namespace="default",
        ctx=ctx(),
    )
    await registry.store(r.SECRETS).create(
        {"metadata": {"name": "full"}, "data": {"blob": raw}}, namespace="default", ctx=ctx()
    )


async def test_binary_data_counts_as_raw_bytes_as_in_etcd(registry: Registry) -> None:
    # 1 MiB of binary data plus a 200 kB annotation: 1.25 MB in upstream's protobuf, 1.6 MB
    # as JSON with base64. Upstream takes it, so must kubeling.
    raw = base64.b64encode(bytes(range(256)) * 4096).decode()
    note = {"note": "n" * 200_000}
    for resource, field in ((r.CONFIGMAPS, "binaryData"), (r.SECRETS, "data")):
        await registry.store(resource).create(
            {"metadata": {"name": "bin", "annotations": note}, field: {"blob": raw}},
            namespace="default",
            ctx=ctx(),
        )
