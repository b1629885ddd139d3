"""Sustained mixed check load against a real gunicorn on loopback (issue: prove it holds under load).

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/kyoka_bench_load .venv/bin/python bench/bench_load.py

Sets up a small registry through the public interfaces only (createorg and createapikey, then
the API: works with URLs, identifiers and image files, a catalog grant), starts gunicorn on
127.0.0.1, and runs a fixed mix for a fixed time from a few concurrent clients:

- 1-item checks (a URL; one in four registered),
- 10,000-item checks (95% unregistered sha256 and URLs, 5% registered),
- file checks (three PNGs, hashed and near-matched on the server),
- phash checks (100 items within distance 8).

Prints, per kind and in total: requests, items, throughput, p50 and p99 latency, and errors,
which must be zero (any status but 200, a body that does not parse, or a missing receipt).
Bounded: at most --seconds of load and --max-requests requests; nothing leaves the machine.
"""

from __future__ import annotations

import argparse
import hashlib
import http.client
import io
import json
import os
import random
import statistics
import subprocess
import sys
import threading
import time
import uuid
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

ENV = {
    "DATABASE_URL": os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/kyoka_bench_load"),
    "REDIS_URL": os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/11"),
    "SECRET_KEY": "kyoka-bench-load-" + "Qm4vT8wX2zL6nP0rB5cK9hF3dS7gJ1aY" * 2,
    "DEBUG": "false",
    "ALLOWED_HOSTS": "127.0.0.1,localhost",
    "SECURE_SSL_REDIRECT": "false",
    "COOKIES_SECURE": "false",
    "KYOKA_PLAIN_HTTP": "true",
    "LOG_LEVEL": "WARNING",
    "KYOKA_SIGNING_KEY_DIR": str(ROOT / "var" / "bench-keys"),
    "MEDIA_ROOT": str(ROOT / "var" / "bench-load-media"),
    "DJANGO_SETTINGS_MODULE": "portal.settings.production",
    # The bench measures the server, not the quota: a limit no run can reach.
    "KYOKA_QUOTA_UNITS_PER_MINUTE": str(10**12),
}

WORKS = 400
IMAGES = 24
BIG_BATCH = 10_000


def manage(*args: str) -> str:
    return subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, env={**os.environ, **ENV}, check=True,
        capture_output=True, text=True,
    ).stdout.strip()


def ensure_database() -> None:
    import psycopg

    name = ENV["DATABASE_URL"].rsplit("/", 1)[1]
    base = ENV["DATABASE_URL"].rsplit("/", 1)[0] + "/postgres"
    with psycopg.connect(base, autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone():
            conn.execute(f'CREATE DATABASE "{name}"')


def start_gunicorn(workers: int) -> tuple[subprocess.Popen, int]:
    from bench_checks import start_server  # one way to start and wait for a bench gunicorn

    return start_server(workers, env=ENV)


class Api:
    """One keep-alive connection to the server, as one client."""

    def __init__(self, port: int, key: str) -> None:
        self.port = port
        self.key = key
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)

    def send(self, method: str, path: str, body: bytes | None, content_type: str) -> tuple[int, bytes, dict]:
        headers = {"Authorization": f"Bearer {self.key}", "Content-Type": content_type}
        try:
            self.conn.request(method, path, body=body, headers=headers)
            response = self.conn.getresponse()
            return response.status, response.read(), dict(response.getheaders())
        except (http.client.HTTPException, OSError):
            self.conn.close()
            self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=120)
            raise

    def json(self, method: str, path: str, document: object) -> tuple[int, bytes, dict]:
        return self.send(method, path, json.dumps(document).encode(), "application/json")

    def files(self, path: str, fields: dict[str, str], files: list[tuple[str, str, bytes]]) -> tuple[int, bytes, dict]:
        boundary = uuid.uuid4().hex
        parts = []
        for name, value in fields.items():
            parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode())
        for name, filename, data in files:
            parts.append(
                f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"; filename="{filename}"\r\n'
                f"Content-Type: image/png\r\n\r\n".encode() + data + b"\r\n"
            )
        parts.append(f"--{boundary}--\r\n".encode())
        return self.send("POST", path, b"".join(parts), f"multipart/form-data; boundary={boundary}")


