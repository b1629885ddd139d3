"""Permission requests: an AI developer asks a rightsholder for a grant; the rightsholder answers.

A request permits nothing by itself: only the grant that accepting it issues does.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from registry.access import Actor, authorize
from registry.exceptions import InvalidTransition, ValidationFailed
from registry.models import Grant, Membership, Organization, PermissionRequest, Work
from registry.services.audit import audit_append
from registry.services.grants import do_grant_issue, grant_terms_validate
from registry.services.notifications import (
    notify_after_commit,
    notify_permission_request_answered,
    notify_permission_request_received,
)


def permission_request_create(*, actor: Actor, requester: Organization, **terms: Any) -> PermissionRequest:
    authorize(actor, requester, role=Membership.Role.MANAGER, scope="checks")
    return do_permission_request_create(acting=actor, requester=requester, **terms)


@transaction.atomic
def do_permission_request_create(
    *,
    acting: Actor,
    requester: Organization,
    rightsholder: Organization,
    purposes: Sequence[str],
    work: Work | None = None,
    territories: Sequence[str] = (),
    contexts: Sequence[str] = (),
    message: str = "",
) -> PermissionRequest:
    """Ask `rightsholder` for a grant on one of its works (with its descendants) or its whole catalog."""
    if requester.kind != Organization.Kind.AI_DEVELOPER:
        raise ValidationFailed(_("Only AI developer organisations ask for permission."))
    errors = grant_terms_validate(
        purposes=purposes, territories=territories, contexts=contexts,
        valid_from=timezone.now(), valid_until=None, licence_url="",
    )
    limit = PermissionRequest._meta.get_field("message").max_length
    if len(message or "") > limit:
        errors["message"] = [_("At most %(limit)d characters.") % {"limit": limit}]
    if rightsholder.kind != Organization.Kind.RIGHTSHOLDER:
        errors["rightsholder"] = [_("Permission is asked of a rightsholder organisation.")]
    elif work is not None and work.owner_id != rightsholder.pk:
        errors["work"] = [_("This work is not registered by that rightsholder.")]
    elif work is not None and work.status != Work.Status.ACTIVE:
        errors["work"] = [_("This work is withdrawn.")]
    if errors:
        raise ValidationFailed(_("The permission request is not valid."), fields=errors)
    permission_request = PermissionRequest.objects.create(
        requester=requester, rightsholder=rightsholder, work=work, purposes=sorted(set(purposes)),
        territories=sorted(set(territories)), contexts=sorted(set(contexts)), message=message,
        created_by=acting.user_or_none,
    )
    audit_append(
        actor=acting, action="permission_request.create", object_type="permission_request",
        object_id=str(permission_request.pk), organization=requester,
        data={
            "rightsholder": rightsholder.slug, "work": str(work.pk) if work else None,
            "purposes": permission_request.purposes, "territories": permission_request.territories,
            "contexts": permission_request.contexts,
        },
    )
    notify_after_commit(notify_permission_request_received, permission_request_id=permission_request.pk)
    return permission_request


def _lock_pending(permission_request: PermissionRequest) -> PermissionRequest:
    # Locked so two managers answering at once cannot both act: the second sees it decided.
    locked = (
        PermissionRequest.objects.select_for_update(of=("self",))
        .select_related("requester", "rightsholder", "work")
        .get(pk=permission_request.pk)
    )
    if locked.status != PermissionRequest.Status.PENDING:
        status = str(locked.get_status_display()).lower()
        raise InvalidTransition(_("This request is already %(status)s.") % {"status": status})
    return locked


def permission_request_accept(
    *, actor: Actor, permission_request: PermissionRequest, **terms: Any
) -> PermissionRequest:
    authorize(actor, permission_request.rightsholder, role=Membership.Role.MANAGER, scope="grants:write")
    return do_permission_request_accept(acting=actor, permission_request=permission_request, **terms)


@transaction.atomic
def do_permission_request_accept(
    *,
    acting: Actor,
    permission_request: PermissionRequest,
    response: str = "",
    scope: str | None = None,
    work: Work | None = None,
    purposes: Sequence[str] | None = None,
    territories: Sequence[str] | None = None,
    contexts: Sequence[str] | None = None,
    valid_from: datetime | None = None,
    valid_until: datetime | None = None,
    attribution: str = "",
    licence_url: str = "",
    compensation: str = "",
) -> PermissionRequest:
    """Accept: issue a grant to the requester and close the request, both or neither.

    The grant takes the requested terms unless the rightsholder passes its own. Its scope is
    the requested work (with its descendants), or the whole catalog when no work was named.
    """
    permission_request = _lock_pending(permission_request)
    work = work or permission_request.work
    scope = scope or (Grant.Scope.WORK if work is not None else Grant.Scope.CATALOG)
    if scope == Grant.Scope.CATALOG:
        work = None
    grant = do_grant_issue(
        acting=acting, grantor=permission_request.rightsholder, scope=scope, work=work,
        licensee=permission_request.requester,
        purposes=permission_request.purposes if purposes is None else purposes,
        territories=permission_request.territories if territories is None else territories,
        contexts=permission_request.contexts if contexts is None else contexts,
        valid_from=valid_from, valid_until=valid_until,
        attribution=attribution, licence_url=licence_url, compensation=compensation,
    )
    permission_request.status = PermissionRequest.Status.ACCEPTED
    permission_request.grant = grant
    _record_answer(acting=acting, permission_request=permission_request, response=response)
    return permission_request


def permission_request_decline(
    *, actor: Actor, permission_request: PermissionRequest, response: str = ""
) -> PermissionRequest:
    authorize(actor, permission_request.rightsholder, role=Membership.Role.MANAGER, scope="grants:write")
    return do_permission_request_decline(acting=actor, permission_request=permission_request, response=response)


@transaction.atomic
def do_permission_request_decline(
    *, acting: Actor, permission_request: PermissionRequest, response: str = ""
) -> PermissionRequest:
    """Decline: the request is closed and nothing is granted."""
    permission_request = _lock_pending(permission_request)
    permission_request.status = PermissionRequest.Status.DECLINED
    _record_answer(acting=acting, permission_request=permission_request, response=response)
    return permission_request


def _record_answer(*, acting: Actor, permission_request: PermissionRequest, response: str) -> None:
    permission_request.decided_by = acting.user_or_none
    permission_request.decided_at = timezone.now()
    permission_request.response = response
    permission_request.save(update_fields=["status", "grant", "decided_by", "decided_at", "response"])
    audit_append(
        actor=acting, action=f"permission_request.{permission_request.status}", object_type="permission_request",
        object_id=str(permission_request.pk), organization=permission_request.rightsholder,
        data={
            "status": {"old": PermissionRequest.Status.PENDING, "new": permission_request.status},
            "requester": permission_request.requester.slug,
            "grant": str(permission_request.grant_id) if permission_request.grant_id else None,
            "response": response,
        },
    )
    notify_after_commit(notify_permission_request_answered, permission_request_id=permission_request.pk)
