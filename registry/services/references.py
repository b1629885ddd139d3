"""Content references: turning what people type (URLs, identifiers) into the indexed forms a check
looks up, and writing them — set-based, for one work (single registration) or a thousand (a bulk
upload chunk) with the same few queries."""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from django.db import connection, models
from django.utils import timezone
from django.utils.translation import gettext as _

from registry.exceptions import ValidationFailed
from registry.matching.fingerprints import phash_band_columns
from registry.matching.identifiers import InvalidIdentifier, parse_identifier
from registry.matching.urls import InvalidURL, is_pattern, normalize_pattern, normalize_url, url_host, url_key
from registry.models import ContentFile, PerceptualHash, WorkIdentifier, WorkURL


@dataclass(frozen=True)
class UrlReference:
    url: str
    host: str
    is_pattern: bool

    @property
    def url_hash(self) -> str:
        return url_key(self.url)


def parse_url_reference(raw: str) -> UrlReference:
    """Raise InvalidURL for anything that is neither a URL nor an RFC 9309 pattern."""
    raw = raw.strip()
    if is_pattern(raw):
        host, pattern = normalize_pattern(raw)
        return UrlReference(url=pattern, host=host, is_pattern=True)
    url = normalize_url(raw)
    return UrlReference(url=url, host=url_host(url), is_pattern=False)


def parse_references(
    *, urls: Iterable[str] = (), identifiers: Iterable[str] = ()
) -> tuple[list[UrlReference], list[tuple[str, str]]]:
    """Validate every URL and identifier; report all the bad ones at once, by field."""
    errors: dict[str, list[str]] = {}
    parsed_urls: dict[str, UrlReference] = {}
    for raw in urls:
        try:
            ref = parse_url_reference(raw)
        except InvalidURL as exc:
            errors.setdefault("urls", []).append(f"{raw!r}: {exc}")
        else:
            parsed_urls[ref.url] = ref
    parsed_identifiers: dict[tuple[str, str], None] = {}
    for raw in identifiers:
        try:
            parsed_identifiers[parse_identifier(raw)] = None
        except InvalidIdentifier as exc:
            errors.setdefault("identifiers", []).append(f"{raw!r}: {exc}")
    if errors:
        raise ValidationFailed(_("Some references are not valid."), fields=errors)
    return list(parsed_urls.values()), list(parsed_identifiers)


# --- set-based writes: single registration and bulk uploads alike ------------------------

WorkId = uuid.UUID


@dataclass(frozen=True)
class Content:
    """A file (or just its hashes) to attach to a work, fingerprinted and stored already."""

    sha256: str
    phash: int | None
    size: int | None = None
    media_type: str = ""
    width: int | None = None
    height: int | None = None
    stored_name: str = ""
    original_name: str = ""


@dataclass
class AddedReferences:
    """What a write added, kept in memory so that conflict detection need not read it back.

    The tuples are the shapes `conflicts_detect_references` compares: (sha256, work),
    (phash value, work), (scheme, value, work) and (exact url, host, work). URL patterns are
    left out on purpose: a pattern is no claim on one work (see conflicts).
    """

    files: list[tuple[str, WorkId]] = field(default_factory=list)
    hashes: list[tuple[int, WorkId]] = field(default_factory=list)
    identifiers: list[tuple[str, str, WorkId]] = field(default_factory=list)
    urls: list[tuple[str, str, WorkId]] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.files or self.hashes or self.identifiers or self.urls)

    def extend(self, other: AddedReferences) -> None:
        self.files += other.files
        self.hashes += other.hashes
        self.identifiers += other.identifiers
        self.urls += other.urls

    @property
    def work_ids(self) -> set[WorkId]:
        return {row[-1] for rows in (self.files, self.hashes, self.identifiers, self.urls) for row in rows}


def references_replace(
    *,
    urls: Mapping[WorkId, Sequence[UrlReference]] | None = None,
    identifiers: Mapping[WorkId, Sequence[tuple[str, str]]] | None = None,
    new_work_ids: Iterable[WorkId] = (),
) -> AddedReferences:
    """Make each given work's URL set and identifier set exactly the one given; a fixed number of queries.

    A work absent from a mapping keeps what it has. `new_work_ids` are works created in this
    transaction, which cannot have references yet: they are not read back. Call it inside the
    transaction that holds the works' row locks, so no other writer adds the same rows meanwhile.
    Returns what was added (not what was kept), for conflict detection.
    """
    added = AddedReferences()
    new_work_ids = set(new_work_ids)
    now = timezone.now()
    if urls:
        have: dict[WorkId, dict[str, int]] = defaultdict(dict)
        existing = [work_id for work_id in urls if work_id not in new_work_ids]
        if existing:
            for pk, work_id, url_hash in WorkURL.objects.filter(work_id__any=existing).values_list(
                "pk", "work_id", "url_hash"
            ):
                have[work_id][url_hash] = pk
        stale: list[int] = []
        rows: list[tuple[object, ...]] = []
        for work_id, refs in urls.items():
            wanted = {ref.url_hash: ref for ref in refs}
            stale += [pk for url_hash, pk in have[work_id].items() if url_hash not in wanted]
            for url_hash, ref in wanted.items():
                if url_hash not in have[work_id]:
                    rows.append((work_id, ref.url, ref.is_pattern, ref.host, url_hash, now))
                    if not ref.is_pattern:
                        added.urls.append((ref.url, ref.host, work_id))
        if stale:
            WorkURL.objects.filter(pk__any=stale).delete()
        copy_insert(WorkURL, ("work_id", "url", "is_pattern", "host", "url_hash", "created_at"), rows)
    if identifiers:
        have_ids: dict[WorkId, dict[tuple[str, str], int]] = defaultdict(dict)
        existing = [work_id for work_id in identifiers if work_id not in new_work_ids]
        if existing:
            for pk, work_id, scheme, value in WorkIdentifier.objects.filter(work_id__any=existing).values_list(
                "pk", "work_id", "scheme", "value"
            ):
                have_ids[work_id][(scheme, value)] = pk
        stale = []
        rows = []
        for work_id, keys in identifiers.items():
            wanted_keys = dict.fromkeys(keys)
            stale += [pk for key, pk in have_ids[work_id].items() if key not in wanted_keys]
            for scheme, value in wanted_keys:
                if (scheme, value) not in have_ids[work_id]:
                    rows.append((work_id, scheme, value, now))
                    added.identifiers.append((scheme, value, work_id))
        if stale:
            WorkIdentifier.objects.filter(pk__any=stale).delete()
        copy_insert(WorkIdentifier, ("work_id", "scheme", "value", "created_at"), rows)
    return added


