"""Licence snapshots: the signed list of every exact key permitted to the caller, for offline filtering."""

from __future__ import annotations

from datetime import UTC

from django.http import HttpResponse
from django.utils.dateparse import parse_datetime
from django.utils.translation import gettext as _
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework.request import Request
from rest_framework.views import APIView

from registry.api.permissions import acting_organization, request_actor
from registry.decisions.parse import parse_check_request
from registry.exceptions import ValidationFailed
from registry.services.snapshots import licence_snapshot_issue

RECEIPT_HEADER = "Receipt-Signature"
MAX_PARAMETER_LENGTH = 64


class LicenceSnapshotView(APIView):
    @extend_schema(
        operation_id="licences_snapshot",
        summary="Every exact key permitted to you for a purpose, as one signed document",
        description=(
            "Scope `checks`; counts like one check against the key's quota. The body lists sha256 digests, "
            "normalised URLs, URL patterns and identifiers (`scheme:value`), each with the ids of the grants it "
            "rests on, and those grants. `valid_until` is at most 24 h after `issued_at` and never later than the "
            "earliest expiry of those grants: rely on it until then, and no longer. With `since` set to the "
            "`issued_at` of a snapshot you hold, the answer is a delta against it (`base`, `added`, `removed`); "
            "otherwise `keys` is the whole set. `Receipt-Signature` is a detached JWS (EdDSA) over the exact body."
        ),
        parameters=[
            OpenApiParameter("purpose", str, required=True),
            OpenApiParameter("territory", str, required=False),
            OpenApiParameter("context", str, required=False),
            OpenApiParameter("since", str, required=False, description="issued_at of the snapshot you hold"),
        ],
        responses={200: None},
    )
    def get(self, request: Request) -> HttpResponse:
        requester = acting_organization(request, scope="checks")
        params = request.query_params
        for name in ("purpose", "territory", "context", "since"):
            if len(params.get(name) or "") > MAX_PARAMETER_LENGTH:
                raise ValidationFailed(_("The snapshot request is not valid."), fields={name: [_("Too long.")]})
        terms = parse_check_request(
            requester=requester, purpose=params.get("purpose"), territory=params.get("territory") or None,
            context=params.get("context") or None,
        )
        since = None
        if params.get("since"):
            since = parse_datetime(params["since"].replace(" ", "+"))
            if since is None or since.tzinfo is None:
                raise ValidationFailed(
                    _("The snapshot request is not valid."),
                    fields={"since": [_("An ISO 8601 time with its offset, such as 2026-03-01T00:00:00Z.")]},
                )
            since = since.astimezone(UTC)
        outcome = licence_snapshot_issue(actor=request_actor(request), request=terms, since=since)
        response = HttpResponse(outcome.body, content_type="application/json")
        response[RECEIPT_HEADER] = outcome.signature
        return response
