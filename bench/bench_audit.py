"""Audit chain benchmark: `verifyaudit` over 100,000 events (issue 5: "in seconds").

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/kyoka_bench_audit .venv/bin/python bench/bench_audit.py

Drops and recreates its own database (the name must contain "bench"), migrates it, appends
N events fast (the chain computed in Python exactly as audit_append computes it, then bulk
inserted), times a stretch of ordinary audit_append calls on top, and times audit_verify()
over the whole chain. Prints one table.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

ENV = {
    "DATABASE_URL": os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/kyoka_bench_audit"),
    "SECRET_KEY": "bench-secret",
    "DEBUG": "false",
    "ALLOWED_HOSTS": "127.0.0.1,localhost",
    "SECURE_SSL_REDIRECT": "false",
    "LOG_LEVEL": "WARNING",
    "DJANGO_SETTINGS_MODULE": "portal.settings",
}
os.environ.update(ENV)
os.environ.pop("REDIS_URL", None)

ACTIONS = [
    (
        "work.register",
        "work",
        {
            "external_ref": "CEL-0001",
            "title": "Opening cut 1",
            "parent": None,
            "urls": ["https://cdn.studio.example/cel/0001.png"],
            "identifiers": [],
        },
    ),
    ("work.file_add", "work", {"sha256": "ab" * 32, "media_type": "image/png", "size": 482113}),
    (
        "grant.issue",
        "grant",
        {
            "scope": "work",
            "work": "9b1f…",
            "licensee": "acme-ai",
            "purposes": ["train-genai"],
            "territories": ["JP", "US"],
            "contexts": ["research"],
            "valid_from": "2026-01-01T00:00:00+00:00",
            "valid_until": None,
        },
    ),
    ("grant.revoke", "grant", {"reason": "Licence ended."}),
    (
        "dispute.open",
        "dispute",
        {
            "kind": "ownership",
            "automatic": True,
            "matches": [{"method": "phash", "value": "c3a1f0e07c3c1e0f", "distance": 3}],
        },
    ),
    ("api_key.create", "api_key", {"prefix": "1a2b3c4d", "scopes": ["checks"]}),
]


def recreate_database() -> None:
    import psycopg

    name = ENV["DATABASE_URL"].rsplit("/", 1)[1]
    if "bench" not in name:
        sys.exit(f"Refusing to drop database {name!r}: its name must contain 'bench'.")
    base = ENV["DATABASE_URL"].rsplit("/", 1)[0] + "/postgres"
    with psycopg.connect(base, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')


def append_fast(count: int, batch: int = 10_000) -> float:
    """Build `count` chained events in Python and bulk insert them; returns the seconds taken."""
    from django.db import transaction

    from registry.models import AuditChainHead, AuditEvent
    from registry.services.audit import GENESIS_HASH, audit_event_hash

    started = time.perf_counter()
    base = datetime(2026, 1, 1, tzinfo=UTC)
    previous = GENESIS_HASH
    rows: list[AuditEvent] = []
    with transaction.atomic():
        head = AuditChainHead.objects.select_for_update().get(pk=1)
        assert head.seq == 0, "the bench database must start empty"
        for seq in range(1, count + 1):
            action, object_type, data = ACTIONS[seq % len(ACTIONS)]
            created_at = base + timedelta(milliseconds=seq * 37)
            fields = {
                "seq": seq,
                "created_at": created_at.isoformat(),
                "actor": f"user:{seq % 97}:member{seq % 97}@studio.example",
                "organization": f"studio-{seq % 20}",
                "action": action,
                "object_type": object_type,
                "object_id": f"{seq:032x}",
                "data": data,
                "prev_hash": previous,
            }
            digest = audit_event_hash(**fields)
            rows.append(AuditEvent(**{**fields, "created_at": created_at}, hash=digest))
            previous = digest
            if len(rows) == batch:
                AuditEvent.objects.bulk_create(rows)
                rows = []
        AuditEvent.objects.bulk_create(rows)
        AuditChainHead.objects.filter(pk=1).update(seq=count, hash=previous)
    return time.perf_counter() - started


def append_one_by_one(count: int) -> float:
    from django.db import transaction

    from registry.access import Actor
    from registry.services.audit import audit_append

    actor = Actor.for_operator("bench")
    started = time.perf_counter()
    for n in range(count):
        with transaction.atomic():
            audit_append(actor=actor, action="bench.append", object_type="bench", object_id=str(n), data={"n": n})
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--singles", type=int, default=1_000, help="audit_append calls timed one by one")
    parser.add_argument("--repeat", type=int, default=3, help="audit_verify runs (the median is reported)")
    args = parser.parse_args()

    recreate_database()
    import django

    django.setup()
    from django.core.management import call_command

    from registry.models import AuditEvent
    from registry.services.audit import audit_verify

    call_command("migrate", verbosity=0)
    bulk_seconds = append_fast(args.events)
    single_seconds = append_one_by_one(args.singles)
    total = AuditEvent.objects.count()

    runs = []
    for _ in range(args.repeat):
        started = time.perf_counter()
        verification = audit_verify()
        runs.append(time.perf_counter() - started)
        assert verification.ok and verification.events_checked == total, verification
    runs.sort()
    median = runs[len(runs) // 2]

    rows = [
        (
            "bulk append (chain built in Python)",
            f"{args.events:,}",
            f"{bulk_seconds:.2f} s",
            f"{args.events / bulk_seconds:,.0f} events/s",
        ),
        (
            "audit_append, one transaction each",
            f"{args.singles:,}",
            f"{single_seconds:.2f} s",
            f"{single_seconds / args.singles * 1000:.2f} ms/event",
        ),
        (f"audit_verify (median of {args.repeat})", f"{total:,}", f"{median:.2f} s", f"{total / median:,.0f} events/s"),
    ]
    widths = [max(len(str(row[i])) for row in [("step", "events", "time", "rate"), *rows]) for i in range(4)]
    header = ("step", "events", "time", "rate")
    print("  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)))
    print("  ".join("-" * w for w in widths))
    for row in rows:
        print("  ".join(str(cell).ljust(w) for cell, w in zip(row, widths, strict=True)))
    print(f"\nverify runs: {', '.join(f'{r:.2f} s' for r in runs)}; chain ok")


if __name__ == "__main__":
    main()
