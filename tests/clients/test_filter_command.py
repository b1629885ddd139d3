"""`kyoka filter`: permitted rows only, in the dataset's own format, resumable after an interruption."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time

import pytest

from tests.clients.conftest import CLIENT_SOURCE
from tests.clients.stub import StubRegistry

ROWS = [{"url": f"https://img.example.net/{n}.jpg", "caption": f"picture {n}"} for n in range(600)]


def permitted_by_stub(item: dict) -> bool:
    return int(item["url"].rsplit("/", 1)[-1].split(".")[0]) % 3 == 0


def write_csv(path, rows) -> None:
    with open(path, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


def test_filter_keeps_the_permitted_rows_of_a_csv_as_an_img2dataset_url_list(run_kyoka, tmp_path):
    write_csv(tmp_path / "in.csv", ROWS[:90])
    with StubRegistry(permitted=permitted_by_stub) as stub:
        result = run_kyoka("filter", "in.csv", "--column", "url", "--purpose", "train-genai", "--out", "out.csv",
                           "--decisions", url=stub.url, key="k")
    assert result.returncode == 1, result.stderr
    with open(tmp_path / "out.csv", newline="") as handle:
        kept = list(csv.DictReader(handle))
    assert [r["url"] for r in kept] == [r["url"] for r in ROWS[:90] if permitted_by_stub(r)]
    assert set(kept[0]) == {"url", "caption", "kyoka_decision", "kyoka_reason", "kyoka_proof"}
    assert len(list((tmp_path / "out.csv.receipts").glob("*.jws"))) == 1
    assert not (tmp_path / "out.csv.kyoka-progress.jsonl").exists()


@pytest.mark.parametrize("suffix", [".jsonl", ".parquet", ".tsv"])
def test_filter_reads_and_writes_jsonl_parquet_and_tsv(run_kyoka, tmp_path, suffix):
    rows = ROWS[:30]
    source = tmp_path / f"in{suffix}"
    if suffix == ".jsonl":
        source.write_text("".join(json.dumps(r) + "\n" for r in rows))
    elif suffix == ".tsv":
        source.write_text("url\tcaption\n" + "".join(f"{r['url']}\t{r['caption']}\n" for r in rows))
    else:
        import pyarrow as pa
        import pyarrow.parquet as pq

        pq.write_table(pa.Table.from_pylist(rows), source)
    with StubRegistry(permitted=permitted_by_stub) as stub:
        result = run_kyoka("filter", source.name, "--purpose", "tdm", "--out", f"out{suffix}", url=stub.url, key="k")
    assert result.returncode == 1, result.stderr
    if suffix == ".jsonl":
        kept = [json.loads(line)["url"] for line in (tmp_path / "out.jsonl").read_text().splitlines()]
    elif suffix == ".tsv":
        kept = [line.split("\t")[0] for line in (tmp_path / "out.tsv").read_text().splitlines()[1:]]
    else:
        import pyarrow.parquet as pq

        kept = pq.read_table(tmp_path / "out.parquet").column("url").to_pylist()
    assert kept == [r["url"] for r in rows if permitted_by_stub(r)]


def _as_a_background_job() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # what a shell does to a job started with `&`


@pytest.mark.parametrize("started", ["in the foreground", "as a background job"])
def test_filter_resumes_after_sigint_without_asking_again(tmp_path, started):
    write_csv(tmp_path / "in.csv", ROWS)
    with StubRegistry(permitted=permitted_by_stub) as stub:
        stub.delay = 0.3
        environment = {**os.environ, "PYTHONPATH": str(CLIENT_SOURCE), "KYOKA_URL": stub.url, "KYOKA_API_KEY": "k"}
        command = [sys.executable, "-m", "kyoka", "filter", "in.csv", "--purpose", "tdm", "--out", "out.csv",
                   "--batch-size", "50", "--concurrency", "1"]
        process = subprocess.Popen(command, cwd=tmp_path, env=environment, stderr=subprocess.PIPE, text=True,
                                   preexec_fn=_as_a_background_job if started == "as a background job" else None)
        progress = tmp_path / "out.csv.kyoka-progress.jsonl"
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and (not progress.exists() or len(progress.read_text().splitlines()) < 3):
            time.sleep(0.05)
        process.send_signal(signal.SIGINT)
        _, stderr = process.communicate(timeout=30)
        assert process.returncode == 2, stderr
        assert "interrupted" in stderr
        asked_before = sum(count for _, path, count in stub.requests if path == "/api/v1/checks")
        answered = sum(len(json.loads(line)["rows"]) for line in progress.read_text().splitlines())
        assert 150 <= answered <= asked_before < len(ROWS)

        stub.delay = 0
        rerun = subprocess.run(command, cwd=tmp_path, env=environment, capture_output=True, text=True, timeout=60)

        assert rerun.returncode == 1, rerun.stderr
        assert "resuming after" in rerun.stderr
        asked_again = sum(count for _, path, count in stub.requests if path == "/api/v1/checks") - asked_before
        assert asked_again == len(ROWS) - answered  # nothing already answered is asked again
    with open(tmp_path / "out.csv", newline="") as handle:
        kept = [r["url"] for r in csv.DictReader(handle)]
    assert kept == [r["url"] for r in ROWS if permitted_by_stub(r)]


def test_filter_against_the_live_registry_keeps_only_granted_rows(kyoka_server, run_kyoka, tmp_path):
    from django.utils import timezone

    from registry.models import VerifiedHost

    VerifiedHost.objects.create(organization=kyoka_server.studio, host="cdn.filter.test", method="reviewer",
                                verified_at=timezone.now())
    kyoka_server.grant(kyoka_server.work(urls=["https://cdn.filter.test/a.png"]))
    kyoka_server.work(urls=["https://cdn.filter.test/b.png"])
    write_csv(tmp_path / "in.csv", [{"url": u, "caption": "x"} for u in (
        "https://cdn.filter.test/a.png", "https://cdn.filter.test/b.png", "https://nobody.example/c.png",
        "HTTPS://cdn.filter.test/./a.png")])

    result = run_kyoka("filter", "in.csv", "--purpose", "train-genai", "--out", "out.txt", url=kyoka_server.url,
                       key=kyoka_server.key)

    assert result.returncode == 1, result.stderr
    assert (tmp_path / "out.txt").read_text().splitlines() == [
        "https://cdn.filter.test/a.png", "HTTPS://cdn.filter.test/./a.png"]
