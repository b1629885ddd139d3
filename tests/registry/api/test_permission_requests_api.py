"""The permission-requests API: a developer asks; the rightsholder's managers accept or decline."""

from __future__ import annotations

import json

import pytest

from registry.models import Grant, Organization, PermissionRequest
from registry.services.permission_requests import (
    do_permission_request_create,
    do_permission_request_decline,
)
from tests.conftest import OPERATOR, owner_of
from tests.registry.api.conftest import CALLERS, assert_error

pytestmark = pytest.mark.django_db

ISBN = "isbn:978-4-04-102622-9"
READ_SCOPES = ("checks", "works:read", "grants:write")
READ = {
    "anonymous": 401, "other_org": 200, "other_org_key": 200, "viewer": 200, "manager": 200,
    "owner": 200, "key": 200, "key_without_scope": 403, "revoked_key": 401,
}
ANSWER = {**READ, "other_org": 404, "other_org_key": 404, "viewer": 403}


def body(response) -> dict:
    return json.loads(response.content)


@pytest.fixture
def ask(developer, studio):
    def make(requester=None, rightsholder=None, **terms) -> PermissionRequest:
        terms.setdefault("purposes", ["train-genai"])
        return do_permission_request_create(
            acting=OPERATOR, requester=requester or developer, rightsholder=rightsholder or studio, **terms
        )

    return make


# --- the access matrix ----------------------------------------------------------------------


@pytest.mark.parametrize("side", ["developer", "studio"])
@pytest.mark.parametrize("who", CALLERS)
def test_each_side_lists_its_own_requests(caller, request, ask, side, who):
    permission_request = ask()
    org = request.getfixturevalue(side)
    response = caller(who, org, scope=READ_SCOPES).get("/api/v1/permission-requests")
    if READ[who] != 200:
        assert_error(response, READ[who])
        return
    ids = [r["id"] for r in body(response)["results"]]
    assert ids == ([] if who.startswith("other_org") else [str(permission_request.pk)])


@pytest.mark.parametrize("who", CALLERS)
def test_a_developer_asks(caller, developer, studio, make_work, who):
    work = make_work()
    response = caller(who, developer, scope="checks").post("/api/v1/permission-requests", {
        "rightsholder": studio.slug, "work": str(work.pk), "purposes": ["train-genai"], "territories": ["JP"],
        "message": "For our illustration model",
    }, format="json")
    expected = {**ANSWER, "other_org": 201, "other_org_key": 201, "manager": 201, "owner": 201, "key": 201}[who]
    if expected != 201:
        assert_error(response, expected)
        assert not PermissionRequest.objects.exists()
        return
    data = body(response)
    permission_request = PermissionRequest.objects.get(pk=data["id"])
    # Another developer's ask is its own request, never one on this developer's behalf.
    requester = permission_request.requester
    assert (requester == developer) is (not who.startswith("other_org"))
    assert {k: data[k] for k in ("requester", "rightsholder", "work", "purposes", "territories", "status")} == {
        "requester": requester.slug, "rightsholder": studio.slug, "work": str(work.pk),
        "purposes": ["train-genai"], "territories": ["JP"], "status": "pending",
    }
    assert (data["message"], data["grant"], data["decided_at"]) == ("For our illustration model", None, None)


@pytest.mark.parametrize("who", CALLERS)
def test_the_rightsholder_accepts(caller, studio, developer, ask, who):
    permission_request = ask(territories=["JP"])
    response = caller(who, studio, scope="grants:write").post(
        f"/api/v1/permission-requests/{permission_request.pk}/accept", {"response": "Granted"}, format="json"
    )
    permission_request.refresh_from_db()
    if ANSWER[who] != 200:
        assert_error(response, ANSWER[who])
        assert permission_request.status == "pending" and not Grant.objects.exists()
        return
    data = body(response)
    grant = Grant.objects.get()
    assert (data["status"], data["grant"], data["response"]) == ("accepted", str(grant.pk), "Granted")
    assert (grant.grantor, grant.licensee, grant.scope, grant.purposes, grant.territories) == (
        studio, developer, "catalog", ["train-genai"], ["JP"]
    )


@pytest.mark.parametrize("who", CALLERS)
def test_the_rightsholder_declines(caller, studio, ask, who):
    permission_request = ask()
    response = caller(who, studio, scope="grants:write").post(
        f"/api/v1/permission-requests/{permission_request.pk}/decline", {"response": "Not now"}, format="json"
    )
    permission_request.refresh_from_db()
    if ANSWER[who] != 200:
        assert_error(response, ANSWER[who])
        assert permission_request.status == "pending"
        return
    assert (body(response)["status"], body(response)["response"]) == ("declined", "Not now")
    assert permission_request.status == "declined" and not Grant.objects.exists()


# --- behaviour --------------------------------------------------------------------------------


def test_each_side_sees_only_its_own(client_for, ask, developer, studio, make_org):
    other_dev, other_studio = make_org(Organization.Kind.AI_DEVELOPER), make_org()
    mine = ask()
    theirs = ask(requester=other_dev)
    elsewhere = ask(rightsholder=other_studio)

    def listed(org) -> set[str]:
        return {r["id"] for r in body(client_for(org, ["checks"]).get("/api/v1/permission-requests"))["results"]}

    assert listed(developer) == {str(mine.pk), str(elsewhere.pk)}
    assert listed(studio) == {str(mine.pk), str(theirs.pk)}
    assert listed(other_dev) == {str(theirs.pk)}
    assert listed(other_studio) == {str(elsewhere.pk)}


