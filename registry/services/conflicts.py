"""Conflict detection: content one organisation registers that another already registered.

Under an opt-in regime the danger is a false permission: someone registers a studio's art as
their own and licenses it. So when a work's exact reference (same SHA-256, identifier or exact
URL) matches another organisation's active work, Kyoka opens an ownership dispute by itself.
Whether it freezes (DESIGN.md "Disputes") follows the standing of the two registrations:
both with standing, both freeze; only one with standing, the other one alone freezes — a
later registration without standing never freezes an earlier one that has it; neither,
nothing freezes and the dispute waits in the reviewers' triage queue.

A perceptual (pHash) resemblance is not a claim of ownership: it raises one SimilarityFlag per
pair of works for reviewers (closest distance kept), and none when either image is too plain to
tell apart (registry/matching/plainness.py).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass

from django.db import DEFAULT_DB_ALIAS, transaction
from django.db.models import Q

from registry.access import Actor
from registry.db_statements import lookups_by_index
from registry.matching.fingerprints import phash_to_hex
from registry.matching.plainness import file_is_plain
from registry.matching.urls import url_host
from registry.models import (
    ContentFile,
    Dispute,
    DisputeEvent,
    DisputeWork,
    Organization,
    PerceptualHash,
    SimilarityFlag,
    Work,
    WorkIdentifier,
    WorkURL,
)
from registry.selectors.matching import works_by_identifier, works_by_phash, works_by_sha256, works_by_url
from registry.selectors.standing import organizations_with_standing, urls_with_standing
from registry.services.audit import audit_append
from registry.services.notifications import notify_after_commit, notify_dispute_opened
from registry.services.references import AddedReferences

# The distance a check matches at by default: what a check would call a similar image.
CONFLICT_PHASH_DISTANCE = 8
CONFLICT_DETECTOR = Actor.for_operator("conflict-detection")

WorkId = uuid.UUID


@dataclass(frozen=True)
class Evidence:
    """Why two works conflict: how they matched and on what."""

    method: str  # sha256 | phash | identifier | url
    value: str
    distance: int | None = None

    def as_data(self) -> dict[str, object]:
        data: dict[str, object] = {"method": self.method, "value": self.value}
        if self.distance is not None:
            data["distance"] = self.distance
        return data

    def describe(self) -> str:
        return {
            "sha256": "the same file",
            "identifier": "the same identifier",
            "url": "the same URL",
        }[self.method] + f" ({self.value})"


def conflict_key(first: WorkId, second: WorkId) -> str:
    """The same for a pair whichever way round it is found, so a pair opens one dispute, ever."""
    low, high = sorted((first.hex, second.hex))
    return f"ownership:{low}:{high}"


@transaction.atomic
def conflicts_detect(*, work_ids: Iterable[WorkId]) -> list[Dispute]:
    """Open an ownership dispute for each new exact conflict between these works and other owners' works,
    and raise a similarity flag for each new near-image pair.

    Set-based for bulk uploads: a batch of any size costs a fixed number of queries, plus
    a few per dispute actually opened (its audit event). Call it inside the transaction
    that registered the references, so the dispute exists as soon as they do.

    Once per pair: a pair that already has a dispute (open or decided) gets no second one,
    also when two registrations race (the unique conflict_key settles it). Only active
    works conflict; the earlier registration is the claimant, the later the respondent.
    """
    work_ids = set(work_ids)
    if not work_ids:
        return []
    with lookups_by_index(DEFAULT_DB_ALIAS):
        return _detect(_shared_references(work_ids))


@transaction.atomic
def conflicts_detect_references(*, references: AddedReferences) -> list[Dispute]:
    """`conflicts_detect` for references just written, handed over in memory, not read back.

    What a bulk upload chunk calls with what it added (registry.services.references): the
    same rules, without re-reading thousands of rows the transaction has just written.
    """
    if not references:
        return []
    # A chunk's statistics are those of the tables before the upload grew them (see lookups_by_index).
    with lookups_by_index(DEFAULT_DB_ALIAS):
        return _detect(_hits(references))


def _detect(shared: list[Hit]) -> list[Dispute]:
    # References first, works after: most batches share nothing with another work, and then
    # no work row needs loading at all.
    hits = [(source, others) for source, others in shared if others.keys() - {source}]
    if not hits:
        return []
    active = Work.objects.filter(status=Work.Status.ACTIVE).select_related("owner")
    works = {work.pk: work for work in active.filter(pk__any=list({source for source, _ in hits}))}
    # Only another owner's works can conflict: the batch owners' own works are not even fetched.
    others = {other for _, found in hits for other in found} - works.keys()
    works |= {
        work.pk: work
        for work in active.filter(pk__any=list(others)).exclude(owner_id__in={w.owner_id for w in works.values()})
    }
    candidates: dict[str, tuple[Work, Work, list[Evidence]]] = {}
    similar: dict[tuple[WorkId, WorkId], int] = {}
    for source_id, others in hits:
        source = works.get(source_id)
        if source is None:
            continue  # withdrawn: only active works conflict
        # Only works of another owner pair up: a catalog that reuses one file across many of
        # its own works (a logo, a placeholder) costs nothing here, however large it grows.
        for other_id in others.keys() & works.keys():
            other = works[other_id]
            if other.owner_id == source.owner_id:
                continue
            evidence = others[other_id]
            if evidence.method == "phash":
                pair = (min(source_id, other_id), max(source_id, other_id))
                similar[pair] = min(similar.get(pair, 64), evidence.distance or 0)
                continue
            key = conflict_key(source_id, other_id)
            if key not in candidates:
                earlier, later = sorted((source, other), key=lambda w: (w.created_at, w.pk.hex))
                candidates[key] = (earlier, later, [])
            if evidence not in candidates[key][2]:
                candidates[key][2].append(evidence)
    # A pair that shares an exact reference is a dispute's business, not a flag's.
    similar = {pair: d for pair, d in similar.items() if conflict_key(*pair) not in candidates}
    if similar:
        _raise_similarity_flags(similar)
    if not candidates:
        return []
    taken = set(Dispute.objects.filter(conflict_key__in=list(candidates)).values_list("conflict_key", flat=True))
    fresh = {key: value for key, value in candidates.items() if key not in taken}
    if not fresh:
        return []
    return _open_disputes(fresh)


Hit = tuple[WorkId, dict[WorkId, Evidence]]


def _shared_references(work_ids: set[WorkId]) -> list[Hit]:
    """For each reference of the batch's works (read back from the tables): the other works that share it."""
    ids = list(work_ids)
    return _hits(AddedReferences(
        files=list(ContentFile.objects.filter(work_id__any=ids).values_list("sha256", "work_id")),
        hashes=list(PerceptualHash.objects.filter(work_id__any=ids).values_list("value", "work_id")),
        identifiers=list(WorkIdentifier.objects.filter(work_id__any=ids).values_list("scheme", "value", "work_id")),
        # Exact URLs only, not patterns: a pattern stakes out a path space (a whole CDN folder),
        # and overlapping with it is not by itself a claim on the same work.
        urls=list(WorkURL.objects.filter(work_id__any=ids, is_pattern=False).values_list("url", "host", "work_id")),
    ))


