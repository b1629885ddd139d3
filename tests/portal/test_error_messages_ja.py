"""The registry's own error messages reach Japanese pages in Japanese."""

from __future__ import annotations

import pytest
from django.urls import reverse

from registry.services.works import do_work_register
from tests.conftest import OPERATOR, owner_of
from tests.portal.conftest import client_for

pytestmark = pytest.mark.django_db


def test_a_duplicate_external_ref_is_reported_in_japanese(studio):
    do_work_register(acting=OPERATOR, organization=studio, external_ref="DUP", title="First")
    client = client_for(owner_of(studio), language="ja")
    response = client.post(
        reverse("web:work_register"), {"title": "Second", "external_ref": "DUP", "kind": "image"})
    assert response.status_code == 200
    page = response.content.decode()
    assert "すでに登録されています。" in page
    assert "already has a work" not in page and "Already registered." not in page
