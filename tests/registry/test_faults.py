"""Faults: what Kyoka does when Redis or PostgreSQL goes away under it. Never a wrong answer.

Redis is made unreachable by pointing this process at a closed local port (the shared Redis
server keeps running for everyone else); PostgreSQL is cut by terminating exactly the worker's
own backend, found by the application_name the test gives it.
"""

from __future__ import annotations

import os
import uuid

import pytest
from django.conf import settings
from django.db import connection
from rest_framework.test import APIClient

from registry.models import Check, Work
from tests.api.conftest import new_key
from tests.registry.uploads.conftest import (
    WORKER_VISIBILITY_TIMEOUT,
    Worker,
    _database_url,
    _purge_broker,
    catalog_rows,
    csv_manifest,
    upload_state,
    wait_for,
)
from tests.registry.uploads.test_api import post_upload

# Nothing listens on port 1 of the loopback interface: connections are refused at once.
CLOSED_REDIS = "redis://127.0.0.1:1/0"


def registered_and_granted(studio, developer) -> None:
    """A work with an ISBN, granted to `developer` for tdm, set up through the API."""
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {new_key(studio, ['works:write', 'grants:write'])}")
    work = client.post("/api/v1/works", {"external_ref": "fault-1", "title": "Cel", "kind": "image",
                                         "identifiers": ["isbn:978-0-306-40615-7"]}, format="json")
    assert work.status_code == 201, work.content[:300]
    grant = client.post("/api/v1/grants", {
        "scope": "work", "work": work.json()["id"], "licensee": developer.slug, "purposes": ["tdm"],
    }, format="json")
    assert grant.status_code == 201, grant.content[:300]


@pytest.fixture
def redis_away(settings):
    settings.KYOKA_QUOTA_REDIS_URL = CLOSED_REDIS
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache",
                                   "LOCATION": CLOSED_REDIS, "KEY_PREFIX": "kyoka"}}
    return settings


@pytest.mark.django_db
def test_with_redis_away_a_check_is_a_clear_503_and_nothing_is_answered_or_recorded(redis_away, developer):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {new_key(developer, ['checks'])}")

    response = client.post("/api/v1/checks", {"purpose": "tdm", "items": [{"sha256": "a" * 64}]}, format="json")

    assert response.status_code == 503
    assert response.json()["error"]["code"] == "quota_unavailable"
    assert int(response["Retry-After"]) >= 1
    assert "Receipt-Signature" not in response
    assert not Check.objects.filter(organization=developer).exists()


@pytest.mark.django_db
def test_with_redis_away_and_quotas_failing_open_answers_keep_coming_and_stay_right(redis_away, studio, developer):
    redis_away.KYOKA_QUOTA_FAIL_OPEN = True
    registered_and_granted(studio, developer)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {new_key(developer, ['checks'])}")

    response = client.post("/api/v1/checks", {"purpose": "tdm", "items": [
        {"identifier": "isbn:978-0-306-40615-7"}, {"identifier": "isbn:978-4-04-102622-9"}]}, format="json")

    assert response.status_code == 200, response.content[:300]
    decisions = [result["decision"] for result in response.json()["results"]]
    assert decisions == ["permitted", "unregistered"]
    assert "RateLimit-Remaining" not in response  # nothing was counted, and no header pretends it was


# --- PostgreSQL lost during a bulk upload ---------------------------------------------------------


@pytest.mark.celery_worker
@pytest.mark.django_db(transaction=True)
def test_a_bulk_upload_whose_database_connection_is_cut_retries_and_loses_or_doubles_nothing(tmp_path, studio):
    application_name = f"kyoka-fault-worker-{uuid.uuid4().hex[:8]}"
    _purge_broker()
    env = {
        **os.environ, "DJANGO_SETTINGS_MODULE": "tests.settings",
        "DATABASE_URL": f"{_database_url()}?application_name={application_name}",
        "REDIS_URL": settings.REDIS_URL, "CELERY_BROKER_URL": settings.CELERY_BROKER_URL,
        "CELERY_VISIBILITY_TIMEOUT": str(WORKER_VISIBILITY_TIMEOUT), "MEDIA_ROOT": str(settings.MEDIA_ROOT),
        "KYOKA_SIGNING_KEY_DIR": str(settings.KYOKA_SIGNING_KEY_DIR), "CONN_MAX_AGE": "0",
    }
    worker = Worker(env, tmp_path)
    worker.start()
    try:
        rows = catalog_rows(12_000, prefix="CUT")
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {new_key(studio, ['uploads'])}")
        response = post_upload(client, csv_manifest(rows))
        assert response.status_code == 202, response.content[:300]
        upload_id = response.json()["id"]

        # Cut the worker's connection once some chunks are in and more are to come.
        wait_for(lambda: 0 < upload_state(upload_id).processed_rows < 12_000, timeout=120, interval=0.02,
                 what="the upload to be under way")
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = %s",
                           [application_name])
            terminated = [row[0] for row in cursor.fetchall()]
        assert terminated == [True], f"expected to cut exactly the worker's backend, got {terminated}"

        upload = wait_for(lambda: (state := upload_state(upload_id)).status in ("done", "failed") and state,
                          timeout=180, interval=0.2, what="the upload to finish")
    finally:
        worker.stop()
        _purge_broker()

    assert upload.status == "done", upload.error
    assert (upload.total_rows, upload.processed_rows, upload.created_count, upload.failed_count) == (
        12_000, 12_000, 12_000, 0)
    assert Work.objects.filter(owner=studio).count() == 12_000
    assert "OperationalError" in worker.output() or "terminating connection" in worker.output()
