"""Roles and statuses inside sentences are words in the reader's language, not codes."""

from __future__ import annotations

import pytest
from django.urls import reverse
from django.utils import translation

from registry.access import Actor, authorize
from registry.exceptions import PermissionDenied
from registry.models import Membership
from tests.portal.conftest import client_for

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("language,word", [("en", "the manager role"), ("ja", "マネージャー")])
def test_a_missing_role_is_named_in_words(studio, member, language, word):
    viewer = member(studio, Membership.Role.VIEWER)
    with translation.override(language), pytest.raises(PermissionDenied) as refused:
        authorize(viewer, studio, role=Membership.Role.MANAGER, scope="works:write")
    assert word in refused.value.message
    if language == "ja":
        assert "manager" not in refused.value.message


def test_pgettext_keeps_upload_counts_apart_from_dates(studio):
    from django.core.files.uploadedfile import SimpleUploadedFile

    from registry.services.uploads import bulk_upload_start
    from tests.conftest import owner_of

    upload = bulk_upload_start(actor=Actor.for_user(owner_of(studio)), organization=studio,
                               manifest=SimpleUploadedFile("m.csv", b"external_ref,title\nA,B\n"))
    page = client_for(owner_of(studio), language="ja").get(
        reverse("web:upload_detail", args=[upload.pk])).content.decode()
    assert "<dt>新規登録</dt>" in page and "<dt>更新</dt>" in page and "作成日" not in page
