"""The registry over HTTP: batched checks with bounded concurrency, retries, verified receipts.

Fails closed everywhere. An item is *permitted* only when a response whose signature verified
against the registry's published keys says so for exactly that item; a timeout, a refusal, a
body that does not parse, a bad signature or a missing result leaves it `permitted: False` with
decision `error`, and the caller learns that something went wrong (`Outcome.errors`).
"""

from __future__ import annotations

import json
import os
import random
import re
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from kyoka.errors import BadResponse, BadSignature, KyokaError, RegistryUnavailable
from kyoka.receipts import JwksCache

DEFAULT_URL = "http://127.0.0.1:8000"
MAX_BATCH = 10_000
RECEIPT_HEADER = "Receipt-Signature"
IDENTIFIER_SCHEMES = ("isan", "eidr", "isbn", "isrc", "iswc", "iscc", "doi")
_HEX64 = re.compile(r"[0-9a-fA-F]{64}")
_HEX16 = re.compile(r"[0-9a-fA-F]{16}")
# A response far larger than 10,000 results could ever be is refused before it is read whole.
MAX_RESPONSE_BYTES = 64 * 1024 * 1024
MAX_SNAPSHOT_BYTES = 2 * 1024 * 1024 * 1024
# The longest wait a Retry-After may impose before the client gives up on the batch.
MAX_RETRY_AFTER = 300.0


@dataclass
class Decision:
    """One item's answer. `proof` is the check id (or snapshot id) whose signed body says so."""

    ref: str | None
    checked: dict[str, Any]
    decision: str
    permitted: bool
    reason: str | None = None
    proof: str | None = None
    index: int | None = None  # the item's index within the check `proof`
    error: str | None = None
    similar: list[dict[str, Any]] | None = None  # similar works (pHash): never permission, someone to ask
    phash: str | None = None  # a local image's pHash, when it was asked about too
    signature: str | None = None  # the Receipt-Signature of the body `proof` names

    def as_row(self) -> dict[str, Any]:
        row = {
            "ref": self.ref, "checked": self.checked, "decision": self.decision, "permitted": self.permitted,
            "reason": self.reason, "proof": self.proof, "index": self.index,
        }
        if self.phash is not None:
            row["phash"], row["similar"] = self.phash, self.similar or []
        return row


def unanswered(ref: str | None, item: dict[str, Any], error: str) -> Decision:
    """What an item is when no trustworthy answer came back: not permitted."""
    checked = {k: v for k, v in item.items() if k != "ref"}
    return Decision(ref=ref, checked=checked, decision="error", permitted=False, reason="no_answer", error=error)


@dataclass
class Outcome:
    decisions: list[Decision] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    @property
    def all_permitted(self) -> bool:
        return not self.errors and bool(self.decisions) and all(d.permitted for d in self.decisions)


def item_for(value: Any) -> dict[str, Any]:
    """The API item for a value: a dict as given, or a string read as sha256, URL or identifier.

    A string that is none of these is sent as a URL; the registry answers it `invalid`.
    """
    if isinstance(value, dict):
        return {k: v for k, v in value.items() if k in ("ref", "sha256", "url", "identifier", "phash", "max_distance")}
    text = str(value).strip()
    if _HEX64.fullmatch(text):
        return {"sha256": text.lower()}
    scheme = text.split(":", 1)[0].lower()
    if scheme in IDENTIFIER_SCHEMES and ":" in text:
        return {"identifier": text}
    return {"url": text}


