from __future__ import annotations

import json

import pytest
from rest_framework.test import APIClient

from registry.models import API_KEY_SCOPES, Organization
from registry.services.api_keys import do_api_key_create, do_api_key_revoke
from registry.services.organizations import do_membership_add
from registry.services.works import do_work_register
from tests.conftest import OPERATOR, owner_of


@pytest.fixture
def api_client():
    return APIClient()


@pytest.fixture
def key_for():
    def make(org: Organization, scopes=None) -> str:
        _, raw = do_api_key_create(acting=OPERATOR, organization=org, scopes=scopes)
        return raw

    return make


@pytest.fixture
def client_for(key_for):
    def make(org: Organization, scopes=None) -> APIClient:
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {key_for(org, scopes)}")
        return client

    return make


@pytest.fixture
def check(client_for, developer):
    """POST /api/v1/checks as `developer` (or `as_org`); returns (response, parsed body)."""
    clients: dict[int, object] = {}

    def run(items, *, purpose="train-genai", as_org=None, expect=200, **terms):
        org = as_org or developer
        if org.pk not in clients:
            clients[org.pk] = client_for(org, ["checks"])
        response = clients[org.pk].post("/api/v1/checks", {"purpose": purpose, "items": items, **terms}, format="json")
        assert response.status_code == expect, response.content[:2000]
        return response, json.loads(response.content)

    return run


@pytest.fixture
def make_work(studio):
    counter = iter(range(1, 100_000))

    def make(org=None, *, parent=None, kind="image", **refs):
        n = next(counter)
        return do_work_register(acting=OPERATOR, organization=org or studio, external_ref=f"W-{n}", title=f"Work {n}",
                             kind=kind, parent=parent, **refs)

    return make


# Who may call an endpoint: every API test runs its endpoint once per row.
CALLERS = (
    "anonymous", "other_org", "other_org_key", "viewer", "manager", "owner",
    "key", "key_without_scope", "revoked_key",
)


@pytest.fixture
def caller(make_org, make_user):
    """An APIClient acting as `who` towards `org`, for the access matrix of every endpoint.

    People sign in (session); keys send `Authorization: Bearer`. `key` holds exactly `scope`,
    `key_without_scope` every scope but it, `revoked_key` held it until revoked. `other_org` is
    the owner, and `other_org_key` a key with every scope, of another organisation of the same kind.
    An endpoint that takes any of several scopes passes them all: `key` holds the first.
    """

    def make(who: str, org: Organization, *, scope: str | tuple[str, ...] | None) -> APIClient:
        accepted = (scope,) if isinstance(scope, str) else scope or ("checks",)
        client = APIClient()
        if who == "anonymous":
            return client
        if who in ("owner", "other_org"):
            client.force_login(owner_of(org if who == "owner" else make_org(org.kind)))
            return client
        if who in ("viewer", "manager"):
            user = make_user()
            do_membership_add(acting=OPERATOR, organization=org, user=user, role=who)
            client.force_login(user)
            return client
        key_org = make_org(org.kind) if who == "other_org_key" else org
        scopes = {
            "key": [accepted[0]], "revoked_key": [accepted[0]],
            "other_org_key": list(API_KEY_SCOPES),
            "key_without_scope": [s for s in API_KEY_SCOPES if s not in accepted or scope is None],
        }[who]
        api_key, raw = do_api_key_create(acting=OPERATOR, organization=key_org, scopes=scopes)
        if who == "revoked_key":
            do_api_key_revoke(acting=OPERATOR, api_key=api_key)
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
        return client

    return make


def assert_error(response, status: int, code: str | None = None) -> dict:
    """The one error shape, with the expected status (and code)."""
    assert response.status_code == status, response.content[:500]
    body = json.loads(response.content)
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message", "fields"}, body
    assert body["error"]["message"]
    if code is not None:
        assert body["error"]["code"] == code, body
    return body["error"]
