"""Manifests, read as streams: CSV, a JSON array or NDJSON, one row at a time.

A million-row manifest never sits in memory: CSV and NDJSON are read line by line (each line
capped, so one endless line cannot exhaust memory either), a JSON array item by item with
ijson. The format is sniffed from the content, never taken from the file name.

Two kinds of trouble, kept apart:
- `ManifestRejected`: the file as a whole cannot be used (empty, not text, not UTF-8, broken
  JSON, a CSV header without external_ref or title). The upload fails and no row is written,
  which is why the service reads the whole manifest before it writes anything.
- `ManifestRow.problems`: one row cannot be used as read (a CSV row with the wrong number of
  cells, an NDJSON line that is not JSON, an item that is not an object, a NUL character).
  That row fails with the problem as its error; the other rows go on.
"""

from __future__ import annotations

import codecs
import csv
import io
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import BinaryIO

import ijson

from registry.matching.fingerprints import OCTET_STREAM, sniff_media_type

COLUMNS = (
    "external_ref", "title", "kind", "parent_ref", "identifiers", "urls", "file", "sha256", "phash",
    "description", "year", "creators",
)
REQUIRED_COLUMNS = ("external_ref", "title")
# One CSV line or NDJSON record, or one item of a JSON array: far beyond any real row, small
# enough to bound memory (a field's own limit, such as a description's, is checked per row).
MAX_LINE_CHARS = 1024 * 1024
MAX_ROWS = 5_000_000
# Lists and objects inside a row nest at most this deep (a row is an object of strings and lists).
MAX_ROW_DEPTH = 8

_HEAD_BYTES = 8192
_BINARY_BYTES = re.compile(rb"[\x00-\x08\x0e-\x1a\x1c-\x1f\x7f]")

Problem = tuple[str, str]  # (field, message); field "" when the row as a whole is at fault


