"""Receipt signing: a detached JWS (RFC 7515 appendix F, alg EdDSA) over the exact response bytes.

Keys live on disk, never in the database, so a database dump cannot forge receipts. The directory
``settings.KYOKA_SIGNING_KEY_DIR`` (mode 0700) holds one private OKP JWK per file, named
``<kid>.json`` (mode 0600) where ``kid`` is the RFC 7638 thumbprint, plus a file ``current`` naming
the signing kid. Every key file in the directory is published, so receipts signed before a rotation
stay verifiable; an operator retires a key by deleting its file. The setting ``KYOKA_SIGNING_KEY``
(a private JWK as JSON, from the environment variable of that name) overrides ``current`` for
containers whose disk is ephemeral.

The first use generates a key. Concurrent first uses (several gunicorn workers booting at once) race
on ``current`` with ``os.link``, which fails when the name exists: the first writer wins and the
others discard their own key and sign with the winner's, so every worker signs with one kid.
"""

from __future__ import annotations

import base64
import binascii
import fcntl
import json
import os
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pybase64
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from joserfc import jws
from joserfc.errors import BadSignatureError, JoseError, UnsupportedAlgorithmError
from joserfc.jwk import OKPKey

__all__ = [
    "ALGORITHM",
    "ENVIRONMENT_VARIABLE",
    "InvalidReceipt",
    "public_jwks",
    "rotate_signing_key",
    "sign_receipt",
    "verify_receipt",
]

ALGORITHM = "EdDSA"
ENVIRONMENT_VARIABLE = "KYOKA_SIGNING_KEY"
CURRENT_FILE = "current"
LOCK_FILE = ".lock"
KEY_SUFFIX = ".json"
# Temporary files end in something other than KEY_SUFFIX so a half-written key is never published.
TEMP_SUFFIX = ".tmp"
# Our header is ~90 characters and an Ed25519 signature 86; anything far longer is not a receipt,
# and the verify endpoint is public, so refuse before decoding attacker-sized input.
MAX_SIGNATURE_LENGTH = 1024


class InvalidReceipt(ValueError):
    """A receipt signature that is malformed, names an unknown key, or does not match the body."""


class _ReceiptRegistry(jws.JWSRegistry):
    """A joserfc registry that accepts EdDSA and nothing else.

    The API contract (DESIGN.md, "API (v1)") fixes ``alg`` to ``EdDSA`` because that is what generic
    JOSE verifiers accept today. joserfc marks it deprecated by RFC 9864 (in favour of the fully
    specified ``Ed25519``) and warns on every sign and verify; the decision is deliberate, so the
    warning would only be noise per request. Allowing one algorithm also means a forged header with
    ``none`` or ``HS256`` cannot reach a verification code path at all.
    """

    def get_alg(self, name: str) -> jws.JWSAlgModel:
        if name != ALGORITHM:
            raise UnsupportedAlgorithmError(f"Algorithm of '{name}' is not allowed")
        return self.algorithms[ALGORITHM]


_REGISTRY = _ReceiptRegistry()


@dataclass(frozen=True)
class _KeyRing:
    signing_key: OKPKey
    signing_kid: str
    # Public keys by kid, the signing key first; dicts keep insertion order, which is JWKS order.
    public_keys: dict[str, OKPKey]
    # The protected header's segment for the signing key, as joserfc writes it (see sign_receipt).
    header_segment: bytes = b""


# Loaded key rings per key directory, with the fingerprint (environment override plus the identity
# of the ``current`` file) they were loaded for. A signature then costs one stat(2) rather than
# reading and parsing every key file, and a rotation by another process is noticed on the next call.
_keyrings: dict[Path, tuple[tuple[object, ...], _KeyRing]] = {}
# Serialises loading within a process; across processes the file protocol above does the work.
_load_lock = threading.Lock()


