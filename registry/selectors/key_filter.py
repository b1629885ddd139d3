"""A per-process filter of every registered exact key, so that most unregistered items cost no query.

95% of the items a trainer checks are registered by no one, and an `unregistered` answer is
already `permitted: false`. The filter answers "certainly not registered" for them without a
lookup; a key it cannot rule out goes to the database as before. So:

- a false positive (a key the filter cannot rule out that no row holds) costs one lookup;
- a false negative (a registered key ruled out) would answer `unregistered` for a registered
  work, which is a bug: the freshness rules below exist to make it impossible.

What it holds, per key kind, as sorted numpy arrays of 32-bit fingerprints (exact for the
fingerprints; each array bucketed by its leading 16 bits, see _KeyTable): the SHA-256 of content
files, the URL hash of exact URLs, the identifier (scheme:value), and the host of every URL
pattern (a URL item may match a pattern on its host). A fingerprint is the first 32 bits of a
hash PostgreSQL computes itself while loading, so a million rows load without a Python object
per row. 4 bytes per key and 256 KB per kind: ~4 MB per million keys per process (8 MB at 1M
works with a file and a URL each); false-positive rate ≈ keys / 2³².

Kept in step with writes, on PostgreSQL (the embedded SQLite default has no filter: every key
is a candidate):
- every check first fetches the rows with an id above the filter's safe watermark (one statement
  for all four kinds);
- sequence order is not commit order: a transaction may hold a low id and commit after a later
  one. The safe watermark only moves up to the highest id seen by an earlier fetch once every
  transaction that was writing at that fetch has ended; until then the rows above it are fetched
  again. The writers are read off the very snapshot the rows are read with (the in-progress
  xids of `pg_current_snapshot()`, in the same statement), so "not visible to the fetch" and
  "still writing at the fetch" describe one instant. A row committed out of order is therefore
  found by the first check after its commit. (The snapshot lists the whole server's writers, so
  a long transaction in another database holds the watermark back: that costs re-fetching the
  rows above it, never a miss. A writer caught between taking its id and taking its xid — inside
  one INSERT — is the one gap left, and the reconciliation below closes it within
  RECONCILE_SECONDS);
- at least every RECONCILE_SECONDS (at a random point of its second half, so that a machine's
  workers do not all count at once) the (count, sum of ids) of each table is compared with what
  the filter holds, in a thread of its own with no parallel workers (counting a million-row
  table costs more than a check, so no request waits for it); on any difference (a deleted row,
  or anything missed) the filter stops ruling keys out (every key goes to the database) until a
  full rebuild, done in the background, is in place.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np
from django.db import DEFAULT_DB_ALIAS, connections, transaction

from registry.db_statements import fixed_cursor
from registry.matching.urls import url_key_digest
from registry.selectors.reconcile import ReconcileSchedule, reconcile_in_background

logger = logging.getLogger(__name__)

RECONCILE_SECONDS = 30.0
# Fetched rows are kept in Python sets until there are this many, then merged into the arrays.
MERGE_TAIL_AT = 50_000
LOAD_CHUNK = 1_000_000

# kind -> (table, fingerprint expression over the row, condition)
_SOURCES: dict[str, tuple[str, str, str]] = {
    "sha256": ("registry_contentfile", "('x' || substr(sha256, 1, 8))::bit(32)::int", "TRUE"),
    "url": ("registry_workurl", "('x' || substr(url_hash, 1, 8))::bit(32)::int", "NOT is_pattern"),
    "pattern_host": ("registry_workurl", "('x' || substr(md5(host), 1, 8))::bit(32)::int", "is_pattern"),
    "identifier": (
        "registry_workidentifier", "('x' || substr(md5(scheme || ':' || value), 1, 8))::bit(32)::int", "TRUE",
    ),
}
_TABLES = tuple(dict.fromkeys(table for table, _, _ in _SOURCES.values()))


def _md5(text: str) -> bytes:
    return hashlib.md5(text.encode(), usedforsecurity=False).digest()


def _hex_fingerprints(hex_digests: list[str]) -> np.ndarray:
    """The fingerprints of hex digests at once: their first 32 bits as signed big-endian integers."""
    return np.frombuffer(bytes.fromhex("".join([d[:8] for d in hex_digests])), ">i4").astype(np.int32)


def _digest_fingerprints(digests: list[bytes]) -> np.ndarray:
    """The same for raw digests: their first 4 bytes, as PostgreSQL reads them off the hex spelling."""
    return np.frombuffer(b"".join([d[:4] for d in digests]), ">i4").astype(np.int32)


@dataclass(frozen=True)
class Candidates:
    """The keys of a batch that may be registered; every other key of the batch is not."""

    sha256s: frozenset[str]
    urls: frozenset[str]  # normalised URLs: an exact registration or a pattern on their host
    identifiers: frozenset[tuple[str, str]]


# Leading bits a kind's table is bucketed by: 2^16 buckets of about 15 keys per million keys,
# and a 256 KB bucket index per kind.
BUCKET_BITS = 16
_BUCKET_EDGES = (np.arange(2**BUCKET_BITS + 1, dtype=np.int64) << (32 - BUCKET_BITS)) - 2**31


class _KeyTable:
    """One kind's fingerprints, sorted, and where each bucket of equal leading bits starts.

    A lookup narrows each fingerprint to its bucket and binary-searches a few keys there, all
    fingerprints at once, instead of searching the whole array for each: at a million keys,
    np.searchsorted spent ~0.5 µs per fingerprint on cache misses, a third of a check's filter.
    """

    __slots__ = ("keys", "starts")

    def __init__(self, keys: np.ndarray) -> None:
        self.keys = keys
        self.starts = np.searchsorted(keys, _BUCKET_EDGES).astype(np.int32)

    def __len__(self) -> int:
        return len(self.keys)

    @property
    def nbytes(self) -> int:
        return self.keys.nbytes + self.starts.nbytes

    def contains(self, fingerprints: np.ndarray) -> np.ndarray:
        keys = self.keys
        if not len(keys):
            return np.zeros(len(fingerprints), bool)
        bucket = (fingerprints.astype(np.int64) + 2**31) >> (32 - BUCKET_BITS)
        low, high = self.starts[bucket].astype(np.int64), self.starts[bucket + 1].astype(np.int64)
        last = len(keys) - 1
        # Binary search in [low, high) for every fingerprint at once, until every range is empty.
        while (open_ := low < high).any():
            middle = (low + high) >> 1
            below = keys[np.minimum(middle, last)] < fingerprints
            low = np.where(open_ & below, middle + 1, low)
            high = np.where(open_ & ~below, middle, high)
        return keys[np.minimum(low, last)] == fingerprints


@dataclass
class _Snapshot:
    sorted_keys: dict[str, _KeyTable] = field(default_factory=dict)
    tail_keys: dict[str, set[int]] = field(default_factory=dict)
    # Per table: ids known (count and sum, for reconciling) and the watermarks.
    count: dict[str, int] = field(default_factory=dict)
    id_sum: dict[str, int] = field(default_factory=dict)
    tail_ids: dict[str, set[int]] = field(default_factory=dict)
    safe_id: dict[str, int] = field(default_factory=dict)  # every row at or below is held
    # Per table: the highest id an earlier fetch saw, and the writers running at that fetch.
    pending: dict[str, tuple[int, frozenset[int]]] = field(default_factory=dict)
    reconciling: ReconcileSchedule = field(default_factory=ReconcileSchedule)

    def may_hold(self, kind: str, fingerprints: np.ndarray) -> np.ndarray:
        found = self.sorted_keys[kind].contains(fingerprints)
        tail = self.tail_keys[kind]
        if tail:
            found |= np.fromiter((int(f) in tail for f in fingerprints), bool, len(fingerprints))
        return found

    @property
    def nbytes(self) -> int:
        arrays = sum(keys.nbytes for keys in self.sorted_keys.values())
        # A set entry costs about 60 bytes (the int object and the slot).
        return arrays + 60 * sum(len(tail) for tail in self.tail_keys.values())

    @property
    def key_count(self) -> int:
        return sum(len(k) for k in self.sorted_keys.values()) + sum(len(t) for t in self.tail_keys.values())


class KeyFilter:
    def __init__(self, using: str) -> None:
        self.using = using
        self._lock = threading.Lock()
        self._snapshot: _Snapshot | None = None
        self._trusted = False
        self._rebuilding = False
        self._reconciler: threading.Thread | None = None

    # --- answering ---------------------------------------------------------------------------

    def candidates(
        self, *, sha256s: Iterable[str] = (), urls: Iterable[tuple[str, str]] = (),
        identifiers: Iterable[tuple[str, str]] = (),
    ) -> Candidates:
        sha256s, urls, identifiers = list(sha256s), list(urls), list(identifiers)
        if not (sha256s or urls or identifiers):  # a batch of phash items only: nothing to catch up for
            return Candidates(frozenset(), frozenset(), frozenset())
        snapshot = self._fresh()
        if snapshot is None:
            return Candidates(frozenset(sha256s), frozenset(url for url, _ in urls), frozenset(identifiers))
        sha_hits = snapshot.may_hold("sha256", _hex_fingerprints(sha256s))
        url_hits = snapshot.may_hold("url", _digest_fingerprints([url_key_digest(u) for u, _ in urls]))
        host_digests: dict[str, bytes] = {}  # a batch's URLs share a few hosts
        for _, host in urls:
            if host not in host_digests:
                host_digests[host] = _md5(host)
        url_hits |= snapshot.may_hold("pattern_host", _digest_fingerprints([host_digests[h] for _, h in urls]))
        identifier_hits = snapshot.may_hold(
            "identifier", _digest_fingerprints([_md5(f"{s}:{v}") for s, v in identifiers])
        )
        return Candidates(
            sha256s=frozenset(sha256s[k] for k in np.flatnonzero(sha_hits).tolist()),
            urls=frozenset(urls[k][0] for k in np.flatnonzero(url_hits).tolist()),
            identifiers=frozenset(identifiers[k] for k in np.flatnonzero(identifier_hits).tolist()),
        )

    def warm(self) -> None:
        """Build the filter now (before a process takes traffic), rather than on first use."""
        snapshot = self._load_all()
        with self._lock:
            self._snapshot, self._trusted = snapshot, True

    @property
    def ready(self) -> bool:
        """Built, and trusted to rule keys out (False while a rebuild is due or under way)."""
        return self._snapshot is not None and self._trusted

    def stats(self) -> dict[str, int]:
        snapshot = self._snapshot
        return {"keys": snapshot.key_count if snapshot else 0, "bytes": snapshot.nbytes if snapshot else 0}

    # --- keeping in step -----------------------------------------------------------------------

    def _fresh(self) -> _Snapshot | None:
        """The snapshot to answer from after catching up with the table, or None: do not rule out."""
        with self._lock:
            snapshot = self._snapshot
            if snapshot is None or not self._trusted:
                self._rebuild_in_background()
                return None
            self._fetch_new(snapshot)
            if snapshot.reconciling.due(RECONCILE_SECONDS):
                self._reconcile_in_background(snapshot)
            if sum(len(t) for t in snapshot.tail_keys.values()) >= MERGE_TAIL_AT:
                for kind, tail in snapshot.tail_keys.items():
                    snapshot.sorted_keys[kind] = _KeyTable(
                        np.union1d(snapshot.sorted_keys[kind].keys, np.fromiter(tail, np.int32))
                    )
                    snapshot.tail_keys[kind] = set()
            return snapshot

    def _rebuild_in_background(self) -> None:
        if self._rebuilding:
            return
        self._rebuilding = True

        def rebuild() -> None:
            try:
                snapshot = self._load_all()
                with self._lock:
                    self._snapshot, self._trusted = snapshot, True
            except Exception:
                logger.exception("Key filter rebuild on %s failed; every key goes to the database", self.using)
            finally:
                self._rebuilding = False
                connections[self.using].close()

        threading.Thread(target=rebuild, name="kyoka-key-filter", daemon=True).start()

    def _reconcile_in_background(self, snapshot: _Snapshot) -> None:
        """Compare the tables with what the filter holds, off the request path (a full count of a
        million-row table is far slower than a check); on a difference, stop ruling out and rebuild."""
        if self._reconciler is not None and self._reconciler.is_alive():
            return
        snapshot.reconciling.restart()
        expected = _held(snapshot)

        def differs() -> None:
            with self._lock:
                if self._snapshot is snapshot:
                    logger.info("Key filter on %s differs from the tables; rebuilding", self.using)
                    self._trusted = False
                    self._rebuild_in_background()

        self._reconciler = reconcile_in_background(
            using=self.using, name="kyoka-key-filter-reconcile", holds=lambda: self._tables_hold(expected),
            on_difference=differs,
        )

    def _fetch_new(self, snapshot: _Snapshot) -> None:
        """Rows above each table's safe watermark, and who was writing, in one statement; then move the watermarks."""
        parts, params = [], []
        # Table names and expressions are this module's constants, never input.
        for number, (table, expression, condition) in enumerate(_SOURCES.values()):
            parts.append(f"SELECT {number} AS kind, id, {expression} AS fingerprint FROM {table} "  # noqa: S608
                         f"WHERE id > %s AND {condition}")
            params.append(snapshot.safe_id[table])
        statement = (f"WITH running AS ({_WRITERS}) SELECT running.xids, new.kind, new.id, new.fingerprint "  # noqa: S608
                     f"FROM running LEFT JOIN ({' UNION ALL '.join(parts)}) AS new ON TRUE")
        kinds = list(_SOURCES)
        with fixed_cursor(self.using) as cursor:  # the same text every time: prepared once per connection
            cursor.execute(statement, params)
            fetched = cursor.fetchall()
        running = frozenset(fetched[0][0])
        rows = [row[1:] for row in fetched if row[1] is not None]
        seen: dict[str, int] = {}
        for number, row_id, fingerprint in rows:
            kind = kinds[number]
            table = _SOURCES[kind][0]
            snapshot.tail_keys[kind].add(fingerprint)
            if row_id not in snapshot.tail_ids[table]:
                snapshot.tail_ids[table].add(row_id)
                snapshot.count[table] += 1
                snapshot.id_sum[table] += row_id
            seen[table] = max(seen.get(table, 0), row_id)
        for table in _TABLES:
            high, then_running = snapshot.pending.get(table, (snapshot.safe_id[table], frozenset()))
            if not then_running & running:
                # Every transaction running at that earlier fetch has ended: nothing at or below
                # its highest id can still appear.
                snapshot.safe_id[table] = max(snapshot.safe_id[table], high)
                snapshot.tail_ids[table] = {i for i in snapshot.tail_ids[table] if i > snapshot.safe_id[table]}
            snapshot.pending[table] = (max(seen.get(table, 0), high, snapshot.safe_id[table]), running)

    def _matches_tables(self, snapshot: _Snapshot) -> bool:
        return self._tables_hold(_held(snapshot))

    def _tables_hold(self, expected: dict[str, tuple[int, int, int]]) -> bool:
        """Whether each table has exactly `count` rows summing to `id_sum` at or below `high`."""
        with connections[self.using].cursor() as cursor:
            for table, (high, count, id_sum) in expected.items():
                cursor.execute(f"SELECT count(*), coalesce(sum(id), 0) FROM {table} WHERE id <= %s", [high])  # noqa: S608
                found, total = cursor.fetchone()
                if (found, int(total)) != (count, id_sum):
                    return False
        return True

    def _load_all(self) -> _Snapshot:
        """Read every key, then make sure no row at or below the loaded ids can still appear.

        Rows of transactions still running during the load may carry ids below the highest
        one loaded; the snapshot is handed out only once every transaction that was running
        when the load began has ended and the tables' (count, sum of ids) equal what was loaded.
        """
        for _attempt in range(3):
            snapshot, writers = self._read_tables()
            if self._settled(writers) and self._matches_tables(snapshot):
                return snapshot
        raise RuntimeError("the key tables kept changing under the load")

    def _settled(self, writers: frozenset[int], *, wait_seconds: float = 30.0) -> bool:
        """Wait until the writers running when the load began have ended (False if they outlast the wait)."""
        deadline = time.monotonic() + wait_seconds
        with connections[self.using].cursor() as cursor:
            while writers & _writers(cursor):
                if time.monotonic() > deadline:
                    return False
                time.sleep(0.05)
        return True

    def _read_tables(self) -> tuple[_Snapshot, int]:
        snapshot = _Snapshot()
        snapshot.reconciling.restart()
        connection = connections[self.using]
        outermost = not connection.in_atomic_block
        # One snapshot for all the reads, so the counts describe exactly the keys read.
        with transaction.atomic(using=self.using), connection.cursor() as cursor:
            if outermost:
                cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
            writers = _writers(cursor)
            for table in _TABLES:
                cursor.execute(f"SELECT coalesce(max(id), 0), count(*), coalesce(sum(id), 0) FROM {table}")  # noqa: S608
                high, count, total = cursor.fetchone()
                snapshot.safe_id[table], snapshot.count[table], snapshot.id_sum[table] = high, count, int(total)
                snapshot.tail_ids[table] = set()
            for kind, (table, expression, condition) in _SOURCES.items():
                chunks, low, high = [], 0, snapshot.safe_id[table]
                while low < high:
                    cursor.execute(
                        f"SELECT string_agg(int4send({expression}), '') FROM {table} "  # noqa: S608
                        f"WHERE id > %s AND id <= %s AND {condition}",
                        [low, min(high, low + LOAD_CHUNK)],
                    )
                    (packed,) = cursor.fetchone()
                    if packed:
                        chunks.append(np.frombuffer(bytes(packed), ">i4").astype(np.int32))
                    low += LOAD_CHUNK
                snapshot.sorted_keys[kind] = _KeyTable(
                    np.unique(np.concatenate(chunks)) if chunks else np.empty(0, np.int32)
                )
                snapshot.tail_keys[kind] = set()
        return snapshot, writers


