"""The portal's middleware: the client's real address, the gate for unconfirmed addresses, the
Content-Security-Policy (django-csp, with one relaxation for the API docs page), and the time
zone times are shown in."""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from functools import cache
from zoneinfo import ZoneInfo

from csp.middleware import CSPMiddleware
from django.conf import settings
from django.http import HttpRequest, HttpResponseBase, JsonResponse
from django.shortcuts import redirect
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import get_language
from django.utils.translation import gettext as _

from registry.services.accounts import email_confirmed

SESSION_EMAIL_CONFIRMED = "kyoka_email_confirmed"

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


@cache
def _networks(entries: tuple[str, ...]) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    return tuple(ipaddress.ip_network(entry.strip(), strict=False) for entry in entries if entry.strip())


def address_in(address: str, entries: list[str] | tuple[str, ...]) -> bool:
    """Is `address` one of `entries` (addresses or networks)? False for anything unparsable."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in network for network in _networks(tuple(entries)))


def real_client_address(remote_addr: str, forwarded_for: str, trusted_proxies: list[str] | tuple[str, ...]) -> str:
    """The client's address: REMOTE_ADDR, unless that is a trusted proxy, then X-Forwarded-For read
    from the right, skipping trusted proxies. Entries left of the first untrusted one were written by
    the client itself and are never believed."""
    if not forwarded_for or not address_in(remote_addr, trusted_proxies):
        return remote_addr
    for hop in reversed([part.strip() for part in forwarded_for.split(",")]):
        if not address_in(hop, trusted_proxies):
            try:
                return str(ipaddress.ip_address(hop))
            except ValueError:
                return remote_addr  # a garbled hop: fall back to the proxy itself
    return remote_addr


class ClientAddressMiddleware:
    """`request.client_address`: who is really calling, for throttles and quotas (settings.TRUSTED_PROXIES)."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponseBase]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        request.client_address = real_client_address(  # type: ignore[attr-defined]
            request.META.get("REMOTE_ADDR", ""), request.META.get("HTTP_X_FORWARDED_FOR", ""),
            settings.TRUSTED_PROXIES,
        )
        return self.get_response(request)


# What an account with an unconfirmed address may still reach: confirming, logging out, answering
# an invitation (which confirms), choosing a language.
_OPEN_TO_UNCONFIRMED = (
    "web:email_confirm_pending", "web:logout", "web:set_language", "web:time_zone_set", "web:signup_sent",
)
_OPEN_PREFIXES = ("/accounts/confirm/", "/invitations/", "/static/", "/healthz", "/readyz")


class EmailConfirmationRequiredMiddleware:
    """An account whose address is not confirmed sees the "confirm your address" page and nothing else."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponseBase]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        user = getattr(request, "user", None)
        if user is None or not user.is_authenticated or request.session.get(SESSION_EMAIL_CONFIRMED) == user.pk:
            return self.get_response(request)
        if email_confirmed(user):
            # Remembered for this session and this account only, so the check costs one query per login.
            request.session[SESSION_EMAIL_CONFIRMED] = user.pk
            return self.get_response(request)
        if request.path.startswith(_OPEN_PREFIXES) or request.path in {reverse(n) for n in _OPEN_TO_UNCONFIRMED}:
            return self.get_response(request)
        message = _("Confirm your email address first: open the link we sent you.")
        if request.path.startswith("/api/"):
            return JsonResponse(
                {"error": {"code": "email_unconfirmed", "message": message, "fields": {}}}, status=403
            )
        return redirect("web:email_confirm_pending")
