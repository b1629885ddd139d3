"""Disputes in the portal, for their parties: list, page, answer, withdraw, file by hand."""

from __future__ import annotations

import io

import pytest
from django.core import mail
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from registry.access import Actor
from registry.models import Dispute, DisputeEvent, EvidenceFile, Membership, Organization
from registry.services.disputes import dispute_comment, dispute_open, do_dispute_open
from registry.services.grants import do_grant_issue
from registry.services.works import do_content_file_add, do_work_register
from tests.conftest import OPERATOR, owner_of
from tests.portal.conftest import client_for

pytestmark = pytest.mark.django_db


@pytest.fixture
def rival(make_org):
    return make_org(Organization.Kind.RIGHTSHOLDER, name="Copycat Works")


@pytest.fixture
def dispute(studio, rival):
    """Studio Aozora claims that Copycat Works registered its key visual."""
    own = do_work_register(acting=OPERATOR, organization=studio, external_ref="KV-1", title="Key visual")
    copy = do_work_register(acting=OPERATOR, organization=rival, external_ref="CC-9", title="Copied visual")
    return dispute_open(
        actor=Actor.for_user(owner_of(studio)), claimant=studio, kind="ownership",
        statement="We drew this in 2019; they registered it last week.", works=[own, copy],
        evidence=[(io.BytesIO(b"%PDF-1.4 sketch"), "sketch-2019.pdf")],
    )


def test_the_list_shows_the_disputes_the_organisation_is_party_to(studio, rival, dispute, make_org, studio_client):
    third = make_org(Organization.Kind.RIGHTSHOLDER, name="Unrelated Studio")
    work_a = do_work_register(acting=OPERATOR, organization=rival, external_ref="X", title="X")
    work_b = do_work_register(acting=OPERATOR, organization=third, external_ref="Y", title="Y")
    do_dispute_open(acting=OPERATOR, claimant=third, kind="other", statement="Not yours to see.", works=[work_a,
        work_b])
    page = studio_client.get(reverse("web:disputes")).content.decode()
    assert "You claim against Copycat Works" in page
    assert "Unrelated Studio" not in page
    assert reverse("web:dispute_detail", args=[dispute.pk]) in page
    rival_page = client_for(owner_of(rival)).get(reverse("web:disputes")).content.decode()
    assert "Studio Aozora claims against you" in rival_page
    assert "Unrelated Studio claims against you" in rival_page


def test_the_list_filters_open_and_closed(studio, dispute, studio_client):
    assert "Copycat Works" in studio_client.get(reverse("web:disputes") + "?status=open").content.decode()
    assert "No disputes." in studio_client.get(reverse("web:disputes") + "?status=closed").content.decode()


def test_the_dispute_page_shows_both_sides_the_statement_the_timeline_and_the_evidence(dispute, studio_client):
    page = studio_client.get(reverse("web:dispute_detail", args=[dispute.pk])).content.decode()
    assert "We drew this in 2019; they registered it last week." in page
    assert "Claimant</h2>" not in page  # the side headings name the party
    assert "Claimant: Studio Aozora" in page and "Respondent: Copycat Works" in page
    assert "Key visual" in page and "Copied visual" in page
    assert "sketch-2019.pdf" in page
    assert 'id="timeline"' in page and "While this dispute is open, checks of its works answer disputed." in page
    assert reverse("web:dispute_withdraw", args=[dispute.pk]) in page


def test_another_organisations_dispute_is_a_404(dispute, make_org):
    outsider = make_org(Organization.Kind.RIGHTSHOLDER, name="Outsider")
    client = client_for(owner_of(outsider))
    assert client.get(reverse("web:dispute_detail", args=[dispute.pk])).status_code == 404
    assert client.post(reverse("web:dispute_comment", args=[dispute.pk]), {"message": "hi"}).status_code == 404
    assert client.post(reverse("web:dispute_withdraw", args=[dispute.pk])).status_code == 404
    evidence = EvidenceFile.objects.get(dispute=dispute)
    assert client.get(reverse("web:dispute_evidence", args=[dispute.pk, evidence.pk])).status_code == 404


