"""Licence snapshots: every exact key permitted to one licensee for one purpose, signed like a receipt.

A snapshot lets a trainer filter a billion rows offline: in an opt-in registry the permitted set
is small, and everything outside it is not permitted anyway. It is a receipt, so its promise is
bounded in time: `valid_until` is at most 24 hours after `issued_at` and never later than the
earliest expiry of a grant it rests on. A revocation binds snapshots issued after it; earlier
ones run until their `valid_until`, which the studio's revoke confirmation states.

The body (the exact bytes signed, header `Receipt-Signature`):

    {"snapshot_id", "type": "kyoka.licence_snapshot", "version": 1, "registry", "requester",
     "purpose", "territory", "context", "issued_at", "valid_until",
     "base": null | {"snapshot_id", "issued_at"},
     "grants": {grant id: {"grantor", "purposes", "territories", "contexts", "valid_until", "conditions"}},
     "key_count": n,
     # without a base: the whole set
     "keys": {"sha256": {hex: [grant ids]}, "url": {normalised url: [...]},
              "url_pattern": {normalised pattern: [...]}, "identifier": {"scheme:value": [...]},
              "url_pattern_except": {pattern: [exact URLs under it that are refused]}},
     # with a base (?since= named one of this requester's snapshots for the same terms):
     "added": {kind: {key: [grant ids]}},     # new keys, and keys whose grants changed
     "removed": {kind: {key: reason}}}        # e.g. grant_revoked, work_withdrawn, grant_expired

A URL is permitted when it is listed under "url", or when it matches a listed pattern and is not
one of that pattern's exceptions. `key_count` counts the four kinds of keys, not the exceptions.

A client holding the base applies a delta by deleting `removed` and upserting `added`; the
result is exactly the `keys` a full snapshot would have listed. `grants` and `key_count` always
describe the whole resulting set. A `since` that names no snapshot of this requester gets a
full snapshot (`base` null), so a client replaces what it held.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from registry.access import Actor, authorize
from registry.decisions import decide
from registry.decisions.parse import CheckRequest, Item
from registry.matching.urls import url_host
from registry.models import LicenceSnapshot, Membership
from registry.receipts import sign_receipt
from registry.selectors.snapshots import (
    KEY_KINDS,
    PermittedKeys,
    licence_snapshot_base,
    snapshot_permitted_keys,
)
from registry.services.audit import audit_append
from registry.stored_bodies import body_pack, body_unpack

MAX_VALIDITY = timedelta(hours=24)
SNAPSHOT_TYPE = "kyoka.licence_snapshot"
SNAPSHOT_VERSION = 1
# Reconstructing a base replays its chain of deltas; past this many the answer is a full snapshot.
MAX_DELTA_CHAIN = 30


@dataclass(frozen=True)
class SnapshotOutcome:
    snapshot: LicenceSnapshot
    body: bytes
    signature: str


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat().replace("+00:00", "Z") if moment is not None else None


def licence_snapshot_issue(
    *, actor: Actor, request: CheckRequest, since: datetime | None = None
) -> SnapshotOutcome:
    """Authorise the requester's `checks` right, then issue (sign and record) its snapshot."""
    authorize(actor, request.requester, role=Membership.Role.VIEWER, scope="checks")
    return do_licence_snapshot_issue(acting=actor, request=request, since=since)


def do_licence_snapshot_issue(
    *, acting: Actor, request: CheckRequest, since: datetime | None = None
) -> SnapshotOutcome:
    """Decide every candidate key at `request.at`, sign the body, record it with the grants it rests on.

    Side effects: one LicenceSnapshot row (its grants linked, so studios see the download) and
    one audit event, in one transaction.
    """
    request, permitted = _permitted_as_of_one_moment(request)
    valid_until = request.at + MAX_VALIDITY
    for grant in permitted.grants.values():
        if grant.valid_until is not None and grant.valid_until < valid_until:
            valid_until = grant.valid_until
    snapshot_id = uuid.uuid4()
    base = _base_for(request, since)
    document: dict[str, Any] = {
        "snapshot_id": str(snapshot_id),
        "type": SNAPSHOT_TYPE,
        "version": SNAPSHOT_VERSION,
        "registry": settings.KYOKA_REGISTRY_ID,
        "requester": request.requester.slug,
        "purpose": request.purpose,
        "territory": request.territory,
        "context": request.context,
        "issued_at": _iso(request.at),
        "valid_until": _iso(valid_until),
        "base": None,
        "grants": {gid: _render_grant(g) for gid, g in sorted(permitted.grants.items())},
        "key_count": permitted.count,
    }
    if base is None:
        document["keys"] = {kind: dict(sorted((k, list(v)) for k, v in permitted.keys[kind].items()))
                            for kind in KEY_KINDS}
    else:
        base_snapshot, base_keys = base
        document["base"] = {"snapshot_id": str(base_snapshot.pk), "issued_at": _iso(base_snapshot.issued_at)}
        document["added"], document["removed"] = _delta(request, base_keys, permitted)
    body = json.dumps(document, ensure_ascii=False, separators=(",", ":")).encode()
    signature = sign_receipt(body)
    snapshot = LicenceSnapshot(
        id=snapshot_id, organization=request.requester, purpose=request.purpose,
        territory=request.territory or "", context=request.context,
        since=base[0].issued_at if base is not None else None, issued_at=request.at, valid_until=valid_until,
        key_count=permitted.count, body=body_pack(body, level=3), signature=signature,
    )
    with transaction.atomic():
        snapshot.save(force_insert=True)
        snapshot.grants.set(list(permitted.grants.values()))
        audit_append(
            actor=acting, action="snapshot.issue", object_type="licence_snapshot", object_id=str(snapshot_id),
            organization=request.requester.slug,
            data={
                "purpose": request.purpose, "territory": request.territory, "context": request.context,
                "valid_until": _iso(valid_until), "key_count": permitted.count,
                "grants": sorted(permitted.grants), "base": document["base"],
            },
        )
    return SnapshotOutcome(snapshot=snapshot, body=body, signature=signature)


