"""Looking for a host's proof: what counts, and every way a hostile host is refused.

The resolver and the connection target are faked (conftest); TLS and HTTP are real.
"""

from __future__ import annotations

import time

import httpcore
import pytest

from registry.hosts import proof
from registry.hosts.proof import Problem, look_for_proof
from tests.registry.hosts.conftest import PUBLIC_V4, PUBLIC_V6, drip, respond

TOKEN = "tok-3f9a8b7c6d5e4f3a2b1c0d9e"


def test_a_txt_record_with_the_token_proves_the_domain_and_its_subdomains(network):
    network.txt["example.com"] = ["v=spf1 -all", f"kyoka-verification={TOKEN}"]
    result = look_for_proof("example.com", TOKEN)
    assert (result.proven, result.method, result.covers_subdomains) == (True, "dns", True)
    assert network.connected_to == []  # DNS sufficed: nothing was fetched


def test_a_txt_record_split_into_strings_is_read_whole(monkeypatch):
    # DNS carries long TXT values as several strings of at most 255 bytes; they form one value.
    monkeypatch.setattr(proof.dns.resolver, "resolve", lambda name, *args, **kwargs: Answer(name, name))
    assert proof.resolve_txt("example.com", lifetime=1) == [f"kyoka-verification={TOKEN}"]
    assert proof.look_for_txt("example.com", TOKEN) is None


class Answer(list):
    """What dnspython answers: the records, and the name they were found at after any CNAME."""

    def __init__(self, asked: str, found_at: str) -> None:
        record = type("TXT", (), {"strings": (b"kyoka-verification=", TOKEN.encode())})()
        super().__init__([record])
        self.canonical_name = proof.dns.name.from_text(found_at)


def test_a_txt_record_reached_through_a_cname_proves_nothing(monkeypatch):
    # cdn.example.com CNAME d111.cdn-provider.example: the provider, not the studio, writes that TXT.
    monkeypatch.setattr(proof.dns.resolver, "resolve",
                        lambda name, *args, **kwargs: Answer(name, "d111.cdn-provider.example"))
    assert proof.look_for_txt("cdn.example.com", TOKEN) == Problem("dns", "alias")


def test_a_txt_record_at_the_name_in_other_letter_case_counts(monkeypatch):
    monkeypatch.setattr(proof.dns.resolver, "resolve", lambda name, *args, **kwargs: Answer(name, "EXAMPLE.com."))
    assert proof.look_for_txt("example.com", TOKEN) is None


def test_another_claims_token_in_the_txt_record_proves_nothing(network):
    network.txt["example.com"] = ["kyoka-verification=someone-elses-token"]
    network.addresses["example.com"] = [PUBLIC_V4]
    network.serve_file(b"someone-elses-token\n")
    result = look_for_proof("example.com", TOKEN)
    assert not result.proven
    assert result.problems == (Problem("dns", "no_record"), Problem("http", "token_missing"))


def test_the_well_known_file_proves_exactly_its_host(network):
    network.addresses["cdn.studio.example"] = [PUBLIC_V4]
    network.serve_file(f"{TOKEN}\n".encode())
    result = look_for_proof("cdn.studio.example", TOKEN)
    assert (result.proven, result.method, result.covers_subdomains) == (True, "http", False)
    request = network.requests[0].decode()
    assert request.startswith("GET /.well-known/kyoka-verification.txt HTTP/1.1\r\n")
    assert "\r\nHost: cdn.studio.example\r\n" in request
    assert network.connected_to == [PUBLIC_V4]


def test_the_file_may_hold_several_tokens_one_per_line(network):
    network.addresses["cdn.studio.example"] = [PUBLIC_V4]
    network.serve_file(f"\ufeffother-studio-token\r\n  {TOKEN}  \r\n".encode())
    assert look_for_proof("cdn.studio.example", TOKEN).method == "http"


def test_a_file_that_merely_contains_the_token_proves_nothing(network):
    network.addresses["cdn.studio.example"] = [PUBLIC_V4]
    network.serve_file(f"<html>{TOKEN}</html>".encode())
    assert look_for_proof("cdn.studio.example", TOKEN).problems[1] == Problem("http", "token_missing")


