from __future__ import annotations

from django.db import models
from django.utils.translation import gettext_lazy as _

from registry.exceptions import KyokaError
from registry.models.organizations import Organization


class AuditImmutable(KyokaError):
    code = "audit_immutable"


class AuditQuerySet(models.QuerySet["AuditEvent"]):
    def update(self, **kwargs):  # type: ignore[override]
        raise AuditImmutable("Audit events are append-only.")

    def delete(self):  # type: ignore[override]
        raise AuditImmutable("Audit events are append-only.")


class AuditChainHead(models.Model):
    """One row: the last sequence number and hash. Locking it serialises appends to the chain."""

    id = models.PositiveSmallIntegerField(primary_key=True, default=1)
    seq = models.BigIntegerField(default=0)
    hash = models.CharField(max_length=64, default="0" * 64)


class AuditEvent(models.Model):
    """Append-only and hash-chained: each row holds the SHA-256 of its content and the previous hash.

    The organisation an event concerns is `organization_ref` (its id): a slug may change, the id
    never does. `organization` keeps the slug as it was when the event was written. Rows of
    hash version 1 (before the id existed) hash the slug alone; their `organization_ref` was
    filled in later from the slug and is not part of their hash. Version 2 rows hash both.
    """

    HASH_VERSION = 2

    seq = models.BigIntegerField(unique=True)
    created_at = models.DateTimeField()
    actor = models.CharField(max_length=200)  # "user:<id>:<username>", "key:<prefix>", "operator:<name>"
    organization = models.CharField(max_length=80, blank=True)  # the org's slug at the time, as history
    organization_ref = models.ForeignKey(
        Organization, null=True, blank=True, on_delete=models.PROTECT, related_name="+", db_index=False,
        db_column="organization_id",
    )
    hash_version = models.PositiveSmallIntegerField(default=1)
    action = models.CharField(max_length=60, db_index=True)
    object_type = models.CharField(max_length=40)
    object_id = models.CharField(max_length=64)
    data = models.JSONField(default=dict)
    prev_hash = models.CharField(max_length=64)
    hash = models.CharField(max_length=64, unique=True)

    objects = AuditQuerySet.as_manager()

    class Meta:
        verbose_name = _("audit event")
        verbose_name_plural = _("audit events")
        indexes = [
            models.Index(fields=["object_type", "object_id"]),
            models.Index(fields=["organization", "seq"]),
            models.Index(fields=["organization_ref", "seq"], name="auditevent_org_seq"),
        ]
        ordering = ["seq"]

    def save(self, *args, **kwargs) -> None:
        if not self._state.adding:
            raise AuditImmutable("Audit events are append-only.")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):  # type: ignore[override]
        raise AuditImmutable("Audit events are append-only.")
