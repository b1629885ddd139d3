"""Emails to people and organisations, in each recipient's language, after the change commits.

Services name a notification and the ids it needs; nothing is sent inside their transaction, so
nobody is told about a change that then rolled back:

    notify_after_commit(notify_dispute_opened, dispute_id=str(dispute.pk))

Once the transaction commits, a Celery task (`registry.tasks.send_notification`) renders the
messages, one per recipient and in that recipient's language, and each message goes out through
its own task (`registry.tasks.send_email`) that retries while the mail server is away. A write's
answer never depends on mail: queueing happens after the commit and its failure is only logged.
Arguments are ids and strings (JSON primitives). Header values lose any CR/LF (an organisation
named "A\r\nBcc: x" cannot add a header, nor make Django refuse the message).
"""

from __future__ import annotations

import logging
import re
import uuid
from collections.abc import Callable, Iterable
from typing import Any

from django.conf import settings
from django.core.mail import EmailMessage
from django.db import transaction
from django.urls import reverse
from django.utils import translation
from django.utils.translation import gettext as _

from registry.models import (
    Dispute,
    DisputeEvent,
    Invitation,
    Membership,
    Organization,
    PermissionRequest,
    VerificationRequest,
)

logger = logging.getLogger(__name__)

# Who hears about an organisation's disputes and requests: the people who can act on them.
NOTIFIED_ROLES = (Membership.Role.OWNER, Membership.Role.MANAGER)
_LINE_BREAKS = re.compile(r"[\r\n]+")

Build = Callable[[], tuple[str, str]]


def notify_after_commit(notify: Callable[..., Any], **ids: Any) -> None:
    """Queue the notification `notify` once the current transaction commits (at once outside one)."""
    name = notify.__name__
    if NOTIFICATIONS.get(name) is not notify:
        raise ValueError(f"{name} is not a notification")
    arguments = {key: value if isinstance(value, int | str) else str(value) for key, value in ids.items()}

    # A named function, not a partial: Django's robust on_commit names the callback when it fails.
    def queue_notification() -> None:
        _queue("send_notification", notification=name, **arguments)

    transaction.on_commit(queue_notification, robust=True)


def deliver(notification: str, **ids: Any) -> int:
    """Render and queue the messages of one notification (what the task runs)."""
    return NOTIFICATIONS[notification](**ids)


def send_email(*, subject: str, body: str, to: str) -> None:
    """Send one message now (what the retried task runs). Header values lose CR/LF."""
    EmailMessage(header_safe(subject), body, settings.DEFAULT_FROM_EMAIL, [header_safe(to)]).send()


def header_safe(value: str) -> str:
    return _LINE_BREAKS.sub(" ", value).strip()


def _queue(task_name: str, **kwargs: Any) -> None:
    """Hand a task to Celery; a broker that is down is logged, never raised to the caller."""
    from registry import tasks

    task = getattr(tasks, task_name)
    try:
        if settings.KYOKA_NOTIFICATIONS_INLINE:
            task.apply(kwargs=kwargs)
        else:
            task.apply_async(kwargs=kwargs)
    except Exception:
        logger.exception("Could not queue %s (%s)", task_name, kwargs.get("notification", ""))


def organization_recipients(organizations: Iterable[Organization]) -> list[str]:
    """Owners' and managers' addresses, then each organisation's contact address; no repeats."""
    return [email for email, _language in _recipients_with_language(organizations)]


def _recipients_with_language(organizations: Iterable[Organization]) -> list[tuple[str, str]]:
    organizations = list(organizations)
    members = (
        Membership.objects.filter(
            organization__in=organizations, role__in=NOTIFIED_ROLES, user__is_active=True
        )
        .exclude(user__email="")
        .order_by("organization_id", "created_at")
        .values_list("user__email", "user__kyoka_profile__language")
    )
    # A contact address has no account, so no preference: the site's language.
    contacts = [(o.contact_email, "") for o in organizations if o.contact_email]
    seen: dict[str, str] = {}
    for email, language in [*members, *contacts]:
        seen.setdefault(email, language or settings.LANGUAGE_CODE)
    return list(seen.items())


def _send(organizations: Iterable[Organization], build: Build) -> int:
    """One message per recipient, built in that recipient's language; no address sees another."""
    sent = 0
    for email, language in _recipients_with_language(organizations):
        sent += _send_to(email, language, build)
    return sent


def _send_to(email: str, language: str, build: Build) -> int:
    with translation.override(language or settings.LANGUAGE_CODE):
        subject, body = build()
    _queue("send_email", subject=subject, body=body, to=email)
    return 1


def _link(view_name: str, *args: str) -> str:
    return settings.KYOKA_SITE_URL.rstrip("/") + reverse(view_name, args=args)


def _dispute_summary(dispute: Dispute) -> str:
    works = ", ".join(
        f"{link.work.title} ({link.work.owner.name})" for link in _dispute_links(dispute)
    )
    return _(
        "Dispute: %(id)s\nKind: %(kind)s\nClaimant: %(claimant)s\nRespondent: %(respondent)s\n"
        "Works: %(works)s\n"
    ) % {
        "id": dispute.pk,
        "kind": dispute.get_kind_display(),
        "claimant": dispute.claimant.name,
        "respondent": dispute.respondent.name,
        "works": works or "-",
    }


