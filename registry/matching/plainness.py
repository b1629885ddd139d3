"""Whether an image is too plain for its perceptual hash to tell it apart from others.

A 64-bit pHash of a flat-colour image (a cel, a logo, UI art: a background and a few solid
shapes) carries little information: among 1,500 distinct generated flat images, 270 pairs lie
within 8 bits. A similarity flag between two such images would only be noise for reviewers,
so conflict detection raises none when either image is plain.

The test: the Shannon entropy of the grey-level histogram of a 64x64 thumbnail (the same
greyscale the pHash sees, over white), in bits. A background with a handful of solid shapes
has a few grey levels plus their anti-aliased edges (measured: at most 3.8 bits for 900
generated images of 2 to 8 shapes, mean 1.6), under PLAIN_ENTROPY_BITS; a
photograph, a painted background or a drawing with gradients has more (at least 5.3 bits
for 100 generated gradient scenes, mean 6.0; see
tests/registry/disputes/test_similarity_flags.py for measured values on generated images).
"""

from __future__ import annotations

import math
from typing import BinaryIO

from PIL import Image, UnidentifiedImageError

THUMBNAIL_SIZE = (64, 64)
PLAIN_ENTROPY_BITS = 4.5


def image_entropy(image: Image.Image) -> float:
    """Bits of the grey-level histogram of the image's 64x64 greyscale thumbnail."""
    if image.has_transparency_data:
        opaque = Image.new("RGBA", image.size, (255, 255, 255, 255))
        image = Image.alpha_composite(opaque, image.convert("RGBA"))
    grey = image.convert("L").resize(THUMBNAIL_SIZE, Image.Resampling.BILINEAR)
    counts = [count for count in grey.histogram() if count]
    total = sum(counts)
    return -sum(count / total * math.log2(count / total) for count in counts)


def image_is_plain(image: Image.Image) -> bool:
    return image_entropy(image) < PLAIN_ENTROPY_BITS


def file_is_plain(fileobj: BinaryIO) -> bool | None:
    """Whether a stored image file is plain; None when it cannot be read as an image."""
    try:
        with Image.open(fileobj) as image:
            image.draft("L", THUMBNAIL_SIZE)  # JPEG: decode at a fraction of the size
            return image_is_plain(image)
    except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError):
        return None
