"""Where the project's shared yardsticks live: ``../shared`` beside the checkout.

The tutorial manifests and field reports sit outside the repository (``shared/`` beside it,
as CI lays them out). Tests that read them use ``tutorial(...)``; where the folder is absent
they skip with the reason instead of failing on a missing file.
"""

from __future__ import annotations

import os
import pathlib

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent


def shared_dir() -> pathlib.Path | None:
    candidates = [os.environ.get("KUBELING_SHARED", ""), str(ROOT.parent / "shared")]
    for candidate in candidates:
        if candidate and (pathlib.Path(candidate) / "acceptance" / "tutorial").is_dir():
            return pathlib.Path(candidate)
    return None


def tutorial(name: str = "") -> pathlib.Path:
    """``shared/acceptance/tutorial[/name]``, or a skip when the folder is not there."""
    base = shared_dir()
    if base is None:
        pytest.skip("shared/acceptance/tutorial is not beside the checkout (set KUBELING_SHARED)")
    path = base / "acceptance" / "tutorial"
    return path / name if name else path


def _tutorial_dir() -> pathlib.Path:
    base = shared_dir()
    return (base or ROOT.parent / "shared") / "acceptance" / "tutorial"


TUTORIAL_DIR = _tutorial_dir()
"""The tutorial folder (it may not exist; ``tutorial()`` skips when it does not)."""
