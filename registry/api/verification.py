"""Verification requests: an organisation's owner states who it is, with evidence; reviewers answer on the desk.

People only: no API key scope covers an organisation's identity, so a key is refused (403).
"""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.generics import GenericAPIView
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response

from registry.api.pagination import NewestFirstPagination
from registry.api.parsers import LimitedJSONParser
from registry.api.permissions import acting_organization, request_actor
from registry.api.serializers import READ_ERRORS, WRITE_ERRORS, parse
from registry.models import VerificationRequest
from registry.services.evidence import MAX_EVIDENCE_FILES
from registry.services.verification import verification_request_submit

IDENTITY_SCOPE = "organization"


class VerificationRequestSerializer(serializers.ModelSerializer):
    organization = serializers.SlugRelatedField(slug_field="slug", read_only=True)
    evidence = serializers.SerializerMethodField()

    class Meta:
        model = VerificationRequest
        fields = ["id", "organization", "status", "legal_name", "registration_number", "country", "website",
                  "contact_email", "created_at", "decided_at", "decision_reason", "evidence"]

    def get_evidence(self, request: VerificationRequest) -> list[str]:
        return [evidence.original_name for evidence in request.evidence.order_by("created_at")]


class VerificationRequestCreateSerializer(serializers.Serializer):
    legal_name = serializers.CharField(max_length=300)
    registration_number = serializers.CharField(max_length=100, required=False, allow_blank=True, help_text=(
        "For a Japanese company (country JP), its 13-digit corporate number (法人番号), check digit validated."))
    country = serializers.CharField(max_length=2, required=False, allow_blank=True)
    website = serializers.CharField(max_length=200, required=False, allow_blank=True,
                                    help_text="An http(s) URL; without a scheme, https:// is assumed.")
    contact_email = serializers.CharField(max_length=254, required=False, allow_blank=True)
    evidence = serializers.ListField(child=serializers.FileField(), required=False, max_length=MAX_EVIDENCE_FILES,
                                     help_text="Repeatable multipart part: PDFs or images, 20 MB each at most.")


def _with_scheme(website: str) -> str:
    website = website.strip()
    return f"https://{website}" if website and "://" not in website else website


class VerificationRequestListView(GenericAPIView):
    pagination_class = NewestFirstPagination
    serializer_class = VerificationRequestSerializer
    parser_classes = [MultiPartParser, FormParser, LimitedJSONParser]

    @extend_schema(
        operation_id="verification_requests_list",
        summary="Your organisation's verification requests, newest first",
        description="Signed-in members only (no key scope covers identity).",
        responses={200: VerificationRequestSerializer(many=True), **READ_ERRORS},
    )
    def get(self, request: Request) -> Response:
        organization = acting_organization(request, scope=IDENTITY_SCOPE)
        requests = organization.verification_requests.prefetch_related("evidence")
        page = self.paginate_queryset(requests)
        return self.get_paginated_response(VerificationRequestSerializer(page, many=True).data)

    @extend_schema(
        operation_id="verification_requests_create",
        summary="Ask to be verified",
        description=(
            "Owners only, signed in. Multipart (for `evidence` files) or JSON. One request waits at a time: "
            "a second is a 409, as is asking once verified. A reviewer verifies or rejects it on the desk; "
            "the owners are emailed either way."
        ),
        request={"multipart/form-data": VerificationRequestCreateSerializer,
                 "application/json": VerificationRequestCreateSerializer},
        responses={201: VerificationRequestSerializer, **WRITE_ERRORS},
    )
    def post(self, request: Request) -> Response:
        organization = acting_organization(request, scope=IDENTITY_SCOPE)
        data = dict(request.data.items()) if hasattr(request.data, "getlist") else dict(request.data)
        if hasattr(request.data, "getlist"):
            data["evidence"] = request.FILES.getlist("evidence")
        fields = parse(VerificationRequestCreateSerializer, data)
        evidence = [(upload, upload.name) for upload in fields.pop("evidence", [])]
        verification_request = verification_request_submit(
            actor=request_actor(request), organization=organization, evidence=evidence,
            **{**fields, "website": _with_scheme(fields.get("website", ""))},
        )
        return Response(VerificationRequestSerializer(verification_request).data, status=status.HTTP_201_CREATED)
