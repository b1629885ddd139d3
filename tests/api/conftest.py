"""Fixtures for the API's cross-cutting tests (limits, schema fuzzing, authorisation matrix).

Keys come from the `createapikey` command, the way an operator makes them: the contract that
stays put while the services behind it change.
"""

from __future__ import annotations

import io

import pytest
from django.core.management import call_command
from rest_framework.test import APIClient

from registry.models import Organization


def new_key(organization: Organization, scopes: list[str]) -> str:
    out = io.StringIO()
    call_command("createapikey", "--org", organization.slug, "--scopes", ",".join(scopes), stdout=out)
    return out.getvalue().strip().splitlines()[-1]


@pytest.fixture
def key_client():
    def make(organization: Organization, scopes: list[str]) -> APIClient:
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {new_key(organization, scopes)}")
        return client

    return make
