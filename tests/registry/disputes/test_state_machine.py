"""open → under_review → upheld | rejected, or withdrawn by the claimant: nothing else, anywhere."""

from __future__ import annotations

import io

import pytest
from django.contrib.auth.models import Group
from django.db import IntegrityError, transaction
from django.utils import timezone

from registry.access import REVIEWER_GROUP, Actor
from registry.exceptions import Conflict, InvalidTransition, PermissionDenied, ValidationFailed
from registry.models import AuditEvent, Dispute, DisputeEvent, Membership
from registry.services.disputes import (
    dispute_assign,
    dispute_comment,
    dispute_decide,
    dispute_open,
    dispute_request_info,
    dispute_start_review,
    dispute_withdraw,
)
from tests.registry.disputes.conftest import owner_actor

pytestmark = pytest.mark.django_db


@pytest.fixture
def dispute(studio, rival, make_work) -> Dispute:
    work = make_work(rival)
    return dispute_open(
        actor=owner_actor(studio), claimant=studio, kind="ownership", statement="That is our cel.", works=[work]
    )


def decide(dispute, actor, outcome="rejected"):
    return dispute_decide(actor=actor, dispute=dispute, outcome=outcome, reason="Because.")


def test_a_dispute_filed_by_hand_starts_open_against_the_works_owner(dispute, studio, rival):
    assert (dispute.status, dispute.claimant, dispute.respondent) == ("open", studio, rival)
    assert dispute.conflict_key is None
    assert dispute.opened_by == Membership.objects.get(organization=studio, role="owner").user
    event = AuditEvent.objects.get(action="dispute.open")
    assert event.data["works"] == {str(dispute.works.get().pk): "respondent"}


def test_the_full_path_is_recorded_step_by_step(dispute, reviewer_actor, reviewer):
    dispute_assign(actor=reviewer_actor, dispute=dispute, assignee=reviewer)
    dispute_request_info(actor=reviewer_actor, dispute=dispute, message="Model sheets, please.")
    dispute_comment(actor=owner_actor(dispute.claimant), dispute=dispute, message="Attached.")
    dispute_start_review(actor=reviewer_actor, dispute=dispute)
    decide(dispute, reviewer_actor)

    assert list(
        AuditEvent.objects.filter(object_id=str(dispute.pk)).order_by("seq").values_list("action", flat=True)
    ) == [
        "dispute.open", "dispute.assign", "dispute.request_info", "dispute.comment", "dispute.start_review",
        "dispute.decide",
    ]
    assert list(DisputeEvent.objects.filter(dispute=dispute).order_by("pk").values_list("kind", "to_status")) == [
        ("transition", "open"), ("assigned", ""), ("info_requested", ""), ("comment", ""),
        ("transition", "under_review"), ("transition", "rejected"),
    ]


def test_a_dispute_cannot_be_decided_before_review(dispute, reviewer_actor):
    with pytest.raises(InvalidTransition):
        decide(dispute, reviewer_actor)
    assert Dispute.objects.get().status == "open"


def test_a_decided_dispute_stays_decided(dispute, reviewer_actor):
    dispute_start_review(actor=reviewer_actor, dispute=dispute)
    decide(dispute, reviewer_actor)
    with pytest.raises(InvalidTransition):
        decide(dispute, reviewer_actor, "upheld")
    with pytest.raises(InvalidTransition):
        dispute_start_review(actor=reviewer_actor, dispute=dispute)
    with pytest.raises(InvalidTransition):
        dispute_withdraw(actor=owner_actor(dispute.claimant), dispute=dispute)
    with pytest.raises(Conflict):
        dispute_comment(actor=owner_actor(dispute.claimant), dispute=dispute, message="But…")
    assert Dispute.objects.get().status == "rejected"


def test_review_starts_once(dispute, reviewer_actor):
    dispute_start_review(actor=reviewer_actor, dispute=dispute)
    with pytest.raises(InvalidTransition):
        dispute_start_review(actor=reviewer_actor, dispute=dispute)


@pytest.mark.parametrize("reviewing", [False, True])
def test_the_claimant_can_withdraw_an_open_dispute(dispute, reviewer_actor, reviewing):
    if reviewing:
        dispute_start_review(actor=reviewer_actor, dispute=dispute)
    dispute_withdraw(actor=owner_actor(dispute.claimant), dispute=dispute, reason="Settled.")
    dispute.refresh_from_db()
    assert dispute.status == "withdrawn" and dispute.decided_at is not None
    with pytest.raises(InvalidTransition):
        dispute_withdraw(actor=owner_actor(dispute.claimant), dispute=dispute)


