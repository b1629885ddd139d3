"""Normalise content URLs and match them against registered URL patterns.

A `WorkURL` is either an exact URL or a pattern. Exact URLs are matched by string equality, so
both the registered URL and the checked one go through `normalize_url`, which applies the
equivalences RFC 3986 section 6.2.2-6.2.3 allows for http(s): case of scheme and host, IDNA
hosts as punycode, default port, percent-encoding case, percent-encoded unreserved characters,
dot segments and the empty path. The query is kept as written (parameters are not reordered or
dropped: servers may care), apart from the same percent-encoding normalisation. The fragment is
dropped because it never reaches the server, so it cannot name different content.

A pattern is a URL containing `*` or ending with `$`, with RFC 9309 (robots.txt) semantics:
it matches from the start of the URL, `*` matches any sequence of characters, a trailing `$`
anchors the end, and without `$` it matches any URL it is a prefix of. A plain URL is never a
pattern, so registering "https://example.com/a" does not claim "https://example.com/a/b".
As in RFC 9309, `%2A` and `%24` in a pattern stand for a literal `*` and `$` in the URL; a `$`
anywhere but at the end is literal too. A URL that really ends with `$` must therefore be
registered with `%24`. The scheme and host of a pattern must be literal, so that every pattern
belongs to one host and can be looked up by it.

Hosts are converted with Python's built-in IDNA 2003 codec, which needs no extra dependency.
It differs from what browsers do (UTS #46 over IDNA 2008) for a few characters: "ß" and the
final sigma are mapped to "ss" and a plain sigma here, where a browser keeps them.
"""

import hashlib
import re
import unicodedata

import rfc3986
from django.utils.translation import gettext as _
from rfc3986 import exceptions as rfc3986_exceptions
from rfc3986 import normalizers, validators

MAX_URL_LENGTH = 2048

_DEFAULT_PORTS = {"http": 80, "https": 443}
_UNRESERVED = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")
_PERCENT_ENCODED = re.compile(r"%[0-9A-F]{2}")
_STRAY_PERCENT = re.compile(r"%(?![0-9A-Fa-f]{2})")
_SCHEME_AND_AUTHORITY = re.compile(r"[^:/?#]*:(?://[^/?#]*)?")
_VALIDATOR = (
    validators.Validator()
    .require_presence_of("scheme", "host")
    .check_validity_of("host", "path", "query")
)


# A URL already in normal form: lower-case http(s) scheme and ASCII host, no percent-encoding,
# no userinfo or fragment. Checks see mostly such URLs, so they skip the full parser; any
# other URL takes the slow path, and a property test keeps the two in agreement.
_ALREADY_NORMAL = re.compile(
    r"(https?)://([a-z0-9](?:[a-z0-9-]*[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]*[a-z0-9])?)*)(?::([0-9]{1,5}))?"
    r"(/[A-Za-z0-9\-._~!$&'()*+,;=:@/]*)?(\?[A-Za-z0-9\-._~!$&'()*+,;=:@/?]*)?"
)
_DOT_SEGMENT = re.compile(r"/\.\.?(?:/|$)")
# The host of a normalised URL: it has no userinfo, so the host runs to the port, path or query.
_NORMAL_HOST = re.compile(r"https?://(\[[^\]]*\]|[^/?#:\[\]]*)")


class InvalidURL(ValueError):
    """A URL that cannot be registered or matched; the message says why."""


def _fast_normal_form(text: str) -> tuple[str, str] | None:
    """(normal form, host) of a URL the fast pattern covers, else None (the full parser decides)."""
    match = _ALREADY_NORMAL.fullmatch(text)
    if match is None:
        return None
    scheme, host, port, path, query = match.groups()
    if (path and _DOT_SEGMENT.search(path)) or host.rsplit(".", 1)[-1].isdigit():
        return None  # dot segments to remove, or an IPv4-like host to validate: the full parser
    authority = host
    if port is not None:
        number = int(port)
        if not 0 < number < 65536 or port.startswith("0"):
            return None
        if number != _DEFAULT_PORTS[scheme]:
            authority = f"{host}:{number}"
    normalized = f"{scheme}://{authority}{path or '/'}{query or ''}"
    return (normalized, host) if len(normalized) <= MAX_URL_LENGTH else None


def normalize_url_and_host(raw: str) -> tuple[str, str]:
    """`normalize_url` and `url_host` of the result, the host read in the same pass when it can be."""
    if len(raw) <= MAX_URL_LENGTH and (fast := _fast_normal_form(raw)) is not None:
        return fast
    normalized = normalize_url(raw)
    return normalized, url_host(normalized)


