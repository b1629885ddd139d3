"""Standing: whether a registration may speak for its content (DESIGN.md "Matching").

A reference has standing when its work's owner is verified and not suspended and, for a URL
or pattern, the owner has a proven `VerifiedHost` covering the URL's host. Without standing a
reference still counts as registered, but it never permits and never freezes a registration
that has standing. Set-based: one query for the organisations, one for their hosts.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable

from registry.models import Organization, VerifiedHost


def org_has_standing(organization: Organization) -> bool:
    return organization.verified_at is not None and organization.suspended_at is None


def organizations_with_standing(organization_ids: Iterable[int]) -> set[int]:
    ids = set(organization_ids)
    if not ids:
        return set()
    return set(
        Organization.objects.filter(pk__in=ids, verified_at__isnull=False, suspended_at__isnull=True).values_list(
            "pk", flat=True
        )
    )


def urls_with_standing(pairs: Iterable[tuple[int, str]]) -> set[tuple[int, str]]:
    """Of these (owner id, host) pairs, those where the owner has standing and a proof covering the host."""
    pairs = set(pairs)
    owners = organizations_with_standing(owner for owner, _ in pairs)
    if not owners:
        return set()
    proofs = host_proofs(owners)
    return {
        (owner, host)
        for owner, host in pairs
        if owner in owners and any(proof.covers(host) for proof in proofs.get(owner, ()))
    }


def host_proofs(owner_ids: Iterable[int]) -> dict[int, list[VerifiedHost]]:
    """The proven host claims of these organisations, by organisation id: one query."""
    ids = set(owner_ids)
    proofs: dict[int, list[VerifiedHost]] = defaultdict(list)
    if not ids:
        return proofs
    rows = VerifiedHost.objects.filter(organization_id__in=ids, verified_at__isnull=False).only(
        "organization_id", "host", "covers_subdomains", "verified_at"
    )
    for proof in rows:
        proofs[proof.organization_id].append(proof)
    return proofs


def url_has_standing(owner_id: int, host: str) -> bool:
    return (owner_id, host) in urls_with_standing([(owner_id, host)])
