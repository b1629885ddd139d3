"""The API-key endpoints: owners, signed in, list, create (secret shown once) and revoke keys."""

from __future__ import annotations

import json

import pytest
from rest_framework.test import APIClient

from registry.models import API_KEY_SCOPES, ApiKey, AuditEvent, Organization
from registry.services.api_keys import do_api_key_create, hash_api_key
from tests.conftest import OPERATOR, owner_of
from tests.registry.api.conftest import CALLERS, assert_error

pytestmark = pytest.mark.django_db

# Only people manage keys, and only owners: every key, whatever its scopes, is refused.
OWNERS = {
    "anonymous": 401, "other_org": 200, "other_org_key": 403, "viewer": 403, "manager": 403,
    "owner": 200, "key": 403, "key_without_scope": 403, "revoked_key": 401,
}


def body(response) -> dict:
    return json.loads(response.content)


def signed_in(org: Organization) -> APIClient:
    client = APIClient()
    client.force_login(owner_of(org))
    return client


@pytest.fixture
def existing_key(studio) -> ApiKey:
    api_key, _ = do_api_key_create(acting=OPERATOR, organization=studio, name="catalog sync", scopes=["works:read"])
    return api_key


# --- the access matrix ----------------------------------------------------------------------


@pytest.mark.parametrize("who", CALLERS)
def test_list_keys(caller, studio, existing_key, who):
    response = caller(who, studio, scope=None).get("/api/v1/keys")
    if OWNERS[who] != 200:
        assert_error(response, OWNERS[who])
        return
    listed = body(response)["results"]
    if who == "other_org":
        assert existing_key.prefix not in {k["prefix"] for k in listed}
        return
    mine = next(k for k in listed if k["id"] == existing_key.pk)
    assert {k: mine[k] for k in ("name", "prefix", "scopes", "revoked_at")} == {
        "name": "catalog sync", "prefix": existing_key.prefix, "scopes": ["works:read"], "revoked_at": None,
    }
    assert "key" not in mine and "secret_hash" not in mine


@pytest.mark.parametrize("who", CALLERS)
def test_create_a_key(caller, studio, who):
    client = caller(who, studio, scope=None)
    keys_before = ApiKey.objects.count()
    response = client.post("/api/v1/keys", {"name": "ingest", "scopes": ["works:read", "works:write"]}, format="json")
    expected = {**OWNERS, "owner": 201, "other_org": 201}[who]
    if expected != 201:
        assert_error(response, expected)
        assert ApiKey.objects.count() == keys_before
        return
    data = body(response)
    api_key = ApiKey.objects.get(pk=data["id"])
    # Another organisation's owner makes keys for its own organisation, never for this one.
    assert (api_key.organization == studio) is (who == "owner")
    assert (data["name"], data["scopes"], data["prefix"]) == ("ingest", ["works:read", "works:write"], api_key.prefix)
    assert data["key"].startswith(f"kyoka_{api_key.prefix}_") and api_key.secret_hash == hash_api_key(data["key"])


@pytest.mark.parametrize("who", CALLERS)
def test_revoke_a_key(caller, studio, existing_key, who):
    response = caller(who, studio, scope=None).post(f"/api/v1/keys/{existing_key.pk}/revoke")
    expected = {**OWNERS, "other_org": 404}[who]
    existing_key.refresh_from_db()
    if expected != 200:
        assert_error(response, expected)
        assert existing_key.revoked_at is None
        return
    assert body(response)["revoked_at"] is not None and existing_key.revoked_at is not None


# --- behaviour --------------------------------------------------------------------------------


def test_a_new_key_is_shown_once_and_works_at_once(studio):
    owner = signed_in(studio)
    created = body(owner.post("/api/v1/keys", {"name": "sync", "scopes": ["works:read"]}, format="json"))
    machine = APIClient()
    machine.credentials(HTTP_AUTHORIZATION=f"Bearer {created['key']}")
    assert machine.get("/api/v1/works").status_code == 200
    assert_error(machine.post("/api/v1/works", {"external_ref": "X", "title": "X"}, format="json"), 403)
    listed = body(owner.get("/api/v1/keys"))["results"]
    assert [k["id"] for k in listed] == [created["id"]]
    assert created["key"] not in json.dumps(listed)
    assert not ApiKey.objects.filter(secret_hash=created["key"]).exists()


def test_a_revoked_key_stops_working_at_once(studio):
    owner = signed_in(studio)
    created = body(owner.post("/api/v1/keys", {"scopes": ["works:read"]}, format="json"))
    machine = APIClient()
    machine.credentials(HTTP_AUTHORIZATION=f"Bearer {created['key']}")
    assert machine.get("/api/v1/works").status_code == 200
    assert owner.post(f"/api/v1/keys/{created['id']}/revoke").status_code == 200
    assert_error(machine.get("/api/v1/works"), 401, "authentication_failed")
    assert_error(owner.post(f"/api/v1/keys/{created['id']}/revoke"), 409, "conflict")
    actions = AuditEvent.objects.filter(object_type="api_key", object_id=str(created["id"])).values_list(
        "action", flat=True
    )
    assert sorted(actions) == ["api_key.create", "api_key.revoke"]


def test_a_key_with_every_scope_cannot_make_keys(client_for, studio):
    response = client_for(studio, list(API_KEY_SCOPES)).post("/api/v1/keys", {"scopes": ["works:read"]})
    assert "cannot manage API keys" in assert_error(response, 403, "forbidden")["message"]


def test_unknown_scopes_are_refused(studio):
    response = signed_in(studio).post("/api/v1/keys", {"scopes": ["works:read", "everything"]}, format="json")
    assert list(assert_error(response, 400, "invalid")["fields"]) == ["scopes"]
    assert not ApiKey.objects.exists()


def test_an_ai_developers_key_defaults_to_checks(developer):
    created = body(signed_in(developer).post("/api/v1/keys", {}, format="json"))
    assert created["scopes"] == ["checks"] and created["name"] == f"key {created['prefix']}"
