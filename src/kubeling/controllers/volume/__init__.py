"""The storage control plane's controllers: the PersistentVolume binder and protection."""
