from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from registry.models.organizations import Organization


class VerificationRequest(models.Model):
    """An organisation's statement of who it is, as submitted for review, and the reviewer's answer.

    The organisation's profile fields hold its current details; this row keeps what was
    submitted at the time, so a rejected request and its reason stay on record.
    """

    class Status(models.TextChoices):
        PENDING = "pending", _("Pending")
        VERIFIED = "verified", _("Verified")
        REJECTED = "rejected", _("Rejected")

    organization = models.ForeignKey(
        Organization, on_delete=models.CASCADE, related_name="verification_requests"
    )
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    legal_name = models.CharField(max_length=300)
    registration_number = models.CharField(max_length=100, blank=True)
    country = models.CharField(max_length=2, blank=True)
    website = models.URLField(blank=True)
    contact_email = models.EmailField(blank=True)
    submitted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    decided_at = models.DateTimeField(null=True, blank=True)
    decision_reason = models.TextField(blank=True)

    class Meta:
        verbose_name = _("verification request")
        verbose_name_plural = _("verification requests")
        constraints = [
            models.CheckConstraint(
                condition=Q(status__in=["pending", "verified", "rejected"]),
                name="verification_status_valid",
            ),
            models.CheckConstraint(
                condition=(Q(status="pending") & Q(decided_at__isnull=True))
                | (~Q(status="pending") & Q(decided_at__isnull=False)),
                name="verification_decided_has_time",
            ),
            models.CheckConstraint(
                condition=~Q(status="rejected") | ~Q(decision_reason=""),
                name="verification_rejection_has_reason",
            ),
            # One request under review at a time per organisation.
            models.UniqueConstraint(
                fields=["organization"],
                condition=Q(status="pending"),
                name="verification_one_pending_per_org",
            ),
        ]
        indexes = [models.Index(fields=["status", "created_at"])]

    def __str__(self) -> str:
        return f"Verification of {self.organization} ({self.status})"
