"""The README's run command path: no DATABASE_URL, no REDIS_URL — SQLite and no broker server."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def embedded_env(tmp_path):
    env = {k: v for k, v in os.environ.items()
           if k not in ("DATABASE_URL", "REDIS_URL", "CELERY_BROKER_URL", "DJANGO_SETTINGS_MODULE")}
    env.update(DEBUG="true", DJANGO_SETTINGS_MODULE="portal.settings",
               DATABASE_URL=f"sqlite:///{tmp_path / 'kyoka.sqlite3'}", MEDIA_ROOT=str(tmp_path / "media"),
               KYOKA_SIGNING_KEY_DIR=str(tmp_path / "keys"))
    return env


def manage(env, *args, timeout=300) -> str:
    result = subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env=env, capture_output=True,
                            text=True, timeout=timeout)
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout


def test_sqlite_default_migrates_seeds_and_serves_the_admin(embedded_env):
    manage(embedded_env, "migrate", "--noinput")
    out = manage(embedded_env, "seeddemo")
    assert "admin@kyoka.localhost" in out and "kyoka_" in out
    port = free_port()
    server = subprocess.Popen([sys.executable, "manage.py", "runserver", f"127.0.0.1:{port}", "--noreload"],
                              cwd=ROOT, env=embedded_env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/admin/login/", timeout=5) as response:
                    body = response.read().decode()
                break
            except OSError:
                if time.monotonic() > deadline or server.poll() is not None:
                    raise
                time.sleep(0.3)
        assert response.status == 200 and "csrfmiddlewaretoken" in body
        # A check on SQLite: the demo's catalog-wide search grant covers a registered character sheet.
        key = next(line.split()[-1] for line in out.splitlines() if "Acme AI (checks)" in line)
        check = urllib.request.Request(
            f"http://127.0.0.1:{port}/api/v1/checks", method="POST",
            data=json.dumps({"purpose": "search", "items": [{"url": "https://aozora.example/art/1.png"},
                                                            {"sha256": "0" * 64}]}).encode(),
            headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"},
        )
        with urllib.request.urlopen(check, timeout=30) as response:
            results = json.loads(response.read())["results"]
            assert response.headers["Receipt-Signature"]
        assert [r["decision"] for r in results] == ["permitted", "unregistered"]
    finally:
        server.terminate()
        server.wait(timeout=10)
