"""Emails go out after the change commits: disputes, information requests, decisions, requests."""

from __future__ import annotations

import pytest
from django.core import mail
from django.db import transaction

from registry.models import Dispute, Membership
from registry.services.disputes import (
    dispute_comment,
    dispute_decide,
    dispute_open,
    dispute_request_info,
    dispute_start_review,
    dispute_withdraw,
)
from registry.services.notifications import (
    notify_permission_request_answered,
    notify_permission_request_received,
    organization_recipients,
)
from registry.services.permission_requests import permission_request_create, permission_request_decline
from registry.services.verification import (
    verification_request_approve,
    verification_request_reject,
    verification_request_submit,
)
from tests.conftest import owner_of
from tests.registry.disputes.conftest import owner_actor

pytestmark = pytest.mark.django_db


def sent_to() -> list[str]:
    return sorted(address for message in mail.outbox for address in message.to)


def test_recipients_are_the_owners_managers_and_contact_not_viewers(studio, member):
    manager = member(studio, Membership.Role.MANAGER).user
    member(studio, Membership.Role.VIEWER)
    studio.contact_email = "rights@aozora.example"
    assert organization_recipients([studio]) == [owner_of(studio).email, manager.email, "rights@aozora.example"]


def test_an_automatic_dispute_tells_both_studios_after_commit(
    studio, rival, register_image, django_capture_on_commit_callbacks
):
    register_image(studio, seed=1)
    with django_capture_on_commit_callbacks(execute=True):
        register_image(rival, seed=1)
    assert sent_to() == sorted([owner_of(studio).email, owner_of(rival).email])
    to_rival = next(m for m in mail.outbox if m.to == [owner_of(rival).email])
    assert to_rival.subject == f"Kyoka: a dispute was opened against {rival.name}"
    assert "disputed" in to_rival.body and str(Dispute.objects.get().pk) in to_rival.body


def test_nothing_is_sent_when_the_registration_rolls_back(
    studio, rival, register_image, django_capture_on_commit_callbacks
):
    register_image(studio, seed=1)
    with django_capture_on_commit_callbacks(execute=True), pytest.raises(RuntimeError), transaction.atomic():
        register_image(rival, seed=1)
        raise RuntimeError
    assert mail.outbox == []


def test_a_dispute_filed_by_hand_tells_the_respondent(studio, rival, make_work, django_capture_on_commit_callbacks):
    work = make_work(rival)
    with django_capture_on_commit_callbacks(execute=True):
        dispute_open(actor=owner_actor(studio), claimant=studio, kind="other", statement="Ours.", works=[work])
    assert sent_to() == [owner_of(rival).email]
    assert "Ours." in mail.outbox[0].body


def test_an_information_request_reaches_the_party_asked(
    studio, rival, make_work, reviewer_actor, django_capture_on_commit_callbacks
):
    dispute = dispute_open(
        actor=owner_actor(studio), claimant=studio, kind="other", statement="Ours.", works=[make_work(rival)]
    )
    with django_capture_on_commit_callbacks(execute=True):
        dispute_request_info(actor=reviewer_actor, dispute=dispute, message="Send the contract.", party=studio)
    assert sent_to() == [owner_of(studio).email]
    assert "Send the contract." in mail.outbox[0].body


def test_comments_send_nothing(studio, rival, make_work, django_capture_on_commit_callbacks):
    dispute = dispute_open(
        actor=owner_actor(studio), claimant=studio, kind="other", statement="Ours.", works=[make_work(rival)]
    )
    with django_capture_on_commit_callbacks(execute=True):
        dispute_comment(actor=owner_actor(rival), dispute=dispute, message="No.")
    assert mail.outbox == []


def test_a_decision_reaches_both_parties_with_its_reason(
    studio, rival, register_image, reviewer_actor, django_capture_on_commit_callbacks
):
    register_image(studio, seed=1)
    register_image(rival, seed=1)
    dispute = dispute_start_review(actor=reviewer_actor, dispute=Dispute.objects.get())
    with django_capture_on_commit_callbacks(execute=True):
        dispute_decide(actor=reviewer_actor, dispute=dispute, outcome="upheld", reason="A copy.", remedy="withdraw")
    assert sent_to() == sorted([owner_of(studio).email, owner_of(rival).email])
    assert all(m.subject == "Kyoka: dispute upheld" and "Reason: A copy." in m.body for m in mail.outbox)


def test_a_withdrawal_reaches_both_parties(studio, rival, make_work, django_capture_on_commit_callbacks):
    dispute = dispute_open(
        actor=owner_actor(studio), claimant=studio, kind="other", statement="Ours.", works=[make_work(rival)]
    )
    with django_capture_on_commit_callbacks(execute=True):
        dispute_withdraw(actor=owner_actor(studio), dispute=dispute)
    assert sent_to() == sorted([owner_of(studio).email, owner_of(rival).email])


def test_permission_request_received_and_answered(studio, developer, make_work):
    request = permission_request_create(
        actor=owner_actor(developer), requester=developer, rightsholder=studio, work=make_work(studio),
        purposes=["train-ai"], message="For our research model.",
    )
    notify_permission_request_received(permission_request_id=request.pk)
    assert sent_to() == [owner_of(studio).email]
    assert "For our research model." in mail.outbox[0].body and "train-ai" in mail.outbox[0].body

    mail.outbox.clear()
    permission_request_decline(actor=owner_actor(studio), permission_request=request, response="Not now.")
    notify_permission_request_answered(permission_request_id=request.pk)
    assert sent_to() == [owner_of(developer).email]
    assert "declined" in mail.outbox[0].subject and "Not now." in mail.outbox[0].body


def test_a_verification_decision_reaches_the_organisation(make_org, reviewer_actor, django_capture_on_commit_callbacks):
    newcomer = make_org(verified=False, name="Studio Hoshi")
    request = verification_request_submit(actor=owner_actor(newcomer), organization=newcomer, legal_name="KK Hoshi")
    with django_capture_on_commit_callbacks(execute=True):
        verification_request_reject(actor=reviewer_actor, verification_request=request, reason="No registry extract.")
    assert sent_to() == [owner_of(newcomer).email]
    assert "No registry extract." in mail.outbox[0].body

    mail.outbox.clear()
    request = verification_request_submit(actor=owner_actor(newcomer), organization=newcomer, legal_name="KK Hoshi")
    with django_capture_on_commit_callbacks(execute=True):
        verification_request_approve(actor=reviewer_actor, verification_request=request)
    assert mail.outbox[0].subject == "Kyoka: Studio Hoshi is verified"