def test_only_the_claimants_managers_withdraw(dispute, member, reviewer_actor):
    for actor in (owner_actor(dispute.respondent), member(dispute.claimant, "viewer"), reviewer_actor):
        with pytest.raises(PermissionDenied):
            dispute_withdraw(actor=actor, dispute=dispute)
    dispute_withdraw(actor=member(dispute.claimant, "manager"), dispute=dispute)


def test_only_reviewers_run_a_dispute(dispute, make_user, member):
    staff_only = Actor.for_user(make_user(is_staff=True))
    superuser = Actor.for_user(make_user(is_staff=True, is_superuser=True))
    for actor in (staff_only, owner_actor(dispute.respondent), owner_actor(dispute.claimant)):
        with pytest.raises(PermissionDenied):
            dispute_start_review(actor=actor, dispute=dispute)
        with pytest.raises(PermissionDenied):
            dispute_request_info(actor=actor, dispute=dispute, message="?")
    dispute_start_review(actor=superuser, dispute=dispute)
    with pytest.raises(PermissionDenied):
        decide(dispute, staff_only)


def test_disputes_are_assigned_to_reviewers_only(dispute, reviewer_actor, make_user):
    with pytest.raises(ValidationFailed) as raised:
        dispute_assign(actor=reviewer_actor, dispute=dispute, assignee=make_user(is_staff=True))
    assert raised.value.fields == {"assignee": ["Not a reviewer."]}
    colleague = make_user(is_staff=True)
    colleague.groups.add(Group.objects.get(name=REVIEWER_GROUP))
    assert dispute_assign(actor=reviewer_actor, dispute=dispute, assignee=colleague).assignee == colleague


def test_starting_review_takes_an_unassigned_dispute(dispute, reviewer_actor, reviewer):
    assert dispute_start_review(actor=reviewer_actor, dispute=dispute).assignee == reviewer


def test_an_outsider_cannot_comment(dispute, make_org, member):
    outsider = make_org()
    with pytest.raises(PermissionDenied):
        dispute_comment(actor=owner_actor(outsider), dispute=dispute, message="Me too.")
    with pytest.raises(PermissionDenied):
        dispute_comment(actor=member(dispute.respondent, "viewer"), dispute=dispute, message="Read only.")


def test_the_respondent_answers_as_the_respondent(dispute):
    event = dispute_comment(actor=owner_actor(dispute.respondent), dispute=dispute, message="We drew it.")
    assert event.organization == dispute.respondent


# --- the database holds the same rules, whatever writes the row ------------------------------


def illegal(**changes) -> None:
    with pytest.raises(IntegrityError), transaction.atomic():
        Dispute.objects.filter(**changes.pop("where")).update(**changes)


def test_the_database_refuses_an_illegal_transition(dispute):
    illegal(where={"pk": dispute.pk}, status="upheld", decided_at=timezone.now(), decision_reason="x")
    Dispute.objects.filter(pk=dispute.pk).update(status="under_review")
    Dispute.objects.filter(pk=dispute.pk).update(status="rejected", decided_at=timezone.now(), decision_reason="x")
    illegal(where={"pk": dispute.pk}, status="open", decided_at=None)
    illegal(where={"pk": dispute.pk}, status="upheld")
    assert Dispute.objects.get().status == "rejected"


def test_the_database_refuses_a_decision_without_reason_or_time(dispute):
    Dispute.objects.filter(pk=dispute.pk).update(status="under_review")
    illegal(where={"pk": dispute.pk}, status="rejected", decided_at=timezone.now())
    illegal(where={"pk": dispute.pk}, status="rejected", decision_reason="x")
    illegal(where={"pk": dispute.pk}, remedy="transfer")


def test_the_database_refuses_a_dispute_born_decided(studio, rival):
    with pytest.raises(IntegrityError), transaction.atomic():
        Dispute.objects.create(
            kind="other", claimant=studio, respondent=rival, statement="s", status="rejected",
            decided_at=timezone.now(), decision_reason="x",
        )


def test_reviewers_comment_but_evidence_comes_from_the_parties(dispute, reviewer_actor):
    event = dispute_comment(actor=reviewer_actor, dispute=dispute, message="We are looking at it.")
    assert event.organization is None
    with pytest.raises(ValidationFailed) as raised:
        dispute_comment(
            actor=reviewer_actor, dispute=dispute, message="See.", evidence=[(io.BytesIO(b"scan"), "scan.pdf")]
        )
    assert "evidence" in raised.value.fields
