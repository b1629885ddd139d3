"""Who a rightsholder is: organisations submit their identity, reviewers verify or reject it.

An unverified organisation's registrations count as registered, but its grants count for
nothing in checks; verification changes that from the next check on. Reviewers can also
suspend an organisation: its keys stop working, its members can only read, and its grants
stop counting until it is unsuspended.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.core.exceptions import ValidationError as DjangoValidationError
from django.core.validators import URLValidator, validate_email
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _
from stdnum.jp import cn as jp_cn

from registry.access import Actor, authorize, authorize_reviewer
from registry.exceptions import Conflict, InvalidTransition, ValidationFailed
from registry.models import Membership, Organization, VerificationRequest
from registry.services.audit import audit_append
from registry.services.evidence import Upload, evidence_errors, evidence_store
from registry.services.notifications import notify_after_commit, notify_verification_decided
from registry.services.organizations import do_organization_verify
from registry.territories import is_territory

PROFILE_FIELDS = ("legal_name", "registration_number", "country", "website", "contact_email")


def _profile_errors(profile: dict[str, str]) -> dict[str, list[str]]:
    errors: dict[str, list[str]] = {}
    if not profile["legal_name"]:
        errors["legal_name"] = [_("This field is required.")]
    if profile["country"] and not is_territory(profile["country"]):
        errors["country"] = [_("Not an ISO 3166-1 alpha-2 code.")]
    if profile["website"]:
        try:
            URLValidator(schemes=["http", "https"])(profile["website"])
        except DjangoValidationError:
            errors["website"] = [_("Not an http(s) URL.")]
    if profile["contact_email"]:
        try:
            validate_email(profile["contact_email"])
        except DjangoValidationError:
            errors["contact_email"] = [_("Not an email address.")]
    return errors


def verification_request_submit(*, actor: Actor, organization: Organization, **details: Any) -> VerificationRequest:
    # People only: no key scope covers an organisation's identity.
    authorize(actor, organization, role=Membership.Role.OWNER, scope="organization")
    return do_verification_request_submit(acting=actor, organization=organization, **details)


@transaction.atomic
def do_verification_request_submit(
    *,
    acting: Actor,
    organization: Organization,
    legal_name: str,
    registration_number: str = "",
    country: str = "",
    website: str = "",
    contact_email: str = "",
    evidence: Sequence[Upload] = (),
) -> VerificationRequest:
    """An owner states who the organisation is, with evidence, for reviewers to check.

    The organisation's profile takes the submitted details at once; the request keeps them
    as submitted. One request is pending at a time (a database constraint holds it).
    """
    profile = {
        "legal_name": legal_name.strip(),
        "registration_number": registration_number.strip(),
        "country": country.strip().upper(),
        "website": website.strip(),
        "contact_email": contact_email.strip(),
    }
    profile["registration_number"] = registration_number_normalize(
        country=profile["country"], number=profile["registration_number"])
    errors = _profile_errors(profile) | registration_number_errors(
        country=profile["country"], number=profile["registration_number"]) | verification_evidence_errors(evidence)
    if errors:
        raise ValidationFailed(_("The verification request is not valid."), fields=errors)
    organization = Organization.objects.select_for_update().get(pk=organization.pk)
    if organization.verified_at is not None:
        raise Conflict(_("This organisation is already verified."))
    if organization.verification_requests.filter(
        status=VerificationRequest.Status.PENDING
    ).exists():
        raise Conflict(_("A verification request is already waiting for review."))
    for field, value in profile.items():
        setattr(organization, field, value)
    organization.save(update_fields=list(PROFILE_FIELDS))
    request = VerificationRequest.objects.create(
        organization=organization, submitted_by=acting.user_or_none, **profile
    )
    names = evidence_store(
        actor=acting, organization=organization, evidence=evidence, verification_request=request
    )
    audit_append(
        actor=acting,
        action="organization.verification_submit",
        object_type="organization",
        object_id=str(organization.pk),
        organization=organization,
        data={**profile, "request": request.pk, "evidence": names},
    )
    return request


def _locked_pending(request: VerificationRequest) -> VerificationRequest:
    request = VerificationRequest.objects.select_for_update().get(pk=request.pk)
    if request.status != VerificationRequest.Status.PENDING:
        raise InvalidTransition(
            _("This verification request is already %(status)s.")
            % {"status": str(request.get_status_display()).lower()}
        )
    return request


def verification_request_approve(
    *, actor: Actor, verification_request: VerificationRequest, note: str = ""
) -> VerificationRequest:
    authorize_reviewer(actor)
    return do_verification_request_approve(acting=actor, verification_request=verification_request, note=note)


@transaction.atomic
def do_verification_request_approve(
    *, acting: Actor, verification_request: VerificationRequest, note: str = ""
) -> VerificationRequest:
    """A reviewer accepts the evidence: the organisation is verified (its grants count)."""
    request = _locked_pending(verification_request)
    request.status = VerificationRequest.Status.VERIFIED
    request.decided_at = timezone.now()
    request.decided_by = acting.user_or_none
    request.decision_reason = note.strip()
    request.save(update_fields=["status", "decided_at", "decided_by", "decision_reason"])
    do_organization_verify(acting=acting, organization=request.organization)
    notify_after_commit(notify_verification_decided, verification_request_id=request.pk)
    return request


def verification_request_reject(
    *, actor: Actor, verification_request: VerificationRequest, reason: str
) -> VerificationRequest:
    authorize_reviewer(actor)
    return do_verification_request_reject(acting=actor, verification_request=verification_request, reason=reason)


@transaction.atomic
def do_verification_request_reject(
    *, acting: Actor, verification_request: VerificationRequest, reason: str
) -> VerificationRequest:
    """A reviewer refuses, saying why; the organisation may submit again."""
    reason = reason.strip()
    if not reason:
        raise ValidationFailed(_("Say why."), fields={"reason": [_("This field is required.")]})
    request = _locked_pending(verification_request)
    request.status = VerificationRequest.Status.REJECTED
    request.decided_at = timezone.now()
    request.decided_by = acting.user_or_none
    request.decision_reason = reason
    request.save(update_fields=["status", "decided_at", "decided_by", "decision_reason"])
    audit_append(
        actor=acting,
        action="organization.verification_reject",
        object_type="organization",
        object_id=str(request.organization_id),
        organization=request.organization,
        data={"request": request.pk, "reason": reason},
    )
    notify_after_commit(notify_verification_decided, verification_request_id=request.pk)
    return request


def organization_suspend(*, actor: Actor, organization: Organization, reason: str) -> Organization:
    authorize_reviewer(actor)
    return do_organization_suspend(acting=actor, organization=organization, reason=reason)


@transaction.atomic
def do_organization_suspend(*, acting: Actor, organization: Organization, reason: str) -> Organization:
    """Stop an organisation at once: keys refused, members read-only, grants not counting."""
    reason = reason.strip()
    if not reason:
        raise ValidationFailed(_("Say why."), fields={"reason": [_("This field is required.")]})
    organization = Organization.objects.select_for_update().get(pk=organization.pk)
    if organization.suspended_at is not None:
        raise Conflict(_("This organisation is already suspended."))
    organization.suspended_at = timezone.now()
    organization.save(update_fields=["suspended_at"])
    audit_append(
        actor=acting,
        action="organization.suspend",
        object_type="organization",
        object_id=str(organization.pk),
        organization=organization,
        data={"suspended_at": {"old": None, "new": organization.suspended_at}, "reason": reason},
    )
    return organization


def organization_unsuspend(*, actor: Actor, organization: Organization, reason: str = "") -> Organization:
    authorize_reviewer(actor)
    return do_organization_unsuspend(acting=actor, organization=organization, reason=reason)


@transaction.atomic
def do_organization_unsuspend(*, acting: Actor, organization: Organization, reason: str = "") -> Organization:
    """Lift a suspension: from the next request and check on, the organisation acts again."""
    organization = Organization.objects.select_for_update().get(pk=organization.pk)
    if organization.suspended_at is None:
        raise Conflict(_("This organisation is not suspended."))
    suspended_at = organization.suspended_at
    organization.suspended_at = None
    organization.save(update_fields=["suspended_at"])
    audit_append(
        actor=acting,
        action="organization.unsuspend",
        object_type="organization",
        object_id=str(organization.pk),
        organization=organization,
        data={"suspended_at": {"old": suspended_at, "new": None}, "reason": reason.strip()},
    )
    return organization


# --- what a verification request must hold beyond the profile ------------------------------

# Evidence a reviewer opens: documents and images, recognised by their first bytes, not their names.
EVIDENCE_SIGNATURES = (
    (b"%PDF-", "application/pdf"),
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"GIF87a", "image/gif"),
    (b"GIF89a", "image/gif"),
)


def evidence_media_type(fileobj) -> str | None:
    """The evidence file's type from its first bytes (PDF, PNG, JPEG, GIF, WebP), or None."""
    head = fileobj.read(16)
    fileobj.seek(0)
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "image/webp"
    return next((media_type for magic, media_type in EVIDENCE_SIGNATURES if head.startswith(magic)), None)


def verification_evidence_errors(evidence: Sequence[Upload]) -> dict[str, list[str]]:
    """evidence_errors (count and size), and each file a PDF or an image."""
    problems = list(evidence_errors(evidence).get("evidence", []))
    problems += [
        _("%(name)s: not a PDF or an image (PNG, JPEG, GIF, WebP).") % {"name": name}
        for fileobj, name in evidence if evidence_media_type(fileobj) is None
    ]
    return {"evidence": problems} if problems else {}


def registration_number_normalize(*, country: str, number: str) -> str:
    """A Japanese corporate number (法人番号) without its separators; other numbers as given."""
    if country == "JP" and number:
        return jp_cn.compact(number)
    return number


def registration_number_errors(*, country: str, number: str) -> dict[str, list[str]]:
    """A Japanese organisation's registration number is its 法人番号: 13 digits, the first a check digit."""
    if country == "JP" and number and not jp_cn.is_valid(number):
        return {"registration_number": [
            _("Not a valid corporate number (法人番号): 13 digits, the first a check digit.")]}
    return {}
