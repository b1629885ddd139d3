"""Who is calling and for which organisation: shared by every API view."""

from __future__ import annotations

from rest_framework.request import Request

from registry.access import Actor
from registry.api.authentication import KeyUser
from registry.exceptions import NotFound, PermissionDenied, ValidationFailed
from registry.models import Membership, Organization

ORGANIZATION_HEADER = "X-Kyoka-Organization"


def request_actor(request: Request) -> Actor:
    if isinstance(request.user, KeyUser):
        return Actor.for_key(request.user.api_key)
    return Actor.for_user(request.user)


def require_scope(request: Request, scope: str) -> None:
    if isinstance(request.user, KeyUser) and scope not in request.user.api_key.scopes:
        raise PermissionDenied(f"This API key lacks the '{scope}' scope.")


def acting_organization(request: Request, *, scope: str, kind: str | None = None) -> Organization:
    """The organisation a request acts for: the key's, or the signed-in user's membership.

    A person in several organisations names one with the X-Kyoka-Organization header
    (or ?organization=slug).
    """
    require_scope(request, scope)
    if isinstance(request.user, KeyUser):
        organization = request.user.organization
    else:
        slug = request.headers.get(ORGANIZATION_HEADER) or request.query_params.get("organization")
        memberships = Membership.objects.filter(user=request.user).select_related("organization")
        if slug:
            memberships = memberships.filter(organization__slug=slug)
        if kind:
            memberships = memberships.filter(organization__kind=kind)
        found = list(memberships[:2])
        if not found:
            raise NotFound("You are not a member of that organisation.") if slug else PermissionDenied(
                "You are not a member of any organisation that can do this."
            )
        if len(found) > 1:
            raise ValidationFailed(
                f"You belong to several organisations: name one with the {ORGANIZATION_HEADER} header."
            )
        organization = found[0].organization
    if kind and organization.kind != kind:
        raise PermissionDenied(f"Only {kind.replace('_', ' ')} organisations can do this.")
    return organization


def acting_organization_any(request: Request, *, scopes: tuple[str, ...], kind: str | None = None) -> Organization:
    """acting_organization for reads that either side may make, each with its own key scope.

    A licensee's key usually holds only `checks`; it may still read the grants made out to it.
    """
    if isinstance(request.user, KeyUser):
        held = [scope for scope in scopes if scope in request.user.api_key.scopes]
        if not held:
            raise PermissionDenied(f"This API key needs one of these scopes: {', '.join(scopes)}.")
        return acting_organization(request, scope=held[0], kind=kind)
    return acting_organization(request, scope=scopes[0], kind=kind)
