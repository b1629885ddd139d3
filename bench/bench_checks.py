"""Check API benchmark against 1,000,000 registered works (DESIGN.md "Performance budget").

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/kyoka_bench .venv/bin/python bench/bench_checks.py

Seeds the works once with COPY (re-run with --reseed), starts gunicorn on loopback with auth,
logging and signing on, and prints one table: 1,000-item checks at 1 and 4 concurrent clients
beside the bare database lookup of the same items measured in the same run, one 10,000-item
request, and 100 phash items within distance 8.
"""

from __future__ import annotations

import argparse
import hashlib
import http.client
import json
import os
import random
import socket
import statistics
import subprocess
import sys
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

ENV = {
    "DATABASE_URL": os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/kyoka_bench"),
    "REDIS_URL": os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/10"),
    "SECRET_KEY": "kyoka-bench-" + "Jq7vR2mW9xT4pL8nB3cK6hF1dS5gZ0aY" * 2,  # production settings want 50+ characters
    "DEBUG": "false",
    "ALLOWED_HOSTS": "127.0.0.1,localhost",
    "SECURE_SSL_REDIRECT": "false",
    "LOG_LEVEL": "WARNING",
    "KYOKA_SIGNING_KEY_DIR": str(ROOT / "var" / "bench-keys"),
    "DJANGO_SETTINGS_MODULE": "portal.settings",
}
os.environ.update(ENV)

STUDIOS = 20
REGISTERED_SHARE = 0.05


