"""Bulk catalog uploads: a manifest (and a ZIP of its files) registered in chunks by a worker.

Invariants:
- The manifest as a whole is read and checked before any row is written. An unreadable file,
  a wrong encoding, missing columns or a refused archive fail the upload with nothing written.
- One transaction per chunk. A chunk's works, references, files, per-row errors, the upload's
  progress and one audit event commit together, or not at all. A row is written whole or not
  at all; what is wrong with it is stored as errors (row, field, message).
- Upserts keyed on (organisation, external_ref): a row whose work exists updates it, so running
  a manifest again, or a task delivered twice, creates no duplicates.
- `committed_through_row` is the position, in processing order (parents before children, then
  manifest order; see registry.uploads.index), of the last committed row. Every chunk starts
  right after it and commits only if it is still there, checked under a lock on the upload
  row: two deliveries of the task never apply a row twice, and a task redelivered after its
  worker died resumes after the last committed chunk.
- A row is validated by the same rules as single registration (`work_fields_validate`,
  `parse_references`, parents through the same lineage helpers) and its references go through
  the same conflict detection (`conflicts_detect`).
"""

from __future__ import annotations

import csv
import logging
import os
import re
import time
from collections import defaultdict
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass, field
from typing import IO, Any

from django.core.files import File
from django.core.files.storage import default_storage
from django.db import DataError, IntegrityError, connection, models, transaction
from django.db.models import F
from django.db.models.functions import Coalesce
from django.utils import timezone
from django.utils.translation import gettext as _

from registry.exceptions import InvalidTransition, ValidationFailed
from registry.matching.fingerprints import FileRejected, fingerprint_file, phash_bands, phash_from_hex
from registry.models import (
    BulkUpload,
    BulkUploadError,
    ContentFile,
    Membership,
    Organization,
    PerceptualHash,
    Work,
    WorkIdentifier,
    WorkURL,
)
from registry.models.works import MAX_WORK_DEPTH
from registry.access import Actor, authorize
from registry.services.audit import audit_append
from registry.services.conflicts import conflicts_detect
from registry.services.references import UrlReference, parse_references
from registry.services.works import work_fields_validate, work_lineage_under, work_parent_validate, work_subtree_move
from registry.uploads.archives import ArchiveRejected, EntryRejected, SafeArchive, member_name
from registry.uploads.index import IndexedRow, ManifestIndex
from registry.uploads.manifests import ManifestRejected, Problem, read_manifest

logger = logging.getLogger(__name__)

CHUNK_ROWS = 1000
# Files make a chunk slow (unpacking, hashing, storing): fewer of them keep a chunk short.
CHUNK_FILES = 50
FILE_THREADS = min(4, os.cpu_count() or 1)
# One task runs this long, then hands the rest to a fresh task (well inside its time limits).
TIME_BUDGET_SECONDS = 10 * 60
MAX_REFERENCES_PER_ROW = 1000
LIST_SEPARATOR = ";"
# A concurrent registration of the same external_ref makes a chunk's insert fail; the chunk is
# then simply written again, and finds that work to update.
_CHUNK_ATTEMPTS = 3
_SHA256 = re.compile(r"[0-9a-fA-F]{64}")
_UPLOADS_SCOPE = "uploads"


# --- starting and cancelling -------------------------------------------------------------


@transaction.atomic
def bulk_upload_start(
    *, actor: Actor, organization: Organization, manifest: File, archive: File | None = None
) -> BulkUpload:
    """Store the manifest (and archive) and queue the upload; the worker does the rest.

    Nothing is read here beyond storing the bytes: every check, including whether the
    manifest can be read at all, happens in the worker, which reports it on the upload.
    """
    authorize(actor, organization, role=Membership.Role.MANAGER, scope=_UPLOADS_SCOPE)
    upload = BulkUpload(
        organization=organization,
        created_by=actor.user_or_none,
        manifest_name=(manifest.name or "manifest").rsplit("/", 1)[-1][:255],
    )
    # Stored under the upload's id, not the sender's file name.
    upload.manifest.save(f"{upload.pk}-manifest", manifest, save=False)
    if archive is not None:
        upload.archive.save(f"{upload.pk}-archive.zip", archive, save=False)
    upload.save()
    audit_append(
        actor=actor, action="bulk_upload.start", object_type="bulk_upload", object_id=str(upload.pk),
        organization=organization.slug,
        data={"manifest": upload.manifest_name, "archive": archive.name if archive else None},
    )
    # Imported here: the task module imports this one.
    from registry.tasks import process_bulk_upload

    upload_id = str(upload.pk)
    transaction.on_commit(lambda: process_bulk_upload.delay(upload_id=upload_id))
    return upload


