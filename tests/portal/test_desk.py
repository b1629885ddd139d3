"""The administrators' desk: staff only; the queue, a dispute side by side, verification, histories."""

from __future__ import annotations

import io

import pytest
from django.test import Client
from PIL import Image, ImageDraw

from registry.access import Actor
from registry.models import Dispute, Organization, SimilarityFlag, VerificationRequest, Work
from registry.services.api_keys import do_api_key_create
from registry.services.disputes import dispute_comment, dispute_open
from registry.services.grants import do_grant_issue
from registry.services.verification import verification_request_submit
from registry.services.works import do_content_file_add, do_work_register
from tests.conftest import OPERATOR, owner_of
from tests.factories import make_image_bytes

pytestmark = pytest.mark.django_db


ISBN = "isbn:978-4-04-102622-9"


def register_image(org: Organization, ref: str, *, seed: int = 1, fmt: str = "PNG", **refs) -> Work:
    work = do_work_register(
        acting=OPERATOR, organization=org, external_ref=ref, title=f"Cel {ref}", kind="image", **refs
    )
    data = io.BytesIO(make_image_bytes(seed, fmt=fmt, quality=70))
    do_content_file_add(acting=OPERATOR, work=work, fileobj=data, filename=f"{ref}.{fmt.lower()}")
    return work


@pytest.fixture
def rival(make_org) -> Organization:
    return make_org(Organization.Kind.RIGHTSHOLDER, name="Rival Pictures")


@pytest.fixture
def dispute(studio, rival) -> Dispute:
    """Kyoka's own dispute: the same identifier on two files that look alike."""
    register_image(studio, "A-1", identifiers=[ISBN])
    register_image(rival, "R-1", fmt="JPEG", identifiers=[ISBN])
    return Dispute.objects.get()


@pytest.fixture
def desk(reviewer) -> Client:
    client = Client()
    client.force_login(reviewer)
    return client


def pages(dispute: Dispute) -> list[str]:
    work = dispute.works.first()
    return [
        "/desk/",
        f"/desk/disputes/{dispute.pk}/",
        "/desk/organizations/",
        f"/desk/organizations/{dispute.claimant_id}/",
        f"/desk/history/work/{work.pk}/",
        f"/desk/history/organization/{dispute.respondent_id}/",
        f"/desk/files/{work.files.get().pk}",
    ]


def test_signed_out_visitors_are_sent_to_log_in(dispute):
    for url in pages(dispute):
        response = Client().get(url)
        assert response.status_code == 302, url
        assert "login" in response["Location"] and "next=" in response["Location"]


def test_people_who_are_not_staff_are_refused(dispute, studio):
    client = Client()
    client.force_login(owner_of(studio))
    for url in pages(dispute):
        assert client.get(url).status_code == 403, url
    response = client.post(f"/desk/disputes/{dispute.pk}/start-review")
    assert response.status_code == 403
    assert Dispute.objects.get().status == "open"


def test_every_page_loads_for_a_reviewer(dispute, desk):
    for url in pages(dispute):
        assert desk.get(url).status_code == 200, url


@pytest.mark.parametrize("language,heading", [("en", "The works, side by side"), ("ja", "作品の比較")])
def test_the_desk_speaks_english_and_japanese(dispute, desk, language, heading):
    response = desk.get(f"/desk/disputes/{dispute.pk}/", HTTP_ACCEPT_LANGUAGE=language)
    assert response.status_code == 200
    body = response.content.decode()
    assert f'<html lang="{language}">' in body
    assert heading in body


def test_the_queue_lists_open_disputes_and_filters_them(dispute, desk, reviewer):
    body = desk.get("/desk/").content.decode()
    assert f"/desk/disputes/{dispute.pk}/" in body and "Rival Pictures" in body
    assert f"/desk/disputes/{dispute.pk}/" in desk.get("/desk/?kind=ownership&assignee=none").content.decode()
    for query in ("kind=grant_validity", "status=upheld", "assignee=me", "age=7d"):
        assert f"/desk/disputes/{dispute.pk}/" not in desk.get(f"/desk/?{query}").content.decode(), query


def test_the_dispute_page_shows_both_sides_with_hashes_and_distance(dispute, desk):
    body = desk.get(f"/desk/disputes/{dispute.pk}/").content.decode()
    claimant_file, respondent_file = (
        dispute.works.get(owner=dispute.claimant).files.get(),
        dispute.works.get(owner=dispute.respondent).files.get(),
    )
    for content_file in (claimant_file, respondent_file):
        assert content_file.sha256 in body
        assert f"/desk/files/{content_file.pk}" in body
    assert "Studio Aozora" in body and "Rival Pictures" in body
    assert "/ 64" in body  # the perceptual hash distance between the two
    image = desk.get(f"/desk/files/{claimant_file.pk}")
    assert image["Content-Type"] == "image/png"
    assert b"".join(image.streaming_content).startswith(b"\x89PNG")


