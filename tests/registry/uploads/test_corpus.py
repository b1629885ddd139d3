"""Bad input, each with a clear error and nothing half-written.

Manifests come from corpus/ (see its README); archives and images that should not live in the
repository (bombs, zip-slip entries, links) are built here.
"""

from __future__ import annotations

import hashlib
import io
import stat
import zipfile
from pathlib import Path

import pytest
from django.conf import settings
from PIL import Image

from registry.matching.fingerprints import fingerprint_file, phash_bands
from registry.models import BulkUpload, ContentFile, PerceptualHash, Work
from registry.uploads import archives
from tests.factories import make_image_bytes
from tests.registry.uploads.conftest import CORPUS, catalog_rows, csv_manifest, zip_archive

pytestmark = pytest.mark.django_db


def errors_of(upload: BulkUpload) -> list[tuple[int, str, str, str]]:
    return list(upload.errors.order_by("row", "pk").values_list("row", "external_ref", "field", "message"))


def assert_failed_whole(upload: BulkUpload, field: str, *phrases: str) -> None:
    assert upload.status == BulkUpload.Status.FAILED
    for phrase in phrases:
        assert phrase in upload.error, upload.error
    assert errors_of(upload) == [(0, "", field, upload.error)]
    assert upload.processed_rows == 0 and upload.committed_through_row == 0
    assert not Work.objects.exists() and not ContentFile.objects.exists()


@pytest.fixture(autouse=True)
def own_media_root(settings, tmp_path):
    settings.MEDIA_ROOT = str(tmp_path / "media")


def media_files() -> list[Path]:
    return [path for path in Path(settings.MEDIA_ROOT, "content").rglob("*") if path.is_file()]


# --- the manifest as a whole ---------------------------------------------------------------

WHOLE_FAILURES = [
    ("shift_jis.csv", ("not UTF-8", "Shift_JIS", "line 2")),
    ("utf16.csv", ("UTF-16",)),
    ("missing_title.csv", ("no title column", "'external_ref', 'name', 'kind'")),
    ("missing_both.csv", ("no external_ref and no title column",)),
    ("empty.csv", ("The manifest is empty.",)),
    ("header_only.csv", ("The manifest has no rows.",)),
    ("truncated.json", ("not valid JSON after row 1", "premature EOF")),
    ("not_objects.json", ("must be JSON objects", "list")),
    ("one_object.json", ("first line is not a whole JSON object",)),
    ("wrong_cells.csv", ("near line 4", "a quoted cell is never closed")),
]


@pytest.mark.parametrize(("name", "phrases"), WHOLE_FAILURES)
def test_a_manifest_that_cannot_be_used_fails_the_upload_with_nothing_written(upload_and_run, name, phrases):
    upload = upload_and_run((CORPUS / name).read_bytes(), name=name)
    assert_failed_whole(upload, "manifest", *phrases)


def test_an_unreadable_file_fails_the_upload(upload_and_run, png_file):
    upload = upload_and_run(png_file().getvalue(), name="catalog.csv")
    assert_failed_whole(upload, "manifest", "not CSV or JSON text", "image/png")


def test_a_binary_file_fails_the_upload(upload_and_run):
    upload = upload_and_run(b"external_ref,title\r\n\x00\x01\x02garbage", name="catalog.csv")
    assert_failed_whole(upload, "manifest", "binary file")


def test_a_bad_byte_deep_in_the_file_fails_it_before_any_row_is_written(upload_and_run):
    manifest = csv_manifest(catalog_rows(3000)) + "CEL-X,caf\u00e9\r\n".encode("latin-1")
    upload = upload_and_run(manifest)
    assert_failed_whole(upload, "manifest", "not UTF-8", "byte 0xe9")


# --- rows --------------------------------------------------------------------------------


def test_duplicate_refs_in_one_file(upload_and_run):
    upload = upload_and_run((CORPUS / "duplicate_refs.csv").read_bytes())
    assert errors_of(upload) == [(3, "AOZ-001", "external_ref",
                                  "'AOZ-001' already appears on row 1; an external_ref may appear only once in a "
                                  "manifest.")]
    assert sorted(Work.objects.values_list("external_ref", "title")) == [("AOZ-001", "First"), ("AOZ-002", "Second")]