def image_bytes(seed: int) -> bytes:
    from PIL import Image, ImageDraw

    rng = random.Random(seed)
    image = Image.linear_gradient("L").resize((320, 240)).convert("RGB")
    draw = ImageDraw.Draw(image)
    for _ in range(10):
        x0, y0 = rng.randrange(320), rng.randrange(240)
        box = (x0, y0, x0 + rng.randrange(40, 160), y0 + rng.randrange(30, 120))
        (draw.ellipse if rng.random() < 0.5 else draw.rectangle)(box, fill=tuple(rng.randrange(256) for _ in "rgb"))
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def url_of(i: int) -> str:
    return f"https://cdn.bench-load.example/cel/{i:06d}.png"


def set_up(port: int) -> tuple[str, list[str], list[bytes]]:
    """Register the works through the API; return the developer's key, registered URLs, images."""
    run = uuid.uuid4().hex[:6]
    studio = manage("createorg", "--kind", "rightsholder", "--name", f"Load Studio {run}",
                    "--owner-email", f"studio-{run}@bench.example", "--verified").splitlines()[-1]
    developer = manage("createorg", "--kind", "ai_developer", "--name", f"Load AI {run}",
                       "--owner-email", f"dev-{run}@bench.example", "--verified").splitlines()[-1]
    studio_key = manage("createapikey", "--org", studio, "--scopes", "works:write,grants:write").splitlines()[-1]
    developer_key = manage("createapikey", "--org", developer, "--scopes", "checks").splitlines()[-1]
    api = Api(port, studio_key)
    urls, images = [], []
    for i in range(WORKS):
        status, body, _ = api.json("POST", "/api/v1/works", {
            "external_ref": f"L-{run}-{i}", "title": f"Load work {i}", "kind": "image", "urls": [url_of(i)],
        })
        if status != 201:
            raise RuntimeError(f"registering a work answered {status}: {body[:300]!r}")
        urls.append(url_of(i))
        if i < IMAGES:
            image = image_bytes(i)
            work_id = json.loads(body)["id"]
            status, body, _ = api.files(f"/api/v1/works/{work_id}/files", {}, [("file", f"{i}.png", image)])
            if status not in (200, 201):
                raise RuntimeError(f"adding a file answered {status}: {body[:300]!r}")
            images.append(image)
    status, body, _ = api.json("POST", "/api/v1/grants", {
        "scope": "catalog", "licensee": developer, "purposes": ["tdm"],
    })
    if status != 201:
        raise RuntimeError(f"issuing the grant answered {status}: {body[:300]!r}")
    return developer_key, urls, images


def big_batch(rng: random.Random, urls: list[str]) -> list[dict]:
    items = []
    for n in range(BIG_BATCH):
        roll = rng.random()
        if roll < 0.05:
            items.append({"url": rng.choice(urls)})
        elif roll < 0.5:
            items.append({"sha256": hashlib.sha256(f"unregistered-{rng.getrandbits(64)}".encode()).hexdigest()})
        else:
            items.append({"url": f"https://elsewhere.example/{rng.getrandbits(48):x}/{n}.jpg"})
    return items


def phash_batch(rng: random.Random) -> list[dict]:
    return [{"phash": f"{rng.getrandbits(64):016x}", "max_distance": 8} for _ in range(100)]


KINDS = ("1 item", "10,000 items", "3 files", "100 phash")
WEIGHTS = (0.6, 0.05, 0.15, 0.2)


