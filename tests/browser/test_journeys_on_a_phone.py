"""Every page of the studio's, the developer's and the reviewer's journeys, at 390 px, in English and Japanese.

At phone width nothing is wider than the screen and every table's last column is in sight; in Japanese
no English catalog string is left and no raw code (``not_permitted``, ``user:7:email``) reaches the reader.
"""

from __future__ import annotations

import io
import re

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from registry.access import Actor
from registry.decisions.run import check_run
from registry.models import Dispute, Organization
from registry.services.disputes import dispute_open
from registry.services.grants import grant_issue
from registry.services.permission_requests import permission_request_create
from registry.services.uploads import bulk_upload_process, bulk_upload_start
from registry.services.verification import verification_request_submit
from registry.services.works import content_file_add, work_register
from tests.browser.conftest import log_in
from tests.browser.phone import assert_fits_phone
from tests.browser.test_grant_check_revoke import assert_no_english, english_msgids
from tests.conftest import owner_of
from tests.factories import make_image_bytes

pytestmark = pytest.mark.django_db(transaction=True)

# Words the registry uses as codes: snake_case tokens and internal labels such as user:7:email.
RAW_CODE = re.compile(r"\b[a-z]+(?:_[a-z]+)+\b|\b(?:user|key|system):\d+\b")
VISIBLE_TEXT_WITHOUT_CODE = """() => {
  const clone = document.body.cloneNode(true);
  clone.querySelectorAll("code, .mono, script, style, .visually-hidden, select, textarea, input")
    .forEach(e => e.remove());
  return clone.innerText;
}"""


def as_owner(org: Organization) -> Actor:
    return Actor.for_user(owner_of(org))


@pytest.fixture
def living_registry(studio, developer, make_org):
    """A studio with a work, a file, a grant, checks, a dispute, a request, an upload; a pending verification."""
    image = make_image_bytes(5)
    work = work_register(actor=as_owner(studio), organization=studio, external_ref="SA-1", title="Sakura cel 1",
                         kind="image", urls=["https://cdn.example.com/img/w_400,h_300/sakura-1.png"])
    content_file_add(actor=as_owner(studio), work=work, fileobj=io.BytesIO(image), filename="sakura-1.png")
    grant_issue(actor=as_owner(studio), grantor=studio, scope="catalog", licensee=developer,
                purposes=["train-genai"], territories=["JP"])
    for purpose in ("train-genai", "search"):
        check_run(actor=as_owner(developer), organization=developer, purpose=purpose, territory="JP",
                  items=[{"url": "https://cdn.example.com/img/w_400,h_300/sakura-1.png"}, {"sha256": "0" * 64}])
    rival = make_org(name="Rival Pictures")
    copy = work_register(actor=as_owner(rival), organization=rival, external_ref="R-1", title="Rival copy")
    dispute_open(actor=as_owner(studio), claimant=studio, kind=Dispute.Kind.OWNERSHIP, works=[copy],
                 statement="Our cel, published 2024.")
    permission_request_create(actor=as_owner(developer), requester=developer, rightsholder=studio, work=work,
                              purposes=["train-ai"], message="For our illustration model")
    newcomer = make_org(name="Hoshi Animation", verified=False)
    verification_request_submit(actor=as_owner(newcomer), organization=newcomer, legal_name="KK Hoshi Animation",
                                country="JP", registration_number="5835678256246")
    manifest = b"external_ref,title,kind\nSA-2,Sakura cel 2,image\nSA-3,,image\n"
    upload = bulk_upload_start(actor=as_owner(studio), organization=studio,
                               manifest=SimpleUploadedFile("catalog.csv", manifest))
    while bulk_upload_process(upload_id=str(upload.pk)):
        pass
    return {"work": work, "upload": upload}


