"""GET /api/v1/activity: a rightsholder sees who checked its works, for what, with what answer."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from registry.access import Actor
from registry.decisions.batch import batch_decide, batch_parse
from registry.decisions.parse import CheckRequest
from registry.decisions.run import do_check_record
from registry.models import Organization
from registry.services.grants import do_grant_issue
from tests.conftest import OPERATOR
from tests.registry.api.conftest import CALLERS, assert_error

pytestmark = pytest.mark.django_db

ISBN = "isbn:978-4-04-102622-9"
ISAN = "isan:0000-0000-3A8D-0000-Z-0000-0000-6"
DOI = "doi:10.1000/kyoka-test"
DAY1 = datetime(2026, 3, 1, tzinfo=UTC)
DAY2 = DAY1 + timedelta(days=1)
DAY3 = DAY1 + timedelta(days=2)
READ = {
    "anonymous": 401, "other_org": 200, "other_org_key": 200, "viewer": 200, "manager": 200,
    "owner": 200, "key": 200, "key_without_scope": 403, "revoked_key": 401,
}


def body(response) -> dict:
    return json.loads(response.content)


def checked(requester: Organization, identifiers: list[str], *, at: datetime, purpose: str = "train-genai") -> None:
    """A check made at `at`, recorded exactly as the check endpoint records it."""
    terms = CheckRequest(requester=requester, purpose=purpose, territory=None, context="commercial", at=at)
    decided = batch_decide(terms, batch_parse([{"identifier": i} for i in identifiers]))
    do_check_record(actor=Actor.for_operator("tests"), request_terms=terms, decided=decided)


@pytest.fixture
def history(studio, developer, make_org, make_work):
    """Two days of checks: the developer (granted A) and another developer (granted nothing)."""
    a, b = make_work(identifiers=[ISBN]), make_work(identifiers=[ISAN])
    make_work(make_org(name="Other Studio"), identifiers=[DOI])
    do_grant_issue(acting=OPERATOR, grantor=studio, scope="work", work=a, licensee=developer, purposes=["train-ai"],
                valid_from=DAY1 - timedelta(days=1))
    other_dev = make_org(Organization.Kind.AI_DEVELOPER, name="Other AI")
    checked(developer, [ISBN, ISAN], at=DAY1 + timedelta(hours=9))
    checked(developer, [ISBN], at=DAY2 + timedelta(hours=9))
    checked(other_dev, [ISBN, DOI], at=DAY2 + timedelta(hours=10), purpose="search")
    return {"a": a, "b": b, "other_dev": other_dev}


def activity(client, **query) -> dict:
    response = client.get("/api/v1/activity", query)
    assert response.status_code == 200, response.content
    return body(response)


# --- the access matrix ----------------------------------------------------------------------


@pytest.mark.parametrize("who", CALLERS)
def test_only_the_owner_sees_who_checked_its_works(caller, studio, history, who):
    response = caller(who, studio, scope="works:read").get(
        "/api/v1/activity", {"since": "2026-03-01", "until": "2026-03-03"}
    )
    if READ[who] != 200:
        assert_error(response, READ[who])
        return
    data = body(response)
    if who.startswith("other_org"):
        assert data["results"] == [] and data["top_requesters"] == []
        assert [day["total"] for day in data["daily"]] == [0, 0]
    else:
        assert len(data["results"]) == 4 and data["daily"][0]["total"] == 2


# --- what it shows ----------------------------------------------------------------------------


def test_accesses_newest_first_with_requester_purpose_and_answer(client_for, studio, developer, history):
    data = activity(client_for(studio, ["works:read"]), since="2026-03-01", until="2026-03-03")
    a, b, other_dev = history["a"], history["b"], history["other_dev"]
    rows = [(r["work"]["id"], r["requester"]["slug"], r["purpose"], r["decision"], r["checked_at"])
            for r in data["results"]]
    assert rows[:2] == [
        (str(a.pk), other_dev.slug, "search", "not_permitted", "2026-03-02T10:00:00Z"),
        (str(a.pk), developer.slug, "train-genai", "permitted", "2026-03-02T09:00:00Z"),
    ]
    # The two works one check matched share its time: either order.
    assert set(rows[2:]) == {
        (str(a.pk), developer.slug, "train-genai", "permitted", "2026-03-01T09:00:00Z"),
        (str(b.pk), developer.slug, "train-genai", "not_permitted", "2026-03-01T09:00:00Z"),
    }
    assert data["results"][0]["work"] == {"id": str(a.pk), "external_ref": a.external_ref, "title": a.title}
    assert data["results"][0]["requester"] == {"slug": other_dev.slug, "name": "Other AI"}
    assert (data["since"], data["until"]) == ("2026-03-01T00:00:00Z", "2026-03-03T00:00:00Z")


def test_daily_counts_by_decision(client_for, studio, history):
    data = activity(client_for(studio, ["works:read"]), since="2026-02-28", until="2026-03-03")
    assert data["daily"] == [
        {"date": "2026-02-28", "permitted": 0, "not_permitted": 0, "disputed": 0, "total": 0},
        {"date": "2026-03-01", "permitted": 1, "not_permitted": 1, "disputed": 0, "total": 2},
        {"date": "2026-03-02", "permitted": 1, "not_permitted": 1, "disputed": 0, "total": 2},
    ]


def test_top_requesters(client_for, studio, developer, history):
    data = activity(client_for(studio, ["works:read"]), since="2026-03-01", until="2026-03-03")
    assert data["top_requesters"] == [
        {"requester": developer.slug, "name": "Acme AI", "accesses": 3, "checks": 2, "permitted": 2,
         "not_permitted": 1, "disputed": 0, "last_checked_at": "2026-03-02T09:00:00Z"},
        {"requester": history["other_dev"].slug, "name": "Other AI", "accesses": 1, "checks": 1, "permitted": 0,
         "not_permitted": 1, "disputed": 0, "last_checked_at": "2026-03-02T10:00:00Z"},
    ]


def test_filter_by_work(client_for, studio, developer, history):
    data = activity(client_for(studio, ["works:read"]), since="2026-03-01", until="2026-03-03",
                    work=str(history["b"].pk))
    assert [(r["work"]["id"], r["decision"]) for r in data["results"]] == [(str(history["b"].pk), "not_permitted")]
    assert [d["total"] for d in data["daily"]] == [1, 0]
    assert [(t["requester"], t["accesses"]) for t in data["top_requesters"]] == [(developer.slug, 1)]


def test_another_organisations_work_is_not_found(client_for, make_org, history):
    other_studio = make_org()
    response = client_for(other_studio, ["works:read"]).get("/api/v1/activity", {"work": str(history["a"].pk)})
    assert_error(response, 404, "not_found")


def test_the_window_is_since_inclusive_until_exclusive(client_for, studio, history):
    client = client_for(studio, ["works:read"])
    only_day2 = activity(client, since="2026-03-02T00:00:00Z", until="2026-03-02T10:00:00Z")
    assert [r["checked_at"] for r in only_day2["results"]] == ["2026-03-02T09:00:00Z"]
    assert activity(client, since="2026-03-02T10:00:00Z", until=DAY3.isoformat())["results"][0]["checked_at"] == (
        "2026-03-02T10:00:00Z"
    )


def test_the_default_window_is_the_last_thirty_days(client_for, studio, developer, make_work):
    make_work(identifiers=[ISBN])
    now = timezone.now()
    checked(developer, [ISBN], at=now - timedelta(days=40))
    checked(developer, [ISBN], at=now - timedelta(days=2))
    data = activity(client_for(studio, ["works:read"]))
    assert len(data["results"]) == 1 and len(data["daily"]) == 31
    assert sum(day["total"] for day in data["daily"]) == 1


@pytest.mark.parametrize("query", [
    {"since": "2026-03-03", "until": "2026-03-01"},
    {"since": "2024-01-01", "until": "2026-01-01"},
    {"since": "yesterday"},
    {"work": "not-a-uuid"},
])
def test_a_bad_window_is_a_400(client_for, studio, query):
    response = client_for(studio, ["works:read"]).get("/api/v1/activity", query)
    assert assert_error(response, 400, "invalid")["fields"]


def test_accesses_are_paginated_with_a_cursor(client_for, studio, history):
    client = client_for(studio, ["works:read"])
    first = activity(client, since="2026-03-01", until="2026-03-03", limit=3)
    assert len(first["results"]) == 3 and first["next"]
    second = body(client.get(first["next"]))
    assert len(second["results"]) == 1 and second["next"] is None
    # The counts always cover the whole window, whatever the page.
    assert second["daily"] == first["daily"] and second["top_requesters"] == first["top_requesters"]


def test_the_queries_do_not_grow_with_the_accesses(client_for, studio, developer, make_work):
    make_work(identifiers=[ISBN])
    client = client_for(studio, ["works:read"])
    query = {"since": "2026-03-01", "until": "2026-03-03"}
    checked(developer, [ISBN], at=DAY1)
    client.get("/api/v1/activity", query)  # the key's first use of the minute records last_used_at
    with CaptureQueriesContext(connection) as few:
        client.get("/api/v1/activity", query)
    for hour in range(1, 30):
        checked(developer, [ISBN], at=DAY1 + timedelta(hours=hour))
    with CaptureQueriesContext(connection) as many:
        assert len(body(client.get("/api/v1/activity", query))["results"]) == 30
    assert len(many.captured_queries) == len(few.captured_queries)


def test_a_check_through_the_api_shows_up(client_for, studio, developer, make_work, check):
    work = make_work(identifiers=[ISBN])
    check([{"identifier": ISBN}], purpose="search")
    data = activity(client_for(studio, ["works:read"]))
    assert [(r["work"]["id"], r["requester"]["slug"], r["purpose"], r["decision"]) for r in data["results"]] == [
        (str(work.pk), developer.slug, "search", "not_permitted")
    ]
    assert data["daily"][-1]["not_permitted"] == 1


def test_an_ai_developer_has_no_activity_page(client_for, developer):
    assert_error(client_for(developer, ["works:read"]).get("/api/v1/activity"), 403, "forbidden")
