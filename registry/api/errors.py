"""One error shape for every API failure: {"error": {"code", "message", "fields"}}."""

from __future__ import annotations

from django.core.exceptions import SuspiciousOperation
from django.http import Http404
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from registry.exceptions import KyokaError


def error_response(code: str, message: str, status_code: int, fields: dict | None = None, headers=None) -> Response:
    return Response(
        {"error": {"code": code, "message": message, "fields": fields or {}}}, status=status_code, headers=headers
    )


def _flatten(detail) -> dict:
    if isinstance(detail, dict):
        return {k: [str(m) for m in (v if isinstance(v, list) else [v])] for k, v in detail.items()}
    return {}


def exception_handler(exc, context):
    if isinstance(exc, KyokaError):
        return error_response(exc.code, exc.message, exc.status, exc.fields)
    if isinstance(exc, Http404):
        return error_response("not_found", "Not found.", status.HTTP_404_NOT_FOUND)
    if isinstance(exc, SuspiciousOperation):
        # Django's request parsing refuses too many form fields or files, or a malformed body,
        # with SuspiciousOperation; left alone it becomes an HTML page instead of the error shape.
        return error_response("invalid", str(exc) or "The request cannot be read.", status.HTTP_400_BAD_REQUEST)
    response = drf_exception_handler(exc, context)
    if response is None:
        return None
    headers = {k: v for k, v in response.items() if k in ("Retry-After", "WWW-Authenticate", "Allow")}
    if isinstance(exc, exceptions.ValidationError):
        fields = _flatten(exc.detail)
        message = (
            " ".join(str(m) for m in exc.detail) if isinstance(exc.detail, list) else "The request is not valid."
        )
        return error_response("invalid", message, response.status_code, fields, headers)
    code = getattr(exc, "default_code", "error")
    if isinstance(exc, exceptions.Throttled):
        code = "quota_exceeded"
    message = str(exc.detail) if hasattr(exc, "detail") else str(exc)
    return error_response(code, message, response.status_code, None, headers)
