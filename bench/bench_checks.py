"""Check API benchmark against 1,000,000 registered works (DESIGN.md "Performance budget", issue 14).

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/kyoka_bench .venv/bin/python bench/bench_checks.py

Seeds the works once with COPY into its own database (re-run with --reseed; a seed made by an
older version of this script is redone by itself), starts gunicorn on loopback with auth,
logging and signing on (gunicorn.conf.py warms each worker), and prints one table, each budget
✓ or ✗: 1,000-item checks at 1 and 4 concurrent clients beside the bare database lookup of the
same items measured in the same run, one 10,000-item request, and 100 phash items within
distance 8; then memory per worker (RSS and PSS: the near-match index is shared, so it counts
once in the total PSS), the key filter's false-positive rate and bytes per key (projected to
10,000,000 works), and the near-match index's size.

Perceptual hashes are hashes of generated images — photograph-like (gradients, waves, blobs,
noise) and flat-colour art (a few shapes in flat tones, like cels and logos) — put through the
server's own pipeline (`image_phash`), not uniform random bits: real hashes cluster, flat art
most of all, and clusters are what make near-match search costly. The images are drawn at
32x32 greyscale, the size the pipeline reduces every image to; the million hashes are computed
once (two processes, a few minutes) and kept under var/.
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
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

ENV = {
    "DATABASE_URL": os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/kyoka_bench"),
    # Far beyond what the benchmark sends, so that quotas never answer 429 in the measured window.
    "KYOKA_QUOTA_UNITS_PER_MINUTE": "1000000000",
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
# Bumped whenever the seeded data changes shape: an older seed is then redone.
SEED_VERSION = 2
IMAGE_SIZE = 32


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


def bench_image(seed: int):
    """A 32x32 greyscale picture: even seeds photograph-like, odd seeds flat-colour art."""
    import numpy as np

    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:IMAGE_SIZE, 0:IMAGE_SIZE] / IMAGE_SIZE
    if seed % 2 == 0:
        picture = rng.uniform(40, 200) + rng.uniform(-80, 80) * (rng.uniform(-1, 1) * x + rng.uniform(-1, 1) * y)
        for _ in range(int(rng.integers(1, 4))):
            frequency, angle, phase = rng.uniform(0.5, 4), rng.uniform(0, np.pi), rng.uniform(0, 2 * np.pi)
            picture += rng.uniform(5, 50) * np.sin(2 * np.pi * frequency * (np.cos(angle) * x + np.sin(angle) * y)
                                                   + phase)
        for _ in range(int(rng.integers(0, 4))):
            cx, cy, width = rng.uniform(0, 1), rng.uniform(0, 1), rng.uniform(0.05, 0.4)
            picture += rng.uniform(-90, 90) * np.exp(-((x - cx) ** 2 + (y - cy) ** 2) / (2 * width**2))
        picture += rng.normal(0, rng.uniform(0, 15), picture.shape)
    else:
        picture = np.full(x.shape, rng.uniform(0, 255))
        for _ in range(int(rng.integers(1, 5))):
            cx, cy, rx, ry = rng.uniform(0, 1), rng.uniform(0, 1), rng.uniform(0.05, 0.5), rng.uniform(0.05, 0.5)
            inside = (((x - cx) / rx) ** 2 + ((y - cy) / ry) ** 2 <= 1) if rng.random() < 0.5 else (
                (abs(x - cx) <= rx) & (abs(y - cy) <= ry))
            picture[inside] = rng.uniform(0, 255)
    return np.clip(picture, 0, 255).astype(np.uint8)


def image_hash(picture) -> int:
    from PIL import Image

    from registry.matching.fingerprints import image_phash

    return image_phash(Image.fromarray(picture, "L"))


def _hash_seeds(seeds: range) -> list[int]:
    return [image_hash(bench_image(seed)) for seed in seeds]


def real_image_hashes(count: int) -> list[int]:
    """The hashes of `count` generated images (seeds 0..count-1), computed once and cached under var/."""
    import numpy as np

    cache = ROOT / "var" / f"bench-phashes-v{SEED_VERSION}-{count}.npy"
    if cache.exists():
        return np.load(cache).tolist()
    print(f"hashing {count:,} generated images with the server's pipeline …", flush=True)
    started = time.perf_counter()
    step = 20_000
    with ProcessPoolExecutor(max_workers=min(2, os.cpu_count() or 1)) as pool:
        chunks = pool.map(_hash_seeds, [range(low, min(count, low + step)) for low in range(0, count, step)])
        values = [value for chunk in chunks for value in chunk]
    cache.parent.mkdir(exist_ok=True)
    np.save(cache, np.array(values, np.int64))
    print(f"hashed in {time.perf_counter() - started:.0f}s", flush=True)
    return values


def _seed_version(connection) -> int:
    with connection.cursor() as cursor:
        cursor.execute("CREATE TABLE IF NOT EXISTS kyoka_bench_seed (version integer NOT NULL)")
        cursor.execute("SELECT max(version) FROM kyoka_bench_seed")
        return cursor.fetchone()[0] or 0


def seed(works: int, reseed: bool) -> None:
    from django.contrib.auth import get_user_model
    from django.core.management import call_command
    from django.db import connection

    from registry.access import Actor
    from registry.matching.fingerprints import phash_bands
    from registry.matching.urls import url_key
    from registry.models import ApiKey, Organization, Work
    from registry.services.organizations import do_organization_create, do_organization_verify

    call_command("migrate", verbosity=0)
    if _seed_version(connection) >= SEED_VERSION and Work.objects.count() >= works and not reseed:
        return
    hashes = real_image_hashes(works)
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
                copy.write_row((file_ids[work_id], work_id, "image", hashes[i], *phash_bands(hashes[i])))
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
        cursor.execute("DELETE FROM kyoka_bench_seed")
        cursor.execute("INSERT INTO kyoka_bench_seed (version) VALUES (%s)", [SEED_VERSION])
        cursor.execute("VACUUM ANALYZE")
    ApiKey.objects.all().delete()
    print(f"seeded in {time.perf_counter() - started:.0f}s", flush=True)
    del developer


def warm_database() -> None:
    """Read every registry table and index into the OS page cache, as a serving registry's would be.

    Without it, the first pass over a random million-row sample measures the disk, not Kyoka, and
    whichever of the bare lookup and the check runs first pays for the other. The records of
    earlier runs' checks go first: every run would otherwise start with ~30 MB more of them
    (receipts and access rows) to warm, and its numbers would depend on how often it ran before.
    """
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("TRUNCATE registry_workaccess, registry_check")
        cursor.execute("CREATE EXTENSION IF NOT EXISTS pg_prewarm")
        cursor.execute(
            "SELECT sum(pg_prewarm(c.oid, 'read')) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname = current_schema() AND c.relkind IN ('r', 'i') AND c.relname LIKE 'registry%%'"
        )


def api_key() -> str:
    from registry.access import Actor
    from registry.models import Organization
    from registry.services.api_keys import do_api_key_create, do_api_key_revoke

    developer = Organization.objects.get(name="Bench AI")
    # Each run makes its own key and retires the earlier runs' (an organisation holds at most 20).
    for earlier in developer.api_keys.filter(revoked_at__isnull=True):
        do_api_key_revoke(acting=Actor.for_operator("bench"), api_key=earlier)
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
    """Half near copies of registered images (re-exposed, grainy, a pixel off), half images nobody registered."""
    import numpy as np

    items = []
    for _ in range(n):
        if rng.random() < 0.5:
            picture = bench_image(rng.randrange(works)).astype(np.int16)
            noise = np.random.default_rng(rng.getrandbits(32)).normal(0, 3, picture.shape)
            picture = np.roll(picture + rng.randint(-12, 12) + noise, rng.choice((-1, 0, 1)), axis=rng.choice((0, 1)))
            value = image_hash(np.clip(picture, 0, 255).astype(np.uint8))
        else:
            value = image_hash(bench_image(works + 10_000_000 + rng.getrandbits(40)))
        items.append({"phash": f"{value & 0xFFFFFFFFFFFFFFFF:016x}", "max_distance": 8})
    return items


def bare_lookup(dsn: str, batches: list[list[dict]], concurrency: int) -> tuple[list[float], float]:
    """The same items looked up directly in PostgreSQL: sha256 and URL hash, one query each per batch."""
    import psycopg

    from registry.matching.urls import url_key

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


def start_server(workers: int, env: dict[str, str] | None = None) -> tuple[subprocess.Popen, int]:
    """A gunicorn on a free loopback port, answering /healthz; the load bench starts it too."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = subprocess.Popen(
        [str(ROOT / ".venv/bin/gunicorn"), "portal.wsgi:application", "--bind", f"127.0.0.1:{port}",
         "--workers", str(workers), "--log-level", "warning", "--timeout", "120"],
        cwd=ROOT, env={**os.environ, **(ENV if env is None else env)},
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


