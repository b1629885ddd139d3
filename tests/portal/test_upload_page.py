"""The bulk upload page tells the truth about failures, lists the failed rows and offers a template."""

from __future__ import annotations

import csv
import io

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from registry.models import BulkUpload
from registry.services.uploads import bulk_upload_process

pytestmark = pytest.mark.django_db


def upload(client, manifest: bytes) -> BulkUpload:
    client.post(reverse("web:uploads"), {"manifest": SimpleUploadedFile("catalog.csv", manifest)})
    found = BulkUpload.objects.latest("created_at")
    while bulk_upload_process(upload_id=str(found.pk)):
        pass
    found.refresh_from_db()
    return found


def test_done_with_a_failed_row_is_a_warning_and_the_row_is_listed(studio_client):
    done = upload(studio_client, b"external_ref,title,kind\nA-1,Fine,image\nA-2,,image\n")
    page = studio_client.get(reverse("web:upload_detail", args=[done.pk])).content.decode()
    assert "Done — 1 row failed" in page and 'class="badge s-pending"' in page
    assert 'id="failed-rows"' in page and "<code>A-2</code>" in page and "<code>title</code>" in page
    assert "Row 1 is the first row under the header" in page
    assert reverse("web:upload_errors", args=[done.pk]) in page


def test_done_without_failures_is_plain_done(studio_client):
    done = upload(studio_client, b"external_ref,title,kind\nA-1,Fine,image\n")
    page = studio_client.get(reverse("web:upload_detail", args=[done.pk])).content.decode()
    assert 'data-status="done"' in page and 'class="badge s-active"' in page
    assert "row failed" not in page and 'id="failed-rows"' not in page


def test_the_page_lists_at_most_a_hundred_problems_and_points_to_the_report(studio_client):
    rows = "".join(f"B-{n},,image\n" for n in range(130))
    done = upload(studio_client, ("external_ref,title,kind\n" + rows).encode())
    page = studio_client.get(reverse("web:upload_detail", args=[done.pk])).content.decode()
    assert page.count("<td class=\"num\">") == 100
    assert "The first 100 problems are shown; the report holds them all." in page


def test_the_template_is_a_manifest_the_upload_accepts(studio_client):
    response = studio_client.get(reverse("web:upload_template"))
    assert response["Content-Disposition"].endswith('"kyoka-manifest-template.csv"')
    text = response.content.decode("utf-8-sig")
    header = next(csv.reader(io.StringIO(text)))
    assert header[:3] == ["external_ref", "title", "kind"] and "urls" in header and "identifiers" in header
    # Without its archive the row naming a file fails; every other row registers.
    done = upload(studio_client, text.encode())
    assert (done.created_count, done.failed_count) == (2, 1)
    assert done.errors.get().field == "file"
