"""The composition root: one object that builds and runs a whole kubeling cluster.

``Cluster`` wires the store, the registry and the HTTPS API server (and, as they land, the
controllers, the scheduler, the node agent and DNS) in one event loop. ``kubeling up`` runs
it in the foreground; tests and the walkthrough run it in-process with ``async with``.
Start-up stays cheap on purpose: heavy pieces (the upstream schema, the OpenAPI documents,
certificate generation) are built on first use or only when missing.
"""

from __future__ import annotations

import inspect
import logging
import pathlib
import time
from collections.abc import Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Protocol

log = logging.getLogger(__name__)


@dataclass(frozen=True, kw_only=True)
class ClusterConfig:
    data_dir: pathlib.Path
    listen: str = "127.0.0.1:6443"
    """``HOST:PORT``; port 0 picks a free port."""
    store: str = "sqlite"
    """``sqlite``, ``sqlite:///abs/path.db``, ``memory`` or ``etcd://HOST:PORT,...``."""
    dns_listen: str = ""
    runtime: str = "auto"
    controllers: tuple[str, ...] | None = None
    """Controllers to run by name (``controllers.manager.BUILDERS``); None runs them all,
    ``()`` none (an API server alone, as envtest gives)."""
    agent: bool = True
    """Run the node agent (``agent.kubelet``) beside the controllers (never with ``()``)."""
    default_storage_class: bool = True
    """Create the ``local-path`` default StorageClass on the first start, when the
    local-path provisioner runs."""


def split_host_port(text: str) -> tuple[str, int]:
    """``127.0.0.1:6443``, ``[::1]:6443``, ``:6443`` (all of IPv4) → host and port."""
    host, sep, port = text.rpartition(":")
    if not sep:
        raise ValueError(f"expected HOST:PORT, got {text!r}")
    host = host.strip("[]") or "0.0.0.0"
    try:
        number = int(port)
    except ValueError:
        raise ValueError(f"invalid port in {text!r}") from None
    if not 0 <= number <= 65535:
        raise ValueError(f"invalid port in {text!r}")
    return host, number


class Component(Protocol):
    """Anything the cluster runs beside the API server (a controller manager, the node
    agent, DNS): started once the API serves, stopped before it stops, in reverse order."""

    async def start(self) -> None: ...

    async def stop(self) -> None: ...


