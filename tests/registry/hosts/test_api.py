"""GET/POST /api/v1/hosts, GET/DELETE /api/v1/hosts/{host}, POST /api/v1/hosts/{host}/verify."""

from __future__ import annotations

import json

import pytest
from rest_framework.test import APIClient

from registry.models import AuditEvent, VerifiedHost
from registry.services.hosts import do_host_claim, do_host_confirm
from registry.tasks import host_verify
from tests.conftest import OPERATOR, owner_of
from tests.registry.api.conftest import CALLERS, assert_error

pytestmark = pytest.mark.django_db

READ = {
    "anonymous": 401, "other_org": 404, "other_org_key": 404, "viewer": 200, "manager": 200,
    "owner": 200, "key": 200, "key_without_scope": 403, "revoked_key": 401,
}


def write(ok: int) -> dict[str, int]:
    return {**READ, "viewer": 403, "manager": ok, "owner": ok, "key": ok}


def body(response) -> dict:
    return json.loads(response.content)


@pytest.fixture
def queued(monkeypatch) -> list[dict]:
    """Lookups handed to the broker (a worker would run them; see test_worker.py)."""
    sent: list[dict] = []
    monkeypatch.setattr(host_verify, "delay", lambda **kwargs: sent.append(kwargs))
    return sent


@pytest.mark.parametrize("who", CALLERS)
def test_claim_a_host(caller, studio, who):
    response = caller(who, studio, scope="works:write").post("/api/v1/hosts", {"host": "CDN.Studio.example"},
                                                            format="json")
    # Another organisation's member claims for their own organisation, which is allowed.
    expected = {**write(201), "other_org": 201, "other_org_key": 201}[who]
    if expected != 201:
        assert_error(response, expected)
        assert not VerifiedHost.objects.exists()
        return
    data = body(response)
    claim = VerifiedHost.objects.get()
    assert claim.organization_id == (studio.pk if not who.startswith("other_org") else claim.organization_id)
    assert (data["host"], data["token"], data["status"], data["verified"], data["method"]) == (
        "cdn.studio.example", claim.token, "unverified", False, "")
    assert data["instructions"]["dns"]["name"] == "cdn.studio.example"
    assert data["instructions"]["dns"]["value"] == f"kyoka-verification={claim.token}"
    assert data["instructions"]["dns"]["covers_subdomains"] is True
    assert data["instructions"]["http"] == {
        "url": "https://cdn.studio.example/.well-known/kyoka-verification.txt", "content": claim.token,
        "covers_subdomains": False, "text": data["instructions"]["http"]["text"]}
    assert claim.token in data["instructions"]["http"]["text"]
    assert data["last_error"] == []


def test_claiming_again_answers_200_with_the_same_token(client_for, studio):
    client = client_for(studio, ["works:write"])
    first = client.post("/api/v1/hosts", {"host": "studio.example"}, format="json")
    again = client.post("/api/v1/hosts", {"host": "https://STUDIO.example/"}, format="json")
    assert (first.status_code, again.status_code) == (201, 200)
    assert body(first)["token"] == body(again)["token"]
    assert AuditEvent.objects.filter(action="host.claimed").count() == 1


@pytest.mark.parametrize(("host", "phrase"), [
    ("com", "public suffix"), ("github.io", "public suffix"), ("co.jp", "public suffix"),
    ("127.0.0.1", "IP address"), ("[::1]", "IP address"), ("cdn.example.com/path", "host name alone"),
    ("exa mple.com", "not a valid host name"),
])
def test_a_host_no_one_may_claim_is_a_400_on_the_host_field(client_for, studio, host, phrase):
    error = assert_error(client_for(studio, ["works:write"]).post("/api/v1/hosts", {"host": host}, format="json"),
                         400, "invalid")
    assert phrase in error["message"] and list(error["fields"]) == ["host"]
    assert not VerifiedHost.objects.exists()


def test_an_oversize_host_is_refused_before_it_is_read(client_for, studio):
    error = assert_error(client_for(studio, ["works:write"]).post(
        "/api/v1/hosts", {"host": "a" * 10_000 + ".example.com"}, format="json"), 400, "invalid")
    assert list(error["fields"]) == ["host"]


def test_an_ai_developer_cannot_claim_hosts(client_for, developer):
    assert_error(client_for(developer, ["works:write"]).post("/api/v1/hosts", {"host": "acme.example"},
                                                             format="json"), 403)


@pytest.mark.parametrize("who", CALLERS)
def test_list_your_hosts(caller, studio, make_org, who):
    do_host_claim(acting=OPERATOR, organization=studio, host="studio.example")
    do_host_claim(acting=OPERATOR, organization=make_org(), host="elsewhere.example")
    response = caller(who, studio, scope="works:read").get("/api/v1/hosts")
    expected = {**READ, "other_org": 200, "other_org_key": 200}[who]
    if expected != 200:
        assert_error(response, expected)
        return
    hosts = [h["host"] for h in body(response)["results"]]
    assert hosts == ([] if who.startswith("other_org") else ["studio.example"])


