"""Reading manifests and archives, and ordering rows: no database involved."""

from __future__ import annotations

import io
import tracemalloc
import zipfile

import pytest

from registry.uploads import manifests
from registry.uploads.archives import ArchiveRejected, EntryRejected, SafeArchive, member_name
from registry.uploads.index import ManifestIndex
from registry.uploads.manifests import ManifestRejected, ManifestRow, read_manifest
from tests.registry.uploads.conftest import csv_manifest, json_manifest, ndjson_manifest, zip_archive


def rows_of(data: bytes) -> list[ManifestRow]:
    return list(read_manifest(io.BytesIO(data)).rows)


# --- manifests ---------------------------------------------------------------------------


@pytest.mark.parametrize("newline", ["\r\n", "\n"])
@pytest.mark.parametrize("bom", [True, False])
def test_csv_with_or_without_bom_crlf_or_lf(bom, newline):
    data = csv_manifest([{"external_ref": "A", "title": "Two\nlines, quoted"}, {"external_ref": "B", "title": "b"}],
                        bom=bom, newline=newline)
    assert [(row.number, row.values) for row in rows_of(data)] == [
        (1, {"external_ref": "A", "title": "Two\nlines, quoted"}), (2, {"external_ref": "B", "title": "b"}),
    ]


def test_the_format_is_sniffed_not_taken_from_the_name():
    rows = [{"external_ref": "A", "title": "a"}]
    assert read_manifest(io.BytesIO(json_manifest(rows))).format == "json"
    assert read_manifest(io.BytesIO(b"\xef\xbb\xbf  " + json_manifest(rows))).format == "json"
    assert read_manifest(io.BytesIO(ndjson_manifest(rows))).format == "ndjson"
    assert read_manifest(io.BytesIO(csv_manifest(rows))).format == "csv"


def test_header_names_are_forgiving_and_unknown_columns_ignored():
    [row] = rows_of(b"External Ref,TITLE,notes,Parent-Ref\r\nA,a,ignored,P\r\n")
    assert row.values == {"external_ref": "A", "title": "a", "parent_ref": "P"}


def test_blank_lines_are_not_rows():
    assert [row.number for row in rows_of(b"external_ref,title\r\n\r\nA,a\r\n,\r\n\r\nB,b\r\n")] == [1, 2]


def test_ndjson_bad_line_is_a_row_problem_but_a_bad_first_line_rejects_the_file():
    rows = rows_of(b'{"external_ref": "A", "title": "a"}\n\n{"external_ref": "B", "ti\n[1]\n')
    assert [(row.number, row.problems) for row in rows[1:]] == [
        (2, (("", "Line 3 is not valid JSON: Unterminated string starting at (column 23)."),)),
        (3, (("", "The row is a JSON list, not an object."),)),
    ]
    with pytest.raises(ManifestRejected, match="first line is not a whole JSON object"):
        rows_of(b'{"external_ref": "A",\n "title": "a"}\n')


def test_a_line_longer_than_the_cap_rejects_the_file(monkeypatch):
    monkeypatch.setattr(manifests, "MAX_LINE_CHARS", 100)
    with pytest.raises(ManifestRejected, match="Line 2 is longer than 100"):
        rows_of(b"external_ref,title\r\nA," + b"x" * 200 + b"\r\n")


def test_more_rows_than_allowed_rejects_the_file(monkeypatch):
    monkeypatch.setattr(manifests, "MAX_ROWS", 2)
    with pytest.raises(ManifestRejected, match="more than 2 rows"):
        rows_of(csv_manifest([{"external_ref": str(n), "title": "t"} for n in range(3)]))


def test_an_xlsx_is_not_a_manifest():
    xlsx = zip_archive({"[Content_Types].xml": b"<xml/>", "xl/workbook.xml": b"<workbook/>"})
    with pytest.raises(ManifestRejected, match="application/zip"):
        read_manifest(io.BytesIO(xlsx))


def test_rows_are_read_as_a_stream():
    """A 200,000-row CSV is read holding only a row or so at a time, not the file."""

    def big_csv():
        yield b"external_ref,title,urls\r\n"
        for n in range(200_000):
            yield f"REF-{n:07d},Title {n},https://cdn.example/{n}.png\r\n".encode()

    data = b"".join(big_csv())
    stream = io.BytesIO(data)
    tracemalloc.start()
    count = sum(1 for _ in read_manifest(stream).rows)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert count == 200_000
    assert peak < len(data) / 10, f"peak {peak:,} bytes for a {len(data):,}-byte manifest"


# --- archives ----------------------------------------------------------------------------


