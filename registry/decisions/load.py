"""The few set-based queries a check needs, turned into plain facts for the rules.

A batch of any size costs the same handful of queries: the exact references, the similar
hashes, the matched works with their owners and freezing disputes, the owners' proven hosts,
and the grants whose scope holds the works that may decide.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import NamedTuple

from django.db import connections, router
from django.db.models import BooleanField, Exists, ExpressionWrapper, OuterRef, Q

from registry.db_router import decision_reads
from registry.db_statements import Statement, fixed_rows, model_columns, model_from_row, uuid_array
from registry.decisions.parse import Item
from registry.decisions.vocabulary import Method
from registry.models import DisputeWork, Grant, Organization, VerifiedHost, Work
from registry.models.disputes import Dispute
from registry.selectors import matching
from registry.selectors.key_filter import Candidates, registered_candidates
from registry.selectors.phash_index import NearCandidates
from registry.selectors.standing import host_proofs

WorkId = uuid.UUID
_NO_EXACT: dict = MappingProxyType({})  # type: ignore[assignment]
_NO_PATTERNS: frozenset = frozenset()
_NO_SIMILAR: dict = MappingProxyType({})  # type: ignore[assignment]


class WorkFacts(NamedTuple):
    """What the rules decide an exactly matched work's answer on (a named tuple: made fast)."""

    id: WorkId
    title: str
    owner_id: int
    owner_slug: str
    owner_verified: bool  # verified and not suspended
    active: bool
    frozen: bool  # linked to an open dispute that freezes it
    ancestor_ids: tuple[WorkId, ...]


class SimilarWork(NamedTuple):
    """A work listed as similar: only what the answer shows. Similarity never decides, so nothing
    here could (a near-match check lists ~1,200 of them)."""

    id: WorkId
    title: str
    owner_slug: str


@dataclass
class Facts:
    """Everything the rules read, per item in item order, and per work."""

    exact: list[dict[WorkId, set[str]]]  # works matched by sha256, exact URL or identifier
    patterns: list[set[WorkId]]  # works whose URL pattern matched (they need standing to count at all)
    similar: list[dict[WorkId, int]]  # works within the item's phash distance, with the distance
    works: dict[WorkId, WorkFacts] = field(default_factory=dict)  # the exactly matched works
    similar_works: dict[WorkId, SimilarWork] = field(default_factory=dict)
    proven_hosts: dict[int, list[VerifiedHost]] = field(default_factory=dict)  # proven claims by owner id
    grants: dict[WorkId, list[Grant]] = field(default_factory=dict)


def facts_load(
    items: list[Item], *, candidates: Candidates | None = None, meanwhile: Callable[[], object] | None = None,
) -> Facts:
    """The facts for `items`. `candidates`, when given, is what the key filter said of (at least)
    these items' keys (batch_decide asks it once for the whole batch). `meanwhile` is called once
    the statements are on their way and before their rows are read, when they go out together
    (PostgreSQL); otherwise not at all."""
    valid = [item for item in items if item.error is None]
    # Keys the filter rules out are registered by no one: they cost no lookup (selectors/key_filter).
    maybe = candidates if candidates is not None else registered_candidates(
        sha256s={i.sha256 for i in valid if i.sha256},
        urls={(i.url, i.url_host) for i in valid if i.url},
        identifiers={i.identifier for i in valid if i.identifier},
    )
    # The rest may read from a replica, once it has replayed everything committed until now.
    with decision_reads():
        return _facts_of(items, valid, maybe, meanwhile)


