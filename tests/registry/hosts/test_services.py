"""Host claims through the services: who may do what, what each step records, what a proof covers."""

from __future__ import annotations

import pytest
from django.db import transaction

from registry.access import Actor
from registry.exceptions import LimitReached, NotFound, PermissionDenied, ValidationFailed
from registry.models import AuditEvent, Organization, VerifiedHost
from registry.selectors.hosts import host_state
from registry.services import hosts as host_services
from registry.services.api_keys import do_api_key_create
from registry.services.hosts import (
    do_host_claim,
    do_host_confirm,
    do_host_verify_lookup,
    host_claim,
    host_confirm,
    host_remove,
    host_verify_request,
)
from registry.tasks import host_verify
from tests.conftest import OPERATOR, owner_of
from tests.registry.hosts.conftest import PUBLIC_V4

pytestmark = pytest.mark.django_db
# The lookup refuses to run inside a transaction (it waits on the network), so tests that run
# one commit for real, as the worker does.
committing = pytest.mark.django_db(transaction=True)


def events(action: str, claim: VerifiedHost | None = None) -> list[AuditEvent]:
    rows = AuditEvent.objects.filter(action=action).order_by("seq")
    return list(rows.filter(object_id=str(claim.pk)) if claim is not None else rows)


@pytest.fixture
def owner(studio) -> Actor:
    return Actor.for_user(owner_of(studio))


def key_actor(org: Organization, scopes: list[str]) -> Actor:
    api_key, _ = do_api_key_create(acting=OPERATOR, organization=org, scopes=scopes)
    return Actor.for_key(api_key)


# --- claiming -------------------------------------------------------------------------------


def test_claiming_again_returns_the_same_claim_and_token(studio, owner):
    first = host_claim(actor=owner, organization=studio, host="Example.com")
    again = host_claim(actor=owner, organization=studio, host="https://example.com/")
    assert (again.pk, again.token, again.host) == (first.pk, first.token, "example.com")
    assert len(first.token) >= 32
    assert [e.data for e in events("host.claimed")] == [{"host": "example.com"}]
    assert events("host.claimed")[0].actor == owner.label


def test_a_claim_proves_nothing_by_itself(studio, owner):
    claim = host_claim(actor=owner, organization=studio, host="example.com")
    assert claim.verified_at is None and claim.method == "" and not claim.covers("example.com")
    assert host_state(claim) == "unverified"


def test_each_organisation_gets_its_own_claim_and_token_for_a_shared_host(make_org):
    one, two = make_org(), make_org()
    claim_one = do_host_claim(acting=OPERATOR, organization=one, host="cdn.example.com")
    claim_two = do_host_claim(acting=OPERATOR, organization=two, host="cdn.example.com")
    assert claim_one.pk != claim_two.pk and claim_one.token != claim_two.token


@pytest.mark.parametrize("host", ["com", "co.jp", "github.io", "127.0.0.1", "::1", "cdn.example.com/x", ""])
def test_a_host_no_one_may_claim_is_refused_on_the_host_field(studio, owner, host):
    with pytest.raises(ValidationFailed) as refused:
        host_claim(actor=owner, organization=studio, host=host)
    assert list(refused.value.fields) == ["host"]
    assert not VerifiedHost.objects.exists() and not events("host.claimed")


def test_managers_and_keys_with_works_write_may_claim(studio, member):
    assert host_claim(actor=member(studio, "manager"), organization=studio, host="a.example.com")
    assert host_claim(actor=key_actor(studio, ["works:write"]), organization=studio, host="b.example.com")


def test_a_viewer_cannot_claim(studio, member):
    with pytest.raises(PermissionDenied):
        host_claim(actor=member(studio, "viewer"), organization=studio, host="example.com")
    assert not VerifiedHost.objects.exists()


def test_a_key_without_works_write_cannot_claim(studio):
    with pytest.raises(PermissionDenied):
        host_claim(actor=key_actor(studio, ["works:read", "grants:write"]), organization=studio, host="example.com")


def test_another_organisations_member_cannot_claim_for_it(studio, make_org):
    other = make_org()
    with pytest.raises(PermissionDenied):
        host_claim(actor=Actor.for_user(owner_of(other)), organization=studio, host="example.com")


