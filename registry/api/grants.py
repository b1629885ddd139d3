"""Grants: a rightsholder issues, lists and revokes them; a named licensee may read its own."""

from __future__ import annotations

import uuid
from typing import Any

from django.utils import timezone
from django.utils.translation import gettext as _
from drf_spectacular.utils import OpenApiExample, extend_schema
from rest_framework import status
from rest_framework.generics import GenericAPIView
from rest_framework.request import Request
from rest_framework.response import Response

from registry.api.pagination import NewestFirstPagination
from registry.api.permissions import acting_organization, acting_organization_any, request_actor
from registry.api.serializers import (
    READ_ERRORS,
    WRITE_ERRORS,
    GrantCreateSerializer,
    GrantFilterSerializer,
    GrantRevokeSerializer,
    GrantSerializer,
    parse,
)
from registry.api.works import own_work_or_invalid
from registry.exceptions import NotFound
from registry.models import Organization
from registry.selectors.grants import grant_get, grant_list
from registry.selectors.organizations import organization_named
from registry.selectors.snapshots import grant_snapshots_valid_until
from registry.services.grants import grant_issue, grant_revoke

# A licensee's key usually holds only `checks`; it may read the grants made out to it.
READ_SCOPES = ("works:read", "checks")

GRANT_EXAMPLE = {
    "scope": "work",
    "work": "0b5c4f0e-2a1d-4f43-9a6e-5c1f0d7e8a21",
    "licensee": "acme-ai",
    "purposes": ["train-genai"],
    "territories": ["JP", "US"],
    "contexts": ["commercial"],
    "valid_from": "2026-04-01T00:00:00Z",
    "valid_until": "2027-04-01T00:00:00Z",
    "conditions": {
        "attribution": "© Studio Aozora",
        "licence_url": "https://studio.example/licences/ai-2026",
        "compensation": "per licence agreement 2026-17",
    },
}


def grant_terms(data: dict[str, Any]) -> dict[str, Any]:
    """Flatten the request's `conditions` object into the service's keyword arguments."""
    terms = {k: v for k, v in data.items() if k != "conditions"}
    terms.update(data.get("conditions") or {})
    return terms


class GrantListView(GenericAPIView):
    pagination_class = NewestFirstPagination
    serializer_class = GrantSerializer

    @extend_schema(
        operation_id="grants_list",
        summary="Grants you issued, and grants made out to you by name",
        description="Scope `works:read` (or `checks`, for a licensee's key); any member may read.",
        parameters=[GrantFilterSerializer],
        responses={200: GrantSerializer(many=True), **READ_ERRORS},
    )
    def get(self, request: Request) -> Response:
        organization = acting_organization_any(request, scopes=READ_SCOPES)
        filters = parse(GrantFilterSerializer, request.query_params)
        now = timezone.now()
        grants = grant_list(organization=organization, work=filters.get("work"), in_force=filters["in_force"], at=now)
        page = self.paginate_queryset(grants)
        return self.get_paginated_response(GrantSerializer(page, many=True, context={"at": now}).data)

    @extend_schema(
        operation_id="grants_create",
        summary="Issue a grant",
        description=(
            "Scope `grants:write`; managers and owners of a rightsholder. A grant is never edited: to change "
            "one, revoke it and issue a new one. It counts in checks only while your organisation is verified. "
            "`licensee` must be sent: an AI developer's slug, or null for any verified AI developer."
        ),
        request=GrantCreateSerializer,
        responses={201: GrantSerializer, **WRITE_ERRORS},
        examples=[
            OpenApiExample("One work, one licensee", value=GRANT_EXAMPLE, request_only=True),
            OpenApiExample("Whole catalog, any verified AI developer, research only", request_only=True, value={
                "scope": "catalog", "licensee": None, "purposes": ["tdm"], "contexts": ["research"],
            }),
        ],
    )
    def post(self, request: Request) -> Response:
        grantor = acting_organization(request, scope="grants:write", kind=Organization.Kind.RIGHTSHOLDER)
        data = parse(GrantCreateSerializer, request.data)
        data["work"] = own_work_or_invalid(grantor, data.get("work"), field="work")
        data["licensee"] = organization_named(
            data["licensee"], field="licensee", kind=Organization.Kind.AI_DEVELOPER
        )
        grant = grant_issue(actor=request_actor(request), grantor=grantor, **grant_terms(data))
        return Response(GrantSerializer(grant).data, status=status.HTTP_201_CREATED)


class GrantDetailView(GenericAPIView):
    serializer_class = GrantSerializer

    @extend_schema(
        operation_id="grants_retrieve", summary="One grant you issued or that names you",
        responses={200: GrantSerializer, **READ_ERRORS},
    )
    def get(self, request: Request, grant_id: uuid.UUID) -> Response:
        organization = acting_organization_any(request, scopes=READ_SCOPES)
        return Response(GrantSerializer(grant_get(organization=organization, grant_id=grant_id)).data)


class GrantRevokeView(GenericAPIView):
    serializer_class = GrantSerializer

    @extend_schema(
        operation_id="grants_revoke",
        summary="Revoke a grant",
        description=(
            "Scope `grants:write`; the grantor's managers and owners. Checks made after this answer without the "
            "grant; receipts of earlier checks stand, and so do licence snapshots issued before: "
            "`snapshots_valid_until` says until when the last of them runs (null: none). Revoking twice is a 409."
        ),
        request=GrantRevokeSerializer,
        responses={200: GrantSerializer, **WRITE_ERRORS},
        examples=[OpenApiExample("With a reason", value={"reason": "Licence agreement ended"}, request_only=True)],
    )
    def post(self, request: Request, grant_id: uuid.UUID) -> Response:
        organization = acting_organization(request, scope="grants:write")
        grant = grant_get(organization=organization, grant_id=grant_id)
        if grant.grantor_id != organization.pk:
            # A licensee may read its grant but not revoke it; 404 like the portal, so no oracle.
            raise NotFound(_("No such grant."))
        reason = parse(GrantRevokeSerializer, request.data).get("reason", "")
        revoked = grant_revoke(actor=request_actor(request), grant=grant, reason=reason)
        # Snapshots issued before the revocation are receipts: the studio learns until when they run.
        until = grant_snapshots_valid_until(grant=revoked, at=revoked.revoked_at)
        return Response({
            **GrantSerializer(revoked).data,
            "snapshots_valid_until": until.isoformat().replace("+00:00", "Z") if until else None,
        })

