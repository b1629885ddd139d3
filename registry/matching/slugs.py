"""Readable slugs for organisation names in any script: さくらスタジオ → sakura-sutajio, not "org".

Japanese is romanised (Hepburn, with pykakasi's dictionary for kanji); anything else that has an
ASCII form keeps it (Café → cafe). Uniqueness is the caller's, which knows the table.
"""

from __future__ import annotations

import functools
import re
import unicodedata

from django.utils.text import slugify

MAX_SLUG_BASE = 60
_JAPANESE = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uff66-\uff9f]")


@functools.cache
def _kakasi():
    import pykakasi  # loads its dictionaries once, on the first Japanese name

    return pykakasi.kakasi()


def romanise(text: str) -> str:
    """Japanese runs in Hepburn romaji, word by word; other text as it is."""
    if not _JAPANESE.search(text):
        return text
    return " ".join(part["hepburn"] or part["orig"] for part in _kakasi().convert(text))


def slug_base(name: str) -> str:
    """The slug a name suggests (before making it unique); "org" only when nothing readable is left."""
    # Japanese punctuation (・、「」…) separates words, as a space would.
    text = re.sub(r"[\u3000-\u303f\u30fb\uff65]", " ", unicodedata.normalize("NFKC", name))
    slug = slugify(romanise(text))[:MAX_SLUG_BASE].strip("-")
    return slug or "org"