class Client:
    """`Client(url, key).check(items, purpose=...)`; see the package README."""

    def __init__(
        self,
        url: str | None = None,
        key: str | None = None,
        *,
        timeout: float = 60.0,
        concurrency: int = 4,
        batch_size: int = MAX_BATCH,
        max_retries: int = 6,
        backoff: float = 0.5,
        receipts_dir: str | Path | None = None,
        jwks: dict[str, Any] | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.url = (url or os.environ.get("KYOKA_URL") or DEFAULT_URL).rstrip("/")
        self.key = key if key is not None else os.environ.get("KYOKA_API_KEY", "")
        self.batch_size = max(1, min(batch_size, MAX_BATCH))
        self.concurrency = max(1, concurrency)
        self.max_retries = max_retries
        self.backoff = backoff
        self.receipts_dir = Path(receipts_dir) if receipts_dir else None
        self._sleep = sleep
        self._http = httpx.Client(
            base_url=self.url, timeout=httpx.Timeout(timeout, connect=min(timeout, 10.0)),
            headers={"Authorization": f"Bearer {self.key}", "User-Agent": "kyoka-client/0.1"},
            limits=httpx.Limits(max_connections=self.concurrency + 2), follow_redirects=False,
        )
        self._jwks = JwksCache(self._fetch_jwks, jwks)
        self._jwks_lock = threading.Lock()

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- Keys ------------------------------------------------------------------------------------

    def _fetch_jwks(self) -> dict[str, Any]:
        body = self._request("GET", "/.well-known/jwks.json", max_bytes=1024 * 1024)[0]
        try:
            jwks = json.loads(body)
        except ValueError as exc:
            raise BadResponse("the registry's JWKS does not parse") from exc
        if not isinstance(jwks, dict) or not isinstance(jwks.get("keys"), list):
            raise BadResponse("the registry's JWKS has no keys")
        return jwks

    def jwks(self) -> dict[str, Any]:
        with self._jwks_lock:
            if self._jwks.jwks is None:
                self._jwks.jwks = self._fetch_jwks()
            return self._jwks.jwks

    def verify(self, body: bytes, signature: str) -> str:
        with self._jwks_lock:
            return self._jwks.verify(body, signature)

    # --- HTTP with retries -----------------------------------------------------------------------

    def _request(
        self, method: str, path: str, *, json_body: Any = None, params: dict[str, str] | None = None,
        max_bytes: int = MAX_RESPONSE_BYTES,
    ) -> tuple[bytes, httpx.Headers]:
        """One call, retried on 429 (after Retry-After), 5xx and transport errors with backoff."""
        last = "no attempt"
        content = json.dumps(json_body, separators=(",", ":")).encode() if json_body is not None else None
        headers = {"Content-Type": "application/json"} if content is not None else {}
        for attempt in range(self.max_retries + 1):
            delay = self.backoff * (2 ** attempt) * (0.5 + random.random())
            try:
                with self._http.stream(method, path, content=content, params=params, headers=headers) as response:
                    status = response.status_code
                    if status == 429 or status >= 500:
                        last = f"HTTP {status}"
                        if status == 429:
                            delay = _retry_after(response.headers.get("Retry-After"), default=delay)
                            if delay > MAX_RETRY_AFTER:
                                raise RegistryUnavailable(f"quota exceeded; Retry-After {delay:.0f}s is too long")
                    else:
                        body = _read_bounded(response, max_bytes)
                        if status != 200:
                            raise BadResponse(f"HTTP {status}: {_error_message(body)}")
                        return body, response.headers
            except (httpx.TransportError, httpx.TimeoutException) as exc:
                last = f"{exc.__class__.__name__}: {exc}"
            if attempt < self.max_retries:
                self._sleep(delay)
        raise RegistryUnavailable(f"no answer after {self.max_retries + 1} attempts ({last})")

    # --- Checks ----------------------------------------------------------------------------------

    def check(
        self, items: Iterable[Any], *, purpose: str, territory: str | None = None, context: str | None = None,
        refs: Iterable[str | None] | None = None,
    ) -> Outcome:
        """Check every item; answers in item order. See `check_batches` for streaming."""
        outcome = Outcome()
        for decisions, error in self.check_batches(
            items, purpose=purpose, territory=territory, context=context, refs=refs
        ):
            outcome.decisions.extend(decisions)
            if error:
                outcome.errors.append(error)
        return outcome

    def check_batches(
        self, items: Iterable[Any], *, purpose: str, territory: str | None = None, context: str | None = None,
        refs: Iterable[str | None] | None = None,
    ) -> Iterator[tuple[list[Decision], str | None]]:
        """Yield (decisions, error) per batch of up to 10,000, in order, `concurrency` batches in flight."""
        terms = {"purpose": purpose, **({"territory": territory} if territory else {}),
                 **({"context": context} if context else {})}
        batches = _batched(items, refs, self.batch_size)
        with ThreadPoolExecutor(max_workers=self.concurrency) as pool:
            in_flight: list = []
            for batch in batches:
                in_flight.append(pool.submit(self._check_batch, batch, terms))
                if len(in_flight) >= self.concurrency:
                    yield in_flight.pop(0).result()
            while in_flight:
                yield in_flight.pop(0).result()

    def _check_batch(
        self, batch: list[tuple[str | None, dict[str, Any]]], terms: dict[str, str]
    ) -> tuple[list[Decision], str | None]:
        items = []
        for ref, item in batch:
            sent = dict(item)
            if ref is not None:
                sent["ref"] = str(ref)[:200]
            items.append(sent)
        try:
            body, headers = self._request("POST", "/api/v1/checks", json_body={**terms, "items": items})
            signature = headers.get(RECEIPT_HEADER, "")
            self.verify(body, signature)
            document = json.loads(body)
            results = document.get("results") if isinstance(document, dict) else None
            if not isinstance(results, list) or len(results) != len(batch):
                raise BadResponse("the answer does not list one result per item")
            check_id = str(document.get("check_id"))
            self._keep_receipt(check_id, body, signature)
            decisions = []
            for position, ((ref, item), result) in enumerate(zip(batch, results, strict=True)):
                if not isinstance(result, dict) or result.get("index") != position:
                    raise BadResponse("the answer's results are out of order")
                decision = result.get("decision")
                decisions.append(Decision(
                    ref=ref, checked=result.get("checked") or {k: v for k, v in item.items() if k != "ref"},
                    decision=str(decision), permitted=result.get("permitted") is True and decision == "permitted",
                    reason=result.get("reason"), proof=check_id, index=position, signature=signature,
                    similar=result.get("similar") if isinstance(result.get("similar"), list) else None,
                ))
            return decisions, None
        except (KyokaError, ValueError) as exc:
            error = f"{exc.__class__.__name__}: {exc}"
            return [unanswered(ref, item, error) for ref, item in batch], error

    def _keep_receipt(self, check_id: str, body: bytes, signature: str) -> None:
        if self.receipts_dir is None:
            return
        if not re.fullmatch(r"[0-9a-fA-F-]{36}", check_id):
            raise BadResponse("the receipt's check_id is not a UUID")
        self.receipts_dir.mkdir(parents=True, exist_ok=True)
        _write_atomic(self.receipts_dir / f"{check_id}.json", body)
        _write_atomic(self.receipts_dir / f"{check_id}.jws", signature.encode())

    def is_permitted(self, value: Any, *, purpose: str, territory: str | None = None,
                     context: str | None = None) -> bool:
        """One item: True only for a verified `permitted`. Any failure is False."""
        outcome = self.check([value], purpose=purpose, territory=territory, context=context)
        return outcome.all_permitted

    def filter_permitted(
        self, iterable: Iterable[Any], *, purpose: str, key: Callable[[Any], Any] | None = None,
        territory: str | None = None, context: str | None = None, offline: bool = False,
        snapshot_dir: str | Path | None = None,
    ) -> Iterator[Any]:
        """Yield only the entries whose key (`key(entry)`, default the entry) is permitted.

        Online, in batches; offline, from the synced licence snapshot (refused once it expired).
        """
        key = key or (lambda entry: entry)
        if offline:
            from kyoka.snapshot import Snapshot

            snapshot = Snapshot.load(purpose=purpose, territory=territory, context=context, directory=snapshot_dir,
                                     jwks=None)
            for entry in iterable:
                if snapshot.decide(key(entry)).permitted:
                    yield entry
            return
        buffer: list[Any] = []
        for entry in iterable:
            buffer.append(entry)
            if len(buffer) >= self.batch_size * self.concurrency:
                yield from self._filter_chunk(buffer, key, purpose, territory, context)
                buffer = []
        if buffer:
            yield from self._filter_chunk(buffer, key, purpose, territory, context)

    def _filter_chunk(self, entries, key, purpose, territory, context) -> Iterator[Any]:
        outcome = self.check((key(e) for e in entries), purpose=purpose, territory=territory, context=context)
        for entry, decision in zip(entries, outcome.decisions, strict=True):
            if decision.permitted:
                yield entry

    # --- Licence snapshots -----------------------------------------------------------------------

    def snapshot(
        self, *, purpose: str, territory: str | None = None, context: str | None = None, since: str | None = None
    ) -> tuple[bytes, str]:
        """Fetch a licence snapshot (or the delta since `since`); return its verified body and signature."""
        params = {"purpose": purpose}
        if territory:
            params["territory"] = territory
        if context:
            params["context"] = context
        if since:
            params["since"] = since
        body, headers = self._request("GET", "/api/v1/licences/snapshot", params=params, max_bytes=MAX_SNAPSHOT_BYTES)
        signature = headers.get(RECEIPT_HEADER, "")
        self.verify(body, signature)
        return body, signature


def _batched(
    items: Iterable[Any], refs: Iterable[str | None] | None, size: int
) -> Iterator[list[tuple[str | None, dict[str, Any]]]]:
    batch: list[tuple[str | None, dict[str, Any]]] = []
    ref_iter = iter(refs) if refs is not None else None
    for value in items:
        ref = next(ref_iter) if ref_iter is not None else (value.get("ref") if isinstance(value, dict) else str(value))
        batch.append((ref, item_for(value)))
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


def _retry_after(value: str | None, *, default: float) -> float:
    if value is None:
        return default
    try:
        return max(0.0, float(value))
    except ValueError:
        from email.utils import parsedate_to_datetime

        try:
            return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
        except (TypeError, ValueError):
            return default


def _read_bounded(response: httpx.Response, max_bytes: int) -> bytes:
    declared = response.headers.get("Content-Length")
    if declared and declared.isdigit() and int(declared) > max_bytes:
        raise BadResponse(f"the answer is larger than {max_bytes} bytes")
    chunks, total = [], 0
    for chunk in response.iter_bytes():
        total += len(chunk)
        if total > max_bytes:
            raise BadResponse(f"the answer is larger than {max_bytes} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def _error_message(body: bytes) -> str:
    try:
        return str(json.loads(body)["error"]["message"])[:300]
    except (ValueError, KeyError, TypeError):
        return body[:200].decode("utf-8", "replace")


def _write_atomic(path: Path, data: bytes) -> None:
    temporary = path.with_name(path.name + ".tmp")
    temporary.write_bytes(data)
    os.replace(temporary, path)


__all__ = ["BadSignature", "Client", "Decision", "Outcome", "item_for"]
