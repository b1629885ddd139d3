"""Reading request bodies without trusting them: sizes capped before reading, JSON depth capped.

Two guards, for the API and the portal alike:
- `RequestBodyLimitMiddleware` refuses a body larger than its route allows (413) from the
  Content-Length header, before any byte is read. A WSGI server hands Django no body without
  a Content-Length (Django reads at most that many bytes), so the header is the whole story.
  Routes not listed in ROUTE_BODY_LIMITS get DEFAULT_BODY_LIMIT.
- `LimitedJSONParser` (DRF's parser for application/json) reads at most the route's limit and
  refuses JSON nested deeper than MAX_JSON_DEPTH (400), where the standard library would raise
  RecursionError (a 500) or hand a structure to code that recurses over it.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import orjson
from django.conf import settings
from django.http import HttpRequest, HttpResponseBase, JsonResponse
from django.urls import Resolver404, resolve
from django.utils.translation import gettext as _
from rest_framework import parsers
from rest_framework.exceptions import APIException, ParseError
from rest_framework.utils.json import strict_constant

MIB = 1024 * 1024
# Deeper than any Kyoka document (a check is 3 levels deep, a grant's conditions 2); deep
# enough that no honest client meets it.
MAX_JSON_DEPTH = 32
DEFAULT_BODY_LIMIT = 10 * MIB
# 10,000 check items of a 2,048-character URL and a 200-character ref are ~23 MB.
CHECK_BODY_LIMIT = 24 * MIB
# A receipt of 10,000 items; base64 makes it a third larger.
RECEIPT_BODY_LIMIT = 32 * MIB
# 100 files of 50 MB would be 5 GB of temporary files for one request; 256 MiB in all.
FILE_CHECK_BODY_LIMIT = 256 * MIB
# One file of the fingerprinting limit (200 MB), with room for the form around it.
WORK_FILE_BODY_LIMIT = 201 * MIB


def _upload_body_limit() -> int:
    return settings.KYOKA_MAX_MANIFEST_BYTES + settings.KYOKA_MAX_ARCHIVE_BYTES + MIB


ROUTE_BODY_LIMITS: dict[str, int | Callable[[], int]] = {
    "api:checks": CHECK_BODY_LIMIT,
    "api:checks-files": FILE_CHECK_BODY_LIMIT,
    "api:receipts-verify": RECEIPT_BODY_LIMIT,
    "api:work-files": WORK_FILE_BODY_LIMIT,
    "api:uploads": _upload_body_limit,
    "web:console": FILE_CHECK_BODY_LIMIT,
    "web:receipt_verify": RECEIPT_BODY_LIMIT,
    "web:work_file_add": WORK_FILE_BODY_LIMIT,
    "web:uploads": _upload_body_limit,
}


def body_limit(route: str | None) -> int:
    limit = ROUTE_BODY_LIMITS.get(route or "", DEFAULT_BODY_LIMIT)
    return limit() if callable(limit) else limit


def _route_of(request: HttpRequest) -> str | None:
    match = getattr(request, "resolver_match", None)
    if match is None:
        try:
            match = resolve(request.path_info)
        except Resolver404:
            return None
    return match.view_name


def body_too_large_message(limit: int) -> str:
    return _("The request body is larger than the %(limit)s bytes this address accepts.") % {"limit": f"{limit:,}"}


class RequestBodyLimitMiddleware:
    """413 for a body over its route's limit, judged on Content-Length before anything reads it."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponseBase]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        try:
            length = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            length = -1
        if length < 0:
            return _error_response(400, "invalid", _("The Content-Length header is not a number."))
        if length > DEFAULT_BODY_LIMIT:  # every route accepts at least the default
            limit = body_limit(_route_of(request))
            if length > limit:
                return _error_response(413, "body_too_large", body_too_large_message(limit))
        return self.get_response(request)


def _error_response(status: int, code: str, message: str) -> JsonResponse:
    # The API's error shape for everyone: the portal's forms never send bodies this large, and
    # a JSON answer is clearer to a script than an HTML page.
    response = JsonResponse({"error": {"code": code, "message": message, "fields": {}}}, status=status)
    response["Connection"] = "close"  # the unread body must not be taken for the next request
    return response


def json_depth_exceeds(value: Any, limit: int = MAX_JSON_DEPTH) -> bool:
    """Whether a parsed JSON value nests lists and objects more than `limit` deep (iteratively).

    Parsed JSON holds only exact dicts and lists as containers, so `type(...) is` suffices; a
    check's thousand item objects cost one visit each.
    """
    if type(value) is not dict and type(value) is not list:
        return False
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        current, depth = stack.pop()
        for child in current.values() if type(current) is dict else current:
            kind = type(child)
            if kind is dict or kind is list:
                if depth >= limit:
                    return True
                # A container of scalars only (a check's item) needs no visit of its own: its
                # values' types are looked at in C.
                if not _CONTAINERS.isdisjoint(map(type, child.values() if kind is dict else child)):
                    stack.append((child, depth + 1))
    return False


_CONTAINERS = frozenset({dict, list})


class BodyTooLarge(APIException):
    status_code = 413
    default_code = "body_too_large"


class LimitedJSONParser(parsers.JSONParser):
    """DRF's JSON parser, reading at most the route's body limit and at most MAX_JSON_DEPTH deep."""

    def parse(self, stream, media_type=None, parser_context=None):
        parser_context = parser_context or {}
        request = parser_context.get("request")
        limit = body_limit(_route_of(request._request) if request is not None else None)
        raw = stream.read(limit + 1) if stream is not None else b""
        if len(raw) > limit:
            raise BodyTooLarge(body_too_large_message(limit))
        encoding = parsers.get_encoding(parser_context)
        try:
            if encoding.lower().replace("_", "-") in ("utf-8", "utf8"):
                # orjson reads UTF-8 bytes several times faster than json.loads, and refuses NaN
                # and Infinity as the strict standard-library path below does.
                data = orjson.loads(raw)
            else:
                parse_constant = strict_constant if self.strict else None
                data = json.loads(raw.decode(encoding), parse_constant=parse_constant)
        except RecursionError:
            raise ParseError(self._too_deep()) from None
        except orjson.JSONDecodeError as exc:
            # orjson stops at its own depth limit (1,024), far beyond MAX_JSON_DEPTH.
            if str(exc).startswith("depth limit exceeded"):
                raise ParseError(self._too_deep()) from None
            raise ParseError(_("JSON parse error - %(error)s") % {"error": exc}) from None
        except ValueError as exc:
            raise ParseError(_("JSON parse error - %(error)s") % {"error": exc}) from None
        if json_depth_exceeds(data):
            raise ParseError(self._too_deep())
        return data

    @staticmethod
    def _too_deep() -> str:
        return _("The JSON is nested more than %(limit)d levels deep.") % {"limit": MAX_JSON_DEPTH}
