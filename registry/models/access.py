from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from registry.models.organizations import Organization
from registry.models.works import Work

API_KEY_SCOPES = ("checks", "works:read", "works:write", "grants:write", "uploads", "disputes")


class ApiKey(models.Model):
    """A machine credential. Only the SHA-256 of the secret is stored; the prefix is shown to people."""

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="api_keys")
    name = models.CharField(max_length=100)
    prefix = models.CharField(max_length=16, unique=True)
    secret_hash = models.CharField(max_length=64, unique=True)
    scopes = models.JSONField(default=list)
    # Requests a minute this key may make; null = the default.
    quota_per_minute = models.PositiveIntegerField(null=True, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    suspended_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = _("API key")
        verbose_name_plural = _("API keys")

    def __str__(self) -> str:
        return f"{self.prefix}… ({self.name})"

    @property
    def is_usable(self) -> bool:
        return self.revoked_at is None and self.suspended_at is None


class Check(models.Model):
    """One check call: who asked, for what, the counts, and the exact signed answer."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    # Meta's (organization, checked_at) index serves every lookup by organisation.
    organization = models.ForeignKey(Organization, on_delete=models.PROTECT, related_name="checks", db_index=False)
    api_key = models.ForeignKey(ApiKey, null=True, blank=True, on_delete=models.SET_NULL, related_name="checks")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    purpose = models.CharField(max_length=20)
    territory = models.CharField(max_length=2, blank=True)
    context = models.CharField(max_length=20)
    item_count = models.PositiveIntegerField()
    permitted_count = models.PositiveIntegerField(default=0)
    not_permitted_count = models.PositiveIntegerField(default=0)
    unregistered_count = models.PositiveIntegerField(default=0)
    disputed_count = models.PositiveIntegerField(default=0)
    invalid_count = models.PositiveIntegerField(default=0)
    checked_at = models.DateTimeField(db_index=True)
    # The response body exactly as signed (compressed: registry/stored_bodies.py) and its detached JWS.
    body = models.BinaryField()
    signature = models.TextField()

    class Meta:
        verbose_name = _("check")
        verbose_name_plural = _("checks")
        indexes = [models.Index(fields=["organization", "checked_at"])]


class WorkAccess(models.Model):
    """That a check matched a work: what lets a rightsholder see who checked its works."""

    # An append-only log, written ~50 rows a check in the check's own statement with ids that
    # statement just read: the database does not re-check each reference (four foreign-key
    # triggers a row, ~1 ms a check). Deleting a check, work or organisation still deletes its
    # rows (Django's on_delete); a work deleted while a check was being answered leaves a row
    # that joins to nothing and so is never shown, where a constraint would have failed the check.
    check_record = models.ForeignKey(Check, on_delete=models.CASCADE, related_name="work_accesses",
                                     db_constraint=False)
    # The (owner, checked_at) and (work, checked_at) indexes below lead with these two keys, so
    # their own single-column indexes would only cost every check ~1 ms of writes.
    work = models.ForeignKey(Work, on_delete=models.CASCADE, related_name="accesses", db_index=False,
                             db_constraint=False)
    owner = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="+", db_index=False,
                              db_constraint=False)
    requester = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="+", db_constraint=False)
    purpose = models.CharField(max_length=20)
    decision = models.CharField(max_length=20)
    checked_at = models.DateTimeField()

    class Meta:
        verbose_name = _("work access")
        verbose_name_plural = _("work accesses")
        indexes = [
            models.Index(fields=["owner", "checked_at"]),
            models.Index(fields=["work", "checked_at"]),
        ]


class PermissionRequest(models.Model):
    class Status(models.TextChoices):
        PENDING = "pending", _("Pending")
        ACCEPTED = "accepted", _("Accepted")
        DECLINED = "declined", _("Declined")
        WITHDRAWN = "withdrawn", _("Withdrawn")

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    requester = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="permission_requests_sent")
    rightsholder = models.ForeignKey(
        Organization, on_delete=models.CASCADE, related_name="permission_requests_received"
    )
    work = models.ForeignKey(Work, null=True, blank=True, on_delete=models.CASCADE, related_name="+")
    purposes = models.JSONField()
    territories = models.JSONField(default=list, blank=True)
    contexts = models.JSONField(default=list, blank=True)
    message = models.TextField(max_length=5_000, blank=True)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    decided_at = models.DateTimeField(null=True, blank=True)
    response = models.TextField(max_length=5_000, blank=True)
    grant = models.ForeignKey("registry.Grant", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")

    class Meta:
        verbose_name = _("permission request")
        verbose_name_plural = _("permission requests")
        constraints = [
            models.CheckConstraint(
                condition=Q(status__in=["pending", "accepted", "declined", "withdrawn"]),
                name="permission_request_status_valid",
            ),
            models.CheckConstraint(
                condition=Q(status="pending") | Q(decided_at__isnull=False),
                name="permission_request_decided_has_time",
            ),
        ]
