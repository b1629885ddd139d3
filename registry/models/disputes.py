from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from registry.models.organizations import Organization
from registry.models.works import Work


class Dispute(models.Model):
    class Kind(models.TextChoices):
        OWNERSHIP = "ownership", _("Ownership")
        GRANT_VALIDITY = "grant_validity", _("Grant validity")
        OTHER = "other", _("Other")

    class Status(models.TextChoices):
        OPEN = "open", _("Open")
        UNDER_REVIEW = "under_review", _("Under review")
        UPHELD = "upheld", _("Upheld")
        REJECTED = "rejected", _("Rejected")
        WITHDRAWN = "withdrawn", _("Withdrawn")

    class Remedy(models.TextChoices):
        WITHDRAW = "withdraw", _("Withdraw the respondent's work")
        TRANSFER = "transfer", _("Transfer the respondent's work to the claimant")

    OPEN_STATUSES = (Status.OPEN, Status.UNDER_REVIEW)
    DECIDED_STATUSES = (Status.UPHELD, Status.REJECTED)
    # The only moves a dispute can make; the database enforces the same table with a trigger
    # (migration 0003), so no code path — admin, shell, a racing reviewer — can skip it.
    TRANSITIONS = {
        Status.OPEN: frozenset({Status.UNDER_REVIEW, Status.WITHDRAWN}),
        Status.UNDER_REVIEW: frozenset({Status.UPHELD, Status.REJECTED, Status.WITHDRAWN}),
        Status.UPHELD: frozenset(),
        Status.REJECTED: frozenset(),
        Status.WITHDRAWN: frozenset(),
    }

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    kind = models.CharField(max_length=20, choices=Kind.choices)
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.OPEN)
    claimant = models.ForeignKey(Organization, on_delete=models.PROTECT, related_name="disputes_filed")
    respondent = models.ForeignKey(Organization, on_delete=models.PROTECT, related_name="disputes_against")
    works = models.ManyToManyField(Work, through="DisputeWork", related_name="disputes")
    statement = models.TextField()
    # A statement Kyoka wrote itself is also stored as a code and its values, so each reader
    # gets it in their own language (registry/message_codes.py); `statement` keeps the English.
    statement_code = models.CharField(max_length=60, blank=True)
    statement_params = models.JSONField(default=dict, blank=True)
    # Set for disputes Kyoka opened itself: the conflicting pair, so it opens only once.
    conflict_key = models.CharField(max_length=200, null=True, blank=True, unique=True)
    opened_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    assignee = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    decision_reason = models.TextField(blank=True)
    # What an upheld ownership decision did with the respondent's work.
    remedy = models.CharField(max_length=10, choices=Remedy.choices, blank=True)
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    decided_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = _("dispute")
        verbose_name_plural = _("disputes")
        constraints = [
            models.CheckConstraint(
                condition=Q(status__in=["open", "under_review", "upheld", "rejected", "withdrawn"]),
                name="dispute_status_valid",
            ),
            models.CheckConstraint(
                condition=Q(status__in=["open", "under_review"]) | Q(decided_at__isnull=False),
                name="dispute_closed_has_time",
            ),
            models.CheckConstraint(condition=~Q(claimant=models.F("respondent")), name="dispute_two_parties"),
            models.CheckConstraint(
                condition=~Q(status__in=["open", "under_review"]) | Q(decided_at__isnull=True),
                name="dispute_open_not_decided",
            ),
            models.CheckConstraint(
                condition=~Q(status__in=["upheld", "rejected"]) | ~Q(decision_reason=""),
                name="dispute_decision_has_reason",
            ),
            models.CheckConstraint(
                condition=Q(remedy="")
                | (Q(status="upheld") & Q(kind="ownership") & ~Q(remedy="")),
                name="dispute_remedy_only_when_upheld_ownership",
            ),
            models.CheckConstraint(
                condition=Q(kind__in=["ownership", "grant_validity", "other"]),
                name="dispute_kind_valid",
            ),
            models.CheckConstraint(
                condition=Q(remedy__in=["", "withdraw", "transfer"]), name="dispute_remedy_valid"
            ),
        ]
        indexes = [models.Index(fields=["status", "created_at"])]

    def __str__(self) -> str:
        return f"Dispute {str(self.pk)[:8]} ({self.kind}, {self.status})"

    @property
    def is_open(self) -> bool:
        return self.status in self.OPEN_STATUSES

    def can_move_to(self, status: str) -> bool:
        return status in self.TRANSITIONS[self.Status(self.status)]


