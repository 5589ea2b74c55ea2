"""The storage control plane's controllers: the PersistentVolume binder and protection.

``binder`` is upstream's PV controller (binding, reclaim, provisioning hand-off), matching
claims to volumes through ``index`` and reclaiming through the plugins in ``reclaim``;
``protection`` lifts the ``pvc-protection``/``pv-protection`` finalizers. They are split as
upstream's ``pkg/controller/volume`` is, so each file reads beside its upstream source.
"""
