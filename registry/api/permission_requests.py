"""Permission requests: an AI developer asks a rightsholder for a grant; the rightsholder answers."""

from __future__ import annotations

import uuid

from drf_spectacular.utils import OpenApiExample, extend_schema
from rest_framework import status
from rest_framework.generics import GenericAPIView
from rest_framework.request import Request
from rest_framework.response import Response

from registry.api.grants import grant_terms
from registry.api.pagination import NewestFirstPagination
from registry.api.permissions import acting_organization, acting_organization_any, request_actor
from registry.api.serializers import (
    READ_ERRORS,
    WRITE_ERRORS,
    PermissionRequestAcceptSerializer,
    PermissionRequestCreateSerializer,
    PermissionRequestDeclineSerializer,
    PermissionRequestFilterSerializer,
    PermissionRequestSerializer,
    parse,
)
from registry.api.works import own_work_or_invalid
from registry.exceptions import ValidationFailed
from registry.models import Organization, Work
from registry.selectors.organizations import organization_named
from registry.selectors.permission_requests import permission_request_get, permission_request_list
from registry.services.permission_requests import (
    permission_request_accept,
    permission_request_create,
    permission_request_decline,
)

# The asking side's keys hold `checks`; the answering side's `works:read` or `grants:write`.
READ_SCOPES = ("checks", "works:read", "grants:write")
ANSWER_DESCRIPTION = "Scope `grants:write`; managers and owners of the rightsholder asked."


class PermissionRequestListView(GenericAPIView):
    pagination_class = NewestFirstPagination
    serializer_class = PermissionRequestSerializer

    @extend_schema(
        operation_id="permission_requests_list",
        summary="Requests you sent (AI developer) or received (rightsholder), newest first",
        description="Scope `checks`, `works:read` or `grants:write`; any member may read.",
        parameters=[PermissionRequestFilterSerializer],
        responses={200: PermissionRequestSerializer(many=True), **READ_ERRORS},
    )
    def get(self, request: Request) -> Response:
        organization = acting_organization_any(request, scopes=READ_SCOPES)
        filters = parse(PermissionRequestFilterSerializer, request.query_params)
        page = self.paginate_queryset(permission_request_list(organization=organization, **filters))
        return self.get_paginated_response(PermissionRequestSerializer(page, many=True).data)

    @extend_schema(
        operation_id="permission_requests_create",
        summary="Ask a rightsholder for a grant",
        description=(
            "Scope `checks`; managers and owners of an AI developer. Name one `work` (a grant on it covers its "
            "descendants) or none for the whole catalog. Nothing is permitted until the rightsholder accepts."
        ),
        request=PermissionRequestCreateSerializer,
        responses={201: PermissionRequestSerializer, **WRITE_ERRORS},
        examples=[OpenApiExample("One series, for generative training", request_only=True, value={
            "rightsholder": "studio-aozora", "work": "0b5c4f0e-2a1d-4f43-9a6e-5c1f0d7e8a21",
            "purposes": ["train-genai"], "territories": ["JP"], "contexts": ["commercial"],
            "message": "We would like to train our illustration model on the series' key art.",
        })],
    )
    def post(self, request: Request) -> Response:
        requester = acting_organization(request, scope="checks", kind=Organization.Kind.AI_DEVELOPER)
        data = parse(PermissionRequestCreateSerializer, request.data)
        rightsholder = organization_named(
            data.pop("rightsholder"), field="rightsholder", kind=Organization.Kind.RIGHTSHOLDER
        )
        work_id = data.pop("work", None)
        # A work id as check answers give it; it must be that rightsholder's (the service checks it is active).
        work = Work.objects.filter(pk=work_id, owner=rightsholder).first() if work_id else None
        if work_id and work is None:
            raise ValidationFailed("That rightsholder has no such work.", fields={"work": ["No such work."]})
        permission_request = permission_request_create(
            actor=request_actor(request), requester=requester, rightsholder=rightsholder, work=work, **data
        )
        return Response(PermissionRequestSerializer(permission_request).data, status=status.HTTP_201_CREATED)


class PermissionRequestAcceptView(GenericAPIView):
    serializer_class = PermissionRequestSerializer

    @extend_schema(
        operation_id="permission_requests_accept",
        summary="Accept: issue the grant to the requester",
        description=(
            f"{ANSWER_DESCRIPTION} The grant takes the requested terms; send any of `scope`, `work`, `purposes`, "
            "`territories`, `contexts`, `valid_from`, `valid_until`, `conditions` to grant other terms instead. "
            "The grant and the answer are recorded together, or neither. A request already answered is a 409."
        ),
        request=PermissionRequestAcceptSerializer,
        responses={200: PermissionRequestSerializer, **WRITE_ERRORS},
        examples=[OpenApiExample("Accept for one year, with attribution", request_only=True, value={
            "response": "Granted for one year.", "valid_until": "2027-04-01T00:00:00Z",
            "conditions": {"attribution": "© Studio Aozora"},
        })],
    )
    def post(self, request: Request, request_id: uuid.UUID) -> Response:
        rightsholder = acting_organization(request, scope="grants:write", kind=Organization.Kind.RIGHTSHOLDER)
        permission_request = permission_request_get(organization=rightsholder, request_id=request_id)
        data = parse(PermissionRequestAcceptSerializer, request.data)
        if "work" in data:
            data["work"] = own_work_or_invalid(rightsholder, data["work"], field="work")
        permission_request = permission_request_accept(
            actor=request_actor(request), permission_request=permission_request, **grant_terms(data)
        )
        return Response(PermissionRequestSerializer(permission_request).data)


class PermissionRequestDeclineView(GenericAPIView):
    serializer_class = PermissionRequestSerializer

    @extend_schema(
        operation_id="permission_requests_decline",
        summary="Decline: nothing is granted",
        description=f"{ANSWER_DESCRIPTION} A request already answered is a 409.",
        request=PermissionRequestDeclineSerializer,
        responses={200: PermissionRequestSerializer, **WRITE_ERRORS},
    )
    def post(self, request: Request, request_id: uuid.UUID) -> Response:
        rightsholder = acting_organization(request, scope="grants:write", kind=Organization.Kind.RIGHTSHOLDER)
        permission_request = permission_request_get(organization=rightsholder, request_id=request_id)
        response = parse(PermissionRequestDeclineSerializer, request.data).get("response", "")
        permission_request = permission_request_decline(
            actor=request_actor(request), permission_request=permission_request, response=response
        )
        return Response(PermissionRequestSerializer(permission_request).data)
