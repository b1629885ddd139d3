from __future__ import annotations

import uuid

from django.db import models
from django.utils.translation import gettext_lazy as _

from registry.models.grants import Grant
from registry.models.organizations import Organization


class LicenceSnapshot(models.Model):
    """A signed list of every exact key permitted to one licensee for one purpose, as issued.

    Kept (body and signature) like a check's receipt: the licensee may rely on it until
    `valid_until`, and the grants it rests on tell each studio who downloaded what, when.
    """

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    organization = models.ForeignKey(Organization, on_delete=models.PROTECT, related_name="licence_snapshots")
    purpose = models.CharField(max_length=40)
    territory = models.CharField(max_length=2, blank=True)
    context = models.CharField(max_length=20)
    since = models.DateTimeField(null=True, blank=True)
    issued_at = models.DateTimeField()
    valid_until = models.DateTimeField()
    key_count = models.PositiveIntegerField(default=0)
    grants = models.ManyToManyField(Grant, related_name="snapshots", blank=True)
    body = models.BinaryField()  # the exact JSON bytes that were signed, compressed (registry/stored_bodies.py)
    signature = models.TextField()

    class Meta:
        verbose_name = _("licence snapshot")
        verbose_name_plural = _("licence snapshots")
        constraints = [
            models.CheckConstraint(
                condition=models.Q(valid_until__gt=models.F("issued_at")), name="snapshot_valid_after_issue"
            ),
        ]
        indexes = [models.Index(fields=["organization", "issued_at"])]
