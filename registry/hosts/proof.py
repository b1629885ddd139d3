"""Looking for a host's proof on the network: a DNS TXT record, or a file served over HTTPS.

Everything here talks to machines a claimant chose, so everything is hostile:

- The host is checked again before any lookup (a stored claim may predate a rule).
- DNS: `kyoka-verification=<token>` in a TXT record of the claimed name itself (not reached
  through a CNAME, whose target belongs to someone else), read with dnspython within
  LOOKUP_SECONDS. It covers the name and its subdomains.
- HTTPS: `https://HOST/.well-known/kyoka-verification.txt` on port 443 only, holding the
  token on a line of its own. It covers exactly HOST. The name is resolved once; if any of its
  addresses is not public unicast (private, loopback, link-local, multicast, reserved,
  unspecified, or IPv4 of that kind inside IPv6), nothing is fetched. The connection goes to
  the checked address itself, with the name only in SNI, the certificate check and `Host`, so
  a second resolution (DNS rebinding) never happens. No redirect is followed, the whole fetch
  (resolution, connection, TLS, answer) shares one LOOKUP_SECONDS deadline, and the body is
  read MAX_BODY_BYTES + 1 bytes at a time and refused as soon as it is longer than
  MAX_BODY_BYTES.

HTTP is spoken by httpcore (httpx's transport layer); this module gives it a network backend
that can only reach the address it was handed. The three functions that touch the network —
`resolve_txt`, `resolve_addresses` and `open_connection` — are the seams tests replace.
"""

from __future__ import annotations

import json
import ssl
import time
from collections.abc import Iterable
from dataclasses import dataclass

import certifi
import dns.exception
import dns.name
import dns.resolver
import httpcore
from django.utils.translation import gettext as _

from registry.hosts.names import HostRefused, address_refusal, claim_host

LOOKUP_SECONDS = 5.0
MAX_BODY_BYTES = 4096
MAX_TXT_RECORDS = 50
TXT_PREFIX = "kyoka-verification="
WELL_KNOWN_PATH = "/.well-known/kyoka-verification.txt"
USER_AGENT = "Kyoka-host-verification/1"
MAX_ERROR_TEXT = 500


def well_known_url(host: str) -> str:
    return f"https://{host}{WELL_KNOWN_PATH}"


def txt_value(token: str) -> str:
    return f"{TXT_PREFIX}{token}"


# --- what went wrong, in words people read later --------------------------------------------


@dataclass(frozen=True)
class Problem:
    """Why one method did not prove a host. `code` is stable; `detail` is data, never words."""

    method: str  # "host", "dns" or "http"
    code: str
    detail: str = ""

    def message(self, host: str) -> str:
        values = {"host": host, "detail": self.detail, "seconds": int(LOOKUP_SECONDS), "limit": MAX_BODY_BYTES}
        text = _messages().get((self.method, self.code)) or _("The lookup failed (%(detail)s).")
        return text % values


def _messages() -> dict[tuple[str, str], str]:
    # Built per call so that each message is in the language active when it is shown.
    return {
        ("host", "invalid_host"): _("%(host)s is not a valid host name."),
        ("host", "ip_literal"): _("%(host)s is an IP address; only host names can be proven."),
        ("host", "public_suffix"): _("%(host)s is a public suffix; only a domain under it can be proven."),
        ("dns", "no_record"): _("No TXT record on %(host)s holds this claim's kyoka-verification value."),
        ("dns", "no_domain"): _("%(host)s does not exist in DNS."),
        ("dns", "alias"): _(
            "%(host)s is an alias (CNAME) of another name, so its TXT records belong to that name's owner and "
            "cannot prove it. Use the file on the web server instead."
        ),
        ("dns", "timeout"): _("The DNS lookup of %(host)s took longer than %(seconds)d seconds."),
        ("dns", "error"): _("The DNS lookup of %(host)s failed."),
        ("http", "not_resolved"): _("%(host)s has no address in DNS, so the file could not be fetched."),
        ("http", "forbidden_address"): _(
            "%(host)s points to %(detail)s, which is not a public internet address; Kyoka does not connect there."
        ),
        ("http", "connect_failed"): _("Kyoka could not connect to %(host)s on port 443."),
        ("http", "tls_failed"): _("The HTTPS connection to %(host)s failed: its certificate or TLS was not accepted."),
        ("http", "timeout"): _("%(host)s did not answer within %(seconds)d seconds."),
        ("http", "redirect"): _(
            "%(host)s answered with a redirect (HTTP %(detail)s). Kyoka follows none: serve the file at that address."
        ),
        ("http", "status"): _("The file's address answered HTTP %(detail)s instead of 200."),
        ("http", "too_large"): _("The file is larger than %(limit)d bytes."),
        ("http", "token_missing"): _("The file does not hold this claim's token on a line of its own."),
        ("http", "protocol"): _("%(host)s did not answer in valid HTTP."),
    }


