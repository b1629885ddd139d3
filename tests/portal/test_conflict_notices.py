"""A registration that matches another studio's work: both studios are told at once, on the pages and by email."""

from __future__ import annotations

import pytest
from django.core import mail
from django.urls import reverse

from registry.access import Actor
from registry.models import Dispute, Work
from registry.services.works import work_register
from tests.conftest import owner_of
from tests.portal.conftest import client_for

pytestmark = pytest.mark.django_db

ISBN = "isbn:978-4-04-102622-9"


@pytest.fixture
def earlier(make_org):
    owner = make_org(name="Studio Hoshi")
    return work_register(actor=Actor.for_user(owner_of(owner)), organization=owner, external_ref="H-1",
                         title="Hoshi key art", identifiers=[ISBN])


def test_the_registering_studio_is_told_on_the_page_that_registered_it(earlier, studio, studio_client,
                                                                       django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        response = studio_client.post(reverse("web:work_register"), {
            "title": "Our key art", "external_ref": "K-1", "kind": "image", "identifiers": ISBN}, follow=True)
    page = response.content.decode()
    assert "This registration matches a work of Studio Hoshi, so Kyoka opened a dispute." in page
    assert 'id="disputed-badge"' in page and 'id="conflict-notice"' in page
    dispute = Dispute.objects.get()
    assert reverse("web:dispute_detail", args=[dispute.pk]) in page
    recipients = {to for message in mail.outbox for to in message.to}
    assert {owner_of(studio).email, owner_of(earlier.owner).email} <= recipients


def test_the_other_studio_sees_it_on_its_dashboard_and_work_page(earlier, studio, studio_client):
    studio_client.post(reverse("web:work_register"), {
        "title": "Our key art", "external_ref": "K-1", "kind": "image", "identifiers": ISBN})
    other = client_for(owner_of(earlier.owner))
    dashboard = other.get(reverse("web:studio_dashboard")).content.decode()
    assert 'id="dashboard-disputes"' in dashboard and "1 dispute about your works is open." in dashboard
    work_page = other.get(reverse("web:work_detail", args=[earlier.pk])).content.decode()
    assert 'id="disputed-badge"' in work_page and "In dispute with Studio Aozora" in work_page


def test_no_notice_without_a_conflict(studio_client):
    response = studio_client.post(reverse("web:work_register"), {
        "title": "Alone", "external_ref": "A-1", "kind": "image", "identifiers": ISBN}, follow=True)
    page = response.content.decode()
    assert Work.objects.count() == 1 and not Dispute.objects.exists()
    assert "opened a dispute" not in page and 'id="disputed-badge"' not in page