def normalize_url(raw: str) -> str:
    """Return the normalised form of an http or https URL.

    Two URLs that RFC 3986 considers equivalent normalise to the same string, e.g.
    "HTTP://Example.com:80/a/./b/../%7Ec#top" and "http://example.com/a/~c".
    """
    if len(raw) <= MAX_URL_LENGTH and (fast := _fast_normal_form(raw)) is not None:
        return fast[0]
    text = _checked_text(raw)
    try:
        iri = rfc3986.iri_reference(text)
        # The IRI's host is read through authority_info(), which raises on a malformed
        # authority; encode() would instead drop such a host without a word.
        iri.authority_info()
        uri = iri.encode(idna_encoder=_ascii_label).normalize()
    except (rfc3986_exceptions.RFC3986Exception, UnicodeError):
        raise InvalidURL(_("not a valid URL: cannot parse its host or port")) from None

    scheme = uri.scheme or ""
    if scheme not in _DEFAULT_PORTS:
        raise InvalidURL(_("only http and https URLs can be registered or checked"))
    if uri.userinfo is not None:
        raise InvalidURL(_("a URL must not contain a user name or password"))
    authority = uri.host
    if uri.port:  # "" (a bare colon) counts as no port, as RFC 3986 section 6.2.3 says
        port = int(uri.port)
        if not 0 < port < 65536:
            raise InvalidURL(_("not a valid URL: port %(port)d is out of range") % {"port": port})
        if port != _DEFAULT_PORTS[scheme]:
            authority = f"{authority}:{port}"
    try:
        _VALIDATOR.validate(uri)
    except rfc3986_exceptions.ValidationError:
        if not uri.host:
            raise InvalidURL(_("not a valid URL: it has no host")) from None
        raise InvalidURL(_("not a valid URL: its host or path is malformed")) from None

    # RFC 3986 decodes unreserved characters before removing dot segments (%2E%2E is "..").
    path = normalizers.remove_dot_segments(_decode_unreserved(uri.path or "")) or "/"
    normalized = f"{scheme}://{authority}{path}"
    if uri.query is not None:
        normalized += "?" + _decode_unreserved(uri.query)
    if len(normalized) > MAX_URL_LENGTH:
        raise InvalidURL(
            _("URL longer than %(limit)d characters once normalised") % {"limit": MAX_URL_LENGTH}
        )
    return normalized


def url_key(normalized: str) -> str:
    """The indexed form of a normalised URL or pattern: its SHA-256 (URLs run to 2,048 characters)."""
    return hashlib.sha256(normalized.encode()).hexdigest()


def url_key_digest(normalized: str) -> bytes:
    """`url_key` as the raw digest (what the key filter fingerprints)."""
    return hashlib.sha256(normalized.encode()).digest()


def url_host(normalized_url: str) -> str:
    """Return the host of a normalised URL or pattern (without its port), for lookups by host."""
    match = _NORMAL_HOST.match(normalized_url)
    if match is not None and match.group(1):
        return match.group(1)
    host = rfc3986.uri_reference(normalized_url).host
    if not host:
        raise InvalidURL(_("URL has no host"))
    return host


def is_pattern(raw: str) -> bool:
    """Tell whether a registered URL is a pattern (contains `*` or ends with `$`)."""
    text = raw.strip()
    return "*" in text or text.endswith("$")


def normalize_pattern(raw: str) -> tuple[str, str]:
    """Return `(host, normalised pattern)` for an RFC 9309-style URL pattern.

    The path and query are normalised like a URL's, so a pattern is compared with URLs in the
    same form; runs of `*` collapse to one, and a `$` that is not the final anchor becomes %24.
    """
    text = raw.strip()
    if not is_pattern(text):
        raise InvalidURL(_("not a pattern: it has neither * nor a trailing $"))
    anchored = text.endswith("$")
    body = text.removesuffix("$")
    scheme_and_authority = _SCHEME_AND_AUTHORITY.match(body)
    if scheme_and_authority is not None and "*" in scheme_and_authority.group():
        raise InvalidURL(_("a pattern's scheme and host must be written out, without *"))
    if "#" in body:
        raise InvalidURL(_("a pattern cannot have a fragment"))
    normalized = re.sub(r"\*+", "*", normalize_url(body)).replace("$", "%24")
    return url_host(normalized), normalized + ("$" if anchored else "")


def pattern_matches(pattern: str, url: str) -> bool:
    """Tell whether a normalised pattern matches a normalised URL, with RFC 9309 semantics.

    Matching the literal pieces between `*`s leftmost-first is exact for this grammar and
    takes linear time per piece, so no pattern can make it backtrack.
    """
    anchored = pattern.endswith("$")
    first, *rest = pattern.removesuffix("$").split("*")
    # A pattern's %2A and %24 stand for a literal * and $ in the URL (RFC 9309 section 2.2.3).
    url = url.replace("*", "%2A").replace("$", "%24")
    if not url.startswith(first):
        return False
    if not rest:
        return url == first or not anchored
    position = len(first)
    *middle, last = rest
    for piece in middle:
        found = url.find(piece, position)
        if found < 0:
            return False
        position = found + len(piece)
    if anchored:
        return url.endswith(last) and len(url) - len(last) >= position
    return url.find(last, position) >= 0


def _checked_text(raw: str) -> str:
    """Strip the input and refuse what no normalisation should try to repair."""
    text = raw.strip()
    if not text:
        raise InvalidURL(_("URL is empty"))
    if len(text) > MAX_URL_LENGTH:
        raise InvalidURL(_("URL longer than %(limit)d characters") % {"limit": MAX_URL_LENGTH})
    if any(character.isspace() or unicodedata.category(character) == "Cc" for character in text):
        raise InvalidURL(_("URL contains spaces or control characters; percent-encode them"))
    # rfc3986 would re-encode every % of a component containing a stray one, turning valid
    # escapes such as %20 into %2520; a URL like that is broken, so say so instead.
    if _STRAY_PERCENT.search(text):
        raise InvalidURL(_("URL contains a %% that is not followed by two hex digits") % {})
    return text


def _ascii_label(label: str) -> str:
    """Encode one host label to punycode (IDNA); ASCII labels are left to be lower-cased."""
    return label if label.isascii() else label.encode("idna").decode("ascii")


def _decode_unreserved(component: str) -> str:
    """Decode percent-encoded unreserved characters (RFC 3986 section 6.2.2.2)."""

    def decode(match: re.Match[str]) -> str:
        character = chr(int(match.group()[1:], 16))
        return character if character in _UNRESERVED else match.group()

    return _PERCENT_ENCODED.sub(decode, component)
