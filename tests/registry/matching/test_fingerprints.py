"""Content fingerprints: hashing, sniffing, safe image decoding and the pHash band index.

Pure tests: every file is generated here, nothing touches the database.
"""

import hashlib
import io
import itertools
import math
import os
import random
import struct
import warnings
import wave
import zipfile
import zlib
from functools import cache

import imagehash
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image, ImageDraw, features

from registry.matching.fingerprints import (
    BAND_BITS,
    BAND_COUNT,
    DEFAULT_MAX_PIXELS,
    PHASH_PROBE_BUDGET,
    FileRejected,
    Fingerprint,
    band_probes,
    fingerprint_file,
    hamming_distance,
    image_phash,
    phash_bands,
    phash_from_hex,
    phash_probe_cost,
    phash_probes_total,
    phash_to_hex,
    sniff_media_type,
)

SIGNED_64 = st.integers(min_value=-(2**63), max_value=2**63 - 1)
NEAR_DUPLICATE_DISTANCE = 6
DIFFERENT_IMAGE_DISTANCE = 12


# --- Generated content -----------------------------------------------------------------------


def scene(seed: int, size: tuple[int, int] = (480, 360)) -> Image.Image:
    """A gradient with overlapping shapes: structured like a picture, unlike a solid colour."""
    rng = random.Random(seed)
    width, height = size
    image = Image.new("RGB", size)
    draw = ImageDraw.Draw(image)
    start = [rng.randrange(256) for _ in range(3)]
    end = [rng.randrange(256) for _ in range(3)]
    horizontal = rng.random() < 0.5
    steps = width if horizontal else height
    for step in range(steps):
        t = step / (steps - 1)
        colour = tuple(round(a + (b - a) * t) for a, b in zip(start, end, strict=True))
        line = [(step, 0), (step, height)] if horizontal else [(0, step), (width, step)]
        draw.line(line, fill=colour)
    for _ in range(7):
        x0, y0 = rng.randrange(width), rng.randrange(height)
        x1 = x0 + rng.randrange(width // 8, width // 2)
        y1 = y0 + rng.randrange(height // 8, height // 2)
        colour = tuple(rng.randrange(256) for _ in range(3))
        shape = rng.choice(["ellipse", "rectangle", "polygon"])
        if shape == "polygon":
            draw.polygon([(rng.randrange(width), rng.randrange(height)) for _ in range(3)], colour)
        elif shape == "ellipse":
            draw.ellipse((x0, y0, x1, y1), fill=colour)
        else:
            draw.rectangle((x0, y0, x1, y1), fill=colour)
    return image


def encoded(image: Image.Image, image_format: str, **options: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, image_format, **options)
    return buffer.getvalue()


def decoded(data: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(data))
    image.load()
    return image


def fingerprint_bytes(data: bytes, **options: object) -> Fingerprint:
    return fingerprint_file(io.BytesIO(data), **options)  # type: ignore[arg-type]


def _png_chunk(kind: bytes, payload: bytes) -> bytes:
    checksum = zlib.crc32(kind + payload)
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", checksum)


@cache
def png_declaring(width: int, height: int) -> bytes:
    """A valid, all-black 1-bit PNG of any size: huge dimensions compress to a few kilobytes."""
    compressor = zlib.compressobj(9)
    row = b"\x00" * (1 + math.ceil(width / 8))  # filter byte "none", then the packed pixels
    pixel_data = b"".join(compressor.compress(row) for _ in range(height)) + compressor.flush()
    header = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _png_chunk(b"IHDR", header)
        + _png_chunk(b"IDAT", pixel_data)
        + _png_chunk(b"IEND", b"")
    )


class UnseekableStream(io.RawIOBase):
    """An upload arriving through a pipe: readable once, in short pieces, never rewound."""

    def __init__(self, data: bytes) -> None:
        self._data = io.BytesIO(data)

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: bytearray) -> int:  # type: ignore[override]
        piece = self._data.read(min(len(buffer), 1000))
        buffer[: len(piece)] = piece
        return len(piece)


def _signed(unsigned: int) -> int:
    return unsigned - 2**64 if unsigned >= 2**63 else unsigned


