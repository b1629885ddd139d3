"""Fairness between organisations' bulk uploads: one at a time per organisation, small ones apart.

Two rules, so that one organisation's 5-million-row catalog cannot hold every worker:
- Uploads go to one of two queues by size (`route_task`, Celery's task router): a manifest up to
  SMALL_MANIFEST_BYTES with an archive up to SMALL_ARCHIVE_BYTES goes to `uploads-small`, any
  other to `uploads`. Workers that consume `uploads-small` (docker-compose runs one) are never
  busy with a large upload, so a small upload waits only for other small ones.
- An organisation runs one upload at a time (`organization_turn`): a task that finds another of
  its organisation's uploads running puts itself back on the queue for a little later and does
  nothing else. The turn is a Redis key naming the upload that holds it, with a time to live
  longer than a task's hard time limit: the same upload redelivered after its worker was killed
  takes its own turn back at once (two runs of one upload are safe: see the upload service's
  chunk fence), and any other turn passes when the key expires. A large upload gives up its turn between
  its runs (each run works for TIME_BUDGET_SECONDS, then queues the rest), so a second upload of
  the same organisation is not starved either.
Without Redis (the embedded default, one solo worker) uploads already run one at a time.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from django.conf import settings

UPLOAD_TASK = "registry.tasks.process_bulk_upload"
LARGE_QUEUE = "uploads"
SMALL_QUEUE = "uploads-small"
SMALL_MANIFEST_BYTES = 2 * 1024 * 1024
SMALL_ARCHIVE_BYTES = 50 * 1024 * 1024
# How long a task that is not its organisation's turn waits before it is tried again.
RETRY_SECONDS = 15
_TURN_PREFIX = "kyoka:upload-turn:"
# Release only our own turn: a turn that expired and was taken by another upload stays theirs.
_RELEASE = "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0"


def upload_queue(*, manifest_bytes: int, archive_bytes: int) -> str:
    small = manifest_bytes <= SMALL_MANIFEST_BYTES and archive_bytes <= SMALL_ARCHIVE_BYTES
    return SMALL_QUEUE if small else LARGE_QUEUE


def _stored_size(field: Any) -> int:
    if not field:
        return 0
    try:
        return field.size
    except OSError:
        return 0  # gone from storage: the task will fail it, quickly, on either queue


def route_task(name: str, args: Any, kwargs: Any, options: Any, task: Any = None, **extra: Any) -> dict | None:
    """Celery task router (CELERY_TASK_ROUTES): the upload task's queue by the upload's size."""
    if name != UPLOAD_TASK:
        return None
    from registry.models import BulkUpload

    upload = BulkUpload.objects.filter(pk=(kwargs or {}).get("upload_id")).only("manifest", "archive").first()
    if upload is None:
        return {"queue": SMALL_QUEUE}
    return {"queue": upload_queue(manifest_bytes=_stored_size(upload.manifest),
                                  archive_bytes=_stored_size(upload.archive))}


def _client() -> Any:
    url = getattr(settings, "REDIS_URL", "")
    if not url:
        return None
    import redis

    return redis.Redis.from_url(url, socket_timeout=5, socket_connect_timeout=5)


@contextmanager
def organization_turn(*, organization_id: object, upload_id: str, ttl_seconds: int) -> Iterator[bool]:
    """True while this upload holds its organisation's turn, False if another upload has it."""
    client = _client()
    if client is None:
        yield True
        return
    key, token = f"{_TURN_PREFIX}{organization_id}", str(upload_id)
    if not client.set(key, token, nx=True, ex=ttl_seconds) and client.get(key) != token.encode():
        yield False
        return
    try:
        yield True
    finally:
        client.eval(_RELEASE, 1, key, token)
