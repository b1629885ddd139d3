"""Fingerprints of local files, computed with exactly the registry's pipeline.

`sha256` is over the file's bytes, streamed. `phash` (the `images` extra: Pillow and ImageHash)
repeats Kyoka's one fixed pHash pipeline step for step — EXIF orientation applied, transparency
composited over white, 16/32-bit greyscale stretched to 0..255, LAB read by its lightness, then
8-bit greyscale and `imagehash.phash(hash_size=8)`, bits read row-major — so a picture hashes here
as it does when its owner registers it. A test hashes the same images with both and compares.
A pHash only ever finds *similar* works, which never permit; the decision rests on the sha256.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

CHUNK = 1024 * 1024
# The registry refuses images above 64 megapixels as likely bombs; so does the client.
MAX_PIXELS = 64_000_000


def sha256_file(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def phash_available() -> bool:
    try:
        import imagehash  # noqa: F401
        import numpy  # noqa: F401
        from PIL import Image  # noqa: F401
    except ImportError:
        return False
    return True


def phash_file(path: str | Path) -> str | None:
    """16 hex characters, as the API takes them; None when the file is not a readable image."""
    from PIL import Image, UnidentifiedImageError

    Image.MAX_IMAGE_PIXELS = MAX_PIXELS
    try:
        with Image.open(path) as image:
            image.load()
            return phash_image(image)
    except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError):
        return None


def phash_image(image) -> str:
    import imagehash
    import numpy
    from PIL import ImageOps

    upright = image.copy()
    ImageOps.exif_transpose(upright, in_place=True)
    bits = imagehash.phash(_greyscale_over_white(upright), hash_size=8).hash
    return f"{int.from_bytes(numpy.packbits(bits.flatten()).tobytes(), 'big'):016x}"


def _greyscale_over_white(image):
    from PIL import Image

    if image.has_transparency_data:
        opaque_white = Image.new("RGBA", image.size, (255, 255, 255, 255))
        return Image.alpha_composite(opaque_white, image.convert("RGBA")).convert("L")
    if image.mode in ("I", "F") or image.mode.startswith("I;16"):
        floating = image.convert("F")
        highest = floating.getextrema()[1]
        if isinstance(highest, int | float) and highest > 0:
            floating = floating.point(lambda value: value * (255.0 / highest))
        return floating.convert("L")
    if image.mode == "LAB":
        return image.getchannel("L")
    return image.convert("L")
