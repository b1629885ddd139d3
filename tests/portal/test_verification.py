"""An organisation asks to be verified in the product; a reviewer answers on the desk; the requester is told."""

from __future__ import annotations

import pytest
from django.core import mail
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from rest_framework.test import APIClient

from registry.access import Actor
from registry.models import Membership, VerificationRequest
from registry.services.api_keys import api_key_create
from tests.conftest import owner_of
from tests.factories import make_image_bytes
from tests.portal.conftest import client_for

pytestmark = pytest.mark.django_db

# A real-shaped 法人番号: check digit 5 over 835678256246.
CORPORATE_NUMBER = "5835678256246"
PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"


@pytest.fixture
def new_studio(make_org):
    return make_org(name="さくらスタジオ", verified=False)


@pytest.fixture
def new_studio_client(new_studio):
    return client_for(owner_of(new_studio))


def submit(client, **fields):
    data = {"legal_name": "株式会社さくらスタジオ", "country": "JP", "registration_number": CORPORATE_NUMBER,
            "website": "sakura.example.jp", "contact_email": "legal@sakura.example.jp",
            "evidence": [SimpleUploadedFile("registry-extract.pdf", PDF, content_type="application/pdf")]}
    return client.post(reverse("web:verification"), {**data, **fields})


def test_the_banner_and_dashboard_lead_an_unverified_studio_to_the_request(new_studio_client):
    page = new_studio_client.get(reverse("web:studio_dashboard")).content.decode()
    assert 'id="ask-verification"' in page and reverse("web:verification") in page
    assert "no verification has been requested" in page


def test_a_studio_asks_to_be_verified_and_sees_it_pending(new_studio, new_studio_client):
    response = submit(new_studio_client)
    assert response.status_code == 302
    request = VerificationRequest.objects.get(organization=new_studio)
    assert (request.status, request.registration_number, request.website) == (
        "pending", CORPORATE_NUMBER, "https://sakura.example.jp")
    assert [e.original_name for e in request.evidence.all()] == ["registry-extract.pdf"]
    dashboard = new_studio_client.get(reverse("web:studio_dashboard")).content.decode()
    assert 'data-status="pending"' in dashboard and "a reviewer will look at it" in dashboard
    again = new_studio_client.get(reverse("web:verification")).content.decode()
    assert 'id="verification-form"' not in again


def test_a_corporate_number_with_a_wrong_check_digit_is_refused(new_studio, new_studio_client):
    response = submit(new_studio_client, registration_number="6835678256246")
    assert response.status_code == 200
    page = response.content.decode()
    assert "Not a valid corporate number" in page
    assert "choose your files again" in page
    assert not VerificationRequest.objects.exists()


def test_a_corporate_number_is_only_checked_for_japan(new_studio, new_studio_client):
    assert submit(new_studio_client, country="GB", registration_number="SC123456", evidence=[]).status_code == 302
    assert VerificationRequest.objects.get().registration_number == "SC123456"


def test_evidence_must_be_a_pdf_or_an_image(new_studio_client):
    fake = SimpleUploadedFile("extract.pdf", b"MZ\x90\x00 not a pdf", content_type="application/pdf")
    response = submit(new_studio_client, evidence=[fake])
    assert "extract.pdf: not a PDF or an image" in response.content.decode()
    assert not VerificationRequest.objects.exists()


def test_a_viewer_sees_the_state_but_cannot_ask(new_studio, member):
    viewer = client_for(member(new_studio, Membership.Role.VIEWER).user)
    page = viewer.get(reverse("web:verification")).content.decode()
    assert "Only an owner" in page and 'id="verification-form"' not in page
    assert submit(viewer).status_code == 200
    assert not VerificationRequest.objects.exists()


