"""Reads for the reviewers' desk: the queue's context, one dispute, organisations, flags, histories.

Every function here is for reviewers only; the desk's views check that before calling them.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.db.models import Prefetch, Q, QuerySet

from registry.access import reviewers
from registry.exceptions import NotFound
from registry.models import (
    ApiKey,
    ContentFile,
    Dispute,
    EvidenceFile,
    Grant,
    Membership,
    Organization,
    SimilarityFlag,
    VerificationRequest,
    Work,
)


def reviewer_list() -> QuerySet:
    """Everyone `Actor.is_reviewer` holds to be a reviewer, by name: who a dispute can go to."""
    return reviewers(get_user_model().objects.all()).order_by("username")


def reviewer_get(user_id: int) -> object | None:
    return reviewer_list().filter(pk=user_id).first()


def pending_verification_count() -> int:
    return VerificationRequest.objects.filter(status=VerificationRequest.Status.PENDING).count()


def desk_dispute_get(dispute_id: uuid.UUID) -> Dispute:
    dispute = (
        Dispute.objects.select_related("claimant", "respondent", "assignee", "decided_by", "opened_by")
        .filter(pk=dispute_id)
        .first()
    )
    if dispute is None:
        raise NotFound("No such dispute.")
    return dispute


def desk_content_file_get(file_id: int) -> ContentFile:
    record = ContentFile.objects.filter(pk=file_id).first()
    if record is None or not record.file:
        raise NotFound("No such file.")
    return record


def desk_evidence_get(evidence_id: int) -> EvidenceFile:
    record = EvidenceFile.objects.filter(pk=evidence_id).first()
    if record is None:
        raise NotFound("No such evidence file.")
    return record


def organization_search(query: str) -> QuerySet[Organization]:
    found = Organization.objects.order_by("name")
    if query:
        found = found.filter(Q(name__icontains=query) | Q(slug__icontains=query) | Q(legal_name__icontains=query))
    return found


def pending_verification_requests() -> QuerySet[VerificationRequest]:
    return (
        VerificationRequest.objects.filter(status=VerificationRequest.Status.PENDING)
        .select_related("organization")
        .order_by("created_at")
    )


def organization_get(organization_id: int) -> Organization:
    organization = Organization.objects.select_related("verified_by").filter(pk=organization_id).first()
    if organization is None:
        raise NotFound("No such organisation.")
    return organization


def organization_by_slug(slug: str) -> Organization | None:
    return Organization.objects.filter(slug=slug).first()


@dataclass
class OrganizationFile:
    """What the desk shows about one organisation."""

    organization: Organization
    requests: QuerySet[VerificationRequest]
    members: QuerySet[Membership]
    keys: QuerySet[ApiKey]
    disputes: list[Dispute]
    work_count: int


def organization_file(organization: Organization) -> OrganizationFile:
    return OrganizationFile(
        organization=organization,
        requests=VerificationRequest.objects.filter(organization=organization)
        .select_related("submitted_by", "decided_by")
        .prefetch_related(Prefetch("evidence", EvidenceFile.objects.order_by("created_at")))
        .order_by("-created_at"),
        members=organization.memberships.select_related("user").order_by("role", "user__username"),
        keys=ApiKey.objects.filter(organization=organization).order_by("-created_at"),
        disputes=list(
            Dispute.objects.filter(Q(claimant=organization) | Q(respondent=organization))
            .select_related("claimant", "respondent")
            .order_by("-created_at")[:20]
        ),
        work_count=Work.objects.filter(owner=organization).count(),
    )


def verification_request_get(request_id: int) -> VerificationRequest:
    request = VerificationRequest.objects.filter(pk=request_id).first()
    if request is None:
        raise NotFound("No such verification request.")
    return request


def api_key_get_any(key_id: int) -> ApiKey:
    api_key = ApiKey.objects.select_related("organization").filter(pk=key_id).first()
    if api_key is None:
        raise NotFound("No such API key.")
    return api_key


def history_subject(object_type: str, object_id: str) -> object | None:
    """The thing whose history is shown, if it (still) exists."""
    try:
        if object_type == "work":
            return Work.objects.select_related("owner").filter(pk=object_id).first()
        if object_type == "grant":
            return Grant.objects.select_related("grantor", "work").filter(pk=object_id).first()
        if object_type == "dispute":
            return Dispute.objects.filter(pk=object_id).first()
        if object_type == "organization" and object_id.isdigit():
            return Organization.objects.filter(pk=object_id).first()
        if object_type == "api_key" and object_id.isdigit():
            return ApiKey.objects.filter(pk=object_id).first()
    except ValidationError:  # not a UUID
        pass
    return None


# --- similarity flags ----------------------------------------------------------------------


@dataclass
class FlagView:
    flag: SimilarityFlag
    image_a: ContentFile | None
    image_b: ContentFile | None


def similarity_flags_open(*, limit: int = 100) -> list[FlagView]:
    """Open flags, closest pair first, each with one stored image of either work (two queries)."""
    flags = list(
        SimilarityFlag.objects.filter(status=SimilarityFlag.Status.OPEN)
        .select_related("work_a__owner", "work_b__owner")
        .order_by("distance", "created_at", "pk")[:limit]
    )
    work_ids = {f.work_a_id for f in flags} | {f.work_b_id for f in flags}
    images: dict[uuid.UUID, ContentFile] = {}
    for content_file in (
        ContentFile.objects.filter(work_id__in=work_ids, perceptual_hashes__isnull=False)
        .exclude(file="")
        .order_by("created_at")
        .distinct()
    ):
        images.setdefault(content_file.work_id, content_file)
    return [FlagView(flag, images.get(flag.work_a_id), images.get(flag.work_b_id)) for flag in flags]


def similarity_flag_get(flag_id: int) -> SimilarityFlag:
    flag = SimilarityFlag.objects.filter(pk=flag_id).first()
    if flag is None:
        raise NotFound("No such flag.")
    return flag
