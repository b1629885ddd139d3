"""Text Kyoka writes into stored data reads in the reader's language: automatic disputes and their notes."""
# Japanese expectations hold full-width punctuation on purpose.
# ruff: noqa: RUF001

from __future__ import annotations

import html

import pytest
from django.urls import reverse

from registry.access import Actor
from registry.message_codes import message_render
from registry.models import Dispute
from registry.services.works import work_register
from tests.conftest import owner_of
from tests.portal.conftest import client_for

pytestmark = pytest.mark.django_db

ISBN = "isbn:978-4-04-102622-9"


@pytest.fixture
def conflict(studio, make_org) -> Dispute:
    hoshi = make_org(name="Studio Hoshi")
    work_register(actor=Actor.for_user(owner_of(hoshi)), organization=hoshi, external_ref="H-1",
                  title="星の原画", identifiers=[ISBN])
    work_register(actor=Actor.for_user(owner_of(studio)), organization=studio, external_ref="K-1",
                  title="Key art", identifiers=[ISBN])
    return Dispute.objects.get()


def test_an_automatic_dispute_keeps_its_statement_as_a_code(conflict):
    assert conflict.statement_code == "dispute.conflict_statement"
    assert conflict.statement_params["matches"] == [{"method": "identifier", "value": "isbn:9784041026229"}]
    # The English rendering is the stored English statement, word for word.
    assert message_render(conflict.statement_code, conflict.statement_params) == conflict.statement.replace(
        '"', "“", 1).replace('"', "”", 1).replace('"', "“", 1).replace('"', "”", 1)


@pytest.mark.parametrize("language,statement,note", [
    ("en", "registered earlier by Studio Hoshi: the same identifier (isbn:9784041026229).",
     "Opened automatically: the registrations conflict."),
    ("ja", "先に Studio Hoshi が登録した「星の原画」（H-1）と一致します：同じ識別子（isbn:9784041026229）。",
     "自動で開かれました：登録が重複しています。"),
])
def test_both_parties_read_it_in_their_language(conflict, studio, language, statement, note):
    page = client_for(owner_of(studio), language=language).get(
        reverse("web:dispute_detail", args=[conflict.pk])).content.decode()
    assert statement in page and note in page


def test_the_desk_reads_it_in_the_reviewers_language(conflict, reviewer):
    page = client_for(reviewer, language="ja").get(reverse("desk:dispute", args=[conflict.pk])).content.decode()
    assert "同じ識別子（isbn:9784041026229）" in page and "自動で開かれました" in page


def test_an_unknown_code_falls_back_to_the_stored_english():
    assert message_render("no.such.code", {}, "stored text") == "stored text"
    assert message_render("dispute.conflict_statement", {"later_title": "x"}, "stored text") == "stored text"


@pytest.mark.parametrize("language,expected", [
    ("en", ["This field is required.", "Not a year: 'MCMXCIX'."]),
    ("ja", ["この項目は必須です。", "年として読めません：'MCMXCIX'。"]),
])
def test_upload_row_errors_read_in_the_readers_language(studio, language, expected):
    from django.core.files.uploadedfile import SimpleUploadedFile

    from registry.services.uploads import bulk_upload_process, bulk_upload_start

    upload = bulk_upload_start(actor=Actor.for_user(owner_of(studio)), organization=studio,
                               manifest=SimpleUploadedFile("m.csv", b"external_ref,title,year\nA,,\nB,Bee,MCMXCIX\n"))
    while bulk_upload_process(upload_id=str(upload.pk)):
        pass
    # The report keeps the English, word for word; the page renders the code.
    assert sorted(upload.errors.values_list("message", flat=True)) == ["Not a year: 'MCMXCIX'.",
                                                                        "This field is required."]
    # The year is coded by the row parser; the empty title is the works service's own catalog message.
    assert sorted(upload.errors.values_list("code", flat=True)) == ["", "upload.not_a_year"]
    page = html.unescape(client_for(owner_of(studio), language=language).get(
        reverse("web:upload_detail", args=[upload.pk])).content.decode())
    for text in expected:
        assert text in page