def _hits(references: AddedReferences) -> list[Hit]:
    """For each of these references: the other works that share it, and how."""
    hits: list[Hit] = []

    by_sha256 = works_by_sha256(sha for sha, _ in references.files)
    for sha256, work_id in references.files:
        found = Evidence("sha256", sha256)
        hits.append((work_id, dict.fromkeys(by_sha256.get(sha256, ()), found)))

    near = works_by_phash([(value, CONFLICT_PHASH_DISTANCE) for value, _ in references.hashes])
    for (value, work_id), matches in zip(references.hashes, near, strict=True):
        hex_value = phash_to_hex(value)
        hits.append((work_id, {other: Evidence("phash", hex_value, d) for other, d in matches.items()}))

    by_identifier = works_by_identifier((scheme, value) for scheme, value, _ in references.identifiers)
    for scheme, value, work_id in references.identifiers:
        found = Evidence("identifier", f"{scheme}:{value}")
        hits.append((work_id, dict.fromkeys(by_identifier.get((scheme, value), ()), found)))

    same_url = works_by_url(((url, host) for url, host, _ in references.urls), patterns=False)
    for url, _, work_id in references.urls:
        hits.append((work_id, dict.fromkeys(same_url.get(url, ()), Evidence("url", url))))
    return hits


# --- similarity flags ----------------------------------------------------------------------


