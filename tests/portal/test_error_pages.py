"""A bad address is a proper page in the reader's language, on the portal and on the desk."""

from __future__ import annotations

import uuid

import pytest
from django.urls import reverse

from tests.portal.conftest import client_for

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("language,heading", [("en", "Not found"), ("ja", "見つかりません")])
def test_a_bad_id_is_a_404_page(studio_client, studio, language, heading, settings):
    settings.DEBUG = False
    from tests.conftest import owner_of

    client = client_for(owner_of(studio), language=language)
    response = client.get(reverse("web:work_detail", args=[uuid.uuid4()]))
    assert response.status_code == 404
    page = response.content.decode()
    assert 'id="not-found"' in page and heading in page and f'lang="{language}"' in page


def test_a_bad_dispute_id_on_the_desk_is_a_404_page(reviewer, settings):
    settings.DEBUG = False
    response = client_for(reviewer).get(reverse("desk:dispute", args=[uuid.uuid4()]))
    assert response.status_code == 404 and 'id="not-found"' in response.content.decode()
