"""Reading permission requests: each side (the asking developer, the rightsholder) sees only its own."""

from __future__ import annotations

import uuid

from django.db.models import Q, QuerySet

from registry.exceptions import NotFound
from registry.models import Organization, PermissionRequest


def _visible_to(organization: Organization) -> QuerySet[PermissionRequest]:
    return PermissionRequest.objects.filter(
        Q(requester=organization) | Q(rightsholder=organization)
    ).select_related("requester", "rightsholder")


def permission_request_list(*, organization: Organization, status: str | None = None) -> QuerySet[PermissionRequest]:
    requests = _visible_to(organization)
    if status:
        requests = requests.filter(status=status)
    return requests


def permission_request_get(*, organization: Organization, request_id: uuid.UUID | str) -> PermissionRequest:
    permission_request = _visible_to(organization).filter(pk=request_id).first()
    if permission_request is None:
        raise NotFound("No such permission request.")
    return permission_request
