"""Deployment defaults: compose and the image are secure unless told otherwise, and the checks say so."""

from __future__ import annotations

import os
import re
import secrets
import stat
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
STRONG_KEY = secrets.token_urlsafe(50)


def run_manage(*args: str, env: dict[str, str], tmp_path: Path) -> subprocess.CompletedProcess:
    """manage.py in a clean environment: nothing from this shell, no local settings file."""
    keep = ("PATH", "HOME", "LANG", "PYTHONPATH", "VIRTUAL_ENV")
    base = {k: v for k, v in os.environ.items() if k in keep}
    base["KYOKA_ENV_FILE"] = str(tmp_path / "absent.env")
    if "PROMETHEUS_MULTIPROC_DIR" in env:  # the container's path; here a directory of the test's own
        env = {**env, "PROMETHEUS_MULTIPROC_DIR": str(tmp_path)}
    return subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, capture_output=True, text=True,
                          env={**base, **env}, timeout=120)


def compose_environment(**given: str) -> dict[str, str]:
    """The environment docker compose gives the web service, with ${VAR:-default} and ${VAR:?} resolved."""
    resolved = {}
    for name, value in COMPOSE["services"]["web"]["environment"].items():
        def substitute(match: re.Match) -> str:
            variable, operator, default = match.group(1), match.group(2), match.group(3)
            if variable in given:
                return given[variable]
            if operator == ":?":
                raise KeyError(f"compose requires {variable}")
            return default or ""
        resolved[name] = re.sub(r"\$\{(\w+)(?:(:-|:\?)([^}]*))?\}", substitute, str(value))
    return resolved


def test_compose_requires_a_secret_key_and_ships_none():
    secret = COMPOSE["x-kyoka-env"]["SECRET_KEY"]
    assert secret.startswith("${SECRET_KEY:?")
    with pytest.raises(KeyError, match="SECRET_KEY"):
        compose_environment()


def test_compose_is_secure_unless_plain_http_is_asked_for():
    environment = compose_environment(SECRET_KEY=STRONG_KEY)
    assert environment["KYOKA_PLAIN_HTTP"] == "false"
    assert "COOKIES_SECURE" not in environment and "SECURE_SSL_REDIRECT" not in environment
    assert environment["TRUST_X_FORWARDED_PROTO"] == "false"


def test_the_web_port_is_published_on_loopback_only():
    assert COMPOSE["services"]["web"]["ports"] == ["127.0.0.1:8000:8000"]
    assert all("ports" not in service for name, service in COMPOSE["services"].items() if name != "web")


def test_gunicorn_trusts_forwarded_headers_from_the_same_setting_and_logs_through_the_mask():
    command = COMPOSE["services"]["web"]["command"]
    assert '--forwarded-allow-ips="$${TRUSTED_PROXIES:-127.0.0.1}"' in command
    assert "-c python:portal.gunicorn_conf" in command
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert "--forwarded-allow-ips=" in dockerfile and "-c python:portal.gunicorn_conf" in dockerfile


def test_deploy_checks_are_clean_with_the_compose_settings(tmp_path):
    environment = compose_environment(SECRET_KEY=STRONG_KEY)
    result = run_manage("check", "--deploy", "--fail-level", "WARNING", env=environment, tmp_path=tmp_path)
    assert result.returncode == 0, result.stderr + result.stdout
    assert "no issues" in result.stdout


def test_plain_http_for_local_compose_turns_off_secure_cookies_and_the_redirect(tmp_path):
    environment = compose_environment(SECRET_KEY=STRONG_KEY, KYOKA_PLAIN_HTTP="true")
    script = ("from django.conf import settings as s; "
              "print(s.SESSION_COOKIE_SECURE, s.CSRF_COOKIE_SECURE, s.SECURE_SSL_REDIRECT, s.SECURE_HSTS_SECONDS)")
    result = run_manage("shell", "-v", "0", "-c", script, env=environment, tmp_path=tmp_path)
    assert result.stdout.split() == ["False", "False", "False", "0"], result.stderr


