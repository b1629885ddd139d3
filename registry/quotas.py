"""Quotas: how much work one organisation may ask of Kyoka per minute, counted in Redis.

What is counted is work, not requests: a check costs one unit per item, more for items that
cost more to answer (a phash item by its band probes, a long URL by its length, a file by the
hashing it needs); any other API request costs one unit. The count belongs to the organisation
the request acts for, whichever of its keys or members sends it, so more keys buy no more
quota (and an organisation holds at most KYOKA_MAX_API_KEYS_PER_ORGANIZATION keys). A key's
own `quota_per_minute`, when set, is a second, tighter limit on that key alone.

Counting is one Lua script: every limit a request falls under is checked and, only if all of
them have room, charged, in one atomic step across every web process. A refused request
charges nothing, so a client retrying too early does not push its own reset further away.
Windows are fixed and start with the first charge (INCRBY, then PEXPIRE on a fresh key), so
"exactly the quota" holds under any number of concurrent clients.

When Redis cannot be reached, `quota_charge` raises QuotaUnavailable. Kyoka fails closed by
default: the API answers 503 `quota_unavailable` with Retry-After, and no answer is given
that nobody counted (KYOKA_QUOTA_FAIL_OPEN=true serves requests uncounted instead; either way
no decision is ever wrong, because a request is either answered in full or refused). A
Kyoka without REDIS_URL (the embedded default, one machine) counts in process memory.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.utils.translation import gettext as _

from registry.exceptions import KyokaError
from registry.matching.fingerprints import DEFAULT_NEAR_MATCH_DISTANCE, MAX_NEAR_MATCH_DISTANCE, phash_probe_cost

WINDOW_SECONDS = 60
# One unit buys this many band probes; at the default distance 8 a phash item costs 8 units.
PROBES_PER_UNIT = 100
# URLs up to this length cost one unit; each further run of this many characters one more
# (normalising a 2 KB percent-encoded URL costs ~1 ms, thirty times a short one).
URL_CHARACTERS_PER_UNIT = 512
# A file is read, hashed and, if an image, decoded: one unit per started MiB, at least this many.
FILE_MIN_UNITS = 10
FILE_BYTES_PER_UNIT = 1024 * 1024
DEFAULT_MAX_DISTANCE = DEFAULT_NEAR_MATCH_DISTANCE
# Short, so that a Redis that is away costs a request a fraction of a second, not a hang.
_SOCKET_TIMEOUT_SECONDS = 0.5

_CHARGE_SCRIPT = """
local cost = tonumber(ARGV[1])
local window = tonumber(ARGV[2])
local remaining = nil
local reset = 0
for i, key in ipairs(KEYS) do
  local limit = tonumber(ARGV[2 + i])
  local used = tonumber(redis.call('GET', key) or '0')
  local ttl = redis.call('PTTL', key)
  if ttl < 0 then ttl = window end
  if used + cost > limit then
    return {0, limit - used, ttl, i}
  end
  if remaining == nil or limit - used - cost < remaining then
    remaining = limit - used - cost
    reset = ttl
  end
end
for i, key in ipairs(KEYS) do
  redis.call('INCRBY', key, cost)
  if redis.call('PTTL', key) < 0 then redis.call('PEXPIRE', key, window) end
