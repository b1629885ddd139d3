"""The decision: for each item of a check, may this requester use it for this purpose, here, now?

Pure given its inputs and set-based: a batch of any size costs the same handful of queries
(matching, works, open disputes, grants). The rules are DESIGN.md's "The decision".
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime

from django.db.models import Exists, OuterRef, Q

from registry.models import DisputeWork, Grant, Organization, Work
from registry.models.disputes import Dispute
from registry.purposes import purposes_cover
from registry.selectors import matching


class Decision:
    PERMITTED = "permitted"
    NOT_PERMITTED = "not_permitted"
    UNREGISTERED = "unregistered"
    DISPUTED = "disputed"
    INVALID = "invalid"

    ALL = (PERMITTED, NOT_PERMITTED, UNREGISTERED, DISPUTED, INVALID)


# The conditions a covering grant must meet, in the order a missing one is reported; each
# condition's possible reasons (being in force can fail three ways).
GRANT_CONDITIONS: tuple[tuple[str, ...], ...] = (
    ("licensee_not_granted",),
    ("requester_unverified",),
    ("purpose_not_granted",),
    ("grant_revoked", "grant_expired", "grant_not_yet_valid"),
    ("territory_not_granted",),
    ("context_not_granted",),
    ("grantor_unverified",),
)
_CONDITION_RANK = {reason: rank for rank, reasons in enumerate(GRANT_CONDITIONS) for reason in reasons}


@dataclass
class Item:
    """One parsed item of a check request. Exactly one lookup key is set, or `error`."""

    index: int
    ref: str | None = None
    sha256: str | None = None
    phash: int | None = None
    max_distance: int = 8
    url: str | None = None
    url_host: str | None = None
    identifier: tuple[str, str] | None = None
    error: str | None = None


@dataclass(frozen=True)
class CheckRequest:
    requester: Organization
    purpose: str
    territory: str | None
    context: str
    at: datetime


@dataclass
class Match:
    work: Work
    methods: list[str] = field(default_factory=list)
    distance: int | None = None
    decision: str = ""
    reason: str | None = None
    grants: list[Grant] = field(default_factory=list)


@dataclass
class ItemResult:
    item: Item
    decision: str
    reason: str | None = None
    matches: list[Match] = field(default_factory=list)


def decide(request: CheckRequest, items: list[Item]) -> list[ItemResult]:
    """Answer every item, in order. Nothing found is `unregistered`, never permitted."""
    matched = _match(items)
    work_ids = {work_id for per_item in matched for work_id in per_item}
    works = _load_works(work_ids)
    disputed = {work_id for work_id, work in works.items() if work.under_dispute}
    grants_by_work = _candidate_grants(works.values())
    verdicts = {
        work_id: _decide_work(request, work, grants_by_work.get(work_id, []))
        for work_id, work in works.items()
        if work_id not in disputed
    }

    results = []
    for item, per_item in zip(items, matched, strict=True):
        if item.error is not None:
            results.append(ItemResult(item, Decision.INVALID, "invalid_item"))
            continue
        present = {work_id: how for work_id, how in per_item.items() if work_id in works}
        if not present:
            results.append(ItemResult(item, Decision.UNREGISTERED, "no_match"))
            continue
        # A withdrawn registration no longer speaks for the content: it decides (work_withdrawn)
        # only when nothing active matched. Otherwise a squatter's copy, withdrawn after a
        # dispute, would block the true owner's grants for good.
        active = {work_id: how for work_id, how in present.items() if works[work_id].status == Work.Status.ACTIVE}
        present = active or present
        matches = []
        for work_id, (methods, distance) in sorted(present.items(), key=lambda kv: (works[kv[0]].title, kv[0])):
            match = Match(work=works[work_id], methods=methods, distance=distance)
            if work_id in disputed:
                match.decision, match.reason = Decision.DISPUTED, "dispute_open"
            else:
                match.decision, match.reason, match.grants = verdicts[work_id]
            matches.append(match)
        if any(m.decision == Decision.DISPUTED for m in matches):
            results.append(ItemResult(item, Decision.DISPUTED, "dispute_open", matches))
        elif all(m.decision == Decision.PERMITTED for m in matches):
            results.append(ItemResult(item, Decision.PERMITTED, None, matches))
        else:
            first_refusal = next(m for m in matches if m.decision != Decision.PERMITTED)
            results.append(ItemResult(item, Decision.NOT_PERMITTED, first_refusal.reason, matches))
    return results


def _match(items: list[Item]) -> list[dict[uuid.UUID, tuple[list[str], int | None]]]:
    """For each item, the works it matched with the methods (and phash distance)."""
    by_sha = matching.works_by_sha256(i.sha256 for i in items if i.sha256 and not i.error)
    by_url = matching.works_by_url([(i.url, i.url_host) for i in items if i.url and not i.error])
    by_identifier = matching.works_by_identifier(i.identifier for i in items if i.identifier and not i.error)
    phash_items = [i for i in items if i.phash is not None and not i.error]
    by_phash = dict(
        zip(
            (i.index for i in phash_items),
            matching.works_by_phash([(i.phash, i.max_distance) for i in phash_items]),
            strict=True,
        )
    )
    matched = []
    for item in items:
        methods: dict[uuid.UUID, list[str]] = defaultdict(list)
        near: dict[uuid.UUID, int] = {}
        if item.error is None:
            for work_id in by_sha.get(item.sha256, ()) if item.sha256 else ():
                methods[work_id].append("sha256")
            if item.phash is not None:
                near = by_phash.get(item.index, {})
                for work_id in near:
                    methods[work_id].append("phash")
            for work_id in by_url.get(item.url, ()) if item.url else ():
                methods[work_id].append("url")
            for work_id in by_identifier.get(item.identifier, ()) if item.identifier else ():
                methods[work_id].append("identifier")
        matched.append({work_id: (found, near.get(work_id)) for work_id, found in methods.items()})
    return matched


def _load_works(work_ids: set[uuid.UUID]) -> dict[uuid.UUID, Work]:
    """The matched works with their owners, and whether each is under an open dispute: one query."""
    if not work_ids:
        return {}
    open_dispute = DisputeWork.objects.filter(work_id=OuterRef("pk"), dispute__status__in=Dispute.OPEN_STATUSES)
    works = (
        Work.objects.filter(pk__any=list(work_ids))
        .select_related("owner")
        .only("id", "title", "status", "lineage", "owner_id", "external_ref",
              "owner__slug", "owner__name", "owner__verified_at", "owner__suspended_at")
        .annotate(under_dispute=Exists(open_dispute))
    )
    return {work.pk: work for work in works}


def _candidate_grants(works) -> dict[uuid.UUID, list[Grant]]:
    """Every grant whose scope holds each work: on the work, on an ancestor, or the owner's catalog."""
    works = list(works)
    if not works:
        return {}
    scoped_work_ids = {w.pk for w in works} | {a for w in works for a in w.ancestor_ids}
    owners = {w.owner_id for w in works}
    grants = list(
        Grant.objects.filter(
            Q(scope=Grant.Scope.WORK, work_id__in=scoped_work_ids)
            | Q(scope=Grant.Scope.CATALOG, grantor_id__in=owners)
        )
        .select_related("grantor")
        .only(
            "id", "grantor_id", "scope", "work_id", "licensee_id", "purposes", "territories", "contexts",
            "valid_from", "valid_until", "revoked_at", "attribution", "licence_url", "compensation", "created_at",
            "grantor__verified_at", "grantor__suspended_at",
        )
        .order_by("created_at", "id")
    )
    by_work_id: dict[uuid.UUID, list[Grant]] = defaultdict(list)
    by_owner_catalog: dict[int, list[Grant]] = defaultdict(list)
    for grant in grants:
        if grant.scope == Grant.Scope.CATALOG:
            by_owner_catalog[grant.grantor_id].append(grant)
        else:
            by_work_id[grant.work_id].append(grant)
    result: dict[uuid.UUID, list[Grant]] = {}
    for work in works:
        scoped = [g for wid in (work.pk, *work.ancestor_ids) for g in by_work_id.get(wid, ())]
        # A grant counts only while its grantor still owns the work.
        candidates = [g for g in scoped if g.grantor_id == work.owner_id] + by_owner_catalog.get(work.owner_id, [])
        result[work.pk] = sorted(candidates, key=lambda g: (g.created_at, str(g.pk)))
    return result


