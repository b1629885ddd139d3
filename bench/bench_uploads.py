"""Bulk upload benchmark: what one real worker does with big catalogs.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/kyoka_bench_uploads .venv/bin/python bench/bench_uploads.py

Drops and recreates its own database (the name must contain "bench_uploads"), migrates it, and starts
a real `celery -A portal worker --pool=solo` per scenario, so each worker's peak memory is its
own. The broker is kombu's filesystem transport in a temporary folder: one message per
upload, so the broker plays no part in the numbers. Each scenario times an upload from the
moment it is queued until the worker has committed its last chunk (status done):

1. 100,000 manifest rows without files (budget: <= 20 s), plain and with a URL and an
   identifier on every row (each reference is also checked for conflicts with other catalogs);
2. 1,000 images (1280x720 PNG, about 1 MB each) in a ZIP (budget: >= 20 images/s per worker);
3. 1,000,000 manifest rows: the worker's peak RSS (VmHWM), against its RSS when idle.

Prints one table. --rows/--images/--big-rows make it smaller for a quick look.
"""

from __future__ import annotations

import argparse
import io
import os
import shutil
import struct
import subprocess
import sys
import tempfile
import time
import zipfile
import zlib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
SCRATCH = Path(tempfile.mkdtemp(prefix="kyoka-bench-uploads-"))

ENV = {
    "DATABASE_URL": os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/kyoka_bench_uploads"),
    "SECRET_KEY": "kyoka-bench-" + "Jq7vR2mW9xT4pL8nB3cK6hF1dS5gZ0aY" * 2,  # production settings want 50+ characters
    "DEBUG": "false",
    "ALLOWED_HOSTS": "127.0.0.1,localhost",
    "SECURE_SSL_REDIRECT": "false",
    "LOG_LEVEL": "WARNING",
    "DJANGO_SETTINGS_MODULE": "portal.settings",
    "CELERY_BROKER_URL": "filesystem://",
    "CELERY_BROKER_DIR": str(SCRATCH / "broker"),
    "MEDIA_ROOT": str(SCRATCH / "media"),
    "KYOKA_SIGNING_KEY_DIR": str(SCRATCH / "keys"),
}
os.environ.update(ENV)
os.environ.pop("REDIS_URL", None)


def recreate_database() -> None:
    import psycopg

    url = ENV["DATABASE_URL"]
    base, name = url.rsplit("/", 1)
    # Dropped and made again on every run: never the check benchmark's database (a seeded million
    # works that takes minutes to make) or any other, even with a DATABASE_URL set for that one.
    if "bench_uploads" not in name:
        raise SystemExit(f"refusing to drop {name!r}: this benchmark's database name must contain 'bench_uploads'")
    with psycopg.connect(f"{base}/postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')


class Worker:
    def __init__(self) -> None:
        self.log = SCRATCH / f"worker-{time.monotonic_ns()}.log"
        with open(self.log, "wb") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "celery", "-A", "portal", "worker", "--pool=solo", "--loglevel=INFO",
                 "--without-heartbeat", "--without-gossip", "--without-mingle"],
                cwd=ROOT, env={**os.environ}, stdout=log, stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + 60
        while " ready." not in self.log.read_text(errors="replace"):
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"the worker did not start:\n{self.log.read_text()[-2000:]}")
            time.sleep(0.1)
        self.idle_rss_mb = self._status_mb("VmRSS")

    def _status_mb(self, field: str) -> float:
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
        raise RuntimeError(field)

    def peak_rss_mb(self) -> float:
        return self._status_mb("VmHWM")

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=30)


def write_manifest(path: Path, rows: int, *, prefix: str, with_references: bool = True,
                   files: list[str] | None = None) -> None:
    """Written a row at a time: the benchmark does not hold a big manifest in memory either."""
    with open(path, "w", encoding="utf-8", newline="") as out:
        out.write("external_ref,title,kind,urls,identifiers,year,file\r\n")
        for n in range(1, rows + 1):
            url = f"https://cdn.studio.example/{prefix.lower()}/{n:07d}.png" if with_references else ""
            identifier = f"doi:10.5555/{prefix.lower()}.{n}" if with_references else ""
            file = files[n - 1] if files else ""
            out.write(f"{prefix}-{n:07d},Cel {n} of the opening,image,{url},{identifier},2024,{file}\r\n")


def image_archive(path: Path, count: int) -> list[str]:
    """1280x720 PNGs of about a megabyte: shapes with a grain, so they compress like real cels.

    Fifty pictures, each made distinct per file by a PNG text chunk (another SHA-256, the
    same decoding work), so building the archive does not take longer than the benchmark.
    """
    from PIL import Image

    from tests.factories import make_image_bytes

    bases = []
    for seed in range(50):
        picture = Image.open(io.BytesIO(make_image_bytes(seed, size=(1280, 720)))).convert("RGB")
        grain = Image.effect_noise((1280, 720), 40).convert("RGB")
        buffer = io.BytesIO()
        Image.blend(picture, grain, 0.15).save(buffer, format="PNG")
        bases.append(buffer.getvalue())
    names = []
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_STORED) as archive:
        for n in range(1, count + 1):
            name = f"cels/{n:05d}.png"
            archive.writestr(name, _with_text_chunk(bases[n % len(bases)], f"cel {n}".encode()))
            names.append(name)
    return names


