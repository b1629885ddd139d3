"""Who checked my works: the rightsholder's side of every check, read from WorkAccess.

Every query is filtered on the owner (and the time window) first, which the
(owner, checked_at) index serves; the counts are computed in the database, never per row.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from django.db.models import Count, Max, Q, QuerySet
from django.db.models.functions import TruncDate

from registry.decisions.vocabulary import Decision
from registry.models import Organization, WorkAccess

# The answers a matched work can get (unregistered and invalid items match no work).
ACCESS_DECISIONS = (Decision.PERMITTED, Decision.NOT_PERMITTED, Decision.DISPUTED)
TOP_REQUESTERS = 10


@dataclass(frozen=True)
class ActivityWindow:
    organization: Organization
    since: datetime
    until: datetime
    work: uuid.UUID | None = None


def work_access_list(*, window: ActivityWindow) -> QuerySet[WorkAccess]:
    """Each time a check matched one of the organisation's works, newest first."""
    accesses = WorkAccess.objects.filter(
        owner=window.organization, checked_at__gte=window.since, checked_at__lt=window.until
    )
    if window.work is not None:
        accesses = accesses.filter(work_id=window.work)
    return accesses.select_related("work", "requester").order_by("-checked_at")


def _decision_counts() -> dict[str, Count]:
    return {decision: Count("id", filter=Q(decision=decision)) for decision in ACCESS_DECISIONS}


def work_access_daily_counts(*, window: ActivityWindow) -> list[dict[str, Any]]:
    """One row per UTC day of the window, oldest first, days without accesses included as zeros."""
    rows = (
        work_access_list(window=window)
        .order_by()
        .annotate(day=TruncDate("checked_at", tzinfo=UTC))
        .values("day")
        .annotate(total=Count("id"), **_decision_counts())
    )
    by_day = {row["day"]: row for row in rows}
    first: date = window.since.astimezone(UTC).date()
    last: date = (window.until - timedelta(microseconds=1)).astimezone(UTC).date()
    days = []
    for offset in range((last - first).days + 1):
        day = first + timedelta(days=offset)
        row = by_day.get(day, {})
        days.append(
            {"date": day, **{d: row.get(d, 0) for d in ACCESS_DECISIONS}, "total": row.get("total", 0)}
        )
    return days


def work_access_top_requesters(*, window: ActivityWindow, limit: int = TOP_REQUESTERS) -> list[dict[str, Any]]:
    """The organisations whose checks matched the most of these works in the window."""
    rows = (
        work_access_list(window=window)
        .order_by()
        .values("requester__slug", "requester__name")
        .annotate(
            accesses=Count("id"),
            checks=Count("check_record", distinct=True),
            last_checked_at=Max("checked_at"),
            **_decision_counts(),
        )
        .order_by("-accesses", "requester__slug")[:limit]
    )
    return [
        {
            "requester": row["requester__slug"],
            "name": row["requester__name"],
            "accesses": row["accesses"],
            "checks": row["checks"],
            "last_checked_at": row["last_checked_at"],
            **{d: row[d] for d in ACCESS_DECISIONS},
        }
        for row in rows
    ]
