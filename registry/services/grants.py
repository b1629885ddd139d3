"""Issuing and revoking grants. A grant is never edited: change = revoke + issue anew."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from django.core.exceptions import ValidationError as DjangoValidationError
from django.core.validators import URLValidator
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from registry.access import Actor, authorize, authorize_reviewer
from registry.exceptions import Conflict, ValidationFailed
from registry.models import Grant, Membership, Organization, Work
from registry.purposes import CONTEXTS, PURPOSES
from registry.services.audit import audit_append
from registry.territories import is_territory


def grant_terms_validate(
    *, purposes: Sequence[str], territories: Sequence[str], contexts: Sequence[str],
    valid_from: datetime, valid_until: datetime | None, licence_url: str,
) -> dict[str, list[str]]:
    errors: dict[str, list[str]] = {}
    if not purposes:
        errors["purposes"] = [_("At least one purpose is required.")]
    elif bad := [p for p in purposes if p not in PURPOSES]:
        errors["purposes"] = [_("Unknown purpose '%(purpose)s'.") % {"purpose": p} for p in bad]
    if bad := [t for t in territories if not isinstance(t, str) or not is_territory(t)]:
        errors["territories"] = [
            _("'%(territory)s' is not an ISO 3166-1 alpha-2 code.") % {"territory": t}
            for t in bad
        ]
    if bad := [c for c in contexts if c not in CONTEXTS]:
        errors["contexts"] = [_("Unknown context '%(context)s'.") % {"context": c} for c in bad]
    if valid_until is not None and valid_until <= valid_from:
        errors["valid_until"] = [_("Must be after valid_from.")]
    if licence_url:
        try:
            URLValidator(schemes=["http", "https"])(licence_url)
        except DjangoValidationError:
            errors["licence_url"] = [_("Not an http(s) URL.")]
    return errors


def grant_issue(*, actor: Actor, grantor: Organization, **terms: Any) -> Grant:
    """Issue a grant from `grantor` (a manager's, or a key with grants:write)."""
    authorize(actor, grantor, role=Membership.Role.MANAGER, scope="grants:write")
    return do_grant_issue(acting=actor, grantor=grantor, **terms)


@transaction.atomic
def do_grant_issue(
    *,
    acting: Actor,
    grantor: Organization,
    scope: str,
    purposes: Sequence[str],
    work: Work | None = None,
    licensee: Organization | None = None,
    territories: Sequence[str] = (),
    contexts: Sequence[str] = (),
    valid_from: datetime | None = None,
    valid_until: datetime | None = None,
    attribution: str = "",
    licence_url: str = "",
    compensation: str = "",
) -> Grant:
    """Issue a grant from `grantor`. It counts in checks only while the grantor is verified."""
    if grantor.kind != Organization.Kind.RIGHTSHOLDER:
        raise ValidationFailed(_("Only rightsholders issue grants."))
    valid_from = valid_from or timezone.now()
    territories = [t.upper() if isinstance(t, str) else t for t in territories]
    errors = grant_terms_validate(
        purposes=purposes, territories=territories, contexts=contexts,
        valid_from=valid_from, valid_until=valid_until, licence_url=licence_url,
    )
    if work is not None:
        # Lock the work so a withdrawal running at the same time cannot slip between check and insert.
        work = Work.objects.select_for_update().filter(pk=work.pk).first()
    if scope == Grant.Scope.WORK:
        if work is None:
            errors["work"] = [_("A work grant names its work.")]
        elif work.owner_id != grantor.pk:
            errors["work"] = [_("Grants can only be issued on your own works.")]
        elif work.status != Work.Status.ACTIVE:
            errors["work"] = [_("This work is withdrawn.")]
    elif scope == Grant.Scope.CATALOG:
        if work is not None:
            errors["work"] = [_("A catalog grant covers every work; leave work empty.")]
    else:
        errors["scope"] = [_("Must be 'work' or 'catalog'.")]
    if licensee is not None and licensee.kind != Organization.Kind.AI_DEVELOPER:
        errors["licensee"] = [_("The licensee must be an AI developer organisation.")]
    for name, value in (("attribution", attribution), ("compensation", compensation)):
        limit = Grant._meta.get_field(name).max_length
        if len(value or "") > limit:
            errors[name] = [_("At most %(limit)d characters.") % {"limit": limit}]
    if errors:
        raise ValidationFailed(_("The grant is not valid."), fields=errors)
    grant = Grant.objects.create(
        grantor=grantor, scope=scope, work=work, licensee=licensee,
        purposes=sorted(set(purposes)), territories=sorted(set(territories)),
        contexts=sorted(set(contexts)), valid_from=valid_from, valid_until=valid_until,
        attribution=attribution, licence_url=licence_url, compensation=compensation,
        issued_by=acting.user_or_none,
    )
    audit_append(
        actor=acting, action="grant.issue", object_type="grant", object_id=str(grant.pk),
        organization=grantor,
        data={
            "scope": scope, "work": str(work.pk) if work else None,
            "licensee": licensee.slug if licensee else None, "purposes": grant.purposes,
            "territories": grant.territories, "contexts": grant.contexts,
            "valid_from": valid_from.isoformat(), "valid_until": valid_until.isoformat() if valid_until else None,
        },
    )
    return grant


def grant_revoke(*, actor: Actor, grant: Grant, reason: str = "") -> Grant:
    """The grantor's managers (or its key with grants:write) revoke its grants."""
    authorize(actor, grant.grantor, role=Membership.Role.MANAGER, scope="grants:write")
    return do_grant_revoke(acting=actor, grant=grant, reason=reason)


def grant_revoke_by_reviewer(*, actor: Actor, grant: Grant, reason: str) -> Grant:
    """A reviewer revokes a grant found fraudulent outside a dispute; the audit row names them."""
    authorize_reviewer(actor)
    return do_grant_revoke(acting=actor, grant=grant, reason=reason)


@transaction.atomic
def do_grant_revoke(*, acting: Actor, grant: Grant, reason: str = "") -> Grant:
    """Revoke a grant. Checks made after this answer without it; earlier receipts stand."""
    grant = Grant.objects.select_for_update().get(pk=grant.pk)
    if grant.revoked_at is not None:
        raise Conflict(_("This grant is already revoked."))
    grant.revoked_at = timezone.now()
    grant.revoked_by = acting.user_or_none
    grant.revocation_reason = reason
    grant.save(update_fields=["revoked_at", "revoked_by", "revocation_reason"])
    audit_append(
        actor=acting, action="grant.revoke", object_type="grant", object_id=str(grant.pk),
        organization=grant.grantor, data={"revoked_at": {"old": None, "new": grant.revoked_at}, "reason": reason},
    )
    return grant
