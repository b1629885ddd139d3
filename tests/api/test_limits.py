"""Limits every API request meets before any work is done: body size, JSON depth, probe budget."""

from __future__ import annotations

import json
import time

import pytest
from django.db import connections
from django.test.utils import CaptureQueriesContext

from registry.api.parsers import CHECK_BODY_LIMIT, DEFAULT_BODY_LIMIT, MAX_JSON_DEPTH
from registry.matching.fingerprints import PHASH_PROBE_BUDGET, phash_probes_total
from registry.models import Check
from registry.selectors.matching import works_by_phash

pytestmark = pytest.mark.django_db


def error_of(response, status: int) -> dict:
    assert response.status_code == status, response.content[:300]
    body = response.json()
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message", "fields"}
    return body["error"]


def phash_items(count: int, max_distance: int) -> list[dict]:
    return [{"phash": f"{n * 7919:016x}", "max_distance": max_distance} for n in range(count)]


# --- the phash probe budget ---------------------------------------------------------------------


def test_a_check_over_the_probe_budget_is_422_naming_the_budget_before_any_lookup(key_client, developer):
    client = key_client(developer, ["checks"])
    assert phash_probes_total([8] * 349) > PHASH_PROBE_BUDGET

    with CaptureQueriesContext(connections["default"]) as queries:
        response = client.post("/api/v1/checks", {"purpose": "tdm", "items": phash_items(349, 8)}, format="json")

    error = error_of(response, 422)
    assert error["code"] == "probe_budget_exceeded"
    assert "250,000" in error["message"] and "250,582" in error["message"]
    assert not any("perceptualhash" in query["sql"] for query in queries.captured_queries)
    assert not Check.objects.filter(organization=developer).exists()


def test_a_check_at_the_probe_budget_is_answered(key_client, developer):
    client = key_client(developer, ["checks"])

    response = client.post("/api/v1/checks", {"purpose": "tdm", "items": phash_items(348, 8)}, format="json")

    assert response.status_code == 200, response.content[:300]
    assert response.json()["summary"]["unregistered"] == 348


def test_the_probe_budget_message_is_in_japanese_for_japanese_readers(key_client, developer):
    client = key_client(developer, ["checks"])

    response = client.post("/api/v1/checks", {"purpose": "tdm", "items": phash_items(11, 12)}, format="json",
                           HTTP_ACCEPT_LANGUAGE="ja")

    message = error_of(response, 422)["message"]
    assert "250,000" in message and "プローブ" in message


@pytest.mark.parametrize("alias", ["default", "embedded"])
@pytest.mark.django_db(databases=["default", "embedded"])
def test_the_costliest_request_the_budget_allows_stays_bounded_on_both_databases(alias):
    # Ten items at the widest distance (242,030 probes) is the most one request can ask for;
    # 100 such items took 10.8 s on SQLite before the budget. Refusing beyond it bounds the work.
    queries = [(int.from_bytes(bytes([n] * 8), "big", signed=True), 12) for n in range(10)]
    assert phash_probes_total([12] * 10) <= PHASH_PROBE_BUDGET

    started = time.perf_counter()
    answers = works_by_phash(queries, using=alias)
    elapsed = time.perf_counter() - started

    assert answers == [{}] * 10
    assert elapsed < 5.0, f"{alias}: {elapsed:.2f} s for the largest request the budget allows"


# --- request bodies -----------------------------------------------------------------------------


def test_a_body_over_its_route_limit_is_413_before_it_is_read(key_client, studio):
    client = key_client(studio, ["works:write"])

    response = client.generic("POST", "/api/v1/works", b"{}", content_type="application/json",
                              CONTENT_LENGTH=str(DEFAULT_BODY_LIMIT + 1))

    error = error_of(response, 413)
    assert error["code"] == "body_too_large" and f"{DEFAULT_BODY_LIMIT:,}" in error["message"]


def test_checks_accept_a_body_past_the_default_limit_and_refuse_one_past_their_own(key_client, developer):
    client = key_client(developer, ["checks"])
    long_ref = "r" * 1200  # echoed cut to 200 characters, but sent whole
    items = [{"ref": long_ref, "sha256": f"{n:064x}"} for n in range(9_000)]
    body = json.dumps({"purpose": "tdm", "items": items}).encode()
    assert DEFAULT_BODY_LIMIT < len(body) < CHECK_BODY_LIMIT

    accepted = client.generic("POST", "/api/v1/checks", body, content_type="application/json")
    refused = client.generic("POST", "/api/v1/checks", b"{}", content_type="application/json",
                             CONTENT_LENGTH=str(CHECK_BODY_LIMIT + 1))

    assert accepted.status_code == 200, accepted.content[:300]
    assert error_of(refused, 413)["code"] == "body_too_large"