class DisputeWork(models.Model):
    class Side(models.TextChoices):
        CLAIMANT = "claimant", _("Claimant")
        RESPONDENT = "respondent", _("Respondent")

    dispute = models.ForeignKey(Dispute, on_delete=models.CASCADE, related_name="dispute_works")
    work = models.ForeignKey(Work, on_delete=models.CASCADE, related_name="dispute_links")
    side = models.CharField(max_length=10, choices=Side.choices)
    # Whether the open dispute makes this work answer `disputed` (DESIGN.md "Disputes"): set when
    # the claimant is verified, when Kyoka opened it between two registrations with standing (or,
    # for the later one alone, when only the earlier has standing), and for every work once a
    # reviewer starts the review. Anything else waits in triage and freezes nothing.
    freezes = models.BooleanField(default=False)

    class Meta:
        verbose_name = _("disputed work")
        verbose_name_plural = _("disputed works")
        constraints = [
            models.UniqueConstraint(fields=["dispute", "work"], name="dispute_work_unique"),
            models.CheckConstraint(
                condition=Q(side__in=["claimant", "respondent"]), name="dispute_work_side_valid"
            ),
        ]


class DisputeEvent(models.Model):
    class Kind(models.TextChoices):
        COMMENT = "comment", _("Comment")
        TRANSITION = "transition", _("Transition")
        INFO_REQUESTED = "info_requested", _("Information requested")
        ASSIGNED = "assigned", _("Assigned")

    dispute = models.ForeignKey(Dispute, on_delete=models.CASCADE, related_name="events")
    kind = models.CharField(max_length=20, choices=Kind.choices)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    organization = models.ForeignKey(Organization, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    from_status = models.CharField(max_length=20, blank=True)
    to_status = models.CharField(max_length=20, blank=True)
    message = models.TextField(blank=True)
    # A note Kyoka wrote itself, as a code and its values (see Dispute.statement_code).
    code = models.CharField(max_length=60, blank=True)
    params = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = _("dispute event")
        verbose_name_plural = _("dispute events")
        constraints = [
            models.CheckConstraint(
                condition=Q(kind__in=["comment", "transition", "info_requested", "assigned"]),
                name="dispute_event_kind_valid",
            ),
            models.CheckConstraint(
                condition=~Q(kind="transition") | ~Q(to_status=""),
                name="dispute_event_transition_has_status",
            ),
        ]
        indexes = [models.Index(fields=["dispute", "created_at"])]


class EvidenceFile(models.Model):
    """A file backing a dispute statement or an organisation's verification request."""

    dispute = models.ForeignKey(Dispute, null=True, blank=True, on_delete=models.CASCADE, related_name="evidence")
    verification_request = models.ForeignKey(
        "registry.VerificationRequest",
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="evidence",
    )
    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="evidence")
    file = models.FileField(upload_to="evidence/%Y/%m/")
    original_name = models.CharField(max_length=255)
    uploaded_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = _("evidence file")
        verbose_name_plural = _("evidence files")
        constraints = [
            models.CheckConstraint(
                condition=Q(dispute__isnull=True) | Q(verification_request__isnull=True),
                name="evidence_backs_one_thing",
            ),
        ]


class SimilarityFlag(models.Model):
    """Two organisations' works whose images look alike: a note for reviewers, never a dispute.

    A perceptual resemblance proves nothing about ownership (flat-colour art collides often), so
    it neither freezes nor restricts anything. One flag per pair of works, `work_a` < `work_b`.
    """

    class Status(models.TextChoices):
        OPEN = "open", _("Open")
        DISMISSED = "dismissed", _("Dismissed")
        ESCALATED = "escalated", _("Escalated to a dispute")

    work_a = models.ForeignKey(Work, on_delete=models.CASCADE, related_name="+")
    work_b = models.ForeignKey(Work, on_delete=models.CASCADE, related_name="+")
    distance = models.PositiveSmallIntegerField()
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.OPEN)
    reviewed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    reviewed_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = _("similarity flag")
        verbose_name_plural = _("similarity flags")
        constraints = [
            models.UniqueConstraint(fields=["work_a", "work_b"], name="similarity_flag_unique_pair"),
            models.CheckConstraint(condition=Q(work_a__lt=models.F("work_b")), name="similarity_flag_ordered_pair"),
            models.CheckConstraint(
                condition=Q(status__in=["open", "dismissed", "escalated"]), name="similarity_flag_status_valid"
            ),
        ]
        indexes = [models.Index(fields=["status", "distance"])]
