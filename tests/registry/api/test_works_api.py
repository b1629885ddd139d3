"""The works API: a rightsholder registers, lists, changes and withdraws its works and files."""

from __future__ import annotations

import hashlib
import io
import json

import imagehash
import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from PIL import Image

from registry.models import AuditEvent, ContentFile, Membership, Organization, Work
from registry.services.grants import do_grant_issue
from registry.services.organizations import do_membership_add
from registry.services.works import do_content_file_add, do_work_withdraw
from tests.conftest import OPERATOR
from tests.factories import make_image_bytes
from tests.registry.api.conftest import CALLERS, assert_error

pytestmark = pytest.mark.django_db

ISBN = "isbn:978-4-04-102622-9"
ISAN = "isan:0000-0000-3A8D-0000-Z-0000-0000-6"

# What each caller gets from an endpoint that reads one of the studio's works, or changes it.
READ = {
    "anonymous": 401, "other_org": 404, "other_org_key": 404, "viewer": 200, "manager": 200,
    "owner": 200, "key": 200, "key_without_scope": 403, "revoked_key": 401,
}


def write(ok: int) -> dict[str, int]:
    return {**READ, "viewer": 403, "manager": ok, "owner": ok, "key": ok}


def body(response) -> dict:
    return json.loads(response.content)


# --- the access matrix: every endpoint, every caller ---------------------------------------


@pytest.mark.parametrize("who", CALLERS)
def test_list_works_shows_only_your_own(caller, studio, make_work, who):
    work = make_work(identifiers=[ISBN])
    response = caller(who, studio, scope="works:read").get("/api/v1/works")
    expected = {**READ, "other_org": 200, "other_org_key": 200}[who]
    if expected != 200:
        assert_error(response, expected)
        return
    ids = [w["id"] for w in body(response)["results"]]
    assert ids == ([] if who.startswith("other_org") else [str(work.pk)])


@pytest.mark.parametrize("who", CALLERS)
def test_read_one_work(caller, studio, make_work, who):
    work = make_work(identifiers=[ISBN], urls=["https://studio.example/a"])
    response = caller(who, studio, scope="works:read").get(f"/api/v1/works/{work.pk}")
    if READ[who] != 200:
        assert_error(response, READ[who])
        return
    data = body(response)
    assert {k: data[k] for k in ("id", "owner", "external_ref", "title", "kind", "status", "parent")} == {
        "id": str(work.pk), "owner": studio.slug, "external_ref": work.external_ref, "title": work.title,
        "kind": "image", "status": "active", "parent": None,
    }
    assert (data["identifiers"], data["urls"], data["files"]) == (
        ["isbn:9784041026229"], ["https://studio.example/a"], []
    )


@pytest.mark.parametrize("who", CALLERS)
def test_register_a_work(caller, studio, make_work, who):
    series = make_work(kind="collection")
    response = caller(who, studio, scope="works:write").post("/api/v1/works", {
        "external_ref": "EP-1", "title": "Episode 1", "kind": "video", "parent": str(series.pk),
        "urls": ["https://studio.example/ep1"], "identifiers": [ISAN],
    }, format="json")
    expected = {**write(201), "other_org": 400, "other_org_key": 400}[who]
    if expected != 201:
        error = assert_error(response, expected)
        if expected == 400:  # another organisation cannot hang its work under this studio's series
            assert error["fields"] == {"parent": ["No such work."]}
        assert not Work.objects.filter(external_ref="EP-1").exists()
        return
    data = body(response)
    work = Work.objects.get(pk=data["id"])
    assert (work.owner, work.parent, work.title, work.kind) == (studio, series, "Episode 1", "video")
    assert data["parent"] == str(series.pk)
    assert data["identifiers"] == ["isan:000000003A8D000000000000"]
    assert data["urls"] == ["https://studio.example/ep1"]
    assert AuditEvent.objects.filter(action="work.register", object_id=data["id"]).count() == 1


