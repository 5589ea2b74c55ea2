"""Per-kind strategies: defaults (SetDefaults_* of v1.32), validation and update rules.

Modules group kinds the way upstream's API groups do: ``pods`` (Pod and the pod-template
rules every workload shares), ``core`` (the other core/v1 kinds), ``storage`` (PV, PVC,
StorageClass), ``apps`` (Deployment, ReplicaSet, StatefulSet, ControllerRevision) and ``misc``
(discovery, coordination and events). ``registry.catalog`` maps resources to them.
"""
