"""Web hosts in the portal: a studio claims, reads the instructions, asks Kyoka to look, withdraws;
a reviewer confirms by hand on the desk. The pages call the same services as the API."""

from __future__ import annotations

import pytest
from django.test import Client

from registry.access import Actor
from registry.models import AuditEvent, VerifiedHost
from registry.services.hosts import do_host_claim, do_host_confirm
from registry.services.organizations import do_membership_add
from registry.tasks import host_verify
from tests.conftest import OPERATOR, owner_of
from tests.portal.conftest import client_for

pytestmark = pytest.mark.django_db


@pytest.fixture
def queued(monkeypatch) -> list[dict]:
    sent: list[dict] = []
    monkeypatch.setattr(host_verify, "delay", lambda **kwargs: sent.append(kwargs))
    return sent


def viewer_client(studio, make_user, role: str = "viewer") -> Client:
    user = make_user()
    do_membership_add(acting=OPERATOR, organization=studio, user=user, role=role)
    return client_for(user)


def test_the_settings_menu_links_to_web_hosts(studio_client):
    assert 'href="/studio/hosts/"' in studio_client.get("/studio/").content.decode()


def test_a_studio_claims_a_host_and_sees_its_token_and_both_ways_to_prove_it(studio, studio_client):
    response = studio_client.post("/studio/hosts/", {"host": "CDN.Studio.example"})
    assert response.status_code == 302 and response["Location"] == "/studio/hosts/cdn.studio.example/"
    claim = VerifiedHost.objects.get(organization=studio)
    page = studio_client.get(response["Location"]).content.decode()
    assert f"kyoka-verification={claim.token}" in page
    assert "https://cdn.studio.example/.well-known/kyoka-verification.txt" in page
    assert 'data-state="unverified"' in page and 'id="host-verify"' in page
    assert AuditEvent.objects.filter(action="host.claimed", object_id=str(claim.pk)).count() == 1


def test_the_instructions_are_in_japanese_for_a_japanese_reader(studio):
    claim = do_host_claim(acting=OPERATOR, organization=studio, host="studio.example")
    english = client_for(owner_of(studio)).get("/studio/hosts/studio.example/").content.decode()
    japanese = client_for(owner_of(studio), language="ja").get("/studio/hosts/studio.example/").content.decode()
    assert "Add a TXT record" in english
    assert "Add a TXT record" not in japanese and "TXT" in japanese and "レコード" in japanese
    assert f"kyoka-verification={claim.token}" in japanese


@pytest.mark.parametrize(("host", "phrase"), [("co.jp", "public suffix"), ("127.0.0.1", "IP address"),
                                              ("github.io", "public suffix")])
def test_a_host_no_one_may_claim_is_refused_on_the_form(studio_client, host, phrase):
    response = studio_client.post("/studio/hosts/", {"host": host})
    assert response.status_code == 400 and phrase in response.content.decode()
    assert not VerifiedHost.objects.exists()


def test_asking_kyoka_to_look_queues_the_lookup_and_the_status_polls(studio, studio_client, queued,
                                                                       django_capture_on_commit_callbacks):
    claim = do_host_claim(acting=OPERATOR, organization=studio, host="studio.example")
    with django_capture_on_commit_callbacks(execute=True):
        response = studio_client.post("/studio/hosts/studio.example/verify/", HTTP_HX_REQUEST="true")
    fragment = response.content.decode()
    assert response.status_code == 200 and 'data-state="checking"' in fragment
    assert 'hx-trigger="every 2s"' in fragment and 'id="host-verify"' not in fragment
    assert [q["host_id"] for q in queued] == [claim.pk]
    polled = studio_client.get("/studio/hosts/studio.example/", HTTP_HX_REQUEST="true").content.decode()
    assert polled.startswith('<section class="card" id="host-status"') and 'data-state="checking"' in polled


def test_a_proven_host_says_what_it_covers_and_stops_polling(studio, studio_client):
    do_host_confirm(acting=OPERATOR, organization=studio, host="studio.example")
    page = studio_client.get("/studio/hosts/studio.example/").content.decode()
    assert 'data-state="verified"' in page and "hx-trigger" not in page
    assert "every name under it" in page
    listing = studio_client.get("/studio/hosts/").content.decode()
    assert "studio.example and every name under it" in listing


