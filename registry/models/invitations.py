"""Accounts and invitations: who a person is to Kyoka beyond Django's user, and offers to join.

An invitation binds nobody: it is an offer to one normalised e-mail address, pending until the
person holding that address accepts or declines it (or an owner revokes it, or it expires).
"""

from __future__ import annotations

import uuid
from datetime import datetime

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy


class UserProfile(models.Model):
    """What Kyoka keeps about a person: the language mail is written in, and address confirmation.

    A user who signs up alone has a profile with `email_confirmed_at` empty and may do nothing but
    confirm the address. Users made by an administrator (createorg, the admin) or by accepting an
    invitation (the link proves the address) are confirmed when they are made.
    """

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="kyoka_profile")
    language = models.CharField(max_length=10, blank=True, default="")
    email_confirmed_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"profile of {self.user_id}"


class InvitationQuerySet(models.QuerySet):
    def pending(self, *, at: datetime) -> InvitationQuerySet:
        return self.filter(status=Invitation.Status.PENDING, expires_at__gt=at)


class Invitation(models.Model):
    class Status(models.TextChoices):
        PENDING = "pending", pgettext_lazy("invitation status", "Pending")
        ACCEPTED = "accepted", pgettext_lazy("invitation status", "Accepted")
        DECLINED = "declined", pgettext_lazy("invitation status", "Declined")
        REVOKED = "revoked", pgettext_lazy("invitation status", "Withdrawn")

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    organization = models.ForeignKey("registry.Organization", on_delete=models.CASCADE, related_name="invitations")
    # Normalised (registry.services.accounts.email_normalize): compared with accounts' addresses as is.
    email = models.CharField(max_length=254)
    role = models.CharField(max_length=20)
    invited_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.PENDING)
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField()
    answered_at = models.DateTimeField(null=True, blank=True)
    answered_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    objects = InvitationQuerySet.as_manager()

    class Meta:
        verbose_name = _("invitation")
        verbose_name_plural = _("invitations")
        constraints = [
            models.CheckConstraint(
                condition=Q(status__in=["pending", "accepted", "declined", "revoked"]), name="invitation_status_valid"
            ),
            models.CheckConstraint(
                condition=Q(role__in=["owner", "manager", "viewer"]), name="invitation_role_valid"
            ),
            models.CheckConstraint(
                condition=Q(status="pending", answered_at__isnull=True)
                | (~Q(status="pending") & Q(answered_at__isnull=False)),
                name="invitation_answered_when_not_pending",
            ),
            # One open offer per address and organisation: inviting again renews it.
            models.UniqueConstraint(
                fields=["organization", "email"], condition=Q(status="pending"), name="invitation_one_pending"
            ),
        ]

    def __str__(self) -> str:
        return f"invitation to {self.organization_id} ({self.status})"
