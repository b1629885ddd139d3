"""The portal's pages render, in both languages, and call the registry's services."""

from __future__ import annotations

import json
import re

import pytest
from django.urls import reverse

from registry.models import Grant, Organization, Work
from registry.receipts import verify_receipt
from registry.services.grants import do_grant_issue
from registry.services.works import do_content_file_add, do_work_register
from tests.conftest import OPERATOR, owner_of
from tests.portal.conftest import client_for

pytestmark = pytest.mark.django_db


def test_landing_explains_the_opt_in_principle(client):
    page = client.get("/", HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert "No record is not permission." in page


def test_landing_in_japanese_from_the_browser(client):
    response = client.get("/", HTTP_ACCEPT_LANGUAGE="ja")
    assert response["Content-Language"] == "ja"
    assert "記録がないことは、許可ではありません。" in response.content.decode()


def test_language_switcher_sets_the_language(client):
    response = client.post(reverse("web:set_language"), {"language": "ja", "next": "/"}, follow=True)
    assert 'lang="ja"' in response.content.decode()


def test_pages_carry_a_content_security_policy(client):
    policy = client.get("/")["Content-Security-Policy"]
    assert "script-src 'self'" in policy and "frame-ancestors 'none'" in policy


def test_register_a_work_with_a_file(studio, studio_client, png_file):
    upload = png_file(3)
    upload.name = "cel-0042.png"
    response = studio_client.post(reverse("web:work_register"), {
        "title": "Cel 42", "external_ref": "CEL-42", "kind": "image", "file": upload,
        "urls": "https://example.com/cel/42.png", "identifiers": "",
    })
    work = Work.objects.get(owner=studio, external_ref="CEL-42")
    assert response.status_code == 302 and response["Location"] == reverse("web:work_detail", args=[work.pk])
    page = studio_client.get(response["Location"]).content.decode()
    assert work.files.get().sha256 in page
    assert "https://example.com/cel/42.png" in page
    image = studio_client.get(reverse("web:work_file", args=[work.pk, work.files.get().pk]))
    assert image["Content-Type"] == "image/png"


def test_register_shows_the_services_error(studio, studio_client):
    do_work_register(acting=OPERATOR, organization=studio, external_ref="DUP", title="First")
    response = studio_client.post(
        reverse("web:work_register"), {"title": "Second", "external_ref": "DUP", "kind": "image"})
    assert response.status_code == 200
    assert "Already registered." in response.content.decode()


def test_another_organisations_work_is_a_404(studio, make_org, studio_client, png_file):
    other = make_org(name="Other Studio")
    theirs = do_work_register(acting=OPERATOR, organization=other, external_ref="X", title="Theirs")
    their_file = do_content_file_add(acting=OPERATOR, work=theirs, fileobj=png_file(9), filename="x.png")
    grant = do_grant_issue(acting=OPERATOR, grantor=other, scope="work", work=theirs, purposes=["search"])
    for url in (
        reverse("web:work_detail", args=[theirs.pk]),
        reverse("web:work_file", args=[theirs.pk, their_file.pk]),
        reverse("web:grant_create", args=[theirs.pk]),
        reverse("web:grant_revoke", args=[grant.pk]),
    ):
        assert studio_client.get(url).status_code == 404, url
    assert studio_client.post(reverse("web:grant_revoke", args=[grant.pk])).status_code == 404
    assert studio_client.post(reverse("web:work_file_add", args=[theirs.pk]), {"file": png_file(10)}).status_code == 404
    grant.refresh_from_db()
    assert grant.revoked_at is None


def test_a_developer_cannot_open_studio_pages(developer_client):
    assert developer_client.get(reverse("web:catalog")).status_code == 404


def test_catalog_search_and_filters(studio, studio_client):
    do_work_register(acting=OPERATOR, organization=studio, external_ref="A1", title="Spirited Away", kind="video")
    do_work_register(acting=OPERATOR, organization=studio, external_ref="B2", title="Totoro", kind="image",
                  identifiers=["isan:0000-0000-3A8D-0000-Z-0000-0000-6"])
    page = studio_client.get(reverse("web:catalog"), {"q": "spirited"}).content.decode()
    assert "Spirited Away" in page and "Totoro" not in page
    page = studio_client.get(reverse("web:catalog"), {"kind": "image"}).content.decode()
    assert "Totoro" in page and "Spirited Away" not in page
    page = studio_client.get(reverse("web:catalog"), {"identifier": "isan:0000-0000-3A8D"}).content.decode()
    assert "Totoro" in page and "Spirited Away" not in page


def test_grant_form_shows_its_effect_then_issues(studio, developer, studio_client):
    work = do_work_register(acting=OPERATOR, organization=studio, external_ref="SA", title="Spirited Away")
    url = reverse("web:grant_create", args=[work.pk])
    data = {"scope": "work", "licensee": developer.slug, "purposes": ["train-genai"], "territories": "JP",
            "valid_until": "2027-03-31"}
    preview = studio_client.post(url, data).content.decode()
    assert ("Acme AI may use “Spirited Away” and everything under it for training generative models, in Japan"
            in preview)
    assert "until March 31, 2027" in preview
    assert not Grant.objects.exists()
    response = studio_client.post(url, {**data, "confirmed": "true", "issue": "1"})
    assert response.status_code == 302
    grant = Grant.objects.get()
    assert grant.licensee == developer and grant.purposes == ["train-genai"] and grant.territories == ["JP"]
    assert grant.valid_until.date().isoformat() == "2027-04-01"


def test_grant_effect_reads_naturally_in_japanese(studio, developer):
    work = do_work_register(acting=OPERATOR, organization=studio, external_ref="SA", title="千と千尋の神隠し")
    client = client_for(owner_of(studio), language="ja")
    page = client.post(reverse("web:grant_create", args=[work.pk]), {
        "scope": "work", "licensee": developer.slug, "purposes": ["train-genai"], "territories": "JP",
        "valid_until": "2027-03-31",
    }).content.decode()
    assert "Acme AIは、「千と千尋の神隠し」とその配下のすべての作品を、生成AIモデルの学習のために、日本で、" in page
    assert "2027年3月31日まで" in page


def test_revoke_asks_for_confirmation_then_revokes(studio, developer, studio_client):
    work = do_work_register(acting=OPERATOR, organization=studio, external_ref="SA", title="Spirited Away")
    grant = do_grant_issue(acting=OPERATOR, grantor=studio, scope="work", work=work, licensee=developer,
                        purposes=["train-genai"])
    page = studio_client.get(reverse("web:grant_revoke", args=[grant.pk])).content.decode()
    assert "Revoke this grant?" in page
    grant.refresh_from_db()
    assert grant.revoked_at is None
    studio_client.post(reverse("web:grant_revoke", args=[grant.pk]), {"reason": "contract ended"})
    grant.refresh_from_db()
    assert grant.revoked_at is not None and grant.revocation_reason == "contract ended"


def test_api_key_is_shown_once_then_revoked(developer, developer_client):
    page = developer_client.post(reverse("web:api_keys"), {"name": "pipeline", "scopes": ["checks"]}).content.decode()
    secret = re.search(r'id="new-secret">([^<]+)<', page).group(1)
    assert secret not in developer_client.get(reverse("web:api_keys")).content.decode()
    key = developer.api_keys.get()
    developer_client.post(reverse("web:api_key_revoke", args=[key.pk]))
    key.refresh_from_db()
    assert key.revoked_at is not None


def test_check_console_file_permitted_and_receipt_verifies(studio, developer, developer_client, png_file):
    work = do_work_register(acting=OPERATOR, organization=studio, external_ref="SA", title="Spirited Away")
    do_content_file_add(acting=OPERATOR, work=work, fileobj=png_file(5), filename="frame.png")
    do_grant_issue(acting=OPERATOR, grantor=studio, scope="work", work=work, licensee=developer, purposes=["train-ai"])
    upload = png_file(5)
    upload.name = "frame.png"
    page = developer_client.post(reverse("web:console"), {
        "purpose": "train-genai", "context": "commercial", "items": "https://nobody.example/x.png", "files": [upload],
    }).content.decode()
    assert page.count('data-decision="permitted"') == 1
    assert page.count('data-decision="unregistered"') == 1
    check_id = re.search(r"/developer/checks/([0-9a-f-]+)/receipt\.body", page).group(1)
    body = developer_client.get(reverse("web:receipt_download", args=[check_id, "body"])).content
    signature = developer_client.get(reverse("web:receipt_download", args=[check_id, "signature"])).content.decode()
    assert verify_receipt(body, signature)
    assert json.loads(body)["summary"]["permitted"] == 1


def test_receipt_verification_page(client, developer, developer_client):
    page = developer_client.post(reverse("web:console"), {
        "purpose": "search", "context": "commercial", "items": "0" * 64}).content.decode()
    check_id = re.search(r"/developer/checks/([0-9a-f-]+)/receipt\.body", page).group(1)
    body = developer_client.get(reverse("web:receipt_download", args=[check_id, "body"])).content.decode()
    signature = developer_client.get(reverse("web:receipt_download", args=[check_id, "signature"])).content.decode()
    ok = client.post(reverse("web:receipt_verify"), {"body": body, "signature": signature}).content.decode()
    assert "Valid receipt." in ok
    tampered = client.post(reverse("web:receipt_verify"), {"body": body.replace("search", "tdm"),
                                                           "signature": signature}).content.decode()
    assert "Not valid." in tampered


def test_another_organisations_receipt_is_a_404(developer, make_org, developer_client):
    other = make_org(Organization.Kind.AI_DEVELOPER, name="Other AI")
    page = client_for(owner_of(other)).post(reverse("web:console"), {
        "purpose": "search", "context": "commercial", "items": "0" * 64}).content.decode()
    check_id = re.search(r"/developer/checks/([0-9a-f-]+)/receipt\.body", page).group(1)
    assert developer_client.get(reverse("web:receipt_download", args=[check_id, "body"])).status_code == 404
    assert developer_client.get(reverse("web:check_detail", args=[check_id])).status_code == 404


def test_permission_request_is_asked_and_accepted(studio, developer, developer_client, studio_client):
    work = do_work_register(acting=OPERATOR, organization=studio, external_ref="SA", title="Spirited Away")
    response = developer_client.post(reverse("web:permission_request_new"), {
        "rightsholder": studio.slug, "work": str(work.pk), "purposes": ["train-genai"], "message": "Please",
    })
    assert response.status_code == 302
    inbox = studio_client.get(reverse("web:requests_inbox")).content.decode()
    assert "Acme AI" in inbox and "Please" in inbox
    request_id = re.search(r"/studio/requests/([0-9a-f-]+)/answer/", inbox).group(1)
    studio_client.post(reverse("web:request_answer", args=[request_id]), {"answer": "accept"})
    grant = Grant.objects.get()
    assert grant.licensee == developer and grant.work == work


@pytest.mark.parametrize("language", ["en", "ja"])
def test_every_page_renders(studio, developer, language, png_file):
    work = do_work_register(acting=OPERATOR, organization=studio, external_ref="SA", title="Spirited Away")
    do_content_file_add(acting=OPERATOR, work=work, fileobj=png_file(2), filename="a.png")
    do_grant_issue(acting=OPERATOR, grantor=studio, scope="work", work=work, licensee=developer, purposes=["train-ai"])
    s = client_for(owner_of(studio), language=language)
    d = client_for(owner_of(developer), language=language)
    for client, name, args in [
        (s, "web:studio_dashboard", []), (s, "web:catalog", []), (s, "web:work_detail", [work.pk]),
        (s, "web:work_register", []), (s, "web:grant_create", [work.pk]), (s, "web:grant_create_catalog", []),
        (s, "web:grants", []), (s, "web:activity", []), (s, "web:requests_inbox", []), (s, "web:members", []),
        (d, "web:developer_dashboard", []), (d, "web:api_keys", []), (d, "web:console", []), (d, "web:usage", []),
        (d, "web:developer_requests", []), (d, "web:permission_request_new", []), (d, "web:receipt_verify", []),
        (d, "web:organization_create", []), (s, "web:uploads", []),
        (s, "web:disputes", []), (s, "web:dispute_new", []), (s, "web:work_edit", [work.pk]),
        (s, "web:work_withdraw", [work.pk]), (d, "web:disputes", []), (s, "web:api_keys", []),
    ]:
        response = client.get(reverse(name, args=args))
        assert response.status_code == 200, name
        assert f'lang="{language}"' in response.content.decode()


def test_grant_effect_updates_live_over_htmx(studio, developer, studio_client):
    work = do_work_register(acting=OPERATOR, organization=studio, external_ref="SA", title="Spirited Away")
    fragment = studio_client.post(reverse("web:grant_create", args=[work.pk]), {
        "scope": "work", "licensee": "*", "purposes": ["search"], "contexts": ["research"],
    }, HTTP_HX_REQUEST="true").content.decode()
    assert fragment.startswith('<div id="effect"')
    assert ("Any verified AI developer may use “Spirited Away” and everything under it for search indexing, "
            "anywhere in the world, for research use only, with no end date.") in fragment
    assert not Grant.objects.exists()
