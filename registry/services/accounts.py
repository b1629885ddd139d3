"""People: signing up, confirming an address, and invitations to join an organisation.

Invariants
- One normal form for every e-mail address (`email_normalize`: NFKC, case-folded, IDNA domain),
  and it is the username. Sign-up, invitations, login and password reset all compare normal forms,
  so `newhire@\uff56ictim.example` (a full-width v) can never become a second spelling of `newhire@victim.example`.
  An address whose normal form differs from what was typed (beyond letter case) is refused
  (`email_canonical`): the person would not recognise the account it makes.
- A person who signs up alone can do nothing until the address is confirmed (a signed link).
- Sign-up answers the same whether or not the address has an account: the mail tells the owner
  of the address which it was, nobody else learns it.
- An invitation binds nobody: it is an offer to an address, and only the account holding that
  address may accept it (or decline it). Until then it is pending, visible to the organisation's
  owners, revocable, and it expires.
- Mail leaves after the transaction commits, through a Celery task (registry.services.notifications).
"""

from __future__ import annotations

import unicodedata
from datetime import timedelta

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.hashers import make_password
from django.contrib.auth.models import AbstractBaseUser
from django.core import signing
from django.core.exceptions import ValidationError
from django.core.validators import EmailValidator
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from registry.access import Actor, authorize
from registry.exceptions import Conflict, NotFound, PermissionDenied, ValidationFailed
from registry.models import Invitation, Membership, Organization, UserProfile
from registry.services.audit import audit_append
from registry.services.notifications import (
    notify_after_commit,
    notify_email_confirmation,
    notify_invitation,
    notify_signup_existing_account,
)
from registry.services.organizations import do_membership_add

EMAIL_MAX_LENGTH = 254
CONFIRMATION_SALT = "kyoka.accounts.email-confirmation"
INVITATION_SALT = "kyoka.accounts.invitation"
_validate_email_syntax = EmailValidator()


# --- One normal form -----------------------------------------------------------------------------

def email_normalize(raw: str) -> str:
    """The address as Kyoka stores and compares it: NFKC, case-folded, the domain in IDNA (ASCII).

    Raises ValidationFailed for anything that is not an address once normalised.
    """
    text = unicodedata.normalize("NFKC", (raw or "").strip()).casefold()
    local, at, domain = text.rpartition("@")
    if not at or not local or not domain or len(text) > EMAIL_MAX_LENGTH:
        raise _invalid_email()
    try:
        domain = domain.rstrip(".").encode("idna").decode("ascii")
    except UnicodeError as exc:
        raise _invalid_email() from exc
    address = f"{local}@{domain}"
    try:
        _validate_email_syntax(address)
    except ValidationError as exc:
        raise _invalid_email() from exc
    return address


def email_canonical(raw: str) -> str:
    """Normalise `raw`, refusing it when its normal form is not what was typed (beyond letter case).

    A full-width letter, a ligature or a compatibility character would otherwise silently make
    an account for a different-looking address; an internationalised domain typed in Unicode is
    fine (its normal form is the same domain in ASCII).
    """
    address = email_normalize(raw)
    local, _at, domain = address.rpartition("@")
    typed = (raw or "").strip().casefold()
    shown = f"{local}@{domain.encode('ascii').decode('idna')}"
    if typed not in (address, shown):
        raise ValidationFailed(
            _("This address contains characters that stand for other ones (for example full-width "
              "letters). Type it again in plain characters: %(address)s") % {"address": shown},
            fields={"email": [_("Type the address in plain characters.")]},
        )
    return address


def _invalid_email() -> ValidationFailed:
    return ValidationFailed(_("Enter a valid email address."), fields={"email": [_("Enter a valid email address.")]})


def user_by_email(email: str) -> AbstractBaseUser | None:
    """The account whose normal form is `email`'s, if any (usernames are normal forms)."""
    try:
        address = email_normalize(email)
    except ValidationFailed:
        return None
    return get_user_model().objects.filter(username=address).first()


