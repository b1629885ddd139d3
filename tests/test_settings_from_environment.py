"""Settings come from the environment: secrets required outside debug, deploy checks clean."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def manage(*args: str, **env: str) -> subprocess.CompletedProcess:
    dropped = ("SECRET_KEY", "DEBUG", "DJANGO_SETTINGS_MODULE", "SECURE_SSL_REDIRECT", "DJANGO_ALLOW_ASYNC_UNSAFE")
    base = {k: v for k, v in os.environ.items() if k not in dropped}
    # No local settings file (./scripts/run writes var/.env): only the environment given here counts.
    base["KYOKA_ENV_FILE"] = str(ROOT / "var" / "no-such.env")
    return subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, capture_output=True, text=True,
                          env={**base, "DJANGO_SETTINGS_MODULE": "portal.settings", **env}, timeout=120)


def test_secret_key_is_required_when_debug_is_off():
    result = manage("check", DEBUG="false")
    assert result.returncode != 0 and "SECRET_KEY is required" in result.stderr


def test_deploy_checks_are_clean_with_production_settings():
    result = manage("check", "--deploy", "--fail-level", "WARNING", DEBUG="false",
                    SECRET_KEY="x" * 20 + "-production-grade-secret-key-" + "y" * 20, ALLOWED_HOSTS="kyoka.example")
    assert result.returncode == 0, result.stderr + result.stdout
    assert "no issues" in result.stdout