def _grant_failures(request: CheckRequest, grant: Grant) -> list[str]:
    """Which conditions this grant fails, in reporting order (empty: the grant covers)."""
    failures = []
    requester = request.requester
    named_other = grant.licensee_id is not None and grant.licensee_id != requester.pk
    # "Any verified AI developer" never licenses a rightsholder checking someone else's work.
    open_but_not_a_developer = grant.licensee_id is None and requester.kind != Organization.Kind.AI_DEVELOPER
    if named_other or open_but_not_a_developer:
        failures.append("licensee_not_granted")
    if not requester.is_verified:
        failures.append("requester_unverified")
    if not purposes_cover(grant.purposes, request.purpose):
        failures.append("purpose_not_granted")
    at = request.at
    if grant.revoked_at is not None and grant.revoked_at <= at:
        failures.append("grant_revoked")
    elif grant.valid_until is not None and grant.valid_until <= at:
        failures.append("grant_expired")
    elif grant.valid_from > at:
        failures.append("grant_not_yet_valid")
    if grant.territories and request.territory not in grant.territories:
        failures.append("territory_not_granted")
    if grant.contexts and request.context not in grant.contexts:
        failures.append("context_not_granted")
    if not grant.grantor.is_verified:
        failures.append("grantor_unverified")
    return failures


def _decide_work(request: CheckRequest, work: Work, grants: list[Grant]) -> tuple[str, str | None, list[Grant]]:
    if work.status != Work.Status.ACTIVE:
        return Decision.NOT_PERMITTED, "work_withdrawn", []
    if not grants:
        return Decision.NOT_PERMITTED, "no_grant", []
    covering, closest = [], None
    for grant in grants:
        failures = _grant_failures(request, grant)
        if not failures:
            covering.append(grant)
        # The grant that came closest: fewest failed conditions, then the one that fails latest.
        elif closest is None or (len(failures), -_CONDITION_RANK[failures[0]]) < (
            len(closest), -_CONDITION_RANK[closest[0]]
        ):
            closest = failures
    if covering:
        return Decision.PERMITTED, None, covering
    assert closest is not None
    return Decision.NOT_PERMITTED, closest[0], []

