"""An in-memory multi-index over the stored perceptual hashes, for near-match lookups at scale.

Why: a batch of 100 phash items at distance 8 needs ~70,000 band probes (see
`matching.fingerprints.band_probes`). PostgreSQL answers each probe with an index descent, which
over a million hashes costs hundreds of milliseconds; numpy's `searchsorted` does the same probes
in a few. The database stays the only source of truth: this index is a read cache that each
process builds from it and keeps fresh —

- every lookup first fetches the rows added since the highest id it has seen (one indexed query);
- every `RECONCILE_SECONDS` it compares (count, sum of ids) with the table and rebuilds on any
  difference, which catches deleted rows and rows whose transaction committed after a later id
  (sequence order is not commit order);
- every match is confirmed against the table before it is returned, so a deleted row never matches.

The window in which a hash committed out of order can be missed is therefore RECONCILE_SECONDS,
and a miss answers `unregistered` — not permitted — so it fails closed. Only PostgreSQL uses
this (ids there are never reused); the embedded SQLite default probes the band columns in SQL.
"""

from __future__ import annotations

import threading
import time
import uuid
from dataclasses import dataclass, field
from functools import cache
from itertools import combinations

import numpy as np
from django.db import connections

from registry.matching.fingerprints import BAND_BITS

RECONCILE_SECONDS = 30.0
_BAND_SHIFTS = (64 - BAND_BITS[0], 64 - BAND_BITS[0] - BAND_BITS[1], 0)
_BAND_MASKS = tuple((1 << bits) - 1 for bits in BAND_BITS)


@cache
def _masks(bits: int, radius: int) -> np.ndarray:
    """Every `bits`-bit value with at most `radius` bits set: XOR with one gives the probes."""
    masks = [0]
    for count in range(1, radius + 1):
        masks += [sum(1 << b for b in chosen) for chosen in combinations(range(bits), count)]
    return np.array(masks, np.int64)


def _bands_of(values: np.ndarray) -> list[np.ndarray]:
    unsigned = values.view(np.uint64)
    return [((unsigned >> np.uint64(shift)) & np.uint64(mask)).astype(np.int64)
            for shift, mask in zip(_BAND_SHIFTS, _BAND_MASKS, strict=True)]


@dataclass
class _Snapshot:
    ids: np.ndarray = field(default_factory=lambda: np.empty(0, np.int64))
    values: np.ndarray = field(default_factory=lambda: np.empty(0, np.int64))
    works: np.ndarray = field(default_factory=lambda: np.empty((0, 16), np.uint8))
    # Per band, a bucket table: the rows whose band value is k are order[offsets[k]:offsets[k + 1]].
    offsets: list[np.ndarray] = field(default_factory=list)
    order: list[np.ndarray] = field(default_factory=list)
    # Rows fetched since the last sort: searched by brute force until they are merged.
    tail_ids: list[int] = field(default_factory=list)
    tail_values: list[int] = field(default_factory=list)
    tail_works: list[bytes] = field(default_factory=list)
    max_id: int = 0
    reconciled_at: float = 0.0