class ManifestRejected(Exception):
    """The manifest as a whole cannot be used; `message` says why, for people."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


@dataclass(frozen=True)
class ManifestRow:
    """One data row: `number` counts rows from 1, not counting a CSV header or blank lines.

    `values` holds the known columns the row gives, as read: strings from CSV; from JSON also
    numbers, lists and nulls, which the service checks like any other input.
    """

    number: int
    values: dict[str, object]
    problems: tuple[Problem, ...] = ()


@dataclass(frozen=True)
class Manifest:
    format: str  # csv | json | ndjson
    rows: Iterator[ManifestRow]


def read_manifest(stream: BinaryIO) -> Manifest:
    """Sniff the format and return the rows as a lazy iterator.

    `stream` must be seekable. Raises ManifestRejected now for what the first bytes show, and
    later, from the iterator, for what only reading on shows (a bad byte on line 900,000).
    """
    head = stream.read(_HEAD_BYTES)
    manifest_format = _detect_format(head)
    stream.seek(0)
    if manifest_format == "csv":
        rows = _csv_rows(stream)
    elif manifest_format == "json":
        rows = _json_array_rows(stream)
    else:
        rows = _ndjson_rows(stream)
    return Manifest(format=manifest_format, rows=_at_most(MAX_ROWS, rows))


def column_name(raw: object) -> str:
    """"External Ref", "external-ref " and "external_ref" all name the same column."""
    return str(raw).strip().lower().replace(" ", "_").replace("-", "_")


# --- sniffing ----------------------------------------------------------------------------


def _detect_format(head: bytes) -> str:
    if not head:
        raise ManifestRejected("The manifest is empty.")
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        raise ManifestRejected("The manifest is UTF-16 text; save it as UTF-8 (with or without a BOM).")
    body = head.removeprefix(codecs.BOM_UTF8)
    media_type = sniff_media_type(body)
    if media_type not in ("text/plain", OCTET_STREAM):
        raise ManifestRejected(
            f"The manifest is not CSV or JSON text: its content is {media_type}. "
            "Export the catalog as CSV (UTF-8), a JSON array or NDJSON."
        )
    if _BINARY_BYTES.search(body):
        raise ManifestRejected("The manifest is a binary file, not CSV or JSON text.")
    try:
        codecs.getincrementaldecoder("utf-8")().decode(body, final=False)
    except UnicodeDecodeError as error:
        line = body[: error.start].count(b"\n") + 1
        raise ManifestRejected(_not_utf8(error, f"on line {line}")) from None
    stripped = body.lstrip()
    if stripped.startswith(b"["):
        return "json"
    if stripped.startswith(b"{"):
        return "ndjson"
    return "csv"


def _not_utf8(error: UnicodeDecodeError, where: str) -> str:
    bad = error.object[error.start : error.start + 1]
    hint = " It looks like Shift_JIS." if _looks_like_shift_jis(bytes(error.object)) else ""
    return (
        f"The manifest is not UTF-8 text (byte 0x{bad.hex()} {where}).{hint} "
        "Save it as UTF-8 and upload it again."
    )


def _looks_like_shift_jis(sample: bytes) -> bool:
    # The sample may end inside a two-byte character: try it whole and one byte shorter.
    for candidate in (sample, sample[:-1]):
        try:
            candidate.decode("cp932")
        except UnicodeDecodeError:
            continue
        return True
    return False


def _at_most(limit: int, rows: Iterator[ManifestRow]) -> Iterator[ManifestRow]:
    for row in rows:
        if row.number > limit:
            raise ManifestRejected(f"The manifest has more than {limit:,} rows; split it into several uploads.")
        yield row


# --- CSV ---------------------------------------------------------------------------------


def _csv_rows(stream: BinaryIO) -> Iterator[ManifestRow]:
    # utf-8-sig drops a BOM if there is one; newline="" lets csv see CRLF and quoted newlines.
    text = io.TextIOWrapper(stream, encoding="utf-8-sig", newline="")
    lines = _BoundedLines(text)
    # strict: a quote left open would otherwise swallow every line after it into one cell.
    reader = csv.reader(lines, strict=True)
    header = _next_record(reader, lines)
    if header is None:
        raise ManifestRejected("The manifest has no header row.")
    names = [column_name(cell) for cell in header]
    known = {name for name in names if name in COLUMNS}
    for name in known:
        if names.count(name) > 1:
            raise ManifestRejected(f"The header names the column '{name}' more than once.")
    missing = [name for name in REQUIRED_COLUMNS if name not in known]
    if missing:
        shown = ", ".join(repr(cell[:40]) for cell in header[:20]) or "nothing"
        raise ManifestRejected(
            f"The header row has no {' and no '.join(missing)} column: every manifest needs "
            f"external_ref and title. The header has: {shown}."
        )
    positions = [(index, name) for index, name in enumerate(names) if name in COLUMNS]
    return _csv_data_rows(reader, lines, positions, len(header))


def _csv_data_rows(
    reader: Iterator[list[str]], lines: _BoundedLines, positions: list[tuple[int, str]], width: int
) -> Iterator[ManifestRow]:
    number = 0
    while (record := _next_record(reader, lines)) is not None:
        number += 1
        values = {name: record[index] for index, name in positions if index < len(record)}
        if len(record) != width:
            # Keep only the ref, so the error report can name the work; the cells are misaligned.
            ref = {"external_ref": values["external_ref"]} if "external_ref" in values else {}
            yield ManifestRow(number, ref, (("", (
                f"The row has {len(record)} cells but the header has {width} columns "
                "(a quote left open, or a stray separator?)."
            )),))
            continue
        yield ManifestRow(number, values, _nul_problems(values))


def _next_record(reader: Iterator[list[str]], lines: _BoundedLines) -> list[str] | None:
    """The next record that is not blank, or None at the end."""
    while True:
        try:
            record = next(reader)
        except StopIteration:
            return None
        except UnicodeDecodeError as error:
            raise ManifestRejected(_not_utf8(error, f"near line {lines.count + 1}")) from None
        except csv.Error as error:
            detail = "a quoted cell is never closed" if str(error) == "unexpected end of data" else str(error)
            raise ManifestRejected(f"The CSV cannot be read near line {lines.count}: {detail}.") from None
        if any(cell.strip() for cell in record):
            return record


class _BoundedLines:
    """Lines of a text stream, each at most MAX_LINE_CHARS: csv.reader on a plain file would
    read an endless line whole before its own field limit could refuse it."""

    def __init__(self, text: io.TextIOBase) -> None:
        self.text = text
        self.count = 0

    def __iter__(self) -> _BoundedLines:
        return self

    def __next__(self) -> str:
        line = self.text.readline(MAX_LINE_CHARS + 1)
        if not line:
            raise StopIteration
        self.count += 1
        if len(line) > MAX_LINE_CHARS:
            raise ManifestRejected(f"Line {self.count} is longer than {MAX_LINE_CHARS:,} characters.")
        return line


# --- JSON --------------------------------------------------------------------------------


def _skip_bom(stream: BinaryIO) -> None:
    if stream.read(len(codecs.BOM_UTF8)) != codecs.BOM_UTF8:
        stream.seek(0)


class _ItemBoundedStream:
    """Reads for ijson, refusing once one array item has taken more than MAX_LINE_CHARS bytes.

    ijson builds each item whole (a 150 MB string value included) before it yields it; counting
    the bytes read since the last item was yielded stops that while reading, not after.
    """

    def __init__(self, stream: BinaryIO) -> None:
        self.stream = stream
        self.since_item = 0
        self.rows = 0

    def read(self, size: int = -1) -> bytes:
        if size == 0:  # ijson asks for nothing to learn whether the stream gives bytes
            return b""
        data = self.stream.read(size if size > 0 else 64 * 1024)
        self.since_item += len(data)
        # One read of slack: ijson reads ahead in chunks, so a read may hold the end of one item
        # and the start of the next.
        if self.since_item > MAX_LINE_CHARS + 64 * 1024:
            raise ManifestRejected(
                f"Row {self.rows + 1} of the JSON array is larger than {MAX_LINE_CHARS:,} bytes."
            )
        return data

    def item_done(self) -> None:
        self.rows += 1
        self.since_item = 0


def _json_array_rows(stream: BinaryIO) -> Iterator[ManifestRow]:
    _skip_bom(stream)
    bounded = _ItemBoundedStream(stream)
    number = 0
    try:
        for item in ijson.items(bounded, "item", use_float=True):
            number += 1
            bounded.item_done()
            yield _object_row(number, item)
    except ijson.JSONError as error:
        # yajl's message ends with a picture of the bytes around the error; its first line says it.
        detail = str(error).splitlines()[0] if str(error) else "broken JSON"
        if "UTF8" in detail:
            raise ManifestRejected(
                f"The manifest is not UTF-8 text (after row {number}). Save it as UTF-8 and upload it again."
            ) from None
        raise ManifestRejected(f"The manifest is not valid JSON after row {number}: {detail}.") from None


def _ndjson_rows(stream: BinaryIO) -> Iterator[ManifestRow]:
    _skip_bom(stream)
    line_number = 0
    number = 0
    while raw := stream.readline(MAX_LINE_CHARS + 1):
        line_number += 1
        if len(raw) > MAX_LINE_CHARS:
            raise ManifestRejected(f"Line {line_number} is longer than {MAX_LINE_CHARS:,} bytes.")
        try:
            line = raw.decode("utf-8")
        except UnicodeDecodeError as error:
            raise ManifestRejected(_not_utf8(error, f"on line {line_number}")) from None
        if not line.strip():
            continue
        number += 1
        try:
            item = json.loads(line.strip())
        except RecursionError:
            yield ManifestRow(number, {}, (("", f"Line {line_number} nests lists or objects too deeply."),))
            continue
        except ValueError as error:
            message = f"{error.msg} (column {error.colno})" if isinstance(error, json.JSONDecodeError) else str(error)
            if number == 1:
                raise ManifestRejected(
                    "The manifest starts with '{' but its first line is not a whole JSON object "
                    f"({message}): send a JSON array, or NDJSON with one object per line."
                ) from None
            yield ManifestRow(number, {}, (("", f"Line {line_number} is not valid JSON: {message}."),))
            continue
        yield _object_row(number, item)


def _depth(value: object) -> int:
    """How deeply lists and objects nest in a row's value (iteratively: no recursion to exhaust)."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        current, depth = stack.pop()
        if isinstance(current, dict | list):
            deepest = max(deepest, depth)
            if depth <= MAX_ROW_DEPTH:
                children = current.values() if isinstance(current, dict) else current
                stack.extend((child, depth + 1) for child in children)
    return deepest


