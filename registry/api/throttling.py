"""The API's side of quotas (registry.quotas): who is charged, how much, and the RateLimit headers.

Every API request is charged to the organisation it acts for, keys and sessions alike: a key
to its organisation (and to the key's own quota_per_minute, if set), a signed-in person to the
organisation named by X-Kyoka-Organization or their only membership (else to their account),
anyone else to their client address. Checks cost their items' units; everything else one.

Responses carry RateLimit-Limit, RateLimit-Remaining and RateLimit-Reset (IETF httpapi
RateLimit header fields draft, seconds until the window resets) and RateLimit-Policy; beyond
the quota the answer is 429 `quota_exceeded` with Retry-After, and a request that alone costs
more than a whole window is 413 `request_too_costly` (waiting would not help).
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponseBase
from django.utils.translation import gettext as _
from rest_framework import exceptions, throttling

from registry.api.authentication import KeyUser
from registry.api.permissions import ORGANIZATION_HEADER
from registry.exceptions import KyokaError
from registry.models import Membership
from registry.quotas import (
    WINDOW_SECONDS,
    Limit,
    QuotaState,
    QuotaUnavailable,
    check_items_units,
    file_units,
    organization_limit,
    quota_charge,
)

logger = logging.getLogger(__name__)

REQUEST_ATTRIBUTE = "kyoka_quota"
UNAVAILABLE_RETRY_SECONDS = 5


class RequestTooCostly(KyokaError):
    code = "request_too_costly"
    status = 413


class QuotaServiceUnavailable(exceptions.APIException):
    status_code = 503
    default_code = "quota_unavailable"

    def __init__(self) -> None:
        super().__init__(_(
            "Kyoka cannot count this request against your quota right now, so it is not answered. "
            "Nothing was checked or changed; try again in a few seconds."
        ))


def _check_units(request) -> int:
    data = request.data
    return check_items_units(data.get("items") if isinstance(data, dict) else None)


def _file_units(request) -> int:
    files = request.FILES.getlist("files")
    return max(1, sum(file_units(getattr(upload, "size", 0)) for upload in files))


# What a request costs, by the name of its route; every other request costs one unit.
WEIGHTED_ROUTES: dict[str, Callable[..., int]] = {
    "checks": _check_units,
    "checks-files": _file_units,
}


def request_units(request) -> int:
    match = getattr(request, "resolver_match", None)
    weigh = WEIGHTED_ROUTES.get(match.url_name) if match is not None else None
    return weigh(request) if weigh is not None else 1


def request_limits(request) -> list[Limit]:
    user = request.user
    if isinstance(user, KeyUser):
        api_key = user.api_key
        limits = [organization_limit(api_key.organization_id)]
        if api_key.quota_per_minute:
            limits.append(Limit(f"key:{api_key.pk}", api_key.quota_per_minute))
        return limits
    if user is not None and getattr(user, "is_authenticated", False):
        memberships = Membership.objects.filter(user=user)
        slug = request.headers.get(ORGANIZATION_HEADER) or request.query_params.get("organization")
        if slug:
            memberships = memberships.filter(organization__slug=slug)
        organization_ids = list(memberships.values_list("organization_id", flat=True)[:2])
        if len(organization_ids) == 1:
            return [organization_limit(organization_ids[0])]
        return [Limit(f"user:{user.pk}", settings.KYOKA_QUOTA_UNITS_PER_MINUTE)]
    return [Limit(f"address:{request.META.get('REMOTE_ADDR', '')}", settings.KYOKA_QUOTA_ANONYMOUS_UNITS_PER_MINUTE)]


class OrganizationQuotaThrottle(throttling.BaseThrottle):
    """Charges each request's units to its organisation; see the module docstring."""

    def allow_request(self, request, view) -> bool:
        limits = request_limits(request)
        cost = request_units(request)
        try:
            state = quota_charge(limits=limits, cost=cost)
        except QuotaUnavailable as error:
            if settings.KYOKA_QUOTA_FAIL_OPEN:
                logger.warning("Quota counter unavailable; serving uncounted (KYOKA_QUOTA_FAIL_OPEN): %s", error)
                return True
            logger.error("Quota counter unavailable; refusing with 503: %s", error)
            raise QuotaServiceUnavailable() from error
        setattr(request._request, REQUEST_ATTRIBUTE, state)
        if state.impossible:
            raise RequestTooCostly(
                _(
                    "This request costs %(cost)d quota units, more than the %(limit)d your organisation may use "
                    "per %(window)d seconds: send fewer items (or smaller phash distances) per request."
                )
                % {"cost": state.cost, "limit": state.limit, "window": WINDOW_SECONDS}
            )
        self._wait = state.reset_seconds
        return state.allowed

    def wait(self) -> float:
        return float(self._wait)


def rate_limit_headers(state: QuotaState) -> dict[str, str]:
    return {
        "RateLimit-Limit": str(state.limit),
        "RateLimit-Remaining": str(state.remaining),
        "RateLimit-Reset": str(state.reset_seconds),
        "RateLimit-Policy": f"{state.limit};w={WINDOW_SECONDS}",
    }


class RateLimitHeadersMiddleware:
    """Adds the RateLimit-* headers to any response whose request was charged a quota."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponseBase]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        response = self.get_response(request)
        state = getattr(request, REQUEST_ATTRIBUTE, None)
        if state is not None:
            for name, value in rate_limit_headers(state).items():
                response[name] = value
            if not state.allowed and not state.impossible:
                response["Retry-After"] = str(state.reset_seconds)
        if response.status_code == 503 and getattr(response, "data", None) and "Retry-After" not in response:
            error = response.data.get("error", {}) if isinstance(response.data, dict) else {}
            if error.get("code") == QuotaServiceUnavailable.default_code:
                response["Retry-After"] = str(UNAVAILABLE_RETRY_SECONDS)
        return response