def _with_text_chunk(png: bytes, text: bytes) -> bytes:
    payload = b"Comment\0" + text
    chunk = struct.pack(">I", len(payload)) + b"tEXt" + payload + struct.pack(">I", zlib.crc32(b"tEXt" + payload))
    end = png.rindex(b"IEND") - 4
    return png[:end] + chunk + png[end:]


def timed_upload(organization, manifest: Path, archive: Path | None = None) -> tuple[float, object]:
    from django.core.files import File

    from registry.access import Actor
    from registry.models import BulkUpload
    from registry.services.uploads import bulk_upload_start

    with open(manifest, "rb") as manifest_file:
        archive_file = open(archive, "rb") if archive else None  # noqa: SIM115 - closed below
        try:
            started = time.monotonic()
            upload = bulk_upload_start(
                actor=Actor.for_user(organization.memberships.get(role="owner").user), organization=organization,
                manifest=File(manifest_file, name=manifest.name),
                archive=File(archive_file, name=archive.name) if archive_file else None,
            )
        finally:
            if archive_file:
                archive_file.close()
    while True:
        state = BulkUpload.objects.get(pk=upload.pk)
        if state.status in BulkUpload.FINISHED:
            break
        time.sleep(0.05)
    elapsed = time.monotonic() - started
    if state.status != "done" or state.failed_count:
        raise SystemExit(f"upload {state.pk} ended {state.status}: {state.error} ({state.failed_count} failed)")
    return elapsed, state


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--images", type=int, default=1_000)
    parser.add_argument("--big-rows", type=int, default=1_000_000)
    args = parser.parse_args()

    recreate_database()
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection

    from registry.access import Actor
    from registry.models import Organization
    from registry.services.organizations import do_organization_create

    call_command("migrate", verbosity=0)
    from django.contrib.auth import get_user_model

    owner = get_user_model().objects.create_user(username="bench@studio.example", email="bench@studio.example")
    system = Actor.for_operator("bench")

    def studio(name: str):
        return do_organization_create(acting=system, name=name, kind=Organization.Kind.RIGHTSHOLDER, owner=owner)

    results = []

    def scenario(name: str, manifest: Path, rows: int, unit: str, note: str, archive: Path | None = None,
                 passed=None) -> None:
        # autovacuum is off on some development machines; keep the planner's statistics as fresh
        # as autovacuum would between uploads.
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE")
        worker = Worker()
        seconds, _ = timed_upload(studio(name), manifest, archive)
        rate = rows / seconds
        mark = "" if passed is None else ("✓" if passed(seconds, rate) else "✗")
        results.append((name, seconds, f"{rate:,.1f} {unit}/s" if rate < 100 else f"{rate:,.0f} {unit}/s",
                        worker.peak_rss_mb(), f"{note}; idle worker {worker.idle_rss_mb:,.0f} MB", mark))
        worker.stop()
        print(f"  {name}: {seconds:,.1f} s", flush=True)

    manifest = SCRATCH / "plain.csv"
    write_manifest(manifest, args.rows, prefix="ROW", with_references=False)
    scenario(f"{args.rows:,} rows, no files", manifest, args.rows, "rows", "budget <= 20 s",
             passed=lambda seconds, rate: seconds <= 20)

    manifest = SCRATCH / "references.csv"
    write_manifest(manifest, args.rows, prefix="REF")
    scenario(f"{args.rows:,} rows, a URL + an identifier each", manifest, args.rows, "rows", "budget <= 20 s",
             passed=lambda seconds, rate: seconds <= 20)

    if args.images > 0:
        archive = SCRATCH / "images.zip"
        names = image_archive(archive, args.images)
        manifest = SCRATCH / "images.csv"
        write_manifest(manifest, args.images, prefix="IMG", with_references=False, files=names)
        scenario(f"{args.images:,} images, 1280x720 PNG, in a ZIP ({archive.stat().st_size / 2**20:,.0f} MB)",
                 manifest, args.images, "images", "budget >= 20 images/s", archive,
                 passed=lambda seconds, rate: rate >= 20)

    if args.big_rows > 0:  # 0 skips the long memory run (about 11 minutes here)
        manifest = SCRATCH / "big.csv"
        write_manifest(manifest, args.big_rows, prefix="BIG")
        scenario(f"{args.big_rows:,} rows, a URL + an identifier each ({manifest.stat().st_size / 2**20:,.0f} MB)",
                 manifest, args.big_rows, "rows", "streamed")

    print(f"\nBulk uploads: one worker (--pool=solo), {os.cpu_count()} cores, {connection.vendor} "
          f"{connection.pg_version if connection.vendor == 'postgresql' else ''}")
    table = [("scenario", "seconds to done", "rate", "worker peak RSS", "budget / note", "")]
    table += [(name, f"{secs:,.1f}", rate, f"{rss:,.0f} MB", note, mark)
              for name, secs, rate, rss, note, mark in results]
    widths = [max(len(row[i]) for row in table) for i in range(len(table[0]))]
    for number, row in enumerate(table):
        print(" | ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)))
        if number == 0:
            print("-|-".join("-" * width for width in widths))


if __name__ == "__main__":
    try:
        main()
    finally:
        shutil.rmtree(SCRATCH, ignore_errors=True)