@pytest.mark.parametrize(("raw", "expected"), [
    ("cels/a.png", "cels/a.png"), ("./cels//a.png", "cels/a.png"), ("cels\\a.png", "cels/a.png"),
])
def test_member_names_are_normalised(raw, expected):
    assert member_name(raw) == expected


@pytest.mark.parametrize("raw", ["../a.png", "a/../../b", "/etc/passwd", "\\\\server\\share", "C:\\x.png", "", "a\0b"])
def test_member_names_that_escape_are_refused(raw):
    with pytest.raises(ValueError):
        member_name(raw)


def test_an_entry_is_read_into_a_spool():
    with SafeArchive(io.BytesIO(zip_archive({"a/b.png": b"bytes"}))) as archive:
        assert "a/b.png" in archive and "b.png" not in archive
        with archive.open_entry("a/b.png") as spool:
            assert spool.read() == b"bytes"
        with pytest.raises(EntryRejected, match="no file 'nope'"):
            archive.open_entry("nope")


def test_an_encrypted_entry_is_refused():
    data = bytearray(zip_archive({"secret.png": b"x" * 100}, compression=zipfile.ZIP_STORED))
    # Set the "encrypted" bit in the local header and the central directory entry.
    for signature, offset in ((b"PK\x03\x04", 6), (b"PK\x01\x02", 8)):
        position = data.index(signature) + offset
        data[position] |= 0x1
    with SafeArchive(io.BytesIO(bytes(data))) as archive, pytest.raises(EntryRejected, match="encrypted"):
        archive.open_entry("secret.png")


def test_duplicate_entry_names_refuse_the_archive():
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("a.png", b"1")
        archive.writestr("./a.png", b"2")
    with pytest.raises(ArchiveRejected, match="two entries named 'a\\.png'"):
        SafeArchive(io.BytesIO(buffer.getvalue()))


# --- processing order --------------------------------------------------------------------


def index_of(*rows: dict) -> ManifestIndex:
    return ManifestIndex.build(ManifestRow(n, row) for n, row in enumerate(rows, start=1))


def test_parents_come_before_children_whatever_the_manifest_order():
    with index_of(
        {"external_ref": "CUT", "parent_ref": "EP"},
        {"external_ref": "EP", "parent_ref": "SEASON"},
        {"external_ref": "OTHER"},
        {"external_ref": "SEASON", "parent_ref": "ELSEWHERE"},  # registered before, or missing
    ) as index:
        order = []
        position = 0
        while chunk := list(index.rows_after(position)):
            order.append([(row.external_ref, row.depth) for row in chunk])
            position = chunk[-1].position
    # One depth per chunk, manifest order within a depth.
    assert order == [[("OTHER", 0), ("SEASON", 0)], [("EP", 1)], [("CUT", 2)]]


def test_duplicates_and_cycles_are_marked():
    with index_of(
        {"external_ref": "A"}, {"external_ref": " A "}, {"external_ref": "X", "parent_ref": "Y"},
        {"external_ref": "Y", "parent_ref": "X"}, {"external_ref": "C", "parent_ref": "A"},
    ) as index:
        rows = {row.number: row for row in index.rows_after(0)}
        rows.update({row.number: row for row in index.rows_after(2)})
        rows.update({row.number: row for row in index.rows_after(3)})
    assert rows[2].first_number == 1 and rows[1].first_number is None
    assert rows[3].hierarchy_broken and rows[4].hierarchy_broken
    assert (rows[5].parent_number, rows[5].depth) == (1, 1)


def test_too_deep_a_chain_within_the_manifest_is_marked():
    chain = [{"external_ref": "L0"}] + [{"external_ref": f"L{n}", "parent_ref": f"L{n - 1}"} for n in range(1, 10)]
    with index_of(*chain) as index:
        depths = {}
        position = 0
        while chunk := list(index.rows_after(position)):
            depths.update({row.external_ref: (row.depth, row.hierarchy_broken) for row in chunk})
            position = chunk[-1].position
    assert depths["L7"] == (7, False)
    assert depths["L8"][1] and depths["L9"][1]


def test_a_scratch_index_left_by_a_killed_delivery_is_removed_by_the_next(tmp_path):
    leftover = tmp_path / "kyoka-upload-abc-x1y2"
    leftover.mkdir()
    (leftover / "manifest.sqlite3").write_bytes(b"stale")
    other = tmp_path / "kyoka-upload-abd-x1y2"
    other.mkdir()
    with ManifestIndex.build([ManifestRow(1, {"external_ref": "A"})], label="abc", directory=str(tmp_path)) as index:
        assert index.total_rows == 1
        assert not leftover.exists() and other.exists()
    assert [path.name for path in tmp_path.iterdir()] == ["kyoka-upload-abd-x1y2"]
