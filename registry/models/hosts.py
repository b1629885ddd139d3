from __future__ import annotations

import secrets

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from registry.models.organizations import Organization


def new_host_token() -> str:
    return secrets.token_urlsafe(24)


class VerifiedHost(models.Model):
    """An organisation's claim on a web host, and the proof once it is given.

    Organisation verification says who a studio is; this says which hosts it controls. A URL
    or pattern registration has standing only on a host its owner has proven (DESIGN.md
    "Matching"). A claim without `verified_at` proves nothing.
    """

    class Method(models.TextChoices):
        DNS = "dns", _("DNS TXT record")
        HTTP = "http", _("File on the web server")
        REVIEWER = "reviewer", _("Confirmed by a reviewer")

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="hosts")
    # Lower-case, IDNA (xn--) form, no port, no trailing dot.
    host = models.CharField(max_length=253)
    token = models.CharField(max_length=64, default=new_host_token)
    method = models.CharField(max_length=10, choices=Method.choices, blank=True)
    # A DNS proof (and a reviewer's confirmation) covers the domain and its subdomains; the
    # well-known file covers exactly the host that served it.
    covers_subdomains = models.BooleanField(default=False)
    verified_at = models.DateTimeField(null=True, blank=True)
    verified_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    last_checked_at = models.DateTimeField(null=True, blank=True)
    last_error = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = _("web host")
        verbose_name_plural = _("web hosts")
        constraints = [
            models.UniqueConstraint(fields=["organization", "host"], name="verified_host_unique_per_org"),
            models.CheckConstraint(
                condition=Q(method__in=["", "dns", "http", "reviewer"]), name="verified_host_method_valid"
            ),
            models.CheckConstraint(
                condition=Q(verified_at__isnull=True) | ~Q(method=""), name="verified_host_proof_has_method"
            ),
        ]
        indexes = [models.Index(fields=["host"], name="verifiedhost_host")]

    def __str__(self) -> str:
        return self.host

    def covers(self, host: str) -> bool:
        """Whether this (proven) claim covers `host`."""
        if self.verified_at is None:
            return False
        return host == self.host or (self.covers_subdomains and host.endswith("." + self.host))
