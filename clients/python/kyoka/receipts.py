"""Receipts: a detached JWS (RFC 7515 appendix F, EdDSA) over the exact body bytes.

The registry publishes its public keys at /.well-known/jwks.json, several during a rotation. A
signature naming a key the cached set lacks makes the client fetch the set once more, then refuse.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from typing import Any

from joserfc import jws
from joserfc.errors import JoseError
from joserfc.jwk import KeySet

from kyoka.errors import BadSignature

ALGORITHM = "EdDSA"
MAX_SIGNATURE_LENGTH = 1024


class _EdDSAOnly(jws.JWSRegistry):
    """Accept EdDSA and nothing else, so a forged `none` or HS256 header never reaches a verifier."""

    def get_alg(self, name: str):
        if name != ALGORITHM:
            raise BadSignature(f"algorithm {name!r} is not accepted")
        return self.algorithms[ALGORITHM]


_REGISTRY = _EdDSAOnly()


def signature_kid(signature: str) -> str:
    if not isinstance(signature, str) or not signature or len(signature) > MAX_SIGNATURE_LENGTH:
        raise BadSignature("missing or oversized Receipt-Signature")
    parts = signature.split(".")
    if len(parts) != 3 or parts[1] != "":
        raise BadSignature("Receipt-Signature is not a detached compact JWS")
    try:
        header = json.loads(base64.urlsafe_b64decode(parts[0] + "=" * (-len(parts[0]) % 4)))
    except (ValueError, TypeError) as exc:
        raise BadSignature("Receipt-Signature header does not parse") from exc
    kid = header.get("kid") if isinstance(header, dict) else None
    if not isinstance(kid, str) or not kid or header.get("alg") != ALGORITHM:
        raise BadSignature("Receipt-Signature names no key or another algorithm")
    return kid


def verify(body: bytes, signature: str, jwks: dict[str, Any]) -> str:
    """Return the kid that signed `body`; raise BadSignature otherwise."""
    kid = signature_kid(signature)
    keys = [k for k in jwks.get("keys", []) if isinstance(k, dict) and k.get("kid") == kid]
    if not keys:
        raise BadSignature(f"signed with an unknown key (kid {kid!r})")
    try:
        key = KeySet.import_key_set({"keys": keys}).keys[0]
        jws.deserialize_compact(signature, key, payload=body, registry=_REGISTRY)
    except BadSignature:
        raise
    except (JoseError, ValueError, TypeError) as exc:
        raise BadSignature(f"signature does not match the body ({exc.__class__.__name__})") from exc
    return kid


class JwksCache:
    """The registry's keys, fetched on first use and once more on an unknown kid."""

    def __init__(self, fetch: Callable[[], dict[str, Any]], initial: dict[str, Any] | None = None) -> None:
        self._fetch = fetch
        self.jwks = initial

    def verify(self, body: bytes, signature: str) -> str:
        if self.jwks is None:
            self.jwks = self._fetch()
        kid = signature_kid(signature)
        if not any(k.get("kid") == kid for k in self.jwks.get("keys", []) if isinstance(k, dict)):
            self.jwks = self._fetch()
        return verify(body, signature, self.jwks)
