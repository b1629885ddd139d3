"""Probes and metrics for operators: /healthz (the process answers), /readyz (its dependencies
answer), /metrics (Prometheus; only with the bearer token or from allowed addresses)."""

from __future__ import annotations

import hmac
from collections.abc import Callable

from django.conf import settings
from django.db import connections
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.cache import never_cache

from portal.middleware import address_in
from registry.metrics import render_metrics

PROBE_TIMEOUT_SECONDS = 2


@never_cache
def healthz(request: HttpRequest) -> JsonResponse:
    """Alive: answers without touching anything else, so a slow database never restarts the web."""
    return JsonResponse({"status": "ok"})


def _database() -> None:
    with connections["default"].cursor() as cursor:
        cursor.execute("SELECT 1")


def _redis_url_ping(url: str) -> None:
    import redis

    redis.Redis.from_url(url, socket_timeout=PROBE_TIMEOUT_SECONDS,
                         socket_connect_timeout=PROBE_TIMEOUT_SECONDS).ping()


def _cache() -> None:
    if settings.REDIS_URL:
        _redis_url_ping(settings.REDIS_URL)


def _broker() -> None:
    from portal.celery import app

    if settings.CELERY_BROKER_URL.startswith(("redis://", "rediss://")):
        _redis_url_ping(settings.CELERY_BROKER_URL)
        return
    with app.connection_for_write() as connection:
        connection.ensure_connection(max_retries=1, timeout=PROBE_TIMEOUT_SECONDS)


CHECKS: dict[str, Callable[[], None]] = {"database": _database, "redis": _cache, "broker": _broker}


@never_cache
def readyz(request: HttpRequest) -> JsonResponse:
    """Ready: the database, Redis and the Celery broker answer. 503 names what is down."""
    down = []
    for name, check in CHECKS.items():
        try:
            check()
        except Exception:  # any failure means "not ready"; what failed is the answer
            down.append(name)
    if down:
        return JsonResponse({"status": "unavailable", "down": down}, status=503)
    return JsonResponse({"status": "ok", "checked": list(CHECKS)})


def _metrics_allowed(request: HttpRequest) -> bool:
    token = settings.KYOKA_METRICS_TOKEN
    given = request.META.get("HTTP_AUTHORIZATION", "")
    if token and hmac.compare_digest(given.encode(), f"Bearer {token}".encode()):
        return True
    address = getattr(request, "client_address", request.META.get("REMOTE_ADDR", ""))
    return address_in(address, settings.KYOKA_METRICS_ALLOWED_ADDRESSES)


@never_cache
def metrics(request: HttpRequest) -> HttpResponse:
    if not _metrics_allowed(request):
        # 404, not 403: the public is not told that there is something here.
        return HttpResponse(status=404)
    body, content_type = render_metrics()
    return HttpResponse(body, content_type=content_type)
