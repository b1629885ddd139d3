"""Fingerprint content files: SHA-256, size, sniffed media type and, for images, a perceptual hash.

A `ContentFile` is looked up exactly by SHA-256 and, for images, approximately by a 64-bit DCT
perceptual hash (pHash) within a Hamming distance. Both sides of a match (the file registered
by a rightsholder and the file or hash a trainer checks) must go through the same pipeline, or
the same picture would hash differently: `image_phash` is that one pipeline. The module is long
because sniffing, decoding limits, hashing and the band arithmetic must change together or not at all.

The pHash pipeline, fixed because changing any step changes stored hashes:
1. apply the EXIF orientation (`ImageOps.exif_transpose`), so a photo hashes as it is displayed,
   not as the camera's sensor stored it;
2. composite any transparency over opaque white, so RGBA, LA and palette images with a
   transparent colour hash like they look on a page (the colour of fully transparent pixels is
   arbitrary and must not matter);
3. convert to 8-bit greyscale ("L"); 16-bit and 32-bit greyscale is stretched linearly from its
   own range to 0..255 instead of being clipped (Pillow clips, which turns most 16-bit images
   white), and LAB images use their lightness channel;
4. `imagehash.phash(hash_size=8)`: LANCZOS resize to 32x32, 2-D DCT, top-left 8x8 coefficients
   compared with their median. The 64 bits are read row-major, most significant first, so
   `phash_to_hex` of the result equals `str(imagehash.phash(...))` of the normalised image.
The Pillow and ImageHash versions are part of the pipeline too: upgrading either can move a few
bits, so an upgrade must be checked against stored hashes.

The hash is stored as a signed 64-bit integer so that it fits a PostgreSQL bigint; helpers here
convert between that, the unsigned bit pattern and the 16-hex-character form of the API.

Near matches are found with multi-index hashing (`phash_bands`, `band_probes`): the 64 bits are
split into three bands stored in indexed columns, and a query looks up every band value within
a small radius of its own, then verifies the full distance.
"""

import codecs
import hashlib
import io
import itertools
import math
import posixpath
import re
import struct
import warnings
import zlib
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache
from typing import BinaryIO, Literal

import imagehash
import numpy
from django.utils.translation import gettext as _
from PIL import Image, ImageOps, features

RejectionCode = Literal[
    "empty_file",
    "too_large",
    "type_mismatch",
    "decompression_bomb",
    "unreadable_image",
    "unsupported_type",
]

DEFAULT_MAX_BYTES = 200 * 1024 * 1024
# The largest image Kyoka fingerprints: 40 megapixels (e.g. 7,750 x 5,160), checked on the
# header's declared size before anything is decoded. It covers full-frame cameras and A3 scans
# at 400 dpi; decoding costs time and memory in proportion to pixels (a 64 MP PNG of 204 KB
# took 1.3 s and 256 MB as RGBA), so a larger image is refused as a decompression bomb rather
# than letting one request buy minutes of CPU. Downscale a larger master before registering it.
DEFAULT_MAX_PIXELS = 40_000_000
# Near matches: the Hamming distance a phash item asks for when it names none, and the most it may.
DEFAULT_NEAR_MATCH_DISTANCE = 8
MAX_NEAR_MATCH_DISTANCE = 12
# The most band probes (see `phash_probe_cost`) one request may ask for, summed over its phash
# items. A probe is one bucket looked up in one band; at the default distance 8 an item costs
# 718, at 12 it costs 24,203 (100 items at 12 took 10.8 s and ~100 MB on SQLite). 250,000 lets
# a request carry 348 items at distance 8, 3,731 at distance 5 and 10,000 at distance 2, and
# bounds its probe work at about a second on SQLite and tens of milliseconds on PostgreSQL.
PHASH_PROBE_BUDGET = 250_000
BAND_COUNT = 3
# Bits per band, most significant band first. 21 + 21 + 22 = 64.
BAND_BITS: tuple[int, int, int] = (21, 21, 22)
OCTET_STREAM = "application/octet-stream"

_HASH_BITS = 64
_UNSIGNED_MASK = (1 << _HASH_BITS) - 1
_SIGN_BIT = 1 << (_HASH_BITS - 1)
# Large enough to amortise read() calls, small enough to stay cheap per concurrent upload.
_CHUNK_BYTES = 1024 * 1024
# Every magic number below lies in the first few dozen bytes; the rest of the head only helps
# to tell UTF-8 text from binary data.
_HEAD_BYTES = 8192
_HEX_PHASH = re.compile(r"[0-9a-fA-F]{16}")


