"""Reading grants: a grant is visible to the organisation that issued it and to its named licensee."""

from __future__ import annotations

import uuid
from datetime import datetime

from django.db.models import Q, QuerySet
from django.utils import timezone

from registry.exceptions import NotFound
from registry.models import Grant, Organization, Work


def _visible_to(organization: Organization) -> QuerySet[Grant]:
    return Grant.objects.filter(Q(grantor=organization) | Q(licensee=organization)).select_related(
        "grantor", "licensee"
    )


def grant_list(
    *,
    organization: Organization,
    work: uuid.UUID | None = None,
    in_force: bool | None = None,
    at: datetime | None = None,
) -> QuerySet[Grant]:
    """Grants the organisation issued, and grants made out to it by name.

    `in_force` keeps only the grants in force at `at` (default now), or, when False, only the others.
    """
    grants = _visible_to(organization)
    if work:
        grants = grants.filter(work_id=work)
    if in_force is not None:
        in_force_ids = Grant.objects.in_force(at=at or timezone.now()).values("pk")
        grants = grants.filter(pk__in=in_force_ids) if in_force else grants.exclude(pk__in=in_force_ids)
    return grants


def grant_get(*, organization: Organization, grant_id: uuid.UUID | str) -> Grant:
    grant = _visible_to(organization).filter(pk=grant_id).first()
    if grant is None:
        raise NotFound("No such grant.")
    return grant


def grants_covering_work(work: Work) -> QuerySet[Grant]:
    """The grants its owner issued that reach `work`: on it, on a work above it, or on the whole catalog.

    Whether each is in force is left to the caller (Grant.state_at), so revoked and expired
    grants stay visible on the work's page.
    """
    return (
        Grant.objects.filter(grantor_id=work.owner_id)
        .filter(Q(work_id__in=[*work.ancestor_ids, work.pk]) | Q(scope=Grant.Scope.CATALOG))
        .select_related("grantor", "licensee", "work")
        .order_by("-created_at")
    )