def studio_pages(data) -> list[str]:
    work, upload = data["work"], data["upload"]
    return ["/studio/", "/studio/works/", f"/studio/works/{work.pk}/", "/studio/works/new/",
            f"/studio/works/{work.pk}/grant/", f"/studio/works/{work.pk}/edit/", "/studio/grants/",
            "/studio/grants/new/", "/studio/activity/", "/studio/requests/", "/studio/uploads/",
            f"/studio/uploads/{upload.pk}/", "/disputes/", "/disputes/new/", "/members/",
            "/organisation/verification/", "/developer/keys/"]


DEVELOPER_PAGES = ["/developer/", "/developer/check/", "/developer/keys/", "/developer/usage/",
                   "/developer/requests/", "/developer/requests/new/", "/disputes/", "/verify/",
                   "/organisation/verification/"]
REVIEWER_PAGES = ["/desk/", "/desk/verification/", "/desk/organizations/", "/desk/history/"]
PUBLIC_PAGES = ["/", "/accounts/login/", "/accounts/signup/", "/verify/"]


def visit(page, path: str, *, pieces: list[str] | None) -> None:
    response = page.goto(path)
    assert response.status == 200, f"{path}: {response.status}"
    assert_fits_phone(page)
    if pieces is not None:
        assert page.locator("html").get_attribute("lang") == "ja"
        assert_no_english(page, pieces)
        text = re.sub(r"\S+@\S+", "", page.evaluate(VISIBLE_TEXT_WITHOUT_CODE))  # people's addresses are data
        codes = RAW_CODE.findall(text)
        assert not codes, f"raw codes on {path}: {codes}"


def follow_links_within(page, prefix: str) -> list[str]:
    """The detail pages a list links to (dispute, check, organisation), so they are visited too."""
    hrefs = page.eval_on_selector_all("main a[href]", "links => links.map(a => a.getAttribute('href'))")
    return sorted({h for h in hrefs if re.fullmatch(prefix, h or "")})


@pytest.mark.parametrize("language", ["en", "ja"])
def test_every_journey_page_fits_a_phone_and_speaks_the_readers_language(
        open_page, living_registry, studio, developer, reviewer, language):
    pieces = english_msgids() if language == "ja" else None
    anonymous = open_page(language, phone=True)
    for path in PUBLIC_PAGES:
        visit(anonymous, path, pieces=pieces)

    studio_page = open_page(language, phone=True)
    log_in(studio_page, owner_of(studio).email)
    for path in studio_pages(living_registry):
        visit(studio_page, path, pieces=pieces)
    studio_page.goto("/disputes/")
    for path in follow_links_within(studio_page, r"/disputes/[0-9a-f-]{36}/"):
        visit(studio_page, path, pieces=pieces)

    developer_page = open_page(language, phone=True)
    log_in(developer_page, owner_of(developer).email)
    for path in DEVELOPER_PAGES:
        visit(developer_page, path, pieces=pieces)
    developer_page.goto("/developer/usage/")
    for path in follow_links_within(developer_page, r"/developer/checks/[0-9a-f-]{36}/")[:1]:
        visit(developer_page, path, pieces=pieces)
    # A console answer, with its table of results.
    developer_page.goto("/developer/check/")
    developer_page.fill("textarea[name=items]", "https://cdn.example.com/img/w_400,h_300/sakura-1.png\n" + "0" * 64)
    developer_page.click("#run-check")
    developer_page.locator("#check-result tr.result-row").first.wait_for()
    assert_fits_phone(developer_page)
    if pieces is not None:
        assert_no_english(developer_page, pieces)

    desk = open_page(language, phone=True)
    log_in(desk, reviewer.email)
    for path in REVIEWER_PAGES:
        visit(desk, path, pieces=pieces)
    desk.goto("/desk/")
    desk.goto("/desk/?status=all")
    for path in follow_links_within(desk, r"/desk/disputes/[0-9a-f-]{36}/")[:1]:
        visit(desk, path, pieces=pieces)
    desk.goto("/desk/organizations/")
    for path in follow_links_within(desk, r"/desk/organizations/\d+/")[:2]:
        visit(desk, path, pieces=pieces)
