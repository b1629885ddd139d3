"""Emails to organisations through Django's email backend (console by default; SMTP: EMAIL_URL).

Services call these after their transaction commits, never inside it, so nobody is told about
a change that then rolled back:

    transaction.on_commit(partial(notify_dispute_opened, dispute_id=dispute.pk), robust=True)

`robust=True` because the change is already committed: a mail server that is down must not
turn a successful request into an error. Arguments are ids (JSON primitives), so any of these
can become a Celery task without changing its callers' meaning.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Iterable
from functools import partial
from typing import Any

from django.conf import settings
from django.core.mail import send_mass_mail
from django.db import transaction
from django.utils import translation
from django.utils.translation import gettext as _

from registry.models import (
    Dispute,
    DisputeEvent,
    Membership,
    Organization,
    PermissionRequest,
    VerificationRequest,
)

logger = logging.getLogger(__name__)

# Who hears about an organisation's disputes and requests: the people who can act on them.
NOTIFIED_ROLES = (Membership.Role.OWNER, Membership.Role.MANAGER)


def notify_after_commit(notify: Callable[..., Any], **ids: Any) -> None:
    """Send a notification once the current transaction commits (at once outside one)."""
    transaction.on_commit(partial(notify, **ids), robust=True)


def organization_recipients(organizations: Iterable[Organization]) -> list[str]:
    """Owners' and managers' addresses, then each organisation's contact address; no repeats."""
    organizations = list(organizations)
    emails = (
        Membership.objects.filter(
            organization__in=organizations, role__in=NOTIFIED_ROLES, user__is_active=True
        )
        .exclude(user__email="")
        .order_by("organization_id", "created_at")
        .values_list("user__email", flat=True)
    )
    contacts = [o.contact_email for o in organizations if o.contact_email]
    return list(dict.fromkeys([*emails, *contacts]))


def _send(messages: list[tuple[str, str, list[str]]]) -> int:
    """Send (subject, body, recipients) messages: one email per recipient, so no address leaks.

    In the site's default language: the recipients' own is not known yet.
    """
    prepared = [
        (subject, body, settings.DEFAULT_FROM_EMAIL, [recipient])
        for subject, body, recipients in messages
        for recipient in recipients
    ]
    if not prepared:
        return 0
    return send_mass_mail(prepared, fail_silently=False)


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
    with translation.override(settings.LANGUAGE_CODE):
        dispute = _load_dispute(dispute_id)
        summary = _dispute_summary(dispute)
        automatic = dispute.conflict_key is not None
        to_respondent = _(
            "A dispute has been opened about your organisation's works on Kyoka. While it is "
            "open, checks on these works answer 'disputed'. You can answer it with comments "
            "and evidence.\n\n"
        )
        if automatic:
            to_respondent = _(
                "Kyoka found that a registration of your organisation matches a work another "
                "organisation registered earlier, and opened an ownership dispute. While it is "
                "open, checks on these works answer 'disputed'. A reviewer will look at both "
                "sides; you can add comments and evidence.\n\n"
            )
        messages = [
            (
                _("Kyoka: a dispute was opened against %(org)s") % {"org": dispute.respondent.name},
                to_respondent + summary + "\n" + dispute.statement,
                organization_recipients([dispute.respondent]),
            )
        ]
        if automatic:
            messages.append(
                (
                    _("Kyoka: a registration conflicts with a work of %(org)s")
                    % {"org": dispute.claimant.name},
                    _(
                        "Another organisation registered content that matches one of your works. "
                        "Kyoka opened an ownership dispute; a reviewer will decide. You can add "
                        "comments and evidence.\n\n"
                    )
                    + summary,
                    organization_recipients([dispute.claimant]),
                )
            )
        return _send(messages)


