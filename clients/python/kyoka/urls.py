"""URL normal form, the registry's, for deciding URLs offline from a licence snapshot.

A snapshot lists URLs in Kyoka's normal form (RFC 3986 section 6.2.2-6.2.3 for http and https:
case of scheme and host, default port, percent-encoding case, unreserved characters decoded, dot
segments removed, empty path as "/", fragment dropped, query kept as written). A URL must reach
exactly that string to be found. Most URLs already are in normal form, and `normalize_url` then
returns them untouched, as the registry does. Anything else goes through the same few steps with
the standard library; if the result is still not plainly in normal form (non-ASCII paths, odd
characters the registry would percent-encode, IPv4-like hosts), it answers None: the client cannot
be sure what the registry would look up, and an unsure offline answer is *not permitted*. A test
holds this function to the registry's over generated URLs.
"""

from __future__ import annotations

import re
import unicodedata
from urllib.parse import urlsplit

MAX_URL_LENGTH = 2048
_DEFAULT_PORTS = {"http": 80, "https": 443}
_UNRESERVED = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")
_PERCENT = re.compile(r"%[0-9A-Fa-f]{2}")
_STRAY_PERCENT = re.compile(r"%(?![0-9A-Fa-f]{2})")
# The registry's own test for "already in normal form" (registry/matching/urls.py), verbatim.
_ALREADY_NORMAL = re.compile(
    r"(https?)://([a-z0-9](?:[a-z0-9-]*[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]*[a-z0-9])?)*)(?::([0-9]{1,5}))?"
    r"(/[A-Za-z0-9\-._~!$&'()*+,;=:@/]*)?(\?[A-Za-z0-9\-._~!$&'()*+,;=:@/?]*)?"
)
# The same shape with percent escapes allowed: upper case, and never of an unreserved character
# (the registry decodes those), which is what the registry's full normalisation leaves.
_NORMAL_WITH_ESCAPES = re.compile(
    r"(https?)://([a-z0-9](?:[a-z0-9-]*[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]*[a-z0-9])?)*)(?::([0-9]{1,5}))?"
    r"(/(?:[A-Za-z0-9\-._~!$&'()*+,;=:@/]|%[0-9A-F]{2})*)?(\?(?:[A-Za-z0-9\-._~!$&'()*+,;=:@/?]|%[0-9A-F]{2})*)?"
)
_DOT_SEGMENT = re.compile(r"/\.\.?(?:/|$)")
_NORMAL_HOST = re.compile(r"https?://([^/?#:\[\]]*)")


def _fast_normal_form(text: str) -> str | None:
    match = _ALREADY_NORMAL.fullmatch(text)
    if match is None:
        return None
    scheme, host, port, path, query = match.groups()
    if (path and _DOT_SEGMENT.search(path)) or host.rsplit(".", 1)[-1].isdigit():
        return None
    authority = host
    if port is not None:
        number = int(port)
        if not 0 < number < 65536 or port.startswith("0"):
            return None
        if number != _DEFAULT_PORTS[scheme]:
            authority = f"{host}:{number}"
    normalized = f"{scheme}://{authority}{path or '/'}{query or ''}"
    return normalized if len(normalized) <= MAX_URL_LENGTH else None


def normalize_url(raw: str) -> str | None:
    """The registry's normal form of `raw`, or None when the client cannot be sure of it."""
    if not isinstance(raw, str):
        return None
    if len(raw) <= MAX_URL_LENGTH and (fast := _fast_normal_form(raw)) is not None:
        return fast
    text = raw.strip()
    if not text or len(text) > MAX_URL_LENGTH or _STRAY_PERCENT.search(text):
        return None
    if any(ch.isspace() or unicodedata.category(ch) == "Cc" for ch in text):
        return None
    try:
        parts = urlsplit(text)
        scheme = parts.scheme.lower()
        if scheme not in _DEFAULT_PORTS or parts.username is not None or parts.password is not None:
            return None
        host = parts.hostname or ""
        port = parts.port
    except ValueError:
        return None
    if "[" in parts.netloc or not host:
        return None
    try:
        host = ".".join(label if label.isascii() else label.encode("idna").decode("ascii") for label in host.split("."))
    except UnicodeError:
        return None
    host = host.lower()
    authority = host if port in (None, _DEFAULT_PORTS[scheme]) else f"{host}:{port}"
    # As the registry: its URL library removes dot segments, then unreserved characters are
    # decoded (%2E%2E becomes "..") and dot segments removed once more.
    path = _remove_dot_segments(_decode_unreserved(_remove_dot_segments(parts.path))) or "/"
    candidate = f"{scheme}://{authority}{path}"
    if parts.query or text.split("#", 1)[0].endswith("?"):
        candidate += "?" + _decode_unreserved(parts.query)
    # Only a result the registry would itself leave untouched is trusted.
    if _fast_normal_form(candidate) == candidate:
        return candidate
    return candidate if _escaped_normal_form(candidate) else None


def _escaped_normal_form(candidate: str) -> bool:
    """A candidate with percent escapes (%00, %C3%A9) in the registry's own form, and nothing else odd."""
    match = _NORMAL_WITH_ESCAPES.fullmatch(candidate)
    if match is None or len(candidate) > MAX_URL_LENGTH:
        return False
    escapes = _PERCENT.findall(candidate)
    if any(chr(int(escape[1:], 16)) in _UNRESERVED for escape in escapes):
        return False
    port = match.group(3)
    if port is not None and (not 0 < int(port) < 65536 or port.startswith("0")):
        return False
    path = match.group(4) or ""
    return not _DOT_SEGMENT.search(path) and not match.group(2).rsplit(".", 1)[-1].isdigit()


def url_host(normalized: str) -> str | None:
    match = _NORMAL_HOST.match(normalized)
    return match.group(1) if match else None


def _decode_unreserved(component: str) -> str:
    def decode(match: re.Match[str]) -> str:
        character = chr(int(match.group()[1:], 16))
        return character if character in _UNRESERVED else match.group().upper()

    return _PERCENT.sub(decode, component)


def _remove_dot_segments(path: str) -> str:
    """Dot-segment removal exactly as the registry's URL library does it (it, not RFC 3986's
    letter, decides what the registry looks up: the two differ for paths starting with "//..")."""
    output: list[str] = []
    for segment in path.split("/"):
        if segment == ".":
            continue
        if segment != "..":
            output.append(segment)
        elif output:
            output.pop()
    if path.startswith("/") and (not output or output[0]):
        output.insert(0, "")
    if path.endswith(("/.", "/..")):
        output.append("")
    return "/".join(output)


def pattern_matches(pattern: str, url: str) -> bool:
    """RFC 9309 matching of a normalised pattern against a normalised URL (the registry's rule)."""
    anchored = pattern.endswith("$")
    first, *rest = pattern.removesuffix("$").split("*")
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
