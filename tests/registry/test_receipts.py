"""Receipt signing: detached EdDSA JWS over the exact body, keys on disk, any JOSE library verifies.

The independent check uses jwcrypto, which shares no code with joserfc (the signer), and sees only
what a client sees: the body, the Receipt-Signature value and the published JWKS.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import io
import json
import multiprocessing
import os
import stat
from pathlib import Path
from typing import Any

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.core.management import call_command
from joserfc.jwk import OKPKey
from jwcrypto import jwk as jwcrypto_jwk
from jwcrypto import jws as jwcrypto_jws
from jwcrypto.common import JWException

from registry import receipts
from registry.receipts import (
    InvalidReceipt,
    public_jwks,
    rotate_signing_key,
    sign_receipt,
    verify_receipt,
)

BODY = json.dumps(
    {"check_id": "0b6f", "summary": {"permitted": 1}, "results": [{"title": "猫の手"}]},
    ensure_ascii=False,
    separators=(",", ":"),
).encode()


@pytest.fixture(autouse=True)
def key_dir(settings, tmp_path: Path) -> Path:
    # A directory that does not exist yet, so first-use creation is exercised in every test.
    directory = tmp_path / "var" / "keys"
    settings.KYOKA_SIGNING_KEY_DIR = directory
    settings.KYOKA_SIGNING_KEY = ""
    return directory


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def header_of(signature: str) -> dict[str, Any]:
    segment = signature.split(".")[0]
    return json.loads(base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4)))


def verify_with_jwcrypto(body: bytes, signature: str, jwks: dict[str, Any]) -> str:
    """Verify as an outside client would: RFC 7515 appendix F, then a generic JWS check."""
    header_segment, detached, signature_segment = signature.split(".")
    assert detached == ""
    token = jwcrypto_jws.JWS()
    token.deserialize(f"{header_segment}.{b64url(body)}.{signature_segment}")
    kid = token.jose_header["kid"]
    key = jwcrypto_jwk.JWKSet.from_json(json.dumps(jwks)).get_key(kid)
    assert key is not None, f"kid {kid} is not in the JWKS"
    token.verify(key, alg="EdDSA")
    return kid


def key_files(key_dir: Path) -> list[str]:
    # Leftover temporary files would end in .tmp; assert there are none, alongside the keys.
    return sorted(p.name for p in key_dir.iterdir() if p.name not in {"current", ".lock"})


def flip_byte(data: bytes, index: int) -> bytes:
    return data[:index] + bytes([data[index] ^ 0x01]) + data[index + 1 :]


def sign_in_child(key_dir: str, queue: Any, barrier: Any) -> None:
    # Each child starts with an empty in-process cache, like a freshly booted worker.
    from django.conf import settings

    settings.KYOKA_SIGNING_KEY_DIR = Path(key_dir)
    receipts._keyrings.clear()
    barrier.wait()
    queue.put(header_of(sign_receipt(BODY))["kid"])


def rotate_in_child(key_dir: str, queue: Any) -> None:
    from django.conf import settings

    settings.KYOKA_SIGNING_KEY_DIR = Path(key_dir)
    queue.put(rotate_signing_key())


def test_signed_receipt_verifies_and_names_its_key():
    signature = sign_receipt(BODY)

    _header, payload_segment, signature_segment = signature.split(".")
    assert payload_segment == ""
    assert header_of(signature) == {"alg": "EdDSA", "kid": public_jwks()["keys"][0]["kid"]}
    # Ed25519 signatures are 64 bytes: 86 base64url characters without padding.
    assert len(signature_segment) == 86
    assert verify_receipt(BODY, signature) == header_of(signature)["kid"]


def test_jwcrypto_verifies_a_receipt_using_only_the_published_jwks():
    signature = sign_receipt(BODY)
    jwks = json.loads(json.dumps(public_jwks()))  # exactly what the endpoint serves

    assert verify_with_jwcrypto(BODY, signature, jwks) == header_of(signature)["kid"]


def test_published_jwks_holds_only_public_ed25519_keys():
    kid = header_of(sign_receipt(BODY))["kid"]

    (key,) = public_jwks()["keys"]
    assert set(key) == {"kty", "crv", "x", "kid", "alg", "use"}
    assert (key["kty"], key["crv"], key["alg"], key["use"], key["kid"]) == (
        "OKP", "Ed25519", "EdDSA", "sig", kid,
    )
    # The kid is the RFC 7638 thumbprint, computed here by hand: SHA-256 of the required members
    # in lexicographic order, without whitespace.
    canonical = json.dumps({"crv": "Ed25519", "kty": "OKP", "x": key["x"]}, separators=(",", ":"))
    assert kid == b64url(hashlib.sha256(canonical.encode()).digest())


def test_empty_and_large_bodies_sign_and_verify():
    large = os.urandom(300_000)  # beyond joserfc's 128 kB default payload limit
    for body in (b"", large):
        signature = sign_receipt(body)
        assert verify_receipt(body, signature)
        assert verify_with_jwcrypto(body, signature, public_jwks())


def test_a_signature_is_byte_for_byte_what_joserfc_writes_for_every_padding_length():
    # sign_receipt assembles the signing input itself; Ed25519 is deterministic, so joserfc's
    # own compact serialisation of the same body with the same key must give the same string.
    from joserfc import jws

    from registry.receipts import _REGISTRY, _keyring

    keyring = _keyring()
    header = {"alg": "EdDSA", "kid": keyring.signing_kid}
    for body in (b"", b"a", b"ab", b"abc", "許可".encode(), BODY, os.urandom(200_001)):
        by_joserfc = jws.serialize_compact(header, body, keyring.signing_key, registry=_REGISTRY)
        protected, _payload, signature = by_joserfc.split(".")
        assert sign_receipt(body) == f"{protected}..{signature}"


def test_a_single_flipped_body_byte_fails_verification():
    signature = sign_receipt(BODY)
    tampered = flip_byte(BODY, len(BODY) // 2)

    with pytest.raises(InvalidReceipt, match="does not match the body"):
        verify_receipt(tampered, signature)
    with pytest.raises(JWException):
        verify_with_jwcrypto(tampered, signature, public_jwks())


def test_a_tampered_signature_fails_verification():
    header_segment, _, signature_segment = sign_receipt(BODY).split(".")
    # Change a middle character: the last one partly encodes padding bits and may decode the same.
    middle = len(signature_segment) // 2
    replacement = "A" if signature_segment[middle] != "A" else "B"
    forged = signature_segment[:middle] + replacement + signature_segment[middle + 1 :]
    tampered = f"{header_segment}..{forged}"

    with pytest.raises(InvalidReceipt, match="does not match the body"):
        verify_receipt(BODY, tampered)
    with pytest.raises(JWException):
        verify_with_jwcrypto(BODY, tampered, public_jwks())


def test_a_signature_from_an_unpublished_key_is_rejected_as_unknown_kid():
    sign_receipt(BODY)
    stranger = OKPKey.generate_key("Ed25519")
    header = b64url(json.dumps({"alg": "EdDSA", "kid": stranger.thumbprint()}).encode())
    signing_input = f"{header}.{b64url(BODY)}".encode()
    signature = b64url(stranger.private_key.sign(signing_input))

    with pytest.raises(InvalidReceipt, match="unknown key"):
        verify_receipt(BODY, f"{header}..{signature}")


def test_a_receipt_signed_by_a_foreign_key_under_our_kid_does_not_verify():
    kid = header_of(sign_receipt(BODY))["kid"]
    stranger = OKPKey.generate_key("Ed25519")
    header = b64url(json.dumps({"alg": "EdDSA", "kid": kid}).encode())
    signature = b64url(stranger.private_key.sign(f"{header}.{b64url(BODY)}".encode()))

    with pytest.raises(InvalidReceipt, match="does not match the body"):
        verify_receipt(BODY, f"{header}..{signature}")


def test_alg_none_is_rejected():
    kid = header_of(sign_receipt(BODY))["kid"]
    header = b64url(json.dumps({"alg": "none", "kid": kid}).encode())

    with pytest.raises(InvalidReceipt, match="not 'none'"):
        verify_receipt(BODY, f"{header}..")


def test_hs256_keyed_with_the_public_key_is_rejected():
    # The classic algorithm-confusion forgery: an HMAC whose secret is the published public key.
    kid = header_of(sign_receipt(BODY))["kid"]
    public_x = public_jwks()["keys"][0]["x"]
    header = b64url(json.dumps({"alg": "HS256", "kid": kid}).encode())
    mac = hmac.new(public_x.encode(), f"{header}.{b64url(BODY)}".encode(), hashlib.sha256)

    with pytest.raises(InvalidReceipt, match="not 'HS256'"):
        verify_receipt(BODY, f"{header}..{b64url(mac.digest())}")


@pytest.mark.parametrize(
    ("signature", "message"),
    [
        ("", "malformed"),
        ("not-a-jws", "malformed"),
        ("a.b.c.d", "malformed"),
        ("!!!..abc", "malformed"),
        (f"{b64url(b'[1, 2]')}..abc", "not a JSON object"),
        (f"{b64url(b'{}')}..abc", "not None"),
        (f"{b64url(json.dumps({'alg': 'EdDSA'}).encode())}..abc", "no key"),
        (f"{b64url(json.dumps({'alg': 'EdDSA', 'kid': 'k'}).encode())}.{b64url(BODY)}.abc",
         "detached"),
        (f"{b64url(json.dumps({'alg': 'EdDSA', 'b64': False, 'crit': ['b64']}).encode())}..abc",
         "extensions"),
        ("x" * 5000, "malformed"),
    ],
)
def test_malformed_signatures_are_rejected_with_a_reason(signature: str, message: str):
    sign_receipt(BODY)

    with pytest.raises(InvalidReceipt, match=message):
        verify_receipt(BODY, signature)


def test_invalid_receipt_is_a_value_error():
    assert issubclass(InvalidReceipt, ValueError)


def test_receipts_signed_before_rotation_still_verify_after_it():
    old_signature = sign_receipt(BODY)
    old_kid = header_of(old_signature)["kid"]

    new_kid = rotate_signing_key()

    assert new_kid != old_kid
    assert [key["kid"] for key in public_jwks()["keys"]] == [new_kid, old_kid]
    assert verify_receipt(BODY, old_signature) == old_kid
    assert verify_with_jwcrypto(BODY, old_signature, public_jwks()) == old_kid
    new_signature = sign_receipt(BODY)
    assert header_of(new_signature)["kid"] == new_kid
    assert verify_receipt(BODY, new_signature) == new_kid


def test_jwks_lists_the_current_key_first_then_older_keys_newest_first():
    first = header_of(sign_receipt(BODY))["kid"]
    second = rotate_signing_key()
    third = rotate_signing_key()

    assert [key["kid"] for key in public_jwks()["keys"]] == [third, second, first]


def test_a_rotation_in_another_process_is_picked_up_without_a_restart(key_dir: Path):
    old_kid = header_of(sign_receipt(BODY))["kid"]  # this process now has the key ring cached
    context = multiprocessing.get_context("fork")
    queue = context.Queue()
    child = context.Process(target=rotate_in_child, args=(str(key_dir), queue))
    child.start()
    new_kid = queue.get(timeout=30)
    child.join(timeout=30)

    assert new_kid != old_kid
    assert header_of(sign_receipt(BODY))["kid"] == new_kid


def test_keys_are_generated_once_and_reused_from_disk(key_dir: Path, monkeypatch):
    first_kid = header_of(sign_receipt(BODY))["kid"]
    assert header_of(sign_receipt(BODY))["kid"] == first_kid

    # A new process has an empty cache; it must find the key on disk, not make another.
    monkeypatch.setattr(receipts, "_keyrings", {})
    assert header_of(sign_receipt(BODY))["kid"] == first_kid
    assert key_files(key_dir) == [f"{first_kid}.json"]
    assert (key_dir / "current").read_text().strip() == first_kid


def test_private_key_files_are_0600_in_a_0700_directory(key_dir: Path):
    kid = header_of(sign_receipt(BODY))["kid"]
    rotated = rotate_signing_key()

    assert stat.S_IMODE(key_dir.stat().st_mode) == 0o700
    for each in (kid, rotated):
        key_file = key_dir / f"{each}.json"
        assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
        stored = json.loads(key_file.read_text())
        assert stored["kid"] == each
        assert "d" in stored  # the file is the private key; the JWKS is built from it


def test_environment_key_overrides_the_directory(key_dir: Path, settings):
    key = OKPKey.generate_key("Ed25519")
    settings.KYOKA_SIGNING_KEY = json.dumps(key.as_dict(private=True))

    signature = sign_receipt(BODY)

    assert header_of(signature)["kid"] == key.thumbprint()
    assert verify_receipt(BODY, signature) == key.thumbprint()
    assert [k["kid"] for k in public_jwks()["keys"]] == [key.thumbprint()]
    assert "d" not in public_jwks()["keys"][0]
    assert verify_with_jwcrypto(BODY, signature, public_jwks()) == key.thumbprint()
    assert not key_dir.exists()  # the container's key came from the environment; nothing written


def test_environment_key_is_read_at_call_time_and_directory_keys_stay_published(settings):
    disk_signature = sign_receipt(BODY)
    disk_kid = header_of(disk_signature)["kid"]
    key = OKPKey.generate_key("Ed25519")

    settings.KYOKA_SIGNING_KEY = json.dumps(key.as_dict(private=True))

    assert header_of(sign_receipt(BODY))["kid"] == key.thumbprint()
    assert [k["kid"] for k in public_jwks()["keys"]] == [key.thumbprint(), disk_kid]
    assert verify_receipt(BODY, disk_signature) == disk_kid

    settings.KYOKA_SIGNING_KEY = ""
    assert header_of(sign_receipt(BODY))["kid"] == disk_kid


@pytest.mark.parametrize(
    "value",
    [
        "not json",
        json.dumps(OKPKey.generate_key("Ed25519").as_dict(private=False)),
        json.dumps(OKPKey.generate_key("X25519").as_dict(private=True)),
        json.dumps(OKPKey.generate_key("Ed25519").as_dict(private=True, kid="my-key")),
    ],
    ids=["not-json", "public-only", "wrong-curve", "kid-not-thumbprint"],
)
def test_an_unusable_environment_key_is_a_configuration_error(value: str, settings):
    settings.KYOKA_SIGNING_KEY = value

    with pytest.raises(ImproperlyConfigured):
        sign_receipt(BODY)


def test_rotation_is_refused_while_the_environment_key_overrides(settings):
    key = OKPKey.generate_key("Ed25519")
    settings.KYOKA_SIGNING_KEY = json.dumps(key.as_dict(private=True))

    with pytest.raises(ImproperlyConfigured, match="KYOKA_SIGNING_KEY"):
        rotate_signing_key()


def test_processes_racing_on_first_use_all_sign_with_one_key(key_dir: Path):
    context = multiprocessing.get_context("fork")
    queue = context.Queue()
    barrier = context.Barrier(4)
    children = [
        context.Process(target=sign_in_child, args=(str(key_dir), queue, barrier))
        for _ in range(4)
    ]
    for child in children:
        child.start()
    kids = [queue.get(timeout=30) for _ in children]
    for child in children:
        child.join(timeout=30)
        assert child.exitcode == 0

    assert len(set(kids)) == 1
    # The losers discarded their keys: only the winner's is on disk and published.
    assert key_files(key_dir) == [f"{kids[0]}.json"]
    assert [key["kid"] for key in public_jwks()["keys"]] == [kids[0]]


def test_the_loser_of_a_first_use_race_discards_its_key_and_adopts_the_winners(
    key_dir: Path, monkeypatch
):
    # Where flock does not serialise first use (some network filesystems), another process can
    # claim `current` after we wrote our key but before we claim it; os.link must then lose.
    write_new_key = receipts._write_new_key
    winner: list[str] = []

    def write_then_lose_the_race(directory: Path) -> str:
        winner.append(write_new_key(directory))
        (directory / "current").write_text(winner[0])
        return write_new_key(directory)

    monkeypatch.setattr(receipts, "_write_new_key", write_then_lose_the_race)

    signature = sign_receipt(BODY)

    assert header_of(signature)["kid"] == winner[0]
    assert key_files(key_dir) == [f"{winner[0]}.json"]
    assert [key["kid"] for key in public_jwks()["keys"]] == winner


def test_a_current_file_naming_a_missing_key_is_a_configuration_error(key_dir: Path):
    kid = header_of(sign_receipt(BODY))["kid"]
    (key_dir / f"{kid}.json").unlink()
    (key_dir / "current").write_text("x" * 43)  # a new identity, so the cache reloads

    with pytest.raises(ImproperlyConfigured, match="is not in that directory"):
        sign_receipt(BODY)


def test_rotatesigningkey_command_prints_the_new_kid_and_published_count():
    old_kid = header_of(sign_receipt(BODY))["kid"]
    out = io.StringIO()

    call_command("rotatesigningkey", stdout=out)

    new_kid, count_line = out.getvalue().splitlines()
    assert new_kid != old_kid
    assert header_of(sign_receipt(BODY))["kid"] == new_kid
    assert count_line == "published keys: 2"
