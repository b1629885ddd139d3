"""Size and shape limits on what an upload carries, enforced while reading: no database involved."""

from __future__ import annotations

import io
import json
import os
import zipfile

import pytest
from django.core.files.storage import default_storage

from registry.models import BulkUpload
from registry.uploads.archives import MAX_COMPRESSION_RATIO, MAX_TOTAL_BYTES, EntryRejected, SafeArchive
from registry.uploads.manifests import MAX_LINE_CHARS, MAX_ROW_DEPTH, ManifestRejected, read_manifest
from registry.uploads.storage import StorageQuotaExceeded, UploadTooLarge
from tests.registry.uploads.conftest import catalog_rows, csv_manifest, run_to_end, zip_archive


def archive_of(files: dict[str, bytes]) -> io.BytesIO:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, data in files.items():
            archive.writestr(name, data)
    buffer.seek(0)
    return buffer


def compressible(size: int, ratio: int) -> bytes:
    """About `size` bytes that deflate roughly `ratio` times: random bytes padded with zeros."""
    random_part = size // ratio
    return os.urandom(random_part) + b"\0" * (size - random_part)


def test_the_limits_are_the_documented_ones():
    assert MAX_COMPRESSION_RATIO == 20
    assert MAX_TOTAL_BYTES == 10 * 1024**3


def test_an_entry_over_1_mb_inflating_more_than_20_times_is_refused_before_it_is_inflated():
    with SafeArchive(archive_of({"bomb.bin": compressible(4 * 1024 * 1024, 40)})) as archive, pytest.raises(
        EntryRejected, match=r"inflates .* more than 20 times"
    ):
        archive.open_entry("bomb.bin")


def test_an_entry_inflating_ten_times_is_read_whole():
    data = compressible(4 * 1024 * 1024, 10)
    with SafeArchive(archive_of({"text.bin": data})) as archive, archive.open_entry("text.bin") as entry:
        assert entry.read() == data


def manifest_rows(data: bytes) -> list:
    return list(read_manifest(io.BytesIO(data)).rows)


class CountingStream(io.BytesIO):
    """A manifest that remembers how far it was read."""

    def __init__(self, data: bytes) -> None:
        super().__init__(data)
        self.highest = 0

    def read(self, size: int | None = -1) -> bytes:
        data = super().read(size)
        self.highest = max(self.highest, self.tell())
        return data


def test_a_json_array_row_larger_than_the_row_limit_is_refused_while_it_is_read():
    huge = json.dumps([{"external_ref": "A", "title": "a"},
                       {"external_ref": "B", "title": "b", "description": "x" * (20 * MAX_LINE_CHARS)}]).encode()
    stream = CountingStream(huge)

    with pytest.raises(ManifestRejected, match="Row 2 of the JSON array is larger than"):
        list(read_manifest(stream).rows)

    # Refused after about one row's worth, not after reading (and holding) the 20 MB value.
    assert stream.highest < 2 * MAX_LINE_CHARS


@pytest.mark.parametrize("depth", [MAX_ROW_DEPTH + 1, 50_000])
def test_a_deeply_nested_row_is_that_rows_error_in_json_and_ndjson(depth):
    nested = "[" * depth + "]" * depth
    first = '{"external_ref": "A", "title": "a"}'
    deep = '{"external_ref": "B", "title": "b", "urls": ' + nested + "}"

    for data in (f"[{first}, {deep}]".encode(), f"{first}\n{deep}\n".encode()):
        rows = manifest_rows(data)
        assert [row.number for row in rows] == [1, 2]
        assert rows[0].problems == ()
        assert rows[1].values == {} and "deep" in rows[1].problems[0][1]


def test_rows_as_deep_as_allowed_are_read():
    nested = "[" * (MAX_ROW_DEPTH - 1) + "]" * (MAX_ROW_DEPTH - 1)
    rows = manifest_rows(('[{"external_ref": "A", "title": "a", "urls": ' + nested + "}]").encode())
    assert rows[0].problems == () and rows[0].values["external_ref"] == "A"


# --- what an upload may store, and for how long -------------------------------------------------


@pytest.mark.django_db
def test_a_manifest_over_the_limit_is_refused_before_it_is_stored(start_upload, settings):
    settings.KYOKA_MAX_MANIFEST_BYTES = 1000
    with pytest.raises(UploadTooLarge, match="at most 1,000"):
        start_upload(csv_manifest(catalog_rows(100)))
    assert not BulkUpload.objects.exists()


@pytest.mark.django_db
def test_an_upload_past_the_organisations_storage_quota_is_refused(start_upload, settings):
    first = csv_manifest(catalog_rows(20))
    settings.KYOKA_STORAGE_QUOTA_BYTES = len(first) + 10
    start_upload(first)  # still running, so its manifest counts

    with pytest.raises(StorageQuotaExceeded):
        start_upload(csv_manifest(catalog_rows(20, prefix="MORE")))
    assert BulkUpload.objects.count() == 1


@pytest.mark.django_db(transaction=True)
def test_a_finished_uploads_manifest_and_archive_are_deleted_and_its_errors_stay(start_upload):
    rows = catalog_rows(3)
    rows[1]["title"] = ""  # one row fails
    done = start_upload(csv_manifest(rows), zip_archive({"unused.txt": b"x"}))
    failed = start_upload(b"\x00\x01 not a manifest")
    stored = [done.manifest.name, done.archive.name, failed.manifest.name]
    assert all(default_storage.exists(name) for name in stored)

    done, failed = run_to_end(done), run_to_end(failed)

    for upload in (done, failed):
        assert not upload.manifest and not upload.archive
    assert not any(default_storage.exists(name) for name in stored)
    assert done.status == "done" and done.errors.count() == 1
    assert failed.status == "failed" and failed.errors.filter(row=0).exists()


@pytest.mark.django_db
def test_the_upload_page_shows_the_storage_used_and_the_quota(client, studio, settings):
    from tests.conftest import owner_of

    settings.KYOKA_STORAGE_QUOTA_BYTES = 5 * 1024**3
    client.force_login(owner_of(studio))

    english = client.get("/studio/uploads/").content.decode()
    japanese = client.get("/studio/uploads/", HTTP_ACCEPT_LANGUAGE="ja").content.decode()

    assert 'id="storage-quota"' in english and "5.0\xa0GB" in english and "Storage used" in english
    assert "使用中の保存容量" in japanese
