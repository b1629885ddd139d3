"""One manifest row, before the database: parsing, validation and its file.

Nothing here reads or writes the database. A row is checked by the same rules as single
registration (`work_fields_validate`, `parse_references`), so an upload cannot register what
the API would refuse; its file is unpacked from the archive, fingerprinted and stored under its
SHA-256 before the chunk's transaction (a row never points at bytes that are not there).

List cells (`urls`, `identifiers`) have one grammar: items separated by `;` (LIST_SEPARATOR),
or, in JSON manifests, a list of strings. A comma is part of an item, never a separator, so a
URL with a comma in its path round-trips like it does through the API and the portal's forms.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import IO, Any

from django.core.files import File
from django.core.files.storage import default_storage

from registry.exceptions import ValidationFailed
from registry.matching.fingerprints import FileRejected, fingerprint_file, phash_from_hex
from registry.message_codes import coded
from registry.models import ContentFile, Work
from registry.models.works import MAX_WORK_DEPTH
from registry.services.references import Content, UrlReference, parse_references
from registry.services.works import work_fields_validate
from registry.uploads.archives import EntryRejected, SafeArchive, member_name
from registry.uploads.index import IndexedRow
from registry.uploads.manifests import Problem

MAX_REFERENCES_PER_ROW = 1000
LIST_SEPARATOR = ";"
_SHA256 = re.compile(r"[0-9a-fA-F]{64}")


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


def prepare_row(row: IndexedRow, archive: SafeArchive | None) -> PreparedRow:
    """Parse and check one row as read from the index; unpack, fingerprint and store its file."""
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
        errors.append(("external_ref", coded("upload.duplicate_ref", ref=row.external_ref, row=row.first_number)))
    if "parent_ref" in values and values["parent_ref"] not in (None, "") and not row.parent_ref:
        errors.append(("parent_ref", coded("upload.parent_must_be_text")))
    elif row.hierarchy_broken:
        errors.append(("parent_ref", coded("upload.hierarchy_broken", ref=row.parent_ref, depth=MAX_WORK_DEPTH)))
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
                errors.append((name, coded("upload.must_be_text")))
            else:
                fields[name] = text.strip()
    if "title" not in values:
        errors.append(("title", coded("upload.required")))
    if "kind" in values:
        kind = _text(values["kind"])
        if kind is None:
            errors.append(("kind", coded("upload.must_be_text")))
        else:
            fields["kind"] = kind.strip().lower() or Work.Kind.OTHER
    if "year" in values:
        year = _year(values["year"])
        if year is False:
            errors.append(("year", coded("upload.not_a_year", value=repr(str(values["year"])[:20]))))
        else:
            fields["year"] = year
    raw_ref = values.get("external_ref")
    if not prepared.external_ref and raw_ref not in (None, "") and _text(raw_ref) is None:
        errors.append(("external_ref", coded("upload.must_be_text")))
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
        errors.append((name, coded("upload.list_grammar", separator=LIST_SEPARATOR)))
        return []
    items = [item.strip() for item in items if item.strip()]
    if len(items) > MAX_REFERENCES_PER_ROW:
        errors.append((name, coded("upload.too_many_references", limit=MAX_REFERENCES_PER_ROW)))
        return []
    return items


def _content_columns(
    values: dict[str, object], archive: SafeArchive | None, errors: list[Problem]
) -> tuple[str, str, int | None]:
    texts = {}
    for name in ("file", "sha256", "phash"):
        text = _text(values.get(name))
        if text is None:
            errors.append((name, coded("upload.must_be_text")))
            text = ""
        texts[name] = text.strip()
    file_name, sha256, phash_text = texts["file"], texts["sha256"].lower(), texts["phash"]
    if sha256 and not _SHA256.fullmatch(sha256):
        errors.append(("sha256", coded("upload.not_a_sha256")))
    phash = None
    if file_name:
        try:
            file_name = member_name(file_name)
        except ValueError as unsafe:
            errors.append(("file", f"'{texts['file']}' is not a path inside the archive: it {unsafe}."))
        if archive is None:
            errors.append(("file", coded("upload.no_archive")))
        elif not errors and file_name not in archive:
            errors.append(("file", coded("upload.not_in_archive", name=file_name)))
    elif phash_text:
        try:
            phash = phash_from_hex(phash_text)
        except ValueError as invalid:
            errors.append(("phash", str(invalid)))
        if not sha256:
            errors.append(("phash", coded("upload.phash_needs_sha256")))
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
            errors.append(("sha256", coded("upload.sha256_mismatch", name=name, sha256=fingerprint.sha256)))
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
