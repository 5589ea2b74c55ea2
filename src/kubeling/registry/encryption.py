"""Secrets encrypted at rest: an AES-256-GCM layer between the registry and the store.

Upstream Kubernetes stores Secrets in etcd in plaintext unless an operator writes an
``EncryptionConfiguration``; kubeling encrypts them from the first start. The layer follows
upstream's envelope conventions where they make sense, so the bytes in the store read the
same as an apiserver's with the ``aescbc``/``aesgcm`` providers configured:

- A stored value is ``k8s:enc:aesgcm:v1:<keyname>:`` + a random 96-bit nonce + the
  ciphertext and its 16-byte tag, upstream's ``aesgcm`` prefix transformer layout. The
  prefix makes the format self-describing: a value names the key that encrypted it, so
  reads pick the right key after a rotation, and a missing key is named in the error.
- The storage key (``/registry/core/secrets/<ns>/<name>``) is the GCM *additional
  authenticated data*, as upstream passes the etcd key: a ciphertext copied under another
  key does not decrypt, it fails authentication.
- A value without the prefix is returned as it is (upstream's ``identity`` provider listed
  last), so data written before encryption existed still reads; the next write encrypts it,
  and ``EncryptingBackend.rewrite_stale`` (run at every start) does it at once for values
  left in plaintext or under a key that is no longer the write key (upstream's "stale"
  reads, which its GuaranteedUpdate rewrites). A value no listed key decrypts stops the
  start with ``UnreadableValues`` naming it and its key: better than a server whose lists
  of Secrets all answer 500.
- Only configured resources are encrypted on write (``secrets`` by default); every read
  decrypts whatever carries the prefix, so taking a resource off the list never strands
  its data.

The layer wraps the ``Backend`` rather than living in ``registry.codec`` because the codec's
``encode``/``decode`` do not see the storage key (needed for the authenticated data and to
know the resource), and every read path of the registry (``get``, ``list``, watch events,
the value a delete returns) goes through the backend. The codec keeps only a guard: a value
that reaches ``codec.decode`` still encrypted (a registry opened without this layer) gives
a clear ``InternalError`` instead of a JSON parse failure.

Keys live in ``DATA/pki/encryption.key`` (mode 0600), one ``NAME BASE64`` line per key,
generated on first start and reused after. The first key encrypts new writes; every key
listed decrypts. Only AES-256 keys (32 bytes) are accepted. ``cryptography`` is imported on
first use, so a start that reads no Secret does not pay for it.

NIST SP 800-38D limits one key to about 2^32 random-nonce encryptions; a Secret write is one
encryption, so a key lasts far beyond any single-host cluster's life, and rotation
(docs/secrets-at-rest.md) is there for hygiene and compromise, not wear-out.
"""

from __future__ import annotations

import base64
import binascii
import builtins
import dataclasses
import json
import logging
import os
import re
import secrets
import time
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from kubeling.machinery import resources
from kubeling.machinery.errors import InternalError, KubelingError
from kubeling.machinery.types import ResourceInfo
from kubeling.registry import codec
from kubeling.storage.interface import (
    Backend,
    Event,
    KeyNotFound,
    KeyValue,
    ListResult,
    RevisionMismatch,
)

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

log = logging.getLogger(__name__)

ENVELOPE: Final = b"k8s:enc:"
"""What every upstream encryption provider's prefix starts with."""
AESGCM_PREFIX: Final = b"k8s:enc:aesgcm:v1:"
KEY_FILE: Final = "encryption.key"
KEY_SIZE: Final = 32
NONCE_SIZE: Final = 12
TAG_SIZE: Final = 16
DEFAULT_RESOURCES: Final = (resources.SECRETS,)
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$")
_REWRITE_PAGE: Final = 500
_KEY_FILE_HEADER: Final = """\
# kubeling encryption keys for resources at rest (docs/secrets-at-rest.md).
# One key a line: NAME BASE64-OF-32-RANDOM-BYTES. The first key encrypts new writes;
# every key listed decrypts. Keep this file private: whoever reads it reads every Secret.
"""


class KeyFileError(KubelingError):
    """The key file is missing, unreadable or malformed: the server must not start."""


