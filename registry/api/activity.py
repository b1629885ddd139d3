"""Transparency for rightsholders: who checked my works, for what, with what answer."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiExample, extend_schema
from rest_framework.generics import GenericAPIView
from rest_framework.request import Request
from rest_framework.response import Response

from registry.api.pagination import LatestAccessFirstPagination
from registry.api.permissions import acting_organization
from registry.api.serializers import (
    READ_ERRORS,
    ActivityQuerySerializer,
    ActivitySerializer,
    ErrorSerializer,
    WorkAccessSerializer,
    parse,
)
from registry.models import Organization
from registry.selectors.activity import (
    ActivityWindow,
    work_access_daily_counts,
    work_access_list,
    work_access_top_requesters,
)
from registry.selectors.snapshots import licence_snapshot_downloads
from registry.selectors.works import work_get

ACTIVITY_EXAMPLE = {
    "since": "2026-03-01T00:00:00Z", "until": "2026-03-03T00:00:00Z",
    "next": None, "previous": None,
    "results": [{
        "work": {"id": "0b5c4f0e-2a1d-4f43-9a6e-5c1f0d7e8a21", "external_ref": "EP-0042", "title": "Episode 42"},
        "requester": {"slug": "acme-ai", "name": "Acme AI"},
        "purpose": "train-genai", "decision": "permitted", "checked_at": "2026-03-02T09:14:03.120Z",
    }],
    "daily": [
        {"date": "2026-03-01", "permitted": 0, "not_permitted": 0, "disputed": 0, "total": 0},
        {"date": "2026-03-02", "permitted": 1, "not_permitted": 0, "disputed": 0, "total": 1},
    ],
    "top_requesters": [{
        "requester": "acme-ai", "name": "Acme AI", "accesses": 1, "checks": 1, "permitted": 1,
        "not_permitted": 0, "disputed": 0, "last_checked_at": "2026-03-02T09:14:03.120Z",
    }],
}


class ActivityView(GenericAPIView):
    pagination_class = LatestAccessFirstPagination
    serializer_class = WorkAccessSerializer

    @extend_schema(
        operation_id="activity",
        summary="Who checked your works: requester, purpose, answer, time; daily counts; top requesters",
        description=(
            "Scope `works:read`; any member of a rightsholder. The window is `since` (inclusive) to `until` "
            "(exclusive), default the last 30 days, at most 366. `results` is one page of accesses, newest first "
            "(follow `next`); `daily` and `top_requesters` cover the whole window."
        ),
        parameters=[ActivityQuerySerializer],
        responses={200: ActivitySerializer, 400: ErrorSerializer, **READ_ERRORS},
        examples=[OpenApiExample("Two days", value=ACTIVITY_EXAMPLE, response_only=True)],
    )
    def get(self, request: Request) -> Response:
        organization = acting_organization(request, scope="works:read", kind=Organization.Kind.RIGHTSHOLDER)
        query = parse(ActivityQuerySerializer, request.query_params)
        if query.get("work"):
            work_get(organization=organization, work_id=query["work"])  # another organisation's work: 404
        window = ActivityWindow(
            organization=organization, since=query["since"], until=query["until"], work=query.get("work")
        )
        page = self.paginate_queryset(work_access_list(window=window))
        data = ActivitySerializer({
            "since": window.since,
            "until": window.until,
            "next": self.paginator.get_next_link(),
            "previous": self.paginator.get_previous_link(),
            "results": page,
            "daily": work_access_daily_counts(window=window),
            "top_requesters": work_access_top_requesters(window=window),
        }).data
        # Which licensee downloaded a licence snapshot resting on which of our grants, and when.
        data["snapshots"] = [
            {**row, "issued_at": _iso(row["issued_at"]), "valid_until": _iso(row["valid_until"])}
            for row in licence_snapshot_downloads(organization=organization, since=window.since, until=window.until)
        ]
        return Response(data)


def _iso(moment) -> str:
    return moment.isoformat().replace("+00:00", "Z")