@transaction.atomic
def bulk_upload_cancel(*, actor: Actor, upload: BulkUpload) -> BulkUpload:
    """Stop an upload between chunks: what is committed stays, nothing more is written.

    Waits for a chunk being committed (it holds the upload row's lock), so the worker sees
    the cancellation before its next chunk. Cancelling a cancelled upload changes nothing.
    """
    authorize(actor, upload.organization, role=Membership.Role.MANAGER, scope=_UPLOADS_SCOPE)
    upload = BulkUpload.objects.select_for_update().select_related("organization").get(pk=upload.pk)
    if upload.status == BulkUpload.Status.CANCELLED:
        return upload
    if upload.status in BulkUpload.FINISHED:
        raise InvalidTransition(
            _("The upload is already %(status)s; only a running upload can be cancelled.") % {"status": upload.status}
        )
    upload.status = BulkUpload.Status.CANCELLED
    upload.finished_at = timezone.now()
    upload.save(update_fields=["status", "finished_at"])
    audit_append(
        actor=actor, action="bulk_upload.cancel", object_type="bulk_upload", object_id=str(upload.pk),
        organization=upload.organization.slug,
        data={"processed_rows": upload.processed_rows, "total_rows": upload.total_rows},
    )
    return upload


def bulk_upload_fail(*, upload_id: str, error: str, field: str = "") -> None:
    """Mark an upload failed (if it is still running), with `error` as its reason and row-0 error."""
    with transaction.atomic():
        upload = BulkUpload.objects.select_for_update().select_related("organization").filter(pk=upload_id).first()
        if upload is None or upload.status in BulkUpload.FINISHED:
            return
        upload.status = BulkUpload.Status.FAILED
        upload.error = error
        upload.finished_at = timezone.now()
        upload.save(update_fields=["status", "error", "finished_at"])
        BulkUploadError.objects.create(upload=upload, row=0, field=field, message=error)
        audit_append(
            actor=_uploader(upload), action="bulk_upload.fail", object_type="bulk_upload", object_id=str(upload.pk),
            organization=upload.organization.slug, data={"error": error, "processed_rows": upload.processed_rows},
        )


# --- processing --------------------------------------------------------------------------


def bulk_upload_process(*, upload_id: str, time_budget: float = TIME_BUDGET_SECONDS) -> bool:
    """Run an upload, or resume it, for about `time_budget` seconds; True if rows remain.

    Safe to call again at any time, also while another call runs: every chunk commits only
    right after the last committed one. Each call reads the manifest anew (it is the only
    copy that survives a worker), so a redelivery on another machine resumes just the same.
    """
    started = time.monotonic()
    upload = BulkUpload.objects.select_related("organization", "created_by").filter(pk=upload_id).first()
    if upload is None or upload.status in BulkUpload.FINISHED:
        return False
    BulkUpload.objects.filter(pk=upload.pk, status=BulkUpload.Status.PENDING).update(
        status=BulkUpload.Status.VALIDATING, started_at=timezone.now()
    )
    with ExitStack() as stack:
        try:
            manifest_format, index, archive = _open_inputs(upload, stack)
        except ManifestRejected as rejection:
            bulk_upload_fail(upload_id=upload_id, error=rejection.message, field="manifest")
            return False
        except ArchiveRejected as rejection:
            bulk_upload_fail(upload_id=upload_id, error=rejection.message, field="archive")
            return False
        running = BulkUpload.objects.filter(
            pk=upload.pk, status__in=[BulkUpload.Status.VALIDATING, BulkUpload.Status.PROCESSING]
        ).update(
            status=BulkUpload.Status.PROCESSING, total_rows=index.total_rows, manifest_format=manifest_format,
            started_at=Coalesce(F("started_at"), timezone.now()),
        )
        if not running:
            return False
        return _process_chunks(upload, index, archive, deadline=started + time_budget)