class TransformError(InternalError):
    """A stored value that cannot be decrypted: upstream's 500 ``InternalError``, with the
    storage key and the encryption key named."""

    def __init__(self, storage_key: str, detail: str) -> None:
        super().__init__(
            # upstream's etcd3 store: ``unable to transform key %q: %v``.
            f"Internal error occurred: unable to transform key {json.dumps(storage_key)}: {detail}"
        )
        self.storage_key = storage_key
        self.detail = detail


def not_decrypted_error(value: bytes) -> InternalError:
    """The error for an encrypted value read by a registry that has no key ring (the hook
    ``codec.decode`` raises)."""
    return InternalError(
        "Internal error occurred: the stored value is encrypted at rest "
        f"({_describe_prefix(value)}) and this server has no encryption key configured"
    )


def is_encrypted(value: bytes) -> bool:
    return value.startswith(ENVELOPE)


@dataclass(frozen=True)
class Key:
    name: str
    secret: bytes = field(repr=False)

    @property
    def prefix(self) -> bytes:
        return AESGCM_PREFIX + self.name.encode() + b":"


def generate_key(name: str = "") -> Key:
    """A fresh random key; the default name says when it was made and is unique."""
    return Key(
        name=name or f"key-{time.strftime('%Y%m%d', time.gmtime())}-{secrets.token_hex(4)}",
        secret=secrets.token_bytes(KEY_SIZE),
    )


class KeyRing:
    """Named AES-256 keys: ``keys[0]`` encrypts, every key decrypts.

    ``source`` (the key file's path) appears in errors so an operator knows where to look.
    """

    def __init__(self, keys: Iterable[Key], *, source: str = "") -> None:
        self.keys = tuple(keys)
        if not self.keys:
            raise KeyFileError(f"{source or 'the key ring'}: no encryption key")
        by_name: dict[str, Key] = {}
        for key in self.keys:
            if not _NAME.match(key.name):
                raise KeyFileError(f"{source}: invalid key name {key.name!r}")
            if len(key.secret) != KEY_SIZE:
                raise KeyFileError(
                    f"{source}: key {key.name!r} is {len(key.secret)} bytes; "
                    f"AES-256 needs {KEY_SIZE}"
                )
            if key.name in by_name:
                raise KeyFileError(f"{source}: key name {key.name!r} is listed twice")
            by_name[key.name] = key
        self._by_prefix = {key.prefix: key for key in self.keys}
        self._ciphers: dict[str, AESGCM] = {}
        self.source = source

    @property
    def write_key(self) -> Key:
        return self.keys[0]

    # -- the key file -------------------------------------------------------------------------

    @classmethod
    def parse(cls, text: str, *, source: str) -> KeyRing:
        keys: list[Key] = []
        for number, raw in enumerate(text.splitlines(), start=1):
            line = raw.strip()
            if not line or line.startswith("#"):
                continue
            parts = line.split()
            if len(parts) != 2:
                raise KeyFileError(
                    f"{source}:{number}: expected NAME BASE64, got {len(parts)} words"
                )
            name, encoded = parts
            try:
                secret = base64.b64decode(encoded, validate=True)
            except binascii.Error:
                raise KeyFileError(
                    f"{source}:{number}: the secret of key {name!r} is not valid base64"
                ) from None
            keys.append(Key(name=name, secret=secret))
        return cls(keys, source=source)

    @classmethod
    def load(cls, path: Path) -> KeyRing:
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as e:
            raise KeyFileError(f"cannot read the encryption key file {path}: {e}") from e
        return cls.parse(text, source=str(path))

    @classmethod
    def ensure(cls, data_dir: Path) -> KeyRing:
        """The key ring of ``data_dir/pki/encryption.key``, created with one fresh key
        (mode 0600) on first start and reused afterwards."""
        pki = data_dir / "pki"
        path = pki / KEY_FILE
        if not path.exists():
            pki.mkdir(mode=0o700, parents=True, exist_ok=True)
            write_key_file(path, [generate_key()])
        return cls.load(path)

    # -- values -------------------------------------------------------------------------------

    def _cipher(self, key: Key) -> AESGCM:
        cipher = self._ciphers.get(key.name)
        if cipher is None:
            from cryptography.hazmat.primitives.ciphers.aead import AESGCM

            cipher = self._ciphers[key.name] = AESGCM(key.secret)
        return cipher

    def encrypt(self, plaintext: bytes, *, storage_key: str) -> bytes:
        key = self.write_key
        nonce = os.urandom(NONCE_SIZE)
        sealed = self._cipher(key).encrypt(nonce, plaintext, storage_key.encode())
        return key.prefix + nonce + sealed

    def key_of(self, value: bytes) -> Key | None:
        """The key ring's key that encrypted ``value`` (None: plaintext or an unknown key)."""
        end = value.find(b":", len(AESGCM_PREFIX))
        if not value.startswith(AESGCM_PREFIX) or end < 0:
            return None
        return self._by_prefix.get(value[: end + 1])

    def decrypt(self, value: bytes, *, storage_key: str) -> bytes:
        """The plaintext of a stored value; a value without the envelope prefix is returned
        as it is. Raises ``TransformError`` for anything that does not decrypt."""
        if not value.startswith(ENVELOPE):
            return value
        key = self.key_of(value)
        if key is None:
            if not value.startswith(AESGCM_PREFIX):
                raise TransformError(
                    storage_key,
                    f"the value is encrypted by a provider kubeling does not support "
                    f"({_describe_prefix(value)})",
                )
            name = value[len(AESGCM_PREFIX) :].partition(b":")[0].decode(errors="replace")
            raise TransformError(
                storage_key,
                f"the value is encrypted with key {name!r}, which is not in {self.source}",
            )
        body = value[len(key.prefix) :]
        if len(body) < NONCE_SIZE + TAG_SIZE:
            raise TransformError(storage_key, "the stored data was shorter than the required size")
        from cryptography.exceptions import InvalidTag

        try:
            return self._cipher(key).decrypt(
                body[:NONCE_SIZE], body[NONCE_SIZE:], storage_key.encode()
            )
        except InvalidTag:
            raise TransformError(
                storage_key,
                f"decrypting with key {key.name!r} failed (cipher: message authentication "
                f"failed): the value was altered, or the key named {key.name!r} in "
                f"{self.source} is not the one that encrypted it",
            ) from None