def test_invalid_identifiers_and_urls(upload_and_run):
    upload = upload_and_run((CORPUS / "invalid_references.csv").read_bytes())
    errors = errors_of(upload)
    assert [(row, ref, field) for row, ref, field, _ in errors] == [
        (2, "AOZ-002", "identifiers"), (3, "AOZ-003", "urls"), (4, "AOZ-004", "identifiers"),
    ]
    assert "'isbn:978-0-306-40615-8'" in errors[0][3]
    assert "'javascript:alert(1)'" in errors[1][3]
    assert "'foo:123'" in errors[2][3]
    assert list(Work.objects.values_list("external_ref", flat=True)) == ["AOZ-001"]
    assert (upload.status, upload.created_count, upload.failed_count) == ("done", 1, 3)


def test_excel_csv_with_bom_crlf_and_quoted_newlines(upload_and_run):
    upload = upload_and_run((CORPUS / "excel_quoted.csv").read_bytes())
    assert (upload.status, upload.created_count, upload.failed_count) == ("done", 2, 0), errors_of(upload)
    work = Work.objects.get(external_ref="AOZ-001")
    assert (work.title, work.description, work.creators) == ("Sky, again", 'Line one\r\nLine two "quoted"', "Aoi")
    assert Work.objects.get(external_ref="AOZ-002").title == "夏"


def test_a_row_with_extra_cells_fails_alone(upload_and_run):
    upload = upload_and_run((CORPUS / "extra_cells.csv").read_bytes())
    assert [(row, ref, field) for row, ref, field, _ in errors_of(upload)] == [(2, "B", "")]
    assert sorted(Work.objects.values_list("external_ref", flat=True)) == ["A", "C"]


def test_a_nul_character_fails_its_row(upload_and_run):
    manifest = b'[{"external_ref": "A", "title": "nul \\u0000 here"}, {"external_ref": "B", "title": "b"}]'
    upload = upload_and_run(manifest, name="x.json")
    assert errors_of(upload) == [(1, "A", "title", "Contains a NUL character.")]
    assert list(Work.objects.values_list("external_ref", flat=True)) == ["B"]


# --- archives ----------------------------------------------------------------------------


def file_rows(*names: str) -> bytes:
    return csv_manifest([{"external_ref": f"F{n}", "title": f"File {n}", "kind": "image", "file": name}
                         for n, name in enumerate(names, start=1)])


def test_files_from_the_archive_are_fingerprinted_and_stored(upload_and_run):
    images = {f"cels/{n:03d}.png": make_image_bytes(n) for n in range(1, 4)}
    images["cels/004.jpg"] = make_image_bytes(4, fmt="JPEG")
    upload = upload_and_run(file_rows(*images), zip_archive(images))
    assert (upload.status, upload.created_count, upload.failed_count) == ("done", 4, 0), errors_of(upload)
    for n, (name, data) in enumerate(images.items(), start=1):
        content_file = ContentFile.objects.get(work__external_ref=f"F{n}")
        expected = fingerprint_file(io.BytesIO(data), filename=name)
        assert (content_file.sha256, content_file.size, content_file.media_type) == (
            hashlib.sha256(data).hexdigest(), len(data), expected.media_type)
        assert (content_file.width, content_file.height, content_file.original_name) == (320, 240, name)
        assert content_file.file.read() == data
        assert Path(content_file.file.path).is_relative_to(settings.MEDIA_ROOT)
        phash = PerceptualHash.objects.get(content_file=content_file)
        assert phash.value == expected.phash and phash.work_id == content_file.work_id
        assert (phash.band0, phash.band1, phash.band2) == phash_bands(expected.phash)


