"""Choosing what an API key may do when creating it."""

from __future__ import annotations

import re

import pytest
from django.urls import reverse

from registry.models import ApiKey, Membership
from tests.conftest import owner_of
from tests.portal.conftest import client_for

pytestmark = pytest.mark.django_db


def _checked(page: str) -> set[str]:
    return set(re.findall(r'name="scopes" value="([^"]+)"[^>]*checked', page))


def test_a_developer_key_starts_with_checks_only(developer_client):
    page = developer_client.get(reverse("web:api_keys")).content.decode()
    assert _checked(page) == {"checks"}
    # Only what an AI developer can use: no catalog scopes.
    assert "Read and answer disputes" in page and "Bulk uploads" not in page


def test_a_studio_key_starts_with_everything(studio, studio_client):
    page = studio_client.get(reverse("web:api_keys")).content.decode()
    assert _checked(page) == {"checks", "works:read", "works:write", "grants:write", "uploads", "disputes"}


def test_the_chosen_scopes_are_the_keys_scopes(studio, studio_client):
    response = studio_client.post(reverse("web:api_keys"), {"name": "uploader", "scopes": ["uploads", "works:read"]})
    assert 'id="new-secret"' in response.content.decode()
    assert ApiKey.objects.get(organization=studio).scopes == ["uploads", "works:read"]


def test_a_key_needs_at_least_one_scope(developer, developer_client):
    response = developer_client.post(reverse("web:api_keys"), {"name": "nothing"})
    assert "This field is required." in response.content.decode()
    assert not ApiKey.objects.filter(organization=developer).exists()


def test_an_unknown_scope_is_refused(developer, developer_client):
    response = developer_client.post(reverse("web:api_keys"), {"name": "x", "scopes": ["admin"]})
    assert "Select a valid choice. admin is not one of the available choices." in response.content.decode()
    assert not ApiKey.objects.filter(organization=developer).exists()


def test_only_owners_manage_keys(studio, member):
    manager = client_for(member(studio, Membership.Role.MANAGER).user)
    assert manager.get(reverse("web:api_keys")).status_code == 403
    assert manager.post(reverse("web:api_keys"), {"name": "x", "scopes": ["checks"]}).status_code == 403


def test_scopes_in_japanese(studio):
    page = client_for(owner_of(studio), language="ja").get(reverse("web:api_keys")).content.decode()
    assert "このキーにできること" in page and "一括アップロード" in page
