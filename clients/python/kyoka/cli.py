"""The `kyoka` command: check, filter, sync, verify.

Exit codes: 0 every item permitted; 1 every item answered and some not permitted; 2 an error
(unreachable registry, timeout, bad signature, a body that does not parse, a missing result, an
expired snapshot, an interruption). On 2, every item without a trustworthy answer counts as not
permitted, and nothing unverified is ever written as permitted.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import signal
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from kyoka import fingerprints
from kyoka.client import Client, Decision, item_for
from kyoka.errors import KyokaError
from kyoka.receipts import verify
from kyoka.tables import RowWriter, format_of, read_rows

EXIT_PERMITTED, EXIT_NOT_PERMITTED, EXIT_ERROR = 0, 1, 2
COLUMNS = ("url", "sha256", "identifier")
DECISION_COLUMNS = ("kyoka_decision", "kyoka_reason", "kyoka_proof")


def _terms(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--purpose", required=True, help="e.g. train-genai, train-ai, tdm, ai-use, search")
    parser.add_argument("--territory", help="ISO 3166-1 alpha-2 code of where the use happens")
    parser.add_argument("--context", choices=("commercial", "non-commercial", "research"),
                        help="usage context (the registry assumes commercial)")


def _connection(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--url", default=os.environ.get("KYOKA_URL"), help="the registry (env KYOKA_URL)")
    parser.add_argument("--key", default=os.environ.get("KYOKA_API_KEY"), help="API key (env KYOKA_API_KEY)")
    parser.add_argument("--concurrency", type=int, default=4, help="batches in flight (default 4)")
    parser.add_argument("--batch-size", type=int, default=10_000, help="items per request (at most 10,000)")
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds per request")
    parser.add_argument("--retries", type=int, default=6, help="retries of 429 / 5xx / network errors")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="kyoka",
        description="Ask Kyoka before you ingest. Nothing found is not permission; any error is not permission.",
    )
    sub = parser.add_subparsers(dest="command", required=True)

    check = sub.add_parser("check", help="check files, URLs, hashes or identifiers")
    check.add_argument("targets", nargs="+", help="paths (directories recurse), URLs, sha256, scheme:value, "
                                                  "'-' for stdin, @FILE for a list")
    _terms(check)
    _connection(check)
    check.add_argument("--out", help="write decisions here (.jsonl, or .csv)")
    check.add_argument("--receipts", help="keep every receipt here as <check_id>.json and .jws")
    check.add_argument("--no-progress", action="store_true")
    check.add_argument("--no-similar", action="store_true",
                       help="do not also ask for works similar to local images (pHash, the images extra)")

    filt = sub.add_parser("filter", help="keep the permitted rows of a dataset (CSV, TSV, JSONL, Parquet, .txt)")
    filt.add_argument("dataset")
    filt.add_argument("--column", default="url", help="the column to check (url, sha256, identifier, ...)")
    filt.add_argument("--kind", choices=COLUMNS, help="what the column holds (default: its name, else guessed)")
    filt.add_argument("--out", required=True)
    _terms(filt)
    _connection(filt)
    filt.add_argument("--offline", action="store_true", help="decide from the synced licence snapshot, no network")
    filt.add_argument("--snapshot-dir", help="where `kyoka sync` keeps snapshots (env KYOKA_SNAPSHOT_DIR)")
    filt.add_argument("--receipts", help="receipts directory (default: OUT.receipts beside the output)")
    filt.add_argument("--decisions", action="store_true", help="add kyoka_decision, kyoka_reason, kyoka_proof")
    filt.add_argument("--all", action="store_true", help="keep every row (with --decisions), not only permitted")
    filt.add_argument("--no-progress", action="store_true")

    sync = sub.add_parser("sync", help="fetch or update the signed licence snapshot for offline filtering")
    _terms(sync)
    _connection(sync)
    sync.add_argument("--snapshot-dir", help="where to keep it (env KYOKA_SNAPSHOT_DIR)")

    ver = sub.add_parser("verify", help="verify stored receipts offline and compare decision files with them")
    ver.add_argument("receipts", nargs="+", help="receipt .json files or directories of them")
    ver.add_argument("--jwks", help="the registry's saved JWKS (default: jwks.json beside each receipt)")
    ver.add_argument("--decisions", action="append", default=[], help="a decision file (--out of check/filter)")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    # SIGTERM is an interruption like Ctrl-C: what was answered is kept, the rest is not permitted.
    signal.signal(signal.SIGTERM, _interrupted)
    # A shell starts background jobs with SIGINT ignored, and Python keeps it so: `kill -INT` must
    # still interrupt a filter started with `&` (and one a test suite runs in the background).
    signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        return {"check": cmd_check, "filter": cmd_filter, "sync": cmd_sync, "verify": cmd_verify}[args.command](args)
    except KeyboardInterrupt:
        print("kyoka: interrupted; nothing unanswered is permitted. Run the same command again to resume.",
              file=sys.stderr)
        return EXIT_ERROR
    except (KyokaError, OSError, ValueError) as exc:
        print(f"kyoka: {exc}", file=sys.stderr)
        return EXIT_ERROR


def _interrupted(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def _client(args: argparse.Namespace, receipts: str | None = None) -> Client:
    return Client(args.url, args.key, concurrency=args.concurrency, batch_size=args.batch_size,
                  timeout=args.timeout, max_retries=args.retries, receipts_dir=receipts)


def _progress(total: int | None, disabled: bool, unit: str = "item"):
    if disabled or not sys.stderr.isatty():
        return None
    try:
        from tqdm import tqdm
    except ImportError:
        return None
    return tqdm(total=total, unit=unit, file=sys.stderr)


# --- check -----------------------------------------------------------------------------------------


def _targets(values: Iterable[str]) -> Iterator[tuple[str, dict[str, Any]]]:
    """(ref as given, API item) for every target; local files are fingerprinted here."""
    for value in values:
        if value == "-":
            yield from _targets(line.strip() for line in sys.stdin if line.strip())
        elif value.startswith("@"):
            with open(value[1:], encoding="utf-8") as handle:
                yield from _targets([line.strip() for line in handle if line.strip()])
        elif os.path.isdir(value):
            for root, dirs, files in os.walk(value):
                dirs.sort()
                for name in sorted(files):
                    path = os.path.join(root, name)
                    yield path, {"sha256": fingerprints.sha256_file(path)}
        elif os.path.isfile(value):
            yield value, {"sha256": fingerprints.sha256_file(value)}
        else:
            yield value, item_for(value)


def _decision_writer(path: str | None):
    if not path:
        return None, None
    handle = open(path, "w", newline="", encoding="utf-8")  # noqa: SIM115
    if path.lower().endswith(".csv"):
        writer = csv.DictWriter(handle, fieldnames=["ref", "checked", "decision", "permitted", "reason", "proof",
                                                    "index", "phash", "similar"], extrasaction="ignore")
        writer.writeheader()
        return handle, lambda row: writer.writerow({**row, "checked": json.dumps(row["checked"]),
                                                    "similar": json.dumps(row["similar"]) if row.get("similar")
                                                    else ""})
    return handle, lambda row: handle.write(json.dumps(row, ensure_ascii=False) + "\n")


def _similar_items(targets: list[tuple[str, dict[str, Any]]], wanted: bool) -> list[tuple[int, str]]:
    """(target position, pHash) for every local image, when the images extra is installed."""
    if not wanted or not fingerprints.phash_available():
        return []
    found = []
    for position, (ref, item) in enumerate(targets):
        if "sha256" in item and os.path.isfile(ref):
            value = fingerprints.phash_file(ref)
            if value is not None:
                found.append((position, value))
    return found


def cmd_check(args: argparse.Namespace) -> int:
    targets = list(_targets(args.targets))
    # A local image is decided by its SHA-256; its pHash (the registry's pipeline) only finds
    # similar works, which never permit but tell whom to ask. Those items ride along at the end.
    similar = _similar_items(targets, not args.no_similar)
    items = [item for _, item in targets] + [{"phash": value} for _, value in similar]
    refs = [ref for ref, _ in targets] + [f"{targets[position][0]}#phash" for position, _ in similar]
    decisions_all: list[Decision] = []
    counts = {"permitted": 0, "not": 0}
    errors: list[str] = []
    bar = _progress(len(items), args.no_progress)
    try:
        with _client(args, args.receipts) as client:
            if args.receipts:
                _save_jwks(client, Path(args.receipts))
            for decisions, error in client.check_batches(
                items, refs=refs, purpose=args.purpose, territory=args.territory, context=args.context,
            ):
                if error:
                    errors.append(error)
                    print(f"kyoka: {error}", file=sys.stderr)
                decisions_all.extend(decisions)
                if bar:
                    bar.update(len(decisions))
    finally:
        if bar:
            bar.close()
    answers, near = decisions_all[:len(targets)], decisions_all[len(targets):]
    for (position, value), found in zip(similar, near, strict=True):
        answers[position].similar = found.similar or []
        answers[position].phash = value
    handle, write = _decision_writer(args.out)
    try:
        for decision in answers:
            counts["permitted" if decision.permitted else "not"] += 1
            if write:
                write(decision.as_row())
            else:
                print(f"{decision.decision:13} {decision.ref}")
    finally:
        if handle:
            handle.close()
    print(f"kyoka: {counts['permitted']} permitted, {counts['not']} not permitted"
          + (f", {len(errors)} failed batch(es)" if errors else ""), file=sys.stderr)
    if errors:
        return EXIT_ERROR
    return EXIT_PERMITTED if counts["not"] == 0 and counts["permitted"] else EXIT_NOT_PERMITTED


def _save_jwks(client: Client, directory: Path) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "jwks.json").write_text(json.dumps(client.jwks()))


# --- filter ----------------------------------------------------------------------------------------


def _kind_of(args: argparse.Namespace) -> str | None:
    if args.kind:
        return args.kind
    return args.column if args.column in COLUMNS else None


def _item(kind: str | None, value: Any) -> dict[str, Any]:
    if value is None:
        return {"url": ""}
    return {kind: str(value).strip()} if kind else item_for(str(value))


def cmd_filter(args: argparse.Namespace) -> int:
    fmt = format_of(args.dataset)
    out_format = format_of(args.out)
    fields, rows = read_rows(args.dataset, fmt)
    if fields is not None and args.column not in fields:
        raise ValueError(f"{args.dataset} has no column {args.column!r} (it has: {', '.join(fields)})")
    out_fields = (fields + list(DECISION_COLUMNS)) if fields is not None and args.decisions else fields
    kind = _kind_of(args)
    receipts = Path(args.receipts or f"{args.out}.receipts")
    if args.offline:
        return _filter_offline(args, rows, out_fields, out_format, kind, receipts)
    return _filter_online(args, fmt, out_fields, out_format, kind, receipts)


def _emit(writer: RowWriter, row: dict[str, Any], decision: Decision, args: argparse.Namespace) -> bool:
    if not (decision.permitted or args.all):
        return False
    if args.decisions:
        row = {**row, "kyoka_decision": decision.decision, "kyoka_reason": decision.reason or "",
               "kyoka_proof": decision.proof or ""}
    writer.write(row)
    return decision.permitted


def _filter_offline(args, rows, out_fields, out_format, kind, receipts: Path) -> int:
    from kyoka.snapshot import Snapshot

    snapshot = Snapshot.load(purpose=args.purpose, territory=args.territory, context=args.context,
                             directory=args.snapshot_dir)
    receipts.mkdir(parents=True, exist_ok=True)
    for suffix in (".json", ".jws"):  # the proof of every permitted row, beside the output
        source = snapshot.folder / f"{snapshot.info.snapshot_id}{suffix}"
        (receipts / source.name).write_bytes(source.read_bytes())
    (receipts / "jwks.json").write_bytes((snapshot.folder / "jwks.json").read_bytes())
    match = snapshot.matcher(kind)
    proof = snapshot.info.snapshot_id
    fmt = format_of(args.dataset)
    if fmt in ("csv", "tsv") and out_format == fmt:
        kept, total = _filter_offline_delimited(args, fmt, match, proof)
    else:
        writer = RowWriter(args.out, out_format, out_fields)
        column, kept, total = args.column, 0, 0
        try:
            for row in rows:
                total += 1
                grants = match(row.get(column))
                decision = Decision(ref=None, checked={}, decision="permitted" if grants else "not_permitted",
                                    permitted=bool(grants), reason=None if grants else "not_in_snapshot", proof=proof)
                kept += _emit(writer, row, decision, args)
            writer.commit()
        except BaseException:
            writer.abort()
            raise
    print(f"kyoka: {kept} of {total} rows permitted (offline, snapshot {proof}, "
          f"valid until {snapshot.info.valid_until})", file=sys.stderr)
    return EXIT_PERMITTED if kept == total and total else EXIT_NOT_PERMITTED


def _filter_offline_delimited(args, fmt: str, match, proof: str) -> tuple[int, int]:
    """CSV/TSV to the same format, row lists straight through: the loop a billion rows go through."""
    delimiter = "\t" if fmt == "tsv" else ","
    temporary = Path(f"{args.out}.partial")
    kept = total = 0
    try:
        with open(args.dataset, newline="", encoding="utf-8-sig") as source, \
                open(temporary, "w", newline="", encoding="utf-8") as target:
            reader = csv.reader(source, delimiter=delimiter)
            writer = csv.writer(target, delimiter=delimiter)
            header = next(reader, None) or []
            column = header.index(args.column)
            writer.writerow(header + list(DECISION_COLUMNS) if args.decisions else header)
            write, keep_all, with_decisions = writer.writerow, args.all, args.decisions
            for row in reader:
                total += 1
                grants = match(row[column]) if column < len(row) else None
                if grants:
                    kept += 1
                    write([*row, "permitted", "", proof] if with_decisions else row)
                elif keep_all:
                    write([*row, "not_permitted", "not_in_snapshot", proof] if with_decisions else row)
        os.replace(temporary, args.out)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    return kept, total


def _progress_file(out: str) -> Path:
    return Path(f"{out}.kyoka-progress.jsonl")


def _answered(path: Path) -> list[list[Any]]:
    """The decisions of earlier runs, row by row ([decision, permitted, reason, proof])."""
    answered: list[list[Any]] = []
    if not path.exists():
        return answered
    with open(path, encoding="utf-8") as handle:
        for line in handle:
            try:
                record = json.loads(line)
            except ValueError:
                break  # a torn last line from an interruption: that batch is asked again
            if record.get("start") != len(answered):
                break
            answered.extend(record["rows"])
    return answered


def _filter_online(args, fmt, out_fields, out_format, kind, receipts: Path) -> int:
    progress_path = _progress_file(args.out)
    answered = _answered(progress_path)
    # Rewrite the progress file to its consistent prefix, then append to it batch by batch.
    with open(progress_path, "w", encoding="utf-8") as handle:
        for start in range(0, len(answered), 10_000):
            handle.write(json.dumps({"start": start, "rows": answered[start:start + 10_000]}) + "\n")
    resumed = len(answered)
    if resumed:
        print(f"kyoka: resuming after {resumed} rows already answered", file=sys.stderr)
    error: str | None = None
    _, rows = read_rows(args.dataset, fmt)
    values = (_item(kind, row.get(args.column)) for position, row in enumerate(rows) if position >= resumed)
    bar = _progress(None, args.no_progress, unit="row")
    with _client(args, str(receipts)) as client, open(progress_path, "a", encoding="utf-8") as progress:
        _save_jwks(client, receipts)
        for decisions, batch_error in client.check_batches(
            values, purpose=args.purpose, territory=args.territory, context=args.context,
            refs=_counter(resumed),
        ):
            if batch_error:
                error = batch_error
                print(f"kyoka: {batch_error}", file=sys.stderr)
                break  # everything from here on is unanswered: not permitted, asked again next run
            rows_done = [[d.decision, d.permitted, d.reason, d.proof] for d in decisions]
            progress.write(json.dumps({"start": len(answered), "rows": rows_done}) + "\n")
            progress.flush()
            os.fsync(progress.fileno())
            answered.extend(rows_done)
            if bar:
                bar.update(len(decisions))
    if bar:
        bar.close()
    kept, total = _write_filtered(args, fmt, out_fields, out_format, answered)
    print(f"kyoka: {kept} of {total} rows permitted" + (f"; {total - len(answered)} unanswered" if error else ""),
          file=sys.stderr)
    if error:
        return EXIT_ERROR
    progress_path.unlink(missing_ok=True)
    return EXIT_PERMITTED if kept == total and total else EXIT_NOT_PERMITTED


def _counter(start: int) -> Iterator[str]:
    position = start
    while True:
        yield f"row-{position}"
        position += 1


def _write_filtered(args, fmt, out_fields, out_format, answered: list[list[Any]]) -> tuple[int, int]:
    _, rows = read_rows(args.dataset, fmt)
    writer = RowWriter(args.out, out_format, out_fields)
    kept = total = 0
    try:
        for position, row in enumerate(rows):
            total += 1
            if position < len(answered):
                decision, permitted, reason, proof = answered[position]
                verdict = Decision(ref=None, checked={}, decision=decision, permitted=permitted is True,
                                   reason=reason, proof=proof)
            else:
                verdict = Decision(ref=None, checked={}, decision="error", permitted=False, reason="no_answer")
            kept += _emit(writer, row, verdict, args)
        writer.commit()
    except BaseException:
        writer.abort()
        raise
    return kept, total


# --- sync ------------------------------------------------------------------------------------------


def cmd_sync(args: argparse.Namespace) -> int:
    from kyoka.snapshot import Snapshot

    with _client(args) as client:
        snapshot, kind = Snapshot.sync(client, purpose=args.purpose, territory=args.territory,
                                       context=args.context, directory=args.snapshot_dir)
    info = snapshot.info
    print(f"kyoka: {kind} snapshot {info.snapshot_id}: {info.key_count} permitted keys for {info.purpose}, "
          f"issued {info.issued_at}, valid until {info.valid_until}; in {snapshot.folder}")
    return EXIT_PERMITTED


# --- verify ----------------------------------------------------------------------------------------


def _receipt_files(values: Iterable[str]) -> Iterator[Path]:
    for value in values:
        path = Path(value)
        if path.is_dir():
            yield from sorted(p for p in path.glob("*.json") if p.with_suffix(".jws").exists())
        else:
            yield path


def _decision_rows(paths: list[str]) -> dict[str, list[dict[str, Any]]]:
    by_proof: dict[str, list[dict[str, Any]]] = {}
    for path in paths:
        with open(path, newline="", encoding="utf-8") as handle:
            if path.lower().endswith(".csv"):
                rows = [{**r, "checked": json.loads(r["checked"] or "{}"), "permitted": r["permitted"] == "True",
                         "index": int(r["index"]) if r.get("index") not in (None, "") else None}
                        for r in csv.DictReader(handle)]
            else:
                rows = [json.loads(line) for line in handle if line.strip()]
        for row in rows:
            by_proof.setdefault(str(row.get("proof")), []).append(row)
    return by_proof


def cmd_verify(args: argparse.Namespace) -> int:
    decisions = _decision_rows(args.decisions)
    shared_jwks = json.loads(Path(args.jwks).read_text()) if args.jwks else None
    failures = 0
    for path in _receipt_files(args.receipts):
        body = path.read_bytes()
        signature = path.with_suffix(".jws").read_text().strip()
        jwks_path = path.parent / "jwks.json"
        try:
            jwks = shared_jwks or json.loads(jwks_path.read_text())
            kid = verify(body, signature, jwks)
            document = json.loads(body)
        except (KyokaError, OSError, ValueError) as exc:
            failures += 1
            print(f"{path.name}: INVALID — {exc}")
            continue
        if document.get("type") == "kyoka.licence_snapshot":
            print(f"{path.name}: valid (key {kid[:12]}…) licence snapshot {document['snapshot_id']} for "
                  f"{document['requester']}, {document['purpose']}, issued {document['issued_at']}, "
                  f"valid until {document['valid_until']}, {document['key_count']} keys")
            continue
        summary = ", ".join(f"{k} {v}" for k, v in document.get("summary", {}).items())
        line = (f"{path.name}: valid (key {kid[:12]}…) check {document.get('check_id')} by "
                f"{document.get('requester')} at {document.get('checked_at')} for {document.get('purpose')}: {summary}")
        rows = decisions.get(str(document.get("check_id")), [])
        if args.decisions:
            results = document.get("results", [])
            differ = 0
            for row in rows:
                index = row.get("index")
                result = results[index] if isinstance(index, int) and 0 <= index < len(results) else None
                if result is None or result.get("decision") != row.get("decision") or bool(
                    result.get("permitted")) != bool(row.get("permitted")) or (
                    row.get("checked") and result.get("checked") and row["checked"] != result["checked"]):
                    differ += 1
            line += f"; decisions: {len(rows) - differ} match, {differ} differ"
            if differ or not rows:
                failures += 1
                line += "" if rows else " (no decision rows name this receipt)"
        print(line)
    return EXIT_PERMITTED if failures == 0 else EXIT_NOT_PERMITTED


if __name__ == "__main__":
    sys.exit(main())