def _open_inputs(upload: BulkUpload, stack: ExitStack) -> tuple[str, ManifestIndex, SafeArchive | None]:
    """Read the whole manifest into the index and check the archive: before any row is written."""
    try:
        manifest_file = stack.enter_context(default_storage.open(upload.manifest.name, "rb"))
    except OSError as error:
        raise ManifestRejected(f"The manifest file cannot be read ({error.strerror or error}).") from None
    manifest = read_manifest(manifest_file)
    index = stack.enter_context(ManifestIndex.build(manifest.rows, label=str(upload.pk)))
    if index.total_rows == 0:
        raise ManifestRejected("The manifest has no rows.")
    archive = None
    if upload.archive:
        try:
            archive_file = stack.enter_context(default_storage.open(upload.archive.name, "rb"))
        except OSError as error:
            raise ArchiveRejected(f"The archive cannot be read ({error.strerror or error}).") from None
        archive = stack.enter_context(SafeArchive(archive_file))
    return manifest.format, index, archive


def _process_chunks(upload: BulkUpload, index: ManifestIndex, archive: SafeArchive | None, *, deadline: float) -> bool:
    actor = _uploader(upload)
    while True:
        state = BulkUpload.objects.filter(pk=upload.pk).values("status", "committed_through_row").get()
        if state["status"] != BulkUpload.Status.PROCESSING:
            return False
        position = state["committed_through_row"]
        rows = _next_chunk(index, position)
        if not rows:
            _finish(upload, actor)
            return False
        prepared = _prepare_all(rows, upload.organization, archive)
        for attempt in range(1, _CHUNK_ATTEMPTS + 1):
            try:
                _commit_chunk(upload, actor, position, prepared)
                break
            except IntegrityError:
                if attempt == _CHUNK_ATTEMPTS:
                    raise
                logger.info("Upload %s: chunk after %s raced another registration; writing it again", upload.pk,
                            position)
        if time.monotonic() > deadline:
            return True


def _prepare_all(rows: list[IndexedRow], organization: Organization, archive: SafeArchive | None) -> list[PreparedRow]:
    """Check every row; files are unpacked and fingerprinted on a few threads at once.

    Decoding an image is most of a file's cost and Pillow releases the GIL while it decodes,
    so a worker uses every core for images. Nothing here touches the database.
    """
    if archive is None or not any(row.values.get("file") for row in rows):
        return [_prepare(row, organization, archive) for row in rows]
    with ThreadPoolExecutor(max_workers=FILE_THREADS) as pool:
        return list(pool.map(lambda row: _prepare(row, organization, archive), rows))


def _next_chunk(index: ManifestIndex, position: int) -> list[IndexedRow]:
    rows: list[IndexedRow] = []
    files = 0
    candidates = index.rows_after(position)
    try:
        for row in candidates:
            rows.append(row)
            files += bool(row.values.get("file"))
            if len(rows) >= CHUNK_ROWS or files >= CHUNK_FILES:
                break
    finally:
        candidates.close()
    return rows


def _finish(upload: BulkUpload, actor: Actor) -> None:
    with transaction.atomic():
        locked = BulkUpload.objects.select_for_update().get(pk=upload.pk)
        if locked.status != BulkUpload.Status.PROCESSING:
            return
        locked.status = BulkUpload.Status.DONE
        locked.finished_at = timezone.now()
        locked.save(update_fields=["status", "finished_at"])
        audit_append(
            actor=actor, action="bulk_upload.finish", object_type="bulk_upload", object_id=str(upload.pk),
            organization=upload.organization.slug,
            data={"total_rows": locked.total_rows, "created": locked.created_count,
                  "updated": locked.updated_count, "failed": locked.failed_count},
        )


def _uploader(upload: BulkUpload) -> Actor:
    """Who the audit trail names for the worker's writes: the person who uploaded, if known.

    (An upload started with an API key names the key in its bulk_upload.start event.)
    """
    if upload.created_by is not None:
        return Actor.for_user(upload.created_by)
    return Actor.for_system("bulk-upload")


# --- one row, before the database: parsing, validation, files ----------------------------


