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
- A row is validated by the same rules as single registration (registry.uploads.rows), its
  references are written by the same set-based functions (registry.services.references) and go
  through the same conflict detection, handed over in memory rather than read back.

Where things live: row parsing in registry.uploads.rows, reading the manifest and archive in
registry.uploads.manifests/archives/index, the error report in registry.selectors.uploads.
Why this module is still ~500 lines: starting, cancelling and failing an upload, the chunk fence
and the upsert of a chunk's works (with re-parenting) share one set of invariants, stated above,
that are easier to check in one file than across several.
"""

from __future__ import annotations

import logging
import os
import time
import uuid
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass, field

from django.core.files import File
from django.core.files.storage import default_storage
from django.db import DataError, IntegrityError, transaction
from django.db.models import F
from django.db.models.functions import Coalesce
from django.utils import timezone
from django.utils.translation import gettext as _

from registry.access import Actor, authorize
from registry.exceptions import InvalidTransition, ValidationFailed
from registry.message_codes import coded
from registry.metrics import record_upload_rows
from registry.models import BulkUpload, BulkUploadError, Membership, Organization, Work
from registry.services.audit import audit_append
from registry.services.conflicts import conflicts_detect_references
from registry.services.references import AddedReferences, contents_add, copy_insert, references_replace
from registry.services.works import work_lineage_under, work_parent_validate, work_subtree_move
from registry.tasks import TIME_BUDGET_SECONDS, process_bulk_upload
from registry.uploads.archives import ArchiveRejected, SafeArchive
from registry.uploads.index import IndexedRow, ManifestIndex
from registry.uploads.manifests import ManifestRejected, Problem, read_manifest
from registry.uploads.rows import PreparedRow, prepare_row
from registry.uploads.storage import upload_inputs_delete, upload_size_check

logger = logging.getLogger(__name__)

CHUNK_ROWS = 1000
# Files make a chunk slow (unpacking, hashing, storing): fewer of them keep a chunk short.
CHUNK_FILES = 50
FILE_THREADS = min(4, os.cpu_count() or 1)
# A concurrent registration of the same external_ref makes a chunk's insert fail; the chunk is
# then simply written again, and finds that work to update.
_CHUNK_ATTEMPTS = 3
_UPLOADS_SCOPE = "uploads"
# The columns of a new work's row, in COPY order; the values a row does not give are the model's defaults.
_WORK_COLUMNS = tuple(f.name for f in Work._meta.concrete_fields)


# --- starting and cancelling -------------------------------------------------------------


def bulk_upload_start(
    *, actor: Actor, organization: Organization, manifest: File, archive: File | None = None
) -> BulkUpload:
    """Upload a catalog for `organization` (a manager's, or a key with the uploads scope)."""
    authorize(actor, organization, role=Membership.Role.MANAGER, scope=_UPLOADS_SCOPE)
    return do_bulk_upload_start(acting=actor, organization=organization, manifest=manifest, archive=archive)


@transaction.atomic
def do_bulk_upload_start(
    *, acting: Actor, organization: Organization, manifest: File, archive: File | None = None
) -> BulkUpload:
    """Store the manifest (and archive) and queue the upload; the worker does the rest.

    Nothing is read here beyond storing the bytes: every check, including whether the
    manifest can be read at all, happens in the worker, which reports it on the upload.
    Sizes are the exception: too large a file, or past the storage quota, is refused first.
    """
    upload_size_check(organization_id=organization.pk, manifest=manifest, archive=archive)
    upload = BulkUpload(
        organization=organization,
        created_by=acting.user_or_none,
        manifest_name=(manifest.name or "manifest").rsplit("/", 1)[-1][:255],
    )
    # Stored under the upload's id, not the sender's file name.
    upload.manifest.save(f"{upload.pk}-manifest", manifest, save=False)
    if archive is not None:
        upload.archive.save(f"{upload.pk}-archive.zip", archive, save=False)
    upload.save()
    audit_append(
        actor=acting, action="bulk_upload.start", object_type="bulk_upload", object_id=str(upload.pk),
        organization=organization,
        data={"manifest": upload.manifest_name, "archive": archive.name if archive else None},
    )
    upload_id = str(upload.pk)
    transaction.on_commit(lambda: process_bulk_upload.delay(upload_id=upload_id))
    return upload


def bulk_upload_cancel(*, actor: Actor, upload: BulkUpload) -> BulkUpload:
    """Cancel one of the organisation's uploads (a manager's, or a key with the uploads scope)."""
    authorize(actor, upload.organization, role=Membership.Role.MANAGER, scope=_UPLOADS_SCOPE)
    return do_bulk_upload_cancel(acting=actor, upload=upload)


@transaction.atomic
def do_bulk_upload_cancel(*, acting: Actor, upload: BulkUpload) -> BulkUpload:
    """Stop an upload between chunks: what is committed stays, nothing more is written.

    Waits for a chunk being committed (it holds the upload row's lock), so the worker sees
    the cancellation before its next chunk. Cancelling a cancelled upload changes nothing.
    """
    upload = BulkUpload.objects.select_for_update().select_related("organization").get(pk=upload.pk)
    if upload.status == BulkUpload.Status.CANCELLED:
        return upload
    if upload.status in BulkUpload.FINISHED:
        raise InvalidTransition(
            _("The upload is already %(status)s; only a running upload can be cancelled.")
            % {"status": str(upload.get_status_display()).lower()}
        )
    upload.status = BulkUpload.Status.CANCELLED
    upload.finished_at = timezone.now()
    upload.save(update_fields=["status", "finished_at"])
    audit_append(
        actor=acting, action="bulk_upload.cancel", object_type="bulk_upload", object_id=str(upload.pk),
        organization=upload.organization,
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
            organization=upload.organization, data={"error": error, "processed_rows": upload.processed_rows},
        )
        # The inputs go once the failure is committed; the error report stays.
        transaction.on_commit(lambda: upload_inputs_delete(upload_id=upload_id))


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
        prepared = _prepare_all(rows, archive)
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


def _prepare_all(rows: list[IndexedRow], archive: SafeArchive | None) -> list[PreparedRow]:
    """Check every row; files are unpacked and fingerprinted on a few threads at once.

    Decoding an image is most of a file's cost and Pillow releases the GIL while it decodes,
    so a worker uses every core for images. Nothing here touches the database.
    """
    if archive is None or not any(row.values.get("file") for row in rows):
        return [prepare_row(row, archive) for row in rows]
    with ThreadPoolExecutor(max_workers=FILE_THREADS) as pool:
        return list(pool.map(lambda row: prepare_row(row, archive), rows))


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
            organization=upload.organization,
            data={"total_rows": locked.total_rows, "created": locked.created_count,
                  "updated": locked.updated_count, "failed": locked.failed_count},
        )
        finished = str(upload.pk)
        transaction.on_commit(lambda: upload_inputs_delete(upload_id=finished))