def sign_receipt(body: bytes) -> str:
    """Sign ``body`` exactly; return the detached compact JWS ``<protected>..<signature>``.

    The protected header is ``{"alg": "EdDSA", "kid": <current kid>}``; the payload is the standard
    base64url(body), removed from the serialisation (RFC 7515 appendix F), so any JOSE library can
    verify by putting base64url(body) back between the dots. Generates the first key on first use.

    The signing input is assembled here rather than by joserfc: its compact serialisation encoded a
    1,000-item receipt with the standard library's base64 and copied it three times, 0.9 ms of the
    1.6 ms a signature took. The header segment is joserfc's own (taken once per key), the payload
    segment pybase64's (SIMD), the signature the same Ed25519 primitive joserfc calls; Ed25519 is
    deterministic, so the result is byte for byte what joserfc returns (pinned by a test).
    """
    keyring = _keyring()
    payload = pybase64.urlsafe_b64encode(body)
    unpadded = (len(body) * 4 + 2) // 3  # base64url without its "=" padding (RFC 7515 section 2)
    signing_input = b".".join((keyring.header_segment, memoryview(payload)[:unpadded]))
    signature = keyring.signing_key.private_key.sign(signing_input)
    return f"{keyring.header_segment.decode()}..{_b64url(signature)}"


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _header_segment(key: OKPKey, kid: str) -> bytes:
    compact = jws.serialize_compact({"alg": ALGORITHM, "kid": kid}, b"", key, registry=_REGISTRY)
    return compact.split(".")[0].encode()


def verify_receipt(body: bytes, signature: str) -> str:
    """Return the kid whose published key signed ``body``; raise ``InvalidReceipt`` otherwise.

    Any published key counts (current and older ones), so receipts survive rotation.
    """
    header = _receipt_header(signature)
    kid = header.get("kid")
    if not isinstance(kid, str) or not kid:
        raise InvalidReceipt("The receipt signature names no key (its header has no 'kid').")
    public_key = _keyring().public_keys.get(kid)
    if public_key is None:
        raise InvalidReceipt(f"The receipt was signed with an unknown key (kid '{kid}').")
    try:
        jws.deserialize_compact(signature, public_key, registry=_REGISTRY, payload=body)
    except BadSignatureError as exc:
        raise InvalidReceipt("The receipt signature does not match the body.") from exc
    except (JoseError, ValueError) as exc:
        raise InvalidReceipt(f"The receipt signature is malformed: {exc}") from exc
    return kid


def public_jwks() -> dict[str, list[dict[str, Any]]]:
    """The JWKS to publish: the signing key first, then older keys still accepted by verifiers."""
    return {
        "keys": [
            key.as_dict(private=False, kid=kid, alg=ALGORITHM, use="sig")
            for kid, key in _keyring().public_keys.items()
        ]
    }


def rotate_signing_key() -> str:
    """Generate a key, make it current, and keep every older key published. Return the new kid.

    The new key file is written before ``current`` is switched, so no process can read a ``current``
    that names a missing key. Refused while ``KYOKA_SIGNING_KEY`` is set, since that variable would
    keep overriding the rotated key and the rotation would silently do nothing.
    """
    if settings.KYOKA_SIGNING_KEY:
        raise ImproperlyConfigured(
            f"{ENVIRONMENT_VARIABLE} is set and overrides the key directory; rotate by deploying "
            "a new value (keep the old key's file in the directory to keep it published)."
        )
    directory = _key_directory()
    _ensure_directory(directory)
    kid = _write_new_key(directory)
    _atomic_write(directory / CURRENT_FILE, kid.encode(), replace=True)
    _fsync_directory(directory)
    return kid


def _receipt_header(signature: str) -> dict[str, Any]:
    """Decode and sanity-check the protected header, so each failure gets a message of its own."""
    if not isinstance(signature, str) or len(signature) > MAX_SIGNATURE_LENGTH:
        raise InvalidReceipt("The receipt signature is malformed: not a compact JWS.")
    parts = signature.split(".")
    if len(parts) != 3 or not parts[0]:
        raise InvalidReceipt(
            "The receipt signature is malformed: expected '<protected>..<signature>'."
        )
    header_segment, payload_segment, signature_segment = parts
    try:
        header = json.loads(_b64url_decode(header_segment))
    except (ValueError, binascii.Error) as exc:
        raise InvalidReceipt(
            "The receipt signature is malformed: the header is not base64url JSON."
        ) from exc
    if not isinstance(header, dict):
        raise InvalidReceipt("The receipt signature is malformed: the header is not a JSON object.")
    # The algorithm is judged before anything else, so 'none' (which has no signature segment)
    # gets the message that explains the refusal.
    alg = header.get("alg")
    if alg != ALGORITHM:
        raise InvalidReceipt(f"Receipts are signed with {ALGORITHM}, not {alg!r}.")
    if "crit" in header or "b64" in header:
        # Receipts never use extensions; RFC 7797's unencoded payload would change what is signed.
        raise InvalidReceipt("The receipt signature uses header extensions receipts never use.")
    if payload_segment:
        # An attached payload would be verified instead of the body we were given.
        raise InvalidReceipt(
            "The receipt signature is malformed: the payload must be detached "
            "(nothing between the dots)."
        )
    if not signature_segment:
        raise InvalidReceipt("The receipt signature is malformed: the signature part is empty.")
    return header


