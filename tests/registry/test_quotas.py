"""Quotas: per organisation, weighted by work, atomic in Redis, announced in RateLimit-* headers."""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections import Counter

import pytest
import requests
from rest_framework.test import APIClient

from registry.exceptions import LimitReached
from registry.models import ApiKey, Check
from registry.quotas import (
    FILE_MIN_UNITS,
    Limit,
    check_items_units,
    file_units,
    phash_item_units,
    quota_charge,
    quota_reset,
    url_item_units,
)
from registry.services.api_keys import do_api_key_create, do_api_key_revoke
from tests.conftest import OPERATOR, owner_of

ONE_ITEM = {"purpose": "tdm", "items": [{"sha256": "a" * 64}]}


@pytest.fixture
def subject():
    """A counter nobody else uses, forgotten afterwards."""
    name = f"test:{uuid.uuid4()}"
    yield name
    quota_reset(subjects=[name])


# --- the counter --------------------------------------------------------------------------------


def test_charges_until_the_limit_and_refuses_without_charging(subject):
    limit = Limit(subject, 10)

    first = quota_charge(limits=[limit], cost=7)
    refused = quota_charge(limits=[limit], cost=4)
    last = quota_charge(limits=[limit], cost=3)
    after = quota_charge(limits=[limit], cost=1)

    assert (first.allowed, first.remaining, first.limit) == (True, 3, 10)
    assert (refused.allowed, refused.remaining, refused.limited_by) == (False, 3, subject)
    assert (last.allowed, last.remaining) == (True, 0)
    assert not after.allowed
    assert 1 <= after.reset_seconds <= 60


def test_every_limit_must_have_room_or_none_is_charged(subject):
    organization, key = Limit(subject + ":org", 100), Limit(subject + ":key", 5)
    try:
        assert quota_charge(limits=[organization, key], cost=5).remaining == 0
        refused = quota_charge(limits=[organization, key], cost=1)
        # The key's refusal charged the organisation nothing.
        alone = quota_charge(limits=[organization], cost=1)
    finally:
        quota_reset(subjects=[organization.subject, key.subject])

    assert (refused.allowed, refused.limited_by) == (False, key.subject)
    assert alone.remaining == 100 - 5 - 1


def test_a_cost_above_the_whole_limit_is_impossible_not_merely_early(subject):
    state = quota_charge(limits=[Limit(subject, 10)], cost=11)
    assert not state.allowed and state.impossible


