"""Reading an AI developer's own checks: how much it asked, and what it was told."""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime

from django.db.models import Count, QuerySet, Sum
from django.db.models.functions import TruncDate

from registry.exceptions import NotFound
from registry.models import Check, Organization


def check_usage_daily(*, organization: Organization, since: datetime) -> list[dict]:
    """One row per UTC day since `since`, newest first: checks made, items asked, and the answers' totals.

    Days are UTC days, as the API quotas count them, whatever time zone the reader is in.
    """
    return list(
        Check.objects.filter(organization=organization, checked_at__gte=since)
        .annotate(day=TruncDate("checked_at", tzinfo=UTC))
        .values("day")
        .order_by("-day")
        .annotate(
            checks=Count("id"),
            items=Sum("item_count"),
            permitted=Sum("permitted_count"),
            not_permitted=Sum("not_permitted_count"),
            unregistered=Sum("unregistered_count"),
            disputed=Sum("disputed_count"),
            invalid=Sum("invalid_count"),
        )
    )


def check_list(*, organization: Organization) -> QuerySet[Check]:
    """The organisation's checks, newest first, with who made them."""
    return Check.objects.filter(organization=organization).select_related("api_key", "user").order_by("-checked_at")


# A check answered a moment ago may still be on its way into the table: its record is handed to
# PostgreSQL as the answer leaves and committed a millisecond or two later (decisions.run.PendingRecord).
RECORD_GRACE_SECONDS = 0.05


def check_get(*, organization: Organization, check_id: uuid.UUID | str) -> Check:
    """One of the organisation's checks; another organisation's is 'not found'.

    A miss looks once more after RECORD_GRACE_SECONDS, so that a client reading its receipt back
    right after the answer finds it.
    """
    checks = Check.objects.filter(pk=check_id, organization=organization)
    check = checks.first()
    if check is None:
        time.sleep(RECORD_GRACE_SECONDS)
        check = checks.first()
    if check is None:
        raise NotFound("No such check.")
    return check