@pytest.mark.parametrize("who", CALLERS)
def test_change_a_work(caller, studio, make_work, who):
    work = make_work(urls=["https://studio.example/old"])
    response = caller(who, studio, scope="works:write").patch(
        f"/api/v1/works/{work.pk}", {"title": "Renamed", "urls": ["https://studio.example/new"]}, format="json"
    )
    expected = write(200)[who]
    work.refresh_from_db()
    if expected != 200:
        assert_error(response, expected)
        assert work.title != "Renamed"
        assert list(work.urls.values_list("url", flat=True)) == ["https://studio.example/old"]
        return
    assert body(response)["title"] == work.title == "Renamed"
    assert body(response)["urls"] == ["https://studio.example/new"]


@pytest.mark.parametrize("who", CALLERS)
def test_withdraw_a_work(caller, studio, make_work, who):
    work = make_work()
    response = caller(who, studio, scope="works:write").post(
        f"/api/v1/works/{work.pk}/withdraw", {"reason": "Rights returned to the author"}, format="json"
    )
    expected = write(200)[who]
    work.refresh_from_db()
    if expected != 200:
        assert_error(response, expected)
        assert work.status == "active"
        return
    assert work.status == body(response)["status"] == "withdrawn"
    assert body(response)["withdrawn_at"] is not None
    event = AuditEvent.objects.get(action="work.withdraw", object_id=str(work.pk))
    assert event.data == {"status": {"old": "active", "new": "withdrawn"}, "reason": "Rights returned to the author"}


@pytest.mark.parametrize("who", CALLERS)
def test_attach_a_file(caller, studio, make_work, who):
    work = make_work()
    image = make_image_bytes(7)
    response = caller(who, studio, scope="works:write").post(
        f"/api/v1/works/{work.pk}/files", {"file": io.BytesIO(image)}, format="multipart"
    )
    expected = write(201)[who]
    if expected != 201:
        assert_error(response, expected)
        assert not ContentFile.objects.exists()
        return
    data = body(response)
    assert data["sha256"] == hashlib.sha256(image).hexdigest()
    assert (data["media_type"], data["size"], data["width"], data["height"]) == ("image/png", len(image), 320, 240)
    assert work.files.get().sha256 == data["sha256"]


# --- behaviour --------------------------------------------------------------------------------


def test_anonymous_is_told_how_to_authenticate(api_client):
    response = api_client.get("/api/v1/works")
    error = assert_error(response, 401, "not_authenticated")
    assert error["fields"] == {}
    assert response["WWW-Authenticate"] == 'Bearer realm="kyoka"'


def test_a_revoked_key_is_refused_with_its_reason(caller, studio):
    response = caller("revoked_key", studio, scope="works:read").get("/api/v1/works")
    assert assert_error(response, 401, "authentication_failed")["message"] == "This API key has been revoked."


def test_a_key_without_the_scope_is_told_which_scope_it_lacks(caller, studio):
    response = caller("key_without_scope", studio, scope="works:write").post(
        "/api/v1/works", {"external_ref": "X", "title": "X"}, format="json"
    )
    assert "works:write" in assert_error(response, 403, "forbidden")["message"]


def test_registered_references_come_back_normalised(client_for, studio):
    response = client_for(studio, ["works:write"]).post("/api/v1/works", {
        "external_ref": " EP-2 ", "title": "Episode 2",
        "urls": ["HTTPS://Studio.Example:443/a/../ep%7e2#frag", "https://cdn.studio.example/ep2/*.png$"],
        "identifiers": [ISBN, "doi:10.1000/XYZ"],
    }, format="json")
    assert response.status_code == 201, response.content
    data = body(response)
    assert data["external_ref"] == "EP-2" and data["kind"] == "other"
    assert data["urls"] == ["https://cdn.studio.example/ep2/*.png$", "https://studio.example/ep~2"]
    assert data["identifiers"] == ["doi:10.1000/xyz", "isbn:9784041026229"]


def test_bad_references_are_all_reported_and_nothing_is_registered(client_for, studio):
    response = client_for(studio, ["works:write"]).post("/api/v1/works", {
        "external_ref": "EP-3", "title": "Episode 3", "urls": ["not a url"],
        "identifiers": ["isbn:978-4-04-102622-3", "nonsense"],
    }, format="json")
    error = assert_error(response, 400, "invalid")
    assert set(error["fields"]) == {"urls", "identifiers"} and len(error["fields"]["identifiers"]) == 2
    assert not Work.objects.exists()