class PhashIndex:
    MERGE_TAIL_AT = 20_000

    def __init__(self, using: str) -> None:
        self.using = using
        self._lock = threading.Lock()
        self._snapshot: _Snapshot | None = None

    def confirm(self, row_ids: set[int]) -> set[int]:
        """The ids among `row_ids` still in the table: a deleted row never matches."""
        if not row_ids:
            return set()
        with connections[self.using].cursor() as cursor:
            cursor.execute("SELECT id FROM registry_perceptualhash WHERE id = ANY(%s)", [list(row_ids)])
            return {row[0] for row in cursor.fetchall()}

    def search(self, queries: list[tuple[int, int]]) -> list[dict[uuid.UUID, tuple[int, int]]]:
        """For each (value, max_distance): {work: (distance, phash row id)} within that distance."""
        snapshot = self._fresh()
        results: list[dict[uuid.UUID, tuple[int, int]]] = [{} for _ in queries]
        if not queries:
            return results
        # Hashes are signed 64-bit (as stored); accept the unsigned spelling of the same bits too.
        targets = np.array([value - (1 << 64) if value >= 1 << 63 else value for value, _ in queries], np.int64)
        limits = np.array([limit for _, limit in queries], np.int64)
        if len(snapshot.values):
            query_bands = _bands_of(targets)
            candidate_rows, candidate_owner = [], []
            for band in range(3):
                offsets, order = snapshot.offsets[band], snapshot.order[band]
                for radius in np.unique(limits // 3):
                    owners = np.flatnonzero(limits // 3 == radius)
                    # Every band value within `radius` bits of each query's band value.
                    probes = (query_bands[band][owners, None] ^ _masks(BAND_BITS[band], int(radius))[None, :]).ravel()
                    probe_owner = np.repeat(owners, len(_masks(BAND_BITS[band], int(radius))))
                    starts, ends = offsets[probes], offsets[probes + 1]
                    counts = ends - starts
                    hit = counts > 0
                    starts, counts, probe_owner = starts[hit], counts[hit], probe_owner[hit]
                    total = int(counts.sum())
                    if not total:
                        continue
                    # Expand each bucket [start, end) into its positions in the band's order.
                    positions = np.repeat(starts - (np.cumsum(counts) - counts), counts) + np.arange(total)
                    candidate_rows.append(order[positions])
                    candidate_owner.append(np.repeat(probe_owner, counts))
            if candidate_rows:
                rows, owners = np.concatenate(candidate_rows), np.concatenate(candidate_owner)
                distances = np.bitwise_count((snapshot.values[rows] ^ targets[owners]).view(np.uint64))
                close = distances <= limits[owners]
                for row, owner, distance in zip(rows[close], owners[close], distances[close], strict=True):
                    self._keep(results[owner], uuid.UUID(bytes=snapshot.works[row].tobytes()), int(distance),
                               int(snapshot.ids[row]))
        for row_id, value, work in zip(snapshot.tail_ids, snapshot.tail_values, snapshot.tail_works, strict=True):
            for index, (target, limit) in enumerate(queries):
                distance = ((value ^ target) & 0xFFFFFFFFFFFFFFFF).bit_count()
                if distance <= limit:
                    self._keep(results[index], uuid.UUID(bytes=work), distance, row_id)
        return results

    @staticmethod
    def _keep(found: dict, work: uuid.UUID, distance: int, row_id: int) -> None:
        best = found.get(work)
        if best is None or distance < best[0]:
            found[work] = (distance, row_id)

    def _fresh(self) -> _Snapshot:
        with self._lock:
            snapshot = self._snapshot
            if snapshot is None or time.monotonic() - snapshot.reconciled_at > RECONCILE_SECONDS:
                if snapshot is None or not self._matches_table(snapshot):
                    snapshot = self._load_all()
                snapshot.reconciled_at = time.monotonic()
            self._fetch_new(snapshot)
            if len(snapshot.tail_ids) >= self.MERGE_TAIL_AT:
                snapshot = self._merge_tail(snapshot)
            self._snapshot = snapshot
            return snapshot

    def _matches_table(self, snapshot: _Snapshot) -> bool:
        high = max(snapshot.max_id, snapshot.tail_ids[-1] if snapshot.tail_ids else 0)
        with connections[self.using].cursor() as cursor:
            cursor.execute("SELECT count(*), coalesce(sum(id), 0) FROM registry_perceptualhash WHERE id <= %s",
                           [high])
            count, total = cursor.fetchone()
        known = len(snapshot.ids) + len(snapshot.tail_ids)
        return count == known and int(total) == int(snapshot.ids.sum()) + sum(snapshot.tail_ids)

    LOAD_CHUNK = 200_000

    def _load_all(self) -> _Snapshot:
        # PostgreSQL packs each chunk into three byte strings (int8send/uuid_send are the binary
        # wire forms), so a million rows load without a Python object per row.
        ids, values, works = [], [], []
        high = -(1 << 63)
        with connections[self.using].cursor() as cursor:
            while True:
                cursor.execute(
                    "SELECT max(id), string_agg(int8send(id), '' ORDER BY id), "
                    "string_agg(int8send(value), '' ORDER BY id), string_agg(uuid_send(work_id), '' ORDER BY id) "
                    "FROM (SELECT id, value, work_id FROM registry_perceptualhash WHERE id > %s "
                    "ORDER BY id LIMIT %s) AS chunk",
                    [high, self.LOAD_CHUNK],
                )
                chunk_high, chunk_ids, chunk_values, chunk_works = cursor.fetchone()
                if chunk_high is None:
                    break
                high = chunk_high
                ids.append(np.frombuffer(bytes(chunk_ids), ">i8").astype(np.int64))
                values.append(np.frombuffer(bytes(chunk_values), ">i8").astype(np.int64))
                works.append(np.frombuffer(bytes(chunk_works), np.uint8).reshape(-1, 16))
        snapshot = _Snapshot()
        if ids:
            snapshot.ids, snapshot.values = np.concatenate(ids), np.concatenate(values)
            snapshot.works = np.concatenate(works)
            snapshot.max_id = high
        return self._sorted(snapshot)

    def _fetch_new(self, snapshot: _Snapshot) -> None:
        high = max(snapshot.max_id, snapshot.tail_ids[-1] if snapshot.tail_ids else 0)
        with connections[self.using].cursor() as cursor:
            cursor.execute("SELECT id, value, work_id FROM registry_perceptualhash WHERE id > %s ORDER BY id", [high])
            for row_id, value, work in cursor.fetchall():
                snapshot.tail_ids.append(row_id)
                snapshot.tail_values.append(value)
                snapshot.tail_works.append(work.bytes)

    def _merge_tail(self, snapshot: _Snapshot) -> _Snapshot:
        merged = _Snapshot(
            ids=np.concatenate([snapshot.ids, np.array(snapshot.tail_ids, np.int64)]),
            values=np.concatenate([snapshot.values, np.array(snapshot.tail_values, np.int64)]),
            works=np.concatenate([snapshot.works,
                                  np.frombuffer(b"".join(snapshot.tail_works), np.uint8).reshape(-1, 16)]),
            reconciled_at=snapshot.reconciled_at,
        )
        merged.max_id = int(merged.ids.max()) if len(merged.ids) else 0
        return self._sorted(merged)

    @staticmethod
    def _sorted(snapshot: _Snapshot) -> _Snapshot:
        snapshot.offsets, snapshot.order = [], []
        for bits, band_values in zip(BAND_BITS, _bands_of(snapshot.values), strict=True):
            snapshot.order.append(np.argsort(band_values, kind="stable"))
            counts = np.bincount(band_values, minlength=1 << bits)
            snapshot.offsets.append(np.concatenate([[0], np.cumsum(counts)]).astype(np.int64))
        return snapshot


_indexes: dict[tuple[str, str], PhashIndex] = {}
_indexes_lock = threading.Lock()


def phash_index(using: str) -> PhashIndex:
    """One index per process and database (keyed by name, so test databases never mix)."""
    key = (using, str(connections[using].settings_dict["NAME"]))
    with _indexes_lock:
        if key not in _indexes:
            _indexes[key] = PhashIndex(using)
        return _indexes[key]
