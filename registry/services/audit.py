"""The audit trail: append-only, hash-chained, written in the caller's transaction."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC
from typing import Any

from django.db import transaction
from django.utils import timezone

from registry.access import Actor
from registry.models import AuditChainHead, AuditEvent, Organization

GENESIS_HASH = "0" * 64


def audit_event_hash(
    *,
    seq: int,
    created_at: str,
    actor: str,
    organization: str,
    action: str,
    object_type: str,
    object_id: str,
    data: Any,
    prev_hash: str,
    organization_id: int | None = None,
    hash_version: int = 1,
) -> str:
    content: dict[str, Any] = {
        "seq": seq,
        "created_at": created_at,
        "actor": actor,
        "organization": organization,
        "action": action,
        "object_type": object_type,
        "object_id": object_id,
        "data": data,
        "prev_hash": prev_hash,
    }
    # Version 1 rows were hashed before organisations had an id here: their hash stays provable.
    if hash_version >= 2:
        content["organization_id"] = organization_id
        content["hash_version"] = hash_version
    canonical = json.dumps(
        content,
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


def audit_append(
    *,
    actor: Actor,
    action: str,
    object_type: str,
    object_id: str,
    organization: Organization | str | None = None,
    data: dict[str, Any] | None = None,
) -> AuditEvent:
    """Append one event. Must run inside the transaction of the change it records.

    The chain head row is locked until that transaction ends, which serialises appends:
    two writers can never both link to the same previous hash. `organization` is the
    organisation the event concerns; the row refers to it by id (and keeps today's slug as
    history). A slug string is still accepted from older callers and resolved to its id.
    """
    if isinstance(organization, str):
        organization = Organization.objects.filter(slug=organization).first() if organization else None
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("audit_append must run inside the transaction of the change it records")
    # The head row comes with the migrations; get_or_create only matters after a flush.
    head, _ = AuditChainHead.objects.select_for_update().get_or_create(pk=1)
    # Round-trip through JSON now, so the hash covers exactly what the database will return.
    payload = json.loads(json.dumps(data or {}, default=str))
    now = timezone.now()
    seq = head.seq + 1
    slug = organization.slug if organization is not None else ""
    organization_id = organization.pk if organization is not None else None
    event_hash = audit_event_hash(
        seq=seq,
        created_at=now.isoformat(),
        actor=actor.label,
        organization=slug,
        action=action,
        object_type=object_type,
        object_id=str(object_id),
        data=payload,
        prev_hash=head.hash,
        organization_id=organization_id,
        hash_version=AuditEvent.HASH_VERSION,
    )
    event = AuditEvent.objects.create(
        seq=seq,
        created_at=now,
        actor=actor.label,
        organization=slug,
        organization_ref_id=organization_id,
        hash_version=AuditEvent.HASH_VERSION,
        action=action,
        object_type=object_type,
        object_id=str(object_id),
        data=payload,
        prev_hash=head.hash,
        hash=event_hash,
    )
    AuditChainHead.objects.filter(pk=1).update(seq=seq, hash=event_hash)
    return event


@dataclass(frozen=True)
class AuditVerification:
    ok: bool
    events_checked: int
    first_broken_seq: int | None = None
    problem: str = ""


def _recomputed_hash(event: AuditEvent) -> str:
    return audit_event_hash(
        seq=event.seq,
        created_at=event.created_at.astimezone(UTC).isoformat(),
        actor=event.actor,
        organization=event.organization,
        action=event.action,
        object_type=event.object_type,
        object_id=event.object_id,
        data=event.data,
        prev_hash=event.prev_hash,
        organization_id=event.organization_ref_id,
        hash_version=event.hash_version,
    )


def _events_in_order(chunk_size: int = 5000) -> Iterator[AuditEvent]:
    return AuditEvent.objects.order_by("seq").iterator(chunk_size=chunk_size)


def audit_verify() -> AuditVerification:
    """Walk the chain from the start; name the first link that does not hold."""
    expected_prev = GENESIS_HASH
    expected_seq = 1
    checked = 0
    for event in _events_in_order():
        if event.seq != expected_seq:
            return AuditVerification(False, checked, expected_seq, f"event {expected_seq} is missing")
        if event.prev_hash != expected_prev:
            return AuditVerification(False, checked, event.seq, "previous-hash link does not match")
        if _recomputed_hash(event) != event.hash:
            return AuditVerification(False, checked, event.seq, "content does not match its hash")
        expected_prev = event.hash
        expected_seq += 1
        checked += 1
    head = AuditChainHead.objects.get(pk=1)
    if head.seq != checked or head.hash != expected_prev:
        return AuditVerification(False, checked, checked + 1, "events after the last one were removed")
    return AuditVerification(True, checked)