def _object_row(number: int, item: object) -> ManifestRow:
    if isinstance(item, dict | list) and _depth(item) > MAX_ROW_DEPTH:
        return ManifestRow(number, {}, (("", f"The row nests lists or objects more than {MAX_ROW_DEPTH} deep."),))
    if not isinstance(item, dict):
        kind = type(item).__name__ if item is not None else "null"
        if number == 1:
            raise ManifestRejected(f"The manifest's rows must be JSON objects; the first one is a {kind}.")
        return ManifestRow(number, {}, (("", f"The row is a JSON {kind}, not an object."),))
    values: dict[str, object] = {}
    for key, value in item.items():
        name = column_name(key)
        if name in COLUMNS:
            values[name] = value
    if number == 1:
        missing = [name for name in REQUIRED_COLUMNS if name not in values]
        if missing:
            raise ManifestRejected(
                f"The first row has no {' and no '.join(missing)} key: every row needs external_ref and title."
            )
    return ManifestRow(number, values, _nul_problems(values))


def _nul_problems(values: dict[str, object]) -> tuple[Problem, ...]:
    # PostgreSQL cannot store NUL in text; a row carrying one fails here, not in the database.
    found = []
    for name, value in values.items():
        parts = value if isinstance(value, list) else [value]
        if any(isinstance(part, str) and "\x00" in part for part in parts):
            found.append((name, "Contains a NUL character."))
    return tuple(found)