def test_the_respondent_answers_with_evidence(dispute, rival):
    client = client_for(owner_of(rival))
    upload = SimpleUploadedFile("contract.pdf", b"%PDF-1.4 contract", content_type="application/pdf")
    response = client.post(reverse("web:dispute_comment", args=[dispute.pk]),
                           {"message": "We licensed it from the artist.", "evidence": [upload]})
    assert response.status_code == 302
    event = DisputeEvent.objects.get(dispute=dispute, kind=DisputeEvent.Kind.COMMENT)
    assert event.message == "We licensed it from the artist." and event.organization == rival
    assert EvidenceFile.objects.get(dispute=dispute, organization=rival).original_name == "contract.pdf"
    page = client.get(reverse("web:dispute_detail", args=[dispute.pk])).content.decode()
    assert "We licensed it from the artist." in page and "contract.pdf" in page
    # The respondent cannot withdraw someone else's claim: no button, and the page is a 404.
    assert reverse("web:dispute_withdraw", args=[dispute.pk]) not in page
    assert client.post(reverse("web:dispute_withdraw", args=[dispute.pk])).status_code == 404


def test_an_empty_answer_shows_the_error(dispute, studio_client):
    response = studio_client.post(reverse("web:dispute_comment", args=[dispute.pk]), {"message": "  "})
    assert response.status_code == 400
    assert "This field is required." in response.content.decode()


def test_evidence_is_downloaded_by_the_parties_never_shown_inline(dispute, rival):
    evidence = EvidenceFile.objects.get(dispute=dispute)
    response = client_for(owner_of(rival)).get(reverse("web:dispute_evidence", args=[dispute.pk, evidence.pk]))
    assert response.status_code == 200
    assert response["Content-Type"] == "application/octet-stream"
    assert response["Content-Disposition"] == 'attachment; filename="sketch-2019.pdf"'
    assert b"".join(response.streaming_content) == b"%PDF-1.4 sketch"


def test_the_claimant_withdraws_after_confirming(dispute, studio_client):
    confirm = studio_client.get(reverse("web:dispute_withdraw", args=[dispute.pk])).content.decode()
    assert "Withdraw the dispute?" in confirm
    response = studio_client.post(reverse("web:dispute_withdraw", args=[dispute.pk]), {"reason": "Settled."})
    assert response.status_code == 302
    dispute.refresh_from_db()
    assert dispute.status == Dispute.Status.WITHDRAWN
    page = studio_client.get(reverse("web:dispute_detail", args=[dispute.pk])).content.decode()
    assert "Withdrawn" in page and 'id="answer"' not in page


def test_a_viewer_reads_but_cannot_answer(studio, dispute, member):
    viewer = member(studio, Membership.Role.VIEWER)
    client = client_for(viewer.user)
    page = client.get(reverse("web:dispute_detail", args=[dispute.pk])).content.decode()
    assert "We drew this in 2019" in page and 'id="answer"' not in page
    assert client.post(reverse("web:dispute_comment", args=[dispute.pk]), {"message": "x"}).status_code == 403


def test_file_an_ownership_dispute_from_a_work_page(studio, rival, studio_client):
    own = do_work_register(acting=OPERATOR, organization=studio, external_ref="SA", title="Spirited Away poster")
    theirs = do_work_register(acting=OPERATOR, organization=rival, external_ref="P1", title="Poster",
                           identifiers=["isbn:978-4-06-182623-6"])
    assert reverse("web:dispute_new") + f"?work={own.pk}" in studio_client.get(
        reverse("web:work_detail", args=[own.pk])).content.decode()
    form = studio_client.get(reverse("web:dispute_new") + f"?work={own.pk}").content.decode()
    assert "Spirited Away poster" in form
    mail.outbox.clear()
    response = studio_client.post(reverse("web:dispute_new"), {
        "work": str(own.pk), "kind": "ownership", "other_work": "ISBN:9784061826236",
        "statement": "This poster is ours.",
        "evidence": [SimpleUploadedFile("poster.psd", b"layers", content_type="image/vnd.adobe.photoshop")],
    })
    dispute = Dispute.objects.get()
    assert response.status_code == 302 and response["Location"] == reverse("web:dispute_detail", args=[dispute.pk])
    assert (dispute.kind, dispute.claimant, dispute.respondent) == ("ownership", studio, rival)
    sides = set(dispute.dispute_works.values_list("work_id", "side"))
    assert sides == {(own.pk, "claimant"), (theirs.pk, "respondent")}
    assert EvidenceFile.objects.get(dispute=dispute).original_name == "poster.psd"