end
return {1, remaining, reset, 0}
"""


class QuotaUnavailable(Exception):
    """The counter cannot be reached: the request can be neither counted nor refused by count."""


@dataclass(frozen=True)
class Limit:
    """One counter a request falls under: `subject` names it (an organisation, a key, an address)."""

    subject: str
    limit: int


@dataclass(frozen=True)
class QuotaState:
    """The outcome of one charge, in the terms of the RateLimit-* headers.

    `limit` and `remaining` are those of the tightest counter; `reset_seconds` is when its
    window ends. `allowed` False means nothing was charged; `limited_by` names the counter that
    refused.
    """

    allowed: bool
    cost: int
    limit: int
    remaining: int
    reset_seconds: int
    limited_by: str | None = None

    @property
    def impossible(self) -> bool:
        """Refused for good: the request alone costs more than its whole window allows."""
        return not self.allowed and self.cost > self.limit


# --- what a request costs ----------------------------------------------------------------------


def phash_item_units(max_distance: Any) -> int:
    """Units for one phash item: its band probes, at least one unit."""
    if (
        isinstance(max_distance, bool)
        or not isinstance(max_distance, int)
        or not 0 <= max_distance <= MAX_NEAR_MATCH_DISTANCE
    ):
        return 1  # an invalid item is answered `invalid` without any lookup
    return max(1, math.ceil(phash_probe_cost(max_distance) / PROBES_PER_UNIT))


def url_item_units(url: Any) -> int:
    if not isinstance(url, str):
        return 1
    return 1 + len(url) // URL_CHARACTERS_PER_UNIT


def file_units(size: int | None) -> int:
    return max(FILE_MIN_UNITS, math.ceil((size or 0) / FILE_BYTES_PER_UNIT))


def check_items_units(items: Any) -> int:
    """What a check's items cost, from the request as sent (before parsing: it only counts).

    Anything that is not a list costs one unit (the request will be refused as invalid).
    """
    if not isinstance(items, list):
        return 1
    units = 0
    for item in items:
        # Most items are a digest (one unit): two membership tests tell them apart.
        if isinstance(item, dict) and ("phash" in item or "url" in item):
            if item.get("phash") is not None:
                units += phash_item_units(item.get("max_distance", DEFAULT_MAX_DISTANCE))
                continue
            if item.get("url") is not None:
                units += url_item_units(item.get("url"))
                continue
        units += 1
    return max(units, 1)


# --- counting --------------------------------------------------------------------------------


def organization_limit(organization_id: object) -> Limit:
    return Limit(f"org:{organization_id}", settings.KYOKA_QUOTA_UNITS_PER_MINUTE)


def quota_charge(*, limits: Sequence[Limit], cost: int) -> QuotaState:
    """Charge `cost` units to every counter in `limits` if all have room, else to none.

    Raises QuotaUnavailable when Redis cannot be reached.
    """
    if not limits:
        raise ValueError("quota_charge needs at least one limit")
    cost = max(int(cost), 0)
    url = getattr(settings, "KYOKA_QUOTA_REDIS_URL", "")
    if not url:
        return _local.charge(limits, cost)
    import redis

    keys = [_key(limit.subject) for limit in limits]
    try:
        allowed, remaining, reset_ms, refused_by = _script(url)(
            keys=keys, args=[cost, WINDOW_SECONDS * 1000, *(limit.limit for limit in limits)]
        )
    except redis.exceptions.RedisError as error:
        raise QuotaUnavailable(str(error)) from error
    tightest = limits[int(refused_by) - 1] if refused_by else _tightest(limits, int(remaining))
    return QuotaState(
        allowed=bool(allowed), cost=cost, limit=tightest.limit, remaining=max(int(remaining), 0),
        reset_seconds=max(1, math.ceil(int(reset_ms) / 1000)),
        limited_by=tightest.subject if not allowed else None,
    )


def quota_reset(*, subjects: Iterable[str]) -> None:
    """Forget the counts of these subjects (tests, and an operator lifting a block)."""
    url = getattr(settings, "KYOKA_QUOTA_REDIS_URL", "")
    if not url:
        _local.forget(subjects)
        return
    keys = [_key(subject) for subject in subjects]
    if keys:
        _client(url).delete(*keys)


def quota_store_warm() -> None:
    """Connect to the quota store and load the charging script now, before the first request needs them."""
    url = getattr(settings, "KYOKA_QUOTA_REDIS_URL", "")
    if url:
        _script(url)
        _client(url).ping()


def _key(subject: str) -> str:
    return f"{settings.KYOKA_QUOTA_KEY_PREFIX}{subject}"


def _tightest(limits: Sequence[Limit], remaining: int) -> Limit:
    # The script reports the smallest remaining; any limit at least that large may own it, and
    # for the headers the smallest such limit is the honest one.
    fitting = [limit for limit in limits if limit.limit >= remaining]
    return min(fitting or limits, key=lambda limit: limit.limit)


_clients: dict[str, Any] = {}
_scripts: dict[str, Any] = {}
_clients_lock = threading.Lock()


def _client(url: str) -> Any:
    import redis

    with _clients_lock:
        if url not in _clients:
            _clients[url] = redis.Redis.from_url(
                url, socket_timeout=_SOCKET_TIMEOUT_SECONDS, socket_connect_timeout=_SOCKET_TIMEOUT_SECONDS,
                health_check_interval=30,
            )
        return _clients[url]


def _script(url: str) -> Any:
    client = _client(url)
    with _clients_lock:
        if url not in _scripts:
            _scripts[url] = client.register_script(_CHARGE_SCRIPT)
        return _scripts[url]


class _LocalCounters:
    """The same windows in process memory, for the embedded default without Redis."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: dict[str, tuple[int, float]] = {}

    def charge(self, limits: Sequence[Limit], cost: int) -> QuotaState:
        now = time.monotonic()
        with self._lock:
            states = []
            for limit in limits:
                used, ends = self._counts.get(limit.subject, (0, now + WINDOW_SECONDS))
                if ends <= now:
                    used, ends = 0, now + WINDOW_SECONDS
                states.append((limit, used, ends))
                if used + cost > limit.limit:
                    return QuotaState(
                        allowed=False, cost=cost, limit=limit.limit, remaining=max(limit.limit - used, 0),
                        reset_seconds=max(1, math.ceil(ends - now)), limited_by=limit.subject,
                    )
            for limit, used, ends in states:
                self._counts[limit.subject] = (used + cost, ends)
            limit, used, ends = min(states, key=lambda state: state[0].limit - state[1])
            return QuotaState(
                allowed=True, cost=cost, limit=limit.limit, remaining=limit.limit - used - cost,
                reset_seconds=max(1, math.ceil(ends - now)),
            )

    def forget(self, subjects: Iterable[str]) -> None:
        with self._lock:
            for subject in subjects:
                self._counts.pop(subject, None)


