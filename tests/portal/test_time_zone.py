"""Times are shown in the reader's time zone (JST for Japanese by default); storage stays UTC."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from django.urls import reverse

from registry.models import Work
from registry.services.works import do_work_register
from tests.conftest import OPERATOR, owner_of
from tests.portal.conftest import client_for

pytestmark = pytest.mark.django_db

# 20:30 UTC on 31 March is already 1 April, 05:30 in Tokyo.
LATE_EVENING_UTC = datetime(2026, 3, 31, 20, 30, tzinfo=UTC)


@pytest.fixture
def work(studio):
    work = do_work_register(acting=OPERATOR, organization=studio, external_ref="SA", title="Spirited Away")
    Work.objects.filter(pk=work.pk).update(created_at=LATE_EVENING_UTC)
    return work


def _selected_zone(page: str) -> str:
    start = page.index('id="time-zone"')
    chunk = page[start:page.index("</select>", start)]
    return chunk.split(" selected>")[0].rsplit('value="', 1)[1].split('"')[0]


def test_english_defaults_to_utc(studio, work):
    page = client_for(owner_of(studio)).get(reverse("web:work_detail", args=[work.pk])).content.decode()
    assert _selected_zone(page) == "UTC"
    assert "March 31, 2026" in page


def test_japanese_defaults_to_tokyo(studio, work):
    page = client_for(owner_of(studio), language="ja").get(reverse("web:work_detail", args=[work.pk])).content.decode()
    assert _selected_zone(page) == "Asia/Tokyo"
    assert "2026年4月1日" in page
    assert "東京 (UTC+09:00)" in page


def test_the_header_switcher_changes_the_zone_for_the_session(studio, work):
    client = client_for(owner_of(studio), language="ja")
    detail = reverse("web:work_detail", args=[work.pk])
    response = client.post(reverse("web:time_zone_set"), {"time_zone": "UTC", "next": detail})
    assert response.status_code == 302 and response["Location"] == detail
    page = client.get(detail).content.decode()
    assert _selected_zone(page) == "UTC" and "2026年3月31日" in page
    # Display only: the stored time is untouched.
    work.refresh_from_db()
    assert work.created_at == LATE_EVENING_UTC


def test_an_unknown_zone_or_an_outside_next_is_ignored(client):
    response = client.post(reverse("web:time_zone_set"), {"time_zone": "Mars/Olympus", "next": "https://evil.example/"})
    assert response["Location"] == "/"
    assert "kyoka_time_zone" not in client.session


def test_visitors_choose_too(client):
    client.post(reverse("web:time_zone_set"), {"time_zone": "Europe/Paris", "next": "/"})
    page = client.get("/", HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert _selected_zone(page) == "Europe/Paris"
