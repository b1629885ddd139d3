"""The small things people notice: tab titles, the icon, language names, where reviewers land, navigation."""

from __future__ import annotations

import re

import pytest
from django.urls import reverse

from tests.portal.conftest import client_for

pytestmark = pytest.mark.django_db


def title(page: str) -> str:
    return re.search(r"<title>(.*?)</title>", page, re.S).group(1).strip()


def test_the_tab_title_separates_the_page_from_the_registry(studio_client, client):
    assert title(studio_client.get(reverse("web:grants")).content.decode()) == "Grants · Kyoka consent registry"
    assert title(client.get("/", HTTP_ACCEPT_LANGUAGE="en").content.decode()).endswith("Kyoka consent registry")
    assert "  " not in title(client.get("/", HTTP_ACCEPT_LANGUAGE="en").content.decode())


def test_favicon_is_served(client):
    response = client.get("/favicon.ico")
    assert response.status_code == 301 and response["Location"].endswith("favicon.svg")
    assert 'rel="icon"' in client.get("/").content.decode()


@pytest.mark.parametrize("language", ["en", "ja"])
def test_the_language_menu_names_each_language_in_itself(client, language):
    page = client.get("/", HTTP_ACCEPT_LANGUAGE=language).content.decode()
    assert re.search(r'<option value="en" lang="en"[^>]*>English</option>', page)
    assert re.search(r'<option value="ja" lang="ja"[^>]*>日本語</option>', page)
    assert "英語" not in page


def test_a_reviewer_lands_on_the_desk(reviewer):
    desk = client_for(reviewer)
    response = desk.get(reverse("web:home"))
    assert response.status_code == 302 and response["Location"] == reverse("desk:queue")
    page = desk.get(reverse("desk:queue")).content.decode()
    assert "Signed in as reviewer@example.com" in page and reverse("web:logout") in page
    assert reverse("desk:verification-queue") in page


def test_a_developer_finds_disputes_in_the_navigation(developer_client):
    page = developer_client.get(reverse("web:developer_dashboard")).content.decode()
    nav = re.search(r'<nav class="mainnav".*?</nav>', page, re.S).group(0)
    assert reverse("web:disputes") in nav


def test_a_form_error_says_the_chosen_file_must_be_chosen_again(studio_client, png_file):
    from django.core.files.uploadedfile import SimpleUploadedFile

    response = studio_client.post(reverse("web:work_register"), {
        "title": "", "external_ref": "X-1", "kind": "image",
        "file": SimpleUploadedFile("cel.png", png_file(3).getvalue(), content_type="image/png")})
    assert response.status_code == 200 and 'id="files-lost"' in response.content.decode()
    without_file = studio_client.post(reverse("web:work_register"), {"title": "", "external_ref": "X-1"})
    assert 'id="files-lost"' not in without_file.content.decode()


def test_a_person_chooses_the_language_of_their_mail(studio):
    from registry.services.accounts import user_language
    from tests.conftest import owner_of

    person = owner_of(studio)
    client = client_for(person)
    page = client.get(reverse("web:studio_dashboard")).content.decode()
    assert 'name="mail_language"' in page and 'value="en" lang="en" selected' in page
    response = client.post(reverse("web:mail_language_set"), {"mail_language": "ja", "next": "/studio/"})
    assert response.status_code == 302 and response["Location"] == "/studio/"
    assert user_language(person) == "ja"
    client.post(reverse("web:mail_language_set"), {"mail_language": "xx", "next": "https://evil.example/"})
    assert user_language(person) == "ja"