def test_filing_names_an_unknown_reference(studio, studio_client):
    own = do_work_register(acting=OPERATOR, organization=studio, external_ref="SA", title="Spirited Away")
    response = studio_client.post(reverse("web:dispute_new"), {
        "work": str(own.pk), "kind": "ownership", "other_work": "isbn:978-4-06-182623-6", "statement": "Ours.",
    })
    assert response.status_code == 200
    assert "No other organisation" in response.content.decode()
    assert "active work has this reference." in response.content.decode()
    assert not Dispute.objects.exists()


def test_our_own_work_is_not_the_other_side(studio, studio_client):
    own = do_work_register(acting=OPERATOR, organization=studio, external_ref="SA", title="Spirited Away")
    response = studio_client.post(reverse("web:dispute_new"), {
        "work": str(own.pk), "kind": "ownership", "other_work": str(own.pk), "statement": "Ours.",
    })
    assert "active work has this reference" in response.content.decode()
    assert not Dispute.objects.exists()


def test_a_developer_disputes_a_grant_made_out_to_it(studio, developer, developer_client):
    work = do_work_register(acting=OPERATOR, organization=studio, external_ref="SA", title="Spirited Away")
    grant = do_grant_issue(acting=OPERATOR, grantor=studio, scope="work", work=work, licensee=developer,
                        purposes=["train-genai"])
    dashboard = developer_client.get(reverse("web:developer_dashboard")).content.decode()
    assert reverse("web:dispute_new") + f"?grant={grant.pk}" in dashboard
    response = developer_client.post(reverse("web:dispute_new"), {
        "grant": str(grant.pk), "kind": "grant_validity", "statement": "The artist never agreed to this grant.",
    })
    dispute = Dispute.objects.get()
    assert response.status_code == 302
    assert (dispute.kind, dispute.claimant, dispute.respondent) == ("grant_validity", developer, studio)
    assert list(dispute.works.all()) == [work]
    assert "Acme AI claims against you" in client_for(owner_of(studio)).get(
        reverse("web:disputes")).content.decode()


def test_a_grant_we_issued_is_not_disputed_by_us(studio, developer, studio_client):
    work = do_work_register(acting=OPERATOR, organization=studio, external_ref="SA", title="Spirited Away")
    grant = do_grant_issue(acting=OPERATOR, grantor=studio, scope="work", work=work, licensee=developer,
                        purposes=["train-genai"])
    assert studio_client.get(reverse("web:dispute_new") + f"?grant={grant.pk}").status_code == 404
    assert studio_client.get(reverse("web:dispute_new") + "?grant=not-a-uuid").status_code == 404


def test_disputes_are_linked_from_the_studio_nav_and_dashboard(dispute, studio_client):
    page = studio_client.get(reverse("web:studio_dashboard")).content.decode()
    assert f'href="{reverse("web:disputes")}"' in page
    assert reverse("web:dispute_detail", args=[dispute.pk]) in page


def test_dispute_pages_in_japanese(studio, rival, dispute):
    dispute_comment(actor=Actor.for_user(owner_of(rival)), dispute=dispute, message="反論します。")
    client = client_for(owner_of(studio), language="ja")
    listing = client.get(reverse("web:disputes")).content.decode()
    assert "紛争" in listing and "Copycat Works への申し立て" in listing
    page = client.get(reverse("web:dispute_detail", args=[dispute.pk])).content.decode()
    assert "申立人: Studio Aozora" in page and "相手方: Copycat Works" in page
    assert "経過" in page and "証拠資料" in page and "反論します。" in page
    assert "申し立てを取り下げる" in page
    new = client.get(reverse("web:dispute_new") + f"?work={dispute.works.filter(owner=studio).get().pk}")
    assert "紛争を申し立てる" in new.content.decode()


def test_file_a_dispute_from_the_list_naming_only_the_other_work(studio, rival, studio_client):
    theirs = do_work_register(acting=OPERATOR, organization=rival, external_ref="P1", title="Poster")
    assert f'href="{reverse("web:dispute_new")}"' in studio_client.get(reverse("web:disputes")).content.decode()
    studio_client.post(reverse("web:dispute_new"), {
        "kind": "other", "other_work": str(theirs.pk), "statement": "The credits are wrong.",
    })
    dispute = Dispute.objects.get()
    assert (dispute.kind, dispute.claimant, dispute.respondent) == ("other", studio, rival)
    assert list(dispute.dispute_works.values_list("work_id", "side")) == [(theirs.pk, "respondent")]


