"""Accounts and invitations as services: one normal form, audit rows, mail after commit, consent to join."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.core import mail
from django.db import transaction
from django.utils import timezone

from registry.access import Actor
from registry.exceptions import Conflict, PermissionDenied, ValidationFailed
from registry.models import AuditEvent, Invitation, Membership, UserProfile
from registry.services.accounts import (
    account_confirm_email,
    account_confirm_email_by_reset,
    account_sign_up,
    email_canonical,
    email_confirmation_token,
    email_confirmed,
    email_normalize,
    invitation_accept,
    invitation_accept_with_new_account,
    invitation_create,
    invitation_decline,
    invitation_revoke,
    invitation_token,
)
from tests.conftest import owner_of

pytestmark = pytest.mark.django_db

User = get_user_model()


@pytest.mark.parametrize(("typed", "normal"), [
    ("Owner@Aozora.Example", "owner@aozora.example"),
    ("owner@\uff41ozora.example", "owner@aozora.example"),  # full-width a
    ("newhire@\uff56ictim.example", "newhire@victim.example"),  # full-width v
    ("\uff2f\uff37\uff2e\uff25\uff32@aozora.example", "owner@aozora.example"),  # full-width OWNER
    ("  owner@aozora.example.  ", "owner@aozora.example"),
    ("user@例え.jp", "user@xn--r8jz45g.jp"),
    # A full-width domain, dot included.
    ("user@\uff25\uff38\uff21\uff2d\uff30\uff2c\uff25\uff0e\uff43\uff4f\uff4d", "user@example.com"),
])
def test_every_spelling_has_one_normal_form(typed, normal):
    assert email_normalize(typed) == normal


@pytest.mark.parametrize("typed", ["", "no-at-sign", "@example.com", "user@", "user@exa mple.com", "a" * 250 + "@x.jp"])
def test_what_is_not_an_address_is_refused(typed):
    with pytest.raises(ValidationFailed):
        email_normalize(typed)


@pytest.mark.parametrize(
    "typed", ["owner@\uff41ozora.example", "newhire@\uff56ictim.example", "\uff4fwner@aozora.example"]
)
def test_a_spelling_whose_normal_form_differs_is_refused(typed):
    with pytest.raises(ValidationFailed) as raised:
        email_canonical(typed)
    assert "email" in raised.value.fields


@pytest.mark.parametrize("typed", ["Owner@Aozora.Example", "user@例え.jp", "user@xn--r8jz45g.jp"])
def test_case_and_an_internationalised_domain_are_accepted(typed):
    assert email_canonical(typed) == email_normalize(typed)


def test_sign_up_makes_an_unconfirmed_account_under_the_normal_form(django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        account_sign_up(email="New@Example.com", password="a-long-pass-phrase-7", language="ja")
    user = User.objects.get()
    assert (user.username, user.email) == ("new@example.com", "new@example.com")
    assert not email_confirmed(user)
    assert UserProfile.objects.get(user=user).language == "ja"
    assert AuditEvent.objects.filter(action="account.sign_up", object_id=str(user.pk)).exists()
    # The mail is in the language the person signed up in.
    assert mail.outbox[0].subject == "Kyoka: メールアドレスの確認"


def test_sign_up_of_a_taken_address_changes_nothing_and_tells_its_owner(make_user, django_capture_on_commit_callbacks):
    owner = make_user("taken@example.com")
    with django_capture_on_commit_callbacks(execute=True):
        account_sign_up(email="TAKEN@example.com", password="a-long-pass-phrase-7")
    assert User.objects.count() == 1
    owner.refresh_from_db()
    assert owner.check_password("pw-12345!")
    assert [m.to for m in mail.outbox] == [["taken@example.com"]]
    assert not AuditEvent.objects.filter(action="account.sign_up").exists()


def test_no_mail_leaves_when_the_sign_up_rolls_back(django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True), pytest.raises(RuntimeError), transaction.atomic():
        account_sign_up(email="gone@example.com", password="a-long-pass-phrase-7")
        raise RuntimeError
    assert mail.outbox == [] and not User.objects.exists()


def test_the_confirmation_token_confirms_once_and_is_audited():
    account_sign_up(email="new@example.com", password="a-long-pass-phrase-7")
    user = User.objects.get()
    token = email_confirmation_token(user)
    assert account_confirm_email(actor=Actor.for_user(user), token=token) is True
    assert account_confirm_email(actor=Actor.for_user(user), token=token) is False
    assert email_confirmed(user)
    assert AuditEvent.objects.filter(action="account.confirm_email").count() == 1


def test_a_link_confirms_only_for_the_account_it_was_made_for(make_user):
    """Someone who signed up with another person's address cannot have that person confirm it by a click."""
    account_sign_up(email="victim@example.com", password="the-squatters-password-1")
    squatted = User.objects.get(username="victim@example.com")
    token = email_confirmation_token(squatted)
    for actor in (Actor.for_user(make_user("someone@example.com")), Actor.for_operator("anonymous")):
        with pytest.raises(PermissionDenied):
            account_confirm_email(actor=actor, token=token)
    assert not email_confirmed(squatted)


def test_a_completed_password_reset_confirms_the_address():
    account_sign_up(email="reset@example.com", password="a-long-pass-phrase-7")
    user = User.objects.get()
    assert account_confirm_email_by_reset(user=user) is True
    assert email_confirmed(user)