def _flip(value: int, bits: set[int] | tuple[int, ...]) -> int:
    mask = sum(1 << bit for bit in bits)
    return _signed((value & (2**64 - 1)) ^ mask)


# --- SHA-256 and size --------------------------------------------------------------------------


def test_sha256_and_size_match_hashlib_over_many_chunks() -> None:
    data = os.urandom(2 * 1024 * 1024 + 17)

    fingerprint = fingerprint_bytes(data)

    assert fingerprint.sha256 == hashlib.sha256(data).hexdigest()
    assert fingerprint.size == len(data)
    assert fingerprint.media_type == "application/octet-stream"
    assert (fingerprint.width, fingerprint.height, fingerprint.phash) == (None, None, None)


def test_text_file_has_no_image_fields() -> None:
    data = "Kyoka 許可 registry\n".encode() * 1000

    fingerprint = fingerprint_bytes(data, filename="notes.txt")

    assert fingerprint == Fingerprint(
        sha256=hashlib.sha256(data).hexdigest(),
        size=len(data),
        media_type="text/plain",
        width=None,
        height=None,
        phash=None,
    )


def test_empty_file_is_rejected() -> None:
    with pytest.raises(FileRejected) as rejected:
        fingerprint_bytes(b"", filename="empty.txt")

    assert rejected.value.code == "empty_file"


def test_file_over_the_byte_limit_is_rejected_and_one_at_the_limit_is_not() -> None:
    assert fingerprint_bytes(b"x" * 100, max_bytes=100).size == 100

    with pytest.raises(FileRejected) as rejected:
        fingerprint_bytes(b"x" * 101, max_bytes=100)

    assert rejected.value.code == "too_large"


def test_file_over_the_byte_limit_is_rejected_without_reading_it_all() -> None:
    stream = io.BytesIO(os.urandom(5 * 1024 * 1024))

    with pytest.raises(FileRejected) as rejected:
        fingerprint_file(stream, max_bytes=1024 * 1024)

    assert rejected.value.code == "too_large"
    assert stream.tell() < 3 * 1024 * 1024


def test_only_the_rest_of_the_stream_from_its_position_is_fingerprinted() -> None:
    png = encoded(scene(1), "PNG")
    stream = io.BytesIO(b"multipart preamble" + png)
    stream.seek(len(b"multipart preamble"))

    fingerprint = fingerprint_file(stream)

    assert fingerprint == fingerprint_bytes(png)
    assert fingerprint.sha256 == hashlib.sha256(png).hexdigest()


def test_unseekable_stream_gives_the_same_fingerprint_as_a_seekable_one() -> None:
    png = encoded(scene(2), "PNG")

    from_pipe = fingerprint_file(io.BufferedReader(UnseekableStream(png)))

    assert from_pipe == fingerprint_bytes(png)
    assert from_pipe.phash is not None


# --- Sniffing ----------------------------------------------------------------------------------


def _wav() -> bytes:
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as sound:
        sound.setnchannels(1)
        sound.setsampwidth(2)
        sound.setframerate(8000)
        sound.writeframes(b"\x00\x01" * 800)
    return buffer.getvalue()


def _zip() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("manifest.csv", "external_ref,title\n1,Sunrise\n")
    return buffer.getvalue()


def _ftyp(major: bytes, *compatible: bytes) -> bytes:
    brands = major + b"\x00\x00\x02\x00" + b"".join(compatible)
    return struct.pack(">I", 8 + len(brands)) + b"ftyp" + brands + b"\x00\x00\x00\x08free"


SMALL_SCENE = scene(3, size=(64, 48))

