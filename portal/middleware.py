"""The portal's middleware: the Content-Security-Policy (django-csp, with one relaxation for the API
docs page), and the time zone times are shown in."""

from __future__ import annotations

from collections.abc import Callable
from zoneinfo import ZoneInfo

from csp.middleware import CSPMiddleware
from django.http import HttpRequest, HttpResponseBase
from django.utils import timezone
from django.utils.translation import get_language

SESSION_TIME_ZONE = "kyoka_time_zone"
# The zones the header offers. Kyoka's first users are in Japan; the rest cover where AI developers are.
TIME_ZONES = (
    "UTC", "Asia/Tokyo", "Asia/Seoul", "Asia/Shanghai", "Asia/Singapore", "Europe/London", "Europe/Paris",
    "America/New_York", "America/Los_Angeles", "Australia/Sydney",
)
LANGUAGE_TIME_ZONES = {"ja": "Asia/Tokyo"}

# Swagger UI (drf-spectacular's template) starts itself with an inline script and inline styles.
API_DOCS_PREFIX = "/api/docs/"


class ContentSecurityPolicyMiddleware(CSPMiddleware):
    def process_response(self, request: HttpRequest, response: HttpResponseBase) -> HttpResponseBase:
        if request.path.startswith(API_DOCS_PREFIX):
            response._csp_update = {  # type: ignore[attr-defined]
                "script-src": ["'unsafe-inline'"], "style-src": ["'unsafe-inline'"],
            }
        return super().process_response(request, response)


class TimeZoneMiddleware:
    """Show times in the reader's time zone: the one chosen in the session, else one for the language.

    Display only: the database and every service keep UTC. Runs after LocaleMiddleware, so the
    default can follow the language the page is shown in (Japanese → Asia/Tokyo).
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponseBase]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        timezone.activate(ZoneInfo(time_zone_for(request)))
        try:
            return self.get_response(request)
        finally:
            timezone.deactivate()


def time_zone_for(request: HttpRequest) -> str:
    chosen = request.session.get(SESSION_TIME_ZONE) if hasattr(request, "session") else None
    if chosen in TIME_ZONES:
        return chosen
    return LANGUAGE_TIME_ZONES.get((get_language() or "").split("-")[0], "UTC")