def test_the_last_lookup_s_problems_are_shown_in_words(studio, studio_client):
    claim = do_host_claim(acting=OPERATOR, organization=studio, host="studio.example")
    VerifiedHost.objects.filter(pk=claim.pk).update(
        last_error='[{"method":"http","code":"forbidden_address","detail":"169.254.169.254"}]')
    page = studio_client.get("/studio/hosts/studio.example/").content.decode()
    assert 'data-state="failed"' in page and 'data-code="http:forbidden_address"' in page
    assert "169.254.169.254" in page and "not a public internet address" in page


def test_a_viewer_sees_the_hosts_but_cannot_claim_verify_or_withdraw(studio, make_user, queued):
    do_host_claim(acting=OPERATOR, organization=studio, host="studio.example")
    client = viewer_client(studio, make_user)
    listing = client.get("/studio/hosts/").content.decode()
    assert "studio.example" in listing and 'id="host-claim-form"' not in listing
    assert 'id="host-verify"' not in client.get("/studio/hosts/studio.example/").content.decode()
    assert client.post("/studio/hosts/", {"host": "other.example"}).status_code == 400
    assert client.post("/studio/hosts/studio.example/verify/").status_code == 403
    assert client.post("/studio/hosts/studio.example/remove/").status_code == 403
    assert VerifiedHost.objects.filter(organization=studio).count() == 1 and queued == []


def test_another_studio_cannot_see_or_verify_your_claim(studio, make_org, queued):
    do_host_claim(acting=OPERATOR, organization=studio, host="studio.example")
    other = client_for(owner_of(make_org()))
    assert other.get("/studio/hosts/studio.example/").status_code == 404
    assert other.post("/studio/hosts/studio.example/verify/").status_code == 404
    assert other.post("/studio/hosts/studio.example/remove/").status_code == 404
    assert queued == [] and VerifiedHost.objects.filter(organization=studio).exists()
    assert "studio.example" not in other.get("/studio/hosts/").content.decode()


def test_an_ai_developer_has_no_hosts_page(developer_client):
    assert developer_client.get("/studio/hosts/").status_code == 404


def test_withdrawing_a_claim(studio, studio_client):
    claim = do_host_confirm(acting=OPERATOR, organization=studio, host="studio.example")
    response = studio_client.post("/studio/hosts/studio.example/remove/", follow=True)
    assert response.redirect_chain == [("/studio/hosts/", 302)]
    assert not VerifiedHost.objects.filter(pk=claim.pk).exists()
    assert AuditEvent.objects.filter(action="host.removed", object_id=str(claim.pk)).exists()


# --- the desk -------------------------------------------------------------------------------


@pytest.fixture
def desk(reviewer) -> Client:
    client = Client()
    client.force_login(reviewer)
    return client


def test_the_desk_lists_claims_unproven_first(studio, make_org, desk):
    do_host_confirm(acting=OPERATOR, organization=studio, host="proven.example")
    do_host_claim(acting=OPERATOR, organization=make_org(), host="waiting.example")
    page = desk.get("/desk/hosts/").content.decode()
    assert page.index("waiting.example") < page.index("proven.example")
    assert 'href="/desk/hosts/"' in page  # in the desk's navigation


def test_a_reviewer_confirms_a_host_on_the_desk(studio, desk, reviewer):
    do_host_claim(acting=OPERATOR, organization=studio, host="studio.example")
    response = desk.post("/desk/hosts/confirm", {"organization": studio.slug, "host": "studio.example",
                                                 "note": "Registrar letter on file"}, follow=True)
    assert response.status_code == 200 and "is confirmed" in response.content.decode()
    claim = VerifiedHost.objects.get(organization=studio)
    assert (claim.method, claim.covers_subdomains, claim.verified_by) == ("reviewer", True, reviewer)
    event = AuditEvent.objects.get(action="host.confirmed")
    assert event.actor == Actor.for_user(reviewer).label and event.data["note"] == "Registrar letter on file"


def test_the_desk_refuses_a_public_suffix_with_a_message(studio, desk):
    response = desk.post("/desk/hosts/confirm", {"organization": studio.slug, "host": "co.jp"}, follow=True)
    assert "public suffix" in response.content.decode() and not VerifiedHost.objects.exists()


@pytest.mark.parametrize("who", ["owner", "staff_not_reviewer"])
def test_only_reviewers_use_the_desk_s_hosts(studio, make_user, who):
    user = owner_of(studio) if who == "owner" else make_user(is_staff=True)
    client = client_for(user)
    assert client.get("/desk/hosts/").status_code == 403
    assert client.post("/desk/hosts/confirm", {"organization": studio.slug, "host": "studio.example"}
                       ).status_code == 403
    assert not VerifiedHost.objects.exists()