SNIFFED = [
    pytest.param(encoded(SMALL_SCENE, "PNG"), "image/png", id="png"),
    pytest.param(encoded(SMALL_SCENE, "JPEG"), "image/jpeg", id="jpeg"),
    pytest.param(encoded(SMALL_SCENE, "GIF"), "image/gif", id="gif"),
    pytest.param(encoded(SMALL_SCENE, "WEBP"), "image/webp", id="webp"),
    pytest.param(encoded(SMALL_SCENE, "TIFF"), "image/tiff", id="tiff-little-endian"),
    pytest.param(b"MM\x00*\x00\x00\x00\x08", "image/tiff", id="tiff-big-endian"),
    pytest.param(encoded(SMALL_SCENE, "BMP"), "image/bmp", id="bmp"),
    pytest.param(_ftyp(b"avif", b"mif1", b"avif"), "image/avif", id="avif"),
    pytest.param(_ftyp(b"mif1", b"mif1", b"avif"), "image/avif", id="avif-generic-major-brand"),
    pytest.param(_ftyp(b"heic", b"mif1", b"heic"), "image/heic", id="heic"),
    pytest.param(_ftyp(b"mif1", b"mif1"), "image/heif", id="heif"),
    pytest.param(b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\n", "application/pdf", id="pdf"),
    pytest.param(_zip(), "application/zip", id="zip"),
    pytest.param(_ftyp(b"isom", b"isom", b"avc1"), "video/mp4", id="mp4"),
    pytest.param(_ftyp(b"qt  ", b"qt  "), "video/quicktime", id="mov"),
    pytest.param(_ftyp(b"M4A ", b"M4A ", b"mp42"), "audio/mp4", id="m4a"),
    pytest.param(b"ID3\x04\x00\x00\x00\x00\x01\x00TIT2", "audio/mpeg", id="mp3-id3"),
    pytest.param(b"\xff\xfb\x90\x64" + bytes(413), "audio/mpeg", id="mp3-frame"),
    pytest.param(_wav(), "audio/wav", id="wav"),
    pytest.param(b"fLaC\x00\x00\x00\x22" + bytes(34), "audio/flac", id="flac"),
    pytest.param(b"OggS\x00\x02" + bytes(22) + b"\x01\x1e\x01vorbis", "audio/ogg", id="ogg"),
    pytest.param("Grant terms, 許可.\r\n\tLine two.\n".encode(), "text/plain", id="utf8-text"),
    pytest.param("aé".encode() * 5000, "text/plain", id="text-head-ends-mid-character"),
    pytest.param(b"BMW 3 series photo shoot\n" * 3, "text/plain", id="text-starting-with-BM"),
    pytest.param("café".encode("latin-1"), "application/octet-stream", id="latin1-text-end"),
    pytest.param("café\n".encode("latin-1"), "application/octet-stream", id="latin1-text"),
    pytest.param(b"\x00\x01\x02\x03binary", "application/octet-stream", id="binary"),
]


@pytest.mark.parametrize(("content", "media_type"), SNIFFED)
def test_media_type_is_sniffed_from_content(content: bytes, media_type: str) -> None:
    assert sniff_media_type(content[:8192]) == media_type


@pytest.mark.parametrize("image_format", ["PNG", "JPEG", "GIF", "WEBP", "TIFF", "BMP"])
def test_every_sniffed_raster_format_is_decoded_with_size_and_phash(image_format: str) -> None:
    image = scene(4, size=(200, 150))
    data = encoded(image, image_format)

    fingerprint = fingerprint_bytes(data)

    assert fingerprint.media_type.startswith("image/")
    assert (fingerprint.width, fingerprint.height) == (200, 150)
    assert fingerprint.phash == image_phash(decoded(data))


@pytest.mark.skipif(not features.check("avif"), reason="Pillow built without AVIF")
def test_avif_is_decoded() -> None:
    data = encoded(scene(4, size=(200, 150)), "AVIF", quality=90)

    fingerprint = fingerprint_bytes(data, filename="still.avif")

    assert fingerprint.media_type == "image/avif"
    assert (fingerprint.width, fingerprint.height) == (200, 150)
    assert fingerprint.phash is not None


def test_image_format_that_cannot_be_decoded_is_rejected_as_unsupported() -> None:
    heic = _ftyp(b"heic", b"mif1", b"heic") + bytes(200)

    with pytest.raises(FileRejected) as rejected:
        fingerprint_bytes(heic, filename="IMG_0001.HEIC")

    assert rejected.value.code == "unsupported_type"


# --- Name against content ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("content", "filename"),
    [
        pytest.param(b"just some words\n", "photo.jpg", id="text-named-jpg"),
        pytest.param(encoded(SMALL_SCENE, "PNG"), "contract.pdf", id="png-named-pdf"),
        pytest.param(b"%PDF-1.4\n", "song.mp3", id="pdf-named-mp3"),
        pytest.param(encoded(SMALL_SCENE, "JPEG"), "notes.txt", id="jpeg-named-txt"),
    ],
)
def test_name_whose_extension_contradicts_the_content_is_rejected(
    content: bytes, filename: str
) -> None:
    with pytest.raises(FileRejected) as rejected:
        fingerprint_bytes(content, filename=filename)

    assert rejected.value.code == "type_mismatch"
    assert filename in str(rejected.value)


