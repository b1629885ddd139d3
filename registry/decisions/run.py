"""`check_run`: authorise, parse, decide, render, sign and record one check."""

from __future__ import annotations

import time
import uuid
import zlib
from collections import Counter
from dataclasses import dataclass
from typing import Any

from django.db import transaction
from django.utils.translation import gettext as _

from registry.access import Actor, authorize
from registry.decisions import decide
from registry.decisions.parse import (
    file_items,
    items_limit_check,
    parse_check_request,
    parse_items,
    probe_budget_check,
)
from registry.decisions.render import body_render, summary_count
from registry.decisions.rules import ItemResult
from registry.decisions.vocabulary import Decision
from registry.exceptions import PermissionDenied
from registry.metrics import record_check
from registry.models import Check, Membership, Organization, WorkAccess
from registry.receipts import sign_receipt


@dataclass(frozen=True)
class CheckOutcome:
    check: Check
    body: bytes
    signature: str
    summary: dict[str, int]  # items per decision


def check_run(
    *,
    actor: Actor,
    organization: Organization,
    purpose: Any,
    territory: Any = None,
    context: Any = None,
    items: Any = None,
    uploads: list[Any] | tuple[Any, ...] = (),
) -> CheckOutcome:
    """Check `items` (the API's JSON items) and `uploads` (files) for `organization`, acting as `actor`.

    The same limits hold for every caller: at most MAX_ITEMS items and files together, MAX_FILES
    files. A suspended organisation checks nothing.
    """
    started = time.perf_counter()
    authorize(actor, organization, role=Membership.Role.VIEWER, scope="checks")
    if organization.suspended_at is not None:
        raise PermissionDenied(_("This organisation is suspended."))
    terms = parse_check_request(requester=organization, purpose=purpose, territory=territory, context=context)
    uploads = list(uploads)
    parsed = parse_items(items, extra=len(uploads)) if items is not None else []
    if items is None:
        items_limit_check(len(uploads))
    parsed += file_items(uploads, first_index=len(parsed))
    probe_budget_check(parsed)
    results = decide(terms, parsed)
    outcome = do_check_record(actor=actor, request_terms=terms, results=results)
    record_check(Counter(outcome.summary), terms.purpose, time.perf_counter() - started)
    return outcome


def do_check_record(*, actor: Actor, request_terms, results: list[ItemResult]) -> CheckOutcome:
    """Render and sign the body, and record the check and which works it touched, atomically."""
    check_id = uuid.uuid4()
    summary = summary_count(results)
    body = body_render(check_id=str(check_id), request=request_terms, results=results, summary=summary)
    signature = sign_receipt(body)
    check = Check(
        id=check_id, organization=request_terms.requester, api_key=actor.api_key, user=actor.user_or_none,
        purpose=request_terms.purpose, territory=request_terms.territory or "", context=request_terms.context,
        item_count=len(results), permitted_count=summary[Decision.PERMITTED],
        not_permitted_count=summary[Decision.NOT_PERMITTED], unregistered_count=summary[Decision.UNREGISTERED],
        disputed_count=summary[Decision.DISPUTED], invalid_count=summary[Decision.INVALID],
        checked_at=request_terms.at, body=zlib.compress(body, 1), signature=signature,
    )
    accesses: dict = {}
    for result in results:
        for match in result.matches:
            if match.work.id not in accesses:  # one record per work, however many items matched it
                accesses[match.work.id] = WorkAccess(
                    check_record=check, work_id=match.work.id, owner_id=match.work.owner_id,
                    requester=request_terms.requester, purpose=request_terms.purpose, decision=match.decision,
                    checked_at=request_terms.at,
                )
    with transaction.atomic():
        check.save(force_insert=True)
        WorkAccess.objects.bulk_create(accesses.values())
    return CheckOutcome(check=check, body=body, signature=signature, summary=summary)


def check_body(check: Check) -> bytes:
    """The exact bytes that were signed."""
    return zlib.decompress(bytes(check.body))
