"""Works: a rightsholder registers, lists, changes and withdraws its works and attaches files."""

from __future__ import annotations

import uuid

from drf_spectacular.utils import OpenApiExample, extend_schema
from rest_framework import status
from rest_framework.generics import GenericAPIView
from rest_framework.request import Request
from rest_framework.response import Response

from registry.api.pagination import NewestFirstPagination
from registry.api.permissions import acting_organization, request_actor
from registry.api.serializers import (
    READ_ERRORS,
    WRITE_ERRORS,
    ContentFileSerializer,
    ContentFileUploadSerializer,
    WorkCreateSerializer,
    WorkFilterSerializer,
    WorkSerializer,
    WorkUpdateSerializer,
    WorkWithdrawSerializer,
    parse,
)
from registry.exceptions import NotFound, ValidationFailed
from registry.models import Organization, Work
from registry.selectors.works import work_get, work_list
from registry.services.works import (
    content_file_add,
    content_file_add_authorize,
    work_register,
    work_update,
    work_withdraw,
)

RIGHTSHOLDER = Organization.Kind.RIGHTSHOLDER

WORK_EXAMPLE = {
    "external_ref": "EP-0042",
    "title": "Episode 42: The Lighthouse",
    "kind": "video",
    "parent": "0b5c4f0e-2a1d-4f43-9a6e-5c1f0d7e8a21",
    "urls": ["https://studio.example/episodes/42", "https://cdn.studio.example/ep42/*.png$"],
    "identifiers": ["isan:0000-0000-3A8D-0000-Z-0000-0000-6"],
}


def own_work_or_invalid(organization: Organization, work_id: uuid.UUID | None, *, field: str) -> Work | None:
    """A work a request names in `field`: one of the organisation's own, or a field error (never a 404)."""
    if work_id is None:
        return None
    try:
        return work_get(organization=organization, work_id=work_id)
    except NotFound as exc:
        raise ValidationFailed(f"The {field} is not one of your works.", fields={field: ["No such work."]}) from exc


class WorkListView(GenericAPIView):
    pagination_class = NewestFirstPagination
    serializer_class = WorkSerializer

    @extend_schema(
        operation_id="works_list",
        summary="Your works, newest first",
        description="Scope `works:read`; any member may read.",
        parameters=[WorkFilterSerializer],
        responses={200: WorkSerializer(many=True), **READ_ERRORS},
    )
    def get(self, request: Request) -> Response:
        organization = acting_organization(request, scope="works:read", kind=RIGHTSHOLDER)
        works = work_list(organization=organization, **parse(WorkFilterSerializer, request.query_params))
        page = self.paginate_queryset(works)
        return self.get_paginated_response(WorkSerializer(page, many=True).data)

    @extend_schema(
        operation_id="works_create",
        summary="Register a work with its URLs and identifiers",
        description="Scope `works:write`; managers and owners. `external_ref` is unique in your catalog (409).",
        request=WorkCreateSerializer,
        responses={201: WorkSerializer, **WRITE_ERRORS},
        examples=[OpenApiExample("An episode under its series", value=WORK_EXAMPLE, request_only=True)],
    )
    def post(self, request: Request) -> Response:
        organization = acting_organization(request, scope="works:write", kind=RIGHTSHOLDER)
        data = parse(WorkCreateSerializer, request.data)
        data["parent"] = own_work_or_invalid(organization, data.get("parent"), field="parent")
        work = work_register(actor=request_actor(request), organization=organization, **data)
        return Response(
            WorkSerializer(work_get(organization=organization, work_id=work.pk)).data, status=status.HTTP_201_CREATED
        )


class WorkDetailView(GenericAPIView):
    serializer_class = WorkSerializer

    @extend_schema(
        operation_id="works_retrieve", summary="One of your works, with its URLs, identifiers and files",
        responses={200: WorkSerializer, **READ_ERRORS},
    )
    def get(self, request: Request, work_id: uuid.UUID) -> Response:
        organization = acting_organization(request, scope="works:read", kind=RIGHTSHOLDER)
        return Response(WorkSerializer(work_get(organization=organization, work_id=work_id)).data)

    @extend_schema(
        operation_id="works_partial_update",
        summary="Change a work",
        description="Only the fields sent change. `urls` and `identifiers`, when sent, replace the work's sets.",
        request=WorkUpdateSerializer,
        responses={200: WorkSerializer, **WRITE_ERRORS},
        examples=[OpenApiExample("Rename and replace URLs", request_only=True, value={
            "title": "Episode 42 (remastered)", "urls": ["https://studio.example/episodes/42-remastered"],
        })],
    )
    def patch(self, request: Request, work_id: uuid.UUID) -> Response:
        organization = acting_organization(request, scope="works:write", kind=RIGHTSHOLDER)
        work = work_get(organization=organization, work_id=work_id)
        changes = parse(WorkUpdateSerializer, request.data, partial=True)
        if "parent" in changes:
            changes["parent"] = own_work_or_invalid(organization, changes["parent"], field="parent")
        work_update(actor=request_actor(request), work=work, **changes)
        return Response(WorkSerializer(work_get(organization=organization, work_id=work.pk)).data)


class WorkWithdrawView(GenericAPIView):
    serializer_class = WorkSerializer

    @extend_schema(
        operation_id="works_withdraw",
        summary="Withdraw a work: from now on checks answer not_permitted (work_withdrawn)",
        request=WorkWithdrawSerializer,
        responses={200: WorkSerializer, **WRITE_ERRORS},
    )
    def post(self, request: Request, work_id: uuid.UUID) -> Response:
        organization = acting_organization(request, scope="works:write", kind=RIGHTSHOLDER)
        work = work_get(organization=organization, work_id=work_id)
        reason = parse(WorkWithdrawSerializer, request.data).get("reason", "")
        work_withdraw(actor=request_actor(request), work=work, reason=reason)
        return Response(WorkSerializer(work_get(organization=organization, work_id=work.pk)).data)


class WorkFilesView(GenericAPIView):
    serializer_class = ContentFileSerializer

    @extend_schema(
        operation_id="works_files_create",
        summary="Attach a file to a work",
        description=(
            "Multipart `file`. The server stores its SHA-256 and, for images, its perceptual hash (the same "
            "pipeline checks use). Sending the same bytes again returns the stored file."
        ),
        request={"multipart/form-data": ContentFileUploadSerializer},
        responses={201: ContentFileSerializer, **WRITE_ERRORS},
    )
    def post(self, request: Request, work_id: uuid.UUID) -> Response:
        organization = acting_organization(request, scope="works:write", kind=RIGHTSHOLDER)
        work = work_get(organization=organization, work_id=work_id)
        content_file_add_authorize(request_actor(request), work)  # refused callers learn nothing of the upload
        upload = parse(ContentFileUploadSerializer, request.data)["file"]
        content_file = content_file_add(actor=request_actor(request), work=work, fileobj=upload, filename=upload.name)
        return Response(ContentFileSerializer(content_file).data, status=status.HTTP_201_CREATED)
