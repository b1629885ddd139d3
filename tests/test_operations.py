"""What operators rely on: masked JSON logs, health and readiness probes, Prometheus metrics kept private."""

from __future__ import annotations

import json
import logging
from collections import Counter

import pytest
import redis
from django.db import connections
from django.test import Client

from portal.logs import JsonFormatter, MaskSecretsFilter, mask_secrets
from registry.metrics import record_check, record_upload_rows

API_KEY = "kyoka_1a2b3c4d_" + "S3cr3tPart-of-the-key_abcdefghijklmnopqrstu"


# --- Logs ----------------------------------------------------------------------------------------

@pytest.mark.parametrize(("text", "kept", "gone"), [
    (f"key {API_KEY} used", "kyoka_1a2b3c4d_***", "S3cr3tPart"),
    ("Authorization: Bearer abcdefghijklmnop123", "Bearer ***", "abcdefghijklmnop123"),
    ("login password=hunter2-secret&next=/", "password=***", "hunter2-secret"),
    ('{"secret_key": "django-very-secret"}', '"secret_key": "***', "django-very-secret"),
    ("sent to newhire@victim.example", "n***@victim.example", "newhire@"),
    ("GET /accounts/reset/MTI/c2x9-abc123/ 200", "/accounts/reset/***", "c2x9-abc123"),
    ("GET /invitations/eyJpZCI6MX0:1tV:sig/ 200", "/invitations/***", "eyJpZCI6MX0"),
    ("GET /accounts/confirm/eyJ1c2VyIjo3fQ:sig/", "/accounts/confirm/***", "eyJ1c2VyIjo3fQ"),
])
def test_secrets_keys_and_addresses_are_masked(text, kept, gone):
    masked = mask_secrets(text)
    assert kept in masked and gone not in masked


def record(message: str, *args, exc_info=None) -> logging.LogRecord:
    return logging.LogRecord("kyoka.test", logging.WARNING, __file__, 1, message, args, exc_info)


def test_the_filter_masks_interpolated_arguments_and_tracebacks():
    try:
        raise ValueError(f"bad key {API_KEY}")
    except ValueError:
        import sys

        entry = record("Check by %s for %s", "owner@aozora.example", API_KEY, exc_info=sys.exc_info())
    assert MaskSecretsFilter().filter(entry) is True
    line = JsonFormatter().format(entry)
    assert "S3cr3tPart" not in line and "owner@aozora.example" not in line
    parsed = json.loads(line)
    assert parsed["message"] == "Check by o***@aozora.example for kyoka_1a2b3c4d_***"
    assert parsed["level"] == "WARNING" and parsed["logger"] == "kyoka.test"
    assert "ValueError: bad key kyoka_1a2b3c4d_***" in parsed["exception"]


def test_production_logs_are_json_through_the_mask(tmp_path):
    import os
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    env = {k: v for k, v in os.environ.items() if k not in ("DEBUG", "DJANGO_SETTINGS_MODULE", "LOG_FORMAT")}
    env.update(DJANGO_SETTINGS_MODULE="portal.settings.production", SECRET_KEY="p" * 30 + "-logs-" + "q7" * 15,
               ALLOWED_HOSTS="kyoka.example", KYOKA_ENV_FILE=str(tmp_path / "none.env"))
    script = ("import django, logging; django.setup(); "
              f"logging.getLogger('registry').warning('key %s from %s', '{API_KEY}', 'owner@aozora.example')")
    result = subprocess.run([sys.executable, "-c", script], cwd=root, env=env, capture_output=True, text=True,
                            timeout=120)
    line = json.loads(result.stderr.strip().splitlines()[-1])
    assert line["message"] == "key kyoka_1a2b3c4d_*** from o***@aozora.example"


# --- Probes --------------------------------------------------------------------------------------

def test_healthz_answers_while_the_process_lives(client):
    response = client.get("/healthz")
    assert response.status_code == 200 and response.json() == {"status": "ok"}


@pytest.mark.django_db
def test_readyz_answers_when_database_redis_and_broker_answer(client):
    response = client.get("/readyz")
    assert response.status_code == 200, response.content
    assert response.json() == {"status": "ok", "checked": ["database", "redis", "broker"]}


@pytest.mark.django_db
def test_readyz_names_redis_and_the_broker_when_they_are_down(client, settings):
    settings.REDIS_URL = "redis://127.0.0.1:1/0"
    settings.CELERY_BROKER_URL = "redis://127.0.0.1:1/0"
    response = client.get("/readyz")
    assert response.status_code == 503
    assert response.json() == {"status": "unavailable", "down": ["redis", "broker"]}


@pytest.mark.django_db(transaction=True)
def test_readyz_names_the_database_when_it_is_down(client):
    connection = connections["default"]
    port = connection.settings_dict["PORT"]
    connection.close()
    connection.settings_dict["PORT"] = 1
    try:
        response = client.get("/readyz")
    finally:
        connection.close()
        connection.settings_dict["PORT"] = port
    assert response.status_code == 503 and response.json()["down"] == ["database"]


# --- Metrics -------------------------------------------------------------------------------------

def test_metrics_are_hidden_from_the_public(client, settings):
    settings.KYOKA_METRICS_TOKEN = "scrape-token-0123456789"
    settings.KYOKA_METRICS_ALLOWED_ADDRESSES = ["10.0.0.0/8"]
    assert client.get("/metrics").status_code == 404
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer wrong-token").status_code == 404
    # X-Forwarded-For is the client's own claim unless a trusted proxy sent it.
    assert client.get("/metrics", HTTP_X_FORWARDED_FOR="10.0.0.5").status_code == 404


