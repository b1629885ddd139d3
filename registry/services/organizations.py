"""Organisations and their members. Each public function authorises, then calls its core `do_*`."""

from __future__ import annotations

from django.contrib.auth.models import AbstractBaseUser
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from registry.access import Actor, authorize, authorize_reviewer
from registry.exceptions import Conflict, PermissionDenied, ValidationFailed
from registry.matching.slugs import slug_base
from registry.models import Membership, Organization, VerificationRequest
from registry.services.audit import audit_append
from registry.services.notifications import notify_after_commit, notify_verification_decided


def _unique_slug(name: str) -> str:
    base = slug_base(name)
    slug, n = base, 1
    while Organization.objects.filter(slug=slug).exists():
        n += 1
        slug = f"{base}-{n}"
    return slug


def organization_create(
    *, actor: Actor, name: str, kind: str, owner: AbstractBaseUser, slug: str | None = None, **profile: str
) -> Organization:
    """A signed-in person creates an organisation and becomes its owner; a reviewer may name another owner."""
    person = actor.user_or_none
    if person is None or not person.is_active or (person.pk != owner.pk and not actor.is_reviewer):
        raise PermissionDenied(_("You can only create an organisation that you own."))
    return do_organization_create(acting=actor, name=name, kind=kind, owner=owner, slug=slug, **profile)


@transaction.atomic
def do_organization_create(
    *, acting: Actor, name: str, kind: str, owner: AbstractBaseUser, slug: str | None = None, **profile: str
) -> Organization:
    """Create an organisation with `owner` as its first owner. It starts unverified."""
    name = name.strip()
    if not name:
        raise ValidationFailed(_("An organisation needs a name."), fields={"name": [_("This field is required.")]})
    if kind not in Organization.Kind.values:
        raise ValidationFailed(
            _("Unknown organisation kind '%(kind)s'.") % {"kind": kind},
            fields={"kind": [_("Unknown kind.")]},
        )
    try:
        with transaction.atomic():
            organization = Organization.objects.create(
                name=name, kind=kind, slug=slug or _unique_slug(name), **profile
            )
    except IntegrityError as exc:
        raise Conflict(_("The slug '%(slug)s' is taken.") % {"slug": slug}) from exc
    Membership.objects.create(user=owner, organization=organization, role=Membership.Role.OWNER)
    audit_append(
        actor=acting, action="organization.create", object_type="organization", object_id=str(organization.pk),
        organization=organization, data={"name": name, "kind": kind, "owner": owner.get_username()},
    )
    return organization


def organization_verify(*, actor: Actor, organization: Organization) -> Organization:
    authorize_reviewer(actor)
    return do_organization_verify(acting=actor, organization=organization)


@transaction.atomic
def do_organization_verify(*, acting: Actor, organization: Organization) -> Organization:
    """Mark an organisation verified: from the next check on, its grants (or its requests) count."""
    organization = Organization.objects.select_for_update().get(pk=organization.pk)
    if organization.verified_at is not None:
        return organization
    organization.verified_at = timezone.now()
    organization.verified_by = acting.user_or_none
    organization.save(update_fields=["verified_at", "verified_by"])
    # A request still waiting is answered by the verification itself (however it was reached).
    pending = list(
        VerificationRequest.objects.select_for_update().filter(
            organization=organization, status=VerificationRequest.Status.PENDING
        )
    )
    for request in pending:
        request.status = VerificationRequest.Status.VERIFIED
        request.decided_at = organization.verified_at
        request.decided_by = acting.user_or_none
        request.save(update_fields=["status", "decided_at", "decided_by"])
        notify_after_commit(notify_verification_decided, verification_request_id=request.pk)
    audit_append(
        actor=acting, action="organization.verify", object_type="organization", object_id=str(organization.pk),
        organization=organization,
        data={"verified_at": {"old": None, "new": organization.verified_at}, "requests": [r.pk for r in pending]},
    )
    return organization


def membership_add(
    *, actor: Actor, organization: Organization, user: AbstractBaseUser, role: str
) -> Membership:
    """Add a member, or change the role of one who is already there. Owners only."""
    authorize(actor, organization, role=Membership.Role.OWNER, scope="members")
    return do_membership_add(acting=actor, organization=organization, user=user, role=role)


@transaction.atomic
def do_membership_add(
    *, acting: Actor, organization: Organization, user: AbstractBaseUser, role: str
) -> Membership:
    if role not in Membership.Role.values:
        raise ValidationFailed(_("Unknown role '%(role)s'.") % {"role": role}, fields={"role": [_("Unknown role.")]})
    membership, created = Membership.objects.select_for_update().get_or_create(
        user=user, organization=organization, defaults={"role": role}
    )
    old_role = None if created else membership.role
    if not created and membership.role != role:
        if membership.role == Membership.Role.OWNER and not _other_owner_exists(membership):
            raise Conflict(_("An organisation must keep at least one owner."))
        membership.role = role
        membership.save(update_fields=["role"])
    audit_append(
        actor=acting, action="membership.set", object_type="membership", object_id=str(membership.pk),
        organization=organization, data={"user": user.get_username(), "role": role, "old_role": old_role},
    )
    return membership


def _other_owner_exists(membership: Membership) -> bool:
    return (
        Membership.objects.filter(organization=membership.organization, role=Membership.Role.OWNER)
        .exclude(pk=membership.pk)
        .exists()
    )