def contents_add(*, contents: Sequence[tuple[WorkId, Content]]) -> AddedReferences:
    """Attach files (or their hashes) to works: added, never replaced; the same file twice is one row.

    A file registered before by its hashes alone gets its stored bytes filled in when they come.
    Each perceptual hash is stored with its band columns (`phash_band_columns`).
    """
    added = AddedReferences()
    if not contents:
        return added
    existing = {
        (content_file.work_id, content_file.sha256): content_file
        for content_file in ContentFile.objects.filter(
            work_id__any=list({work_id for work_id, _ in contents}),
            sha256__any=list({content.sha256 for _, content in contents}),
        )
    }
    new: list[ContentFile] = []
    filled: list[ContentFile] = []
    hashes: list[tuple[ContentFile, WorkId, int]] = []
    for work_id, content in contents:
        content_file = existing.get((work_id, content.sha256))
        if content_file is None:
            content_file = ContentFile(
                work_id=work_id, sha256=content.sha256, size=content.size, media_type=content.media_type,
                width=content.width, height=content.height, file=content.stored_name,
                original_name=content.original_name,
            )
            existing[(work_id, content.sha256)] = content_file
            new.append(content_file)
            added.files.append((content.sha256, work_id))
        elif content.stored_name and not content_file.file:
            # Registered by its hashes before; now the file itself has come.
            content_file.file = content.stored_name
            content_file.size, content_file.media_type = content.size, content.media_type
            content_file.width, content_file.height = content.width, content.height
            content_file.original_name = content.original_name
            filled.append(content_file)
        if content.phash is not None:
            hashes.append((content_file, work_id, content.phash))
            added.hashes.append((content.phash, work_id))
    # bulk_create, not COPY: the perceptual hashes below need the new files' ids.
    ContentFile.objects.bulk_create(new)
    if filled:
        ContentFile.objects.bulk_update(filled, ["file", "size", "media_type", "width", "height", "original_name"])
    PerceptualHash.objects.bulk_create(
        [
            PerceptualHash(content_file=content_file, work_id=work_id, source=PerceptualHash.Source.IMAGE,
                           value=value, **phash_band_columns(value))
            for content_file, work_id, value in hashes
        ],
        ignore_conflicts=True,
    )
    return added


def copy_insert(model: type[models.Model], columns: Sequence[str], rows: Sequence[Sequence[object]]) -> None:
    """Insert plain tuples (values in `columns` order, already in database form) into `model`'s table.

    For rows that cannot conflict (the caller holds the locks that make them new) and whose ids
    come from Python or the table's sequence: nothing is returned. On PostgreSQL this is COPY
    through psycopg's `Cursor.copy` — the one place Kyoka reaches past Django's cursor wrapper,
    because COPY has no Django API and bulk_create builds its SQL value by value, which was half
    of a bulk upload chunk's time. Elsewhere, one executemany.
    """
    if not rows:
        return
    table = model._meta.db_table
    quoted = ", ".join(connection.ops.quote_name(model._meta.get_field(name).column) for name in columns)
    # The raw psycopg cursor raises psycopg's own errors: translated, so that callers see
    # IntegrityError and DataError like from any other write.
    with connection.cursor() as cursor, connection.wrap_database_errors:
        if connection.vendor == "postgresql":
            with cursor.cursor.copy(f"COPY {connection.ops.quote_name(table)} ({quoted}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
        else:
            placeholders = ", ".join(["%s"] * len(columns))
            # Table and column names come from the model, never from input.
            statement = f"INSERT INTO {connection.ops.quote_name(table)} ({quoted}) VALUES ({placeholders})"  # noqa: S608
            cursor.executemany(statement, [_adapted(row) for row in rows])


def _adapted(row: Sequence[object]) -> list[object]:
    # SQLite stores UUIDs as 32 hex characters (what Django's UUIDField writes there).
    return [value.hex if isinstance(value, uuid.UUID) else value for value in row]
