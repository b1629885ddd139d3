"""Rightsholders say who they are; reviewers verify or reject; reviewers suspend and unsuspend."""

from __future__ import annotations

import io

import pytest
from django.db import IntegrityError, transaction

from registry.access import Actor
from registry.exceptions import Conflict, InvalidTransition, PermissionDenied, ValidationFailed
from registry.models import AuditEvent, EvidenceFile, Organization, VerificationRequest
from registry.services.grants import do_grant_issue
from registry.services.verification import (
    organization_suspend,
    organization_unsuspend,
    verification_request_approve,
    verification_request_reject,
    verification_request_submit,
)
from tests.conftest import OPERATOR
from tests.registry.disputes.conftest import owner_actor

pytestmark = pytest.mark.django_db

ISBN = "isbn:978-4-04-102622-9"


@pytest.fixture
def newcomer(make_org) -> Organization:
    return make_org(Organization.Kind.RIGHTSHOLDER, verified=False, name="Studio Hoshi")


def submit(org: Organization, **overrides) -> VerificationRequest:
    evidence = io.BytesIO(b"%PDF-1.4 certificate of registration")
    details = {
        "legal_name": "Kabushiki Kaisha Hoshi", "registration_number": "4010001123456", "country": "jp",
        "website": "https://hoshi.example.jp", "contact_email": "legal@hoshi.example.jp",
        "evidence": [(evidence, "touki.pdf")], **overrides,
    }
    return verification_request_submit(actor=owner_actor(org), organization=org, **details)


def test_an_owner_submits_who_the_organisation_is(newcomer):
    request = submit(newcomer)
    newcomer.refresh_from_db()
    assert request.status == "pending"
    assert (newcomer.legal_name, newcomer.country, newcomer.verified_at) == ("Kabushiki Kaisha Hoshi", "JP", None)
    evidence = EvidenceFile.objects.get()
    assert (evidence.verification_request, evidence.dispute, evidence.original_name) == (request, None, "touki.pdf")
    assert evidence.file.read() == b"%PDF-1.4 certificate of registration"
    event = AuditEvent.objects.get(action="organization.verification_submit")
    assert event.data["evidence"] == ["touki.pdf"] and event.organization == newcomer.slug


@pytest.mark.parametrize("field,value", [
    ("legal_name", " "), ("country", "XX"), ("website", "ftp://x"), ("contact_email", "nobody"),
])
def test_a_bad_submission_is_refused_by_field(newcomer, field, value):
    with pytest.raises(ValidationFailed) as raised:
        submit(newcomer, **{field: value})
    assert field in raised.value.fields
    assert not VerificationRequest.objects.exists()


def test_only_an_owner_submits(newcomer, member):
    with pytest.raises(PermissionDenied):
        verification_request_submit(
            actor=member(newcomer, "manager"), organization=newcomer, legal_name="KK Hoshi"
        )


def test_one_request_waits_at_a_time(newcomer):
    submit(newcomer)
    with pytest.raises(Conflict):
        submit(newcomer)
    with pytest.raises(IntegrityError), transaction.atomic():
        VerificationRequest.objects.create(organization=newcomer, legal_name="again")


def test_verifying_makes_the_organisations_grants_count_from_the_next_check(
    newcomer, developer, make_work, check, reviewer_actor, reviewer
):
    work = make_work(newcomer, identifiers=[ISBN])
    do_grant_issue(acting=OPERATOR, grantor=newcomer, scope="catalog", licensee=developer, purposes=["train-genai"])
    _, body = check([{"identifier": ISBN}])
    assert (body["results"][0]["decision"], body["results"][0]["reason"]) == ("not_permitted", "grantor_unverified")

    request = verification_request_approve(actor=reviewer_actor, verification_request=submit(newcomer))

    newcomer.refresh_from_db()
    assert (request.status, request.decided_by, newcomer.verified_by) == ("verified", reviewer, reviewer)
    assert AuditEvent.objects.filter(action="organization.verify", organization=newcomer.slug).count() == 1
    _, body = check([{"identifier": ISBN}])
    assert body["results"][0]["decision"] == "permitted"
    assert body["results"][0]["matches"][0]["work"] == str(work.pk)


def test_a_rejection_gives_its_reason_and_the_organisation_may_try_again(newcomer, reviewer_actor):
    request = submit(newcomer)
    with pytest.raises(ValidationFailed):
        verification_request_reject(actor=reviewer_actor, verification_request=request, reason="")
    verification_request_reject(
        actor=reviewer_actor, verification_request=request, reason="The registration number is another company's."
    )
    newcomer.refresh_from_db()
    assert newcomer.verified_at is None
    assert AuditEvent.objects.get(action="organization.verification_reject").data["reason"].startswith("The reg")
    with pytest.raises(InvalidTransition):
        verification_request_approve(actor=reviewer_actor, verification_request=request)
    assert submit(newcomer, registration_number="1010001654321").status == "pending"


def test_only_reviewers_decide_verification(newcomer, make_user):
    request = submit(newcomer)
    for actor in (owner_actor(newcomer), Actor.for_user(make_user(is_staff=True))):
        with pytest.raises(PermissionDenied):
            verification_request_approve(actor=actor, verification_request=request)
        with pytest.raises(PermissionDenied):
            verification_request_reject(actor=actor, verification_request=request, reason="no")
        with pytest.raises(PermissionDenied):
            organization_suspend(actor=actor, organization=newcomer, reason="no")


def test_a_verified_organisation_does_not_submit_again(studio):
    with pytest.raises(Conflict):
        submit(studio)


def test_suspension_stops_keys_and_grants_until_lifted(
    studio, developer, make_work, check, client_for, reviewer_actor
):
    make_work(studio, identifiers=[ISBN])
    do_grant_issue(acting=OPERATOR, grantor=studio, scope="catalog", licensee=developer, purposes=["train-genai"])
    studio_key = client_for(studio, ["works:read"])

    organization_suspend(actor=reviewer_actor, organization=studio, reason="Registered stolen art at scale.")
    with pytest.raises(Conflict):
        organization_suspend(actor=reviewer_actor, organization=studio, reason="again")
    assert studio_key.get("/api/v1/works").status_code == 401
    _, body = check([{"identifier": ISBN}])
    assert body["results"][0]["decision"] == "not_permitted"

    organization_unsuspend(actor=reviewer_actor, organization=studio, reason="Cleared.")
    _, body = check([{"identifier": ISBN}])
    assert body["results"][0]["decision"] == "permitted"
    assert list(
        AuditEvent.objects.filter(object_type="organization", organization=studio.slug)
        .filter(action__in=["organization.suspend", "organization.unsuspend"])
        .values_list("action", flat=True)
    ) == ["organization.suspend", "organization.unsuspend"]