def _facts_of(items: list[Item], valid: list[Item], maybe: Candidates, meanwhile: Callable[[], object] | None) -> Facts:
    sha_items = [i for i in valid if i.sha256 is not None and i.sha256 in maybe.sha256s]
    url_items = [i for i in valid if i.url is not None and i.url in maybe.urls]
    identifier_items = [i for i in valid if i.identifier is not None and i.identifier in maybe.identifiers]
    using = router.db_for_read(Work)
    digests, url_pairs = {i.sha256 for i in sha_items}, [(i.url, i.url_host) for i in url_items]
    identifiers = {i.identifier for i in identifier_items}
    phash_items = [i for i in valid if i.phash is not None]
    queries = [(i.phash, i.max_distance) for i in phash_items]
    pipelined = connections[using].vendor == "postgresql"
    if pipelined:
        # One round trip for everything the rules read: the exact lookups, the facts of the works
        # they match (by the same lookups as a subquery), and the near-match index's candidates
        # confirmed, when they need it.
        loaded = _pipelined_load(matching.exact_statement(sha256s=digests, urls=url_pairs, identifiers=identifiers),
                                 bool(url_pairs), queries, using, meanwhile)
        by_sha, exact_urls, pattern_urls, by_identifier = matching.exact_rows_collect(
            loaded.exact_rows, urls=url_pairs, identifiers=identifiers)
    else:
        by_sha, exact_urls, pattern_urls, by_identifier = matching.works_by_exact(
            sha256s=digests, urls=url_pairs, identifiers=identifiers, using=using)
        near = matching.works_by_phash(queries)

    # Most items have no candidate at all: they share one empty fact of each kind (never mutated).
    exact: list[dict[WorkId, set[str]]] = [_NO_EXACT] * len(items)
    patterns: list[set[WorkId]] = [_NO_PATTERNS] * len(items)
    similar: list[dict[WorkId, int]] = [_NO_SIMILAR] * len(items)
    position = {item.index: n for n, item in enumerate(items)}
    for looked_up, found, key_of, method in (
        (sha_items, by_sha, lambda i: i.sha256, Method.SHA256),
        (url_items, exact_urls, lambda i: i.url, Method.URL),
        (identifier_items, by_identifier, lambda i: i.identifier, Method.IDENTIFIER),
    ):
        for item in looked_up:
            for work_id in found.get(key_of(item), ()):
                n = position[item.index]
                if exact[n] is _NO_EXACT:
                    exact[n] = {}
                exact[n].setdefault(work_id, set()).add(method)
    for item in url_items:
        if item.url in pattern_urls:
            n = position[item.index]
            patterns[n] = set(pattern_urls[item.url]) - set(exact[n])
    facts = Facts(exact=exact, patterns=patterns, similar=similar)
    work_ids = {w for per in exact for w in per} | {w for per in patterns for w in per}
    if pipelined:
        # The statements read the works of every row the lookups found, a few more than match
        # (identifiers of another scheme, patterns that do not cover the URL): only matches count.
        facts.works = {w: loaded.works[w] for w in work_ids if w in loaded.works}
        facts.similar_works, facts.proven_hosts = loaded.similar_works, loaded.proven_hosts
        near = loaded.near.distances(loaded.present)  # a hash row deleted since the index read it never matches
        _similar_place(similar, exact, phash_items, near, position)
        facts.grants = _grants_by_work(list(facts.works.values()), loaded.grants)
        return facts
    _similar_place(similar, exact, phash_items, near, position)
    # Owners of URL matches need their proven hosts; a pattern's owner may not be known yet, so
    # the hosts are read for the works matched by URL and the rules look them up by owner.
    url_work_ids = {w for per in patterns for w in per}
    url_work_ids |= {w for per in exact for w, found in per.items() if Method.URL in found}
    similar_ids = {w for per in similar for w in per}
    loaded = _works_load(work_ids | similar_ids)
    facts.works = {w: loaded[w] for w in work_ids if w in loaded}
    facts.similar_works = {w: SimilarWork(loaded[w].id, loaded[w].title, loaded[w].owner_slug)
                           for w in similar_ids if w in loaded}
    facts.proven_hosts = host_proofs({facts.works[w].owner_id for w in url_work_ids if w in facts.works})
    facts.grants = _candidate_grants([facts.works[w] for w in work_ids if w in facts.works])
    return facts