def test_the_proxy_ssl_header_is_trusted_only_when_configured(tmp_path):
    script = "from django.conf import settings as s; print(s.SECURE_PROXY_SSL_HEADER)"
    plain = run_manage("shell", "-v", "0", "-c", script, tmp_path=tmp_path,
                       env=compose_environment(SECRET_KEY=STRONG_KEY))
    assert plain.stdout.strip() == "None", plain.stderr
    told = run_manage("shell", "-v", "0", "-c", script, tmp_path=tmp_path,
                      env=compose_environment(SECRET_KEY=STRONG_KEY, TRUST_X_FORWARDED_PROTO="true"))
    assert told.stdout.strip() == "('HTTP_X_FORWARDED_PROTO', 'https')", told.stderr


@pytest.mark.parametrize("key", [
    "change-me-in-production", "insecure-development-key", "django-insecure-" + "x" * 50, "short-but-random-Zq8",
    "a" * 60,
])
def test_production_refuses_known_and_short_secret_keys_at_start(key, tmp_path):
    result = run_manage("check", env={"DEBUG": "false", "SECRET_KEY": key, "ALLOWED_HOSTS": "kyoka.example"},
                        tmp_path=tmp_path)
    assert result.returncode != 0
    assert "SECRET_KEY is" in result.stderr


def test_env_files_never_reach_git_or_the_image():
    assert ".env" in (ROOT / ".gitignore").read_text().split()
    assert ".env" in (ROOT / ".dockerignore").read_text().split()
    assert "**/.env" in (ROOT / ".dockerignore").read_text().split()


def test_the_image_runs_as_a_non_root_user():
    dockerfile = (ROOT / "Dockerfile").read_text()
    users = re.findall(r"^USER\s+(\S+)", dockerfile, re.M)
    assert users and users[-1] not in ("root", "0")
    # The last USER line comes before the command the container runs.
    assert dockerfile.rindex("USER ") < dockerfile.rindex("CMD ")


def test_the_run_command_writes_a_private_local_settings_file_once(tmp_path):
    env_file = tmp_path / "var" / ".env"
    env = {**os.environ, "KYOKA_ENV_FILE": str(env_file)}
    first = subprocess.run([sys.executable, "scripts/write_local_env.py"], cwd=ROOT, env=env, capture_output=True,
                           text=True, timeout=60)
    assert first.stdout.strip() == str(env_file)
    content = env_file.read_text()
    assert stat.S_IMODE(env_file.stat().st_mode) == 0o600
    assert "DEBUG=true" in content
    assert len(re.search(r"^SECRET_KEY=(\S+)$", content, re.M).group(1)) >= 50
    subprocess.run([sys.executable, "scripts/write_local_env.py"], cwd=ROOT, env=env, check=True, timeout=60)
    assert env_file.read_text() == content  # never overwritten: sessions and links keep working
    assert "write_local_env.py" in (ROOT / "scripts" / "run").read_text()


def test_admin_commands_work_in_any_shell_once_the_local_settings_file_exists(tmp_path):
    env_file = tmp_path / ".env"
    subprocess.run([sys.executable, "scripts/write_local_env.py"], cwd=ROOT, check=True, timeout=60,
                   env={**os.environ, "KYOKA_ENV_FILE": str(env_file)})
    keep = ("PATH", "HOME", "LANG")
    env = {k: v for k, v in os.environ.items() if k in keep}
    env.update(KYOKA_ENV_FILE=str(env_file), DATABASE_URL=f"sqlite:///{tmp_path / 'kyoka.sqlite3'}",
               MEDIA_ROOT=str(tmp_path / "media"), KYOKA_SIGNING_KEY_DIR=str(tmp_path / "keys"))
    result = subprocess.run(
        [sys.executable, "manage.py", "shell", "-v", "0", "-c",
         "from django.conf import settings as s; print(s.DEBUG)"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "True"