@pytest.mark.parametrize("payload,field", [
    ({"title": "No ref"}, "external_ref"),
    ({"external_ref": "X"}, "title"),
    ({"external_ref": "X", "title": "X", "kind": "sculpture"}, "kind"),
    ({"external_ref": "X", "title": "X", "year": 0}, "year"),
    ({"external_ref": "X", "title": "X", "parent": "not-a-uuid"}, "parent"),
    ({"external_ref": "X", "title": "X", "urls": "https://one.example/"}, "urls"),
])
def test_malformed_registrations_name_the_field(client_for, studio, payload, field):
    response = client_for(studio, ["works:write"]).post("/api/v1/works", payload, format="json")
    assert field in assert_error(response, 400, "invalid")["fields"]


def test_the_same_external_ref_twice_is_a_conflict(client_for, studio, make_work):
    work = make_work()
    response = client_for(studio, ["works:write"]).post(
        "/api/v1/works", {"external_ref": work.external_ref, "title": "Again"}, format="json"
    )
    assert assert_error(response, 409, "conflict")["fields"] == {"external_ref": ["Already registered."]}


def test_list_filters(client_for, studio, make_work):
    image = make_work(kind="image")
    video = make_work(kind="video")
    withdrawn = make_work(kind="video")
    do_work_withdraw(acting=OPERATOR, work=withdrawn)
    child = make_work(parent=video)
    client = client_for(studio, ["works:read"])

    def listed(query: str) -> set[str]:
        response = client.get(f"/api/v1/works?{query}")
        assert response.status_code == 200, response.content
        return {w["external_ref"] for w in body(response)["results"]}

    assert listed("kind=video") == {video.external_ref, withdrawn.external_ref}
    assert listed("status=withdrawn") == {withdrawn.external_ref}
    assert listed("kind=video&status=active") == {video.external_ref}
    assert listed(f"external_ref={image.external_ref}") == {image.external_ref}
    assert listed(f"q={image.title.lower()}") == {image.external_ref}
    assert listed(f"parent={video.pk}") == {child.external_ref}
    assert listed("q=nothing-like-this") == set()
    error = assert_error(client.get("/api/v1/works?kind=sculpture"), 400, "invalid")
    assert list(error["fields"]) == ["kind"]


def test_list_is_cursor_paginated_newest_first(client_for, studio, make_work):
    works = [make_work() for _ in range(5)]
    client = client_for(studio, ["works:read"])
    first = body(client.get("/api/v1/works?limit=2"))
    assert [w["id"] for w in first["results"]] == [str(w.pk) for w in works[:-3:-1]]
    assert first["previous"] is None and "cursor=" in first["next"]
    second = body(client.get(first["next"]))
    assert [w["id"] for w in second["results"]] == [str(works[2].pk), str(works[1].pk)]
    third = body(client.get(second["next"]))
    assert [w["id"] for w in third["results"]] == [str(works[0].pk)] and third["next"] is None


def test_listing_costs_the_same_queries_for_a_page_of_one_or_of_twenty(client_for, studio, make_work, png_file):
    client = client_for(studio, ["works:read"])

    def queries_for_list() -> int:
        with CaptureQueriesContext(connection) as captured:
            assert client.get("/api/v1/works").status_code == 200
        return len(captured.captured_queries)

    work = make_work(urls=["https://studio.example/0"], identifiers=[ISBN])
    do_content_file_add(acting=OPERATOR, work=work, fileobj=png_file(0), filename="0.png")
    queries_for_list()  # the key's first use of the minute also records last_used_at
    one = queries_for_list()
    for n in range(1, 20):
        work = make_work(urls=[f"https://studio.example/{n}"])
        do_content_file_add(acting=OPERATOR, work=work, fileobj=png_file(n), filename=f"{n}.png")
    assert queries_for_list() == one


def test_change_moves_a_work_and_replaces_its_identifiers(client_for, studio, make_work):
    series, episode = make_work(kind="collection"), make_work(identifiers=[ISBN])
    response = client_for(studio, ["works:write"]).patch(
        f"/api/v1/works/{episode.pk}", {"parent": str(series.pk), "identifiers": [ISAN], "year": 2024}, format="json"
    )
    assert response.status_code == 200, response.content
    data = body(response)
    assert (data["parent"], data["identifiers"], data["year"]) == (
        str(series.pk), ["isan:000000003A8D000000000000"], 2024
    )
    episode.refresh_from_db()
    assert episode.lineage == f"/{series.pk.hex}/"
    moved_back = client_for(studio, ["works:write"]).patch(
        f"/api/v1/works/{episode.pk}", {"parent": None}, format="json"
    )
    assert body(moved_back)["parent"] is None


