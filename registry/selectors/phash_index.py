"""A multi-index over the stored perceptual hashes, built once per machine and shared by every process.

Why: a batch of 100 phash items at distance 8 needs ~70,000 band probes (see
`matching.fingerprints.band_probes`). PostgreSQL answers each probe with an index descent, which
over a million hashes costs hundreds of milliseconds; numpy does the same probes in a few.

Why shared: the arrays take ~98 MB at 1M hashes (~700 MB at 10M, the bucket tables being fixed).
Built per process, four web workers would hold four copies and each would pay a cold load on its
first near-match request. Instead one process builds the arrays into a file, and every process
memory-maps it: the pages sit once in the page cache, however many workers map them.

- The file (`index_path`) is per database. A builder takes an exclusive `flock` on a lock file
  beside it, reads the table, writes a temporary file and swaps it in with `os.replace`, bumping
  the generation in its header. A process that has the old file mapped keeps a valid mapping (the
  old inode lives until unmapped) and re-maps when it sees a new inode: no reader ever sees half
  a file. Whoever finds the file missing, stale or too far behind rebuilds it; the others wait
  on the lock and then map what was built.
- `warm()` maps (or builds) it before a worker takes traffic: gunicorn.conf.py's post_worker_init.

Fresh as the table, like before:
- every lookup first fetches the rows added since the file's highest id into a per-process tail
  (one indexed query), searched by brute force; a tail of MERGE_TAIL_AT rows triggers a rebuild;
- at least every RECONCILE_SECONDS (at a random point of its second half, as the key filter's),
  (count, sum of ids) is compared with the table, in a thread of its own,
  and the file is rebuilt on the next lookup after any difference, which catches deleted rows and
  rows whose transaction committed after a later id (sequence order is not commit order);
- a deleted row never matches: the database counts the statements that delete or change hash rows
  (migration 0016, triggers), the file records that count as it was before its rows were read,
  and every lookup reads it with the new rows. While it is unchanged the candidates stand as they
  are (`NearCandidates.current`); once it moves, every match is confirmed against the table until
  a rebuild (the reconciliation below notices the count) takes it in.

The window in which a hash committed out of order can be missed is RECONCILE_SECONDS; a near match
only ever lists similar works (it never permits), so a miss costs a listing, not a permission.
Only PostgreSQL uses this (ids there are never reused); SQLite probes the band columns in SQL.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import mmap
import os
import tempfile
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache
from typing import NamedTuple

import numpy as np
from django.conf import settings
from django.db import connections

from registry.db_statements import fixed_cursor
from registry.matching.fingerprints import BAND_BITS, band_masks, phash_bands_array
from registry.selectors.reconcile import ReconcileSchedule, reconcile_in_background

RECONCILE_SECONDS = 30.0
_MAGIC = b"KYOKAPH2"
_ALIGN = 64


@cache
def _masks(bits: int, radius: int) -> np.ndarray:
    return np.array(band_masks(bits, radius), np.int64)


def index_directory() -> str:
    """Where the shared index files live: KYOKA_INDEX_DIR, or a folder in the system's temp directory.

    Scratch: any file here can be deleted at any time and is rebuilt from the database.
    """
    directory = getattr(settings, "KYOKA_INDEX_DIR", "") or os.path.join(
        tempfile.gettempdir(), f"kyoka-index-{os.getuid()}"
    )
    os.makedirs(directory, exist_ok=True)
    return directory


def index_path(using: str) -> str:
    db = connections[using].settings_dict
    where = f"{db.get('HOST')}:{db.get('PORT')}/{db['NAME']}"
    return os.path.join(index_directory(), f"phash-{db['NAME']}-{hashlib.sha256(where.encode()).hexdigest()[:12]}.idx")


_new_uuid, _set_attribute, _UNKNOWN_SAFETY = uuid.UUID.__new__, object.__setattr__, uuid.SafeUUID.unknown


def _uuid_of(packed: bytes) -> uuid.UUID:
    """uuid.UUID(bytes=packed) without the constructor's argument checks (psycopg builds the
    uuids it loads the same way): a near-match check makes ~1,300 of them, at half the cost."""
    value = _new_uuid(uuid.UUID)
    _set_attribute(value, "int", int.from_bytes(packed))
    _set_attribute(value, "is_safe", _UNKNOWN_SAFETY)
    return value


@dataclass
class _Shared:
    """One generation of the shared file, memory-mapped (read-only views into the page cache)."""

    generation: int = 0
    inode: tuple[int, int] = (0, 0)
    max_id: int = 0
    count: int = 0
    id_sum: int = 0
    # The table's removal count before the rows were read (None: a file written without it).
    removals: int | None = None
    ids: np.ndarray = field(default_factory=lambda: np.empty(0, np.int64))
    values: np.ndarray = field(default_factory=lambda: np.empty(0, np.int64))
    works: np.ndarray = field(default_factory=lambda: np.empty((0, 16), np.uint8))
    # Per band, a bucket table: the rows whose band value is k are order[offsets[k]:offsets[k + 1]],
    # and their hash values, in the same order, banded[offsets[k]:offsets[k + 1]] (so a bucket's
    # candidates are read in one run instead of one random access each).
    offsets: list[np.ndarray] = field(default_factory=list)
    order: list[np.ndarray] = field(default_factory=list)
    banded: list[np.ndarray] = field(default_factory=list)
    nbytes: int = 0


class NearCandidates(NamedTuple):
    """Per query, {work: (distance, phash row id)}; `current` when no row the index holds has been
    deleted or changed since it was read, so the rows need no confirming against the table."""

    rows: list[dict[uuid.UUID, tuple[int, int]]]
    current: bool

    def row_ids(self) -> set[int]:
        """The hash rows to confirm: none while `current`."""
        return set() if self.current else {row_id for per in self.rows for _, row_id in per.values()}

    def distances(self, present: set[int]) -> list[dict[uuid.UUID, int]]:
        """Per query, {work: distance} of the rows that stand: all while `current`, else those in `present`."""
        if self.current:
            return [{work: distance for work, (distance, _) in per.items()} for per in self.rows]
        return [{work: distance for work, (distance, row_id) in per.items() if row_id in present} for per in self.rows]


@dataclass
class _Tail:
    """Rows newer than the shared file, fetched by this process."""

    ids: list[int] = field(default_factory=list)
    values: list[int] = field(default_factory=list)
    works: list[bytes] = field(default_factory=list)


def _write_index(path: str, generation: int, ids: np.ndarray, values: np.ndarray, works: np.ndarray,
                 removals: int | None) -> None:
    arrays: dict[str, np.ndarray] = {"ids": ids, "values": values, "works": works}
    for band, (bits, band_values) in enumerate(zip(BAND_BITS, phash_bands_array(values), strict=True)):
        arrays[f"order{band}"] = np.argsort(band_values, kind="stable").astype(np.int32)
        arrays[f"banded{band}"] = values[arrays[f"order{band}"]]
        counts = np.bincount(band_values, minlength=1 << bits)
        arrays[f"offsets{band}"] = np.concatenate([[0], np.cumsum(counts)]).astype(np.int32)
    layout, offset = {}, 0
    for name, array in arrays.items():
        layout[name] = {"offset": offset, "dtype": array.dtype.str, "shape": list(array.shape)}
        offset += -(-array.nbytes // _ALIGN) * _ALIGN
    header = json.dumps({
        "generation": generation, "max_id": int(ids.max()) if len(ids) else 0, "count": len(ids),
        "id_sum": int(ids.sum()), "removals": removals, "arrays": layout,
    }).encode()
    header_size = -(-(len(_MAGIC) + 8 + len(header)) // _ALIGN) * _ALIGN
    handle, temporary = tempfile.mkstemp(dir=os.path.dirname(path), prefix=".phash-", suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as out:
            out.write(_MAGIC + len(header).to_bytes(8, "little") + header)
            out.write(b"\0" * (header_size - len(_MAGIC) - 8 - len(header)))
            for array in arrays.values():
                data = np.ascontiguousarray(array).tobytes()
                out.write(data + b"\0" * (-(-len(data) // _ALIGN) * _ALIGN - len(data)))
        os.replace(temporary, path)  # atomic: a reader maps the old file or the new one, never half
    except BaseException:
        os.unlink(temporary)
        raise


def _map_index(path: str) -> _Shared:
    # MAP_POPULATE (Linux) fills this process's page tables for the whole file at once: mapped
    # lazily, a worker took a page fault for each page its first near-match requests touched,
    # 10-18 ms more on each of them. The pages themselves stay one copy in the page cache.
    with open(path, "rb") as file:
        buffer = mmap.mmap(file.fileno(), 0, flags=mmap.MAP_SHARED | getattr(mmap, "MAP_POPULATE", 0),
                           prot=mmap.PROT_READ)
    mapped = np.frombuffer(buffer, dtype=np.uint8)  # keeps the mapping alive as long as any view
    if bytes(mapped[: len(_MAGIC)]) != _MAGIC:
        raise ValueError(f"{path} is not a Kyoka phash index")
    header_length = int.from_bytes(bytes(mapped[len(_MAGIC): len(_MAGIC) + 8]), "little")
    header = json.loads(bytes(mapped[len(_MAGIC) + 8: len(_MAGIC) + 8 + header_length]))
    if "removals" not in header:
        raise ValueError(f"{path} was written before the removal count: rebuilt")
    header_size = -(-(len(_MAGIC) + 8 + header_length) // _ALIGN) * _ALIGN
    views = {}
    for name, spec in header["arrays"].items():
        dtype, shape = np.dtype(spec["dtype"]), tuple(spec["shape"])
        count = int(np.prod(shape)) if shape else 1
        start = header_size + spec["offset"]
        views[name] = np.frombuffer(mapped, dtype, count, start).reshape(shape)
    status = os.stat(path)
    return _Shared(
        generation=header["generation"], inode=(status.st_dev, status.st_ino), max_id=header["max_id"],
        count=header["count"], id_sum=header["id_sum"], removals=header.get("removals"),
        ids=views["ids"], values=views["values"],
        works=views["works"], offsets=[views[f"offsets{b}"] for b in range(3)],
        order=[views[f"order{b}"] for b in range(3)], banded=[views[f"banded{b}"] for b in range(3)],
        nbytes=int(mapped.nbytes),
    )


_REMOVALS_TABLE = "registry_phash_removals"  # migration 0016
# The new rows and the removal count in one statement; one row at least, so the new rows never
# depend on the counter's row (without it the count is NULL and no candidate stands unconfirmed).
_FETCH_NEW_SQL = (
    f"SELECT (SELECT removals FROM {_REMOVALS_TABLE}), p.id, p.value, p.work_id FROM (SELECT 1) AS one "  # noqa: S608
    "LEFT JOIN LATERAL (SELECT id, value, work_id FROM registry_perceptualhash WHERE id > %s) AS p ON TRUE "
    "ORDER BY p.id"
)


class PhashIndex:
    MERGE_TAIL_AT = 20_000
    LOAD_CHUNK = 200_000

    def __init__(self, using: str) -> None:
        self.using = using
        self._lock = threading.Lock()
        self._shared: _Shared | None = None
        self._tail = _Tail()
        self._reconciling = ReconcileSchedule()
        self._reconciler: threading.Thread | None = None
        self._differs_at: int | None = None  # the generation a reconciliation found wanting

    # --- answering ---------------------------------------------------------------------------

    def confirm(self, row_ids: set[int]) -> set[int]:
        """The ids among `row_ids` still in the table: a deleted row never matches."""
        if not row_ids:
            return set()
        with connections[self.using].cursor() as cursor:
            cursor.execute("SELECT id FROM registry_perceptualhash WHERE id = ANY(%s)", [list(row_ids)])
            return {row[0] for row in cursor.fetchall()}

    def candidates(self, queries: list[tuple[int, int]]) -> NearCandidates:
        """For each (value, max_distance): {work: (distance, phash row id)} within that distance, and
        whether they stand without confirming (see NearCandidates)."""
        return self.searcher()(queries)

    def searcher(self) -> Callable[[list[tuple[int, int]]], NearCandidates]:
        """`candidates` as a function of the queries, over the index as it is now (caught up with
        the table once, here): it uses no database, so a caller can search one part of its queries
        while the database lists what an earlier part found."""
        shared, tail, current = self._fresh()
        return lambda queries: self._search(shared, tail, current, queries)

    def _search(self, shared: _Shared, tail: _Tail, current: bool, queries: list[tuple[int, int]]) -> NearCandidates:
        results: list[dict[uuid.UUID, tuple[int, int]]] = [{} for _ in queries]
        if not queries:
            return NearCandidates(results, current)
        # Hashes are signed 64-bit (as stored); accept the unsigned spelling of the same bits too.
        targets = np.array([value - (1 << 64) if value >= 1 << 63 else value for value, _ in queries], np.int64)
        limits = np.array([limit for _, limit in queries], np.int64)
        if shared.count:
            query_bands = phash_bands_array(targets)
            close_rows, close_owner, close_distance = [], [], []
            for band in range(3):
                offsets, order, banded = shared.offsets[band], shared.order[band], shared.banded[band]
                for radius in np.unique(limits // 3):
                    owners = np.flatnonzero(limits // 3 == radius)
                    masks = _masks(BAND_BITS[band], int(radius))
                    # Every band value within `radius` bits of each query's band value.
                    probes = (query_bands[band][owners, None] ^ masks[None, :]).ravel()
                    probe_owner = np.repeat(owners, len(masks))
                    starts, ends = offsets[probes].astype(np.int64), offsets[probes + 1].astype(np.int64)
                    counts = ends - starts
                    hit = counts > 0
                    starts, counts, probe_owner = starts[hit], counts[hit], probe_owner[hit]
                    total = int(counts.sum())
                    if not total:
                        continue
                    # Expand each bucket [start, end) into its positions in the band's order; the
                    # values there are contiguous, and only the close ones are mapped back to rows.
                    positions = np.repeat(starts - (np.cumsum(counts) - counts), counts) + np.arange(total)
                    owners_here = np.repeat(probe_owner, counts)
                    distances = np.bitwise_count((banded[positions] ^ targets[owners_here]).view(np.uint64))
                    close = distances <= limits[owners_here]
                    close_rows.append(order[positions[close]])
                    close_owner.append(owners_here[close])
                    close_distance.append(distances[close])
            if close_rows:
                rows, owners, distances = (np.concatenate(close_rows), np.concatenate(close_owner),
                                           np.concatenate(close_distance))
                # A row found through two bands counts once; then one Python object per distinct work.
                _, first = np.unique(owners.astype(np.int64) * (shared.count + 1) + rows, return_index=True)
                rows, owners, distances = rows[first], owners[first], distances[first]
                distinct = np.unique(rows)
                packed = shared.works[distinct].tobytes()
                work_of = {row: _uuid_of(packed[16 * n: 16 * n + 16]) for n, row in enumerate(distinct.tolist())}
                row_ids = shared.ids[rows].tolist()
                for row, owner, distance, row_id in zip(rows.tolist(), owners.tolist(), distances.tolist(), row_ids,
                                                        strict=True):
                    self._keep(results[owner], work_of[row], distance, row_id)
        if tail.ids:
            # The rows newer than the file (up to MERGE_TAIL_AT of them), against every query at once
            # per query: a Python loop over rows and queries cost ~1 s per 100 queries at 20,000 rows.
            tail_values = np.array(tail.values, np.int64)
            for index, (target, limit) in enumerate(zip(targets.tolist(), limits.tolist(), strict=True)):
                distances = np.bitwise_count((tail_values ^ np.int64(target)).view(np.uint64))
                for k in np.flatnonzero(distances <= limit).tolist():
                    self._keep(results[index], _uuid_of(tail.works[k]), int(distances[k]), tail.ids[k])
        return NearCandidates(results, current)

    @staticmethod
    def _keep(found: dict, work: uuid.UUID, distance: int, row_id: int) -> None:
        best = found.get(work)
        if best is None or distance < best[0]:
            found[work] = (distance, row_id)

    def warm(self) -> None:
        """Map the shared index (building it if no process has yet) before this process takes traffic,
        and rebuild it now if it no longer holds what the table does (a file left by an earlier
        database of the same name, or rows removed while no process ran): otherwise the first
        reconciliation finds that only RECONCILE_SECONDS later, and until then every near-match
        lookup searches the difference row by row and confirms rows that are gone."""
        self._fresh()
        with self._lock:
            if not self._matches_table():
                self._rebuild(index_path(self.using), stale_generation=self._shared.generation)

    def stats(self) -> dict[str, int]:
        shared = self._shared
        return {"hashes": (shared.count if shared else 0) + len(self._tail.ids),
                "shared_bytes": shared.nbytes if shared else 0, "generation": shared.generation if shared else 0}

    # --- keeping in step -----------------------------------------------------------------------

    def _fresh(self) -> tuple[_Shared, _Tail, bool]:
        with self._lock:
            path = index_path(self.using)
            if self._shared is None or self._changed_on_disk(path):
                self._remap(path, build_if_missing=True)
            assert self._shared is not None
            if self._differs_at == self._shared.generation:
                self._rebuild(path, stale_generation=self._shared.generation)
            if self._reconciling.due(RECONCILE_SECONDS):
                self._reconcile_in_background()
            if connections[self.using].in_atomic_block:
                # Inside a transaction the new rows may be its own, never to be committed: they are
                # searched for this lookup only, and the tail that outlives it takes none of them.
                tail = _Tail(list(self._tail.ids), list(self._tail.values), list(self._tail.works))
                removals = self._fetch_new(tail)
            else:
                tail, removals = self._tail, self._fetch_new(self._tail)
                if len(tail.ids) >= self.MERGE_TAIL_AT:
                    self._rebuild(path, stale_generation=self._shared.generation)
                    tail, removals = self._tail, self._fetch_new(self._tail)
            return self._shared, tail, self._shared.removals is not None and removals == self._shared.removals

    def _changed_on_disk(self, path: str) -> bool:
        try:
            status = os.stat(path)
        except FileNotFoundError:
            return True
        return (status.st_dev, status.st_ino) != self._shared.inode

    def _remap(self, path: str, *, build_if_missing: bool) -> None:
        try:
            shared = _map_index(path)
        except (FileNotFoundError, ValueError):
            if not build_if_missing:
                raise
            self._rebuild(path, stale_generation=None)
            return
        self._adopt(shared)

    def _adopt(self, shared: _Shared) -> None:
        if self._shared is None or shared.generation != self._shared.generation:
            self._reconciling.restart()
        self._shared = shared
        # Rows the new file holds leave the tail; the rest stay, and newer ones come by fetching.
        keep = [i for i, row_id in enumerate(self._tail.ids) if row_id > shared.max_id]
        self._tail = _Tail([self._tail.ids[i] for i in keep], [self._tail.values[i] for i in keep],
                           [self._tail.works[i] for i in keep])

    def _rebuild(self, path: str, *, stale_generation: int | None) -> None:
        """Rebuild the shared file, unless another process did while this one waited for the lock."""
        with open(path + ".lock", "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                try:
                    current = _map_index(path)
                except (FileNotFoundError, ValueError):
                    current = None
                if current is not None and stale_generation is not None and current.generation != stale_generation:
                    self._adopt(current)  # someone rebuilt it meanwhile
                    if self._matches_table():
                        return
                if current is not None and stale_generation is None:
                    self._adopt(current)  # it appeared while this process waited
                    return
                # Read before the rows, so a removal committed after it moves the count; inside a
                # transaction the rows may include its own uncommitted ones, so none is trusted.
                removals = None if connections[self.using].in_atomic_block else self._removals()
                ids, values, works = self._load_all()
                _write_index(path, (current.generation if current else 0) + 1, ids, values, works, removals)
                self._adopt(_map_index(path))
                self._reconciling.restart()
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def _reconcile_in_background(self) -> None:
        """Compare the table with what the index holds off the request path (counting a million rows
        takes ~70 ms, which a near-match request in every worker paid every RECONCILE_SECONDS); on a
        difference the next lookup rebuilds. Called with the lock held."""
        if self._reconciler is not None and self._reconciler.is_alive():
            return
        self._reconciling.restart()
        expected, generation = self._held(), self._shared.generation

        def differs() -> None:
            with self._lock:
                if self._shared is not None and self._shared.generation == generation:
                    self._differs_at = generation

        self._reconciler = reconcile_in_background(
            using=self.using, name="kyoka-phash-reconcile", holds=lambda: self._table_holds(expected),
            on_difference=differs,
        )

    def _matches_table(self) -> bool:
        return self._table_holds(self._held())

    def _held(self) -> tuple[int, int, int, int | None]:
        """(highest id, count, sum of ids, removal count) of the rows the file and the tail hold."""
        shared, tail = self._shared, self._tail
        assert shared is not None
        high = max(shared.max_id, tail.ids[-1] if tail.ids else 0)
        return high, shared.count + len(tail.ids), shared.id_sum + sum(tail.ids), shared.removals

    def _table_holds(self, expected: tuple[int, int, int, int | None]) -> bool:
        high, count, id_sum, removals = expected
        with connections[self.using].cursor() as cursor:
            cursor.execute(
                f"SELECT count(*), coalesce(sum(id), 0), (SELECT removals FROM {_REMOVALS_TABLE}) "  # noqa: S608
                "FROM registry_perceptualhash WHERE id <= %s", [high],
            )
            found, total, removals_now = cursor.fetchone()
        # A moved removal count means rows were deleted or changed: rebuilt, matches stand unconfirmed
        # again. (A file read inside a transaction has no count; its matches are always confirmed.)
        return (found, int(total)) == (count, id_sum) and (removals is None or removals_now == removals)

    def _removals(self) -> int | None:
        with connections[self.using].cursor() as cursor:
            cursor.execute(f"SELECT removals FROM {_REMOVALS_TABLE}")  # noqa: S608 (a constant)
            row = cursor.fetchone()
        return row[0] if row else None  # no counter row: nothing can be trusted unconfirmed

    def _load_all(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
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
        if not ids:
            return np.empty(0, np.int64), np.empty(0, np.int64), np.empty((0, 16), np.uint8)
        return np.concatenate(ids), np.concatenate(values), np.concatenate(works)

    def _fetch_new(self, tail: _Tail) -> int | None:
        """Take the rows added since the file's (or the tail's) highest id; return the removal count
        as the same statement saw it."""
        assert self._shared is not None
        high = max(self._shared.max_id, tail.ids[-1] if tail.ids else 0)
        with fixed_cursor(self.using) as cursor:  # the same text every time: prepared once per connection
            cursor.execute(_FETCH_NEW_SQL, [high])
            rows = cursor.fetchall()
        for _removals, row_id, value, work in rows:
            if row_id is not None:
                tail.ids.append(row_id)
                tail.values.append(value)
                tail.works.append(work.bytes)
        return rows[0][0]


_indexes: dict[tuple[str, str], PhashIndex] = {}
_indexes_lock = threading.Lock()


def phash_index(using: str) -> PhashIndex:
    """One index object per process and database (keyed by name, so test databases never mix)."""
    key = (using, str(connections[using].settings_dict["NAME"]))
    with _indexes_lock:
        if key not in _indexes:
            _indexes[key] = PhashIndex(using)
        return _indexes[key]
