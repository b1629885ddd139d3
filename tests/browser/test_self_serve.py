"""A studio goes live with nobody's help but a reviewer's, on a phone: sign up, create the studio, ask to
be verified, a reviewer verifies it on the desk, and its grant then permits in a developer's console."""

from __future__ import annotations

import re

import pytest
from django.core import mail

from registry.models import Organization, VerificationRequest
from tests.browser.conftest import log_in
from tests.browser.phone import assert_fits_phone
from tests.browser.test_grant_check_revoke import check_dropped_image, drop_file
from tests.conftest import owner_of
from tests.factories import make_image_bytes

pytestmark = pytest.mark.django_db(transaction=True)

PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"


def confirm_email_if_asked(page, email: str, password: str) -> None:
    """Sign-up may ask to confirm the address first: follow the link the registry mailed, and log in
    when the link asks for it (the mailbox and the password together confirm the address)."""
    if "/organisations/new/" in page.url:
        return
    links = [m for message in mail.outbox for m in re.findall(r"https?://\S+/accounts/confirm/\S+", message.body)]
    assert links, f"sign-up ended on {page.url} without a confirmation mail"
    page.goto(links[-1])
    if "/accounts/login/" in page.url:
        page.fill("input[name=username]", email)
        page.fill("input[name=password]", password)
        page.click("form.stack button[type=submit]")
        page.wait_for_load_state()


def sign_up_a_studio(page, email: str, name: str) -> None:
    page.goto("/accounts/signup/")
    assert_fits_phone(page)
    page.fill("input[name=email]", email)
    page.fill("input[name=password]", "a-long-passphrase-42")
    page.click("form.stack button[type=submit]")
    page.wait_for_load_state()
    confirm_email_if_asked(page, email, "a-long-passphrase-42")
    page.wait_for_url(re.compile(r"/organisations/new/"))
    assert_fits_phone(page)
    page.fill("input[name=name]", name)
    page.check("input[name=kind][value=rightsholder]")
    page.click("form.stack button[type=submit]")
    page.wait_for_url(re.compile(r"/studio/$"))


def test_a_studio_signs_up_is_verified_and_its_grant_permits(open_page, developer, reviewer):
    image = make_image_bytes(77)
    studio = open_page(phone=True)
    sign_up_a_studio(studio, "founder@sakura.example.jp", "Sakura Studio")
    assert_fits_phone(studio)
    assert "not verified yet" in studio.inner_text("#verification-banner")

    # Ask to be verified from the banner.
    studio.click("#ask-verification")
    studio.wait_for_url(re.compile(r"/organisation/verification/$"))
    assert_fits_phone(studio)
    studio.fill("input[name=legal_name]", "Kabushiki Kaisha Sakura Studio")
    studio.fill("input[name=country]", "JP")
    studio.fill("input[name=registration_number]", "5835678256246")
    studio.fill("input[name=website]", "sakura.example.jp")
    studio.set_input_files("input[name=evidence]", files=[
        {"name": "touki.pdf", "mimeType": "application/pdf", "buffer": PDF}])
    studio.click("#send-verification")
    studio.wait_for_url(re.compile(r"/organisation/verification/$"))
    assert studio.get_attribute("#verification-status", "data-status") == "pending"
    assert VerificationRequest.objects.get().website == "https://sakura.example.jp"

    # Register a work with its image and grant it to any verified AI developer — chosen, not defaulted.
    studio.goto("/studio/works/new/")
    studio.fill("input[name=title]", "Sakura cel 1")
    studio.fill("input[name=external_ref]", "SAK-1")
    studio.select_option("select[name=kind]", "image")
    drop_file(studio, "[data-dropzone]", "sakura-1.png", image)
    studio.click("form.card button[type=submit]")
    studio.wait_for_url(re.compile(r"/studio/works/[0-9a-f-]+/$"))
    studio.click("text=Grant permission")
    assert_fits_phone(studio)
    studio.select_option("select[name=licensee]", "*")
    studio.check("input[name=purposes][value=train-genai]")
    studio.click("#review-grant")
    studio.click("#issue-grant")
    studio.wait_for_url(re.compile(r"/studio/works/[0-9a-f-]+/$"))
    assert_fits_phone(studio)
    assert "counts once your organisation is verified" in studio.inner_text("#grants")

    # Not yet: an unverified studio's grant counts for nothing.
    developer_page = open_page(phone=True)
    log_in(developer_page, owner_of(developer).email)
    assert check_dropped_image(developer_page, image) == "not_permitted"
    assert_fits_phone(developer_page)

    # A reviewer lands on the desk and verifies the studio from the verification queue.
    desk = open_page(phone=True)
    log_in(desk, reviewer.email)
    assert desk.url.endswith("/desk/")
    assert_fits_phone(desk)
    desk.click("text=Verification")
    desk.wait_for_url(re.compile(r"/desk/verification/$"))
    assert_fits_phone(desk)
    card = desk.locator(".verification-request").filter(has_text="Sakura Studio")
    assert "5835678256246" in card.inner_text() and "touki.pdf" in card.inner_text()
    card.locator("button.verify").click()
    desk.wait_for_load_state()
    assert Organization.objects.get(name="Sakura Studio").is_verified

    # The studio is told on its dashboard; its grant is in force and permits.
    studio.goto("/studio/")
    assert studio.get_attribute("#verification-status", "data-status") == "verified"
    assert studio.locator("#verification-banner").count() == 0
    assert check_dropped_image(developer_page, image) == "permitted"
    assert_fits_phone(developer_page)
