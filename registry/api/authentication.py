"""Bearer API keys for machines (quotas: registry/api/throttling.py)."""

from __future__ import annotations

import time
from dataclasses import dataclass

from django.core.cache import cache
from django.db import connections, router
from django.utils import timezone
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import authentication, exceptions

from registry.db_statements import fixed_cursor, model_columns, model_from_row
from registry.models import ApiKey, Organization
from registry.services.api_keys import hash_api_key

# last_used_at is written at most this often per key, not on every request.
LAST_USED_RESOLUTION_SECONDS = 60
# Keys this process knows were touched (by it or another process) within the resolution, by pk:
# their requests skip the cache's round trip (0.15 ms). last_used_at is then at most two
# resolutions behind the key's latest use.
_touched_at: dict[int, float] = {}


@dataclass
class KeyUser:
    """What request.user is for a request made with an API key."""

    api_key: ApiKey
    is_authenticated: bool = True
    is_active: bool = True
    is_staff: bool = False
    is_superuser: bool = False
    pk: None = None

    @property
    def organization(self) -> Organization:
        return self.api_key.organization

    def get_username(self) -> str:
        return f"key:{self.api_key.prefix}"


class ApiKeyAuthentication(authentication.BaseAuthentication):
    keyword = "Bearer"

    def authenticate(self, request):
        header = authentication.get_authorization_header(request).split()
        if not header or header[0].lower() != self.keyword.lower().encode():
            return None
        if len(header) != 2:
            raise exceptions.AuthenticationFailed("Authorization header must be 'Bearer <key>'.")
        try:
            raw_key = header[1].decode("ascii")
        except UnicodeDecodeError as exc:
            raise exceptions.AuthenticationFailed("Malformed API key.") from exc
        api_key = _api_key_by_secret_hash(hash_api_key(raw_key))
        if api_key is None:
            raise exceptions.AuthenticationFailed("Unknown API key.")
        if api_key.revoked_at is not None:
            raise exceptions.AuthenticationFailed("This API key has been revoked.")
        if api_key.suspended_at is not None or api_key.organization.suspended_at is not None:
            raise exceptions.AuthenticationFailed("This API key is suspended.")
        _last_used_touch(api_key)
        return KeyUser(api_key=api_key), api_key

    def authenticate_header(self, request) -> str:
        return f'{self.keyword} realm="kyoka"'


def _last_used_touch(api_key: ApiKey) -> None:
    """Record the key's use once per LAST_USED_RESOLUTION_SECONDS across processes (the cache decides who)."""
    now = time.monotonic()
    if now - _touched_at.get(api_key.pk, -LAST_USED_RESOLUTION_SECONDS) < LAST_USED_RESOLUTION_SECONDS:
        return
    try:
        touch = cache.add(f"apikey-touch:{api_key.pk}", 1, timeout=LAST_USED_RESOLUTION_SECONDS)
    except Exception:  # a cache that is away must not turn into a 500: write it anyway
        touch = True
    if touch:
        ApiKey.objects.filter(pk=api_key.pk).update(last_used_at=timezone.now())
    if len(_touched_at) > 10_000:  # forget keys not seen within the resolution
        for pk in [pk for pk, at in _touched_at.items() if now - at >= LAST_USED_RESOLUTION_SECONDS]:
            del _touched_at[pk]
    _touched_at[api_key.pk] = now


_KEY_SQL = (
    f"SELECT {model_columns(ApiKey, 'k')}, {model_columns(Organization, 'o')} "  # noqa: S608 (model columns)
    "FROM registry_apikey k JOIN registry_organization o ON o.id = k.organization_id WHERE k.secret_hash = %s"
)


def _api_key_by_secret_hash(secret_hash: str) -> ApiKey | None:
    """The key with its organisation. On PostgreSQL one fixed statement, prepared per connection:
    every API request starts here, and compiling the ORM query cost more than running it."""
    using = router.db_for_read(ApiKey)
    if connections[using].vendor != "postgresql":
        return ApiKey.objects.using(using).select_related("organization").filter(secret_hash=secret_hash).first()
    with fixed_cursor(using) as cursor:
        cursor.execute(_KEY_SQL, [secret_hash])
        row = cursor.fetchone()
    if row is None:
        return None
    width = len(ApiKey._meta.concrete_fields)
    api_key = model_from_row(ApiKey, row[:width], using)
    api_key.organization = model_from_row(Organization, row[width:], using)
    return api_key


class ApiKeyAuthenticationScheme(OpenApiAuthenticationExtension):
    """Tells drf-spectacular that machines authenticate with `Authorization: Bearer <key>`."""

    target_class = "registry.api.authentication.ApiKeyAuthentication"
    name = "apiKey"

    def get_security_definition(self, auto_schema):
        return {"type": "http", "scheme": "bearer", "bearerFormat": "kyoka_<prefix>_<secret>",
                "description": "An API key from `createapikey` or the portal; its scopes limit what it can do."}
