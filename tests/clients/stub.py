"""A stand-in registry on 127.0.0.1 for fault injection: it signs its answers like Kyoka does.

Its JWKS and its detached EdDSA signatures are real (its own key), so the client under test
verifies them exactly as it verifies Kyoka's. Faults are switched on per test: 429 with a
Retry-After, dying after some checks, tampering with a body after signing, slowness.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from joserfc import jws
from joserfc.jwk import OKPKey


class _EdDSA(jws.JWSRegistry):
    """Kyoka's contract fixes EdDSA, which joserfc warns about; allow it by name, as Kyoka does."""

    def get_alg(self, name: str):
        return self.algorithms[name]


_SIGNING = _EdDSA()


class StubRegistry:
    def __init__(self, *, permitted=lambda item: True) -> None:
        self.key = OKPKey.generate_key("Ed25519")
        self.kid = self.key.thumbprint()
        self.permitted = permitted
        self.requests: list[tuple[float, str, int]] = []  # (time, path, item count)
        self.too_many_first = 0
        self.retry_after = "1"
        self.die_after: int | None = None
        self.tamper = False
        self.delay = 0.0
        self.checks_answered = 0
        self.lock = threading.Lock()
        stub = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                with stub.lock:
                    stub.requests.append((time.monotonic(), self.path, 0))
                if self.path == "/.well-known/jwks.json":
                    stub._send(self, 200, json.dumps({"keys": [stub.public_jwk()]}).encode())
                else:
                    stub._send(self, 404, b'{"error":{"code":"not_found","message":"no","fields":{}}}')

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                payload = json.loads(self.rfile.read(length))
                stub.handle_check(self, payload)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> StubRegistry:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def public_jwk(self) -> dict[str, Any]:
        return self.key.as_dict(private=False, kid=self.kid, alg="EdDSA", use="sig")

    def sign(self, body: bytes) -> str:
        compact = jws.serialize_compact({"alg": "EdDSA", "kid": self.kid}, body, self.key, registry=_SIGNING)
        header, _, signature = compact.split(".")
        return f"{header}..{signature}"

    def _send(self, handler, status: int, body: bytes, headers: dict[str, str] | None = None) -> None:
        handler.send_response(status)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", str(len(body)))
        for name, value in (headers or {}).items():
            handler.send_header(name, value)
        handler.end_headers()
        handler.wfile.write(body)

    def handle_check(self, handler, payload: dict[str, Any]) -> None:
        items = payload.get("items", [])
        with self.lock:
            self.requests.append((time.monotonic(), handler.path, len(items)))
            number = sum(1 for _, path, _ in self.requests if path == handler.path)
            dying = self.die_after is not None and self.checks_answered >= self.die_after
        if dying:
            # The registry goes away mid-run: the connection drops without an answer.
            handler.close_connection = True
            handler.connection.shutdown(2)
            return
        if number <= self.too_many_first:
            body = b'{"error":{"code":"quota_exceeded","message":"slow down","fields":{}}}'
            self._send(handler, 429, body, {"Retry-After": self.retry_after})
            return
        if self.delay:
            time.sleep(self.delay)
        results = []
        for index, item in enumerate(items):
            key = {k: v for k, v in item.items() if k != "ref"}
            ok = bool(self.permitted(key))
            results.append({"index": index, "ref": item.get("ref"), "checked": key,
                            "decision": "permitted" if ok else "unregistered", "permitted": ok,
                            **({} if ok else {"reason": "no_match"})})
        document = {"check_id": str(uuid.uuid4()), "checked_at": "2026-12-01T00:00:00Z",
                    "purpose": payload.get("purpose"), "requester": "stub-ai", "results": results,
                    "summary": {"permitted": sum(r["permitted"] for r in results)}}
        body = json.dumps(document, separators=(",", ":")).encode()
        signature = self.sign(body)
        if self.tamper:
            body = body.replace(b'"unregistered","permitted":false', b'"permitted","permitted":true', 1)
            body = body.replace(b'"stub-ai"', b'"stub-AI"')
        with self.lock:
            self.checks_answered += 1
        self._send(handler, 200, body, {"Receipt-Signature": signature})