def _plain_works(work_ids: set[WorkId]) -> set[WorkId]:
    """Works whose every stored image is plain. A work with an image that cannot be read (or
    whose bytes were never stored, as with hash-only bulk rows) is not plain: better one flag
    too many than a resemblance nobody sees."""
    verdicts: dict[WorkId, list[bool | None]] = {}
    images = ContentFile.objects.filter(work_id__in=work_ids, perceptual_hashes__isnull=False).distinct()
    for content_file in images.only("pk", "work_id", "file"):
        if not content_file.file:
            verdicts.setdefault(content_file.work_id, []).append(None)
            continue
        with content_file.file.open("rb") as stored:
            verdicts.setdefault(content_file.work_id, []).append(file_is_plain(stored))
    return {work_id for work_id, found in verdicts.items() if found and all(v is True for v in found)}


def _raise_similarity_flags(similar: dict[tuple[WorkId, WorkId], int]) -> None:
    plain = _plain_works({work_id for pair in similar for work_id in pair})
    wanted = {pair: distance for pair, distance in similar.items() if not (set(pair) & plain)}
    if not wanted:
        return
    pairs = Q()
    for low, high in wanted:
        pairs |= Q(work_a_id=low, work_b_id=high)
    existing = {(f.work_a_id, f.work_b_id): f for f in SimilarityFlag.objects.select_for_update().filter(pairs)}
    SimilarityFlag.objects.bulk_create(
        [
            SimilarityFlag(work_a_id=low, work_b_id=high, distance=distance)
            for (low, high), distance in wanted.items()
            if (low, high) not in existing
        ],
        ignore_conflicts=True,
    )
    closer = [flag for pair, flag in existing.items() if wanted[pair] < flag.distance]
    for flag in closer:
        flag.distance = wanted[(flag.work_a_id, flag.work_b_id)]
    SimilarityFlag.objects.bulk_update(closer, ["distance"])


# --- ownership disputes --------------------------------------------------------------------


def _standing(pairs: list[tuple[Work, Work, list[Evidence]]]) -> set[WorkId]:
    """The works (of these pairs) whose shared exact reference has standing."""
    owners = organizations_with_standing(w.owner_id for earlier, later, _ in pairs for w in (earlier, later))
    hosts = urls_with_standing(
        (w.owner_id, url_host(e.value))
        for earlier, later, found in pairs
        for w in (earlier, later)
        for e in found
        if e.method == "url"
    )
    standing = set()
    for earlier, later, found in pairs:
        for work in (earlier, later):
            if work.owner_id in owners and any(
                e.method != "url" or (work.owner_id, url_host(e.value)) in hosts for e in found
            ):
                standing.add(work.pk)
    return standing


def freezing_works(earlier: Work, later: Work, standing: set[WorkId]) -> set[WorkId]:
    """Which works of an automatic conflict freeze (see the module docstring)."""
    with_standing = {earlier.pk, later.pk} & standing
    if len(with_standing) == 2:
        return {earlier.pk, later.pk}
    if len(with_standing) == 1:
        return {earlier.pk, later.pk} - with_standing
    return set()


