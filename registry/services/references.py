"""Turning what people type (URLs, identifiers) into the indexed forms a check looks up."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass

from django.utils.translation import gettext as _

from registry.exceptions import ValidationFailed
from registry.matching.identifiers import InvalidIdentifier, parse_identifier
from registry.matching.urls import InvalidURL, is_pattern, normalize_pattern, normalize_url, url_host


@dataclass(frozen=True)
class UrlReference:
    url: str
    host: str
    is_pattern: bool

    @property
    def url_hash(self) -> str:
        return url_key(self.url)


def url_key(normalized: str) -> str:
    return hashlib.sha256(normalized.encode()).hexdigest()


def parse_url_reference(raw: str) -> UrlReference:
    """Raise InvalidURL for anything that is neither a URL nor an RFC 9309 pattern."""
    raw = raw.strip()
    if is_pattern(raw):
        host, pattern = normalize_pattern(raw)
        return UrlReference(url=pattern, host=host, is_pattern=True)
    url = normalize_url(raw)
    return UrlReference(url=url, host=url_host(url), is_pattern=False)


def parse_references(
    *, urls: Iterable[str] = (), identifiers: Iterable[str] = ()
) -> tuple[list[UrlReference], list[tuple[str, str]]]:
    """Validate every URL and identifier; report all the bad ones at once, by field."""
    errors: dict[str, list[str]] = {}
    parsed_urls: dict[str, UrlReference] = {}
    for raw in urls:
        try:
            ref = parse_url_reference(raw)
        except InvalidURL as exc:
            errors.setdefault("urls", []).append(f"{raw!r}: {exc}")
        else:
            parsed_urls[ref.url] = ref
    parsed_identifiers: dict[tuple[str, str], None] = {}
    for raw in identifiers:
        try:
            parsed_identifiers[parse_identifier(raw)] = None
        except InvalidIdentifier as exc:
            errors.setdefault("identifiers", []).append(f"{raw!r}: {exc}")
    if errors:
        raise ValidationFailed(_("Some references are not valid."), fields=errors)
    return list(parsed_urls.values()), list(parsed_identifiers)