def _b64url_decode(segment: str) -> bytes:
    return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))


def _key_directory() -> Path:
    directory = settings.KYOKA_SIGNING_KEY_DIR
    # Already a Path in portal/settings/base.py; converting only when needed keeps the per-call cost low.
    return directory if isinstance(directory, Path) else Path(directory)


def _keyring() -> _KeyRing:
    directory = _key_directory()
    environment_key = settings.KYOKA_SIGNING_KEY or None
    fingerprint = (environment_key, _current_file_identity(directory))
    cached = _keyrings.get(directory)
    if cached is not None and cached[0] == fingerprint:
        return cached[1]
    with _load_lock:
        if environment_key is None and fingerprint[1] is None:
            _create_first_key(directory)
        # Take the fingerprint again: the load must be keyed by what it actually read, or a
        # rotation between the two stats would be cached under the older identity and missed.
        fingerprint = (environment_key, _current_file_identity(directory))
        keyring = _load_keyring(directory, environment_key)
        _keyrings[directory] = (fingerprint, keyring)
        return keyring


def _current_file_identity(directory: Path) -> tuple[int, int, int] | None:
    # The inode changes on every os.replace, so a rotation is seen even within one mtime tick.
    # os.path.join rather than Path arithmetic: this runs on every signature.
    try:
        stat = os.stat(os.path.join(directory, CURRENT_FILE))
    except FileNotFoundError:
        return None
    return (stat.st_ino, stat.st_mtime_ns, stat.st_size)


def _load_keyring(directory: Path, environment_key: str | None) -> _KeyRing:
    on_disk = _read_key_files(directory)
    if environment_key is not None:
        signing_key = _parse_environment_key(environment_key)
        signing_kid = signing_key.thumbprint()
    else:
        signing_kid = (directory / CURRENT_FILE).read_text(encoding="ascii").strip()
        if signing_kid not in on_disk:
            raise ImproperlyConfigured(
                f"{directory / CURRENT_FILE} names key '{signing_kid}', "
                f"but {signing_kid}{KEY_SUFFIX} is not in that directory."
            )
        signing_key = on_disk[signing_kid]
    public_keys = {signing_kid: _public(signing_key)}
    for kid, key in on_disk.items():
        public_keys.setdefault(kid, _public(key))
    return _KeyRing(signing_key=signing_key, signing_kid=signing_kid, public_keys=public_keys,
                    header_segment=_header_segment(signing_key, signing_kid))


def _read_key_files(directory: Path) -> dict[str, OKPKey]:
    """Every key in the directory, newest file first (the JWKS order after the current key)."""
    if not directory.is_dir():
        return {}
    dated: list[tuple[int, str, str]] = []
    for path in directory.glob(f"*{KEY_SUFFIX}"):
        # A file may vanish between listing and reading: an operator retiring a key, or the losing
        # side of a first-use race on a filesystem where flock does not hold.
        try:
            dated.append((path.stat().st_mtime_ns, path.name, path.read_text(encoding="utf-8")))
        except FileNotFoundError:
            continue
    dated.sort(reverse=True)
    keys: dict[str, OKPKey] = {}
    for _mtime, name, text in dated:
        path = directory / name
        key = _import_private_key(text, source=str(path))
        kid = key.thumbprint()
        if name != f"{kid}{KEY_SUFFIX}":
            # The file name is how `current` refers to a key; a mismatch would sign under one kid
            # and publish under another.
            raise ImproperlyConfigured(f"{path} holds the key whose thumbprint is '{kid}'.")
        keys[kid] = key
    return keys


