"""A manifest spilled to a scratch SQLite file, in the order its rows must be written.

Rows can name a parent anywhere in the same manifest, so a row cannot always be written when
it is read: its parent may come 900,000 rows later. The index puts parents first — rows are
processed by depth in the manifest (0: no parent in the manifest), then in manifest order —
finds duplicate external_refs and parent cycles, and does so without holding the manifest in
memory or writing a staging copy into the shared database: SQLite keeps it on local disk with
a small page cache.

The file is scratch: every delivery of the upload task rebuilds it from the manifest (the
same manifest always gives the same order), so a redelivery on another machine loses nothing.
A row's `position` in this order is what BulkUpload.committed_through_row counts.
"""

from __future__ import annotations

import glob
import json
import os
import shutil
import sqlite3
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from itertools import islice

from registry.models.works import MAX_WORK_DEPTH
from registry.uploads.manifests import ManifestRow, Problem

_INSERT_BATCH = 10_000
# Depth in the manifest alone: a row with this many manifest ancestors is already too deep.
_DEPTH_UNRESOLVED = MAX_WORK_DEPTH


@dataclass(frozen=True)
class IndexedRow:
    position: int  # 1-based, in processing order
    number: int  # the row's number in the manifest
    external_ref: str  # stripped; "" when missing or not text
    parent_ref: str | None  # stripped; None when the row does not give one
    values: dict[str, object]
    problems: tuple[Problem, ...]
    first_number: int | None  # the earlier row with the same external_ref, if any
    parent_number: int | None  # the row that defines parent_ref in this manifest, if any
    depth: int  # parents in this manifest; MAX_WORK_DEPTH when in a cycle or too deep

    @property
    def hierarchy_broken(self) -> bool:
        return self.depth >= _DEPTH_UNRESOLVED


def ref_text(value: object) -> str:
    """An external_ref or parent_ref as the index keys it: text or an integer, stripped."""
    if isinstance(value, bool) or not isinstance(value, str | int):
        return ""
    return str(value).strip()


class ManifestIndex:
    def __init__(self, directory: str) -> None:
        self._directory = directory
        self._db = sqlite3.connect(os.path.join(directory, "manifest.sqlite3"), isolation_level=None)
        # Scratch data, rebuilt on any failure: no journal, no fsync, a bounded page cache.
        self._db.executescript(
            """
            PRAGMA journal_mode = OFF;
            PRAGMA synchronous = OFF;
            PRAGMA cache_size = -16000;
            PRAGMA temp_store = FILE;
            CREATE TABLE row (
                number INTEGER PRIMARY KEY,
                ref TEXT NOT NULL,
                parent_ref TEXT,
                data TEXT NOT NULL,
                problems TEXT NOT NULL,
                first_number INTEGER,
                parent_number INTEGER,
                depth INTEGER
            );
            """
        )
        self.total_rows = 0

    @classmethod
    def build(cls, rows: Iterable[ManifestRow], *, label: str = "", directory: str | None = None) -> ManifestIndex:
        """Read every row (ManifestRejected propagates) and work out the processing order.

        `label` (the upload's id) names the scratch folder, so that a delivery killed on this
        machine has its leftovers removed by the next one. (An index still open elsewhere keeps
        working: its file is only unlinked.)
        """
        prefix = f"kyoka-upload-{label}-" if label else "kyoka-upload-"
        if label:
            for stale in glob.glob(os.path.join(directory or tempfile.gettempdir(), glob.escape(prefix) + "*")):
                shutil.rmtree(stale, ignore_errors=True)
        index = cls(tempfile.mkdtemp(prefix=prefix, dir=directory))
        try:
            index._load(rows)
            index._resolve()
        except BaseException:
            index.close()
            raise
        return index

    def close(self) -> None:
        self._db.close()
        shutil.rmtree(self._directory, ignore_errors=True)

    def __enter__(self) -> ManifestIndex:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _load(self, rows: Iterable[ManifestRow]) -> None:
        iterator = iter(rows)
        self._db.execute("BEGIN")
        while batch := list(islice(iterator, _INSERT_BATCH)):
            self._db.executemany(
                "INSERT INTO row (number, ref, parent_ref, data, problems) VALUES (?, ?, ?, ?, ?)",
                [
                    (
                        row.number,
                        ref_text(row.values.get("external_ref")),
                        ref_text(row.values["parent_ref"]) if "parent_ref" in row.values else None,
                        json.dumps(row.values, ensure_ascii=False, separators=(",", ":")),
                        json.dumps(row.problems, ensure_ascii=False) if row.problems else "",
                    )
                    for row in batch
                ],
            )
            self.total_rows += len(batch)
        self._db.execute("COMMIT")

    def _resolve(self) -> None:
        db = self._db
        db.execute("BEGIN")
        db.execute("CREATE INDEX row_ref ON row (ref)")
        # The first row of each external_ref defines it; later ones are duplicates.
        db.execute(
            "CREATE TEMP TABLE first_row AS SELECT ref, MIN(number) AS number FROM row WHERE ref <> '' GROUP BY ref"
        )
        db.execute("CREATE UNIQUE INDEX first_row_ref ON first_row (ref)")
        db.execute(
            "UPDATE row SET first_number = (SELECT f.number FROM first_row f WHERE f.ref = row.ref) "
            "WHERE ref <> ''"
        )
        db.execute(
            "UPDATE row SET parent_number = (SELECT f.number FROM first_row f WHERE f.ref = row.parent_ref) "
            "WHERE parent_ref IS NOT NULL AND parent_ref <> ''"
        )
        # Depth by rounds: a row is one deeper than its parent row. Rows never reached are in
        # a cycle, or deeper than any work may nest.
        db.execute("UPDATE row SET depth = 0 WHERE parent_number IS NULL")
        for depth in range(_DEPTH_UNRESOLVED - 1):
            changed = db.execute(
                "UPDATE row SET depth = ? WHERE depth IS NULL AND parent_number IN "
                "(SELECT number FROM row WHERE depth = ?)",
                (depth + 1, depth),
            ).rowcount
            if not changed:
                break
        db.execute("UPDATE row SET depth = ? WHERE depth IS NULL", (_DEPTH_UNRESOLVED,))
        # INTEGER PRIMARY KEY numbers rows in insertion order: that is the processing order.
        db.execute("CREATE TABLE processing_order (position INTEGER PRIMARY KEY, number INTEGER NOT NULL)")
        db.execute("INSERT INTO processing_order (number) SELECT number FROM row ORDER BY depth, number")
        db.execute("COMMIT")

    def rows_after(self, position: int) -> Iterator[IndexedRow]:
        """Rows after `position`, in order, as long as they share the first one's depth.

        A chunk never spans two depths: every parent it needs is committed before it starts.
        """
        cursor = self._db.execute(
            "SELECT o.position, r.number, r.ref, r.parent_ref, r.data, r.problems, r.first_number, "
            "r.parent_number, r.depth FROM processing_order o JOIN row r ON r.number = o.number "
            "WHERE o.position > ? ORDER BY o.position",
            (position,),
        )
        depth = None
        try:
            for pos, number, ref, parent_ref, data, problems, first, parent_number, row_depth in cursor:
                if depth is None:
                    depth = row_depth
                elif row_depth != depth:
                    return
                yield IndexedRow(
                    position=pos,
                    number=number,
                    external_ref=ref,
                    parent_ref=parent_ref,
                    values=json.loads(data),
                    problems=tuple(tuple(p) for p in json.loads(problems)) if problems else (),
                    first_number=first if first != number else None,
                    parent_number=parent_number,
                    depth=row_depth,
                )
        finally:
            cursor.close()
