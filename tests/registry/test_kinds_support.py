"""Helpers for the kind tests: run a strategy's create/update steps like the store does."""

from __future__ import annotations

import copy
import os
from typing import Any

import pytest
import yaml

from kubeling.machinery.types import Obj, ResourceInfo
from kubeling.registry.catalog import strategies
from tests.shared import tutorial as tutorial_path


def create(info: ResourceInfo, obj: Obj) -> tuple[Obj, list[str]]:
    """default + prepare_for_create + validate on a copy; the errors as kubectl prints them."""
    s = strategies()[info]
    out = copy.deepcopy(obj)
    s.default(out)
    s.prepare_for_create(out)
    return out, [str(e) for e in s.validate(out)]


def update(info: ResourceInfo, new: Obj, old: Obj) -> tuple[Obj, list[str]]:
    s = strategies()[info]
    out = copy.deepcopy(new)
    s.default(out)
    s.prepare_for_update(out, old)
    return out, [str(e) for e in s.validate_update(out, old)]


def tutorial(name: str) -> list[dict[str, Any]]:
    path = tutorial_path(name)
    if not path.exists():
        pytest.skip(f"tutorial manifest {path} is not on this machine")
    text = path.read_text().replace("${WORK}", os.environ.get("TMPDIR", "/tmp") + "/work")
    return [d for d in yaml.safe_load_all(text) if d]
