"""`permitted` means the owner consented to exactly this content (DESIGN.md "Its twin").

Each test is one way the registry could be made to say `permitted` for content nobody
consented to, or to freeze works by anyone, and shows it cannot.
"""

from __future__ import annotations

import io
import itertools
import json
import random

import pytest
from django.utils import timezone
from PIL import Image, ImageDraw

from registry.access import Actor
from registry.matching.fingerprints import hamming_distance, image_phash
from registry.models import Organization, VerifiedHost
from registry.services.grants import grant_issue
from registry.services.hosts import do_host_confirm
from registry.services.verification import organization_suspend
from registry.services.works import content_file_add, work_register
from tests.conftest import OPERATOR, owner_of
from tests.factories import make_image_bytes

pytestmark = pytest.mark.django_db


def as_owner(org: Organization) -> Actor:
    return Actor.for_user(owner_of(org))


def prove_host(org: Organization, host: str, *, subdomains: bool = True) -> VerifiedHost:
    """A host the organisation has proven: a reviewer's confirmation covers subdomains, as a DNS proof
    does; without them, the row the well-known file's lookup records (the lookup is tested in hosts/)."""
    if subdomains:
        return do_host_confirm(acting=OPERATOR, organization=org, host=host)
    return VerifiedHost.objects.create(organization=org, host=host, method=VerifiedHost.Method.HTTP,
                                       covers_subdomains=False, verified_at=timezone.now())


def register(org: Organization, ref: str, **refs):
    return work_register(actor=as_owner(org), organization=org, external_ref=ref, title=ref, kind="image", **refs)


def grant_all(org: Organization, **terms):
    return grant_issue(actor=as_owner(org), grantor=org, scope="catalog", licensee=None,
                       purposes=["train-ai"], **terms)


def flat_image(seed: int) -> tuple[bytes, Image.Image]:
    """Flat-colour art: one background colour and a few flat shapes, as cels, logos and UI art are."""
    rng = random.Random(seed)
    image = Image.new("RGB", (256, 256), tuple(rng.randrange(256) for _ in range(3)))
    draw = ImageDraw.Draw(image)
    for _ in range(rng.randrange(1, 5)):
        x0, y0 = rng.randrange(200), rng.randrange(200)
        box = (x0, y0, x0 + rng.randrange(20, 120), y0 + rng.randrange(20, 120))
        (draw.ellipse if rng.random() < 0.5 else draw.rectangle)(box, fill=tuple(rng.randrange(256) for _ in range(3)))
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue(), image


@pytest.fixture(scope="module")
def near_pair() -> tuple[bytes, bytes, int]:
    """Two different flat images whose 64-bit pHashes lie within 8 bits: the closest of 200 seeds."""
    hashed = [(seed, image_phash(flat_image(seed)[1])) for seed in range(200)]
    distance, first, second = min(
        (hamming_distance(a, b), s, t) for (s, a), (t, b) in itertools.combinations(hashed, 2)
    )
    assert distance <= 8
    one, other = flat_image(first), flat_image(second)
    assert one[0] != other[0] and one[1].getpixel((0, 0)) != other[1].getpixel((0, 0))
    return one[0], other[0], distance


def check_files(client, *files: tuple[str, bytes], purpose: str = "train-genai") -> dict:
    response = client.post("/api/v1/checks/files", {"purpose": purpose, "files": [
        _named(name, data) for name, data in files
    ]}, format="multipart")
    assert response.status_code == 200, response.content[:500]
    return json.loads(response.content)


def _named(name: str, data: bytes) -> io.BytesIO:
    handle = io.BytesIO(data)
    handle.name = name
    return handle


