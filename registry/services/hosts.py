"""Host claims: a studio claims a web host, Kyoka looks for the proof, or a reviewer confirms it.

A URL or pattern registration has standing only on a host its owner has proven (DESIGN.md
"Matching"), so these are the only ways a claim becomes proven:

- `do_host_verify_lookup`: Kyoka's own lookup found the DNS TXT record (covers the host and its
  subdomains) or the well-known file (covers exactly the host). It runs in a Celery task, never
  in a web request, and never inside a transaction: the network may take LOOKUP_SECONDS per
  method, and no lock is held meanwhile; the row is locked only to record what was found.
- `do_host_confirm`: a reviewer's confirmation by hand (covers the host and its subdomains).

Nothing a claimant sends sets `verified_at`. A proven claim stays proven until it is removed: a
later lookup that finds nothing records `last_error` but takes nothing away, and a later proof
may widen what a claim covers, never narrow it. Claiming again returns the same claim and token.
Two organisations may claim the same host; each needs its own proof, and standing is per owner.
"""

from __future__ import annotations

from django.core.cache import cache
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from registry.access import Actor, authorize, authorize_reviewer
from registry.exceptions import LimitReached, PermissionDenied, ValidationFailed
from registry.hosts.names import HostRefused, claim_host
from registry.hosts.proof import ProofResult, look_for_proof, problems_to_text
from registry.models import Membership, Organization, VerifiedHost
from registry.selectors.hosts import LOOKUP_PENDING_SECONDS, host_get, host_lookup_requested_at, lookup_pending_key
from registry.services.audit import audit_append

MAX_HOSTS_PER_ORGANIZATION = 100
LOOKUP_OPERATOR = "host-lookup"


def _normal_host(host: str) -> str:
    try:
        return claim_host(host)
    except HostRefused as refused:
        raise ValidationFailed(refused.message, fields={"host": [refused.message]}) from None


def _require_rightsholder(organization: Organization) -> None:
    if organization.kind != Organization.Kind.RIGHTSHOLDER:
        raise PermissionDenied(_("Only rightsholder organisations claim web hosts."))


def _locked_organization(organization: Organization) -> Organization:
    # Claims of one organisation are serialised on its row: the count and the insert below
    # cannot race a second claim (lock order: organisation, then its claims).
    return Organization.objects.select_for_update().get(pk=organization.pk)


# --- claiming -------------------------------------------------------------------------------


def host_claim(*, actor: Actor, organization: Organization, host: str) -> VerifiedHost:
    """Claim a host for `organization` (a manager's, or a key with works:write)."""
    authorize(actor, organization, role=Membership.Role.MANAGER, scope="works:write")
    return do_host_claim(acting=actor, organization=organization, host=host)


@transaction.atomic
def do_host_claim(*, acting: Actor, organization: Organization, host: str) -> VerifiedHost:
    """Create the claim with a fresh token, or return the one that exists (same token)."""
    _require_rightsholder(organization)
    normal = _normal_host(host)
    organization = _locked_organization(organization)
    existing = VerifiedHost.objects.filter(organization=organization, host=normal).first()
    if existing is not None:
        return existing
    if VerifiedHost.objects.filter(organization=organization).count() >= MAX_HOSTS_PER_ORGANIZATION:
        raise LimitReached(
            _("An organisation may claim at most %(limit)d hosts; remove one you no longer need.")
            % {"limit": MAX_HOSTS_PER_ORGANIZATION}
        )
    claim = VerifiedHost.objects.create(organization=organization, host=normal)
    audit_append(
        actor=acting, action="host.claimed", object_type="verified_host", object_id=str(claim.pk),
        organization=organization, data={"host": normal},
    )
    return claim


# --- looking for the proof ------------------------------------------------------------------


def host_verify_request(*, actor: Actor, organization: Organization, host: str) -> VerifiedHost:
    """Ask Kyoka to look for the proof of one of the organisation's claims; returns the claim."""
    authorize(actor, organization, role=Membership.Role.MANAGER, scope="works:write")
    claim = host_get(organization=organization, host=host)
    return do_host_verify_request(acting=actor, claim=claim)


def do_host_verify_request(*, acting: Actor, claim: VerifiedHost) -> VerifiedHost:
    """Queue one lookup, unless one is already on its way; the caller's thread never waits on the network."""
    # Imported here: the task module imports the services inside its tasks.
    from registry.tasks import host_verify

    if host_lookup_requested_at(claim) is None:
        cache.set(lookup_pending_key(claim), timezone.now().isoformat(), timeout=LOOKUP_PENDING_SECONDS)
        transaction.on_commit(lambda: host_verify.delay(host_id=claim.pk, requested_by=acting.label))
    return claim