def test_hashes_without_a_file_register_a_content_reference(upload_and_run):
    data = make_image_bytes(9)
    fingerprint = fingerprint_file(io.BytesIO(data))
    upload = upload_and_run(csv_manifest([
        {"external_ref": "H1", "title": "hashes", "sha256": fingerprint.sha256.upper(),
         "phash": f"{fingerprint.phash & (2**64 - 1):016x}"},
        {"external_ref": "H2", "title": "bad", "sha256": "abc", "phash": "xyz"},
        {"external_ref": "H3", "title": "phash alone", "phash": "c3a1f0e07c3c1e0f"},
    ]))
    content_file = ContentFile.objects.get(work__external_ref="H1")
    assert (content_file.sha256, content_file.file.name) == (fingerprint.sha256, "")
    assert PerceptualHash.objects.get(content_file=content_file).value == fingerprint.phash
    assert {(row, field) for row, _, field, _ in errors_of(upload)} == {(2, "sha256"), (2, "phash"), (3, "phash")}


def test_a_file_the_archive_does_not_hold(upload_and_run):
    upload = upload_and_run(file_rows("cels/missing.png"), zip_archive({"cels/other.png": make_image_bytes(1)}))
    assert errors_of(upload) == [(1, "F1", "file", "The archive has no file 'cels/missing.png'.")]


def test_a_file_named_without_an_archive(upload_and_run):
    upload = upload_and_run(file_rows("cels/001.png"))
    assert errors_of(upload) == [(1, "F1", "file", "Names a file, but the upload has no archive.")]


def test_a_file_path_that_climbs_out_fails_its_row(upload_and_run):
    upload = upload_and_run(file_rows("../secret.png", "/etc/passwd"), zip_archive({"a.png": make_image_bytes(1)}))
    assert [(row, field) for row, _, field, _ in errors_of(upload)] == [(1, "file"), (2, "file")]
    assert "climbs out of the archive" in errors_of(upload)[0][3]
    assert "absolute path" in errors_of(upload)[1][3]


def test_a_text_file_named_jpg_is_refused_on_its_row(upload_and_run):
    files = {"cels/real.png": make_image_bytes(1), "cels/fake.jpg": b"Just some text, honestly.\n"}
    upload = upload_and_run(file_rows("cels/real.png", "cels/fake.jpg"), zip_archive(files))
    assert [(row, field) for row, _, field, _ in errors_of(upload)] == [(2, "file")]
    assert "text/plain" in errors_of(upload)[0][3] and "image/jpeg" in errors_of(upload)[0][3]
    assert list(Work.objects.values_list("external_ref", flat=True)) == ["F1"]
    assert len(media_files()) == 1


def test_an_empty_file_is_refused_on_its_row(upload_and_run):
    upload = upload_and_run(file_rows("cels/empty.png"), zip_archive({"cels/empty.png": b""}))
    assert errors_of(upload) == [(1, "F1", "file", "'cels/empty.png': The file is empty.")]
    assert not Work.objects.exists()


def test_a_decompression_bomb_image_is_refused_on_its_row(upload_and_run):
    bomb = io.BytesIO()
    Image.new("1", (10_000, 10_000)).save(bomb, format="PNG")  # 100 megapixels in a few kilobytes
    upload = upload_and_run(file_rows("cels/bomb.png"), zip_archive({"cels/bomb.png": bomb.getvalue()}))
    [(row, ref, field, message)] = errors_of(upload)
    assert (row, ref, field) == (1, "F1", "file") and "decompression bomb" in message
    assert not Work.objects.exists() and not media_files()


def test_a_zip_bomb_entry_is_refused_before_it_is_inflated(upload_and_run):
    files = {"cels/bomb.png": b"\0" * (20 * 1024 * 1024), "cels/ok.png": make_image_bytes(1)}
    upload = upload_and_run(file_rows("cels/bomb.png", "cels/ok.png"), zip_archive(files))
    [(row, _, field, message)] = errors_of(upload)
    assert (row, field) == (1, "file") and "zip bomb" in message and "inflates" in message
    assert list(Work.objects.values_list("external_ref", flat=True)) == ["F2"]