def test_a_different_image_within_8_bits_is_similar_only_and_names_the_registered_one(
    studio, developer, client_for, near_pair,
):
    registered, lookalike, distance = near_pair
    work = register(studio, "violet-cel")
    content_file_add(actor=as_owner(studio), work=work, fileobj=io.BytesIO(registered), filename="cel.png")
    grant_all(studio)
    client = client_for(developer, ["checks"])

    body = check_files(client, ("lookalike.png", lookalike), ("cel.png", registered))
    similar, exact = body["results"]
    assert similar["decision"] == "not_permitted" and similar["permitted"] is False
    assert similar["reason"] == "similar_only"
    assert similar["similar"] == [{"work": str(work.pk), "title": "violet-cel", "owner": studio.slug,
                                   "distance": distance}]
    assert "matches" not in similar and "grants" not in similar
    assert exact["decision"] == "permitted" and exact["matches"][0]["method"] == "sha256"


def test_a_reencoded_jpeg_is_similar_only_while_the_exact_bytes_stay_permitted(studio, developer, client_for):
    original = make_image_bytes(7)
    work = register(studio, "photo")
    content_file_add(actor=as_owner(studio), work=work, fileobj=io.BytesIO(original), filename="photo.png")
    grant_all(studio)
    jpeg = io.BytesIO()
    Image.open(io.BytesIO(original)).save(jpeg, format="JPEG", quality=70)

    body = check_files(client_for(developer, ["checks"]), ("copy.jpg", jpeg.getvalue()), ("photo.png", original))
    reencoded, exact = body["results"]
    assert (reencoded["decision"], reencoded["reason"]) == ("not_permitted", "similar_only")
    assert reencoded["similar"][0]["work"] == str(work.pk)
    assert exact["decision"] == "permitted"


def test_a_phash_item_never_permits(studio, developer, check, png_file):
    work = register(studio, "cel")
    stored = content_file_add(actor=as_owner(studio), work=work, fileobj=png_file(3), filename="cel.png")
    grant_all(studio)
    phash = stored.perceptual_hashes.get().value
    _, body = check([{"phash": f"{phash & (2**64 - 1):016x}", "max_distance": 0}])
    result = body["results"][0]
    assert (result["decision"], result["reason"], result["permitted"]) == ("not_permitted", "similar_only", False)
    assert result["similar"][0]["distance"] == 0


def test_a_pattern_over_someone_elses_host_permits_nothing_and_blocks_nothing(studio, make_org, developer, check):
    squatter = make_org(name="Verified but not the host's owner")
    register(squatter, "everything", urls=["https://static.news.example/*"])
    grant_all(squatter)
    _, body = check([{"url": "https://static.news.example/photo/1.jpg"}])
    assert (body["results"][0]["decision"], body["results"][0]["reason"]) == ("unregistered", "no_match")

    prove_host(studio, "news.example")
    register(studio, "their photo", urls=["https://static.news.example/photo/1.jpg"])
    grant_all(studio)
    _, body = check([{"url": "https://static.news.example/photo/1.jpg"}])
    result = body["results"][0]
    assert result["decision"] == "permitted"
    assert [m["owner"] for m in result["matches"]] == [studio.slug]


def test_a_host_pattern_permits_once_its_owner_proves_the_host(studio, developer, check):
    register(studio, "cdn", urls=["https://cdn.aozora.example/cel/*"])
    grant_all(studio)
    item = {"url": "https://cdn.aozora.example/cel/1.png"}
    _, body = check([item])
    assert body["results"][0]["decision"] == "unregistered"

    prove_host(studio, "aozora.example")  # a DNS proof on the domain covers cdn.aozora.example
    _, body = check([item])
    assert body["results"][0]["decision"] == "permitted"


def test_an_exact_url_without_host_proof_is_registered_but_host_unverified(studio, developer, check):
    register(studio, "cel", urls=["https://cdn.aozora.example/cel/1.png"])
    grant_all(studio)
    _, body = check([{"url": "https://cdn.aozora.example/cel/1.png"}])
    assert (body["results"][0]["decision"], body["results"][0]["reason"]) == ("not_permitted", "host_unverified")

    prove_host(studio, "aozora.example", subdomains=False)  # a file on aozora.example proves only that host
    _, body = check([{"url": "https://cdn.aozora.example/cel/1.png"}])
    assert body["results"][0]["reason"] == "host_unverified"

    prove_host(studio, "cdn.aozora.example", subdomains=False)
    _, body = check([{"url": "https://cdn.aozora.example/cel/1.png"}])
    assert body["results"][0]["decision"] == "permitted"