def notify_dispute_info_requested(*, dispute_event_id: int) -> int:
    """Tell the party a reviewer asked for information, with the question."""
    with translation.override(settings.LANGUAGE_CODE):
        event = DisputeEvent.objects.select_related(
            "dispute__claimant", "dispute__respondent", "organization"
        ).get(pk=dispute_event_id)
        dispute = event.dispute
        both = [dispute.claimant, dispute.respondent]
        asked = [event.organization] if event.organization else both
        body = _(
            "A Kyoka reviewer asks for more information about a dispute:\n\n%(question)s\n\n"
        ) % {"question": event.message} + _dispute_summary(dispute)
        subject = _("Kyoka: information requested on a dispute")
        return _send([(subject, body, organization_recipients([org])) for org in asked])


def notify_dispute_decided(*, dispute_id: uuid.UUID | str) -> int:
    """Tell both parties how a dispute ended and why."""
    with translation.override(settings.LANGUAGE_CODE):
        dispute = _load_dispute(dispute_id)
        outcome = dispute.get_status_display()
        body = _("The dispute has been closed: %(outcome)s.\n\n") % {"outcome": outcome}
        if dispute.decision_reason:
            body += _("Reason: %(reason)s\n\n") % {"reason": dispute.decision_reason}
        if dispute.remedy:
            body += _("Effect: %(remedy)s\n\n") % {"remedy": dispute.get_remedy_display()}
        body += _dispute_summary(dispute)
        subject = _("Kyoka: dispute %(outcome)s") % {"outcome": outcome.lower()}
        parties = (dispute.claimant, dispute.respondent)
        return _send([(subject, body, organization_recipients([org])) for org in parties])


def notify_verification_decided(*, verification_request_id: int) -> int:
    """Tell an organisation whether reviewers verified it, and why not when they did not."""
    with translation.override(settings.LANGUAGE_CODE):
        request = VerificationRequest.objects.select_related("organization").get(
            pk=verification_request_id
        )
        name = {"org": request.organization.name}
        if request.status == VerificationRequest.Status.VERIFIED:
            subject = _("Kyoka: %(org)s is verified") % name
            body = _("Reviewers verified your organisation. From now on its grants count.\n")
        else:
            subject = _("Kyoka: verification of %(org)s was not accepted") % name
            body = _("Reviewers could not verify your organisation.\n\nReason: %(reason)s\n") % {
                "reason": request.decision_reason
            }
        return _send([(subject, body, organization_recipients([request.organization]))])


def notify_permission_request_received(*, permission_request_id: uuid.UUID | str) -> int:
    """Tell a rightsholder that an AI developer asks for permission."""
    with translation.override(settings.LANGUAGE_CODE):
        request = PermissionRequest.objects.select_related("requester", "rightsholder", "work").get(
            pk=permission_request_id
        )
        subject = _("Kyoka: %(requester)s asks for permission") % {
            "requester": request.requester.name
        }
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
        return _send([(subject, body, organization_recipients([request.rightsholder]))])


def notify_permission_request_answered(*, permission_request_id: uuid.UUID | str) -> int:
    """Tell the AI developer whether its request was accepted (a grant issued) or declined."""
    with translation.override(settings.LANGUAGE_CODE):
        request = PermissionRequest.objects.select_related("requester", "rightsholder", "work").get(
            pk=permission_request_id
        )
        outcome = request.get_status_display()
        subject = _("Kyoka: %(rightsholder)s answered your request: %(outcome)s") % {
            "rightsholder": request.rightsholder.name,
            "outcome": outcome.lower(),
        }
        body = _(
            "Your permission request to %(rightsholder)s was %(outcome)s.\n\nWork: %(work)s\n"
        ) % {
            "rightsholder": request.rightsholder.name,
            "outcome": outcome.lower(),
            "work": request.work.title if request.work else _("the whole catalog"),
        }
        if request.grant_id:
            body += _("Grant: %(grant)s\n") % {"grant": request.grant_id}
        if request.response:
            body += "\n" + request.response + "\n"
        return _send([(subject, body, organization_recipients([request.requester]))])