def test_instructions_come_in_the_request_s_language(client_for, studio):
    do_host_claim(acting=OPERATOR, organization=studio, host="studio.example")
    client = client_for(studio, ["works:read"])
    english = body(client.get("/api/v1/hosts", HTTP_ACCEPT_LANGUAGE="en"))["results"][0]["instructions"]
    japanese = body(client.get("/api/v1/hosts", HTTP_ACCEPT_LANGUAGE="ja"))["results"][0]["instructions"]
    assert "TXT record" in english["dns"]["text"]
    assert japanese["dns"]["text"] != english["dns"]["text"] and "TXT" in japanese["dns"]["text"]
    assert japanese["dns"]["value"] == english["dns"]["value"]


@pytest.mark.parametrize("who", CALLERS)
def test_ask_kyoka_to_look(caller, studio, queued, who, django_capture_on_commit_callbacks):
    claim = do_host_claim(acting=OPERATOR, organization=studio, host="studio.example")
    with django_capture_on_commit_callbacks(execute=True):
        response = caller(who, studio, scope="works:write").post("/api/v1/hosts/studio.example/verify")
    expected = write(202)[who]
    if expected != 202:
        assert_error(response, expected)
        assert queued == []
        return
    data = body(response)
    assert (data["host"], data["status"], data["verified"]) == ("studio.example", "checking", False)
    assert [q["host_id"] for q in queued] == [claim.pk]


def test_another_organisation_cannot_verify_your_claim_even_by_name(client_for, studio, make_org, queued):
    do_host_claim(acting=OPERATOR, organization=studio, host="studio.example")
    assert_error(client_for(make_org(), ["works:write"]).post("/api/v1/hosts/studio.example/verify"), 404)
    assert queued == []


def test_an_unclaimed_host_cannot_be_verified(client_for, studio, queued):
    assert_error(client_for(studio, ["works:write"]).post("/api/v1/hosts/studio.example/verify"), 404)
    assert_error(client_for(studio, ["works:write"]).post("/api/v1/hosts/com/verify"), 404)


def test_a_proven_host_reads_as_verified(client_for, studio):
    do_host_confirm(acting=OPERATOR, organization=studio, host="studio.example")
    data = body(client_for(studio, ["works:read"]).get("/api/v1/hosts/Studio.Example"))
    assert (data["status"], data["verified"], data["method"], data["covers_subdomains"]) == (
        "verified", True, "reviewer", True)


def test_a_failed_lookup_says_why_in_the_request_s_language(client_for, studio):
    claim = do_host_claim(acting=OPERATOR, organization=studio, host="studio.example")
    VerifiedHost.objects.filter(pk=claim.pk).update(
        last_error='[{"method":"dns","code":"no_record","detail":""},'
                   '{"method":"http","code":"forbidden_address","detail":"10.0.0.8"}]')
    data = body(client_for(studio, ["works:read"]).get("/api/v1/hosts/studio.example"))
    assert data["status"] == "failed"
    assert [(p["method"], p["code"], p["detail"]) for p in data["last_error"]] == [
        ("dns", "no_record", ""), ("http", "forbidden_address", "10.0.0.8")]
    assert "10.0.0.8" in data["last_error"][1]["message"]


@pytest.mark.parametrize("who", CALLERS)
def test_withdraw_a_claim(caller, studio, who):
    do_host_claim(acting=OPERATOR, organization=studio, host="studio.example")
    response = caller(who, studio, scope="works:write").delete("/api/v1/hosts/studio.example")
    expected = write(204)[who]
    if expected != 204:
        assert_error(response, expected)
        assert VerifiedHost.objects.filter(host="studio.example").exists()
        return
    assert response.status_code == 204
    assert not VerifiedHost.objects.exists()
    assert AuditEvent.objects.filter(action="host.removed").count() == 1


def test_the_schema_documents_the_host_endpoints():
    client = APIClient()
    schema = client.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert schema.status_code == 200
    paths = json.loads(schema.content)["paths"]
    assert {"get", "post"} <= set(paths["/api/v1/hosts"])
    assert "post" in paths["/api/v1/hosts/{host}/verify"]
    assert "202" in paths["/api/v1/hosts/{host}/verify"]["post"]["responses"]
    assert "delete" in paths["/api/v1/hosts/{host}"]


def test_members_of_several_organisations_name_one(studio, make_org):
    other = make_org(owner=owner_of(studio))
    client = APIClient()
    client.force_login(owner_of(studio))
    assert_error(client.post("/api/v1/hosts", {"host": "studio.example"}, format="json"), 400)
    response = client.post("/api/v1/hosts", {"host": "studio.example"}, format="json",
                           HTTP_X_KYOKA_ORGANIZATION=other.slug)
    assert response.status_code == 201 and VerifiedHost.objects.get().organization == other
