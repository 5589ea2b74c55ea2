"""Secrets at rest: the AES-GCM layer through the real Registry on the SQLite backend."""

from __future__ import annotations

import base64
import os
import pathlib
import sqlite3
import stat
from collections.abc import AsyncIterator
from typing import Any

import orjson
import pytest

from kubeling.machinery import resources as r
from kubeling.machinery.errors import InternalError
from kubeling.registry import codec
from kubeling.registry.encryption import (
    AESGCM_PREFIX,
    KEY_FILE,
    EncryptingBackend,
    Key,
    KeyFileError,
    KeyRing,
    TransformError,
    UnreadableValues,
    generate_key,
    write_key_file,
)
from kubeling.registry.registry import Registry
from kubeling.storage.sqlite import SqliteBackend
from tests.registry.conftest import FakeClock, ctx

PASSWORD = "hunter2-Zq9"
PASSWORD_B64 = base64.b64encode(PASSWORD.encode()).decode()
SECRET_KEY = "/registry/core/secrets/default/db"


def secret(name: str = "db", password: str = PASSWORD) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": name},
        "type": "Opaque",
        "data": {"password": base64.b64encode(password.encode()).decode()},
    }


class Cluster:
    """A Registry over SQLite under ``data_dir``, with or without the encryption layer,
    reopened at will (as a restart does)."""

    def __init__(self, data_dir: pathlib.Path) -> None:
        self.data_dir = data_dir
        self.db = data_dir / "state.db"
        self.backend: SqliteBackend | None = None
        self.registry: Registry | None = None

    async def open(self, *, keyring: KeyRing | None, rewrite: bool = True) -> Registry:
        """``rewrite=False`` skips the start-up rewrite, as if the values went bad while
        the server ran."""
        await self.close()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.backend = SqliteBackend(self.db)
        await self.backend.start()
        backend: Any = self.backend
        if keyring is not None:
            backend = EncryptingBackend(self.backend, keyring)
            if rewrite:
                await backend.rewrite_stale()
        self.registry = await Registry.open(backend=backend, clock=FakeClock())
        await self.registry.bootstrap()
        return self.registry

    async def close(self) -> None:
        if self.registry is not None:
            await self.registry.close()
            self.registry = None
        if self.backend is not None:
            await self.backend.close()
            self.backend = None

    def raw_rows(self, key: str = SECRET_KEY) -> list[bytes]:
        """Every stored version of ``key``, read with sqlite3 directly."""
        conn = sqlite3.connect(self.db)
        try:
            rows = conn.execute("SELECT value FROM kv WHERE name = ? ORDER BY id", (key,))
            return [bytes(v) for (v,) in rows]
        finally:
            conn.close()

    def files_bytes(self) -> bytes:
        """The database file and its WAL, as they are on disk."""
        out = b""
        for path in (self.db, self.db.with_name(self.db.name + "-wal")):
            if path.exists():
                out += path.read_bytes()
        return out


@pytest.fixture
async def cluster(tmp_path: pathlib.Path) -> AsyncIterator[Cluster]:
    c = Cluster(tmp_path / "data")
    try:
        yield c
    finally:
        await c.close()


async def get_password(reg: Registry, name: str = "db") -> str:
    got = await reg.store(r.SECRETS).get(namespace="default", name=name, ctx=ctx())
    return base64.b64decode(got["data"]["password"]).decode()


# -- the key file --------------------------------------------------------------------------------


def test_ensure_creates_a_private_key_file_and_reuses_it(tmp_path: pathlib.Path) -> None:
    first = KeyRing.ensure(tmp_path)
    path = tmp_path / "pki" / KEY_FILE
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert len(first.write_key.secret) == 32
    again = KeyRing.ensure(tmp_path)
    assert again.write_key == first.write_key
    assert path.read_text().count(first.write_key.name) == 1


def test_ensure_in_a_fresh_directory_makes_a_new_key_each_time(tmp_path: pathlib.Path) -> None:
    a = KeyRing.ensure(tmp_path / "a").write_key
    b = KeyRing.ensure(tmp_path / "b").write_key
    assert a.name != b.name
    assert a.secret != b.secret