def test_an_ai_developer_claims_no_hosts(developer):
    with pytest.raises(PermissionDenied):
        host_claim(actor=Actor.for_user(owner_of(developer)), organization=developer, host="example.com")


def test_an_operator_label_passes_no_authorization(studio):
    with pytest.raises(PermissionDenied):
        host_claim(actor=OPERATOR, organization=studio, host="example.com")


def test_an_organisation_may_hold_a_bounded_number_of_claims(studio, monkeypatch):
    monkeypatch.setattr(host_services, "MAX_HOSTS_PER_ORGANIZATION", 2)
    do_host_claim(acting=OPERATOR, organization=studio, host="a.example.com")
    do_host_claim(acting=OPERATOR, organization=studio, host="b.example.com")
    assert do_host_claim(acting=OPERATOR, organization=studio, host="a.example.com")  # a repeat is no new claim
    with pytest.raises(LimitReached):
        do_host_claim(acting=OPERATOR, organization=studio, host="c.example.com")


# --- the lookup -----------------------------------------------------------------------------


@committing
def test_a_dns_proof_on_example_com_covers_cdn_example_com(studio, network):
    claim = do_host_claim(acting=OPERATOR, organization=studio, host="example.com")
    network.txt["example.com"] = [f"kyoka-verification={claim.token}"]
    claim = do_host_verify_lookup(host_id=claim.pk, requested_by="user:1:owner")
    assert (claim.method, claim.covers_subdomains, claim.last_error) == ("dns", True, "")
    assert claim.verified_at is not None and claim.last_checked_at is not None
    assert claim.covers("example.com") and claim.covers("cdn.example.com") and claim.covers("a.b.example.com")
    assert not claim.covers("notexample.com") and not claim.covers("com")
    [event] = events("host.verified", claim)
    assert event.actor == "operator:host-lookup"
    assert event.data == {"host": "example.com", "requested_by": "user:1:owner", "found": "dns", "method": "dns",
                          "covers_subdomains": True, "first_proof": True}


@committing
def test_the_http_file_covers_only_its_own_host(studio, network):
    claim = do_host_claim(acting=OPERATOR, organization=studio, host="cdn.studio.example")
    network.addresses["cdn.studio.example"] = [PUBLIC_V4]
    network.serve_file(f"{claim.token}\n".encode())
    claim = do_host_verify_lookup(host_id=claim.pk)
    assert (claim.method, claim.covers_subdomains) == ("http", False)
    assert claim.covers("cdn.studio.example")
    assert not claim.covers("img.cdn.studio.example") and not claim.covers("studio.example")


@committing
def test_a_failed_lookup_records_why_and_proves_nothing(studio, network):
    claim = do_host_claim(acting=OPERATOR, organization=studio, host="studio.example")
    network.addresses["studio.example"] = ["10.0.0.8"]
    claim = do_host_verify_lookup(host_id=claim.pk, requested_by="key:abc")
    assert claim.verified_at is None and not claim.covers("studio.example")
    assert host_state(claim) == "failed"
    [event] = events("host.verification_failed", claim)
    assert event.data["problems"] == [{"method": "dns", "code": "no_record", "detail": ""},
                                      {"method": "http", "code": "forbidden_address", "detail": "10.0.0.8"}]
    assert event.data["still_verified"] is False and event.data["requested_by"] == "key:abc"
    assert network.connected_to == []


@committing
def test_a_proven_host_stays_proven_when_a_later_lookup_finds_nothing(studio, network):
    claim = do_host_claim(acting=OPERATOR, organization=studio, host="example.com")
    network.txt["example.com"] = [f"kyoka-verification={claim.token}"]
    proven = do_host_verify_lookup(host_id=claim.pk)
    network.txt["example.com"] = []
    again = do_host_verify_lookup(host_id=claim.pk)
    assert (again.verified_at, again.method, again.covers_subdomains) == (proven.verified_at, "dns", True)
    assert again.last_error and events("host.verification_failed", claim)[0].data["still_verified"] is True