def test_exactly_the_limit_gets_through_50_threads_calling_redis_at_once(subject):
    limit = Limit(subject, 137)
    outcomes: list[bool] = []
    barrier = threading.Barrier(50)

    def client() -> None:
        barrier.wait()
        for _ in range(10):
            outcomes.append(quota_charge(limits=[limit], cost=1).allowed)

    threads = [threading.Thread(target=client) for _ in range(50)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert Counter(outcomes) == {True: 137, False: 500 - 137}


# --- what work costs ----------------------------------------------------------------------------


def test_items_cost_by_the_work_they_need():
    assert check_items_units([{"sha256": "a" * 64}] * 3) == 3
    assert phash_item_units(8) == 8 and phash_item_units(12) == 243 and phash_item_units(2) == 1
    assert check_items_units([{"phash": "0" * 16}]) == 8  # the default distance
    assert check_items_units([{"phash": "0" * 16, "max_distance": 12}, {"identifier": "isbn:1"}]) == 244
    assert url_item_units("https://example.com/a") == 1 and url_item_units("h" * 2048) == 5
    assert file_units(10) == FILE_MIN_UNITS and file_units(50 * 1024 * 1024) == 50
    assert check_items_units("not a list") == 1


# --- the API ------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_keys_and_sessions_of_one_organisation_share_its_quota_with_headers(developer, settings):
    settings.KYOKA_QUOTA_UNITS_PER_MINUTE = 20
    _, raw = do_api_key_create(acting=OPERATOR, organization=developer, scopes=["checks"])
    _, other_raw = do_api_key_create(acting=OPERATOR, organization=developer, scopes=["checks"])
    by_key, by_other_key, by_session = APIClient(), APIClient(), APIClient()
    by_key.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    by_other_key.credentials(HTTP_AUTHORIZATION=f"Bearer {other_raw}")
    by_session.force_login(owner_of(developer))
    ten = {"purpose": "tdm", "items": [{"sha256": f"{n:064x}"} for n in range(10)]}

    first = by_key.post("/api/v1/checks", ten, format="json")
    second = by_session.post("/api/v1/checks", {"purpose": "tdm", "items": ten["items"][:9]}, format="json")
    refused = by_other_key.post("/api/v1/checks", {"purpose": "tdm", "items": ten["items"][:2]}, format="json")
    last = by_other_key.post("/api/v1/checks", ONE_ITEM, format="json")

    assert [first.status_code, second.status_code, refused.status_code, last.status_code] == [200, 200, 429, 200]
    assert (first["RateLimit-Limit"], first["RateLimit-Remaining"]) == ("20", "10")
    assert second["RateLimit-Remaining"] == "1"
    assert refused.json()["error"]["code"] == "quota_exceeded"
    assert 1 <= int(refused["Retry-After"]) <= 60 and refused["RateLimit-Remaining"] == "1"
    assert int(first["RateLimit-Reset"]) <= 60 and first["RateLimit-Policy"] == "20;w=60"
    assert Check.objects.filter(organization=developer).count() == 3


@pytest.mark.django_db
def test_phash_items_cost_their_probes_and_a_request_beyond_a_whole_window_is_413(developer, settings):
    settings.KYOKA_QUOTA_UNITS_PER_MINUTE = 300
    _, raw = do_api_key_create(acting=OPERATOR, organization=developer, scopes=["checks"])
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")

    at_twelve = client.post("/api/v1/checks", {"purpose": "tdm", "items": [
        {"phash": "0123456789abcdef", "max_distance": 12}]}, format="json")
    too_costly = client.post("/api/v1/checks", {"purpose": "tdm", "items": [
        {"phash": "0123456789abcdef", "max_distance": 12}] * 2}, format="json")

    assert at_twelve.status_code == 200 and at_twelve["RateLimit-Remaining"] == str(300 - 243)
    assert too_costly.status_code == 413
    assert too_costly.json()["error"]["code"] == "request_too_costly"
    assert "486" in too_costly.json()["error"]["message"]


@pytest.mark.django_db
def test_a_key_of_its_own_quota_is_a_second_tighter_limit(developer, settings):
    settings.KYOKA_QUOTA_UNITS_PER_MINUTE = 1000
    api_key, raw = do_api_key_create(acting=OPERATOR, organization=developer, scopes=["checks"])
    ApiKey.objects.filter(pk=api_key.pk).update(quota_per_minute=2)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")

    statuses = [client.post("/api/v1/checks", ONE_ITEM, format="json").status_code for _ in range(3)]

    assert statuses == [200, 200, 429]


@pytest.mark.django_db
def test_an_organisation_holds_a_limited_number_of_api_keys(developer, settings):
    settings.KYOKA_MAX_API_KEYS_PER_ORGANIZATION = 3
    keys = [do_api_key_create(acting=OPERATOR, organization=developer, scopes=["checks"])[0] for _ in range(3)]

    with pytest.raises(LimitReached):
        do_api_key_create(acting=OPERATOR, organization=developer, scopes=["checks"])


    do_api_key_revoke(acting=OPERATOR, api_key=keys[0])
    assert do_api_key_create(acting=OPERATOR, organization=developer, scopes=["checks"])[0].revoked_at is None


def post_until_answered(session: requests.Session, url: str) -> int:
    """The test server's listen queue is short: a connection it resets is tried again."""
    for _ in range(20):
        try:
            return session.post(url, data=json.dumps(ONE_ITEM), headers={"Content-Type": "application/json"},
                                timeout=60).status_code
        except requests.ConnectionError:
            time.sleep(0.05)
    raise AssertionError("the live server never answered")


@pytest.mark.django_db(transaction=True)
def test_exactly_the_quota_gets_through_50_concurrent_clients_of_a_live_server(live_server, developer, settings):
    settings.KYOKA_QUOTA_UNITS_PER_MINUTE = 120
    settings.ALLOWED_HOSTS = ["*"]
    raws = [do_api_key_create(acting=OPERATOR, organization=developer, scopes=["checks"])[1] for _ in range(5)]
    statuses: list[int] = []
    barrier = threading.Barrier(50)

    def client(number: int) -> None:
        with requests.Session() as session:
            session.headers["Authorization"] = f"Bearer {raws[number % len(raws)]}"
            barrier.wait()
            for _ in range(4):
                statuses.append(post_until_answered(session, f"{live_server.url}/api/v1/checks"))

    threads = [threading.Thread(target=client, args=(n,)) for n in range(50)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert Counter(statuses) == {200: 120, 429: 200 - 120}
    assert Check.objects.filter(organization=developer).count() == 120


@pytest.mark.django_db
def test_the_portal_console_draws_on_the_same_quota_as_the_api(client, developer, settings):
    settings.KYOKA_QUOTA_UNITS_PER_MINUTE = 3
    client.force_login(owner_of(developer))
    form = {"purpose": "tdm", "context": "commercial", "territory": "", "items": "\n".join(["a" * 64] * 2)}

    first = client.post("/developer/check/", form)
    second = client.post("/developer/check/", form)

    assert first.status_code == 200 and second.status_code == 200
    assert Check.objects.filter(organization=developer).count() == 1
    assert "quota" in second.content.decode()
