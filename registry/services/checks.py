"""A check call: parse the items, decide, render the body, sign it, and record it."""

from __future__ import annotations

import json
import re
import uuid
import zlib
from collections import Counter
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from registry.exceptions import KyokaError, ValidationFailed
from registry.matching.fingerprints import FileRejected, fingerprint_file, phash_from_hex
from registry.matching.identifiers import InvalidIdentifier, parse_identifier
from registry.matching.urls import InvalidURL, normalize_url, url_host
from registry.models import ApiKey, Check, Organization, WorkAccess
from registry.purposes import CONTEXTS, DEFAULT_CONTEXT, PURPOSES
from registry.receipts import sign_receipt
from registry.selectors.decisions import CheckRequest, Decision, Item, ItemResult, decide
from registry.territories import is_territory

MAX_ITEMS = 10_000
DEFAULT_MAX_DISTANCE = 8
MAX_DISTANCE = 12
ITEM_KEYS = ("sha256", "phash", "url", "identifier")
_SHA256 = re.compile(r"[0-9a-f]{64}")


class TooManyItems(KyokaError):
    code = "too_many_items"
    status = 413


@dataclass(frozen=True)
class CheckOutcome:
    check: Check
    body: bytes
    signature: str


def parse_check_request(
    *, requester: Organization, purpose: Any, territory: Any = None, context: Any = None
) -> CheckRequest:
    """Request-level terms. An unknown purpose, territory or context fails the whole request."""
    errors: dict[str, list[str]] = {}
    if purpose not in PURPOSES:
        errors["purpose"] = [_("Unknown purpose; one of: %(purposes)s.") % {"purposes": ", ".join(PURPOSES)}]
    if territory is not None and (not isinstance(territory, str) or not is_territory(territory.upper())):
        errors["territory"] = [_("Not an ISO 3166-1 alpha-2 code.")]
    if context is not None and context not in CONTEXTS:
        errors["context"] = [_("Unknown context; one of: %(contexts)s.") % {"contexts": ", ".join(CONTEXTS)}]
    if errors:
        raise ValidationFailed(_("The check request is not valid."), fields=errors)
    return CheckRequest(
        requester=requester, purpose=purpose, territory=territory.upper() if territory else None,
        context=context or DEFAULT_CONTEXT, at=timezone.now(),
    )


def parse_item(index: int, raw: Any) -> Item:
    """One item. Anything wrong with it makes it `invalid` (with the reason), never the batch."""
    if not isinstance(raw, dict):
        return Item(index=index, error="An item must be an object.")
    ref = raw.get("ref")
    item = Item(index=index, ref=str(ref)[:200] if ref is not None else None)
    keys = [k for k in ITEM_KEYS if raw.get(k) is not None]
    if len(keys) != 1:
        item.error = f"An item needs exactly one of: {', '.join(ITEM_KEYS)}."
        return item
    key, value = keys[0], raw[keys[0]]
    if not isinstance(value, str):
        item.error = f"{key} must be a string."
        return item
    if key == "sha256":
        digest = value.strip().lower()
        if not _SHA256.fullmatch(digest):
            item.error = "sha256 must be 64 hexadecimal characters."
        item.sha256 = digest
    elif key == "phash":
        try:
            item.phash = phash_from_hex(value.strip())
        except ValueError:
            item.error = "phash must be 16 hexadecimal characters."
        max_distance = raw.get("max_distance", DEFAULT_MAX_DISTANCE)
        if isinstance(max_distance, bool) or not isinstance(max_distance, int) or not 0 <= max_distance <= MAX_DISTANCE:
            item.error = f"max_distance must be an integer from 0 to {MAX_DISTANCE}."
        else:
            item.max_distance = max_distance
    elif key == "url":
        try:
            item.url = normalize_url(value)
            item.url_host = url_host(item.url)
        except InvalidURL as exc:
            item.error = f"url: {exc}"
    else:
        try:
            item.identifier = parse_identifier(value)
        except InvalidIdentifier as exc:
            item.error = f"identifier: {exc}"
    return item


def file_item(index: int, upload: Any, *, max_bytes: int) -> Item:
    """An item for an uploaded file, hashed with the same pipeline as registration.

    A file that cannot be fingerprinted (empty, too large, a name that lies, a bomb) is an
    invalid item with the reason; the rest of the batch is still answered.
    """
    item = Item(index=index, ref=getattr(upload, "name", None))
    try:
        fingerprint = fingerprint_file(upload, filename=item.ref, max_bytes=max_bytes)
    except FileRejected as exc:
        item.error = str(exc)
    else:
        item.sha256, item.phash = fingerprint.sha256, fingerprint.phash
    return item


