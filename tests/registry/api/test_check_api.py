"""The check API around the decision: auth, quotas, receipts, files, the error shape, the schema."""

from __future__ import annotations

import base64
import io
import json
import uuid
import zlib

import pytest
from django.core.cache import cache
from jwcrypto import jwk, jws
from rest_framework.test import APIClient

from registry.models import ApiKey, Check, WorkAccess
from registry.services.api_keys import do_api_key_create, do_api_key_revoke
from registry.services.grants import do_grant_issue
from registry.services.hosts import do_host_confirm
from registry.services.works import do_content_file_add, do_work_register
from tests.conftest import OPERATOR
from tests.factories import make_image_bytes

pytestmark = pytest.mark.django_db

ITEMS = [{"sha256": "a" * 64}]


def verify_independently(body: bytes, signature: str, jwks: dict) -> dict:
    """Verify a detached JWS with jwcrypto (not the library that signed it)."""
    protected, empty, sig = signature.split(".")
    assert empty == ""
    payload = base64.urlsafe_b64encode(body).rstrip(b"=").decode()
    token = jws.JWS()
    token.deserialize(f"{protected}.{payload}.{sig}")
    header = json.loads(base64.urlsafe_b64decode(protected + "=" * (-len(protected) % 4)))
    key = jwk.JWKSet.from_json(json.dumps(jwks)).get_key(header["kid"])
    token.verify(key, alg="EdDSA")
    return header


def test_anonymous_is_401_with_the_error_shape(api_client):
    response = api_client.post("/api/v1/checks", {"purpose": "tdm", "items": ITEMS}, format="json")
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "not_authenticated"
    assert response["WWW-Authenticate"].startswith("Bearer")


def test_unknown_and_revoked_keys_are_401(api_client, developer):
    api_client.credentials(HTTP_AUTHORIZATION="Bearer kyoka_nope_nope")
    assert api_client.post("/api/v1/checks", {"purpose": "tdm", "items": ITEMS}, format="json").status_code == 401
    key, raw = do_api_key_create(acting=OPERATOR, organization=developer, scopes=["checks"])
    do_api_key_revoke(acting=OPERATOR, api_key=key)
    api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    response = api_client.post("/api/v1/checks", {"purpose": "tdm", "items": ITEMS}, format="json")
    assert response.status_code == 401 and "revoked" in response.json()["error"]["message"]


def test_key_without_checks_scope_is_403(client_for, studio):
    client = client_for(studio, ["works:read"])
    response = client.post("/api/v1/checks", {"purpose": "tdm", "items": ITEMS}, format="json")
    assert response.status_code == 403 and response.json()["error"]["code"] == "forbidden"


def test_malformed_json_is_400(client_for, developer):
    client = client_for(developer, ["checks"])
    response = client.generic("POST", "/api/v1/checks", b"{not json", content_type="application/json")
    assert response.status_code == 400 and "error" in response.json()


def test_quota_is_enforced_atomically_with_retry_after(client_for, developer):
    client = client_for(developer, ["checks"])
    ApiKey.objects.filter(organization=developer).update(quota_per_minute=3)
    cache.clear()
    statuses = [client.post("/api/v1/checks", {"purpose": "tdm", "items": ITEMS}, format="json") for _ in range(4)]
    assert [r.status_code for r in statuses] == [200, 200, 200, 429]
    assert int(statuses[-1]["Retry-After"]) >= 1
    assert statuses[-1].json()["error"]["code"] == "quota_exceeded"


def test_last_used_is_recorded_without_a_write_per_request(client_for, developer):
    client = client_for(developer, ["checks"])
    cache.clear()
    client.post("/api/v1/checks", {"purpose": "tdm", "items": ITEMS}, format="json")
    first = ApiKey.objects.get(organization=developer).last_used_at
    assert first is not None
    client.post("/api/v1/checks", {"purpose": "tdm", "items": ITEMS}, format="json")
    assert ApiKey.objects.get(organization=developer).last_used_at == first


def test_a_key_this_process_just_touched_costs_no_cache_round_trip_until_the_resolution_passes(
    client_for, developer, monkeypatch
):
    from registry.api import authentication

    client = client_for(developer, ["checks"])
    key = ApiKey.objects.get(organization=developer)
    clock = [1_000.0]
    monkeypatch.setattr(authentication.time, "monotonic", lambda: clock[0])
    cache.clear()
    client.post("/api/v1/checks", {"purpose": "tdm", "items": ITEMS}, format="json")
    assert cache.get(f"apikey-touch:{key.pk}") == 1
    cache.clear()
    ApiKey.objects.filter(pk=key.pk).update(last_used_at=None)
    client.post("/api/v1/checks", {"purpose": "tdm", "items": ITEMS}, format="json")
    assert cache.get(f"apikey-touch:{key.pk}") is None  # remembered in process: Redis was not asked
    assert ApiKey.objects.get(pk=key.pk).last_used_at is None
    clock[0] += authentication.LAST_USED_RESOLUTION_SECONDS
    client.post("/api/v1/checks", {"purpose": "tdm", "items": ITEMS}, format="json")
    assert ApiKey.objects.get(pk=key.pk).last_used_at is not None  # a minute on, the use is recorded again


