"""The consent rules hold in the portal as in the API: the console runs the same check_run."""

from __future__ import annotations

import io
import re

import pytest
from django.urls import reverse

from registry.access import Actor
from registry.models import Check
from registry.services.grants import grant_issue
from registry.services.works import content_file_add, work_register
from tests.conftest import owner_of
from tests.factories import make_image_bytes
from tests.portal.conftest import client_for

pytestmark = pytest.mark.django_db


def _named(data: bytes, name: str) -> io.BytesIO:
    handle = io.BytesIO(data)
    handle.name = name
    return handle


def _granted_image(studio, developer, seed: int = 11) -> tuple[object, bytes]:
    owner = Actor.for_user(owner_of(studio))
    work = work_register(actor=owner, organization=studio, external_ref="cel", title="Cel 11", kind="image")
    data = make_image_bytes(seed)
    content_file_add(actor=owner, work=work, fileobj=io.BytesIO(data), filename="cel.png")
    grant_issue(actor=owner, grantor=studio, scope="catalog", licensee=developer, purposes=["train-ai"])
    return work, data


def test_console_answers_a_reencoded_copy_similar_only_and_offers_to_ask_its_owner(studio, developer,
                                                                                  developer_client):
    from PIL import Image

    work, original = _granted_image(studio, developer)
    copy = io.BytesIO()
    Image.open(io.BytesIO(original)).save(copy, format="JPEG", quality=70)
    page = developer_client.post(reverse("web:console"), {
        "purpose": "train-genai", "context": "commercial",
        "files": [_named(copy.getvalue(), "copy.jpg"), _named(original, "cel.png")],
    }).content.decode()
    assert page.count('data-decision="not_permitted"') == 1 and page.count('data-decision="permitted"') == 1
    assert f"work={work.pk}" in page and f"rightsholder={studio.slug}" in page  # ask the right owner, for that work


def test_console_has_the_apis_item_limit(developer, developer_client):
    page = developer_client.post(reverse("web:console"), {
        "purpose": "search", "context": "commercial", "items": "\n".join(f"{i:064x}" for i in range(10_001)),
    })
    assert page.status_code == 200
    assert "10000" in page.content.decode().replace(",", "") and not Check.objects.exists()


def test_verify_page_names_the_requester_and_the_items_in_the_readers_language(studio, developer, developer_client,
                                                                              client):
    _granted_image(studio, developer)
    page = developer_client.post(reverse("web:console"), {
        "purpose": "train-genai", "context": "commercial", "items": "0" * 64,
    }).content.decode()
    check_id = re.search(r"/developer/checks/([0-9a-f-]+)/receipt\.body", page).group(1)
    body = developer_client.get(reverse("web:receipt_download", args=[check_id, "body"])).content.decode()
    signature = developer_client.get(reverse("web:receipt_download", args=[check_id, "signature"])).content.decode()
    reader = client_for(owner_of(studio), language="ja")
    verified = reader.post(reverse("web:receipt_verify"), {"body": body, "signature": signature}).content.decode()
    assert developer.slug in verified and 'id="receipt-items"' in verified
    assert "0" * 64 in verified  # the key that was actually checked
    assert "未登録" in verified and "Unregistered" not in verified