@committing
def test_a_later_file_proof_never_narrows_a_dns_proof_but_a_dns_proof_widens_a_file_proof(studio, network):
    claim = do_host_claim(acting=OPERATOR, organization=studio, host="studio.example")
    network.addresses["studio.example"] = [PUBLIC_V4]
    network.serve_file(f"{claim.token}\n".encode())
    assert do_host_verify_lookup(host_id=claim.pk).method == "http"
    network.txt["studio.example"] = [f"kyoka-verification={claim.token}"]
    widened = do_host_verify_lookup(host_id=claim.pk)
    assert (widened.method, widened.covers_subdomains) == ("dns", True)
    network.txt["studio.example"] = []
    kept = do_host_verify_lookup(host_id=claim.pk)  # only the file proves now
    assert (kept.method, kept.covers_subdomains) == ("dns", True)


def test_the_lookup_refuses_to_run_inside_a_transaction(studio):
    claim = do_host_claim(acting=OPERATOR, organization=studio, host="example.com")
    with transaction.atomic(), pytest.raises(RuntimeError):
        do_host_verify_lookup(host_id=claim.pk)


@committing
def test_a_lookup_for_a_removed_claim_records_nothing(studio, network):
    claim = do_host_claim(acting=OPERATOR, organization=studio, host="example.com")
    host_services.do_host_remove(acting=OPERATOR, claim=claim)
    assert do_host_verify_lookup(host_id=claim.pk) is None
    assert not network.touched


@committing
def test_asking_to_verify_queues_one_lookup_and_never_looks_in_the_request(
        studio, owner, network, django_capture_on_commit_callbacks, monkeypatch):
    claim = host_claim(actor=owner, organization=studio, host="example.com")
    network.txt["example.com"] = [f"kyoka-verification={claim.token}"]
    queued: list[dict] = []
    monkeypatch.setattr(host_verify, "delay", lambda **kwargs: queued.append(kwargs))
    with django_capture_on_commit_callbacks(execute=True):
        returned = host_verify_request(actor=owner, organization=studio, host="example.com")
        host_verify_request(actor=owner, organization=studio, host="example.com")  # one already on its way
    assert returned.pk == claim.pk and host_state(returned) == "checking"
    assert queued == [{"host_id": claim.pk, "requested_by": owner.label}]
    assert not network.touched  # the request thread did not look
    host_verify.apply(kwargs=queued[0])  # what the worker runs
    claim.refresh_from_db()
    assert host_state(claim) == "verified" and claim.method == "dns"


def test_another_organisation_cannot_verify_your_claim(studio, make_org):
    do_host_claim(acting=OPERATOR, organization=studio, host="example.com")
    other = make_org()
    other_owner = Actor.for_user(owner_of(other))
    with pytest.raises(PermissionDenied):
        host_verify_request(actor=other_owner, organization=studio, host="example.com")
    with pytest.raises(NotFound):
        host_verify_request(actor=other_owner, organization=other, host="example.com")


def test_a_viewer_cannot_ask_for_a_lookup(studio, member):
    do_host_claim(acting=OPERATOR, organization=studio, host="example.com")
    with pytest.raises(PermissionDenied):
        host_verify_request(actor=member(studio, "viewer"), organization=studio, host="example.com")


# --- a reviewer's confirmation --------------------------------------------------------------


def test_a_reviewer_confirms_a_host_and_its_subdomains(studio, reviewer):
    claim = host_confirm(actor=Actor.for_user(reviewer), organization=studio, host="Aozora.example",
                         note="Checked the registrar record")
    assert (claim.method, claim.covers_subdomains, claim.verified_by) == ("reviewer", True, reviewer)
    assert claim.covers("cdn.aozora.example")
    [event] = events("host.confirmed", claim)
    assert event.data == {"host": "aozora.example", "claimed_now": True, "previous_method": "",
                          "note": "Checked the registrar record"}
    assert host_confirm(actor=Actor.for_user(reviewer), organization=studio, host="aozora.example").pk == claim.pk
    assert len(events("host.confirmed")) == 1  # confirming twice changes nothing


@committing
def test_a_reviewer_confirmation_widens_a_file_proof(studio, reviewer, network):
    claim = do_host_claim(acting=OPERATOR, organization=studio, host="studio.example")
    network.addresses["studio.example"] = [PUBLIC_V4]
    network.serve_file(f"{claim.token}\n".encode())
    proven = do_host_verify_lookup(host_id=claim.pk)
    confirmed = host_confirm(actor=Actor.for_user(reviewer), organization=studio, host="studio.example")
    assert (confirmed.method, confirmed.covers_subdomains, confirmed.verified_at) == (
        "reviewer", True, proven.verified_at)
    assert events("host.confirmed", claim)[0].data["previous_method"] == "http"