def test_users_made_by_an_administrator_may_act(make_user):
    assert email_confirmed(make_user("staff-made@example.com"))


# --- Invitations ---------------------------------------------------------------------------------

@pytest.fixture
def owner(studio):
    return Actor.for_user(owner_of(studio))


def invite(studio, owner, email="artist@example.com", role=Membership.Role.MANAGER) -> Invitation:
    return invitation_create(actor=owner, organization=studio, email=email, role=role)


def test_an_invitation_binds_nobody_even_when_the_address_has_an_account(studio, owner, make_user):
    artist = make_user("artist@example.com")
    invitation = invite(studio, owner)
    assert invitation.status == Invitation.Status.PENDING
    assert invitation.expires_at - timezone.now() > timedelta(days=6)
    assert not studio.memberships.filter(user=artist).exists()


def test_the_invitee_accepts_and_joins_with_the_offered_role(studio, owner, make_user):
    artist = make_user("artist@example.com")
    invitation = invite(studio, owner, email="Artist@Example.com")
    membership = invitation_accept(actor=Actor.for_user(artist), invitation=invitation)
    assert (membership.user, membership.role) == (artist, Membership.Role.MANAGER)
    invitation.refresh_from_db()
    assert (invitation.status, invitation.answered_by) == (Invitation.Status.ACCEPTED, artist)
    assert AuditEvent.objects.filter(action="invitation.accept", object_id=str(invitation.pk)).exists()


def test_only_the_account_holding_the_address_may_answer(studio, owner, make_user):
    invitation = invite(studio, owner)
    stranger = make_user("someone-else@example.com")
    with pytest.raises(PermissionDenied):
        invitation_accept(actor=Actor.for_user(stranger), invitation=invitation)
    with pytest.raises(PermissionDenied):
        invitation_decline(actor=Actor.for_user(stranger), invitation=invitation)
    assert not studio.memberships.filter(user=stranger).exists()


def test_a_look_alike_account_cannot_take_an_invitation(studio, owner, make_user):
    # An account stored under a full-width spelling (before normalisation) is a different username.
    look_alike = User.objects.create(username="artist@\uff45xample.com", email="artist@\uff45xample.com")
    invitation = invite(studio, owner)
    with pytest.raises(PermissionDenied):
        invitation_accept(actor=Actor.for_user(look_alike), invitation=invitation)


def test_declined_revoked_and_expired_invitations_cannot_be_accepted(studio, owner, make_user):
    artist = make_user("artist@example.com")
    declined = invite(studio, owner)
    invitation_decline(actor=Actor.for_user(artist), invitation=declined)
    revoked = invite(studio, owner)
    invitation_revoke(actor=owner, invitation=revoked)
    expired = invite(studio, owner)
    Invitation.objects.filter(pk=expired.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    for invitation in (declined, revoked, expired):
        with pytest.raises(Conflict):
            invitation_accept(actor=Actor.for_user(artist), invitation=invitation)
    assert not studio.memberships.filter(user=artist).exists()
    assert [i.status for i in Invitation.objects.order_by("created_at")] == ["declined", "revoked", "pending"]


def test_inviting_again_renews_the_one_pending_offer(studio, owner):
    first = invite(studio, owner, role=Membership.Role.VIEWER)
    second = invite(studio, owner, role=Membership.Role.MANAGER)
    assert first.pk == second.pk and Invitation.objects.get().role == Membership.Role.MANAGER


def test_only_owners_invite_and_revoke(studio, owner, member):
    manager = member(studio, Membership.Role.MANAGER)
    with pytest.raises(PermissionDenied):
        invite(studio, manager)
    invitation = invite(studio, owner)
    with pytest.raises(PermissionDenied):
        invitation_revoke(actor=manager, invitation=invitation)


def test_an_invitation_to_a_look_alike_spelling_is_refused(studio, owner):
    with pytest.raises(ValidationFailed):
        invite(studio, owner, email="artist@\uff45xample.com")


def test_accepting_never_lowers_a_role_already_held(studio, owner, member):
    manager = member(studio, Membership.Role.MANAGER)
    invitation = invite(studio, owner, email=manager.user.email, role=Membership.Role.VIEWER)
    invitation_accept(actor=manager, invitation=invitation)
    assert studio.memberships.get(user=manager.user).role == Membership.Role.MANAGER


def test_a_new_person_accepts_by_choosing_a_password_and_is_confirmed(studio, owner):
    invitation = invite(studio, owner, email="newcomer@example.com")
    user = invitation_accept_with_new_account(token=invitation_token(invitation), password="a-long-pass-phrase-7")
    assert user.username == "newcomer@example.com" and email_confirmed(user)
    assert studio.memberships.get(user=user).role == Membership.Role.MANAGER


def test_a_new_account_cannot_take_an_address_that_has_one(studio, owner, make_user):
    make_user("artist@example.com")
    invitation = invite(studio, owner)
    with pytest.raises(Conflict):
        invitation_accept_with_new_account(token=invitation_token(invitation), password="a-long-pass-phrase-7")
    assert User.objects.filter(username="artist@example.com").count() == 1
    assert Invitation.objects.get().status == Invitation.Status.PENDING


def test_the_invitation_mail_leaves_after_commit_with_its_link(studio, owner, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        invitation = invite(studio, owner)
    assert mail.outbox[0].to == ["artist@example.com"]
    assert f"/invitations/{invitation_token(invitation)}/" in mail.outbox[0].body
    assert studio.name in mail.outbox[0].subject