_local = _LocalCounters()


# --- for callers outside the API (the portal's check console) ----------------------------------


class QuotaExceeded(KyokaError):
    code = "quota_exceeded"
    status = 429


class QuotaCounterUnavailable(KyokaError):
    code = "quota_unavailable"
    status = 503


def check_quota_charge(*, organization_id: object, items: Any, uploads: Sequence[Any] = ()) -> QuotaState | None:
    """Charge a check's units to its organisation, as the API's throttle does; raise if refused.

    Returns None when Redis is away and KYOKA_QUOTA_FAIL_OPEN serves uncounted.
    """
    cost = (check_items_units(items) if items else 0) + sum(file_units(getattr(u, "size", 0)) for u in uploads)
    try:
        state = quota_charge(limits=[organization_limit(organization_id)], cost=max(cost, 1))
    except QuotaUnavailable:
        if settings.KYOKA_QUOTA_FAIL_OPEN:
            return None
        raise QuotaCounterUnavailable(
            _("Kyoka cannot count this check against your quota right now, so it is not answered; "
              "try again in a few seconds.")
        ) from None
    if not state.allowed:
        raise QuotaExceeded(
            _("Your organisation has used its quota of %(limit)s units for this minute (this check needs "
              "%(cost)s); try again in %(seconds)d seconds.")
            % {"limit": f"{state.limit:,}", "cost": f"{state.cost:,}", "seconds": state.reset_seconds}
        )
    return state
