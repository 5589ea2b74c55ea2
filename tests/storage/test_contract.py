"""Runs the shared storage contract (``contract.py``) against every backend in conftest."""

from __future__ import annotations

from tests.storage.contract import BackendContract


class TestBackendContract(BackendContract):
    pass