def _similar_place(similar: list, exact: list, phash_items: list[Item], near: list[dict[WorkId, int]],
                   position: dict[int, int]) -> None:
    """Each phash item's similar works, leaving out works the same item matched exactly."""
    for item, near_here in zip(phash_items, near, strict=True):
        if near_here:
            n = position[item.index]
            # Only a file item has both keys; a phash item matches nothing exactly (a dict copy
            # reuses the keys' hashes, which for uuids are computed in Python).
            exact_here = exact[n]
            similar[n] = dict(near_here) if exact_here is _NO_EXACT else {
                w: d for w, d in near_here.items() if w not in exact_here
            }


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
    return {row[0]: _work_facts(*row) for row in rows}


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
        .only(*_GRANT_FIELDS, *(f"grantor__{f}" for f in _GRANTOR_FIELDS if f != "id"))
        .order_by("created_at", "id")
    )
    return _grants_by_work(works, list(grants))


def _grants_by_work(works: list[WorkFacts], grants: list[Grant]) -> dict[WorkId, list[Grant]]:
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


# --- PostgreSQL: the works, their grants and their owners' hosts in one round trip -----------

_GRANT_FIELDS = (
    "id", "grantor_id", "scope", "work_id", "licensee_id", "purposes", "territories", "contexts",
    "valid_from", "valid_until", "revoked_at", "attribution", "licence_url", "compensation", "created_at",
)
_GRANTOR_FIELDS = ("id", "slug", "verified_at", "suspended_at")
_HOST_FIELDS = ("id", "organization_id", "host", "covers_subdomains", "verified_at")

# The same facts as _works_load, _candidate_grants and host_proofs, with the exact lookups, in one
# statement: the lookups ({exact}: matching.exact_statement) run once, the works they match are
# read once, and the grants and hosts are found from those (their ancestors and owners). The four
# kinds of row come back as one set, each in its own columns, told apart by the first: 0 a lookup
# row, 1 a work, 2 a grant and its grantor, 3 a proven host. The first branch returns no row; it
# gives every column its type from the tables (a NULL in a UNION has none of its own).
_EXACT_COLUMNS, _WORK_COLUMNS = 6, 8
_GRANT_COLUMNS = f"{model_columns(Grant, 'g', _GRANT_FIELDS)}, {model_columns(Organization, 'o', _GRANTOR_FIELDS)}"
_HOST_COLUMNS = model_columns(VerifiedHost, "h", _HOST_FIELDS)
_GRANT_WIDTH, _HOST_WIDTH = len(_GRANT_FIELDS) + len(_GRANTOR_FIELDS), len(_HOST_FIELDS)


def _nulls(count: int) -> str:
    return ", ".join(["NULL"] * count)


