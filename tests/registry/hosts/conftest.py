"""The network boundary of host lookups, replaced: a fake resolver and a real local HTTPS server.

Only the three seams of registry.hosts.proof change: `resolve_txt` and `resolve_addresses`
answer from a table the test fills in, and `open_connection` — asked for a public address the
resolver gave — connects to a TLS server on this machine instead, recording which address it
was asked for. TLS, the certificate check against the claimed name, HTTP parsing, timeouts and
size limits all run for real; the server's certificate is issued by a throwaway CA that
`tls_context` is made to trust.
"""

from __future__ import annotations

import datetime
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpcore
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from django.core.cache import cache

from registry.hosts import proof
from tests.registry.api.conftest import caller, client_for, key_for  # noqa: F401 - the API tests' fixtures
from tests.registry.uploads.conftest import celery_worker  # noqa: F401 - a real worker process

# Documentation-range-looking but globally routable addresses, so the address checks pass them.
PUBLIC_V4 = "93.184.216.34"
PUBLIC_V6 = "2606:2800:220:1:248:1893:25c8:1946"
CERT_NAMES = ("studio.example", "cdn.studio.example", "example.com", "cdn.example.com", "www.example.com")


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _issue(directory: Path, names: tuple[str, ...]) -> tuple[Path, Path, Path]:
    """A CA and a leaf certificate for `names`; returns (ca.pem, leaf.pem, leaf.key)."""
    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = (
        x509.CertificateBuilder().subject_name(_name("Kyoka test CA")).issuer_name(_name("Kyoka test CA"))
        .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1)).not_valid_after(now + datetime.timedelta(days=2))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    leaf_key = ec.generate_private_key(ec.SECP256R1())
    leaf = (
        x509.CertificateBuilder().subject_name(_name(names[0])).issuer_name(ca.subject)
        .public_key(leaf_key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1)).not_valid_after(now + datetime.timedelta(days=2))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(n) for n in names]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    paths = directory / "ca.pem", directory / "leaf.pem", directory / "leaf.key"
    paths[0].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    paths[1].write_bytes(leaf.public_bytes(serialization.Encoding.PEM))
    paths[2].write_bytes(leaf_key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    return paths


Handler = Callable[[ssl.SSLSocket, bytes], None]


def respond(status: str = "200 OK", body: bytes = b"", headers: tuple[str, ...] = ()) -> Handler:
    def handle(connection: ssl.SSLSocket, request: bytes) -> None:
        head = [f"HTTP/1.1 {status}", f"Content-Length: {len(body)}", "Connection: close", *headers]
        connection.sendall(("\r\n".join(head) + "\r\n\r\n").encode() + body)

    return handle


class TLSServer:
    """HTTPS on 127.0.0.1 for the test's names; each request is answered by `handler`."""

    def __init__(self, directory: Path) -> None:
        self.ca, leaf, key = _issue(directory, CERT_NAMES)
        self.context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.context.load_cert_chain(leaf, key)
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.handler: Handler = respond("404 Not Found")
        self.requests: list[bytes] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        self.listener.settimeout(0.1)
        while not self._stop.is_set():
            try:
                raw, _ = self.listener.accept()
            except TimeoutError:
                continue
            threading.Thread(target=self._handle, args=(raw,), daemon=True).start()

    def _handle(self, raw: socket.socket) -> None:
        raw.settimeout(10)
        try:
            with self.context.wrap_socket(raw, server_side=True) as connection:
                request = b""
                while b"\r\n\r\n" not in request:
                    chunk = connection.recv(4096)
                    if not chunk:
                        return
                    request += chunk
                self.requests.append(request)
                self.handler(connection, request)
        except (OSError, ssl.SSLError):
            pass  # the client gave up (a timeout, a refused certificate): that is the test's point

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2)
        self.listener.close()


@dataclass
class FakeNetwork:
    """What the resolver answers, and which addresses the lookup asked to connect to."""

    server: TLSServer
    txt: dict[str, list[str]] = field(default_factory=dict)
    addresses: dict[str, list[str]] = field(default_factory=dict)
    connected_to: list[str] = field(default_factory=list)
    txt_lookups: list[str] = field(default_factory=list)
    address_lookups: list[str] = field(default_factory=list)

    def serve(self, handler: Handler) -> None:
        self.server.handler = handler

    def serve_file(self, body: bytes) -> None:
        self.serve(respond("200 OK", body))

    @property
    def requests(self) -> list[bytes]:
        return self.server.requests

    @property
    def touched(self) -> bool:
        return bool(self.txt_lookups or self.address_lookups or self.connected_to)


@pytest.fixture(autouse=True)
def _clear_cache():
    # Pending lookups are remembered in the cache (the real Redis): start each test without any.
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def tls_server(tmp_path) -> Iterator[TLSServer]:
    server = TLSServer(tmp_path)
    yield server
    server.stop()


@pytest.fixture
def network(tls_server, monkeypatch) -> FakeNetwork:
    fake = FakeNetwork(tls_server)

    def resolve_txt(name: str, *, lifetime: float) -> list[str]:
        fake.txt_lookups.append(name)
        if name not in fake.txt and name not in fake.addresses:
            raise proof._Refused(proof.Problem("dns", "no_domain"))
        return fake.txt.get(name, [])

    def resolve_addresses(name: str, *, lifetime: float) -> list[str]:
        fake.address_lookups.append(name)
        return fake.addresses.get(name, [])

    def open_connection(address: str, port: int, *, timeout: float) -> httpcore.NetworkStream:
        fake.connected_to.append(address)
        assert port == 443
        return httpcore.SyncBackend().connect_tcp("127.0.0.1", tls_server.port, timeout=timeout)

    def tls_context() -> ssl.SSLContext:
        context = ssl.create_default_context(cafile=str(tls_server.ca))
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        return context

    monkeypatch.setattr(proof, "resolve_txt", resolve_txt)
    monkeypatch.setattr(proof, "resolve_addresses", resolve_addresses)
    monkeypatch.setattr(proof, "open_connection", open_connection)
    monkeypatch.setattr(proof, "tls_context", tls_context)
    return fake


def drip(interval: float, *, total_seconds: float) -> Handler:
    """A server that sends its headers, then one byte every `interval`: each read succeeds in time."""

    def handle(connection: ssl.SSLSocket, request: bytes) -> None:
        connection.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n")
        deadline = time.monotonic() + total_seconds
        while time.monotonic() < deadline:
            connection.sendall(b"x")
            time.sleep(interval)

    return handle