def parse_items(raw_items: Any) -> list[Item]:
    if not isinstance(raw_items, list) or not raw_items:
        raise ValidationFailed(
            _("items must be a non-empty list."),
            fields={"items": [_("A non-empty list is required.")]},
        )
    if len(raw_items) > MAX_ITEMS:
        raise TooManyItems(
            _("At most %(limit)d items per check; this request has %(count)d.")
            % {"limit": MAX_ITEMS, "count": len(raw_items)}
        )
    return [parse_item(index, raw) for index, raw in enumerate(raw_items)]


def _render_result(result: ItemResult) -> dict[str, Any]:
    rendered: dict[str, Any] = {"index": result.item.index}
    if result.item.ref is not None:
        rendered["ref"] = result.item.ref
    rendered["decision"] = result.decision
    rendered["permitted"] = result.decision == Decision.PERMITTED
    if result.reason:
        rendered["reason"] = result.reason
    if result.item.error:
        rendered["error"] = result.item.error
    if result.matches:
        rendered["matches"] = [
            {
                "work": str(m.work.pk), "title": m.work.title, "owner": m.work.owner.slug,
                "method": m.methods[0], "methods": m.methods, "decision": m.decision,
                **({"reason": m.reason} if m.reason else {}),
                **({"distance": m.distance} if m.distance is not None else {}),
            }
            for m in result.matches
        ]
        if result.decision == Decision.PERMITTED:
            grants = {g.pk: g for m in result.matches for g in m.grants}
            rendered["grants"] = [
                {
                    "id": str(g.pk), "purposes": g.purposes, "territories": g.territories, "contexts": g.contexts,
                    "valid_until": g.valid_until.isoformat().replace("+00:00", "Z") if g.valid_until else None,
                    "conditions": {k: v for k, v in g.conditions.items() if v},
                }
                for g in grants.values()
            ]
    return rendered


def check_perform(
    *,
    request: CheckRequest,
    items: list[Item],
    api_key: ApiKey | None = None,
    user: AbstractBaseUser | None = None,
) -> CheckOutcome:
    """Decide every item, sign the exact body, and record the check and which works it touched."""
    results = decide(request, items)
    summary = Counter({d: 0 for d in Decision.ALL})
    summary.update(r.decision for r in results)
    check_id = uuid.uuid4()
    document = {
        "check_id": str(check_id),
        "checked_at": request.at.isoformat().replace("+00:00", "Z"),
        "purpose": request.purpose,
        "territory": request.territory,
        "context": request.context,
        "requester": request.requester.slug,
        "registry": settings.KYOKA_REGISTRY_ID,
        "summary": dict(summary),
        "results": [_render_result(r) for r in results],
    }
    body = json.dumps(document, ensure_ascii=False, separators=(",", ":")).encode()
    signature = sign_receipt(body)
    check = Check(
        id=check_id, organization=request.requester, api_key=api_key,
        user=user if user is not None and getattr(user, "pk", None) else None,
        purpose=request.purpose, territory=request.territory or "", context=request.context,
        item_count=len(items), permitted_count=summary[Decision.PERMITTED],
        not_permitted_count=summary[Decision.NOT_PERMITTED], unregistered_count=summary[Decision.UNREGISTERED],
        disputed_count=summary[Decision.DISPUTED], invalid_count=summary[Decision.INVALID],
        checked_at=request.at, body=zlib.compress(body, 1), signature=signature,
    )
    accesses: dict = {}
    for result in results:
        for match in result.matches:
            if match.work.pk not in accesses:  # one record per work, however many items matched it
                accesses[match.work.pk] = WorkAccess(
                    check_record=check, work_id=match.work.pk, owner_id=match.work.owner_id,
                    requester=request.requester, purpose=request.purpose, decision=match.decision,
                    checked_at=request.at,
                )
    with transaction.atomic():
        check.save(force_insert=True)
        WorkAccess.objects.bulk_create(accesses.values())
    return CheckOutcome(check=check, body=body, signature=signature)


def check_body(check: Check) -> bytes:
    return zlib.decompress(bytes(check.body))