@pytest.mark.parametrize(
    ("content", "filename", "media_type"),
    [
        pytest.param(encoded(SMALL_SCENE, "PNG"), "C:\\Scans\\page.PNG", "image/png", id="win"),
        pytest.param(encoded(SMALL_SCENE, "JPEG"), "shot.jpeg", "image/jpeg", id="jpeg"),
        pytest.param(_ftyp(b"qt  "), "clip.mp4", "video/quicktime", id="quicktime-as-mp4"),
        pytest.param(_zip(), "report.docx", "application/zip", id="docx"),
        pytest.param(b"plain words\n", "README", "text/plain", id="no-extension"),
        pytest.param(b"plain words\n", "model.safetensors", "text/plain", id="unknown-ext"),
        pytest.param(b"\x00\x01binary", "photo.jpg", "application/octet-stream", id="unknown"),
    ],
)
def test_name_consistent_with_or_silent_about_the_content_is_accepted(
    content: bytes, filename: str, media_type: str
) -> None:
    assert fingerprint_bytes(content, filename=filename).media_type == media_type


# --- Safe decoding -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("width", "height", "max_pixels"),
    [
        # Over a 64 MP cap, under Pillow's own warning threshold (~89.5 MP).
        pytest.param(10_000, 8_000, 64_000_000, id="our-cap"),
        # Between Pillow's warning threshold and twice it: Pillow only warns.
        pytest.param(10_000, 10_000, 200_000_000, id="pillow-warning-made-an-error"),
        # Over twice Pillow's threshold: Pillow raises DecompressionBombError itself.
        pytest.param(20_000, 20_000, 64_000_000, id="pillow-error"),
    ],
)
def test_image_declaring_too_many_pixels_is_rejected_as_a_decompression_bomb(
    width: int, height: int, max_pixels: int
) -> None:
    bomb = png_declaring(width, height)
    assert len(bomb) < 200_000  # the point of a bomb: tiny file, huge image

    with warnings.catch_warnings(record=True) as emitted:
        warnings.simplefilter("always")
        with pytest.raises(FileRejected) as rejected:
            fingerprint_bytes(bomb, filename="bomb.png", max_pixels=max_pixels)

    assert type(rejected.value) is FileRejected
    assert rejected.value.code == "decompression_bomb"
    assert emitted == []


def test_default_pixel_cap_is_40_megapixels_checked_on_the_header_before_decoding() -> None:
    assert DEFAULT_MAX_PIXELS == 40_000_000
    # Two tiny black PNGs: the one at the cap is decoded, one pixel row more is not.
    at_cap = fingerprint_bytes(png_declaring(6_400, 6_250), filename="at-cap.png")
    with pytest.raises(FileRejected) as over_cap:
        fingerprint_bytes(png_declaring(6_400, 6_251), filename="over-cap.png")

    assert (at_cap.width, at_cap.height) == (6_400, 6_250)
    assert over_cap.value.code == "decompression_bomb"
    assert "40000000" in over_cap.value.message


def test_pixel_cap_is_configurable() -> None:
    data = encoded(scene(5, size=(100, 100)), "PNG")

    assert fingerprint_bytes(data, max_pixels=10_000).width == 100
    with pytest.raises(FileRejected) as rejected:
        fingerprint_bytes(data, max_pixels=9_999)

    assert rejected.value.code == "decompression_bomb"


