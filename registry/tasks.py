"""Celery tasks: primitive keyword arguments, one service call each; the services hold the logic.

Every task is acknowledged late and rejected when its worker dies: settings.CELERY_TASK_ACKS_LATE and
CELERY_TASK_REJECT_ON_WORKER_LOST, set once there, so each task must be safe to run twice.

Each task imports its service inside its body: services queue tasks, so the import runs one way.
"""

from __future__ import annotations

import logging
from smtplib import SMTPException

from celery import shared_task
from celery.exceptions import SoftTimeLimitExceeded
from django.db import InterfaceError, OperationalError

logger = logging.getLogger(__name__)

# One upload task runs this long, then hands the rest to a fresh task (well inside its time limits).
TIME_BUDGET_SECONDS = 10 * 60
UNEXPECTED_UPLOAD_ERROR = (
    "Processing stopped on an internal error. The rows committed before it are registered; upload "
    "the manifest again to finish (registered rows are updated, not duplicated)."
)


@shared_task(
    # Backstops for the prefork pool (the solo pool of the embedded default cannot enforce them):
    # the service itself stops after TIME_BUDGET_SECONDS and queues the rest. The broker's
    # visibility timeout (settings) is longer than the hard limit, so a running task is never
    # handed to a second worker; one whose worker died comes back after that timeout.
    soft_time_limit=TIME_BUDGET_SECONDS * 2,
    time_limit=TIME_BUDGET_SECONDS * 2 + 120,
    autoretry_for=(OperationalError, InterfaceError),
    retry_backoff=True,
    retry_backoff_max=300,
    max_retries=8,
)
def process_bulk_upload(*, upload_id: str) -> None:
    # Redelivery and retries are safe: every chunk commits only right after the last committed
    # one (checked under the upload row's lock) and upserts by (organisation, external_ref), so
    # a second run never applies a row twice and carries on where the first one stopped.
    # One upload per organisation at a time (registry/uploads/fairness.py): when another is
    # running, this one goes back on the queue for later, having done nothing.
    from registry.models import BulkUpload
    from registry.services.uploads import bulk_upload_fail, bulk_upload_process
    from registry.uploads.fairness import RETRY_SECONDS, organization_turn

    organization_id = BulkUpload.objects.filter(pk=upload_id).values_list("organization_id", flat=True).first()
    with organization_turn(
        organization_id=organization_id, upload_id=upload_id, ttl_seconds=TIME_BUDGET_SECONDS * 2 + 180) as turn:
        if not turn:
            process_bulk_upload.apply_async(kwargs={"upload_id": upload_id}, countdown=RETRY_SECONDS)
            return
        try:
            more = bulk_upload_process(upload_id=upload_id)
        except SoftTimeLimitExceeded:
            more = True  # the chunk in flight rolled back; the next run writes it
        except (OperationalError, InterfaceError):
            raise  # the database is away: retried with backoff
        except Exception:
            logger.exception("Bulk upload %s failed", upload_id)
            bulk_upload_fail(upload_id=upload_id, error=UNEXPECTED_UPLOAD_ERROR)
            raise
    if more:  # queued after the turn is given up, so the next run of this upload can take it
        process_bulk_upload.delay(upload_id=upload_id)


@shared_task(
    # Each network method is bounded (registry.hosts.proof.LOOKUP_SECONDS); these are backstops.
    soft_time_limit=60,
    time_limit=90,
    autoretry_for=(OperationalError, InterfaceError),
    retry_backoff=True,
    max_retries=5,
)
def host_verify(*, host_id: int, requested_by: str = "") -> None:
    # Retries and redelivery are safe: the lookup only reads from the network, and recording it
    # is one locked update that never un-proves a claim, so running it twice records the same.
    from registry.services.hosts import do_host_verify_lookup

    do_host_verify_lookup(host_id=host_id, requested_by=requested_by)


@shared_task(ignore_result=True)
def send_notification(*, notification: str, **ids: str | int) -> None:
    # Rendering reads committed rows and only queues messages, so a redelivery at worst queues a
    # message twice; nothing here retries, and a missing row (deleted since) just logs.
    from registry.services.notifications import deliver

    deliver(notification, **ids)


@shared_task(
    ignore_result=True,
    autoretry_for=(SMTPException, OSError),
    retry_backoff=30,
    retry_backoff_max=30 * 60,
    max_retries=8,
)
def send_email(*, subject: str, body: str, to: str) -> None:
    # One message per task, so a retry while the mail server is away resends only this one; at
    # worst (a server that accepted it but did not answer) the recipient gets it twice.
    from registry.services.notifications import send_email as send

    send(subject=subject, body=body, to=to)
