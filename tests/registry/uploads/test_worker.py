"""Uploads processed by a real Celery worker process on the real Redis and PostgreSQL.

The worker is `celery -A portal worker --pool=solo`, started as a subprocess against this
test's database; it only sees committed rows, hence transactional tests (the audit chain
head, flushed with the tables, is recreated on the first append).
"""

from __future__ import annotations

import glob
import itertools
import os
import tempfile
import time

import pytest
from django.db.models import Count

from registry.models import AuditEvent, ContentFile, PerceptualHash, Work, WorkIdentifier, WorkURL
from registry.services.audit import audit_verify
from tests.factories import make_image_bytes
from tests.registry.uploads.conftest import (
    WORKER_VISIBILITY_TIMEOUT,
    catalog_rows,
    csv_manifest,
    upload_state,
    wait_for,
    zip_archive,
)
from tests.registry.uploads.test_api import post_upload

pytestmark = [pytest.mark.celery_worker, pytest.mark.django_db(transaction=True)]


def wait_until_finished(upload_id, timeout: float = 180):
    return wait_for(lambda: (state := upload_state(upload_id)).status in ("done", "failed", "cancelled") and state,
                    timeout=timeout, interval=0.2, what=f"upload {upload_id} to finish")


def chunk_positions(upload_id) -> list[list[int]]:
    return [event.data["positions"] for event in
            AuditEvent.objects.filter(action="bulk_upload.chunk", object_id=str(upload_id)).order_by("seq")]


def test_a_worker_registers_an_upload_sent_through_the_api(celery_worker, client_for, studio):
    images = {f"cels/{n:03d}.png": make_image_bytes(n) for n in range(1, 21)}
    rows = catalog_rows(300)
    for row, name in zip(rows, images, strict=False):
        row["file"] = name
    rows[-1]["title"] = ""  # one bad row
    client = client_for(studio, ["uploads"])
    response = post_upload(client, csv_manifest(rows), zip_archive(images))
    assert response.status_code == 202
    upload = wait_until_finished(response.json()["id"])
    assert upload.status == "done", upload.error
    body = client.get(f"/api/v1/uploads/{upload.pk}").json()
    assert (body["total_rows"], body["processed_rows"], body["created"], body["updated"], body["failed"]) == (
        300, 300, 299, 0, 1)
    assert Work.objects.filter(owner=studio).count() == 299
    assert ContentFile.objects.filter(work__owner=studio).exclude(file="").count() == 20
    assert PerceptualHash.objects.filter(work__owner=studio).count() == 20
    assert list(upload.errors.values_list("row", "field")) == [(300, "title")]
    assert "Task registry.tasks.process_bulk_upload[" in celery_worker.output()


def test_a_worker_killed_mid_upload_loses_and_duplicates_nothing(celery_worker, start_upload, studio):
    total = 30_000
    upload = start_upload(csv_manifest(catalog_rows(total)))
    wait_for(lambda: upload_state(upload.pk).committed_through_row > 0, timeout=120, interval=0.02,
             what="the first committed chunk")
    celery_worker.kill()
    at_kill = upload_state(upload.pk)
    assert at_kill.status == "processing" and 0 < at_kill.committed_through_row < total
    # The message was never acknowledged; after the visibility timeout Redis hands it out again.
    time.sleep(WORKER_VISIBILITY_TIMEOUT + 1)
    celery_worker.start()
    upload = wait_until_finished(upload.pk)
    assert upload.status == "done", upload.error
    assert (upload.total_rows, upload.processed_rows, upload.committed_through_row) == (total, total, total)
    assert (upload.created_count, upload.updated_count, upload.failed_count) == (total, 0, 0)
    assert Work.objects.filter(owner=studio).count() == total
    assert not Work.objects.values("external_ref").annotate(n=Count("pk")).filter(n__gt=1).exists()
    assert WorkURL.objects.filter(work__owner=studio).count() == total
    assert WorkIdentifier.objects.filter(work__owner=studio).count() == total
    # Every row was committed exactly once: the chunks tile 1..total without gaps or overlaps.
    positions = chunk_positions(upload.pk)
    assert positions[0][0] == 1 and positions[-1][1] == total
    assert all(later[0] == earlier[1] + 1 for earlier, later in itertools.pairwise(positions))
    assert audit_verify().ok
    assert "process_bulk_upload" in celery_worker.output()  # the second worker finished it
    # The killed worker's scratch index was cleared by the next delivery, and that one's by itself.
    assert not glob.glob(os.path.join(tempfile.gettempdir(), f"kyoka-upload-{upload.pk}-*"))


def test_the_same_manifest_twice_creates_no_duplicates_and_a_changed_one_applies(celery_worker, start_upload, studio):
    rows = catalog_rows(2500)
    first = wait_until_finished(start_upload(csv_manifest(rows)).pk)
    again = wait_until_finished(start_upload(csv_manifest(rows)).pk)
    assert (first.created_count, first.updated_count) == (2500, 0)
    assert (again.created_count, again.updated_count, again.failed_count) == (0, 2500, 0)
    assert Work.objects.filter(owner=studio).count() == 2500
    assert WorkURL.objects.filter(work__owner=studio).count() == 2500
    rows[0]["title"] = "Cel 1 (retake)"
    rows[1]["urls"] = "https://aozora.example/cels/retake-2.png"
    rows.append({"external_ref": "CEL-EXTRA", "title": "Extra", "kind": "image"})
    changed = wait_until_finished(start_upload(csv_manifest(rows)).pk)
    assert (changed.created_count, changed.updated_count, changed.failed_count) == (1, 2500, 0)
    assert Work.objects.filter(owner=studio).count() == 2501
    assert Work.objects.get(owner=studio, external_ref="CEL-000001").title == "Cel 1 (retake)"
    assert list(WorkURL.objects.filter(work__external_ref="CEL-000002").values_list("url", flat=True)) == [
        "https://aozora.example/cels/retake-2.png"]
