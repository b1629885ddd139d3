"""Reading disputes: who may see which, the reviewers' queue, both sides compared, histories."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import timedelta

from django.db.models import Exists, OuterRef, Q, QuerySet
from django.utils import timezone

from registry.access import Actor
from registry.exceptions import NotFound
from registry.matching.fingerprints import hamming_distance, phash_to_hex
from registry.matching.identifiers import InvalidIdentifier, parse_identifier
from registry.models import (
    AuditEvent,
    ContentFile,
    Dispute,
    DisputeEvent,
    DisputeWork,
    EvidenceFile,
    Grant,
    Membership,
    Organization,
    Work,
    WorkIdentifier,
    WorkURL,
)


def disputes_visible_to(actor: Actor) -> QuerySet[Dispute]:
    """Reviewers see every dispute; anyone else only those where an organisation of theirs is a party."""
    disputes = Dispute.objects.select_related("claimant", "respondent", "assignee")
    if actor.is_reviewer:
        return disputes
    if actor.api_key is not None:
        organizations: list[int] | QuerySet = [actor.api_key.organization_id]
    elif actor.user_or_none is not None:
        organizations = Membership.objects.filter(user=actor.user_or_none).values("organization_id")
    else:
        return disputes.none()
    return disputes.filter(Q(claimant_id__in=organizations) | Q(respondent_id__in=organizations))


def dispute_reference_owners(actor: Actor) -> set[int] | None:
    """Whose works' references `actor` may see in a dispute: its own organisations' (None: all, a reviewer)."""
    if actor.is_reviewer:
        return None
    if actor.api_key is not None:
        return {actor.api_key.organization_id}
    if actor.user_or_none is not None:
        return set(Membership.objects.filter(user=actor.user_or_none).values_list("organization_id", flat=True))
    return set()


# The queue's age filter: disputes waiting longer than this many days.
QUEUE_AGES = {"1d": 1, "7d": 7, "30d": 30}


def dispute_queue(
    *,
    statuses: list[str] | None = None,
    kind: str = "",
    age: str = "",
    assignee: str = "",
    me: int | None = None,
) -> QuerySet[Dispute]:
    """The reviewers' queue, oldest first. `assignee`: "me", "none", a user id, or "" for anyone.

    Each dispute carries `freezing`: whether any of its works answers `disputed` because of it.
    One that does not is in triage: filed by a claimant without standing (or opened between
    registrations without standing), waiting for a reviewer to start or reject it.
    """
    disputes = (
        Dispute.objects.select_related("claimant", "respondent", "assignee")
        .annotate(freezing=Exists(DisputeWork.objects.filter(dispute=OuterRef("pk"), freezes=True)))
        .order_by("created_at")
    )
    disputes = disputes.filter(status__in=statuses or list(Dispute.OPEN_STATUSES))
    if kind:
        disputes = disputes.filter(kind=kind)
    if age in QUEUE_AGES:
        disputes = disputes.filter(created_at__lte=timezone.now() - timedelta(days=QUEUE_AGES[age]))
    if assignee == "me":
        disputes = disputes.filter(assignee_id=me)
    elif assignee == "none":
        disputes = disputes.filter(assignee__isnull=True)
    elif assignee.isdigit():
        disputes = disputes.filter(assignee_id=int(assignee))
    return disputes


def dispute_freezes(dispute: Dispute) -> bool:
    """Whether this dispute, while open, makes any of its works answer `disputed`."""
    return dispute.is_open and DisputeWork.objects.filter(dispute=dispute, freezes=True).exists()


@dataclass
class FileView:
    content_file: ContentFile
    phashes: list[int]

    @property
    def phash_hex(self) -> list[str]:
        return [phash_to_hex(value) for value in self.phashes]

    @property
    def is_image(self) -> bool:
        return self.content_file.media_type.startswith("image/") and bool(self.content_file.file)


@dataclass
class WorkView:
    work: Work
    side: str
    files: list[FileView] = field(default_factory=list)
    identifiers: list[str] = field(default_factory=list)
    urls: list[str] = field(default_factory=list)
    # False when the viewer is the other party: only the title is theirs to see.
    references_shown: bool = True


@dataclass
class PairView:
    """How close one claimant work and one respondent work are."""

    claimant: WorkView
    respondent: WorkView
    same_sha256: list[str]
    phash_distance: int | None
    shared_identifiers: list[str]
    shared_urls: list[str]


@dataclass
class Comparison:
    claimant: list[WorkView]
    respondent: list[WorkView]
    pairs: list[PairView]


def dispute_comparison(dispute: Dispute, *, party: Organization | None = None) -> Comparison:
    """Both sides' works with their files, hashes and references, and each pair's distance.

    For a reviewer (`party` None) everything. For a party, its own side's references and only
    the titles of the other side's works: a dispute must not hand one side the other's hashes,
    URLs and identifiers (a squatter would learn exactly what to register next). What the two
    sides share (a pair's same SHA-256, identifiers, URLs) is the party's own, so it stays.

    Four queries whatever the number of works: links, files with their hashes, identifiers, URLs.
    """
    links = list(DisputeWork.objects.filter(dispute=dispute).select_related("work__owner").order_by("work__title"))
    views = {link.work_id: WorkView(work=link.work, side=link.side) for link in links}
    files = ContentFile.objects.filter(work_id__in=views).prefetch_related("perceptual_hashes").order_by("created_at")
    for content_file in files:
        phashes = [h.value for h in content_file.perceptual_hashes.all()]
        views[content_file.work_id].files.append(FileView(content_file, phashes))
    for scheme, value, work_id in WorkIdentifier.objects.filter(work_id__in=views).values_list(
        "scheme", "value", "work_id"
    ):
        views[work_id].identifiers.append(f"{scheme}:{value}")
    for url, is_pattern, work_id in WorkURL.objects.filter(work_id__in=views).values_list(
        "url", "is_pattern", "work_id"
    ):
        views[work_id].urls.append(url + (" (pattern)" if is_pattern else ""))
    claimant = [v for v in views.values() if v.side == DisputeWork.Side.CLAIMANT]
    respondent = [v for v in views.values() if v.side == DisputeWork.Side.RESPONDENT]
    pairs = [_pair(c, r) for c in claimant for r in respondent]
    if party is not None:
        for view in views.values():
            if view.work.owner_id != party.pk:
                view.files, view.identifiers, view.urls, view.references_shown = [], [], [], False
        for pair in pairs:
            pair.phash_distance = None  # a distance to a hash the party may not see
    return Comparison(claimant=claimant, respondent=respondent, pairs=pairs)


def _pair(claimant: WorkView, respondent: WorkView) -> PairView:
    left = {f.content_file.sha256 for f in claimant.files}
    right = {f.content_file.sha256 for f in respondent.files}
    distances = [
        hamming_distance(a, b)
        for fa in claimant.files
        for a in fa.phashes
        for fb in respondent.files
        for b in fb.phashes
    ]
    return PairView(
        claimant=claimant,
        respondent=respondent,
        same_sha256=sorted(left & right),
        phash_distance=min(distances) if distances else None,
        shared_identifiers=sorted(set(claimant.identifiers) & set(respondent.identifiers)),
        shared_urls=sorted(set(claimant.urls) & set(respondent.urls)),
    )


def audit_history(*, object_type: str, object_id: str) -> QuerySet[AuditEvent]:
    """Every audit event about one thing, in chain order.

    A work's history includes its grants and its disputes; an organisation's, everything
    recorded under it (its works, grants, keys, members) and the disputes it is a party to.
    """
    about = Q(object_type=object_type, object_id=object_id)
    if object_type == "work" and _is_uuid(object_id):
        grants = Grant.objects.filter(work_id=object_id).values_list("pk", flat=True)
        disputes = DisputeWork.objects.filter(work_id=object_id).values_list("dispute_id", flat=True)
        about |= Q(object_type="grant", object_id__in=[str(pk) for pk in grants])
        about |= Q(object_type="dispute", object_id__in=[str(pk) for pk in disputes])
    elif object_type == "organization" and object_id.isdigit():
        # By id, never by slug: a renamed organisation keeps its whole history.
        organization_id = int(object_id)
        disputes = Dispute.objects.filter(Q(claimant_id=organization_id) | Q(respondent_id=organization_id))
        about |= Q(organization_ref_id=organization_id)
        about |= Q(object_type="dispute", object_id__in=[str(pk) for pk in disputes.values_list("pk", flat=True)])
    return AuditEvent.objects.filter(about).order_by("seq")


def _is_uuid(value: str) -> bool:
    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return True


# --- the parties' pages --------------------------------------------------------------------


def disputes_of_party(*, actor: Actor, organization: Organization, status: str = "") -> QuerySet[Dispute]:
    """The disputes `organization` is a party to, newest first, as far as `actor` may see them."""
    disputes = disputes_visible_to(actor).filter(Q(claimant=organization) | Q(respondent=organization))
    if status == "open":
        disputes = disputes.filter(status__in=Dispute.OPEN_STATUSES)
    elif status == "closed":
        disputes = disputes.exclude(status__in=Dispute.OPEN_STATUSES)
    return disputes.order_by("-created_at")


def dispute_get_for_party(*, actor: Actor, organization: Organization, dispute_id: uuid.UUID | str) -> Dispute:
    """One dispute `organization` is a party to; any other dispute is 'not found', never 'forbidden'."""
    dispute = disputes_of_party(actor=actor, organization=organization).filter(pk=dispute_id).first()
    if dispute is None:
        raise NotFound("No such dispute.")
    return dispute


def dispute_timeline(dispute: Dispute) -> QuerySet[DisputeEvent]:
    return DisputeEvent.objects.filter(dispute=dispute).select_related("actor", "organization").order_by(
        "created_at", "pk"
    )


def dispute_evidence(dispute: Dispute) -> QuerySet[EvidenceFile]:
    return EvidenceFile.objects.filter(dispute=dispute).select_related("organization").order_by("created_at", "pk")


def works_of_others_by_reference(*, organization: Organization, reference: str) -> list[Work]:
    """Active works of organisations other than `organization` that a reference names.

    The reference is a Kyoka work ID, the SHA-256 of one of the work's files, or an identifier
    (scheme:value, normalised as registration normalises it). Used to name the other side of a
    dispute filed by hand; the check API already answers for the same references.
    """
    reference = reference.strip()
    others = Work.objects.filter(status=Work.Status.ACTIVE).exclude(owner=organization).select_related("owner")
    if _is_uuid(reference):
        return list(others.filter(pk=reference))
    if len(reference) == 64 and all(c in "0123456789abcdefABCDEF" for c in reference):
        return list(others.filter(files__sha256=reference.lower()).distinct())
    try:
        scheme, value = parse_identifier(reference)
    except InvalidIdentifier:
        return []
    return list(others.filter(identifiers__scheme=scheme, identifiers__value=value).distinct())