class FileRejected(ValueError):
    """A file that cannot be fingerprinted; `code` is for machines, the message for people."""

    def __init__(self, code: RejectionCode, message: str) -> None:
        super().__init__(message)
        self.code: RejectionCode = code
        self.message = message


@dataclass(frozen=True)
class Fingerprint:
    """What Kyoka indexes about one file.

    `width`/`height` are the image's size as displayed (EXIF orientation applied), `phash` its
    perceptual hash as a signed 64-bit integer; all three are None for anything but an image.
    """

    sha256: str
    size: int
    media_type: str
    width: int | None
    height: int | None
    phash: int | None


# --- Media type sniffing ---------------------------------------------------------------------
#
# A hand-written table rather than a library: python-magic needs libmagic on every host, and
# the pure-Python `filetype`/`puremagic` packages are not dependencies yet. Kyoka only needs the
# formats below, each identified by a fixed signature near the start of the file; anything
# else is reported as application/octet-stream and still gets an exact SHA-256 match.

_RIFF_TYPES = {b"WEBP": "image/webp", b"WAVE": "audio/wav", b"AVI ": "video/x-msvideo"}
_HEIC_BRANDS = frozenset({b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx"})
_M4A_BRANDS = frozenset({b"M4A ", b"M4B ", b"M4P "})
# BITMAPCOREHEADER, BITMAPINFOHEADER and its successors; "BM" alone is too common in text.
_BMP_DIB_HEADER_SIZES = frozenset({12, 16, 40, 52, 56, 64, 108, 124})
# Control characters that do not occur in text; tab, newlines, form feed and ESC (for ANSI
# colour codes in logs) do.
_BINARY_BYTES = re.compile(rb"[\x00-\x08\x0e-\x1a\x1c-\x1f\x7f]")


def sniff_media_type(head: bytes) -> str:
    """Return the media type the first bytes of a file show, or application/octet-stream.

    Decided by content only, so a renamed file cannot pass for another type. Pass the first
    8 KiB, or the whole file if shorter: text is recognised by decoding what is given, and a
    shorter head is taken to be the whole file.
    """
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if head.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if head.startswith((b"GIF87a", b"GIF89a")):
        return "image/gif"
    if head.startswith(b"RIFF") and head[8:12] in _RIFF_TYPES:
        return _RIFF_TYPES[head[8:12]]
    # Little- and big-endian TIFF, then BigTIFF.
    if head.startswith((b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+")):
        return "image/tiff"
    if _is_bmp(head):
        return "image/bmp"
    if head.startswith(b"%PDF-"):
        return "application/pdf"
    # Local file header, empty archive, spanned archive.
    if head.startswith((b"PK\x03\x04", b"PK\x05\x06", b"PK\x07\x08")):
        return "application/zip"
    if head[4:8] == b"ftyp":
        return _iso_media_type(head)
    if head.startswith(b"fLaC"):
        return "audio/flac"
    if head.startswith(b"OggS"):
        return _ogg_media_type(head)
    if _is_mp3(head):
        return "audio/mpeg"
    if _is_utf8_text(head):
        return "text/plain"
    return OCTET_STREAM


def _is_bmp(head: bytes) -> bool:
    if len(head) < 18 or not head.startswith(b"BM"):
        return False
    reserved = head[6:10]
    (dib_header_size,) = struct.unpack_from("<I", head, 14)
    return reserved == b"\x00\x00\x00\x00" and dib_header_size in _BMP_DIB_HEADER_SIZES


def _iso_media_type(head: bytes) -> str:
    """Tell apart the ISO base media formats (MP4, MOV, M4A, 3GP, AVIF, HEIF) by brand."""
    (box_size,) = struct.unpack_from(">I", head, 0)
    major_brand = head[8:12]
    # Compatible brands fill the rest of the ftyp box, four bytes each, after the minor version.
    compatible = {head[i : i + 4] for i in range(16, min(box_size, len(head)) - 3, 4)}
    brands = {major_brand} | compatible
    # An AVIF or HEIF file may name the generic "mif1" as its major brand; the specific image
    # brand is then among the compatible ones.
    if brands & {b"avif", b"avis"}:
        return "image/avif"
    if brands & _HEIC_BRANDS:
        return "image/heic"
    if brands & {b"mif1", b"msf1"}:
        return "image/heif"
    if major_brand == b"qt  ":
        return "video/quicktime"
    if major_brand in _M4A_BRANDS:
        return "audio/mp4"
    if major_brand.startswith(b"3gp"):
        return "video/3gpp"
    return "video/mp4"


def _ogg_media_type(head: bytes) -> str:
    # The first page carries the first stream's codec header; Theora means video.
    if b"\x80theora" in head:
        return "video/ogg"
    if b"\x01vorbis" in head or b"OpusHead" in head or b"\x7fFLAC" in head:
        return "audio/ogg"
    return "application/ogg"


def _is_mp3(head: bytes) -> bool:
    # An ID3v2 tag: "ID3", major version 2-4, revision byte.
    if head.startswith(b"ID3") and len(head) >= 5 and head[3] in (2, 3, 4) and head[4] < 0xFF:
        return True
    if len(head) < 3:
        return False
    # A bare MPEG audio frame: 11-bit sync, a version other than "reserved", layer III,
    # a bitrate other than "bad" and a sample rate other than "reserved".
    version = (head[1] >> 3) & 0b11
    layer = (head[1] >> 1) & 0b11
    bitrate_index = head[2] >> 4
    sample_rate_index = (head[2] >> 2) & 0b11
    return (
        head[0] == 0xFF
        and head[1] & 0xE0 == 0xE0
        and version != 0b01
        and layer == 0b01
        and bitrate_index != 0b1111
        and sample_rate_index != 0b11
    )


def _is_utf8_text(head: bytes) -> bool:
    if _BINARY_BYTES.search(head):
        return False
    # A head that fills the sniffing window may have been cut inside a multi-byte character,
    # which a non-final decode allows; a shorter head is the whole file and must decode fully.
    try:
        codecs.getincrementaldecoder("utf-8")().decode(head, final=len(head) < _HEAD_BYTES)
    except UnicodeDecodeError:
        return False
    return True


# Extensions whose type is unambiguous, with every sniffed type that may honestly carry them
# (an .mp4 holding QuickTime-branded data is common and harmless). Extensions not listed here
# are never judged.
_IMAGE_EXTENSIONS: dict[str, frozenset[str]] = {
    ".png": frozenset({"image/png"}),
    ".jpg": frozenset({"image/jpeg"}),
    ".jpeg": frozenset({"image/jpeg"}),
    ".jpe": frozenset({"image/jpeg"}),
    ".jfif": frozenset({"image/jpeg"}),
    ".gif": frozenset({"image/gif"}),
    ".webp": frozenset({"image/webp"}),
    ".tif": frozenset({"image/tiff"}),
    ".tiff": frozenset({"image/tiff"}),
    ".bmp": frozenset({"image/bmp"}),
    ".avif": frozenset({"image/avif"}),
    ".heic": frozenset({"image/heic", "image/heif"}),
    ".heif": frozenset({"image/heic", "image/heif"}),
}
_ISO_VIDEO = frozenset({"video/mp4", "video/quicktime", "video/3gpp", "audio/mp4"})
_OGG = frozenset({"audio/ogg", "video/ogg", "application/ogg"})
_ZIP = frozenset({"application/zip"})
_TEXT = frozenset({"text/plain"})
_EXPECTED_TYPES_BY_EXTENSION: dict[str, frozenset[str]] = {
    **_IMAGE_EXTENSIONS,
    ".pdf": frozenset({"application/pdf"}),
    ".zip": _ZIP,
    # Office, OpenDocument and EPUB files are ZIP archives.
    ".docx": _ZIP,
    ".xlsx": _ZIP,
    ".pptx": _ZIP,
    ".odt": _ZIP,
    ".epub": _ZIP,
    ".mp4": _ISO_VIDEO,
    ".m4v": _ISO_VIDEO,
    ".mov": _ISO_VIDEO,
    ".3gp": _ISO_VIDEO,
    ".m4a": frozenset({"audio/mp4", "video/mp4"}),
    ".mp3": frozenset({"audio/mpeg"}),
    ".wav": frozenset({"audio/wav"}),
    ".flac": frozenset({"audio/flac"}),
    ".ogg": _OGG,
    ".oga": _OGG,
    ".ogv": _OGG,
    ".opus": _OGG,
    ".txt": _TEXT,
    ".text": _TEXT,
    ".md": _TEXT,
    ".csv": _TEXT,
    ".tsv": _TEXT,
    ".json": _TEXT,
}


def _check_extension(filename: str | None, media_type: str) -> None:
    """Reject a file whose name claims a type its content clearly is not.

    Only a recognised content type can clearly disagree: content we cannot identify (Latin-1
    text, a damaged header) may still be what its name says.
    """
    if not filename or media_type == OCTET_STREAM:
        return
    # Browsers and scripts send Windows paths too; only the last component names the file.
    basename = filename.replace("\\", "/").rsplit("/", 1)[-1]
    extension = posixpath.splitext(basename)[1].lower()
    expected = _EXPECTED_TYPES_BY_EXTENSION.get(extension)
    if expected is not None and media_type not in expected:
        raise FileRejected(
            "type_mismatch",
            _(
                "The file is named %(name)s, but its content is %(media_type)s, "
                "not %(expected)s as %(extension)s says."
            )
            % {
                "name": repr(basename), "media_type": media_type,
                "expected": " or ".join(sorted(expected)), "extension": extension,
            },
        )


# --- Fingerprinting a file -------------------------------------------------------------------


def _pillow_format(media_type: str) -> str | None:
    """The Pillow plugin that decodes `media_type`, or None if this installation has none."""
    if media_type == "image/avif":
        # Pillow decodes AVIF only when built with libavif (its wheels are, since 11.2).
        return "AVIF" if features.check("avif") else None
    return {
        "image/png": "PNG",
        "image/jpeg": "JPEG",
        "image/gif": "GIF",
        "image/webp": "WEBP",
        "image/tiff": "TIFF",
        "image/bmp": "BMP",
    }.get(media_type)


def fingerprint_file(
    fileobj: BinaryIO,
    *,
    filename: str | None = None,
    max_bytes: int = DEFAULT_MAX_BYTES,
    max_pixels: int = DEFAULT_MAX_PIXELS,
) -> Fingerprint:
    """Fingerprint the rest of `fileobj`, from its current position to its end.

    The stream is read in chunks; only an image is decoded, from the stream itself when it is
    seekable and starts at 0, else from an in-memory copy (at most `max_bytes`). The media type
    comes from the content, never from `filename`, which is only checked against it.

    Raises FileRejected: "empty_file", "too_large" (more than `max_bytes`), "type_mismatch"
    (the name's extension clearly disagrees with the content), "unsupported_type" (an image
    format this installation cannot decode, such as HEIC: without a pHash it could not be
    near-matched, so it is refused rather than silently indexed by SHA-256 alone),
    "decompression_bomb" (more than `max_pixels`, or than Pillow's own MAX_IMAGE_PIXELS,
    whichever is lower) and "unreadable_image" (truncated or corrupt).
    """
    head = _read_head(fileobj)
    if not head:
        raise FileRejected("empty_file", _("The file is empty."))
    media_type = sniff_media_type(head)
    _check_extension(filename, media_type)

    is_image = media_type.startswith("image/")
    pillow_format = _pillow_format(media_type) if is_image else None
    if is_image and pillow_format is None:
        # Refused before reading the rest: the answer cannot change.
        raise FileRejected(
            "unsupported_type",
            _("%(media_type)s images cannot be decoded here; convert the file to PNG or JPEG.")
            % {"media_type": media_type},
        )

    # Pillow's open() rewinds to offset 0, so the stream can be reused only if that is where
    # our data starts; otherwise (or if it cannot seek) the image bytes are kept as we hash.
    reuse_stream = is_image and fileobj.seekable() and fileobj.tell() == len(head)
    image_copy = io.BytesIO() if is_image and not reuse_stream else None

    digest = hashlib.sha256()
    size = 0
    chunk = head
    while chunk:
        size += len(chunk)
        if size > max_bytes:
            raise FileRejected(
                "too_large",
                _("The file is larger than the limit of %(limit)d bytes.") % {"limit": max_bytes},
            )
        digest.update(chunk)
        if image_copy is not None:
            image_copy.write(chunk)
        chunk = fileobj.read(_CHUNK_BYTES)

    if pillow_format is None:
        return Fingerprint(
            sha256=digest.hexdigest(),
            size=size,
            media_type=media_type,
            width=None,
            height=None,
            phash=None,
        )
    if image_copy is None:
        fileobj.seek(0)
        source: BinaryIO = fileobj
    else:
        image_copy.seek(0)
        source = image_copy
    width, height, phash = _decode_image(source, pillow_format=pillow_format, max_pixels=max_pixels)
    return Fingerprint(
        sha256=digest.hexdigest(),
        size=size,
        media_type=media_type,
        width=width,
        height=height,
        phash=phash,
    )


def _read_head(fileobj: BinaryIO) -> bytes:
    # read(n) may return fewer bytes than asked before the end (pipes, raw sockets).
    head = b""
    while len(head) < _HEAD_BYTES:
        piece = fileobj.read(_HEAD_BYTES - len(head))
        if not piece:
            break
        head += piece
    return head


# What Pillow's decoders raise on truncated or malformed data. A parser fed hostile input can
# fail in many ways; every one of them means "we cannot read this image".
_UNREADABLE_IMAGE_ERRORS = (
    OSError,
    SyntaxError,
    ValueError,
    EOFError,
    struct.error,
    zlib.error,
    IndexError,
    KeyError,
    TypeError,
)


def _decode_image(source: BinaryIO, *, pillow_format: str, max_pixels: int) -> tuple[int, int, int]:
    """Decode the first frame under the pixel cap; return its displayed size and pHash."""
    bomb = FileRejected(
        "decompression_bomb",
        _(
            "The image has more pixels than the limit of %(limit)d; it is refused as a "
            "possible decompression bomb."
        )
        % {"limit": max_pixels},
    )
    # Pillow only warns between MAX_IMAGE_PIXELS and twice that; a warning would let the
    # decode go ahead, so it becomes an error here. (catch_warnings is process-wide, but our
    # own size check below rejects such images anyway with the default cap; this guards a
    # configured cap above Pillow's.)
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            # `formats` stops Pillow from trying every other plugin on data we sniffed as one
            # type: fewer parsers exposed to hostile input.
            with Image.open(source, formats=[pillow_format]) as image:
                # Checked on the header's declared size, before load() allocates anything.
                width, height = image.size
                if width * height > max_pixels:
                    raise bomb
                image.load()
                ImageOps.exif_transpose(image, in_place=True)
                width, height = image.size
                phash = _upright_phash(image)
        except (Image.DecompressionBombError, Image.DecompressionBombWarning):
            raise bomb from None
        except FileRejected:
            raise
        except _UNREADABLE_IMAGE_ERRORS as error:
            raise FileRejected(
                "unreadable_image",
                _("The image is truncated or corrupt (%(error)s).") % {"error": error},
            ) from error
    return width, height, phash


# --- Perceptual hash -------------------------------------------------------------------------


def image_phash(image: Image.Image) -> int:
    """Return the pHash of `image` as a signed 64-bit integer, via the one fixed pipeline.

    See the module docstring for the pipeline. `image` itself is not modified.
    """
    upright = image.copy()
    ImageOps.exif_transpose(upright, in_place=True)
    return _upright_phash(upright)


def _upright_phash(image: Image.Image) -> int:
    greyscale = _greyscale_over_white(image)
    bits = imagehash.phash(greyscale, hash_size=8).hash
    # Row-major, most significant bit first: the order imagehash prints its hex in.
    unsigned = int.from_bytes(numpy.packbits(bits.flatten()).tobytes(), "big")
    return _to_signed(unsigned)


def _greyscale_over_white(image: Image.Image) -> Image.Image:
    if image.has_transparency_data:
        opaque_white = Image.new("RGBA", image.size, (255, 255, 255, 255))
        return Image.alpha_composite(opaque_white, image.convert("RGBA")).convert("L")
    if image.mode in ("I", "F") or image.mode.startswith("I;16"):
        # Scaled, never offset, so the maximum becomes 255: the pHash does not change when
        # all pixels are multiplied by a constant, so a 16-bit master and its 8-bit export
        # hash alike, where Pillow's plain convert("L") would clip them to white.
        floating = image.convert("F")
        highest = floating.getextrema()[1]
        if isinstance(highest, int | float) and highest > 0:
            floating = floating.point(lambda value: value * (255.0 / highest))
        return floating.convert("L")
    if image.mode == "LAB":
        # Pillow cannot convert LAB; its L channel already is the lightness.
        return image.getchannel("L")
    return image.convert("L")


# --- pHash representations ---------------------------------------------------------------------


def _to_unsigned(value: int) -> int:
    """The 64-bit pattern of a hash given in either its signed or its unsigned form."""
    if not -_SIGN_BIT <= value <= _UNSIGNED_MASK:
        raise ValueError(f"{value} is not a 64-bit hash value.")
    return value & _UNSIGNED_MASK


def _to_signed(unsigned: int) -> int:
    return unsigned - (1 << _HASH_BITS) if unsigned & _SIGN_BIT else unsigned


def phash_to_hex(value: int) -> str:
    """16 lowercase hex characters of the hash's bit pattern (signed or unsigned input)."""
    return f"{_to_unsigned(value):016x}"


def phash_from_hex(text: str) -> int:
    """Parse exactly 16 hex characters (either case) into the signed 64-bit form."""
    # A regex rather than int(text, 16) alone, which also accepts "0x", signs, underscores,
    # surrounding whitespace and non-ASCII digits.
    if not isinstance(text, str) or not _HEX_PHASH.fullmatch(text):
        raise ValueError(f"{text!r} is not a pHash: expected exactly 16 hex characters.")
    return _to_signed(int(text, 16))


def hamming_distance(a: int, b: int) -> int:
    """The number of differing bits between two hashes (signed or unsigned forms)."""
    return (_to_unsigned(a) ^ _to_unsigned(b)).bit_count()


# --- Multi-index hashing -------------------------------------------------------------------------


def phash_bands(value: int) -> tuple[int, int, int]:
    """Split a hash into its 3 bands, most significant first, each a non-negative integer."""
    unsigned = _to_unsigned(value)
    bands = []
    shift = _HASH_BITS
    for width in BAND_BITS:
        shift -= width
        bands.append((unsigned >> shift) & ((1 << width) - 1))
    return bands[0], bands[1], bands[2]


BAND_COLUMNS = ("band0", "band1", "band2")


def phash_band_columns(value: int) -> dict[str, int]:
    """A PerceptualHash row's band columns for this hash (`phash_bands` by column name)."""
    return dict(zip(BAND_COLUMNS, phash_bands(value), strict=True))


def phash_bands_array(values: numpy.ndarray) -> list[numpy.ndarray]:
    """`phash_bands` over an array of signed 64-bit hashes at once: one int64 array per band."""
    unsigned = values.astype(numpy.int64).view(numpy.uint64)
    bands, shift = [], _HASH_BITS
    for width in BAND_BITS:
        shift -= width
        bands.append(((unsigned >> numpy.uint64(shift)) & numpy.uint64((1 << width) - 1)).astype(numpy.int64))
    return bands


def band_masks(width: int, radius: int) -> tuple[int, ...]:
    """Every `width`-bit mask with at most `radius` bits set: a band value XOR each is a probe."""
    return _masks_within(width, radius)


def band_probes(
    value: int, max_distance: int
) -> tuple[frozenset[int], frozenset[int], frozenset[int]]:
    """For each band, every value within `max_distance // 3` bits of this hash's band value.

    A stored hash is a candidate if its band i is in probe set i for some i; candidates must
    then be checked with `hamming_distance`. No hash within `max_distance` is missed:
    if hamming(a, b) <= d, the three band distances sum to at most d, so the smallest is
    <= d/3, and being an integer <= d // 3; b's value in that band is in that probe set.
    """
    radius = _band_radius(max_distance)
    probes = [
        frozenset(band ^ mask for mask in _masks_within(width, radius))
        for band, width in zip(phash_bands(value), BAND_BITS, strict=True)
    ]
    return probes[0], probes[1], probes[2]


def _band_radius(max_distance: int) -> int:
    """The per-band search radius for `max_distance`, which must be a valid near-match distance."""
    if (
        not isinstance(max_distance, int)
        or isinstance(max_distance, bool)
        or not 0 <= max_distance <= MAX_NEAR_MATCH_DISTANCE
    ):
        raise ValueError(f"max_distance must be an integer from 0 to {MAX_NEAR_MATCH_DISTANCE}.")
    return max_distance // BAND_COUNT


@cache
def phash_probe_cost(max_distance: int) -> int:
    """How many band probes one phash item at `max_distance` costs: what `band_probes` yields.

    Pure arithmetic (a sum of binomial coefficients per band), so a request's cost is known
    before any lookup; compare the sum over its items with PHASH_PROBE_BUDGET.
    """
    radius = _band_radius(max_distance)
    return sum(math.comb(width, count) for width in BAND_BITS for count in range(radius + 1))


def phash_probes_total(max_distances: Iterable[int]) -> int:
    """The band probes a request's phash items cost together (one max_distance per item)."""
    return sum(phash_probe_cost(distance) for distance in max_distances)


@cache
def _masks_within(width: int, radius: int) -> tuple[int, ...]:
    """Every `width`-bit mask with at most `radius` bits set (few: radius <= 4)."""
    return tuple(
        sum(1 << bit for bit in bits)
        for count in range(radius + 1)
        for bits in itertools.combinations(range(width), count)
    )
