"""The catalog sorts as people count, shows each work's grant state, and exports; so does the activity."""

from __future__ import annotations

import csv
import io
import re

import pytest
from django.db import connection
from django.urls import reverse

from registry.access import Actor
from registry.decisions.run import check_run
from registry.services.grants import grant_issue
from registry.services.works import work_register
from tests.conftest import owner_of

pytestmark = pytest.mark.django_db


def register(studio, ref: str, title: str, **extra):
    return work_register(actor=Actor.for_user(owner_of(studio)), organization=studio, external_ref=ref, title=title,
                         **extra)


def titles(page: str) -> list[str]:
    return re.findall(r'<div class="title">(.*?)</div>', page)


@pytest.mark.skipif(connection.vendor != "postgresql", reason="natural order uses PostgreSQL's ICU collation")
def test_the_catalog_sorts_numbers_by_value(studio, studio_client):
    for n in (10, 2, 1, 21):
        register(studio, f"S{n}", f"sheet {n}")
    assert titles(studio_client.get(reverse("web:catalog")).content.decode()) == [
        "sheet 1", "sheet 2", "sheet 10", "sheet 21"]


def test_cards_show_whether_a_grant_reaches_the_work(studio, developer, studio_client):
    series = register(studio, "SER", "Series", kind="collection")
    episode = register(studio, "EP1", "Episode", kind="video", parent=series)
    register(studio, "LONE", "Lone work")
    grant_issue(actor=Actor.for_user(owner_of(studio)), grantor=studio, scope="work", work=series,
                licensee=developer, purposes=["search"])
    page = studio_client.get(reverse("web:catalog")).content.decode()
    cards = dict(re.findall(r'<div class="title">(.*?)</div>.*?data-grant="([a-z-]+)"', page, re.S))
    assert cards == {"Episode": "in-force", "Lone work": "none", "Series": "in-force"}
    del episode


def test_the_catalog_exports_as_a_manifest_shaped_csv(studio, studio_client):
    series = register(studio, "SER", "Series", kind="collection")
    register(studio, "EP1", "=HYPERLINK(1)", kind="video", parent=series,
             urls=["https://cdn.example.com/a,b.png", "https://cdn.example.com/c.png"])
    response = studio_client.get(reverse("web:catalog"), {"export": "csv"})
    rows = list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode("utf-8-sig"))))
    episode = next(r for r in rows if r["external_ref"] == "EP1")
    assert episode["parent_ref"] == "SER" and episode["title"] == "'=HYPERLINK(1)"
    assert sorted(episode["urls"].split(";")) == ["https://cdn.example.com/a,b.png", "https://cdn.example.com/c.png"]


def test_the_activity_exports_as_csv(studio, developer, studio_client):
    register(studio, "SA", "Sakura", urls=["https://cdn.example.com/sakura.png"])
    check_run(actor=Actor.for_user(owner_of(developer)), organization=developer, purpose="search",
              items=[{"url": "https://cdn.example.com/sakura.png"}])
    response = studio_client.get(reverse("web:activity"), {"days": "7", "export": "csv"})
    rows = list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode("utf-8-sig"))))
    assert [(r["requester"], r["work_external_ref"], r["purpose"]) for r in rows] == [(developer.slug, "SA", "search")]
