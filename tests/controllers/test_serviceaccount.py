"""ServiceAccount controller: ``default`` in every active namespace, recreated if deleted."""

from __future__ import annotations

from kubeling.controllers import serviceaccount
from kubeling.machinery.errors import NotFound
from kubeling.machinery.resources import NAMESPACES, SERVICEACCOUNTS
from tests.controllers.test_replicaset import Env, env

__all__ = ["env"]


async def has_default(env: Env, namespace: str) -> bool:
    try:
        await env.client.get(SERVICEACCOUNTS, name="default", namespace=namespace)
    except NotFound:
        return False
    return True


async def test_serviceaccount_default_in_bootstrap_and_new_namespaces(env: Env) -> None:
    env.start(serviceaccount.build)
    for ns in ("default", "kube-system", "kube-public"):
        await env.eventually(lambda ns=ns: has_default(env, ns))
    await env.client.create(
        NAMESPACES, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "team"}}
    )
    await env.eventually(lambda: has_default(env, "team"))


async def test_serviceaccount_default_is_recreated_after_delete(env: Env) -> None:
    env.start(serviceaccount.build)
    await env.eventually(lambda: has_default(env, "default"))
    before = await env.client.get(SERVICEACCOUNTS, name="default", namespace="default")
    await env.client.delete(SERVICEACCOUNTS, name="default", namespace="default")

    async def recreated() -> bool:
        try:
            sa = await env.client.get(SERVICEACCOUNTS, name="default", namespace="default")
        except NotFound:
            return False
        return bool(sa["metadata"]["uid"] != before["metadata"]["uid"])

    await env.eventually(recreated)


async def test_serviceaccount_not_created_in_terminating_namespace(env: Env) -> None:
    await env.client.create(
        NAMESPACES,
        {
            "apiVersion": "v1",
            "kind": "Namespace",
            "metadata": {"name": "dying"},
        },
    )
    await env.client.delete(NAMESPACES, name="dying")
    env.start(serviceaccount.build)
    # One worker takes namespaces in the order it listed them (by name): once the last
    # one has its account, "dying" was handled too.
    for ns in ("default", "kube-node-lease", "kube-public", "kube-system"):
        await env.eventually(lambda ns=ns: has_default(env, ns))
    assert not await has_default(env, "dying")
