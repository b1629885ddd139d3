"""`check_run`: authorise, parse, decide, render, sign and record one check."""

from __future__ import annotations

import logging
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any

from django.core.signals import request_finished
from django.db import connections, router, transaction
from django.utils.translation import gettext as _

from registry.access import Actor, authorize
from registry.db_statements import fixed_cursor, uuid_array
from registry.decisions.batch import DecidedBatch, ParsedBatch, PlainKeys, batch_decide, batch_parse
from registry.decisions.parse import file_items, items_limit_check, parse_check_request, probe_budget_check
from registry.decisions.render import body_render, plain_parts_render, summary_count
from registry.decisions.vocabulary import Decision
from registry.exceptions import PermissionDenied
from registry.metrics import record_check
from registry.models import Check, Membership, Organization, WorkAccess
from registry.receipts import sign_receipt
from registry.stored_bodies import body_pack, body_unpack

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class CheckOutcome:
    check: Check
    body: bytes
    signature: str
    summary: dict[str, int]  # items per decision
    # Set when the record was handed to PostgreSQL without waiting for its answer (record_later):
    # call it once the response has been sent.
    record_confirm: Callable[[], None] | None = None


def check_run(
    *,
    actor: Actor,
    organization: Organization,
    purpose: Any,
    territory: Any = None,
    context: Any = None,
    items: Any = None,
    uploads: list[Any] | tuple[Any, ...] = (),
    record_later: bool = False,
) -> CheckOutcome:
    """Check `items` (the API's JSON items) and `uploads` (files) for `organization`, acting as `actor`.

    The same limits hold for every caller: at most MAX_ITEMS items and files together, MAX_FILES
    files. A suspended organisation checks nothing. With `record_later`, the caller promises to
    call `outcome.record_confirm` (when set) after it has answered (see PendingRecord).
    """
    started = time.perf_counter()
    authorize(actor, organization, role=Membership.Role.VIEWER, scope="checks")
    if organization.suspended_at is not None:
        raise PermissionDenied(_("This organisation is suspended."))
    terms = parse_check_request(requester=organization, purpose=purpose, territory=territory, context=context)
    uploads = list(uploads)
    if items is not None:
        batch = batch_parse(items, extra=len(uploads))
    else:
        items_limit_check(len(uploads))
        batch = ParsedBatch(size=len(uploads), sha256s=PlainKeys(), urls=PlainKeys(), items=[])
    batch.items += file_items(uploads, first_index=batch.size - len(uploads))
    probe_budget_check(batch.items)
    # The unregistered majority's results are written while the database looks up the rest.
    decided = batch_decide(terms, batch, meanwhile=lambda: plain_parts_render(batch))
    outcome = do_check_record(actor=actor, request_terms=terms, decided=decided, record_later=record_later)
    record_check(Counter(outcome.summary), terms.purpose, time.perf_counter() - started)
    return outcome


@dataclass(frozen=True)
class RenderedCheck:
    """A check's signed answer, before it is recorded."""

    check_id: uuid.UUID
    body: bytes
    stored_body: bytes  # the body as kept (registry/stored_bodies.py)
    signature: str
    summary: dict[str, int]


def do_check_record(*, actor: Actor, request_terms, decided: DecidedBatch, record_later: bool = False) -> CheckOutcome:
    """Render and sign the body, and record the check and which works it touched, atomically.

    With `record_later` (and PostgreSQL in autocommit), the record is handed over without waiting
    for the server's answer, and `record_confirm` of the outcome reads it (PendingRecord).
    """
    rendered = check_render(request_terms=request_terms, decided=decided)
    check, confirm = check_record_write(actor=actor, request_terms=request_terms, decided=decided,
                                        rendered=rendered, record_later=record_later)
    return CheckOutcome(check=check, body=rendered.body, signature=rendered.signature, summary=rendered.summary,
                        record_confirm=confirm)


def check_render(*, request_terms, decided: DecidedBatch) -> RenderedCheck:
    """The body as signed, compressed for keeping, and its signature."""
    check_id = uuid.uuid4()
    summary = summary_count(decided)
    body = body_render(check_id=str(check_id), request=request_terms, decided=decided, summary=summary)
    return RenderedCheck(check_id=check_id, body=body, stored_body=body_pack(body),
                         signature=sign_receipt(body), summary=summary)


def check_record_write(
    *, actor: Actor, request_terms, decided: DecidedBatch, rendered: RenderedCheck, record_later: bool = False,
) -> tuple[Check, Callable[[], None] | None]:
    """The Check row and one WorkAccess row per matched work, in one transaction; with
    `record_later`, also what confirms it once the answer is out (None: already confirmed)."""
    summary = rendered.summary
    check = Check(
        id=rendered.check_id, organization=request_terms.requester, api_key=actor.api_key,
        user=actor.user_or_none, purpose=request_terms.purpose, territory=request_terms.territory or "",
        context=request_terms.context, item_count=decided.size, permitted_count=summary[Decision.PERMITTED],
        not_permitted_count=summary[Decision.NOT_PERMITTED], unregistered_count=summary[Decision.UNREGISTERED],
        disputed_count=summary[Decision.DISPUTED], invalid_count=summary[Decision.INVALID],
        checked_at=request_terms.at, body=rendered.stored_body, signature=rendered.signature,
    )
    accesses: dict = {}
    for result in decided.results:  # the plain keys the filter ruled out matched nothing
        for match in result.matches:
            # One record per work, however many items matched it.
            accesses.setdefault(match.work.id, (match.work.owner_id, match.decision.value))
    using = router.db_for_write(Check)
    connection = connections[using]
    if connection.vendor == "postgresql":
        statement = _record_statement(connection, check, accesses)
        if record_later and not connection.in_atomic_block:
            return check, PendingRecord.send(using, *statement).confirm
        with fixed_cursor(using) as cursor:
            cursor.execute(*statement)
        return check, None
    with transaction.atomic(using=using):
        check.save(force_insert=True, using=using)
        WorkAccess.objects.using(using).bulk_create(
            WorkAccess(check_record=check, work_id=work_id, owner_id=owner_id, requester=request_terms.requester,
                       purpose=request_terms.purpose, decision=decision, checked_at=request_terms.at)
            for work_id, (owner_id, decision) in accesses.items()
        )
    return check, None


