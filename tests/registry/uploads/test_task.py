"""The task's delivery settings: what makes redelivery after a dead worker safe and timely."""

from __future__ import annotations

from django.conf import settings

from registry.tasks import process_bulk_upload


def test_the_task_is_acknowledged_late_and_requeued_when_its_worker_dies():
    assert process_bulk_upload.acks_late is True
    assert process_bulk_upload.reject_on_worker_lost is True
    assert settings.CELERY_WORKER_PREFETCH_MULTIPLIER == 1


def test_a_running_task_is_never_handed_to_a_second_worker():
    assert 0 < process_bulk_upload.soft_time_limit < process_bulk_upload.time_limit
    visibility_timeout = settings.CELERY_BROKER_TRANSPORT_OPTIONS.get("visibility_timeout")
    if visibility_timeout is not None:  # Redis; the filesystem transport has no such timeout
        assert process_bulk_upload.time_limit < visibility_timeout