def email_confirmed(user: AbstractBaseUser) -> bool:
    """May this person act? Only a self-service sign-up waits for its address to be confirmed."""
    profile = UserProfile.objects.filter(user=user).only("email_confirmed_at").first()
    return profile is None or profile.email_confirmed_at is not None


def user_language(user: AbstractBaseUser) -> str:
    language = UserProfile.objects.filter(user=user).values_list("language", flat=True).first()
    return language or settings.LANGUAGE_CODE


# --- Sign-up and confirmation --------------------------------------------------------------------

def account_sign_up(*, email: str, password: str, language: str = "") -> None:
    """Make an unconfirmed account for `email` and send the link that confirms it.

    When the address already has an account, nothing changes and its owner is told by mail
    instead; the caller's answer is the same either way (no oracle). The password is hashed
    either way, so the two paths also take the same time.
    """
    address = email_canonical(email)
    language = _language_or_default(language)
    hashed = make_password(password)
    User = get_user_model()
    with transaction.atomic():
        try:
            with transaction.atomic():
                user = User(username=address, email=address, password=hashed)
                user.save()
        except IntegrityError:
            existing = User.objects.get(username=address)
            notify_after_commit(notify_signup_existing_account, user_id=existing.pk, language=language)
            return
        UserProfile.objects.create(user=user, language=language)
        audit_append(
            actor=Actor.for_user(user), action="account.sign_up", object_type="user", object_id=str(user.pk),
            data={"language": language},
        )
        notify_after_commit(notify_email_confirmation, user_id=user.pk)


def email_confirmation_token(user: AbstractBaseUser) -> str:
    """A signed link token for `user`'s current address (a changed address invalidates it)."""
    return signing.dumps({"user": user.pk, "email": user.email}, salt=CONFIRMATION_SALT, compress=True)


def email_confirmation_send(*, user: AbstractBaseUser) -> None:
    """Send the confirmation link again (the person asked for it on the confirm page)."""
    if not email_confirmed(user):
        notify_after_commit(notify_email_confirmation, user_id=user.pk)


def email_confirmation_user(token: str) -> AbstractBaseUser:
    """The account a confirmation link was made for; NotFound for a bad, old or outdated token."""
    max_age = timedelta(days=settings.KYOKA_EMAIL_CONFIRMATION_DAYS)
    try:
        claim = signing.loads(token, salt=CONFIRMATION_SALT, max_age=max_age)
    except signing.BadSignature as exc:
        raise NotFound(_("This confirmation link is not valid or has expired. Log in to get a new one.")) from exc
    user = get_user_model().objects.filter(pk=claim.get("user"), email=claim.get("email"), is_active=True).first()
    if user is None:
        raise NotFound(_("This confirmation link is not valid or has expired. Log in to get a new one."))
    return user


def account_confirm_email(*, actor: Actor, token: str) -> bool:
    """Confirm an address: the link (the mailbox) followed by the account itself (its password).

    Both are needed. A link alone would let someone who signed up with another person's address
    (and so knows the password) have that person confirm it by a click, and keep an account in
    their name; a login alone proves no mailbox. Answers whether this confirmed it.
    """
    user = email_confirmation_user(token)
    if actor.user_or_none is None or actor.user_or_none.pk != user.pk:
        raise PermissionDenied(
            _("This confirmation link is for another account. Log in with the address it was sent to.")
        )
    return do_account_confirm_email(acting=actor, user=user)


def account_confirm_email_by_reset(*, user: AbstractBaseUser) -> bool:
    """A completed password reset proves the mailbox and sets the password: the address is confirmed.

    (The caller checked Django's reset token.) This is also how the owner of an address takes it back
    from an unconfirmed account someone else made with it: reset, then log in.
    """
    return do_account_confirm_email(acting=Actor.for_user(user), user=user)


