"""The check API: AI developers ask before they ingest, and keep signed receipts."""

from __future__ import annotations

import base64
import binascii

from django.http import HttpResponse
from django.utils.translation import gettext as _
from drf_spectacular.utils import OpenApiExample, extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from registry.api.permissions import acting_organization, request_actor
from registry.decisions.run import CheckOutcome, check_body, check_run
from registry.exceptions import ValidationFailed
from registry.purposes import purpose_tree
from registry.receipts import public_jwks
from registry.selectors.checks import check_get
from registry.selectors.receipts import receipt_read

RECEIPT_HEADER = "Receipt-Signature"

CHECK_EXAMPLE = {
    "purpose": "train-genai", "territory": "US", "context": "commercial",
    "items": [
        {"ref": "row-17", "sha256": "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"},
        {"url": "https://example.com/cel/0042.png"},
        {"phash": "c3a1f0e07c3c1e0f", "max_distance": 6},
        {"identifier": "isbn:978-4-04-102622-9"},
    ],
}


def _receipt_response(body: bytes, signature: str, check_id: str) -> HttpResponse:
    response = HttpResponse(body, content_type="application/json")
    response[RECEIPT_HEADER] = signature
    response["Location"] = f"/api/v1/checks/{check_id}"
    return response


def _render(outcome: CheckOutcome) -> HttpResponse:
    response = _receipt_response(outcome.body, outcome.signature, str(outcome.check.pk))
    if outcome.record_confirm is not None:
        # Called by the WSGI server once the response has been written (HttpResponse.close).
        response._resource_closers.append(outcome.record_confirm)
    return response


class CheckView(APIView):
    @extend_schema(
        operation_id="checks_create",
        summary="Check content before ingesting it",
        description=(
            "Up to 10,000 items, each with exactly one of sha256, phash (with optional max_distance ≤ 12), "
            "url or identifier (`scheme:value`). Results come in item order. Nothing found answers "
            "`unregistered` with `permitted: false`. The `Receipt-Signature` header is a detached JWS "
            "(EdDSA) over the exact response body; keys at /.well-known/jwks.json."
        ),
        request=inline_serializer("CheckRequest", {
            "purpose": serializers.CharField(), "territory": serializers.CharField(required=False),
            "context": serializers.CharField(required=False),
            "items": serializers.ListField(child=serializers.DictField()),
        }),
        responses={200: inline_serializer("CheckResponse", {
            "check_id": serializers.UUIDField(), "checked_at": serializers.DateTimeField(),
            "purpose": serializers.CharField(), "registry": serializers.CharField(),
            "summary": serializers.DictField(child=serializers.IntegerField()),
            "results": serializers.ListField(child=serializers.DictField()),
            "grants": serializers.DictField(child=serializers.DictField()),
        })},
        examples=[OpenApiExample("Mixed items", value=CHECK_EXAMPLE, request_only=True)],
    )
    def post(self, request: Request) -> HttpResponse:
        organization = acting_organization(request, scope="checks")
        data = request.data
        if not isinstance(data, dict):
            raise ValidationFailed(_("The body must be a JSON object."))
        return _render(check_run(
            actor=request_actor(request), organization=organization, purpose=data.get("purpose"),
            territory=data.get("territory"), context=data.get("context"), items=data.get("items"),
            record_later=True,
        ))


class CheckFilesView(APIView):
    @extend_schema(
        operation_id="checks_files",
        summary="Check files: the server hashes them with the same pipeline as registration",
        request={"multipart/form-data": inline_serializer("CheckFilesRequest", {
            "files": serializers.ListField(child=serializers.FileField()), "purpose": serializers.CharField(),
            "territory": serializers.CharField(required=False), "context": serializers.CharField(required=False),
        })},
        responses={200: None},
    )
    def post(self, request: Request) -> HttpResponse:
        organization = acting_organization(request, scope="checks")
        files = request.FILES.getlist("files")
        if not files:
            raise ValidationFailed(_("Send one or more files as 'files'."), fields={"files": [_("Required.")]})
        return _render(check_run(
            actor=request_actor(request), organization=organization, purpose=request.data.get("purpose"),
            territory=request.data.get("territory") or None, context=request.data.get("context") or None,
            uploads=files, record_later=True,
        ))


class CheckDetailView(APIView):
    @extend_schema(operation_id="checks_retrieve", summary="The same receipt again: identical bytes and signature",
                   responses={200: None})
    def get(self, request: Request, check_id: str) -> HttpResponse:
        check = check_get(organization=acting_organization(request, scope="checks"), check_id=check_id)
        return _receipt_response(check_body(check), check.signature, str(check.pk))


class ReceiptVerifyView(APIView):
    permission_classes = [AllowAny]
    authentication_classes: list = []

    @extend_schema(
        operation_id="receipts_verify",
        summary="Verify a receipt: a response body and its Receipt-Signature",
        request=inline_serializer("ReceiptVerifyRequest", {
            "body": serializers.CharField(required=False, help_text="the body as text (UTF-8)"),
            "body_base64": serializers.CharField(required=False, help_text="or its exact bytes, base64"),
            "signature": serializers.CharField(),
        }),
        responses={200: inline_serializer("ReceiptVerifyResponse", {
            "valid": serializers.BooleanField(), "kid": serializers.CharField(required=False),
            "check_id": serializers.CharField(required=False, allow_null=True),
            "snapshot_id": serializers.CharField(required=False, allow_null=True),
            "requester": serializers.CharField(required=False, allow_null=True),
            "checked_at": serializers.CharField(required=False, allow_null=True),
            "purpose": serializers.CharField(required=False, allow_null=True),
            "summary": serializers.DictField(child=serializers.IntegerField(), required=False, allow_null=True),
            "registry": serializers.CharField(required=False),
            "error": serializers.CharField(required=False),
        })},
    )
    def post(self, request: Request) -> Response:
        data = request.data if isinstance(request.data, dict) else {}
        signature = data.get("signature")
        if not isinstance(signature, str) or not signature:
            raise ValidationFailed(_("signature is required."), fields={"signature": [_("Required.")]})
        if isinstance(data.get("body_base64"), str):
            try:
                body = base64.b64decode(data["body_base64"], validate=True)
            except (binascii.Error, ValueError) as exc:
                raise ValidationFailed(_("body_base64 is not valid base64.")) from exc
        elif isinstance(data.get("body"), str):
            body = data["body"].encode()
        else:
            raise ValidationFailed(
                _("Send the receipt body as body or body_base64."), fields={"body": [_("Required.")]}
            )
        return Response(receipt_read(body, signature).as_data())


class JwksView(APIView):
    permission_classes = [AllowAny]
    authentication_classes: list = []

    @extend_schema(operation_id="jwks", summary="Public keys that sign receipts (several during rotation)",
                   responses={200: None})
    def get(self, request: Request) -> Response:
        response = Response(public_jwks())
        response["Cache-Control"] = "public, max-age=300"
        return response


class PurposesView(APIView):
    permission_classes = [AllowAny]

    @extend_schema(operation_id="purposes", summary="The purpose vocabulary (a tree)", responses={200: None})
    def get(self, request: Request) -> Response:
        return Response(purpose_tree())