def test_change_cannot_hang_a_work_under_another_organisations_work(client_for, studio, make_org, make_work):
    other_work = make_work(make_org())
    work = make_work()
    response = client_for(studio, ["works:write"]).patch(
        f"/api/v1/works/{work.pk}", {"parent": str(other_work.pk)}, format="json"
    )
    assert assert_error(response, 400, "invalid")["fields"] == {"parent": ["No such work."]}


def test_a_withdrawn_work_answers_checks_not_permitted(client_for, studio, developer, make_work, check):
    work = make_work(identifiers=[ISBN])
    do_grant_issue(acting=OPERATOR, grantor=studio, scope="work", work=work, licensee=developer, purposes=["all"])
    assert check([{"identifier": ISBN}])[1]["results"][0]["decision"] == "permitted"
    client_for(studio, ["works:write"]).post(f"/api/v1/works/{work.pk}/withdraw", {}, format="json")
    result = check([{"identifier": ISBN}])[1]["results"][0]
    assert (result["decision"], result["matches"][0]["reason"]) == ("not_permitted", "work_withdrawn")


def test_an_image_file_answers_its_hashes(client_for, studio, make_work):
    work = make_work()
    image = make_image_bytes(11, size=(200, 150))
    response = client_for(studio, ["works:write"]).post(
        f"/api/v1/works/{work.pk}/files", {"file": io.BytesIO(image)}, format="multipart"
    )
    assert response.status_code == 201, response.content
    data = body(response)
    # Independent of the ingest code: ImageHash's own pHash of the same picture.
    assert data["phash"] == str(imagehash.phash(Image.open(io.BytesIO(image))))
    assert data["sha256"] == hashlib.sha256(image).hexdigest()
    listed = body(client_for(studio, ["works:read"]).get(f"/api/v1/works/{work.pk}"))["files"]
    assert [(f["id"], f["sha256"], f["phash"]) for f in listed] == [(data["id"], data["sha256"], data["phash"])]


def test_a_file_sent_twice_is_stored_once(client_for, studio, make_work):
    work = make_work()
    client = client_for(studio, ["works:write"])
    image = make_image_bytes(3)
    first = body(client.post(f"/api/v1/works/{work.pk}/files", {"file": io.BytesIO(image)}, format="multipart"))
    again = body(client.post(f"/api/v1/works/{work.pk}/files", {"file": io.BytesIO(image)}, format="multipart"))
    assert first["id"] == again["id"] and work.files.count() == 1


def test_a_file_that_is_not_an_image_has_no_phash(client_for, studio, make_work):
    work = make_work()
    text = io.BytesIO(b"Chapter 1\nIt was a dark and stormy night.\n")
    text.name = "chapter1.txt"
    data = body(client_for(studio, ["works:write"]).post(
        f"/api/v1/works/{work.pk}/files", {"file": text}, format="multipart"
    ))
    assert (data["media_type"], data["phash"], data["width"]) == ("text/plain", None, None)
    assert data["original_name"] == "chapter1.txt"


def test_a_file_whose_name_lies_is_refused_and_nothing_is_stored(client_for, studio, make_work):
    work = make_work()
    fake = io.BytesIO(b"Chapter 1\nIt was a dark and stormy night.\n")
    fake.name = "cel.png"
    response = client_for(studio, ["works:write"]).post(
        f"/api/v1/works/{work.pk}/files", {"file": fake}, format="multipart"
    )
    assert "file" in assert_error(response, 400, "invalid")["fields"]
    assert not work.files.exists()


def test_a_missing_file_is_a_field_error(client_for, studio, make_work):
    work = make_work()
    response = client_for(studio, ["works:write"]).post(f"/api/v1/works/{work.pk}/files", {}, format="multipart")
    assert list(assert_error(response, 400, "invalid")["fields"]) == ["file"]


