"""The atomic writer: a volume directory whose whole content changes in one rename.

Mirrors upstream's ``..data`` scheme (pkg/volume/util/atomic_writer.go): the files live in
a hidden timestamped directory ``..<YYYY_MM_DD_HH_MM_SS>.<random>``; ``..data`` is a
symlink to it; every top-level user path is a symlink through ``..data``. An update writes
a complete new directory, points ``..data_tmp`` at it and renames that over ``..data``, so
a reader (or an inotify watcher on ``..data``) sees either the old or the new version, never
a mix. Paths starting with ``..`` are reserved for the writer.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

DATA_DIR = "..data"
DATA_TMP = "..data_tmp"


@dataclass(frozen=True)
class FileProjection:
    """One file of a payload: its bytes and its permission bits."""

    data: bytes
    mode: int = 0o644


Payload = dict[str, FileProjection]


def validate_path(path: str) -> str | None:
    """Why ``path`` may not be written (upstream's rules), or None when it may."""
    if not path:
        return "invalid path: must not be empty"
    if len(path) > 4096:
        return f"invalid path: must be less than or equal to 4096 characters: {path}"
    if os.path.isabs(path):
        return f"invalid path: must be relative path: {path}"
    parts = path.split("/")
    if any(len(p) > 255 for p in parts):
        return f"invalid path: each path segment must be less than 256 characters: {path}"
    if ".." in parts:
        return f"invalid path: must not contain '..': {path}"
    if path.startswith(".."):
        return f"invalid path: must not start with '..': {path}"
    return None


class AtomicWriter:
    """Writes payloads into ``target`` with the ``..data`` symlink swap."""

    def __init__(self, target: Path) -> None:
        self.target = target

    def current_dir(self) -> Path | None:
        link = self.target / DATA_DIR
        try:
            return self.target / os.readlink(link)
        except OSError:
            return None

    def read(self) -> Payload:
        """What is on disk now (used to skip identical rewrites)."""
        current = self.current_dir()
        out: Payload = {}
        if current is None:
            return out
        for dirpath, _dirs, files in os.walk(current):
            for name in files:
                full = Path(dirpath) / name
                rel = str(full.relative_to(current))
                out[rel] = FileProjection(full.read_bytes(), full.stat().st_mode & 0o7777)
        return out

    def write(self, payload: Payload) -> bool:
        """Make ``target`` hold exactly ``payload``; False when it already did."""
        for path in payload:
            problem = validate_path(path)
            if problem:
                raise ValueError(problem)
        self.target.mkdir(parents=True, exist_ok=True)
        old_dir = self.current_dir()
        if old_dir is not None and self.read() == payload:
            return False
        stamp = time.strftime("%Y_%m_%d_%H_%M_%S", time.gmtime())
        new_dir = Path(tempfile.mkdtemp(prefix=f"..{stamp}.", dir=self.target))
        new_dir.chmod(0o755)
        for rel, proj in payload.items():
            dest = new_dir / rel
            dest.parent.mkdir(parents=True, exist_ok=True)
            with open(dest, "wb") as f:
                f.write(proj.data)
            dest.chmod(proj.mode)
        tmp_link = self.target / DATA_TMP
        if tmp_link.is_symlink():
            tmp_link.unlink()
        os.symlink(new_dir.name, tmp_link)
        os.rename(tmp_link, self.target / DATA_DIR)
        # Visible names are added after the swap and removed after it, as upstream does:
        # a new name never points at a missing ``..data`` entry.
        wanted = {rel.split("/", 1)[0] for rel in payload}
        for name in wanted:
            link = self.target / name
            if not link.is_symlink() and not link.exists():
                os.symlink(f"{DATA_DIR}/{name}", link)
        for entry in os.listdir(self.target):
            if entry.startswith("..") or entry in wanted:
                continue
            link = self.target / entry
            if link.is_symlink():
                link.unlink()
        if old_dir is not None and old_dir != new_dir:
            shutil.rmtree(old_dir, ignore_errors=True)
        return True
