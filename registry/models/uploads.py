from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from registry.models.organizations import Organization


class BulkUpload(models.Model):
    class Status(models.TextChoices):
        PENDING = "pending", _("Pending")
        VALIDATING = "validating", _("Validating")
        PROCESSING = "processing", _("Processing")
        DONE = "done", _("Done")
        FAILED = "failed", _("Failed")
        CANCELLED = "cancelled", _("Cancelled")

    FINISHED = (Status.DONE, Status.FAILED, Status.CANCELLED)

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="uploads")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    manifest = models.FileField(upload_to="uploads/%Y/%m/")
    manifest_name = models.CharField(max_length=255, blank=True)
    manifest_format = models.CharField(max_length=10, blank=True)  # csv | json | ndjson
    archive = models.FileField(upload_to="uploads/%Y/%m/", blank=True)
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.PENDING)
    total_rows = models.PositiveIntegerField(null=True, blank=True)
    processed_rows = models.PositiveIntegerField(default=0)
    created_count = models.PositiveIntegerField(default=0)
    updated_count = models.PositiveIntegerField(default=0)
    failed_count = models.PositiveIntegerField(default=0)
    # Rows up to this position in processing order (parents before children, then manifest
    # order: registry.uploads.index) are committed; a redelivered task resumes after it.
    committed_through_row = models.PositiveIntegerField(default=0)
    error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = _("bulk upload")
        verbose_name_plural = _("bulk uploads")
        constraints = [
            models.CheckConstraint(
                condition=Q(status__in=["pending", "validating", "processing", "done", "failed", "cancelled"]),
                name="bulk_upload_status_valid",
            ),
            models.CheckConstraint(
                condition=Q(processed_rows__lte=models.F("total_rows")) | Q(total_rows__isnull=True),
                name="bulk_upload_progress_bounded",
            ),
        ]
        indexes = [models.Index(fields=["organization", "created_at"])]


class BulkUploadError(models.Model):
    upload = models.ForeignKey(BulkUpload, on_delete=models.CASCADE, related_name="errors")
    row = models.PositiveIntegerField()  # 1-based data row; 0 for the manifest as a whole
    external_ref = models.CharField(max_length=255, blank=True)
    field = models.CharField(max_length=50, blank=True)
    message = models.TextField()
    # The message as a code and its values, rendered in the reader's language (registry/message_codes.py);
    # `message` keeps the English for the CSV report and for rows written before codes.
    code = models.CharField(max_length=60, blank=True)
    params = models.JSONField(default=dict, blank=True)

    class Meta:
        verbose_name = _("bulk upload error")
        verbose_name_plural = _("bulk upload errors")
        indexes = [models.Index(fields=["upload", "row"])]