@transaction.atomic
def do_account_confirm_email(*, acting: Actor, user: AbstractBaseUser) -> bool:
    profile, _created = UserProfile.objects.select_for_update().get_or_create(user=user)
    if profile.email_confirmed_at is not None:
        return False
    profile.email_confirmed_at = timezone.now()
    profile.save(update_fields=["email_confirmed_at"])
    audit_append(
        actor=acting, action="account.confirm_email", object_type="user", object_id=str(user.pk),
        data={"email_confirmed_at": {"old": None, "new": profile.email_confirmed_at}},
    )
    return True


def user_set_language(*, user: AbstractBaseUser, language: str) -> None:
    """Remember the language a person reads Kyoka in: mail to them is written in it."""
    language = _language_or_default(language)
    UserProfile.objects.update_or_create(user=user, defaults={"language": language}, create_defaults={
        "language": language, "email_confirmed_at": timezone.now(),
    })


def _language_or_default(language: str) -> str:
    code = (language or "").split("-")[0].lower()
    return code if code in dict(settings.LANGUAGES) else settings.LANGUAGE_CODE


# --- Invitations ---------------------------------------------------------------------------------

def invitation_token(invitation: Invitation) -> str:
    """The secret part of an invitation link. Signed, so a guessed id is worth nothing."""
    return signing.dumps(str(invitation.pk), salt=INVITATION_SALT)


def invitation_from_token(token: str) -> Invitation:
    """The invitation a link names, whatever its state; NotFound for a forged or garbled token."""
    try:
        invitation_id = signing.loads(token, salt=INVITATION_SALT)
    except signing.BadSignature as exc:
        raise NotFound(_("This invitation link is not valid.")) from exc
    invitation = Invitation.objects.select_related("organization").filter(pk=invitation_id).first()
    if invitation is None:
        raise NotFound(_("This invitation link is not valid."))
    return invitation


def invitation_is_open(invitation: Invitation) -> bool:
    return invitation.status == Invitation.Status.PENDING and invitation.expires_at > timezone.now()


def invitation_create(*, actor: Actor, organization: Organization, email: str, role: str) -> Invitation:
    """Offer `role` in `organization` to `email`. Owners only. Inviting again renews the offer.

    The answer does not depend on whether the address has an account (nor does the mail's link).
    """
    authorize(actor, organization, role=Membership.Role.OWNER, scope="members")
    return do_invitation_create(acting=actor, organization=organization, email=email, role=role)


@transaction.atomic
def do_invitation_create(*, acting: Actor, organization: Organization, email: str, role: str) -> Invitation:
    address = email_canonical(email)
    if role not in Membership.Role.values:
        raise ValidationFailed(_("Unknown role '%(role)s'.") % {"role": role}, fields={"role": [_("Unknown role.")]})
    expires_at = timezone.now() + timedelta(days=settings.KYOKA_INVITATION_DAYS)
    # The pending offer's row lock orders two owners inviting the same address at once.
    invitation = (
        Invitation.objects.select_for_update()
        .filter(organization=organization, email=address, status=Invitation.Status.PENDING)
        .first()
    )
    if invitation is None:
        invitation = Invitation.objects.create(
            organization=organization, email=address, role=role, invited_by=acting.user_or_none, expires_at=expires_at,
        )
    else:
        invitation.role, invitation.expires_at, invitation.invited_by = role, expires_at, acting.user_or_none
        invitation.save(update_fields=["role", "expires_at", "invited_by"])
    audit_append(
        actor=acting, action="invitation.create", object_type="invitation", object_id=str(invitation.pk),
        organization=organization, data={"email": address, "role": role, "expires_at": expires_at},
    )
    notify_after_commit(notify_invitation, invitation_id=str(invitation.pk))
    return invitation