def test_metrics_with_no_token_and_no_addresses_answer_nobody(client, settings):
    settings.KYOKA_METRICS_TOKEN = ""
    settings.KYOKA_METRICS_ALLOWED_ADDRESSES = []
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer ").status_code == 404


def test_metrics_count_checks_by_decision_and_purpose_and_upload_rows(client, settings):
    settings.KYOKA_METRICS_TOKEN = "scrape-token-0123456789"
    before = _scrape(client)
    record_check(Counter(permitted=2, unregistered=5, not_permitted=0), "train-genai", 0.012)
    record_upload_rows(1000)
    after = _scrape(client)

    def delta(name: str) -> float:
        return after.get(name, 0.0) - before.get(name, 0.0)

    assert delta('kyoka_check_items_total{decision="permitted",purpose="train-genai"}') == 2
    assert delta('kyoka_check_items_total{decision="unregistered",purpose="train-genai"}') == 5
    assert delta('kyoka_check_items_total{decision="not_permitted",purpose="train-genai"}') == 0
    assert delta('kyoka_check_requests_total{purpose="train-genai"}') == 1
    assert delta("kyoka_check_seconds_count") == 1
    assert delta('kyoka_check_seconds_bucket{le="0.025"}') == 1
    assert delta("kyoka_upload_rows_total") == 1000


def test_metrics_from_an_allowed_address_report_the_queue_depth(settings):
    settings.KYOKA_METRICS_ALLOWED_ADDRESSES = ["192.0.2.0/24"]
    broker = redis.Redis.from_url(settings.CELERY_BROKER_URL)
    broker.delete("celery")
    broker.rpush("celery", "a", "b", "c")
    try:
        response = Client(REMOTE_ADDR="192.0.2.10").get("/metrics")
    finally:
        broker.delete("celery")
    assert response.status_code == 200
    assert 'kyoka_queue_depth{queue="celery"} 3.0' in response.content.decode()


def _scrape(client: Client) -> dict[str, float]:
    response = client.get("/metrics", HTTP_AUTHORIZATION="Bearer scrape-token-0123456789")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain")
    values = {}
    for line in response.content.decode().splitlines():
        if line and not line.startswith("#"):
            name, value = line.rsplit(" ", 1)
            values[name] = float(value)
    return values


def test_gunicorns_access_log_goes_through_the_mask_as_json(tmp_path):
    """A real gunicorn, configured as the image runs it, serving one request with a token in its path."""
    import contextlib
    import os
    import socket
    import subprocess
    import sys
    import time
    import urllib.error
    import urllib.request
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {k: v for k, v in os.environ.items() if k not in ("DEBUG", "DJANGO_SETTINGS_MODULE")}
    env.update(DJANGO_SETTINGS_MODULE="tests.settings", KYOKA_ENV_FILE=str(tmp_path / "none.env"),
               ALLOWED_HOSTS="127.0.0.1")
    log = tmp_path / "gunicorn.log"
    with open(log, "wb") as output:
        server = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "portal.wsgi:application", "-c", "python:portal.gunicorn_conf",
             "--bind", f"127.0.0.1:{port}", "--workers", "1"],
            cwd=root, env=env, stdout=output, stderr=subprocess.STDOUT, start_new_session=True,
        )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2)
                break
            except OSError:  # refused, reset or timed out while it boots
                if time.monotonic() > deadline or server.poll() is not None:
                    raise AssertionError(log.read_text()) from None
                time.sleep(0.2)
        # A forged token answers an error page; the log line is what is tested.
        with contextlib.suppress(urllib.error.HTTPError):
            urllib.request.urlopen(f"http://127.0.0.1:{port}/invitations/eyJpZCI6Ijk5In0:1tV:s3cr3t/", timeout=30)
        time.sleep(0.5)
    finally:
        server.terminate()
        server.wait(timeout=20)
    lines = [json.loads(line) for line in log.read_text().splitlines() if line.startswith("{")]
    access = [line for line in lines if line["logger"] == "gunicorn.access"]
    assert any("/invitations/***" in line["message"] for line in access), lines
    assert "s3cr3t" not in log.read_text() and "eyJpZCI6Ijk5In0" not in log.read_text()


def test_with_a_multiprocess_directory_metrics_add_up_every_process(tmp_path):
    """Two processes record checks into one PROMETHEUS_MULTIPROC_DIR; a third serves their sum."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "tests.settings", "PROMETHEUS_MULTIPROC_DIR": str(tmp_path),
           "KYOKA_ENV_FILE": str(tmp_path / "none.env")}
    record = ("import django; django.setup(); from collections import Counter; "
              "from registry.metrics import record_check; record_check(Counter(permitted=3), 'search', 0.01)")
    for _process in range(2):
        subprocess.run([sys.executable, "-c", record], cwd=root, env=env, check=True, timeout=120)
    serve = ("import django; django.setup(); from registry.metrics import render_metrics; "
             "print(render_metrics()[0].decode())")
    result = subprocess.run([sys.executable, "-c", serve], cwd=root, env=env, capture_output=True, text=True,
                            timeout=120)
    assert 'kyoka_check_items_total{decision="permitted",purpose="search"} 6.0' in result.stdout, result.stderr