def test_a_reviewer_verifies_from_the_desk_queue_and_the_studio_is_told(new_studio, new_studio_client, reviewer,
                                                                       django_capture_on_commit_callbacks):
    submit(new_studio_client)
    request = VerificationRequest.objects.get()
    desk = client_for(reviewer)
    queue = desk.get(reverse("desk:verification-queue")).content.decode()
    assert "さくらスタジオ" in queue and CORPORATE_NUMBER in queue and "registry-extract.pdf" in queue
    mail.outbox.clear()
    with django_capture_on_commit_callbacks(execute=True):
        desk.post(reverse("desk:verification-approve", args=[request.pk]), {"note": "法人番号 checked"})
    new_studio.refresh_from_db()
    assert new_studio.is_verified
    recipients = sorted(to for message in mail.outbox for to in message.to)
    assert recipients == sorted([owner_of(new_studio).email, "legal@sakura.example.jp"])
    dashboard = new_studio_client.get(reverse("web:studio_dashboard")).content.decode()
    assert 'data-status="verified"' in dashboard and 'id="verification-banner"' not in dashboard
    assert "Nobody is waiting." in desk.get(reverse("desk:verification-queue")).content.decode()


def test_a_rejection_reason_reaches_the_dashboard_and_the_studio_may_ask_again(new_studio, new_studio_client,
                                                                              reviewer):
    submit(new_studio_client)
    request = VerificationRequest.objects.get()
    client_for(reviewer).post(reverse("desk:verification-reject", args=[request.pk]),
                              {"reason": "The registry extract is for another company."})
    dashboard = new_studio_client.get(reverse("web:studio_dashboard")).content.decode()
    assert 'data-status="rejected"' in dashboard and "The registry extract is for another company." in dashboard
    assert submit(new_studio_client).status_code == 302
    assert VerificationRequest.objects.filter(status="pending").count() == 1


def test_the_desk_queue_is_for_reviewers_only(new_studio_client, make_user):
    staff = client_for(make_user("staff@example.com", is_staff=True))
    assert staff.get(reverse("desk:verification-queue")).status_code == 403
    assert new_studio_client.get(reverse("desk:verification-queue")).status_code == 403


# --- the API --------------------------------------------------------------------------------


def test_an_owner_asks_through_the_api_and_reads_the_request_back(new_studio):
    api = APIClient()
    api.force_login(owner_of(new_studio))
    image = SimpleUploadedFile("sign.png", make_image_bytes(3), content_type="image/png")
    response = api.post("/api/v1/verification-requests", {
        "legal_name": "株式会社さくらスタジオ", "country": "JP", "registration_number": "5-8356-7825-6246",
        "website": "sakura.example.jp", "evidence": [image],
    }, format="multipart")
    assert response.status_code == 201, response.content
    data = response.json()
    assert (data["status"], data["registration_number"], data["website"], data["evidence"]) == (
        "pending", CORPORATE_NUMBER, "https://sakura.example.jp", ["sign.png"])
    listed = api.get("/api/v1/verification-requests").json()["results"]
    assert [r["id"] for r in listed] == [data["id"]]
    second = api.post("/api/v1/verification-requests", {"legal_name": "again"}, format="json")
    assert second.status_code == 409 and second.json()["error"]["code"] == "conflict"


def test_the_api_refuses_a_bad_corporate_number_with_the_field_named(new_studio):
    api = APIClient()
    api.force_login(owner_of(new_studio))
    response = api.post("/api/v1/verification-requests", {
        "legal_name": "株式会社さくらスタジオ", "country": "JP", "registration_number": "1234567890123"},
        format="json")
    assert response.status_code == 400
    assert "registration_number" in response.json()["error"]["fields"]
    assert not VerificationRequest.objects.exists()


def test_an_api_key_cannot_ask_for_verification(new_studio):
    _, secret = api_key_create(actor=Actor.for_user(owner_of(new_studio)), organization=new_studio,
                               scopes=["works:write"])
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")
    response = api.post("/api/v1/verification-requests", {"legal_name": "x"}, format="json")
    assert response.status_code == 403
    assert not VerificationRequest.objects.exists()