def test_key_repr_hides_the_secret() -> None:
    key = generate_key("k1")
    assert base64.b64encode(key.secret).decode() not in repr(key)
    assert key.secret.hex() not in repr(key)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        pytest.param("", "no encryption key", id="empty"),
        pytest.param("# only a comment\n", "no encryption key", id="comments-only"),
        pytest.param("k1\n", "expected NAME BASE64", id="one-word"),
        pytest.param("k1 !!notbase64!!\n", "not valid base64", id="bad-base64"),
        pytest.param(
            f"k1 {base64.b64encode(b'x' * 16).decode()}\n", "is 16 bytes", id="aes-128-refused"
        ),
        pytest.param(
            f"a:b {base64.b64encode(b'x' * 32).decode()}\n", "invalid key name", id="colon-name"
        ),
        pytest.param(
            f"k1 {base64.b64encode(b'x' * 32).decode()}\nk1 {base64.b64encode(b'y' * 32).decode()}",
            "listed twice",
            id="duplicate",
        ),
    ],
)
def test_key_file_errors_are_refused_with_the_reason(text: str, message: str) -> None:
    with pytest.raises(KeyFileError, match=message):
        KeyRing.parse(text, source="/d/pki/encryption.key")


def test_missing_key_file_is_a_clear_error(tmp_path: pathlib.Path) -> None:
    with pytest.raises(KeyFileError, match="cannot read the encryption key file"):
        KeyRing.load(tmp_path / "nope.key")


# -- the envelope --------------------------------------------------------------------------------


def test_envelope_layout_is_upstreams_aesgcm_prefix_nonce_ciphertext_tag() -> None:
    ring = KeyRing([generate_key("k1")])
    out = ring.encrypt(b"hello", storage_key=SECRET_KEY)
    assert out.startswith(b"k8s:enc:aesgcm:v1:k1:")
    body = out[len(b"k8s:enc:aesgcm:v1:k1:") :]
    assert len(body) == 12 + len(b"hello") + 16
    # A fresh nonce every write: the same plaintext never encrypts to the same bytes.
    assert ring.encrypt(b"hello", storage_key=SECRET_KEY) != out
    assert ring.decrypt(out, storage_key=SECRET_KEY) == b"hello"


def test_value_moved_to_another_storage_key_fails_authentication() -> None:
    ring = KeyRing([generate_key("k1")])
    out = ring.encrypt(b"hello", storage_key=SECRET_KEY)
    with pytest.raises(TransformError, match="message authentication failed"):
        ring.decrypt(out, storage_key="/registry/core/secrets/other/db")


def test_plaintext_value_reads_as_is() -> None:
    ring = KeyRing([generate_key("k1")])
    assert ring.decrypt(b'{"a":1}', storage_key=SECRET_KEY) == b'{"a":1}'


def test_unsupported_provider_is_named() -> None:
    ring = KeyRing([generate_key("k1")])
    with pytest.raises(TransformError, match=r"k8s:enc:kms:v2:x:"):
        ring.decrypt(b"k8s:enc:kms:v2:x:" + b"\0" * 40, storage_key=SECRET_KEY)


def test_truncated_value_is_an_error_not_garbage() -> None:
    ring = KeyRing([generate_key("k1")])
    out = ring.encrypt(b"hello", storage_key=SECRET_KEY)
    with pytest.raises(TransformError, match="shorter than the required size"):
        ring.decrypt(out[: len(AESGCM_PREFIX) + 3 + 20], storage_key=SECRET_KEY)


# -- through the Registry on SQLite --------------------------------------------------------------