def _open_disputes(fresh: dict[str, tuple[Work, Work, list[Evidence]]]) -> list[Dispute]:
    drafts = [
        (
            Dispute(
                kind=Dispute.Kind.OWNERSHIP,
                claimant_id=earlier.owner_id,
                respondent_id=later.owner_id,
                statement=_statement(earlier, later, found),
                statement_code="dispute.conflict_statement",
                statement_params=_statement_params(earlier, later, found),
                conflict_key=key,
            ),
            earlier,
            later,
            found,
        )
        for key, (earlier, later, found) in fresh.items()
    ]
    # ON CONFLICT DO NOTHING: a registration racing this one may have opened the same pair a
    # moment ago; its row wins and ours is skipped. Whatever we inserted is ours to finish.
    Dispute.objects.bulk_create([draft[0] for draft in drafts], ignore_conflicts=True)
    inserted = set(Dispute.objects.filter(pk__in=[draft[0].pk for draft in drafts]).values_list("pk", flat=True))
    opened = [draft for draft in drafts if draft[0].pk in inserted]
    if not opened:
        return []
    standing = _standing([(earlier, later, found) for _, earlier, later, found in opened])
    links, events = [], []
    freezes: dict[uuid.UUID, set[WorkId]] = {}
    for dispute, earlier, later, _found in opened:
        freezes[dispute.pk] = freezing_works(earlier, later, standing)
        links += [
            DisputeWork(
                dispute=dispute, work_id=earlier.pk, side=DisputeWork.Side.CLAIMANT,
                freezes=earlier.pk in freezes[dispute.pk],
            ),
            DisputeWork(
                dispute=dispute, work_id=later.pk, side=DisputeWork.Side.RESPONDENT,
                freezes=later.pk in freezes[dispute.pk],
            ),
        ]
        events.append(
            DisputeEvent(
                dispute=dispute,
                kind=DisputeEvent.Kind.TRANSITION,
                to_status=Dispute.Status.OPEN,
                message="Opened automatically: the registrations conflict.",
                code="dispute.opened_automatically",
            )
        )
    DisputeWork.objects.bulk_create(links)
    DisputeEvent.objects.bulk_create(events)
    owners = Organization.objects.in_bulk(
        {draft[0].claimant_id for draft in opened} | {draft[0].respondent_id for draft in opened}
    )
    for dispute, earlier, later, found in opened:
        audit_append(
            actor=CONFLICT_DETECTOR,
            action="dispute.open",
            object_type="dispute",
            object_id=str(dispute.pk),
            organization=owners[dispute.respondent_id],
            data={
                "kind": dispute.kind,
                "automatic": True,
                "claimant": owners[dispute.claimant_id].slug,
                "respondent": owners[dispute.respondent_id].slug,
                "claimant_work": str(earlier.pk),
                "respondent_work": str(later.pk),
                "matches": [e.as_data() for e in found],
                "freezes": sorted(str(pk) for pk in freezes[dispute.pk]),
            },
        )
        notify_after_commit(notify_dispute_opened, dispute_id=str(dispute.pk))
    return [draft[0] for draft in opened]


def _statement_params(earlier: Work, later: Work, found: list[Evidence]) -> dict[str, object]:
    """_statement's values, for registry.message_codes to render in each reader's language."""
    return {
        "later_title": later.title, "later_ref": later.external_ref, "later_owner": later.owner.name,
        "earlier_title": earlier.title, "earlier_ref": earlier.external_ref, "earlier_owner": earlier.owner.name,
        "matches": [{"method": e.method, "value": e.value} for e in found],
    }


def _statement(earlier: Work, later: Work, found: list[Evidence]) -> str:
    shared = "; ".join(e.describe() for e in found)
    return (
        f'"{later.title}" ({later.external_ref}), registered by {later.owner.name}, matches '
        f'"{earlier.title}" ({earlier.external_ref}), registered earlier by {earlier.owner.name}: '
        f"{shared}."
    )