def ensure_database() -> None:
    import psycopg

    name = ENV["DATABASE_URL"].rsplit("/", 1)[1]
    base = ENV["DATABASE_URL"].rsplit("/", 1)[0] + "/postgres"
    with psycopg.connect(base, autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone():
            conn.execute(f'CREATE DATABASE "{name}"')


def sha_of(i: int) -> str:
    return hashlib.sha256(f"kyoka-bench-work-{i}".encode()).hexdigest()


def url_of(i: int) -> str:
    return f"https://cdn{i % 50}.studio.example/cel/{i:07d}.png"


def phash_of(i: int) -> int:
    return random.Random(i * 7919 + 1).getrandbits(64)


def seed(works: int, reseed: bool) -> None:
    from django.contrib.auth import get_user_model
    from django.core.management import call_command
    from django.db import connection

    from registry.access import Actor
    from registry.matching.fingerprints import phash_bands
    from registry.models import ApiKey, Organization, Work
    from registry.services.organizations import do_organization_create, do_organization_verify
    from registry.services.references import url_key

    call_command("migrate", verbosity=0)
    if Work.objects.count() >= works and not reseed:
        return
    print(f"seeding {works:,} works with COPY …", flush=True)
    started = time.perf_counter()
    with connection.cursor() as cursor:
        cursor.execute(
            "TRUNCATE registry_workaccess, registry_check, registry_perceptualhash, registry_contentfile, "
            "registry_workurl, registry_workidentifier, registry_grant, registry_disputework, registry_disputeevent, "
            "registry_dispute, registry_work, registry_apikey, registry_membership, registry_organization CASCADE"
        )
    system = Actor.for_operator("bench")
    User = get_user_model()

    def org(name: str, kind: str, verified: bool) -> Organization:
        owner, _ = User.objects.get_or_create(username=f"{name}@bench.example")
        created = do_organization_create(acting=system, name=name, kind=kind, owner=owner)
        return do_organization_verify(acting=system, organization=created) if verified else created

    studios = [org(f"Studio {n}", "rightsholder", verified=n != STUDIOS - 1) for n in range(STUDIOS)]
    developer = org("Bench AI", "ai_developer", verified=True)
    other_developer = org("Other AI", "ai_developer", verified=True)
    now = datetime.now(UTC)

    work_ids = [uuid.uuid4() for _ in range(works)]
    raw = connection.connection
    with raw.cursor() as cursor:
        with cursor.copy(
            "COPY registry_work (id, owner_id, external_ref, title, kind, lineage, status, description, creators, "
            "created_at, updated_at) FROM STDIN"
        ) as copy:
            for i, work_id in enumerate(work_ids):
                copy.write_row((work_id, studios[i % STUDIOS].pk, f"B-{i}", f"Bench work {i}", "image", "/",
                                "active", "", "", now, now))
        with cursor.copy("COPY registry_contentfile (work_id, sha256, size, media_type, file, original_name, "
                         "created_at) FROM STDIN") as copy:
            for i, work_id in enumerate(work_ids):
                copy.write_row((work_id, sha_of(i), 1000 + i, "image/png", "", "", now))
        cursor.execute("SELECT id, work_id FROM registry_contentfile")
        file_ids = dict((w, f) for f, w in cursor.fetchall())
        with cursor.copy("COPY registry_perceptualhash (content_file_id, work_id, source, value, band0, band1, band2) "
                         "FROM STDIN") as copy:
            for i, work_id in enumerate(work_ids):
                value = phash_of(i)
                signed = value - (1 << 64) if value >= 1 << 63 else value
                copy.write_row((file_ids[work_id], work_id, "image", signed, *phash_bands(signed)))
        with cursor.copy("COPY registry_workurl (work_id, url, is_pattern, host, url_hash, created_at) "
                         "FROM STDIN") as copy:
            for i, work_id in enumerate(work_ids):
                url = url_of(i)
                copy.write_row((work_id, url, False, url.split("/")[2], url_key(url), now))
        # Grants of every shape: catalog grants from a few studios, work grants on 1% of works with
        # purposes, territories, contexts, expiry and revocation varied; one unverified grantor.
        shapes = [
            ({"purposes": ["train-ai"]}, None),
            ({"purposes": ["train-genai"], "territories": ["JP"]}, None),
            ({"purposes": ["search"], "contexts": ["research"]}, None),
            ({"purposes": ["all"]}, "revoked"),
            ({"purposes": ["tdm"]}, "expired"),
            ({"purposes": ["all"], "licensee": "other"}, None),
            ({"purposes": ["all"], "licensee": "any"}, None),
        ]
        with cursor.copy("COPY registry_grant (id, grantor_id, scope, work_id, licensee_id, purposes, territories, "
                         "contexts, valid_from, valid_until, attribution, licence_url, compensation, created_at, "
                         "revoked_at, revocation_reason) FROM STDIN") as copy:
            for n in range(0, STUDIOS, 4):
                copy.write_row((uuid.uuid4(), studios[n].pk, "catalog", None, developer.pk, json.dumps(["train-ai"]),
                                "[]", "[]", now - timedelta(days=1), None, "", "", "", now, None, ""))
            for i in range(0, works, 100):
                terms, state = shapes[(i // 100) % len(shapes)]
                licensee = {"other": other_developer.pk, "any": None}.get(terms.get("licensee"), developer.pk)
                copy.write_row((
                    uuid.uuid4(), studios[i % STUDIOS].pk, "work", work_ids[i], licensee,
                    json.dumps(terms["purposes"]), json.dumps(terms.get("territories", [])),
                    json.dumps(terms.get("contexts", [])), now - timedelta(days=30),
                    now - timedelta(days=1) if state == "expired" else None, "© bench", "", "", now,
                    now - timedelta(days=2) if state == "revoked" else None, "",
                ))
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE")
    ApiKey.objects.all().delete()
    print(f"seeded in {time.perf_counter() - started:.0f}s", flush=True)
    del developer


def api_key() -> str:
    from registry.access import Actor
    from registry.models import Organization
    from registry.services.api_keys import do_api_key_create

    developer = Organization.objects.get(name="Bench AI")
    key, raw = do_api_key_create(acting=Actor.for_operator("bench"), organization=developer, scopes=["checks"])
    key.quota_per_minute = 10_000_000
    key.save(update_fields=["quota_per_minute"])
    return raw


def mixed_items(n: int, works: int, rng: random.Random) -> list[dict]:
    """95% registered by no one, 5% registered; 70% sha256 and 30% URL items."""
    items = []
    for k in range(n):
        registered = rng.random() < REGISTERED_SHARE
        i = rng.randrange(works)
        if rng.random() < 0.7:
            items.append({"ref": str(k), "sha256": sha_of(i) if registered else f"{rng.getrandbits(256):064x}"})
        else:
            items.append({"ref": str(k), "url": url_of(i) if registered else f"https://web.example/{rng.getrandbits(64):x}.jpg"})
    return items


def phash_items(n: int, works: int, rng: random.Random) -> list[dict]:
    """Near variants (≤ 8 bits flipped) of registered hashes, mixed with random ones."""
    items = []
    for _ in range(n):
        if rng.random() < 0.5:
            value = phash_of(rng.randrange(works))
            for bit in rng.sample(range(64), rng.randrange(9)):
                value ^= 1 << bit
        else:
            value = rng.getrandbits(64)
        items.append({"phash": f"{value:016x}", "max_distance": 8})
    return items


def bare_lookup(dsn: str, batches: list[list[dict]], concurrency: int) -> tuple[list[float], float]:
    """The same items looked up directly in PostgreSQL: sha256 and URL hash, one query each per batch."""
    import psycopg

    from registry.services.references import url_key

    prepared = [([i["sha256"] for i in b if "sha256" in i], [url_key(i["url"]) for i in b if "url" in i])
                for b in batches]
    local = threading.local()

    def run(batch):
        if not hasattr(local, "conn"):
            local.conn = psycopg.connect(dsn, autocommit=True)
        digests, url_hashes = batch
        start = time.perf_counter()
        local.conn.execute("SELECT sha256, work_id FROM registry_contentfile WHERE sha256 = ANY(%s)",
                           [digests]).fetchall()
        local.conn.execute("SELECT url_hash, work_id FROM registry_workurl WHERE url_hash = ANY(%s)",
                           [url_hashes]).fetchall()
        return time.perf_counter() - start

    return _timed(run, prepared, concurrency)


def _timed(fn, jobs, concurrency) -> tuple[list[float], float]:
    for job in jobs[:3]:
        fn(job)
    started = time.perf_counter()
    with ThreadPoolExecutor(concurrency) as pool:
        latencies = list(pool.map(fn, jobs))
    return latencies, time.perf_counter() - started


def http_checks(port: int, key: str, bodies: list[bytes], concurrency: int) -> tuple[list[float], float]:
    local = threading.local()

    def run(body: bytes) -> float:
        if not hasattr(local, "conn"):
            local.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        start = time.perf_counter()
        local.conn.request("POST", "/api/v1/checks", body, {
            "Authorization": f"Bearer {key}", "Content-Type": "application/json"})
        response = local.conn.getresponse()
        payload = response.read()
        elapsed = time.perf_counter() - start
        if response.status != 200 or not response.getheader("Receipt-Signature"):
            raise RuntimeError(f"check failed: {response.status} {payload[:300]!r}")
        return elapsed

    return _timed(run, bodies, concurrency)


def start_server(workers: int) -> tuple[subprocess.Popen, int]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = subprocess.Popen(
        [str(ROOT / ".venv/bin/gunicorn"), "portal.wsgi:application", "--bind", f"127.0.0.1:{port}",
         "--workers", str(workers), "--log-level", "warning", "--timeout", "120"],
        cwd=ROOT, env={**os.environ, **ENV},
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            conn.request("GET", "/healthz")
            if conn.getresponse().status == 200:
                return server, port
        except OSError:
            time.sleep(0.3)
    server.kill()
    raise RuntimeError("gunicorn did not start")


def row(label: str, latencies: list[float], wall: float, items_per_request: int, budget: str = "") -> list[str]:
    ms = sorted(x * 1000 for x in latencies)
    p99 = ms[min(len(ms) - 1, int(len(ms) * 0.99))]
    rate = items_per_request * len(latencies) / wall
    return [label, f"{len(latencies)}", f"{statistics.median(ms):.1f}", f"{p99:.1f}", f"{rate:,.0f}", budget]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--works", type=int, default=1_000_000)
    parser.add_argument("--reseed", action="store_true")
    parser.add_argument("--requests", type=int, default=60)
    parser.add_argument("--gunicorn-workers", type=int, default=4)
    args = parser.parse_args()

    ensure_database()
    import django

    django.setup()
    seed(args.works, args.reseed)
    key = api_key()
    rng = random.Random(2026)
    batches = [mixed_items(1000, args.works, rng) for _ in range(args.requests)]
    bodies = [json.dumps({"purpose": "train-genai", "territory": "JP", "items": b}).encode() for b in batches]
    big = json.dumps({"purpose": "train-ai", "items": mixed_items(10_000, args.works, rng)}).encode()
    near = [json.dumps({"purpose": "train-ai", "items": phash_items(100, args.works, rng)}).encode()
            for _ in range(20)]

    from django.conf import settings

    db = settings.DATABASES["default"]
    dsn = f"host={db['HOST']} port={db['PORT'] or 5432} dbname={db['NAME']} user={db['USER']}"
    server, port = start_server(args.gunicorn_workers)
    try:
        rows = []
        results = {}
        for concurrency in (1, 4):
            bare = bare_lookup(dsn, batches, concurrency)
            checked = http_checks(port, key, bodies, concurrency)
            results[concurrency] = (bare, checked)
            rows.append(row(f"bare DB lookup, 1,000 items, {concurrency} client(s)", *bare, 1000))
            rows.append(row(f"POST /checks, 1,000 items, {concurrency} client(s)", *checked, 1000,
                            "median ≤ 25 ms" if concurrency == 1 else ""))
        big_result = http_checks(port, key, [big] * 5, 1)
        rows.append(row("POST /checks, 10,000 items, 1 client", *big_result, 10_000, "≤ 1,000 ms"))
        near_result = http_checks(port, key, near, 1)
        rows.append(row("POST /checks, 100 phash items (d ≤ 8)", *near_result, 100, "≤ 50 ms"))
    finally:
        server.terminate()
        server.wait(timeout=20)

    from registry.models import PerceptualHash, Work

    print(f"\nKyoka check benchmark — {Work.objects.count():,} works, {PerceptualHash.objects.count():,} phashes, "
          f"gunicorn {args.gunicorn_workers} sync workers, {os.cpu_count()} cores, PostgreSQL")
    header = ["what", "requests", "median ms", "p99 ms", "items/s", "budget"]
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    print(" | ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)))
    print("-+-".join("-" * w for w in widths))
    for r in rows:
        print(" | ".join(str(c).ljust(w) for c, w in zip(r, widths, strict=True)))
    for concurrency, (bare, checked) in results.items():
        ratio = (len(checked[0]) / checked[1]) / (len(bare[0]) / bare[1])
        print(f"items/s ratio check ÷ bare lookup at {concurrency} client(s): {ratio:.2f} (budget ≥ 0.50)")


if __name__ == "__main__":
    main()