def test_truncated_png_is_rejected_as_unreadable() -> None:
    data = encoded(scene(6), "PNG")

    with pytest.raises(FileRejected) as rejected:
        fingerprint_bytes(data[: len(data) * 2 // 3], filename="cut.png")

    assert rejected.value.code == "unreadable_image"


def test_jpeg_with_garbage_after_its_signature_is_rejected_as_unreadable() -> None:
    with pytest.raises(FileRejected) as rejected:
        fingerprint_bytes(b"\xff\xd8\xff" + bytes(range(256)) * 4)

    assert rejected.value.code == "unreadable_image"


# --- Perceptual hash ---------------------------------------------------------------------------


@pytest.mark.parametrize("seed", range(5))
def test_recompressed_and_resized_copies_hash_within_a_small_distance(seed: int) -> None:
    original = scene(seed)
    smaller = original.resize((384, 288), Image.Resampling.LANCZOS)  # 80 %
    copies = {
        "jpeg-60": decoded(encoded(original, "JPEG", quality=60)),
        "resized-80%": smaller,
        "resized-then-jpeg-60": decoded(encoded(smaller, "JPEG", quality=60)),
    }

    distances = {
        name: hamming_distance(image_phash(original), image_phash(copy))
        for name, copy in copies.items()
    }

    assert all(distance <= NEAR_DUPLICATE_DISTANCE for distance in distances.values()), distances


def test_different_images_hash_far_apart() -> None:
    hashes = [image_phash(scene(seed)) for seed in range(6)]

    for first, second in itertools.combinations(hashes, 2):
        assert hamming_distance(first, second) > DIFFERENT_IMAGE_DISTANCE


def test_file_and_decoded_image_hash_through_the_same_pipeline() -> None:
    data = encoded(scene(7), "JPEG", quality=85)

    assert fingerprint_bytes(data).phash == image_phash(decoded(data))


def test_greyscale_hash_equals_imagehash_hex() -> None:
    greyscale = scene(8).convert("L")

    assert phash_to_hex(image_phash(greyscale)) == str(imagehash.phash(greyscale, hash_size=8))


def _on_transparent_canvas(background: tuple[int, int, int, int]) -> Image.Image:
    """The shapes of a scene on a fully transparent canvas whose hidden colour is `background`."""
    canvas = Image.new("RGBA", (480, 360), background)
    mask = Image.new("L", (480, 360), 0)
    ImageDraw.Draw(mask).ellipse((60, 40, 300, 280), fill=255)
    ImageDraw.Draw(mask).rectangle((250, 150, 450, 330), fill=255)
    canvas.paste(scene(9), mask=mask)
    return canvas


def test_transparent_image_hashes_like_it_looks_over_white() -> None:
    hidden_black = _on_transparent_canvas((0, 0, 0, 0))
    hidden_magenta = _on_transparent_canvas((255, 0, 255, 0))
    flattened = Image.new("RGB", hidden_black.size, "white")
    flattened.paste(hidden_black, mask=hidden_black.getchannel("A"))

    assert image_phash(hidden_black) == image_phash(hidden_magenta) == image_phash(flattened)
    # Converting to greyscale without compositing would see the hidden black instead.
    assert image_phash(hidden_black) != image_phash(hidden_black.convert("RGB"))


def test_transparent_png_file_hashes_like_the_flattened_image() -> None:
    transparent = _on_transparent_canvas((0, 0, 0, 0))
    flattened = Image.new("RGB", transparent.size, "white")
    flattened.paste(transparent, mask=transparent.getchannel("A"))

    fingerprint = fingerprint_bytes(encoded(transparent, "PNG"), filename="logo.png")

    assert fingerprint.phash == image_phash(flattened)


def test_palette_and_greyscale_alpha_images_composite_over_white() -> None:
    transparent = _on_transparent_canvas((0, 0, 0, 0))
    flattened = Image.new("RGB", transparent.size, "white")
    flattened.paste(transparent, mask=transparent.getchannel("A"))
    greyscale_alpha = transparent.convert("LA")
    palette = decoded(encoded(transparent, "GIF"))  # P with a transparent index

    assert palette.mode == "P"
    assert "transparency" in palette.info
    assert hamming_distance(image_phash(greyscale_alpha), image_phash(flattened)) <= 2
    assert hamming_distance(image_phash(palette), image_phash(flattened)) <= 6


def test_exif_orientation_is_applied_before_hashing_and_measuring() -> None:
    upright = scene(10)
    stored_sideways = upright.transpose(Image.Transpose.ROTATE_90)
    exif = Image.Exif()
    exif[0x0112] = 6  # Orientation: rotate 90° clockwise to display
    data = encoded(stored_sideways, "JPEG", quality=95, exif=exif.tobytes())

    fingerprint = fingerprint_bytes(data, filename="portrait.jpg")

    assert (fingerprint.width, fingerprint.height) == upright.size
    assert fingerprint.phash is not None
    assert hamming_distance(fingerprint.phash, image_phash(upright)) <= NEAR_DUPLICATE_DISTANCE
    assert hamming_distance(image_phash(decoded(data)), image_phash(upright)) <= 2


def test_sixteen_bit_greyscale_hashes_like_its_eight_bit_export() -> None:
    eight_bit = scene(11).convert("L")
    sixteen_bit = eight_bit.convert("I").point(lambda value: value * 257).convert("I;16")

    assert image_phash(sixteen_bit) == image_phash(eight_bit)


def test_hashing_does_not_modify_the_callers_image() -> None:
    image = scene(12).convert("RGBA")
    before = image.tobytes()

    image_phash(image)

    assert image.mode == "RGBA"
    assert image.tobytes() == before


# --- Hash representations ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("0000000000000000", 0),
        ("7fffffffffffffff", 2**63 - 1),
        ("8000000000000000", -(2**63)),
        ("ffffffffffffffff", -1),
        ("fedcba9876543210", 0xFEDCBA9876543210 - 2**64),
    ],
)
def test_hex_is_the_unsigned_bit_pattern_of_the_signed_value(text: str, value: int) -> None:
    assert phash_from_hex(text) == value
    assert phash_to_hex(value) == text
    assert phash_to_hex(value & (2**64 - 1)) == text  # the unsigned form is accepted too


