"""Test data builders that don't need the database."""

from __future__ import annotations

import io
import random

from PIL import Image, ImageDraw


def make_image_bytes(seed: int, *, size: tuple[int, int] = (320, 240), fmt: str = "PNG", quality: int = 90) -> bytes:
    """A scene of shapes over a gradient: distinct seeds give perceptually distinct images."""
    rng = random.Random(seed)
    width, height = size
    image = Image.linear_gradient("L").resize(size).convert("RGB")
    draw = ImageDraw.Draw(image)
    for _ in range(10):
        x0, y0 = rng.randrange(width), rng.randrange(height)
        box = (x0, y0, x0 + rng.randrange(width // 8, width // 2), y0 + rng.randrange(height // 8, height // 2))
        colour = tuple(rng.randrange(256) for _ in range(3))
        (draw.ellipse if rng.random() < 0.5 else draw.rectangle)(box, fill=colour)
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **({"quality": quality} if fmt == "JPEG" else {}))
    return buffer.getvalue()