_FACTS_SQL = f"""
WITH e(kind, key, key2, is_pattern, host, work_id) AS MATERIALIZED ({{exact}}),
d AS MATERIALIZED (
    SELECT w.id, w.title, w.status, w.lineage, w.owner_id, o.slug,
           o.verified_at IS NOT NULL AND o.suspended_at IS NULL AS verified,
           EXISTS (SELECT 1 FROM registry_disputework dw JOIN registry_dispute dp ON dp.id = dw.dispute_id
                   WHERE dw.work_id = w.id AND dw.freezes AND dp.status = ANY(%s)) AS frozen
    FROM registry_work w JOIN registry_organization o ON o.id = w.owner_id
    WHERE w.id IN (SELECT work_id FROM e)
)
SELECT NULL::integer, NULL::integer, NULL::text, NULL::text, NULL::boolean, NULL::text, NULL::uuid,
       w.id, w.title, w.status, w.lineage, w.owner_id, o.slug, NULL::boolean, NULL::boolean,
       {_GRANT_COLUMNS}, {_HOST_COLUMNS}
FROM registry_work w, registry_organization o, registry_grant g, registry_verifiedhost h WHERE false
UNION ALL
SELECT 0, e.kind, e.key, e.key2, e.is_pattern, e.host, e.work_id, {_nulls(_WORK_COLUMNS + _GRANT_WIDTH + _HOST_WIDTH)}
FROM e
UNION ALL
SELECT 1, {_nulls(_EXACT_COLUMNS)}, d.*, {_nulls(_GRANT_WIDTH + _HOST_WIDTH)} FROM d
UNION ALL
SELECT 2, {_nulls(_EXACT_COLUMNS + _WORK_COLUMNS)}, {_GRANT_COLUMNS}, {_nulls(_HOST_WIDTH)}
FROM registry_grant g JOIN registry_organization o ON o.id = g.grantor_id
WHERE g.scope = 'work' AND g.work_id = ANY(ARRAY(
    SELECT id FROM d
    UNION
    SELECT part::uuid FROM d, unnest(string_to_array(trim(BOTH '/' FROM lineage), '/')) AS part
    WHERE part <> ''
))
UNION ALL
SELECT 2, {_nulls(_EXACT_COLUMNS + _WORK_COLUMNS)}, {_GRANT_COLUMNS}, {_nulls(_HOST_WIDTH)}
FROM registry_grant g JOIN registry_organization o ON o.id = g.grantor_id
WHERE g.scope = 'catalog' AND g.grantor_id = ANY(ARRAY(SELECT DISTINCT owner_id FROM d))
"""  # noqa: S608 (column lists are this module's constants)
# Only when URLs were looked up: the proven hosts of the owners of works matched by URL.
_FACTS_HOSTS_SQL = f"""
UNION ALL
SELECT 3, {_nulls(_EXACT_COLUMNS + _WORK_COLUMNS + _GRANT_WIDTH)}, {_HOST_COLUMNS}
FROM registry_verifiedhost h
WHERE h.verified_at IS NOT NULL
  AND h.organization_id IN (SELECT owner_id FROM d WHERE id IN (SELECT work_id FROM e WHERE kind = 1))
"""  # noqa: S608
_WORKS_AT, _GRANTS_AT = 1 + _EXACT_COLUMNS, 1 + _EXACT_COLUMNS + _WORK_COLUMNS
_HOSTS_AT = _GRANTS_AT + _GRANT_WIDTH
# The works of the near-match index's candidate rows, for the rows the table still holds: the
# confirmation and the facts in one statement, by hash row id (integers travel cheaper than uuids).
_SIMILAR_SQL = """
SELECT p.id, w.id, w.title, o.slug
FROM registry_perceptualhash p JOIN registry_work w ON w.id = p.work_id
JOIN registry_organization o ON o.id = w.owner_id
WHERE p.id = ANY(%s)
"""
# The same facts when the index's rows need no confirming (NearCandidates.current), by work: one
# index descent a row instead of three. The works travel as one uuid[] literal (db_statements.uuid_array)
# and come back as their positions in it: psycopg dumps and loads uuids one Python call each, which
# cost more than the statement (1,350 similar works: 6 ms in all, against 10 by hash row). Unnested
# rather than cut from a byte string: 2.7 ms of the server for 1,323 works, against 3.7.
_SIMILAR_WORKS_SQL = """
SELECT q.n - 1, w.title, o.slug FROM unnest(%s::uuid[]) WITH ORDINALITY AS q(id, n)
JOIN registry_work w ON w.id = q.id
JOIN registry_organization o ON o.id = w.owner_id
"""

@dataclass
class _Loaded:
    exact_rows: list[tuple]
    works: dict[WorkId, WorkFacts]
    similar_works: dict[WorkId, SimilarWork]
    grants: list[Grant]
    proven_hosts: dict[int, list[VerifiedHost]]
    present: set[int]  # near-match candidate hash rows the table still holds
    near: NearCandidates  # per near-match query, its candidates


# From this many near-match queries on, they are searched in two halves: the database lists the
# similar works of the first half while the second is searched (100 queries over clustered flat-colour
# art find ~1,300 similar works, ~5 ms to list, and as much to search).
NEAR_SPLIT_AT = 16