def _record_statement(connection, check: Check, accesses: dict) -> tuple[str, list]:
    """The Check row and its WorkAccess rows as one INSERT statement: one round trip, atomic by itself.

    The ORM path above costs a transaction of three round trips and a model instance per row; a
    1,000-item check spent more time there than in its lookups.
    """
    fields = list(Check._meta.concrete_fields)
    columns = ", ".join(connection.ops.quote_name(f.column) for f in fields)
    values = [f.get_db_prep_save(getattr(check, f.attname), connection) for f in fields]
    placeholders = ", ".join(["%s"] * len(fields))
    work_ids = list(accesses)
    owner_ids = [owner_id for owner_id, _ in accesses.values()]
    decisions = [decision for _, decision in accesses.values()]
    # Fixed text with the body as a binary parameter: prepared once per connection, and the
    # compressed body is not spelled out as a hex literal for the server to parse.
    return (
        f"WITH recorded AS (INSERT INTO registry_check ({columns}) VALUES ({placeholders})) "  # noqa: S608
        "INSERT INTO registry_workaccess (check_record_id, work_id, owner_id, requester_id, purpose, decision, "
        "checked_at) SELECT %s, t.work_id, t.owner_id, %s, %s, t.decision, %s "
        "FROM unnest(%s::uuid[], %s::bigint[], %s::text[]) AS t(work_id, owner_id, decision)",
        [*values, check.pk, check.organization_id, check.purpose, check.checked_at, uuid_array(work_ids),
         "{" + ",".join(map(str, owner_ids)) + "}", "{" + ",".join(decisions) + "}"],
    )


class PendingRecord:
    """A check's record handed to PostgreSQL before the answer leaves, confirmed after it has.

    The INSERT and the Sync that ends its implicit transaction are written to the server in
    pipeline mode, and nothing waits for the reply: PostgreSQL runs and commits them whether or
    not this process lives to read it, so the handoff is durable once `send` returns (a server
    crash loses it as it would lose any commit in flight). Reading the reply is one round trip
    (~1.5 ms of a 1,000-item check) that the client no longer waits for: the API view calls
    `confirm` as a response closer, after the response has been written. A failure there (which
    a correct statement does not meet) is logged and the record written again, synchronously.

    Only in autocommit (outside any atomic block): inside a transaction the Sync commits nothing,
    so the record is written the ordinary way. psycopg has no public call that sends a Sync
    without reading its reply, hence its pipeline's `_enqueue_sync`/`_communicate_gen`; the
    tests drive this path (tests/registry/api/test_check_records.py) so an upgrade that changes
    them fails there.
    """

    def __init__(self, using: str, statement: tuple[str, list], pipeline: AbstractContextManager) -> None:
        self.using, self.statement, self._pipeline = using, statement, pipeline
        _unconfirmed.records = [*getattr(_unconfirmed, "records", ()), self]

    @classmethod
    def send(cls, using: str, sql: str, params: list) -> PendingRecord:
        raw = connections[using].connection
        pipeline_context = raw.pipeline()
        pipeline = pipeline_context.__enter__()
        try:
            with fixed_cursor(using) as cursor:
                cursor.execute(sql, params)
            pipeline._enqueue_sync()
            raw.wait(pipeline._communicate_gen())
        except BaseException:
            pipeline_context.__exit__(*sys.exc_info())
            raise
        return cls(using, (sql, params), pipeline_context)

    def confirm(self) -> None:
        """Read the server's reply (and leave pipeline mode); on any failure, write the record again."""
        pipeline, self._pipeline = self._pipeline, None
        if pipeline is None:
            return
        _unconfirmed.records = [r for r in getattr(_unconfirmed, "records", ()) if r is not self]
        try:
            pipeline.__exit__(None, None, None)
        except Exception:
            logger.exception("A check record handed over before the answer failed; writing it again")
            try:
                with fixed_cursor(self.using) as cursor:
                    cursor.execute(*self.statement)
            except Exception:  # the answer is out: raising here would only reach the WSGI server's log
                logger.exception("Writing the check record again failed too")


def check_body(check: Check) -> bytes:
    """The exact bytes that were signed."""
    return body_unpack(check.body)


# Records this thread handed over and has not confirmed. The view's response confirms its own;
# should that response never be closed (a middleware replacing it after an error), the end of
# the request does, so the connection never carries an open pipeline into the next request.
_unconfirmed = threading.local()


def pending_records_confirm(**kwargs) -> None:
    for record in getattr(_unconfirmed, "records", ()):
        record.confirm()


request_finished.connect(pending_records_confirm, dispatch_uid="kyoka-pending-check-records")
