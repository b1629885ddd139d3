"""A grant says honestly whether it counts (an unverified studio's is issued, not in force); its licensee is chosen."""

from __future__ import annotations

import pytest
from django.urls import reverse

from registry.access import Actor
from registry.models import Grant
from registry.services.grants import grant_issue
from registry.services.works import work_register
from tests.conftest import owner_of
from tests.portal.conftest import client_for

pytestmark = pytest.mark.django_db


def issue(studio, developer) -> Grant:
    actor = Actor.for_user(owner_of(studio))
    work = work_register(actor=actor, organization=studio, external_ref="C1", title="Cel 1")
    return grant_issue(actor=actor, grantor=studio, scope="work", work=work, licensee=developer,
                       purposes=["train-ai"])


def test_an_unverified_studios_grant_says_it_does_not_count_yet(make_org, developer):
    studio = make_org(name="New Studio", verified=False)
    grant = issue(studio, developer)
    page = client_for(owner_of(studio)).get(reverse("web:grants")).content.decode()
    assert "Issued — counts once your organisation is verified" in page
    assert 'data-state="active"' not in page
    work_page = client_for(owner_of(studio)).get(reverse("web:work_detail", args=[grant.work_id])).content.decode()
    assert 'data-state="issued-unverified"' in work_page
    developer_page = client_for(owner_of(developer)).get(reverse("web:developer_dashboard")).content.decode()
    assert "From an unverified studio: does not count" in developer_page


def test_a_verified_studios_grant_is_in_force(studio, developer):
    issue(studio, developer)
    page = client_for(owner_of(studio)).get(reverse("web:grants")).content.decode()
    assert 'data-state="active"' in page and "counts once your organisation is verified" not in page
    developer_page = client_for(owner_of(developer)).get(reverse("web:developer_dashboard")).content.decode()
    assert "does not count" not in developer_page


def test_who_may_use_it_must_be_chosen(studio, developer, studio_client):
    work = work_register(actor=Actor.for_user(owner_of(studio)), organization=studio, external_ref="C2",
                         title="Cel 2")
    form = studio_client.get(reverse("web:grant_create", args=[work.pk])).content.decode()
    assert '<option value="" selected>' in form
    response = studio_client.post(reverse("web:grant_create", args=[work.pk]), {
        "scope": "work", "licensee": "", "purposes": ["search"], "confirmed": "1", "issue": "1"})
    assert response.status_code == 200 and not Grant.objects.exists()
    studio_client.post(reverse("web:grant_create", args=[work.pk]), {
        "scope": "work", "licensee": "*", "purposes": ["search"], "confirmed": "1", "issue": "1"})
    assert Grant.objects.get().licensee is None
