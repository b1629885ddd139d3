"""The embedded default (the README's run command): SQLite, and a worker on kombu's filesystem
transport, no broker server. An upload sent to the web process is registered in the background
by a real `celery -A portal worker --pool=solo`, with its progress visible on the way."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from pathlib import Path

import pytest

from tests.registry.uploads.conftest import ROOT, Worker, catalog_rows, csv_manifest, wait_for

pytestmark = pytest.mark.celery_worker


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def manage(env: dict[str, str], *args: str) -> str:
    result = subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout.strip()


def multipart(fields: dict[str, tuple[str, bytes]]) -> tuple[bytes, str]:
    boundary = uuid.uuid4().hex
    body = b"".join(
        f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"; filename="{filename}"\r\n'
        f"Content-Type: application/octet-stream\r\n\r\n".encode() + data + b"\r\n"
        for name, (filename, data) in fields.items()
    ) + f"--{boundary}--\r\n".encode()
    return body, f"multipart/form-data; boundary={boundary}"


@pytest.fixture
def embedded_env(tmp_path: Path) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items()
           if key not in ("DATABASE_URL", "REDIS_URL", "CELERY_BROKER_URL", "DJANGO_SETTINGS_MODULE")}
    env.update(
        DEBUG="true", DJANGO_SETTINGS_MODULE="portal.settings", CELERY_BROKER_URL="filesystem://",
        DATABASE_URL=f"sqlite:///{tmp_path / 'kyoka.sqlite3'}", CELERY_BROKER_DIR=str(tmp_path / "broker"),
        MEDIA_ROOT=str(tmp_path / "media"), KYOKA_SIGNING_KEY_DIR=str(tmp_path / "keys"),
    )
    return env


def test_the_embedded_default_processes_uploads_in_the_background(embedded_env, tmp_path):
    manage(embedded_env, "migrate", "--noinput")
    slug = manage(embedded_env, "createorg", "--kind", "rightsholder", "--name", "Studio Aozora",
                  "--owner-email", "owner@aozora.example", "--verified").splitlines()[-1]
    key = manage(embedded_env, "createapikey", "--org", slug, "--scopes", "uploads").splitlines()[-1]
    worker = Worker(embedded_env, tmp_path)
    worker.start()
    port = free_port()
    server = subprocess.Popen([sys.executable, "manage.py", "runserver", f"127.0.0.1:{port}", "--noreload"],
                              cwd=ROOT, env=embedded_env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}/api/v1"

    def call(path: str, body: bytes | None = None, content_type: str = "") -> dict:
        request = urllib.request.Request(f"{base}{path}", data=body, headers={"Authorization": f"Bearer {key}"})
        if content_type:
            request.add_header("Content-Type", content_type)
        with urllib.request.urlopen(request, timeout=30) as response:
            return json.loads(response.read())

    try:
        wait_for(lambda: _answers(f"http://127.0.0.1:{port}/healthz"), timeout=60, interval=0.3, what="the server")
        body, content_type = multipart({"manifest": ("catalog.csv", csv_manifest(catalog_rows(6000)))})
        upload = call("/uploads", body, content_type)
        assert upload["status"] == "pending"
        seen = []
        deadline = time.monotonic() + 180
        while upload["status"] not in ("done", "failed", "cancelled") and time.monotonic() < deadline:
            time.sleep(0.05)
            upload = call(f"/uploads/{upload['id']}")
            seen.append(upload["processed_rows"])
        assert upload["status"] == "done", (upload, worker.output()[-3000:])
        assert (upload["total_rows"], upload["processed_rows"], upload["created"], upload["failed"]) == (
            6000, 6000, 6000, 0)
        # Progress was visible on the way, chunk by chunk.
        assert any(0 < processed < 6000 for processed in seen), seen
    finally:
        server.terminate()
        server.wait(timeout=20)
        worker.stop()


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status == 200
    except OSError:
        return False