def _load_dispute(dispute_id: uuid.UUID | str) -> Dispute:
    return Dispute.objects.select_related("claimant", "respondent").get(pk=dispute_id)


def _dispute_links(dispute: Dispute):
    return dispute.dispute_works.select_related("work__owner").order_by("side", "work__title")


def notify_dispute_opened(*, dispute_id: uuid.UUID | str) -> int:
    """Tell the respondent of a new dispute; when Kyoka opened it, the claimant too."""
    dispute = _load_dispute(dispute_id)
    automatic = dispute.conflict_key is not None

    def to_respondent() -> tuple[str, str]:
        if automatic:
            opening = _(
                "Kyoka found that a registration of your organisation matches a work another "
                "organisation registered earlier, and opened an ownership dispute. While it is "
                "open, checks on these works answer 'disputed'. A reviewer will look at both "
                "sides; you can add comments and evidence.\n\n"
            )
        else:
            opening = _(
                "A dispute has been opened about your organisation's works on Kyoka. While it is "
                "open, checks on these works answer 'disputed'. You can answer it with comments "
                "and evidence.\n\n"
            )
        subject = _("Kyoka: a dispute was opened against %(org)s") % {"org": dispute.respondent.name}
        return subject, opening + _dispute_summary(dispute) + "\n" + dispute.statement

    def to_claimant() -> tuple[str, str]:
        subject = _("Kyoka: a registration conflicts with a work of %(org)s") % {"org": dispute.claimant.name}
        body = _(
            "Another organisation registered content that matches one of your works. "
            "Kyoka opened an ownership dispute; a reviewer will decide. You can add "
            "comments and evidence.\n\n"
        ) + _dispute_summary(dispute)
        return subject, body

    sent = _send([dispute.respondent], to_respondent)
    if automatic:
        sent += _send([dispute.claimant], to_claimant)
    return sent


def notify_dispute_info_requested(*, dispute_event_id: int) -> int:
    """Tell the party a reviewer asked for information, with the question."""
    event = DisputeEvent.objects.select_related(
        "dispute__claimant", "dispute__respondent", "organization"
    ).get(pk=dispute_event_id)
    dispute = event.dispute
    asked = [event.organization] if event.organization else [dispute.claimant, dispute.respondent]

    def build() -> tuple[str, str]:
        body = _(
            "A Kyoka reviewer asks for more information about a dispute:\n\n%(question)s\n\n"
        ) % {"question": event.message} + _dispute_summary(dispute)
        return _("Kyoka: information requested on a dispute"), body

    return sum(_send([organization], build) for organization in asked)


def notify_dispute_decided(*, dispute_id: uuid.UUID | str) -> int:
    """Tell both parties how a dispute ended and why."""
    dispute = _load_dispute(dispute_id)

    def build() -> tuple[str, str]:
        outcome = dispute.get_status_display()
        body = _("The dispute has been closed: %(outcome)s.\n\n") % {"outcome": outcome}
        if dispute.decision_reason:
            body += _("Reason: %(reason)s\n\n") % {"reason": dispute.decision_reason}
        if dispute.remedy:
            body += _("Effect: %(remedy)s\n\n") % {"remedy": dispute.get_remedy_display()}
        body += _dispute_summary(dispute)
        return _("Kyoka: dispute %(outcome)s") % {"outcome": outcome.lower()}, body

    return sum(_send([organization], build) for organization in (dispute.claimant, dispute.respondent))


def notify_verification_decided(*, verification_request_id: int) -> int:
    """Tell an organisation whether reviewers verified it, and why not when they did not."""
    request = VerificationRequest.objects.select_related("organization").get(pk=verification_request_id)

    def build() -> tuple[str, str]:
        name = {"org": request.organization.name}
        if request.status == VerificationRequest.Status.VERIFIED:
            return (_("Kyoka: %(org)s is verified") % name,
                    _("Reviewers verified your organisation. From now on its grants count.\n"))
        return (
            _("Kyoka: verification of %(org)s was not accepted") % name,
            _("Reviewers could not verify your organisation.\n\nReason: %(reason)s\n")
            % {"reason": request.decision_reason},
        )

    return _send([request.organization], build)


def _load_permission_request(permission_request_id: uuid.UUID | str) -> PermissionRequest:
    return PermissionRequest.objects.select_related("requester", "rightsholder", "work").get(pk=permission_request_id)


def notify_permission_request_received(*, permission_request_id: uuid.UUID | str) -> int:
    """Tell a rightsholder that an AI developer asks for permission."""
    request = _load_permission_request(permission_request_id)

    def build() -> tuple[str, str]:
        subject = _("Kyoka: %(requester)s asks for permission") % {"requester": request.requester.name}
        body = _(
            "%(requester)s asks %(rightsholder)s for permission.\n\n"
            "Work: %(work)s\nPurposes: %(purposes)s\n"
            "Territories: %(territories)s\nContexts: %(contexts)s\n\n%(message)s\n"
        ) % {
            "requester": request.requester.name,
            "rightsholder": request.rightsholder.name,
            "work": request.work.title if request.work else _("the whole catalog"),
            "purposes": ", ".join(request.purposes),
            "territories": ", ".join(request.territories) or _("worldwide"),
            "contexts": ", ".join(request.contexts) or _("any"),
            "message": request.message,
        }
        return subject, body

    return _send([request.rightsholder], build)


