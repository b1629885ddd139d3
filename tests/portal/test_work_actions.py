"""Editing and withdrawing a work from its page: managers and owners only, through the works service."""

from __future__ import annotations

import pytest
from django.urls import reverse

from registry.models import AuditEvent, Membership, Work
from registry.services.works import do_work_register
from tests.conftest import OPERATOR, owner_of
from tests.portal.conftest import client_for

pytestmark = pytest.mark.django_db


@pytest.fixture
def series(studio):
    return do_work_register(acting=OPERATOR, organization=studio, external_ref="S1", title="Ghibli posters",
                         kind="collection")


@pytest.fixture
def work(studio):
    return do_work_register(acting=OPERATOR, organization=studio, external_ref="SA", title="Spirited Away",
                         kind="image", urls=["https://example.com/sa.png"], identifiers=["isbn:978-4-06-182623-6"])


def test_the_edit_form_starts_from_the_work(work, studio_client):
    page = studio_client.get(reverse("web:work_edit", args=[work.pk])).content.decode()
    assert 'value="Spirited Away"' in page
    assert "https://example.com/sa.png" in page and "isbn:9784061826236" in page


def test_edit_changes_the_fields_the_parent_and_replaces_the_references(work, series, studio_client):
    response = studio_client.post(reverse("web:work_edit", args=[work.pk]), {
        "title": "Spirited Away (poster)", "kind": "image", "description": "Theatrical poster, 2001.",
        "parent": str(series.pk), "urls": "https://example.com/poster.png", "identifiers": "",
    })
    assert response.status_code == 302 and response["Location"] == reverse("web:work_detail", args=[work.pk])
    work.refresh_from_db()
    assert (work.title, work.description, work.parent_id) == ("Spirited Away (poster)", "Theatrical poster, 2001.",
                                                             series.pk)
    assert list(work.urls.values_list("url", flat=True)) == ["https://example.com/poster.png"]
    assert not work.identifiers.exists()
    event = AuditEvent.objects.filter(action="work.update", object_id=str(work.pk)).get()
    assert event.data["title"] == {"old": "Spirited Away", "new": "Spirited Away (poster)"}
    assert event.data["parent"] == {"old": None, "new": str(series.pk)}
    assert event.data["urls"] == {"old": ["https://example.com/sa.png"], "new": ["https://example.com/poster.png"]}
    assert event.data["identifiers"] == {"old": ["isbn:9784061826236"], "new": []}


def test_edit_shows_the_services_error_on_the_field(work, studio_client):
    response = studio_client.post(reverse("web:work_edit", args=[work.pk]), {
        "title": "Spirited Away", "kind": "image", "identifiers": "isbn:123",
    })
    assert response.status_code == 200
    assert "&#x27;isbn:123&#x27;" in response.content.decode()
    work.refresh_from_db()
    assert work.identifiers.get().value == "9784061826236"


def test_withdraw_asks_for_confirmation_then_withdraws(work, studio_client):
    confirm = studio_client.get(reverse("web:work_withdraw", args=[work.pk])).content.decode()
    assert "Withdraw “Spirited Away”?" in confirm
    work.refresh_from_db()
    assert work.status == Work.Status.ACTIVE
    response = studio_client.post(reverse("web:work_withdraw", args=[work.pk]), {"reason": "Registered twice."})
    assert response.status_code == 302
    work.refresh_from_db()
    assert work.status == Work.Status.WITHDRAWN
    assert AuditEvent.objects.get(action="work.withdraw", object_id=str(work.pk)).data == {
        "status": {"old": "active", "new": "withdrawn"}, "reason": "Registered twice."}
    page = studio_client.get(reverse("web:work_detail", args=[work.pk])).content.decode()
    assert "From now on, checks of it answer not permitted." in page
    assert reverse("web:work_withdraw", args=[work.pk]) not in page


def test_managers_see_the_buttons(studio, work, member):
    manager = client_for(member(studio, Membership.Role.MANAGER).user)
    page = manager.get(reverse("web:work_detail", args=[work.pk])).content.decode()
    assert reverse("web:work_edit", args=[work.pk]) in page and reverse("web:work_withdraw", args=[work.pk]) in page


def test_viewers_see_no_buttons_and_get_403(studio, work, member):
    viewer = client_for(member(studio, Membership.Role.VIEWER).user)
    page = viewer.get(reverse("web:work_detail", args=[work.pk])).content.decode()
    assert reverse("web:work_edit", args=[work.pk]) not in page
    assert reverse("web:work_withdraw", args=[work.pk]) not in page
    assert reverse("web:grant_create", args=[work.pk]) not in page
    assert viewer.post(reverse("web:work_edit", args=[work.pk]), {"title": "X", "kind": "image"}).status_code == 403
    assert viewer.post(reverse("web:work_withdraw", args=[work.pk])).status_code == 403
    work.refresh_from_db()
    assert (work.title, work.status) == ("Spirited Away", Work.Status.ACTIVE)


def test_another_organisations_work_cannot_be_edited_or_withdrawn(work, make_org):
    other = client_for(make_org().memberships.get().user)
    assert other.post(reverse("web:work_edit", args=[work.pk]), {"title": "X", "kind": "image"}).status_code == 404
    assert other.post(reverse("web:work_withdraw", args=[work.pk])).status_code == 404
    work.refresh_from_db()
    assert work.status == Work.Status.ACTIVE


def test_work_actions_in_japanese(studio, work):
    client = client_for(owner_of(studio), language="ja")
    page = client.get(reverse("web:work_detail", args=[work.pk])).content.decode()
    assert "編集" in page and "取り下げる" in page
    assert "作品を編集" in client.get(reverse("web:work_edit", args=[work.pk])).content.decode()
    assert "「Spirited Away」を取り下げますか" in client.get(
        reverse("web:work_withdraw", args=[work.pk])).content.decode()
