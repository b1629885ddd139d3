"""Reading host claims: an organisation's own, and the ones reviewers may confirm by hand."""

from __future__ import annotations

from datetime import datetime

from django.core.cache import cache
from django.db.models import F, Q, QuerySet
from django.utils.dateparse import parse_datetime
from django.utils.translation import gettext as _

from registry.exceptions import NotFound
from registry.hosts.names import HostRefused, claim_host
from registry.models import Organization, VerifiedHost

# A lookup waits in the queue and runs within seconds; after this long a request that never ran
# (a worker down) stops showing as "checking" and may be made again.
LOOKUP_PENDING_SECONDS = 60


def lookup_pending_key(claim: VerifiedHost) -> str:
    # The token too: a claim removed and made again (or a restored database) starts afresh.
    return f"host-lookup:{claim.pk}:{claim.token[:16]}"


def host_list(*, organization: Organization) -> QuerySet[VerifiedHost]:
    return VerifiedHost.objects.filter(organization=organization).select_related("organization").order_by("host")


def host_get(*, organization: Organization, host: str) -> VerifiedHost:
    """One of the organisation's claims, by host as typed. Another organisation's is 'not found'."""
    try:
        normal = claim_host(host)
    except HostRefused:
        normal = None
    claim = host_list(organization=organization).filter(host=normal).first() if normal else None
    if claim is None:
        raise NotFound(_("No such host claim."))
    return claim


def host_lookup_requested_at(claim: VerifiedHost) -> datetime | None:
    """When a lookup was asked for that has not reported back yet, else None."""
    value = cache.get(lookup_pending_key(claim))
    requested_at = parse_datetime(value) if isinstance(value, str) else None
    if requested_at is None or (claim.last_checked_at is not None and claim.last_checked_at >= requested_at):
        return None
    return requested_at


def host_state(claim: VerifiedHost) -> str:
    """verified, checking (a lookup is on its way), failed (the last one found no proof) or unverified."""
    if claim.verified_at is not None:
        return "verified"
    if host_lookup_requested_at(claim) is not None:
        return "checking"
    return "failed" if claim.last_error else "unverified"


def host_review_queue(*, query: str = "") -> QuerySet[VerifiedHost]:
    """Claims for reviewers: unproven ones first, then by organisation and host."""
    claims = VerifiedHost.objects.select_related("organization", "verified_by")
    query = query.strip().lower()
    if query:
        claims = claims.filter(Q(host__contains=query) | Q(organization__slug__contains=query))
    return claims.order_by(F("verified_at").asc(nulls_first=True), "organization__slug", "host")


def organization_by_slug(slug: str) -> Organization | None:
    """The organisation a reviewer names by slug (the desk's confirmation form, the command)."""
    return Organization.objects.filter(slug=slug).first()
