"""Parsing a check: request-level terms and items, with the limits every entry point shares.

An unknown purpose, territory or context fails the whole request (400); anything wrong with one
item makes that item `invalid` and the rest of the batch is still answered.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.utils import timezone
from django.utils.translation import gettext as _

from registry.exceptions import KyokaError, ValidationFailed
from registry.matching.fingerprints import (
    DEFAULT_NEAR_MATCH_DISTANCE,
    MAX_NEAR_MATCH_DISTANCE,
    PHASH_PROBE_BUDGET,
    FileRejected,
    fingerprint_file,
    phash_from_hex,
    phash_probe_cost,
    phash_probes_total,
    phash_to_hex,
)
from registry.matching.identifiers import InvalidIdentifier, parse_identifier
from registry.matching.urls import InvalidURL, normalize_url_and_host
from registry.models import Organization
from registry.purposes import CONTEXTS, DEFAULT_CONTEXT, PURPOSES
from registry.territories import is_territory

MAX_ITEMS = 10_000
MAX_FILES = 100
MAX_FILE_BYTES = 50 * 1024 * 1024
DEFAULT_MAX_DISTANCE = DEFAULT_NEAR_MATCH_DISTANCE
MAX_DISTANCE = MAX_NEAR_MATCH_DISTANCE
MAX_REF_LENGTH = 200
ITEM_KEYS = ("sha256", "phash", "url", "identifier")
_SHA256 = re.compile(r"[0-9a-f]{64}")


class TooManyItems(KyokaError):
    code = "too_many_items"
    status = 413


class ProbeBudgetExceeded(KyokaError):
    code = "probe_budget_exceeded"
    status = 422


@dataclass(frozen=True)
class CheckRequest:
    requester: Organization
    purpose: str
    territory: str | None
    context: str
    at: datetime


@dataclass(slots=True)
class Item:
    """One parsed item. Exactly one lookup key is set (a file sets sha256 and phash), or `error`."""

    index: int
    ref: str | None = None
    sha256: str | None = None
    phash: int | None = None
    max_distance: int = DEFAULT_MAX_DISTANCE
    url: str | None = None
    url_host: str | None = None
    identifier: tuple[str, str] | None = None
    error: str | None = None

    @property
    def checked(self) -> dict[str, Any]:
        """The normalised key the answer is decided on: what a receipt binds, whatever `ref` says."""
        if self.error is not None:
            return {}
        if self.sha256 is not None:
            return {"sha256": self.sha256, **({"phash": phash_to_hex(self.phash)} if self.phash is not None else {})}
        if self.phash is not None:
            return {"phash": phash_to_hex(self.phash), "max_distance": self.max_distance}
        if self.url is not None:
            return {"url": self.url}
        if self.identifier is not None:
            return {"identifier": f"{self.identifier[0]}:{self.identifier[1]}"}
        return {}


def parse_check_request(
    *, requester: Organization, purpose: Any, territory: Any = None, context: Any = None,
    at: datetime | None = None,
) -> CheckRequest:
    """Request-level terms. An unknown purpose, territory or context fails the whole request."""
    errors: dict[str, list[str]] = {}
    if not isinstance(purpose, str) or purpose not in PURPOSES:
        errors["purpose"] = [_("Unknown purpose; one of: %(purposes)s.") % {"purposes": ", ".join(PURPOSES)}]
    if territory is not None and (not isinstance(territory, str) or not is_territory(territory.upper())):
        errors["territory"] = [_("Not an ISO 3166-1 alpha-2 code.")]
    if context is not None and (not isinstance(context, str) or context not in CONTEXTS):
        errors["context"] = [_("Unknown context; one of: %(contexts)s.") % {"contexts": ", ".join(CONTEXTS)}]
    if errors:
        raise ValidationFailed(_("The check request is not valid."), fields=errors)
    return CheckRequest(
        requester=requester, purpose=purpose, territory=territory.upper() if territory else None,
        context=context or DEFAULT_CONTEXT, at=at or timezone.now(),
    )


def parse_item(index: int, raw: Any) -> Item:
    """One item. Anything wrong with it makes it `invalid` (with the reason), never the batch.

    Written for the common item, a digest or a URL already in normal form with a string ref:
    a 1,000-item check runs this a thousand times, so each key is read once and the Item is
    built once, with its fields.
    """
    if not isinstance(raw, dict):
        return Item(index=index, error=_("An item must be an object."))
    ref = raw.get("ref")
    if ref is not None:
        ref = (ref if type(ref) is str else str(ref))[:MAX_REF_LENGTH]
    sha256, phash, url, identifier = raw.get("sha256"), raw.get("phash"), raw.get("url"), raw.get("identifier")
    if (sha256 is not None) + (phash is not None) + (url is not None) + (identifier is not None) != 1:
        return Item(index, ref, error=_("An item needs exactly one of: %(keys)s.") % {"keys": ", ".join(ITEM_KEYS)})
    if sha256 is not None:
        if type(sha256) is str and _SHA256.fullmatch(sha256):  # already lower case, nothing around it
            return Item(index, ref, sha256)
        return _parse_sha256(index, ref, sha256)
    if url is not None:
        if type(url) is not str:
            return Item(index, ref, error=_("%(key)s must be a string.") % {"key": "url"})
        try:
            normalized, host = normalize_url_and_host(url)
        except InvalidURL as exc:
            return Item(index, ref, error=_("url: %(error)s") % {"error": exc})
        return Item(index, ref, url=normalized, url_host=host)
    if phash is not None:
        return _parse_phash(index, ref, phash, raw.get("max_distance", DEFAULT_MAX_DISTANCE))
    if not isinstance(identifier, str):
        return Item(index, ref, error=_("%(key)s must be a string.") % {"key": "identifier"})
    try:
        return Item(index, ref, identifier=parse_identifier(identifier))
    except InvalidIdentifier as exc:
        return Item(index, ref, error=_("identifier: %(error)s") % {"error": exc})


def _parse_sha256(index: int, ref: str | None, value: Any) -> Item:
    if not isinstance(value, str):
        return Item(index, ref, error=_("%(key)s must be a string.") % {"key": "sha256"})
    digest = value.strip().lower()
    if _SHA256.fullmatch(digest):
        return Item(index, ref, digest)
    return Item(index, ref, error=_("sha256 must be 64 hexadecimal characters."))


def _parse_phash(index: int, ref: str | None, value: Any, max_distance: Any) -> Item:
    if not isinstance(value, str):
        return Item(index, ref, error=_("%(key)s must be a string.") % {"key": "phash"})
    try:
        phash = phash_from_hex(value.strip())
    except ValueError:
        return Item(index, ref, error=_("phash must be 16 hexadecimal characters."))
    if isinstance(max_distance, bool) or not isinstance(max_distance, int) or not 0 <= max_distance <= MAX_DISTANCE:
        error = _("max_distance must be an integer from 0 to %(limit)d.") % {"limit": MAX_DISTANCE}
        return Item(index, ref, error=error)
    return Item(index, ref, phash=phash, max_distance=max_distance)


def parse_items(raw_items: Any, *, extra: int = 0) -> list[Item]:
    """The items of a JSON check; `extra` counts files sent beside them towards the same limit."""
    if not isinstance(raw_items, list):
        raise ValidationFailed(
            _("items must be a non-empty list."), fields={"items": [_("A non-empty list is required.")]},
        )
    items_limit_check(len(raw_items) + extra)
    return [parse_item(index, raw) for index, raw in enumerate(raw_items)]


def items_limit_check(count: int) -> None:
    if count == 0:
        raise ValidationFailed(
            _("items must be a non-empty list."), fields={"items": [_("A non-empty list is required.")]},
        )
    if count > MAX_ITEMS:
        raise TooManyItems(
            _("At most %(limit)d items per check; this request has %(count)d.") % {"limit": MAX_ITEMS, "count": count}
        )


def probe_budget_check(items: list[Item]) -> None:
    """Refuse a check whose phash items together need more band probes than PHASH_PROBE_BUDGET.

    Near-match work grows steeply with max_distance (718 probes an item at 8, 24,203 at 12), so
    the bound is on the request's total, before any lookup.
    """
    cost = phash_probes_total(item.max_distance for item in items if item.phash is not None and item.error is None)
    if cost > PHASH_PROBE_BUDGET:
        raise ProbeBudgetExceeded(
            _(
                "This check's phash items need %(cost)s band probes; at most %(budget)s are allowed per check. "
                "Send fewer phash items per request or smaller max_distance values "
                "(an item at the default distance %(default)d needs %(default_cost)s)."
            )
            % {"cost": f"{cost:,}", "budget": f"{PHASH_PROBE_BUDGET:,}", "default": DEFAULT_MAX_DISTANCE,
               "default_cost": f"{phash_probe_cost(DEFAULT_MAX_DISTANCE):,}"},
            fields={"items": [_("Over the phash probe budget of %(budget)s.") % {"budget": f"{PHASH_PROBE_BUDGET:,}"}]},
        )


def file_items(uploads: list[Any], *, first_index: int = 0) -> list[Item]:
    """Items for uploaded files, hashed with the same pipeline as registration.

    A file that cannot be fingerprinted (empty, too large, a name that lies, a bomb) is an
    invalid item with the reason; the rest of the batch is still answered.
    """
    if len(uploads) > MAX_FILES:
        raise ValidationFailed(
            _("At most %(limit)d files per check.") % {"limit": MAX_FILES}, fields={"files": [_("Too many files.")]},
        )
    items = []
    for offset, upload in enumerate(uploads):
        item = Item(index=first_index + offset, ref=getattr(upload, "name", None))
        try:
            fingerprint = fingerprint_file(upload, filename=item.ref, max_bytes=MAX_FILE_BYTES)
        except FileRejected as exc:
            item.error = str(exc)
        else:
            item.sha256, item.phash = fingerprint.sha256, fingerprint.phash
        items.append(item)
    return items
