"""`kyoka check` against a live Kyoka: only what is granted passes, and the receipts are proof."""

from __future__ import annotations

import base64
import json

from jwcrypto import jwk, jws

from tests.clients.conftest import read_jsonl
from tests.factories import make_image_bytes


def verify_with_jwcrypto(body: bytes, signature: str, jwks: dict) -> None:
    """An independent JOSE library, not the one that signed nor the one the client uses."""
    protected, empty, sig = signature.split(".")
    assert empty == ""
    token = jws.JWS()
    token.deserialize(f"{protected}.{base64.urlsafe_b64encode(body).rstrip(b'=').decode()}.{sig}")
    header = json.loads(base64.urlsafe_b64decode(protected + "=" * (-len(protected) % 4)))
    token.verify(jwk.JWKSet.from_json(json.dumps(jwks)).get_key(header["kid"]), alg="EdDSA")


def test_a_directory_of_images_only_the_granted_pass_and_receipts_verify(kyoka_server, run_kyoka, tmp_path):
    images = tmp_path / "images"
    (images / "nested").mkdir(parents=True)
    for seed in (1, 2, 3):  # registered and granted
        kyoka_server.grant(kyoka_server.work(image_seed=seed))
    for seed in (4, 5):  # registered, no grant
        kyoka_server.work(image_seed=seed)
    for seed in range(1, 8):  # 6 and 7: nobody registered them
        folder = images / "nested" if seed % 2 else images
        (folder / f"img-{seed}.png").write_bytes(make_image_bytes(seed))

    result = run_kyoka("check", str(images), "--purpose", "train-genai", "--out", "decisions.jsonl",
                       "--receipts", "receipts", url=kyoka_server.url, key=kyoka_server.key)

    assert result.returncode == 1, result.stderr
    rows = {row["ref"].rsplit("/", 1)[-1]: row for row in read_jsonl(tmp_path / "decisions.jsonl")}
    assert {name for name, row in rows.items() if row["permitted"]} == {"img-1.png", "img-2.png", "img-3.png"}
    assert {rows[f"img-{n}.png"]["decision"] for n in (4, 5)} == {"not_permitted"}
    assert {rows[f"img-{n}.png"]["decision"] for n in (6, 7)} == {"unregistered"}
    assert all(set(row["checked"]) == {"sha256"} for row in rows.values())
    # Each image's pHash, the registry's pipeline, was asked about too: similar works never permit,
    # but they say whom to ask. A registered image is similar to its own registration.
    assert [s["distance"] for s in rows["img-4.png"]["similar"]][:1] == [0]
    assert all(len(row["phash"]) == 16 for row in rows.values())

    receipts = sorted((tmp_path / "receipts").glob("*.json"))
    receipts = [r for r in receipts if r.name != "jwks.json"]
    assert len(receipts) == 1
    jwks = json.loads((tmp_path / "receipts" / "jwks.json").read_text())
    verify_with_jwcrypto(receipts[0].read_bytes(), receipts[0].with_suffix(".jws").read_text(), jwks)

    verified = run_kyoka("verify", "receipts", "--decisions", "decisions.jsonl", url=kyoka_server.url)
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert "valid" in verified.stdout and "7 match, 0 differ" in verified.stdout


def test_everything_permitted_exits_0_and_urls_come_from_stdin_and_files(kyoka_server, run_kyoka, tmp_path):
    kyoka_server.grant(kyoka_server.work(urls=["https://cdn.example.org/a.png"], identifiers=["isbn:9784041026229"]))
    from django.utils import timezone

    from registry.models import VerifiedHost

    VerifiedHost.objects.create(organization=kyoka_server.studio, host="cdn.example.org", method="reviewer",
                                verified_at=timezone.now())
    (tmp_path / "list.txt").write_text("isbn:978-4-04-102622-9\n")

    result = run_kyoka("check", "-", "@list.txt", "--purpose", "train-ai", "--out", "out.csv",
                       stdin="HTTPS://CDN.example.org:443/a.png\n", url=kyoka_server.url, key=kyoka_server.key)

    assert result.returncode == 0, result.stderr
    header = (tmp_path / "out.csv").read_text().splitlines()[0]
    assert header == "ref,checked,decision,permitted,reason,proof,index,phash,similar"


def test_a_decision_file_edited_after_the_fact_no_longer_matches_its_receipt(kyoka_server, run_kyoka, tmp_path):
    (tmp_path / "a.png").write_bytes(make_image_bytes(20))
    run_kyoka("check", "a.png", "--purpose", "tdm", "--out", "d.jsonl", "--receipts", "r",
              url=kyoka_server.url, key=kyoka_server.key)
    row = read_jsonl(tmp_path / "d.jsonl")[0]
    assert row["decision"] == "unregistered"
    (tmp_path / "d.jsonl").write_text(json.dumps({**row, "decision": "permitted", "permitted": True}) + "\n")

    verified = run_kyoka("verify", "r", "--decisions", "d.jsonl", url=kyoka_server.url)

    assert verified.returncode == 1 and "0 match, 1 differ" in verified.stdout
