"""The service account controller: every active namespace has a ``default`` ServiceAccount.

Upstream's ``serviceaccounts-controller`` ensures a list of accounts (just ``default``) in
each namespace: on a namespace added or changed, and on one of those accounts deleted, it
creates what is missing. Namespaces that are not ``Active`` are skipped (a terminating
namespace refuses creations anyway). Tokens are not this controller's business: the API
server issues bound tokens through ``serviceaccounts/<name>/token``.
"""

from __future__ import annotations

import logging
from typing import Any

from kubeling.client.controller import Controller
from kubeling.client.informer import Informer
from kubeling.client.interface import Client
from kubeling.machinery import objects
from kubeling.machinery.errors import AlreadyExists, Forbidden, NotFound
from kubeling.machinery.resources import NAMESPACES, SERVICEACCOUNTS
from kubeling.machinery.types import Obj

log = logging.getLogger(__name__)

ENSURED: tuple[str, ...] = ("default",)


class ServiceAccountController(Controller):
    name = "serviceaccount"

    def __init__(self, *, client: Client, namespaces: Informer, serviceaccounts: Informer) -> None:
        super().__init__(workers=1)
        self.client = client
        self.namespaces = namespaces
        self.serviceaccounts = serviceaccounts
        self.watch(namespaces)
        serviceaccounts.add_handler(on_delete=self._account_deleted)
        self.wait_for(serviceaccounts)

    def _account_deleted(self, sa: Obj) -> None:
        if objects.name(sa) in ENSURED and objects.namespace(sa):
            self.enqueue(objects.namespace(sa))

    async def reconcile(self, key: str) -> None:
        ns = self.namespaces.get(key)
        if ns is None or (ns.get("status") or {}).get("phase", "Active") != "Active":
            return
        if objects.deletion_timestamp(ns):
            return
        for name in ENSURED:
            if self.serviceaccounts.get_by_name(name=name, namespace=key) is not None:
                continue
            body: Obj = {
                "apiVersion": "v1",
                "kind": "ServiceAccount",
                "metadata": {"name": name, "namespace": key},
            }
            try:
                await self.client.create(SERVICEACCOUNTS, body, namespace=key)
            except AlreadyExists:
                continue
            except (Forbidden, NotFound):
                # The namespace is terminating or gone: nothing to ensure any more.
                return
            log.info("Created service account %s/%s.", key, name)


def build(ctx: Any) -> ServiceAccountController:
    return ServiceAccountController(
        client=ctx.client,
        namespaces=ctx.informers.informer(NAMESPACES),
        serviceaccounts=ctx.informers.informer(SERVICEACCOUNTS),
    )
