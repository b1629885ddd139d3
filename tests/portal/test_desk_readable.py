"""The desk's audit history reads as words: who acted by name, values without Python's brackets."""

from __future__ import annotations

import pytest
from django.urls import reverse

from portal.templatetags.kyoka import audit_actor, audit_value
from registry.access import Actor
from registry.services.works import work_register, work_update
from tests.conftest import owner_of
from tests.portal.conftest import client_for

pytestmark = pytest.mark.django_db


def test_audit_values_read_as_words():
    assert audit_actor("user:7:ana@studio.example") == "ana@studio.example"
    assert audit_actor("key:kyk_abc") == "API key kyk_abc…"
    assert audit_value({"old": "Draft", "new": "Final"}) == "Draft → Final"
    assert audit_value(["train-ai", "search"]) == "train-ai, search"
    assert audit_value({"attribution": "© A", "licence_url": ""}) == "attribution: © A; licence_url: —"
    assert audit_value(None) == "—" and audit_value(True) == "yes"


def test_the_history_page_shows_no_python_reprs(studio, reviewer):
    actor = Actor.for_user(owner_of(studio))
    work = work_register(actor=actor, organization=studio, external_ref="W1", title="Draft",
                         urls=["https://cdn.example.com/w1.png"])
    work_update(actor=actor, work=work, title="Final")
    page = client_for(reviewer).get(reverse("desk:history", args=["work", work.pk])).content.decode()
    assert owner_of(studio).email in page and f"user:{owner_of(studio).pk}:" not in page.replace(
        f'title="user:{owner_of(studio).pk}:', "")
    assert "{&#x27;" not in page and "[&#x27;" not in page
    assert "Draft → Final" in page
