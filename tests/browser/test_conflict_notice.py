"""Two studios register the same identifier: the second is told on the spot, the first on its dashboard."""

from __future__ import annotations

import re

import pytest

from registry.access import Actor
from registry.services.works import work_register
from tests.browser.conftest import log_in
from tests.browser.phone import assert_fits_phone
from tests.conftest import owner_of

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.mark.parametrize("language", ["en", "ja"])
def test_a_conflicting_registration_is_announced_to_both_studios(open_page, studio, make_org, language):
    hoshi = make_org(name="Studio Hoshi")
    earlier = work_register(actor=Actor.for_user(owner_of(hoshi)), organization=hoshi, external_ref="H-1",
                            title="Hoshi key art", identifiers=["isbn:978-4-04-102622-9"])
    page = open_page(language, phone=True)
    log_in(page, owner_of(studio).email)
    page.goto("/studio/works/new/")
    page.fill("input[name=title]", "Our key art")
    page.fill("input[name=external_ref]", "K-1")
    page.fill("textarea[name=identifiers]", "isbn:978-4-04-102622-9")
    page.click("form.card button[type=submit]")
    page.wait_for_url(re.compile(r"/studio/works/[0-9a-f-]+/$"))
    assert page.locator(".messages .msg.warning").count() == 1
    assert "Studio Hoshi" in page.inner_text(".messages .msg.warning")
    assert page.locator("#disputed-badge").is_visible()
    assert_fits_phone(page)

    other = open_page(language, phone=True)
    log_in(other, owner_of(hoshi).email)
    assert other.locator("#dashboard-disputes").is_visible()
    other.goto(f"/studio/works/{earlier.pk}/")
    assert "Studio Aozora" in other.inner_text("#conflict-notice")
    other.click("#conflict-notice a")
    other.wait_for_url(re.compile(r"/disputes/[0-9a-f-]+/$"))
    assert_fits_phone(other)
