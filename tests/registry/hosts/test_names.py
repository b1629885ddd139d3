"""Which hosts may be claimed, in which form they are kept, and which addresses are off limits."""

from __future__ import annotations

import pytest

from registry.hosts.names import HostRefused, address_refusal, claim_host
from registry.matching.urls import normalize_url, url_host


@pytest.mark.parametrize(("typed", "stored"), [
    ("cdn.example.com", "cdn.example.com"),
    ("  CDN.Example.COM.  ", "cdn.example.com"),
    ("https://cdn.example.com", "cdn.example.com"),
    ("https://cdn.example.com/", "cdn.example.com"),
    ("HTTPS://Studio.Example:443/", "studio.example"),
    ("例え.jp", "xn--r8jz45g.jp"),
    ("アニメ.example.co.jp", "xn--cck5dwc.example.co.jp"),
    ("someone.github.io", "someone.github.io"),
])
def test_a_host_is_kept_in_the_form_url_registrations_have(typed, stored):
    assert claim_host(typed) == stored


def test_a_claim_and_a_registered_url_on_it_name_the_host_alike():
    fullwidth_anime = "\uff21\uff4e\uff49\uff4d\uff45"  # full-width letters fold to "anime" (IDNA)
    assert claim_host(f"{fullwidth_anime}.Example.com") == "anime.example.com"
    assert claim_host(f"{fullwidth_anime}.Example.com") == url_host(normalize_url(f"https://{fullwidth_anime}.EXAMPLE.com/a"))


@pytest.mark.parametrize("typed", ["com", "co.jp", "github.io", "jp", "xn--zckzah", "s3.amazonaws.com", "example"])
def test_a_public_suffix_cannot_be_claimed(typed):
    with pytest.raises(HostRefused) as refused:
        claim_host(typed)
    assert refused.value.code == "public_suffix"


@pytest.mark.parametrize("typed", ["127.0.0.1", "10.0.0.1", "::1", "[::1]", "https://127.0.0.1/", "2130706433",
                                   "127.1", "0x7f.0.0.1", "https://[fe80::1]/", "studio.0x7f"])
def test_an_ip_literal_cannot_be_claimed(typed):
    with pytest.raises(HostRefused) as refused:
        claim_host(typed)
    assert refused.value.code == "ip_literal"


@pytest.mark.parametrize("typed", [
    "", "   ", "cdn.example.com/path", "https://cdn.example.com/path", "user@cdn.example.com",
    "https://user@cdn.example.com/", "cdn.example.com:8443", "https://cdn.example.com:8443/", "under_score.example.com",
    "-lead.example.com", "trail-.example.com", "a..example.com", "xn--zz.example.com", "a" * 64 + ".example.com",
    ".".join(["a" * 60] * 5) + ".com", "cdn.example.com?x", "ftp://cdn.example.com/", "x" * 400,
    "cdn example.com", "cdn.exa\x00mple.com", "cdn.exa\tmple.com", "cdn.exa%41mple.com",
])
def test_what_is_not_a_host_name_cannot_be_claimed(typed):
    with pytest.raises(HostRefused):
        claim_host(typed)


@pytest.mark.parametrize(("address", "refusal"), [
    ("127.0.0.1", "loopback"), ("127.255.0.9", "loopback"), ("10.0.0.1", "private"), ("172.16.0.1", "private"),
    ("172.31.255.255", "private"), ("192.168.1.1", "private"), ("169.254.169.254", "link_local"),
    ("100.64.0.1", "not_global"), ("0.0.0.0", "unspecified"), ("224.0.0.1", "multicast"),
    ("239.255.255.250", "multicast"), ("240.0.0.1", "private"), ("255.255.255.255", "private"),
    ("192.0.2.1", "private"), ("198.18.0.1", "private"),
    ("::1", "loopback"), ("::", "unspecified"), ("fc00::1", "private"), ("fdff::1", "private"),
    ("fe80::1", "link_local"), ("fe80::1%eth0", "link_local"), ("ff02::1", "multicast"),
    ("::ffff:127.0.0.1", "loopback"), ("::ffff:192.168.0.1", "private"), ("2002:a00:1::1", "private"),
    ("2001:db8::1", "private"), ("64:ff9b::a00:1", "reserved"), ("not-an-ip", "not_an_address"),
])
def test_addresses_that_are_not_public_unicast_are_refused(address, refusal):
    assert address_refusal(address) == refusal


@pytest.mark.parametrize("address", ["93.184.216.34", "8.8.8.8", "2606:4700::1111", "::ffff:8.8.8.8"])
def test_public_unicast_addresses_are_allowed(address):
    assert address_refusal(address) is None