def _permitted_as_of_one_moment(request: CheckRequest) -> tuple[CheckRequest, PermittedKeys]:
    """Decide every candidate against one consistent view of the registry, taken at `issued_at`.

    The keys are decided in many batches; a grant issued or a work withdrawn between two of them
    must not make the snapshot answer for a registry that never existed at one moment. On
    PostgreSQL a REPEATABLE READ transaction gives every query the view of its first one, and
    `issued_at` is read right after that view is taken. (Nothing is written in it.)
    """
    outermost = not connection.in_atomic_block  # inside another transaction, its isolation holds
    with transaction.atomic():
        if outermost and connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
                cursor.execute("SELECT 1")  # the view is taken here
        request = replace(request, at=timezone.now())
        return request, snapshot_permitted_keys(request=request)


def _render_grant(grant) -> dict[str, Any]:
    return {
        "grantor": grant.grantor.slug,
        "purposes": grant.purposes,
        "territories": grant.territories,
        "contexts": grant.contexts,
        "valid_until": _iso(grant.valid_until),
        "conditions": {k: v for k, v in grant.conditions.items() if v},
    }


def licence_snapshot_body(snapshot: LicenceSnapshot) -> bytes:
    return body_unpack(snapshot.body)


def snapshot_keys_of(snapshot: LicenceSnapshot, *, depth: int = 0) -> dict[str, dict[str, list[str]]] | None:
    """The whole key set a snapshot stands for, replaying its chain of deltas; None past the cap."""
    document = json.loads(licence_snapshot_body(snapshot))
    if document.get("base") is None:
        return {kind: dict(document["keys"].get(kind, {})) for kind in KEY_KINDS}
    if depth >= MAX_DELTA_CHAIN:
        return None
    parent = LicenceSnapshot.objects.filter(
        pk=document["base"]["snapshot_id"], organization_id=snapshot.organization_id
    ).first()
    if parent is None:
        return None
    keys = snapshot_keys_of(parent, depth=depth + 1)
    if keys is None:
        return None
    for kind in KEY_KINDS:
        for key in document["removed"].get(kind, {}):
            keys[kind].pop(key, None)
        keys[kind].update(document["added"].get(kind, {}))
    return keys


def _base_for(
    request: CheckRequest, since: datetime | None
) -> tuple[LicenceSnapshot, dict[str, dict[str, list[str]]]] | None:
    if since is None:
        return None
    base = licence_snapshot_base(
        organization=request.requester, purpose=request.purpose, territory=request.territory or "",
        context=request.context, issued_at=since,
    )
    if base is None:
        return None
    keys = snapshot_keys_of(base)
    return (base, keys) if keys is not None else None


def _delta(
    request: CheckRequest, base_keys: dict[str, dict[str, list[str]]], permitted: PermittedKeys
) -> tuple[dict[str, dict[str, list[str]]], dict[str, dict[str, str]]]:
    added = {
        kind: {k: list(v) for k, v in sorted(permitted.keys[kind].items()) if base_keys[kind].get(k) != list(v)}
        for kind in KEY_KINDS
    }
    removed: dict[str, dict[str, str]] = {
        kind: {k: "" for k in sorted(base_keys[kind]) if k not in permitted.keys[kind]} for kind in KEY_KINDS
    }
    _removal_reasons(request, removed)
    return added, removed


def _removal_reasons(request: CheckRequest, removed: dict[str, dict[str, str]]) -> None:
    """Why each removed key left: what an online check of it answers now (revoked, withdrawn, …)."""
    items: list[Item] = []
    keys: list[tuple[str, str]] = []
    for kind in ("sha256", "url", "identifier"):
        for key in removed[kind]:
            if kind == "sha256":
                item = Item(index=len(items), sha256=key)
            elif kind == "url":
                item = Item(index=len(items), url=key, url_host=url_host(key))
            else:
                scheme, _, value = key.partition(":")
                item = Item(index=len(items), identifier=(scheme, value))
            items.append(item)
            keys.append((kind, key))
    for start in range(0, len(items), 10_000):
        for result in decide(request, items[start:start + 10_000]):
            kind, key = keys[result.item.index]
            removed[kind][key] = str(result.reason or result.decision)
    for key in removed["url_pattern"]:
        removed["url_pattern"][key] = "no_longer_certain"
    for key in removed["url_pattern_except"]:
        removed["url_pattern_except"][key] = "no_exceptions"
