"""The keys a licence snapshot may hold, and what studios can see of the snapshots issued.

The invariant every function here serves: **a key is in a snapshot only if an online check of
that exact key, by the same requester, for the same purpose, territory and context, at the
snapshot's `issued_at`, answers `permitted`.** So nothing here decides on its own. The grants
only nominate candidates (the exact references of every work a grant to this requester might
cover, less those that can never permit: a grantor without standing, a URL on a host its owner
has not proven); the decision engine, the same one `POST /api/v1/checks` uses, answers each candidate,
and only its `permitted` answers are kept. A candidate missed costs the licensee a lookup; a
candidate kept wrongly would be a false `permitted`, so the nomination may be generous and the
keeping may not.

URL patterns need more than one answer: a pattern stands for every URL it matches, and such a
URL may also match another registration on the same host (an exact URL under it, another
pattern) that refuses. A pattern is therefore kept only when every such rival answers
`permitted` and the pattern's own work permits with standing; then any URL the pattern matches
is decided by works that all permit (see `_patterns_permitted`).
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime

from django.db.models import Max, Q, QuerySet

from registry.decisions import decide
from registry.decisions.parse import CheckRequest, Item
from registry.decisions.rules import ItemResult
from registry.matching.urls import pattern_matches
from registry.models import ContentFile, Grant, LicenceSnapshot, Organization, Work, WorkIdentifier, WorkURL
from registry.purposes import purposes_cover
from registry.selectors.standing import urls_with_standing

# What a snapshot lists, in the order its body does. The last is no key: per URL pattern, the
# exact URLs under it that are refused (see `_patterns_permitted`).
KEY_KINDS = ("sha256", "url", "url_pattern", "identifier", "url_pattern_except")
COUNTED_KINDS = KEY_KINDS[:4]
# One decision batch: the same size a check request may have.
DECIDE_BATCH = 10_000
PERMITTED = "permitted"


@dataclass
class PermittedKeys:
    """Per kind, each permitted key with the ids of the grants it rests on (sorted)."""

    keys: dict[str, dict[str, tuple[str, ...]]] = field(default_factory=lambda: {k: {} for k in KEY_KINDS})
    grants: dict[str, Grant] = field(default_factory=dict)

    @property
    def count(self) -> int:
        return sum(len(self.keys[kind]) for kind in COUNTED_KINDS)


def snapshot_candidate_grants(*, request: CheckRequest) -> list[Grant]:
    """Grants that might permit something to this requester now: in force, naming it or anyone, for P.

    Only a narrowing: the decision engine still judges every key with every condition.
    """
    grants = (
        Grant.objects.in_force(at=request.at)
        .filter(Q(licensee=request.requester) | Q(licensee__isnull=True))
        # An unverified or suspended grantor's grants count for nothing.
        .filter(grantor__verified_at__isnull=False, grantor__suspended_at__isnull=True)
        .select_related("grantor")
    )
    return [g for g in grants if purposes_cover(g.purposes, request.purpose)]


def snapshot_candidate_work_ids(grants: Iterable[Grant]) -> set[uuid.UUID]:
    """Every work in the scope of these grants: the work and its descendants, or the whole catalog."""
    grants = list(grants)
    catalog_owners = {g.grantor_id for g in grants if g.scope == Grant.Scope.CATALOG}
    granted = {g.work_id for g in grants if g.scope == Grant.Scope.WORK}
    work_ids: set[uuid.UUID] = set()
    if catalog_owners:
        work_ids |= set(Work.objects.active().filter(owner_id__in=catalog_owners).values_list("id", flat=True))
    if granted:
        rows = list(Work.objects.active().filter(pk__any=list(granted)).values_list("id", "lineage"))
        work_ids |= {work_id for work_id, _ in rows}
        # Only works with children need the (prefix) descendant query; most grants are on leaves.
        parents = set(Work.objects.filter(parent_id__any=[w for w, _ in rows]).values_list("parent_id", flat=True))
        prefixes = [f"{lineage}{work_id.hex}/" for work_id, lineage in rows if work_id in parents]
        for start in range(0, len(prefixes), 500):
            below = Q()
            for prefix in prefixes[start:start + 500]:
                below |= Q(lineage__startswith=prefix)
            work_ids |= set(Work.objects.active().filter(below).values_list("id", flat=True))
    return work_ids


def _ids_in_chunks(queryset: QuerySet, ids: list[uuid.UUID], chunk: int = 50_000) -> list[tuple]:
    rows: list[tuple] = []
    for start in range(0, len(ids), chunk):
        rows.extend(queryset.filter(work_id__any=ids[start:start + chunk]))
    return rows


def _decide_keys(request: CheckRequest, items: list[Item]) -> list[ItemResult]:
    results: list[ItemResult] = []
    for start in range(0, len(items), DECIDE_BATCH):
        results.extend(decide(request, items[start:start + DECIDE_BATCH]))
    return results


def _permitting_grants(result: ItemResult) -> list[Grant]:
    return [g for m in result.matches if m.decision == PERMITTED for g in m.grants]


def snapshot_permitted_keys(*, request: CheckRequest) -> PermittedKeys:
    """Every exact key (and URL pattern) permitted to `request.requester` for its terms at `request.at`."""
    found = PermittedKeys()
    work_ids = sorted(snapshot_candidate_work_ids(snapshot_candidate_grants(request=request)))
    if not work_ids:
        return found
    digests = {row[0] for row in _ids_in_chunks(ContentFile.objects.values_list("sha256"), work_ids)}
    identifiers = {
        (scheme, value) for scheme, value in _ids_in_chunks(WorkIdentifier.objects.values_list("scheme", "value"),
                                                            work_ids)
    }
    url_rows = _ids_in_chunks(WorkURL.objects.values_list("url", "host", "is_pattern", "work__owner_id"), work_ids)
    # A URL whose owner has not proven its host has no standing and never permits by itself: not
    # worth asking, unless a pattern with standing on its host may permit it (see below).
    standing = urls_with_standing((owner, host) for _, host, _, owner in url_rows)
    pattern_hosts = {host for _, host, is_pattern, owner in url_rows if is_pattern and (owner, host) in standing}
    urls = {(url, host) for url, host, is_pattern, owner in url_rows
            if not is_pattern and ((owner, host) in standing or host in pattern_hosts)}

    items: list[Item] = []
    kinds: list[tuple[str, str]] = []
    for digest in sorted(digests):
        items.append(Item(index=len(items), sha256=digest))
        kinds.append(("sha256", digest))
    for url, host in sorted(urls):
        items.append(Item(index=len(items), url=url, url_host=host))
        kinds.append(("url", url))
    for scheme, value in sorted(identifiers):
        items.append(Item(index=len(items), identifier=(scheme, value)))
        kinds.append(("identifier", f"{scheme}:{value}"))
    for (kind, key), result in zip(kinds, _decide_keys(request, items), strict=True):
        if result.decision == PERMITTED:
            _keep(found, kind, key, _permitting_grants(result))
    if pattern_hosts:
        _patterns_permitted(request, found, pattern_hosts, set(work_ids))
    return found


def _keep(found: PermittedKeys, kind: str, key: str, grants: list[Grant]) -> None:
    # A permitted answer always names its covering grants; without any, the key is not kept.
    if not grants:
        return
    for grant in grants:
        found.grants[str(grant.pk)] = grant
    found.keys[kind][key] = tuple(sorted({str(g.pk) for g in grants}))


def _pattern_probe(pattern: str) -> str:
    """The shortest URL a normalised pattern matches: its literal pieces joined, without the anchor."""
    return pattern.removesuffix("$").replace("*", "")


def _patterns_permitted(
    request: CheckRequest, found: PermittedKeys, hosts: set[str], candidate_works: set[uuid.UUID]
) -> None:
    """Keep the URL patterns on `hosts` for which every URL they match is sure to be permitted.

    For a URL X matching a pattern P (work w) on host H, the works that decide X are among those
    with standing whose registrations on H match X: an exact URL equal to X (so one P matches) or
    any pattern on H. P is kept when:
    1. every pattern on H belongs to a candidate work and answers `permitted` when asked about
       through its shortest URL — then each such pattern's work that has standing permits, since
       standing and a work's verdict do not depend on which URL of H is asked about; and
    2. w itself answered `permitted` for P's shortest URL, so it has standing and X has a decider.
    An exact URL under P that was asked about itself and refused is listed as P's exception
    (`url_pattern_except`); one that was permitted is in the snapshot anyway. So for any other X
    under P no exact registration equals X, and only the patterns of 1. decide it: permitted.
    Withdrawn works' patterns count in 1. too (they could decide when nothing active matches).
    A pattern not kept leaves its URLs to online checks; offline they are not permitted.
    """
    rows = list(WorkURL.objects.filter(host__any=sorted(hosts)).values_list("url", "host", "is_pattern", "work_id"))
    exact_by_host: dict[str, list[tuple[str, uuid.UUID]]] = defaultdict(list)
    patterns_by_host: dict[str, list[tuple[str, uuid.UUID]]] = defaultdict(list)
    for url, host, is_pattern, work_id in rows:
        (patterns_by_host if is_pattern else exact_by_host)[host].append((url, work_id))
    probes = [(host, pattern, work_id) for host in sorted(patterns_by_host)
              for pattern, work_id in patterns_by_host[host]]
    items = [Item(index=i, url=_pattern_probe(pattern), url_host=host) for i, (host, pattern, _) in enumerate(probes)]
    results = _decide_keys(request, items)
    probe_permitted = {
        (host, pattern): work_id in candidate_works and result.decision == PERMITTED
        for (host, pattern, work_id), result in zip(probes, results, strict=True)
    }
    for (host, pattern, work_id), result in zip(probes, results, strict=True):
        if not all(probe_permitted[(host, other)] for other, _ in patterns_by_host[host]):
            continue
        # Exact URLs under the pattern that a check refuses are listed as its exceptions.
        refused = sorted({url for url, _ in exact_by_host[host]
                          if url not in found.keys["url"] and pattern_matches(pattern, url)})
        own = [m for m in result.matches if m.work.id == work_id and m.decision == PERMITTED]
        if own:
            _keep(found, "url_pattern", pattern, [g for m in own for g in m.grants])
            if refused:
                found.keys["url_pattern_except"][pattern] = tuple(refused)


# --- What the snapshot's readers and the studios see ----------------------------------------


def licence_snapshot_base(
    *, organization: Organization, purpose: str, territory: str, context: str, issued_at: datetime
) -> LicenceSnapshot | None:
    """The snapshot a client names with `?since=`: its own earlier one, by its exact `issued_at`."""
    return (
        LicenceSnapshot.objects.filter(
            organization=organization, purpose=purpose, territory=territory, context=context, issued_at=issued_at
        )
        .order_by("-issued_at")
        .first()
    )


def grant_snapshots_valid_until(*, grant: Grant, at: datetime) -> datetime | None:
    """Until when snapshots issued before `at` that rest on this grant may still be relied on."""
    return (
        LicenceSnapshot.objects.filter(grants=grant, issued_at__lte=at, valid_until__gt=at)
        .aggregate(until=Max("valid_until"))["until"]
    )


def licence_snapshot_downloads(*, organization: Organization, since: datetime, until: datetime) -> list[dict]:
    """Which licensee downloaded snapshots resting on this studio's grants, when, and which grants."""
    snapshots = (
        LicenceSnapshot.objects.filter(
            grants__grantor=organization, issued_at__gte=since, issued_at__lt=until
        )
        .distinct()
        .select_related("organization")
        .order_by("-issued_at")[:200]
    )
    snapshots = list(snapshots)
    grants_by_snapshot: dict[uuid.UUID, list[str]] = defaultdict(list)
    through = LicenceSnapshot.grants.through.objects.filter(
        licencesnapshot_id__in=[s.pk for s in snapshots], grant__grantor=organization
    ).values_list("licencesnapshot_id", "grant_id")
    for snapshot_id, grant_id in through:
        grants_by_snapshot[snapshot_id].append(str(grant_id))
    return [
        {
            "snapshot": str(s.pk),
            "licensee": s.organization.slug,
            "licensee_name": s.organization.name,
            "purpose": s.purpose,
            "territory": s.territory or None,
            "context": s.context,
            "issued_at": s.issued_at,
            "valid_until": s.valid_until,
            "grants": sorted(grants_by_snapshot[s.pk]),
        }
        for s in snapshots
    ]
