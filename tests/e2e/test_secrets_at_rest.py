"""Secrets at rest through a real ``kubeling up``: kubectl reads the value, the files don't."""

from __future__ import annotations

import base64
import pathlib
import sqlite3
import stat
import subprocess

import pytest

from tests.e2e.conftest import kubeling_command, start_kubeling, stop_kubeling

pytestmark = pytest.mark.e2e

VALUE = "hunter2"
VALUE_B64 = base64.b64encode(VALUE.encode()).decode()  # aHVudGVyMg==


def store_files(data_dir: pathlib.Path) -> list[pathlib.Path]:
    return [p for p in (data_dir / "state.db", data_dir / "state.db-wal") if p.exists()]


def grep_count(needle: str, files: list[pathlib.Path]) -> list[str]:
    """``grep -a -c NEEDLE FILE...`` as an operator would run it: one count per file."""
    result = subprocess.run(
        ["grep", "-a", "-c", "--", needle, *map(str, files)],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode in (0, 1), result.stderr
    return [line.rsplit(":", 1)[-1] for line in result.stdout.splitlines()]


def test_secret_value_is_not_in_the_store_files_but_kubectl_reads_it(
    kubeling_dirs: tuple[pathlib.Path, pathlib.Path],
) -> None:
    data, cache = kubeling_dirs
    k = start_kubeling(data, cache)
    try:
        k.ok("create", "secret", "generic", "s", f"--from-literal=password={VALUE}")
        got = k.ok("get", "secret", "s", "-o", "jsonpath={.data.password}")
        assert got == VALUE_B64
        assert base64.b64decode(got).decode() == VALUE

        files = store_files(data)
        assert data / "state.db" in files
        for needle in (VALUE, VALUE_B64, VALUE_B64.rstrip("=")):
            assert grep_count(needle, files) == ["0"] * len(files), needle
            for path in files:
                assert needle.encode() not in path.read_bytes(), (needle, path)
        # The stored value is upstream's aesgcm envelope (self-describing, names its key).
        raw = b"".join(p.read_bytes() for p in files)
        assert b"k8s:enc:aesgcm:v1:key-" in raw

        key_file = data / "pki" / "encryption.key"
        assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
        key_text = key_file.read_text()
    finally:
        code = stop_kubeling(k)
    assert code == 0, "\n".join(k.output)

    # A restart reuses the key: the secret still reads, and the key file is unchanged.
    k = start_kubeling(data, cache)
    try:
        assert k.ok("get", "secret", "s", "-o", "jsonpath={.data.password}") == VALUE_B64
        assert key_file.read_text() == key_text
    finally:
        code = stop_kubeling(k)
    assert code == 0, "\n".join(k.output)


def refused_start(data: pathlib.Path) -> subprocess.CompletedProcess[str]:
    """``kubeling up`` that is expected to refuse: it must exit on its own, 1."""
    cmd = [*kubeling_command(), "up", f"--data-dir={data}", "--listen=127.0.0.1:0"]
    result = subprocess.run(
        cmd, capture_output=True, text=True, timeout=60, cwd=data.parent, check=False
    )
    assert result.returncode == 1, result.stdout + result.stderr
    return result


def test_lost_or_tampered_key_stops_the_start_naming_the_key(
    kubeling_dirs: tuple[pathlib.Path, pathlib.Path],
) -> None:
    data, cache = kubeling_dirs
    k = start_kubeling(data, cache)
    try:
        k.ok("create", "secret", "generic", "s", f"--from-literal=password={VALUE}")
    finally:
        assert stop_kubeling(k) == 0, "\n".join(k.output)
    key_file = data / "pki" / "encryption.key"
    old_lines = [line for line in key_file.read_text().splitlines() if line[:1] not in ("#", "")]
    old_name = old_lines[0].split()[0]

    # The key file is lost: a new key is made, and the start stops, naming the old key.
    key_file.unlink()
    result = refused_start(data)
    assert "kubeling: cannot start: 1 stored value(s) cannot be decrypted" in result.stderr
    assert "/registry/core/secrets/default/s" in result.stderr
    assert f"the value is encrypted with key {old_name!r}" in result.stderr
    assert VALUE not in result.stdout + result.stderr

    # The old key's line restored behind the new write key: the secret reads again.
    with key_file.open("a") as f:
        f.write(old_lines[0] + "\n")
    k = start_kubeling(data, cache)
    try:
        assert k.ok("get", "secret", "s", "-o", "jsonpath={.data.password}") == VALUE_B64
    finally:
        assert stop_kubeling(k) == 0, "\n".join(k.output)

    # One flipped bit in the stored ciphertext: refused, never garbage.
    conn = sqlite3.connect(data / "state.db")
    try:
        rowid, value = conn.execute(
            "SELECT id, value FROM kv WHERE name = ? ORDER BY id DESC LIMIT 1",
            ("/registry/core/secrets/default/s",),
        ).fetchone()
        assert bytes(value).startswith(b"k8s:enc:aesgcm:v1:")
        flipped = bytearray(value)
        flipped[-1] ^= 0x01
        conn.execute("UPDATE kv SET value = ? WHERE id = ?", (bytes(flipped), rowid))
        conn.commit()
    finally:
        conn.close()
    result = refused_start(data)
    assert "message authentication failed" in result.stderr
    assert "/registry/core/secrets/default/s" in result.stderr