@pytest.mark.parametrize(("address", "kind"), [
    ("127.0.0.1", "loopback"),
    ("10.1.2.3", "10/8"),
    ("172.16.5.4", "172.16/12"),
    ("172.31.255.254", "172.16/12"),
    ("192.168.0.10", "192.168/16"),
    ("169.254.169.254", "169.254/16 (cloud metadata)"),
    ("100.64.0.1", "shared address space"),
    ("0.0.0.0", "unspecified"),
    ("224.0.0.251", "multicast"),
    ("240.0.0.1", "reserved"),
    ("::1", "IPv6 loopback"),
    ("fc00::1", "fc00::/7 unique local"),
    ("fd12:3456::1", "fc00::/7 unique local"),
    ("fe80::1", "IPv6 link-local"),
    ("ff02::1", "IPv6 multicast"),
    ("::", "IPv6 unspecified"),
    ("::ffff:127.0.0.1", "IPv4-mapped loopback"),
    ("::ffff:10.0.0.1", "IPv4-mapped private"),
    ("2002:7f00:1::1", "6to4 of 127.0.0.1"),
])
def test_a_host_resolving_to_a_non_public_address_is_never_connected_to(network, address, kind):
    network.addresses["studio.example"] = [address]
    network.serve_file(f"{TOKEN}\n".encode())
    result = look_for_proof("studio.example", TOKEN)
    assert not result.proven, kind
    assert result.problems[1] == Problem("http", "forbidden_address", address)
    assert network.connected_to == []


def test_a_name_that_resolves_to_127_0_0_1_is_refused(network):
    network.addresses["localhost.studio.example"] = ["127.0.0.1"]
    result = look_for_proof("localhost.studio.example", TOKEN)
    assert result.problems[1] == Problem("http", "forbidden_address", "127.0.0.1")
    assert network.connected_to == []


def test_one_private_address_among_public_ones_refuses_the_name(network):
    network.addresses["studio.example"] = [PUBLIC_V4, PUBLIC_V6, "10.0.0.5"]
    network.serve_file(f"{TOKEN}\n".encode())
    assert look_for_proof("studio.example", TOKEN).problems[1] == Problem("http", "forbidden_address", "10.0.0.5")
    assert network.connected_to == []


def test_the_connection_goes_to_the_address_that_was_checked_not_to_a_second_resolution(network):
    answers = iter([[PUBLIC_V4], ["127.0.0.1"]])  # a rebinding resolver: public first, loopback next
    network.addresses = type("Rebinding", (dict,), {"get": lambda self, name, default=None: next(answers)})()
    network.serve_file(f"{TOKEN}\n".encode())
    assert look_for_proof("studio.example", TOKEN).method == "http"
    assert network.address_lookups == ["studio.example"]  # resolved once
    assert network.connected_to == [PUBLIC_V4]


def test_the_real_connection_refuses_a_peer_that_is_not_public(tls_server):
    with pytest.raises(proof._Refused) as refused:
        proof.open_connection("127.0.0.1", tls_server.port, timeout=2)
    assert refused.value.problem == Problem("http", "forbidden_address", "127.0.0.1")


@pytest.mark.parametrize("status", ["301 Moved Permanently", "302 Found", "307 Temporary Redirect",
                                    "308 Permanent Redirect"])
def test_a_redirect_is_not_followed(network, status):
    network.addresses["studio.example"] = [PUBLIC_V4]
    network.serve(respond(status, headers=("Location: https://169.254.169.254/latest/meta-data/",)))
    result = look_for_proof("studio.example", TOKEN)
    assert result.problems[1] == Problem("http", "redirect", status.split()[0])
    assert len(network.requests) == 1 and network.connected_to == [PUBLIC_V4]


def test_a_redirect_to_another_host_proves_nothing_even_if_that_host_holds_the_token(network):
    network.addresses["studio.example"] = [PUBLIC_V4]
    network.addresses["www.example.com"] = [PUBLIC_V4]

    def handler(connection, request):
        if b"Host: studio.example" in request:
            respond("302 Found", headers=("Location: https://www.example.com/.well-known/kyoka-verification.txt",))(
                connection, request)
        else:
            respond("200 OK", f"{TOKEN}\n".encode())(connection, request)

    network.serve(handler)
    assert look_for_proof("studio.example", TOKEN).problems[1] == Problem("http", "redirect", "302")
    assert network.address_lookups == ["studio.example"]


def test_a_body_over_4096_bytes_is_refused(network):
    network.addresses["studio.example"] = [PUBLIC_V4]
    network.serve_file(f"{TOKEN}\n".encode() + b"x" * 5000)
    assert proof.MAX_BODY_BYTES == 4096
    assert look_for_proof("studio.example", TOKEN).problems[1] == Problem("http", "too_large")


def test_the_body_is_read_at_most_4097_bytes_at_a_time():
    asked: list[int] = []

    class Stream(httpcore.NetworkStream):
        def read(self, max_bytes, timeout=None):
            asked.append(max_bytes)
            return b""

    proof._DeadlineStream(Stream(), time.monotonic() + 5).read(65536)
    assert asked == [4097]


def test_a_body_of_exactly_4096_bytes_is_read(network):
    body = f"{TOKEN}\n".encode()
    network.addresses["studio.example"] = [PUBLIC_V4]
    network.serve_file(body + b"#" * (4096 - len(body)))
    assert look_for_proof("studio.example", TOKEN).method == "http"