def test_the_requester_cannot_answer_its_own_request(client_for, api_client, ask, developer):
    permission_request = ask()
    key = client_for(developer, ["checks", "grants:write"])
    for action in ("accept", "decline"):
        assert_error(key.post(f"/api/v1/permission-requests/{permission_request.pk}/{action}", {}), 403)
    api_client.force_login(owner_of(developer))
    assert_error(api_client.post(f"/api/v1/permission-requests/{permission_request.pk}/accept", {}), 403)
    permission_request.refresh_from_db()
    assert permission_request.status == "pending"


def test_a_rightsholder_cannot_ask(client_for, studio, make_org):
    response = client_for(studio, ["checks"]).post(
        "/api/v1/permission-requests", {"rightsholder": make_org().slug, "purposes": ["all"]}, format="json"
    )
    assert "ai developer" in assert_error(response, 403, "forbidden")["message"].lower()


@pytest.mark.parametrize("payload,field", [
    ({"rightsholder": "no-such-studio"}, "rightsholder"),
    ({"purposes": ["train-everything"]}, "purposes"),
    ({"territories": ["XX"]}, "territories"),
    ({"work": "00000000-0000-0000-0000-000000000000"}, "work"),
])
def test_bad_requests_name_the_field(client_for, developer, studio, payload, field):
    payload = {"rightsholder": studio.slug, "purposes": ["train-genai"], **payload}
    response = client_for(developer, ["checks"]).post("/api/v1/permission-requests", payload, format="json")
    assert field in assert_error(response, 400, "invalid")["fields"]
    assert not PermissionRequest.objects.exists()


def test_asking_for_another_rightsholders_work_is_refused(client_for, developer, studio, make_org, make_work):
    other_studio = make_org()
    response = client_for(developer, ["checks"]).post("/api/v1/permission-requests", {
        "rightsholder": other_studio.slug, "work": str(make_work().pk), "purposes": ["train-genai"],
    }, format="json")
    assert assert_error(response, 400, "invalid")["fields"] == {"work": ["No such work."]}


def test_accepting_with_other_terms(client_for, studio, developer, ask, make_work):
    series = make_work(kind="collection")
    permission_request = ask(purposes=["all"])
    response = client_for(studio, ["grants:write"]).post(
        f"/api/v1/permission-requests/{permission_request.pk}/accept", {
            "work": str(series.pk), "purposes": ["train-ai"], "contexts": ["research"],
            "valid_until": "2030-01-01T00:00:00Z", "conditions": {"attribution": "© Studio Aozora"},
        }, format="json",
    )
    assert response.status_code == 200, response.content
    grant = Grant.objects.get(pk=body(response)["grant"])
    assert (grant.scope, grant.work, grant.purposes, grant.contexts, grant.attribution) == (
        "work", series, ["train-ai"], ["research"], "© Studio Aozora"
    )
    assert grant.valid_until.isoformat() == "2030-01-01T00:00:00+00:00"


def test_accepting_with_invalid_terms_leaves_the_request_pending(client_for, studio, ask):
    permission_request = ask()
    response = client_for(studio, ["grants:write"]).post(
        f"/api/v1/permission-requests/{permission_request.pk}/accept", {"territories": ["XX"]}, format="json"
    )
    assert "territories" in assert_error(response, 400, "invalid")["fields"]
    permission_request.refresh_from_db()
    assert permission_request.status == "pending" and not Grant.objects.exists()


def test_a_request_is_answered_once(client_for, studio, ask):
    permission_request = ask()
    do_permission_request_decline(acting=OPERATOR, permission_request=permission_request)
    response = client_for(studio, ["grants:write"]).post(
        f"/api/v1/permission-requests/{permission_request.pk}/accept", {}, format="json"
    )
    assert "already declined" in assert_error(response, 409, "invalid_transition")["message"]
    assert not Grant.objects.exists()


def test_filter_by_status(client_for, studio, ask):
    pending, declined = ask(), ask()
    do_permission_request_decline(acting=OPERATOR, permission_request=declined)
    client = client_for(studio, ["works:read"])
    assert [r["id"] for r in body(client.get("/api/v1/permission-requests?status=pending"))["results"]] == [
        str(pending.pk)
    ]
    assert [r["id"] for r in body(client.get("/api/v1/permission-requests?status=declined"))["results"]] == [
        str(declined.pk)
    ]
    assert_error(client.get("/api/v1/permission-requests?status=maybe"), 400, "invalid")


def test_from_asking_to_a_permitted_check(client_for, developer, studio, make_work, check):
    """The whole flow: check → unpermitted → ask → accepted → the same check now permits."""
    work = make_work(identifiers=[ISBN])
    first = check([{"identifier": ISBN}])[1]["results"][0]
    assert (first["decision"], first["matches"][0]["reason"]) == ("not_permitted", "no_grant")
    asked = client_for(developer, ["checks"]).post("/api/v1/permission-requests", {
        "rightsholder": first["matches"][0]["owner"], "work": first["matches"][0]["work"],
        "purposes": ["train-genai"],
    }, format="json")
    assert asked.status_code == 201, asked.content
    accepted = client_for(studio, ["grants:write"]).post(
        f"/api/v1/permission-requests/{body(asked)['id']}/accept", {}, format="json"
    )
    assert accepted.status_code == 200, accepted.content
    result = check([{"identifier": ISBN}])[1]["results"][0]
    assert result["decision"] == "permitted" and result["matches"][0]["work"] == str(work.pk)
    assert result["grants"] == [body(accepted)["grant"]]
    # The licensee now sees the grant it was given.
    grants = body(client_for(developer, ["checks"]).get("/api/v1/grants"))["results"]
    assert [g["id"] for g in grants] == [body(accepted)["grant"]]