def test_uppercase_hex_is_accepted() -> None:
    assert phash_from_hex("FEDCBA9876543210") == phash_from_hex("fedcba9876543210")


@given(SIGNED_64)
def test_hex_round_trip(value: int) -> None:
    text = phash_to_hex(value)

    assert len(text) == 16
    assert phash_from_hex(text) == value


@pytest.mark.parametrize(
    "text",
    [
        "",
        "123456789abcdef",
        "123456789abcdef01",
        "0x3456789abcdef0",
        " 123456789abcdef",
        "0123456789abcdef\n",
        "+123456789abcdef",
        "1234_6789abcdef0",
        "123456789abcdefg",
        "١٢٣٤٥٦٧٨٩٠١٢٣٤٥٦",  # Arabic-Indic digits, which int() would accept
    ],
)
def test_anything_but_sixteen_hex_characters_is_not_a_phash(text: str) -> None:
    with pytest.raises(ValueError, match="16 hex characters"):
        phash_from_hex(text)


@pytest.mark.parametrize("value", [2**64, -(2**63) - 1])
def test_values_outside_64_bits_are_refused(value: int) -> None:
    with pytest.raises(ValueError):
        phash_to_hex(value)
    with pytest.raises(ValueError):
        hamming_distance(value, 0)


def test_hamming_distance_counts_differing_bits_of_the_64_bit_patterns() -> None:
    assert hamming_distance(0, -1) == 64
    assert hamming_distance(-1, 2**64 - 1) == 0
    assert hamming_distance(-(2**63), 0) == 1
    assert hamming_distance(0b1011, 0b0110) == 3


# --- Band index --------------------------------------------------------------------------------


def test_bands_are_21_21_and_22_bits_from_the_top() -> None:
    assert BAND_COUNT == 3
    assert BAND_BITS == (21, 21, 22)
    assert phash_bands(-1) == (2**21 - 1, 2**21 - 1, 2**22 - 1)
    assert phash_bands(phash_from_hex("8000000000000001")) == (2**20, 0, 1)
    assert phash_bands(1 << 43) == (1, 0, 0)
    assert phash_bands(1 << 42) == (0, 2**20, 0)


@given(SIGNED_64)
def test_bands_are_non_negative_and_reassemble_the_hash(value: int) -> None:
    top, middle, bottom = phash_bands(value)

    assert min(top, middle, bottom) >= 0
    assert _signed((top << 43) | (middle << 22) | bottom) == value