def test_a_conflict_kyoka_opened_shows_kyoka_in_the_timeline(studio, rival, studio_client):
    do_work_register(acting=OPERATOR, organization=studio, external_ref="A", title="A",
                  identifiers=["isbn:978-4-06-182623-6"])
    do_work_register(acting=OPERATOR, organization=rival, external_ref="B", title="B",
                  identifiers=["isbn:978-4-06-182623-6"])
    dispute = Dispute.objects.get()
    page = studio_client.get(reverse("web:dispute_detail", args=[dispute.pk])).content.decode()
    assert "Opened by Kyoka: the registrations conflict." in page
    listing = studio_client.get(reverse("web:disputes")).content.decode()
    assert "opened by Kyoka" in listing


# --- what each side sees, and how much one may file ----------------------------------------

ISBN = "isbn:978-4-06-182623-6"
URL = "https://copycat.example/visual.png"


@pytest.fixture
def conflict(studio, rival, png_file):
    """Kyoka's own dispute: both register the same identifier, each with references of its own."""
    own = do_work_register(acting=OPERATOR, organization=studio, external_ref="KV-1", title="Key visual",
                           identifiers=[ISBN], urls=["https://aozora.example/kv.png"])
    own_file = do_content_file_add(acting=OPERATOR, work=own, fileobj=png_file(1), filename="kv.png")
    copy = do_work_register(acting=OPERATOR, organization=rival, external_ref="CC-9", title="Copied visual",
                            identifiers=[ISBN], urls=[URL])
    copy_file = do_content_file_add(acting=OPERATOR, work=copy, fileobj=png_file(2), filename="copy.png")
    return Dispute.objects.get(), own_file, copy_file


def test_a_party_sees_its_own_references_and_only_the_other_sides_titles(conflict, studio, rival, reviewer):
    dispute, own_file, copy_file = conflict
    page = client_for(owner_of(studio)).get(reverse("web:dispute_detail", args=[dispute.pk])).content.decode()
    assert own_file.sha256 in page and "https://aozora.example/kv.png" in page and "KV-1" in page
    assert "Copied visual" in page
    assert copy_file.sha256 not in page and URL not in page
    assert "shown only to reviewers" in page
    other = client_for(owner_of(rival)).get(reverse("web:dispute_detail", args=[dispute.pk])).content.decode()
    assert copy_file.sha256 in other and URL in other and "Key visual" in other
    assert own_file.sha256 not in other and "https://aozora.example/kv.png" not in other
    desk = client_for(reviewer).get(f"/desk/disputes/{dispute.pk}/").content.decode()
    assert all(value in desk for value in (own_file.sha256, copy_file.sha256, URL, "https://aozora.example/kv.png"))


def test_a_claimant_without_standing_is_told_its_dispute_freezes_nothing(make_org, studio):
    theirs = do_work_register(acting=OPERATOR, organization=studio, external_ref="P1", title="Poster")
    newcomer = make_org(verified=False, name="Fresh Sign-up")
    client = client_for(owner_of(newcomer))
    response = client.post(reverse("web:dispute_new"), {
        "kind": "ownership", "other_work": str(theirs.pk), "statement": "Ours.",
    }, follow=True)
    page = response.content.decode()
    assert "freezes nothing until a reviewer starts its review" in page
    assert "This dispute waits for a reviewer." in page
    assert "checks of its works answer disputed." not in page


@pytest.mark.parametrize("language,message", [
    ("en", "already has 10 open disputes"),
    ("ja", "未解決の異議申立てがすでに10件あります"),
])
def test_an_eleventh_open_dispute_is_refused_on_the_form(studio, rival, language, message):
    theirs = do_work_register(acting=OPERATOR, organization=rival, external_ref="P1", title="Poster")
    for n in range(10):
        do_dispute_open(acting=OPERATOR, claimant=studio, kind="other", statement=f"Claim {n}", works=[theirs])
    client = client_for(owner_of(studio), language=language)
    response = client.post(reverse("web:dispute_new"), {
        "kind": "other", "other_work": str(theirs.pk), "statement": "One more.",
    })
    assert response.status_code == 200
    assert message in response.content.decode()
    assert Dispute.objects.count() == 10
