"""Failed-login counters for the portal's and the admin's login forms, kept in Redis (the cache).

Four counters, each a fixed window of KYOKA_LOGIN_LOCKOUT_SECONDS that starts at its first failure:
- (normalised username, client address): the lock-out a guesser meets first (a few tries);
- normalised username from any address: far higher, so that a stranger cannot lock a person
  out from everywhere cheaply, yet a botnet cannot guess one password forever;
- client address over all usernames: one machine spraying many accounts;
- the whole site: a ceiling for a distributed attack.
The username is the normal form (registry.services.accounts.email_normalize), so full-width or
upper-case spellings of one address share its counters; the client address is the one
portal.middleware.ClientAddressMiddleware derived (X-Forwarded-For only from TRUSTED_PROXIES).

Counting is atomic: INCR and the window's expiry in one Lua script on Redis, so concurrent
failures are all counted and a counter can never lose its expiry (a lock-out without end).
Without Redis (the embedded default) the local-memory cache counts per process.
"""

from __future__ import annotations

import hashlib

from django.conf import settings
from django.core.cache import cache
from django.http import HttpRequest

from registry.exceptions import ValidationFailed
from registry.services.accounts import email_normalize

_INCREMENT = """
local count = redis.call('INCR', KEYS[1])
if count == 1 or redis.call('TTL', KEYS[1]) < 0 then
  redis.call('EXPIRE', KEYS[1], ARGV[1])
end
return count
"""


def normal_username(username: str) -> str:
    try:
        return email_normalize(username)
    except ValidationFailed:
        # Not an address: still one counter per spelling family, never one per raw spelling.
        return " ".join((username or "").split()).casefold()[:254]


def _keys(username: str, address: str) -> dict[str, tuple[str, int]]:
    # Hashed, so neither addresses nor usernames sit in Redis in clear.
    user = hashlib.sha256(normal_username(username).encode()).hexdigest()[:32]
    client = hashlib.sha256(address.encode()).hexdigest()[:32]
    return {
        "pair": (f"login-failures:pair:{user}:{client}", settings.KYOKA_LOGIN_FAILURE_LIMIT),
        "user": (f"login-failures:user:{user}", settings.KYOKA_LOGIN_USER_FAILURE_LIMIT),
        "address": (f"login-failures:address:{client}", settings.KYOKA_LOGIN_ADDRESS_FAILURE_LIMIT),
        "site": ("login-failures:site", settings.KYOKA_LOGIN_GLOBAL_FAILURE_LIMIT),
    }


def client_address(request: HttpRequest | None) -> str:
    if request is None:
        return ""
    return getattr(request, "client_address", None) or request.META.get("REMOTE_ADDR", "")


def login_refused(request: HttpRequest | None, username: str) -> bool:
    """Has any counter for this attempt reached its limit?"""
    keys = _keys(username, client_address(request))
    counts = cache.get_many([key for key, _limit in keys.values()])
    return any(int(counts.get(key) or 0) >= limit for key, limit in keys.values())


def login_failed(request: HttpRequest | None, username: str) -> None:
    """Count one failure on every counter, atomically."""
    window = settings.KYOKA_LOGIN_LOCKOUT_SECONDS
    keys = [key for key, _limit in _keys(username, client_address(request)).values()]
    client = _redis_client()
    if client is not None:
        script = client.register_script(_INCREMENT)
        pipeline = client.pipeline(transaction=False)
        for key in keys:
            script(keys=[cache.make_key(key)], args=[window], client=pipeline)
        pipeline.execute()
        return
    for key in keys:
        cache.add(key, 0, timeout=window)
        try:
            cache.incr(key)
        except ValueError:  # expired between add and incr
            cache.set(key, 1, timeout=window)


def login_succeeded(request: HttpRequest | None, username: str) -> None:
    """Forget this pair's failures (a person who mistyped twice starts afresh). The per-user, per-address
    and site-wide counters stay: logging into one's own account must not reset a spray from that address."""
    key, _limit = _keys(username, client_address(request))["pair"]
    cache.delete(key)


def _redis_client():
    backend = getattr(cache, "_cache", None)
    get_client = getattr(backend, "get_client", None)
    # Django's RedisCache keeps its redis-py client here; other caches have none.
    return get_client(write=True) if get_client is not None and "Redis" in type(cache).__name__ else None