def write_key_file(path: Path, keys: Iterable[Key]) -> None:
    """Write ``keys`` (the first is the write key) to ``path``, mode 0600, atomically."""
    lines = [f"{key.name} {base64.b64encode(key.secret).decode()}\n" for key in keys]
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(_KEY_FILE_HEADER + "".join(lines))
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _describe_prefix(value: bytes) -> str:
    """The envelope prefix of a value for messages (``k8s:enc:aesgcm:v1:key1:``), never any
    ciphertext."""
    parts = value[:128].split(b":")
    return ":".join(p.decode(errors="replace") for p in parts[:5]) + ":"


class EncryptingBackend:
    """A ``Backend`` that encrypts the values of ``resources`` on write and decrypts every
    enveloped value on read (get, list, watch events, a delete's last value).

    Start and close belong to whoever opened the inner backend; ``start``/``close`` here
    pass through for callers that hand this object around as the backend itself.
    """

    def __init__(
        self,
        inner: Backend,
        keyring: KeyRing,
        *,
        resources: Iterable[ResourceInfo] = DEFAULT_RESOURCES,
    ) -> None:
        self.inner = inner
        self.keyring = keyring
        self.resources = tuple(resources)
        self._prefixes = tuple(codec.key_prefix(info) for info in self.resources)

    def __getattr__(self, name: str) -> Any:
        # Backend-specific extras (``SqliteBackend.stats`` ...) stay reachable.
        if name == "inner":
            raise AttributeError(name)
        return getattr(self.inner, name)

    def encrypts(self, storage_key: str) -> bool:
        return storage_key.startswith(self._prefixes)

    def _plain(self, kv: KeyValue) -> KeyValue:
        if not kv.value.startswith(ENVELOPE):
            return kv
        return dataclasses.replace(kv, value=self.keyring.decrypt(kv.value, storage_key=kv.key))

    def _sealed(self, key: str, value: bytes) -> bytes:
        return self.keyring.encrypt(value, storage_key=key) if self.encrypts(key) else value

    async def start(self) -> None:
        await self.inner.start()

    async def close(self) -> None:
        await self.inner.close()

    async def current_revision(self) -> int:
        return await self.inner.current_revision()

    async def get(self, key: str) -> KeyValue | None:
        kv = await self.inner.get(key)
        return self._plain(kv) if kv is not None else None

    async def list(
        self, prefix: str, *, start_after: str = "", limit: int = 0, revision: int = 0
    ) -> ListResult:
        result = await self.inner.list(
            prefix, start_after=start_after, limit=limit, revision=revision
        )
        if not any(kv.value.startswith(ENVELOPE) for kv in result.items):
            return result
        return dataclasses.replace(result, items=[self._plain(kv) for kv in result.items])

    async def count(self, prefix: str) -> int:
        return await self.inner.count(prefix)

    async def create(self, key: str, value: bytes) -> KeyValue:
        kv = await self.inner.create(key, self._sealed(key, value))
        # The caller gets back what it wrote, not the ciphertext.
        return dataclasses.replace(kv, value=value)

    async def update(self, key: str, value: bytes, *, expected_revision: int) -> KeyValue:
        kv = await self.inner.update(
            key, self._sealed(key, value), expected_revision=expected_revision
        )
        return dataclasses.replace(kv, value=value)

    async def delete(self, key: str, *, expected_revision: int = 0) -> KeyValue:
        return self._plain(await self.inner.delete(key, expected_revision=expected_revision))

    async def watch(self, prefix: str, *, after_revision: int) -> AsyncIterator[Event]:
        events = self.inner.watch(prefix, after_revision=after_revision)
        try:
            async for event in events:
                prev = event.prev
                if event.kv.value.startswith(ENVELOPE) or (
                    prev is not None and prev.value.startswith(ENVELOPE)
                ):
                    event = dataclasses.replace(
                        event,
                        kv=self._plain(event.kv),
                        prev=self._plain(prev) if prev is not None else None,
                    )
                yield event
        finally:
            aclose = getattr(events, "aclose", None)
            if aclose is not None:
                await aclose()

    async def compact(self, *, keep_revisions: int) -> int:
        return await self.inner.compact(keep_revisions=keep_revisions)

    async def rewrite_stale(self) -> int:
        """Re-encrypt, with the write key, every current value of the encrypted resources
        that is in plaintext or under another key; returns how many were rewritten.

        Every value is decrypted, those under the write key too, so a value that went bad
        on disk is found here rather than by the first list. Each rewrite is a compare-and-swap on the value's revision, so a concurrent write
        (which already used the write key) wins. Values that do not decrypt are left as
        they are, and once the rest is done ``UnreadableValues`` names them: a server that
        started over them would answer 500 to every list of their resource, and anything
        that waits for such a list (an informer's first sync) would wait forever.
        """
        rewritten = 0
        unreadable: builtins.list[TransformError] = []
        for prefix in self._prefixes:
            after = ""
            while True:
                page = await self.inner.list(prefix, start_after=after, limit=_REWRITE_PAGE)
                for kv in page.items:
                    try:
                        plain = self.keyring.decrypt(kv.value, storage_key=kv.key)
                    except TransformError as e:
                        unreadable.append(e)
                        continue
                    if self.keyring.key_of(kv.value) is self.keyring.write_key:
                        continue
                    try:
                        await self.inner.update(
                            kv.key,
                            self.keyring.encrypt(plain, storage_key=kv.key),
                            expected_revision=kv.mod_revision,
                        )
                    except (KeyNotFound, RevisionMismatch):
                        continue
                    rewritten += 1
                if not page.more or not page.items:
                    break
                after = page.items[-1].key
        if rewritten:
            log.info(
                "Encrypted %d stored value(s) at rest with key %r.",
                rewritten,
                self.keyring.write_key.name,
            )
        if unreadable:
            raise UnreadableValues(unreadable, source=self.keyring.source)
        return rewritten


class UnreadableValues(KubelingError):
    """Stored values no key in the key ring decrypts; the server must not start over them."""

    def __init__(self, errors: Iterable[TransformError], *, source: str) -> None:
        self.errors = tuple(errors)
        shown = "; ".join(f"{e.storage_key}: {e.detail}" for e in self.errors[:3])
        more = f"; and {len(self.errors) - 3} more" if len(self.errors) > 3 else ""
        super().__init__(
            f"{len(self.errors)} stored value(s) cannot be decrypted ({shown}{more}). Add "
            f"the missing key back to {source or 'the key ring'}; see docs/secrets-at-rest.md"
        )
