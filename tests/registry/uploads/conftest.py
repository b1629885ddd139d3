"""Fixtures for bulk uploads: manifest and archive builders, and a real Celery worker process.

The worker fixture is general (nothing in it is about uploads) so it can move to a shared
conftest when other tasks need a real worker too.
"""

from __future__ import annotations

import csv
import io
import json
import os
import signal
import subprocess
import sys
import time
import zipfile
from collections.abc import Callable, Iterable
from pathlib import Path

import pytest
from django.conf import settings
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection

from registry.access import Actor
from registry.models import BulkUpload
from registry.services.uploads import bulk_upload_process, bulk_upload_start
from tests.conftest import owner_of, require
from tests.registry.api.conftest import client_for, key_for  # noqa: F401 - the API tests' fixtures

ROOT = Path(__file__).resolve().parents[3]
CORPUS = Path(__file__).resolve().parent / "corpus"
COLUMNS = ["external_ref", "title", "kind", "parent_ref", "identifiers", "urls", "file", "sha256", "phash",
           "description", "year", "creators"]


# --- building manifests and archives --------------------------------------------------------


def csv_manifest(rows: Iterable[dict], columns: list[str] | None = None, *, bom: bool = False,
                 newline: str = "\r\n") -> bytes:
    rows = list(rows)
    columns = columns or [c for c in COLUMNS if any(c in row for row in rows)] or ["external_ref", "title"]
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, lineterminator=newline, extrasaction="ignore")
    writer.writeheader()
    writer.writerows(rows)
    return (b"\xef\xbb\xbf" if bom else b"") + buffer.getvalue().encode()


def json_manifest(rows: Iterable[dict]) -> bytes:
    return json.dumps(list(rows), ensure_ascii=False).encode()


def ndjson_manifest(rows: Iterable[dict]) -> bytes:
    return "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows).encode()


def zip_archive(files: dict[str, bytes], *, compression: int = zipfile.ZIP_DEFLATED) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=compression) as archive:
        for name, data in files.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def catalog_rows(count: int, *, prefix: str = "CEL", title: str = "Cel") -> list[dict]:
    """Rows with a URL and an identifier each, like a studio's export."""
    return [
        {"external_ref": f"{prefix}-{n:06d}", "title": f"{title} {n}", "kind": "image",
         "urls": f"https://aozora.example/cels/{prefix.lower()}-{n}.png",
         "identifiers": f"doi:10.5555/{prefix.lower()}.{n}", "year": "2024"}
        for n in range(1, count + 1)
    ]


# --- running an upload in this process ------------------------------------------------------


@pytest.fixture
def start_upload(studio) -> Callable[..., BulkUpload]:
    def start(manifest: bytes, archive: bytes | None = None, *, org=None, name: str = "catalog.csv",
              actor=None) -> BulkUpload:
        return bulk_upload_start(
            actor=actor or Actor.for_user(owner_of(org or studio)), organization=org or studio,
                manifest=SimpleUploadedFile(name, manifest),
            archive=SimpleUploadedFile("files.zip", archive) if archive is not None else None,
        )

    return start


def run_to_end(upload: BulkUpload) -> BulkUpload:
    """Process in this process, as the task would, until nothing remains."""
    while bulk_upload_process(upload_id=str(upload.pk)):
        pass
    upload.refresh_from_db()
    return upload


@pytest.fixture
def upload_and_run(start_upload) -> Callable[..., BulkUpload]:
    def run(manifest: bytes, archive: bytes | None = None, **kwargs) -> BulkUpload:
        return run_to_end(start_upload(manifest, archive, **kwargs))

    return run


# --- a real Celery worker -------------------------------------------------------------------


def _database_url() -> str:
    """The database this test runs on (pytest-django's test_<name>), as a URL for a subprocess."""
    db = connection.settings_dict
    credentials = db["USER"] + (f":{db['PASSWORD']}" if db.get("PASSWORD") else "")
    return f"postgres://{credentials}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"


class Worker:
    """`celery -A portal worker` in a subprocess; start, kill (SIGKILL) and start again."""

    def __init__(self, env: dict[str, str], log_dir: Path, *, pool: str = "solo") -> None:
        self.env = env
        self.log_dir = log_dir
        self.pool = pool
        self.process: subprocess.Popen | None = None
        self.starts = 0

    def start(self, timeout: float = 60) -> None:
        self.starts += 1
        self.log = self.log_dir / f"worker-{self.starts}.log"
        with open(self.log, "wb") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "celery", "-A", "portal", "worker", f"--pool={self.pool}", "--concurrency=1",
                 "--loglevel=INFO", "--without-heartbeat", "--without-gossip", "--without-mingle",
                 f"--hostname=uploads-test-{os.getpid()}-{self.starts}@%h"],
                cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
            )
        deadline = time.monotonic() + timeout
        while " ready." not in self.output():
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the worker did not start:\n{self.output()[-3000:]}")
            time.sleep(0.1)

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def kill(self) -> None:
        """SIGKILL, to the worker and anything it started: no shutdown, no acknowledgement."""
        assert self.process is not None
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.kill()


def _purge_broker() -> None:
    """Drop queued and unacknowledged messages left in this test Redis database by earlier runs."""
    import redis

    client = redis.Redis.from_url(settings.CELERY_BROKER_URL)
    client.delete("celery", "unacked", "unacked_index", "unacked_mutex")


# Short, so a message whose worker was killed comes back within seconds, not hours.
WORKER_VISIBILITY_TIMEOUT = 3


@pytest.fixture
def celery_worker(transactional_db, tmp_path) -> Iterable[Worker]:
    """A real worker on the real Redis and this test's PostgreSQL database, sharing MEDIA_ROOT."""
    require(connection.vendor == "postgresql", "the worker tests need PostgreSQL (DATABASE_URL)")
    require(settings.CELERY_BROKER_URL.startswith("redis://"), "the worker tests need Redis (REDIS_URL)")
    try:
        _purge_broker()
    except Exception as error:  # any failure here means "no Redis"
        require(False, f"Redis is not reachable at {settings.CELERY_BROKER_URL}: {error}")
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "tests.settings",
        "DATABASE_URL": _database_url(),
        "REDIS_URL": settings.REDIS_URL,
        "CELERY_BROKER_URL": settings.CELERY_BROKER_URL,
        "CELERY_VISIBILITY_TIMEOUT": str(WORKER_VISIBILITY_TIMEOUT),
        "MEDIA_ROOT": str(settings.MEDIA_ROOT),
        "KYOKA_SIGNING_KEY_DIR": str(settings.KYOKA_SIGNING_KEY_DIR),
        "CONN_MAX_AGE": "0",
    }
    worker = Worker(env, tmp_path)
    worker.start()
    yield worker
    worker.stop()
    _purge_broker()


def wait_for(condition: Callable[[], object], *, timeout: float, interval: float = 0.05, what: str = "") -> object:
    deadline = time.monotonic() + timeout
    while True:
        result = condition()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what or condition}")
        time.sleep(interval)


def upload_state(upload_id) -> BulkUpload:
    return BulkUpload.objects.get(pk=upload_id)