def test_anonymous_receipt_verification_refuses_a_300_mb_body_unread(client):
    for path in ("/api/v1/receipts/verify", "/verify/"):
        response = client.generic("POST", path, b"", content_type="application/json",
                                  CONTENT_LENGTH=str(300 * 1024 * 1024))
        assert error_of(response, 413)["code"] == "body_too_large"


# --- JSON depth ---------------------------------------------------------------------------------


def nested(depth: int) -> str:
    return "[" * depth + "]" * depth


JSON_ENDPOINTS = [
    ("/api/v1/checks", ["checks"], '{"purpose": "tdm", "items": %s}'),
    ("/api/v1/works", ["works:write"], '{"external_ref": "a", "title": "t", "urls": %s}'),
    ("/api/v1/grants", ["grants:write"], '{"scope": "catalog", "purposes": ["tdm"], "conditions": %s}'),
    ("/api/v1/receipts/verify", ["checks"], '{"signature": "x", "body": %s}'),
    ("/api/v1/permission-requests", ["checks"], '{"rightsholder": "x", "purposes": %s}'),
    ("/api/v1/disputes", ["disputes"], '{"kind": "ownership", "statement": "s", "works": %s}'),
]


@pytest.mark.parametrize(("path", "scopes", "template"), JSON_ENDPOINTS)
@pytest.mark.parametrize("depth", [MAX_JSON_DEPTH + 1, 100_000])
def test_deeply_nested_json_is_a_400_on_every_json_endpoint(key_client, studio, developer, path, scopes, template,
                                                             depth):
    organization = developer if "checks" in scopes else studio
    client = key_client(organization, scopes)
    checks_before = Check.objects.count()

    response = client.generic("POST", path, template % nested(depth), content_type="application/json")

    error = error_of(response, 400)
    assert f"{MAX_JSON_DEPTH}" in error["message"]
    assert Check.objects.count() == checks_before


def test_json_as_deep_as_allowed_is_read(key_client, developer):
    client = key_client(developer, ["checks"])
    # {"purpose", "items": [...]} is two levels; the items list holds nesting up to the limit.
    body = '{"purpose": "tdm", "items": [' + nested(MAX_JSON_DEPTH - 2) + "]}"

    response = client.generic("POST", "/api/v1/checks", body, content_type="application/json")

    assert response.status_code == 200, response.content[:300]
    assert response.json()["results"][0]["decision"] == "invalid"


@pytest.mark.parametrize("body", [
    b'{"purpose": "tdm", "items": [{"phash": "00", "max_distance": NaN}]}',
    b'{"purpose": "tdm", "items": [{"phash": "00", "max_distance": Infinity}]}',
    b'{"purpose": "tdm", "items": [{"sha256": "\xff\xfe"}]}',
    b'{"purpose": "tdm", "items": [{"sha256": "\\ud800"}]}',
    b'{"purpose": "tdm", "items": [',
], ids=["nan", "infinity", "not-utf8", "lone-surrogate", "truncated"])
def test_json_that_is_not_strict_json_is_a_400_and_checks_nothing(key_client, developer, body):
    client = key_client(developer, ["checks"])
    checks_before = Check.objects.count()

    response = client.generic("POST", "/api/v1/checks", body, content_type="application/json")

    assert error_of(response, 400)["message"].startswith("JSON parse error")
    assert Check.objects.count() == checks_before


# --- field lengths --------------------------------------------------------------------------------


def test_long_texts_are_refused_at_every_way_in(key_client, studio, developer):
    works = key_client(studio, ["works:write", "grants:write"])
    asks = key_client(developer, ["checks"])

    long_description = works.post("/api/v1/works", {"external_ref": "L-1", "title": "t",
                                                    "description": "d" * 20_001}, format="json")
    long_condition = works.post("/api/v1/grants", {"scope": "catalog", "purposes": ["tdm"],
                                                   "licensee": developer.slug,
                                                   "conditions": {"attribution": "a" * 2_001}}, format="json")
    long_message = asks.post("/api/v1/permission-requests", {"rightsholder": studio.slug, "purposes": ["tdm"],
                                                             "message": "m" * 5_001}, format="json")

    assert "description" in error_of(long_description, 400)["fields"]
    assert "attribution" in str(error_of(long_condition, 400)["fields"])
    assert "message" in error_of(long_message, 400)["fields"]
