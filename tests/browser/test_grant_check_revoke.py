"""A studio registers and grants; an AI developer checks; the studio revokes; the check changes — in a real browser."""

from __future__ import annotations

import base64
import gettext
import re
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from django.conf import settings

from registry.models import Organization
from tests.browser.conftest import log_in
from tests.conftest import owner_of
from tests.factories import make_image_bytes

pytestmark = pytest.mark.django_db(transaction=True)

DROP_FILE = """([selector, name, b64]) => {
  const bytes = Uint8Array.from(atob(b64), c => c.charCodeAt(0));
  const transfer = new DataTransfer();
  transfer.items.add(new File([bytes], name, {type: "image/png"}));
  const zone = document.querySelector(selector);
  zone.dispatchEvent(new DragEvent("dragover", {dataTransfer: transfer, bubbles: true, cancelable: true}));
  zone.dispatchEvent(new DragEvent("drop", {dataTransfer: transfer, bubbles: true, cancelable: true}));
}"""


def drop_file(page, selector: str, name: str, data: bytes) -> None:
    page.evaluate(DROP_FILE, [selector, name, base64.b64encode(data).decode()])


def check_dropped_image(page, image: bytes, *, territory: str = "") -> str:
    page.goto("/developer/check/")
    page.select_option("select[name=purpose]", "train-genai")
    page.fill("input[name=territory]", territory)
    drop_file(page, "#check-form [data-dropzone]", "cel-0042.png", image)
    page.locator("#check-form .files-chosen").filter(has_text="cel-0042.png").wait_for()
    page.click("#run-check")
    row = page.locator("#check-result tr.result-row").first
    row.wait_for()
    return row.get_attribute("data-decision")


def english_msgids() -> list[str]:
    """Literal pieces of the catalog's English strings long enough not to collide with data."""
    with open(Path(settings.LOCALE_PATHS[0]) / "ja" / "LC_MESSAGES" / "django.mo", "rb") as compiled:
        catalog = gettext.GNUTranslations(compiled)._catalog  # msgid -> msgstr (plurals keyed by (msgid, n))
    pieces = set()
    for key, translation in catalog.items():
        msgid = key[0] if isinstance(key, tuple) else key
        literal = re.sub(r"<code>.*?</code>", "|", msgid)  # code reads the same in every language
        for piece in re.split(r"%\(\w+\)[sd]|<[^>]+>|\||\n", literal):
            piece = piece.strip(" .,:;—()“”'\"")
            if len(piece.split()) >= 2 and piece != translation:
                pieces.add(piece)
    return sorted(pieces)


def assert_no_english(page, pieces: list[str]) -> None:
    text = page.inner_text("body")
    leftovers = [p for p in pieces if p in text]
    assert not leftovers, f"untranslated on {page.url}: {leftovers}"


def test_grant_permits_then_revoke_stops_permitting(open_page, studio, developer):
    image = make_image_bytes(42)
    studio_page = open_page()
    log_in(studio_page, owner_of(studio).email)

    # Register a work with its image.
    studio_page.click("text=Register a work")
    studio_page.fill("input[name=title]", "Spirited Away — key visual")
    studio_page.fill("input[name=external_ref]", "SA-KV-1")
    studio_page.select_option("select[name=kind]", "image")
    drop_file(studio_page, "[data-dropzone]", "cel-0042.png", image)
    studio_page.click("form.card button[type=submit]")
    studio_page.wait_for_url(re.compile(r"/studio/works/[0-9a-f-]+/$"))
    assert studio_page.locator(".file img").count() == 1

    # Grant train-genai to Acme AI, reading the effect before issuing.
    studio_page.click("text=Grant permission")
    studio_page.select_option("select[name=licensee]", developer.slug)
    studio_page.check("input[name=purposes][value=train-genai]")
    studio_page.click("#review-grant")
    effect = studio_page.inner_text("#effect-text")
    assert effect.startswith("Acme AI may use “Spirited Away — key visual” and everything under it")
    assert "training generative models" in effect
    studio_page.click("#issue-grant")
    studio_page.wait_for_url(re.compile(r"/studio/works/[0-9a-f-]+/$"))
    assert "Grant issued." in studio_page.inner_text(".messages")

    # The developer drops the same image into the check console: permitted.
    developer_page = open_page()
    log_in(developer_page, owner_of(developer).email)
    assert check_dropped_image(developer_page, image) == "permitted"
    assert "Permitted" in developer_page.inner_text("#check-result")
    with developer_page.expect_download() as download:
        developer_page.click("text=Download receipt")
    assert download.value.suggested_filename.endswith(".json")

    # The studio revokes, confirming first.
    studio_page.click("#grants >> text=Revoke")
    studio_page.fill("textarea[name=reason]", "Contract ended")
    studio_page.click("#confirm-revoke")
    studio_page.wait_for_url(re.compile(r"/studio/works/[0-9a-f-]+/$"))
    assert "Revoked" in studio_page.inner_text("#grants")

    # The same check now says not permitted.
    assert check_dropped_image(developer_page, image) == "not_permitted"
    assert "The permission has been revoked." in developer_page.inner_text("#check-result")


