from __future__ import annotations

import uuid
from datetime import datetime

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from registry.exceptions import GrantImmutable
from registry.models.organizations import Organization
from registry.models.works import Work


class GrantState(models.TextChoices):
    """Where a grant stands at a moment. Only `active` is in force."""

    ACTIVE = "active", _("In force")
    SCHEDULED = "scheduled", _("Scheduled")
    EXPIRED = "expired", _("Expired")
    REVOKED = "revoked", _("Revoked")


class GrantQuerySet(models.QuerySet["Grant"]):
    def in_force(self, *, at: datetime) -> GrantQuerySet:
        """The grants whose `state_at(at)` is active: the same three terms, in SQL."""
        return self.filter(Q(revoked_at__isnull=True) | Q(revoked_at__gt=at), valid_from__lte=at).filter(
            Q(valid_until__isnull=True) | Q(valid_until__gt=at)
        )


class Grant(models.Model):
    """An explicit, prior permission. Never edited: a change is a revocation and a new grant."""

    class Scope(models.TextChoices):
        WORK = "work", _("One work and everything under it")
        CATALOG = "catalog", _("The whole catalog, present and future")

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    grantor = models.ForeignKey(Organization, on_delete=models.PROTECT, related_name="grants_issued")
    scope = models.CharField(max_length=10, choices=Scope.choices)
    work = models.ForeignKey(Work, null=True, blank=True, on_delete=models.PROTECT, related_name="grants")
    # Null: any verified AI developer.
    licensee = models.ForeignKey(
        Organization, null=True, blank=True, on_delete=models.PROTECT, related_name="grants_received"
    )
    purposes = models.JSONField()
    territories = models.JSONField(default=list, blank=True)  # ISO 3166-1 alpha-2; empty = worldwide
    contexts = models.JSONField(default=list, blank=True)  # empty = any
    valid_from = models.DateTimeField()
    valid_until = models.DateTimeField(null=True, blank=True)
    # Conditions travel in every receipt that relies on the grant: bounded, so one cannot
    # make a 56-item receipt 58 MB (a 1 MiB condition once did).
    attribution = models.TextField(max_length=2_000, blank=True)
    licence_url = models.URLField(max_length=2048, blank=True)
    compensation = models.TextField(max_length=2_000, blank=True)
    issued_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    revoked_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    revocation_reason = models.TextField(max_length=2_000, blank=True)

    objects = GrantQuerySet.as_manager()

    # The only fields a saved grant may ever change: its revocation.
    REVOCATION_FIELDS = frozenset({"revoked_at", "revoked_by", "revocation_reason"})

    class Meta:
        verbose_name = _("grant")
        verbose_name_plural = _("grants")
        constraints = [
            models.CheckConstraint(
                condition=(Q(scope="work") & Q(work__isnull=False)) | (Q(scope="catalog") & Q(work__isnull=True)),
                name="grant_scope_matches_work",
            ),
            models.CheckConstraint(
                condition=Q(valid_until__isnull=True) | Q(valid_until__gt=models.F("valid_from")),
                name="grant_validity_in_order",
            ),
        ]
        indexes = [models.Index(fields=["grantor", "scope"]), models.Index(fields=["licensee"])]

    def __str__(self) -> str:
        return f"Grant {self.id}"

    def save(self, *args, **kwargs) -> None:
        if not self._state.adding:
            update_fields = kwargs.get("update_fields")
            if update_fields is None or not set(update_fields) <= self.REVOCATION_FIELDS:
                raise GrantImmutable("A grant is never edited: revoke it and issue a new one.")
        super().save(*args, **kwargs)

    def state_at(self, moment: datetime) -> GrantState:
        """The one definition of "in force" (GrantQuerySet.in_force says the same in SQL).

        Revocation wins over expiry, expiry over not-yet-valid: the reason a check reports is
        the most final one.
        """
        if self.revoked_at is not None and self.revoked_at <= moment:
            return GrantState.REVOKED
        if self.valid_until is not None and self.valid_until <= moment:
            return GrantState.EXPIRED
        if self.valid_from > moment:
            return GrantState.SCHEDULED
        return GrantState.ACTIVE

    @property
    def conditions(self) -> dict[str, str]:
        return {"attribution": self.attribution, "licence_url": self.licence_url, "compensation": self.compensation}