async def test_secret_round_trips_and_is_not_in_the_database_files(cluster: Cluster) -> None:
    ring = KeyRing.ensure(cluster.data_dir)
    reg = await cluster.open(keyring=ring)
    store = reg.store(r.SECRETS)
    made = await store.create(secret(), namespace="default", ctx=ctx())
    assert base64.b64decode(made["data"]["password"]).decode() == PASSWORD
    assert await get_password(reg) == PASSWORD
    listed = await store.list(namespace="default", ctx=ctx())
    assert [base64.b64decode(i["data"]["password"]).decode() for i in listed["items"]] == [PASSWORD]

    rows = cluster.raw_rows()
    assert rows and all(v.startswith(ring.write_key.prefix) for v in rows)
    on_disk = cluster.files_bytes()
    assert on_disk, "the database files are missing"
    for needle in (PASSWORD, PASSWORD_B64, '"password"'):
        assert needle.encode() not in on_disk, needle
    # Other resources stay plaintext JSON (only the configured set is encrypted).
    ns = cluster.raw_rows("/registry/core/namespaces/default")
    assert ns and orjson.loads(ns[-1])["metadata"]["name"] == "default"

    await cluster.close()
    reg = await cluster.open(keyring=KeyRing.ensure(cluster.data_dir))
    assert await get_password(reg) == PASSWORD


async def test_update_patch_delete_and_watch_see_plaintext(cluster: Cluster) -> None:
    reg = await cluster.open(keyring=KeyRing.ensure(cluster.data_dir))
    store = reg.store(r.SECRETS)
    made = await store.create(secret(), namespace="default", ctx=ctx())
    events = store.watch(
        namespace="default", resource_version=made["metadata"]["resourceVersion"], ctx=ctx()
    )
    new_b64 = base64.b64encode(b"second").decode()
    made["data"] = {"password": new_b64}
    await store.update(made, namespace="default", name="db", ctx=ctx())
    assert await get_password(reg) == "second"
    kind, obj = await anext(events)
    assert kind == "MODIFIED"
    assert obj["data"]["password"] == new_b64
    await store.delete(namespace="default", name="db", options=None, ctx=ctx())
    kind, obj = await anext(events)
    assert kind == "DELETED"
    assert obj["data"]["password"] == new_b64
    await events.aclose()  # type: ignore[attr-defined]
    assert all(v == b"" or v.startswith(b"k8s:enc:aesgcm:v1:") for v in cluster.raw_rows())


async def test_value_written_before_encryption_reads_and_is_encrypted_at_next_start(
    cluster: Cluster,
) -> None:
    reg = await cluster.open(keyring=None)
    await reg.store(r.SECRETS).create(secret(), namespace="default", ctx=ctx())
    assert orjson.loads(cluster.raw_rows()[-1])["data"]["password"] == PASSWORD_B64

    # Reads through the layer before anything rewrote it: the plaintext value as it is.
    assert cluster.backend is not None
    layered = EncryptingBackend(cluster.backend, KeyRing([generate_key("k1")]))
    kv = await layered.get(SECRET_KEY)
    assert kv is not None and orjson.loads(kv.value)["data"]["password"] == PASSWORD_B64

    ring = KeyRing.ensure(cluster.data_dir)
    reg = await cluster.open(keyring=ring)
    assert await get_password(reg) == PASSWORD
    assert cluster.raw_rows()[-1].startswith(ring.write_key.prefix)


async def test_plaintext_value_is_encrypted_by_the_next_write(cluster: Cluster) -> None:
    reg = await cluster.open(keyring=None)
    await reg.store(r.SECRETS).create(secret(), namespace="default", ctx=ctx())
    assert cluster.backend is not None
    ring = KeyRing([generate_key("k1")])
    reg = await Registry.open(backend=EncryptingBackend(cluster.backend, ring), clock=FakeClock())
    store = reg.store(r.SECRETS)
    got = await store.get(namespace="default", name="db", ctx=ctx())
    got["metadata"]["labels"] = {"touched": "yes"}
    await store.update(got, namespace="default", name="db", ctx=ctx())
    assert cluster.raw_rows()[-1].startswith(b"k8s:enc:aesgcm:v1:k1:")
    assert await get_password(reg) == PASSWORD