def do_host_verify_lookup(*, host_id: int, requested_by: str = "") -> VerifiedHost | None:
    """Look for the claim's proof on the network, then record what was found (None if the claim is gone)."""
    if transaction.get_connection().in_atomic_block:
        raise RuntimeError("a host lookup waits on the network; it must not run inside a transaction")
    claim = VerifiedHost.objects.filter(pk=host_id).first()
    if claim is None:
        return None
    result = look_for_proof(claim.host, claim.token)
    return _record_lookup(claim_id=claim.pk, result=result, requested_by=requested_by)


@transaction.atomic
def _record_lookup(*, claim_id: int, result: ProofResult, requested_by: str) -> VerifiedHost | None:
    claim = VerifiedHost.objects.select_for_update().select_related("organization").filter(pk=claim_id).first()
    if claim is None:
        return None  # removed while Kyoka was looking
    now = timezone.now()
    acting = Actor.for_operator(LOOKUP_OPERATOR)
    claim.last_checked_at = now
    data: dict[str, object] = {"host": claim.host, "requested_by": requested_by}
    if result.proven:
        first = claim.verified_at is None
        if first or (result.covers_subdomains and not claim.covers_subdomains):
            claim.method = result.method
            claim.covers_subdomains = result.covers_subdomains
            claim.verified_at = claim.verified_at or now
        claim.last_error = ""
        action = "host.verified"
        data |= {"found": result.method, "method": claim.method, "covers_subdomains": claim.covers_subdomains,
                 "first_proof": first}
    else:
        claim.last_error = problems_to_text(result.problems)
        action = "host.verification_failed"
        data |= {"problems": [{"method": p.method, "code": p.code, "detail": p.detail} for p in result.problems],
                 "still_verified": claim.verified_at is not None}
    claim.save(update_fields=["method", "covers_subdomains", "verified_at", "last_checked_at", "last_error"])
    audit_append(
        actor=acting, action=action, object_type="verified_host", object_id=str(claim.pk),
        organization=claim.organization, data=data,
    )
    return claim


# --- a reviewer's confirmation --------------------------------------------------------------


def host_confirm(*, actor: Actor, organization: Organization, host: str, note: str = "") -> VerifiedHost:
    """A reviewer confirms by hand that `organization` controls `host` (and its subdomains)."""
    authorize_reviewer(actor)
    return do_host_confirm(acting=actor, organization=organization, host=host, note=note)


@transaction.atomic
def do_host_confirm(*, acting: Actor, organization: Organization, host: str, note: str = "") -> VerifiedHost:
    """Prove the claim (creating it if the studio never made one); confirming twice changes nothing."""
    _require_rightsholder(organization)
    normal = _normal_host(host)
    organization = _locked_organization(organization)
    claim, created = VerifiedHost.objects.get_or_create(organization=organization, host=normal)
    claim = VerifiedHost.objects.select_for_update().get(pk=claim.pk)
    if claim.method == VerifiedHost.Method.REVIEWER and claim.verified_at is not None:
        return claim
    previous = claim.method if claim.verified_at is not None else ""
    claim.method = VerifiedHost.Method.REVIEWER
    claim.covers_subdomains = True
    claim.verified_at = claim.verified_at or timezone.now()
    claim.verified_by = acting.user_or_none
    claim.last_error = ""
    claim.save(update_fields=["method", "covers_subdomains", "verified_at", "verified_by", "last_error"])
    audit_append(
        actor=acting, action="host.confirmed", object_type="verified_host", object_id=str(claim.pk),
        organization=organization,
        data={"host": normal, "claimed_now": created, "previous_method": previous, "note": note.strip()},
    )
    return claim


# --- removal --------------------------------------------------------------------------------


def host_remove(*, actor: Actor, organization: Organization, host: str) -> None:
    """Withdraw a claim; URL registrations on the host lose their standing from the next check on."""
    authorize(actor, organization, role=Membership.Role.MANAGER, scope="works:write")
    claim = host_get(organization=organization, host=host)
    do_host_remove(acting=actor, claim=claim)


@transaction.atomic
def do_host_remove(*, acting: Actor, claim: VerifiedHost) -> None:
    claim = VerifiedHost.objects.select_for_update().select_related("organization").filter(pk=claim.pk).first()
    if claim is None:
        return
    audit_append(
        actor=acting, action="host.removed", object_type="verified_host", object_id=str(claim.pk),
        organization=claim.organization,
        data={"host": claim.host, "method": claim.method, "was_verified": claim.verified_at is not None},
    )
    claim.delete()
