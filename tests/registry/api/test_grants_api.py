"""The grants API: a rightsholder issues, lists and revokes grants; a named licensee reads its own."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from django.utils import timezone

from registry.models import AuditEvent, Grant, Organization
from registry.services.grants import do_grant_issue, do_grant_revoke
from tests.conftest import OPERATOR, owner_of
from tests.registry.api.conftest import CALLERS, assert_error

pytestmark = pytest.mark.django_db

ISBN = "isbn:978-4-04-102622-9"
READ = {
    "anonymous": 401, "other_org": 404, "other_org_key": 404, "viewer": 200, "manager": 200,
    "owner": 200, "key": 200, "key_without_scope": 403, "revoked_key": 401,
}
WRITE = {**READ, "viewer": 403}


def body(response) -> dict:
    return json.loads(response.content)


@pytest.fixture
def issue(studio, developer):
    def make(**terms) -> Grant:
        terms.setdefault("scope", "work" if terms.get("work") else "catalog")
        terms.setdefault("purposes", ["train-genai"])
        terms.setdefault("licensee", developer)
        return do_grant_issue(acting=OPERATOR, grantor=studio, **terms)

    return make


# --- the access matrix ----------------------------------------------------------------------


@pytest.mark.parametrize("who", CALLERS)
def test_list_grants(caller, studio, issue, who):
    grant = issue()
    response = caller(who, studio, scope=("works:read", "checks")).get("/api/v1/grants")
    expected = {**READ, "other_org": 200, "other_org_key": 200}[who]
    if expected != 200:
        assert_error(response, expected)
        return
    ids = [g["id"] for g in body(response)["results"]]
    assert ids == ([] if who.startswith("other_org") else [str(grant.pk)])


@pytest.mark.parametrize("who", CALLERS)
def test_issue_a_grant(caller, studio, developer, make_work, who):
    work = make_work()
    response = caller(who, studio, scope="grants:write").post("/api/v1/grants", {
        "scope": "work", "work": str(work.pk), "licensee": developer.slug, "purposes": ["train-ai"],
        "territories": ["JP"], "contexts": ["commercial"],
        "conditions": {"attribution": "© Studio Aozora", "licence_url": "https://studio.example/l/1"},
    }, format="json")
    expected = {**WRITE, "other_org": 400, "other_org_key": 400}[who]
    expected = 201 if expected == 200 else expected
    if expected != 201:
        error = assert_error(response, expected)
        if expected == 400:  # another organisation cannot grant on this studio's work
            assert error["fields"] == {"work": ["No such work."]}
        assert not Grant.objects.exists()
        return
    data = body(response)
    grant = Grant.objects.get(pk=data["id"])
    assert (grant.grantor, grant.work, grant.licensee) == (studio, work, developer)
    assert {k: data[k] for k in ("grantor", "scope", "work", "licensee", "purposes", "territories", "contexts")} == {
        "grantor": studio.slug, "scope": "work", "work": str(work.pk), "licensee": developer.slug,
        "purposes": ["train-ai"], "territories": ["JP"], "contexts": ["commercial"],
    }
    assert data["conditions"] == {
        "attribution": "© Studio Aozora", "licence_url": "https://studio.example/l/1", "compensation": "",
    }
    assert (data["state"], data["valid_until"], data["revoked_at"]) == ("active", None, None)
    assert AuditEvent.objects.filter(action="grant.issue", object_id=data["id"]).count() == 1


@pytest.mark.parametrize("who", CALLERS)
def test_read_one_grant(caller, studio, issue, who):
    grant = issue(attribution="© Studio Aozora")
    response = caller(who, studio, scope=("works:read", "checks")).get(f"/api/v1/grants/{grant.pk}")
    if READ[who] != 200:
        assert_error(response, READ[who])
        return
    data = body(response)
    assert (data["id"], data["scope"], data["work"], data["conditions"]["attribution"]) == (
        str(grant.pk), "catalog", None, "© Studio Aozora"
    )


@pytest.mark.parametrize("who", CALLERS)
def test_revoke_a_grant(caller, studio, issue, who):
    grant = issue()
    response = caller(who, studio, scope="grants:write").post(
        f"/api/v1/grants/{grant.pk}/revoke", {"reason": "Agreement ended"}, format="json"
    )
    grant.refresh_from_db()
    if WRITE[who] != 200:
        assert_error(response, WRITE[who])
        assert grant.revoked_at is None
        return
    data = body(response)
    assert (data["state"], data["revocation_reason"]) == ("revoked", "Agreement ended")
    assert grant.revoked_at is not None and grant.revocation_reason == "Agreement ended"


# --- the licensee's side ---------------------------------------------------------------------


def test_a_named_licensee_reads_its_grants_with_a_checks_key(client_for, issue, developer):
    grant = issue()
    client = client_for(developer, ["checks"])
    assert [g["id"] for g in body(client.get("/api/v1/grants"))["results"]] == [str(grant.pk)]
    data = body(client.get(f"/api/v1/grants/{grant.pk}"))
    assert (data["grantor"], data["licensee"]) == (grant.grantor.slug, developer.slug)


def test_a_named_licensee_cannot_revoke_and_learns_nothing(client_for, api_client, issue, developer):
    # 404, as in the portal: revoking someone else's grant is no oracle of what exists.
    grant = issue()
    by_key = client_for(developer, ["checks", "grants:write"]).post(f"/api/v1/grants/{grant.pk}/revoke", {})
    assert_error(by_key, 404, "not_found")
    api_client.force_login(owner_of(developer))
    assert_error(api_client.post(f"/api/v1/grants/{grant.pk}/revoke", {}), 404, "not_found")
    grant.refresh_from_db()
    assert grant.revoked_at is None


def test_grants_to_any_verified_developer_are_not_listed_to_each_of_them(client_for, issue, developer):
    issue(licensee=None)
    assert body(client_for(developer, ["checks"]).get("/api/v1/grants"))["results"] == []


def test_another_developer_does_not_see_a_grant_naming_someone_else(client_for, issue, make_org):
    grant = issue()
    other = client_for(make_org(Organization.Kind.AI_DEVELOPER), ["checks"])
    assert body(other.get("/api/v1/grants"))["results"] == []
    assert_error(other.get(f"/api/v1/grants/{grant.pk}"), 404, "not_found")


# --- issuing: the terms ------------------------------------------------------------------------


def post_grant(client_for, studio, **payload):
    payload.setdefault("scope", "catalog")
    payload.setdefault("purposes", ["train-genai"])
    return client_for(studio, ["grants:write"]).post("/api/v1/grants", payload, format="json")


def test_the_licensee_must_be_named_or_explicitly_null(client_for, studio):
    error = assert_error(post_grant(client_for, studio), 400, "invalid")
    assert list(error["fields"]) == ["licensee"]
    response = post_grant(client_for, studio, licensee=None, contexts=["research"])
    assert response.status_code == 201, response.content
    assert (body(response)["licensee"], body(response)["contexts"]) == (None, ["research"])


@pytest.mark.parametrize("payload,field", [
    ({"licensee": "no-such-org"}, "licensee"),
    ({"licensee": None, "purposes": ["train-everything"]}, "purposes"),
    ({"licensee": None, "purposes": []}, "purposes"),
    ({"licensee": None, "territories": ["XX"]}, "territories"),
    ({"licensee": None, "contexts": ["military"]}, "contexts"),
    ({"licensee": None, "valid_from": "2027-01-01T00:00:00Z", "valid_until": "2026-01-01T00:00:00Z"}, "valid_until"),
    ({"licensee": None, "conditions": {"licence_url": "ftp://x.example/"}}, "licence_url"),
    ({"licensee": None, "scope": "work"}, "work"),
    ({"licensee": None, "scope": "everything"}, "scope"),
])
def test_invalid_terms_name_the_field(client_for, studio, payload, field):
    error = assert_error(post_grant(client_for, studio, **payload), 400, "invalid")
    assert field in error["fields"], error
    assert not Grant.objects.exists()


def test_a_licensee_must_be_an_ai_developer(client_for, studio, make_org):
    other_studio = make_org()
    error = assert_error(post_grant(client_for, studio, licensee=other_studio.slug), 400, "invalid")
    # The same answer as for a slug nobody has (tests/api/test_oracles.py).
    assert error["fields"] == {"licensee": ["No AI developer organisation has that slug."]}


def test_a_catalog_grant_names_no_work(client_for, studio, make_work):
    work = make_work()
    error = assert_error(post_grant(client_for, studio, licensee=None, work=str(work.pk)), 400, "invalid")
    assert list(error["fields"]) == ["work"]


def test_an_ai_developer_cannot_issue_grants(client_for, developer):
    response = post_grant(client_for, developer, licensee=None)
    assert "rightsholder" in assert_error(response, 403, "forbidden")["message"]


def test_a_grant_is_never_edited(client_for, studio, issue):
    grant = issue()
    response = client_for(studio, ["grants:write"]).patch(
        f"/api/v1/grants/{grant.pk}", {"purposes": ["all"]}, format="json"
    )
    assert_error(response, 405)
    grant.refresh_from_db()
    assert grant.purposes == ["train-genai"]


def test_state_and_in_force_filter(client_for, studio, issue):
    now = timezone.now()
    active = issue()
    scheduled = issue(valid_from=now + timedelta(days=7))
    expired = issue(valid_from=now - timedelta(days=30), valid_until=now - timedelta(days=1))
    revoked = do_grant_revoke(acting=OPERATOR, grant=issue())
    client = client_for(studio, ["works:read"])
    states = {g["id"]: g["state"] for g in body(client.get("/api/v1/grants"))["results"]}
    assert states == {
        str(active.pk): "active", str(scheduled.pk): "scheduled", str(expired.pk): "expired",
        str(revoked.pk): "revoked",
    }
    in_force = {g["id"] for g in body(client.get("/api/v1/grants?in_force=true"))["results"]}
    assert in_force == {str(active.pk)}
    not_in_force = {g["id"] for g in body(client.get("/api/v1/grants?in_force=false"))["results"]}
    assert not_in_force == {str(scheduled.pk), str(expired.pk), str(revoked.pk)}


def test_filter_by_work(client_for, studio, issue, make_work):
    first, second = make_work(), make_work()
    on_first = issue(work=first)
    issue(work=second)
    issue()
    listed = body(client_for(studio, ["works:read"]).get(f"/api/v1/grants?work={first.pk}"))["results"]
    assert [g["id"] for g in listed] == [str(on_first.pk)]


def test_revoking_twice_is_a_conflict(client_for, studio, issue):
    grant = issue()
    client = client_for(studio, ["grants:write"])
    assert client.post(f"/api/v1/grants/{grant.pk}/revoke", {}).status_code == 200
    assert_error(client.post(f"/api/v1/grants/{grant.pk}/revoke", {}), 409, "conflict")


def test_a_revoked_grant_stops_permitting_new_checks(client_for, studio, developer, make_work, issue, check):
    work = make_work(identifiers=[ISBN])
    grant = issue(work=work)
    assert check([{"identifier": ISBN}])[1]["results"][0]["decision"] == "permitted"
    client_for(studio, ["grants:write"]).post(f"/api/v1/grants/{grant.pk}/revoke", {"reason": "ended"})
    result = check([{"identifier": ISBN}])[1]["results"][0]
    assert (result["decision"], result["matches"][0]["reason"]) == ("not_permitted", "grant_revoked")


def test_a_grant_issued_through_the_api_permits_checks(client_for, studio, developer, make_work, check):
    work = make_work(identifiers=[ISBN])
    response = post_grant(client_for, studio, scope="work", work=str(work.pk), licensee=developer.slug)
    assert response.status_code == 201
    result = check([{"identifier": ISBN}])[1]["results"][0]
    assert result["decision"] == "permitted" and result["grants"] == [body(response)["id"]]