def worker_pids(server: subprocess.Popen) -> list[int]:
    children = Path(f"/proc/{server.pid}/task/{server.pid}/children").read_text().split()
    return [int(pid) for pid in children]


def wait_until_settled(server: subprocess.Popen, timeout: float = 300) -> None:
    """Until every worker has warmed (mapped the index, built its filter): their CPU time stops growing."""
    def cpu_ticks() -> int:
        total = 0
        for pid in worker_pids(server):
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])
        return total

    deadline = time.monotonic() + timeout
    before = cpu_ticks()
    while time.monotonic() < deadline:
        time.sleep(1.0)
        now = cpu_ticks()
        if now - before < 5 and len(worker_pids(server)) > 0:
            return
        before = now


def memory_mb(pid: int) -> tuple[float, float]:
    """(RSS, PSS) in MB: PSS divides shared pages among the processes mapping them."""
    values = {}
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines()[1:]:
        name, amount = line.split(":", 1)
        values[name] = int(amount.split()[0]) / 1024
    return values["Rss"], values["Pss"]


def row(label: str, latencies: list[float], wall: float, items_per_request: int, budget: str = "",
        passed: bool | None = None) -> list[str]:
    ms = sorted(x * 1000 for x in latencies)
    p99 = ms[min(len(ms) - 1, int(len(ms) * 0.99))]
    rate = items_per_request * len(latencies) / wall
    mark = "" if passed is None else ("✓" if passed else "✗")
    return [label, f"{len(latencies)}", f"{statistics.median(ms):.1f}", f"{p99:.1f}", f"{rate:,.0f}", budget, mark]


