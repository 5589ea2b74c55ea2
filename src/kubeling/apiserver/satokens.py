"""Service-account tokens: the ``serviceaccounts/token`` TokenRequest and their authenticator.

Tokens are JWTs signed ES256 with a key of their own, ``DATA/pki/sa.key`` (made on first
use, as kubeadm makes ``sa.key`` beside the CA): the CA key signs certificates only. The
claims follow upstream's bound tokens: ``iss`` (``https://kubernetes.default.svc.
cluster.local``), ``sub`` ``system:serviceaccount:<ns>:<name>``, ``aud`` (the API's own
audience unless the request names others), ``exp``/``iat``/``nbf`` and the
``kubernetes.io`` claim naming the namespace, the ServiceAccount and the bound pod.

The authenticator accepts a token whose signature, issuer, expiry and audience check out
and names the user as upstream does (``system:serviceaccount:<ns>:<name>`` in groups
``system:serviceaccounts``, ``system:serviceaccounts:<ns>``, ``system:authenticated``).
TODO(#5): it does not yet check that the ServiceAccount and bound pod still exist, so a
token outlives a deleted pod until it expires.
"""

from __future__ import annotations

import base64
import json
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from kubeling.apiserver.auth import PeerCert
from kubeling.machinery.errors import BadRequest
from kubeling.machinery.field import Path as FieldPath
from kubeling.machinery.field import invalid, invalid_error
from kubeling.machinery.types import Obj
from kubeling.registry.context import RequestContext, UserInfo
from kubeling.registry.subresources import Subresource

