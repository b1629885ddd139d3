"""The few set-based queries a check needs, turned into plain facts for the rules.

A batch of any size costs the same handful of queries: the exact references, the similar
hashes, the matched works with their owners and freezing disputes, the owners' proven hosts,
and the grants whose scope holds the works that may decide.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from dataclasses import dataclass, field

from django.db import router
from django.db.models import BooleanField, Exists, ExpressionWrapper, OuterRef, Q

from registry.db_router import decision_reads
from registry.decisions.parse import Item
from registry.decisions.vocabulary import Method
from registry.models import DisputeWork, Grant, VerifiedHost, Work
from registry.models.disputes import Dispute
from registry.selectors import matching
from registry.selectors.key_filter import Candidates, registered_candidates
from registry.selectors.standing import host_proofs

WorkId = uuid.UUID


@dataclass(frozen=True)
class WorkFacts:
    id: WorkId
    title: str
    owner_id: int
    owner_slug: str
    owner_verified: bool  # verified and not suspended
    active: bool
    frozen: bool  # linked to an open dispute that freezes it
    ancestor_ids: tuple[WorkId, ...]


@dataclass
class Facts:
    """Everything the rules read, per item in item order, and per work."""

    exact: list[dict[WorkId, set[str]]]  # works matched by sha256, exact URL or identifier
    patterns: list[set[WorkId]]  # works whose URL pattern matched (they need standing to count at all)
    similar: list[dict[WorkId, int]]  # works within the item's phash distance, with the distance
    works: dict[WorkId, WorkFacts] = field(default_factory=dict)
    proven_hosts: dict[int, list[VerifiedHost]] = field(default_factory=dict)  # proven claims by owner id
    grants: dict[WorkId, list[Grant]] = field(default_factory=dict)


def facts_load(items: list[Item]) -> Facts:
    valid = [item for item in items if item.error is None]
    # Keys the filter rules out are registered by no one: they cost no lookup (selectors/key_filter).
    maybe = registered_candidates(
        sha256s={i.sha256 for i in valid if i.sha256},
        urls={(i.url, i.url_host) for i in valid if i.url},
        identifiers={i.identifier for i in valid if i.identifier},
    )
    # The rest may read from a replica, once it has replayed everything committed until now.
    with decision_reads():
        return _facts_of(items, valid, maybe)


def _facts_of(items: list[Item], valid: list[Item], maybe: Candidates) -> Facts:
    by_sha, exact_urls, pattern_urls, by_identifier = matching.works_by_exact(
        sha256s=(i.sha256 for i in valid if i.sha256 in maybe.sha256s),
        urls=[(i.url, i.url_host) for i in valid if i.url in maybe.urls],
        identifiers=(i.identifier for i in valid if i.identifier in maybe.identifiers),
        using=router.db_for_read(Work),
    )
    phash_items = [i for i in valid if i.phash is not None]
    near = matching.works_by_phash([(i.phash, i.max_distance) for i in phash_items])
    near_by_index = {item.index: found for item, found in zip(phash_items, near, strict=True)}

    exact: list[dict[WorkId, set[str]]] = []
    patterns: list[set[WorkId]] = []
    similar: list[dict[WorkId, int]] = []
    for item in items:
        methods: dict[WorkId, set[str]] = {}
        if item.error is None:
            for found, key, method in ((by_sha, item.sha256, Method.SHA256), (exact_urls, item.url, Method.URL),
                                       (by_identifier, item.identifier, Method.IDENTIFIER)):
                if key is not None and key in found:
                    for work_id in found[key]:
                        methods.setdefault(work_id, set()).add(method)
        exact.append(methods)
        patterns.append(set(pattern_urls[item.url]) - set(methods) if item.url in pattern_urls else set())
        near_here = near_by_index.get(item.index)
        similar.append({w: d for w, d in near_here.items() if w not in methods} if near_here else {})

    facts = Facts(exact=exact, patterns=patterns, similar=similar)
    work_ids = {w for per in exact for w in per} | {w for per in patterns for w in per}
    facts.works = _works_load(work_ids | {w for per in similar for w in per})
    url_owners = {facts.works[w].owner_id for per in patterns for w in per if w in facts.works}
    url_owners |= {
        facts.works[w].owner_id for per in exact for w, found in per.items()
        if Method.URL in found and w in facts.works
    }
    facts.proven_hosts = host_proofs(url_owners)
    facts.grants = _candidate_grants([facts.works[w] for w in work_ids if w in facts.works])
    return facts


def _works_load(work_ids: set[WorkId]) -> dict[WorkId, WorkFacts]:
    """The matched works with their owners and whether a freezing dispute holds them: one query."""
    if not work_ids:
        return {}
    freezing = DisputeWork.objects.filter(
        work_id=OuterRef("pk"), freezes=True, dispute__status__in=Dispute.OPEN_STATUSES
    )
    # The owner's standing as one boolean the database computes: a near-match check touches
    # hundreds of works of a few owners, and parsing their timestamps per row cost more than the query.
    owner_verified = ExpressionWrapper(
        Q(owner__verified_at__isnull=False, owner__suspended_at__isnull=True), output_field=BooleanField()
    )
    rows = (
        Work.objects.filter(pk__any=list(work_ids))
        .annotate(frozen=Exists(freezing), owner_verified=owner_verified)
        .values_list("id", "title", "status", "lineage", "owner_id", "owner__slug", "owner_verified", "frozen")
    )
    works = {}
    for work_id, title, status, lineage, owner_id, slug, verified, frozen in rows:
        works[work_id] = WorkFacts(
            id=work_id, title=title, owner_id=owner_id, owner_slug=slug, owner_verified=verified,
            active=status == Work.Status.ACTIVE, frozen=frozen,
            ancestor_ids=tuple(uuid.UUID(part) for part in lineage.strip("/").split("/") if part),
        )
    return works


def _candidate_grants(works: list[WorkFacts]) -> dict[WorkId, list[Grant]]:
    """Every grant whose scope holds each work: on the work, on an ancestor, or the owner's catalog."""
    if not works:
        return {}
    scoped_work_ids = {w.id for w in works} | {a for w in works for a in w.ancestor_ids}
    owners = {w.owner_id for w in works}
    grants = (
        Grant.objects.filter(
            Q(scope=Grant.Scope.WORK, work_id__any=list(scoped_work_ids))
            | Q(scope=Grant.Scope.CATALOG, grantor_id__any=list(owners))
        )
        .select_related("grantor")
        .only(
            "id", "grantor_id", "scope", "work_id", "licensee_id", "purposes", "territories", "contexts",
            "valid_from", "valid_until", "revoked_at", "attribution", "licence_url", "compensation", "created_at",
            "grantor__slug", "grantor__verified_at", "grantor__suspended_at",
        )
        .order_by("created_at", "id")
    )
    by_work_id: dict[WorkId, list[Grant]] = defaultdict(list)
    by_owner_catalog: dict[int, list[Grant]] = defaultdict(list)
    for grant in grants:
        if grant.scope == Grant.Scope.CATALOG:
            by_owner_catalog[grant.grantor_id].append(grant)
        else:
            by_work_id[grant.work_id].append(grant)
    result: dict[WorkId, list[Grant]] = {}
    for work in works:
        scoped = [g for wid in (work.id, *work.ancestor_ids) for g in by_work_id.get(wid, ())]
        # A grant counts only while its grantor still owns the work.
        candidates = [g for g in scoped if g.grantor_id == work.owner_id] + by_owner_catalog.get(work.owner_id, [])
        result[work.id] = sorted(candidates, key=lambda g: (g.created_at, str(g.pk)))
    return result
