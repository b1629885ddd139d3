"""Where the portal and the API meet the same rule, they agree: permission requests, list grammar, revocation."""

from __future__ import annotations

import re

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from rest_framework.test import APIClient

from registry.access import Actor
from registry.models import BulkUpload, Grant, PermissionRequest, Work
from registry.services.grants import grant_issue
from registry.services.uploads import bulk_upload_process
from registry.services.works import work_register, work_withdraw
from tests.conftest import owner_of
from tests.portal.conftest import client_for

pytestmark = pytest.mark.django_db

COMMA_URL = "https://cdn.example.com/img/w_400,h_300/cel,0042.png"


def owner(org) -> Actor:
    return Actor.for_user(owner_of(org))


# --- asking for permission from a check's answer -----------------------------------------------


def test_asking_about_a_work_goes_to_its_owner_for_that_work_only(make_org, developer, developer_client):
    # An unverified studio is missing from the studio list; the request must still reach it, not the first one.
    make_org(name="Aardvark Pictures")
    other = make_org(name="Zephyr Studio", verified=False)
    work = work_register(actor=owner(other), organization=other, external_ref="Z1", title="Zephyr cel 1")
    form = developer_client.get(reverse("web:permission_request_new"), {"work": str(work.pk)}).content.decode()
    assert "To Zephyr Studio, about “Zephyr cel 1”" in form
    assert 'name="rightsholder"' not in form
    response = developer_client.post(reverse("web:permission_request_new"), {
        "work": str(work.pk), "rightsholder": "aardvark-pictures", "purposes": ["train-genai"],
    })
    assert response.status_code == 302
    request = PermissionRequest.objects.get()
    assert (request.rightsholder, request.work, request.requester) == (other, work, developer)


def test_a_request_without_a_work_preselects_no_studio(make_org, developer_client):
    make_org(name="Aardvark Pictures")
    form = developer_client.get(reverse("web:permission_request_new")).content.decode()
    assert re.search(r'<option value="" selected>', form)
    response = developer_client.post(reverse("web:permission_request_new"), {"purposes": ["train-genai"]})
    assert response.status_code == 200 and not PermissionRequest.objects.exists()


def test_an_unknown_or_withdrawn_work_is_not_found(studio, developer_client):
    work = work_register(actor=owner(studio), organization=studio, external_ref="W1", title="Gone")
    work_withdraw(actor=owner(studio), work=work, reason="registered twice")
    url = reverse("web:permission_request_new")
    assert developer_client.get(url, {"work": str(work.pk)}).status_code == 404
    assert developer_client.get(url, {"work": "not-a-uuid"}).status_code == 404
    assert developer_client.post(url, {"work": str(work.pk), "purposes": ["search"]}).status_code == 404
    assert not PermissionRequest.objects.exists()


# --- revoking someone else's grant: 404 in the portal and in the API ---------------------------


def test_revoking_another_organisations_grant_is_not_found_in_portal_and_api(studio, developer, make_org):
    grant = grant_issue(actor=owner(studio), grantor=studio, scope="catalog", licensee=developer,
                        purposes=["train-ai"])
    intruder = make_org(name="Other Studio")
    portal_client = client_for(owner_of(intruder))
    assert portal_client.post(reverse("web:grant_revoke", args=[grant.pk])).status_code == 404
    for org in (developer, intruder):
        api = APIClient()
        api.force_login(owner_of(org))
        response = api.post(f"/api/v1/grants/{grant.pk}/revoke", {}, format="json")
        assert response.status_code == 404 and response.json()["error"]["code"] == "not_found"
    grant.refresh_from_db()
    assert grant.revoked_at is None


# --- one list grammar: one per line in forms, `;` in manifest cells ----------------------------


def test_a_url_with_commas_round_trips_through_the_portal(studio, studio_client):
    response = studio_client.post(reverse("web:work_register"), {
        "title": "Cel 42", "external_ref": "CEL-42", "kind": "image",
        "urls": f"{COMMA_URL}\nhttps://cdn.example.com/b.png", "identifiers": "",
    })
    assert response.status_code == 302
    work = Work.objects.get(external_ref="CEL-42")
    assert sorted(work.urls.values_list("url", flat=True)) == sorted([COMMA_URL, "https://cdn.example.com/b.png"])
    edit = studio_client.get(reverse("web:work_edit", args=[work.pk])).content.decode()
    assert COMMA_URL in edit
    studio_client.post(reverse("web:work_edit", args=[work.pk]), {
        "title": "Cel 42", "kind": "image", "urls": COMMA_URL, "identifiers": "",
    })
    assert list(work.urls.values_list("url", flat=True)) == [COMMA_URL]


def test_a_url_with_commas_round_trips_through_the_api(studio):
    api = APIClient()
    api.force_login(owner_of(studio))
    created = api.post("/api/v1/works", {"external_ref": "CEL-43", "title": "Cel 43", "kind": "image",
                                         "urls": [COMMA_URL]}, format="json")
    assert created.status_code == 201, created.content
    read = api.get(f"/api/v1/works/{created.json()['id']}").json()
    assert COMMA_URL in [u if isinstance(u, str) else u["url"] for u in read["urls"]]


def test_a_url_with_commas_round_trips_through_a_bulk_upload(studio, studio_client):
    manifest = (f'external_ref,title,kind,urls\nCEL-44,Cel 44,image,"{COMMA_URL};https://cdn.example.com/c.png"\n'
                ).encode()
    response = studio_client.post(reverse("web:uploads"), {"manifest": SimpleUploadedFile("catalog.csv", manifest)})
    assert response.status_code == 302
    upload = BulkUpload.objects.get()
    while bulk_upload_process(upload_id=str(upload.pk)):
        pass
    upload.refresh_from_db()
    assert (upload.status, upload.failed_count) == ("done", 0)
    work = Work.objects.get(external_ref="CEL-44")
    assert sorted(work.urls.values_list("url", flat=True)) == sorted([COMMA_URL, "https://cdn.example.com/c.png"])


def test_territories_are_codes_separated_by_commas_or_spaces(studio, developer, studio_client):
    work = work_register(actor=owner(studio), organization=studio, external_ref="T1", title="Territorial")
    studio_client.post(reverse("web:grant_create", args=[work.pk]), {
        "scope": "work", "licensee": developer.slug, "purposes": ["search"], "territories": "jp, US FR",
        "confirmed": "1", "issue": "1",
    })
    assert Grant.objects.get().territories == ["FR", "JP", "US"]