def test_an_archive_too_large_unpacked_fails_the_upload(upload_and_run, monkeypatch):
    files = {f"cels/{n}.png": make_image_bytes(n) for n in range(1, 6)}
    monkeypatch.setattr(archives, "MAX_TOTAL_BYTES", sum(map(len, files.values())) - 1)
    upload = upload_and_run(file_rows(*files), zip_archive(files))
    assert_failed_whole(upload, "archive", "add up to more than", "when unpacked")


def test_an_archive_with_too_many_entries_fails_the_upload(upload_and_run, monkeypatch):
    monkeypatch.setattr(archives, "MAX_ENTRIES", 3)
    files = {f"cels/{n}.png": b"x" for n in range(4)}
    upload = upload_and_run(file_rows("cels/0.png"), zip_archive(files))
    assert_failed_whole(upload, "archive", "4 entries", "at most 3")


@pytest.mark.parametrize(("entry", "phrase"), [
    ("../../etc/cron.d/evil", "climbs out of the archive"),
    ("cels/../../evil.png", "climbs out of the archive"),
    ("..\\..\\windows\\evil.png", "climbs out of the archive"),
    ("/etc/passwd", "absolute path"),
    ("C:/Windows/evil.png", "absolute path"),
])
def test_zip_slip_entries_fail_the_upload(upload_and_run, entry, phrase):
    archive = zip_archive({"cels/ok.png": make_image_bytes(1), entry: b"evil"})
    upload = upload_and_run(file_rows("cels/ok.png"), archive)
    assert_failed_whole(upload, "archive", repr(entry), phrase, "refused")
    assert not media_files()


def test_a_link_in_the_archive_fails_the_upload(upload_and_run):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("cels/ok.png", make_image_bytes(1))
        link = zipfile.ZipInfo("cels/link.png")
        link.create_system = 3
        link.external_attr = (stat.S_IFLNK | 0o777) << 16
        archive.writestr(link, "/etc/passwd")
    upload = upload_and_run(file_rows("cels/link.png"), buffer.getvalue())
    assert_failed_whole(upload, "archive", "'cels/link.png' is a link")


def test_a_file_that_is_not_a_zip_fails_the_upload(upload_and_run):
    upload = upload_and_run(file_rows("a.png"), b"PK\x03\x04 this is not really a zip")
    assert_failed_whole(upload, "archive", "not a readable ZIP file")


def test_a_damaged_entry_fails_its_row(upload_and_run):
    data = make_image_bytes(3)
    archive = bytearray(zip_archive({"cels/damaged.png": data}, compression=zipfile.ZIP_STORED))
    start = archive.index(data)
    archive[start + 100] ^= 0xFF  # the stored bytes no longer match the CRC
    upload = upload_and_run(file_rows("cels/damaged.png"), bytes(archive))
    [(row, _, field, message)] = errors_of(upload)
    assert (row, field) == (1, "file") and "damaged" in message
    assert not Work.objects.exists() and not media_files()


def test_a_sha256_that_does_not_match_the_file(upload_and_run):
    data = make_image_bytes(5)
    manifest = csv_manifest([{"external_ref": "F1", "title": "x", "file": "a.png", "sha256": "0" * 64}])
    upload = upload_and_run(manifest, zip_archive({"a.png": data}))
    assert errors_of(upload) == [(1, "F1", "sha256", (
        f"Does not match the file 'a.png', whose SHA-256 is {hashlib.sha256(data).hexdigest()}."))]


def test_shift_jis_file_names_from_japanese_windows_are_found(upload_and_run):
    # What Japanese Windows writes: the name in CP932 bytes, without the UTF-8 flag. zipfile
    # would write UTF-8, so write a placeholder of the same length and swap the bytes in.
    name = "原画/カット1.png".encode("cp932")
    placeholder = b"p" * len(name)
    raw = zip_archive({placeholder.decode(): make_image_bytes(1)}, compression=zipfile.ZIP_STORED)
    raw = raw.replace(placeholder, name)
    upload = upload_and_run(file_rows("原画/カット1.png"), raw)
    assert upload.failed_count == 0, errors_of(upload)
    assert ContentFile.objects.get().original_name == "原画/カット1.png"