def notify_permission_request_answered(*, permission_request_id: uuid.UUID | str) -> int:
    """Tell the AI developer whether its request was accepted (a grant issued) or declined."""
    request = _load_permission_request(permission_request_id)

    def build() -> tuple[str, str]:
        outcome = request.get_status_display().lower()
        subject = _("Kyoka: %(rightsholder)s answered your request: %(outcome)s") % {
            "rightsholder": request.rightsholder.name, "outcome": outcome,
        }
        body = _("Your permission request to %(rightsholder)s was %(outcome)s.\n\nWork: %(work)s\n") % {
            "rightsholder": request.rightsholder.name,
            "outcome": outcome,
            "work": request.work.title if request.work else _("the whole catalog"),
        }
        if request.grant_id:
            body += _("Grant: %(grant)s\n") % {"grant": request.grant_id}
        if request.response:
            body += "\n" + request.response + "\n"
        return subject, body

    return _send([request.requester], build)


# --- Accounts ------------------------------------------------------------------------------------

def _user(user_id: int):
    from django.contrib.auth import get_user_model

    return get_user_model().objects.select_related("kyoka_profile").get(pk=user_id)


def _language_of(user) -> str:
    profile = getattr(user, "kyoka_profile", None)
    return (profile.language if profile else "") or settings.LANGUAGE_CODE


def notify_email_confirmation(*, user_id: int) -> int:
    """Send the link that confirms a new account's address."""
    from registry.services.accounts import email_confirmation_token

    user = _user(user_id)
    link = _link("web:email_confirm", email_confirmation_token(user))

    def build() -> tuple[str, str]:
        return _("Kyoka: confirm your email address"), _(
            "Welcome to Kyoka. Confirm that this address is yours to start using your account:\n\n"
            "%(link)s\n\nThe link works for %(days)s days. If you did not sign up, ignore this message."
        ) % {"link": link, "days": settings.KYOKA_EMAIL_CONFIRMATION_DAYS}

    return _send_to(user.email, _language_of(user), build)


def notify_signup_existing_account(*, user_id: int, language: str = "") -> int:
    """Someone signed up with an address that has an account: tell its owner, not the visitor."""
    user = _user(user_id)
    login, reset = _link("web:login"), _link("web:password_reset")

    def build() -> tuple[str, str]:
        return _("Kyoka: someone tried to sign up with your address"), _(
            "Someone (perhaps you) tried to create a Kyoka account with this address, which already "
            "has one. Log in at %(login)s, or choose a new password at %(reset)s. If it was not you, "
            "ignore this message: nothing has changed."
        ) % {"login": login, "reset": reset}

    # The account's own language; the visitor's only when the account has none.
    profile = getattr(user, "kyoka_profile", None)
    return _send_to(user.email, (profile.language if profile else "") or language or settings.LANGUAGE_CODE, build)


def notify_invitation(*, invitation_id: str) -> int:
    """Send an invitation's link to its address (in the invitee's language when they have an account)."""
    from django.contrib.auth import get_user_model

    from registry.services.accounts import invitation_token

    invitation = Invitation.objects.select_related("organization", "invited_by").get(pk=invitation_id)
    if invitation.status != Invitation.Status.PENDING:
        return 0
    account = get_user_model().objects.select_related("kyoka_profile").filter(username=invitation.email).first()
    link = _link("web:invitation", invitation_token(invitation))

    def build() -> tuple[str, str]:
        inviter = invitation.invited_by.email if invitation.invited_by else _("An owner")
        return _("Kyoka: you are invited to join %(org)s") % {"org": invitation.organization.name}, _(
            "%(inviter)s invites you to join %(org)s on Kyoka as %(role)s.\n\n"
            "Accept or decline the invitation here:\n%(link)s\n\n"
            "The invitation expires on %(expires)s. Nothing happens unless you accept it."
        ) % {
            "inviter": inviter, "org": invitation.organization.name,
            "role": Membership.Role(invitation.role).label, "link": link,
            "expires": invitation.expires_at.strftime("%Y-%m-%d %H:%M UTC"),
        }

    return _send_to(invitation.email, _language_of(account) if account else settings.LANGUAGE_CODE, build)


# The notifications a task may run, by name (the name is what travels through the broker).
NOTIFICATIONS: dict[str, Callable[..., int]] = {
    notify.__name__: notify
    for notify in (
        notify_dispute_opened, notify_dispute_info_requested, notify_dispute_decided, notify_verification_decided,
        notify_permission_request_received, notify_permission_request_answered,
        notify_email_confirmation, notify_signup_existing_account, notify_invitation,
    )
}
