"""Who is asking: the cluster's PKI, the admin credentials, and request authentication.

On first start ``ensure_pki`` creates, under ``DATA/pki/``, a cluster CA, a serving
certificate signed by it, an admin client certificate and a random admin bearer token; later
starts reuse them, and only the serving certificate is re-issued when the listen host is not
among its SANs. Keys are ECDSA P-256: Go's TLS stack accepts them and generating one takes a
millisecond where RSA takes a noticeable fraction of the start-up budget. ``cryptography`` is
imported only when something has to be generated, so a restart does not pay for it.

Authentication is a list of ``Authenticator`` callables tried in order, the way upstream's
union authenticator works; the first that recognises the request names the user. Service
account tokens (signed JWTs, ``apiserver.satokens``) are one more entry in that list.
"""

from __future__ import annotations

import base64
import hmac
import ipaddress
import os
import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import orjson

from kubeling.registry.context import ADMIN, UserInfo

CERT_DAYS: Final = 3650
DEFAULT_SANS: Final = ("127.0.0.1", "::1", "localhost")

PeerCert = dict[str, Any]
"""The verified client certificate as ``ssl.SSLSocket.getpeercert()`` returns it."""

Authenticator = Callable[[bytes | None, PeerCert | None], UserInfo | None]
"""Given the ``Authorization`` header value and the verified client certificate (either may
be absent), return the user, or ``None`` when this authenticator does not recognise them."""


@dataclass(frozen=True, kw_only=True)
class Pki:
    """Paths of the cluster's certificates, keys and the admin token."""

    dir: Path

    @property
    def ca_cert(self) -> Path:
        return self.dir / "ca.crt"

    @property
    def ca_key(self) -> Path:
        return self.dir / "ca.key"

    @property
    def serving_cert(self) -> Path:
        return self.dir / "apiserver.crt"

    @property
    def serving_key(self) -> Path:
        return self.dir / "apiserver.key"

    @property
    def serving_sans(self) -> Path:
        return self.dir / "apiserver.sans.json"

    @property
    def admin_cert(self) -> Path:
        return self.dir / "admin.crt"

    @property
    def admin_key(self) -> Path:
        return self.dir / "admin.key"

    @property
    def admin_token(self) -> Path:
        return self.dir / "admin.token"

    def read_token(self) -> str:
        return self.admin_token.read_text().strip()


def _write_private(path: Path, data: bytes) -> None:
    """Write a secret so that it is never readable by others, not even for a moment."""
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    os.replace(tmp, path)


def _write_public(path: Path, data: bytes) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def ensure_pki(data_dir: Path, *, hosts: Sequence[str] = ()) -> Pki:
    """Create or reuse the PKI under ``data_dir/pki`` so the serving cert covers ``hosts``."""
    pki = Pki(dir=data_dir / "pki")
    pki.dir.mkdir(parents=True, exist_ok=True)
    os.chmod(pki.dir, 0o700)
    wanted = sorted({*DEFAULT_SANS, *(h for h in hosts if h and h not in ("0.0.0.0", "::"))})
    if not pki.admin_token.exists():
        _write_private(pki.admin_token, secrets.token_urlsafe(32).encode() + b"\n")
    have_ca = pki.ca_cert.exists() and pki.ca_key.exists()
    sans_ok = False
    if have_ca and pki.serving_cert.exists() and pki.serving_key.exists():
        try:
            sans_ok = set(wanted) <= set(orjson.loads(pki.serving_sans.read_bytes()))
        except (OSError, ValueError):
            sans_ok = False
    if have_ca and sans_ok and pki.admin_cert.exists() and pki.admin_key.exists():
        return pki
    _generate(pki, sans=wanted, new_ca=not have_ca)
    return pki


