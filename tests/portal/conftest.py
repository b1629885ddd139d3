"""Portal fixtures: logged-in clients for a studio and an AI developer, set up through the services."""

from __future__ import annotations

import pytest
from django.core.cache import cache
from django.test import Client

from tests.conftest import owner_of


@pytest.fixture(autouse=True)
def _clear_cache():
    cache.clear()
    yield
    cache.clear()


def client_for(user, *, language: str = "en") -> Client:
    client = Client(HTTP_ACCEPT_LANGUAGE=language)
    client.force_login(user)
    return client


@pytest.fixture
def studio_client(studio):
    return client_for(owner_of(studio))


@pytest.fixture
def developer_client(developer):
    return client_for(owner_of(developer))
