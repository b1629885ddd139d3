"""Organisations named in Japanese get readable, unique slugs."""
# Japanese expectations hold full-width punctuation on purpose.
# ruff: noqa: RUF001

from __future__ import annotations

import pytest
from django.urls import reverse

from registry.matching.slugs import slug_base
from registry.models import Organization

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("name,slug", [
    ("さくらスタジオ", "sakura-sutajio"),
    ("スタジオ・ジブリ", "sutajio-jiburi"),
    ("ＫＡＤＯＫＡＷＡ", "kadokawa"),
    ("Studio Aozora", "studio-aozora"),
    ("Café Noir", "cafe-noir"),
    ("☆☆☆", "org"),
])
def test_a_name_suggests_a_readable_slug(name, slug):
    assert slug_base(name) == slug


def test_two_studios_of_the_same_japanese_name_get_distinct_slugs(make_user):
    from tests.portal.conftest import client_for

    for n in (1, 2):
        client = client_for(make_user(f"founder{n}@example.jp"))
        client.post(reverse("web:organization_create"), {"name": "さくらスタジオ", "kind": "rightsholder"})
    assert sorted(Organization.objects.values_list("slug", flat=True)) == ["sakura-sutajio", "sakura-sutajio-2"]