async def test_rotation_new_write_key_keeps_old_values_readable_and_rewrites_them(
    cluster: Cluster,
) -> None:
    old = generate_key("old")
    reg = await cluster.open(keyring=KeyRing([old]))
    await reg.store(r.SECRETS).create(secret("a", "alpha"), namespace="default", ctx=ctx())
    assert cluster.raw_rows("/registry/core/secrets/default/a")[-1].startswith(old.prefix)

    # The second key in front: it encrypts; the old one still decrypts.
    new = generate_key("new")
    assert cluster.backend is not None
    both = KeyRing([new, old])
    reg = await Registry.open(backend=EncryptingBackend(cluster.backend, both), clock=FakeClock())
    assert await get_password(reg, "a") == "alpha"
    await reg.store(r.SECRETS).create(secret("b", "beta"), namespace="default", ctx=ctx())
    assert cluster.raw_rows("/registry/core/secrets/default/b")[-1].startswith(new.prefix)

    # A restart with both keys rewrites what the old key encrypted; then the old key can go.
    await cluster.open(keyring=both)
    assert cluster.raw_rows("/registry/core/secrets/default/a")[-1].startswith(new.prefix)
    reg = await cluster.open(keyring=KeyRing([new]))
    assert await get_password(reg, "a") == "alpha"
    assert await get_password(reg, "b") == "beta"


async def test_rotation_through_the_key_file(cluster: Cluster) -> None:
    path = cluster.data_dir / "pki" / KEY_FILE
    first = KeyRing.ensure(cluster.data_dir).write_key
    reg = await cluster.open(keyring=KeyRing.load(path))
    await reg.store(r.SECRETS).create(secret(), namespace="default", ctx=ctx())
    second = generate_key()
    write_key_file(path, [second, first])
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    reg = await cluster.open(keyring=KeyRing.load(path))
    assert await get_password(reg) == PASSWORD
    assert cluster.raw_rows()[-1].startswith(second.prefix)


async def test_missing_key_is_a_500_naming_the_key(cluster: Cluster) -> None:
    gone = generate_key("gone")
    reg = await cluster.open(keyring=KeyRing([gone]))
    await reg.store(r.SECRETS).create(secret(), namespace="default", ctx=ctx())
    other = KeyRing([generate_key("other")], source="/d/enc.key")
    reg = await cluster.open(keyring=other, rewrite=False)
    store = reg.store(r.SECRETS)
    with pytest.raises(InternalError) as e:
        await store.get(namespace="default", name="db", ctx=ctx())
    status = e.value.to_status()
    assert (status["code"], status["reason"]) == (500, "InternalError")
    assert status["message"] == (
        "Internal error occurred: unable to transform key "
        "\"/registry/core/secrets/default/db\": the value is encrypted with key 'gone', "
        "which is not in /d/enc.key"
    )
    with pytest.raises(InternalError, match="'gone'"):
        await store.list(namespace="default", ctx=ctx())


async def test_start_refuses_values_no_key_decrypts_and_keeps_them(cluster: Cluster) -> None:
    gone = generate_key("gone")
    reg = await cluster.open(keyring=KeyRing([gone]))
    for name in ("a", "b"):
        await reg.store(r.SECRETS).create(secret(name), namespace="default", ctx=ctx())
    await cluster.close()
    # A plaintext secret from before encryption is rewritten even so.
    reg = await cluster.open(keyring=None)
    await reg.store(r.SECRETS).create(secret("plain"), namespace="default", ctx=ctx())
    other = KeyRing([generate_key("other")], source="/d/enc.key")
    with pytest.raises(UnreadableValues) as e:
        await cluster.open(keyring=other)
    assert str(e.value) == (
        "2 stored value(s) cannot be decrypted ("
        "/registry/core/secrets/default/a: the value is encrypted with key 'gone', which is "
        "not in /d/enc.key; "
        "/registry/core/secrets/default/b: the value is encrypted with key 'gone', which is "
        "not in /d/enc.key). Add the missing key back to /d/enc.key; see "
        "docs/secrets-at-rest.md"
    )
    assert cluster.raw_rows("/registry/core/secrets/default/plain")[-1].startswith(
        b"k8s:enc:aesgcm:v1:other:"
    )
    for name in ("a", "b"):
        assert cluster.raw_rows(f"/registry/core/secrets/default/{name}")[-1].startswith(
            gone.prefix
        )
    # The key back (behind the new write key): the start goes through and re-encrypts.
    reg = await cluster.open(keyring=KeyRing([other.write_key, gone]))
    assert await get_password(reg, "a") == PASSWORD
    assert cluster.raw_rows("/registry/core/secrets/default/a")[-1].startswith(
        b"k8s:enc:aesgcm:v1:other:"
    )


