"""What bulk uploads may store, and for how long.

- Sizes are refused before anything is stored: a manifest over KYOKA_MAX_MANIFEST_BYTES, an
  archive over KYOKA_MAX_ARCHIVE_BYTES, or an upload that would take the organisation past its
  storage quota (KYOKA_STORAGE_QUOTA_BYTES: its registered files plus the inputs of its uploads
  still running) is a 413 with nothing written.
- A manifest and its archive are inputs, not records: once the upload is done or failed they
  are deleted from storage (the per-row error report and the registered files stay).
"""

from __future__ import annotations

import logging
from typing import Any

from django.conf import settings
from django.core.files.storage import default_storage
from django.db.models import Sum
from django.utils.translation import gettext as _

from registry.exceptions import KyokaError

logger = logging.getLogger(__name__)


class UploadTooLarge(KyokaError):
    code = "too_large"
    status = 413


class StorageQuotaExceeded(KyokaError):
    code = "storage_quota_exceeded"
    status = 413


def _size(fileobj: Any) -> int:
    return int(getattr(fileobj, "size", 0) or 0) if fileobj is not None else 0


def organization_storage_used(*, organization_id: object) -> int:
    """Bytes the organisation stores: its works' files and the inputs of its running uploads."""
    from registry.models import BulkUpload, ContentFile

    files = ContentFile.objects.filter(work__owner_id=organization_id).aggregate(total=Sum("size"))["total"] or 0
    running = BulkUpload.objects.filter(organization_id=organization_id).exclude(status__in=BulkUpload.FINISHED)
    inputs = 0
    for upload in running.only("manifest", "archive"):
        for field in (upload.manifest, upload.archive):
            if field:
                try:
                    inputs += field.size
                except OSError:
                    continue
    return int(files) + inputs


def upload_size_check(*, organization_id: object, manifest: Any, archive: Any = None) -> None:
    """Refuse an upload whose files are too large, before a byte of it is stored."""
    if _size(manifest) > settings.KYOKA_MAX_MANIFEST_BYTES:
        raise UploadTooLarge(
            _("The manifest is %(size)s bytes; at most %(limit)s are accepted. Split it into several uploads.")
            % {"size": f"{_size(manifest):,}", "limit": f"{settings.KYOKA_MAX_MANIFEST_BYTES:,}"},
            fields={"manifest": [_("Too large.")]},
        )
    if _size(archive) > settings.KYOKA_MAX_ARCHIVE_BYTES:
        raise UploadTooLarge(
            _("The archive is %(size)s bytes; at most %(limit)s are accepted. Split it into several uploads.")
            % {"size": f"{_size(archive):,}", "limit": f"{settings.KYOKA_MAX_ARCHIVE_BYTES:,}"},
            fields={"archive": [_("Too large.")]},
        )
    quota = settings.KYOKA_STORAGE_QUOTA_BYTES
    used = organization_storage_used(organization_id=organization_id)
    if used + _size(manifest) + _size(archive) > quota:
        raise StorageQuotaExceeded(
            _(
                "Your organisation stores %(used)s bytes of its quota of %(quota)s; this upload would pass it. "
                "Withdraw files you no longer need, or ask Kyoka for more room."
            )
            % {"used": f"{used:,}", "quota": f"{quota:,}"}
        )


def upload_inputs_delete(*, upload_id: str) -> None:
    """Delete a finished upload's manifest and archive from storage; its records stay.

    Call after the transaction that finished the upload has committed (a rollback must not
    leave a running upload without its manifest). Missing files are fine: deleting twice is.
    """
    from registry.models import BulkUpload

    upload = BulkUpload.objects.filter(pk=upload_id, status__in=BulkUpload.FINISHED).first()
    if upload is None:
        return
    for field in (upload.manifest, upload.archive):
        if field:
            try:
                default_storage.delete(field.name)
            except OSError as error:  # the record is cleared anyway; a leftover file is only space
                logger.warning("Upload %s: cannot delete %s: %s", upload_id, field.name, error)
    BulkUpload.objects.filter(pk=upload_id).update(manifest="", archive="")