def stats_of(latencies: list[float], wall: float, items_per_request: int) -> tuple[float, float, float]:
    ms = sorted(x * 1000 for x in latencies)
    return statistics.median(ms), ms[min(len(ms) - 1, int(len(ms) * 0.99))], items_per_request * len(ms) / wall


def filter_measurements(works: int) -> dict[str, float]:
    """Build the key filter in this process as a worker does, and measure its false positives."""
    from registry.selectors.key_filter import _SOURCES, BUCKET_BITS, key_filter, registered_candidates

    index = key_filter()
    started = time.perf_counter()
    index.warm()
    built_in = time.perf_counter() - started
    rng = random.Random(7)
    trials = 200_000
    found = registered_candidates(
        sha256s=[f"{rng.getrandbits(256):064x}" for _ in range(trials)],
        urls=[(f"https://web.example/{rng.getrandbits(64):x}.jpg", "web.example") for _ in range(trials)],
    )
    stats = index.stats()
    return {"keys": stats["keys"], "bytes": stats["bytes"], "built_s": built_in,
            "fixed_bytes": len(_SOURCES) * (2**BUCKET_BITS + 1) * 4,  # the bucket tables, whatever the keys
            "false_positive_rate": (len(found.sha256s) + len(found.urls)) / (2 * trials),
            "keys_per_work": stats["keys"] / works}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--works", type=int, default=1_000_000)
    parser.add_argument("--reseed", action="store_true")
    parser.add_argument("--requests", type=int, default=60)
    parser.add_argument("--near-requests", type=int, default=40)
    parser.add_argument("--gunicorn-workers", type=int, default=4)
    args = parser.parse_args()

    ensure_database()
    import django

    django.setup()
    seed(args.works, args.reseed)
    warm_database()
    key = api_key()
    rng = random.Random(2026)
    batches = [mixed_items(1000, args.works, rng) for _ in range(args.requests)]
    bodies = [json.dumps({"purpose": "train-genai", "territory": "JP", "items": b}).encode() for b in batches]
    big = json.dumps({"purpose": "train-ai", "items": mixed_items(10_000, args.works, rng)}).encode()
    near = [json.dumps({"purpose": "train-ai", "items": phash_items(100, args.works, rng)}).encode()
            for _ in range(args.near_requests)]
    filtered = filter_measurements(args.works)

    from django.conf import settings

    db = settings.DATABASES["default"]
    dsn = f"host={db['HOST']} port={db['PORT'] or 5432} dbname={db['NAME']} user={db['USER']}"
    started = time.perf_counter()
    server, port = start_server(args.gunicorn_workers)
    wait_until_settled(server)
    warm_s = time.perf_counter() - started
    try:
        rows = []
        results = {}
        for concurrency in (1, 4):
            bare = bare_lookup(dsn, batches, concurrency)
            checked = http_checks(port, key, bodies, concurrency)
            results[concurrency] = (bare, checked)
            rows.append(row(f"bare DB lookup, 1,000 items, {concurrency} client(s)", *bare, 1000))
            median = stats_of(*checked, 1000)[0]
            rows.append(row(f"POST /checks, 1,000 items, {concurrency} client(s)", *checked, 1000,
                            "median ≤ 25 ms" if concurrency == 1 else "", median <= 25 if concurrency == 1 else None))
        big_result = http_checks(port, key, [big] * 5, 1)
        rows.append(row("POST /checks, 10,000 items, 1 client", *big_result, 10_000, "≤ 1,000 ms",
                        stats_of(*big_result, 10_000)[0] <= 1000))
        near_result = http_checks(port, key, near, 1)
        near_median, near_p99, _ = stats_of(*near_result, 100)
        rows.append(row("POST /checks, 100 phash items (d ≤ 8)", *near_result, 100, "≤ 50 ms median and p99",
                        near_median <= 50 and near_p99 <= 50))
        memory = {pid: memory_mb(pid) for pid in worker_pids(server)}
    finally:
        server.terminate()
        server.wait(timeout=20)

    from registry.models import PerceptualHash, Work
    from registry.selectors.phash_index import index_path

    hashes = PerceptualHash.objects.count()
    print(f"\nKyoka check benchmark — {Work.objects.count():,} works, {hashes:,} phashes (of generated images), "
          f"gunicorn {args.gunicorn_workers} sync workers, {os.cpu_count()} cores, PostgreSQL; "
          f"workers warm {warm_s:.1f}s after start")
    header = ["what", "requests", "median ms", "p99 ms", "items/s", "budget", ""]
    ratios = []
    for concurrency, (bare, checked) in results.items():
        ratio = (len(checked[0]) / checked[1]) / (len(bare[0]) / bare[1])
        ratios.append(["items/s ratio, check ÷ bare lookup, " f"{concurrency} client(s)", "", "", "",
                       f"{ratio:.2f}", "≥ 0.5, aim > 1", "✓" if ratio >= 0.5 else "✗"])
    table = [*rows, *ratios]
    widths = [max(len(str(r[i])) for r in [header, *table]) for i in range(len(header))]
    print(" | ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)))
    print("-+-".join("-" * w for w in widths))
    for r in table:
        print(" | ".join(str(c).ljust(w) for c, w in zip(r, widths, strict=True)))

    print("\nmemory per gunicorn worker (after the runs):")
    for pid, (rss, pss) in memory.items():
        print(f"  worker {pid}: RSS {rss:,.0f} MB, PSS {pss:,.0f} MB")
    print(f"  total PSS of the workers: {sum(p for _, p in memory.values()):,.0f} MB "
          f"(RSS counts the shared index in every worker, PSS once)")
    index_mb = os.path.getsize(index_path("default")) / 2**20
    per_hash = (index_mb * 2**20 - 4 * (2 * 2**21 + 2**22)) / max(hashes, 1)
    print(f"near-match index: one shared file of {index_mb:,.0f} MB for {hashes:,} hashes, mapped by every worker; "
          f"at 10,000,000 hashes ≈ {(32 * 2**20 + per_hash * 10_000_000) / 2**20:,.0f} MB, still once per machine")
    per_key = (filtered["bytes"] - filtered["fixed_bytes"]) / max(filtered["keys"], 1)
    print(f"key filter: {filtered['keys']:,} keys, {filtered['bytes'] / 2**20:,.1f} MB per process "
          f"({per_key:.1f} bytes per key and {filtered['fixed_bytes'] / 2**20:.1f} MB of bucket tables), built in "
          f"{filtered['built_s']:.1f}s; false-positive rate {filtered['false_positive_rate']:.4%} on 400,000 "
          f"unregistered keys; at 10,000,000 works ≈ "
          f"{(per_key * filtered['keys_per_work'] * 10_000_000 + filtered['fixed_bytes']) / 2**20:,.0f} MB per process")


if __name__ == "__main__":
    main()
