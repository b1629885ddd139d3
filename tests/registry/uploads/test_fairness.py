"""Queue fairness: uploads by size on two queues, and one upload per organisation at a time."""

from __future__ import annotations

import pytest
import redis
from django.conf import settings

from registry.models import BulkUpload
from registry.tasks import process_bulk_upload
from registry.uploads.fairness import (
    LARGE_QUEUE,
    SMALL_QUEUE,
    organization_turn,
    route_task,
    upload_queue,
)
from tests.factories import make_image_bytes
from tests.registry.uploads.conftest import catalog_rows, csv_manifest, zip_archive


def test_small_uploads_have_a_queue_of_their_own():
    assert upload_queue(manifest_bytes=100_000, archive_bytes=0) == SMALL_QUEUE
    assert upload_queue(manifest_bytes=50 * 1024 * 1024, archive_bytes=0) == LARGE_QUEUE
    assert upload_queue(manifest_bytes=1000, archive_bytes=2 * 1024**3) == LARGE_QUEUE


@pytest.mark.django_db
def test_the_router_sends_an_upload_by_its_stored_size(start_upload):
    small = start_upload(csv_manifest(catalog_rows(10)))
    large = start_upload(csv_manifest(catalog_rows(60_000, title="A longer title for every row")))
    with_files = start_upload(csv_manifest(catalog_rows(2)), zip_archive({"a.png": make_image_bytes(1)}))

    def queue(upload: BulkUpload) -> str:
        return route_task("registry.tasks.process_bulk_upload", (), {"upload_id": str(upload.pk)}, {})["queue"]

    assert (queue(small), queue(large), queue(with_files)) == (SMALL_QUEUE, LARGE_QUEUE, SMALL_QUEUE)
    assert route_task("registry.tasks.send_mail", (), {}, {}) is None


def test_an_organisation_has_one_turn_at_a_time():
    with organization_turn(organization_id="fairness-test", upload_id="A", ttl_seconds=60) as first:
        with organization_turn(organization_id="fairness-test", upload_id="B", ttl_seconds=60) as second:
            assert (first, second) == (True, False)
        with organization_turn(organization_id="fairness-other", upload_id="C", ttl_seconds=60) as other:
            assert other is True
    with organization_turn(organization_id="fairness-test", upload_id="B", ttl_seconds=60) as again:
        assert again is True


def test_an_upload_redelivered_after_its_worker_died_takes_its_own_turn_back():
    broker = redis.Redis.from_url(settings.REDIS_URL)
    broker.set("kyoka:upload-turn:fairness-killed", "A", ex=60)  # left by a worker killed mid-run
    try:
        with organization_turn(organization_id="fairness-killed", upload_id="B", ttl_seconds=60) as other:
            assert other is False
        with organization_turn(organization_id="fairness-killed", upload_id="A", ttl_seconds=60) as own:
            assert own is True
        assert broker.get("kyoka:upload-turn:fairness-killed") is None
    finally:
        broker.delete("kyoka:upload-turn:fairness-killed")


@pytest.mark.django_db
def test_an_upload_whose_organisation_is_busy_waits_on_the_queue_untouched(start_upload):
    upload = start_upload(csv_manifest(catalog_rows(5)))
    broker = redis.Redis.from_url(settings.CELERY_BROKER_URL)
    broker.delete(SMALL_QUEUE)
    try:
        with organization_turn(organization_id=upload.organization_id, upload_id="another", ttl_seconds=60) as held:
            assert held
            process_bulk_upload.run(upload_id=str(upload.pk))
        waiting = broker.llen(SMALL_QUEUE)
    finally:
        broker.delete(SMALL_QUEUE)

    upload.refresh_from_db()
    assert upload.status == BulkUpload.Status.PENDING and upload.processed_rows == 0
    assert waiting == 1  # put back for later, on its own queue
