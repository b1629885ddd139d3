"""The console's answers export as CSV and JSON; keys offer what the organisation can use; /verify/ explains."""

from __future__ import annotations

import csv
import io
import json
import re

import pytest
from django.urls import reverse

pytestmark = pytest.mark.django_db

COMMA_URL = "https://cdn.example.com/img/w_400,h_300/x.png"


def run_check(developer_client, items: str) -> str:
    page = developer_client.post(reverse("web:console"), {
        "purpose": "train-genai", "context": "commercial", "items": items}).content.decode()
    return re.search(r"/developer/checks/([0-9a-f-]+)/receipt\.body", page).group(1)


def test_results_export_as_csv_and_json(developer_client):
    check_id = run_check(developer_client, f"{COMMA_URL}\n=cmd|calc\n" + "0" * 64)
    exported = developer_client.get(reverse("web:check_export", args=[check_id, "csv"]))
    assert exported["Content-Disposition"].endswith(f'kyoka-check-{check_id}.csv"')
    rows = list(csv.DictReader(io.StringIO(exported.content.decode("utf-8-sig"))))
    assert [r["decision"] for r in rows] == ["unregistered", "invalid", "unregistered"]
    assert rows[0]["ref"] == COMMA_URL and rows[0]["permitted"] == "False"
    assert rows[1]["ref"].startswith("'=")  # never a formula in a spreadsheet
    as_json = json.loads(developer_client.get(reverse("web:check_export", args=[check_id, "json"])).content)
    assert as_json[0]["checked"] == f"url={COMMA_URL}"
    assert developer_client.get(reverse("web:check_export", args=[check_id, "xml"])).status_code == 404


def test_another_organisations_export_is_a_404(developer_client, make_org):
    from tests.conftest import owner_of
    from tests.portal.conftest import client_for

    check_id = run_check(developer_client, "0" * 64)
    other = client_for(owner_of(make_org("ai_developer", name="Other AI")))
    assert other.get(reverse("web:check_export", args=[check_id, "csv"])).status_code == 404


def test_an_ai_developer_key_offers_only_what_a_developer_can_use(developer_client, studio_client):
    page = developer_client.get(reverse("web:api_keys")).content.decode()
    offered = set(re.findall(r'name="scopes" value="([^"]+)"', page))
    assert offered == {"checks", "disputes"}
    studio_offered = set(re.findall(r'name="scopes" value="([^"]+)"',
                                    studio_client.get(reverse("web:api_keys")).content.decode()))
    assert {"works:write", "grants:write", "uploads"} <= studio_offered
    refused = developer_client.post(reverse("web:api_keys"), {"name": "x", "scopes": ["uploads"]})
    assert refused.status_code == 200 and "not one of the available choices" in refused.content.decode()


def test_verify_explains_and_names_a_pretty_printed_body(client, developer_client):
    check_id = run_check(developer_client, "0" * 64)
    body = developer_client.get(reverse("web:receipt_download", args=[check_id, "body"])).content.decode()
    signature = developer_client.get(reverse("web:receipt_download", args=[check_id, "signature"])).content.decode()
    help_page = client.get(reverse("web:receipt_verify")).content.decode()
    assert "Both parts are needed" in help_page and "who checked (the requester), when" in help_page
    pretty = json.dumps(json.loads(body), indent=2, ensure_ascii=False)
    answer = client.post(reverse("web:receipt_verify"), {"body": pretty, "signature": signature}).content.decode()
    assert "Not valid." in answer and 'id="reformatted-hint"' in answer
    tampered = client.post(reverse("web:receipt_verify"), {"body": body.replace("train-genai", "tdm"),
                                                           "signature": signature}).content.decode()
    assert "Not valid." in tampered and 'id="reformatted-hint"' not in tampered


def test_grant_end_dates_in_an_answer_read_in_the_viewers_time_zone(studio, developer, developer_client):
    from datetime import UTC, datetime

    from registry.access import Actor
    from registry.services.grants import grant_issue
    from registry.services.works import work_register
    from tests.conftest import owner_of

    actor = Actor.for_user(owner_of(studio))
    work_register(actor=actor, organization=studio, external_ref="T", title="Timed",
                  identifiers=["isbn:978-4-04-102622-9"])
    grant_issue(actor=actor, grantor=studio, scope="catalog", licensee=developer, purposes=["train-ai"],
                valid_until=datetime(2030, 1, 1, 12, 0, tzinfo=UTC))
    session = developer_client.session
    session["kyoka_time_zone"] = "Asia/Tokyo"
    session.save()
    page = developer_client.post(reverse("web:console"), {
        "purpose": "train-genai", "context": "commercial", "items": "isbn:978-4-04-102622-9"}).content.decode()
    assert 'data-decision="permitted"' in page
    assert "2030-01-01T12:00:00" not in page and "Jan. 1, 2030, 9 p.m." in page
