"""Finding the works a batch of content references points at: a fixed handful of queries per batch."""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Callable, Iterable

from django.db import DEFAULT_DB_ALIAS, connections
from django.db.models import Q

from registry.db_statements import fixed_rows, hex_array
from registry.matching.fingerprints import band_probes, hamming_distance
from registry.matching.urls import pattern_matches, url_key
from registry.models import ContentFile, PerceptualHash, WorkIdentifier, WorkURL
from registry.selectors.phash_index import NearCandidates, phash_index

WorkId = uuid.UUID
# SQLite caps bound parameters per statement; probe lists are sent in slices of this size.
SQLITE_CHUNK = 900


def works_by_sha256(digests: Iterable[str]) -> dict[str, set[WorkId]]:
    digests = set(digests)
    return _sha256_rows_collect(_in_chunks(_sha256_rows(), "sha256", digests) if digests else [])


def works_by_identifier(identifiers: Iterable[tuple[str, str]]) -> dict[tuple[str, str], set[WorkId]]:
    wanted = set(identifiers)
    rows = _in_chunks(_identifier_rows(), "value", {v for _, v in wanted}) if wanted else []
    return _identifier_rows_collect(rows, wanted)


def works_by_url(urls: Iterable[tuple[str, str]], *, patterns: bool = True) -> dict[str, set[WorkId]]:
    """`urls` are (normalised url, host) pairs: the works registered under each, exactly or by pattern.

    `patterns=False` answers exact registrations only (conflict detection: a pattern stakes out
    a path space, which is no claim on one work).
    """
    exact, by_pattern = works_by_url_split(urls, patterns=patterns)
    for url, work_ids in by_pattern.items():
        exact[url] |= work_ids
    return exact


def works_by_url_split(
    urls: Iterable[tuple[str, str]], *, patterns: bool = True
) -> tuple[dict[str, set[WorkId]], dict[str, set[WorkId]]]:
    """Exact URL registrations by hash and patterns by host, one query; the two kept apart,
    because a pattern counts only with standing on its host while an exact URL always registers."""
    urls = list(urls)
    return _url_rows_collect(list(_url_rows(urls, patterns=patterns)) if urls else [], urls)


def works_by_exact(
    *, sha256s: Iterable[str], urls: Iterable[tuple[str, str]], identifiers: Iterable[tuple[str, str]],
    using: str = DEFAULT_DB_ALIAS,
) -> tuple[dict[str, set[WorkId]], dict[str, set[WorkId]], dict[str, set[WorkId]], dict[tuple[str, str], set[WorkId]]]:
    """The three exact lookups of a check at once: (by sha256, by exact URL, by URL pattern, by identifier).

    On PostgreSQL they are one statement (`exact_statement`), the lookups joined by UNION ALL (a
    pipeline of three statements cost 0.25 ms more per check in round-trip bookkeeping).
    """
    digests, urls, wanted = set(sha256s), list(urls), set(identifiers)
    if connections[using].vendor != "postgresql":
        return works_by_sha256(digests), *works_by_url_split(urls), works_by_identifier(wanted)
    statement = exact_statement(sha256s=digests, urls=urls, identifiers=wanted)
    rows = fixed_rows([("exact", *statement)], using)["exact"] if statement is not None else []
    return exact_rows_collect(rows, urls=urls, identifiers=wanted)


def exact_statement(
    *, sha256s: set[str], urls: list[tuple[str, str]], identifiers: set[tuple[str, str]],
) -> tuple[str, list] | None:
    """PostgreSQL: the exact lookups as one statement (None: no key), whose rows
    `exact_rows_collect` reads. Its columns are (kind, key, key2, is_pattern, host, work_id),
    kind 0 for a file, 1 for a URL or pattern, 2 for an identifier: the decision's load also
    uses it as a subquery, for the works these keys match."""
    parts, params = [], []
    if sha256s:
        parts.append(_SHA256_PART)
        params.append(hex_array(sha256s))
    if urls:
        parts.append(_URL_PART)
        params += [hex_array({url_key(url) for url, _ in urls}), list({host for _, host in urls})]
    if identifiers:
        parts.append(_IDENTIFIER_PART)
        params.append(list({v for _, v in identifiers}))
    return (" UNION ALL ".join(parts), params) if parts else None


def exact_rows_collect(
    rows: Iterable[tuple], *, urls: list[tuple[str, str]], identifiers: set[tuple[str, str]],
) -> tuple[dict[str, set[WorkId]], dict[str, set[WorkId]], dict[str, set[WorkId]], dict[tuple[str, str], set[WorkId]]]:
    """`exact_statement`'s rows as (by sha256, by exact URL, by URL pattern, by identifier)."""
    by_kind: dict[int, list[tuple]] = {0: [], 1: [], 2: []}
    for kind, *row in rows:
        by_kind[kind].append(row)
    exact_urls, pattern_urls = _url_rows_collect(by_kind[1], urls)
    return (_sha256_rows_collect((sha256, work_id) for sha256, _, _, _, work_id in by_kind[0]), exact_urls,
            pattern_urls, _identifier_rows_collect(((s, v, w) for s, v, _, _, w in by_kind[2]), identifiers))


# What _sha256_rows, _url_rows(patterns=True) and _identifier_rows select, as parts of one fixed
# statement PostgreSQL prepares once per combination (registry/db_statements.py); every part has
# the same columns: kind, two keys, is_pattern, host, work.
_SHA256_PART = (
    "SELECT 0, sha256, NULL::text, NULL::boolean, NULL::text, work_id FROM registry_contentfile "
    "WHERE sha256 = ANY(%s::text[])"
)
_URL_PART = (
    "SELECT 1, url, url_hash, is_pattern, host, work_id FROM registry_workurl "
    "WHERE (NOT is_pattern AND url_hash = ANY(%s::text[])) OR (is_pattern AND host = ANY(%s))"
)
_IDENTIFIER_PART = (
    "SELECT 2, scheme, value, NULL::boolean, NULL::text, work_id FROM registry_workidentifier WHERE value = ANY(%s)"
)