def _held(snapshot: _Snapshot) -> dict[str, tuple[int, int, int]]:
    """Per table, what the filter holds: (highest id known, row count, sum of ids) at or below it."""
    return {
        table: (max([snapshot.safe_id[table], *snapshot.tail_ids[table]]), snapshot.count[table],
                snapshot.id_sum[table])
        for table in _TABLES
    }


# The transactions in progress in the statement's own snapshot (this session's is never among
# them): read in the same statement as the rows, they are exactly the writers whose rows that
# statement could not see.
_WRITERS = (
    "SELECT coalesce(array_agg(xid::text::bigint), '{}') AS xids FROM pg_snapshot_xip(pg_current_snapshot()) AS xid"
)


def _writers(cursor) -> frozenset[int]:
    """The transactions writing as of this statement's snapshot, other than this session's."""
    cursor.execute(_WRITERS)
    return frozenset(cursor.fetchone()[0])


_filters: dict[tuple[str, str], KeyFilter] = {}
_filters_lock = threading.Lock()


def key_filter(using: str = DEFAULT_DB_ALIAS) -> KeyFilter:
    """One filter per process and database (keyed by name, so test databases never mix)."""
    key = (using, str(connections[using].settings_dict["NAME"]))
    with _filters_lock:
        if key not in _filters:
            _filters[key] = KeyFilter(using)
        return _filters[key]


def registered_candidates(
    *, sha256s: Iterable[str] = (), urls: Iterable[tuple[str, str]] = (),
    identifiers: Iterable[tuple[str, str]] = (), using: str = DEFAULT_DB_ALIAS,
) -> Candidates:
    """Of these keys, the ones that may be registered; the rest certainly are not.

    `urls` are (normalised URL, host) pairs. The decision's load step looks up only the
    candidates. On databases other than PostgreSQL every key is a candidate.
    """
    if connections[using].vendor != "postgresql":
        return Candidates(frozenset(sha256s), frozenset(url for url, _ in urls), frozenset(identifiers))
    return key_filter(using).candidates(sha256s=sha256s, urls=urls, identifiers=identifiers)