class Cluster:
    """A running kubeling: ``await start()``, then ``url`` and ``kubeconfig`` are valid.

    ``components`` are started in order after the API server is serving (they may use
    ``local_client()`` or the kubeconfig), and stopped in reverse order first on ``stop()``.
    """

    def __init__(self, config: ClusterConfig, *, components: Sequence[Component] = ()) -> None:
        self.config = config
        self.components: list[Component] = list(components)
        self._started_components: list[Component] = []
        self.data_dir = config.data_dir
        self.kubeconfig = config.data_dir / "kubeconfig"
        self.url = ""
        self.token = ""
        self.backend: Any = None
        self.registry: Any = None
        self.app: Any = None
        self._server: Any = None
        self.started_at = 0.0
        self._pki: Any = None
        self._agent_token = ""
        self.ready = False
        """True once every component runs: ``/readyz`` answers 500 until then."""

    async def start(self) -> None:
        from kubeling import storage
        from kubeling.apiserver import auth
        from kubeling.apiserver.app import App
        from kubeling.apiserver.server import HttpsServer, bind
        from kubeling.registry.context import ADMIN
        from kubeling.registry.registry import Registry

        begin = time.monotonic()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        host, port = split_host_port(self.config.listen)
        sock = bind(host, port)
        try:
            # The store first: it refuses a data directory another kubeling is using, before
            # anything in it (certificates, kubeconfig) is touched.
            self.backend = storage.open_backend(self.config.store, data_dir=self.data_dir)
            await self.backend.start()
            pki = auth.ensure_pki(self.data_dir, hosts=[host])
            self.token = pki.read_token()
            # Secrets at rest (docs/secrets-at-rest.md): the registry writes through an
            # AES-256-GCM layer keyed by DATA/pki/encryption.key, which first re-encrypts
            # values left in plaintext or under a retired key.
            from kubeling.registry import encryption

            keyring = encryption.KeyRing.ensure(self.data_dir)
            encrypted = encryption.EncryptingBackend(self.backend, keyring)
            await encrypted.rewrite_stale()
            self.registry = await _maybe_await(Registry.open(backend=encrypted))
            await _maybe_await(self.registry.bootstrap())
            self.registry.start_event_expiry()  # upstream --event-ttl: Events live one hour
            port = sock.getsockname()[1]
            self.url = auth.server_url(host, port)
            self.app = App(
                registry=self.registry,
                authenticators=[
                    auth.TokenAuthenticator({self.token: ADMIN}),
                    auth.cert_authenticator,
                ],
                server_address=self.url.removeprefix("https://"),
                ready=lambda: self.ready,
            )
            # Node agent (#5): service-account tokens (TokenRequest + their authenticator)
            # and the proxy for pods/log and pods/exec to the agent's loopback endpoint.
            import secrets

            from kubeling.apiserver import proxy, satokens

            sa_tokens = satokens.ServiceAccountTokens(pki.dir)
            self.registry.register_subresource("token", sa_tokens.subresource_class())
            self.app.authenticators.append(sa_tokens)
            self._pki = pki
            self._agent_token = secrets.token_urlsafe(32)
            proxy.install(self.app, self.registry, agent_token=self._agent_token)
            self._server = HttpsServer(self.app, sock, pki=pki)
            auth.write_kubeconfig(self.kubeconfig, pki, server=self.url)
            await self._server.start()
            for component in [*self._builtin_components(), *self.components]:
                await component.start()
                self._started_components.append(component)
            await self._ensure_default_storage_class()
            self.ready = True
        except BaseException:
            await self.stop()
            sock.close()
            raise
        self.started_at = time.monotonic()
        log.info("API server serving at %s after %.3fs.", self.url, self.started_at - begin)

    def _builtin_components(self) -> list[Component]:
        if self.config.controllers == ():
            return []
        from kubeling.client.informer import SharedInformerFactory
        from kubeling.controllers.manager import ControllerContext, ControllerManager

        node_name = ""
        if self.config.agent:
            from kubeling.agent.kubelet import default_node_name

            # The local-path provisioner pins the volumes it creates to this node, so the
            # scheduler keeps their pods here; it needs the name the agent registers.
            node_name = default_node_name()
        client = self.local_client(user_agent="kubeling-controller-manager")
        ctx = ControllerContext(
            client=client,
            informers=SharedInformerFactory(client),
            data_dir=self.data_dir,
            node_name=node_name,
        )
        components: list[Component] = [ControllerManager(ctx, enabled=self.config.controllers)]
        if self.config.dns_listen:
            from kubeling.dns.server import DnsServer

            # The host's listener; pods get their own on the bridge (``_pod_dns``).
            components.append(
                DnsServer(
                    self.local_client(user_agent="kubeling-dns"),
                    listen=[split_host_port(self.config.dns_listen)],
                )
            )
        if self.config.agent:
            from kubeling.agent.kubelet import Kubelet

            components.append(
                Kubelet(
                    self.local_client(user_agent="kubelet", field_manager="kubelet"),
                    node_name=node_name,
                    data_dir=self.data_dir / "agent",
                    runtime=self.config.runtime,
                    server_token=self._agent_token,
                    ca_cert=self._pki.ca_cert.read_bytes() if self._pki else b"",
                    bridge_service=self._pod_dns,
                )
            )
        return components

    def _pod_dns(self, network: Any) -> Component:
        """Cluster DNS for pods, on ``<bridge address>:53`` only (never a wildcard address):
        the agent starts it once its bridge exists, with the runc runtime only (simulated
        pods resolve nothing), and stops it before removing the bridge. A second server
        beside ``--dns-listen``'s: its own watches, so neither depends on the other.

        TODO(#4): one server could serve both listeners from one set of watches; today the
        Services, EndpointSlices and Pods are watched twice when both run.
        """
        from kubeling.dns.server import DnsServer

        return DnsServer(
            self.local_client(user_agent="kubeling-dns"), listen=[(network.dns_ip, 53)]
        )

    async def _ensure_default_storage_class(self) -> None:
        enabled = self.config.controllers
        if enabled is not None and "local-path-provisioner" not in enabled:
            return
        from kubeling.controllers.provisioner import ensure_default_storage_class

        await ensure_default_storage_class(
            self.local_client(user_agent="kubeling-local-path-provisioner"),
            enabled=self.config.default_storage_class,
            data_dir=self.data_dir,
        )

    def local_client(self, *, user_agent: str = "kubeling", field_manager: str = "") -> Any:
        """An in-process API client over this cluster's registry (``client.local``)."""
        from kubeling.client.local import LocalClient

        if self.registry is None:
            raise RuntimeError("the cluster is not started")
        return LocalClient(self.registry, user_agent=user_agent, field_manager=field_manager)

    async def stop(self) -> None:
        """Stop components (reverse order), the API server (open watches end), then flush and
        close the store. Safe to call twice, and after a failed start."""
        self.ready = False
        while self._started_components:
            component = self._started_components.pop()
            try:
                await component.stop()
            except Exception:
                log.exception("Stopping %r failed.", component)
        if self._server is not None:
            await self._server.stop()
            self._server = None
        await self._close_store()
        log.info("kubeling stopped.")

    async def _close_store(self) -> None:
        if self.registry is not None:
            close = getattr(self.registry, "close", None)
            if close is not None:
                await _maybe_await(close())
            self.registry = None
        if self.backend is not None:
            await self.backend.close()
            self.backend = None

    async def __aenter__(self) -> Cluster:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()


async def _maybe_await(value: Any) -> Any:
    if inspect.isawaitable(value):
        return await value
    return value