def test_japanese_pages_have_no_untranslated_strings(open_page, studio, developer):
    pieces = english_msgids()
    image = make_image_bytes(7)
    studio_page = open_page("ja")
    log_in(studio_page, owner_of(studio).email)
    assert_no_english(studio_page, pieces)
    studio_page.goto("/studio/works/new/")
    assert studio_page.locator("html").get_attribute("lang") == "ja"
    assert_no_english(studio_page, pieces)
    studio_page.fill("input[name=title]", "千と千尋の神隠し")
    studio_page.fill("input[name=external_ref]", "SEN-1")
    drop_file(studio_page, "[data-dropzone]", "sen.png", image)
    studio_page.click("form.card button[type=submit]")
    studio_page.wait_for_url(re.compile(r"/studio/works/[0-9a-f-]+/$"))
    assert_no_english(studio_page, pieces)
    studio_page.click("text=許諾する")
    assert_no_english(studio_page, pieces)
    studio_page.select_option("select[name=licensee]", developer.slug)
    studio_page.fill("input[name=territories]", "JP")
    studio_page.click("#review-grant")
    effect = studio_page.inner_text("#effect-text")
    assert effect.startswith(
        "Acme AIは、「千と千尋の神隠し」とその配下のすべての作品を、生成AIモデルの学習のために、日本で")
    assert_no_english(studio_page, pieces)
    studio_page.click("#issue-grant")
    studio_page.wait_for_url(re.compile(r"/studio/works/[0-9a-f-]+/$"))
    assert_no_english(studio_page, pieces)
    work_path = urlsplit(studio_page.url).path
    work_id = work_path.rstrip("/").rsplit("/", 1)[1]
    for path in (f"{work_path}edit/", f"{work_path}withdraw/", f"/disputes/new/?work={work_id}"):
        studio_page.goto(path)
        assert_no_english(studio_page, pieces)
    for path in ("/studio/", "/studio/works/", "/studio/grants/", "/studio/activity/", "/studio/requests/",
                 "/disputes/", "/"):
        studio_page.goto(path)
        assert_no_english(studio_page, pieces)

    developer_page = open_page("ja")
    log_in(developer_page, owner_of(developer).email)
    assert check_dropped_image(developer_page, image, territory="JP") == "permitted"
    assert "許可" in developer_page.inner_text("#check-result")
    assert_no_english(developer_page, pieces)
    for path in ("/developer/", "/developer/keys/", "/developer/usage/", "/developer/requests/new/", "/verify/"):
        developer_page.goto(path)
        assert_no_english(developer_page, pieces)
    # Times default to Tokyo for Japanese readers; the header switcher changes that at once.
    assert developer_page.input_value("#time-zone") == "Asia/Tokyo"
    with developer_page.expect_navigation():
        developer_page.select_option("#time-zone", "UTC")
    assert developer_page.input_value("#time-zone") == "UTC"
    assert urlsplit(developer_page.url).path == "/verify/"
    assert Organization.objects.count() == 2
