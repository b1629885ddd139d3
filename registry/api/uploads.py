"""Bulk uploads: a studio sends a manifest (and a ZIP of files), watches it go, reads its errors."""

from __future__ import annotations

import json
import uuid

from django.http import StreamingHttpResponse
from django.urls import reverse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.generics import GenericAPIView
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.renderers import BaseRenderer, JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response

from registry.api.pagination import NewestFirstPagination
from registry.api.permissions import acting_organization, request_actor
from registry.api.serializers import ErrorSerializer, parse
from registry.models import BulkUpload, Organization
from registry.selectors.uploads import bulk_upload_errors_csv, bulk_upload_get, bulk_upload_list
from registry.services.uploads import bulk_upload_cancel, bulk_upload_start

RIGHTSHOLDER = Organization.Kind.RIGHTSHOLDER
SCOPE = "uploads"
READ_ERRORS = {401: ErrorSerializer, 403: ErrorSerializer, 404: ErrorSerializer}
WRITE_ERRORS = {400: ErrorSerializer, **READ_ERRORS, 409: ErrorSerializer}


class BulkUploadSerializer(serializers.ModelSerializer):
    created = serializers.IntegerField(source="created_count", help_text="Rows that registered a new work")
    updated = serializers.IntegerField(
        source="updated_count", help_text="Rows that matched a work already registered (set to what the row gives)"
    )
    failed = serializers.IntegerField(source="failed_count", help_text="Rows not written; see errors")
    has_archive = serializers.SerializerMethodField()
    errors_url = serializers.SerializerMethodField(help_text="The per-row error report (CSV)")

    class Meta:
        model = BulkUpload
        fields = [
            "id", "status", "manifest_name", "manifest_format", "has_archive", "total_rows", "processed_rows",
            "created", "updated", "failed", "error", "errors_url", "created_at", "started_at", "finished_at",
        ]

    def get_has_archive(self, upload: BulkUpload) -> bool:
        return bool(upload.archive)

    def get_errors_url(self, upload: BulkUpload) -> str:
        return reverse("api:upload-errors", kwargs={"upload_id": upload.pk})


class BulkUploadCreateSerializer(serializers.Serializer):
    manifest = serializers.FileField(
        allow_empty_file=True,
        help_text="CSV (UTF-8, header row), JSON array or NDJSON. Columns: external_ref and title (required), "
        "kind, parent_ref, identifiers and urls (separated by ';'), file (a path in the archive), sha256 and "
        "phash (when no file is sent), description, year, creators.",
    )
    archive = serializers.FileField(required=False, help_text="A ZIP of the files the manifest names")


class CsvRenderer(BaseRenderer):
    """Lets a client ask for the error report with Accept: text/csv; errors still come as JSON text."""

    media_type = "text/csv"
    format = "csv"
    charset = "utf-8"

    def render(self, data, accepted_media_type=None, renderer_context=None) -> bytes:
        return json.dumps(data).encode()


def _upload_response(upload: BulkUpload, status_code: int = status.HTTP_200_OK) -> Response:
    return Response(BulkUploadSerializer(upload).data, status=status_code)


class BulkUploadListView(GenericAPIView):
    pagination_class = NewestFirstPagination
    serializer_class = BulkUploadSerializer
    parser_classes = [MultiPartParser, FormParser]

    @extend_schema(
        operation_id="uploads_list",
        summary="Your bulk uploads, newest first",
        description="Scope `uploads`; any member may read.",
        responses={200: BulkUploadSerializer(many=True), **READ_ERRORS},
    )
    def get(self, request: Request) -> Response:
        organization = acting_organization(request, scope=SCOPE, kind=RIGHTSHOLDER)
        page = self.paginate_queryset(bulk_upload_list(organization=organization))
        return self.get_paginated_response(BulkUploadSerializer(page, many=True).data)

    @extend_schema(
        operation_id="uploads_create",
        summary="Upload a catalog: a manifest and, optionally, a ZIP of its files",
        description=(
            "Scope `uploads`; managers and owners. Answers 202 at once; a worker then checks the whole manifest "
            "(an unreadable file, a wrong encoding or missing columns fail the upload with nothing written) and "
            "registers it in chunks. Rows upsert by `external_ref`: uploading the same manifest again updates, "
            "never duplicates. Follow `status` and the counts on the upload; bad rows are in its error report."
        ),
        request={"multipart/form-data": BulkUploadCreateSerializer},
        responses={202: BulkUploadSerializer, **WRITE_ERRORS},
    )
    def post(self, request: Request) -> Response:
        organization = acting_organization(request, scope=SCOPE, kind=RIGHTSHOLDER)
        data = parse(BulkUploadCreateSerializer, request.data)
        upload = bulk_upload_start(
            actor=request_actor(request), organization=organization, manifest=data["manifest"],
            archive=data.get("archive"),
        )
        response = _upload_response(upload, status.HTTP_202_ACCEPTED)
        response["Location"] = reverse("api:upload-detail", kwargs={"upload_id": upload.pk})
        return response


class BulkUploadDetailView(GenericAPIView):
    serializer_class = BulkUploadSerializer

    @extend_schema(
        operation_id="uploads_retrieve", summary="One upload: status and progress",
        responses={200: BulkUploadSerializer, **READ_ERRORS},
    )
    def get(self, request: Request, upload_id: uuid.UUID) -> Response:
        organization = acting_organization(request, scope=SCOPE, kind=RIGHTSHOLDER)
        return _upload_response(bulk_upload_get(organization=organization, upload_id=upload_id))


class BulkUploadErrorsView(GenericAPIView):
    renderer_classes = [JSONRenderer, CsvRenderer]

    @extend_schema(
        operation_id="uploads_errors",
        summary="The upload's error report as CSV: row, external_ref, field, message",
        description=(
            "Row 0 is the manifest or archive as a whole. Rows count from 1 and do not count the header. "
            "Cells that a spreadsheet would run as a formula start with an apostrophe."
        ),
        responses={(200, "text/csv"): OpenApiResponse(OpenApiTypes.STR), **READ_ERRORS},
    )
    def get(self, request: Request, upload_id: uuid.UUID) -> StreamingHttpResponse:
        organization = acting_organization(request, scope=SCOPE, kind=RIGHTSHOLDER)
        upload = bulk_upload_get(organization=organization, upload_id=upload_id)
        response = StreamingHttpResponse(bulk_upload_errors_csv(upload=upload), content_type="text/csv; charset=utf-8")
        response["Content-Disposition"] = f'attachment; filename="upload-{upload.pk}-errors.csv"'
        return response


class BulkUploadCancelView(GenericAPIView):
    serializer_class = BulkUploadSerializer

    @extend_schema(
        operation_id="uploads_cancel",
        summary="Cancel an upload: it stops between chunks; committed rows stay",
        description="Scope `uploads`; managers and owners. A finished upload answers 409.",
        request=None,
        responses={200: BulkUploadSerializer, **WRITE_ERRORS},
    )
    def post(self, request: Request, upload_id: uuid.UUID) -> Response:
        organization = acting_organization(request, scope=SCOPE, kind=RIGHTSHOLDER)
        upload = bulk_upload_get(organization=organization, upload_id=upload_id)
        return _upload_response(bulk_upload_cancel(actor=request_actor(request), upload=upload))