@pytest.mark.parametrize("who", ["owner", "staff_not_reviewer", "operator"])
def test_only_a_reviewer_may_confirm(studio, make_user, who):
    actor = {
        "owner": lambda: Actor.for_user(owner_of(studio)),
        "staff_not_reviewer": lambda: Actor.for_user(make_user(is_staff=True)),
        "operator": lambda: OPERATOR,
    }[who]()
    with pytest.raises(PermissionDenied):
        host_confirm(actor=actor, organization=studio, host="example.com")
    assert not VerifiedHost.objects.exists()


def test_a_reviewer_cannot_confirm_a_public_suffix(studio, reviewer):
    with pytest.raises(ValidationFailed):
        host_confirm(actor=Actor.for_user(reviewer), organization=studio, host="co.jp")


# --- removal --------------------------------------------------------------------------------


def test_removing_a_claim_is_audited_and_takes_its_standing_away(studio, owner):
    claim = do_host_confirm(acting=OPERATOR, organization=studio, host="example.com")
    host_remove(actor=owner, organization=studio, host="example.com")
    assert not VerifiedHost.objects.filter(pk=claim.pk).exists()
    [event] = events("host.removed", claim)
    assert event.data == {"host": "example.com", "method": "reviewer", "was_verified": True}
    assert event.actor == owner.label
    with pytest.raises(NotFound):
        host_remove(actor=owner, organization=studio, host="example.com")


def test_a_viewer_cannot_remove_a_claim(studio, member):
    do_host_claim(acting=OPERATOR, organization=studio, host="example.com")
    with pytest.raises(PermissionDenied):
        host_remove(actor=member(studio, "viewer"), organization=studio, host="example.com")
    assert VerifiedHost.objects.filter(host="example.com").exists()


@committing
def test_the_audit_chain_holds_after_every_kind_of_host_event(studio, reviewer, network):
    from registry.services.audit import audit_verify

    claim = do_host_claim(acting=OPERATOR, organization=studio, host="example.com")
    do_host_verify_lookup(host_id=claim.pk)
    host_confirm(actor=Actor.for_user(reviewer), organization=studio, host="example.com")
    host_services.do_host_remove(acting=OPERATOR, claim=claim)
    assert [e.action for e in AuditEvent.objects.filter(object_type="verified_host").order_by("seq")] == [
        "host.claimed", "host.verification_failed", "host.confirmed", "host.removed"]
    assert audit_verify().ok


# --- what a proof changes in checks ---------------------------------------------------------


@committing
def test_urls_registered_before_the_proof_permit_once_it_is_found_without_registering_again(
        studio, developer, network, client_for):
    import json

    from registry.services.grants import do_grant_issue
    from registry.services.works import do_work_register

    work = do_work_register(acting=OPERATOR, organization=studio, external_ref="CEL-1", title="Cel 1", kind="image",
                            urls=["https://cdn.example.com/cels/1.png", "https://img.example.com/cels/*"])
    do_grant_issue(acting=OPERATOR, grantor=studio, scope="work", work=work, licensee=developer,
                   purposes=["train-ai"])
    client = client_for(developer, ["checks"])
    items = [{"url": "https://cdn.example.com/cels/1.png"}, {"url": "https://img.example.com/cels/2.png"}]

    def decisions() -> list[tuple[str, str | None]]:
        response = client.post("/api/v1/checks", {"purpose": "train-ai", "items": items}, format="json")
        return [(r["decision"], r.get("reason")) for r in json.loads(response.content)["results"]]

    # Claimed but not proven: the exact URL is registered without standing, the pattern is ignored.
    claim = do_host_claim(acting=OPERATOR, organization=studio, host="example.com")
    assert decisions() == [("not_permitted", "host_unverified"), ("unregistered", "no_match")]
    network.txt["example.com"] = [f"kyoka-verification={claim.token}"]
    do_host_verify_lookup(host_id=claim.pk)
    assert decisions() == [("permitted", None), ("permitted", None)]  # DNS on example.com covers both hosts