def test_checked_is_the_normalised_key_for_every_item_kind(studio, developer, check, client_for, png_file):
    _, body = check([
        {"ref": "other-file.png", "url": "HTTPS://CDN.Example:443/a/./b/../c.png#frag"},
        {"sha256": "AB" * 32},
        {"phash": "C3A1F0E07C3C1E0F", "max_distance": 6},
        {"identifier": "isbn:4-04-102622-9"},
        {"sha256": "nope"},
    ])
    checked = [r["checked"] for r in body["results"]]
    assert checked[0] == {"url": "https://cdn.example/a/c.png"}
    assert body["results"][0]["ref"] == "other-file.png"  # ref is only an echoed label
    assert checked[1] == {"sha256": "ab" * 32}
    assert checked[2] == {"phash": "c3a1f0e07c3c1e0f", "max_distance": 6}
    assert checked[3] == {"identifier": "isbn:9784041026229"}
    assert checked[4] == {}

    data = png_file(5).getvalue()
    body = check_files(client_for(developer, ["checks"]), ("any-name.png", data))
    assert set(body["results"][0]["checked"]) == {"sha256", "phash"}
    assert len(body["results"][0]["checked"]["sha256"]) == 64


def test_each_grant_appears_once_under_grants_and_items_list_its_id(studio, developer, check):
    register(studio, "a", identifiers=["isbn:978-4-04-102622-9"])
    register(studio, "b", identifiers=["isbn:978-4-06-521925-6"])
    grant = grant_all(studio, attribution="© Aozora")
    _, body = check([{"identifier": "isbn:978-4-04-102622-9"}, {"identifier": "isbn:978-4-06-521925-6"}])
    assert [r["grants"] for r in body["results"]] == [[str(grant.pk)], [str(grant.pk)]]
    assert list(body["grants"]) == [str(grant.pk)]
    assert body["grants"][str(grant.pk)]["conditions"] == {"attribution": "© Aozora"}


def test_verify_names_whose_check_it_was(studio, developer, check, api_client):
    response, body = check([{"sha256": "a" * 64}])
    verified = api_client.post("/api/v1/receipts/verify", {
        "body": response.content.decode(), "signature": response["Receipt-Signature"],
    }, format="json").json()
    assert verified["valid"] is True and verified["kid"]
    assert verified["check_id"] == body["check_id"]
    assert verified["requester"] == developer.slug
    assert verified["checked_at"] == body["checked_at"]
    assert verified["summary"] == body["summary"]

    tampered = response.content.decode().replace('"unregistered"', '"permitted"', 1)
    refused = api_client.post("/api/v1/receipts/verify", {
        "body": tampered, "signature": response["Receipt-Signature"],
    }, format="json").json()
    assert refused["valid"] is False and "requester" not in refused


def test_a_suspended_organisation_checks_nothing(developer, client_for, reviewer):
    client = client_for(developer, ["checks"])
    organization_suspend(actor=Actor.for_user(reviewer), organization=developer, reason="abuse")
    response = client.post("/api/v1/checks", {"purpose": "train-ai", "items": [{"sha256": "a" * 64}]},
                           format="json")
    assert response.status_code in (401, 403)


def test_a_suspended_studios_works_answer_as_if_its_grants_did_not_exist(studio, developer, check, reviewer):
    register(studio, "a", identifiers=["isbn:978-4-04-102622-9"])
    grant_all(studio)
    _, body = check([{"identifier": "isbn:978-4-04-102622-9"}])
    assert body["results"][0]["decision"] == "permitted"
    organization_suspend(actor=Actor.for_user(reviewer), organization=studio, reason="abuse")
    _, body = check([{"identifier": "isbn:978-4-04-102622-9"}])
    assert body["results"][0]["permitted"] is False
    assert body["results"][0]["reason"] == "grantor_unverified"
