"""A bulk upload started in the browser runs to done on a real Celery worker, its progress bar moving."""

from __future__ import annotations

import base64
import re
import time

import pytest

from registry.models import Work
from tests.browser.conftest import log_in
from tests.conftest import owner_of
from tests.registry.uploads.conftest import celery_worker  # noqa: F401 - the shared worker fixture

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.celery_worker]

ROWS = 30_000

DROP_CSV = """([selector, name, b64]) => {
  const bytes = Uint8Array.from(atob(b64), c => c.charCodeAt(0));
  const transfer = new DataTransfer();
  transfer.items.add(new File([bytes], name, {type: "text/csv"}));
  document.querySelector(selector).dispatchEvent(
    new DragEvent("drop", {dataTransfer: transfer, bubbles: true, cancelable: true}));
}"""


def manifest(rows: int) -> bytes:
    lines = ["external_ref,title,kind"]
    lines += [f"CEL-{n:06d},Cel {n},image" for n in range(rows)]
    lines.append(",Missing reference,image")  # one bad row, for the error report
    return ("\n".join(lines) + "\n").encode()


def test_bulk_upload_runs_to_done_with_a_moving_progress_bar(open_page, studio, celery_worker):  # noqa: F811
    page = open_page()
    log_in(page, owner_of(studio).email)
    page.goto("/studio/uploads/")
    page.evaluate(DROP_CSV, ["#upload-form [data-dropzone]", "catalog.csv", base64.b64encode(manifest(ROWS)).decode()])
    page.locator("#upload-form .files-chosen").filter(has_text="catalog.csv").first.wait_for()
    page.click("#start-upload")
    page.wait_for_url(re.compile(r"/studio/uploads/[0-9a-f-]+/$"))

    seen: list[int] = []
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        value = int(float(page.get_attribute("#upload-bar", "value") or 0))
        if not seen or seen[-1] != value:
            seen.append(value)
        if page.locator("#upload-progress [data-status=done]").count():
            break
        time.sleep(0.1)
    assert page.locator("#upload-progress [data-status=done]").count() == 1, page.inner_text("#upload-progress")
    # The bar and the status arrive in one swap; read the bar again after seeing "done", since the
    # swap may land between the two reads of the last loop.
    final = int(float(page.get_attribute("#upload-bar", "value") or 0))
    if seen[-1] != final:
        seen.append(final)
    assert final == 100
    assert any(0 < value < 100 for value in seen), f"the bar never showed progress between 0 and 100: {seen}"
    assert seen == sorted(seen), f"the bar went backwards: {seen}"
    assert Work.objects.filter(owner=studio).count() == ROWS
    with page.expect_download() as download:
        page.click("#error-report")
    report = download.value.path().read_text(encoding="utf-8-sig")
    assert "external_ref" in report.splitlines()[1]
