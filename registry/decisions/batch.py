"""A check's items in two parts, so that the unregistered majority costs almost nothing.

95% of what a trainer checks is registered by no one, and most items arrive in one shape: an
object with a lower-case SHA-256 or a URL already in normal form, and perhaps a string `ref`.
Such items stay three columns here (index, ref, key) — *plain keys* — instead of becoming an
`Item`, an `ItemResult` and a rendered dict each. The key filter (selectors/key_filter) rules
most of them out; those are `unregistered` (no_match) without a lookup, and are rendered from a
template made by the one renderer (render.unregistered_template), so their bytes are the bytes
`result_render` writes. Every other item — a plain key the filter cannot rule out, a phash, an
identifier, a file, anything unusual or invalid — becomes an `Item` and takes the one decision
(load → rules) as before.

The plain lane only skips work; it never decides anything the rules would not: a key the
filter keeps goes through them, and a key it rules out is one no row holds. Property tests keep
`batch_parse` in agreement with `parse_item` and the plain rendering with `result_render`.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from django.utils.translation import gettext as _

from registry.decisions.load import facts_load
from registry.decisions.parse import MAX_REF_LENGTH, CheckRequest, Item, items_limit_check, parse_item
from registry.decisions.rules import ItemResult, decide_items
from registry.exceptions import ValidationFailed
from registry.matching.urls import InvalidURL, normalize_url_and_host
from registry.selectors.key_filter import registered_candidates

# The keys a plain item may have (anything else, even a key parse_item ignores, takes the Item path).
_PLAIN_SHA256 = frozenset({"sha256", "ref"})
_PLAIN_URL = frozenset({"url", "ref"})
# Many lower-case SHA-256 digests in a row: the whole column is validated by one match.
_SHA256_RUN = re.compile(r"(?:[0-9a-f]{64})*")


@dataclass(slots=True)
class PlainKeys:
    """Items of one kind in their common form, as columns (position k describes one item)."""

    indexes: list[int] = field(default_factory=list)
    refs: list[str | None] = field(default_factory=list)
    keys: list[str] = field(default_factory=list)  # the digest, or the normalised URL
    hosts: list[str] = field(default_factory=list)  # URLs only: the normalised URL's host

    def __len__(self) -> int:
        return len(self.indexes)


@dataclass(slots=True)
class ParsedBatch:
    """A check's items: plain SHA-256 and URL keys as columns, every other item as an `Item`."""

    size: int
    sha256s: PlainKeys
    urls: PlainKeys
    items: list[Item]


@dataclass(slots=True)
class DecidedBatch:
    """The answers: `results` for the items that took the rules (each plain key the filter kept
    among them), and every other plain key `unregistered` (no_match)."""

    size: int
    results: list[ItemResult]
    sha256s: PlainKeys
    urls: PlainKeys
    plain_decided: int = 0  # plain keys the filter kept: they are answered in `results`
    # The plain keys' results as JSON, when the `meanwhile` of batch_decide wrote them (render.plain_parts_render).
    plain_parts: list[bytes] | None = None

    @property
    def unregistered_plain(self) -> int:
        return len(self.sha256s) + len(self.urls) - self.plain_decided


def batch_parse(raw_items: Any, *, extra: int = 0) -> ParsedBatch:
    """`parse_items`, with plain SHA-256 and URL items kept as columns; `extra` counts files sent beside."""
    if not isinstance(raw_items, list):
        raise ValidationFailed(
            _("items must be a non-empty list."), fields={"items": [_("A non-empty list is required.")]},
        )
    items_limit_check(len(raw_items) + extra)
    sha256s, urls, items = PlainKeys(), PlainKeys(), []
    for index, raw in enumerate(raw_items):
        if type(raw) is dict:
            keys = raw.keys()
            ref = raw.get("ref")
            if ref is None or type(ref) is str:
                if ref is not None:
                    ref = ref[:MAX_REF_LENGTH]  # the same string when it is short enough
                if keys <= _PLAIN_SHA256 and type(digest := raw.get("sha256")) is str and len(digest) == 64:
                    sha256s.indexes.append(index)
                    sha256s.refs.append(ref)
                    sha256s.keys.append(digest)
                    continue
                if keys <= _PLAIN_URL and type(url := raw.get("url")) is str:
                    try:
                        normalized, host = normalize_url_and_host(url)
                    except InvalidURL:
                        pass  # parse_item says why
                    else:
                        urls.indexes.append(index)
                        urls.refs.append(ref)
                        urls.keys.append(normalized)
                        urls.hosts.append(host)
                        continue
        items.append(parse_item(index, raw))
    if sha256s.keys and not _SHA256_RUN.fullmatch("".join(sha256s.keys)):
        # Some digest is not lower-case hex: those (rare) items are parsed one by one.
        sha256s = _valid_digests_only(sha256s, raw_items, items)
    return ParsedBatch(size=len(raw_items) + extra, sha256s=sha256s, urls=urls, items=items)


def _valid_digests_only(column: PlainKeys, raw_items: list, items: list[Item]) -> PlainKeys:
    kept = PlainKeys()
    for index, ref, digest in zip(column.indexes, column.refs, column.keys, strict=True):
        if _SHA256_RUN.fullmatch(digest):
            kept.indexes.append(index)
            kept.refs.append(ref)
            kept.keys.append(digest)
        else:
            items.append(parse_item(index, raw_items[index]))
    return kept


def batch_decide(
    request: CheckRequest, batch: ParsedBatch, *, meanwhile: Callable[[], list[bytes]] | None = None,
) -> DecidedBatch:
    """Answer every item: plain keys the filter rules out are unregistered; the rest take the rules.

    `meanwhile` (render.plain_parts_render of the batch) is called while the database looks up the
    kept keys, when it does (PostgreSQL): the unregistered majority's results are written in the time
    the check would otherwise wait, and kept as `plain_parts`.
    """
    valid = [item for item in batch.items if item.error is None]
    # One filter call (one freshness fetch) for every key of the batch.
    maybe = registered_candidates(
        sha256s=[*batch.sha256s.keys, *(i.sha256 for i in valid if i.sha256)],
        urls=[*zip(batch.urls.keys, batch.urls.hosts, strict=True), *((i.url, i.url_host) for i in valid if i.url)],
        identifiers=[i.identifier for i in valid if i.identifier],
    )
    items = list(batch.items)
    sha256s, urls = batch.sha256s, batch.urls
    # The plain keys the filter keeps (a few in a hundred) become Items and take the rules.
    kept = [k for k, key in enumerate(sha256s.keys) if key in maybe.sha256s] if maybe.sha256s else []
    items += [Item(sha256s.indexes[k], sha256s.refs[k], sha256s.keys[k]) for k in kept]
    kept_urls = [k for k, key in enumerate(urls.keys) if key in maybe.urls] if maybe.urls else []
    items += [Item(urls.indexes[k], urls.refs[k], url=urls.keys[k], url_host=urls.hosts[k]) for k in kept_urls]
    written: list[list[bytes]] = []
    while_waiting = (lambda: written.append(meanwhile())) if meanwhile is not None else None
    results: list[ItemResult] = []
    if items:
        results = decide_items(request, items, facts_load(items, candidates=maybe, meanwhile=while_waiting))
    return DecidedBatch(size=batch.size, results=results, sha256s=sha256s, urls=urls,
                        plain_decided=len(kept) + len(kept_urls), plain_parts=written[0] if written else None)