async def test_regenerated_key_file_gives_a_clear_error(cluster: Cluster) -> None:
    reg = await cluster.open(keyring=KeyRing.ensure(cluster.data_dir))
    await reg.store(r.SECRETS).create(secret(), namespace="default", ctx=ctx())
    (cluster.data_dir / "pki" / KEY_FILE).unlink()
    with pytest.raises(UnreadableValues, match=r"which is not in .*encryption\.key"):
        await cluster.open(keyring=KeyRing.ensure(cluster.data_dir))


async def test_wrong_key_under_the_same_name_fails_authentication(cluster: Cluster) -> None:
    reg = await cluster.open(keyring=KeyRing([generate_key("k1")]))
    await reg.store(r.SECRETS).create(secret(), namespace="default", ctx=ctx())
    reg = await cluster.open(keyring=KeyRing([generate_key("k1")]), rewrite=False)
    with pytest.raises(InternalError, match="decrypting with key 'k1' failed"):
        await get_password(reg)


async def test_tampered_ciphertext_is_an_error_never_garbage(cluster: Cluster) -> None:
    ring = KeyRing([generate_key("k1")])
    reg = await cluster.open(keyring=ring)
    made = await reg.store(r.SECRETS).create(secret(), namespace="default", ctx=ctx())
    await cluster.close()
    conn = sqlite3.connect(cluster.db)
    try:
        (rowid, value) = conn.execute(
            "SELECT id, value FROM kv WHERE name = ? ORDER BY id DESC LIMIT 1", (SECRET_KEY,)
        ).fetchone()
        flipped = bytearray(value)
        flipped[len(ring.write_key.prefix) + 12 + 5] ^= 0x01
        conn.execute("UPDATE kv SET value = ? WHERE id = ?", (bytes(flipped), rowid))
        conn.commit()
    finally:
        conn.close()
    reg = await cluster.open(keyring=ring, rewrite=False)
    with pytest.raises(InternalError, match="message authentication failed"):
        await get_password(reg)
    assert made["metadata"]["name"] == "db"
    # A start checks every value, those under the write key too, and refuses.
    with pytest.raises(UnreadableValues, match="decrypting with key 'k1' failed"):
        await cluster.open(keyring=ring)


async def test_encrypted_value_without_a_key_ring_is_a_clear_error(cluster: Cluster) -> None:
    reg = await cluster.open(keyring=KeyRing([generate_key("k1")]))
    await reg.store(r.SECRETS).create(secret(), namespace="default", ctx=ctx())
    reg = await cluster.open(keyring=None)
    with pytest.raises(InternalError, match=r"encrypted at rest \(k8s:enc:aesgcm:v1:k1:\)"):
        await get_password(reg)


def test_codec_decode_still_raises_json_errors_for_other_bad_bytes() -> None:
    with pytest.raises(orjson.JSONDecodeError):
        codec.decode(b"not json", 1)


def test_write_key_file_leaves_no_temporary_file(tmp_path: pathlib.Path) -> None:
    path = tmp_path / KEY_FILE
    write_key_file(path, [Key(name="k1", secret=os.urandom(32))])
    assert sorted(p.name for p in tmp_path.iterdir()) == [KEY_FILE]
    assert KeyRing.load(path).write_key.name == "k1"
