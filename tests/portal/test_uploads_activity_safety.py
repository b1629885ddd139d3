"""Bulk upload pages, the activity chart, and the portal's safety nets (CSRF, cookies, object-level checks)."""

from __future__ import annotations

import pytest
from django.conf import settings
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse

from registry.access import Actor
from registry.decisions.run import check_run
from registry.models import BulkUpload
from registry.services.grants import do_grant_issue
from registry.services.uploads import bulk_upload_process, bulk_upload_start
from registry.services.works import do_content_file_add, do_work_register
from tests.conftest import OPERATOR, owner_of
from tests.portal.conftest import client_for

pytestmark = pytest.mark.django_db

MANIFEST = b"external_ref,title,kind\nA-1,First,image\n,No reference,image\n"


def test_upload_page_starts_an_upload_through_the_service(studio, studio_client):
    response = studio_client.post(reverse("web:uploads"), {
        "manifest": SimpleUploadedFile("catalog.csv", MANIFEST, content_type="text/csv")})
    upload = BulkUpload.objects.get(organization=studio)
    assert response["Location"] == reverse("web:upload_detail", args=[upload.pk])
    page = studio_client.get(response["Location"]).content.decode()
    assert 'hx-trigger="every 1s"' in page  # still running: the fragment polls


def test_finished_upload_stops_polling_and_links_the_error_report(studio, studio_client):
    upload = bulk_upload_start(actor=Actor.for_user(owner_of(studio)), organization=studio,
                               manifest=SimpleUploadedFile("catalog.csv", MANIFEST))
    bulk_upload_process(upload_id=str(upload.pk))
    fragment = studio_client.get(reverse("web:upload_detail", args=[upload.pk]), HTTP_HX_REQUEST="true")
    html = fragment.content.decode()
    assert html.lstrip().startswith('<section class="card" id="upload-progress"')
    assert "hx-trigger" not in html and 'value="100"' in html
    report = b"".join(studio_client.get(reverse("web:upload_errors", args=[upload.pk])).streaming_content)
    assert "external_ref" in report.decode("utf-8-sig").splitlines()[1]


def test_another_organisations_upload_is_a_404(studio, make_org, studio_client):
    other = make_org(name="Other Studio")
    upload = bulk_upload_start(actor=Actor.for_user(owner_of(other)), organization=other,
        manifest=SimpleUploadedFile("c.csv", MANIFEST))
    assert studio_client.get(reverse("web:upload_detail", args=[upload.pk])).status_code == 404
    assert studio_client.get(reverse("web:upload_errors", args=[upload.pk])).status_code == 404
    assert studio_client.post(reverse("web:upload_cancel", args=[upload.pk])).status_code == 404
    upload.refresh_from_db()
    assert upload.status == BulkUpload.Status.PENDING


def test_activity_shows_checks_per_day_and_top_requesters(studio, developer, studio_client, png_file):
    work = do_work_register(acting=OPERATOR, organization=studio, external_ref="SA", title="Spirited Away")
    content_file = do_content_file_add(acting=OPERATOR, work=work, fileobj=png_file(1), filename="a.png")
    do_grant_issue(acting=OPERATOR, grantor=studio, scope="work", work=work, licensee=developer, purposes=["train-ai"])
    check_run(actor=Actor.for_user(owner_of(developer)), organization=developer, purpose="train-genai",
              items=[{"sha256": content_file.sha256}])
    page = studio_client.get(reverse("web:activity")).content.decode()
    assert 'class="bar-permitted"' in page
    assert "Acme AI" in page and "Spirited Away" in page
    ja = client_for(owner_of(studio), language="ja").get(reverse("web:activity")).content.decode()
    assert "確認の多い組織" in ja
    assert "Highest day: 1" in page


def test_a_quiet_dashboard_says_no_checks_rather_than_a_peak(studio, studio_client):
    page = studio_client.get(reverse("web:studio_dashboard")).content.decode()
    assert "No checks in this period." in page and "Highest day" not in page


def test_forms_refuse_a_post_without_the_csrf_token(studio):
    client = Client(enforce_csrf_checks=True)
    client.force_login(owner_of(studio))
    response = client.post(reverse("web:work_register"), {"title": "X", "external_ref": "X", "kind": "image"})
    assert response.status_code == 403
    assert 'name="csrfmiddlewaretoken"' in client.get(reverse("web:work_register")).content.decode()


def test_cookies_are_secure_outside_debug():
    assert settings.DEBUG is False
    assert settings.SESSION_COOKIE_SECURE and settings.CSRF_COOKIE_SECURE and settings.LANGUAGE_COOKIE_SECURE
    assert settings.SESSION_COOKIE_HTTPONLY


def test_api_docs_keep_working_under_the_policy(client):
    policy = client.get("/api/docs/")["Content-Security-Policy"]
    assert "'unsafe-inline'" in policy  # Swagger UI's own inline start-up script, on that page only
    assert "'unsafe-inline'" not in client.get("/")["Content-Security-Policy"]


def test_viewers_see_but_cannot_register(studio, member):
    viewer = client_for(member(studio, "viewer").user)
    assert viewer.get(reverse("web:catalog")).status_code == 200
    assert viewer.get(reverse("web:work_register")).status_code == 403
