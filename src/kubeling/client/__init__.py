"""The API client library: what controllers, the scheduler, the node agent and DNS use.

``interface.Client`` is the protocol; ``http.HttpClient`` (HTTPS to any API server, built
from a kubeconfig) and ``local.LocalClient`` (the registry in the same process) implement it
with the same answers and the same ``StatusError``s. On top: ``informer`` (list+watch caches
shared through ``SharedInformerFactory``), ``workqueue`` (client-go's rate-limited queue),
``controller`` (the reconcile runner and ``retry_on_conflict``) and ``events`` (the Event
recorder). Submodules are imported explicitly so that a process that only speaks HTTP never
loads the registry.
"""
