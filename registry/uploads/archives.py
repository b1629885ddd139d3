"""Opening an upload's ZIP archive without trusting it.

Nothing is ever extracted to a path the archive names: an entry is read into a temporary
spool and stored under its SHA-256 (see the upload service), so a name cannot write outside
the upload. Entries whose names would escape anyway (`../`, absolute paths, drive letters) or
that are links make the whole archive refused: no honest catalog export holds them.

Zip bombs are refused on what the central directory declares, before anything is inflated:
too many entries or too many bytes in total refuse the archive; one entry that is too large
or inflates more than MAX_COMPRESSION_RATIO times refuses that entry (its row fails). Python's
zipfile never yields more than an entry's declared size, and its CRC check catches an entry
whose data is not what its header says, so the declared numbers can be relied on.
"""

from __future__ import annotations

import posixpath
import re
import shutil
import stat
import tempfile
import zipfile
import zlib
from typing import IO, BinaryIO

from registry.matching.fingerprints import DEFAULT_MAX_BYTES

MAX_ENTRIES = 100_000
# What one archive may unpack to in all: above it the archive is refused before anything is
# inflated (a studio's storage quota, KYOKA_STORAGE_QUOTA_BYTES, bounds what is kept besides).
MAX_TOTAL_BYTES = 10 * 1024**3
MAX_ENTRY_BYTES = DEFAULT_MAX_BYTES
# Images and video are already compressed (ratio ~1); text and flat-colour PNGs inside a ZIP
# reach 5-15. Beyond 20 an entry over 1 MB is far more likely a bomb (a 2 MB ZIP once unpacked
# to 202 MB of stored media at the old limit of 100).
MAX_COMPRESSION_RATIO = 20
# Small entries cannot bomb anything; text and flat-colour images legitimately compress well.
RATIO_CHECKED_ABOVE_BYTES = 1024 * 1024
# An entry up to this size stays in memory while it is fingerprinted and stored.
_SPOOL_IN_MEMORY_BYTES = 8 * 1024 * 1024
_READ_BYTES = 1024 * 1024
_DRIVE = re.compile(r"^[A-Za-z]:")
_UTF8_NAME_FLAG = 0x800


class ArchiveRejected(Exception):
    """The archive as a whole cannot be used; the upload fails with nothing written."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class EntryRejected(Exception):
    """One file the manifest names cannot be used; its row fails."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def member_name(raw: str) -> str:
    """The normal form of a path inside an archive; raise ValueError for one that escapes it.

    Backslashes count as separators (archives made on Windows use them); "./" and doubled
    slashes are dropped, so "./cels//a.png" and "cels/a.png" name the same entry.
    """
    name = raw.replace("\\", "/")
    if "\x00" in name:
        raise ValueError("contains a NUL character")
    if name.startswith("/") or _DRIVE.match(name):
        raise ValueError("is an absolute path")
    parts = [part for part in name.split("/") if part not in ("", ".")]
    if ".." in parts:
        raise ValueError("climbs out of the archive with '..'")
    if not parts:
        raise ValueError("is empty")
    return posixpath.join(*parts)


class SafeArchive:
    """A ZIP archive whose every entry has been checked; `open_entry` reads one by name."""

    def __init__(self, fileobj: BinaryIO) -> None:
        try:
            self._zip = zipfile.ZipFile(fileobj)
        except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, ValueError, EOFError) as error:
            raise ArchiveRejected(f"The archive is not a readable ZIP file ({error}).") from None
        try:
            self._entries = self._checked_entries()
        except ArchiveRejected:
            self._zip.close()
            raise

    def close(self) -> None:
        self._zip.close()

    def __enter__(self) -> SafeArchive:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __contains__(self, name: str) -> bool:
        return name in self._entries

    def _checked_entries(self) -> dict[str, zipfile.ZipInfo]:
        infos = self._zip.infolist()
        if len(infos) > MAX_ENTRIES:
            raise ArchiveRejected(f"The archive holds {len(infos):,} entries; at most {MAX_ENTRIES:,} are allowed.")
        entries: dict[str, zipfile.ZipInfo] = {}
        total = 0
        for info in infos:
            raw_name = _decoded_name(info)
            try:
                name = member_name(raw_name)
            except ValueError as error:
                raise ArchiveRejected(f"The archive entry {raw_name!r} {error}; the archive is refused.") from None
            if stat.S_ISLNK(info.external_attr >> 16):
                raise ArchiveRejected(f"The archive entry {raw_name!r} is a link; the archive is refused.")
            if info.is_dir():
                continue
            if name in entries:
                raise ArchiveRejected(f"The archive holds two entries named {name!r}.")
            total += info.file_size
            if total > MAX_TOTAL_BYTES:
                raise ArchiveRejected(
                    f"The archive's files add up to more than {MAX_TOTAL_BYTES:,} bytes when unpacked."
                )
            entries[name] = info
        return entries

    def open_entry(self, name: str) -> IO[bytes]:
        """The entry's bytes in a temporary spool, positioned at 0; the caller closes it."""
        info = self._entries.get(name)
        if info is None:
            raise EntryRejected(f"The archive has no file {name!r}.")
        if info.flag_bits & 0x1:
            raise EntryRejected(f"{name!r} is encrypted; send files without a password.")
        if info.file_size > MAX_ENTRY_BYTES:
            raise EntryRejected(f"{name!r} is {info.file_size:,} bytes unpacked; the limit is {MAX_ENTRY_BYTES:,}.")
        if info.file_size > RATIO_CHECKED_ABOVE_BYTES and info.file_size > info.compress_size * MAX_COMPRESSION_RATIO:
            ratio = info.file_size // max(info.compress_size, 1)
            raise EntryRejected(
                f"{name!r} inflates {ratio:,} times (from {info.compress_size:,} to {info.file_size:,} bytes); "
                f"more than {MAX_COMPRESSION_RATIO} times is refused as a possible zip bomb."
            )
        spool = tempfile.SpooledTemporaryFile(max_size=_SPOOL_IN_MEMORY_BYTES)  # noqa: SIM115 - returned open
        try:
            with self._zip.open(info) as source:
                # Bounded by the declared size (zipfile stops there, and checks the CRC at the end).
                shutil.copyfileobj(source, spool, _READ_BYTES)
        except (zipfile.BadZipFile, zlib.error, EOFError, OSError, NotImplementedError, RuntimeError) as error:
            spool.close()
            raise EntryRejected(f"{name!r} cannot be unpacked: the archive entry is damaged ({error}).") from None
        spool.seek(0)
        return spool


def _decoded_name(info: zipfile.ZipInfo) -> str:
    """The entry's name as its maker meant it.

    Without the UTF-8 flag, zipfile decodes names as CP437; many tools write UTF-8 without
    setting the flag, and Japanese Windows writes Shift_JIS (CP932). Try those first.
    """
    if info.flag_bits & _UTF8_NAME_FLAG:
        return info.filename
    try:
        raw = info.filename.encode("cp437")
    except UnicodeEncodeError:
        return info.filename
    for encoding in ("utf-8", "cp932"):
        try:
            return raw.decode(encoding)
        except UnicodeDecodeError:
            continue
    return info.filename
