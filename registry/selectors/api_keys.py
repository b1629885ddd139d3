"""Reading an organisation's API keys: owners only, the same rule as creating and revoking them."""

from __future__ import annotations

from django.db.models import QuerySet

from registry.access import Actor, authorize
from registry.exceptions import NotFound
from registry.models import ApiKey, Membership, Organization


def api_key_list(*, actor: Actor, organization: Organization) -> QuerySet[ApiKey]:
    authorize(actor, organization, role=Membership.Role.OWNER, scope="keys")
    return ApiKey.objects.filter(organization=organization).select_related("organization")


def api_key_get(*, organization: Organization, key_id: int) -> ApiKey:
    api_key = ApiKey.objects.filter(organization=organization, pk=key_id).select_related("organization").first()
    if api_key is None:
        raise NotFound("No such API key.")
    return api_key