ISSUER = "https://kubernetes.default.svc.cluster.local"
API_AUDIENCES = (ISSUER,)
DEFAULT_SECONDS = 3600
MIN_SECONDS = 600


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class ServiceAccountTokens:
    """Issues and verifies tokens with the key in ``pki_dir/sa.key``."""

    def __init__(self, pki_dir: Path) -> None:
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric import ec

        path = pki_dir / "sa.key"
        if path.exists():
            key = serialization.load_pem_private_key(path.read_bytes(), password=None)
            assert isinstance(key, ec.EllipticCurvePrivateKey)
        else:
            key = ec.generate_private_key(ec.SECP256R1())
            pem = key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
            tmp = path.with_name("sa.key.tmp")
            tmp.touch(mode=0o600)
            tmp.write_bytes(pem)
            tmp.replace(path)
        self._key = key
        self._public = key.public_key()
        from cryptography.hazmat.primitives import hashes

        self._digest = hashes.SHA256()
        self._kid = _b64(
            self._public.public_bytes(
                serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
            )
        )[-16:]

    # --- signing ---------------------------------------------------------------------------

    def issue(self, claims: dict[str, Any]) -> str:
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

        header = {"alg": "ES256", "kid": self._kid}
        signing_input = (
            _b64(json.dumps(header, separators=(",", ":")).encode())
            + "."
            + _b64(json.dumps(claims, separators=(",", ":")).encode())
        )
        der = self._key.sign(signing_input.encode(), ec.ECDSA(self._digest))
        r, s = decode_dss_signature(der)
        return signing_input + "." + _b64(r.to_bytes(32, "big") + s.to_bytes(32, "big"))

    def verify(self, token: str) -> dict[str, Any] | None:
        from cryptography.exceptions import InvalidSignature
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

        parts = token.split(".")
        if len(parts) != 3:
            return None
        try:
            header = json.loads(_unb64(parts[0]))
            if header.get("alg") != "ES256":
                return None
            sig = _unb64(parts[2])
            if len(sig) != 64:
                return None
            der = encode_dss_signature(
                int.from_bytes(sig[:32], "big"), int.from_bytes(sig[32:], "big")
            )
            self._public.verify(der, f"{parts[0]}.{parts[1]}".encode(), ec.ECDSA(self._digest))
            claims: dict[str, Any] = json.loads(_unb64(parts[1]))
        except (ValueError, InvalidSignature):
            return None
        now = time.time()
        if claims.get("iss") != ISSUER or float(claims.get("exp") or 0) <= now:
            return None
        if float(claims.get("nbf") or 0) > now + 60:
            return None
        aud = claims.get("aud") or []
        if not any(a in API_AUDIENCES for a in (aud if isinstance(aud, list) else [aud])):
            return None
        return claims

    # --- the authenticator -----------------------------------------------------------------

    def __call__(self, authorization: bytes | None, peer: PeerCert | None) -> UserInfo | None:
        if not authorization or authorization[:7].lower() != b"bearer ":
            return None
        token = authorization[7:].strip().decode("latin-1")
        if token.count(".") != 2:
            return None
        claims = self.verify(token)
        if claims is None:
            return None
        info = claims.get("kubernetes.io") or {}
        ns = info.get("namespace", "")
        sa = (info.get("serviceaccount") or {}).get("name", "")
        if not ns or not sa:
            return None
        return UserInfo(
            name=f"system:serviceaccount:{ns}:{sa}",
            uid=(info.get("serviceaccount") or {}).get("uid", ""),
            groups=(
                "system:serviceaccounts",
                f"system:serviceaccounts:{ns}",
                "system:authenticated",
            ),
        )

    # --- TokenRequest ----------------------------------------------------------------------

    def subresource_class(self) -> type[Subresource]:
        tokens = self

        class TokenRequestREST(Subresource):
            """``POST serviceaccounts/<name>/token``: a TokenRequest answered with a token."""

            async def create(
                self, obj: Obj, *, namespace: str, name: str, ctx: RequestContext
            ) -> Obj:
                if obj.get("kind") not in (None, "TokenRequest"):
                    raise BadRequest(f"expected a TokenRequest, got {obj.get('kind')}")
                sa = await self.store.get(namespace=namespace, name=name, ctx=ctx)
                return tokens.token_request(obj, sa)

        return TokenRequestREST

    def token_request(self, request: Obj, sa: Obj) -> Obj:
        spec = dict(request.get("spec") or {})
        seconds = int(spec.get("expirationSeconds") or DEFAULT_SECONDS)
        if seconds < MIN_SECONDS:
            error = invalid(
                FieldPath("spec").child("expirationSeconds"),
                seconds,
                "may not specify a duration less than 10 minutes",
            )
            raise invalid_error(
                kind="TokenRequest",
                group="authentication.k8s.io",
                name=sa["metadata"]["name"],
                errors=[error],
            )
        audiences = list(spec.get("audiences") or API_AUDIENCES)
        meta = sa["metadata"]
        now = int(time.time())
        private: dict[str, Any] = {
            "namespace": meta["namespace"],
            "serviceaccount": {"name": meta["name"], "uid": meta.get("uid", "")},
        }
        bound = spec.get("boundObjectRef") or {}
        if bound.get("kind") == "Pod":
            private["pod"] = {"name": bound.get("name", ""), "uid": bound.get("uid", "")}
        claims = {
            "aud": audiences,
            "exp": now + seconds,
            "iat": now,
            "iss": ISSUER,
            "jti": str(uuid.uuid4()),
            "kubernetes.io": private,
            "nbf": now,
            "sub": f"system:serviceaccount:{meta['namespace']}:{meta['name']}",
        }
        expires = datetime.fromtimestamp(now + seconds, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        spec["audiences"] = audiences
        spec["expirationSeconds"] = seconds
        return {
            "kind": "TokenRequest",
            "apiVersion": "authentication.k8s.io/v1",
            "metadata": {
                "name": meta["name"],
                "namespace": meta["namespace"],
                "creationTimestamp": datetime.fromtimestamp(now, UTC).strftime(
                    "%Y-%m-%dT%H:%M:%SZ"
                ),
            },
            "spec": spec,
            "status": {"token": self.issue(claims), "expirationTimestamp": expires},
        }