def _pipelined_load(
    exact: tuple[str, list] | None, with_urls: bool, queries: list[tuple[int, int]], using: str,
    meanwhile: Callable[[], object] | None = None,
) -> _Loaded:
    """The exact lookups (`exact`: matching.exact_statement) with the facts `_works_load`,
    `_candidate_grants` and `host_proofs` read for the works they find, sent together (psycopg's
    pipeline), with the near-match candidates of `queries` (phash, max_distance) from the shared
    index and their similar works: by candidate hash row, with which of those rows still exist,
    or, when the rows need no confirming (NearCandidates.current), by work. `with_urls`: the
    lookups include URLs, whose owners' proven hosts are read too. `meanwhile` runs while the
    database works, as does the search of the second half of many near-match queries."""
    statements = []
    if exact is not None:
        exact_sql, exact_params = exact
        open_statuses = [status.value for status in Dispute.OPEN_STATUSES]
        sql = _FACTS_SQL.format(exact=exact_sql) + (_FACTS_HOSTS_SQL if with_urls else "")
        statements.append(("facts", sql, [*exact_params, open_statuses]))
    search = matching.phash_searcher(using=using) if queries else None  # one state of the index for both halves
    half = len(queries) // 2 if len(queries) >= NEAR_SPLIT_AT else len(queries)
    parts: list[NearCandidates] = []
    asked_rows: set[int] = set()
    listed: dict[str, list[WorkId]] = {}

    def near_statements(found: NearCandidates, name: str) -> list[Statement]:
        """What lists the similar works of these candidates, leaving out what an earlier part asked for."""
        parts.append(found)
        if not found.current:
            row_ids = found.row_ids() - asked_rows
            asked_rows.update(row_ids)
            return [(f"similar{name}", _SIMILAR_SQL, [list(row_ids)])] if row_ids else []
        asked = {work for works in listed.values() for work in works}
        ids = [work for work in dict.fromkeys(w for per in found.rows for w in per) if work not in asked]
        listed[f"similar_works{name}"] = ids
        return [(f"similar_works{name}", _SIMILAR_WORKS_SQL, [uuid_array(ids)])] if ids else []

    if search is not None:
        statements += near_statements(search(queries[:half]), "")

    def while_waiting() -> list[Statement] | None:
        if meanwhile is not None:
            meanwhile()
        if search is None or half == len(queries):
            return None
        return near_statements(search(queries[half:]), "_rest")

    rows = fixed_rows(statements, using, meanwhile=while_waiting)
    exact_rows, works, grants, proofs = [], {}, [], defaultdict(list)
    for row in rows.get("facts", ()):
        part = row[0]
        if part == 0:
            exact_rows.append(row[1:_WORKS_AT])
        elif part == 1:
            work_id, title, status, lineage, owner_id, slug, verified, frozen = row[_WORKS_AT:_GRANTS_AT]
            works[work_id] = _work_facts(work_id, title, status, lineage, owner_id, slug, verified, frozen)
        elif part == 2:
            grant = model_from_row(Grant, row[_GRANTS_AT:_GRANTS_AT + len(_GRANT_FIELDS)], using, _GRANT_FIELDS)
            grant.grantor = model_from_row(Organization, row[_GRANTS_AT + len(_GRANT_FIELDS):_HOSTS_AT], using,
                                           _GRANTOR_FIELDS)
            grants.append(grant)
        else:
            proof = model_from_row(VerifiedHost, row[_HOSTS_AT:], using, _HOST_FIELDS)
            proofs[proof.organization_id].append(proof)
    present = set()
    similar_works = {}
    for name in ("similar", "similar_rest"):
        for row_id, work_id, title, slug in rows.get(name, ()):
            present.add(row_id)
            similar_works[work_id] = SimilarWork(work_id, title, slug)
    for name, ids in listed.items():
        for position, title, slug in rows.get(name, ()):
            similar_works[ids[position]] = SimilarWork(ids[position], title, slug)
    # Both halves come from one state of the index, so they agree on `current`.
    near = NearCandidates([per for part in parts for per in part.rows], all(part.current for part in parts))
    return _Loaded(exact_rows, works, similar_works, grants, proofs, present, near)


def _work_facts(work_id, title, status, lineage, owner_id, slug, verified, frozen) -> WorkFacts:
    return WorkFacts(
        id=work_id, title=title, owner_id=owner_id, owner_slug=slug, owner_verified=verified,
        active=status == Work.Status.ACTIVE, frozen=frozen,
        ancestor_ids=tuple(uuid.UUID(part) for part in lineage.strip("/").split("/") if part) if lineage else (),
    )
