"""The agent's API half: one worker per pod bound to this node, its status, its probes.

- ``worker``: ``PodWorker`` drives one pod through volumes, sandbox, init containers,
  containers, restarts with back-off, probes and graceful deletion, and writes what it saw
  to ``pods/status`` and as Events, in upstream's words.
- ``status``: the pure functions that turn container records into ``PodStatus`` (phase,
  conditions, containerStatuses), so they are testable without a runtime.
- ``prober``: exec, httpGet and tcpSocket probes with upstream's thresholds.

``kubeling.agent.kubelet.Kubelet`` owns the workers, the informers that feed them, node
registration and the Lease.
"""
