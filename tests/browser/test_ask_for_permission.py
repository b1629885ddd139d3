"""From a console answer, "Ask for permission" asks that work's owner about that work only."""

from __future__ import annotations

import io
import re

import pytest

from registry.access import Actor
from registry.models import PermissionRequest
from registry.services.works import content_file_add, work_register
from tests.browser.conftest import log_in
from tests.browser.phone import assert_fits_phone
from tests.browser.test_grant_check_revoke import check_dropped_image
from tests.conftest import owner_of
from tests.factories import make_image_bytes

pytestmark = pytest.mark.django_db(transaction=True)


def test_asking_from_a_console_result_reaches_the_right_studio_for_the_right_work(
        open_page, studio, developer, make_org):
    make_org(name="Aardvark Pictures")  # first in any alphabetical list of studios: must not be preselected
    owner = make_org(name="Zephyr Studio", verified=False)
    image = make_image_bytes(31)
    work = work_register(actor=Actor.for_user(owner_of(owner)), organization=owner, external_ref="Z-7",
                         title="Zephyr cel 7")
    content_file_add(actor=Actor.for_user(owner_of(owner)), work=work, fileobj=io.BytesIO(image), filename="z7.png")

    page = open_page(phone=True)
    log_in(page, owner_of(developer).email)
    assert check_dropped_image(page, image) == "not_permitted"
    page.click("#check-result >> text=Ask for permission")
    page.wait_for_url(re.compile(r"/developer/requests/new/\?"))
    assert_fits_phone(page)
    assert "To Zephyr Studio, about “Zephyr cel 7”" in page.inner_text("#request-subject")
    assert page.locator("select[name=rightsholder]").count() == 0
    page.fill("textarea[name=message]", "For our illustration model")
    page.click("form.card button[type=submit]")
    page.wait_for_url(re.compile(r"/developer/requests/$"))

    request = PermissionRequest.objects.get()
    assert (request.rightsholder, request.work, request.purposes) == (owner, work, ["train-genai"])

    inbox = open_page(phone=True)
    log_in(inbox, owner_of(owner).email)
    inbox.goto("/studio/requests/")
    assert "For our illustration model" in inbox.inner_text("main")
    assert_fits_phone(inbox)