def test_an_oversize_body_without_a_length_is_cut_off(network):
    network.addresses["studio.example"] = [PUBLIC_V4]

    def endless(connection, request):
        connection.sendall(b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n")
        for _ in range(200):  # 200 KB unless the client hangs up
            connection.sendall(b"y" * 1024)

    network.serve(endless)
    assert look_for_proof("studio.example", TOKEN).problems[1] == Problem("http", "too_large")


def test_a_server_that_never_answers_is_given_up_on_at_the_deadline(network, monkeypatch):
    monkeypatch.setattr(proof, "LOOKUP_SECONDS", 1.0)
    network.addresses["studio.example"] = [PUBLIC_V4]
    network.serve(lambda connection, request: time.sleep(3))
    started = time.monotonic()
    result = look_for_proof("studio.example", TOKEN)
    assert result.problems[1] == Problem("http", "timeout")
    assert time.monotonic() - started < 1.8


def test_a_server_dripping_bytes_cannot_stretch_the_deadline(network, monkeypatch):
    # Every single read succeeds well within any per-read timeout; only the one deadline stops it.
    monkeypatch.setattr(proof, "LOOKUP_SECONDS", 1.0)
    network.addresses["studio.example"] = [PUBLIC_V4]
    network.serve(drip(0.1, total_seconds=4))
    started = time.monotonic()
    result = look_for_proof("studio.example", TOKEN)
    assert result.problems[1] == Problem("http", "timeout")
    assert time.monotonic() - started < 1.8


def test_the_lookup_budget_is_five_seconds():
    assert proof.LOOKUP_SECONDS == 5.0


def test_a_certificate_for_another_name_is_refused(network):
    network.addresses["kumo.example"] = [PUBLIC_V4]  # the test server's certificate does not name it
    network.serve_file(f"{TOKEN}\n".encode())
    assert look_for_proof("kumo.example", TOKEN).problems[1] == Problem("http", "tls_failed")


def test_an_error_status_proves_nothing(network):
    network.addresses["studio.example"] = [PUBLIC_V4]
    network.serve(respond("404 Not Found", b"no"))
    assert look_for_proof("studio.example", TOKEN).problems[1] == Problem("http", "status", "404")


def test_a_name_without_addresses_is_not_fetched(network):
    network.txt["studio.example"] = []
    assert look_for_proof("studio.example", TOKEN).problems == (
        Problem("dns", "no_record"), Problem("http", "not_resolved"))
    assert network.connected_to == []


def test_the_pinned_backend_connects_nowhere_but_the_claimed_host_on_port_443():
    backend = proof._PinnedBackend(name="studio.example", address=PUBLIC_V4, deadline=time.monotonic() + 5)
    with pytest.raises(httpcore.ConnectError):
        backend.connect_tcp("evil.example", 443)
    with pytest.raises(httpcore.ConnectError):
        backend.connect_tcp("studio.example", 8443)


@pytest.mark.parametrize(("host", "code"), [
    ("127.0.0.1", "ip_literal"),
    ("10.0.0.7", "ip_literal"),
    ("[::1]", "ip_literal"),
    ("com", "public_suffix"),
    ("github.io", "public_suffix"),
    ("Example.COM", "invalid_host"),  # stored hosts are already normal; anything else is not trusted
])
def test_a_stored_host_no_one_may_claim_is_refused_before_any_network(network, host, code):
    result = look_for_proof(host, TOKEN)
    assert result.problems == (Problem("host", code),)
    assert not network.touched


def test_problems_are_stored_as_codes_and_shown_in_the_reader_s_language():
    from django.utils import translation

    text = proof.problems_to_text([Problem("dns", "no_record"), Problem("http", "forbidden_address", "10.0.0.1")])
    problems = proof.problems_from_text(text)
    assert problems == [Problem("dns", "no_record"), Problem("http", "forbidden_address", "10.0.0.1")]
    with translation.override("en"):
        assert "10.0.0.1" in problems[1].message("studio.example")
        english = problems[0].message("studio.example")
    with translation.override("ja"):
        assert problems[0].message("studio.example") != english


def test_the_real_resolver_is_bounded_and_never_searches(monkeypatch):
    seen = {}

    def resolve(name, record_type, *, lifetime, search):
        seen.update(name=name, lifetime=lifetime, search=search)
        raise proof.dns.resolver.NXDOMAIN

    monkeypatch.setattr(proof.dns.resolver, "resolve", resolve)
    assert proof.look_for_txt("studio.example", TOKEN) == Problem("dns", "no_domain")
    assert seen == {"name": "studio.example", "lifetime": 5.0, "search": False}


def test_a_refused_connection_is_reported_as_such(network, monkeypatch):
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    monkeypatch.setattr(proof, "open_connection", lambda address, port, *, timeout: httpcore.SyncBackend().connect_tcp(
        "127.0.0.1", closed_port, timeout=timeout))
    network.addresses["studio.example"] = [PUBLIC_V4]
    assert look_for_proof("studio.example", TOKEN).problems[1] == Problem("http", "connect_failed")