def test_receipt_verifies_with_an_independent_jose_library_and_one_changed_byte_fails(check, api_client):
    response, _ = check([{"sha256": "b" * 64}], purpose="search")
    signature = response["Receipt-Signature"]
    jwks = api_client.get("/.well-known/jwks.json").json()
    header = verify_independently(response.content, signature, jwks)
    assert header["alg"] == "EdDSA" and header["kid"]
    tampered = bytearray(response.content)
    tampered[tampered.index(b"unregistered")] = ord("U")
    with pytest.raises(jws.InvalidJWSSignature):
        verify_independently(bytes(tampered), signature, jwks)


def test_the_receipt_body_is_compact_utf8_json_in_the_order_it_is_documented(check, studio):
    do_work_register(acting=OPERATOR, organization=studio, external_ref="J-1", title="千と千尋 \u2028 \"cel\"",
                     identifiers=["isbn:978-4-04-102622-9"])
    response, body = check([{"ref": "r\u00e9f/1", "identifier": "isbn:978-4-04-102622-9"}, {"sha256": "d" * 64}])
    assert response.content == json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()
    assert list(body) == ["check_id", "checked_at", "purpose", "territory", "context", "requester", "registry",
                          "summary", "results", "grants"]
    assert body["results"][0]["matches"][0]["title"] == "千と千尋 \u2028 \"cel\""


def test_receipt_verify_endpoint(check, api_client):
    response, _ = check([{"sha256": "c" * 64}])
    signature = response["Receipt-Signature"]
    ok = api_client.post("/api/v1/receipts/verify",
                         {"body_base64": base64.b64encode(response.content).decode(), "signature": signature},
                         format="json").json()
    assert ok["valid"] is True and ok["check_id"] == json.loads(response.content)["check_id"]
    text = api_client.post("/api/v1/receipts/verify", {"body": response.content.decode(), "signature": signature},
                           format="json").json()
    assert text["valid"] is True
    bad = api_client.post("/api/v1/receipts/verify",
                          {"body": response.content.decode().replace("unregistered", "permitted", 1),
                           "signature": signature},
                          format="json").json()
    assert bad["valid"] is False and bad["error"]
    missing = api_client.post("/api/v1/receipts/verify", {"body": "x"}, format="json")
    assert missing.status_code == 400 and "signature" in missing.json()["error"]["fields"]


def test_a_check_is_readable_again_only_by_its_requester(check, client_for, developer, make_org):
    response, body = check(ITEMS)
    mine = client_for(developer, ["checks"]).get(f"/api/v1/checks/{body['check_id']}")
    assert mine.status_code == 200 and mine.content == response.content
    other = client_for(make_org("ai_developer"), ["checks"]).get(f"/api/v1/checks/{body['check_id']}")
    assert other.status_code == 404


def test_a_receipt_is_kept_compressed_and_read_back_byte_for_byte_whichever_format_its_row_holds(
    check, client_for, developer,
):
    response, body = check(ITEMS)
    row = Check.objects.get(pk=body["check_id"])
    stored = bytes(row.body)
    assert stored[:4] == b"\x28\xb5\x2f\xfd" and len(stored) < len(response.content)  # a zstd frame
    # Rows written before zstd hold zlib streams: they read back exactly too.
    Check.objects.filter(pk=row.pk).update(body=zlib.compress(response.content, 1))
    again = client_for(developer, ["checks"]).get(f"/api/v1/checks/{body['check_id']}")
    assert again.content == response.content and again["Receipt-Signature"] == response["Receipt-Signature"]


def test_every_check_is_recorded_with_the_works_it_touched(check, make_work, studio, developer):
    do_host_confirm(acting=OPERATOR, organization=studio, host="aozora.example")
    work = make_work(urls=["https://aozora.example/a.png"])
    do_grant_issue(acting=OPERATOR, grantor=studio, scope="catalog", licensee=developer, purposes=["all"])
    _, body = check([{"url": "https://aozora.example/a.png"}, {"sha256": "e" * 64}], purpose="search")
    record = Check.objects.get(pk=body["check_id"])
    assert (record.item_count, record.permitted_count, record.unregistered_count) == (2, 1, 1)
    access = WorkAccess.objects.get(check_record=record)
    assert (access.work_id, access.owner_id, access.requester_id, access.decision) == (
        work.pk, studio.pk, developer.pk, "permitted")