def test_a_reviewer_runs_a_dispute_from_the_desk(dispute, desk, rival):
    copy = dispute.works.get(owner=rival)
    grant = do_grant_issue(acting=OPERATOR, grantor=rival, scope="work", work=copy, purposes=["train-ai"])
    url = f"/desk/disputes/{dispute.pk}"
    assert desk.post(f"{url}/assign", {"assignee": "me"}).status_code == 302
    desk.post(f"{url}/request-info", {"message": "Your source files?", "party": rival.pk})
    desk.post(f"{url}/start-review")
    response = desk.post(
        f"{url}/decide", {"outcome": "upheld", "remedy": "withdraw", "reason": "The studio's cel."}, follow=True
    )
    assert response.status_code == 200
    assert "Decision recorded and applied." in response.content.decode()
    dispute.refresh_from_db()
    assert (dispute.status, dispute.remedy) == ("upheld", "withdraw")
    assert Work.objects.get(pk=copy.pk).status == "withdrawn"
    grant.refresh_from_db()
    assert grant.revoked_at is not None
    body = desk.get(f"{url}/").content.decode()
    assert "Your source files?" in body and "The studio&#x27;s cel." in body


def test_a_refused_action_is_explained_not_crashed(dispute, desk):
    response = desk.post(f"/desk/disputes/{dispute.pk}/decide", {"outcome": "upheld", "reason": "x"}, follow=True)
    assert response.status_code == 200
    assert "cannot become upheld" in response.content.decode()
    assert Dispute.objects.get().status == "open"


def test_staff_who_are_not_reviewers_are_refused_like_anyone_else(dispute, make_user, studio):
    """Disputes, evidence and files are the parties' papers: staff status alone reads none of them."""
    svg = io.BytesIO(b"%PDF-1.4 private")
    dispute_comment(actor=Actor.for_user(owner_of(studio)), dispute=dispute, message="See.", evidence=[(svg, "p.pdf")])
    client = Client()
    client.force_login(make_user(is_staff=True))
    for url in [*pages(dispute), f"/desk/evidence/{dispute.evidence.get().pk}", "/desk/flags/"]:
        assert client.get(url).status_code == 403, url
    assert client.post(f"/desk/disputes/{dispute.pk}/start-review").status_code == 403
    assert Dispute.objects.get().status == "open"


def test_evidence_is_downloaded_never_shown_inline(dispute, desk, studio):
    svg = io.BytesIO(b"<svg xmlns='http://www.w3.org/2000/svg'><script>alert(1)</script></svg>")
    dispute_comment(actor=Actor.for_user(owner_of(studio)), dispute=dispute, message="See.", evidence=[(svg, "x.svg")])
    evidence = dispute.evidence.get()
    response = desk.get(f"/desk/evidence/{evidence.pk}")
    assert response["Content-Type"] == "application/octet-stream"
    assert response["Content-Disposition"].startswith("attachment")


def test_a_reviewer_verifies_an_organisation_from_the_desk(make_org, desk, reviewer):
    newcomer = make_org(verified=False, name="Studio Hoshi")
    request = verification_request_submit(
        actor=Actor.for_user(owner_of(newcomer)), organization=newcomer, legal_name="KK Hoshi",
        evidence=[(io.BytesIO(b"%PDF-1.4 registry extract"), "touki.pdf")],
    )
    listing = desk.get("/desk/organizations/").content.decode()
    assert "KK Hoshi" in listing and f"/desk/organizations/{newcomer.pk}/" in listing
    page = desk.get(f"/desk/organizations/{newcomer.pk}/").content.decode()
    assert "touki.pdf" in page and f"/desk/verification/{request.pk}/approve" in page

    desk.post(f"/desk/verification/{request.pk}/approve", {"note": "Matches the commercial register."})

    newcomer.refresh_from_db()
    assert newcomer.verified_by == reviewer
    assert VerificationRequest.objects.get().status == "verified"


def test_a_reviewer_suspends_an_organisation_and_a_key(studio, desk):
    api_key, _ = do_api_key_create(acting=OPERATOR, organization=studio, scopes=["checks"])
    desk.post(f"/desk/keys/{api_key.pk}/suspend", {"reason": "Leaked on a forum."})
    desk.post(f"/desk/organizations/{studio.pk}/suspend", {"reason": "Fraud."})
    api_key.refresh_from_db()
    studio.refresh_from_db()
    assert api_key.suspended_at is not None and studio.suspended_at is not None
    desk.post(f"/desk/organizations/{studio.pk}/unsuspend", {"reason": "Cleared."})
    studio.refresh_from_db()
    assert studio.suspended_at is None


def test_a_works_history_shows_its_registration_grants_and_disputes_on_one_page(dispute, desk, studio):
    original = dispute.works.get(owner=studio)
    grant = do_grant_issue(acting=OPERATOR, grantor=studio, scope="work", work=original, purposes=["search"])
    body = desk.get(f"/desk/history/work/{original.pk}/").content.decode()
    for action in ("work.register", "work.file_add", "grant.issue", "dispute.open"):
        assert action in body, action
    grant_page = desk.get(f"/desk/history/grant/{grant.pk}/").content.decode()
    assert "grant.issue" in grant_page and "work.register" not in grant_page