def run_load(port: int, key: str, urls: list[str], images: list[bytes], *, clients: int, seconds: float,
             max_requests: int) -> tuple[dict, dict, dict, list[str], float]:
    latencies: dict[str, list[float]] = defaultdict(list)
    items: dict[str, int] = defaultdict(int)
    errors: dict[str, int] = defaultdict(int)
    samples: list[str] = []
    lock = threading.Lock()
    sent = 0
    deadline = time.monotonic() + seconds

    def client(number: int) -> None:
        nonlocal sent
        rng = random.Random(number)
        api = Api(port, key)
        prepared_big = big_batch(rng, urls)  # built once per client: the bench measures the server
        while time.monotonic() < deadline:
            with lock:
                if sent >= max_requests:
                    return
                sent += 1
            kind = rng.choices(KINDS, WEIGHTS)[0]
            started = time.perf_counter()
            try:
                if kind == "1 item":
                    document = {"purpose": "tdm", "items": [
                        {"url": rng.choice(urls) if rng.random() < 0.25 else f"https://x.example/{rng.random()}"}]}
                    count = 1
                    status, body, headers = api.json("POST", "/api/v1/checks", document)
                elif kind == "10,000 items":
                    count = BIG_BATCH
                    status, body, headers = api.json("POST", "/api/v1/checks", {"purpose": "tdm",
                                                                                "items": prepared_big})
                elif kind == "3 files":
                    count = 3
                    chosen = [("files", f"f{n}.png", rng.choice(images)) for n in range(3)]
                    status, body, headers = api.files("/api/v1/checks/files", {"purpose": "tdm"}, chosen)
                else:
                    count = 100
                    status, body, headers = api.json("POST", "/api/v1/checks", {"purpose": "tdm",
                                                                                "items": phash_batch(rng)})
                elapsed = time.perf_counter() - started
                ok = status == 200 and "Receipt-Signature" in headers and len(json.loads(body)["results"]) == count
            except Exception as error:  # any failure of a request is an error of the run
                elapsed, ok, status, body = time.perf_counter() - started, False, 0, str(error).encode()
            with lock:
                if ok:
                    latencies[kind].append(elapsed)
                    items[kind] += count
                else:
                    errors[kind] += 1
                    if len(samples) < 5:
                        samples.append(f"{kind}: {status} {body[:200]!r}")

    started = time.monotonic()
    threads = [threading.Thread(target=client, args=(n,)) for n in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return latencies, items, errors, samples, time.monotonic() - started


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * fraction))] * 1000


def print_table(latencies: dict, items: dict, errors: dict, wall: float) -> None:
    header = ["kind", "requests", "items", "req/s", "items/s", "p50 ms", "p99 ms", "errors"]
    rows = []
    for kind in (*KINDS, "all"):
        values = [v for k in KINDS for v in latencies[k]] if kind == "all" else latencies[kind]
        count = sum(items.values()) if kind == "all" else items[kind]
        failed = sum(errors.values()) if kind == "all" else errors[kind]
        if not values:
            rows.append([kind, "0", "0", "-", "-", "-", "-", str(failed)])
            continue
        rows.append([kind, f"{len(values):,}", f"{count:,}", f"{len(values) / wall:.1f}", f"{count / wall:,.0f}",
                     f"{statistics.median(values) * 1000:.1f}", f"{percentile(values, 0.99):.1f}", str(failed)])
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    for line in [header, ["-" * w for w in widths], *rows]:
        print("  ".join(str(cell).rjust(width) for cell, width in zip(line, widths, strict=True)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=30.0, help="how long the load runs (default 30)")
    parser.add_argument("--clients", type=int, default=4, help="concurrent clients (default 4)")
    parser.add_argument("--workers", type=int, default=4, help="gunicorn workers (default 4)")
    parser.add_argument("--max-requests", type=int, default=20_000, help="stop after this many requests")
    args = parser.parse_args()

    ensure_database()
    manage("migrate", "--noinput")
    server, port = start_gunicorn(args.workers)
    try:
        key, urls, images = set_up(port)
        # Warm every worker (near-match index, signing key) before the measured window.
        run_load(port, key, urls, images, clients=args.workers * 2, seconds=3, max_requests=200)
        latencies, items, errors, samples, wall = run_load(
            port, key, urls, images, clients=args.clients, seconds=args.seconds, max_requests=args.max_requests)
    finally:
        server.terminate()
        server.wait(timeout=30)
    print(f"\nMixed check load: {args.clients} clients, {args.workers} gunicorn workers, {wall:.1f} s "
          f"(mix {', '.join(f'{k} {w:.0%}' for k, w in zip(KINDS, WEIGHTS, strict=True))})\n")
    print_table(latencies, items, errors, wall)
    total_errors = sum(errors.values())
    print(f"\nerrors: {total_errors} {'✓' if total_errors == 0 else '✗'} (must be zero)")
    for sample in samples:
        print("  " + sample)
    sys.exit(1 if total_errors else 0)


if __name__ == "__main__":
    main()
