"""Host names a studio may claim, and addresses Kyoka may connect to.

A claim's host is stored in the form URL registrations have after `normalize_url` (lower
case, IDNA labels as punycode, no port, no trailing dot), so that `VerifiedHost.covers` compares
like with like. A claim must lie below a public suffix (`com`, `co.jp`, `github.io`): the
names under a suffix belong to unrelated owners, and a proof that covers subdomains would
otherwise speak for all of them. The Public Suffix List is the snapshot
bundled with `publicsuffixlist` (private section included, so `github.io` counts); it is never
fetched at run time.
"""

from __future__ import annotations

import functools
import ipaddress
import re

import idna
from django.utils.translation import gettext as _
from publicsuffixlist import PublicSuffixList

from registry.matching.urls import InvalidURL, normalize_url, url_host

MAX_HOST_INPUT = 300
MAX_HOST_LENGTH = 253
_LABEL = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?")
# A last label of digits or hex is how URL parsers spell IPv4 (127.1, 0x7f.1, 2130706433).
_NUMERIC_LABEL = re.compile(r"(?:0x[0-9a-f]*|[0-9]+)")


class HostRefused(ValueError):
    """A host no one may claim; `code` is stable, the message is for people."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@functools.cache
def _public_suffixes() -> PublicSuffixList:
    # accept_unknown: a TLD the list does not know is treated as a public suffix too.
    return PublicSuffixList(accept_unknown=True)


def _is_ip_literal(text: str) -> bool:
    candidate = text.strip("[]")
    try:
        ipaddress.ip_address(candidate)
    except ValueError:
        return False
    return True


def claim_host(raw: str) -> str:
    """The normal form of a host a studio may claim, or HostRefused saying why not.

    Accepts a bare host (`Cdn.Example.com.`, `例え.jp`) or an https URL of one with nothing
    after the host but `/`.
    """
    text = (raw or "").strip()
    if not text:
        raise HostRefused("invalid_host", _("Give a host name, like cdn.example.com."))
    if len(text) > MAX_HOST_INPUT:
        raise HostRefused("invalid_host", _("That host name is too long."))
    url = text if text.lower().startswith(("https://", "http://")) else None
    if url is None:
        if _is_ip_literal(text):
            raise HostRefused("ip_literal", _("An IP address cannot be claimed; claim a host name."))
        if any(character in text for character in "/:@?#[]%\\"):
            raise HostRefused("invalid_host", _("Give the host name alone, like cdn.example.com."))
        url = f"https://{text.rstrip('.')}/"
    try:
        normalized = normalize_url(url)
    except InvalidURL as exc:
        raise HostRefused("invalid_host", _("That is not a valid host name.")) from exc
    host = url_host(normalized)
    if normalized != f"https://{host}/" and normalized != f"http://{host}/":
        raise HostRefused("invalid_host", _("Give the host name alone, like cdn.example.com."))
    host = host.rstrip(".")
    if _is_ip_literal(host):
        raise HostRefused("ip_literal", _("An IP address cannot be claimed; claim a host name."))
    labels = host.split(".")
    if _NUMERIC_LABEL.fullmatch(labels[-1]):
        raise HostRefused("ip_literal", _("An IP address cannot be claimed; claim a host name."))
    if len(host) > MAX_HOST_LENGTH or not all(_LABEL.fullmatch(label) for label in labels):
        raise HostRefused("invalid_host", _("That is not a valid host name."))
    for label in labels:
        if label.startswith("xn--"):
            try:
                idna.decode(label)
            except idna.IDNAError as exc:
                raise HostRefused("invalid_host", _("That is not a valid host name.")) from exc
    if len(labels) < 2 or _public_suffixes().is_public(host):
        raise HostRefused(
            "public_suffix",
            _("%(host)s is a public suffix that many unrelated sites share; claim your own domain under it.")
            % {"host": host},
        )
    return host


def address_refusal(address: str) -> str | None:
    """Why Kyoka must not connect to `address`, or None for a public unicast address.

    IPv4 inside IPv6 (mapped ::ffff:a.b.c.d, 6to4 2002::/16) is judged by the IPv4 address it
    carries, since that is where the packets go.
    """
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return "not_an_address"
    if isinstance(ip, ipaddress.IPv6Address):
        embedded = ip.ipv4_mapped or ip.sixtofour
        if embedded is not None:
            return address_refusal(str(embedded))
    for refusal, applies in (
        ("unspecified", ip.is_unspecified),
        ("loopback", ip.is_loopback),
        ("link_local", ip.is_link_local),
        ("multicast", ip.is_multicast),
        ("private", ip.is_private),
        ("reserved", ip.is_reserved),
        ("not_global", not ip.is_global),
    ):
        if applies:
            return refusal
    return None