def invitation_revoke(*, actor: Actor, invitation: Invitation) -> Invitation:
    authorize(actor, invitation.organization, role=Membership.Role.OWNER, scope="members")
    return _invitation_close(acting=actor, invitation=invitation, status=Invitation.Status.REVOKED)


def invitation_decline(*, actor: Actor, invitation: Invitation) -> Invitation:
    """The invitee says no. Only the account holding the invited address may."""
    _authorize_invitee(actor, invitation)
    return _invitation_close(acting=actor, invitation=invitation, status=Invitation.Status.DECLINED)


def invitation_accept(*, actor: Actor, invitation: Invitation) -> Membership:
    """The invitee joins with the offered role. Only the account holding the invited address may."""
    user = _authorize_invitee(actor, invitation)
    return do_invitation_accept(acting=actor, invitation=invitation, user=user)


@transaction.atomic
def do_invitation_accept(*, acting: Actor, invitation: Invitation, user: AbstractBaseUser) -> Membership:
    invitation = _lock_open(invitation)
    now = timezone.now()
    invitation.status, invitation.answered_at, invitation.answered_by = Invitation.Status.ACCEPTED, now, user
    invitation.save(update_fields=["status", "answered_at", "answered_by"])
    existing = Membership.objects.filter(organization=invitation.organization, user=user).first()
    # Joining never lowers a role the person already holds.
    membership = existing or do_membership_add(
        acting=acting, organization=invitation.organization, user=user, role=invitation.role
    )
    # The link came to the address, so following it confirms the address too.
    UserProfile.objects.filter(user=user, email_confirmed_at__isnull=True).update(email_confirmed_at=now)
    audit_append(
        actor=acting, action="invitation.accept", object_type="invitation", object_id=str(invitation.pk),
        organization=invitation.organization, data={"email": invitation.email, "role": membership.role},
    )
    return membership


@transaction.atomic
def invitation_accept_with_new_account(*, token: str, password: str, language: str = "") -> AbstractBaseUser:
    """Accept an invitation by making the account for its address (none exists): confirmed at once."""
    invitation = invitation_from_token(token)
    if not invitation_is_open(invitation):
        raise Conflict(_("This invitation is no longer open."))
    User = get_user_model()
    try:
        with transaction.atomic():
            user = User.objects.create_user(username=invitation.email, email=invitation.email, password=password)
    except IntegrityError as exc:
        raise Conflict(_("An account with this address exists: log in to answer the invitation.")) from exc
    UserProfile.objects.create(user=user, language=_language_or_default(language), email_confirmed_at=timezone.now())
    audit_append(
        actor=Actor.for_user(user), action="account.sign_up", object_type="user", object_id=str(user.pk),
        data={"invitation": str(invitation.pk)},
    )
    do_invitation_accept(acting=Actor.for_user(user), invitation=invitation, user=user)
    return user


def _authorize_invitee(actor: Actor, invitation: Invitation) -> AbstractBaseUser:
    user = actor.user_or_none
    if user is None or not user.is_active or user.get_username() != invitation.email:
        raise PermissionDenied(_("This invitation is for another address. Log in with the invited address."))
    return user


def _lock_open(invitation: Invitation) -> Invitation:
    invitation = Invitation.objects.select_for_update().select_related("organization").get(pk=invitation.pk)
    if not invitation_is_open(invitation):
        raise Conflict(_("This invitation is no longer open."))
    return invitation


@transaction.atomic
def _invitation_close(*, acting: Actor, invitation: Invitation, status: str) -> Invitation:
    invitation = _lock_open(invitation)
    invitation.status, invitation.answered_at, invitation.answered_by = status, timezone.now(), acting.user_or_none
    invitation.save(update_fields=["status", "answered_at", "answered_by"])
    audit_append(
        actor=acting, action=f"invitation.{status}", object_type="invitation", object_id=str(invitation.pk),
        organization=invitation.organization, data={"email": invitation.email},
    )
    return invitation