def problems_to_text(problems: Iterable[Problem]) -> str:
    """What VerifiedHost.last_error stores: codes and data, so it can be shown in any language."""
    rows = [{"method": p.method, "code": p.code, "detail": p.detail[:100]} for p in problems]
    return json.dumps(rows, separators=(",", ":"))[:MAX_ERROR_TEXT]


def problems_from_text(text: str) -> list[Problem]:
    if not text:
        return []
    try:
        rows = json.loads(text)
        return [Problem(str(row["method"]), str(row["code"]), str(row.get("detail", ""))) for row in rows]
    except (ValueError, TypeError, KeyError):
        return [Problem("lookup", "error", text[:100])]


@dataclass(frozen=True)
class ProofResult:
    method: str = ""  # "dns" or "http" once proven
    covers_subdomains: bool = False
    problems: tuple[Problem, ...] = ()

    @property
    def proven(self) -> bool:
        return bool(self.method)


class _Refused(Exception):
    def __init__(self, problem: Problem) -> None:
        super().__init__(problem.code)
        self.problem = problem


# --- the network seams ----------------------------------------------------------------------


def resolve_txt(name: str, *, lifetime: float) -> list[str]:
    """The TXT records of `name`, each record's strings joined (RFC 7208 style)."""
    try:
        answer = dns.resolver.resolve(name, "TXT", lifetime=lifetime, search=False)
    except dns.resolver.NXDOMAIN:
        raise _Refused(Problem("dns", "no_domain")) from None
    except dns.resolver.NoAnswer:
        return []
    except dns.exception.Timeout:
        raise _Refused(Problem("dns", "timeout")) from None
    except dns.exception.DNSException:
        raise _Refused(Problem("dns", "error")) from None
    if answer.canonical_name != dns.name.from_text(name):
        # An alias (CNAME): the TXT records come from its target, whose owner is someone else
        # (a CDN, say), and a DNS proof would cover names the target's owner does not control.
        raise _Refused(Problem("dns", "alias"))
    return [b"".join(record.strings).decode("utf-8", "replace") for record in list(answer)[:MAX_TXT_RECORDS]]


def resolve_addresses(name: str, *, lifetime: float) -> list[str]:
    """Every A and AAAA address of `name` (an empty list when it has none)."""
    deadline = time.monotonic() + lifetime
    addresses: list[str] = []
    for record_type in ("A", "AAAA"):
        try:
            answer = dns.resolver.resolve(
                name, record_type, lifetime=max(deadline - time.monotonic(), 0.01), search=False
            )
        except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer):
            continue
        except dns.exception.Timeout:
            raise _Refused(Problem("http", "timeout")) from None
        except dns.exception.DNSException:
            raise _Refused(Problem("http", "not_resolved")) from None
        addresses.extend(record.address for record in answer)
    return addresses


def open_connection(address: str, port: int, *, timeout: float) -> httpcore.NetworkStream:
    """A TCP connection to exactly `address` (an IP, never a name), checked once connected."""
    stream = httpcore.SyncBackend().connect_tcp(address, port, timeout=timeout)
    peer = stream.get_extra_info("server_addr")
    if not peer or peer[0].split("%", 1)[0] != address or address_refusal(peer[0]) is not None:
        stream.close()
        raise _Refused(Problem("http", "forbidden_address", str(peer[0] if peer else address)))
    return stream


def tls_context() -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=certifi.where())
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    return context


# --- DNS ------------------------------------------------------------------------------------


def look_for_txt(host: str, token: str) -> Problem | None:
    """None when a TXT record on `host` holds the token, else why not."""
    try:
        records = resolve_txt(host, lifetime=LOOKUP_SECONDS)
    except _Refused as refused:
        return refused.problem
    expected = txt_value(token)
    return None if any(record.strip() == expected for record in records) else Problem("dns", "no_record")


# --- HTTPS ----------------------------------------------------------------------------------


class _DeadlineStream(httpcore.NetworkStream):
    """A stream whose every operation waits at most until the fetch's one deadline."""

    def __init__(self, stream: httpcore.NetworkStream, deadline: float) -> None:
        self._stream = stream
        self._deadline = deadline

    def _remaining(self, timeout: float | None) -> float:
        remaining = self._deadline - time.monotonic()
        if remaining <= 0:
            raise httpcore.ReadTimeout("the lookup's deadline passed")
        return remaining if timeout is None else min(timeout, remaining)

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        # Small reads: the body is refused as soon as it passes MAX_BODY_BYTES, so no more than
        # one such read is ever taken in beyond it (httpcore would ask for 64 KiB at a time).
        return self._stream.read(min(max_bytes, MAX_BODY_BYTES + 1), timeout=self._remaining(timeout))

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self._stream.write(buffer, timeout=self._remaining(timeout))

    def close(self) -> None:
        self._stream.close()

    def start_tls(self, ssl_context: ssl.SSLContext, server_hostname: str | None = None,
                  timeout: float | None = None) -> httpcore.NetworkStream:
        tls = self._stream.start_tls(ssl_context, server_hostname=server_hostname, timeout=self._remaining(timeout))
        return _DeadlineStream(tls, self._deadline)

    def get_extra_info(self, info: str) -> object:
        return self._stream.get_extra_info(info)