def _parse_environment_key(value: str) -> OKPKey:
    key = _import_private_key(value, source=ENVIRONMENT_VARIABLE)
    declared_kid = key.kid
    if declared_kid is not None and declared_kid != key.thumbprint():
        # Verifiers find the key by kid in our JWKS, which always uses the thumbprint.
        raise ImproperlyConfigured(
            f"{ENVIRONMENT_VARIABLE} declares kid '{declared_kid}' but its RFC 7638 thumbprint "
            f"is '{key.thumbprint()}'; drop the kid or use the thumbprint."
        )
    return key


def _import_private_key(text: str, *, source: str) -> OKPKey:
    try:
        data = json.loads(text)
        if not isinstance(data, dict):
            raise ValueError("not a JSON object")
        key = OKPKey.import_key(data)
    except (ValueError, JoseError) as exc:
        raise ImproperlyConfigured(f"{source} is not a JWK: {exc}") from exc
    if key.get("crv") != "Ed25519" or not key.is_private:
        raise ImproperlyConfigured(f"{source} must be a private Ed25519 OKP JWK.")
    return key


def _public(key: OKPKey) -> OKPKey:
    return OKPKey.import_key(key.as_dict(private=False))


def _create_first_key(directory: Path) -> None:
    _ensure_directory(directory)
    # The flock keeps concurrent first uses from each writing a key file that all but one must then
    # delete, which another process listing the directory meanwhile could cache and publish. The
    # os.link inside _atomic_write stays the guarantee of a single winner where flock is unreliable
    # (some network filesystems).
    with open(directory / LOCK_FILE, "ab") as lock_file:
        fcntl.flock(lock_file.fileno(), fcntl.LOCK_EX)
        if (directory / CURRENT_FILE).exists():
            return
        kid = _write_new_key(directory)
        try:
            _atomic_write(directory / CURRENT_FILE, kid.encode(), replace=False)
        except FileExistsError:
            # Another process won. Our key never signed anything, so it must not be published.
            (directory / f"{kid}{KEY_SUFFIX}").unlink(missing_ok=True)
        _fsync_directory(directory)


def _ensure_directory(directory: Path) -> None:
    directory.parent.mkdir(parents=True, exist_ok=True)
    try:
        directory.mkdir(mode=0o700)
    except FileExistsError:
        return
    # mkdir's mode is filtered by the umask; state it outright for a directory of private keys.
    os.chmod(directory, 0o700)


def _write_new_key(directory: Path) -> str:
    key = OKPKey.generate_key("Ed25519")
    kid = key.thumbprint()
    document = json.dumps(key.as_dict(private=True, kid=kid), sort_keys=True)
    # The name is the key's own thumbprint, so replacing can only ever rewrite identical content.
    _atomic_write(directory / f"{kid}{KEY_SUFFIX}", document.encode(), replace=True)
    return kid


def _atomic_write(path: Path, content: bytes, *, replace: bool) -> None:
    """Write ``content`` to ``path`` all at once; readers see the old file or the whole new one.

    With ``replace=False`` the write fails with FileExistsError when ``path`` exists: os.link never
    overwrites, which is what makes the first-use race have exactly one winner.
    """
    # mkstemp creates the file with mode 0600, so a private key is never readable by others.
    descriptor, temp_name = tempfile.mkstemp(dir=path.parent, prefix=".", suffix=TEMP_SUFFIX)
    try:
        with os.fdopen(descriptor, "wb") as temp_file:
            temp_file.write(content)
            temp_file.flush()
            # Durable before it becomes visible: after a crash, `current` must not name a key
            # whose file came back empty.
            os.fsync(temp_file.fileno())
        if replace:
            os.replace(temp_name, path)
        else:
            os.link(temp_name, path)
    finally:
        # After os.replace the temp name is gone; after os.link (or a failure) it must be removed.
        Path(temp_name).unlink(missing_ok=True)


def _fsync_directory(directory: Path) -> None:
    descriptor = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