def _uploader(upload: BulkUpload) -> Actor:
    """Who the audit trail names for the worker's writes: the person who uploaded, if known.

    (An upload started with an API key names the key in its bulk_upload.start event.)
    """
    if upload.created_by is not None:
        return Actor.for_user(upload.created_by)
    return Actor.for_operator("bulk-upload")


# --- one chunk, in one transaction -------------------------------------------------------


@dataclass
class _Written:
    created: list[PreparedRow] = field(default_factory=list)
    updated: list[PreparedRow] = field(default_factory=list)
    errors: dict[int, list[Problem]] = field(default_factory=lambda: defaultdict(list))
    added: AddedReferences = field(default_factory=AddedReferences)

    def add(self, other: _Written) -> None:
        self.created += other.created
        self.updated += other.updated
        for number, problems in other.errors.items():
            self.errors[number] += problems
        self.added.extend(other.added)


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
                    written.errors[row.number].append(
                        ("", coded("upload.row_refused", detail=str(refused).splitlines()[0])))
        failed = [row for row in rows if row.errors or written.errors.get(row.number)]
        BulkUploadError.objects.bulk_create([
            BulkUploadError(upload=locked, row=row.number, external_ref=row.external_ref[:255], field=name[:50],
                            message=message, code=getattr(message, "code", ""), params=getattr(message, "params", {}))
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
        # What this chunk added, as written: conflict detection does not read it back.
        conflicts_detect_references(references=written.added)
        committed = len(written.created) + len(written.updated)
        transaction.on_commit(lambda: record_upload_rows(committed))  # rows/s on /metrics
        # Last, so the audit chain's lock is held for as short a time as possible.
        audit_append(
            actor=actor, action="bulk_upload.chunk", object_type="bulk_upload", object_id=str(upload.pk),
            organization=organization,
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
    make a cycle) are reported in the result and written not at all. New works are written as
    plain rows (no model instances); only existing works, which may change, are loaded.
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
    new_rows: list[tuple[object, ...]] = []
    changed_works: list[Work] = []
    changed_fields: set[str] = set()
    work_of: dict[int, uuid.UUID] = {}
    now = timezone.now()
    for row in rows:
        if written.errors.get(row.number):
            continue
        parent = _parent_of(row, works, written, organization)
        if written.errors.get(row.number):
            continue
        work = works.get(row.external_ref)
        if work is None:
            work_id = uuid.uuid4()
            values = {
                **_WORK_DEFAULTS, **row.fields, "id": work_id, "owner": organization.pk,
                "external_ref": row.external_ref, "parent": parent.pk if parent else None,
                "lineage": work_lineage_under(parent), "created_at": now, "updated_at": now,
            }
            new_rows.append(tuple(values[name] for name in _WORK_COLUMNS))
            written.created.append(row)
            work_of[row.number] = work_id
        else:
            changed = [name for name, value in row.fields.items() if getattr(work, name) != value]
            for name in changed:
                setattr(work, name, row.fields[name])
            if changed:
                work.updated_at = now
                changed_works.append(work)
                changed_fields.update(changed)
            written.updated.append(row)
            work_of[row.number] = work.pk
    copy_insert(Work, [Work._meta.get_field(name).attname for name in _WORK_COLUMNS], new_rows)
    if changed_works:
        Work.objects.bulk_update(changed_works, [*sorted(changed_fields), "updated_at"])
    stored = [*written.created, *written.updated]
    new_work_ids = {work_of[row.number] for row in written.created}
    written.added.extend(references_replace(
        urls={work_of[row.number]: row.urls for row in stored if row.urls is not None},
        identifiers={work_of[row.number]: row.identifiers for row in stored if row.identifiers is not None},
        new_work_ids=new_work_ids,
    ))
    written.added.extend(contents_add(
        contents=[(work_of[row.number], row.content) for row in stored if row.content is not None]
    ))
    return written


def _work_defaults() -> dict[str, object]:
    """A new work's column values where its row says nothing (as a Work() would have them)."""
    return {name: Work._meta.get_field(name).get_default() for name in _WORK_COLUMNS if name != "id"}


_WORK_DEFAULTS = _work_defaults()


def _parent_of(row: PreparedRow, works: dict[str, Work], written: _Written, organization: Organization) -> Work | None:
    """The parent the row names, or None for none; records an error if it cannot be the parent."""
    if not row.parent_ref:
        # None: the row does not say, so an existing work keeps its parent and a new one has none.
        return None
    parent = works.get(row.parent_ref)
    if parent is None:
        if row.parent_number is not None:
            message = coded("upload.parent_not_registered", ref=row.parent_ref, row=row.parent_number)
        else:
            message = coded("upload.parent_unknown", ref=row.parent_ref, organization=organization.name)
        written.errors[row.number].append(("parent_ref", message))
        return None
    if row.external_ref not in works:
        # A new work: only the depth can be wrong (it has no descendants to make a cycle with).
        try:
            work_parent_validate(organization=organization, parent=parent)
        except ValidationFailed as invalid:
            written.errors[row.number].append(
                ("parent_ref", coded("upload.parent_refused", ref=row.parent_ref, detail=str(invalid.message))))
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
            written.errors[row.number].append(("parent_ref", coded(
                "upload.parent_move_refused", ref=row.parent_ref, detail=str(invalid.message), reason=str(reason))))
    if moved:
        # A move rewrites the lineage of everything under the moved work, some of which this
        # chunk may hold, and a refused move leaves its in-memory work half-changed.
        fresh = {pk: (parent_id, lineage) for pk, parent_id, lineage in Work.objects.filter(
            pk__in=[work.pk for work in works.values()]).values_list("pk", "parent_id", "lineage")}
        for work in works.values():
            work.parent_id, work.lineage = fresh[work.pk]
