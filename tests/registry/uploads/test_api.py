"""The uploads API: who may do what, the answers' shapes, the CSV error report."""

from __future__ import annotations

import csv
import io

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from rest_framework.test import APIClient

from registry.models import BulkUpload, Membership, Work
from tests.registry.uploads.conftest import catalog_rows, csv_manifest, run_to_end, zip_archive

pytestmark = pytest.mark.django_db


def post_upload(client: APIClient, manifest: bytes, archive: bytes | None = None):
    data = {"manifest": SimpleUploadedFile("catalog.csv", manifest, content_type="text/csv")}
    if archive is not None:
        data["archive"] = SimpleUploadedFile("files.zip", archive, content_type="application/zip")
    return client.post("/api/v1/uploads", data, format="multipart")


def session_client(member, org, role) -> APIClient:
    client = APIClient()
    client.force_authenticate(member(org, role).user)
    return client


def test_upload_then_follow_its_progress(client_for, studio):
    client = client_for(studio, ["uploads"])
    response = post_upload(client, csv_manifest(catalog_rows(3)), zip_archive({"a.png": b"unused"}))
    assert response.status_code == 202, response.content
    body = response.json()
    assert response["Location"] == f"/api/v1/uploads/{body['id']}"
    assert (body["status"], body["manifest_name"], body["has_archive"], body["total_rows"]) == (
        "pending", "catalog.csv", True, None)
    run_to_end(BulkUpload.objects.get(pk=body["id"]))
    detail = client.get(f"/api/v1/uploads/{body['id']}").json()
    assert {key: detail[key] for key in ("status", "total_rows", "processed_rows", "created", "updated", "failed")} == {
        "status": "done", "total_rows": 3, "processed_rows": 3, "created": 3, "updated": 0, "failed": 0,
    }
    assert detail["errors_url"] == f"/api/v1/uploads/{body['id']}/errors"
    listed = client.get("/api/v1/uploads").json()
    assert [item["id"] for item in listed["results"]] == [body["id"]]


def test_a_manifest_is_required(client_for, studio):
    response = client_for(studio, ["uploads"]).post("/api/v1/uploads", {}, format="multipart")
    assert response.status_code == 400
    assert response.json()["error"]["fields"]["manifest"]


def test_the_error_report_is_csv(client_for, studio):
    client = client_for(studio, ["uploads"])
    upload_id = post_upload(client, csv_manifest([
        {"external_ref": "OK", "title": "fine"}, {"external_ref": "=cmd|' /C calc'!A0", "title": ""},
    ])).json()["id"]
    run_to_end(BulkUpload.objects.get(pk=upload_id))
    response = client.get(f"/api/v1/uploads/{upload_id}/errors", HTTP_ACCEPT="text/csv")
    assert response.status_code == 200
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert "attachment" in response["Content-Disposition"]
    text = b"".join(response.streaming_content).decode("utf-8")
    rows = list(csv.reader(io.StringIO(text.removeprefix("\ufeff"))))
    assert rows == [["row", "external_ref", "field", "message"], ["2", "'=cmd|' /C calc'!A0", "title",
                                                                  "This field is required."]]


def test_viewers_read_but_cannot_upload_or_cancel(member, studio, client_for):
    upload_id = post_upload(client_for(studio, ["uploads"]), csv_manifest(catalog_rows(1))).json()["id"]
    viewer = session_client(member, studio, Membership.Role.VIEWER)
    assert viewer.get(f"/api/v1/uploads/{upload_id}").status_code == 200
    assert viewer.get(f"/api/v1/uploads/{upload_id}/errors").status_code == 200
    assert post_upload(viewer, csv_manifest(catalog_rows(1))).status_code == 403
    assert viewer.post(f"/api/v1/uploads/{upload_id}/cancel").status_code == 403
    manager = session_client(member, studio, Membership.Role.MANAGER)
    assert post_upload(manager, csv_manifest(catalog_rows(1))).status_code == 202
    cancelled = manager.post(f"/api/v1/uploads/{upload_id}/cancel")
    assert (cancelled.status_code, cancelled.json()["status"]) == (200, "cancelled")


def test_another_organisations_upload_is_not_found(client_for, studio, make_org):
    upload_id = post_upload(client_for(studio, ["uploads"]), csv_manifest(catalog_rows(1))).json()["id"]
    other = client_for(make_org(), ["uploads"])
    for method, path in (("get", ""), ("get", "/errors"), ("post", "/cancel")):
        response = getattr(other, method)(f"/api/v1/uploads/{upload_id}{path}")
        assert response.status_code == 404, (path, response.content)
        assert response.json()["error"]["code"] == "not_found"
    assert other.get("/api/v1/uploads").json()["results"] == []


def test_a_key_needs_the_uploads_scope(client_for, studio):
    client = client_for(studio, ["works:write", "works:read"])
    assert post_upload(client, csv_manifest(catalog_rows(1))).status_code == 403
    assert client.get("/api/v1/uploads").status_code == 403


def test_an_ai_developer_cannot_upload_a_catalog(client_for, developer):
    assert post_upload(client_for(developer, ["uploads"]), csv_manifest(catalog_rows(1))).status_code == 403


def test_cancelling_a_finished_upload_is_a_conflict(client_for, studio):
    client = client_for(studio, ["uploads"])
    upload_id = post_upload(client, csv_manifest(catalog_rows(1))).json()["id"]
    run_to_end(BulkUpload.objects.get(pk=upload_id))
    response = client.post(f"/api/v1/uploads/{upload_id}/cancel")
    assert response.status_code == 409 and response.json()["error"]["code"] == "invalid_transition"
    assert Work.objects.filter(owner=studio).count() == 1