def test_an_organisations_history_is_found_by_slug(dispute, desk, rival):
    response = desk.get("/desk/history/", {"type": "organization", "id": rival.slug})
    assert response["Location"] == f"/desk/history/organization/{rival.pk}/"
    body = desk.get(response["Location"]).content.decode()
    assert "organization.create" in body and "dispute.open" in body


def test_an_unknown_history_is_not_found(desk):
    assert desk.get("/desk/history/work/not-a-uuid/").status_code == 404
    assert desk.get("/desk/history/receipt/1/").status_code == 404


# --- triage and similarity flags -------------------------------------------------------------


def test_a_dispute_that_freezes_nothing_shows_in_the_queue_as_not_freezing(studio, make_org, desk):
    work = do_work_register(acting=OPERATOR, organization=studio, external_ref="KV-1", title="Key visual")
    newcomer = make_org(verified=False, name="Fresh Sign-up")
    dispute = dispute_open(actor=Actor.for_user(owner_of(newcomer)), claimant=newcomer, kind="ownership",
                           statement="Ours.", works=[work])
    for language, label in (("en", "not freezing"), ("ja", "凍結なし")):
        queue = desk.get("/desk/", HTTP_ACCEPT_LANGUAGE=language).content.decode()
        assert label in queue, language
        assert label in desk.get(f"/desk/disputes/{dispute.pk}/", HTTP_ACCEPT_LANGUAGE=language).content.decode()
    desk.post(f"/desk/disputes/{dispute.pk}/start-review")
    assert "not freezing" not in desk.get("/desk/").content.decode()


def stamped(seed: int, corner: int) -> bytes:
    image = Image.open(io.BytesIO(make_image_bytes(seed))).convert("RGB")
    ImageDraw.Draw(image).rectangle((0, 0, corner, corner * 3 // 4), fill=(255, 255, 255))
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def register_bytes(org: Organization, ref: str, data: bytes) -> Work:
    work = do_work_register(acting=OPERATOR, organization=org, external_ref=ref, title=f"Cel {ref}", kind="image")
    do_content_file_add(acting=OPERATOR, work=work, fileobj=io.BytesIO(data), filename=f"{ref}.png")
    return work


def test_the_flags_page_lists_pairs_closest_first_with_both_images(studio, rival, desk):
    register_bytes(studio, "A-1", make_image_bytes(3))
    register_bytes(rival, "FAR", stamped(3, 20))
    register_bytes(rival, "NEAR", stamped(3, 10))
    far, near = SimilarityFlag.objects.order_by("-distance")
    assert far.distance > near.distance
    response = desk.get("/desk/flags/")
    assert response.status_code == 200
    body = response.content.decode()
    assert body.index(f'id="flag-{near.pk}"') < body.index(f'id="flag-{far.pk}"')
    for flag in (near, far):
        for work in (flag.work_a, flag.work_b):
            assert f"/desk/files/{work.files.get().pk}" in body and work.title in body
    assert "類似画像" in desk.get("/desk/flags/", HTTP_ACCEPT_LANGUAGE="ja").content.decode()


def test_a_reviewer_dismisses_a_flag_or_opens_a_dispute_from_it(studio, rival, desk):
    register_bytes(studio, "A-1", make_image_bytes(3))
    register_bytes(rival, "R-1", stamped(3, 20))
    register_bytes(rival, "R-2", stamped(3, 10))
    first, second = SimilarityFlag.objects.order_by("pk")
    response = desk.post(f"/desk/flags/{first.pk}/dismiss", follow=True)
    assert "Flag dismissed." in response.content.decode()
    assert f'id="flag-{first.pk}"' not in desk.get("/desk/flags/").content.decode()
    response = desk.post(f"/desk/flags/{second.pk}/escalate", {"statement": "Traced from the key visual."})
    dispute = Dispute.objects.get()
    assert response["Location"] == f"/desk/disputes/{dispute.pk}/"
    assert dispute.statement == "Traced from the key visual."
    second.refresh_from_db()
    assert (first.__class__.objects.get(pk=first.pk).status, second.status) == ("dismissed", "escalated")


def test_the_desk_link_is_for_reviewers_only(reviewer, make_user):
    staff = Client()
    staff.force_login(make_user(is_staff=True))
    page = staff.get("/verify/")
    assert page.status_code == 200 and 'id="desk-link"' not in page.content.decode()
    desk_user = Client()
    desk_user.force_login(reviewer)
    assert 'id="desk-link"' in desk_user.get("/verify/").content.decode()


def test_the_queue_filters_by_status_in_the_readers_words(reviewer):
    from django.test import Client
    from django.urls import reverse

    client = Client(HTTP_ACCEPT_LANGUAGE="ja")
    client.force_login(reviewer)
    page = client.get(reverse("desk:queue")).content.decode()
    options = page[page.index('name="status"'):page.index("</select>", page.index('name="status"'))]
    assert '<option value="under_review">審査中</option>' in options and "<span" not in options