def test_an_ai_developer_has_no_works_api(client_for, developer):
    response = client_for(developer, ["works:read"]).get("/api/v1/works")
    assert "rightsholder" in assert_error(response, 403, "forbidden")["message"]


def test_a_person_in_two_studios_names_the_one_they_act_for(api_client, make_org, make_work, make_user):
    first, second = make_org(), make_org()
    user = make_user()
    for org in (first, second):
        do_membership_add(acting=OPERATOR, organization=org, user=user, role=Membership.Role.VIEWER)
    work = make_work(second)
    api_client.force_login(user)
    assert_error(api_client.get("/api/v1/works"), 400, "invalid")
    response = api_client.get("/api/v1/works", HTTP_X_KYOKA_ORGANIZATION=second.slug)
    assert [w["id"] for w in body(response)["results"]] == [str(work.pk)]
    assert body(api_client.get(f"/api/v1/works?organization={first.slug}"))["results"] == []
    assert_error(api_client.get(f"/api/v1/works/{work.pk}", HTTP_X_KYOKA_ORGANIZATION=first.slug), 404)


def test_a_suspended_organisations_keys_stop_working(client_for, studio):
    client = client_for(studio, ["works:read"])
    Organization.objects.filter(pk=studio.pk).update(suspended_at="2026-01-01T00:00:00Z")
    assert_error(client.get("/api/v1/works"), 401, "authentication_failed")


def test_the_schema_documents_the_rightsholder_api(api_client):
    response = api_client.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert response.status_code == 200
    schema = json.loads(response.content)
    operations = {
        (path, method): operation["operationId"]
        for path, methods in schema["paths"].items() for method, operation in methods.items()
    }
    assert {
        ("/api/v1/works", "get"): "works_list", ("/api/v1/works", "post"): "works_create",
        ("/api/v1/works/{work_id}", "get"): "works_retrieve",
        ("/api/v1/works/{work_id}", "patch"): "works_partial_update",
        ("/api/v1/works/{work_id}/withdraw", "post"): "works_withdraw",
        ("/api/v1/works/{work_id}/files", "post"): "works_files_create",
        ("/api/v1/grants", "get"): "grants_list", ("/api/v1/grants", "post"): "grants_create",
        ("/api/v1/grants/{grant_id}", "get"): "grants_retrieve",
        ("/api/v1/grants/{grant_id}/revoke", "post"): "grants_revoke",
        ("/api/v1/permission-requests", "get"): "permission_requests_list",
        ("/api/v1/permission-requests", "post"): "permission_requests_create",
        ("/api/v1/permission-requests/{request_id}/accept", "post"): "permission_requests_accept",
        ("/api/v1/permission-requests/{request_id}/decline", "post"): "permission_requests_decline",
        ("/api/v1/activity", "get"): "activity",
        ("/api/v1/keys", "get"): "keys_list", ("/api/v1/keys", "post"): "keys_create",
        ("/api/v1/keys/{key_id}/revoke", "post"): "keys_revoke",
    }.items() <= operations.items()
    works_list = schema["paths"]["/api/v1/works"]["get"]
    assert {p["name"] for p in works_list["parameters"]} >= {"kind", "status", "q", "external_ref", "cursor"}
    create = schema["paths"]["/api/v1/works"]["post"]["requestBody"]["content"]["application/json"]
    assert create["examples"]
    assert "files" in schema["components"]["schemas"]["Work"]["properties"]


def test_errors_follow_the_clients_accept_language(client_for, studio):
    client = client_for(studio, ["works:write"])
    payload = {"external_ref": "EP-4", "title": "Episode 4", "identifiers": ["isbn:978-4-04-102622-3"]}
    response = client.post("/api/v1/works", payload, format="json", HTTP_ACCEPT_LANGUAGE="ja")
    error = assert_error(response, 400, "invalid")
    assert error["message"] == "一部の参照が正しくありません。"
    [identifier_error] = error["fields"]["identifiers"]
    assert identifier_error.startswith("'isbn:978-4-04-102622-3': isbn")
    assert "チェックディジットが一致しません" in identifier_error
    error = assert_error(client.post("/api/v1/works", payload, format="json"), 400, "invalid")
    assert error["message"] == "Some references are not valid."
    assert error["fields"]["identifiers"] == ["'isbn:978-4-04-102622-3': isbn: check digit does not match"]
