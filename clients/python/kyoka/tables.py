"""Reading and writing the dataset formats `kyoka filter` handles: CSV, TSV, JSONL, Parquet, URL lists.

These are img2dataset's input formats, so a filtered file is a valid img2dataset url list.
Outputs are written to a temporary file and renamed into place: an interrupted run never
leaves a half-written output behind.
"""

from __future__ import annotations

import csv
import io
import json
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

FORMATS = {".csv": "csv", ".tsv": "tsv", ".jsonl": "jsonl", ".ndjson": "jsonl", ".json": "jsonl",
           ".parquet": "parquet", ".txt": "txt"}
csv.field_size_limit(16 * 1024 * 1024)


def format_of(path: str | Path) -> str:
    suffix = Path(path).suffix.lower()
    if suffix not in FORMATS:
        raise ValueError(f"unknown dataset format {suffix!r}: use one of {', '.join(sorted(FORMATS))}")
    return FORMATS[suffix]


def read_rows(path: str | Path, fmt: str | None = None) -> tuple[list[str] | None, Iterator[dict[str, Any]]]:
    """(column names if known up front, rows as dicts)."""
    fmt = fmt or format_of(path)
    if fmt in ("csv", "tsv"):
        handle = open(path, newline="", encoding="utf-8-sig")  # noqa: SIM115 - closed by the generator
        reader = csv.DictReader(handle, delimiter="\t" if fmt == "tsv" else ",")
        fields = list(reader.fieldnames or [])

        def rows() -> Iterator[dict[str, Any]]:
            with handle:
                yield from reader

        return fields, rows()
    if fmt == "txt":
        def lines() -> Iterator[dict[str, Any]]:
            with open(path, encoding="utf-8") as handle:
                for line in handle:
                    if line.strip():
                        yield {"url": line.strip()}

        return ["url"], lines()
    if fmt == "jsonl":
        def records() -> Iterator[dict[str, Any]]:
            with open(path, encoding="utf-8") as handle:
                for number, line in enumerate(handle, start=1):
                    if line.strip():
                        record = json.loads(line)
                        if not isinstance(record, dict):
                            raise ValueError(f"line {number} is not a JSON object")
                        yield record

        return None, records()
    if fmt == "parquet":
        try:
            import pyarrow.parquet as pq
        except ImportError as exc:
            raise ValueError("Parquet needs the parquet extra: pip install 'kyoka-client[parquet]'") from exc
        source = pq.ParquetFile(path)

        def batches() -> Iterator[dict[str, Any]]:
            for batch in source.iter_batches(batch_size=65_536):
                yield from batch.to_pylist()

        return source.schema_arrow.names, batches()
    raise ValueError(f"unknown format {fmt}")


class RowWriter:
    """Writes rows in a format, to `path` once `commit()` is called (atomically)."""

    def __init__(self, path: str | Path, fmt: str | None = None, fields: list[str] | None = None) -> None:
        self.path = Path(path)
        self.fmt = fmt or format_of(path)
        self.fields = list(fields) if fields else None
        self.temporary = self.path.with_name(self.path.name + ".partial")
        self._buffer: list[dict[str, Any]] = []
        self._parquet_writer = None
        self._handle: io.TextIOBase | None = None
        self._csv: csv.DictWriter | None = None
        if self.fmt != "parquet":
            self._handle = open(self.temporary, "w", newline="", encoding="utf-8")  # noqa: SIM115

    def write(self, row: dict[str, Any]) -> None:
        if self.fmt in ("csv", "tsv"):
            if self._csv is None:
                self.fields = self.fields or list(row)
                self._csv = csv.DictWriter(self._handle, fieldnames=self.fields, extrasaction="ignore",
                                           delimiter="\t" if self.fmt == "tsv" else ",")
                self._csv.writeheader()
            self._csv.writerow({k: _cell(v) for k, v in row.items()})
        elif self.fmt == "txt":
            self._handle.write(f"{row.get('url', '')}\n")
        elif self.fmt == "jsonl":
            self._handle.write(json.dumps(row, ensure_ascii=False, default=str) + "\n")
        else:
            self._buffer.append(row)
            if len(self._buffer) >= 65_536:
                self._flush_parquet()

    def _flush_parquet(self) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        if not self._buffer:
            return
        table = pa.Table.from_pylist(self._buffer)
        if self._parquet_writer is None:
            self._parquet_writer = pq.ParquetWriter(self.temporary, table.schema)
        self._parquet_writer.write_table(table.cast(self._parquet_writer.schema))
        self._buffer = []

    def commit(self) -> None:
        if self.fmt == "parquet":
            self._flush_parquet()
            if self._parquet_writer is None:
                import pyarrow as pa
                import pyarrow.parquet as pq

                pq.write_table(pa.table({f: [] for f in (self.fields or [])}), self.temporary)
            else:
                self._parquet_writer.close()
        else:
            if self.fmt in ("csv", "tsv") and self._csv is None and self.fields:
                csv.DictWriter(self._handle, fieldnames=self.fields,
                               delimiter="\t" if self.fmt == "tsv" else ",").writeheader()
            self._handle.close()
        os.replace(self.temporary, self.path)

    def abort(self) -> None:
        if self._handle is not None and not self._handle.closed:
            self._handle.close()
        if self._parquet_writer is not None:
            self._parquet_writer.close()
        self.temporary.unlink(missing_ok=True)


def _cell(value: Any) -> Any:
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False)
    return value


def stdout_is_terminal() -> bool:
    return sys.stderr.isatty()