def _generate(pki: Pki, *, sans: list[str], new_ca: bool) -> None:
    import datetime

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    def key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
        return key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )

    now = datetime.datetime.now(datetime.UTC)
    start = now - datetime.timedelta(hours=1)
    end = now + datetime.timedelta(days=CERT_DAYS)

    if new_ca:
        ca_key = ec.generate_private_key(ec.SECP256R1())
        ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "kubeling-ca")])
        ca_cert = (
            x509.CertificateBuilder()
            .subject_name(ca_name)
            .issuer_name(ca_name)
            .public_key(ca_key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(start)
            .not_valid_after(end)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    key_cert_sign=True,
                    crl_sign=True,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .add_extension(
                x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False
            )
            .sign(ca_key, hashes.SHA256())
        )
        _write_private(pki.ca_key, key_pem(ca_key))
        _write_public(pki.ca_cert, ca_cert.public_bytes(serialization.Encoding.PEM))
    else:
        loaded = serialization.load_pem_private_key(pki.ca_key.read_bytes(), password=None)
        assert isinstance(loaded, ec.EllipticCurvePrivateKey)
        ca_key = loaded
        ca_cert = x509.load_pem_x509_certificate(pki.ca_cert.read_bytes())

    def issue(
        subject: x509.Name, usage: x509.ObjectIdentifier, alt: list[x509.GeneralName]
    ) -> tuple[bytes, bytes]:
        key = ec.generate_private_key(ec.SECP256R1())
        builder = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(ca_cert.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(start)
            .not_valid_after(end)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
                critical=False,
            )
        )
        if alt:
            builder = builder.add_extension(x509.SubjectAlternativeName(alt), critical=False)
        cert = builder.sign(ca_key, hashes.SHA256())
        return cert.public_bytes(serialization.Encoding.PEM), key_pem(key)

    alt: list[x509.GeneralName] = []
    for host in sans:
        try:
            alt.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            alt.append(x509.DNSName(host))
    for name in ("kubernetes", "kubernetes.default", "kubernetes.default.svc"):
        alt.append(x509.DNSName(name))
    cert, key = issue(
        x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "kube-apiserver")]),
        ExtendedKeyUsageOID.SERVER_AUTH,
        alt,
    )
    _write_private(pki.serving_key, key)
    _write_public(pki.serving_cert, cert)
    _write_public(pki.serving_sans, orjson.dumps(sans))

    if new_ca or not (pki.admin_cert.exists() and pki.admin_key.exists()):
        cert, key = issue(
            x509.Name(
                [
                    x509.NameAttribute(NameOID.ORGANIZATION_NAME, "system:masters"),
                    x509.NameAttribute(NameOID.COMMON_NAME, ADMIN.name),
                ]
            ),
            ExtendedKeyUsageOID.CLIENT_AUTH,
            [],
        )
        _write_private(pki.admin_key, key)
        _write_public(pki.admin_cert, cert)


# --- Authenticators ------------------------------------------------------------------------


class TokenAuthenticator:
    """Static bearer tokens (upstream's ``--token-auth-file``): the admin token."""

    def __init__(self, tokens: dict[str, UserInfo]) -> None:
        self._tokens = [(t.encode(), u) for t, u in tokens.items()]

    def __call__(self, authorization: bytes | None, peer: PeerCert | None) -> UserInfo | None:
        if not authorization or authorization[:7].lower() != b"bearer ":
            return None
        presented = authorization[7:].strip()
        for token, user in self._tokens:
            if hmac.compare_digest(token, presented):
                return user
        return None


def cert_authenticator(authorization: bytes | None, peer: PeerCert | None) -> UserInfo | None:
    """A client certificate the TLS layer verified against the cluster CA: CN is the user,
    each O a group, as upstream's x509 authenticator reads them."""
    if not peer:
        return None
    name = ""
    groups: list[str] = []
    for rdn in peer.get("subject", ()):
        for key, value in rdn:
            if key == "commonName":
                name = value
            elif key == "organizationName":
                groups.append(value)
    if not name:
        return None
    return UserInfo(name=name, groups=(*groups, "system:authenticated"))


def authenticate(
    authenticators: Sequence[Authenticator],
    authorization: bytes | None,
    peer: PeerCert | None,
) -> UserInfo | None:
    for authn in authenticators:
        user = authn(authorization, peer)
        if user is not None:
            return user
    return None


# --- kubeconfig ----------------------------------------------------------------------------


def server_url(host: str, port: int) -> str:
    if host in ("", "0.0.0.0"):
        host = "127.0.0.1"
    elif host == "::":
        host = "::1"
    if ":" in host:
        host = f"[{host}]"
    return f"https://{host}:{port}"


def kubeconfig_text(pki: Pki, *, server: str) -> str:
    """An admin kubeconfig: the CA pinned, the admin token and client certificate."""

    def b64(path: Path) -> str:
        return base64.b64encode(path.read_bytes()).decode()

    return (
        "apiVersion: v1\n"
        "kind: Config\n"
        "clusters:\n"
        "- name: kubeling\n"
        "  cluster:\n"
        f"    server: {server}\n"
        f"    certificate-authority-data: {b64(pki.ca_cert)}\n"
        "users:\n"
        "- name: kubeling-admin\n"
        "  user:\n"
        f'    token: "{pki.read_token()}"\n'
        "contexts:\n"
        "- name: kubeling\n"
        "  context:\n"
        "    cluster: kubeling\n"
        "    user: kubeling-admin\n"
        "    namespace: default\n"
        "current-context: kubeling\n"
    )


def write_kubeconfig(path: Path, pki: Pki, *, server: str) -> None:
    _write_private(path, kubeconfig_text(pki, server=server).encode())