def test_the_access_records_go_with_the_work_or_the_check_they_name(check, make_work, studio, developer):
    # The table keeps no foreign-key constraints (one statement per check writes it): deleting
    # still deletes what names the deleted row.
    isbn, isan = "isbn:978-4-04-102622-9", "isan:0000-0000-3A8D-0000-Z-0000-0000-6"
    gone, kept = make_work(identifiers=[isbn]), make_work(identifiers=[isan])
    _, first = check([{"identifier": isbn}, {"identifier": isan}])
    _, second = check([{"identifier": isan}])
    assert WorkAccess.objects.filter(owner=studio).count() == 3
    gone.delete()
    assert set(WorkAccess.objects.values_list("work_id", flat=True)) == {kept.pk}
    Check.objects.filter(pk=first["check_id"]).delete()
    assert list(WorkAccess.objects.values_list("check_record_id", flat=True)) == [uuid.UUID(second["check_id"])]


def test_files_endpoint_hashes_on_the_server_and_lists_near_matches_as_similar_only(
    client_for, make_work, studio, developer,
):
    work = make_work()
    original = make_image_bytes(3, size=(400, 300))
    do_content_file_add(acting=OPERATOR, work=work, fileobj=io.BytesIO(original), filename="cel.png")
    do_grant_issue(acting=OPERATOR, grantor=studio, scope="work", work=work, licensee=developer,
        purposes=["train-genai"])
    from PIL import Image

    smaller = io.BytesIO()
    Image.open(io.BytesIO(original)).convert("RGB").resize((320, 240)).save(smaller, format="JPEG", quality=60)
    recompressed = smaller.getvalue()
    client = client_for(developer, ["checks"])
    response = client.post("/api/v1/checks/files", {
        "purpose": "train-genai",
        "files": [io.BytesIO(original), io.BytesIO(recompressed), io.BytesIO(make_image_bytes(99)),
                  io.BytesIO(b"plain text pretending")],
    }, format="multipart")
    assert response.status_code == 200, response.content
    exact, near, other, lie = response.json()["results"]
    assert exact["decision"] == "permitted" and exact["matches"][0]["methods"] == ["sha256"]
    assert "similar" not in exact  # the exact work is not listed again as similar to itself
    # A resemblance is never consent to this content: the re-encoded copy is only similar.
    assert (near["decision"], near["reason"], near["permitted"]) == ("not_permitted", "similar_only", False)
    assert near["similar"][0]["work"] == str(work.pk) and "matches" not in near
    assert other["decision"] == "unregistered"
    assert lie["decision"] in ("unregistered", "invalid")
    assert response["Receipt-Signature"]


def test_files_endpoint_refuses_a_lying_name_item_by_item(client_for, developer):
    client = client_for(developer, ["checks"])
    text = io.BytesIO(b"this is text, not a jpeg")
    text.name = "cel.jpg"
    response = client.post("/api/v1/checks/files", {"purpose": "tdm", "files": [text]}, format="multipart")
    result = response.json()["results"][0]
    assert (result["decision"], result["ref"]) == ("invalid", "cel.jpg") and "jpg" in result["error"].lower()


def test_purposes_and_jwks_are_public(api_client):
    tree = api_client.get("/api/v1/purposes").json()
    assert tree["id"] == "all" and {c["id"] for c in tree["children"]} == {"tdm", "ai-use", "search"}
    assert api_client.get("/.well-known/jwks.json").json()["keys"][0]["alg"] == "EdDSA"


def test_openapi_schema_is_valid_and_docs_render(api_client):
    from drf_spectacular.validation import validate_schema

    response = api_client.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert response.status_code == 200
    schema = json.loads(response.content)
    validate_schema(schema)
    assert "/api/v1/checks" in schema["paths"] and "/api/v1/receipts/verify" in schema["paths"]
    docs = api_client.get("/api/docs/")
    assert docs.status_code == 200 and b"swagger" in docs.content.lower()


def test_session_users_check_for_their_organisation(developer):
    from tests.conftest import owner_of

    client = APIClient()
    client.force_login(owner_of(developer))
    response = client.post("/api/v1/checks", {"purpose": "tdm", "items": ITEMS}, format="json")
    assert response.status_code == 200 and json.loads(response.content)["requester"] == developer.slug


def test_a_check_is_counted_in_the_metrics_by_decision_and_purpose(check):
    from prometheus_client import REGISTRY

    def sample(name, **labels):
        return REGISTRY.get_sample_value(name, labels) or 0

    before = (sample("kyoka_check_requests_total", purpose="tdm"),
              sample("kyoka_check_items_total", decision="unregistered", purpose="tdm"))
    check([{"sha256": "c" * 64}, {"sha256": "d" * 64}], purpose="tdm")
    after = (sample("kyoka_check_requests_total", purpose="tdm"),
             sample("kyoka_check_items_total", decision="unregistered", purpose="tdm"))
    assert (after[0] - before[0], after[1] - before[1]) == (1, 2)