@dataclass(frozen=True)
class Content:
    sha256: str
    phash: int | None
    size: int | None = None
    media_type: str = ""
    width: int | None = None
    height: int | None = None
    stored_name: str = ""
    original_name: str = ""


@dataclass
class PreparedRow:
    position: int
    number: int
    external_ref: str
    fields: dict[str, Any] = field(default_factory=dict)
    parent_ref: str | None = None  # None: the row does not say; "": no parent
    parent_number: int | None = None
    urls: list[UrlReference] | None = None  # None: the row does not say; else the whole set
    identifiers: list[tuple[str, str]] | None = None
    content: Content | None = None
    errors: list[Problem] = field(default_factory=list)


def _prepare(row: IndexedRow, organization: Organization, archive: SafeArchive | None) -> PreparedRow:
    prepared = PreparedRow(
        position=row.position, number=row.number, external_ref=row.external_ref,
        parent_ref=row.parent_ref, parent_number=row.parent_number,
    )
    if row.problems:
        prepared.errors.extend(row.problems)
        return prepared
    errors = prepared.errors
    values = row.values
    _check_fields(values, prepared)
    if row.first_number is not None:
        errors.append(("external_ref", (
            f"'{row.external_ref}' already appears on row {row.first_number}; "
            "an external_ref may appear only once in a manifest."
        )))
    if "parent_ref" in values and values["parent_ref"] not in (None, "") and not row.parent_ref:
        errors.append(("parent_ref", "Must be text: the external_ref of the parent work."))
    elif row.hierarchy_broken:
        errors.append(("parent_ref", (
            f"'{row.parent_ref}' makes a cycle within the manifest, or a chain of works more than "
            f"{MAX_WORK_DEPTH} deep."
        )))
    urls = _text_list(values, "urls", errors) if "urls" in values else None
    identifiers = _text_list(values, "identifiers", errors) if "identifiers" in values else None
    try:
        prepared.urls, prepared.identifiers = parse_references(urls=urls or (), identifiers=identifiers or ())
    except ValidationFailed as invalid:
        errors.extend((name, "; ".join(messages)) for name, messages in invalid.fields.items())
    if urls is None:
        prepared.urls = None
    if identifiers is None:
        prepared.identifiers = None
    file_name, sha256, phash = _content_columns(values, archive, errors)
    if errors:
        return prepared
    if file_name:
        prepared.content = _file_content(file_name, sha256, archive, errors)
    elif sha256:
        prepared.content = Content(sha256=sha256, phash=phash)
    return prepared


def _check_fields(values: dict[str, object], prepared: PreparedRow) -> None:
    errors = prepared.errors
    fields: dict[str, Any] = {}
    for name in ("title", "description", "creators"):
        if name in values:
            text = _text(values[name], joined=(name == "creators"))
            if text is None:
                errors.append((name, "Must be text."))
            else:
                fields[name] = text.strip()
    if "title" not in values:
        errors.append(("title", "This field is required."))
    if "kind" in values:
        kind = _text(values["kind"])
        if kind is None:
            errors.append(("kind", "Must be text."))
        else:
            fields["kind"] = kind.strip().lower() or Work.Kind.OTHER
    if "year" in values:
        year = _year(values["year"])
        if year is False:
            errors.append(("year", f"Not a year: {str(values['year'])[:20]!r}."))
        else:
            fields["year"] = year
    raw_ref = values.get("external_ref")
    if not prepared.external_ref and raw_ref not in (None, "") and _text(raw_ref) is None:
        errors.append(("external_ref", "Must be text."))
    try:
        work_fields_validate({"external_ref": prepared.external_ref, **fields})
    except ValidationFailed as invalid:
        errors.extend((name, " ".join(messages)) for name, messages in invalid.fields.items())
    prepared.fields = fields


