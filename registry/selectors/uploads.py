"""Reading an organisation's bulk uploads and their errors: what the API and the portal show."""

from __future__ import annotations

import uuid

from django.db.models import QuerySet

from registry.exceptions import NotFound
from registry.models import BulkUpload, Organization


def bulk_upload_list(*, organization: Organization) -> QuerySet[BulkUpload]:
    return BulkUpload.objects.filter(organization=organization).select_related("organization")


def bulk_upload_get(*, organization: Organization, upload_id: uuid.UUID | str) -> BulkUpload:
    """One of the organisation's uploads. Another organisation's is 'not found', never 'forbidden'."""
    upload = bulk_upload_list(organization=organization).filter(pk=upload_id).first()
    if upload is None:
        raise NotFound("No such upload.")
    return upload
