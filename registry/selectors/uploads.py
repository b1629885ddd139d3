"""Reading an organisation's bulk uploads and their errors: what the API and the portal show."""

from __future__ import annotations

import csv
import uuid
from collections.abc import Iterator

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


# What makes a spreadsheet read a cell as a formula; the full-width forms too, which some
# spreadsheet programs in Japanese locales convert.
_FORMULA_STARTS = frozenset("=+-@\uff1d\uff0b\uff0d\uff20")
ERROR_REPORT_COLUMNS = ("row", "external_ref", "field", "message")


def neutralise_cell(value: str) -> str:
    """Keep a spreadsheet from running a cell as a formula (OWASP's CSV injection advice)."""
    if value and (value[0] in _FORMULA_STARTS or ord(value[0]) < 0x20 or value[0] == "\x7f"):
        return "'" + value
    return value


class _Line:
    """A file-like sink that hands back what csv.writer writes, one line at a time."""

    def write(self, value: str) -> str:
        return value


def bulk_upload_errors_csv(*, upload: BulkUpload) -> Iterator[str]:
    """The upload's errors as CSV lines, streamed: row, external_ref, field, message.

    Starts with a UTF-8 BOM, so spreadsheet programs read Japanese text right.
    """
    writer = csv.writer(_Line())
    yield "\ufeff" + writer.writerow(ERROR_REPORT_COLUMNS)
    for error in upload.errors.order_by("row", "pk").iterator(chunk_size=2000):
        cells = (error.external_ref, error.field, error.message)
        yield writer.writerow([error.row, *(neutralise_cell(cell) for cell in cells)])