@pytest.mark.parametrize("max_distance", range(13))
def test_probe_sets_hold_every_band_value_within_a_third_of_the_distance(
    max_distance: int,
) -> None:
    value = phash_from_hex("a5a5f00f3c3c1234")
    radius = max_distance // 3

    probes = band_probes(value, max_distance)

    for band_value, width, probe_set in zip(phash_bands(value), BAND_BITS, probes, strict=True):
        assert len(probe_set) == sum(math.comb(width, k) for k in range(radius + 1))
        assert band_value in probe_set
        assert all(0 <= probe < 2**width for probe in probe_set)
        assert all((probe ^ band_value).bit_count() <= radius for probe in probe_set)


@pytest.mark.parametrize("max_distance", [-1, 13, True, 8.0, "8"])
def test_probe_distance_outside_0_to_12_is_refused(max_distance: object) -> None:
    with pytest.raises(ValueError):
        band_probes(0, max_distance)  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        phash_probe_cost(max_distance)  # type: ignore[arg-type]


@pytest.mark.parametrize("max_distance", range(13))
def test_probe_cost_is_the_number_of_probes_band_search_makes(max_distance: int) -> None:
    probes = band_probes(phash_from_hex("0f0f0f0f0f0f0f0f"), max_distance)

    assert phash_probe_cost(max_distance) == sum(len(probe_set) for probe_set in probes)


def test_probe_costs_at_the_distances_people_use() -> None:
    assert [phash_probe_cost(d) for d in (0, 2, 3, 5, 6, 8, 9, 11, 12)] == [
        3, 3, 67, 67, 718, 718, 4_918, 4_918, 24_203,
    ]
    assert phash_probes_total([8] * 100 + [12]) == 71_800 + 24_203


def test_probe_budget_holds_a_few_hundred_default_items_and_not_a_hundred_at_twelve() -> None:
    assert phash_probes_total([8] * 348) <= PHASH_PROBE_BUDGET < phash_probes_total([8] * 349)
    assert phash_probes_total([2] * 10_000) <= PHASH_PROBE_BUDGET
    assert phash_probes_total([12] * 11) > PHASH_PROBE_BUDGET


def band_index_search(
    query: int, max_distance: int, stored: list[int]
) -> tuple[set[int], set[int]]:
    """What the database does: look candidates up by band, then verify the full distance."""
    index: list[dict[int, set[int]]] = [{} for _ in range(BAND_COUNT)]
    for value in stored:
        for band, band_value in enumerate(phash_bands(value)):
            index[band].setdefault(band_value, set()).add(value)
    candidates: set[int] = set()
    for band, probe_set in enumerate(band_probes(query, max_distance)):
        for probe in probe_set:
            candidates |= index[band].get(probe, set())
    matches = {value for value in candidates if hamming_distance(query, value) <= max_distance}
    return candidates, matches


@settings(max_examples=300, deadline=None)
@given(
    query=SIGNED_64,
    max_distance=st.integers(min_value=0, max_value=12),
    flipped_bits=st.lists(st.sets(st.integers(min_value=0, max_value=63), max_size=16)),
    unrelated=st.lists(SIGNED_64, max_size=10),
)
def test_band_search_finds_exactly_what_brute_force_finds(
    query: int, max_distance: int, flipped_bits: list[set[int]], unrelated: list[int]
) -> None:
    stored = [_flip(query, bits) for bits in flipped_bits] + unrelated

    brute_force = {value for value in stored if hamming_distance(query, value) <= max_distance}
    candidates, matches = band_index_search(query, max_distance, stored)

    assert candidates >= brute_force
    assert matches == brute_force


def test_hash_at_the_threshold_with_its_bits_spread_over_every_band_is_found() -> None:
    # 3 + 3 + 2 = 8 flipped bits: only the lowest band is within 8 // 3 = 2 bits.
    query = phash_from_hex("0123456789abcdef")
    stored = _flip(query, (63, 62, 61, 42, 41, 40, 21, 0))
    assert hamming_distance(query, stored) == 8

    _, matches = band_index_search(query, 8, [stored])

    assert matches == {stored}