def _text(value: object, *, joined: bool = False) -> str | None:
    """A cell as text: None for a value that is not text (a list, an object, true/false)."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if joined and isinstance(value, list) and all(isinstance(item, str) for item in value):
        return f"{LIST_SEPARATOR} ".join(item.strip() for item in value if item.strip())
    return None


def _year(value: object) -> int | bool | None:
    """The year a cell gives, None for an empty one, False for one that is not a whole number."""
    text = _text(value)
    if text is None:
        return False
    text = text.strip()
    if not text:
        return None
    if not text.isascii() or not text.isdigit():
        return False
    return int(text) if len(text) <= 5 else False


def _text_list(values: dict[str, object], name: str, errors: list[Problem]) -> list[str]:
    """A `;`-separated cell, or a JSON list of strings, as a list of non-empty items."""
    value = values[name]
    if value is None:
        return []
    if isinstance(value, str):
        items = value.split(LIST_SEPARATOR)
    elif isinstance(value, list) and all(isinstance(item, str) for item in value):
        items = value
    else:
        errors.append((name, f"Must be text separated by '{LIST_SEPARATOR}', or a list of text."))
        return []
    items = [item.strip() for item in items if item.strip()]
    if len(items) > MAX_REFERENCES_PER_ROW:
        errors.append((name, f"At most {MAX_REFERENCES_PER_ROW} per row."))
        return []
    return items


def _content_columns(
    values: dict[str, object], archive: SafeArchive | None, errors: list[Problem]
) -> tuple[str, str, int | None]:
    texts = {}
    for name in ("file", "sha256", "phash"):
        text = _text(values.get(name))
        if text is None:
            errors.append((name, "Must be text."))
            text = ""
        texts[name] = text.strip()
    file_name, sha256, phash_text = texts["file"], texts["sha256"].lower(), texts["phash"]
    if sha256 and not _SHA256.fullmatch(sha256):
        errors.append(("sha256", "Not a SHA-256: expected 64 hex characters."))
    phash = None
    if file_name:
        try:
            file_name = member_name(file_name)
        except ValueError as unsafe:
            errors.append(("file", f"'{texts['file']}' is not a path inside the archive: it {unsafe}."))
        if archive is None:
            errors.append(("file", "Names a file, but the upload has no archive."))
        elif not errors and file_name not in archive:
            errors.append(("file", f"The archive has no file '{file_name}'."))
    elif phash_text:
        try:
            phash = phash_from_hex(phash_text)
        except ValueError as invalid:
            errors.append(("phash", str(invalid)))
        if not sha256:
            errors.append(("phash", "A phash needs the file's sha256 as well (or the file itself)."))
    return file_name, sha256, phash


def _file_content(name: str, sha256: str, archive: SafeArchive | None, errors: list[Problem]) -> Content | None:
    """Unpack, fingerprint and store one file from the archive; on refusal, say why and store nothing."""
    assert archive is not None
    try:
        spool = archive.open_entry(name)
    except EntryRejected as rejected:
        errors.append(("file", rejected.message))
        return None
    with spool:
        try:
            fingerprint = fingerprint_file(spool, filename=name)
        except FileRejected as rejected:
            errors.append(("file", f"'{name}': {rejected.message}"))
            return None
        if sha256 and sha256 != fingerprint.sha256:
            errors.append(("sha256", f"Does not match the file '{name}', whose SHA-256 is {fingerprint.sha256}."))
            return None
        spool.seek(0)
        stored_name = _store(spool, fingerprint.sha256)
    return Content(
        sha256=fingerprint.sha256, phash=fingerprint.phash, size=fingerprint.size,
        media_type=fingerprint.media_type, width=fingerprint.width, height=fingerprint.height,
        stored_name=stored_name, original_name=name[-255:],
    )


def _store(spool: IO[bytes], sha256: str) -> str:
    """Store the bytes under their SHA-256 (once: a chunk written again finds them there).

    Stored before the chunk's transaction, like content_file_add does: a row never points
    at bytes that are not there. A chunk that then fails leaves an unreferenced copy behind.
    """
    name = ContentFile._meta.get_field("file").generate_filename(None, sha256)
    if default_storage.exists(name):
        return name
    return default_storage.save(name, File(spool))


# --- one chunk, in one transaction -------------------------------------------------------


@dataclass
class _Written:
    created: list[PreparedRow] = field(default_factory=list)
    updated: list[PreparedRow] = field(default_factory=list)
    errors: dict[int, list[Problem]] = field(default_factory=lambda: defaultdict(list))
    referenced_work_ids: set[Any] = field(default_factory=set)

    def add(self, other: _Written) -> None:
        self.created += other.created
        self.updated += other.updated
        for number, problems in other.errors.items():
            self.errors[number] += problems
        self.referenced_work_ids |= other.referenced_work_ids


def _commit_chunk(upload: BulkUpload, actor: Actor, position: int, rows: list[PreparedRow]) -> bool:
    """Write one chunk if it is still the next one; False if cancelled or already written."""
    organization = upload.organization
    with transaction.atomic():
        locked = BulkUpload.objects.select_for_update().get(pk=upload.pk)
        if locked.status != BulkUpload.Status.PROCESSING or locked.committed_through_row != position:
            return False
        valid = [row for row in rows if not row.errors]
        try:
            with transaction.atomic():
                written = _write_rows(organization, valid)
        except DataError:
            # Something the checks above let through and the database refuses: find the row,
            # each in a savepoint of its own, rather than fail a thousand rows for one.
            written = _Written()
            for row in valid:
                try:
                    with transaction.atomic():
                        written.add(_write_rows(organization, [row]))
                except DataError as refused:
                    written.errors[row.number].append(("", f"The row cannot be stored: {str(refused).splitlines()[0]}"))
        failed = [row for row in rows if row.errors or written.errors.get(row.number)]
        BulkUploadError.objects.bulk_create([
            BulkUploadError(upload=locked, row=row.number, external_ref=row.external_ref[:255], field=name[:50],
                            message=message)
            for row in failed
            for name, message in [*row.errors, *written.errors.get(row.number, [])]
        ])
        BulkUpload.objects.filter(pk=upload.pk).update(
            committed_through_row=rows[-1].position,
            processed_rows=F("processed_rows") + len(rows),
            created_count=F("created_count") + len(written.created),
            updated_count=F("updated_count") + len(written.updated),
            failed_count=F("failed_count") + len(failed),
        )
        conflicts_detect(work_ids=written.referenced_work_ids)
        # Last, so the audit chain's lock is held for as short a time as possible.
        audit_append(
            actor=actor, action="bulk_upload.chunk", object_type="bulk_upload", object_id=str(upload.pk),
            organization=organization.slug,
            data={
                "positions": [rows[0].position, rows[-1].position],
                "created": [row.external_ref for row in written.created],
                "updated": [row.external_ref for row in written.updated],
                "failed_rows": [row.number for row in failed],
            },
        )
    return True


def _write_rows(organization: Organization, rows: list[PreparedRow]) -> _Written:
    """Upsert valid rows' works with a fixed number of queries, whatever their number.

    Rows that turn out wrong only against the database (a missing parent, a move that would
    make a cycle) are reported in the result and written not at all.
    """
    written = _Written()
    refs = {row.external_ref for row in rows} | {row.parent_ref for row in rows if row.parent_ref}
    # Locked in primary-key order, so two chunks touching the same works cannot deadlock; the
    # parents are locked too, so a concurrent move cannot change a lineage copied here.
    works = {
        work.external_ref: work
        for work in Work.objects.select_for_update()
        .filter(owner=organization, external_ref__any=list(refs))
        .order_by("pk")
    }
    _move_existing(organization, rows, works, written)
    new_works: list[Work] = []
    changed_works: list[Work] = []
    changed_fields: set[str] = set()
    work_of: dict[int, Work] = {}
    for row in rows:
        if written.errors.get(row.number):
            continue
        parent = _parent_of(row, works, written, organization)
        if written.errors.get(row.number):
            continue
        work = works.get(row.external_ref)
        if work is None:
            work = Work(
                owner=organization, external_ref=row.external_ref, parent_id=parent.pk if parent else None,
                lineage=work_lineage_under(parent), kind=Work.Kind.OTHER,
            )
            for name, value in row.fields.items():
                setattr(work, name, value)
            new_works.append(work)
            written.created.append(row)
        else:
            changed = [name for name, value in row.fields.items() if getattr(work, name) != value]
            for name in changed:
                setattr(work, name, row.fields[name])
            if changed:
                changed_works.append(work)
                changed_fields.update(changed)
            written.updated.append(row)
        work_of[row.number] = work
    _insert_new(Work, new_works)
    if changed_works:
        now = timezone.now()
        for work in changed_works:
            work.updated_at = now
        Work.objects.bulk_update(changed_works, [*sorted(changed_fields), "updated_at"])
    stored = [*written.created, *written.updated]
    existing_work_ids = {work.pk for work in works.values()}
    _replace_urls(stored, work_of, existing_work_ids, written)
    _replace_identifiers(stored, work_of, existing_work_ids, written)
    _add_content(stored, work_of, written)
    return written


def _insert_new(model: type[models.Model], objects: list[models.Model]) -> None:
    """Insert rows that cannot exist yet: COPY on PostgreSQL, bulk_create elsewhere.

    Django's bulk_create builds its SQL value by value, which was half of a chunk's time.
    The rows here are new works and references the chunk found missing under the works'
    row locks, so no conflict is possible and nothing needs returning (ids come from
    Python or the table's sequence).
    """
    if connection.vendor != "postgresql" or not objects:
        model.objects.bulk_create(objects)
        return
    fields = [field for field in model._meta.concrete_fields if not isinstance(field, models.AutoField)]
    columns = ", ".join(connection.ops.quote_name(field.column) for field in fields)
    statement = f"COPY {model._meta.db_table} ({columns}) FROM STDIN"
    with connection.cursor() as cursor, cursor.cursor.copy(statement) as copy:
        for obj in objects:
            copy.write_row([field.pre_save(obj, add=True) for field in fields])


def _parent_of(row: PreparedRow, works: dict[str, Work], written: _Written, organization: Organization) -> Work | None:
    """The parent the row names, or None for none; records an error if it cannot be the parent."""
    if not row.parent_ref:
        # None: the row does not say, so an existing work keeps its parent and a new one has none.
        return None
    parent = works.get(row.parent_ref)
    if parent is None:
        if row.parent_number is not None:
            message = (
                f"'{row.parent_ref}' (row {row.parent_number}) was not registered, so it cannot be the parent; "
                "see that row's errors."
            )
        else:
            message = f"No work '{row.parent_ref}' in this manifest or among {organization.name}'s works."
        written.errors[row.number].append(("parent_ref", message))
        return None
    if row.external_ref not in works:
        # A new work: only the depth can be wrong (it has no descendants to make a cycle with).
        try:
            work_parent_validate(organization=organization, parent=parent)
        except ValidationFailed as invalid:
            written.errors[row.number].append(("parent_ref", f"'{row.parent_ref}': {invalid.message}"))
            return None
    return parent


def _move_existing(
    organization: Organization, rows: list[PreparedRow], works: dict[str, Work], written: _Written
) -> None:
    """Re-parent existing works whose row names another parent; each move on its own savepoint."""
    moved = False
    for row in rows:
        work = works.get(row.external_ref)
        if work is None or row.parent_ref is None:
            continue
        parent = _parent_of(row, works, written, organization)
        if written.errors.get(row.number) or (parent.pk if parent else None) == work.parent_id:
            continue
        moved = True
        try:
            with transaction.atomic():
                work_parent_validate(organization=organization, parent=parent, work=work)
                work_subtree_move(work, parent)
                work.save(update_fields=["parent", "lineage", "updated_at"])
        except ValidationFailed as invalid:
            reason = "; ".join(" ".join(messages) for messages in invalid.fields.values()) or invalid.message
            written.errors[row.number].append(("parent_ref", f"'{row.parent_ref}': {invalid.message} ({reason})"))
    if moved:
        # A move rewrites the lineage of everything under the moved work, some of which this
        # chunk may hold, and a refused move leaves its in-memory work half-changed.
        fresh = {pk: (parent_id, lineage) for pk, parent_id, lineage in Work.objects.filter(
            pk__in=[work.pk for work in works.values()]).values_list("pk", "parent_id", "lineage")}
        for work in works.values():
            work.parent_id, work.lineage = fresh[work.pk]


def _replace_urls(
    rows: list[PreparedRow], work_of: dict[int, Work], existing_work_ids: set[Any], written: _Written
) -> None:
    rows = [row for row in rows if row.urls is not None]
    if not rows:
        return
    have: dict[Any, dict[str, int]] = defaultdict(dict)
    existing_ids = [work_of[row.number].pk for row in rows if work_of[row.number].pk in existing_work_ids]
    for pk, work_id, url_hash in WorkURL.objects.filter(work_id__in=existing_ids).values_list(
        "pk", "work_id", "url_hash"
    ):
        have[work_id][url_hash] = pk
    stale: list[int] = []
    new: list[WorkURL] = []
    for row in rows:
        work = work_of[row.number]
        wanted = {ref.url_hash: ref for ref in row.urls or ()}
        stale += [pk for url_hash, pk in have[work.pk].items() if url_hash not in wanted]
        fresh = [ref for url_hash, ref in wanted.items() if url_hash not in have[work.pk]]
        new += [WorkURL(work=work, url=ref.url, host=ref.host, is_pattern=ref.is_pattern, url_hash=ref.url_hash)
                for ref in fresh]
        if fresh:
            written.referenced_work_ids.add(work.pk)
    if stale:
        WorkURL.objects.filter(pk__in=stale).delete()
    _insert_new(WorkURL, new)


def _replace_identifiers(
    rows: list[PreparedRow], work_of: dict[int, Work], existing_work_ids: set[Any], written: _Written
) -> None:
    rows = [row for row in rows if row.identifiers is not None]
    if not rows:
        return
    have: dict[Any, dict[tuple[str, str], int]] = defaultdict(dict)
    existing_ids = [work_of[row.number].pk for row in rows if work_of[row.number].pk in existing_work_ids]
    for pk, work_id, scheme, value in WorkIdentifier.objects.filter(work_id__in=existing_ids).values_list(
        "pk", "work_id", "scheme", "value"
    ):
        have[work_id][(scheme, value)] = pk
    stale: list[int] = []
    new: list[WorkIdentifier] = []
    for row in rows:
        work = work_of[row.number]
        wanted = set(row.identifiers or ())
        stale += [pk for key, pk in have[work.pk].items() if key not in wanted]
        fresh = [key for key in wanted if key not in have[work.pk]]
        new += [WorkIdentifier(work=work, scheme=scheme, value=value) for scheme, value in sorted(fresh)]
        if fresh:
            written.referenced_work_ids.add(work.pk)
    if stale:
        WorkIdentifier.objects.filter(pk__in=stale).delete()
    _insert_new(WorkIdentifier, new)


def _add_content(rows: list[PreparedRow], work_of: dict[int, Work], written: _Written) -> None:
    """Attach each row's file (or its hashes): added, never replaced, like content_file_add."""
    rows = [row for row in rows if row.content is not None]
    if not rows:
        return
    existing = {
        (content_file.work_id, content_file.sha256): content_file
        for content_file in ContentFile.objects.filter(
            work_id__in=[work_of[row.number].pk for row in rows], sha256__in={row.content.sha256 for row in rows}
        )
    }
    new: list[ContentFile] = []
    filled: list[ContentFile] = []
    hashes: list[tuple[ContentFile, Work, int]] = []
    for row in rows:
        content = row.content
        assert content is not None
        work = work_of[row.number]
        content_file = existing.get((work.pk, content.sha256))
        if content_file is None:
            content_file = ContentFile(
                work=work, sha256=content.sha256, size=content.size, media_type=content.media_type,
                width=content.width, height=content.height, file=content.stored_name,
                original_name=content.original_name,
            )
            new.append(content_file)
            written.referenced_work_ids.add(work.pk)
        elif content.stored_name and not content_file.file:
            # Registered by its hashes before; now the file itself has come.
            content_file.file = content.stored_name
            content_file.size, content_file.media_type = content.size, content.media_type
            content_file.width, content_file.height = content.width, content.height
            content_file.original_name = content.original_name
            filled.append(content_file)
        if content.phash is not None:
            hashes.append((content_file, work, content.phash))
            written.referenced_work_ids.add(work.pk)
    ContentFile.objects.bulk_create(new)
    if filled:
        ContentFile.objects.bulk_update(filled, ["file", "size", "media_type", "width", "height", "original_name"])
    PerceptualHash.objects.bulk_create(
        [
            PerceptualHash(
                content_file=content_file, work=work, source=PerceptualHash.Source.IMAGE, value=value,
                **dict(zip(("band0", "band1", "band2"), phash_bands(value), strict=True)),
            )
            for content_file, work, value in hashes
        ],
        ignore_conflicts=True,
    )


# --- the error report --------------------------------------------------------------------

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
