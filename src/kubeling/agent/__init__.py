"""The node agent: volumes, container runtimes, the pod network and pod sandboxes.

This package is the machine-level half of the agent; the API-facing half (pod sync loop,
status, events, node registration, logs/exec endpoints) builds on it:

- ``sandbox``: ``Node`` (data dir, runtime, network, images; ``prepare_volumes``,
  ``recover``) and ``PodSandbox`` (``create``, ``start_container``, ``stop_container``,
  ``exec``, ``update_volumes``, ``teardown``) — the pod-sync loop decides what, these do it.
- ``volumes``: one idempotent preparer per volume source, raising ``VolumeSetupError``
  with upstream's messages; configMap/secret/projected/downwardAPI via the atomic writer.
- ``runtime``: ``select_runtime("auto"|"runc"|"simulated")``; ``RuncRuntime`` (OCI bundles
  on an overlay root, a detached shim per container writing CRI-format logs and the exit
  code) and ``SimulatedRuntime`` (no processes).
- ``network``: ``BridgeNetwork`` (bridge, file-based IPAM, netns + veth per pod, no route
  beyond the bridge), ``render_hosts`` and ``render_resolv_conf``.
- ``images``: ``ImageStore.import_oci_archive`` and ``resolve`` (host root when unknown).
- ``mounts``: mount(2)/umount(2) and mountinfo-driven teardown.
"""