def _sha256_rows():
    return ContentFile.objects.values_list("sha256", "work_id")


def _identifier_rows():
    return WorkIdentifier.objects.values_list("scheme", "value", "work_id")


def _url_rows(urls: list[tuple[str, str]], *, patterns: bool):
    wanted = Q(is_pattern=False, url_hash__any=list({url_key(url) for url, _ in urls}))
    if patterns:
        wanted |= Q(is_pattern=True, host__any=list({host for _, host in urls}))
    return WorkURL.objects.filter(wanted).values_list("url", "url_hash", "is_pattern", "host", "work_id")


def _sha256_rows_collect(rows) -> dict[str, set[WorkId]]:
    found: dict[str, set[WorkId]] = defaultdict(set)
    for sha256, work_id in rows:
        found[sha256].add(work_id)
    return found


def _identifier_rows_collect(rows, wanted: set[tuple[str, str]]) -> dict[tuple[str, str], set[WorkId]]:
    found: dict[tuple[str, str], set[WorkId]] = defaultdict(set)
    for scheme, value, work_id in rows:
        if (scheme, value) in wanted:
            found[(scheme, value)].add(work_id)
    return found


def _url_rows_collect(rows, urls: list[tuple[str, str]]) -> tuple[dict[str, set[WorkId]], dict[str, set[WorkId]]]:
    by_hash = {url_key(url): url for url, _ in urls}
    exact: dict[str, set[WorkId]] = defaultdict(set)
    by_pattern: dict[str, set[WorkId]] = defaultdict(set)
    urls_by_host: dict[str, list[str]] = defaultdict(list)
    for url, host in urls:
        urls_by_host[host].append(url)
    for url, digest, is_pattern, host, work_id in rows:
        if not is_pattern:
            exact[by_hash[digest]].add(work_id)
            continue
        for candidate in urls_by_host.get(host, ()):
            if pattern_matches(url, candidate):
                by_pattern[candidate].add(work_id)
    return exact, by_pattern


def phash_candidates(queries: list[tuple[int, int]], *, using: str = DEFAULT_DB_ALIAS) -> NearCandidates:
    """PostgreSQL: for each (hash, max_distance), {work: (distance, phash row id)} from the shared index.

    Unless `current`, a row deleted or changed since the index read it may be among them, so the
    caller keeps only rows the table still holds (`works_by_phash` asks; the decision's load
    asks in the same round trip as the works' facts).
    """
    return phash_index(using).candidates(queries) if queries else NearCandidates([], True)


def phash_searcher(*, using: str = DEFAULT_DB_ALIAS) -> Callable[[list[tuple[int, int]]], NearCandidates]:
    """PostgreSQL: `phash_candidates` over one state of the shared index, for queries searched in parts."""
    return phash_index(using).searcher()


def works_by_phash(queries: list[tuple[int, int]], *, using: str = DEFAULT_DB_ALIAS) -> list[dict[WorkId, int]]:
    """For each (hash, max_distance), the works with a hash within that distance, and the distance.

    Multi-index hashing: every near hash shares a band within max_distance // 3 bits with the
    query, so probing the bands finds them all (exact recall); the distance is verified after.
    On PostgreSQL the probes run against the in-memory index (see phash_index: ~70,000 probes
    for 100 items is too many index descents); on SQLite against the band columns.
    """
    results: list[dict[WorkId, int]] = [{} for _ in queries]
    if not queries:
        return results
    if connections[using].vendor == "postgresql":
        found = phash_candidates(queries, using=using)
        return found.distances(phash_index(using).confirm(found.row_ids()))
    probes: list[list[tuple[int, int]]] = [[], [], []]  # per band: (query index, band key)
    for index_, (value, max_distance) in enumerate(queries):
        for band, keys in enumerate(band_probes(value, max_distance)):
            probes[band].extend((index_, key) for key in keys)
    for index_, work_id, value in _phash_candidates_generic(probes, using):
        target, max_distance = queries[index_]
        distance = hamming_distance(target, value)
        if distance <= max_distance:
            best = results[index_].get(work_id)
            if best is None or distance < best:
                results[index_][work_id] = distance
    return results


def _phash_candidates_generic(probes, using) -> list[tuple[int, WorkId, int]]:
    rows: list[tuple[int, WorkId, int]] = []
    for band in range(3):
        wanted: dict[int, list[int]] = defaultdict(list)
        for index, key in probes[band]:
            wanted[key].append(index)
        field = f"band{band}"
        queryset = PerceptualHash.objects.using(using).values_list(field, "work_id", "value")
        found = _in_chunks(queryset, field, set(wanted))
        for key, work_id, value in found:
            rows.extend((index, work_id, value) for index in wanted[key])
    return rows


def _in_chunks(queryset, field: str, values: set) -> list[tuple]:
    if connections[queryset.db].vendor == "postgresql" or len(values) <= SQLITE_CHUNK:
        return list(queryset.filter(**{f"{field}__any": list(values)}))
    ordered = list(values)
    rows: list[tuple] = []
    for start in range(0, len(ordered), SQLITE_CHUNK):
        rows.extend(queryset.filter(**{f"{field}__any": ordered[start:start + SQLITE_CHUNK]}))
    return rows