class _PinnedBackend(httpcore.NetworkBackend):
    """Connects to the one checked address, whatever name httpcore asks for."""

    def __init__(self, *, name: str, address: str, deadline: float) -> None:
        self._name = name
        self._address = address
        self._deadline = deadline

    def connect_tcp(self, host: str, port: int, timeout: float | None = None, local_address: str | None = None,
                    socket_options: object = None) -> httpcore.NetworkStream:
        if host != self._name or port != 443:
            raise httpcore.ConnectError("only the claimed host on port 443")
        remaining = self._deadline - time.monotonic()
        if remaining <= 0:
            raise httpcore.ConnectTimeout("the lookup's deadline passed")
        stream = open_connection(self._address, port, timeout=remaining)
        return _DeadlineStream(stream, self._deadline)

    def connect_unix_socket(self, path: str, timeout: float | None = None,
                            socket_options: object = None) -> httpcore.NetworkStream:
        raise httpcore.ConnectError("no unix sockets")

    def sleep(self, seconds: float) -> None:
        time.sleep(seconds)


def _checked_addresses(host: str, deadline: float) -> list[str]:
    addresses = resolve_addresses(host, lifetime=max(deadline - time.monotonic(), 0.01))
    if not addresses:
        raise _Refused(Problem("http", "not_resolved"))
    for address in addresses:
        if address_refusal(address) is not None:
            # One bad address refuses the name: which one a client reaches is the name owner's choice.
            raise _Refused(Problem("http", "forbidden_address", address))
    return addresses


def _fetch(host: str, address: str, deadline: float) -> bytes:
    """The well-known file's body (at most MAX_BODY_BYTES), fetched from `address`."""
    remaining = max(deadline - time.monotonic(), 0.01)
    timeouts = {"connect": remaining, "read": remaining, "write": remaining, "pool": remaining}
    backend = _PinnedBackend(name=host, address=address, deadline=deadline)
    headers = [(b"User-Agent", USER_AGENT.encode()), (b"Accept", b"text/plain"), (b"Connection", b"close")]
    with (
        httpcore.ConnectionPool(ssl_context=tls_context(), network_backend=backend, max_connections=1, retries=0,
                                http1=True, http2=False) as pool,
        pool.stream("GET", well_known_url(host), headers=headers, extensions={"timeout": timeouts}) as response,
    ):
        if 300 <= response.status < 400:
            raise _Refused(Problem("http", "redirect", str(response.status)))
        if response.status != 200:
            raise _Refused(Problem("http", "status", str(response.status)))
        body = bytearray()
        for chunk in response.iter_stream():
            body.extend(chunk)
            if len(body) > MAX_BODY_BYTES:
                raise _Refused(Problem("http", "too_large"))
        return bytes(body)


def look_for_file(host: str, token: str) -> Problem | None:
    """None when the well-known file on `host` holds the token, else why not."""
    deadline = time.monotonic() + LOOKUP_SECONDS
    try:
        addresses = _checked_addresses(host, deadline)
        body = b""
        for position, address in enumerate(addresses):
            try:
                body = _fetch(host, address, deadline)
                break
            except httpcore.ConnectError:
                if position == len(addresses) - 1 or time.monotonic() >= deadline:
                    raise
    except _Refused as refused:
        return refused.problem
    except httpcore.TimeoutException:
        return Problem("http", "timeout")
    except httpcore.ConnectError as exc:
        # httpcore turns the ssl module's error into a ConnectError while handling it.
        tls = isinstance(exc.__cause__ or exc.__context__, ssl.SSLError)
        return Problem("http", "tls_failed" if tls else "connect_failed")
    except (httpcore.ProtocolError, httpcore.NetworkError):
        return Problem("http", "protocol")
    try:
        lines = body.decode("utf-8-sig").splitlines()
    except UnicodeDecodeError:
        return Problem("http", "token_missing")
    return None if any(line.strip() == token for line in lines) else Problem("http", "token_missing")


# --- both -----------------------------------------------------------------------------------


def look_for_proof(host: str, token: str) -> ProofResult:
    """Try DNS (covers subdomains), then the well-known file (covers the host); say why neither did."""
    try:
        if claim_host(host) != host:
            return ProofResult(problems=(Problem("host", "invalid_host"),))
    except HostRefused as refused:
        return ProofResult(problems=(Problem("host", refused.code),))
    dns_problem = look_for_txt(host, token)
    if dns_problem is None:
        return ProofResult(method="dns", covers_subdomains=True)
    http_problem = look_for_file(host, token)
    if http_problem is None:
        return ProofResult(method="http", covers_subdomains=False)
    return ProofResult(problems=(dns_problem, http_problem))
